//! The `Record` trait and typed operations on records and their indexes.

use std::collections::BTreeSet;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::encoding;
use super::error::SchemaError;
use super::keyspace::{
    Index, Keyspace, Kind, PART_CREATE, PART_FIRST_SPLIT, PART_JOB_MODIFY, PART_MODIFY, PART_UNSPLIT, RecordKeys, Tuple,
};
use crate::api::Transaction;
use crate::types::{KEY_SIZE_MAX, KeyValue, RangeOption, ReadMode, VALUE_SIZE_MAX, key_after};

/// The largest encoded record `put` accepts. A record is written (and its old version read)
/// in one transaction; at 2 MB the write stays a fifth of FoundationDB's 10 MB transaction
/// limit, so a transaction can still carry the record's index entries and a few other
/// writes. Larger content belongs outside one record.
pub const RECORD_BYTES_MAX: usize = 2_000_000;

/// Bytes per stored part: the store's value limit. A record that encodes to at most this
/// many bytes is stored unsplit in one part.
pub const PART_BYTES_MAX: usize = VALUE_SIZE_MAX;

/// Records (or index entries) per page at most, whatever limit the caller asks for: a page
/// must be read well inside a transaction's 5-second life.
pub const PAGE_LIMIT_MAX: usize = 10_000;

/// A kind of stored record. See the module documentation for how a model type implements it.
pub trait Record: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The subspace of this kind's records and indexes.
    const KIND: Kind;

    /// The record's identity, e.g. `Tuple::new(&(namespace, id))`. Records of one kind
    /// should use primary keys of one shape (same number and types of elements), so that
    /// prefix listings are meaningful. It must not change over the life of a record.
    fn primary_key(&self) -> Tuple;

    /// The secondary index entries this version of the record has. Written and removed in
    /// the same transaction as the record.
    fn index_entries(&self) -> Vec<IndexEntry> {
        Vec::new()
    }

    /// Receives the record's versions on every read (`get`, `list`, index scans), so it can
    /// fill `CreateIndex`, `ModifyIndex`, `JobModifyIndex`. Whatever the record holds in
    /// those fields when written is stored but overwritten here.
    fn set_versions(&mut self, versions: &Versions) {
        let _ = versions;
    }
}

/// One secondary index entry: the index and the value the record is found under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexEntry {
    pub index: Index,
    pub value: Tuple,
}

impl IndexEntry {
    pub fn new(index: Index, value: Tuple) -> IndexEntry {
        IndexEntry { index, value }
    }
}

/// A record's versions: commit versions of the transactions that wrote it (Nomad's indexes).
/// Transactions committed in one batch share a commit version; every reader sees a batch
/// whole, so "changed after index N" remains exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Versions {
    /// The commit version of the put that created the record.
    pub create_index: u64,
    /// The commit version of the last put.
    pub modify_index: u64,
    /// The commit version of the last put with `JobModify::Bump` after the one that created
    /// the record; `create_index` when there was none (a record created with a bump has no
    /// stamp of its own for it: it would equal the create stamp).
    pub job_modify_index: u64,
}

/// Whether `put` reads the record's current version first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PutMode {
    /// Read the current version (a serializable read of the record's data, so a concurrent
    /// writer of the same record conflicts), remove its stale index entries, keep its
    /// CreateIndex.
    #[default]
    Upsert,
    /// The caller guarantees the key is new (an ID generated outside the retry loop, and
    /// checked after `maybe_committed`): no read, no read conflict, no clears; CreateIndex
    /// is set to this commit. Writing the same record again (a retry that did commit) is
    /// harmless, but over a different existing record it leaves that record's index entries
    /// behind, and its data parts if it was split differently (later reads then fail as
    /// corrupt): never use this for updates.
    InsertNew,
}

/// Whether this put counts as a change of the job (Nomad's `JobModifyIndex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JobModify {
    /// Leave the job-modify version as it is (None for a record never bumped).
    #[default]
    Keep,
    /// Set the job-modify version to this commit's version.
    Bump,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PutOptions {
    pub mode: PutMode,
    pub job_modify: JobModify,
}

