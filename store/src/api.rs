//! The transaction API every caller uses, and the engine traits behind it.
//!
//! `Database` and `Transaction` are cheap handles over an engine chosen at run time
//! (embedded, FoundationDB, or either behind the fault wrapper). A `Transaction` is
//! `Clone` and its methods take `&self`, as in foundationdb-rs, so a `run` closure can
//! move it into an `async` block and the retry loop can still commit it afterwards.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::error::{Error, ErrorCode, Result, StoreError};
use crate::types::{
    CommitInfo, ConflictRangeType, KeyValue, MaybeCommitted, MutationType, RangeOption, RangeResult, ReadMode, Version,
};

/// What an engine provides: transactions.
pub trait DatabaseEngine: Send + Sync + 'static {
    fn create_transaction(&self) -> Result<Arc<dyn TransactionEngine>>;
}

/// One transaction of an engine. Writes are buffered and return nothing: a write that
/// breaks a limit makes the transaction fail at commit, as in FoundationDB.
pub trait TransactionEngine: Send + Sync + 'static {
    fn read_version(&self) -> BoxFuture<'_, Result<Version>>;
    fn get<'a>(&'a self, key: &'a [u8], mode: ReadMode) -> BoxFuture<'a, Result<Option<Bytes>>>;
    fn get_range<'a>(&'a self, range: &'a RangeOption, mode: ReadMode) -> BoxFuture<'a, Result<RangeResult>>;
    fn set(&self, key: &[u8], value: &[u8]);
    /// `set` with buffers the caller gives up: an engine that keeps them saves a copy.
    fn set_owned(&self, key: Bytes, value: Bytes) {
        self.set(&key, &value)
    }
    fn clear(&self, key: &[u8]);
    fn clear_range(&self, begin: &[u8], end: &[u8]);
    fn atomic_op(&self, key: &[u8], param: &[u8], op: MutationType);
    /// `atomic_op` with buffers the caller gives up: an engine that keeps them saves a copy.
    fn atomic_op_owned(&self, key: Bytes, param: Bytes, op: MutationType) {
        self.atomic_op(&key, &param, op)
    }
    fn add_conflict_range(&self, begin: &[u8], end: &[u8], kind: ConflictRangeType) -> Result<()>;
    /// A future that resolves when `key` changes from the value this transaction sees,
    /// once the transaction commits; it fails with the commit's error otherwise.
    fn watch(&self, key: &[u8]) -> Watch;
    fn commit(&self) -> BoxFuture<'_, Result<CommitInfo>>;
    /// Decides whether `error` may be retried: if so, waits the backoff and resets the
    /// transaction for the next attempt; if not, returns the error.
    fn on_error<'a>(&'a self, error: &'a Error) -> BoxFuture<'a, Result<()>>;
    /// Drops buffered writes and the read version; the transaction starts over.
    fn reset(&self);
    /// Fail with transaction_timed_out once this much time has passed since creation.
    fn set_timeout(&self, timeout: Duration);
}

/// Bounds for `Database::run`.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Attempts before `run` gives up and returns the last error. FoundationDB retries
    /// forever by default; a bound turns a livelock into an error someone sees.
    pub attempts_max: u32,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { attempts_max: 1000 }
    }
}

/// A handle to a store. Clone it freely.
#[derive(Clone)]
pub struct Database {
    engine: Arc<dyn DatabaseEngine>,
    run_options: RunOptions,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("run_options", &self.run_options).finish_non_exhaustive()
    }
}

/// What `Database::run_committed` returns: the closure's value and the commit it made.
#[derive(Debug, Clone)]
pub struct Committed<T> {
    pub value: T,
    pub commit: CommitInfo,
}

impl Database {
    pub fn from_engine(engine: Arc<dyn DatabaseEngine>) -> Database {
        Database { engine, run_options: RunOptions::default() }
    }

    pub fn with_run_options(mut self, run_options: RunOptions) -> Database {
        self.run_options = run_options;
        self
    }

    pub fn create_transaction(&self) -> Result<Transaction> {
        Ok(Transaction { engine: self.engine.create_transaction()? })
    }

