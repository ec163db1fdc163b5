//! The job commands that only read: `status`, `allocs`, `history`, `inspect`. Each takes
//! a job ID prefix and `-json` (the API's JSON, as it came).

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::api::{Client, encode};
use super::flags::{Parsed, Spec};
use super::format::{self, flag, int, kv, list, pretty_json, row, table, text};
use super::job_plan;
use super::lookup;

const STATUS: Spec = Spec { bools: &["json", "verbose", "short", "all-allocs"], values: &[] };
const ALLOCS: Spec = Spec { bools: &["json", "verbose", "all"], values: &[] };
const HISTORY: Spec = Spec { bools: &["json", "p", "verbose"], values: &["version"] };
const INSPECT: Spec = Spec { bools: &["json"], values: &["version"] };

/// At most this many task groups are listed under `Placement Failure` (as Nomad).
const FAILED_GROUPS_SHOWN_MAX: usize = 5;

use super::api::parse_command as parse;

/// The one job argument of `parsed`.
fn job_arg<'a>(command: &str, parsed: &'a Parsed) -> anyhow::Result<&'a str> {
    match parsed.positionals.as_slice() {
        [job] => Ok(job),
        other => bail!("{command}: expected one job ID (or a prefix of one), got {} arguments", other.len()),
    }
}

fn job_path(id: &str, suffix: &str) -> String {
    format!("/v1/job/{}{suffix}", encode(id))
}

pub fn status(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("job status", &STATUS, rest)?;
    let verbose = parsed.flag("verbose");
    let Some(prefix) = parsed.positionals.first() else {
        let jobs = client.get("/v1/jobs", &[]).context("Error querying jobs")?.value;
        if parsed.flag("json") {
            println!("{}", pretty_json(&jobs));
        } else if jobs.as_array().is_none_or(Vec::is_empty) {
            println!("No running jobs");
        } else {
            println!("{}", format::job_list(jobs.as_array().map_or(&[], Vec::as_slice)));
        }
        return Ok(0);
    };
    let (id, _) = lookup::job(&client, prefix)?;
    let job = client.get(&job_path(&id, ""), &[]).context("Error querying job")?.value;
    if parsed.flag("json") {
        println!("{}", pretty_json(&job));
        return Ok(0);
    }
    let now = format::now_ns();
    println!("{}", job_header(&job));
    if parsed.flag("short") {
        return Ok(0);
    }
    let periodic = !job.get("Periodic").is_none_or(Value::is_null);
    let parameterized = is_parameterized(&job);
    if periodic || parameterized {
        print_children(&client, &job, parameterized)?;
        return Ok(0);
    }
    let summary = client.get(&job_path(&id, "/summary"), &[]).context("Error querying job summary")?.value;
    println!("\nSummary\n{}", summary_table(&summary));
    let evals = client.get(&job_path(&id, "/evaluations"), &[]).context("Error querying job evaluations")?.value;
    if let Some(text) = placement_failure_text(evals.as_array().map_or(&[], Vec::as_slice)) {
        println!("\nPlacement Failure\n{text}");
    }
    // An agent without deployments answers 404 or null: no section then.
    if let Ok(d) = client.get(&job_path(&id, "/deployment"), &[])
        && d.value.is_object()
    {
        println!("\nLatest Deployment\n{}", format::deployment_block(&d.value, verbose, false));
    }
    let query = if parsed.flag("all-allocs") { vec![("all", "true".to_owned())] } else { vec![] };
    let allocs = client.get(&job_path(&id, "/allocations"), &query).context("Error querying job allocations")?.value;
    println!("\nAllocations");
    println!("{}", allocs_text(&allocs, verbose, now));
    Ok(0)
}

fn allocs_text(allocs: &Value, verbose: bool, now: i64) -> String {
    match allocs.as_array() {
        Some(a) if !a.is_empty() => format::alloc_list(a, verbose, now),
        _ => "No allocations placed".to_owned(),
    }
}

fn is_parameterized(job: &Value) -> bool {
    !job.get("ParameterizedJob").is_none_or(Value::is_null) && !flag(job, "Dispatched")
}

/// The key/value block at the top of `job status`.
pub fn job_header(job: &Value) -> String {
    let datacenters: Vec<&str> = list(job, "Datacenters").iter().filter_map(Value::as_str).collect();
    kv(&[
        ("ID", text(job, "ID").to_owned()),
        ("Name", text(job, "Name").to_owned()),
        ("Submit Date", format::time_ns(int(job, "SubmitTime"))),
        ("Type", text(job, "Type").to_owned()),
        ("Priority", int(job, "Priority").to_string()),
        ("Datacenters", datacenters.join(",")),
        ("Namespace", text(job, "Namespace").to_owned()),
        ("Node Pool", text(job, "NodePool").to_owned()),
        ("Status", format::job_status(job)),
        ("Periodic", (!job.get("Periodic").is_none_or(Value::is_null)).to_string()),
        ("Parameterized", is_parameterized(job).to_string()),
    ])
}

