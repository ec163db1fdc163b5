//! Committing a plan: optimistic, per node, in transactions of bounded size.
//!
//! The plan is split by node into chunks (nodes with stops first, so what they free is
//! committed before anything is placed elsewhere; each node whole in one chunk, so the
//! per-node decision is exact). Each chunk is one transaction that:
//!
//! 1. returns the recorded result if an earlier attempt of it may have committed and left
//!    its marker (`PLAN_DONE`), so nothing is written twice;
//! 2. checks, serializably, the worker's lease and the job's `JobModifyIndex`;
//! 3. re-reads, serializably, the usage record of each of its nodes and the allocations it
//!    stops or updates — and nothing else, so two plans conflict only when they touch the
//!    same node;
//! 4. runs [`decide_node`] / [`decide_plan`] and writes what passed: allocations (with
//!    their indexes), usage records, the usage log, and its marker;
//! 5. in the last chunk, when no node of the plan was dropped, completes the evaluation
//!    (status, follow-ups, blocked evaluation) and releases the lease, in the same
//!    transaction.
//!
//! Allocation IDs and the plan's token are fixed before any transaction runs; a chunk's
//! transaction is retried by `Database::run` on conflicts, and each retry decides again
//! from what it reads then. An `all_at_once` plan must fit one chunk.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use stead_sched::decide::NodeDecision;
use stead_sched::plan::{commit_order, stored_alloc_usage};
use stead_sched::{NodeCheck, NodeUsage, Plan, PlanUpdate, Rejection, decide_node, decide_plan};
use stead_store::model::{AllocId, Allocation, Evaluation, Job, NodeId};
use stead_store::records::keys as record_keys;
use stead_store::schema::{JobModify, PreparedInsert, PutOptions, encoding};
use stead_store::{ReadMode, Transaction, Version};

use crate::error::{Result, ServerError};
use crate::events;
use crate::keys::{Log, Store};
use crate::queue::{self, Blocked, Claim};
use crate::usage;

/// How plans are cut into transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitConfig {
    /// Estimated bytes written per chunk: a tenth of FoundationDB's 10 MB transaction
    /// limit, and small enough that a chunk commits well inside its 5-second life.
    pub chunk_bytes_max: usize,
    /// Nodes per chunk: bounds the serializable reads (and so the conflict surface) of one
    /// transaction.
    pub chunk_nodes_max: usize,
}

impl Default for CommitConfig {
    fn default() -> Self {
        Self { chunk_bytes_max: 1_000_000, chunk_nodes_max: 1_000 }
    }
}

/// A stop or update rewrites a record read in the same transaction: an allocation's
/// encoded size (about 1 kB for a one-task group with a port) and its keys, rounded up.
const UPDATE_BYTES_ESTIMATE: usize = 2_500;
/// A usage record and its log entry.
const NODE_BYTES_ESTIMATE: usize = 300;

/// How the evaluation is completed with the plan's last chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// The evaluation as stored once complete (status, descriptions, `FailedTGAllocs`…).
    pub eval: Evaluation,
    /// Delayed evaluations to queue (reschedules later, failed follow-ups).
    pub followups: Vec<Evaluation>,
    /// A blocked evaluation to park for the placements that found no node.
    pub blocked: Option<Evaluation>,
    /// The version the plan was computed at: capacity that appeared after it unblocks at once.
    pub snapshot_version: Version,
}

/// What committing a plan did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitReport {
    pub placed: usize,
    pub stopped: usize,
    pub updated: usize,
    /// Nodes whose part was dropped, and why.
    pub rejected: BTreeMap<NodeId, Rejection>,
    /// Placements on the dropped nodes.
    pub dropped_placements: usize,
    /// Transaction attempts that had to start over (conflicts and other retryable errors).
    pub conflicts: u64,
    pub chunks: usize,
    /// Set when the evaluation was completed with the last chunk.
    pub finished: Option<Finished>,
    /// What was written, per node of the plan: how many of its placements (the first ones,
    /// in plan order) and whether its stops and updates.
    pub applied: BTreeMap<NodeId, Applied>,
}

/// What a commit wrote of one node's part of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    pub placed: usize,
    pub stops_and_updates: bool,
}

/// How the evaluation was completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Finished {
    /// Every placement found a node.
    Complete,
    /// Some did not: a blocked evaluation waits for capacity.
    Blocked,
    /// Some did not, but capacity appeared meanwhile: the evaluation was queued again.
    Requeued,
}

