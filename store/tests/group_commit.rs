//! Group commit: concurrent transactions share durable writes. A durable layer that takes
//! 5 ms per write (an fsync's worth) and counts its writes shows many commits per write.
#![cfg(not(madsim))]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use stead_store::embedded::durable::{Changes, Durable, MemDurable, Recovered};
use stead_store::{Error, Version};

struct SlowCountingDurable {
    inner: MemDurable,
    writes: Arc<AtomicU64>,
}

impl Durable for SlowCountingDurable {
    fn recover(&mut self) -> std::io::Result<Recovered> {
        self.inner.recover()
    }

    fn write(&mut self, version: Version, changes: &Changes) -> std::io::Result<()> {
        std::thread::sleep(Duration::from_millis(5));
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write(version, changes)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_share_durable_writes() {
    let writes = Arc::new(AtomicU64::new(0));
    let durable = SlowCountingDurable { inner: MemDurable::new(), writes: writes.clone() };
    let db = stead_store::embedded::open_with(Box::new(durable)).unwrap();
    let clients = 64u64;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..5u64 {
                db.run(|tx, _| async move {
                    tx.set(format!("k/{c}/{i}").as_bytes(), b"v");
                    Ok::<_, Error>(())
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let commits = clients * 5;
    let writes = writes.load(Ordering::SeqCst);
    assert!(writes > 0);
    assert!(
        writes * 4 <= commits,
        "{commits} commits took {writes} durable writes: group commit should batch at least 4 per write"
    );
}

struct StalledDurable(MemDurable);

impl Durable for StalledDurable {
    fn recover(&mut self) -> std::io::Result<Recovered> {
        self.0.recover()
    }

    fn write(&mut self, version: Version, changes: &Changes) -> std::io::Result<()> {
        std::thread::sleep(Duration::from_millis(300));
        self.0.write(version, changes)
    }
}

#[tokio::test]
async fn a_commit_waiting_on_a_stalled_disk_times_out_as_asked() {
    let db = stead_store::embedded::open_with(Box::new(StalledDurable(MemDurable::new()))).unwrap();
    let tx = db.create_transaction().unwrap();
    tx.set_timeout(Duration::from_millis(50));
    tx.set(b"k", b"v");
    let err = tx.commit().await.unwrap_err();
    assert_eq!(err.code(), stead_store::ErrorCode::TransactionTimedOut, "{err}");
}
