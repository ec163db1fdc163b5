//! The docker task `config` and what it becomes: a container create request.
//!
//! Pure: [`DockerTaskConfig::parse`] reads the map (unknown keys and wrong types are
//! `DriverError::Config`, never retried), [`container_body`] checks it against the client's
//! settings and the task's ports and builds the request bollard sends. No daemon, no I/O.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use bollard::auth::DockerCredentials;
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountBindOptions, MountBindOptionsPropagationEnum,
    MountTmpfsOptions, MountType, PortBinding,
};
use serde_json::{Map, Value};
use stead_model::OpaqueMap;

use super::super::config::ConfigFields;
use super::super::{DriverError, TaskSpec};
use crate::config::DockerConfig;

/// Keys the docker driver accepts. `auth_soft_fail` is accepted and ignored (stead has no
/// credential helpers whose failure it could soften).
pub const KEYS: &[&str] = &[
    "image",
    "command",
    "args",
    "entrypoint",
    "work_dir",
    "labels",
    "ports",
    "volumes",
    "mount",
    "mounts",
    "privileged",
    "force_pull",
    "hostname",
    "network_mode",
    "cpu_hard_limit",
    "cpu_cfs_period",
    "auth",
    "auth_soft_fail",
];

const MOUNT_KEYS: &[&str] = &["type", "source", "target", "readonly", "bind_options", "tmpfs_options"];
const AUTH_KEYS: &[&str] = &["username", "password", "email", "server_address"];

/// Docker's default CFS period (µs), and the range it accepts.
const CFS_PERIOD_DEFAULT: i64 = 100_000;
const CFS_PERIOD_RANGE: std::ops::RangeInclusive<i64> = 1_000..=1_000_000;
/// Docker refuses fewer CPU shares than this.
const CPU_SHARES_MIN: i64 = 2;
/// Docker's own json-file copy of a container's output is bounded: two files of the
/// task's `logs.max_file_size` (the driver copies it into the task's rotated files as it
/// comes, so the daemon's copy only needs to bridge a client restart).
const DOCKER_LOG_FILES: u32 = 2;
const MIB: i64 = 1 << 20;

/// Labels every container of stead carries; [`LABEL_ALLOC_ID`] and [`LABEL_TASK_NAME`]
/// are Nomad's, [`LABEL_MANAGED`] is stead's own so that its containers can be listed.
pub const LABEL_ALLOC_ID: &str = "com.hashicorp.nomad.alloc_id";
pub const LABEL_TASK_NAME: &str = "com.hashicorp.nomad.task_name";
pub const LABEL_MANAGED: &str = "io.stead.managed";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerTaskConfig {
    pub image: String,
    pub command: Option<String>,
    pub args: Vec<String>,
    /// `None` keeps the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    pub work_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Labels of the group's network ports to publish.
    pub ports: Vec<String>,
    /// `host:container[:mode]`.
    pub volumes: Vec<String>,
    pub mounts: Vec<MountConfig>,
    pub privileged: bool,
    pub force_pull: bool,
    pub hostname: Option<String>,
    pub network_mode: Option<String>,
    pub cpu_hard_limit: bool,
    pub cpu_cfs_period: Option<i64>,
    pub auth: Option<AuthConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountConfig {
    pub kind: MountKind,
    pub source: String,
    pub target: String,
    pub readonly: bool,
    pub propagation: Option<String>,
    pub tmpfs_size_bytes: Option<i64>,
    pub tmpfs_mode: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub username: Option<String>,
    pub password: Option<String>,
    pub email: Option<String>,
    pub server_address: Option<String>,
}

impl AuthConfig {
    pub fn credentials(&self) -> DockerCredentials {
        DockerCredentials {
            username: self.username.clone(),
            password: self.password.clone(),
            email: self.email.clone(),
            serveraddress: self.server_address.clone(),
            ..Default::default()
        }
    }
}

fn config_err(what: String) -> DriverError {
    DriverError::Config(format!("invalid docker config: {what}"))
}

/// A block written once (`{...}`) or repeated (`[{...}, ...]`, as HCL blocks arrive).
fn maps<'a>(key: &str, value: Option<&'a Value>) -> Result<Vec<&'a Map<String, Value>>, DriverError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => Ok(vec![m]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Object(m) => Ok(m),
                _ => Err(config_err(format!("\"{key}\" must be a list of maps"))),
            })
            .collect(),
        Some(_) => Err(config_err(format!("\"{key}\" must be a map or a list of maps"))),
    }
}