/// The plan's placements, encoded, per node (in each node's placement order).
type Prepared<'p> = BTreeMap<&'p NodeId, Vec<PreparedInsert>>;

/// What one chunk's marker records: the nodes that dropped placements (node, why, how
/// many), and what was written.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct ChunkDone {
    rejected: Vec<(String, String, usize)>,
    #[serde(default)]
    applied: Vec<(String, Applied)>,
    placed: usize,
    stopped: usize,
    updated: usize,
    finished: Option<Finished>,
}

fn chunks_of<'p>(plan: &'p Plan, prepared: &Prepared<'_>, config: &CommitConfig) -> Vec<Vec<&'p NodeId>> {
    let mut chunks: Vec<Vec<&NodeId>> = Vec::new();
    let mut bytes = 0;
    for node in commit_order(plan) {
        let np = &plan.nodes[node];
        let size = NODE_BYTES_ESTIMATE
            + prepared.get(node).map_or(0, |p| p.iter().map(PreparedInsert::size).sum())
            + (np.stop.len() + np.update.len()) * UPDATE_BYTES_ESTIMATE;
        let full =
            chunks.last().is_none_or(|c| c.len() >= config.chunk_nodes_max || bytes + size > config.chunk_bytes_max);
        // An all-at-once plan stays in one chunk: it commits whole or not at all.
        if full && (chunks.is_empty() || !plan.all_at_once) {
            chunks.push(Vec::new());
            bytes = 0;
        }
        chunks.last_mut().expect("a chunk was pushed").push(node);
        bytes += size;
    }
    if chunks.is_empty() {
        chunks.push(Vec::new());
    }
    chunks
}

/// Commits `plan` for `claim` (see the module documentation). `token` names this attempt
/// of the plan: fresh per scheduling attempt, fixed across the retries of its
/// transactions. With `finish`, the last chunk completes the evaluation when no node was
/// dropped.
pub async fn commit_plan(
    store: &Store,
    config: &CommitConfig,
    claim: &Claim,
    plan: &Plan,
    token: &str,
    finish: Option<&Finish>,
    now: i64,
) -> Result<CommitReport> {
    // Placements are encoded once: a conflict starts a chunk's transaction over without
    // encoding them again, and the transaction stays short.
    let mut prepared = Prepared::new();
    for (node, np) in &plan.nodes {
        if !np.place.is_empty() {
            let inserts = np.place.iter().map(|a| store.ks.prepare_insert(a)).collect::<Result<Vec<_>, _>>()?;
            prepared.insert(node, inserts);
        }
    }
    let chunks = chunks_of(plan, &prepared, config);
    let prepared = &prepared;
    let mut report = CommitReport { chunks: chunks.len(), ..CommitReport::default() };
    let attempts = AtomicU64::new(0);
    let last = chunks.len() - 1;
    for (i, nodes) in chunks.iter().enumerate() {
        let finish_here = if i == last && report.rejected.is_empty() { finish } else { None };
        let marker = store.plan_done_key(claim.eval.id.as_str(), token, i);
        let done = store
            .db
            .run(|tx, maybe_committed| {
                attempts.fetch_add(1, Ordering::Relaxed);
                let marker = marker.clone();
                async move {
                    if maybe_committed.0
                        && let Some(bytes) = tx.get(&marker).await?
                    {
                        return encoding::decode::<ChunkDone>(&bytes)
                            .map_err(|reason| ServerError::Corrupt { what: "plan marker".to_owned(), reason });
                    }
                    commit_chunk(store, &tx, claim, plan, prepared, nodes, finish_here, &marker, now).await
                }
            })
            .await?;
        report.placed += done.placed;
        report.stopped += done.stopped;
        report.updated += done.updated;
        for (node, reason, dropped) in done.rejected {
            report.dropped_placements += dropped;
            report.rejected.insert(NodeId::from(node), rejection_from(&reason));
        }
        report.applied.extend(done.applied.into_iter().map(|(node, applied)| (NodeId::from(node), applied)));
        if done.finished.is_some() {
            report.finished = done.finished;
        }
    }
    report.conflicts = attempts.load(Ordering::Relaxed).saturating_sub(chunks.len() as u64);
    Ok(report)
}

