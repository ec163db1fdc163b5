//! The client protocol on the server: registration with a secret, heartbeats and their
//! TTL, expiry of a silent node (its allocations replaced elsewhere), the allocation
//! watch, and updates only from the node that runs an allocation.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use stead_server::clients::{self, HeartbeatConfig, heartbeat_ttl};
use stead_server::duties::{self, heartbeat};
use stead_server::env::Env;
use stead_server::{ServerError, jobs};
use stead_store::ReadMode;
use stead_store::model::{AllocClientStatus, JobType, Node, NodeStatus};
use stead_store::records::keys as record_keys;
use stead_testkit::fixtures;

fn client_node(id: &str) -> Node {
    let mut node = fixtures::node(id, "dc1", 4000, 8192);
    node.secret_id = format!("secret-{id}");
    node
}

async fn stored_node(store: &stead_server::Store, id: &str) -> Node {
    let tx = store.db.create_transaction().unwrap();
    store.ks.get::<Node>(&tx, &record_keys::node(id), ReadMode::Snapshot).await.unwrap().unwrap()
}

fn quick() -> HeartbeatConfig {
    HeartbeatConfig {
        min_ttl: Duration::from_secs(10),
        grace: Duration::from_secs(10),
        failover_ttl: Duration::ZERO,
        ..HeartbeatConfig::default()
    }
}

#[test]
fn heartbeat_ttl_scales_with_the_node_count_and_staggers_below_twice_the_base() {
    let c = HeartbeatConfig::default();
    assert_eq!(heartbeat_ttl(10, &c, 0), Duration::from_secs(10), "small clusters get the minimum");
    assert_eq!(heartbeat_ttl(10_000, &c, 0), Duration::from_secs(200), "10,000 nodes at 50/s: 200 s");
    let staggered = heartbeat_ttl(10_000, &c, 999_999);
    assert!(staggered > Duration::from_secs(399) && staggered < Duration::from_secs(400), "{staggered:?}");
}

#[tokio::test]
async fn a_node_registers_with_its_secret_and_another_secret_is_refused() {
    let store = store();
    let (env, _clock) = Env::manual(1_000_000_000_000, 7);
    let hb = clients::register(&store, &env, &quick(), client_node("n1")).await.unwrap();
    assert!(hb.ttl >= Duration::from_secs(10) && hb.ttl < Duration::from_secs(20), "{:?}", hb.ttl);
    let stored = stored_node(&store, "n1").await;
    assert_eq!(stored.status, NodeStatus::Ready);
    assert_eq!(stored.events.last().unwrap().message, "Node registered");

    let mut impostor = client_node("n1");
    impostor.secret_id = "other".to_owned();
    let err = clients::register(&store, &env, &quick(), impostor).await.unwrap_err();
    assert!(matches!(err, ServerError::Unauthorized(_)), "{err:?}");
    let err = clients::heartbeat(&store, &env, &quick(), "n1", "other").await.unwrap_err();
    assert!(matches!(err, ServerError::Unauthorized(_)), "{err:?}");
    let err = clients::heartbeat(&store, &env, &quick(), "nobody", "x").await.unwrap_err();
    assert!(matches!(err, ServerError::NotFound(_)), "{err:?}");

    let mut incomplete = client_node("n2");
    incomplete.datacenter.clear();
    let err = clients::register(&store, &env, &quick(), incomplete).await.unwrap_err();
    assert!(err.to_string().contains("Datacenter"), "{err}");
}

