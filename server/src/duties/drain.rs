//! Node drains (Nomad's drainer): for every node with a drain strategy, mark its
//! allocations for migration (`DesiredTransition.Migrate`) a few at a time and queue their
//! jobs' evaluations; the scheduler places replacements elsewhere and stops the marked
//! allocations. Per task group, as Nomad: at most `migrate.max_parallel` of the group may
//! be unhealthy at once, so a group waits for its replacements to run before more of it
//! moves. Batch allocations are left to finish until the deadline; system allocations go
//! last, once nothing else runs on the node (or never, with `IgnoreSystemJobs`). At the
//! force deadline everything left is marked at once. A node with nothing left to move has
//! drained: its strategy is removed and it stays ineligible.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::BoxFuture;
use stead_store::model::{AllocClientStatus, AllocDesiredStatus, Allocation, EvalTrigger, Job, JobType, Node};
use stead_store::records::{self, keys as record_keys};
use stead_store::schema::{PAGE_LIMIT_MAX, PageOptions, PutOptions};
use stead_store::{RangeOption, ReadMode, Transaction};

use super::{Duty, Held, check};
use crate::env::Env;
use crate::error::{Result, ServerError};
use crate::keys::Store;
use crate::{nodes, queue, usage};

/// Draining nodes looked at per pass at most.
pub const NODES_PER_PASS_MAX: usize = 1_000;

pub(super) struct DrainDuty {
    pub interval: Duration,
}

impl Duty for DrainDuty {
    fn name(&self) -> &'static str {
        "drain"
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn pass<'a>(&'a self, store: &'a Store, env: &'a Env, held: &'a Held) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            drain_pass(store, env, held).await?;
            Ok(())
        })
    }
}

/// What one pass did to one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeDrainStep {
    /// Allocations marked for migration in this pass.
    pub marked: Vec<String>,
    /// The drain finished: nothing is left to move.
    pub complete: bool,
}

/// One pass over every draining node.
pub async fn drain_pass(store: &Store, env: &Env, held: &Held) -> Result<BTreeMap<String, NodeDrainStep>> {
    let tx = store.db.create_transaction()?;
    let (begin, end) = store.draining_nodes().range();
    let entries =
        tx.get_range(&RangeOption::new(begin, end).limit(NODES_PER_PASS_MAX), ReadMode::Snapshot).await?.key_values;
    drop(tx);
    let mut steps = BTreeMap::new();
    for kv in entries {
        let Ok((node,)) = store.draining_nodes().unpack::<(String,)>(&kv.key) else { continue };
        let step = drain_node(store, env, held, &node).await?;
        steps.insert(node, step);
    }
    Ok(steps)
}

async fn allocs_on(store: &Store, tx: &Transaction, node: &str) -> Result<Vec<Allocation>> {
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page = PageOptions::new(PAGE_LIMIT_MAX).after(next).read_mode(ReadMode::Serializable);
        let p = records::allocs_by_node(&store.ks, tx, node, &page).await?;
        out.extend(p.items.into_iter().filter(|a| !a.is_terminal()));
        next = p.next;
        if next.is_none() {
            return Ok(out);
        }
    }
}

fn marked(a: &Allocation) -> bool {
    a.desired_transition.migrate == Some(true)
}

/// Healthy for the drainer: running, wanted, and not itself on its way out.
fn healthy(a: &Allocation) -> bool {
    a.client_status == AllocClientStatus::Running && a.desired_status == AllocDesiredStatus::Run && !marked(a)
}

