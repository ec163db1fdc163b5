//! The commit's decision: which parts of a plan still hold against the store as it is now.
//!
//! The plan commit transaction reads, serializably, the [`NodeUsage`] of every node in
//! (its part of) the plan and the allocations the plan stops, then calls [`decide_node`]
//! per node and [`decide_plan`] over them. Pure: no store, no clock.
//!
//! The rule (Nomad's plan applier, per node, with one refinement):
//! * a node whose part has no placements always passes: stops and in-place updates only
//!   ever free resources, whatever state the node is in;
//! * a node with placements must still exist and be schedulable, and fit its current usage
//!   less what the plan's stops free there plus the placements (cpu, memory, disk,
//!   reserved cores, ports);
//! * a node with stops or updates that does not pass is dropped whole (a destructive
//!   update stops and places on the same node, and must not lose the old allocation
//!   without its replacement);
//! * a node with placements only keeps the placements that fit, in plan order, and drops
//!   the rest (Nomad drops the node whole; keeping what fits means fewer placements to
//!   schedule again when two workers filled the same node at once);
//! * `all_at_once`: one dropped placement drops the plan.

use std::collections::BTreeMap;

use stead_model::NodeId;

use crate::placement::{Dimension, Usage};
use crate::plan::NodeUsage;

/// Why (part of) a node's part of a plan is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The node has no usage record any more (purged).
    NodeGone,
    /// Down, ineligible or draining: takes no new allocations.
    NotSchedulable,
    /// Would exceed this dimension.
    Exhausted(Dimension),
    /// Another node dropped placements and the plan is all-at-once.
    AllAtOnce,
}

/// What a node's part of a plan needs checked.
#[derive(Debug, Clone, Default)]
pub struct NodeCheck<'a> {
    /// The node's usage as read now; `None` when it has no record.
    pub usage: Option<&'a NodeUsage>,
    /// The usage of each allocation the plan stops on this node that is not terminal now
    /// (an allocation the client already finished frees nothing more).
    pub freed: Vec<Usage>,
    /// The usage of each allocation the plan places on this node, in plan order.
    pub placed: Vec<Usage>,
    /// The plan also stops or updates allocations on this node.
    pub stops_or_updates: bool,
}

/// The decision for one node's part of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDecision {
    /// The usage record to write back; `None` when there is nothing to write (the node has
    /// no record, or its part is dropped).
    pub usage: Option<NodeUsage>,
    /// How many of the node's placements are kept: the first `placed`, in plan order.
    pub placed: usize,
    /// Whether the node's stops and updates are kept.
    pub keeps_stops_and_updates: bool,
    /// Why placements were dropped, if any were.
    pub rejection: Option<Rejection>,
}

impl NodeDecision {
    fn dropped(rejection: Rejection) -> Self {
        Self { usage: None, placed: 0, keeps_stops_and_updates: false, rejection: Some(rejection) }
    }

    /// Everything of the node's part is kept.
    pub fn is_whole(&self) -> bool {
        self.rejection.is_none()
    }
}

/// Decides one node's part of a plan (see the module documentation).
pub fn decide_node(check: &NodeCheck<'_>) -> NodeDecision {
    let Some(current) = check.usage else {
        return if check.placed.is_empty() {
            NodeDecision { usage: None, placed: 0, keeps_stops_and_updates: true, rejection: None }
        } else {
            NodeDecision::dropped(Rejection::NodeGone)
        };
    };
    if !check.placed.is_empty() && !current.schedulable {
        return NodeDecision::dropped(Rejection::NotSchedulable);
    }
    let mut after = current.clone();
    for u in &check.freed {
        after.remove(u);
    }
    for (i, u) in check.placed.iter().enumerate() {
        if let Err(dim) = after.try_add(u) {
            if check.stops_or_updates || i == 0 {
                return NodeDecision::dropped(Rejection::Exhausted(dim));
            }
            return NodeDecision {
                usage: Some(after),
                placed: i,
                keeps_stops_and_updates: true,
                rejection: Some(Rejection::Exhausted(dim)),
            };
        }
    }
    NodeDecision { usage: Some(after), placed: check.placed.len(), keeps_stops_and_updates: true, rejection: None }
}

