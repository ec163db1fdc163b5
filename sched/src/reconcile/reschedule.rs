//! The `reschedule` policy as arithmetic: may a failed allocation be replaced, and when.
//!
//! * Eligible when `unlimited`, or when fewer than `attempts` reschedule events of its
//!   tracker fall within `interval` before the failure (`interval` 0: all events count).
//!   `attempts = 0, unlimited = false` disables rescheduling.
//! * The delay follows `delay_function`: `constant` is always `delay`; `exponential` doubles
//!   the previous event's delay; `fibonacci` adds the two previous delays (the first two are
//!   `delay`). Both are capped by `max_delay` (when > 0), and start over at `delay` when the
//!   previous reschedule lies more than `max_delay` before this failure: an allocation that
//!   ran well for a long time is not punished for old failures.
//! * The replacement is due at `failure time + delay`.

use stead_model::{Allocation, DelayFunction, Nanos, RescheduleEvent, ReschedulePolicy, RescheduleTracker};

/// Reschedule events kept in a tracker of an `unlimited` policy (no interval bounds them);
/// the delay functions need at most the last two.
pub const RESCHEDULE_EVENTS_UNLIMITED_MAX: usize = 5;

/// When the allocation stopped running: its latest task event, else its last modification.
pub fn failure_time(alloc: &Allocation) -> i64 {
    alloc
        .task_states
        .values()
        .flat_map(|state| state.events.iter().map(|e| e.time))
        .max()
        .filter(|t| *t > 0)
        .unwrap_or(alloc.modify_time)
}

fn events(tracker: Option<&RescheduleTracker>) -> &[RescheduleEvent] {
    tracker.map(|t| t.events.as_slice()).unwrap_or(&[])
}

/// Whether one more reschedule is allowed for an allocation that failed at `fail_time`.
pub fn is_eligible(policy: &ReschedulePolicy, tracker: Option<&RescheduleTracker>, fail_time: i64) -> bool {
    if policy.unlimited.unwrap_or(false) {
        return true;
    }
    let attempts = policy.attempts.unwrap_or(0);
    if attempts <= 0 {
        return false;
    }
    let interval = policy.interval.unwrap_or(Nanos::ZERO).as_nanos();
    let window_start = if interval > 0 { fail_time.saturating_sub(interval) } else { i64::MIN };
    let recent = events(tracker).iter().filter(|e| e.reschedule_time > window_start).count();
    recent < attempts as usize
}

/// The delay before the next replacement.
pub fn next_delay(policy: &ReschedulePolicy, tracker: Option<&RescheduleTracker>, fail_time: i64) -> Nanos {
    let base = policy.delay.unwrap_or(Nanos::ZERO).as_nanos().max(0);
    let max = policy.max_delay.unwrap_or(Nanos::ZERO).as_nanos();
    let past = events(tracker);
    let last = past.last();
    let start_over = match last {
        None => true,
        Some(e) => max > 0 && fail_time.saturating_sub(e.reschedule_time) > max,
    };
    let raw = match policy.delay_function.as_ref().unwrap_or(&DelayFunction::Constant) {
        _ if start_over => base,
        DelayFunction::Exponential => last.map_or(base, |e| e.delay.as_nanos().max(base).saturating_mul(2)),
        DelayFunction::Fibonacci => match past {
            [.., a, b] => a.delay.as_nanos().max(0).saturating_add(b.delay.as_nanos().max(0)).max(base),
            _ => base,
        },
        _ => base,
    };
    Nanos(if max > 0 { raw.min(max) } else { raw })
}

/// When the replacement of an allocation that failed at `fail_time` is due.
pub fn reschedule_time(policy: &ReschedulePolicy, tracker: Option<&RescheduleTracker>, fail_time: i64) -> i64 {
    fail_time.saturating_add(next_delay(policy, tracker, fail_time).as_nanos())
}

/// The tracker the replacement carries: the failed allocation's events that still matter,
/// plus this reschedule.
pub fn next_tracker(policy: &ReschedulePolicy, failed: &Allocation, now: i64, delay: Nanos) -> RescheduleTracker {
    let past = events(failed.reschedule_tracker.as_ref());
    let interval = policy.interval.unwrap_or(Nanos::ZERO).as_nanos();
    let mut kept: Vec<RescheduleEvent> = if policy.unlimited.unwrap_or(false) || interval <= 0 {
        let skip = past.len().saturating_sub(RESCHEDULE_EVENTS_UNLIMITED_MAX - 1);
        past[skip..].to_vec()
    } else {
        past.iter().filter(|e| e.reschedule_time > now.saturating_sub(interval)).cloned().collect()
    };
    kept.push(RescheduleEvent {
        reschedule_time: now,
        prev_alloc_id: failed.id.clone(),
        prev_node_id: failed.node_id.clone(),
        delay,
        ..RescheduleEvent::default()
    });
    RescheduleTracker { events: kept, ..RescheduleTracker::default() }
}
