//! Tests of the job model as a whole: decoding, round trips, canonicalization, validation.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

const FULL_JOB: &str = include_str!("testdata/full_job.json");

fn decode(json: &str) -> Job {
    match job_from_api_json(json) {
        Ok(job) => job,
        Err(e) => panic!("decoding failed: {e}"),
    }
}

fn minimal(job_type: &str) -> Job {
    decode(
        &json!({
            "ID": "example",
            "Type": job_type,
            "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "docker", "Config": {"image": "redis"}}]}]
        })
        .to_string(),
    )
}

// ---- Decoding and round trips ----------------------------------------------------------------

#[test]
fn full_job_round_trips_through_api_json_without_loss() {
    let job = decode(FULL_JOB);
    let encoded = job_to_api_json(&job);
    let again = decode(&encoded);
    assert_eq!(job, again);
    // And the encoding is stable.
    assert_eq!(encoded, job_to_api_json(&again));
}

#[test]
fn full_job_decodes_every_block_into_typed_fields() {
    let job = decode(FULL_JOB);
    assert_eq!(job.id.as_str(), "web");
    assert_eq!(job.job_type, Some(JobType::Batch));
    assert_eq!(job.datacenters, ["dc1", "dc2"]);
    assert_eq!(job.spreads[0].spread_target[1].percent, 30);
    assert_eq!(job.update.as_ref().and_then(|u| u.canary), Some(1));
    assert_eq!(job.periodic.as_ref().map(|p| p.specs.len()), Some(2));
    assert_eq!(job.parameterized_job.as_ref().and_then(|p| p.payload.clone()), Some(PayloadRequirement::Optional));
    assert_eq!(job.reschedule.as_ref().and_then(|r| r.delay_function.clone()), Some(DelayFunction::Constant));

    let group = &job.task_groups[0];
    assert_eq!(group.count, Some(3));
    assert_eq!(group.volumes["data"].source, "data-vol");
    assert_eq!(group.ephemeral_disk.as_ref().and_then(|d| d.size_mb), Some(500));
    assert_eq!(group.disconnect.as_ref().and_then(|d| d.lost_after), Some(Nanos::from_secs(60)));
    let net = &group.networks[0];
    assert_eq!(net.reserved_ports[0].value, 8080);
    assert_eq!(net.reserved_ports[0].host_network, "public");
    assert_eq!(net.dynamic_ports[1].to, 9000);
    assert_eq!(net.dns.as_ref().map(|d| d.servers.clone()), Some(vec!["1.1.1.1".to_owned()]));
    let check = &group.services[0].checks[0];
    assert_eq!(check.interval, Nanos::from_secs(10));
    assert_eq!(check.check_restart.as_ref().map(|r| r.limit), Some(3));
    assert_eq!(group.scaling.as_ref().and_then(|s| s.max), Some(10));

    let server = &group.tasks[0];
    assert_eq!(server.config["image"], json!("nginx:1.25"));
    assert_eq!(server.resources.as_ref().and_then(|r| r.memory_max_mb), Some(512));
    assert_eq!(server.kill_timeout, Some(Nanos::from_secs(10)));
    assert_eq!(server.log_config.as_ref().and_then(|l| l.max_files), Some(5));
    assert_eq!(server.artifacts[0].getter_options["checksum"], "sha256:abc");
    assert_eq!(server.templates[0].change_mode, Some(TemplateChangeMode::Signal));
    assert_eq!(server.templates[1].change_script.as_ref().map(|s| s.command.as_str()), Some("/bin/reload"));
    assert_eq!(server.volume_mounts[0].destination, "/data");
    assert_eq!(server.dispatch_payload.as_ref().map(|d| d.file.as_str()), Some("input.json"));
    assert!(server.leader);
    assert_eq!(group.tasks[1].lifecycle.as_ref().map(|l| l.hook.clone()), Some(LifecycleHook::Prestart));
    assert!(group.tasks[2].lifecycle.as_ref().is_some_and(|l| l.sidecar));
}

