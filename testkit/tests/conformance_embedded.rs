//! The conformance suite on the embedded engine, in memory. Runs in the normal build and,
//! unchanged, in the madsim build (where `#[tokio::test]` is a simulation).

stead_testkit::conformance_tests!(|| async { stead_store::embedded::open_in_memory() });
