//! The `stead` CLI's server commands as a user runs them: the real binary against a real
//! `stead agent -dev`, over HTTP only; output text, exit codes and errors as Nomad's CLI.
//!
//! Most jobs here ask for a datacenter no node is in, so they stay unplaced and their
//! outcome does not depend on the dev agent's client; the tests at the end run tasks on it
//! (allocations, logs, dispatch, periodic launches, scaling, drains).
#![cfg(not(madsim))]

mod common;

use std::path::Path;

use common::{Agent, CliRun, stead_cli};
use serde_json::Value;

/// A dev agent on free ports (HTTP and gRPC), so tests run side by side.
fn dev_agent() -> Agent {
    Agent::start(&["-rpc-port", "0"])
}

/// A job no node can take (datacenter `nowhere`), with a variable count.
fn unplaceable(id: &str) -> String {
    format!(
        r#"variable "count" {{
  type    = number
  default = 1
}}

job "{id}" {{
  datacenters = ["nowhere"]
  group "g" {{
    count = var.count
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sleep"
        args    = ["600"]
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

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), text).unwrap();
    name.to_owned()
}

/// The job file `<id>.nomad.hcl` for [`unplaceable`] in `dir`.
fn job_file(dir: &Path, id: &str) -> String {
    write(dir, &format!("{id}.nomad.hcl"), &unplaceable(id))
}

fn ok(run: &CliRun) {
    assert_eq!(run.code, Some(0), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
}

fn json(run: &CliRun) -> Value {
    ok(run);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout))
}

/// The full evaluation ID `job run -detach` printed.
fn detached_eval(run: &CliRun) -> String {
    ok(run);
    assert!(run.stdout.contains("Job registration successful"), "{}", run.stdout);
    let id = run.stdout.lines().find_map(|l| l.strip_prefix("Evaluation ID: ")).expect("an evaluation ID").trim();
    assert_eq!(id.len(), 36, "a full UUID: {id}");
    id.to_owned()
}

#[test]
fn job_run_of_a_job_no_node_can_take_shows_the_placement_failure_and_exits_2() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = job_file(dir.path(), "nowhere");
    let run = agent.cli(&["job", "run", &file], dir.path(), None);
    assert_eq!(run.code, Some(2), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    let first = out.lines().next().unwrap_or_default();
    assert!(first.starts_with("==> ") && first.contains(": Monitoring evaluation \""), "{out}");
    let short = first.rsplit('"').nth(1).unwrap();
    assert_eq!(short.len(), 8, "an 8-character ID: {first}");
    for expected in [
        "Evaluation triggered by job \"nowhere\"",
        "Evaluation status changed: \"pending\" -> \"complete\"",
        &format!("Evaluation \"{short}\" finished with status \"complete\" but failed to place all allocations:"),
        "Task Group \"g\" (failed to place 1 allocation):",
        "waiting for additional capacity to place remainder",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(out.lines().any(|l| l.starts_with("      * ")), "the reasons are bullets:\n{out}");
    // The evaluation it watched is the job's.
    let eval = json(&agent.cli(&["eval", "status", "-json", short], dir.path(), None));
    assert_eq!(eval["JobID"], "nowhere");
}

#[test]
fn job_run_detach_prints_the_evaluation_id_that_eval_status_shows() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = job_file(dir.path(), "detached");
    let eval = detached_eval(&agent.cli(&["job", "run", "-detach", &file], dir.path(), None));
    // -detach returns before a worker took the evaluation: wait until one finished it.
    agent.await_json(
        &format!("/v1/evaluation/{eval}"),
        "the evaluation done",
        std::time::Duration::from_secs(30),
        |e| e["Status"] != "pending",
    );
    let run = agent.cli(&["eval", "status", &eval[..6]], dir.path(), None);
    ok(&run);
    for expected in [
        format!("ID                 = {}", &eval[..8]),
        "TriggeredBy        = job-register".to_owned(),
        "Job ID             = detached".to_owned(),
        "Placement Failures = true".to_owned(),
        "Failed Placements\nTask Group \"g\" (failed to place 1 allocation):".to_owned(),
    ] {
        assert!(run.stdout.contains(&expected), "missing {expected:?} in:\n{}", run.stdout);
    }
    let verbose = agent.cli(&["eval", "status", "-verbose", &eval], dir.path(), None);
    assert!(verbose.stdout.contains(&format!("ID                 = {eval}")), "{}", verbose.stdout);
}

