//! A job's life as a user lives it, end to end against a real `stead agent -dev`: the
//! `stead` CLI and plain HTTP, a raw_exec task that prints a line and then sleeps, and the
//! task's own processes looked at through the PID it writes to `$NOMAD_TASK_DIR/pid`.
//!
//! What `cli_server.rs` shows with unplaced jobs (output formats, exit codes) is not
//! repeated here: these tests follow allocations that run.
#![cfg(not(madsim))]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use common::{Agent, CliRun, TaskReaper, await_ended, pids_in, poll_until};
use serde_json::Value;

/// Guards against a hang only: every wait ends on an event long before.
const DEADLINE: Duration = Duration::from_secs(20);

/// A service job whose task writes its PID to `$NOMAD_TASK_DIR/pid`, prints `$GREETING`
/// (variable `greeting`) and sleeps; `marker` ends up in the task's command line.
fn job_hcl(id: &str, marker: &str) -> String {
    format!(
        r#"variable "greeting" {{
  type    = string
  default = "hello v1"
}}

variable "priority" {{
  type    = number
  default = 50
}}

job "{id}" {{
  priority = var.priority
  group "g" {{
    task "t" {{
      driver = "raw_exec"
      env {{
        GREETING = var.greeting
      }}
      config {{
        command = "/bin/sh"
        args    = ["-c", "echo $$ > $NOMAD_TASK_DIR/pid; echo \"$GREETING\"; sleep 600 & wait", "{marker}"]
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

fn json(run: &CliRun) -> Value {
    ok(run);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout))
}

/// A dev agent with the reaper watching its client's directory.
fn dev_agent(reaper: &TaskReaper) -> Agent {
    let agent = Agent::start(&[]);
    reaper.watch_dir(agent.client_dir.as_deref().expect("a dev agent runs a client"));
    agent
}

/// Waits until the job has exactly one allocation of `version` running and every other
/// one is stopped and `complete` (a task the client stops has not failed); returns the
/// running allocation's ID.
fn await_only_running(agent: &Agent, job: &str, version: u64) -> String {
    let allocs = agent.await_json(
        &format!("/v1/job/{job}/allocations"),
        &format!("job {job}: one allocation of version {version} running, the others stopped"),
        DEADLINE,
        |allocs| {
            let allocs = allocs.as_array().unwrap();
            let running: Vec<&Value> = allocs.iter().filter(|a| a["ClientStatus"] == "running").collect();
            running.len() == 1
                && running[0]["JobVersion"] == version
                && running[0]["DesiredStatus"] == "run"
                && allocs
                    .iter()
                    .filter(|a| a["ClientStatus"] != "running")
                    .all(|a| a["DesiredStatus"] == "stop" && a["ClientStatus"] == "complete")
        },
    );
    let running = allocs.as_array().unwrap().iter().find(|a| a["ClientStatus"] == "running").unwrap();
    running["ID"].as_str().unwrap().to_owned()
}

/// Where the allocation's task `t` wrote its PID (`$NOMAD_TASK_DIR/pid`).
fn pid_file(agent: &Agent, alloc: &str) -> PathBuf {
    agent.client_dir.as_ref().unwrap().join("alloc").join(alloc).join("t/local/pid")
}

/// The PID of the allocation's task, once it wrote it; it runs, with the marker.
fn task_pid(agent: &Agent, alloc: &str, reaper: &TaskReaper) -> u32 {
    let file = pid_file(agent, alloc);
    let pid = poll_until(&format!("the task writes its PID to {}", file.display()), DEADLINE, |seen| {
        let pids = pids_in(&file);
        *seen = format!("{pids:?}");
        (pids.len() == 1).then(|| pids[0])
    });
    assert!(reaper.tasks().contains(&pid), "PID {pid} is a live task of this test: {:?}", reaper.tasks());
    pid
}

fn await_gone(pids: &[u32]) {
    await_ended("the task processes (and their process groups)", pids, DEADLINE);
}

/// What `stead alloc logs` prints, once it is `expected` (the task prints before it
/// sleeps, not necessarily before the client reports it running).
fn await_cli_logs(agent: &Agent, dir: &Path, alloc: &str, expected: &str) {
    poll_until(&format!("stead alloc logs {alloc} prints {expected:?}"), DEADLINE, |seen| {
        let run = agent.cli(&["alloc", "logs", alloc], dir, None);
        *seen = format!("{run:?}");
        (run.code == Some(0) && run.stdout == expected).then_some(())
    });
}

/// The job as submitted, without what the server sets on each version.
fn spec(job: &Value) -> Value {
    let mut job = job.clone();
    let fields = job.as_object_mut().unwrap();
    for server_set in [
        "Version",
        "SubmitTime",
        "CreateIndex",
        "ModifyIndex",
        "JobModifyIndex",
        "Stable",
        "Status",
        "StatusDescription",
    ] {
        fields.remove(server_set);
    }
    job
}

#[test]
fn a_raw_exec_job_runs_shows_its_logs_over_the_cli_and_http_and_stop_purge_removes_it_and_its_processes() {
    let reaper = TaskReaper::new("lifecycle-run");
    let agent = dev_agent(&reaper);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("life.nomad.hcl"), job_hcl("life", reaper.marker())).unwrap();
    let cli = |args: &[&str]| agent.cli(args, dir.path(), None);

    let run = cli(&["job", "run", "life.nomad.hcl"]);
    ok(&run);
    assert!(run.stdout.contains("created: node \""), "{}", run.stdout);
    let alloc = await_only_running(&agent, "life", 0);
    let pid = task_pid(&agent, &alloc, &reaper);

    // The CLI shows it running.
    let status = cli(&["job", "status", "life"]);
    ok(&status);
    let row = status.stdout.lines().find(|l| l.starts_with(&alloc[..8])).unwrap_or_else(|| panic!("{}", status.stdout));
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(columns[2..6], ["g", "0", "run", "running"], "group, version, desired, status: {row}");
    let one = cli(&["alloc", "status", &alloc[..8]]);
    ok(&one);
    for expected in ["\nClient Status       = running\n", "\nTask \"t\" is \"running\"\n", "Started"] {
        assert!(one.stdout.contains(expected), "missing {expected:?} in:\n{}", one.stdout);
    }

    // Its logs, through the CLI and through HTTP: plain, and Nomad's JSON frames.
    await_cli_logs(&agent, dir.path(), &alloc, "hello v1\n");
    let path = format!("/v1/client/fs/logs/{alloc}?task=t&type=stdout");
    let (code, head, plain) = agent.http("GET", &format!("{path}&plain=true"), "", DEADLINE);
    assert_eq!((code, plain.as_str()), (200, "hello v1\n"), "{head}");
    let (code, head, framed) = agent.http("GET", &path, "", DEADLINE);
    assert_eq!(code, 200, "{head}\n{framed}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let frames: Vec<Value> =
        serde_json::Deserializer::from_str(&framed).into_iter::<Value>().map(|f| f.unwrap()).collect();
    assert!(!frames.is_empty(), "frames: {framed}");
    assert_eq!(frames[0]["Offset"], 0, "{framed}");
    let mut data = Vec::new();
    for frame in &frames {
        assert!(frame["File"].as_str().unwrap().ends_with("t.stdout.0"), "{frame}");
        let bytes = base64::engine::general_purpose::STANDARD.decode(frame["Data"].as_str().unwrap()).unwrap();
        data.extend(bytes);
    }
    assert_eq!(String::from_utf8(data).unwrap(), "hello v1\n");

    // Stop: the allocation ends and so does its task; purge: the job is gone.
    ok(&cli(&["job", "stop", "life"]));
    agent.await_json("/v1/job/life/allocations", "the stopped job's allocation completes", DEADLINE, |allocs| {
        allocs.as_array().unwrap().iter().all(|a| a["DesiredStatus"] == "stop" && a["ClientStatus"] == "complete")
    });
    await_gone(&[pid]);
    assert_eq!(reaper.tasks(), Vec::<u32>::new(), "no task process of the job is left");
    let still = agent.get_json("/v1/job/life");
    assert_eq!(still["Stop"], true, "a stopped job stays until purged: {still}");
    ok(&cli(&["job", "stop", "-purge", "life"]));
    let (code, body) = agent.request("GET", "/v1/job/life", "");
    assert_eq!((code, body.as_str()), (404, "job not found\n"));
    let gone = cli(&["job", "status", "life"]);
    assert_eq!(gone.code, Some(1), "{gone:?}");
    assert_eq!(reaper.tasks(), Vec::<u32>::new());
    assert!(agent.interrupt().0.success());
}

#[test]
fn an_update_replaces_the_allocation_history_shows_its_diff_revert_brings_back_v0_and_a_stale_check_index_fails() {
    let reaper = TaskReaper::new("lifecycle-update");
    let agent = dev_agent(&reaper);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("life.nomad.hcl"), job_hcl("life", reaper.marker())).unwrap();
    let cli = |args: &[&str]| agent.cli(args, dir.path(), None);

    ok(&cli(&["job", "run", "life.nomad.hcl"]));
    let first = await_only_running(&agent, "life", 0);
    let first_pid = task_pid(&agent, &first, &reaper);
    await_cli_logs(&agent, dir.path(), &first, "hello v1\n");

    // A changed environment is a new version: a new allocation replaces the old one.
    ok(&cli(&["job", "run", "-var", "greeting=hello v2", "life.nomad.hcl"]));
    let second = await_only_running(&agent, "life", 1);
    assert_ne!(second, first, "a destructive update places a new allocation");
    let second_pid = task_pid(&agent, &second, &reaper);
    await_gone(&[first_pid]);
    await_cli_logs(&agent, dir.path(), &second, "hello v2\n");

    let history = cli(&["job", "history", "-p", "life"]);
    ok(&history);
    let blocks: Vec<&str> = history.stdout.trim_end().split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "one block a version, newest first:\n{}", history.stdout);
    assert!(blocks[0].starts_with("Version     = 1\n"), "{}", blocks[0]);
    assert!(
        blocks[0].contains(concat!(
            "\nDiff        =\n",
            "+/- Job: \"life\"\n",
            "+/- Task Group: \"g\"\n",
            "  +/- Task: \"t\"\n",
            "    +/- Env[GREETING]: \"hello v1\" => \"hello v2\"",
        )),
        "{}",
        blocks[0]
    );
    assert!(blocks[1].starts_with("Version     = 0\n"), "{}", blocks[1]);

    // Revert to version 0: version 2 is version 0's job again, running again.
    ok(&cli(&["job", "revert", "life", "0"]));
    let third = await_only_running(&agent, "life", 2);
    let third_pid = task_pid(&agent, &third, &reaper);
    await_gone(&[second_pid]);
    await_cli_logs(&agent, dir.path(), &third, "hello v1\n");
    let v0 = json(&cli(&["job", "inspect", "-json", "-version", "0", "life"]));
    let v2 = json(&cli(&["job", "inspect", "-json", "-version", "2", "life"]));
    assert_eq!(v2["Version"], 2);
    assert_eq!(spec(&v2), spec(&v0), "version 2 is version 0's job");

    // A plan, then someone else changes the job, then a run with the plan's index.
    let plan = cli(&["job", "plan", "-var", "greeting=hello v3", "life.nomad.hcl"]);
    assert_eq!(plan.code, Some(1), "the plan changes the job: {plan:?}");
    let index = plan
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Job Modify Index: "))
        .unwrap_or_else(|| panic!("the plan prints its index:\n{}", plan.stdout))
        .to_owned();
    let other = cli(&["job", "run", "-detach", "-var", "priority=70", "life.nomad.hcl"]);
    ok(&other);
    let stale = cli(&["job", "run", "-check-index", &index, "-var", "greeting=hello v3", "life.nomad.hcl"]);
    assert_eq!(stale.code, Some(1), "{stale:?}");
    assert_eq!(stale.stderr.lines().last(), Some("Job not updated"), "{}", stale.stderr);
    let job = json(&cli(&["job", "inspect", "-json", "life"]));
    assert_eq!(
        (&job["Version"], &job["Priority"], &job["TaskGroups"][0]["Tasks"][0]["Env"]["GREETING"]),
        (&Value::from(3), &Value::from(70), &Value::from("hello v1")),
        "the other change stands and the stale run changed nothing"
    );

    // A priority is no part of what a task runs: the allocation is updated in place.
    assert_eq!(await_only_running(&agent, "life", 3), third, "the same allocation, at version 3");
    assert_eq!(reaper.tasks(), vec![third_pid], "the same task process");

    // Ctrl-C on a dev agent in memory stops its tasks: nothing could re-attach to them.
    let live = reaper.tasks();
    assert!(agent.interrupt().0.success());
    await_gone(&live);
    assert_eq!(reaper.tasks(), Vec::<u32>::new());
}
