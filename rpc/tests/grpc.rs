//! The gRPC services over real loopback sockets: a client's link registers, heartbeats,
//! watches and updates through a server (and fails over from a dead one), a server reads a
//! client's logs, and a program drives the Jobs API.
#![cfg(not(madsim))]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use stead_client::link::{LinkError, ServerLink};
use stead_model::{AllocClientStatus, JobType, Node};
use stead_rpc::client_fs::{self, ClientFsService, LogError, LogFrame, LogSource, LogsQuery};
use stead_rpc::client_protocol::ClientProtocolService;
use stead_rpc::jobs::JobsService;
use stead_rpc::link::GrpcServerLink;
use stead_rpc::pb;
use stead_server::clients::HeartbeatConfig;
use stead_server::metrics::SchedMetrics;
use stead_server::worker::{self, WorkerConfig};
use stead_server::{Env, Store};
use stead_testkit::fixtures;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

/// A server with the client protocol and the jobs API on a free port.
async fn serve(store: &Store, env: &Env) -> String {
    let (l, addr) = listener().await;
    let router = Server::builder()
        .add_service(ClientProtocolService::new(store.clone(), env.clone(), HeartbeatConfig::default()).into_server())
        .add_service(
            JobsService {
                store: store.clone(),
                env: env.clone(),
                sched: Default::default(),
                cluster_seed: 0,
                plan_cache: Arc::new(tokio::sync::Mutex::new(stead_server::snapshot::ClusterCache::new())),
                acl: Default::default(),
            }
            .into_server(),
        );
    tokio::spawn(router.serve_with_incoming(TcpIncoming::from(l)));
    addr
}

fn node(id: &str) -> Node {
    let mut n = fixtures::node(id, "dc1", 4000, 8192);
    n.secret_id = format!("s-{id}");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_link_registers_heartbeats_watches_and_reports_through_grpc_and_skips_a_dead_server() {
    let store = Store::new(stead_store::embedded::open_in_memory());
    let env = Env::system();
    let live = serve(&store, &env).await;
    // A port nothing listens on, first in the list: the link moves on to the live server.
    let (dead, dead_addr) = listener().await;
    drop(dead);
    let link = GrpcServerLink::new(&[dead_addr, live]).unwrap();

    let hb = link.register(node("n1")).await.unwrap();
    assert!(hb.ttl >= Duration::from_secs(10));
    link.heartbeat("n1".into(), "s-n1".into()).await.unwrap();
    let err = link.heartbeat("n1".into(), "wrong".into()).await.unwrap_err();
    assert!(matches!(err, LinkError::Unauthorized(_)), "{err:?}");
    let err = link.heartbeat("n9".into(), "x".into()).await.unwrap_err();
    assert!(matches!(err, LinkError::NotFound(_)), "{err:?}");

    let mut watch = link.watch_allocations("n1".into(), "s-n1".into(), 0);
    let first = watch.next().await.unwrap().unwrap();
    assert!(first.allocs.is_empty());

    let workers = worker::start(
        store.clone(),
        env.clone(),
        WorkerConfig { workers: 1, idle_wait_max: Duration::from_millis(50), ..Default::default() },
        SchedMetrics::unregistered(),
        None,
    );
    stead_server::jobs::register(&store, &env, fixtures::job("web", JobType::Service, 2, 100, 128), None)
        .await
        .unwrap();
    let placed = tokio::time::timeout(Duration::from_secs(30), watch.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(placed.allocs.len(), 2);
    assert!(placed.allocs.iter().all(|a| a.job.is_some()), "each allocation carries its job over the wire");

    let mut update = placed.allocs[0].clone();
    update.client_status = AllocClientStatus::Running;
    link.update_allocations("n1".into(), "s-n1".into(), vec![update.clone()]).await.unwrap();
    let read = stead_server::reads::allocation(&store, "default", update.id.as_str()).await.unwrap();
    assert_eq!(read.value.client_status, AllocClientStatus::Running);
    workers.shutdown().await;
}

struct FixedLogs;

impl LogSource for FixedLogs {
    fn logs(&self, q: LogsQuery) -> BoxStream<'static, Result<LogFrame, LogError>> {
        if q.alloc_id == "empty" {
            return futures::stream::empty().boxed();
        }
        if q.alloc_id != "a1" {
            return futures::stream::once(async { Err(LogError::NotFound("unknown allocation a2".to_owned())) })
                .boxed();
        }
        let file = format!("alloc/logs/{}.{}.0", q.task, if q.stderr { "stderr" } else { "stdout" });
        let frames = vec![
            Ok(LogFrame { file: file.clone(), offset: q.offset, data: b"hello ".to_vec() }),
            Ok(LogFrame { file, offset: q.offset + 6, data: b"world\n".to_vec() }),
        ];
        futures::stream::iter(frames).boxed()
    }
}

#[tokio::test]
async fn a_server_streams_a_clients_log_frames_an_empty_log_ends_at_once_and_an_unknown_allocation_is_not_found() {
    let (l, addr) = listener().await;
    let svc = ClientFsService::new(Arc::new(FixedLogs)).into_server();
    tokio::spawn(Server::builder().add_service(svc).serve_with_incoming(TcpIncoming::from(l)));
    let q = LogsQuery {
        alloc_id: "a1".into(),
        task: "web".into(),
        stderr: true,
        from_end: false,
        offset: 3,
        follow: false,
    };
    let frames: Vec<_> = client_fs::stream_logs(&addr, q.clone()).await.unwrap().collect().await;
    let frames: Vec<LogFrame> = frames.into_iter().map(Result::unwrap).collect();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].file, "alloc/logs/web.stderr.0");
    assert_eq!((frames[1].offset, frames[1].data.as_slice()), (9, &b"world\n"[..]));
    // A task that printed nothing yet: no frames, no error (found end to end: the service
    // polled the source again after it had ended).
    let none: Vec<_> = client_fs::stream_logs(&addr, LogsQuery { alloc_id: "empty".into(), ..q.clone() })
        .await
        .unwrap()
        .collect()
        .await;
    assert!(none.is_empty(), "{none:?}");
    let err = client_fs::stream_logs(&addr, LogsQuery { alloc_id: "a2".into(), ..q }).await.err().unwrap();
    assert!(matches!(err, LogError::NotFound(ref m) if m.contains("a2")), "{err:?}");
}

