//! What the API reads, without a transport: the HTTP handlers (agent), the gRPC services
//! and the simulator's workloads call these. Each read runs in one read-only transaction
//! (snapshot reads: reading never conflicts) and answers with its table index: the last
//! commit that changed a record of the kinds it reads ([`tables`]), which the HTTP API
//! sends as `X-Nomad-Index` and blocking queries wait on ([`wait_for_change`]).
//!
//! Namespaces: a name, or `*` for every namespace.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use stead_store::diff::{JobDiff, diff_jobs};
use stead_store::model::{
    AllocClientStatus, AllocListStub, Allocation, Deployment, EvalStatus, Evaluation, Job, JobListStub, JobStatus,
    JobSummary, Node, NodeListStub,
};
use stead_store::records::{self, keys as record_keys};
use stead_store::schema::{Continuation, Kind, PAGE_LIMIT_MAX, Page, PageOptions, Record, SchemaError, Tuple};
use stead_store::{ReadMode, Transaction};

use crate::error::{Result, ServerError};
use crate::keys::Store;

/// The namespace that means every namespace.
pub const ALL_NAMESPACES: &str = "*";

/// A read's answer and its table index.
#[derive(Debug, Clone, PartialEq)]
pub struct Read<T> {
    pub value: T,
    pub index: u64,
}

/// The record kinds each read depends on: its index is the last commit that changed one
/// of them, and a blocking query on it waits for the next.
pub mod tables {
    use stead_store::schema::Kind;

    pub const JOBS: &[Kind] = &[Kind::JOB, Kind::ALLOC, Kind::EVAL];
    /// A job's status is derived from its allocations and evaluations.
    pub const JOB: &[Kind] = &[Kind::JOB, Kind::ALLOC, Kind::EVAL];
    pub const JOB_SUMMARY: &[Kind] = &[Kind::JOB, Kind::ALLOC, Kind::EVAL];
    pub const JOB_VERSIONS: &[Kind] = &[Kind::JOB_VERSION];
    pub const ALLOCS: &[Kind] = &[Kind::ALLOC];
    pub const EVALS: &[Kind] = &[Kind::EVAL];
    pub const NODES: &[Kind] = &[Kind::NODE];
    pub const DEPLOYMENTS: &[Kind] = &[Kind::DEPLOYMENT];
    pub const JOB_SCALE: &[Kind] = &[Kind::JOB, Kind::ALLOC];
}

/// The last commit that changed a record of one of `kinds` (at least 1, as Nomad's
/// indexes start there).
async fn table_index(store: &Store, tx: &Transaction, kinds: &[Kind]) -> Result<u64> {
    let mut index = 1;
    for &kind in kinds {
        index = index.max(store.ks.changed_version(tx, kind, ReadMode::Snapshot).await?);
    }
    Ok(index)
}

/// Runs `read` in a read-only transaction (retried on retryable errors); its index is
/// the table index of `kinds` in the same transaction.
async fn read<'a, T, F, Fut>(store: &'a Store, kinds: &'static [Kind], read: F) -> Result<Read<T>>
where
    F: Fn(Transaction) -> Fut,
    Fut: Future<Output = Result<T>> + 'a,
{
    store
        .db
        .run(|tx, _| {
            let fut = read(tx.clone());
            async move {
                let value = fut.await?;
                let index = table_index(store, &tx, kinds).await?;
                Ok::<_, ServerError>(Read { value, index })
            }
        })
        .await
}

/// A blocking query's wait: returns once a record of one of `kinds` changed in a commit
/// after `index`, or when `wait` has passed (the caller then answers with what it reads,
/// changed or not, as Nomad does).
pub async fn wait_for_change(store: &Store, kinds: &[Kind], index: u64, wait: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let tx = store.db.create_transaction()?;
        if table_index(store, &tx, kinds).await? > index {
            return Ok(());
        }
        let watches: Vec<_> = kinds.iter().map(|&k| Box::pin(tx.watch(&store.ks.changed_key(k)))).collect();
        tx.commit().await?;
        tokio::select! {
            biased;
            _ = futures::future::select_all(watches) => {}
            () = tokio::time::sleep_until(deadline) => return Ok(()),
        }
    }
}

