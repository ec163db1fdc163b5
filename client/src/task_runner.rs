//! One task of an allocation, from `Received` to dead: set up its directory, build its
//! environment, start it through its driver, wait, and on exit let the restart policy
//! ([`decide_restart`]) say whether and when it runs again; kill it when asked
//! (`kill_signal`, then SIGKILL after `kill_timeout`).
//!
//! Every change is written to the task's record (`task-<name>.json`) before the runner
//! goes on, and sent to the alloc runner. The record holds what a restarted client needs
//! to continue where this one stopped: the task state with its events, the restart
//! history, a pending restart's time, and the driver handle (or, while a start is in
//! flight, the attempt's run dir, so a task started just before a crash is found too).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stead_model::canonicalize::default_restart_policy;
use stead_model::{Allocation, RestartPolicy, Task, TaskEvent, TaskState, TaskStateKind};
use tokio::sync::{mpsc, watch};

use crate::allocdir::AllocDir;
use crate::driver::{Driver, DriverError, ExitResult, FsIsolation, TaskHandle, TaskSpec, parse_signal};
use crate::env::{EnvInput, TaskEnv, alloc_ports, task_resources};
use crate::events;
use crate::lifecycle::Role;
use crate::logs::LogLimits;
use crate::restart::{RestartDecision, RestartHistory, TaskOutcome, decide_restart, jittered};
use crate::shared::ClientCore;

/// Nomad's default `kill_timeout`.
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// What a task runner persists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct TaskRecord {
    pub state: TaskState,
    pub restart: RestartHistory,
    /// Start attempts so far (names the run dirs).
    pub attempt: u32,
    /// A restart waiting for its delay: when it is due (Unix ns).
    pub restart_at_ns: Option<i64>,
    pub run: RunRecord,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum RunRecord {
    #[default]
    Idle,
    /// `start` was called and has not returned.
    Starting {
        driver: String,
        run_dir: PathBuf,
    },
    Running {
        driver: String,
        run_dir: PathBuf,
        handle: serde_json::Value,
    },
}

/// Asks a task runner for something.
#[derive(Debug)]
pub(crate) enum TaskCommand {
    /// Stop the task for good; `events` (`Sibling Task Failed`, ...) are recorded first.
    Kill { events: Vec<TaskEvent> },
    /// A new version of the allocation (an in-place update): later starts use it.
    Update(Arc<Allocation>),
}

/// A task's state changed.
#[derive(Debug, Clone)]
pub(crate) struct TaskUpdate {
    pub task: String,
    pub state: TaskState,
}

pub(crate) struct TaskRunner {
    name: String,
    alloc: Arc<Allocation>,
    alloc_dir: AllocDir,
    core: Arc<ClientCore>,
    record: TaskRecord,
    commands: mpsc::UnboundedReceiver<TaskCommand>,
    /// True once the task's lifecycle lets it start ([`crate::lifecycle`]).
    gate: watch::Receiver<bool>,
    updates: mpsc::UnboundedSender<TaskUpdate>,
    handle: Option<Box<dyn TaskHandle>>,
    kill: Option<Vec<TaskEvent>>,
}

enum Woke {
    Exited(ExitResult),
    Command(Option<TaskCommand>),
}

impl TaskRunner {
    pub(crate) fn new(
        name: String,
        alloc: Arc<Allocation>,
        alloc_dir: AllocDir,
        core: Arc<ClientCore>,
        commands: mpsc::UnboundedReceiver<TaskCommand>,
        gate: watch::Receiver<bool>,
        updates: mpsc::UnboundedSender<TaskUpdate>,
    ) -> Self {
        Self {
            name,
            alloc,
            alloc_dir,
            core,
            record: TaskRecord { state: events::pending_state(), ..Default::default() },
            commands,
            gate,
            updates,
            handle: None,
            kill: None,
        }
    }

    fn now(&self) -> i64 {
        self.core.now()
    }

    fn task(&self) -> Option<&Task> {
        let job = self.alloc.job.as_deref()?;
        job.task_group(&self.alloc.task_group)?.tasks.iter().find(|t| t.name == self.name)
    }

