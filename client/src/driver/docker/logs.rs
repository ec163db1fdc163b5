//! Copying a container's output into the task's rotated log files.
//!
//! The follower reads Docker's log stream (stdout and stderr multiplexed, each entry
//! prefixed with its timestamp) and appends each entry, timestamp stripped, to
//! `<task>.stdout.<n>` or `<task>.stderr.<n>`. How far it got is a [`Position`] kept in
//! the attempt's run dir: the newest timestamp written and how many entries carried it.
//! A follower started later (a reconnect, or a client restarted and re-attached) asks
//! Docker for everything since that second and skips what the position covers, so
//! output is neither lost nor written twice. A lock file in the run dir lets only one
//! follower write at a time: a handle dropped while its follower still runs is waited
//! out, not raced.
//!
//! Writing a batch and saving the position happen with no `.await` between them, so a
//! follower aborted (its handle dropped) never leaves written entries unrecorded. A
//! client killed by the OS between the two may write the last batch again.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::ContainerState;
use crate::logs::{LogKind, LogLimits, RotatingWriter, log_prefix};
use crate::state::{atomic_write_with, read_json};

/// Entries written per position save, at most.
const BATCH_MAX: usize = 256;
/// How often a follower looks whether the one before it let go of the run dir's lock.
const LOCK_POLL: Duration = Duration::from_millis(50);
/// Reconnect backoff while the container runs but its log stream ended (a daemon restart).
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Where one task's output goes; persisted with the handle, so a re-attached handle
/// writes to the same files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogTarget {
    pub logs_dir: PathBuf,
    pub task: String,
    pub limits: LogLimits,
}

/// The newest entry written: its timestamp (Unix nanoseconds) and how many entries with
/// exactly that timestamp were written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub ts_nanos: i64,
    pub count: u32,
}

fn position_path(run_dir: &Path) -> PathBuf {
    run_dir.join("logs-position.json")
}

fn lock_path(run_dir: &Path) -> PathBuf {
    run_dir.join("logs.lock")
}

/// Decides which entries of a (re)opened stream are new.
#[derive(Debug, Default)]
pub struct Dedup {
    pos: Option<Position>,
    /// While replaying what an earlier stream already delivered: the position it reached
    /// and how many entries at its timestamp were skipped so far.
    replay: Option<(Position, u32)>,
}

impl Dedup {
    pub fn new(pos: Option<Position>) -> Self {
        Self { pos, replay: None }
    }

    pub fn position(&self) -> Option<Position> {
        self.pos
    }

    /// The second to ask Docker for entries since (it filters by whole seconds).
    pub fn since_secs(&self) -> i32 {
        self.pos.map_or(0, |p| i32::try_from(p.ts_nanos.div_euclid(1_000_000_000)).unwrap_or(i32::MAX))
    }

    /// A new stream starts: it replays from [`Dedup::since_secs`].
    pub fn reconnect(&mut self) {
        self.replay = self.pos.map(|p| (p, 0));
    }

    /// Whether to write an entry with timestamp `ts`, updating the position if so.
    /// Replay ends at the first entry past the position; from there on everything is
    /// new (stdout and stderr entries may arrive slightly out of timestamp order).
    pub fn admit(&mut self, ts: Option<i64>) -> bool {
        if let Some((p, skipped)) = &mut self.replay {
            match ts {
                Some(t) if t < p.ts_nanos => return false,
                Some(t) if t == p.ts_nanos && *skipped < p.count => {
                    *skipped += 1;
                    return false;
                }
                _ => self.replay = None,
            }
        }
        if let Some(t) = ts {
            match &mut self.pos {
                Some(p) if t < p.ts_nanos => {}
                Some(p) if t == p.ts_nanos => p.count = p.count.saturating_add(1),
                _ => self.pos = Some(Position { ts_nanos: t, count: 1 }),
            }
        }
        true
    }
}

/// Splits Docker's `<RFC 3339 timestamp> <entry>`; no timestamp if the entry has none.
pub fn split_timestamp(message: &[u8]) -> (Option<i64>, &[u8]) {
    let Some(space) = message.iter().take(40).position(|b| *b == b' ') else { return (None, message) };
    let ts = std::str::from_utf8(&message[..space]).ok().and_then(stead_model::time::parse_rfc3339_nanos);
    match ts {
        Some(t) => (Some(t), &message[space + 1..]),
        None => (None, message),
    }
}

/// Holds an exclusive `flock` on the run dir's lock file while alive.
struct RunDirLock(#[allow(dead_code)] std::fs::File);

fn try_lock(path: &Path) -> std::io::Result<Option<RunDirLock>> {
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(Some(RunDirLock(file)));
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(None) } else { Err(err) }
}

struct Writers {
    stdout: RotatingWriter,
    stderr: RotatingWriter,
    failed: bool,
}

impl Writers {
    fn write(&mut self, kind: LogKind, data: &[u8]) {
        let w = match kind {
            LogKind::Stdout => &mut self.stdout,
            LogKind::Stderr => &mut self.stderr,
        };
        if let Err(e) = w.write_all(data)
            && !std::mem::replace(&mut self.failed, true)
        {
            tracing::warn!(error = %e, "writing a container's output to its log file failed; dropping output");
        }
    }
}

