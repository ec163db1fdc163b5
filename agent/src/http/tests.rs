//! The HTTP API in process: requests through the router, on the embedded store in memory.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use stead_server::{Env, Store, nodes};
use stead_store::model::JobType;
use stead_testkit::fixtures;
use tower::ServiceExt;

use super::{ApiState, router};

const LIMIT: usize = 64 * 1024;

fn api() -> (Arc<ApiState>, axum::Router) {
    let state = Arc::new(api_state());
    (state.clone(), router(state, LIMIT))
}

fn api_state() -> ApiState {
    ApiState {
        store: Store::new(stead_store::embedded::open_in_memory()),
        env: Env::system(),
        sched: Default::default(),
        cluster_seed: 7,
        server_addr: "127.0.0.1:4646".to_owned(),
        region: "global".to_owned(),
        datacenter: "dc1".to_owned(),
        node_name: "test".to_owned(),
        registry: Default::default(),
        acl: Default::default(),
        plan_cache: Arc::new(tokio::sync::Mutex::new(Default::default())),
    }
}

struct Answer {
    status: StatusCode,
    index: Option<u64>,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: impl Into<Body>) -> Answer {
    let request = Request::builder().method(method).uri(uri).body(body.into()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let index = response.headers().get("X-Nomad-Index").map(|v| v.to_str().unwrap().parse().unwrap());
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Answer { status, index, text: String::from_utf8(bytes.to_vec()).unwrap() }
}

fn job_body(id: &str, count: i32) -> String {
    let job = fixtures::job(id, JobType::Service, count, 100, 128);
    json!({ "Job": job }).to_string()
}

#[tokio::test]
async fn a_job_is_registered_listed_read_versioned_stopped_and_purged() {
    let (_, app) = api();
    let reg = call(&app, "PUT", "/v1/jobs", job_body("web", 3)).await;
    assert_eq!(reg.status, StatusCode::OK, "{}", reg.text);
    let r = reg.json();
    assert!(!r["EvalID"].as_str().unwrap().is_empty());
    let first_index = r["JobModifyIndex"].as_u64().unwrap();
    assert_eq!(reg.index, Some(first_index));

    let list = call(&app, "GET", "/v1/jobs?prefix=we", Body::empty()).await;
    let list = list.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["ID"], "web");
    assert_eq!(list[0]["Status"], "pending");
    assert_eq!(list[0]["JobSummary"]["Summary"]["g"]["Running"], 0);
    assert_eq!(call(&app, "GET", "/v1/jobs?prefix=x", Body::empty()).await.text, "[]");

    let job = call(&app, "GET", "/v1/job/web", Body::empty()).await.json();
    assert_eq!((job["ID"].as_str(), job["Version"].as_u64()), (Some("web"), Some(0)));
    assert_eq!(job["TaskGroups"][0]["Count"], 3);

    // A changed count is a new version; the versions come newest first with their diff.
    let again = call(&app, "POST", "/v1/job/web", job_body("web", 5)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let versions = call(&app, "GET", "/v1/job/web/versions?diffs=true", Body::empty()).await.json();
    let v: Vec<u64> = versions["Versions"].as_array().unwrap().iter().map(|j| j["Version"].as_u64().unwrap()).collect();
    assert_eq!(v, [1, 0]);
    let diff = &versions["Diffs"][0];
    assert_eq!(diff["Type"], "Edited");
    assert_eq!(diff["TaskGroups"][0]["Fields"][0]["Name"], "Count", "{diff}");

    let evals = call(&app, "GET", "/v1/job/web/evaluations", Body::empty()).await.json();
    assert_eq!(evals.as_array().unwrap().len(), 2);
    assert_eq!(call(&app, "GET", "/v1/job/web/allocations", Body::empty()).await.text, "[]");

    // python-nomad sends booleans as Python prints them.
    let stop = call(&app, "DELETE", "/v1/job/web?purge=True", Body::empty()).await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.text);
    assert!(!stop.json()["EvalID"].as_str().unwrap().is_empty());
    let gone = call(&app, "GET", "/v1/job/web", Body::empty()).await;
    assert_eq!((gone.status, gone.text.as_str()), (StatusCode::NOT_FOUND, "job not found\n"));
}

