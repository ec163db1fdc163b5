//! `stead-sim`: runs seeds of the whole-cluster simulation (built with `--cfg madsim`;
//! `scripts/sim.sh` builds and runs it). One line per failing seed with the violated
//! check and the command that reproduces it; the last line is one JSON object.

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "stead-sim runs inside the madsim simulator: build it with RUSTFLAGS=\"--cfg madsim\" (scripts/sim.sh does)"
    );
    std::process::ExitCode::from(2)
}

#[cfg(madsim)]
fn main() -> std::process::ExitCode {
    match sim_main::main(std::env::args().skip(1).collect()) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("stead-sim: {e}\n\n{}", sim_main::USAGE);
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(madsim)]
mod sim_main {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use serde_json::Value;
    use stead_sim::config::{Planted, SimConfig};

    pub const USAGE: &str = "\
Usage: stead-sim [--seeds N] [--seed S] [--servers N] [--clients N] [--duration D] [--quiet D]
                 [--no-faults] [--plant BUG] [--determinism K] [--jobs J]

  Runs N seeds (default 1) from S (default 1) of a cluster of --servers (3) and --clients
  (20) for --duration of simulated time (10m) plus a quiet phase (--quiet, 5m); D is a Go
  duration (90s, 10m). Each seed runs in a process of its own. --determinism K runs the
  first K seeds a second time and checks that both runs end with the same trace digest
  and report. --jobs J runs J seeds' processes at once.
  --plant BUG switches a known bug on: commit-skips-node-reread, client-no-dedupe,
  lease-never-expires.
";

    struct Args {
        seeds: u64,
        config: SimConfig,
        determinism: u64,
        jobs: usize,
        /// Internal: run just this seed in this process and print its report.
        one: Option<u64>,
    }

    fn parse(args: Vec<String>) -> Result<Args, String> {
        let mut a = Args { seeds: 1, config: SimConfig::default(), determinism: 0, jobs: 1, one: None };
        let mut it = args.into_iter();
        let duration = |v: &str| -> Result<Duration, String> {
            let n: stead_store::model::Nanos = v.parse()?;
            n.to_std().ok_or_else(|| format!("{v}: a duration must not be negative"))
        };
        while let Some(flag) = it.next() {
            let flag = flag.trim_start_matches('-').to_owned();
            if flag == "no-faults" {
                a.config.faults = false;
                continue;
            }
            let value = it.next().ok_or_else(|| format!("--{flag} needs a value"))?;
            let number = |v: &str| v.parse::<u64>().map_err(|_| format!("--{flag} {v:?} is not a number"));
            match flag.as_str() {
                "seeds" => a.seeds = number(&value)?,
                "seed" => a.config.seed = number(&value)?,
                "servers" => a.config.servers = number(&value)? as usize,
                "clients" => a.config.clients = number(&value)? as usize,
                "duration" => a.config.duration = duration(&value)?,
                "quiet" => a.config.quiet = duration(&value)?,
                "determinism" => a.determinism = number(&value)?,
                "jobs" => a.jobs = number(&value)?.max(1) as usize,
                "plant" => {
                    a.config.planted =
                        Some(Planted::from_name(&value).ok_or_else(|| format!("--plant {value:?}: unknown bug"))?)
                }
                "run-one" => a.one = Some(number(&value)?),
                other => return Err(format!("unknown flag --{other}")),
            }
        }
        if a.config.servers == 0 || a.config.clients == 0 || a.config.servers > 200 || a.config.clients > 200 {
            return Err("--servers and --clients must be 1 to 200".to_owned());
        }
        if a.config.seed.checked_add(a.seeds).is_none() {
            return Err(format!(
                "--seed {} with --seeds {}: the seeds run past the largest seed",
                a.config.seed, a.seeds
            ));
        }
        Ok(a)
    }

    /// The flags that make a process run `config` (after `--seed` or `--run-one`).
    fn config_flags(config: &SimConfig) -> Vec<String> {
        let mut flags = vec![
            "--servers".to_owned(),
            config.servers.to_string(),
            "--clients".to_owned(),
            config.clients.to_string(),
            "--duration".to_owned(),
            go_duration(config.duration),
            "--quiet".to_owned(),
            go_duration(config.quiet),
        ];
        if !config.faults {
            flags.push("--no-faults".to_owned());
        }
        if let Some(p) = config.planted {
            flags.extend(["--plant".to_owned(), p.name().to_owned()]);
        }
        flags
    }

    /// `d` as a Go duration that parses back to exactly `d`.
    fn go_duration(d: Duration) -> String {
        if d.subsec_nanos() == 0 {
            format!("{}s", d.as_secs())
        } else if d.subsec_nanos() % 1_000_000 == 0 {
            format!("{}ms", d.as_millis())
        } else {
            format!("{}ns", d.as_nanos())
        }
    }

    fn repro(config: &SimConfig) -> String {
        format!("scripts/sim.sh --seed {} {}", config.seed, config_flags(config).join(" "))
    }

