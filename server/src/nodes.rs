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
use stead_store::model::{EvalId, EvalStatus, EvalTrigger, Evaluation, JobType, Node, NodeEvent};
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
    store.db.run(|tx, _| async move { upsert_in(store, &tx, env, node, None).await }).await
}

/// [`upsert`] inside the caller's transaction. `old`: the stored record when the caller
/// has read it already (serializably), or None to read it here.
pub async fn upsert_in(
    store: &Store,
    tx: &Transaction,
    env: &Env,
    node: &Node,
    old: Option<Option<Node>>,
) -> Result<Vec<EvalId>> {
    let now = env.now_ns();
    let old = match old {
        Some(old) => old,
        None => store.ks.get::<Node>(tx, &record_keys::node(node.id.as_str()), ReadMode::Serializable).await?,
    };
    let old_usage = usage::get_usage(store, tx, node.id.as_str(), ReadMode::Serializable).await?;
    store.ks.put(tx, node, Default::default()).await?;
    let event_type = match &old {
        None => "NodeRegistration",
        Some(o) if o.drain_strategy != node.drain_strategy => "NodeDrain",
        Some(o) if o.scheduling_eligibility != node.scheduling_eligibility => "NodeEligibility",
        Some(o) if o.status != node.status => "NodeRegistration",
        Some(_) => "NodeEvent",
    };
    crate::events::emit_node(store, tx, node, event_type)?;
    if node.drain_strategy.is_some() {
        tx.set(&store.draining_node_key(node.id.as_str()), b"");
    } else if old.as_ref().is_some_and(|o| o.drain_strategy.is_some()) {
        tx.clear(&store.draining_node_key(node.id.as_str()));
    }
    let new_usage = NodeUsage::of_node(node, old_usage.as_ref());
    usage::put_usage(store, tx, &new_usage)?;
    usage::log_nodes(store, tx, Log::Node, [node.id.as_str()]);
    usage::log_nodes(store, tx, Log::Usage, [node.id.as_str()]);

    let was_schedulable = old_usage.as_ref().is_some_and(|u| u.schedulable);
    let grew = old_usage.as_ref().is_some_and(|u| grew(&u.capacity, &new_usage.capacity));
    let mut evals = Vec::new();
    if new_usage.schedulable && (!was_schedulable || grew) {
        usage::signal_capacity(store, tx);
    }
    if new_usage.schedulable && !was_schedulable {
        evals.extend(system_job_evals(store, tx, env, node, now).await?);
    }
    let old_state = old.as_ref().map(NodeState::of);
    let state = NodeState::of(node);
    let leaving = matches!(state, NodeState::Down | NodeState::Disconnected | NodeState::Draining);
    if leaving && old_state != Some(state) {
        evals.extend(node_job_evals(store, tx, env, node, now).await?);
    }
    let mut ids = Vec::with_capacity(evals.len());
    for eval in &evals {
        queue::enqueue(store, tx, eval, now).await?;
        ids.push(eval.id.clone());
    }
    Ok(ids)
}

/// Appends `event` to a node's events, keeping the last [`NODE_EVENTS_MAX`].
pub fn push_event(node: &mut Node, subsystem: &str, message: impl Into<String>, now_ns: i64) {
    node.events.push(NodeEvent {
        message: message.into(),
        subsystem: subsystem.to_owned(),
        timestamp: stead_store::model::time::format_rfc3339_nanos(now_ns),
        ..NodeEvent::default()
    });
    let excess = node.events.len().saturating_sub(NODE_EVENTS_MAX);
    node.events.drain(..excess);
}

/// Events kept per node, as Nomad.
pub const NODE_EVENTS_MAX: usize = 10;

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

/// What a node operation of the API did (Nomad's `NodeUpdateResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUpdated {
    pub eval_ids: Vec<EvalId>,
    /// The commit version (`NodeModifyIndex`, `EvalCreateIndex`).
    pub index: u64,
}

fn not_found(node_id: &str) -> crate::error::ServerError {
    crate::error::ServerError::NotFound(format!("node {node_id} not found"))
}

/// Reads `node_id` serializably, lets `change` edit it, and writes it back with the
/// evaluations the change calls for.
async fn update_node<F>(store: &Store, env: &Env, node_id: &str, change: F) -> Result<NodeUpdated>
where
    F: Fn(&mut Node, i64) -> Result<()>,
{
    let now = env.now_ns();
    let committed = store
        .db
        .run_committed(|tx, _| {
            let change = &change;
            async move {
                let old = store.ks.get::<Node>(&tx, &record_keys::node(node_id), ReadMode::Serializable).await?;
                let Some(mut node) = old.clone() else {
                    return Err(not_found(node_id));
                };
                change(&mut node, now)?;
                upsert_in(store, &tx, env, &node, Some(old)).await
            }
        })
        .await?;
    Ok(NodeUpdated { eval_ids: committed.value, index: u64::try_from(committed.commit.version).unwrap_or(0) })
}

/// `POST /v1/node/:id/eligibility`. A draining node cannot be made eligible (its drain
/// decides that when it ends).
pub async fn set_eligibility(store: &Store, env: &Env, node_id: &str, eligible: bool) -> Result<NodeUpdated> {
    update_node(store, env, node_id, |node, now| {
        if eligible && node.drain_strategy.is_some() {
            return Err(crate::error::ServerError::Invalid(format!(
                "node {node_id} is draining: it becomes eligible when the drain is cancelled with -keep-ineligible=false or ends with MarkEligible"
            )));
        }
        let (value, word) = if eligible {
            (stead_store::model::SchedulingEligibility::Eligible, "eligible")
        } else {
            (stead_store::model::SchedulingEligibility::Ineligible, "ineligible")
        };
        if node.scheduling_eligibility != value {
            node.scheduling_eligibility = value;
            push_event(node, "Cluster", format!("Node marked as {word} for scheduling"), now);
        }
        Ok(())
    })
    .await
}

