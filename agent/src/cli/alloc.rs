//! `stead alloc status|logs|stop`: an allocation named by a prefix of its ID (two
//! characters at least).

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use super::api::{Client, encode};
use super::flags::{Parsed, Spec};
use super::format::{self, int, kv, list, pretty_json, row, short, table, text};
use super::lookup::{self, Kind};
use super::{monitor, server};

pub const USAGE: &str = "\
Usage: stead alloc <subcommand> [options] <alloc>

Subcommands:
    status [-json] [-verbose] <alloc>
                        Show an allocation: its placement, tasks and their recent events
    logs [-stderr] [-f] [-tail] [-n lines] [-c bytes] <alloc> [<task>]
                        Print a task's logs (the task may be left out when there is one)
    stop [-detach] [-verbose] <alloc>
                        Stop an allocation (the scheduler replaces it) and follow the evaluation

Takes -address, -token and -namespace (see `stead job help`).
";

const STATUS: Spec = Spec { bools: &["json", "verbose"], values: &[] };
const LOGS: Spec = Spec { bools: &["stderr", "stdout", "f", "tail", "verbose"], values: &["n", "c", "task"] };
const STOP: Spec = Spec { bools: &["detach", "verbose"], values: &[] };

/// `-tail` without `-n` or `-c`: the last this many lines (Nomad's default).
const TAIL_LINES_DEFAULT: u64 = 10;
/// `-n N` asks the server for the last N times this many bytes, then keeps N lines (lines
/// are rarely longer; Nomad's estimate).
const BYTES_PER_LINE: u64 = 120;
/// With `-f -n N`: the tail is what arrives before the stream pauses this long; after
/// that, everything is printed as it comes.
const TAIL_SETTLE: Duration = Duration::from_millis(500);

pub fn run(args: &[String]) -> anyhow::Result<u8> {
    let Some((sub, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(1);
    };
    match sub.as_str() {
        "status" => Ok(server(status(rest), 1)),
        "logs" => Ok(server(logs(rest), 1)),
        "stop" => Ok(server(stop(rest), 1)),
        "help" | "-h" | "-help" | "--help" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => bail!("alloc: unknown subcommand {other:?}\n\n{USAGE}"),
    }
}

use super::api::parse_command as parse;

/// The full allocation named by `prefix`.
fn resolve(client: &Client, prefix: &str, verbose: bool) -> anyhow::Result<Value> {
    let stub = lookup::uuid(client, Kind::Alloc, prefix, verbose)?;
    let path = format!("/v1/allocation/{}", encode(text(&stub, "ID")));
    Ok(client.get(&path, &[]).context("Error querying allocation")?.value)
}

fn one_alloc<'a>(command: &str, parsed: &'a Parsed) -> anyhow::Result<&'a str> {
    match parsed.positionals.as_slice() {
        [alloc] => Ok(alloc),
        other => bail!("{command}: expected one allocation ID (or a prefix of one), got {} arguments", other.len()),
    }
}

pub fn status(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("alloc status", &STATUS, rest)?;
    let verbose = parsed.flag("verbose");
    let alloc = resolve(&client, one_alloc("alloc status", &parsed)?, verbose)?;
    if parsed.flag("json") {
        println!("{}", pretty_json(&alloc));
        return Ok(0);
    }
    println!("{}", status_text(&alloc, verbose, format::now_ns()));
    Ok(0)
}

/// The tasks of an allocation, in the order its job names them (or of its task states).
fn task_names(alloc: &Value) -> Vec<String> {
    let group = text(alloc, "TaskGroup");
    let from_job: Vec<String> = alloc
        .get("Job")
        .map(|j| list(j, "TaskGroups"))
        .unwrap_or_default()
        .iter()
        .filter(|g| text(g, "Name") == group)
        .flat_map(|g| list(g, "Tasks").iter().map(|t| text(t, "Name").to_owned()))
        .collect();
    if !from_job.is_empty() {
        return from_job;
    }
    format::entries(alloc, "TaskStates").into_iter().map(|(name, _)| name.clone()).collect()
}

/// All of `alloc status`: the allocation's block, then each task's state, resources and
/// events.
pub fn status_text(alloc: &Value, verbose: bool, now: i64) -> String {
    let mut out = header(alloc, verbose, now);
    for task in task_names(alloc) {
        out.push_str("\n\n");
        out.push_str(&task_text(alloc, &task));
    }
    out
}

