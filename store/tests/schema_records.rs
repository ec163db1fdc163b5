//! Typed records on the embedded engine: indexes, paging, split records, versions from
//! commit versions, encoding evolution, and conflicts.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use stead_store::embedded::open_in_memory;
use stead_store::schema::{
    Area, Continuation, Index, IndexEntry, JobModify, Keyspace, Kind, PAGE_LIMIT_MAX, Page, PageOptions, PutOptions,
    PutOutcome, RECORD_BYTES_MAX, Record, SchemaError, Tuple, Versions,
};
use stead_store::{Database, ErrorCode, RangeOption, ReadMode, Transaction};

const TEST_ALLOC: Kind = Kind::new(1000, "test_alloc");
const BY_NODE: Index = Index::new(1, "node");
const BY_JOB: Index = Index::new(2, "job");

/// A stand-in for an allocation: found by node and by (namespace, job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Alloc {
    namespace: String,
    id: String,
    node: String,
    job: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    create_index: u64,
    #[serde(default)]
    modify_index: u64,
    #[serde(default)]
    job_modify_index: u64,
}

impl Alloc {
    fn new(id: &str, node: &str, job: &str) -> Alloc {
        Alloc {
            namespace: "default".to_string(),
            id: id.to_string(),
            node: node.to_string(),
            job: job.to_string(),
            payload: String::new(),
            create_index: 0,
            modify_index: 0,
            job_modify_index: 0,
        }
    }

    fn pk(&self) -> Tuple {
        self.primary_key()
    }
}

impl Record for Alloc {
    const KIND: Kind = TEST_ALLOC;

    fn primary_key(&self) -> Tuple {
        Tuple::new(&(self.namespace.as_str(), self.id.as_str()))
    }

    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![
            IndexEntry::new(BY_NODE, Tuple::new(&self.node.as_str())),
            IndexEntry::new(BY_JOB, Tuple::new(&(self.namespace.as_str(), self.job.as_str()))),
        ]
    }

    fn set_versions(&mut self, versions: &Versions) {
        self.create_index = versions.create_index;
        self.modify_index = versions.modify_index;
        self.job_modify_index = versions.job_modify_index;
    }
}

fn pk(id: &str) -> Tuple {
    Tuple::new(&("default", id))
}

async fn put(db: &Database, ks: &Keyspace, record: &Alloc, options: PutOptions) -> (PutOutcome, u64) {
    let committed =
        db.run_committed(|tx, _| async move { ks.put(&tx, record, options).await }).await.expect("put commits");
    (committed.value, u64::try_from(committed.commit.version).unwrap())
}

async fn get<R: Record>(db: &Database, ks: &Keyspace, key: &Tuple) -> Option<R> {
    db.run(|tx, _| async move { ks.get::<R>(&tx, key, ReadMode::Serializable).await }).await.expect("get")
}

async fn delete(db: &Database, ks: &Keyspace, key: &Tuple) -> bool {
    db.run(|tx, _| async move { ks.delete::<Alloc>(&tx, key).await }).await.expect("delete")
}

async fn ids_by(db: &Database, ks: &Keyspace, index: Index, value: &Tuple) -> Vec<String> {
    let page = db
        .run(|tx, _| async move { ks.scan_index_records::<Alloc>(&tx, index, value, &PageOptions::default()).await })
        .await
        .expect("scan");
    assert!(page.next.is_none());
    page.items.into_iter().map(|a| a.id).collect()
}

/// Every key under a subspace, raw.
async fn raw_keys(db: &Database, begin: Vec<u8>, end: Vec<u8>) -> Vec<Vec<u8>> {
    let tx = db.create_transaction().unwrap();
    let kvs = tx.get_range_all(&RangeOption::new(begin, end), ReadMode::Snapshot).await.unwrap();
    kvs.into_iter().map(|kv| kv.key.to_vec()).collect()
}

async fn index_entry_count(db: &Database, ks: &Keyspace) -> usize {
    let (begin, end) = ks.area(Area::INDEXES).subspace(&TEST_ALLOC.id).range();
    raw_keys(db, begin, end).await.len()
}

