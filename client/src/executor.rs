//! The executor: a small process between the client and a task, so that the task
//! survives the client (a crash, an upgrade, Ctrl-C in the agent's terminal) and the next
//! client can re-attach to it. Shared by the process drivers (`raw_exec`, `exec`).
//!
//! The agent runs it as `stead executor <spec-file>` (this crate's tests as the
//! `stead-executor` binary). It:
//!
//! 1. starts its own session (`setsid`), so signals to the agent's terminal or process
//!    group do not reach it;
//! 2. reads the [`ExecSpec`] and starts the task in a process group of its own (the client
//!    stops a task by signalling that group), with the spec's environment and working
//!    directory, stdin from `/dev/null`; with an [`IsolationSpec`] (the exec driver) it
//!    first creates the task's cgroups and then starts it in namespaces of its own,
//!    chrooted into its task directory (see [`crate::driver::isolation`]);
//! 3. writes [`ExecState`] (its own and the task's PID and start time) to `state.json`;
//! 4. copies the task's stdout and stderr into rotated log files;
//! 5. waits for the task, SIGKILLs whatever is left of its process group (no orphans),
//!    reads the OOM counter and removes the cgroups of an isolated task, writes the exit
//!    ([`ExecExit`]) atomically to `exit.json`, and exits.
//!
//! All files live in the spec file's directory (the attempt's run dir). The executor
//! uses threads and blocking I/O, no async runtime: it is never part of a simulation.
//!
//! The client's side is [`Launcher`]: it writes the spec, starts the executor, and hands
//! out a [`TaskHandle`] that watches those files. The handle the client persists names
//! the attempt's run dir and both processes by PID and start time. Re-attached, the
//! handle polls: an exit file means the task exited (perhaps while no client watched);
//! an executor that is gone without one means the task is lost (any process left in its
//! group is killed, and the restart policy decides).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::config::ExecutorCommand;
use crate::driver::cgroup::{self, CgroupPlan};
use crate::driver::isolation::IsolationSpec;
use crate::driver::process::{self, ProcessId};
use crate::driver::{DriverError, ExitResult, TaskHandle};
use crate::logs::{LogKind, LogLimits, RotatingWriter, log_prefix};
use crate::state::{read_json, write_json};

/// How long the log copiers may drain the pipes after the task exited. Background
/// processes that kept the pipes open are killed with the group; this bounds the rest.
const DRAIN_MAX: Duration = Duration::from_secs(2);

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    pub command: String,
    pub args: Vec<String>,
    /// The task's whole environment (nothing else is inherited).
    pub env: BTreeMap<String, String>,
    /// The working directory as the task sees it: inside the isolation root if there is
    /// one, else a host path.
    pub cwd: PathBuf,
    pub logs_dir: PathBuf,
    pub task: String,
    pub log_limits: LogLimits,
    /// Namespaces, chroot and cgroups (the exec driver); none for raw_exec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<IsolationSpec>,
}

/// Written once the task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecState {
    pub executor: ProcessId,
    pub task: ProcessId,
}

/// Written when the task has exited, or could not start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecExit {
    pub result: ExitResult,
    /// Set when the task never ran; `result` is then meaningless.
    pub start_error: Option<String>,
    /// Whether starting again may work (a missing or non-executable command will not).
    #[serde(default)]
    pub start_error_recoverable: bool,
}

pub fn spec_path(run_dir: &Path) -> PathBuf {
    run_dir.join("spec.json")
}
pub fn state_path(run_dir: &Path) -> PathBuf {
    run_dir.join("state.json")
}
pub fn exit_path(run_dir: &Path) -> PathBuf {
    run_dir.join("exit.json")
}
/// The executor's own stdout and stderr.
pub fn log_path(run_dir: &Path) -> PathBuf {
    run_dir.join("executor.log")
}

