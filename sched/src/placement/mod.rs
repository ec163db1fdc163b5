//! Choosing nodes for allocations: feasibility, ranking, sampling, metrics.
//!
//! Start at [`place_group`]: it builds a [`GroupPlacer`] for one task group over a
//! [`ClusterView`] (nodes with capacity, usage and allocations) and places allocations one at
//! a time, each seeing the usage of the ones before.
//!
//! * Candidates: ready, eligible, not draining nodes in the job's node pool (`all` = every
//!   pool) and datacenters (`*` globs), shuffled by the seed.
//! * Feasibility: constraints (every Nomad operator, see [`constraint`]), drivers, host
//!   volumes, then `distinct_hosts` / `distinct_property`, then resources and ports.
//!   Constraint, driver and affinity results are memoized per computed class unless a
//!   target names `unique.` values.
//! * Ranking: binpack or spread fitness, job anti-affinity, rescheduling penalty,
//!   affinities, spread blocks; the score is the average of the applied scores.
//! * Selection: `limit` scored options (2 for batch, ⌈log2 n⌉ ≥ 2 for service,
//!   max(count, 100) with affinities or spreads), up to 3 options scoring ≤ 0 set aside,
//!   the best wins; failures come back as an `AllocMetric`.
//!
//! Pure: no clock, no global randomness (a [`rng::SplitMix64`] seeded by the caller).

pub mod cluster;
pub mod constraint;
pub mod rng;
mod stack;

#[cfg(test)]
mod tests;

pub use cluster::{
    AllocEntry, Ask, Candidates, Capacity, ClusterView, Dimension, NodeSet, NodeView, StaticPort, Taken, Usage,
    alloc_usage, usage_of_allocated,
};
pub use stack::{
    Algorithm, FILTER_DEVICES, FILTER_DISTINCT_HOSTS, FILTER_DRIVERS, FILTER_HOST_VOLUMES, GroupPlacement, GroupPlacer,
    PlaceConfig, Placement, SCORE_AFFINITY, SCORE_ANTI_AFFINITY, SCORE_BINPACK, SCORE_RESCHEDULE_PENALTY, SCORE_SPREAD,
    place_group,
};
