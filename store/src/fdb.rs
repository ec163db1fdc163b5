//! The FoundationDB engine: our `Database` / `Transaction` API over a FoundationDB cluster
//! through the `foundationdb` crate (0.11, C API 7.3). This is the only file that names
//! FoundationDB types.
//!
//! Mapping, in short:
//!
//! * every operation goes to one `foundationdb::Transaction`; FoundationDB itself checks the
//!   limits (key and value size, transaction size, the `\xff` keyspace), resolves conflicts
//!   and hands out versionstamps, so its error codes reach callers unchanged
//!   (`ErrorCode::from_code`, with FoundationDB's message as context);
//! * `on_error` is FoundationDB's own `on_error`: it decides whether an error is retryable,
//!   waits the backoff and resets the transaction;
//! * `commit` reports the commit version and the versionstamp; a read-only transaction has
//!   neither in FoundationDB (committed version -1), so it reports its read version, as the
//!   embedded engine does.
//!
//! The crate's `commit` and `on_error` consume the transaction, while our transactions are
//! shared by handles that take `&self`. So the transaction lives in a slot under a mutex and
//! is taken out while a commit or an `on_error` is under way; a handle that uses the
//! transaction meanwhile gets `used_during_commit`, as it would from FoundationDB. No crate
//! future is awaited while the mutex is held: every future the crate returns for reads,
//! watches, versionstamps and read versions is `'static` (`+ use<>`), and those of `commit`
//! and `on_error` own the transaction.
//!
//! Differences from the embedded engine that come from FoundationDB and are kept as they are:
//! a read of a key longer than the key limit returns "no value" instead of key_too_large; a
//! range read whose begin is after its end returns nothing instead of inverted_range; reads
//! of `\xff` keys fail with key_outside_legal_range; after a commit the transaction starts
//! over at a new read version (FoundationDB cannot be used after a commit without a reset).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use foundationdb as fdb;
use foundationdb::options::{
    ConflictRangeType as FdbConflictRangeType, DatabaseOption, MutationType as FdbMutationType, StreamingMode,
    TransactionOption,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use parking_lot::Mutex;

use crate::api::{Database, DatabaseEngine, TransactionEngine, Watch};
use crate::error::{Error, ErrorCode, OpenError, Result};
use crate::types::{
    CommitInfo, ConflictRangeType, KeyValue, MutationType, RangeOption, RangeResult, ReadMode, Version, Versionstamp,
};

/// The default for `FdbOptions::transaction_timeout`. The FoundationDB client retries forever
/// when the cluster (or its coordinators' DNS names) cannot be reached: without a timeout the
/// first read of a transaction would wait for ever. The clock starts when the transaction is
/// created and is not restarted by `on_error`, so this also bounds a whole `Database::run`.
pub const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Database-wide defaults for every transaction of a FoundationDB `Database`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbOptions {
    /// FoundationDB's `transaction_timeout` database option: a transaction (with all its
    /// retries) fails with transaction_timed_out after this long. `None` keeps FoundationDB's
    /// default, no timeout. `Transaction::set_timeout` overrides it per transaction.
    pub transaction_timeout: Option<Duration>,
    /// FoundationDB's `transaction_retry_limit` database option: `on_error` gives up after
    /// this many retries. `None` (the default) leaves the bound to `RunOptions::attempts_max`,
    /// so that `Database::run` behaves the same on every engine.
    pub transaction_retry_limit: Option<u32>,
}

impl Default for FdbOptions {
    fn default() -> Self {
        FdbOptions { transaction_timeout: Some(DEFAULT_TRANSACTION_TIMEOUT), transaction_retry_limit: None }
    }
}

/// Opens the FoundationDB cluster named by `cluster_file` (`None`: the cluster file the
/// client finds itself: `FDB_CLUSTER_FILE`, `./fdb.cluster`, then the platform's default),
/// with `FdbOptions::default()`.
///
/// The cluster is not contacted here: FoundationDB connects lazily, so an unreachable cluster
/// shows up as transaction_timed_out from the first transaction.
pub fn open(cluster_file: Option<&Path>) -> Result<Database, OpenError> {
    open_with(cluster_file, &FdbOptions::default())
}

/// `open` with explicit database options.
pub fn open_with(cluster_file: Option<&Path>, options: &FdbOptions) -> Result<Database, OpenError> {
    let shown = shown_cluster_file(cluster_file);
    let refused = |what: &str, e: fdb::FdbError| OpenError::Storage {
        path: shown.clone(),
        reason: format!("{what}: {} ({})", e.message(), e.code()),
    };
    let path = match cluster_file {
        Some(path) => {
            // FoundationDB's own error for a missing file is a bare code; say which file.
            std::fs::File::open(path).map_err(|source| OpenError::Io { path: path.to_path_buf(), source })?;
            Some(path.to_str().ok_or_else(|| OpenError::Storage {
                path: path.to_path_buf(),
                reason: "the FoundationDB client needs a UTF-8 cluster file path".into(),
            })?)
        }
        None => None,
    };
    boot_network().map_err(|reason| OpenError::Storage { path: shown.clone(), reason })?;
    let db = fdb::Database::new(path).map_err(|e| refused("opening the cluster", e))?;
    if let Some(timeout) = options.transaction_timeout {
        db.set_option(DatabaseOption::TransactionTimeout(millis(timeout)))
            .map_err(|e| refused("setting the transaction timeout", e))?;
    }
    if let Some(limit) = options.transaction_retry_limit {
        db.set_option(DatabaseOption::TransactionRetryLimit(i32::try_from(limit).unwrap_or(i32::MAX)))
            .map_err(|e| refused("setting the transaction retry limit", e))?;
    }
    Ok(Database::from_engine(Arc::new(FdbEngine { db: Arc::new(db) })))
}

/// Stops FoundationDB's network thread. Optional: call it at the very end of `main`, after
/// every store handle is gone, to stop the thread before the process exits (see
/// `NETWORK`). Afterwards every FoundationDB operation in this process fails or never
/// completes, and `open` returns an error: the network cannot be started twice.
pub fn stop_network() {
    if let Some(Ok(network)) = NETWORK.get() {
        let guard = network.lock().take();
        drop(guard);
    }
}

/// The FoundationDB client's network: booted once, kept for the life of the process.
///
/// Why a static, and why it is never dropped on its own:
/// * the C client allows one `select_api_version` and one network per process (the crate
///   panics on a second `FdbApiBuilder::build`), and a stopped network cannot be restarted,
///   while a process opens `Database`s many times (every test does). So the first `open`
///   boots it and every later one reuses it; a boot error is remembered for the same reason.
/// * dropping the `NetworkAutoStop` guard stops the network, which would break every
///   `Database` still open. Rust never drops statics, so the network runs until the process
///   exits, which is what the Go, Python and Java bindings do too. `boot` is `unsafe` because
///   the crate asks for the guard to be dropped before exit: a network thread still running
///   while the C library's static destructors run could misbehave during exit. Processes
///   that care call `stop_network` at the end of `main`.
static NETWORK: OnceLock<Result<Mutex<Option<fdb::api::NetworkAutoStop>>, String>> = OnceLock::new();

fn boot_network() -> Result<(), String> {
    let network = NETWORK.get_or_init(|| {
        let builder = fdb::api::FdbApiBuilder::default();
        let wanted = builder.runtime_version();
        let builder = builder.build().map_err(|e| {
            format!(
                "the FoundationDB client library refused API version {wanted}: {} ({}); it supports up to {}; \
                 install the FoundationDB 7.3 client",
                e.message(),
                e.code(),
                fdb::api::get_max_api_version()
            )
        })?;
        // SAFETY: `boot` requires the returned guard to be dropped before the process exits;
        // it is kept in this static for the life of the process (see `NETWORK` for why) and
        // `stop_network` lets a process drop it before exit.
        let guard = unsafe { builder.boot() }
            .map_err(|e| format!("starting the FoundationDB network: {} ({})", e.message(), e.code()))?;
        Ok(Mutex::new(Some(guard)))
    });
    match network {
        Err(reason) => Err(reason.clone()),
        Ok(guard) if guard.lock().is_none() => Err("the FoundationDB network was stopped (stop_network)".into()),
        Ok(_) => Ok(()),
    }
}

/// The cluster file the client will read, for error messages.
fn shown_cluster_file(cluster_file: Option<&Path>) -> PathBuf {
    match cluster_file {
        Some(path) => path.to_path_buf(),
        None => match std::env::var_os("FDB_CLUSTER_FILE") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ if Path::new("fdb.cluster").is_file() => PathBuf::from("fdb.cluster"),
            _ => PathBuf::from(fdb::default_config_path()),
        },
    }
}

