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
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub name: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub canary_tags: Vec<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub enable_tag_override: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub port_label: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub address_mode: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub address: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub checks: Vec<ServiceCheck>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub check_restart: Option<CheckRestart>,
    /// Consul Connect: kept verbatim, stead does not act on it yet.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub connect: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub meta: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub canary_meta: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub tagged_addresses: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub task_name: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub on_update: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub provider: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub cluster: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub identity: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub weights: Option<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceCheck {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub name: String,
    #[serde(rename = "Type")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub check_type: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub command: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub path: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub protocol: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub port_label: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub expose: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub address_mode: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub interval: Nanos,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub timeout: Nanos,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub initial_status: String,
    #[serde(rename = "TLSServerName")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub tls_server_name: String,
    #[serde(rename = "TLSSkipVerify")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub tls_skip_verify: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub method: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub body: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub check_restart: Option<CheckRestart>,
    #[serde(rename = "GRPCService")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub grpc_service: String,
    #[serde(rename = "GRPCUseTLS")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub grpc_use_tls: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub task_name: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub success_before_passing: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub failures_before_critical: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub failures_before_warning: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub on_update: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `check_restart`: restart a task after `Limit` consecutive unhealthy results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CheckRestart {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub limit: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub grace: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
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
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub id: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub service_name: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub namespace: String,
    #[serde(rename = "NodeID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub node_id: NodeId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub datacenter: String,
    #[serde(rename = "JobID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_id: JobId,
    #[serde(rename = "AllocID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub alloc_id: AllocId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub address: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub port: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}