#[test]
fn job_plan_exits_1_for_a_new_job_and_0_once_registered_and_prints_the_check_index() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = job_file(dir.path(), "planned");
    let new = agent.cli(&["job", "plan", &file], dir.path(), None);
    assert_eq!(new.code, Some(1), "a new job creates allocations:\n{}{}", new.stdout, new.stderr);
    for expected in [
        "+ Job: \"planned\"\n+ Task Group: \"g\" (1 create)\n  + Task: \"t\" (forces create)\n",
        "\nScheduler dry-run:\n- WARNING: Failed to place all allocations.\n",
        "\nJob Modify Index: 0\nTo submit the job with version verification run:\n\n",
        &format!("\nstead job run -check-index 0 {file}\n\nWhen running the job with the check-index flag"),
    ] {
        assert!(new.stdout.contains(expected), "missing {expected:?} in:\n{}", new.stdout);
    }
    assert!(agent.cli(&["job", "status", "planned"], dir.path(), None).code == Some(1), "a plan commits nothing");
    detached_eval(&agent.cli(&["job", "run", "-detach", "-check-index", "0", &file], dir.path(), None));
    let same = agent.cli(&["job", "plan", &file], dir.path(), None);
    assert_eq!(same.code, Some(0), "an unchanged job:\n{}{}", same.stdout, same.stderr);
    assert!(same.stdout.starts_with("Job: \"planned\"\n"), "{}", same.stdout);
    let index: u64 = same
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Job Modify Index: "))
        .and_then(|n| n.parse().ok())
        .expect("the index");
    assert!(index > 0, "{}", same.stdout);
    assert!(same.stdout.contains(&format!("stead job run -check-index {index} {file}")), "{}", same.stdout);
    let changed = agent.cli(&["job", "plan", "-var", "count=3", &file], dir.path(), None);
    assert_eq!(changed.code, Some(1), "{}{}", changed.stdout, changed.stderr);
    assert!(changed.stdout.contains("+/- Count: \"1\" => \"3\""), "{}", changed.stdout);
    let diffless = agent.cli(&["job", "plan", "-diff=false", "-var", "count=3", &file], dir.path(), None);
    assert!(diffless.stdout.starts_with("Scheduler dry-run:"), "{}", diffless.stdout);
}

#[test]
fn job_run_with_the_planned_check_index_succeeds_and_with_a_stale_one_is_not_updated() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = job_file(dir.path(), "guarded");
    detached_eval(&agent.cli(&["job", "run", "-detach", &file], dir.path(), None));
    let plan = agent.cli(&["job", "plan", "-var", "count=2", &file], dir.path(), None);
    let index = plan.stdout.lines().find_map(|l| l.strip_prefix("Job Modify Index: ")).expect("the index").to_owned();
    let fresh =
        agent.cli(&["job", "run", "-detach", "-check-index", &index, "-var", "count=2", &file], dir.path(), None);
    detached_eval(&fresh);
    let stale = agent.cli(&["job", "run", "-check-index", &index, "-var", "count=3", &file], dir.path(), None);
    assert_eq!(stale.code, Some(1), "{}{}", stale.stdout, stale.stderr);
    let lines: Vec<&str> = stale.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "the server's error, then Job not updated:\n{}", stale.stderr);
    assert!(
        lines[0].starts_with(&format!("Enforcing job modify index {index}: "))
            && lines[0].contains("conflicting job modify index"),
        "{}",
        stale.stderr
    );
    assert_eq!(lines[1], "Job not updated");
    let job = json(&agent.cli(&["job", "inspect", "-json", "guarded"], dir.path(), None));
    assert_eq!(job["TaskGroups"][0]["Count"], 2, "the stale run changed nothing");
}

