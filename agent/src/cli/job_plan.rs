//! `stead job plan`: what submitting a job file would do, from the server's dry run
//! (`POST /v1/job/:id/plan`): the diff against the stored job in Nomad's `+`/`-`/`+/-`
//! text, the scheduler's verdict, and the job modify index to submit with
//! `-check-index`. Exit 0 when no allocation would be created, stopped or replaced, 1 when
//! some would, 255 on error (Nomad's codes).
//!
//! The server's diff carries no plan annotations; they are filled in here from the
//! plan's `DesiredTGUpdates` (group counts like `(1 create)`, task notes like `(forces
//! create)`), as Nomad's scheduler annotates its diff.

use anyhow::Context;
use serde_json::{Value, json};
use stead_store::diff::{self, DiffType, JobDiff};

use super::api::{self, Client, encode};
use super::flags::{self, Spec};
use super::format::{self, int, text};
use super::job;

const PLAN: Spec = Spec { bools: &["diff", "verbose", "json"], values: &["var", "var-file"] };

pub fn plan(rest: &[String]) -> anyhow::Result<u8> {
    let parsed = flags::parse_with("job plan", &[&PLAN, &api::GLOBALS], rest)?;
    let client = Client::from_flags(&parsed);
    let (job, client) = job::load_for_server(&parsed, &client)?;
    let want_diff = parsed.flag_or("diff", true);
    let verbose = parsed.flag("verbose");
    let path = format!("/v1/job/{}/plan", encode(text(&job, "ID")));
    let answer = client.post(&path, &[], &json!({"Job": job, "Diff": want_diff})).context("Error during plan")?;
    let r = &answer.value;
    let updates = r.pointer("/Annotations/DesiredTGUpdates").cloned().unwrap_or(Value::Null);
    if want_diff && let Some(d) = r.get("Diff").filter(|d| !d.is_null()) {
        println!("{}\n", diff_text(d, &updates, verbose));
    }
    println!("Scheduler dry-run:");
    println!("{}", dry_run_text(r, text(&job, "Type"), format::now_ns()));
    println!();
    job::print_warnings(r);
    let file = parsed.positionals.first().map_or("<file>", String::as_str);
    println!("{}", check_index_text(u64::try_from(int(r, "JobModifyIndex")).unwrap_or(0), file));
    Ok(exit_code(r))
}

/// Nomad's exit code of a plan: 0 when the diff is empty or nothing would be placed,
/// stopped, migrated, replaced or canaried; 1 otherwise.
pub fn exit_code(plan: &Value) -> u8 {
    if plan.pointer("/Diff/Type").and_then(Value::as_str) == Some("None") {
        return 0;
    }
    let changes: i64 = format::entries(plan.get("Annotations").unwrap_or(&Value::Null), "DesiredTGUpdates")
        .iter()
        .map(|(_, u)| {
            ["Stop", "Place", "Migrate", "DestructiveUpdate", "Canary"].iter().map(|k| int(u, k)).sum::<i64>()
        })
        .sum();
    u8::from(changes > 0)
}

/// A diff from the API (`JobDiff` JSON) as the CLI prints it: annotated from
/// `desired_updates` (the plan's `DesiredTGUpdates`, or null), and unless `verbose`
/// without the fields of whole added or deleted jobs, groups and tasks.
pub fn diff_text(diff_json: &Value, desired_updates: &Value, verbose: bool) -> String {
    let mut diff: JobDiff = match serde_json::from_value(diff_json.clone()) {
        Ok(d) => d,
        Err(e) => return format!("(the server's diff could not be read: {e})"),
    };
    annotate(&mut diff, desired_updates);
    if !verbose {
        prune(&mut diff);
    }
    if diff.kind != DiffType::None {
        return diff::render(&diff).trim_end().to_owned();
    }
    // Nothing changed: the job, its groups with what would happen to them, their tasks.
    let mut out = format!("Job: {:?}", diff.id);
    for group in &diff.task_groups {
        out.push_str(&format!("\nTask Group: {:?}{}", group.name, counts(group)));
        for task in &group.tasks {
            out.push_str(&format!("\n  Task: {:?}", task.name));
        }
    }
    out
}

fn counts(group: &diff::TaskGroupDiff) -> String {
    let updates: Vec<String> = group.updates.iter().map(|(k, v)| format!("{v} {k}")).collect();
    if updates.is_empty() { String::new() } else { format!(" ({})", updates.join(", ")) }
}

