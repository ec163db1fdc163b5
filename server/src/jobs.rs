//! Job writes that create evaluations: register and stop (deregister, purge). Each writes
//! the job, its version history and its evaluation in one transaction, as Nomad's
//! `Job.Register` writes the job and its eval in one Raft entry.
//!
//! The caller canonicalizes and validates the job first (the HTTP API does, with errors at
//! field paths); these functions store what they are given.

use stead_store::ReadMode;
use stead_store::model::{EvalId, EvalStatus, EvalTrigger, Evaluation, Job, JobStatus, JobType};
use stead_store::records::{self, job_spec_changed, keys as record_keys};
use stead_store::schema::{JobModify, PutOptions};

use crate::env::Env;
use crate::error::{Result, ServerError};
use crate::keys::Store;
use crate::queue;

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
}

fn job_eval(id: &str, job: &Job, trigger: EvalTrigger, now: i64) -> Evaluation {
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
pub async fn register(store: &Store, env: &Env, mut job: Job, enforce_index: Option<u64>) -> Result<Registered> {
    let eval_id = env.new_id();
    let now = env.now_ns();
    job.submit_time = now;
    /// What the transaction knows; the commit supplies the new JobModifyIndex.
    struct Written {
        eval_id: Option<EvalId>,
        version: u64,
        changed: bool,
        /// Known when the job was not bumped by this commit.
        job_modify_index: Option<u64>,
    }
    let committed = store
        .db
        .run_committed(|tx, maybe_committed| {
            let (job, eval_id) = (job.clone(), eval_id.clone());
            async move {
                let pk = record_keys::job(&job.namespace, job.id.as_str());
                if maybe_committed.0
                    && let Some(eval) = store
                        .ks
                        .get::<Evaluation>(&tx, &record_keys::eval(&job.namespace, &eval_id), ReadMode::Snapshot)
                        .await?
                {
                    // The earlier attempt committed: report what is stored.
                    let stored = store.ks.get::<Job>(&tx, &pk, ReadMode::Snapshot).await?;
                    return Ok(Written {
                        eval_id: Some(eval.id),
                        version: stored.as_ref().map_or(0, |j| j.version),
                        changed: true,
                        job_modify_index: stored.map(|j| j.job_modify_index),
                    });
                }
                let existing = store.ks.get::<Job>(&tx, &pk, ReadMode::Serializable).await?;
                check_index(&job, existing.as_ref(), enforce_index)?;
                let mut job = job;
                let changed = existing.as_ref().is_none_or(|old| job_spec_changed(old, &job));
                job.version = match &existing {
                    None => 0,
                    Some(old) if changed => old.version + 1,
                    Some(old) => old.version,
                };
                job.status = Some(JobStatus::Pending);
                let options =
                    if changed { PutOptions::default().job_modify(JobModify::Bump) } else { PutOptions::default() };
                store.ks.put(&tx, &job, options).await?;
                if changed {
                    records::put_job_version(&store.ks, &tx, &job).await?;
                }
                if is_system(&job) {
                    tx.set(&store.system_job_key(&job.namespace, job.id.as_str()), b"");
                } else {
                    tx.clear(&store.system_job_key(&job.namespace, job.id.as_str()));
                }
                let eval = if wants_eval(&job) {
                    let eval = job_eval(&eval_id, &job, EvalTrigger::JobRegister, now);
                    queue::enqueue(store, &tx, &eval, now).await?;
                    Some(eval.id)
                } else {
                    None
                };
                let job_modify_index = existing.filter(|_| !changed).map(|old| old.job_modify_index);
                Ok::<_, ServerError>(Written { eval_id: eval, version: job.version, changed, job_modify_index })
            }
        })
        .await?;
    let w = committed.value;
    let index = u64::try_from(committed.commit.version).unwrap_or(0);
    Ok(Registered {
        eval_id: w.eval_id,
        job_modify_index: w.job_modify_index.unwrap_or(index),
        version: w.version,
        changed: w.changed,
        index,
    })
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
                    return Ok(eval.id);
                }
                let pk = record_keys::job(namespace, job_id);
                let Some(mut job) = store.ks.get::<Job>(&tx, &pk, ReadMode::Serializable).await? else {
                    return Err(ServerError::NotFound(format!("job {job_id:?} not found in namespace {namespace:?}")));
                };
                let eval = job_eval(&eval_id, &job, EvalTrigger::JobDeregister, now);
                if purge {
                    store.ks.delete::<Job>(&tx, &pk).await?;
                    let versions = records::list_job_versions(&store.ks, &tx, namespace, job_id, usize::MAX).await?;
                    for v in versions {
                        store
                            .ks
                            .delete::<records::JobVersion>(&tx, &record_keys::job_version(namespace, job_id, v.version))
                            .await?;
                    }
                    tx.clear(&store.system_job_key(namespace, job_id));
                } else if !job.stop {
                    job.stop = true;
                    job.version += 1;
                    job.status = Some(JobStatus::Dead);
                    store.ks.put(&tx, &job, PutOptions::default().job_modify(JobModify::Bump)).await?;
                    records::put_job_version(&store.ks, &tx, &job).await?;
                }
                queue::enqueue(store, &tx, &eval, now).await?;
                Ok::<_, ServerError>(eval.id)
            }
        })
        .await?;
    Ok(Stopped { eval_id: committed.value, index: u64::try_from(committed.commit.version).unwrap_or(0) })
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