/// Every key of `input` (other than null-valued ones) appears with the same spelling at the
/// same place in `output`.
fn assert_keys_kept(input: &Value, output: &Value, path: &str) {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                if value.is_null() {
                    continue;
                }
                match b.get(key) {
                    Some(out) => assert_keys_kept(value, out, &format!("{path}.{key}")),
                    None => {
                        panic!("{path}.{key} is missing from the encoding (misspelt field name?)")
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: array length changed");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_keys_kept(x, y, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}

#[test]
fn encoding_spells_every_field_as_nomad_does() {
    // The test data uses Nomad's own spellings; a typo in a `rename` would be hidden by the
    // case-insensitive decoder but shows here as a key that changed on the way out.
    let input: Value = serde_json::from_str(FULL_JOB).unwrap();
    let output: Value = serde_json::from_str(&job_to_api_json(&decode(FULL_JOB))).unwrap();
    assert_keys_kept(&input, &output, "");
}

#[test]
fn unknown_fields_and_unmodelled_blocks_are_preserved() {
    let job = decode(FULL_JOB);
    assert_eq!(job.extra["FutureTopLevelField"], json!({"Anything": [1, 2, 3]}));
    assert_eq!(job.extra["Vault"]["Role"], json!("web"));
    assert!(job.multiregion.is_some());
    let group = &job.task_groups[0];
    assert_eq!(group.consul, Some(json!({"Namespace": "infra"})));
    assert_eq!(
        group.services[0]
            .connect
            .as_ref()
            .map(|c| c["SidecarService"]["Proxy"]["Upstreams"][0]["LocalBindPort"].clone()),
        Some(json!(5432))
    );
    let task = &group.tasks[0];
    assert_eq!(task.extra["TaskFieldFromTheFuture"], json!(42));
    assert_eq!(task.vault, Some(json!({"Role": "web-task"})));
    assert!(task.identity.is_some() && task.csi_plugin_config.is_some());

    let encoded: Value = serde_json::from_str(&job_to_api_json(&job)).unwrap();
    assert_eq!(encoded["Job"]["FutureTopLevelField"]["Anything"][2], json!(3));
    assert_eq!(encoded["Job"]["TaskGroups"][0]["Tasks"][0]["TaskFieldFromTheFuture"], json!(42));
}

#[test]
fn encoding_uses_nomad_field_names_and_integer_nanoseconds() {
    let mut job = minimal("service");
    job.canonicalize();
    let v: Value = serde_json::from_str(&job_to_api_json(&job)).unwrap();
    let task = &v["Job"]["TaskGroups"][0]["Tasks"][0];
    assert_eq!(task["KillTimeout"], json!(5_000_000_000_i64));
    assert_eq!(task["Resources"]["CPU"], json!(100));
    assert_eq!(task["Resources"]["MemoryMB"], json!(300));
    assert_eq!(task["LogConfig"]["MaxFileSizeMB"], json!(10));
    assert_eq!(v["Job"]["ID"], json!("example"));
    assert_eq!(v["Job"]["Type"], json!("service"));
}

#[test]
fn bare_job_object_and_wrapped_job_decode_alike() {
    let bare = json!({"ID": "x", "TaskGroups": []}).to_string();
    let wrapped = json!({"Job": {"ID": "x", "TaskGroups": []}, "EnforceIndex": false}).to_string();
    assert_eq!(decode(&bare), decode(&wrapped));
}

#[test]
fn keys_match_case_insensitively_like_go() {
    let job = decode(
        r#"{"job": {"id": "x", "datacenters": ["dc1"], "TYPE": "batch", "priority": 60,
        "taskgroups": [{"name": "g", "count": 2, "restartpolicy": {"attempts": 7},
          "tasks": [{"name": "t", "driver": "exec", "killtimeout": 1000000000,
                     "resources": {"cpu": 250, "memorymb": 128, "memorymaxmb": 256},
                     "config": {"Command": "/bin/true", "lowerCase": 1}, "meta": {"MiXeD": "v"},
                     "lifecycle": {"hook": "prestart"}}]}]}}"#,
    );
    assert_eq!(job.id.as_str(), "x");
    assert_eq!(job.datacenters, ["dc1"]);
    assert_eq!(job.job_type, Some(JobType::Batch));
    assert_eq!(job.priority, 60);
    let group = &job.task_groups[0];
    assert_eq!(group.count, Some(2));
    assert_eq!(group.restart_policy.as_ref().and_then(|r| r.attempts), Some(7));
    let task = &group.tasks[0];
    assert_eq!(task.kill_timeout, Some(Nanos::from_secs(1)));
    let res = task.resources.as_ref().unwrap();
    assert_eq!((res.cpu, res.memory_mb, res.memory_max_mb), (Some(250), Some(128), Some(256)));
    // User data keeps its keys exactly.
    assert_eq!(task.config.keys().collect::<Vec<_>>(), ["Command", "lowerCase"]);
    assert_eq!(task.meta["MiXeD"], "v");
    assert!(job.extra.is_empty() && task.extra.is_empty(), "no key fell through to extra");
}

#[test]
fn null_fields_decode_as_absent() {
    let job = decode(
        r#"{"ID": "x", "Constraints": null, "Meta": null, "Update": null, "Priority": null,
        "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "exec", "Env": null, "Services": null}]}]}"#,
    );
    assert!(job.constraints.is_empty() && job.meta.is_empty() && job.update.is_none());
    assert!(job.task_groups[0].tasks[0].env.is_empty());
}

#[test]
fn the_only_field_name_clash_between_records_is_cpu() {
    let mut spellings: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for sample in api_json::field_samples() {
        let Value::Object(map) = sample else { panic!("every record serialises to an object") };
        for key in map.keys() {
            spellings.entry(key.to_ascii_lowercase()).or_default().insert(key.clone());
        }
    }
    let clashes: Vec<_> = spellings.iter().filter(|(_, s)| s.len() > 1).map(|(k, _)| k.as_str()).collect();
    assert_eq!(clashes, ["cpu"], "a new clash needs a rule in api_json.rs");
}

#[test]
fn keys_differing_only_in_case_are_rejected_as_duplicates() {
    let err = job_from_api_json(r#"{"ID": "x", "TaskGroups": [{"Name": "a", "name": "b"}]}"#).unwrap_err();
    assert!(matches!(&err, JobJsonError::DuplicateField { path, .. } if path == "TaskGroups[0].Name"), "{err}");
}

#[test]
fn type_errors_name_the_field_path_line_and_column() {
    let input =
        "{\"Job\": {\n  \"ID\": \"x\",\n  \"taskgroups\": [\n    {\"Name\": \"g\", \"Count\": \"three\"}\n  ]\n}}";
    let err = job_from_api_json(input).unwrap_err();
    match &err {
        JobJsonError::Field { path, line, column, .. } => {
            assert_eq!(path, "Job.TaskGroups[0].Count");
            assert_eq!((*line, *column), (Some(4), Some(28)));
        }
        other => panic!("expected a field error, got {other:?}"),
    }
    assert!(err.to_string().contains("Job.TaskGroups[0].Count (line 4, column 28)"), "{err}");
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let err = job_from_api_json("{\n  \"ID\": \"x\",\n  oops\n}").unwrap_err();
    assert!(matches!(err, JobJsonError::Syntax { line: 3, .. }), "{err:?}");
}

#[test]
fn a_non_object_is_rejected_with_what_was_found() {
    assert_eq!(job_from_api_json("[1]").unwrap_err(), JobJsonError::NotAnObject { found: "an array" });
    assert_eq!(job_from_api_json(r#"{"Job": null}"#).unwrap_err(), JobJsonError::NotAnObject { found: "null" });
}

#[test]
fn other_records_decode_case_insensitively_too() {
    let alloc: Allocation = from_api_json(
        r#"{"id": "a1", "JobID": "web", "desiredstatus": "run", "ClientStatus": "running",
        "TaskStates": {"Server": {"state": "running", "Events": [{"Type": "Started", "Time": 5}]}},
        "AllocatedResources": {"Tasks": {"Server": {"Cpu": {"CpuShares": 500}, "Memory": {"MemoryMB": 256}}}}}"#,
    )
    .unwrap();
    assert_eq!(alloc.desired_status, AllocDesiredStatus::Run);
    assert_eq!(alloc.client_status, AllocClientStatus::Running);
    assert_eq!(alloc.task_states["Server"].state, TaskStateKind::Running);
    assert_eq!(alloc.allocated_resources.as_ref().unwrap().tasks["Server"].cpu.cpu_shares, 500);

    let node: Node = from_api_json(r#"{"ID": "n1", "Status": "ready", "SchedulingEligibility": "eligible",
        "Attributes": {"kernel.name": "linux"}, "NodeResources": {"Cpu": {"CpuShares": 4000}, "Memory": {"MemoryMB": 8192}},
        "Drivers": {"docker": {"Detected": true, "Healthy": true}}}"#)
        .unwrap();
    assert!(node.is_schedulable());
    assert_eq!(node.node_resources.as_ref().unwrap().cpu.cpu_shares, 4000);
    assert!(node.drivers["docker"].healthy);
}

#[test]
fn unknown_enum_values_survive_a_round_trip() {
    let eval: Evaluation =
        from_api_json(r#"{"ID": "e", "Type": "_core", "Status": "someday", "TriggeredBy": "job-register"}"#).unwrap();
    assert_eq!(eval.eval_type, JobType::Other("_core".into()));
    assert_eq!(eval.triggered_by, EvalTrigger::JobRegister);
    let back: Value = serde_json::to_value(&eval).unwrap();
    assert_eq!(back["Status"], json!("someday"));
}

// ---- Canonicalization ------------------------------------------------------------------------

#[test]
fn canonicalize_fills_job_level_defaults() {
    let mut job = minimal("");
    job.canonicalize();
    assert_eq!(job.name, "example");
    assert_eq!(job.region, "global");
    assert_eq!(job.namespace, "default");
    assert_eq!(job.node_pool, "default");
    assert_eq!(job.datacenters, ["*"]);
    assert_eq!(job.priority, 50);
    assert_eq!(job.job_type, Some(JobType::Service));
}

#[test]
fn canonicalize_gives_service_jobs_service_restart_reschedule_update_and_migrate() {
    let mut job = minimal("service");
    job.canonicalize();
    let g = &job.task_groups[0];
    let restart = g.restart_policy.clone().unwrap();
    assert_eq!(
        (restart.attempts, restart.interval, restart.delay),
        (Some(2), Some(Nanos::from_mins(30)), Some(Nanos::from_secs(15)))
    );
    assert_eq!(restart.mode, Some(RestartMode::Fail));
    let resched = g.reschedule_policy.clone().unwrap();
    assert_eq!(resched.delay, Some(Nanos::from_secs(30)));
    assert_eq!(resched.delay_function, Some(DelayFunction::Exponential));
    assert_eq!(resched.max_delay, Some(Nanos::from_hours(1)));
    assert_eq!(resched.unlimited, Some(true));
    assert_eq!(g.update, Some(UpdateStrategy::defaults()));
    assert_eq!(g.migrate, Some(MigrateStrategy::defaults()));
    assert_eq!(g.count, Some(1));
    assert_eq!(g.ephemeral_disk.as_ref().and_then(|d| d.size_mb), Some(300));
    let t = &g.tasks[0];
    assert_eq!(t.restart_policy, g.restart_policy);
    assert_eq!(t.kill_timeout, Some(Nanos::from_secs(5)));
    let logs = t.log_config.clone().unwrap();
    assert_eq!((logs.max_files, logs.max_file_size_mb, logs.disabled), (Some(10), Some(10), Some(false)));
    let res = t.resources.clone().unwrap();
    assert_eq!((res.cpu, res.memory_mb, res.cores), (Some(100), Some(300), Some(0)));
}

#[test]
fn canonicalize_gives_batch_jobs_batch_restart_and_reschedule_and_no_update() {
    let mut job = minimal("batch");
    job.canonicalize();
    let g = &job.task_groups[0];
    let restart = g.restart_policy.clone().unwrap();
    assert_eq!((restart.attempts, restart.interval), (Some(3), Some(Nanos::from_hours(24))));
    let resched = g.reschedule_policy.clone().unwrap();
    assert_eq!(
        (resched.attempts, resched.interval, resched.delay),
        (Some(1), Some(Nanos::from_hours(24)), Some(Nanos::from_secs(5)))
    );
    assert_eq!((resched.delay_function, resched.unlimited), (Some(DelayFunction::Constant), Some(false)));
    assert_eq!(job.update, None);
    assert_eq!(g.update, None);
    assert_eq!(g.migrate, None);
}

#[test]
fn canonicalize_never_reschedules_system_jobs() {
    for kind in ["system", "sysbatch"] {
        let mut job = minimal(kind);
        job.canonicalize();
        let resched = job.task_groups[0].reschedule_policy.clone().unwrap();
        assert_eq!((resched.attempts, resched.unlimited), (Some(0), Some(false)), "{kind}");
    }
}

#[test]
fn canonicalize_merges_partial_blocks_over_defaults_job_then_group_then_task() {
    let mut job = decode(&json!({
        "ID": "x", "Type": "service",
        "Update": {"MaxParallel": 3},
        "Reschedule": {"Delay": 60_000_000_000_i64},
        "TaskGroups": [{"Name": "g",
            "Update": {"Canary": 2},
            "RestartPolicy": {"Attempts": 9},
            "ReschedulePolicy": {"MaxDelay": 7_200_000_000_000_i64},
            "Tasks": [{"Name": "t", "Driver": "exec", "RestartPolicy": {"Mode": "delay"},
                       "Resources": {"Cores": 2},
                       "Templates": [{"EmbeddedTmpl": "x", "DestPath": "local/x", "ChangeMode": "signal", "ChangeSignal": "sighup"}]}]}]
    }).to_string());
    job.canonicalize();
    let g = &job.task_groups[0];
    let u = g.update.clone().unwrap();
    assert_eq!((u.max_parallel, u.canary, u.healthy_deadline), (Some(3), Some(2), Some(Nanos::from_mins(5))));
    let r = g.reschedule_policy.clone().unwrap();
    assert_eq!(
        (r.delay, r.max_delay, r.delay_function),
        (Some(Nanos::from_secs(60)), Some(Nanos::from_hours(2)), Some(DelayFunction::Exponential))
    );
    let gr = g.restart_policy.clone().unwrap();
    assert_eq!(
        (gr.attempts, gr.interval, gr.mode.clone()),
        (Some(9), Some(Nanos::from_mins(30)), Some(RestartMode::Fail))
    );
    let t = &g.tasks[0];
    let tr = t.restart_policy.clone().unwrap();
    assert_eq!((tr.attempts, tr.mode), (Some(9), Some(RestartMode::Delay)));
    let res = t.resources.clone().unwrap();
    assert_eq!((res.cpu, res.cores), (Some(0), Some(2)), "cores exclude the CPU default");
    let tpl = &t.templates[0];
    assert_eq!(
        (tpl.change_signal.as_str(), tpl.splay, tpl.perms.as_str()),
        ("SIGHUP", Some(Nanos::from_secs(5)), "0644")
    );
}

#[test]
fn canonicalize_takes_count_from_scaling_min_and_scaling_min_from_count() {
    let mut job = decode(
        r#"{"ID": "x", "TaskGroups": [
        {"Name": "a", "Scaling": {"Min": 4, "Max": 9}, "Tasks": [{"Name": "t", "Driver": "exec"}]},
        {"Name": "b", "Count": 2, "Scaling": {"Max": 9}, "Tasks": [{"Name": "t", "Driver": "exec"}]},
        {"Name": "c", "Count": 0, "Tasks": [{"Name": "t", "Driver": "exec"}]}]}"#,
    );
    job.canonicalize();
    assert_eq!(job.task_groups[0].count, Some(4));
    assert_eq!(job.task_groups[1].scaling.as_ref().and_then(|s| s.min), Some(2));
    assert_eq!(job.task_groups[2].count, Some(0), "an explicit 0 stays 0");
}

/// Jobs that exercise every canonicalization path, for the idempotence table.
fn idempotence_cases() -> Vec<Job> {
    let mut cases = vec![decode(FULL_JOB)];
    for kind in ["", "service", "batch", "system", "sysbatch", "unknown-kind"] {
        cases.push(minimal(kind));
        let mut with_blocks = decode(FULL_JOB);
        with_blocks.job_type = if kind.is_empty() { None } else { Some(JobType::from(kind)) };
        cases.push(with_blocks.clone());
        with_blocks.update = Some(UpdateStrategy::default());
        with_blocks.migrate = None;
        with_blocks.reschedule = None;
        for g in &mut with_blocks.task_groups {
            g.count = None;
            g.update = None;
            g.restart_policy = None;
            for t in &mut g.tasks {
                t.resources = None;
                t.restart_policy = Some(RestartPolicy { attempts: Some(1), ..RestartPolicy::default() });
            }
        }
        cases.push(with_blocks);
    }
    cases
}

#[test]
fn canonicalize_is_idempotent() {
    for (i, mut job) in idempotence_cases().into_iter().enumerate() {
        job.canonicalize();
        let once = job.clone();
        job.canonicalize();
        assert_eq!(job, once, "case {i}: a second canonicalize changed the job");
    }
}

#[test]
fn canonicalized_job_survives_a_round_trip() {
    for mut job in idempotence_cases() {
        job.canonicalize();
        assert_eq!(decode(&job_to_api_json(&job)), job);
    }
}

// ---- Validation ------------------------------------------------------------------------------

fn errors_of(job: &Job) -> Vec<(String, String)> {
    match job.validate() {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_iter().map(|e| (e.path, e.message)).collect(),
    }
}

#[test]
fn full_job_and_minimal_jobs_validate_after_canonicalize() {
    // The full job is a batch job (periodic and parameterized need that), so its update
    // blocks are the only thing Nomad would refuse.
    let mut full = decode(FULL_JOB);
    full.canonicalize();
    let paths: Vec<String> = errors_of(&full).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["Update", "TaskGroups[0].Update"]);
    full.update = None;
    full.task_groups[0].update = None;
    assert_eq!(errors_of(&full), Vec::<(String, String)>::new());
    for kind in ["service", "batch", "system", "sysbatch"] {
        let mut job = minimal(kind);
        job.canonicalize();
        assert_eq!(errors_of(&job), Vec::<(String, String)>::new(), "{kind}");
    }
}

#[test]
fn validation_reports_every_error_at_once_with_paths() {
    let job = decode(
        &json!({
            "ID": "",
            "Type": "cron-ish",
            "TaskGroups": [
                {"Name": "g", "Count": -1, "Tasks": [
                    {"Name": "a", "Driver": "", "Lifecycle": {"Hook": "prestart"}},
                    {"Name": "b", "Driver": "exec", "Lifecycle": {"Hook": "sometimes"}}]},
                {"Name": "g", "Tasks": []}
            ]
        })
        .to_string(),
    );
    let paths: Vec<String> = errors_of(&job).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "ID",
            "Name",
            "Type",
            "TaskGroups[0].Count",
            "TaskGroups[0].Tasks",
            "TaskGroups[0].Tasks[0].Driver",
            "TaskGroups[0].Tasks[1].Lifecycle.Hook",
            "TaskGroups[1].Name",
            "TaskGroups[1].Tasks",
        ]
    );
}

