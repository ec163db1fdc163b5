//! `/v1/jobs` and `/v1/job/<id>[/<what>]`. Job IDs may contain `/` (dispatched and
//! periodic children), so `/v1/job/...` is matched whole and its known suffixes are split
//! off, as Nomad's router does.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::routing::{any, get};
use serde_json::{Value, json as j};
use stead_server::reads::{self, tables};
use stead_server::{dry_run, jobs};
use stead_store::model::{self, Job};

use super::{ApiState, HttpError, HttpResult, Params, block, body_json, json, member};

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/v1/jobs", get(list).put(register_new).post(register_new))
        .route("/v1/jobs/parse", any(parse))
        .route("/v1/job/{*rest}", any(job_path))
}

async fn list(State(api): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> HttpResult {
    let q = Params(q);
    block(&api, &q, tables::JOBS).await?;
    let read = reads::list_jobs(&api.store, q.namespace(), q.prefix()).await?;
    json(read.index, &read.value)
}

async fn register_new(
    State(api): State<Arc<ApiState>>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> HttpResult {
    register(&api, &Params(q), &body, None).await
}

/// A job from a register or plan body (`{"Job": {...}, ...}`), canonicalized and
/// validated; `path_id`: the ID the URL names, which the job must carry.
fn job_of_body(body: &[u8], q: &Params, path_id: Option<&str>) -> Result<(Job, Value), HttpError> {
    let value = body_json(body)?;
    if member(&value, "Job").is_none_or(Value::is_null) {
        return Err(HttpError::bad_request("request body: Job is missing"));
    }
    let text = std::str::from_utf8(body).map_err(|e| HttpError::bad_request(format!("request body: {e}")))?;
    let job = model::job_from_api_json(text).map_err(|e| HttpError::bad_request(format!("request body: {e}")))?;
    if let Some(id) = path_id
        && job.id.as_str() != id
    {
        return Err(HttpError::bad_request(format!(
            "Job ID does not match name: the body's Job.ID is {:?}, the URL names {id:?}",
            job.id.as_str()
        )));
    }
    let job = jobs::prepare(job, q.namespace())?;
    Ok((job, value))
}

async fn register(api: &ApiState, q: &Params, body: &[u8], path_id: Option<&str>) -> HttpResult {
    let (job, value) = job_of_body(body, q, path_id)?;
    let enforce = match member(&value, "EnforceIndex") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(member(&value, "JobModifyIndex").and_then(Value::as_u64).unwrap_or(0)),
        Some(other) => {
            return Err(HttpError::bad_request(format!("request body: EnforceIndex must be a boolean, not {other}")));
        }
    };
    let r = jobs::register(&api.store, &api.env, job, enforce).await?;
    json(
        r.index,
        &j!({
            "EvalID": r.eval_id.as_ref().map(|e| e.as_str()).unwrap_or(""),
            "EvalCreateIndex": if r.eval_id.is_some() { r.index } else { 0 },
            "JobModifyIndex": r.job_modify_index,
            "Warnings": "",
            "Index": r.index,
            "LastContact": 0,
            "KnownLeader": true,
        }),
    )
}

/// `POST /v1/jobs/parse`: HCL to the job's API JSON. Evaluated on the server, so `file()`
/// and the server's environment are not available to the job file.
async fn parse(method: Method, Query(q): Query<HashMap<String, String>>, body: Bytes) -> HttpResult {
    if method != Method::POST && method != Method::PUT {
        return Err(HttpError::method_not_allowed());
    }
    let value = body_json(&body)?;
    let Some(hcl) = member(&value, "JobHCL").and_then(Value::as_str) else {
        return Err(HttpError::bad_request("request body: JobHCL is missing or not a string"));
    };
    let mut vars = stead_jobspec::VarInputs::new();
    if let Some(text) = member(&value, "Variables").and_then(Value::as_str) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            vars = vars.flag_arg(line.trim()).map_err(|e| HttpError::bad_request(format!("Variables: {e}")))?;
        }
    }
    let parsed = stead_jobspec::parse_hcl(hcl, "input.hcl", &vars, &ServerParseEnv)
        .map_err(|e| HttpError::bad_request(e.to_string()))?;
    let job_value = member(&parsed, "Job").cloned().unwrap_or(parsed);
    let mut job: Job = model::from_api_value(job_value).map_err(|e| HttpError::bad_request(e.to_string()))?;
    if member(&value, "Canonicalize").and_then(Value::as_bool).unwrap_or(false) {
        if job.namespace.is_empty() {
            job.namespace = Params(q).namespace().to_owned();
        }
        job.canonicalize();
    }
    json(0, &job)
}