async fn drain_node(store: &Store, env: &Env, held: &Held, node_id: &str) -> Result<NodeDrainStep> {
    let now = env.now_ns();
    store
        .db
        .run(|tx, _| {
            async move {
                check(store, &tx, held).await?;
                let Some(mut node) =
                    store.ks.get::<Node>(&tx, &record_keys::node(node_id), ReadMode::Serializable).await?
                else {
                    tx.clear(&store.draining_node_key(node_id));
                    return Ok(NodeDrainStep::default());
                };
                let Some(strategy) = node.drain_strategy.clone() else {
                    tx.clear(&store.draining_node_key(node_id));
                    return Ok(NodeDrainStep::default());
                };
                let forced = !strategy.force_deadline.is_empty()
                    && stead_store::model::time::parse_rfc3339_nanos(&strategy.force_deadline)
                        .is_some_and(|deadline| now >= deadline);
                let on_node = allocs_on(store, &tx, node_id).await?;
                let is_system = |a: &Allocation| matches!(a.job_type, Some(JobType::System | JobType::Sysbatch));
                let remaining: Vec<&Allocation> =
                    on_node.iter().filter(|a| !(strategy.ignore_system_jobs && is_system(a))).collect();
                if remaining.is_empty() {
                    node.drain_strategy = None;
                    node.drain = false;
                    node.last_drain = Some(serde_json::json!({
                        "Status": "complete",
                        "StartedAt": strategy.started_at,
                        "UpdatedAt": stead_store::model::time::format_rfc3339_nanos(now),
                    }));
                    nodes::push_event(&mut node, "Drain", "Node drain complete", now);
                    nodes::upsert_in(store, &tx, env, &node, None).await?;
                    return Ok(NodeDrainStep { marked: Vec::new(), complete: true });
                }
                let others_left = remaining.iter().any(|a| !is_system(a));
                let mut to_mark: Vec<&Allocation> = Vec::new();
                let mut by_group: BTreeMap<(String, String, String), Vec<&Allocation>> = BTreeMap::new();
                for a in remaining.iter().copied().filter(|a| !marked(a)) {
                    match a.job_type.clone().unwrap_or(JobType::Service) {
                        _ if forced => to_mark.push(a),
                        JobType::Batch => {}
                        JobType::System | JobType::Sysbatch => {
                            if !others_left {
                                to_mark.push(a);
                            }
                        }
                        JobType::Service | JobType::Other(_) => {
                            let key = (a.namespace.clone(), a.job_id.to_string(), a.task_group.clone());
                            by_group.entry(key).or_default().push(a);
                        }
                    }
                }
                for ((ns, job_id, group), candidates) in by_group {
                    let job = store.ks.get::<Job>(&tx, &record_keys::job(&ns, &job_id), ReadMode::Snapshot).await?;
                    let Some(tg) = job.as_ref().and_then(|j| j.task_groups.iter().find(|g| g.name == group)) else {
                        // The job or group is gone: nothing holds these back.
                        to_mark.extend(candidates);
                        continue;
                    };
                    let count = i64::from(tg.count.unwrap_or(1));
                    let max_parallel = i64::from(tg.migrate.as_ref().and_then(|m| m.max_parallel).unwrap_or(1).max(1));
                    let group_allocs = job_group_allocs(store, &tx, &ns, &job_id, &group).await?;
                    let healthy_count = group_allocs.iter().filter(|a| healthy(a)).count() as i64;
                    let allowed = (healthy_count - (count - max_parallel)).max(0) as usize;
                    to_mark.extend(candidates.into_iter().take(allowed));
                }
                let mut jobs: BTreeSet<(String, String)> = BTreeSet::new();
                let mut step = NodeDrainStep::default();
                for a in &to_mark {
                    let mut a = (*a).clone();
                    a.desired_transition.migrate = Some(true);
                    a.modify_time = now;
                    store.ks.put(&tx, &a, PutOptions::default()).await?;
                    crate::events::emit_alloc(store, &tx, &a, "AllocationUpdateDesiredStatus")?;
                    jobs.insert((a.namespace.clone(), a.job_id.to_string()));
                    step.marked.push(a.id.to_string());
                }
                if !to_mark.is_empty() {
                    usage::stamp_node_allocs(store, &tx, node_id);
                }
                // IDs drawn inside the retry loop: a repeated evaluation is only coalesced.
                for (ns, job_id) in jobs {
                    let eval_id = env.new_id();
                    let Some(job) =
                        store.ks.get::<Job>(&tx, &record_keys::job(&ns, &job_id), ReadMode::Snapshot).await?
                    else {
                        continue;
                    };
                    let mut eval = crate::jobs::job_eval(&eval_id, &job, EvalTrigger::NodeDrain, now);
                    eval.node_id = node.id.clone();
                    queue::enqueue(store, &tx, &eval, now).await?;
                }
                Ok::<_, ServerError>(step)
            }
        })
        .await
}

async fn job_group_allocs(
    store: &Store,
    tx: &Transaction,
    ns: &str,
    job: &str,
    group: &str,
) -> Result<Vec<Allocation>> {
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page = PageOptions::new(PAGE_LIMIT_MAX).after(next).read_mode(ReadMode::Snapshot);
        let p = records::allocs_by_job(&store.ks, tx, ns, job, &page).await?;
        out.extend(p.items.into_iter().filter(|a| a.task_group == group));
        next = p.next;
        if next.is_none() {
            return Ok(out);
        }
    }
}