impl PutOptions {
    pub fn insert_new() -> PutOptions {
        PutOptions { mode: PutMode::InsertNew, ..PutOptions::default() }
    }

    pub fn job_modify(mut self, job_modify: JobModify) -> PutOptions {
        self.job_modify = job_modify;
        self
    }
}

/// A new record encoded with all its keys (see [`Keyspace::prepare_insert`]); cheap to
/// write again: the writes share its bytes.
#[derive(Debug, Clone)]
pub struct PreparedInsert {
    /// The kind's change stamp key ([`Keyspace::changed_key`]).
    changed: Bytes,
    /// (key, value) of each data part.
    parts: Vec<(Bytes, Bytes)>,
    /// The versions part, written with this commit's stamp.
    modify: Bytes,
    index: Vec<Bytes>,
    /// The whole record in the store's encoding (the parts are slices of it).
    encoded: Bytes,
}

impl PreparedInsert {
    /// Bytes of keys and values the record writes.
    pub fn size(&self) -> usize {
        self.parts.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
            + self.modify.len()
            + self.changed.len()
            + 20
            + self.index.iter().map(Bytes::len).sum::<usize>()
    }

    /// The record in the store's encoding ([`encoding::decode`] reads it back): what an
    /// event about the record carries, without encoding it again.
    pub fn encoded(&self) -> &Bytes {
        &self.encoded
    }
}

/// What `put` found (always `Created` in `PutMode::InsertNew`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    Updated,
}

/// Where a paged read goes on: opaque bytes (a key inside the range read), valid only for
/// the same listing or scan. `as_bytes`/`from_bytes` let an API hand it out as a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Continuation(Bytes);

impl Continuation {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn from_bytes(bytes: impl Into<Bytes>) -> Continuation {
        Continuation(bytes.into())
    }
}

/// How to read one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageOptions {
    /// Items per page, at least 1 and at most `PAGE_LIMIT_MAX`.
    pub limit: usize,
    /// Where the previous page stopped; None for the first page.
    pub continuation: Option<Continuation>,
    /// Descending key order.
    pub reverse: bool,
    pub read_mode: ReadMode,
}

impl PageOptions {
    pub fn new(limit: usize) -> PageOptions {
        PageOptions { limit, continuation: None, reverse: false, read_mode: ReadMode::Serializable }
    }

    pub fn after(mut self, continuation: Option<Continuation>) -> PageOptions {
        self.continuation = continuation;
        self
    }

    pub fn reverse(mut self, reverse: bool) -> PageOptions {
        self.reverse = reverse;
        self
    }

    pub fn read_mode(mut self, read_mode: ReadMode) -> PageOptions {
        self.read_mode = read_mode;
        self
    }

    fn limit_bounded(&self) -> usize {
        self.limit.clamp(1, PAGE_LIMIT_MAX)
    }
}

impl Default for PageOptions {
    fn default() -> PageOptions {
        PageOptions::new(PAGE_LIMIT_MAX)
    }
}

/// One page of a listing or index scan; `next` is None once the range is exhausted.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Continuation>,
}

/// The 14-byte `set_versionstamped_value` parameter: a 10-byte placeholder at offset 0.
const STAMP_TEMPLATE: [u8; 14] = [0; 14];

/// What a put writes in a record's versions part (`PART_MODIFY`): this commit's stamp,
/// then the create stamp unless the record is created by this commit.
enum ModifyValue {
    Created,
    CreatedAt([u8; 10]),
    /// The record was put earlier in the same transaction, which wrote the part.
    AlreadyWritten,
}

/// The stored encoding of `record`, within the record size limit.
fn encode_checked<R: Record>(kind: Kind, pk: &Tuple, record: &R) -> Result<Vec<u8>, SchemaError> {
    let encoded = encoding::encode(record).map_err(|reason| SchemaError::Encode {
        kind: kind.name,
        key: pk.to_string(),
        reason,
    })?;
    if encoded.len() > RECORD_BYTES_MAX {
        return Err(SchemaError::RecordTooLarge {
            kind: kind.name,
            key: pk.to_string(),
            size: encoded.len(),
            max: RECORD_BYTES_MAX,
        });
    }
    Ok(encoded)
}

