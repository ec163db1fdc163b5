//! One allocation on this node: runs its group's tasks, derives the allocation's
//! `ClientStatus` from their states, reports changes, and reacts to the servers: a
//! `DesiredStatus` of `stop` or `evict` kills the tasks (the allocation then completes),
//! a new job version is handed to the tasks in place, and an allocation the servers
//! forgot is killed and its directories removed.
//!
//! Tasks start and stop in their lifecycle order ([`crate::lifecycle`]): every task has
//! a runner from the start, waiting at a gate the alloc runner opens when
//! [`lifecycle::may_start`] says so; kills go out step by step as [`lifecycle::to_kill`]
//! says. The allocation stops by itself when a task fails, when the `leader` dies, or
//! when only sidecars are left.

use std::collections::BTreeMap;
use std::sync::Arc;

use stead_model::{AllocClientStatus, AllocDesiredStatus, Allocation, TaskState, TaskStateKind};
use tokio::sync::{mpsc, watch};

use crate::allocdir::AllocDir;
use crate::events;
use crate::lifecycle::{self, Member, Role, Stopping};
use crate::lifetime::Lifetime;
use crate::shared::ClientCore;
use crate::task_runner::{TaskCommand, TaskRecord, TaskRunner, TaskUpdate};
use crate::updater::client_view;

/// The allocation's client status from its tasks' states, as Nomad derives it: any failed
/// task fails it; else any running task makes it running; else any pending one pending;
/// else (all dead) it is complete.
pub fn decide_client_status(states: &BTreeMap<String, TaskState>) -> (AllocClientStatus, &'static str) {
    let has = |f: &dyn Fn(&TaskState) -> bool| states.values().any(f);
    if has(&|s| s.state == TaskStateKind::Dead && s.failed) {
        (AllocClientStatus::Failed, "Failed tasks")
    } else if has(&|s| s.state == TaskStateKind::Running) {
        (AllocClientStatus::Running, "Tasks are running")
    } else if states.is_empty() || has(&|s| s.state != TaskStateKind::Dead) {
        (AllocClientStatus::Pending, "No tasks have started")
    } else {
        (AllocClientStatus::Complete, "All tasks have completed")
    }
}

/// Asks an alloc runner for something.
#[derive(Debug)]
pub(crate) enum AllocCommand {
    /// The allocation as the servers now have it.
    Update(Arc<Allocation>),
    /// Kill the tasks (client shutdown with `StopTasks`).
    Stop,
    /// Kill the tasks, remove the directories and the state, and end.
    Destroy,
}

/// What the client loop sees of a runner.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AllocStatus {
    pub client_status: AllocClientStatus,
    /// No task runs or will run again.
    pub all_dead: bool,
}

pub(crate) struct AllocRunnerHandle {
    pub commands: mpsc::UnboundedSender<AllocCommand>,
    pub status: watch::Receiver<AllocStatus>,
}

struct TaskSlot {
    commands: mpsc::UnboundedSender<TaskCommand>,
    state: TaskState,
    role: Role,
    leader: bool,
    /// Opens (once) when the task may start.
    gate: watch::Sender<bool>,
    kill_sent: bool,
}

pub(crate) struct AllocRunner {
    alloc: Arc<Allocation>,
    alloc_dir: Option<AllocDir>,
    core: Arc<ClientCore>,
    lifetime: Lifetime,
    tasks: BTreeMap<String, TaskSlot>,
    task_updates: mpsc::UnboundedReceiver<TaskUpdate>,
    task_updates_tx: mpsc::UnboundedSender<TaskUpdate>,
    status: watch::Sender<AllocStatus>,
    /// Set when the allocation cannot run at all (no such group, bad ID).
    setup_error: Option<String>,
    /// Whether and how the tasks are being stopped.
    stopping: Stopping,
    /// Recorded on every task the stop kills (`Sibling Task Failed`, ...).
    stop_events: Vec<stead_model::TaskEvent>,
    destroying: bool,
    last_report: Option<Allocation>,
}