#[tokio::test]
async fn indexes_follow_updates_and_deletes() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    put(&db, &ks, &Alloc::new("a1", "n1", "j1"), PutOptions::default()).await;
    put(&db, &ks, &Alloc::new("a2", "n1", "j2"), PutOptions::default()).await;
    put(&db, &ks, &Alloc::new("a3", "n2", "j1"), PutOptions::default()).await;
    assert_eq!(ids_by(&db, &ks, BY_NODE, &Tuple::new(&"n1")).await, ["a1", "a2"]);
    assert_eq!(ids_by(&db, &ks, BY_JOB, &Tuple::new(&("default", "j1"))).await, ["a1", "a3"]);
    // A prefix of the index value: every job of the namespace.
    assert_eq!(ids_by(&db, &ks, BY_JOB, &Tuple::new(&"default")).await, ["a1", "a3", "a2"]);
    assert_eq!(index_entry_count(&db, &ks).await, 6);

    // a1 moves to n2 and to job j2: its old entries go, its new ones come.
    let (outcome, _) = put(&db, &ks, &Alloc::new("a1", "n2", "j2"), PutOptions::default()).await;
    assert_eq!(outcome, PutOutcome::Updated);
    assert_eq!(ids_by(&db, &ks, BY_NODE, &Tuple::new(&"n1")).await, ["a2"]);
    assert_eq!(ids_by(&db, &ks, BY_NODE, &Tuple::new(&"n2")).await, ["a1", "a3"]);
    assert_eq!(ids_by(&db, &ks, BY_JOB, &Tuple::new(&("default", "j1"))).await, ["a3"]);
    assert_eq!(ids_by(&db, &ks, BY_JOB, &Tuple::new(&("default", "j2"))).await, ["a1", "a2"]);
    assert_eq!(index_entry_count(&db, &ks).await, 6);

    assert!(delete(&db, &ks, &pk("a3")).await);
    assert!(!delete(&db, &ks, &pk("a3")).await, "a second delete finds nothing");
    assert_eq!(get::<Alloc>(&db, &ks, &pk("a3")).await, None);
    assert_eq!(ids_by(&db, &ks, BY_NODE, &Tuple::new(&"n2")).await, ["a1"]);
    assert_eq!(ids_by(&db, &ks, BY_JOB, &Tuple::new(&("default", "j1"))).await, Vec::<String>::new());
    assert_eq!(index_entry_count(&db, &ks).await, 4);
    let (begin, end) = ks.records(TEST_ALLOC).subspace(&("default", "a3")).range();
    assert!(raw_keys(&db, begin, end).await.is_empty(), "a delete leaves no part or version behind");
}

/// Reads every page, one transaction per page, and returns the ids in order.
async fn list_all(db: &Database, ks: &Keyspace, prefix: &Tuple, limit: usize, reverse: bool) -> Vec<String> {
    let mut ids = Vec::new();
    let mut continuation: Option<Continuation> = None;
    for _ in 0..10_000 {
        let options = PageOptions::new(limit).after(continuation.clone()).reverse(reverse);
        let page: Page<Alloc> = db
            .run(|tx, _| {
                let options = options.clone();
                async move { ks.list::<Alloc>(&tx, prefix, &options).await }
            })
            .await
            .expect("list");
        assert!(page.items.len() <= limit);
        ids.extend(page.items.into_iter().map(|a| a.id));
        match page.next {
            Some(next) => continuation = Some(next),
            None => return ids,
        }
    }
    panic!("paging did not end");
}

async fn scan_all(
    db: &Database,
    ks: &Keyspace,
    index: Index,
    value: &Tuple,
    limit: usize,
    reverse: bool,
) -> Vec<Tuple> {
    let mut keys = Vec::new();
    let mut continuation: Option<Continuation> = None;
    for _ in 0..10_000 {
        let options = PageOptions::new(limit).after(continuation.clone()).reverse(reverse);
        let page = db
            .run(|tx, _| {
                let options = options.clone();
                async move { ks.scan_index::<Alloc>(&tx, index, value, &options).await }
            })
            .await
            .expect("scan");
        assert!(page.items.len() <= limit);
        keys.extend(page.items);
        match page.next {
            Some(next) => continuation = Some(next),
            None => return keys,
        }
    }
    panic!("paging did not end");
}

