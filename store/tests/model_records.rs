//! The model records in the keyspace (`model::records`): keys, indexes, index fields filled
//! from commit versions, job versions, and lossless round trips.

use serde_json::json;
use stead_store::Database;
use stead_store::ReadMode;
use stead_store::embedded::open_in_memory;
use stead_store::model::{
    AclPolicy, AclToken, AllocClientStatus, AllocDesiredStatus, Allocation, Deployment, Evaluation, Job, JobStatus,
    Namespace, Node, ServiceRegistration, Variable, job_from_api_json,
};
use stead_store::records::{
    self, JobVersion, allocs_by_job, allocs_by_node, deployments_by_job, evals_by_job, job_spec_changed, keys,
    list_job_versions, nodes_by_datacenter, nodes_by_pool, put_job_version, services_by_alloc, services_by_name,
    token_by_secret,
};
use stead_store::schema::{JobModify, Keyspace, Page, PageOptions, PutOptions, Record, Tuple};

const FULL_JOB: &str = include_str!("../../model/src/testdata/full_job.json");

/// Puts one record in its own transaction; returns the commit version.
async fn put<R: Record>(db: &Database, ks: &Keyspace, record: &R, options: PutOptions) -> u64 {
    let committed =
        db.run_committed(|tx, _| async move { ks.put(&tx, record, options).await }).await.expect("put commits");
    u64::try_from(committed.commit.version).expect("versions are positive")
}

async fn get<R: Record>(db: &Database, ks: &Keyspace, key: &Tuple) -> Option<R> {
    db.run(|tx, _| async move { ks.get::<R>(&tx, key, ReadMode::Serializable).await }).await.expect("get")
}

/// Puts a job and records its version in one transaction, bumping JobModifyIndex.
async fn register(db: &Database, ks: &Keyspace, job: &Job) -> u64 {
    let committed = db
        .run_committed(|tx, _| async move {
            ks.put(&tx, job, PutOptions::default().job_modify(JobModify::Bump)).await?;
            put_job_version(ks, &tx, job).await
        })
        .await
        .expect("register commits");
    u64::try_from(committed.commit.version).unwrap()
}

fn job(id: &str) -> Job {
    Job { namespace: "default".into(), id: id.into(), name: id.into(), priority: 50, ..Job::default() }
}

fn alloc(id: &str, node: &str, job: &str) -> Allocation {
    Allocation {
        namespace: "default".into(),
        id: id.into(),
        node_id: node.into(),
        job_id: job.into(),
        ..Allocation::default()
    }
}

fn ids<T>(page: Page<T>, id: impl Fn(&T) -> String) -> Vec<String> {
    assert!(page.next.is_none(), "one page holds them all");
    page.items.iter().map(id).collect()
}

#[tokio::test]
async fn job_modify_index_moves_only_with_a_spec_change_and_create_index_never() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let created = put(&db, &ks, &job("web"), PutOptions::default().job_modify(JobModify::Bump)).await;
    let stored: Job = get(&db, &ks, &keys::job("default", "web")).await.unwrap();
    assert_eq!((stored.create_index, stored.modify_index, stored.job_modify_index), (created, created, created));

    // A status change is bookkeeping: not a spec change, no bump.
    let mut status_update = stored.clone();
    status_update.status = Some(JobStatus::Running);
    status_update.status_description = "running".into();
    assert!(!job_spec_changed(&stored, &status_update));
    let modified = put(&db, &ks, &status_update, PutOptions::default()).await;
    let stored: Job = get(&db, &ks, &keys::job("default", "web")).await.unwrap();
    assert_eq!((stored.create_index, stored.modify_index, stored.job_modify_index), (created, modified, created));
    assert_eq!(stored.status, Some(JobStatus::Running));

    // A spec change bumps.
    let mut spec_update = stored.clone();
    spec_update.priority = 80;
    spec_update.version += 1;
    assert!(job_spec_changed(&stored, &spec_update));
    let bumped = put(&db, &ks, &spec_update, PutOptions::default().job_modify(JobModify::Bump)).await;
    let stored: Job = get(&db, &ks, &keys::job("default", "web")).await.unwrap();
    assert_eq!((stored.create_index, stored.modify_index, stored.job_modify_index), (created, bumped, bumped));
    assert!(created < modified && modified < bumped);

    // Stopping a job is a spec change too (Nomad bumps on `job stop`).
    let mut stopped = stored.clone();
    stopped.stop = true;
    assert!(job_spec_changed(&stored, &stopped));
}