fn rejection_text(r: &Rejection) -> String {
    match r {
        Rejection::NodeGone => "node gone".to_owned(),
        Rejection::NotSchedulable => "node not schedulable".to_owned(),
        Rejection::Exhausted(dim) => format!("exhausted: {dim}"),
        Rejection::AllAtOnce => "all at once".to_owned(),
    }
}

fn rejection_from(text: &str) -> Rejection {
    match text {
        "node gone" => Rejection::NodeGone,
        "node not schedulable" => Rejection::NotSchedulable,
        "all at once" => Rejection::AllAtOnce,
        other => Rejection::Exhausted(match other.trim_start_matches("exhausted: ") {
            "cpu" => stead_sched::placement::cluster::DIM_CPU,
            "memory" => stead_sched::placement::cluster::DIM_MEMORY,
            "disk" => stead_sched::placement::cluster::DIM_DISK,
            "cores" => stead_sched::placement::cluster::DIM_CORES,
            _ => stead_sched::placement::cluster::DIM_RESERVED_PORT,
        }),
    }
}

/// The stored job's `JobModifyIndex` (0 when there is none), read serializably.
async fn stored_job_modify_index(store: &Store, tx: &Transaction, ns: &str, job: &str) -> Result<u64> {
    let versions = store.ks.get_versions::<Job>(tx, &record_keys::job(ns, job), ReadMode::Serializable).await?;
    Ok(versions.map_or(0, |v| v.job_modify_index))
}

