//! What one evaluation reads: the cluster (every node with its usage) and the job's own
//! state, at one read version.
//!
//! A worker keeps a [`ClusterCache`]: node views built from node records and usage
//! records, brought up to each snapshot's read version by reading the change logs
//! (`Log::Node`, `Log::Usage`) since the version it last saw, inside the snapshot's
//! transaction. An evaluation therefore pays for what changed since the last one, not for
//! the size of the cluster, and still sees one consistent version of everything.
//!
//! The first load (and a reload) reads all nodes and usages page by page in transactions
//! of their own, then catches up from the log; a change made during the load is in the
//! log after the load's first version, so none is missed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use stead_sched::NodeUsage;
use stead_sched::placement::{ClusterView, NodeSet, NodeView};
use stead_store::model::{Allocation, Deployment, Job, Node, NodeId};
use stead_store::records::{self, keys as record_keys};
use stead_store::schema::{PAGE_LIMIT_MAX, PageOptions, Tuple};
use stead_store::{RangeOption, ReadMode, Transaction, Version};

use crate::error::{Result, ServerError};
use crate::keys::{Log, Store};
use crate::usage;

/// Nodes read per transaction by a full load.
const LOAD_PAGE_NODES: usize = 2_000;
/// Log entries read per page when catching up; a cache that finds more than
/// `CATCH_UP_NODES_MAX` changed nodes reloads instead (it fell far behind).
const CATCH_UP_NODES_MAX: usize = 50_000;

/// A worker's view of every node, at one store version.
#[derive(Debug, Default)]
pub struct ClusterCache {
    /// The store version the views reflect; `None` before the first load.
    version: Option<Version>,
    nodes: NodeSet,
}

impl ClusterCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The store version the cache reflects.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A cluster view at the cache's version (cheap: shares the nodes).
    pub fn view(&self) -> ClusterView {
        ClusterView::of(self.nodes.clone())
    }

    /// Brings the cache to `tx`'s read version: a first load when empty, then the changes
    /// in the logs since the cache's version, read in `tx`.
    pub async fn refresh(&mut self, store: &Store, tx: &Transaction) -> Result<()> {
        if self.version.is_none() {
            self.load(store).await?;
        }
        let since = self.version.unwrap_or(0);
        let target = tx.get_read_version().await?;
        if target <= since {
            return Ok(());
        }
        let mut node_changed = BTreeSet::new();
        let mut usage_changed = BTreeSet::new();
        for (log, changed) in [(Log::Node, &mut node_changed), (Log::Usage, &mut usage_changed)] {
            let (begin, end) = store.log_after(log, since);
            let mut range = Some(RangeOption::new(begin, end).limit(PAGE_LIMIT_MAX));
            while let Some(r) = range {
                let page = tx.get_range(&r, ReadMode::Snapshot).await?;
                for kv in &page.key_values {
                    changed.extend(usage::decode_log_entry(&kv.value)?.into_iter().map(NodeId::from));
                }
                if changed.len() > CATCH_UP_NODES_MAX {
                    self.version = None;
                    return Box::pin(self.refresh(store, tx)).await;
                }
                range = r.next_page(&page);
                if range.is_some() {
                    range = range.map(|r| r.limit(PAGE_LIMIT_MAX));
                }
            }
        }
        let mut changed_views = Vec::new();
        let mut removed = BTreeSet::new();
        for id in node_changed.union(&usage_changed) {
            let usage = usage::get_usage(store, tx, id.as_str(), ReadMode::Snapshot).await?;
            let known = self.nodes.get(id);
            let view = match (node_changed.contains(id), known) {
                // Only the usage changed: the node's view stays, with the new usage.
                (false, Some(known)) => {
                    let mut view = NodeView::clone(known);
                    view.usage = usage.map(|u| u.used).unwrap_or_default();
                    Some(view)
                }
                _ => store
                    .ks
                    .get::<Node>(tx, &record_keys::node(id.as_str()), ReadMode::Snapshot)
                    .await?
                    .map(|node| view_of(&Arc::new(node), usage.as_ref())),
            };
            match view {
                Some(view) => changed_views.push(Arc::new(view)),
                None => {
                    removed.insert(id.clone());
                }
            }
        }
        if !changed_views.is_empty() || !removed.is_empty() {
            self.nodes.update(changed_views, &removed);
        }
        self.version = Some(target);
        Ok(())
    }

    /// Reads every node and usage record, page by page, each page in its own transaction.
    async fn load(&mut self, store: &Store) -> Result<()> {
        let first = store.db.create_transaction()?;
        let start = first.get_read_version().await?;
        let mut views = Vec::new();
        let mut next = None;
        loop {
            let tx = store.db.create_transaction()?;
            let page = PageOptions::new(LOAD_PAGE_NODES).after(next).read_mode(ReadMode::Snapshot);
            let nodes = store.ks.list::<Node>(&tx, &Tuple::empty(), &page).await?;
            for node in nodes.items {
                let usage = usage::get_usage(store, &tx, node.id.as_str(), ReadMode::Snapshot).await?;
                views.push(Arc::new(view_of(&Arc::new(node), usage.as_ref())));
            }
            next = nodes.next;
            if next.is_none() {
                break;
            }
        }
        self.nodes = NodeSet::new(views);
        // Changes committed after `start` are in the logs: the catch-up re-reads them.
        self.version = Some(start);
        Ok(())
    }
}

