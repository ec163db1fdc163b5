//! The `exec` driver: runs `config.command` with `config.args` isolated from the host,
//! as Nomad's exec driver does.
//!
//! The task runs through the same executor as raw_exec (it outlives the client, writes
//! the exit, is re-attached after a restart; see [`crate::executor`]), with an
//! [`IsolationSpec`] the executor carries out around the fork ([`super::isolation`]):
//!
//! * its own pid namespace (the task is PID 1 and sees only its own processes in
//!   `/proc`), mount, ipc and uts namespaces (the host name is `<task>-<alloc prefix>`);
//! * its task directory as `/`, with the client's `chroot_env` paths bound read-only,
//!   the allocation directory at `/alloc`, `/local`, `/secrets` and `/tmp` its own, a
//!   fresh `/proc` and a minimal `/dev`. The host environment is not inherited; `PATH`
//!   defaults to [`DEFAULT_PATH`];
//! * a cgroup `stead/<alloc_id>.<task>` ([`super::cgroup`]) with the memory limit
//!   (`memory_max` if set, else `memory`), CPU shares and reserved cores; an OOM kill is
//!   reported as such (`oom_killed` in the Terminated event);
//! * the capabilities Nomad's exec allows by default, less `cap_drop`, plus `cap_add`
//!   (only from that default set: stead has no `allow_caps` option).
//!
//! Stopping signals the task's process group. A task that is PID 1 of its namespace
//! does not get signals it has no handler for (the kernel protects an init from
//! them): a plain `sleep` ignores the kill signal (SIGINT), and is SIGKILLed after the
//! kill timeout.
//!
//! The driver is detected only where it can isolate: Linux, root, the four namespaces,
//! and a writable cgroup hierarchy (v2 with the memory and cpu controllers, or v1 with
//! both mounted); [`decide_fingerprint`] says why not otherwise.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use stead_model::DriverInfo;

use super::cgroup::{self, CgroupProbe};
use super::config::ConfigFields;
use super::isolation::{self, IsolationSpec};
use super::{Driver, DriverError, FsIsolation, TaskHandle, TaskSpec};
use crate::config::ExecutorCommand;
use crate::executor::{ExecSpec, Launcher};

/// Keys Nomad's exec accepts.
const KEYS: &[&str] = &["command", "args", "work_dir", "pid_mode", "ipc_mode", "cap_add", "cap_drop"];

/// `PATH` for tasks whose environment has none (the host's is not inherited).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The task `config` exec reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    pub command: String,
    pub args: Vec<String>,
    /// Absolute, inside the task's root (`/` by default).
    pub work_dir: PathBuf,
    /// What the task keeps, in capability order.
    pub capabilities: Vec<String>,
}

/// `pid_mode`/`ipc_mode`: only `private` (the default) is supported.
fn check_private(f: &ConfigFields<'_>, key: &str) -> Result<(), DriverError> {
    match f.string(key)?.as_deref() {
        None | Some("") | Some("private") => Ok(()),
        Some("host") => Err(DriverError::Config(format!(
            "invalid exec config: {key} = \"host\" is not supported: exec tasks always get private pid, ipc, \
             mount and uts namespaces (use the raw_exec driver to run in the host's)"
        ))),
        Some(other) => {
            Err(DriverError::Config(format!("invalid exec config: {key} must be \"private\", not {other:?}")))
        }
    }
}

impl ExecConfig {
    pub fn parse(config: &stead_model::OpaqueMap) -> Result<Self, DriverError> {
        let f = ConfigFields::new("exec", config, KEYS)?;
        check_private(&f, "pid_mode")?;
        check_private(&f, "ipc_mode")?;
        let work_dir = match f.string("work_dir")? {
            None => PathBuf::from("/"),
            Some(dir) => {
                let path = Path::new("/").join(&dir);
                if path.components().any(|c| c == Component::ParentDir) {
                    return Err(DriverError::Config(format!(
                        "invalid exec config: work_dir {dir:?} must stay inside the task's root (no \"..\")"
                    )));
                }
                path
            }
        };
        let capabilities = isolation::decide_capabilities(&f.string_list("cap_add")?, &f.string_list("cap_drop")?)
            .map_err(|e| DriverError::Config(format!("invalid exec config: {e}")))?;
        Ok(Self { command: f.required_string("command")?, args: f.string_list("args")?, work_dir, capabilities })
    }
}