#[tokio::test]
async fn a_job_never_bumped_shows_its_create_index_as_job_modify_index() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let created = put(&db, &ks, &job("batch"), PutOptions::default()).await;
    let stored: Job = get(&db, &ks, &keys::job("default", "batch")).await.unwrap();
    assert_eq!(stored.job_modify_index, created);
    let modified = put(&db, &ks, &stored, PutOptions::default()).await;
    let stored: Job = get(&db, &ks, &keys::job("default", "batch")).await.unwrap();
    assert_eq!((stored.create_index, stored.modify_index, stored.job_modify_index), (created, modified, created));
}

#[tokio::test]
async fn job_versions_list_newest_first_with_each_versions_job_modify_index() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    // Versions 0..=11 of "web": 10 and 11 must sort after 9 (numbers, not text).
    let mut commits = Vec::new();
    let mut current = job("web");
    for version in 0..=11u64 {
        current.version = version;
        current.priority = 40 + version as i32;
        commits.push(register(&db, &ks, &current).await);
        // The next submission starts from the job as stored, with its CreateIndex.
        current = get(&db, &ks, &keys::job("default", "web")).await.unwrap();
    }
    // Jobs whose IDs start with "web" keep their own versions.
    register(&db, &ks, &job("web-canary")).await;
    register(&db, &ks, &job("web/periodic-1")).await;

    let versions = db
        .run(|tx, _| {
            let ks = &ks;
            async move { list_job_versions(ks, &tx, "default", "web", 100).await }
        })
        .await
        .unwrap();
    let numbers: Vec<u64> = versions.iter().map(|j| j.version).collect();
    assert_eq!(numbers, (0..=11).rev().collect::<Vec<u64>>());
    for job in &versions {
        let commit = commits[job.version as usize];
        assert_eq!(job.job_modify_index, commit, "version {}", job.version);
        assert_eq!(job.modify_index, commit, "version {}", job.version);
        assert_eq!(job.create_index, commits[0], "every version shows the job's CreateIndex");
        assert_eq!(job.priority, 40 + job.version as i32);
    }
    // The current job and its newest version agree on the indexes.
    let stored: Job = get(&db, &ks, &keys::job("default", "web")).await.unwrap();
    assert_eq!(
        (stored.create_index, stored.job_modify_index),
        (versions[0].create_index, versions[0].job_modify_index)
    );

    let newest_two = db
        .run(|tx, _| {
            let ks = &ks;
            async move { list_job_versions(ks, &tx, "default", "web", 2).await }
        })
        .await
        .unwrap();
    assert_eq!(newest_two.iter().map(|j| j.version).collect::<Vec<_>>(), [11, 10]);

    let one = db
        .run(|tx, _| {
            let ks = &ks;
            async move { records::get_job_version(ks, &tx, "default", "web", 3, ReadMode::Snapshot).await }
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((one.version, one.priority), (3, 43));

    // Marking a version stable writes it again: ModifyIndex moves, JobModifyIndex stays.
    let mut stable = one.clone();
    stable.stable = true;
    let marked = db
        .run_committed(|tx, _| {
            let (ks, stable) = (&ks, &stable);
            async move { put_job_version(ks, &tx, stable).await }
        })
        .await
        .unwrap()
        .commit
        .version as u64;
    let again: JobVersion = get(&db, &ks, &keys::job_version("default", "web", 3)).await.unwrap();
    assert!(again.0.stable);
    assert_eq!((again.0.modify_index, again.0.job_modify_index), (marked, commits[3]));
}

#[tokio::test]
async fn allocs_are_found_by_node_and_by_job_and_leave_the_old_node_when_moved() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    for a in [alloc("a1", "n1", "web"), alloc("a2", "n1", "db"), alloc("a3", "n2", "web")] {
        put(&db, &ks, &a, PutOptions::insert_new().job_modify(JobModify::Bump)).await;
    }
    // Another namespace's job of the same name is another job.
    let mut other_ns = alloc("a4", "n2", "web");
    other_ns.namespace = "prod".into();
    put(&db, &ks, &other_ns, PutOptions::default()).await;

    let by_node = |node: &'static str| {
        let (db, ks) = (&db, &ks);
        async move {
            let page = db
                .run(|tx, _| async move { allocs_by_node(ks, &tx, node, &PageOptions::default()).await })
                .await
                .unwrap();
            ids(page, |a| a.id.to_string())
        }
    };
    let by_job = |ns: &'static str, job: &'static str| {
        let (db, ks) = (&db, &ks);
        async move {
            let page = db
                .run(|tx, _| async move { allocs_by_job(ks, &tx, ns, job, &PageOptions::default()).await })
                .await
                .unwrap();
            ids(page, |a| a.id.to_string())
        }
    };
    assert_eq!(by_node("n1").await, ["a1", "a2"]);
    assert_eq!(by_node("n2").await, ["a3", "a4"]);
    assert_eq!(by_job("default", "web").await, ["a1", "a3"]);
    assert_eq!(by_job("default", "db").await, ["a2"]);
    assert_eq!(by_job("prod", "web").await, ["a4"]);

    // a1 moves to n3: it leaves n1's index and joins n3's; its job index stays.
    let mut moved: Allocation = get(&db, &ks, &keys::alloc("default", "a1")).await.unwrap();
    moved.node_id = "n3".into();
    put(&db, &ks, &moved, PutOptions::default()).await;
    assert_eq!(by_node("n1").await, ["a2"]);
    assert_eq!(by_node("n3").await, ["a1"]);
    assert_eq!(by_job("default", "web").await, ["a1", "a3"]);

    // Deleted: gone from every index.
    let deleted = db
        .run(|tx, _| {
            let ks = &ks;
            async move { ks.delete::<Allocation>(&tx, &keys::alloc("default", "a3")).await }
        })
        .await
        .unwrap();
    assert!(deleted);
    assert_eq!(by_node("n2").await, ["a4"]);
    assert_eq!(by_job("default", "web").await, ["a1"]);
}

