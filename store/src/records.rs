//! The model records as stored records: `schema::Record` for each, their primary keys and
//! secondary indexes, and small typed functions for the lookups the servers make.
//!
//! | record | kind | primary key | indexes |
//! |---|---|---|---|
//! | [`Job`] | `JOB` | (namespace, ID) | |
//! | [`JobVersion`] | `JOB_VERSION` | (namespace, ID, Version) | the key: versions by job |
//! | [`Allocation`] | `ALLOC` | (namespace, ID) | [`ALLOC_BY_NODE`] (NodeID), [`ALLOC_BY_JOB`] (namespace, JobID) |
//! | [`Evaluation`] | `EVAL` | (namespace, ID) | [`EVAL_BY_JOB`] (namespace, JobID) |
//! | [`Deployment`] | `DEPLOYMENT` | (namespace, ID) | [`DEPLOYMENT_BY_JOB`] (namespace, JobID) |
//! | [`Node`] | `NODE` | (ID) | [`NODE_BY_POOL`] (NodePool), [`NODE_BY_DATACENTER`] (Datacenter) |
//! | [`AclPolicy`] | `ACL_POLICY` | (Name) | |
//! | [`AclToken`] | `ACL_TOKEN` | (AccessorID) | [`ACL_TOKEN_BY_SECRET`] (SecretID) |
//! | [`Namespace`] | `NAMESPACE` | (Name) | |
//! | [`Variable`] | `VARIABLE` | (namespace, Path) | |
//! | [`ServiceRegistration`] | `SERVICE_REGISTRATION` | (namespace, ID) | [`SERVICE_BY_NAME`] (namespace, ServiceName), [`SERVICE_BY_ALLOC`] (AllocID) |
//!
//! [`keys`] builds the primary keys (`ks.get::<Job>(&tx, &keys::job(ns, id), mode)`), so
//! no call site spells a key shape of its own. Index ids, like kind ids, are part of the
//! stored keys: never renumber one; add new indexes with new ids.
//!
//! # Index fields
//!
//! `set_versions` fills every record's `CreateIndex` and `ModifyIndex` from the commit
//! versions of the transactions that wrote it, so a record read from the store can be served
//! as it is. Whatever a record holds in those fields when written is ignored on read. Two
//! records use the store's third version (`JobModify::Bump`, otherwise `CreateIndex`):
//!
//! * [`Job`]`.JobModifyIndex`: put with `JobModify::Bump` when the submission changes the
//!   job's specification ([`job_spec_changed`]: register with a different spec, stop, scale,
//!   revert, dispatch of a new child), plain `put` for server bookkeeping (status, status
//!   description, stability). A job never bumped shows its `CreateIndex`.
//! * [`Allocation`]`.AllocModifyIndex`: put with `JobModify::Bump` when the server changes
//!   the allocation (placement, desired status or transition, in-place job update), plain
//!   `put` for the client's updates (client status, task states, deployment health), as
//!   Nomad's AllocModifyIndex lets a client fetch only what the server changed.
//!
//! Other fields named after indexes (an evaluation's `JobModifyIndex`, a deployment's
//! `JobCreateIndex`, …) are content: copies of another record's index, kept as written.

use serde::{Deserialize, Serialize};

use crate::api::Transaction;
use crate::model::{
    AclPolicy, AclToken, Allocation, Deployment, Evaluation, Job, Namespace, Node, ServiceRegistration, Variable,
};
use crate::schema::{
    Index, IndexEntry, Keyspace, Kind, PAGE_LIMIT_MAX, Page, PageOptions, PutOptions, PutOutcome, Record, SchemaError,
    Tuple, Versions,
};
use crate::types::ReadMode;

/// Allocations by `NodeID`: what a client runs, what a node's usage is made of.
pub const ALLOC_BY_NODE: Index = Index::new(1, "node");
/// Allocations by `(Namespace, JobID)`.
pub const ALLOC_BY_JOB: Index = Index::new(2, "job");
/// Evaluations by `(Namespace, JobID)`.
pub const EVAL_BY_JOB: Index = Index::new(1, "job");
/// Deployments by `(Namespace, JobID)`.
pub const DEPLOYMENT_BY_JOB: Index = Index::new(1, "job");
/// Nodes by `NodePool`.
pub const NODE_BY_POOL: Index = Index::new(1, "pool");
/// Nodes by `Datacenter`.
pub const NODE_BY_DATACENTER: Index = Index::new(2, "datacenter");
/// ACL tokens by `SecretID`: the authentication path's lookup.
pub const ACL_TOKEN_BY_SECRET: Index = Index::new(1, "secret");
/// Service registrations by `(Namespace, ServiceName)`; a namespace alone lists them by name.
pub const SERVICE_BY_NAME: Index = Index::new(1, "name");
/// Service registrations by `AllocID`: what to remove when an allocation stops.
pub const SERVICE_BY_ALLOC: Index = Index::new(2, "alloc");

