//! The client: [`Client::start`] fingerprints the node, loads its identity, re-attaches
//! every allocation it persisted, and runs four loops until [`ClientHandle::shutdown`]
//! (or until the handle is dropped, which stops the loops like a crash would: tasks keep
//! running and the next client on the same data dir re-attaches to them):
//!
//! * **registration**: register (retried with [`backoff`]), then heartbeat at about
//!   half the TTL the servers return, jittered; `Unauthorized` or `NotFound` means
//!   register again;
//! * **watch**: the node's allocations as a stream of full sets, reopened after errors
//!   with the last index seen (from 0 after a new registration);
//! * **main**: diffs each set against the runners: new allocations start, changed ones
//!   are passed on, allocations the servers no longer send are destroyed (tasks killed,
//!   directories removed);
//! * **updates**: the client's view of allocations, batched and retried (see
//!   `updater.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use stead_model::{AllocId, Allocation, Node, NodeId};
use tokio::sync::{mpsc, oneshot, watch};

use crate::alloc_runner::{AllocCommand, AllocRunner, AllocRunnerHandle};
use crate::allocdir::AllocDir;
use crate::clock::{Clock, Entropy, SeededEntropy, SystemClock};
use crate::config::ClientConfig;
use crate::driver::{Drivers, KILL_WAIT_MAX};
use crate::fingerprint::{Host, RealHost, assemble_node, gather_facts, update_drivers};
use crate::lifetime::{Lifetime, Lifetimes};
use crate::link::{LinkError, NodeAllocations, ServerLink, backoff};
use crate::logs::{LogError, LogRequest, LogStream, read_logs};
use crate::shared::ClientCore;
use crate::state::{NodeIdentity, StateDir, StateError, read_json};
use crate::task_runner::TaskRecord;
use crate::updater::Updater;

/// How long a `StopTasks` shutdown waits for the servers to take the final updates.
const FINAL_UPDATE_WAIT: Duration = Duration::from_secs(5);

/// The machine, time and randomness a client runs with.
#[derive(Clone)]
pub struct Platform {
    pub host: Arc<dyn Host>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
}

impl Platform {
    /// The real machine, the system clock and OS randomness.
    pub fn real() -> Self {
        Self { host: Arc::new(RealHost), clock: Arc::new(SystemClock), entropy: Arc::new(SeededEntropy::from_os()) }
    }
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform").finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("invalid client configuration: {0}")]
    Config(String),
}

/// What [`ClientHandle::shutdown`] does with the tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Leave them running; the next client on this data dir re-attaches (an upgrade).
    LeaveTasksRunning,
    /// Kill them (kill signal, then SIGKILL after the kill timeout), report the final
    /// states, then stop (a `-dev` agent's Ctrl-C).
    StopTasks,
}

enum ClientCommand {
    StopAll(oneshot::Sender<()>),
}

/// The running client.
pub struct ClientHandle {
    node: Node,
    core: Arc<ClientCore>,
    known: Arc<Mutex<BTreeMap<AllocId, Arc<Allocation>>>>,
    commands: mpsc::UnboundedSender<ClientCommand>,
    lifetimes: Option<Lifetimes>,
}

pub struct Client;

