//! Bugs planted on purpose, for proving that the simulator finds them (`stead-sim`'s
//! tests switch one on and expect a checker to fail within a bounded number of seeds).
//! One switch for the whole process, read where each bug lives (the server's plan commit
//! and evaluation queue, the client's allocation loop). Only switchable with the
//! `planted-bugs` feature (the simulator enables it through `stead-server` and
//! `stead-client`); without it [`planted`] is a constant `false` and the code behind it
//! is dead.

/// A bug that can be planted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// The plan commit reads node usage without a conflict (a snapshot read), so two
    /// workers placing on one node at once can over-commit it.
    CommitSkipsNodeReread = 1,
    /// A client starts an allocation the servers send again beside the runner that
    /// already runs it: its tasks run twice.
    ClientNoDedupe = 2,
    /// An expired evaluation lease is never taken over: an evaluation whose worker died
    /// is stuck.
    LeaseNeverExpires = 4,
}

impl Bug {
    pub const ALL: [Bug; 3] = [Bug::CommitSkipsNodeReread, Bug::ClientNoDedupe, Bug::LeaseNeverExpires];

    /// The name `stead-sim --plant` takes.
    pub fn name(self) -> &'static str {
        match self {
            Bug::CommitSkipsNodeReread => "commit-skips-node-reread",
            Bug::ClientNoDedupe => "client-no-dedupe",
            Bug::LeaseNeverExpires => "lease-never-expires",
        }
    }

    pub fn from_name(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| b.name() == name)
    }
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

/// Plants `bug` and no other (`None`: the correct code).
#[cfg(feature = "planted-bugs")]
pub fn plant(bug: Option<Bug>) {
    PLANTED.store(bug.map_or(0, |b| b as u32), std::sync::atomic::Ordering::Relaxed);
}
