//! Desired versus existing allocations of one job: what to place, stop, update, migrate,
//! mark lost and reschedule — a pure function of (job, allocations, node states, now).
//!
//! Start at [`reconcile`]. For each task group the existing allocations are sorted into
//! *slots*, one per allocation name `<job>.<group>[<index>]` that is still counted toward the
//! group's `count`:
//!
//! * **untainted** — running (or pending) on a node that is up (ready, ineligible, or
//!   draining without the drainer's mark), a completed batch allocation of the current
//!   version (done work is not redone), or a failed allocation whose reschedule attempts are
//!   exhausted (it keeps its slot, so it is not replaced);
//! * **migrate** — marked `DesiredTransition.Migrate` (by the drainer on a draining node,
//!   or by `alloc stop`): stopped, and a replacement placed elsewhere;
//! * **lost** — on a down, disconnected or vanished node: marked lost and replaced; a lost
//!   replacement does not use a reschedule attempt;
//! * **reschedule now / later** — failed, eligible under the `reschedule` policy: replaced
//!   now when due (within [`RESCHEDULE_WINDOW_NS`]), else later by a delayed follow-up
//!   evaluation at the due time (allocations due within [`FOLLOWUP_BATCH_WINDOW_NS`] share
//!   one). The policy is the current job's group's (Nomad reads the failed allocation's own
//!   job version); `DesiredTransition.ForceReschedule` replaces at once regardless.
//!
//! Allocations the server already stopped, and failed ones already replaced
//! (`NextAllocation`), are history and take no slot. Complete service allocations free
//! their slot (a service is meant to run); complete or failed batch allocations of an older
//! version free theirs too (a new batch version runs afresh). With more slots than `count` the reconciler drops
//! the broken ones first (lost, failed, migrating), then the highest indexes; with fewer, it
//! places new allocations at the lowest free indexes. Two slots never share a name: the
//! worse of two allocations with one name is stopped.
//!
//! Kept allocations of an older job version are updated in place or destructively (see
//! [`update`] for the rule). Destructive updates of a service group are limited by
//! `update.max_parallel` (0: all at once) less the allocations of the new version that are
//! not yet healthy (`DeploymentStatus.Healthy`, as the client reports it), so re-running the
//! reconciler before they turn healthy changes nothing, and a paused or failed deployment of
//! this version stops the rollout. The waiting ones count as `ignore`. Nothing here creates
//! the evaluation that continues a rollout: as in Nomad, that is the deployment watcher's
//! job when allocations turn healthy, and until something sets `Healthy` a rolling update
//! stops after its first `max_parallel` allocations.
//!
//! Applying the answer (the plan): stop each [`Stop`] (desired status `stop`, its
//! description, and the client status it carries); stop and place each
//! [`DestructiveUpdate`]; give each in-place update the new job version; place each
//! [`Placement`] (setting `PreviousAllocation`, the old allocation's `NextAllocation`, and
//! the reschedule tracker it carries); create one delayed evaluation per [`FollowupEval`]
//! and set `FollowupEvalID` on its allocations. The unit tests' `World::apply` does exactly
//! this, and the property tests check that reconciling the result again changes nothing.
//!
//! Not yet: canaries and deployment creation (the `canary` annotation is always 0),
//! `disconnect` blocks (a disconnected node counts as down, as Nomad does for groups without
//! one), and `prevent_reschedule_on_lost`.
//!
//! System and sysbatch jobs (one allocation per node) go through [`reconcile_system`].

pub mod reschedule;
pub mod system;
pub mod update;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use stead_model::{
    AllocClientStatus, AllocDesiredStatus, AllocId, Allocation, Deployment, DeploymentStatus, EvalId, Job, JobType,
    Node, NodeId, NodeStatus, RescheduleTracker, SchedulingEligibility, TaskGroup,
};

pub use system::{SystemInput, reconcile_system};
pub use update::{UpdateKind, decide_update};

/// A failed allocation due this close to `now` is replaced now rather than by a follow-up
/// evaluation that would run almost at once (Nomad uses the same 1 s window).
pub const RESCHEDULE_WINDOW_NS: i64 = 1_000_000_000;