impl Client {
    /// Starts a client on `config.data_dir`. Fails only when the data dir or the
    /// configuration is unusable; servers that cannot be reached are retried forever.
    pub async fn start(
        config: ClientConfig,
        link: Arc<dyn ServerLink>,
        platform: Platform,
    ) -> Result<ClientHandle, ClientError> {
        if config.drivers.is_empty() {
            return Err(ClientError::Config("no drivers enabled".to_owned()));
        }
        let (drivers, unknown) = Drivers::from_config(&config, platform.clock.clone());
        if !unknown.is_empty() {
            return Err(ClientError::Config(unknown.join("; ")));
        }
        let state_dir = config.state_dir();
        std::fs::create_dir_all(&state_dir).map_err(|e| StateError::io(&state_dir, e))?;
        let identity = NodeIdentity::load_or_create(&state_dir, platform.entropy.as_ref())?;
        let facts = gather_facts(platform.host.as_ref(), &config.data_dir);
        let node = assemble_node(&facts, &config, &identity, &drivers.fingerprint(platform.clock.now_ns()));
        let host_env =
            platform.host.env_vars().into_iter().filter(|(k, _)| !config.env_denylist.iter().any(|d| d == k)).collect();
        let core = Arc::new(ClientCore {
            state: StateDir::new(&state_dir, config.durable_state),
            config,
            node: RwLock::new(Arc::new(node.clone())),
            drivers,
            clock: platform.clock,
            entropy: platform.entropy,
            host_env,
            updater: Updater::default(),
        });
        tracing::info!(node_id = %identity.id, name = %node.name, "client starting");

        let lifetimes = Lifetimes::new();
        let lifetime = lifetimes.lifetime();
        let known = Arc::new(Mutex::new(BTreeMap::new()));
        let (registered_tx, registered) = watch::channel(None::<u64>);
        let (allocs_tx, allocs) = watch::channel(None::<NodeAllocations>);
        let (commands, commands_rx) = mpsc::unbounded_channel();

        let (node_changed_tx, node_changed) = watch::channel(0u64);
        lifetime.spawn(register_loop(core.clone(), link.clone(), identity.clone(), registered_tx, node_changed));
        lifetime.spawn(fingerprint_loop(core.clone(), node_changed_tx));
        lifetime.spawn(watch_loop(core.clone(), link.clone(), identity.clone(), registered.clone(), allocs_tx));
        {
            let (core, link, identity, mut registered) = (core.clone(), link.clone(), identity.clone(), registered);
            lifetime.spawn(async move {
                if registered.wait_for(Option::is_some).await.is_ok() {
                    let retry = (core.config.retry_base, core.config.retry_max);
                    core.updater.run(link.as_ref(), &identity, core.config.alloc_update_interval, retry).await;
                }
            });
        }
        let main = MainLoop {
            core: core.clone(),
            link,
            identity,
            lifetime: lifetime.clone(),
            known: known.clone(),
            runners: BTreeMap::new(),
            seen: BTreeMap::new(),
            leaked: Vec::new(),
        };
        lifetime.spawn(main.run(allocs, commands_rx));
        Ok(ClientHandle { node, core, known, commands, lifetimes: Some(lifetimes) })
    }
}

impl ClientHandle {
    pub fn node_id(&self) -> &NodeId {
        &self.node.id
    }

    /// The node as fingerprinted and registered.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// A task's logs (see [`crate::logs::read_logs`]). Errors name an unknown
    /// allocation, an unknown task, or logging that is disabled.
    pub fn logs(&self, request: LogRequest) -> Result<LogStream, LogError> {
        let alloc = self
            .known
            .lock()
            .ok()
            .and_then(|known| known.get(&request.alloc_id).cloned())
            .ok_or_else(|| LogError::UnknownAlloc(request.alloc_id.clone()))?;
        let task = alloc
            .job
            .as_deref()
            .and_then(|job| job.task_group(&alloc.task_group))
            .and_then(|group| group.tasks.iter().find(|t| t.name == request.task))
            .ok_or_else(|| LogError::UnknownTask { alloc: request.alloc_id.clone(), task: request.task.clone() })?;
        if task.log_config.as_ref().and_then(|c| c.disabled) == Some(true) {
            return Err(LogError::Disabled { alloc: request.alloc_id, task: request.task });
        }
        let dir = AllocDir::new(&self.core.config.alloc_root(), &alloc.id)
            .map_err(|_| LogError::UnknownAlloc(alloc.id.clone()))?
            .logs_dir();
        Ok(read_logs(
            dir,
            &request.task,
            request.kind,
            request.origin,
            request.offset,
            request.follow,
            self.core.config.poll_interval,
        ))
    }

    /// Stops the client; see [`ShutdownMode`]. Returns when every loop has ended.
    pub async fn shutdown(mut self, mode: ShutdownMode) {
        if mode == ShutdownMode::StopTasks {
            let (done, wait) = oneshot::channel();
            if self.commands.send(ClientCommand::StopAll(done)).is_ok() {
                let _ = wait.await;
            }
        }
        if let Some(lifetimes) = self.lifetimes.take() {
            lifetimes.wait().await;
        }
        tracing::info!(node_id = %self.node.id, ?mode, "client stopped");
    }
}

/// Fingerprints the drivers again every `driver_fingerprint_interval` (a daemon that
/// went away or came up); when their health changed, updates the node and has the
/// register loop send it.
async fn fingerprint_loop(core: Arc<ClientCore>, node_changed: watch::Sender<u64>) {
    loop {
        tokio::time::sleep(core.config.driver_fingerprint_interval).await;
        core.drivers.probe().await;
        let drivers = core.drivers.fingerprint(core.now());
        let mut node = (*core.node()).clone();
        if update_drivers(&mut node, &drivers) {
            tracing::info!(drivers = ?drivers.iter().map(|(n, d)| (n, d.healthy)).collect::<Vec<_>>(), "driver health changed; updating the node");
            *core.node.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(node);
            node_changed.send_modify(|n| *n += 1);
        }
    }
}

