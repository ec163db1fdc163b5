//! `stead node status|drain|eligibility`: client nodes, named by a prefix of their ID
//! (two characters at least).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::api::{Client, encode};
use super::flags::{Parsed, Spec};
use super::format::{self, flag, int, kv, list, pretty_json, row, short, table, text};
use super::lookup::{self, Kind};
use super::{confirm, server};

pub const USAGE: &str = "\
Usage: stead node <subcommand> [options] [node]

Subcommands:
    status [-json] [-verbose] [-short] [node]
                        List nodes, or show one with its resources and allocations
    drain -enable|-disable [-deadline D] [-no-deadline] [-force] [-ignore-system]
          [-keep-ineligible] [-detach] [-yes] [-m message] <node>
                        Move allocations off a node (deadline 1h unless told) and wait until
                        none runs there (-detach: do not wait)
    eligibility -enable|-disable <node>
                        Let the scheduler place allocations on a node, or not

Takes -address, -token and -namespace (see `stead job help`).
";

const STATUS: Spec = Spec { bools: &["json", "verbose", "short"], values: &[] };
const DRAIN: Spec = Spec {
    bools: &["enable", "disable", "no-deadline", "force", "ignore-system", "keep-ineligible", "detach", "yes"],
    values: &["deadline", "m"],
};
const ELIGIBILITY: Spec = Spec { bools: &["enable", "disable"], values: &[] };

/// `node drain` without `-deadline`: allocations still running after an hour are stopped.
const DRAIN_DEADLINE_DEFAULT_NS: i64 = 3_600_000_000_000;
/// `-force`: a deadline already passed, as Nomad encodes it (-1s).
const DRAIN_FORCE_NS: i64 = -1_000_000_000;
/// How long one look at the node's allocations waits for a change.
const DRAIN_POLL_WAIT: Duration = Duration::from_secs(1);

pub fn run(args: &[String]) -> anyhow::Result<u8> {
    let Some((sub, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(1);
    };
    match sub.as_str() {
        "status" => Ok(server(status(rest), 1)),
        "drain" => Ok(server(drain(rest), 1)),
        "eligibility" => Ok(server(eligibility(rest), 1)),
        "help" | "-h" | "-help" | "--help" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => bail!("node: unknown subcommand {other:?}\n\n{USAGE}"),
    }
}

use super::api::parse_command as parse;

fn one_node<'a>(command: &str, parsed: &'a Parsed) -> anyhow::Result<&'a str> {
    match parsed.positionals.as_slice() {
        [node] => Ok(node),
        other => bail!("{command}: expected one node ID (or a prefix of one), got {} arguments", other.len()),
    }
}

fn node_path(id: &str, suffix: &str) -> String {
    format!("/v1/node/{}{suffix}", encode(id))
}

pub fn status(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("node status", &STATUS, rest)?;
    let verbose = parsed.flag("verbose");
    let Some(prefix) = parsed.positionals.first() else {
        let nodes = client.get("/v1/nodes", &[]).context("Error querying node status")?.value;
        if parsed.flag("json") {
            println!("{}", pretty_json(&nodes));
        } else if let Some(n) = nodes.as_array().filter(|n| !n.is_empty()) {
            println!("{}", format::node_list(n, verbose));
        }
        return Ok(0);
    };
    let stub = lookup::uuid(&client, Kind::Node, prefix, verbose)?;
    let id = text(&stub, "ID").to_owned();
    let node = client.get(&node_path(&id, ""), &[]).context("Error querying node info")?.value;
    if parsed.flag("json") {
        println!("{}", pretty_json(&node));
        return Ok(0);
    }
    println!("{}", header(&node, verbose));
    if parsed.flag("short") {
        return Ok(0);
    }
    let allocs = client.get(&node_path(&id, "/allocations"), &[]).context("Error querying node allocations")?.value;
    let allocs = allocs.as_array().map_or(&[][..], Vec::as_slice);
    let events = list(&node, "Events");
    if !events.is_empty() {
        println!("\nNode Events\n{}", events_table(events));
    }
    println!("\nAllocated Resources\n{}", allocated_table(&node, allocs));
    if verbose {
        let attributes: Vec<(&str, String)> = format::entries(&node, "Attributes")
            .into_iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        if !attributes.is_empty() {
            println!("\nAttributes\n{}", kv(&attributes));
        }
        let meta: Vec<(&str, String)> = format::entries(&node, "Meta")
            .into_iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        if !meta.is_empty() {
            println!("\nMeta\n{}", kv(&meta));
        }
    }
    println!("\nAllocations");
    if allocs.is_empty() {
        println!("No allocations placed");
    } else {
        println!("{}", format::alloc_list(allocs, verbose, format::now_ns()));
    }
    Ok(0)
}

