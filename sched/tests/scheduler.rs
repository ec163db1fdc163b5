//! `schedule`: reconcile and placement joined per evaluation. One `check` helper renders an
//! outcome as text; cases give the world and the expected text. Property tests drive random
//! worlds through schedule → apply → schedule and check that the second plan changes
//! nothing, that no node is over its capacity, and that the same seed gives the same plan.

mod placement_common;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use placement_common::{job, node};
use proptest::prelude::*;
use stead_model::{AllocClientStatus, Allocation, Constraint, EvalStatus, Evaluation, Job, JobType, Node, NodeStatus};
use stead_sched::placement::ClusterView;
use stead_sched::{EvalInput, Outcome, Plan, PlanUpdate, SchedConfig, Snapshot, schedule};

const NOW: i64 = 1_800_000_000_000_000_000;

/// Nodes, the job's versions and its allocations.
#[derive(Clone)]
struct World {
    nodes: Vec<Node>,
    job: Option<Job>,
    versions: BTreeMap<u64, Job>,
    allocs: Vec<Allocation>,
    evals: u32,
}

impl World {
    fn new(nodes: Vec<Node>, job: Job) -> Self {
        let versions = BTreeMap::from([(job.version, job.clone())]);
        Self { nodes, job: Some(job), versions, allocs: Vec::new(), evals: 0 }
    }

    /// Registers the next version of the job.
    fn update(&mut self, change: impl FnOnce(&mut Job)) {
        let mut next = self.job.clone().expect("a job");
        change(&mut next);
        next.version += 1;
        next.job_modify_index += 1;
        self.versions.insert(next.version, next.clone());
        self.job = Some(next);
    }

    fn view(&self) -> ClusterView {
        let mut view = ClusterView::new(self.nodes.clone());
        for a in &self.allocs {
            view.add_alloc(a);
        }
        view
    }

    fn schedule(&mut self, seed: u64) -> Outcome {
        self.evals += 1;
        let eval = Evaluation {
            id: format!("eval-{}", self.evals).into(),
            namespace: "default".to_owned(),
            job_id: "web".into(),
            eval_type: self.job.as_ref().map_or(JobType::Service, Job::kind),
            status: EvalStatus::Pending,
            ..Evaluation::default()
        };
        // What the snapshot reader does: an allocation of an older version carries it.
        let current = self.job.as_ref().map_or(0, |j| j.version);
        for a in &mut self.allocs {
            a.job =
                (a.job_version != current).then(|| self.versions.get(&a.job_version).cloned().map(Box::new)).flatten();
        }
        let view = self.view();
        let snapshot = Snapshot { job: self.job.as_ref(), allocs: &self.allocs, deployment: None, cluster: &view };
        schedule(&snapshot, &EvalInput { eval: &eval, now: NOW, seed, config: &SchedConfig::default() })
    }

    /// Writes the plan as the commit would (without the decide step: the tests check fit
    /// separately).
    fn apply(&mut self, plan: &Plan) {
        for np in plan.nodes.values() {
            for stop in &np.stop {
                stop.apply(self.allocs.iter_mut().find(|a| a.id == stop.alloc_id).expect("stopped alloc exists"));
            }
            for update in &np.update {
                update
                    .apply(self.allocs.iter_mut().find(|a| &a.id == update.alloc_id()).expect("updated alloc exists"));
            }
            for placed in &np.place {
                // The commit points the replaced allocation at its replacement.
                if let Some(prev) = self.allocs.iter_mut().find(|a| a.id == placed.previous_allocation) {
                    prev.next_allocation = placed.id.clone();
                }
                let mut a = placed.clone();
                a.client_status = AllocClientStatus::Running;
                self.allocs.push(a);
            }
        }
    }

    fn live(&self) -> Vec<&Allocation> {
        self.allocs.iter().filter(|a| !a.is_terminal()).collect()
    }
}

