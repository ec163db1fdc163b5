//! A fault-injecting wrapper over any engine, deterministic for a seed: the failures
//! FoundationDB's clients must survive, at configurable rates, so retry and idempotency
//! logic is exercised in every test that wants it rather than once a year in production.
//!
//! Latency is a `tokio::time::sleep` on the caller's runtime, so under madsim it is
//! simulated time. The random stream is one seeded generator shared by every transaction
//! of the wrapped database: the same seed and the same order of calls give the same faults.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use parking_lot::Mutex;

use crate::api::{Database, DatabaseEngine, Transaction, TransactionEngine, Watch};
use crate::error::{Error, ErrorCode, Result};
use crate::types::{CommitInfo, ConflictRangeType, MutationType, RangeOption, RangeResult, ReadMode, Version};

/// Probability of each fault, per operation it applies to (0.0 = never, 1.0 = always).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultConfig {
    /// Each read and commit first waits a uniform delay in `[0, latency_max]` at this rate.
    pub latency_rate: f64,
    pub latency_max: Duration,
    /// Commit fails with not_committed without applying anything.
    pub not_committed_rate: f64,
    /// Commit applies the writes, then reports commit_unknown_result.
    pub unknown_result_applied_rate: f64,
    /// Commit reports commit_unknown_result without applying the writes.
    pub unknown_result_unapplied_rate: f64,
    /// A read fails with transaction_too_old.
    pub too_old_rate: f64,
    /// Commit fails with transaction_timed_out, half the time after applying the writes
    /// (FoundationDB: the commit may still happen).
    pub timeout_rate: f64,
    /// A watch fails with future_version instead of waiting for its key.
    pub watch_error_rate: f64,
}

impl FaultConfig {
    /// Every retryable fault at `rate`, with up to 5 ms of latency half the time; no
    /// timeouts (they are not retryable, so callers see them as errors).
    pub fn retryable(rate: f64) -> FaultConfig {
        FaultConfig {
            latency_rate: 0.5,
            latency_max: Duration::from_millis(5),
            not_committed_rate: rate,
            unknown_result_applied_rate: rate,
            unknown_result_unapplied_rate: rate,
            too_old_rate: rate / 4.0,
            timeout_rate: 0.0,
            watch_error_rate: rate,
        }
    }
}

/// How many faults of each kind were injected, for tests to prove faults happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub delays: u64,
    pub not_committed: u64,
    pub unknown_applied: u64,
    pub unknown_unapplied: u64,
    pub too_old: u64,
    pub timeouts: u64,
    pub watch_errors: u64,
}

struct FaultState {
    rng: SplitMix64,
    counts: FaultCounts,
    /// The rates in force; a fault driver changes them while transactions run.
    config: FaultConfig,
}

/// Wraps `inner` so that its transactions suffer the faults of `config`, drawn from `seed`.
pub fn wrap(inner: Database, config: FaultConfig, seed: u64) -> (Database, FaultHandle) {
    let state = Arc::new(Mutex::new(FaultState { rng: SplitMix64(seed), counts: FaultCounts::default(), config }));
    let handle = FaultHandle { state: state.clone() };
    (Database::from_engine(Arc::new(FaultyDatabase { inner, state })), handle)
}

/// Reads the fault counters of a wrapped database.
#[derive(Clone)]
pub struct FaultHandle {
    state: Arc<Mutex<FaultState>>,
}

impl FaultHandle {
    pub fn counts(&self) -> FaultCounts {
        self.state.lock().counts
    }

    /// Changes the rates (an outage, a storm, a return to calm) for every operation from now
    /// on, including those of transactions already running.
    pub fn set_config(&self, config: FaultConfig) {
        self.state.lock().config = config;
    }

    pub fn config(&self) -> FaultConfig {
        self.state.lock().config
    }
}

struct FaultyDatabase {
    inner: Database,
    state: Arc<Mutex<FaultState>>,
}

impl DatabaseEngine for FaultyDatabase {
    fn create_transaction(&self) -> Result<Arc<dyn TransactionEngine>> {
        Ok(Arc::new(FaultyTransaction { inner: self.inner.create_transaction()?, state: self.state.clone() }))
    }
}

/// Draws its faults from the wrapper's configuration at the moment of each operation, not
/// as it was when the transaction began: a transaction retried through an outage commits
/// once the outage ends.
struct FaultyTransaction {
    inner: Transaction,
    state: Arc<Mutex<FaultState>>,
}

enum CommitFault {
    None,
    NotCommitted,
    UnknownApplied,
    UnknownUnapplied,
    TimeoutApplied,
    TimeoutUnapplied,
}

impl FaultyTransaction {
    fn config(&self) -> FaultConfig {
        self.state.lock().config
    }

    fn chance(&self, rate: f64) -> bool {
        rate > 0.0 && self.state.lock().rng.next_f64() < rate
    }

    fn count(&self, f: impl FnOnce(&mut FaultCounts)) {
        f(&mut self.state.lock().counts)
    }