#[tokio::test]
async fn a_program_registers_plans_reads_lists_versions_and_stops_a_job_through_the_jobs_api() {
    let store = Store::new(stead_store::embedded::open_in_memory());
    let env = Env::system();
    let addr = serve(&store, &env).await;
    let mut jobs = pb::jobs_client::JobsClient::connect(format!("http://{addr}")).await.unwrap();
    let job = fixtures::job("api", JobType::Service, 1, 100, 128);
    let job_json = serde_json::to_vec(&job).unwrap();

    let plan = jobs.plan(pb::PlanJobRequest { job_json: job_json.clone(), diff: true }).await.unwrap().into_inner();
    let answer: serde_json::Value = serde_json::from_slice(&plan.plan_json).unwrap();
    assert_eq!(answer["Annotations"]["DesiredTGUpdates"]["g"]["Place"], 1);
    assert_eq!(answer["Diff"]["Type"], "Added");

    let reg = jobs
        .register(pb::RegisterJobRequest { job_json: job_json.clone(), enforce_index: true, job_modify_index: 0 })
        .await
        .unwrap()
        .into_inner();
    assert!(!reg.eval_id.is_empty());
    // Check-and-set: "only if it does not exist" now fails.
    let again = jobs
        .register(pb::RegisterJobRequest { job_json: job_json.clone(), enforce_index: true, job_modify_index: 0 })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition, "{again:?}");

    let got = jobs.get(pb::JobRef { namespace: String::new(), job_id: "api".into() }).await.unwrap().into_inner();
    let got: serde_json::Value = serde_json::from_slice(&got.job_json).unwrap();
    assert_eq!(got["ID"], "api");
    let list = jobs.list(pb::ListJobsRequest { namespace: "default".into(), prefix: "a".into() }).await.unwrap();
    assert_eq!(list.into_inner().job_stub_json.len(), 1);
    let versions = jobs.versions(pb::JobRef { namespace: "default".into(), job_id: "api".into() }).await.unwrap();
    assert_eq!(versions.into_inner().job_json.len(), 1);

    let bad = jobs.register(pb::RegisterJobRequest { job_json: b"{\"ID\": 5".to_vec(), ..Default::default() }).await;
    let bad = bad.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("line 1"), "{}", bad.message());

    // The event stream: the register's commit, from the start.
    let mut events = jobs
        .watch_events(pb::WatchEventsRequest { index: 0, topics: vec!["Job:api".into()], namespace: String::new() })
        .await
        .unwrap()
        .into_inner();
    let first = futures::StreamExt::next(&mut events).await.unwrap().unwrap();
    assert_eq!(first.index, reg.index);
    let event: serde_json::Value = serde_json::from_slice(&first.event_json[0]).unwrap();
    assert_eq!((event["Topic"].as_str(), event["Type"].as_str()), (Some("Job"), Some("JobRegistered")));

    let stop = jobs.stop(pb::StopJobRequest { namespace: "default".into(), job_id: "api".into(), purge: true }).await;
    assert!(!stop.unwrap().into_inner().eval_id.is_empty());
    let gone = jobs.get(pb::JobRef { namespace: "default".into(), job_id: "api".into() }).await.unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
}
