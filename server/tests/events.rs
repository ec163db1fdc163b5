//! The event stream: every change writes its event in its own transaction, so the events
//! come in commit order with the commit's index, filter by topic and key, wait for new
//! ones, and old ones are trimmed.

mod common;

use std::time::Duration;

use common::*;
use stead_server::env::Env;
use stead_server::events::{self, Filter};
use stead_server::{allocs, jobs};
use stead_store::model::{AllocClientStatus, JobType};
use stead_testkit::fixtures;

async fn all_events(store: &stead_server::Store) -> Vec<events::Event> {
    let tx = store.db.create_transaction().unwrap();
    events::read_after(store, &tx, 0, events::EVENTS_PER_READ_MAX).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_and_its_placement_appear_in_commit_order_with_their_commit_indexes() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 2, 4000, 8192).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(1));
    let reg = jobs::register(&store, &env, fixtures::job("web", JobType::Service, 3, 100, 128), None).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    workers.shutdown().await;

    let events = all_events(&store).await;
    assert!(events.windows(2).all(|w| w[0].index <= w[1].index), "events are in commit order");
    let types: Vec<(&str, &str)> = events.iter().map(|e| (e.topic.as_str(), e.event_type.as_str())).collect();
    assert_eq!(types.iter().filter(|t| **t == ("Node", "NodeRegistration")).count(), 2);
    let registered = events.iter().find(|e| e.event_type == "JobRegistered").unwrap();
    assert_eq!(registered.index, reg.index, "the event's index is its commit's");
    assert_eq!(registered.payload["Job"]["ID"], "web");
    let placed: Vec<_> = events.iter().filter(|e| e.event_type == "PlanResult").collect();
    assert_eq!(placed.len(), 3);
    assert!(placed.iter().all(|e| e.payload["Allocation"]["JobID"] == "web" && e.filter_keys == ["web"]));
    let evals: Vec<_> = events.iter().filter(|e| e.topic == "Evaluation").collect();
    assert_eq!(evals.first().unwrap().payload["Evaluation"]["Status"], "pending");
    assert_eq!(evals.last().unwrap().payload["Evaluation"]["Status"], "complete");
    assert!(evals.first().unwrap().index < placed[0].index && placed[0].index <= evals.last().unwrap().index);
    assert!(events.iter().all(|e| e.payload.pointer("/Node/SecretID").is_none()), "node secrets stay out");

    // A client's report is an event of its own.
    let mut running = live_allocs(&store, "web").await.remove(0);
    running.client_status = AllocClientStatus::Running;
    allocs::update_from_client(&store, &env, None, std::slice::from_ref(&running)).await.unwrap();
    let last = all_events(&store).await.pop().unwrap();
    assert_eq!((last.event_type.as_str(), last.key.as_str()), ("AllocationUpdated", running.id.as_str()));
}

#[tokio::test]
async fn a_filter_keeps_the_topics_and_keys_it_names() {
    let (store, env) = (store(), Env::system());
    jobs::register(&store, &env, fixtures::job("a", JobType::Service, 1, 100, 128), None).await.unwrap();
    jobs::register(&store, &env, fixtures::job("b", JobType::Service, 1, 100, 128), None).await.unwrap();
    let events = all_events(&store).await;
    let only = |topics: &[&str]| {
        let f = Filter::parse(&topics.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>(), "default").unwrap();
        events::batches(events.clone(), &f).into_iter().flat_map(|b| b.events).collect::<Vec<_>>()
    };
    assert_eq!(only(&[]).len(), events.len(), "no topic: everything");
    assert!(only(&["Job"]).iter().all(|e| e.topic == "Job"));
    assert_eq!(only(&["Job:b"]).len(), 1);
    let evals_of_a = only(&["Evaluation:a"]);
    assert!(!evals_of_a.is_empty() && evals_of_a.iter().all(|e| e.filter_keys == ["a"]), "filter keys match");
    assert!(only(&["*:a"]).iter().all(|e| e.key == "a" || e.filter_keys == ["a"]));
    assert!(Filter::parse(&["Bogus".to_owned()], "").unwrap_err().to_string().contains("Bogus"));
    let other_ns = Filter::parse(&[], "other").unwrap();
    assert!(events::batches(events.clone(), &other_ns).is_empty());
}

#[tokio::test]
async fn a_reader_waits_for_the_next_events_and_resumes_where_it_stopped() {
    let (store, env) = (store(), Env::system());
    jobs::register(&store, &env, fixtures::job("a", JobType::Service, 1, 100, 128), None).await.unwrap();
    let filter = Filter::default();
    let (first, after) = events::next_batches(&store, 0, &filter, Duration::from_secs(1)).await.unwrap();
    assert!(!first.is_empty());
    let (none, same) = events::next_batches(&store, after, &filter, Duration::from_millis(50)).await.unwrap();
    assert!(none.is_empty() && same == after, "nothing new: an empty answer at the wait's end");

    let waiter = {
        let store = store.clone();
        tokio::spawn(
            async move { events::next_batches(&store, after, &Filter::default(), Duration::from_secs(30)).await },
        )
    };
    let reg = jobs::register(&store, &env, fixtures::job("b", JobType::Service, 1, 100, 128), None).await.unwrap();
    let (next, _) = tokio::time::timeout(Duration::from_secs(30), waiter).await.unwrap().unwrap().unwrap();
    assert_eq!(next[0].index, reg.index, "the waiting reader gets the new commit's events");
}

