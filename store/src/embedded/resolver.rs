//! Conflict detection, as FoundationDB's resolvers do it: a transaction commits only if no
//! key range it read (serializably) was written by a transaction that committed after its
//! read version. Writes are remembered for `TRANSACTION_LIFETIME` worth of versions; a
//! transaction whose read version is older than that window is too old.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::types::{TRANSACTION_LIFETIME, VERSIONS_PER_SECOND, Version};

/// A half-open key range `[begin, end)`.
pub(crate) type KeyRange = (Bytes, Bytes);

/// Versions the resolver remembers writes for.
pub(crate) const WINDOW_VERSIONS: Version = TRANSACTION_LIFETIME.as_secs() as Version * VERSIONS_PER_SECOND;

#[derive(Debug)]
pub(crate) struct Resolver {
    /// Last write version of each single key written inside the window.
    points: BTreeMap<Bytes, Version>,
    /// Multi-key write ranges (clear_range, explicit write conflict ranges), oldest first.
    ranges: VecDeque<(Bytes, Bytes, Version)>,
    /// Keys written per version, oldest first, to forget them when they leave the window.
    expiry: VecDeque<(Version, Vec<Bytes>)>,
    /// Read versions below this are too old to check.
    oldest: Version,
}

impl Resolver {
    pub(crate) fn new(start: Version) -> Resolver {
        Resolver { points: BTreeMap::new(), ranges: VecDeque::new(), expiry: VecDeque::new(), oldest: start }
    }

    pub(crate) fn oldest(&self) -> Version {
        self.oldest
    }

    /// Whether any of `reads` was written after `read_version`.
    pub(crate) fn conflicts(&self, reads: &[KeyRange], read_version: Version) -> bool {
        reads.iter().any(|(begin, end)| {
            if let Some(key) = single_key(begin, end) {
                if self.points.get(key).is_some_and(|v| *v > read_version) {
                    return true;
                }
            } else if self.points.range(begin.clone()..end.clone()).any(|(_, v)| *v > read_version) {
                return true;
            }
            self.ranges.iter().any(|(b, e, v)| *v > read_version && b < end && begin < e)
        })
    }

    /// Records the writes of a transaction committed at `version`.
    pub(crate) fn record(&mut self, writes: &[KeyRange], version: Version) {
        let mut keys = Vec::new();
        for (begin, end) in writes {
            if let Some(key) = single_key(begin, end) {
                self.points.insert(key.clone(), version);
                keys.push(key.clone());
            } else if begin < end {
                self.ranges.push_back((begin.clone(), end.clone(), version));
            }
        }
        match self.expiry.back_mut() {
            Some((v, batch)) if *v == version => batch.extend(keys),
            _ => self.expiry.push_back((version, keys)),
        }
    }

    /// Forgets writes that left the window ending at `newest`.
    pub(crate) fn advance(&mut self, newest: Version) {
        let oldest = newest - WINDOW_VERSIONS;
        if oldest <= self.oldest {
            return;
        }
        self.oldest = oldest;
        while self.expiry.front().is_some_and(|(v, _)| *v < oldest) {
            let (v, keys) = self.expiry.pop_front().expect("checked non-empty");
            for key in keys {
                if self.points.get(&key).is_some_and(|last| *last <= v) {
                    self.points.remove(&key);
                }
            }
        }
        while self.ranges.front().is_some_and(|(_, _, v)| *v < oldest) {
            self.ranges.pop_front();
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

    #[test]
    fn only_writes_after_the_read_version_conflict() {
        let mut r = Resolver::new(0);
        r.record(&[point("k")], 10);
        assert!(r.conflicts(&[point("k")], 9));
        assert!(!r.conflicts(&[point("k")], 10));
        assert!(!r.conflicts(&[point("j")], 0));
        assert!(r.conflicts(&[(b("a"), b("z"))], 9), "a range read sees a point write inside it");
        assert!(!r.conflicts(&[(b("l"), b("z"))], 9));
    }

    #[test]
    fn range_writes_conflict_with_overlapping_reads() {
        let mut r = Resolver::new(0);
        r.record(&[(b("b"), b("d"))], 10);
        assert!(r.conflicts(&[point("c")], 5));
        assert!(r.conflicts(&[(b("a"), b("bb"))], 5));
        assert!(!r.conflicts(&[(b("d"), b("e"))], 5), "end is exclusive");
    }

    #[test]
    fn writes_are_forgotten_after_the_window_and_old_reads_are_too_old() {
        let mut r = Resolver::new(0);
        r.record(&[point("k"), (b("a"), b("c"))], 10);
        r.advance(10 + WINDOW_VERSIONS + 1);
        assert_eq!(r.oldest(), 11);
        assert!(r.points.is_empty() && r.ranges.is_empty());
    }
}