    async fn maybe_delay(&self) {
        let delay = {
            let mut st = self.state.lock();
            let c = st.config;
            if c.latency_rate > 0.0 && st.rng.next_f64() < c.latency_rate {
                st.counts.delays += 1;
                Some(c.latency_max.mul_f64(st.rng.next_f64()))
            } else {
                None
            }
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
    }

    async fn before_read(&self) -> Result<()> {
        self.maybe_delay().await;
        if self.chance(self.config().too_old_rate) {
            self.count(|c| c.too_old += 1);
            return Err(Error::with_context(ErrorCode::TransactionTooOld, "injected by the fault wrapper"));
        }
        Ok(())
    }

    fn draw_commit_fault(&self) -> CommitFault {
        let mut st = self.state.lock();
        let c = st.config;
        let mut roll = |rate: f64| rate > 0.0 && st.rng.next_f64() < rate;
        if roll(c.not_committed_rate) {
            CommitFault::NotCommitted
        } else if roll(c.unknown_result_applied_rate) {
            CommitFault::UnknownApplied
        } else if roll(c.unknown_result_unapplied_rate) {
            CommitFault::UnknownUnapplied
        } else if roll(c.timeout_rate) {
            if roll(0.5) { CommitFault::TimeoutApplied } else { CommitFault::TimeoutUnapplied }
        } else {
            CommitFault::None
        }
    }
}

fn injected(code: ErrorCode) -> Error {
    Error::with_context(code, "injected by the fault wrapper")
}

impl TransactionEngine for FaultyTransaction {
    fn read_version(&self) -> BoxFuture<'_, Result<Version>> {
        async move {
            self.before_read().await?;
            self.inner.get_read_version().await
        }
        .boxed()
    }

    fn get<'a>(&'a self, key: &'a [u8], mode: ReadMode) -> BoxFuture<'a, Result<Option<Bytes>>> {
        async move {
            self.before_read().await?;
            self.inner.get_with(key, mode).await
        }
        .boxed()
    }

    fn get_range<'a>(&'a self, range: &'a RangeOption, mode: ReadMode) -> BoxFuture<'a, Result<RangeResult>> {
        async move {
            self.before_read().await?;
            self.inner.get_range(range, mode).await
        }
        .boxed()
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        self.inner.set(key, value)
    }

    fn set_owned(&self, key: Bytes, value: Bytes) {
        self.inner.set_owned(key, value)
    }

    fn clear(&self, key: &[u8]) {
        self.inner.clear(key)
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.inner.clear_range(begin, end)
    }

    fn atomic_op(&self, key: &[u8], param: &[u8], op: MutationType) {
        self.inner.atomic_op(key, param, op)
    }

    fn atomic_op_owned(&self, key: Bytes, param: Bytes, op: MutationType) {
        self.inner.atomic_op_owned(key, param, op)
    }

    fn add_conflict_range(&self, begin: &[u8], end: &[u8], kind: ConflictRangeType) -> Result<()> {
        self.inner.add_conflict_range(begin, end, kind)
    }

    fn watch(&self, key: &[u8]) -> Watch {
        let config = self.config();
        if !self.chance(config.watch_error_rate) {
            return self.inner.watch(key);
        }
        self.count(|c| c.watch_errors += 1);
        let delay = config.latency_max.mul_f64(self.state.lock().rng.next_f64());
        // Drop the real watch: a failed watch no longer waits on the key.
        Watch::new(
            async move {
                tokio::time::sleep(delay).await;
                Err(injected(ErrorCode::FutureVersion))
            }
            .boxed(),
        )
    }

    fn commit(&self) -> BoxFuture<'_, Result<CommitInfo>> {
        async move {
            self.maybe_delay().await;
            match self.draw_commit_fault() {
                CommitFault::None => self.inner.commit().await,
                CommitFault::NotCommitted => {
                    self.count(|c| c.not_committed += 1);
                    Err(injected(ErrorCode::NotCommitted))
                }
                CommitFault::UnknownUnapplied => {
                    self.count(|c| c.unknown_unapplied += 1);
                    Err(injected(ErrorCode::CommitUnknownResult))
                }
                CommitFault::TimeoutUnapplied => {
                    self.count(|c| c.timeouts += 1);
                    Err(injected(ErrorCode::TransactionTimedOut))
                }
                CommitFault::UnknownApplied => {
                    self.inner.commit().await?;
                    self.count(|c| c.unknown_applied += 1);
                    Err(injected(ErrorCode::CommitUnknownResult))
                }
                CommitFault::TimeoutApplied => {
                    self.inner.commit().await?;
                    self.count(|c| c.timeouts += 1);
                    Err(injected(ErrorCode::TransactionTimedOut))
                }
            }
        }
        .boxed()
    }

    fn on_error<'a>(&'a self, error: &'a Error) -> BoxFuture<'a, Result<()>> {
        self.inner.engine_on_error(error)
    }

    fn reset(&self) {
        self.inner.reset()
    }

    fn set_timeout(&self, timeout: Duration) {
        self.inner.set_timeout(timeout)
    }
}

/// A small, fast, seedable generator (SplitMix64): the fault stream needs determinism, not
/// cryptographic quality, and must not depend on the platform's entropy under simulation.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_transaction_retried_through_an_outage_commits_once_it_ends() {
        let db = crate::embedded::open_in_memory();
        let outage = FaultConfig { not_committed_rate: 1.0, ..FaultConfig::default() };
        let (faulty, handle) = wrap(db.clone(), outage, 1);
        let ends = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            handle.set_config(FaultConfig::default());
        };
        let write = faulty.run(|tx, _| async move {
            tx.set(b"k", b"v");
            Ok::<_, Error>(())
        });
        let (written, ()) = tokio::join!(write, ends);
        written.expect("the retried transaction commits after the outage");
        assert!(handle.counts().not_committed >= 2, "it failed during the outage: {:?}", handle.counts());
        let tx = db.create_transaction().unwrap();
        assert_eq!(tx.get(b"k").await.unwrap().as_deref(), Some(&b"v"[..]));
    }
}
