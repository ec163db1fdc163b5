//! One embedded transaction: a snapshot taken at its read version, a write buffer for
//! read-your-writes, and the conflict ranges it sends to the committer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::commit::CommitRequest;
use super::resolver::KeyRange;
use super::ryw::{Lookup, WriteBuffer, apply_ops};
use super::{PendingWatch, Shared, Snapshot};
use crate::api::{TransactionEngine, Watch, check_value, check_write_key};
use crate::error::{Error, ErrorCode, Result};
use crate::mutation::check_versionstamp_template;
use crate::types::{
    CommitInfo, ConflictRangeType, KEY_SIZE_MAX, MutationType, RangeOption, RangeResult, ReadMode,
    TRANSACTION_LIFETIME, TRANSACTION_SIZE_MAX, key_after,
};

/// A range read returns at most this many bytes per page; callers page on.
const PAGE_BYTES_MAX: usize = 1 << 20;
/// FoundationDB's client backoff: 10 ms doubling to at most 1 s.
const BACKOFF_INITIAL: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

pub(crate) struct EmbeddedTransaction {
    shared: Arc<Shared>,
    state: Mutex<State>,
}

struct State {
    created: Instant,
    timeout: Option<Duration>,
    /// The snapshot at the read version, taken at the first read (or at commit).
    snapshot: Option<(Snapshot, Instant)>,
    writes: WriteBuffer,
    read_conflicts: Vec<KeyRange>,
    write_conflicts: Vec<KeyRange>,
    conflict_bytes: usize,
    /// The first write that broke a limit; the commit reports it.
    write_error: Option<Error>,
    /// Watches created by this transaction.
    watches: Vec<PendingWatch>,
    /// Failed attempts so far, for the backoff.
    attempts: u32,
    /// Set by `commit`: a transaction commits once; `on_error` or `reset` starts it over.
    commit_called: bool,
}

impl State {
    fn new(timeout: Option<Duration>, attempts: u32, created: Instant) -> State {
        State {
            created,
            timeout,
            snapshot: None,
            writes: WriteBuffer::default(),
            read_conflicts: Vec::new(),
            write_conflicts: Vec::new(),
            conflict_bytes: 0,
            write_error: None,
            watches: Vec::new(),
            attempts,
            commit_called: false,
        }
    }

    fn check_alive(&self) -> Result<()> {
        if let Some(timeout) = self.timeout
            && self.created.elapsed() > timeout
        {
            return Err(Error::new(ErrorCode::TransactionTimedOut));
        }
        if let Some((_, taken)) = &self.snapshot
            && taken.elapsed() > TRANSACTION_LIFETIME
        {
            return Err(Error::new(ErrorCode::TransactionTooOld));
        }
        Ok(())
    }

    fn snapshot(&mut self, shared: &Shared) -> Snapshot {
        self.snapshot.get_or_insert_with(|| (shared.published.snapshot(), Instant::now())).0.clone()
    }

    fn add_read_conflict(&mut self, begin: Bytes, end: Bytes) {
        self.conflict_bytes += begin.len() + end.len();
        self.read_conflicts.push((begin, end));
    }

    fn add_write_conflict(&mut self, begin: Bytes, end: Bytes) {
        self.conflict_bytes += begin.len() + end.len();
        self.write_conflicts.push((begin, end));
    }

    fn fail_write(&mut self, error: Error) {
        self.write_error.get_or_insert(error);
    }

    /// The value of `key` as this transaction sees it; adds a read conflict when asked.
    fn read(&mut self, shared: &Shared, key: &[u8], mode: ReadMode) -> Result<Option<Bytes>> {
        self.check_alive()?;
        if key.len() > KEY_SIZE_MAX {
            return Err(Error::with_context(ErrorCode::KeyTooLarge, format!("read of a {}-byte key", key.len())));
        }
        let lookup = self.writes.lookup(key)?;
        let snapshot = self.snapshot(shared);
        let value = match lookup {
            Lookup::Local(v) => return Ok(v),
            Lookup::OverSnapshot(ops) => apply_ops(snapshot.get(key)?, &ops),
            Lookup::Snapshot => snapshot.get(key)?,
        };
        if !mode.is_snapshot() {
            let key = Bytes::copy_from_slice(key);
            self.add_read_conflict(key.clone(), key_after(&key));
        }
        Ok(value)
    }
}

