//! Scheduler workers: claim an evaluation, read a snapshot, run the pure core, commit the
//! plan; repeat. W workers per process, any number of processes, no leader.
//!
//! One evaluation, attempt by attempt:
//!
//! 1. refresh the worker's [`ClusterCache`] and read the job's state, in one transaction
//!    (snapshot reads, so reading never conflicts);
//! 2. `stead_sched::schedule` with the seed of (cluster seed, evaluation, attempt);
//! 3. [`commit_plan`], which completes the evaluation with its last chunk when no node of
//!    the plan was dropped;
//! 4. otherwise (placements dropped at commit, or the job changed) try again: from a
//!    fresh cluster view and the job's state as the partial commit left it (known
//!    exactly: only the lease holder writes the job's allocations; client updates since
//!    then create evaluations of their own), or from a fresh read of the job when it
//!    changed. At most `attempts_service` (5) or `attempts_batch` (2) attempts in a row
//!    without progress, as Nomad; an attempt that placed something resets that count, up
//!    to `attempts_total_max`. Then the evaluation fails with a blocked evaluation
//!    (`max-plan-attempts`).
//!
//! The lease is renewed between attempts once a third of its TTL has passed. A worker that
//! loses its lease drops the evaluation (another has it); one that fails otherwise leaves
//! the lease to expire, and the evaluation is delivered again.
//!
//! Idle workers wait on a watch of the queue's ready signal (and a timeout, for delayed
//! evaluations and expired leases). Worker 0 of each process also does the queue's
//! maintenance: promote due delayed evaluations, unblock blocked ones when capacity
//! appears, re-deliver evaluations whose lease expired.
//!
//! [`Workers::shutdown`] lets each worker finish the evaluation it holds, then stop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stead_sched::ids::attempt_seed;
use stead_sched::{EvalInput, Outcome, SchedConfig, Snapshot, schedule};
use stead_store::model::{AllocId, EvalId, EvalStatus, EvalTrigger, Evaluation, JobId, JobType};
use stead_store::{ReadMode, Version};
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, debug, info_span, warn};

use crate::commit::{CommitConfig, Finish, Finished, commit_plan};
use crate::env::Env;
use crate::error::ServerError;
use crate::keys::Store;
use crate::metrics::SchedMetrics;
use crate::queue::{self, Claim, ClaimAttempt, QueueConfig, Reclaimed};
use crate::snapshot::{ClusterCache, JobState, read_job_state};

/// How the workers of one process run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Workers in this process (Nomad's `num_schedulers`; default: one per core).
    pub workers: usize,
    /// Names this process's workers (`<name>-<i>`) in leases and logs.
    pub name: String,
    /// Mixed into every attempt's seed; the same seed reproduces the same plans.
    pub cluster_seed: u64,
    pub sched: SchedConfig,
    pub queue: QueueConfig,
    pub commit: CommitConfig,
    /// Attempts without progress before a service evaluation fails (Nomad: 5).
    pub attempts_service: u32,
    /// Attempts without progress before a batch evaluation fails (Nomad: 2).
    pub attempts_batch: u32,
    /// Attempts of one evaluation in all, progress or not.
    pub attempts_total_max: u32,
    /// How long an idle worker waits without a signal before looking again (delayed
    /// evaluations and expired leases need no signal).
    pub idle_wait_max: Duration,
    /// How often worker 0 does the queue's maintenance while busy.
    pub maintenance_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            name: "server".to_owned(),
            cluster_seed: 0,
            sched: SchedConfig::default(),
            queue: QueueConfig::default(),
            commit: CommitConfig::default(),
            attempts_service: 5,
            attempts_batch: 2,
            attempts_total_max: 50,
            idle_wait_max: Duration::from_millis(500),
            maintenance_interval: Duration::from_millis(250),
        }
    }
}

/// How an evaluation ended for the worker that held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalOutcome {
    /// Every placement found a node.
    Complete,
    /// Some found none: a blocked evaluation waits for capacity.
    Blocked,
    /// Some found none, but capacity appeared meanwhile: queued again.
    Requeued,
    /// Attempts ran out: failed, with a blocked evaluation.
    Failed,
    /// Another worker holds the evaluation now.
    LeaseLost,
    /// An error left the lease to expire; the evaluation will be delivered again.
    Error(String),
}

impl EvalOutcome {
    fn label(&self) -> &'static str {
        match self {
            EvalOutcome::Complete => "complete",
            EvalOutcome::Blocked => "blocked",
            EvalOutcome::Requeued => "requeued",
            EvalOutcome::Failed => "failed",
            EvalOutcome::LeaseLost => "lease_lost",
            EvalOutcome::Error(_) => "error",
        }
    }
}

