//! The client with the exec driver against the real kernel, through the `stead-executor`
//! binary: a task is PID 1 of its own pid namespace, chrooted into its task directory
//! with its own host name; it is OOM-killed at its memory limit and that is reported;
//! its CPU shares are written; stopping SIGKILLs a PID 1 that ignores the signal and
//! leaves neither mounts nor cgroups; a restarted client re-attaches; bad config is a
//! driver failure. Needs root, namespaces and cgroups: elsewhere the tests say why and
//! return, except on CI (`CI=true`), where that is a failure.

#![cfg(not(madsim))]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use stead_client::driver::cgroup::{self, Hierarchy};
use stead_client::driver::exec::ExecDriver;
use stead_client::driver::{Driver, process};
use stead_client::executor::ExecState;
use stead_client::fingerprint::RealHost;
use stead_client::{Client, ClientHandle, ExecutorCommand, ShutdownMode};
use stead_model::{
    AllocClientStatus, AllocDesiredStatus, AllocId, Allocation, Job, JobType, Nanos, Resources, RestartMode, TaskEvent,
    TaskStateKind,
};

fn executor() -> ExecutorCommand {
    ExecutorCommand { program: env!("CARGO_BIN_EXE_stead-executor").into(), args: vec![] }
}

/// Whether the exec driver can isolate tasks here; if not, says why (and fails on CI).
fn isolation_available() -> bool {
    let driver = ExecDriver::new(executor(), Duration::from_millis(20), Default::default());
    let info = driver.fingerprint(0);
    if info.healthy {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the exec driver cannot isolate tasks on this CI machine: {}",
        info.health_description
    );
    eprintln!("skipping: {}", info.health_description);
    false
}

async fn start(dir: &Path, link: &Arc<FakeLink>) -> ClientHandle {
    let mut config = config(dir, &["exec"]);
    config.executor = executor();
    Client::start(config, link.clone(), platform(Arc::new(RealHost), 5)).await.expect("client starts")
}

/// A data dir, a server and a client with the exec driver, if it can isolate here.
async fn set_up() -> Option<(tempfile::TempDir, Arc<FakeLink>, ClientHandle)> {
    if !isolation_available() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    Some((dir, link, client))
}

fn sh(id: &str, job_type: JobType, script: &str) -> Job {
    job(id, job_type, "exec", json!({"command": "/bin/sh", "args": ["-c", script]}))
}

fn with_resources(mut job: Job, cpu: i32, memory_mb: i32) -> Job {
    job.task_groups[0].tasks[0].resources =
        Some(Resources { cpu: Some(cpu), memory_mb: Some(memory_mb), ..Default::default() });
    job
}

/// An allocation ID unique to this test process: cgroups are per allocation and
/// machine-wide, so two runs of these tests at once must not share one.
fn unique_id(name: &str) -> AllocId {
    AllocId::new(format!("{:08x}-{name}", std::process::id()))
}

fn alloc_dir(dir: &Path, alloc: &AllocId) -> PathBuf {
    dir.join("alloc").join(alloc.as_str())
}

fn stdout(dir: &Path, alloc: &AllocId) -> String {
    std::fs::read_to_string(alloc_dir(dir, alloc).join("alloc/logs/t.stdout.0")).unwrap_or_default()
}

/// The executor's report of the current attempt: the task's host PID.
async fn task_pid(dir: &Path, alloc: &AllocId, attempt: u32) -> u32 {
    let file = dir.join("client/allocs").join(alloc.as_str()).join(format!("run/t-{attempt}/state.json"));
    wait_for(&format!("{}", file.display()), || {
        let state: ExecState = serde_json::from_slice(&std::fs::read(&file).ok()?).ok()?;
        Some(state.task.pid)
    })
    .await
}

fn gone(pid: u32) -> bool {
    process::stat(pid).is_none_or(|s| matches!(s.state, 'Z' | 'X'))
}

fn hierarchy() -> Hierarchy {
    cgroup::probe(Path::new(cgroup::CGROUP_ROOT)).usable().expect("checked by isolation_available")
}

/// The task's cgroup directories (one per controller on v1).
fn cgroup_dirs(alloc: &AllocId) -> Vec<PathBuf> {
    let name = format!("{alloc}.t");
    match hierarchy() {
        Hierarchy::V2 { root, .. } => vec![root.join(cgroup::PARENT).join(name)],
        Hierarchy::V1 { memory, cpu, .. } => {
            vec![memory.join(cgroup::PARENT).join(&name), cpu.join(cgroup::PARENT).join(name)]
        }
    }
}