impl EmbeddedTransaction {
    pub(crate) fn new(shared: Arc<Shared>) -> EmbeddedTransaction {
        EmbeddedTransaction { shared, state: Mutex::new(State::new(None, 0, Instant::now())) }
    }

    fn write(&self, key: &[u8], f: impl FnOnce(&mut State, Bytes)) {
        self.write_owned(Bytes::copy_from_slice(key), f)
    }

    fn write_owned(&self, key: Bytes, f: impl FnOnce(&mut State, Bytes)) {
        let mut st = self.state.lock();
        if let Err(e) = check_write_key(&key) {
            return st.fail_write(e);
        }
        st.add_write_conflict(key.clone(), key_after(&key));
        f(&mut st, key);
    }

    fn get_range_now(&self, range: &RangeOption, mode: ReadMode) -> Result<RangeResult> {
        let mut st = self.state.lock();
        st.check_alive()?;
        if range.begin > range.end {
            return Err(Error::with_context(ErrorCode::InvertedRange, "range begin is after its end"));
        }
        let rows_max = range.limit.unwrap_or(usize::MAX);
        if rows_max == 0 || range.begin == range.end {
            return Ok(RangeResult::default());
        }
        let snapshot = st.snapshot(&self.shared);
        let mut entries = snapshot.range(&range.begin, &range.end, range.reverse);
        let (key_values, more) =
            st.writes.merge_range(&range.begin, &range.end, range.reverse, &mut entries, rows_max, PAGE_BYTES_MAX)?;
        if let Some(e) = entries.error() {
            return Err(e);
        }
        if !mode.is_snapshot() {
            // Conflict only on what was actually read: a page cut short leaves the rest free.
            let stopped_early = more || key_values.len() == rows_max;
            let (begin, end) = match key_values.last() {
                Some(last) if stopped_early && !range.reverse => (range.begin.clone(), key_after(&last.key)),
                Some(last) if stopped_early => (last.key.clone(), range.end.clone()),
                _ => (range.begin.clone(), range.end.clone()),
            };
            st.add_read_conflict(begin, end);
        }
        Ok(RangeResult { key_values, more })
    }

    /// Builds the commit request, or answers at once for a read-only transaction.
    fn prepare_commit(&self) -> Result<Prepared> {
        let mut st = self.state.lock();
        if std::mem::replace(&mut st.commit_called, true) {
            return Err(Error::with_context(
                ErrorCode::UsedDuringCommit,
                "commit was already called on this transaction; call on_error or reset before reusing it",
            ));
        }
        if let Some(e) = st.write_error.clone() {
            return Err(e);
        }
        st.check_alive()?;
        let snapshot = st.snapshot(&self.shared);
        if st.writes.is_empty() && st.write_conflicts.is_empty() {
            let watches = std::mem::take(&mut st.watches);
            return Ok(Prepared::ReadOnly(CommitInfo { version: snapshot.version, versionstamp: None }, watches));
        }
        let size = st.writes.size_bytes() + st.conflict_bytes;
        if size > TRANSACTION_SIZE_MAX {
            return Err(Error::with_context(
                ErrorCode::TransactionTooLarge,
                format!("{size} bytes of mutations and conflict ranges (the limit is {TRANSACTION_SIZE_MAX})"),
            ));
        }
        // Taken last: on any error above, `commit` fails them with that error.
        let watches = std::mem::take(&mut st.watches);
        let (reply, rx) = oneshot::channel();
        let req = CommitRequest {
            read_version: snapshot.version,
            read_conflicts: std::mem::take(&mut st.read_conflicts),
            write_conflicts: std::mem::take(&mut st.write_conflicts),
            mutations: st.writes.take_log(),
            reply,
        };
        Ok(Prepared::Submit(req, rx, watches))
    }

