//! Profiling aid: the size of a stored allocation and the CPU cost of the pieces of its
//! write and read, in one thread (`cargo run --release -p stead-testkit --example put_cost`).
#[cfg(not(madsim))]
use stead_store::schema::{JobModify, PutOptions, encoding};
#[cfg(not(madsim))]
fn real_main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = stead_server::Store::new(stead_store::embedded::open_in_memory());
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
        let job = stead_testkit::fixtures::job("bench-000001", stead_store::model::JobType::Service, 1000, 100, 128);
        let t = std::time::Instant::now();
        let d = stead_server::dry_run::dry_run(&store, &mut cache, &env, &Default::default(), 1, &job).await.unwrap();
        println!("schedule 1000 placements on 100 nodes (dry run): {:?}/placement", t.elapsed() / 1000);
        let allocs: Vec<_> = d.outcome.plan.nodes.values().flat_map(|n| n.place.iter().cloned()).collect();
        let n = allocs.len() as u32;
        let t = std::time::Instant::now();
        for a in &allocs {
            std::hint::black_box(encoding::encode(a).unwrap());
        }
        println!("encode: {:?}/alloc", t.elapsed() / n);
        let bare: Vec<_> = allocs
            .iter()
            .cloned()
            .map(|mut a| {
                a.metrics = None;
                a
            })
            .collect();
        let t = std::time::Instant::now();
        for a in &bare {
            std::hint::black_box(encoding::encode(a).unwrap());
        }
        println!("encode without the placement metric: {:?}/alloc", t.elapsed() / n);
        let a = &allocs[0];
        let size = |a: &stead_store::model::Allocation| encoding::encode(a).unwrap().len();
        let mut bare = a.clone();
        bare.metrics = None;
        let json = serde_json::to_string(a).unwrap().len();
        println!(
            "stored size: {} bytes ({} without the placement metric; API JSON {json} bytes)",
            size(a),
            size(&bare)
        );
        let encoded: Vec<Vec<u8>> = allocs.iter().map(|a| encoding::encode(a).unwrap()).collect();
        let t = std::time::Instant::now();
        for e in &encoded {
            std::hint::black_box(encoding::decode::<stead_store::model::Allocation>(e).unwrap());
        }
        println!("decode: {:?}/alloc", t.elapsed() / n);
        let t = std::time::Instant::now();
        for a in &allocs {
            std::hint::black_box(stead_store::schema::Record::index_entries(a));
            std::hint::black_box(stead_store::schema::Record::primary_key(a));
        }
        println!("keys: {:?}/alloc", t.elapsed() / n);
        let (mut put, mut commit) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
        for round in 0..50 {
            let tx = store.db.create_transaction().unwrap();
            let t = std::time::Instant::now();
            for a in &allocs {
                let mut a = a.clone();
                a.id = format!("{round}-{}", a.id).into();
                store.ks.put(&tx, &a, PutOptions::insert_new().job_modify(JobModify::Bump)).await.unwrap();
            }
            put += t.elapsed();
            let t = std::time::Instant::now();
            tx.commit().await.unwrap();
            commit += t.elapsed();
        }
        println!("put into a transaction: {:?}/alloc", put / (50 * n));
        println!("commit: {:?}/alloc", commit / (50 * n));
        let t = std::time::Instant::now();
        let tx = store.db.create_transaction().unwrap();
        let page = stead_store::schema::PageOptions::default().read_mode(stead_store::ReadMode::Snapshot);
        let got = stead_store::records::allocs_by_job(&store.ks, &tx, "default", "bench-000001", &page).await.unwrap();
        println!("read back {} by job index: {:?}/alloc", got.items.len(), t.elapsed() / got.items.len().max(1) as u32);
    });
}

/// Profiling aids run on the real runtime only.
#[cfg(madsim)]
fn main() {}

#[cfg(not(madsim))]
fn main() {
    real_main()
}
