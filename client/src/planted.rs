//! Bugs planted on purpose, for proving that the simulator finds them. Only built with
//! the `planted-bugs` feature (the simulator enables it); without it the switch is a
//! constant `false`.

/// A bug that can be planted in the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// An allocation the servers send again is started again, beside the runner that
    /// already runs it: its tasks run twice.
    NoDedupe = 1,
}

#[cfg(feature = "planted-bugs")]
static PLANTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

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
