//! `stead-bench sched`: scheduling throughput, end to end, on the embedded store.
//!
//! Usage: `stead-bench sched --nodes N --jobs J --count C [--workers W] [--submitters S]
//! [--memory] [--data-dir DIR] [--cpu MHZ] [--mem MB] [--seed S]`
//!
//! 1. Opens a store (durable, in a fresh directory under DIR or the system's temporary
//!    directory; `--memory`: the in-memory engine) and registers N nodes (8 cores,
//!    20,000 MHz, 32 GiB, the mock driver) through the node write path. Not timed.
//! 2. Starts W scheduler workers in this process, lets them load their view of the
//!    cluster (`cache_load_seconds`, not timed: a running server has it), and submits J
//!    service jobs of one group
//!    of C allocations (one mock task asking `--cpu` MHz and `--mem` MB) through the job
//!    write path, from S concurrent submitters.
//! 3. `seconds` runs from the first submission to the report of the evaluation that
//!    committed the last placement; `placements_per_sec` and `evals_per_sec` follow from it.
//!    The usage records are then summed to check that every placement is there.
//! 4. `raw_store_seconds`: a fresh store of the same kind receives records of the same
//!    shape (the placed allocation of the first job, with new IDs, names and nodes) from W
//!    writers in transactions of the size the plan commit uses, with nothing else — no
//!    scheduling, no queue, no usage records. `ratio_to_raw` = raw / scheduled seconds.
//!
//! Peak RSS (`peak_rss_mb`) is read from `/proc/self/status` (VmHWM) at the end of step 3.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use stead_server::commit::CommitConfig;
use stead_server::env::Env;
use stead_server::metrics::SchedMetrics;
use stead_server::snapshot::read_all_usage;
use stead_server::worker::{self, EvalOutcome, EvalReport, WorkerConfig};
use stead_server::{Store, jobs, nodes};
use stead_store::embedded::{EmbeddedOptions, open};
use stead_store::model::{Allocation, JobType, Node};
use stead_store::records;
use stead_store::schema::{JobModify, PageOptions, PutOptions};
use stead_store::{Database, ReadMode};
use stead_testkit::fixtures;

const USAGE: &str = "usage: stead-bench sched --nodes N --jobs J --count C [options]\n\
    \n\
    --nodes N          nodes to register (8 cores, 20,000 MHz, 32 GiB each)\n\
    --jobs J           service jobs to submit\n\
    --count C          allocations per job\n\
    --workers W        scheduler workers in this process (default 2)\n\
    --submitters S     concurrent job submitters (default 8)\n\
    --cpu MHZ          CPU per allocation (default 100)\n\
    --mem MB           memory per allocation (default 128)\n\
    --memory           use the in-memory engine instead of a durable data directory\n\
    --data-dir DIR     put the durable store under DIR (default: the temporary directory)\n\
    --seed S           cluster seed (default 1)";

struct Args {
    nodes: usize,
    jobs: usize,
    count: usize,
    workers: usize,
    submitters: usize,
    cpu: i32,
    mem: i32,
    memory: bool,
    data_dir: Option<PathBuf>,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        nodes: 0,
        jobs: 0,
        count: 0,
        workers: 2,
        submitters: 8,
        cpu: 100,
        mem: 128,
        memory: false,
        data_dir: None,
        seed: 1,
    };
    let mut it = std::env::args().skip(2);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if flag == "--memory" {
            args.memory = true;
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
        let count = |v: &str| -> Result<usize, String> {
            v.replace('_', "").parse::<usize>().map_err(|_| format!("{name}: {v:?} is not a whole number"))
        };
        match name.as_str() {
            "--nodes" => args.nodes = count(&value)?,
            "--jobs" => args.jobs = count(&value)?,
            "--count" => args.count = count(&value)?,
            "--workers" => args.workers = count(&value)?,
            "--submitters" => args.submitters = count(&value)?,
            "--cpu" => args.cpu = count(&value)? as i32,
            "--mem" => args.mem = count(&value)? as i32,
            "--data-dir" => args.data_dir = Some(PathBuf::from(value)),
            "--seed" => args.seed = count(&value)? as u64,
            _ => return Err(format!("unknown option {name}")),
        }
    }
    for (what, v) in
        [("--nodes", args.nodes), ("--jobs", args.jobs), ("--count", args.count), ("--workers", args.workers)]
    {
        if v == 0 {
            return Err(format!("{what} must be given and above 0"));
        }
    }
    if args.count > 100_000 {
        return Err("--count above 100,000 makes one job's allocations too large to read in one snapshot".into());
    }
    Ok(args)
}