#[tokio::test]
async fn alloc_modify_index_moves_with_server_updates_not_client_updates() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let placed = put(&db, &ks, &alloc("a1", "n1", "web"), PutOptions::insert_new().job_modify(JobModify::Bump)).await;
    let key = keys::alloc("default", "a1");
    let mut stored: Allocation = get(&db, &ks, &key).await.unwrap();
    assert_eq!((stored.create_index, stored.modify_index, stored.alloc_modify_index), (placed, placed, placed));

    // The client reports it running: ModifyIndex moves, AllocModifyIndex stays.
    stored.client_status = AllocClientStatus::Running;
    let reported = put(&db, &ks, &stored, PutOptions::default()).await;
    let mut stored: Allocation = get(&db, &ks, &key).await.unwrap();
    assert_eq!((stored.modify_index, stored.alloc_modify_index), (reported, placed));

    // The server stops it: both move.
    stored.desired_status = AllocDesiredStatus::Stop;
    let stopped = put(&db, &ks, &stored, PutOptions::default().job_modify(JobModify::Bump)).await;
    let stored: Allocation = get(&db, &ks, &key).await.unwrap();
    assert_eq!((stored.create_index, stored.modify_index, stored.alloc_modify_index), (placed, stopped, stopped));
}

#[tokio::test]
async fn evals_and_deployments_are_found_by_their_job() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    for (id, job) in [("e1", "web"), ("e2", "db"), ("e3", "web")] {
        let eval = Evaluation { namespace: "default".into(), id: id.into(), job_id: job.into(), ..Default::default() };
        put(&db, &ks, &eval, PutOptions::default()).await;
        let deployment = Deployment {
            namespace: "default".into(),
            id: format!("d-{id}").into(),
            job_id: job.into(),
            ..Default::default()
        };
        put(&db, &ks, &deployment, PutOptions::default()).await;
    }
    let (evals, deployments) = db
        .run(|tx, _| {
            let ks = &ks;
            async move {
                let page = PageOptions::default();
                Ok::<_, stead_store::schema::SchemaError>((
                    evals_by_job(ks, &tx, "default", "web", &page).await?,
                    deployments_by_job(ks, &tx, "default", "web", &page).await?,
                ))
            }
        })
        .await
        .unwrap();
    assert_eq!(ids(evals, |e| e.id.to_string()), ["e1", "e3"]);
    assert_eq!(ids(deployments, |d| d.id.to_string()), ["d-e1", "d-e3"]);

    // The job index is exact: a job whose ID extends "web" is not "web".
    let eval = Evaluation { namespace: "default".into(), id: "e4".into(), job_id: "webx".into(), ..Default::default() };
    put(&db, &ks, &eval, PutOptions::default()).await;
    let evals = db
        .run(|tx, _| {
            let ks = &ks;
            async move { evals_by_job(ks, &tx, "default", "web", &PageOptions::default()).await }
        })
        .await
        .unwrap();
    assert_eq!(ids(evals, |e| e.id.to_string()), ["e1", "e3"]);
}

