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
    pub id: EvalId,
    pub priority: i32,
    /// The job's type, or `_core` for internal work.
    #[serde(rename = "Type")]
    pub eval_type: JobType,
    pub triggered_by: EvalTrigger,
    pub namespace: String,
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    pub job_modify_index: u64,
    #[serde(rename = "NodeID")]
    pub node_id: NodeId,
    pub node_modify_index: u64,
    #[serde(rename = "DeploymentID")]
    pub deployment_id: DeploymentId,
    pub status: EvalStatus,
    pub status_description: String,
    pub wait: Nanos,
    /// RFC 3339, for delayed (rescheduling) evaluations.
    pub wait_until: Option<String>,
    pub next_eval: EvalId,
    pub previous_eval: EvalId,
    pub blocked_eval: EvalId,
    pub related_evals: Vec<serde_json::Value>,
    #[serde(rename = "FailedTGAllocs")]
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    pub class_eligibility: BTreeMap<String, bool>,
    pub escaped_computed_class: bool,
    pub quota_limit_reached: String,
    pub annotate_plan: bool,
    pub queued_allocations: BTreeMap<String, i32>,
    pub snapshot_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
    /// Unix nanoseconds.
    pub create_time: i64,
    pub modify_time: i64,
    #[serde(flatten)]
    pub extra: Extra,
}