/// What a worker reports per evaluation, for tests and benchmarks that wait on work.
#[derive(Debug, Clone)]
pub struct EvalReport {
    pub eval_id: EvalId,
    pub namespace: String,
    pub job_id: JobId,
    pub worker: String,
    pub outcome: EvalOutcome,
    pub attempts: u32,
    pub placed: usize,
    pub stopped: usize,
    pub conflicts: u64,
    /// From claim to completion.
    pub duration: Duration,
}

struct Ctx {
    store: Store,
    /// One cluster cache for the process's workers: each change is read once, by
    /// whichever worker needs a newer snapshot first.
    cache: tokio::sync::Mutex<ClusterCache>,
    env: Env,
    config: WorkerConfig,
    metrics: SchedMetrics,
    reports: Option<mpsc::UnboundedSender<EvalReport>>,
}

/// The running workers of a process.
pub struct Workers {
    shutdown: watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
    ctx: Arc<Ctx>,
}

/// Starts `config.workers` workers on the current runtime.
pub fn start(
    store: Store,
    env: Env,
    config: WorkerConfig,
    metrics: SchedMetrics,
    reports: Option<mpsc::UnboundedSender<EvalReport>>,
) -> Workers {
    let (shutdown, rx) = watch::channel(false);
    let ctx =
        Arc::new(Ctx { store, env, config, metrics, reports, cache: tokio::sync::Mutex::new(ClusterCache::new()) });
    let handles = (0..ctx.config.workers.max(1))
        .map(|i| {
            let (ctx, rx) = (ctx.clone(), rx.clone());
            tokio::spawn(async move { run_worker(ctx, i, rx).await })
        })
        .collect();
    Workers { shutdown, handles, ctx }
}

impl Workers {
    /// Loads the workers' cluster cache now rather than on the first evaluation (a server
    /// does this when it starts; a cluster of 100,000 nodes takes a second or two).
    pub async fn warm_up(&self) -> Result<(), ServerError> {
        let ctx = &self.ctx;
        ctx.store.db.run(|tx, _| async move { ctx.cache.lock().await.refresh(&ctx.store, &tx).await }).await
    }

    /// Asks every worker to stop after the evaluation it holds, and waits for them.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for h in self.handles {
            let _ = h.await;
        }
    }
}

