//! The multi-version index every transaction reads: one concurrent ordered map (a lock-free
//! skip list) from key to that key's recent versions. A reader at version `v` sees, for each
//! key, the newest entry at or below `v`; the single writer (the committer) appends entries
//! at a version that readers ignore until it is published. Old entries are trimmed once no
//! reader may still ask for them.
//!
//! Why not a persistent map with one snapshot per batch: copying shared tree nodes cost
//! about 5 µs per written key and was a third of the committer's time; here a write is one
//! skip-list lookup and a short vector update.

use std::collections::VecDeque;
use std::ops::Bound;

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use parking_lot::RwLock;

use crate::types::Version;

/// A key's versions, oldest first; never empty.
type Chain = Vec<(Version, Option<Bytes>)>;

#[derive(Default)]
pub(crate) struct Index {
    map: SkipMap<Bytes, RwLock<Chain>>,
}

fn visible(chain: &Chain, at: Version) -> Option<&Option<Bytes>> {
    chain.iter().rev().find(|(v, _)| *v <= at).map(|(_, value)| value)
}

impl Index {
    /// Fills a new index with recovered data, all at `version`.
    pub(crate) fn load(data: impl IntoIterator<Item = (Bytes, Bytes)>, version: Version) -> Index {
        let index = Index::default();
        for (k, v) in data {
            index.map.insert(k, RwLock::new(vec![(version, Some(v))]));
        }
        index
    }

    pub(crate) fn get(&self, key: &[u8], at: Version) -> Option<Bytes> {
        let entry = self.map.get(key)?;
        let chain = entry.value().read();
        visible(&chain, at).cloned().flatten()
    }

    /// Key-values of `[begin, end)` visible at `at`, in key order or reversed.
    pub(crate) fn range<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        at: Version,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = (Bytes, Bytes)> + 'a> {
        let entries = self.map.range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end)));
        let pick = move |entry: crossbeam_skiplist::map::Entry<'_, Bytes, RwLock<Chain>>| {
            let value = visible(&entry.value().read(), at).cloned().flatten()?;
            Some((entry.key().clone(), value))
        };
        if reverse { Box::new(entries.rev().filter_map(pick)) } else { Box::new(entries.filter_map(pick)) }
    }

    /// Keys with a live value at `at` in `[begin, end)` (what a clear_range removes).
    pub(crate) fn live_keys(&self, begin: &[u8], end: &[u8], at: Version) -> Vec<Bytes> {
        self.range(begin, end, at, false).map(|(k, _)| k).collect()
    }

    /// Writes `value` for `key` at `version` (newer than every entry), dropping entries
    /// no reader at or after `horizon` can see. Returns true when the key still holds
    /// more than its newest entry or only a deletion, so a later `trim` should revisit it.
    pub(crate) fn write(&self, key: Bytes, version: Version, value: Option<Bytes>, horizon: Version) -> bool {
        let entry = self.map.get_or_insert_with(key, || RwLock::new(Vec::new()));
        let mut chain = entry.value().write();
        debug_assert!(chain.last().is_none_or(|(v, _)| *v <= version), "versions only grow");
        trim_chain(&mut chain, horizon);
        match chain.last_mut() {
            // Two writes in one batch: the later wins, no reader can see the earlier.
            Some((v, old)) if *v == version => *old = value,
            _ => chain.push((version, value)),
        }
        chain.len() > 1 || chain[0].1.is_none()
    }

    /// Drops what no reader at or after `horizon` can see of `key`; removes the key when
    /// all that is left is a deletion.
    pub(crate) fn trim(&self, key: &[u8], horizon: Version) {
        let Some(entry) = self.map.get(key) else { return };
        let remove = {
            let mut chain = entry.value().write();
            trim_chain(&mut chain, horizon);
            chain.len() == 1 && chain[0].1.is_none() && chain[0].0 <= horizon
        };
        if remove {
            // Only the committer writes, so no write can slip in between: a reader sees
            // "absent" where it saw "deleted", which is the same answer.
            entry.remove();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Keeps the newest entry at or below `horizon` (what a reader at the horizon sees) and
/// everything newer.
fn trim_chain(chain: &mut Chain, horizon: Version) {
    if let Some(keep_from) = chain.iter().rposition(|(v, _)| *v <= horizon)
        && keep_from > 0
    {
        chain.drain(..keep_from);
    }
}

/// Keys to revisit once their old versions can be dropped, oldest first.
#[derive(Default)]
pub(crate) struct TrimQueue {
    queue: VecDeque<(Version, Bytes)>,
}

impl TrimQueue {
    pub(crate) fn push(&mut self, version: Version, key: Bytes) {
        self.queue.push_back((version, key));
    }

    /// Trims every queued key written before `horizon`.
    pub(crate) fn run(&mut self, index: &Index, horizon: Version) {
        while self.queue.front().is_some_and(|(v, _)| *v <= horizon) {
            let (_, key) = self.queue.pop_front().expect("checked non-empty");
            index.trim(&key, horizon);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn readers_see_the_newest_version_at_or_below_their_own() {
        let index = Index::load([(b("a"), b("1"))], 10);
        index.write(b("a"), 20, Some(b("2")), 0);
        index.write(b("b"), 20, Some(b("x")), 0);
        index.write(b("a"), 30, None, 0);
        assert_eq!(index.get(b"a", 9), None);
        assert_eq!(index.get(b"a", 10), Some(b("1")));
        assert_eq!(index.get(b"a", 25), Some(b("2")));
        assert_eq!(index.get(b"a", 30), None);
        let at = |v| index.range(b"a", b"z", v, false).map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(at(15), [b("a")]);
        assert_eq!(at(20), [b("a"), b("b")]);
        assert_eq!(at(30), [b("b")]);
        assert_eq!(index.range(b"a", b"z", 20, true).map(|(k, _)| k).collect::<Vec<_>>(), [b("b"), b("a")]);
    }

    #[test]
    fn trimming_keeps_what_the_horizon_sees_and_drops_dead_deletions() {
        let index = Index::default();
        let mut queue = TrimQueue::default();
        for (version, value) in [(10, Some(b("1"))), (20, Some(b("2"))), (30, None)] {
            if index.write(b("k"), version, value, 0) {
                queue.push(version, b("k"));
            }
        }
        queue.run(&index, 25);
        assert_eq!(index.get(b"k", 25), Some(b("2")), "the horizon's view survives");
        assert_eq!(index.map.get(&b("k")[..]).unwrap().value().read().len(), 2);
        queue.run(&index, 30);
        assert_eq!(index.len(), 0, "a deletion nobody can see past is removed");
    }
}
