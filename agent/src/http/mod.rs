//! Nomad's HTTP API (`/v1/...`) over `stead_server`: routing, query parameters, request
//! bodies, errors and the listener. Handlers are thin: they parse the request, call the
//! transport-free operations of `stead_server` (the simulator calls the same ones), and
//! write Nomad's JSON shapes, status codes and `X-Nomad-Index` headers.
//!
//! Errors are plain text with Nomad's codes: 400 for a bad request (what and where are in
//! the message), 404 for an unknown ID or path, 405 for a wrong method, 413 for a body over
//! the limit, 500 for the rest (as Nomad, a failed `EnforceIndex` check too).
//!
//! Not built under madsim: the simulator drives `stead_server` directly.

mod cluster;
mod events;
mod jobs;
mod logs;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use stead_server::{Env, ServerError, Store};

/// What every handler shares.
pub struct ApiState {
    pub store: Store,
    pub env: Env,
    /// The scheduler configuration and seed `job plan` runs the core with.
    pub sched: stead_sched::SchedConfig,
    pub cluster_seed: u64,
    /// This agent's server address as `status/leader` reports it (there is no leader: any
    /// server answers for the cluster).
    pub server_addr: String,
    pub region: String,
    pub datacenter: String,
    pub node_name: String,
    /// The process's metrics (`/v1/metrics`).
    pub registry: stead_server::metrics::Registry,
    /// The one authorization point every request passes (`stead_server::acl`).
    pub acl: stead_server::acl::Authorizer,
    /// The cluster view `job plan` schedules on, kept between plans.
    pub plan_cache: Arc<tokio::sync::Mutex<stead_server::snapshot::ClusterCache>>,
}

/// The `/v1` routes, each behind the authorization point.
pub fn router(state: Arc<ApiState>, body_limit: usize) -> Router {
    Router::new()
        .merge(jobs::routes())
        .merge(cluster::routes())
        .merge(logs::routes())
        .merge(events::routes())
        .fallback(|| async { HttpError::not_found("Invalid URL path") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), authorize))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Every request's token and capability through `stead_server::acl` (403 `Permission
/// denied`, as Nomad, when refused).
async fn authorize(
    axum::extract::State(api): axum::extract::State<Arc<ApiState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use stead_server::acl;
    let decision = {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        let token = acl::token_of(header("X-Nomad-Token"), header("Authorization"));
        let namespace = request
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("namespace=")))
            .filter(|n| !n.is_empty())
            .unwrap_or("default");
        let capability = acl::capability_of(request.method().as_str(), request.uri().path());
        api.acl.decide(&acl::Request { token, namespace, capability })
    };
    match decision {
        acl::Decision::Allow => next.run(request).await,
        acl::Decision::Deny(why) => {
            tracing::debug!(%why, path = %request.uri().path(), "request refused");
            HttpError { status: StatusCode::FORBIDDEN, message: "Permission denied".to_owned() }.into_response()
        }
    }
}

/// An error answer: a status and a plain-text message.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    message: String,
}

impl HttpError {
    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> HttpError {
        HttpError { status: StatusCode::NOT_FOUND, message: message.into() }
    }

    pub fn internal(message: impl Into<String>) -> HttpError {
        HttpError { status: StatusCode::INTERNAL_SERVER_ERROR, message: message.into() }
    }

    pub fn method_not_allowed() -> HttpError {
        HttpError { status: StatusCode::METHOD_NOT_ALLOWED, message: "Invalid method".into() }
    }
}