#[tokio::test]
async fn enforce_index_registers_only_against_the_index_it_names() {
    let (_, app) = api();
    let body = |index: u64| {
        let job = fixtures::job("web", JobType::Service, 1, 100, 128);
        json!({"Job": job, "EnforceIndex": true, "JobModifyIndex": index}).to_string()
    };
    assert_eq!(call(&app, "PUT", "/v1/jobs", body(0)).await.status, StatusCode::OK);
    let index = call(&app, "GET", "/v1/job/web", Body::empty()).await.json()["JobModifyIndex"].as_u64().unwrap();
    let stale = call(&app, "PUT", "/v1/jobs", body(index + 1)).await;
    assert_eq!(stale.status, StatusCode::INTERNAL_SERVER_ERROR, "Nomad answers a failed check with 500");
    assert!(stale.text.starts_with("Enforcing job modify index"), "{}", stale.text);
    let exists = call(&app, "PUT", "/v1/jobs", body(0)).await;
    assert!(exists.text.contains("already exists"), "{}", exists.text);
    assert_eq!(call(&app, "PUT", "/v1/jobs", body(index)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_requests_get_a_4xx_that_says_what_and_where_and_write_nothing() {
    let (_, app) = api();
    let cases: &[(&str, &str, String, StatusCode, &str)] = &[
        ("PUT", "/v1/jobs", "{\"Job\": ".to_owned(), StatusCode::BAD_REQUEST, "line 1, column 8"),
        ("PUT", "/v1/jobs", "{}".to_owned(), StatusCode::BAD_REQUEST, "Job is missing"),
        ("PUT", "/v1/jobs", json!({"Job": {"ID": "x"}}).to_string(), StatusCode::BAD_REQUEST, "TaskGroups"),
        ("PUT", "/v1/jobs", json!({"Job": {"ID": 7}}).to_string(), StatusCode::BAD_REQUEST, "ID"),
        ("PUT", "/v1/job/other", job_body("web", 1), StatusCode::BAD_REQUEST, "does not match"),
        ("PUT", "/v1/jobs", "x".repeat(LIMIT + 1), StatusCode::PAYLOAD_TOO_LARGE, ""),
        ("DELETE", "/v1/job/web?purge=maybe", String::new(), StatusCode::BAD_REQUEST, "\"purge\""),
        ("DELETE", "/v1/job/web", String::new(), StatusCode::NOT_FOUND, "not found"),
        ("GET", "/v1/allocation/nope", String::new(), StatusCode::NOT_FOUND, "alloc not found"),
        ("GET", "/v1/evaluation/nope", String::new(), StatusCode::NOT_FOUND, "eval not found"),
        ("GET", "/v1/node/nope", String::new(), StatusCode::NOT_FOUND, "node not found"),
        ("GET", "/v1/nowhere", String::new(), StatusCode::NOT_FOUND, "Invalid URL"),
        ("PATCH", "/v1/job/web", String::new(), StatusCode::METHOD_NOT_ALLOWED, ""),
        ("GET", "/v1/jobs/parse", String::new(), StatusCode::METHOD_NOT_ALLOWED, ""),
    ];
    for (method, uri, body, status, says) in cases {
        let a = call(&app, method, uri, body.clone()).await;
        assert_eq!(a.status, *status, "{method} {uri}: {}", a.text);
        assert!(a.text.contains(says), "{method} {uri}: {:?} does not say {says:?}", a.text);
    }
    assert_eq!(call(&app, "GET", "/v1/jobs", Body::empty()).await.text, "[]", "nothing was written");
}

#[tokio::test]
async fn job_ids_with_slashes_are_routed_by_suffix() {
    let (_, app) = api();
    let body = job_body("batch/dispatch-1", 1);
    assert_eq!(call(&app, "PUT", "/v1/job/batch/dispatch-1", body).await.status, StatusCode::OK);
    let job = call(&app, "GET", "/v1/job/batch/dispatch-1", Body::empty()).await.json();
    assert_eq!(job["ID"], "batch/dispatch-1");
    let summary = call(&app, "GET", "/v1/job/batch/dispatch-1/summary", Body::empty()).await.json();
    assert_eq!(summary["JobID"], "batch/dispatch-1");
}

#[tokio::test]
async fn plan_shows_what_a_register_would_place_and_the_index_to_check_and_commits_nothing() {
    let (state, app) = api();
    nodes::upsert(&state.store, &state.env, &fixtures::node("node-1", "dc1", 4000, 8192)).await.unwrap();
    let body = |count: i32| {
        let job = fixtures::job("web", JobType::Service, count, 100, 128);
        json!({"Job": job, "Diff": true}).to_string()
    };
    let plan = call(&app, "POST", "/v1/job/web/plan", body(3)).await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.text);
    let p = plan.json();
    assert_eq!(p["Annotations"]["DesiredTGUpdates"]["g"]["Place"], 3);
    assert_eq!(p["JobModifyIndex"], 0);
    assert_eq!(p["Diff"]["Type"], "Added");
    assert_eq!(p["FailedTGAllocs"], json!({}));
    // 4000 MHz hold 40 allocations of 100 MHz: the 41st fails, and says why.
    let p = call(&app, "POST", "/v1/job/web/plan", body(41)).await.json();
    assert_eq!(p["Annotations"]["DesiredTGUpdates"]["g"]["Place"], 41);
    assert_eq!(p["FailedTGAllocs"]["g"]["CoalescedFailures"], 0, "{}", p["FailedTGAllocs"]);
    assert_eq!(p["FailedTGAllocs"]["g"]["NodesExhausted"], 1, "{}", p["FailedTGAllocs"]);
    assert_eq!(call(&app, "GET", "/v1/jobs", Body::empty()).await.text, "[]", "a plan commits nothing");
}

#[tokio::test]
async fn nodes_are_listed_as_stubs_and_read_without_their_secret() {
    let (state, app) = api();
    let mut n = fixtures::node("node-1", "dc1", 4000, 8192);
    n.secret_id = "s3cret".to_owned();
    nodes::upsert(&state.store, &state.env, &n).await.unwrap();
    let list = call(&app, "GET", "/v1/nodes", Body::empty()).await.json();
    assert_eq!(list[0]["ID"], "node-1");
    assert_eq!(list[0]["Datacenter"], "dc1");
    assert!(list[0].get("Attributes").is_none(), "a stub, not the record");
    let node = call(&app, "GET", "/v1/node/node-1", Body::empty()).await;
    assert_eq!(node.json()["SecretID"], "");
    assert!(!node.text.contains("s3cret"));
    assert_eq!(call(&app, "GET", "/v1/node/node-1/allocations", Body::empty()).await.text, "[]");
}

#[tokio::test]
async fn parse_turns_hcl_into_the_job_and_keeps_server_files_out_of_reach() {
    let (_, app) = api();
    let hcl = "variable \"n\" {\n  default = 2\n}\njob \"web\" {\n  group \"g\" {\n    count = var.n\n    task \"t\" {\n      driver = \"raw_exec\"\n      config {\n        command = \"/bin/true\"\n      }\n    }\n  }\n}\n";
    let a = call(
        &app,
        "POST",
        "/v1/jobs/parse",
        json!({"JobHCL": hcl, "Canonicalize": true, "Variables": "n=4\n"}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let job = a.json();
    assert_eq!((job["ID"].as_str(), job["TaskGroups"][0]["Count"].as_u64()), (Some("web"), Some(4)));
    assert_eq!(job["Priority"], 50, "canonicalized");
    let sneaky = "job \"x\" {\n  meta {\n    k = file(\"/etc/passwd\")\n  }\n}\n";
    let a = call(&app, "POST", "/v1/jobs/parse", json!({"JobHCL": sneaky}).to_string()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert!(a.text.contains("not readable"), "{}", a.text);
    assert!(!a.text.contains("root:"), "{}", a.text);
}

#[tokio::test]
async fn status_and_agent_self_answer_as_nomad_clients_expect() {
    let (_, app) = api();
    assert_eq!(call(&app, "GET", "/v1/status/leader", Body::empty()).await.json(), "127.0.0.1:4646");
    let me = call(&app, "GET", "/v1/agent/self", Body::empty()).await.json();
    assert_eq!(me["config"]["Region"], "global");
    assert_eq!(me["member"]["Port"], 4646);
}

#[tokio::test]
async fn revert_registers_an_old_version_again_and_checks_the_prior_version() {
    let (_, app) = api();
    assert_eq!(call(&app, "PUT", "/v1/jobs", job_body("web", 1)).await.status, StatusCode::OK);
    assert_eq!(call(&app, "PUT", "/v1/jobs", job_body("web", 2)).await.status, StatusCode::OK);
    let revert = |version: u64, prior: Option<u64>| {
        json!({"JobID": "web", "JobVersion": version, "EnforcePriorVersion": prior}).to_string()
    };
    let stale = call(&app, "POST", "/v1/job/web/revert", revert(0, Some(0))).await;
    assert_eq!(stale.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(stale.text.contains("enforcing version 0"), "{}", stale.text);
    let same = call(&app, "POST", "/v1/job/web/revert", revert(1, None)).await;
    assert_eq!(same.status, StatusCode::BAD_REQUEST, "{}", same.text);
    let missing = call(&app, "POST", "/v1/job/web/revert", revert(9, None)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
    let bad = call(&app, "POST", "/v1/job/web/revert", json!({"JobVersion": "zero"}).to_string()).await;
    assert!(bad.status == StatusCode::BAD_REQUEST && bad.text.contains("JobVersion"), "{}", bad.text);

    let ok = call(&app, "POST", "/v1/job/web/revert", revert(0, Some(1))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert!(!ok.json()["EvalID"].as_str().unwrap().is_empty());
    let job = call(&app, "GET", "/v1/job/web", Body::empty()).await.json();
    assert_eq!((job["Version"].as_u64(), job["TaskGroups"][0]["Count"].as_u64()), (Some(2), Some(1)));
}

#[tokio::test]
async fn stable_marks_a_version_and_evaluate_queues_an_evaluation() {
    let (_, app) = api();
    assert_eq!(call(&app, "PUT", "/v1/jobs", job_body("web", 1)).await.status, StatusCode::OK);
    let body = json!({"JobID": "web", "JobVersion": 0, "Stable": true}).to_string();
    let a = call(&app, "POST", "/v1/job/web/stable", body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let versions = call(&app, "GET", "/v1/job/web/versions", Body::empty()).await.json();
    assert_eq!(versions["Versions"][0]["Stable"], true);
    assert_eq!(call(&app, "GET", "/v1/job/web", Body::empty()).await.json()["Stable"], true);

    // python-nomad's evaluate sends no body.
    let e = call(&app, "POST", "/v1/job/web/evaluate", Body::empty()).await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.text);
    let id = e.json()["EvalID"].as_str().unwrap().to_owned();
    let evals = call(&app, "GET", "/v1/job/web/evaluations", Body::empty()).await.json();
    assert!(evals.as_array().unwrap().iter().any(|e| e["ID"] == id.as_str()), "{evals}");
    assert_eq!(call(&app, "POST", "/v1/job/nope/evaluate", Body::empty()).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_answer_in_prometheus_text_and_in_nomads_json() {
    let (state, app) = api();
    let m = stead_server::metrics::SchedMetrics::new(&state.registry).unwrap();
    m.placements.inc_by(3);
    let text = call(&app, "GET", "/v1/metrics?format=prometheus", Body::empty()).await.text;
    assert!(text.contains("stead_sched_placements_total 3"), "{text}");
    let j = call(&app, "GET", "/v1/metrics", Body::empty()).await.json();
    let placements = j["Counters"].as_array().unwrap().iter().find(|c| c["Name"] == "stead_sched_placements_total");
    assert_eq!(placements.map(|c| c["Count"].clone()), Some(json!(3.0)), "{j}");
    assert_eq!(call(&app, "GET", "/v1/metrics?format=xml", Body::empty()).await.status, StatusCode::BAD_REQUEST);
}

#[test]
fn waits_parse_as_go_durations() {
    use super::parse_go_duration as d;
    use std::time::Duration;
    assert_eq!(d("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(d("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(d("1h10m"), Ok(Duration::from_secs(4200)));
    assert_eq!(d("300ms"), Ok(Duration::from_millis(300)));
    assert_eq!(d("0"), Ok(Duration::ZERO));
    assert!(d("10").unwrap_err().contains("unit"));
    assert!(d("5 minutes").is_err());
    assert!(d("").is_err());
    assert!(d("1e400h").is_err());
}

#[tokio::test]
async fn a_table_index_moves_with_its_own_records_only() {
    let (state, app) = api();
    let reg = call(&app, "PUT", "/v1/jobs", job_body("web", 1)).await;
    let job = call(&app, "GET", "/v1/job/web", Body::empty()).await;
    assert_eq!(job.index, reg.index, "the job's table index is the register's commit");
    nodes::upsert(&state.store, &state.env, &fixtures::node("node-1", "dc1", 4000, 8192)).await.unwrap();
    assert_eq!(call(&app, "GET", "/v1/job/web", Body::empty()).await.index, reg.index, "a node is not a job");
    let nodes = call(&app, "GET", "/v1/nodes", Body::empty()).await;
    assert!(nodes.index > reg.index);
}

#[tokio::test]
async fn a_blocking_query_returns_when_its_table_changes_or_its_wait_ends() {
    let (_, app) = api();
    assert_eq!(call(&app, "PUT", "/v1/jobs", job_body("web", 1)).await.status, StatusCode::OK);
    let index = call(&app, "GET", "/v1/jobs", Body::empty()).await.index.unwrap();

    // No change: the wait ends and the answer is the same.
    let started = std::time::Instant::now();
    let same = call(&app, "GET", &format!("/v1/jobs?index={index}&wait=200ms"), Body::empty()).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(200), "{:?}", started.elapsed());
    assert_eq!(same.index, Some(index));

    // A change wakes it long before its wait.
    let blocked = {
        let app = app.clone();
        tokio::spawn(async move { call(&app, "GET", &format!("/v1/jobs?index={index}&wait=30s"), Body::empty()).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    assert_eq!(call(&app, "PUT", "/v1/jobs", job_body("api", 1)).await.status, StatusCode::OK);
    let woke = tokio::time::timeout(std::time::Duration::from_secs(10), blocked).await.unwrap().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(woke.index.unwrap() > index);
    assert_eq!(woke.json().as_array().unwrap().len(), 2);

    let bad = call(&app, "GET", "/v1/jobs?index=x", Body::empty()).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = call(&app, "GET", &format!("/v1/jobs?index={index}&wait=soon"), Body::empty()).await;
    assert!(bad.status == StatusCode::BAD_REQUEST && bad.text.contains("wait"), "{}", bad.text);
}

#[tokio::test]
async fn every_request_passes_the_authorization_point_which_allows_all_while_acls_are_off() {
    let (_, app) = api();
    let request = Request::builder()
        .method("GET")
        .uri("/v1/jobs")
        .header("X-Nomad-Token", "any-secret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.clone().oneshot(request).await.unwrap().status(), StatusCode::OK, "a token is accepted");
    assert_eq!(call(&app, "GET", "/v1/jobs", Body::empty()).await.status, StatusCode::OK, "and so is none");

    // With enforcement on (not configurable yet), the same point refuses as Nomad does.
    let state = Arc::new(ApiState { acl: stead_server::acl::Authorizer { enabled: true }, ..api_state() });
    let app = router(state, LIMIT);
    let denied = call(&app, "GET", "/v1/jobs", Body::empty()).await;
    assert_eq!((denied.status, denied.text.as_str()), (StatusCode::FORBIDDEN, "Permission denied\n"));
    assert_eq!(call(&app, "GET", "/v1/status/leader", Body::empty()).await.status, StatusCode::OK);
}