    /// Persists the record and tells the alloc runner.
    fn commit(&mut self) {
        let path = self.core.state.task_file(&self.alloc.id, &self.name);
        if let Err(e) = self.core.state.write(&path, &self.record) {
            // Without the record a restarted client cannot re-attach; keep running anyway.
            tracing::error!(error = %e, task = %self.name, "cannot persist task state");
        }
        let _ = self.updates.send(TaskUpdate { task: self.name.clone(), state: self.record.state.clone() });
    }

    fn event(&mut self, event: TaskEvent) {
        events::record(&mut self.record.state, event);
        self.commit();
    }

    fn is_dead(&self) -> bool {
        self.record.state.state == TaskStateKind::Dead
    }

    /// Runs the task until it is dead for good (or the alloc runner goes away).
    /// `restored` is the record a previous client left.
    pub(crate) async fn run(mut self, restored: Option<TaskRecord>) {
        match restored {
            Some(record) => {
                self.record = record;
                self.commit();
                self.resume().await;
            }
            None => {
                self.event(events::received(self.now()));
                self.event(events::task_setup(self.now()));
                if let Err(e) = self.alloc_dir.build_task(&self.name) {
                    self.event(events::setup_failure(self.now(), &e.to_string()));
                }
            }
        }
        self.main_loop().await;
    }

    /// Picks up what a previous client left running.
    async fn resume(&mut self) {
        match std::mem::take(&mut self.record.run) {
            RunRecord::Idle => {}
            RunRecord::Running { driver, run_dir, handle } => match self.driver(&driver) {
                Ok(d) => match d.reattach(handle.clone()).await {
                    Ok(h) => {
                        self.record.run = RunRecord::Running { driver, run_dir, handle };
                        self.handle = Some(h);
                    }
                    Err(e) => self.handle_exit(ExitResult::lost(format!("task lost: {e}"))),
                },
                Err(e) => self.handle_exit(ExitResult::lost(format!("task lost: {e}"))),
            },
            RunRecord::Starting { driver, run_dir } => {
                let found = match self.driver(&driver) {
                    Ok(d) => d.recover(run_dir.clone()).await,
                    Err(_) => None,
                };
                if let Some(h) = found {
                    self.record.run = RunRecord::Running { driver, run_dir, handle: h.persisted() };
                    self.handle = Some(h);
                    self.event(events::started(self.now()));
                }
                // Otherwise nothing runs: the loop starts the task again.
            }
        }
        self.commit();
    }

    async fn main_loop(&mut self) {
        loop {
            if self.is_dead() {
                return;
            }
            if let Some(kill_events) = self.kill.take() {
                self.do_kill(kill_events).await;
                return;
            }
            let Some(handle) = self.handle.take() else {
                if !self.wait_gate().await || !self.wait_restart_delay().await {
                    return;
                }
                if self.kill.is_some() {
                    continue;
                }
                match self.start().await {
                    Ok(h) => self.handle = Some(h),
                    Err(e) => self.handle_start_error(e),
                }
                continue;
            };
            let woke = tokio::select! {
                biased;
                exit = handle.wait() => Woke::Exited(exit),
                cmd = self.commands.recv() => Woke::Command(cmd),
            };
            match woke {
                Woke::Exited(exit) => {
                    self.handle_exit(exit);
                    handle.cleanup().await;
                }
                Woke::Command(cmd) => {
                    self.handle = Some(handle);
                    if !self.handle_command(cmd) {
                        return;
                    }
                }
            }
        }
    }

    /// `false` when the alloc runner is gone (the client stopped): return, tasks keep running.
    fn handle_command(&mut self, cmd: Option<TaskCommand>) -> bool {
        match cmd {
            None => false,
            Some(TaskCommand::Kill { events }) => {
                self.kill.get_or_insert_with(Vec::new).extend(events);
                true
            }
            Some(TaskCommand::Update(alloc)) => {
                self.alloc = alloc;
                true
            }
        }
    }

