//! The `raw_exec` driver: runs `config.command` with `config.args` on the host, without
//! isolation, as the client's user.
//!
//! Each start spawns an [`executor`] process that owns the task, so the
//! task survives the client. The handle the client persists names the attempt's run dir and
//! both processes by PID and start time. Re-attached, the handle polls: an exit file
//! means the task exited (perhaps while no client watched); an executor that is gone
//! without one means the task is lost (any process left in its group is killed, and the
//! restart policy decides). The client stops a task by signalling its process group.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use stead_model::DriverInfo;

use super::config::ConfigFields;
use super::process;
use super::{Driver, DriverError, ExitResult, FsIsolation, TaskHandle, TaskSpec};
use crate::config::ExecutorCommand;
use crate::executor::{self, ExecExit, ExecSpec, ExecState};
use crate::state::{read_json, write_json};

/// How long a started executor may take to report the task running.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `start` looks for the executor's state file.
const START_POLL: Duration = Duration::from_millis(10);
/// After a crash mid-start, how long `recover` waits for an executor it cannot identify
/// yet to report (it writes its state right after starting the task).
const RECOVER_WAIT: Duration = Duration::from_secs(2);

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
    executor: ExecutorCommand,
    poll: Duration,
}

impl RawExecDriver {
    pub fn new(executor: ExecutorCommand, poll: Duration) -> Self {
        Self { executor, poll: poll.max(Duration::from_millis(1)) }
    }

    fn handle(&self, run_dir: PathBuf, state: ExecState, child: Option<std::process::Child>) -> Box<dyn TaskHandle> {
        Box::new(RawExecHandle { run_dir, state, child: Mutex::new(child), poll: self.poll })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Persisted {
    run_dir: PathBuf,
    state: ExecState,
}

fn read_exit(run_dir: &Path) -> Option<ExecExit> {
    read_json::<ExecExit>(&executor::exit_path(run_dir)).ok().flatten()
}

fn read_state(run_dir: &Path) -> Option<ExecState> {
    read_json::<ExecState>(&executor::state_path(run_dir)).ok().flatten()
}

impl Driver for RawExecDriver {
    fn name(&self) -> &'static str {
        "raw_exec"
    }

    fn fingerprint(&self, now_ns: i64) -> DriverInfo {
        let program = &self.executor.program;
        let ok = std::fs::metadata(program).is_ok_and(|m| m.is_file());
        DriverInfo {
            detected: true,
            healthy: ok,
            health_description: if ok {
                "Healthy".to_owned()
            } else {
                format!("executor {} not found; set the client's executor command", program.display())
            },
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
            let run_dir = spec.run_dir.clone();
            let io_err = |what: &str, e: &dyn std::fmt::Display| DriverError::Start {
                message: format!("{what} in {}: {e}", run_dir.display()),
                recoverable: true,
            };
            // A fresh directory: files of an earlier try must not be mistaken for this one's.
            let _ = std::fs::remove_dir_all(&run_dir);
            std::fs::create_dir_all(&run_dir).map_err(|e| io_err("cannot create the run dir", &e))?;
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
            };
            let spec_file = executor::spec_path(&run_dir);
            write_json(&spec_file, &exec_spec).map_err(|e| io_err("cannot write the executor spec", &e))?;
            let log = std::fs::File::create(executor::log_path(&run_dir))
                .map_err(|e| io_err("cannot create the executor log", &e))?;
            let log_err = log.try_clone().map_err(|e| io_err("cannot create the executor log", &e))?;
            let mut child = std::process::Command::new(&self.executor.program)
                .args(&self.executor.args)
                .arg(&spec_file)
                .stdin(std::process::Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .map_err(|e| DriverError::Start {
                    message: format!("failed to start the executor {}: {e}", self.executor.program.display()),
                    recoverable: true,
                })?;

            let mut waited = Duration::ZERO;
            loop {
                if let Some(state) = read_state(&run_dir) {
                    return Ok(self.handle(run_dir, state, Some(child)));
                }
                let exited = child.try_wait().ok().flatten();
                if let Some(exit) = read_exit(&run_dir) {
                    let _ = child.wait();
                    let message =
                        exit.start_error.unwrap_or_else(|| "the executor exited before the task ran".to_owned());
                    // The command cannot run (not found, not executable): trying again
                    // gives the same answer.
                    return Err(DriverError::Start { message, recoverable: false });
                }
                if let Some(status) = exited {
                    let log = std::fs::read_to_string(executor::log_path(&run_dir)).unwrap_or_default();
                    return Err(DriverError::Start {
                        message: format!("executor exited ({status}) before starting the task: {}", log.trim()),
                        recoverable: true,
                    });
                }
                if waited >= START_TIMEOUT {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(DriverError::Start {
                        message: format!("executor did not start the task within {START_TIMEOUT:?}"),
                        recoverable: true,
                    });
                }
                tokio::time::sleep(START_POLL).await;
                waited += START_POLL;
            }
        })
    }

