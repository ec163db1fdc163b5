//! The allocation record: one placed instance of a task group on a node, with the client's
//! view of it (`ClientStatus`, `TaskStates`) next to the server's (`DesiredStatus`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{AllocId, DeploymentId, EvalId, Extra, JobId, NodeId, StringMap, string_enum};
use super::duration::Nanos;
use super::job::{Job, JobType};
use super::resources::NetworkResource;
use super::task::Lifecycle;

string_enum!(
    /// What the server wants of the allocation.
    AllocDesiredStatus {
        Run = "run",
        Stop = "stop",
        Evict = "evict",
    }
);

string_enum!(
    /// What the client reports of the allocation.
    AllocClientStatus {
        Pending = "pending",
        Running = "running",
        Complete = "complete",
        Failed = "failed",
        Lost = "lost",
        Unknown = "unknown",
    }
);

impl AllocClientStatus {
    /// Complete, failed and lost allocations never run again.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Complete | Self::Failed | Self::Lost)
    }
}

string_enum!(
    /// `TaskState.State`.
    TaskStateKind {
        Pending = "pending",
        Running = "running",
        Dead = "dead",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Allocation {
    #[serde(rename = "ID")]
    pub id: AllocId,
    pub namespace: String,
    #[serde(rename = "EvalID")]
    pub eval_id: EvalId,
    /// `<job>.<group>[<index>]`.
    pub name: String,
    #[serde(rename = "NodeID")]
    pub node_id: NodeId,
    pub node_name: String,
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    /// The job version this allocation runs (absent in list stubs).
    pub job: Option<Box<Job>>,
    pub job_type: Option<JobType>,
    pub job_version: u64,
    pub task_group: String,
    pub allocated_resources: Option<AllocatedResources>,
    pub metrics: Option<AllocMetric>,
    pub desired_status: AllocDesiredStatus,
    pub desired_description: String,
    pub desired_transition: DesiredTransition,
    pub client_status: AllocClientStatus,
    pub client_description: String,
    pub task_states: BTreeMap<String, TaskState>,
    #[serde(rename = "DeploymentID")]
    pub deployment_id: DeploymentId,
    pub deployment_status: Option<AllocDeploymentStatus>,
    pub previous_allocation: AllocId,
    pub next_allocation: AllocId,
    pub reschedule_tracker: Option<RescheduleTracker>,
    pub network_status: Option<serde_json::Value>,
    #[serde(rename = "FollowupEvalID")]
    pub followup_eval_id: EvalId,
    pub preempted_allocations: Vec<AllocId>,
    pub preempted_by_allocation: AllocId,
    pub alloc_modify_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
    /// Unix nanoseconds.
    pub create_time: i64,
    pub modify_time: i64,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Allocation {
    /// Terminal when the server no longer wants it running or the client has finished it.
    pub fn is_terminal(&self) -> bool {
        matches!(self.desired_status, AllocDesiredStatus::Stop | AllocDesiredStatus::Evict)
            || self.client_status.is_terminal()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DesiredTransition {
    pub migrate: Option<bool>,
    pub reschedule: Option<bool>,
    pub force_reschedule: Option<bool>,
    pub no_shutdown_delay: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskState {
    pub state: TaskStateKind,
    pub failed: bool,
    pub restarts: u64,
    /// RFC 3339 times, as Nomad encodes Go `time.Time`.
    pub last_restart: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The last 10 events.
    pub events: Vec<TaskEvent>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Number of events kept per task.
pub const TASK_EVENTS_MAX: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskEvent {
    /// `Received`, `Started`, `Terminated`, `Restarting`, ... (open set).
    #[serde(rename = "Type")]
    pub event_type: String,
    /// Unix nanoseconds.
    pub time: i64,
    pub message: String,
    pub display_message: String,
    pub details: StringMap,
    pub fails_task: bool,
    pub exit_code: i32,
    pub signal: i32,
    pub restart_reason: String,
    pub driver_error: String,
    pub kill_timeout: Nanos,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocDeploymentStatus {
    pub healthy: Option<bool>,
    /// RFC 3339.
    pub timestamp: String,
    pub canary: bool,
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RescheduleTracker {
    pub events: Vec<RescheduleEvent>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RescheduleEvent {
    /// Unix nanoseconds.
    pub reschedule_time: i64,
    #[serde(rename = "PrevAllocID")]
    pub prev_alloc_id: AllocId,
    #[serde(rename = "PrevNodeID")]
    pub prev_node_id: NodeId,
    pub delay: Nanos,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Resources the scheduler gave an allocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedResources {
    /// Keyed by task name.
    pub tasks: BTreeMap<String, AllocatedTaskResources>,
    pub task_lifecycles: BTreeMap<String, Option<Lifecycle>>,
    pub shared: AllocatedSharedResources,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedTaskResources {
    pub cpu: AllocatedCpuResources,
    pub memory: AllocatedMemoryResources,
    pub networks: Vec<NetworkResource>,
    pub devices: Vec<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedCpuResources {
    /// MHz.
    pub cpu_shares: i64,
    pub reserved_cores: Vec<u16>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedMemoryResources {
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
    #[serde(rename = "MemoryMaxMB")]
    pub memory_max_mb: i64,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedSharedResources {
    pub networks: Vec<NetworkResource>,
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
    pub ports: Vec<AllocatedPortMapping>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedPortMapping {
    pub label: String,
    pub value: i32,
    pub to: i32,
    #[serde(rename = "HostIP")]
    pub host_ip: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Why and how a placement went (`Metrics` on an allocation, `FailedTGAllocs` on an eval).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocMetric {
    pub nodes_evaluated: i32,
    pub nodes_filtered: i32,
    pub nodes_in_pool: i32,
    pub node_pool: String,
    pub nodes_available: BTreeMap<String, i32>,
    pub class_filtered: BTreeMap<String, i32>,
    pub constraint_filtered: BTreeMap<String, i32>,
    pub nodes_exhausted: i32,
    pub class_exhausted: BTreeMap<String, i32>,
    pub dimension_exhausted: BTreeMap<String, i32>,
    pub quota_exhausted: Vec<String>,
    pub resources_exhausted: BTreeMap<String, serde_json::Value>,
    pub scores: BTreeMap<String, f64>,
    pub score_meta_data: Vec<NodeScoreMeta>,
    pub allocation_time: Nanos,
    pub coalesced_failures: i32,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeScoreMeta {
    #[serde(rename = "NodeID")]
    pub node_id: NodeId,
    pub scores: BTreeMap<String, f64>,
    pub norm_score: f64,
    #[serde(flatten)]
    pub extra: Extra,
}
