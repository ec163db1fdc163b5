//! Following an evaluation to its end, as Nomad's CLI does after `job run`, `job stop`,
//! `job revert`, `job dispatch`, `alloc stop`...: look at the evaluation and its
//! allocations about every second, print what changed (allocations created, their status,
//! the evaluation's status), then how it finished: placement failures with their reasons
//! and the blocked evaluation waiting for capacity; follow `NextEval`; then, when the
//! evaluation belongs to a deployment, wait for the deployment's outcome.
//!
//! Each look is a blocking query on the evaluation (`?index=N&wait=1s`): a change of the
//! evaluation shows at once, a change of its allocations within a second.
//!
//! Exit codes: 0 done; 2 some allocations could not be placed; 1 the evaluation failed or
//! the deployment did not succeed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use super::api::{Client, encode};
use super::format::{self, int, short, text};

/// How long one look waits for the evaluation to change before the allocations are looked
/// at again (Nomad's monitor polls every second).
const POLL_WAIT: Duration = Duration::from_secs(1);
/// How long one look at a deployment waits for it to change.
const DEPLOYMENT_WAIT: Duration = Duration::from_secs(5);
/// Follow-up evaluations (`NextEval`) followed at most; past it the monitor says where it
/// stopped and returns what it saw.
const EVAL_CHAIN_MAX: usize = 64;
/// The longest `Wait` slept before a follow-up evaluation; a longer one is looked at after
/// this long (the evaluation simply is not done yet then).
const NEXT_EVAL_WAIT_MAX: Duration = Duration::from_secs(600);

/// What the monitor knows of an allocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllocState {
    pub node: String,
    pub group: String,
    pub desired: String,
    pub client: String,
    pub client_description: String,
    pub create_index: i64,
}

/// What the monitor knows of an evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalState {
    pub status: String,
    pub job: String,
    pub node: String,
    pub deployment: String,
    pub create_index: i64,
    pub allocs: BTreeMap<String, AllocState>,
}

impl EvalState {
    /// Before the first look: a pending evaluation.
    pub fn initial() -> EvalState {
        EvalState { status: "pending".to_owned(), ..EvalState::default() }
    }

    /// From an evaluation and its allocation list stubs.
    pub fn of(eval: &Value, allocs: &[Value]) -> EvalState {
        EvalState {
            status: text(eval, "Status").to_owned(),
            job: text(eval, "JobID").to_owned(),
            node: text(eval, "NodeID").to_owned(),
            deployment: text(eval, "DeploymentID").to_owned(),
            create_index: int(eval, "CreateIndex"),
            allocs: allocs
                .iter()
                .map(|a| {
                    let state = AllocState {
                        node: text(a, "NodeID").to_owned(),
                        group: text(a, "TaskGroup").to_owned(),
                        desired: text(a, "DesiredStatus").to_owned(),
                        client: text(a, "ClientStatus").to_owned(),
                        client_description: text(a, "ClientDescription").to_owned(),
                        create_index: int(a, "CreateIndex"),
                    };
                    (text(a, "ID").to_owned(), state)
                })
                .collect(),
        }
    }
}

