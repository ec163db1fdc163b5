//! Nodes and jobs for tests, the simulator and benchmarks: small builders over the model
//! records with realistic defaults (a Linux node with the mock and raw_exec drivers; a
//! service job with one group of one task).

use std::collections::BTreeMap;

use stead_store::model::{
    DriverInfo, EphemeralDisk, Job, JobType, LogConfig, NetworkResource, Node, NodeCpuResources, NodeDiskResources,
    NodeMemoryResources, NodeResources, NodeStatus, Port, Resources, SchedulingEligibility, Task, TaskGroup,
};

/// A ready, eligible Linux node in `dc` with `cpu_mhz` MHz over 4 cores, `memory_mb` of
/// memory and 100 GB of disk, running the `mock` and `raw_exec` drivers.
pub fn node(id: &str, dc: &str, cpu_mhz: i64, memory_mb: i64) -> Node {
    Node {
        id: id.into(),
        name: format!("node-{id}"),
        datacenter: dc.to_owned(),
        node_class: "std".to_owned(),
        node_pool: "default".to_owned(),
        attributes: BTreeMap::from([
            ("kernel.name".to_owned(), "linux".to_owned()),
            ("cpu.arch".to_owned(), "amd64".to_owned()),
            ("unique.hostname".to_owned(), format!("host-{id}")),
        ]),
        node_resources: Some(NodeResources {
            cpu: NodeCpuResources { cpu_shares: cpu_mhz, total_cpu_cores: 4, ..Default::default() },
            memory: NodeMemoryResources { memory_mb, ..Default::default() },
            disk: NodeDiskResources { disk_mb: 100_000, ..Default::default() },
            networks: vec![NetworkResource { ip: "10.0.0.1".to_owned(), ..Default::default() }],
            ..Default::default()
        }),
        drivers: ["mock", "raw_exec"]
            .iter()
            .map(|d| ((*d).to_owned(), DriverInfo { detected: true, healthy: true, ..Default::default() }))
            .collect(),
        status: NodeStatus::Ready,
        scheduling_eligibility: SchedulingEligibility::Eligible,
        ..Node::default()
    }
}

/// A job of `kind` in namespace `default`: one group `g` of `count` allocations, one task
/// `t` on the `mock` driver asking for `cpu_mhz` and `memory_mb`, 10 MB of disk;
/// canonicalized (Nomad's defaults) at priority 50.
pub fn job(id: &str, kind: JobType, count: i32, cpu_mhz: i32, memory_mb: i32) -> Job {
    let mut job = Job {
        id: id.into(),
        name: id.to_owned(),
        namespace: "default".to_owned(),
        job_type: Some(kind),
        datacenters: vec!["*".to_owned()],
        task_groups: vec![TaskGroup {
            name: "g".to_owned(),
            count: Some(count),
            ephemeral_disk: Some(EphemeralDisk { size_mb: Some(10), ..Default::default() }),
            tasks: vec![Task {
                name: "t".to_owned(),
                driver: "mock".to_owned(),
                config: BTreeMap::from([("run_for".to_owned(), serde_json::json!("1h"))]),
                resources: Some(Resources { cpu: Some(cpu_mhz), memory_mb: Some(memory_mb), ..Default::default() }),
                // Logs fit the small disk, so the job validates as Nomad would check it.
                log_config: Some(LogConfig { max_files: Some(2), max_file_size_mb: Some(4), ..Default::default() }),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Job::default()
    };
    job.canonicalize();
    job
}

/// `job` with a group network of static ports (`label`, port) and dynamic ports.
pub fn with_ports(mut job: Job, statics: &[(&str, i32)], dynamics: &[&str]) -> Job {
    job.task_groups[0].networks = vec![NetworkResource {
        reserved_ports: statics
            .iter()
            .map(|&(l, v)| Port { label: l.into(), value: v, ..Default::default() })
            .collect(),
        dynamic_ports: dynamics.iter().map(|&l| Port { label: l.into(), to: -1, ..Default::default() }).collect(),
        ..Default::default()
    }];
    job
}