/// A single map, however HCL wrapped it.
fn one_map<'a>(key: &str, value: Option<&'a Value>) -> Result<Option<&'a Map<String, Value>>, DriverError> {
    let mut all = maps(key, value)?;
    if all.len() > 1 {
        return Err(config_err(format!("\"{key}\" may be given once")));
    }
    Ok(all.pop())
}

fn to_opaque(map: &Map<String, Value>) -> OpaqueMap {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn scalar_string(key: &str, v: &Value) -> Result<String, DriverError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(config_err(format!("\"{key}\" values must be strings"))),
    }
}

impl DockerTaskConfig {
    pub fn parse(config: &OpaqueMap) -> Result<Self, DriverError> {
        let f = ConfigFields::new("docker", config, KEYS)?;
        let entrypoint = match config.get("entrypoint") {
            None | Some(Value::Null) => None,
            Some(_) => Some(f.string_list("entrypoint")?),
        };
        let mut labels = BTreeMap::new();
        for m in maps("labels", config.get("labels"))? {
            for (k, v) in m {
                labels.insert(k.clone(), scalar_string("labels", v)?);
            }
        }
        let mut mounts = Vec::new();
        for key in ["mount", "mounts"] {
            for m in maps(key, config.get(key))? {
                mounts.push(parse_mount(key, m)?);
            }
        }
        let auth = match one_map("auth", config.get("auth"))? {
            None => None,
            Some(m) => {
                let map = to_opaque(m);
                let a = ConfigFields::new("docker", &map, AUTH_KEYS)?;
                Some(AuthConfig {
                    username: a.string("username")?,
                    password: a.string("password")?,
                    email: a.string("email")?,
                    server_address: a.string("server_address")?,
                })
            }
        };
        let cpu_cfs_period = f.int("cpu_cfs_period")?;
        if let Some(p) = cpu_cfs_period
            && !CFS_PERIOD_RANGE.contains(&p)
        {
            return Err(config_err(format!(
                "\"cpu_cfs_period\" must be between {} and {} microseconds, not {p}",
                CFS_PERIOD_RANGE.start(),
                CFS_PERIOD_RANGE.end()
            )));
        }
        let _ = f.bool("auth_soft_fail")?;
        Ok(Self {
            image: f.required_string("image")?,
            command: f.string("command")?.filter(|c| !c.is_empty()),
            args: f.string_list("args")?,
            entrypoint,
            work_dir: f.string("work_dir")?.filter(|w| !w.is_empty()),
            labels,
            ports: f.string_list("ports")?,
            volumes: f.string_list("volumes")?,
            mounts,
            privileged: f.bool("privileged")?.unwrap_or(false),
            force_pull: f.bool("force_pull")?.unwrap_or(false),
            hostname: f.string("hostname")?.filter(|h| !h.is_empty()),
            network_mode: f.string("network_mode")?.filter(|n| !n.is_empty()),
            cpu_hard_limit: f.bool("cpu_hard_limit")?.unwrap_or(false),
            cpu_cfs_period,
            auth,
        })
    }
}