/// The outcome as text: per node its placements (names), stops (names and reasons) and
/// updates; then failures and annotations.
fn render(world: &World, out: &Outcome) -> String {
    let name_of = |id: &stead_model::AllocId| {
        world.allocs.iter().find(|a| &a.id == id).map_or_else(|| id.to_string(), |a| a.name.clone())
    };
    let mut s = String::new();
    for (node, np) in &out.plan.nodes {
        let mut place: Vec<&str> = np.place.iter().map(|a| a.name.as_str()).collect();
        place.sort();
        write!(s, "{node}:").unwrap();
        if !place.is_empty() {
            write!(s, " place {}", place.join(" ")).unwrap();
        }
        for stop in &np.stop {
            write!(s, " stop {} ({})", name_of(&stop.alloc_id), stop.description).unwrap();
        }
        for u in &np.update {
            match u {
                PlanUpdate::InPlace { alloc_id, job_version } => {
                    write!(s, " inplace {} v{job_version}", name_of(alloc_id))
                }
                PlanUpdate::Followup { alloc_id, .. } => write!(s, " followup {}", name_of(alloc_id)),
            }
            .unwrap();
        }
        s.push('\n');
    }
    for (group, m) in &out.failed_tg_allocs {
        writeln!(
            s,
            "failed {group}: queued {} exhausted {} {:?} filtered {} {:?} coalesced {}",
            out.queued_allocations[group],
            m.nodes_exhausted,
            m.dimension_exhausted,
            m.nodes_filtered,
            m.constraint_filtered,
            m.coalesced_failures
        )
        .unwrap();
    }
    for (group, d) in &out.desired_tg_updates {
        writeln!(
            s,
            "{group}: place {} stop {} inplace {} destructive {} migrate {} ignore {} reschedule now {} later {}",
            d.place,
            d.stop,
            d.in_place_update,
            d.destructive_update,
            d.migrate,
            d.ignore,
            d.reschedule_now,
            d.reschedule_later
        )
        .unwrap();
    }
    for f in &out.followup_evals {
        writeln!(s, "followup eval at {:?} ({})", f.wait_until, f.triggered_by).unwrap();
    }
    s
}

fn check(world: &mut World, seed: u64, want: &str) -> Outcome {
    let out = world.schedule(seed);
    let got = render(world, &out);
    assert_eq!(got.trim(), want.trim(), "\n--- got ---\n{got}");
    out
}

fn nodes(n: usize, cpu: i64, mem: i64) -> Vec<Node> {
    (0..n).map(|i| node(&format!("n{i}"), "dc1", cpu, mem)).collect()
}

#[test]
fn a_new_service_job_is_placed_to_its_count_and_then_nothing_changes() {
    let mut w = World::new(nodes(1, 4000, 4096), job(JobType::Service, 3, 100, 64));
    let out = check(
        &mut w,
        1,
        "n0: place web.g[0] web.g[1] web.g[2]\ng: place 3 stop 0 inplace 0 destructive 0 migrate 0 ignore 0 reschedule now 0 later 0",
    );
    w.apply(&out.plan);
    check(&mut w, 2, "g: place 0 stop 0 inplace 0 destructive 0 migrate 0 ignore 3 reschedule now 0 later 0");
}

#[test]
fn scale_down_stops_the_highest_indexes_and_an_in_place_change_keeps_the_rest() {
    let mut w = World::new(nodes(1, 4000, 4096), job(JobType::Service, 3, 100, 64));
    let out = w.schedule(1);
    w.apply(&out.plan);
    w.update(|j| {
        j.task_groups[0].count = Some(2);
        j.priority = 70; // in place
    });
    let out = check(
        &mut w,
        2,
        "n0: stop web.g[2] (alloc not needed due to job update) inplace web.g[0] v1 inplace web.g[1] v1\n\
         g: place 0 stop 1 inplace 2 destructive 0 migrate 0 ignore 0 reschedule now 0 later 0",
    );
    w.apply(&out.plan);
    assert!(w.schedule(3).plan.is_noop());
}

#[test]
fn a_destructive_change_replaces_each_allocation_under_its_name() {
    let mut w = World::new(nodes(1, 4000, 4096), job(JobType::Service, 2, 100, 64));
    let out = w.schedule(1);
    w.apply(&out.plan);
    w.update(|j| {
        j.task_groups[0].tasks[0].config.insert("image".to_owned(), serde_json::json!("v2"));
    });
    let out = check(
        &mut w,
        2,
        "n0: place web.g[0] web.g[1] stop web.g[0] (alloc is being updated due to job update) stop web.g[1] (alloc is being updated due to job update)\n\
         g: place 0 stop 0 inplace 0 destructive 2 migrate 0 ignore 0 reschedule now 0 later 0",
    );
    // Each replacement names the allocation it replaces.
    for np in out.plan.nodes.values() {
        for stop in &np.stop {
            assert!(np.place.iter().any(|a| a.previous_allocation == stop.alloc_id), "{stop:?} has a replacement");
        }
    }
    w.apply(&out.plan);
    assert!(w.schedule(3).plan.is_noop());
}