fn assert_cgroups_removed(dirs: &[PathBuf]) {
    for d in dirs {
        assert!(!d.exists(), "{} was removed", d.display());
    }
}

/// Host mount points at or below `dir`, from `mountinfo` (field 5).
fn mounts_below(mountinfo: &str, dir: &Path) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|point| Path::new(point).starts_with(dir))
        .map(str::to_owned)
        .collect()
}

fn host_mounts_below(dir: &Path) -> Vec<String> {
    mounts_below(&std::fs::read_to_string("/proc/self/mountinfo").unwrap(), dir)
}

fn terminated(alloc: &Allocation) -> Vec<&TaskEvent> {
    alloc.task_states["t"].events.iter().filter(|e| e.event_type == "Terminated").collect()
}

#[tokio::test]
async fn exec_task_cannot_set_kernel_knobs_use_device_nodes_or_aim_its_logs_at_host_files() {
    let Some((dir, link, client)) = set_up().await else { return };
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, b"host data\n").unwrap();
    let script = format!(
        "if [ -e /alloc/data/ran ]; then echo second attempt; exit 0; fi; touch /alloc/data/ran; \
         echo 1 > /proc/sys/vm/overcommit_ratio 2>/dev/null && echo sysctl=written || echo sysctl=refused; \
         [ -s /proc/kcore ] && echo kcore=visible || echo kcore=hidden; \
         mknod /tmp/disk b 8 0 2>/dev/null; head -c1 /tmp/disk >/dev/null 2>&1 && echo disk=opened || echo disk=refused; \
         mknod /dev/evil c 1 3 2>/dev/null && echo dev=writable || echo dev=read-only; \
         ln -s {victim} /alloc/logs/t.stdout.5; echo planted; exit 1",
        victim = victim.display(),
    );
    let mut job = sh("escape", JobType::Batch, &script);
    job.task_groups[0].tasks[0].restart_policy = Some(restart_policy(1, RestartMode::Fail));
    let id = unique_id("escape");
    link.put_alloc(alloc(id.as_str(), &job));
    let done = wait_client_status(&link, &id, AllocClientStatus::Failed).await;

    let out = stdout(dir.path(), &id);
    for expected in ["sysctl=refused", "kcore=hidden", "disk=refused", "dev=read-only", "planted"] {
        assert!(out.lines().any(|l| l == expected), "{expected} in {out:?}");
    }
    // The second attempt would have appended to the planted link: it refuses to.
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host data\n", "the host file is untouched");
    let events = &done.task_states["t"].events;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "Driver Failure" && e.display_message.contains("cannot open the stdout log")),
        "{events:#?}"
    );
    client.shutdown(ShutdownMode::StopTasks).await;
}