#[tokio::test]
async fn paging_returns_every_record_exactly_once_in_order() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let mut expected = Vec::new();
    for i in 0..120 {
        let mut alloc = Alloc::new(&format!("a{i:03}"), &format!("n{}", i % 3), "j");
        // A few split records, so pages end in the middle of a record's parts.
        if i % 29 == 0 {
            alloc.payload = "x".repeat(250_000);
        }
        put(&db, &ks, &alloc, PutOptions::default()).await;
        expected.push(alloc.id);
    }
    // Another namespace, which a namespace listing must not see.
    let mut other = Alloc::new("a000", "n0", "j");
    other.namespace = "other".to_string();
    put(&db, &ks, &other, PutOptions::default()).await;

    let default_ns = Tuple::new(&"default");
    for limit in [1, 2, 7, 120, 500] {
        assert_eq!(list_all(&db, &ks, &default_ns, limit, false).await, expected, "limit {limit}");
        let mut reversed = list_all(&db, &ks, &default_ns, limit, true).await;
        reversed.reverse();
        assert_eq!(reversed, expected, "limit {limit}, reverse");
    }
    assert_eq!(list_all(&db, &ks, &Tuple::empty(), 9, false).await.len(), 121);

    let on_n1: Vec<Tuple> = (0..120).filter(|i| i % 3 == 1).map(|i| pk(&format!("a{i:03}"))).collect();
    for limit in [1, 6, 40, 41] {
        assert_eq!(scan_all(&db, &ks, BY_NODE, &Tuple::new(&"n1"), limit, false).await, on_n1, "limit {limit}");
        let mut reversed = scan_all(&db, &ks, BY_NODE, &Tuple::new(&"n1"), limit, true).await;
        reversed.reverse();
        assert_eq!(reversed, on_n1, "limit {limit}, reverse");
    }
    let all: BTreeSet<Tuple> = scan_all(&db, &ks, BY_NODE, &Tuple::empty(), 13, false).await.into_iter().collect();
    assert_eq!(all.len(), 121);
}

#[tokio::test]
async fn a_continuation_from_another_listing_is_refused() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    for i in 0..3 {
        put(&db, &ks, &Alloc::new(&format!("a{i}"), "n1", "j"), PutOptions::default()).await;
    }
    let tx = db.create_transaction().unwrap();
    let page = ks.list::<Alloc>(&tx, &Tuple::empty(), &PageOptions::new(1)).await.unwrap();
    let next = page.next.expect("more records");
    let error = ks
        .scan_index::<Alloc>(&tx, BY_NODE, &Tuple::new(&"n1"), &PageOptions::new(1).after(Some(next)))
        .await
        .unwrap_err();
    assert!(matches!(error, SchemaError::BadContinuation { kind: "test_alloc" }), "{error}");
}

#[tokio::test]
async fn a_350_kb_record_round_trips_and_a_shrink_clears_its_parts() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let mut alloc = Alloc::new("big", "n1", "j1");
    alloc.payload = (0..350_000u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    put(&db, &ks, &alloc, PutOptions::default()).await;
    let (begin, end) = ks.records(TEST_ALLOC).subspace(&("default", "big")).range();
    let parts = |keys: Vec<Vec<u8>>| -> Vec<i64> {
        keys.iter().map(|k| ks.records(TEST_ALLOC).unpack::<(String, String, i64)>(k).unwrap().2).collect()
    };
    // The versions part (modify and create stamps) and four 100,000-byte data parts.
    assert_eq!(parts(raw_keys(&db, begin.clone(), end.clone()).await), [-1, 1, 2, 3, 4]);
    let read: Alloc = get(&db, &ks, &pk("big")).await.unwrap();
    assert_eq!(read.payload, alloc.payload);

    alloc.payload = "small now".to_string();
    put(&db, &ks, &alloc, PutOptions::default()).await;
    assert_eq!(parts(raw_keys(&db, begin.clone(), end.clone()).await), [-1, 0]);
    let read: Alloc = get(&db, &ks, &pk("big")).await.unwrap();
    assert_eq!(read.payload, "small now");

    // And back up to a split record, from an unsplit one.
    alloc.payload = "y".repeat(150_000);
    put(&db, &ks, &alloc, PutOptions::default()).await;
    assert_eq!(parts(raw_keys(&db, begin, end).await), [-1, 1, 2]);
    let read: Alloc = get(&db, &ks, &pk("big")).await.unwrap();
    assert_eq!(read.payload, alloc.payload);
}

