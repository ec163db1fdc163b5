//! One evaluation from start to plan: the service, batch, system and sysbatch schedulers.
//!
//! [`schedule`] is a pure function of (snapshot, evaluation, now, seed):
//!
//! 1. Fork the cluster view and note the job's allocations on their nodes (the view's
//!    usage already counts them; placement needs to see whose they are).
//! 2. Reconcile: [`reconcile`](crate::reconcile::reconcile) for service and batch jobs,
//!    [`reconcile_system`] per node for system and sysbatch jobs.
//! 3. Apply every stop to the view first, so what they free can be reused by this plan
//!    (a destructive update's stop just before its replacement is placed, so that what it
//!    frees is there for the replacement and can be taken back exactly if it fails).
//! 4. Place each group's placements (new, lost, migrating, rescheduled, destructive
//!    replacements) with one [`GroupPlacer`] per group; a rescheduled allocation avoids the
//!    node it failed on. After a group's first failure the rest of its placements are
//!    counted as failed without scanning again (usage only grows within one plan), as
//!    Nomad's `CoalescedFailures` — except destructive replacements, which may fit where
//!    their own old allocation was. A destructive update whose replacement finds no node
//!    keeps its old allocation running (the stop is withdrawn), as Nomad does.
//! 5. System jobs: a node that is filtered out (constraints, drivers) simply does not run
//!    the job; only exhausted nodes count as failed placements.
//!
//! The outcome carries the plan, Nomad's annotations (`DesiredTGUpdates`), the failed
//! placements per group with their metrics, queued counts, and the delayed follow-up
//! evaluations for allocations rescheduled later. A worker commits the plan; `job plan`
//! shows the rest.

use std::collections::{BTreeMap, BTreeSet};

use stead_model::{
    AllocClientStatus, AllocDesiredStatus, AllocId, AllocMetric, Allocation, Deployment, EvalId, EvalStatus,
    EvalTrigger, Evaluation, Job, JobType, NodeId, time::format_rfc3339_nanos,
};

use crate::ids::{IdGen, fnv1a};
use crate::placement::constraint::glob_match;
use crate::placement::{ClusterView, GroupPlacer, PlaceConfig};
use crate::plan::{Plan, PlanStop, PlanUpdate};
use crate::reconcile::{
    self, DesiredUpdates, NodeState, Placement, ReconcileInput, Reconciliation, Stop, SystemInput, reconcile_system,
};

/// Knobs of the scheduler core that are the cluster's, not the job's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedConfig {
    pub place: PlaceConfig,
}

/// What one evaluation reads, all at one version of the store.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// The job as stored now; `None` when it was purged.
    pub job: Option<&'a Job>,
    /// The job's allocations, any status. Those of an older job version carry that version
    /// in `Job`, so the update rule can compare (without it an update is destructive).
    pub allocs: &'a [Allocation],
    /// The job's latest deployment.
    pub deployment: Option<&'a Deployment>,
    /// Every node, with usage that counts every non-terminal allocation, this job's too.
    pub cluster: &'a ClusterView,
}

/// The evaluation and the values the core must not fetch itself.
#[derive(Debug, Clone, Copy)]
pub struct EvalInput<'a> {
    pub eval: &'a Evaluation,
    /// Unix nanoseconds.
    pub now: i64,
    /// Derive it with [`crate::ids::attempt_seed`]: same seed, same plan.
    pub seed: u64,
    pub config: &'a SchedConfig,
}

/// What [`schedule`] decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub plan: Plan,
    /// Nomad's `DesiredTGUpdates`, by group, as placed (system placements on nodes that
    /// are filtered out are not counted).
    pub desired_tg_updates: BTreeMap<String, DesiredUpdates>,
    /// Why placements failed, per group (`FailedTGAllocs`).
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    /// Placements that found no node, per group of the job (`QueuedAllocations`).
    pub queued_allocations: BTreeMap<String, i32>,
    /// Delayed evaluations for allocations rescheduled later (`WaitUntil` set).
    pub followup_evals: Vec<Evaluation>,
}

impl Outcome {
    /// Some placement found no node: the evaluation leaves a blocked evaluation behind.
    pub fn needs_blocked_eval(&self) -> bool {
        !self.failed_tg_allocs.is_empty()
    }

    pub fn queued_total(&self) -> i64 {
        self.queued_allocations.values().map(|&n| i64::from(n)).sum()
    }
}

