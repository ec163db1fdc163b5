//! The docker driver against a real Docker daemon: output reaches the task's rotated log
//! files and the exit code is reported; a mapped port answers from the host; a kill
//! delivers the kill signal and falls back to SIGKILL; a bad image reference is a start
//! error carrying Docker's message; a handle re-attached after a drop goes on following
//! the same container's logs without repeating a line; a crash mid-start is recovered;
//! resources land in the container's HostConfig; and through the whole client, a
//! container killed from outside is replaced per the restart policy and a restarted
//! client re-attaches to the container that kept running.
//!
//! The image is `stead-test/busybox:1`, imported from the host's static busybox
//! (Debian's busybox-static), never pulled. Without a daemon (or busybox) the tests
//! skip, except under CI (`CI=true`), where they fail.

#![cfg(not(madsim))]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use common::*;
use futures::FutureExt;
use serde_json::{Value, json};
use stead_client::driver::docker::DockerDriver;
use stead_client::driver::{Driver, DriverError, PortMapping, TaskHandle, TaskResources, TaskSpec};
use stead_client::logs::LogLimits;
use stead_client::{Client, ClientHandle, DockerConfig, ShutdownMode};
use stead_model::{AllocId, JobType, RestartMode, TaskStateKind};
use stead_testkit::docker::{ENDPOINT, TEST_IMAGE as IMAGE, docker_or_skip};

const ALLOC_LABEL: &str = "com.hashicorp.nomad.alloc_id";

/// Removes every container of `alloc` when dropped, even when the test failed.
struct Containers {
    alloc: String,
}

impl Drop for Containers {
    fn drop(&mut self) {
        let alloc = self.alloc.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let Ok(docker) = Docker::connect_with_host(ENDPOINT) else { return };
                for id in containers_of(&docker, &alloc).await {
                    let options = RemoveContainerOptionsBuilder::new().force(true).build();
                    let _ = docker.remove_container(&id, Some(options)).await;
                }
            });
        })
        .join();
    }
}

