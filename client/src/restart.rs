//! The restart policy, purely: after a task exits (or fails to start), restart it, and
//! when? Nomad's semantics (`restart` block, job spec §1.11):
//!
//! * A batch (or sysbatch) task that exits successfully is done, and so is an ephemeral
//!   lifecycle task (a prestart, poststart or poststop task that is not a sidecar). A
//!   service or system task is restarted even after a successful exit: it is meant to run.
//! * `attempts` restarts are allowed per `interval`; the interval starts at the first
//!   restart after the previous interval ended, and the count resets with it.
//! * Within the allowance the task restarts after `delay` (the caller adds up to 25%
//!   jitter, [`jittered`]).
//! * Beyond it, mode `fail` stops restarting and fails the task; mode `delay` waits until
//!   the interval ends and then restarts with a fresh count.
//! * `attempts = 0` means no restarts at all; a start error the driver calls
//!   unrecoverable (bad task configuration) is never retried.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stead_model::{JobType, Nanos, RestartMode, RestartPolicy};

use crate::driver::ExitResult;

/// Nomad's reasons, as they appear in `Restarting` / `Not Restarting` events.
pub const REASON_WITHIN_POLICY: &str = "Restart within policy";
pub const REASON_NO_RESTARTS_ALLOWED: &str = "Policy allows no restarts";
pub const REASON_UNRECOVERABLE: &str = "Error was unrecoverable";
pub const REASON_DELAY: &str = "Exceeded allowed attempts, applying a delay";
pub const REASON_SUCCESS: &str = "Restart unnecessary as task terminated successfully";

/// Restarts counted in the current interval; persisted with the task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartHistory {
    /// When the current interval started (Unix ns); `None` before the first restart.
    pub window_start_ns: Option<i64>,
    /// Restarts decided in it, this one included.
    pub count: u32,
}

