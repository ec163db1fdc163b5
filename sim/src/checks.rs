//! The checkers. Safety ones run all along (every few simulated seconds) on a snapshot
//! of the store (and the clients' running tasks); liveness ones after the quiet phase,
//! retried until they hold or the phase's deadline passes.
//!
//! Safety:
//! * `node-over-committed`: a node's non-terminal allocations use more than it has;
//!   `usage-record-drift`: its usage record is not their sum;
//! * `duplicate-allocation-name`: two live allocations of a service or batch job share a
//!   name (job, group, index) and neither replaces the other;
//! * `task-runs-twice`: a client runs one allocation's task twice at once;
//! * `acknowledged-write-lost`: a register the workload got an answer for is not there (or
//!   its job is older than it), unless the workload stopped and purged the job since;
//! * `job-version-went-back`: a job's version is lower than one seen earlier;
//! * `event-missing` / `event-extra` / `event-out-of-order`: the Job events differ from
//!   the acknowledged writes (each acknowledged write has its event at its commit index;
//!   there are no more events than writes that may have committed) or go back in index.
//!
//! Liveness (after the quiet phase):
//! * `node-not-ready`: a client's node is not registered and ready again (a look at which
//!   one is not does not count for the other checks, which judge ready nodes);
//! * `allocation-never-started`: an allocation the servers want running is still pending
//!   and none of its tasks ever started;
//! * `job-below-count`: a running service job does not have its count of live
//!   allocations, or a system job misses a ready node;
//! * `evaluation-stuck`: evaluations are still ready or leased;
//! * `lease-held-by-dead-worker`: an evaluation or duty lease names a server generation
//!   that is not running;
//! * `client-runs-other-allocations`: what a client runs differs from what the servers
//!   assigned to it.

use std::collections::{BTreeMap, BTreeSet};

use stead_sched::plan::stored_alloc_usage;
use stead_server::Store;
use stead_server::events;
use stead_server::queue::{self, Lease};
use stead_server::snapshot::read_all_usage_in;
use stead_store::model::{
    AllocClientStatus, AllocDesiredStatus, Allocation, Evaluation, Job, JobType, Node, NodeStatus,
};
use stead_store::schema::{PAGE_LIMIT_MAX, PageOptions, Record, Tuple, encoding};
use stead_store::{ReadMode, Transaction};

use crate::config::Violation;
use crate::workload::{Outcome, WriteKind, WriteLog};

/// Every record of kind `R`.
async fn all<R: Record>(store: &Store) -> Vec<R> {
    let Ok(tx) = store.db.create_transaction() else { return Vec::new() };
    all_in(store, &tx).await.unwrap_or_default()
}

/// Every record of kind `R` as `tx` reads them, or `None` if a read failed (the store's
/// injected faults): a partial list would look like lost records.
async fn all_in<R: Record>(store: &Store, tx: &Transaction) -> Option<Vec<R>> {
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page = PageOptions::new(PAGE_LIMIT_MAX).after(next).read_mode(ReadMode::Snapshot);
        let p = store.ks.list::<R>(tx, &Tuple::empty(), &page).await.ok()?;
        out.extend(p.items);
        next = p.next;
        if next.is_none() {
            return Some(out);
        }
    }
}

/// What the safety checks compare, read at one read version: records read in separate
/// transactions could straddle a commit (an allocation placed after the allocations were
/// read but before the usage records were) and disagree without any bug.
struct Snapshot {
    nodes: Vec<Node>,
    allocs: Vec<Allocation>,
    jobs: Vec<Job>,
    usages: Vec<stead_sched::NodeUsage>,
}

impl Snapshot {
    async fn read(store: &Store) -> Option<Snapshot> {
        let tx = store.db.create_transaction().ok()?;
        Some(Snapshot {
            nodes: all_in(store, &tx).await?,
            allocs: all_in(store, &tx).await?,
            jobs: all_in(store, &tx).await?,
            usages: read_all_usage_in(store, &tx, 100_000).await.ok()?,
        })
    }
}

fn live(a: &Allocation) -> bool {
    a.desired_status == AllocDesiredStatus::Run && !a.client_status.is_terminal()
}

