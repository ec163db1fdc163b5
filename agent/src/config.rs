//! The agent's configuration: Nomad-style HCL files (`stead agent -config FILE`, given
//! more than once they merge in order) and the `-dev` preset.
//!
//! ```hcl
//! name       = "node-1"            # default: the host name
//! region     = "global"
//! datacenter = "dc1"
//! data_dir   = "/var/lib/stead"    # required unless -dev
//! bind_addr  = "0.0.0.0"           # default 127.0.0.1
//! ports { http = 4646  rpc = 4647 }
//!
//! store {
//!   embedded {}                                          # the default
//!   # fdb { cluster_file = "/etc/foundationdb/fdb.cluster" }
//! }
//!
//! server {
//!   enabled                   = true
//!   num_schedulers            = 2
//!   heartbeat_grace           = "10s"
//!   min_heartbeat_ttl         = "10s"
//!   max_heartbeats_per_second = 50
//!   failover_heartbeat_ttl    = "5m"
//! }
//!
//! client {
//!   enabled    = true
//!   servers    = ["10.0.0.1:4647"]   # default: this agent's own server
//!   node_class = "web"
//!   node_pool  = "default"
//!   drivers    = ["raw_exec", "exec", "docker", "mock"]
//!   meta { rack = "r1" }
//!   min_dynamic_port = 20000             # the range dynamic ports come from
//!   max_dynamic_port = 32000
//!   chroot_env = { "/bin" = "/bin" }     # exec's chroot; default: Nomad's list
//! }
//!
//! plugin "docker" {
//!   config {
//!     endpoint         = "unix:///var/run/docker.sock"
//!     allow_privileged = false
//!     volumes { enabled = true }
//!   }
//! }
//! ```
//!
//! Unknown blocks and attributes are errors that name them: a misspelt option must not be
//! silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// One file as written (every field optional: files merge).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    region: Option<String>,
    datacenter: Option<String>,
    data_dir: Option<String>,
    bind_addr: Option<String>,
    ports: Option<PortsFile>,
    store: Option<StoreFile>,
    server: Option<ServerFile>,
    client: Option<ClientFile>,
    /// `plugin "<driver>" { config { ... } }`.
    plugin: Option<BTreeMap<String, PluginFile>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginFile {
    config: Option<DockerPluginFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DockerPluginFile {
    endpoint: Option<String>,
    allow_privileged: Option<bool>,
    volumes: Option<DockerVolumesFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DockerVolumesFile {
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortsFile {
    http: Option<u16>,
    rpc: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    embedded: Option<EmbeddedFile>,
    fdb: Option<FdbFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddedFile {}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FdbFile {
    cluster_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    enabled: Option<bool>,
    num_schedulers: Option<usize>,
    heartbeat_grace: Option<String>,
    min_heartbeat_ttl: Option<String>,
    max_heartbeats_per_second: Option<f64>,
    failover_heartbeat_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    enabled: Option<bool>,
    servers: Option<Vec<String>>,
    node_class: Option<String>,
    node_pool: Option<String>,
    drivers: Option<Vec<String>>,
    meta: Option<BTreeMap<String, String>>,
    network_interface_ip: Option<String>,
    min_dynamic_port: Option<i32>,
    max_dynamic_port: Option<i32>,
    chroot_env: Option<BTreeMap<String, String>>,
}

/// Where state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded engine, durable under `<data_dir>/server` (in memory without a data
    /// dir: `-dev` only).
    Embedded,
    /// A FoundationDB cluster: any number of servers may share it.
    Fdb { cluster_file: Option<PathBuf> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub num_schedulers: usize,
    pub heartbeat: stead_server::clients::HeartbeatConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// Servers' gRPC addresses; empty: this agent's own server.
    pub servers: Vec<String>,
    pub node_class: String,
    pub node_pool: String,
    pub drivers: Vec<String>,
    pub meta: BTreeMap<String, String>,
    /// The IP tasks' ports are reachable at; default: the bind address (or 127.0.0.1 when
    /// it binds every address).
    pub advertise_ip: Option<String>,
    /// Dynamic ports are picked from `min..=max`.
    pub dynamic_ports: (i32, i32),
    /// The exec driver's chroot (host path → path inside); `None`: Nomad's default.
    pub chroot_env: Option<BTreeMap<String, String>>,
    pub docker: stead_client::DockerConfig,
}

impl ClientSettings {
    fn new(drivers: &[&str]) -> Self {
        ClientSettings {
            servers: Vec::new(),
            node_class: String::new(),
            node_pool: "default".to_owned(),
            drivers: drivers.iter().map(|d| (*d).to_owned()).collect(),
            meta: BTreeMap::new(),
            advertise_ip: None,
            dynamic_ports: (
                stead_store::model::resources::DYNAMIC_PORT_MIN,
                stead_store::model::resources::DYNAMIC_PORT_MAX,
            ),
            chroot_env: None,
            docker: Default::default(),
        }
    }
}

/// The whole configuration an agent runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    pub name: String,
    pub region: String,
    pub datacenter: String,
    /// None: in memory (`-dev` without `-data-dir`).
    pub data_dir: Option<PathBuf>,
    pub bind_addr: String,
    pub http_port: u16,
    pub rpc_port: u16,
    pub store: StoreConfig,
    pub server: Option<ServerConfig>,
    pub client: Option<ClientSettings>,
    pub dev: bool,
    /// Request bodies over this many bytes are refused with 413.
    pub http_body_limit: usize,
}

/// Request bodies above this many bytes are refused with 413 (`-http-max-body-bytes`).
pub const BODY_LIMIT_DEFAULT: usize = 16 * 1024 * 1024;

impl AgentConfig {
    /// Nomad's `-dev`: a server and a client in one process, in memory, on 127.0.0.1.
    pub fn dev() -> Self {
        AgentConfig {
            name: "dev".to_owned(),
            region: "global".to_owned(),
            datacenter: "dc1".to_owned(),
            data_dir: None,
            bind_addr: "127.0.0.1".to_owned(),
            http_port: 4646,
            rpc_port: 4647,
            store: StoreConfig::Embedded,
            server: Some(ServerConfig { num_schedulers: 2, heartbeat: Default::default() }),
            client: Some(ClientSettings::new(&["raw_exec", "exec", "docker", "mock"])),
            dev: true,
            http_body_limit: BODY_LIMIT_DEFAULT,
        }
    }

    /// The defaults a configuration file starts from (neither server nor client until a
    /// block enables one).
    fn base() -> Self {
        AgentConfig { name: String::new(), server: None, client: None, dev: false, ..AgentConfig::dev() }
    }

    /// Reads `files` in order over the defaults (`-dev` when `dev`).
    pub fn load(files: &[PathBuf], dev: bool) -> anyhow::Result<Self> {
        let mut config = if dev { AgentConfig::dev() } else { AgentConfig::base() };
        for path in files {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            config.merge(path, &text)?;
        }
        config.check()?;
        Ok(config)
    }

    /// Applies one file's settings (`path` names it in errors).
    pub fn merge(&mut self, path: &Path, text: &str) -> anyhow::Result<()> {
        let file: File = hcl::from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let at = |what: &str| format!("{}: {what}", path.display());
        set(&mut self.name, file.name);
        set(&mut self.region, file.region);
        set(&mut self.datacenter, file.datacenter);
        if let Some(d) = file.data_dir {
            self.data_dir = Some(PathBuf::from(d));
        }
        set(&mut self.bind_addr, file.bind_addr);
        if let Some(p) = file.ports {
            set(&mut self.http_port, p.http);
            set(&mut self.rpc_port, p.rpc);
        }
        if let Some(s) = file.store {
            self.store = match (s.embedded, s.fdb) {
                (Some(_), Some(_)) => bail!(at("store: choose one of embedded {} and fdb {}")),
                (_, Some(f)) => StoreConfig::Fdb { cluster_file: f.cluster_file.map(PathBuf::from) },
                _ => StoreConfig::Embedded,
            };
        }
        if let Some(s) = file.server {
            if s.enabled == Some(false) {
                self.server = None;
            } else if s.enabled == Some(true) || self.server.is_some() {
                let mut server =
                    self.server.take().unwrap_or(ServerConfig { num_schedulers: 2, heartbeat: Default::default() });
                set(&mut server.num_schedulers, s.num_schedulers);
                let hb = &mut server.heartbeat;
                set_duration(&mut hb.grace, s.heartbeat_grace, &at("server.heartbeat_grace"))?;
                set_duration(&mut hb.min_ttl, s.min_heartbeat_ttl, &at("server.min_heartbeat_ttl"))?;
                set_duration(&mut hb.failover_ttl, s.failover_heartbeat_ttl, &at("server.failover_heartbeat_ttl"))?;
                if let Some(rate) = s.max_heartbeats_per_second {
                    if !(rate > 0.0 && rate.is_finite()) {
                        bail!(at(&format!("server.max_heartbeats_per_second: {rate} is not a positive number")));
                    }
                    hb.max_per_second = rate;
                }
                self.server = Some(server);
            }
        }
        if let Some(c) = file.client {
            if c.enabled == Some(false) {
                self.client = None;
            } else if c.enabled == Some(true) || self.client.is_some() {
                let mut client = self.client.take().unwrap_or_else(|| ClientSettings::new(&["raw_exec", "mock"]));
                set(&mut client.servers, c.servers);
                set(&mut client.node_class, c.node_class);
                set(&mut client.node_pool, c.node_pool);
                set(&mut client.drivers, c.drivers);
                if let Some(meta) = c.meta {
                    client.meta.extend(meta);
                }
                if let Some(ip) = c.network_interface_ip {
                    client.advertise_ip = Some(ip);
                }
                set(&mut client.dynamic_ports.0, c.min_dynamic_port);
                set(&mut client.dynamic_ports.1, c.max_dynamic_port);
                if let Some(chroot) = c.chroot_env {
                    client.chroot_env = Some(chroot);
                }
                self.client = Some(client);
            }
        }
        for (name, plugin) in file.plugin.unwrap_or_default() {
            if name != "docker" {
                bail!(at(&format!("plugin {name:?}: only plugin \"docker\" takes settings")));
            }
            let Some(client) = self.client.as_mut() else {
                bail!(at("plugin \"docker\": no client is enabled (client { enabled = true })"));
            };
            let docker = &mut client.docker;
            let config = plugin.config.unwrap_or_default();
            set(&mut docker.endpoint, config.endpoint);
            set(&mut docker.allow_privileged, config.allow_privileged);
            set(&mut docker.volumes_enabled, config.volumes.and_then(|v| v.enabled));
        }
        Ok(())
    }

    /// What must hold whatever the files said.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.server.is_none() && self.client.is_none() {
            bail!(
                "agent: neither a server nor a client is enabled (server {{ enabled = true }}, client {{ enabled = true }}, or -dev)"
            );
        }
        if !self.dev && self.data_dir.is_none() {
            bail!("agent: data_dir is required (outside -dev, state must survive restarts)");
        }
        if let Some(s) = &self.server
            && s.num_schedulers == 0
        {
            bail!("agent: server.num_schedulers must be at least 1");
        }
        if let Some(c) = &self.client {
            if self.server.is_none() && c.servers.is_empty() {
                bail!("agent: a client without a server in this agent needs client.servers = [\"host:port\", ...]");
            }
            let (min, max) = c.dynamic_ports;
            if !(1..=65535).contains(&min) || !(1..=65535).contains(&max) || min > max {
                bail!(
                    "agent: client.min_dynamic_port ({min}) and max_dynamic_port ({max}) must be ports with min <= max"
                );
            }
            if let Some((host, inside)) =
                c.chroot_env.iter().flatten().find(|(h, i)| !h.starts_with('/') || !i.starts_with('/'))
            {
                bail!("agent: client.chroot_env: {host:?} = {inside:?}: both paths must be absolute");
            }
            for d in &c.drivers {
                if !stead_client::config::KNOWN_DRIVERS.contains(&d.as_str()) {
                    bail!(
                        "agent: client.drivers: unknown driver {d:?} (known: {})",
                        stead_client::config::KNOWN_DRIVERS.join(", ")
                    );
                }
            }
        }
        Ok(())
    }

    /// The address tasks' ports and this node's services are reached at.
    pub fn advertise_ip(&self) -> String {
        if let Some(ip) = self.client.as_ref().and_then(|c| c.advertise_ip.clone()) {
            return ip;
        }
        match self.bind_addr.as_str() {
            "0.0.0.0" | "::" | "[::]" => "127.0.0.1".to_owned(),
            other => other.to_owned(),
        }
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

fn set_duration(field: &mut Duration, value: Option<String>, what: &str) -> anyhow::Result<()> {
    if let Some(text) = value {
        let nanos: stead_store::model::Nanos = text.parse().map_err(|why| anyhow::anyhow!("{what}: {why}"))?;
        *field = nanos.to_std().ok_or_else(|| anyhow::anyhow!("{what}: {text:?} must not be negative"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> anyhow::Result<AgentConfig> {
        let mut c = AgentConfig::base();
        c.merge(Path::new("agent.hcl"), text)?;
        c.check()?;
        Ok(c)
    }

    #[test]
    fn a_config_file_runs_a_server_a_client_or_both() {
        let server = load("data_dir = \"/d\"\nserver { enabled = true }").unwrap();
        assert!(server.server.is_some() && server.client.is_none());
        let client = load("data_dir = \"/d\"\nclient {\n enabled = true\n servers = [\"10.0.0.1:4647\"]\n}").unwrap();
        assert!(client.server.is_none());
        assert_eq!(client.client.unwrap().servers, vec!["10.0.0.1:4647".to_owned()]);
        let both = load(
            "data_dir = \"/d\"\nbind_addr = \"0.0.0.0\"\nports {\n http = 5646\n rpc = 5647\n}\n\
             server {\n enabled = true\n heartbeat_grace = \"2s\"\n min_heartbeat_ttl = \"1s\"\n}\n\
             client {\n enabled = true\n meta { rack = \"r1\" }\n}",
        )
        .unwrap();
        assert_eq!((both.http_port, both.rpc_port), (5646, 5647));
        let hb = &both.server.as_ref().unwrap().heartbeat;
        assert_eq!((hb.grace, hb.min_ttl), (Duration::from_secs(2), Duration::from_secs(1)));
        assert_eq!(both.client.as_ref().unwrap().meta["rack"], "r1");
        assert_eq!(both.advertise_ip(), "127.0.0.1");
    }

    #[test]
    fn the_store_is_embedded_unless_an_fdb_block_names_a_cluster() {
        let c = load("data_dir = \"/d\"\nserver { enabled = true }").unwrap();
        assert_eq!(c.store, StoreConfig::Embedded);
        let c = load(
            "data_dir = \"/d\"\nserver { enabled = true }\nstore {\n fdb { cluster_file = \"/etc/fdb.cluster\" }\n}",
        )
        .unwrap();
        assert_eq!(c.store, StoreConfig::Fdb { cluster_file: Some(PathBuf::from("/etc/fdb.cluster")) });
        let err = load("data_dir = \"/d\"\nserver { enabled = true }\nstore {\n embedded {}\n fdb {}\n}").unwrap_err();
        assert!(err.to_string().contains("choose one"), "{err}");
    }

    #[test]
    fn driver_settings_come_from_the_client_block_and_the_docker_plugin_block() {
        let c = load(
            "data_dir = \"/d\"\nserver { enabled = true }\n\
             client {\n enabled = true\n drivers = [\"docker\", \"exec\"]\n min_dynamic_port = 30000\n max_dynamic_port = 30010\n\
             chroot_env = { \"/bin\" = \"/bin\", \"/opt/lib\" = \"/lib\" }\n}\n\
             plugin \"docker\" {\n config {\n endpoint = \"tcp://10.0.0.9:2375\"\n allow_privileged = true\n volumes { enabled = false }\n }\n}",
        )
        .unwrap();
        let client = c.client.unwrap();
        assert_eq!(client.dynamic_ports, (30000, 30010));
        assert_eq!(client.chroot_env.unwrap().get("/opt/lib").map(String::as_str), Some("/lib"));
        assert_eq!(
            client.docker,
            stead_client::DockerConfig {
                endpoint: "tcp://10.0.0.9:2375".to_owned(),
                allow_privileged: true,
                volumes_enabled: false
            }
        );
        let defaults = load("data_dir = \"/d\"\nserver { enabled = true }\nclient { enabled = true }").unwrap();
        let defaults = defaults.client.unwrap();
        assert_eq!(defaults.docker, stead_client::DockerConfig::default());
        assert!(!defaults.docker.allow_privileged, "privileged containers are off unless allowed");

        let bad = |text: &str| {
            load(&format!("data_dir = \"/d\"\nserver {{ enabled = true }}\n{text}")).unwrap_err().to_string()
        };
        let err = bad("client {\n enabled = true\n min_dynamic_port = 40000\n max_dynamic_port = 30000\n}");
        assert!(err.contains("min_dynamic_port (40000)"), "{err}");
        let err = bad("client {\n enabled = true\n chroot_env = { \"bin\" = \"/bin\" }\n}");
        assert!(err.contains("chroot_env") && err.contains("absolute"), "{err}");
        let err = bad("client { enabled = true }\nplugin \"podman\" {\n config {}\n}");
        assert!(err.contains("plugin \"podman\""), "{err}");
        let err = bad("client { enabled = true }\nplugin \"docker\" {\n config { endpont = \"x\" }\n}");
        assert!(err.contains("endpont"), "{err}");
        let err = bad("plugin \"docker\" {\n config {}\n}");
        assert!(err.contains("no client is enabled"), "{err}");
    }

    #[test]
    fn mistakes_in_a_config_file_are_errors_that_name_the_file_and_the_setting() {
        let err = load("data_dir = \"/d\"\nserver { enabeld = true }").unwrap_err().to_string();
        assert!(err.contains("agent.hcl") && err.contains("enabeld"), "{err}");
        let err = load("data_dir = \"/d\"\nserver {\n enabled = true\n heartbeat_grace = \"ten\"\n}").unwrap_err();
        assert!(err.to_string().contains("server.heartbeat_grace"), "{err}");
        let err = load("server { enabled = true }").unwrap_err();
        assert!(err.to_string().contains("data_dir"), "{err}");
        let err = load("data_dir = \"/d\"\nclient { enabled = true }").unwrap_err();
        assert!(err.to_string().contains("client.servers"), "{err}");
        let err = load(
            "data_dir = \"/d\"\nserver { enabled = true }\nclient {\n enabled = true\n drivers = [\"docker2\"]\n}",
        )
        .unwrap_err();
        assert!(err.to_string().contains("docker2"), "{err}");
        let err = load("data_dir = \"/d\"").unwrap_err();
        assert!(err.to_string().contains("neither a server nor a client"), "{err}");
        let err = load("data_dir = ").unwrap_err();
        assert!(err.to_string().contains("agent.hcl"), "{err}");
    }
}
