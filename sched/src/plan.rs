//! The scheduler's output and what the commit re-reads.
//!
//! A [`Plan`] is what one scheduling attempt of an evaluation wants written, per node:
//! allocations to place (complete records, IDs fixed), allocations to stop, and updates
//! of allocations that stay where they are. [`NodeUsage`] is the per-node record the
//! commit transaction reads serializably and [`crate::decide`] checks the plan against.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stead_model::{AllocClientStatus, AllocDesiredStatus, AllocId, Allocation, EvalId, JobId, Node, NodeId};

use crate::placement::cluster::{DIM_CORES, DIM_CPU, DIM_DISK, DIM_MEMORY, DIM_RESERVED_PORT};
use crate::placement::{Capacity, Dimension, Usage, usage_of_allocated};

/// One attempt's plan for one evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub eval_id: EvalId,
    pub namespace: String,
    pub job_id: JobId,
    /// `JobModifyIndex` of the job the plan was computed from (0 when it is gone): the
    /// commit drops the plan when the stored job has another.
    pub job_modify_index: u64,
    pub job_version: u64,
    /// All or nothing: one node that no longer fits drops the whole plan.
    pub all_at_once: bool,
    pub nodes: BTreeMap<NodeId, NodePlan>,
}

/// What a plan does on one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodePlan {
    /// New allocations on this node, complete records (without the embedded `Job`).
    pub place: Vec<Allocation>,
    /// Allocations on this node to stop.
    pub stop: Vec<PlanStop>,
    /// Allocations on this node that stay and change a field.
    pub update: Vec<PlanUpdate>,
}

impl NodePlan {
    pub fn is_empty(&self) -> bool {
        self.place.is_empty() && self.stop.is_empty() && self.update.is_empty()
    }
}

/// An allocation to stop: desired status `stop` with this description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanStop {
    pub alloc_id: AllocId,
    pub description: String,
    /// The client status to record with the stop (`lost` for allocations on a down node).
    pub client_status: Option<AllocClientStatus>,
}

/// A change to an allocation that stays where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanUpdate {
    /// Takes the new job version in place (its resources do not change).
    InPlace { alloc_id: AllocId, job_version: u64 },
    /// A failed allocation whose replacement waits for a delayed evaluation.
    Followup { alloc_id: AllocId, eval_id: EvalId },
}

impl PlanStop {
    /// What the stop changes in the allocation's record: desired status `stop` with the
    /// description, and the client status it carries unless the client already finished.
    pub fn apply(&self, alloc: &mut Allocation) {
        alloc.desired_status = AllocDesiredStatus::Stop;
        alloc.desired_description.clone_from(&self.description);
        if let Some(status) = &self.client_status
            && !alloc.client_status.is_terminal()
        {
            alloc.client_status = status.clone();
        }
    }
}

impl PlanUpdate {
    /// What the update changes in the allocation's record.
    pub fn apply(&self, alloc: &mut Allocation) {
        match self {
            PlanUpdate::InPlace { job_version, .. } => alloc.job_version = *job_version,
            PlanUpdate::Followup { eval_id, .. } => alloc.followup_eval_id = eval_id.clone(),
        }
    }

    pub fn alloc_id(&self) -> &AllocId {
        match self {
            PlanUpdate::InPlace { alloc_id, .. } | PlanUpdate::Followup { alloc_id, .. } => alloc_id,
        }
    }
}

impl Plan {
    /// Nothing to write.
    pub fn is_noop(&self) -> bool {
        self.nodes.values().all(NodePlan::is_empty)
    }

    pub fn placements_count(&self) -> usize {
        self.nodes.values().map(|n| n.place.len()).sum()
    }

    pub fn stops_count(&self) -> usize {
        self.nodes.values().map(|n| n.stop.len()).sum()
    }

    pub fn updates_count(&self) -> usize {
        self.nodes.values().map(|n| n.update.len()).sum()
    }