/// `true; <deadline> deadline`, `true; no deadline`, `true; force drain` (and `;
/// ignoring system jobs`), or `false`.
pub fn drain_text(node: &Value) -> String {
    let Some(strategy) = node.get("DrainStrategy").filter(|s| s.is_object()) else {
        return flag(node, "Drain").to_string();
    };
    let mut out = "true".to_owned();
    let force_deadline = format::time_text(text(strategy, "ForceDeadline"));
    if int(strategy, "Deadline") < 0 {
        out.push_str("; force drain");
    } else if force_deadline == "N/A" {
        out.push_str("; no deadline");
    } else {
        out.push_str(&format!("; {force_deadline} deadline"));
    }
    if flag(strategy, "IgnoreSystemJobs") {
        out.push_str("; ignoring system jobs");
    }
    out
}

/// The key/value block of `node status <node>`.
pub fn header(node: &Value, verbose: bool) -> String {
    let names =
        |key: &str| format::entries(node, key).into_iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(",");
    let drivers: Vec<&str> = format::entries(node, "Drivers")
        .into_iter()
        .filter(|(_, d)| flag(d, "Detected") && flag(d, "Healthy"))
        .map(|(k, _)| k.as_str())
        .collect();
    kv(&[
        ("ID", short(text(node, "ID"), verbose).to_owned()),
        ("Name", text(node, "Name").to_owned()),
        ("Node Pool", text(node, "NodePool").to_owned()),
        ("Class", text(node, "NodeClass").to_owned()),
        ("DC", text(node, "Datacenter").to_owned()),
        ("Drain", drain_text(node)),
        ("Eligibility", text(node, "SchedulingEligibility").to_owned()),
        ("Status", text(node, "Status").to_owned()),
        ("CSI Controllers", String::new()),
        ("CSI Drivers", String::new()),
        ("Host Volumes", names("HostVolumes")),
        ("Host Networks", names("HostNetworks")),
        ("CSI Volumes", String::new()),
        ("Drivers", drivers.join(",")),
    ])
}

/// `Time  Subsystem  Message`, newest first.
fn events_table(events: &[Value]) -> String {
    let mut events: Vec<&Value> = events.iter().collect();
    events.sort_by_key(|e| std::cmp::Reverse(int(e, "CreateIndex")));
    let mut rows = vec![row(&["Time", "Subsystem", "Message"])];
    for e in events {
        rows.push(vec![
            format::time_text(text(e, "Timestamp")),
            text(e, "Subsystem").to_owned(),
            text(e, "Message").to_owned(),
        ]);
    }
    table(&rows)
}

fn is_terminal(alloc: &Value) -> bool {
    matches!(text(alloc, "DesiredStatus"), "stop" | "evict")
        || matches!(text(alloc, "ClientStatus"), "complete" | "failed" | "lost")
}

/// What the node's live allocations use of what it offers (capacity less reserved).
pub fn allocated_table(node: &Value, allocs: &[Value]) -> String {
    let (mut cpu, mut memory, mut disk) = (0i64, 0i64, 0i64);
    for a in allocs.iter().filter(|a| !is_terminal(a)) {
        let r = a.get("AllocatedResources").unwrap_or(&Value::Null);
        for (_, t) in format::entries(r, "Tasks") {
            cpu = cpu.saturating_add(t.get("Cpu").map_or(0, |c| int(c, "CpuShares")));
            memory = memory.saturating_add(t.get("Memory").map_or(0, |m| int(m, "MemoryMB")));
        }
        disk = disk.saturating_add(r.get("Shared").map_or(0, |s| int(s, "DiskMB")));
    }
    let capacity = |kind: &str, field: &str| {
        let total = node.pointer(&format!("/NodeResources/{kind}/{field}")).and_then(Value::as_i64).unwrap_or(0);
        let reserved = node.pointer(&format!("/ReservedResources/{kind}/{field}")).and_then(Value::as_i64).unwrap_or(0);
        total.saturating_sub(reserved).max(0)
    };
    let mb = |n: i64| format::ibytes(u64::try_from(n).unwrap_or(0) << 20);
    table(&[
        row(&["CPU", "Memory", "Disk"]),
        vec![
            format!("{cpu}/{} MHz", capacity("Cpu", "CpuShares")),
            format!("{}/{}", mb(memory), mb(capacity("Memory", "MemoryMB"))),
            format!("{}/{}", mb(disk), mb(capacity("Disk", "DiskMB"))),
        ],
    ])
}

