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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_job_is_placed_when_another_jobs_allocations_finish() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 1, 1000, 4096).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(2));
    jobs::register(&store, &env, fixtures::job("first", JobType::Batch, 2, 500, 128), None).await.unwrap();
    wait_until(&mut rx, |r| !r.is_empty()).await;
    jobs::register(&store, &env, fixtures::job("second", JobType::Batch, 1, 500, 128), None).await.unwrap();
    let r = wait_until(&mut rx, |r| !r.is_empty()).await;
    assert_eq!(r[0].outcome, EvalOutcome::Blocked);
    // The client reports the first job's allocations complete: usage is freed, capacity
    // signalled, the blocked evaluation runs again.
    let mut done = live_allocs(&store, "first").await;
    for a in &mut done {
        a.client_status = stead_store::model::AllocClientStatus::Complete;
    }
    assert_eq!(stead_server::allocs::update_from_client(&store, &env, None, &done).await.unwrap(), 2);
    let r = wait_until(&mut rx, |r| r.iter().any(|r| r.placed == 1)).await;
    assert!(r.iter().any(|r| r.outcome == EvalOutcome::Complete), "{r:#?}");
    assert_eq!(live_allocs(&store, "second").await.len(), 1);
    assert_eq!(check_usage(&store).await, 1);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_update_reporting_a_finished_allocation_running_is_skipped_and_usage_stays_true() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 1, 1000, 4096).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(1));
    jobs::register(&store, &env, fixtures::job("once", JobType::Batch, 2, 300, 128), None).await.unwrap();
    wait_until(&mut rx, |r| !r.is_empty()).await;
    let live = live_allocs(&store, "once").await;
    let mut done = live.clone();
    for a in &mut done {
        a.client_status = stead_store::model::AllocClientStatus::Complete;
    }
    assert_eq!(stead_server::allocs::update_from_client(&store, &env, None, &done).await.unwrap(), 2);
    assert_eq!(check_usage(&store).await, 0);
    // The same allocations reported running again (a re-sent or reordered update): skipped,
    // so they stay complete and the node's usage stays the sum of what is live.
    let mut stale = live;
    for a in &mut stale {
        a.client_status = stead_store::model::AllocClientStatus::Running;
    }
    assert_eq!(stead_server::allocs::update_from_client(&store, &env, None, &stale).await.unwrap(), 0);
    assert!(live_allocs(&store, "once").await.is_empty());
    assert_eq!(check_usage(&store).await, 0);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_at_once_job_commits_its_plan_whole_and_queues_what_found_no_node() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 2, 1000, 4096).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(1));
    let mut gang = fixtures::job("gang", JobType::Batch, 5, 400, 128);
    gang.all_at_once = true;
    jobs::register(&store, &env, gang, None).await.unwrap();
    let r = wait_until(&mut rx, |r| !r.is_empty()).await;
    // Four of five fit: the scheduler reports the fifth; the plan holds four placements,
    // which commit. As in Nomad, all-at-once concerns the commit (every placement of the
    // plan or none, never a partial commit), not the count.
    assert_eq!(r[0].outcome, EvalOutcome::Blocked);
    assert_eq!(live_allocs(&store, "gang").await.len(), 4);
    assert_eq!(check_usage(&store).await, 4);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_shows_what_a_register_would_do_and_commits_nothing() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 2, 1000, 4096).await;
    let mut cache = stead_server::snapshot::ClusterCache::new();
    let config = stead_sched::SchedConfig::default();
    let web = fixtures::job("web", JobType::Service, 3, 400, 128);
    let dry = stead_server::dry_run::dry_run(&store, &mut cache, &env, &config, 1, &web).await.unwrap();
    assert_eq!(dry.job_modify_index, 0);
    assert!(dry.stored.is_none());
    assert_eq!(dry.outcome.desired_tg_updates["g"].place, 3);
    assert!(dry.outcome.failed_tg_allocs.is_empty());
    assert!(allocs_of(&store, "web").await.is_empty(), "nothing was written");
    assert_eq!(stead_server::queue::counts(&store, 10).await.unwrap(), Default::default());

    // Registered and placed, then planned again with a destructive change and more than fits.
    let (workers, mut rx) = start_workers(&store, &env, fast_config(1));
    let reg = jobs::register(&store, &env, web.clone(), None).await.unwrap();
    wait_until(&mut rx, |r| !r.is_empty()).await;
    workers.shutdown().await;
    let mut changed = web.clone();
    changed.task_groups[0].count = Some(6);
    changed.task_groups[0].tasks[0].config.insert("image".to_owned(), serde_json::json!("v2"));
    let dry = stead_server::dry_run::dry_run(&store, &mut cache, &env, &config, 1, &changed).await.unwrap();
    assert_eq!(dry.job_modify_index, reg.job_modify_index, "-check-index compares against this");
    let d = &dry.outcome.desired_tg_updates["g"];
    // The service default `update` block rolls one allocation at a time (max_parallel 1).
    assert_eq!((d.destructive_update, d.ignore, d.place), (1, 2, 3), "{d:?}");
    // Two nodes of 1000 MHz hold four of 400 MHz: two of the six find no node.
    assert_eq!(dry.outcome.queued_allocations["g"], 2);
    assert_eq!(dry.outcome.failed_tg_allocs["g"].dimension_exhausted.get("cpu"), Some(&2));
    assert_eq!(live_allocs(&store, "web").await.len(), 3, "the dry run changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_metrics_count_evaluations_and_placements_in_prometheus_text() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 2, 4000, 8192).await;
    let registry = prometheus::Registry::new();
    let metrics = stead_server::metrics::SchedMetrics::new(&registry).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let workers = stead_server::worker::start(store.clone(), env.clone(), fast_config(2), metrics, Some(tx));
    jobs::register(&store, &env, fixtures::job("web", JobType::Service, 4, 100, 64), None).await.unwrap();
    wait_until(&mut rx, |r| !r.is_empty()).await;
    workers.shutdown().await;
    let text = stead_server::metrics::render(&registry);
    assert!(text.contains("stead_sched_evals_total{outcome=\"complete\"} 1"), "{text}");
    assert!(text.contains("stead_sched_placements_total 4"), "{text}");
    assert!(text.contains("stead_sched_plan_seconds_count"), "{text}");
}
