//! Time and randomness, passed in: production reads the system clock and the OS's
//! randomness; tests and the simulator pass a manual clock and a seeded source.

use std::sync::Arc;

pub use stead_store::model::clock::{Clock, Entropy, ManualClock, SeededEntropy, SystemClock};

/// The clock and randomness a server runs with.
#[derive(Clone)]
pub struct Env {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
}

impl Env {
    /// The system clock and a time-seeded source.
    pub fn system() -> Self {
        Self { clock: Arc::new(SystemClock), entropy: Arc::new(SeededEntropy::from_os()) }
    }

    /// A manual clock at `now_ns` and a seeded source.
    pub fn manual(now_ns: i64, seed: u64) -> (Self, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(now_ns));
        (Self { clock: clock.clone(), entropy: Arc::new(SeededEntropy::new(seed)) }, clock)
    }

    pub fn now_ns(&self) -> i64 {
        self.clock.now_ns()
    }

    /// A random UUID (version 4 layout).
    pub fn new_id(&self) -> String {
        self.entropy.new_uuid()
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").field("now_ns", &self.now_ns()).finish_non_exhaustive()
    }
}