/// `-enable`/`-disable`: exactly one.
fn enable_or_disable(parsed: &Parsed) -> anyhow::Result<bool> {
    match (parsed.flag("enable"), parsed.flag("disable")) {
        (true, false) => Ok(true),
        (false, true) => Ok(false),
        _ => bail!("Either the '-enable' or '-disable' flag must be set"),
    }
}

/// The drain deadline in nanoseconds from `-deadline`, `-no-deadline` and `-force`.
pub fn drain_deadline(parsed: &Parsed) -> anyhow::Result<i64> {
    let (deadline, none, force) = (parsed.value("deadline"), parsed.flag("no-deadline"), parsed.flag("force"));
    match (deadline, none, force) {
        (Some(_), true, _) => bail!("-deadline and -no-deadline are mutually exclusive"),
        (Some(_), _, true) | (_, true, true) => bail!("-force and -deadline/-no-deadline are mutually exclusive"),
        (_, _, true) => Ok(DRAIN_FORCE_NS),
        (_, true, _) => Ok(0),
        (Some(d), _, _) => {
            let ns = format::parse_go_duration(d)
                .map_err(|why| anyhow::anyhow!("Failed to parse -deadline {d:?}: {why}"))?;
            if ns <= 0 {
                bail!("A positive drain deadline must be given");
            }
            Ok(ns)
        }
        (None, false, false) => Ok(DRAIN_DEADLINE_DEFAULT_NS),
    }
}

pub fn drain(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("node drain", &DRAIN, rest)?;
    let enable = enable_or_disable(&parsed)?;
    let deadline = if enable { Some(drain_deadline(&parsed)?) } else { None };
    let stub = lookup::uuid(&client, Kind::Node, one_node("node drain", &parsed)?, false)?;
    let id = text(&stub, "ID").to_owned();
    if !parsed.flag("yes") {
        let verb = if enable { "enable" } else { "disable" };
        let question = format!("Are you sure you want to {verb} drain mode for node {id:?}? [y/N]");
        if let Some(code) = confirm(&question, "Canceling drain") {
            return Ok(code);
        }
    }
    let ignore_system = parsed.flag("ignore-system");
    let mut body = match deadline {
        Some(ns) => json!({"DrainSpec": {"Deadline": ns, "IgnoreSystemJobs": ignore_system}, "MarkEligible": false}),
        None => json!({"DrainSpec": null, "MarkEligible": !parsed.flag("keep-ineligible")}),
    };
    if let Some(m) = parsed.value("m") {
        body["Meta"] = json!({"message": m});
    }
    client.post(&node_path(&id, "/drain"), &[], &body).context("Error updating drain specification")?;
    if !enable {
        println!("Node {id:?} drain strategy unset");
        return Ok(0);
    }
    if parsed.flag("detach") {
        println!("Node {id:?} drain strategy set");
        return Ok(0);
    }
    let now = || format::time_ns(format::now_ns());
    println!("{}: Ctrl-C to stop monitoring: will not cancel the node drain", now());
    println!("{}: Node {id:?} drain strategy set", now());
    monitor_drain(&client, &id, ignore_system)
}

/// What the drain monitor knows of an allocation on the node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DrainAlloc {
    pub migrate: bool,
    pub desired: String,
    pub client: String,
    pub system: bool,
}

fn drain_allocs(allocs: &[Value]) -> BTreeMap<String, DrainAlloc> {
    allocs
        .iter()
        .map(|a| {
            let job_type = a.get("Job").map_or_else(|| text(a, "JobType"), |j| text(j, "Type"));
            let state = DrainAlloc {
                migrate: a.pointer("/DesiredTransition/Migrate").and_then(Value::as_bool).unwrap_or(false),
                desired: text(a, "DesiredStatus").to_owned(),
                client: text(a, "ClientStatus").to_owned(),
                system: matches!(job_type, "system" | "sysbatch"),
            };
            (text(a, "ID").to_owned(), state)
        })
        .collect()
}