/// Every page of a paged read.
async fn all_pages<T, F, Fut>(next_page: F) -> Result<Vec<T>>
where
    F: Fn(PageOptions) -> Fut,
    Fut: Future<Output = Result<Page<T>, SchemaError>>,
{
    let mut items = Vec::new();
    let mut next: Option<Continuation> = None;
    loop {
        let page = next_page(PageOptions::new(PAGE_LIMIT_MAX).after(next).read_mode(ReadMode::Snapshot)).await?;
        items.extend(page.items);
        next = page.next;
        if next.is_none() {
            return Ok(items);
        }
    }
}

/// Every record of kind `R` under `prefix`.
async fn list_all<R: Record>(store: &Store, tx: &Transaction, prefix: &Tuple) -> Result<Vec<R>> {
    all_pages(|page| async move { store.ks.list::<R>(tx, prefix, &page).await }).await
}

fn namespace_prefix(namespace: &str) -> Tuple {
    if namespace == ALL_NAMESPACES { Tuple::empty() } else { Tuple::new(&namespace) }
}

fn not_found(what: &str) -> ServerError {
    ServerError::NotFound(format!("{what} not found"))
}

async fn job_allocs_in(store: &Store, tx: &Transaction, namespace: &str, job_id: &str) -> Result<Vec<Allocation>> {
    all_pages(|page| async move { records::allocs_by_job(&store.ks, tx, namespace, job_id, &page).await }).await
}

async fn job_evals_in(store: &Store, tx: &Transaction, namespace: &str, job_id: &str) -> Result<Vec<Evaluation>> {
    all_pages(|page| async move { records::evals_by_job(&store.ks, tx, namespace, job_id, &page).await }).await
}

/// A job's summary (its allocations by group and status, and what its latest evaluation
/// left queued) and its status as derived from them.
async fn summary_in(store: &Store, tx: &Transaction, job: &Job) -> Result<(JobSummary, JobStatus)> {
    let allocs = job_allocs_in(store, tx, &job.namespace, job.id.as_str()).await?;
    let evals = job_evals_in(store, tx, &job.namespace, job.id.as_str()).await?;
    let status = job.derived_status(&allocs, &evals);
    // The latest evaluation a worker completed says what is still queued (a blocked one
    // left behind counts nothing itself).
    let queued: BTreeMap<String, i64> = evals
        .iter()
        .filter(|e| e.status == EvalStatus::Complete)
        .max_by_key(|e| e.create_index)
        .map(|e| e.queued_allocations.iter().map(|(g, n)| (g.clone(), i64::from(*n))).collect())
        .unwrap_or_default();
    Ok((JobSummary::of(job, &allocs, &queued), status))
}

/// `GET /v1/jobs`: the jobs of `namespace` whose ID starts with `prefix`, by ID.
pub async fn list_jobs(store: &Store, namespace: &str, prefix: &str) -> Result<Read<Vec<JobListStub>>> {
    read(store, tables::JOBS, |tx| async move {
        let ns = namespace_prefix(namespace);
        let jobs = list_all::<Job>(store, &tx, &ns).await?;
        let mut stubs = Vec::new();
        for job in jobs.iter().filter(|j| j.id.as_str().starts_with(prefix)) {
            let (summary, status) = summary_in(store, &tx, job).await?;
            let mut stub = JobListStub::of(job, summary);
            stub.status = status;
            stubs.push(stub);
        }
        Ok(stubs)
    })
    .await
}

async fn job_in(store: &Store, tx: &Transaction, namespace: &str, job_id: &str) -> Result<Job> {
    store
        .ks
        .get::<Job>(tx, &record_keys::job(namespace, job_id), ReadMode::Snapshot)
        .await?
        .ok_or_else(|| not_found("job"))
}

