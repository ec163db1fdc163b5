//! The list shapes of Nomad's API: `GET /v1/jobs`, `/v1/allocations` and `/v1/nodes`
//! answer with stubs (a subset of each record, plus a job's summary), not whole records.
//! Built from the records; never stored.

use std::collections::BTreeMap;

use serde::Serialize;

use super::alloc::{AllocClientStatus, AllocDeploymentStatus, AllocDesiredStatus, Allocation, RescheduleTracker};
use super::alloc::{AllocatedResources, TaskState};
use super::common::{AllocId, EvalId, JobId, NodeId, StringMap};
use super::job::{Job, JobStatus, JobSummary, JobType, TaskGroupSummary};
use super::node::{DriverInfo, Node, NodeStatus, SchedulingEligibility};

/// One job in `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobListStub {
    #[serde(rename = "ID")]
    pub id: JobId,
    #[serde(rename = "ParentID")]
    pub parent_id: JobId,
    pub name: String,
    pub namespace: String,
    pub datacenters: Vec<String>,
    pub node_pool: String,
    #[serde(rename = "Type")]
    pub job_type: JobType,
    pub priority: i32,
    pub periodic: bool,
    pub parameterized_job: bool,
    pub stop: bool,
    pub status: JobStatus,
    pub status_description: String,
    pub job_summary: JobSummary,
    pub create_index: u64,
    pub modify_index: u64,
    pub job_modify_index: u64,
    pub submit_time: i64,
    pub meta: StringMap,
}

impl JobListStub {
    pub fn of(job: &Job, summary: JobSummary) -> JobListStub {
        JobListStub {
            id: job.id.clone(),
            parent_id: job.parent_id.clone(),
            name: job.name.clone(),
            namespace: job.namespace.clone(),
            datacenters: job.datacenters.clone(),
            node_pool: job.node_pool.clone(),
            job_type: job.kind(),
            priority: job.priority,
            periodic: job.is_periodic(),
            parameterized_job: job.is_parameterized(),
            stop: job.stop,
            status: job.status.clone().unwrap_or(JobStatus::Pending),
            status_description: job.status_description.clone(),
            job_summary: summary,
            create_index: job.create_index,
            modify_index: job.modify_index,
            job_modify_index: job.job_modify_index,
            submit_time: job.submit_time,
            meta: job.meta.clone(),
        }
    }
}

impl JobSummary {
    /// Counts of a job's allocations by task group and client status. `queued`: the
    /// placements each group still waits for (from the job's latest evaluation).
    pub fn of(job: &Job, allocs: &[Allocation], queued: &BTreeMap<String, i64>) -> JobSummary {
        let mut summary: BTreeMap<String, TaskGroupSummary> =
            job.task_groups.iter().map(|g| (g.name.clone(), TaskGroupSummary::default())).collect();
        for a in allocs {
            let Some(s) = summary.get_mut(&a.task_group) else { continue };
            match a.client_status {
                AllocClientStatus::Pending => s.starting += 1,
                AllocClientStatus::Running => s.running += 1,
                AllocClientStatus::Complete => s.complete += 1,
                AllocClientStatus::Failed => s.failed += 1,
                AllocClientStatus::Lost => s.lost += 1,
                AllocClientStatus::Unknown | AllocClientStatus::Other(_) => s.unknown += 1,
            }
        }
        for (group, n) in queued {
            if let Some(s) = summary.get_mut(group) {
                s.queued = *n;
            }
        }
        JobSummary {
            job_id: job.id.clone(),
            namespace: job.namespace.clone(),
            summary,
            children: None,
            create_index: job.create_index,
            modify_index: job.modify_index,
            extra: Default::default(),
        }
    }
}

/// One allocation in `GET /v1/allocations` and the job, node and evaluation listings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AllocListStub {
    #[serde(rename = "ID")]
    pub id: AllocId,
    #[serde(rename = "EvalID")]
    pub eval_id: EvalId,
    pub name: String,
    pub namespace: String,
    #[serde(rename = "NodeID")]
    pub node_id: NodeId,
    pub node_name: String,
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    pub job_type: JobType,
    pub job_version: u64,
    pub task_group: String,
    /// Only with `resources=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_resources: Option<AllocatedResources>,
    pub desired_status: AllocDesiredStatus,
    pub desired_description: String,
    pub client_status: AllocClientStatus,
    pub client_description: String,
    pub task_states: BTreeMap<String, TaskState>,
    pub deployment_status: Option<AllocDeploymentStatus>,
    #[serde(rename = "FollowupEvalID")]
    pub followup_eval_id: EvalId,
    pub next_allocation: AllocId,
    pub reschedule_tracker: Option<RescheduleTracker>,
    pub preempted_allocations: Vec<AllocId>,
    pub preempted_by_allocation: AllocId,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

impl AllocListStub {
    pub fn of(a: &Allocation, resources: bool) -> AllocListStub {
        AllocListStub {
            id: a.id.clone(),
            eval_id: a.eval_id.clone(),
            name: a.name.clone(),
            namespace: a.namespace.clone(),
            node_id: a.node_id.clone(),
            node_name: a.node_name.clone(),
            job_id: a.job_id.clone(),
            job_type: a.job_type.clone().or_else(|| a.job.as_ref().map(|j| j.kind())).unwrap_or(JobType::Service),
            job_version: a.job_version,
            task_group: a.task_group.clone(),
            allocated_resources: if resources { a.allocated_resources.clone() } else { None },
            desired_status: a.desired_status.clone(),
            desired_description: a.desired_description.clone(),
            client_status: a.client_status.clone(),
            client_description: a.client_description.clone(),
            task_states: a.task_states.clone(),
            deployment_status: a.deployment_status.clone(),
            followup_eval_id: a.followup_eval_id.clone(),
            next_allocation: a.next_allocation.clone(),
            reschedule_tracker: a.reschedule_tracker.clone(),
            preempted_allocations: a.preempted_allocations.clone(),
            preempted_by_allocation: a.preempted_by_allocation.clone(),
            create_index: a.create_index,
            modify_index: a.modify_index,
            create_time: a.create_time,
            modify_time: a.modify_time,
        }
    }
}

/// One node in `GET /v1/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeListStub {
    pub address: String,
    #[serde(rename = "ID")]
    pub id: NodeId,
    pub datacenter: String,
    pub name: String,
    pub node_class: String,
    pub node_pool: String,
    pub version: String,
    pub drain: bool,
    pub scheduling_eligibility: SchedulingEligibility,
    pub status: NodeStatus,
    pub status_description: String,
    pub drivers: BTreeMap<String, DriverInfo>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl NodeListStub {
    pub fn of(n: &Node) -> NodeListStub {
        let address = n.http_addr.rsplit_once(':').map_or(n.http_addr.as_str(), |(host, _)| host).to_owned();
        NodeListStub {
            address,
            id: n.id.clone(),
            datacenter: n.datacenter.clone(),
            name: n.name.clone(),
            node_class: n.node_class.clone(),
            node_pool: n.node_pool.clone(),
            version: n.attributes.get("nomad.version").cloned().unwrap_or_default(),
            drain: n.drain,
            scheduling_eligibility: n.scheduling_eligibility.clone(),
            status: n.status.clone(),
            status_description: n.status_description.clone(),
            drivers: n.drivers.clone(),
            create_index: n.create_index,
            modify_index: n.modify_index,
        }
    }
}
