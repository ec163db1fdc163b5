//! A running container: one background waiter and one log follower per handle.
//!
//! The waiter blocks on Docker's wait (`condition=not-running`), inspects the container
//! for its exit code and OOM flag, lets the log follower drain (bounded), then publishes
//! the [`ExitResult`] in a watch channel that every `wait()` reads, so waits may repeat
//! and run concurrently. Dropping the handle aborts both tasks: the container keeps
//! running, and a re-attached handle takes over (a client restart).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    KillContainerOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::logs::{self, LogTarget};
use super::{ContainerState, Persisted, container_state, status_of};
use crate::driver::{DriverError, ExitResult, TaskHandle};

/// How long an exit waits for the container's last output to reach the log files.
const LOG_DRAIN_MAX: Duration = Duration::from_secs(10);
/// Retry backoff while the daemon cannot say whether the container still runs. There is
/// no limit on the attempts: a daemon restart must not lose running tasks.
const WAIT_BACKOFF_MAX: Duration = Duration::from_secs(5);

pub struct DockerHandle {
    docker: Docker,
    persisted: Persisted,
    /// Signals this driver sent, to tell a kill it asked for (exit 128 + n) from a crash.
    sent: Arc<Mutex<BTreeSet<i32>>>,
    exit: watch::Receiver<Option<ExitResult>>,
    logs_done: watch::Receiver<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl DockerHandle {
    /// Starts the waiter and the log follower for a started (or found) container.
    pub fn spawn(docker: Docker, persisted: Persisted) -> Self {
        let (done_tx, logs_done) = watch::channel(false);
        let (exit_tx, exit) = watch::channel(None);
        let sent = Arc::new(Mutex::new(BTreeSet::new()));
        let target = LogTarget {
            logs_dir: persisted.logs_dir.clone(),
            task: persisted.task.clone(),
            limits: persisted.log_limits,
        };
        let follower = tokio::spawn(logs::follow(
            docker.clone(),
            persisted.container_id.clone(),
            persisted.run_dir.clone(),
            target,
            done_tx,
        ));
        let waiter = tokio::spawn(waiter(
            docker.clone(),
            persisted.container_id.clone(),
            sent.clone(),
            logs_done.clone(),
            exit_tx,
        ));
        Self { docker, persisted, sent, exit, logs_done, tasks: vec![follower, waiter] }
    }

    async fn drained(&self) {
        let mut done = self.logs_done.clone();
        let _ = tokio::time::timeout(LOG_DRAIN_MAX, done.wait_for(|d| *d)).await;
    }
}

impl Drop for DockerHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn waiter(
    docker: Docker,
    id: String,
    sent: Arc<Mutex<BTreeSet<i32>>>,
    mut logs_done: watch::Receiver<bool>,
    exit_tx: watch::Sender<Option<ExitResult>>,
) {
    let mut exit = wait_exit(&docker, &id).await;
    let _ = tokio::time::timeout(LOG_DRAIN_MAX, logs_done.wait_for(|d| *d)).await;
    let by_us = exit.exit_code - 128;
    if exit.exit_code > 128 && sent.lock().is_ok_and(|s| s.contains(&by_us)) {
        exit.signal = by_us;
    }
    let _ = exit_tx.send(Some(exit));
}

/// How the container ended, once it has.
async fn wait_exit(docker: &Docker, id: &str) -> ExitResult {
    let mut backoff = Duration::from_millis(100);
    let mut code = None;
    loop {
        let options = WaitContainerOptionsBuilder::new().condition("not-running").build();
        let mut stream = docker.wait_container(id, Some(options));
        match stream.next().await {
            Some(Ok(r)) => {
                code = Some(r.status_code);
                break;
            }
            // bollard reports a non-zero exit as an error.
            Some(Err(DockerError::DockerContainerWaitError { code: c, .. })) => {
                code = Some(c);
                break;
            }
            Some(Err(e)) if status_of(&e) == Some(404) => break,
            other => {
                if let Some(Err(e)) = other {
                    tracing::debug!(container = id, error = %e, "waiting on the container failed; inspecting it");
                }
                match container_state(docker, id).await {
                    ContainerState::Running | ContainerState::Unknown(_) => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(WAIT_BACKOFF_MAX);
                    }
                    ContainerState::Stopped(_) | ContainerState::Gone => break,
                }
            }
        }
    }
    loop {
        match container_state(docker, id).await {
            ContainerState::Stopped(exit) => return exit,
            ContainerState::Gone => {
                let mut exit = ExitResult::lost(format!("container {id} was removed outside of stead"));
                exit.exit_code = code.and_then(|c| i32::try_from(c).ok()).unwrap_or(0);
                return exit;
            }
            // The wait answered, so it has stopped: take the wait's code if the daemon
            // cannot be asked again.
            ContainerState::Unknown(e) if code.is_some() => {
                tracing::warn!(container = id, error = %e, "cannot inspect the exited container");
                return ExitResult::code(code.and_then(|c| i32::try_from(c).ok()).unwrap_or(0));
            }
            ContainerState::Running | ContainerState::Unknown(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(WAIT_BACKOFF_MAX);
            }
        }
    }
}

impl TaskHandle for DockerHandle {
    fn persisted(&self) -> serde_json::Value {
        serde_json::to_value(&self.persisted).unwrap_or_default()
    }

    fn wait(&self) -> BoxFuture<'_, ExitResult> {
        let mut exit = self.exit.clone();
        Box::pin(async move {
            match exit.wait_for(Option::is_some).await {
                Ok(e) => e.clone().unwrap_or_default(),
                Err(_) => ExitResult::lost("the container's waiter stopped"),
            }
        })
    }

    fn signal(&self, signal: i32) -> BoxFuture<'_, Result<(), DriverError>> {
        Box::pin(async move {
            if let Ok(mut s) = self.sent.lock() {
                s.insert(signal);
            }
            let options = KillContainerOptionsBuilder::new().signal(&signal.to_string()).build();
            match self.docker.kill_container(&self.persisted.container_id, Some(options)).await {
                Ok(()) => Ok(()),
                // Not running (409) or gone (404): it has exited, which is what was asked.
                Err(e) if matches!(status_of(&e), Some(404 | 409)) => Ok(()),
                Err(e) => Err(DriverError::Signal(format!(
                    "sending signal {signal} to container {}: {e}",
                    self.persisted.container_name
                ))),
            }
        })
    }

    fn cleanup(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.drained().await;
            let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
            match self.docker.remove_container(&self.persisted.container_id, Some(options)).await {
                Ok(()) => {}
                Err(e) if status_of(&e) == Some(404) => {}
                Err(e) => {
                    tracing::warn!(container = %self.persisted.container_name, error = %e, "removing the container failed")
                }
            }
        })
    }
}
