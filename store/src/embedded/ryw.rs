//! Read-your-writes: a transaction's buffered writes, and how reads see them merged over
//! the snapshot at the read version. Pure data; no locks, no I/O.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use crate::error::{Error, ErrorCode, Result};
use crate::mutation::apply_atomic;
use crate::types::{KeyValue, MutationType};

/// One buffered mutation, kept in the order the transaction issued it; the commit applies
/// them in that order, exactly as FoundationDB's storage servers do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mutation {
    Set(Bytes, Bytes),
    Clear(Bytes),
    ClearRange(Bytes, Bytes),
    /// Any atomic op, versionstamped ones included (their templates are placed at commit).
    Atomic(Bytes, MutationType, Bytes),
}

impl Mutation {
    pub(crate) fn size_bytes(&self) -> usize {
        match self {
            Mutation::Set(k, v) | Mutation::Atomic(k, _, v) | Mutation::ClearRange(k, v) => k.len() + v.len(),
            Mutation::Clear(k) => k.len(),
        }
    }
}

/// What the transaction knows of one key it wrote.
#[derive(Debug, Clone)]
enum Pending {
    /// The value is fully determined by the transaction (None: cleared).
    Value(Option<Bytes>),
    /// Atomic ops over a base value that must be read from the snapshot.
    Ops(Vec<(MutationType, Bytes)>),
    /// Set with a versionstamped value: unknown until commit (FoundationDB: accessed_unreadable).
    /// Holds the template while that set is the key's last write: the same set again
    /// changes nothing and is not logged twice (records stamp their kind's change key in
    /// every put).
    Unreadable(Option<Bytes>),
}

/// How a point read is answered.
pub(crate) enum Lookup {
    /// From the transaction alone; no read of the snapshot, no read conflict.
    Local(Option<Bytes>),
    /// Read the snapshot, then apply these ops.
    OverSnapshot(Vec<(MutationType, Bytes)>),
    /// Not written by the transaction: read the snapshot.
    Snapshot,
}

#[derive(Debug, Default)]
pub(crate) struct WriteBuffer {
    points: BTreeMap<Bytes, Pending>,
    cleared: RangeSet,
    log: Vec<Mutation>,
    bytes: usize,
}

impl WriteBuffer {
    pub(crate) fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    /// Bytes of mutations so far (keys + values + cleared range bounds).
    pub(crate) fn size_bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn take_log(&mut self) -> Vec<Mutation> {
        std::mem::take(&mut self.log)
    }

    fn push(&mut self, m: Mutation) {
        self.bytes += m.size_bytes();
        self.log.push(m);
    }

    pub(crate) fn set(&mut self, key: Bytes, value: Bytes) {
        self.points.insert(key.clone(), Pending::Value(Some(value.clone())));
        self.push(Mutation::Set(key, value));
    }

    pub(crate) fn clear(&mut self, key: Bytes) {
        self.points.insert(key.clone(), Pending::Value(None));
        self.push(Mutation::Clear(key));
    }

    pub(crate) fn clear_range(&mut self, begin: Bytes, end: Bytes) {
        if begin >= end {
            return;
        }
        let doomed: Vec<Bytes> = self.points.range(begin.clone()..end.clone()).map(|(k, _)| k.clone()).collect();
        for k in doomed {
            self.points.remove(&k);
        }
        self.cleared.insert(begin.clone(), end.clone());
        self.push(Mutation::ClearRange(begin, end));
    }

    pub(crate) fn atomic(&mut self, key: Bytes, op: MutationType, param: Bytes) {
        match op {
            MutationType::SetVersionstampedKey => {}
            MutationType::SetVersionstampedValue => {
                if matches!(self.points.get(&key), Some(Pending::Unreadable(Some(last))) if *last == param) {
                    return;
                }
                self.points.insert(key.clone(), Pending::Unreadable(Some(param.clone())));
            }
            _ => {
                let next = match self.points.get_mut(&key) {
                    Some(Pending::Value(v)) => Pending::Value(apply_atomic(op, v.as_deref(), &param)),
                    Some(Pending::Ops(ops)) => {
                        ops.push((op, param.clone()));
                        Pending::Ops(std::mem::take(ops))
                    }
                    Some(Pending::Unreadable(_)) => Pending::Unreadable(None),
                    None if self.cleared.contains(&key) => Pending::Value(apply_atomic(op, None, &param)),
                    None => Pending::Ops(vec![(op, param.clone())]),
                };
                self.points.insert(key.clone(), next);
            }
        }
        self.push(Mutation::Atomic(key, op, param));
    }

