//! The client with the raw_exec driver: real processes through the `stead-executor`
//! binary. A task runs with Nomad's environment and its output is served; a failing task
//! is restarted per policy; stopping kills the whole process group (SIGKILL after the
//! kill timeout if the signal is ignored); a client dropped like a crash and started
//! again re-attaches to the same process; a task whose executor dies is lost, killed and
//! restarted. Real processes, so not under madsim.

#![cfg(not(madsim))]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use serde_json::json;
use stead_client::driver::process;
use stead_client::executor::ExecState;
use stead_client::fingerprint::RealHost;
use stead_client::{Client, ClientHandle, ExecutorCommand, LogKind, LogOrigin, LogRequest, ShutdownMode};
use stead_model::{AllocClientStatus, AllocDesiredStatus, AllocId, Job, JobType, Nanos, RestartMode, TaskStateKind};

async fn start(dir: &Path, link: &Arc<FakeLink>) -> ClientHandle {
    let mut config = config(dir, &["raw_exec"]);
    config.executor = ExecutorCommand { program: env!("CARGO_BIN_EXE_stead-executor").into(), args: vec![] };
    Client::start(config, link.clone(), platform(Arc::new(RealHost), 3)).await.expect("client starts")
}

fn sh(id: &str, job_type: JobType, script: &str) -> Job {
    job(id, job_type, "raw_exec", json!({"command": "/bin/sh", "args": ["-c", script]}))
}

fn data_dir(dir: &Path, alloc: &AllocId) -> PathBuf {
    dir.join("alloc").join(alloc.as_str()).join("alloc/data")
}

/// Whether `pid` is gone (or a zombie nobody reaped yet: it runs no more).
fn gone(pid: u32) -> bool {
    process::stat(pid).is_none_or(|s| matches!(s.state, 'Z' | 'X'))
}

/// The PIDs a task appended to a file, once there are `n`.
async fn pids(file: &Path, n: usize) -> Vec<u32> {
    wait_for(&format!("{n} pids in {}", file.display()), || {
        let text = std::fs::read_to_string(file).ok()?;
        let pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        (pids.len() >= n).then_some(pids)
    })
    .await
}

/// Everything a task wrote to `kind` so far.
async fn read_log(client: &ClientHandle, alloc: &AllocId, kind: LogKind) -> String {
    let request = LogRequest {
        alloc_id: alloc.clone(),
        task: "t".to_owned(),
        kind,
        origin: LogOrigin::Start,
        offset: 0,
        follow: false,
    };
    let frames: Vec<_> = client.logs(request).expect("logs").collect().await;
    String::from_utf8_lossy(&frames.into_iter().flat_map(|f| f.expect("frame").data).collect::<Vec<u8>>()).into_owned()
}

async fn wait_log(client: &ClientHandle, alloc: &AllocId, kind: LogKind, needle: &str) -> String {
    let mut waited = Duration::ZERO;
    loop {
        let text = read_log(client, alloc, kind).await;
        if text.contains(needle) {
            return text;
        }
        assert!(waited < DEADLINE, "no {needle:?} in the {kind:?} log: {text:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
}

#[tokio::test]
async fn raw_exec_task_runs_with_nomads_environment_in_its_own_session_and_its_output_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = sh(
        "web",
        JobType::Service,
        "echo hello; echo \"alloc=$NOMAD_ALLOC_ID task=$NOMAD_TASK_NAME dir=$NOMAD_TASK_DIR\"; \
         echo $$ > \"$NOMAD_ALLOC_DIR/data/pid\"; echo oops >&2; exec sleep 30",
    );
    let id = AllocId::new("0b7a41c2-7f1e-4c55-9f3c-6a0d5b1e2c3d");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;

    let stdout = wait_log(&client, &id, LogKind::Stdout, "task=").await;
    let task_dir = dir.path().join("alloc").join(id.as_str()).join("t/local");
    assert!(stdout.starts_with("hello\n"), "{stdout:?}");
    assert!(stdout.contains(&format!("alloc={id} task=t dir={}", task_dir.display())), "{stdout:?}");
    assert_eq!(wait_log(&client, &id, LogKind::Stderr, "oops").await, "oops\n");

    // The task is in a session of its own (the executor's), not the test's.
    let pid = pids(&data_dir(dir.path(), &id).join("pid"), 1).await[0];
    let ours = process::stat(std::process::id()).unwrap();
    let task = process::stat(pid).expect("task runs");
    assert_ne!(task.session, ours.session);
    assert_eq!(task.pgrp, pid as i32, "the task leads its own process group");

    client.shutdown(ShutdownMode::StopTasks).await;
    assert!(gone(pid));
}

#[tokio::test]
async fn failing_raw_exec_task_is_restarted_per_policy_then_fails_the_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let mut job = sh("fail", JobType::Batch, "exit 3");
    job.task_groups[0].tasks[0].restart_policy = Some(restart_policy(2, RestartMode::Fail));
    let id = AllocId::new("a-fail");
    link.put_alloc(alloc(id.as_str(), &job));

    let failed = wait_client_status(&link, &id, AllocClientStatus::Failed).await;
    let state = &failed.task_states["t"];
    assert!(state.failed && state.restarts == 2);
    assert_eq!(count_events(state, "Started"), 3);
    let exits: Vec<i32> = state.events.iter().filter(|e| e.event_type == "Terminated").map(|e| e.exit_code).collect();
    assert_eq!(exits, vec![3, 3, 3]);
    assert_eq!(state.events.last().unwrap().event_type, "Not Restarting");
    client.shutdown(ShutdownMode::StopTasks).await;
}