    /// Runs `attempt` in a transaction and commits it, retrying retryable errors with
    /// backoff up to `RunOptions::attempts_max` times. Each attempt is told whether an
    /// earlier one may have committed. An error of the caller's own (one that is not a
    /// store error) ends the loop at once and is returned as it is.
    pub async fn run<F, Fut, T, E>(&self, attempt: F) -> Result<T, E>
    where
        F: FnMut(Transaction, MaybeCommitted) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: StoreError,
    {
        Ok(self.run_committed(attempt).await?.value)
    }

    /// `run`, also returning the commit version and versionstamp.
    pub async fn run_committed<F, Fut, T, E>(&self, mut attempt: F) -> Result<Committed<T>, E>
    where
        F: FnMut(Transaction, MaybeCommitted) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: StoreError,
    {
        let tx = self.create_transaction()?;
        let mut maybe_committed = MaybeCommitted(false);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let failure = match attempt(tx.clone(), maybe_committed).await {
                Ok(value) => match tx.commit().await {
                    Ok(commit) => return Ok(Committed { value, commit }),
                    Err(error) => error,
                },
                Err(error) => match error.as_store_error() {
                    Some(store_error) => store_error.clone(),
                    None => return Err(error),
                },
            };
            // Sticky: once any attempt may have committed, every later attempt must know.
            maybe_committed.0 |= failure.maybe_committed();
            if attempts >= self.run_options.attempts_max {
                return Err(give_up(failure, maybe_committed).into());
            }
            // A transaction that keeps failing is worth a line (a conflict storm, a
            // livelock); the first few retries are routine.
            if attempts.is_power_of_two() && attempts >= 8 {
                tracing::debug!(attempts, error = %failure, "transaction still retrying");
            }
            if let Err(error) = tx.on_error(&failure).await {
                return Err(give_up(error, maybe_committed).into());
            }
        }
    }
}

/// The error `run` ends with: the last one, unless an earlier attempt may have committed,
/// which the caller must then hear (commit_unknown_result), whatever the last attempt met.
fn give_up(last: Error, maybe_committed: MaybeCommitted) -> Error {
    if maybe_committed.0 && !last.maybe_committed() {
        Error::with_context(
            ErrorCode::CommitUnknownResult,
            format!("an earlier attempt may have committed; the last attempt failed with {last}"),
        )
    } else {
        last
    }
}

/// A transaction handle. Clones share one transaction.
#[derive(Clone)]
pub struct Transaction {
    engine: Arc<dyn TransactionEngine>,
}

impl Transaction {
    pub fn from_engine(engine: Arc<dyn TransactionEngine>) -> Transaction {
        Transaction { engine }
    }

    pub async fn get_read_version(&self) -> Result<Version> {
        self.engine.read_version().await
    }

