//! The API's write operations beyond register and stop, end to end with real workers:
//! alloc stop, node eligibility, drain (with the drain duty), purge, dispatch, scale and
//! periodic launches (with the periodic duty).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use stead_server::duties::{self, drain, periodic as periodic_duty};
use stead_server::env::Env;
use stead_server::jobs::{self, DispatchRequest};
use stead_server::{ServerError, allocs, nodes, periodic, reads};
use stead_store::model::{
    AllocClientStatus, DrainSpec, JobType, Nanos, ParameterizedJobConfig, PayloadRequirement, PeriodicConfig,
    SchedulingEligibility,
};
use stead_testkit::fixtures;

/// Reports every live allocation of `job` running, as its client would.
async fn run_all(store: &stead_server::Store, env: &Env, job: &str) {
    let mut live = live_allocs(store, job).await;
    for a in &mut live {
        a.client_status = AllocClientStatus::Running;
    }
    allocs::update_from_client(store, env, None, &live).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_allocation_is_replaced() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 2, 4000, 8192).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(2));
    jobs::register(&store, &env, fixtures::job("web", JobType::Service, 2, 100, 128), None).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    let victim = live_allocs(&store, "web").await.remove(0);
    let stop = allocs::stop(&store, &env, "default", victim.id.as_str()).await.unwrap();
    let r = wait_until(&mut rx, |r| r.len() == 1).await;
    assert_eq!(r[0].eval_id.as_str(), stop.eval_id.as_str());
    let live = live_allocs(&store, "web").await;
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|a| a.id != victim.id), "the stopped allocation is replaced");
    let err = allocs::stop(&store, &env, "default", "no-such-alloc").await.unwrap_err();
    assert!(matches!(err, ServerError::NotFound(_)));
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ineligible_node_gets_no_new_work_and_a_draining_node_cannot_be_made_eligible() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 2, 4000, 8192).await;
    nodes::set_eligibility(&store, &env, "n0000", false).await.unwrap();
    let (workers, mut rx) = start_workers(&store, &env, fast_config(1));
    jobs::register(&store, &env, fixtures::job("web", JobType::Service, 3, 100, 128), None).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    assert!(live_allocs(&store, "web").await.iter().all(|a| a.node_id.as_str() == "n0001"));
    let node = reads::node(&store, "n0000").await.unwrap().value;
    assert_eq!(node.scheduling_eligibility, SchedulingEligibility::Ineligible);
    assert_eq!(node.events.last().unwrap().message, "Node marked as ineligible for scheduling");

    nodes::set_drain(&store, &env, "n0001", Some(DrainSpec::default()), false).await.unwrap();
    let err = nodes::set_eligibility(&store, &env, "n0001", true).await.unwrap_err();
    assert!(matches!(err, ServerError::Invalid(_)), "{err:?}");
    let err = nodes::set_eligibility(&store, &env, "nope", true).await.unwrap_err();
    assert!(matches!(err, ServerError::NotFound(_)));
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_migrates_one_allocation_of_a_group_at_a_time_and_completes() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 1, 8000, 16384).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(2));
    jobs::register(&store, &env, fixtures::job("web", JobType::Service, 3, 100, 128), None).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    run_all(&store, &env, "web").await;
    // A second node to move to, then drain the first (no deadline: never forced).
    stead_server::nodes::upsert(&store, &env, &fixtures::node("n0001", "dc1", 8000, 16384)).await.unwrap();
    let spec = DrainSpec { deadline: Nanos(0), ..DrainSpec::default() };
    nodes::set_drain(&store, &env, "n0000", Some(spec), false).await.unwrap();
    let held = duties::acquire(&store, &env, "drain", "test", Duration::from_secs(600)).await.unwrap().unwrap();

    let mut passes = 0;
    loop {
        passes += 1;
        assert!(passes <= 10, "the drain finishes within 10 passes");
        let steps = drain::drain_pass(&store, &env, &held).await.unwrap();
        let step = &steps["n0000"];
        if step.complete {
            break;
        }
        // migrate.max_parallel defaults to 1: one allocation per group per pass while
        // the others are healthy.
        assert_eq!(step.marked.len(), 1, "pass {passes}: {step:?}");
        // (Setting the drain queued an evaluation of its own, which moves nothing.)
        wait_until(&mut rx, |r| r.iter().any(|e| e.stopped == 1 && e.placed == 1)).await;
        run_all(&store, &env, "web").await;
    }
    let live = live_allocs(&store, "web").await;
    assert_eq!(live.len(), 3);
    assert!(live.iter().all(|a| a.node_id.as_str() == "n0001"), "everything moved off the drained node");
    let node = reads::node(&store, "n0000").await.unwrap().value;
    assert!(node.drain_strategy.is_none() && !node.drain);
    assert_eq!(node.scheduling_eligibility, SchedulingEligibility::Ineligible, "a drained node stays ineligible");
    assert_eq!(node.events.last().unwrap().message, "Node drain complete");
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_drain_marks_everything_at_once_and_batch_work_waits_for_the_deadline() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 1, 8000, 16384).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(2));
    jobs::register(&store, &env, fixtures::job("web", JobType::Service, 2, 100, 128), None).await.unwrap();
    jobs::register(&store, &env, fixtures::job("report", JobType::Batch, 1, 100, 128), None).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 2).await;
    run_all(&store, &env, "web").await;
    run_all(&store, &env, "report").await;
    stead_server::nodes::upsert(&store, &env, &fixtures::node("n0001", "dc1", 8000, 16384)).await.unwrap();
    let held = duties::acquire(&store, &env, "drain", "test", Duration::from_secs(600)).await.unwrap().unwrap();

    let no_deadline = DrainSpec { deadline: Nanos(0), ..DrainSpec::default() };
    nodes::set_drain(&store, &env, "n0000", Some(no_deadline), false).await.unwrap();
    let step = drain::drain_pass(&store, &env, &held).await.unwrap().remove("n0000").unwrap();
    let batch = live_allocs(&store, "report").await;
    assert!(!step.marked.contains(&batch[0].id.to_string()), "batch work is not migrated before the deadline");

    let force = DrainSpec { deadline: Nanos(-1_000_000_000), ..DrainSpec::default() };
    nodes::set_drain(&store, &env, "n0000", Some(force), false).await.unwrap();
    let step = drain::drain_pass(&store, &env, &held).await.unwrap().remove("n0000").unwrap();
    assert!(step.marked.contains(&batch[0].id.to_string()), "at the deadline everything is marked: {step:?}");
    workers.shutdown().await;
    let _ = &mut rx;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_node_is_forgotten_and_its_allocations_are_replaced() {
    let (store, env) = (store(), Env::system());
    add_nodes(&store, &env, 1, 4000, 8192).await;
    let (workers, mut rx) = start_workers(&store, &env, fast_config(2));
    jobs::register(&store, &env, fixtures::job("web", JobType::Service, 2, 100, 128), None).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    stead_server::nodes::upsert(&store, &env, &fixtures::node("n0001", "dc1", 4000, 8192)).await.unwrap();
    let purged = nodes::purge(&store, &env, "n0000").await.unwrap();
    assert_eq!(purged.eval_ids.len(), 1, "one evaluation for the job that ran there");
    wait_until(&mut rx, |r| r.iter().any(|e| e.eval_id.as_str() == purged.eval_ids[0].as_str())).await;
    assert!(matches!(reads::node(&store, "n0000").await.unwrap_err(), ServerError::NotFound(_)));
    let live = live_allocs(&store, "web").await;
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|a| a.node_id.as_str() == "n0001"));
    workers.shutdown().await;
}

