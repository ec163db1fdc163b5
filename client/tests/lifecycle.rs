//! Lifecycle hooks end to end through the client with the mock driver: prestart tasks run
//! before the main tasks (an ephemeral one to completion, a sidecar kept running),
//! poststart tasks after the main tasks started, poststop tasks after everything else
//! stopped; a failing prestart task is restarted per policy and then fails the
//! allocation without the main task ever starting; a stop kills in order; a restarted
//! client does not run finished hooks again. The order is read from the task events the
//! servers receive. No OS processes, so these also run under madsim.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::json;
use stead_client::{Client, ShutdownMode};
use stead_model::{
    AllocClientStatus, AllocDesiredStatus, AllocId, Allocation, Job, JobType, Lifecycle, LifecycleHook, RestartMode,
    Task, TaskState, TaskStateKind,
};

async fn start(dir: &std::path::Path, link: &Arc<FakeLink>) -> stead_client::ClientHandle {
    Client::start(config(dir, &["mock"]), link.clone(), fake_platform(11)).await.expect("client starts")
}

fn hook(name: &str, hook: Option<LifecycleHook>, sidecar: bool, config: serde_json::Value) -> Task {
    Task {
        name: name.to_owned(),
        driver: "mock".to_owned(),
        lifecycle: hook.map(|hook| Lifecycle { hook, sidecar, ..Default::default() }),
        config: serde_json::from_value(config).unwrap(),
        kill_timeout: Some(stead_model::Nanos::from_secs(5)),
        ..Default::default()
    }
}

/// A group of `tasks` (the first one replaced).
fn group_job(id: &str, job_type: JobType, tasks: Vec<Task>) -> Job {
    let mut job = job(id, job_type, "mock", json!({}));
    job.task_groups[0].tasks = tasks;
    job.task_groups[0].restart_policy = Some(restart_policy(1, RestartMode::Fail));
    job.canonicalize();
    job
}

/// The time of the `n`th event of `kind` (0-based), which must exist.
fn at(state: &TaskState, kind: &str, n: usize) -> i64 {
    state
        .events
        .iter()
        .filter(|e| e.event_type == kind)
        .nth(n)
        .unwrap_or_else(|| panic!("no {kind} event #{n} in {:?}", event_types(state)))
        .time
}

fn all_dead(link: &FakeLink, id: &AllocId, tasks: usize) -> Option<Allocation> {
    let a = link.alloc(id);
    (a.task_states.len() == tasks && a.task_states.values().all(|s| s.state == TaskStateKind::Dead)).then_some(a)
}