/// `GET /v1/job/:id`, its `Status` derived from its allocations and evaluations.
pub async fn job(store: &Store, namespace: &str, job_id: &str) -> Result<Read<Job>> {
    read(store, tables::JOB, |tx| async move {
        let mut job = job_in(store, &tx, namespace, job_id).await?;
        let allocs = job_allocs_in(store, &tx, namespace, job_id).await?;
        let evals = job_evals_in(store, &tx, namespace, job_id).await?;
        job.status = Some(job.derived_status(&allocs, &evals));
        Ok(job)
    })
    .await
}

/// `GET /v1/job/:id/summary`.
pub async fn job_summary(store: &Store, namespace: &str, job_id: &str) -> Result<Read<JobSummary>> {
    read(store, tables::JOB_SUMMARY, |tx| async move {
        let job = job_in(store, &tx, namespace, job_id).await?;
        Ok(summary_in(store, &tx, &job).await?.0)
    })
    .await
}

/// `GET /v1/job/:id/allocations` (404 when the job does not exist).
pub async fn job_allocations(store: &Store, namespace: &str, job_id: &str) -> Result<Read<Vec<Allocation>>> {
    read(store, tables::ALLOCS, |tx| async move {
        job_in(store, &tx, namespace, job_id).await?;
        job_allocs_in(store, &tx, namespace, job_id).await
    })
    .await
}

/// `GET /v1/job/:id/evaluations`, newest first.
pub async fn job_evaluations(store: &Store, namespace: &str, job_id: &str) -> Result<Read<Vec<Evaluation>>> {
    read(store, tables::EVALS, |tx| async move {
        job_in(store, &tx, namespace, job_id).await?;
        let mut evals = job_evals_in(store, &tx, namespace, job_id).await?;
        evals.sort_by(|a, b| b.create_index.cmp(&a.create_index).then_with(|| a.id.cmp(&b.id)));
        Ok(evals)
    })
    .await
}

/// `GET /v1/job/:id/versions`: newest first, with `diffs[i]` = diff(`versions[i+1]` →
/// `versions[i]`) when asked.
pub async fn job_versions(
    store: &Store,
    namespace: &str,
    job_id: &str,
    with_diffs: bool,
) -> Result<Read<(Vec<Job>, Vec<JobDiff>)>> {
    read(store, tables::JOB_VERSIONS, |tx| async move {
        let versions = records::list_job_versions(&store.ks, &tx, namespace, job_id, PAGE_LIMIT_MAX).await?;
        if versions.is_empty() {
            return Err(not_found("job"));
        }
        let diffs = if with_diffs {
            let json = |job: &Job| serde_json::to_value(job).unwrap_or_default();
            versions.windows(2).map(|w| diff_jobs(&json(&w[1]), &json(&w[0]))).collect()
        } else {
            Vec::new()
        };
        Ok((versions, diffs))
    })
    .await
}

/// `GET /v1/allocations`: by ID, those whose ID starts with `prefix`.
pub async fn list_allocations(store: &Store, namespace: &str, prefix: &str) -> Result<Read<Vec<Allocation>>> {
    read(store, tables::ALLOCS, |tx| async move {
        let ns = namespace_prefix(namespace);
        let allocs = list_all::<Allocation>(store, &tx, &ns).await?;
        Ok(allocs.into_iter().filter(|a| a.id.as_str().starts_with(prefix)).collect())
    })
    .await
}

/// Stubs of allocations, for listings.
pub fn alloc_stubs(allocs: &[Allocation], resources: bool) -> Vec<AllocListStub> {
    allocs.iter().map(|a| AllocListStub::of(a, resources)).collect()
}

/// `GET /v1/allocation/:id` (the full ID).
pub async fn allocation(store: &Store, namespace: &str, id: &str) -> Result<Read<Allocation>> {
    read(store, tables::ALLOCS, |tx| async move {
        store
            .ks
            .get::<Allocation>(&tx, &record_keys::alloc(namespace, id), ReadMode::Snapshot)
            .await?
            .ok_or_else(|| not_found("alloc"))
    })
    .await
}

