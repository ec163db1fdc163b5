//! The `mock` driver: a task that is only a timer, for tests, benchmarks and the
//! simulator. No OS processes and no threads: tokio timers and `std::fs` writes only, so it
//! runs under madsim. Options as Nomad's mock driver:
//!
//! * `run_for` (Go duration; 0 or absent: exits at once), then exits with `exit_code`,
//!   `exit_signal` and `exit_err_msg`;
//! * `start_error` (+ `start_error_recoverable`): starting fails with that message;
//! * `start_block_for`: starting takes that long;
//! * `kill_after`: after a kill signal the task takes that long to exit (past the kill
//!   timeout SIGKILL ends it at once);
//! * `stdout_string`, written to the stdout log at start and then `stdout_repeat` more
//!   times every `stdout_repeat_duration`.
//!
//! The persisted handle holds the start time and the config: a restarted client
//! re-attaches and the task exits when `run_for` has passed since its start (at once if
//! it passed while no client ran).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use stead_model::{DriverInfo, OpaqueMap};
use tokio::sync::{mpsc, watch};

use super::config::ConfigFields;
use super::{Driver, DriverError, ExitResult, FsIsolation, TaskHandle, TaskSpec};
use crate::clock::Clock;
use crate::logs::{LogKind, RotatingWriter, log_prefix};

const KEYS: &[&str] = &[
    "run_for",
    "exit_code",
    "exit_signal",
    "exit_err_msg",
    "start_error",
    "start_error_recoverable",
    "start_block_for",
    "kill_after",
    "stdout_string",
    "stdout_repeat",
    "stdout_repeat_duration",
];

/// The task `config` the mock driver reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MockConfig {
    pub run_for: Duration,
    pub exit_code: i32,
    pub exit_signal: i32,
    pub exit_err_msg: Option<String>,
    pub start_error: Option<String>,
    pub start_error_recoverable: bool,
    pub start_block_for: Duration,
    pub kill_after: Option<Duration>,
    pub stdout_string: String,
    pub stdout_repeat: u32,
    pub stdout_repeat_duration: Duration,
}

impl MockConfig {
    pub fn parse(config: &OpaqueMap) -> Result<Self, DriverError> {
        let f = ConfigFields::new("mock", config, KEYS)?;
        let int32 = |key: &str| -> Result<i32, DriverError> {
            let v = f.int(key)?.unwrap_or(0);
            i32::try_from(v).map_err(|_| DriverError::Config(format!("invalid mock config: \"{key}\" is out of range")))
        };
        Ok(Self {
            run_for: f.duration("run_for")?.unwrap_or_default(),
            exit_code: int32("exit_code")?,
            exit_signal: int32("exit_signal")?,
            exit_err_msg: f.string("exit_err_msg")?.filter(|s| !s.is_empty()),
            start_error: f.string("start_error")?.filter(|s| !s.is_empty()),
            start_error_recoverable: f.bool("start_error_recoverable")?.unwrap_or(false),
            start_block_for: f.duration("start_block_for")?.unwrap_or_default(),
            kill_after: f.duration("kill_after")?,
            stdout_string: f.string("stdout_string")?.unwrap_or_default(),
            stdout_repeat: u32::try_from(f.int("stdout_repeat")?.unwrap_or(0).max(0)).unwrap_or(u32::MAX),
            stdout_repeat_duration: f.duration("stdout_repeat_duration")?.unwrap_or_default(),
        })
    }

    fn exit(&self) -> ExitResult {
        ExitResult {
            exit_code: self.exit_code,
            signal: self.exit_signal,
            err: self.exit_err_msg.clone(),
            oom_killed: false,
        }
    }
}

pub struct MockDriver {
    clock: Arc<dyn Clock>,
    /// The node the tasks run on, for [`live_tasks`].
    node: String,
}

impl MockDriver {
    pub fn new(clock: Arc<dyn Clock>, node: impl Into<String>) -> Self {
        Self { clock, node: node.into() }
    }
}

/// A running mock task: (node, allocation, task).
pub type LiveKey = (String, String, String);

