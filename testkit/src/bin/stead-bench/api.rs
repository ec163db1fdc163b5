//! `stead-bench api`: the HTTP API under many concurrent keep-alive connections.
//!
//! Usage: `stead-bench api [--connections N] [--duration-secs S] [--warmup-ms M] [--jobs J]
//! [--address http://HOST:PORT | --agent-bin PATH] [--durable] [--only LIST] [--seed S]`
//!
//! 1. The agent: by default `stead agent -dev -http-port 0 -rpc-port 0` (the `stead` next to
//!    this binary, or `--agent-bin`), in memory (`--durable`: with `-data-dir` in a fresh
//!    temporary directory); its address is read from its `HTTP API: http://ADDR` line, and it
//!    is stopped with SIGINT at the end. `--address` uses a running agent instead.
//! 2. The reads' data: once the agent lists a ready node (when the bench started it), J jobs
//!    (`--jobs`, default 1,000) registered through the API, unmeasured (`preload_secs`),
//!    then a wait until the scheduler has processed their evaluations and gone quiet
//!    (`preload_settle_secs`, `preload_evals`), so the reads do not compete with a backlog.
//! 3. One phase per operation, in this order, each with N connections (one tokio task each,
//!    HTTP/1.1 keep-alive, one request in flight per connection) issuing requests back to
//!    back for the warm-up and then the measured window:
//!    * `read_job`: `GET /v1/job/<id>` of a random preloaded job;
//!    * `job_summary`: `GET /v1/job/<id>/summary` of a random preloaded job;
//!    * `list_jobs`: `GET /v1/jobs` (every job of the namespace with its summary: J jobs
//!      when the agent had none before; `list_jobs_jobs` says how many);
//!    * `register`: `PUT /v1/jobs`, a distinct job ID per request (a new job, its version,
//!      summary and evaluation in one write transaction). Last, because it adds tens of
//!      thousands of jobs (which `list_jobs` would then return) and leaves the scheduler
//!      a backlog (`register_evals_backlog` at the window's end); the bench waits for the
//!      scheduler to work it off (`register_settle_secs`, at most `SETTLE_MAX`).
//!
//!    The jobs are service jobs of one mock-driver task (cpu 10, memory 10) constrained to
//!    a node class no node has (`${node.class} = stead-bench-never`): each registration
//!    gets its evaluation scheduled (and a blocked evaluation), but nothing is placed, so
//!    the dev agent's client starts no task and every request costs the same.
//! 4. Figures per operation: `<op>_rps` (2xx answers completed in the window per second),
//!    `<op>_p50_ms` / `<op>_p99_ms` (latency of those answers, request written to answer
//!    read), `<op>_errors` = `<op>_non2xx` + `<op>_conn_errors` (over the whole phase,
//!    warm-up included; connection errors: connect, I/O, malformed answers, no answer
//!    within `REQUEST_TIMEOUT`), `<op>_evals` (evaluations the agent's scheduler processed
//!    in the window, from `/v1/metrics`), `<op>_body_kb` (mean answer body),
//!    `<op>_bench_cpu_pct` (the bench's CPU time over the window, % of one core, from
//!    `/proc`), and when the bench started the agent `<op>_agent_cpu_pct`,
//!    `<op>_agent_rss_mb` (VmRSS at the phase's end) and `agent_peak_rss_mb` (VmHWM
//!    before it is stopped). `jobs_at_end`: what `GET /v1/jobs` lists after the phases.
//!
//! Human-readable lines go to stderr (the agent's stdout too, prefixed `agent:`); the last
//! line of stdout is one JSON object with the figures.

use std::io::BufRead;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stead_store::model::{Constraint, JobType};
use stead_testkit::fixtures;

use self::http::{Client, Response};

const USAGE: &str = "usage: stead-bench api [options]\n\
    \n\
    Drives the HTTP API with many concurrent keep-alive connections, one phase per operation\n\
    (read_job, job_summary, list_jobs, register; see the file's documentation).\n\
    --connections N    concurrent connections per phase (default 64)\n\
    --duration-secs S  measured wall time per phase (default 5)\n\
    --warmup-ms M      unmeasured warm-up before each phase's window (default 500)\n\
    --jobs J           jobs registered (unmeasured) for the reads to read and list (default 1000)\n\
    --address URL      use the agent at http://HOST:PORT instead of starting one\n\
    --agent-bin PATH   the stead binary to start (default: `stead` next to this binary)\n\
    --durable          start the agent with -data-dir in a fresh temporary directory\n\
    --only LIST        run only these phases, comma-separated (default: all)\n\
    --seed S           RNG seed for the reads' job picks (default 1)";

