//! How nodes are ranked: binpack and spread fitness, job anti-affinity, affinities, spread
//! blocks, the rescheduling penalty, and the sampling limit.

#[path = "placement_common/mod.rs"]
mod common;

use std::collections::BTreeMap;

use common::{job, node};
use stead_model::{Affinity, Allocation, JobType, Spread, SpreadTarget};
use stead_sched::placement::{
    Algorithm, ClusterView, GroupPlacer, PlaceConfig, SCORE_ANTI_AFFINITY, SCORE_BINPACK, place_group,
};

/// A 2-node cluster where `full` already runs 3000 of 4000 MHz and 3000 of 4096 MB.
fn half_full_cluster() -> ClusterView {
    let mut view = ClusterView::new(vec![node("full", "dc1", 4000, 4096), node("empty", "dc1", 4000, 4096)]);
    let filler = job(JobType::Service, 1, 3000, 3000);
    let mut filler_view = ClusterView::new(vec![node("full", "dc1", 4000, 4096)]);
    let p = place_group(&filler, &filler.task_groups[0], 1, &mut filler_view, 0, &PlaceConfig::default());
    view.add_alloc(&Allocation {
        id: "filler".into(),
        namespace: "default".into(),
        job_id: "filler".into(),
        task_group: "g".into(),
        node_id: "full".into(),
        allocated_resources: Some(p.placed[0].resources.clone()),
        ..Default::default()
    });
    view
}

#[test]
fn binpack_prefers_the_fuller_node() {
    let j = job(JobType::Service, 1, 500, 500);
    for seed in 0..20 {
        let mut view = half_full_cluster();
        let p = place_group(&j, &j.task_groups[0], 1, &mut view, seed, &PlaceConfig::default());
        assert_eq!(p.placed[0].node_id.as_str(), "full", "seed {seed}");
        let meta = &p.placed[0].metric.score_meta_data;
        assert_eq!(meta.len(), 2);
        assert!(meta[0].scores[SCORE_BINPACK] > meta[1].scores[SCORE_BINPACK]);
    }
}

#[test]
fn spread_algorithm_prefers_the_emptier_node() {
    let j = job(JobType::Service, 1, 500, 500);
    let config = PlaceConfig { algorithm: Algorithm::Spread, ..PlaceConfig::default() };
    for seed in 0..20 {
        let mut view = half_full_cluster();
        let p = place_group(&j, &j.task_groups[0], 1, &mut view, seed, &config);
        assert_eq!(p.placed[0].node_id.as_str(), "empty", "seed {seed}");
    }
}

#[test]
fn binpack_fitness_matches_the_best_fit_formula() {
    // After placing 1000 MHz / 1024 MB on a 4000 / 4096 node: 75 % free of both.
    let j = job(JobType::Service, 1, 1000, 1024);
    let mut view = ClusterView::new(vec![node("a", "dc1", 4000, 4096)]);
    let p = place_group(&j, &j.task_groups[0], 1, &mut view, 0, &PlaceConfig::default());
    let expected = (20.0 - 2.0 * 10f64.powf(0.75)) / 18.0;
    let got = p.placed[0].metric.score_meta_data[0].scores[SCORE_BINPACK];
    assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    assert!((p.placed[0].score - expected).abs() < 1e-9, "only binpack applies, so it is the average");
}

#[test]
fn job_anti_affinity_spreads_a_job_over_equal_nodes() {
    // Binpack alone would stack everything on one node; the anti-affinity penalty moves
    // the next allocation to a node without one once a node has some.
    let nodes: Vec<_> = (0..4).map(|i| node(&format!("n{i}"), "dc1", 100_000, 100_000)).collect();
    let j = job(JobType::Service, 4, 100, 100);
    let mut view = ClusterView::new(nodes);
    let p = place_group(&j, &j.task_groups[0], 4, &mut view, 3, &PlaceConfig::default());
    let mut used: Vec<_> = p.placed.iter().map(|p| p.node_id.to_string()).collect();
    used.sort();
    used.dedup();
    assert!(used.len() >= 3, "{used:?}");
    let penalised =
        p.placed.iter().flat_map(|p| &p.metric.score_meta_data).any(|m| m.scores.contains_key(SCORE_ANTI_AFFINITY));
    assert!(penalised);
}

fn affinity(l: &str, r: &str, weight: i32) -> Affinity {
    Affinity { l_target: l.into(), operand: "=".into(), r_target: r.into(), weight: Some(weight), ..Default::default() }
}

fn racked(n: usize) -> Vec<stead_model::Node> {
    (0..n)
        .map(|i| {
            let mut nd = node(&format!("n{i:02}"), if i % 2 == 0 { "east" } else { "west" }, 100_000, 100_000);
            nd.meta.insert("rack".into(), format!("r{}", i % 4));
            nd
        })
        .collect()
}

#[test]
fn positive_affinity_pulls_and_negative_affinity_pushes() {
    let mut j = job(JobType::Service, 10, 100, 100);
    j.task_groups[0].affinities.push(affinity("${meta.rack}", "r1", 100));
    for seed in 0..10 {
        let mut view = ClusterView::new(racked(12));
        let p = place_group(&j, &j.task_groups[0], 10, &mut view, seed, &PlaceConfig::default());
        let on_r1 = p.placed.iter().filter(|p| view.node(&p.node_id).unwrap().node.meta["rack"] == "r1").count();
        assert!(on_r1 >= 7, "seed {seed}: {on_r1} of 10 on the preferred rack");
    }

    let mut j = job(JobType::Service, 10, 100, 100);
    j.affinities.push(affinity("${node.datacenter}", "east", -100));
    for seed in 0..10 {
        let mut view = ClusterView::new(racked(12));
        let p = place_group(&j, &j.task_groups[0], 10, &mut view, seed, &PlaceConfig::default());
        let east = p.placed.iter().filter(|p| view.node(&p.node_id).unwrap().node.datacenter == "east").count();
        assert!(east <= 2, "seed {seed}: {east} of 10 in the avoided datacenter");
    }
}