fn header(alloc: &Value, verbose: bool, now: i64) -> String {
    let when = |ns: i64| if verbose { format::time_ns(ns) } else { format::ago(ns, now) };
    let mut rows = vec![
        ("ID", short(text(alloc, "ID"), verbose).to_owned()),
        ("Eval ID", short(text(alloc, "EvalID"), verbose).to_owned()),
        ("Name", text(alloc, "Name").to_owned()),
        ("Node ID", short(text(alloc, "NodeID"), verbose).to_owned()),
        ("Node Name", text(alloc, "NodeName").to_owned()),
        ("Job ID", text(alloc, "JobID").to_owned()),
        ("Job Version", alloc.get("Job").map_or(int(alloc, "JobVersion"), |j| int(j, "Version")).to_string()),
        ("Client Status", text(alloc, "ClientStatus").to_owned()),
        ("Client Description", text(alloc, "ClientDescription").to_owned()),
        ("Desired Status", text(alloc, "DesiredStatus").to_owned()),
        ("Desired Description", text(alloc, "DesiredDescription").to_owned()),
        ("Created", when(int(alloc, "CreateTime"))),
        ("Modified", when(int(alloc, "ModifyTime"))),
    ];
    let deployment = text(alloc, "DeploymentID");
    if !deployment.is_empty() {
        rows.push(("Deployment ID", short(deployment, verbose).to_owned()));
        let health = alloc.pointer("/DeploymentStatus/Healthy").and_then(Value::as_bool);
        let health = match health {
            Some(true) => "healthy",
            Some(false) => "unhealthy",
            None => "-",
        };
        rows.push(("Deployment Health", health.to_owned()));
    }
    let next = text(alloc, "NextAllocation");
    if !next.is_empty() {
        rows.push(("Replacement Alloc ID", short(next, verbose).to_owned()));
    }
    let attempts = alloc.pointer("/RescheduleTracker/Events").and_then(Value::as_array).map_or(0, Vec::len);
    if attempts > 0 {
        rows.push(("Reschedule Attempts", attempts.to_string()));
    }
    if verbose && let Some(m) = alloc.get("Metrics").filter(|m| m.is_object()) {
        rows.push(("Evaluated Nodes", int(m, "NodesEvaluated").to_string()));
        rows.push(("Filtered Nodes", int(m, "NodesFiltered").to_string()));
        rows.push(("Exhausted Nodes", int(m, "NodesExhausted").to_string()));
        rows.push(("Allocation Time", format::go_duration(int(m, "AllocationTime"))));
        rows.push(("Failures", int(m, "CoalescedFailures").to_string()));
    }
    kv(&rows)
}

/// One task: `Task "t" is "running"`, its resources, its lifecycle times, recent events.
fn task_text(alloc: &Value, task: &str) -> String {
    let state = alloc.get("TaskStates").and_then(|s| s.get(task)).unwrap_or(&Value::Null);
    let status = match text(state, "State") {
        "" => "pending",
        s => s,
    };
    let resources = alloc.pointer("/AllocatedResources").unwrap_or(&Value::Null);
    let task_resources = resources.get("Tasks").and_then(|t| t.get(task)).unwrap_or(&Value::Null);
    let cpu = task_resources.get("Cpu").map_or(0, |c| int(c, "CpuShares"));
    let memory = task_resources.get("Memory").map_or(0, |m| int(m, "MemoryMB"));
    let shared = resources.get("Shared").unwrap_or(&Value::Null);
    let disk = int(shared, "DiskMB");
    let addresses: Vec<String> = list(shared, "Ports")
        .iter()
        .map(|p| format!("{}: {}:{}", text(p, "Label"), text(p, "HostIP"), int(p, "Value")))
        .collect();
    let mb = |n: i64| format::ibytes(u64::try_from(n).unwrap_or(0) << 20);
    let resources_table = table(&[
        row(&["CPU", "Memory", "Disk", "Addresses"]),
        vec![format!("{cpu} MHz"), mb(memory), mb(disk), addresses.join(", ")],
    ]);
    let lifecycle = kv(&[
        ("Started At", format::time_text(text(state, "StartedAt"))),
        ("Finished At", format::time_text(text(state, "FinishedAt"))),
        ("Total Restarts", int(state, "Restarts").to_string()),
        ("Last Restart", format::time_text(text(state, "LastRestart"))),
    ]);
    format!(
        "Task {task:?} is {status:?}\nTask Resources:\n{resources_table}\n\nTask Events:\n{lifecycle}\n\nRecent Events:\n{}",
        events_table(list(state, "Events"))
    )
}