/// What happened to the task.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    Exited(ExitResult),
    StartFailed { recoverable: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub enum RestartDecision {
    /// Start again after `delay` (before jitter).
    Restart { delay: Duration, reason: String },
    /// Do not start again; `failed` fails the task (and so the allocation).
    NoRestart { failed: bool, reason: String },
}

/// Decides what follows `outcome`, and the history to keep. Pure.
pub fn decide_restart(
    policy: &RestartPolicy,
    job_type: &JobType,
    ephemeral: bool,
    history: &RestartHistory,
    outcome: &TaskOutcome,
    now_ns: i64,
) -> (RestartDecision, RestartHistory) {
    let runs_once = ephemeral || matches!(job_type, JobType::Batch | JobType::Sysbatch);
    let attempts = policy.attempts.unwrap_or(0).max(0) as u32;
    let interval = policy.interval.unwrap_or(Nanos::ZERO).as_nanos().max(0);
    let delay = policy.delay.and_then(Nanos::to_std).unwrap_or(Duration::ZERO);
    let no = |failed: bool, reason: &str| (RestartDecision::NoRestart { failed, reason: reason.to_owned() }, *history);

    match outcome {
        TaskOutcome::Exited(exit) if exit.successful() && runs_once => return no(false, REASON_SUCCESS),
        TaskOutcome::StartFailed { recoverable: false } => return no(true, REASON_UNRECOVERABLE),
        _ => {}
    }
    if attempts == 0 {
        return no(true, REASON_NO_RESTARTS_ALLOWED);
    }

    let mut next = *history;
    let window_end = next.window_start_ns.map(|start| start.saturating_add(interval));
    if window_end.is_none_or(|end| now_ns > end) {
        next = RestartHistory { window_start_ns: Some(now_ns), count: 0 };
    }
    next.count += 1;
    if next.count <= attempts {
        return (RestartDecision::Restart { delay, reason: REASON_WITHIN_POLICY.to_owned() }, next);
    }
    let interval_text = Nanos(interval);
    if policy.mode.as_ref() == Some(&RestartMode::Delay) {
        // Wait out the interval; the restart after it opens a new one.
        let end = next.window_start_ns.unwrap_or(now_ns).saturating_add(interval);
        let wait = Duration::from_nanos(u64::try_from(end.saturating_sub(now_ns)).unwrap_or(0));
        return (RestartDecision::Restart { delay: wait, reason: REASON_DELAY.to_owned() }, next);
    }
    let reason = format!("Exceeded allowed attempts {attempts} in interval {interval_text} and mode is \"fail\"");
    (RestartDecision::NoRestart { failed: true, reason }, next)
}

/// `delay` plus up to 25% of it, `fraction` in `[0, 1)` choosing how much (Nomad jitters
/// restarts so that tasks failing together do not restart together).
pub fn jittered(delay: Duration, fraction: f64) -> Duration {
    delay + delay.mul_f64(0.25 * fraction.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn policy(attempts: i32, interval_s: i64, delay_s: i64, mode: RestartMode) -> RestartPolicy {
        RestartPolicy {
            attempts: Some(attempts),
            interval: Some(Nanos::from_secs(interval_s)),
            delay: Some(Nanos::from_secs(delay_s)),
            mode: Some(mode),
            ..Default::default()
        }
    }

    fn exit(code: i32) -> TaskOutcome {
        TaskOutcome::Exited(ExitResult { exit_code: code, ..Default::default() })
    }

    /// Runs `outcomes` at the given seconds; returns each decision in short form.
    fn run(policy: &RestartPolicy, job_type: JobType, steps: &[(i64, TaskOutcome)]) -> Vec<String> {
        run_task(policy, job_type, false, steps)
    }

    fn run_task(
        policy: &RestartPolicy,
        job_type: JobType,
        ephemeral: bool,
        steps: &[(i64, TaskOutcome)],
    ) -> Vec<String> {
        let mut history = RestartHistory::default();
        steps
            .iter()
            .map(|(at, outcome)| {
                let (decision, next) = decide_restart(policy, &job_type, ephemeral, &history, outcome, at * S);
                history = next;
                match decision {
                    RestartDecision::Restart { delay, reason } => format!("restart in {}s ({reason})", delay.as_secs()),
                    RestartDecision::NoRestart { failed, reason } => format!("stop failed={failed} ({reason})"),
                }
            })
            .collect()
    }

    #[test]
    fn batch_task_exiting_zero_is_done_and_not_failed() {
        let p = policy(3, 86_400, 15, RestartMode::Fail);
        assert_eq!(run(&p, JobType::Batch, &[(0, exit(0))]), vec![format!("stop failed=false ({REASON_SUCCESS})")]);
        assert_eq!(run(&p, JobType::Sysbatch, &[(0, exit(0))]), vec![format!("stop failed=false ({REASON_SUCCESS})")]);
    }

    #[test]
    fn service_task_exiting_zero_is_restarted() {
        let p = policy(2, 1800, 15, RestartMode::Fail);
        assert_eq!(run(&p, JobType::Service, &[(0, exit(0))]), vec!["restart in 15s (Restart within policy)"]);
    }

    #[test]
    fn an_ephemeral_lifecycle_task_exiting_zero_is_done_even_in_a_service_job_and_a_failure_restarts() {
        let p = policy(2, 1800, 15, RestartMode::Fail);
        let done = run_task(&p, JobType::Service, true, &[(0, exit(0))]);
        assert_eq!(done, vec![format!("stop failed=false ({REASON_SUCCESS})")]);
        let failed = run_task(&p, JobType::Service, true, &[(0, exit(1))]);
        assert_eq!(failed, vec!["restart in 15s (Restart within policy)"]);
    }

    #[test]
    fn failures_within_attempts_restart_after_the_delay_then_fail_mode_fails() {
        let p = policy(2, 1800, 15, RestartMode::Fail);
        let got = run(&p, JobType::Service, &[(0, exit(1)), (20, exit(1)), (40, exit(1))]);
        assert_eq!(
            got,
            vec![
                "restart in 15s (Restart within policy)".to_owned(),
                "restart in 15s (Restart within policy)".to_owned(),
                "stop failed=true (Exceeded allowed attempts 2 in interval 30m0s and mode is \"fail\")".to_owned(),
            ]
        );
    }

    #[test]
    fn delay_mode_waits_out_the_interval_then_starts_a_fresh_count() {
        let p = policy(1, 100, 5, RestartMode::Delay);
        let got = run(&p, JobType::Batch, &[(0, exit(1)), (10, exit(1)), (101, exit(1)), (110, exit(1))]);
        assert_eq!(
            got,
            vec![
                "restart in 5s (Restart within policy)".to_owned(),
                format!("restart in 90s ({REASON_DELAY})"),
                "restart in 5s (Restart within policy)".to_owned(),
                format!("restart in 91s ({REASON_DELAY})"),
            ]
        );
    }

    #[test]
    fn a_new_interval_resets_the_count() {
        let p = policy(1, 60, 1, RestartMode::Fail);
        let got = run(&p, JobType::Service, &[(0, exit(1)), (61, exit(1)), (70, exit(1))]);
        assert_eq!(got[0], "restart in 1s (Restart within policy)");
        assert_eq!(got[1], "restart in 1s (Restart within policy)");
        assert!(got[2].starts_with("stop failed=true (Exceeded allowed attempts 1 in interval 1m0s"), "{}", got[2]);
    }

    #[test]
    fn zero_attempts_never_restart_in_either_mode() {
        for mode in [RestartMode::Fail, RestartMode::Delay] {
            let p = policy(0, 60, 1, mode);
            assert_eq!(
                run(&p, JobType::Service, &[(0, exit(0))]),
                vec![format!("stop failed=true ({REASON_NO_RESTARTS_ALLOWED})")]
            );
        }
        // A successful batch task is still just done.
        assert_eq!(
            run(&policy(0, 60, 1, RestartMode::Fail), JobType::Batch, &[(0, exit(0))])[0],
            format!("stop failed=false ({REASON_SUCCESS})")
        );
    }

    #[test]
    fn unrecoverable_start_errors_fail_at_once_and_recoverable_ones_count_as_attempts() {
        let p = policy(1, 60, 2, RestartMode::Fail);
        let bad = TaskOutcome::StartFailed { recoverable: false };
        assert_eq!(run(&p, JobType::Service, &[(0, bad)]), vec![format!("stop failed=true ({REASON_UNRECOVERABLE})")]);
        let flaky = TaskOutcome::StartFailed { recoverable: true };
        let got = run(&p, JobType::Service, &[(0, flaky.clone()), (5, flaky)]);
        assert_eq!(got[0], "restart in 2s (Restart within policy)");
        assert!(got[1].starts_with("stop failed=true (Exceeded allowed attempts 1"), "{}", got[1]);
    }

    #[test]
    fn signals_and_exit_errors_are_failures_even_with_code_zero() {
        let p = policy(1, 60, 2, RestartMode::Fail);
        let signaled = TaskOutcome::Exited(ExitResult { signal: 9, ..Default::default() });
        let errored = TaskOutcome::Exited(ExitResult { err: Some("lost".to_owned()), ..Default::default() });
        assert_eq!(run(&p, JobType::Batch, &[(0, signaled)])[0], "restart in 2s (Restart within policy)");
        assert_eq!(run(&p, JobType::Batch, &[(0, errored)])[0], "restart in 2s (Restart within policy)");
    }

    #[test]
    fn jitter_adds_at_most_a_quarter() {
        let d = Duration::from_secs(16);
        assert_eq!(jittered(d, 0.0), d);
        assert_eq!(jittered(d, 0.5), Duration::from_secs(18));
        assert!(jittered(d, 0.999_999) < Duration::from_secs(20));
    }
}