/// IDs of all containers (running or not) labelled with `alloc`.
async fn containers_of(docker: &Docker, alloc: &str) -> Vec<String> {
    let filters = HashMap::from([("label", vec![format!("{ALLOC_LABEL}={alloc}")])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let list = docker.list_containers(Some(options)).await.expect("listing containers");
    list.into_iter().filter_map(|c| c.id).collect()
}

/// An allocation ID no other test (or earlier run) uses.
fn alloc_id(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

/// A task `t` of `alloc` laid out as the client lays it out, in `dir`.
fn spec(dir: &Path, alloc: &str, config: Value) -> TaskSpec {
    let task_dir = dir.join("t");
    for sub in ["local", "secrets"] {
        std::fs::create_dir_all(task_dir.join(sub)).unwrap();
    }
    let alloc_dir = dir.join("alloc");
    std::fs::create_dir_all(alloc_dir.join("logs")).unwrap();
    let env = BTreeMap::from([
        ("NOMAD_ALLOC_ID".to_owned(), alloc.to_owned()),
        ("NOMAD_TASK_NAME".to_owned(), "t".to_owned()),
        ("NOMAD_ALLOC_DIR".to_owned(), "/alloc".to_owned()),
        ("NOMAD_TASK_DIR".to_owned(), "/local".to_owned()),
    ]);
    TaskSpec {
        alloc_id: AllocId::new(alloc),
        task: "t".to_owned(),
        config: serde_json::from_value(config).unwrap(),
        env,
        task_dir,
        logs_dir: alloc_dir.join("logs"),
        alloc_dir,
        log_limits: LogLimits::default(),
        run_dir: dir.join("run"),
        resources: TaskResources { cpu_shares: 100, cores: vec![], memory_mb: 64, memory_max_mb: 0 },
        ports: vec![],
    }
}

fn sh(script: &str) -> Value {
    json!({"image": IMAGE, "command": "/bin/sh", "args": ["-c", script]})
}

fn driver() -> DockerDriver {
    DockerDriver::new(DockerConfig::default(), None)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn stdout(dir: &Path) -> String {
    read(&dir.join("alloc/logs/t.stdout.0"))
}

async fn wait_log(dir: &Path, needle: &str) -> String {
    wait_for(&format!("{needle:?} in the stdout log"), || Some(stdout(dir)).filter(|s| s.contains(needle))).await
}

async fn exit_of(handle: &dyn TaskHandle) -> stead_client::driver::ExitResult {
    tokio::time::timeout(DEADLINE, handle.wait()).await.expect("the container exits")
}

async fn gone(docker: &Docker, id: &str) -> bool {
    docker.inspect_container(id, None).await.is_err_and(|e| e.to_string().contains("404"))
}

async fn wait_gone(docker: &Docker, id: &str) {
    let mut waited = Duration::ZERO;
    while !gone(docker, id).await {
        assert!(waited < DEADLINE, "container {id} was not removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
}

#[tokio::test]
async fn output_reaches_the_rotated_log_files_and_the_exit_code_is_reported() {
    let Some(docker) = docker_or_skip().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let alloc = alloc_id("logs");
    let _guard = Containers { alloc: alloc.clone() };
    let s = spec(dir.path(), &alloc, sh("echo hello $NOMAD_TASK_NAME; cat /local/greeting; echo oops >&2; exit 3"));
    std::fs::write(s.task_dir.join("local/greeting"), "from the task dir\n").unwrap();

    let handle = driver().start(s).await.expect("container starts");
    let exit = exit_of(handle.as_ref()).await;
    assert_eq!((exit.exit_code, exit.signal, exit.err.as_deref(), exit.oom_killed), (3, 0, None, false));
    // Waiting again gives the same answer.
    assert_eq!(exit_of(handle.as_ref()).await, exit);
    assert_eq!(stdout(dir.path()), "hello t\nfrom the task dir\n");
    assert_eq!(read(&dir.path().join("alloc/logs/t.stderr.0")), "oops\n");

    let id = handle.persisted()["container_id"].as_str().unwrap().to_owned();
    handle.cleanup().await;
    assert!(gone(&docker, &id).await, "cleanup removes the container");
}

#[tokio::test]
async fn volumes_and_mounts_bind_task_directory_paths_and_tmpfs_into_the_container() {
    let Some(_docker) = docker_or_skip().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let alloc = alloc_id("volumes");
    let _guard = Containers { alloc: alloc.clone() };
    let config = json!({
        "image": IMAGE, "command": "/bin/sh",
        "args": ["-c", "cat /conf/app.conf; echo written > /data/out; touch /ro/x 2>/dev/null && echo ro=writable || echo ro=read-only; \
                 echo scratch > /scratch/s && cat /scratch/s"],
        "volumes": ["local/conf:/conf", "local/data:/data", "local/conf:/ro:ro"],
        "mount": [{"type": "tmpfs", "target": "/scratch"}],
    });
    let s = spec(dir.path(), &alloc, config);
    std::fs::create_dir_all(s.task_dir.join("local/conf")).unwrap();
    std::fs::create_dir_all(s.task_dir.join("local/data")).unwrap();
    std::fs::write(s.task_dir.join("local/conf/app.conf"), "setting=1\n").unwrap();
    let task_dir = s.task_dir.clone();

    let handle = driver().start(s).await.expect("container starts");
    let exit = exit_of(handle.as_ref()).await;
    assert_eq!(exit.exit_code, 0, "{exit:?}: {}", stdout(dir.path()));
    wait_log(dir.path(), "scratch").await;
    assert_eq!(stdout(dir.path()), "setting=1\nro=read-only\nscratch\n");
    assert_eq!(read(&task_dir.join("local/data/out")), "written\n", "the container wrote into the task directory");
    handle.cleanup().await;
}

#[tokio::test]
async fn mapped_port_answers_from_the_host() {
    let Some(_docker) = docker_or_skip().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let alloc = alloc_id("port");
    let _guard = Containers { alloc: alloc.clone() };
    let host_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = json!({"image": IMAGE, "command": "/bin/httpd", "args": ["-f", "-p", "8080", "-h", "/local"], "ports": ["http"]});
    let mut s = spec(dir.path(), &alloc, config);
    s.ports =
        vec![PortMapping { label: "http".to_owned(), host_ip: "127.0.0.1".to_owned(), value: host_port, to: 8080 }];
    std::fs::write(s.task_dir.join("local/index.html"), "hello from the container\n").unwrap();

    let handle = driver().start(s).await.expect("container starts");
    // Docker's proxy may accept before httpd listens: ask until httpd answers.
    let answer = wait_for("an HTTP answer on the mapped port", || {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", host_port)).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
        let mut text = String::new();
        let _ = conn.read_to_string(&mut text);
        text.starts_with("HTTP/1.").then_some(text)
    })
    .await;
    assert!(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("hello from the container"), "{answer}");

    // httpd, as PID 1 without a handler, ignores SIGTERM: SIGKILL right away.
    let exit = handle.kill(libc::SIGKILL, Duration::from_secs(5)).await.expect("killed");
    assert_eq!(exit.signal, libc::SIGKILL);
    handle.cleanup().await;
}

#[tokio::test]
async fn kill_delivers_the_kill_signal_and_falls_back_to_sigkill_after_the_timeout() {
    let Some(_docker) = docker_or_skip().await else { return };
    let d = driver();

    // A task that exits on its kill signal: done before the timeout, its own exit code.
    let polite = tempfile::tempdir().unwrap();
    let alloc = alloc_id("kill-ok");
    let _guard = Containers { alloc: alloc.clone() };
    let script = "trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 0.1; done";
    let handle = d.start(spec(polite.path(), &alloc, sh(script))).await.expect("container starts");
    wait_log(polite.path(), "ready").await;
    let started = Instant::now();
    let exit = handle.kill(libc::SIGTERM, Duration::from_secs(30)).await.expect("killed");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!((exit.exit_code, exit.signal), (0, 0));
    assert!(stdout(polite.path()).contains("got TERM"));
    handle.cleanup().await;

    // A task that only notes the signal: SIGKILL after the timeout.
    let stubborn = tempfile::tempdir().unwrap();
    let alloc = alloc_id("kill-9");
    let _guard = Containers { alloc: alloc.clone() };
    let script = "trap 'echo got TERM' TERM; echo ready; while true; do sleep 0.1; done";
    let handle = d.start(spec(stubborn.path(), &alloc, sh(script))).await.expect("container starts");
    wait_log(stubborn.path(), "ready").await;
    let started = Instant::now();
    let exit = handle.kill(libc::SIGTERM, Duration::from_millis(700)).await.expect("killed");
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert_eq!((exit.exit_code, exit.signal), (128 + libc::SIGKILL, libc::SIGKILL));
    assert!(stdout(stubborn.path()).contains("got TERM"), "the kill signal was delivered first");
    handle.cleanup().await;
}

#[tokio::test]
async fn invalid_image_reference_is_a_start_error_carrying_dockers_message() {
    let Some(docker) = docker_or_skip().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let alloc = alloc_id("badimage");
    let _guard = Containers { alloc: alloc.clone() };
    let config = json!({"image": "Invalid//Image:x", "command": "/bin/true"});
    let err = driver().start(spec(dir.path(), &alloc, config)).await.err().expect("start fails");
    let DriverError::Start { message, recoverable } = &err else { panic!("not a start error: {err:?}") };
    assert!(message.contains("failed to pull image \"Invalid//Image:x\""), "{message}");
    assert!(message.contains("invalid reference format"), "Docker's own words: {message}");
    assert!(!recoverable, "a malformed reference stays malformed");
    assert!(containers_of(&docker, &alloc).await.is_empty());
}

#[tokio::test]
async fn reattached_handle_follows_the_same_container_without_repeating_lines_and_a_removed_one_fails() {
    let Some(docker) = docker_or_skip().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let alloc = alloc_id("reattach");
    let _guard = Containers { alloc: alloc.clone() };
    let script = "i=0; while [ ! -e /alloc/stop ]; do i=$((i+1)); echo line $i; echo $i > /alloc/count; sleep 0.02; done; \
                  echo done; exit 4";
    let d = driver();
    let handle = d.start(spec(dir.path(), &alloc, sh(script))).await.expect("container starts");
    wait_log(dir.path(), "line 5\n").await;
    let persisted = handle.persisted();
    let id = persisted["container_id"].as_str().unwrap().to_owned();
    drop(handle);

    // The container goes on writing while nobody follows it.
    let count = |dir: &Path| read(&dir.join("alloc/count")).trim().parse::<u32>().unwrap_or(0);
    let seen = stdout(dir.path()).lines().count() as u32;
    wait_for("more lines while detached", || (count(dir.path()) > seen + 20).then_some(())).await;

    let again = driver().reattach(persisted.clone()).await.expect("re-attaches");
    let running = docker.inspect_container(&id, None).await.unwrap().state.unwrap().running;
    assert_eq!(running, Some(true), "re-attaching does not restart or replace the container");
    assert!(again.wait().now_or_never().is_none(), "still running");
    let caught_up = count(dir.path());
    wait_log(dir.path(), &format!("line {caught_up}\n")).await;
    std::fs::write(dir.path().join("alloc/stop"), b"").unwrap();

    let exit = exit_of(again.as_ref()).await;
    assert_eq!(exit.exit_code, 4);
    let log = stdout(dir.path());
    let lines: Vec<&str> = log.lines().collect();
    let last = lines.len() - 1;
    assert_eq!(lines[last], "done");
    let expected: Vec<String> = (1..=last).map(|i| format!("line {i}")).collect();
    assert_eq!(lines[..last], expected, "every line once, in order");
    assert_eq!(containers_of(&docker, &alloc).await, vec![id.clone()], "one container all along");

    again.cleanup().await;
    assert!(gone(&docker, &id).await);
    let err = driver().reattach(persisted).await.err().expect("nothing to re-attach to");
    assert!(matches!(err, DriverError::Reattach(_)), "{err:?}");
}

#[tokio::test]
async fn recover_adopts_the_container_a_crash_mid_start_left_running() {
    let Some(docker) = docker_or_skip().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let alloc = alloc_id("recover");
    let _guard = Containers { alloc: alloc.clone() };
    let d = driver();
    assert!(d.recover(dir.path().join("nothing-here")).await.is_none());

    let s = spec(dir.path(), &alloc, sh("echo up; while [ ! -e /alloc/stop ]; do sleep 0.05; done; exit 6"));
    let run_dir = s.run_dir.clone();
    let handle = d.start(s).await.expect("container starts");
    let id = handle.persisted()["container_id"].as_str().unwrap().to_owned();
    drop(handle); // The handle was never saved.

    let found = d.recover(run_dir).await.expect("the container is found by its name");
    assert_eq!(found.persisted()["container_id"], id.as_str());
    std::fs::write(dir.path().join("alloc/stop"), b"").unwrap();
    assert_eq!(exit_of(found.as_ref()).await.exit_code, 6);
    assert_eq!(stdout(dir.path()), "up\n");
    found.cleanup().await;
    assert!(gone(&docker, &id).await);
}

#[tokio::test]
async fn resources_land_in_the_host_config_and_privileged_and_unknown_keys_are_refused() {
    let Some(docker) = docker_or_skip().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let alloc = alloc_id("resources");
    let _guard = Containers { alloc: alloc.clone() };
    let d = driver();

    let mut s = spec(dir.path(), &alloc, sh("sleep 30"));
    s.resources = TaskResources { cpu_shares: 300, cores: vec![], memory_mb: 64, memory_max_mb: 128 };
    let handle = d.start(s.clone()).await.expect("container starts");
    let id = handle.persisted()["container_id"].as_str().unwrap().to_owned();
    let hc = docker.inspect_container(&id, None).await.unwrap().host_config.unwrap();
    assert_eq!(hc.cpu_shares, Some(300));
    assert_eq!(hc.memory, Some(128 << 20), "memory_max is the hard limit");
    assert_eq!(hc.memory_reservation, Some(64 << 20), "memory is the reservation");
    assert_eq!(hc.privileged, Some(false));
    handle.kill(libc::SIGKILL, Duration::from_secs(5)).await.expect("killed");
    handle.cleanup().await;

    let privileged = json!({"image": IMAGE, "command": "/bin/sleep", "args": ["30"], "privileged": true});
    s.config = serde_json::from_value(privileged).unwrap();
    let err = d.start(s.clone()).await.err().expect("privileged is refused by default");
    assert!(matches!(&err, DriverError::Config(m) if m.contains("allow_privileged")), "{err:?}");
    let allowing = DockerDriver::new(DockerConfig { allow_privileged: true, ..DockerConfig::default() }, None);
    match allowing.start(s.clone()).await {
        Ok(handle) => {
            let id = handle.persisted()["container_id"].as_str().unwrap().to_owned();
            let hc = docker.inspect_container(&id, None).await.unwrap().host_config.unwrap();
            assert_eq!(hc.privileged, Some(true));
            handle.kill(libc::SIGKILL, Duration::from_secs(5)).await.expect("killed");
            handle.cleanup().await;
        }
        // A sandboxed daemon may create the privileged container but fail to run it
        // (capabilities it lacks itself): the config check passed and Docker was asked.
        Err(DriverError::Start { message, .. }) if message.contains("failed to start container") => {
            eprintln!("note: this host's daemon cannot run privileged containers: {message}");
        }
        Err(e) => panic!("allowed where the client allows it: {e:?}"),
    }

    s.config = serde_json::from_value(json!({"image": IMAGE, "comand": "/bin/true"})).unwrap();
    let err = d.start(s).await.err().expect("unknown key");
    assert!(matches!(&err, DriverError::Config(m) if m.contains("unknown key \"comand\"")), "{err:?}");
    assert!(containers_of(&docker, &alloc).await.is_empty());
}

#[tokio::test]
async fn fingerprint_is_healthy_with_the_daemons_version_and_undetected_without_a_daemon() {
    let Some(docker) = docker_or_skip().await else { return };
    let version = docker.version().await.unwrap().version.unwrap();
    let info = driver().fingerprint(0);
    assert!(info.detected && info.healthy, "{info:?}");
    assert_eq!(info.attributes.get("driver.docker.version"), Some(&version));

    let missing = DockerConfig { endpoint: "unix:///nonexistent/docker.sock".to_owned(), ..DockerConfig::default() };
    let info = DockerDriver::new(missing, None).fingerprint(0);
    assert!(!info.detected && !info.healthy);
    assert!(info.health_description.contains("/nonexistent/docker.sock"), "{}", info.health_description);
}

// Through the whole client.

async fn start_client(dir: &Path, link: &Arc<FakeLink>) -> ClientHandle {
    Client::start(config(dir, &["docker"]), link.clone(), fake_platform(5)).await.expect("client starts")
}

/// A service job whose task stops cleanly on the client's default kill signal (SIGINT).
fn service_job(id: &str) -> stead_model::Job {
    let script = "trap 'exit 0' INT TERM; echo up; while [ ! -e /alloc/more ]; do sleep 0.05; done; echo more; \
                  while true; do sleep 0.1; done";
    let mut job = job(id, JobType::Service, "docker", sh(script));
    job.task_groups[0].tasks[0].restart_policy = Some(restart_policy(2, RestartMode::Fail));
    job
}

async fn running_container(docker: &Docker, alloc: &str, not: Option<&str>) -> String {
    let mut waited = Duration::ZERO;
    loop {
        let filters =
            HashMap::from([("label", vec![format!("{ALLOC_LABEL}={alloc}")]), ("status", vec!["running".to_owned()])]);
        let options = ListContainersOptionsBuilder::new().filters(&filters).build();
        let ids: Vec<String> =
            docker.list_containers(Some(options)).await.unwrap().into_iter().filter_map(|c| c.id).collect();
        if let [id] = ids.as_slice()
            && Some(id.as_str()) != not
        {
            return id.clone();
        }
        assert!(waited < DEADLINE, "no running container for {alloc} (other than {not:?}): {ids:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
}

#[tokio::test]
async fn container_killed_from_outside_is_replaced_per_the_restart_policy() {
    let Some(docker) = docker_or_skip().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start_client(dir.path(), &link).await;
    let alloc = alloc_id("restart");
    let _guard = Containers { alloc: alloc.clone() };
    let id = AllocId::new(&alloc);
    link.put_alloc(common::alloc(&alloc, &service_job("restart")));
    wait_task_state(&link, &id, "t", TaskStateKind::Running).await;
    let first = running_container(&docker, &alloc, None).await;

    let options = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
    docker.kill_container(&first, Some(options)).await.unwrap();
    let second = running_container(&docker, &alloc, Some(&first)).await;
    let state = wait_for("the restart to be reported", || {
        link.task_state(&id, "t").filter(|s| s.restarts == 1 && s.state == TaskStateKind::Running)
    })
    .await;
    let exit = state.events.iter().find(|e| e.event_type == "Terminated").expect("the kill is reported");
    assert_eq!(exit.exit_code, 137);
    wait_gone(&docker, &first).await;
    assert_eq!(containers_of(&docker, &alloc).await, vec![second]);

    client.shutdown(ShutdownMode::StopTasks).await;
    assert!(containers_of(&docker, &alloc).await.is_empty(), "stopping the task removes its container");
}

#[tokio::test]
async fn restarted_client_reattaches_to_the_running_container() {
    let Some(docker) = docker_or_skip().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start_client(dir.path(), &link).await;
    let alloc = alloc_id("survivor");
    let _guard = Containers { alloc: alloc.clone() };
    let id = AllocId::new(&alloc);
    link.put_alloc(common::alloc(&alloc, &service_job("survivor")));
    wait_task_state(&link, &id, "t", TaskStateKind::Running).await;
    let container = running_container(&docker, &alloc, None).await;

    let alloc_dir = dir.path().join("alloc").join(&alloc).join("alloc");
    let log = || read(&alloc_dir.join("logs/t.stdout.0"));
    wait_for("the task's first line", || (log() == "up\n").then_some(())).await;

    drop(client); // A crash: nothing is stopped.
    let updates_before = link.updates().len();
    let again = start_client(dir.path(), &link).await;
    wait_for("the restarted client to report", || (link.updates().len() > updates_before).then_some(())).await;

    assert_eq!(containers_of(&docker, &alloc).await, vec![container.clone()], "the same container, no other");
    let state = link.task_state(&id, "t").unwrap();
    assert_eq!(state.state, TaskStateKind::Running);
    assert_eq!(count_events(&state, "Started"), 1, "{:?}", event_types(&state));
    // The re-attached handle follows the logs on from where the first client stopped.
    std::fs::write(alloc_dir.join("more"), b"").unwrap();
    wait_for("the line written after the restart", || log().contains("more").then_some(())).await;
    assert_eq!(log(), "up\nmore\n");

    again.shutdown(ShutdownMode::StopTasks).await;
    assert!(containers_of(&docker, &alloc).await.is_empty());
}

#[tokio::test]
async fn a_prestart_init_then_the_main_task_then_a_poststart_sidecar_start_in_order() {
    let Some(docker) = docker_or_skip().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start_client(dir.path(), &link).await;
    let alloc = alloc_id("order");
    let _guard = Containers { alloc: alloc.clone() };
    let id = AllocId::new(&alloc);

    // Each task appends its name to the shared /alloc/order and prints it; the init task
    // takes a while, so a main task that did not wait for it would write first.
    let step = |name: &str, then: &str| sh(&format!("sleep 0.3; echo {name} >> /alloc/order; echo {name}; {then}"));
    let forever = "trap 'exit 0' INT TERM; while true; do sleep 0.1; done";
    let mut job = job("order", JobType::Service, "docker", step("main", forever));
    job.task_groups[0].tasks[0].name = "main".to_owned();
    let task = |name: &str, hook, sidecar, config| stead_model::Task {
        name: name.to_owned(),
        lifecycle: Some(stead_model::Lifecycle { hook, sidecar, ..Default::default() }),
        config: serde_json::from_value(config).unwrap(),
        ..job.task_groups[0].tasks[0].clone()
    };
    let init = task("init", stead_model::LifecycleHook::Prestart, false, step("init", "exit 0"));
    let sidecar = task("sidecar", stead_model::LifecycleHook::Poststart, true, step("sidecar", forever));
    job.task_groups[0].tasks.extend([init, sidecar]);
    job.canonicalize();
    link.put_alloc(common::alloc(&alloc, &job));

    let sidecar = wait_task_state(&link, &id, "sidecar", TaskStateKind::Running).await;
    let alloc_dir = dir.path().join("alloc").join(&alloc).join("alloc");
    wait_for("all three lines", || (read(&alloc_dir.join("order")).lines().count() == 3).then_some(())).await;
    assert_eq!(read(&alloc_dir.join("order")), "init\nmain\nsidecar\n");
    let states = link.alloc(&id).task_states;
    let started = |state: &stead_model::TaskState| {
        state.events.iter().find(|e| e.event_type == "Started").map(|e| e.time).expect("started")
    };
    let finished = states["init"].events.iter().find(|e| e.event_type == "Terminated").expect("init ended").time;
    assert_eq!((states["init"].state.clone(), states["init"].failed), (TaskStateKind::Dead, false));
    assert!(finished <= started(&states["main"]), "the main task started after the init task ended");
    assert!(started(&states["main"]) <= started(&sidecar), "the sidecar started after the main task");
    for name in ["init", "main", "sidecar"] {
        let log = alloc_dir.join(format!("logs/{name}.stdout.0"));
        wait_for(&format!("{name}'s line in its log"), || (read(&log) == format!("{name}\n")).then_some(())).await;
    }

    client.shutdown(ShutdownMode::StopTasks).await;
    assert!(containers_of(&docker, &alloc).await.is_empty());
}

/// A stand-in for the daemon's socket at `path`: forwards to the real one until
/// [`SocketProxy::stop`], which closes every connection and removes the socket, as a
/// daemon that dies does.
struct SocketProxy {
    path: std::path::PathBuf,
    stop: Arc<std::sync::atomic::AtomicBool>,
    streams: Arc<std::sync::Mutex<Vec<std::os::unix::net::UnixStream>>>,
}

impl SocketProxy {
    fn start(path: &Path) -> SocketProxy {
        use std::os::unix::net::{UnixListener, UnixStream};
        let listener = UnixListener::bind(path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let streams = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop_flag, open) = (stop.clone(), streams.clone());
        std::thread::spawn(move || {
            while !stop_flag.load(std::sync::atomic::Ordering::SeqCst) {
                let Ok((down, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                down.set_nonblocking(false).unwrap();
                let Ok(up) = UnixStream::connect("/var/run/docker.sock") else { continue };
                let mut open = open.lock().unwrap();
                open.extend([down.try_clone().unwrap(), up.try_clone().unwrap()]);
                for (mut from, mut to) in [(down.try_clone().unwrap(), up.try_clone().unwrap()), (up, down)] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        SocketProxy { path: path.to_owned(), stop, streams }
    }

    fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::fs::remove_file(&self.path);
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[tokio::test]
async fn the_node_reports_docker_healthy_only_while_the_daemon_answers() {
    let Some(_docker) = docker_or_skip().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let link = FakeLink::new();
    let mut config = config(&dir.path().join("data"), &["docker"]);
    config.docker.endpoint = format!("unix://{}", socket.display());
    config.driver_fingerprint_interval = Duration::from_millis(100);
    let client = Client::start(config, link.clone(), fake_platform(9)).await.expect("client starts");
    let docker_of = |node: &stead_model::Node| node.drivers.get("docker").cloned().unwrap_or_default();

    let first = wait_for("a registration", || link.registrations().first().cloned()).await;
    assert!(!docker_of(&first).detected, "no daemon yet: {:?}", docker_of(&first));
    assert!(!first.attributes.contains_key("driver.docker"));

    let proxy = SocketProxy::start(&socket);
    let up = wait_for("a registration with docker healthy", || {
        link.registrations().into_iter().find(|n| docker_of(n).healthy)
    })
    .await;
    assert!(docker_of(&up).detected);
    assert_eq!(up.attributes.get("driver.docker").map(String::as_str), Some("1"));
    assert!(up.attributes.contains_key("driver.docker.version"), "{:?}", up.attributes);

    let seen = link.registrations().len();
    proxy.stop();
    let down = wait_for("a registration with docker gone", || {
        link.registrations().into_iter().skip(seen).find(|n| !docker_of(n).healthy)
    })
    .await;
    assert!(docker_of(&down).health_description.contains("docker.sock"), "{:?}", docker_of(&down));
    assert!(!down.attributes.contains_key("driver.docker"));
    client.shutdown(ShutdownMode::LeaveTasksRunning).await;
}

#[tokio::test]
async fn an_allocation_the_servers_forgot_leaves_no_container_even_one_a_failed_removal_left() {
    let Some(docker) = docker_or_skip().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let link = FakeLink::new();
    let client = start_client(dir.path(), &link).await;
    let alloc = alloc_id("forgotten");
    let _guard = Containers { alloc: alloc.clone() };
    let id = AllocId::new(&alloc);
    link.put_alloc(common::alloc(&alloc, &service_job("forgotten")));
    wait_task_state(&link, &id, "t", TaskStateKind::Running).await;
    running_container(&docker, &alloc, None).await;
    // A container of an earlier attempt whose removal failed.
    let labels =
        HashMap::from([(ALLOC_LABEL.to_owned(), alloc.clone()), ("io.stead.managed".to_owned(), "true".to_owned())]);
    let body = bollard::models::ContainerCreateBody {
        image: Some(IMAGE.to_owned()),
        cmd: Some(vec!["/bin/sleep".to_owned(), "600".to_owned()]),
        labels: Some(labels),
        ..Default::default()
    };
    docker.create_container(None::<bollard::query_parameters::CreateContainerOptions>, body).await.unwrap();
    assert_eq!(containers_of(&docker, &alloc).await.len(), 2);

    link.remove_alloc(&id);
    let mut waited = Duration::ZERO;
    while !containers_of(&docker, &alloc).await.is_empty() {
        assert!(waited < DEADLINE, "the forgotten allocation's containers are removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    client.shutdown(ShutdownMode::StopTasks).await;
}