/// Runs the executor: `args` is what follows `executor` on the command line (the spec
/// file). Blocks until the task exits. Call it before starting an async runtime.
pub fn main(args: &[String]) -> ExitCode {
    let [spec_file] = args else {
        eprintln!("usage: stead executor <spec-file>");
        return ExitCode::from(2);
    };
    // SAFETY: plain syscall. It fails only if we already lead a process group, in which
    // case we keep the session we have (the client starts us as a plain child).
    unsafe {
        libc::setsid();
    }
    let spec_file = Path::new(spec_file);
    let run_dir = spec_file.parent().unwrap_or(Path::new(".")).to_owned();
    match run(spec_file, &run_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(StartError { message, recoverable }) => {
            eprintln!("executor: {message}");
            let exit = ExecExit {
                result: ExitResult::default(),
                start_error: Some(message),
                start_error_recoverable: recoverable,
            };
            if let Err(e) = write_json(&exit_path(&run_dir), &exit) {
                eprintln!("executor: cannot record the failure: {e}");
            }
            ExitCode::from(1)
        }
    }
}

struct StartError {
    message: String,
    recoverable: bool,
}

impl From<String> for StartError {
    fn from(message: String) -> Self {
        Self { message, recoverable: true }
    }
}

fn launch_error(command: &str, e: std::io::Error) -> StartError {
    StartError {
        message: format!("failed to launch command \"{command}\": {e}"),
        // The same command fails the same way next time.
        recoverable: !matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied)
            && e.raw_os_error() != Some(libc::ENOEXEC),
    }
}

/// An isolated task's setup, from before the fork until its cgroups are removed (on
/// drop, so that every way out of [`run`] removes them).
struct Isolated {
    cgroup: Option<CgroupPlan>,
}

impl Isolated {
    /// Creates the cgroups and prepares the namespaces and mounts; `command` then
    /// enters them between fork and exec.
    #[cfg(target_os = "linux")]
    fn set_up(
        spec: &IsolationSpec,
        cwd: &Path,
        command: &mut std::process::Command,
    ) -> Result<(Self, std::sync::Arc<crate::driver::isolation::Prepared>), StartError> {
        if let Some(plan) = &spec.cgroup {
            cgroup::apply(plan)?;
        }
        let isolated = Isolated { cgroup: spec.cgroup.clone() };
        let prepared = std::sync::Arc::new(crate::driver::isolation::Prepared::new(spec, cwd)?);
        let child_side = prepared.clone();
        // SAFETY: `enter` makes only syscalls on what `Prepared::new` made.
        unsafe {
            command.pre_exec(move || child_side.enter());
        }
        Ok((isolated, prepared))
    }

    /// Forks the task as PID 1 of a new pid namespace.
    #[cfg(target_os = "linux")]
    fn spawn(
        command: &mut std::process::Command,
        name: &str,
        prepared: &crate::driver::isolation::Prepared,
    ) -> Result<std::process::Child, StartError> {
        let pid_namespace = crate::driver::isolation::PidNamespace::unshare()?;
        let spawned = command.spawn();
        if let Err(e) = pid_namespace.restore() {
            // Without it the executor cannot start its log copiers.
            if let Ok(mut child) = spawned {
                let _ = child.kill();
                let _ = child.wait();
            }
            return Err(e.into());
        }
        spawned.map_err(|e| match prepared.failed_step() {
            Some(what) => StartError {
                message: format!("failed to isolate the task: {what}: {e}"),
                // A missing path or a refused operation stays so; a busy mount or a
                // lack of memory may pass.
                recoverable: !matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ENOTDIR | libc::EACCES | libc::EPERM | libc::EINVAL | libc::ELOOP)
                ),
            },
            None => launch_error(name, e),
        })
    }

    /// Whether the kernel OOM-killed one of the task's processes. Before the drop.
    fn oom_killed(&self) -> bool {
        self.cgroup.as_ref().and_then(cgroup::oom_kills).is_some_and(|n| n > 0)
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        if let Some(plan) = &self.cgroup
            && let Err(e) = cgroup::remove(plan)
        {
            eprintln!("executor: {e}");
        }
    }
}