fn parse_mount(key: &str, m: &Map<String, Value>) -> Result<MountConfig, DriverError> {
    let map = to_opaque(m);
    let f = ConfigFields::new("docker", &map, MOUNT_KEYS)
        .map_err(|e| DriverError::Config(format!("{e} (in \"{key}\")")))?;
    let kind = match f.string("type")?.as_deref().unwrap_or("volume") {
        "bind" => MountKind::Bind,
        "volume" => MountKind::Volume,
        "tmpfs" => MountKind::Tmpfs,
        other => {
            return Err(config_err(format!("{key} type \"{other}\" is not one of bind, volume, tmpfs")));
        }
    };
    let target =
        f.string("target")?.filter(|t| !t.is_empty()).ok_or_else(|| config_err(format!("{key} needs a \"target\"")))?;
    let source = f.string("source")?.unwrap_or_default();
    if kind == MountKind::Bind && source.is_empty() {
        return Err(config_err(format!("{key} of type bind needs a \"source\"")));
    }
    let mut propagation = None;
    if let Some(b) = one_map("bind_options", m.get("bind_options"))? {
        let map = to_opaque(b);
        propagation = ConfigFields::new("docker", &map, &["propagation"])?.string("propagation")?;
    }
    let (mut tmpfs_size_bytes, mut tmpfs_mode) = (None, None);
    if let Some(t) = one_map("tmpfs_options", m.get("tmpfs_options"))? {
        let map = to_opaque(t);
        let t = ConfigFields::new("docker", &map, &["size", "mode"])?;
        tmpfs_size_bytes = t.int("size")?;
        tmpfs_mode = t.int("mode")?;
    }
    Ok(MountConfig {
        kind,
        source,
        target,
        readonly: f.bool("readonly")?.unwrap_or(false),
        propagation,
        tmpfs_size_bytes,
        tmpfs_mode,
    })
}

/// `<task>-<alloc_id>`, with what Docker does not allow in a name (`[a-zA-Z0-9_.-]`)
/// replaced by `-`.
pub fn container_name(task: &str, alloc_id: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' }).collect()
    };
    format!("{}-{}", clean(task), clean(alloc_id))
}

/// `(repository, tag or digest)` of an image reference; the tag defaults to `latest`, as
/// `docker pull` does (an empty tag would make the daemon pull every tag).
pub fn split_reference(image: &str) -> (&str, &str) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo, digest);
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], &image[name_start + i + 1..]),
        None => (image, "latest"),
    }
}

