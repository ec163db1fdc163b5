//! A client node that dies, in a cluster of real processes: one server-only agent and two
//! client-only agents (`-config` files, their own data directories), talking gRPC over
//! loopback. When one client is killed (`kill -9`, and its tasks with it, as a machine
//! that goes away takes its processes along), the server marks its node down once its
//! heartbeat TTL and the grace have passed, its allocations become `lost`, and they are
//! placed again on the node that is left.
#![cfg(not(madsim))]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{Agent, CliRun, TaskReaper, await_ended, executors_in, kill_group, pids_in, poll_until};
use serde_json::Value;

/// Guards against a hang only: every wait ends on an event long before.
const DEADLINE: Duration = Duration::from_secs(20);

/// The job's count: spread over the two nodes by name, so both run some.
const COUNT: usize = 4;

fn job_hcl(marker: &str) -> String {
    format!(
        r#"job "spread" {{
  group "g" {{
    count = {COUNT}
    spread {{
      attribute = "${{node.unique.name}}"
    }}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sh"
        args    = ["-c", "echo $$ > $NOMAD_TASK_DIR/pid; sleep 600 & wait", "{marker}"]
      }}
      resources {{
        cpu    = 100
        memory = 64
      }}
    }}
  }}
}}
"#
    )
}

fn ok(run: &CliRun) {
    assert_eq!(run.code, Some(0), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
}

/// `stead agent -config FILE` with `config` in `dir`, on free ports.
fn agent_with(dir: &Path, config: &str) -> Agent {
    let file = dir.join("agent.hcl");
    std::fs::write(&file, config).unwrap();
    Agent::spawn(&["agent", "-config", file.to_str().unwrap(), "-http-port", "0", "-rpc-port", "0"])
}

/// A client-only agent named `name` with its data in `dir`, served by `server`.
fn client(dir: &Path, name: &str, server: &Agent) -> Agent {
    let config = format!(
        "data_dir = \"{}\"\nname = \"{name}\"\nclient {{\n  enabled = true\n  servers = [\"{}\"]\n}}\n",
        dir.display(),
        server.grpc_addr
    );
    let agent = agent_with(dir, &config);
    assert!(agent.addr.is_empty(), "a client-only agent serves no HTTP API");
    assert!(agent.node_id.is_some(), "a client agent says its node");
    agent
}

/// The job's allocations by node: (ID, desired status, client status).
fn by_node(allocs: &Value) -> BTreeMap<String, Vec<(String, String, String)>> {
    let mut nodes: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for a in allocs.as_array().unwrap() {
        let text = |k: &str| a[k].as_str().unwrap().to_owned();
        nodes.entry(text("NodeID")).or_default().push((text("ID"), text("DesiredStatus"), text("ClientStatus")));
    }
    nodes
}

fn running_on(allocs: &Value, node: &str) -> usize {
    let nodes = by_node(allocs);
    nodes.get(node).map_or(0, |a| a.iter().filter(|(_, d, c)| d == "run" && c == "running").count())
}

#[test]
fn a_killed_client_node_goes_down_and_its_allocations_are_lost_and_replaced_on_the_other_node() {
    let reaper = TaskReaper::new("node-down");
    let (server_dir, dir_a, dir_b) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    reaper.watch_dir(dir_a.path());
    reaper.watch_dir(dir_b.path());
    // A node is down one to two seconds (TTL and its stagger) plus a second (grace)
    // after its last heartbeat; no failover grace when the server takes the duty.
    let server_config = format!(
        r#"data_dir = "{}"
server {{
  enabled                = true
  heartbeat_grace        = "1s"
  min_heartbeat_ttl      = "1s"
  failover_heartbeat_ttl = "0s"
}}
"#,
        server_dir.path().display()
    );
    let server = agent_with(server_dir.path(), &server_config);
    assert!(server.node_id.is_none(), "a server-only agent runs no client");
    let a = client(dir_a.path(), "node-a", &server);
    let b = client(dir_b.path(), "node-b", &server);
    let (node_a, node_b) = (a.node_id.clone().unwrap(), b.node_id.clone().unwrap());
    server.await_json("/v1/nodes", "both client nodes are ready", DEADLINE, |nodes| {
        let ready = |id: &str| nodes.as_array().unwrap().iter().any(|n| n["ID"] == id && n["Status"] == "ready");
        ready(&node_a) && ready(&node_b)
    });

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spread.nomad.hcl"), job_hcl(reaper.marker())).unwrap();
    ok(&server.cli(&["job", "run", "spread.nomad.hcl"], dir.path(), None));
    let allocs = server.await_json("/v1/job/spread/allocations", "every allocation runs", DEADLINE, |allocs| {
        running_on(allocs, &node_a) + running_on(allocs, &node_b) == COUNT
    });
    let on_a: Vec<String> =
        by_node(&allocs).get(&node_a).map_or(Vec::new(), |a| a.iter().map(|x| x.0.clone()).collect());
    assert!(
        !on_a.is_empty() && on_a.len() < COUNT,
        "the spread puts allocations on both nodes: {:#?}",
        by_node(&allocs)
    );
    let pids_a: Vec<u32> = on_a
        .iter()
        .map(|id| {
            let file = dir_a.path().join("alloc").join(id).join("t/local/pid");
            poll_until(&format!("the task writes its PID to {}", file.display()), DEADLINE, |seen| {
                let pids = pids_in(&file);
                *seen = format!("{pids:?}");
                (pids.len() == 1).then(|| pids[0])
            })
        })
        .collect();
    assert_eq!(reaper.tasks().len(), COUNT, "one task process an allocation");

    // Node a dies: its agent without a word, its tasks with it.
    a.kill9();
    for &pid in &pids_a {
        kill_group(pid);
    }
    await_ended("node a's task processes (and their process groups)", &pids_a, DEADLINE);
    poll_until("node a's executors end, their tasks gone", DEADLINE, |seen| {
        let left = executors_in(dir_a.path());
        *seen = format!("{left:?}");
        left.is_empty().then_some(())
    });

    let node =
        server.await_json(&format!("/v1/node/{node_a}"), "node a is marked down", DEADLINE, |n| n["Status"] == "down");
    assert_eq!(node["ID"], node_a.as_str());
    let nodes = server.cli(&["node", "status"], dir.path(), None);
    ok(&nodes);
    let row = |id: &str| nodes.stdout.lines().find(|l| l.starts_with(&id[..8])).unwrap_or_default().to_owned();
    assert!(row(&node_a).contains(" node-a ") && row(&node_a).ends_with(" down"), "{}", nodes.stdout);
    assert!(row(&node_b).ends_with(" ready"), "{}", nodes.stdout);
    let allocs = server.await_json(
        "/v1/job/spread/allocations",
        "node a's allocations are lost and replaced on node b",
        DEADLINE,
        |allocs| {
            let nodes = by_node(allocs);
            let lost = nodes[&node_a].iter().all(|(_, d, c)| d == "stop" && c == "lost");
            lost && running_on(allocs, &node_b) == COUNT
        },
    );
    assert_eq!(by_node(&allocs)[&node_a].len(), on_a.len(), "nothing new was placed on the down node");
    let summary = server.get_json("/v1/job/spread/summary");
    let g = &summary["Summary"]["g"];
    assert_eq!(
        (g["Running"].as_u64(), g["Lost"].as_u64()),
        (Some(COUNT as u64), Some(on_a.len() as u64)),
        "{summary:#}"
    );
    let node_b_status = server.get_json(&format!("/v1/node/{node_b}"));
    assert_eq!(node_b_status["Status"], "ready", "node b stayed up");
    let tasks = reaper.tasks();
    assert_eq!(tasks.len(), COUNT, "node b runs the job's {COUNT} tasks, nothing else is left: {tasks:?}");
    assert!(executors_in(dir_a.path()).is_empty());
    assert_eq!(executors_in(dir_b.path()).len(), COUNT);

    // Stopping the job ends node b's tasks; then the agents stop.
    ok(&server.cli(&["job", "stop", "spread"], dir.path(), None));
    await_ended("node b's task processes (and their process groups)", &tasks, DEADLINE);
    assert_eq!(reaper.tasks(), Vec::<u32>::new(), "no task of the job is left");
    assert!(b.interrupt().0.success());
    assert!(server.interrupt().0.success());
}
