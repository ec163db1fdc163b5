//! `stead agent` processes for end-to-end tests: `-dev` or any agent command line,
//! started on free loopback ports, spoken to over plain HTTP/1.1 and the CLI, stopped with
//! Ctrl-C (SIGINT) or `kill -9`; and the task processes their clients start, looked at
//! through `/proc` and reaped by [`TaskReaper`] whatever becomes of the test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Agent {
    child: Child,
    /// The HTTP API's address (empty for a client-only agent, which serves none).
    pub addr: String,
    /// The gRPC address (a server's: what clients name in `servers`).
    pub grpc_addr: String,
    /// The client's node ID and data directory, when the agent runs a client.
    pub node_id: Option<String>,
    pub client_dir: Option<PathBuf>,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Agent {
    /// `stead agent -dev` on free ports (HTTP and gRPC), with `extra` flags, once its
    /// client's node is registered and ready (the client registers after the agent
    /// starts: a test reading the nodes, or placing a job, must not race it).
    pub fn start(extra: &[&str]) -> Agent {
        let mut args = vec!["agent", "-dev", "-http-port", "0", "-rpc-port", "0"];
        args.extend_from_slice(extra);
        let agent = Agent::spawn(&args);
        if let Some(node) = agent.node_id.clone()
            && !agent.addr.is_empty()
        {
            agent.await_json("/v1/nodes", "the dev agent's node is ready", Duration::from_secs(30), |nodes| {
                nodes.as_array().is_some_and(|n| n.iter().any(|n| n["ID"] == node.as_str() && n["Status"] == "ready"))
            });
        }
        agent
    }

    /// `stead <args>` (an `agent` command line), once it has started: what it printed
    /// up to `press Ctrl-C` says where it listens.
    pub fn spawn(args: &[&str]) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stead"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the stead binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut addr, mut grpc_addr, mut node_id, mut client_dir) = (String::new(), String::new(), None, None);
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                let status = child.wait();
                panic!("stead {args:?} exited ({status:?}) before it started; it printed:\n{seen}");
            }
            seen.push_str(&line);
            let line = line.trim();
            if let Some(a) = line.strip_prefix("HTTP API: http://") {
                addr = a.to_owned();
            } else if let Some(a) = line.strip_prefix("gRPC: ") {
                grpc_addr = a.to_owned();
            } else if let Some(rest) = line.strip_prefix("client: node ") {
                // `client: node <id> (<name>), data in <dir>`
                node_id = rest.split_whitespace().next().map(str::to_owned);
                client_dir = rest.split_once(", data in ").map(|(_, d)| PathBuf::from(d));
            } else if line.starts_with("==> press Ctrl-C") {
                break;
            }
        }
        Agent { child, addr, grpc_addr, node_id, client_dir, stdout }
    }

    /// `kill -9`: no shutdown of any kind; returns once the process is reaped.
    pub fn kill9(mut self) -> std::process::ExitStatus {
        self.child.kill().expect("SIGKILL the agent");
        self.child.wait().unwrap()
    }

    /// One HTTP/1.1 request; the status and the body (de-chunked).
    pub fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let (status, _, body) = self.http(method, path, body, Duration::from_secs(10));
        (status, body)
    }

    /// One HTTP/1.1 request: the status, the head's lines and the body (a chunked body
    /// is decoded).
    pub fn http(&self, method: &str, path: &str, body: &str, timeout: Duration) -> (u16, String, String) {
        assert!(!self.addr.is_empty(), "this agent serves no HTTP API (a client only)");
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(timeout)).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap_or_else(|e| panic!("{method} {path}: reading the answer: {e}"));
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(response.len());
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let raw = response.get(split + 4..).unwrap_or_default();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let chunked = head.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("transfer-encoding:") && l.contains("chunked")
        });
        let body = if chunked { dechunk(raw) } else { raw.to_vec() };
        (status, head, String::from_utf8_lossy(&body).into_owned())
    }

    /// Ctrl-C; the exit status and the rest of stdout.
    pub fn interrupt(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (self.child.wait().unwrap(), rest)
    }
}

/// A chunked HTTP/1.1 body's data.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        raw = &raw[eol + 2..];
        if size == 0 || raw.len() < size {
            out.extend_from_slice(&raw[..size.min(raw.len())]);
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
}

pub fn job_json(id: &str) -> String {
    let hcl = format!(
        "job \"{id}\" {{\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"raw_exec\"\n      config {{\n        command = \"/bin/sleep\"\n        args = [\"60\"]\n      }}\n    }}\n  }}\n}}\n"
    );
    let json =
        stead_jobspec::parse_hcl(&hcl, "t.hcl", &stead_jobspec::VarInputs::new(), &stead_jobspec::OsEnv).unwrap();
    json.to_string()
}

