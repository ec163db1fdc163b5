//! The evaluation queue, in the store: ready, delayed and blocked evaluations, and the
//! per-job leases of evaluations in flight.
//!
//! * [`enqueue`] runs in the caller's transaction — the one that changes the job or node —
//!   and is blind writes only: it never conflicts, and the evaluation exists exactly when
//!   the change does.
//! * [`claim`] takes a ready evaluation: a snapshot read of the queue's head (a window of
//!   `claim_window` entries), a random pick among entries whose job holds no live lease,
//!   then one transaction that re-reads the entry and the job's lease serializably, writes
//!   the lease, and removes the entry with every other ready entry of the job (coalesced:
//!   marked `canceled`; the claimed evaluation reconciles the job's whole state). Workers
//!   collide only when they pick the same entry.
//! * Leases expire; [`reclaim_expired`] re-delivers the evaluation of an expired lease, and
//!   after `deliveries_max` deliveries fails it and queues a delayed `failed-follow-up`.
//! * [`block`] parks an evaluation whose placements found no node, one per job, unless
//!   capacity appeared after its snapshot (then it is queued ready at once); [`unblock`]
//!   moves every blocked evaluation back to ready when capacity appears.
//! * [`promote_due`] moves delayed evaluations whose time has come to ready.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stead_store::model::time::{format_rfc3339_nanos, parse_rfc3339_nanos};
use stead_store::model::{EvalId, EvalStatus, EvalTrigger, Evaluation};
use stead_store::records::keys as record_keys;
use stead_store::schema::{PutOptions, encoding};
use stead_store::tuple::{pack, unpack};
use stead_store::{RangeOption, ReadMode, Transaction, Version};

use crate::env::Env;
use crate::error::{Result, ServerError};
use crate::events;
use crate::keys::{STAMP_VALUE_TEMPLATE, Store};

/// How the queue behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// How long a claimed evaluation stays with its worker without a renewal.
    pub lease_ttl: Duration,
    /// Deliveries before an evaluation is failed (Nomad's `EvalDeliveryLimit`).
    pub deliveries_max: u32,
    /// Ready entries a claim looks at: a pick among several keeps workers from colliding on
    /// the head of the queue.
    pub claim_window: usize,
    /// Delay of the follow-up of an evaluation that reached its delivery limit (Nomad:
    /// 1 minute plus up to 5 of jitter; the jitter comes from the entropy source).
    pub failed_followup_wait: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(30),
            deliveries_max: 3,
            claim_window: 64,
            failed_followup_wait: Duration::from_secs(60),
        }
    }
}

/// The lease of a job's evaluation in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub eval_id: String,
    pub worker: String,
    /// Unique per delivery: a worker whose lease was taken over cannot mistake the new one
    /// for its own.
    pub token: String,
    /// Unix nanoseconds.
    pub expires_at: i64,
    /// How long a renewal extends it (the queue's `lease_ttl` when it was claimed).
    #[serde(default)]
    pub ttl_ns: i64,
    pub deliveries: u32,
    pub priority: i32,
}

/// A lease holds until it expires (for ever with the planted bug
/// [`LeaseNeverExpires`](stead_store::model::planted::Bug::LeaseNeverExpires)).
fn lease_live(lease: &Lease, now: i64) -> bool {
    lease.expires_at > now || stead_store::model::planted::planted(stead_store::model::planted::Bug::LeaseNeverExpires)
}

/// A claimed evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub eval: Evaluation,
    pub lease: Lease,
    /// Ready evaluations of the same job removed with this claim (marked canceled).
    pub coalesced: Vec<EvalId>,
}

/// What a claim attempt found.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimAttempt {
    Claimed(Box<Claim>),
    /// Nothing ready, or every ready job is leased.
    Empty,
    /// The picked entry was taken by another worker first.
    Contended,
}

fn corrupt(what: impl Into<String>, reason: impl ToString) -> ServerError {
    ServerError::Corrupt { what: what.into(), reason: reason.to_string() }
}

