//! The client protocol on the server side, without a transport (`stead-rpc`'s
//! `ClientProtocol` service calls these): registration, heartbeats, a node's view of its
//! allocations, and the allocation updates it reports (Nomad's `Node.Register`,
//! `Node.UpdateStatus`, `Node.GetClientAllocs`, `Node.UpdateAlloc`).
//!
//! A node proves who it is with its `SecretID`: the first registration stores it, and
//! every later call must bring the same one.
//!
//! The allocation watch wakes on the node's usage record and its allocation stamp (see
//! [`watch_node_allocations`]): no key is written for it on the scheduling path.
//!
//! **Heartbeats** are records (`keys.rs`): the node's deadline and an index by deadline.
//! The TTL a node gets is Nomad's `RateScaledInterval`: `max(min_ttl, nodes /
//! max_per_second)`, so the cluster's heartbeat rate stays near `max_per_second`, plus a
//! random stagger in `[0, ttl)` so restarted nodes spread out; the deadline adds
//! `grace` for the round trip. The expiry duty (`duties::heartbeat`) marks a node down in a
//! transaction that reads its deadline serializably, and a heartbeat writes it, so when
//! the two race one of them retries and sees the other.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::Stream;
use stead_store::model::{Allocation, Job, Node, NodeStatus, SchedulingEligibility};
use stead_store::records::{self, keys as record_keys};
use stead_store::schema::{PAGE_LIMIT_MAX, PageOptions};
use stead_store::{ReadMode, Transaction};

use crate::env::Env;
use crate::error::{Result, ServerError};
use crate::keys::Store;
use crate::{allocs, nodes};

/// How heartbeats are timed (Nomad's server options of the same names).
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatConfig {
    /// The shortest TTL a node gets (Nomad's `min_heartbeat_ttl`, 10 s).
    pub min_ttl: Duration,
    /// The heartbeat rate the TTL keeps the cluster under (`max_heartbeats_per_second`, 50).
    pub max_per_second: f64,
    /// Added to the TTL before a node is marked down (`heartbeat_grace`, 10 s).
    pub grace: Duration,
    /// Every node gets this long after a server takes the expiry duty over, to heartbeat
    /// to the new holder (Nomad's `FailoverHeartbeatTTL` after a leader election, 300 s).
    pub failover_ttl: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            min_ttl: Duration::from_secs(10),
            max_per_second: 50.0,
            grace: Duration::from_secs(10),
            failover_ttl: Duration::from_secs(300),
        }
    }
}

/// The TTL for a cluster of `nodes` nodes; `draw` picks the stagger.
pub fn heartbeat_ttl(nodes: u64, config: &HeartbeatConfig, draw: u64) -> Duration {
    let per_second = if config.max_per_second > 0.0 { config.max_per_second } else { 50.0 };
    let scaled = Duration::from_secs_f64(nodes as f64 / per_second);
    let base = config.min_ttl.max(scaled);
    // A stagger in [0, base): a uniform fraction in millionths.
    let fraction = (draw % 1_000_000) as f64 / 1_000_000.0;
    base + base.mul_f64(fraction)
}

/// What a register or heartbeat answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub ttl: Duration,
    /// The commit version of the write.
    pub index: u64,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Writes `node`'s heartbeat deadline (and its index entry, replacing the old one).
async fn set_deadline(store: &Store, tx: &Transaction, node: &str, deadline_ns: i64) -> Result<()> {
    let key = store.heartbeat_key(node);
    if let Some(old) = tx.get_snapshot(&key).await?
        && let Some(old) = decode_deadline(&old)
    {
        tx.clear(&store.heartbeat_deadline_key(old, node));
    }
    tx.set(&key, &deadline_ns.to_be_bytes());
    tx.set(&store.heartbeat_deadline_key(deadline_ns, node), b"");
    Ok(())
}

/// Removes `node`'s heartbeat: it is down, or gone.
pub async fn clear_deadline(store: &Store, tx: &Transaction, node: &str) -> Result<()> {
    let key = store.heartbeat_key(node);
    if let Some(old) = tx.get(&key).await?
        && let Some(old) = decode_deadline(&old)
    {
        tx.clear(&store.heartbeat_deadline_key(old, node));
    }
    tx.clear(&key);
    Ok(())
}

pub fn decode_deadline(bytes: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(bytes.try_into().ok()?))
}