/// Schedule one evaluation. See the module documentation.
pub fn schedule(snapshot: &Snapshot<'_>, input: &EvalInput<'_>) -> Outcome {
    let eval = input.eval;
    let job = snapshot.job;
    let mut view = snapshot.cluster.clone();
    for alloc in snapshot.allocs {
        view.add_counted_alloc(alloc);
    }
    let kind = job.map(Job::kind).unwrap_or_else(|| eval.eval_type.clone());
    let system = matches!(kind, JobType::System | JobType::Sysbatch);
    let recon = if system {
        reconcile_for_system(snapshot, input, &view)
    } else {
        let nodes = snapshot
            .allocs
            .iter()
            .filter_map(|a| view.node(&a.node_id).map(|nv| (a.node_id.clone(), NodeState::of(&nv.node))))
            .collect();
        reconcile::reconcile(&ReconcileInput {
            job,
            allocs: snapshot.allocs,
            nodes: &nodes,
            now: input.now,
            eval_id: &eval.id,
            deployment: snapshot.deployment,
        })
    };

    let mut ids = IdGen::new(input.seed, eval.id.as_str());
    let mut out = Outcome {
        plan: Plan {
            eval_id: eval.id.clone(),
            namespace: job.map_or_else(|| eval.namespace.clone(), |j| j.namespace.clone()),
            job_id: job.map_or_else(|| eval.job_id.clone(), |j| j.id.clone()),
            job_modify_index: job.map_or(0, |j| j.job_modify_index),
            job_version: job.map_or(0, |j| j.version),
            all_at_once: job.is_some_and(|j| j.all_at_once),
            nodes: BTreeMap::new(),
        },
        desired_tg_updates: recon.desired_tg_updates(),
        ..Outcome::default()
    };
    if let Some(job) = job {
        out.queued_allocations = job.task_groups.iter().map(|g| (g.name.clone(), 0)).collect();
    }
    let by_id: BTreeMap<&AllocId, &Allocation> = snapshot.allocs.iter().map(|a| (&a.id, a)).collect();

    // Follow-up evaluations first: their IDs go into the allocations they concern.
    let followup_ids: Vec<EvalId> = recon.followup_evals.iter().map(|_| EvalId::from(ids.next_id())).collect();
    for (f, id) in recon.followup_evals.iter().zip(&followup_ids) {
        out.followup_evals.push(followup_eval(eval, job, id.clone(), f.wait_until, input.now));
    }

    // Stops, everywhere, before any placement (a destructive update's stop comes just
    // before its replacement's placement, below).
    for g in recon.groups.values() {
        for stop in &g.stop {
            apply_stop(&mut out.plan, &mut view, &by_id, stop);
        }
    }

    // Placements, group by group; in-place and follow-up updates.
    for (name, g) in &recon.groups {
        let group = job.and_then(|j| j.task_group(name));
        if let (Some(job), Some(group)) = (job, group) {
            let placements: Vec<(&Placement, Option<&Stop>)> = g
                .place
                .iter()
                .map(|p| (p, None))
                .chain(g.destructive_update.iter().map(|d| (&d.place, Some(&d.stop))))
                .collect();
            if !placements.is_empty() {
                let seed = input.seed ^ fnv1a(name.as_bytes());
                let mut placer = GroupPlacer::new(job, group, &view, seed, input.config.place.clone());
                let mut skipped = 0u64;
                for (p, destructive_stop) in placements {
                    // The old allocation frees its resources for its own replacement only:
                    // if the replacement finds no node, the stop is withdrawn exactly.
                    if let Some(stop) = destructive_stop {
                        apply_stop(&mut out.plan, &mut view, &by_id, stop);
                    }
                    // After a failure, more of the same ask cannot fit (usage only grew),
                    // unless a destructive update just freed its allocation's resources.
                    let failed_before = out.failed_tg_allocs.contains_key(name);
                    let result = if failed_before && !system && destructive_stop.is_none() {
                        None
                    } else {
                        placer.penalty_nodes.clear();
                        if p.is_reschedule()
                            && let Some(prev) = &p.previous_node
                        {
                            placer.penalty_nodes.insert(prev.clone());
                        }
                        Some(match &p.node {
                            Some(node) => placer.place_on(&mut view, node),
                            None => placer.place_one(&mut view),
                        })
                    };
                    match result {
                        Some(Ok(placed)) => {
                            let alloc = new_alloc(job, eval, p, placed, ids.next_id(), input.now);
                            out.plan.node_mut(&alloc.node_id.clone()).place.push(alloc);
                        }
                        // A system node filtered out (or no longer a candidate) does not run it.
                        Some(Err(metric)) if system && metric.nodes_exhausted == 0 => skipped += 1,
                        failure => {
                            if destructive_stop.is_some()
                                && let Some(prev) = p.previous_alloc.as_ref().and_then(|id| by_id.get(id))
                            {
                                withdraw_stop(&mut out.plan, &mut view, prev);
                            }
                            *out.queued_allocations.entry(name.clone()).or_default() += 1;
                            match (failure, out.failed_tg_allocs.get_mut(name)) {
                                (_, Some(first)) => first.coalesced_failures += 1,
                                (Some(Err(metric)), None) => {
                                    out.failed_tg_allocs.insert(name.clone(), *metric);
                                }
                                // Without a first failure every placement is tried.
                                (_, None) => {}
                            }
                        }
                    }
                }
                if skipped > 0
                    && let Some(d) = out.desired_tg_updates.get_mut(name)
                {
                    d.place = d.place.saturating_sub(skipped);
                }
            }
        }
        for update in &g.inplace_update {
            if let (Some(job), Some(alloc)) = (job, by_id.get(&update.alloc_id)) {
                let alloc_id = alloc.id.clone();
                out.plan
                    .node_mut(&alloc.node_id)
                    .update
                    .push(PlanUpdate::InPlace { alloc_id, job_version: job.version });
            }
        }
        for later in &g.reschedule_later {
            if let (Some(alloc), Some(eval_id)) = (by_id.get(&later.alloc.alloc_id), followup_ids.get(later.followup)) {
                let update = PlanUpdate::Followup { alloc_id: alloc.id.clone(), eval_id: eval_id.clone() };
                out.plan.node_mut(&alloc.node_id).update.push(update);
            }
        }
    }
    out.plan.nodes.retain(|_, n| !n.is_empty());
    out
}

