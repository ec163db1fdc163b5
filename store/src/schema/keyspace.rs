//! Where records and index entries live: a root prefix, areas under it, a subspace per
//! record kind, and the key encodings of record parts and index entries.

use std::fmt;

use bytes::Bytes;
use foundationdb_tuple::{Element, PackResult, Subspace, TuplePack, TupleUnpack};

/// A packed tuple (FoundationDB tuple layer): a primary key, a key prefix, or an index value.
///
/// Packed tuples concatenate: `Tuple::new(&("a", 1)) == Tuple::new(&"a").join(&Tuple::new(&1))`,
/// and a tuple's packing is a byte prefix of the packing of every tuple it is a prefix of,
/// which is what makes prefix scans work.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tuple(Bytes);

impl Tuple {
    /// Packs any tuple-layer value: `Tuple::new(&(namespace, id))`, `Tuple::new(&node_id)`.
    pub fn new<T: TuplePack>(t: &T) -> Tuple {
        Tuple(Bytes::from(foundationdb_tuple::pack(t)))
    }

    /// The empty tuple (a prefix matching everything).
    pub fn empty() -> Tuple {
        Tuple(Bytes::new())
    }

    /// A tuple from its packed bytes, checked to be well formed.
    pub fn from_packed(packed: impl Into<Bytes>) -> PackResult<Tuple> {
        let packed = packed.into();
        foundationdb_tuple::unpack::<Vec<Element<'_>>>(&packed)?;
        Ok(Tuple(packed))
    }

    pub fn packed(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Unpacks into a typed value: `pk.unpack::<(String, String)>()`.
    pub fn unpack<'de, T: TupleUnpack<'de>>(&'de self) -> PackResult<T> {
        foundationdb_tuple::unpack(&self.0)
    }

    pub fn elements(&self) -> Vec<Element<'static>> {
        foundationdb_tuple::unpack::<Vec<Element<'_>>>(&self.0)
            .map(|elements| elements.into_iter().map(Element::into_owned).collect())
            .unwrap_or_default()
    }

    /// This tuple followed by `other`.
    pub fn join(&self, other: &Tuple) -> Tuple {
        let mut out = Vec::with_capacity(self.0.len() + other.0.len());
        out.extend_from_slice(&self.0);
        out.extend_from_slice(&other.0);
        Tuple(Bytes::from(out))
    }

    /// Whether `self` is a tuple prefix of `other`.
    pub fn is_prefix_of(&self, other: &Tuple) -> bool {
        other.0.starts_with(&self.0)
    }

    fn from_elements(elements: &[Element<'_>]) -> Tuple {
        Tuple(Bytes::from(foundationdb_tuple::pack(&elements)))
    }
}

impl fmt::Debug for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `("default", "web", 3)`; bytes that are not a tuple show as escaped bytes.
impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match foundationdb_tuple::unpack::<Vec<Element<'_>>>(&self.0) {
            Ok(elements) => write_elements(f, &elements),
            Err(_) => write!(f, "{}", self.0.escape_ascii()),
        }
    }
}

fn write_elements(f: &mut fmt::Formatter<'_>, elements: &[Element<'_>]) -> fmt::Result {
    write!(f, "(")?;
    for (i, element) in elements.iter().enumerate() {
        if i > 0 {
            write!(f, ", ")?;
        }
        match element {
            Element::Nil => write!(f, "nil")?,
            Element::Bytes(b) => write!(f, "b\"{}\"", b.as_ref().escape_ascii())?,
            Element::String(s) => write!(f, "{s:?}")?,
            Element::Tuple(t) => write_elements(f, t)?,
            Element::Int(i) => write!(f, "{i}")?,
            Element::Float(x) => write!(f, "{x}")?,
            Element::Double(x) => write!(f, "{x}")?,
            Element::Bool(b) => write!(f, "{b}")?,
            Element::Versionstamp(v) => write!(f, "versionstamp({:02x?})", v.as_bytes())?,
            // Variants behind features of foundationdb-tuple (uuid, num-bigint) that another
            // crate in the build may turn on.
            #[allow(unreachable_patterns)]
            other => write!(f, "{other:?}")?,
        }
    }
    if elements.len() == 1 {
        write!(f, ",")?;
    }
    write!(f, ")")
}

/// A record kind: names the record subspace `(root, RECORDS, kind)` and the index subspace
/// `(root, INDEXES, kind)`. Ids are part of the stored keys: never renumber one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kind {
    pub id: u16,
    pub name: &'static str,
}

impl Kind {
    pub const fn new(id: u16, name: &'static str) -> Kind {
        Kind { id, name }
    }