/// One rule per row: a change to a valid canonical job, and the (path, message fragment) it must
/// produce.
fn check_rule(mutate: impl FnOnce(&mut Job), path: &str, fragment: &str) {
    let mut job = minimal("service");
    job.canonicalize();
    mutate(&mut job);
    let errors = errors_of(&job);
    assert!(
        errors.iter().any(|(p, m)| p == path && m.contains(fragment)),
        "expected {path}: …{fragment}…, got {errors:#?}"
    );
}

fn task(job: &mut Job) -> &mut Task {
    &mut job.task_groups[0].tasks[0]
}

#[test]
fn validation_rules_table() {
    check_rule(|j| j.priority = 101, "Priority", "between 1 and 100");
    check_rule(
        |j| task(j).lifecycle = Some(Lifecycle { hook: LifecycleHook::Poststop, sidecar: true, ..Default::default() }),
        "TaskGroups[0].Tasks[0].Lifecycle.Sidecar",
        "poststop",
    );
    check_rule(
        |j| task(j).lifecycle = Some(Lifecycle::default()),
        "TaskGroups[0].Tasks[0].Lifecycle.Hook",
        "needs a hook",
    );
    check_rule(
        |j| task(j).lifecycle = Some(Lifecycle { hook: LifecycleHook::Prestart, ..Default::default() }),
        "TaskGroups[0].Tasks",
        "main task",
    );
    check_rule(
        |j| {
            let copy = j.task_groups[0].tasks[0].clone();
            j.task_groups[0].tasks.push(copy);
        },
        "TaskGroups[0].Tasks[1].Name",
        "also used by Tasks[0]",
    );
    check_rule(
        |j| j.task_groups[0].update.as_mut().unwrap().auto_promote = Some(true),
        "TaskGroups[0].Update.AutoPromote",
        "canary",
    );
    check_rule(
        |j| j.task_groups[0].update.as_mut().unwrap().max_parallel = Some(-1),
        "TaskGroups[0].Update.MaxParallel",
        "0 or more",
    );
    check_rule(
        |j| {
            let u = j.task_groups[0].update.as_mut().unwrap();
            u.canary = Some(2);
            u.max_parallel = Some(0);
        },
        "TaskGroups[0].Update.Canary",
        "max_parallel",
    );
    check_rule(
        |j| j.task_groups[0].update.as_mut().unwrap().health_check = Some(HealthCheckMode::from("vibes")),
        "TaskGroups[0].Update.HealthCheck",
        "\"checks\"",
    );
    check_rule(
        |j| {
            task(j).templates.push(Template {
                embedded_tmpl: "x".into(),
                dest_path: "local/x".into(),
                change_mode: Some(TemplateChangeMode::Signal),
                ..Default::default()
            })
        },
        "TaskGroups[0].Tasks[0].Templates[0].ChangeSignal",
        "change_signal",
    );
    check_rule(
        |j| {
            task(j).templates.push(Template {
                embedded_tmpl: "x".into(),
                dest_path: "local/x".into(),
                change_mode: Some(TemplateChangeMode::from("reboot")),
                ..Default::default()
            })
        },
        "TaskGroups[0].Tasks[0].Templates[0].ChangeMode",
        "\"noop\"",
    );
    check_rule(
        |j| task(j).templates.push(Template { dest_path: "local/x".into(), ..Default::default() }),
        "TaskGroups[0].Tasks[0].Templates[0]",
        "source or data",
    );
    check_rule(
        |j| task(j).resources.as_mut().unwrap().cpu = Some(0),
        "TaskGroups[0].Tasks[0].Resources.CPU",
        "at least 1 MHz",
    );
    check_rule(
        |j| task(j).resources.as_mut().unwrap().memory_mb = Some(5),
        "TaskGroups[0].Tasks[0].Resources.MemoryMB",
        "at least 10 MB",
    );
    check_rule(
        |j| task(j).resources.as_mut().unwrap().memory_max_mb = Some(100),
        "TaskGroups[0].Tasks[0].Resources.MemoryMaxMB",
        "at least memory",
    );
    check_rule(
        |j| {
            j.task_groups[0].networks.push(NetworkResource {
                reserved_ports: vec![Port { label: "http".into(), value: 70000, ..Default::default() }],
                dynamic_ports: vec![Port { label: "http".into(), ..Default::default() }],
                ..Default::default()
            });
        },
        "TaskGroups[0].Networks[0].ReservedPorts[0].Value",
        "between 1 and 65535",
    );
    check_rule(
        |j| {
            j.task_groups[0].networks.push(NetworkResource {
                dynamic_ports: vec![
                    Port { label: "http".into(), ..Default::default() },
                    Port { label: "http".into(), ..Default::default() },
                ],
                ..Default::default()
            });
        },
        "TaskGroups[0].Networks[0].DynamicPorts[1].Label",
        "also used by",
    );
    check_rule(
        |j| {
            j.task_groups[0].networks.push(NetworkResource {
                reserved_ports: vec![
                    Port { label: "a".into(), value: 80, ..Default::default() },
                    Port { label: "b".into(), value: 80, ..Default::default() },
                ],
                ..Default::default()
            });
        },
        "TaskGroups[0].Networks[0].ReservedPorts[1].Value",
        "also reserved by",
    );
    check_rule(
        |j| {
            j.job_type = Some(JobType::Batch);
            j.periodic = Some(PeriodicConfig { specs: vec!["61 * * * *".into()], ..Default::default() });
        },
        "Periodic.Specs[0]",
        "invalid cron expression",
    );
    check_rule(
        |j| j.periodic = Some(PeriodicConfig { specs: vec!["@daily".into()], ..Default::default() }),
        "Periodic",
        "only allowed for batch and sysbatch",
    );
    check_rule(
        |j| j.parameterized_job = Some(ParameterizedJobConfig::default()),
        "ParameterizedJob",
        "batch and sysbatch",
    );
    check_rule(
        |j| {
            j.job_type = Some(JobType::Batch);
            j.parameterized_job =
                Some(ParameterizedJobConfig { payload: Some(PayloadRequirement::from("maybe")), ..Default::default() });
        },
        "ParameterizedJob.Payload",
        "\"optional\", \"required\", \"forbidden\"",
    );
    check_rule(
        |j| task(j).dispatch_payload = Some(DispatchPayloadConfig { file: "in".into(), ..Default::default() }),
        "TaskGroups[0].Tasks[0].DispatchPayload",
        "parameterized",
    );
    check_rule(
        |j| j.task_groups[0].restart_policy.as_mut().unwrap().mode = Some(RestartMode::from("retry")),
        "TaskGroups[0].RestartPolicy.Mode",
        "\"fail\", \"delay\"",
    );
    check_rule(
        |j| j.task_groups[0].restart_policy.as_mut().unwrap().attempts = Some(200),
        "TaskGroups[0].RestartPolicy.Interval",
        "do not fit",
    );
    check_rule(
        |j| j.task_groups[0].reschedule_policy.as_mut().unwrap().delay = Some(Nanos::from_secs(1)),
        "TaskGroups[0].ReschedulePolicy.Delay",
        "at least 5s",
    );
    check_rule(
        |j| j.task_groups[0].reschedule_policy.as_mut().unwrap().delay_function = Some(DelayFunction::from("linear")),
        "TaskGroups[0].ReschedulePolicy.DelayFunction",
        "\"constant\"",
    );
    check_rule(
        |j| {
            task(j).volume_mounts.push(VolumeMount {
                volume: "nope".into(),
                destination: "/d".into(),
                ..Default::default()
            })
        },
        "TaskGroups[0].Tasks[0].VolumeMounts[0].Volume",
        "not declared",
    );
    check_rule(
        |j| j.task_groups[0].scaling = Some(ScalingPolicy { min: Some(2), max: Some(5), ..Default::default() }),
        "TaskGroups[0].Count",
        "outside the scaling range",
    );
    check_rule(
        |j| {
            j.constraints.push(Constraint {
                l_target: "a".into(),
                r_target: "b".into(),
                operand: "~=".into(),
                ..Default::default()
            })
        },
        "Constraints[0].Operand",
        "unknown constraint operator",
    );
    check_rule(
        |j| task(j).constraints.push(Constraint { operand: "distinct_hosts".into(), ..Default::default() }),
        "TaskGroups[0].Tasks[0].Constraints[0].Operand",
        "not allowed on tasks",
    );
    check_rule(
        |j| {
            j.affinities.push(Affinity {
                l_target: "a".into(),
                r_target: "b".into(),
                weight: Some(0),
                ..Default::default()
            })
        },
        "Affinities[0].Weight",
        "not 0",
    );
    check_rule(
        |j| {
            j.spreads.push(Spread {
                attribute: "a".into(),
                spread_target: vec![
                    SpreadTarget { value: "x".into(), percent: 80, ..Default::default() },
                    SpreadTarget { value: "y".into(), percent: 30, ..Default::default() },
                ],
                ..Default::default()
            })
        },
        "Spreads[0].SpreadTarget",
        "more than 100",
    );
    check_rule(
        |j| {
            j.task_groups[0].services.push(Service { provider: "nomad".into(), ..Default::default() });
            task(j).services.push(Service { provider: "consul".into(), ..Default::default() });
        },
        "TaskGroups[0].Services",
        "same provider",
    );
    check_rule(
        |j| {
            j.task_groups[0].services.push(Service {
                provider: "nomad".into(),
                checks: vec![ServiceCheck {
                    check_type: "grpc".into(),
                    interval: Nanos::from_secs(10),
                    timeout: Nanos::from_secs(1),
                    ..Default::default()
                }],
                ..Default::default()
            })
        },
        "TaskGroups[0].Services[0].Checks[0].Type",
        "\"http\", \"tcp\"",
    );
    check_rule(
        |j| {
            j.task_groups[0].services.push(Service {
                checks: vec![ServiceCheck {
                    check_type: "http".into(),
                    interval: Nanos::from_millis(100),
                    timeout: Nanos::from_secs(1),
                    ..Default::default()
                }],
                ..Default::default()
            })
        },
        "TaskGroups[0].Services[0].Checks[0].Interval",
        "at least 1s",
    );
    check_rule(
        |j| j.task_groups[0].ephemeral_disk.as_mut().unwrap().size_mb = Some(1),
        "TaskGroups[0].EphemeralDisk.SizeMB",
        "at least 10 MB",
    );
    check_rule(
        |j| j.task_groups[0].ephemeral_disk.as_mut().unwrap().size_mb = Some(100),
        "TaskGroups[0].Tasks[0].LogConfig",
        "log storage (100 MB)",
    );
    check_rule(
        |j| {
            j.job_type = Some(JobType::System);
            j.task_groups[0].count = Some(3);
        },
        "TaskGroups[0].Count",
        "cannot exceed 1",
    );
    check_rule(
        |j| {
            j.job_type = Some(JobType::Sysbatch);
            j.spreads.push(Spread { attribute: "a".into(), ..Default::default() });
        },
        "Spreads",
        "may not have spreads",
    );
    check_rule(|j| j.job_type = Some(JobType::Batch), "TaskGroups[0].Update", "do not allow an update block");
}