#[test]
fn a_replacement_that_finds_no_room_keeps_the_old_allocation_running() {
    // One node with room for exactly one allocation; the new version needs more memory.
    let mut w = World::new(nodes(1, 1000, 1000), job(JobType::Service, 1, 500, 600));
    let out = w.schedule(1);
    w.apply(&out.plan);
    w.update(|j| j.task_groups[0].tasks[0].resources.as_mut().unwrap().memory_mb = Some(1100));
    let out = w.schedule(2);
    assert!(out.plan.nodes.values().all(|n| n.stop.is_empty()), "the stop was withdrawn: {:?}", out.plan);
    assert_eq!(out.queued_allocations["g"], 1);
    assert_eq!(out.failed_tg_allocs["g"].dimension_exhausted.get("memory"), Some(&1));
}

#[test]
fn exhausted_capacity_is_reported_with_coalesced_failures() {
    let mut w = World::new(nodes(2, 1000, 4096), job(JobType::Service, 5, 400, 64));
    check(
        &mut w,
        1,
        "n0: place web.g[1] web.g[3]\nn1: place web.g[0] web.g[2]\n\
         failed g: queued 1 exhausted 2 {\"cpu\": 2} filtered 0 {} coalesced 0\n\
         g: place 5 stop 0 inplace 0 destructive 0 migrate 0 ignore 0 reschedule now 0 later 0",
    );
    let mut w = World::new(nodes(1, 1000, 4096), job(JobType::Service, 5, 400, 64));
    let out = w.schedule(1);
    assert_eq!((out.queued_allocations["g"], out.failed_tg_allocs["g"].coalesced_failures), (3, 2));
}

#[test]
fn allocations_on_a_down_node_are_lost_and_replaced_elsewhere() {
    let mut w = World::new(nodes(2, 4000, 4096), job(JobType::Service, 2, 100, 64));
    let out = w.schedule(1);
    w.apply(&out.plan);
    let on_n0 = w.live().iter().filter(|a| a.node_id.as_str() == "n0").count();
    w.nodes[0].status = NodeStatus::Down;
    let out = w.schedule(2);
    let stops: Vec<_> = out.plan.nodes.get(&"n0".into()).map(|n| n.stop.clone()).unwrap_or_default();
    assert_eq!(stops.len(), on_n0);
    assert!(stops.iter().all(|s| s.client_status == Some(AllocClientStatus::Lost)));
    assert_eq!(out.plan.nodes.get(&"n1".into()).map_or(0, |n| n.place.len()), on_n0);
    w.apply(&out.plan);
    assert!(w.schedule(3).plan.is_noop());
    assert_eq!(w.live().len(), 2);
}

#[test]
fn a_stopped_job_stops_everything() {
    let mut w = World::new(nodes(1, 4000, 4096), job(JobType::Batch, 2, 100, 64));
    let out = w.schedule(1);
    w.apply(&out.plan);
    w.update(|j| j.stop = true);
    check(
        &mut w,
        2,
        "n0: stop web.g[0] (alloc not needed since job is stopped) stop web.g[1] (alloc not needed since job is stopped)\n\
         g: place 0 stop 2 inplace 0 destructive 0 migrate 0 ignore 0 reschedule now 0 later 0",
    );
}

#[test]
fn a_system_job_runs_on_each_feasible_node_and_filtered_nodes_are_no_failure() {
    let mut nodes = nodes(3, 4000, 4096);
    nodes[2].attributes.insert("kernel.name".to_owned(), "windows".to_owned());
    let mut j = job(JobType::System, 1, 100, 64);
    j.constraints.push(Constraint {
        l_target: "${attr.kernel.name}".to_owned(),
        operand: "=".to_owned(),
        r_target: "linux".to_owned(),
        ..Constraint::default()
    });
    let mut w = World::new(nodes, j);
    let out = check(
        &mut w,
        1,
        "n0: place web.g[0]\nn1: place web.g[0]\n\
         g: place 2 stop 0 inplace 0 destructive 0 migrate 0 ignore 0 reschedule now 0 later 0",
    );
    w.apply(&out.plan);
    assert!(w.schedule(2).plan.is_noop());
}

