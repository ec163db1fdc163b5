//! The servers' side of the client protocol: `ClientProtocol` over
//! `stead_server::clients`.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use stead_model::{Allocation, Node};
use stead_server::clients::{self, HeartbeatConfig};
use stead_server::{Env, Store};
use tonic::{Request, Response, Status};

use crate::pb::{self, client_protocol_server::ClientProtocol};
use crate::{json, status};

/// Allocation updates one request may carry (a client batches more into several).
pub const UPDATES_PER_REQUEST_MAX: usize = stead_server::allocs::CLIENT_UPDATES_MAX;

/// The tonic service of [`ClientProtocolService`] (the simulator's generated servers carry an
/// interceptor type that tonic's do not).
#[cfg(not(madsim))]
pub type ClientProtocolServer = pb::client_protocol_server::ClientProtocolServer<ClientProtocolService>;
#[cfg(madsim)]
pub type ClientProtocolServer =
    pb::client_protocol_server::ClientProtocolServer<ClientProtocolService, tonic::codegen::IdentityInterceptor>;

pub struct ClientProtocolService {
    pub store: Store,
    pub env: Env,
    pub heartbeat: HeartbeatConfig,
}

impl ClientProtocolService {
    pub fn new(store: Store, env: Env, heartbeat: HeartbeatConfig) -> Self {
        Self { store, env, heartbeat }
    }

    /// As a tonic service, to add to a server.
    pub fn into_server(self) -> ClientProtocolServer {
        pb::client_protocol_server::ClientProtocolServer::new(self)
    }
}

fn heartbeat_response(hb: clients::Heartbeat) -> pb::HeartbeatResponse {
    pb::HeartbeatResponse { heartbeat_ttl_ms: u64::try_from(hb.ttl.as_millis()).unwrap_or(u64::MAX), index: hb.index }
}

type AllocStream = Pin<Box<dyn Stream<Item = Result<pb::NodeAllocations, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ClientProtocol for ClientProtocolService {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let node: Node = json::decode("node_json", &request.into_inner().node_json)?;
        let hb = clients::register(&self.store, &self.env, &self.heartbeat, node).await.map_err(status)?;
        Ok(Response::new(heartbeat_response(hb)))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let r = request.into_inner();
        let hb = clients::heartbeat(&self.store, &self.env, &self.heartbeat, &r.node_id, &r.secret_id)
            .await
            .map_err(status)?;
        Ok(Response::new(heartbeat_response(hb)))
    }

    type WatchAllocationsStream = AllocStream;

    async fn watch_allocations(
        &self,
        request: Request<pb::WatchAllocationsRequest>,
    ) -> Result<Response<Self::WatchAllocationsStream>, Status> {
        let r = request.into_inner();
        let stream = clients::watch_node_allocations(
            self.store.clone(),
            r.node_id,
            r.secret_id,
            r.after_index,
            r.accepts_changes,
        )
        .map(|item| {
            item.map(|a| pb::NodeAllocations {
                index: a.index,
                allocation_json: a.allocs.iter().map(json::encode).collect(),
                full: a.full,
                removed_ids: a.removed,
            })
            .map_err(status)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn update_allocations(
        &self,
        request: Request<pb::UpdateAllocationsRequest>,
    ) -> Result<Response<pb::UpdateAllocationsResponse>, Status> {
        let r = request.into_inner();
        if r.allocation_json.len() > UPDATES_PER_REQUEST_MAX {
            return Err(Status::invalid_argument(format!(
                "{} allocation updates in one request; send at most {UPDATES_PER_REQUEST_MAX}",
                r.allocation_json.len()
            )));
        }
        let updates = r
            .allocation_json
            .iter()
            .enumerate()
            .map(|(i, bytes)| json::decode::<Allocation>(&format!("allocation_json[{i}]"), bytes))
            .collect::<Result<Vec<_>, _>>()?;
        let applied = clients::update_allocations(&self.store, &self.env, &r.node_id, &r.secret_id, updates)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateAllocationsResponse { applied: u32::try_from(applied).unwrap_or(u32::MAX) }))
    }
}
