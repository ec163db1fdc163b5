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
//! Not yet here (issue 4): the plan type and its commit-time `decide` step, the scheduler
//! loop that joins reconcile and placement per evaluation, and the worker at the edge.

pub mod placement;
pub mod reconcile;