/// The job file environment of a server: no files, no environment variables.
struct ServerParseEnv;

impl stead_jobspec::Env for ServerParseEnv {
    fn env_var(&self, _key: &str) -> Option<String> {
        None
    }
    fn now_unix_nanos(&self) -> i128 {
        stead_jobspec::OsEnv.now_unix_nanos()
    }
    fn read_file(&self, path: &str) -> Result<Vec<u8>, String> {
        Err(format!("{path}: files are not readable in a job parsed by the server (parse it locally)"))
    }
    fn list_files(&self, dir: &str) -> Result<Vec<String>, String> {
        Err(format!("{dir}: files are not readable in a job parsed by the server (parse it locally)"))
    }
    fn uuid_v4(&self) -> String {
        stead_jobspec::OsEnv.uuid_v4()
    }
    fn home_dir(&self) -> Option<String> {
        None
    }
    fn current_dir(&self) -> Option<String> {
        None
    }
}

/// Suffixes of `/v1/job/<id>/...`, longest first where one ends another.
const SUFFIXES: &[&str] = &[
    "allocations",
    "evaluations",
    "versions",
    "summary",
    "plan",
    "deployments",
    "deployment",
    "evaluate",
    "revert",
    "stable",
    "dispatch",
    "periodic/force",
    "scale",
];

/// Splits `<id>/<suffix>` into the job ID and the suffix ("" for the job itself).
fn split_job_path(rest: &str) -> (&str, &str) {
    for suffix in SUFFIXES {
        if let Some(id) = rest.strip_suffix(suffix).and_then(|r| r.strip_suffix('/'))
            && !id.is_empty()
        {
            return (id, suffix);
        }
    }
    (rest, "")
}

