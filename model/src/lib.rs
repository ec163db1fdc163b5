//! The records stead stores — the database of desired and observed state — in the shapes of
//! Nomad's API JSON (PascalCase names, durations in nanoseconds), so the HTTP API serves
//! them as they are.
//!
//! * The job specification: [`Job`] → [`TaskGroup`] → [`Task`] and their blocks, with
//!   [`Job::canonicalize`] (Nomad's defaults) and [`Job::validate`] (all errors at once).
//! * Observed and derived state: [`Allocation`], [`Evaluation`], [`Deployment`], [`Node`],
//!   [`AclPolicy`], [`AclToken`], [`Namespace`], [`Variable`], [`ServiceRegistration`].
//! * [`job_from_api_json`] / [`job_to_api_json`] (and [`from_api_json`] for any record) read
//!   Nomad API JSON the way Nomad's Go decoder does: keys case-insensitive, `null` = absent.
//!
//! Every struct keeps fields it does not know in `extra` (`#[serde(flatten)]`), and blocks
//! stead does not act on yet (Vault, Consul, Connect, identity, CSI plugin, multiregion) as
//! `serde_json::Value`, so nothing a client sent is lost on a round trip. Enumerations keep
//! unknown strings as `Other(..)` so decoding never fails on a value; validation reports it.
//! Plain data and functions: no I/O, no clock, no tokio, no store engine — safe under
//! `cfg(madsim)` and usable by the pure scheduler core. The store (`stead_store::records`)
//! says where each record lives in the keyspace.

pub mod acl;
pub mod alloc;
pub mod api_json;
pub mod canonicalize;
pub mod clock;
pub mod common;
pub mod deployment;
pub mod diff;
pub mod duration;
pub mod eval;
pub mod group;
pub mod job;
pub mod namespace;
pub mod node;
pub mod periodic;
pub mod placement;
pub mod planted;
pub mod policy;
pub mod resources;
pub mod service;
pub mod stored;
pub mod stub;
pub mod task;
pub mod time;
pub mod validate;
pub mod variable;

#[cfg(test)]
mod tests;

pub use acl::{AclPolicy, AclToken, AclTokenType, JobAcl};
pub use alloc::{
    AllocClientStatus, AllocDeploymentStatus, AllocDesiredStatus, AllocMetric, AllocatedCpuResources,
    AllocatedMemoryResources, AllocatedPortMapping, AllocatedResources, AllocatedSharedResources,
    AllocatedTaskResources, Allocation, DesiredTransition, NodeScoreMeta, RescheduleEvent, RescheduleTracker,
    TaskEvent, TaskState, TaskStateKind,
};
pub use api_json::{JobJsonError, from_api_json, from_api_value, job_from_api_json, job_to_api_json};
pub use common::{AllocId, DeploymentId, EvalId, Extra, JobId, NodeId, OpaqueMap, StringMap};
pub use deployment::{Deployment, DeploymentState, DeploymentStatus};
pub use duration::Nanos;
pub use eval::{EvalStatus, EvalTrigger, Evaluation};
pub use group::{EphemeralDisk, ScalingPolicy, TaskGroup, VolumeRequest};
pub use job::{Job, JobChildrenSummary, JobStatus, JobSummary, JobType, JobVersions, TaskGroupSummary};
pub use namespace::Namespace;
pub use node::{
    DrainSpec, DrainStrategy, DriverInfo, Node, NodeCpuResources, NodeDiskResources, NodeEvent, NodeMemoryResources,
    NodeReservedCpuResources, NodeReservedNetworkResources, NodeReservedResources, NodeResources, NodeStatus,
    SchedulingEligibility,
};
pub use periodic::{ParameterizedJobConfig, PayloadRequirement, PeriodicConfig};
pub use placement::{Affinity, Constraint, Spread, SpreadTarget};
pub use policy::{
    DelayFunction, DisconnectStrategy, HealthCheckMode, MigrateStrategy, ReschedulePolicy, RestartMode, RestartPolicy,
    UpdateStrategy,
};
pub use resources::{DnsConfig, NetworkResource, Port, RequestedDevice, Resources};
pub use service::{CheckRestart, Service, ServiceCheck, ServiceRegistration};
pub use stub::{AllocListStub, JobListStub, NodeListStub};
pub use task::{
    Artifact, ChangeScript, DispatchPayloadConfig, Lifecycle, LifecycleHook, LogConfig, Task, Template,
    TemplateChangeMode, VolumeMount, WaitConfig,
};
pub use validate::ValidationError;
pub use variable::Variable;
