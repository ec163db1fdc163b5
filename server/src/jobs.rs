//! Job writes that create evaluations: register and stop (deregister, purge). Each writes
//! the job, its version history and its evaluation in one transaction, as Nomad's
//! `Job.Register` writes the job and its eval in one Raft entry.
//!
//! The caller canonicalizes and validates the job first (the HTTP API does, with errors at
//! field paths); these functions store what they are given.

use stead_store::model::{EvalId, EvalStatus, EvalTrigger, Evaluation, Job, JobStatus, JobType};
use stead_store::records::{self, job_spec_changed, keys as record_keys};
use stead_store::schema::{JobModify, PutOptions};
use stead_store::{ReadMode, Transaction};

use crate::env::Env;
use crate::error::{Result, ServerError};
use crate::events;
use crate::keys::Store;
use crate::queue;

/// Makes a job as submitted ready to register or plan: its namespace (`namespace` when
/// the job names none), Nomad's defaults, then validation. Every validation error is
/// reported, each at its field path, in Nomad's words.
pub fn prepare(mut job: Job, namespace: &str) -> Result<Job> {
    if job.namespace.is_empty() {
        job.namespace = namespace.to_owned();
    }
    job.canonicalize();
    if let Err(errors) = job.validate() {
        let n = errors.len();
        let list: String = errors.iter().map(|e| format!("\n\t* {e}")).collect();
        let what = if n == 1 { "1 error occurred:".to_owned() } else { format!("{n} errors occurred:") };
        return Err(ServerError::Invalid(format!("Job validation failed: {what}{list}")));
    }
    Ok(job)
}

/// What a register did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// `None` for periodic and parameterized parents, which get no evaluation.
    pub eval_id: Option<EvalId>,
    /// The job's `JobModifyIndex` after the register.
    pub job_modify_index: u64,
    pub version: u64,
    /// The specification changed (a new version was recorded).
    pub changed: bool,
    /// The commit version of the register (its evaluation's `CreateIndex`).
    pub index: u64,
}

/// What a stop did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    pub eval_id: EvalId,
    /// The commit version of the stop (its evaluation's `CreateIndex`).
    pub index: u64,
    /// The job changed (it was running, or it was purged): a stop of a stopped job only
    /// queues an evaluation.
    pub changed: bool,
}

/// A new pending evaluation of `job` (its namespace, priority and type).
pub(crate) fn job_eval(id: &str, job: &Job, trigger: EvalTrigger, now: i64) -> Evaluation {
    Evaluation {
        id: id.into(),
        namespace: job.namespace.clone(),
        priority: job.priority,
        eval_type: job.kind(),
        triggered_by: trigger,
        job_id: job.id.clone(),
        status: EvalStatus::Pending,
        create_time: now,
        modify_time: now,
        ..Evaluation::default()
    }
}

fn wants_eval(job: &Job) -> bool {
    !job.is_periodic() && !job.is_parameterized()
}

fn is_system(job: &Job) -> bool {
    matches!(job.kind(), JobType::System | JobType::Sysbatch)
}

/// Registers `job`: a new version when its specification changed, and an evaluation.
/// `enforce_index`: `Some(0)` requires that the job does not exist, `Some(n)` that its
/// `JobModifyIndex` is `n` (Nomad's `EnforceIndex` / `-check-index`).
pub async fn register(store: &Store, env: &Env, job: Job, enforce_index: Option<u64>) -> Result<Registered> {
    let eval_id = env.new_id();
    let now = env.now_ns();
    let committed = store
        .db
        .run_committed(|tx, maybe_committed| {
            let (job, eval_id) = (job.clone(), eval_id.clone());
            async move {
                if maybe_committed.0
                    && let Some(done) = already_registered(store, &tx, &job, &eval_id, now).await?
                {
                    return Ok(done);
                }
                register_in(store, &tx, job, enforce_index, &eval_id, now).await
            }
        })
        .await?;
    Ok(committed.value.registered(u64::try_from(committed.commit.version).unwrap_or(0)))
}

