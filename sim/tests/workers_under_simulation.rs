//! The scheduler workers inside madsim: two server processes' workers over one embedded
//! store behind the fault wrapper, in simulated time, with randomness from the seed.
//! Proves the workers run in the simulator, keep the usage invariant and place every job
//! under store faults, and that a seed reproduces the same placements.
#![cfg(madsim)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stead_server::env::{Env, SeededEntropy, SystemClock};
use stead_server::metrics::SchedMetrics;
use stead_server::queue::{self, QueueConfig};
use stead_server::snapshot::read_all_usage;
use stead_server::worker::{self, WorkerConfig};
use stead_server::{Store, jobs, nodes};
use stead_store::ReadMode;
use stead_store::fault::{self, FaultConfig};
use stead_store::model::{Allocation, JobType};
use stead_store::schema::{PageOptions, Tuple};
use stead_testkit::fixtures;

/// Runs the workload; returns every allocation as (name, node, ID), sorted.
async fn schedule_under_faults() -> Vec<(String, String, String)> {
    let seed = madsim::runtime::Handle::current().seed();
    let env = Env { clock: Arc::new(SystemClock), entropy: Arc::new(SeededEntropy::new(seed)) };
    let db = stead_store::embedded::open_in_memory();
    let setup = Store::new(db.clone());
    for i in 0..6 {
        nodes::upsert(&setup, &env, &fixtures::node(&format!("n{i}"), "dc1", 4000, 8192)).await.unwrap();
    }
    let config =
        FaultConfig { latency_rate: 0.5, latency_max: Duration::from_millis(20), ..FaultConfig::retryable(0.08) };
    let (faulty, faults) = fault::wrap(db.clone(), config, seed);
    let mut processes = Vec::new();
    for p in 0..2 {
        let config = WorkerConfig {
            workers: 2,
            name: format!("p{p}"),
            cluster_seed: seed,
            queue: QueueConfig { lease_ttl: Duration::from_secs(10), ..QueueConfig::default() },
            ..WorkerConfig::default()
        };
        processes.push(worker::start(
            Store::new(faulty.clone()),
            env.clone(),
            config,
            SchedMetrics::unregistered(),
            None,
        ));
    }
    for (i, count) in [5, 8, 3, 12].into_iter().enumerate() {
        let kind = if i % 2 == 0 { JobType::Service } else { JobType::Batch };
        jobs::register(&setup, &env, fixtures::job(&format!("job{i}"), kind, count, 300, 256), None).await.unwrap();
    }
    let mut quiet = 0;
    for _ in 0..10_000 {
        let c = queue::counts(&setup, 1000).await.unwrap();
        quiet = if c.ready == 0 && c.leased == 0 && c.delayed == 0 { quiet + 1 } else { 0 };
        if quiet >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(quiet >= 5, "the queue drained in simulated time");
    for p in processes {
        p.shutdown().await;
    }
    assert!(faults.counts().not_committed + faults.counts().unknown_applied > 0, "faults were injected");

    let tx = setup.db.create_transaction().unwrap();
    let page = PageOptions::default().read_mode(ReadMode::Snapshot);
    let allocs = setup.ks.list::<Allocation>(&tx, &Tuple::empty(), &page).await.unwrap().items;
    let mut per_node: BTreeMap<String, (i64, u64)> = BTreeMap::new();
    for a in allocs.iter().filter(|a| !a.is_terminal()) {
        let e = per_node.entry(a.node_id.to_string()).or_default();
        e.0 += stead_sched::plan::stored_alloc_usage(a).cpu_mhz;
        e.1 += 1;
    }
    for u in read_all_usage(&setup, 1000).await.unwrap() {
        let (cpu, count) = per_node.remove(u.node_id.as_str()).unwrap_or_default();
        assert_eq!((u.used.cpu_mhz, u.allocs), (cpu, count), "usage of {} matches its allocations", u.node_id);
        assert!(u.used.cpu_mhz <= u.capacity.cpu_mhz, "{} not over-committed", u.node_id);
    }
    let live = allocs.iter().filter(|a| !a.is_terminal()).count();
    assert_eq!(live, 5 + 8 + 3 + 12, "every job placed to its count");
    let mut out: Vec<_> = allocs.iter().map(|a| (a.name.clone(), a.node_id.to_string(), a.id.to_string())).collect();
    out.sort();
    out
}

#[madsim::test]
async fn workers_place_every_job_under_store_faults_in_simulated_time() {
    schedule_under_faults().await;
}

/// A seed's placements, computed in a process of its own (this test binary running
/// [`placements_of_one_seed`]): tokio seeds each thread's random source (which orders the
/// wake-ups of `watch` waiters) from a process-wide counter, so two runs in one process
/// are not the same run, and madsim's in-process `check_determinism` cannot tell.
fn placements_in_a_process(seed: u64) -> String {
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "placements_of_one_seed", "--ignored", "--nocapture"])
        .env("STEAD_PLACEMENTS_SEED", seed.to_string())
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().find_map(|l| l.strip_prefix("PLACEMENTS ")).expect("the placements line").to_owned()
}

#[test]
fn the_same_seed_gives_the_same_placements() {
    let first = placements_in_a_process(23);
    assert_eq!(first, placements_in_a_process(23), "one seed, two processes");
    assert_ne!(first, placements_in_a_process(24), "another seed places otherwise");
}

/// The child of [`the_same_seed_gives_the_same_placements`] (ignored in a normal run).
#[test]
#[ignore = "run by the_same_seed_gives_the_same_placements in a process of its own"]
fn placements_of_one_seed() {
    let seed = std::env::var("STEAD_PLACEMENTS_SEED").ok().and_then(|s| s.parse().ok()).expect("STEAD_PLACEMENTS_SEED");
    let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    let placements = rt.block_on(schedule_under_faults());
    println!("PLACEMENTS {placements:?}");
}