/// Allocations due for rescheduling within this window of the earliest one share a follow-up
/// evaluation, so a burst of failures makes few evaluations (Nomad: 5 s).
pub const FOLLOWUP_BATCH_WINDOW_NS: i64 = 5_000_000_000;

/// What the reconciler needs to know of a node: only whether allocations on it are safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NodeState {
    /// Up and eligible: its allocations stay, new ones may come.
    Ready,
    /// Up but marked ineligible: its allocations stay, no new ones come.
    Ineligible,
    /// Draining: allocations the drainer marked for migration move elsewhere.
    Draining,
    /// Down: its allocations are lost.
    Down,
    /// Missed heartbeats but may return; treated as down until `disconnect` is supported.
    Disconnected,
}

impl NodeState {
    pub fn of(node: &Node) -> NodeState {
        match node.status {
            NodeStatus::Down => NodeState::Down,
            NodeStatus::Disconnected => NodeState::Disconnected,
            _ if node.drain_strategy.is_some() || node.drain => NodeState::Draining,
            _ if node.scheduling_eligibility == SchedulingEligibility::Ineligible => NodeState::Ineligible,
            _ => NodeState::Ready,
        }
    }
    fn loses_allocs(self) -> bool {
        matches!(self, NodeState::Down | NodeState::Disconnected)
    }
}

/// The state of every given node, for [`ReconcileInput::nodes`].
pub fn node_states<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> BTreeMap<NodeId, NodeState> {
    nodes.into_iter().map(|n| (n.id.clone(), NodeState::of(n))).collect()
}

/// Everything the reconciler reads.
#[derive(Debug, Clone, Copy)]
pub struct ReconcileInput<'a> {
    /// The job as it is now; `None` when it was purged. A stopped job (`Stop`) and the parent
    /// of periodic or parameterized jobs want no allocations.
    pub job: Option<&'a Job>,
    /// The job's allocations, any status, any version.
    pub allocs: &'a [Allocation],
    /// States of the nodes the allocations are on. A node missing here is gone: down.
    pub nodes: &'a BTreeMap<NodeId, NodeState>,
    /// Unix nanoseconds.
    pub now: i64,
    /// The evaluation being processed: a delayed follow-up it names in `FollowupEvalID` is due.
    pub eval_id: &'a EvalId,
    /// The job's latest deployment, if any.
    pub deployment: Option<&'a Deployment>,
}

/// Why an allocation is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlaceReason {
    /// A name with no allocation: new job, scale up, or a completed service allocation.
    New,
    /// Replaces a failed allocation; uses a reschedule attempt.
    Reschedule,
    /// Replaces an allocation lost with its node; uses no reschedule attempt.
    Lost,
    /// Replaces an allocation moving off a draining node.
    Migrate,
    /// Replaces an allocation stopped by a destructive update.
    DestructiveUpdate,
}

/// An allocation to place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub task_group: String,
    /// `<job>.<group>[<index>]`.
    pub name: String,
    /// The name's index; `u32::MAX` when a replacement keeps a name of another shape.
    pub index: u32,
    pub reason: PlaceReason,
    /// The node it must go to (system and sysbatch jobs); `None`: placement chooses.
    pub node: Option<NodeId>,
    /// The allocation this one replaces (its `PreviousAllocation`; the old one's
    /// `NextAllocation` should point here).
    pub previous_alloc: Option<AllocId>,
    /// Where the replaced allocation ran; a rescheduled one should avoid it (Nomad's node
    /// rescheduling penalty).
    pub previous_node: Option<NodeId>,
    /// For a reschedule: the tracker of the new allocation, with this reschedule appended.
    pub reschedule_tracker: Option<RescheduleTracker>,
}

impl Placement {
    /// Whether this placement uses one of the group's reschedule attempts.
    pub fn is_reschedule(&self) -> bool {
        self.reason == PlaceReason::Reschedule
    }
}

