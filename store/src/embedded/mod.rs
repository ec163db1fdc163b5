//! The embedded engine: FoundationDB's transaction semantics inside one process.
//!
//! * Reads go to a multi-version index (`mvcc.rs`): each key keeps its recent versions, and a
//!   transaction reads at its read version, so it keeps its view for its whole life.
//! * Commits go through two pipelined stages (`commit.rs`): the committer resolves
//!   conflicts (`resolver.rs`) and writes whole batches into the index at unpublished
//!   versions; the durable writer writes them with one sync (`durable.rs`) and publishes.
//!   Nothing is visible before it is durable.
//! * Each stage runs on its own OS thread in production (fsync must not block the async
//!   executor) and as a task under madsim, where threads are forbidden.

mod commit;
pub mod durable;
mod mvcc;
mod resolver;
mod ryw;
mod txn;

use std::collections::HashMap;
use std::sync::Arc;

use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::api::{Database, DatabaseEngine, TransactionEngine};
use crate::error::{Error, ErrorCode, OpenError, Result};
use crate::types::{Version, WATCHES_MAX};
use commit::{
    BATCH_TRANSACTIONS_MAX, CommitRequest, Committer, DURABLE_BATCHES_MAX, DurableWriter, Failure, Resolved,
    VersionClock,
};
use durable::{Durable, VolatileDurable};
use mvcc::{Index, TrimQueue};
use resolver::Resolver;

/// How to open the embedded engine.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedOptions {
    /// Where committed data lives. None: in memory only, gone when the process ends.
    pub data_dir: Option<std::path::PathBuf>,
}

/// Opens the embedded engine: durable under `data_dir`, or in memory.
pub fn open(options: &EmbeddedOptions) -> Result<Database, OpenError> {
    match &options.data_dir {
        None => open_with(Box::new(VolatileDurable)),
        #[cfg(not(madsim))]
        Some(path) => {
            let durable = durable::open_fjall(path)?;
            open_with(Box::new(durable)).map_err(|e| match e {
                OpenError::Io { source, .. } => OpenError::Corrupt { path: path.clone(), reason: source.to_string() },
                other => other,
            })
        }
        #[cfg(madsim)]
        Some(path) => Err(OpenError::Unsupported(format!(
            "{}: data directories are not available in the simulated build; use a MemDurable",
            path.display()
        ))),
    }
}

/// An in-memory store, for tests and `agent -dev` without a data directory: the data lives
/// in the engine's index only (`VolatileDurable`). The simulation, which restarts engines
/// over the same data, passes a shared `MemDurable` to `open_with` instead.
pub fn open_in_memory() -> Database {
    open_with(Box::new(VolatileDurable)).expect("an empty in-memory store always opens")
}

/// Opens the engine over any durable layer (the simulation passes a shared `MemDurable`
/// so a restarted server finds what was committed before).
pub fn open_with(mut durable: Box<dyn Durable>) -> Result<Database, OpenError> {
    let recovered =
        durable.recover().map_err(|source| OpenError::Io { path: std::path::PathBuf::from("<store>"), source })?;
    let last = recovered.version.unwrap_or(0);
    let published = Arc::new(Published {
        version: AtomicI64::new(last),
        index: Arc::new(Index::load(recovered.data, last)),
        watches: Mutex::new(WatchTable::default()),
    });
    let failure = Arc::new(Failure::default());
    let (to_durable, durable_rx) = mpsc::unbounded_channel();
    let committer = Committer {
        clock: VersionClock::new(last),
        resolver: Resolver::new(last),
        published: published.clone(),
        trims: TrimQueue::default(),
        to_durable,
        failure: failure.clone(),
    };
    let writer = DurableWriter { durable, published: published.clone(), failure };
    let (requests, rx) = mpsc::unbounded_channel();
    #[cfg_attr(madsim, allow(clippy::let_unit_value, unused_variables))]
    let driver = spawn_stages(committer, rx, writer, durable_rx);
    Ok(Database::from_engine(Arc::new(EmbeddedEngine {
        shared: Arc::new(Shared {
            published,
            requests: Some(requests),
            #[cfg(not(madsim))]
            driver: Mutex::new(Some(driver)),
        }),
    })))
}

#[cfg(not(madsim))]
type Driver = std::thread::JoinHandle<()>;
/// Under madsim the stages are tasks of the current node; nothing to join.
#[cfg(madsim)]
type Driver = ();

/// Runs both stages. The committer's thread ends when the request channel closes; it then
/// closes the writer's channel and waits for the writer, so joining it joins both.
#[cfg(not(madsim))]
fn spawn_stages(
    mut committer: Committer,
    mut requests: mpsc::UnboundedReceiver<CommitRequest>,
    mut writer: DurableWriter,
    mut resolved: mpsc::UnboundedReceiver<Resolved>,
) -> Driver {
    let writer = std::thread::Builder::new()
        .name("stead-store-sync".into())
        .spawn(move || {
            while let Some(first) = resolved.blocking_recv() {
                writer.process(drain(first, &mut resolved, DURABLE_BATCHES_MAX));
            }
        })
        .expect("spawning the durable writer thread");
    std::thread::Builder::new()
        .name("stead-store-commit".into())
        .spawn(move || {
            while let Some(first) = requests.blocking_recv() {
                committer.process(drain(first, &mut requests, BATCH_TRANSACTIONS_MAX));
            }
            drop(committer);
            let _ = writer.join();
        })
        .expect("spawning the commit thread")
}