/// `Time  Type  Description`, newest first.
pub fn events_table(events: &[Value]) -> String {
    let mut events: Vec<&Value> = events.iter().collect();
    events.sort_by_key(|e| std::cmp::Reverse(int(e, "Time")));
    let mut rows = vec![row(&["Time", "Type", "Description"])];
    for e in events {
        let description = match text(e, "DisplayMessage") {
            "" => text(e, "Message"),
            d => d,
        };
        rows.push(vec![format::time_ns(int(e, "Time")), text(e, "Type").to_owned(), description.to_owned()]);
    }
    table(&rows)
}

/// Where `alloc logs` starts reading and how many lines it keeps.
#[derive(Debug, PartialEq, Eq)]
pub struct LogWindow {
    pub origin: &'static str,
    pub offset: u64,
    pub lines: Option<u64>,
}

/// `-tail`, `-n`, `-c` as Nomad reads them: without `-tail`, everything from the start;
/// with it, the last `-c` bytes, or the last `-n` lines (10 without either).
pub fn log_window(tail: bool, lines: Option<u64>, bytes: Option<u64>) -> LogWindow {
    if !tail {
        return LogWindow { origin: "start", offset: 0, lines: None };
    }
    match (lines, bytes) {
        (None, Some(b)) => LogWindow { origin: "end", offset: b, lines: None },
        (n, b) => {
            let n = n.unwrap_or(TAIL_LINES_DEFAULT);
            LogWindow { origin: "end", offset: b.unwrap_or(n.saturating_mul(BYTES_PER_LINE)), lines: Some(n) }
        }
    }
}

/// The last `n` lines of `bytes` (a final unterminated line counts).
pub fn last_lines(bytes: &[u8], n: u64) -> &[u8] {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &bytes[i + 1..];
            }
        }
    }
    if n == 0 { &[] } else { bytes }
}

pub fn logs(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("alloc logs", &LOGS, rest)?;
    let verbose = parsed.flag("verbose");
    let (prefix, task_arg) = match parsed.positionals.as_slice() {
        [alloc] => (alloc, parsed.value("task").map(str::to_owned)),
        [alloc, task] => (alloc, Some(task.clone())),
        other => bail!("alloc logs: expected an allocation and an optional task, got {} arguments", other.len()),
    };
    let alloc = resolve(&client, prefix, verbose)?;
    let id = text(&alloc, "ID").to_owned();
    let task = match task_arg {
        Some(t) => t,
        None => match task_names(&alloc).as_slice() {
            [only] => only.clone(),
            [] => bail!("Allocation {:?} has no tasks", short(&id, verbose)),
            many => {
                let list: String = many.iter().map(|t| format!("\n  * {t}")).collect();
                bail!(
                    "Allocation {:?} is running the following tasks:{list}\n\nPlease specify the task.",
                    short(&id, verbose)
                )
            }
        },
    };
    let number = |name: &str| -> anyhow::Result<Option<u64>> {
        parsed
            .value(name)
            .map(|v| v.parse::<u64>().with_context(|| format!("-{name} {v:?} is not a count (0 or more)")))
            .transpose()
    };
    let window = log_window(parsed.flag("tail"), number("n")?, number("c")?);
    let follow = parsed.flag("f");
    let streams: Vec<&'static str> = match (parsed.flag("stdout"), parsed.flag("stderr")) {
        (false, false) if follow => vec!["stdout", "stderr"],
        (false, false) | (true, false) => vec!["stdout"],
        (false, true) => vec!["stderr"],
        (true, true) => vec!["stdout", "stderr"],
    };
    let path = format!("/v1/client/fs/logs/{}", encode(&id));
    let mut readers = Vec::new();
    for kind in &streams {
        let query = [
            ("task", task.clone()),
            ("type", (*kind).to_owned()),
            ("follow", follow.to_string()),
            ("origin", window.origin.to_owned()),
            ("offset", window.offset.to_string()),
            ("plain", "true".to_owned()),
        ];
        readers.push((*kind, client.stream(&path, &query).context("Error reading file")?));
    }
    let lines = window.lines;
    // One stream goes to stdout, whichever it is; both (`-f`): each to its own.
    let both = readers.len() > 1;
    let pumps: Vec<_> = readers
        .into_iter()
        .map(|(kind, reader)| {
            std::thread::spawn(move || {
                if both && kind == "stderr" {
                    pump(reader, std::io::stderr(), lines)
                } else {
                    pump(reader, std::io::stdout(), lines)
                }
            })
        })
        .collect();
    for p in pumps {
        match p.join() {
            Ok(result) => result.context("Error reading logs")?,
            Err(_) => bail!("Error reading logs: the reader stopped unexpectedly"),
        }
    }
    Ok(0)
}