/// Primary keys of the model records (and the prefix listing all versions of a job).
pub mod keys {
    use crate::schema::Tuple;

    pub fn job(namespace: &str, id: &str) -> Tuple {
        Tuple::new(&(namespace, id))
    }

    pub fn job_version(namespace: &str, id: &str, version: u64) -> Tuple {
        Tuple::new(&(namespace, id, version))
    }

    /// The prefix of every version of one job: `list::<JobVersion>` under it.
    pub fn job_versions(namespace: &str, id: &str) -> Tuple {
        Tuple::new(&(namespace, id))
    }

    pub fn alloc(namespace: &str, id: &str) -> Tuple {
        Tuple::new(&(namespace, id))
    }

    pub fn eval(namespace: &str, id: &str) -> Tuple {
        Tuple::new(&(namespace, id))
    }

    pub fn deployment(namespace: &str, id: &str) -> Tuple {
        Tuple::new(&(namespace, id))
    }

    pub fn node(id: &str) -> Tuple {
        Tuple::new(&id)
    }

    pub fn acl_policy(name: &str) -> Tuple {
        Tuple::new(&name)
    }

    pub fn acl_token(accessor_id: &str) -> Tuple {
        Tuple::new(&accessor_id)
    }

    pub fn namespace(name: &str) -> Tuple {
        Tuple::new(&name)
    }

    pub fn variable(namespace: &str, path: &str) -> Tuple {
        Tuple::new(&(namespace, path))
    }

    pub fn service_registration(namespace: &str, id: &str) -> Tuple {
        Tuple::new(&(namespace, id))
    }
}

fn ns_and(namespace: &str, id: &str) -> Tuple {
    Tuple::new(&(namespace, id))
}

impl Record for Job {
    const KIND: Kind = Kind::JOB;

    fn primary_key(&self) -> Tuple {
        keys::job(&self.namespace, self.id.as_str())
    }

    fn set_versions(&mut self, v: &Versions) {
        self.create_index = v.create_index;
        self.modify_index = v.modify_index;
        self.job_modify_index = v.job_modify_index;
    }
}

/// Whether `new` changes the specification of `old`, as Nomad's `Job.SpecChanged` decides:
/// everything but the server's bookkeeping (status, status description, stability,
/// version, submit time, indexes) counts. When it does, a register bumps the version and
/// puts the job with `JobModify::Bump`.
pub fn job_spec_changed(old: &Job, new: &Job) -> bool {
    let mut new = new.clone();
    new.status.clone_from(&old.status);
    new.status_description.clone_from(&old.status_description);
    new.stable = old.stable;
    new.version = old.version;
    new.submit_time = old.submit_time;
    new.create_index = old.create_index;
    new.modify_index = old.modify_index;
    new.job_modify_index = old.job_modify_index;
    *old != new
}

/// One version of a job, as `GET /v1/job/:id/versions` shows it: kind `JOB_VERSION`, key
/// `(namespace, ID, Version)`, so the primary key lists a job's versions in order. Stored
/// exactly as a `Job`.
///
/// Its index fields: `ModifyIndex` is its last write (a stability change writes it again);
/// `JobModifyIndex` the commit that created it, which is the job's `JobModifyIndex` for
/// that version when [`put_job_version`] runs in the transaction that bumps the job;
/// `CreateIndex` the job's, as written (a job read from the store carries it), or the
/// version's creating commit when written as 0 (the first version, created with the job).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobVersion(pub Job);

impl Record for JobVersion {
    const KIND: Kind = Kind::JOB_VERSION;

    fn primary_key(&self) -> Tuple {
        keys::job_version(&self.0.namespace, self.0.id.as_str(), self.0.version)
    }

    fn set_versions(&mut self, v: &Versions) {
        let job = &mut self.0;
        if job.create_index == 0 {
            job.create_index = v.create_index;
        }
        job.modify_index = v.modify_index;
        job.job_modify_index = v.create_index;
    }
}

/// Records `job` as its version `job.Version` (a new version, or the same version again
/// after a stability change). Put it in the transaction that puts the job, with the job as
/// stored: see [`JobVersion`] for the index fields.
pub async fn put_job_version(ks: &Keyspace, tx: &Transaction, job: &Job) -> Result<PutOutcome, SchemaError> {
    // A record is encoded from a reference; the clone only wraps it in the version's kind.
    ks.put(tx, &JobVersion(job.clone()), PutOptions::default()).await
}