/// What a register's transaction knows; the commit supplies the new JobModifyIndex.
#[derive(Debug, Clone)]
pub struct Written {
    pub eval_id: Option<EvalId>,
    pub version: u64,
    pub changed: bool,
    /// Known when the job was not bumped by this commit.
    pub job_modify_index: Option<u64>,
    /// The commit that wrote it, when that was an earlier attempt (not the one that
    /// reports it).
    pub index: Option<u64>,
}

impl Written {
    /// The register's answer, once committed at `index`.
    pub fn registered(self, commit_index: u64) -> Registered {
        let index = self.index.unwrap_or(commit_index);
        Registered {
            eval_id: self.eval_id,
            job_modify_index: self.job_modify_index.unwrap_or(index),
            version: self.version,
            changed: self.changed,
            index,
        }
    }
}

/// When an earlier attempt of a register committed (its evaluation `eval_id` exists, or,
/// for a job that gets none, the stored job carries the attempt's `submitted` time):
/// what it stored, at the index it committed at.
async fn already_registered(
    store: &Store,
    tx: &Transaction,
    job: &Job,
    eval_id: &str,
    submitted: i64,
) -> Result<Option<Written>> {
    let eval = store.ks.get::<Evaluation>(tx, &record_keys::eval(&job.namespace, eval_id), ReadMode::Snapshot).await?;
    let stored =
        store.ks.get::<Job>(tx, &record_keys::job(&job.namespace, job.id.as_str()), ReadMode::Snapshot).await?;
    let index = match (&eval, &stored) {
        (Some(e), _) => e.create_index,
        (None, Some(j)) if !wants_eval(j) && j.submit_time == submitted => j.modify_index,
        _ => return Ok(None),
    };
    // It made a version if one was stored at its commit.
    let made = version_made_at(store, tx, &job.namespace, job.id.as_str(), index).await?;
    Ok(Some(Written {
        eval_id: eval.map(|e| e.id),
        version: made.as_ref().or(stored.as_ref()).map_or(0, |j| j.version),
        changed: made.is_some(),
        job_modify_index: stored.map(|j| j.job_modify_index),
        index: Some(index),
    }))
}

/// The version of the job that the commit at `index` made, if it made one (a version's
/// `JobModifyIndex` is the commit that stored it).
async fn version_made_at(
    store: &Store,
    tx: &Transaction,
    namespace: &str,
    job_id: &str,
    index: u64,
) -> Result<Option<Job>> {
    let versions = records::list_job_versions(&store.ks, tx, namespace, job_id, usize::MAX).await?;
    Ok(versions.into_iter().find(|v| v.job_modify_index == index))
}

/// [`register`] inside the caller's transaction, with its evaluation's ID fixed by the
/// caller (outside its retry loop).
pub async fn register_in(
    store: &Store,
    tx: &Transaction,
    mut job: Job,
    enforce_index: Option<u64>,
    eval_id: &str,
    now: i64,
) -> Result<Written> {
    job.submit_time = now;
    let pk = record_keys::job(&job.namespace, job.id.as_str());
    let existing = store.ks.get::<Job>(tx, &pk, ReadMode::Serializable).await?;
    check_index(&job, existing.as_ref(), enforce_index)?;
    let changed = existing.as_ref().is_none_or(|old| job_spec_changed(old, &job));
    job.version = match &existing {
        None => 0,
        Some(old) if changed => old.version + 1,
        Some(old) => old.version,
    };
    job.status = Some(JobStatus::Pending);
    let options = if changed { PutOptions::default().job_modify(JobModify::Bump) } else { PutOptions::default() };
    store.ks.put(tx, &job, options).await?;
    if changed {
        records::put_job_version(&store.ks, tx, &job).await?;
    }
    index_job(store, tx, &job);
    events::emit(store, tx, events::job_event(&job, "JobRegistered"), &job)?;
    let eval = if wants_eval(&job) {
        let eval = job_eval(eval_id, &job, EvalTrigger::JobRegister, now);
        queue::enqueue(store, tx, &eval, now).await?;
        Some(eval.id)
    } else {
        None
    };
    let job_modify_index = existing.filter(|_| !changed).map(|old| old.job_modify_index);
    Ok(Written { eval_id: eval, version: job.version, changed, job_modify_index, index: None })
}