#[test]
fn a_failed_allocation_rescheduled_later_gets_a_delayed_follow_up_evaluation() {
    let mut w = World::new(nodes(2, 4000, 4096), job(JobType::Service, 1, 100, 64));
    let out = w.schedule(1);
    w.apply(&out.plan);
    // The service default policy: 30 s delay, exponential.
    w.allocs[0].client_status = AllocClientStatus::Failed;
    w.allocs[0].modify_time = NOW;
    let failed_node = w.allocs[0].node_id.clone();
    let out = check(
        &mut w,
        2,
        &format!(
            "{}: followup web.g[0]\n\
             g: place 0 stop 0 inplace 0 destructive 0 migrate 0 ignore 0 reschedule now 0 later 1\n\
             followup eval at Some(\"2027-01-15T08:00:30Z\") (alloc-failure)",
            failed_node
        ),
    );
    let followup = &out.followup_evals[0];
    assert_eq!(followup.previous_eval.as_str(), "eval-2");
    match &out.plan.nodes[&w.allocs[0].node_id].update[0] {
        PlanUpdate::Followup { eval_id, .. } => assert_eq!(eval_id, &followup.id),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_same_inputs_and_seed_give_the_same_plan_and_ids() {
    let w = World::new(nodes(20, 4000, 4096), job(JobType::Service, 30, 100, 64));
    let (a, b) = (w.clone().schedule(42), w.clone().schedule(42));
    assert_eq!(a, b);
    let c = w.clone().schedule(43);
    let ids =
        |o: &Outcome| o.plan.nodes.values().flat_map(|n| n.place.iter().map(|a| a.id.clone())).collect::<Vec<_>>();
    assert_ne!(ids(&a), ids(&c), "another seed draws other IDs");
}

fn arb_world() -> impl Strategy<Value = (Vec<(i64, i64)>, JobType, i32, i32, i32)> {
    (
        prop::collection::vec((500i64..4000, 256i64..4096), 1..8),
        prop_oneof![Just(JobType::Service), Just(JobType::Batch), Just(JobType::System)],
        0i32..25,
        50i32..1500,
        32i32..1024,
    )
}

/// A step that changes the world between evaluations.
#[derive(Debug, Clone)]
enum Step {
    Scale(i32),
    Destructive,
    InPlace,
    NodeDown(usize),
    NodeUp(usize),
    Fail(usize),
}

fn arb_steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            (0i32..25).prop_map(Step::Scale),
            Just(Step::Destructive),
            Just(Step::InPlace),
            (0usize..8).prop_map(Step::NodeDown),
            (0usize..8).prop_map(Step::NodeUp),
            (0usize..30).prop_map(Step::Fail),
        ],
        0..6,
    )
}

/// Every node's non-terminal allocations fit its capacity.
fn check_fit(w: &World) -> Result<(), TestCaseError> {
    let view = w.view();
    for nv in view.iter() {
        prop_assert!(
            nv.usage.cpu_mhz <= nv.capacity.cpu_mhz,
            "node {} cpu {} > {}",
            nv.node.id,
            nv.usage.cpu_mhz,
            nv.capacity.cpu_mhz
        );
        prop_assert!(nv.usage.memory_mb <= nv.capacity.memory_mb, "node {} memory over", nv.node.id);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// schedule → apply → schedule changes nothing; nothing is ever over capacity; live
    /// allocations of a service or batch job never share a name.
    #[test]
    fn scheduling_again_after_applying_the_plan_changes_nothing(
        (sizes, kind, count, cpu, mem) in arb_world(),
        steps in arb_steps(),
        seed in any::<u64>(),
    ) {
        let nodes: Vec<Node> = sizes.iter().enumerate().map(|(i, (c, m))| node(&format!("n{i}"), "dc1", *c, *m)).collect();
        let mut w = World::new(nodes, job(kind.clone(), count, cpu, mem));
        let out = w.schedule(seed);
        w.apply(&out.plan);
        check_fit(&w)?;
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Scale(n) => w.update(|j| j.task_groups[0].count = Some(*n)),
                Step::Destructive => w.update(|j| { j.task_groups[0].tasks[0].config.insert("v".to_owned(), serde_json::json!(i)); }),
                Step::InPlace => w.update(|j| j.priority += 1),
                Step::NodeDown(n) => if let Some(node) = w.nodes.get_mut(*n) { node.status = NodeStatus::Down },
                Step::NodeUp(n) => if let Some(node) = w.nodes.get_mut(*n) { node.status = NodeStatus::Ready },
                Step::Fail(k) => {
                    let live: Vec<usize> = (0..w.allocs.len()).filter(|&i| !w.allocs[i].is_terminal()).collect();
                    if let Some(&i) = live.get(*k % live.len().max(1)) {
                        w.allocs[i].client_status = AllocClientStatus::Failed;
                        w.allocs[i].modify_time = NOW - 3_600_000_000_000;
                    }
                }
            }
            let out = w.schedule(seed.wrapping_add(i as u64));
            w.apply(&out.plan);
            check_fit(&w)?;
        }
        // Converged: with nothing moving, one more evaluation finds nothing to do.
        let again = w.schedule(seed ^ 0xabc);
        prop_assert!(again.plan.is_noop(), "second plan not empty: {}", render(&w, &again));
        if kind != JobType::System {
            let mut names: Vec<&str> = w.live().iter().map(|a| a.name.as_str()).collect();
            names.sort();
            let len = names.len();
            names.dedup();
            prop_assert_eq!(names.len(), len, "two live allocations share a name");
        }
    }
}