/// Every node's decision, with `all_at_once` applied: when it is set and any placement was
/// dropped, everything is (the nodes that passed with [`Rejection::AllAtOnce`]).
pub fn decide_plan(all_at_once: bool, decisions: BTreeMap<&NodeId, NodeDecision>) -> BTreeMap<&NodeId, NodeDecision> {
    if !all_at_once || decisions.values().all(NodeDecision::is_whole) {
        return decisions;
    }
    decisions
        .into_iter()
        .map(|(id, d)| (id, NodeDecision::dropped(d.rejection.unwrap_or(Rejection::AllAtOnce))))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::placement::Capacity;
    use crate::placement::cluster::{DIM_CPU, DIM_MEMORY, DIM_RESERVED_PORT};

    fn usage(cpu: i64, mem: i64, ports: &[u16]) -> Usage {
        Usage {
            cpu_mhz: cpu,
            memory_mb: mem,
            disk_mb: 0,
            ports: ports.iter().copied().collect(),
            cores: BTreeSet::new(),
        }
    }

    fn node(cpu: i64, mem: i64, used: Usage, schedulable: bool) -> NodeUsage {
        NodeUsage {
            node_id: "n".into(),
            capacity: Capacity { cpu_mhz: cpu, memory_mb: mem, disk_mb: 1000, ..Capacity::default() },
            schedulable,
            used,
            allocs: 1,
        }
    }

    /// One row: the node as read, what the plan frees and places there (and whether it
    /// stops or updates anything there), and the decision as (kept placements, usage
    /// after as (cpu, memory), stops kept, rejection).
    fn check(
        current: Option<NodeUsage>,
        freed: Vec<Usage>,
        placed: Vec<Usage>,
        stops_or_updates: bool,
        want: (usize, Option<(i64, i64)>, bool, Option<Rejection>),
    ) {
        let d = decide_node(&NodeCheck { usage: current.as_ref(), freed, placed, stops_or_updates });
        let got =
            (d.placed, d.usage.map(|u| (u.used.cpu_mhz, u.used.memory_mb)), d.keeps_stops_and_updates, d.rejection);
        assert_eq!(got, want);
    }

    #[test]
    fn node_decisions() {
        let n = |cpu_used, mem_used| Some(node(1000, 1000, usage(cpu_used, mem_used, &[]), true));
        // Fits next to what runs.
        check(n(500, 500), vec![], vec![usage(500, 500, &[])], false, (1, Some((1000, 1000)), true, None));
        // One MHz too many: the only placement is dropped.
        check(
            n(501, 0),
            vec![],
            vec![usage(500, 0, &[])],
            false,
            (0, None, false, Some(Rejection::Exhausted(DIM_CPU))),
        );
        check(
            n(0, 600),
            vec![],
            vec![usage(0, 500, &[])],
            false,
            (0, None, false, Some(Rejection::Exhausted(DIM_MEMORY))),
        );
        // Placements only: the ones that fit are kept.
        check(
            n(400, 0),
            vec![],
            vec![usage(300, 0, &[]), usage(300, 0, &[]), usage(300, 0, &[])],
            false,
            (2, Some((1000, 0)), true, Some(Rejection::Exhausted(DIM_CPU))),
        );
        // With a stop there, the node's part is kept whole or dropped whole.
        check(
            n(400, 0),
            vec![usage(100, 0, &[])],
            vec![usage(300, 0, &[]), usage(300, 0, &[]), usage(300, 0, &[])],
            true,
            (0, None, false, Some(Rejection::Exhausted(DIM_CPU))),
        );
        // What the plan stops there makes room.
        check(
            n(800, 800),
            vec![usage(500, 500, &[])],
            vec![usage(500, 500, &[])],
            true,
            (1, Some((800, 800)), true, None),
        );
        // Two placements of the plan compete for one port.
        check(
            n(0, 0),
            vec![],
            vec![usage(1, 1, &[80]), usage(1, 1, &[80])],
            false,
            (1, Some((1, 1)), true, Some(Rejection::Exhausted(DIM_RESERVED_PORT))),
        );
        // A port already taken on the node; a freed port is reusable.
        let taken = Some(node(1000, 1000, usage(0, 0, &[80]), true));
        check(
            taken,
            vec![],
            vec![usage(1, 1, &[80])],
            false,
            (0, None, false, Some(Rejection::Exhausted(DIM_RESERVED_PORT))),
        );
        let taken = Some(node(1000, 1000, usage(1, 1, &[80]), true));
        check(taken, vec![usage(1, 1, &[80])], vec![usage(1, 1, &[80])], true, (1, Some((1, 1)), true, None));
        // Not schedulable: placements refused, stops pass.
        let down = || Some(node(1000, 1000, usage(500, 500, &[]), false));
        check(down(), vec![], vec![usage(1, 1, &[])], false, (0, None, false, Some(Rejection::NotSchedulable)));
        check(down(), vec![usage(500, 500, &[])], vec![], true, (0, Some((0, 0)), true, None));
        // Gone: stops pass with nothing to write, placements refused.
        check(None, vec![usage(1, 1, &[])], vec![], true, (0, None, true, None));
        check(None, vec![], vec![usage(1, 1, &[])], false, (0, None, false, Some(Rejection::NodeGone)));
    }

    #[test]
    fn all_at_once_drops_every_node_when_one_drops_anything() {
        let (a, b): (NodeId, NodeId) = ("a".into(), "b".into());
        let fine = NodeDecision { usage: None, placed: 1, keeps_stops_and_updates: true, rejection: None };
        let partial = NodeDecision { placed: 0, rejection: Some(Rejection::Exhausted(DIM_CPU)), ..fine.clone() };
        let decisions = || BTreeMap::from([(&a, fine.clone()), (&b, partial.clone())]);
        assert_eq!(decide_plan(false, decisions())[&a], fine);
        let gang = decide_plan(true, decisions());
        assert_eq!(gang[&a], NodeDecision::dropped(Rejection::AllAtOnce));
        assert_eq!(gang[&b], NodeDecision::dropped(Rejection::Exhausted(DIM_CPU)));
        let both = BTreeMap::from([(&a, fine.clone()), (&b, fine.clone())]);
        assert!(decide_plan(true, both).values().all(NodeDecision::is_whole));
    }
}