/// The names Nomad gives a group's planned updates, by `DesiredTGUpdates` field.
const UPDATE_NAMES: &[(&str, &str)] = &[
    ("Ignore", "ignore"),
    ("Place", "create"),
    ("Stop", "destroy"),
    ("Migrate", "migrate"),
    ("Canary", "canary"),
    ("InPlaceUpdate", "in-place update"),
    ("DestructiveUpdate", "create/destroy update"),
];

/// Fills what the server left empty: per group the counts of its planned updates, per
/// task what its change forces.
fn annotate(diff: &mut JobDiff, desired_updates: &Value) {
    for group in &mut diff.task_groups {
        let planned = desired_updates.get(&group.name).unwrap_or(&Value::Null);
        if group.updates.is_empty() {
            for (field, name) in UPDATE_NAMES {
                let n = int(planned, field);
                if n > 0 {
                    group.updates.insert((*name).to_owned(), n as u64);
                }
            }
        }
        for task in &mut group.tasks {
            if !task.annotations.is_empty() {
                continue;
            }
            let note = match task.kind {
                DiffType::Added => Some("forces create"),
                DiffType::Deleted => Some("forces destroy"),
                DiffType::Edited if int(planned, "DestructiveUpdate") > 0 => Some("forces create/destroy update"),
                DiffType::Edited if int(planned, "InPlaceUpdate") > 0 => Some("forces in-place update"),
                _ => None,
            };
            task.annotations.extend(note.map(str::to_owned));
        }
    }
}

/// Nomad shows the fields of a job, group or task only when it was edited (or with
/// `-verbose`): an added job is its groups and tasks, not every default.
fn prune(diff: &mut JobDiff) {
    let whole = |kind: DiffType| matches!(kind, DiffType::Added | DiffType::Deleted);
    if whole(diff.kind) {
        diff.fields.clear();
        diff.objects.clear();
    }
    for group in &mut diff.task_groups {
        if whole(group.kind) {
            group.fields.clear();
            group.objects.clear();
        }
        for task in &mut group.tasks {
            if whole(task.kind) {
                task.fields.clear();
                task.objects.clear();
            }
        }
    }
}

/// The `Scheduler dry-run:` lines of a plan answer.
pub fn dry_run_text(plan: &Value, job_type: &str, now: i64) -> String {
    let failed = format::entries(plan, "FailedTGAllocs");
    let rolling = format::list(plan, "CreatedEvals").iter().find(|e| text(e, "TriggeredBy") == "rolling-update");
    let mut lines = Vec::new();
    if failed.is_empty() {
        lines.push("- All tasks successfully allocated.".to_owned());
    } else {
        lines.push(if job_type == "system" {
            "- WARNING: Failed to place allocations on all nodes.".to_owned()
        } else {
            "- WARNING: Failed to place all allocations.".to_owned()
        });
        for (group, metric) in &failed {
            lines.push(format!("  {}", format::failed_group_line(group, metric)));
            lines.extend(format::alloc_metric_lines(metric, "    "));
            lines.push(String::new());
        }
        if rolling.is_none() {
            lines.pop();
        }
    }
    if let Some(eval) = rolling {
        lines.push(format!("- Rolling update, next evaluation will be in {}.", format::go_duration(int(eval, "Wait"))));
    }
    let next_launch = plan
        .get("NextPeriodicLaunch")
        .and_then(Value::as_str)
        .and_then(stead_store::model::time::parse_rfc3339_nanos)
        .filter(|ns| *ns > 0);
    if let Some(at) = next_launch {
        lines.push(format!(
            "- If submitted now, next periodic launch would be at {} ({}).",
            format::time_ns(at),
            format::ago(at, now)
        ));
    }
    lines.join("\n")
}

