//! `kill -9` of a durable `stead agent -dev -data-dir DIR` with raw_exec tasks running,
//! then a restart on the same directory: the state is all there, and the client takes its
//! tasks back instead of starting them again.
#![cfg(not(madsim))]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::{Agent, CliRun, TaskReaper, await_ended, pids_in, poll_until};
use serde_json::Value;

/// Guards against a hang only: every wait ends on an event long before.
const DEADLINE: Duration = Duration::from_secs(20);

/// Two allocations whose task appends its PID to `$NOMAD_TASK_DIR/pid` (a second start
/// would add a second line), prints it and sleeps.
fn crash_job(marker: &str) -> String {
    format!(
        r#"job "crash" {{
  group "g" {{
    count = 2
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sh"
        args    = ["-c", "echo $$ >> $NOMAD_TASK_DIR/pid; echo pid $$; sleep 600 & wait", "{marker}"]
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

/// A job no node can take (datacenter `nowhere`), with versions of its own.
const PARKED_JOB: &str = r#"variable "count" {
  type    = number
  default = 1
}

job "parked" {
  datacenters = ["nowhere"]
  group "g" {
    count = var.count
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["600"]
      }
    }
  }
}
"#;

fn ok(run: &CliRun) {
    assert_eq!(run.code, Some(0), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
}

/// What the API says of every job, job version and allocation. An allocation's
/// `ModifyIndex` and `ModifyTime` are left out: a restarted client reports on each.
fn state(agent: &Agent) -> BTreeMap<String, Value> {
    let mut state = BTreeMap::new();
    let jobs = agent.get_json("/v1/jobs");
    for job in jobs.as_array().unwrap() {
        let id = job["ID"].as_str().unwrap();
        state.insert(format!("/v1/job/{id}"), agent.get_json(&format!("/v1/job/{id}")));
        state.insert(format!("/v1/job/{id}/versions"), agent.get_json(&format!("/v1/job/{id}/versions")));
    }
    state.insert("/v1/jobs".to_owned(), jobs);
    for alloc in agent.get_json("/v1/allocations").as_array().unwrap() {
        let id = alloc["ID"].as_str().unwrap();
        let mut full = agent.get_json(&format!("/v1/allocation/{id}"));
        let fields = full.as_object_mut().unwrap();
        fields.remove("ModifyIndex");
        fields.remove("ModifyTime");
        state.insert(format!("/v1/allocation/{id}"), full);
    }
    state
}

/// Fails naming the members of `before` that `after` changed (a whole dump of two
/// allocations hides the one field that differs).
fn assert_same(path: &str, before: &Value, after: &Value) {
    if before == after {
        return;
    }
    let changed: Vec<String> = match (before.as_object(), after.as_object()) {
        (Some(b), Some(a)) => b
            .keys()
            .chain(a.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|k| b.get(*k) != a.get(*k))
            .map(|k| format!("{k}: {} => {}", b.get(k).unwrap_or(&Value::Null), a.get(k).unwrap_or(&Value::Null)))
            .collect(),
        _ => vec![format!("{before} => {after}")],
    };
    panic!("{path} changed across the crash and restart:\n{}", changed.join("\n"));
}

fn eval_ids(agent: &Agent) -> BTreeSet<String> {
    let evals = agent.get_json("/v1/evaluations");
    evals.as_array().unwrap().iter().map(|e| e["ID"].as_str().unwrap().to_owned()).collect()
}

fn modify_indexes(agent: &Agent) -> BTreeMap<String, u64> {
    let allocs = agent.get_json("/v1/job/crash/allocations");
    allocs
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["ID"].as_str().unwrap().to_owned(), a["ModifyIndex"].as_u64().unwrap()))
        .collect()
}

fn pid_file(data: &Path, alloc: &str) -> std::path::PathBuf {
    data.join("alloc").join(alloc).join("t/local/pid")
}