/// Any one request taking longer than this counts as a connection error (and the
/// connection is replaced): a hung agent ends the phase instead of the bench.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// After a connection error the connection waits before reconnecting, doubling up to the
/// maximum: a dead agent costs a few errors a second per connection, not a busy loop.
const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long the started agent may take to print its HTTP address (it loads the cluster
/// into its workers first), and to exit after SIGINT.
const AGENT_START_TIMEOUT: Duration = Duration::from_secs(60);
const AGENT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait at most for the scheduler to process the registrations' evaluations,
/// and how long a count that does not move is taken as done (evaluations coalesced or
/// failed are not all counted).
const SETTLE_MAX: Duration = Duration::from_secs(120);
const SETTLE_QUIET: Duration = Duration::from_secs(3);
/// Once they are processed, how long the count must stay still: longer than the workers'
/// idle wait (500 ms) plus their maintenance interval (250 ms), so an unblocking pass that
/// re-runs the blocked evaluations shows up here rather than in the next phase.
const SETTLE_DONE_QUIET: Duration = Duration::from_secs(1);
/// Connections that preload the reads' jobs.
const PRELOAD_CONNECTIONS: usize = 16;
/// A node class no node has: the bench's jobs are never placed.
const NEVER_CLASS: &str = "stead-bench-never";
const ID_PLACEHOLDER: &str = "stead-bench-job-id-placeholder";

/// The agent this bench started, for `die` to kill: it must not outlive the bench.
static AGENT_PID: AtomicI32 = AtomicI32::new(0);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Register,
    ReadJob,
    JobSummary,
    ListJobs,
}

impl Op {
    /// In the order the phases run.
    const ALL: [Op; 4] = [Op::ReadJob, Op::JobSummary, Op::ListJobs, Op::Register];

    fn name(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::ReadJob => "read_job",
            Op::JobSummary => "job_summary",
            Op::ListJobs => "list_jobs",
        }
    }
}

struct Args {
    connections: usize,
    duration: Duration,
    warmup: Duration,
    jobs: u64,
    address: Option<String>,
    agent_bin: Option<PathBuf>,
    durable: bool,
    only: Vec<Op>,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        connections: 64,
        duration: Duration::from_secs(5),
        warmup: Duration::from_millis(500),
        jobs: 1_000,
        address: None,
        agent_bin: None,
        durable: false,
        only: Op::ALL.to_vec(),
        seed: 1,
    };
    let mut it = std::env::args().skip(2);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if flag == "--durable" {
            args.durable = true;
            continue;
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (flag.clone(), None),
        };
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        let number = |v: &str| v.parse::<f64>().map_err(|_| format!("{name}: {v:?} is not a number"));
        match name.as_str() {
            "--connections" => {
                args.connections = value.parse().map_err(|_| format!("{name}: {value:?} is not a whole number"))?;
                if !(1..=10_000).contains(&args.connections) {
                    return Err("--connections must be between 1 and 10000".into());
                }
            }
            "--duration-secs" => {
                let secs = number(&value)?;
                if !(secs > 0.0 && secs < 3600.0) {
                    return Err("--duration-secs must be between 0 and 3600".into());
                }
                args.duration = Duration::from_secs_f64(secs);
            }
            "--warmup-ms" => {
                let ms = number(&value)?;
                if !(0.0..3_600_000.0).contains(&ms) {
                    return Err("--warmup-ms must be between 0 and 3600000".into());
                }
                args.warmup = Duration::from_secs_f64(ms / 1000.0);
            }
            "--jobs" => {
                args.jobs =
                    value.replace('_', "").parse().map_err(|_| format!("{name}: {value:?} is not a whole number"))?;
                if !(1..=1_000_000).contains(&args.jobs) {
                    return Err("--jobs must be between 1 and 1000000".into());
                }
            }
            "--address" => args.address = Some(value),
            "--agent-bin" => args.agent_bin = Some(PathBuf::from(value)),
            "--seed" => args.seed = value.parse().map_err(|_| format!("--seed: {value:?} is not an integer"))?,
            "--only" => {
                let mut only = Vec::new();
                for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let op = Op::ALL.into_iter().find(|op| op.name() == part).ok_or_else(|| {
                        format!("--only: unknown phase {part:?} (read_job, job_summary, list_jobs, register)")
                    })?;
                    only.push(op);
                }
                if only.is_empty() {
                    return Err("--only needs at least one phase".into());
                }
                args.only = Op::ALL.into_iter().filter(|op| only.contains(op)).collect();
            }
            _ => return Err(format!("unknown option {name}")),
        }
    }
    if args.address.is_some() && (args.agent_bin.is_some() || args.durable) {
        return Err("--address uses a running agent: --agent-bin and --durable do not apply".into());
    }
    Ok(args)
}

fn die(msg: String) -> ! {
    eprintln!("stead-bench api: {msg}");
    let pid = AGENT_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) with a pid this process started and has not reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    std::process::exit(1)
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    sorted_us[rank] as f64 / 1000.0
}

// --- the agent ---

struct Agent {
    child: Child,
    addr: String,
    _data_dir: Option<tempfile::TempDir>,
}

fn default_agent_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| die(format!("finding this binary: {e}")));
    exe.parent().unwrap_or(Path::new(".")).join("stead")
}

fn start_agent(bin: &Path, durable: bool) -> Agent {
    if !bin.is_file() {
        die(format!(
            "{} does not exist: build it (`cargo build --release -p stead-agent`) or give --agent-bin PATH or \
             --address URL",
            bin.display()
        ));
    }
    let mut command = Command::new(bin);
    command.args(["agent", "-dev", "-http-port", "0", "-rpc-port", "0"]);
    let data_dir = durable.then(|| {
        tempfile::Builder::new()
            .prefix("stead-bench-api-")
            .tempdir()
            .unwrap_or_else(|e| die(format!("creating a data directory: {e}")))
    });
    if let Some(d) = &data_dir {
        command.arg("-data-dir").arg(d.path());
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| die(format!("starting {}: {e}", bin.display())));
    AGENT_PID.store(child.id() as i32, Ordering::SeqCst);
    let stdout = child.stdout.take().unwrap_or_else(|| die("the agent's stdout is not piped".into()));
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    // Reads the agent's stdout to its end (so it never blocks on a full pipe), echoing it.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            eprintln!("agent: {line}");
            if let Some(addr) = line.trim().strip_prefix("HTTP API: http://")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = match rx.recv_timeout(AGENT_START_TIMEOUT) {
        Ok(addr) => addr,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            die(format!("the agent printed no `HTTP API:` line within {} s", AGENT_START_TIMEOUT.as_secs()))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            let status = child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
            AGENT_PID.store(0, Ordering::SeqCst);
            die(format!("the agent exited before printing its address ({status})"))
        }
    };
    Agent { child, addr, _data_dir: data_dir }
}

