//! The evaluation record: a request to reconcile one job's desired and actual state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::alloc::AllocMetric;
use super::common::{DeploymentId, EvalId, Extra, JobId, NodeId, string_enum};
use super::duration::Nanos;
use super::job::JobType;

string_enum!(
    EvalStatus {
        Blocked = "blocked",
        Pending = "pending",
        Complete = "complete",
        Failed = "failed",
        Canceled = "canceled",
    }
);

string_enum!(
    /// `TriggeredBy`: why the evaluation exists.
    EvalTrigger {
        JobRegister = "job-register",
        JobDeregister = "job-deregister",
        PeriodicJob = "periodic-job",
        NodeDrain = "node-drain",
        NodeUpdate = "node-update",
        AllocStop = "alloc-stop",
        Scheduled = "scheduled",
        RollingUpdate = "rolling-update",
        DeploymentWatcher = "deployment-watcher",
        FailedFollowUp = "failed-follow-up",
        MaxPlanAttempts = "max-plan-attempts",
        AllocFailure = "alloc-failure",
        QueuedAllocs = "queued-allocs",
        Preemption = "preemption",
        JobScaling = "job-scaling",
        MaxDisconnectTimeout = "max-disconnect-timeout",
        Reconnect = "reconnect",
        AllocReschedule = "alloc-reschedule",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Evaluation {
    #[serde(rename = "ID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub id: EvalId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub priority: i32,
    /// The job's type, or `_core` for internal work.
    #[serde(rename = "Type")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub eval_type: JobType,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub triggered_by: EvalTrigger,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub namespace: String,
    #[serde(rename = "JobID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_id: JobId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_modify_index: u64,
    #[serde(rename = "NodeID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub node_id: NodeId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub node_modify_index: u64,
    #[serde(rename = "DeploymentID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub deployment_id: DeploymentId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub status: EvalStatus,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub status_description: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub wait: Nanos,
    /// RFC 3339, for delayed (rescheduling) evaluations.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub wait_until: Option<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub next_eval: EvalId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub previous_eval: EvalId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub blocked_eval: EvalId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub related_evals: Vec<serde_json::Value>,
    #[serde(rename = "FailedTGAllocs")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub class_eligibility: BTreeMap<String, bool>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub escaped_computed_class: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub quota_limit_reached: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub annotate_plan: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub queued_allocations: BTreeMap<String, i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub snapshot_index: u64,
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
