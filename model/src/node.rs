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
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub id: NodeId,
    /// The node's credential: redact before serving.
    #[serde(rename = "SecretID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub secret_id: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub datacenter: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub name: String,
    #[serde(rename = "HTTPAddr")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub http_addr: String,
    #[serde(rename = "TLSEnabled")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub tls_enabled: bool,
    /// Fingerprinted attributes (`kernel.name`, `cpu.arch`, `driver.docker`, ...).
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub attributes: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub node_resources: Option<NodeResources>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub reserved_resources: Option<NodeReservedResources>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub links: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub meta: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub node_class: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub node_pool: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub computed_class: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub drain: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub drain_strategy: Option<DrainStrategy>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub scheduling_eligibility: SchedulingEligibility,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub status: NodeStatus,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub status_description: String,
    /// Unix seconds, as Nomad encodes it.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub status_updated_at: i64,
    /// The last 10 events.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub events: Vec<NodeEvent>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub drivers: BTreeMap<String, DriverInfo>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub host_volumes: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub host_networks: BTreeMap<String, serde_json::Value>,
    #[serde(rename = "CSIControllerPlugins")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub csi_controller_plugins: Option<serde_json::Value>,
    #[serde(rename = "CSINodePlugins")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub csi_node_plugins: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub last_drain: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
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
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub cpu: NodeCpuResources,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub memory: NodeMemoryResources,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub disk: NodeDiskResources,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub networks: Vec<NetworkResource>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub node_networks: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub devices: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub min_dynamic_port: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub max_dynamic_port: i32,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeCpuResources {
    /// Total MHz.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub cpu_shares: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub total_cpu_cores: u16,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub reservable_cpu_cores: Vec<u16>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeMemoryResources {
    #[serde(rename = "MemoryMB")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub memory_mb: i64,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeDiskResources {
    #[serde(rename = "DiskMB")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub disk_mb: i64,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Resources kept back for the operating system and agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeReservedResources {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub cpu: NodeReservedCpuResources,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub memory: NodeMemoryResources,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub disk: NodeDiskResources,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub networks: NodeReservedNetworkResources,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeReservedCpuResources {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub cpu_shares: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub reserved_cpu_cores: Vec<u16>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeReservedNetworkResources {
    /// e.g. `"22,80,8000-8100"`.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub reserved_host_ports: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DriverInfo {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub attributes: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub detected: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub healthy: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub health_description: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub update_time: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /v1/node/:id/drain` body's `DrainSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DrainSpec {
    /// -1s: force now; 0: never force.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub deadline: Nanos,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub ignore_system_jobs: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A node's drain in progress (Nomad inlines the `DrainSpec` fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DrainStrategy {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub deadline: Nanos,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub ignore_system_jobs: bool,
    /// RFC 3339; the zero time when there is no deadline.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub force_deadline: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub started_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeEvent {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub message: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub subsystem: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub details: StringMap,
    /// RFC 3339.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub timestamp: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}
