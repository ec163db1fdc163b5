//! Scheduler workers end to end on the embedded store: jobs registered through the write
//! path are placed, scaled, stopped, blocked and unblocked by real workers.

mod common;

use std::collections::BTreeSet;

use common::*;
use stead_server::env::Env;
use stead_server::worker::EvalOutcome;
use stead_server::{jobs, nodes};
use stead_store::model::{EvalStatus, JobType};
use stead_testkit::fixtures;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_job_is_placed_to_its_count_and_usage_matches_the_allocations() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 10, 4000, 8192).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(2));
    let reg = jobs::register(&store, &env, fixtures::job("web", JobType::Service, 25, 100, 128), None).await.unwrap();
    let reports = wait_until(&mut rx, |r| !r.is_empty()).await;
    assert_eq!(reports[0].outcome, EvalOutcome::Complete);
    assert_eq!(reports[0].placed, 25);
    let live = live_allocs(&store, "web").await;
    assert_eq!(live.len(), 25);
    let names: BTreeSet<_> = live.iter().map(|a| a.name.clone()).collect();
    assert_eq!(names, (0..25).map(|i| format!("web.g[{i}]")).collect());
    assert_eq!(check_usage(&store).await, 25);
    let e = eval(&store, reg.eval_id.unwrap().as_str()).await;
    assert_eq!(e.status, EvalStatus::Complete);
    assert!(e.failed_tg_allocs.is_empty());
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_down_and_stopping_free_usage() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 4, 4000, 8192).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(2));
    jobs::register(&store, &env, fixtures::job("web", JobType::Service, 12, 100, 128), None).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    jobs::register(&store, &env, fixtures::job("web", JobType::Service, 5, 100, 128), None).await.unwrap();
    let r = wait_until(&mut rx, |r| r.len() == 1).await;
    assert_eq!(r[0].stopped, 7);
    let live = live_allocs(&store, "web").await;
    let names: BTreeSet<_> = live.iter().map(|a| a.name.clone()).collect();
    assert_eq!(names, (0..5).map(|i| format!("web.g[{i}]")).collect(), "the highest indexes go first");
    assert_eq!(check_usage(&store).await, 5);
    jobs::stop(&store, &env, "default", "web", false).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    assert!(live_allocs(&store, "web").await.is_empty());
    assert_eq!(check_usage(&store).await, 0);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_larger_than_the_cluster_blocks_and_is_placed_when_a_node_joins() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 2, 1000, 4096).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(2));
    // 500 MHz each: two fit per node, six are asked.
    let reg = jobs::register(&store, &env, fixtures::job("big", JobType::Service, 6, 500, 128), None).await.unwrap();
    let r = wait_until(&mut rx, |r| !r.is_empty()).await;
    assert_eq!(r[0].outcome, EvalOutcome::Blocked);
    assert_eq!(r[0].placed, 4);
    let first = eval(&store, reg.eval_id.unwrap().as_str()).await;
    assert_eq!(first.queued_allocations["g"], 2);
    let metric = &first.failed_tg_allocs["g"];
    assert_eq!(metric.nodes_exhausted, 2, "{metric:?}");
    assert_eq!(metric.dimension_exhausted.get("cpu"), Some(&2));
    assert_eq!(metric.coalesced_failures, 1);
    let blocked = eval(&store, first.blocked_eval.as_str()).await;
    assert_eq!(blocked.status, EvalStatus::Blocked);

    nodes::upsert(&store, &env, &fixtures::node("late", "dc1", 1000, 4096)).await.unwrap();
    let r = wait_until(&mut rx, |r| r.iter().any(|r| r.placed > 0)).await;
    assert!(r.iter().all(|r| r.outcome == EvalOutcome::Complete), "{r:#?}");
    assert_eq!(live_allocs(&store, "big").await.len(), 6);
    assert_eq!(check_usage(&store).await, 6);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_cut_into_many_transactions_commits_whole() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 30, 4000, 8192).await;
    let mut config = fast_config(1);
    config.commit.chunk_nodes_max = 2;
    let (workers, mut rx) = start_workers(&store, &env, config);
    jobs::register(&store, &env, fixtures::job("wide", JobType::Service, 60, 100, 64), None).await.unwrap();
    let r = wait_until(&mut rx, |r| !r.is_empty()).await;
    assert_eq!((r[0].outcome.clone(), r[0].placed), (EvalOutcome::Complete, 60));
    assert_eq!(check_usage(&store).await, 60);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_of_one_job_are_coalesced_into_one() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 3, 4000, 8192).await;
    for count in 1..=5 {
        jobs::register(&store, &env, fixtures::job("web", JobType::Service, count, 100, 64), None).await.unwrap();
    }
    let (workers, mut rx) = start_workers(&store, &env, fast_config(2));
    let r = wait_until(&mut rx, |r| !r.is_empty()).await;
    assert_eq!(r[0].placed, 5, "one evaluation placed the latest version's count");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(rx.try_recv().is_err(), "no other evaluation ran");
    let counts = stead_server::queue::counts(&store, 100).await.unwrap();
    assert_eq!(counts, Default::default());
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_jobs_run_on_every_feasible_node_including_new_ones() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 5, 4000, 8192).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(2));
    jobs::register(&store, &env, fixtures::job("agent", JobType::System, 1, 100, 64), None).await.unwrap();
    wait_until(&mut rx, |r| !r.is_empty()).await;
    assert_eq!(live_allocs(&store, "agent").await.len(), 5);
    nodes::upsert(&store, &env, &fixtures::node("new", "dc1", 4000, 8192)).await.unwrap();
    wait_until(&mut rx, |r| r.iter().any(|r| r.placed == 1)).await;
    let live = live_allocs(&store, "agent").await;
    assert_eq!(live.len(), 6);
    assert!(live.iter().any(|a| a.node_id.as_str() == "new"));
    assert_eq!(check_usage(&store).await, 6);
    workers.shutdown().await;
}
