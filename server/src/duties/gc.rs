//! Garbage collection (Nomad's core `_core` GC job), with Nomad's default thresholds:
//! terminal evaluations after 1 h (24 h for batch jobs) together with their terminal
//! allocations, stopped jobs whose work is all done after 4 h, nodes down for 24 h with
//! nothing left on them, job versions beyond the newest 6 (never one a live allocation
//! runs), and events past their retention. `PUT /v1/system/gc` runs a pass with every
//! threshold at zero.
//!
//! Every deletion is its own small transaction under the duty's lease, and re-checks what
//! it deletes (an evaluation's allocations all terminal, a job still stopped), so a pass
//! racing new work never deletes live state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::BoxFuture;
use stead_store::model::{Allocation, EvalStatus, Evaluation, Job, JobType, Node, NodeStatus};
use stead_store::records::{self, JobVersion, keys as record_keys};
use stead_store::schema::{PAGE_LIMIT_MAX, PageOptions, Tuple};
use stead_store::{ReadMode, Transaction};

use super::{Duty, Held, check};
use crate::env::Env;
use crate::error::{Result, ServerError};
use crate::keys::Store;
use crate::{events, usage};

/// Nomad's GC thresholds (`eval_gc_threshold`, `batch_eval_gc_threshold`,
/// `job_gc_threshold`, `node_gc_threshold`, `job_tracked_versions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcConfig {
    pub eval: Duration,
    pub batch_eval: Duration,
    pub job: Duration,
    pub node: Duration,
    pub versions_kept: usize,
    pub events_retention: Duration,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            eval: Duration::from_secs(3600),
            batch_eval: Duration::from_secs(24 * 3600),
            job: Duration::from_secs(4 * 3600),
            node: Duration::from_secs(24 * 3600),
            versions_kept: 6,
            events_retention: events::EVENTS_RETENTION,
        }
    }
}

impl GcConfig {
    /// Every threshold at zero: what a forced collection uses.
    pub fn forced(&self) -> Self {
        Self {
            eval: Duration::ZERO,
            batch_eval: Duration::ZERO,
            job: Duration::ZERO,
            node: Duration::ZERO,
            ..self.clone()
        }
    }
}

pub(super) struct GcDuty {
    pub config: GcConfig,
    /// A collection runs this often, or sooner when one is requested.
    pub every: Duration,
    /// When the last collection ran, and the last request it answered.
    pub state: std::sync::Mutex<(Option<i64>, u64)>,
}

/// How often the duty looks for a requested collection.
const REQUEST_POLL: Duration = Duration::from_secs(1);

impl Duty for GcDuty {
    fn name(&self) -> &'static str {
        "gc"
    }

    fn interval(&self) -> Duration {
        REQUEST_POLL.min(self.every)
    }

    fn pass<'a>(&'a self, store: &'a Store, env: &'a Env, held: &'a Held) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let now = env.now_ns();
            let tx = store.db.create_transaction()?;
            let requested = usage::stamp_version(tx.get_snapshot(&request_key(store)).await?.as_deref());
            drop(tx);
            let (last, answered) = *self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = last.is_none_or(|l| older_than(l, self.every, now));
            if requested > answered {
                collect(store, env, &self.config.forced(), held).await?;
            } else if due {
                collect(store, env, &self.config, held).await?;
            } else {
                return Ok(());
            }
            *self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                (Some(now), requested.max(answered));
            Ok(())
        })
    }
}

fn request_key(store: &Store) -> Vec<u8> {
    store.duty_key("gc-requested")
}

/// `PUT /v1/system/gc`: asks the GC duty's holder, whichever server it is, for a
/// collection with every threshold at zero (it runs within a second or so).
pub async fn request(store: &Store) -> Result<()> {
    store
        .db
        .run(|tx, _| async move {
            tx.set_versionstamped_value(&request_key(store), &crate::keys::STAMP_VALUE_TEMPLATE);
            Ok::<_, ServerError>(())
        })
        .await
}

/// What a pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    pub evals: usize,
    pub allocs: usize,
    pub jobs: usize,
    pub versions: usize,
    pub nodes: usize,
}

fn older_than(time_ns: i64, threshold: Duration, now: i64) -> bool {
    time_ns <= now.saturating_sub(i64::try_from(threshold.as_nanos()).unwrap_or(i64::MAX))
}