#[tokio::test]
async fn a_record_too_large_for_a_transaction_is_an_error_not_a_panic() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let mut alloc = Alloc::new("huge", "n1", "j1");
    alloc.payload = "z".repeat(RECORD_BYTES_MAX + 1);
    let tx = db.create_transaction().unwrap();
    let error = ks.put(&tx, &alloc, PutOptions::default()).await.unwrap_err();
    assert!(matches!(error, SchemaError::RecordTooLarge { kind: "test_alloc", .. }), "{error}");
    assert!(error.to_string().contains("(\"default\", \"huge\")"), "{error}");

    let mut alloc = Alloc::new("long-node", "n1", "j1");
    alloc.node = "n".repeat(20_000);
    let error = ks.put(&tx, &alloc, PutOptions::default()).await.unwrap_err();
    assert!(matches!(error, SchemaError::KeyTooLarge { kind: "test_alloc", .. }), "{error}");
}

#[tokio::test]
async fn modify_index_is_the_commit_version_and_create_index_stays_put() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let mut alloc = Alloc::new("a1", "n1", "j1");
    let (outcome, v1) = put(&db, &ks, &alloc, PutOptions::default()).await;
    assert_eq!(outcome, PutOutcome::Created);
    let read: Alloc = get(&db, &ks, &pk("a1")).await.unwrap();
    // Never bumped: the job-modify version is the create version.
    assert_eq!((read.create_index, read.modify_index, read.job_modify_index), (v1, v1, v1));

    alloc.node = "n2".to_string();
    let (outcome, v2) = put(&db, &ks, &alloc, PutOptions::default()).await;
    assert_eq!(outcome, PutOutcome::Updated);
    assert!(v2 > v1);
    let read: Alloc = get(&db, &ks, &pk("a1")).await.unwrap();
    assert_eq!((read.create_index, read.modify_index, read.job_modify_index), (v1, v2, v1));

    let (_, v3) = put(&db, &ks, &alloc, PutOptions::default().job_modify(JobModify::Bump)).await;
    let (_, v4) = put(&db, &ks, &alloc, PutOptions::default()).await;
    let read: Alloc = get(&db, &ks, &pk("a1")).await.unwrap();
    assert_eq!((read.create_index, read.modify_index, read.job_modify_index), (v1, v4, v3));

    let key = pk("a1");
    let versions = db
        .run(|tx, _| {
            let (ks, key) = (&ks, &key);
            async move { ks.get_versions::<Alloc>(&tx, key, ReadMode::Snapshot).await }
        })
        .await
        .unwrap();
    assert_eq!(versions, Some(Versions { create_index: v1, modify_index: v4, job_modify_index: v3 }));

    // Delete and create again: a new record, with a new CreateIndex.
    assert!(delete(&db, &ks, &pk("a1")).await);
    let (outcome, v5) = put(&db, &ks, &alloc, PutOptions::default()).await;
    assert_eq!(outcome, PutOutcome::Created);
    let read: Alloc = get(&db, &ks, &pk("a1")).await.unwrap();
    assert_eq!((read.create_index, read.modify_index, read.job_modify_index), (v5, v5, v5));
}

