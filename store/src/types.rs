//! Plain data shared by every engine: versions, ranges, mutations, limits.

use bytes::Bytes;

/// A commit version. As in FoundationDB, versions advance about 1,000,000 per second of
/// wall (or simulated) time, so "5 seconds old" is "5,000,000 versions behind".
pub type Version = i64;

/// Versions per second, FoundationDB's `VERSIONS_PER_SECOND`.
pub const VERSIONS_PER_SECOND: i64 = 1_000_000;

/// FoundationDB's limits, enforced by every engine.
pub const KEY_SIZE_MAX: usize = 10_000;
pub const VALUE_SIZE_MAX: usize = 100_000;
pub const TRANSACTION_SIZE_MAX: usize = 10_000_000;
/// A transaction older than this (from its read version) fails with transaction_too_old.
pub const TRANSACTION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(5);
/// Outstanding watches per database handle, FoundationDB's default `MaxWatches`.
pub const WATCHES_MAX: usize = 10_000;

/// The first key of the system keyspace; user keys sort below it.
pub const SYSTEM_KEY_PREFIX: u8 = 0xff;

/// 10 bytes: the 8-byte big-endian commit version and the 2-byte big-endian order of the
/// transaction inside its commit batch. Unique and increasing across committed transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Versionstamp(pub [u8; 10]);

impl Versionstamp {
    pub fn new(version: Version, batch_order: u16) -> Versionstamp {
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&version.to_be_bytes());
        bytes[8..].copy_from_slice(&batch_order.to_be_bytes());
        Versionstamp(bytes)
    }

    pub fn version(&self) -> Version {
        let mut v = [0u8; 8];
        v.copy_from_slice(&self.0[..8]);
        i64::from_be_bytes(v)
    }

    pub fn batch_order(&self) -> u16 {
        u16::from_be_bytes([self.0[8], self.0[9]])
    }
}

/// What a successful commit reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit version; for a read-only transaction, its read version.
    pub version: Version,
    /// `None` for a read-only transaction (FoundationDB gives none either).
    pub versionstamp: Option<Versionstamp>,
}

/// Passed to each attempt of a `run` closure: true when an earlier attempt failed in a way
/// that may have committed it (commit_unknown_result), so the closure must check before
/// applying a non-idempotent change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaybeCommitted(pub bool);

impl From<MaybeCommitted> for bool {
    fn from(m: MaybeCommitted) -> bool {
        m.0
    }
}

/// Atomic mutations, with FoundationDB's semantics (integers are little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MutationType {
    Add,
    BitAnd,
    BitOr,
    BitXor,
    AppendIfFits,
    Max,
    Min,
    ByteMin,
    ByteMax,
    CompareAndClear,
    /// The key carries a 4-byte little-endian offset at its end saying where the 10-byte
    /// versionstamp goes.
    SetVersionstampedKey,
    /// The value carries the 4-byte offset instead.
    SetVersionstampedValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictRangeType {
    Read,
    Write,
}

/// Whether a read adds a read conflict range (serializable) or not (snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    Serializable,
    Snapshot,
}

impl ReadMode {
    pub fn is_snapshot(self) -> bool {
        self == ReadMode::Snapshot
    }
}

/// A range read: keys in `[begin, end)`, at most `limit` of them (None: no limit), from the
/// end when `reverse`. One call returns one page; `RangeResult::more` says whether to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeOption {
    pub begin: Bytes,
    pub end: Bytes,
    pub limit: Option<usize>,
    pub reverse: bool,
}

impl RangeOption {
    pub fn new(begin: impl Into<Bytes>, end: impl Into<Bytes>) -> RangeOption {
        RangeOption { begin: begin.into(), end: end.into(), limit: None, reverse: false }
    }

    /// Every key starting with `prefix`.
    pub fn prefix(prefix: &[u8]) -> RangeOption {
        RangeOption::new(Bytes::copy_from_slice(prefix), strinc(prefix))
    }

    pub fn limit(mut self, limit: usize) -> RangeOption {
        self.limit = Some(limit);
        self
    }

    pub fn reverse(mut self, reverse: bool) -> RangeOption {
        self.reverse = reverse;
        self
    }

    /// The range still to read after `page`, or None when the page ended it.
    pub fn next_page(&self, page: &RangeResult) -> Option<RangeOption> {
        if !page.more {
            return None;
        }
        let last = page.key_values.last()?;
        let mut next = self.clone();
        if let Some(limit) = next.limit {
            let left = limit.saturating_sub(page.key_values.len());
            if left == 0 {
                return None;
            }
            next.limit = Some(left);
        }
        if self.reverse {
            next.end = last.key.clone();
        } else {
            next.begin = key_after(&last.key);
        }
        Some(next)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Bytes,
}

/// One page of a range read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeResult {
    pub key_values: Vec<KeyValue>,
    /// More keys may remain in the range (the page filled up before the range ended).
    pub more: bool,
}

/// The smallest key greater than `key`: `key + \x00`.
pub fn key_after(key: &[u8]) -> Bytes {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(0);
    Bytes::from(k)
}

/// The first key that does not start with `prefix` (FoundationDB's `strinc`): drop
/// trailing 0xff bytes and increment the last byte. A prefix of only 0xff bytes maps to
/// the end of the keyspace `\xff`.
pub fn strinc(prefix: &[u8]) -> Bytes {
    let trimmed_len = prefix.iter().rposition(|b| *b != 0xff).map_or(0, |i| i + 1);
    if trimmed_len == 0 {
        return Bytes::from_static(&[0xff]);
    }
    let mut out = prefix[..trimmed_len].to_vec();
    *out.last_mut().expect("non-empty after trim") += 1;
    Bytes::from(out)
}
