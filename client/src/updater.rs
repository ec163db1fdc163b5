//! Allocation updates to the servers, batched: runners [`push`](Updater::push) the
//! client's view of an allocation whenever it changes; the latest view per allocation
//! waits here, and at most every `alloc_update_interval` everything waiting goes in one
//! `update_allocations` call, retried with backoff until the servers acknowledge it. A
//! view pushed while a batch is in flight supersedes that batch's copy, never the other
//! way round.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use stead_model::{AllocId, Allocation};
use tokio::sync::Notify;

use crate::link::{LinkError, ServerLink, backoff};
use crate::state::NodeIdentity;

#[derive(Default)]
pub(crate) struct Updater {
    /// The newest unsent view of each allocation, with the push sequence number that
    /// made it (so a failed batch does not overwrite a newer push).
    pending: Mutex<BTreeMap<AllocId, (u64, Allocation)>>,
    seq: std::sync::atomic::AtomicU64,
    wake: Notify,
}

/// The fields of an allocation the client owns (what `update_allocations` reads).
pub(crate) fn client_view(alloc: &Allocation) -> Allocation {
    Allocation {
        id: alloc.id.clone(),
        namespace: alloc.namespace.clone(),
        client_status: alloc.client_status.clone(),
        client_description: alloc.client_description.clone(),
        task_states: alloc.task_states.clone(),
        deployment_status: alloc.deployment_status.clone(),
        network_status: alloc.network_status.clone(),
        ..Default::default()
    }
}

impl Updater {
    pub(crate) fn push(&self, update: Allocation) {
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(update.id.clone(), (seq, update));
        }
        self.wake.notify_one();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.lock().map(|p| p.is_empty()).unwrap_or(true)
    }

    fn take(&self) -> Vec<(u64, Allocation)> {
        match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending).into_values().collect(),
            Err(_) => Vec::new(),
        }
    }

    fn put_back(&self, batch: Vec<(u64, Allocation)>) {
        if let Ok(mut pending) = self.pending.lock() {
            for (seq, alloc) in batch {
                pending.entry(alloc.id.clone()).or_insert((seq, alloc));
            }
        }
    }

    /// Sends what is waiting once; `Err` puts it back.
    async fn send_once(&self, link: &dyn ServerLink, identity: &NodeIdentity) -> Result<usize, LinkError> {
        let batch = self.take();
        if batch.is_empty() {
            return Ok(0);
        }
        let updates: Vec<Allocation> = batch.iter().map(|(_, a)| a.clone()).collect();
        match link.update_allocations(identity.id.clone(), identity.secret_id.clone(), updates).await {
            Ok(()) => Ok(batch.len()),
            Err(LinkError::Invalid(why)) => {
                // Retrying the same request cannot succeed; the next push sends afresh.
                tracing::error!(error = %why, allocs = batch.len(), "servers refused allocation updates; dropping them");
                Ok(0)
            }
            Err(e) => {
                self.put_back(batch);
                Err(e)
            }
        }
    }

    /// Sends forever: waits for a push, lets more gather for `interval`, sends, retries.
    pub(crate) async fn run(
        &self,
        link: &dyn ServerLink,
        identity: &NodeIdentity,
        interval: Duration,
        retry: (Duration, Duration),
    ) {
        let mut attempt = 0;
        loop {
            if self.is_empty() {
                self.wake.notified().await;
            }
            tokio::time::sleep(interval).await;
            match self.send_once(link, identity).await {
                Ok(_) => attempt = 0,
                Err(e) => {
                    tracing::warn!(error = %e, "allocation update failed; retrying");
                    tokio::time::sleep(backoff(attempt, retry.0, retry.1)).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Sends what is waiting, retrying until `deadline` passes; for shutdown.
    pub(crate) async fn flush(&self, link: &dyn ServerLink, identity: &NodeIdentity, deadline: Duration) {
        let flush = async {
            let mut attempt = 0;
            while !self.is_empty() {
                if self.send_once(link, identity).await.is_err() {
                    tokio::time::sleep(backoff(attempt, Duration::from_millis(50), Duration::from_secs(1))).await;
                    attempt += 1;
                }
            }
        };
        if tokio::time::timeout(deadline, flush).await.is_err() {
            tracing::warn!("allocation updates not acknowledged before shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: &str, desc: &str) -> Allocation {
        Allocation { id: id.into(), client_description: desc.to_owned(), ..Default::default() }
    }

    #[test]
    fn newest_push_per_allocation_wins_and_a_failed_batch_does_not_overwrite_it() {
        let u = Updater::default();
        u.push(update("a", "1"));
        u.push(update("a", "2"));
        u.push(update("b", "1"));
        let batch = u.take();
        assert_eq!(batch.iter().map(|(_, a)| a.client_description.as_str()).collect::<Vec<_>>(), vec!["2", "1"]);
        u.push(update("a", "3"));
        u.put_back(batch);
        let again: BTreeMap<String, String> =
            u.take().into_iter().map(|(_, a)| (a.id.to_string(), a.client_description)).collect();
        assert_eq!(again.get("a").map(String::as_str), Some("3"));
        assert_eq!(again.get("b").map(String::as_str), Some("1"));
    }

    #[test]
    fn the_client_view_carries_only_client_fields() {
        let full = Allocation {
            id: "a".into(),
            namespace: "ns".to_owned(),
            name: "j.g[0]".to_owned(),
            job: Some(Box::default()),
            client_description: "x".to_owned(),
            ..Default::default()
        };
        let view = client_view(&full);
        assert_eq!((view.id.as_str(), view.namespace.as_str(), view.client_description.as_str()), ("a", "ns", "x"));
        assert!(view.job.is_none() && view.name.is_empty());
    }
}