/// `GET /v1/evaluations`: by ID, those whose ID starts with `prefix`.
pub async fn list_evaluations(store: &Store, namespace: &str, prefix: &str) -> Result<Read<Vec<Evaluation>>> {
    read(store, tables::EVALS, |tx| async move {
        let ns = namespace_prefix(namespace);
        let evals = list_all::<Evaluation>(store, &tx, &ns).await?;
        Ok(evals.into_iter().filter(|e| e.id.as_str().starts_with(prefix)).collect())
    })
    .await
}

async fn eval_in(store: &Store, tx: &Transaction, namespace: &str, id: &str) -> Result<Evaluation> {
    store
        .ks
        .get::<Evaluation>(tx, &record_keys::eval(namespace, id), ReadMode::Snapshot)
        .await?
        .ok_or_else(|| not_found("eval"))
}

/// `GET /v1/evaluation/:id`.
pub async fn evaluation(store: &Store, namespace: &str, id: &str) -> Result<Read<Evaluation>> {
    read(store, tables::EVALS, |tx| async move { eval_in(store, &tx, namespace, id).await }).await
}

/// `GET /v1/evaluation/:id/allocations`: the allocations the evaluation placed.
pub async fn evaluation_allocations(store: &Store, namespace: &str, id: &str) -> Result<Read<Vec<Allocation>>> {
    read(store, tables::ALLOCS, |tx| async move {
        let eval = eval_in(store, &tx, namespace, id).await?;
        let allocs = job_allocs_in(store, &tx, namespace, eval.job_id.as_str()).await?;
        Ok(allocs.into_iter().filter(|a| a.eval_id == eval.id).collect())
    })
    .await
}

/// `GET /v1/nodes`: by ID, those whose ID starts with `prefix`.
pub async fn list_nodes(store: &Store, prefix: &str) -> Result<Read<Vec<NodeListStub>>> {
    read(store, tables::NODES, |tx| async move {
        let nodes = list_all::<Node>(store, &tx, &Tuple::empty()).await?;
        Ok(nodes.iter().filter(|n| n.id.as_str().starts_with(prefix)).map(NodeListStub::of).collect())
    })
    .await
}

/// `GET /v1/node/:id`, its secret left out.
pub async fn node(store: &Store, id: &str) -> Result<Read<Node>> {
    read(store, tables::NODES, |tx| async move {
        let mut node = store
            .ks
            .get::<Node>(&tx, &record_keys::node(id), ReadMode::Snapshot)
            .await?
            .ok_or_else(|| not_found("node"))?;
        node.secret_id = String::new();
        Ok(node)
    })
    .await
}

/// A node's record as stored (its secret included: for server-side use only).
pub async fn node_with_secret(store: &Store, id: &str) -> Result<Node> {
    let tx = store.db.create_transaction()?;
    store.ks.get::<Node>(&tx, &record_keys::node(id), ReadMode::Snapshot).await?.ok_or_else(|| not_found("node"))
}

/// `GET /v1/node/:id/allocations`.
pub async fn node_allocations(store: &Store, id: &str) -> Result<Read<Vec<Allocation>>> {
    read(store, tables::ALLOCS, |tx| async move {
        store
            .ks
            .get::<Node>(&tx, &record_keys::node(id), ReadMode::Snapshot)
            .await?
            .ok_or_else(|| not_found("node"))?;
        let tx = &tx;
        all_pages(|page| async move { records::allocs_by_node(&store.ks, tx, id, &page).await }).await
    })
    .await
}

/// `GET /v1/deployments`: by ID, those whose ID starts with `prefix`.
pub async fn list_deployments(store: &Store, namespace: &str, prefix: &str) -> Result<Read<Vec<Deployment>>> {
    read(store, tables::DEPLOYMENTS, |tx| async move {
        let ns = namespace_prefix(namespace);
        let all = list_all::<Deployment>(store, &tx, &ns).await?;
        Ok(all.into_iter().filter(|d| d.id.as_str().starts_with(prefix)).collect())
    })
    .await
}