/// A timeout in FoundationDB's unit, milliseconds. 0 would mean "no timeout" to FoundationDB,
/// so the shortest timeout is 1 ms.
fn millis(timeout: Duration) -> i32 {
    i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX).max(1)
}

/// A FoundationDB error as ours: the same code, FoundationDB's message as context.
fn store_error(e: fdb::FdbError) -> Error {
    Error::with_context(ErrorCode::from_code(e.code()), e.message())
}

fn used_during_commit(what: &str) -> Error {
    Error::with_context(ErrorCode::UsedDuringCommit, what.to_string())
}

fn apply_timeout(trx: &fdb::Transaction, timeout: Option<Duration>) -> Result<()> {
    match timeout {
        Some(timeout) => trx.set_option(TransactionOption::Timeout(millis(timeout))).map_err(store_error),
        None => Ok(()),
    }
}

fn mutation_type(op: MutationType) -> FdbMutationType {
    match op {
        MutationType::Add => FdbMutationType::Add,
        MutationType::BitAnd => FdbMutationType::BitAnd,
        MutationType::BitOr => FdbMutationType::BitOr,
        MutationType::BitXor => FdbMutationType::BitXor,
        MutationType::AppendIfFits => FdbMutationType::AppendIfFits,
        MutationType::Max => FdbMutationType::Max,
        MutationType::Min => FdbMutationType::Min,
        MutationType::ByteMin => FdbMutationType::ByteMin,
        MutationType::ByteMax => FdbMutationType::ByteMax,
        MutationType::CompareAndClear => FdbMutationType::CompareAndClear,
        MutationType::SetVersionstampedKey => FdbMutationType::SetVersionstampedKey,
        MutationType::SetVersionstampedValue => FdbMutationType::SetVersionstampedValue,
    }
}

