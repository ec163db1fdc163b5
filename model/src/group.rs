//! The `group` block and the blocks only groups have: `volume`, `ephemeral_disk`, `scaling`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{Extra, OpaqueMap, StringMap};
use super::duration::Nanos;
use super::placement::{Affinity, Constraint, Spread};
use super::policy::{DisconnectStrategy, MigrateStrategy, ReschedulePolicy, RestartPolicy, UpdateStrategy};
use super::resources::NetworkResource;
use super::service::Service;
use super::task::Task;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskGroup {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub name: String,
    /// `None` until canonicalized: then `scaling.min` if given, else 1.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub count: Option<i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub constraints: Vec<Constraint>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub affinities: Vec<Affinity>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub spreads: Vec<Spread>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub tasks: Vec<Task>,
    /// Keyed by the volume's name (the `volume "<name>"` label).
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub volumes: BTreeMap<String, VolumeRequest>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub reschedule_policy: Option<ReschedulePolicy>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub disconnect: Option<DisconnectStrategy>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub ephemeral_disk: Option<EphemeralDisk>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub update: Option<UpdateStrategy>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub migrate: Option<MigrateStrategy>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub networks: Vec<NetworkResource>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub meta: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub services: Vec<Service>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub shutdown_delay: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub max_client_disconnect: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub stop_after_client_disconnect: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub scaling: Option<ScalingPolicy>,
    /// Kept verbatim; stead does not act on Consul yet.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub consul: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub prevent_reschedule_on_lost: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl TaskGroup {
    /// The desired count; 1 when not canonicalized and not given.
    pub fn desired_count(&self) -> i32 {
        self.count.unwrap_or(1)
    }
}

/// Group `volume "<name>"` block (`VolumeRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeRequest {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub name: String,
    /// `host` | `csi`.
    #[serde(rename = "Type")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub volume_type: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub source: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub sticky: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub access_mode: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub attachment_mode: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub mount_options: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub per_alloc: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Values `volume.type` accepts.
pub const VOLUME_TYPES: &[&str] = &["host", "csi"];

/// Group `ephemeral_disk` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct EphemeralDisk {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub sticky: Option<bool>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub migrate: Option<bool>,
    #[serde(rename = "SizeMB")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub size_mb: Option<i32>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Group `scaling` block (`ScalingPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ScalingPolicy {
    #[serde(rename = "ID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub id: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub namespace: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub target: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub min: Option<i64>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub max: Option<i64>,
    /// For the autoscaler; opaque to the server.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub policy: OpaqueMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub enabled: Option<bool>,
    /// `horizontal` for group scaling.
    #[serde(rename = "Type")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub policy_type: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}