fn reconcile_for_system(snapshot: &Snapshot<'_>, input: &EvalInput<'_>, view: &ClusterView) -> Reconciliation {
    let mut nodes: BTreeMap<NodeId, NodeState> = BTreeMap::new();
    let mut candidates = BTreeSet::new();
    let job = snapshot.job;
    let pool = job.map(|j| if j.node_pool.is_empty() { "default" } else { j.node_pool.as_str() });
    let star = ["*".to_owned()];
    let datacenters: &[String] = match job {
        Some(j) if !j.datacenters.is_empty() => &j.datacenters,
        _ => &star,
    };
    for nv in view.iter() {
        let node = &nv.node;
        nodes.insert(node.id.clone(), NodeState::of(node));
        let node_pool = if node.node_pool.is_empty() { "default" } else { node.node_pool.as_str() };
        let in_pool = pool.is_some_and(|p| p == "all" || p == node_pool);
        if in_pool && datacenters.iter().any(|dc| glob_match(dc, &node.datacenter)) {
            candidates.insert(node.id.clone());
        }
    }
    reconcile_system(&SystemInput {
        job,
        allocs: snapshot.allocs,
        nodes: &nodes,
        candidates: &candidates,
        now: input.now,
        eval_id: &input.eval.id,
        deployment: snapshot.deployment,
    })
}

fn apply_stop(plan: &mut Plan, view: &mut ClusterView, by_id: &BTreeMap<&AllocId, &Allocation>, stop: &Stop) {
    let Some(alloc) = by_id.get(&stop.alloc_id) else {
        return;
    };
    view.remove_alloc(&alloc.node_id, &alloc.id);
    plan.node_mut(&alloc.node_id).stop.push(PlanStop {
        alloc_id: alloc.id.clone(),
        description: stop.reason.description().to_owned(),
        client_status: stop.client_status.clone(),
    });
}

/// Take back the stop of `alloc` (its replacement found no node) and account it again.
fn withdraw_stop(plan: &mut Plan, view: &mut ClusterView, alloc: &Allocation) {
    if let Some(node) = plan.nodes.get_mut(&alloc.node_id) {
        node.stop.retain(|s| s.alloc_id != alloc.id);
    }
    view.add_alloc(alloc);
}

fn new_alloc(
    job: &Job,
    eval: &Evaluation,
    p: &Placement,
    placed: crate::placement::Placement,
    id: String,
    now: i64,
) -> Allocation {
    Allocation {
        id: id.into(),
        namespace: job.namespace.clone(),
        eval_id: eval.id.clone(),
        name: p.name.clone(),
        node_id: placed.node_id,
        node_name: placed.node_name,
        job_id: job.id.clone(),
        job: None,
        job_type: Some(job.kind()),
        job_version: job.version,
        task_group: p.task_group.clone(),
        allocated_resources: Some(placed.resources),
        metrics: Some(placed.metric),
        desired_status: AllocDesiredStatus::Run,
        client_status: AllocClientStatus::Pending,
        previous_allocation: p.previous_alloc.clone().unwrap_or_default(),
        reschedule_tracker: p.reschedule_tracker.clone(),
        create_time: now,
        modify_time: now,
        ..Allocation::default()
    }
}

/// A delayed evaluation that replaces failed allocations when they are due.
fn followup_eval(eval: &Evaluation, job: Option<&Job>, id: EvalId, wait_until: i64, now: i64) -> Evaluation {
    Evaluation {
        id,
        priority: job.map_or(eval.priority, |j| j.priority),
        eval_type: job.map_or_else(|| eval.eval_type.clone(), Job::kind),
        triggered_by: EvalTrigger::AllocFailure,
        namespace: job.map_or_else(|| eval.namespace.clone(), |j| j.namespace.clone()),
        job_id: job.map_or_else(|| eval.job_id.clone(), |j| j.id.clone()),
        job_modify_index: job.map_or(0, |j| j.job_modify_index),
        status: EvalStatus::Pending,
        status_description: "created for delayed rescheduling".to_owned(),
        wait_until: Some(format_rfc3339_nanos(wait_until)),
        previous_eval: eval.id.clone(),
        create_time: now,
        modify_time: now,
        ..Evaluation::default()
    }
}