#[tokio::test]
async fn insert_new_writes_without_reading_and_sets_both_versions() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let alloc = Alloc::new("fresh", "n1", "j1");
    let (outcome, v) = put(&db, &ks, &alloc, PutOptions::insert_new().job_modify(JobModify::Bump)).await;
    assert_eq!(outcome, PutOutcome::Created);
    let read: Alloc = get(&db, &ks, &alloc.pk()).await.unwrap();
    assert_eq!((read.create_index, read.modify_index, read.job_modify_index), (v, v, v));
    // A later bump moves the job-modify version alone.
    let (_, bumped) = put(&db, &ks, &alloc, PutOptions::default().job_modify(JobModify::Bump)).await;
    let read: Alloc = get(&db, &ks, &alloc.pk()).await.unwrap();
    assert_eq!((read.create_index, read.modify_index, read.job_modify_index), (v, bumped, bumped));
    assert_eq!(ids_by(&db, &ks, BY_NODE, &Tuple::new(&"n1")).await, ["fresh"]);

    // A prepared insert writes the same, in every attempt it is written in.
    let prepared = ks.prepare_insert(&Alloc::new("prepared", "n1", "j1")).unwrap();
    let attempt = db.create_transaction().unwrap();
    ks.write_prepared(&attempt, &prepared);
    drop(attempt);
    let tx = db.create_transaction().unwrap();
    ks.write_prepared(&tx, &prepared);
    let committed = u64::try_from(tx.commit().await.unwrap().version).unwrap();
    let read: Alloc = get(&db, &ks, &pk("prepared")).await.unwrap();
    assert_eq!((read.create_index, read.modify_index, read.job_modify_index), (committed, committed, committed));
    assert_eq!(ids_by(&db, &ks, BY_NODE, &Tuple::new(&"n1")).await, ["fresh", "prepared"]);

    // No read means no read conflict: a concurrent update of the same record that commits
    // first does not stop it.
    let blind = db.create_transaction().unwrap();
    let update = db.create_transaction().unwrap();
    ks.put(&update, &alloc, PutOptions::default()).await.unwrap();
    ks.put(&blind, &Alloc::new("fresh2", "n1", "j1"), PutOptions::insert_new()).await.unwrap();
    update.commit().await.unwrap();
    blind.commit().await.unwrap();
}

/// The first release's record: no `desired` field, no nested `resources`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AllocV1 {
    namespace: String,
    id: String,
    node: String,
    job: String,
}

/// A later release added fields, with defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AllocV2 {
    namespace: String,
    id: String,
    node: String,
    job: String,
    #[serde(default = "default_desired")]
    desired: String,
    #[serde(default)]
    resources: Option<Resources>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Resources {
    cpu: u32,
    memory_mb: u32,
}

fn default_desired() -> String {
    "run".to_string()
}

macro_rules! alloc_record {
    ($t:ty) => {
        impl Record for $t {
            const KIND: Kind = TEST_ALLOC;
            fn primary_key(&self) -> Tuple {
                Tuple::new(&(self.namespace.as_str(), self.id.as_str()))
            }
            fn index_entries(&self) -> Vec<IndexEntry> {
                vec![IndexEntry::new(BY_NODE, Tuple::new(&self.node.as_str()))]
            }
        }
    };
}
alloc_record!(AllocV1);
alloc_record!(AllocV2);

