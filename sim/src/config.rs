//! What a simulation run is: its seed, the cluster's size, how long, which faults, and
//! which planted bug (if any).

use std::time::Duration;

/// A bug planted on purpose (`stead_model::planted`).
pub use stead_store::model::planted::Bug as Planted;

#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub seed: u64,
    pub servers: usize,
    pub clients: usize,
    /// How long the workload and the faults run, in simulated time.
    pub duration: Duration,
    /// How long the cluster gets, faults off, to reach its liveness conditions.
    pub quiet: Duration,
    pub faults: bool,
    pub planted: Option<Planted>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            servers: 3,
            clients: 20,
            duration: Duration::from_secs(600),
            quiet: Duration::from_secs(300),
            faults: true,
            planted: None,
        }
    }
}

/// A violated check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The check's name (`node-over-committed`, `duplicate-allocation-name`, ...).
    pub check: &'static str,
    pub detail: String,
    /// Simulated seconds since the run started.
    pub at_secs: u64,
}

/// What a run found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub seed: u64,
    pub violations: Vec<Violation>,
    /// Invariant evaluations performed.
    pub checks: u64,
    /// Simulated seconds the run lasted.
    pub virtual_secs: f64,
    /// Workload operations acknowledged, and those whose outcome was unknown.
    pub ops_acked: u64,
    pub ops_unknown: u64,
    /// Faults the driver injected (node crashes, partitions, clock jumps, store phases).
    pub faults: u64,
    /// Allocations placed in the run.
    pub allocations: u64,
    /// A hash of the run's trace: every key and value in the store at the end (which
    /// holds every ID, index, version and timestamp the run made), the workload's writes
    /// and their outcomes, and the violations. Two runs of a seed must agree on it.
    pub digest: u64,
}

impl Report {
    /// The report as one JSON object (how a seed's process hands it to the runner).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "seed": self.seed,
            "violations": self.violations.iter().map(|v| serde_json::json!({
                "check": v.check, "detail": v.detail, "at_secs": v.at_secs,
            })).collect::<Vec<_>>(),
            "checks": self.checks,
            "virtual_secs": self.virtual_secs,
            "ops_acked": self.ops_acked,
            "ops_unknown": self.ops_unknown,
            "faults": self.faults,
            "allocations": self.allocations,
            "digest": format!("{:016x}", self.digest),
        })
    }
}