/// The mock tasks running in this process, and how many of each: what the simulator
/// compares with what the servers assigned (a count above one is a task running twice).
/// A task counts from its start (or re-attach) until its timer ends, it is killed, or
/// its client goes away.
pub fn live_tasks() -> BTreeMap<LiveKey, usize> {
    LIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

static LIVE: std::sync::Mutex<BTreeMap<LiveKey, usize>> = std::sync::Mutex::new(BTreeMap::new());

/// Counts one running task while it lives.
struct Live(LiveKey);

impl Live {
    fn new(key: LiveKey) -> Live {
        *LIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(key.clone()).or_default() += 1;
        Live(key)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = live.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                live.remove(&self.0);
            }
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Persisted {
    config: OpaqueMap,
    started_at_ns: i64,
    /// Which task this is (absent in handles written before they were recorded).
    #[serde(default)]
    alloc_id: String,
    #[serde(default)]
    task: String,
}

/// Where a fresh task writes its `stdout_string`.
struct Output {
    writer: RotatingWriter,
    text: String,
    repeats_left: u32,
    every: Duration,
}

impl Driver for MockDriver {
    fn name(&self) -> &'static str {
        "mock"
    }

    fn fs_isolation(&self) -> FsIsolation {
        FsIsolation::None
    }

    fn fingerprint(&self, now_ns: i64) -> DriverInfo {
        DriverInfo {
            detected: true,
            healthy: true,
            health_description: "Healthy".to_owned(),
            update_time: stead_model::time::format_rfc3339_nanos(now_ns),
            ..Default::default()
        }
    }

    fn start(&self, spec: TaskSpec) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>> {
        Box::pin(async move {
            let config = MockConfig::parse(&spec.config)?;
            if !config.start_block_for.is_zero() {
                tokio::time::sleep(config.start_block_for).await;
            }
            if let Some(message) = &config.start_error {
                return Err(DriverError::Start {
                    message: message.clone(),
                    recoverable: config.start_error_recoverable,
                });
            }
            let output = if config.stdout_string.is_empty() {
                None
            } else {
                let prefix = log_prefix(&spec.task, LogKind::Stdout);
                let writer =
                    RotatingWriter::open(&spec.logs_dir, &prefix, spec.log_limits).map_err(|e| DriverError::Start {
                        message: format!("cannot open the stdout log in {}: {e}", spec.logs_dir.display()),
                        recoverable: true,
                    })?;
                Some(Output {
                    writer,
                    text: config.stdout_string.clone(),
                    repeats_left: config.stdout_repeat,
                    every: config.stdout_repeat_duration,
                })
            };
            let persisted = Persisted {
                config: spec.config.clone(),
                started_at_ns: self.clock.now_ns(),
                alloc_id: spec.alloc_id.to_string(),
                task: spec.task.clone(),
            };
            let live = Live::new((self.node.clone(), persisted.alloc_id.clone(), persisted.task.clone()));
            Ok(spawn_task(config.run_for, &config, persisted, output, live))
        })
    }

    fn reattach(&self, persisted: serde_json::Value) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>> {
        Box::pin(async move {
            let p: Persisted = serde_json::from_value(persisted)
                .map_err(|e| DriverError::Reattach(format!("not a mock handle: {e}")))?;
            let config = MockConfig::parse(&p.config).map_err(|e| DriverError::Reattach(e.to_string()))?;
            let elapsed = u64::try_from(self.clock.now_ns().saturating_sub(p.started_at_ns)).unwrap_or(0);
            let remaining = config.run_for.saturating_sub(Duration::from_nanos(elapsed));
            let live = Live::new((self.node.clone(), p.alloc_id.clone(), p.task.clone()));
            Ok(spawn_task(remaining, &config, p, None, live))
        })
    }
}

/// Runs the task's timer in a tokio task; it ends when the handle is dropped.
fn spawn_task(
    remaining: Duration,
    config: &MockConfig,
    persisted: Persisted,
    output: Option<Output>,
    live: Live,
) -> Box<dyn TaskHandle> {
    let (exit_tx, exit_rx) = watch::channel(None);
    let (signal_tx, signal_rx) = mpsc::unbounded_channel();
    let exit = config.exit();
    let kill_after = config.kill_after;
    tokio::spawn(async move {
        let result = run(remaining, exit, kill_after, output, signal_rx).await;
        drop(live);
        if let Some(result) = result {
            let _ = exit_tx.send(Some(result));
        }
    });
    Box::new(MockHandle {
        persisted: serde_json::to_value(persisted).unwrap_or_default(),
        exit: exit_rx,
        signals: signal_tx,
    })
}

fn sleep_box(d: Duration) -> Pin<Box<tokio::time::Sleep>> {
    Box::pin(tokio::time::sleep(d))
}

/// Pending forever when there is nothing to wait for.
async fn maybe(sleep: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match sleep {
        Some(s) => s.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The task's life; `None` when its handle was dropped (the client went away).
async fn run(
    remaining: Duration,
    exit: ExitResult,
    kill_after: Option<Duration>,
    mut output: Option<Output>,
    mut signals: mpsc::UnboundedReceiver<i32>,
) -> Option<ExitResult> {
    let mut done = sleep_box(remaining);
    let mut next_output = None;
    if let Some(out) = output.as_mut() {
        write_output(out);
        if out.repeats_left > 0 {
            next_output = Some(sleep_box(out.every));
        }
    }
    let mut kill_timer = None;
    let mut kill_signal = libc::SIGTERM;
    loop {
        tokio::select! {
            biased;
            signal = signals.recv() => match signal {
                None => return None,
                Some(s) if s == libc::SIGKILL => return Some(ExitResult::signaled(s)),
                Some(s) => match kill_after {
                    // The first signal starts the countdown; later ones do not reset it.
                    Some(after) => {
                        if kill_timer.is_none() {
                            kill_signal = s;
                            kill_timer = Some(sleep_box(after));
                        }
                    }
                    None => return Some(ExitResult::signaled(s)),
                },
            },
            _ = maybe(&mut kill_timer) => return Some(ExitResult::signaled(kill_signal)),
            _ = done.as_mut() => return Some(exit),
            _ = maybe(&mut next_output) => {
                if let Some(out) = output.as_mut() {
                    write_output(out);
                    out.repeats_left -= 1;
                    next_output = (out.repeats_left > 0).then(|| sleep_box(out.every));
                }
            }
        }
    }
}

fn write_output(out: &mut Output) {
    if let Err(e) = out.writer.write_all(out.text.as_bytes()) {
        tracing::warn!(error = %e, "mock driver: writing stdout failed");
    }
}

struct MockHandle {
    persisted: serde_json::Value,
    exit: watch::Receiver<Option<ExitResult>>,
    signals: mpsc::UnboundedSender<i32>,
}

impl TaskHandle for MockHandle {
    fn persisted(&self) -> serde_json::Value {
        self.persisted.clone()
    }

    fn wait(&self) -> BoxFuture<'_, ExitResult> {
        let mut exit = self.exit.clone();
        Box::pin(async move {
            match exit.wait_for(Option::is_some).await {
                Ok(result) => result.clone().unwrap_or_default(),
                // The timer task is gone only if the runtime is shutting down.
                Err(_) => ExitResult::lost("mock task timer stopped"),
            }
        })
    }

    fn signal(&self, signal: i32) -> BoxFuture<'_, Result<(), DriverError>> {
        // Sending fails only once the task has exited: not an error.
        let _ = self.signals.send(signal);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;
    use crate::logs::LogLimits;

    fn map(v: serde_json::Value) -> OpaqueMap {
        serde_json::from_value(v).unwrap()
    }

    fn spec(dir: &std::path::Path, config: serde_json::Value) -> TaskSpec {
        TaskSpec {
            alloc_id: "a1".into(),
            task: "t".to_owned(),
            config: map(config),
            env: Default::default(),
            task_dir: dir.join("t"),
            alloc_dir: dir.join("alloc"),
            logs_dir: dir.join("logs"),
            log_limits: LogLimits::default(),
            run_dir: dir.join("run"),
            resources: Default::default(),
            ports: Vec::new(),
        }
    }

    #[test]
    fn options_parse_as_nomads_mock_driver() {
        let c = MockConfig::parse(&map(json!({
            "run_for": "1.5s", "exit_code": 3, "exit_signal": 0, "exit_err_msg": "boom",
            "start_block_for": "10ms", "kill_after": "2s", "stdout_string": "hi", "stdout_repeat": 2,
            "stdout_repeat_duration": "100ms", "start_error_recoverable": true
        })))
        .unwrap();
        assert_eq!(c.run_for, Duration::from_millis(1500));
        assert_eq!((c.exit_code, c.exit_err_msg.as_deref()), (3, Some("boom")));
        assert_eq!(c.kill_after, Some(Duration::from_secs(2)));
        assert_eq!((c.stdout_repeat, c.stdout_repeat_duration), (2, Duration::from_millis(100)));
        let e = MockConfig::parse(&map(json!({"run_for": "soon"}))).unwrap_err();
        assert!(e.to_string().contains("\"run_for\""), "{e}");
        assert!(MockConfig::parse(&map(json!({"exit_code": "three"}))).is_err());
    }

    #[tokio::test]
    async fn task_exits_with_its_configured_result_after_run_for() {
        let dir = tempfile::tempdir().unwrap();
        let driver = MockDriver::new(Arc::new(ManualClock::new(0)), "test-node");
        let config = json!({"run_for": "50ms", "exit_code": 2, "stdout_string": "hello\n", "stdout_repeat": 1, "stdout_repeat_duration": "1ms"});
        let handle = driver.start(spec(dir.path(), config)).await.unwrap();
        assert_eq!(handle.wait().await, ExitResult::code(2));
        assert_eq!(handle.wait().await, ExitResult::code(2), "wait repeats its answer");
        assert_eq!(std::fs::read_to_string(dir.path().join("logs/t.stdout.0")).unwrap(), "hello\nhello\n");
    }

    #[tokio::test]
    async fn a_running_task_is_counted_live_until_it_exits_and_a_reattached_one_again() {
        let dir = tempfile::tempdir().unwrap();
        let driver = MockDriver::new(Arc::new(ManualClock::new(0)), "live-node");
        let key = ("live-node".to_owned(), "a1".to_owned(), "t".to_owned());
        let handle = driver.start(spec(dir.path(), json!({"run_for": "20ms"}))).await.unwrap();
        assert_eq!(live_tasks().get(&key), Some(&1));
        let again = driver.reattach(handle.persisted()).await.unwrap();
        assert_eq!(live_tasks().get(&key), Some(&2), "a second instance of one task shows as 2");
        handle.wait().await;
        again.wait().await;
        assert_eq!(live_tasks().get(&key), None, "an exited task is not live");
    }

    #[tokio::test]
    async fn start_errors_carry_their_recoverability() {
        let dir = tempfile::tempdir().unwrap();
        let driver = MockDriver::new(Arc::new(ManualClock::new(0)), "test-node");
        let err = driver.start(spec(dir.path(), json!({"start_error": "nope"}))).await.err().unwrap();
        assert_eq!(err, DriverError::Start { message: "nope".to_owned(), recoverable: false });
        let err =
            driver.start(spec(dir.path(), json!({"start_error": "x", "start_error_recoverable": true}))).await.err();
        assert!(err.unwrap().recoverable());
    }

    #[tokio::test]
    async fn kill_ends_the_task_with_the_signal_and_kill_after_delays_it_until_sigkill() {
        let dir = tempfile::tempdir().unwrap();
        let driver = MockDriver::new(Arc::new(ManualClock::new(0)), "test-node");
        let handle = driver.start(spec(dir.path(), json!({"run_for": "1h"}))).await.unwrap();
        assert_eq!(
            handle.kill(libc::SIGINT, Duration::from_secs(5)).await.unwrap(),
            ExitResult::signaled(libc::SIGINT)
        );

        let stubborn = driver.start(spec(dir.path(), json!({"run_for": "1h", "kill_after": "1h"}))).await.unwrap();
        let exit = stubborn.kill(libc::SIGINT, Duration::from_millis(20)).await.unwrap();
        assert_eq!(exit, ExitResult::signaled(libc::SIGKILL));
    }

    #[tokio::test]
    async fn reattached_task_runs_only_what_is_left_of_run_for() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000));
        let driver = MockDriver::new(clock.clone(), "test-node");
        let handle = driver.start(spec(dir.path(), json!({"run_for": "1h", "exit_code": 4}))).await.unwrap();
        let persisted = handle.persisted();
        drop(handle);
        // An hour passed while no client ran: the task is over the moment we look.
        clock.advance(Duration::from_secs(3600));
        let again = driver.reattach(persisted).await.unwrap();
        assert_eq!(again.wait().await, ExitResult::code(4));
        assert!(driver.reattach(json!({"nonsense": 1})).await.is_err());
    }
}
