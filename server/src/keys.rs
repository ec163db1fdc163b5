//! Where the server's state lives in the store, beside the records of `stead_store::records`.
//!
//! ```text
//! (st, 3 SCHED, 0 READY, -priority, versionstamp, eval)  → (ns, job)     ready evaluations
//! (st, 3 SCHED, 1 READY_BY_JOB, ns, job, eval)            → ready key     a job's ready entries
//! (st, 3 SCHED, 2 DELAYED, wait_until_ns, eval)           → (ns, job, priority)
//! (st, 3 SCHED, 3 BLOCKED, ns, job)                       → (eval, priority)   one per job
//! (st, 3 SCHED, 4 CAPACITY)                               → versionstamp  capacity appeared
//! (st, 3 SCHED, 5 LEASE, ns, job)                         → Lease         the job's evaluation in flight
//! (st, 3 SCHED, 6 PLAN_DONE, eval, token, chunk)          → rejected nodes  committed plan chunks
//! (st, 3 SCHED, 7 SYSTEM_JOBS, ns, job)                   → ''            system and sysbatch jobs
//! (st, 3 SCHED, 8 READY_SIGNAL)                           → versionstamp  something became ready
//! (st, 3 SCHED, 9 PERIODIC_JOBS, ns, job)                 → ''            periodic parents
//! (st, 3 SCHED, 10 PERIODIC_LAUNCH, ns, job)              → launch_ns     a parent's latest launch
//! (st, 3 SCHED, 11 DISPATCH_TOKEN, ns, parent, token)     → child ID      idempotent dispatches
//! (st, 4 USAGE, 0 NODE, node)                             → NodeUsage
//! (st, 4 USAGE, 1 USAGE_LOG, versionstamp)                → [node]        usage changed
//! (st, 4 USAGE, 2 NODE_LOG, versionstamp)                 → [node]        node record changed
//! (st, 4 USAGE, 3 NODE_ALLOCS, node)                      → versionstamp  allocations stopped, updated, collected
//! (st, 5 CLIENT, 0 HEARTBEAT, node)                       → deadline_ns   when the node is down without a heartbeat
//! (st, 5 CLIENT, 1 HEARTBEAT_BY_DEADLINE, deadline_ns, node) → ''         heartbeats in expiry order
//! (st, 5 CLIENT, 2 NODE_COUNT)                            → i64 (atomic)  registered nodes, for the TTL
//! (st, 5 CLIENT, 3 DRAINING, node)                        → ''            nodes with a drain strategy
//! (st, 6 DUTY, name)                                      → DutyLease     who does a server duty
//! ```
//!
//! Area and sub-space numbers are part of the stored keys: never renumber, add at the end.
//! Versionstamped keys and values are blind writes, so enqueuing, signalling and logging
//! never conflict with anything.

use stead_store::Database;
use stead_store::schema::{Area, Keyspace};
use stead_store::tuple::{Subspace, Versionstamp as TupleStamp};
use stead_store::types::Version;

/// The scheduler's area: queue, leases, plan markers.
pub const AREA_SCHED: Area = Area(3);
/// Node usage records and the change logs caches follow.
pub const AREA_USAGE: Area = Area(4);
/// What clients write: heartbeats.
pub const AREA_CLIENT: Area = Area(5);
/// Leases of the server duties.
pub const AREA_DUTY: Area = Area(6);

const READY: i64 = 0;
const READY_BY_JOB: i64 = 1;
const DELAYED: i64 = 2;
const BLOCKED: i64 = 3;
const CAPACITY: i64 = 4;
const LEASE: i64 = 5;
const PLAN_DONE: i64 = 6;
const SYSTEM_JOBS: i64 = 7;
const READY_SIGNAL: i64 = 8;
const PERIODIC_JOBS: i64 = 9;
const PERIODIC_LAUNCH: i64 = 10;
const DISPATCH_TOKEN: i64 = 11;

const USAGE_NODE: i64 = 0;
const USAGE_LOG: i64 = 1;
const NODE_LOG: i64 = 2;
const NODE_ALLOCS: i64 = 3;

const HEARTBEAT: i64 = 0;
const HEARTBEAT_BY_DEADLINE: i64 = 1;
const NODE_COUNT: i64 = 2;
const DRAINING: i64 = 3;

/// A change log: which nodes changed, by commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    /// A node's `NodeUsage` changed (placements, stops, terminal allocations, node updates).
    Usage,
    /// A node's record changed.
    Node,
}

/// The 14-byte `set_versionstamped_value` parameter with the placeholder at offset 0.
pub const STAMP_VALUE_TEMPLATE: [u8; 14] = [0; 14];