/// What changed on the node's allocations, as the drain monitor prints it.
pub fn drain_changes(old: &BTreeMap<String, DrainAlloc>, new: &BTreeMap<String, DrainAlloc>) -> Vec<String> {
    let mut out = Vec::new();
    for (id, a) in new {
        let before =
            old.get(id).cloned().unwrap_or_else(|| DrainAlloc { client: a.client.clone(), ..DrainAlloc::default() });
        if a.migrate && !before.migrate {
            out.push(format!("Alloc {id:?} marked for migration"));
        }
        if a.desired == "stop"
            && before.desired != "stop"
            && !matches!(a.client.as_str(), "complete" | "failed" | "lost")
        {
            out.push(format!("Alloc {id:?} draining"));
        }
        if a.client != before.client {
            out.push(format!("Alloc {id:?} status {} -> {}", before.client, a.client));
        }
    }
    out
}

/// Whether no allocation the drain moves still runs on the node.
pub fn drain_done(allocs: &BTreeMap<String, DrainAlloc>, ignore_system: bool) -> bool {
    allocs
        .values()
        .filter(|a| !(ignore_system && a.system))
        .all(|a| matches!(a.client.as_str(), "complete" | "failed" | "lost"))
}

fn monitor_drain(client: &Client, id: &str, ignore_system: bool) -> anyhow::Result<u8> {
    let now = || format::time_ns(format::now_ns());
    let path = node_path(id, "/allocations");
    let mut seen = BTreeMap::new();
    let mut index = 0;
    let mut strategy_seen = true;
    // Until no allocation runs there: the drain deadline ends every one on the server.
    loop {
        let started = Instant::now();
        let answer =
            client.get_blocking(&path, &[], index, DRAIN_POLL_WAIT).context("Error monitoring node allocations")?;
        let allocs = drain_allocs(answer.value.as_array().map_or(&[][..], Vec::as_slice));
        for line in drain_changes(&seen, &allocs) {
            println!("{}: {line}", now());
        }
        if strategy_seen {
            let node = client.get(&node_path(id, ""), &[]).context("Error monitoring node")?.value;
            if node.get("DrainStrategy").is_none_or(Value::is_null) {
                strategy_seen = false;
                println!("{}: Node {id:?} has marked all allocations for migration", now());
            }
        }
        if drain_done(&allocs, ignore_system) {
            println!("{}: All allocations on node {id:?} have stopped.", now());
            return Ok(0);
        }
        let unchanged = answer.index == index;
        index = answer.index;
        seen = allocs;
        if unchanged && started.elapsed() < DRAIN_POLL_WAIT {
            std::thread::sleep(DRAIN_POLL_WAIT.saturating_sub(started.elapsed()));
        }
    }
}