#[tokio::test]
async fn events_older_than_the_retention_are_trimmed() {
    let store = store();
    let (env, clock) = Env::manual(1_000_000_000_000_000_000, 1);
    jobs::register(&store, &env, fixtures::job("old", JobType::Service, 1, 100, 128), None).await.unwrap();
    let trim = |now| {
        let store = store.clone();
        async move {
            let tx = store.db.create_transaction().unwrap();
            events::trim(&store, &tx, now, Duration::from_secs(3600)).await.unwrap();
            tx.commit().await.unwrap();
        }
    };
    trim(env.now_ns()).await;
    clock.advance(Duration::from_secs(1800));
    jobs::register(&store, &env, fixtures::job("new", JobType::Service, 1, 100, 128), None).await.unwrap();
    trim(env.now_ns()).await;
    assert!(all_events(&store).await.iter().any(|e| e.key == "old"), "within the retention: kept");
    clock.advance(Duration::from_secs(2000));
    trim(env.now_ns()).await;
    let left = all_events(&store).await;
    assert!(left.iter().all(|e| e.key != "old"), "older than the retention: trimmed");
    assert!(left.iter().any(|e| e.key == "new"));
}

#[tokio::test]
async fn a_register_retried_after_an_unknown_result_writes_one_event_and_reports_its_commit() {
    // Found by the simulator: a retried register of a job without an evaluation (here a
    // parameterized one) wrote the job and its event twice, and a retry reported its own
    // (read-only) commit instead of the write's.
    let db = stead_store::embedded::open_in_memory();
    let raw = stead_server::Store::new(db.clone());
    let config = stead_store::fault::FaultConfig { unknown_result_applied_rate: 0.5, ..Default::default() };
    let (faulty, faults) = stead_store::fault::wrap(db, config, 7);
    let store = stead_server::Store::new(faulty);
    let env = Env::system();
    let mut acked = Vec::new();
    for i in 0..20 {
        let mut job = fixtures::job(&format!("p{i}"), JobType::Batch, 1, 100, 128);
        if i % 2 == 0 {
            job.parameterized_job = Some(Default::default());
        }
        if let Ok(r) = jobs::register(&store, &env, job, None).await {
            acked.push((format!("p{i}"), r.index));
        }
    }
    assert!(faults.counts().unknown_applied > 5, "unknown results were injected: {:?}", faults.counts());
    assert!(acked.len() >= 10, "most registers were acknowledged: {acked:?}");
    let events = all_events(&raw).await;
    for (job, index) in acked {
        let mine: Vec<u64> = events.iter().filter(|e| e.key == job && e.topic == "Job").map(|e| e.index).collect();
        assert_eq!(mine, vec![index], "job {job}: one event, at the acknowledged commit");
    }
}

#[tokio::test]
async fn a_stop_retried_after_an_unknown_result_says_whether_it_changed_the_job() {
    // Found by the simulator: the retry of a stop that had committed reported the job as
    // changed even when it was stopped already (no new version, no event).
    let db = stead_store::embedded::open_in_memory();
    let raw = stead_server::Store::new(db.clone());
    let env = Env::system();
    for i in 0..20 {
        jobs::register(&raw, &env, fixtures::job(&format!("s{i}"), JobType::Service, 1, 100, 128), None).await.unwrap();
    }
    let config = stead_store::fault::FaultConfig { unknown_result_applied_rate: 0.5, ..Default::default() };
    let (faulty, faults) = stead_store::fault::wrap(db, config, 11);
    let store = stead_server::Store::new(faulty);
    for i in 0..20 {
        let job = format!("s{i}");
        let first = jobs::stop(&store, &env, "default", &job, false).await.unwrap();
        let again = jobs::stop(&store, &env, "default", &job, false).await.unwrap();
        assert!(first.changed, "{job}: the first stop stops it");
        assert!(!again.changed, "{job}: the second finds it stopped");
    }
    assert!(faults.counts().unknown_applied > 5, "unknown results were injected: {:?}", faults.counts());
    let events = all_events(&raw).await;
    for i in 0..20 {
        let job = format!("s{i}");
        let stops = events.iter().filter(|e| e.key == job && e.event_type == "JobDeregistered").count();
        assert_eq!(stops, 1, "job {job}: one JobDeregistered");
    }
}

#[tokio::test]
async fn a_dispatch_retried_after_an_unknown_result_launches_one_child_and_reports_it() {
    // Found in review: the retry of a dispatch whose commit had landed tried to register
    // the same child again and answered 409 (Conflict) for a dispatch that succeeded.
    let db = stead_store::embedded::open_in_memory();
    let raw = stead_server::Store::new(db.clone());
    let env = Env::system();
    let mut parent = fixtures::job("batch", JobType::Batch, 1, 100, 128);
    parent.parameterized_job = Some(Default::default());
    jobs::register(&raw, &env, parent, None).await.unwrap();
    let config = stead_store::fault::FaultConfig { unknown_result_applied_rate: 0.5, ..Default::default() };
    let (faulty, faults) = stead_store::fault::wrap(db, config, 5);
    let store = stead_server::Store::new(faulty);
    let mut children = Vec::new();
    for _ in 0..20 {
        let d = jobs::dispatch(&store, &env, "default", "batch", &jobs::DispatchRequest::default()).await.unwrap();
        let child = stead_server::reads::job(&raw, "default", &d.dispatched_job_id).await.unwrap().value;
        assert_eq!(child.create_index, d.job_create_index, "the child the answer names, created at its index");
        assert_eq!(d.index, d.job_create_index);
        children.push(d.dispatched_job_id);
    }
    assert!(faults.counts().unknown_applied > 5, "unknown results were injected: {:?}", faults.counts());
    let events = all_events(&raw).await;
    for child in &children {
        let registered = events.iter().filter(|e| e.key == *child && e.event_type == "JobRegistered").count();
        assert_eq!(registered, 1, "{child}: launched once");
    }
    let all = stead_server::reads::list_jobs(&raw, "default", "").await.unwrap().value;
    assert_eq!(all.len(), 21, "the parent and one child per dispatch");
}
