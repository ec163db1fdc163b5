//! stead's gRPC protocols (definitions in `rpc/proto/stead/v1/`, documented there):
//!
//! * `ClientProtocol`, served by servers for clients: [`client_protocol::ClientProtocolService`]
//!   over `stead_server::clients`, and [`link::GrpcServerLink`], the client's
//!   `stead_client::link::ServerLink` over it;
//! * `ClientFs`, served by clients for servers (task logs): [`client_fs`];
//! * `Jobs`, a typed jobs API for programs: [`jobs::JobsService`].
//!
//! Built with madsim-tonic, so the same services run over the simulator's network under
//! `--cfg madsim`. Records travel as Nomad's API JSON inside the messages ([`json`]), so
//! they keep one schema, `stead-model`'s. This crate holds no logic of its own beyond
//! translating: what a call does is `stead-server`'s (or the client's).

pub mod client_fs;
pub mod client_protocol;
pub mod jobs;
pub mod link;

/// The generated messages, clients and servers of package `stead.v1`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("stead.v1");
}

use stead_server::ServerError;
use tonic::Status;

/// Records as they travel: Nomad's API JSON.
pub mod json {
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use tonic::Status;

    pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        // Model records serialize infallibly (no non-string map keys, no failing impls).
        serde_json::to_vec(value).unwrap_or_default()
    }

    /// Decodes a record, case-insensitively as Nomad's decoder; a bad one is
    /// `invalid_argument` naming `what` and where.
    pub fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, Status> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            Status::invalid_argument(format!("{what}: invalid JSON at line {}, column {}: {e}", e.line(), e.column()))
        })?;
        stead_model::from_api_value(value).map_err(|e| Status::invalid_argument(format!("{what}: {e}")))
    }
}

/// A server error as a gRPC status: the code says whether retrying can help.
pub fn status(e: ServerError) -> Status {
    use stead_store::StoreError;
    let message = e.to_string();
    match &e {
        ServerError::NotFound(_) => Status::not_found(message),
        ServerError::Invalid(_) => Status::invalid_argument(message),
        ServerError::Unauthorized(_) => Status::permission_denied(message),
        ServerError::Conflict(_) | ServerError::JobChanged { .. } => Status::failed_precondition(message),
        _ if e.as_store_error().is_some_and(|s| s.is_retryable()) => Status::unavailable(message),
        _ => Status::internal(message),
    }
}

/// The authorization point for gRPC calls: the token in the `x-nomad-token` metadata
/// entry, the capability the call needs.
pub fn authorize<T>(
    acl: &stead_server::acl::Authorizer,
    request: &tonic::Request<T>,
    namespace: &str,
    capability: stead_server::acl::Capability,
) -> Result<(), Status> {
    use stead_server::acl;
    let token = request.metadata().get("x-nomad-token").and_then(|v| v.to_str().ok());
    match acl.decide(&acl::Request { token, namespace, capability }) {
        acl::Decision::Allow => Ok(()),
        acl::Decision::Deny(_) => Err(Status::permission_denied("Permission denied")),
    }
}