#[tokio::test]
async fn re_registering_keeps_what_the_servers_decided_about_the_node() {
    let store = store();
    let (env, _clock) = Env::manual(1_000_000_000_000, 7);
    clients::register(&store, &env, &quick(), client_node("n1")).await.unwrap();
    let mut node = stored_node(&store, "n1").await;
    node.scheduling_eligibility = stead_store::model::SchedulingEligibility::Ineligible;
    stead_server::nodes::upsert(&store, &env, &node).await.unwrap();
    clients::register(&store, &env, &quick(), client_node("n1")).await.unwrap();
    assert_eq!(
        stored_node(&store, "n1").await.scheduling_eligibility,
        stead_store::model::SchedulingEligibility::Ineligible
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_heartbeating_goes_down_and_its_allocations_are_replaced_elsewhere() {
    let store = store();
    let (env, clock) = Env::manual(1_000_000_000_000, 11);
    let config = quick();
    clients::register(&store, &env, &config, client_node("n1")).await.unwrap();
    let (workers, mut rx) = start_workers(&store, &env, fast_config(2));
    jobs::register(&store, &env, fixtures::job("web", JobType::Service, 4, 100, 128), None).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    let before = live_allocs(&store, "web").await;
    assert_eq!(before.len(), 4);
    assert!(before.iter().all(|a| a.node_id.as_str() == "n1"), "n1 is the only node yet");
    clients::register(&store, &env, &config, client_node("n2")).await.unwrap();

    // n2 keeps heartbeating; n1 falls silent for longer than its TTL and the grace.
    clock.advance(Duration::from_secs(25));
    clients::heartbeat(&store, &env, &config, "n2", "secret-n2").await.unwrap();
    clock.advance(Duration::from_secs(20));
    clients::heartbeat(&store, &env, &config, "n2", "secret-n2").await.unwrap();
    let held = duties::acquire(&store, &env, "heartbeat", "test", Duration::from_secs(60)).await.unwrap().unwrap();
    let expired = heartbeat::expire(&store, &env, &config, &held).await.unwrap();
    assert_eq!(expired, vec!["n1".to_owned()]);
    let n1 = stored_node(&store, "n1").await;
    assert_eq!(n1.status, NodeStatus::Down);
    assert_eq!(n1.events.last().unwrap().message, "Node heartbeat missed");
    assert_eq!(stored_node(&store, "n2").await.status, NodeStatus::Ready);

    wait_until(&mut rx, |r| r.len() == 1).await;
    let live = live_allocs(&store, "web").await;
    assert_eq!(live.len(), 4, "every allocation has a live replacement");
    assert!(live.iter().all(|a| a.node_id.as_str() == "n2"), "replacements are on the node still up");
    let lost = allocs_of(&store, "web").await.into_iter().filter(|a| a.client_status == AllocClientStatus::Lost);
    assert_eq!(lost.count(), 4, "the allocations of the silent node are marked lost");
    // A second pass finds nothing more to do; a heartbeat brings the node back.
    assert!(heartbeat::expire(&store, &env, &config, &held).await.unwrap().is_empty());
    clients::heartbeat(&store, &env, &config, "n1", "secret-n1").await.unwrap();
    assert_eq!(stored_node(&store, "n1").await.status, NodeStatus::Ready);
    workers.shutdown().await;
}

#[tokio::test]
async fn a_server_that_just_took_the_duty_over_gives_nodes_the_failover_grace() {
    let store = store();
    let (env, clock) = Env::manual(1_000_000_000_000, 3);
    let config = HeartbeatConfig { failover_ttl: Duration::from_secs(300), ..quick() };
    clients::register(&store, &env, &config, client_node("n1")).await.unwrap();
    clock.advance(Duration::from_secs(60));
    let held =
        duties::acquire(&store, &env, "heartbeat", "new-server", Duration::from_secs(600)).await.unwrap().unwrap();
    assert!(heartbeat::expire(&store, &env, &config, &held).await.unwrap().is_empty());
    clock.advance(Duration::from_secs(301));
    assert_eq!(heartbeat::expire(&store, &env, &config, &held).await.unwrap(), vec!["n1".to_owned()]);
}

#[tokio::test]
async fn a_duty_lease_is_held_by_one_server_until_it_expires_and_a_stale_holder_cannot_commit() {
    let store = store();
    let (env, clock) = Env::manual(1_000_000_000_000, 5);
    let a = duties::acquire(&store, &env, "gc", "a", Duration::from_secs(10)).await.unwrap().unwrap();
    assert!(duties::acquire(&store, &env, "gc", "b", Duration::from_secs(10)).await.unwrap().is_none());
    let renewed = duties::acquire(&store, &env, "gc", "a", Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!(renewed.lease.token, a.lease.token, "a renewal keeps the token");
    clock.advance(Duration::from_secs(11));
    let b = duties::acquire(&store, &env, "gc", "b", Duration::from_secs(10)).await.unwrap().unwrap();
    assert_ne!(b.lease.token, a.lease.token);
    let tx = store.db.create_transaction().unwrap();
    let err = duties::check(&store, &tx, &a).await.unwrap_err();
    assert!(matches!(err, ServerError::DutyLost { .. }), "{err:?}");
    duties::check(&store, &tx, &b).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allocation_watch_sends_at_once_and_again_when_the_nodes_allocations_change() {
    let store = store();
    let env = Env::system();
    clients::register(&store, &env, &quick(), client_node("n1")).await.unwrap();
    let mut watch = Box::pin(clients::watch_node_allocations(store.clone(), "n1".into(), "secret-n1".into(), 0, true));
    let first = watch.next().await.unwrap().unwrap();
    assert!(first.full && first.allocs.is_empty());

    let (workers, mut rx) = start_workers(&store, &env, fast_config(1));
    jobs::register(&store, &env, fixtures::job("web", JobType::Service, 2, 100, 128), None).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    let second = tokio::time::timeout(Duration::from_secs(30), watch.next()).await.unwrap().unwrap().unwrap();
    assert!(second.index > first.index);
    assert!(!second.full && second.removed.is_empty(), "a change: what is new");
    assert_eq!(second.allocs.len(), 2);
    for a in &second.allocs {
        let job = a.job.as_ref().expect("each allocation carries the job version it runs");
        assert_eq!((job.id.as_str(), job.version), ("web", a.job_version));
    }

    // The client's own report changes nothing it must act on: no message; a stop does.
    let mut running = second.allocs[0].clone();
    running.client_status = AllocClientStatus::Running;
    let applied = clients::update_allocations(&store, &env, "n1", "secret-n1", vec![running]).await.unwrap();
    assert_eq!(applied, 1);
    jobs::stop(&store, &env, "default", "web", false).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    let third = tokio::time::timeout(Duration::from_secs(30), watch.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(third.allocs.len(), 2, "both stopped: both sent again");
    assert!(third.allocs.iter().all(|a| a.desired_status == stead_store::model::AllocDesiredStatus::Stop));
    workers.shutdown().await;

    let wrong = clients::watch_node_allocations(store.clone(), "n1".into(), "nope".into(), 0, true);
    let err = Box::pin(wrong).next().await.unwrap().unwrap_err();
    assert!(matches!(err, ServerError::Unauthorized(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_for_a_client_that_takes_no_changes_sends_the_whole_set_each_time() {
    let store = store();
    let env = Env::system();
    clients::register(&store, &env, &quick(), client_node("n1")).await.unwrap();
    let mut watch = Box::pin(clients::watch_node_allocations(store.clone(), "n1".into(), "secret-n1".into(), 0, false));
    assert!(watch.next().await.unwrap().unwrap().full);
    let (workers, mut rx) = start_workers(&store, &env, fast_config(1));
    jobs::register(&store, &env, fixtures::job("a", JobType::Service, 1, 100, 128), None).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    let second = tokio::time::timeout(Duration::from_secs(30), watch.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((second.full, second.allocs.len()), (true, 1));
    jobs::register(&store, &env, fixtures::job("b", JobType::Service, 1, 100, 128), None).await.unwrap();
    wait_until(&mut rx, |r| r.len() == 1).await;
    let third = tokio::time::timeout(Duration::from_secs(30), watch.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((third.full, third.allocs.len()), (true, 2), "the whole set, not only b's allocation");
    workers.shutdown().await;
}

#[tokio::test]
async fn a_node_cannot_update_allocations_of_another_node() {
    let store = store();
    let env = Env::system();
    clients::register(&store, &env, &quick(), client_node("n1")).await.unwrap();
    clients::register(&store, &env, &quick(), client_node("n2")).await.unwrap();
    let mut alloc = stead_store::model::Allocation {
        id: "a1".into(),
        namespace: "default".to_owned(),
        name: "web.g[0]".to_owned(),
        node_id: "n2".into(),
        job_id: "web".into(),
        task_group: "g".to_owned(),
        ..Default::default()
    };
    let tx = store.db.create_transaction().unwrap();
    store.ks.put(&tx, &alloc, Default::default()).await.unwrap();
    tx.commit().await.unwrap();
    alloc.client_status = AllocClientStatus::Failed;
    let applied = clients::update_allocations(&store, &env, "n1", "secret-n1", vec![alloc]).await.unwrap();
    assert_eq!(applied, 0);
}
