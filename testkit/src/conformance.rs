//! The store conformance suite: one set of checks every engine passes, written against the
//! public API only. `conformance_tests!` turns it into one test per check for an engine;
//! the embedded engine runs it in every test run (normal and madsim builds), FoundationDB
//! through `scripts/test-fdb.sh`.
//!
//! Each check works under its own key prefix and clears it first, so engines that keep
//! data between tests (a FoundationDB cluster) give the same answers as fresh ones.

use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use stead_store::fault::{self, FaultConfig};
use stead_store::tuple::{self, Versionstamp as TupleVersionstamp};
use stead_store::{
    CommitInfo, ConflictRangeType, Database, Error, ErrorCode, KEY_SIZE_MAX, MutationType, RangeOption, ReadMode,
    TRANSACTION_LIFETIME, VALUE_SIZE_MAX, Versionstamp,
};

/// Generates one `#[tokio::test]` per check. `$open` is an expression that evaluates to a
/// closure returning a future of a fresh `Database`.
#[macro_export]
macro_rules! conformance_tests {
    ($open:expr) => {
        $crate::conformance_tests!(@each $open;
            read_your_writes_covers_sets_clears_ranges_and_atomics,
            range_reads_page_with_limits_and_reverse,
            concurrent_increments_are_never_lost,
            bank_transfers_under_conflicts_keep_the_total_exact,
            write_skew_is_prevented,
            phantom_insert_into_a_read_range_conflicts,
            snapshot_reads_add_no_conflict,
            blind_writes_add_no_conflict,
            explicit_read_conflict_range_conflicts,
            explicit_write_conflict_range_conflicts,
            clear_range_conflicts_with_a_reader_of_a_cleared_key,
            versionstamps_are_unique_and_ordered_by_commit,
            watch_fires_when_the_key_changes,
            watch_fails_when_its_transaction_fails,
            watch_fails_when_its_transaction_is_dropped,
            atomic_operations_follow_foundationdb,
            limits_give_the_foundationdb_errors,
            transaction_older_than_five_seconds_is_too_old,
            fresh_transaction_commits_after_the_store_sat_idle,
            run_retries_conflicts_and_returns_the_callers_own_errors,
            a_transaction_commits_once_until_it_is_reset,
            run_reports_unknown_result_when_an_earlier_attempt_may_have_committed,
            a_page_that_reached_its_limit_says_more,
            creating_a_watch_reads_its_key_serializably,
            an_empty_read_conflict_range_conflicts_with_nothing,
            versionstamped_mutations_obey_key_and_value_limits,
            idempotent_transaction_applies_exactly_once_under_unknown_results,
        );
    };
    (@each $open:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let open = $open;
                let db: $crate::__Database = open().await;
                $crate::conformance::$name(&db).await;
            }
        )*
    };
}

/// Keys of one check: `stead-conformance/<check>/...`.
pub struct Space(Vec<u8>);

impl Space {
    pub async fn new(db: &Database, check: &str) -> Space {
        let space = Space(tuple::pack(&("stead-conformance", check)));
        let (b, e) = space.range();
        db.run(|tx, _| {
            let (b, e) = (b.clone(), e.clone());
            async move {
                tx.clear_range(&b, &e);
                Ok::<_, Error>(())
            }
        })
        .await
        .expect("clearing the check's keys");
        space
    }

    pub fn key(&self, name: impl tuple::TuplePack) -> Vec<u8> {
        let mut k = self.0.clone();
        k.extend_from_slice(&tuple::pack(&name));
        k
    }

    pub fn range(&self) -> (Vec<u8>, Vec<u8>) {
        let r = RangeOption::prefix(&self.0);
        (r.begin.to_vec(), r.end.to_vec())
    }

    pub fn range_option(&self) -> RangeOption {
        RangeOption::prefix(&self.0)
    }
}

fn int(v: Option<Bytes>) -> i64 {
    v.map_or(0, |b| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        i64::from_le_bytes(a)
    })
}

async fn read_int(db: &Database, key: &[u8]) -> i64 {
    let tx = db.create_transaction().unwrap();
    int(tx.get(key).await.unwrap())
}

