//! `stead-bench store`: throughput and latency of the embedded store with durable commits.
//!
//! Usage: `stead-bench store [--duration-secs N] [--warmup-ms M] [--data-dir DIR]
//! [--keys K] [--seed S]`
//!
//! Each scenario opens a store in its own fresh subdirectory (of a new temporary
//! directory, created under DIR when given) so scenarios do not influence each other,
//! runs its clients for a short warm-up and then measures over a fixed wall duration:
//!
//! * `blind_cN`: N concurrent clients (tokio tasks on a multi-thread runtime), each
//!   committing transactions that set one random 22-byte key to a 500-byte value and read
//!   nothing;
//! * `rmw10_cN`: N clients running `Database::run` transactions that read 10 random keys
//!   of a preloaded key space serializably and write all 10 back modified;
//! * `raw`: fjall alone, opened as the store opens it, writing durable batches of 256
//!   records of the same shape: the ceiling group commit can approach.
//!
//! Human-readable lines go to stderr; the last line of stdout is one JSON object with the
//! figures (`*_cps`: commits per second; `raw_cps`: records per second).

pub use real::main;

mod real {
    use std::collections::{BTreeMap, HashMap};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rand::rngs::SmallRng;
    use rand::{Rng, RngCore, SeedableRng};
    use stead_store::embedded::{EmbeddedOptions, open};
    use stead_store::{Database, Error, Version};

    const KEY_LEN: usize = 22;
    const VALUE_LEN: usize = 500;
    /// Values are 500-byte windows of a per-client random pool: incompressible and cheap.
    const VALUE_POOL: usize = 64 * 1024;
    const RMW_KEYS_PER_TXN: usize = 10;
    const RAW_BATCH: usize = 256;
    const CLIENT_COUNTS: [usize; 3] = [1, 16, 256];
    /// The store's commit thread as /proc names it (15 characters at most).
    const COMMITTER_THREAD: &str = "stead-store-com";

    type Key = [u8; KEY_LEN];

    /// Per-thread CPU accounting from `/proc/self/task/*/schedstat` (Linux): nanoseconds
    /// on a CPU and waiting on a run queue, keyed by thread id, with the thread's name.
    #[derive(Default)]
    struct ThreadTimes(HashMap<u32, (String, u64, u64)>);

    /// Per thread name: (threads, % of one cpu running, % of one cpu waiting on a run queue).
    type ThreadGroups = BTreeMap<String, (usize, f64, f64)>;

