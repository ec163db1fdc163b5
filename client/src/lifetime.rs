//! The client's background tasks, stopped together. Every loop the client spawns holds a
//! [`Lifetime`]; ending the [`Lifetimes`] owner (or dropping it, as when the client is
//! dropped like a crash) makes each loop return at its next await point, and
//! [`Lifetimes::wait`] resolves once all have. A loop that returns this way leaves tasks
//! running and persisted state as it was at its last write: what a crash would leave.
//!
//! Built from a watch and an mpsc channel, not a `JoinSet`, which madsim lacks.

use std::future::Future;

use tokio::sync::{mpsc, watch};

/// A handle a spawned loop holds while it runs.
#[derive(Clone)]
pub(crate) struct Lifetime {
    stop: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

impl Lifetime {
    /// Resolves once the owner stopped (or is gone).
    pub(crate) async fn stopped(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
    }

    #[cfg(test)]
    pub(crate) fn is_stopped(&self) -> bool {
        *self.stop.borrow() || self.stop.has_changed().is_err()
    }

    /// Runs `fut` in a new task until it finishes or the owner stops.
    pub(crate) fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let lifetime = self.clone();
        tokio::spawn(async move {
            // Stopping is checked first at every wake-up, so a stopped loop never takes
            // another step.
            tokio::select! {
                biased;
                _ = lifetime.stopped() => {}
                _ = fut => {}
            }
            drop(lifetime);
        });
    }
}

/// Owns the lifetimes; dropping it stops them.
pub(crate) struct Lifetimes {
    stop: watch::Sender<bool>,
    alive: mpsc::Receiver<()>,
    root: Option<Lifetime>,
}

impl Lifetimes {
    pub(crate) fn new() -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let (alive_tx, alive) = mpsc::channel(1);
        Self { stop, alive, root: Some(Lifetime { stop: stop_rx, _alive: alive_tx }) }
    }

    pub(crate) fn lifetime(&self) -> Lifetime {
        match &self.root {
            Some(root) => root.clone(),
            // After `wait` nothing new may start: hand out an already stopped one.
            None => {
                let (alive, _) = mpsc::channel(1);
                let (_, stop) = watch::channel(true);
                Lifetime { stop, _alive: alive }
            }
        }
    }

    /// Stops every loop and waits until all have returned.
    pub(crate) async fn wait(mut self) {
        let _ = self.stop.send(true);
        self.root = None;
        // `None` once every `Lifetime` clone (each held by a running loop) is dropped.
        while self.alive.recv().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn wait_stops_every_loop_and_returns_after_they_did() {
        let lifetimes = Lifetimes::new();
        let finished = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let finished = finished.clone();
            let guard = Guard(finished);
            lifetimes.lifetime().spawn(async move {
                let _guard = guard;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
        }
        lifetimes.wait().await;
        assert_eq!(finished.load(Ordering::SeqCst), 3);
    }

    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn dropping_the_owner_stops_the_loops() {
        let lifetimes = Lifetimes::new();
        let lifetime = lifetimes.lifetime();
        assert!(!lifetime.is_stopped());
        drop(lifetimes);
        tokio::time::timeout(Duration::from_secs(5), lifetime.stopped()).await.expect("stopped");
    }
}
