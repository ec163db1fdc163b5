//! What a client needs from the servers: the client protocol, transport-free.
//!
//! `stead-rpc` implements it over gRPC for real clients; tests implement it in memory
//! over `stead-server`. Every call may fail with [`LinkError::Unavailable`] (no server
//! answers, or the answer was lost): the client retries with backoff, and every call is
//! safe to repeat (registering the same node again, re-sending the same allocation
//! update, heartbeating twice).

use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use stead_model::{Allocation, Node, NodeId};

/// What a register or heartbeat answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Heartbeat again within this long, or the node is marked down (Nomad's
    /// `HeartbeatTTL`: scaled with the number of nodes, plus a random stagger).
    pub ttl: Duration,
    /// The commit version of the write.
    pub index: u64,
}

/// One message of an allocation watch: every allocation the servers assign to the node
/// and have not garbage-collected, terminal ones included, each with the job version it
/// runs in `Allocation::job` (None only when that version was garbage-collected: keep
/// the one already known).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeAllocations {
    /// The version the set was read at; a watch resumed with it sends only later changes.
    pub index: u64,
    pub allocs: Vec<Allocation>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// No server answered, or the answer was lost: retry with backoff.
    #[error("servers unavailable: {0}")]
    Unavailable(String),
    /// The node's secret does not match the registered node: register again.
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// The servers do not know the node (purged, or the store was reset): register again.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request itself is wrong; retrying it will not help.
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// The client protocol (Nomad's `Node.Register`, `Node.UpdateStatus`,
/// `Node.GetClientAllocs`, `Node.UpdateAlloc`).
pub trait ServerLink: Send + Sync + 'static {
    /// Registers `node` (or updates it: same ID, same secret) and returns the heartbeat
    /// TTL. The node's `status` is what the client reports (`ready`, or `initializing`).
    fn register(&self, node: Node) -> BoxFuture<'_, Result<Heartbeat, LinkError>>;

    /// Tells the servers the node is alive; returns the TTL to heartbeat within. A node
    /// marked down for missing heartbeats becomes ready again.
    fn heartbeat(&self, node_id: NodeId, secret_id: String) -> BoxFuture<'_, Result<Heartbeat, LinkError>>;

    /// A stream of the node's allocations: the first message at once (everything
    /// assigned), then one each time the servers change one of them. It ends with an
    /// error when the link breaks; the client opens a new watch with the last index it
    /// saw, and takes a set it has seen already as a no-op.
    fn watch_allocations(
        &self,
        node_id: NodeId,
        secret_id: String,
        after_index: u64,
    ) -> BoxStream<'static, Result<NodeAllocations, LinkError>>;

    /// Reports the client's side of allocations: `ClientStatus`, `ClientDescription`,
    /// `TaskStates` (with their events), `DeploymentStatus`, `NetworkStatus`. Only those
    /// fields are read; `ID` and `Namespace` name the allocation. Idempotent.
    fn update_allocations(
        &self,
        node_id: NodeId,
        secret_id: String,
        updates: Vec<Allocation>,
    ) -> BoxFuture<'_, Result<(), LinkError>>;
}

/// How long the client waits before retrying a failed call: doubling from `base` up
/// to `max`.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    base.saturating_mul(1u32 << attempt.min(16)).min(max)
}
