#[cfg(not(madsim))]
use stead_store::schema::encoding;
#[cfg(not(madsim))]
fn real_main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = stead_server::Store::new(stead_store::embedded::open_in_memory());
        let env = stead_server::Env::system();
        for i in 0..100 {
            stead_server::nodes::upsert(
                &store,
                &env,
                &stead_testkit::fixtures::node(&format!("{i:036}"), "dc1", 20000, 32000),
            )
            .await
            .unwrap();
        }
        let mut cache = stead_server::snapshot::ClusterCache::new();
        let job = stead_testkit::fixtures::job("bench-000001", stead_store::model::JobType::Service, 10, 100, 128);
        let d = stead_server::dry_run::dry_run(&store, &mut cache, &env, &Default::default(), 1, &job).await.unwrap();
        let a = d.outcome.plan.nodes.values().next().unwrap().place[0].clone();
        let full = encoding::encode(&a).unwrap().len();
        let mut no_metric = a.clone();
        no_metric.metrics = None;
        let mut no_scores = a.clone();
        no_scores.metrics.as_mut().unwrap().score_meta_data.clear();
        println!(
            "full {full} no_metric {} no_score_meta {} json {}",
            encoding::encode(&no_metric).unwrap().len(),
            encoding::encode(&no_scores).unwrap().len(),
            serde_json::to_string(&a).unwrap().len()
        );
        let t = std::time::Instant::now();
        for _ in 0..10000 {
            std::hint::black_box(encoding::encode(&a).unwrap());
        }
        println!("encode {:?}/alloc", t.elapsed() / 10000);
        let bytes = encoding::encode(&a).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..10000 {
            std::hint::black_box(encoding::decode::<stead_store::model::Allocation>(&bytes).unwrap());
        }
        println!("decode {:?}/alloc", t.elapsed() / 10000);
        println!("{}", serde_json::to_string_pretty(&a).unwrap());
    });
}

/// Profiling aids run on the real runtime only.
#[cfg(madsim)]
fn main() {}

#[cfg(not(madsim))]
fn main() {
    real_main()
}
