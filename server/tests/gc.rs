//! Garbage collection with Nomad's thresholds: what is old and done goes, what is recent
//! or live stays.

mod common;

use std::time::Duration;

use futures::StreamExt;

use common::*;
use stead_server::duties::{self, gc};
use stead_server::env::Env;
use stead_server::{ServerError, clients, jobs, reads};
use stead_store::model::JobType;
use stead_testkit::fixtures;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_job_is_collected_with_its_evaluations_and_allocations_after_four_hours() {
    let store = store();
    let (env, clock) = Env::manual(1_800_000_000_000_000_000, 4);
    add_nodes(&store, &env, 1, 4000, 8192).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(1));
    jobs::register(&store, &env, fixtures::job("old", JobType::Service, 2, 100, 128), None).await.unwrap();
    jobs::register(&store, &env, fixtures::job("keep", JobType::Service, 1, 100, 128), None).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 2).await;
    jobs::stop(&store, &env, "default", "old", false).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    workers.shutdown().await;
    let held = duties::acquire(&store, &env, "gc", "t", Duration::from_secs(1_000_000)).await.unwrap().unwrap();
    let node = only_node_id(&store).await;
    let mut watch = Box::pin(clients::watch_node_allocations(store.clone(), node, String::new(), 0, true));
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!((first.full, first.allocs.len()), (true, 3), "two stopped, one live");
    let old_ids: Vec<String> =
        first.allocs.iter().filter(|a| a.job_id.as_str() == "old").map(|a| a.id.to_string()).collect();

    clock.advance(Duration::from_secs(30 * 60));
    let early = gc::collect(&store, &env, &gc::GcConfig::default(), &held).await.unwrap();
    assert_eq!(early, gc::Collected::default(), "nothing is old enough after 30 minutes");

    clock.advance(Duration::from_secs(4 * 3600));
    let done = gc::collect(&store, &env, &gc::GcConfig::default(), &held).await.unwrap();
    assert_eq!(done.jobs, 1, "{done:?}");
    assert!(matches!(reads::job(&store, "default", "old").await.unwrap_err(), ServerError::NotFound(_)));
    assert!(allocs_of(&store, "old").await.is_empty());
    let keep = reads::job(&store, "default", "keep").await.unwrap().value;
    assert!(!keep.stop);
    assert_eq!(live_allocs(&store, "keep").await.len(), 1, "live work is never collected");
    let evals = reads::job_evaluations(&store, "default", "keep").await.unwrap().value;
    assert_eq!(evals.len(), 1, "an old evaluation whose allocation still runs is kept");
    // The node's watch says which allocations went, and sends nothing else again.
    let gone = tokio::time::timeout(Duration::from_secs(30), watch.next()).await.unwrap().unwrap().unwrap();
    let mut removed = gone.removed.clone();
    removed.sort();
    let mut want = old_ids;
    want.sort();
    assert_eq!((gone.full, gone.allocs.len(), removed), (false, 0, want));
}

/// The one node's ID (`add_nodes` registers it without a secret).
async fn only_node_id(store: &stead_server::Store) -> String {
    let nodes = reads::list_nodes(store, "").await.unwrap().value;
    nodes[0].id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_is_kept_while_one_of_its_allocations_is_live() {
    let store = store();
    let (env, clock) = Env::manual(1_800_000_000_000_000_000, 5);
    add_nodes(&store, &env, 1, 4000, 8192).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(1));
    let reg = jobs::register(&store, &env, fixtures::job("web", JobType::Service, 1, 100, 128), None).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    workers.shutdown().await;
    let held = duties::acquire(&store, &env, "gc", "t", Duration::from_secs(1_000_000)).await.unwrap().unwrap();
    clock.advance(Duration::from_secs(2 * 3600));
    let done = gc::collect(&store, &env, &gc::GcConfig::default(), &held).await.unwrap();
    assert_eq!(done.evals, 0);
    let eval = reads::evaluation(&store, "default", reg.eval_id.unwrap().as_str()).await.unwrap().value;
    assert_eq!(eval.job_id.as_str(), "web");
}

#[tokio::test]
async fn only_the_newest_six_versions_are_kept_and_a_version_a_live_allocation_runs() {
    let (store, env) = (store(), Env::system());
    for count in 1..=9 {
        jobs::register(&store, &env, fixtures::job("web", JobType::Service, count, 100, 128), None).await.unwrap();
    }
    let held = duties::acquire(&store, &env, "gc", "t", Duration::from_secs(600)).await.unwrap().unwrap();
    let done = gc::collect(&store, &env, &gc::GcConfig::default(), &held).await.unwrap();
    assert_eq!(done.versions, 3);
    let (versions, _) = reads::job_versions(&store, "default", "web", false).await.unwrap().value;
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![8, 7, 6, 5, 4, 3]);
}

#[tokio::test]
async fn a_node_down_for_a_day_is_collected_and_a_forced_collection_ignores_the_thresholds() {
    let store = store();
    let (env, clock) = Env::manual(1_800_000_000_000_000_000, 6);
    let config = clients::HeartbeatConfig { failover_ttl: Duration::ZERO, ..Default::default() };
    let mut node = fixtures::node("n1", "dc1", 4000, 8192);
    node.secret_id = "s".to_owned();
    clients::register(&store, &env, &config, node).await.unwrap();
    clock.advance(Duration::from_secs(60));
    let hb = duties::acquire(&store, &env, "heartbeat", "t", Duration::from_secs(1_000_000)).await.unwrap().unwrap();
    duties::heartbeat::expire(&store, &env, &config, &hb).await.unwrap();
    let held = duties::acquire(&store, &env, "gc", "t", Duration::from_secs(1_000_000)).await.unwrap().unwrap();
    clock.advance(Duration::from_secs(3600));
    assert_eq!(gc::collect(&store, &env, &gc::GcConfig::default(), &held).await.unwrap().nodes, 0);
    assert_eq!(gc::collect(&store, &env, &gc::GcConfig::default().forced(), &held).await.unwrap().nodes, 1);
    assert!(matches!(reads::node(&store, "n1").await.unwrap_err(), ServerError::NotFound(_)));
}