/// What changed from `old` to `new`, one line each, as the monitor prints them (after a
/// timestamp).
pub fn changes(old: &EvalState, new: &EvalState, verbose: bool) -> Vec<String> {
    let mut out = Vec::new();
    if old.node.is_empty() && !new.node.is_empty() {
        out.push(format!("Evaluation triggered by node {:?}", short(&new.node, verbose)));
    }
    if old.job.is_empty() && !new.job.is_empty() {
        out.push(format!("Evaluation triggered by job {:?}", new.job));
    }
    if old.deployment.is_empty() && !new.deployment.is_empty() {
        out.push(format!("Evaluation within deployment: {:?}", short(&new.deployment, verbose)));
    }
    for (id, alloc) in &new.allocs {
        let node = short(&alloc.node, verbose);
        let before = old.allocs.get(id);
        let id = short(id, verbose);
        match before {
            None if alloc.create_index < new.create_index => {
                out.push(format!("Allocation {id:?} modified: node {node:?}, group {:?}", alloc.group));
            }
            None if alloc.desired == "run" => {
                out.push(format!("Allocation {id:?} created: node {node:?}, group {:?}", alloc.group));
            }
            None => {}
            Some(before) if before.client != alloc.client => {
                let why = if alloc.client_description.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", alloc.client_description)
                };
                out.push(format!("Allocation {id:?} status changed: {:?} -> {:?}{why}", before.client, alloc.client));
            }
            Some(_) => {}
        }
    }
    if !old.status.is_empty() && new.status != "pending" && old.status != new.status {
        out.push(format!("Evaluation status changed: {:?} -> {:?}", old.status, new.status));
    }
    out
}

/// How a finished evaluation ended, as the monitor prints it: the `==>` headline, then
/// (for placement failures) the lines after it. And the exit code it means.
pub fn finish(eval: &Value, verbose: bool) -> (String, Vec<Line>, u8) {
    let (id, status) = (short(text(eval, "ID"), verbose), text(eval, "Status"));
    let failed = format::entries(eval, "FailedTGAllocs");
    if failed.is_empty() {
        let code = if status == "failed" { 1 } else { 0 };
        return (format!("Evaluation {id:?} finished with status {status:?}"), Vec::new(), code);
    }
    let headline = format!("Evaluation {id:?} finished with status {status:?} but failed to place all allocations:");
    let mut lines = Vec::new();
    for (group, metric) in failed {
        lines.push(Line::Stamped(format::failed_group_line(group, metric)));
        lines.extend(format::alloc_metric_lines(metric, "  ").into_iter().map(Line::Plain));
    }
    let blocked = text(eval, "BlockedEval");
    if !blocked.is_empty() {
        lines.push(Line::Stamped(format!(
            "Evaluation {:?} waiting for additional capacity to place remainder",
            short(blocked, verbose)
        )));
    }
    (headline, lines, 2)
}

/// A line under a headline: with a timestamp, or a bullet without.
#[derive(Debug, PartialEq)]
pub enum Line {
    Stamped(String),
    Plain(String),
}

/// `==> <time>: line`
fn info(line: &str) {
    println!("==> {}: {line}", format::time_ns(format::now_ns()));
}

/// `    <time>: line`, or `    line` for a bullet.
fn output(line: &Line) {
    match line {
        Line::Stamped(s) => println!("    {}: {s}", format::time_ns(format::now_ns())),
        Line::Plain(s) => println!("    {s}"),
    }
}

/// After a write that created evaluation `eval` (none: nothing to follow): with
/// `detach`, print `detached(eval)`; else follow it.
pub fn after_write(
    client: &Client,
    eval: &str,
    detach: bool,
    verbose: bool,
    detached: impl Fn(&str) -> String,
) -> anyhow::Result<u8> {
    if eval.is_empty() {
        return Ok(0);
    }
    if detach {
        println!("{}", detached(eval));
        return Ok(0);
    }
    monitor(client, eval, verbose)
}

