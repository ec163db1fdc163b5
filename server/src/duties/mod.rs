//! Server duties: the background work every server runs, each claimed by a lease in the
//! store so that any number of servers share it without doing it twice and without
//! losing it when one dies (Nomad runs these on its leader only).
//!
//! A duty's lease (`(st, 6 DUTY, name) → DutyLease`) names a holder and a token. A server
//! takes a free or expired lease, renews it while it works, and every transaction of the
//! duty checks the token serializably ([`check`]), so work done under a lease that another
//! server took over never commits. A server that does not hold a duty only looks again at
//! the next interval.
//!
//! Duties: [`heartbeat`] (nodes that stopped heartbeating go down), [`periodic`] (launches
//! of periodic jobs), [`drain`] (migrating allocations off draining nodes), [`gc`] (garbage
//! collection). Each pass is bounded
//! (`*_batch_max`) and each unit of work is its own transaction.

pub mod drain;
pub mod gc;
pub mod heartbeat;
pub mod periodic;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stead_store::schema::encoding;
use stead_store::{ReadMode, Transaction};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::clients::HeartbeatConfig;
use crate::env::Env;
use crate::error::{Result, ServerError};
use crate::keys::Store;

/// A duty's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DutyLease {
    pub holder: String,
    /// Fresh each time a server takes the duty: a holder recognises its own lease by it.
    pub token: String,
    /// Unix nanoseconds.
    pub expires_at: i64,
    /// When this holder took the duty (Unix nanoseconds): the start of its failover grace.
    pub acquired_at: i64,
}

/// A lease this server holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub duty: String,
    pub lease: DutyLease,
}

fn corrupt(duty: &str, reason: String) -> ServerError {
    ServerError::Corrupt { what: format!("lease of duty {duty}"), reason }
}

async fn read(store: &Store, tx: &Transaction, duty: &str, mode: ReadMode) -> Result<Option<DutyLease>> {
    match tx.get_with(&store.duty_key(duty), mode).await? {
        None => Ok(None),
        Some(bytes) => encoding::decode(&bytes).map(Some).map_err(|reason| corrupt(duty, reason)),
    }
}

/// Takes `duty` for `holder` when it is free, expired or already ours, for `ttl`; None
/// when another server holds it.
pub async fn acquire(store: &Store, env: &Env, duty: &str, holder: &str, ttl: Duration) -> Result<Option<Held>> {
    let now = env.now_ns();
    let token = env.new_id();
    let ttl_ns = i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX);
    store
        .db
        .run(|tx, _| {
            let token = token.clone();
            async move {
                let current = read(store, &tx, duty, ReadMode::Serializable).await?;
                let lease = match current {
                    Some(l) if l.holder == holder => DutyLease { expires_at: now.saturating_add(ttl_ns), ..l },
                    Some(l) if l.expires_at > now => return Ok(None),
                    _ => DutyLease {
                        holder: holder.to_owned(),
                        token,
                        expires_at: now.saturating_add(ttl_ns),
                        acquired_at: now,
                    },
                };
                let bytes = encoding::encode(&lease).map_err(|reason| corrupt(duty, reason))?;
                tx.set(&store.duty_key(duty), &bytes);
                Ok::<_, ServerError>(Some(Held { duty: duty.to_owned(), lease }))
            }
        })
        .await
}

/// Fails with [`ServerError::DutyLost`] unless `held` is the duty's lease now. A
/// serializable read: a transaction that passes commits only while the lease holds.
pub async fn check(store: &Store, tx: &Transaction, held: &Held) -> Result<()> {
    match read(store, tx, &held.duty, ReadMode::Serializable).await? {
        Some(l) if l.token == held.lease.token => Ok(()),
        _ => Err(ServerError::DutyLost { duty: held.duty.clone() }),
    }
}