/// Writes an encoded record: unsplit at part 0, or in 100,000-byte parts from part 1.
fn write_parts(tx: &Transaction, keys: &RecordKeys, encoded: Vec<u8>) {
    if encoded.len() <= PART_BYTES_MAX {
        tx.set_owned(keys.part(PART_UNSPLIT), encoded);
    } else {
        for (i, chunk) in encoded.chunks(PART_BYTES_MAX).enumerate() {
            tx.set(&keys.part(PART_FIRST_SPLIT + i as i64), chunk);
        }
    }
}

impl Keyspace {
    /// Writes `record` with its index entries and versions, in `tx`. Reading the record back
    /// in the same transaction fails with `accessed_unreadable` (its versions are known only
    /// at commit), as in FoundationDB; writing it again in the same transaction works.
    pub async fn put<R: Record>(
        &self,
        tx: &Transaction,
        record: &R,
        options: PutOptions,
    ) -> Result<PutOutcome, SchemaError> {
        // A new record (its ID made outside the retry loop): no read, no old entries.
        if options.mode == PutMode::InsertNew {
            let prepared = self.prepare_insert(record)?;
            self.write_prepared(tx, &prepared);
            return Ok(PutOutcome::Created);
        }
        let kind = R::KIND;
        let pk = record.primary_key();
        let encoded = encode_checked(kind, &pk, record)?;
        let keys = self.record_keys(kind, &pk);
        let parts_count = encoded.len().div_ceil(PART_BYTES_MAX);
        check_key_size(kind, &pk, &keys.part(PART_FIRST_SPLIT + parts_count as i64))?;

        let new_entries: BTreeSet<IndexEntry> = record.index_entries().into_iter().collect();
        let (old_entries, old_parts, outcome) = match self.read_data::<R>(tx, &pk).await? {
            None => (BTreeSet::new(), Vec::new(), PutOutcome::Created),
            Some((old, parts)) => (old.index_entries().into_iter().collect(), parts, PutOutcome::Updated),
        };
        let modify_value = match outcome {
            PutOutcome::Created => ModifyValue::Created,
            PutOutcome::Updated => self.modify_value_of_update(kind, tx, &pk, &keys).await?,
        };
        // Every key is built and checked before the first write.
        let clears: Vec<Vec<u8>> = old_entries
            .difference(&new_entries)
            .map(|entry| self.index_key(kind, entry.index, &entry.value, &pk))
            .collect();
        let sets: Vec<Vec<u8>> = new_entries
            .difference(&old_entries)
            .map(|entry| self.index_key(kind, entry.index, &entry.value, &pk))
            .collect();
        for key in &sets {
            check_key_size(kind, &pk, key)?;
        }

        // The old version's parts that the new one does not overwrite are cleared, one by
        // one: the read above found exactly which exist (point clears cost the embedded
        // engine far less than a range clear: 85k against 37k puts/s).
        let new_parts = if encoded.len() <= PART_BYTES_MAX {
            PART_UNSPLIT..=PART_UNSPLIT
        } else {
            PART_FIRST_SPLIT..=parts_count as i64
        };
        for part in old_parts.iter().filter(|part| !new_parts.contains(part)) {
            tx.clear(&keys.part(*part));
        }
        write_parts(tx, &keys, encoded);
        match modify_value {
            ModifyValue::Created => tx.set_versionstamped_value(&keys.part(PART_MODIFY), &STAMP_TEMPLATE),
            ModifyValue::CreatedAt(create) => {
                let mut template = [0u8; 24];
                template[10..20].copy_from_slice(&create);
                tx.set_versionstamped_value(&keys.part(PART_MODIFY), &template);
            }
            // Put earlier in this transaction: that put's stamp, this commit, stands.
            ModifyValue::AlreadyWritten => {}
        }
        // A record created by this put takes its create version as job-modify version.
        if options.job_modify == JobModify::Bump && outcome == PutOutcome::Updated {
            tx.set_versionstamped_value(&keys.part(PART_JOB_MODIFY), &STAMP_TEMPLATE);
        }
        for key in &clears {
            tx.clear(key);
        }
        for key in sets {
            tx.set_owned(key, Bytes::new());
        }
        tx.set_versionstamped_value(&self.changed_key(kind), &STAMP_TEMPLATE);
        Ok(outcome)
    }