/// Adds a ready entry for an evaluation (blind writes).
fn put_ready(store: &Store, tx: &Transaction, namespace: &str, job: &str, eval: &str, priority: i32) {
    let template = store.ready_key_template(priority, eval);
    tx.set_versionstamped_key(&template, &pack(&(namespace, job)));
    // The template is also a valid value template: its placeholder offset counts from the
    // start of the key, which is the start of the value.
    tx.set_versionstamped_value(&store.ready_by_job(namespace, job).pack(&eval), &template);
    signal_ready(store, tx);
}

/// Stores an evaluation and its `EvaluationUpdated` event.
async fn put_eval(store: &Store, tx: &Transaction, eval: &Evaluation, options: PutOptions) -> Result<()> {
    store.ks.put(tx, eval, options).await?;
    let event = events::NewEvent {
        topic: events::Topic::Evaluation,
        event_type: "EvaluationUpdated",
        key: eval.id.as_str(),
        namespace: &eval.namespace,
        filter_keys: &[eval.job_id.as_str()],
    };
    events::emit(store, tx, event, eval)
}

/// Wakes workers that wait for ready evaluations.
pub fn signal_ready(store: &Store, tx: &Transaction) {
    tx.set_versionstamped_value(&store.ready_signal_key(), &STAMP_VALUE_TEMPLATE);
}

/// Stores `eval` (a new evaluation, status `pending`) and queues it: delayed when its
/// `WaitUntil` lies after `now`, else ready. Blind writes only.
pub async fn enqueue(store: &Store, tx: &Transaction, eval: &Evaluation, now: i64) -> Result<()> {
    put_eval(store, tx, eval, PutOptions::insert_new()).await?;
    let wait_until = match eval.wait_until.as_deref().filter(|w| !w.is_empty()) {
        None => None,
        Some(text) => Some(parse_rfc3339_nanos(text).ok_or_else(|| {
            ServerError::Invalid(format!("evaluation {}: WaitUntil {text:?} is not an RFC 3339 time", eval.id))
        })?),
    };
    match wait_until {
        Some(at) if at > now => {
            let value = pack(&(eval.namespace.as_str(), eval.job_id.as_str(), i64::from(eval.priority)));
            tx.set(&store.delayed_key(at, eval.id.as_str()), &value);
        }
        _ => put_ready(store, tx, &eval.namespace, eval.job_id.as_str(), eval.id.as_str(), eval.priority),
    }
    Ok(())
}

/// The version at which capacity last appeared (0: never).
pub async fn capacity_version(store: &Store, tx: &Transaction, mode: ReadMode) -> Result<Version> {
    Ok(match tx.get_with(&store.capacity_key(), mode).await? {
        Some(v) if v.len() >= 8 => i64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
        _ => 0,
    })
}

/// Where [`block`] put the evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// Parked until capacity appears.
    Blocked,
    /// Capacity appeared after the snapshot: queued ready instead (status `pending`).
    Ready,
}

/// Stores the blocked evaluation `eval` (status `blocked`) for its job, replacing (and
/// canceling) an older blocked evaluation of the job. When capacity appeared after
/// `snapshot_version` — the version the failed placements were computed at — it is queued
/// ready instead: a read of the capacity marker in this transaction makes that exact.
pub async fn block(store: &Store, tx: &Transaction, eval: &Evaluation, snapshot_version: Version) -> Result<Blocked> {
    let (ns, job, id) = (eval.namespace.as_str(), eval.job_id.as_str(), eval.id.as_str());
    if capacity_version(store, tx, ReadMode::Serializable).await? > snapshot_version {
        let mut ready = eval.clone();
        ready.status = EvalStatus::Pending;
        ready.status_description = "capacity appeared while scheduling; placing again".to_owned();
        put_eval(store, tx, &ready, PutOptions::insert_new()).await?;
        put_ready(store, tx, ns, job, id, eval.priority);
        return Ok(Blocked::Ready);
    }
    let key = store.blocked_key(ns, job);
    if let Some(old) = tx.get(&key).await? {
        let old = BlockedEntry::decode(&old, ns, job)?;
        cancel_eval(store, tx, ns, &old.eval, &format!("superseded by blocked evaluation {id}")).await?;
    }
    put_eval(store, tx, eval, PutOptions::insert_new()).await?;
    let entry = BlockedEntry { eval: id.to_owned(), priority: eval.priority, blocked_at: snapshot_version };
    tx.set(&key, &entry.encode());
    Ok(Blocked::Blocked)
}