pub struct Checker {
    store: Store,
    log: WriteLog,
    /// Client node names of this run (mock tasks register under them).
    clients: BTreeSet<String>,
    pub violations: Vec<Violation>,
    pub checks: u64,
    /// The highest version seen per job.
    versions: BTreeMap<String, u64>,
    /// Events read so far: the last index, and each job's Job events (index, type).
    events_after: u64,
    job_events: BTreeMap<String, Vec<(u64, String)>>,
    /// Violations already reported (a check that keeps failing is reported once).
    seen: BTreeSet<(&'static str, String)>,
}

impl Checker {
    pub fn new(store: Store, log: WriteLog, clients: BTreeSet<String>) -> Checker {
        Checker {
            store,
            log,
            clients,
            violations: Vec::new(),
            checks: 0,
            versions: BTreeMap::new(),
            events_after: 0,
            job_events: BTreeMap::new(),
            seen: BTreeSet::new(),
        }
    }

    fn fail(&mut self, check: &'static str, key: String, detail: String, at_secs: u64) {
        if self.seen.insert((check, key)) {
            self.violations.push(Violation { check, detail, at_secs });
        }
    }

    /// Every safety check once.
    pub async fn safety(&mut self, at_secs: u64) {
        self.tasks_once(at_secs);
        // A look the store's faults spoil is skipped; the next one comes in a few seconds.
        if let Some(snapshot) = Snapshot::read(&self.store).await {
            let Snapshot { nodes, allocs, jobs, usages } = snapshot;
            self.capacity(&nodes, &allocs, &usages, at_secs);
            self.names(&allocs, &jobs, at_secs);
            self.writes(&jobs, at_secs);
        }
        self.events(at_secs).await;
    }

    fn capacity(&mut self, nodes: &[Node], allocs: &[Allocation], usages: &[stead_sched::NodeUsage], at_secs: u64) {
        let mut used: BTreeMap<&str, stead_sched::placement::Usage> = BTreeMap::new();
        for a in allocs.iter().filter(|a| !a.is_terminal()) {
            used.entry(a.node_id.as_str()).or_default().add(&stored_alloc_usage(a));
        }
        let records: BTreeMap<&str, &stead_sched::NodeUsage> = usages.iter().map(|u| (u.node_id.as_str(), u)).collect();
        for node in nodes {
            self.checks += 2;
            let cap = stead_sched::NodeUsage::of_node(node, None).capacity;
            let u = used.get(node.id.as_str()).cloned().unwrap_or_default();
            if u.cpu_mhz > cap.cpu_mhz || u.memory_mb > cap.memory_mb || u.disk_mb > cap.disk_mb {
                self.fail(
                    "node-over-committed",
                    node.id.to_string(),
                    format!(
                        "node {} ({}): allocations use {} MHz / {} MB / {} MB disk of {} / {} / {}",
                        node.name, node.id, u.cpu_mhz, u.memory_mb, u.disk_mb, cap.cpu_mhz, cap.memory_mb, cap.disk_mb
                    ),
                    at_secs,
                );
            }
            if let Some(r) = records.get(node.id.as_str())
                && (r.used.cpu_mhz != u.cpu_mhz || r.used.memory_mb != u.memory_mb)
            {
                self.fail(
                    "usage-record-drift",
                    node.id.to_string(),
                    format!(
                        "node {}: usage record says {} MHz / {} MB, its allocations use {} / {}",
                        node.name, r.used.cpu_mhz, r.used.memory_mb, u.cpu_mhz, u.memory_mb
                    ),
                    at_secs,
                );
            }
        }
    }

    fn names(&mut self, allocs: &[Allocation], jobs: &[Job], at_secs: u64) {
        let kinds: BTreeMap<&str, JobType> = jobs.iter().map(|j| (j.id.as_str(), j.kind())).collect();
        let mut by_name: BTreeMap<(&str, &str), Vec<&Allocation>> = BTreeMap::new();
        for a in allocs.iter().filter(|a| live(a)) {
            let kind = kinds.get(a.job_id.as_str()).cloned().or_else(|| a.job_type.clone());
            if matches!(kind, Some(JobType::System | JobType::Sysbatch)) {
                continue; // One per node, all of the same name.
            }
            by_name.entry((a.namespace.as_str(), a.name.as_str())).or_default().push(a);
        }
        for ((_, name), group) in by_name {
            self.checks += 1;
            if group.len() < 2 {
                continue;
            }
            let ids: BTreeSet<&str> = group.iter().map(|a| a.id.as_str()).collect();
            let replaced = group
                .iter()
                .all(|a| ids.contains(a.previous_allocation.as_str()) || ids.contains(a.next_allocation.as_str()));
            if !replaced {
                let detail: Vec<String> =
                    group.iter().map(|a| format!("{} on {} (v{})", a.id, a.node_id, a.job_version)).collect();
                self.fail(
                    "duplicate-allocation-name",
                    name.to_owned(),
                    format!("{name}: {} live allocations: {}", group.len(), detail.join(", ")),
                    at_secs,
                );
            }
        }
    }

