//! Bugs planted on purpose, for proving that the simulator finds them (`stead-sim`'s
//! tests switch one on and expect a checker to fail within a bounded number of seeds).
//! Only built with the `planted-bugs` feature (the simulator enables it); without it
//! every switch is a constant `false` and the code behind it is dead.

/// A bug that can be planted in the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// The plan commit reads node usage without a conflict (a snapshot read), so two
    /// workers placing on one node at once can over-commit it.
    CommitSkipsNodeReread = 1,
    /// An expired evaluation lease is never taken over: an evaluation whose worker died
    /// is stuck.
    LeaseNeverExpires = 2,
}

#[cfg(feature = "planted-bugs")]
static PLANTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Whether `bug` is planted now.
#[inline]
pub fn planted(bug: Bug) -> bool {
    #[cfg(feature = "planted-bugs")]
    {
        PLANTED.load(std::sync::atomic::Ordering::Relaxed) & (bug as u32) != 0
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = bug;
        false
    }
}

/// Plants exactly `bugs` (none: the correct code).
#[cfg(feature = "planted-bugs")]
pub fn plant(bugs: &[Bug]) {
    let mask = bugs.iter().fold(0, |m, b| m | *b as u32);
    PLANTED.store(mask, std::sync::atomic::Ordering::Relaxed);
}