#[tokio::test]
async fn command_that_does_not_exist_is_a_driver_failure_that_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = job("nocmd", JobType::Service, "raw_exec", json!({"command": "/nonexistent/binary"}));
    let id = AllocId::new("a-nocmd");
    link.put_alloc(alloc(id.as_str(), &job));
    let failed = wait_client_status(&link, &id, AllocClientStatus::Failed).await;
    let state = &failed.task_states["t"];
    let failure = state.events.iter().find(|e| e.event_type == "Driver Failure").expect("driver failure");
    assert!(
        failure.driver_error.contains("failed to launch command \"/nonexistent/binary\""),
        "{}",
        failure.driver_error
    );
    assert_eq!(state.restarts, 0);
    client.shutdown(ShutdownMode::StopTasks).await;
}

#[tokio::test]
async fn stopped_allocation_kills_the_tasks_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    // A background child: non-interactive shells start it ignoring SIGINT, so only the
    // executor's group kill after the shell's exit ends it.
    let job = sh(
        "stop",
        JobType::Service,
        "echo $$ >> \"$NOMAD_ALLOC_DIR/data/pids\"; sleep 300 & echo $! >> \"$NOMAD_ALLOC_DIR/data/pids\"; wait",
    );
    let id = AllocId::new("a-stop");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    let pids = pids(&data_dir(dir.path(), &id).join("pids"), 2).await;
    assert!(pids.iter().all(|p| !gone(*p)));

    link.set_desired(&id, AllocDesiredStatus::Stop);
    let done = wait_client_status(&link, &id, AllocClientStatus::Complete).await;
    assert_eq!(done.task_states["t"].events.last().unwrap().event_type, "Killed");
    wait_for("both processes to be gone", || pids.iter().all(|p| gone(*p)).then_some(())).await;
    client.shutdown(ShutdownMode::StopTasks).await;
}

#[tokio::test]
async fn task_ignoring_its_kill_signal_is_sigkilled_after_the_kill_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let mut job =
        sh("stubborn", JobType::Service, "trap '' INT; echo $$ > \"$NOMAD_ALLOC_DIR/data/pid\"; exec sleep 300");
    job.task_groups[0].tasks[0].kill_timeout = Some(Nanos::from_millis(300));
    let id = AllocId::new("a-stubborn");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    let pid = pids(&data_dir(dir.path(), &id).join("pid"), 1).await[0];

    link.set_desired(&id, AllocDesiredStatus::Stop);
    let done = wait_client_status(&link, &id, AllocClientStatus::Complete).await;
    let state = &done.task_states["t"];
    let killing = state.events.iter().find(|e| e.event_type == "Killing").unwrap();
    assert_eq!(killing.kill_timeout, Nanos::from_millis(300));
    let exit = state.events.iter().rev().find(|e| e.event_type == "Terminated").unwrap();
    assert_eq!(exit.signal, libc::SIGKILL);
    assert!(gone(pid));
    client.shutdown(ShutdownMode::StopTasks).await;
}