#[test]
fn job_history_p_shows_the_diff_an_update_made() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = job_file(dir.path(), "versioned");
    detached_eval(&agent.cli(&["job", "run", "-detach", &file], dir.path(), None));
    detached_eval(&agent.cli(&["job", "run", "-detach", "-var", "count=2", &file], dir.path(), None));
    let run = agent.cli(&["job", "history", "-p", "versioned"], dir.path(), None);
    ok(&run);
    let blocks: Vec<&str> = run.stdout.trim_end().split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "newest first, one block a version:\n{}", run.stdout);
    assert!(blocks[0].starts_with("Version     = 1\nStable      = false\nSubmit Date = "), "{}", blocks[0]);
    assert!(
        blocks[0]
            .contains("\nDiff        =\n+/- Job: \"versioned\"\n+/- Task Group: \"g\"\n  +/- Count: \"1\" => \"2\""),
        "{}",
        blocks[0]
    );
    assert!(blocks[1].starts_with("Version     = 0\n") && !blocks[1].contains("Diff"), "{}", blocks[1]);
    let plain = agent.cli(&["job", "history", "versioned"], dir.path(), None);
    assert!(!plain.stdout.contains("Diff"), "without -p no diff:\n{}", plain.stdout);
    let versions = json(&agent.cli(&["job", "history", "-json", "versioned"], dir.path(), None));
    assert_eq!(versions.as_array().map(Vec::len), Some(2));
    assert_eq!(versions[0]["Version"], 1);
}

#[test]
fn job_revert_submits_an_old_version_as_a_new_one() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = job_file(dir.path(), "reverted");
    detached_eval(&agent.cli(&["job", "run", "-detach", &file], dir.path(), None));
    detached_eval(&agent.cli(&["job", "run", "-detach", "-var", "count=4", &file], dir.path(), None));
    let run = agent.cli(&["job", "revert", "-detach", "reverted", "0"], dir.path(), None);
    ok(&run);
    assert!(run.stdout.starts_with("Evaluation ID: "), "{}", run.stdout);
    let job = json(&agent.cli(&["job", "inspect", "-json", "reverted"], dir.path(), None));
    assert_eq!((job["Version"].clone(), job["TaskGroups"][0]["Count"].clone()), (2.into(), 1.into()));
    let bad = agent.cli(&["job", "revert", "reverted", "latest"], dir.path(), None);
    assert_eq!(bad.code, Some(1));
    assert!(bad.stderr.contains("must be a number"), "{}", bad.stderr);
}

#[test]
fn job_inspect_prints_the_job_wrapped_and_bare_with_json_and_any_version() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = job_file(dir.path(), "inspected");
    detached_eval(&agent.cli(&["job", "run", "-detach", &file], dir.path(), None));
    detached_eval(&agent.cli(&["job", "run", "-detach", "-var", "count=2", &file], dir.path(), None));
    let wrapped = agent.cli(&["job", "inspect", "insp"], dir.path(), None);
    assert!(wrapped.stdout.starts_with("{\n    \"Job\": {\n"), "pretty, four spaces:\n{}", wrapped.stdout);
    let wrapped = json(&wrapped);
    assert_eq!(wrapped["Job"]["ID"], "inspected");
    assert_eq!(wrapped["Job"]["TaskGroups"][0]["Count"], 2);
    let old = json(&agent.cli(&["job", "inspect", "-json", "-version", "0", "inspected"], dir.path(), None));
    assert_eq!((old["Version"].clone(), old["TaskGroups"][0]["Count"].clone()), (0.into(), 1.into()));
    // What inspect prints is a job file again.
    write(dir.path(), "again.json", &wrapped.to_string());
    let plan = agent.cli(&["job", "plan", "again.json"], dir.path(), None);
    assert_eq!(plan.code, Some(0), "{}{}", plan.stdout, plan.stderr);
    let missing = agent.cli(&["job", "inspect", "-version", "9", "inspected"], dir.path(), None);
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("No job version 9"), "{}", missing.stderr);
}