    /// Runs one seed in a process of its own and returns its report. A process per seed
    /// is what makes a seed reproducible: tokio seeds each thread's random source (which
    /// orders wake-ups of `sync::watch` waiters and unbiased `select!`s) from a
    /// process-wide counter, so a second run in one process is not the first run again.
    fn run_in_process(config: &SimConfig) -> Result<Value, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let mut child = std::process::Command::new(exe)
            .arg("--run-one")
            .arg(config.seed.to_string())
            .args(config_flags(config))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the seed's process: {e}"))?;
        // Read both pipes while waiting (a full pipe would stall the child), and end a
        // seed that takes longer than any seed should (a simulation whose time stopped).
        let (mut stdout_pipe, mut stderr_pipe) = (child.stdout.take(), child.stderr.take());
        let stdout_reader = std::thread::spawn(move || read_all(stdout_pipe.as_mut()));
        let stderr_reader = std::thread::spawn(move || read_all(stderr_pipe.as_mut()));
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if started.elapsed() > SEED_WALL_MAX => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!(
                        "the run took more than {} s of wall time and was killed",
                        SEED_WALL_MAX.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => break Err(format!("cannot wait for the seed's process: {e}")),
            }
        };
        let out = std::process::Output {
            status: status?,
            stdout: stdout_reader.join().unwrap_or_default(),
            stderr: stderr_reader.join().unwrap_or_default(),
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report = stdout.lines().last().and_then(|l| serde_json::from_str::<Value>(l).ok());
        match report {
            Some(r) if out.status.success() => Ok(r),
            _ => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                Err(format!("the run ended with {} and no report; its last output:\n{}", out.status, tail.join("\n")))
            }
        }
    }

    /// What one seed may take: far more than any seed needs (seconds), and far less than
    /// CI has.
    const SEED_WALL_MAX: Duration = Duration::from_secs(600);

    fn read_all(pipe: Option<&mut impl std::io::Read>) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        out
    }

    fn run_one(config: SimConfig) -> u8 {
        stead_sim::trace::install_from_env();
        let mut rt = madsim::runtime::Runtime::with_seed_and_config(config.seed, madsim::Config::default());
        // A run lasts its duration, its quiet phase and the operations still in flight;
        // past that madsim stops it (a livelock in simulated time).
        rt.set_time_limit(config.duration + config.quiet + Duration::from_secs(600));
        let report = rt.block_on(stead_sim::run::run(config));
        println!("{}", report.to_json());
        0
    }

    /// What one seed's process (or a second one, for the determinism check) found.
    struct Done {
        config: SimConfig,
        again: bool,
        result: Result<Value, String>,
    }

    pub fn main(args: Vec<String>) -> Result<u8, String> {
        let args = parse(args)?;
        if let Some(seed) = args.one {
            return Ok(run_one(SimConfig { seed, ..args.config }));
        }
        let wall = Instant::now();
        let mut work: Vec<(SimConfig, bool)> =
            (0..args.seeds).map(|k| (SimConfig { seed: args.config.seed + k, ..args.config.clone() }, false)).collect();
        // The determinism check runs the first seeds a second time, in other processes.
        work.extend(
            (0..args.determinism.min(args.seeds))
                .map(|k| (SimConfig { seed: args.config.seed + k, ..args.config.clone() }, true)),
        );
        let next = AtomicUsize::new(0);
        let done: Mutex<Vec<Done>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..args.jobs {
                scope.spawn(|| {
                    while let Some((config, again)) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let result = run_in_process(config);
                        if let (Ok(report), false) = (&result, again) {
                            for v in report["violations"].as_array().into_iter().flatten() {
                                println!(
                                    "seed {}: {}: {} (at {} s) — reproduce: {}",
                                    config.seed,
                                    v["check"].as_str().unwrap_or("?"),
                                    v["detail"].as_str().unwrap_or("?"),
                                    v["at_secs"],
                                    repro(config)
                                );
                            }
                        }
                        if let Err(e) = &result {
                            println!("seed {}: panic: {e} — reproduce: {}", config.seed, repro(config));
                        }
                        let done_one = Done { config: config.clone(), again: *again, result };
                        done.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(done_one);
                    }
                });
            }
        });
        let done = done.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        let first = |seed: u64| done.iter().find(|d| !d.again && d.config.seed == seed);
        let mut failed_seeds = std::collections::BTreeSet::new();
        for d in &done {
            match &d.result {
                Err(_) => {
                    failed_seeds.insert(d.config.seed);
                }
                Ok(r) if !d.again && r["violations"].as_array().is_some_and(|v| !v.is_empty()) => {
                    failed_seeds.insert(d.config.seed);
                }
                Ok(again) if d.again => {
                    if let Some(Ok(before)) = first(d.config.seed).map(|f| &f.result)
                        && before != again
                    {
                        failed_seeds.insert(d.config.seed);
                        println!(
                            "seed {}: determinism: two runs of the seed ended differently ({} then {}) — reproduce: {} --determinism 1",
                            d.config.seed,
                            before,
                            again,
                            repro(&d.config)
                        );
                    }
                }
                Ok(_) => {}
            }
        }
        let reports: Vec<&Value> = done.iter().filter(|d| !d.again).filter_map(|d| d.result.as_ref().ok()).collect();
        let sum = |field: &str| reports.iter().map(|r| r[field].as_u64().unwrap_or(0)).sum::<u64>();
        let virtual_secs: f64 =
            done.iter().filter_map(|d| d.result.as_ref().ok()).map(|r| r["virtual_secs"].as_f64().unwrap_or(0.0)).sum();
        let wall_secs = wall.elapsed().as_secs_f64();
        let summary = serde_json::json!({
            "seeds": args.seeds,
            "failures": failed_seeds.len(),
            "checks": sum("checks"),
            "virtual_secs_per_wall_sec": (virtual_secs / wall_secs.max(1e-9) * 10.0).round() / 10.0,
            "wall_secs": (wall_secs * 10.0).round() / 10.0,
            "determinism_checked": args.determinism.min(args.seeds),
            "jobs": args.jobs,
            "ops_acked": sum("ops_acked"),
            "ops_unknown": sum("ops_unknown"),
            "faults": sum("faults"),
            "allocations": sum("allocations"),
            "servers": args.config.servers,
            "clients": args.config.clients,
            "duration_secs": args.config.duration.as_secs(),
        });
        println!("{summary}");
        Ok(if failed_seeds.is_empty() { 0 } else { 1 })
    }
}