fn die(msg: String) -> ! {
    eprintln!("stead-bench sched: {msg}");
    std::process::exit(1)
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

struct Opened {
    db: Database,
    _dir: Option<tempfile::TempDir>,
}

fn open_store(args: &Args, name: &str) -> Opened {
    if args.memory {
        return Opened { db: stead_store::embedded::open_in_memory(), _dir: None };
    }
    let dir = match &args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).unwrap_or_else(|e| die(format!("creating {}: {e}", d.display())));
            tempfile::Builder::new().prefix(name).tempdir_in(d)
        }
        None => tempfile::Builder::new().prefix(name).tempdir(),
    }
    .unwrap_or_else(|e| die(format!("creating a data directory: {e}")));
    let db = open(&EmbeddedOptions { data_dir: Some(dir.path().to_path_buf()) })
        .unwrap_or_else(|e| die(format!("opening the store: {e}")));
    Opened { db, _dir: Some(dir) }
}

fn bench_node(i: usize) -> Node {
    let mut node = fixtures::node(
        &format!("{:08x}-0000-4000-8000-{:012x}", i * 2_654_435_761 % (1 << 32), i),
        "dc1",
        20_000,
        32_768,
    );
    if let Some(r) = node.node_resources.as_mut() {
        r.cpu.total_cpu_cores = 8;
    }
    node
}

async fn register_nodes(store: &Store, env: &Env, n: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (store, env, next) = (store.clone(), env.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                if let Err(e) = nodes::upsert(&store, &env, &bench_node(i)).await {
                    die(format!("registering node {i}: {e}"));
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap_or_else(|e| die(format!("node registration task: {e}")));
    }
}

pub fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("stead-bench sched: {e}\n\n{USAGE}");
        std::process::exit(2)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(format!("building the runtime: {e}")));
    let out = rt.block_on(run(&args));
    drop(rt);
    println!("{}", serde_json::Value::Object(out));
}