impl From<ServerError> for HttpError {
    fn from(e: ServerError) -> HttpError {
        let status = match &e {
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::Invalid(_) => StatusCode::BAD_REQUEST,
            ServerError::Unauthorized(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        HttpError { status, message: e.to_string() }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut message = self.message;
        message.push('\n');
        (self.status, [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], message).into_response()
    }
}

pub type HttpResult = Result<Response, HttpError>;

/// A JSON answer with Nomad's index headers.
pub fn json<T: Serialize>(index: u64, value: &T) -> HttpResult {
    let body = serde_json::to_vec(value).map_err(|e| HttpError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("encoding the response: {e}"),
    })?;
    let mut headers = HeaderMap::new();
    headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("X-Nomad-Index", HeaderValue::from(index.max(1)));
    headers.insert("X-Nomad-KnownLeader", HeaderValue::from_static("true"));
    headers.insert("X-Nomad-LastContact", HeaderValue::from_static("0"));
    Ok((StatusCode::OK, headers, body).into_response())
}

/// Query parameters, with Nomad's defaults and python-nomad's spellings of booleans.
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `namespace`, "default" when not given; `*` means every namespace.
    pub fn namespace(&self) -> &str {
        self.get("namespace").filter(|n| !n.is_empty()).unwrap_or("default")
    }

    pub fn prefix(&self) -> &str {
        self.get("prefix").unwrap_or("")
    }

    /// A boolean parameter: absent is false; what Go's `strconv.ParseBool` takes (`true`,
    /// `True`, `TRUE`, `t`, `T`, `1` and the false ones; python-nomad sends `True`), and a
    /// bare `?name` (true); anything else is a 400 naming the parameter.
    pub fn flag(&self, name: &str) -> Result<bool, HttpError> {
        match self.get(name) {
            None => Ok(false),
            Some("" | "1" | "t" | "T" | "true" | "True" | "TRUE") => Ok(true),
            Some("0" | "f" | "F" | "false" | "False" | "FALSE") => Ok(false),
            Some(v) => Err(HttpError::bad_request(format!(
                "query parameter {name:?}: {v:?} is not a boolean (true, false, 1 or 0)"
            ))),
        }
    }
}

/// Blocking queries wait at most this long by default (`wait` absent), as Nomad.
const WAIT_DEFAULT: Duration = Duration::from_secs(5 * 60);
/// And never longer than this.
const WAIT_MAX: Duration = Duration::from_secs(10 * 60);

/// A blocking query (`?index=N[&wait=D]`): waits until a record of `kinds` changes in a
/// commit after N, or D passes (default 5m, at most 10m, plus up to D/16 of random
/// jitter, as Nomad); the handler then reads and answers as usual. Without `index`,
/// returns at once.
pub async fn block(api: &ApiState, q: &Params, kinds: &[stead_store::schema::Kind]) -> Result<(), HttpError> {
    let Some(index) = q.get("index") else {
        return Ok(());
    };
    let index: u64 = index
        .parse()
        .map_err(|_| HttpError::bad_request(format!("query parameter \"index\": {index:?} is not an index")))?;
    let wait = match q.get("wait") {
        None | Some("") => WAIT_DEFAULT,
        Some(w) => parse_go_duration(w)
            .map_err(|why| HttpError::bad_request(format!("query parameter \"wait\": {w:?}: {why}")))?,
    }
    .min(WAIT_MAX);
    let jitter = wait / 16;
    let jitter = if jitter.is_zero() {
        Duration::ZERO
    } else {
        Duration::from_nanos(api.env.entropy.next_u64() % jitter.as_nanos().max(1) as u64)
    };
    stead_server::reads::wait_for_change(&api.store, kinds, index, wait + jitter).await?;
    Ok(())
}

/// A duration as Go's `time.ParseDuration` writes it (`300ms`, `1.5s`, `5m`, `1h10m`):
/// the model's parser, refusing negative durations.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let nanos: stead_store::model::Nanos = text.parse()?;
    nanos.to_std().ok_or_else(|| format!("invalid duration {text:?}: must not be negative"))
}

/// Reads a JSON request body: empty bodies are `{}` where Nomad tolerates them; a syntax
/// error says where.
pub fn body_json(body: &[u8]) -> Result<serde_json::Value, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_slice(body).map_err(|e| {
        HttpError::bad_request(format!("request body: invalid JSON at line {}, column {}: {e}", e.line(), e.column()))
    })
}

/// A member of a JSON object, its name matched without regard to case (as Nomad's decoder).
pub fn member<'a>(value: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    value.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

#[cfg(test)]
mod tests;
