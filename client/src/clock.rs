//! Time and randomness, passed in (`stead_model::clock`, shared with the servers). Logic
//! that tests check (restart windows, event times, the mock driver's remaining run time)
//! reads the wall clock only through [`Clock`], and draws IDs and jitter only from
//! [`Entropy`], so tests and the simulator fix both.

pub use stead_model::clock::{Clock, Entropy, ManualClock, SeededEntropy, SystemClock, format_uuid};
