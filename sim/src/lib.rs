//! stead's deterministic whole-cluster simulation.
//!
//! A run ([`run::run`]) builds a cluster inside madsim ([`cluster`]): S server nodes
//! (scheduler workers, duties, the gRPC client protocol), C client nodes running the
//! production client with the mock driver, and the store shared in-process behind the
//! fault wrapper. A workload ([`workload`]) drives it through the same `stead_server`
//! calls the HTTP and gRPC layers make; a fault driver ([`faults`]) crashes and restarts
//! nodes, clogs links, jumps client clocks and turns store faults on and off; the
//! checkers ([`checks`]) test the safety invariants all along and the liveness ones after
//! a quiet phase. Everything comes from the seed: the same seed gives the same run.
//!
//! Only this crate names madsim's runtime API. The runner is `src/bin/stead-sim.rs`
//! (`scripts/sim.sh`); the planted bugs it must find are `stead_model::planted`.

pub mod config;

#[cfg(madsim)]
pub mod checks;
#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod faults;
#[cfg(madsim)]
pub mod run;
#[cfg(madsim)]
pub mod trace;
#[cfg(madsim)]
pub mod workload;

/// A 64-bit mix of values (SplitMix64 finalizer): seeds for the parts of a run.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small seeded random source for the simulation's own choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0, 0)
    }

    /// Uniform in `[0, n)` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `[lo, hi]` seconds.
    pub fn secs(&mut self, lo: u64, hi: u64) -> std::time::Duration {
        std::time::Duration::from_millis(lo * 1000 + self.below((hi.saturating_sub(lo)) * 1000 + 1))
    }
}
