//! Node writes: the node record, its usage record and logs, and the evaluations a node's
//! change calls for, in one transaction.
//!
//! * A node that becomes schedulable (registers ready, turns ready or eligible, stops
//!   draining) or grows signals capacity (blocked evaluations run again) and gets an
//!   evaluation for every system and sysbatch job, as Nomad places system jobs on new
//!   nodes.
//! * A node that goes down or disconnected, or starts draining, gets an evaluation for
//!   every job with a non-terminal allocation on it (Nomad's `createNodeEvals`), so the
//!   reconciler marks them lost or migrates them.

use std::collections::BTreeSet;

use stead_sched::NodeUsage;
use stead_sched::reconcile::NodeState;
use stead_store::model::{EvalId, EvalStatus, EvalTrigger, Evaluation, JobType, Node};
use stead_store::records::{self, keys as record_keys};
use stead_store::schema::{PAGE_LIMIT_MAX, PageOptions};
use stead_store::{RangeOption, ReadMode, Transaction};

use crate::env::Env;
use crate::error::Result;
use crate::keys::{Log, Store};
use crate::{queue, usage};

/// System jobs evaluated per node change at most; more would not fit one transaction.
const SYSTEM_JOBS_MAX: usize = 5_000;

/// Registers or updates `node` (its usage is carried over) and queues the evaluations its
/// change calls for. Returns their IDs.
pub async fn upsert(store: &Store, env: &Env, node: &Node) -> Result<Vec<EvalId>> {
    let now = env.now_ns();
    store
        .db
        .run(|tx, _| async move {
            let old = store.ks.get::<Node>(&tx, &record_keys::node(node.id.as_str()), ReadMode::Serializable).await?;
            let old_usage = usage::get_usage(store, &tx, node.id.as_str(), ReadMode::Serializable).await?;
            store.ks.put(&tx, node, Default::default()).await?;
            let new_usage = NodeUsage::of_node(node, old_usage.as_ref());
            usage::put_usage(store, &tx, &new_usage)?;
            usage::log_nodes(store, &tx, Log::Node, [node.id.as_str()]);
            usage::log_nodes(store, &tx, Log::Usage, [node.id.as_str()]);

            let was_schedulable = old_usage.as_ref().is_some_and(|u| u.schedulable);
            let grew = old_usage.as_ref().is_some_and(|u| grew(&u.capacity, &new_usage.capacity));
            let mut evals = Vec::new();
            if new_usage.schedulable && (!was_schedulable || grew) {
                usage::signal_capacity(store, &tx);
            }
            if new_usage.schedulable && !was_schedulable {
                evals.extend(system_job_evals(store, &tx, env, node, now).await?);
            }
            let old_state = old.as_ref().map(NodeState::of);
            let state = NodeState::of(node);
            let leaving = matches!(state, NodeState::Down | NodeState::Disconnected | NodeState::Draining);
            if leaving && old_state != Some(state) {
                evals.extend(node_job_evals(store, &tx, env, node, now).await?);
            }
            let mut ids = Vec::with_capacity(evals.len());
            for eval in &evals {
                queue::enqueue(store, &tx, eval, now).await?;
                ids.push(eval.id.clone());
            }
            Ok(ids)
        })
        .await
}

fn grew(old: &stead_sched::placement::Capacity, new: &stead_sched::placement::Capacity) -> bool {
    new.cpu_mhz > old.cpu_mhz
        || new.memory_mb > old.memory_mb
        || new.disk_mb > old.disk_mb
        || new.cores.len() > old.cores.len()
}

fn node_eval(env: &Env, node: &Node, namespace: &str, job: &str, kind: JobType, priority: i32, now: i64) -> Evaluation {
    Evaluation {
        id: env.new_id().into(),
        namespace: namespace.to_owned(),
        priority,
        eval_type: kind,
        triggered_by: EvalTrigger::NodeUpdate,
        job_id: job.into(),
        node_id: node.id.clone(),
        status: EvalStatus::Pending,
        create_time: now,
        modify_time: now,
        ..Evaluation::default()
    }
}

async fn system_job_evals(
    store: &Store,
    tx: &Transaction,
    env: &Env,
    node: &Node,
    now: i64,
) -> Result<Vec<Evaluation>> {
    let (begin, end) = store.system_jobs().range();
    let entries = tx.get_range(&RangeOption::new(begin, end).limit(SYSTEM_JOBS_MAX), ReadMode::Snapshot).await?;
    let mut evals = Vec::new();
    for kv in entries.key_values {
        let Ok((ns, job)) = store.system_jobs().unpack::<(String, String)>(&kv.key) else {
            continue;
        };
        let Some(j) =
            store.ks.get::<stead_store::model::Job>(tx, &record_keys::job(&ns, &job), ReadMode::Snapshot).await?
        else {
            continue;
        };
        if j.stop {
            continue;
        }
        evals.push(node_eval(env, node, &ns, &job, j.kind(), j.priority, now));
    }
    Ok(evals)
}

async fn node_job_evals(store: &Store, tx: &Transaction, env: &Env, node: &Node, now: i64) -> Result<Vec<Evaluation>> {
    let mut jobs = BTreeSet::new();
    let mut next = None;
    loop {
        let page = PageOptions::new(PAGE_LIMIT_MAX).after(next).read_mode(ReadMode::Snapshot);
        let allocs = records::allocs_by_node(&store.ks, tx, node.id.as_str(), &page).await?;
        for a in allocs.items.iter().filter(|a| !a.is_terminal()) {
            let kind = a.job_type.clone().unwrap_or(JobType::Service);
            jobs.insert((a.namespace.clone(), a.job_id.as_str().to_owned(), kind));
        }
        next = allocs.next;
        if next.is_none() {
            break;
        }
    }
    let mut evals = Vec::new();
    for (ns, job, kind) in jobs {
        let priority = store
            .ks
            .get::<stead_store::model::Job>(tx, &record_keys::job(&ns, &job), ReadMode::Snapshot)
            .await?
            .map_or(50, |j| j.priority);
        evals.push(node_eval(env, node, &ns, &job, kind, priority, now));
    }
    Ok(evals)
}