fn parameterized(id: &str) -> stead_store::model::Job {
    let mut job = fixtures::job(id, JobType::Batch, 1, 100, 128);
    job.parameterized_job = Some(ParameterizedJobConfig {
        payload: Some(PayloadRequirement::Required),
        meta_required: vec!["input".to_owned()],
        meta_optional: vec!["level".to_owned()],
        ..Default::default()
    });
    job
}

#[tokio::test]
async fn dispatch_checks_payload_and_meta_creates_a_child_and_is_idempotent_with_a_token() {
    let (store, env) = (store(), Env::system());
    let reg = jobs::register(&store, &env, parameterized("encode"), None).await.unwrap();
    assert!(reg.eval_id.is_none(), "a parameterized parent is not evaluated itself");
    let request = |payload: &[u8], meta: &[(&str, &str)], token: &str| DispatchRequest {
        payload: payload.to_vec(),
        meta: meta.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
        idempotency_token: token.to_owned(),
        id_prefix_template: String::new(),
    };
    let err = jobs::dispatch(&store, &env, "default", "encode", &request(b"", &[("input", "a")], "")).await;
    assert!(err.unwrap_err().to_string().contains("required"), "a missing payload is refused");
    let err = jobs::dispatch(&store, &env, "default", "encode", &request(b"x", &[], "")).await;
    assert!(err.unwrap_err().to_string().contains("input"), "a missing required meta key is named");
    let unknown = request(b"x", &[("input", "a"), ("bad", "b")], "");
    let err = jobs::dispatch(&store, &env, "default", "encode", &unknown).await;
    assert!(err.unwrap_err().to_string().contains("bad"), "an unknown meta key is named");
    let big = vec![0u8; 16 * 1024 + 1];
    let err = jobs::dispatch(&store, &env, "default", "encode", &request(&big, &[("input", "a")], "")).await;
    assert!(err.unwrap_err().to_string().contains("maximum size"));

    let d =
        jobs::dispatch(&store, &env, "default", "encode", &request(b"hello", &[("input", "a")], "t1")).await.unwrap();
    assert!(d.dispatched_job_id.starts_with("encode/dispatch-"), "{}", d.dispatched_job_id);
    assert!(d.eval_id.is_some());
    let child = reads::job(&store, "default", &d.dispatched_job_id).await.unwrap().value;
    assert_eq!(child.parent_id.as_str(), "encode");
    assert!(child.dispatched && child.parameterized_job.is_none());
    assert_eq!(child.payload.as_deref(), Some("aGVsbG8="));
    assert_eq!(child.meta["input"], "a");
    let again = jobs::dispatch(&store, &env, "default", "encode", &request(b"hello", &[("input", "a")], "t1")).await;
    let again = again.unwrap();
    assert_eq!(again.dispatched_job_id, d.dispatched_job_id, "the same token returns the same child");
    assert!(again.eval_id.is_none());
    let err = jobs::dispatch(&store, &env, "default", "missing", &request(b"x", &[("input", "a")], "")).await;
    assert!(matches!(err.unwrap_err(), ServerError::NotFound(_)));
    jobs::register(&store, &env, fixtures::job("plain", JobType::Batch, 1, 100, 128), None).await.unwrap();
    let err = jobs::dispatch(&store, &env, "default", "plain", &request(b"x", &[], "")).await.unwrap_err();
    assert!(err.to_string().contains("not a parameterized job"), "{err}");
}