fn datacenter_counts(view: &ClusterView, p: &stead_sched::placement::GroupPlacement) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for placed in &p.placed {
        *counts.entry(view.node(&placed.node_id).unwrap().node.datacenter.clone()).or_default() += 1;
    }
    counts
}

#[test]
fn spread_targets_are_respected_over_100_placements() {
    let mut j = job(JobType::Service, 100, 10, 10);
    j.task_groups[0].spreads.push(Spread {
        attribute: "${node.datacenter}".into(),
        weight: Some(100),
        spread_target: vec![
            SpreadTarget { value: "east".into(), percent: 70, ..Default::default() },
            SpreadTarget { value: "west".into(), percent: 30, ..Default::default() },
        ],
        ..Default::default()
    });
    for seed in [1, 2, 3] {
        let mut view = ClusterView::new(racked(20));
        let p = place_group(&j, &j.task_groups[0], 100, &mut view, seed, &PlaceConfig::default());
        assert_eq!(p.placed.len(), 100);
        let counts = datacenter_counts(&view, &p);
        let east = counts.get("east").copied().unwrap_or(0);
        assert!((65..=75).contains(&east), "seed {seed}: {counts:?}");
    }
}

#[test]
fn spread_without_targets_is_even_even_when_values_have_unequal_node_counts() {
    // Rack r0 has 10 nodes, r1..r3 one each: sampling alone would put most allocations on r0.
    let nodes: Vec<_> = (0..13usize)
        .map(|i| {
            let mut nd = node(&format!("n{i:02}"), "dc1", 100_000, 100_000);
            nd.meta.insert("rack".into(), format!("r{}", i.saturating_sub(9)));
            nd
        })
        .collect();
    let mut j = job(JobType::Service, 40, 10, 10);
    j.spreads.push(Spread { attribute: "${meta.rack}".into(), weight: Some(50), ..Default::default() });
    for seed in 0..5 {
        let mut view = ClusterView::new(nodes.clone());
        let p = place_group(&j, &j.task_groups[0], 40, &mut view, seed, &PlaceConfig::default());
        let mut racks = BTreeMap::<String, usize>::new();
        for placed in &p.placed {
            *racks.entry(view.node(&placed.node_id).unwrap().node.meta["rack"].clone()).or_default() += 1;
        }
        assert_eq!(racks.len(), 4);
        assert!(racks.values().all(|&c| (8..=12).contains(&c)), "seed {seed}: {racks:?}");
    }
}

#[test]
fn rescheduling_penalty_avoids_the_previous_node() {
    let j = job(JobType::Service, 1, 500, 500);
    for seed in 0..10 {
        let mut view = half_full_cluster();
        let mut placer = GroupPlacer::new(&j, &j.task_groups[0], &view, seed, PlaceConfig::default());
        placer.penalty_nodes.insert("full".into());
        assert_eq!(placer.place_one(&mut view).unwrap().node_id.as_str(), "empty", "seed {seed}");
    }
}

#[test]
fn sample_limit_is_two_for_batch_log2_for_service_and_wide_with_preferences() {
    let view = ClusterView::new((0..1000).map(|i| node(&format!("n{i:04}"), "dc1", 4000, 4096)));
    let batch = job(JobType::Batch, 5, 100, 100);
    assert_eq!(GroupPlacer::new(&batch, &batch.task_groups[0], &view, 0, PlaceConfig::default()).limit(), 2);
    let service = job(JobType::Service, 5, 100, 100);
    assert_eq!(GroupPlacer::new(&service, &service.task_groups[0], &view, 0, PlaceConfig::default()).limit(), 10);
    let tiny = ClusterView::new(vec![node("a", "dc1", 1, 1)]);
    assert_eq!(GroupPlacer::new(&service, &service.task_groups[0], &tiny, 0, PlaceConfig::default()).limit(), 2);
    let mut preferring = job(JobType::Service, 300, 100, 100);
    preferring.affinities.push(affinity("${meta.rack}", "r1", 50));
    assert_eq!(
        GroupPlacer::new(&preferring, &preferring.task_groups[0], &view, 0, PlaceConfig::default()).limit(),
        300
    );
    preferring.task_groups[0].count = Some(3);
    assert_eq!(
        GroupPlacer::new(&preferring, &preferring.task_groups[0], &view, 0, PlaceConfig::default()).limit(),
        100
    );
}

#[test]
fn a_batch_placement_scores_only_two_nodes() {
    let nodes: Vec<_> = (0..50).map(|i| node(&format!("n{i:02}"), "dc1", 4000, 4096)).collect();
    let j = job(JobType::Batch, 1, 100, 100);
    let mut view = ClusterView::new(nodes);
    let p = place_group(&j, &j.task_groups[0], 1, &mut view, 0, &PlaceConfig::default());
    assert_eq!(p.placed[0].metric.nodes_evaluated, 2);
    assert_eq!(p.placed[0].metric.score_meta_data.len(), 2);
}
