//! Which nodes a group may use: datacenters, pools, status, constraints, drivers, distinct_*,
//! resources and ports, and how failures are explained.

#[path = "placement_common/mod.rs"]
mod common;

use common::{job, node, with_ports};
use stead_model::{Constraint, DriverInfo, JobType, NodeStatus, SchedulingEligibility};
use stead_sched::placement::{ClusterView, FILTER_DISTINCT_HOSTS, FILTER_DRIVERS, PlaceConfig, place_group};

fn constraint(l: &str, op: &str, r: &str) -> Constraint {
    Constraint { l_target: l.into(), operand: op.into(), r_target: r.into(), ..Default::default() }
}

fn placed_nodes(p: &stead_sched::placement::GroupPlacement) -> Vec<String> {
    p.placed.iter().map(|p| p.node_id.to_string()).collect()
}

#[test]
fn datacenter_globs_select_matching_nodes_only() {
    let nodes = vec![node("a", "dc-east", 4000, 4096), node("b", "dc-west", 4000, 4096), node("c", "prod", 4000, 4096)];
    let mut j = job(JobType::Service, 6, 100, 100);
    j.datacenters = vec!["dc-*".into()];
    let mut view = ClusterView::new(nodes.clone());
    let p = place_group(&j, &j.task_groups[0], 6, &mut view, 1, &PlaceConfig::default());
    assert_eq!(p.placed.len(), 6);
    assert!(placed_nodes(&p).iter().all(|n| n == "a" || n == "b"), "{:?}", placed_nodes(&p));

    j.datacenters = vec!["prod".into()];
    let mut view = ClusterView::new(nodes.clone());
    let p = place_group(&j, &j.task_groups[0], 2, &mut view, 1, &PlaceConfig::default());
    assert_eq!(placed_nodes(&p), vec!["c", "c"]);

    j.datacenters = vec!["nowhere-*".into()];
    let mut view = ClusterView::new(nodes);
    let p = place_group(&j, &j.task_groups[0], 3, &mut view, 1, &PlaceConfig::default());
    let failure = p.failure.expect("no datacenter matches");
    assert_eq!((failure.nodes_evaluated, failure.coalesced_failures), (0, 2));
    assert!(failure.nodes_available.is_empty());
}

#[test]
fn only_ready_eligible_nodes_of_the_job_pool_are_candidates() {
    let mut down = node("down", "dc1", 4000, 4096);
    down.status = NodeStatus::Down;
    let mut ineligible = node("inel", "dc1", 4000, 4096);
    ineligible.scheduling_eligibility = SchedulingEligibility::Ineligible;
    let mut other_pool = node("gpu", "dc1", 4000, 4096);
    other_pool.node_pool = "gpu".into();
    let nodes = vec![down, ineligible, other_pool, node("ok", "dc1", 4000, 4096)];
    let j = job(JobType::Service, 3, 100, 100);
    let mut view = ClusterView::new(nodes.clone());
    let p = place_group(&j, &j.task_groups[0], 3, &mut view, 9, &PlaceConfig::default());
    assert_eq!(placed_nodes(&p), vec!["ok", "ok", "ok"]);
    assert_eq!(p.placed[0].metric.nodes_in_pool, 3, "down, inel and ok are in the default pool");

    let mut gpu_job = j.clone();
    gpu_job.node_pool = "gpu".into();
    let mut view = ClusterView::new(nodes.clone());
    let p = place_group(&gpu_job, &gpu_job.task_groups[0], 1, &mut view, 9, &PlaceConfig::default());
    assert_eq!(placed_nodes(&p), vec!["gpu"]);

    let mut all_job = j;
    all_job.node_pool = "all".into();
    let mut view = ClusterView::new(nodes);
    let p = place_group(&all_job, &all_job.task_groups[0], 20, &mut view, 9, &PlaceConfig::default());
    let mut used = placed_nodes(&p);
    used.sort();
    used.dedup();
    assert_eq!(used, vec!["gpu", "ok"]);
}

#[test]
fn constraints_filter_nodes_and_are_reported_by_expression() {
    let mut windows = node("win", "dc1", 4000, 4096);
    windows.attributes.insert("kernel.name".into(), "windows".into());
    let nodes = vec![windows, node("lin", "dc1", 4000, 4096)];
    let mut j = job(JobType::Service, 2, 100, 100);
    j.constraints.push(constraint("${attr.kernel.name}", "=", "linux"));
    let mut view = ClusterView::new(nodes.clone());
    let p = place_group(&j, &j.task_groups[0], 2, &mut view, 3, &PlaceConfig::default());
    assert_eq!(placed_nodes(&p), vec!["lin", "lin"]);

    j.task_groups[0].constraints.push(constraint("${node.unique.name}", "!=", "name-lin"));
    let mut view = ClusterView::new(nodes);
    let p = place_group(&j, &j.task_groups[0], 2, &mut view, 3, &PlaceConfig::default());
    let m = p.failure.expect("no node is linux and not name-lin");
    assert_eq!(m.nodes_evaluated, 2);
    assert_eq!(m.nodes_filtered, 2);
    assert_eq!(m.constraint_filtered.get("${attr.kernel.name} = linux"), Some(&1));
    assert_eq!(m.constraint_filtered.get("${node.unique.name} != name-lin"), Some(&1));
    assert_eq!(m.class_filtered.get("std"), Some(&2));
    assert_eq!(m.coalesced_failures, 1);
}

