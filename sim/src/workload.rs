//! The workload: what users do to a cluster, drawn from the seed, through the same
//! `stead_server` calls the HTTP and gRPC layers make (over the faulty store, as a server
//! does): register, update, scale, stop, purge and revert jobs of the four types,
//! dispatch parameterized ones, drain nodes and change their eligibility. Tasks (mock)
//! run, exit, fail and restart per their configuration.
//!
//! Every write is logged with its outcome: acknowledged with its commit index, or
//! unknown (it failed, and may or may not have committed). The checkers compare the
//! store with this log.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stead_server::{Env, Store, jobs, nodes};
use stead_store::model::{
    DrainSpec, Job, JobType, Lifecycle, LifecycleHook, Nanos, ParameterizedJobConfig, PayloadRequirement, RestartMode,
    RestartPolicy, Task,
};
use stead_testkit::fixtures;

use crate::Rng;

/// What a workload write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed at this index.
    Acked(u64),
    /// Failed: it may or may not have committed.
    Unknown,
    /// Not answered yet (the checkers run while it is in flight): it may have committed.
    InFlight,
}

/// A job write the workload made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub job: String,
    pub kind: WriteKind,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// A register (new job, update, scale, revert, dispatch child): the version it made.
    Register {
        version: u64,
    },
    Stop,
    /// A stop of a job already stopped: only an evaluation, no change of the job.
    StopStopped,
    Purge,
}

/// The log of writes, shared with the checkers.
pub type WriteLog = Arc<Mutex<Vec<Write>>>;

#[derive(Debug, Clone)]
struct JobModel {
    kind: JobType,
    count: i32,
    stopped: bool,
    purged: bool,
    parameterized: bool,
    /// Versions acknowledged for it.
    versions: Vec<u64>,
}

pub struct Workload {
    store: Store,
    env: Env,
    rng: Rng,
    jobs: BTreeMap<String, JobModel>,
    log: WriteLog,
    next_id: u64,
    clients: Vec<String>,
    pub acked: u64,
    pub unknown: u64,
    /// Whether the log's last entry is a write still in flight.
    in_flight: bool,
}

/// Jobs alive at once at most: the cluster stays big enough for all of them even with
/// a few nodes down or draining, so every placement is feasible.
const LIVE_JOBS_MAX: usize = 24;

impl Workload {
    pub fn new(store: Store, env: Env, seed: u64, clients: Vec<String>, log: WriteLog) -> Workload {
        Workload {
            store,
            env,
            rng: Rng::new(seed),
            jobs: BTreeMap::new(),
            log,
            next_id: 0,
            clients,
            acked: 0,
            unknown: 0,
            in_flight: false,
        }
    }