    fn reattach(&self, persisted: serde_json::Value) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>> {
        Box::pin(async move {
            let p: Persisted = serde_json::from_value(persisted)
                .map_err(|e| DriverError::Reattach(format!("not a raw_exec handle: {e}")))?;
            Ok(self.handle(p.run_dir, p.state, None))
        })
    }

    fn recover(&self, run_dir: PathBuf) -> BoxFuture<'_, Option<Box<dyn TaskHandle>>> {
        Box::pin(async move {
            if !executor::spec_path(&run_dir).exists() {
                return None; // Nothing was spawned.
            }
            let mut waited = Duration::ZERO;
            loop {
                if let Some(state) = read_state(&run_dir) {
                    return Some(self.handle(run_dir, state, None));
                }
                if read_exit(&run_dir).is_some() || waited >= RECOVER_WAIT {
                    return None;
                }
                tokio::time::sleep(START_POLL).await;
                waited += START_POLL;
            }
        })
    }
}

struct RawExecHandle {
    run_dir: PathBuf,
    state: ExecState,
    /// The executor, when this client started it: polled so it does not stay a zombie.
    child: Mutex<Option<std::process::Child>>,
    poll: Duration,
}

impl RawExecHandle {
    fn reap(&self) {
        if let Ok(mut child) = self.child.lock()
            && let Some(c) = child.as_mut()
            && let Ok(Some(_)) = c.try_wait()
        {
            *child = None;
        }
    }

    fn exited(&self) -> Option<ExitResult> {
        read_exit(&self.run_dir).map(|e| match e.start_error {
            Some(err) => ExitResult::lost(err),
            None => e.result,
        })
    }

    /// One look: the exit if the task is over (or lost), `None` while it runs.
    fn check(&self) -> Option<ExitResult> {
        if let Some(exit) = self.exited() {
            self.reap();
            return Some(exit);
        }
        self.reap();
        if process::is_running(self.state.executor) {
            return None;
        }
        // The executor may have written the exit just before going.
        if let Some(exit) = self.exited() {
            return Some(exit);
        }
        if process::is_running(self.state.task) {
            let _ = process::signal_group(self.state.task.pid, libc::SIGKILL);
        }
        Some(ExitResult::lost(format!(
            "task lost: its executor (pid {}) exited without recording the task's exit",
            self.state.executor.pid
        )))
    }
}

impl TaskHandle for RawExecHandle {
    fn persisted(&self) -> serde_json::Value {
        serde_json::to_value(Persisted { run_dir: self.run_dir.clone(), state: self.state }).unwrap_or_default()
    }

    fn wait(&self) -> BoxFuture<'_, ExitResult> {
        Box::pin(async move {
            loop {
                if let Some(exit) = self.check() {
                    return exit;
                }
                tokio::time::sleep(self.poll).await;
            }
        })
    }

    fn signal(&self, signal: i32) -> BoxFuture<'_, Result<(), DriverError>> {
        let result = if self.exited().is_some()
            // Only a group we can vouch for: our executor's, or the task's own if it runs.
            || (!process::is_running(self.state.executor) && !process::is_running(self.state.task))
        {
            Ok(())
        } else {
            process::signal_group(self.state.task.pid, signal)
                .map_err(|e| DriverError::Signal(format!("signalling process group {}: {e}", self.state.task.pid)))
        };
        Box::pin(async move { result })
    }

    fn pid(&self) -> Option<u32> {
        Some(self.state.task.pid)
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