struct FdbEngine {
    db: Arc<fdb::Database>,
}

impl DatabaseEngine for FdbEngine {
    fn create_transaction(&self) -> Result<Arc<dyn TransactionEngine>> {
        let trx = self.db.create_trx().map_err(store_error)?;
        Ok(Arc::new(FdbTransaction {
            db: self.db.clone(),
            state: Mutex::new(State {
                slot: Slot::Ready(trx),
                timeout: None,
                timeout_unapplied: false,
                has_read: false,
                deferred: None,
                reset_pending: false,
            }),
        }))
    }
}

/// Where the FoundationDB transaction is.
enum Slot {
    /// Usable.
    Ready(fdb::Transaction),
    /// Its commit failed: FoundationDB wants `on_error` (or a reset) before any other use.
    /// Kept so that `on_error` backs off from FoundationDB's own retry state.
    CommitFailed(fdb::TransactionCommitError),
    /// Taken by a commit or an `on_error` under way.
    Busy,
    /// Gone: the crate destroys the transaction when `on_error` refuses to retry, and a
    /// commit or `on_error` future dropped half-way takes it with it. The next use creates a
    /// new one, so the handle starts over as after a reset.
    Missing,
}

struct State {
    slot: Slot,
    /// Set by `set_timeout`; applied again after every reset (which clears the option).
    timeout: Option<Duration>,
    /// `set_timeout` was called while the transaction was not in the slot.
    timeout_unapplied: bool,
    /// The transaction has a read version: a read-only commit reports it.
    has_read: bool,
    /// A write that could not be handed to FoundationDB (the transaction was busy or had
    /// failed to commit); the next commit fails with it, as FoundationDB fails a commit
    /// after a write it refused.
    deferred: Option<Error>,
    /// `reset` was called while the transaction was busy; done when it comes back.
    reset_pending: bool,
}

impl State {
    /// Drops writes and the read version and restarts the timeout clock.
    fn reset(&mut self) {
        self.has_read = false;
        self.deferred = None;
        let trx = match std::mem::replace(&mut self.slot, Slot::Missing) {
            Slot::Ready(mut trx) => {
                trx.reset();
                trx
            }
            Slot::CommitFailed(failed) => failed.reset(),
            Slot::Busy => {
                self.slot = Slot::Busy;
                self.reset_pending = true;
                return;
            }
            Slot::Missing => return,
        };
        self.install_reset(trx);
    }