/// Follows `container`'s output into `target` until the container is no longer running
/// and its stream has ended, then sets `done`. Any error is logged, never returned: a
/// task whose logs fail still runs.
pub async fn follow(docker: Docker, container: String, run_dir: PathBuf, target: LogTarget, done: watch::Sender<bool>) {
    if let Err(e) = follow_inner(&docker, &container, &run_dir, &target).await {
        tracing::warn!(container = %container, error = %e, "following a container's logs stopped");
    }
    let _ = done.send(true);
}

async fn follow_inner(docker: &Docker, container: &str, run_dir: &Path, target: &LogTarget) -> std::io::Result<()> {
    std::fs::create_dir_all(run_dir)?;
    let _lock = loop {
        if let Some(lock) = try_lock(&lock_path(run_dir))? {
            break lock;
        }
        tokio::time::sleep(LOCK_POLL).await;
    };
    let saved = read_json::<Position>(&position_path(run_dir)).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "unreadable log position; following from the start");
        None
    });
    let mut dedup = Dedup::new(saved);
    let mut writers = Writers {
        stdout: RotatingWriter::open(&target.logs_dir, &log_prefix(&target.task, LogKind::Stdout), target.limits)?,
        stderr: RotatingWriter::open(&target.logs_dir, &log_prefix(&target.task, LogKind::Stderr), target.limits)?,
        failed: false,
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        dedup.reconnect();
        let options =
            LogsOptionsBuilder::new().follow(true).stdout(true).stderr(true).timestamps(true).since(dedup.since_secs());
        let mut stream = docker.logs(container, Some(options.build())).fuse();
        let mut broken = None;
        while let Some(first) = stream.next().await {
            let mut batch = vec![first];
            while batch.len() < BATCH_MAX {
                match stream.next().now_or_never() {
                    Some(Some(item)) => batch.push(item),
                    _ => break,
                }
            }
            let before = dedup.position();
            for item in batch {
                let (kind, message) = match item {
                    Ok(LogOutput::StdOut { message }) => (LogKind::Stdout, message),
                    Ok(LogOutput::StdErr { message }) => (LogKind::Stderr, message),
                    Ok(_) => continue,
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                };
                let (ts, data) = split_timestamp(&message);
                if dedup.admit(ts) {
                    writers.write(kind, data);
                }
            }
            if let Some(pos) = dedup.position()
                && Some(pos) != before
                && let Ok(bytes) = serde_json::to_vec(&pos)
                && let Err(e) = atomic_write_with(&position_path(run_dir), &bytes, false)
            {
                tracing::warn!(error = %e, "saving the log position failed");
            }
            if broken.is_some() {
                break;
            }
        }
        match super::container_state(docker, container).await {
            ContainerState::Running => {
                if let Some(e) = broken {
                    tracing::debug!(container, error = %e, "log stream broke; reconnecting");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
            }
            ContainerState::Unknown(e) => {
                tracing::debug!(container, error = %e, "cannot inspect the container; retrying its logs");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
            }
            ContainerState::Stopped(_) | ContainerState::Gone => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_stripped_and_parsed() {
        let (ts, data) = split_timestamp(b"2026-12-01T05:21:51.500000000Z hello world\n");
        assert_eq!(ts, Some(1_796_102_511_500_000_000));
        assert_eq!(data, b"hello world\n");
        assert_eq!(split_timestamp(b"no timestamp here\n"), (None, b"no timestamp here\n".as_slice()));
        assert_eq!(split_timestamp(b"x"), (None, b"x".as_slice()));
    }

    #[test]
    fn a_resumed_stream_skips_exactly_what_was_written() {
        let mut d = Dedup::new(None);
        d.reconnect();
        assert_eq!(d.since_secs(), 0);
        // Two entries share a timestamp; stderr's third arrives out of order.
        let first: Vec<bool> = [10, 20, 20, 15].iter().map(|t| d.admit(Some(*t))).collect();
        assert_eq!(first, vec![true; 4]);
        assert_eq!(d.position(), Some(Position { ts_nanos: 20, count: 2 }));

        // Docker replays the whole second: everything up to the position is skipped,
        // the new entries after it are written, even one stamped a little earlier.
        d.reconnect();
        let replay: Vec<bool> = [10, 20, 15, 20, 30, 25].iter().map(|t| d.admit(Some(*t))).collect();
        assert_eq!(replay, vec![false, false, false, false, true, true]);
        assert_eq!(d.position(), Some(Position { ts_nanos: 30, count: 1 }));

        // A third entry at the saved timestamp is new.
        let mut d = Dedup::new(Some(Position { ts_nanos: 20, count: 2 }));
        d.reconnect();
        let replay: Vec<bool> = [20, 20, 20].iter().map(|t| d.admit(Some(*t))).collect();
        assert_eq!(replay, vec![false, false, true]);
        assert_eq!(d.position(), Some(Position { ts_nanos: 20, count: 3 }));
    }

    #[test]
    fn since_is_the_positions_whole_second() {
        let d = Dedup::new(Some(Position { ts_nanos: 1_796_102_511_500_000_000, count: 1 }));
        assert_eq!(d.since_secs(), 1_796_102_511);
    }

    #[test]
    fn only_one_holder_of_the_run_dir_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path());
        let held = try_lock(&path).unwrap().expect("first lock");
        assert!(try_lock(&path).unwrap().is_none());
        drop(held);
        assert!(try_lock(&path).unwrap().is_some());
    }
}
