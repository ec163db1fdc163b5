//! How the server commands print, as Nomad's CLI does: aligned tables and `key = value`
//! blocks (empty cells shown as `<none>`), 8-character IDs, times as RFC 3339 seconds,
//! relative times (`5m2s ago`), byte sizes (`256 MiB`), pretty JSON, and the bullet lines
//! that explain a failed placement. Pure functions over the API's JSON; nothing here does
//! I/O except reading the clock in [`now_ns`].

use serde_json::Value;

/// What an empty cell of a table or an empty value of a block shows.
pub const EMPTY: &str = "<none>";

/// The string member `key` of `v` ("" when absent or not a string).
pub fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The integer member `key` of `v` (0 when absent or not a number).
pub fn int(v: &Value, key: &str) -> i64 {
    v.get(key)
        .and_then(|n| n.as_i64().or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX))))
        .unwrap_or(0)
}

/// The boolean member `key` of `v` (false when absent).
pub fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The array member `key` of `v` (empty when absent or null).
pub fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The members of the object member `key` of `v`, in key order (empty when absent).
pub fn entries<'a>(v: &'a Value, key: &str) -> Vec<(&'a String, &'a Value)> {
    let mut out: Vec<_> = v.get(key).and_then(Value::as_object).map(|m| m.iter().collect()).unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(b.0));
    out
}

/// An ID as the CLI shows it: the first 8 characters, or all of it with `-verbose`.
pub fn short(id: &str, verbose: bool) -> &str {
    if verbose { id } else { id.get(..8).unwrap_or(id) }
}

/// Rows as columns two spaces apart, each as wide as its widest cell, trailing spaces
/// trimmed, empty cells `<none>` (Nomad's `formatList`).
pub fn table(rows: &[Vec<String>]) -> String {
    columns(rows, "  ")
}

/// `key = value` lines, the `=` aligned, empty values `<none>` (Nomad's `formatKV`).
pub fn kv(rows: &[(&str, String)]) -> String {
    let rows: Vec<Vec<String>> = rows.iter().map(|(k, v)| vec![(*k).to_owned(), v.clone()]).collect();
    columns(&rows, " = ")
}

fn columns(rows: &[Vec<String>], glue: &str) -> String {
    let cell = |s: &str| if s.is_empty() { EMPTY.to_owned() } else { s.to_owned() };
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| cell(c)).collect()).collect();
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count)
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i > 0 {
                line.push_str(glue);
            }
            line.push_str(c);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.truncate(out.trim_end_matches('\n').len());
    out
}

/// Indents every non-empty line of `text` by `pad`.
pub fn indent(text: &str, pad: &str) -> String {
    text.lines().map(|l| if l.is_empty() { String::new() } else { format!("{pad}{l}") }).collect::<Vec<_>>().join("\n")
}

/// The clock, in Unix nanoseconds.
pub fn now_ns() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}

/// A Unix-nanosecond time as Nomad's CLI prints one, to the second (`2026-12-01T05:21:51Z`).
/// Always UTC; a time before 1970 prints as 1970.
pub fn time_ns(unix_nanos: i64) -> String {
    let ns = unix_nanos.max(0);
    stead_store::model::time::format_rfc3339_nanos(ns - ns % 1_000_000_000)
}

/// An RFC 3339 time from the API (`StartedAt`), to the second; `N/A` when unset (empty, or
/// Go's zero time).
pub fn time_text(rfc3339: &str) -> String {
    match stead_store::model::time::parse_rfc3339_nanos(rfc3339) {
        Some(ns) if !rfc3339.starts_with("0001-01-01") => time_ns(ns),
        _ => "N/A".to_owned(),
    }
}