async fn put(db: &Database, key: &[u8], value: &[u8]) -> CommitInfo {
    let tx = db.create_transaction().unwrap();
    tx.set(key, value);
    tx.commit().await.unwrap()
}

fn expect_code<T: std::fmt::Debug>(result: Result<T, Error>, code: ErrorCode, what: &str) {
    match result {
        Err(e) if e.code() == code => {}
        other => panic!("{what}: expected {code:?}, got {other:?}"),
    }
}

pub async fn read_your_writes_covers_sets_clears_ranges_and_atomics(db: &Database) {
    let s = Space::new(db, "ryw").await;
    for (i, v) in ["1", "2", "3", "4"].iter().enumerate() {
        put(db, &s.key(i as i64), v.as_bytes()).await;
    }
    let tx = db.create_transaction().unwrap();
    tx.set(&s.key(9), b"new");
    assert_eq!(tx.get(&s.key(9)).await.unwrap().as_deref(), Some(&b"new"[..]));
    tx.clear(&s.key(0));
    assert_eq!(tx.get(&s.key(0)).await.unwrap(), None);
    tx.clear_range(&s.key(1), &s.key(3));
    assert_eq!(tx.get(&s.key(2)).await.unwrap(), None);
    tx.set(&s.key(2), b"back");
    tx.atomic_add(&s.key("n"), 5);
    tx.atomic_add(&s.key("n"), 6);
    assert_eq!(int(tx.get(&s.key("n")).await.unwrap()), 11);
    let all = tx.get_range_all(&s.range_option(), ReadMode::Serializable).await.unwrap();
    let keys: Vec<_> = all.iter().map(|kv| kv.value.clone()).collect();
    // Tuple order: strings ("n") sort before integers.
    assert_eq!(
        keys,
        [Bytes::from(11i64.to_le_bytes().to_vec()), Bytes::from("back"), Bytes::from("4"), Bytes::from("new")]
    );
    tx.commit().await.unwrap();
    let after = db.create_transaction().unwrap();
    assert_eq!(
        after.get_range_all(&s.range_option(), ReadMode::Snapshot).await.unwrap(),
        all,
        "the commit equals the view"
    );
}

pub async fn range_reads_page_with_limits_and_reverse(db: &Database) {
    let s = Space::new(db, "range").await;
    let tx = db.create_transaction().unwrap();
    for i in 0..2500i64 {
        tx.set(&s.key(i), &[7u8; 600]);
    }
    tx.commit().await.unwrap();
    let tx = db.create_transaction().unwrap();
    let all = tx.get_range_all(&s.range_option(), ReadMode::Snapshot).await.unwrap();
    assert_eq!(all.len(), 2500, "1.5 MB needs more than one page");
    assert!(all.windows(2).all(|w| w[0].key < w[1].key));
    let first = tx.get_range(&s.range_option().limit(10), ReadMode::Snapshot).await.unwrap();
    assert_eq!(first.key_values.len(), 10);
    assert_eq!(first.key_values[0].key, all[0].key);
    let last = tx.get_range(&s.range_option().limit(3).reverse(true), ReadMode::Snapshot).await.unwrap();
    let expect: Vec<_> = all.iter().rev().take(3).map(|kv| kv.key.clone()).collect();
    assert_eq!(last.key_values.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>(), expect);
    let reversed = tx.get_range_all(&s.range_option().reverse(true), ReadMode::Snapshot).await.unwrap();
    assert_eq!(reversed.len(), 2500);
    assert_eq!(reversed.first().unwrap().key, all.last().unwrap().key);
    let limited = tx.get_range_all(&s.range_option().limit(1234), ReadMode::Snapshot).await.unwrap();
    assert_eq!(limited.len(), 1234);
    let mid = RangeOption::new(s.key(100i64), s.key(200i64));
    assert_eq!(tx.get_range_all(&mid, ReadMode::Snapshot).await.unwrap().len(), 100, "end is exclusive");
}

