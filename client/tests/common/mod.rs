//! What the client's integration tests share: an in-memory [`ServerLink`] that hands out
//! allocations and records what the client reports, job and allocation builders, and
//! polling with a deadline.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde_json::Value;
use stead_client::clock::{SeededEntropy, SystemClock};
use stead_client::fingerprint::{FakeHost, Host};
use stead_client::link::{Heartbeat, LinkError, NodeAllocations, ServerLink};
use stead_client::{ClientConfig, Platform};
use stead_model::{
    AllocClientStatus, AllocDesiredStatus, AllocId, Allocation, Job, JobType, Nanos, Node, NodeId, RestartMode,
    RestartPolicy, Task, TaskGroup, TaskState, TaskStateKind,
};
use tokio::sync::watch;

/// Long enough for anything these tests wait for on a loaded 2-core machine; a deadline,
/// not a timing expectation.
pub const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Inner {
    index: u64,
    allocs: BTreeMap<AllocId, Allocation>,
    registrations: Vec<Node>,
    heartbeats: u64,
    updates: Vec<Allocation>,
    failing_updates: u32,
    heartbeat_errors: VecDeque<LinkError>,
    /// `after_index` of every watch opened.
    watch_opens: Vec<u64>,
    /// Bumped to break every open watch.
    watch_generation: u64,
}

/// A server that knows one node's allocations.
pub struct FakeLink {
    inner: Arc<Mutex<Inner>>,
    changed: watch::Sender<u64>,
    ttl: Duration,
}

impl FakeLink {
    pub fn new() -> Arc<Self> {
        Self::with_ttl(Duration::from_secs(2))
    }

    pub fn with_ttl(ttl: Duration) -> Arc<Self> {
        Arc::new(Self { inner: Arc::new(Mutex::new(Inner::default())), changed: watch::channel(0).0, ttl })
    }

    fn bump(&self, inner: &mut Inner) {
        inner.index += 1;
        let _ = self.changed.send(inner.index);
    }

    /// Assigns (or replaces) an allocation.
    pub fn put_alloc(&self, alloc: Allocation) {
        let mut inner = self.inner.lock().unwrap();
        let mut alloc = alloc;
        alloc.alloc_modify_index = inner.index + 1;
        if let Some(old) = inner.allocs.get(&alloc.id) {
            // The servers keep what the client reported.
            alloc.client_status = old.client_status.clone();
            alloc.client_description = old.client_description.clone();
            alloc.task_states = old.task_states.clone();
        }
        inner.allocs.insert(alloc.id.clone(), alloc);
        self.bump(&mut inner);
    }

    pub fn set_desired(&self, id: &AllocId, status: AllocDesiredStatus) {
        let mut alloc = self.alloc(id);
        alloc.desired_status = status;
        self.put_alloc(alloc);
    }

    /// Forgets an allocation, as garbage collection does.
    pub fn remove_alloc(&self, id: &AllocId) {
        let mut inner = self.inner.lock().unwrap();
        inner.allocs.remove(id);
        self.bump(&mut inner);
    }

    /// The allocation with what the client reported merged in.
    pub fn alloc(&self, id: &AllocId) -> Allocation {
        self.inner.lock().unwrap().allocs.get(id).cloned().expect("known allocation")
    }

    pub fn task_state(&self, id: &AllocId, task: &str) -> Option<TaskState> {
        self.alloc(id).task_states.get(task).cloned()
    }

    pub fn registrations(&self) -> Vec<Node> {
        self.inner.lock().unwrap().registrations.clone()
    }

    pub fn heartbeats(&self) -> u64 {
        self.inner.lock().unwrap().heartbeats
    }

    pub fn updates(&self) -> Vec<Allocation> {
        self.inner.lock().unwrap().updates.clone()
    }

    /// The next `n` update calls fail as if no server answered.
    pub fn fail_updates(&self, n: u32) {
        self.inner.lock().unwrap().failing_updates = n;
    }

    pub fn fail_next_heartbeat(&self, error: LinkError) {
        self.inner.lock().unwrap().heartbeat_errors.push_back(error);
    }

    fn snapshot(&self) -> NodeAllocations {
        snapshot(&self.inner)
    }

    /// Ends every open watch with an error, as a broken connection does.
    pub fn break_watches(&self) {
        self.inner.lock().unwrap().watch_generation += 1;
        self.changed.send_modify(|_| {});
    }

    pub fn watch_opens(&self) -> Vec<u64> {
        self.inner.lock().unwrap().watch_opens.clone()
    }
}

