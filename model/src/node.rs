//! The node record: a client machine, its resources, drivers and scheduling state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{Extra, NodeId, StringMap, string_enum};
use super::duration::Nanos;
use super::resources::NetworkResource;

string_enum!(
    NodeStatus {
        Initializing = "initializing",
        Ready = "ready",
        Down = "down",
        Disconnected = "disconnected",
    }
);

string_enum!(
    SchedulingEligibility {
        Eligible = "eligible",
        Ineligible = "ineligible",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: NodeId,
    /// The node's credential: redact before serving.
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub datacenter: String,
    pub name: String,
    #[serde(rename = "HTTPAddr")]
    pub http_addr: String,
    #[serde(rename = "TLSEnabled")]
    pub tls_enabled: bool,
    /// Fingerprinted attributes (`kernel.name`, `cpu.arch`, `driver.docker`, ...).
    pub attributes: StringMap,
    pub node_resources: Option<NodeResources>,
    pub reserved_resources: Option<NodeReservedResources>,
    pub links: StringMap,
    pub meta: StringMap,
    pub node_class: String,
    pub node_pool: String,
    pub computed_class: String,
    pub drain: bool,
    pub drain_strategy: Option<DrainStrategy>,
    pub scheduling_eligibility: SchedulingEligibility,
    pub status: NodeStatus,
    pub status_description: String,
    /// Unix seconds, as Nomad encodes it.
    pub status_updated_at: i64,
    /// The last 10 events.
    pub events: Vec<NodeEvent>,
    pub drivers: BTreeMap<String, DriverInfo>,
    pub host_volumes: BTreeMap<String, serde_json::Value>,
    pub host_networks: BTreeMap<String, serde_json::Value>,
    #[serde(rename = "CSIControllerPlugins")]
    pub csi_controller_plugins: Option<serde_json::Value>,
    #[serde(rename = "CSINodePlugins")]
    pub csi_node_plugins: Option<serde_json::Value>,
    pub last_drain: Option<serde_json::Value>,
    pub create_index: u64,
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Node {
    /// Ready, eligible and not draining: the scheduler may place work here.
    pub fn is_schedulable(&self) -> bool {
        self.status == NodeStatus::Ready
            && self.scheduling_eligibility == SchedulingEligibility::Eligible
            && self.drain_strategy.is_none()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeResources {
    pub cpu: NodeCpuResources,
    pub memory: NodeMemoryResources,
    pub disk: NodeDiskResources,
    pub networks: Vec<NetworkResource>,
    pub node_networks: Vec<serde_json::Value>,
    pub devices: Vec<serde_json::Value>,
    pub min_dynamic_port: i32,
    pub max_dynamic_port: i32,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeCpuResources {
    /// Total MHz.
    pub cpu_shares: i64,
    pub total_cpu_cores: u16,
    pub reservable_cpu_cores: Vec<u16>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeMemoryResources {
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeDiskResources {
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Resources kept back for the operating system and agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeReservedResources {
    pub cpu: NodeReservedCpuResources,
    pub memory: NodeMemoryResources,
    pub disk: NodeDiskResources,
    pub networks: NodeReservedNetworkResources,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeReservedCpuResources {
    pub cpu_shares: i64,
    pub reserved_cpu_cores: Vec<u16>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeReservedNetworkResources {
    /// e.g. `"22,80,8000-8100"`.
    pub reserved_host_ports: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DriverInfo {
    pub attributes: StringMap,
    pub detected: bool,
    pub healthy: bool,
    pub health_description: String,
    /// RFC 3339.
    pub update_time: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /v1/node/:id/drain` body's `DrainSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DrainSpec {
    /// -1s: force now; 0: never force.
    pub deadline: Nanos,
    pub ignore_system_jobs: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A node's drain in progress (Nomad inlines the `DrainSpec` fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DrainStrategy {
    pub deadline: Nanos,
    pub ignore_system_jobs: bool,
    /// RFC 3339; the zero time when there is no deadline.
    pub force_deadline: String,
    pub started_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeEvent {
    pub message: String,
    pub subsystem: String,
    pub details: StringMap,
    /// RFC 3339.
    pub timestamp: String,
    pub create_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}