impl Agent {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGINT (the agent's Ctrl-C), then waits; returns how it ended.
    fn stop(mut self) -> String {
        // SAFETY: kill(2) with the pid of our child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let asked = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    AGENT_PID.store(0, Ordering::SeqCst);
                    return if status.success() {
                        format!("exited after {:.1} s", asked.elapsed().as_secs_f64())
                    } else {
                        format!("ended with {status} after {:.1} s", asked.elapsed().as_secs_f64())
                    };
                }
                Ok(None) if asked.elapsed() < AGENT_STOP_TIMEOUT => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    AGENT_PID.store(0, Ordering::SeqCst);
                    return format!("did not exit within {} s of SIGINT; killed", AGENT_STOP_TIMEOUT.as_secs());
                }
                Err(e) => return format!("waiting for it failed: {e}"),
            }
        }
    }
}

fn proc_status_kb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// CPU time (user + system, all threads) of process `pid` ("self" for this one), in seconds.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some((utime + stime) / if ticks > 0 { ticks as f64 } else { 100.0 })
}

fn resolve(address: &str) -> SocketAddr {
    let hostport = address
        .strip_prefix("http://")
        .unwrap_or_else(|| die(format!("--address {address:?}: give http://HOST:PORT (https is not supported)")))
        .trim_end_matches('/');
    if hostport.contains('/') {
        die(format!("--address {address:?}: give http://HOST:PORT, without a path"));
    }
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| die(format!("--address {address:?}: cannot resolve {hostport:?}")))
}

// --- requests ---

/// Where requests go and how they are spelled.
struct Target {
    addr: SocketAddr,
    host: String,
    /// The register body split at the job ID's places.
    register_body: Vec<Vec<u8>>,
    /// Registered job IDs are `<prefix>-<seq>`; the prefix differs per run, so a run against
    /// a running agent writes new jobs too.
    id_prefix: String,
}

impl Target {
    fn new(addr: SocketAddr) -> Target {
        let mut job = fixtures::job(ID_PLACEHOLDER, JobType::Service, 1, 10, 10);
        job.constraints.push(Constraint {
            l_target: "${node.class}".to_owned(),
            r_target: NEVER_CLASS.to_owned(),
            operand: "=".to_owned(),
            ..Default::default()
        });
        let text = serde_json::json!({ "Job": job }).to_string();
        let register_body = text.split(ID_PLACEHOLDER).map(|s| s.as_bytes().to_vec()).collect();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let tag = (nanos as u64 ^ (u64::from(std::process::id()) << 32)) & 0xffff_ffff;
        Target { addr, host: addr.to_string(), register_body, id_prefix: format!("bench-{tag:08x}") }
    }

    fn job_id(&self, seq: u64) -> String {
        format!("{}-{seq:08}", self.id_prefix)
    }

    fn get(&self, path: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(
            format!("GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\r\n", self.host).as_bytes(),
        );
    }

    fn register(&self, id: &str, out: &mut Vec<u8>) {
        let len: usize = self.register_body.iter().map(Vec::len).sum::<usize>()
            + id.len() * self.register_body.len().saturating_sub(1);
        out.clear();
        out.extend_from_slice(
            format!(
                "PUT /v1/jobs HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n",
                self.host
            )
            .as_bytes(),
        );
        for (i, part) in self.register_body.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(id.as_bytes());
            }
            out.extend_from_slice(part);
        }
    }
}

/// One GET on a connection of its own.
async fn get_once(target: &Target, path: &str) -> Result<Response, String> {
    let mut client = tokio::time::timeout(CONNECT_TIMEOUT, Client::connect(target.addr))
        .await
        .map_err(|_| "connecting timed out".to_owned())??;
    let mut request = Vec::new();
    target.get(path, &mut request);
    tokio::time::timeout(REQUEST_TIMEOUT, client.send(&request)).await.map_err(|_| "timed out".to_owned())?
}

/// Evaluations the agent's scheduler has processed (or coalesced), from `/v1/metrics`.
async fn evals_processed(target: &Target) -> Option<u64> {
    let r = get_once(target, "/v1/metrics?format=prometheus").await.ok()?;
    if r.status != 200 {
        return None;
    }
    let text = String::from_utf8_lossy(&r.body);
    let mut total = 0.0;
    for line in text.lines() {
        if line.starts_with("stead_sched_evals_total{") || line.starts_with("stead_sched_coalesced_evals_total ") {
            total += line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        }
    }
    Some(total as u64)
}

// --- phases ---

/// When a phase measures: answers completing in `[start, end)` count.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// When a phase's connections stop issuing requests.
#[derive(Clone, Copy)]
enum Until {
    /// At the window's end (requests in flight finish).
    Window(Window),
    /// When `n` registrations were issued (unmeasured preloading).
    Registered(u64),
}

