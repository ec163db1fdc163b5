//! Properties of placement over random clusters and groups: capacity is never exceeded, no
//! host port is used twice on a node, and the same seed gives the same placements.

#[path = "placement_common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{job, node, with_ports};
use proptest::prelude::*;
use stead_model::{JobType, Node, NodeReservedNetworkResources, NodeReservedResources};
use stead_sched::placement::{Algorithm, ClusterView, PlaceConfig, place_group, usage_of_allocated};

fn arb_node(i: usize) -> impl Strategy<Value = Node> {
    (500i64..8000, 256i64..16384, 0u16..3, prop::bool::ANY, 0usize..3).prop_map(
        move |(cpu, mem, narrow, reserve, dc)| {
            let mut n = node(&format!("n{i:03}"), ["dc1", "dc2", "dc3"][dc], cpu, mem);
            let res = n.node_resources.as_mut().unwrap();
            // Some nodes get a tiny dynamic range so dynamic ports run out.
            if narrow == 0 {
                res.min_dynamic_port = 30000;
                res.max_dynamic_port = 30004;
            }
            if reserve {
                n.reserved_resources = Some(NodeReservedResources {
                    networks: NodeReservedNetworkResources {
                        reserved_host_ports: "8080,30001-30002".into(),
                        ..Default::default()
                    },
                    ..Default::default()
                });
            }
            n
        },
    )
}

fn arb_cluster() -> impl Strategy<Value = Vec<Node>> {
    (1usize..12).prop_flat_map(|n| (0..n).map(arb_node).collect::<Vec<_>>())
}

#[derive(Debug, Clone)]
struct GroupSpec {
    batch: bool,
    count: usize,
    cpu: i32,
    mem: i32,
    static_port: bool,
    dynamic_ports: usize,
    spread_algorithm: bool,
}

fn arb_group() -> impl Strategy<Value = GroupSpec> {
    (prop::bool::ANY, 1usize..40, 50i32..3000, 64i32..4096, prop::bool::ANY, 0usize..4, prop::bool::ANY).prop_map(
        |(batch, count, cpu, mem, static_port, dynamic_ports, spread_algorithm)| GroupSpec {
            batch,
            count,
            cpu,
            mem,
            static_port,
            dynamic_ports,
            spread_algorithm,
        },
    )
}

fn run(nodes: &[Node], spec: &GroupSpec, seed: u64) -> (ClusterView, stead_sched::placement::GroupPlacement) {
    let kind = if spec.batch { JobType::Batch } else { JobType::Service };
    let statics: &[(&str, i32)] = if spec.static_port { &[("http", 8080)] } else { &[] };
    let dynamics: Vec<String> = (0..spec.dynamic_ports).map(|i| format!("d{i}")).collect();
    let dynamics: Vec<&str> = dynamics.iter().map(String::as_str).collect();
    let j = with_ports(job(kind, spec.count as i32, spec.cpu, spec.mem), statics, &dynamics);
    let config = PlaceConfig {
        algorithm: if spec.spread_algorithm { Algorithm::Spread } else { Algorithm::Binpack },
        ..PlaceConfig::default()
    };
    let mut view = ClusterView::new(nodes.to_vec());
    let p = place_group(&j, &j.task_groups[0], spec.count, &mut view, seed, &config);
    (view, p)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn placement_never_exceeds_capacity_or_reuses_a_port(nodes in arb_cluster(), spec in arb_group(), seed in any::<u64>()) {
        let (view, p) = run(&nodes, &spec, seed);
        prop_assert_eq!(p.placed.len() + p.failure.as_ref().map_or(0, |f| f.coalesced_failures as usize + 1), spec.count);
        let mut per_node: BTreeMap<String, (i64, i64, i64, Vec<u16>)> = BTreeMap::new();
        for placed in &p.placed {
            let u = usage_of_allocated(&placed.resources);
            let e = per_node.entry(placed.node_id.to_string()).or_default();
            e.0 += u.cpu_mhz;
            e.1 += u.memory_mb;
            e.2 += u.disk_mb;
            e.3.extend(u.ports.iter().copied());
            prop_assert_eq!(u.ports.len(), spec.dynamic_ports + usize::from(spec.static_port));
        }
        for (id, (cpu, mem, disk, ports)) in per_node {
            let nv = view.node(&id.as_str().into()).unwrap();
            prop_assert!(cpu <= nv.capacity.cpu_mhz, "cpu {} > {} on {}", cpu, nv.capacity.cpu_mhz, id);
            prop_assert!(mem <= nv.capacity.memory_mb);
            prop_assert!(disk <= nv.capacity.disk_mb);
            let unique: BTreeSet<u16> = ports.iter().copied().collect();
            prop_assert_eq!(unique.len(), ports.len(), "a port used twice on {}: {:?}", id, ports);
            for port in unique {
                prop_assert!(!nv.capacity.reserved_ports.iter().any(|&(lo, hi)| (lo..=hi).contains(&port)), "reserved port {} used", port);
            }
            prop_assert!(nv.usage.cpu_mhz <= nv.capacity.cpu_mhz && nv.usage.memory_mb <= nv.capacity.memory_mb);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_placements(nodes in arb_cluster(), spec in arb_group(), seed in any::<u64>()) {
        let (_, a) = run(&nodes, &spec, seed);
        let mut reversed = nodes.clone();
        reversed.reverse();
        let (_, b) = run(&reversed, &spec, seed);
        prop_assert_eq!(a, b, "the snapshot's node order must not matter either");
    }
}
