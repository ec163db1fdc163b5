//! Test fixtures shared by stead's crates: node and job builders (`fixtures`), the store
//! conformance suite (`conformance`), a Docker daemon and image for tests (`docker`),
//! and the binaries `stead-bench` (benchmarks) and `crash-writer` (the kill -9 test's
//! child). Test-only: no production crate depends on this one.

pub mod conformance;
pub mod crash;
#[cfg(not(madsim))]
pub mod docker;
pub mod fixtures;

#[doc(hidden)]
pub use stead_store::Database as __Database;
