//! `GET /v1/client/fs/logs/:alloc`: a task's stdout or stderr, read from the client that
//! runs the allocation over its `ClientFs` gRPC service (Nomad's servers forward the same
//! request to the node). Frames are Nomad's: `{"File", "Offset", "Data" (base64)}` JSON
//! objects back to back with no separator, or with `plain=true` the raw bytes. Without
//! `follow` the answer ends at the log's current end.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use futures::StreamExt;
use stead_rpc::client_fs::{self, LogError, LogsQuery};
use stead_server::reads;

use super::{ApiState, HttpError, HttpResult, Params};

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/v1/client/fs/logs/{alloc}", get(logs))
}

fn log_error(e: LogError) -> HttpError {
    match e {
        LogError::NotFound(m) => HttpError::not_found(m),
        LogError::Invalid(m) => HttpError::bad_request(m),
        LogError::Unavailable(m) => HttpError::internal(m),
    }
}

async fn logs(
    State(api): State<Arc<ApiState>>,
    Path(alloc_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> HttpResult {
    let q = Params(q);
    let alloc = reads::allocation(&api.store, q.namespace(), &alloc_id).await?.value;
    let task = match q.get("task").filter(|t| !t.is_empty()) {
        Some(t) => t.to_owned(),
        None => return Err(HttpError::bad_request("must include task name (query parameter \"task\")")),
    };
    let stderr = match q.get("type").unwrap_or("stdout") {
        "stdout" => false,
        "stderr" => true,
        other => return Err(HttpError::bad_request(format!("query parameter \"type\": {other:?}: stdout or stderr"))),
    };
    let from_end = match q.get("origin").unwrap_or("start") {
        "start" | "" => false,
        "end" => true,
        other => return Err(HttpError::bad_request(format!("query parameter \"origin\": {other:?}: start or end"))),
    };
    let offset = match q.get("offset") {
        None | Some("") => 0,
        Some(o) => o
            .parse::<i64>()
            .map_err(|_| HttpError::bad_request(format!("query parameter \"offset\": {o:?} is not a number")))?,
    };
    if offset < 0 {
        return Err(HttpError::bad_request("query parameter \"offset\": must not be negative"));
    }
    let (follow, plain) = (q.flag("follow")?, q.flag("plain")?);
    let node = reads::node_with_secret(&api.store, alloc.node_id.as_str()).await.map_err(|_| {
        HttpError::not_found(format!("the node {} of allocation {alloc_id} is not registered", alloc.node_id))
    })?;
    let Some(addr) = node.attributes.get(client_fs::RPC_ADDR_ATTRIBUTE) else {
        return Err(HttpError::internal(format!("node {} does not say where its client listens", node.id)));
    };
    let query = LogsQuery { alloc_id: alloc.id.to_string(), task, stderr, from_end, offset: offset as u64, follow };
    let frames = client_fs::stream_logs(addr, query).await.map_err(log_error)?;
    let body = frames.map(move |f| match f {
        Ok(f) if plain => Ok::<_, std::io::Error>(axum::body::Bytes::from(f.data)),
        Ok(f) => {
            let frame = serde_json::json!({
                "File": f.file,
                "Offset": f.offset,
                "Data": base64::engine::general_purpose::STANDARD.encode(&f.data),
            });
            Ok(axum::body::Bytes::from(frame.to_string()))
        }
        Err(e) => Err(std::io::Error::other(e.to_string())),
    });
    let content_type = if plain { "text/plain; charset=utf-8" } else { "application/json" };
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    response.headers_mut().insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}
