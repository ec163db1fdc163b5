//! The writer child of the kill -9 crash test (`testkit/tests/crash_recovery.rs`).
//!
//! Usage: `crash-writer <data_dir> <first_txn_id>`
//!
//! Opens the embedded store under `data_dir` and commits transactions from 16 concurrent
//! tasks until it is killed. Transaction `i` (task `t` takes `first + t`, `first + t + 16`,
//! ...) writes several keys that belong together, so a partially applied transaction is
//! visible to the checker:
//!
//! * sets `("txn", i)`, `("a", i)` and `("b", i)` to payloads derived from `i`;
//! * adds 1 to the little-endian counter at `("count",)`;
//! * clears `("open", i)`, which the task's previous transaction set, and sets
//!   `("open", i + 16)` for the task's next transaction, so a clear and a set of an older
//!   transaction's key are part of every commit.
//!
//! After each acknowledged commit it prints `ack <i> <commit version>` on stdout and
//! flushes. A line on stdout is thus a promise: that transaction is durable.
//!
//! The key layout and payloads live in `stead_testkit::crash`, shared with the checker.

#![cfg_attr(madsim, allow(dead_code, unused_imports))]

use std::io::Write;

use stead_testkit::crash::{WRITERS, a_key, b_key, count_key, open_key, payload, txn_key};

#[cfg(not(madsim))]
#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(first)) = (args.next(), args.next()) else {
        eprintln!("usage: crash-writer <data_dir> <first_txn_id>");
        std::process::exit(2);
    };
    let first: u64 = first.parse().unwrap_or_else(|e| {
        eprintln!("crash-writer: first_txn_id {first:?}: {e}");
        std::process::exit(2);
    });
    let options = stead_store::embedded::EmbeddedOptions { data_dir: Some(dir.into()) };
    let db = match stead_store::embedded::open(&options) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("crash-writer: {e}");
            std::process::exit(1);
        }
    };
    let mut tasks = Vec::new();
    for t in 0..WRITERS {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = first + t;
            loop {
                let committed = db
                    .run_committed(|tx, maybe_committed| async move {
                        // The add is not idempotent: after a maybe-committed failure, a
                        // transaction that is already there must not be applied again.
                        if maybe_committed.0 && tx.get(&txn_key(i)).await?.is_some() {
                            return Ok(());
                        }
                        tx.set(&txn_key(i), &payload("txn", i));
                        tx.set(&a_key(i), &payload("a", i));
                        tx.set(&b_key(i), &payload("b", i));
                        tx.atomic_add(&count_key(), 1);
                        tx.clear(&open_key(i));
                        tx.set(&open_key(i + WRITERS), b"open");
                        Ok::<(), stead_store::Error>(())
                    })
                    .await;
                match committed {
                    Ok(c) => {
                        let mut out = std::io::stdout().lock();
                        // A closed pipe means the test is gone: stop.
                        if writeln!(out, "ack {i} {}", c.commit.version).and_then(|()| out.flush()).is_err() {
                            std::process::exit(0);
                        }
                    }
                    Err(e) => {
                        eprintln!("crash-writer: transaction {i}: {e}");
                        std::process::exit(1);
                    }
                }
                i += WRITERS;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

#[cfg(madsim)]
fn main() {}