/// A blocked evaluation's entry: `(eval, priority, blocked_at)` — the version its
/// placements were computed at, so that only capacity that appeared after it unblocks it.
/// Entries written before `blocked_at` existed have two elements and unblock on any
/// capacity change.
struct BlockedEntry {
    eval: String,
    priority: i32,
    blocked_at: Version,
}

impl BlockedEntry {
    fn encode(&self) -> Vec<u8> {
        pack(&(self.eval.as_str(), i64::from(self.priority), self.blocked_at))
    }

    fn decode(bytes: &[u8], ns: &str, job: &str) -> Result<BlockedEntry> {
        if let Ok((eval, priority, blocked_at)) = unpack::<(String, i64, i64)>(bytes) {
            return Ok(BlockedEntry { eval, priority: priority as i32, blocked_at });
        }
        let (eval, priority): (String, i64) =
            unpack(bytes).map_err(|e| corrupt(format!("blocked entry of {ns}/{job}"), e))?;
        Ok(BlockedEntry { eval, priority: priority as i32, blocked_at: 0 })
    }
}

/// Removes the job's blocked evaluation, if any, and marks it canceled (the job's
/// placements all succeeded, or the job is gone).
pub async fn clear_blocked(store: &Store, tx: &Transaction, namespace: &str, job: &str, why: &str) -> Result<()> {
    let key = store.blocked_key(namespace, job);
    if let Some(old) = tx.get(&key).await? {
        let old = BlockedEntry::decode(&old, namespace, job)?;
        cancel_eval(store, tx, namespace, &old.eval, why).await?;
        tx.clear(&key);
    }
    Ok(())
}

async fn cancel_eval(store: &Store, tx: &Transaction, namespace: &str, id: &str, why: &str) -> Result<()> {
    let pk = record_keys::eval(namespace, id);
    if let Some(mut eval) = store.ks.get::<Evaluation>(tx, &pk, ReadMode::Snapshot).await? {
        eval.status = EvalStatus::Canceled;
        eval.status_description = why.to_owned();
        put_eval(store, tx, &eval, PutOptions::default()).await?;
    }
    Ok(())
}

