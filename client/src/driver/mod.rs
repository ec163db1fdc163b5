//! Task drivers: what turns a task's `config` into something running.
//!
//! A [`Driver`] starts a task from a [`TaskSpec`] (its interpolated config, environment,
//! task directory and log files) and returns a [`TaskHandle`] to wait on, signal and
//! kill it. A handle's [`TaskHandle::persisted`] form is saved with the task, so a
//! restarted client calls [`Driver::reattach`] and keeps watching the same task instead
//! of starting another. The drivers:
//!
//! * [`raw_exec`]: a command on the host, unisolated, through an executor process that
//!   outlives the client.
//! * [`exec`]: the same executor, the command isolated: its own pid, mount, ipc and uts
//!   namespaces, chrooted into its task directory, limited by a cgroup ([`isolation`],
//!   [`cgroup`]).
//! * [`mock`]: in-process timers, no OS processes, for tests, benchmarks and the
//!   simulator (Nomad's mock driver options).
//! * `docker`: a container per attempt through the Docker Engine API (not in the
//!   simulator).

pub mod cgroup;
pub mod config;
#[cfg(not(madsim))]
pub mod docker;
pub mod exec;
pub mod isolation;
pub mod mock;
pub mod process;
pub mod raw_exec;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use stead_model::{AllocId, DriverInfo, OpaqueMap};

use crate::clock::Clock;
use crate::config::ClientConfig;
use crate::logs::LogLimits;

/// How long a task may take to exit after SIGKILL before the kill is reported failed.
pub const KILL_WAIT_MAX: Duration = Duration::from_secs(10);

/// How a task ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitResult {
    pub exit_code: i32,
    /// The signal that ended it, 0 if none.
    pub signal: i32,
    /// Why the driver could not tell how it ended (the task was lost), if so.
    pub err: Option<String>,
    pub oom_killed: bool,
}

impl ExitResult {
    pub fn code(exit_code: i32) -> Self {
        Self { exit_code, ..Self::default() }
    }

    pub fn signaled(signal: i32) -> Self {
        Self { signal, ..Self::default() }
    }

    pub fn lost(why: impl Into<String>) -> Self {
        Self { err: Some(why.into()), ..Self::default() }
    }

    /// Exit code 0, no signal, no error.
    pub fn successful(&self) -> bool {
        self.exit_code == 0 && self.signal == 0 && self.err.is_none()
    }
}

/// Everything a driver needs to start one attempt of a task.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub alloc_id: AllocId,
    pub task: String,
    /// The task's `config`, `${...}` already interpolated.
    pub config: OpaqueMap,
    pub env: BTreeMap<String, String>,
    /// `<alloc>/<task>`: the working directory.
    pub task_dir: PathBuf,
    /// `<alloc>/alloc`: the directory the group's tasks share (`/alloc` inside
    /// isolated tasks).
    pub alloc_dir: PathBuf,
    /// `<alloc>/alloc/logs`: where `<task>.stdout.<n>` / `.stderr.<n>` go.
    pub logs_dir: PathBuf,
    pub log_limits: LogLimits,
    /// The driver's own directory for this attempt (empty, private to the client).
    pub run_dir: PathBuf,
    /// What the scheduler gave the task.
    pub resources: TaskResources,
    /// The allocation's ports, for drivers that map them (docker).
    pub ports: Vec<PortMapping>,
}

/// The resources a task was given (from the allocation, else what the task asked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResources {
    /// CPU in MHz, used as a relative weight (cgroup shares).
    pub cpu_shares: i64,
    /// Cores reserved for the task alone (`resources.cores`); empty if none.
    pub cores: Vec<u16>,
    pub memory_mb: i64,
    /// The hard memory limit when oversubscription is on (`memory_max`); 0 = `memory_mb`.
    pub memory_max_mb: i64,
}

impl TaskResources {
    /// The hard memory limit in MiB: `memory_max` when set above `memory`, else `memory`.
    pub fn memory_limit_mb(&self) -> i64 {
        self.memory_max_mb.max(self.memory_mb)
    }
}