async fn list_all<R: stead_store::schema::Record>(store: &Store, prefix: &Tuple) -> Result<Vec<R>> {
    let tx = store.db.create_transaction()?;
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page = PageOptions::new(PAGE_LIMIT_MAX).after(next).read_mode(ReadMode::Snapshot);
        let p = store.ks.list::<R>(&tx, prefix, &page).await?;
        out.extend(p.items);
        next = p.next;
        if next.is_none() {
            return Ok(out);
        }
    }
}

async fn job_allocs(store: &Store, tx: &Transaction, ns: &str, job: &str) -> Result<Vec<Allocation>> {
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page = PageOptions::new(PAGE_LIMIT_MAX).after(next).read_mode(ReadMode::Serializable);
        let p = records::allocs_by_job(&store.ks, tx, ns, job, &page).await?;
        out.extend(p.items);
        next = p.next;
        if next.is_none() {
            return Ok(out);
        }
    }
}

/// One collection pass with `config`'s thresholds.
pub async fn collect(store: &Store, env: &Env, config: &GcConfig, held: &Held) -> Result<Collected> {
    let now = env.now_ns();
    let mut done = Collected::default();
    let evals = list_all::<Evaluation>(store, &Tuple::empty()).await?;
    for eval in evals {
        let terminal = matches!(eval.status, EvalStatus::Complete | EvalStatus::Failed | EvalStatus::Canceled);
        let threshold = if eval.eval_type == JobType::Batch { config.batch_eval } else { config.eval };
        if terminal
            && older_than(eval.modify_time, threshold, now)
            && let Some(allocs) = collect_eval(store, held, &eval).await?
        {
            done.evals += 1;
            done.allocs += allocs;
        }
    }
    for job in list_all::<Job>(store, &Tuple::empty()).await? {
        if job.stop && collect_job(store, held, &job, config.job, now).await? {
            done.jobs += 1;
        } else {
            done.versions += collect_versions(store, held, &job, config.versions_kept).await?;
        }
    }
    for node in list_all::<Node>(store, &Tuple::empty()).await? {
        if node.status == NodeStatus::Down && collect_node(store, env, held, node.id.as_str(), config.node).await? {
            done.nodes += 1;
        }
    }
    store
        .db
        .run(|tx, _| async move {
            check(store, &tx, held).await?;
            events::trim(store, &tx, now, config.events_retention).await
        })
        .await?;
    Ok(done)
}

/// Deletes `eval` and its allocations when they are all terminal; how many allocations.
async fn collect_eval(store: &Store, held: &Held, eval: &Evaluation) -> Result<Option<usize>> {
    store
        .db
        .run(|tx, _| async move {
            check(store, &tx, held).await?;
            let allocs = job_allocs(store, &tx, &eval.namespace, eval.job_id.as_str()).await?;
            let mine: Vec<&Allocation> = allocs.iter().filter(|a| a.eval_id == eval.id).collect();
            if mine.iter().any(|a| !a.is_terminal()) {
                return Ok(None);
            }
            let mut nodes = BTreeSet::new();
            for a in &mine {
                store.ks.delete::<Allocation>(&tx, &record_keys::alloc(&a.namespace, a.id.as_str())).await?;
                nodes.insert(a.node_id.as_str());
            }
            for node in nodes {
                usage::stamp_node_allocs(store, &tx, node);
            }
            store.ks.delete::<Evaluation>(&tx, &record_keys::eval(&eval.namespace, eval.id.as_str())).await?;
            Ok::<_, ServerError>(Some(mine.len()))
        })
        .await
}

