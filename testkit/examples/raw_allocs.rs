//! Profiling aid: writes N allocation records (batches of 400, 2 writers) into a durable
//! store and reports the rate.
#[cfg(not(madsim))]
use std::sync::Arc;
#[cfg(not(madsim))]
use stead_store::schema::{JobModify, PutOptions};
#[cfg(not(madsim))]
fn real_main() {
    let n: usize = std::env::args().nth(1).map(|a| a.parse().unwrap()).unwrap_or(200_000);
    let memory = std::env::args().any(|a| a == "--memory");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = if memory {
            stead_store::embedded::open_in_memory()
        } else {
            stead_store::embedded::open(&stead_store::embedded::EmbeddedOptions { data_dir: Some(dir.path().into()) })
                .unwrap()
        };
        let store = stead_server::Store::new(db);
        let env = stead_server::Env::system();
        let mut cache = stead_server::snapshot::ClusterCache::new();
        for i in 0..100 {
            stead_server::nodes::upsert(
                &store,
                &env,
                &stead_testkit::fixtures::node(&format!("{i:036}"), "dc1", 20000, 32000),
            )
            .await
            .unwrap();
        }
        let job = stead_testkit::fixtures::job("bench-000001", stead_store::model::JobType::Service, 10, 100, 128);
        let d = stead_server::dry_run::dry_run(&store, &mut cache, &env, &Default::default(), 1, &job).await.unwrap();
        let t = d.outcome.plan.nodes.values().next().unwrap().place[0].clone();
        let mut batches = Vec::new();
        let mut b = Vec::new();
        for k in 0..n {
            let mut a = t.clone();
            a.id = format!("{:08x}-0000-4000-8000-{:012x}", k / 1000, k).into();
            a.name = format!("x.g[{k}]");
            a.job_id = format!("bench-{:06}", k / 1000).into();
            a.node_id = format!("{:036}", k % 10000).into();
            b.push(a);
            if b.len() == 400 {
                batches.push(std::mem::take(&mut b));
            }
        }
        let batches = Arc::new(batches);
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = std::time::Instant::now();
        let mut hs = Vec::new();
        for _ in 0..2 {
            let (store, batches, next) = (store.clone(), batches.clone(), next.clone());
            hs.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(batch) = batches.get(i) else { break };
                    store
                        .db
                        .run(|tx, _| {
                            let store = store.clone();
                            async move {
                                for a in batch {
                                    store.ks.put(&tx, a, PutOptions::insert_new().job_modify(JobModify::Bump)).await?;
                                }
                                Ok::<_, stead_store::schema::SchemaError>(())
                            }
                        })
                        .await
                        .unwrap();
                }
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
        let s = start.elapsed().as_secs_f64();
        println!("{n} allocs in {s:.2} s: {:.0}/s", n as f64 / s);
    });
}

/// Profiling aids run on the real runtime only.
#[cfg(madsim)]
fn main() {}

#[cfg(not(madsim))]
fn main() {
    real_main()
}
