//! Every fixture job file goes all the way: HCL → API JSON → `stead_model::Job` →
//! canonicalize → validate (valid, except the every-block fixture's two combinations
//! Nomad refuses), and the canonical job survives a JSON round trip unchanged.
//! This is where the HCL front end and the record types must agree on Nomad's shapes.

mod common;

use common::{FakeEnv, fixture, parse_fixture};
use stead_jobspec::VarInputs;
use stead_model::{self as model, Job};

fn record(name: &str, vars: &VarInputs) -> Job {
    let value = parse_fixture(name, vars, &FakeEnv::new()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let job = value.get("Job").cloned().unwrap_or_else(|| panic!("{name}: no Job"));
    let mut job: Job = model::from_api_value(job).unwrap_or_else(|e| panic!("{name}: decoding the record: {e}"));
    job.canonicalize();
    job
}

#[test]
fn every_fixture_decodes_into_a_valid_canonical_job_record() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".nomad.hcl"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "the fixtures are there: {names:?}");
    let (prod_path, prod_vars) = fixture("prod.vars.hcl");
    for name in &names {
        // Fixtures with a required variable get it as the other tests give it.
        let variants = if name == "env_select.nomad.hcl" {
            vec![
                VarInputs::default().flag("image_tag", "1.2.3"),
                VarInputs::default().file(prod_path.clone(), prod_vars.clone()).flag("image_tag", "1.2.3"),
            ]
        } else {
            vec![VarInputs::default()]
        };
        for vars in &variants {
            let job = record(name, vars);
            let errors: Vec<String> = job.validate().err().unwrap_or_default().iter().map(|e| e.to_string()).collect();
            if name == "every_block.nomad.hcl" {
                // It sets every block, including combinations Nomad refuses; exactly those.
                assert_eq!(
                    errors,
                    [
                        "TaskGroups[0].Services: all services of a task group (and its tasks) must use the same provider",
                        "TaskGroups[0].Tasks[0].Templates[0].Envvars: env templates cannot use change_mode \"signal\"",
                    ],
                    "{name}"
                );
            } else {
                assert!(errors.is_empty(), "{name}: {}", errors.join("\n"));
            }
            let json = model::job_to_api_json(&job);
            let mut again = model::job_from_api_json(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
            again.canonicalize();
            assert_eq!(
                serde_json::to_value(&again).unwrap(),
                serde_json::to_value(&job).unwrap(),
                "{name}: the canonical job is a fixed point of encode → decode → canonicalize"
            );
        }
    }
}
