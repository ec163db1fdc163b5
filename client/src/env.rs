//! A task's environment, purely: Nomad's `NOMAD_*` variables (job spec §1.17), the
//! allocation's ports, the merged `meta`, and the task's `env` block with `${...}`
//! interpolated, so job files written for Nomad find what they expect. The same
//! interpolation applies to the strings of the driver `config` (`command`, `args`).
//!
//! Interpolation knows `${NOMAD_*}` and any other variable already in the environment,
//! `${env.X}`, `${node.unique.id}`, `${node.unique.name}`, `${node.datacenter}`,
//! `${node.region}`, `${node.class}`, `${node.pool}`, `${attr.X}` (node attributes) and
//! `${meta.X}` (node meta). Anything else is left as written, as Nomad does.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use stead_model::{Allocation, Job, Node, OpaqueMap, Task, TaskGroup};

use crate::allocdir::TaskDir;
use crate::driver::{FsIsolation, PortMapping, TaskResources};

/// What a task's environment is built from.
#[derive(Debug, Clone, Copy)]
pub struct EnvInput<'a> {
    pub alloc: &'a Allocation,
    pub job: &'a Job,
    pub group: &'a TaskGroup,
    pub task: &'a Task,
    pub node: &'a Node,
    /// The client's region, when the job names none.
    pub region: &'a str,
    /// `NOMAD_ALLOC_DIR`.
    pub alloc_dir: &'a Path,
    pub task_dir: &'a TaskDir,
    /// Inherited variables (the client's own, for drivers without isolation), lowest
    /// precedence.
    pub host_env: &'a BTreeMap<String, String>,
    /// Which paths the task sees: host paths, or `/alloc`, `/local`, `/secrets`.
    pub isolation: FsIsolation,
}

/// What the allocation gives `task`: its allocated CPU, cores and memory, else what the
/// task asked for.
pub fn task_resources(alloc: &Allocation, task: &Task) -> TaskResources {
    let given = alloc.allocated_resources.as_ref().and_then(|r| r.tasks.get(&task.name));
    let asked = task.resources.as_ref();
    let asked_int = |f: fn(&stead_model::Resources) -> Option<i32>| asked.and_then(f).map(i64::from);
    TaskResources {
        cpu_shares: given.map(|r| r.cpu.cpu_shares).or_else(|| asked_int(|r| r.cpu)).unwrap_or(0),
        cores: given.map(|r| r.cpu.reserved_cores.clone()).unwrap_or_default(),
        memory_mb: given.map(|r| r.memory.memory_mb).or_else(|| asked_int(|r| r.memory_mb)).unwrap_or(0),
        memory_max_mb: given.map(|r| r.memory.memory_max_mb).or_else(|| asked_int(|r| r.memory_max_mb)).unwrap_or(0),
    }
}

/// The allocation's ports as `task` sees them: the group's networks, then the task's own
/// (legacy). Each port's IP is its network's, else the host IP the scheduler noted, else
/// the node's address. Ports outside 1..=65535 (never assigned) are left out.
pub fn alloc_ports(alloc: &Allocation, node: &Node, task: &Task) -> Vec<PortMapping> {
    let Some(allocated) = alloc.allocated_resources.as_ref() else { return Vec::new() };
    let task_networks = allocated.tasks.get(&task.name).map(|t| t.networks.as_slice()).unwrap_or(&[]);
    let node_ip = node
        .node_resources
        .as_ref()
        .and_then(|r| r.networks.iter().map(|n| n.ip.clone()).find(|ip| !ip.is_empty()))
        .unwrap_or_default();
    let mapped_ip = allocated.shared.ports.iter().map(|p| p.host_ip.clone()).find(|ip| !ip.is_empty());
    let fallback_ip = mapped_ip.unwrap_or(node_ip);
    let mut ports = Vec::new();
    for net in allocated.shared.networks.iter().chain(task_networks) {
        let ip = if net.ip.is_empty() { fallback_ip.clone() } else { net.ip.clone() };
        for port in net.reserved_ports.iter().chain(&net.dynamic_ports) {
            let Some(value) = u16::try_from(port.value).ok().filter(|v| *v > 0) else { continue };
            ports.push(PortMapping {
                label: port.label.clone(),
                host_ip: ip.clone(),
                value,
                to: u16::try_from(port.to).unwrap_or(0),
            });
        }
    }
    ports
}