    fn tasks_once(&mut self, at_secs: u64) {
        for ((node, alloc, task), n) in stead_client::driver::mock::live_tasks() {
            if !self.clients.contains(&node) {
                continue;
            }
            self.checks += 1;
            if n > 1 {
                self.fail(
                    "task-runs-twice",
                    format!("{alloc}/{task}"),
                    format!("node {node} runs task {task} of allocation {alloc} {n} times at once"),
                    at_secs,
                );
            }
        }
    }

    fn writes(&mut self, jobs: &[Job], at_secs: u64) {
        let current: BTreeMap<&str, &Job> = jobs.iter().map(|j| (j.id.as_str(), j)).collect();
        let log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        // A job the workload purged (acked or maybe), or has a write in flight to (which
        // may be a purge), may be gone.
        let mut removed: BTreeSet<&str> = BTreeSet::new();
        for w in &log {
            if matches!(w.kind, WriteKind::Purge) || w.outcome == Outcome::InFlight {
                removed.insert(w.job.as_str());
            }
        }
        for w in &log {
            let (WriteKind::Register { version }, Outcome::Acked(index)) = (w.kind, &w.outcome) else { continue };
            self.checks += 1;
            if removed.contains(w.job.as_str()) {
                continue;
            }
            match current.get(w.job.as_str()) {
                None => self.fail(
                    "acknowledged-write-lost",
                    w.job.clone(),
                    format!("job {} (version {version}, committed at {index}) is gone", w.job),
                    at_secs,
                ),
                Some(j) if j.version < version => self.fail(
                    "acknowledged-write-lost",
                    w.job.clone(),
                    format!("job {} is at version {}, older than the acknowledged {version}", w.job, j.version),
                    at_secs,
                ),
                _ => {}
            }
        }
        for j in jobs {
            self.checks += 1;
            let seen = self.versions.entry(j.id.to_string()).or_insert(j.version);
            if j.version < *seen {
                let (was, now) = (*seen, j.version);
                self.fail(
                    "job-version-went-back",
                    j.id.to_string(),
                    format!("job {} went from version {was} to {now}", j.id),
                    at_secs,
                );
            } else {
                *seen = j.version;
            }
        }
    }