/// `Task Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown` from a job
/// summary.
pub fn summary_table(summary: &Value) -> String {
    const COUNTS: [&str; 7] = ["Queued", "Starting", "Running", "Failed", "Complete", "Lost", "Unknown"];
    let mut rows = vec![row(&["Task Group"].into_iter().chain(COUNTS).collect::<Vec<_>>())];
    for (group, s) in format::entries(summary, "Summary") {
        rows.push(std::iter::once(group.clone()).chain(COUNTS.iter().map(|c| int(s, c).to_string())).collect());
    }
    table(&rows)
}

/// The `Placement Failure` section: when an evaluation of the job is blocked, why the
/// newest evaluation with failures could not place its groups.
pub fn placement_failure_text(evals: &[Value]) -> Option<String> {
    let blocked = evals.iter().any(|e| text(e, "Status") == "blocked");
    let failed = evals
        .iter()
        .filter(|e| e.get("FailedTGAllocs").and_then(Value::as_object).is_some_and(|m| !m.is_empty()))
        .max_by_key(|e| int(e, "CreateIndex"))?;
    if !blocked {
        return None;
    }
    let groups = format::entries(failed, "FailedTGAllocs");
    let mut parts = Vec::new();
    for (group, metric) in groups.iter().take(FAILED_GROUPS_SHOWN_MAX) {
        let mut lines = vec![format!("Task Group {group:?}:")];
        lines.extend(format::alloc_metric_lines(metric, "  "));
        parts.push(lines.join("\n"));
    }
    let mut text = parts.join("\n\n");
    if groups.len() > FAILED_GROUPS_SHOWN_MAX {
        text.push_str(&format!(
            "\n\nPlacement failures truncated. To see remainder run:\nstead eval status {}",
            format::text(failed, "ID")
        ));
    }
    Some(text)
}

/// A periodic or parameterized job's children: their counts and the list.
fn print_children(client: &Client, job: &Value, parameterized: bool) -> anyhow::Result<()> {
    let id = text(job, "ID");
    if parameterized {
        let p = job.get("ParameterizedJob").unwrap_or(&Value::Null);
        let names = |key: &str| list(p, key).iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",");
        println!(
            "\nParameterized Job\n{}",
            kv(&[
                ("Payload", text(p, "Payload").to_owned()),
                ("Required Metadata", names("MetaRequired")),
                ("Optional Metadata", names("MetaOptional")),
            ])
        );
    }
    let summary = client.get(&job_path(id, "/summary"), &[]).context("Error querying job summary")?.value;
    let children = summary.get("Children").unwrap_or(&Value::Null);
    let title = if parameterized { "Parameterized Job Summary" } else { "Children Job Summary" };
    println!(
        "\n{title}\n{}",
        table(&[
            row(&["Pending", "Running", "Dead"]),
            vec![
                int(children, "Pending").to_string(),
                int(children, "Running").to_string(),
                int(children, "Dead").to_string()
            ],
        ])
    );
    let jobs = client.get("/v1/jobs", &[("prefix", format!("{id}/"))]).context("Error querying child jobs")?.value;
    let mine: Vec<&Value> =
        jobs.as_array().map_or(&[][..], Vec::as_slice).iter().filter(|j| text(j, "ParentID") == id).collect();
    let title = if parameterized { "Dispatched Jobs" } else { "Previously Launched Jobs" };
    if mine.is_empty() {
        let none = if parameterized {
            "No dispatched instances of parameterized job found"
        } else {
            "No instances of periodic job found"
        };
        println!("\n{none}");
    } else {
        let mut rows = vec![row(&["ID", "Status"])];
        rows.extend(mine.iter().map(|j| vec![text(j, "ID").to_owned(), format::job_status(j)]));
        println!("\n{title}\n{}", table(&rows));
    }
    Ok(())
}

pub fn allocs(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("job allocs", &ALLOCS, rest)?;
    let (id, _) = lookup::job(&client, job_arg("job allocs", &parsed)?)?;
    let query = if parsed.flag("all") { vec![("all", "true".to_owned())] } else { vec![] };
    let allocs = client.get(&job_path(&id, "/allocations"), &query).context("Error querying job allocations")?.value;
    if parsed.flag("json") {
        println!("{}", pretty_json(&allocs));
    } else {
        println!("{}", allocs_text(&allocs, parsed.flag("verbose"), format::now_ns()));
    }
    Ok(0)
}

pub fn history(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("job history", &HISTORY, rest)?;
    let (id, _) = lookup::job(&client, job_arg("job history", &parsed)?)?;
    let answer = client
        .get(&job_path(&id, "/versions"), &[("diffs", "true".to_owned())])
        .context("Error reading job versions")?
        .value;
    let versions = list(&answer, "Versions");
    let diffs = list(&answer, "Diffs");
    let wanted = match parsed.value("version") {
        None => None,
        Some(v) => Some(v.parse::<i64>().with_context(|| format!("-version {v:?} is not a version number"))?),
    };
    let chosen: Vec<(usize, &Value)> =
        versions.iter().enumerate().filter(|(_, v)| wanted.is_none_or(|w| int(v, "Version") == w)).collect();
    if let Some(w) = wanted
        && chosen.is_empty()
    {
        bail!("No job version {w} found for job {id:?}");
    }
    if parsed.flag("json") {
        let chosen: Vec<&Value> = chosen.iter().map(|(_, v)| *v).collect();
        println!("{}", pretty_json(&json!(chosen)));
        return Ok(0);
    }
    let blocks: Vec<String> = chosen
        .iter()
        .map(|(i, v)| version_block(v, if parsed.flag("p") { diffs.get(*i) } else { None }, parsed.flag("verbose")))
        .collect();
    println!("{}", blocks.join("\n\n"));
    Ok(0)
}

