//! The client's configuration: a plain struct with Nomad's defaults. The agent fills it from
//! flags and the HCL `client {}` block; tests and the simulator build it directly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use stead_model::StringMap;
use stead_model::resources::{DYNAMIC_PORT_MAX, DYNAMIC_PORT_MIN};

/// Drivers the client knows how to run.
pub const KNOWN_DRIVERS: &[&str] = &["raw_exec", "exec", "docker", "mock"];

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Everything the client keeps: `client/` (identity and state), `alloc/` (alloc dirs).
    pub data_dir: PathBuf,
    /// The node's name; empty means the host name.
    pub node_name: String,
    pub datacenter: String,
    pub region: String,
    pub node_pool: String,
    pub node_class: String,
    pub meta: StringMap,
    /// Node attributes the agent adds to what fingerprinting finds (they win on a clash),
    /// e.g. where this client's own gRPC services listen.
    pub attributes: StringMap,
    /// Enabled drivers, from [`KNOWN_DRIVERS`]. Unknown names are reported at start.
    pub drivers: Vec<String>,
    /// The IP tasks' ports are reachable at (the node's network, `NOMAD_IP_<label>`).
    pub advertise_ip: String,
    /// The agent's HTTP address as servers should reach it (`Node.HTTPAddr`).
    pub http_addr: String,
    /// How to start the raw_exec executor: `program args... <spec-file>`.
    pub executor: ExecutorCommand,
    pub min_dynamic_port: i32,
    pub max_dynamic_port: i32,
    pub reserved: ReservedConfig,
    /// Overrides of what fingerprinting finds (Nomad's `cpu_total_compute`,
    /// `memory_total_mb`, `disk_free_mb`), for hosts that report nothing useful.
    pub cpu_total_compute: Option<i64>,
    pub memory_total_mb: Option<i64>,
    pub disk_free_mb: Option<i64>,
    /// Allocation updates are coalesced per allocation and sent at most this often.
    pub alloc_update_interval: Duration,
    /// Heartbeats go out at TTL/2, earlier by up to this fraction of it (0..1), so that
    /// nodes that registered together do not stay in step.
    pub heartbeat_jitter: f64,
    /// Backoff of retried calls to the servers.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// A task's `kill_timeout` is capped at this (Nomad's `max_kill_timeout`).
    pub max_kill_timeout: Duration,
    /// How often a running raw_exec task's exit file and executor are looked at, and a
    /// followed log for growth.
    pub poll_interval: Duration,
    /// Host environment variables raw_exec tasks do not inherit (Nomad's `env.denylist`).
    pub env_denylist: Vec<String>,
    /// How often the drivers' health is fingerprinted again (Nomad: 30 s); a change
    /// updates the node.
    pub driver_fingerprint_interval: Duration,
    /// The docker driver's settings (Nomad's `plugin "docker" { config { ... } }`).
    pub docker: DockerConfig,
    /// The exec driver's chroot: host path → path inside the task directory (Nomad's
    /// `client.chroot_env`). Bind-mounted read-only.
    pub chroot_env: BTreeMap<String, String>,
    /// fsync every state write. Off, state still survives a crash of the client but not
    /// of the machine: for the simulator and benchmarks, where thousands of clients
    /// share one disk.
    pub durable_state: bool,
}

/// `program args...`; the spec file path is appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl ExecutorCommand {
    /// `<this binary> executor`: what the `stead` agent runs.
    pub fn current_exe() -> Self {
        let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("stead"));
        Self { program, args: vec!["executor".to_owned()] }
    }
}

/// The docker driver's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// The daemon's address: `unix:///var/run/docker.sock` (the default), `tcp://...`.
    pub endpoint: String,
    /// Whether tasks may set `privileged = true` (Nomad's `allow_privileged`, off).
    pub allow_privileged: bool,
    /// Whether tasks may mount host paths with `volumes` (Nomad's `volumes.enabled`).
    pub volumes_enabled: bool,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self { endpoint: "unix:///var/run/docker.sock".to_owned(), allow_privileged: false, volumes_enabled: true }
    }
}

/// Nomad's default `chroot_env`: what a dynamically linked program needs to run.
pub fn default_chroot_env() -> BTreeMap<String, String> {
    ["/bin", "/etc", "/lib", "/lib32", "/lib64", "/run/resolvconf", "/sbin", "/usr"]
        .into_iter()
        .map(|p| (p.to_owned(), p.to_owned()))
        .collect()
}

/// Resources kept back from tasks (Nomad's `client.reserved`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReservedConfig {
    pub cpu_mhz: i64,
    pub memory_mb: i64,
    pub disk_mb: i64,
    /// e.g. `"22,80,8000-8100"`.
    pub reserved_ports: String,
}

/// Nomad's default `env.denylist`: credentials of the agent that tasks must not see.
pub const DEFAULT_ENV_DENYLIST: &[&str] = &[
    "CONSUL_TOKEN",
    "CONSUL_HTTP_TOKEN",
    "CONSUL_HTTP_TOKEN_FILE",
    "NOMAD_TOKEN",
    "VAULT_TOKEN",
    "CONSUL_LICENSE",
    "NOMAD_LICENSE",
    "VAULT_LICENSE",
    "CONSUL_LICENSE_PATH",
    "NOMAD_LICENSE_PATH",
    "VAULT_LICENSE_PATH",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
];

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/var/lib/stead"),
            node_name: String::new(),
            datacenter: "dc1".to_owned(),
            region: "global".to_owned(),
            node_pool: "default".to_owned(),
            node_class: String::new(),
            meta: StringMap::new(),
            attributes: StringMap::new(),
            drivers: vec!["raw_exec".to_owned()],
            advertise_ip: "127.0.0.1".to_owned(),
            http_addr: "127.0.0.1:4646".to_owned(),
            executor: ExecutorCommand::current_exe(),
            min_dynamic_port: DYNAMIC_PORT_MIN,
            max_dynamic_port: DYNAMIC_PORT_MAX,
            reserved: ReservedConfig::default(),
            cpu_total_compute: None,
            memory_total_mb: None,
            disk_free_mb: None,
            // Nomad batches allocation updates every 200 ms (`allocSyncIntv`).
            alloc_update_interval: Duration::from_millis(200),
            heartbeat_jitter: 0.1,
            retry_base: Duration::from_millis(250),
            retry_max: Duration::from_secs(15),
            max_kill_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            env_denylist: DEFAULT_ENV_DENYLIST.iter().map(|s| (*s).to_owned()).collect(),
            driver_fingerprint_interval: Duration::from_secs(30),
            docker: DockerConfig::default(),
            chroot_env: default_chroot_env(),
            durable_state: true,
        }
    }
}

impl ClientConfig {
    /// Defaults with `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self { data_dir: data_dir.into(), ..Self::default() }
    }

    /// `<data_dir>/client`: the node identity and the persisted allocation state.
    pub fn state_dir(&self) -> PathBuf {
        self.data_dir.join("client")
    }

    /// `<data_dir>/alloc`: allocation directories, as Nomad lays them out.
    pub fn alloc_root(&self) -> PathBuf {
        self.data_dir.join("alloc")
    }

    pub fn driver_enabled(&self, name: &str) -> bool {
        self.drivers.iter().any(|d| d == name)
    }
}