    pub const JOB: Kind = Kind::new(1, "job");
    /// Job version history: primary key (namespace, job id, version).
    pub const JOB_VERSION: Kind = Kind::new(2, "job_version");
    pub const EVAL: Kind = Kind::new(3, "eval");
    pub const ALLOC: Kind = Kind::new(4, "alloc");
    pub const DEPLOYMENT: Kind = Kind::new(5, "deployment");
    pub const NODE: Kind = Kind::new(6, "node");
    pub const ACL_POLICY: Kind = Kind::new(7, "acl_policy");
    pub const ACL_TOKEN: Kind = Kind::new(8, "acl_token");
    pub const NAMESPACE: Kind = Kind::new(9, "namespace");
    pub const VARIABLE: Kind = Kind::new(10, "variable");
    pub const SERVICE_REGISTRATION: Kind = Kind::new(11, "service_registration");

    /// Every kind stead stores. Ids from 1000 up are left to tests.
    pub const ALL: &'static [Kind] = &[
        Kind::JOB,
        Kind::JOB_VERSION,
        Kind::EVAL,
        Kind::ALLOC,
        Kind::DEPLOYMENT,
        Kind::NODE,
        Kind::ACL_POLICY,
        Kind::ACL_TOKEN,
        Kind::NAMESPACE,
        Kind::VARIABLE,
        Kind::SERVICE_REGISTRATION,
    ];
}

/// A secondary index of one record kind. The id is part of the stored keys; the name is
/// for messages. Ids are per kind: `Index::new(1, "node")` of allocs and
/// `Index::new(1, "job")` of evals are different indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Index {
    pub id: u16,
    pub name: &'static str,
}

impl Index {
    pub const fn new(id: u16, name: &'static str) -> Index {
        Index { id, name }
    }
}

/// `Area::META` sub-area of the per-kind change stamps ([`Keyspace::changed_key`]).
const META_CHANGED: u16 = 1;

/// The top-level areas under the root prefix (as the record layer's small-integer areas).
/// Area ids are part of the stored keys: add new ones at the end of this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Area(pub u16);

impl Area {
    /// Store-wide metadata (format versions, "last changed" keys).
    pub const META: Area = Area(0);
    /// `(kind, primary key…, part)`: record data and versions.
    pub const RECORDS: Area = Area(1);
    /// `(kind, index, value…, (primary key…))`: secondary index entries, empty values.
    pub const INDEXES: Area = Area(2);
    /// The first id not used by this module: event logs, queues and other layers take
    /// their areas from here on and list them in docs/store.md.
    pub const FIRST_FREE: Area = Area(3);
}

/// Record part numbers, the last element of every record key (after the record layer's
/// `SplitHelper`: unsplit data at 0, split data at 1..=n, the version just before).
/// Negative parts sort first, so one range read of a record returns its versions, then
/// its data.
pub(crate) const PART_JOB_MODIFY: i64 = -3;
/// Written by earlier releases only: the create stamp now follows the modify stamp.
pub(crate) const PART_CREATE: i64 = -2;
pub(crate) const PART_MODIFY: i64 = -1;
pub(crate) const PART_UNSPLIT: i64 = 0;
pub(crate) const PART_FIRST_SPLIT: i64 = 1;

/// The tuple layer's type code of a nested tuple.
const NESTED: u8 = 0x05;

/// Whether a packed tuple holds only strings, byte strings and integers of up to eight
/// bytes: then its nested encoding is its own bytes (only nil elements are escaped inside a
/// nested tuple, and these elements encode the same at any depth).
fn nests_as_is(packed: &[u8]) -> bool {
    let mut i = 0;
    while i < packed.len() {
        match packed[i] {
            0x01 | 0x02 => {
                // A byte string or string: up to the 0x00 that is not followed by 0xff.
                i += 1;
                loop {
                    match packed.get(i) {
                        None => return false,
                        Some(0x00) if packed.get(i + 1) == Some(&0xff) => i += 2,
                        Some(0x00) => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
            }
            code @ 0x0c..=0x1c => i += 1 + usize::from(code.abs_diff(0x14)),
            _ => return false,
        }
    }
    i == packed.len()
}

/// The keys of one record: `(records(kind), pk…)` followed by a part number.
pub(crate) struct RecordKeys {
    base: Vec<u8>,
}

impl RecordKeys {
    pub(crate) fn part(&self, part: i64) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.base.len() + 9);
        key.extend_from_slice(&self.base);
        foundationdb_tuple::pack_into(&part, &mut key);
        key
    }

    /// The part number of one of this record's keys (no unpacking of the primary key).
    pub(crate) fn part_of(&self, key: &[u8]) -> Option<i64> {
        foundationdb_tuple::unpack::<i64>(key.strip_prefix(self.base.as_slice())?).ok()
    }

    /// `[begin, end)` of every part.
    pub(crate) fn range(&self) -> (Vec<u8>, Vec<u8>) {
        let mut begin = Vec::with_capacity(self.base.len() + 1);
        begin.extend_from_slice(&self.base);
        let mut end = begin.clone();
        begin.push(0x00);
        end.push(0xff);
        (begin, end)
    }
}

