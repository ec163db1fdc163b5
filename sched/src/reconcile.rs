//! Desired versus existing allocations of one job.