struct Phase {
    op: Op,
    target: Arc<Target>,
    until: Until,
    /// The next registration's sequence number.
    next_seq: Arc<AtomicU64>,
    /// The jobs reads pick from.
    jobs: Arc<Vec<String>>,
    seed: u64,
}

#[derive(Default)]
struct Stats {
    /// 2xx answers completing in the window, their latencies and body bytes.
    ok: u64,
    latencies_us: Vec<u32>,
    body_bytes: u64,
    non2xx: u64,
    conn_errors: u64,
    first_non2xx: Option<String>,
    first_conn_error: Option<String>,
    /// Jobs registered with a 2xx answer, in the window or not.
    registered: Vec<String>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.ok += other.ok;
        self.latencies_us.extend(other.latencies_us);
        self.body_bytes += other.body_bytes;
        self.non2xx += other.non2xx;
        self.conn_errors += other.conn_errors;
        self.first_non2xx = self.first_non2xx.take().or(other.first_non2xx);
        self.first_conn_error = self.first_conn_error.take().or(other.first_conn_error);
        self.registered.extend(other.registered);
    }

    fn conn_error(&mut self, e: String) {
        self.conn_errors += 1;
        self.first_conn_error.get_or_insert(e);
    }
}

async fn connection(phase: Arc<Phase>, index: usize) -> Stats {
    let mut rng = SmallRng::seed_from_u64(phase.seed ^ ((phase.op as u64) << 40) ^ index as u64);
    let mut stats = Stats::default();
    let mut client: Option<Client> = None;
    let mut backoff = RECONNECT_BACKOFF_MIN;
    let mut request = Vec::with_capacity(4096);
    let target = &phase.target;
    loop {
        let mut registering = None;
        match phase.until {
            Until::Window(w) if Instant::now() >= w.end => break,
            Until::Window(_) => {}
            Until::Registered(_) => {}
        }
        match phase.op {
            Op::Register => {
                let seq = phase.next_seq.fetch_add(1, Ordering::Relaxed);
                if let Until::Registered(n) = phase.until
                    && seq >= n
                {
                    break;
                }
                let id = target.job_id(seq);
                target.register(&id, &mut request);
                registering = Some(id);
            }
            Op::ReadJob | Op::JobSummary => {
                let Some(id) = phase.jobs.get(rng.random_range(0..phase.jobs.len().max(1))) else {
                    die("no registered jobs to read".into())
                };
                let path =
                    if phase.op == Op::ReadJob { format!("/v1/job/{id}") } else { format!("/v1/job/{id}/summary") };
                target.get(&path, &mut request);
            }
            Op::ListJobs => target.get("/v1/jobs", &mut request),
        }
        let mut c = match client.take() {
            Some(c) => c,
            None => match tokio::time::timeout(CONNECT_TIMEOUT, Client::connect(target.addr)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    stats.conn_error(format!("connecting: {e}"));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
                    continue;
                }
                Err(_) => {
                    stats.conn_error(format!("connecting: no answer within {} s", CONNECT_TIMEOUT.as_secs()));
                    continue;
                }
            },
        };
        let begun = Instant::now();
        let result = tokio::time::timeout(REQUEST_TIMEOUT, c.send(&request)).await;
        let done = Instant::now();
        match result {
            Ok(Ok(response)) => {
                backoff = RECONNECT_BACKOFF_MIN;
                if response.keep_alive {
                    client = Some(c);
                }
                if (200..300).contains(&response.status) {
                    if let Until::Window(w) = phase.until
                        && done >= w.start
                        && done < w.end
                    {
                        stats.ok += 1;
                        stats.latencies_us.push(done.duration_since(begun).as_micros().min(u32::MAX as u128) as u32);
                        stats.body_bytes += response.body.len() as u64;
                    }
                    if let Some(id) = registering {
                        stats.registered.push(id);
                    }
                } else {
                    stats.non2xx += 1;
                    stats.first_non2xx.get_or_insert_with(|| {
                        let body = String::from_utf8_lossy(&response.body[..response.body.len().min(300)]).into_owned();
                        format!("{} {}", response.status, body.trim())
                    });
                }
            }
            Ok(Err(e)) => {
                stats.conn_error(e);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
            }
            Err(_) => stats.conn_error(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())),
        }
    }
    stats
}

/// What one phase measured.
struct Measured {
    stats: Stats,
    window: Duration,
    agent_cpu_pct: Option<f64>,
    bench_cpu_pct: Option<f64>,
    evals: Option<u64>,
    /// The agent's VmRSS when the phase's last answer arrived.
    agent_rss_mb: Option<f64>,
    /// From the first request to the last answer (in-flight requests finish after the window).
    wall: Duration,
}

