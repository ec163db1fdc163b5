//! Conflict detection, as FoundationDB's resolvers do it: a transaction commits only if no
//! key range it read (serializably) was written by a transaction that committed after its
//! read version. The writes of each commit batch are kept, sorted, for
//! `TRANSACTION_LIFETIME` worth of versions. A transaction is too old when a batch newer
//! than its read version has already been forgotten: its check could no longer be
//! complete. (Its lifetime of 5 s is enforced by the transaction itself; counting versions
//! here instead would fail a fresh transaction on a store that was idle for 5 s, since an
//! idle store publishes no new versions.)
//!
//! A check walks back only over the batches newer than the transaction's read version
//! (usually one to three), binary-searching each; recording a batch is one push.

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;

use crate::types::{TRANSACTION_LIFETIME, VERSIONS_PER_SECOND, Version};

/// A half-open key range `[begin, end)`.
pub(crate) type KeyRange = (Bytes, Bytes);

/// Versions the resolver remembers writes for.
pub(crate) const WINDOW_VERSIONS: Version = TRANSACTION_LIFETIME.as_secs() as Version * VERSIONS_PER_SECOND;

/// The writes of one committed batch.
#[derive(Debug)]
struct BatchWrites {
    version: Version,
    /// Single keys written, sorted, without duplicates.
    points: Vec<Bytes>,
    /// Multi-key ranges written (clear_range, explicit write conflict ranges).
    ranges: Vec<KeyRange>,
}

impl BatchWrites {
    fn hits(&self, reads: &[KeyRange]) -> bool {
        reads.iter().any(|(begin, end)| {
            let in_points = match single_key(begin, end) {
                Some(key) => self.points.binary_search(key).is_ok(),
                None => {
                    let first = self.points.partition_point(|k| k < begin);
                    self.points.get(first).is_some_and(|k| k < end)
                }
            };
            in_points || self.ranges.iter().any(|(b, e)| b < end && begin < e)
        })
    }
}

/// The writes of the batch being resolved: transactions later in a batch conflict with
/// the writes of earlier ones (their read versions are all older than the batch).
#[derive(Debug, Default)]
pub(crate) struct BatchInProgress {
    points: BTreeSet<Bytes>,
    ranges: Vec<KeyRange>,
}

impl BatchInProgress {
    pub(crate) fn record(&mut self, writes: &[KeyRange]) {
        for (begin, end) in writes {
            match single_key(begin, end) {
                Some(key) => {
                    self.points.insert(key.clone());
                }
                None if begin < end => self.ranges.push((begin.clone(), end.clone())),
                None => {}
            }
        }
    }

    fn hits(&self, reads: &[KeyRange]) -> bool {
        reads.iter().any(|(begin, end)| {
            let in_points = match single_key(begin, end) {
                Some(key) => self.points.contains(key),
                None => self.points.range(begin.clone()..end.clone()).next().is_some(),
            };
            in_points || self.ranges.iter().any(|(b, e)| b < end && begin < e)
        })
    }
}

#[derive(Debug)]
pub(crate) struct Resolver {
    /// Committed batches inside the window, oldest first.
    history: VecDeque<BatchWrites>,
    /// The newest version whose batch was forgotten: a read version below it is too old.
    forgotten: Version,
}

impl Resolver {
    pub(crate) fn new(start: Version) -> Resolver {
        Resolver { history: VecDeque::new(), forgotten: start }
    }

    /// Read versions below this can no longer be checked.
    pub(crate) fn oldest(&self) -> Version {
        self.forgotten
    }

    /// Whether any of `reads` was written after `read_version`, by a committed batch or by
    /// an earlier transaction of the batch in progress.
    pub(crate) fn conflicts(&self, reads: &[KeyRange], read_version: Version, current: &BatchInProgress) -> bool {
        if reads.is_empty() {
            return false;
        }
        self.history.iter().rev().take_while(|batch| batch.version > read_version).any(|batch| batch.hits(reads))
            || current.hits(reads)
    }