#[tokio::test]
async fn exec_task_is_pid_1_of_its_own_namespace_chrooted_in_its_task_dir_with_its_own_hostname() {
    let Some((dir, link, client)) = set_up().await else { return };
    // A host file outside the data dir: the task must not see it.
    let outside = tempfile::tempdir().unwrap();
    let marker = outside.path().join("marker");
    std::fs::write(&marker, b"host").unwrap();
    let me = std::process::id();
    let script = format!(
        "echo pid=$$; echo procs=$(ls /proc | grep -c '^[0-9][0-9]*$'); \
         test -e /proc/{me} && echo test_process=visible || echo test_process=absent; \
         test -e {marker} && echo marker=visible || echo marker=absent; \
         test -e {data} && echo data_dir=visible || echo data_dir=absent; \
         for d in /local /alloc /secrets /tmp; do test -d $d && echo dir=$d; done; \
         echo hostname=$(cat /proc/sys/kernel/hostname); \
         echo env=$NOMAD_TASK_DIR,$NOMAD_ALLOC_DIR,$NOMAD_SECRETS_DIR path=$PATH; \
         echo cargo=${{CARGO_MANIFEST_DIR:-unset}}; \
         echo from-task > /alloc/data/out; echo done",
        marker = marker.display(),
        data = dir.path().display(),
    );
    let mut job = sh("iso", JobType::Batch, &script);
    job.task_groups[0].tasks[0].restart_policy = Some(restart_policy(0, RestartMode::Fail));
    let id = unique_id("iso");
    link.put_alloc(alloc(id.as_str(), &job));
    let done = wait_client_status(&link, &id, AllocClientStatus::Complete).await;
    let out = stdout(dir.path(), &id);
    assert!(out.ends_with("done\n"), "{out:?}\n{:?}", done.task_states["t"].events);

    let line = |key: &str| {
        out.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("no {key}= in {out:?}"))
    };
    assert_eq!(line("pid"), "1", "the task is PID 1 of its pid namespace");
    let procs: u32 = line("procs").parse().unwrap();
    assert!((1..=5).contains(&procs), "only the task's own processes are in /proc: {procs}");
    assert_eq!(line("test_process"), "absent", "host PIDs are not visible");
    assert_eq!(line("marker"), "absent", "host files outside chroot_env are not visible");
    assert_eq!(line("data_dir"), "absent");
    let dirs: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("dir=")).collect();
    assert_eq!(dirs, ["/local", "/alloc", "/secrets", "/tmp"]);
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(line("hostname"), format!("t-{:08x}", std::process::id()));
    assert_ne!(line("hostname"), host_name.trim());
    assert!(out.contains("env=/local,/alloc,/secrets path=/usr/local/sbin:"), "{out:?}");
    assert_eq!(line("cargo"), "unset", "the host environment is not inherited");
    let shared = std::fs::read_to_string(alloc_dir(dir.path(), &id).join("alloc/data/out")).unwrap();
    assert_eq!(shared, "from-task\n", "/alloc is the allocation directory");
    assert_eq!(host_mounts_below(dir.path()), Vec::<String>::new());
    client.shutdown(ShutdownMode::StopTasks).await;
}

#[tokio::test]
async fn exec_task_over_its_memory_limit_is_oom_killed_reported_and_restarted_per_policy() {
    let Some((_dir, link, client)) = set_up().await else { return };
    let mut job =
        with_resources(sh("oom", JobType::Batch, "s=0123456789abcdef; while true; do s=\"$s$s\"; done"), 100, 32);
    job.task_groups[0].tasks[0].restart_policy = Some(restart_policy(1, RestartMode::Fail));
    let id = unique_id("oom");
    link.put_alloc(alloc(id.as_str(), &job));

    let failed = wait_client_status(&link, &id, AllocClientStatus::Failed).await;
    let exits = terminated(&failed);
    assert_eq!(exits.len(), 2, "the restart policy allowed one more try: {:?}", event_types(&failed.task_states["t"]));
    for exit in exits {
        assert_eq!(exit.details.get("oom_killed").map(String::as_str), Some("true"), "{exit:?}");
        assert_eq!(exit.signal, libc::SIGKILL);
        assert!(exit.display_message.ends_with("Exit Message: \"OOM Killed\""), "{}", exit.display_message);
    }
    assert_eq!(failed.task_states["t"].restarts, 1);
    assert_cgroups_removed(&cgroup_dirs(&id));
    client.shutdown(ShutdownMode::StopTasks).await;
}

#[tokio::test]
async fn exec_task_runs_in_a_cgroup_with_its_cpu_shares_and_memory_limit_and_the_executor_does_not() {
    let Some((dir, link, client)) = set_up().await else { return };
    let mut job = with_resources(sh("cpu", JobType::Service, "exec sleep 300"), 250, 64);
    job.task_groups[0].tasks[0].kill_timeout = Some(Nanos::from_millis(100));
    let id = unique_id("cpu");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    let pid = task_pid(dir.path(), &id, 1).await;

    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap().trim().to_owned();
    let dirs = cgroup_dirs(&id);
    match hierarchy() {
        Hierarchy::V2 { .. } => {
            assert_eq!(read(&dirs[0], "cpu.weight"), cgroup::cpu_weight(250).to_string());
            assert_eq!(read(&dirs[0], "memory.max"), (64 << 20).to_string());
        }
        Hierarchy::V1 { .. } => {
            assert_eq!(read(&dirs[0], "memory.limit_in_bytes"), (64 << 20).to_string());
            assert_eq!(read(&dirs[1], "cpu.shares"), "250");
        }
    }
    for d in &dirs {
        let procs = read(d, "cgroup.procs");
        let members: Vec<&str> = procs.lines().collect();
        assert_eq!(members, [pid.to_string()], "{}: the task, not its executor", d.display());
    }

    link.set_desired(&id, AllocDesiredStatus::Stop);
    wait_client_status(&link, &id, AllocClientStatus::Complete).await;
    assert_cgroups_removed(&dirs);
    client.shutdown(ShutdownMode::StopTasks).await;
}