#[test]
fn job_status_lists_jobs_and_shows_one_with_its_summary_placement_failure_and_allocations() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let none = agent.cli(&["job", "status"], dir.path(), None);
    ok(&none);
    assert_eq!(none.stdout, "No running jobs\n");
    let file = job_file(dir.path(), "shown");
    detached_eval(&agent.cli(&["job", "run", "-detach", &file], dir.path(), None));
    let list = agent.cli(&["job", "status"], dir.path(), None);
    ok(&list);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines[0], "ID     Type     Priority  Status   Submit Date");
    assert!(lines[1].starts_with("shown  service  50        pending  "), "{}", list.stdout);
    let one = agent.cli(&["job", "status", "sho"], dir.path(), None);
    ok(&one);
    for expected in [
        "ID            = shown\nName          = shown\nSubmit Date   = ",
        "\nType          = service\nPriority      = 50\nDatacenters   = nowhere\nNamespace     = default\n",
        "\nSummary\nTask Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown\ng           1       0 ",
        "\nPlacement Failure\nTask Group \"g\":\n  * ",
        "\nAllocations\nNo allocations placed\n",
    ] {
        assert!(one.stdout.contains(expected), "missing {expected:?} in:\n{}", one.stdout);
    }
    let short = agent.cli(&["job", "status", "-short", "shown"], dir.path(), None);
    assert!(!short.stdout.contains("Summary"), "{}", short.stdout);
    let list = json(&agent.cli(&["job", "status", "-json"], dir.path(), None));
    assert_eq!(list[0]["ID"], "shown");
    let job = json(&agent.cli(&["job", "status", "-json", "shown"], dir.path(), None));
    assert_eq!(job["ID"], "shown");
    let allocs = agent.cli(&["job", "allocs", "shown"], dir.path(), None);
    ok(&allocs);
    assert_eq!(allocs.stdout, "No allocations placed\n");
    assert_eq!(json(&agent.cli(&["job", "allocs", "-json", "shown"], dir.path(), None)), Value::Array(vec![]));
}

#[test]
fn job_stop_asks_before_stopping_a_prefix_match_and_purge_removes_the_job() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = job_file(dir.path(), "stopped");
    detached_eval(&agent.cli(&["job", "run", "-detach", &file], dir.path(), None));
    let declined = agent.cli(&["job", "stop", "stop"], dir.path(), Some("n\n"));
    ok(&declined);
    assert_eq!(declined.stdout, "Are you sure you want to stop job \"stopped\"? [y/N] Cancelling job stop\n");
    let running = json(&agent.cli(&["job", "status", "-json", "stopped"], dir.path(), None));
    assert_eq!(running["Stop"], false, "declining stops nothing");
    let confirmed = agent.cli(&["job", "stop", "stop"], dir.path(), Some("y\n"));
    ok(&confirmed);
    assert!(confirmed.stdout.contains("Monitoring evaluation"), "{}", confirmed.stdout);
    assert!(confirmed.stdout.contains("finished with status \"complete\""), "{}", confirmed.stdout);
    let list = agent.cli(&["job", "status"], dir.path(), None);
    assert!(list.stdout.contains("dead (stopped)"), "{}", list.stdout);
    // An exact ID does not ask; -detach prints the evaluation.
    let purged = agent.cli(&["job", "stop", "-purge", "-detach", "stopped"], dir.path(), None);
    ok(&purged);
    assert_eq!(purged.stdout.trim().len(), 36, "the evaluation ID: {}", purged.stdout);
    let gone = agent.cli(&["job", "status", "stopped"], dir.path(), None);
    assert_eq!(gone.code, Some(1));
    assert_eq!(gone.stderr, "No job(s) with prefix or id \"stopped\" found\n");
}

