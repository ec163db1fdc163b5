//! stead's scheduler core: a pure function of (snapshot, evaluation, now, seed) → plan.
//!
//! It must not depend on tokio, on the store's engines or on a clock: `cargo tree -p
//! stead-sched` shows only `stead-model` and serde (a test checks it). Time and randomness
//! come in as values; the worker loop that reads snapshots from the store and commits the
//! plans lives at the edge (see docs/ARCHITECTURE.md, "Scheduling").
//!
//! * `placement/` — feasibility (datacenters, node pool, constraints, drivers, resources,
//!   ports), ranking (binpack / spread, job anti-affinity, affinities, spread blocks) over a
//!   seeded sample of candidates, and placement metrics that explain failures.
//! * `reconcile.rs` — desired versus existing allocations: place, stop, ignore, in-place
//!   and destructive updates, migrate, lost, reschedule now or later.

pub mod placement;
pub mod reconcile;
