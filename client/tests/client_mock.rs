//! The client end to end with the mock driver against an in-memory server link: the
//! registration and heartbeat protocol, allocations started, restarted, stopped, updated
//! in place and destroyed, logs served, and re-attachment after a client crash. No OS
//! processes, so these also run under the madsim simulator.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use serde_json::json;
use stead_client::link::LinkError;
use stead_client::{Client, LogError, LogKind, LogOrigin, LogRequest, ShutdownMode};
use stead_model::{AllocClientStatus, AllocDesiredStatus, AllocId, JobType, RestartMode, Task, TaskStateKind};

async fn start(dir: &std::path::Path, link: &Arc<FakeLink>) -> stead_client::ClientHandle {
    Client::start(config(dir, &["mock", "raw_exec"]), link.clone(), fake_platform(7)).await.expect("client starts")
}

fn logs(alloc: &AllocId, follow: bool) -> LogRequest {
    LogRequest {
        alloc_id: alloc.clone(),
        task: "t".to_owned(),
        kind: LogKind::Stdout,
        origin: LogOrigin::Start,
        offset: 0,
        follow,
    }
}

#[tokio::test]
async fn node_registers_with_its_fingerprint_and_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::with_ttl(Duration::from_millis(200));
    let client = start(dir.path(), &link).await;
    let node = wait_for("a registration", || link.registrations().pop()).await;
    assert_eq!(&node.id, client.node_id());
    assert_eq!(node.attributes.get("driver.mock").map(String::as_str), Some("1"));
    assert_eq!(node.attributes.get("unique.hostname").map(String::as_str), Some("test-host"));
    assert!(node.drivers["mock"].healthy);
    wait_for("two heartbeats", || (link.heartbeats() >= 2).then_some(())).await;
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn node_registers_again_when_the_servers_forget_it_and_keeps_its_identity_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::with_ttl(Duration::from_millis(100));
    link.fail_next_heartbeat(LinkError::NotFound("node purged".to_owned()));
    let client = start(dir.path(), &link).await;
    let id = client.node_id().clone();
    wait_for("a second registration", || (link.registrations().len() >= 2).then_some(())).await;
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;

    let again = start(dir.path(), &link).await;
    assert_eq!(again.node_id(), &id);
    wait_for("a third registration", || (link.registrations().len() >= 3).then_some(())).await;
    assert!(link.registrations().iter().all(|n| n.id == id && !n.secret_id.is_empty()));
    again.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn batch_mock_task_completes_the_allocation_and_its_stdout_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = job("batch", JobType::Batch, "mock", json!({"run_for": "100ms", "stdout_string": "hello mock\n"}));
    let id = AllocId::new("a-batch");
    link.put_alloc(alloc(id.as_str(), &job));

    let done = wait_client_status(&link, &id, AllocClientStatus::Complete).await;
    assert_eq!(done.client_description, "All tasks have completed");
    let state = &done.task_states["t"];
    assert_eq!(state.state, TaskStateKind::Dead);
    assert!(!state.failed && state.finished_at.is_some() && state.started_at.is_some());
    assert_eq!(event_types(state), vec!["Received", "Task Setup", "Started", "Terminated"]);
    assert_eq!(state.events[3].display_message, "Exit Code: 0");

    let frames: Vec<_> = client.logs(logs(&id, false)).expect("logs").collect().await;
    let text: Vec<u8> = frames.into_iter().flat_map(|f| f.expect("frame").data).collect();
    assert_eq!(String::from_utf8_lossy(&text), "hello mock\n");
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn failing_mock_task_is_restarted_per_policy_then_fails_the_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let mut job = job("flaky", JobType::Service, "mock", json!({"run_for": "10ms", "exit_code": 3}));
    job.task_groups[0].tasks[0].restart_policy = Some(restart_policy(2, RestartMode::Fail));
    let id = AllocId::new("a-flaky");
    link.put_alloc(alloc(id.as_str(), &job));

    let failed = wait_client_status(&link, &id, AllocClientStatus::Failed).await;
    assert_eq!(failed.client_description, "Failed tasks");
    let state = &failed.task_states["t"];
    assert!(state.failed);
    assert_eq!(state.restarts, 2);
    assert_eq!(count_events(state, "Started"), 3);
    assert_eq!(count_events(state, "Restarting"), 2);
    let last = state.events.last().unwrap();
    assert_eq!(last.event_type, "Not Restarting");
    assert_eq!(last.display_message, "Exceeded allowed attempts 2 in interval 1h0m0s and mode is \"fail\"");
    assert!(last.fails_task);
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn stopped_allocation_kills_its_mock_task_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = job("svc", JobType::Service, "mock", json!({"run_for": "1h"}));
    let id = AllocId::new("a-stop");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;

    link.set_desired(&id, AllocDesiredStatus::Stop);
    let done = wait_client_status(&link, &id, AllocClientStatus::Complete).await;
    let state = &done.task_states["t"];
    assert!(!state.failed);
    let kinds = event_types(state);
    assert_eq!(&kinds[kinds.len() - 3..], ["Killing", "Terminated", "Killed"]);
    assert_eq!(state.events[kinds.len() - 3].display_message, "Sent interrupt. Waiting 5s before force killing");
    assert_eq!(state.events.last().unwrap().display_message, "Task successfully killed");
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn allocation_gone_from_the_server_is_destroyed_with_its_directories() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = job("gc", JobType::Service, "mock", json!({"run_for": "1h", "stdout_string": "x"}));
    let id = AllocId::new("a-gc");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    let alloc_dir = dir.path().join("alloc").join(id.as_str());
    let state_dir = dir.path().join("client/allocs").join(id.as_str());
    assert!(alloc_dir.join("t/local").is_dir() && alloc_dir.join("alloc/logs/t.stdout.0").is_file());
    assert!(state_dir.join("alloc.json").is_file());

    link.remove_alloc(&id);
    wait_for("the allocation's directories to go", || (!alloc_dir.exists() && !state_dir.exists()).then_some(())).await;
    assert!(matches!(client.logs(logs(&id, false)), Err(LogError::UnknownAlloc(_))));
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn mock_task_reattaches_after_a_client_crash_and_finishes_its_remaining_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = job("long", JobType::Batch, "mock", json!({"run_for": "1500ms", "exit_code": 0}));
    let id = AllocId::new("a-reattach");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    let updates_before = link.updates().len();
    drop(client); // A crash: nothing is stopped.

    let again = start(dir.path(), &link).await;
    let done = wait_client_status(&link, &id, AllocClientStatus::Complete).await;
    assert!(link.updates().len() > updates_before);
    let state = &done.task_states["t"];
    assert_eq!(count_events(state, "Started"), 1, "re-attached, not started again: {:?}", event_types(state));
    assert_eq!(count_events(state, "Received"), 1);
    assert_eq!((state.restarts, state.failed), (0, false));
    again.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn allocation_updates_are_retried_until_the_servers_acknowledge_them() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    // Every push of this allocation happens at its start, so without retries its
    // running state would never arrive.
    link.fail_updates(5);
    let client = start(dir.path(), &link).await;
    let job = job("retry", JobType::Service, "mock", json!({"run_for": "1h"}));
    let id = AllocId::new("a-retry");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn allocation_watch_is_reopened_from_the_last_index_after_it_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = job("w", JobType::Service, "mock", json!({"run_for": "1h"}));
    link.put_alloc(alloc("a-w1", &job));
    wait_client_status(&link, &AllocId::new("a-w1"), AllocClientStatus::Running).await;
    assert_eq!(link.watch_opens(), vec![0]);

    link.break_watches();
    let opens = wait_for("the watch to be reopened", || Some(link.watch_opens()).filter(|o| o.len() >= 2)).await;
    assert!(opens[1] > 0, "reopened from the last index seen, not from scratch: {opens:?}");
    link.put_alloc(alloc("a-w2", &job));
    wait_client_status(&link, &AllocId::new("a-w2"), AllocClientStatus::Running).await;
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn leader_task_death_stops_its_siblings_and_completes_the_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let mut job = job("lead", JobType::Batch, "mock", json!({"run_for": "200ms"}));
    let group = &mut job.task_groups[0];
    group.tasks[0].leader = true;
    let sidecar = Task {
        name: "side".to_owned(),
        config: serde_json::from_value(json!({"run_for": "1h"})).unwrap(),
        ..group.tasks[0].clone()
    };
    group.tasks.push(Task { leader: false, ..sidecar });
    let id = AllocId::new("a-lead");
    link.put_alloc(alloc(id.as_str(), &job));

    let done = wait_client_status(&link, &id, AllocClientStatus::Complete).await;
    let side = &done.task_states["side"];
    assert_eq!(side.state, TaskStateKind::Dead);
    assert!(event_types(side).contains(&"Leader Task Dead".to_owned()), "{:?}", event_types(side));
    assert_eq!(side.events.last().unwrap().event_type, "Killed");
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn failed_task_stops_its_siblings_and_fails_the_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let mut job = job("sib", JobType::Service, "mock", json!({"run_for": "10ms", "exit_code": 1}));
    let group = &mut job.task_groups[0];
    group.tasks[0].restart_policy = Some(restart_policy(0, RestartMode::Fail));
    let other = Task {
        name: "other".to_owned(),
        config: serde_json::from_value(json!({"run_for": "1h"})).unwrap(),
        ..group.tasks[0].clone()
    };
    group.tasks.push(other);
    let id = AllocId::new("a-sib");
    link.put_alloc(alloc(id.as_str(), &job));

    let done = wait_for("both tasks dead", || {
        let a = link.alloc(&id);
        (a.task_states.len() == 2 && a.task_states.values().all(|s| s.state == TaskStateKind::Dead)).then_some(a)
    })
    .await;
    assert_eq!(done.client_status, AllocClientStatus::Failed);
    let other = &done.task_states["other"];
    assert!(!other.failed);
    let sibling = other.events.iter().find(|e| e.event_type == "Sibling Task Failed").expect("sibling event");
    assert_eq!(sibling.display_message, "Task's sibling \"t\" failed");
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn in_place_update_keeps_the_task_running() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = job("inplace", JobType::Service, "mock", json!({"run_for": "1h"}));
    let id = AllocId::new("a-inplace");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;

    let mut v1 = job.clone();
    v1.version = 1;
    v1.job_modify_index = 42;
    v1.meta.insert("release".to_owned(), "2".to_owned());
    let mut updated = link.alloc(&id);
    updated.job_version = 1;
    updated.job = Some(Box::new(v1));
    link.put_alloc(updated);
    let persisted = dir.path().join("client/allocs").join(id.as_str()).join("alloc.json");
    wait_for("the new version to be persisted", || {
        let text = std::fs::read_to_string(&persisted).ok()?;
        text.contains("\"release\"").then_some(())
    })
    .await;
    let state = link.task_state(&id, "t").unwrap();
    assert_eq!(state.state, TaskStateKind::Running);
    assert_eq!(count_events(&state, "Started"), 1);
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn bad_driver_config_gives_a_driver_failure_event_and_fails_the_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = job("bad", JobType::Service, "raw_exec", json!({"args": ["x"]}));
    let id = AllocId::new("a-bad");
    link.put_alloc(alloc(id.as_str(), &job));

    let failed = wait_client_status(&link, &id, AllocClientStatus::Failed).await;
    let state = &failed.task_states["t"];
    let failure = state.events.iter().find(|e| e.event_type == "Driver Failure").expect("driver failure");
    assert_eq!(failure.driver_error, "invalid raw_exec config: \"command\" is required");
    assert_eq!(failure.display_message, failure.driver_error);
    assert_eq!(state.events.last().unwrap().display_message, "Error was unrecoverable");
    assert_eq!(count_events(state, "Started"), 0);

    let typo = job_with_id("typo", json!({"run_for": 1.5}));
    let id = AllocId::new("a-typo");
    link.put_alloc(alloc(id.as_str(), &typo));
    let failed = wait_client_status(&link, &id, AllocClientStatus::Failed).await;
    let failure = failed.task_states["t"].events.iter().find(|e| e.event_type == "Driver Failure").cloned().unwrap();
    assert!(failure.driver_error.contains("\"run_for\" must be a duration"), "{}", failure.driver_error);
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