#[tokio::test]
async fn stopping_an_exec_task_sigkills_its_pid_1_after_the_kill_timeout_and_leaves_no_mounts_or_cgroups() {
    let Some((dir, link, client)) = set_up().await else { return };
    // `sleep` as PID 1 has no SIGINT handler: the kernel drops the kill signal.
    let mut job = sh("stop", JobType::Service, "sleep 300 & exec sleep 300");
    job.task_groups[0].tasks[0].kill_timeout = Some(Nanos::from_millis(300));
    let id = unique_id("stop");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    let pid = task_pid(dir.path(), &id, 1).await;

    // The mounts exist, in the task's mount namespace only (its mount points are
    // relative to its root).
    let theirs = wait_for("the task's mounts", || std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()).await;
    let points = mounts_below(&theirs, Path::new("/"));
    for point in ["/", "/usr", "/alloc", "/proc", "/dev", "/dev/shm"] {
        assert!(points.iter().any(|p| p == point), "{point} in {points:?}");
    }
    assert_eq!(host_mounts_below(dir.path()), Vec::<String>::new(), "no mount reaches the host");
    let cgroups = cgroup_dirs(&id);
    assert!(cgroups.iter().all(|d| d.exists()));

    link.set_desired(&id, AllocDesiredStatus::Stop);
    let done = wait_client_status(&link, &id, AllocClientStatus::Complete).await;
    let state = &done.task_states["t"];
    let killing = state.events.iter().find(|e| e.event_type == "Killing").expect("killing event");
    assert_eq!(killing.kill_timeout, Nanos::from_millis(300));
    assert_eq!(terminated(&done).last().expect("exit").signal, libc::SIGKILL);
    assert_eq!(state.events.last().unwrap().event_type, "Killed");
    assert!(gone(pid));
    assert_eq!(host_mounts_below(dir.path()), Vec::<String>::new());
    assert_cgroups_removed(&cgroups);
    client.shutdown(ShutdownMode::StopTasks).await;
}

#[tokio::test]
async fn client_dropped_with_a_running_exec_task_reattaches_to_it_and_reports_its_exit() {
    let Some((dir, link, client)) = set_up().await else { return };
    let mut job = sh("survivor", JobType::Batch, "while [ ! -e /alloc/data/stop ]; do sleep 0.05; done; exit 7");
    job.task_groups[0].tasks[0].restart_policy = Some(restart_policy(0, RestartMode::Fail));
    let id = unique_id("survivor");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    let pid = task_pid(dir.path(), &id, 1).await;

    drop(client); // A crash: nothing is stopped.
    assert!(!gone(pid), "the task outlives its client");
    let updates_before = link.updates().len();
    let again = start(dir.path(), &link).await;
    wait_for("the restarted client to report", || (link.updates().len() > updates_before).then_some(())).await;
    assert!(!gone(pid));
    std::fs::write(alloc_dir(dir.path(), &id).join("alloc/data/stop"), b"").unwrap();

    let failed = wait_client_status(&link, &id, AllocClientStatus::Failed).await;
    let state = &failed.task_states["t"];
    assert_eq!(terminated(&failed).iter().map(|e| e.exit_code).collect::<Vec<_>>(), [7]);
    assert_eq!(count_events(state, "Started"), 1, "{:?}", event_types(state));
    assert!(gone(pid));
    assert_cgroups_removed(&cgroup_dirs(&id));
    again.shutdown(ShutdownMode::StopTasks).await;
}

