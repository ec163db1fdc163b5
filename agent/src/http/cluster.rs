//! Allocations, evaluations, nodes, and the agent's own endpoints (`status/leader`,
//! `agent/self`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde_json::json as j;
use stead_server::reads::{self, tables};

use super::{ApiState, HttpResult, Params, block, json};

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/v1/allocations", get(allocations))
        .route("/v1/allocation/{id}", get(allocation))
        .route("/v1/evaluations", get(evaluations))
        .route("/v1/evaluation/{id}", get(evaluation))
        .route("/v1/evaluation/{id}/allocations", get(evaluation_allocations))
        .route("/v1/nodes", get(nodes))
        .route("/v1/node/{id}", get(node))
        .route("/v1/node/{id}/allocations", get(node_allocations))
        .route("/v1/status/leader", get(leader))
        .route("/v1/status/peers", get(peers))
        .route("/v1/agent/self", get(agent_self))
        .route("/v1/metrics", get(metrics))
}

type Q = Query<HashMap<String, String>>;

async fn allocations(State(api): State<Arc<ApiState>>, Query(q): Q) -> HttpResult {
    let q = Params(q);
    block(&api, &q, tables::ALLOCS).await?;
    let r = reads::list_allocations(&api.store, q.namespace(), q.prefix()).await?;
    json(r.index, &reads::alloc_stubs(&r.value, q.flag("resources")?))
}

async fn allocation(State(api): State<Arc<ApiState>>, Path(id): Path<String>, Query(q): Q) -> HttpResult {
    let q = Params(q);
    block(&api, &q, tables::ALLOCS).await?;
    let r = reads::allocation(&api.store, q.namespace(), &id).await?;
    json(r.index, &r.value)
}

async fn evaluations(State(api): State<Arc<ApiState>>, Query(q): Q) -> HttpResult {
    let q = Params(q);
    block(&api, &q, tables::EVALS).await?;
    let r = reads::list_evaluations(&api.store, q.namespace(), q.prefix()).await?;
    json(r.index, &r.value)
}

async fn evaluation(State(api): State<Arc<ApiState>>, Path(id): Path<String>, Query(q): Q) -> HttpResult {
    let q = Params(q);
    block(&api, &q, tables::EVALS).await?;
    let r = reads::evaluation(&api.store, q.namespace(), &id).await?;
    json(r.index, &r.value)
}

async fn evaluation_allocations(State(api): State<Arc<ApiState>>, Path(id): Path<String>, Query(q): Q) -> HttpResult {
    let q = Params(q);
    block(&api, &q, tables::ALLOCS).await?;
    let r = reads::evaluation_allocations(&api.store, q.namespace(), &id).await?;
    json(r.index, &reads::alloc_stubs(&r.value, false))
}

async fn nodes(State(api): State<Arc<ApiState>>, Query(q): Q) -> HttpResult {
    let q = Params(q);
    block(&api, &q, tables::NODES).await?;
    let r = reads::list_nodes(&api.store, q.prefix()).await?;
    json(r.index, &r.value)
}

async fn node(State(api): State<Arc<ApiState>>, Path(id): Path<String>, Query(q): Q) -> HttpResult {
    block(&api, &Params(q), tables::NODES).await?;
    let r = reads::node(&api.store, &id).await?;
    json(r.index, &r.value)
}

async fn node_allocations(State(api): State<Arc<ApiState>>, Path(id): Path<String>, Query(q): Q) -> HttpResult {
    block(&api, &Params(q), tables::ALLOCS).await?;
    let r = reads::node_allocations(&api.store, &id).await?;
    json(r.index, &r.value)
}

/// There is no leader: every server answers for the cluster. Nomad clients ask for one
/// before they trust a cluster, so each server names itself.
async fn leader(State(api): State<Arc<ApiState>>) -> HttpResult {
    json(0, &api.server_addr)
}

async fn peers(State(api): State<Arc<ApiState>>) -> HttpResult {
    json(0, &[&api.server_addr])
}

/// `format=prometheus`: Prometheus' text format; otherwise Nomad's JSON.
async fn metrics(State(api): State<Arc<ApiState>>, Query(q): Q) -> HttpResult {
    use axum::response::IntoResponse;
    let registry = &api.registry;
    match Params(q).get("format") {
        Some("prometheus") => {
            let text = stead_server::metrics::prometheus_text(registry);
            Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
        }
        None | Some("") => {
            let now = stead_store::model::time::format_rfc3339_nanos(api.env.now_ns());
            json(0, &stead_server::metrics::nomad_json(registry, &now))
        }
        Some(other) => Err(super::HttpError::bad_request(format!(
            "query parameter \"format\": {other:?} is not a metrics format (prometheus, or none for JSON)"
        ))),
    }
}

async fn agent_self(State(api): State<Arc<ApiState>>) -> HttpResult {
    let (addr, port) = api.server_addr.rsplit_once(':').unwrap_or((api.server_addr.as_str(), ""));
    json(
        0,
        &j!({
            "config": {
                "Region": api.region,
                "Datacenter": api.datacenter,
                "NodeName": api.node_name,
                "Version": {"Version": env!("CARGO_PKG_VERSION"), "VersionMetadata": "stead"},
                "Server": {"Enabled": true},
                "ACL": {"Enabled": false},
            },
            "member": {
                "Name": format!("{}.{}", api.node_name, api.region),
                "Addr": addr,
                "Port": port.parse::<u16>().unwrap_or(0),
                "Status": "alive",
                "Tags": {"role": "nomad", "region": api.region, "dc": api.datacenter, "build": env!("CARGO_PKG_VERSION")},
            },
            "stats": {},
        }),
    )
}
