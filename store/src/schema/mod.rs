//! The keyspace: a subspace per record kind on the tuple layer, secondary indexes written in
//! the same transaction as their record, and typed access to records.
//!
//! # Keys
//!
//! Everything lives under one root prefix (`Keyspace::default()`: the tuple `("st",)`), so a
//! FoundationDB cluster can hold other data beside stead's. Under it, small-integer areas
//! (as in the FoundationDB record layer's store layout):
//!
//! ```text
//! (root, 0 META, …)                                  store-wide metadata; free for "last changed" keys
//! (root, 1 RECORDS, kind, pk…, part)  → bytes         a record: versions at parts -3..-1, data at 0 or 1..=n
//! (root, 2 INDEXES, kind, index, value…, (pk…)) → ''  a secondary index entry
//! (root, 3…)                                          free: event logs, queues (see `Area::FIRST_FREE`)
//! ```
//!
//! Record parts (after the record layer's `SplitHelper`):
//!
//! * `-1`: the versions part: ModifyIndex, the 10-byte versionstamp of the transaction
//!   that last wrote the record (set with `set_versionstamped_value`: a blind write, exact,
//!   known only at commit), followed by the 10-byte CreateIndex stamp unless the record
//!   was created by that same commit (then the part holds 10 bytes). One part instead of
//!   two saves a key per record created (measured: a fifth of the keys an allocation
//!   writes). An update reads it (serializably, as it reads the data) to carry the create
//!   stamp over. `-2`: a separate CreateIndex, as earlier releases wrote it: still read,
//!   and preferred. `-3`: JobModifyIndex (only if ever bumped), written only when the
//!   caller passes `JobModify::Bump`. A version is the stamp's 8-byte commit version as
//!   u64, equal to `CommitInfo::version` of that commit.
//! * `0`: the encoded record when it is at most 100,000 bytes (the store's value limit);
//!   otherwise parts `1..=n` of 100,000 bytes each. An update clears the parts of the old
//!   version that it does not overwrite (it read them), so a record that shrinks leaves
//!   nothing behind. Reads put the parts back together and check that none is missing.
//!   A record that encodes to more than `RECORD_BYTES_MAX` (2 MB, so its transaction stays
//!   far below FoundationDB's 10 MB) is refused with `SchemaError::RecordTooLarge`.
//!
//! Negative parts sort before data, so one range read of `(kind, pk…)` returns a whole record.
//!
//! Index entries end with the primary key as a nested tuple, so a scan by a value prefix
//! (e.g. allocs on one node, or evals of one `(namespace, job)`) yields primary keys. `put`
//! reads the record's current data (a serializable read of that record's keys only), removes
//! the index entries the old version had and the new one does not, and adds the new ones,
//! in the caller's transaction. Puts of different records never conflict with each other:
//! their reads are disjoint, and index entries of different records are different keys.
//!
//! # Encoding
//!
//! One format byte (`encoding::FORMAT_MSGPACK_NAMED` = 1), then MessagePack with named fields
//! (rmp-serde). Older records decode into newer structs (`#[serde(default)]` on added
//! fields) and newer records into older structs (unknown fields are ignored). Chosen by
//! measurement over CBOR and JSON: see docs/store.md "Record encoding".
//!
//! # Operations
//!
//! All take the caller's `&Transaction`, so they compose inside `Database::run`; they
//! return `SchemaError`, which implements `StoreError` (store errors inside it are retried).
//!
//! * `Keyspace::put(tx, &record, PutOptions)` → `PutOutcome::{Created, Updated}`
//! * `Keyspace::get::<R>(tx, &pk, ReadMode)` → `Option<R>` with versions filled in
//! * `Keyspace::get_versions::<R>(tx, &pk, ReadMode)` → `Option<Versions>`, no decoding
//! * `Keyspace::delete::<R>(tx, &pk)` → whether it existed; clears its index entries
//! * `Keyspace::list::<R>(tx, &pk_prefix, &PageOptions)` → `Page<R>`
//! * `Keyspace::scan_index::<R>(tx, index, &value_prefix, &PageOptions)` → `Page<Tuple>` of
//!   primary keys; `scan_index_records` also reads the records.
//! * `Keyspace::modify_version_key(kind, &pk)`: the key to `watch` for changes of one record.
//!
//! Pages hold at most `PageOptions::limit` items (bounded by `PAGE_LIMIT_MAX`) and a
//! `Continuation` when more may follow; passing it back reads on exactly where the page
//! stopped, in the same or a later transaction. A record read in the transaction that put
//! it fails with `accessed_unreadable` (its versions exist only at commit), as FoundationDB
//! behaves: use the value you wrote.
//!
//! # Implementing `Record` for a model type
//!
//! ```ignore
//! impl Record for Allocation {
//!     const KIND: Kind = Kind::ALLOC;
//!     fn primary_key(&self) -> Tuple { Tuple::new(&(self.namespace.as_str(), self.id.as_str())) }
//!     fn index_entries(&self) -> Vec<IndexEntry> {
//!         vec![
//!             IndexEntry::new(ALLOC_BY_NODE, Tuple::new(&self.node_id.as_str())),
//!             IndexEntry::new(ALLOC_BY_JOB, Tuple::new(&(self.namespace.as_str(), self.job_id.as_str()))),
//!         ]
//!     }
//!     fn set_versions(&mut self, v: &Versions) {
//!         self.create_index = v.create_index;
//!         self.modify_index = v.modify_index;
//!     }
//! }
//! pub const ALLOC_BY_NODE: Index = Index::new(1, "node");
//! pub const ALLOC_BY_JOB: Index = Index::new(2, "job");
//! ```
//!
//! * Fields added later carry `#[serde(default)]` (or are `Option`s); never
//!   `deny_unknown_fields`; never rename or retype a stored field.
//! * Index ids are per kind and, like kind ids, part of the stored keys: never renumber.
//! * A job: `put(tx, &job, PutOptions::default().job_modify(JobModify::Bump))` when the
//!   submission changes the job (Nomad bumps JobModifyIndex on a spec change, not on a
//!   status change), plain `put` otherwise; `set_versions` maps
//!   `job_modify_index` (the create version until a later bump) to `JobModifyIndex`.
//! * Job versions: kind `JOB_VERSION` with primary key `(namespace, job, version)`, listed
//!   newest first by `list(tx, &Tuple::new(&(ns, job)), &PageOptions::new(n).reverse(true))`:
//!   the primary key itself is the "versions by job" index.
//! * Evals and deployments by job, allocs by node and by job: index entries as above.
//! * Freshly placed allocations (IDs generated outside the retry loop) may use
//!   `PutOptions::insert_new()` to skip the read; after `maybe_committed`, check first.

pub mod encoding;
mod error;
mod keyspace;
mod record;

pub use error::SchemaError;
pub use keyspace::{Area, Index, Keyspace, Kind, Tuple};
pub use record::{
    Continuation, IndexEntry, JobModify, PAGE_LIMIT_MAX, PART_BYTES_MAX, Page, PageOptions, PreparedInsert, PutMode,
    PutOptions, PutOutcome, RECORD_BYTES_MAX, Record, Versions,
};