async fn node_count(store: &Store, tx: &Transaction) -> Result<u64> {
    let bytes = tx.get_snapshot(&store.node_count_key()).await?;
    Ok(bytes.and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok()).map_or(0, |b| i64::from_le_bytes(b).max(0) as u64))
}

/// Adds `delta` to the registered-node count (blind: never conflicts).
pub fn count_nodes(store: &Store, tx: &Transaction, delta: i64) {
    tx.atomic_add(&store.node_count_key(), delta);
}

fn check_secret(node: &Node, secret_id: &str) -> Result<()> {
    if node.secret_id.is_empty() || node.secret_id == secret_id {
        Ok(())
    } else {
        Err(ServerError::Unauthorized(format!("node {}: the secret ID does not match the registered node", node.id)))
    }
}

/// Checks what a client registers: the fields the servers rely on.
fn check_registration(node: &Node) -> Result<()> {
    let mut missing = Vec::new();
    if node.id.as_str().is_empty() {
        missing.push("ID");
    }
    if node.secret_id.is_empty() {
        missing.push("SecretID");
    }
    if node.datacenter.is_empty() {
        missing.push("Datacenter");
    }
    if node.name.is_empty() {
        missing.push("Name");
    }
    if !missing.is_empty() {
        return Err(ServerError::Invalid(format!("node registration: missing {}", missing.join(", "))));
    }
    if node.id.as_str().len() > 128 || node.secret_id.len() > 128 {
        return Err(ServerError::Invalid("node registration: ID and SecretID are at most 128 bytes".to_owned()));
    }
    Ok(())
}

/// Registers `node` (or updates it: same ID and secret) and starts its heartbeat clock.
/// Fields the servers own are kept from the stored record: drain, eligibility, events.
pub async fn register(store: &Store, env: &Env, config: &HeartbeatConfig, node: Node) -> Result<Heartbeat> {
    check_registration(&node)?;
    let draw = env.entropy.next_u64();
    let now = env.now_ns();
    let committed = store
        .db
        .run_committed(|tx, _| {
            let mut node = node.clone();
            async move {
                let old =
                    store.ks.get::<Node>(&tx, &record_keys::node(node.id.as_str()), ReadMode::Serializable).await?;
                match &old {
                    Some(old) => {
                        check_secret(old, &node.secret_id)?;
                        node.drain = old.drain;
                        node.drain_strategy.clone_from(&old.drain_strategy);
                        node.scheduling_eligibility = old.scheduling_eligibility.clone();
                        node.events.clone_from(&old.events);
                        node.last_drain.clone_from(&old.last_drain);
                        if old.status != node.status {
                            let message = format!("Node registered again: {} -> {}", old.status, node.status);
                            nodes::push_event(&mut node, "Cluster", message, now);
                        }
                    }
                    None => {
                        node.scheduling_eligibility = SchedulingEligibility::Eligible;
                        nodes::push_event(&mut node, "Cluster", "Node registered", now);
                        count_nodes(store, &tx, 1);
                    }
                }
                node.status_updated_at = now / 1_000_000_000;
                let ttl = heartbeat_ttl(node_count(store, &tx).await? + u64::from(old.is_none()), config, draw);
                set_deadline(store, &tx, node.id.as_str(), now.saturating_add(nanos(ttl + config.grace))).await?;
                nodes::upsert_in(store, &tx, env, &node, Some(old)).await?;
                Ok::<_, ServerError>(ttl)
            }
        })
        .await?;
    Ok(Heartbeat { ttl: committed.value, index: u64::try_from(committed.commit.version).unwrap_or(0) })
}