/// Follows evaluation `eval_id` (and its follow-ups, and its deployment) to the end;
/// returns the exit code.
pub fn monitor(client: &Client, eval_id: &str, verbose: bool) -> anyhow::Result<u8> {
    let mut eval_id = eval_id.to_owned();
    let mut code = 0;
    let mut deployment = String::new();
    for followed in 0.. {
        if followed == EVAL_CHAIN_MAX {
            info(&format!(
                "Stopped monitoring after {EVAL_CHAIN_MAX} follow-up evaluations; the next is {:?}",
                short(&eval_id, verbose)
            ));
            break;
        }
        let (eval, state) = follow(client, &eval_id, verbose)?;
        let (headline, lines, c) = finish(&eval, verbose);
        info(&headline);
        for line in &lines {
            output(line);
        }
        code = c;
        if !state.deployment.is_empty() {
            deployment = state.deployment;
        }
        let next = text(&eval, "NextEval");
        if next.is_empty() {
            break;
        }
        let wait = Duration::from_nanos(u64::try_from(int(&eval, "Wait")).unwrap_or(0));
        if !wait.is_zero() {
            info(&format!(
                "Monitoring next evaluation {:?} in {}",
                short(next, verbose),
                format::go_duration(int(&eval, "Wait"))
            ));
            std::thread::sleep(wait.min(NEXT_EVAL_WAIT_MAX));
        }
        eval_id = next.to_owned();
    }
    if deployment.is_empty() {
        return Ok(code);
    }
    match monitor_deployment(client, &deployment, verbose)? {
        Some(0) => Ok(0),
        Some(failed) => Ok(failed),
        None => Ok(code),
    }
}

/// Looks at one evaluation until it is complete, failed or canceled, printing changes.
fn follow(client: &Client, eval_id: &str, verbose: bool) -> anyhow::Result<(Value, EvalState)> {
    info(&format!("Monitoring evaluation {:?}", short(eval_id, verbose)));
    let path = format!("/v1/evaluation/{}", encode(eval_id));
    let allocs_path = format!("{path}/allocations");
    let mut state = EvalState::initial();
    let mut index = 0;
    // Until the evaluation ends: the scheduler's own bounds (plan attempts, lease
    // deliveries) end every evaluation; Ctrl-C ends the wait.
    loop {
        let started = Instant::now();
        let answer = client.get_blocking(&path, &[], index, POLL_WAIT).context("Error reading evaluation")?;
        let allocs = client.get(&allocs_path, &[]).context("Error reading evaluation's allocations")?;
        let next = EvalState::of(&answer.value, allocs.value.as_array().map_or(&[], Vec::as_slice));
        for line in changes(&state, &next, verbose) {
            output(&Line::Stamped(line));
        }
        let unchanged = answer.index == index;
        index = answer.index;
        state = next;
        if matches!(state.status.as_str(), "complete" | "failed" | "canceled") {
            return Ok((answer.value, state));
        }
        // A server that does not block (or answered early without a change) is not
        // asked again at once.
        if unchanged && started.elapsed() < POLL_WAIT {
            std::thread::sleep(POLL_WAIT.saturating_sub(started.elapsed()));
        }
    }
}