/// One version of `job history`: number, stability, submit date, and with a diff (`-p`)
/// the diff to the version before.
pub fn version_block(job: &Value, diff: Option<&Value>, verbose: bool) -> String {
    let mut out = kv(&[
        ("Version", int(job, "Version").to_string()),
        ("Stable", flag(job, "Stable").to_string()),
        ("Submit Date", format::time_ns(int(job, "SubmitTime"))),
    ]);
    if let Some(d) = diff.filter(|d| !d.is_null()) {
        out.push_str(&format!("\n{:<width$} =\n", "Diff", width = "Submit Date".len()));
        out.push_str(&job_plan::diff_text(d, &Value::Null, verbose));
    }
    out
}

pub fn inspect(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("job inspect", &INSPECT, rest)?;
    let (id, _) = lookup::job(&client, job_arg("job inspect", &parsed)?)?;
    let job = match parsed.value("version") {
        None => client.get(&job_path(&id, ""), &[]).context("Error inspecting job")?.value,
        Some(v) => {
            let wanted: i64 = v.parse().with_context(|| format!("-version {v:?} is not a version number"))?;
            let answer = client.get(&job_path(&id, "/versions"), &[]).context("Error inspecting job")?.value;
            match list(&answer, "Versions").iter().find(|j| int(j, "Version") == wanted) {
                Some(j) => j.clone(),
                None => bail!("No job version {wanted} found for job {id:?}"),
            }
        }
    };
    if parsed.flag("json") {
        println!("{}", pretty_json(&job));
    } else {
        println!("{}", pretty_json(&json!({"Job": job})));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_status_header_lists_the_job_as_nomad_does() {
        let job = json!({"ID": "web", "Name": "web", "SubmitTime": 1_796_102_511_500_000_000i64, "Type": "service",
                         "Priority": 50, "Datacenters": ["dc1", "dc2"], "Namespace": "default", "NodePool": "default",
                         "Status": "dead", "Stop": true, "Periodic": null, "ParameterizedJob": null});
        assert_eq!(
            job_header(&job),
            "ID            = web\n\
             Name          = web\n\
             Submit Date   = 2026-12-01T05:21:51Z\n\
             Type          = service\n\
             Priority      = 50\n\
             Datacenters   = dc1,dc2\n\
             Namespace     = default\n\
             Node Pool     = default\n\
             Status        = dead (stopped)\n\
             Periodic      = false\n\
             Parameterized = false"
        );
    }

    #[test]
    fn the_summary_has_a_row_per_group() {
        let summary = json!({"Summary": {"cache": {"Queued": 1, "Running": 2}, "api": {"Complete": 3}}});
        assert_eq!(
            summary_table(&summary),
            "Task Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown\n\
             api         0       0         0        0       3         0     0\n\
             cache       1       0         2        0       0         0     0"
        );
    }

    #[test]
    fn placement_failures_show_while_an_evaluation_is_blocked() {
        let register = json!({"ID": "a", "Status": "complete", "CreateIndex": 5,
                              "FailedTGAllocs": {"cache": {"NodesEvaluated": 0}}});
        let blocked = json!({"ID": "b", "Status": "blocked", "CreateIndex": 6, "FailedTGAllocs": {}});
        assert_eq!(
            placement_failure_text(&[register.clone(), blocked]).unwrap(),
            "Task Group \"cache\":\n  * No nodes were eligible for evaluation"
        );
        assert_eq!(placement_failure_text(&[register]), None, "nothing waits for capacity any more");
    }

    #[test]
    fn a_history_entry_shows_its_diff_under_diff() {
        let v1 = json!({"Version": 1, "Stable": false, "SubmitTime": 0});
        let diff = json!({"Type": "Edited", "ID": "web", "Fields": [], "Objects": [], "TaskGroups": [{
            "Type": "Edited", "Name": "cache", "Objects": [], "Tasks": [], "Updates": {},
            "Fields": [{"Type": "Edited", "Name": "Count", "Old": "1", "New": "2", "Annotations": []}]}]});
        assert_eq!(
            version_block(&v1, Some(&diff), false),
            "Version     = 1\n\
             Stable      = false\n\
             Submit Date = 1970-01-01T00:00:00Z\n\
             Diff        =\n\
             +/- Job: \"web\"\n\
             +/- Task Group: \"cache\"\n  \
               +/- Count: \"1\" => \"2\""
        );
        assert!(!version_block(&v1, None, false).contains("Diff"));
    }
}
