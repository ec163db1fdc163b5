//! The fault driver: from the seed, a rate for each kind of fault, then faults at random
//! moments while the workload runs: server and client crashes and restarts (a restart may
//! come after the node's heartbeat TTL, so it goes down), clogged links and partitioned
//! nodes, network latency and loss, client clock jumps, and store phases (conflict
//! storms, unknown results applied or not, transactions too old, outages that end).
//! [`FaultDriver::calm`] ends every fault for the quiet phase.

use std::collections::BTreeMap;
use std::time::Duration;

use madsim::net::NetSim;
use madsim::runtime::Handle;
use stead_store::fault::FaultConfig;

use crate::Rng;
use crate::cluster::Cluster;

/// The store's faults between phases: a little of every retryable kind.
pub fn baseline() -> FaultConfig {
    FaultConfig { latency_rate: 0.3, latency_max: Duration::from_millis(20), ..FaultConfig::retryable(0.01) }
}

/// A fault in progress that ends at a time.
#[derive(Debug, Clone)]
enum Pending {
    RestartServer(usize),
    RestartClient(usize),
    UnclogLink(madsim::task::NodeId, madsim::task::NodeId),
    UnclogNode(madsim::task::NodeId),
    StoreCalm,
    NetCalm,
}

pub struct FaultDriver {
    rng: Rng,
    /// Mean seconds between faults, and the weights of the kinds, drawn per seed.
    mean_gap_secs: u64,
    weights: [u64; 6],
    pending: BTreeMap<u64, Vec<Pending>>,
    busy_crash_wanted: bool,
    pub injected: u64,
}

impl FaultDriver {
    pub fn new(seed: u64) -> FaultDriver {
        let mut rng = Rng::new(seed);
        let mean_gap_secs = 5 + rng.below(20);
        let weights = std::array::from_fn(|_| 1 + rng.below(5));
        FaultDriver { rng, mean_gap_secs, weights, pending: BTreeMap::new(), busy_crash_wanted: false, injected: 0 }
    }

    /// When the next fault comes.
    pub fn next_gap(&mut self) -> Duration {
        self.rng.secs(1, self.mean_gap_secs * 2)
    }

    fn later(&mut self, now_secs: u64, after: Duration, what: Pending) {
        self.pending.entry(now_secs + after.as_secs().max(1)).or_default().push(what);
    }

    /// Ends the faults whose time came.
    pub fn end_due(&mut self, cluster: &mut Cluster, now_secs: u64) {
        let due: Vec<u64> = self.pending.range(..=now_secs).map(|(t, _)| *t).collect();
        for t in due {
            for p in self.pending.remove(&t).unwrap_or_default() {
                end(cluster, p);
            }
        }
    }

    /// Injects one fault, drawn from the seed.
    pub fn inject(&mut self, cluster: &mut Cluster, now_secs: u64) {
        let handle = Handle::current();
        let net = NetSim::current();
        let total: u64 = self.weights.iter().sum();
        let mut roll = self.rng.below(total);
        let mut kind = 0;
        while roll >= self.weights[kind] {
            roll -= self.weights[kind];
            kind += 1;
        }
        self.injected += 1;
        match kind {
            0 if self.rng.chance(0.5) => {
                // Crash a server in the middle of an evaluation (see `crash_busy_server`).
                self.busy_crash_wanted = true;
            }
            0 => {
                let up: Vec<usize> = (0..cluster.servers.len()).filter(|i| cluster.servers[*i].up).collect();
                if !up.is_empty() {
                    let i = up[self.rng.below(up.len() as u64) as usize];
                    self.crash_server(cluster, i, now_secs);
                }
            }
            1 => {
                let up: Vec<usize> = (0..cluster.clients.len()).filter(|j| cluster.clients[*j].up).collect();
                if up.is_empty() {
                    return;
                }
                let j = up[self.rng.below(up.len() as u64) as usize];
                handle.kill(cluster.clients[j].handle.id());
                cluster.clients[j].up = false;
                tracing::info!(client = j, "fault: client crashed");
                // Up to two minutes: past the TTL and grace, the node goes down.
                let after = self.rng.secs(2, 120);
                self.later(now_secs, after, Pending::RestartClient(j));
            }
            2 => {
                // Clog one direction of a link between a client and a server, or both.
                let j = self.rng.below(cluster.clients.len() as u64) as usize;
                let i = self.rng.below(cluster.servers.len() as u64) as usize;
                let (c, s) = (cluster.clients[j].handle.id(), cluster.servers[i].handle.id());
                let (a, b) = if self.rng.chance(0.5) { (c, s) } else { (s, c) };
                net.clog_link(a, b);
                tracing::info!(%a, %b, "fault: link clogged");
                let after = self.rng.secs(2, 60);
                self.later(now_secs, after, Pending::UnclogLink(a, b));
            }
            3 => {
                // Partition a whole node from everyone.
                let node = if self.rng.chance(0.3) && !cluster.servers.is_empty() {
                    cluster.servers[self.rng.below(cluster.servers.len() as u64) as usize].handle.id()
                } else {
                    cluster.clients[self.rng.below(cluster.clients.len() as u64) as usize].handle.id()
                };
                net.clog_node(node);
                tracing::info!(%node, "fault: node partitioned");
                let after = self.rng.secs(2, 45);
                self.later(now_secs, after, Pending::UnclogNode(node));
            }
            4 => {
                // A client's clock jumps, forward or back, by up to two minutes.
                let j = self.rng.below(cluster.clocks.len() as u64) as usize;
                let by = self.rng.below(240) as i64 - 120;
                cluster.clocks[j].jump(by * 1_000_000_000);
                tracing::info!(client = j, by_secs = by, "fault: clock jumped");
                if self.rng.chance(0.5) {
                    net.update_config(|c| {
                        c.packet_loss_rate = 0.02;
                        c.send_latency = Duration::from_millis(1)..Duration::from_millis(50);
                    });
                    let after = self.rng.secs(5, 60);
                    self.later(now_secs, after, Pending::NetCalm);
                }
            }
            _ => {
                // A store phase: a conflict storm, many unknown results, or an outage.
                let config = match self.rng.below(3) {
                    0 => FaultConfig {
                        latency_rate: 0.5,
                        latency_max: Duration::from_millis(50),
                        ..FaultConfig::retryable(0.2)
                    },
                    1 => FaultConfig {
                        unknown_result_applied_rate: 0.2,
                        unknown_result_unapplied_rate: 0.2,
                        too_old_rate: 0.05,
                        ..baseline()
                    },
                    _ => FaultConfig { not_committed_rate: 1.0, ..baseline() },
                };
                tracing::info!(?config, "fault: store phase");
                cluster.faults.set_config(config);
                let after = self.rng.secs(2, 20);
                self.later(now_secs, after, Pending::StoreCalm);
            }
        }
    }

