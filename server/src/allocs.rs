//! Allocation updates from clients (Nomad's `Node.UpdateAlloc`): client status, task
//! states, deployment health. An allocation that becomes terminal frees its usage on its
//! node in the same transaction and signals capacity; a failed one gets its job an
//! evaluation so the reconciler can reschedule it.

use std::collections::BTreeSet;

use stead_sched::plan::stored_alloc_usage;
use stead_store::ReadMode;
use stead_store::model::{AllocClientStatus, AllocDesiredStatus, Allocation, EvalTrigger, Evaluation, Job};
use stead_store::records::keys as record_keys;
use stead_store::schema::PutOptions;

use crate::env::Env;
use crate::error::{Result, ServerError};
use crate::events;
use crate::keys::{Log, Store};
use crate::{queue, usage};

/// Updates a transaction may carry: each reads and writes a record and maybe a usage.
pub const CLIENT_UPDATES_MAX: usize = 1_000;

/// Applies the client fields of `updates` (matched by namespace and ID; unknown
/// allocations, with `node` those on another node, and updates that report a finished
/// allocation running again are skipped) in one transaction.
/// Returns how many were applied.
pub async fn update_from_client(store: &Store, env: &Env, node: Option<&str>, updates: &[Allocation]) -> Result<usize> {
    if updates.len() > CLIENT_UPDATES_MAX {
        return Err(ServerError::Invalid(format!(
            "{} allocation updates in one request; send at most {CLIENT_UPDATES_MAX}",
            updates.len()
        )));
    }
    let now = env.now_ns();
    let eval_ids: Vec<String> = updates.iter().map(|_| env.new_id()).collect();
    store
        .db
        .run(|tx, _| {
            let eval_ids = eval_ids.clone();
            async move {
                let mut applied = 0;
                let mut freed_nodes = BTreeSet::new();
                let mut failed_jobs = BTreeSet::new();
                for update in updates {
                    let pk = record_keys::alloc(&update.namespace, update.id.as_str());
                    let Some(mut alloc) = store.ks.get::<Allocation>(&tx, &pk, ReadMode::Serializable).await? else {
                        continue;
                    };
                    if node.is_some_and(|n| n != alloc.node_id.as_str()) {
                        continue;
                    }
                    // A finished allocation never runs again, and its usage is freed: a
                    // late or repeated update that reports it running is stale.
                    if alloc.client_status.is_terminal() && !update.client_status.is_terminal() {
                        continue;
                    }
                    let was_terminal = alloc.is_terminal();
                    alloc.client_status = update.client_status.clone();
                    alloc.client_description.clone_from(&update.client_description);
                    alloc.task_states.clone_from(&update.task_states);
                    if update.deployment_status.is_some() {
                        alloc.deployment_status.clone_from(&update.deployment_status);
                    }
                    if update.network_status.is_some() {
                        alloc.network_status.clone_from(&update.network_status);
                    }
                    alloc.modify_time = now;
                    if !was_terminal && alloc.is_terminal() {
                        let node = alloc.node_id.as_str();
                        if let Some(mut u) = usage::get_usage(store, &tx, node, ReadMode::Serializable).await? {
                            u.remove(&stored_alloc_usage(&alloc));
                            usage::put_usage(store, &tx, &u)?;
                        }
                        freed_nodes.insert(alloc.node_id.clone());
                    }
                    if alloc.client_status == AllocClientStatus::Failed
                        && alloc.desired_status == AllocDesiredStatus::Run
                        && !was_terminal
                    {
                        failed_jobs.insert((alloc.namespace.clone(), alloc.job_id.clone()));
                    }
                    // A client update leaves AllocModifyIndex alone (plain put).
                    store.ks.put(&tx, &alloc, PutOptions::default()).await?;
                    events::emit_alloc(store, &tx, &alloc, "AllocationUpdated")?;
                    applied += 1;
                }
                if !freed_nodes.is_empty() {
                    usage::log_nodes(store, &tx, Log::Usage, freed_nodes.iter().map(|n| n.as_str()));
                    usage::signal_capacity(store, &tx);
                }
                for ((ns, job_id), eval_id) in failed_jobs.into_iter().zip(eval_ids) {
                    let job =
                        store.ks.get::<Job>(&tx, &record_keys::job(&ns, job_id.as_str()), ReadMode::Snapshot).await?;
                    let Some(job) = job else { continue };
                    let eval = crate::jobs::job_eval(&eval_id, &job, EvalTrigger::AllocFailure, now);
                    queue::enqueue(store, &tx, &eval, now).await?;
                }
                Ok::<_, ServerError>(applied)
            }
        })
        .await
}

/// What `POST /v1/allocation/:id/stop` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRequested {
    pub eval_id: stead_store::model::EvalId,
    pub index: u64,
}

/// Stops an allocation and has it replaced (Nomad's `alloc stop`): marks it for
/// migration and queues its job's evaluation; the scheduler stops it and places a
/// replacement.
pub async fn stop(store: &Store, env: &Env, namespace: &str, alloc_id: &str) -> Result<StopRequested> {
    let eval_id = env.new_id();
    let now = env.now_ns();
    let committed = store
        .db
        .run_committed(|tx, maybe_committed| {
            let eval_id = eval_id.clone();
            async move {
                if maybe_committed.0
                    && store
                        .ks
                        .get::<Evaluation>(&tx, &record_keys::eval(namespace, &eval_id), ReadMode::Snapshot)
                        .await?
                        .is_some()
                {
                    return Ok(());
                }
                let pk = record_keys::alloc(namespace, alloc_id);
                let Some(mut alloc) = store.ks.get::<Allocation>(&tx, &pk, ReadMode::Serializable).await? else {
                    return Err(ServerError::NotFound("alloc not found".to_owned()));
                };
                let job = store
                    .ks
                    .get::<Job>(&tx, &record_keys::job(namespace, alloc.job_id.as_str()), ReadMode::Snapshot)
                    .await?;
                alloc.desired_transition.migrate = Some(true);
                alloc.modify_time = now;
                store.ks.put(&tx, &alloc, PutOptions::default()).await?;
                events::emit_alloc(store, &tx, &alloc, "AllocationUpdateDesiredStatus")?;
                let Some(job) = job else {
                    return Err(ServerError::NotFound(format!(
                        "the job {} of allocation {alloc_id} is gone",
                        alloc.job_id
                    )));
                };
                let eval = crate::jobs::job_eval(&eval_id, &job, EvalTrigger::AllocStop, now);
                queue::enqueue(store, &tx, &eval, now).await?;
                Ok::<_, ServerError>(())
            }
        })
        .await?;
    Ok(StopRequested { eval_id: eval_id.into(), index: u64::try_from(committed.commit.version).unwrap_or(0) })
}