async fn run(args: &Args) -> serde_json::Map<String, serde_json::Value> {
    let total = args.jobs * args.count;
    eprintln!(
        "stead-bench sched: {} nodes, {} jobs × {} = {} placements, {} workers, {} store, {} cpus",
        args.nodes,
        args.jobs,
        args.count,
        total,
        args.workers,
        if args.memory { "in-memory" } else { "durable" },
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let opened = open_store(args, "stead-bench-sched-");
    let store = Store::new(opened.db.clone());
    let env = Env::system();

    let t = Instant::now();
    register_nodes(&store, &env, args.nodes).await;
    let register_secs = t.elapsed().as_secs_f64();
    eprintln!("registered {} nodes in {register_secs:.1} s", args.nodes);

    let (reports_tx, mut reports_rx) = tokio::sync::mpsc::unbounded_channel::<EvalReport>();
    let metrics = SchedMetrics::unregistered();
    let config = WorkerConfig { workers: args.workers, cluster_seed: args.seed, ..WorkerConfig::default() };
    let commit_config = config.commit.clone();
    let workers = worker::start(store.clone(), env.clone(), config, metrics.clone(), Some(reports_tx));
    // A running server's workers know the cluster already: load their cache before the clock starts.
    let t = Instant::now();
    workers.warm_up().await.unwrap_or_else(|e| die(format!("loading the cluster cache: {e}")));
    let warm_up_secs = t.elapsed().as_secs_f64();
    eprintln!("workers loaded {} nodes in {warm_up_secs:.2} s", args.nodes);

    // Submit.
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut submitters = Vec::new();
    for _ in 0..args.submitters.max(1) {
        let (store, env, next) = (store.clone(), env.clone(), next.clone());
        let (jobs_n, count, cpu, mem) = (args.jobs, args.count as i32, args.cpu, args.mem);
        submitters.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= jobs_n {
                    break;
                }
                let job = fixtures::job(&format!("bench-{i:06}"), JobType::Service, count, cpu, mem);
                if let Err(e) = jobs::register(&store, &env, job, None).await {
                    die(format!("registering job {i}: {e}"));
                }
            }
        }));
    }
    let mut submitted_secs = None;
    let mut placed = 0usize;
    let mut reports: Vec<EvalReport> = Vec::new();
    let mut last_placement = started;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let mut last_progress = Instant::now();
    while placed < total {
        if submitted_secs.is_none() && submitters.iter().all(|s| s.is_finished()) {
            submitted_secs = Some(started.elapsed().as_secs_f64());
        }
        match tokio::time::timeout(Duration::from_secs(1), reports_rx.recv()).await {
            Ok(Some(r)) => {
                if r.placed > 0 {
                    placed += r.placed;
                    last_placement = Instant::now();
                    last_progress = last_placement;
                }
                *outcomes.entry(format!("{:?}", r.outcome).split('(').next().unwrap_or("").to_owned()).or_default() +=
                    1;
                if let EvalOutcome::Error(e) = &r.outcome {
                    eprintln!("evaluation {} failed: {e}", r.eval_id);
                }
                reports.push(r);
            }
            Ok(None) => die("the workers stopped".into()),
            Err(_) => {
                eprintln!("… {placed} placed after {:.1} s", started.elapsed().as_secs_f64());
                if last_progress.elapsed() > Duration::from_secs(60) {
                    die(format!("no progress for 60 s at {placed} of {total} placements: {outcomes:?}"));
                }
            }
        }
    }
    let seconds = last_placement.duration_since(started).as_secs_f64();
    let rss = peak_rss_mb();
    for s in submitters {
        let _ = s.await;
    }
    workers.shutdown().await;
    let usage = read_all_usage(&store, usize::MAX).await.unwrap_or_else(|e| die(format!("reading usage: {e}")));
    let counted: u64 = usage.iter().map(|u| u.allocs).sum();
    if counted != total as u64 {
        die(format!("usage records count {counted} allocations, {total} were placed"));
    }
    let over =
        usage.iter().filter(|u| u.used.cpu_mhz > u.capacity.cpu_mhz || u.used.memory_mb > u.capacity.memory_mb).count();
    if over > 0 {
        die(format!("{over} nodes over-committed"));
    }
    let template = first_alloc(&store).await;

    let mut durations: Vec<Duration> = reports.iter().map(|r| r.duration).collect();
    durations.sort();
    let conflicts: u64 = reports.iter().map(|r| r.conflicts).sum();
    let retries = metrics.retries.get();
    eprintln!(
        "scheduled {placed} placements in {seconds:.2} s: {:.0} placements/s, {:.1} evals/s, {} evals {outcomes:?}, \
         {conflicts} conflicts, {retries} retries, eval p50 {:.1} ms p99 {:.1} ms, peak RSS {rss:.0} MB \
         (submission took {:.2} s)",
        placed as f64 / seconds,
        reports.len() as f64 / seconds,
        reports.len(),
        percentile_ms(&durations, 0.5),
        percentile_ms(&durations, 0.99),
        submitted_secs.unwrap_or(seconds),
    );
    drop(store);
    drop(opened);

    // Raw: the same records straight into a fresh store.
    let raw_seconds = raw_phase(args, &template, &commit_config).await;
    eprintln!("raw: {total} allocation records in {raw_seconds:.2} s ({:.0} records/s)", total as f64 / raw_seconds);

    let mut out = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        out.insert(k.to_owned(), v);
    };
    put("nodes", args.nodes.into());
    put("jobs", args.jobs.into());
    put("count", args.count.into());
    put("workers", args.workers.into());
    put("store", (if args.memory { "memory" } else { "durable" }).into());
    put("placements", placed.into());
    put("seconds", round(seconds).into());
    put("placements_per_sec", round(placed as f64 / seconds).into());
    put("evals", reports.len().into());
    put("evals_per_sec", round(reports.len() as f64 / seconds).into());
    put("conflicts", conflicts.into());
    put("retries", retries.into());
    put("eval_p50_ms", round(percentile_ms(&durations, 0.5)).into());
    put("eval_p99_ms", round(percentile_ms(&durations, 0.99)).into());
    put("peak_rss_mb", round(rss).into());
    put("register_nodes_seconds", round(register_secs).into());
    put("cache_load_seconds", round(warm_up_secs).into());
    put("raw_store_seconds", round(raw_seconds).into());
    put("ratio_to_raw", ((raw_seconds / seconds * 1000.0).round() / 1000.0).into());
    out
}