#[test]
fn unique_constraints_are_not_shared_between_nodes_of_one_class() {
    // Same computed class; only the unique name tells them apart.
    let nodes: Vec<_> = (0..8).map(|i| node(&format!("n{i}"), "dc1", 4000, 4096)).collect();
    let mut j = job(JobType::Service, 8, 100, 100);
    j.constraints.push(constraint("${node.unique.id}", "regexp", "^n[0-3]$"));
    let mut view = ClusterView::new(nodes);
    let p = place_group(&j, &j.task_groups[0], 8, &mut view, 5, &PlaceConfig::default());
    assert_eq!(p.placed.len(), 8);
    assert!(placed_nodes(&p).iter().all(|n| ["n0", "n1", "n2", "n3"].contains(&n.as_str())));
}

#[test]
fn drivers_must_be_detected_and_healthy() {
    let mut unhealthy = node("sick", "dc1", 4000, 4096);
    unhealthy.drivers.insert("docker".into(), DriverInfo { detected: true, healthy: false, ..Default::default() });
    let mut missing = node("none", "dc1", 4000, 4096);
    missing.drivers.clear();
    let mut by_attribute = node("attr", "dc1", 4000, 4096);
    by_attribute.drivers.clear();
    by_attribute.attributes.insert("driver.docker".into(), "1".into());
    let j = job(JobType::Service, 4, 100, 100);
    let mut view =
        ClusterView::new(vec![unhealthy.clone(), missing.clone(), by_attribute, node("ok", "dc1", 4000, 4096)]);
    let p = place_group(&j, &j.task_groups[0], 6, &mut view, 11, &PlaceConfig::default());
    assert_eq!(p.placed.len(), 6);
    assert!(placed_nodes(&p).iter().all(|n| n == "ok" || n == "attr"));

    let mut view = ClusterView::new(vec![unhealthy, missing]);
    let m = place_group(&j, &j.task_groups[0], 1, &mut view, 11, &PlaceConfig::default()).failure.unwrap();
    assert_eq!(m.constraint_filtered.get(FILTER_DRIVERS), Some(&2));
}

#[test]
fn distinct_hosts_puts_each_allocation_on_its_own_node() {
    let nodes: Vec<_> = (0..3).map(|i| node(&format!("n{i}"), "dc1", 4000, 4096)).collect();
    let mut j = job(JobType::Service, 4, 100, 100);
    j.task_groups[0].constraints.push(constraint("", "distinct_hosts", "true"));
    let mut view = ClusterView::new(nodes);
    let p = place_group(&j, &j.task_groups[0], 4, &mut view, 2, &PlaceConfig::default());
    let mut used = placed_nodes(&p);
    used.sort();
    assert_eq!(used, vec!["n0", "n1", "n2"]);
    let m = p.failure.expect("a fourth host does not exist");
    assert_eq!(m.constraint_filtered.get(FILTER_DISTINCT_HOSTS), Some(&3));
}

#[test]
fn distinct_property_limits_allocations_per_value() {
    let mut nodes = Vec::new();
    for i in 0..6 {
        let mut n = node(&format!("n{i}"), "dc1", 4000, 4096);
        n.meta.insert("rack".into(), format!("r{}", i % 2));
        nodes.push(n);
    }
    let mut j = job(JobType::Service, 5, 100, 100);
    j.constraints.push(constraint("${meta.rack}", "distinct_property", "2"));
    let mut view = ClusterView::new(nodes);
    let p = place_group(&j, &j.task_groups[0], 5, &mut view, 4, &PlaceConfig::default());
    assert_eq!(p.placed.len(), 4, "two racks, two allocations each");
    let failure = p.failure.unwrap();
    assert_eq!(failure.constraint_filtered.get("${meta.rack} distinct_property 2"), Some(&6));
}

#[test]
fn exhausted_nodes_are_reported_by_dimension() {
    let nodes = vec![node("small-cpu", "dc1", 100, 100_000), node("small-mem", "dc1", 100_000, 100)];
    let j = job(JobType::Service, 1, 500, 500);
    let mut view = ClusterView::new(nodes);
    let m = place_group(&j, &j.task_groups[0], 1, &mut view, 1, &PlaceConfig::default()).failure.unwrap();
    assert_eq!(m.nodes_exhausted, 2);
    assert_eq!(m.dimension_exhausted.get("cpu"), Some(&1));
    assert_eq!(m.dimension_exhausted.get("memory"), Some(&1));
    assert_eq!(m.class_exhausted.get("std"), Some(&2));
}

