//! Property: whatever the interleaving of concurrent transactions, the embedded engine's
//! committed history is serializable. Every transaction's reads equal a sequential model
//! at its read version (snapshot isolation of reads, committed or not), and replaying the
//! committed transactions one by one in commit order (versionstamp order) reproduces every
//! read they made and the final contents of the store.
#![cfg(not(madsim))]

use std::collections::BTreeMap;

use proptest::prelude::*;
use stead_store::{Database, RangeOption, ReadMode, Transaction, Version, Versionstamp};

const KEYS: u8 = 8;

#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    Range { begin: u8, end: u8, limit: Option<usize>, reverse: bool },
    Set(u8, i64),
    Clear(u8),
    ClearRange(u8, u8),
    Add(u8, i64),
}

/// What a read returned: a value, or a range's (key, value) pairs.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Value(Option<i64>),
    Range(Vec<(u8, i64)>),
}

#[derive(Debug, Clone)]
enum Step {
    /// Run the next op of transaction `i` (or launch its commit when none is left).
    Advance(usize),
    /// Wait for every commit launched so far.
    Settle,
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k]
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KEYS;
    prop_oneof![
        3 => k.clone().prop_map(Op::Get),
        2 => (0..=KEYS, 0..=KEYS, proptest::option::of(1usize..4), any::<bool>()).prop_map(|(a, b, limit, reverse)| {
            Op::Range { begin: a.min(b), end: a.max(b), limit, reverse }
        }),
        3 => (k.clone(), 0i64..100).prop_map(|(k, v)| Op::Set(k, v)),
        1 => k.clone().prop_map(Op::Clear),
        1 => (0..=KEYS, 0..=KEYS).prop_map(|(a, b)| Op::ClearRange(a.min(b), a.max(b))),
        2 => (k, -5i64..5).prop_map(|(k, n)| Op::Add(k, n)),
    ]
}

fn workload() -> impl Strategy<Value = (Vec<Vec<Op>>, Vec<Step>)> {
    proptest::collection::vec(proptest::collection::vec(op(), 1..6), 2..7).prop_flat_map(|txns| {
        let n = txns.len();
        let steps = proptest::collection::vec(
            prop_oneof![8 => (0..n).prop_map(Step::Advance), 1 => Just(Step::Settle)],
            10..60,
        );
        (Just(txns), steps)
    })
}

type Model = BTreeMap<u8, i64>;

/// Runs `ops` sequentially on `state`, returning what each read saw.
fn replay(state: &mut Model, ops: &[Op]) -> Vec<Seen> {
    let mut seen = Vec::new();
    for op in ops {
        match op {
            Op::Get(k) => seen.push(Seen::Value(state.get(k).copied())),
            Op::Range { begin, end, limit, reverse } => {
                let it = state.range(*begin..*end).map(|(k, v)| (*k, *v));
                let mut all: Vec<_> = if *reverse { it.rev().collect() } else { it.collect() };
                if let Some(limit) = limit {
                    all.truncate(*limit);
                }
                seen.push(Seen::Range(all));
            }
            Op::Set(k, v) => {
                state.insert(*k, *v);
            }
            Op::Clear(k) => {
                state.remove(k);
            }
            Op::ClearRange(b, e) => state.retain(|k, _| !(*b..*e).contains(k)),
            Op::Add(k, n) => {
                let v = state.get(k).copied().unwrap_or(0).wrapping_add(*n);
                state.insert(*k, v);
            }
        }
    }
    seen
}

fn decode(v: &[u8]) -> i64 {
    i64::from_le_bytes(v.try_into().expect("every value is 8 bytes"))
}

async fn execute(tx: &Transaction, op: &Op) -> Option<Seen> {
    match op {
        Op::Get(k) => Some(Seen::Value(tx.get(&key(*k)).await.expect("read").map(|v| decode(&v)))),
        Op::Range { begin, end, limit, reverse } => {
            let mut range = RangeOption::new(key(*begin), key(*end)).reverse(*reverse);
            range.limit = *limit;
            let kvs = tx.get_range_all(&range, ReadMode::Serializable).await.expect("range read");
            Some(Seen::Range(kvs.iter().map(|kv| (kv.key[1], decode(&kv.value))).collect()))
        }
        Op::Set(k, v) => {
            tx.set(&key(*k), &v.to_le_bytes());
            None
        }
        Op::Clear(k) => {
            tx.clear(&key(*k));
            None
        }
        Op::ClearRange(b, e) => {
            tx.clear_range(&key(*b), &key(*e));
            None
        }
        Op::Add(k, n) => {
            tx.atomic_add(&key(*k), *n);
            None
        }
    }
}