/// The environment of one task, and the node facts `${...}` may name.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEnv {
    vars: BTreeMap<String, String>,
    node: BTreeMap<String, String>,
}

/// A variable name from a label or key: characters other than letters, digits and `_`
/// become `_` (Nomad's `CleanEnvVar`).
pub fn clean_env_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// The index of `<job>.<group>[<index>]`.
fn alloc_index(name: &str) -> Option<u64> {
    let open = name.rfind('[')?;
    name.strip_suffix(']')?.get(open + 1..)?.parse().ok()
}

/// `0-2,5` for cores 0, 1, 2, 5 (the cpuset format of `NOMAD_CPU_CORES`, and of
/// `cpuset.cpus`).
pub(crate) fn cpuset(cores: &[u16]) -> String {
    let mut sorted = cores.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
        i += 1;
    }
    parts.join(",")
}

fn join_host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") }
}

impl TaskEnv {
    /// Builds the environment. Precedence, lowest first: `host_env`, Nomad's variables,
    /// ports, meta, the task's `env` block (interpolated against what comes before it).
    pub fn build(input: &EnvInput<'_>) -> TaskEnv {
        let EnvInput { alloc, job, group, task, node, .. } = *input;
        let mut vars = input.host_env.clone();
        let mut set = |k: &str, v: String| {
            vars.insert(k.to_owned(), v);
        };
        let path = |p: &Path| p.display().to_string();

        set("NOMAD_ALLOC_ID", alloc.id.to_string());
        set("NOMAD_SHORT_ALLOC_ID", alloc.id.as_str().chars().take(8).collect());
        set("NOMAD_ALLOC_NAME", alloc.name.clone());
        set("NOMAD_ALLOC_INDEX", alloc_index(&alloc.name).unwrap_or(0).to_string());
        set("NOMAD_JOB_ID", job.id.to_string());
        set("NOMAD_JOB_NAME", if job.name.is_empty() { job.id.to_string() } else { job.name.clone() });
        set("NOMAD_JOB_PARENT_ID", job.parent_id.to_string());
        set("NOMAD_GROUP_NAME", group.name.clone());
        set("NOMAD_TASK_NAME", task.name.clone());
        let namespace = [alloc.namespace.as_str(), job.namespace.as_str()].into_iter().find(|n| !n.is_empty());
        set("NOMAD_NAMESPACE", namespace.unwrap_or("default").to_owned());
        set("NOMAD_REGION", if job.region.is_empty() { input.region.to_owned() } else { job.region.clone() });
        set("NOMAD_DC", node.datacenter.clone());
        match input.isolation {
            FsIsolation::None => {
                set("NOMAD_ALLOC_DIR", path(input.alloc_dir));
                set("NOMAD_TASK_DIR", path(&input.task_dir.local));
                set("NOMAD_SECRETS_DIR", path(&input.task_dir.secrets));
            }
            // The task sees its directories mounted at fixed places.
            FsIsolation::Chroot | FsIsolation::Image => {
                set("NOMAD_ALLOC_DIR", "/alloc".to_owned());
                set("NOMAD_TASK_DIR", "/local".to_owned());
                set("NOMAD_SECRETS_DIR", "/secrets".to_owned());
            }
        }

        let resources = task_resources(alloc, task);
        set("NOMAD_CPU_LIMIT", resources.cpu_shares.to_string());
        if !resources.cores.is_empty() {
            set("NOMAD_CPU_CORES", cpuset(&resources.cores));
        }
        set("NOMAD_MEMORY_LIMIT", resources.memory_mb.to_string());
        if resources.memory_max_mb > 0 {
            set("NOMAD_MEMORY_MAX_LIMIT", resources.memory_max_mb.to_string());
        }
        for port in alloc_ports(alloc, node, task) {
            let label = clean_env_name(&port.label);
            let ip = port.host_ip.clone();
            set(&format!("NOMAD_IP_{label}"), ip.clone());
            set(&format!("NOMAD_PORT_{label}"), port.inside().to_string());
            set(&format!("NOMAD_ADDR_{label}"), join_host_port(&ip, port.value));
            set(&format!("NOMAD_HOST_IP_{label}"), ip.clone());
            set(&format!("NOMAD_HOST_PORT_{label}"), port.value.to_string());
            set(&format!("NOMAD_HOST_ADDR_{label}"), join_host_port(&ip, port.value));
        }

        // Meta merged downward: task over group over job. Both the key as written and
        // its upper-cased clean form, as Nomad sets both.
        let mut meta = job.meta.clone();
        meta.extend(group.meta.clone());
        meta.extend(task.meta.clone());
        for (k, v) in &meta {
            set(&format!("NOMAD_META_{k}"), v.clone());
            set(&format!("NOMAD_META_{}", clean_env_name(k).to_uppercase()), v.clone());
        }

        let mut node_vars = BTreeMap::from([
            ("node.unique.id".to_owned(), node.id.to_string()),
            ("node.unique.name".to_owned(), node.name.clone()),
            ("node.datacenter".to_owned(), node.datacenter.clone()),
            ("node.region".to_owned(), input.region.to_owned()),
            ("node.class".to_owned(), node.node_class.clone()),
            ("node.pool".to_owned(), node.node_pool.clone()),
        ]);
        node_vars.extend(node.attributes.iter().map(|(k, v)| (format!("attr.{k}"), v.clone())));
        node_vars.extend(node.meta.iter().map(|(k, v)| (format!("meta.{k}"), v.clone())));

        let mut env = TaskEnv { vars, node: node_vars };
        // The env block sees the environment before it, not its own other entries.
        let block: Vec<(String, String)> = task.env.iter().map(|(k, v)| (k.clone(), env.interpolate(v))).collect();
        env.vars.extend(block);
        env
    }

    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    pub fn into_vars(self) -> BTreeMap<String, String> {
        self.vars
    }

