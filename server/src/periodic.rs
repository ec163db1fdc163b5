//! Periodic jobs (Nomad's periodic dispatcher): a parent with a `periodic` block is never
//! placed itself; at each time its cron expressions name (in its `time_zone`, UTC by
//! default) a child `<parent>/periodic-<unix seconds>` is registered. With
//! `prohibit_overlap`, a launch is skipped while an earlier child still runs.
//!
//! A parent's latest launch time is a record (`PERIODIC_LAUNCH`) written in the same
//! transaction as the child, so a launch happens once however many servers look, and a
//! restart neither repeats nor (beyond the one due) catches up launches.

use chrono::{DateTime, TimeZone, Utc};
use stead_store::model::{Job, JobStatus};
use stead_store::records::keys as record_keys;
use stead_store::schema::{PAGE_LIMIT_MAX, PageOptions};
use stead_store::{ReadMode, Transaction};

use crate::env::Env;
use crate::error::{Result, ServerError};
use crate::jobs::{self, Registered};
use crate::keys::Store;

/// The first launch time strictly after `after_ns` (Unix nanoseconds) of any of `job`'s
/// cron expressions, in its time zone; None when it has none, or it is not enabled.
pub fn next_launch(job: &Job, after_ns: i64) -> Result<Option<i64>> {
    occurrence(job, after_ns, true)
}

/// The latest launch time at or before `at_ns`: after an outage, the one launch that is
/// due (Nomad does not catch up every missed one).
pub fn latest_launch(job: &Job, at_ns: i64) -> Result<Option<i64>> {
    occurrence(job, at_ns, false)
}

fn occurrence(job: &Job, at_ns: i64, forward: bool) -> Result<Option<i64>> {
    let Some(p) = job.periodic.as_ref() else { return Ok(None) };
    if p.enabled == Some(false) {
        return Ok(None);
    }
    let tz: chrono_tz::Tz = if p.time_zone.is_empty() {
        chrono_tz::UTC
    } else {
        p.time_zone.parse().map_err(|_| {
            ServerError::Invalid(format!("periodic.time_zone {:?} is not an IANA time zone name", p.time_zone))
        })?
    };
    let at: DateTime<Utc> = Utc.timestamp_nanos(at_ns);
    let at = at.with_timezone(&tz);
    let mut best: Option<i64> = None;
    for spec in p.all_specs() {
        let cron = croner::parser::CronParser::new()
            .parse(spec)
            .map_err(|e| ServerError::Invalid(format!("periodic cron {spec:?}: {e}")))?;
        let found =
            if forward { cron.find_next_occurrence(&at, false) } else { cron.find_previous_occurrence(&at, true) };
        if let Ok(t) = found
            && let Some(ns) = t.timestamp_nanos_opt()
        {
            best = Some(match best {
                None => ns,
                Some(b) if forward => b.min(ns),
                Some(b) => b.max(ns),
            });
        }
    }
    Ok(best)
}

/// The child a launch at `launch_ns` registers.
pub fn child_of(parent: &Job, launch_ns: i64) -> Job {
    let mut child = parent.clone();
    child.id = format!("{}/periodic-{}", parent.id, launch_ns / 1_000_000_000).into();
    child.name = child.id.to_string();
    child.parent_id = parent.id.clone();
    child.periodic = None;
    child.status = Some(JobStatus::Pending);
    child.stable = false;
    child.version = 0;
    child
}

pub(crate) async fn last_launch(store: &Store, tx: &Transaction, ns: &str, job: &str) -> Result<Option<i64>> {
    let bytes = tx.get(&store.periodic_launch_key(ns, job)).await?;
    Ok(bytes.and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok()).map(i64::from_be_bytes))
}

