//! Time and randomness, passed in: production reads the system clock and the OS's
//! randomness; tests and the simulator pass a manual clock and a seeded source.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Wall-clock time in Unix nanoseconds. Leases and delayed evaluations compare such times
/// across servers, so servers' clocks must agree within a fraction of `lease_ttl`.
pub trait Clock: Send + Sync + 'static {
    fn now_ns(&self) -> i64;
}

/// A source of random 64-bit values, for IDs and seeds.
pub trait Entropy: Send + Sync + 'static {
    fn next_u64(&self) -> u64;
}

/// The system clock (virtual under the simulator, which intercepts it).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> i64 {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
    }
}

/// A clock tests move by hand.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now_ns: i64) -> Self {
        Self(AtomicI64::new(now_ns))
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(i64::try_from(by.as_nanos()).unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    pub fn set(&self, now_ns: i64) {
        self.0.store(now_ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// SplitMix64 over an atomic counter: deterministic for a seed, shareable across tasks
/// (the order of draws across tasks is the scheduler's, which the simulator fixes).
#[derive(Debug, Default)]
pub struct SeededEntropy(AtomicU64);

impl SeededEntropy {
    pub fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }

    /// Seeded from the system clock and the process ID: for production, where IDs need
    /// only be unique, not reproducible.
    pub fn from_time() -> Self {
        let t = SystemClock.now_ns() as u64;
        Self::new(t ^ u64::from(std::process::id()).rotate_left(32))
    }
}

impl Entropy for SeededEntropy {
    fn next_u64(&self) -> u64 {
        let mut z = self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The clock and randomness a server runs with.
#[derive(Clone)]
pub struct Env {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
}

impl Env {
    /// The system clock and a time-seeded source.
    pub fn system() -> Self {
        Self { clock: Arc::new(SystemClock), entropy: Arc::new(SeededEntropy::from_time()) }
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
        stead_sched::ids::format_uuid(self.entropy.next_u64(), self.entropy.next_u64())
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").field("now_ns", &self.now_ns()).finish_non_exhaustive()
    }
}