/// The `Job Modify Index` paragraph: how to submit exactly what was planned.
pub fn check_index_text(job_modify_index: u64, file: &str) -> String {
    format!(
        "Job Modify Index: {job_modify_index}\n\
         To submit the job with version verification run:\n\
         \n\
         stead job run -check-index {job_modify_index} {file}\n\
         \n\
         When running the job with the check-index flag, the job will only be run if the\n\
         job modify index given matches the server-side version. If the index has\n\
         changed, another user has modified the job and the plan's results are\n\
         potentially invalid."
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use stead_store::diff::diff_jobs;

    use super::*;

    fn job(count: u64, image: &str) -> Value {
        json!({"ID": "example", "Name": "example", "Type": "service", "Priority": 50,
               "TaskGroups": [{"Name": "cache", "Count": count,
                               "Tasks": [{"Name": "redis", "Driver": "docker", "Config": {"image": image}}]}]})
    }

    fn updates(place: i64, ignore: i64, destructive: i64) -> Value {
        json!({"cache": {"Place": place, "Ignore": ignore, "DestructiveUpdate": destructive, "Stop": 0}})
    }

    #[test]
    fn a_new_job_shows_its_groups_and_tasks_with_what_they_force() {
        let d = serde_json::to_value(diff_jobs(&Value::Null, &job(1, "redis:7"))).unwrap();
        assert_eq!(
            diff_text(&d, &updates(1, 0, 0), false),
            "+ Job: \"example\"\n+ Task Group: \"cache\" (1 create)\n  + Task: \"redis\" (forces create)"
        );
        assert!(diff_text(&d, &updates(1, 0, 0), true).contains("+ Priority: \"50\""), "verbose keeps the fields");
    }

    #[test]
    fn an_edited_job_shows_the_changed_fields_and_the_replacement_it_forces() {
        let d = serde_json::to_value(diff_jobs(&job(1, "redis:7"), &job(1, "redis:8"))).unwrap();
        let text = diff_text(&d, &updates(0, 0, 1), false);
        assert!(
            text.starts_with("+/- Job: \"example\"\n+/- Task Group: \"cache\" (1 create/destroy update)\n"),
            "{text}"
        );
        assert!(text.contains("+/- Task: \"redis\" (forces create/destroy update)"), "{text}");
        assert!(text.contains("+/- image: \"redis:7\" => \"redis:8\""), "{text}");
    }

    #[test]
    fn an_unchanged_job_lists_its_groups_as_ignored() {
        let d = serde_json::to_value(diff_jobs(&job(1, "redis:7"), &job(1, "redis:7"))).unwrap();
        assert_eq!(
            diff_text(&d, &updates(0, 1, 0), false),
            "Job: \"example\"\nTask Group: \"cache\" (1 ignore)\n  Task: \"redis\""
        );
    }

    #[test]
    fn the_exit_code_is_one_exactly_when_allocations_would_change() {
        let plan = |diff: &str, u: Value| json!({"Diff": {"Type": diff}, "Annotations": {"DesiredTGUpdates": u}});
        assert_eq!(exit_code(&plan("Added", updates(1, 0, 0))), 1);
        assert_eq!(exit_code(&plan("Edited", updates(0, 0, 2))), 1);
        assert_eq!(exit_code(&plan("Edited", json!({"cache": {"InPlaceUpdate": 3, "Ignore": 1}}))), 0);
        assert_eq!(exit_code(&plan("None", updates(1, 0, 0))), 0, "an empty diff changes nothing");
        assert_eq!(exit_code(&json!({"Diff": null, "Annotations": {"DesiredTGUpdates": updates(1, 0, 0)}})), 1);
    }

    #[test]
    fn the_dry_run_says_whether_everything_was_placed_and_why_not() {
        let ok = json!({"FailedTGAllocs": {}});
        assert_eq!(dry_run_text(&ok, "service", 0), "- All tasks successfully allocated.");
        let failed = json!({"FailedTGAllocs": {"cache": {"NodesEvaluated": 2, "NodesExhausted": 2,
                                                          "DimensionExhausted": {"memory": 2}}}});
        assert_eq!(
            dry_run_text(&failed, "service", 0),
            "- WARNING: Failed to place all allocations.\n  Task Group \"cache\" (failed to place 1 allocation):\n    \
             * Resources exhausted on 2 nodes\n    * Dimension \"memory\" exhausted on 2 nodes"
        );
        let rolling = json!({"FailedTGAllocs": {}, "CreatedEvals": [{"TriggeredBy": "rolling-update", "Wait": 10_000_000_000i64}]});
        assert_eq!(
            dry_run_text(&rolling, "service", 0),
            "- All tasks successfully allocated.\n- Rolling update, next evaluation will be in 10s."
        );
        let periodic = json!({"FailedTGAllocs": {}, "NextPeriodicLaunch": "2026-12-01T06:00:00Z"});
        let now = 1_796_102_511_000_000_000i64; // 05:21:51
        assert_eq!(
            dry_run_text(&periodic, "batch", now),
            "- All tasks successfully allocated.\n\
             - If submitted now, next periodic launch would be at 2026-12-01T06:00:00Z (38m9s from now)."
        );
    }

    #[test]
    fn the_check_index_paragraph_names_the_index_and_the_file() {
        let text = check_index_text(7, "example.nomad.hcl");
        assert!(text.starts_with("Job Modify Index: 7\nTo submit the job with version verification run:\n\n"));
        assert!(text.contains("\nstead job run -check-index 7 example.nomad.hcl\n\n"));
        assert!(text.ends_with("potentially invalid."));
    }
}
