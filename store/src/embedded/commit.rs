//! Group commit. One committer owns the resolver and the durable layer; transactions send
//! it commit requests, and it takes every request waiting at once as one batch: resolve
//! each in order, apply the survivors to a new snapshot, write the batch durably with one
//! sync, publish, then answer. Concurrent transactions thus share one fsync.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use imbl::OrdMap;
use tokio::sync::oneshot;

use super::durable::{Changes, Durable};
use super::resolver::{KeyRange, Resolver};
use super::ryw::Mutation;
use super::{Published, Snapshot};
use crate::error::{Error, ErrorCode, Result};
use crate::mutation::{apply_atomic, place_versionstamp};
use crate::types::{CommitInfo, MutationType, VERSIONS_PER_SECOND, Version, Versionstamp, key_after};

/// Transactions in one batch at most: the versionstamp's batch order is 16 bits, and a
/// bounded batch bounds the latency of the transactions at its head.
pub(crate) const BATCH_TRANSACTIONS_MAX: usize = 4096;

pub(crate) struct CommitRequest {
    pub read_version: Version,
    pub read_conflicts: Vec<KeyRange>,
    pub write_conflicts: Vec<KeyRange>,
    pub mutations: Vec<Mutation>,
    pub reply: oneshot::Sender<Result<CommitInfo>>,
}

/// Hands out commit versions that track time (about 1,000,000 per second, as in
/// FoundationDB) and never go backwards.
pub(crate) struct VersionClock {
    base: Version,
    start: Instant,
    last: Version,
}

impl VersionClock {
    pub(crate) fn new(last: Version) -> VersionClock {
        // After a restart jump a second ahead, as FoundationDB's recovery does, so versions
        // handed out before a crash are never reused.
        VersionClock { base: last + VERSIONS_PER_SECOND, start: Instant::now(), last }
    }

    pub(crate) fn next(&mut self) -> Version {
        let by_time = self.base + self.start.elapsed().as_micros() as Version;
        self.last = by_time.max(self.last + 1);
        self.last
    }
}

pub(crate) struct Committer {
    pub clock: VersionClock,
    pub resolver: Resolver,
    pub durable: Box<dyn Durable>,
    pub published: Arc<Published>,
    /// Set when the durable layer failed: nothing more is committed.
    pub failed: Option<String>,
}

impl Committer {
    pub(crate) fn process(&mut self, batch: Vec<CommitRequest>) {
        if let Some(reason) = &self.failed {
            for req in batch {
                let _ = req.reply.send(Err(Error::with_context(ErrorCode::IoError, reason.clone())));
            }
            return;
        }
        let version = self.clock.next();
        self.resolver.advance(version);
        let mut data = self.published.snapshot().data.clone();
        let mut changes = Changes::new();
        let mut results = Vec::with_capacity(batch.len());
        let mut order: u16 = 0;
        for req in &batch {
            let outcome = if req.read_version < self.resolver.oldest() {
                Err(Error::new(ErrorCode::TransactionTooOld))
            } else if self.resolver.conflicts(&req.read_conflicts, req.read_version) {
                Err(Error::new(ErrorCode::NotCommitted))
            } else {
                let stamp = Versionstamp::new(version, order);
                order += 1;
                let stamped_keys = apply(&mut data, &mut changes, &req.mutations, stamp);
                self.resolver.record(&req.write_conflicts, version);
                self.resolver.record(&stamped_keys, version);
                Ok(CommitInfo { version, versionstamp: Some(stamp) })
            };
            results.push(outcome);
        }
        if results.iter().any(|r| r.is_ok())
            && let Err(e) = self.durable.write(version, &changes)
        {
            let reason = format!("the durable layer failed; the store accepts no more commits: {e}");
            tracing::error!(%reason);
            self.failed = Some(reason.clone());
            for req in batch {
                // The batch may or may not be on disk: the caller cannot know.
                let _ = req.reply.send(Err(Error::with_context(ErrorCode::IoError, reason.clone())));
            }
            return;
        }
        self.published.publish(Arc::new(Snapshot { version, data }), &changes);
        for (req, result) in batch.into_iter().zip(results) {
            let _ = req.reply.send(result);
        }
    }
}

/// Applies one transaction's mutations in order; returns the write conflict ranges of the
/// keys it versionstamped (known only now).
fn apply(data: &mut OrdMap<Bytes, Bytes>, changes: &mut Changes, mutations: &[Mutation], stamp: Versionstamp) -> Vec<KeyRange> {
    let mut stamped = Vec::new();
    let mut put = |data: &mut OrdMap<Bytes, Bytes>, key: Bytes, value: Option<Bytes>| {
        match &value {
            Some(v) => data.insert(key.clone(), v.clone()),
            None => data.remove(&key),
        };
        changes.insert(key, value);
    };
    for m in mutations {
        match m {
            Mutation::Set(k, v) => put(data, k.clone(), Some(v.clone())),
            Mutation::Clear(k) => put(data, k.clone(), None),
            Mutation::ClearRange(b, e) => {
                let doomed: Vec<Bytes> = data.range(b.clone()..e.clone()).map(|(k, _)| k.clone()).collect();
                for k in doomed {
                    put(data, k, None);
                }
            }
            Mutation::Atomic(k, MutationType::SetVersionstampedKey, v) => {
                let key = place_versionstamp(k, stamp);
                stamped.push((key.clone(), key_after(&key)));
                put(data, key, Some(v.clone()));
            }
            Mutation::Atomic(k, MutationType::SetVersionstampedValue, v) => {
                put(data, k.clone(), Some(place_versionstamp(v, stamp)))
            }
            Mutation::Atomic(k, op, param) => {
                let next = apply_atomic(*op, data.get(k).map(|v| v.as_ref()), param);
                put(data, k.clone(), next)
            }
        }
    }
    stamped
}