/// The root of stead's keys and the subspaces under it. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace {
    root: Subspace,
}

impl Default for Keyspace {
    /// Root `("st",)`: four bytes in front of every key, so a FoundationDB cluster can hold
    /// other data beside stead's.
    fn default() -> Keyspace {
        Keyspace::new(Subspace::from(&("st",)))
    }
}

impl Keyspace {
    pub fn new(root: Subspace) -> Keyspace {
        Keyspace { root }
    }

    pub fn root(&self) -> &Subspace {
        &self.root
    }

    /// The subspace of an area: `(root, area)`.
    pub fn area(&self, area: Area) -> Subspace {
        self.root.subspace(&area.0)
    }

    /// `(root, META, CHANGED, kind)` → the 10-byte versionstamp of the last commit that put
    /// or deleted a record of `kind`: the kind's table index (what Nomad's API sends as
    /// `X-Nomad-Index` for a table, deletes included) and the key a blocking query watches.
    pub fn changed_key(&self, kind: Kind) -> Vec<u8> {
        self.area(Area::META).pack(&(META_CHANGED, kind.id))
    }

    /// `(root, RECORDS, kind)`.
    pub fn records(&self, kind: Kind) -> Subspace {
        self.root.subspace(&(Area::RECORDS.0, kind.id))
    }

    /// `(root, INDEXES, kind, index)`.
    pub fn index(&self, kind: Kind, index: Index) -> Subspace {
        self.root.subspace(&(Area::INDEXES.0, kind.id, index.id))
    }

    /// The keys of one record.
    pub(crate) fn record_keys(&self, kind: Kind, pk: &Tuple) -> RecordKeys {
        let mut base = self.records(kind).into_bytes();
        base.extend_from_slice(pk.packed());
        RecordKeys { base }
    }

    /// The key of one part of a record.
    pub(crate) fn record_key(&self, kind: Kind, pk: &Tuple, part: i64) -> Vec<u8> {
        self.record_keys(kind, pk).part(part)
    }

    /// The key holding a record's ModifyIndex: `watch` it to learn that the record was
    /// written or deleted (every put sets it to a new versionstamp, a delete clears it).
    pub fn modify_version_key(&self, kind: Kind, pk: &Tuple) -> Vec<u8> {
        self.record_key(kind, pk, PART_MODIFY)
    }

    /// `[begin, end)` of every key under `(records(kind), prefix…)`.
    pub(crate) fn record_range(&self, kind: Kind, prefix: &Tuple) -> (Vec<u8>, Vec<u8>) {
        let mut begin = self.records(kind).into_bytes();
        begin.extend_from_slice(prefix.packed());
        let mut end = begin.clone();
        begin.push(0x00);
        end.push(0xff);
        (begin, end)
    }

    /// Splits a record key into its primary key and part.
    pub(crate) fn parse_record_key(&self, kind: Kind, key: &[u8]) -> Option<(Tuple, i64)> {
        let records = self.records(kind);
        let tail = key.strip_prefix(records.bytes())?;
        let elements = foundationdb_tuple::unpack::<Vec<Element<'_>>>(tail).ok()?;
        let part = elements.last()?.as_i64()?;
        let part_len = foundationdb_tuple::pack(&part).len();
        let pk = tail.get(..tail.len().checked_sub(part_len)?)?;
        Some((Tuple(Bytes::copy_from_slice(pk)), part))
    }

    /// The key of one index entry: `(index subspace, value…, (pk…))`.
    pub(crate) fn index_key(&self, kind: Kind, index: Index, value: &Tuple, pk: &Tuple) -> Vec<u8> {
        let sub = self.index(kind, index);
        let mut key = Vec::with_capacity(sub.bytes().len() + value.packed().len() + pk.packed().len() + 2);
        key.extend_from_slice(sub.bytes());
        key.extend_from_slice(value.packed());
        if nests_as_is(pk.packed()) {
            // A tuple of strings and integers nests as its own bytes between 0x05 and 0x00.
            key.push(NESTED);
            key.extend_from_slice(pk.packed());
            key.push(0x00);
        } else {
            let pk_elements = foundationdb_tuple::unpack::<Vec<Element<'_>>>(pk.packed()).unwrap_or_default();
            foundationdb_tuple::pack_into(&(Element::Tuple(pk_elements),), &mut key);
        }
        key
    }