    /// Waits until the lifecycle lets the task start, serving commands meanwhile (a kill
    /// ends the wait). `false` if the alloc runner went away.
    async fn wait_gate(&mut self) -> bool {
        while !*self.gate.borrow() && self.kill.is_none() {
            let cmd = tokio::select! {
                biased;
                cmd = self.commands.recv() => cmd,
                changed = self.gate.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => None,
                },
            };
            if !self.handle_command(cmd) {
                return false;
            }
        }
        true
    }

    /// Waits out a pending restart delay, serving commands meanwhile. `false` if the
    /// alloc runner went away.
    async fn wait_restart_delay(&mut self) -> bool {
        while let Some(due) = self.record.restart_at_ns {
            let left = due.saturating_sub(self.now());
            if left <= 0 {
                break;
            }
            let sleep = tokio::time::sleep(Duration::from_nanos(left as u64));
            let cmd = tokio::select! {
                biased;
                cmd = self.commands.recv() => cmd,
                _ = sleep => break,
            };
            if !self.handle_command(cmd) {
                return false;
            }
            if self.kill.is_some() {
                return true;
            }
        }
        if self.record.restart_at_ns.take().is_some() {
            self.commit();
        }
        true
    }

    fn driver(&self, name: &str) -> Result<Arc<dyn Driver>, DriverError> {
        self.core
            .drivers
            .get(name)
            .cloned()
            .ok_or_else(|| DriverError::Config(format!("driver \"{name}\" is not enabled on this client")))
    }

    fn kill_settings(&self) -> Result<(i32, Duration), DriverError> {
        let task = self.task();
        let signal = match task.map(|t| t.kill_signal.as_str()).filter(|s| !s.is_empty()) {
            Some(name) => {
                parse_signal(name).ok_or_else(|| DriverError::Config(format!("unknown kill_signal \"{name}\"")))?
            }
            None => task.and_then(|t| self.driver(&t.driver).ok()).map_or(libc::SIGINT, |d| d.default_kill_signal()),
        };
        let timeout = task
            .and_then(|t| t.kill_timeout)
            .and_then(|n| n.to_std())
            .unwrap_or(DEFAULT_KILL_TIMEOUT)
            .min(self.core.config.max_kill_timeout);
        Ok((signal, timeout))
    }

    async fn start(&mut self) -> Result<Box<dyn TaskHandle>, DriverError> {
        let alloc = self.alloc.clone();
        let (job, group, task) = alloc
            .job
            .as_deref()
            .and_then(|job| {
                let group = job.task_group(&alloc.task_group)?;
                let task = group.tasks.iter().find(|t| t.name == self.name)?;
                Some((job, group, task))
            })
            .ok_or_else(|| DriverError::Config(format!("task \"{}\" is not in the allocation's job", self.name)))?;
        let driver = self.driver(&task.driver)?;
        self.kill_settings()?;
        let task_dir = self.alloc_dir.build_task(&self.name).map_err(|e| DriverError::Start {
            message: format!("cannot build the task directory: {e}"),
            recoverable: true,
        })?;
        let no_env = Default::default();
        let node = self.core.node();
        let env = TaskEnv::build(&EnvInput {
            alloc: &alloc,
            job,
            group,
            task,
            node: &node,
            region: &self.core.config.region,
            alloc_dir: &self.alloc_dir.shared_dir(),
            task_dir: &task_dir,
            host_env: if driver.fs_isolation() == FsIsolation::None { &self.core.host_env } else { &no_env },
            isolation: driver.fs_isolation(),
        });
        let config = env.interpolate_config(&task.config);

        // A new attempt in a fresh run dir; the previous attempt's files are done with.
        let previous = self.core.state.run_dir(&alloc.id, &self.name, self.record.attempt);
        let _ = std::fs::remove_dir_all(previous);
        self.record.attempt += 1;
        let run_dir = self.core.state.run_dir(&alloc.id, &self.name, self.record.attempt);
        self.record.run = RunRecord::Starting { driver: task.driver.clone(), run_dir: run_dir.clone() };
        self.commit();

        let spec = TaskSpec {
            alloc_id: alloc.id.clone(),
            task: self.name.clone(),
            config,
            env: env.into_vars(),
            task_dir: task_dir.dir.clone(),
            alloc_dir: self.alloc_dir.shared_dir(),
            logs_dir: self.alloc_dir.logs_dir(),
            log_limits: LogLimits::from_config(task.log_config.as_ref()),
            run_dir: run_dir.clone(),
            resources: task_resources(&alloc, task),
            ports: alloc_ports(&alloc, &node, task),
        };
        match driver.start(spec).await {
            Ok(handle) => {
                self.record.run =
                    RunRecord::Running { driver: task.driver.clone(), run_dir, handle: handle.persisted() };
                self.event(events::started(self.now()));
                Ok(handle)
            }
            Err(e) => {
                self.record.run = RunRecord::Idle;
                Err(e)
            }
        }
    }

    fn restart_policy(&self) -> RestartPolicy {
        let job = self.alloc.job.as_deref();
        let job_type = job.map(|j| j.kind()).unwrap_or_default();
        let mut policy = default_restart_policy(&job_type);
        if let Some(group) = job.and_then(|j| j.task_group(&self.alloc.task_group))
            && let Some(p) = &group.restart_policy
        {
            policy.merge(p);
        }
        if let Some(p) = self.task().and_then(|t| t.restart_policy.as_ref()) {
            policy.merge(p);
        }
        policy
    }

    fn decide(&mut self, outcome: TaskOutcome) {
        let job_type = self.alloc.job.as_deref().map(|j| j.kind()).unwrap_or_default();
        let now = self.now();
        let ephemeral = self.task().is_some_and(|t| Role::of(t).ephemeral());
        let (decision, history) =
            decide_restart(&self.restart_policy(), &job_type, ephemeral, &self.record.restart, &outcome, now);
        self.record.restart = history;
        match decision {
            RestartDecision::Restart { delay, reason } => {
                let delay = jittered(delay, self.core.entropy.next_fraction());
                self.record.restart_at_ns =
                    Some(now.saturating_add(i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX)));
                self.event(events::restarting(now, delay, &reason));
            }
            RestartDecision::NoRestart { failed: true, reason } => {
                self.event(events::not_restarting(now, &reason, true))
            }
            RestartDecision::NoRestart { failed: false, .. } => {
                events::mark_dead(&mut self.record.state, now);
                self.commit();
            }
        }
    }

    fn handle_exit(&mut self, exit: ExitResult) {
        self.record.run = RunRecord::Idle;
        let now = self.now();
        events::record(&mut self.record.state, events::terminated(now, &exit));
        self.decide(TaskOutcome::Exited(exit));
    }

    fn handle_start_error(&mut self, e: DriverError) {
        tracing::warn!(task = %self.name, alloc = %self.alloc.id, error = %e, "task failed to start");
        let now = self.now();
        events::record(&mut self.record.state, events::driver_failure(now, &e.to_string(), false));
        self.decide(TaskOutcome::StartFailed { recoverable: e.recoverable() });
    }

    async fn do_kill(&mut self, kill_events: Vec<TaskEvent>) {
        for e in kill_events {
            events::record(&mut self.record.state, e);
        }
        self.record.restart_at_ns = None;
        let Some(handle) = self.handle.take() else {
            // Not running (between restarts, or never started).
            self.record.run = RunRecord::Idle;
            self.event(events::killed(self.now(), None));
            return;
        };
        let (signal, timeout) = self.kill_settings().unwrap_or((libc::SIGINT, DEFAULT_KILL_TIMEOUT));
        self.event(events::killing(self.now(), timeout, None));
        let result = handle.kill(signal, timeout).await;
        handle.cleanup().await;
        self.record.run = RunRecord::Idle;
        match result {
            Ok(exit) => {
                let now = self.now();
                events::record(&mut self.record.state, events::terminated(now, &exit));
                self.event(events::killed(self.now(), None));
            }
            Err(e) => self.event(events::killed(self.now(), Some(&e.to_string()))),
        }
    }
}
