//! Allocations, evaluations, nodes, and the agent's own endpoints (`status/leader`,
//! `agent/self`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use serde_json::Value;
use serde_json::json as j;
use stead_server::reads::{self, tables};

use super::{ApiState, HttpError, HttpResult, Params, block, body_json, json, member};

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/v1/allocations", get(allocations))
        .route("/v1/allocation/{id}", get(allocation))
        .route("/v1/allocation/{id}/stop", post(allocation_stop).put(allocation_stop))
        .route("/v1/evaluations", get(evaluations))
        .route("/v1/evaluation/{id}", get(evaluation))
        .route("/v1/evaluation/{id}/allocations", get(evaluation_allocations))
        .route("/v1/nodes", get(nodes))
        .route("/v1/node/{id}", get(node))
        .route("/v1/node/{id}/allocations", get(node_allocations))
        .route("/v1/node/{id}/drain", post(node_drain).put(node_drain))
        .route("/v1/node/{id}/eligibility", post(node_eligibility).put(node_eligibility))
        .route("/v1/node/{id}/purge", post(node_purge).put(node_purge))
        .route("/v1/node/{id}/evaluate", post(node_evaluate).put(node_evaluate))
        .route("/v1/deployments", get(deployments))
        .route("/v1/deployment/allocations/{id}", get(deployment_allocations))
        .route("/v1/deployment/{action}/{id}", post(deployment_action).put(deployment_action))
        .route("/v1/deployment/{id}", get(deployment))
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

async fn allocation_stop(State(api): State<Arc<ApiState>>, Path(id): Path<String>, Query(q): Q) -> HttpResult {
    let q = Params(q);
    let r = stead_server::allocs::stop(&api.store, &api.env, q.namespace(), &id).await?;
    json(r.index, &j!({"EvalID": r.eval_id.as_str(), "Index": r.index}))
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

fn node_update_answer(r: &stead_server::nodes::NodeUpdated) -> HttpResult {
    let ids: Vec<&str> = r.eval_ids.iter().map(|e| e.as_str()).collect();
    json(
        r.index,
        &j!({
            "EvalIDs": ids,
            "EvalCreateIndex": if ids.is_empty() { 0 } else { r.index },
            "NodeModifyIndex": r.index,
            "Index": r.index,
        }),
    )
}

/// `POST /v1/node/:id/drain`: `{"DrainSpec": {"Deadline": ns, "IgnoreSystemJobs": b} |
/// null, "MarkEligible": b}`. An empty body is python-nomad's pre-0.8 form, which Nomad
/// refuses the same way.
async fn node_drain(State(api): State<Arc<ApiState>>, Path(id): Path<String>, body: Bytes) -> HttpResult {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::bad_request(
            "Request body is empty: send {\"DrainSpec\": {...}} or {\"DrainSpec\": null}",
        ));
    }
    let value = body_json(&body)?;
    let spec = match member(&value, "DrainSpec") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            stead_store::model::from_api_value::<stead_store::model::DrainSpec>(v.clone())
                .map_err(|e| HttpError::bad_request(format!("request body: DrainSpec{e}")))?,
        ),
    };
    let mark_eligible = match member(&value, "MarkEligible") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(HttpError::bad_request(format!("request body: MarkEligible must be a boolean, not {other}")));
        }
    };
    let r = stead_server::nodes::set_drain(&api.store, &api.env, &id, spec, mark_eligible).await?;
    node_update_answer(&r)
}

/// `POST /v1/node/:id/eligibility`: `{"Eligibility": "eligible" | "ineligible"}`.
async fn node_eligibility(State(api): State<Arc<ApiState>>, Path(id): Path<String>, body: Bytes) -> HttpResult {
    let value = body_json(&body)?;
    let eligible = match member(&value, "Eligibility").and_then(Value::as_str) {
        Some("eligible") => true,
        Some("ineligible") => false,
        Some(other) => {
            return Err(HttpError::bad_request(format!(
                "invalid scheduling eligibility {other:?}: eligible or ineligible"
            )));
        }
        None => return Err(HttpError::bad_request("request body: Eligibility is missing (eligible or ineligible)")),
    };
    let r = stead_server::nodes::set_eligibility(&api.store, &api.env, &id, eligible).await?;
    node_update_answer(&r)
}

async fn node_purge(State(api): State<Arc<ApiState>>, Path(id): Path<String>) -> HttpResult {
    let r = stead_server::nodes::purge(&api.store, &api.env, &id).await?;
    node_update_answer(&r)
}

async fn node_evaluate(State(api): State<Arc<ApiState>>, Path(id): Path<String>) -> HttpResult {
    let r = stead_server::nodes::evaluate(&api.store, &api.env, &id).await?;
    node_update_answer(&r)
}

async fn deployments(State(api): State<Arc<ApiState>>, Query(q): Q) -> HttpResult {
    let q = Params(q);
    block(&api, &q, tables::DEPLOYMENTS).await?;
    let r = reads::list_deployments(&api.store, q.namespace(), q.prefix()).await?;
    json(r.index, &r.value)
}

async fn deployment(State(api): State<Arc<ApiState>>, Path(id): Path<String>, Query(q): Q) -> HttpResult {
    let q = Params(q);
    block(&api, &q, tables::DEPLOYMENTS).await?;
    let r = reads::deployment(&api.store, q.namespace(), &id).await?;
    json(r.index, &r.value)
}

async fn deployment_allocations(State(api): State<Arc<ApiState>>, Path(id): Path<String>, Query(q): Q) -> HttpResult {
    let q = Params(q);
    block(&api, &q, tables::ALLOCS).await?;
    let r = reads::deployment_allocations(&api.store, q.namespace(), &id).await?;
    json(r.index, &reads::alloc_stubs(&r.value, false))
}

/// Promote, fail, pause, allocation-health and unblock change deployments, which the
/// deployment watcher drives; until it exists they are refused, naming what is missing.
async fn deployment_action(Path((action, id)): Path<(String, String)>) -> HttpResult {
    match action.as_str() {
        "promote" | "fail" | "pause" | "allocation-health" | "unblock" => Err(HttpError::bad_request(format!(
            "deployment {action} is not supported yet: stead does not run deployments (rolling, canary and blue/green updates) yet, so deployment {id} cannot be changed"
        ))),
        _ => Err(HttpError::not_found("Invalid URL path")),
    }
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