#[test]
fn ambiguous_unknown_and_too_short_prefixes_get_nomads_messages() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    for id in ["amb-a", "amb-b"] {
        let file = job_file(dir.path(), id);
        detached_eval(&agent.cli(&["job", "run", "-detach", &file], dir.path(), None));
    }
    let ambiguous = agent.cli(&["job", "status", "amb"], dir.path(), None);
    assert_eq!(ambiguous.code, Some(1));
    assert!(ambiguous.stderr.starts_with("Prefix matched multiple jobs\n\nID     Type"), "{}", ambiguous.stderr);
    assert!(ambiguous.stderr.contains("\namb-a  ") && ambiguous.stderr.contains("\namb-b  "), "{}", ambiguous.stderr);
    let stop = agent.cli(&["job", "stop", "-yes", "amb"], dir.path(), None);
    assert_eq!(stop.code, Some(1), "an ambiguous prefix stops nothing");
    for (args, message) in [
        (&["alloc", "status", "ffff"][..], "No allocation(s) with prefix or id \"ffff\" found\n"),
        (&["eval", "status", "ffff"][..], "No evaluation(s) with prefix or id \"ffff\" found\n"),
        (&["node", "status", "zz"][..], "No node(s) with prefix \"zz\" found\n"),
        (&["eval", "status", "a"][..], "Identifier must contain at least two characters.\n"),
        (&["alloc", "logs", "a"][..], "Identifier must contain at least two characters.\n"),
        (&["node", "drain", "-enable", "-yes", "a"][..], "Identifier must contain at least two characters.\n"),
    ] {
        let run = agent.cli(args, dir.path(), None);
        assert_eq!((run.code, run.stderr.as_str()), (Some(1), message), "{args:?}");
    }
}

#[test]
fn an_agent_that_is_not_there_is_an_error_naming_its_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let address = format!("http://127.0.0.1:{port}");
    let run = stead_cli(&["job", "status", "-address", &address], &[], dir.path(), None);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.starts_with("Error querying jobs: "), "{}", run.stderr);
    assert!(run.stderr.contains("connection refused") && run.stderr.contains(&address), "{}", run.stderr);
    let plan = job_file(dir.path(), "offline");
    let run = stead_cli(&["job", "plan", "-address", &address, &plan], &[], dir.path(), None);
    assert_eq!(run.code, Some(255), "plan errors exit 255: {}", run.stderr);
    assert!(
        run.stderr.starts_with("Error during plan: ") && run.stderr.contains("connection refused"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_address_comes_from_the_flag_then_stead_addr_then_nomad_addr() {
    let agent = dev_agent();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let good = agent.url();
    let nomad = stead_cli(&["job", "status"], &[("NOMAD_ADDR", &good)], dir.path(), None);
    ok(&nomad);
    let stead_first =
        stead_cli(&["job", "status"], &[("NOMAD_ADDR", &good), ("STEAD_ADDR", &closed)], dir.path(), None);
    assert_eq!(stead_first.code, Some(1));
    assert!(stead_first.stderr.contains(&closed), "{}", stead_first.stderr);
    let flag_first = stead_cli(&["job", "status", "-address", &good], &[("STEAD_ADDR", &closed)], dir.path(), None);
    ok(&flag_first);
}

#[test]
fn plan_and_run_errors_exit_with_nomads_codes_and_say_what_failed() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let broken = write(dir.path(), "broken.nomad.hcl", "job \"x\" {\n  group \"g\" {\n");
    let plan = agent.cli(&["job", "plan", &broken], dir.path(), None);
    assert_eq!(plan.code, Some(255), "{}", plan.stderr);
    assert!(
        plan.stderr.starts_with("Error getting job struct: ") && plan.stderr.contains("broken.nomad.hcl"),
        "{}",
        plan.stderr
    );
    // The server refuses a job without tasks: its message comes through.
    let empty = write(dir.path(), "empty.nomad.hcl", "job \"empty\" {\n  group \"g\" {\n  }\n}\n");
    let run = agent.cli(&["job", "run", &empty], dir.path(), None);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.starts_with("Error submitting job: Unexpected response code: 400 ("), "{}", run.stderr);
    let plan = agent.cli(&["job", "plan", &empty], dir.path(), None);
    assert_eq!(plan.code, Some(255), "{}", plan.stderr);
    assert!(plan.stderr.starts_with("Error during plan: Unexpected response code: 400 ("), "{}", plan.stderr);
}

