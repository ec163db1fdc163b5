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
    pub id: DeploymentId,
    pub namespace: String,
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    pub job_version: u64,
    pub job_modify_index: u64,
    pub job_spec_modify_index: u64,
    pub job_create_index: u64,
    pub is_multiregion: bool,
    /// Keyed by task group name.
    pub task_groups: BTreeMap<String, DeploymentState>,
    pub status: DeploymentStatus,
    pub status_description: String,
    pub create_index: u64,
    pub modify_index: u64,
    /// Unix nanoseconds.
    pub create_time: i64,
    pub modify_time: i64,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One task group's progress within a deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DeploymentState {
    pub auto_revert: bool,
    pub auto_promote: bool,
    pub progress_deadline: Nanos,
    /// RFC 3339.
    pub require_progress_by: String,
    pub promoted: bool,
    pub placed_canaries: Vec<AllocId>,
    pub desired_canaries: i32,
    pub desired_total: i32,
    pub placed_allocs: i32,
    pub healthy_allocs: i32,
    pub unhealthy_allocs: i32,
    #[serde(flatten)]
    pub extra: Extra,
}
