//! The simulated cluster: server and client nodes in madsim, the store in-process.
//!
//! * The store is one embedded engine in memory, created outside every node so it
//!   survives node crashes (as a FoundationDB cluster outlives its clients); every server
//!   reaches it through the fault wrapper, whose rates the fault driver changes.
//! * A server node (`10.0.1.i`) runs the production scheduler workers, duties and the
//!   gRPC `ClientProtocol` service. Each start is a new generation with its own name
//!   (`server-i.g`) in leases, as a restarted process would be.
//! * A client node (`10.0.2.j`) runs the production client (mock driver only) over
//!   `GrpcServerLink` to every server, with its state on disk under the run's directory,
//!   so a restarted client re-attaches as a real one does. Its clock can be jumped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use madsim::runtime::{Handle, NodeHandle};
use stead_client::client::{Client, Platform};
use stead_client::config::ClientConfig;
use stead_client::fingerprint::FakeHost;
use stead_rpc::client_protocol::ClientProtocolService;
use stead_rpc::link::GrpcServerLink;
use stead_server::clients::HeartbeatConfig;
use stead_server::duties::{self, DutyConfig};
use stead_server::metrics::SchedMetrics;
use stead_server::queue::QueueConfig;
use stead_server::worker::{self, WorkerConfig};
use stead_server::{Clock, Env, SeededEntropy, Store, SystemClock};
use stead_store::Database;
use stead_store::fault::{self, FaultConfig, FaultHandle};

use crate::config::SimConfig;
use crate::mix;

/// The gRPC port of every server.
pub const SERVER_PORT: u16 = 4647;

/// The system clock plus an offset the fault driver jumps (a client's wall clock; its
/// timers run on simulated time regardless).
#[derive(Debug, Default)]
pub struct JumpClock {
    offset_ns: AtomicI64,
}

impl JumpClock {
    pub fn jump(&self, by_ns: i64) {
        self.offset_ns.fetch_add(by_ns, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        self.offset_ns.store(0, Ordering::Relaxed);
    }
}

impl Clock for JumpClock {
    fn now_ns(&self) -> i64 {
        SystemClock.now_ns().saturating_add(self.offset_ns.load(Ordering::Relaxed))
    }
}

/// The heartbeat settings of the simulated servers: Nomad's, with a failover grace short
/// enough for a 10-minute run.
pub fn heartbeat_config() -> HeartbeatConfig {
    HeartbeatConfig { failover_ttl: Duration::from_secs(30), ..HeartbeatConfig::default() }
}

/// One node of the cluster and what the fault driver needs to know of it.
pub struct SimNode {
    pub name: String,
    pub handle: NodeHandle,
    /// Starts so far (a generation number names each start).
    pub generation: Arc<AtomicU64>,
    pub up: bool,
}

pub struct Cluster {
    /// The store without faults, for the workload's own bookkeeping and the checkers.
    pub raw: Store,
    /// The store as servers see it.
    pub faulty: Database,
    pub faults: FaultHandle,
    pub servers: Vec<SimNode>,
    pub clients: Vec<SimNode>,
    pub clocks: Vec<Arc<JumpClock>>,
    /// The run's directory on disk (client state); removed at the end.
    pub dir: PathBuf,
    /// Names every client node `<prefix>client-<j>` (mock tasks register under it).
    pub prefix: String,
}

fn server_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, (i + 1) as u8))
}

fn client_ip(j: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 2, (j + 1) as u8))
}

/// Names of a server's generation: what its leases carry.
pub fn server_name(i: usize, generation: u64) -> String {
    format!("server-{i}.{generation}")
}

/// The server index of a worker or server name (`server-i.g` or `server-i.g-w`).
pub fn server_index(name: &str) -> Option<usize> {
    name.strip_prefix("server-")?.split('.').next()?.parse().ok()
}

