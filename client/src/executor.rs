//! The raw_exec executor: a small process between the client and a task, so that the task
//! survives the client (a crash, an upgrade, Ctrl-C in the agent's terminal) and the next
//! client can re-attach to it.
//!
//! The agent runs it as `stead executor <spec-file>` (this crate's tests as the
//! `stead-executor` binary). It:
//!
//! 1. starts its own session (`setsid`), so signals to the agent's terminal or process
//!    group do not reach it;
//! 2. reads the [`ExecSpec`] and starts the task in a process group of its own (the client
//!    stops a task by signalling that group), with the spec's environment and working
//!    directory, stdin from `/dev/null`;
//! 3. writes [`ExecState`] (its own and the task's PID and start time) to `state.json`;
//! 4. copies the task's stdout and stderr into rotated log files;
//! 5. waits for the task, SIGKILLs whatever is left of its process group (no orphans),
//!    writes the exit ([`ExecExit`]) atomically to `exit.json`, and exits.
//!
//! All files live in the spec file's directory (the attempt's run dir). It uses threads
//! and blocking I/O, no async runtime: it is never part of a simulation.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::driver::ExitResult;
use crate::driver::process::{self, ProcessId};
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
    pub cwd: PathBuf,
    pub logs_dir: PathBuf,
    pub task: String,
    pub log_limits: LogLimits,
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

    // A relative path with a slash means a file in the task directory (an artifact);
    // a bare name is looked up in the task's PATH.
    let program = if spec.command.contains('/') && !spec.command.starts_with('/') {
        spec.cwd.join(&spec.command)
    } else {
        PathBuf::from(&spec.command)
    };
    let mut child = std::process::Command::new(&program)
        .args(&spec.args)
        .env_clear()
        .envs(&spec.env)
        .current_dir(&spec.cwd)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| StartError {
            message: format!("failed to launch command \"{}\": {e}", spec.command),
            // The same command fails the same way next time.
            recoverable: !matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied)
                && e.raw_os_error() != Some(libc::ENOEXEC),
        })?;
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

    let result = match child.wait() {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ExitResult::code(code),
            (None, Some(signal)) => ExitResult::signaled(signal),
            (None, None) => ExitResult::lost(format!("unexpected wait status {status}")),
        },
        Err(e) => ExitResult::lost(format!("waiting for the task failed: {e}")),
    };
    // Whatever the task left behind in its group goes with it.
    let _ = process::signal_group(task_pid, libc::SIGKILL);
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
