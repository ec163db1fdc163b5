//! `GrpcServerLink`: the client's [`ServerLink`] over the servers' `ClientProtocol`.
//!
//! It knows every server's address and sticks to the one that answered last; a call that
//! finds it unavailable moves on to the next (any server can answer any call: they are
//! stateless). Channels are opened lazily and kept.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use stead_client::link::{Heartbeat, LinkError, NodeAllocations, ServerLink};
use stead_model::{Allocation, Node, NodeId};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::json;
use crate::pb::client_protocol_client::ClientProtocolClient;
use crate::pb::{self};

/// How long one call may take (a watch's messages are not bounded by it).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct GrpcServerLink {
    /// `http://host:port` of each server.
    servers: Vec<String>,
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    /// Which server to try first.
    current: usize,
    channels: Vec<Option<Channel>>,
}

/// Applies a watch message to the set known so far (none before the first message, which
/// must be the whole set) and returns the whole set after it.
fn apply_change(
    known: &mut Option<BTreeMap<String, Allocation>>,
    m: pb::NodeAllocations,
) -> Result<NodeAllocations, LinkError> {
    let changed = m
        .allocation_json
        .iter()
        .enumerate()
        .map(|(i, b)| json::decode::<Allocation>(&format!("allocation_json[{i}]"), b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|s| LinkError::Invalid(s.message().to_owned()))?;
    let set = match (known.as_mut(), m.full) {
        (_, true) => known.insert(BTreeMap::new()),
        (Some(set), false) => set,
        (None, false) => {
            return Err(LinkError::Invalid("the allocation watch sent a change before the whole set".to_owned()));
        }
    };
    for id in &m.removed_ids {
        set.remove(id);
    }
    for mut alloc in changed {
        // Its job version collected meanwhile: keep the one already known, if it is that
        // version.
        if alloc.job.is_none()
            && let Some(before) = set.get_mut(alloc.id.as_str())
            && before.job.as_ref().is_some_and(|j| j.version == alloc.job_version)
        {
            alloc.job = before.job.take();
        }
        set.insert(alloc.id.to_string(), alloc);
    }
    Ok(NodeAllocations { index: m.index, allocs: set.values().cloned().collect() })
}

/// A gRPC status as the client protocol's error.
pub fn link_error(s: &Status) -> LinkError {
    let message = format!("{}: {}", s.code(), s.message());
    match s.code() {
        Code::PermissionDenied | Code::Unauthenticated => LinkError::Unauthorized(message),
        Code::NotFound => LinkError::NotFound(message),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => LinkError::Invalid(message),
        _ => LinkError::Unavailable(message),
    }
}

impl GrpcServerLink {
    /// `servers`: addresses as `host:port` or `http://host:port`.
    pub fn new(servers: &[String]) -> Result<Self, LinkError> {
        if servers.is_empty() {
            return Err(LinkError::Invalid("no server addresses to connect to".to_owned()));
        }
        let servers: Vec<String> =
            servers.iter().map(|s| if s.contains("://") { s.clone() } else { format!("http://{s}") }).collect();
        for s in &servers {
            Endpoint::from_shared(s.clone()).map_err(|e| LinkError::Invalid(format!("server address {s:?}: {e}")))?;
        }
        let channels = vec![None; servers.len()];
        Ok(Self { servers, state: Mutex::new(LinkState { current: 0, channels }) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A client for server `i` (connecting if needed).
    async fn client(&self, i: usize) -> Result<ClientProtocolClient<Channel>, LinkError> {
        if let Some(ch) = self.lock().channels[i].clone() {
            return Ok(ClientProtocolClient::new(ch));
        }
        let endpoint = Endpoint::from_shared(self.servers[i].clone())
            .map_err(|e| LinkError::Invalid(format!("server address {:?}: {e}", self.servers[i])))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| LinkError::Unavailable(format!("connecting to {}: {e}", self.servers[i])))?;
        self.lock().channels[i] = Some(channel.clone());
        Ok(ClientProtocolClient::new(channel))
    }

    /// Runs `call` on the current server, then on each other one while they are
    /// unavailable; the last error when none answers.
    async fn call<T, F>(&self, call: F) -> Result<T, LinkError>
    where
        F: for<'c> Fn(&'c mut ClientProtocolClient<Channel>) -> BoxFuture<'c, Result<T, Status>>,
    {
        let start = self.lock().current;
        let mut last = LinkError::Unavailable("no server tried".to_owned());
        for k in 0..self.servers.len() {
            let i = (start + k) % self.servers.len();
            let mut client = match self.client(i).await {
                Ok(c) => c,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            match call(&mut client).await {
                Ok(v) => {
                    self.lock().current = i;
                    return Ok(v);
                }
                Err(s) => {
                    let e = link_error(&s);
                    if !matches!(e, LinkError::Unavailable(_)) {
                        return Err(e);
                    }
                    // Reconnect next time: the channel may be broken.
                    self.lock().channels[i] = None;
                    last = e;
                }
            }
        }
        Err(last)
    }
}

fn heartbeat_of(r: &pb::HeartbeatResponse) -> Heartbeat {
    Heartbeat { ttl: Duration::from_millis(r.heartbeat_ttl_ms), index: r.index }
}

impl ServerLink for GrpcServerLink {
    fn register(&self, node: Node) -> BoxFuture<'_, Result<Heartbeat, LinkError>> {
        let node_json = json::encode(&node);
        async move {
            self.call(|c| {
                let req = pb::RegisterRequest { node_json: node_json.clone() };
                async move { c.register(req).await.map(|r| heartbeat_of(r.get_ref())) }.boxed()
            })
            .await
        }
        .boxed()
    }

    fn heartbeat(&self, node_id: NodeId, secret_id: String) -> BoxFuture<'_, Result<Heartbeat, LinkError>> {
        async move {
            self.call(|c| {
                let req = pb::HeartbeatRequest { node_id: node_id.to_string(), secret_id: secret_id.clone() };
                async move { c.heartbeat(req).await.map(|r| heartbeat_of(r.get_ref())) }.boxed()
            })
            .await
        }
        .boxed()
    }

    fn watch_allocations(
        &self,
        node_id: NodeId,
        secret_id: String,
        after_index: u64,
    ) -> BoxStream<'static, Result<NodeAllocations, LinkError>> {
        let servers = self.servers.clone();
        let start = self.lock().current;
        // The stream outlives `&self`: it opens its own channel.
        let opened = async move {
            let mut last = LinkError::Unavailable("no server tried".to_owned());
            for k in 0..servers.len() {
                let addr = &servers[(start + k) % servers.len()];
                let Ok(endpoint) = Endpoint::from_shared(addr.clone()) else { continue };
                let channel = match endpoint.connect_timeout(CONNECT_TIMEOUT).connect().await {
                    Ok(ch) => ch,
                    Err(e) => {
                        last = LinkError::Unavailable(format!("connecting to {addr}: {e}"));
                        continue;
                    }
                };
                let req = pb::WatchAllocationsRequest {
                    node_id: node_id.to_string(),
                    secret_id: secret_id.clone(),
                    after_index,
                    accepts_changes: true,
                };
                match ClientProtocolClient::new(channel).watch_allocations(req).await {
                    Ok(r) => return Ok(r.into_inner()),
                    Err(s) => {
                        last = link_error(&s);
                        if !matches!(last, LinkError::Unavailable(_)) {
                            break;
                        }
                    }
                }
            }
            Err(last)
        };
        futures::stream::once(opened)
            .flat_map(|opened| match opened {
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
                // The servers send the whole set, then changes: keep the set here and
                // hand the client the whole of it each time.
                Ok(stream) => stream
                    .scan(None::<BTreeMap<String, Allocation>>, |known, item| {
                        let out = match item {
                            Err(s) => Err(link_error(&s)),
                            Ok(m) => apply_change(known, m),
                        };
                        futures::future::ready(Some(out))
                    })
                    .boxed(),
            })
            .boxed()
    }

    fn update_allocations(
        &self,
        node_id: NodeId,
        secret_id: String,
        mut updates: Vec<Allocation>,
    ) -> BoxFuture<'_, Result<(), LinkError>> {
        // Servers read only the client's fields: the job each carries is dead weight.
        for u in &mut updates {
            u.job = None;
        }
        let encoded: Vec<Vec<u8>> = updates.iter().map(json::encode).collect();
        async move {
            for chunk in encoded.chunks(crate::client_protocol::UPDATES_PER_REQUEST_MAX) {
                self.call(|c| {
                    let req = pb::UpdateAllocationsRequest {
                        node_id: node_id.to_string(),
                        secret_id: secret_id.clone(),
                        allocation_json: chunk.to_vec(),
                    };
                    async move { c.update_allocations(req).await.map(|_| ()) }.boxed()
                })
                .await?;
            }
            Ok(())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(id: &str, modify: u64, job: Option<&str>) -> Allocation {
        let mut a = Allocation { id: id.into(), alloc_modify_index: modify, ..Allocation::default() };
        a.job = job.map(|j| Box::new(stead_model::Job { id: j.into(), ..Default::default() }));
        a
    }

    fn message(full: bool, allocs: &[Allocation], removed: &[&str]) -> pb::NodeAllocations {
        pb::NodeAllocations {
            index: 1,
            allocation_json: allocs.iter().map(json::encode).collect(),
            full,
            removed_ids: removed.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn ids(set: &NodeAllocations) -> Vec<(String, u64)> {
        set.allocs.iter().map(|a| (a.id.to_string(), a.alloc_modify_index)).collect()
    }

    #[test]
    fn the_client_gets_the_whole_set_after_each_change_the_servers_send() {
        let mut known = None;
        let first =
            apply_change(&mut known, message(true, &[alloc("a", 1, Some("web")), alloc("b", 1, Some("web"))], &[]));
        assert_eq!(ids(&first.unwrap()), [("a".to_owned(), 1), ("b".to_owned(), 1)]);
        // b changes (its job version was collected meanwhile: the known job stays), c is
        // new, a is collected.
        let next = apply_change(&mut known, message(false, &[alloc("b", 2, None), alloc("c", 3, Some("api"))], &["a"]));
        let next = next.unwrap();
        assert_eq!(ids(&next), [("b".to_owned(), 2), ("c".to_owned(), 3)]);
        assert_eq!(next.allocs[0].job.as_ref().map(|j| j.id.to_string()), Some("web".to_owned()));
        // A new version of b whose job version is gone: not the old version's job.
        let mut newer = alloc("b", 5, None);
        newer.job_version = 1;
        let next = apply_change(&mut known, message(false, &[newer], &[])).unwrap();
        assert!(next.allocs[0].job.is_none(), "{:?}", next.allocs[0].job);
        // A whole set again replaces everything.
        let again = apply_change(&mut known, message(true, &[alloc("d", 4, None)], &[]));
        assert_eq!(ids(&again.unwrap()), [("d".to_owned(), 4)]);
    }

    #[test]
    fn a_change_before_the_whole_set_or_a_bad_allocation_is_refused() {
        let mut known = None;
        let err = apply_change(&mut known, message(false, &[alloc("a", 1, None)], &[])).unwrap_err();
        assert!(matches!(err, LinkError::Invalid(ref m) if m.contains("before the whole set")), "{err:?}");
        let bad =
            pb::NodeAllocations { index: 1, allocation_json: vec![b"{nope".to_vec()], full: true, removed_ids: vec![] };
        let err = apply_change(&mut known, bad).unwrap_err();
        assert!(matches!(err, LinkError::Invalid(ref m) if m.contains("allocation_json[0]")), "{err:?}");
    }
}