async fn first_alloc(store: &Store) -> Allocation {
    let tx = store.db.create_transaction().unwrap_or_else(|e| die(format!("{e}")));
    let page = PageOptions::new(1).read_mode(ReadMode::Snapshot);
    records::allocs_by_job(&store.ks, &tx, "default", "bench-000000", &page)
        .await
        .unwrap_or_else(|e| die(format!("reading an allocation: {e}")))
        .items
        .pop()
        .unwrap_or_else(|| die("job bench-000000 has no allocation".into()))
}

/// Writes `jobs × count` copies of `template` (new IDs, names, nodes and jobs) into a fresh
/// store, from `workers` writers, in transactions the size the plan commit uses; returns the
/// seconds it took.
async fn raw_phase(args: &Args, template: &Allocation, commit: &CommitConfig) -> f64 {
    let opened = open_store(args, "stead-bench-raw-");
    let store = Store::new(opened.db.clone());
    // Per transaction: as many records as a plan chunk holds by its byte estimate.
    let per_tx = (commit.chunk_bytes_max / 2_500).clamp(1, commit.chunk_nodes_max.max(1));
    // Build every record first, outside the timed part.
    let mut batches: Vec<Vec<Allocation>> = Vec::new();
    for j in 0..args.jobs {
        let job_id = format!("bench-{j:06}");
        let mut batch = Vec::with_capacity(per_tx);
        for k in 0..args.count {
            let mut a = template.clone();
            a.id = format!("{:08x}-{:04x}-4000-8000-{:012x}", j, k % 0xffff, k).into();
            a.name = format!("{job_id}.g[{k}]");
            a.job_id = job_id.clone().into();
            a.node_id = bench_node((j * 7919 + k) % args.nodes).id;
            batch.push(a);
            if batch.len() == per_tx {
                batches.push(std::mem::take(&mut batch));
            }
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
    }
    let batches = Arc::new(batches);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..args.workers.max(1) {
        let (store, batches, next) = (store.clone(), batches.clone(), next.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(i) else { break };
                let result = store
                    .db
                    .run(|tx, _| {
                        let store = store.clone();
                        async move {
                            for a in batch {
                                store.ks.put(&tx, a, PutOptions::insert_new().job_modify(JobModify::Bump)).await?;
                            }
                            Ok::<_, stead_store::schema::SchemaError>(())
                        }
                    })
                    .await;
                if let Err(e) = result {
                    die(format!("raw write: {e}"));
                }
            }
        }));
    }
    for w in writers {
        let _ = w.await;
    }
    started.elapsed().as_secs_f64()
}