pub fn eligibility(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("node eligibility", &ELIGIBILITY, rest)?;
    let enable = enable_or_disable(&parsed)?;
    let stub = lookup::uuid(&client, Kind::Node, one_node("node eligibility", &parsed)?, false)?;
    let id = text(&stub, "ID");
    let eligibility = if enable { "eligible" } else { "ineligible" };
    client
        .post(&node_path(id, "/eligibility"), &[], &json!({"Eligibility": eligibility}))
        .context("Error updating scheduling eligibility")?;
    println!("Node {id:?} scheduling eligibility set: {eligibility} for scheduling");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(args: &[&str]) -> Parsed {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        crate::cli::flags::parse("t", &DRAIN, &args).unwrap()
    }

    #[test]
    fn drain_deadlines_are_an_hour_unless_forced_or_unbounded() {
        assert_eq!(drain_deadline(&parsed(&["-enable"])).unwrap(), 3_600_000_000_000);
        assert_eq!(drain_deadline(&parsed(&["-enable", "-deadline", "10m"])).unwrap(), 600_000_000_000);
        assert_eq!(drain_deadline(&parsed(&["-enable", "-force"])).unwrap(), -1_000_000_000);
        assert_eq!(drain_deadline(&parsed(&["-enable", "-no-deadline"])).unwrap(), 0);
        assert!(drain_deadline(&parsed(&["-deadline", "1m", "-no-deadline"])).is_err());
        assert!(drain_deadline(&parsed(&["-force", "-no-deadline"])).is_err());
        assert!(drain_deadline(&parsed(&["-deadline", "soon"])).unwrap_err().to_string().contains("\"soon\""));
        assert!(enable_or_disable(&parsed(&[])).unwrap_err().to_string().contains("'-enable' or '-disable'"));
    }

    #[test]
    fn the_node_header_shows_its_drain_and_healthy_drivers() {
        let node = json!({
            "ID": "f7476465-aaaa", "Name": "dev", "NodePool": "default", "NodeClass": "", "Datacenter": "dc1",
            "DrainStrategy": {"Deadline": 3_600_000_000_000i64, "ForceDeadline": "2026-12-01T06:21:51Z",
                              "IgnoreSystemJobs": true},
            "SchedulingEligibility": "ineligible", "Status": "ready",
            "Drivers": {"raw_exec": {"Detected": true, "Healthy": true}, "docker": {"Detected": false}},
        });
        assert_eq!(
            header(&node, false),
            "ID              = f7476465\n\
             Name            = dev\n\
             Node Pool       = default\n\
             Class           = <none>\n\
             DC              = dc1\n\
             Drain           = true; 2026-12-01T06:21:51Z deadline; ignoring system jobs\n\
             Eligibility     = ineligible\n\
             Status          = ready\n\
             CSI Controllers = <none>\n\
             CSI Drivers     = <none>\n\
             Host Volumes    = <none>\n\
             Host Networks   = <none>\n\
             CSI Volumes     = <none>\n\
             Drivers         = raw_exec"
        );
        assert_eq!(drain_text(&json!({"DrainStrategy": {"Deadline": -1_000_000_000i64}})), "true; force drain");
        assert_eq!(
            drain_text(&json!({"DrainStrategy": {"Deadline": 0, "ForceDeadline": "0001-01-01T00:00:00Z"}})),
            "true; no deadline"
        );
        assert_eq!(drain_text(&json!({"Drain": false, "DrainStrategy": null})), "false");
    }

    #[test]
    fn allocated_resources_count_live_allocations_against_capacity_less_reserved() {
        let node = json!({"NodeResources": {"Cpu": {"CpuShares": 4000}, "Memory": {"MemoryMB": 8192}, "Disk": {"DiskMB": 51200}},
                          "ReservedResources": {"Cpu": {"CpuShares": 100}, "Memory": {"MemoryMB": 0}, "Disk": {"DiskMB": 0}}});
        let live = json!({"DesiredStatus": "run", "ClientStatus": "running", "AllocatedResources": {
            "Tasks": {"t": {"Cpu": {"CpuShares": 500}, "Memory": {"MemoryMB": 256}}}, "Shared": {"DiskMB": 300}}});
        let mut done = live.clone();
        done["ClientStatus"] = json!("complete");
        assert_eq!(
            allocated_table(&node, &[live, done]),
            "CPU           Memory           Disk\n500/3900 MHz  256 MiB/8.0 GiB  300 MiB/50 GiB"
        );
    }

    #[test]
    fn the_drain_monitor_reports_migrations_and_ends_when_nothing_runs() {
        let running = |migrate: bool, desired: &str, client: &str| DrainAlloc {
            migrate,
            desired: desired.into(),
            client: client.into(),
            system: false,
        };
        let old = BTreeMap::from([("a1".to_owned(), running(false, "run", "running"))]);
        let marked = BTreeMap::from([("a1".to_owned(), running(true, "stop", "running"))]);
        assert_eq!(drain_changes(&old, &marked), ["Alloc \"a1\" marked for migration", "Alloc \"a1\" draining"]);
        assert!(!drain_done(&marked, false));
        let stopped = BTreeMap::from([("a1".to_owned(), running(true, "stop", "complete"))]);
        assert_eq!(drain_changes(&marked, &stopped), ["Alloc \"a1\" status running -> complete"]);
        assert!(drain_done(&stopped, false));
        let system =
            BTreeMap::from([("s".to_owned(), DrainAlloc { system: true, ..running(false, "run", "running") })]);
        assert!(drain_done(&system, true) && !drain_done(&system, false));
    }
}