async fn run_worker(ctx: Arc<Ctx>, index: usize, mut shutdown: watch::Receiver<bool>) {
    let worker = format!("{}-{index}", ctx.config.name);
    let mut last_signal: Option<Vec<u8>> = None;
    let mut last_capacity: Version = 0;
    let mut last_maintenance: Option<Instant> = None;
    let mut error_backoff = Duration::from_millis(10);
    while !*shutdown.borrow() {
        let due = last_maintenance.is_none_or(|t| t.elapsed() >= ctx.config.maintenance_interval);
        if index == 0 && due {
            last_maintenance = Some(Instant::now());
            match maintain(&ctx, &worker, &mut last_capacity).await {
                Ok(Some(claim)) => {
                    process(&ctx, &worker, claim).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => warn!(worker, error = %e, "queue maintenance failed"),
            }
        }
        let token = ctx.env.new_id();
        let now = ctx.env.now_ns();
        let pick = ctx.env.entropy.next_u64();
        match queue::claim(&ctx.store, &ctx.config.queue, &worker, &token, now, pick).await {
            Ok(ClaimAttempt::Claimed(claim)) => {
                tracing::trace!(worker, eval = %claim.eval.id, job = %claim.eval.job_id, "claimed");
                error_backoff = Duration::from_millis(10);
                ctx.metrics.coalesced.inc_by(claim.coalesced.len() as u64);
                process(&ctx, &worker, *claim).await;
            }
            Ok(ClaimAttempt::Contended) => {
                ctx.metrics.claims_contended.inc();
                tokio::task::yield_now().await;
            }
            Ok(ClaimAttempt::Empty) => {
                tracing::trace!(worker, "nothing to claim; waiting");
                if let Err(e) = wait_for_work(&ctx, &mut last_signal, &mut shutdown).await {
                    warn!(worker, error = %e, "waiting for work failed");
                    tokio::time::sleep(error_backoff).await;
                }
            }
            Err(e) => {
                warn!(worker, error = %e, "claiming an evaluation failed");
                tokio::time::sleep(error_backoff).await;
                error_backoff = (error_backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Promotes due delayed evaluations, unblocks blocked ones when capacity appeared, and
/// takes over one evaluation whose lease expired (returned to be processed).
async fn maintain(ctx: &Ctx, worker: &str, last_capacity: &mut Version) -> Result<Option<Claim>, ServerError> {
    const PROMOTE_BATCH: usize = 500;
    let store = &ctx.store;
    while queue::promote_due(store, ctx.env.now_ns(), PROMOTE_BATCH).await? == PROMOTE_BATCH {}
    let tx = store.db.create_transaction()?;
    let capacity = queue::capacity_version(store, &tx, ReadMode::Snapshot).await?;
    if capacity > *last_capacity {
        let mut cursor = None;
        loop {
            let (_, next) = queue::unblock(store, capacity, cursor, PROMOTE_BATCH).await?;
            match next {
                Some(k) => cursor = Some(k),
                None => break,
            }
        }
        *last_capacity = capacity;
    }
    let token = ctx.env.new_id();
    Ok(match queue::reclaim_expired(store, &ctx.config.queue, &ctx.env, worker, &token).await? {
        Reclaimed::Claimed(claim) => Some(*claim),
        Reclaimed::Failed { eval, followup } => {
            warn!(worker, %eval, %followup, "evaluation reached its delivery limit and failed");
            ctx.metrics.evals.with_label_values(&["failed"]).inc();
            None
        }
        Reclaimed::None | Reclaimed::Contended => None,
    })
}

/// Waits until the queue's ready signal changes (or `idle_wait_max`, or shutdown).
async fn wait_for_work(
    ctx: &Ctx,
    last_signal: &mut Option<Vec<u8>>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), ServerError> {
    let tx = ctx.store.db.create_transaction()?;
    let key = ctx.store.ready_signal_key();
    let signal = tx.get_snapshot(&key).await?.map(|b| b.to_vec());
    if signal != *last_signal {
        // Something became ready since the last look.
        *last_signal = signal;
        return Ok(());
    }
    let watch = tx.watch(&key);
    tx.commit().await?;
    tokio::select! {
        biased;
        _ = shutdown.changed() => {}
        _ = watch => {}
        _ = tokio::time::sleep(ctx.config.idle_wait_max) => {}
    }
    Ok(())
}

async fn process(ctx: &Ctx, worker: &str, claim: Claim) {
    let span = info_span!("eval", eval_id = %claim.eval.id, job_id = %claim.eval.job_id, worker);
    let report = process_claim(ctx, worker, claim).instrument(span).await;
    ctx.metrics.evals.with_label_values(&[report.outcome.label()]).inc();
    ctx.metrics.eval_seconds.observe(report.duration.as_secs_f64());
    if let Some(reports) = &ctx.reports {
        let _ = reports.send(report);
    }
}

async fn process_claim(ctx: &Ctx, worker: &str, mut claim: Claim) -> EvalReport {
    let started = Instant::now();
    let mut report = EvalReport {
        eval_id: claim.eval.id.clone(),
        namespace: claim.eval.namespace.clone(),
        job_id: claim.eval.job_id.clone(),
        worker: worker.to_owned(),
        outcome: EvalOutcome::Error(String::new()),
        attempts: 0,
        placed: 0,
        stopped: 0,
        conflicts: 0,
        duration: Duration::ZERO,
    };
    let fruitless_max =
        if claim.eval.eval_type == JobType::Batch { ctx.config.attempts_batch } else { ctx.config.attempts_service };
    let mut fruitless = 0;
    let mut renewed = Instant::now();
    let renew_after = ctx.config.queue.lease_ttl / 3;
    let mut last_snapshot: Version = 0;
    let mut carried: Option<JobState> = None;
    report.outcome = loop {
        if fruitless >= fruitless_max.max(1) || report.attempts >= ctx.config.attempts_total_max {
            break fail_exhausted(ctx, &claim, report.attempts, last_snapshot).await;
        }
        if renewed.elapsed() >= renew_after {
            match queue::renew(&ctx.store, &ctx.config.queue, &mut claim, ctx.env.now_ns()).await {
                Ok(()) => renewed = Instant::now(),
                Err(ServerError::LeaseLost { .. }) => break EvalOutcome::LeaseLost,
                Err(e) => break EvalOutcome::Error(e.to_string()),
            }
        }
        let attempt = report.attempts;
        report.attempts += 1;
        if attempt > 0 {
            ctx.metrics.retries.inc();
        }
        match attempt_once(ctx, &claim, attempt, carried.take()).await {
            Ok(Attempted { commit, snapshot_version, after }) => {
                last_snapshot = snapshot_version;
                report.placed += commit.placed;
                report.stopped += commit.stopped;
                report.conflicts += commit.conflicts;
                ctx.metrics.placements.inc_by(commit.placed as u64);
                ctx.metrics.stops.inc_by(commit.stopped as u64);
                ctx.metrics.dropped.inc_by(commit.dropped_placements as u64);
                ctx.metrics.conflicts.inc_by(commit.conflicts);
                match commit.finished {
                    Some(Finished::Complete) => break EvalOutcome::Complete,
                    Some(Finished::Blocked) => break EvalOutcome::Blocked,
                    Some(Finished::Requeued) => break EvalOutcome::Requeued,
                    None => {
                        debug!(attempt, dropped = commit.dropped_placements, "nodes dropped at commit; trying again");
                        fruitless = if commit.placed > 0 { 0 } else { fruitless + 1 };
                        carried = Some(after);
                    }
                }
            }
            Err(ServerError::JobChanged { .. }) => fruitless += 1,
            Err(ServerError::LeaseLost { .. }) => break EvalOutcome::LeaseLost,
            Err(e) => {
                warn!(error = %e, "evaluation attempt failed; its lease will expire and it will be delivered again");
                break EvalOutcome::Error(e.to_string());
            }
        }
    };
    report.duration = started.elapsed();
    report
}

/// One scheduling attempt: snapshot, schedule, commit.
/// What one attempt left behind: its commit, and the job's state as the commit left it
/// (for the next attempt to start from, without reading the job again).
struct Attempted {
    commit: crate::commit::CommitReport,
    snapshot_version: Version,
    after: JobState,
}

/// One scheduling attempt: snapshot, schedule, commit. `carried`: the job's state as the
/// previous attempt's partial commit left it, which saves reading the job's allocations
/// again; the cluster view is always read fresh.
async fn attempt_once(
    ctx: &Ctx,
    claim: &Claim,
    attempt: u32,
    carried: Option<JobState>,
) -> Result<Attempted, ServerError> {
    let store = &ctx.store;
    let eval = &claim.eval;
    let carrying = carried.is_some();
    // One read-only transaction (retried on retryable errors such as transaction_too_old).
    // The cache may already be newer than this transaction (another worker refreshed it):
    // a newer view of other jobs' placements is only more accurate, and this job's
    // allocations change only under its lease, which this worker holds.
    let (view, version, read) = store
        .db
        .run(|tx, _| async move {
            let view = {
                let mut cache = ctx.cache.lock().await;
                cache.refresh(store, &tx).await?;
                cache.view()
            };
            let read = if carrying {
                // Client updates since (task states, terminal allocations) are not seen
                // here; the evaluations they create run after this one.
                None
            } else {
                Some(read_job_state(store, &tx, &eval.namespace, eval.job_id.as_str()).await?)
            };
            Ok::<_, ServerError>((view, tx.get_read_version().await?, read))
        })
        .await?;
    let state = read.unwrap_or_else(|| JobState { version, ..carried.unwrap_or_default() });
    let now = ctx.env.now_ns();
    let snapshot = Snapshot {
        job: state.job.as_ref(),
        allocs: &state.allocs,
        deployment: state.deployment.as_ref(),
        cluster: &view,
    };
    let seed = attempt_seed(ctx.config.cluster_seed, eval.id.as_str(), &claim.lease.token, attempt);
    let outcome = schedule(&snapshot, &EvalInput { eval, now, seed, config: &ctx.config.sched });
    let finish = finish_of(&ctx.env, eval, &outcome, state.version, now);
    let token = ctx.env.new_id();
    let started = Instant::now();
    let commit = commit_plan(store, &ctx.config.commit, claim, &outcome.plan, &token, Some(&finish), now).await?;
    ctx.metrics.plan_seconds.observe(started.elapsed().as_secs_f64());
    let snapshot_version = state.version;
    let after = if commit.finished.is_some() { state } else { apply_committed(state, outcome.plan, &commit) };
    Ok(Attempted { commit, snapshot_version, after })
}

/// The job's state after a commit wrote `commit.applied` of `plan`: the same changes to
/// the allocation records the commit made.
fn apply_committed(mut state: JobState, plan: stead_sched::Plan, commit: &crate::commit::CommitReport) -> JobState {
    let changes_existing = plan.nodes.values().any(|np| {
        !np.stop.is_empty() || !np.update.is_empty() || np.place.iter().any(|a| !a.previous_allocation.is_empty())
    });
    let position: BTreeMap<AllocId, usize> = if changes_existing {
        state.allocs.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect()
    } else {
        BTreeMap::new()
    };
    for (node, mut np) in plan.nodes {
        let Some(applied) = commit.applied.get(&node) else { continue };
        if applied.stops_and_updates {
            for stop in &np.stop {
                if let Some(&i) = position.get(&stop.alloc_id) {
                    stop.apply(&mut state.allocs[i]);
                }
            }
            for update in &np.update {
                if let Some(&i) = position.get(update.alloc_id()) {
                    update.apply(&mut state.allocs[i]);
                    if matches!(update, stead_sched::PlanUpdate::InPlace { .. }) {
                        state.allocs[i].job = None;
                    }
                }
            }
        }
        np.place.truncate(applied.placed);
        for placed in np.place {
            if let Some(&i) = position.get(&placed.previous_allocation) {
                state.allocs[i].next_allocation = placed.id.clone();
            }
            state.allocs.push(placed);
        }
    }
    state
}

/// How the evaluation is stored when the plan commits whole.
fn finish_of(env: &Env, eval: &Evaluation, outcome: &Outcome, snapshot_version: Version, now: i64) -> Finish {
    let mut done = eval.clone();
    done.status = EvalStatus::Complete;
    done.status_description = String::new();
    done.failed_tg_allocs = outcome.failed_tg_allocs.clone();
    done.queued_allocations = outcome.queued_allocations.clone();
    done.snapshot_index = snapshot_version as u64;
    done.modify_time = now;
    let blocked = outcome.needs_blocked_eval().then(|| {
        let b = blocked_eval(env, eval, EvalTrigger::QueuedAllocs, "created to place remaining allocations", now);
        done.blocked_eval = b.id.clone();
        b
    });
    Finish { eval: done, followups: outcome.followup_evals.clone(), blocked, snapshot_version }
}

fn blocked_eval(env: &Env, eval: &Evaluation, trigger: EvalTrigger, why: &str, now: i64) -> Evaluation {
    Evaluation {
        id: env.new_id().into(),
        namespace: eval.namespace.clone(),
        priority: eval.priority,
        eval_type: eval.eval_type.clone(),
        triggered_by: trigger,
        job_id: eval.job_id.clone(),
        status: EvalStatus::Blocked,
        status_description: why.to_owned(),
        previous_eval: eval.id.clone(),
        create_time: now,
        modify_time: now,
        ..Evaluation::default()
    }
}

/// Attempts ran out: fail the evaluation and leave a blocked one (Nomad's
/// `max-plan-attempts`).
async fn fail_exhausted(ctx: &Ctx, claim: &Claim, attempts: u32, snapshot_version: Version) -> EvalOutcome {
    let now = ctx.env.now_ns();
    let mut failed = claim.eval.clone();
    failed.status = EvalStatus::Failed;
    failed.status_description = format!("maximum attempts reached ({attempts})");
    failed.modify_time = now;
    let blocked =
        blocked_eval(&ctx.env, &claim.eval, EvalTrigger::MaxPlanAttempts, "created due to placement conflicts", now);
    failed.blocked_eval = blocked.id.clone();
    let finish = Finish { eval: failed, followups: Vec::new(), blocked: Some(blocked), snapshot_version };
    let empty = stead_sched::Plan {
        eval_id: claim.eval.id.clone(),
        namespace: claim.eval.namespace.clone(),
        job_id: claim.eval.job_id.clone(),
        ..Default::default()
    };
    // An empty plan still checks the job's JobModifyIndex; skip that by planning against
    // whatever is stored now.
    let stored = match current_job_modify_index(&ctx.store, &claim.eval.namespace, claim.eval.job_id.as_str()).await {
        Ok(v) => v,
        Err(e) => return EvalOutcome::Error(e.to_string()),
    };
    let empty = stead_sched::Plan { job_modify_index: stored, ..empty };
    let token = ctx.env.new_id();
    match commit_plan(&ctx.store, &ctx.config.commit, claim, &empty, &token, Some(&finish), now).await {
        Ok(_) => EvalOutcome::Failed,
        Err(ServerError::LeaseLost { .. }) => EvalOutcome::LeaseLost,
        Err(e) => EvalOutcome::Error(e.to_string()),
    }
}

async fn current_job_modify_index(store: &Store, ns: &str, job: &str) -> Result<u64, ServerError> {
    let tx = store.db.create_transaction()?;
    let versions = store
        .ks
        .get_versions::<stead_store::model::Job>(&tx, &stead_store::records::keys::job(ns, job), ReadMode::Snapshot)
        .await?;
    Ok(versions.map_or(0, |v| v.job_modify_index))
}