    pub(crate) fn lookup(&self, key: &[u8]) -> Result<Lookup> {
        Ok(match self.points.get(key) {
            Some(Pending::Value(v)) => Lookup::Local(v.clone()),
            Some(Pending::Ops(ops)) => Lookup::OverSnapshot(ops.clone()),
            Some(Pending::Unreadable(_)) => return Err(unreadable(key)),
            None if self.cleared.contains(key) => Lookup::Local(None),
            None => Lookup::Snapshot,
        })
    }

    /// Merges the snapshot's entries of `[begin, end)` (given in read order) with the
    /// buffer. Returns at most `rows_max` entries, stopping early once `bytes_max` is
    /// reached, and whether entries may remain.
    pub(crate) fn merge_range(
        &self,
        begin: &[u8],
        end: &[u8],
        reverse: bool,
        snapshot: impl Iterator<Item = (Bytes, Bytes)>,
        rows_max: usize,
        bytes_max: usize,
    ) -> Result<(Vec<KeyValue>, bool)> {
        let bounds = (Bound::Included(begin), Bound::Excluded(end));
        let local: Box<dyn Iterator<Item = (&Bytes, &Pending)>> = if reverse {
            Box::new(self.points.range::<[u8], _>(bounds).rev())
        } else {
            Box::new(self.points.range::<[u8], _>(bounds))
        };
        let mut local = local.peekable();
        let mut snapshot = snapshot.filter(|(k, _)| !self.cleared.contains(k)).peekable();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        loop {
            // Pick the next key in read order from either side.
            let take_local = match (snapshot.peek(), local.peek()) {
                (None, None) => return Ok((out, false)),
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((sk, _)), Some((lk, _))) => {
                    if reverse {
                        *lk >= sk
                    } else {
                        *lk <= sk
                    }
                }
            };
            if out.len() >= rows_max || bytes >= bytes_max {
                return Ok((out, true));
            }
            let entry = if take_local {
                let (key, pending) = local.next().expect("peeked");
                let base = match snapshot.peek() {
                    Some((sk, _)) if sk == key => snapshot.next().map(|(_, v)| v),
                    _ => None,
                };
                let value = match pending {
                    Pending::Value(v) => v.clone(),
                    Pending::Ops(ops) => apply_ops(base, ops),
                    Pending::Unreadable(_) => return Err(unreadable(key)),
                };
                value.map(|value| KeyValue { key: key.clone(), value })
            } else {
                let (key, value) = snapshot.next().expect("peeked");
                Some(KeyValue { key, value })
            };
            if let Some(kv) = entry {
                bytes += kv.key.len() + kv.value.len();
                out.push(kv);
                // As FoundationDB: a page that reached its row limit says "more", since its
                // read conflict range ends at its last key.
                if out.len() >= rows_max {
                    return Ok((out, true));
                }
            }
        }
    }
}

pub(crate) fn apply_ops(base: Option<Bytes>, ops: &[(MutationType, Bytes)]) -> Option<Bytes> {
    ops.iter().fold(base, |value, (op, param)| apply_atomic(*op, value.as_deref(), param))
}

fn unreadable(key: &[u8]) -> Error {
    Error::with_context(
        ErrorCode::AccessedUnreadable,
        format!("key {:?} was set with a versionstamped value in this transaction", Bytes::copy_from_slice(key)),
    )
}

/// Disjoint, coalesced half-open ranges.
#[derive(Debug, Default, Clone)]
pub(crate) struct RangeSet {
    ranges: BTreeMap<Bytes, Bytes>,
}