// ---- Stored encoding -------------------------------------------------------------------------

fn msgpack_round_trip<T>(value: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut bytes = Vec::new();
    rmp_serde::encode::write_named(&mut bytes, value).expect("encoding");
    rmp_serde::from_slice(&bytes).expect("decoding")
}

#[test]
fn records_round_trip_through_named_messagepack_with_unknown_fields() {
    // The store keeps records as MessagePack with named fields; `extra` (serde flatten) and
    // `serde_json::Value` blocks must survive it, not only JSON.
    let mut job = decode(FULL_JOB);
    assert_eq!(msgpack_round_trip(&job), job);
    job.canonicalize();
    assert_eq!(msgpack_round_trip(&job), job);

    let alloc = Allocation {
        id: AllocId::new("a1"),
        job: Some(Box::new(job)),
        client_status: AllocClientStatus::Running,
        desired_status: AllocDesiredStatus::Run,
        metrics: Some(AllocMetric { scores: BTreeMap::from([("binpack".to_owned(), 0.5)]), ..Default::default() }),
        extra: Extra::from([("NetworkStatusV2".to_owned(), json!({"InterfaceName": "eth0", "Neg": -3}))]),
        ..Default::default()
    };
    assert_eq!(msgpack_round_trip(&alloc), alloc);
}