async fn register_loop(
    core: Arc<ClientCore>,
    link: Arc<dyn ServerLink>,
    identity: NodeIdentity,
    registered: watch::Sender<Option<u64>>,
    mut node_changed: watch::Receiver<u64>,
) {
    let (base, max) = (core.config.retry_base, core.config.retry_max);
    let mut epoch = 0;
    loop {
        let mut attempt = 0;
        let mut ttl = loop {
            node_changed.mark_unchanged();
            match link.register((*core.node()).clone()).await {
                Ok(hb) => break hb.ttl,
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "node registration failed; retrying");
                    tokio::time::sleep(backoff(attempt, base, max)).await;
                    attempt += 1;
                }
            }
        };
        epoch += 1;
        let _ = registered.send(Some(epoch));
        tracing::info!(node_id = %identity.id, ?ttl, "node registered");
        'heartbeats: loop {
            let half = ttl / 2;
            let early = half.mul_f64(core.config.heartbeat_jitter.clamp(0.0, 1.0) * core.entropy.next_fraction());
            let sleep = tokio::time::sleep((half - early).max(Duration::from_millis(10)));
            tokio::select! {
                biased;
                // The node changed: registering again updates it (and counts as a heartbeat).
                Ok(()) = node_changed.changed() => break 'heartbeats,
                _ = sleep => {}
            }
            let mut attempt = 0;
            loop {
                match link.heartbeat(identity.id.clone(), identity.secret_id.clone()).await {
                    Ok(hb) => {
                        ttl = hb.ttl;
                        break;
                    }
                    Err(LinkError::Unauthorized(why) | LinkError::NotFound(why)) => {
                        tracing::warn!(error = %why, "servers do not know this node; registering again");
                        break 'heartbeats;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, "heartbeat failed; retrying");
                        // Retry well within the TTL.
                        let wait = backoff(attempt, base, max).min(ttl / 4).max(Duration::from_millis(10));
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                }
            }
        }
    }
}

async fn watch_loop(
    core: Arc<ClientCore>,
    link: Arc<dyn ServerLink>,
    identity: NodeIdentity,
    mut registered: watch::Receiver<Option<u64>>,
    allocs: watch::Sender<Option<NodeAllocations>>,
) {
    let (base, max) = (core.config.retry_base, core.config.retry_max);
    let (mut index, mut epoch, mut attempt) = (0, 0, 0);
    loop {
        let Ok(current) = registered.wait_for(Option::is_some).await.map(|e| e.unwrap_or(0)) else { return };
        if current != epoch {
            // A new registration (perhaps against a reset store): start from scratch.
            (epoch, index) = (current, 0);
        }
        let mut stream = link.watch_allocations(identity.id.clone(), identity.secret_id.clone(), index);
        loop {
            tokio::select! {
                biased;
                changed = registered.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                message = stream.next() => match message {
                    Some(Ok(set)) => {
                        index = index.max(set.index);
                        attempt = 0;
                        let _ = allocs.send(Some(set));
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, index, "allocation watch broke; reopening");
                        break;
                    }
                    None => break,
                },
            }
        }
        tokio::time::sleep(backoff(attempt, base, max)).await;
        attempt += 1;
    }
}

/// What decides that an allocation changed enough to pass to its runner.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SeenKey {
    alloc_modify_index: u64,
    desired_status: String,
    job_version: u64,
    job_modify_index: Option<u64>,
}

impl SeenKey {
    fn of(alloc: &Allocation) -> Self {
        Self {
            alloc_modify_index: alloc.alloc_modify_index,
            desired_status: alloc.desired_status.to_string(),
            job_version: alloc.job_version,
            job_modify_index: alloc.job.as_ref().map(|j| j.job_modify_index),
        }
    }
}

struct MainLoop {
    core: Arc<ClientCore>,
    link: Arc<dyn ServerLink>,
    identity: NodeIdentity,
    lifetime: Lifetime,
    known: Arc<Mutex<BTreeMap<AllocId, Arc<Allocation>>>>,
    runners: BTreeMap<AllocId, AllocRunnerHandle>,
    seen: BTreeMap<AllocId, SeenKey>,
    /// Runners the planted bug `NoDedupe` set aside (always empty otherwise).
    leaked: Vec<AllocRunnerHandle>,
}