async fn job_path(
    State(api): State<Arc<ApiState>>,
    method: Method,
    Path(rest): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> HttpResult {
    let q = Params(q);
    let (id, suffix) = split_job_path(&rest);
    let ns = q.namespace();
    let read_only = method == Method::GET;
    let write = method == Method::PUT || method == Method::POST;
    if read_only {
        let kinds = match suffix {
            "" => tables::JOB,
            "allocations" => tables::ALLOCS,
            "evaluations" => tables::EVALS,
            "versions" => tables::JOB_VERSIONS,
            "deployments" | "deployment" => tables::DEPLOYMENTS,
            "scale" => tables::JOB_SCALE,
            _ => tables::JOB_SUMMARY,
        };
        block(&api, &q, kinds).await?;
    }
    match (suffix, read_only, write) {
        ("", true, _) => {
            let r = reads::job(&api.store, ns, id).await?;
            json(r.index, &r.value)
        }
        ("", _, true) => register(&api, &q, &body, Some(id)).await,
        ("", _, _) if method == Method::DELETE => {
            let purge = q.flag("purge")?;
            let s = jobs::stop(&api.store, &api.env, ns, id, purge).await?;
            json(
                s.index,
                &j!({"EvalID": s.eval_id.as_str(), "EvalCreateIndex": s.index, "JobModifyIndex": s.index, "Index": s.index}),
            )
        }
        ("allocations", true, _) => {
            let r = reads::job_allocations(&api.store, ns, id).await?;
            json(r.index, &reads::alloc_stubs(&r.value, q.flag("resources")?))
        }
        ("evaluations", true, _) => {
            let r = reads::job_evaluations(&api.store, ns, id).await?;
            json(r.index, &r.value)
        }
        ("summary", true, _) => {
            let r = reads::job_summary(&api.store, ns, id).await?;
            json(r.index, &r.value)
        }
        ("versions", true, _) => {
            let r = reads::job_versions(&api.store, ns, id, q.flag("diffs")?).await?;
            let (versions, diffs) = r.value;
            let diffs = if q.flag("diffs")? { j!(diffs) } else { Value::Null };
            json(
                r.index,
                &j!({"Versions": versions, "Diffs": diffs, "Index": r.index, "KnownLeader": true, "LastContact": 0}),
            )
        }
        ("deployments", true, _) => {
            let r = reads::job_deployments(&api.store, ns, id).await?;
            json(r.index, &r.value)
        }
        ("deployment", true, _) => {
            let r = reads::job_deployments(&api.store, ns, id).await?;
            json(r.index, &r.value.first())
        }
        ("scale", true, _) => {
            let r = reads::job_scale_status(&api.store, ns, id).await?;
            json(r.index, &r.value)
        }
        ("scale", _, true) => scale(&api, ns, id, &body).await,
        ("dispatch", _, true) => dispatch(&api, &q, ns, id, &body).await,
        ("periodic/force", _, true) => {
            let r = stead_server::periodic::force(&api.store, &api.env, ns, id).await?;
            json(
                r.index,
                &j!({"EvalID": r.eval_id.as_ref().map(|e| e.as_str()).unwrap_or(""), "EvalCreateIndex": r.index, "Index": r.index}),
            )
        }
        ("plan", _, true) => plan(&api, &q, &body, id).await,
        ("evaluate", _, true) => {
            let e = jobs::evaluate(&api.store, &api.env, ns, id).await?;
            json(
                e.index,
                &j!({"EvalID": e.eval_id.as_str(), "EvalCreateIndex": e.index, "JobModifyIndex": e.job_modify_index, "Index": e.index}),
            )
        }
        ("revert", _, true) => {
            let value = body_json(&body)?;
            let version = version_field(&value, "JobVersion")?
                .ok_or_else(|| HttpError::bad_request("request body: JobVersion is missing"))?;
            let prior = version_field(&value, "EnforcePriorVersion")?;
            let r = jobs::revert(&api.store, &api.env, ns, id, version, prior).await?;
            json(
                r.index,
                &j!({
                    "EvalID": r.eval_id.as_ref().map(|e| e.as_str()).unwrap_or(""),
                    "EvalCreateIndex": r.index,
                    "JobModifyIndex": r.job_modify_index,
                    "Warnings": "",
                    "Index": r.index,
                }),
            )
        }
        ("stable", _, true) => {
            let value = body_json(&body)?;
            let version = version_field(&value, "JobVersion")?
                .ok_or_else(|| HttpError::bad_request("request body: JobVersion is missing"))?;
            let stable = match member(&value, "Stable") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(HttpError::bad_request(format!("request body: Stable must be a boolean, not {other}")));
                }
            };
            let index = jobs::set_stable(&api.store, ns, id, version, stable).await?;
            json(index, &j!({"JobModifyIndex": index, "Index": index}))
        }
        _ => Err(HttpError::method_not_allowed()),
    }
}

/// `POST /v1/job/<id>/scale`: `{"Count": n, "Target": {"Group": g}, "EnforceIndex",
/// "JobModifyIndex", "Message", "Meta"}`.
async fn scale(api: &ApiState, ns: &str, id: &str, body: &[u8]) -> HttpResult {
    let value = body_json(body)?;
    let count = match member(&value, "Count") {
        None | Some(Value::Null) => {
            return Err(HttpError::bad_request(
                "request body: Count is missing (a scale without a count only records an event, which stead does not keep)",
            ));
        }
        Some(v) => v
            .as_i64()
            .ok_or_else(|| HttpError::bad_request(format!("request body: Count must be an integer, not {v}")))?,
    };
    let group = member(&value, "Target")
        .and_then(|t| member(t, "Group"))
        .and_then(Value::as_str)
        .ok_or_else(|| HttpError::bad_request("request body: Target.Group is missing"))?;
    let enforce = match member(&value, "EnforceIndex") {
        Some(Value::Bool(true)) => Some(member(&value, "JobModifyIndex").and_then(Value::as_u64).unwrap_or(0)),
        _ => None,
    };
    let r = jobs::scale(&api.store, &api.env, ns, id, group, count, enforce).await?;
    json(
        r.index,
        &j!({
            "EvalID": r.eval_id.as_ref().map(|e| e.as_str()).unwrap_or(""),
            "EvalCreateIndex": r.index,
            "JobModifyIndex": r.job_modify_index,
            "Warnings": "",
            "Index": r.index,
        }),
    )
}