/// What one run of the `stead` CLI did.
#[derive(Debug)]
pub struct CliRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `stead` CLI in `dir` with only the agent variables `env` set (every other
/// `STEAD_*`/`NOMAD_*` address, token, namespace and region variable removed), `stdin` as
/// its input.
pub fn stead_cli(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path, stdin: Option<&str>) -> CliRun {
    const AGENT_VARS: [&str; 8] = [
        "STEAD_ADDR",
        "STEAD_TOKEN",
        "STEAD_NAMESPACE",
        "STEAD_REGION",
        "NOMAD_ADDR",
        "NOMAD_TOKEN",
        "NOMAD_NAMESPACE",
        "NOMAD_REGION",
    ];
    let mut command = Command::new(env!("CARGO_BIN_EXE_stead"));
    command.args(args).current_dir(dir).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for var in AGENT_VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("the stead binary starts");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    CliRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Agent {
    /// The agent's address as the CLI takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs the `stead` CLI against this agent (through `STEAD_ADDR`).
    pub fn cli(&self, args: &[&str], dir: &std::path::Path, stdin: Option<&str>) -> CliRun {
        stead_cli(args, &[("STEAD_ADDR", &self.url())], dir, stdin)
    }

    /// A blocking GET (`?index=N&wait=5s` when `index` > 0): the status, the answer's
    /// `X-Nomad-Index` and the body.
    pub fn get_blocking(&self, path: &str, index: u64) -> (u16, u64, String) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = if index > 0 { format!("{path}{sep}index={index}&wait=5s") } else { path.to_owned() };
        let (status, head, body) = self.http("GET", &path, "", Duration::from_secs(30));
        let index = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-nomad-index:").map(|v| v.trim().to_owned()))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (status, index, body)
    }

    /// The JSON at `path` (which must answer 200).
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.request("GET", path, "");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// Waits with blocking queries until the JSON at `path` satisfies `done`, and returns
    /// it; `what` names the awaited state. `deadline` only guards against a hang: past it
    /// the test fails with what `path` last answered.
    pub fn await_json(
        &self,
        path: &str,
        what: &str,
        deadline: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let end = Instant::now() + deadline;
        let mut index = 0;
        loop {
            let (status, next, body) = self.get_blocking(path, index);
            assert_eq!(status, 200, "GET {path}: {body}");
            let value: serde_json::Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"));
            if done(&value) {
                return value;
            }
            if Instant::now() >= end {
                panic!("{what}: not reached within {deadline:?}; {path} last answered:\n{value:#}");
            }
            index = next;
        }
    }

    /// Waits (with blocking queries, at most `changes_max` changes of what `path` reads)
    /// until the JSON at `path` satisfies `done`; returns it.
    pub fn wait_for(
        &self,
        path: &str,
        changes_max: usize,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut index = 0;
        for _ in 0..changes_max {
            let (status, next, body) = self.get_blocking(path, index);
            assert_eq!(status, 200, "{path}: {body}");
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            if done(&value) {
                return value;
            }
            index = next;
        }
        panic!("{path} did not reach the awaited state after {changes_max} looks");
    }
}

/// An agent a test did not stop (it failed first, or never meant to) dies with the test.
/// A `-dev` agent in memory takes its tasks along, as its Ctrl-C would have: nothing
/// could re-attach to them (a killed agent's raw_exec tasks outlive it by design). With a
/// data directory they are left running for the next agent on it (see [`TaskReaper`]).
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The agent names its temporary client directory `stead-dev-<pid>-...`.
        let own = format!("stead-dev-{}-", self.child.id());
        if let Some(dir) = &self.client_dir
            && dir.parent() == Some(std::env::temp_dir().as_path())
            && dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&own))
        {
            let end = Instant::now() + Duration::from_secs(5);
            loop {
                let executors = executors_in(dir);
                if executors.is_empty() || Instant::now() >= end {
                    break;
                }
                for executor in executors {
                    kill_session(executor);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Polls `look` (every 20 ms) until it answers `Some`; a deadline only guards against a
/// hang: past it the test fails naming `what` and what `look` last saw (`seen`).
/// `GET <path>` over HTTP/1.0 from `addr` (a task's port): the whole answer, or `None`
/// while nothing answers there.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

pub fn poll_until<T>(what: &str, deadline: Duration, mut look: impl FnMut(&mut String) -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    let mut seen = String::new();
    loop {
        seen.clear();
        if let Some(v) = look(&mut seen) {
            return v;
        }
        if Instant::now() >= end {
            panic!("{what}: not reached within {deadline:?}; last seen: {seen}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` runs (exists and is not a zombie).
pub fn is_alive(pid: u32) -> bool {
    stead_client::driver::process::stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X'))
}

/// The live processes whose command line contains `needle`, by PID.
pub fn processes_with(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return pids };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && is_alive(pid) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

/// The live raw_exec executors of the client whose data directory is `dir` (`stead
/// executor <dir>/client/allocs/.../spec.json`).
pub fn executors_in(dir: &Path) -> Vec<u32> {
    processes_with(&format!("{}/", dir.display()))
        .into_iter()
        .filter(|&pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline.split(|&b| b == 0).nth(1) == Some(b"executor".as_slice())
        })
        .collect()
}

/// The PIDs a task wrote, one a line, to `file` (empty if it has not yet).
pub fn pids_in(file: &Path) -> Vec<u32> {
    std::fs::read_to_string(file).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// The live processes of process group `pgid` (a task's: its executor starts it as the
/// leader of a group of its own, and what it starts stays in it).
pub fn group_members(pgid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return pids };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if stead_client::driver::process::stat(pid)
            .is_some_and(|s| s.pgrp == pgid as i32 && !matches!(s.state, 'Z' | 'X'))
        {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

/// Waits until the processes `pids` are gone, and so is every process in the groups
/// they lead (a task's children); `what` names them in the failure.
pub fn await_ended(what: &str, pids: &[u32], deadline: Duration) {
    poll_until(&format!("{what} {pids:?} end"), deadline, |seen| {
        let alive: Vec<u32> =
            pids.iter().flat_map(|&p| group_members(p).into_iter().chain(is_alive(p).then_some(p))).collect();
        *seen = format!("still alive: {alive:?}");
        alive.is_empty().then_some(())
    });
}

/// The task processes of a test, and the executors that own them, so that none outlives
/// the test even when it fails: a raw_exec task outlives a killed agent by design.
///
/// Tasks carry [`TaskReaper::marker`] in their command line (`sh -c SCRIPT MARKER` puts
/// it in `$0`); executors are found by the client data directories the test registers
/// (their command line names their spec file there). Dropping the reaper SIGKILLs them:
/// each executor's session (the executor and its task's group), then each marked task's
/// process group, and the group of every task it has seen (what a task started outlives
/// it there, without the marker). Create it before the agents: locals drop in reverse
/// order, and a live client would restart what the reaper kills.
pub struct TaskReaper {
    marker: String,
    dirs: std::sync::Mutex<Vec<String>>,
    groups: std::sync::Mutex<std::collections::BTreeSet<u32>>,
}

impl TaskReaper {
    /// A reaper with a marker unique to this test process and `name`.
    pub fn new(name: &str) -> TaskReaper {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        TaskReaper {
            marker: format!("e2e-{name}-{}-{nanos:08x}", std::process::id()),
            dirs: Default::default(),
            groups: Default::default(),
        }
    }

    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// Executors whose command line names `dir` are reaped too.
    pub fn watch_dir(&self, dir: &Path) {
        self.dirs.lock().unwrap().push(dir.to_string_lossy().into_owned());
    }

    /// The live task processes: those carrying the marker that lead their process group
    /// (a task's executor starts it so; a child the shell forks carries the marker too
    /// until it execs, but stays in the task's group).
    pub fn tasks(&self) -> Vec<u32> {
        let leaders: Vec<u32> = self.marked().into_iter().filter(|&pid| leads_group(pid)).collect();
        self.groups.lock().unwrap().extend(&leaders);
        leaders
    }

    /// Every live process carrying the marker.
    fn marked(&self) -> Vec<u32> {
        processes_with(&self.marker)
    }

    /// The live executors of the watched directories.
    pub fn executors(&self) -> Vec<u32> {
        let dirs = self.dirs.lock().unwrap().clone();
        let mut pids: Vec<u32> = dirs.iter().flat_map(|d| executors_in(Path::new(d))).collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Kills what is left; how many processes that was.
    fn sweep(&self) -> usize {
        let executors = self.executors();
        for &pid in &executors {
            kill_session(pid);
        }
        self.tasks(); // Remembers the groups of the tasks alive now.
        let marked = self.marked();
        for &pid in &marked {
            kill_group(pid);
        }
        let mut left = executors.len() + marked.len();
        for &pgid in self.groups.lock().unwrap().iter() {
            let members = group_members(pgid);
            if !members.is_empty() {
                let _ = stead_client::driver::process::signal_group(pgid, SIGKILL);
                left += members.len();
            }
        }
        left
    }
}

const SIGKILL: i32 = 9;

fn leads_group(pid: u32) -> bool {
    stead_client::driver::process::stat(pid).is_some_and(|s| s.pgrp == pid as i32)
}

/// SIGKILLs `pid`'s process group when `pid` leads one (an executor leads its session,
/// a task the group its executor starts it in), else `pid` alone.
pub fn kill_group(pid: u32) {
    if leads_group(pid) {
        let _ = stead_client::driver::process::signal_group(pid, SIGKILL);
    } else if is_alive(pid) {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
}

/// SIGKILLs every process group of the session `sid` leads (an executor's: it leads a
/// session of its own, and its task's group is in it); only `sid`'s group if it leads no
/// session (never the test's own session).
pub fn kill_session(sid: u32) {
    if stead_client::driver::process::stat(sid).is_none_or(|s| s.session != sid as i32) {
        kill_group(sid);
        return;
    }
    let mut groups = std::collections::BTreeSet::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(s) = stead_client::driver::process::stat(pid)
            && s.session == sid as i32
            && !matches!(s.state, 'Z' | 'X')
            && let Ok(pgrp) = u32::try_from(s.pgrp)
        {
            groups.insert(pgrp);
        }
    }
    for pgrp in groups {
        let _ = stead_client::driver::process::signal_group(pgrp, SIGKILL);
    }
}

impl Drop for TaskReaper {
    fn drop(&mut self) {
        let end = Instant::now() + Duration::from_secs(10);
        while self.sweep() > 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