/// One version of a job, or None.
pub async fn get_job_version(
    ks: &Keyspace,
    tx: &Transaction,
    namespace: &str,
    id: &str,
    version: u64,
    mode: ReadMode,
) -> Result<Option<Job>, SchemaError> {
    Ok(ks.get::<JobVersion>(tx, &keys::job_version(namespace, id, version), mode).await?.map(|v| v.0))
}

/// The newest `limit` versions of a job (at most `PAGE_LIMIT_MAX`), newest first.
pub async fn list_job_versions(
    ks: &Keyspace,
    tx: &Transaction,
    namespace: &str,
    id: &str,
    limit: usize,
) -> Result<Vec<Job>, SchemaError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let page = PageOptions::new(limit.min(PAGE_LIMIT_MAX)).reverse(true);
    let versions = ks.list::<JobVersion>(tx, &keys::job_versions(namespace, id), &page).await?;
    Ok(versions.items.into_iter().map(|v| v.0).collect())
}

impl Record for Allocation {
    const KIND: Kind = Kind::ALLOC;

    fn primary_key(&self) -> Tuple {
        keys::alloc(&self.namespace, self.id.as_str())
    }

    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![
            IndexEntry::new(ALLOC_BY_NODE, Tuple::new(&self.node_id.as_str())),
            IndexEntry::new(ALLOC_BY_JOB, ns_and(&self.namespace, self.job_id.as_str())),
        ]
    }

    fn set_versions(&mut self, v: &Versions) {
        self.create_index = v.create_index;
        self.modify_index = v.modify_index;
        self.alloc_modify_index = v.job_modify_index;
    }
}

/// One page of the allocations on a node, by (namespace, ID).
pub async fn allocs_by_node(
    ks: &Keyspace,
    tx: &Transaction,
    node_id: &str,
    page: &PageOptions,
) -> Result<Page<Allocation>, SchemaError> {
    ks.scan_index_records(tx, ALLOC_BY_NODE, &Tuple::new(&node_id), page).await
}

/// One page of the allocations of a job, by ID.
pub async fn allocs_by_job(
    ks: &Keyspace,
    tx: &Transaction,
    namespace: &str,
    job_id: &str,
    page: &PageOptions,
) -> Result<Page<Allocation>, SchemaError> {
    ks.scan_index_records(tx, ALLOC_BY_JOB, &ns_and(namespace, job_id), page).await
}

impl Record for Evaluation {
    const KIND: Kind = Kind::EVAL;

    fn primary_key(&self) -> Tuple {
        keys::eval(&self.namespace, self.id.as_str())
    }

    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![IndexEntry::new(EVAL_BY_JOB, ns_and(&self.namespace, self.job_id.as_str()))]
    }

    fn set_versions(&mut self, v: &Versions) {
        self.create_index = v.create_index;
        self.modify_index = v.modify_index;
    }
}

/// One page of the evaluations of a job, by ID.
pub async fn evals_by_job(
    ks: &Keyspace,
    tx: &Transaction,
    namespace: &str,
    job_id: &str,
    page: &PageOptions,
) -> Result<Page<Evaluation>, SchemaError> {
    ks.scan_index_records(tx, EVAL_BY_JOB, &ns_and(namespace, job_id), page).await
}

impl Record for Deployment {
    const KIND: Kind = Kind::DEPLOYMENT;

    fn primary_key(&self) -> Tuple {
        keys::deployment(&self.namespace, self.id.as_str())
    }

    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![IndexEntry::new(DEPLOYMENT_BY_JOB, ns_and(&self.namespace, self.job_id.as_str()))]
    }

    fn set_versions(&mut self, v: &Versions) {
        self.create_index = v.create_index;
        self.modify_index = v.modify_index;
    }
}

/// One page of the deployments of a job, by ID (the latest is the one with the highest
/// `CreateIndex`).
pub async fn deployments_by_job(
    ks: &Keyspace,
    tx: &Transaction,
    namespace: &str,
    job_id: &str,
    page: &PageOptions,
) -> Result<Page<Deployment>, SchemaError> {
    ks.scan_index_records(tx, DEPLOYMENT_BY_JOB, &ns_and(namespace, job_id), page).await
}

impl Record for Node {
    const KIND: Kind = Kind::NODE;

