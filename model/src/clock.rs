//! Time and randomness, passed in: servers and clients read the wall clock only through
//! [`Clock`] and draw IDs and jitter only from [`Entropy`], so tests and the simulator fix
//! both. Here because every crate that decides anything needs them and none may own them
//! for the others; plain std, no runtime. Timers (`tokio::time`) are simulated under madsim
//! on their own.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Wall-clock time in Unix nanoseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_ns(&self) -> i64;
}

/// A source of random 64-bit values, for IDs and jitter.
pub trait Entropy: Send + Sync + 'static {
    fn next_u64(&self) -> u64;

    /// A value in `[0, 1)`.
    fn next_fraction(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A random UUID in the version 4 layout, as Nomad's IDs.
    fn new_uuid(&self) -> String {
        format_uuid(self.next_u64(), self.next_u64())
    }
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

/// SplitMix64 over an atomic counter: deterministic for a seed, shareable across tasks.
#[derive(Debug, Default)]
pub struct SeededEntropy(AtomicU64);

impl SeededEntropy {
    pub fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }

    /// Seeded from the OS (`/dev/urandom`), else from the clock and process ID: for
    /// production, where IDs need only be unique, not reproducible.
    pub fn from_os() -> Self {
        let mut seed = [0u8; 8];
        let from_os =
            std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed)).is_ok();
        if from_os {
            Self::new(u64::from_le_bytes(seed))
        } else {
            Self::new(SystemClock.now_ns() as u64 ^ u64::from(std::process::id()).rotate_left(32))
        }
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

/// `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx` from 128 random bits.
pub fn format_uuid(hi: u64, lo: u64) -> String {
    let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_the_version_4_layout_and_a_seed_repeats_them() {
        let a = SeededEntropy::new(7);
        let b = SeededEntropy::new(7);
        let id = a.new_uuid();
        assert_eq!(id, b.new_uuid());
        assert_eq!(id.len(), 36);
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), vec![8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(id, a.new_uuid());
    }

    #[test]
    fn fractions_stay_below_one() {
        let e = SeededEntropy::new(1);
        assert!((0..1000).map(|_| e.next_fraction()).all(|f| (0.0..1.0).contains(&f)));
    }
}