#[cfg(madsim)]
fn spawn_stages(
    mut committer: Committer,
    mut requests: mpsc::UnboundedReceiver<CommitRequest>,
    mut writer: DurableWriter,
    mut resolved: mpsc::UnboundedReceiver<Resolved>,
) -> Driver {
    tokio::spawn(async move {
        while let Some(first) = resolved.recv().await {
            writer.process(drain(first, &mut resolved, DURABLE_BATCHES_MAX));
        }
    });
    tokio::spawn(async move {
        while let Some(first) = requests.recv().await {
            committer.process(drain(first, &mut requests, BATCH_TRANSACTIONS_MAX));
        }
    });
}

/// `first` and whatever else is already waiting, up to `max`.
fn drain<T>(first: T, rx: &mut mpsc::UnboundedReceiver<T>, max: usize) -> Vec<T> {
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    batch
}

struct EmbeddedEngine {
    shared: Arc<Shared>,
}

impl DatabaseEngine for EmbeddedEngine {
    fn create_transaction(&self) -> Result<Arc<dyn TransactionEngine>> {
        Ok(Arc::new(txn::EmbeddedTransaction::new(self.shared.clone())))
    }
}

pub(crate) struct Shared {
    published: Arc<Published>,
    requests: Option<mpsc::UnboundedSender<CommitRequest>>,
    #[cfg(not(madsim))]
    driver: Mutex<Option<Driver>>,
}

impl Shared {
    fn submit(&self, req: CommitRequest) {
        let sender = self.requests.as_ref().expect("the sender lives until drop");
        if let Err(mpsc::error::SendError(req)) = sender.send(req) {
            let _ = req.reply.send(Err(Error::with_context(ErrorCode::IoError, "the commit thread has stopped")));
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Closing the channel ends the committer; wait for it so the data directory is
        // released before anyone reopens it.
        self.requests = None;
        #[cfg(not(madsim))]
        if let Some(handle) = self.driver.lock().take() {
            let _ = handle.join();
        }
    }
}

/// The store as of one published version.
#[derive(Clone)]
pub(crate) struct Snapshot {
    pub version: Version,
    index: Arc<Index>,
}

impl Snapshot {
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.index.get(key, self.version)
    }

    /// Check `RangeScan::error` after consuming the scan.
    pub(crate) fn range(&self, begin: &[u8], end: &[u8], reverse: bool) -> mvcc::RangeScan<'_> {
        self.index.range(begin, end, self.version, reverse)
    }
}

/// What readers see: the newest durable version of the index, and the watches waiting.
pub(crate) struct Published {
    /// Entries above this version are being committed and invisible to everyone.
    version: AtomicI64,
    index: Arc<Index>,
    watches: Mutex<WatchTable>,
}

/// Where a watch reports: Ok when its key changed, or the error that ended it.
pub(crate) type WatchReply = oneshot::Sender<Result<()>>;

/// A watch created by a transaction, armed when (and if) the transaction commits.
pub(crate) struct PendingWatch {
    pub key: Bytes,
    /// The value the transaction saw when it created the watch.
    pub seen: Option<Bytes>,
    pub reply: WatchReply,
}

#[derive(Default)]
struct WatchTable {
    by_key: HashMap<Bytes, Vec<(Option<Bytes>, WatchReply)>>,
    count: usize,
}

impl Published {
    pub(crate) fn version(&self) -> Version {
        self.version.load(Ordering::Acquire)
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot { version: self.version.load(Ordering::Acquire), index: self.index.clone() }
    }

    /// Makes `version` visible and fires the watches of keys whose value changed. `writes`
    /// holds every write in order; the last write of a key is its value.
    fn publish(&self, version: Version, writes: &[(Bytes, Option<Bytes>)]) {
        let mut watches = self.watches.lock();
        self.version.store(version, Ordering::Release);
        if watches.count == 0 {
            return;
        }
        let mut handled: Vec<&Bytes> = Vec::new();
        for (key, value) in writes.iter().rev() {
            if !watches.by_key.contains_key(key) || handled.contains(&key) {
                continue;
            }
            handled.push(key);
            let Some(waiting) = watches.by_key.remove(key) else { continue };
            let (unchanged, fired): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|(seen, _)| seen == value);
            watches.count -= fired.len();
            for (_, tx) in fired {
                let _ = tx.send(Ok(()));
            }
            if !unchanged.is_empty() {
                watches.by_key.insert(key.clone(), unchanged);
            }
        }
    }

    /// Registers a watch once its transaction committed: fires at once when the current
    /// value already differs from what the transaction saw.
    fn register_watch(&self, watch: PendingWatch) {
        let PendingWatch { key, seen, reply: tx } = watch;
        let mut watches = self.watches.lock();
        // The published version is never behind the trim horizon, so this read cannot fail.
        let current = self.snapshot().get(&key).unwrap_or_default();
        if current != seen {
            let _ = tx.send(Ok(()));
            return;
        }
        if watches.count >= WATCHES_MAX {
            watches.by_key.retain(|_, list| {
                list.retain(|(_, tx)| !tx.is_closed());
                !list.is_empty()
            });
            watches.count = watches.by_key.values().map(Vec::len).sum();
            if watches.count >= WATCHES_MAX {
                let _ = tx.send(Err(Error::new(ErrorCode::TooManyWatches)));
                return;
            }
        }
        watches.by_key.entry(key).or_default().push((seen, tx));
        watches.count += 1;
    }
}