/// A node's heartbeat: moves its deadline; a node that was marked down is ready again.
pub async fn heartbeat(
    store: &Store,
    env: &Env,
    config: &HeartbeatConfig,
    node_id: &str,
    secret_id: &str,
) -> Result<Heartbeat> {
    let draw = env.entropy.next_u64();
    let now = env.now_ns();
    let committed = store
        .db
        .run_committed(|tx, _| async move {
            let Some(mut node) = store.ks.get::<Node>(&tx, &record_keys::node(node_id), ReadMode::Serializable).await?
            else {
                return Err(ServerError::NotFound(format!("node {node_id} is not registered")));
            };
            check_secret(&node, secret_id)?;
            let ttl = heartbeat_ttl(node_count(store, &tx).await?, config, draw);
            set_deadline(store, &tx, node_id, now.saturating_add(nanos(ttl + config.grace))).await?;
            if node.status != NodeStatus::Ready {
                let was = node.status.clone();
                node.status = NodeStatus::Ready;
                node.status_updated_at = now / 1_000_000_000;
                nodes::push_event(&mut node, "Cluster", format!("Node heartbeat received: {was} -> ready"), now);
                nodes::upsert_in(store, &tx, env, &node, None).await?;
            }
            Ok::<_, ServerError>(ttl)
        })
        .await?;
    Ok(Heartbeat { ttl: committed.value, index: u64::try_from(committed.commit.version).unwrap_or(0) })
}

/// A message of a node's allocation watch: the whole set first, then what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeAllocations {
    /// The read version: later changes are after it.
    pub index: u64,
    /// Whether `allocs` is every allocation on the node (a watch's first message) or only
    /// those new or changed since the watch's previous message.
    pub full: bool,
    /// Allocations, each with the job version it runs (`Job`), when that version is still
    /// stored.
    pub allocs: Vec<Allocation>,
    /// IDs of allocations gone from the node (collected) since the previous message.
    pub removed: Vec<String>,
}

async fn authorized_node(store: &Store, tx: &Transaction, node_id: &str, secret_id: &str) -> Result<Node> {
    let node = store
        .ks
        .get::<Node>(tx, &record_keys::node(node_id), ReadMode::Snapshot)
        .await?
        .ok_or_else(|| ServerError::NotFound(format!("node {node_id} is not registered")))?;
    check_secret(&node, secret_id)?;
    Ok(node)
}

/// The node's allocations in `tx` (without their jobs: see [`with_jobs`]).
async fn node_allocations_in(store: &Store, tx: &Transaction, node_id: &str) -> Result<Vec<Allocation>> {
    let mut allocs = Vec::new();
    let mut next = None;
    loop {
        let page = PageOptions::new(PAGE_LIMIT_MAX).after(next).read_mode(ReadMode::Snapshot);
        let p = records::allocs_by_node(&store.ks, tx, node_id, &page).await?;
        allocs.extend(p.items);
        next = p.next;
        if next.is_none() {
            return Ok(allocs);
        }
    }
}

/// `allocs`, each with the job version it runs (None when that version is gone).
async fn with_jobs(store: &Store, tx: &Transaction, mut allocs: Vec<Allocation>) -> Result<Vec<Allocation>> {
    let mut jobs: BTreeMap<(String, String, u64), Option<Job>> = BTreeMap::new();
    for alloc in &mut allocs {
        let key = (alloc.namespace.clone(), alloc.job_id.as_str().to_owned(), alloc.job_version);
        if !jobs.contains_key(&key) {
            let job = records::get_job_version(&store.ks, tx, &key.0, &key.1, key.2, ReadMode::Snapshot).await?;
            jobs.insert(key.clone(), job);
        }
        alloc.job = jobs[&key].clone().map(Box::new);
    }
    Ok(allocs)
}

/// What a watch waits for at most before it looks again (a lost watch costs this much).
const WATCH_WAIT_MAX: Duration = Duration::from_secs(60);

/// What a client has been sent of its allocations: each one's `AllocModifyIndex`, which
/// every server-side change of an allocation bumps (a client's own report does not).
type Sent = BTreeMap<String, u64>;

fn sent_of(allocs: &[Allocation]) -> Sent {
    allocs.iter().map(|a| (a.id.to_string(), a.alloc_modify_index)).collect()
}