    impl ThreadTimes {
        fn now() -> ThreadTimes {
            let mut out = HashMap::new();
            let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
                return ThreadTimes(out);
            };
            for entry in dir.flatten() {
                let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
                    continue;
                };
                let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                let Ok(stat) = std::fs::read_to_string(entry.path().join("schedstat")) else {
                    continue;
                };
                let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().unwrap_or(0));
                let (run, wait) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0));
                out.insert(tid, (comm.trim().to_string(), run, wait));
            }
            ThreadTimes(out)
        }

        fn since(&self, before: &ThreadTimes, wall: Duration) -> ThreadGroups {
            let mut groups = ThreadGroups::new();
            let wall_ns = wall.as_nanos().max(1) as f64;
            for (tid, (comm, run, wait)) in &self.0 {
                let (run0, wait0) = before.0.get(tid).map_or((0, 0), |(_, r, w)| (*r, *w));
                let g = groups.entry(comm.clone()).or_default();
                g.0 += 1;
                g.1 += run.saturating_sub(run0) as f64 * 100.0 / wall_ns;
                g.2 += wait.saturating_sub(wait0) as f64 * 100.0 / wall_ns;
            }
            groups.retain(|_, (_, run, wait)| *run + *wait >= 0.5);
            groups
        }
    }

    /// Reads the threads' CPU times at the window's start and end, on a thread of its own.
    fn sample_threads(window: Window) -> std::thread::JoinHandle<ThreadGroups> {
        std::thread::spawn(move || {
            std::thread::sleep(window.start.saturating_duration_since(Instant::now()));
            let before = ThreadTimes::now();
            let t0 = Instant::now();
            std::thread::sleep(window.end.saturating_duration_since(Instant::now()));
            ThreadTimes::now().since(&before, t0.elapsed())
        })
    }

    fn threads_line(groups: &ThreadGroups) -> String {
        let parts: Vec<String> =
            groups.iter().map(|(name, (n, run, wait))| format!("{name} x{n}: cpu {run:.0}% runq {wait:.0}%")).collect();
        format!("    threads (% of one cpu over the window): {}", parts.join("; "))
    }

    const USAGE: &str = "usage: stead-bench store [--duration-secs N] [--warmup-ms M] [--data-dir DIR] [--keys K] [--seed S] [--only LIST]\n\
        \n\
        Measures the embedded store with durable commits (see the file's documentation).\n\
        --duration-secs N  measured wall time per scenario (default 3)\n\
        --warmup-ms M      unmeasured warm-up before each measurement (default 500)\n\
        --data-dir DIR     where the scenarios' directories go (default: a fresh temporary directory)\n\
        --keys K           preloaded key space of the read-modify-write scenarios (default 100000)\n\
        --seed S           RNG seed (default 1)\n\
        --only LIST        run only these scenarios, comma-separated (blind_c1, blind_c16, blind_c256,\n\
                           rmw10_c1, rmw10_c16, rmw10_c256, raw; default: all)";

    struct Args {
        duration: Duration,
        warmup: Duration,
        data_dir: Option<PathBuf>,
        keys: usize,
        seed: u64,
        only: Option<Vec<String>>,
    }

    impl Args {
        fn wants(&self, scenario: &str) -> bool {
            self.only.as_ref().is_none_or(|only| only.iter().any(|s| s == scenario))
        }
    }

    fn parse_args() -> Result<Args, String> {
        let mut it = std::env::args().skip(1);
        match it.next().as_deref() {
            Some("store") => {}
            Some("-h") | Some("--help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            Some(other) => return Err(format!("unknown benchmark {other:?}")),
            None => return Err("no benchmark named".into()),
        }
        let mut args = Args {
            duration: Duration::from_secs(3),
            warmup: Duration::from_millis(500),
            data_dir: None,
            keys: 100_000,
            seed: 1,
            only: None,
        };
        while let Some(flag) = it.next() {
            if flag == "-h" || flag == "--help" {
                println!("{USAGE}");
                std::process::exit(0);
            }
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (flag.clone(), None),
            };
            let value = match inline {
                Some(v) => v,
                None => it.next().ok_or_else(|| format!("{name} needs a value"))?,
            };
            let number = |v: &str| v.parse::<f64>().map_err(|_| format!("{name}: {v:?} is not a number"));
            match name.as_str() {
                "--duration-secs" => {
                    let secs = number(&value)?;
                    if !(secs > 0.0 && secs < 3600.0) {
                        return Err("--duration-secs must be between 0 and 3600".into());
                    }
                    args.duration = Duration::from_secs_f64(secs);
                }
                "--warmup-ms" => args.warmup = Duration::from_millis(number(&value)? as u64),
                "--data-dir" => args.data_dir = Some(PathBuf::from(value)),
                "--keys" => {
                    args.keys = number(&value)? as usize;
                    if args.keys < RMW_KEYS_PER_TXN {
                        return Err(format!("--keys must be at least {RMW_KEYS_PER_TXN}"));
                    }
                }
                "--seed" => args.seed = value.parse().map_err(|_| format!("--seed: {value:?} is not an integer"))?,
                "--only" => args.only = Some(value.split(',').map(|s| s.trim().to_string()).collect()),
                _ => return Err(format!("unknown option {name}")),
            }
        }
        Ok(args)
    }

    pub fn main() {
        let args = match parse_args() {
            Ok(args) => args,
            Err(e) => {
                eprintln!("stead-bench: {e}\n\n{USAGE}");
                std::process::exit(2);
            }
        };
        let root = match &args.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).unwrap_or_else(|e| die(format!("creating {}: {e}", dir.display())));
                tempfile::Builder::new().prefix("stead-bench-").tempdir_in(dir)
            }
            None => tempfile::Builder::new().prefix("stead-bench-").tempdir(),
        }
        .unwrap_or_else(|e| die(format!("creating the benchmark directory: {e}")));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| die(format!("building the runtime: {e}")));
        eprintln!(
            "stead-bench store: {:.1} s per scenario after {} ms warm-up, in {} ({} cpus)",
            args.duration.as_secs_f64(),
            args.warmup.as_millis(),
            root.path().display(),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
        );

        let mut out = serde_json::Map::new();
        let mut put = |k: String, v: serde_json::Value| {
            out.insert(k, v);
        };
        put("duration_secs".into(), args.duration.as_secs_f64().into());
        put("warmup_ms".into(), (args.warmup.as_millis() as u64).into());

        let mut blind_c256_cps = None;
        for clients in CLIENT_COUNTS {
            if !args.wants(&format!("blind_c{clients}")) {
                continue;
            }
            let dir = root.path().join(format!("blind_c{clients}"));
            let r = rt.block_on(blind(&dir, clients, &args));
            remove_dir(&dir);
            eprintln!("{}", r.human(&format!("blind   c{clients:<3}")));
            eprintln!("{}", threads_line(&r.threads));
            if let Some((_, run, wait)) = r.threads.get(COMMITTER_THREAD) {
                put(format!("blind_c{clients}_committer_cpu_pct"), round(*run).into());
                put(format!("blind_c{clients}_committer_runq_pct"), round(*wait).into());
            }
            put(format!("blind_c{clients}_cps"), round(r.cps()).into());
            put(format!("blind_c{clients}_p50_ms"), round(r.percentile_ms(0.50)).into());
            put(format!("blind_c{clients}_p99_ms"), round(r.percentile_ms(0.99)).into());
            put(format!("blind_c{clients}_commits_per_batch"), round(r.commits_per_batch()).into());
            if clients == 256 {
                blind_c256_cps = Some(r.cps());
            }
        }

        for clients in CLIENT_COUNTS {
            if !args.wants(&format!("rmw10_c{clients}")) {
                continue;
            }
            let dir = root.path().join(format!("rmw10_c{clients}"));
            let r = rt.block_on(rmw(&dir, clients, &args));
            remove_dir(&dir);
            eprintln!("{}", r.human(&format!("rmw10   c{clients:<3}")));
            eprintln!("{}", threads_line(&r.threads));
            put(format!("rmw10_c{clients}_cps"), round(r.cps()).into());
            put(format!("rmw10_c{clients}_p50_ms"), round(r.percentile_ms(0.50)).into());
            put(format!("rmw10_c{clients}_p99_ms"), round(r.percentile_ms(0.99)).into());
            put(format!("rmw10_c{clients}_retries"), r.retries.into());
            put(format!("rmw10_c{clients}_errors"), r.errors.into());
            put(format!("rmw10_c{clients}_commits_per_batch"), round(r.commits_per_batch()).into());
        }

        let mut raw_cps = None;
        if args.wants("raw") {
            let dir = root.path().join("raw");
            let raw = raw_fjall(&dir, &args);
            remove_dir(&dir);
            let cps = raw.records as f64 / raw.elapsed.as_secs_f64();
            let batches = raw.latencies_us.len();
            eprintln!(
                "raw fjall batch {RAW_BATCH}: {cps:>9.0} records/s  {batches} batches  {:.0} syncs/s  \
                 batch p50 {:.2} ms  p99 {:.2} ms",
                batches as f64 / raw.elapsed.as_secs_f64(),
                percentile_ms(&raw.latencies_us, 0.50),
                percentile_ms(&raw.latencies_us, 0.99),
            );
            eprintln!("{}", threads_line(&raw.threads));
            put("raw_cps".into(), round(cps).into());
            put("raw_batch_p50_ms".into(), round(percentile_ms(&raw.latencies_us, 0.50)).into());
            raw_cps = Some(cps);
        }
        if let (Some(blind), Some(raw)) = (blind_c256_cps, raw_cps) {
            let ratio = if raw > 0.0 { blind / raw } else { 0.0 };
            eprintln!("blind c256 / raw: {ratio:.3}");
            put("ratio_blind_c256_to_raw".into(), ((ratio * 1000.0).round() / 1000.0).into());
        }

        drop(rt);
        drop(root);
        println!("{}", serde_json::Value::Object(out));
    }

    fn die(msg: String) -> ! {
        eprintln!("stead-bench: {msg}");
        std::process::exit(1)
    }

    fn round(x: f64) -> f64 {
        (x * 100.0).round() / 100.0
    }

    fn remove_dir(dir: &Path) {
        if let Err(e) = std::fs::remove_dir_all(dir) {
            eprintln!("stead-bench: removing {}: {e}", dir.display());
        }
    }

    fn open_store(dir: &Path) -> Database {
        open(&EmbeddedOptions { data_dir: Some(dir.to_path_buf()) })
            .unwrap_or_else(|e| die(format!("opening the store in {}: {e}", dir.display())))
    }

    /// A random key that is not in the reserved `\xff` system keyspace.
    fn random_key(rng: &mut SmallRng) -> Key {
        let mut key = [0u8; KEY_LEN];
        rng.fill_bytes(&mut key);
        key[0] &= 0x7f;
        key
    }

    fn value_pool(rng: &mut SmallRng) -> Vec<u8> {
        let mut pool = vec![0u8; VALUE_POOL];
        rng.fill_bytes(&mut pool);
        pool
    }

    fn random_value<'a>(rng: &mut SmallRng, pool: &'a [u8]) -> &'a [u8] {
        let offset = rng.random_range(0..pool.len() - VALUE_LEN);
        &pool[offset..offset + VALUE_LEN]
    }

    /// When the measurement runs: commits completing in `[start, end)` count.
    #[derive(Clone, Copy)]
    struct Window {
        start: Instant,
        end: Instant,
    }

    impl Window {
        fn after_warmup(args: &Args) -> Window {
            let start = Instant::now() + args.warmup;
            Window { start, end: start + args.duration }
        }
    }

    /// What one client (or, merged, all clients) saw inside the window.
    #[derive(Default)]
    struct Stats {
        commits: u64,
        retries: u64,
        errors: u64,
        latencies_us: Vec<u32>,
        /// Commit versions: commits of one batch share one, so distinct versions are batches.
        versions: Vec<Version>,
        elapsed: Duration,
        threads: ThreadGroups,
    }

    impl Stats {
        fn record(&mut self, window: &Window, begun: Instant, done: Instant, version: Version, retries: u64) {
            if done >= window.start && done < window.end {
                self.commits += 1;
                self.retries += retries;
                self.latencies_us.push(done.duration_since(begun).as_micros().min(u32::MAX as u128) as u32);
                self.versions.push(version);
            }
        }

        fn merge(&mut self, other: Stats) {
            self.commits += other.commits;
            self.retries += other.retries;
            self.errors += other.errors;
            self.latencies_us.extend(other.latencies_us);
            self.versions.extend(other.versions);
        }

        fn cps(&self) -> f64 {
            self.commits as f64 / self.elapsed.as_secs_f64()
        }

        fn percentile_ms(&self, p: f64) -> f64 {
            percentile_ms(&self.latencies_us, p)
        }

        fn batches(&self) -> usize {
            let mut v = self.versions.clone();
            v.sort_unstable();
            v.dedup();
            v.len()
        }

        fn commits_per_batch(&self) -> f64 {
            let batches = self.batches();
            if batches == 0 { 0.0 } else { self.commits as f64 / batches as f64 }
        }

        fn human(&self, label: &str) -> String {
            let batches = self.batches();
            format!(
                "{label}: {:>8.0} commits/s  p50 {:>7.2} ms  p99 {:>7.2} ms  {:>7.0} batches/s  {:>6.1} commits/batch  retries {}  errors {}",
                self.cps(),
                self.percentile_ms(0.50),
                self.percentile_ms(0.99),
                batches as f64 / self.elapsed.as_secs_f64(),
                self.commits_per_batch(),
                self.retries,
                self.errors,
            )
        }
    }

    fn percentile_ms(latencies_us: &[u32], p: f64) -> f64 {
        if latencies_us.is_empty() {
            return 0.0;
        }
        let mut v = latencies_us.to_vec();
        v.sort_unstable();
        let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[rank] as f64 / 1000.0
    }

    async fn gather(handles: Vec<tokio::task::JoinHandle<Stats>>, window: Window) -> Stats {
        let sampler = sample_threads(window);
        let mut total = Stats::default();
        for h in handles {
            total.merge(h.await.unwrap_or_else(|e| die(format!("a client task failed: {e}"))));
        }
        total.elapsed = window.end.duration_since(window.start);
        total.threads = sampler.join().unwrap_or_default();
        total
    }

    async fn blind(dir: &Path, clients: usize, args: &Args) -> Stats {
        let db = open_store(dir);
        let window = Window::after_warmup(args);
        let handles = (0..clients)
            .map(|c| tokio::spawn(blind_client(db.clone(), args.seed ^ (0xb1 << 32) ^ c as u64, window)))
            .collect();
        gather(handles, window).await
    }

    async fn blind_client(db: Database, seed: u64, window: Window) -> Stats {
        let mut rng = SmallRng::seed_from_u64(seed);
        let pool = value_pool(&mut rng);
        let mut stats = Stats::default();
        loop {
            let key = random_key(&mut rng);
            let value = random_value(&mut rng, &pool);
            let begun = Instant::now();
            let tx = db.create_transaction().unwrap_or_else(|e| die(format!("create_transaction: {e}")));
            tx.set(&key, value);
            match tx.commit().await {
                Ok(info) => stats.record(&window, begun, Instant::now(), info.version, 0),
                Err(e) => die(format!("a blind write failed: {e}")),
            }
            if Instant::now() >= window.end {
                return stats;
            }
        }
    }

    /// The read-modify-write key space, written with a few concurrent loaders.
    async fn preload(db: &Database, keys: &Arc<Vec<Key>>, seed: u64) {
        const PER_TXN: usize = 1000;
        const LOADERS: usize = 8;
        let chunks: Vec<usize> = (0..keys.len()).step_by(PER_TXN).collect();
        let chunks = Arc::new(chunks);
        let handles: Vec<_> = (0..LOADERS)
            .map(|l| {
                let (db, keys, chunks) = (db.clone(), keys.clone(), chunks.clone());
                tokio::spawn(async move {
                    let mut rng = SmallRng::seed_from_u64(seed ^ (0x10ad << 32) ^ l as u64);
                    let pool = value_pool(&mut rng);
                    for &first in chunks.iter().skip(l).step_by(LOADERS) {
                        let last = (first + PER_TXN).min(keys.len());
                        let tx = db.create_transaction().unwrap_or_else(|e| die(format!("create_transaction: {e}")));
                        for key in &keys[first..last] {
                            tx.set(key, random_value(&mut rng, &pool));
                        }
                        tx.commit().await.unwrap_or_else(|e| die(format!("preloading failed: {e}")));
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap_or_else(|e| die(format!("a preload task failed: {e}")));
        }
    }

    async fn rmw(dir: &Path, clients: usize, args: &Args) -> Stats {
        let db = open_store(dir);
        let mut rng = SmallRng::seed_from_u64(args.seed ^ (0x4e75 << 32));
        let keys: Arc<Vec<Key>> = Arc::new((0..args.keys).map(|_| random_key(&mut rng)).collect());
        let loading = Instant::now();
        preload(&db, &keys, args.seed).await;
        eprintln!("rmw10   c{clients:<3}: preloaded {} keys in {:.2} s", keys.len(), loading.elapsed().as_secs_f64());
        let window = Window::after_warmup(args);
        let handles = (0..clients)
            .map(|c| tokio::spawn(rmw_client(db.clone(), keys.clone(), args.seed ^ (0x4e3 << 32) ^ c as u64, window)))
            .collect();
        gather(handles, window).await
    }

    async fn rmw_client(db: Database, keys: Arc<Vec<Key>>, seed: u64, window: Window) -> Stats {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut stats = Stats::default();
        let keys: &[Key] = &keys;
        loop {
            // Ten distinct keys, in random order (as independent requests would come).
            let mut picked = [0usize; RMW_KEYS_PER_TXN];
            let mut n = 0;
            while n < RMW_KEYS_PER_TXN {
                let i = rng.random_range(0..keys.len());
                if !picked[..n].contains(&i) {
                    picked[n] = i;
                    n += 1;
                }
            }
            let mut attempts = 0u64;
            let attempts_ref = &mut attempts;
            let begun = Instant::now();
            let result = db
                .run_committed(move |tx, _| {
                    *attempts_ref += 1;
                    async move {
                        for &i in &picked {
                            let key = &keys[i];
                            let mut value = match tx.get(key).await? {
                                Some(v) => v.to_vec(),
                                None => die(format!("preloaded key {i} is missing")),
                            };
                            let count = u64::from_le_bytes(value[..8].try_into().expect("8 bytes")) + 1;
                            value[..8].copy_from_slice(&count.to_le_bytes());
                            tx.set(key, &value);
                        }
                        Ok::<(), Error>(())
                    }
                })
                .await;
            let done = Instant::now();
            match result {
                Ok(committed) => stats.record(&window, begun, done, committed.commit.version, attempts - 1),
                Err(e) => {
                    if done >= window.start && done < window.end {
                        stats.errors += 1;
                        stats.retries += attempts.saturating_sub(1);
                    }
                    if stats.errors == 1 {
                        eprintln!("stead-bench: a read-modify-write transaction failed after {attempts} attempts: {e}");
                    }
                }
            }
            if done >= window.end {
                return stats;
            }
        }
    }

    struct RawResult {
        records: u64,
        latencies_us: Vec<u32>,
        elapsed: Duration,
        threads: ThreadGroups,
    }

    /// fjall alone, opened with the store's settings (durable/fjall_layer: a manually
    /// persisted journal, default keyspace options), writing durable batches of 256.
    fn raw_fjall(dir: &Path, args: &Args) -> RawResult {
        let storage = |e: fjall::Error| -> ! { die(format!("fjall in {}: {e}", dir.display())) };
        let db = fjall::Database::builder(dir.join("fjall"))
            .manual_journal_persist(true)
            .open()
            .unwrap_or_else(|e| storage(e));
        let data = db.keyspace("data", fjall::KeyspaceCreateOptions::default).unwrap_or_else(|e| storage(e));
        let mut rng = SmallRng::seed_from_u64(args.seed ^ (0x4a3 << 32));
        let pool = value_pool(&mut rng);
        let window = Window::after_warmup(args);
        let sampler = sample_threads(window);
        let mut result =
            RawResult { records: 0, latencies_us: Vec::new(), elapsed: args.duration, threads: ThreadGroups::new() };
        loop {
            let begun = Instant::now();
            let mut batch = db.batch().durability(Some(fjall::PersistMode::SyncData));
            for _ in 0..RAW_BATCH {
                let key = random_key(&mut rng);
                batch.insert(&data, &key[..], random_value(&mut rng, &pool));
            }
            batch.commit().unwrap_or_else(|e| storage(e));
            let done = Instant::now();
            if done >= window.start && done < window.end {
                result.records += RAW_BATCH as u64;
                result.latencies_us.push(done.duration_since(begun).as_micros() as u32);
            }
            if done >= window.end {
                result.threads = sampler.join().unwrap_or_default();
                return result;
            }
        }
    }
}