    /// Crashes server `i` (keeping at least one up) and schedules its restart.
    fn crash_server(&mut self, cluster: &mut Cluster, i: usize, now_secs: u64) {
        if !cluster.servers[i].up || cluster.servers.iter().filter(|s| s.up).count() <= 1 {
            return;
        }
        Handle::current().kill(cluster.servers[i].handle.id());
        cluster.servers[i].up = false;
        tracing::info!(server = i, "fault: server crashed");
        let after = self.rng.secs(2, 60);
        self.later(now_secs, after, Pending::RestartServer(i));
    }

    /// Whether a crash of a busy server is wanted (the caller then runs
    /// [`FaultDriver::crash_busy_server`]).
    pub fn busy_crash_wanted(&self) -> bool {
        self.busy_crash_wanted
    }

    /// Waits up to `within` for a server's worker to hold an evaluation lease, and crashes
    /// that server then: the moment a crash is most likely to find a bug (a lease left
    /// behind, a plan half made). Evaluations last milliseconds, so a crash at a random
    /// moment seldom lands in one.
    pub async fn crash_busy_server(&mut self, cluster: &mut Cluster, within: Duration, start: tokio::time::Instant) {
        self.busy_crash_wanted = false;
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Some(i) = busy_server(&cluster.raw).await {
                self.crash_server(cluster, i, start.elapsed().as_secs());
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Ends every fault now: nodes back up, links open, clocks right, the store and the
    /// network calm (for the quiet phase).
    pub fn calm(&mut self, cluster: &mut Cluster) {
        for (_, ps) in std::mem::take(&mut self.pending) {
            for p in ps {
                end(cluster, p);
            }
        }
        let net = NetSim::current();
        for n in cluster.servers.iter().chain(&cluster.clients) {
            net.unclog_node(n.handle.id());
        }
        for clock in &cluster.clocks {
            clock.reset();
        }
        cluster.faults.set_config(FaultConfig::default());
        net.update_config(|c| {
            c.packet_loss_rate = 0.0;
            c.send_latency = Duration::from_millis(1)..Duration::from_millis(10);
        });
    }
}

fn end(cluster: &mut Cluster, p: Pending) {
    let handle = Handle::current();
    let net = NetSim::current();
    tracing::info!(?p, "fault ends");
    match p {
        Pending::RestartServer(i) => {
            if !cluster.servers[i].up {
                handle.restart(cluster.servers[i].handle.id());
                cluster.servers[i].up = true;
            }
        }
        Pending::RestartClient(j) => {
            if !cluster.clients[j].up {
                handle.restart(cluster.clients[j].handle.id());
                cluster.clients[j].up = true;
            }
        }
        Pending::UnclogLink(a, b) => net.unclog_link(a, b),
        Pending::UnclogNode(n) => net.unclog_node(n),
        Pending::StoreCalm => cluster.faults.set_config(baseline()),
        Pending::NetCalm => net.update_config(|c| {
            c.packet_loss_rate = 0.0;
            c.send_latency = Duration::from_millis(1)..Duration::from_millis(10);
        }),
    }
}

/// The server one of whose workers holds an evaluation lease now, if any (the first).
async fn busy_server(store: &stead_server::Store) -> Option<usize> {
    let tx = store.db.create_transaction().ok()?;
    let (b, e) = store.leases().range();
    let kvs =
        tx.get_range(&stead_store::RangeOption::new(b, e).limit(1), stead_store::ReadMode::Snapshot).await.ok()?;
    let kv = kvs.key_values.first()?;
    let lease = stead_store::schema::encoding::decode::<stead_server::queue::Lease>(&kv.value).ok()?;
    crate::cluster::server_index(&lease.worker)
}