impl AllocRunner {
    /// Starts the runner of `alloc`; `restored` holds the task records a previous client
    /// left (empty for a new allocation).
    pub(crate) fn spawn(
        alloc: Arc<Allocation>,
        core: Arc<ClientCore>,
        lifetime: Lifetime,
        restored: BTreeMap<String, TaskRecord>,
    ) -> AllocRunnerHandle {
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (task_updates_tx, task_updates) = mpsc::unbounded_channel();
        let (status, status_rx) =
            watch::channel(AllocStatus { client_status: AllocClientStatus::Pending, all_dead: false });
        let (alloc_dir, setup_error) = match AllocDir::new(&core.config.alloc_root(), &alloc.id) {
            Ok(dir) => (Some(dir), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let runner = AllocRunner {
            alloc,
            alloc_dir,
            core,
            lifetime: lifetime.clone(),
            tasks: BTreeMap::new(),
            task_updates,
            task_updates_tx,
            status,
            setup_error,
            stopping: Stopping::No,
            stop_events: Vec::new(),
            destroying: false,
            last_report: None,
        };
        lifetime.spawn(runner.run(commands, restored));
        AllocRunnerHandle { commands: commands_tx, status: status_rx }
    }

    fn persist_alloc(&self) {
        let path = self.core.state.alloc_file(&self.alloc.id);
        if let Err(e) = self.core.state.write(&path, &*self.alloc) {
            tracing::error!(error = %e, alloc = %self.alloc.id, "cannot persist the allocation");
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<AllocCommand>,
        restored: BTreeMap<String, TaskRecord>,
    ) {
        self.persist_alloc();
        self.start_tasks(restored);
        self.resume_stop();
        self.advance();
        self.report();
        // The client drops its handle right after sending `Destroy`: the runner goes on
        // until the tasks are dead and the directories removed.
        let mut commands_open = true;
        loop {
            if self.destroying && self.all_dead() {
                self.core.drivers.forget_alloc(&self.alloc.id).await;
                self.cleanup();
                return;
            }
            tokio::select! {
                biased;
                update = self.task_updates.recv() => {
                    // The runner holds a sender itself, so `None` cannot happen.
                    if let Some(update) = update {
                        self.handle_task_update(update);
                    }
                }
                command = commands.recv(), if commands_open => match command {
                    Some(command) => self.handle_command(command),
                    None if self.destroying => commands_open = false,
                    None => return,
                },
            }
        }
    }

    /// Starts a runner per task of the group, each waiting at its gate.
    fn start_tasks(&mut self, mut restored: BTreeMap<String, TaskRecord>) {
        let group = self.alloc.job.as_deref().and_then(|job| job.task_group(&self.alloc.task_group));
        let (Some(group), Some(alloc_dir)) = (group, self.alloc_dir.clone()) else {
            if self.setup_error.is_none() {
                let why = match &self.alloc.job {
                    None => "the allocation carries no job".to_owned(),
                    Some(_) => format!("task group \"{}\" is not in the allocation's job", self.alloc.task_group),
                };
                self.setup_error = Some(why);
            }
            return;
        };
        for task in &group.tasks {
            let (tx, rx) = mpsc::unbounded_channel();
            let record = restored.remove(&task.name);
            let state = record.as_ref().map_or_else(events::pending_state, |r| r.state.clone());
            let (gate, gate_rx) = watch::channel(false);
            let slot =
                TaskSlot { commands: tx, state, role: Role::of(task), leader: task.leader, gate, kill_sent: false };
            self.tasks.insert(task.name.clone(), slot);
            let runner = TaskRunner::new(
                task.name.clone(),
                self.alloc.clone(),
                alloc_dir.clone(),
                self.core.clone(),
                rx,
                gate_rx,
                self.task_updates_tx.clone(),
            );
            self.lifetime.spawn(runner.run(record));
        }
    }

    fn all_dead(&self) -> bool {
        self.tasks.values().all(|t| t.state.state == TaskStateKind::Dead)
    }

    fn handle_task_update(&mut self, update: TaskUpdate) {
        let now = self.core.now();
        let Some(slot) = self.tasks.get_mut(&update.task) else { return };
        let was_dead = slot.state.state == TaskStateKind::Dead;
        slot.state = update.state;
        let newly_dead = !was_dead && slot.state.state == TaskStateKind::Dead;
        if newly_dead && self.stopping == Stopping::No {
            let (failed, leader) = (slot.state.failed, slot.leader);
            if failed {
                self.stop(Stopping::InOrder, vec![events::sibling_failed(now, &update.task)]);
            } else if leader {
                self.stop(Stopping::InOrder, vec![events::leader_dead(now)]);
            }
        }
        self.advance();
        self.report();
    }

    /// A stop the task states (restored after a client restart) or the servers already
    /// asked for goes on: the stopping state itself lives in memory only.
    fn resume_stop(&mut self) {
        let now = self.core.now();
        if matches!(self.alloc.desired_status, AllocDesiredStatus::Stop | AllocDesiredStatus::Evict) {
            self.stop(Stopping::InOrder, Vec::new());
        } else if let Some(failed) =
            self.tasks.iter().find(|(_, t)| t.state.state == TaskStateKind::Dead && t.state.failed).map(|(n, _)| n)
        {
            let events = vec![events::sibling_failed(now, failed)];
            self.stop(Stopping::InOrder, events);
        } else if self.tasks.values().any(|t| t.leader && t.state.state == TaskStateKind::Dead) {
            self.stop(Stopping::InOrder, vec![events::leader_dead(now)]);
        }
    }

    fn members(&self) -> BTreeMap<String, Member<'_>> {
        self.tasks
            .iter()
            .map(|(name, t)| (name.clone(), Member { role: t.role, leader: t.leader, state: &t.state }))
            .collect()
    }

    /// Opens the gates of the tasks that may start and sends the kills that are due.
    fn advance(&mut self) {
        if self.stopping == Stopping::No && lifecycle::only_sidecars_left(&self.members()) {
            self.stop(Stopping::InOrder, Vec::new());
        }
        let members = self.members();
        let opening: Vec<String> = members
            .keys()
            .filter(|name| !*self.tasks[name.as_str()].gate.borrow())
            .filter(|name| lifecycle::may_start(&members, name, self.stopping))
            .cloned()
            .collect();
        let killing: Vec<String> = lifecycle::to_kill(&members, self.stopping)
            .into_iter()
            .filter(|name| !self.tasks[*name].kill_sent)
            .map(str::to_owned)
            .collect();
        for name in opening {
            if let Some(slot) = self.tasks.get(&name) {
                slot.gate.send_replace(true);
            }
        }
        for name in killing {
            if let Some(slot) = self.tasks.get_mut(&name) {
                slot.kill_sent = true;
                let _ = slot.commands.send(TaskCommand::Kill { events: self.stop_events.clone() });
            }
        }
    }

    fn handle_command(&mut self, command: AllocCommand) {
        match command {
            AllocCommand::Update(alloc) => {
                let job_changed = alloc.job_version != self.alloc.job_version
                    || alloc.job.as_ref().map(|j| j.job_modify_index)
                        != self.alloc.job.as_ref().map(|j| j.job_modify_index);
                self.alloc = alloc;
                self.persist_alloc();
                if job_changed {
                    for slot in self.tasks.values() {
                        let _ = slot.commands.send(TaskCommand::Update(self.alloc.clone()));
                    }
                }
                if matches!(self.alloc.desired_status, AllocDesiredStatus::Stop | AllocDesiredStatus::Evict) {
                    self.stop(Stopping::InOrder, Vec::new());
                }
            }
            AllocCommand::Stop => self.stop(Stopping::Now, Vec::new()),
            AllocCommand::Destroy => {
                self.destroying = true;
                self.stop(Stopping::Now, Vec::new());
            }
        }
        self.advance();
        self.report();
    }

    /// Starts stopping the tasks (an in-order stop may become immediate, not back).
    fn stop(&mut self, how: Stopping, events: Vec<stead_model::TaskEvent>) {
        let escalates = how == Stopping::Now && self.stopping != Stopping::Now;
        if self.stopping == Stopping::No || escalates {
            self.stopping = how;
            if self.stop_events.is_empty() {
                self.stop_events = events;
            }
        }
    }

    /// Pushes the client's view to the servers if it changed.
    fn report(&mut self) {
        let states: BTreeMap<String, TaskState> =
            self.tasks.iter().map(|(name, slot)| (name.clone(), slot.state.clone())).collect();
        let (client_status, description) = match &self.setup_error {
            Some(why) => (AllocClientStatus::Failed, why.as_str()),
            None => decide_client_status(&states),
        };
        let all_dead = self.setup_error.is_some() || self.all_dead();
        self.status.send_if_modified(|s| {
            let next = AllocStatus { client_status: client_status.clone(), all_dead };
            let changed = *s != next;
            *s = next;
            changed
        });
        if self.destroying {
            return; // The servers forgot it: nothing to tell them.
        }
        let view = client_view(&Allocation {
            id: self.alloc.id.clone(),
            namespace: self.alloc.namespace.clone(),
            client_status,
            client_description: description.to_owned(),
            task_states: states,
            ..Default::default()
        });
        if self.last_report.as_ref() != Some(&view) {
            self.core.updater.push(view.clone());
            self.last_report = Some(view);
        }
    }

    fn cleanup(&self) {
        if let Some(dir) = &self.alloc_dir
            && let Err(e) = dir.destroy()
        {
            tracing::warn!(error = %e, alloc = %self.alloc.id, "cannot remove the allocation directory");
        }
        if let Err(e) = self.core.state.remove_alloc(&self.alloc.id) {
            tracing::warn!(error = %e, alloc = %self.alloc.id, "cannot remove the allocation's state");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(kind: TaskStateKind, failed: bool) -> TaskState {
        TaskState { state: kind, failed, ..Default::default() }
    }

    #[test]
    fn client_status_follows_nomads_precedence() {
        let of = |tasks: &[(TaskStateKind, bool)]| {
            let states = tasks.iter().enumerate().map(|(i, (k, f))| (format!("t{i}"), state(k.clone(), *f))).collect();
            decide_client_status(&states)
        };
        use TaskStateKind::*;
        assert_eq!(of(&[(Pending, false)]), (AllocClientStatus::Pending, "No tasks have started"));
        assert_eq!(of(&[(Running, false), (Pending, false)]), (AllocClientStatus::Running, "Tasks are running"));
        assert_eq!(of(&[(Dead, false), (Dead, false)]), (AllocClientStatus::Complete, "All tasks have completed"));
        assert_eq!(of(&[(Dead, true), (Running, false)]), (AllocClientStatus::Failed, "Failed tasks"));
        assert_eq!(of(&[(Dead, false), (Pending, false)]), (AllocClientStatus::Pending, "No tasks have started"));
        assert_eq!(of(&[]), (AllocClientStatus::Pending, "No tasks have started"));
    }
}
