//! Per-node usage records and the change logs that let caches follow them.
//!
//! `NodeUsage.used` is the sum of the node's non-terminal allocations. Three kinds of
//! writes change it, each in the transaction that changes the allocation: a plan commit
//! (placements add, stops subtract), a client update that makes an allocation terminal
//! (subtracts), and a node update (capacity and schedulability; `used` carried over). Each
//! appends the node to the usage log in the same transaction.

use std::collections::BTreeSet;

use stead_sched::NodeUsage;
use stead_sched::placement::{Capacity, Usage};
use stead_store::{ReadMode, Transaction};

use crate::error::{Result, ServerError};
use crate::keys::{Log, STAMP_VALUE_TEMPLATE, Store};

/// Bytes of node IDs per log entry: under the store's 100,000-byte value limit.
const LOG_ENTRY_BYTES_MAX: usize = 90_000;

pub async fn get_usage(store: &Store, tx: &Transaction, node: &str, mode: ReadMode) -> Result<Option<NodeUsage>> {
    let Some(bytes) = tx.get_with(&store.usage_key(node), mode).await? else {
        return Ok(None);
    };
    let usage = decode_usage(&bytes)
        .map_err(|reason| ServerError::Corrupt { what: format!("usage record of node {node}"), reason })?;
    Ok(Some(usage))
}

pub fn put_usage(store: &Store, tx: &Transaction, usage: &NodeUsage) -> Result<()> {
    tx.set_owned(store.usage_key(usage.node_id.as_str()), encode_usage(usage));
    Ok(())
}

/// Format byte of [`encode_usage`]: distinct from the record encoding's (1), so a reader
/// can tell them apart.
const USAGE_FORMAT: u8 = 2;

/// A usage record in a compact binary layout: read and written once per node per plan
/// transaction, so its cost counts (MessagePack with field names took 8% of a scheduling
/// run to decode; this takes a small fraction of that). Little-endian fields in a fixed
/// order; a later release appends fields, which this one ignores, and reads what an earlier
/// one wrote with the missing tail at its defaults.
pub fn encode_usage(u: &NodeUsage) -> Vec<u8> {
    let c = &u.capacity;
    let mut out = Vec::with_capacity(96 + 2 * (c.cores.len() + u.used.cores.len() + u.used.ports.len()));
    out.push(USAGE_FORMAT);
    let id = u.node_id.as_str().as_bytes();
    out.extend_from_slice(&(id.len() as u32).to_le_bytes());
    out.extend_from_slice(id);
    for v in [c.cpu_mhz, c.memory_mb, c.disk_mb, c.mhz_per_core] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&c.dynamic_ports.0.to_le_bytes());
    out.extend_from_slice(&c.dynamic_ports.1.to_le_bytes());
    put_u16s(&mut out, c.cores.iter().copied(), c.cores.len());
    out.extend_from_slice(&(c.reserved_ports.len() as u32).to_le_bytes());
    for (lo, hi) in &c.reserved_ports {
        out.extend_from_slice(&lo.to_le_bytes());
        out.extend_from_slice(&hi.to_le_bytes());
    }
    out.push(u8::from(u.schedulable));
    for v in [u.used.cpu_mhz, u.used.memory_mb, u.used.disk_mb] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    put_u16s(&mut out, u.used.cores.iter().copied(), u.used.cores.len());
    put_u16s(&mut out, u.used.ports.iter().copied(), u.used.ports.len());
    out.extend_from_slice(&u.allocs.to_le_bytes());
    out
}