    /// Encodes and keys a new record once, for [`write_prepared`](Self::write_prepared)
    /// to write in any number of attempts of a transaction: what `put` with
    /// `PutMode::InsertNew` writes (a bump of the job-modify version included: a created
    /// record's job-modify version is its create version), without encoding it again
    /// when a conflict starts the transaction over.
    pub fn prepare_insert<R: Record>(&self, record: &R) -> Result<PreparedInsert, SchemaError> {
        let kind = R::KIND;
        let pk = record.primary_key();
        let encoded = encode_checked(kind, &pk, record)?;
        let keys = self.record_keys(kind, &pk);
        self.prepared(kind, &pk, &keys, encoded, record.index_entries())
    }

    /// Writes a prepared new record in `tx` (see [`prepare_insert`](Self::prepare_insert)).
    pub fn write_prepared(&self, tx: &Transaction, prepared: &PreparedInsert) {
        for (key, value) in &prepared.parts {
            tx.set_owned(key.clone(), value.clone());
        }
        // Ten bytes: created by this very commit.
        tx.set_versionstamped_value(&prepared.modify, &STAMP_TEMPLATE);
        for key in &prepared.index {
            tx.set_owned(key.clone(), Bytes::new());
        }
        tx.set_versionstamped_value(&prepared.changed, &STAMP_TEMPLATE);
    }

