//! What a stead server does over the store, without any transport: the evaluation queue,
//! the scheduler workers and their plan commits, and the write paths that create
//! evaluations (job register and stop, node upsert, client allocation updates).
//!
//! The HTTP and gRPC layers (`stead-agent`), the simulator (`stead-sim`) and the benchmark
//! (`stead-testkit`) all call this crate, so they run the same code. It depends on the store
//! and the pure scheduler core; tokio only through madsim's rename; time and randomness
//! come in through [`Env`], so the simulator controls them.
//!
//! Start at [`worker`]: claim ([`queue`]) → snapshot ([`snapshot`]) → `stead_sched::schedule`
//! → commit ([`commit`]). [`keys`] lists where everything lives in the store.

pub mod acl;
pub mod allocator;
pub mod allocs;
pub mod clients;
pub mod commit;
pub mod dry_run;
pub mod duties;
pub mod env;
pub mod error;
pub mod events;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod nodes;
pub mod periodic;
pub mod queue;
pub mod reads;
pub mod snapshot;
pub mod usage;
pub mod worker;

pub use env::{Clock, Entropy, Env, ManualClock, SeededEntropy, SystemClock};
pub use error::ServerError;
pub use keys::Store;