/// Takes a ready evaluation for `worker`. `pick` chooses among the candidates (pass a
/// random value: workers that pick differently do not collide). `token` identifies this
/// delivery; generate it before calling.
pub async fn claim(
    store: &Store,
    config: &QueueConfig,
    worker: &str,
    token: &str,
    now: i64,
    pick: u64,
) -> Result<ClaimAttempt> {
    // 1. A snapshot of the queue's head and of the leases of its jobs.
    let tx = store.db.create_transaction()?;
    let (begin, end) = store.ready().range();
    let head =
        tx.get_range(&RangeOption::new(begin, end).limit(config.claim_window.max(1)), ReadMode::Snapshot).await?;
    if head.key_values.is_empty() {
        return Ok(ClaimAttempt::Empty);
    }
    let mut candidates = Vec::with_capacity(head.key_values.len());
    let mut leased: Vec<(String, String)> = Vec::new();
    for kv in &head.key_values {
        let (ns, job): (String, String) = unpack(&kv.value).map_err(|e| corrupt("ready entry", e))?;
        if leased.iter().any(|(n, j)| *n == ns && *j == job) {
            continue;
        }
        if let Some(lease) = read_lease(store, &tx, &ns, &job, ReadMode::Snapshot).await?
            && lease_live(&lease, now)
        {
            leased.push((ns, job));
            continue;
        }
        candidates.push((kv.key.clone(), ns, job));
    }
    if candidates.is_empty() {
        return Ok(ClaimAttempt::Empty);
    }
    let (ready_key, ns, job) = candidates.swap_remove((pick % candidates.len() as u64) as usize);
    let (_, _, eval_id): (i64, stead_store::tuple::Versionstamp, String) =
        store.ready().unpack(&ready_key).map_err(|e| corrupt("ready entry key", e))?;

    // 2. Claim it in one transaction.
    let claimed = store
        .db
        .run(|tx, maybe_committed| {
            let (ready_key, ns, job, eval_id) = (ready_key.clone(), ns.clone(), job.clone(), eval_id.clone());
            async move {
                let lease = read_lease(store, &tx, &ns, &job, ReadMode::Serializable).await?;
                if maybe_committed.0
                    && let Some(lease) = lease.as_ref().filter(|l| l.token == token)
                {
                    // An earlier attempt committed this very claim: it is ours.
                    let pk = record_keys::eval(&ns, &lease.eval_id);
                    return Ok(store.ks.get::<Evaluation>(&tx, &pk, ReadMode::Snapshot).await?.map(|eval| Claim {
                        eval,
                        lease: lease.clone(),
                        coalesced: Vec::new(),
                    }));
                }
                if tx.get(&ready_key).await?.is_none() {
                    return Ok(None);
                }
                if lease.is_some_and(|lease| lease_live(&lease, now)) {
                    return Ok(None);
                }
                let pk = record_keys::eval(&ns, &eval_id);
                let Some(eval) = store.ks.get::<Evaluation>(&tx, &pk, ReadMode::Snapshot).await? else {
                    // An entry without its record: drop it rather than spin on it.
                    tx.clear(&ready_key);
                    tx.clear(&store.ready_by_job(&ns, &job).pack(&eval_id.as_str()));
                    return Ok(None);
                };
                let mut coalesced = Vec::new();
                let (begin, end) = store.ready_by_job(&ns, &job).range();
                for kv in tx.get_range_all(&RangeOption::new(begin, end), ReadMode::Serializable).await? {
                    let (other,): (String,) =
                        store.ready_by_job(&ns, &job).unpack(&kv.key).map_err(|e| corrupt("ready-by-job entry", e))?;
                    tx.clear(&kv.value);
                    tx.clear(&kv.key);
                    if other != eval_id {
                        cancel_eval(store, &tx, &ns, &other, &format!("coalesced into evaluation {eval_id}")).await?;
                        coalesced.push(EvalId::from(other));
                    }
                }
                let lease = Lease {
                    eval_id: eval_id.clone(),
                    worker: worker.to_owned(),
                    token: token.to_owned(),
                    expires_at: now.saturating_add(ttl_ns(config)),
                    ttl_ns: ttl_ns(config),
                    deliveries: 1,
                    priority: eval.priority,
                };
                write_lease(store, &tx, &ns, &job, &lease)?;
                Ok::<_, ServerError>(Some(Claim { eval, lease, coalesced }))
            }
        })
        .await?;
    Ok(match claimed {
        Some(claim) => ClaimAttempt::Claimed(Box::new(claim)),
        None => ClaimAttempt::Contended,
    })
}

fn ttl_ns(config: &QueueConfig) -> i64 {
    i64::try_from(config.lease_ttl.as_nanos()).unwrap_or(i64::MAX)
}

pub async fn read_lease(store: &Store, tx: &Transaction, ns: &str, job: &str, mode: ReadMode) -> Result<Option<Lease>> {
    match tx.get_with(&store.lease_key(ns, job), mode).await? {
        None => Ok(None),
        Some(bytes) => {
            encoding::decode(&bytes).map(Some).map_err(|reason| corrupt(format!("lease of job {ns}/{job}"), reason))
        }
    }
}

fn write_lease(store: &Store, tx: &Transaction, ns: &str, job: &str, lease: &Lease) -> Result<()> {
    let bytes = encoding::encode(lease).map_err(|reason| corrupt(format!("lease of job {ns}/{job}"), reason))?;
    tx.set(&store.lease_key(ns, job), &bytes);
    Ok(())
}