/// What the fingerprint looks at, probed by [`ExecDriver::probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// `std::env::consts::OS`.
    pub os: String,
    pub euid: u32,
    /// Of [`isolation::NAMESPACES`].
    pub missing_namespaces: Vec<&'static str>,
    pub cgroup: CgroupProbe,
    /// Why the executor cannot be started, if it cannot.
    pub executor: Result<(), String>,
}

/// The driver's health as the node reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub detected: bool,
    pub healthy: bool,
    pub description: String,
}

/// Detected only where tasks can be isolated; healthy if the executor can be started
/// too.
pub fn decide_fingerprint(facts: &HostFacts) -> Health {
    let undetected = |description: String| Health { detected: false, healthy: false, description };
    if facts.os != "linux" {
        return undetected(format!("exec driver needs Linux (this is {})", facts.os));
    }
    if facts.euid != 0 {
        return undetected(format!("exec driver needs root (running as uid {})", facts.euid));
    }
    if !facts.missing_namespaces.is_empty() {
        return undetected(format!(
            "exec driver needs the {} namespace(s), which this kernel lacks (/proc/self/ns)",
            facts.missing_namespaces.join(", ")
        ));
    }
    if let Err(e) = facts.cgroup.usable() {
        return undetected(format!("exec driver needs cgroups to limit tasks: {e}"));
    }
    match &facts.executor {
        Ok(()) => Health { detected: true, healthy: true, description: "Healthy".to_owned() },
        Err(e) => Health { detected: true, healthy: false, description: e.clone() },
    }
}

pub struct ExecDriver {
    launcher: Launcher,
    /// Host path → path inside the task's root.
    chroot_env: BTreeMap<String, String>,
    cgroup_root: PathBuf,
}

impl ExecDriver {
    pub fn new(executor: ExecutorCommand, poll: Duration, chroot_env: BTreeMap<String, String>) -> Self {
        Self { launcher: Launcher::new("exec", executor, poll), chroot_env, cgroup_root: cgroup::CGROUP_ROOT.into() }
    }

    pub fn host_facts(&self) -> HostFacts {
        HostFacts {
            os: std::env::consts::OS.to_owned(),
            // SAFETY: plain syscall, cannot fail.
            euid: unsafe { libc::geteuid() },
            missing_namespaces: isolation::missing_namespaces(),
            cgroup: cgroup::probe(&self.cgroup_root),
            executor: self.launcher.check_executor(),
        }
    }

    fn exec_spec(&self, spec: &TaskSpec, config: ExecConfig, facts: &HostFacts) -> Result<ExecSpec, DriverError> {
        let fatal = |message: String| DriverError::Start { message, recoverable: false };
        let health = decide_fingerprint(facts);
        if !health.healthy {
            return Err(fatal(health.description));
        }
        let hierarchy = facts.cgroup.usable().map_err(fatal)?;
        let plan = cgroup::plan(&hierarchy, &format!("{}.{}", spec.alloc_id, spec.task), &spec.resources);
        let mounts = isolation::plan_mounts(&self.chroot_env, &spec.alloc_dir, |p| p.exists()).map_err(fatal)?;
        let mut env = spec.env.clone();
        env.entry("PATH".to_owned()).or_insert_with(|| DEFAULT_PATH.to_owned());
        Ok(ExecSpec {
            command: config.command,
            args: config.args,
            env,
            cwd: config.work_dir,
            logs_dir: spec.logs_dir.clone(),
            task: spec.task.clone(),
            log_limits: spec.log_limits,
            isolation: Some(IsolationSpec {
                root: spec.task_dir.clone(),
                mounts,
                hostname: isolation::hostname(&spec.task, spec.alloc_id.as_str()),
                capabilities: config.capabilities,
                cgroup: Some(plan),
            }),
        })
    }
}

