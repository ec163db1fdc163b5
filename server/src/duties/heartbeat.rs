//! Heartbeat expiry: a node whose heartbeat deadline passed goes `down`, and every job
//! with allocations on it gets an evaluation (the reconciler marks them lost and places
//! replacements), as Nomad's leader does when a node's TTL timer fires.
//!
//! A server that has just taken the duty over expires nothing for `failover_ttl`: the
//! nodes may have been heartbeating to a server that died, or to nobody while the only
//! server restarted.

use std::time::Duration;

use futures::future::BoxFuture;
use stead_store::model::{Node, NodeStatus};
use stead_store::records::keys as record_keys;
use stead_store::{RangeOption, ReadMode};

use super::{Duty, Held, check};
use crate::clients::{self, HeartbeatConfig};
use crate::env::Env;
use crate::error::{Result, ServerError};
use crate::keys::Store;
use crate::nodes;

/// Nodes expired per pass at most; the rest wait for the next pass.
pub const EXPIRED_BATCH_MAX: usize = 256;

pub(super) struct HeartbeatDuty {
    pub config: HeartbeatConfig,
    pub interval: Duration,
}

impl Duty for HeartbeatDuty {
    fn name(&self) -> &'static str {
        "heartbeat"
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn pass<'a>(&'a self, store: &'a Store, env: &'a Env, held: &'a Held) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            expire(store, env, &self.config, held).await?;
            Ok(())
        })
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Marks down the nodes whose deadline passed; returns their IDs.
pub async fn expire(store: &Store, env: &Env, config: &HeartbeatConfig, held: &Held) -> Result<Vec<String>> {
    let now = env.now_ns();
    if now < held.lease.acquired_at.saturating_add(nanos(config.failover_ttl)) {
        return Ok(Vec::new());
    }
    let index = store.heartbeats_by_deadline();
    let (begin, _) = index.range();
    let end = index.pack(&(now,));
    let tx = store.db.create_transaction()?;
    let entries = tx.get_range(&RangeOption::new(begin, end).limit(EXPIRED_BATCH_MAX), ReadMode::Snapshot).await?;
    drop(tx);
    let mut expired = Vec::new();
    for kv in entries.key_values {
        let Ok((deadline, node)) = index.unpack::<(i64, String)>(&kv.key) else {
            continue;
        };
        if expire_node(store, env, held, &node, deadline, now).await? {
            expired.push(node);
        }
    }
    Ok(expired)
}

/// One node, in its own transaction: true when it was marked down.
async fn expire_node(store: &Store, env: &Env, held: &Held, node_id: &str, deadline: i64, now: i64) -> Result<bool> {
    store
        .db
        .run(|tx, _| async move {
            check(store, &tx, held).await?;
            let current = tx.get(&store.heartbeat_key(node_id)).await?.as_deref().and_then(clients::decode_deadline);
            if current != Some(deadline) {
                // A heartbeat moved the deadline (or the node is gone): a stale index entry.
                tx.clear(&store.heartbeat_deadline_key(deadline, node_id));
                return Ok(false);
            }
            let Some(mut node) = store.ks.get::<Node>(&tx, &record_keys::node(node_id), ReadMode::Serializable).await?
            else {
                clients::clear_deadline(store, &tx, node_id).await?;
                return Ok(false);
            };
            clients::clear_deadline(store, &tx, node_id).await?;
            if node.status == NodeStatus::Down {
                return Ok(false);
            }
            node.status = NodeStatus::Down;
            node.status_description = "node missed its heartbeat".to_owned();
            node.status_updated_at = now / 1_000_000_000;
            nodes::push_event(&mut node, "Cluster", "Node heartbeat missed", now);
            nodes::upsert_in(store, &tx, env, &node, None).await?;
            Ok::<_, ServerError>(true)
        })
        .await
}