/// One port of the allocation: `host_ip:value` on the node, `to` inside the task's
/// network namespace (the same number when `to` is 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub label: String,
    pub host_ip: String,
    pub value: u16,
    pub to: u16,
}

impl PortMapping {
    /// The port the task listens on.
    pub fn inside(&self) -> u16 {
        if self.to > 0 { self.to } else { self.value }
    }
}

/// How a driver isolates a task's files, which decides the paths it sees (Nomad's
/// `FSIsolation` capability).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsIsolation {
    /// The host's file system: host paths, and the client's environment is inherited.
    None,
    /// A chroot of the task directory: `/alloc`, `/local`, `/secrets`.
    Chroot,
    /// A container image's root with the same three mounts.
    Image,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The task's `config` is wrong: retrying cannot help.
    #[error("{0}")]
    Config(String),
    #[error("{message}")]
    Start { message: String, recoverable: bool },
    #[error("cannot re-attach to the task: {0}")]
    Reattach(String),
    #[error("{0}")]
    Signal(String),
}

impl DriverError {
    /// Whether starting again may succeed (the restart policy applies) or not (the task fails).
    pub fn recoverable(&self) -> bool {
        match self {
            DriverError::Start { recoverable, .. } => *recoverable,
            DriverError::Config(_) => false,
            DriverError::Reattach(_) | DriverError::Signal(_) => true,
        }
    }
}

/// A running (or finished) task.
pub trait TaskHandle: Send + Sync {
    /// What to save so that [`Driver::reattach`] finds this task again.
    fn persisted(&self) -> serde_json::Value;

    /// Resolves when the task has exited. May be called again (and concurrently); every
    /// call resolves with the same result.
    fn wait(&self) -> BoxFuture<'_, ExitResult>;

    /// Sends `signal` to the task (to its process group, for process drivers). A task
    /// that already exited is not an error.
    fn signal(&self, signal: i32) -> BoxFuture<'_, Result<(), DriverError>>;

    /// Frees what the finished attempt still holds (a stopped container). Called once
    /// the exit is recorded; the handle is not used afterwards.
    fn cleanup(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// The task's process ID, for drivers that have one.
    fn pid(&self) -> Option<u32> {
        None
    }

    /// Sends `signal`, waits up to `timeout`, then SIGKILL; resolves with the exit.
    fn kill(&self, signal: i32, timeout: Duration) -> BoxFuture<'_, Result<ExitResult, DriverError>> {
        Box::pin(async move {
            if let Err(e) = self.signal(signal).await {
                tracing::warn!(error = %e, signal, "sending the kill signal failed; sending SIGKILL");
            } else if let Ok(exit) = tokio::time::timeout(timeout, self.wait()).await {
                return Ok(exit);
            }
            self.signal(libc::SIGKILL).await?;
            tokio::time::timeout(KILL_WAIT_MAX, self.wait())
                .await
                .map_err(|_| DriverError::Signal(format!("task did not exit {KILL_WAIT_MAX:?} after SIGKILL")))
        })
    }
}

/// A task driver.
pub trait Driver: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// The driver's health as the node reports it (`Node.Drivers[name]`), as of the last
    /// [`Driver::probe`].
    fn fingerprint(&self, now_ns: i64) -> DriverInfo;

    /// Looks again at what the driver's health depends on (a daemon), for the next
    /// [`Driver::fingerprint`]. The client calls it before each periodic fingerprint.
    fn probe(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// How the driver isolates a task's files. Tasks of drivers without isolation
    /// inherit the client's environment and see host paths, as in Nomad.
    fn fs_isolation(&self) -> FsIsolation;

    /// The signal that stops a task whose `kill_signal` is not set (Nomad: SIGINT, and
    /// SIGTERM for docker).
    fn default_kill_signal(&self) -> i32 {
        libc::SIGINT
    }

    fn start(&self, spec: TaskSpec) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>>;

    /// Finds the task a handle was persisted for. It may have exited meanwhile: the
    /// handle's `wait` then says how.
    fn reattach(&self, persisted: serde_json::Value) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>>;

    /// The allocation is gone for good (its directories are about to be removed):
    /// removes whatever the driver may still hold for it that a handle did not free (a
    /// container whose removal failed).
    fn forget_alloc(&self, alloc: &AllocId) -> BoxFuture<'_, ()> {
        let _ = alloc;
        Box::pin(async {})
    }

    /// After a crash between "start requested" and "handle saved": whatever `start`
    /// left running in `run_dir`, if anything.
    fn recover(&self, run_dir: PathBuf) -> BoxFuture<'_, Option<Box<dyn TaskHandle>>> {
        let _ = run_dir;
        Box::pin(async { None })
    }
}