/// Keeps the job in the lists duties scan: system jobs (node evaluations) and periodic
/// parents (launches).
fn index_job(store: &Store, tx: &Transaction, job: &Job) {
    let (ns, id) = (job.namespace.as_str(), job.id.as_str());
    if is_system(job) && !job.stop {
        tx.set(&store.system_job_key(ns, id), b"");
    } else {
        tx.clear(&store.system_job_key(ns, id));
    }
    if job.is_periodic() && !job.stop {
        tx.set(&store.periodic_job_key(ns, id), b"");
    } else {
        tx.clear(&store.periodic_job_key(ns, id));
    }
}

fn check_index(job: &Job, existing: Option<&Job>, enforce_index: Option<u64>) -> Result<()> {
    match (enforce_index, existing) {
        (None, _) => Ok(()),
        (Some(0), None) => Ok(()),
        (Some(0), Some(old)) => Err(ServerError::Conflict(format!(
            "Enforcing job modify index 0: job {:?} already exists with job modify index {}",
            job.id.as_str(),
            old.job_modify_index
        ))),
        (Some(want), None) => Err(ServerError::Conflict(format!(
            "Enforcing job modify index {want}: job {:?} does not exist",
            job.id.as_str()
        ))),
        (Some(want), Some(old)) if old.job_modify_index != want => Err(ServerError::Conflict(format!(
            "Enforcing job modify index {want}: job {:?} exists with conflicting job modify index: {}",
            job.id.as_str(),
            old.job_modify_index
        ))),
        _ => Ok(()),
    }
}

/// Stops a job (`purge`: deletes it and its versions) and queues the evaluation that stops
/// its allocations. Fails with `NotFound` when there is no such job.
pub async fn stop(store: &Store, env: &Env, namespace: &str, job_id: &str, purge: bool) -> Result<Stopped> {
    let eval_id = env.new_id();
    let now = env.now_ns();
    let committed = store
        .db
        .run_committed(|tx, maybe_committed| {
            let eval_id = eval_id.clone();
            async move {
                if maybe_committed.0
                    && let Some(eval) = store
                        .ks
                        .get::<Evaluation>(&tx, &record_keys::eval(namespace, &eval_id), ReadMode::Snapshot)
                        .await?
                {
                    // It changed the job if it purged it or stored a version.
                    let changed =
                        purge || version_made_at(store, &tx, namespace, job_id, eval.create_index).await?.is_some();
                    return Ok((eval.id, changed, Some(eval.create_index)));
                }
                let pk = record_keys::job(namespace, job_id);
                let Some(mut job) = store.ks.get::<Job>(&tx, &pk, ReadMode::Serializable).await? else {
                    return Err(ServerError::NotFound(format!("job {job_id:?} not found in namespace {namespace:?}")));
                };
                let eval = job_eval(&eval_id, &job, EvalTrigger::JobDeregister, now);
                let changed = purge || !job.stop;
                if purge {
                    events::emit(store, &tx, events::job_event(&job, "JobDeregistered"), &job)?;
                    store.ks.delete::<Job>(&tx, &pk).await?;
                    let versions = records::list_job_versions(&store.ks, &tx, namespace, job_id, usize::MAX).await?;
                    for v in versions {
                        store
                            .ks
                            .delete::<records::JobVersion>(&tx, &record_keys::job_version(namespace, job_id, v.version))
                            .await?;
                    }
                    tx.clear(&store.system_job_key(namespace, job_id));
                    tx.clear(&store.periodic_job_key(namespace, job_id));
                } else if !job.stop {
                    job.stop = true;
                    job.version += 1;
                    job.status = Some(JobStatus::Dead);
                    store.ks.put(&tx, &job, PutOptions::default().job_modify(JobModify::Bump)).await?;
                    records::put_job_version(&store.ks, &tx, &job).await?;
                    index_job(store, &tx, &job);
                    events::emit(store, &tx, events::job_event(&job, "JobDeregistered"), &job)?;
                }
                queue::enqueue(store, &tx, &eval, now).await?;
                Ok::<_, ServerError>((eval.id, changed, None))
            }
        })
        .await?;
    let (eval_id, changed, earlier) = committed.value;
    Ok(Stopped { eval_id, index: earlier.unwrap_or(u64::try_from(committed.commit.version).unwrap_or(0)), changed })
}