/// Why an allocation is stopped; [`StopReason::description`] is its `DesiredDescription`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// Scale down, or its group left the job.
    NotNeeded,
    /// The job was stopped or purged.
    JobStopped,
    /// Its node is down: the client status becomes `lost`.
    Lost,
    /// Moving off a draining node.
    Migrating,
    /// Failed and replaced.
    Rescheduled,
    /// Replaced by a destructive update.
    Updating,
    /// Another allocation has the same name.
    Duplicate,
}

impl StopReason {
    pub fn description(self) -> &'static str {
        match self {
            StopReason::NotNeeded => "alloc not needed due to job update",
            StopReason::JobStopped => "alloc not needed since job is stopped",
            StopReason::Lost => "alloc is lost since its node is down",
            StopReason::Migrating => "alloc is being migrated",
            StopReason::Rescheduled => "alloc was rescheduled because it failed",
            StopReason::Updating => "alloc is being updated due to job update",
            StopReason::Duplicate => "alloc not needed since another alloc has the same name",
        }
    }
}

/// An allocation to stop (desired status `stop`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stop {
    pub alloc_id: AllocId,
    pub name: String,
    pub reason: StopReason,
    /// The client status to record with the stop: `lost` for lost allocations.
    pub client_status: Option<AllocClientStatus>,
}

/// An allocation named by ID and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocRef {
    pub alloc_id: AllocId,
    pub name: String,
}

/// A destructive update: stop `stop`, place `place` (same name) with the new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestructiveUpdate {
    pub stop: Stop,
    pub place: Placement,
    /// The first destructive field found (see [`update`]).
    pub change: String,
}

/// A failed allocation to replace later: set its `FollowupEvalID` to the evaluation created
/// for `followup_evals[followup]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescheduleLater {
    pub alloc: AllocRef,
    /// Unix nanoseconds.
    pub reschedule_at: i64,
    pub followup: usize,
}

/// A delayed evaluation to create (Nomad's `WaitUntil`; triggered by `alloc-failure`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowupEval {
    /// Unix nanoseconds: the earliest due time of its allocations.
    pub wait_until: i64,
    pub allocs: Vec<AllocId>,
}

/// Nomad's `DesiredTGUpdates` plan annotation for one task group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DesiredUpdates {
    pub ignore: u64,
    pub place: u64,
    pub migrate: u64,
    pub stop: u64,
    pub in_place_update: u64,
    pub destructive_update: u64,
    pub canary: u64,
    pub preemptions: u64,
    pub reschedule_now: u64,
    pub reschedule_later: u64,
}

/// The reconciler's answer for one task group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupReconciliation {
    /// New allocations and replacements of lost, migrating and rescheduled ones.
    pub place: Vec<Placement>,
    /// Allocations to stop, each with its reason (lost, migrating, rescheduled, not needed...).
    pub stop: Vec<Stop>,
    /// Allocations that take the new job version where they run.
    pub inplace_update: Vec<AllocRef>,
    pub destructive_update: Vec<DestructiveUpdate>,
    pub reschedule_later: Vec<RescheduleLater>,
    /// Allocations left as they are (including destructive updates waiting for `max_parallel`).
    pub ignore: Vec<AllocRef>,
    pub desired_updates: DesiredUpdates,
}

impl GroupReconciliation {
    /// Placements replacing allocations that move off draining nodes.
    pub fn migrations(&self) -> impl Iterator<Item = &Placement> {
        self.place.iter().filter(|p| p.reason == PlaceReason::Migrate)
    }
    /// Allocations to mark lost.
    pub fn lost(&self) -> impl Iterator<Item = &Stop> {
        self.stop.iter().filter(|s| s.reason == StopReason::Lost)
    }
    /// Failed allocations replaced now.
    pub fn reschedule_now(&self) -> impl Iterator<Item = &Placement> {
        self.place.iter().filter(|p| p.is_reschedule())
    }
    fn changes_nothing(&self) -> bool {
        self.place.is_empty()
            && self.stop.is_empty()
            && self.inplace_update.is_empty()
            && self.destructive_update.is_empty()
            && self.reschedule_later.is_empty()
    }
}