    fn lookup(&self, key: &str) -> Option<&str> {
        if let Some(name) = key.strip_prefix("env.") {
            return self.vars.get(name).map(String::as_str);
        }
        self.node.get(key).or_else(|| self.vars.get(key)).map(String::as_str)
    }

    /// Replaces every `${key}` this environment knows; leaves the rest as written.
    pub fn interpolate(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find('}') {
                Some(end) => {
                    let key = after[..end].trim();
                    match self.lookup(key) {
                        Some(value) => out.push_str(value),
                        None => out.push_str(&rest[start..start + 2 + end + 1]),
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The driver config with every string interpolated, in lists and maps too.
    pub fn interpolate_config(&self, config: &OpaqueMap) -> OpaqueMap {
        config.iter().map(|(k, v)| (k.clone(), self.interpolate_value(v))).collect()
    }

    fn interpolate_value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.interpolate(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.interpolate_value(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.interpolate_value(v))).collect())
            }
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use stead_model::{
        AllocatedCpuResources, AllocatedMemoryResources, AllocatedResources, AllocatedSharedResources,
        AllocatedTaskResources, NetworkResource, Port,
    };

    use super::*;

    struct Fixture {
        alloc: Allocation,
        job: Job,
        node: Node,
        task_dir: TaskDir,
        host_env: BTreeMap<String, String>,
    }

    fn fixture() -> Fixture {
        let task = Task {
            name: "web".to_owned(),
            driver: "raw_exec".to_owned(),
            meta: BTreeMap::from([("owner".to_owned(), "task".to_owned())]),
            env: BTreeMap::from([
                (
                    "GREETING".to_owned(),
                    "hi from ${NOMAD_TASK_NAME} on ${node.unique.name} (${attr.kernel.name})".to_owned(),
                ),
                ("RACK".to_owned(), "${meta.rack}".to_owned()),
                ("HOME_COPY".to_owned(), "${env.HOME}".to_owned()),
                ("LEFT".to_owned(), "${unknown.thing} and ${NOMAD_NOPE}".to_owned()),
            ]),
            ..Default::default()
        };
        let group = TaskGroup {
            name: "frontend".to_owned(),
            tasks: vec![task],
            meta: BTreeMap::from([
                ("owner".to_owned(), "group".to_owned()),
                ("team-name".to_owned(), "blue".to_owned()),
            ]),
            ..Default::default()
        };
        let job = Job {
            id: "shop".into(),
            name: "shop".to_owned(),
            region: "eu".to_owned(),
            namespace: "prod".to_owned(),
            task_groups: vec![group],
            meta: BTreeMap::from([("owner".to_owned(), "job".to_owned()), ("tier".to_owned(), "gold".to_owned())]),
            ..Default::default()
        };
        let alloc = Allocation {
            id: "0123456789abcdef".into(),
            name: "shop.frontend[3]".to_owned(),
            namespace: "prod".to_owned(),
            allocated_resources: Some(AllocatedResources {
                tasks: BTreeMap::from([(
                    "web".to_owned(),
                    AllocatedTaskResources {
                        cpu: AllocatedCpuResources {
                            cpu_shares: 500,
                            reserved_cores: vec![3, 0, 1],
                            ..Default::default()
                        },
                        memory: AllocatedMemoryResources { memory_mb: 256, memory_max_mb: 512, ..Default::default() },
                        ..Default::default()
                    },
                )]),
                shared: AllocatedSharedResources {
                    networks: vec![NetworkResource {
                        ip: "10.0.0.5".to_owned(),
                        dynamic_ports: vec![Port {
                            label: "http".to_owned(),
                            value: 23456,
                            to: 8080,
                            ..Default::default()
                        }],
                        reserved_ports: vec![Port { label: "admin-ui".to_owned(), value: 9000, ..Default::default() }],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        let node = Node {
            id: "node-1".into(),
            name: "host-a".to_owned(),
            datacenter: "dc2".to_owned(),
            attributes: BTreeMap::from([("kernel.name".to_owned(), "linux".to_owned())]),
            meta: BTreeMap::from([("rack".to_owned(), "r7".to_owned())]),
            ..Default::default()
        };
        let task_dir = TaskDir {
            dir: "/d/alloc/a/web".into(),
            local: "/d/alloc/a/web/local".into(),
            secrets: "/d/alloc/a/web/secrets".into(),
            tmp: "/d/alloc/a/web/tmp".into(),
        };
        let host_env = BTreeMap::from([
            ("HOME".to_owned(), "/home/me".to_owned()),
            ("NOMAD_TASK_NAME".to_owned(), "overridden".to_owned()),
        ]);
        Fixture { alloc, job, node, task_dir, host_env }
    }

    fn build(f: &Fixture) -> TaskEnv {
        let group = &f.job.task_groups[0];
        TaskEnv::build(&EnvInput {
            alloc: &f.alloc,
            job: &f.job,
            group,
            task: &group.tasks[0],
            node: &f.node,
            region: "global",
            alloc_dir: Path::new("/d/alloc/a/alloc"),
            task_dir: &f.task_dir,
            host_env: &f.host_env,
            isolation: FsIsolation::None,
        })
    }

    #[test]
    fn nomad_variables_name_the_allocation_job_task_and_dirs() {
        let f = fixture();
        let env = build(&f);
        let get = |k: &str| env.vars().get(k).map(String::as_str);
        assert_eq!(get("NOMAD_ALLOC_ID"), Some("0123456789abcdef"));
        assert_eq!(get("NOMAD_SHORT_ALLOC_ID"), Some("01234567"));
        assert_eq!(get("NOMAD_ALLOC_NAME"), Some("shop.frontend[3]"));
        assert_eq!(get("NOMAD_ALLOC_INDEX"), Some("3"));
        assert_eq!(get("NOMAD_JOB_ID"), Some("shop"));
        assert_eq!(get("NOMAD_JOB_NAME"), Some("shop"));
        assert_eq!(get("NOMAD_JOB_PARENT_ID"), Some(""));
        assert_eq!(get("NOMAD_GROUP_NAME"), Some("frontend"));
        assert_eq!(get("NOMAD_TASK_NAME"), Some("web"), "Nomad's variables win over the host's");
        assert_eq!(get("NOMAD_NAMESPACE"), Some("prod"));
        assert_eq!(get("NOMAD_REGION"), Some("eu"));
        assert_eq!(get("NOMAD_DC"), Some("dc2"));
        assert_eq!(get("NOMAD_ALLOC_DIR"), Some("/d/alloc/a/alloc"));
        assert_eq!(get("NOMAD_TASK_DIR"), Some("/d/alloc/a/web/local"));
        assert_eq!(get("NOMAD_SECRETS_DIR"), Some("/d/alloc/a/web/secrets"));
        assert_eq!(get("NOMAD_CPU_LIMIT"), Some("500"));
        assert_eq!(get("NOMAD_CPU_CORES"), Some("0-1,3"));
        assert_eq!(get("NOMAD_MEMORY_LIMIT"), Some("256"));
        assert_eq!(get("NOMAD_MEMORY_MAX_LIMIT"), Some("512"));
        assert_eq!(get("HOME"), Some("/home/me"));
    }

    #[test]
    fn ports_give_mapped_and_host_variables_per_label() {
        let env = build(&fixture());
        let get = |k: &str| env.vars().get(k).map(String::as_str);
        assert_eq!(get("NOMAD_PORT_http"), Some("8080"), "the mapped port when `to` is set");
        assert_eq!(get("NOMAD_HOST_PORT_http"), Some("23456"));
        assert_eq!(get("NOMAD_IP_http"), Some("10.0.0.5"));
        assert_eq!(get("NOMAD_ADDR_http"), Some("10.0.0.5:23456"));
        assert_eq!(get("NOMAD_HOST_IP_http"), Some("10.0.0.5"));
        assert_eq!(get("NOMAD_HOST_ADDR_http"), Some("10.0.0.5:23456"));
        assert_eq!(get("NOMAD_PORT_admin_ui"), Some("9000"), "labels are cleaned into names");
    }

    #[test]
    fn meta_merges_task_over_group_over_job_with_both_key_spellings() {
        let env = build(&fixture());
        let get = |k: &str| env.vars().get(k).map(String::as_str);
        assert_eq!(get("NOMAD_META_owner"), Some("task"));
        assert_eq!(get("NOMAD_META_OWNER"), Some("task"));
        assert_eq!(get("NOMAD_META_tier"), Some("gold"));
        assert_eq!(get("NOMAD_META_team-name"), Some("blue"));
        assert_eq!(get("NOMAD_META_TEAM_NAME"), Some("blue"));
    }

    #[test]
    fn env_block_interpolates_nomad_node_attr_meta_and_env_and_keeps_unknowns() {
        let env = build(&fixture());
        let get = |k: &str| env.vars().get(k).map(String::as_str);
        assert_eq!(get("GREETING"), Some("hi from web on host-a (linux)"));
        assert_eq!(get("RACK"), Some("r7"));
        assert_eq!(get("HOME_COPY"), Some("/home/me"));
        assert_eq!(get("LEFT"), Some("${unknown.thing} and ${NOMAD_NOPE}"));
    }

    #[test]
    fn driver_config_strings_are_interpolated_in_lists_and_maps() {
        let env = build(&fixture());
        let config: OpaqueMap = serde_json::from_value(json!({
            "command": "${NOMAD_TASK_DIR}/run",
            "args": ["--port", "${NOMAD_PORT_http}", 5, "${ unclosed"],
            "nested": {"k": "${node.datacenter}"}
        }))
        .unwrap();
        let out = env.interpolate_config(&config);
        assert_eq!(out["command"], json!("/d/alloc/a/web/local/run"));
        assert_eq!(out["args"], json!(["--port", "8080", 5, "${ unclosed"]));
        assert_eq!(out["nested"], json!({"k": "dc2"}));
    }

    #[test]
    fn small_helpers() {
        assert_eq!(alloc_index("a.b[12]"), Some(12));
        assert_eq!(alloc_index("x[y]"), None);
        assert_eq!(cpuset(&[5, 1, 2, 3, 7, 8]), "1-3,5,7-8");
        assert_eq!(join_host_port("::1", 80), "[::1]:80");
        assert_eq!(clean_env_name("a-b.c"), "a_b_c");
    }
}