    fn primary_key(&self) -> Tuple {
        keys::node(self.id.as_str())
    }

    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![
            IndexEntry::new(NODE_BY_POOL, Tuple::new(&self.node_pool.as_str())),
            IndexEntry::new(NODE_BY_DATACENTER, Tuple::new(&self.datacenter.as_str())),
        ]
    }

    fn set_versions(&mut self, v: &Versions) {
        self.create_index = v.create_index;
        self.modify_index = v.modify_index;
    }
}

/// One page of the nodes in a node pool, by ID.
pub async fn nodes_by_pool(
    ks: &Keyspace,
    tx: &Transaction,
    pool: &str,
    page: &PageOptions,
) -> Result<Page<Node>, SchemaError> {
    ks.scan_index_records(tx, NODE_BY_POOL, &Tuple::new(&pool), page).await
}

/// One page of the nodes in a datacenter, by ID.
pub async fn nodes_by_datacenter(
    ks: &Keyspace,
    tx: &Transaction,
    datacenter: &str,
    page: &PageOptions,
) -> Result<Page<Node>, SchemaError> {
    ks.scan_index_records(tx, NODE_BY_DATACENTER, &Tuple::new(&datacenter), page).await
}

impl Record for AclPolicy {
    const KIND: Kind = Kind::ACL_POLICY;

    fn primary_key(&self) -> Tuple {
        keys::acl_policy(&self.name)
    }

    fn set_versions(&mut self, v: &Versions) {
        self.create_index = v.create_index;
        self.modify_index = v.modify_index;
    }
}

impl Record for AclToken {
    const KIND: Kind = Kind::ACL_TOKEN;

    fn primary_key(&self) -> Tuple {
        keys::acl_token(&self.accessor_id)
    }

    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![IndexEntry::new(ACL_TOKEN_BY_SECRET, Tuple::new(&self.secret_id.as_str()))]
    }

    fn set_versions(&mut self, v: &Versions) {
        self.create_index = v.create_index;
        self.modify_index = v.modify_index;
    }
}

/// The token whose `SecretID` is `secret` (an exact match), or None. The authentication
/// path may read it with `ReadMode::Snapshot` so that requests never conflict with token
/// updates.
pub async fn token_by_secret(
    ks: &Keyspace,
    tx: &Transaction,
    secret: &str,
    mode: ReadMode,
) -> Result<Option<AclToken>, SchemaError> {
    let page = PageOptions::new(1).read_mode(mode);
    let found = ks.scan_index_records::<AclToken>(tx, ACL_TOKEN_BY_SECRET, &Tuple::new(&secret), &page).await?;
    Ok(found.items.into_iter().next())
}

impl Record for Namespace {
    const KIND: Kind = Kind::NAMESPACE;

    fn primary_key(&self) -> Tuple {
        keys::namespace(&self.name)
    }

    fn set_versions(&mut self, v: &Versions) {
        self.create_index = v.create_index;
        self.modify_index = v.modify_index;
    }
}

impl Record for Variable {
    const KIND: Kind = Kind::VARIABLE;

    fn primary_key(&self) -> Tuple {
        keys::variable(&self.namespace, &self.path)
    }

    fn set_versions(&mut self, v: &Versions) {
        self.create_index = v.create_index;
        self.modify_index = v.modify_index;
    }
}

impl Record for ServiceRegistration {
    const KIND: Kind = Kind::SERVICE_REGISTRATION;

    fn primary_key(&self) -> Tuple {
        keys::service_registration(&self.namespace, &self.id)
    }

    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![
            IndexEntry::new(SERVICE_BY_NAME, ns_and(&self.namespace, &self.service_name)),
            IndexEntry::new(SERVICE_BY_ALLOC, Tuple::new(&self.alloc_id.as_str())),
        ]
    }

    fn set_versions(&mut self, v: &Versions) {
        self.create_index = v.create_index;
        self.modify_index = v.modify_index;
    }
}

/// One page of the registrations of a service in a namespace, by ID.
pub async fn services_by_name(
    ks: &Keyspace,
    tx: &Transaction,
    namespace: &str,
    service_name: &str,
    page: &PageOptions,
) -> Result<Page<ServiceRegistration>, SchemaError> {
    ks.scan_index_records(tx, SERVICE_BY_NAME, &ns_and(namespace, service_name), page).await
}

/// One page of the registrations an allocation made.
pub async fn services_by_alloc(
    ks: &Keyspace,
    tx: &Transaction,
    alloc_id: &str,
    page: &PageOptions,
) -> Result<Page<ServiceRegistration>, SchemaError> {
    ks.scan_index_records(tx, SERVICE_BY_ALLOC, &Tuple::new(&alloc_id), page).await
}