#[allow(clippy::too_many_arguments)]
async fn commit_chunk(
    store: &Store,
    tx: &Transaction,
    claim: &Claim,
    plan: &Plan,
    prepared: &Prepared<'_>,
    nodes: &[&NodeId],
    finish: Option<&Finish>,
    marker: &[u8],
    now: i64,
) -> Result<ChunkDone> {
    queue::check_and_extend_lease(store, tx, claim, now).await?;
    let stored = stored_job_modify_index(store, tx, &plan.namespace, plan.job_id.as_str()).await?;
    if stored != plan.job_modify_index {
        return Err(ServerError::JobChanged {
            job: format!("{}/{}", plan.namespace, plan.job_id),
            planned: plan.job_modify_index,
            stored,
        });
    }

    // Read what the decision depends on.
    let mut usages: BTreeMap<&NodeId, Option<NodeUsage>> = BTreeMap::new();
    let mut current: BTreeMap<&NodeId, Vec<Option<Allocation>>> = BTreeMap::new();
    let mut freed: BTreeMap<&NodeId, Vec<stead_sched::placement::Usage>> = BTreeMap::new();
    for &node in nodes {
        let np = &plan.nodes[node];
        let mode = if stead_store::model::planted::planted(stead_store::model::planted::Bug::CommitSkipsNodeReread) {
            ReadMode::Snapshot
        } else {
            ReadMode::Serializable
        };
        usages.insert(node, usage::get_usage(store, tx, node.as_str(), mode).await?);
        let ids = np.stop.iter().map(|s| &s.alloc_id).chain(np.update.iter().map(PlanUpdate::alloc_id));
        let mut records = Vec::new();
        for id in ids {
            let alloc = store
                .ks
                .get::<Allocation>(tx, &record_keys::alloc(&plan.namespace, id.as_str()), ReadMode::Serializable)
                .await?;
            records.push(alloc);
        }
        let frees = np.stop.iter().zip(&records).filter_map(|(_, a)| a.as_ref()).filter(|a| !a.is_terminal());
        freed.insert(node, frees.map(stored_alloc_usage).collect());
        current.insert(node, records);
    }
    let decisions: BTreeMap<&NodeId, NodeDecision> = nodes
        .iter()
        .map(|&node| {
            let np = &plan.nodes[node];
            let check = NodeCheck {
                usage: usages[node].as_ref(),
                freed: freed.remove(node).unwrap_or_default(),
                placed: np.place.iter().map(stored_alloc_usage).collect(),
                stops_or_updates: !np.stop.is_empty() || !np.update.is_empty(),
            };
            (node, decide_node(&check))
        })
        .collect();
    let decisions = decide_plan(plan.all_at_once, decisions);

    // Write what passed. Existing allocations are changed in `changed` and written once.
    let mut done = ChunkDone::default();
    let mut logged: Vec<&str> = Vec::new();
    let mut changed: BTreeMap<AllocId, Allocation> = BTreeMap::new();
    for (&node, decision) in &decisions {
        let np = &plan.nodes[node];
        if let Some(r) = &decision.rejection {
            done.rejected.push((node.to_string(), rejection_text(r), np.place.len() - decision.placed));
        }
        let applied = Applied { placed: decision.placed, stops_and_updates: decision.keeps_stops_and_updates };
        done.applied.push((node.to_string(), applied));
        if let Some(after) = &decision.usage {
            usage::put_usage(store, tx, after)?;
            logged.push(node.as_str());
        }
        // Allocation watches wake on the usage record, which placements change; stops
        // and updates may leave it as it was (a replacement on the same node, an
        // in-place update), so they stamp the node, as do placements that happen to
        // use nothing. (A stamp for every node of every chunk cost 12% of a scheduling
        // run: placements are the hot path.)
        let stops_or_updates = decision.keeps_stops_and_updates && (!np.stop.is_empty() || !np.update.is_empty());
        let usage_unchanged = decision.usage.as_ref() == usages[node].as_ref();
        if stops_or_updates || (decision.placed > 0 && usage_unchanged) {
            usage::stamp_node_allocs(store, tx, node.as_str());
        }
        if decision.placed > 0 {
            for (insert, alloc) in prepared[node][..decision.placed].iter().zip(&np.place) {
                store.ks.write_prepared(tx, insert);
                let job = [alloc.job_id.as_str()];
                let event = events::NewEvent {
                    topic: events::Topic::Allocation,
                    event_type: "PlanResult",
                    key: alloc.id.as_str(),
                    namespace: &alloc.namespace,
                    filter_keys: &job,
                };
                events::emit_encoded(store, tx, event, insert.encoded().clone());
            }
            done.placed += decision.placed;
        }
        if !decision.keeps_stops_and_updates {
            continue;
        }
        let records = &current[node];
        for (stop, record) in np.stop.iter().zip(records) {
            let Some(mut alloc) = record.clone() else { continue };
            stop.apply(&mut alloc);
            changed.insert(alloc.id.clone(), alloc);
            done.stopped += 1;
        }
        for (update, record) in np.update.iter().zip(&records[np.stop.len()..]) {
            let Some(record) = record else { continue };
            update.apply(changed.entry(record.id.clone()).or_insert_with(|| record.clone()));
            done.updated += 1;
        }
    }
    // A replacement that was written points its predecessor at itself (`NextAllocation`),
    // in the same transaction: never at a placement that was dropped.
    for (&node, decision) in &decisions {
        for alloc in &plan.nodes[node].place[..decision.placed] {
            if alloc.previous_allocation.is_empty() {
                continue;
            }
            let prev = match changed.remove(&alloc.previous_allocation) {
                Some(prev) => Some(prev),
                None => {
                    let pk = record_keys::alloc(&plan.namespace, alloc.previous_allocation.as_str());
                    store.ks.get::<Allocation>(tx, &pk, ReadMode::Serializable).await?
                }
            };
            if let Some(mut prev) = prev {
                prev.next_allocation = alloc.id.clone();
                changed.insert(prev.id.clone(), prev);
            }
        }
    }
    let bump = PutOptions::default().job_modify(JobModify::Bump);
    for alloc in changed.values_mut() {
        alloc.modify_time = now;
        store.ks.put(tx, &*alloc, bump).await?;
        events::emit_alloc(store, tx, alloc, "PlanResult")?;
    }
    usage::log_nodes(store, tx, Log::Usage, logged);

    if let Some(finish) = finish
        && done.rejected.is_empty()
    {
        queue::finish(store, tx, claim, &finish.eval).await?;
        for f in &finish.followups {
            queue::enqueue(store, tx, f, now).await?;
        }
        done.finished = Some(match &finish.blocked {
            Some(b) => match queue::block(store, tx, b, finish.snapshot_version).await? {
                Blocked::Blocked => Finished::Blocked,
                Blocked::Ready => Finished::Requeued,
            },
            None => {
                let why = format!("placements of evaluation {} all succeeded", finish.eval.id);
                queue::clear_blocked(store, tx, &plan.namespace, plan.job_id.as_str(), &why).await?;
                Finished::Complete
            }
        });
        // Markers of earlier attempts are no longer needed; this one stays for a retry.
        let (begin, end) = store.plan_done(claim.eval.id.as_str()).range();
        tx.clear_range(&begin, &end);
    }
    let bytes =
        encoding::encode(&done).map_err(|reason| ServerError::Corrupt { what: "plan marker".to_owned(), reason })?;
    tx.set(marker, &bytes);
    Ok(done)
}