/// Gives `held` up (on shutdown), so another server takes over at once.
pub async fn release(store: &Store, held: &Held) -> Result<()> {
    store
        .db
        .run(|tx, _| async move {
            if check(store, &tx, held).await.is_ok() {
                tx.clear(&store.duty_key(&held.duty));
            }
            Ok::<_, ServerError>(())
        })
        .await
}

/// How the duties of one server run.
#[derive(Debug, Clone)]
pub struct DutyConfig {
    /// Names this server in duty leases.
    pub holder: String,
    /// A lease lasts this long without renewal.
    pub lease_ttl: Duration,
    pub heartbeat: HeartbeatConfig,
    /// How often the heartbeat duty looks for expired nodes.
    pub heartbeat_interval: Duration,
    /// How often periodic parents are looked at (cron's resolution is a second).
    pub periodic_interval: Duration,
    /// How often draining nodes are looked at (Nomad batches drain marks every second).
    pub drain_interval: Duration,
    pub gc: gc::GcConfig,
    /// How often garbage is collected (Nomad: every 5 minutes).
    pub gc_interval: Duration,
}

impl Default for DutyConfig {
    fn default() -> Self {
        Self {
            holder: "server".to_owned(),
            lease_ttl: Duration::from_secs(15),
            heartbeat: HeartbeatConfig::default(),
            heartbeat_interval: Duration::from_secs(1),
            periodic_interval: Duration::from_secs(1),
            drain_interval: Duration::from_secs(1),
            gc: gc::GcConfig::default(),
            gc_interval: Duration::from_secs(300),
        }
    }
}

/// The running duties of a server.
pub struct Duties {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Duties {
    /// Stops every duty after its current pass and releases its lease.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// One duty: a pass of work under a held lease.
trait Duty: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn interval(&self) -> Duration;
    fn pass<'a>(&'a self, store: &'a Store, env: &'a Env, held: &'a Held)
    -> futures::future::BoxFuture<'a, Result<()>>;
}

/// Starts every duty on this server.
pub fn start(store: Store, env: Env, config: DutyConfig) -> Duties {
    let (stop, stopped) = watch::channel(false);
    let config = Arc::new(config);
    let duties: Vec<Arc<dyn Duty>> = vec![
        Arc::new(heartbeat::HeartbeatDuty { config: config.heartbeat.clone(), interval: config.heartbeat_interval }),
        Arc::new(periodic::PeriodicDuty { interval: config.periodic_interval }),
        Arc::new(drain::DrainDuty { interval: config.drain_interval }),
        Arc::new(gc::GcDuty { config: config.gc.clone(), every: config.gc_interval, state: Default::default() }),
    ];
    let tasks = duties
        .into_iter()
        .map(|duty| {
            let (store, env, config, stopped) = (store.clone(), env.clone(), config.clone(), stopped.clone());
            tokio::spawn(run_duty(store, env, config, duty, stopped))
        })
        .collect();
    Duties { stop, tasks }
}

async fn run_duty(
    store: Store,
    env: Env,
    config: Arc<DutyConfig>,
    duty: Arc<dyn Duty>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut held: Option<Held> = None;
    loop {
        if *stopped.borrow() {
            break;
        }
        match acquire(&store, &env, duty.name(), &config.holder, config.lease_ttl).await {
            Ok(Some(h)) => {
                if held.as_ref().is_none_or(|old| old.lease.token != h.lease.token) {
                    debug!(duty = duty.name(), holder = %config.holder, "took the duty");
                }
                if let Err(e) = duty.pass(&store, &env, &h).await {
                    warn!(duty = duty.name(), error = %e, "duty pass failed; trying again at the next interval");
                }
                held = Some(h);
            }
            Ok(None) => held = None,
            Err(e) => warn!(duty = duty.name(), error = %e, "could not take or renew the duty's lease"),
        }
        tokio::select! {
            biased;
            _ = stopped.changed() => {}
            () = tokio::time::sleep(duty.interval()) => {}
        }
    }
    if let Some(h) = held {
        let _ = release(&store, &h).await;
    }
}