#[test]
fn a_static_port_fits_once_per_node() {
    let nodes = vec![node("a", "dc1", 100_000, 100_000), node("b", "dc1", 100_000, 100_000)];
    let j = with_ports(job(JobType::Service, 3, 100, 100), &[("http", 8080)], &["metrics"]);
    let mut view = ClusterView::new(nodes);
    let p = place_group(&j, &j.task_groups[0], 3, &mut view, 1, &PlaceConfig::default());
    let mut used = placed_nodes(&p);
    used.sort();
    assert_eq!(used, vec!["a", "b"]);
    let m = p.failure.unwrap();
    assert_eq!(m.dimension_exhausted.get("network: reserved port collision"), Some(&2));
    for placed in &p.placed {
        let ports = &placed.resources.shared.ports;
        assert_eq!(ports.len(), 2);
        assert_eq!((ports[0].label.as_str(), ports[0].value), ("http", 8080));
        assert!((20000..=32000).contains(&ports[1].value), "dynamic port from the default range");
        assert_eq!(ports[1].to, ports[1].value, "to = -1 maps to the host port");
    }
}

#[test]
fn existing_allocations_use_capacity_and_removing_them_frees_it() {
    let j = job(JobType::Service, 1, 3000, 100);
    let mut view = ClusterView::new(vec![node("a", "dc1", 4000, 4096)]);
    let first = place_group(&j, &j.task_groups[0], 1, &mut view, 1, &PlaceConfig::default());
    let placed = &first.placed[0];
    let alloc = stead_model::Allocation {
        id: "alloc-1".into(),
        namespace: "default".into(),
        job_id: "other".into(),
        task_group: "g".into(),
        node_id: placed.node_id.clone(),
        allocated_resources: Some(placed.resources.clone()),
        ..Default::default()
    };
    let mut fresh = ClusterView::new(vec![node("a", "dc1", 4000, 4096)]);
    fresh.add_alloc(&alloc);
    assert_eq!(fresh.node(&"a".into()).unwrap().usage.cpu_mhz, 3000);
    let p = place_group(&j, &j.task_groups[0], 1, &mut fresh, 1, &PlaceConfig::default());
    assert_eq!(p.failure.unwrap().dimension_exhausted.get("cpu"), Some(&1));
    assert!(fresh.remove_alloc(&"a".into(), &"alloc-1".into()));
    let p = place_group(&j, &j.task_groups[0], 1, &mut fresh, 1, &PlaceConfig::default());
    assert_eq!(p.placed.len(), 1);
}

#[test]
fn host_volumes_must_exist_on_the_node() {
    let mut with_volume = node("vol", "dc1", 4000, 4096);
    with_volume.host_volumes.insert("certs".into(), serde_json::json!({"Path": "/etc/certs"}));
    let mut j = job(JobType::Service, 3, 100, 100);
    j.task_groups[0].volumes.insert(
        "certs".into(),
        stead_model::VolumeRequest {
            name: "certs".into(),
            volume_type: "host".into(),
            source: "certs".into(),
            ..Default::default()
        },
    );
    let mut view = ClusterView::new(vec![node("plain", "dc1", 4000, 4096), with_volume]);
    let p = place_group(&j, &j.task_groups[0], 3, &mut view, 6, &PlaceConfig::default());
    assert_eq!(placed_nodes(&p), vec!["vol", "vol", "vol"]);
}

#[test]
fn place_on_a_given_node_checks_it_and_explains_a_refusal() {
    let mut windows = node("win", "dc1", 4000, 4096);
    windows.attributes.insert("kernel.name".into(), "windows".into());
    let mut j = job(JobType::System, 1, 3000, 100);
    j.constraints.push(constraint("${attr.kernel.name}", "=", "linux"));
    let mut view = ClusterView::new(vec![windows, node("lin", "dc1", 4000, 4096)]);
    let mut placer = stead_sched::placement::GroupPlacer::new(&j, &j.task_groups[0], &view, 0, PlaceConfig::default());
    let refused = placer.place_on(&mut view, &"win".into()).unwrap_err();
    assert_eq!(refused.constraint_filtered.get("${attr.kernel.name} = linux"), Some(&1));
    assert_eq!(placer.place_on(&mut view, &"lin".into()).unwrap().node_id.as_str(), "lin");
    let full = placer.place_on(&mut view, &"lin".into()).unwrap_err();
    assert_eq!(full.dimension_exhausted.get("cpu"), Some(&1));
    assert_eq!(placer.place_on(&mut view, &"unknown".into()).unwrap_err().nodes_evaluated, 0);
}