/// `GET /v1/deployment/:id`.
pub async fn deployment(store: &Store, namespace: &str, id: &str) -> Result<Read<Deployment>> {
    read(store, tables::DEPLOYMENTS, |tx| async move {
        store
            .ks
            .get::<Deployment>(&tx, &record_keys::deployment(namespace, id), ReadMode::Snapshot)
            .await?
            .ok_or_else(|| not_found("deployment"))
    })
    .await
}

/// `GET /v1/deployment/allocations/:id`: the allocations placed for a deployment.
pub async fn deployment_allocations(store: &Store, namespace: &str, id: &str) -> Result<Read<Vec<Allocation>>> {
    read(store, tables::ALLOCS, |tx| async move {
        let d = store
            .ks
            .get::<Deployment>(&tx, &record_keys::deployment(namespace, id), ReadMode::Snapshot)
            .await?
            .ok_or_else(|| not_found("deployment"))?;
        let allocs = job_allocs_in(store, &tx, namespace, d.job_id.as_str()).await?;
        Ok(allocs.into_iter().filter(|a| a.deployment_id == d.id).collect())
    })
    .await
}

/// `GET /v1/job/:id/deployments`, newest first (404 when the job does not exist).
pub async fn job_deployments(store: &Store, namespace: &str, job_id: &str) -> Result<Read<Vec<Deployment>>> {
    read(store, tables::DEPLOYMENTS, |tx| async move {
        job_in(store, &tx, namespace, job_id).await?;
        let tx = &tx;
        let mut all =
            all_pages(|page| async move { records::deployments_by_job(&store.ks, tx, namespace, job_id, &page).await })
                .await?;
        all.sort_by(|a, b| b.create_index.cmp(&a.create_index).then_with(|| a.id.cmp(&b.id)));
        Ok(all)
    })
    .await
}

/// What `GET /v1/job/:id/scale` answers (Nomad's `JobScaleStatusResponse`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobScaleStatus {
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub namespace: String,
    pub job_create_index: u64,
    pub job_modify_index: u64,
    pub job_stopped: bool,
    pub task_groups: BTreeMap<String, TaskGroupScaleStatus>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskGroupScaleStatus {
    pub desired: i64,
    pub placed: i64,
    pub running: i64,
    pub healthy: i64,
    pub unhealthy: i64,
    pub events: Vec<serde_json::Value>,
}

/// `GET /v1/job/:id/scale`.
pub async fn job_scale_status(store: &Store, namespace: &str, job_id: &str) -> Result<Read<JobScaleStatus>> {
    read(store, tables::JOB_SCALE, |tx| async move {
        let job = job_in(store, &tx, namespace, job_id).await?;
        let allocs = job_allocs_in(store, &tx, namespace, job_id).await?;
        let mut groups = BTreeMap::new();
        for g in &job.task_groups {
            let live: Vec<&Allocation> = allocs
                .iter()
                .filter(|a| a.task_group == g.name && !a.is_terminal() && a.job_version == job.version)
                .collect();
            let health = |want: bool| {
                live.iter().filter(|a| a.deployment_status.as_ref().and_then(|d| d.healthy) == Some(want)).count()
                    as i64
            };
            groups.insert(
                g.name.clone(),
                TaskGroupScaleStatus {
                    desired: i64::from(g.count.unwrap_or(1)),
                    placed: live.len() as i64,
                    running: live.iter().filter(|a| a.client_status == AllocClientStatus::Running).count() as i64,
                    healthy: health(true),
                    unhealthy: health(false),
                    events: Vec::new(),
                },
            );
        }
        Ok(JobScaleStatus {
            job_id: job.id.to_string(),
            namespace: job.namespace.clone(),
            job_create_index: job.create_index,
            job_modify_index: job.job_modify_index,
            job_stopped: job.stop,
            task_groups: groups,
        })
    })
    .await
}
