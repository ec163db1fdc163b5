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
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub id: AllocId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub namespace: String,
    #[serde(rename = "EvalID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub eval_id: EvalId,
    /// `<job>.<group>[<index>]`.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub name: String,
    #[serde(rename = "NodeID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub node_id: NodeId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub node_name: String,
    #[serde(rename = "JobID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_id: JobId,
    /// The job version this allocation runs (absent in list stubs).
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job: Option<Box<Job>>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_type: Option<JobType>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_version: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub task_group: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub allocated_resources: Option<AllocatedResources>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub metrics: Option<AllocMetric>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub desired_status: AllocDesiredStatus,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub desired_description: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub desired_transition: DesiredTransition,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub client_status: AllocClientStatus,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub client_description: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub task_states: BTreeMap<String, TaskState>,
    #[serde(rename = "DeploymentID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub deployment_id: DeploymentId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub deployment_status: Option<AllocDeploymentStatus>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub previous_allocation: AllocId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub next_allocation: AllocId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub reschedule_tracker: Option<RescheduleTracker>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub network_status: Option<serde_json::Value>,
    #[serde(rename = "FollowupEvalID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub followup_eval_id: EvalId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub preempted_allocations: Vec<AllocId>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub preempted_by_allocation: AllocId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub alloc_modify_index: u64,
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
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub migrate: Option<bool>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub reschedule: Option<bool>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub force_reschedule: Option<bool>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub no_shutdown_delay: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskState {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub state: TaskStateKind,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub failed: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub restarts: u64,
    /// RFC 3339 times, as Nomad encodes Go `time.Time`.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub last_restart: Option<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub finished_at: Option<String>,
    /// The last 10 events.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
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
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub event_type: String,
    /// Unix nanoseconds.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub time: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub message: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub display_message: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub details: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub fails_task: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub exit_code: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub signal: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub restart_reason: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub driver_error: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub kill_timeout: Nanos,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocDeploymentStatus {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub healthy: Option<bool>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub timestamp: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub canary: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RescheduleTracker {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub events: Vec<RescheduleEvent>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RescheduleEvent {
    /// Unix nanoseconds.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub reschedule_time: i64,
    #[serde(rename = "PrevAllocID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub prev_alloc_id: AllocId,
    #[serde(rename = "PrevNodeID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub prev_node_id: NodeId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub delay: Nanos,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Resources the scheduler gave an allocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedResources {
    /// Keyed by task name.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub tasks: BTreeMap<String, AllocatedTaskResources>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub task_lifecycles: BTreeMap<String, Option<Lifecycle>>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub shared: AllocatedSharedResources,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedTaskResources {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub cpu: AllocatedCpuResources,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub memory: AllocatedMemoryResources,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub networks: Vec<NetworkResource>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub devices: Vec<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedCpuResources {
    /// MHz.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub cpu_shares: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub reserved_cores: Vec<u16>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedMemoryResources {
    #[serde(rename = "MemoryMB")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub memory_mb: i64,
    #[serde(rename = "MemoryMaxMB")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub memory_max_mb: i64,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedSharedResources {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub networks: Vec<NetworkResource>,
    #[serde(rename = "DiskMB")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub disk_mb: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub ports: Vec<AllocatedPortMapping>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedPortMapping {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub label: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub value: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub to: i32,
    #[serde(rename = "HostIP")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub host_ip: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Why and how a placement went (`Metrics` on an allocation, `FailedTGAllocs` on an eval).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocMetric {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub nodes_evaluated: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub nodes_filtered: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub nodes_in_pool: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub node_pool: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub nodes_available: BTreeMap<String, i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub class_filtered: BTreeMap<String, i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub constraint_filtered: BTreeMap<String, i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub nodes_exhausted: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub class_exhausted: BTreeMap<String, i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub dimension_exhausted: BTreeMap<String, i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub quota_exhausted: Vec<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub resources_exhausted: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub scores: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub score_meta_data: Vec<NodeScoreMeta>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub allocation_time: Nanos,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub coalesced_failures: i32,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One scored node of a placement (five per allocation). Serialized by hand: the derive's
/// `flatten` of `extra` makes a map of unknown length, which a binary encoder buffers and
/// copies, at every level, for each of the five; this writes the same map with its length.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeScoreMeta {
    #[serde(rename = "NodeID")]
    pub node_id: NodeId,
    pub scores: BTreeMap<String, f64>,
    pub norm_score: f64,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Serialize for NodeScoreMeta {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use crate::stored::is_default;
        use serde::ser::SerializeMap;
        let (id, scores, norm) = (!is_default(&self.node_id), !is_default(&self.scores), !is_default(&self.norm_score));
        let len = usize::from(id) + usize::from(scores) + usize::from(norm) + self.extra.len();
        let mut map = serializer.serialize_map(Some(len))?;
        if id {
            map.serialize_entry("NodeID", &self.node_id)?;
        }
        if scores {
            map.serialize_entry("Scores", &self.scores)?;
        }
        if norm {
            map.serialize_entry("NormScore", &self.norm_score)?;
        }
        for (key, value) in &self.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}