    fn finish_watches(&self, watches: Vec<PendingWatch>, outcome: &Result<CommitInfo>) {
        for watch in watches {
            match outcome {
                Ok(_) => self.shared.published.register_watch(watch),
                Err(e) => {
                    let _ = watch.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

enum Prepared {
    ReadOnly(CommitInfo, Vec<PendingWatch>),
    Submit(CommitRequest, oneshot::Receiver<Result<CommitInfo>>, Vec<PendingWatch>),
}

impl TransactionEngine for EmbeddedTransaction {
    fn read_version(&self) -> BoxFuture<'_, Result<i64>> {
        let mut st = self.state.lock();
        let result = st.check_alive().map(|_| st.snapshot(&self.shared).version);
        futures::future::ready(result).boxed()
    }

    fn get<'a>(&'a self, key: &'a [u8], mode: ReadMode) -> BoxFuture<'a, Result<Option<Bytes>>> {
        let result = self.state.lock().read(&self.shared, key, mode);
        futures::future::ready(result).boxed()
    }

    fn get_range<'a>(&'a self, range: &'a RangeOption, mode: ReadMode) -> BoxFuture<'a, Result<RangeResult>> {
        futures::future::ready(self.get_range_now(range, mode)).boxed()
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        if let Err(e) = check_value(value) {
            return self.state.lock().fail_write(e);
        }
        self.write(key, |st, key| st.writes.set(key, Bytes::copy_from_slice(value)));
    }

    fn set_owned(&self, key: Bytes, value: Bytes) {
        if let Err(e) = check_value(&value) {
            return self.state.lock().fail_write(e);
        }
        self.write_owned(key, |st, key| st.writes.set(key, value));
    }

    fn clear(&self, key: &[u8]) {
        self.write(key, |st, key| st.writes.clear(key));
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        let mut st = self.state.lock();
        if begin > end {
            return st.fail_write(Error::with_context(ErrorCode::InvertedRange, "clear_range begin is after its end"));
        }
        for key in [begin, end] {
            if key.len() > KEY_SIZE_MAX {
                return st.fail_write(Error::with_context(ErrorCode::KeyTooLarge, "clear_range bound too large"));
            }
        }
        if begin.first() == Some(&0xff) || end > &[0xff][..] {
            return st
                .fail_write(Error::with_context(ErrorCode::KeyOutsideLegalRange, "clear_range reaches into \\xff"));
        }
        let (begin, end) = (Bytes::copy_from_slice(begin), Bytes::copy_from_slice(end));
        st.add_write_conflict(begin.clone(), end.clone());
        st.writes.clear_range(begin, end);
    }

    fn atomic_op(&self, key: &[u8], param: &[u8], op: MutationType) {
        self.atomic_op_owned(Bytes::copy_from_slice(key), Bytes::copy_from_slice(param), op)
    }

    fn atomic_op_owned(&self, key: Bytes, param: Bytes, op: MutationType) {
        let checked = match op {
            MutationType::SetVersionstampedKey => check_versionstamp_template(&key).and_then(|(body_len, offset)| {
                // The placed key is the body with the stamp in it: it must be a legal key.
                // A stamp never starts with \xff (its first byte is the version's top byte).
                if offset > 0 && key.first() == Some(&crate::types::SYSTEM_KEY_PREFIX) {
                    return Err(Error::with_context(
                        ErrorCode::KeyOutsideLegalRange,
                        "keys starting with \\xff are reserved",
                    ));
                }
                if body_len > KEY_SIZE_MAX {
                    return Err(Error::with_context(
                        ErrorCode::KeyTooLarge,
                        format!("versionstamped key of {body_len} bytes"),
                    ));
                }
                check_value(&param)
            }),
            MutationType::SetVersionstampedValue => {
                check_versionstamp_template(&param).and_then(|(body_len, _)| check_value(&param[..body_len]))
            }
            _ => check_value(&param),
        };
        if let Err(e) = checked {
            return self.state.lock().fail_write(e);
        }
        if op == MutationType::SetVersionstampedKey {
            // The key is not known until commit; its conflict range is added there.
            self.state.lock().writes.atomic(key, op, param);
            return;
        }
        self.write_owned(key, |st, key| st.writes.atomic(key, op, param));
    }

    fn add_conflict_range(&self, begin: &[u8], end: &[u8], kind: ConflictRangeType) -> Result<()> {
        if begin > end {
            return Err(Error::with_context(ErrorCode::InvertedRange, "conflict range begin is after its end"));
        }
        if begin == end {
            // An empty range holds no key: it can neither conflict nor cause one.
            return Ok(());
        }
        let mut st = self.state.lock();
        let (begin, end) = (Bytes::copy_from_slice(begin), Bytes::copy_from_slice(end));
        match kind {
            ConflictRangeType::Read => st.add_read_conflict(begin, end),
            ConflictRangeType::Write => st.add_write_conflict(begin, end),
        }
        Ok(())
    }

    fn watch(&self, key: &[u8]) -> Watch {
        let mut st = self.state.lock();
        // As FoundationDB: creating a watch reads the key serializably.
        let seen = match st.read(&self.shared, key, ReadMode::Serializable) {
            Ok(seen) => seen,
            Err(e) if e.code() == ErrorCode::AccessedUnreadable => None,
            Err(e) => return Watch::failed(e),
        };
        let (reply, rx) = oneshot::channel();
        st.watches.push(PendingWatch { key: Bytes::copy_from_slice(key), seen, reply });
        Watch::from_receiver(rx)
    }

    fn commit(&self) -> BoxFuture<'_, Result<CommitInfo>> {
        async move {
            match self.prepare_commit() {
                Err(e) => {
                    let watches = std::mem::take(&mut self.state.lock().watches);
                    let outcome = Err(e);
                    self.finish_watches(watches, &outcome);
                    outcome
                }
                Ok(Prepared::ReadOnly(info, watches)) => {
                    let outcome = Ok(info);
                    self.finish_watches(watches, &outcome);
                    outcome
                }
                Ok(Prepared::Submit(req, rx, watches)) => {
                    self.shared.submit(req);
                    let reply = async {
                        match rx.await {
                            Ok(outcome) => outcome,
                            Err(_) => Err(Error::with_context(ErrorCode::IoError, "the commit thread has stopped")),
                        }
                    };
                    let deadline = {
                        let st = self.state.lock();
                        st.timeout.map(|t| t.saturating_sub(st.created.elapsed()))
                    };
                    let outcome = match deadline {
                        None => reply.await,
                        // As FoundationDB: timed out, and the commit may still happen.
                        Some(left) => tokio::time::timeout(left, reply)
                            .await
                            .unwrap_or_else(|_| Err(Error::new(ErrorCode::TransactionTimedOut))),
                    };
                    self.finish_watches(watches, &outcome);
                    outcome
                }
            }
        }
        .boxed()
    }

    fn on_error<'a>(&'a self, error: &'a Error) -> BoxFuture<'a, Result<()>> {
        async move {
            if !error.is_retryable() {
                return Err(error.clone());
            }
            let attempts = self.state.lock().attempts;
            let ceiling = BACKOFF_INITIAL.saturating_mul(1 << attempts.min(16)).min(BACKOFF_MAX);
            // Jitter spreads retries of transactions that conflicted with each other.
            let delay = ceiling.mul_f64(0.5 + rand::random::<f64>() / 2.0);
            tokio::time::sleep(delay).await;
            let mut st = self.state.lock();
            let (timeout, created) = (st.timeout, st.created);
            *st = State::new(timeout, attempts + 1, created);
            Ok(())
        }
        .boxed()
    }

    fn reset(&self) {
        let mut st = self.state.lock();
        *st = State::new(st.timeout, 0, Instant::now());
    }

    fn set_timeout(&self, timeout: Duration) {
        self.state.lock().timeout = Some(timeout);
    }
}
