//! Shared helpers of the server's integration tests (a folder, so cargo does not build it
//! as a test target of its own).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use stead_server::Store;
use stead_server::env::Env;
use stead_server::metrics::SchedMetrics;
use stead_server::snapshot::read_all_usage;
use stead_server::worker::{self, EvalReport, WorkerConfig, Workers};
use stead_store::model::{Allocation, Evaluation, Node};
use stead_store::records::{self, keys as record_keys};
use stead_store::schema::{PageOptions, Tuple};
use stead_store::{Database, ReadMode};
use tokio::sync::mpsc;

pub fn store() -> Store {
    Store::new(stead_store::embedded::open_in_memory())
}

pub fn store_on(db: Database) -> Store {
    Store::new(db)
}

pub async fn add_nodes(store: &Store, env: &Env, count: usize, cpu: i64, mem: i64) -> Vec<Node> {
    let mut nodes = Vec::new();
    for i in 0..count {
        let node = stead_testkit::fixtures::node(&format!("n{i:04}"), "dc1", cpu, mem);
        stead_server::nodes::upsert(store, env, &node).await.expect("node upsert");
        nodes.push(node);
    }
    nodes
}

/// Workers with a report channel.
pub fn start_workers(store: &Store, env: &Env, config: WorkerConfig) -> (Workers, mpsc::UnboundedReceiver<EvalReport>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let workers = worker::start(store.clone(), env.clone(), config, SchedMetrics::unregistered(), Some(tx));
    (workers, rx)
}

pub fn fast_config(workers: usize) -> WorkerConfig {
    WorkerConfig {
        workers,
        idle_wait_max: Duration::from_millis(50),
        maintenance_interval: Duration::from_millis(20),
        ..WorkerConfig::default()
    }
}

/// Waits for reports until `done` says enough were seen (at most 60 s).
pub async fn wait_until(
    rx: &mut mpsc::UnboundedReceiver<EvalReport>,
    mut done: impl FnMut(&[EvalReport]) -> bool,
) -> Vec<EvalReport> {
    let mut seen = Vec::new();
    let deadline = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(deadline);
    while !done(&seen) {
        tokio::select! {
            r = rx.recv() => seen.push(r.expect("workers report")),
            _ = &mut deadline => panic!("timed out waiting for evaluations; seen {seen:#?}"),
        }
    }
    seen
}

pub async fn allocs_of(store: &Store, job: &str) -> Vec<Allocation> {
    let tx = store.db.create_transaction().unwrap();
    records::allocs_by_job(&store.ks, &tx, "default", job, &PageOptions::default().read_mode(ReadMode::Snapshot))
        .await
        .unwrap()
        .items
}

pub async fn live_allocs(store: &Store, job: &str) -> Vec<Allocation> {
    allocs_of(store, job).await.into_iter().filter(|a| !a.is_terminal()).collect()
}

pub async fn eval(store: &Store, id: &str) -> Evaluation {
    let tx = store.db.create_transaction().unwrap();
    store.ks.get::<Evaluation>(&tx, &record_keys::eval("default", id), ReadMode::Snapshot).await.unwrap().unwrap()
}

/// Every node's usage record equals the sum of its non-terminal allocations and stays
/// within its capacity; returns the number of live allocations.
pub async fn check_usage(store: &Store) -> usize {
    let tx = store.db.create_transaction().unwrap();
    let page = PageOptions::default().read_mode(ReadMode::Snapshot);
    let allocs = store.ks.list::<Allocation>(&tx, &Tuple::empty(), &page).await.unwrap().items;
    let mut sums: BTreeMap<String, (i64, i64, u64)> = BTreeMap::new();
    for a in allocs.iter().filter(|a| !a.is_terminal()) {
        let u = stead_sched::plan::stored_alloc_usage(a);
        let e = sums.entry(a.node_id.to_string()).or_default();
        e.0 += u.cpu_mhz;
        e.1 += u.memory_mb;
        e.2 += 1;
    }
    for usage in read_all_usage(store, 1_000_000).await.unwrap() {
        let want = sums.remove(usage.node_id.as_str()).unwrap_or_default();
        assert_eq!((usage.used.cpu_mhz, usage.used.memory_mb, usage.allocs), want, "usage of {}", usage.node_id);
        assert!(usage.used.cpu_mhz <= usage.capacity.cpu_mhz, "node {} over-committed on cpu", usage.node_id);
        assert!(usage.used.memory_mb <= usage.capacity.memory_mb, "node {} over-committed on memory", usage.node_id);
    }
    assert!(sums.is_empty(), "allocations on nodes without usage records: {sums:?}");
    allocs.iter().filter(|a| !a.is_terminal()).count()
}