/// Nomad's relative time: the two most significant non-zero units of the difference
/// (`y`, `mo` (30 days), `d`, `h`, `m`, `s`), `ago` or `from now`; `0s ago` when equal; ""
/// when `then` is unset (0).
pub fn ago(then_ns: i64, now_ns: i64) -> String {
    if then_ns == 0 {
        return String::new();
    }
    let round = |ns: i64| ns.saturating_add(500_000_000).div_euclid(1_000_000_000);
    let (then, now) = (round(then_ns), round(now_ns));
    let (mut secs, suffix) = if now >= then { (now - then, " ago") } else { (then - now, " from now") };
    let mut parts = Vec::new();
    for (unit, size) in [("s", 60), ("m", 60), ("h", 24), ("d", 30), ("mo", 12), ("y", i64::MAX)] {
        let n = secs % size;
        if n > 0 {
            parts.push(format!("{n}{unit}"));
        }
        secs /= size;
        if secs == 0 {
            break;
        }
    }
    if parts.is_empty() {
        return format!("0s{suffix}");
    }
    parts.reverse();
    parts.truncate(2);
    format!("{}{suffix}", parts.concat())
}

/// A duration in nanoseconds as Go prints one (`1h0m0s`, `10s`, `1.5s`, `300ms`).
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_owned();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let ns = ns.unsigned_abs();
    if ns < 1_000 {
        return format!("{sign}{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{sign}{}µs", trim_fraction(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{sign}{}ms", trim_fraction(ns as f64 / 1e6));
    }
    let (h, rest) = (ns / 3_600_000_000_000, ns % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let s = trim_fraction(rest as f64 / 1e9);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

/// A duration as Go's `time.ParseDuration` reads one (`90s`, `1h30m`, `1.5h`, `300ms`),
/// in nanoseconds (the model's parser).
pub fn parse_go_duration(text: &str) -> Result<i64, String> {
    text.parse::<stead_store::model::Nanos>().map(|n| n.0)
}

fn trim_fraction(x: f64) -> String {
    let s = format!("{x:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Bytes as Nomad shows sizes (go-humanize's `IBytes`): `0 B`, `980 KiB`, `3.8 GiB`.
pub fn ibytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 10 {
        return format!("{n} B");
    }
    let e = ((n as f64).ln() / 1024f64.ln()).floor() as usize;
    let e = e.min(UNITS.len() - 1);
    let value = (n as f64 / 1024f64.powi(e as i32) * 10.0 + 0.5).floor() / 10.0;
    if value < 10.0 { format!("{value:.1} {}", UNITS[e]) } else { format!("{value:.0} {}", UNITS[e]) }
}

/// JSON as Nomad's `-json` prints it: indented four spaces.
pub fn pretty_json(value: &Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b"    "));
    // A Value always serializes: its map keys are strings.
    let _ = value.serialize(&mut ser);
    String::from_utf8(out).unwrap_or_default()
}

/// `Task Group "g" (failed to place 3 allocations):` for one entry of `FailedTGAllocs`.
pub fn failed_group_line(group: &str, metric: &Value) -> String {
    let count = int(metric, "CoalescedFailures").max(0) + 1;
    let noun = if count > 1 { "allocations" } else { "allocation" };
    format!("Task Group {group:?} (failed to place {count} {noun}):")
}

/// Why a placement failed (an `AllocMetric`), one bullet a line, each after `prefix`.
pub fn alloc_metric_lines(metric: &Value, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    if int(metric, "NodesEvaluated") == 0 {
        out.push(format!("{prefix}* No nodes were eligible for evaluation"));
    }
    for (dc, n) in entries(metric, "NodesAvailable") {
        if n.as_i64() == Some(0) {
            out.push(format!("{prefix}* No nodes are available in datacenter {dc:?}"));
        }
    }
    for (class, n) in entries(metric, "ClassFiltered") {
        out.push(format!("{prefix}* Class {class:?}: {n} nodes excluded by filter"));
    }
    for (constraint, n) in entries(metric, "ConstraintFiltered") {
        out.push(format!("{prefix}* Constraint {constraint:?}: {n} nodes excluded by filter"));
    }
    let exhausted = int(metric, "NodesExhausted");
    if exhausted > 0 {
        out.push(format!("{prefix}* Resources exhausted on {exhausted} nodes"));
    }
    for (class, n) in entries(metric, "ClassExhausted") {
        out.push(format!("{prefix}* Class {class:?} exhausted on {n} nodes"));
    }
    for (dimension, n) in entries(metric, "DimensionExhausted") {
        out.push(format!("{prefix}* Dimension {dimension:?} exhausted on {n} nodes"));
    }
    for quota in list(metric, "QuotaExhausted") {
        out.push(format!("{prefix}* Quota limit hit {:?}", quota.as_str().unwrap_or_default()));
    }
    out
}

/// A job's status as lists show it: `dead (stopped)` for a stopped job.
pub fn job_status(job: &Value) -> String {
    let status = text(job, "Status");
    if flag(job, "Stop") { format!("{status} (stopped)") } else { status.to_owned() }
}

/// The `ID  Type  Priority  Status  Submit Date` table of `job status` from job list stubs.
pub fn job_list(jobs: &[Value]) -> String {
    let mut rows = vec![row(&["ID", "Type", "Priority", "Status", "Submit Date"])];
    for job in jobs {
        let mut kind = text(job, "Type").to_owned();
        if flag(job, "Periodic") {
            kind.push_str("/periodic");
        }
        if flag(job, "ParameterizedJob") {
            kind.push_str("/parameterized");
        }
        rows.push(vec![
            text(job, "ID").to_owned(),
            kind,
            int(job, "Priority").to_string(),
            job_status(job),
            time_ns(int(job, "SubmitTime")),
        ]);
    }
    table(&rows)
}

/// The allocations table of `job status`, `job allocs` and `node status` from allocation
/// list stubs, newest first: relative times, or full times and IDs with `verbose`.
pub fn alloc_list(allocs: &[Value], verbose: bool, now: i64) -> String {
    let mut allocs: Vec<&Value> = allocs.iter().collect();
    allocs.sort_by_key(|a| std::cmp::Reverse(int(a, "CreateIndex")));
    let when = |ns: i64| if verbose { time_ns(ns) } else { ago(ns, now) };
    let mut rows = vec![row(&["ID", "Node ID", "Task Group", "Version", "Desired", "Status", "Created", "Modified"])];
    for a in allocs {
        rows.push(vec![
            short(text(a, "ID"), verbose).to_owned(),
            short(text(a, "NodeID"), verbose).to_owned(),
            text(a, "TaskGroup").to_owned(),
            int(a, "JobVersion").to_string(),
            text(a, "DesiredStatus").to_owned(),
            text(a, "ClientStatus").to_owned(),
            when(int(a, "CreateTime")),
            when(int(a, "ModifyTime")),
        ]);
    }
    table(&rows)
}

/// The table of `Prefix matched multiple allocations`: allocation list stubs with their
/// evaluation and node.
pub fn alloc_match_list(allocs: &[Value], verbose: bool, now: i64) -> String {
    let mut rows = vec![row(&[
        "ID",
        "Eval ID",
        "Node ID",
        "Node Name",
        "Task Group",
        "Version",
        "Desired",
        "Status",
        "Created",
        "Modified",
    ])];
    for a in allocs {
        rows.push(vec![
            short(text(a, "ID"), verbose).to_owned(),
            short(text(a, "EvalID"), verbose).to_owned(),
            short(text(a, "NodeID"), verbose).to_owned(),
            text(a, "NodeName").to_owned(),
            text(a, "TaskGroup").to_owned(),
            int(a, "JobVersion").to_string(),
            text(a, "DesiredStatus").to_owned(),
            text(a, "ClientStatus").to_owned(),
            ago(int(a, "CreateTime"), now),
            ago(int(a, "ModifyTime"), now),
        ]);
    }
    table(&rows)
}

/// The evaluations table (`Prefix matched multiple evaluations`).
pub fn eval_list(evals: &[Value], verbose: bool) -> String {
    let mut rows = vec![row(&["ID", "Priority", "Triggered By", "Job ID", "Status", "Placement Failures"])];
    for e in evals {
        let failures = e.get("FailedTGAllocs").and_then(Value::as_object).is_some_and(|m| !m.is_empty());
        rows.push(vec![
            short(text(e, "ID"), verbose).to_owned(),
            int(e, "Priority").to_string(),
            text(e, "TriggeredBy").to_owned(),
            text(e, "JobID").to_owned(),
            text(e, "Status").to_owned(),
            failures.to_string(),
        ]);
    }
    table(&rows)
}

/// The `node status` table from node list stubs; `verbose` adds address and version.
pub fn node_list(nodes: &[Value], verbose: bool) -> String {
    let mut header = vec!["ID", "Node Pool", "DC", "Name", "Class"];
    if verbose {
        header.extend(["Address", "Version"]);
    }
    header.extend(["Drain", "Eligibility", "Status"]);
    let mut rows = vec![row(&header)];
    for n in nodes {
        let mut cells = vec![
            short(text(n, "ID"), verbose).to_owned(),
            text(n, "NodePool").to_owned(),
            text(n, "Datacenter").to_owned(),
            text(n, "Name").to_owned(),
            text(n, "NodeClass").to_owned(),
        ];
        if verbose {
            cells.extend([text(n, "Address").to_owned(), text(n, "Version").to_owned()]);
        }
        cells.extend([
            flag(n, "Drain").to_string(),
            text(n, "SchedulingEligibility").to_owned(),
            text(n, "Status").to_owned(),
        ]);
        rows.push(cells);
    }
    table(&rows)
}

/// A deployment's `ID` … `Description` block and its `Deployed` table; `with_job` adds the
/// job's ID and version (the monitor's block; `job status` leaves them out).
pub fn deployment_block(d: &Value, verbose: bool, with_job: bool) -> String {
    let mut rows = vec![("ID", short(text(d, "ID"), verbose).to_owned())];
    if with_job {
        rows.push(("Job ID", text(d, "JobID").to_owned()));
        rows.push(("Job Version", int(d, "JobVersion").to_string()));
    }
    rows.push(("Status", text(d, "Status").to_owned()));
    rows.push(("Description", text(d, "StatusDescription").to_owned()));
    format!("{}\n\nDeployed\n{}", kv(&rows), deployed_table(d))
}

/// Per task group of a deployment: desired, placed, healthy...; the auto-revert, promoted
/// and canaries columns only when some group uses them.
pub fn deployed_table(d: &Value) -> String {
    let groups = entries(d, "TaskGroups");
    let auto_revert = groups.iter().any(|(_, g)| flag(g, "AutoRevert"));
    let canaries = groups.iter().any(|(_, g)| int(g, "DesiredCanaries") > 0);
    let mut header = vec!["Task Group"];
    if auto_revert {
        header.push("Auto Revert");
    }
    if canaries {
        header.push("Promoted");
    }
    header.push("Desired");
    if canaries {
        header.push("Canaries");
    }
    header.extend(["Placed", "Healthy", "Unhealthy", "Progress Deadline"]);
    let mut rows = vec![row(&header)];
    for (name, g) in groups {
        let mut cells = vec![name.clone()];
        if auto_revert {
            cells.push(flag(g, "AutoRevert").to_string());
        }
        if canaries {
            cells.push(flag(g, "Promoted").to_string());
        }
        cells.push(int(g, "DesiredTotal").to_string());
        if canaries {
            cells.push(int(g, "DesiredCanaries").to_string());
        }
        cells.extend([
            int(g, "PlacedAllocs").to_string(),
            int(g, "HealthyAllocs").to_string(),
            int(g, "UnhealthyAllocs").to_string(),
            time_text(text(g, "RequireProgressBy")),
        ]);
        rows.push(cells);
    }
    table(&rows)
}

/// A table row of fixed headers.
pub fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_columns_two_spaces_apart_and_show_empty_cells_as_none() {
        let rows = vec![row(&["ID", "Type", "Status"]), row(&["example", "service", ""]), row(&["a", "batch", "dead"])];
        assert_eq!(table(&rows), "ID       Type     Status\nexample  service  <none>\na        batch    dead");
    }

    #[test]
    fn key_value_blocks_align_the_equals_sign() {
        let text = kv(&[("ID", "web".into()), ("Submit Date", "2026-01-01T00:00:00Z".into()), ("Class", "".into())]);
        assert_eq!(text, "ID          = web\nSubmit Date = 2026-01-01T00:00:00Z\nClass       = <none>");
    }

    #[test]
    fn relative_times_keep_the_two_most_significant_units() {
        let s = 1_000_000_000i64;
        let now = 1_800_000_000 * s;
        assert_eq!(ago(now, now), "0s ago");
        assert_eq!(ago(now - 5 * s, now), "5s ago");
        assert_eq!(ago(now - (5 * 60 + 2) * s, now), "5m2s ago");
        assert_eq!(ago(now - (3600 + 5) * s, now), "1h5s ago", "a zero unit is skipped");
        assert_eq!(ago(now - (2 * 86_400 + 3 * 3600 + 4 * 60) * s, now), "2d3h ago");
        assert_eq!(ago(now + 90 * s, now), "1m30s from now");
        assert_eq!(ago(0, now), "", "an unset time is blank");
    }

    #[test]
    fn times_print_to_the_second_in_utc_and_unset_ones_as_na() {
        assert_eq!(time_ns(1_796_102_511_500_000_000), "2026-12-01T05:21:51Z");
        assert_eq!(time_text("2026-12-01T05:21:51.123456Z"), "2026-12-01T05:21:51Z");
        assert_eq!(time_text("0001-01-01T00:00:00Z"), "N/A");
        assert_eq!(time_text(""), "N/A");
        assert_eq!(time_ns(i64::MIN), "1970-01-01T00:00:00Z");
        assert_eq!(time_ns(i64::MAX), "2262-04-11T23:47:16Z");
        assert_eq!(ago(i64::MIN + 1, i64::MAX), "593y23d ago", "extreme times do not overflow");
    }

    #[test]
    fn durations_and_sizes_print_as_go_and_humanize_do() {
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(10_000_000_000), "10s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(300_000_000), "300ms");
        assert_eq!(go_duration(-1_000_000_000), "-1s");
        assert_eq!(parse_go_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_go_duration("-1s"), Ok(-1_000_000_000));
        assert!(parse_go_duration("10").is_err() && parse_go_duration("5x").is_err());
        assert_eq!(ibytes(0), "0 B");
        assert_eq!(ibytes(256 << 20), "256 MiB");
        assert_eq!(ibytes(3_900_000_000), "3.6 GiB");
        assert_eq!(ibytes(1003 * 1024), "1003 KiB");
    }

    #[test]
    fn short_ids_are_eight_characters_unless_verbose() {
        assert_eq!(short("57a6e0b3-2cea-4d5b-b5b8-15848424daef", false), "57a6e0b3");
        assert_eq!(short("57a6e0b3-2cea-4d5b-b5b8-15848424daef", true), "57a6e0b3-2cea-4d5b-b5b8-15848424daef");
        assert_eq!(short("abc", false), "abc");
    }

    #[test]
    fn placement_failures_explain_themselves_in_nomads_bullets() {
        let metric = json!({
            "NodesEvaluated": 3, "NodesAvailable": {"dc1": 3, "dc2": 0},
            "ClassFiltered": {"gpu": 1}, "ConstraintFiltered": {"${attr.kernel.name} = linux": 2},
            "NodesExhausted": 1, "DimensionExhausted": {"memory": 1}, "QuotaExhausted": [],
            "CoalescedFailures": 2,
        });
        assert_eq!(failed_group_line("cache", &metric), "Task Group \"cache\" (failed to place 3 allocations):");
        assert_eq!(
            alloc_metric_lines(&metric, "  ").join("\n"),
            r#"  * No nodes are available in datacenter "dc2"
  * Class "gpu": 1 nodes excluded by filter
  * Constraint "${attr.kernel.name} = linux": 2 nodes excluded by filter
  * Resources exhausted on 1 nodes
  * Dimension "memory" exhausted on 1 nodes"#
        );
        let none = json!({"NodesEvaluated": 0});
        assert_eq!(failed_group_line("g", &none), "Task Group \"g\" (failed to place 1 allocation):");
        assert_eq!(alloc_metric_lines(&none, ""), ["* No nodes were eligible for evaluation"]);
    }

    #[test]
    fn job_lists_show_type_suffixes_and_stopped_jobs() {
        let jobs = [
            json!({"ID": "web", "Type": "service", "Priority": 50, "Status": "running", "SubmitTime": 1_796_102_511_500_000_000i64}),
            json!({"ID": "nightly", "Type": "batch", "Periodic": true, "Priority": 70, "Status": "dead", "Stop": true, "SubmitTime": 0}),
        ];
        assert_eq!(
            job_list(&jobs),
            "ID       Type            Priority  Status          Submit Date\n\
             web      service         50        running         2026-12-01T05:21:51Z\n\
             nightly  batch/periodic  70        dead (stopped)  1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn alloc_lists_are_newest_first_with_short_ids_and_relative_times() {
        let now = 1_800_000_000_000_000_000i64;
        let allocs = [
            json!({"ID": "11111111-aaaa", "NodeID": "22222222-bbbb", "TaskGroup": "cache", "JobVersion": 0,
                   "DesiredStatus": "stop", "ClientStatus": "complete", "CreateIndex": 5,
                   "CreateTime": now - 600_000_000_000, "ModifyTime": now - 60_000_000_000}),
            json!({"ID": "33333333-cccc", "NodeID": "22222222-bbbb", "TaskGroup": "cache", "JobVersion": 1,
                   "DesiredStatus": "run", "ClientStatus": "running", "CreateIndex": 9,
                   "CreateTime": now - 5_000_000_000, "ModifyTime": now}),
        ];
        assert_eq!(
            alloc_list(&allocs, false, now),
            "ID        Node ID   Task Group  Version  Desired  Status    Created  Modified\n\
             33333333  22222222  cache       1        run      running   5s ago   0s ago\n\
             11111111  22222222  cache       0        stop     complete  10m ago  1m ago"
        );
    }

    #[test]
    fn deployments_show_their_groups_with_canary_columns_only_when_used() {
        let d = json!({
            "ID": "62eb607c-1111", "JobID": "example", "JobVersion": 0, "Status": "successful",
            "StatusDescription": "Deployment completed successfully",
            "TaskGroups": {"cache": {"DesiredTotal": 1, "PlacedAllocs": 1, "HealthyAllocs": 1,
                                     "RequireProgressBy": "2026-12-01T05:31:51Z"}},
        });
        assert_eq!(
            deployment_block(&d, false, true),
            "ID          = 62eb607c\n\
             Job ID      = example\n\
             Job Version = 0\n\
             Status      = successful\n\
             Description = Deployment completed successfully\n\
             \n\
             Deployed\n\
             Task Group  Desired  Placed  Healthy  Unhealthy  Progress Deadline\n\
             cache       1        1       1        0          2026-12-01T05:31:51Z"
        );
        let mut canary = d.clone();
        canary["TaskGroups"]["cache"]["DesiredCanaries"] = json!(1);
        assert!(deployed_table(&canary).starts_with("Task Group  Promoted  Desired  Canaries  Placed"));
    }

    #[test]
    fn pretty_json_indents_four_spaces() {
        assert_eq!(pretty_json(&json!({"Job": {"ID": "x"}})), "{\n    \"Job\": {\n        \"ID\": \"x\"\n    }\n}");
    }
}