#[test]
fn read_commands_print_the_apis_json() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    assert!(json(&agent.cli(&["node", "status", "-json"], dir.path(), None)).is_array());
    let file = job_file(dir.path(), "jsoned");
    let eval = detached_eval(&agent.cli(&["job", "run", "-detach", &file], dir.path(), None));
    // -detach returns before a worker took the evaluation: wait until one finished it.
    agent.await_json(
        &format!("/v1/evaluation/{eval}"),
        "the evaluation done",
        std::time::Duration::from_secs(30),
        |e| e["Status"] != "pending",
    );
    let e = json(&agent.cli(&["eval", "status", "-json", &eval], dir.path(), None));
    assert_eq!((e["ID"].as_str(), e["TriggeredBy"].as_str()), (Some(eval.as_str()), Some("job-register")));
    assert!(e["FailedTGAllocs"]["g"].is_object(), "{e}");
}

// What needs the dev agent's client node: allocations that run, their logs, drains.

/// A batch job any node takes: prints two lines to stdout and one to stderr.
fn placeable(id: &str) -> String {
    format!(
        r#"job "{id}" {{
  type = "batch"
  group "g" {{
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sh"
        args    = ["-c", "echo first; echo out-line; echo err-line >&2"]
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

/// The job's allocations, once they all are `complete`.
fn completed_allocs(agent: &Agent, job: &str) -> Value {
    agent.wait_for(&format!("/v1/job/{job}/allocations"), 60, |allocs| {
        allocs.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|x| x["ClientStatus"] == "complete"))
    })
}

#[test]
fn job_run_monitors_an_allocation_the_dev_client_runs_and_exits_0() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "ran.nomad.hcl", &placeable("ran"));
    let run = agent.cli(&["job", "run", &file], dir.path(), None);
    ok(&run);
    assert!(run.stdout.contains("created: node \""), "{}", run.stdout);
    assert!(run.stdout.contains("group \"g\""), "{}", run.stdout);
    let nodes = json(&agent.cli(&["node", "status", "-json"], dir.path(), None));
    let node = nodes[0]["ID"].as_str().unwrap().to_owned();
    let list = agent.cli(&["node", "status"], dir.path(), None);
    assert!(list.stdout.starts_with("ID        Node Pool  DC"), "{}", list.stdout);
    let one = agent.cli(&["node", "status", &node[..8]], dir.path(), None);
    ok(&one);
    assert!(one.stdout.contains(&format!("ID              = {}", &node[..8])), "{}", one.stdout);
    assert!(one.stdout.contains("\nAllocated Resources\n") && one.stdout.contains("\nAllocations\n"), "{}", one.stdout);
}