pub async fn concurrent_increments_are_never_lost(db: &Database) {
    let s = Space::new(db, "incr").await;
    let key = s.key("counter");
    let (tasks, each) = (8, 25);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (db, key) = (db.clone(), key.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..each {
                db.run(|tx, _| {
                    let key = key.clone();
                    async move {
                        let n = int(tx.get(&key).await?);
                        tokio::task::yield_now().await;
                        tx.set(&key, &(n + 1).to_le_bytes());
                        Ok::<_, Error>(())
                    }
                })
                .await
                .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(read_int(db, &key).await, tasks * each);
}

pub async fn bank_transfers_under_conflicts_keep_the_total_exact(db: &Database) {
    let s = Space::new(db, "bank").await;
    let accounts = 10i64;
    let tx = db.create_transaction().unwrap();
    for a in 0..accounts {
        tx.set(&s.key(("acct", a)), &100i64.to_le_bytes());
    }
    tx.commit().await.unwrap();
    let mut handles = Vec::new();
    for task in 0..8i64 {
        let db = db.clone();
        let keys: Vec<Vec<u8>> = (0..accounts).map(|a| s.key(("acct", a))).collect();
        handles.push(tokio::spawn(async move {
            for i in 0..30i64 {
                let from = keys[((task * 7 + i * 3) % accounts) as usize].clone();
                let to = keys[((task * 5 + i * 7 + 1) % accounts) as usize].clone();
                if from == to {
                    continue;
                }
                let amount = 1 + (task + i) % 40;
                db.run(|tx, _| {
                    let (from, to) = (from.clone(), to.clone());
                    async move {
                        let a = int(tx.get(&from).await?);
                        tokio::task::yield_now().await;
                        let b = int(tx.get(&to).await?);
                        if a >= amount {
                            tx.set(&from, &(a - amount).to_le_bytes());
                            tx.set(&to, &(b + amount).to_le_bytes());
                        }
                        Ok::<_, Error>(())
                    }
                })
                .await
                .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let tx = db.create_transaction().unwrap();
    let balances: Vec<i64> = tx
        .get_range_all(&RangeOption::prefix(&s.key(("acct",))), ReadMode::Snapshot)
        .await
        .unwrap()
        .into_iter()
        .map(|kv| int(Some(kv.value)))
        .collect();
    assert_eq!(balances.len(), accounts as usize);
    assert!(balances.iter().all(|b| *b >= 0), "no account overdrawn: {balances:?}");
    assert_eq!(balances.iter().sum::<i64>(), 100 * accounts, "money is neither made nor lost: {balances:?}");
}

pub async fn write_skew_is_prevented(db: &Database) {
    // Two doctors on call; each may leave if the other stays. Serializable: not both.
    let s = Space::new(db, "skew").await;
    let (alice, bob) = (s.key("alice"), s.key("bob"));
    put(db, &alice, b"on").await;
    put(db, &bob, b"on").await;
    let t1 = db.create_transaction().unwrap();
    let t2 = db.create_transaction().unwrap();
    assert_eq!(t1.get(&bob).await.unwrap().as_deref(), Some(&b"on"[..]));
    assert_eq!(t2.get(&alice).await.unwrap().as_deref(), Some(&b"on"[..]));
    t1.set(&alice, b"off");
    t2.set(&bob, b"off");
    t1.commit().await.unwrap();
    expect_code(t2.commit().await, ErrorCode::NotCommitted, "the second doctor's leave");
    let tx = db.create_transaction().unwrap();
    assert_eq!(tx.get(&bob).await.unwrap().as_deref(), Some(&b"on"[..]));
}

pub async fn phantom_insert_into_a_read_range_conflicts(db: &Database) {
    let s = Space::new(db, "phantom").await;
    put(db, &s.key(("item", 1)), b"x").await;
    let reader = db.create_transaction().unwrap();
    let seen = reader.get_range_all(&s.range_option(), ReadMode::Serializable).await.unwrap();
    assert_eq!(seen.len(), 1);
    put(db, &s.key(("item", 2)), b"phantom").await;
    reader.set(&s.key("count"), &(seen.len() as i64).to_le_bytes());
    expect_code(reader.commit().await, ErrorCode::NotCommitted, "a commit after a phantom appeared in its range");
    // A range read cut short by its limit conflicts only on what it read.
    let reader = db.create_transaction().unwrap();
    let page = reader.get_range(&s.range_option().limit(1), ReadMode::Serializable).await.unwrap();
    assert_eq!(page.key_values.len(), 1);
    put(db, &s.key(("item", 3)), b"beyond the page").await;
    reader.set(&s.key("first"), &page.key_values[0].key);
    reader.commit().await.expect("an insert after the last key read is not a conflict");
}

pub async fn snapshot_reads_add_no_conflict(db: &Database) {
    let s = Space::new(db, "snapshot").await;
    put(db, &s.key("k"), b"1").await;
    let t1 = db.create_transaction().unwrap();
    assert_eq!(t1.get_snapshot(&s.key("k")).await.unwrap().as_deref(), Some(&b"1"[..]));
    t1.get_range(&s.range_option(), ReadMode::Snapshot).await.unwrap();
    put(db, &s.key("k"), b"2").await;
    put(db, &s.key("k2"), b"2").await;
    t1.set(&s.key("other"), b"x");
    t1.commit().await.expect("snapshot reads do not conflict");
}

pub async fn blind_writes_add_no_conflict(db: &Database) {
    let s = Space::new(db, "blind").await;
    let t1 = db.create_transaction().unwrap();
    let t2 = db.create_transaction().unwrap();
    t1.get_read_version().await.unwrap();
    t2.get_read_version().await.unwrap();
    t1.set(&s.key("k"), b"1");
    t2.set(&s.key("k"), b"2");
    t2.atomic_add(&s.key("n"), 1);
    t1.atomic_add(&s.key("n"), 1);
    t1.commit().await.unwrap();
    t2.commit().await.expect("writes without reads never conflict");
    assert_eq!(read_int(db, &s.key("n")).await, 2);
}

pub async fn explicit_read_conflict_range_conflicts(db: &Database) {
    let s = Space::new(db, "explicit-read").await;
    let t1 = db.create_transaction().unwrap();
    t1.get_read_version().await.unwrap();
    t1.add_conflict_range(&s.key("a"), &s.key("c"), ConflictRangeType::Read).unwrap();
    put(db, &s.key("b"), b"x").await;
    t1.set(&s.key("z"), b"x");
    expect_code(t1.commit().await, ErrorCode::NotCommitted, "an explicit read conflict range");
}

pub async fn explicit_write_conflict_range_conflicts(db: &Database) {
    let s = Space::new(db, "explicit-write").await;
    let t1 = db.create_transaction().unwrap();
    assert_eq!(t1.get(&s.key("k")).await.unwrap(), None);
    let t2 = db.create_transaction().unwrap();
    t2.add_conflict_range(&s.key("k"), &s.key("l"), ConflictRangeType::Write).unwrap();
    t2.commit().await.unwrap();
    t1.set(&s.key("z"), b"x");
    expect_code(t1.commit().await, ErrorCode::NotCommitted, "a read overlapping an explicit write conflict range");
    let tx = db.create_transaction().unwrap();
    assert_eq!(tx.get(&s.key("k")).await.unwrap(), None, "a write conflict range writes nothing");
}

pub async fn clear_range_conflicts_with_a_reader_of_a_cleared_key(db: &Database) {
    let s = Space::new(db, "clear-range").await;
    put(db, &s.key(5), b"x").await;
    let reader = db.create_transaction().unwrap();
    assert!(reader.get(&s.key(5)).await.unwrap().is_some());
    let clearer = db.create_transaction().unwrap();
    clearer.clear_range(&s.key(0), &s.key(10));
    clearer.commit().await.unwrap();
    reader.set(&s.key(99), b"x");
    expect_code(reader.commit().await, ErrorCode::NotCommitted, "a read of a key a clear_range removed");
}

pub async fn versionstamps_are_unique_and_ordered_by_commit(db: &Database) {
    let s = Space::new(db, "versionstamps").await;
    let mut handles = Vec::new();
    for id in 0..40i64 {
        let db = db.clone();
        let (template, vkey) = {
            let mut k = s.key("log");
            let mut tail = tuple::pack_with_versionstamp(&(TupleVersionstamp::incomplete(0),));
            // Shift the offset by the prefix length: the tuple layer counted from its own start.
            let offset_at = tail.len() - 4;
            let offset = u32::from_le_bytes(tail[offset_at..].try_into().unwrap()) + k.len() as u32;
            tail.truncate(offset_at);
            k.extend_from_slice(&tail);
            k.extend_from_slice(&offset.to_le_bytes());
            (k, s.key(("value", id)))
        };
        handles.push(tokio::spawn(async move {
            let committed = db
                .run_committed(|tx, _| {
                    let (template, vkey) = (template.clone(), vkey.clone());
                    async move {
                        tx.set_versionstamped_key(&template, &id.to_le_bytes());
                        let mut value = vec![0u8; 10];
                        value.extend_from_slice(&0u32.to_le_bytes());
                        tx.set_versionstamped_value(&vkey, &value);
                        Ok::<_, Error>(())
                    }
                })
                .await
                .unwrap();
            (id, committed.commit)
        }));
    }
    let mut commits = Vec::new();
    for h in handles {
        commits.push(h.await.unwrap());
    }
    let stamps: Vec<Versionstamp> =
        commits.iter().map(|(_, c)| c.versionstamp.expect("a write commit has a stamp")).collect();
    let mut unique = stamps.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), stamps.len(), "versionstamps are unique");
    for (_, c) in &commits {
        assert_eq!(c.versionstamp.unwrap().version(), c.version);
    }
    // The log keys, in key order, are in commit order and carry each commit's stamp.
    let log_prefix = s.key("log");
    let tx = db.create_transaction().unwrap();
    let log = tx.get_range_all(&RangeOption::prefix(&log_prefix), ReadMode::Snapshot).await.unwrap();
    assert_eq!(log.len(), 40);
    let mut by_stamp = commits.clone();
    by_stamp.sort_by_key(|(_, c)| c.versionstamp.unwrap());
    for (kv, (id, c)) in log.iter().zip(&by_stamp) {
        assert_eq!(int(Some(kv.value.clone())), *id, "key order is commit order");
        let (_, _, _, stamp): (String, String, String, TupleVersionstamp) =
            tuple::unpack(&kv.key).unwrap_or_else(|e| panic!("log key unpacks: {e:?}"));
        assert_eq!(stamp.transaction_version(), &c.versionstamp.unwrap().0[..]);
        let value = tx.get(&s.key(("value", *id))).await.unwrap().unwrap();
        assert_eq!(&value[..], &c.versionstamp.unwrap().0[..], "versionstamped value");
    }
}

pub async fn watch_fires_when_the_key_changes(db: &Database) {
    let s = Space::new(db, "watch").await;
    put(db, &s.key("k"), b"1").await;
    let tx = db.create_transaction().unwrap();
    let watch = tx.watch(&s.key("k"));
    tx.commit().await.unwrap();
    let mut watch = watch.boxed();
    put(db, &s.key("unrelated"), b"x").await;
    put(db, &s.key("k"), b"1").await;
    assert!((&mut watch).now_or_never().is_none(), "no change of value, no fire");
    put(db, &s.key("k"), b"2").await;
    tokio::time::timeout(Duration::from_secs(30), watch).await.expect("the watch fires").expect("without error");
}

pub async fn watch_fails_when_its_transaction_fails(db: &Database) {
    let s = Space::new(db, "watch-fail").await;
    let tx = db.create_transaction().unwrap();
    tx.get(&s.key("read")).await.unwrap();
    let watch = tx.watch(&s.key("watched"));
    put(db, &s.key("read"), b"conflict").await;
    tx.set(&s.key("x"), b"x");
    expect_code(tx.commit().await, ErrorCode::NotCommitted, "the watching transaction");
    let result = tokio::time::timeout(Duration::from_secs(30), watch).await.expect("the watch resolves");
    expect_code(result, ErrorCode::NotCommitted, "the watch of a failed transaction");
}

pub async fn watch_fails_when_its_transaction_is_dropped(db: &Database) {
    let s = Space::new(db, "watch-drop").await;
    let tx = db.create_transaction().unwrap();
    let watch = tx.watch(&s.key("k"));
    drop(tx);
    let result = tokio::time::timeout(Duration::from_secs(30), watch).await.expect("the watch resolves");
    assert!(result.is_err(), "a watch whose transaction never committed fails: {result:?}");
}

pub async fn atomic_operations_follow_foundationdb(db: &Database) {
    let s = Space::new(db, "atomic").await;
    let le = |n: i64| n.to_le_bytes().to_vec();
    put(db, &s.key("max"), &le(10)).await;
    put(db, &s.key("min"), &le(10)).await;
    put(db, &s.key("cac"), b"gone").await;
    put(db, &s.key("bytes"), b"m").await;
    let tx = db.create_transaction().unwrap();
    tx.atomic_add(&s.key("add"), 40);
    tx.atomic_add(&s.key("add"), 2);
    tx.atomic_op(&s.key("max"), &le(7), MutationType::Max);
    tx.atomic_op(&s.key("min"), &le(7), MutationType::Min);
    tx.atomic_op(&s.key("cac"), b"gone", MutationType::CompareAndClear);
    tx.atomic_op(&s.key("bytes"), b"z", MutationType::ByteMax);
    tx.atomic_op(&s.key("or"), &[0b0101], MutationType::BitOr);
    tx.atomic_op(&s.key("append"), b"ab", MutationType::AppendIfFits);
    tx.atomic_op(&s.key("append"), b"cd", MutationType::AppendIfFits);
    tx.commit().await.unwrap();
    let tx = db.create_transaction().unwrap();
    assert_eq!(int(tx.get(&s.key("add")).await.unwrap()), 42);
    assert_eq!(int(tx.get(&s.key("max")).await.unwrap()), 10);
    assert_eq!(int(tx.get(&s.key("min")).await.unwrap()), 7);
    assert_eq!(tx.get(&s.key("cac")).await.unwrap(), None);
    assert_eq!(tx.get(&s.key("bytes")).await.unwrap().as_deref(), Some(&b"z"[..]));
    assert_eq!(tx.get(&s.key("or")).await.unwrap().as_deref(), Some(&[0b0101u8][..]));
    assert_eq!(tx.get(&s.key("append")).await.unwrap().as_deref(), Some(&b"abcd"[..]));
}

pub async fn limits_give_the_foundationdb_errors(db: &Database) {
    let s = Space::new(db, "limits").await;
    let mut at_limit = s.key("k");
    at_limit.resize(KEY_SIZE_MAX, b'k');
    let tx = db.create_transaction().unwrap();
    tx.set(&at_limit, &vec![1u8; VALUE_SIZE_MAX]);
    tx.commit().await.expect("a 10,000-byte key and a 100,000-byte value are allowed");

    let mut too_long = at_limit.clone();
    too_long.push(b'k');
    let tx = db.create_transaction().unwrap();
    tx.set(&too_long, b"v");
    expect_code(tx.commit().await, ErrorCode::KeyTooLarge, "a 10,001-byte key");

    let tx = db.create_transaction().unwrap();
    tx.set(&s.key("v"), &vec![1u8; VALUE_SIZE_MAX + 1]);
    expect_code(tx.commit().await, ErrorCode::ValueTooLarge, "a 100,001-byte value");

    let tx = db.create_transaction().unwrap();
    for i in 0..101i64 {
        tx.set(&s.key(("big", i)), &vec![2u8; VALUE_SIZE_MAX]);
    }
    expect_code(tx.commit().await, ErrorCode::TransactionTooLarge, "a 10.1 MB transaction");

    let tx = db.create_transaction().unwrap();
    tx.set(b"\xff/system", b"v");
    expect_code(tx.commit().await, ErrorCode::KeyOutsideLegalRange, "a write to the system keyspace");

    let tx = db.create_transaction().unwrap();
    assert_eq!(tx.get(&s.key(("big", 0))).await.unwrap(), None, "a failed commit wrote nothing");
}

pub async fn transaction_older_than_five_seconds_is_too_old(db: &Database) {
    let s = Space::new(db, "too-old").await;
    let tx = db.create_transaction().unwrap();
    tx.get(&s.key("k")).await.unwrap();
    tokio::time::sleep(TRANSACTION_LIFETIME + Duration::from_millis(500)).await;
    let read = tx.get(&s.key("k2")).await;
    let commit = async {
        tx.set(&s.key("k"), b"v");
        tx.commit().await
    };
    match read {
        Err(e) => assert_eq!(e.code(), ErrorCode::TransactionTooOld, "{e}"),
        Ok(_) => expect_code(commit.await, ErrorCode::TransactionTooOld, "a commit 5.5 s after the read version"),
    }
}

pub async fn a_transaction_commits_once_until_it_is_reset(db: &Database) {
    let s = Space::new(db, "commit-once").await;
    let t1 = db.create_transaction().unwrap();
    t1.get(&s.key("k")).await.unwrap();
    put(db, &s.key("k"), b"interloper").await;
    t1.set(&s.key("k"), b"mine");
    let failed = t1.commit().await;
    expect_code(failed.clone(), ErrorCode::NotCommitted, "the first commit");
    assert!(t1.commit().await.is_err(), "a failed transaction does not commit on a second try without a reset");
    t1.on_error(&failed.unwrap_err()).await.unwrap();
    t1.set(&s.key("k"), b"mine");
    t1.commit().await.expect("after on_error the transaction starts over and commits");
    let tx = db.create_transaction().unwrap();
    assert_eq!(tx.get(&s.key("k")).await.unwrap().as_deref(), Some(&b"mine"[..]));
}

pub async fn run_reports_unknown_result_when_an_earlier_attempt_may_have_committed(db: &Database) {
    let s = Space::new(db, "give-up").await;
    let config = FaultConfig { unknown_result_applied_rate: 1.0, ..FaultConfig::default() };
    let (faulty, _) = fault::wrap(db.clone(), config, 7);
    let faulty = faulty.with_run_options(stead_store::RunOptions { attempts_max: 2 });
    let key = s.key("k");
    let result = faulty
        .run(|tx, maybe_committed| {
            let key = key.clone();
            async move {
                if bool::from(maybe_committed) {
                    // A retryable error that says nothing of the first attempt.
                    return Err(Error::new(ErrorCode::NotCommitted));
                }
                tx.set(&key, b"v");
                Ok(())
            }
        })
        .await;
    expect_code(result, ErrorCode::CommitUnknownResult, "run giving up after a maybe-committed attempt");
    let tx = db.create_transaction().unwrap();
    assert_eq!(tx.get(&key).await.unwrap().as_deref(), Some(&b"v"[..]), "the first attempt did commit");
}

pub async fn a_page_that_reached_its_limit_says_more(db: &Database) {
    let s = Space::new(db, "limit-more").await;
    put(db, &s.key(1), b"x").await;
    put(db, &s.key(2), b"x").await;
    let tx = db.create_transaction().unwrap();
    let page = tx.get_range(&s.range_option().limit(2), ReadMode::Serializable).await.unwrap();
    assert_eq!(page.key_values.len(), 2);
    assert!(page.more, "a page cut by its limit cannot promise the range is complete");
    let all = tx.get_range(&s.range_option().limit(3), ReadMode::Serializable).await.unwrap();
    assert_eq!(all.key_values.len(), 2);
    assert!(!all.more);
}

pub async fn creating_a_watch_reads_its_key_serializably(db: &Database) {
    let s = Space::new(db, "watch-conflict").await;
    let tx = db.create_transaction().unwrap();
    let _watch = tx.watch(&s.key("k"));
    put(db, &s.key("k"), b"changed").await;
    tx.set(&s.key("other"), b"x");
    expect_code(tx.commit().await, ErrorCode::NotCommitted, "a transaction whose watched key changed");
}

pub async fn an_empty_read_conflict_range_conflicts_with_nothing(db: &Database) {
    let s = Space::new(db, "empty-range").await;
    let tx = db.create_transaction().unwrap();
    tx.get_read_version().await.unwrap();
    tx.add_conflict_range(&s.key("m"), &s.key("m"), ConflictRangeType::Read).unwrap();
    let clearer = db.create_transaction().unwrap();
    clearer.clear_range(&s.key("a"), &s.key("z"));
    clearer.commit().await.unwrap();
    tx.set(&s.key("x"), b"x");
    tx.commit().await.expect("an empty read range holds no key to conflict on");
}

pub async fn versionstamped_mutations_obey_key_and_value_limits(db: &Database) {
    let s = Space::new(db, "vs-limits").await;
    let mut system = b"\xff/".to_vec();
    system.extend_from_slice(&[0u8; 10]);
    system.extend_from_slice(&2u32.to_le_bytes());
    let tx = db.create_transaction().unwrap();
    tx.set_versionstamped_key(&system, b"v");
    expect_code(tx.commit().await, ErrorCode::KeyOutsideLegalRange, "a versionstamped key in \\xff");

    let mut big = vec![0u8; VALUE_SIZE_MAX + 1];
    big.extend_from_slice(&0u32.to_le_bytes());
    let tx = db.create_transaction().unwrap();
    tx.set_versionstamped_value(&s.key("v"), &big);
    expect_code(tx.commit().await, ErrorCode::ValueTooLarge, "a 100,001-byte versionstamped value");
}

pub async fn fresh_transaction_commits_after_the_store_sat_idle(db: &Database) {
    // An idle store publishes no new versions; a fresh transaction is still not too old.
    let s = Space::new(db, "idle").await;
    put(db, &s.key("k"), b"1").await;
    tokio::time::sleep(TRANSACTION_LIFETIME + Duration::from_secs(1)).await;
    let tx = db.create_transaction().unwrap();
    assert_eq!(tx.get(&s.key("k")).await.unwrap().as_deref(), Some(&b"1"[..]));
    tx.set(&s.key("k"), b"2");
    tx.commit().await.expect("a fresh read-modify-write after an idle spell commits");
}

#[derive(Debug)]
enum AppError {
    Store(Error),
    Refused,
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Store(e)
    }
}

impl stead_store::StoreError for AppError {
    fn as_store_error(&self) -> Option<&Error> {
        match self {
            AppError::Store(e) => Some(e),
            AppError::Refused => None,
        }
    }
}

pub async fn run_retries_conflicts_and_returns_the_callers_own_errors(db: &Database) {
    let s = Space::new(db, "run").await;
    let key = s.key("k");
    let mut attempts = 0;
    let db2 = db.clone();
    let value = db
        .run(|tx, maybe_committed| {
            attempts += 1;
            let (key, db2, first) = (key.clone(), db2.clone(), attempts == 1);
            async move {
                assert!(!bool::from(maybe_committed), "a conflict never sets maybe_committed");
                let v = tx.get(&key).await?;
                if first {
                    put(&db2, &key, b"interloper").await;
                }
                tx.set(&key, b"mine");
                Ok::<_, Error>(v)
            }
        })
        .await
        .unwrap();
    assert_eq!(attempts, 2, "one conflict, one retry");
    assert_eq!(value.as_deref(), Some(&b"interloper"[..]));
    let mut calls = 0;
    let refused = db
        .run(|_, _| {
            calls += 1;
            async { Err::<(), _>(AppError::Refused) }
        })
        .await;
    assert!(matches!(refused, Err(AppError::Refused)));
    assert_eq!(calls, 1, "the caller's own error is not retried");
}

pub async fn idempotent_transaction_applies_exactly_once_under_unknown_results(db: &Database) {
    let s = Space::new(db, "exactly-once").await;
    let config = FaultConfig {
        unknown_result_applied_rate: 0.3,
        unknown_result_unapplied_rate: 0.1,
        not_committed_rate: 0.1,
        ..FaultConfig::default()
    };
    let (faulty, faults) = fault::wrap(db.clone(), config, 42);
    let counter = s.key("counter");
    let transfers = 100i64;
    for id in 0..transfers {
        // The request id is fixed outside the retry loop, so every attempt checks the same marker.
        let marker = s.key(("applied", id));
        faulty
            .run(|tx, maybe_committed| {
                let (marker, counter) = (marker.clone(), counter.clone());
                async move {
                    if bool::from(maybe_committed) && tx.get(&marker).await?.is_some() {
                        return Ok(());
                    }
                    tx.set(&marker, b"");
                    tx.atomic_add(&counter, 1);
                    Ok::<_, Error>(())
                }
            })
            .await
            .unwrap();
    }
    let counts = faults.counts();
    assert!(counts.unknown_applied > 0 && counts.unknown_unapplied > 0, "faults were injected: {counts:?}");
    assert_eq!(read_int(db, &counter).await, transfers, "each transaction applied exactly once ({counts:?})");
}