#[tokio::test]
async fn token_is_found_by_its_exact_secret_and_not_by_a_rotated_one() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let token = AclToken {
        accessor_id: "acc-1".into(),
        secret_id: "secret-1".into(),
        name: "ops".into(),
        policies: vec!["readonly".into()],
        ..AclToken::default()
    };
    put(&db, &ks, &token, PutOptions::default()).await;
    let other = AclToken { accessor_id: "acc-2".into(), secret_id: "secret-10".into(), ..AclToken::default() };
    put(&db, &ks, &other, PutOptions::default()).await;

    let find = |secret: &'static str| {
        let (db, ks) = (&db, &ks);
        async move {
            db.run(|tx, _| async move { token_by_secret(ks, &tx, secret, ReadMode::Snapshot).await })
                .await
                .unwrap()
                .map(|t| t.accessor_id)
        }
    };
    assert_eq!(find("secret-1").await.as_deref(), Some("acc-1"));
    assert_eq!(find("secret-10").await.as_deref(), Some("acc-2"));
    assert_eq!(find("secret").await, None, "a prefix of a secret finds nothing");
    assert_eq!(find("unknown").await, None);

    let mut rotated: AclToken = get(&db, &ks, &keys::acl_token("acc-1")).await.unwrap();
    rotated.secret_id = "secret-2".into();
    put(&db, &ks, &rotated, PutOptions::default()).await;
    assert_eq!(find("secret-1").await, None);
    assert_eq!(find("secret-2").await.as_deref(), Some("acc-1"));
}

#[tokio::test]
async fn nodes_are_found_by_pool_and_by_datacenter() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    for (id, pool, dc) in [("n1", "default", "dc1"), ("n2", "gpu", "dc1"), ("n3", "default", "dc2")] {
        let node = Node { id: id.into(), node_pool: pool.into(), datacenter: dc.into(), ..Node::default() };
        put(&db, &ks, &node, PutOptions::default()).await;
    }
    let (default_pool, dc1) = db
        .run(|tx, _| {
            let ks = &ks;
            async move {
                let page = PageOptions::default();
                Ok::<_, stead_store::schema::SchemaError>((
                    nodes_by_pool(ks, &tx, "default", &page).await?,
                    nodes_by_datacenter(ks, &tx, "dc1", &page).await?,
                ))
            }
        })
        .await
        .unwrap();
    assert_eq!(ids(default_pool, |n| n.id.to_string()), ["n1", "n3"]);
    assert_eq!(ids(dc1, |n| n.id.to_string()), ["n1", "n2"]);
}

#[tokio::test]
async fn service_registrations_are_found_by_name_and_by_alloc() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    for (id, ns, name, alloc) in [
        ("s1", "default", "api", "a1"),
        ("s2", "default", "api", "a2"),
        ("s3", "default", "db", "a1"),
        ("s4", "prod", "api", "a3"),
    ] {
        let service = ServiceRegistration {
            id: id.into(),
            namespace: ns.into(),
            service_name: name.into(),
            alloc_id: alloc.into(),
            ..ServiceRegistration::default()
        };
        put(&db, &ks, &service, PutOptions::default()).await;
    }
    let (api, of_a1) = db
        .run(|tx, _| {
            let ks = &ks;
            async move {
                let page = PageOptions::default();
                Ok::<_, stead_store::schema::SchemaError>((
                    services_by_name(ks, &tx, "default", "api", &page).await?,
                    services_by_alloc(ks, &tx, "a1", &page).await?,
                ))
            }
        })
        .await
        .unwrap();
    assert_eq!(ids(api, |s| s.id.clone()), ["s1", "s2"]);
    assert_eq!(ids(of_a1, |s| s.id.clone()), ["s1", "s3"]);
}