    /// The commit version that last put or deleted a record of `kind` (0 if none did).
    pub async fn changed_version(&self, tx: &Transaction, kind: Kind, mode: ReadMode) -> Result<u64, SchemaError> {
        let Some(stamp) = tx.get_with(&self.changed_key(kind), mode).await? else {
            return Ok(0);
        };
        let corrupt =
            |reason: String| SchemaError::Corrupt { kind: kind.name, key: "(change stamp)".to_owned(), reason };
        let bytes: [u8; 8] = stamp
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| corrupt(format!("{} bytes, not a versionstamp", stamp.len())))?;
        u64::try_from(i64::from_be_bytes(bytes)).map_err(|_| corrupt("a negative version".to_owned()))
    }

    fn prepared(
        &self,
        kind: Kind,
        pk: &Tuple,
        keys: &RecordKeys,
        encoded: Vec<u8>,
        entries: Vec<IndexEntry>,
    ) -> Result<PreparedInsert, SchemaError> {
        let parts_count = encoded.len().div_ceil(PART_BYTES_MAX);
        check_key_size(kind, pk, &keys.part(PART_FIRST_SPLIT + parts_count as i64))?;
        let mut index = Vec::with_capacity(entries.len());
        for entry in entries {
            let key = self.index_key(kind, entry.index, &entry.value, pk);
            check_key_size(kind, pk, &key)?;
            index.push(Bytes::from(key));
        }
        let encoded = Bytes::from(encoded);
        let parts = if encoded.len() <= PART_BYTES_MAX {
            vec![(Bytes::from(keys.part(PART_UNSPLIT)), encoded.clone())]
        } else {
            (0..parts_count)
                .map(|i| {
                    let end = ((i + 1) * PART_BYTES_MAX).min(encoded.len());
                    (Bytes::from(keys.part(PART_FIRST_SPLIT + i as i64)), encoded.slice(i * PART_BYTES_MAX..end))
                })
                .collect()
        };
        Ok(PreparedInsert {
            changed: Bytes::from(self.changed_key(kind)),
            parts,
            modify: Bytes::from(keys.part(PART_MODIFY)),
            index,
            encoded,
        })
    }

    /// The versions part an update writes: this commit's stamp followed by the record's
    /// create stamp (read serializably, as the data is).
    async fn modify_value_of_update(
        &self,
        kind: Kind,
        tx: &Transaction,
        pk: &Tuple,
        keys: &RecordKeys,
    ) -> Result<ModifyValue, SchemaError> {
        let corrupt = |reason: String| SchemaError::Corrupt { kind: kind.name, key: pk.to_string(), reason };
        let old = match tx.get(&keys.part(PART_MODIFY)).await {
            Ok(old) => old,
            Err(e) if e.code() == crate::error::ErrorCode::AccessedUnreadable => {
                return Ok(ModifyValue::AlreadyWritten);
            }
            Err(e) => return Err(e.into()),
        };
        let stamp = |bytes: &[u8]| -> [u8; 10] { bytes.try_into().expect("ten bytes") };
        match old.as_deref() {
            Some(v) if v.len() == 20 => Ok(ModifyValue::CreatedAt(stamp(&v[10..]))),
            Some(v) if v.len() == 10 => match tx.get(&keys.part(PART_CREATE)).await? {
                // Written by a release that kept the create stamp apart.
                Some(c) if c.len() == 10 => Ok(ModifyValue::CreatedAt(stamp(&c))),
                _ => Ok(ModifyValue::CreatedAt(stamp(v))),
            },
            Some(v) => Err(corrupt(format!("version part holds {} bytes, not one or two versionstamps", v.len()))),
            None => Err(corrupt("the record has data but no modify version".to_string())),
        }
    }

    /// Reads one record with its versions, or None.
    pub async fn get<R: Record>(&self, tx: &Transaction, pk: &Tuple, mode: ReadMode) -> Result<Option<R>, SchemaError> {
        let keys = self.record_keys(R::KIND, pk);
        let (begin, end) = keys.range();
        let kvs = tx.get_range_all(&RangeOption::new(begin, end), mode).await?;
        let mut parts = Vec::with_capacity(kvs.len());
        for kv in kvs {
            parts.push((part_of(R::KIND, &keys, &kv.key)?, kv.value));
        }
        self.assemble(pk, parts)
    }

    /// Reads only a record's versions (a few small keys, no decoding): for `-check-index`
    /// and blocking queries on one record. None if the record does not exist.
    pub async fn get_versions<R: Record>(
        &self,
        tx: &Transaction,
        pk: &Tuple,
        mode: ReadMode,
    ) -> Result<Option<Versions>, SchemaError> {
        let keys = self.record_keys(R::KIND, pk);
        let (begin, end) = (keys.part(PART_JOB_MODIFY), keys.part(PART_UNSPLIT));
        let kvs = tx.get_range_all(&RangeOption::new(begin, end), mode).await?;
        let mut stamps = Stamps::default();
        for kv in kvs {
            stamps.take(R::KIND, pk, part_of(R::KIND, &keys, &kv.key)?, &kv.value)?;
        }
        match stamps.modify {
            None => Ok(None),
            Some(_) => stamps.versions(R::KIND, pk).map(Some),
        }
    }

    /// Deletes a record and its index entries; false if there was none. Reads the record
    /// (serializably) to find its index entries.
    pub async fn delete<R: Record>(&self, tx: &Transaction, pk: &Tuple) -> Result<bool, SchemaError> {
        let kind = R::KIND;
        let Some((old, parts)) = self.read_data::<R>(tx, pk).await? else {
            return Ok(false);
        };
        for entry in old.index_entries() {
            tx.clear(&self.index_key(kind, entry.index, &entry.value, pk));
        }
        let keys = self.record_keys(kind, pk);
        for part in [PART_JOB_MODIFY, PART_CREATE, PART_MODIFY].into_iter().chain(parts) {
            tx.clear(&keys.part(part));
        }
        tx.set_versionstamped_value(&self.changed_key(kind), &STAMP_TEMPLATE);
        Ok(true)
    }

    /// One page of the records whose primary key starts with `prefix` (the empty tuple for
    /// all), in key order.
    pub async fn list<R: Record>(
        &self,
        tx: &Transaction,
        prefix: &Tuple,
        page: &PageOptions,
    ) -> Result<Page<R>, SchemaError> {
        let kind = R::KIND;
        let (mut begin, mut end) = self.record_range(kind, prefix);
        apply_continuation(kind, page, &mut begin, &mut end)?;
        let (mut begin, mut end) = (Bytes::from(begin), Bytes::from(end));
        let limit = page.limit_bounded();
        let mut items = Vec::new();
        // The record being gathered: its primary key and the parts seen so far.
        let mut current: Option<(Tuple, Vec<(i64, Bytes)>)> = None;
        loop {
            // About three keys per record (versions and data); a split record takes more
            // pages, which the loop reads until the record's last part.
            let raw_limit = (limit - items.len()) * 3 + 2;
            let range = RangeOption::new(begin.clone(), end.clone()).limit(raw_limit).reverse(page.reverse);
            let result = tx.get_range(&range, page.read_mode).await?;
            let Some(last) = result.key_values.last() else {
                break;
            };
            if page.reverse {
                end = last.key.clone();
            } else {
                begin = key_after(&last.key);
            }
            for KeyValue { key, value } in result.key_values {
                let (pk, part) = self.parse_part(kind, &key)?;
                if current.as_ref().is_some_and(|(current_pk, _)| *current_pk != pk) {
                    let (done_pk, parts) = current.take().expect("checked above");
                    items.extend(self.assemble::<R>(&done_pk, parts)?);
                    if items.len() == limit {
                        let start = self.record_range(kind, &pk);
                        let next = if page.reverse { start.1 } else { start.0 };
                        return Ok(Page { items, next: Some(Continuation(Bytes::from(next))) });
                    }
                }
                current.get_or_insert_with(|| (pk, Vec::new())).1.push((part, value));
            }
            if !result.more {
                break;
            }
        }
        if let Some((pk, parts)) = current {
            items.extend(self.assemble::<R>(&pk, parts)?);
        }
        Ok(Page { items, next: None })
    }

    /// One page of the primary keys found under `index` with a value starting with
    /// `value_prefix`, in (value, primary key) order.
    pub async fn scan_index<R: Record>(
        &self,
        tx: &Transaction,
        index: Index,
        value_prefix: &Tuple,
        page: &PageOptions,
    ) -> Result<Page<Tuple>, SchemaError> {
        let kind = R::KIND;
        let (mut begin, mut end) = self.index_range(kind, index, value_prefix);
        apply_continuation(kind, page, &mut begin, &mut end)?;
        let limit = page.limit_bounded();
        let range = RangeOption::new(begin, end).limit(limit + 1).reverse(page.reverse);
        let kvs = tx.get_range_all(&range, page.read_mode).await?;
        let next =
            kvs.get(limit).map(|kv| Continuation(if page.reverse { key_after(&kv.key) } else { kv.key.clone() }));
        let mut items = Vec::with_capacity(kvs.len().min(limit));
        for kv in kvs.iter().take(limit) {
            let pk = self.parse_index_key(kind, index, &kv.key).ok_or_else(|| SchemaError::Corrupt {
                kind: kind.name,
                key: kv.key.escape_ascii().to_string(),
                reason: format!("not an entry of index {}", index.name),
            })?;
            items.push(pk);
        }
        Ok(Page { items, next })
    }

    /// `scan_index`, then the records it found (read concurrently, in the same mode).
    pub async fn scan_index_records<R: Record>(
        &self,
        tx: &Transaction,
        index: Index,
        value_prefix: &Tuple,
        page: &PageOptions,
    ) -> Result<Page<R>, SchemaError> {
        let keys = self.scan_index::<R>(tx, index, value_prefix, page).await?;
        let reads = keys.items.iter().map(|pk| self.get::<R>(tx, pk, page.read_mode));
        let records = futures::future::try_join_all(reads).await?;
        let mut items = Vec::with_capacity(records.len());
        for (pk, record) in keys.items.iter().zip(records) {
            let record = record.ok_or_else(|| SchemaError::Corrupt {
                kind: R::KIND.name,
                key: pk.to_string(),
                reason: format!("index {} has an entry for a record that does not exist", index.name),
            })?;
            items.push(record);
        }
        Ok(Page { items, next: keys.next })
    }

    /// The current version of a record's data, decoded, without versions, and the numbers
    /// of its data parts (a serializable
    /// read of its data parts only: versionstamped keys written earlier in the same
    /// transaction are unreadable, and writers of other records never conflict with it).
    async fn read_data<R: Record>(&self, tx: &Transaction, pk: &Tuple) -> Result<Option<(R, Vec<i64>)>, SchemaError> {
        let kind = R::KIND;
        let keys = self.record_keys(kind, pk);
        let (begin, end) = (keys.part(PART_UNSPLIT), keys.range().1);
        let kvs = tx.get_range_all(&RangeOption::new(begin, end), ReadMode::Serializable).await?;
        if kvs.is_empty() {
            return Ok(None);
        }
        let mut parts = Vec::with_capacity(kvs.len());
        for kv in kvs {
            parts.push((part_of(kind, &keys, &kv.key)?, kv.value));
        }
        let numbers = parts.iter().map(|(part, _)| *part).collect();
        let bytes = join_parts(kind, pk, parts)?;
        Ok(Some((decode_record::<R>(pk, &bytes)?, numbers)))
    }

    fn parse_part(&self, kind: Kind, key: &[u8]) -> Result<(Tuple, i64), SchemaError> {
        self.parse_record_key(kind, key).ok_or_else(|| SchemaError::Corrupt {
            kind: kind.name,
            key: key.escape_ascii().to_string(),
            reason: "not a record key (primary key tuple, part number)".to_string(),
        })
    }

    /// A record from all its parts (any order): None if it has no data.
    fn assemble<R: Record>(&self, pk: &Tuple, parts: Vec<(i64, Bytes)>) -> Result<Option<R>, SchemaError> {
        let kind = R::KIND;
        let mut stamps = Stamps::default();
        let mut data = Vec::with_capacity(parts.len());
        for (part, value) in parts {
            if part >= PART_UNSPLIT {
                data.push((part, value));
            } else {
                stamps.take(kind, pk, part, &value)?;
            }
        }
        if data.is_empty() {
            return Ok(None);
        }
        let bytes = join_parts(kind, pk, data)?;
        let mut record = decode_record::<R>(pk, &bytes)?;
        record.set_versions(&stamps.versions(kind, pk)?);
        Ok(Some(record))
    }
}