    /// Records the writes of the batch committed at `version`.
    pub(crate) fn record(&mut self, batch: BatchInProgress, version: Version) {
        if batch.points.is_empty() && batch.ranges.is_empty() {
            return;
        }
        debug_assert!(self.history.back().is_none_or(|b| b.version < version));
        self.history.push_back(BatchWrites {
            version,
            points: batch.points.into_iter().collect(),
            ranges: batch.ranges,
        });
    }

    /// Forgets writes that left the window ending at `newest`.
    pub(crate) fn advance(&mut self, newest: Version) {
        let oldest = newest - WINDOW_VERSIONS;
        while self.history.front().is_some_and(|b| b.version < oldest) {
            let batch = self.history.pop_front().expect("checked non-empty");
            self.forgotten = batch.version;
        }
    }
}

/// `Some(begin)` when the range holds exactly one key (`end == begin + \x00`).
pub(crate) fn single_key<'a>(begin: &'a Bytes, end: &Bytes) -> Option<&'a Bytes> {
    (end.len() == begin.len() + 1 && end.last() == Some(&0) && end.starts_with(begin)).then_some(begin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::key_after;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn point(s: &str) -> KeyRange {
        (b(s), key_after(s.as_bytes()))
    }

    fn committed(writes: &[KeyRange], version: Version, r: &mut Resolver) {
        let mut batch = BatchInProgress::default();
        batch.record(writes);
        r.record(batch, version);
    }

    #[test]
    fn only_writes_after_the_read_version_conflict() {
        let mut r = Resolver::new(0);
        let none = BatchInProgress::default();
        committed(&[point("k")], 10, &mut r);
        assert!(r.conflicts(&[point("k")], 9, &none));
        assert!(!r.conflicts(&[point("k")], 10, &none));
        assert!(!r.conflicts(&[point("j")], 0, &none));
        assert!(r.conflicts(&[(b("a"), b("z"))], 9, &none), "a range read sees a point write inside it");
        assert!(!r.conflicts(&[(b("l"), b("z"))], 9, &none));
    }

    #[test]
    fn range_writes_conflict_with_overlapping_reads() {
        let mut r = Resolver::new(0);
        let none = BatchInProgress::default();
        committed(&[(b("b"), b("d"))], 10, &mut r);
        assert!(r.conflicts(&[point("c")], 5, &none));
        assert!(r.conflicts(&[(b("a"), b("bb"))], 5, &none));
        assert!(!r.conflicts(&[(b("d"), b("e"))], 5, &none), "end is exclusive");
    }

    #[test]
    fn earlier_writes_of_the_same_batch_conflict() {
        let r = Resolver::new(0);
        let mut current = BatchInProgress::default();
        current.record(&[point("k"), (b("m"), b("p"))]);
        assert!(r.conflicts(&[point("k")], 5, &current));
        assert!(r.conflicts(&[(b("a"), b("l"))], 5, &current));
        assert!(r.conflicts(&[point("n")], 5, &current));
        assert!(!r.conflicts(&[point("q")], 5, &current));
    }

    #[test]
    fn writes_are_forgotten_after_the_window_and_reads_before_them_are_too_old() {
        let mut r = Resolver::new(0);
        committed(&[point("k"), (b("a"), b("c"))], 10, &mut r);
        committed(&[point("k")], 20, &mut r);
        r.advance(15 + WINDOW_VERSIONS);
        assert_eq!(r.oldest(), 10, "reads at 10 or later still see every newer batch");
        assert_eq!(r.history.len(), 1);
        r.advance(10 * WINDOW_VERSIONS);
        assert_eq!(r.oldest(), 20);
        assert!(r.history.is_empty());
    }

    #[test]
    fn an_idle_store_does_not_make_fresh_reads_too_old() {
        let mut r = Resolver::new(0);
        committed(&[point("k")], 10, &mut r);
        // Nothing commits for a long time; a transaction reads at 10, the newest version.
        r.advance(10 + 100 * WINDOW_VERSIONS);
        assert!(r.oldest() <= 10);
    }
}
