//! A running agent: the parts its configuration enables, wired together, until Ctrl-C.
//!
//! * **Server**: the store (embedded under `<data_dir>/server`, in memory for `-dev`
//!   without a data dir, or FoundationDB), the scheduler workers, the duties, the HTTP API
//!   and the gRPC `ClientProtocol` and `Jobs` services.
//! * **Client**: `stead_client` with a gRPC link to the servers (this agent's own when it
//!   is one), its state under `<data_dir>` (`client/`, `alloc/`), and the gRPC `ClientFs`
//!   service that serves its tasks' logs.
//!
//! Shutdown stops the HTTP and gRPC listeners, then the client (a `-dev` agent in memory
//! stops its tasks: nothing could re-attach to them; with a data dir they keep running for
//! the next start to re-attach), then the workers and duties.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use futures::StreamExt;
use futures::stream::BoxStream;
use stead_client::client::{Client, ClientHandle, Platform, ShutdownMode};
use stead_client::config::{ClientConfig, ExecutorCommand};
use stead_client::logs::{LogKind, LogOrigin, LogRequest};
use stead_rpc::client_fs::{self, ClientFsService, LogError, LogFrame, LogSource, LogsQuery};
use stead_rpc::client_protocol::ClientProtocolService;
use stead_rpc::jobs::JobsService;
use stead_rpc::link::GrpcServerLink;
use stead_server::{Env, Store};
use stead_store::Database;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::config::{AgentConfig, StoreConfig};

fn open_store(config: &AgentConfig) -> anyhow::Result<(Database, String)> {
    match &config.store {
        StoreConfig::Embedded => {
            let data_dir = config.data_dir.as_ref().map(|d| d.join("server"));
            let where_ = match &data_dir {
                Some(dir) => format!("embedded, durable in {}", dir.display()),
                None => "embedded, in memory (use -data-dir DIR to keep state)".to_owned(),
            };
            let db = stead_store::embedded::open(&stead_store::embedded::EmbeddedOptions { data_dir })
                .context("opening the store")?;
            Ok((db, where_))
        }
        StoreConfig::Fdb { cluster_file } => open_fdb(cluster_file.as_ref()),
    }
}

#[cfg(feature = "fdb")]
fn open_fdb(cluster_file: Option<&PathBuf>) -> anyhow::Result<(Database, String)> {
    let db = stead_store::fdb::open(cluster_file.map(PathBuf::as_path)).context("opening the FoundationDB cluster")?;
    let where_ = match cluster_file {
        Some(f) => format!("FoundationDB, cluster file {}", f.display()),
        None => "FoundationDB, default cluster file".to_owned(),
    };
    Ok((db, where_))
}

#[cfg(not(feature = "fdb"))]
fn open_fdb(_cluster_file: Option<&PathBuf>) -> anyhow::Result<(Database, String)> {
    anyhow::bail!(
        "store {{ fdb {{ ... }} }}: this stead was built without FoundationDB support; \
         build it with `cargo build --release -p stead-agent --features fdb` (needs libfdb_c)"
    )
}

/// The client's logs as the `ClientFs` service reads them; empty until the client runs.
#[derive(Clone, Default)]
struct ClientLogs(Arc<Mutex<Option<ClientHandle>>>);

impl LogSource for ClientLogs {
    fn logs(&self, q: LogsQuery) -> BoxStream<'static, Result<LogFrame, LogError>> {
        let guard = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(handle) = guard.as_ref() else {
            return futures::stream::once(async { Err(LogError::Unavailable("the client is not running".into())) })
                .boxed();
        };
        let request = LogRequest {
            alloc_id: q.alloc_id.into(),
            task: q.task,
            kind: if q.stderr { LogKind::Stderr } else { LogKind::Stdout },
            origin: if q.from_end { LogOrigin::End } else { LogOrigin::Start },
            offset: q.offset,
            follow: q.follow,
        };
        let map_error = |e: stead_client::logs::LogError| match e {
            stead_client::logs::LogError::Io { .. } => LogError::Unavailable(e.to_string()),
            other => LogError::NotFound(other.to_string()),
        };
        match handle.logs(request) {
            Err(e) => futures::stream::once(async move { Err(map_error(e)) }).boxed(),
            Ok(frames) => frames
                .map(move |f| f.map(|f| LogFrame { file: f.file, offset: f.offset, data: f.data }).map_err(map_error))
                .boxed(),
        }
    }
}

