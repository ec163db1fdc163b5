//! The deployment record: the progress of rolling out one job version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{AllocId, DeploymentId, Extra, JobId, string_enum};
use super::duration::Nanos;

string_enum!(
    DeploymentStatus {
        Running = "running",
        Paused = "paused",
        Failed = "failed",
        Successful = "successful",
        Cancelled = "cancelled",
        Initializing = "initializing",
        Pending = "pending",
        Blocked = "blocked",
        Unblocking = "unblocking",
    }
);

impl DeploymentStatus {
    /// Running, paused and the multiregion waiting states are active; the rest are final.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            Self::Running | Self::Paused | Self::Initializing | Self::Pending | Self::Blocked | Self::Unblocking
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Deployment {
    #[serde(rename = "ID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub id: DeploymentId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub namespace: String,
    #[serde(rename = "JobID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_id: JobId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_version: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_modify_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_spec_modify_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_create_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub is_multiregion: bool,
    /// Keyed by task group name.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub task_groups: BTreeMap<String, DeploymentState>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub status: DeploymentStatus,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub status_description: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub modify_index: u64,
    /// Unix nanoseconds.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_time: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub modify_time: i64,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One task group's progress within a deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DeploymentState {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub auto_revert: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub auto_promote: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub progress_deadline: Nanos,
    /// RFC 3339.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub require_progress_by: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub promoted: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub placed_canaries: Vec<AllocId>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub desired_canaries: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub desired_total: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub placed_allocs: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub healthy_allocs: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub unhealthy_allocs: i32,
    #[serde(flatten)]
    pub extra: Extra,
}