/// A database and the key layout over it. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub db: Database,
    pub ks: Keyspace,
    sched: Subspace,
    usage: Subspace,
    client: Subspace,
    duty: Subspace,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.ks.root()).finish_non_exhaustive()
    }
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self::with_keyspace(db, Keyspace::default())
    }

    pub fn with_keyspace(db: Database, ks: Keyspace) -> Self {
        let sched = ks.area(AREA_SCHED);
        let usage = ks.area(AREA_USAGE);
        let client = ks.area(AREA_CLIENT);
        let duty = ks.area(AREA_DUTY);
        Self { db, ks, sched, usage, client, duty }
    }

    /// All ready entries, highest priority first, then commit order.
    pub fn ready(&self) -> Subspace {
        self.sched.subspace(&READY)
    }

    /// The template of a ready entry's key (a versionstamped key).
    pub fn ready_key_template(&self, priority: i32, eval: &str) -> Vec<u8> {
        self.ready().pack_with_versionstamp(&(-i64::from(priority), TupleStamp::incomplete(0), eval))
    }

    pub fn ready_by_job(&self, namespace: &str, job: &str) -> Subspace {
        self.sched.subspace(&(READY_BY_JOB, namespace, job))
    }

    pub fn delayed(&self) -> Subspace {
        self.sched.subspace(&DELAYED)
    }

    pub fn delayed_key(&self, wait_until_ns: i64, eval: &str) -> Vec<u8> {
        self.delayed().pack(&(wait_until_ns, eval))
    }

    pub fn blocked(&self) -> Subspace {
        self.sched.subspace(&BLOCKED)
    }

    pub fn blocked_key(&self, namespace: &str, job: &str) -> Vec<u8> {
        self.blocked().pack(&(namespace, job))
    }

    pub fn capacity_key(&self) -> Vec<u8> {
        self.sched.pack(&CAPACITY)
    }

    pub fn ready_signal_key(&self) -> Vec<u8> {
        self.sched.pack(&READY_SIGNAL)
    }

    pub fn leases(&self) -> Subspace {
        self.sched.subspace(&LEASE)
    }

    pub fn lease_key(&self, namespace: &str, job: &str) -> Vec<u8> {
        self.leases().pack(&(namespace, job))
    }

    pub fn plan_done(&self, eval: &str) -> Subspace {
        self.sched.subspace(&(PLAN_DONE, eval))
    }

    pub fn plan_done_key(&self, eval: &str, token: &str, chunk: usize) -> Vec<u8> {
        self.plan_done(eval).pack(&(token, chunk as i64))
    }

    pub fn system_jobs(&self) -> Subspace {
        self.sched.subspace(&SYSTEM_JOBS)
    }

    pub fn system_job_key(&self, namespace: &str, job: &str) -> Vec<u8> {
        self.system_jobs().pack(&(namespace, job))
    }

    pub fn periodic_jobs(&self) -> Subspace {
        self.sched.subspace(&PERIODIC_JOBS)
    }

    pub fn periodic_job_key(&self, namespace: &str, job: &str) -> Vec<u8> {
        self.periodic_jobs().pack(&(namespace, job))
    }

    pub fn periodic_launch_key(&self, namespace: &str, job: &str) -> Vec<u8> {
        self.sched.pack(&(PERIODIC_LAUNCH, namespace, job))
    }

    pub fn dispatch_token_key(&self, namespace: &str, parent: &str, token: &str) -> Vec<u8> {
        self.sched.pack(&(DISPATCH_TOKEN, namespace, parent, token))
    }

    pub fn usages(&self) -> Subspace {
        self.usage.subspace(&USAGE_NODE)
    }

    pub fn usage_key(&self, node: &str) -> Vec<u8> {
        self.usages().pack(&node)
    }

    pub fn log(&self, log: Log) -> Subspace {
        self.usage.subspace(&match log {
            Log::Usage => USAGE_LOG,
            Log::Node => NODE_LOG,
        })
    }

    /// Stamped (a versionstamped value) by a transaction that stops, updates or deletes
    /// the node's allocations (whose usage record may stay as it was); allocation watches
    /// wait on it and on the usage record, which placements change.
    pub fn node_allocs_key(&self, node: &str) -> Vec<u8> {
        self.usage.pack(&(NODE_ALLOCS, node))
    }

    pub fn heartbeat_key(&self, node: &str) -> Vec<u8> {
        self.client.pack(&(HEARTBEAT, node))
    }

    pub fn heartbeats_by_deadline(&self) -> Subspace {
        self.client.subspace(&HEARTBEAT_BY_DEADLINE)
    }

    pub fn heartbeat_deadline_key(&self, deadline_ns: i64, node: &str) -> Vec<u8> {
        self.heartbeats_by_deadline().pack(&(deadline_ns, node))
    }

    pub fn draining_nodes(&self) -> Subspace {
        self.client.subspace(&DRAINING)
    }

    pub fn draining_node_key(&self, node: &str) -> Vec<u8> {
        self.draining_nodes().pack(&node)
    }

    pub fn node_count_key(&self) -> Vec<u8> {
        self.client.pack(&NODE_COUNT)
    }

    pub fn duty_key(&self, name: &str) -> Vec<u8> {
        self.duty.pack(&name)
    }

    /// The template of a log entry's key; entries written by one transaction differ in
    /// `part`.
    pub fn log_key_template(&self, log: Log, part: u16) -> Vec<u8> {
        self.log(log).pack_with_versionstamp(&(TupleStamp::incomplete(part),))
    }

    /// `[begin, end)` of the log entries committed after `version`.
    pub fn log_after(&self, log: Log, version: Version) -> (Vec<u8>, Vec<u8>) {
        let next = stead_store::Versionstamp::new(version.saturating_add(1), 0);
        let begin = self.log(log).pack(&(TupleStamp::complete(next.0, 0),));
        (begin, self.log(log).range().1)
    }

    /// The commit version of a log entry's key.
    pub fn log_entry_version(&self, log: Log, key: &[u8]) -> Option<Version> {
        let (stamp,): (TupleStamp,) = self.log(log).unpack(key).ok()?;
        let mut v = [0u8; 8];
        v.copy_from_slice(&stamp.transaction_version()[..8]);
        Some(i64::from_be_bytes(v))
    }
}
