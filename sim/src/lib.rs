//! stead's deterministic simulation (built out by the simulation issue).
//!
//! Only this crate names madsim's runtime API; every other crate reaches tokio and tonic
//! through the madsim renames, so one source builds for production and for simulation.
//! Today it holds the store's own simulation tests (`tests/`), which run the embedded
//! engine behind the fault wrapper in simulated time.
