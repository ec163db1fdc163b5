//! stead's scheduler core: a pure function of (snapshot, evaluation, now, seed) → plan.
//!
//! It must not depend on tokio, on the store's engines, on a clock or on global randomness:
//! its dependencies are `stead-model`, serde and regex (`tests/purity.rs` checks the tree and
//! the sources). Time and randomness
//! come in as values; the worker loop that reads snapshots from the store and commits the
//! plans lives at the edge (see docs/ARCHITECTURE.md, "Scheduling").
//!
//! * `placement/` — feasibility (datacenters, node pool, constraints, drivers, resources,
//!   ports), ranking (binpack / spread, job anti-affinity, affinities, spread blocks) over a
//!   seeded sample of candidates, and placement metrics that explain failures.
//! * `reconcile/` — desired versus existing allocations: place, stop, ignore, in-place
//!   and destructive updates (`update.rs`), migrate, lost, reschedule now or later
//!   (`reschedule.rs`); per node for system and sysbatch jobs (`system.rs`).
//!
//! * `scheduler.rs` — [`schedule`]: one evaluation, reconcile then place, into an
//!   [`Outcome`] (plan, annotations, failed placements, follow-up evaluations). Start here.
//! * `plan.rs` — the [`Plan`] and the per-node [`NodeUsage`] record the commit re-reads;
//!   `decide.rs` — the pure step the commit transaction runs over them.
//! * `ids.rs` — allocation and evaluation IDs and attempt seeds, derived from the seed.
//!
//! The worker that claims evaluations, reads snapshots and commits plans is in
//! `stead-server`.

pub mod decide;
pub mod ids;
pub mod placement;
pub mod plan;
pub mod reconcile;
pub mod scheduler;

pub use decide::{NodeCheck, Rejection, decide_node, decide_plan};
pub use plan::{NodePlan, NodeUsage, Plan, PlanStop, PlanUpdate};
pub use scheduler::{EvalInput, Outcome, SchedConfig, Snapshot, schedule};
