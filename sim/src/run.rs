//! One simulation run: start the cluster, run the workload with faults for the configured
//! time while the safety checkers look every few seconds, then end the faults and give the
//! cluster the quiet phase to reach the liveness conditions.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use stead_server::{Env, SeededEntropy, Store, SystemClock};
use stead_store::fault::FaultConfig;

use crate::checks::Checker;
use crate::cluster::{Cluster, server_name};
use crate::config::{Planted, Report, SimConfig};
use crate::faults::{self, FaultDriver};
use crate::mix;
use crate::workload::{Workload, WriteLog};

/// How often the safety checkers look.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// How long the clients get to register before the workload starts.
const WARM_UP: Duration = Duration::from_secs(5);

static RUNS: AtomicU64 = AtomicU64::new(0);

/// Switches the planted bug of `config` on (and every other off). The switch is
/// process-wide: every run in one process must plant the same bug (the runner's seeds
/// share one configuration; nextest runs each test in its own process).
fn plant(planted: Option<Planted>) {
    stead_store::model::planted::plant(planted);
}

fn live_servers(cluster: &Cluster) -> BTreeSet<String> {
    cluster
        .servers
        .iter()
        .enumerate()
        .filter(|(_, n)| n.up)
        .map(|(i, n)| server_name(i, n.generation.load(Ordering::Relaxed).saturating_sub(1)))
        .collect()
}

/// Runs `config` inside the current madsim runtime.
pub async fn run(config: SimConfig) -> Report {
    plant(config.planted);
    // The clients' state lives on the real disk, in a directory private to this process
    // and run; the cluster names it by a relative path (from the run directory as the
    // working directory), so the paths the clients report, and so the trace, do not
    // depend on the process ID. One run at a time per process.
    let dir = run_root().join(format!(
        "stead-sim-{}-{}-{}",
        std::process::id(),
        config.seed,
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::env::set_current_dir(&dir)) {
        panic!("cannot make and enter the run directory {}: {e}", dir.display());
    }
    let baseline = if config.faults { faults::baseline() } else { FaultConfig::default() };
    let mut cluster = Cluster::start(&config, PathBuf::from("state"), baseline);
    let start = tokio::time::Instant::now();
    let secs = || start.elapsed().as_secs();

    let env = Env {
        clock: std::sync::Arc::new(SystemClock),
        entropy: std::sync::Arc::new(SeededEntropy::new(mix(config.seed, 77))),
    };
    let log = WriteLog::default();
    let clients: BTreeSet<String> = cluster.clients.iter().map(|c| c.name.clone()).collect();
    let mut workload = Workload::new(
        Store::new(cluster.faulty.clone()),
        env,
        mix(config.seed, 5),
        clients.iter().cloned().collect(),
        log.clone(),
    );
    let mut checker = Checker::new(cluster.raw.clone(), log.clone(), clients);
    let mut driver = FaultDriver::new(mix(config.seed, 9));
    let mut pace = crate::Rng::new(mix(config.seed, 11));

    tokio::time::sleep(WARM_UP).await;
    // Three loops at once (in this one task, so their interleaving comes from the seed):
    // the workload, the faults (which end on time even while an operation hangs on a
    // store outage), and the safety checks.
    let until = config.duration;
    let workload_loop = async {
        while start.elapsed() < until {
            tokio::time::sleep(Duration::from_millis(200 + pace.below(1800))).await;
            workload.step().await;
        }
    };
    let fault_loop = async {
        if !config.faults {
            return;
        }
        let mut next_fault = WARM_UP + driver.next_gap();
        while start.elapsed() < until {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = start.elapsed();
            driver.end_due(&mut cluster, now.as_secs());
            if now >= next_fault {
                driver.inject(&mut cluster, now.as_secs());
                next_fault = now + driver.next_gap();
            }
            if driver.busy_crash_wanted() {
                driver.crash_busy_server(&mut cluster, Duration::from_secs(5), start).await;
            }
        }
    };
    let check_loop = async {
        while start.elapsed() < until {
            checker.safety(secs()).await;
            tokio::time::sleep(CHECK_EVERY).await;
        }
    };
    futures::join!(workload_loop, fault_loop, check_loop);

    // Quiet: every fault ends, every node is usable again; the cluster must converge.
    driver.calm(&mut cluster);
    workload.settle_nodes().await;
    // Each liveness check must hold at some look before the deadline (a restarting task
    // or a client's report in flight can make one flap; one that never holds is stuck).
    // A look counts only when every client's node is ready again: the other checks judge
    // ready nodes, and would pass for a node that is not back yet.
    let deadline = start.elapsed() + config.quiet;
    let mut unmet: BTreeSet<&'static str> = crate::checks::LIVENESS.into_iter().collect();
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        checker.safety(secs()).await;
        let found = checker.liveness(&live_servers(&cluster), secs()).await;
        let failing: BTreeSet<&'static str> = found.iter().map(|v| v.check).collect();
        if !failing.contains(crate::checks::NODE_NOT_READY) {
            unmet = unmet.intersection(&failing).copied().collect();
        }
        if unmet.is_empty() {
            break;
        }
        if start.elapsed() >= deadline {
            checker.keep(found.into_iter().filter(|v| unmet.contains(v.check)).collect());
            break;
        }
    }

    // For a reader chasing a violation: STEAD_SIM_DUMP=<job ID or allocation ID prefix>
    // prints those allocations and their task events at the end of the run.
    if let Ok(j) = std::env::var("STEAD_SIM_DUMP") {
        let allocs =
            stead_server::reads::list_allocations(&cluster.raw, "*", "").await.map(|r| r.value).unwrap_or_default();
        for a in allocs.iter().filter(|a| a.job_id.as_str() == j || a.id.as_str().starts_with(&j)) {
            eprintln!(
                "ALLOC {} {} node={} desired={} client={} desc={:?} create={} resched={:?} next={:?}",
                a.id,
                a.name,
                a.node_id,
                a.desired_status,
                a.client_status,
                a.client_description,
                a.create_index,
                a.reschedule_tracker,
                a.next_allocation
            );
            for (t, st) in &a.task_states {
                for e in &st.events {
                    eprintln!("    {t} {} {:?} {:?}", e.event_type, e.display_message, e.details);
                }
            }
        }
    }
    let allocations = allocation_count(&cluster.raw).await;
    let digest = digest(&cluster.raw, &log, &checker.violations).await;
    let report = Report {
        seed: config.seed,
        violations: checker.violations.clone(),
        checks: checker.checks,
        virtual_secs: start.elapsed().as_secs_f64(),
        ops_acked: workload.acked,
        ops_unknown: workload.unknown,
        faults: driver.injected,
        allocations,
        digest,
    };
    let _ = std::env::set_current_dir(run_root());
    let _ = std::fs::remove_dir_all(&dir);
    report
}