/// The reconciler's answer for a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// Keyed by task group name.
    pub groups: BTreeMap<String, GroupReconciliation>,
    /// Delayed evaluations for `reschedule_later`, earliest first.
    pub followup_evals: Vec<FollowupEval>,
}

impl Reconciliation {
    /// Nothing to place, stop or update and no follow-up: the plan would be a no-op.
    pub fn changes_nothing(&self) -> bool {
        self.followup_evals.is_empty() && self.groups.values().all(GroupReconciliation::changes_nothing)
    }
    /// The `DesiredTGUpdates` annotations, by task group.
    pub fn desired_tg_updates(&self) -> BTreeMap<String, DesiredUpdates> {
        self.groups.iter().map(|(name, g)| (name.clone(), g.desired_updates.clone())).collect()
    }
    /// The earliest follow-up time, for a single delayed evaluation.
    pub fn next_followup_at(&self) -> Option<i64> {
        self.followup_evals.iter().map(|f| f.wait_until).min()
    }
}

/// `<job>.<group>[<index>]`.
pub fn alloc_name(job_id: &str, group: &str, index: u32) -> String {
    format!("{job_id}.{group}[{index}]")
}

/// The index of an allocation name of this job and group; `None` for any other shape.
pub fn alloc_index(name: &str, job_id: &str, group: &str) -> Option<u32> {
    let rest = name.strip_prefix(job_id)?.strip_prefix('.')?.strip_prefix(group)?;
    rest.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Reconcile the job's desired state with its allocations. Pure: the same input gives the
/// same answer, and applying the answer then reconciling again changes nothing (until time,
/// health or nodes move on).
pub fn reconcile(input: &ReconcileInput<'_>) -> Reconciliation {
    let mut by_group: BTreeMap<&str, Vec<&Allocation>> = BTreeMap::new();
    for alloc in input.allocs {
        by_group.entry(alloc.task_group.as_str()).or_default().push(alloc);
    }
    let wants_allocs = input.job.filter(|j| !j.stop && !j.is_periodic() && !j.is_parameterized());
    let mut out = Reconciliation::default();
    let mut later: Vec<(String, usize, i64, AllocId)> = Vec::new();

    if let Some(job) = wants_allocs {
        for group in &job.task_groups {
            let allocs = by_group.remove(group.name.as_str()).unwrap_or_default();
            let (result, group_later) = reconcile_group(input, job, group, &allocs);
            for (i, at) in group_later {
                let id = result.reschedule_later[i].alloc.alloc_id.clone();
                later.push((group.name.clone(), i, at, id));
            }
            out.groups.insert(group.name.clone(), result);
        }
    }
    // Groups the job no longer has (or a job that wants nothing): stop what still runs.
    let reason = if wants_allocs.is_some() { StopReason::NotNeeded } else { StopReason::JobStopped };
    for (name, allocs) in by_group {
        let mut result = GroupReconciliation::default();
        for alloc in sorted(allocs) {
            if is_server_terminal(alloc) {
                continue;
            }
            let lost = !alloc.client_status.is_terminal() && node_state(input, alloc).loses_allocs();
            result.stop.push(stop(alloc, if lost { StopReason::Lost } else { reason }));
        }
        result.desired_updates.stop = result.stop.len() as u64;
        if !result.stop.is_empty() {
            out.groups.insert(name.to_owned(), result);
        }
    }

    out.followup_evals = batch_followups(&mut out.groups, later);
    out
}

/// Batch the reschedule-later allocations into follow-up evaluations and point each entry at
/// its batch.
fn batch_followups(
    groups: &mut BTreeMap<String, GroupReconciliation>,
    mut later: Vec<(String, usize, i64, AllocId)>,
) -> Vec<FollowupEval> {
    later.sort_by(|a, b| (a.2, &a.3).cmp(&(b.2, &b.3)));
    let mut evals: Vec<FollowupEval> = Vec::new();
    for (group, i, at, id) in later {
        match evals.last_mut() {
            Some(eval) if at.saturating_sub(eval.wait_until) < FOLLOWUP_BATCH_WINDOW_NS => eval.allocs.push(id),
            _ => evals.push(FollowupEval { wait_until: at, allocs: vec![id] }),
        }
        if let Some(g) = groups.get_mut(&group) {
            g.reschedule_later[i].followup = evals.len() - 1;
        }
    }
    evals
}

fn sorted(mut allocs: Vec<&Allocation>) -> Vec<&Allocation> {
    allocs.sort_by(|a, b| (&a.name, a.create_index, &a.id).cmp(&(&b.name, b.create_index, &b.id)));
    allocs
}

fn is_server_terminal(alloc: &Allocation) -> bool {
    matches!(alloc.desired_status, AllocDesiredStatus::Stop | AllocDesiredStatus::Evict)
}

fn node_state(input: &ReconcileInput<'_>, alloc: &Allocation) -> NodeState {
    input.nodes.get(&alloc.node_id).copied().unwrap_or(NodeState::Down)
}

fn stop(alloc: &Allocation, reason: StopReason) -> Stop {
    Stop {
        alloc_id: alloc.id.clone(),
        name: alloc.name.clone(),
        reason,
        client_status: (reason == StopReason::Lost).then_some(AllocClientStatus::Lost),
    }
}

fn alloc_ref(alloc: &Allocation) -> AllocRef {
    AllocRef { alloc_id: alloc.id.clone(), name: alloc.name.clone() }
}

/// How a counted allocation holds its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotKind {
    Lost,
    RescheduleNow,
    RescheduleLater {
        at: i64,
        arranged: bool,
    },
    /// Failed with reschedule attempts exhausted (or rescheduling disabled).
    Failed,
    Migrate,
    /// Running, pending, or a completed batch allocation.
    Untainted,
}