    async fn events(&mut self, at_secs: u64) {
        let everything = events::Filter::default();
        loop {
            // Whole commits at a time (a read cut inside a commit is finished by it).
            let Ok((batches, after)) =
                events::next_batches(&self.store, self.events_after, &everything, std::time::Duration::ZERO).await
            else {
                return;
            };
            for b in &batches {
                self.checks += 1;
                if b.index <= self.events_after {
                    self.fail(
                        "event-out-of-order",
                        format!("{}", b.index),
                        format!("events of commit {} came after commit {}", b.index, self.events_after),
                        at_secs,
                    );
                }
                for e in b.events.iter().filter(|e| e.topic == "Job") {
                    self.job_events.entry(e.key.clone()).or_default().push((e.index, e.event_type.clone()));
                }
                self.events_after = self.events_after.max(b.index);
            }
            self.events_after = self.events_after.max(after);
            if batches.is_empty() {
                break;
            }
        }
        let log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let mut writes: BTreeMap<&str, (Vec<(u64, bool)>, usize)> = BTreeMap::new();
        for w in log.iter().filter(|w| w.kind != WriteKind::StopStopped) {
            let e = writes.entry(w.job.as_str()).or_default();
            // Every write has its event at its commit; only registers (or a write still
            // in flight, which may be one) may account for a JobRegistered event.
            let register = matches!(w.kind, WriteKind::Register { .. }) || w.outcome == Outcome::InFlight;
            match w.outcome {
                Outcome::Acked(i) => e.0.push((i, register)),
                Outcome::Unknown | Outcome::InFlight if register => e.1 += 1,
                Outcome::Unknown | Outcome::InFlight => {}
            }
        }
        for (job, (acked, unknown)) in writes {
            self.checks += 1;
            let seen = self.job_events.get(job).cloned().unwrap_or_default();
            let read_up_to = self.events_after;
            for index in acked.iter().map(|(i, _)| i).filter(|i| **i <= read_up_to) {
                if !seen.iter().any(|(i, _)| i == index) {
                    self.fail(
                        "event-missing",
                        format!("{job}@{index}"),
                        format!(
                            "job {job}: no event at the acknowledged write's commit {index} (writes {:?}; events {seen:?})",
                            log.iter().filter(|w| w.job == job).map(|w| (w.kind, w.outcome.clone())).collect::<Vec<_>>()
                        ),
                        at_secs,
                    );
                }
            }
            // Registers the workload made (not a child's launch or a GC) carry events of
            // their own: no more than the writes that may have committed.
            let registered = seen.iter().filter(|(_, t)| t == "JobRegistered").count();
            let registers = acked.iter().filter(|(_, register)| *register).count();
            if registered > registers + unknown {
                self.fail(
                    "event-extra",
                    job.to_owned(),
                    format!(
                        "job {job}: {registered} JobRegistered events for {registers} acknowledged and {unknown} unknown registers (events {seen:?}, acknowledged at {acked:?})"
                    ),
                    at_secs,
                );
            }
        }
    }