/// Purges a stopped job whose allocations and evaluations are all terminal and older than
/// `threshold`, with what is left of them.
async fn collect_job(store: &Store, held: &Held, job: &Job, threshold: Duration, now: i64) -> Result<bool> {
    store
        .db
        .run(|tx, _| async move {
            check(store, &tx, held).await?;
            let (ns, id) = (job.namespace.as_str(), job.id.as_str());
            let Some(current) = store.ks.get::<Job>(&tx, &record_keys::job(ns, id), ReadMode::Serializable).await?
            else {
                return Ok(false);
            };
            if !current.stop || !older_than(current.submit_time, threshold, now) {
                return Ok(false);
            }
            let allocs = job_allocs(store, &tx, ns, id).await?;
            if allocs.iter().any(|a| !a.is_terminal() || !older_than(a.modify_time, threshold, now)) {
                return Ok(false);
            }
            let tx_ref = &tx;
            let mut evals = Vec::new();
            let mut next = None;
            loop {
                let page = PageOptions::new(PAGE_LIMIT_MAX).after(next).read_mode(ReadMode::Serializable);
                let p = records::evals_by_job(&store.ks, tx_ref, ns, id, &page).await?;
                evals.extend(p.items);
                next = p.next;
                if next.is_none() {
                    break;
                }
            }
            let live = |e: &Evaluation| matches!(e.status, EvalStatus::Pending | EvalStatus::Blocked);
            if evals.iter().any(live) {
                return Ok(false);
            }
            let mut nodes = BTreeSet::new();
            for a in &allocs {
                store.ks.delete::<Allocation>(&tx, &record_keys::alloc(ns, a.id.as_str())).await?;
                nodes.insert(a.node_id.as_str());
            }
            for node in nodes {
                usage::stamp_node_allocs(store, &tx, node);
            }
            for e in &evals {
                store.ks.delete::<Evaluation>(&tx, &record_keys::eval(ns, e.id.as_str())).await?;
            }
            for v in records::list_job_versions(&store.ks, &tx, ns, id, PAGE_LIMIT_MAX).await? {
                store.ks.delete::<JobVersion>(&tx, &record_keys::job_version(ns, id, v.version)).await?;
            }
            events::emit(store, &tx, events::job_event(&current, "JobDeregistered"), &current)?;
            store.ks.delete::<Job>(&tx, &record_keys::job(ns, id)).await?;
            tx.clear(&store.system_job_key(ns, id));
            tx.clear(&store.periodic_job_key(ns, id));
            Ok::<_, ServerError>(true)
        })
        .await
}

/// Deletes versions of `job` beyond the newest `kept`, except versions a live allocation
/// runs; how many.
async fn collect_versions(store: &Store, held: &Held, job: &Job, kept: usize) -> Result<usize> {
    store
        .db
        .run(|tx, _| async move {
            check(store, &tx, held).await?;
            let (ns, id) = (job.namespace.as_str(), job.id.as_str());
            let versions = records::list_job_versions(&store.ks, &tx, ns, id, PAGE_LIMIT_MAX).await?;
            if versions.len() <= kept {
                return Ok(0);
            }
            let allocs = job_allocs(store, &tx, ns, id).await?;
            let in_use: BTreeSet<u64> = allocs.iter().filter(|a| !a.is_terminal()).map(|a| a.job_version).collect();
            let mut removed = 0;
            for v in versions.iter().skip(kept).filter(|v| !in_use.contains(&v.version)) {
                store.ks.delete::<JobVersion>(&tx, &record_keys::job_version(ns, id, v.version)).await?;
                removed += 1;
            }
            Ok::<_, ServerError>(removed)
        })
        .await
}

/// Purges a node that has been down past the threshold with nothing live on it.
async fn collect_node(store: &Store, env: &Env, held: &Held, node_id: &str, threshold: Duration) -> Result<bool> {
    let now = env.now_ns();
    store
        .db
        .run(|tx, _| async move {
            check(store, &tx, held).await?;
            let Some(node) = store.ks.get::<Node>(&tx, &record_keys::node(node_id), ReadMode::Serializable).await?
            else {
                return Ok(false);
            };
            let down_since = node.status_updated_at.saturating_mul(1_000_000_000);
            if node.status != NodeStatus::Down || !older_than(down_since, threshold, now) {
                return Ok(false);
            }
            let mut next = None;
            loop {
                let page = PageOptions::new(PAGE_LIMIT_MAX).after(next).read_mode(ReadMode::Serializable);
                let p = records::allocs_by_node(&store.ks, &tx, node_id, &page).await?;
                if p.items.iter().any(|a| !a.is_terminal()) {
                    return Ok(false);
                }
                next = p.next;
                if next.is_none() {
                    break;
                }
            }
            crate::nodes::purge_in(store, &tx, env, &node).await?;
            Ok::<_, ServerError>(true)
        })
        .await
}

/// Counts of what is stored, per kind (for tests and `system gc` answers).
pub async fn counts(store: &Store) -> Result<BTreeMap<&'static str, usize>> {
    Ok(BTreeMap::from([
        ("evals", list_all::<Evaluation>(store, &Tuple::empty()).await?.len()),
        ("allocs", list_all::<Allocation>(store, &Tuple::empty()).await?.len()),
        ("jobs", list_all::<Job>(store, &Tuple::empty()).await?.len()),
        ("nodes", list_all::<Node>(store, &Tuple::empty()).await?.len()),
    ]))
}
