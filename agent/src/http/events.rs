//! `GET /v1/event/stream`: the event log as newline-delimited JSON, one line per commit
//! (`{"Index": n, "Events": [...]}`), resumable from an index, filtered by `topic=Topic:Key`
//! (repeatable) and `namespace`, with a `{}` heartbeat line every 30 s while nothing
//! happens (Nomad's interval). Every line is one JSON value (python-nomad parses each).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use stead_server::duties::gc;
use stead_server::events::{self, Filter};

use super::{ApiState, HttpError, HttpResult};

/// A heartbeat line goes out after this long without events.
const HEARTBEAT: Duration = Duration::from_secs(30);

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/v1/event/stream", get(stream)).route("/v1/system/gc", put(system_gc).post(system_gc))
}

async fn stream(State(api): State<Arc<ApiState>>, Query(q): Query<Vec<(String, String)>>) -> HttpResult {
    let mut index = 0u64;
    let mut topics = Vec::new();
    let mut namespace = "default".to_owned();
    for (k, v) in &q {
        match k.as_str() {
            "index" => {
                index = v
                    .parse()
                    .map_err(|_| HttpError::bad_request(format!("query parameter \"index\": {v:?} is not an index")))?;
            }
            "topic" => topics.push(v.clone()),
            "namespace" if !v.is_empty() => namespace.clone_from(v),
            _ => {}
        }
    }
    let filter = Filter::parse(&topics, &namespace)?;
    let store = api.store.clone();
    let lines = futures::stream::unfold((store, filter, index), |(store, filter, after)| async move {
        match events::next_batches(&store, after, &filter, HEARTBEAT).await {
            Ok((batches, next)) => {
                let text = if batches.is_empty() {
                    "{}\n".to_owned()
                } else {
                    batches.iter().map(|b| serde_json::to_string(b).unwrap_or_default() + "\n").collect()
                };
                Some((Ok::<_, std::io::Error>(Bytes::from(text)), (store, filter, next)))
            }
            // The stream ends; the client reconnects with the last index it saw.
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), (store, filter, after))),
        }
    });
    let mut response = (StatusCode::OK, Body::from_stream(lines)).into_response();
    response.headers_mut().insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// `PUT /v1/system/gc`: a garbage collection with every threshold at zero, run by the
/// server that holds the GC duty.
async fn system_gc(State(api): State<Arc<ApiState>>) -> HttpResult {
    gc::request(&api.store).await?;
    Ok((StatusCode::OK, "").into_response())
}
