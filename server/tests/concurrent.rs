//! Several processes of real workers against one embedded store behind the fault wrapper
//! (conflicts, commit_unknown_result applied and not, transaction_too_old, latency): no
//! node is ever over-committed, usage records match the allocations, no two live
//! allocations of a job share a name, and every job that fits is placed to its count.
//!
//! Real threads and time: under madsim the same workers run in `stead-sim`'s tests.

#![cfg(not(madsim))]

mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use stead_server::env::Env;
use stead_server::queue::{self, QueueConfig};
use stead_server::worker::{self, WorkerConfig};
use stead_server::{Store, jobs};
use stead_store::fault::{FaultConfig, wrap};
use stead_store::model::JobType;
use stead_testkit::fixtures;

const NODE_CPU: i64 = 4000;
const NODE_MEM: i64 = 8192;

/// Waits until nothing is ready, delayed or leased for a few looks in a row.
async fn quiesce(store: &Store, reports: &mut tokio::sync::mpsc::UnboundedReceiver<stead_server::worker::EvalReport>) {
    let mut quiet = 0;
    for _ in 0..1500 {
        let c = queue::counts(store, 1000).await.expect("queue counts");
        quiet = if c.ready == 0 && c.leased == 0 && c.delayed == 0 { quiet + 1 } else { 0 };
        if quiet >= 5 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut errors = Vec::new();
    while let Ok(r) = reports.try_recv() {
        errors.push(format!(
            "{} {} {:?} attempts {} placed {} in {:?}",
            r.eval_id, r.worker, r.outcome, r.attempts, r.placed, r.duration
        ));
    }
    let tx = store.db.create_transaction().unwrap();
    let evals = store
        .ks
        .list::<stead_store::model::Evaluation>(&tx, &stead_store::schema::Tuple::empty(), &Default::default())
        .await
        .unwrap();
    for e in evals.items {
        errors
            .push(format!("eval {} {} {} {:?} {}", e.id, e.triggered_by, e.status, e.wait_until, e.status_description));
    }
    panic!("the queue did not drain in 30 s: {:?}; worker errors: {errors:#?}", queue::counts(store, 1000).await);
}

fn run_case(
    seed: u64,
    nodes: usize,
    jobs_spec: Vec<(i32, i32, i32, bool)>,
    fault_rate: f64,
) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let inner = stead_store::embedded::open_in_memory();
        let (faulty, faults) = wrap(inner.clone(), FaultConfig::retryable(fault_rate), seed);
        let setup = Store::new(inner);
        let env = Env::system();
        add_nodes(&setup, &env, nodes, NODE_CPU, NODE_MEM).await;
        let mut processes = Vec::new();
        let (reports_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
        for p in 0..3 {
            let config = WorkerConfig {
                workers: 2,
                name: format!("p{p}"),
                cluster_seed: seed,
                queue: QueueConfig { lease_ttl: Duration::from_secs(5), ..QueueConfig::default() },
                idle_wait_max: Duration::from_millis(20),
                maintenance_interval: Duration::from_millis(10),
                ..WorkerConfig::default()
            };
            processes.push(worker::start(
                Store::new(faulty.clone()),
                env.clone(),
                config,
                stead_server::metrics::SchedMetrics::unregistered(),
                Some(reports_tx.clone()),
            ));
        }
        for (i, (count, cpu, mem, batch)) in jobs_spec.iter().enumerate() {
            let kind = if *batch { JobType::Batch } else { JobType::Service };
            let job = fixtures::job(&format!("job{i}"), kind, *count, *cpu, *mem);
            jobs::register(&setup, &env, job, None).await.expect("register");
        }
        quiesce(&setup, &mut reports).await;
        for p in processes {
            p.shutdown().await;
        }

        check_usage(&setup).await;
        let (mut cpu_demand, mut mem_demand) = (0i64, 0i64);
        for (count, cpu, mem, _) in &jobs_spec {
            cpu_demand += i64::from(*count) * i64::from(*cpu);
            mem_demand += i64::from(*count) * i64::from(*mem);
        }
        // Placeable for sure: half the cluster at most, and every ask fits an empty node.
        let feasible = cpu_demand * 2 <= NODE_CPU * nodes as i64 && mem_demand * 2 <= NODE_MEM * nodes as i64;
        for (i, (count, ..)) in jobs_spec.iter().enumerate() {
            let live = live_allocs(&setup, &format!("job{i}")).await;
            let mut names: Vec<&str> = live.iter().map(|a| a.name.as_str()).collect();
            names.sort();
            let total = names.len();
            names.dedup();
            prop_assert_eq!(names.len(), total, "job{} has two live allocations with one name", i);
            prop_assert!(total <= *count as usize, "job{} runs {} of {}", i, total, count);
            if feasible {
                prop_assert_eq!(
                    total,
                    *count as usize,
                    "job{} placed {} of {} on a cluster with room",
                    i,
                    total,
                    count
                );
            }
        }
        if fault_rate >= 0.05 {
            let c = faults.counts();
            prop_assert!(
                c.not_committed + c.unknown_applied + c.unknown_unapplied > 0,
                "faults were injected: {:?}",
                c
            );
        }
        Ok(())
    })
}

#[test]
fn regression_delivery_limit_under_faults() {
    let jobs = vec![(7, 533, 397, false), (10, 679, 70, false)];
    run_case(12832357391545543927, 5, jobs, 0.06933890818626287).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_workers_under_store_faults_never_over_commit_and_place_what_fits(
        seed in any::<u64>(),
        nodes in 2usize..8,
        jobs_spec in prop::collection::vec((1i32..15, 100i32..1200, 64i32..1024, any::<bool>()), 1..6),
        fault_rate in prop_oneof![Just(0.0), 0.02f64..0.15],
    ) {
        run_case(seed, nodes, jobs_spec, fault_rate)?;
    }
}
