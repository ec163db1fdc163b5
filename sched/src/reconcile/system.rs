//! System and sysbatch jobs: one allocation of each group on every node that should run it.
//!
//! The caller says which nodes should run the job (`candidates`: in its datacenters and node
//! pool; feasibility of constraints and resources stays with `placement`, whose failures on a
//! node are filtered out rather than queued). Per group and node:
//!
//! * no counted allocation on a candidate `Ready` node → place one there (`<job>.<group>[0]`,
//!   as Nomad names every system allocation; names are unique per node, not per job);
//! * an allocation on a down, disconnected or vanished node → lost (no replacement: it
//!   belongs to that node);
//! * on a draining node, marked by the drainer → stopped (`migrating`), nothing placed;
//! * on a node that is no longer a candidate → stopped; an ineligible or draining candidate
//!   keeps what it runs;
//! * two allocations on one node → the worse is stopped;
//! * failed allocations are never rescheduled and keep their node's slot; a completed
//!   sysbatch allocation of the current version is done; a completed system allocation is
//!   placed again (a system job is meant to run);
//! * older versions are updated in place or destructively (see [`super::update`]), with
//!   `update.max_parallel` limiting the destructive ones as for services.

use std::collections::{BTreeMap, BTreeSet};

use stead_model::{AllocClientStatus, AllocId, Allocation, Deployment, EvalId, Job, JobType, NodeId, TaskGroup};

use super::{
    DestructiveUpdate, GroupReconciliation, NodeState, PlaceReason, Placement, Reconciliation, StopReason, UpdateKind,
    alloc_name, alloc_ref, decide_update, destructive_limit, is_server_terminal, sorted, stop,
};

/// Everything the system reconciler reads.
#[derive(Debug, Clone, Copy)]
pub struct SystemInput<'a> {
    /// `None` when purged; a stopped job wants nothing.
    pub job: Option<&'a Job>,
    pub allocs: &'a [Allocation],
    /// States of all nodes that matter (candidates and those running allocations); a node
    /// missing here is gone.
    pub nodes: &'a BTreeMap<NodeId, NodeState>,
    /// Nodes in the job's datacenters and node pool.
    pub candidates: &'a BTreeSet<NodeId>,
    /// Unix nanoseconds (unused for now: system jobs never reschedule; kept for symmetry
    /// with [`super::ReconcileInput`] and for `disconnect` later).
    pub now: i64,
    pub eval_id: &'a EvalId,
    pub deployment: Option<&'a Deployment>,
}

/// Reconcile a system or sysbatch job node by node.
pub fn reconcile_system(input: &SystemInput<'_>) -> Reconciliation {
    let mut by_group: BTreeMap<&str, Vec<&Allocation>> = BTreeMap::new();
    for alloc in input.allocs {
        by_group.entry(alloc.task_group.as_str()).or_default().push(alloc);
    }
    let wants = input.job.filter(|j| !j.stop);
    let mut out = Reconciliation::default();
    if let Some(job) = wants {
        for group in &job.task_groups {
            let allocs = by_group.remove(group.name.as_str()).unwrap_or_default();
            out.groups.insert(group.name.clone(), reconcile_group(input, job, group, allocs));
        }
    }
    let reason = if wants.is_some() { StopReason::NotNeeded } else { StopReason::JobStopped };
    for (name, allocs) in by_group {
        let mut g = GroupReconciliation::default();
        for alloc in sorted(allocs).into_iter().filter(|a| !is_server_terminal(a)) {
            let lost = !alloc.client_status.is_terminal() && state(input, &alloc.node_id).loses_allocs();
            g.stop.push(stop(alloc, if lost { StopReason::Lost } else { reason }));
        }
        g.desired_updates.stop = g.stop.len() as u64;
        if !g.stop.is_empty() {
            out.groups.insert(name.to_owned(), g);
        }
    }
    out
}

fn state(input: &SystemInput<'_>, node: &NodeId) -> NodeState {
    input.nodes.get(node).copied().unwrap_or(NodeState::Down)
}

/// Rank for keeping one of two allocations on one node: lower is kept.
fn keep_rank(alloc: &Allocation) -> u8 {
    match alloc.client_status {
        AllocClientStatus::Running => 0,
        AllocClientStatus::Pending | AllocClientStatus::Unknown => 1,
        AllocClientStatus::Complete => 2,
        AllocClientStatus::Failed => 3,
        _ => 4,
    }
}

