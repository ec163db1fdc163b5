//! Processes by identity: a PID is only the same process if its start time (field 22 of
//! `/proc/<pid>/stat`, clock ticks since boot) is too, because PIDs are reused. Used to
//! re-attach to an executor after a client restart without ever signalling a stranger.

use serde::{Deserialize, Serialize};

/// A process: its PID and when it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    pub start_ticks: u64,
}

/// The fields of `/proc/<pid>/stat` the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    pub pgrp: i32,
    pub session: i32,
    pub start_ticks: u64,
}

/// Parses a `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and
/// may itself contain spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state), so field N is `fields[N - 3]`.
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

pub fn stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The identity of a live process `pid`.
pub fn identify(pid: u32) -> Option<ProcessId> {
    stat(pid).map(|s| ProcessId { pid, start_ticks: s.start_ticks })
}

/// Whether `id` still runs: same PID, same start time, not a zombie. A zombie that is our
/// own child is reaped on the way (its exit is recorded elsewhere).
pub fn is_running(id: ProcessId) -> bool {
    match stat(id.pid) {
        Some(s) if s.start_ticks == id.start_ticks => {
            if matches!(s.state, 'Z' | 'X') {
                reap_if_child(id.pid);
                false
            } else {
                true
            }
        }
        _ => false,
    }
}

/// Collects `pid`'s exit status if it is our child and has exited; otherwise does nothing.
pub fn reap_if_child(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    let mut status = 0;
    // SAFETY: non-blocking waitpid on one PID; ECHILD (not our child) is fine.
    unsafe {
        libc::waitpid(pid, &mut status, libc::WNOHANG);
    }
}

/// Sends `signal` to process group `pgid`. A group that is gone is not an error.
pub fn signal_group(pgid: u32, signal: i32) -> std::io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid).map_err(|_| std::io::Error::other("process group ID out of range"))?;
    if pgid <= 1 {
        // kill(0 or -1, ..) would hit our own group or every process we may signal.
        return Err(std::io::Error::other(format!("refusing to signal process group {pgid}")));
    }
    // SAFETY: plain syscall.
    if unsafe { libc::kill(-pgid, signal) } == 0 {
        return Ok(());
    }
    match std::io::Error::last_os_error() {
        e if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        e => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        let line = "4242 (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(parse_stat(line), Some(ProcStat { state: 'S', pgrp: 4242, session: 4242, start_ticks: 987_654 }));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1"), None);
    }

    #[test]
    fn our_own_process_is_running_and_a_wrong_start_time_is_not() {
        let me = identify(std::process::id()).expect("own stat");
        assert!(is_running(me));
        assert!(!is_running(ProcessId { start_ticks: me.start_ticks + 1, ..me }));
        assert!(!is_running(ProcessId { pid: u32::MAX - 1, start_ticks: 0 }));
    }

    #[test]
    fn signalling_groups_refuses_the_dangerous_ids() {
        assert!(signal_group(0, 0).is_err());
        assert!(signal_group(1, 0).is_err());
    }
}