/// What `POST /v1/job/:id/evaluate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    pub eval_id: EvalId,
    /// The commit version (the evaluation's `CreateIndex`).
    pub index: u64,
    pub job_modify_index: u64,
}

/// Queues an evaluation of a job as it stands (Nomad's `job eval`). Periodic and
/// parameterized parents are not evaluated themselves: their launches are.
pub async fn evaluate(store: &Store, env: &Env, namespace: &str, job_id: &str) -> Result<Evaluated> {
    let eval_id = env.new_id();
    let now = env.now_ns();
    let committed = store
        .db
        .run_committed(|tx, _| {
            let eval_id = eval_id.clone();
            async move {
                let pk = record_keys::job(namespace, job_id);
                let Some(job) = store.ks.get::<Job>(&tx, &pk, ReadMode::Serializable).await? else {
                    return Err(ServerError::NotFound("job not found".to_owned()));
                };
                if !wants_eval(&job) {
                    return Err(ServerError::Invalid(format!(
                        "job {job_id:?} is periodic or parameterized: it is not evaluated itself (force a launch or dispatch it)"
                    )));
                }
                let eval = job_eval(&eval_id, &job, EvalTrigger::JobRegister, now);
                queue::enqueue(store, &tx, &eval, now).await?;
                Ok::<_, ServerError>(job.job_modify_index)
            }
        })
        .await?;
    Ok(Evaluated {
        eval_id: eval_id.into(),
        index: u64::try_from(committed.commit.version).unwrap_or(0),
        job_modify_index: committed.value,
    })
}

/// Registers version `version` of a job again, as its newest version (Nomad's `job
/// revert`). `enforce_prior_version`: the job's current version must be this one. The
/// register checks the job's `JobModifyIndex` as read here, so a change in between fails
/// it instead of being reverted over.
pub async fn revert(
    store: &Store,
    env: &Env,
    namespace: &str,
    job_id: &str,
    version: u64,
    enforce_prior_version: Option<u64>,
) -> Result<Registered> {
    let (current, old) = store
        .db
        .run(|tx, _| async move {
            let pk = record_keys::job(namespace, job_id);
            let Some(current) = store.ks.get::<Job>(&tx, &pk, ReadMode::Snapshot).await? else {
                return Err(ServerError::NotFound("job not found".to_owned()));
            };
            let old = records::get_job_version(&store.ks, &tx, namespace, job_id, version, ReadMode::Snapshot).await?;
            Ok::<_, ServerError>((current, old))
        })
        .await?;
    if let Some(want) = enforce_prior_version
        && current.version != want
    {
        return Err(ServerError::Conflict(format!(
            "current job has version {}; enforcing version {want}",
            current.version
        )));
    }
    if current.version == version {
        return Err(ServerError::Invalid(format!("can't revert to current version {version}")));
    }
    let Some(old) = old else {
        return Err(ServerError::NotFound(format!("job {job_id:?} has no version {version}")));
    };
    register(store, env, old, Some(current.job_modify_index)).await
}

/// Marks version `version` of a job stable or not (Nomad's `job/:id/stable`); the job
/// itself too when that is its current version. Not a change of the specification: no
/// new version, no evaluation. Returns the commit version.
pub async fn set_stable(store: &Store, namespace: &str, job_id: &str, version: u64, stable: bool) -> Result<u64> {
    let committed = store
        .db
        .run_committed(|tx, _| async move {
            let Some(mut old) =
                records::get_job_version(&store.ks, &tx, namespace, job_id, version, ReadMode::Serializable).await?
            else {
                return Err(ServerError::NotFound(format!("job {job_id:?} has no version {version}")));
            };
            old.stable = stable;
            records::put_job_version(&store.ks, &tx, &old).await?;
            let pk = record_keys::job(namespace, job_id);
            if let Some(mut job) = store.ks.get::<Job>(&tx, &pk, ReadMode::Serializable).await?
                && job.version == version
            {
                job.stable = stable;
                store.ks.put(&tx, &job, PutOptions::default()).await?;
            }
            Ok::<_, ServerError>(())
        })
        .await?;
    Ok(u64::try_from(committed.commit.version).unwrap_or(0))
}