impl Driver for ExecDriver {
    fn name(&self) -> &'static str {
        "exec"
    }

    fn fingerprint(&self, now_ns: i64) -> DriverInfo {
        let health = decide_fingerprint(&self.host_facts());
        DriverInfo {
            detected: health.detected,
            healthy: health.healthy,
            health_description: health.description,
            update_time: stead_model::time::format_rfc3339_nanos(now_ns),
            ..Default::default()
        }
    }

    fn fs_isolation(&self) -> FsIsolation {
        FsIsolation::Chroot
    }

    fn start(&self, spec: TaskSpec) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>> {
        Box::pin(async move {
            let config = ExecConfig::parse(&spec.config)?;
            let exec_spec = self.exec_spec(&spec, config, &self.host_facts())?;
            self.launcher.launch(spec.run_dir.clone(), &exec_spec).await
        })
    }

    fn reattach(&self, persisted: serde_json::Value) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>> {
        Box::pin(async move { self.launcher.reattach(persisted) })
    }

    fn recover(&self, run_dir: PathBuf) -> BoxFuture<'_, Option<Box<dyn TaskHandle>>> {
        Box::pin(self.launcher.recover(run_dir))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use stead_model::AllocId;

    use super::*;
    use crate::driver::TaskResources;
    use crate::driver::isolation::MountKind;

    fn map(v: serde_json::Value) -> stead_model::OpaqueMap {
        serde_json::from_value(v).unwrap()
    }

    fn config_error(v: serde_json::Value) -> String {
        match ExecConfig::parse(&map(v)) {
            Err(DriverError::Config(e)) => e,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn config_reads_command_args_work_dir_and_capabilities() {
        let c = ExecConfig::parse(&map(json!({
            "command": "/bin/sh", "args": ["-c", "true"], "work_dir": "local",
            "pid_mode": "private", "ipc_mode": "private", "cap_drop": ["all"], "cap_add": ["kill"],
        })))
        .unwrap();
        assert_eq!((c.command.as_str(), c.args.len()), ("/bin/sh", 2));
        assert_eq!(c.work_dir, Path::new("/local"));
        assert_eq!(c.capabilities, ["kill"]);
        let d = ExecConfig::parse(&map(json!({"command": "x"}))).unwrap();
        assert_eq!(d.work_dir, Path::new("/"));
        assert_eq!(d.capabilities.len(), isolation::DEFAULT_CAPABILITIES.len());
    }

    #[test]
    fn config_errors_name_the_key_and_what_to_do() {
        let e = config_error(json!({"command": "x", "image": "y"}));
        assert_eq!(
            e,
            "invalid exec config: unknown key \"image\" (exec accepts: command, args, work_dir, pid_mode, ipc_mode, \
             cap_add, cap_drop)"
        );
        let e = config_error(json!({"command": "x", "ipc_mode": "host"}));
        assert!(e.contains("ipc_mode = \"host\" is not supported") && e.contains("raw_exec"), "{e}");
        let e = config_error(json!({"command": "x", "pid_mode": "shared"}));
        assert_eq!(e, "invalid exec config: pid_mode must be \"private\", not \"shared\"");
        assert_eq!(config_error(json!({"args": []})), "invalid exec config: \"command\" is required");
        assert!(config_error(json!({"command": "x", "work_dir": "../etc"})).contains("inside the task's root"));
        assert!(config_error(json!({"command": "x", "cap_add": ["sys_admin"]})).contains("not allowed"));
    }

    fn facts() -> HostFacts {
        HostFacts {
            os: "linux".to_owned(),
            euid: 0,
            missing_namespaces: vec![],
            cgroup: CgroupProbe::V1 {
                memory: Some("/sys/fs/cgroup/memory".into()),
                cpu: Some("/sys/fs/cgroup/cpu".into()),
                cpuset: None,
                writable: true,
            },
            executor: Ok(()),
        }
    }

    #[test]
    fn fingerprint_is_detected_only_where_tasks_can_be_isolated_and_says_why_not() {
        assert_eq!(
            decide_fingerprint(&facts()),
            Health { detected: true, healthy: true, description: "Healthy".to_owned() }
        );
        let check = |f: HostFacts, want: &str| {
            let h = decide_fingerprint(&f);
            assert!(!h.detected && !h.healthy, "{h:?}");
            assert_eq!(h.description, want);
        };
        check(HostFacts { os: "macos".to_owned(), ..facts() }, "exec driver needs Linux (this is macos)");
        check(HostFacts { euid: 1000, ..facts() }, "exec driver needs root (running as uid 1000)");
        check(
            HostFacts { missing_namespaces: vec!["pid", "uts"], ..facts() },
            "exec driver needs the pid, uts namespace(s), which this kernel lacks (/proc/self/ns)",
        );
        check(
            HostFacts { cgroup: CgroupProbe::Missing, ..facts() },
            "exec driver needs cgroups to limit tasks: no cgroup hierarchy at /sys/fs/cgroup",
        );
        let no_executor =
            decide_fingerprint(&HostFacts { executor: Err("executor x not found".to_owned()), ..facts() });
        assert!(no_executor.detected && !no_executor.healthy);
        assert_eq!(no_executor.description, "executor x not found");
    }

    fn task_spec(dir: &Path) -> TaskSpec {
        TaskSpec {
            alloc_id: AllocId::new("0b7a41c2-7f1e"),
            task: "web".to_owned(),
            config: map(json!({"command": "sleep", "args": ["1"]})),
            env: BTreeMap::from([("NOMAD_TASK_DIR".to_owned(), "/local".to_owned())]),
            task_dir: dir.join("a/web"),
            alloc_dir: dir.join("a/alloc"),
            logs_dir: dir.join("a/alloc/logs"),
            log_limits: Default::default(),
            run_dir: dir.join("run"),
            resources: TaskResources { cpu_shares: 500, cores: vec![], memory_mb: 64, memory_max_mb: 0 },
            ports: vec![],
        }
    }

    #[test]
    fn the_executor_spec_isolates_the_task_in_its_directory_with_its_cgroup_and_a_default_path() {
        let dir = tempfile::tempdir().unwrap();
        let chroot_env = BTreeMap::from([
            ("/bin".to_owned(), "/bin".to_owned()),
            ("/nonexistent-stead".to_owned(), "/x".to_owned()),
        ]);
        let driver = ExecDriver::new(
            ExecutorCommand { program: "/bin/true".into(), args: vec![] },
            Duration::from_millis(10),
            chroot_env,
        );
        let spec = task_spec(dir.path());
        let config = ExecConfig::parse(&spec.config).unwrap();
        let exec = driver.exec_spec(&spec, config, &facts()).unwrap();
        assert_eq!(exec.env["PATH"], DEFAULT_PATH);
        assert_eq!(exec.cwd, Path::new("/"));
        let iso = exec.isolation.unwrap();
        assert_eq!(iso.root, dir.path().join("a/web"));
        assert_eq!(iso.hostname, "web-0b7a41c2");
        let targets: Vec<_> = iso.mounts.iter().map(|m| m.target.display().to_string()).collect();
        assert_eq!(targets, ["bin", "alloc", "proc", "dev"], "missing host paths are skipped");
        assert!(matches!(&iso.mounts[1].kind, MountKind::Bind { read_only: false, .. }));
        let plan = iso.cgroup.unwrap();
        assert_eq!(plan.leaves[0], Path::new("/sys/fs/cgroup/memory/stead/0b7a41c2-7f1e.web"));

        let e = driver.exec_spec(&spec, ExecConfig::parse(&spec.config).unwrap(), &HostFacts { euid: 7, ..facts() });
        assert_eq!(
            e.unwrap_err(),
            DriverError::Start { message: "exec driver needs root (running as uid 7)".to_owned(), recoverable: false }
        );
    }
}
