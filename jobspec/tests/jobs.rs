//! Whole job files compared with Nomad API JSON golden files in tests/fixtures/.

mod common;

use common::{FakeEnv, check_golden, fixture, parse_fixture};
use serde_json::json;
use stead_jobspec::{VarInputs, parse_hcl};

fn golden(name: &str) {
    let out = parse_fixture(&format!("{name}.nomad.hcl"), &VarInputs::new(), &FakeEnv::new())
        .unwrap_or_else(|e| panic!("{name} should parse:\n{e}"));
    check_golden(&format!("{name}.json"), &out);
}

#[test]
fn every_block_maps_to_nomad_api_field_names() {
    golden("every_block");
}

#[test]
fn periodic_batch_job_gets_cron_spec_type() {
    golden("batch_periodic");
}

#[test]
fn parameterized_job_and_dispatch_payload() {
    golden("dispatch");
}

#[test]
fn dynamic_blocks_expand_ports_checks_and_tasks() {
    golden("dynamic");
}

#[test]
fn runtime_interpolations_pass_through_as_written() {
    golden("runtime_interp");
}

#[test]
fn heredoc_templates_keep_consul_template_syntax_and_apply_directives() {
    golden("heredoc");
}

#[test]
fn rolling_update_block_at_job_level() {
    golden("update_rolling");
}

#[test]
fn canary_update_block_at_group_level() {
    golden("update_canary");
}

#[test]
fn blue_green_update_uses_count_canaries() {
    golden("update_bluegreen");
}

#[test]
fn lifecycle_init_sidecar_poststart_and_cleanup_tasks() {
    golden("lifecycle");
}

#[test]
fn dev_settings_come_from_defaults_and_the_env_var() {
    let env = FakeEnv::new().var("NOMAD_VAR_image_tag", "1.0.0-dev");
    let out = parse_fixture("env_select.nomad.hcl", &VarInputs::new(), &env).expect("dev parses");
    check_golden("env_select.dev.json", &out);
}

#[test]
fn prod_settings_come_from_a_var_file() {
    let (_, vars) = fixture("prod.vars.hcl");
    let inputs = VarInputs::new().file("prod.vars.hcl", vars);
    let out = parse_fixture("env_select.nomad.hcl", &inputs, &FakeEnv::new()).expect("prod parses");
    check_golden("env_select.prod.json", &out);
}

#[test]
fn prod_with_extra_datacenters_from_a_list_flag() {
    let inputs = VarInputs::new().flag("environment", "prod").flag("image_tag", "3").flag("extra_dcs", r#"["us-1"]"#);
    let out = parse_fixture("env_select.nomad.hcl", &inputs, &FakeEnv::new()).expect("parses");
    assert_eq!(out["Job"]["Datacenters"], json!(["eu-1", "eu-2", "us-1"]));
    assert_eq!(out["Job"]["TaskGroups"][0]["Count"], json!(5));
    assert_eq!(out["Job"]["TaskGroups"][0]["Tasks"][0]["Config"]["image"], json!("registry.example/web:3"));
}

#[test]
fn minimal_job_gets_id_and_name_only() {
    let src = r#"job "m" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config { command = "true" }
    }
  }
}"#;
    let out = parse_hcl(src, "m.nomad.hcl", &VarInputs::new(), &FakeEnv::new()).expect("parses");
    assert_eq!(
        out,
        json!({"Job": {"ID": "m", "Name": "m", "TaskGroups": [
            {"Name": "g", "Tasks": [{"Name": "t", "Driver": "raw_exec", "Config": {"command": "true"}}]}
        ]}})
    );
}

#[test]
fn connect_ui_multiregion_actions_numa_and_task_scaling() {
    golden("less_common_blocks");
}

#[test]
fn file_and_fileset_resolve_against_the_job_files_directory() {
    let env = FakeEnv::new()
        .file("/srv/jobs/conf/app.tmpl", "port={{ env \"NOMAD_PORT_http\" }}\n")
        .file("/srv/jobs/conf/extra.tmpl", "x")
        .file("/srv/jobs/conf/readme.md", "y");
    let src = r#"job "f" {
  meta {
    templates = join(",", fileset("conf", "*.tmpl"))
  }
  group "g" {
    task "t" {
      driver = "exec"
      template {
        data        = file("conf/app.tmpl")
        destination = "local/app.conf"
      }
    }
  }
}"#;
    let out = parse_hcl(src, "/srv/jobs/f.nomad.hcl", &VarInputs::new(), &env).expect("parses");
    assert_eq!(out["Job"]["Meta"]["templates"], json!("app.tmpl,extra.tmpl"));
    assert_eq!(
        out["Job"]["TaskGroups"][0]["Tasks"][0]["Templates"][0]["EmbeddedTmpl"],
        json!("port={{ env \"NOMAD_PORT_http\" }}\n")
    );
}

#[test]
fn job_and_group_vault_blocks_are_copied_into_tasks_without_one() {
    let src = r#"job "v" {
  vault {
    role = "job-role"
  }
  group "a" {
    task "inherits" { driver = "exec" }
    task "own" {
      driver = "exec"
      vault { role = "task-role" }
    }
  }
  group "b" {
    vault { role = "group-role" }
    task "from-group" { driver = "exec" }
  }
}"#;
    let out = parse_hcl(src, "v.nomad.hcl", &VarInputs::new(), &FakeEnv::new()).expect("parses");
    let groups = &out["Job"]["TaskGroups"];
    assert_eq!(groups[0]["Tasks"][0]["Vault"], json!({"Role": "job-role"}));
    assert_eq!(groups[0]["Tasks"][1]["Vault"], json!({"Role": "task-role"}));
    assert_eq!(groups[1]["Tasks"][0]["Vault"], json!({"Role": "group-role"}));
    assert!(out["Job"].get("Vault").is_none() && groups[1].get("Vault").is_none());
}