#[tokio::test]
async fn an_older_structs_record_decodes_into_a_newer_struct_and_back() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let v1 = AllocV1 { namespace: "default".into(), id: "a1".into(), node: "n1".into(), job: "j1".into() };
    db.run(|tx, _| {
        let (ks, v1) = (&ks, &v1);
        async move { ks.put(&tx, v1, PutOptions::default()).await }
    })
    .await
    .unwrap();

    let read: AllocV2 = get(&db, &ks, &pk("a1")).await.expect("an old record is readable by the new struct");
    assert_eq!(
        read,
        AllocV2 {
            namespace: "default".into(),
            id: "a1".into(),
            node: "n1".into(),
            job: "j1".into(),
            desired: "run".into(),
            resources: None,
            tags: vec![],
        }
    );

    // The new release writes the new fields (and moves the node); the old release still
    // reads the record, ignoring what it does not know, and can update it.
    let v2 = AllocV2 {
        node: "n2".into(),
        desired: "stop".into(),
        resources: Some(Resources { cpu: 500, memory_mb: 256 }),
        tags: vec!["canary".into()],
        ..read
    };
    db.run(|tx, _| {
        let (ks, v2) = (&ks, &v2);
        async move { ks.put(&tx, v2, PutOptions::default()).await }
    })
    .await
    .unwrap();
    let old_view: AllocV1 = get(&db, &ks, &pk("a1")).await.expect("a new record is readable by the old struct");
    assert_eq!(old_view.node, "n2");
    let new_view: AllocV2 = get(&db, &ks, &pk("a1")).await.unwrap();
    assert_eq!(new_view, v2);

    // An old-release update (decoding the newer stored record for its index entries) keeps
    // the indexes right.
    let moved = AllocV1 { node: "n3".into(), ..old_view };
    db.run(|tx, _| {
        let (ks, moved) = (&ks, &moved);
        async move { ks.put(&tx, moved, PutOptions::default()).await }
    })
    .await
    .unwrap();
    assert_eq!(ids_by(&db, &ks, BY_NODE, &Tuple::new(&"n2")).await, Vec::<String>::new());
    assert_eq!(ids_by(&db, &ks, BY_NODE, &Tuple::new(&"n3")).await, ["a1"]);
}

#[tokio::test]
async fn concurrent_puts_of_distinct_records_do_not_conflict() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    put(&db, &ks, &Alloc::new("a2", "n0", "j1"), PutOptions::default()).await;
    // Both on the same node and job: their index values are equal, their entries distinct.
    let tx1 = db.create_transaction().unwrap();
    let tx2 = db.create_transaction().unwrap();
    ks.put(&tx1, &Alloc::new("a1", "n1", "j1"), PutOptions::default()).await.unwrap();
    ks.put(&tx2, &Alloc::new("a2", "n1", "j1"), PutOptions::default()).await.unwrap();
    tx1.commit().await.expect("tx1 commits");
    tx2.commit().await.expect("tx2 commits: it read nothing tx1 wrote");
    assert_eq!(ids_by(&db, &ks, BY_NODE, &Tuple::new(&"n1")).await, ["a1", "a2"]);
    assert_eq!(ids_by(&db, &ks, BY_NODE, &Tuple::new(&"n0")).await, Vec::<String>::new());
}

#[tokio::test]
async fn concurrent_updates_of_one_record_conflict() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    put(&db, &ks, &Alloc::new("a1", "n0", "j1"), PutOptions::default()).await;
    let tx1 = db.create_transaction().unwrap();
    let tx2 = db.create_transaction().unwrap();
    ks.put(&tx1, &Alloc::new("a1", "n1", "j1"), PutOptions::default()).await.unwrap();
    ks.put(&tx2, &Alloc::new("a1", "n2", "j1"), PutOptions::default()).await.unwrap();
    tx1.commit().await.unwrap();
    // Had tx2 committed, it would have removed the n0 entry (already gone) and left tx1's n1
    // entry stale.
    let error = tx2.commit().await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::NotCommitted);
    assert_eq!(ids_by(&db, &ks, BY_NODE, &Tuple::new(&"n1")).await, ["a1"]);
}

#[tokio::test]
async fn a_record_written_twice_in_one_transaction_keeps_its_indexes_right() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let (_, v) = db
        .run_committed(|tx, _| {
            let ks = &ks;
            async move {
                ks.put(&tx, &Alloc::new("a1", "n1", "j1"), PutOptions::default()).await?;
                ks.put(&tx, &Alloc::new("a1", "n2", "j1"), PutOptions::default()).await
            }
        })
        .await
        .map(|c| (c.value, c.commit.version))
        .unwrap();
    let read: Alloc = get(&db, &ks, &pk("a1")).await.unwrap();
    assert_eq!((read.node.as_str(), read.create_index, read.modify_index), ("n2", v as u64, v as u64));
    assert_eq!(ids_by(&db, &ks, BY_NODE, &Tuple::new(&"n1")).await, Vec::<String>::new());
    assert_eq!(ids_by(&db, &ks, BY_NODE, &Tuple::new(&"n2")).await, ["a1"]);
}

