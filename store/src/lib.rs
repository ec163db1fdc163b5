//! stead's store: a transactional ordered key-value store with FoundationDB's semantics.
//!
//! Everything stead knows lives here. Callers see one API (`Database`, `Transaction`,
//! `Database::run`) shaped after foundationdb-rs; behind it sits an engine:
//!
//! * `embedded` (always built): MVCC snapshots in memory, a FoundationDB-style resolver,
//!   group commit, durability through fjall (or an in-memory twin in simulation);
//! * `fdb` (feature `fdb`, never under `cfg(madsim)`): a FoundationDB cluster;
//! * `fault` wraps either and injects FoundationDB's failure modes from a seed.
//!
//! Start reading at `api.rs`, then `embedded/mod.rs`. This crate is the only one that
//! names FoundationDB types; it must not depend on any other stead crate.

pub mod api;
pub mod embedded;
pub mod error;
pub mod fault;
#[cfg(all(feature = "fdb", not(madsim)))]
pub mod fdb;
pub mod mutation;
pub mod records;
pub mod schema;
pub mod types;

pub use api::{Committed, Database, DatabaseEngine, RunOptions, Transaction, TransactionEngine, Watch};
pub use error::{Error, ErrorCode, OpenError, Result, StoreError};
pub use foundationdb_tuple as tuple;
/// The records (`stead-model`), re-exported so store users need one dependency.
pub use stead_model as model;
pub use stead_model::diff;
pub use types::*;
