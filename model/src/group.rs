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
    pub name: String,
    /// `None` until canonicalized: then `scaling.min` if given, else 1.
    pub count: Option<i32>,
    pub constraints: Vec<Constraint>,
    pub affinities: Vec<Affinity>,
    pub spreads: Vec<Spread>,
    pub tasks: Vec<Task>,
    /// Keyed by the volume's name (the `volume "<name>"` label).
    pub volumes: BTreeMap<String, VolumeRequest>,
    pub restart_policy: Option<RestartPolicy>,
    pub reschedule_policy: Option<ReschedulePolicy>,
    pub disconnect: Option<DisconnectStrategy>,
    pub ephemeral_disk: Option<EphemeralDisk>,
    pub update: Option<UpdateStrategy>,
    pub migrate: Option<MigrateStrategy>,
    pub networks: Vec<NetworkResource>,
    pub meta: StringMap,
    pub services: Vec<Service>,
    pub shutdown_delay: Option<Nanos>,
    pub max_client_disconnect: Option<Nanos>,
    pub stop_after_client_disconnect: Option<Nanos>,
    pub scaling: Option<ScalingPolicy>,
    /// Kept verbatim; stead does not act on Consul yet.
    pub consul: Option<serde_json::Value>,
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
    pub name: String,
    /// `host` | `csi`.
    #[serde(rename = "Type")]
    pub volume_type: String,
    pub source: String,
    pub read_only: bool,
    pub sticky: bool,
    pub access_mode: String,
    pub attachment_mode: String,
    pub mount_options: Option<serde_json::Value>,
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
    pub sticky: Option<bool>,
    pub migrate: Option<bool>,
    #[serde(rename = "SizeMB")]
    pub size_mb: Option<i32>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Group `scaling` block (`ScalingPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ScalingPolicy {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
    pub target: StringMap,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// For the autoscaler; opaque to the server.
    pub policy: OpaqueMap,
    pub enabled: Option<bool>,
    /// `horizontal` for group scaling.
    #[serde(rename = "Type")]
    pub policy_type: String,
    pub create_index: u64,
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}