/// Fails with [`ServerError::LeaseLost`] unless `claim`'s lease is the job's lease now. A
/// serializable read: a transaction that passes commits only while the lease holds.
pub async fn check_lease(store: &Store, tx: &Transaction, claim: &Claim) -> Result<()> {
    let (ns, job) = (&claim.eval.namespace, claim.eval.job_id.as_str());
    match read_lease(store, tx, ns, job, ReadMode::Serializable).await? {
        Some(lease) if lease.token == claim.lease.token => Ok(()),
        _ => Err(ServerError::LeaseLost { job: format!("{ns}/{job}") }),
    }
}

/// Checks `claim`'s lease (as [`check_lease`]) and extends it to `now + ttl` in `tx`: every
/// plan transaction renews the lease it commits under, so a long commit does not lose it.
pub async fn check_and_extend_lease(store: &Store, tx: &Transaction, claim: &Claim, now: i64) -> Result<()> {
    check_lease(store, tx, claim).await?;
    if claim.lease.ttl_ns > 0 {
        let mut lease = claim.lease.clone();
        lease.expires_at = now.saturating_add(claim.lease.ttl_ns);
        write_lease(store, tx, &claim.eval.namespace, claim.eval.job_id.as_str(), &lease)?;
    }
    Ok(())
}

/// Extends the lease of `claim` to `now + lease_ttl`.
pub async fn renew(store: &Store, config: &QueueConfig, claim: &mut Claim, now: i64) -> Result<()> {
    let mut lease = claim.lease.clone();
    lease.expires_at = now.saturating_add(ttl_ns(config));
    let claim_ref = &*claim;
    store
        .db
        .run(|tx, _| {
            let lease = lease.clone();
            async move {
                check_lease(store, &tx, claim_ref).await?;
                write_lease(store, &tx, &claim_ref.eval.namespace, claim_ref.eval.job_id.as_str(), &lease)
            }
        })
        .await?;
    claim.lease = lease;
    Ok(())
}

/// Completes `claim` in `tx`: checks the lease, stores the evaluation as given (its final
/// status), releases the lease and wakes waiting workers.
pub async fn finish(store: &Store, tx: &Transaction, claim: &Claim, eval: &Evaluation) -> Result<()> {
    check_lease(store, tx, claim).await?;
    put_eval(store, tx, eval, PutOptions::default()).await?;
    tx.clear(&store.lease_key(&claim.eval.namespace, claim.eval.job_id.as_str()));
    // Evaluations of the job that waited for the lease are claimable now.
    signal_ready(store, tx);
    Ok(())
}

/// Releases `claim`'s lease without touching the evaluation (it will be delivered again
/// only if something queues it): for a worker that stops with the evaluation done
/// elsewhere. Does nothing when the lease is not ours any more.
pub async fn release(store: &Store, claim: &Claim) -> Result<()> {
    store
        .db
        .run(|tx, _| async move {
            match check_lease(store, &tx, claim).await {
                Ok(()) => tx.clear(&store.lease_key(&claim.eval.namespace, claim.eval.job_id.as_str())),
                Err(ServerError::LeaseLost { .. }) => {}
                Err(e) => return Err(e),
            }
            Ok(())
        })
        .await
}

/// What [`reclaim_expired`] did with an expired lease.
#[derive(Debug, Clone, PartialEq)]
pub enum Reclaimed {
    /// Nothing expired.
    None,
    /// Delivered again, to this worker.
    Claimed(Box<Claim>),
    /// The delivery limit was reached: the evaluation failed, this follow-up was queued.
    Failed { eval: EvalId, followup: EvalId },
    /// Another worker got there first.
    Contended,
}

