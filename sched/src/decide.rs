//! The commit's decision: which parts of a plan still hold against the store as it is now.
//!
//! The plan commit transaction reads, serializably, the [`NodeUsage`] of every node in
//! (its part of) the plan and the allocations the plan stops, then calls [`decide_node`]
//! per node and [`decide_plan`] over them. Pure: no store, no clock.
//!
//! The rule (Nomad's plan applier, per node):
//! * a node whose part has no placements always passes: stops and in-place updates only
//!   ever free resources, whatever state the node is in;
//! * a node with placements must still exist and be schedulable, and fit its current usage
//!   less what the plan's stops free there plus the placements (cpu, memory, disk,
//!   reserved cores, ports);
//! * a node that does not pass is dropped whole (its stops and updates too: a destructive
//!   update stops and places on the same node, and must not lose the old allocation
//!   without its replacement);
//! * `all_at_once`: one dropped node drops the plan.

use std::collections::BTreeMap;

use stead_model::NodeId;

use crate::placement::{Dimension, Usage};
use crate::plan::NodeUsage;

/// Why a node's part of a plan is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The node has no usage record any more (purged).
    NodeGone,
    /// Down, ineligible or draining: takes no new allocations.
    NotSchedulable,
    /// Would exceed this dimension.
    Exhausted(Dimension),
    /// Another node was dropped and the plan is all-at-once.
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
    /// The usage of each allocation the plan places on this node.
    pub placed: Vec<Usage>,
}

/// The node's verdict: `Ok(Some(usage))` to write `usage` back, `Ok(None)` when the node
/// passes with nothing to write (no record), or the rejection.
pub fn decide_node(check: &NodeCheck<'_>) -> Result<Option<NodeUsage>, Rejection> {
    let Some(current) = check.usage else {
        return if check.placed.is_empty() { Ok(None) } else { Err(Rejection::NodeGone) };
    };
    if !check.placed.is_empty() && !current.schedulable {
        return Err(Rejection::NotSchedulable);
    }
    let mut after = current.clone();
    for u in &check.freed {
        after.remove(u);
    }
    for u in &check.placed {
        after.try_add(u).map_err(Rejection::Exhausted)?;
    }
    Ok(Some(after))
}

/// Every node's verdict, with `all_at_once` applied: when it is set and any node was
/// rejected, every node is (the others with [`Rejection::AllAtOnce`]).
pub fn decide_plan(
    all_at_once: bool,
    verdicts: BTreeMap<&NodeId, Result<Option<NodeUsage>, Rejection>>,
) -> BTreeMap<&NodeId, Result<Option<NodeUsage>, Rejection>> {
    if !all_at_once || verdicts.values().all(Result::is_ok) {
        return verdicts;
    }
    verdicts.into_iter().map(|(id, v)| (id, v.and(Err(Rejection::AllAtOnce)))).collect()
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

    /// One row: the node as read, what the plan frees and places there, the verdict.
    fn check(
        current: Option<NodeUsage>,
        freed: Vec<Usage>,
        placed: Vec<Usage>,
        want: Result<Option<(i64, i64)>, Rejection>,
    ) {
        let got = decide_node(&NodeCheck { usage: current.as_ref(), freed, placed });
        let got = got.map(|o| o.map(|u| (u.used.cpu_mhz, u.used.memory_mb)));
        assert_eq!(got, want);
    }

    #[test]
    fn node_verdicts() {
        // Fits next to what runs.
        check(
            Some(node(1000, 1000, usage(500, 500, &[]), true)),
            vec![],
            vec![usage(500, 500, &[])],
            Ok(Some((1000, 1000))),
        );
        // One MHz too many.
        check(
            Some(node(1000, 1000, usage(501, 0, &[]), true)),
            vec![],
            vec![usage(500, 0, &[])],
            Err(Rejection::Exhausted(DIM_CPU)),
        );
        check(
            Some(node(1000, 1000, usage(0, 600, &[]), true)),
            vec![],
            vec![usage(0, 500, &[])],
            Err(Rejection::Exhausted(DIM_MEMORY)),
        );
        // What the plan stops there makes room.
        check(
            Some(node(1000, 1000, usage(800, 800, &[]), true)),
            vec![usage(500, 500, &[])],
            vec![usage(500, 500, &[])],
            Ok(Some((800, 800))),
        );
        // Two placements of the plan compete for one port.
        check(
            Some(node(1000, 1000, usage(0, 0, &[]), true)),
            vec![],
            vec![usage(1, 1, &[80]), usage(1, 1, &[80])],
            Err(Rejection::Exhausted(DIM_RESERVED_PORT)),
        );
        // A port already taken on the node.
        check(
            Some(node(1000, 1000, usage(0, 0, &[80]), true)),
            vec![],
            vec![usage(1, 1, &[80])],
            Err(Rejection::Exhausted(DIM_RESERVED_PORT)),
        );
        // Freed port is reusable.
        check(
            Some(node(1000, 1000, usage(1, 1, &[80]), true)),
            vec![usage(1, 1, &[80])],
            vec![usage(1, 1, &[80])],
            Ok(Some((1, 1))),
        );
        // Not schedulable: placements refused, stops pass.
        check(
            Some(node(1000, 1000, usage(500, 500, &[]), false)),
            vec![],
            vec![usage(1, 1, &[])],
            Err(Rejection::NotSchedulable),
        );
        check(
            Some(node(1000, 1000, usage(500, 500, &[]), false)),
            vec![usage(500, 500, &[])],
            vec![],
            Ok(Some((0, 0))),
        );
        // Gone: stops pass with nothing to write, placements refused.
        check(None, vec![usage(1, 1, &[])], vec![], Ok(None));
        check(None, vec![], vec![usage(1, 1, &[])], Err(Rejection::NodeGone));
    }

    #[test]
    fn all_at_once_drops_every_node_when_one_is_dropped() {
        let (a, b): (NodeId, NodeId) = ("a".into(), "b".into());
        let verdicts = || BTreeMap::from([(&a, Ok(None)), (&b, Err(Rejection::NotSchedulable))]);
        let partial = decide_plan(false, verdicts());
        assert_eq!(partial[&a], Ok(None));
        let gang = decide_plan(true, verdicts());
        assert_eq!(gang[&a], Err(Rejection::AllAtOnce));
        assert_eq!(gang[&b], Err(Rejection::NotSchedulable));
        let fine = BTreeMap::from([(&a, Ok(None)), (&b, Ok(None))]);
        assert!(decide_plan(true, fine).values().all(Result::is_ok));
    }
}