/// The task's program: a relative path with a slash is a file in the task directory (an
/// artifact), which an isolated task sees as `/`; a bare name is looked up in the
/// task's PATH.
fn program(spec: &ExecSpec) -> PathBuf {
    if spec.command.contains('/') && !spec.command.starts_with('/') {
        match spec.isolation {
            Some(_) => Path::new("/").join(&spec.command),
            None => spec.cwd.join(&spec.command),
        }
    } else {
        PathBuf::from(&spec.command)
    }
}

/// Everything up to a running task is a start error (`Err`); after that the exit file
/// is written here.
fn run(spec_file: &Path, run_dir: &Path) -> Result<(), StartError> {
    let spec: ExecSpec = read_json(spec_file)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("spec file {} does not exist", spec_file.display()))?;
    let open = |kind| {
        RotatingWriter::open(&spec.logs_dir, &log_prefix(&spec.task, kind), spec.log_limits)
            .map_err(|e| format!("cannot open the {} log in {}: {e}", kind.as_str(), spec.logs_dir.display()))
    };
    let (stdout_log, stderr_log) = (open(LogKind::Stdout)?, open(LogKind::Stderr)?);

    let mut command = std::process::Command::new(program(&spec));
    command
        .args(&spec.args)
        .env_clear()
        .envs(&spec.env)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (isolated, spawned) = match &spec.isolation {
        None => (None, command.current_dir(&spec.cwd).spawn().map_err(|e| launch_error(&spec.command, e))),
        #[cfg(target_os = "linux")]
        Some(isolation) => {
            let (isolated, prepared) = Isolated::set_up(isolation, &spec.cwd, &mut command)?;
            (Some(isolated), Isolated::spawn(&mut command, &spec.command, &prepared))
        }
        #[cfg(not(target_os = "linux"))]
        Some(_) => return Err("isolated tasks (the exec driver) need Linux".to_owned().into()),
    };
    // The pre_exec closure holds the prepared descriptors (cgroup.procs): close them.
    drop(command);
    let mut child = spawned?;
    let task_pid = child.id();
    let me = process::identify(std::process::id());
    let task = process::identify(task_pid);
    let (Some(executor), Some(task)) = (me, task) else {
        // Without identities the client could not re-attach safely: do not run blind.
        let _ = process::signal_group(task_pid, libc::SIGKILL);
        let _ = child.wait();
        return Err("cannot read /proc for the executor or the task".to_owned().into());
    };
    if let Err(e) = write_json(&state_path(run_dir), &ExecState { executor, task }) {
        let _ = process::signal_group(task_pid, libc::SIGKILL);
        let _ = child.wait();
        return Err(format!("cannot record the task's state: {e}").into());
    }

    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let mut copiers = 0;
    if let Some(out) = child.stdout.take() {
        spawn_copier(out, stdout_log, done_tx.clone());
        copiers += 1;
    }
    if let Some(err) = child.stderr.take() {
        spawn_copier(err, stderr_log, done_tx.clone());
        copiers += 1;
    }
    drop(done_tx);

    let mut result = match child.wait() {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ExitResult::code(code),
            (None, Some(signal)) => ExitResult::signaled(signal),
            (None, None) => ExitResult::lost(format!("unexpected wait status {status}")),
        },
        Err(e) => ExitResult::lost(format!("waiting for the task failed: {e}")),
    };
    // Whatever the task left behind in its group goes with it (an isolated task's whole
    // pid namespace went with it already).
    let _ = process::signal_group(task_pid, libc::SIGKILL);
    if let Some(isolated) = isolated {
        result.oom_killed = isolated.oom_killed();
        drop(isolated);
    }
    let deadline = std::time::Instant::now() + DRAIN_MAX;
    for _ in 0..copiers {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            eprintln!("executor: log copy did not finish within {DRAIN_MAX:?}; exiting anyway");
            break;
        }
    }
    let exit = ExecExit { result, start_error: None, start_error_recoverable: false };
    // Nothing to fall back on: without the exit file the client will call the task lost.
    if let Err(e) = write_json(&exit_path(run_dir), &exit) {
        eprintln!("executor: cannot record the task's exit: {e}");
    }
    Ok(())
}

