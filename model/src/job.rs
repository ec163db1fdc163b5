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
    pub stop: bool,
    pub region: String,
    pub namespace: String,
    #[serde(rename = "ID")]
    pub id: JobId,
    #[serde(rename = "ParentID")]
    pub parent_id: JobId,
    pub name: String,
    #[serde(rename = "Type")]
    pub job_type: Option<JobType>,
    /// 0 means "not given" (canonicalized to 50).
    pub priority: i32,
    pub all_at_once: bool,
    pub datacenters: Vec<String>,
    pub node_pool: String,
    pub constraints: Vec<Constraint>,
    pub affinities: Vec<Affinity>,
    pub spreads: Vec<Spread>,
    pub task_groups: Vec<TaskGroup>,
    pub update: Option<UpdateStrategy>,
    pub multiregion: Option<serde_json::Value>,
    pub periodic: Option<PeriodicConfig>,
    pub parameterized_job: Option<ParameterizedJobConfig>,
    pub dispatched: bool,
    pub dispatch_idempotency_token: String,
    /// Base64, as Go encodes `[]byte`.
    pub payload: Option<String>,
    /// API-level job `reschedule` block; canonicalization pushes it into the groups.
    pub reschedule: Option<ReschedulePolicy>,
    /// API-level job `migrate` block; canonicalization pushes it into the groups.
    pub migrate: Option<MigrateStrategy>,
    pub meta: StringMap,
    pub consul_token: String,
    pub consul_namespace: String,
    pub vault_token: String,
    pub vault_namespace: String,
    #[serde(rename = "NomadTokenID")]
    pub nomad_token_id: String,
    pub status: Option<JobStatus>,
    pub status_description: String,
    pub stable: bool,
    pub version: u64,
    /// Unix nanoseconds.
    pub submit_time: i64,
    pub create_index: u64,
    pub modify_index: u64,
    pub job_modify_index: u64,
    #[serde(rename = "UI")]
    pub ui: Option<serde_json::Value>,
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
}

/// `GET /v1/job/:id/versions`: versions newest first, and optionally the diffs between them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobVersions {
    pub versions: Vec<Job>,
    /// `Diffs[i]` = diff(`Versions[i+1]` → `Versions[i]`); shape owned by the diff code.
    pub diffs: Vec<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `GET /v1/job/:id/summary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobSummary {
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    pub namespace: String,
    pub summary: BTreeMap<String, TaskGroupSummary>,
    pub children: Option<JobChildrenSummary>,
    pub create_index: u64,
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskGroupSummary {
    pub queued: i64,
    pub complete: i64,
    pub failed: i64,
    pub running: i64,
    pub starting: i64,
    pub lost: i64,
    pub unknown: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobChildrenSummary {
    pub pending: i64,
    pub running: i64,
    pub dead: i64,
}