#[tokio::test]
async fn scale_sets_a_groups_count_as_a_new_version_and_refuses_bad_requests() {
    let (store, env) = (store(), Env::system());
    jobs::register(&store, &env, fixtures::job("web", JobType::Service, 2, 100, 128), None).await.unwrap();
    let r = jobs::scale(&store, &env, "default", "web", "g", 5, None).await.unwrap();
    assert_eq!(r.version, 1);
    let job = reads::job(&store, "default", "web").await.unwrap().value;
    assert_eq!(job.task_groups[0].count, Some(5));
    let status = reads::job_scale_status(&store, "default", "web").await.unwrap().value;
    assert_eq!(status.task_groups["g"].desired, 5);
    assert!(
        jobs::scale(&store, &env, "default", "web", "nope", 1, None).await.unwrap_err().to_string().contains("nope")
    );
    assert!(matches!(jobs::scale(&store, &env, "default", "web", "g", -1, None).await, Err(ServerError::Invalid(_))));
    let stale = jobs::scale(&store, &env, "default", "web", "g", 1, Some(1)).await.unwrap_err();
    assert!(matches!(stale, ServerError::Conflict(_)), "a stale check index is refused: {stale:?}");
}

fn periodic_job(id: &str, spec: &str, tz: &str, overlap: bool) -> stead_store::model::Job {
    let mut job = fixtures::job(id, JobType::Batch, 1, 100, 128);
    job.periodic = Some(PeriodicConfig {
        enabled: Some(true),
        specs: vec![spec.to_owned()],
        spec_type: "cron".to_owned(),
        prohibit_overlap: Some(overlap),
        time_zone: tz.to_owned(),
        ..Default::default()
    });
    job
}

