//! The `job` record: the desired state a user submits, in Nomad's API JSON shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{Extra, JobId, StringMap, string_enum};
use super::group::TaskGroup;
use super::periodic::{ParameterizedJobConfig, PeriodicConfig};
use super::placement::{Affinity, Constraint, Spread};
use super::policy::{MigrateStrategy, ReschedulePolicy, UpdateStrategy};

string_enum!(
    /// Job `type`: which scheduler places it.
    JobType {
        Service = "service",
        Batch = "batch",
        System = "system",
        Sysbatch = "sysbatch",
    }
);

string_enum!(
    /// Job `Status`, maintained by the server.
    JobStatus {
        Pending = "pending",
        Running = "running",
        Dead = "dead",
    }
);

/// Lowest and highest job priority (Nomad's default `job_max_priority` is 100).
pub const JOB_PRIORITY_MIN: i32 = 1;
pub const JOB_PRIORITY_MAX: i32 = 100;
pub const JOB_PRIORITY_DEFAULT: i32 = 50;

/// A job: the top of the `job` → `group` → `task` tree, plus the server-maintained status and
/// index fields. Unknown fields (and blocks stead does not model, such as `Multiregion`) are
/// kept in `extra` / as `serde_json::Value`, so nothing a client sent is lost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Job {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub stop: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub region: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub namespace: String,
    #[serde(rename = "ID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub id: JobId,
    #[serde(rename = "ParentID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub parent_id: JobId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub name: String,
    #[serde(rename = "Type")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_type: Option<JobType>,
    /// 0 means "not given" (canonicalized to 50).
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub priority: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub all_at_once: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub datacenters: Vec<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub node_pool: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub constraints: Vec<Constraint>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub affinities: Vec<Affinity>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub spreads: Vec<Spread>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub task_groups: Vec<TaskGroup>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub update: Option<UpdateStrategy>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub multiregion: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub periodic: Option<PeriodicConfig>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub parameterized_job: Option<ParameterizedJobConfig>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub dispatched: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub dispatch_idempotency_token: String,
    /// Base64, as Go encodes `[]byte`.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub payload: Option<String>,
    /// API-level job `reschedule` block; canonicalization pushes it into the groups.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub reschedule: Option<ReschedulePolicy>,
    /// API-level job `migrate` block; canonicalization pushes it into the groups.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub migrate: Option<MigrateStrategy>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub meta: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub consul_token: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub consul_namespace: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub vault_token: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub vault_namespace: String,
    #[serde(rename = "NomadTokenID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub nomad_token_id: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub status: Option<JobStatus>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub status_description: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub stable: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub version: u64,
    /// Unix nanoseconds.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub submit_time: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub modify_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_modify_index: u64,
    #[serde(rename = "UI")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub ui: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub version_tag: Option<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Job {
    /// The job's type, `service` when not given.
    pub fn kind(&self) -> JobType {
        self.job_type.clone().unwrap_or(JobType::Service)
    }
    pub fn is_periodic(&self) -> bool {
        self.periodic.as_ref().is_some_and(|p| p.enabled.unwrap_or(true))
    }
    pub fn is_parameterized(&self) -> bool {
        self.parameterized_job.is_some() && !self.dispatched
    }
    pub fn task_group(&self, name: &str) -> Option<&TaskGroup> {
        self.task_groups.iter().find(|g| g.name == name)
    }

    /// The job's status as Nomad derives it from its work: system jobs and periodic or
    /// parameterized parents run until stopped; otherwise running while an allocation is
    /// not terminal, pending while an evaluation is not, and dead once everything is done
    /// (or the job is stopped and nothing of it runs).
    pub fn derived_status(&self, allocs: &[crate::Allocation], evals: &[crate::Evaluation]) -> JobStatus {
        use crate::EvalStatus;
        if self.kind() == JobType::System || self.is_periodic() || self.is_parameterized() {
            return if self.stop { JobStatus::Dead } else { JobStatus::Running };
        }
        if allocs.iter().any(|a| !a.is_terminal()) {
            return JobStatus::Running;
        }
        if evals.iter().any(|e| matches!(e.status, EvalStatus::Pending | EvalStatus::Blocked)) {
            return JobStatus::Pending;
        }
        if self.stop || !allocs.is_empty() || !evals.is_empty() { JobStatus::Dead } else { JobStatus::Pending }
    }
}

/// `GET /v1/job/:id/versions`: versions newest first, and optionally the diffs between them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobVersions {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub versions: Vec<Job>,
    /// `Diffs[i]` = diff(`Versions[i+1]` → `Versions[i]`); shape owned by the diff code.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub diffs: Vec<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `GET /v1/job/:id/summary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobSummary {
    #[serde(rename = "JobID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_id: JobId,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub namespace: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub summary: BTreeMap<String, TaskGroupSummary>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub children: Option<JobChildrenSummary>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskGroupSummary {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub queued: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub complete: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub failed: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub running: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub starting: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub lost: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub unknown: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobChildrenSummary {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub pending: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub running: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub dead: i64,
}