/// A child of `parent` still runs: it is not dead and not stopped.
async fn child_running(store: &Store, tx: &Transaction, parent: &Job) -> Result<bool> {
    let prefix = format!("{}/periodic-", parent.id);
    let mut next = None;
    loop {
        let page = PageOptions::new(PAGE_LIMIT_MAX).after(next).read_mode(ReadMode::Snapshot);
        let p = store.ks.list::<Job>(tx, &stead_store::schema::Tuple::new(&parent.namespace.as_str()), &page).await?;
        if p.items.iter().any(|j| j.id.as_str().starts_with(&prefix) && !j.stop && j.status != Some(JobStatus::Dead)) {
            return Ok(true);
        }
        next = p.next;
        if next.is_none() {
            return Ok(false);
        }
    }
}

/// What a launch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    Launched(Registered),
    /// `prohibit_overlap` and a child still runs.
    SkippedOverlap,
    /// This launch time was already done.
    AlreadyLaunched,
}

/// Launches `parent` for `launch_ns` in `tx` (the caller checks its duty lease there).
pub(crate) async fn launch_in(
    store: &Store,
    tx: &Transaction,
    parent: &Job,
    launch_ns: i64,
    eval_id: &str,
    now: i64,
    forced: bool,
) -> Result<Launch> {
    let (ns, id) = (parent.namespace.as_str(), parent.id.as_str());
    if !forced && last_launch(store, tx, ns, id).await?.is_some_and(|last| last >= launch_ns) {
        return Ok(Launch::AlreadyLaunched);
    }
    if !forced {
        tx.set(&store.periodic_launch_key(ns, id), &launch_ns.to_be_bytes());
    }
    let overlap = parent.periodic.as_ref().and_then(|p| p.prohibit_overlap).unwrap_or(false);
    if overlap && child_running(store, tx, parent).await? {
        return Ok(Launch::SkippedOverlap);
    }
    let child = child_of(parent, launch_ns);
    let written = jobs::register_in(store, tx, child, None, eval_id, now).await?;
    // The commit version is known only after the commit; the caller fills it in.
    Ok(Launch::Launched(written.registered(0)))
}

/// `POST /v1/job/:id/periodic/force`: launches a child now, whatever the schedule.
pub async fn force(store: &Store, env: &Env, namespace: &str, job_id: &str) -> Result<Registered> {
    let eval_id = env.new_id();
    let now = env.now_ns();
    let committed = store
        .db
        .run_committed(|tx, _| {
            let eval_id = eval_id.clone();
            async move {
                let Some(parent) =
                    store.ks.get::<Job>(&tx, &record_keys::job(namespace, job_id), ReadMode::Serializable).await?
                else {
                    return Err(ServerError::NotFound("job not found".to_owned()));
                };
                if !parent.is_periodic() {
                    return Err(ServerError::Invalid(format!("job {job_id:?} is not periodic")));
                }
                if parent.stop {
                    return Err(ServerError::Invalid(format!("job {job_id:?} is stopped")));
                }
                match launch_in(store, &tx, &parent, now, &eval_id, now, true).await? {
                    Launch::Launched(r) => Ok(r),
                    Launch::SkippedOverlap => Err(ServerError::Invalid(format!(
                        "job {job_id:?} prohibits overlapping launches and a child is still running"
                    ))),
                    Launch::AlreadyLaunched => Err(ServerError::Conflict(format!("job {job_id:?} was just launched"))),
                }
            }
        })
        .await?;
    let mut r = committed.value;
    let index = u64::try_from(committed.commit.version).unwrap_or(0);
    r.index = index;
    if r.changed {
        r.job_modify_index = index;
    }
    Ok(r)
}

/// The periodic parents, for the duty.
pub(crate) async fn periodic_parents(store: &Store, tx: &Transaction, max: usize) -> Result<Vec<Job>> {
    let (begin, end) = store.periodic_jobs().range();
    let range = stead_store::RangeOption::new(begin, end).limit(max);
    let entries = tx.get_range(&range, ReadMode::Snapshot).await?;
    let mut parents = Vec::new();
    for kv in entries.key_values {
        let Ok((ns, job)) = store.periodic_jobs().unpack::<(String, String)>(&kv.key) else { continue };
        if let Some(j) = store.ks.get::<Job>(tx, &record_keys::job(&ns, &job), ReadMode::Snapshot).await? {
            parents.push(j);
        }
    }
    Ok(parents)
}