impl SlotKind {
    /// Rank for keeping one of two allocations with the same name: lower is kept.
    fn keep_rank(self) -> u8 {
        match self {
            SlotKind::Untainted => 0,
            SlotKind::Migrate => 1,
            SlotKind::RescheduleLater { .. } => 2,
            SlotKind::RescheduleNow => 3,
            SlotKind::Failed => 4,
            SlotKind::Lost => 5,
        }
    }
    /// Rank for dropping on scale down: lower is dropped first.
    fn drop_rank(self) -> u8 {
        match self {
            SlotKind::Lost => 0,
            SlotKind::RescheduleNow => 1,
            SlotKind::RescheduleLater { .. } => 2,
            SlotKind::Failed => 3,
            SlotKind::Migrate => 4,
            SlotKind::Untainted => 5,
        }
    }
}

struct Slot<'a> {
    alloc: &'a Allocation,
    kind: SlotKind,
    /// `None` for a name of another shape: such an allocation is dropped first on scale down.
    index: Option<u32>,
}

/// Stop for an allocation whose slot is dropped (scale down, duplicate name).
fn drop_slot(slot: &Slot<'_>, reason: StopReason) -> Stop {
    let reason = if slot.kind == SlotKind::Lost { StopReason::Lost } else { reason };
    stop(slot.alloc, reason)
}

fn classify(
    input: &ReconcileInput<'_>,
    job: &Job,
    alloc: &Allocation,
    policy: &stead_model::ReschedulePolicy,
) -> Option<SlotKind> {
    if is_server_terminal(alloc) {
        return None;
    }
    let batch = job.kind() == JobType::Batch;
    match alloc.client_status {
        AllocClientStatus::Complete => {
            // Done batch work of this version keeps its slot; a finished service frees it.
            return (batch && alloc.job_version == job.version).then_some(SlotKind::Untainted);
        }
        AllocClientStatus::Lost => return Some(SlotKind::Lost),
        AllocClientStatus::Failed => {
            if !alloc.next_allocation.is_empty() {
                return None;
            }
            if batch && alloc.job_version != job.version {
                // A failed run of an older batch version: the new version runs afresh.
                return None;
            }
            return Some(classify_failed(input, alloc, policy));
        }
        _ => {}
    }
    match node_state(input, alloc) {
        state if state.loses_allocs() => Some(SlotKind::Lost),
        // Marked by the drainer, or by `alloc stop` on any node that is up.
        _ if alloc.desired_transition.migrate == Some(true) => Some(SlotKind::Migrate),
        _ => Some(SlotKind::Untainted),
    }
}

