//! Choosing nodes for allocations: feasibility, ranking, sampling, metrics.