/// Copies a log stream to `out` as it arrives; with `lines`, first only the last that
/// many lines of what arrives before the stream pauses (or ends).
fn pump(reader: Box<dyn Read + Send>, mut out: impl Write, lines: Option<u64>) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel::<std::io::Result<Vec<u8>>>();
    std::thread::spawn(move || {
        let mut reader = reader;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.send(Ok(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    if let Some(n) = lines {
        let mut initial = Vec::new();
        loop {
            match rx.recv_timeout(TAIL_SETTLE) {
                Ok(chunk) => initial.extend(chunk?),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        out.write_all(last_lines(&initial, n))?;
        out.flush()?;
    }
    for chunk in rx {
        out.write_all(&chunk?)?;
        out.flush()?;
    }
    Ok(())
}

pub fn stop(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("alloc stop", &STOP, rest)?;
    let verbose = parsed.flag("verbose");
    let stub = lookup::uuid(&client, Kind::Alloc, one_alloc("alloc stop", &parsed)?, verbose)?;
    let path = format!("/v1/allocation/{}/stop", encode(text(&stub, "ID")));
    let answer = client.post(&path, &[], &serde_json::json!({})).context("Error stopping allocation")?;
    monitor::after_write(&client, text(&answer.value, "EvalID"), parsed.flag("detach"), verbose, str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_tail_window_follows_nomads_flags() {
        assert_eq!(log_window(false, Some(5), None), LogWindow { origin: "start", offset: 0, lines: None });
        assert_eq!(log_window(true, None, None), LogWindow { origin: "end", offset: 1200, lines: Some(10) });
        assert_eq!(log_window(true, Some(3), None), LogWindow { origin: "end", offset: 360, lines: Some(3) });
        assert_eq!(log_window(true, None, Some(100)), LogWindow { origin: "end", offset: 100, lines: None });
    }

    #[test]
    fn last_lines_keeps_the_end_of_the_text() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(last_lines(b"a\nb\n", 0), b"");
        assert_eq!(last_lines(b"", 3), b"");
    }

    #[test]
    fn alloc_status_shows_the_allocation_and_each_task_with_its_events() {
        let now = 1_796_102_511_000_000_000i64;
        let alloc = json!({
            "ID": "0af996ed-aaaa", "EvalID": "be9bde98-bbbb", "Name": "example.cache[0]", "NodeID": "43c0b14e-cccc",
            "NodeName": "dev", "JobID": "example", "TaskGroup": "cache", "ClientStatus": "running",
            "ClientDescription": "Tasks are running", "DesiredStatus": "run", "DesiredDescription": "",
            "CreateTime": now - 300_000_000_000, "ModifyTime": now - 290_000_000_000,
            "Job": {"Version": 0, "TaskGroups": [{"Name": "cache", "Tasks": [{"Name": "redis"}]}]},
            "AllocatedResources": {"Tasks": {"redis": {"Cpu": {"CpuShares": 500}, "Memory": {"MemoryMB": 256}}},
                                   "Shared": {"DiskMB": 300, "Ports": [{"Label": "db", "Value": 27908, "HostIP": "127.0.0.1"}]}},
            "TaskStates": {"redis": {"State": "running", "Restarts": 0, "StartedAt": "2026-12-01T05:16:52Z",
                                     "FinishedAt": "0001-01-01T00:00:00Z", "Events": [
                {"Type": "Received", "Time": now - 300_000_000_000, "DisplayMessage": "Task received by client"},
                {"Type": "Started", "Time": now - 299_000_000_000, "DisplayMessage": "Task started by client"},
            ]}},
        });
        assert_eq!(
            status_text(&alloc, false, now),
            "ID                  = 0af996ed\n\
             Eval ID             = be9bde98\n\
             Name                = example.cache[0]\n\
             Node ID             = 43c0b14e\n\
             Node Name           = dev\n\
             Job ID              = example\n\
             Job Version         = 0\n\
             Client Status       = running\n\
             Client Description  = Tasks are running\n\
             Desired Status      = run\n\
             Desired Description = <none>\n\
             Created             = 5m ago\n\
             Modified            = 4m50s ago\n\
             \n\
             Task \"redis\" is \"running\"\n\
             Task Resources:\n\
             CPU      Memory   Disk     Addresses\n\
             500 MHz  256 MiB  300 MiB  db: 127.0.0.1:27908\n\
             \n\
             Task Events:\n\
             Started At     = 2026-12-01T05:16:52Z\n\
             Finished At    = N/A\n\
             Total Restarts = 0\n\
             Last Restart   = N/A\n\
             \n\
             Recent Events:\n\
             Time                  Type      Description\n\
             2026-12-01T05:16:52Z  Started   Task started by client\n\
             2026-12-01T05:16:51Z  Received  Task received by client"
        );
    }
}