struct Outcome {
    ops: Vec<Op>,
    seen: Vec<Seen>,
    read_version: Version,
    stamp: Option<Versionstamp>,
}

async fn run_workload(db: &Database, txns: &[Vec<Op>], steps: &[Step]) -> Vec<Outcome> {
    let txs: Vec<Transaction> = txns.iter().map(|_| db.create_transaction().unwrap()).collect();
    let mut next_op = vec![0usize; txns.len()];
    let mut seen: Vec<Vec<Seen>> = vec![Vec::new(); txns.len()];
    let mut pending: Vec<(usize, tokio::task::JoinHandle<stead_store::Result<stead_store::CommitInfo>>)> = Vec::new();
    let mut results: BTreeMap<usize, Option<Versionstamp>> = BTreeMap::new();
    let settle = |pending: &mut Vec<_>| std::mem::take(pending);
    // Steps first, then finish every transaction in order.
    let tail: Vec<Step> = (0..txns.len()).flat_map(|i| std::iter::repeat_n(Step::Advance(i), 7)).collect();
    for step in steps.iter().chain(&tail) {
        match step {
            Step::Settle => {
                for (i, h) in settle(&mut pending) {
                    results.insert(i, h.await.unwrap().ok().and_then(|c| c.versionstamp));
                }
            }
            Step::Advance(i) => {
                let i = *i;
                if next_op[i] < txns[i].len() {
                    if let Some(s) = execute(&txs[i], &txns[i][next_op[i]]).await {
                        seen[i].push(s);
                    }
                    next_op[i] += 1;
                } else if next_op[i] == txns[i].len() {
                    txs[i].get_read_version().await.unwrap();
                    let tx = txs[i].clone();
                    pending.push((i, tokio::spawn(async move { tx.commit().await })));
                    next_op[i] += 1;
                }
            }
        }
    }
    for (i, h) in settle(&mut pending) {
        results.insert(i, h.await.unwrap().ok().and_then(|c| c.versionstamp));
    }
    let mut out = Vec::new();
    for (i, tx) in txs.iter().enumerate() {
        out.push(Outcome {
            ops: txns[i].clone(),
            seen: seen[i].clone(),
            read_version: tx.get_read_version().await.unwrap(),
            stamp: results.get(&i).copied().flatten(),
        });
    }
    out
}

fn check_history(outcomes: &[Outcome], initial: &Model, final_state: &Model) -> Result<(), TestCaseError> {
    // Replay committed writers in commit order, remembering the state after each version.
    let mut committed: Vec<&Outcome> = outcomes.iter().filter(|o| o.stamp.is_some()).collect();
    committed.sort_by_key(|o| o.stamp);
    let mut state = initial.clone();
    let mut history: Vec<(Version, Model)> = vec![(Version::MIN, initial.clone())];
    for o in &committed {
        let seen = replay(&mut state, &o.ops);
        prop_assert_eq!(&seen, &o.seen, "a committed transaction's reads differ from the serial replay: {:?}", o.ops);
        history.push((o.stamp.unwrap().version(), state.clone()));
    }
    prop_assert_eq!(&state, final_state, "the store differs from the serial replay");
    // Every transaction, committed or not, read a consistent snapshot at its read version.
    for o in outcomes {
        let mut at_read = history.iter().rev().find(|(v, _)| *v <= o.read_version).expect("initial state").1.clone();
        let seen = replay(&mut at_read, &o.ops);
        prop_assert_eq!(&seen, &o.seen, "reads are not the snapshot at the read version: {:?}", o.ops);
    }
    Ok(())
}

async fn contents(db: &Database) -> Model {
    let tx = db.create_transaction().unwrap();
    tx.get_range_all(&RangeOption::prefix(b"k"), ReadMode::Snapshot)
        .await
        .unwrap()
        .iter()
        .map(|kv| (kv.key[1], decode(&kv.value)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_transactions_have_a_serializable_committed_history((txns, steps) in workload(), seed in 0i64..100) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let db = stead_store::embedded::open_in_memory();
            let setup = db.create_transaction().unwrap();
            for k in (0..KEYS).step_by(2) {
                setup.set(&key(k), &(seed + i64::from(k)).to_le_bytes());
            }
            setup.commit().await.unwrap();
            let initial = contents(&db).await;
            let outcomes = run_workload(&db, &txns, &steps).await;
            let final_state = contents(&db).await;
            check_history(&outcomes, &initial, &final_state)
        })?;
    }
}
