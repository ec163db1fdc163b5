//! The conformance suite on a FoundationDB cluster: the same checks as
//! `conformance_embedded.rs`, against the FoundationDB engine. Needs libfdb_c to link and a
//! running cluster; run it with `scripts/test-fdb.sh`, which checks both and sets
//! `STEAD_FDB_CLUSTER_FILE` to the cluster file.
//!
//! A cluster keeps data between runs and the checks run in parallel. Each check clears its
//! own key prefix (`stead-conformance/<check>/`) before it starts (`conformance::Space::new`);
//! in addition, the first check of a run clears the whole `stead-conformance/` prefix, so keys
//! left by an earlier version of the suite cannot linger. Clearing the whole prefix before
//! every check would wipe the keys of the checks running beside it.

#![cfg(all(feature = "fdb", not(madsim)))]

use std::path::PathBuf;

use stead_store::{Database, Error, RangeOption, tuple};

/// The prefix under which every conformance check keeps its keys.
fn suite_prefix() -> Vec<u8> {
    tuple::pack(&("stead-conformance",))
}

async fn open_fdb() -> Database {
    let path = std::env::var_os("STEAD_FDB_CLUSTER_FILE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .expect("STEAD_FDB_CLUSTER_FILE must name the FoundationDB cluster file (run scripts/test-fdb.sh)");
    let db = stead_store::fdb::open(Some(&path))
        .unwrap_or_else(|e| panic!("opening FoundationDB with {}: {e}", path.display()));
    // Futures of the FoundationDB client are woken by its network thread, not by a tokio
    // runtime, so one test's runtime can run the clear while the others wait.
    static CLEARED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CLEARED
        .get_or_init(|| async {
            let range = RangeOption::prefix(&suite_prefix());
            db.run(|tx, _| {
                let range = range.clone();
                async move {
                    tx.clear_range(&range.begin, &range.end);
                    Ok::<_, Error>(())
                }
            })
            .await
            .unwrap_or_else(|e| panic!("clearing the conformance keys on the cluster of {}: {e}", path.display()));
        })
        .await;
    db
}

stead_testkit::conformance_tests!(|| async { open_fdb().await });
