//! Group commit. One committer owns the resolver and the durable layer; transactions send
//! it commit requests, and it takes every request waiting at once as one batch: resolve
//! each in order, apply the survivors to a new snapshot, write the batch durably with one
//! sync, publish, then answer. Concurrent transactions thus share one fsync.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::Published;
use super::durable::{Changes, Durable};
use super::mvcc::{Index, TrimQueue};
use super::resolver::{BatchInProgress, KeyRange, Resolver, WINDOW_VERSIONS};
use super::ryw::Mutation;
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

/// Old versions are trimmed this far behind the resolver's window. A transaction checks its
/// own age (at most `TRANSACTION_LIFETIME`) before each read; versions track time, so a
/// version that far behind the newest batch is older than any live transaction's read
/// version by at least this margin (a second), which covers a read already under way.
const TRIM_MARGIN_VERSIONS: Version = VERSIONS_PER_SECOND;

pub(crate) struct Committer {
    pub clock: VersionClock,
    pub resolver: Resolver,
    pub durable: Box<dyn Durable>,
    pub published: Arc<Published>,
    pub trims: TrimQueue,
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
        let horizon = version - WINDOW_VERSIONS - TRIM_MARGIN_VERSIONS;
        let index = self.published.index.clone();
        let mut writer = BatchWriter { index: &index, version, horizon, changes: Changes::new(), trims: &mut self.trims };
        let mut current = BatchInProgress::default();
        let mut results = Vec::with_capacity(batch.len());
        let mut order: u16 = 0;
        for req in &batch {
            let outcome = if req.read_version < self.resolver.oldest() {
                Err(Error::new(ErrorCode::TransactionTooOld))
            } else if self.resolver.conflicts(&req.read_conflicts, req.read_version, &current) {
                Err(Error::new(ErrorCode::NotCommitted))
            } else {
                let stamp = Versionstamp::new(version, order);
                order += 1;
                let stamped_keys = writer.apply(&req.mutations, stamp);
                current.record(&req.write_conflicts);
                current.record(&stamped_keys);
                Ok(CommitInfo { version, versionstamp: Some(stamp) })
            };
            results.push(outcome);
        }
        let changes = writer.changes;
        // The index now holds this batch at `version`, which no reader sees until it is
        // published below: durability first, visibility second.
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
        self.resolver.record(current, version);
        self.published.publish(version, &changes);
        for (req, result) in batch.into_iter().zip(results) {
            let _ = req.reply.send(result);
        }
        self.trims.run(&index, horizon);
    }
}

/// Applies the mutations of one batch to the index at the batch's version.
struct BatchWriter<'a> {
    index: &'a Index,
    version: Version,
    horizon: Version,
    changes: Changes,
    trims: &'a mut TrimQueue,
}

impl BatchWriter<'_> {
    fn put(&mut self, key: Bytes, value: Option<Bytes>) {
        if self.index.write(key.clone(), self.version, value.clone(), self.horizon) {
            self.trims.push(self.version, key.clone());
        }
        self.changes.insert(key, value);
    }

    /// Applies one transaction's mutations in order; returns the write conflict ranges of
    /// the keys it versionstamped (known only now).
    fn apply(&mut self, mutations: &[Mutation], stamp: Versionstamp) -> Vec<KeyRange> {
        let mut stamped = Vec::new();
        for m in mutations {
            match m {
                Mutation::Set(k, v) => self.put(k.clone(), Some(v.clone())),
                Mutation::Clear(k) => self.put(k.clone(), None),
                Mutation::ClearRange(b, e) => {
                    for k in self.index.live_keys(b, e, self.version) {
                        self.put(k, None);
                    }
                }
                Mutation::Atomic(k, MutationType::SetVersionstampedKey, v) => {
                    let key = place_versionstamp(k, stamp);
                    stamped.push((key.clone(), key_after(&key)));
                    self.put(key, Some(v.clone()));
                }
                Mutation::Atomic(k, MutationType::SetVersionstampedValue, v) => {
                    self.put(k.clone(), Some(place_versionstamp(v, stamp)))
                }
                Mutation::Atomic(k, op, param) => {
                    let current = self.index.get(k, self.version);
                    let next = apply_atomic(*op, current.as_deref(), param);
                    self.put(k.clone(), next)
                }
            }
        }
        stamped
    }
}
