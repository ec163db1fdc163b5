//! `service`, `check` and `check_restart` blocks, and the `ServiceRegistration` record of the
//! built-in (`provider = "nomad"`) service catalogue.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{AllocId, Extra, JobId, NodeId, StringMap};
use super::duration::Nanos;

/// Values `service.provider` accepts.
pub const SERVICE_PROVIDERS: &[&str] = &["consul", "nomad"];
/// Values `service.address_mode` accepts.
pub const SERVICE_ADDRESS_MODES: &[&str] = &["auto", "host", "driver", "alloc", "alloc_ipv6"];
/// Values `on_update` accepts (service and check).
pub const ON_UPDATE_MODES: &[&str] = &["require_healthy", "ignore_warnings", "ignore"];
/// Check types for Consul services; Nomad services accept only `http` and `tcp`.
pub const CHECK_TYPES: &[&str] = &["http", "tcp", "grpc", "script"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Service {
    pub name: String,
    pub tags: Vec<String>,
    pub canary_tags: Vec<String>,
    pub enable_tag_override: bool,
    pub port_label: String,
    pub address_mode: String,
    pub address: String,
    pub checks: Vec<ServiceCheck>,
    pub check_restart: Option<CheckRestart>,
    /// Consul Connect: kept verbatim, stead does not act on it yet.
    pub connect: Option<serde_json::Value>,
    pub meta: StringMap,
    pub canary_meta: StringMap,
    pub tagged_addresses: StringMap,
    pub task_name: String,
    pub on_update: String,
    pub provider: String,
    pub cluster: String,
    pub identity: Option<serde_json::Value>,
    pub weights: Option<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceCheck {
    pub name: String,
    #[serde(rename = "Type")]
    pub check_type: String,
    pub command: String,
    pub args: Vec<String>,
    pub path: String,
    pub protocol: String,
    pub port_label: String,
    pub expose: bool,
    pub address_mode: String,
    pub interval: Nanos,
    pub timeout: Nanos,
    pub initial_status: String,
    #[serde(rename = "TLSServerName")]
    pub tls_server_name: String,
    #[serde(rename = "TLSSkipVerify")]
    pub tls_skip_verify: bool,
    pub header: BTreeMap<String, Vec<String>>,
    pub method: String,
    pub body: String,
    pub check_restart: Option<CheckRestart>,
    #[serde(rename = "GRPCService")]
    pub grpc_service: String,
    #[serde(rename = "GRPCUseTLS")]
    pub grpc_use_tls: bool,
    pub task_name: String,
    pub success_before_passing: i32,
    pub failures_before_critical: i32,
    pub failures_before_warning: i32,
    pub on_update: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `check_restart`: restart a task after `Limit` consecutive unhealthy results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CheckRestart {
    pub limit: i32,
    pub grace: Option<Nanos>,
    pub ignore_warnings: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One registered instance of a `provider = "nomad"` service (`GET /v1/service/:name`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceRegistration {
    /// `_nomad-task-<alloc>-<task>-<service>-<port>` (or `_nomad-group-...`).
    #[serde(rename = "ID")]
    pub id: String,
    pub service_name: String,
    pub namespace: String,
    #[serde(rename = "NodeID")]
    pub node_id: NodeId,
    pub datacenter: String,
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    #[serde(rename = "AllocID")]
    pub alloc_id: AllocId,
    pub tags: Vec<String>,
    pub address: String,
    pub port: i32,
    pub create_index: u64,
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}