    /// Serializable read: the commit fails if `key` changes after the read version.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.engine.get(key, ReadMode::Serializable).await
    }

    /// Snapshot read: adds no read conflict.
    pub async fn get_snapshot(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.engine.get(key, ReadMode::Snapshot).await
    }

    pub async fn get_with(&self, key: &[u8], mode: ReadMode) -> Result<Option<Bytes>> {
        self.engine.get(key, mode).await
    }

    /// One page of a range read. Use `RangeOption::next_page` or `get_range_all` to go on.
    pub async fn get_range(&self, range: &RangeOption, mode: ReadMode) -> Result<RangeResult> {
        self.engine.get_range(range, mode).await
    }

    /// Every key-value in the range (up to `range.limit`), reading page after page.
    pub async fn get_range_all(&self, range: &RangeOption, mode: ReadMode) -> Result<Vec<KeyValue>> {
        let mut out = Vec::new();
        let mut next = Some(range.clone());
        while let Some(range) = next {
            let page = self.engine.get_range(&range, mode).await?;
            next = range.next_page(&page);
            out.extend(page.key_values);
        }
        Ok(out)
    }

    pub fn set(&self, key: &[u8], value: &[u8]) {
        self.engine.set(key, value)
    }

    /// `set` without copying: for keys and values built for this write (an encoded record).
    pub fn set_owned(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.engine.set_owned(key.into(), value.into())
    }

    pub fn clear(&self, key: &[u8]) {
        self.engine.clear(key)
    }

    pub fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.engine.clear_range(begin, end)
    }

    pub fn atomic_op(&self, key: &[u8], param: &[u8], op: MutationType) {
        self.engine.atomic_op(key, param, op)
    }

    /// [`atomic_op`](Self::atomic_op) with buffers the caller gives up.
    pub fn atomic_op_owned(&self, key: Bytes, param: Bytes, op: MutationType) {
        self.engine.atomic_op_owned(key, param, op)
    }

    /// Adds `delta` to the little-endian 8-byte integer at `key` without a read conflict.
    pub fn atomic_add(&self, key: &[u8], delta: i64) {
        self.engine.atomic_op(key, &delta.to_le_bytes(), MutationType::Add)
    }

    /// `key_template` ends with the 4-byte little-endian offset of a 10-byte placeholder
    /// (as `foundationdb_tuple::pack_with_versionstamp` produces).
    pub fn set_versionstamped_key(&self, key_template: &[u8], value: &[u8]) {
        self.engine.atomic_op(key_template, value, MutationType::SetVersionstampedKey)
    }

    /// [`set_versionstamped_key`](Self::set_versionstamped_key) with buffers the caller
    /// gives up (a value shared with a record written in the same transaction is not
    /// copied by the embedded engine).
    pub fn set_versionstamped_key_owned(&self, key_template: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.engine.atomic_op_owned(key_template.into(), value.into(), MutationType::SetVersionstampedKey)
    }

    pub fn set_versionstamped_value(&self, key: &[u8], value_template: &[u8]) {
        self.engine.atomic_op(key, value_template, MutationType::SetVersionstampedValue)
    }

    pub fn add_conflict_range(&self, begin: &[u8], end: &[u8], kind: ConflictRangeType) -> Result<()> {
        self.engine.add_conflict_range(begin, end, kind)
    }

    pub fn watch(&self, key: &[u8]) -> Watch {
        self.engine.watch(key)
    }

    pub async fn commit(&self) -> Result<CommitInfo> {
        self.engine.commit().await
    }

    pub async fn on_error(&self, error: &Error) -> Result<()> {
        self.engine.on_error(error).await
    }

    /// The engine's `on_error` future, for wrappers that forward it.
    pub fn engine_on_error<'a>(&'a self, error: &'a Error) -> BoxFuture<'a, Result<()>> {
        self.engine.on_error(error)
    }

    pub fn reset(&self) {
        self.engine.reset()
    }

    pub fn set_timeout(&self, timeout: Duration) {
        self.engine.set_timeout(timeout)
    }
}

/// A watch on one key: resolves once the key's value differs from what the creating
/// transaction saw. It outlives the transaction; drop it to cancel.
pub struct Watch {
    inner: BoxFuture<'static, Result<()>>,
}

impl Watch {
    pub fn new(inner: BoxFuture<'static, Result<()>>) -> Watch {
        Watch { inner }
    }

    pub fn failed(error: Error) -> Watch {
        Watch { inner: Box::pin(futures::future::ready(Err(error))) }
    }

    /// A watch fed by a oneshot channel; a dropped sender means the transaction was
    /// dropped or reset before it committed.
    pub fn from_receiver(rx: tokio::sync::oneshot::Receiver<Result<()>>) -> Watch {
        Watch::new(Box::pin(async move {
            match rx.await {
                Ok(result) => result,
                Err(_) => Err(Error::new(ErrorCode::TransactionCancelled)),
            }
        }))
    }
}

impl Future for Watch {
    type Output = Result<()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.inner.as_mut().poll(cx)
    }
}

/// Checks a key against the limits every engine enforces for writes.
pub(crate) fn check_write_key(key: &[u8]) -> Result<()> {
    if key.len() > crate::types::KEY_SIZE_MAX {
        return Err(Error::with_context(
            ErrorCode::KeyTooLarge,
            format!("key of {} bytes (the limit is {})", key.len(), crate::types::KEY_SIZE_MAX),
        ));
    }
    if key.first() == Some(&crate::types::SYSTEM_KEY_PREFIX) {
        return Err(Error::with_context(ErrorCode::KeyOutsideLegalRange, "keys starting with \\xff are reserved"));
    }
    Ok(())
}

pub(crate) fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > crate::types::VALUE_SIZE_MAX {
        return Err(Error::with_context(
            ErrorCode::ValueTooLarge,
            format!("value of {} bytes (the limit is {})", value.len(), crate::types::VALUE_SIZE_MAX),
        ));
    }
    Ok(())
}