/// `POST /v1/job/<id>/dispatch`: `{"Payload": base64, "Meta": {...}, "IdPrefixTemplate"}`,
/// the idempotency token in the query (Nomad) or the body (python-nomad sends it there).
async fn dispatch(api: &ApiState, q: &Params, ns: &str, id: &str, body: &[u8]) -> HttpResult {
    use base64::Engine;
    let value = body_json(body)?;
    let payload = match member(&value, "Payload") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| HttpError::bad_request(format!("request body: Payload is not base64: {e}")))?,
        Some(other) => {
            return Err(HttpError::bad_request(format!("request body: Payload must be a base64 string, not {other}")));
        }
    };
    let meta = match member(&value, "Meta") {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(HttpError::bad_request(format!("request body: Meta.{k} must be a string, not {other}"))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(HttpError::bad_request(format!("request body: Meta must be an object, not {other}")));
        }
    };
    let text = |name: &str| member(&value, name).and_then(Value::as_str).unwrap_or("").to_owned();
    let token = q.get("idempotency_token").map(str::to_owned).unwrap_or_else(|| text("idempotency_token"));
    let request =
        jobs::DispatchRequest { payload, meta, idempotency_token: token, id_prefix_template: text("IdPrefixTemplate") };
    let d = jobs::dispatch(&api.store, &api.env, ns, id, &request).await?;
    json(
        d.index,
        &j!({
            "DispatchedJobID": d.dispatched_job_id,
            "EvalID": d.eval_id.as_ref().map(|e| e.as_str()).unwrap_or(""),
            "EvalCreateIndex": if d.eval_id.is_some() { d.index } else { 0 },
            "JobCreateIndex": d.job_create_index,
            "Index": d.index,
        }),
    )
}

/// A version number in a request body (absent or null: None).
fn version_field(value: &Value, name: &str) -> Result<Option<u64>, HttpError> {
    match member(value, name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| HttpError::bad_request(format!("request body: {name} must be a version number, not {v}"))),
    }
}

/// `POST /v1/job/<id>/plan`: the scheduler core on the current state, nothing committed.
async fn plan(api: &ApiState, q: &Params, body: &[u8], id: &str) -> HttpResult {
    let (job, value) = job_of_body(body, q, Some(id))?;
    let want_diff = member(&value, "Diff").and_then(Value::as_bool).unwrap_or(false);
    let mut cache = api.plan_cache.lock().await;
    let d = dry_run::dry_run(&api.store, &mut cache, &api.env, &api.sched, api.cluster_seed, &job).await?;
    drop(cache);
    let answer = dry_run::plan_response(&d, &job, want_diff);
    json(u64::try_from(d.snapshot_version).unwrap_or(0), &answer)
}

#[cfg(test)]
mod tests {
    use super::split_job_path;

    #[test]
    fn job_paths_split_into_id_and_suffix_even_when_the_id_has_slashes() {
        assert_eq!(split_job_path("web"), ("web", ""));
        assert_eq!(split_job_path("web/allocations"), ("web", "allocations"));
        assert_eq!(split_job_path("batch/dispatch-1-2/versions"), ("batch/dispatch-1-2", "versions"));
        assert_eq!(split_job_path("web/deployment"), ("web", "deployment"));
        assert_eq!(split_job_path("web/deployments"), ("web", "deployments"));
        // A job named like a suffix is a job.
        assert_eq!(split_job_path("plan"), ("plan", ""));
    }
}
