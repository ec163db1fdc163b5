//! Periodic launches: each pass looks at every periodic parent and launches the child
//! that is due (see `crate::periodic`), each in its own transaction under the lease.

use std::time::Duration;

use futures::future::BoxFuture;
use stead_store::ReadMode;
use stead_store::model::Job;
use stead_store::records::keys as record_keys;
use tracing::warn;

use super::{Duty, Held, check};
use crate::env::Env;
use crate::error::{Result, ServerError};
use crate::keys::Store;
use crate::periodic::{self, Launch};

/// Parents looked at per pass at most.
pub const PARENTS_PER_PASS_MAX: usize = 10_000;

pub(super) struct PeriodicDuty {
    pub interval: Duration,
}

impl Duty for PeriodicDuty {
    fn name(&self) -> &'static str {
        "periodic"
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn pass<'a>(&'a self, store: &'a Store, env: &'a Env, held: &'a Held) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            launch_due(store, env, held).await?;
            Ok(())
        })
    }
}

/// Launches every child that is due; returns how many were launched.
pub async fn launch_due(store: &Store, env: &Env, held: &Held) -> Result<usize> {
    let tx = store.db.create_transaction()?;
    let parents = periodic::periodic_parents(store, &tx, PARENTS_PER_PASS_MAX).await?;
    drop(tx);
    let mut launched = 0;
    for parent in parents.iter().filter(|p| !p.stop) {
        match launch_one(store, env, held, parent).await {
            Ok(true) => launched += 1,
            Ok(false) => {}
            Err(ServerError::DutyLost { duty }) => return Err(ServerError::DutyLost { duty }),
            Err(e) => warn!(job = %parent.id, namespace = %parent.namespace, error = %e, "periodic launch failed"),
        }
    }
    Ok(launched)
}

async fn launch_one(store: &Store, env: &Env, held: &Held, parent: &Job) -> Result<bool> {
    let eval_id = env.new_id();
    let now = env.now_ns();
    store
        .db
        .run(|tx, _| {
            let eval_id = eval_id.clone();
            async move {
                check(store, &tx, held).await?;
                let (ns, id) = (parent.namespace.as_str(), parent.id.as_str());
                // The parent as it is now (the list was read before this transaction).
                let Some(parent) = store.ks.get::<Job>(&tx, &record_keys::job(ns, id), ReadMode::Serializable).await?
                else {
                    return Ok(false);
                };
                let Some(last) = periodic::last_launch(store, &tx, ns, id).await? else {
                    // First sight of this parent: launches start from now.
                    tx.set(&store.periodic_launch_key(ns, id), &now.to_be_bytes());
                    return Ok(false);
                };
                match periodic::next_launch(&parent, last)? {
                    Some(next) if next <= now => {}
                    _ => return Ok(false),
                }
                let Some(due) = periodic::latest_launch(&parent, now)? else { return Ok(false) };
                let launched = periodic::launch_in(store, &tx, &parent, due, &eval_id, now, false).await?;
                Ok::<_, ServerError>(matches!(launched, Launch::Launched(_)))
            }
        })
        .await
}