    /// Puts a freshly reset transaction in the slot: a reset clears its options.
    fn install_reset(&mut self, trx: fdb::Transaction) {
        if let Err(e) = apply_timeout(&trx, self.timeout) {
            self.deferred = Some(e);
        }
        self.timeout_unapplied = false;
        self.slot = Slot::Ready(trx);
    }

    /// Puts back what a commit or `on_error` leaves.
    fn put_back(&mut self, slot: Slot) {
        self.slot = slot;
        self.put_back_installed();
    }

    /// Catches up with a `reset` or `set_timeout` made while the transaction was busy.
    fn put_back_installed(&mut self) {
        if std::mem::take(&mut self.reset_pending) {
            self.reset();
        } else if self.timeout_unapplied
            && let Slot::Ready(trx) = &self.slot
        {
            // A failed commit keeps the flag: the transaction comes back from its on_error.
            self.timeout_unapplied = false;
            if let Err(e) = apply_timeout(trx, self.timeout) {
                self.deferred = Some(e);
            }
        }
    }
}

struct FdbTransaction {
    db: Arc<fdb::Database>,
    state: Mutex<State>,
}

impl FdbTransaction {
    fn new_trx(&self, timeout: Option<Duration>) -> Result<fdb::Transaction> {
        let trx = self.db.create_trx().map_err(store_error)?;
        apply_timeout(&trx, timeout)?;
        Ok(trx)
    }

    /// Calls `f` on the transaction if it can be used now. `reads`: `f` gives it a read version.
    fn with_trx<R>(&self, reads: bool, f: impl FnOnce(&fdb::Transaction) -> R) -> Result<R> {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if matches!(st.slot, Slot::Missing) {
            st.slot = Slot::Ready(self.new_trx(st.timeout)?);
            st.timeout_unapplied = false;
        }
        match &st.slot {
            Slot::Ready(trx) => {
                let out = f(trx);
                st.has_read |= reads;
                Ok(out)
            }
            Slot::CommitFailed(_) => {
                Err(used_during_commit("the transaction's commit failed; call on_error or reset before using it again"))
            }
            Slot::Busy => Err(used_during_commit("a commit or on_error of this transaction is under way")),
            Slot::Missing => unreachable!("filled above"),
        }
    }

    fn write(&self, f: impl FnOnce(&fdb::Transaction)) {
        if let Err(e) = self.with_trx(false, f) {
            tracing::warn!(error = %e, "a write to a FoundationDB transaction that cannot take it; its commit will fail");
            self.state.lock().deferred.get_or_insert(e);
        }
    }

    /// Marks the slot busy until `finish`; if the future holding this is dropped first, the
    /// transaction went with it and the slot becomes `Missing`.
    fn busy(&self) -> BusyGuard<'_> {
        BusyGuard { state: &self.state, done: false }
    }
}

struct BusyGuard<'a> {
    state: &'a Mutex<State>,
    done: bool,
}

impl BusyGuard<'_> {
    fn finish(mut self, slot: Slot) {
        self.done = true;
        self.state.lock().put_back(slot);
    }

    /// Puts back a transaction that starts over: after a commit (`options_cleared`: the
    /// crate's reset clears its options) or a retry (on_error keeps them).
    fn finish_fresh(mut self, trx: fdb::Transaction, options_cleared: bool) {
        self.done = true;
        let mut st = self.state.lock();
        st.has_read = false;
        st.deferred = None;
        if options_cleared {
            st.install_reset(trx);
            st.put_back_installed();
        } else {
            st.put_back(Slot::Ready(trx));
        }
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut st = self.state.lock();
            st.slot = Slot::Missing;
            st.reset_pending = false;
            st.has_read = false;
            st.deferred = None;
        }
    }
}

