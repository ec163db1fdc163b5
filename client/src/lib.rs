//! The stead client: what runs on every node. It fingerprints the machine, registers the
//! node with the servers and heartbeats within the TTL they return, watches the
//! allocations the servers assign to it, runs each allocation's tasks in their lifecycle
//! order through drivers (`raw_exec`, `exec`, `docker`, `mock`), keeps their logs in
//! rotated files, applies the restart policy, and reports task states and events back.
//!
//! It talks to servers only through [`link::ServerLink`] (gRPC in production, see
//! `stead-rpc`; in memory in tests), never to the store. It must not depend on the store,
//! the scheduler or the server crate: only on `stead-model` for the records.
//!
//! Where to start reading:
//!
//! * [`client`]: [`Client::start`] and the loops (registration and heartbeats, the
//!   allocation watch, the runners, batched updates); [`ClientHandle`] for shutdown and
//!   logs.
//! * [`alloc_runner`] and [`task_runner`]: one allocation, one task; the pure cores they
//!   use are [`restart::decide_restart`] (the restart policy), [`events`] (Nomad's task
//!   events and state moves) and [`alloc_runner::decide_client_status`].
//! * [`lifecycle`]: the order of a group's tasks (prestart, main, poststart, poststop;
//!   sidecars; the stop order), as pure rules the alloc runner applies.
//! * [`driver`]: the [`driver::Driver`] trait, [`driver::raw_exec`] and [`driver::exec`]
//!   (through the [`executor`] process, which outlives the client; exec isolates the
//!   task), `driver::docker` and [`driver::mock`].
//! * [`fingerprint`] (the [`fingerprint::Host`] trait and the pure node assembly),
//!   [`env`](mod@env) (the `NOMAD_*` environment), [`allocdir`], [`logs`], [`state`] (what is kept
//!   on disk, written atomically) and [`config`].
//!
//! Time and randomness come in through [`clock::Clock`] and [`clock::Entropy`]; the
//! machine through [`fingerprint::Host`]. The mock driver path uses only tokio timers and
//! `std::fs`, so a client with the mock driver runs under the madsim simulator.

pub mod alloc_runner;
pub mod allocdir;
pub mod client;
pub mod clock;
pub mod config;
pub mod driver;
pub mod env;
pub mod events;
pub mod executor;
pub mod fingerprint;
pub mod lifecycle;
mod lifetime;
pub mod link;
pub mod logs;
pub mod restart;
mod shared;
pub mod state;
pub mod task_runner;
mod updater;

pub use client::{Client, ClientError, ClientHandle, Platform, ShutdownMode};
pub use config::{ClientConfig, DockerConfig, ExecutorCommand};
pub use logs::{LogError, LogFrame, LogKind, LogOrigin, LogRequest, LogStream};