#[test]
fn alloc_status_and_logs_show_what_the_task_did() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "logged.nomad.hcl", &placeable("logged"));
    detached_eval(&agent.cli(&["job", "run", "-detach", &file], dir.path(), None));
    let allocs = completed_allocs(&agent, "logged");
    let alloc = allocs[0]["ID"].as_str().unwrap().to_owned();
    let status = agent.cli(&["alloc", "status", &alloc[..8]], dir.path(), None);
    ok(&status);
    assert!(status.stdout.starts_with(&format!("ID                  = {}", &alloc[..8])), "{}", status.stdout);
    assert!(status.stdout.contains("Task \"t\" is \"dead\""), "{}", status.stdout);
    assert!(status.stdout.contains("Recent Events:\nTime "), "{}", status.stdout);
    let out = agent.cli(&["alloc", "logs", &alloc[..8]], dir.path(), None);
    ok(&out);
    assert_eq!(out.stdout, "first\nout-line\n");
    let err = agent.cli(&["alloc", "logs", "-stderr", &alloc, "t"], dir.path(), None);
    assert_eq!(err.stdout, "err-line\n", "one stream, even stderr, prints to stdout");
    let tail = agent.cli(&["alloc", "logs", "-tail", "-n", "1", &alloc], dir.path(), None);
    assert_eq!(tail.stdout, "out-line\n");
    let bytes = agent.cli(&["alloc", "logs", "-tail", "-c", "4", &alloc], dir.path(), None);
    assert_eq!(bytes.stdout, "ine\n");
    let unknown = agent.cli(&["alloc", "logs", &alloc, "nope"], dir.path(), None);
    assert_eq!(unknown.code, Some(1), "{}", unknown.stdout);
    assert!(unknown.stderr.starts_with("Error reading file: "), "{}", unknown.stderr);
    assert_eq!(json(&agent.cli(&["alloc", "status", "-json", &alloc], dir.path(), None))["ID"], alloc.as_str());
}

#[test]
fn alloc_stop_follows_the_evaluation_it_creates() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "long.nomad.hcl", &unplaceable("long").replace("[\"nowhere\"]", "[\"*\"]"));
    let run = agent.cli(&["job", "run", &file], dir.path(), None);
    ok(&run);
    let allocs = json(&agent.cli(&["job", "allocs", "-json", "long"], dir.path(), None));
    let alloc = allocs[0]["ID"].as_str().unwrap().to_owned();
    let stop = agent.cli(&["alloc", "stop", &alloc[..8]], dir.path(), None);
    ok(&stop);
    assert!(stop.stdout.contains("Monitoring evaluation"), "{}", stop.stdout);
    let detached = agent.cli(&["alloc", "stop", "-detach", &alloc], dir.path(), None);
    ok(&detached);
    assert_eq!(detached.stdout.trim().len(), 36, "{}", detached.stdout);
}

#[test]
fn job_dispatch_starts_an_instance_of_a_parameterized_job() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let parent = placeable("encode")
        .replace("type = \"batch\"", "type = \"batch\"\n  parameterized {\n    meta_required = [\"file\"]\n  }");
    let file = write(dir.path(), "encode.nomad.hcl", &parent);
    let registered = agent.cli(&["job", "run", &file], dir.path(), None);
    ok(&registered);
    assert_eq!(registered.stdout, "Job registration successful\n", "a parameterized job has no evaluation");
    write(dir.path(), "payload", "input");
    let run = agent.cli(&["job", "dispatch", "-detach", "-meta", "file=a.mp4", "encode", "payload"], dir.path(), None);
    ok(&run);
    assert!(run.stdout.starts_with("Dispatched Job ID = encode/dispatch-"), "{}", run.stdout);
    assert!(run.stdout.contains("\nEvaluation ID     = "), "{}", run.stdout);
    let status = agent.cli(&["job", "status", "encode"], dir.path(), None);
    assert!(status.stdout.contains("\nDispatched Jobs\nID "), "{}", status.stdout);
}