/// Finds an expired lease and delivers its evaluation again to `worker`, or fails it when
/// it reached `deliveries_max`.
pub async fn reclaim_expired(
    store: &Store,
    config: &QueueConfig,
    env: &Env,
    worker: &str,
    token: &str,
) -> Result<Reclaimed> {
    let now = env.now_ns();
    let tx = store.db.create_transaction()?;
    let (begin, end) = store.leases().range();
    // In-flight leases number about the workers of the cluster: a bounded page.
    const LEASES_SCANNED_MAX: usize = 10_000;
    let leases = tx.get_range(&RangeOption::new(begin, end).limit(LEASES_SCANNED_MAX), ReadMode::Snapshot).await?;
    let mut expired = None;
    for kv in &leases.key_values {
        let (ns, job): (String, String) = store.leases().unpack(&kv.key).map_err(|e| corrupt("lease key", e))?;
        let lease: Lease = encoding::decode(&kv.value).map_err(|r| corrupt(format!("lease of {ns}/{job}"), r))?;
        if !lease_live(&lease, now) {
            expired = Some((ns, job, lease));
            break;
        }
    }
    let Some((ns, job, seen)) = expired else {
        return Ok(Reclaimed::None);
    };
    let followup_id = env.new_id();
    let jitter = (env.entropy.next_u64() % 5_000) as i64 * 60_000_000; // up to 5 minutes
    store
        .db
        .run(|tx, maybe_committed| {
            let (ns, job, seen, followup_id) = (ns.clone(), job.clone(), seen.clone(), followup_id.clone());
            async move {
                match read_lease(store, &tx, &ns, &job, ReadMode::Serializable).await? {
                    Some(lease) if lease.token == seen.token && lease.expires_at <= now => {}
                    // An earlier attempt committed this very re-delivery: it is ours.
                    Some(lease) if maybe_committed.0 && lease.token == token => {
                        let pk = record_keys::eval(&ns, &lease.eval_id);
                        return Ok(match store.ks.get::<Evaluation>(&tx, &pk, ReadMode::Snapshot).await? {
                            Some(eval) => Reclaimed::Claimed(Box::new(Claim { eval, lease, coalesced: Vec::new() })),
                            None => Reclaimed::Contended,
                        });
                    }
                    // An earlier attempt failed the evaluation (its follow-up exists).
                    None if maybe_committed.0
                        && store
                            .ks
                            .get::<Evaluation>(&tx, &record_keys::eval(&ns, &followup_id), ReadMode::Snapshot)
                            .await?
                            .is_some() =>
                    {
                        return Ok(Reclaimed::Failed {
                            eval: seen.eval_id.clone().into(),
                            followup: followup_id.into(),
                        });
                    }
                    _ => return Ok(Reclaimed::Contended),
                }
                let pk = record_keys::eval(&ns, &seen.eval_id);
                let Some(mut eval) = store.ks.get::<Evaluation>(&tx, &pk, ReadMode::Snapshot).await? else {
                    tx.clear(&store.lease_key(&ns, &job));
                    return Ok(Reclaimed::Contended);
                };
                let deliveries = seen.deliveries + 1;
                if deliveries > config.deliveries_max {
                    eval.status = EvalStatus::Failed;
                    eval.status_description = format!("evaluation reached delivery limit ({})", config.deliveries_max);
                    eval.modify_time = now;
                    let wait = i64::try_from(config.failed_followup_wait.as_nanos()).unwrap_or(i64::MAX);
                    let followup = Evaluation {
                        id: followup_id.clone().into(),
                        namespace: ns.clone(),
                        priority: eval.priority,
                        eval_type: eval.eval_type.clone(),
                        triggered_by: EvalTrigger::FailedFollowUp,
                        job_id: eval.job_id.clone(),
                        status: EvalStatus::Pending,
                        wait_until: Some(format_rfc3339_nanos(now.saturating_add(wait).saturating_add(jitter))),
                        previous_eval: eval.id.clone(),
                        create_time: now,
                        modify_time: now,
                        ..Evaluation::default()
                    };
                    eval.next_eval = followup.id.clone();
                    put_eval(store, &tx, &eval, PutOptions::default()).await?;
                    enqueue(store, &tx, &followup, now).await?;
                    tx.clear(&store.lease_key(&ns, &job));
                    return Ok(Reclaimed::Failed { eval: eval.id, followup: followup.id });
                }
                let lease = Lease {
                    eval_id: seen.eval_id.clone(),
                    worker: worker.to_owned(),
                    token: token.to_owned(),
                    expires_at: now.saturating_add(ttl_ns(config)),
                    ttl_ns: ttl_ns(config),
                    deliveries,
                    priority: seen.priority,
                };
                write_lease(store, &tx, &ns, &job, &lease)?;
                Ok::<_, ServerError>(Reclaimed::Claimed(Box::new(Claim { eval, lease, coalesced: Vec::new() })))
            }
        })
        .await
}