/// A stream of `node_id`'s allocations: the whole set at once, then, with `changes`, what
/// changed each time the servers change some (placed, stopped, updated: those
/// allocations; collected: their IDs), or without it the whole set again (for clients that
/// do not take changes, so servers can be upgraded before their clients). Ends after the
/// first error, or when the store has failed for [`WATCH_FAILING_MAX`] (the client then
/// watches through another server). `_after_index` (the index of the last set the client
/// saw) is accepted for the protocol's sake: the first set always comes at once, since a
/// resumed watch cannot know what the client kept.
///
/// It wakes on the node's usage record (placements change it) and on the node's
/// allocation stamp (stops, updates, garbage collection), reads the node's allocations,
/// and sends when their `AllocModifyIndex`es differ from what it sent.
pub fn watch_node_allocations(
    store: Store,
    node_id: String,
    secret_id: String,
    _after_index: u64,
    changes: bool,
) -> impl Stream<Item = Result<NodeAllocations>> + Send + 'static {
    struct State {
        store: Store,
        node_id: String,
        secret_id: String,
        changes: bool,
        sent: Option<Sent>,
        done: bool,
    }
    let state = State { store, node_id, secret_id, changes, sent: None, done: false };
    futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let result = match next_allocations(&s.store, &s.node_id, &s.secret_id, s.sent.as_ref(), s.changes).await {
            Ok((item, now)) => {
                s.sent = Some(now);
                Ok(item)
            }
            Err(e) => {
                s.done = true;
                Err(e)
            }
        };
        Some((result, s))
    })
}

/// Store failures a watch rides out (retrying with backoff) instead of ending the stream
/// at once, since the client would only open a new one and be sent everything again; but
/// not forever, since a server that lost its store would hold the client's watch.
const WATCH_RETRY_MAX: Duration = Duration::from_secs(2);
pub const WATCH_FAILING_MAX: Duration = Duration::from_secs(30);

async fn next_allocations(
    store: &Store,
    node_id: &str,
    secret_id: &str,
    sent: Option<&Sent>,
    changes: bool,
) -> Result<(NodeAllocations, Sent)> {
    let mut backoff = Duration::from_millis(50);
    let mut failing_since = None;
    loop {
        match look(store, node_id, secret_id, sent, changes).await {
            Ok(Some(item)) => return Ok(item),
            Ok(None) => {
                backoff = Duration::from_millis(50);
                failing_since = None;
            }
            Err(e @ (ServerError::NotFound(_) | ServerError::Unauthorized(_))) => return Err(e),
            Err(e) => {
                let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= WATCH_FAILING_MAX {
                    tracing::warn!(node = node_id, error = %e, "allocation watch: the store keeps failing; ending the watch");
                    return Err(e);
                }
                tracing::debug!(node = node_id, error = %e, "allocation watch: store failure; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(WATCH_RETRY_MAX);
            }
        }
    }
}

/// One look: what changed since `sent` (everything when nothing was sent) and the new
/// `sent`, else None after waiting for a change (or the bound). Only what changed is
/// sent, with its job: a node with many allocations must not re-send (and its client
/// re-decode) all of them, jobs included, whenever one changes.
async fn look(
    store: &Store,
    node_id: &str,
    secret_id: &str,
    sent: Option<&Sent>,
    changes: bool,
) -> Result<Option<(NodeAllocations, Sent)>> {
    let tx = store.db.create_transaction()?;
    authorized_node(store, &tx, node_id, secret_id).await?;
    let allocs = node_allocations_in(store, &tx, node_id).await?;
    let now = sent_of(&allocs);
    if sent.is_none_or(|sent| *sent != now) {
        let index = u64::try_from(tx.get_read_version().await?).unwrap_or(0);
        let full = sent.is_none() || !changes;
        let (changed, removed) = match sent {
            Some(sent) if !full => (
                allocs.into_iter().filter(|a| sent.get(a.id.as_str()) != Some(&a.alloc_modify_index)).collect(),
                sent.keys().filter(|id| !now.contains_key(*id)).cloned().collect(),
            ),
            _ => (allocs, Vec::new()),
        };
        let allocs = with_jobs(store, &tx, changed).await?;
        return Ok(Some((NodeAllocations { index, full, allocs, removed }, now)));
    }
    let usage = tx.watch(&store.usage_key(node_id));
    let stamp = tx.watch(&store.node_allocs_key(node_id));
    tx.commit().await?;
    // A watch error (or the bound) only means: look again.
    let _ = tokio::time::timeout(WATCH_WAIT_MAX, futures::future::select(usage, stamp)).await;
    Ok(None)
}

/// The client's side of allocations, from the node that runs them: only allocations on
/// that node are applied.
pub async fn update_allocations(
    store: &Store,
    env: &Env,
    node_id: &str,
    secret_id: &str,
    updates: Vec<Allocation>,
) -> Result<usize> {
    let tx = store.db.create_transaction()?;
    authorized_node(store, &tx, node_id, secret_id).await?;
    drop(tx);
    allocs::update_from_client(store, env, Some(node_id), &updates).await
}