/// Copies a pipe into a log until EOF. A failing log (disk full) does not stop the copy:
/// the task must not block on a full pipe.
fn spawn_copier(mut pipe: impl Read + Send + 'static, mut log: RotatingWriter, done: std::sync::mpsc::Sender<()>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        let mut failed = false;
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Err(e) = log.write_all(&buf[..n])
                        && !failed
                    {
                        eprintln!("executor: writing the task's log failed (output is dropped from now on): {e}");
                        failed = true;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = done.send(());
    });
}

// The client's side.

/// How long a started executor may take to report the task running.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `launch` looks for the executor's state file.
const START_POLL: Duration = Duration::from_millis(10);
/// After a crash mid-start, how long `recover` waits for an executor it cannot identify
/// yet to report (it writes its state right after starting the task).
const RECOVER_WAIT: Duration = Duration::from_secs(2);

/// Starts executors for one driver and watches their tasks.
pub struct Launcher {
    driver: &'static str,
    executor: ExecutorCommand,
    poll: Duration,
}

#[derive(Debug, Serialize, Deserialize)]
struct Persisted {
    run_dir: PathBuf,
    state: ExecState,
}

fn read_exit(run_dir: &Path) -> Option<ExecExit> {
    read_json::<ExecExit>(&exit_path(run_dir)).ok().flatten()
}

fn read_state(run_dir: &Path) -> Option<ExecState> {
    read_json::<ExecState>(&state_path(run_dir)).ok().flatten()
}

impl Launcher {
    /// `poll`: how often a handle looks for the exit.
    pub fn new(driver: &'static str, executor: ExecutorCommand, poll: Duration) -> Self {
        Self { driver, executor, poll: poll.max(Duration::from_millis(1)) }
    }

    /// Why the executor cannot be started, if it cannot.
    pub fn check_executor(&self) -> Result<(), String> {
        let program = &self.executor.program;
        if std::fs::metadata(program).is_ok_and(|m| m.is_file()) {
            Ok(())
        } else {
            Err(format!("executor {} not found; set the client's executor command", program.display()))
        }
    }

    fn handle(&self, run_dir: PathBuf, state: ExecState, child: Option<std::process::Child>) -> Box<dyn TaskHandle> {
        Box::new(ExecutorHandle { run_dir, state, child: Mutex::new(child), poll: self.poll })
    }