impl TransactionEngine for FdbTransaction {
    fn read_version(&self) -> BoxFuture<'_, Result<Version>> {
        let pending = self.with_trx(true, |trx| trx.get_read_version());
        async move { pending?.await.map_err(store_error) }.boxed()
    }

    fn get<'a>(&'a self, key: &'a [u8], mode: ReadMode) -> BoxFuture<'a, Result<Option<Bytes>>> {
        let pending = self.with_trx(true, |trx| trx.get(key, mode.is_snapshot()));
        async move {
            let value = pending?.await.map_err(store_error)?;
            Ok(value.map(|v| Bytes::copy_from_slice(&v)))
        }
        .boxed()
    }

    fn get_range<'a>(&'a self, range: &'a RangeOption, mode: ReadMode) -> BoxFuture<'a, Result<RangeResult>> {
        if range.limit == Some(0) {
            // FoundationDB reads a limit of 0 as "no limit".
            return futures::future::ready(Ok(RangeResult::default())).boxed();
        }
        let opt = fdb::RangeOption {
            begin: fdb::KeySelector::first_greater_or_equal(&range.begin[..]),
            end: fdb::KeySelector::first_greater_or_equal(&range.end[..]),
            limit: range.limit,
            // WantAll: callers that page on usually want the whole range; FoundationDB then
            // sends batches of about 80 kB (fewer round trips than Iterator's first batches).
            mode: StreamingMode::WantAll,
            reverse: range.reverse,
            ..fdb::RangeOption::default()
        };
        let pending = self.with_trx(true, |trx| trx.get_range(&opt, 1, mode.is_snapshot()));
        async move {
            let values = pending?.await.map_err(store_error)?;
            let key_values = values
                .iter()
                .map(|kv| KeyValue { key: Bytes::copy_from_slice(kv.key()), value: Bytes::copy_from_slice(kv.value()) })
                .collect();
            Ok(RangeResult { key_values, more: values.more() })
        }
        .boxed()
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        self.write(|trx| trx.set(key, value));
    }

    fn clear(&self, key: &[u8]) {
        self.write(|trx| trx.clear(key));
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.write(|trx| trx.clear_range(begin, end));
    }

    fn atomic_op(&self, key: &[u8], param: &[u8], op: MutationType) {
        self.write(|trx| trx.atomic_op(key, param, mutation_type(op)));
    }

    fn add_conflict_range(&self, begin: &[u8], end: &[u8], kind: ConflictRangeType) -> Result<()> {
        let kind = match kind {
            ConflictRangeType::Read => FdbConflictRangeType::Read,
            ConflictRangeType::Write => FdbConflictRangeType::Write,
        };
        self.with_trx(false, |trx| trx.add_conflict_range(begin, end, kind))?.map_err(store_error)
    }

    fn watch(&self, key: &[u8]) -> Watch {
        // FoundationDB's watch future owns its state and outlives the transaction; it fails
        // with the commit's error, or transaction_cancelled when the transaction is reset or
        // destroyed uncommitted.
        match self.with_trx(true, |trx| trx.watch(key)) {
            Ok(pending) => Watch::new(Box::pin(async move { pending.await.map_err(store_error) })),
            Err(e) => Watch::failed(e),
        }
    }

    fn commit(&self) -> BoxFuture<'_, Result<CommitInfo>> {
        async move {
            let (committing, versionstamp, read_version) = {
                let mut guard = self.state.lock();
                let st = &mut *guard;
                if let Some(e) = &st.deferred {
                    return Err(e.clone());
                }
                if matches!(st.slot, Slot::Missing) {
                    st.slot = Slot::Ready(self.new_trx(st.timeout)?);
                    st.timeout_unapplied = false;
                }
                match std::mem::replace(&mut st.slot, Slot::Busy) {
                    Slot::Ready(trx) => {
                        // Both must be asked for before the commit consumes the transaction.
                        // The versionstamp resolves once the commit succeeds; the read version
                        // is already known when the transaction has read.
                        let versionstamp = trx.get_versionstamp();
                        let read_version = st.has_read.then(|| trx.get_read_version());
                        (trx.commit(), versionstamp, read_version)
                    }
                    other => {
                        let busy = matches!(other, Slot::Busy);
                        st.slot = other;
                        return Err(if busy {
                            used_during_commit("a commit or on_error of this transaction is under way")
                        } else {
                            used_during_commit("the transaction's commit failed; call on_error or reset before committing again")
                        });
                    }
                }
            };
            let busy = self.busy();
            let committed = match committing.await {
                Ok(committed) => committed,
                Err(failed) => {
                    let error = store_error(*failed);
                    busy.finish(Slot::CommitFailed(failed));
                    return Err(error);
                }
            };
            let info = match committed.committed_version() {
                Err(e) => Err(Error::with_context(
                    ErrorCode::CommitUnknownResult,
                    format!("the commit succeeded but FoundationDB gave no commit version: {}", store_error(e)),
                )),
                Ok(version) if version >= 0 => {
                    let versionstamp = match versionstamp.await {
                        Ok(stamp) => match <[u8; 10]>::try_from(&stamp[..]) {
                            Ok(bytes) => Some(Versionstamp(bytes)),
                            Err(_) => {
                                tracing::warn!(len = stamp.len(), "FoundationDB returned a versionstamp that is not 10 bytes");
                                None
                            }
                        },
                        Err(e) => {
                            // The commit is durable; failing it would make `run` apply it again.
                            tracing::warn!(error = %store_error(e), version, "no versionstamp for a committed transaction");
                            None
                        }
                    };
                    Ok(CommitInfo { version, versionstamp })
                }
                Ok(_read_only) => {
                    drop(versionstamp);
                    let version = match read_version {
                        Some(read_version) => read_version.await.map_err(store_error),
                        // Neither reads nor writes: like the embedded engine, report the
                        // version current at commit (from a transaction of its own, so this
                        // one does not keep a read version).
                        None => match self.db.create_trx() {
                            Ok(probe) => probe.get_read_version().await.map_err(store_error),
                            Err(e) => Err(store_error(e)),
                        },
                    };
                    version.map(|version| CommitInfo { version, versionstamp: None })
                }
            };
            // FoundationDB refuses any use of a committed transaction until it is reset; a
            // reset one also serves an `on_error` after a success (the fault wrapper reports
            // commit_unknown_result for commits that in fact succeeded).
            busy.finish_fresh(committed.reset(), true);
            info
        }
        .boxed()
    }

    fn on_error<'a>(&'a self, error: &'a Error) -> BoxFuture<'a, Result<()>> {
        async move {
            let code = error.code().code();
            let fdb_error = fdb::FdbError::from_code(code);
            // The crate destroys the transaction when its on_error refuses to retry; asking
            // FoundationDB's own predicate first keeps the transaction for errors that are
            // not retryable anyway, as the C API does.
            if !fdb_error.is_retryable() {
                return Err(error.clone());
            }
            let retrying: BoxFuture<'static, fdb::FdbResult<fdb::Transaction>> = {
                let mut guard = self.state.lock();
                let st = &mut *guard;
                match std::mem::replace(&mut st.slot, Slot::Busy) {
                    Slot::Ready(trx) => trx.on_error(fdb_error).boxed(),
                    // The commit's own error: FoundationDB backs off from this transaction's
                    // retry state.
                    Slot::CommitFailed(failed) if failed.code() == code => failed.on_error().boxed(),
                    Slot::CommitFailed(failed) => {
                        let trx = failed.reset();
                        if let Err(e) = apply_timeout(&trx, st.timeout) {
                            st.slot = Slot::Ready(trx);
                            return Err(e);
                        }
                        trx.on_error(fdb_error).boxed()
                    }
                    Slot::Missing => match self.new_trx(st.timeout) {
                        Ok(trx) => {
                            st.timeout_unapplied = false;
                            trx.on_error(fdb_error).boxed()
                        }
                        Err(e) => {
                            st.slot = Slot::Missing;
                            return Err(e);
                        }
                    },
                    Slot::Busy => {
                        return Err(used_during_commit("a commit or on_error of this transaction is under way"));
                    }
                }
            };
            let busy = self.busy();
            match retrying.await {
                Ok(trx) => {
                    // on_error has reset the transaction but kept its options.
                    busy.finish_fresh(trx, false);
                    Ok(())
                }
                Err(refused) => {
                    // Not retried (the retry limit, or an error FoundationDB will not retry
                    // after all); the crate has destroyed the transaction.
                    busy.finish(Slot::Missing);
                    if refused.code() == code { Err(error.clone()) } else { Err(store_error(refused)) }
                }
            }
        }
        .boxed()
    }

    fn reset(&self) {
        self.state.lock().reset();
    }

    fn set_timeout(&self, timeout: Duration) {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        st.timeout = Some(timeout);
        match &st.slot {
            Slot::Ready(trx) => {
                if let Err(e) = apply_timeout(trx, st.timeout) {
                    st.deferred = Some(e);
                }
            }
            // Missing: applied when the transaction is created.
            Slot::Missing => {}
            Slot::CommitFailed(_) | Slot::Busy => st.timeout_unapplied = true,
        }
    }
}