/// What `POST /v1/job/:id/dispatch` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchRequest {
    /// The payload's bytes (the API sends them base64-encoded).
    pub payload: Vec<u8>,
    pub meta: std::collections::BTreeMap<String, String>,
    /// A second dispatch with the same token returns the first's child instead of a new one.
    pub idempotency_token: String,
    /// Replaces `dispatch` in the child's ID (`<parent>/<prefix>-<unix>-<random>`).
    pub id_prefix_template: String,
}

/// What a dispatch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatched {
    pub dispatched_job_id: String,
    pub eval_id: Option<EvalId>,
    pub job_create_index: u64,
    pub index: u64,
}

/// Checks a dispatch against the parent's `parameterized` block, as Nomad does.
fn check_dispatch(parent: &Job, request: &DispatchRequest) -> Result<()> {
    use stead_store::model::PayloadRequirement;
    let Some(p) = parent.parameterized_job.as_ref() else {
        return Err(ServerError::Invalid(format!("Specified job {:?} is not a parameterized job", parent.id.as_str())));
    };
    if parent.stop {
        return Err(ServerError::Invalid(format!("Specified job {:?} is stopped", parent.id.as_str())));
    }
    let size_max = stead_store::model::periodic::DISPATCH_PAYLOAD_SIZE_MAX;
    if request.payload.len() > size_max {
        return Err(ServerError::Invalid(format!(
            "Payload exceeds maximum size; {} > {size_max} bytes",
            request.payload.len()
        )));
    }
    match p.payload.clone().unwrap_or(PayloadRequirement::Optional) {
        PayloadRequirement::Required if request.payload.is_empty() => {
            return Err(ServerError::Invalid("Payload is not provided but required by the parameterized job".into()));
        }
        PayloadRequirement::Forbidden if !request.payload.is_empty() => {
            return Err(ServerError::Invalid("Payload provided but forbidden by the parameterized job".into()));
        }
        _ => {}
    }
    let missing: Vec<&str> =
        p.meta_required.iter().filter(|k| !request.meta.contains_key(*k)).map(String::as_str).collect();
    if !missing.is_empty() {
        return Err(ServerError::Invalid(format!("Dispatch did not provide required meta keys: {missing:?}")));
    }
    let unknown: Vec<&str> = request
        .meta
        .keys()
        .filter(|k| !p.meta_required.contains(k) && !p.meta_optional.contains(k))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(ServerError::Invalid(format!("Dispatch includes unpermitted meta keys: {unknown:?}")));
    }
    if request.id_prefix_template.contains('/') || request.id_prefix_template.len() > 64 {
        return Err(ServerError::Invalid("IdPrefixTemplate has no '/' and is at most 64 bytes".into()));
    }
    Ok(())
}

