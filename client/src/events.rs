//! Task events in Nomad's words, and how each moves a task's state. Pure: the task runner
//! decides what happened, this says how Nomad reports it (`Type`, `DisplayMessage`,
//! `Details`) and what `TaskState` follows (`State`, `Failed`, `Restarts`, times).

use std::time::Duration;

use stead_model::alloc::TASK_EVENTS_MAX;
use stead_model::time::format_rfc3339_nanos;
use stead_model::{Nanos, TaskEvent, TaskState, TaskStateKind};

use crate::driver::ExitResult;

pub const RECEIVED: &str = "Received";
pub const TASK_SETUP: &str = "Task Setup";
pub const STARTED: &str = "Started";
pub const TERMINATED: &str = "Terminated";
pub const RESTARTING: &str = "Restarting";
pub const NOT_RESTARTING: &str = "Not Restarting";
pub const KILLING: &str = "Killing";
pub const KILLED: &str = "Killed";
pub const DRIVER_FAILURE: &str = "Driver Failure";
pub const SETUP_FAILURE: &str = "Setup Failure";
pub const SIBLING_FAILED: &str = "Sibling Task Failed";
pub const LEADER_DEAD: &str = "Leader Task Dead";

/// Nomad's message for the task-directory step.
pub const BUILDING_TASK_DIR: &str = "Building Task Directory";

fn event(kind: &str, now_ns: i64, display: String) -> TaskEvent {
    TaskEvent { event_type: kind.to_owned(), time: now_ns, display_message: display, ..Default::default() }
}

fn detail(e: &mut TaskEvent, key: &str, value: impl ToString) {
    e.details.insert(key.to_owned(), value.to_string());
}

pub fn received(now_ns: i64) -> TaskEvent {
    event(RECEIVED, now_ns, "Task received by client".to_owned())
}

pub fn task_setup(now_ns: i64) -> TaskEvent {
    let mut e = event(TASK_SETUP, now_ns, BUILDING_TASK_DIR.to_owned());
    e.message = BUILDING_TASK_DIR.to_owned();
    detail(&mut e, "message", BUILDING_TASK_DIR);
    e
}

pub fn started(now_ns: i64) -> TaskEvent {
    event(STARTED, now_ns, "Task started by client".to_owned())
}

/// `Exit Code: N[, Signal: S][, Exit Message: "..."]`; the message of an OOM kill is
/// `OOM Killed`, as Nomad's.
pub fn terminated(now_ns: i64, exit: &ExitResult) -> TaskEvent {
    let mut display = format!("Exit Code: {}", exit.exit_code);
    if exit.signal != 0 {
        display.push_str(&format!(", Signal: {}", exit.signal));
    }
    let oom = exit.oom_killed.then(|| "OOM Killed".to_owned());
    let message = exit.err.as_ref().or(oom.as_ref());
    if let Some(err) = message {
        display.push_str(&format!(", Exit Message: {err:?}"));
    }
    let mut e = event(TERMINATED, now_ns, display);
    e.exit_code = exit.exit_code;
    e.signal = exit.signal;
    detail(&mut e, "exit_code", exit.exit_code);
    detail(&mut e, "signal", exit.signal);
    detail(&mut e, "oom_killed", exit.oom_killed);
    if let Some(err) = message {
        e.message = err.clone();
        detail(&mut e, "message", err);
    }
    e
}

/// `Task restarting in 15s`, prefixed with the reason unless it is the ordinary one.
pub fn restarting(now_ns: i64, delay: Duration, reason: &str) -> TaskEvent {
    let delay = Nanos::from_std(delay);
    let when = format!("Task restarting in {delay}");
    let display = if reason.is_empty() || reason == crate::restart::REASON_WITHIN_POLICY {
        when
    } else {
        format!("{reason} - {when}")
    };
    let mut e = event(RESTARTING, now_ns, display);
    e.restart_reason = reason.to_owned();
    e.extra.insert("StartDelay".to_owned(), delay.as_nanos().into());
    detail(&mut e, "restart_reason", reason);
    detail(&mut e, "start_delay", delay.as_nanos());
    e
}

pub fn not_restarting(now_ns: i64, reason: &str, fails_task: bool) -> TaskEvent {
    let display = if reason.is_empty() { "Task exceeded restart policy".to_owned() } else { reason.to_owned() };
    let mut e = event(NOT_RESTARTING, now_ns, display);
    e.restart_reason = reason.to_owned();
    e.fails_task = fails_task;
    detail(&mut e, "restart_reason", reason);
    if fails_task {
        detail(&mut e, "fails_task", true);
    }
    e
}

/// `Sent interrupt. Waiting 5s before force killing`, or the kill's reason.
pub fn killing(now_ns: i64, kill_timeout: Duration, reason: Option<&str>) -> TaskEvent {
    let timeout = Nanos::from_std(kill_timeout);
    let display = match reason {
        Some(r) => format!("Killing task: {r}"),
        None if !kill_timeout.is_zero() => format!("Sent interrupt. Waiting {timeout} before force killing"),
        None => "Sent interrupt".to_owned(),
    };
    let mut e = event(KILLING, now_ns, display);
    e.kill_timeout = timeout;
    detail(&mut e, "kill_timeout", timeout.as_nanos());
    if let Some(r) = reason {
        e.extra.insert("KillReason".to_owned(), r.into());
        detail(&mut e, "kill_reason", r);
    }
    e
}

pub fn killed(now_ns: i64, error: Option<&str>) -> TaskEvent {
    let mut e = event(KILLED, now_ns, error.map_or_else(|| "Task successfully killed".to_owned(), str::to_owned));
    if let Some(err) = error {
        e.extra.insert("KillError".to_owned(), err.into());
        detail(&mut e, "kill_error", err);
    }
    e
}

