//! Per-node usage records and the change logs that let caches follow them.
//!
//! `NodeUsage.used` is the sum of the node's non-terminal allocations. Three kinds of
//! writes change it, each in the transaction that changes the allocation: a plan commit
//! (placements add, stops subtract), a client update that makes an allocation terminal
//! (subtracts), and a node update (capacity and schedulability; `used` carried over). Each
//! appends the node to the usage log in the same transaction.

use stead_sched::NodeUsage;
use stead_store::schema::encoding;
use stead_store::{MutationType, ReadMode, Transaction};

use crate::error::{Result, ServerError};
use crate::keys::{Log, STAMP_VALUE_TEMPLATE, Store};

/// Bytes of node IDs per log entry: under the store's 100,000-byte value limit.
const LOG_ENTRY_BYTES_MAX: usize = 90_000;

pub async fn get_usage(store: &Store, tx: &Transaction, node: &str, mode: ReadMode) -> Result<Option<NodeUsage>> {
    let Some(bytes) = tx.get_with(&store.usage_key(node), mode).await? else {
        return Ok(None);
    };
    let usage = encoding::decode(&bytes)
        .map_err(|reason| ServerError::Corrupt { what: format!("usage record of node {node}"), reason })?;
    Ok(Some(usage))
}

pub fn put_usage(store: &Store, tx: &Transaction, usage: &NodeUsage) -> Result<()> {
    let bytes = encoding::encode(usage)
        .map_err(|reason| ServerError::Corrupt { what: format!("usage record of node {}", usage.node_id), reason })?;
    tx.set(&store.usage_key(usage.node_id.as_str()), &bytes);
    Ok(())
}

pub fn delete_usage(store: &Store, tx: &Transaction, node: &str) {
    tx.clear(&store.usage_key(node));
}

/// Appends `nodes` to a change log at this transaction's commit version. Call once per
/// log per transaction (entries of one transaction are told apart by part numbers, which
/// this call assigns from 0).
pub fn log_nodes<'a>(store: &Store, tx: &Transaction, log: Log, nodes: impl IntoIterator<Item = &'a str>) {
    let mut part = 0u16;
    let mut batch: Vec<&str> = Vec::new();
    let mut bytes = 0;
    let flush = |batch: &mut Vec<&str>, part: &mut u16| {
        if !batch.is_empty() {
            let value = stead_store::tuple::pack(&*batch);
            tx.set_versionstamped_key(&store.log_key_template(log, *part), &value);
            *part += 1;
            batch.clear();
        }
    };
    for node in nodes {
        if bytes + node.len() + 2 > LOG_ENTRY_BYTES_MAX {
            flush(&mut batch, &mut part);
            bytes = 0;
        }
        bytes += node.len() + 2;
        batch.push(node);
    }
    flush(&mut batch, &mut part);
}

/// Decodes a log entry's value: the node IDs it lists.
pub fn decode_log_entry(value: &[u8]) -> Result<Vec<String>> {
    stead_store::tuple::unpack::<Vec<String>>(value)
        .map_err(|e| ServerError::Corrupt { what: "usage log entry".to_owned(), reason: e.to_string() })
}

/// Records that capacity appeared (a node became schedulable or grew, allocations became
/// terminal): blocked evaluations get another chance. A blind write.
pub fn signal_capacity(store: &Store, tx: &Transaction) {
    tx.atomic_op(&store.capacity_key(), &STAMP_VALUE_TEMPLATE, MutationType::SetVersionstampedValue);
}