#[tokio::test]
async fn reading_a_record_in_the_transaction_that_put_it_is_unreadable() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let tx: Transaction = db.create_transaction().unwrap();
    ks.put(&tx, &Alloc::new("a1", "n1", "j1"), PutOptions::default()).await.unwrap();
    let error = ks.get::<Alloc>(&tx, &pk("a1"), ReadMode::Serializable).await.unwrap_err();
    assert_eq!(error.store_error().map(|e| e.code()), Some(ErrorCode::AccessedUnreadable), "{error}");
}

#[tokio::test]
async fn a_record_that_does_not_decode_is_an_error_naming_its_kind_and_key() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let key = ks.records(TEST_ALLOC).pack(&("default", "bad", 0i64));
    db.run(|tx, _| {
        let key = &key;
        async move {
            tx.set(key, &[1, 0xc1, 0xc1]);
            Ok::<_, stead_store::Error>(())
        }
    })
    .await
    .unwrap();
    let tx = db.create_transaction().unwrap();
    let error = ks.get::<Alloc>(&tx, &pk("bad"), ReadMode::Snapshot).await.unwrap_err();
    assert!(matches!(error, SchemaError::Decode { kind: "test_alloc", .. }), "{error}");
    assert!(error.to_string().starts_with("cannot decode test_alloc (\"default\", \"bad\"): "), "{error}");
    let error = ks.list::<Alloc>(&tx, &Tuple::empty(), &PageOptions::new(PAGE_LIMIT_MAX)).await.unwrap_err();
    assert!(matches!(error, SchemaError::Decode { .. }), "{error}");
}

#[tokio::test]
async fn a_watch_on_the_modify_version_key_fires_on_put_and_on_delete() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let alloc = Alloc::new("a1", "n1", "j1");
    let key = ks.modify_version_key(TEST_ALLOC, &alloc.pk());
    for change in ["put", "update", "delete"] {
        let tx = db.create_transaction().unwrap();
        tx.get(&key).await.unwrap();
        let watch = tx.watch(&key);
        tx.commit().await.unwrap();
        if change == "delete" {
            assert!(delete(&db, &ks, &alloc.pk()).await);
        } else {
            put(&db, &ks, &alloc, PutOptions::default()).await;
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), watch)
            .await
            .unwrap_or_else(|_| panic!("the watch fires on {change}"))
            .unwrap();
    }
    let tx = db.create_transaction().unwrap();
    assert_eq!(ks.get_versions::<Alloc>(&tx, &alloc.pk(), ReadMode::Snapshot).await.unwrap(), None);
}

#[tokio::test]
async fn a_record_with_its_create_stamp_apart_reads_and_keeps_it_through_updates() {
    // Earlier releases wrote the create stamp in its own part (-2) and a 10-byte modify
    // part; this release keeps the create stamp in the modify part after the modify stamp.
    let db = open_in_memory();
    let ks = Keyspace::default();
    let alloc = Alloc::new("old", "n1", "j1");
    put(&db, &ks, &alloc, PutOptions::default()).await;
    let stamp = |version: i64| stead_store::Versionstamp::new(version, 0).0.to_vec();
    let tx = db.create_transaction().unwrap();
    tx.set(&ks.modify_version_key(TEST_ALLOC, &pk("old")), &stamp(500));
    tx.set(&ks.records(TEST_ALLOC).pack(&("default", "old", -2i64)), &stamp(7));
    tx.commit().await.unwrap();
    let read: Alloc = get(&db, &ks, &pk("old")).await.unwrap();
    assert_eq!((read.create_index, read.modify_index), (7, 500));

    let (_, v) = put(&db, &ks, &read, PutOptions::default()).await;
    let read: Alloc = get(&db, &ks, &pk("old")).await.unwrap();
    assert_eq!((read.create_index, read.modify_index), (7, v), "the update kept the create stamp");
    let tx = db.create_transaction().unwrap();
    let modify = tx.get(&ks.modify_version_key(TEST_ALLOC, &pk("old"))).await.unwrap().unwrap();
    assert_eq!(modify.len(), 20, "modify stamp then create stamp");
}