fn classify_failed(input: &ReconcileInput<'_>, alloc: &Allocation, policy: &stead_model::ReschedulePolicy) -> SlotKind {
    if alloc.desired_transition.force_reschedule == Some(true) {
        return SlotKind::RescheduleNow;
    }
    let fail_time = reschedule::failure_time(alloc);
    let tracker = alloc.reschedule_tracker.as_ref();
    if !reschedule::is_eligible(policy, tracker, fail_time) {
        return SlotKind::Failed;
    }
    let at = reschedule::reschedule_time(policy, tracker, fail_time);
    let arranged = !alloc.followup_eval_id.is_empty();
    let followup_due = arranged && alloc.followup_eval_id == *input.eval_id;
    if followup_due || at - input.now <= RESCHEDULE_WINDOW_NS {
        SlotKind::RescheduleNow
    } else {
        SlotKind::RescheduleLater { at, arranged }
    }
}

/// How many destructive updates this evaluation may start: `update.max_parallel` (0 or
/// absent: no limit; batch and sysbatch jobs have no rolling updates) less the live
/// allocations of the new version that are not yet healthy; none while a deployment of this
/// version is paused or failed.
fn destructive_limit<'a>(
    deployment: Option<&Deployment>,
    job: &Job,
    group: &TaskGroup,
    allocs: impl Iterator<Item = &'a Allocation>,
) -> usize {
    if !matches!(job.kind(), JobType::Service | JobType::System) {
        return usize::MAX;
    }
    let max_parallel = group.update.as_ref().or(job.update.as_ref()).and_then(|u| u.max_parallel).unwrap_or(0);
    if max_parallel <= 0 {
        return usize::MAX;
    }
    if let Some(d) = deployment
        && d.job_version == job.version
        && matches!(d.status, DeploymentStatus::Paused | DeploymentStatus::Failed)
    {
        return 0;
    }
    let in_flight = allocs
        .filter(|a| {
            a.job_version == job.version
                && !a.client_status.is_terminal()
                && a.deployment_status.as_ref().and_then(|d| d.healthy) != Some(true)
        })
        .count();
    (max_parallel as usize).saturating_sub(in_flight)
}