/// A node's view: capacity from its record, usage from its usage record.
fn view_of(node: &Arc<Node>, usage: Option<&NodeUsage>) -> NodeView {
    let mut view = NodeView::new(node.clone());
    if let Some(u) = usage {
        view.usage = u.used.clone();
    }
    view
}

/// One evaluation's snapshot of its job.
#[derive(Debug, Clone, Default)]
pub struct JobState {
    /// The read version of the snapshot.
    pub version: Version,
    pub job: Option<Job>,
    /// The job's allocations; those of an older job version carry it in `Job`.
    pub allocs: Vec<Allocation>,
    pub deployment: Option<Deployment>,
}

/// Reads a job's state with snapshot reads in `tx` (which the cache was refreshed in).
pub async fn read_job_state(store: &Store, tx: &Transaction, namespace: &str, job_id: &str) -> Result<JobState> {
    let version = tx.get_read_version().await?;
    let job = store.ks.get::<Job>(tx, &record_keys::job(namespace, job_id), ReadMode::Snapshot).await?;
    let mut allocs = Vec::new();
    let mut next = None;
    loop {
        let page = PageOptions::new(PAGE_LIMIT_MAX).after(next).read_mode(ReadMode::Snapshot);
        let found = records::allocs_by_job(&store.ks, tx, namespace, job_id, &page).await?;
        allocs.extend(found.items);
        next = found.next;
        if next.is_none() {
            break;
        }
    }
    let page = PageOptions::new(PAGE_LIMIT_MAX).read_mode(ReadMode::Snapshot);
    let deployment = records::deployments_by_job(&store.ks, tx, namespace, job_id, &page)
        .await?
        .items
        .into_iter()
        .max_by_key(|d| d.create_index);
    if let Some(job) = &job {
        // Older versions, for the in-place or destructive decision; one read per version.
        let mut versions: BTreeMap<u64, Option<Box<Job>>> = BTreeMap::new();
        for alloc in allocs.iter_mut().filter(|a| a.job_version != job.version && !a.is_terminal()) {
            let old = match versions.get(&alloc.job_version) {
                Some(old) => old.clone(),
                None => {
                    let v = alloc.job_version;
                    let old = records::get_job_version(&store.ks, tx, namespace, job_id, v, ReadMode::Snapshot).await?;
                    versions.entry(v).or_insert(old.map(Box::new)).clone()
                }
            };
            alloc.job = old;
        }
    }
    Ok(JobState { version, job, allocs, deployment })
}

/// The usage record of a node, decoded, for checkers and tests.
pub async fn read_usage(store: &Store, node: &str) -> Result<Option<NodeUsage>> {
    let tx = store.db.create_transaction()?;
    usage::get_usage(store, &tx, node, ReadMode::Snapshot).await
}

/// Every usage record (up to `limit`), for checkers and tests.
pub async fn read_all_usage(store: &Store, limit: usize) -> Result<Vec<NodeUsage>> {
    let tx = store.db.create_transaction()?;
    read_all_usage_in(store, &tx, limit).await
}

/// [`read_all_usage`] in `tx`, for a reader that needs them at one read version with
/// other records.
pub async fn read_all_usage_in(store: &Store, tx: &Transaction, limit: usize) -> Result<Vec<NodeUsage>> {
    let (begin, end) = store.usages().range();
    let kvs = tx.get_range_all(&RangeOption::new(begin, end).limit(limit), ReadMode::Snapshot).await?;
    kvs.iter()
        .map(|kv| {
            usage::decode_usage(&kv.value)
                .map_err(|reason| ServerError::Corrupt { what: "usage record".to_owned(), reason })
        })
        .collect()
}