/// The part number of a key of the record whose keys are `keys`.
fn part_of(kind: Kind, keys: &RecordKeys, key: &[u8]) -> Result<i64, SchemaError> {
    keys.part_of(key).ok_or_else(|| SchemaError::Corrupt {
        kind: kind.name,
        key: key.escape_ascii().to_string(),
        reason: "not a key of this record (primary key tuple, part number)".to_string(),
    })
}

fn decode_record<R: Record>(pk: &Tuple, bytes: &[u8]) -> Result<R, SchemaError> {
    let kind = R::KIND;
    let record: R = encoding::decode(bytes).map_err(|reason| SchemaError::Decode {
        kind: kind.name,
        key: pk.to_string(),
        reason,
    })?;
    let decoded_pk = record.primary_key();
    if decoded_pk != *pk {
        return Err(SchemaError::Corrupt {
            kind: kind.name,
            key: pk.to_string(),
            reason: format!("the stored record has primary key {decoded_pk}"),
        });
    }
    Ok(record)
}

/// The data parts of a record joined: part 0 alone, or parts 1..=n with none missing.
fn join_parts(kind: Kind, pk: &Tuple, mut parts: Vec<(i64, Bytes)>) -> Result<Bytes, SchemaError> {
    let corrupt = |reason: String| SchemaError::Corrupt { kind: kind.name, key: pk.to_string(), reason };
    parts.sort_by_key(|(part, _)| *part);
    if let [(PART_UNSPLIT, value)] = parts.as_slice() {
        return Ok(value.clone());
    }
    let mut out = Vec::with_capacity(parts.iter().map(|(_, v)| v.len()).sum());
    for (i, (part, value)) in parts.iter().enumerate() {
        if *part != PART_FIRST_SPLIT + i as i64 {
            let found: Vec<i64> = parts.iter().map(|(p, _)| *p).collect();
            return Err(corrupt(format!("data parts {found:?} are neither [0] nor 1..=n")));
        }
        out.extend_from_slice(value);
    }
    Ok(Bytes::from(out))
}