    /// Starts an executor for `spec` in `run_dir` (emptied first) and waits until it
    /// reports the task running.
    pub async fn launch(&self, run_dir: PathBuf, spec: &ExecSpec) -> Result<Box<dyn TaskHandle>, DriverError> {
        let io_err = |what: &str, e: &dyn std::fmt::Display| DriverError::Start {
            message: format!("{what} in {}: {e}", run_dir.display()),
            recoverable: true,
        };
        // A fresh directory: files of an earlier try must not be mistaken for this one's.
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&run_dir).map_err(|e| io_err("cannot create the run dir", &e))?;
        let spec_file = spec_path(&run_dir);
        write_json(&spec_file, spec).map_err(|e| io_err("cannot write the executor spec", &e))?;
        let log =
            std::fs::File::create(log_path(&run_dir)).map_err(|e| io_err("cannot create the executor log", &e))?;
        let log_err = log.try_clone().map_err(|e| io_err("cannot create the executor log", &e))?;
        let mut child = std::process::Command::new(&self.executor.program)
            .args(&self.executor.args)
            .arg(&spec_file)
            .stdin(Stdio::null())
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
                let message = exit.start_error.unwrap_or_else(|| "the executor exited before the task ran".to_owned());
                // The executor says whether trying again may help: a command that is
                // missing or not executable gives the same answer next time, a full
                // disk or a busy cgroup may not.
                return Err(DriverError::Start { message, recoverable: exit.start_error_recoverable });
            }
            if let Some(status) = exited {
                let log = std::fs::read_to_string(log_path(&run_dir)).unwrap_or_default();
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
    }

    /// The handle `persisted` names (see [`TaskHandle::persisted`]).
    pub fn reattach(&self, persisted: serde_json::Value) -> Result<Box<dyn TaskHandle>, DriverError> {
        let p: Persisted = serde_json::from_value(persisted)
            .map_err(|e| DriverError::Reattach(format!("not a {} handle: {e}", self.driver)))?;
        Ok(self.handle(p.run_dir, p.state, None))
    }

    /// After a crash mid-start: the executor `run_dir`'s spec was written for, if it
    /// reports a running task.
    pub async fn recover(&self, run_dir: PathBuf) -> Option<Box<dyn TaskHandle>> {
        if !spec_path(&run_dir).exists() {
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
    }
}

/// A task an executor runs, watched through its run dir.
struct ExecutorHandle {
    run_dir: PathBuf,
    state: ExecState,
    /// The executor, when this client started it: polled so it does not stay a zombie.
    child: Mutex<Option<std::process::Child>>,
    poll: Duration,
}

impl ExecutorHandle {
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

impl TaskHandle for ExecutorHandle {
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

    /// An executor that died (the task was lost) left the task's cgroups behind; the
    /// executor removes them itself otherwise, and then this finds nothing to do.
    // Executor tasks never run under madsim, which warns about blocking functions.
    #[cfg_attr(madsim, allow(deprecated))]
    fn cleanup(&self) -> BoxFuture<'_, ()> {
        // The executor removed the cgroups unless it died first; removing waits for
        // the processes in them, so off the runtime's threads.
        let run_dir = self.run_dir.clone();
        Box::pin(async move {
            let removal = tokio::task::spawn_blocking(move || {
                let plan = read_json::<ExecSpec>(&spec_path(&run_dir)).ok().flatten().and_then(|s| s.isolation?.cgroup);
                if let Some(plan) = plan
                    && let Err(e) = cgroup::remove(&plan)
                {
                    tracing::warn!(run_dir = %run_dir.display(), error = %e, "the task's cgroups remain");
                }
            });
            let _ = removal.await;
        })
    }

    fn pid(&self) -> Option<u32> {
        Some(self.state.task.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(isolation: Option<IsolationSpec>) -> ExecSpec {
        ExecSpec {
            command: "bin/run".to_owned(),
            args: vec![],
            env: BTreeMap::new(),
            cwd: "/data/a/t".into(),
            logs_dir: "/data/a/alloc/logs".into(),
            task: "t".to_owned(),
            log_limits: LogLimits::default(),
            isolation,
        }
    }

    #[test]
    fn a_spec_without_isolation_reads_and_writes_as_before() {
        let raw = spec(None);
        let json = serde_json::to_value(&raw).unwrap();
        assert!(json.get("isolation").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<ExecSpec>(json).unwrap(), raw);
    }

    #[test]
    fn relative_commands_are_in_the_task_directory_which_isolated_tasks_see_as_root() {
        assert_eq!(program(&spec(None)), Path::new("/data/a/t/bin/run"));
        let isolation = IsolationSpec {
            root: "/data/a/t".into(),
            mounts: vec![],
            hostname: "t".to_owned(),
            capabilities: vec![],
            cgroup: None,
        };
        assert_eq!(program(&spec(Some(isolation))), Path::new("/bin/run"));
        let bare = ExecSpec { command: "sh".to_owned(), ..spec(None) };
        assert_eq!(program(&bare), Path::new("sh"));
    }
}