#[tokio::test]
async fn tasks_start_in_lifecycle_order_and_sidecars_stop_when_the_main_task_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = group_job(
        "order",
        JobType::Batch,
        vec![
            hook("main", None, false, json!({"run_for": "300ms"})),
            hook("init", Some(LifecycleHook::Prestart), false, json!({"run_for": "150ms"})),
            hook("proxy", Some(LifecycleHook::Prestart), true, json!({"run_for": "1h"})),
            hook("after", Some(LifecycleHook::Poststart), false, json!({"run_for": "50ms"})),
            hook("cleanup", Some(LifecycleHook::Poststop), false, json!({"run_for": "50ms"})),
        ],
    );
    let id = AllocId::new("a-order");
    link.put_alloc(alloc(id.as_str(), &job));

    let done = wait_for("every task dead", || all_dead(&link, &id, 5)).await;
    let s = |name: &str| &done.task_states[name];
    assert_eq!(done.client_status, AllocClientStatus::Complete, "{:#?}", done.task_states);
    // The init task ran to completion before the main task started; the sidecar had started.
    assert!(at(s("init"), "Terminated", 0) <= at(s("main"), "Started", 0));
    assert!(at(s("proxy"), "Started", 0) <= at(s("main"), "Started", 0));
    // The poststart task started after the main task.
    assert!(at(s("main"), "Started", 0) <= at(s("after"), "Started", 0));
    // Once the main and the poststart task were done, the sidecar was killed, then the
    // poststop task ran.
    assert!(at(s("main"), "Terminated", 0) <= at(s("proxy"), "Killing", 0));
    assert!(at(s("after"), "Terminated", 0) <= at(s("proxy"), "Killing", 0));
    assert!(at(s("proxy"), "Killed", 0) <= at(s("cleanup"), "Started", 0));
    for name in ["init", "main", "after", "cleanup"] {
        assert_eq!(count_events(s(name), "Started"), 1, "{name} ran once: {:?}", event_types(s(name)));
        assert!(!s(name).failed, "{name}");
    }
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn an_ephemeral_prestart_task_is_not_restarted_after_success_in_a_service_job() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = group_job(
        "svc",
        JobType::Service,
        vec![
            hook("main", None, false, json!({"run_for": "1h"})),
            hook("init", Some(LifecycleHook::Prestart), false, json!({"run_for": "20ms"})),
        ],
    );
    let id = AllocId::new("a-svc");
    link.put_alloc(alloc(id.as_str(), &job));
    let main = wait_task_state(&link, &id, "main", TaskStateKind::Running).await;
    let init = link.task_state(&id, "init").unwrap();
    assert_eq!((init.state.clone(), init.failed, init.restarts), (TaskStateKind::Dead, false, 0));
    assert!(at(&init, "Terminated", 0) <= at(&main, "Started", 0));
    assert_eq!(link.alloc(&id).client_status, AllocClientStatus::Running);
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn a_failing_prestart_task_is_restarted_per_policy_then_fails_the_allocation_and_main_never_starts() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = group_job(
        "initfail",
        JobType::Service,
        vec![
            hook("main", None, false, json!({"run_for": "1h"})),
            hook("init", Some(LifecycleHook::Prestart), false, json!({"run_for": "10ms", "exit_code": 3})),
            hook("cleanup", Some(LifecycleHook::Poststop), false, json!({"run_for": "10ms"})),
        ],
    );
    let id = AllocId::new("a-initfail");
    link.put_alloc(alloc(id.as_str(), &job));

    let done = wait_for("every task dead", || all_dead(&link, &id, 3)).await;
    assert_eq!(done.client_status, AllocClientStatus::Failed);
    let init = &done.task_states["init"];
    assert!(init.failed);
    assert_eq!((init.restarts, count_events(init, "Started")), (1, 2), "one restart allowed: {:?}", event_types(init));
    let main = &done.task_states["main"];
    assert_eq!(count_events(main, "Started"), 0, "{:?}", event_types(main));
    assert!(event_types(main).contains(&"Sibling Task Failed".to_owned()), "{:?}", event_types(main));
    let cleanup = &done.task_states["cleanup"];
    assert_eq!(count_events(cleanup, "Started"), 1, "poststop runs after a failure: {:?}", event_types(cleanup));
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn a_stopped_allocation_kills_main_tasks_before_sidecars_and_then_runs_poststop() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = group_job(
        "stop",
        JobType::Service,
        vec![
            hook("main", None, false, json!({"run_for": "1h", "kill_after": "100ms"})),
            hook("proxy", Some(LifecycleHook::Prestart), true, json!({"run_for": "1h"})),
            hook("shipper", Some(LifecycleHook::Poststart), true, json!({"run_for": "1h"})),
            hook("cleanup", Some(LifecycleHook::Poststop), false, json!({"run_for": "10ms"})),
        ],
    );
    let id = AllocId::new("a-stop");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_task_state(&link, &id, "shipper", TaskStateKind::Running).await;
    assert_eq!(link.task_state(&id, "cleanup").unwrap().state, TaskStateKind::Pending);
    link.set_desired(&id, AllocDesiredStatus::Stop);

    let done = wait_for("every task dead", || all_dead(&link, &id, 4)).await;
    assert_eq!(done.client_status, AllocClientStatus::Complete, "{:#?}", done.task_states);
    let s = |name: &str| &done.task_states[name];
    // The main task took 100 ms to die; the sidecars were killed only after it had.
    assert!(at(s("main"), "Killed", 0) <= at(s("proxy"), "Killing", 0));
    assert!(at(s("main"), "Killed", 0) <= at(s("shipper"), "Killing", 0));
    assert!(at(s("proxy"), "Killed", 0) <= at(s("cleanup"), "Started", 0));
    assert!(at(s("shipper"), "Killed", 0) <= at(s("cleanup"), "Started", 0));
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn a_restarted_client_continues_the_lifecycle_without_running_finished_hooks_again() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = group_job(
        "restart",
        JobType::Batch,
        vec![
            hook("main", None, false, json!({"run_for": "600ms"})),
            hook("init", Some(LifecycleHook::Prestart), false, json!({"run_for": "10ms"})),
            hook("cleanup", Some(LifecycleHook::Poststop), false, json!({"run_for": "10ms"})),
        ],
    );
    let id = AllocId::new("a-restart");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_task_state(&link, &id, "main", TaskStateKind::Running).await;
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;

    let again = start(dir.path(), &link).await;
    let done = wait_for("every task dead", || all_dead(&link, &id, 3)).await;
    assert_eq!(done.client_status, AllocClientStatus::Complete, "{:#?}", done.task_states);
    for name in ["init", "main", "cleanup"] {
        let s = &done.task_states[name];
        assert_eq!(count_events(s, "Started"), 1, "{name}: {:?}", event_types(s));
    }
    again.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn a_stop_interrupted_by_a_client_restart_goes_on_in_order_and_runs_poststop() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = group_job(
        "stop-restart",
        JobType::Service,
        vec![
            hook("main", None, false, json!({"run_for": "1h", "kill_after": "300ms"})),
            hook("init", Some(LifecycleHook::Prestart), false, json!({"run_for": "10ms"})),
            hook("proxy", Some(LifecycleHook::Prestart), true, json!({"run_for": "1h"})),
            hook("cleanup", Some(LifecycleHook::Poststop), false, json!({"run_for": "10ms"})),
        ],
    );
    let id = AllocId::new("a-stop-restart");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_task_state(&link, &id, "main", TaskStateKind::Running).await;
    link.set_desired(&id, AllocDesiredStatus::Stop);
    wait_for("the main task being killed", || link.task_state(&id, "main").filter(|s| count_events(s, "Killing") == 1))
        .await;
    // The client goes away mid-stop (the main task takes 300 ms to die) and comes back.
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
    let again = start(dir.path(), &link).await;

    let done = wait_for("every task dead", || all_dead(&link, &id, 4)).await;
    assert_eq!(done.client_status, AllocClientStatus::Complete, "{:#?}", done.task_states);
    let s = |name: &str| &done.task_states[name];
    assert_eq!(
        count_events(s("main"), "Started"),
        1,
        "the main task never started again: {:?}",
        event_types(s("main"))
    );
    assert_eq!(count_events(s("init"), "Started"), 1, "{:?}", event_types(s("init")));
    assert!(at(s("main"), "Killed", 0) <= at(s("proxy"), "Killing", 0));
    assert_eq!(count_events(s("cleanup"), "Started"), 1, "poststop ran: {:?}", event_types(s("cleanup")));
    again.shutdown(ShutdownMode::LeaveTasksRunning).await;
}