/// The enabled drivers by name.
#[derive(Clone, Default)]
pub struct Drivers {
    by_name: BTreeMap<String, Arc<dyn Driver>>,
}

impl Drivers {
    /// The drivers `config.drivers` enables; unknown names are returned as errors.
    pub fn from_config(config: &ClientConfig, clock: Arc<dyn Clock>) -> (Drivers, Vec<String>) {
        let mut drivers = Drivers::default();
        let mut unknown = Vec::new();
        for name in &config.drivers {
            match name.as_str() {
                "raw_exec" => drivers
                    .insert(Arc::new(raw_exec::RawExecDriver::new(config.executor.clone(), config.poll_interval))),
                "exec" => drivers.insert(Arc::new(exec::ExecDriver::new(
                    config.executor.clone(),
                    config.poll_interval,
                    config.chroot_env.clone(),
                ))),
                "mock" => drivers.insert(Arc::new(mock::MockDriver::new(clock.clone(), config.node_name.clone()))),
                #[cfg(not(madsim))]
                "docker" => {
                    drivers.insert(Arc::new(docker::DockerDriver::new(config.docker.clone(), config.cpu_total_compute)))
                }
                #[cfg(madsim)]
                "docker" => unknown.push("unknown driver \"docker\": unavailable in the simulator".to_owned()),
                other => unknown.push(format!(
                    "unknown driver \"{other}\" in the client configuration (known: {})",
                    crate::config::KNOWN_DRIVERS.join(", ")
                )),
            }
        }
        (drivers, unknown)
    }

    pub fn insert(&mut self, driver: Arc<dyn Driver>) {
        self.by_name.insert(driver.name().to_owned(), driver);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Driver>> {
        self.by_name.get(name)
    }

    /// Every driver's [`Driver::forget_alloc`].
    pub async fn forget_alloc(&self, alloc: &AllocId) {
        for driver in self.by_name.values() {
            driver.forget_alloc(alloc).await;
        }
    }

    /// Every driver's [`Driver::probe`], one after the other.
    pub async fn probe(&self) {
        for driver in self.by_name.values() {
            driver.probe().await;
        }
    }

    pub fn fingerprint(&self, now_ns: i64) -> BTreeMap<String, DriverInfo> {
        self.by_name.iter().map(|(name, d)| (name.clone(), d.fingerprint(now_ns))).collect()
    }
}

impl std::fmt::Debug for Drivers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

/// A signal's number from its name (`SIGINT`, `SIGTERM`; the `SIG` is optional).
pub fn parse_signal(name: &str) -> Option<i32> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    Some(match bare {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ABRT" => libc::SIGABRT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "WINCH" => libc::SIGWINCH,
        "IO" => libc::SIGIO,
        "SYS" => libc::SIGSYS,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_parse_with_or_without_sig() {
        assert_eq!(parse_signal("SIGINT"), Some(2));
        assert_eq!(parse_signal("term"), Some(15));
        assert_eq!(parse_signal("SIGKILL"), Some(9));
        assert_eq!(parse_signal("SIGFOO"), None);
    }

    #[test]
    fn only_clean_exits_are_successful() {
        assert!(ExitResult::code(0).successful());
        assert!(!ExitResult::code(1).successful());
        assert!(!ExitResult::signaled(15).successful());
        assert!(!ExitResult::lost("gone").successful());
    }
}