/// Moves up to `limit` delayed evaluations that are due at `now` to ready. Returns how many.
pub async fn promote_due(store: &Store, now: i64, limit: usize) -> Result<usize> {
    store
        .db
        .run(|tx, _| async move {
            let begin = store.delayed().range().0;
            let end = store.delayed().pack(&(now.saturating_add(1),));
            let due = tx.get_range(&RangeOption::new(begin, end).limit(limit.max(1)), ReadMode::Serializable).await?;
            for kv in &due.key_values {
                let (_, eval): (i64, String) =
                    store.delayed().unpack(&kv.key).map_err(|e| corrupt("delayed key", e))?;
                let (ns, job, priority): (String, String, i64) =
                    unpack(&kv.value).map_err(|e| corrupt("delayed entry", e))?;
                tx.clear(&kv.key);
                put_ready(store, &tx, &ns, &job, &eval, priority as i32);
            }
            Ok::<_, ServerError>(due.key_values.len())
        })
        .await
}

/// Moves to READY the blocked evaluations (up to `limit`, after `cursor`) whose placements
/// were computed before `capacity` (the CAPACITY stamp's version): those that saw it
/// already stay blocked. Returns how many moved and where to go on (None: the end).
pub async fn unblock(
    store: &Store,
    capacity: Version,
    cursor: Option<Vec<u8>>,
    limit: usize,
) -> Result<(usize, Option<Vec<u8>>)> {
    store
        .db
        .run(|tx, _| {
            let cursor = cursor.clone();
            async move {
                let (begin, end) = store.blocked().range();
                let begin = match cursor {
                    Some(k) => stead_store::types::key_after(&k).to_vec(),
                    None => begin,
                };
                let blocked =
                    tx.get_range(&RangeOption::new(begin, end).limit(limit.max(1)), ReadMode::Serializable).await?;
                let mut moved = 0;
                for kv in &blocked.key_values {
                    let (ns, job): (String, String) =
                        store.blocked().unpack(&kv.key).map_err(|e| corrupt("blocked key", e))?;
                    let entry = BlockedEntry::decode(&kv.value, &ns, &job)?;
                    if entry.blocked_at >= capacity {
                        continue;
                    }
                    tx.clear(&kv.key);
                    put_ready(store, &tx, &ns, &job, &entry.eval, entry.priority);
                    moved += 1;
                }
                let next = if blocked.more { blocked.key_values.last().map(|kv| kv.key.to_vec()) } else { None };
                Ok::<_, ServerError>((moved, next))
            }
        })
        .await
}

/// How many entries each part of the queue holds (up to `limit` each): for tests, metrics
/// and the simulator's checkers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub ready: usize,
    pub delayed: usize,
    pub blocked: usize,
    pub leased: usize,
}

pub async fn counts(store: &Store, limit: usize) -> Result<QueueCounts> {
    let tx = store.db.create_transaction()?;
    let count = |sub: stead_store::tuple::Subspace| {
        let tx = tx.clone();
        async move {
            let (begin, end) = sub.range();
            Ok::<_, ServerError>(
                tx.get_range_all(&RangeOption::new(begin, end).limit(limit), ReadMode::Snapshot).await?.len(),
            )
        }
    };
    Ok(QueueCounts {
        ready: count(store.ready()).await?,
        delayed: count(store.delayed()).await?,
        blocked: count(store.blocked()).await?,
        leased: count(store.leases()).await?,
    })
}