impl ServerLink for FakeLink {
    fn register(&self, node: Node) -> BoxFuture<'_, Result<Heartbeat, LinkError>> {
        Box::pin(async move {
            let mut inner = self.inner.lock().unwrap();
            inner.registrations.push(node);
            Ok(Heartbeat { ttl: self.ttl, index: inner.index })
        })
    }

    fn heartbeat(&self, _node_id: NodeId, _secret_id: String) -> BoxFuture<'_, Result<Heartbeat, LinkError>> {
        Box::pin(async move {
            let mut inner = self.inner.lock().unwrap();
            inner.heartbeats += 1;
            if let Some(e) = inner.heartbeat_errors.pop_front() {
                return Err(e);
            }
            Ok(Heartbeat { ttl: self.ttl, index: inner.index })
        })
    }

    fn watch_allocations(
        &self,
        _node_id: NodeId,
        _secret_id: String,
        after_index: u64,
    ) -> BoxStream<'static, Result<NodeAllocations, LinkError>> {
        let generation = {
            let mut inner = self.inner.lock().unwrap();
            inner.watch_opens.push(after_index);
            inner.watch_generation
        };
        let changed = self.changed.subscribe();
        let view = FakeView { inner: self.inner.clone(), changed, after: after_index, first: true, generation };
        Box::pin(futures::stream::unfold(view, |mut view| async move {
            loop {
                if view.generation == u64::MAX {
                    return None; // Broken: the error was sent.
                }
                if view.inner.lock().unwrap().watch_generation != view.generation {
                    view.generation = u64::MAX;
                    return Some((Err(LinkError::Unavailable("connection reset".to_owned())), view));
                }
                // At once when the caller has seen nothing yet, else after a change.
                let set = snapshot(&view.inner);
                if set.index > view.after || (std::mem::take(&mut view.first) && view.after == 0) {
                    view.after = set.index;
                    return Some((Ok(set), view));
                }
                if view.changed.changed().await.is_err() {
                    return None;
                }
            }
        }))
    }

    fn update_allocations(
        &self,
        _node_id: NodeId,
        _secret_id: String,
        updates: Vec<Allocation>,
    ) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async move {
            let mut inner = self.inner.lock().unwrap();
            if inner.failing_updates > 0 {
                inner.failing_updates -= 1;
                return Err(LinkError::Unavailable("injected".to_owned()));
            }
            for update in updates {
                if let Some(alloc) = inner.allocs.get_mut(&update.id) {
                    alloc.client_status = update.client_status.clone();
                    alloc.client_description = update.client_description.clone();
                    alloc.task_states = update.task_states.clone();
                }
                inner.updates.push(update);
            }
            self.bump(&mut inner);
            Ok(())
        })
    }
}

struct FakeView {
    inner: Arc<Mutex<Inner>>,
    changed: watch::Receiver<u64>,
    after: u64,
    first: bool,
    generation: u64,
}

fn snapshot(inner: &Mutex<Inner>) -> NodeAllocations {
    let inner = inner.lock().unwrap();
    NodeAllocations { index: inner.index, allocs: inner.allocs.values().cloned().collect() }
}

/// A job of one group `g` with one task `t`.
pub fn job(id: &str, job_type: JobType, driver: &str, config: Value) -> Job {
    let task = Task {
        name: "t".to_owned(),
        driver: driver.to_owned(),
        config: serde_json::from_value(config).expect("config is a map"),
        kill_timeout: Some(Nanos::from_secs(5)),
        ..Default::default()
    };
    let mut job = Job {
        id: id.into(),
        name: id.to_owned(),
        job_type: Some(job_type),
        datacenters: vec!["dc1".to_owned()],
        task_groups: vec![TaskGroup { name: "g".to_owned(), tasks: vec![task], ..Default::default() }],
        ..Default::default()
    };
    job.canonicalize();
    job
}

/// Restarts `attempts` times in an hour, 50 ms apart, then `mode`.
pub fn restart_policy(attempts: i32, mode: RestartMode) -> RestartPolicy {
    RestartPolicy {
        attempts: Some(attempts),
        interval: Some(Nanos::from_hours(1)),
        delay: Some(Nanos::from_millis(50)),
        mode: Some(mode),
        ..Default::default()
    }
}

pub fn alloc(id: &str, job: &Job) -> Allocation {
    Allocation {
        id: id.into(),
        namespace: "default".to_owned(),
        name: format!("{}.g[0]", job.id),
        job_id: job.id.clone(),
        job_type: job.job_type.clone(),
        job_version: job.version,
        task_group: "g".to_owned(),
        job: Some(Box::new(job.clone())),
        desired_status: AllocDesiredStatus::Run,
        client_status: AllocClientStatus::Pending,
        ..Default::default()
    }
}

/// A client configuration with short intervals, so tests do not wait on tuning.
pub fn config(data_dir: &Path, drivers: &[&str]) -> ClientConfig {
    let mut c = ClientConfig::new(data_dir);
    c.drivers = drivers.iter().map(|d| (*d).to_owned()).collect();
    c.alloc_update_interval = Duration::from_millis(20);
    c.poll_interval = Duration::from_millis(20);
    c.retry_base = Duration::from_millis(20);
    c.retry_max = Duration::from_millis(200);
    c
}

pub fn platform(host: Arc<dyn Host>, seed: u64) -> Platform {
    Platform { host, clock: Arc::new(SystemClock), entropy: Arc::new(SeededEntropy::new(seed)) }
}

pub fn fake_platform(seed: u64) -> Platform {
    platform(Arc::new(FakeHost::standard("test-host")), seed)
}

/// Polls `check` until it returns `Some`, failing the test with `what` at the deadline.
pub async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let mut waited = Duration::ZERO;
    let step = Duration::from_millis(20);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(waited < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(step).await;
        waited += step;
    }
}

pub fn event_types(state: &TaskState) -> Vec<String> {
    state.events.iter().map(|e| e.event_type.clone()).collect()
}

pub fn count_events(state: &TaskState, kind: &str) -> usize {
    state.events.iter().filter(|e| e.event_type == kind).count()
}

/// Waits until the servers were told the task is in `kind`.
pub async fn wait_task_state(link: &FakeLink, alloc: &AllocId, task: &str, kind: TaskStateKind) -> TaskState {
    wait_for(&format!("task {task} of {alloc} to be {kind}"), || {
        link.task_state(alloc, task).filter(|s| s.state == kind)
    })
    .await
}

pub async fn wait_client_status(link: &FakeLink, alloc: &AllocId, status: AllocClientStatus) -> Allocation {
    wait_for(&format!("allocation {alloc} to be {status}"), || {
        Some(link.alloc(alloc)).filter(|a| a.client_status == status)
    })
    .await
}