    /// Logs a write to `job` as in flight before it is sent: the checkers, running
    /// meanwhile, may see its commit before it answers.
    fn begin(&mut self, job: &str) {
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Write {
            job: job.to_owned(),
            kind: WriteKind::Stop,
            outcome: Outcome::InFlight,
        });
        self.in_flight = true;
    }

    /// Drops the in-flight entry of a write that was refused (nothing was written).
    fn refused(&mut self) {
        if std::mem::take(&mut self.in_flight) {
            self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        }
    }

    /// Logs what a write did, in place of its in-flight entry (the log's last: one write
    /// is in flight at a time).
    fn record(&mut self, job: &str, kind: WriteKind, outcome: Outcome) {
        match outcome {
            Outcome::Acked(_) => self.acked += 1,
            Outcome::Unknown | Outcome::InFlight => self.unknown += 1,
        }
        if let (Outcome::Acked(_), WriteKind::Register { version }) = (&outcome, kind)
            && let Some(m) = self.jobs.get_mut(job)
        {
            m.versions.push(version);
        }
        let mut log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if std::mem::take(&mut self.in_flight) {
            log.pop();
        }
        log.push(Write { job: job.to_owned(), kind, outcome });
    }

    /// A job spec of `kind`: small mock tasks; some fail after a while and restart in
    /// place (mode delay: they never fail for good, so every job stays feasible).
    fn spec(&mut self, id: &str, kind: JobType, count: i32) -> Job {
        let cpu = 100 + 50 * self.rng.below(5) as i32;
        let mut job = fixtures::job(id, kind.clone(), count, cpu, 64 + 32 * self.rng.below(4) as i32);
        let task = &mut job.task_groups[0].tasks[0];
        let run_for = match kind {
            JobType::Batch | JobType::Sysbatch => format!("{}s", 5 + self.rng.below(60)),
            _ => "1h".to_owned(),
        };
        task.config.insert("run_for".to_owned(), serde_json::json!(run_for));
        if matches!(kind, JobType::Service) && self.rng.chance(0.2) {
            // Fails after a while and is restarted in place, forever.
            task.config.insert("run_for".to_owned(), serde_json::json!(format!("{}s", 10 + self.rng.below(50))));
            task.config.insert("exit_code".to_owned(), serde_json::json!(1));
            // The group's policy; the fixture's canonical task already carries the
            // type's default, which would override it.
            job.task_groups[0].tasks[0].restart_policy = None;
            job.task_groups[0].restart_policy = Some(RestartPolicy {
                attempts: Some(2),
                interval: Some(Nanos::from_secs(60)),
                delay: Some(Nanos::from_secs(5)),
                mode: Some(RestartMode::Delay),
                ..RestartPolicy::default()
            });
        }
        if self.rng.chance(0.25) {
            // Lifecycle hooks around the main task: an init task, a sidecar that lives
            // as long as the main task, and a cleanup task after everything stopped.
            let main = job.task_groups[0].tasks[0].clone();
            let hook = |name: &str, hook: LifecycleHook, sidecar: bool, run_for: String| {
                let mut task = Task {
                    name: name.to_owned(),
                    lifecycle: Some(Lifecycle { hook, sidecar, ..Lifecycle::default() }),
                    restart_policy: None,
                    ..main.clone()
                };
                task.config.retain(|k, _| k == "run_for");
                task.config.insert("run_for".to_owned(), serde_json::json!(run_for));
                task
            };
            let init_for = format!("{}s", 1 + self.rng.below(3));
            let cleanup_for = format!("{}s", 1 + self.rng.below(3));
            let tasks = &mut job.task_groups[0].tasks;
            tasks.push(hook("init", LifecycleHook::Prestart, false, init_for));
            tasks.push(hook("proxy", LifecycleHook::Prestart, true, "1h".to_owned()));
            tasks.push(hook("cleanup", LifecycleHook::Poststop, false, cleanup_for));
        }
        job.canonicalize();
        job
    }

    fn pick_job(&mut self, pred: impl Fn(&JobModel) -> bool) -> Option<String> {
        let ids: Vec<&String> = self.jobs.iter().filter(|(_, m)| pred(m)).map(|(id, _)| id).collect();
        if ids.is_empty() {
            return None;
        }
        Some(ids[self.rng.below(ids.len() as u64) as usize].clone())
    }

    async fn register(&mut self, job: Job) {
        let id = job.id.to_string();
        self.begin(&id);
        match timed(jobs::register(&self.store, &self.env, job, None)).await {
            Ok(r) => self.record(&id, WriteKind::Register { version: r.version }, Outcome::Acked(r.index)),
            Err(Failed::Unknown) => self.record(&id, WriteKind::Register { version: u64::MAX }, Outcome::Unknown),
            Err(_) => {}
        }
    }

    /// One operation, drawn from the seed.
    pub async fn step(&mut self) {
        self.operation().await;
        // A write that was refused answered without a record: nothing of it is in flight.
        self.refused();
    }

    async fn operation(&mut self) {
        let live = self.jobs.values().filter(|m| !m.stopped && !m.purged).count();
        let roll = self.rng.below(100);
        match roll {
            0..=29 if live < LIVE_JOBS_MAX => {
                self.next_id += 1;
                let (kind, parameterized) = match self.rng.below(10) {
                    0..=4 => (JobType::Service, false),
                    5..=6 => (JobType::Batch, false),
                    7 => (JobType::System, false),
                    8 => (JobType::Sysbatch, false),
                    _ => (JobType::Batch, true),
                };
                let id = format!("job-{}", self.next_id);
                let count = 1 + self.rng.below(4) as i32;
                let mut job = self.spec(&id, kind.clone(), count);
                if parameterized {
                    job.parameterized_job = Some(ParameterizedJobConfig {
                        payload: Some(PayloadRequirement::Optional),
                        ..Default::default()
                    });
                }
                self.jobs.insert(
                    id.clone(),
                    JobModel { kind, count, stopped: false, purged: false, parameterized, versions: Vec::new() },
                );
                self.register(job).await;
            }
            0..=44 => {
                // Update: a new count, or a new task config (a destructive update).
                let Some(id) = self.pick_job(|m| !m.stopped && !m.purged && !m.parameterized) else { return };
                let m = self.jobs[&id].clone();
                let count = if self.rng.chance(0.5) { 1 + self.rng.below(4) as i32 } else { m.count };
                let mut job = self.spec(&id, m.kind.clone(), count);
                job.meta.insert("rev".to_owned(), self.rng.below(1000).to_string());
                if let Some(jm) = self.jobs.get_mut(&id) {
                    jm.count = count;
                }
                self.register(job).await;
            }
            45..=54 => {
                let Some(id) = self.pick_job(|m| !m.stopped && !m.purged && m.kind == JobType::Service) else { return };
                let count = 1 + self.rng.below(5) as i64;
                self.begin(&id);
                match timed(jobs::scale(&self.store, &self.env, "default", &id, "g", count, None)).await {
                    Ok(r) => {
                        if let Some(jm) = self.jobs.get_mut(&id) {
                            jm.count = count as i32;
                        }
                        self.record(&id, WriteKind::Register { version: r.version }, Outcome::Acked(r.index));
                    }
                    Err(Failed::Unknown) => {
                        self.record(&id, WriteKind::Register { version: u64::MAX }, Outcome::Unknown)
                    }
                    Err(_) => {}
                }
            }
            55..=62 => {
                let Some(id) = self.pick_job(|m| !m.purged) else { return };
                let purge = self.rng.chance(0.4);
                let kind = if purge { WriteKind::Purge } else { WriteKind::Stop };
                self.begin(&id);
                let (kind, outcome) = match timed(jobs::stop(&self.store, &self.env, "default", &id, purge)).await {
                    Ok(s) if !s.changed => (WriteKind::StopStopped, Outcome::Acked(s.index)),
                    Ok(s) => (kind, Outcome::Acked(s.index)),
                    Err(Failed::Unknown) => (kind, Outcome::Unknown),
                    Err(_) => return,
                };
                if let Some(jm) = self.jobs.get_mut(&id) {
                    jm.stopped = true;
                    jm.purged |= purge;
                }
                self.record(&id, kind, outcome);
            }
            63..=69 => {
                let Some(id) = self.pick_job(|m| !m.purged && !m.parameterized && m.versions.len() > 1) else { return };
                let to = self.jobs[&id].versions[self.rng.below(self.jobs[&id].versions.len() as u64 - 1) as usize];
                self.begin(&id);
                match timed(jobs::revert(&self.store, &self.env, "default", &id, to, None)).await {
                    Ok(r) => {
                        if let Some(jm) = self.jobs.get_mut(&id) {
                            jm.stopped = false;
                        }
                        self.record(&id, WriteKind::Register { version: r.version }, Outcome::Acked(r.index));
                    }
                    Err(Failed::Unknown) => {
                        self.record(&id, WriteKind::Register { version: u64::MAX }, Outcome::Unknown)
                    }
                    Err(_) => {}
                }
            }
            70..=79 => {
                let Some(id) = self.pick_job(|m| !m.stopped && !m.purged && m.parameterized) else { return };
                let request = jobs::DispatchRequest { payload: b"work".to_vec(), ..Default::default() };
                match timed(jobs::dispatch(&self.store, &self.env, "default", &id, &request)).await {
                    Ok(d) => {
                        self.jobs.insert(
                            d.dispatched_job_id.clone(),
                            JobModel {
                                kind: JobType::Batch,
                                count: 1,
                                stopped: false,
                                purged: false,
                                parameterized: false,
                                versions: Vec::new(),
                            },
                        );
                        self.record(&d.dispatched_job_id, WriteKind::Register { version: 0 }, Outcome::Acked(d.index));
                    }
                    Err(Failed::Unknown) => self.unknown += 1,
                    Err(_) => {}
                }
            }
            80..=87 => {
                // Drain a node for a while (with a deadline), or cancel a drain.
                let Some(node) = self.random_node_id().await else { return };
                let spec = self.rng.chance(0.6).then(|| DrainSpec {
                    deadline: Nanos::from_secs(30 + self.rng.below(90) as i64),
                    ..DrainSpec::default()
                });
                let _ = timed(nodes::set_drain(&self.store, &self.env, &node, spec, true)).await;
            }
            88..=95 => {
                let Some(node) = self.random_node_id().await else { return };
                let eligible = self.rng.chance(0.6);
                let _ = timed(nodes::set_eligibility(&self.store, &self.env, &node, eligible)).await;
            }
            _ => {}
        }
    }

    /// A random registered client node's ID.
    async fn random_node_id(&mut self) -> Option<String> {
        let nodes = timed(stead_server::reads::list_nodes(&self.store, "")).await.ok()?.value;
        let nodes: Vec<_> = nodes.into_iter().filter(|n| self.clients.contains(&n.name)).collect();
        if nodes.is_empty() {
            return None;
        }
        Some(nodes[self.rng.below(nodes.len() as u64) as usize].id.to_string())
    }

    /// Ends every drain and makes every node eligible: the quiet phase's cluster.
    pub async fn settle_nodes(&mut self) {
        let Ok(read) = timed(stead_server::reads::list_nodes(&self.store, "")).await else { return };
        for n in read.value {
            for _ in 0..20 {
                let drained = timed(nodes::set_drain(&self.store, &self.env, n.id.as_str(), None, true)).await;
                let eligible = timed(nodes::set_eligibility(&self.store, &self.env, n.id.as_str(), true)).await;
                if drained.is_ok() && eligible.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// How long the workload waits for an operation, as an HTTP client would: past it, the
/// operation's outcome is unknown (its commit may still land).
const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an operation did not answer with a result.
enum Failed {
    /// Refused (a 4xx: nothing was written).
    Refused,
    /// A store failure or the timeout: it may or may not have been written.
    Unknown,
}

async fn timed<T>(op: impl std::future::Future<Output = Result<T, stead_server::ServerError>>) -> Result<T, Failed> {
    use stead_server::ServerError as E;
    match tokio::time::timeout(OP_TIMEOUT, op).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(E::Conflict(_) | E::NotFound(_) | E::Invalid(_) | E::Unauthorized(_))) => Err(Failed::Refused),
        Ok(Err(_)) | Err(_) => Err(Failed::Unknown),
    }
}
