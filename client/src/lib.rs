//! The stead client: what runs on every node. It fingerprints the machine, registers the
//! node with the servers and heartbeats within the TTL they return, watches the
//! allocations the servers assign to it, runs each allocation's tasks through drivers
//! (`raw_exec`, `mock`), keeps their logs in rotated files, applies the restart policy,
//! and reports task states and events back.
//!
//! It talks to servers only through [`link::ServerLink`] (gRPC in production, see
//! `stead-rpc`; in memory in tests), never to the store. It must not depend on the store,
//! the scheduler or the server crate.

pub mod link;