/// No isolation is needed to reject a config: this runs everywhere.
#[tokio::test]
async fn unknown_config_key_and_host_ipc_mode_are_driver_failures_that_are_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start(dir.path(), &link).await;
    let cases = [
        (
            "a-unknown",
            json!({"command": "/bin/true", "image": "busybox"}),
            "unknown key \"image\" (exec accepts: command",
        ),
        ("a-ipc", json!({"command": "/bin/true", "ipc_mode": "host"}), "ipc_mode = \"host\" is not supported"),
    ];
    for (id, config, _) in &cases {
        link.put_alloc(alloc(id, &job(id, JobType::Service, "exec", config.clone())));
    }
    for (id, _, wants) in &cases {
        let failed = wait_client_status(&link, &AllocId::new(*id), AllocClientStatus::Failed).await;
        let state = &failed.task_states["t"];
        let failure = state.events.iter().find(|e| e.event_type == "Driver Failure").expect("driver failure");
        assert!(failure.driver_error.contains(wants), "{id}: {}", failure.driver_error);
        assert_eq!((state.restarts, state.state.clone()), (0, TaskStateKind::Dead));
    }
    client.shutdown(ShutdownMode::StopTasks).await;
}

#[tokio::test]
async fn exec_start_failures_in_the_chroot_are_driver_failures_that_leave_no_cgroup() {
    let Some((_dir, link, client)) = set_up().await else { return };
    let cases = [
        ("nocmd", json!({"command": "/nonexistent/binary"}), "failed to launch command \"/nonexistent/binary\""),
        (
            "nowd",
            json!({"command": "/bin/true", "work_dir": "/nonexistent"}),
            "failed to isolate the task: changing to the working directory /nonexistent: No such file",
        ),
    ];
    for (name, config, _) in &cases {
        let id = unique_id(name);
        link.put_alloc(alloc(id.as_str(), &job(name, JobType::Service, "exec", config.clone())));
    }
    for (name, _, wants) in &cases {
        let id = unique_id(name);
        let failed = wait_client_status(&link, &id, AllocClientStatus::Failed).await;
        let state = &failed.task_states["t"];
        let failure = state.events.iter().find(|e| e.event_type == "Driver Failure").expect("driver failure");
        assert!(failure.driver_error.contains(wants), "{id}: {}", failure.driver_error);
        assert_eq!(state.restarts, 0);
        assert_cgroups_removed(&cgroup_dirs(&id));
    }
    client.shutdown(ShutdownMode::StopTasks).await;
}

#[tokio::test]
async fn exec_task_whose_executor_dies_is_lost_killed_with_its_namespace_and_restarted() {
    let Some((dir, link, client)) = set_up().await else { return };
    let mut job = sh("lost", JobType::Service, "sleep 300 & exec sleep 300");
    job.task_groups[0].tasks[0].restart_policy = Some(restart_policy(1, RestartMode::Fail));
    job.task_groups[0].tasks[0].kill_timeout = Some(Nanos::from_millis(100));
    let id = unique_id("lost");
    link.put_alloc(alloc(id.as_str(), &job));
    wait_client_status(&link, &id, AllocClientStatus::Running).await;
    let first = task_pid(dir.path(), &id, 1).await;
    let state_file = dir.path().join("client/allocs").join(id.as_str()).join("run/t-1/state.json");
    let state: ExecState = serde_json::from_slice(&std::fs::read(state_file).unwrap()).unwrap();
    let leaf = cgroup_dirs(&id)[0].clone();
    let members = std::fs::read_to_string(leaf.join("cgroup.procs")).unwrap();
    assert_eq!(members.lines().count(), 2, "the task and its background child: {members:?}");
    // SAFETY: plain syscall on the executor this test's client started.
    assert_eq!(unsafe { libc::kill(state.executor.pid as i32, libc::SIGKILL) }, 0);

    let second = task_pid(dir.path(), &id, 2).await;
    assert!(gone(first), "the lost task was killed");
    let task = wait_for("the lost attempt reported and the next one running", || {
        link.task_state(&id, "t").filter(|s| s.state == TaskStateKind::Running && count_events(s, "Started") == 2)
    })
    .await;
    let lost = task.events.iter().find(|e| e.event_type == "Terminated").expect("lost task reported");
    assert!(lost.message.contains("task lost"), "{}", lost.message);
    // Its background child went with its namespace: only the new attempt is left.
    let members = wait_for("the new attempt alone in the cgroup", || {
        let text = std::fs::read_to_string(leaf.join("cgroup.procs")).ok()?;
        let pids: Vec<u32> = text.lines().filter_map(|l| l.parse().ok()).collect();
        (pids.len() == 2 && pids.contains(&second)).then_some(pids)
    })
    .await;
    assert!(!members.contains(&first));
    client.shutdown(ShutdownMode::StopTasks).await;
    assert_cgroups_removed(&cgroup_dirs(&id));
}