impl MainLoop {
    async fn run(
        mut self,
        mut allocs: watch::Receiver<Option<NodeAllocations>>,
        mut commands: mpsc::UnboundedReceiver<ClientCommand>,
    ) {
        self.restore();
        loop {
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(ClientCommand::StopAll(done)) => {
                        self.stop_all().await;
                        let _ = done.send(());
                    }
                    None => return,
                },
                changed = allocs.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let set = allocs.borrow_and_update().clone();
                    if let Some(set) = set {
                        self.handle_set(set.allocs);
                    }
                }
            }
        }
    }

    fn remember(&self, alloc: &Arc<Allocation>) {
        if let Ok(mut known) = self.known.lock() {
            known.insert(alloc.id.clone(), alloc.clone());
        }
    }

    fn forget(&self, id: &AllocId) {
        if let Ok(mut known) = self.known.lock() {
            known.remove(id);
        }
    }

    /// Re-attaches every allocation a previous client on this data dir left.
    fn restore(&mut self) {
        let ids = match self.core.state.list_allocs() {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %e, "cannot list persisted allocations");
                return;
            }
        };
        for id in ids {
            let alloc = match read_json::<Allocation>(&self.core.state.alloc_file(&id)) {
                Ok(Some(alloc)) => Arc::new(alloc),
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, alloc = %id, "cannot restore allocation; leaving its state for inspection");
                    continue;
                }
            };
            let mut records = BTreeMap::new();
            let tasks = alloc.job.as_deref().and_then(|j| j.task_group(&alloc.task_group)).map(|g| g.tasks.as_slice());
            for task in tasks.unwrap_or_default() {
                match read_json::<TaskRecord>(&self.core.state.task_file(&id, &task.name)) {
                    Ok(Some(record)) => {
                        records.insert(task.name.clone(), record);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, alloc = %id, task = %task.name, "cannot restore task state"),
                }
            }
            tracing::info!(alloc = %id, tasks = records.len(), "re-attaching allocation");
            self.remember(&alloc);
            self.seen.insert(id.clone(), SeenKey::of(&alloc));
            let handle = AllocRunner::spawn(alloc, self.core.clone(), self.lifetime.clone(), records);
            self.runners.insert(id, handle);
        }
    }

    fn handle_set(&mut self, allocs: Vec<Allocation>) {
        let mut present = std::collections::BTreeSet::new();
        for mut alloc in allocs {
            present.insert(alloc.id.clone());
            if stead_model::planted::planted(stead_model::planted::Bug::ClientNoDedupe)
                && !alloc.is_terminal()
                && let Some(old) = self.runners.remove(&alloc.id)
            {
                // The planted bug: the runner already running it is kept aside, and the
                // allocation starts again below.
                self.leaked.push(old);
            }
            if let Some(runner) = self.runners.get(&alloc.id) {
                let key = SeenKey::of(&alloc);
                if self.seen.get(&alloc.id) == Some(&key) {
                    continue;
                }
                if alloc.job.is_none() {
                    // The servers collected that job version: keep the one we run.
                    let known = self.known.lock().ok().and_then(|k| k.get(&alloc.id).and_then(|a| a.job.clone()));
                    alloc.job = known;
                }
                let alloc = Arc::new(alloc);
                self.seen.insert(alloc.id.clone(), key);
                self.remember(&alloc);
                let _ = runner.commands.send(AllocCommand::Update(alloc));
                continue;
            }
            if alloc.is_terminal() {
                continue; // Finished before we ever ran it, or ran and was cleaned up.
            }
            if alloc.job.is_none() {
                tracing::warn!(alloc = %alloc.id, "allocation without a job; cannot run it");
                continue;
            }
            let alloc = Arc::new(alloc);
            tracing::info!(alloc = %alloc.id, name = %alloc.name, "starting allocation");
            self.seen.insert(alloc.id.clone(), SeenKey::of(&alloc));
            self.remember(&alloc);
            let handle = AllocRunner::spawn(alloc.clone(), self.core.clone(), self.lifetime.clone(), BTreeMap::new());
            self.runners.insert(alloc.id.clone(), handle);
        }
        let gone: Vec<AllocId> = self.runners.keys().filter(|id| !present.contains(*id)).cloned().collect();
        for id in gone {
            tracing::info!(alloc = %id, "allocation no longer assigned; destroying it");
            if let Some(runner) = self.runners.remove(&id) {
                let _ = runner.commands.send(AllocCommand::Destroy);
            }
            self.seen.remove(&id);
            self.forget(&id);
        }
    }

    async fn stop_all(&mut self) {
        for runner in self.runners.values() {
            let _ = runner.commands.send(AllocCommand::Stop);
        }
        let bound = self.core.config.max_kill_timeout + KILL_WAIT_MAX + Duration::from_secs(5);
        let all = async {
            for runner in self.runners.values_mut() {
                let _ = runner.status.wait_for(|s| s.all_dead).await;
            }
        };
        if tokio::time::timeout(bound, all).await.is_err() {
            tracing::warn!("some tasks did not stop before shutdown");
        }
        self.core.updater.flush(self.link.as_ref(), &self.identity, FINAL_UPDATE_WAIT).await;
    }
}
