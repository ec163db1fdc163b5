//! The `raw_exec` driver: runs `config.command` with `config.args` on the host, without
//! isolation, as the client's user.
//!
//! Each start spawns an [executor](crate::executor) process that owns the task, so the
//! task survives the client; [`Launcher`] starts it and watches the task (re-attaching after a
//! client restart, calling a task lost whose executor died). The client stops a task by
//! signalling its process group.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use stead_model::DriverInfo;

use super::config::ConfigFields;
use super::{Driver, DriverError, FsIsolation, TaskHandle, TaskSpec};
use crate::config::ExecutorCommand;
use crate::executor::{ExecSpec, Launcher};

/// Keys Nomad's raw_exec accepts; the cgroup and OOM settings are accepted and ignored
/// (stead does not manage cgroups for raw_exec).
const KEYS: &[&str] =
    &["command", "args", "work_dir", "cgroup_v1_override", "cgroup_v2_override", "oom_score_adj", "denied_envvars"];

/// The task `config` raw_exec reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawExecConfig {
    pub command: String,
    pub args: Vec<String>,
    pub work_dir: Option<String>,
    pub denied_envvars: Vec<String>,
}

impl RawExecConfig {
    pub fn parse(config: &stead_model::OpaqueMap) -> Result<Self, DriverError> {
        let f = ConfigFields::new("raw_exec", config, KEYS)?;
        Ok(Self {
            command: f.required_string("command")?,
            args: f.string_list("args")?,
            work_dir: f.string("work_dir")?,
            denied_envvars: f.string_list("denied_envvars")?,
        })
    }
}

pub struct RawExecDriver {
    launcher: Launcher,
}

impl RawExecDriver {
    pub fn new(executor: ExecutorCommand, poll: Duration) -> Self {
        Self { launcher: Launcher::new("raw_exec", executor, poll) }
    }
}

impl Driver for RawExecDriver {
    fn name(&self) -> &'static str {
        "raw_exec"
    }

    fn fingerprint(&self, now_ns: i64) -> DriverInfo {
        let check = self.launcher.check_executor();
        DriverInfo {
            detected: true,
            healthy: check.is_ok(),
            health_description: check.err().unwrap_or_else(|| "Healthy".to_owned()),
            update_time: stead_model::time::format_rfc3339_nanos(now_ns),
            ..Default::default()
        }
    }

    fn fs_isolation(&self) -> FsIsolation {
        FsIsolation::None
    }

    fn start(&self, spec: TaskSpec) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>> {
        Box::pin(async move {
            let config = RawExecConfig::parse(&spec.config)?;
            let mut env = spec.env.clone();
            for denied in &config.denied_envvars {
                env.remove(denied);
            }
            let cwd = match &config.work_dir {
                Some(dir) if Path::new(dir).is_absolute() => PathBuf::from(dir),
                Some(dir) => spec.task_dir.join(dir),
                None => spec.task_dir.clone(),
            };
            let exec_spec = ExecSpec {
                command: config.command.clone(),
                args: config.args.clone(),
                env,
                cwd,
                logs_dir: spec.logs_dir.clone(),
                task: spec.task.clone(),
                log_limits: spec.log_limits,
                isolation: None,
            };
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

    use super::*;

    #[test]
    fn config_needs_a_command_and_reads_args() {
        let map = |v| serde_json::from_value::<stead_model::OpaqueMap>(v).unwrap();
        let c = RawExecConfig::parse(&map(json!({"command": "/bin/echo", "args": ["a", "b"]}))).unwrap();
        assert_eq!((c.command.as_str(), c.args.len()), ("/bin/echo", 2));
        let e = RawExecConfig::parse(&map(json!({"args": ["a"]}))).unwrap_err();
        assert_eq!(e, DriverError::Config("invalid raw_exec config: \"command\" is required".to_owned()));
        assert!(RawExecConfig::parse(&map(json!({"command": "x", "image": "y"}))).is_err());
    }

    #[test]
    fn fingerprint_is_unhealthy_without_an_executor() {
        let d = RawExecDriver::new(
            ExecutorCommand { program: "/nonexistent/stead".into(), args: vec![] },
            Duration::from_millis(10),
        );
        let info = d.fingerprint(0);
        assert!(info.detected && !info.healthy);
        assert!(info.health_description.contains("/nonexistent/stead"));
    }
}
