//! Shared fixtures for the placement tests (a folder, so cargo does not build it as a test
//! target of its own).

#![allow(dead_code)]

use std::collections::BTreeMap;

use stead_model::{
    DriverInfo, EphemeralDisk, Job, JobType, NetworkResource, Node, NodeCpuResources, NodeDiskResources,
    NodeMemoryResources, NodeResources, NodeStatus, Port, Resources, SchedulingEligibility, Task, TaskGroup,
};

pub fn node(id: &str, dc: &str, cpu: i64, mem: i64) -> Node {
    Node {
        id: id.into(),
        name: format!("name-{id}"),
        datacenter: dc.to_owned(),
        node_class: "std".to_owned(),
        attributes: BTreeMap::from([("kernel.name".to_owned(), "linux".to_owned())]),
        node_resources: Some(NodeResources {
            cpu: NodeCpuResources { cpu_shares: cpu, total_cpu_cores: 4, ..Default::default() },
            memory: NodeMemoryResources { memory_mb: mem, ..Default::default() },
            disk: NodeDiskResources { disk_mb: 100_000, ..Default::default() },
            ..Default::default()
        }),
        drivers: BTreeMap::from([(
            "docker".to_owned(),
            DriverInfo { detected: true, healthy: true, ..Default::default() },
        )]),
        status: NodeStatus::Ready,
        scheduling_eligibility: SchedulingEligibility::Eligible,
        ..Node::default()
    }
}

pub fn job(kind: JobType, count: i32, cpu: i32, mem: i32) -> Job {
    Job {
        id: "web".into(),
        namespace: "default".to_owned(),
        job_type: Some(kind),
        datacenters: vec!["*".to_owned()],
        task_groups: vec![TaskGroup {
            name: "g".to_owned(),
            count: Some(count),
            ephemeral_disk: Some(EphemeralDisk { size_mb: Some(10), ..Default::default() }),
            tasks: vec![Task {
                name: "t".to_owned(),
                driver: "docker".to_owned(),
                resources: Some(Resources { cpu: Some(cpu), memory_mb: Some(mem), ..Default::default() }),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Job::default()
    }
}

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
