//! The whole-cluster simulation proves itself through its runner (`stead-sim`, as CI and
//! a developer run it): a cluster under faults keeps every invariant, a seed run in
//! another process ends with the same trace, a failing seed's reproduce command fails the
//! same way, and each planted bug is reported within a bounded number of seeds. Small
//! clusters and short runs (this is the debug build); `scripts/sim.sh` runs the
//! full-size seeds in CI.
#![cfg(madsim)]

use std::process::Command;

use serde_json::Value;

/// What one invocation of the runner printed and how it ended.
struct Ran {
    lines: Vec<String>,
    summary: Value,
    code: i32,
}

fn stead_sim(args: &[&str]) -> Ran {
    let out = Command::new(env!("CARGO_BIN_EXE_stead-sim")).args(args).output().expect("the runner starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    let summary = lines.last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| {
        panic!("no JSON last line; stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr))
    });
    Ran { lines, summary, code: out.status.code().unwrap_or(-1) }
}

const SMALL: [&str; 8] = ["--servers", "3", "--clients", "6", "--duration", "150s", "--quiet", "150s"];

fn small(extra: &[&str]) -> Vec<String> {
    SMALL.iter().chain(extra).map(|s| (*s).to_owned()).collect()
}

fn run_small(extra: &[&str]) -> Ran {
    let args = small(extra);
    stead_sim(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn a_cluster_under_faults_keeps_every_invariant() {
    let ran = run_small(&["--seeds", "3", "--jobs", "2"]);
    let s = &ran.summary;
    assert_eq!((ran.code, s["failures"].as_u64()), (0, Some(0)), "{:#?}", ran.lines);
    assert_eq!(s["seeds"], 3);
    for (field, at_least) in [("faults", 3), ("checks", 1_000), ("ops_acked", 100), ("allocations", 50)] {
        assert!(s[field].as_u64().unwrap_or(0) >= at_least, "{field} in {s}");
    }
}

/// One seed's report, run in a process of its own.
fn report(seed: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_stead-sim"))
        .args(["--run-one", seed])
        .args(small(&["--duration", "60s", "--quiet", "30s"]))
        .output()
        .expect("the runner starts");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("")).expect("a JSON report")
}

#[test]
fn a_seed_run_twice_ends_with_one_trace_and_another_seed_with_another() {
    let (first, again, other) = (report("7"), report("7"), report("8"));
    assert_eq!(first, again, "one seed, two processes");
    assert_ne!(first["digest"], other["digest"], "the digest tells seeds apart");
    // The runner's own check, as CI runs it.
    let ran = run_small(&["--seed", "7", "--seeds", "2", "--determinism", "2", "--duration", "60s", "--quiet", "30s"]);
    assert_eq!(
        (ran.code, &ran.summary["determinism_checked"], &ran.summary["failures"]),
        (0, &2.into(), &0.into()),
        "{:#?}",
        ran.lines
    );
}

/// Runs `seeds` seeds with `bug` planted; some seed must report one of `checks`, and its
/// reproduce command must fail with that check again.
fn caught(bug: &str, checks: &[&str], seeds: u64) {
    let ran = run_small(&["--plant", bug, "--seeds", &seeds.to_string(), "--jobs", "2"]);
    assert_eq!(ran.code, 1, "{:#?}", ran.lines);
    let hit = ran
        .lines
        .iter()
        .find(|l| checks.iter().any(|c| l.contains(&format!(": {c}: "))))
        .unwrap_or_else(|| panic!("{bug}: no seed of {seeds} reported {checks:?}: {:#?}", ran.lines));
    let check = checks.iter().find(|c| hit.contains(&format!(": {c}: "))).expect("matched");
    let repro = hit.split("reproduce: scripts/sim.sh ").nth(1).expect("a reproduce command");
    let again = stead_sim(&repro.split_whitespace().collect::<Vec<_>>());
    assert_eq!(again.code, 1);
    assert!(again.lines.iter().any(|l| l.contains(&format!(": {check}: "))), "{repro}: {:#?}", again.lines);
}

#[test]
fn a_plan_commit_that_skips_the_node_reread_is_caught_over_committing_nodes() {
    // Skipping the re-read loses concurrent plans' usage updates (the record drifts from
    // the allocations) and lets a node take more than it has.
    caught("commit-skips-node-reread", &["node-over-committed", "usage-record-drift"], 6);
}

#[test]
fn a_client_that_does_not_dedupe_a_resent_allocation_is_caught_running_a_task_twice() {
    caught("client-no-dedupe", &["task-runs-twice"], 4);
}

#[test]
fn a_lease_that_never_expires_is_caught_held_by_a_dead_worker() {
    caught("lease-never-expires", &["lease-held-by-dead-worker"], 8);
}

#[test]
fn the_runner_refuses_bad_flags_with_the_reason() {
    for (args, why) in [
        (vec!["--seeds", "x"], "--seeds \"x\" is not a number"),
        (vec!["--plant", "nope"], "--plant \"nope\": unknown bug"),
        (vec!["--clients", "0"], "--clients must be 1 to 200"),
        (vec!["--duration", "ten"], "ten"),
        (vec!["--frobnicate", "1"], "unknown flag --frobnicate"),
        (vec!["--seed", "18446744073709551615", "--seeds", "2"], "run past the largest seed"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stead-sim")).args(&args).output().expect("the runner starts");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
}