#[test]
fn job_periodic_force_launches_a_periodic_job_now() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let parent = placeable("nightly")
        .replace("type = \"batch\"", "type = \"batch\"\n  periodic {\n    crons = [\"0 3 * * *\"]\n  }");
    let file = write(dir.path(), "nightly.nomad.hcl", &parent);
    ok(&agent.cli(&["job", "run", &file], dir.path(), None));
    let run = agent.cli(&["job", "periodic", "force", "-detach", "nightly"], dir.path(), None);
    ok(&run);
    assert!(run.stdout.starts_with("Force periodic successful\nEvaluation ID: "), "{}", run.stdout);
    let status = agent.cli(&["job", "status", "nightly"], dir.path(), None);
    assert!(status.stdout.contains("\nPreviously Launched Jobs\nID "), "{}", status.stdout);
}

#[test]
fn job_scale_changes_the_count_of_the_only_group() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let file = job_file(dir.path(), "scaled");
    detached_eval(&agent.cli(&["job", "run", "-detach", &file], dir.path(), None));
    let run = agent.cli(&["job", "scale", "-detach", "scaled", "3"], dir.path(), None);
    ok(&run);
    assert!(run.stdout.starts_with("Evaluation ID: "), "{}", run.stdout);
    let job = json(&agent.cli(&["job", "inspect", "-json", "scaled"], dir.path(), None));
    assert_eq!(job["TaskGroups"][0]["Count"], 3);
    ok(&agent.cli(&["job", "scale", "-detach", "scaled", "g", "1"], dir.path(), None));
}

#[test]
fn node_drain_and_eligibility_change_the_dev_clients_node() {
    let agent = dev_agent();
    let dir = tempfile::tempdir().unwrap();
    let nodes = json(&agent.cli(&["node", "status", "-json"], dir.path(), None));
    let node = nodes[0]["ID"].as_str().unwrap().to_owned();
    let off = agent.cli(&["node", "eligibility", "-disable", &node[..8]], dir.path(), None);
    ok(&off);
    assert_eq!(off.stdout, format!("Node \"{node}\" scheduling eligibility set: ineligible for scheduling\n"));
    let listed = agent.cli(&["node", "status"], dir.path(), None);
    assert!(listed.stdout.contains("  ineligible  "), "{}", listed.stdout);
    let on = agent.cli(&["node", "eligibility", "-enable", &node], dir.path(), None);
    assert_eq!(on.stdout, format!("Node \"{node}\" scheduling eligibility set: eligible for scheduling\n"));
    // A long task the drain has to move: with nowhere to go, it stays until the deadline.
    let long = write(dir.path(), "long.nomad.hcl", &unplaceable("long").replace("[\"nowhere\"]", "[\"*\"]"));
    ok(&agent.cli(&["job", "run", &long], dir.path(), None));
    let set = agent.cli(&["node", "drain", "-enable", "-yes", "-detach", &node[..8]], dir.path(), None);
    ok(&set);
    assert_eq!(set.stdout, format!("Node \"{node}\" drain strategy set\n"));
    let status = agent.cli(&["node", "status", &node], dir.path(), None);
    assert!(
        status.stdout.contains("\nDrain           = true; ") && status.stdout.contains(" deadline\n"),
        "{}",
        status.stdout
    );
    let unset = agent.cli(&["node", "drain", "-disable", "-yes", &node], dir.path(), None);
    assert_eq!(unset.stdout, format!("Node \"{node}\" drain strategy unset\n"));
    // -force: stop everything now, and wait for it.
    let forced = agent.cli(&["node", "drain", "-enable", "-yes", "-force", &node], dir.path(), None);
    ok(&forced);
    assert!(forced.stdout.contains(&format!("Node \"{node}\" drain strategy set")), "{}", forced.stdout);
    assert!(forced.stdout.contains(" marked for migration"), "{}", forced.stdout);
    assert!(
        forced.stdout.ends_with(&format!("All allocations on node \"{node}\" have stopped.\n")),
        "{}",
        forced.stdout
    );
    let declined = agent.cli(&["node", "drain", "-disable", &node], dir.path(), Some("n\n"));
    assert_eq!(
        declined.stdout,
        format!("Are you sure you want to disable drain mode for node \"{node}\"? [y/N] Canceling drain\n")
    );
}