    /// The liveness checks; returns the violations found now (the caller retries until
    /// none or the deadline). `live_servers`: the names of the running server generations.
    pub async fn liveness(&mut self, live_servers: &BTreeSet<String>, at_secs: u64) -> Vec<Violation> {
        let mut found = Vec::new();
        let mut fail = |check: &'static str, detail: String| found.push(Violation { check, detail, at_secs });
        let nodes: Vec<Node> = all(&self.store).await;
        let allocs: Vec<Allocation> = all(&self.store).await;
        let jobs: Vec<Job> = all(&self.store).await;
        let evals: Vec<Evaluation> = all(&self.store).await;
        let ready: Vec<&Node> =
            nodes.iter().filter(|n| n.status == NodeStatus::Ready && self.clients.contains(&n.name)).collect();
        // Every client is back: registered and ready (the checks below look at ready nodes).
        for name in &self.clients {
            self.checks += 1;
            if !ready.iter().any(|n| n.name == *name) {
                fail(NODE_NOT_READY, format!("node {name} is not registered and ready"));
            }
        }
        // Every allocation the servers want running has been started by its client. One
        // that did and is pending again (a task waiting out its restart delay) has started:
        // with tasks that fail on purpose, some allocation is in that state at most looks.
        let never_started = |a: &Allocation| a.task_states.values().all(|t| t.started_at.is_none());
        for a in allocs.iter().filter(|a| live(a) && a.client_status == AllocClientStatus::Pending && never_started(a))
        {
            self.checks += 1;
            fail(
                "allocation-never-started",
                format!("allocation {} ({}) on node {} is still pending", a.id, a.name, a.node_id),
            );
        }
        for job in jobs.iter().filter(|j| !j.stop && !j.is_parameterized()) {
            self.checks += 1;
            let mine: Vec<&Allocation> = allocs.iter().filter(|a| a.job_id == job.id && live(a)).collect();
            match job.kind() {
                JobType::Service => {
                    let want: i64 = job.task_groups.iter().map(|g| i64::from(g.count.unwrap_or(1))).sum();
                    if mine.len() as i64 != want {
                        let history = eval_history(&evals, job);
                        fail(
                            "job-below-count",
                            format!(
                                "job {}: {} live allocations, count {want}; evaluations: {history}",
                                job.id,
                                mine.len()
                            ),
                        );
                    }
                }
                JobType::System => {
                    let on: BTreeSet<&str> = mine.iter().map(|a| a.node_id.as_str()).collect();
                    let missing: Vec<&str> =
                        ready.iter().filter(|n| !on.contains(n.id.as_str())).map(|n| n.name.as_str()).collect();
                    if !missing.is_empty() {
                        fail("job-below-count", format!("system job {} is missing on {missing:?}", job.id));
                    }
                }
                _ => {}
            }
        }
        self.checks += 1;
        match queue::counts(&self.store, 10_000).await {
            Ok(c) if c.ready > 0 || c.leased > 0 => fail(
                "evaluation-stuck",
                format!("{} evaluations ready, {} leased after the quiet phase", c.ready, c.leased),
            ),
            _ => {}
        }
        // Leases: evaluations' and duties'.
        if let Ok(tx) = self.store.db.create_transaction() {
            let (b, e) = self.store.leases().range();
            if let Ok(kvs) = tx.get_range(&stead_store::RangeOption::new(b, e).limit(10_000), ReadMode::Snapshot).await
            {
                for kv in kvs.key_values {
                    self.checks += 1;
                    if let Ok(lease) = encoding::decode::<Lease>(&kv.value) {
                        let server = lease.worker.rsplit_once('-').map_or(lease.worker.as_str(), |(s, _)| s);
                        if !live_servers.contains(server) {
                            fail(
                                "lease-held-by-dead-worker",
                                format!(
                                    "evaluation {} is leased to {}, which is not running",
                                    lease.eval_id, lease.worker
                                ),
                            );
                        }
                    }
                }
            }
            for duty in ["heartbeat", "periodic", "drain", "gc"] {
                self.checks += 1;
                if let Ok(Some(bytes)) = tx.get_snapshot(&self.store.duty_key(duty)).await
                    && let Ok(lease) = encoding::decode::<stead_server::duties::DutyLease>(&bytes)
                    && !live_servers.contains(&lease.holder)
                    && lease.expires_at > stead_server::SystemClock.now_ns()
                {
                    fail(
                        "lease-held-by-dead-worker",
                        format!("duty {duty} is held by {}, which is not running", lease.holder),
                    );
                }
            }
        }
        // What each client runs against what it was assigned.
        let running = stead_client::driver::mock::live_tasks();
        let by_id: BTreeMap<&str, &Node> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
        for node in &ready {
            self.checks += 1;
            let runs: BTreeSet<String> =
                running.keys().filter(|(n, _, _)| *n == node.name).map(|(_, a, _)| a.clone()).collect();
            let assigned: BTreeSet<String> = allocs
                .iter()
                .filter(|a| a.node_id == node.id && live(a) && a.client_status == AllocClientStatus::Running)
                .map(|a| a.id.to_string())
                .collect();
            if runs != assigned {
                let extra: Vec<&String> = runs.difference(&assigned).collect();
                let missing: Vec<&String> = assigned.difference(&runs).collect();
                fail(
                    "client-runs-other-allocations",
                    format!("node {}: runs {extra:?} it was not assigned; does not run {missing:?}", node.name),
                );
            }
        }
        let _ = by_id;
        found
    }

    /// Records the liveness violations that remained at the deadline.
    pub fn keep(&mut self, violations: Vec<Violation>) {
        for v in violations {
            let key = v.detail.clone();
            self.fail(v.check, key, v.detail, v.at_secs);
        }
    }
}

use stead_server::Clock as _;

/// The liveness check that says whether a look counts: the others judge ready nodes only.
pub const NODE_NOT_READY: &str = "node-not-ready";

/// Every liveness check's name.
pub const LIVENESS: [&str; 6] = [
    NODE_NOT_READY,
    "allocation-never-started",
    "job-below-count",
    "evaluation-stuck",
    "lease-held-by-dead-worker",
    "client-runs-other-allocations",
];

/// The job's last evaluations, oldest first: what a reader needs to see why it is short.
fn eval_history(evals: &[Evaluation], job: &Job) -> String {
    let mut mine: Vec<&Evaluation> =
        evals.iter().filter(|e| e.job_id == job.id && e.namespace == job.namespace).collect();
    mine.sort_by_key(|e| e.create_index);
    let last: Vec<String> = mine
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(|e| {
            format!(
                "{} {} {} {:?}",
                &e.id.as_str()[..8.min(e.id.as_str().len())],
                e.triggered_by,
                e.status,
                e.status_description
            )
        })
        .collect();
    format!("{} in all, last [{}]", mine.len(), last.join("; "))
}