async fn run_phase(phase: Phase, connections: usize, agent_pid: Option<u32>) -> Measured {
    let phase = Arc::new(phase);
    let started = Instant::now();
    let handles: Vec<_> = (0..connections).map(|i| tokio::spawn(connection(phase.clone(), i))).collect();
    // Samples CPU times and the scheduler's count at the window's edges.
    let sampler = match phase.until {
        Until::Window(w) => {
            let target = phase.target.clone();
            Some(tokio::spawn(async move {
                let sample = || async {
                    let agent = agent_pid.and_then(|p| cpu_seconds(&p.to_string()));
                    (Instant::now(), agent, cpu_seconds("self"), evals_processed(&target).await)
                };
                tokio::time::sleep_until(w.start.into()).await;
                let before = sample().await;
                tokio::time::sleep_until(w.end.into()).await;
                let after = sample().await;
                let wall = after.0.duration_since(before.0).as_secs_f64().max(1e-9);
                let pct = |a: Option<f64>, b: Option<f64>| Some(round((b? - a?) * 100.0 / wall));
                (
                    pct(before.1, after.1),
                    pct(before.2, after.2),
                    after.3.zip(before.3).map(|(a, b)| a.saturating_sub(b)),
                )
            }))
        }
        Until::Registered(_) => None,
    };
    let mut stats = Stats::default();
    for h in handles {
        stats.merge(h.await.unwrap_or_else(|e| die(format!("a connection task failed: {e}"))));
    }
    let wall = started.elapsed();
    let agent_rss_mb = agent_pid.and_then(|p| proc_status_kb(p, "VmRSS:")).map(|kb| round(kb / 1024.0));
    stats.latencies_us.sort_unstable();
    let (agent_cpu_pct, bench_cpu_pct, evals) = match sampler {
        Some(s) => s.await.unwrap_or_else(|e| die(format!("the sampler failed: {e}"))),
        None => (None, None, None),
    };
    let window = match phase.until {
        Until::Window(w) => w.end.duration_since(w.start),
        Until::Registered(_) => Duration::ZERO,
    };
    Measured { stats, window, agent_cpu_pct, bench_cpu_pct, evals, agent_rss_mb, wall }
}

/// How the scheduler worked off a phase's evaluations.
struct Settled {
    /// Seconds until it had processed the phase's evaluations.
    secs: f64,
    /// Evaluations processed since the phase began, re-runs of blocked ones included.
    processed: u64,
}