/// Dispatches a parameterized job: registers a child carrying the payload and meta, and
/// its evaluation.
pub async fn dispatch(
    store: &Store,
    env: &Env,
    namespace: &str,
    job_id: &str,
    request: &DispatchRequest,
) -> Result<Dispatched> {
    use base64::Engine;
    let eval_id = env.new_id();
    let now = env.now_ns();
    let suffix = format!("{:08x}", env.entropy.next_u64() as u32);
    let committed = store
        .db
        .run_committed(|tx, maybe_committed| {
            let (eval_id, suffix) = (eval_id.clone(), suffix.clone());
            async move {
                let prefix =
                    if request.id_prefix_template.is_empty() { "dispatch" } else { &request.id_prefix_template };
                // The same ID in every attempt (its parts are fixed outside the loop).
                let child_id = format!("{job_id}/{prefix}-{}-{suffix}", now / 1_000_000_000);
                if maybe_committed.0 {
                    // An earlier attempt may have launched it: then it is this dispatch's.
                    let child_key = record_keys::job(namespace, &child_id);
                    let child = store.ks.get::<Job>(&tx, &child_key, ReadMode::Snapshot).await?;
                    if let Some(child) = child.filter(|c| c.submit_time == now) {
                        let eval = store
                            .ks
                            .get::<Evaluation>(&tx, &record_keys::eval(namespace, &eval_id), ReadMode::Snapshot)
                            .await?;
                        let earlier = Some(child.create_index);
                        return Ok((child_id, eval.map(|e| e.id), child.create_index, earlier));
                    }
                }
                let Some(parent) =
                    store.ks.get::<Job>(&tx, &record_keys::job(namespace, job_id), ReadMode::Serializable).await?
                else {
                    return Err(ServerError::NotFound("job not found".to_owned()));
                };
                check_dispatch(&parent, request)?;
                let token_key = (!request.idempotency_token.is_empty())
                    .then(|| store.dispatch_token_key(namespace, job_id, &request.idempotency_token));
                if let Some(key) = &token_key
                    && let Some(child) = tx.get(key).await?
                {
                    let child = String::from_utf8_lossy(&child).into_owned();
                    let stored =
                        store.ks.get::<Job>(&tx, &record_keys::job(namespace, &child), ReadMode::Snapshot).await?;
                    if let Some(stored) = stored.filter(|j| !j.stop) {
                        return Ok((child, None, stored.create_index, None));
                    }
                }
                let mut child = parent.clone();
                child.id = child_id.clone().into();
                child.name = child_id.clone();
                child.parent_id = parent.id.clone();
                child.parameterized_job = None;
                child.dispatched = true;
                child.dispatch_idempotency_token.clone_from(&request.idempotency_token);
                child.payload = (!request.payload.is_empty())
                    .then(|| base64::engine::general_purpose::STANDARD.encode(&request.payload));
                child.meta.extend(request.meta.clone());
                child.stable = false;
                let written = register_in(store, &tx, child, Some(0), &eval_id, now).await?;
                if let Some(key) = &token_key {
                    tx.set(key, child_id.as_bytes());
                }
                Ok::<_, ServerError>((child_id, written.eval_id, 0, None))
            }
        })
        .await?;
    let (child, eval_id, create_index, earlier) = committed.value;
    let index = earlier.unwrap_or(u64::try_from(committed.commit.version).unwrap_or(0));
    let new = eval_id.is_some() || earlier.is_some();
    Ok(Dispatched {
        dispatched_job_id: child,
        eval_id,
        job_create_index: if new { index } else { create_index },
        index,
    })
}

/// Sets the count of `group` (Nomad's `job scale`): a new version of the job, checked
/// against the `JobModifyIndex` read, so a change in between fails the scale instead of
/// being overwritten.
pub async fn scale(
    store: &Store,
    env: &Env,
    namespace: &str,
    job_id: &str,
    group: &str,
    count: i64,
    enforce_index: Option<u64>,
) -> Result<Registered> {
    if count < 0 {
        return Err(ServerError::Invalid(format!("scaling action count can't be negative: {count}")));
    }
    let count = i32::try_from(count).map_err(|_| ServerError::Invalid(format!("count {count} is too large")))?;
    let read = crate::reads::job(store, namespace, job_id).await?;
    let mut job = read.value;
    if job.stop {
        return Err(ServerError::Invalid(format!("job {job_id:?} is stopped; it cannot be scaled")));
    }
    let Some(tg) = job.task_groups.iter_mut().find(|g| g.name == group) else {
        return Err(ServerError::Invalid(format!("task group {group:?} specified for scaling does not exist in job")));
    };
    if let Some(policy) = &tg.scaling {
        let (min, max) = (policy.min.unwrap_or(0), policy.max.unwrap_or(i64::MAX));
        if i64::from(count) < min || i64::from(count) > max {
            return Err(ServerError::Invalid(format!(
                "group count was {count}; the group's scaling policy allows {min} to {max}"
            )));
        }
    }
    tg.count = Some(count);
    let enforce = Some(enforce_index.unwrap_or(job.job_modify_index));
    register(store, env, job, enforce).await
}