fn job_with_id(id: &str, config: serde_json::Value) -> stead_model::Job {
    job(id, JobType::Batch, "mock", config)
}

#[tokio::test]
async fn logs_of_unknown_allocations_and_tasks_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let err = client.logs(logs(&AllocId::new("nope"), false)).err().unwrap();
    assert_eq!(err.to_string(), "unknown allocation \"nope\" on this node");

    let job = job("l", JobType::Service, "mock", json!({"run_for": "1h"}));
    let id = AllocId::new("a-logs");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    let err = client.logs(LogRequest { task: "missing".to_owned(), ..logs(&id, false) }).err().unwrap();
    assert_eq!(err.to_string(), "allocation \"a-logs\" has no task \"missing\"");
    // A task that wrote nothing yet: following waits instead of ending.
    let mut follow = client.logs(logs(&id, true)).expect("logs");
    let next = tokio::time::timeout(Duration::from_millis(100), follow.next()).await;
    assert!(next.is_err(), "a followed empty log has no frame yet");
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn start_refuses_unknown_drivers() {
    let dir = tempfile::tempdir().unwrap();
    let err = Client::start(config(dir.path(), &["rkt"]), FakeLink::new(), fake_platform(1)).await.err().unwrap();
    assert!(err.to_string().contains("unknown driver \"rkt\""), "{err}");
}

#[tokio::test]
async fn shutdown_with_stop_tasks_kills_them_and_reports_the_final_state() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = job("svc", JobType::Service, "mock", json!({"run_for": "1h"}));
    let id = AllocId::new("a-shutdown");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    client.shutdown(ShutdownMode::StopTasks).await;
    let after = link.alloc(&id);
    assert_eq!(after.client_status, AllocClientStatus::Complete);
    assert_eq!(after.task_states["t"].events.last().unwrap().event_type, "Killed");
}