/// Where runs keep their directories: memory (`/dev/shm`) where there is one, since a
/// run makes thousands of allocation directories; else the temporary directory.
fn run_root() -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if std::fs::metadata(shm).is_ok_and(|m| m.is_dir() && !m.permissions().readonly()) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

async fn allocation_count(store: &Store) -> u64 {
    stead_server::reads::list_allocations(store, "*", "").await.map_or(0, |r| r.value.len() as u64)
}

/// The run's trace digest (see [`Report::digest`]). `DefaultHasher::new` has fixed keys,
/// so one binary gives one digest for one trace.
async fn digest(store: &Store, log: &WriteLog, violations: &[crate::config::Violation]) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    let range = stead_store::RangeOption::new(Vec::new(), vec![0xff]);
    match store.db.create_transaction() {
        Ok(tx) => match tx.get_range_all(&range, stead_store::ReadMode::Snapshot).await {
            Ok(kvs) => {
                kvs.len().hash(&mut h);
                for kv in kvs {
                    kv.key.hash(&mut h);
                    kv.value.hash(&mut h);
                }
            }
            Err(e) => format!("store read failed: {e}").hash(&mut h),
        },
        Err(e) => format!("store read failed: {e}").hash(&mut h),
    }
    for w in log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
        format!("{w:?}").hash(&mut h);
    }
    for v in violations {
        (v.check, &v.detail, v.at_secs).hash(&mut h);
    }
    h.finish()
}