    pub(crate) fn node_mut(&mut self, node: &NodeId) -> &mut NodePlan {
        self.nodes.entry(node.clone()).or_default()
    }
}

/// What a node can give and what its non-terminal allocations use: the record the plan
/// commit re-reads (serializably) for every node it touches, and writes back.
///
/// Every write that places an allocation adds its usage here, and every write that makes
/// one terminal (stopped by the server, or complete, failed or lost on the client)
/// subtracts it, in the same transaction: `used` is the sum of the node's non-terminal
/// allocations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeUsage {
    pub node_id: NodeId,
    pub capacity: Capacity,
    /// Ready, eligible and not draining: may take new allocations.
    pub schedulable: bool,
    pub used: Usage,
    /// Non-terminal allocations on the node.
    pub allocs: u64,
}

impl NodeUsage {
    /// A node's usage record as its node record says, with `used` and `allocs` kept from
    /// `previous` (the node's record before this change, if any).
    pub fn of_node(node: &Node, previous: Option<&NodeUsage>) -> NodeUsage {
        NodeUsage {
            node_id: node.id.clone(),
            capacity: Capacity::of(node),
            schedulable: node.is_schedulable(),
            used: previous.map(|p| p.used.clone()).unwrap_or_default(),
            allocs: previous.map_or(0, |p| p.allocs),
        }
    }

    /// Adds an allocation's usage if it fits next to what is used; else the first
    /// dimension that is exhausted, and nothing changes.
    pub fn try_add(&mut self, u: &Usage) -> Result<(), Dimension> {
        let cap = &self.capacity;
        if self.used.cpu_mhz + u.cpu_mhz > cap.cpu_mhz {
            return Err(DIM_CPU);
        }
        if self.used.memory_mb + u.memory_mb > cap.memory_mb {
            return Err(DIM_MEMORY);
        }
        if self.used.disk_mb + u.disk_mb > cap.disk_mb {
            return Err(DIM_DISK);
        }
        if u.cores.iter().any(|c| !cap.cores.contains(c) || self.used.cores.contains(c)) {
            return Err(DIM_CORES);
        }
        if u.ports.iter().any(|p| self.used.ports.contains(p) || cap.port_reserved(*p)) {
            return Err(DIM_RESERVED_PORT);
        }
        self.add(u);
        Ok(())
    }

    /// Adds an allocation's usage without checking (an allocation that already runs).
    pub fn add(&mut self, u: &Usage) {
        self.used.add(u);
        self.allocs += 1;
    }

    /// Subtracts an allocation that became terminal.
    pub fn remove(&mut self, u: &Usage) {
        self.used.remove(u);
        self.allocs = self.allocs.saturating_sub(1);
    }
}

/// What a stored allocation takes from its node (its `AllocatedResources`; nothing when
/// it has none).
pub fn stored_alloc_usage(alloc: &Allocation) -> Usage {
    alloc.allocated_resources.as_ref().map(usage_of_allocated).unwrap_or_default()
}

/// Every allocation a plan places, by node, with its usage.
pub fn placement_usages(node: &NodePlan) -> Vec<Usage> {
    node.place.iter().map(stored_alloc_usage).collect()
}

/// The node IDs a plan touches, by how a commit should order them: nodes with stops first
/// (freeing before placing elsewhere), then the rest, each in ID order.
pub fn commit_order(plan: &Plan) -> Vec<&NodeId> {
    let (mut with_stops, rest): (Vec<_>, Vec<_>) =
        plan.nodes.iter().filter(|(_, n)| !n.is_empty()).partition(|(_, n)| !n.stop.is_empty());
    with_stops.extend(rest);
    with_stops.into_iter().map(|(id, _)| id).collect()
}

/// Allocation counts by client-visible outcome, for metrics and annotations.
pub fn placed_by_group(plan: &Plan) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for alloc in plan.nodes.values().flat_map(|n| n.place.iter()) {
        *out.entry(alloc.task_group.clone()).or_default() += 1;
    }
    out
}