/// Waits for the deployment's outcome and prints it; `None` when it cannot be read (an
/// agent without deployments).
fn monitor_deployment(client: &Client, id: &str, verbose: bool) -> anyhow::Result<Option<u8>> {
    info(&format!("Monitoring deployment {:?}", short(id, verbose)));
    let path = format!("/v1/deployment/{}", encode(id));
    let mut index = 0;
    // Until the deployment ends: its progress deadline ends it on the server.
    loop {
        let started = Instant::now();
        let answer = match client.get_blocking(&path, &[], index, DEPLOYMENT_WAIT) {
            Ok(a) => a,
            Err(e) if e.status() == Some(404) => {
                output(&Line::Stamped(format!("Deployment {:?} could not be read: {e}", short(id, verbose))));
                return Ok(None);
            }
            Err(e) => return Err(e).context("Error reading deployment"),
        };
        let d = &answer.value;
        let status = text(d, "Status");
        if matches!(status, "successful" | "failed" | "cancelled") {
            let mark = if status == "successful" { "✓" } else { "!" };
            println!("  {mark} Deployment {:?} {status}", short(id, verbose));
            println!();
            println!("    {}", format::time_ns(format::now_ns()));
            println!("{}", format::indent(&format::deployment_block(d, verbose, true), "    "));
            return Ok(Some(if status == "successful" { 0 } else { 1 }));
        }
        let unchanged = answer.index == index;
        index = answer.index;
        if unchanged && started.elapsed() < POLL_WAIT {
            std::thread::sleep(POLL_WAIT.saturating_sub(started.elapsed()));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn alloc(id: &str, client: &str, create_index: i64) -> Value {
        json!({"ID": id, "NodeID": "node-1234-5678", "TaskGroup": "cache", "DesiredStatus": "run",
               "ClientStatus": client, "ClientDescription": "", "CreateIndex": create_index})
    }

    #[test]
    fn the_first_look_says_who_triggered_the_evaluation_and_what_it_created() {
        let eval = json!({"ID": "e", "Status": "complete", "JobID": "example", "CreateIndex": 10});
        let new = EvalState::of(&eval, &[alloc("5e0b39f0-1111", "pending", 12)]);
        assert_eq!(
            changes(&EvalState::initial(), &new, false),
            [
                "Evaluation triggered by job \"example\"",
                "Allocation \"5e0b39f0\" created: node \"node-123\", group \"cache\"",
                "Evaluation status changed: \"pending\" -> \"complete\"",
            ]
        );
    }

    #[test]
    fn later_looks_report_status_changes_only() {
        let eval = json!({"ID": "e", "Status": "pending", "JobID": "example", "CreateIndex": 10});
        let before = EvalState::of(&eval, &[alloc("5e0b39f0-1111", "pending", 12)]);
        let mut running = alloc("5e0b39f0-1111", "running", 12);
        running["ClientDescription"] = json!("Tasks are running");
        let eval = json!({"ID": "e", "Status": "complete", "JobID": "example", "CreateIndex": 10,
                          "DeploymentID": "62eb607c-aaaa"});
        let after = EvalState::of(&eval, &[running]);
        assert_eq!(
            changes(&before, &after, false),
            [
                "Evaluation within deployment: \"62eb607c\"",
                "Allocation \"5e0b39f0\" status changed: \"pending\" -> \"running\" (Tasks are running)",
                "Evaluation status changed: \"pending\" -> \"complete\"",
            ]
        );
        assert!(changes(&after, &after, false).is_empty());
    }

    #[test]
    fn an_older_allocation_the_evaluation_touched_is_modified_not_created() {
        let eval = json!({"ID": "e", "Status": "pending", "JobID": "web", "CreateIndex": 10});
        let new = EvalState::of(&eval, &[alloc("aaaaaaaa-1", "running", 3)]);
        let mut old = EvalState::initial();
        old.job = "web".into();
        assert_eq!(
            changes(&old, &new, true),
            ["Allocation \"aaaaaaaa-1\" modified: node \"node-1234-5678\", group \"cache\""]
        );
    }

    #[test]
    fn a_finished_evaluation_reports_its_placement_failures_and_blocked_evaluation() {
        let eval = json!({
            "ID": "57a6e0b3-2cea", "Status": "complete", "BlockedEval": "27aa658d-0537",
            "FailedTGAllocs": {"cache": {"NodesEvaluated": 0, "CoalescedFailures": 1}},
        });
        let (headline, lines, code) = finish(&eval, false);
        assert_eq!(
            headline,
            "Evaluation \"57a6e0b3\" finished with status \"complete\" but failed to place all allocations:"
        );
        assert_eq!(
            lines,
            [
                Line::Stamped("Task Group \"cache\" (failed to place 2 allocations):".into()),
                Line::Plain("  * No nodes were eligible for evaluation".into()),
                Line::Stamped("Evaluation \"27aa658d\" waiting for additional capacity to place remainder".into()),
            ]
        );
        assert_eq!(code, 2);
        let ok = json!({"ID": "57a6e0b3-2cea", "Status": "complete", "FailedTGAllocs": {}});
        assert_eq!(finish(&ok, false), ("Evaluation \"57a6e0b3\" finished with status \"complete\"".into(), vec![], 0));
        assert_eq!(finish(&json!({"ID": "x", "Status": "failed"}), false).2, 1);
    }
}