#[tokio::test]
async fn client_dropped_with_a_running_task_reattaches_to_the_same_process_and_reports_its_exit() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let node_id = client.node_id().clone();
    let mut job = sh(
        "survivor",
        JobType::Batch,
        "echo $$ >> \"$NOMAD_ALLOC_DIR/data/pids\"; \
         while [ ! -e \"$NOMAD_ALLOC_DIR/data/stop\" ]; do sleep 0.05; done; exit 7",
    );
    job.task_groups[0].tasks[0].restart_policy = Some(restart_policy(0, RestartMode::Fail));
    let id = AllocId::new("a-survivor");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    let data = data_dir(dir.path(), &id);
    let pid = pids(&data.join("pids"), 1).await[0];

    drop(client); // A crash: nothing is stopped.
    assert!(!gone(pid), "the task outlives its client");
    let updates_before = link.updates().len();

    let again = start(dir.path(), &link).await;
    assert_eq!(again.node_id(), &node_id);
    // The new client has restored and reported the allocation before the task ends.
    wait_for("the restarted client to report", || (link.updates().len() > updates_before).then_some(())).await;
    assert!(!gone(pid));
    std::fs::write(data.join("stop"), b"").unwrap();

    let failed = wait_client_status(&link, &id, AllocClientStatus::Failed).await;
    let state = &failed.task_states["t"];
    let exit = state.events.iter().find(|e| e.event_type == "Terminated").expect("exit reported");
    assert_eq!(exit.exit_code, 7);
    assert_eq!(count_events(state, "Started"), 1, "{:?}", event_types(state));
    assert_eq!(pids(&data.join("pids"), 1).await, vec![pid], "the task never started twice");
    assert!(gone(pid));
    again.shutdown(ShutdownMode::StopTasks).await;
}

#[tokio::test]
async fn allocation_the_servers_dropped_while_the_client_was_down_is_killed_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let job = sh("orphan", JobType::Service, "echo $$ > \"$NOMAD_ALLOC_DIR/data/pid\"; exec sleep 300");
    let id = AllocId::new("a-orphan");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    let pid = pids(&data_dir(dir.path(), &id).join("pid"), 1).await[0];
    drop(client);

    link.remove_alloc(&id);
    let again = start(dir.path(), &link).await;
    wait_for("the task to be killed", || gone(pid).then_some(())).await;
    let alloc_dir = dir.path().join("alloc").join(id.as_str());
    wait_for("the allocation directory to go", || (!alloc_dir.exists()).then_some(())).await;
    again.shutdown(ShutdownMode::StopTasks).await;
}

#[tokio::test]
async fn task_whose_executor_dies_is_lost_killed_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let mut job = sh("lost", JobType::Service, "echo $$ >> \"$NOMAD_ALLOC_DIR/data/pids\"; exec sleep 300");
    job.task_groups[0].tasks[0].restart_policy = Some(restart_policy(1, RestartMode::Fail));
    let id = AllocId::new("a-lost");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    let pids_file = data_dir(dir.path(), &id).join("pids");
    let first = pids(&pids_file, 1).await[0];

    let state_file = dir.path().join("client/allocs").join(id.as_str()).join("run/t-1/state.json");
    let state: ExecState = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(state.task.pid, first);
    // SAFETY: plain syscall on the executor this test's client started.
    assert_eq!(unsafe { libc::kill(state.executor.pid as i32, libc::SIGKILL) }, 0);

    let restarted = pids(&pids_file, 2).await;
    wait_for("the lost task's process to be killed", || gone(first).then_some(())).await;
    let task = wait_task_state(&link, &id, "t", TaskStateKind::Running).await;
    let lost = task.events.iter().find(|e| e.event_type == "Terminated").expect("lost task reported");
    assert!(lost.message.contains("task lost"), "{}", lost.message);
    assert_eq!(task.restarts, 1);
    assert_ne!(restarted[1], first);
    client.shutdown(ShutdownMode::StopTasks).await;
}
