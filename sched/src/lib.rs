//! stead's scheduler core (filled in by the scheduler issue).
//!
//! The core is a pure function of (snapshot, evaluation, now, seed) → plan: it must not
//! depend on tokio, on the store's engines or on a clock. The worker loop that feeds it
//! snapshots and commits its plans lives at the edge. Today this crate holds only that
//! contract; `tests/purity.rs`-style checks arrive with the code.
