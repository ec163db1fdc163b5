//! Group commit, in two pipelined stages.
//!
//! 1. The committer takes every commit request waiting as one batch: resolves each in
//!    order, writes the survivors into the index at the batch's version (invisible until
//!    published), answers the conflicting ones at once, and hands the batch on.
//! 2. The durable writer takes every batch waiting, writes them with one durable write
//!    (one fsync), publishes the newest version, then answers their transactions.
//!
//! So concurrent transactions share one fsync, and the committer resolves the next batch
//! while the previous one is being synced, as FoundationDB's resolvers run ahead of its
//! logs. Nothing is visible before it is durable; versions are published in order.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

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

/// Old versions are trimmed this far behind the resolver's window behind the published
/// version. Reads verify they were not overtaken (`Index::check_readable`); the margin
/// makes that rare: a transaction checks its own age (at most `TRANSACTION_LIFETIME`)
/// before each read, and versions track time.
const TRIM_MARGIN_VERSIONS: Version = VERSIONS_PER_SECOND;

/// The first failure of the durable layer, after which nothing more commits.
#[derive(Default)]
pub(crate) struct Failure(Mutex<Option<String>>);

impl Failure {
    fn get(&self) -> Option<Error> {
        self.0.lock().as_ref().map(|reason| Error::with_context(ErrorCode::IoError, reason.clone()))
    }

    fn set(&self, reason: String) {
        self.0.lock().get_or_insert(reason);
    }
}

/// A resolved batch on its way to the durable writer: its changes and the transactions
/// that wait for them to be durable.
pub(crate) struct Resolved {
    version: Version,
    /// Every write in order (a key may appear more than once; the last one counts).
    changes: Vec<(Bytes, Option<Bytes>)>,
    acks: Vec<(oneshot::Sender<Result<CommitInfo>>, CommitInfo)>,
}

/// Stage 1: resolves batches and writes them into the index.
pub(crate) struct Committer {
    pub clock: VersionClock,
    pub resolver: Resolver,
    pub published: Arc<Published>,
    pub trims: TrimQueue,
    pub to_durable: mpsc::UnboundedSender<Resolved>,
    pub failure: Arc<Failure>,
}

impl Committer {
    pub(crate) fn process(&mut self, batch: Vec<CommitRequest>) {
        if let Some(error) = self.failure.get() {
            for req in batch {
                let _ = req.reply.send(Err(error.clone()));
            }
            return;
        }
        let version = self.clock.next();
        self.resolver.advance(version);
        // Trim behind what readers read (the published version), not behind this batch: a
        // durable write that stalls must not let trimming overtake the readers.
        let horizon = self.published.version() - WINDOW_VERSIONS - TRIM_MARGIN_VERSIONS;
        let index = self.published.index.clone();
        index.raise_horizon(horizon);
        let mut writer =
            BatchWriter { index: &index, version, horizon, changes: Vec::new(), flushed: 0, trims: &mut self.trims };
        let mut current = BatchInProgress::default();
        let mut acks = Vec::with_capacity(batch.len());
        let mut order: u16 = 0;
        for req in batch {
            let refused = if req.read_version < self.resolver.oldest() {
                Error::new(ErrorCode::TransactionTooOld)
            } else if self.resolver.conflicts(&req.read_conflicts, req.read_version, &current) {
                Error::new(ErrorCode::NotCommitted)
            } else {
                let stamp = Versionstamp::new(version, order);
                order += 1;
                let stamped_keys = writer.apply(&req.mutations, stamp);
                current.record(&req.write_conflicts);
                current.record(&stamped_keys);
                acks.push((req.reply, CommitInfo { version, versionstamp: Some(stamp) }));
                continue;
            };
            // A refusal does not wait for anyone's durability.
            let _ = req.reply.send(Err(refused));
        }
        writer.flush();
        let changes = writer.changes;
        self.resolver.record(current, version);
        if !acks.is_empty()
            && let Err(mpsc::error::SendError(resolved)) = self.to_durable.send(Resolved { version, changes, acks })
        {
            for (reply, _) in resolved.acks {
                let _ = reply.send(Err(Error::with_context(ErrorCode::IoError, "the durable writer has stopped")));
            }
        }
        self.trims.run(&index, horizon);
    }
}

/// Batches the durable writer merges into one write at most: bounds the latency of the
/// oldest and the memory of the merge.
pub(crate) const DURABLE_BATCHES_MAX: usize = 64;

/// Stage 2: makes resolved batches durable, publishes them, answers their transactions.
pub(crate) struct DurableWriter {
    pub durable: Box<dyn Durable>,
    pub published: Arc<Published>,
    pub failure: Arc<Failure>,
}

impl DurableWriter {
    pub(crate) fn process(&mut self, mut work: Vec<Resolved>) {
        let acks: Vec<_> = work.iter_mut().flat_map(|r| std::mem::take(&mut r.acks)).collect();
        if let Some(error) = self.failure.get() {
            for (reply, _) in acks {
                let _ = reply.send(Err(error.clone()));
            }
            return;
        }
        let version = work.last().expect("at least one batch").version;
        let mut batches = work.into_iter();
        let mut writes = batches.next().expect("at least one batch").changes;
        for later in batches {
            writes.extend(later.changes);
        }
        // Sorted and deduplicated here, off the committer's thread, and only for a layer
        // that looks at them.
        let changes: Changes =
            if self.durable.needs_changes() { writes.iter().cloned().collect() } else { Changes::new() };
        if let Err(e) = self.durable.write(version, &changes) {
            let reason = format!("the durable layer failed; the store accepts no more commits: {e}");
            tracing::error!(%reason);
            self.failure.set(reason);
            // The write may or may not be on disk (a restart may find it): the caller
            // cannot know. Later commits get io_error.
            let error = Error::with_context(ErrorCode::CommitUnknownResult, format!("the durable write failed: {e}"));
            for (reply, _) in acks {
                let _ = reply.send(Err(error.clone()));
            }
            return;
        }
        // The index already holds these versions; publishing makes them visible.
        self.published.publish(version, &writes);
        for (reply, info) in acks {
            let _ = reply.send(Ok(info));
        }
    }
}

/// Applies the mutations of one batch to the index at the batch's version.
struct BatchWriter<'a> {
    index: &'a Index,
    version: Version,
    horizon: Version,
    /// Every write of the batch, in order; those from `flushed` on are not in the index yet.
    changes: Vec<(Bytes, Option<Bytes>)>,
    flushed: usize,
    trims: &'a mut TrimQueue,
}

/// Writes go into the index this many at a time, under one hold of its lock: fewer lock
/// round trips than one per key, and a bounded wait for readers.
const INDEX_WRITES_PER_LOCK: usize = 256;

impl BatchWriter<'_> {
    fn put(&mut self, key: Bytes, value: Option<Bytes>) {
        self.changes.push((key, value));
        if self.changes.len() - self.flushed >= INDEX_WRITES_PER_LOCK {
            self.flush();
        }
    }

    /// Writes the pending writes into the index (before anything reads it, and at the end).
    fn flush(&mut self) {
        let pending = &self.changes[self.flushed..];
        if pending.is_empty() {
            return;
        }
        for key in self.index.write_many(pending, self.version, self.horizon) {
            self.trims.push(self.version, key);
        }
        self.flushed = self.changes.len();
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
                    self.flush();
                    for k in self.index.live_keys(b, e) {
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
                    self.flush();
                    let current = self.index.latest(k);
                    let next = apply_atomic(*op, current.as_deref(), param);
                    self.put(k.clone(), next)
                }
            }
        }
        stamped
    }
}