#[derive(Default)]
struct Stamps {
    /// From a separate create part (written by earlier releases).
    create: Option<u64>,
    /// From the modify part: its second stamp, or the modify stamp itself when it is alone.
    create_in_modify: Option<u64>,
    modify: Option<u64>,
    job_modify: Option<u64>,
}

impl Stamps {
    fn take(&mut self, kind: Kind, pk: &Tuple, part: i64, value: &[u8]) -> Result<(), SchemaError> {
        let corrupt = |reason: String| SchemaError::Corrupt { kind: kind.name, key: pk.to_string(), reason };
        let version_of = |stamp: &[u8]| -> Result<u64, SchemaError> {
            let v = i64::from_be_bytes(stamp[..8].try_into().expect("a stamp has eight version bytes"));
            u64::try_from(v).map_err(|_| corrupt(format!("negative version {v}")))
        };
        match (part, value.len()) {
            // The modify stamp, then the create stamp unless the record was created then.
            (PART_MODIFY, 10) => {
                self.modify = Some(version_of(value)?);
                self.create_in_modify = self.create_in_modify.or(self.modify);
            }
            (PART_MODIFY, 20) => {
                self.modify = Some(version_of(&value[..10])?);
                self.create_in_modify = Some(version_of(&value[10..])?);
            }
            // Kept apart by an earlier release; it wins over an implied one.
            (PART_CREATE, 10) => self.create = Some(version_of(value)?),
            (PART_JOB_MODIFY, 10) => self.job_modify = Some(version_of(value)?),
            (PART_MODIFY | PART_CREATE | PART_JOB_MODIFY, n) => {
                return Err(corrupt(format!("version part {part} holds {n} bytes, not a versionstamp")));
            }
            (other, _) => return Err(corrupt(format!("unknown part {other}"))),
        }
        Ok(())
    }

