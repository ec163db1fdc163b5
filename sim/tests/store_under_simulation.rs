//! The store inside madsim: the embedded engine (its committer a simulated task) behind
//! the fault wrapper, whose latency is simulated time. Proves the store runs in the
//! simulator, keeps its guarantees under injected faults, and is deterministic per seed.
#![cfg(madsim)]

use std::time::Duration;

use stead_store::fault::{self, FaultConfig, FaultCounts};
use stead_store::{Database, Error, RangeOption, ReadMode};

const ACCOUNTS: i64 = 8;
const START_BALANCE: i64 = 1000;

fn account(a: i64) -> Vec<u8> {
    stead_store::tuple::pack(&("acct", a))
}

fn int(v: Option<bytes::Bytes>) -> i64 {
    v.map_or(0, |b| i64::from_le_bytes(b.as_ref().try_into().unwrap()))
}

/// Concurrent idempotent transfers through the fault wrapper; returns the final total,
/// the number of transfers applied, the faults injected and the simulated time taken.
async fn transfers_under_faults() -> (i64, i64, FaultCounts, Duration) {
    let started = tokio::time::Instant::now();
    let db = stead_store::embedded::open_in_memory();
    db.run(|tx, _| async move {
        for a in 0..ACCOUNTS {
            tx.set(&account(a), &START_BALANCE.to_le_bytes());
        }
        Ok::<_, Error>(())
    })
    .await
    .unwrap();
    let config =
        FaultConfig { latency_rate: 0.8, latency_max: Duration::from_millis(50), ..FaultConfig::retryable(0.15) };
    let (faulty, faults) = fault::wrap(db.clone(), config, madsim::runtime::Handle::current().seed());
    let mut tasks = Vec::new();
    for worker in 0..6i64 {
        let faulty: Database = faulty.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20i64 {
                let id = worker * 1000 + i;
                let (from, to) = (account((worker + i) % ACCOUNTS), account((worker * 3 + i + 1) % ACCOUNTS));
                if from == to {
                    continue;
                }
                let marker = stead_store::tuple::pack(&("applied", id));
                faulty
                    .run(|tx, maybe_committed| {
                        let (from, to, marker) = (from.clone(), to.clone(), marker.clone());
                        async move {
                            if bool::from(maybe_committed) && tx.get(&marker).await?.is_some() {
                                return Ok(());
                            }
                            let (a, b) = (int(tx.get(&from).await?), int(tx.get(&to).await?));
                            tx.set(&from, &(a - 7).to_le_bytes());
                            tx.set(&to, &(b + 7).to_le_bytes());
                            tx.set(&marker, b"");
                            Ok::<_, Error>(())
                        }
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let tx = db.create_transaction().unwrap();
    let total = tx
        .get_range_all(&RangeOption::prefix(&stead_store::tuple::pack(&("acct",))), ReadMode::Snapshot)
        .await
        .unwrap()
        .into_iter()
        .map(|kv| int(Some(kv.value)))
        .sum();
    let applied = tx
        .get_range_all(&RangeOption::prefix(&stead_store::tuple::pack(&("applied",))), ReadMode::Snapshot)
        .await
        .unwrap()
        .len() as i64;
    (total, applied, faults.counts(), started.elapsed())
}

#[madsim::test]
async fn transfers_stay_exact_under_store_faults_in_simulated_time() {
    let (total, applied, counts, elapsed) = transfers_under_faults().await;
    assert_eq!(total, ACCOUNTS * START_BALANCE, "money is neither made nor lost");
    assert!(applied > 100, "most transfers ran: {applied}");
    assert!(counts.unknown_applied > 0 && counts.not_committed > 0 && counts.delays > 0, "{counts:?}");
    assert!(elapsed > Duration::from_millis(100), "latency is simulated time: {elapsed:?}");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    // madsim runs the workload twice and panics at the first random draw that differs.
    madsim::runtime::Runtime::check_determinism(17, madsim::Config::default(), || async {
        transfers_under_faults().await;
    });
}