/// `POST /v1/node/:id/drain`: `Some(spec)` starts (or changes) a drain: the node turns
/// ineligible and the drainer migrates its allocations, forcing what is left at the
/// deadline (a negative deadline: at once; zero: never). `None` cancels it; the node
/// stays ineligible unless `mark_eligible`.
pub async fn set_drain(
    store: &Store,
    env: &Env,
    node_id: &str,
    spec: Option<stead_store::model::DrainSpec>,
    mark_eligible: bool,
) -> Result<NodeUpdated> {
    use stead_store::model::{DrainStrategy, SchedulingEligibility};
    update_node(store, env, node_id, |node, now| {
        match &spec {
            Some(spec) => {
                let deadline = spec.deadline.0;
                let force_deadline = match deadline {
                    d if d < 0 => stead_store::model::time::format_rfc3339_nanos(now),
                    0 => String::new(),
                    d => stead_store::model::time::format_rfc3339_nanos(now.saturating_add(d)),
                };
                let started_at = node
                    .drain_strategy
                    .as_ref()
                    .map(|s| s.started_at.clone())
                    .unwrap_or_else(|| stead_store::model::time::format_rfc3339_nanos(now));
                node.drain_strategy = Some(DrainStrategy {
                    deadline: spec.deadline,
                    ignore_system_jobs: spec.ignore_system_jobs,
                    force_deadline,
                    started_at,
                    ..DrainStrategy::default()
                });
                node.drain = true;
                node.scheduling_eligibility = SchedulingEligibility::Ineligible;
                push_event(node, "Drain", "Node drain strategy set", now);
            }
            None => {
                if node.drain_strategy.take().is_some() {
                    push_event(node, "Drain", "Node drain strategy unset", now);
                }
                node.drain = false;
                if mark_eligible {
                    node.scheduling_eligibility = SchedulingEligibility::Eligible;
                }
            }
        }
        Ok(())
    })
    .await
}

/// `POST /v1/node/:id/purge`: forgets the node (record, usage, heartbeat); its
/// allocations are lost and their jobs evaluated.
pub async fn purge(store: &Store, env: &Env, node_id: &str) -> Result<NodeUpdated> {
    let committed = store
        .db
        .run_committed(|tx, _| async move {
            let pk = record_keys::node(node_id);
            let Some(node) = store.ks.get::<Node>(&tx, &pk, ReadMode::Serializable).await? else {
                return Err(not_found(node_id));
            };
            purge_in(store, &tx, env, &node).await
        })
        .await?;
    Ok(NodeUpdated { eval_ids: committed.value, index: u64::try_from(committed.commit.version).unwrap_or(0) })
}

/// [`purge`] of `node` (read by the caller, serializably) in the caller's transaction.
pub async fn purge_in(store: &Store, tx: &Transaction, env: &Env, node: &Node) -> Result<Vec<EvalId>> {
    let now = env.now_ns();
    let node_id = node.id.as_str();
    let evals = node_job_evals(store, tx, env, node, now).await?;
    crate::events::emit_node(store, tx, node, "NodeDeregistration")?;
    store.ks.delete::<Node>(tx, &record_keys::node(node_id)).await?;
    tx.clear(&store.draining_node_key(node_id));
    usage::delete_usage(store, tx, node_id);
    usage::log_nodes(store, tx, Log::Node, [node_id]);
    usage::log_nodes(store, tx, Log::Usage, [node_id]);
    crate::clients::clear_deadline(store, tx, node_id).await?;
    crate::clients::count_nodes(store, tx, -1);
    let mut ids = Vec::new();
    for eval in &evals {
        queue::enqueue(store, tx, eval, now).await?;
        ids.push(eval.id.clone());
    }
    Ok(ids)
}

/// `POST /v1/node/:id/evaluate`: an evaluation of every job with allocations on the node
/// and of every system job.
pub async fn evaluate(store: &Store, env: &Env, node_id: &str) -> Result<NodeUpdated> {
    let now = env.now_ns();
    let committed = store
        .db
        .run_committed(|tx, _| async move {
            let Some(node) = store.ks.get::<Node>(&tx, &record_keys::node(node_id), ReadMode::Snapshot).await? else {
                return Err(not_found(node_id));
            };
            let mut evals = node_job_evals(store, &tx, env, &node, now).await?;
            let known: BTreeSet<_> = evals.iter().map(|e| (e.namespace.clone(), e.job_id.clone())).collect();
            for e in system_job_evals(store, &tx, env, &node, now).await? {
                if !known.contains(&(e.namespace.clone(), e.job_id.clone())) {
                    evals.push(e);
                }
            }
            let mut ids = Vec::new();
            for eval in &evals {
                queue::enqueue(store, &tx, eval, now).await?;
                ids.push(eval.id.clone());
            }
            Ok::<_, crate::error::ServerError>(ids)
        })
        .await?;
    Ok(NodeUpdated { eval_ids: committed.value, index: u64::try_from(committed.commit.version).unwrap_or(0) })
}