// ---- Properties ------------------------------------------------------------------------------

mod properties {
    use proptest::prelude::*;

    use super::super::*;

    fn arb_nanos() -> impl Strategy<Value = Option<Nanos>> {
        prop::option::of((0i64..7200).prop_map(Nanos::from_secs))
    }

    fn arb_update() -> impl Strategy<Value = Option<UpdateStrategy>> {
        prop::option::of(
            (prop::option::of(-1i32..4), prop::option::of(0i32..3), arb_nanos(), prop::option::of(any::<bool>()))
                .prop_map(|(max_parallel, canary, healthy_deadline, auto_promote)| UpdateStrategy {
                    max_parallel,
                    canary,
                    healthy_deadline,
                    auto_promote,
                    ..Default::default()
                }),
        )
    }

    fn arb_restart() -> impl Strategy<Value = Option<RestartPolicy>> {
        prop::option::of(
            (
                prop::option::of(0i32..10),
                arb_nanos(),
                prop::option::of(prop_oneof![Just("fail"), Just("delay"), Just("")]),
            )
                .prop_map(|(attempts, delay, mode)| RestartPolicy {
                    attempts,
                    delay,
                    mode: mode.map(RestartMode::from),
                    ..Default::default()
                }),
        )
    }

    fn arb_task() -> impl Strategy<Value = Task> {
        (
            "[a-c]{1,2}",
            arb_restart(),
            prop::option::of((prop::option::of(0i32..2000), prop::option::of(0i32..3), prop::option::of(0i32..1000))),
            prop::option::of(prop_oneof![Just(""), Just("prestart"), Just("poststop"), Just("weird")]),
            prop::collection::vec(prop::option::of(prop_oneof![Just("signal"), Just("noop"), Just("")]), 0..2),
            prop::option::of((0i32..3, arb_nanos())),
        )
            .prop_map(|(name, restart_policy, resources, hook, templates, check_restart)| Task {
                name,
                driver: "exec".into(),
                restart_policy,
                resources: resources.map(|(cpu, cores, memory_mb)| Resources {
                    cpu,
                    cores,
                    memory_mb,
                    ..Default::default()
                }),
                lifecycle: hook.map(|h| Lifecycle { hook: LifecycleHook::from(h), ..Default::default() }),
                templates: templates
                    .into_iter()
                    .map(|mode| Template {
                        embedded_tmpl: "x".into(),
                        dest_path: "local/x".into(),
                        change_mode: mode.map(TemplateChangeMode::from),
                        change_signal: "sighup".into(),
                        ..Default::default()
                    })
                    .collect(),
                services: check_restart
                    .map(|(limit, grace)| Service {
                        check_restart: Some(CheckRestart { limit, grace, ..Default::default() }),
                        checks: vec![ServiceCheck { check_type: "tcp".into(), ..Default::default() }],
                        ..Default::default()
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            })
    }

    fn arb_group() -> impl Strategy<Value = TaskGroup> {
        (
            "[g-i]{1,2}",
            prop::option::of(0i32..5),
            prop::option::of((prop::option::of(0i64..5), prop::option::of(0i64..10))),
            arb_update(),
            arb_restart(),
            prop::option::of(prop::option::of(0i32..1000)),
            prop::collection::vec(arb_task(), 0..3),
        )
            .prop_map(|(name, count, scaling, update, restart_policy, disk, tasks)| TaskGroup {
                name,
                count,
                scaling: scaling.map(|(min, max)| ScalingPolicy { min, max, ..Default::default() }),
                update,
                restart_policy,
                ephemeral_disk: disk.map(|size_mb| EphemeralDisk { size_mb, ..Default::default() }),
                tasks,
                ..Default::default()
            })
    }

    fn arb_job() -> impl Strategy<Value = Job> {
        (
            prop::option::of(prop_oneof![Just(""), Just("service"), Just("batch"), Just("system"), Just("sysbatch")]),
            0i32..120,
            arb_update(),
            prop::option::of(arb_nanos().prop_map(|delay| ReschedulePolicy { delay, ..Default::default() })),
            prop::option::of(
                prop::option::of(0i32..3)
                    .prop_map(|max_parallel| MigrateStrategy { max_parallel, ..Default::default() }),
            ),
            prop::collection::vec(arb_group(), 0..3),
        )
            .prop_map(|(kind, priority, update, reschedule, migrate, task_groups)| Job {
                id: JobId::new("j"),
                job_type: kind.map(JobType::from),
                priority,
                update,
                reschedule,
                migrate,
                task_groups,
                ..Default::default()
            })
    }

    proptest! {
        #[test]
        fn canonicalize_is_idempotent_for_any_job(mut job in arb_job()) {
            job.canonicalize();
            let once = job.clone();
            job.canonicalize();
            prop_assert_eq!(job, once);
        }

        #[test]
        fn any_job_round_trips_through_api_json_before_and_after_canonicalize(mut job in arb_job()) {
            prop_assert_eq!(job_from_api_json(&job_to_api_json(&job)).unwrap(), job.clone());
            job.canonicalize();
            prop_assert_eq!(job_from_api_json(&job_to_api_json(&job)).unwrap(), job.clone());
            // Validation never panics, whatever the job.
            let _ = job.validate();
        }
    }
}

#[test]
fn job_status_is_derived_from_its_allocations_and_evaluations_as_nomad_does() {
    use crate::{AllocClientStatus, AllocDesiredStatus, Allocation, EvalStatus, Evaluation, JobStatus};
    let job = minimal("service");
    let eval = |status| Evaluation { status, ..Evaluation::default() };
    let alloc =
        |desired, client| Allocation { desired_status: desired, client_status: client, ..Allocation::default() };
    assert_eq!(job.derived_status(&[], &[]), JobStatus::Pending, "nothing yet");
    assert_eq!(job.derived_status(&[], &[eval(EvalStatus::Pending)]), JobStatus::Pending);
    let running = alloc(AllocDesiredStatus::Run, AllocClientStatus::Running);
    assert_eq!(job.derived_status(std::slice::from_ref(&running), &[eval(EvalStatus::Complete)]), JobStatus::Running);
    let pending = alloc(AllocDesiredStatus::Run, AllocClientStatus::Pending);
    assert_eq!(job.derived_status(&[pending], &[]), JobStatus::Running, "a pending allocation is not terminal");
    let done = alloc(AllocDesiredStatus::Run, AllocClientStatus::Complete);
    assert_eq!(job.derived_status(&[done], &[eval(EvalStatus::Complete)]), JobStatus::Dead, "all work done");
    let mut stopped = job.clone();
    stopped.stop = true;
    let stopping = alloc(AllocDesiredStatus::Stop, AllocClientStatus::Running);
    assert_eq!(stopped.derived_status(&[stopping], &[eval(EvalStatus::Complete)]), JobStatus::Dead);
    let system = minimal("system");
    assert_eq!(system.derived_status(&[], &[]), JobStatus::Running, "system jobs run until stopped");
}
