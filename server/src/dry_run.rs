//! `job plan`: the scheduler core on a snapshot, as if the job were registered, with
//! nothing committed. The same code as a worker's attempt, so the dry run shows what a
//! register would do at that moment (placement is sampled: another moment, or another
//! seed, may choose other nodes, but never other counts on an unchanged cluster).

use stead_sched::{EvalInput, Outcome, SchedConfig, Snapshot, schedule};
use stead_store::Version;
use stead_store::model::{EvalStatus, EvalTrigger, Evaluation, Job};
use stead_store::records::job_spec_changed;

use crate::env::Env;
use crate::error::Result;
use crate::keys::Store;
use crate::snapshot::{ClusterCache, read_job_state};

/// What `job plan` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct DryRun {
    /// The plan with its annotations (`DesiredTGUpdates`: create, destroy, in-place,
    /// destructive, canary per group) and failed placements (`FailedTGAllocs`).
    pub outcome: Outcome,
    /// The stored job's `JobModifyIndex` (0 when it does not exist): what `job run
    /// -check-index` must pass for the plan to still hold.
    pub job_modify_index: u64,
    /// The stored job, for the diff.
    pub stored: Option<Job>,
    /// The read version of the snapshot.
    pub snapshot_version: Version,
}

/// Plans `job` (canonicalized and validated) against the store as it is now.
pub async fn dry_run(
    store: &Store,
    cache: &mut ClusterCache,
    env: &Env,
    config: &SchedConfig,
    cluster_seed: u64,
    job: &Job,
) -> Result<DryRun> {
    let cache = tokio::sync::Mutex::new(cache);
    let (view, state) = store
        .db
        .run(|tx, _| {
            let cache = &cache;
            async move {
                let view = {
                    let mut cache = cache.lock().await;
                    cache.refresh(store, &tx).await?;
                    cache.view()
                };
                let state = read_job_state(store, &tx, &job.namespace, job.id.as_str()).await?;
                Ok::<_, crate::error::ServerError>((view, state))
            }
        })
        .await?;
    let mut candidate = job.clone();
    let job_modify_index = state.job.as_ref().map_or(0, |j| j.job_modify_index);
    candidate.version = match &state.job {
        None => 0,
        Some(old) if job_spec_changed(old, job) => old.version + 1,
        Some(old) => old.version,
    };
    candidate.job_modify_index = job_modify_index;
    let now = env.now_ns();
    let eval = Evaluation {
        id: env.new_id().into(),
        namespace: job.namespace.clone(),
        priority: job.priority,
        eval_type: job.kind(),
        triggered_by: EvalTrigger::JobRegister,
        job_id: job.id.clone(),
        status: EvalStatus::Pending,
        annotate_plan: true,
        create_time: now,
        modify_time: now,
        ..Evaluation::default()
    };
    let snapshot = Snapshot {
        job: Some(&candidate),
        allocs: &state.allocs,
        deployment: state.deployment.as_ref(),
        cluster: &view,
    };
    let seed = stead_sched::ids::attempt_seed(cluster_seed, eval.id.as_str(), "dry-run", 0);
    let outcome = schedule(&snapshot, &EvalInput { eval: &eval, now, seed, config });
    Ok(DryRun { outcome, job_modify_index, stored: state.job, snapshot_version: state.version })
}

/// The answer of `job plan` in Nomad's `JobPlanResponse` JSON shape (the HTTP API and the
/// gRPC Jobs service send it): annotations, failed placements, the check index, and with
/// `want_diff` the diff of the stored job against `job`.
pub fn plan_response(d: &DryRun, job: &Job, want_diff: bool) -> serde_json::Value {
    use serde_json::{Value, json};
    let updates: std::collections::BTreeMap<&String, Value> = d
        .outcome
        .desired_tg_updates
        .iter()
        .map(|(g, u)| {
            (
                g,
                json!({
                    "Ignore": u.ignore, "Place": u.place, "Migrate": u.migrate, "Stop": u.stop,
                    "InPlaceUpdate": u.in_place_update, "DestructiveUpdate": u.destructive_update,
                    "Canary": u.canary, "Preemptions": u.preemptions,
                    "RescheduleNow": u.reschedule_now, "RescheduleLater": u.reschedule_later,
                }),
            )
        })
        .collect();
    let diff = if want_diff {
        let old = d.stored.as_ref().map_or(Value::Null, |s| serde_json::to_value(s).unwrap_or_default());
        json!(stead_store::diff::diff_jobs(&old, &serde_json::to_value(job).unwrap_or_default()))
    } else {
        Value::Null
    };
    let index = u64::try_from(d.snapshot_version).unwrap_or(0);
    json!({
        "Annotations": {"DesiredTGUpdates": updates, "PreemptedAllocs": null},
        "FailedTGAllocs": d.outcome.failed_tg_allocs,
        "JobModifyIndex": d.job_modify_index,
        "CreatedEvals": null,
        "Diff": diff,
        "NextPeriodicLaunch": null,
        "Warnings": "",
        "Index": index,
    })
}