/// Waits until the scheduler has processed `expected` evaluations more than `before` and
/// its count has then not moved for `SETTLE_DONE_QUIET` (or it stops short of `expected`
/// for `SETTLE_QUIET`, or `SETTLE_MAX` passes).
async fn settle(target: &Target, before: Option<u64>, expected: u64) -> Settled {
    let Some(before) = before else { return Settled { secs: 0.0, processed: 0 } };
    let started = Instant::now();
    let (mut last, mut last_change) = (before, Instant::now());
    let mut reached = None;
    loop {
        let now = evals_processed(target).await.unwrap_or(last);
        let processed = now.saturating_sub(before);
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
        if processed >= expected {
            let at = *reached.get_or_insert_with(|| started.elapsed().as_secs_f64());
            if last_change.elapsed() >= SETTLE_DONE_QUIET {
                return Settled { secs: at, processed };
            }
        } else if last_change.elapsed() >= SETTLE_QUIET {
            eprintln!("settle: the scheduler processed {processed} of {expected} evaluations and stopped moving");
            return Settled { secs: started.elapsed().as_secs_f64(), processed };
        }
        if started.elapsed() >= SETTLE_MAX {
            eprintln!("settle: {processed} of {expected} evaluations processed after {} s", SETTLE_MAX.as_secs());
            return Settled { secs: reached.unwrap_or(started.elapsed().as_secs_f64()), processed };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the agent lists a ready node: its client registered, so the capacity
/// signal of that registration (and the scheduler's unblocking pass after it) comes
/// before the bench's jobs, not in a measured window.
async fn wait_for_ready_node(target: &Target) {
    let started = Instant::now();
    loop {
        if let Ok(r) = get_once(target, "/v1/nodes").await
            && r.status == 200
            && let Ok(serde_json::Value::Array(nodes)) = serde_json::from_slice(&r.body)
            && nodes.iter().any(|n| n.get("Status").and_then(serde_json::Value::as_str) == Some("ready"))
        {
            return;
        }
        if started.elapsed() >= AGENT_START_TIMEOUT {
            die(format!("the agent's client registered no ready node within {} s", AGENT_START_TIMEOUT.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("stead-bench api: {e}\n\n{USAGE}");
        std::process::exit(2)
    });
    let agent = match &args.address {
        Some(_) => None,
        None => Some(start_agent(&args.agent_bin.clone().unwrap_or_else(default_agent_bin), args.durable)),
    };
    let address = match (&args.address, &agent) {
        (Some(a), _) => a.clone(),
        (None, Some(agent)) => format!("http://{}", agent.addr),
        (None, None) => unreachable!("an agent is started when no address is given"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(format!("building the runtime: {e}")));
    let mut out = rt.block_on(run(&args, &address, agent.as_ref().map(Agent::pid)));
    drop(rt);
    if let Some(agent) = agent {
        let pid = agent.pid();
        if let Some(kb) = proc_status_kb(pid, "VmHWM:") {
            out.insert("agent_peak_rss_mb".into(), round(kb / 1024.0).into());
        }
        let how = agent.stop();
        eprintln!("agent {how}");
    }
    println!("{}", serde_json::Value::Object(out));
}

async fn run(args: &Args, address: &str, agent_pid: Option<u32>) -> serde_json::Map<String, serde_json::Value> {
    let target = Arc::new(Target::new(resolve(address)));
    eprintln!(
        "stead-bench api: {address} ({}), {} connections, {:.1} s per phase after {} ms warm-up, {} cpus",
        if agent_pid.is_some() { "started by the bench" } else { "running agent" },
        args.connections,
        args.duration.as_secs_f64(),
        args.warmup.as_millis(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    );
    let mut out = serde_json::Map::new();
    let mut put = |k: String, v: serde_json::Value| {
        out.insert(k, v);
    };
    put("connections".into(), args.connections.into());
    put("duration_secs".into(), args.duration.as_secs_f64().into());
    put("warmup_ms".into(), (args.warmup.as_millis() as u64).into());
    put("agent".into(), (if agent_pid.is_some() { "started" } else { "running" }).into());

    let next_seq = Arc::new(AtomicU64::new(0));
    let mut jobs: Arc<Vec<String>> = Arc::new(Vec::new());
    if agent_pid.is_some() {
        wait_for_ready_node(&target).await;
    }
    if args.only.iter().any(|op| *op != Op::Register) {
        let t = Instant::now();
        let phase = Phase {
            op: Op::Register,
            target: target.clone(),
            until: Until::Registered(args.jobs),
            next_seq: next_seq.clone(),
            jobs: jobs.clone(),
            seed: args.seed,
        };
        let before = evals_processed(&target).await;
        let m = run_phase(phase, PRELOAD_CONNECTIONS, agent_pid).await;
        if m.stats.registered.len() as u64 != args.jobs {
            die(format!(
                "preloading: {} of {} jobs registered ({} non-2xx, first: {:?}; {} connection errors, first: {:?})",
                m.stats.registered.len(),
                args.jobs,
                m.stats.non2xx,
                m.stats.first_non2xx,
                m.stats.conn_errors,
                m.stats.first_conn_error
            ));
        }
        let preload_secs = t.elapsed().as_secs_f64();
        jobs = Arc::new(m.stats.registered);
        let settled = settle(&target, before, args.jobs).await;
        eprintln!(
            "preloaded {} jobs in {preload_secs:.2} s; the scheduler caught up {:.2} s later ({} evaluations)",
            jobs.len(),
            settled.secs,
            settled.processed
        );
        put("jobs".into(), args.jobs.into());
        put("preload_secs".into(), round(preload_secs).into());
        put("preload_settle_secs".into(), round(settled.secs).into());
        put("preload_evals".into(), settled.processed.into());
    }

    for &op in &args.only {
        if op == Op::ListJobs {
            put("list_jobs_jobs".into(), count_jobs(&target).await.into());
        }
        let start = Instant::now() + args.warmup;
        let window = Window { start, end: start + args.duration };
        let phase = Phase {
            op,
            target: target.clone(),
            until: Until::Window(window),
            next_seq: next_seq.clone(),
            jobs: jobs.clone(),
            seed: args.seed,
        };
        let before = if op == Op::Register { evals_processed(&target).await } else { None };
        let m = run_phase(phase, args.connections, agent_pid).await;
        let s = &m.stats;
        let name = op.name();
        let secs = m.window.as_secs_f64();
        let rps = s.ok as f64 / secs;
        let (p50, p99) = (percentile_ms(&s.latencies_us, 0.50), percentile_ms(&s.latencies_us, 0.99));
        let body_kb = if s.ok > 0 { s.body_bytes as f64 / s.ok as f64 / 1024.0 } else { 0.0 };
        let pct = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}%"));
        eprintln!(
            "{name:<12} {rps:>9.0} req/s  p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  errors {} (non-2xx {}, connection {})  \
             {body_kb:.1} KiB/answer  cpu: agent {} bench {}  evals {}  agent rss {} MB  ({:.1} s)",
            s.non2xx + s.conn_errors,
            s.non2xx,
            s.conn_errors,
            pct(m.agent_cpu_pct),
            pct(m.bench_cpu_pct),
            m.evals.map_or("-".to_owned(), |e| e.to_string()),
            m.agent_rss_mb.map_or("-".to_owned(), |v| format!("{v:.0}")),
            m.wall.as_secs_f64(),
        );
        if let Some(e) = &s.first_non2xx {
            eprintln!("    first non-2xx answer: {e}");
        }
        if let Some(e) = &s.first_conn_error {
            eprintln!("    first connection error: {e}");
        }
        put(format!("{name}_rps"), round(rps).into());
        put(format!("{name}_p50_ms"), round(p50).into());
        put(format!("{name}_p99_ms"), round(p99).into());
        put(format!("{name}_errors"), (s.non2xx + s.conn_errors).into());
        put(format!("{name}_non2xx"), s.non2xx.into());
        put(format!("{name}_conn_errors"), s.conn_errors.into());
        put(format!("{name}_body_kb"), round(body_kb).into());
        for (k, v) in
            [("agent_cpu_pct", m.agent_cpu_pct), ("bench_cpu_pct", m.bench_cpu_pct), ("agent_rss_mb", m.agent_rss_mb)]
        {
            if let Some(v) = v {
                put(format!("{name}_{k}"), v.into());
            }
        }
        if let Some(v) = m.evals {
            put(format!("{name}_evals"), v.into());
        }
        if op == Op::Register {
            // The scheduler trails the registrations: how far, and how long it takes to catch up.
            let n = m.stats.registered.len() as u64;
            put("register_jobs".into(), n.into());
            let processed = evals_processed(&target).await;
            if let (Some(b), Some(p)) = (before, processed) {
                put("register_evals_backlog".into(), n.saturating_sub(p.saturating_sub(b)).into());
            }
            let settled = settle(&target, before, n).await;
            let after_window = settled.secs;
            eprintln!(
                "the scheduler caught up {after_window:.2} s after the register phase ({} evaluations for {n} jobs)",
                settled.processed
            );
            put("register_settle_secs".into(), round(after_window.max(0.0)).into());
            put("register_settled_evals".into(), settled.processed.into());
        }
    }

    put("jobs_at_end".into(), count_jobs(&target).await.into());
    out
}

/// The jobs `GET /v1/jobs` lists (0 when it fails, which it reports).
async fn count_jobs(target: &Target) -> usize {
    match get_once(target, "/v1/jobs").await {
        Ok(r) if r.status == 200 => serde_json::from_slice::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0),
        Ok(r) => {
            eprintln!("listing jobs: status {}", r.status);
            0
        }
        Err(e) => {
            eprintln!("listing jobs: {e}");
            0
        }
    }
}

/// A small HTTP/1.1 client: one request at a time on a keep-alive connection; answers
/// framed by `Content-Length`, chunked transfer coding, or the connection's end.
mod http {
    use std::net::SocketAddr;

    use httparse::Status;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Response heads with more headers than this are refused.
    const HEADERS_MAX: usize = 64;
    /// Bytes reserved in the buffer before each read.
    const READ_CHUNK: usize = 64 * 1024;

    #[derive(Debug, PartialEq, Eq)]
    pub struct Response {
        pub status: u16,
        pub body: Vec<u8>,
        /// Whether the connection may carry the next request.
        pub keep_alive: bool,
    }

    #[derive(Debug, PartialEq, Eq)]
    pub enum Parsed {
        /// More bytes are needed.
        Incomplete,
        /// A whole response, and how many bytes of the buffer it took.
        Complete(Response, usize),
    }

    enum Framing {
        Empty,
        Length(usize),
        Chunked,
        UntilClose,
    }

    /// Parses one response from the start of `buf`. `eof`: no more bytes will come (the
    /// peer closed), which ends a body framed by the connection's end and makes any other
    /// incomplete response an error.
    pub fn parse_response(buf: &[u8], eof: bool) -> Result<Parsed, String> {
        let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
        let mut head = httparse::Response::new(&mut headers);
        let head_len = match head.parse(buf) {
            Ok(Status::Complete(n)) => n,
            Ok(Status::Partial) if eof && buf.is_empty() => {
                return Err("the connection closed before an answer".into());
            }
            Ok(Status::Partial) if eof => return Err("the connection closed inside the response head".into()),
            Ok(Status::Partial) => return Ok(Parsed::Incomplete),
            Err(e) => return Err(format!("malformed response head: {e}")),
        };
        let status = head.code.unwrap_or(0);
        // HTTP/1.0 closes unless asked to keep alive; HTTP/1.1 keeps alive unless told to close.
        let mut keep_alive = head.version == Some(1);
        let (mut length, mut chunked) = (None, false);
        for h in head.headers.iter() {
            let value = std::str::from_utf8(h.value).map_err(|_| format!("header {} is not UTF-8", h.name))?;
            if h.name.eq_ignore_ascii_case("content-length") {
                let n: usize =
                    value.trim().parse().map_err(|_| format!("Content-Length {value:?} is not a byte count"))?;
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting Content-Length headers".into());
                }
                length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                let last = value.rsplit(',').next().unwrap_or("").trim();
                if !last.eq_ignore_ascii_case("chunked") {
                    return Err(format!("Transfer-Encoding {value:?} is not supported"));
                }
                chunked = true;
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        keep_alive = false;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        keep_alive = true;
                    }
                }
            }
        }
        let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
            Framing::Empty
        } else if chunked {
            // RFC 9112 §6.3: chunked wins over Content-Length.
            Framing::Chunked
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            Framing::UntilClose
        };
        let rest = &buf[head_len..];
        let (body, used) = match framing {
            Framing::Empty => (Vec::new(), 0),
            Framing::Length(n) if rest.len() >= n => (rest[..n].to_vec(), n),
            Framing::Length(n) if eof => {
                return Err(format!("the connection closed after {} of {n} body bytes", rest.len()));
            }
            Framing::Length(_) => return Ok(Parsed::Incomplete),
            Framing::Chunked => match dechunk(rest, None)? {
                Some(used) => {
                    let mut body = Vec::new();
                    dechunk(rest, Some(&mut body))?;
                    (body, used)
                }
                None if eof => return Err("the connection closed inside a chunked body".into()),
                None => return Ok(Parsed::Incomplete),
            },
            Framing::UntilClose if eof => {
                keep_alive = false;
                (rest.to_vec(), rest.len())
            }
            Framing::UntilClose => return Ok(Parsed::Incomplete),
        };
        Ok(Parsed::Complete(Response { status, body, keep_alive }, head_len + used))
    }

    /// Walks a chunked body at the start of `buf`: returns the bytes it takes (trailers
    /// included) when complete, None when more are needed; appends the data to `out`.
    /// The first pass of a large body that is still arriving copies nothing.
    fn dechunk(buf: &[u8], mut out: Option<&mut Vec<u8>>) -> Result<Option<usize>, String> {
        let mut pos = 0;
        loop {
            let (line, size) = match httparse::parse_chunk_size(&buf[pos..]) {
                Ok(Status::Complete(c)) => c,
                Ok(Status::Partial) => return Ok(None),
                Err(_) => return Err("malformed chunk size line".into()),
            };
            pos += line;
            if size == 0 {
                // Trailer fields, then an empty line.
                let rest = &buf[pos..];
                if rest.starts_with(b"\r\n") {
                    return Ok(Some(pos + 2));
                }
                return Ok(rest.windows(4).position(|w| w == b"\r\n\r\n").map(|i| pos + i + 4));
            }
            let size = usize::try_from(size).map_err(|_| "chunk too large".to_owned())?;
            if buf.len() - pos < size.saturating_add(2) {
                return Ok(None);
            }
            if &buf[pos + size..pos + size + 2] != b"\r\n" {
                return Err("chunk data not followed by CRLF".into());
            }
            if let Some(out) = out.as_deref_mut() {
                out.extend_from_slice(&buf[pos..pos + size]);
            }
            pos += size + 2;
        }
    }

    pub struct Client {
        stream: TcpStream,
        buf: Vec<u8>,
    }

    impl Client {
        pub async fn connect(addr: SocketAddr) -> Result<Client, String> {
            let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            Ok(Client { stream, buf: Vec::with_capacity(READ_CHUNK) })
        }

        /// Writes `request` (a whole HTTP/1.1 request) and reads its answer.
        pub async fn send(&mut self, request: &[u8]) -> Result<Response, String> {
            if !self.buf.is_empty() {
                return Err(format!("{} bytes arrived before the request was sent", self.buf.len()));
            }
            self.stream.write_all(request).await.map_err(|e| format!("writing the request: {e}"))?;
            loop {
                self.buf.reserve(READ_CHUNK);
                let n = self.stream.read_buf(&mut self.buf).await.map_err(|e| format!("reading the answer: {e}"))?;
                match parse_response(&self.buf, n == 0)? {
                    Parsed::Complete(mut response, used) => {
                        self.buf.drain(..used);
                        if n == 0 {
                            response.keep_alive = false;
                        }
                        return Ok(response);
                    }
                    Parsed::Incomplete => {}
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn complete(input: &[u8]) -> (Response, usize) {
            match parse_response(input, false) {
                Ok(Parsed::Complete(r, used)) => (r, used),
                other => panic!("expected a complete response, got {other:?}"),
            }
        }

        /// Every strict prefix of `input` is incomplete, not an error.
        fn check_prefixes_incomplete(input: &[u8], whole: usize) {
            for end in 0..whole {
                assert_eq!(parse_response(&input[..end], false), Ok(Parsed::Incomplete), "prefix of {end} bytes");
            }
        }

        #[test]
        fn content_length_body_is_read_whole_and_leaves_the_next_response() {
            let first = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}";
            let mut input = first.to_vec();
            input.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            let (r, used) = complete(&input);
            assert_eq!(r, Response { status: 200, body: b"{\"a\":1}".to_vec(), keep_alive: true });
            assert_eq!(used, first.len());
            check_prefixes_incomplete(&input, first.len());
            let (r, used) = complete(&input[first.len()..]);
            assert_eq!((r.status, r.body.len(), used), (404, 0, input.len() - first.len()));
        }

        #[test]
        fn chunked_body_is_joined_with_extensions_and_trailers() {
            let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                          5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
            let (r, used) = complete(input);
            assert_eq!(r, Response { status: 200, body: b"hello, world".to_vec(), keep_alive: true });
            assert_eq!(&input[used..], b"NEXT");
            check_prefixes_incomplete(input, used);
        }

        #[test]
        fn chunked_body_without_trailers_wins_over_content_length() {
            let input = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n";
            let (r, used) = complete(input);
            assert_eq!((r.body.as_slice(), used), (&b"0123456789"[..], input.len()));
        }

        #[test]
        fn malformed_chunks_and_heads_are_errors() {
            let bad_size = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
            assert!(parse_response(bad_size, false).is_err());
            let no_crlf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiXX0\r\n\r\n";
            assert!(parse_response(no_crlf, false).is_err());
            assert!(parse_response(b"HTTP/1.1 abc OK\r\n\r\n", false).is_err());
            let conflicting = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab";
            assert!(parse_response(conflicting, false).is_err());
        }

        #[test]
        fn connection_close_and_http_1_0_end_keep_alive() {
            let (r, _) =
                complete(b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno");
            assert_eq!((r.status, r.keep_alive), (500, false));
            let (r, _) = complete(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
            assert!(!r.keep_alive);
            let (r, _) = complete(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
            assert!(r.keep_alive);
        }

        #[test]
        fn body_without_length_ends_with_the_connection() {
            let input = b"HTTP/1.1 200 OK\r\n\r\nuntil close";
            assert_eq!(parse_response(input, false), Ok(Parsed::Incomplete));
            match parse_response(input, true) {
                Ok(Parsed::Complete(r, used)) => {
                    assert_eq!((r.body.as_slice(), r.keep_alive, used), (&b"until close"[..], false, input.len()));
                }
                other => panic!("expected a complete response, got {other:?}"),
            }
        }

        #[test]
        fn early_close_is_an_error() {
            assert!(parse_response(b"", true).is_err());
            assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Le", true).is_err());
            assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", true).is_err());
            assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", true).is_err());
        }

        #[test]
        fn no_content_has_no_body() {
            let head = b"HTTP/1.1 204 No Content\r\n\r\n";
            let (r, used) = complete(&[&head[..], b"HTTP/1.1"].concat());
            assert_eq!((r.status, r.body.len(), used), (204, 0, head.len()));
        }
    }
}