fn reconcile_group(
    input: &SystemInput<'_>,
    job: &Job,
    group: &TaskGroup,
    allocs: Vec<&Allocation>,
) -> GroupReconciliation {
    let mut out = GroupReconciliation::default();
    let sysbatch = job.kind() == JobType::Sysbatch;

    // Counted allocations per node; the rest are history.
    let mut per_node: BTreeMap<&NodeId, Vec<&Allocation>> = BTreeMap::new();
    for alloc in sorted(allocs) {
        let counted = !is_server_terminal(alloc)
            && match alloc.client_status {
                AllocClientStatus::Complete => sysbatch && alloc.job_version == job.version,
                AllocClientStatus::Failed => alloc.next_allocation.is_empty(),
                _ => true,
            };
        if counted {
            per_node.entry(&alloc.node_id).or_default().push(alloc);
        }
    }

    let mut kept: Vec<&Allocation> = Vec::new();
    for (node, mut allocs) in per_node {
        allocs.sort_by(|a, b| {
            (keep_rank(a), std::cmp::Reverse(a.job_version), &a.id).cmp(&(
                keep_rank(b),
                std::cmp::Reverse(b.job_version),
                &b.id,
            ))
        });
        for extra in allocs.drain(1..) {
            let lost = !extra.client_status.is_terminal() && state(input, node).loses_allocs();
            out.stop.push(stop(extra, if lost { StopReason::Lost } else { StopReason::Duplicate }));
            out.desired_updates.stop += 1;
        }
        let alloc = allocs[0];
        let node_state = state(input, node);
        let reason = if alloc.client_status.is_terminal() {
            // Failed or done: nothing runs there to move; it only holds the node's slot
            // unless the node left the job.
            (!input.candidates.contains(node) || node_state.loses_allocs()).then_some(StopReason::NotNeeded)
        } else if node_state.loses_allocs() {
            Some(StopReason::Lost)
        } else if node_state == NodeState::Draining && alloc.desired_transition.migrate == Some(true) {
            Some(StopReason::Migrating)
        } else if !input.candidates.contains(node) {
            Some(StopReason::NotNeeded)
        } else {
            None
        };
        match reason {
            Some(reason) => {
                out.stop.push(stop(alloc, reason));
                if reason == StopReason::Migrating {
                    out.desired_updates.migrate += 1;
                } else {
                    out.desired_updates.stop += 1;
                }
            }
            None => kept.push(alloc),
        }
    }

    let mut limit = destructive_limit(input.deployment, job, group, kept.iter().copied());
    let name = alloc_name(job.id.as_str(), &group.name, 0);
    for alloc in &kept {
        let update = if alloc.client_status.is_terminal() {
            UpdateKind::Ignore
        } else {
            decide_update(alloc.job.as_deref(), alloc.job_version, job, group)
        };
        match update {
            UpdateKind::Ignore => {
                out.ignore.push(alloc_ref(alloc));
                out.desired_updates.ignore += 1;
            }
            UpdateKind::InPlace => {
                out.inplace_update.push(alloc_ref(alloc));
                out.desired_updates.in_place_update += 1;
            }
            UpdateKind::Destructive(_) if limit == 0 => {
                out.ignore.push(alloc_ref(alloc));
                out.desired_updates.ignore += 1;
            }
            UpdateKind::Destructive(change) => {
                limit -= 1;
                out.destructive_update.push(DestructiveUpdate {
                    stop: stop(alloc, StopReason::Updating),
                    place: placement(group, &name, &alloc.node_id, Some(&alloc.id), PlaceReason::DestructiveUpdate),
                    change,
                });
                out.desired_updates.destructive_update += 1;
            }
        }
    }

    let covered: BTreeSet<&NodeId> = kept.iter().map(|a| &a.node_id).collect();
    for node in input.candidates {
        if !covered.contains(node) && state(input, node) == NodeState::Ready {
            out.place.push(placement(group, &name, node, None, PlaceReason::New));
            out.desired_updates.place += 1;
        }
    }
    out
}

fn placement(
    group: &TaskGroup,
    name: &str,
    node: &NodeId,
    previous: Option<&AllocId>,
    reason: PlaceReason,
) -> Placement {
    Placement {
        task_group: group.name.clone(),
        name: name.to_owned(),
        index: 0,
        reason,
        node: Some(node.clone()),
        previous_alloc: previous.cloned(),
        previous_node: previous.map(|_| node.clone()),
        reschedule_tracker: None,
    }
}