/// Whether `rel` stays inside the directory it is relative to (no `..` above it).
fn stays_inside(rel: &Path) -> bool {
    let mut depth = 0i32;
    for c in rel.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Whether `root/rel` is still inside `root` once symlinks are resolved: the task writes
/// its own directory, and an earlier attempt may have left `local/x -> /` there. What
/// does not exist yet holds no link (Docker creates it as a directory); a `root` that
/// does not exist holds nothing at all.
fn resolves_inside(root: &Path, rel: &Path) -> bool {
    let Ok(real_root) = std::fs::canonicalize(root) else { return true };
    let mut probe = root.join(rel);
    loop {
        match std::fs::canonicalize(&probe) {
            Ok(real) => return real.starts_with(&real_root),
            Err(_) if probe.pop() && probe.starts_with(root) => continue,
            Err(_) => return true,
        }
    }
}

/// A host path of a volume or bind mount: relative ones are in the task directory and
/// always allowed; others (and relative ones a symlink leads out) only where the client
/// enables volumes (Nomad's rule).
fn host_path(spec: &TaskSpec, settings: &DockerConfig, path: &str, what: &str) -> Result<PathBuf, DriverError> {
    let p = Path::new(path);
    if !p.is_absolute() && stays_inside(p) && resolves_inside(&spec.task_dir, p) {
        return Ok(spec.task_dir.join(p));
    }
    if !settings.volumes_enabled {
        return Err(config_err(format!(
            "{what} mounts the host path \"{path}\", but volumes are disabled on this client; \
             use a path inside the task directory or enable docker volumes in the client configuration"
        )));
    }
    Ok(if p.is_absolute() { p.to_owned() } else { spec.task_dir.join(p) })
}

/// The container create request for one attempt of a task.
pub fn container_body(
    spec: &TaskSpec,
    cfg: &DockerTaskConfig,
    settings: &DockerConfig,
    cpu_mhz_per_core: u64,
) -> Result<ContainerCreateBody, DriverError> {
    if cfg.privileged && !settings.allow_privileged {
        return Err(config_err(
            "\"privileged\" is not allowed on this client; enable allow_privileged in its docker configuration"
                .to_owned(),
        ));
    }

    let mut binds = vec![
        format!("{}:/alloc", spec.alloc_dir.display()),
        format!("{}:/local", spec.task_dir.join("local").display()),
        format!("{}:/secrets", spec.task_dir.join("secrets").display()),
    ];
    for v in &cfg.volumes {
        let parts: Vec<&str> = v.splitn(3, ':').collect();
        let (host, container, mode) = match parts.as_slice() {
            [h, c] => (*h, *c, None),
            [h, c, m] => (*h, *c, Some(*m)),
            _ => return Err(config_err(format!("volume \"{v}\" is not \"host_path:container_path[:mode]\""))),
        };
        if host.is_empty() || container.is_empty() {
            return Err(config_err(format!("volume \"{v}\" is not \"host_path:container_path[:mode]\"")));
        }
        let host = host_path(spec, settings, host, &format!("volume \"{v}\""))?;
        let mut bind = format!("{}:{container}", host.display());
        if let Some(m) = mode {
            bind.push(':');
            bind.push_str(m);
        }
        binds.push(bind);
    }

    let mut mounts = Vec::new();
    for m in &cfg.mounts {
        let (typ, source) = match m.kind {
            MountKind::Bind => {
                let p = host_path(spec, settings, &m.source, &format!("bind mount of \"{}\"", m.target))?;
                (MountType::BIND, Some(p.display().to_string()))
            }
            MountKind::Volume => (MountType::VOLUME, Some(m.source.clone()).filter(|s| !s.is_empty())),
            MountKind::Tmpfs => (MountType::TMPFS, None),
        };
        let propagation = match m.propagation.as_deref() {
            None => None,
            Some(p) => {
                Some(serde_json::from_value::<MountBindOptionsPropagationEnum>(Value::String(p.to_owned())).map_err(
                    |_| {
                        config_err(format!(
                            "bind propagation \"{p}\" is not one of private, rprivate, shared, rshared, slave, rslave"
                        ))
                    },
                )?)
            }
        };
        mounts.push(Mount {
            target: Some(m.target.clone()),
            source,
            typ: Some(typ),
            read_only: Some(m.readonly),
            bind_options: propagation.map(|p| MountBindOptions { propagation: Some(p), ..Default::default() }),
            tmpfs_options: (m.kind == MountKind::Tmpfs && (m.tmpfs_size_bytes.is_some() || m.tmpfs_mode.is_some()))
                .then(|| MountTmpfsOptions {
                    size_bytes: m.tmpfs_size_bytes,
                    mode: m.tmpfs_mode,
                    ..Default::default()
                }),
            ..Default::default()
        });
    }

    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for label in &cfg.ports {
        let Some(port) = spec.ports.iter().find(|p| &p.label == label) else {
            let known: Vec<&str> = spec.ports.iter().map(|p| p.label.as_str()).collect();
            return Err(config_err(format!(
                "port \"{label}\" is not a port of the task group's network (its ports: {})",
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            )));
        };
        for proto in ["tcp", "udp"] {
            let key = format!("{}/{proto}", port.inside());
            exposed.push(key.clone());
            bindings.entry(key).or_insert_with(|| Some(Vec::new())).get_or_insert_with(Vec::new).push(PortBinding {
                host_ip: Some(port.host_ip.clone()).filter(|ip| !ip.is_empty()),
                host_port: Some(port.value.to_string()),
            });
        }
    }

    let r = &spec.resources;
    let limit_mb = r.memory_limit_mb();
    let memory = (limit_mb > 0).then(|| limit_mb.saturating_mul(MIB));
    let reservation = (r.memory_max_mb > r.memory_mb && r.memory_mb > 0).then(|| r.memory_mb.saturating_mul(MIB));
    let (cpu_period, cpu_quota) = if cfg.cpu_hard_limit && r.cpu_shares > 0 {
        let period = cfg.cpu_cfs_period.unwrap_or(CFS_PERIOD_DEFAULT);
        // The task's MHz as a share of one core's, in CFS time per period (Nomad's rule).
        let quota = (period as f64 * r.cpu_shares as f64 / cpu_mhz_per_core.max(1) as f64).round() as i64;
        (Some(period), Some(quota.max(1_000)))
    } else {
        (None, None)
    };
    let cpuset = (!r.cores.is_empty()).then(|| r.cores.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","));
    let log_config = HostConfigLogConfig {
        typ: Some("json-file".to_owned()),
        config: Some(HashMap::from([
            ("max-size".to_owned(), spec.log_limits.max_file_bytes.max(1 << 20).to_string()),
            ("max-file".to_owned(), DOCKER_LOG_FILES.to_string()),
        ])),
    };
    let host_config = HostConfig {
        binds: Some(binds),
        mounts: (!mounts.is_empty()).then_some(mounts),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        cpu_shares: Some(r.cpu_shares.max(CPU_SHARES_MIN)),
        cpuset_cpus: cpuset,
        cpu_period,
        cpu_quota,
        memory,
        // No swap on top of the limit: the limit is what the scheduler counted.
        memory_swap: memory,
        memory_reservation: reservation,
        privileged: Some(cfg.privileged),
        network_mode: cfg.network_mode.clone(),
        log_config: Some(log_config),
        ..Default::default()
    };

    let mut labels: HashMap<String, String> = cfg.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let from_env = [
        ("com.hashicorp.nomad.job_id", "NOMAD_JOB_ID"),
        ("com.hashicorp.nomad.job_name", "NOMAD_JOB_NAME"),
        ("com.hashicorp.nomad.namespace", "NOMAD_NAMESPACE"),
        ("com.hashicorp.nomad.task_group_name", "NOMAD_GROUP_NAME"),
    ];
    for (label, var) in from_env {
        if let Some(v) = spec.env.get(var) {
            labels.insert(label.to_owned(), v.clone());
        }
    }
    labels.insert(LABEL_ALLOC_ID.to_owned(), spec.alloc_id.to_string());
    labels.insert(LABEL_TASK_NAME.to_owned(), spec.task.clone());
    labels.insert(LABEL_MANAGED.to_owned(), "true".to_owned());

    let cmd: Vec<String> = cfg.command.iter().cloned().chain(cfg.args.iter().cloned()).collect();
    Ok(ContainerCreateBody {
        image: Some(cfg.image.clone()),
        cmd: (!cmd.is_empty()).then_some(cmd),
        entrypoint: cfg.entrypoint.clone(),
        working_dir: cfg.work_dir.clone(),
        hostname: cfg.hostname.clone(),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(host_config),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use stead_model::AllocId;

    use super::super::super::{PortMapping, TaskResources};
    use super::*;
    use crate::logs::LogLimits;

    fn map(v: Value) -> OpaqueMap {
        serde_json::from_value(v).unwrap()
    }

    fn spec(config: Value) -> TaskSpec {
        TaskSpec {
            alloc_id: AllocId::new("a1"),
            task: "web".to_owned(),
            config: map(config),
            env: BTreeMap::from([("NOMAD_JOB_ID".to_owned(), "shop".to_owned())]),
            task_dir: "/data/alloc/a1/web".into(),
            alloc_dir: "/data/alloc/a1/alloc".into(),
            logs_dir: "/data/alloc/a1/alloc/logs".into(),
            log_limits: LogLimits::default(),
            run_dir: "/data/run".into(),
            resources: TaskResources { cpu_shares: 500, cores: vec![], memory_mb: 256, memory_max_mb: 0 },
            ports: vec![PortMapping {
                label: "http".to_owned(),
                host_ip: "10.0.0.1".to_owned(),
                value: 23456,
                to: 8080,
            }],
        }
    }

    fn body(s: &TaskSpec, settings: &DockerConfig) -> Result<ContainerCreateBody, DriverError> {
        let cfg = DockerTaskConfig::parse(&s.config)?;
        container_body(s, &cfg, settings, 2000)
    }

    #[test]
    fn config_reads_nomads_keys_and_hcl_blocks() {
        let c = DockerTaskConfig::parse(&map(json!({
            "image": "redis:7", "command": "redis-server", "args": ["--port", 6379],
            "labels": [{"team": "a"}], "mount": [{"type": "tmpfs", "target": "/scratch", "tmpfs_options": [{"size": 1024}]}],
            "auth": [{"username": "u", "password": "p"}], "auth_soft_fail": true, "force_pull": "true"
        })))
        .unwrap();
        assert_eq!(c.image, "redis:7");
        assert_eq!(c.args, vec!["--port", "6379"]);
        assert_eq!(c.labels["team"], "a");
        assert_eq!(c.mounts[0].kind, MountKind::Tmpfs);
        assert_eq!(c.mounts[0].tmpfs_size_bytes, Some(1024));
        assert_eq!(c.auth.as_ref().and_then(|a| a.username.as_deref()), Some("u"));
        assert!(c.force_pull && !c.privileged);
    }

    #[test]
    fn config_errors_name_the_key() {
        let e = DockerTaskConfig::parse(&map(json!({"image": "x", "imagee": "y"}))).unwrap_err();
        assert!(e.to_string().contains("unknown key \"imagee\" (docker accepts: image, command"), "{e}");
        let e = DockerTaskConfig::parse(&map(json!({"command": "x"}))).unwrap_err();
        assert_eq!(e.to_string(), "invalid docker config: \"image\" is required");
        let e = DockerTaskConfig::parse(&map(json!({"image": "x", "mount": [{"type": "nfs", "target": "/a"}]})))
            .unwrap_err();
        assert!(e.to_string().contains("type \"nfs\""), "{e}");
        let e =
            DockerTaskConfig::parse(&map(json!({"image": "x", "mount": [{"target": "/a", "size": 1}]}))).unwrap_err();
        assert!(e.to_string().contains("unknown key \"size\""), "{e}");
        assert!(!e.recoverable());
    }

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(split_reference("redis"), ("redis", "latest"));
        assert_eq!(split_reference("redis:7"), ("redis", "7"));
        assert_eq!(split_reference("localhost:5000/team/app"), ("localhost:5000/team/app", "latest"));
        assert_eq!(split_reference("localhost:5000/app:v2"), ("localhost:5000/app", "v2"));
        assert_eq!(split_reference("app@sha256:abc"), ("app", "sha256:abc"));
    }

    #[test]
    fn container_names_are_task_dash_alloc_in_dockers_alphabet() {
        assert_eq!(container_name("web", "0b7a-41c2"), "web-0b7a-41c2");
        assert_eq!(container_name("my task/1", "a"), "my-task-1-a");
    }

    #[test]
    fn body_publishes_ports_mounts_task_dirs_and_sets_resources() {
        let s = spec(json!({"image": "redis", "ports": ["http"], "volumes": ["data:/data:ro"]}));
        let b = body(&s, &DockerConfig::default()).unwrap();
        let hc = b.host_config.unwrap();
        let binds = hc.binds.unwrap();
        assert_eq!(
            binds,
            vec![
                "/data/alloc/a1/alloc:/alloc",
                "/data/alloc/a1/web/local:/local",
                "/data/alloc/a1/web/secrets:/secrets",
                "/data/alloc/a1/web/data:/data:ro"
            ]
        );
        let mut exposed = b.exposed_ports.unwrap();
        exposed.sort();
        assert_eq!(exposed, vec!["8080/tcp", "8080/udp"]);
        let ports = hc.port_bindings.unwrap();
        let tcp = ports["8080/tcp"].as_ref().unwrap();
        assert_eq!((tcp[0].host_ip.as_deref(), tcp[0].host_port.as_deref()), (Some("10.0.0.1"), Some("23456")));
        assert_eq!(hc.memory, Some(256 * MIB));
        assert_eq!(hc.memory_reservation, None);
        assert_eq!(hc.cpu_shares, Some(500));
        assert_eq!(hc.privileged, Some(false));
        let labels = b.labels.unwrap();
        assert_eq!(labels[LABEL_ALLOC_ID], "a1");
        assert_eq!(labels["com.hashicorp.nomad.job_id"], "shop");
    }

    #[test]
    fn memory_max_is_the_limit_and_memory_the_reservation() {
        let mut s = spec(json!({"image": "x", "cpu_hard_limit": true}));
        s.resources = TaskResources { cpu_shares: 1000, cores: vec![0, 1], memory_mb: 128, memory_max_mb: 512 };
        let hc = body(&s, &DockerConfig::default()).unwrap().host_config.unwrap();
        assert_eq!((hc.memory, hc.memory_reservation), (Some(512 * MIB), Some(128 * MIB)));
        assert_eq!(hc.cpuset_cpus.as_deref(), Some("0,1"));
        // 1000 MHz of 2000 MHz cores: half of each period.
        assert_eq!((hc.cpu_period, hc.cpu_quota), (Some(100_000), Some(50_000)));
    }

    #[test]
    fn privileged_host_volumes_and_unknown_ports_are_refused() {
        let e = body(&spec(json!({"image": "x", "privileged": true})), &DockerConfig::default()).unwrap_err();
        assert!(e.to_string().contains("allow_privileged"), "{e}");
        let allowed = DockerConfig { allow_privileged: true, ..DockerConfig::default() };
        assert!(body(&spec(json!({"image": "x", "privileged": true})), &allowed).is_ok());

        let closed = DockerConfig { volumes_enabled: false, ..DockerConfig::default() };
        let e = body(&spec(json!({"image": "x", "volumes": ["/etc:/host-etc"]})), &closed).unwrap_err();
        assert!(e.to_string().contains("volumes are disabled"), "{e}");
        let e = body(&spec(json!({"image": "x", "volumes": ["../../x:/x"]})), &closed).unwrap_err();
        assert!(e.to_string().contains("volumes are disabled"), "{e}");
        assert!(body(&spec(json!({"image": "x", "volumes": ["local/conf:/etc/app"]})), &closed).is_ok());
        let e = body(&spec(json!({"image": "x", "mount": [{"type": "bind", "source": "/", "target": "/h"}]})), &closed)
            .unwrap_err();
        assert!(e.to_string().contains("volumes are disabled"), "{e}");

        // A link an earlier attempt left in the task directory does not lead out.
        let tmp = tempfile::tempdir().unwrap();
        let mut linked = spec(json!({"image": "x", "volumes": ["local/x:/host", "local/real:/ok"]}));
        linked.task_dir = tmp.path().join("web");
        std::fs::create_dir_all(linked.task_dir.join("local/real")).unwrap();
        std::os::unix::fs::symlink("/", linked.task_dir.join("local/x")).unwrap();
        let e = body(&linked, &closed).unwrap_err();
        assert!(e.to_string().contains("\"local/x\"") && e.to_string().contains("volumes are disabled"), "{e}");
        linked.config = map(json!({"image": "x", "volumes": ["local/real/new:/ok"]}));
        assert!(body(&linked, &closed).is_ok(), "a path inside that does not exist yet is fine");

        let e = body(&spec(json!({"image": "x", "ports": ["db"]})), &DockerConfig::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid docker config: port \"db\" is not a port of the task group's network (its ports: http)"
        );
    }
}
