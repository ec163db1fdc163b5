//! `stead eval status`: an evaluation named by a prefix of its ID: what triggered it, how
//! it ended, what it placed and what it could not.

use anyhow::{Context, bail};
use serde_json::Value;

use super::api::{self, Client, encode};
use super::flags::{self, Spec};
use super::format::{self, int, kv, pretty_json, short, text};
use super::lookup::{self, Kind};
use super::{monitor, server};

pub const USAGE: &str = "\
Usage: stead eval status [-json] [-verbose] [-monitor] <eval>

  Shows an evaluation: its trigger and status, the allocations it placed and why it could
  not place others. -monitor follows it to the end as `job run` does.

Takes -address, -token and -namespace (see `stead job help`).
";

const STATUS: Spec = Spec { bools: &["json", "verbose", "monitor"], values: &[] };

pub fn run(args: &[String]) -> anyhow::Result<u8> {
    let Some((sub, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(1);
    };
    match sub.as_str() {
        "status" => Ok(server(status(rest), 1)),
        "help" | "-h" | "-help" | "--help" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => bail!("eval: unknown subcommand {other:?}\n\n{USAGE}"),
    }
}

pub fn status(rest: &[String]) -> anyhow::Result<u8> {
    let parsed = flags::parse_with("eval status", &[&STATUS, &api::GLOBALS], rest)?;
    let client = Client::from_flags(&parsed);
    let verbose = parsed.flag("verbose");
    let [prefix] = parsed.positionals.as_slice() else {
        bail!("eval status: expected one evaluation ID (or a prefix of one), got {}", parsed.positionals.len());
    };
    let stub = lookup::uuid(&client, Kind::Eval, prefix, verbose)?;
    let id = text(&stub, "ID").to_owned();
    if parsed.flag("monitor") {
        return monitor::monitor(&client, &id, verbose);
    }
    let path = format!("/v1/evaluation/{}", encode(&id));
    let eval = client.get(&path, &[]).context("Error querying evaluation")?.value;
    if parsed.flag("json") {
        println!("{}", pretty_json(&eval));
        return Ok(0);
    }
    let now = format::now_ns();
    println!("{}", header(&eval, verbose, now));
    let allocs = client.get(&format!("{path}/allocations"), &[]).context("Error querying evaluation allocations")?;
    if let Some(a) = allocs.value.as_array().filter(|a| !a.is_empty()) {
        println!("\nPlaced Allocations\n{}", format::alloc_list(a, verbose, now));
    }
    if let Some(text) = failures_text(&eval, verbose) {
        println!("\nFailed Placements\n{text}");
    }
    Ok(0)
}

/// The key/value block of `eval status`.
pub fn header(eval: &Value, verbose: bool, now: i64) -> String {
    let when = |ns: i64| if verbose { format::time_ns(ns) } else { format::ago(ns, now) };
    let status = text(eval, "Status");
    let description = match text(eval, "StatusDescription") {
        "" => status,
        d => d,
    };
    let failures = eval.get("FailedTGAllocs").and_then(Value::as_object).is_some_and(|m| !m.is_empty());
    let mut rows = vec![
        ("ID", short(text(eval, "ID"), verbose).to_owned()),
        ("Create Time", when(int(eval, "CreateTime"))),
        ("Modify Time", when(int(eval, "ModifyTime"))),
        ("Status", status.to_owned()),
        ("Status Description", description.to_owned()),
        ("Type", text(eval, "Type").to_owned()),
        ("TriggeredBy", text(eval, "TriggeredBy").to_owned()),
    ];
    let trigger = text(eval, "TriggeredBy");
    if trigger.starts_with("node-") && !text(eval, "NodeID").is_empty() {
        rows.push(("Node ID", short(text(eval, "NodeID"), verbose).to_owned()));
    } else if trigger == "deployment-watcher" && !text(eval, "DeploymentID").is_empty() {
        rows.push(("Deployment ID", short(text(eval, "DeploymentID"), verbose).to_owned()));
    } else {
        rows.push(("Job ID", text(eval, "JobID").to_owned()));
    }
    rows.push(("Namespace", text(eval, "Namespace").to_owned()));
    rows.push(("Priority", int(eval, "Priority").to_string()));
    rows.push(("Placement Failures", failures.to_string()));
    let linked = ["PreviousEval", "NextEval", "BlockedEval"];
    if linked.iter().any(|k| !text(eval, k).is_empty()) {
        rows.push(("Previous Eval", short(text(eval, "PreviousEval"), verbose).to_owned()));
        rows.push(("Next Eval", short(text(eval, "NextEval"), verbose).to_owned()));
        rows.push(("Blocked Eval", short(text(eval, "BlockedEval"), verbose).to_owned()));
    }
    kv(&rows)
}

/// Why groups could not be placed, and the evaluation waiting for capacity.
pub fn failures_text(eval: &Value, verbose: bool) -> Option<String> {
    let failed = format::entries(eval, "FailedTGAllocs");
    if failed.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    for (group, metric) in failed {
        let mut lines = vec![format::failed_group_line(group, metric)];
        lines.extend(format::alloc_metric_lines(metric, "  "));
        parts.push(lines.join("\n"));
    }
    let mut text = parts.join("\n\n");
    let blocked = format::text(eval, "BlockedEval");
    if !blocked.is_empty() {
        text.push_str(&format!(
            "\n\nEvaluation {:?} waiting for additional capacity to place remainder",
            short(blocked, verbose)
        ));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_evaluation_with_failures_shows_its_links_and_reasons() {
        let now = 1_796_102_511_000_000_000i64;
        let eval = json!({
            "ID": "57a6e0b3-2cea", "Priority": 50, "Type": "service", "TriggeredBy": "job-register",
            "Namespace": "default", "JobID": "example", "Status": "complete", "StatusDescription": "",
            "BlockedEval": "27aa658d-0537", "CreateTime": now - 60_000_000_000, "ModifyTime": now - 59_000_000_000,
            "FailedTGAllocs": {"cache": {"NodesEvaluated": 2, "ConstraintFiltered": {"${attr.kernel.name} = linux": 2}}},
        });
        assert_eq!(
            header(&eval, false, now),
            "ID                 = 57a6e0b3\n\
             Create Time        = 1m ago\n\
             Modify Time        = 59s ago\n\
             Status             = complete\n\
             Status Description = complete\n\
             Type               = service\n\
             TriggeredBy        = job-register\n\
             Job ID             = example\n\
             Namespace          = default\n\
             Priority           = 50\n\
             Placement Failures = true\n\
             Previous Eval      = <none>\n\
             Next Eval          = <none>\n\
             Blocked Eval       = 27aa658d"
        );
        assert_eq!(
            failures_text(&eval, false).unwrap(),
            "Task Group \"cache\" (failed to place 1 allocation):\n  \
               * Constraint \"${attr.kernel.name} = linux\": 2 nodes excluded by filter\n\
             \n\
             Evaluation \"27aa658d\" waiting for additional capacity to place remainder"
        );
        assert_eq!(failures_text(&json!({"FailedTGAllocs": {}}), false), None);
    }
}