/// Writes `record` (whose index fields hold junk), reads it back by `key`, and checks that
/// it equals what was written once `clear` has reset the index fields on both sides, and
/// that the read's index fields are the commit's.
async fn assert_round_trip<R>(db: &Database, ks: &Keyspace, record: R, key: Tuple, indexes: fn(&mut R) -> Vec<&mut u64>)
where
    R: Record + Clone + PartialEq + std::fmt::Debug,
{
    let mut written = record;
    for field in indexes(&mut written) {
        *field = 777;
    }
    assert_eq!(written.primary_key(), key, "{}: the key helper and the record agree", R::KIND.name);
    let commit = put(db, ks, &written, PutOptions::default()).await;
    let mut read: R = get(db, ks, &key).await.unwrap_or_else(|| panic!("{} read back", R::KIND.name));
    for field in indexes(&mut read) {
        assert_eq!(*field, commit, "{}: index fields come from the commit", R::KIND.name);
        *field = 777;
    }
    assert_eq!(read, written, "{}: read back as written", R::KIND.name);
}

#[tokio::test]
async fn records_read_back_equal_what_was_written_apart_from_the_index_fields() {
    let db = open_in_memory();
    let ks = Keyspace::default();
    let mut full_job = job_from_api_json(FULL_JOB).expect("the full job decodes");
    full_job.extra.insert("FutureField".into(), json!({"nested": [1, -2, 3.5, "x", null, true]}));
    full_job.version_tag = Some(json!({"Name": "v1", "Description": "first"}));
    assert!(!full_job.task_groups.is_empty());
    let job_key = keys::job(&full_job.namespace, full_job.id.as_str());
    assert_round_trip(&db, &ks, full_job.clone(), job_key, |j| {
        vec![&mut j.create_index, &mut j.modify_index, &mut j.job_modify_index]
    })
    .await;
    // A version of it, written on its own: its indexes are all the commit's too.
    let mut version = full_job.clone();
    version.version = 4;
    // A version keeps the job's CreateIndex as written (the job's, not the version's).
    version.create_index = 5;
    let version_key = keys::job_version(&version.namespace, version.id.as_str(), 4);
    assert_round_trip(&db, &ks, JobVersion(version), version_key, |v| {
        vec![&mut v.0.modify_index, &mut v.0.job_modify_index]
    })
    .await;

    let alloc: Allocation = serde_json::from_value(json!({
        "ID": "a1", "Namespace": "default", "EvalID": "e1", "Name": "web.web[0]",
        "NodeID": "n1", "NodeName": "node-1", "JobID": "web", "TaskGroup": "web",
        "DesiredStatus": "run", "ClientStatus": "running", "ClientDescription": "Tasks are running",
        "TaskStates": {"server": {"State": "running", "Restarts": 2,
            "StartedAt": "2024-01-01T00:00:00Z",
            "Events": [{"Type": "Started", "Time": 1_700_000_000_000_000_000i64, "Details": {"a": "b"}}]}},
        "AllocatedResources": {"Tasks": {"server": {"Cpu": {"CpuShares": 500}, "Memory": {"MemoryMB": 256}}},
            "Shared": {"DiskMB": 300, "Ports": [{"Label": "http", "Value": 25000, "To": 8080}]}},
        "Metrics": {"NodesEvaluated": 3, "Scores": {"n1.binpack": 0.75}, "AllocationTime": 12345},
        "DeploymentStatus": {"Healthy": true, "Timestamp": "2024-01-01T00:00:10Z", "ModifyIndex": 9},
        "CreateTime": 1_700_000_000_000_000_000i64, "ModifyTime": -5,
        "NetworkStatus": {"Address": "10.0.0.1"},
        "SomethingNewer": {"k": [1, 2]}
    }))
    .expect("alloc JSON decodes");
    let mut alloc = alloc;
    alloc.job = Some(Box::new(full_job.clone()));
    assert_round_trip(&db, &ks, alloc, keys::alloc("default", "a1"), |a| {
        vec![&mut a.create_index, &mut a.modify_index, &mut a.alloc_modify_index]
    })
    .await;

    let eval: Evaluation = serde_json::from_value(json!({
        "ID": "e1", "Namespace": "default", "JobID": "web", "Type": "service", "TriggeredBy": "job-register",
        "Priority": 50, "Status": "blocked", "JobModifyIndex": 42, "Wait": 5_000_000_000i64,
        "FailedTGAllocs": {"web": {"NodesEvaluated": 2, "DimensionExhausted": {"memory": 2}}},
        "QueuedAllocations": {"web": 1}, "ClassEligibility": {"v1:123": true}
    }))
    .unwrap();
    assert_eq!(eval.job_modify_index, 42);
    assert_round_trip(&db, &ks, eval, keys::eval("default", "e1"), |e| vec![&mut e.create_index, &mut e.modify_index])
        .await;

    let deployment: Deployment = serde_json::from_value(json!({
        "ID": "d1", "Namespace": "default", "JobID": "web", "JobVersion": 3, "JobModifyIndex": 40,
        "Status": "running", "StatusDescription": "Deployment is running",
        "TaskGroups": {"web": {"AutoRevert": true, "ProgressDeadline": 600_000_000_000i64,
            "PlacedCanaries": ["a1"], "DesiredCanaries": 1, "DesiredTotal": 3}}
    }))
    .unwrap();
    assert_round_trip(&db, &ks, deployment, keys::deployment("default", "d1"), |d| {
        vec![&mut d.create_index, &mut d.modify_index]
    })
    .await;

    let node: Node = serde_json::from_value(json!({
        "ID": "n1", "SecretID": "s", "Datacenter": "dc1", "Name": "node-1", "NodePool": "default",
        "Attributes": {"kernel.name": "linux", "cpu.arch": "amd64"}, "Status": "ready",
        "SchedulingEligibility": "eligible",
        "NodeResources": {"Cpu": {"CpuShares": 4000, "TotalCpuCores": 4}, "Memory": {"MemoryMB": 8192},
            "Disk": {"DiskMB": 100000}, "MinDynamicPort": 20000, "MaxDynamicPort": 32000},
        "Drivers": {"mock": {"Detected": true, "Healthy": true}},
        "Events": [{"Message": "Node registered", "Subsystem": "Cluster", "CreateIndex": 3}],
        "DrainStrategy": {"Deadline": -1_000_000_000i64, "IgnoreSystemJobs": true}
    }))
    .unwrap();
    assert_round_trip(&db, &ks, node, keys::node("n1"), |n| vec![&mut n.create_index, &mut n.modify_index]).await;

    let policy = AclPolicy {
        name: "readonly".into(),
        description: "read everything".into(),
        rules: "namespace \"*\" { policy = \"read\" }".into(),
        ..AclPolicy::default()
    };
    assert_round_trip(&db, &ks, policy, keys::acl_policy("readonly"), |p| {
        vec![&mut p.create_index, &mut p.modify_index]
    })
    .await;

    let token: AclToken = serde_json::from_value(json!({
        "AccessorID": "acc", "SecretID": "sec", "Name": "ops", "Type": "client", "Policies": ["readonly"],
        "CreateTime": "2024-01-01T00:00:00Z", "ExpirationTime": "2024-02-01T00:00:00Z",
        "ExpirationTTL": 3_600_000_000_000i64
    }))
    .unwrap();
    assert_round_trip(&db, &ks, token, keys::acl_token("acc"), |t| vec![&mut t.create_index, &mut t.modify_index])
        .await;

    let namespace = Namespace {
        name: "prod".into(),
        description: "production".into(),
        meta: [("team".to_string(), "ops".to_string())].into(),
        capabilities: Some(json!({"EnabledTaskDrivers": ["docker"]})),
        ..Namespace::default()
    };
    assert_round_trip(&db, &ks, namespace, keys::namespace("prod"), |n| vec![&mut n.create_index, &mut n.modify_index])
        .await;

    let variable = Variable {
        namespace: "prod".into(),
        path: "nomad/jobs/web/db".into(),
        items: [("password".to_string(), "hunter2".to_string())].into(),
        create_time: 1,
        modify_time: 2,
        ..Variable::default()
    };
    assert_round_trip(&db, &ks, variable, keys::variable("prod", "nomad/jobs/web/db"), |v| {
        vec![&mut v.create_index, &mut v.modify_index]
    })
    .await;

    let service = ServiceRegistration {
        id: "_nomad-task-a1-server-api-http".into(),
        service_name: "api".into(),
        namespace: "default".into(),
        node_id: "n1".into(),
        datacenter: "dc1".into(),
        job_id: "web".into(),
        alloc_id: "a1".into(),
        tags: vec!["v1".into()],
        address: "10.0.0.1".into(),
        port: 25000,
        ..ServiceRegistration::default()
    };
    assert_round_trip(
        &db,
        &ks,
        service,
        keys::service_registration("default", "_nomad-task-a1-server-api-http"),
        |s| vec![&mut s.create_index, &mut s.modify_index],
    )
    .await;
}