pub fn driver_failure(now_ns: i64, error: &str, fails_task: bool) -> TaskEvent {
    let display = if error.is_empty() { "Failed to start task".to_owned() } else { error.to_owned() };
    let mut e = event(DRIVER_FAILURE, now_ns, display);
    e.driver_error = error.to_owned();
    e.fails_task = fails_task;
    detail(&mut e, "driver_error", error);
    e
}

pub fn setup_failure(now_ns: i64, error: &str) -> TaskEvent {
    let mut e = event(SETUP_FAILURE, now_ns, error.to_owned());
    e.fails_task = true;
    e.extra.insert("SetupError".to_owned(), error.into());
    detail(&mut e, "setup_error", error);
    detail(&mut e, "fails_task", true);
    e
}

pub fn sibling_failed(now_ns: i64, sibling: &str) -> TaskEvent {
    let mut e = event(SIBLING_FAILED, now_ns, format!("Task's sibling {sibling:?} failed"));
    e.extra.insert("FailedSibling".to_owned(), sibling.into());
    detail(&mut e, "failed_sibling", sibling);
    e
}

pub fn leader_dead(now_ns: i64) -> TaskEvent {
    event(LEADER_DEAD, now_ns, "Leader Task in Group dead".to_owned())
}

/// A task state that has seen nothing yet.
pub fn pending_state() -> TaskState {
    TaskState { state: TaskStateKind::Pending, ..Default::default() }
}

/// Appends `event` (keeping the last [`TASK_EVENTS_MAX`]) and moves the state as Nomad
/// does: `Started` → running; `Restarting` → pending, one more restart; `Killed`,
/// `Not Restarting` and `Setup Failure` → dead; an event that fails the task marks it
/// failed.
pub fn record(state: &mut TaskState, event: TaskEvent) {
    let now = format_rfc3339_nanos(event.time);
    match event.event_type.as_str() {
        STARTED => {
            state.state = TaskStateKind::Running;
            state.started_at = Some(now);
            state.finished_at = None;
        }
        RESTARTING => {
            state.state = TaskStateKind::Pending;
            state.restarts += 1;
            state.last_restart = Some(now);
        }
        KILLED | NOT_RESTARTING | SETUP_FAILURE => {
            state.state = TaskStateKind::Dead;
            state.finished_at = Some(now);
        }
        _ => {
            if state.state.is_unset() {
                state.state = TaskStateKind::Pending;
            }
        }
    }
    if event.fails_task {
        state.failed = true;
    }
    state.events.push(event);
    if state.events.len() > TASK_EVENTS_MAX {
        let extra = state.events.len() - TASK_EVENTS_MAX;
        state.events.drain(..extra);
    }
}

/// The task finished for good without an event of its own (a batch task that exited 0).
pub fn mark_dead(state: &mut TaskState, now_ns: i64) {
    state.state = TaskStateKind::Dead;
    state.finished_at = Some(format_rfc3339_nanos(now_ns));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_messages_are_nomads() {
        assert_eq!(received(0).display_message, "Task received by client");
        assert_eq!(task_setup(0).message, "Building Task Directory");
        assert_eq!(started(0).display_message, "Task started by client");
        assert_eq!(terminated(0, &ExitResult::code(3)).display_message, "Exit Code: 3");
        assert_eq!(
            terminated(0, &ExitResult { exit_code: 0, signal: 9, err: Some("lost".to_owned()), oom_killed: false })
                .display_message,
            "Exit Code: 0, Signal: 9, Exit Message: \"lost\""
        );
        assert_eq!(
            restarting(0, Duration::from_secs(15), crate::restart::REASON_WITHIN_POLICY).display_message,
            "Task restarting in 15s"
        );
        assert_eq!(
            restarting(0, Duration::from_secs(90), crate::restart::REASON_DELAY).display_message,
            "Exceeded allowed attempts, applying a delay - Task restarting in 1m30s"
        );
        assert_eq!(
            killing(0, Duration::from_secs(5), None).display_message,
            "Sent interrupt. Waiting 5s before force killing"
        );
        assert_eq!(
            terminated(0, &ExitResult { exit_code: 137, signal: 9, err: None, oom_killed: true }).display_message,
            "Exit Code: 137, Signal: 9, Exit Message: \"OOM Killed\""
        );
        assert_eq!(killed(0, None).display_message, "Task successfully killed");
        assert_eq!(sibling_failed(0, "db").display_message, "Task's sibling \"db\" failed");
        assert_eq!(driver_failure(0, "bad config", true).display_message, "bad config");
    }

    #[test]
    fn events_move_the_state_like_nomad() {
        let mut s = pending_state();
        record(&mut s, received(1));
        record(&mut s, started(2_000_000_000));
        assert_eq!(s.state, TaskStateKind::Running);
        assert_eq!(s.started_at.as_deref(), Some("1970-01-01T00:00:02Z"));
        record(&mut s, terminated(3, &ExitResult::code(1)));
        assert_eq!(s.state, TaskStateKind::Running, "Terminated alone does not change the state");
        record(&mut s, restarting(4, Duration::from_secs(1), ""));
        assert_eq!((s.state.clone(), s.restarts), (TaskStateKind::Pending, 1));
        assert!(s.last_restart.is_some());
        record(&mut s, not_restarting(5, "Exceeded", true));
        assert_eq!(s.state, TaskStateKind::Dead);
        assert!(s.failed && s.finished_at.is_some());
    }

    #[test]
    fn only_the_last_ten_events_are_kept() {
        let mut s = pending_state();
        for i in 0..15 {
            record(&mut s, terminated(i, &ExitResult::code(0)));
        }
        assert_eq!(s.events.len(), TASK_EVENTS_MAX);
        assert_eq!(s.events[0].time, 5);
    }
}
