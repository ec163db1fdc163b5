//! Network ports end to end against a real `stead agent -dev`: dynamic ports come from the
//! node's range and differ between the allocations on a node, each task finds its port in
//! `NOMAD_PORT_<label>` / `NOMAD_HOST_PORT_<label>` / `NOMAD_ADDR_<label>` and answers on
//! it from the host; a static port is given once per node, so a second allocation asking
//! for it is not placed there and the evaluation says why.
#![cfg(not(madsim))]

mod common;

use std::time::Duration;

use common::{Agent, TaskReaper, http_get, poll_until};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

/// `count` allocations of a raw_exec task that writes its port variables to
/// `$NOMAD_TASK_DIR/ports` and serves HTTP on `NOMAD_PORT_http`; `fixed` adds a static port.
fn job_hcl(id: &str, count: u32, fixed: Option<u16>, marker: &str) -> String {
    let fixed = fixed.map(|p| format!("port \"fixed\" {{\n static = {p}\n }}")).unwrap_or_default();
    format!(
        r#"job "{id}" {{
  group "g" {{
    count = {count}
    network {{
      port "http" {{}}
      {fixed}
    }}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sh"
        args    = ["-c", "echo $NOMAD_PORT_http $NOMAD_HOST_PORT_http $NOMAD_ADDR_http $NOMAD_IP_http > $NOMAD_TASK_DIR/ports; exec python3 -m http.server $NOMAD_PORT_http --bind 127.0.0.1", "{marker}"]
      }}
      resources {{
        cpu    = 50
        memory = 32
      }}
    }}
  }}
}}
"#
    )
}

#[test]
fn dynamic_ports_differ_per_allocation_and_answer_on_the_address_the_task_is_given() {
    let reaper = TaskReaper::new("ports-dynamic");
    let agent = Agent::start(&[]);
    let client_dir = agent.client_dir.clone().expect("a dev agent runs a client");
    reaper.watch_dir(&client_dir);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("web.hcl"), job_hcl("web", 2, None, reaper.marker())).unwrap();
    let run = agent.cli(&["job", "run", "-detach", "web.hcl"], dir.path(), None);
    assert_eq!(run.code, Some(0), "{run:?}");

    let allocs = agent.await_json("/v1/job/web/allocations", "two running allocations", DEADLINE, |allocs| {
        let allocs = allocs.as_array().unwrap();
        allocs.len() == 2 && allocs.iter().all(|a| a["ClientStatus"] == "running")
    });
    let mut ports = Vec::new();
    for stub in allocs.as_array().unwrap() {
        let id = stub["ID"].as_str().unwrap();
        let alloc = agent.get_json(&format!("/v1/allocation/{id}"));
        let port = alloc["AllocatedResources"]["Shared"]["Networks"][0]["DynamicPorts"][0].clone();
        assert_eq!(port["Label"], "http", "{port}");
        let value = port["Value"].as_u64().unwrap();
        assert!((20000..=32000).contains(&value), "a dynamic port from the node's range: {value}");
        // The task was told the same port, and answers on it from the host.
        let file = client_dir.join("alloc").join(id).join("t/local/ports");
        let told = poll_until(&format!("the task writes {}", file.display()), DEADLINE, |seen| {
            *seen = std::fs::read_to_string(&file).unwrap_or_default();
            (!seen.is_empty()).then(|| seen.clone())
        });
        let fields: Vec<&str> = told.split_whitespace().collect();
        assert_eq!(fields, [&*value.to_string(), &*value.to_string(), &*format!("127.0.0.1:{value}"), "127.0.0.1"]);
        let answer = poll_until(&format!("HTTP on 127.0.0.1:{value}"), DEADLINE, |seen| {
            let answer = http_get(&format!("127.0.0.1:{value}"), "/");
            *seen = format!("{answer:?}");
            answer
        });
        assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
        ports.push(value);
    }
    assert_ne!(ports[0], ports[1], "two allocations on one node never share a port");
    assert_eq!(agent.cli(&["job", "stop", "-purge", "web"], dir.path(), None).code, Some(0));
}

#[test]
fn a_static_port_is_given_once_per_node_and_the_evaluation_says_the_port_collided() {
    let reaper = TaskReaper::new("ports-static");
    let agent = Agent::start(&[]);
    reaper.watch_dir(agent.client_dir.as_deref().expect("a dev agent runs a client"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fixed.hcl"), job_hcl("fixed", 2, Some(28123), reaper.marker())).unwrap();
    let run = agent.cli(&["job", "run", "-detach", "fixed.hcl"], dir.path(), None);
    assert_eq!(run.code, Some(0), "{run:?}");

    let allocs = agent.await_json("/v1/job/fixed/allocations", "one running allocation", DEADLINE, |allocs| {
        let allocs = allocs.as_array().unwrap();
        allocs.len() == 1 && allocs[0]["ClientStatus"] == "running"
    });
    let id = allocs[0]["ID"].as_str().unwrap();
    let alloc = agent.get_json(&format!("/v1/allocation/{id}"));
    let reserved = &alloc["AllocatedResources"]["Shared"]["Networks"][0]["ReservedPorts"][0];
    assert_eq!((&reserved["Label"], &reserved["Value"]), (&Value::from("fixed"), &Value::from(28123)), "{reserved}");

    let evals =
        agent.await_json("/v1/job/fixed/evaluations", "an evaluation with a failed placement", DEADLINE, |evals| {
            evals.as_array().unwrap().iter().any(|e| e["FailedTGAllocs"]["g"].is_object())
        });
    let failed = evals.as_array().unwrap().iter().find(|e| e["FailedTGAllocs"]["g"].is_object()).unwrap();
    let metric = &failed["FailedTGAllocs"]["g"];
    assert_eq!(metric["DimensionExhausted"]["network: reserved port collision"], 1, "{metric:#}");
    assert_eq!(agent.cli(&["job", "stop", "-purge", "fixed"], dir.path(), None).code, Some(0));
}