/// A temporary directory removed when dropped: a `-dev` client's data in memory mode.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_client_dir(env: &Env) -> anyhow::Result<TempDir> {
    let dir =
        std::env::temp_dir().join(format!("stead-dev-{}-{:08x}", std::process::id(), env.entropy.next_u64() as u32));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(TempDir(dir))
}

/// Runs the agent until Ctrl-C.
pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    let env = Env::system();
    let name = if config.name.is_empty() { hostname() } else { config.name.clone() };
    let shutdown = tokio::sync::watch::channel(false);
    let mut out = Vec::new();

    let grpc_listener = TcpListener::bind((config.bind_addr.as_str(), config.rpc_port))
        .await
        .with_context(|| format!("agent: listening for gRPC on {}:{}", config.bind_addr, config.rpc_port))?;
    let grpc_addr = grpc_listener.local_addr().context("agent: the gRPC listener's address")?;
    let mut grpc = Server::builder();
    let logs = ClientLogs::default();

    // --- server ---
    let mut server_parts = None;
    let mut http_task = None;
    let mut grpc_router = None;
    if let Some(server) = &config.server {
        let (db, where_) = open_store(&config)?;
        let store = Store::new(db);
        let registry = stead_server::metrics::Registry::new();
        let metrics = stead_server::metrics::SchedMetrics::new(&registry).context("registering metrics")?;
        let holder = format!("{name}-{:08x}", env.entropy.next_u64() as u32);
        let worker_config = stead_server::worker::WorkerConfig {
            name: holder.clone(),
            workers: server.num_schedulers,
            ..Default::default()
        };
        let sched = worker_config.sched.clone();
        let workers = stead_server::worker::start(store.clone(), env.clone(), worker_config, metrics, None);
        workers.warm_up().await.context("loading the cluster into the scheduler workers")?;
        let duty_config =
            stead_server::duties::DutyConfig { holder, heartbeat: server.heartbeat.clone(), ..Default::default() };
        let duties = stead_server::duties::start(store.clone(), env.clone(), duty_config);
        let plan_cache = Arc::new(tokio::sync::Mutex::new(stead_server::snapshot::ClusterCache::new()));

        let http_listener = TcpListener::bind((config.bind_addr.as_str(), config.http_port))
            .await
            .with_context(|| format!("agent: listening on {}:{}", config.bind_addr, config.http_port))?;
        let http_addr = http_listener.local_addr().context("agent: the listener's address")?;
        let state = Arc::new(crate::http::ApiState {
            store: store.clone(),
            env: env.clone(),
            sched: sched.clone(),
            cluster_seed: 0,
            server_addr: grpc_addr.to_string(),
            region: config.region.clone(),
            datacenter: config.datacenter.clone(),
            node_name: name.clone(),
            registry,
            acl: Default::default(),
            plan_cache: plan_cache.clone(),
        });
        let app = crate::http::router(state, config.http_body_limit);
        let mut stop = shutdown.1.clone();
        http_task = Some(tokio::spawn(async move {
            axum::serve(http_listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        }));
        let router = grpc
            .add_service(ClientProtocolService::new(store.clone(), env.clone(), server.heartbeat.clone()).into_server())
            .add_service(
                JobsService {
                    store: store.clone(),
                    env: env.clone(),
                    sched,
                    cluster_seed: 0,
                    plan_cache,
                    acl: Default::default(),
                }
                .into_server(),
            );
        grpc_router = Some(router);
        out.push(format!("HTTP API: http://{http_addr}"));
        out.push(format!("store: {where_}"));
        server_parts = Some((workers, duties));
    }

    // --- gRPC (the client's log service too, when it runs here) ---
    let router = match (grpc_router, config.client.is_some()) {
        (Some(r), true) => r.add_service(ClientFsService::new(Arc::new(logs.clone())).into_server()),
        (Some(r), false) => r,
        (None, _) => grpc.add_service(ClientFsService::new(Arc::new(logs.clone())).into_server()),
    };
    let mut stop = shutdown.1.clone();
    let grpc_task = tokio::spawn(router.serve_with_incoming_shutdown(TcpIncoming::from(grpc_listener), async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    out.push(format!("gRPC: {grpc_addr}"));

    // --- client ---
    let mut client_parts = None;
    if let Some(c) = &config.client {
        let (data_dir, temp) = match &config.data_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = temp_client_dir(&env)?;
                (t.0.clone(), Some(t))
            }
        };
        let servers = if c.servers.is_empty() { vec![advertised(grpc_addr, &config)] } else { c.servers.clone() };
        let link = GrpcServerLink::new(&servers).map_err(|e| anyhow::anyhow!("client.servers: {e}"))?;
        let mut attributes = std::collections::BTreeMap::new();
        attributes.insert(client_fs::RPC_ADDR_ATTRIBUTE.to_owned(), advertised(grpc_addr, &config));
        let client_config = ClientConfig {
            data_dir: data_dir.clone(),
            node_name: name.clone(),
            datacenter: config.datacenter.clone(),
            region: config.region.clone(),
            node_pool: c.node_pool.clone(),
            node_class: c.node_class.clone(),
            meta: c.meta.clone(),
            drivers: c.drivers.clone(),
            advertise_ip: config.advertise_ip(),
            http_addr: advertised(grpc_addr, &config),
            attributes,
            executor: ExecutorCommand::current_exe(),
            min_dynamic_port: c.dynamic_ports.0,
            max_dynamic_port: c.dynamic_ports.1,
            docker: c.docker.clone(),
            chroot_env: c.chroot_env.clone().unwrap_or_else(stead_client::config::default_chroot_env),
            ..ClientConfig::default()
        };
        let handle =
            Client::start(client_config, Arc::new(link), Platform::real()).await.context("starting the client")?;
        out.push(format!("client: node {} ({}), data in {}", handle.node_id(), name, data_dir.display()));
        *logs.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(handle);
        let mode = if config.data_dir.is_none() { ShutdownMode::StopTasks } else { ShutdownMode::LeaveTasksRunning };
        client_parts = Some((mode, temp));
    }

    let what = match (config.server.is_some(), config.client.is_some()) {
        (true, true) if config.dev => "in dev mode (server and client)",
        (true, true) => "(server and client)",
        (true, false) => "(server)",
        _ => "(client)",
    };
    println!("==> stead agent started {what}");
    for line in out {
        println!("    {line}");
    }
    println!("==> press Ctrl-C to stop");

    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    println!("==> stopping");
    // The client first, while the servers still take its last updates.
    if let Some((mode, temp)) = client_parts {
        let handle = logs.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(handle) = handle {
            handle.shutdown(mode).await;
        }
        drop(temp);
    }
    let _ = shutdown.0.send(true);
    if let Some(t) = http_task {
        t.await.context("the HTTP server task")?.context("serving HTTP")?;
    }
    grpc_task.await.context("the gRPC server task")?.context("serving gRPC")?;
    if let Some((workers, duties)) = server_parts {
        workers.shutdown().await;
        duties.shutdown().await;
    }
    println!("==> stopped");
    Ok(())
}

/// `addr` as others reach it: the advertised IP when the listener binds every address.
fn advertised(addr: SocketAddr, config: &AgentConfig) -> String {
    if addr.ip().is_unspecified() { format!("{}:{}", config.advertise_ip(), addr.port()) } else { addr.to_string() }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "stead".to_owned())
}