impl Cluster {
    /// Builds and starts every node. `dir` must be empty and private to this run.
    pub fn start(config: &SimConfig, dir: PathBuf, baseline: FaultConfig) -> Cluster {
        let handle = Handle::current();
        let db = stead_store::embedded::open_in_memory();
        let raw = Store::new(db.clone());
        let (faulty, faults) = fault::wrap(db, baseline, mix(config.seed, 0xFA17));
        let seed = config.seed;
        let addrs: Vec<String> =
            (0..config.servers).map(|i| format!("http://{}", SocketAddr::new(server_ip(i), SERVER_PORT))).collect();
        let mut servers = Vec::new();
        for i in 0..config.servers {
            let generation = Arc::new(AtomicU64::new(0));
            let (faulty, generation_ref) = (faulty.clone(), generation.clone());
            let node = handle
                .create_node()
                .name(format!("server-{i}"))
                .ip(server_ip(i))
                .init(move || server_main(faulty.clone(), seed, i, generation_ref.fetch_add(1, Ordering::Relaxed)))
                .build();
            servers.push(SimNode { name: format!("server-{i}"), handle: node, generation, up: true });
        }
        let prefix = format!("s{seed}-");
        let mut clients = Vec::new();
        let mut clocks = Vec::new();
        for j in 0..config.clients {
            let generation = Arc::new(AtomicU64::new(0));
            let clock = Arc::new(JumpClock::default());
            let name = format!("{prefix}client-{j}");
            let spec = ClientSpec { name: name.clone(), dir: dir.join(format!("client-{j}")), servers: addrs.clone() };
            let (clock_ref, generation_ref) = (clock.clone(), generation.clone());
            let node = handle
                .create_node()
                .name(format!("client-{j}"))
                .ip(client_ip(j))
                .init(move || {
                    let generation = generation_ref.fetch_add(1, Ordering::Relaxed);
                    client_main(spec.clone(), clock_ref.clone(), mix(seed, 1_000 + j as u64 * 7_919 + generation))
                })
                .build();
            clients.push(SimNode { name, handle: node, generation, up: true });
            clocks.push(clock);
        }
        Cluster { raw, faulty, faults, servers, clients, clocks, dir, prefix }
    }
}

async fn server_main(db: Database, seed: u64, i: usize, generation: u64) {
    let env = Env {
        clock: Arc::new(SystemClock),
        entropy: Arc::new(SeededEntropy::new(mix(seed, 10 + i as u64 * 131 + generation * 1_000_003))),
    };
    let store = Store::new(db);
    let name = server_name(i, generation);
    let config = WorkerConfig {
        workers: 2,
        name: name.clone(),
        cluster_seed: seed,
        queue: QueueConfig { lease_ttl: Duration::from_secs(10), ..QueueConfig::default() },
        ..WorkerConfig::default()
    };
    let _workers = worker::start(store.clone(), env.clone(), config, SchedMetrics::unregistered(), None);
    let duty_config = DutyConfig {
        holder: name,
        lease_ttl: Duration::from_secs(10),
        heartbeat: heartbeat_config(),
        ..DutyConfig::default()
    };
    let _duties = duties::start(store.clone(), env.clone(), duty_config);
    let service = ClientProtocolService::new(store, env, heartbeat_config()).into_server();
    let addr = SocketAddr::new(server_ip(i), SERVER_PORT);
    if let Err(e) = tonic::transport::Server::builder().add_service(service).serve(addr).await {
        tracing::warn!(error = %e, "server {i}: the gRPC server stopped");
    }
    std::future::pending::<()>().await;
}

#[derive(Clone)]
struct ClientSpec {
    name: String,
    dir: PathBuf,
    servers: Vec<String>,
}

async fn client_main(spec: ClientSpec, clock: Arc<JumpClock>, seed: u64) {
    let config = ClientConfig {
        node_name: spec.name.clone(),
        datacenter: "dc1".to_owned(),
        drivers: vec!["mock".to_owned()],
        // Thousands of state writes per run: a simulated crash keeps the files anyway.
        durable_state: false,
        retry_base: Duration::from_millis(200),
        retry_max: Duration::from_secs(5),
        ..ClientConfig::new(spec.dir.clone())
    };
    let link = match GrpcServerLink::new(&spec.servers) {
        Ok(link) => link,
        Err(e) => panic!("client {}: the server addresses do not parse: {e}", spec.name),
    };
    let platform =
        Platform { host: Arc::new(FakeHost::standard(&spec.name)), clock, entropy: Arc::new(SeededEntropy::new(seed)) };
    match Client::start(config, Arc::new(link), platform).await {
        Ok(handle) => {
            std::future::pending::<()>().await;
            drop(handle);
        }
        Err(e) => panic!("client {}: cannot start: {e}", spec.name),
    }
}