    /// The primary key at the end of an index entry's key.
    pub(crate) fn parse_index_key(&self, kind: Kind, index: Index, key: &[u8]) -> Option<Tuple> {
        let subspace = self.index(kind, index);
        let tail = key.strip_prefix(subspace.bytes())?;
        let elements = foundationdb_tuple::unpack::<Vec<Element<'_>>>(tail).ok()?;
        match elements.last()? {
            Element::Tuple(pk) => Some(Tuple::from_elements(pk)),
            _ => None,
        }
    }

    /// `[begin, end)` of the index entries whose value starts with `value_prefix`.
    pub(crate) fn index_range(&self, kind: Kind, index: Index, value_prefix: &Tuple) -> (Vec<u8>, Vec<u8>) {
        let mut begin = self.index(kind, index).into_bytes();
        begin.extend_from_slice(value_prefix.packed());
        let mut end = begin.clone();
        begin.push(0x00);
        end.push(0xff);
        (begin, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_ids_are_unique() {
        let mut ids: Vec<u16> = Kind::ALL.iter().map(|k| k.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), Kind::ALL.len());
        assert!(ids.iter().all(|id| *id < 1000), "ids from 1000 up are left to tests");
    }

    #[test]
    fn record_keys_parse_back_and_sort_versions_before_data() {
        let ks = Keyspace::default();
        let pk = Tuple::new(&("default", "web-1"));
        for part in [PART_JOB_MODIFY, PART_CREATE, PART_MODIFY, PART_UNSPLIT, 1, 2, 300] {
            let key = ks.record_key(Kind::ALLOC, &pk, part);
            assert_eq!(ks.parse_record_key(Kind::ALLOC, &key), Some((pk.clone(), part)));
        }
        let keys: Vec<Vec<u8>> =
            [-3, -2, -1, 0, 1, 2, 300].iter().map(|p| ks.record_key(Kind::ALLOC, &pk, *p)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        let (begin, end) = ks.record_range(Kind::ALLOC, &pk);
        assert!(keys.iter().all(|k| begin <= *k && *k < end));
        // A longer id with the same beginning is outside the record's range.
        let other = ks.record_key(Kind::ALLOC, &Tuple::new(&("default", "web-10")), 0);
        assert!(!(begin <= other && other < end));
    }

    #[test]
    fn index_keys_parse_back_to_the_primary_key() {
        let ks = Keyspace::default();
        let index = Index::new(1, "node");
        let pk = Tuple::new(&("default", "a1"));
        let key = ks.index_key(Kind::ALLOC, index, &Tuple::new(&"node-1"), &pk);
        assert_eq!(ks.parse_index_key(Kind::ALLOC, index, &key), Some(pk));
        let (begin, end) = ks.index_range(Kind::ALLOC, index, &Tuple::new(&"node-1"));
        assert!(begin <= key && key < end);
        let (begin, end) = ks.index_range(Kind::ALLOC, index, &Tuple::new(&"node-10"));
        assert!(!(begin <= key && key < end));
    }

    #[test]
    fn index_keys_nest_primary_keys_exactly_as_the_tuple_layer_does() {
        let ks = Keyspace::default();
        let index = Index::new(1, "node");
        let pks = [
            Tuple::new(&("default", "a1")),
            Tuple::new(&("with\0nul", "x")),
            Tuple::new(&("ns", -70_000i64, 0i64, 1i64, i64::MAX, i64::MIN + 1)),
            Tuple::new(&(b"\x00\xff".as_slice(), "s")),
            Tuple::new(&(Element::Nil, "after nil")),
            Tuple::new(&(1.5f64, "double")),
        ];
        for pk in pks {
            let key = ks.index_key(Kind::ALLOC, index, &Tuple::new(&"v"), &pk);
            let mut want = ks.index(Kind::ALLOC, index).into_bytes();
            want.extend_from_slice(Tuple::new(&"v").packed());
            let elements = foundationdb_tuple::unpack::<Vec<Element<'_>>>(pk.packed()).unwrap();
            foundationdb_tuple::pack_into(&(Element::Tuple(elements),), &mut want);
            assert_eq!(key, want, "{pk}");
            assert_eq!(ks.parse_index_key(Kind::ALLOC, index, &key), Some(pk));
        }
    }

    #[test]
    fn tuples_display_as_their_elements() {
        assert_eq!(Tuple::new(&("default", "web", 3)).to_string(), "(\"default\", \"web\", 3)");
        assert_eq!(Tuple::new(&"x").to_string(), "(\"x\",)");
        assert_eq!(Tuple::new(&("a", 1)), Tuple::new(&"a").join(&Tuple::new(&1)));
    }
}