    fn versions(&self, kind: Kind, pk: &Tuple) -> Result<Versions, SchemaError> {
        let missing = |what: &str| SchemaError::Corrupt {
            kind: kind.name,
            key: pk.to_string(),
            reason: format!("the record has no {what} version"),
        };
        let create_index = self.create.or(self.create_in_modify).ok_or_else(|| missing("create"))?;
        Ok(Versions {
            create_index,
            modify_index: self.modify.ok_or_else(|| missing("modify"))?,
            job_modify_index: self.job_modify.unwrap_or(create_index),
        })
    }
}

fn check_key_size(kind: Kind, pk: &Tuple, key: &[u8]) -> Result<(), SchemaError> {
    if key.len() > KEY_SIZE_MAX {
        return Err(SchemaError::KeyTooLarge {
            kind: kind.name,
            key: pk.to_string(),
            size: key.len(),
            max: KEY_SIZE_MAX,
        });
    }
    Ok(())
}

/// Narrows `[begin, end)` to what is left after `page.continuation`.
fn apply_continuation(
    kind: Kind,
    page: &PageOptions,
    begin: &mut Vec<u8>,
    end: &mut Vec<u8>,
) -> Result<(), SchemaError> {
    let Some(continuation) = &page.continuation else {
        return Ok(());
    };
    let at = continuation.as_bytes();
    if at < begin.as_slice() || at > end.as_slice() {
        return Err(SchemaError::BadContinuation { kind: kind.name });
    }
    if page.reverse {
        *end = at.to_vec();
    } else {
        *begin = at.to_vec();
    }
    Ok(())
}