#[test]
fn after_kill_9_a_restarted_agent_has_all_its_state_and_reattaches_to_the_same_task_processes() {
    let reaper = TaskReaper::new("crash");
    let data = tempfile::tempdir().unwrap();
    reaper.watch_dir(data.path());
    let data_arg = data.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("crash.nomad.hcl"), crash_job(reaper.marker())).unwrap();
    std::fs::write(dir.path().join("parked.nomad.hcl"), PARKED_JOB).unwrap();

    let agent = Agent::start(&["-data-dir", data_arg]);
    let node = agent.node_id.clone().expect("a dev agent runs a client");
    let cli = |agent: &Agent, args: &[&str]| agent.cli(args, dir.path(), None);
    ok(&cli(&agent, &["job", "run", "-detach", "parked.nomad.hcl"]));
    ok(&cli(&agent, &["job", "run", "-detach", "-var", "count=3", "parked.nomad.hcl"]));
    ok(&cli(&agent, &["job", "run", "crash.nomad.hcl"]));
    let allocs = agent.await_json("/v1/job/crash/allocations", "both allocations run", DEADLINE, |allocs| {
        let allocs = allocs.as_array().unwrap();
        allocs.len() == 2 && allocs.iter().all(|a| a["ClientStatus"] == "running")
    });
    let ids: Vec<String> = allocs.as_array().unwrap().iter().map(|a| a["ID"].as_str().unwrap().to_owned()).collect();
    let pids: BTreeMap<String, u32> = ids
        .iter()
        .map(|id| {
            let file = pid_file(data.path(), id);
            let pid = poll_until(&format!("the task writes its PID to {}", file.display()), DEADLINE, |seen| {
                let pids = pids_in(&file);
                *seen = format!("{pids:?}");
                (pids.len() == 1).then(|| pids[0])
            });
            (id.clone(), pid)
        })
        .collect();
    let mut task_pids: Vec<u32> = pids.values().copied().collect();
    task_pids.sort_unstable();
    assert_eq!(reaper.tasks(), task_pids, "one task process an allocation");
    let executors = reaper.executors();
    assert_eq!(executors.len(), 2, "one executor a task: {executors:?}");
    // A settled state to compare: the parked job's evaluations are done (one blocked).
    agent.await_json("/v1/job/parked/evaluations", "the parked job's evaluations are done", DEADLINE, |evals| {
        let evals = evals.as_array().unwrap();
        evals.iter().any(|e| e["Status"] == "blocked") && evals.iter().all(|e| e["Status"] != "pending")
    });
    let before = state(&agent);
    let evals = eval_ids(&agent);
    let indexes = modify_indexes(&agent);

    // kill -9: the executors and their tasks live on without the agent.
    agent.kill9();
    assert_eq!(reaper.tasks(), task_pids, "the tasks outlive the agent");
    assert_eq!(reaper.executors(), executors, "so do their executors");

    let agent = Agent::start(&["-data-dir", data_arg]);
    assert_eq!(agent.node_id.as_deref(), Some(node.as_str()), "the same node");
    // The restarted client reports each allocation running.
    agent.await_json("/v1/job/crash/allocations", "the restarted client reports both allocations", DEADLINE, |a| {
        a.as_array().unwrap().iter().all(|a| {
            a["ClientStatus"] == "running" && a["ModifyIndex"].as_u64().unwrap() > indexes[a["ID"].as_str().unwrap()]
        })
    });
    let after = state(&agent);
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>(), "the same jobs and allocations");
    for (path, value) in &before {
        assert_same(path, value, &after[path]);
    }
    let evals_after = eval_ids(&agent);
    assert!(evals.is_subset(&evals_after), "evaluations lost: {:?}", evals.difference(&evals_after));
    // Re-attached, not restarted: the same processes, none started again.
    assert_eq!(reaper.tasks(), task_pids, "the same task processes, no others");
    assert_eq!(reaper.executors(), executors, "the same executors, no others");
    for (id, pid) in &pids {
        assert_eq!(pids_in(&pid_file(data.path(), id)), vec![*pid], "allocation {id} started its task once");
    }
    // The restarted client serves the logs the first one collected.
    for (id, pid) in &pids {
        let logs = cli(&agent, &["alloc", "logs", id]);
        ok(&logs);
        assert_eq!(logs.stdout, format!("pid {pid}\n"), "allocation {id}");
    }

    // The restarted client controls them: stopping the job ends them.
    ok(&cli(&agent, &["job", "stop", "crash"]));
    let stopped = agent.await_json("/v1/job/crash/allocations", "both allocations complete", DEADLINE, |allocs| {
        allocs.as_array().unwrap().iter().all(|a| a["ClientStatus"] == "complete")
    });
    await_ended("the task processes (and their process groups)", &task_pids, DEADLINE);
    await_ended("their executors", &executors, DEADLINE);
    assert_eq!(reaper.tasks(), Vec::<u32>::new());
    for alloc in stopped.as_array().unwrap() {
        let task = &alloc["TaskStates"]["t"];
        assert_eq!(task["Restarts"], 0, "{task:#}");
        let started = task["Events"].as_array().unwrap().iter().filter(|e| e["Type"] == "Started").count();
        assert_eq!(started, 1, "started once, before the crash: {task:#}");
    }
    for (id, pid) in &pids {
        assert_eq!(pids_in(&pid_file(data.path(), id)), vec![*pid], "allocation {id} never started again");
    }
    assert!(agent.interrupt().0.success());
}