impl RangeSet {
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.ranges
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
            .is_some_and(|(_, end)| key < end.as_ref())
    }

    pub(crate) fn insert(&mut self, mut begin: Bytes, mut end: Bytes) {
        // Absorb every range that overlaps or touches [begin, end).
        if let Some((b, e)) = self.ranges.range::<[u8], _>((Bound::Unbounded, Bound::Included(&begin[..]))).next_back()
            && *e >= begin
        {
            begin = b.clone();
            if *e > end {
                end = e.clone();
            }
        }
        let absorbed: Vec<(Bytes, Bytes)> = self
            .ranges
            .range::<[u8], _>((Bound::Included(&begin[..]), Bound::Included(&end[..])))
            .map(|(b, e)| (b.clone(), e.clone()))
            .collect();
        for (b, e) in absorbed {
            self.ranges.remove(&b);
            if e > end {
                end = e;
            }
        }
        self.ranges.insert(begin, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn range_set_coalesces_overlapping_and_touching_ranges() {
        let mut set = RangeSet::default();
        set.insert(b("b"), b("d"));
        set.insert(b("f"), b("h"));
        set.insert(b("d"), b("f"));
        assert_eq!(set.ranges.len(), 1);
        assert!(set.contains(b"b") && set.contains(b"g") && !set.contains(b"h") && !set.contains(b"a"));
        set.insert(b("a"), b("z"));
        assert_eq!(set.ranges.len(), 1);
        assert!(set.contains(b"y"));
    }

    #[test]
    fn the_same_versionstamped_set_again_is_logged_once_unless_the_key_changed_between() {
        let template = Bytes::from_static(&[0; 14]);
        let mut buf = WriteBuffer::default();
        for _ in 0..3 {
            buf.atomic(b("stamp"), MutationType::SetVersionstampedValue, template.clone());
        }
        assert_eq!(buf.log.len(), 1);
        let other = Bytes::from_static(&[1; 14]);
        buf.atomic(b("stamp"), MutationType::SetVersionstampedValue, other);
        buf.set(b("stamp"), b("x"));
        buf.atomic(b("stamp"), MutationType::SetVersionstampedValue, template.clone());
        buf.atomic(b("stamp"), MutationType::Add, b("\u{1}"));
        buf.atomic(b("stamp"), MutationType::SetVersionstampedValue, template);
        assert_eq!(buf.log.len(), 6, "{:?}", buf.log);
    }

    #[test]
    fn merge_applies_sets_clears_and_ops_over_the_snapshot_in_both_directions() {
        let snapshot: BTreeMap<Bytes, Bytes> =
            [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")].into_iter().map(|(k, v)| (b(k), b(v))).collect();
        let mut buf = WriteBuffer::default();
        buf.clear_range(b("b"), b("c"));
        buf.set(b("bb"), b("x"));
        buf.clear(b("d"));
        buf.atomic(b("c"), MutationType::AppendIfFits, b("!"));
        let keys = |rev: bool| {
            let owned = snapshot.iter().map(|(k, v)| (k.clone(), v.clone()));
            let it: Box<dyn Iterator<Item = (Bytes, Bytes)>> =
                if rev { Box::new(owned.rev()) } else { Box::new(owned) };
            let (kvs, more) = buf.merge_range(b"a", b"z", rev, it, usize::MAX, usize::MAX).unwrap();
            assert!(!more);
            kvs.into_iter()
                .map(|kv| format!("{}={}", String::from_utf8_lossy(&kv.key), String::from_utf8_lossy(&kv.value)))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(false), ["a=1", "bb=x", "c=3!"]);
        assert_eq!(keys(true), ["c=3!", "bb=x", "a=1"]);
        let owned = snapshot.iter().map(|(k, v)| (k.clone(), v.clone()));
        let (page, more) = buf.merge_range(b"a", b"z", false, owned, 2, usize::MAX).unwrap();
        assert_eq!(page.len(), 2);
        assert!(more);
    }
}