fn put_u16s(out: &mut Vec<u8>, values: impl Iterator<Item = u16>, count: usize) {
    out.extend_from_slice(&(count as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads fields in order; a field past the end of an older record reads as its default.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        match self.0.len() {
            0 => Ok([0; N]),
            n if n < N => Err(format!("truncated: {n} bytes left where {N} were expected")),
            _ => {
                let (head, rest) = self.0.split_at(N);
                self.0 = rest;
                Ok(head.try_into().expect("split at N"))
            }
        }
    }
    fn i64(&mut self) -> std::result::Result<i64, String> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    fn u16(&mut self) -> std::result::Result<u16, String> {
        Ok(u16::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn bytes(&mut self, n: usize) -> std::result::Result<&[u8], String> {
        if self.0.len() < n {
            return Err(format!("truncated: {} bytes left where {n} were expected", self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u16s(&mut self) -> std::result::Result<BTreeSet<u16>, String> {
        let n = self.u32()? as usize;
        let raw = self.bytes(n.checked_mul(2).ok_or("list length overflows")?)?;
        Ok(raw.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect())
    }
}

/// Decodes what [`encode_usage`] wrote.
pub fn decode_usage(bytes: &[u8]) -> std::result::Result<NodeUsage, String> {
    let Some((&format, body)) = bytes.split_first() else {
        return Err("empty usage record".to_owned());
    };
    if format != USAGE_FORMAT {
        return Err(format!("unknown usage record format {format} (this release reads {USAGE_FORMAT})"));
    }
    let mut f = Fields(body);
    let id_len = f.u32()? as usize;
    let node_id = std::str::from_utf8(f.bytes(id_len)?).map_err(|e| format!("node ID: {e}"))?.to_owned();
    let (cpu_mhz, memory_mb, disk_mb, mhz_per_core) = (f.i64()?, f.i64()?, f.i64()?, f.i64()?);
    let dynamic_ports = (f.u16()?, f.u16()?);
    let cores = f.u16s()?;
    let reserved = f.u32()? as usize;
    let mut reserved_ports = Vec::with_capacity(reserved.min(1024));
    for _ in 0..reserved {
        reserved_ports.push((f.u16()?, f.u16()?));
    }
    let schedulable = f.take::<1>()?[0] != 0;
    let (used_cpu, used_mem, used_disk) = (f.i64()?, f.i64()?, f.i64()?);
    let used_cores = f.u16s()?;
    let used_ports = f.u16s()?;
    let allocs = u64::from_le_bytes(f.take()?);
    Ok(NodeUsage {
        node_id: node_id.into(),
        capacity: Capacity { cpu_mhz, memory_mb, disk_mb, cores, mhz_per_core, reserved_ports, dynamic_ports },
        schedulable,
        used: Usage {
            cpu_mhz: used_cpu,
            memory_mb: used_mem,
            disk_mb: used_disk,
            cores: used_cores,
            ports: used_ports,
        },
        allocs,
    })
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
    tx.set_versionstamped_value(&store.capacity_key(), &STAMP_VALUE_TEMPLATE);
}

/// Tells the watches of `node`'s allocations that they changed in this transaction in a
/// way its usage record does not show (a blind write: it never conflicts).
pub fn stamp_node_allocs(store: &Store, tx: &Transaction, node: &str) {
    tx.set_versionstamped_value(&store.node_allocs_key(node), &STAMP_VALUE_TEMPLATE);
}

/// The commit version a stamp written by `set_versionstamped_value` holds (0 for a
/// malformed or missing one).
pub fn stamp_version(stamp: Option<&[u8]>) -> u64 {
    match stamp {
        Some(b) if b.len() >= 8 => {
            let mut v = [0u8; 8];
            v.copy_from_slice(&b[..8]);
            u64::from_be_bytes(v)
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NodeUsage {
        NodeUsage {
            node_id: "node-ä1".into(),
            capacity: Capacity {
                cpu_mhz: 20_000,
                memory_mb: 32_768,
                disk_mb: 100_000,
                cores: (0..8).collect(),
                mhz_per_core: 2500,
                reserved_ports: vec![(22, 22), (8000, 8100)],
                dynamic_ports: (20_000, 32_000),
            },
            schedulable: true,
            used: Usage {
                cpu_mhz: 1200,
                memory_mb: 2048,
                disk_mb: 30,
                cores: [1, 3].into(),
                ports: [80, 20_001, 31_999].into(),
            },
            allocs: 7,
        }
    }

    #[test]
    fn usage_records_round_trip() {
        let u = sample();
        assert_eq!(decode_usage(&encode_usage(&u)).unwrap(), u);
        let empty = NodeUsage::default();
        assert_eq!(decode_usage(&encode_usage(&empty)).unwrap(), empty);
    }

    #[test]
    fn a_record_from_an_older_release_reads_its_missing_tail_as_defaults_and_a_newer_tail_is_ignored() {
        let u = sample();
        let full = encode_usage(&u);
        // Written before `allocs` existed: 8 bytes shorter.
        let older = decode_usage(&full[..full.len() - 8]).unwrap();
        assert_eq!(older, NodeUsage { allocs: 0, ..u.clone() });
        let mut newer = full.clone();
        newer.extend_from_slice(&[1, 2, 3]);
        assert_eq!(decode_usage(&newer).unwrap(), u);
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let full = encode_usage(&sample());
        for cut in 1..full.len() {
            let _ = decode_usage(&full[..cut]);
        }
        assert!(decode_usage(&[]).unwrap_err().contains("empty"));
        assert!(decode_usage(&[1, 2, 3]).unwrap_err().contains("unknown usage record format 1"));
        let mut huge = vec![USAGE_FORMAT];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_usage(&huge).unwrap_err().contains("truncated"));
    }
}