fn reconcile_group(
    input: &ReconcileInput<'_>,
    job: &Job,
    group: &TaskGroup,
    allocs: &[&Allocation],
) -> (GroupReconciliation, Vec<(usize, i64)>) {
    let mut out = GroupReconciliation::default();
    let job_id = job.id.as_str();
    let default_policy;
    let policy = match &group.reschedule_policy {
        Some(p) => p,
        None => {
            default_policy = stead_model::canonicalize::default_reschedule_policy(&job.kind());
            &default_policy
        }
    };

    // 1. Sort allocations into slots.
    let mut slots: Vec<Slot<'_>> = Vec::new();
    for alloc in sorted(allocs.to_vec()) {
        if let Some(kind) = classify(input, job, alloc, policy) {
            slots.push(Slot { alloc, kind, index: alloc_index(&alloc.name, job_id, &group.name) });
        }
    }

    // 2. One slot per name: keep the best allocation of each name.
    slots.sort_by(|a, b| {
        (a.index, &a.alloc.name, a.kind.keep_rank(), std::cmp::Reverse(a.alloc.job_version), &a.alloc.id).cmp(&(
            b.index,
            &b.alloc.name,
            b.kind.keep_rank(),
            std::cmp::Reverse(b.alloc.job_version),
            &b.alloc.id,
        ))
    });
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut kept: Vec<Slot<'_>> = Vec::new();
    for slot in slots {
        if seen.insert(slot.alloc.name.as_str()) {
            kept.push(slot);
        } else {
            out.stop.push(drop_slot(&slot, StopReason::Duplicate));
            out.desired_updates.stop += 1;
        }
    }

    // 3. Scale down: drop the broken first, then the highest index (odd names before all).
    let count = group.desired_count().max(0) as usize;
    if kept.len() > count {
        kept.sort_by_key(|s| (s.kind.drop_rank(), s.index.is_some(), std::cmp::Reverse(s.index)));
        for slot in kept.drain(..kept.len() - count).collect::<Vec<_>>() {
            out.stop.push(drop_slot(&slot, StopReason::NotNeeded));
            out.desired_updates.stop += 1;
        }
    }
    kept.sort_by(|a, b| (a.index, &a.alloc.name).cmp(&(b.index, &b.alloc.name)));

    // 4. Each kept slot: replace the broken, update the outdated.
    let mut limit = destructive_limit(input.deployment, job, group, kept.iter().map(|s| s.alloc));
    let mut later = Vec::new();
    for slot in &kept {
        let alloc = slot.alloc;
        let index = slot.index.unwrap_or(u32::MAX);
        let replacement = |reason: PlaceReason| Placement {
            task_group: group.name.clone(),
            name: alloc.name.clone(),
            index,
            reason,
            node: None,
            previous_alloc: Some(alloc.id.clone()),
            previous_node: Some(alloc.node_id.clone()),
            reschedule_tracker: None,
        };
        match slot.kind {
            SlotKind::Lost => {
                out.stop.push(stop(alloc, StopReason::Lost));
                out.place.push(replacement(PlaceReason::Lost));
                out.desired_updates.stop += 1;
                out.desired_updates.place += 1;
            }
            SlotKind::Migrate => {
                out.stop.push(stop(alloc, StopReason::Migrating));
                out.place.push(replacement(PlaceReason::Migrate));
                out.desired_updates.migrate += 1;
            }
            SlotKind::RescheduleNow => {
                let fail_time = reschedule::failure_time(alloc);
                let delay = reschedule::next_delay(policy, alloc.reschedule_tracker.as_ref(), fail_time);
                let mut place = replacement(PlaceReason::Reschedule);
                place.reschedule_tracker = Some(reschedule::next_tracker(policy, alloc, input.now, delay));
                out.stop.push(stop(alloc, StopReason::Rescheduled));
                out.place.push(place);
                out.desired_updates.reschedule_now += 1;
            }
            SlotKind::RescheduleLater { arranged: true, .. } | SlotKind::Failed => {
                out.ignore.push(alloc_ref(alloc));
                out.desired_updates.ignore += 1;
            }
            SlotKind::RescheduleLater { at, arranged: false } => {
                later.push((out.reschedule_later.len(), at));
                out.reschedule_later.push(RescheduleLater { alloc: alloc_ref(alloc), reschedule_at: at, followup: 0 });
                out.desired_updates.reschedule_later += 1;
            }
            SlotKind::Untainted => {
                if alloc.client_status == AllocClientStatus::Complete {
                    out.ignore.push(alloc_ref(alloc));
                    out.desired_updates.ignore += 1;
                    continue;
                }
                match decide_update(alloc.job.as_deref(), alloc.job_version, job, group) {
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
                        limit = limit.saturating_sub(1);
                        out.destructive_update.push(DestructiveUpdate {
                            stop: stop(alloc, StopReason::Updating),
                            place: replacement(PlaceReason::DestructiveUpdate),
                            change,
                        });
                        out.desired_updates.destructive_update += 1;
                    }
                }
            }
        }
    }

    // 5. Scale up: new allocations at the lowest free indexes.
    let taken: BTreeSet<u32> = kept.iter().filter_map(|s| s.index).collect();
    let mut free = (0u32..).filter(|i| !taken.contains(i));
    for _ in kept.len()..count {
        let index = free.next().unwrap_or(u32::MAX);
        out.place.push(Placement {
            task_group: group.name.clone(),
            name: alloc_name(job_id, &group.name, index),
            index,
            reason: PlaceReason::New,
            node: None,
            previous_alloc: None,
            previous_node: None,
            reschedule_tracker: None,
        });
        out.desired_updates.place += 1;
    }
    (out, later)
}