#[test]
fn the_next_launch_follows_the_cron_expression_in_the_jobs_time_zone() {
    // 2026-12-01T05:21:51Z; "0 9 * * *" in New York (UTC-5 in December) is 14:00 UTC.
    let now = 1_796_102_511_000_000_000;
    let ny = periodic_job("p", "0 9 * * *", "America/New_York", false);
    let next = periodic::next_launch(&ny, now).unwrap().unwrap();
    assert_eq!(stead_store::model::time::format_rfc3339_nanos(next), "2026-12-01T14:00:00Z");
    let utc = periodic_job("p", "0 9 * * *", "", false);
    let next = periodic::next_launch(&utc, now).unwrap().unwrap();
    assert_eq!(stead_store::model::time::format_rfc3339_nanos(next), "2026-12-01T09:00:00Z");
    let latest = periodic::latest_launch(&utc, now).unwrap().unwrap();
    assert_eq!(stead_store::model::time::format_rfc3339_nanos(latest), "2026-11-30T09:00:00Z");
    let bad = periodic_job("p", "0 9 * * *", "Mars/Olympus", false);
    assert!(periodic::next_launch(&bad, now).unwrap_err().to_string().contains("Mars/Olympus"));
}

#[tokio::test]
async fn the_periodic_duty_launches_each_due_child_once_and_prohibit_overlap_skips_while_one_runs() {
    let store = store();
    let (env, clock) = Env::manual(1_796_102_511_000_000_000, 9);
    jobs::register(&store, &env, periodic_job("nightly", "*/5 * * * *", "", true), None).await.unwrap();
    let held = duties::acquire(&store, &env, "periodic", "test", Duration::from_secs(3600)).await.unwrap().unwrap();
    assert_eq!(
        periodic_duty::launch_due(&store, &env, &held).await.unwrap(),
        0,
        "the first pass only starts the clock"
    );
    clock.advance(Duration::from_secs(5 * 60));
    assert_eq!(periodic_duty::launch_due(&store, &env, &held).await.unwrap(), 1);
    assert_eq!(periodic_duty::launch_due(&store, &env, &held).await.unwrap(), 0, "a launch happens once");
    let children: Vec<_> = reads::list_jobs(&store, "default", "nightly/periodic-").await.unwrap().value;
    assert_eq!(children.len(), 1);
    // The child is still pending (nothing ran it): the next launch is skipped.
    clock.advance(Duration::from_secs(5 * 60));
    assert_eq!(periodic_duty::launch_due(&store, &env, &held).await.unwrap(), 0, "prohibit_overlap skips");
    // A forced launch ignores the schedule.
    jobs::stop(&store, &env, "default", children[0].id.as_str(), false).await.unwrap();
    let forced = periodic::force(&store, &env, "default", "nightly").await.unwrap();
    assert!(forced.eval_id.is_some());
    assert_eq!(reads::list_jobs(&store, "default", "nightly/periodic-").await.unwrap().value.len(), 2);
    let err = periodic::force(&store, &env, "default", "nope").await.unwrap_err();
    assert!(matches!(err, ServerError::NotFound(_)));
}
