//! HCL2 variables and locals: precedence, types, validation, required values, cycles.

mod common;

use common::FakeEnv;
use serde_json::{Value, json};
use stead_jobspec::{JobspecErrors, VarInputs, parse_hcl};

const JOB: &str = r#"
job "j" {
  meta {
    v = jsonencode(var.v)
  }
  group "g" {
    task "t" {
      driver = "raw_exec"
    }
  }
}
"#;

/// Parses `decls` + a job whose meta `v` holds `jsonencode(var.v)`, returning `var.v`.
fn value_of(decls: &str, vars: &VarInputs, env: &FakeEnv) -> Result<Value, JobspecErrors> {
    let src = format!("{decls}\n{JOB}");
    let out = parse_hcl(&src, "vars.nomad.hcl", vars, env)?;
    let text = out["Job"]["Meta"]["v"].as_str().expect("meta v is a string").to_string();
    Ok(serde_json::from_str(&text).expect("jsonencode output is JSON"))
}

fn err_text(decls: &str, vars: &VarInputs, env: &FakeEnv) -> String {
    match value_of(decls, vars, env) {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e.to_string(),
    }
}

const STRING_VAR: &str = r#"variable "v" {
  type    = string
  default = "default"
}"#;

#[test]
fn default_is_used_without_inputs() {
    assert_eq!(value_of(STRING_VAR, &VarInputs::new(), &FakeEnv::new()).unwrap(), json!("default"));
}

#[test]
fn env_var_overrides_default() {
    let env = FakeEnv::new().var("NOMAD_VAR_v", "from-env");
    assert_eq!(value_of(STRING_VAR, &VarInputs::new(), &env).unwrap(), json!("from-env"));
}

#[test]
fn var_file_overrides_env_var() {
    let env = FakeEnv::new().var("NOMAD_VAR_v", "from-env");
    let vars = VarInputs::new().file("x.vars.hcl", "v = \"from-file\"\n");
    assert_eq!(value_of(STRING_VAR, &vars, &env).unwrap(), json!("from-file"));
}

#[test]
fn flags_and_files_apply_in_command_line_order() {
    let env = FakeEnv::new().var("NOMAD_VAR_v", "from-env");
    let file_last = VarInputs::new().flag("v", "from-flag").file("x.vars.hcl", "v = \"from-file\"");
    assert_eq!(value_of(STRING_VAR, &file_last, &env).unwrap(), json!("from-file"));
    let flag_last = VarInputs::new().file("x.vars.hcl", "v = \"from-file\"").flag("v", "from-flag");
    assert_eq!(value_of(STRING_VAR, &flag_last, &env).unwrap(), json!("from-flag"));
}

#[test]
fn json_var_file_is_accepted() {
    let vars = VarInputs::new().file("x.vars.json", r#"{"v": "from-json"}"#);
    assert_eq!(value_of(STRING_VAR, &vars, &FakeEnv::new()).unwrap(), json!("from-json"));
}

#[test]
fn flag_arg_splits_name_and_value_at_the_first_equals() {
    let vars = VarInputs::new().flag_arg("v=a=b").unwrap();
    assert_eq!(value_of(STRING_VAR, &vars, &FakeEnv::new()).unwrap(), json!("a=b"));
    assert!(VarInputs::new().flag_arg("novalue").is_err());
}

#[test]
fn typed_flags_are_read_as_hcl_and_converted() {
    let cases = [
        ("number", "42", json!(42)),
        ("bool", "true", json!(true)),
        ("list(string)", r#"["a", "b"]"#, json!(["a", "b"])),
        ("list(number)", r#"["1", 2]"#, json!([1, 2])),
        ("set(string)", r#"["b", "a", "b"]"#, json!(["a", "b"])),
        ("map(number)", r#"{a = 1, b = "2"}"#, json!({"a": 1, "b": 2})),
        (
            "object({name = string, port = number})",
            r#"{name = "x", port = "80", extra = true}"#,
            json!({"name": "x", "port": 80}),
        ),
        ("tuple([string, number])", r#"["a", 1]"#, json!(["a", 1])),
        ("any", "anything", json!("anything")),
        ("string", "[1]", json!("[1]")),
    ];
    for (ty, flag, expected) in cases {
        let decl = format!("variable \"v\" {{\n  type = {ty}\n}}");
        let got = value_of(&decl, &VarInputs::new().flag("v", flag), &FakeEnv::new())
            .unwrap_or_else(|e| panic!("type {ty}, flag {flag}: {e}"));
        assert_eq!(got, expected, "type {ty}, flag {flag}");
    }
}

#[test]
fn defaults_are_converted_to_the_declared_type() {
    let decl = r#"variable "v" {
  type    = map(string)
  default = { a = 1, b = true }
}"#;
    assert_eq!(value_of(decl, &VarInputs::new(), &FakeEnv::new()).unwrap(), json!({"a": "1", "b": "true"}));
}

#[test]
fn value_of_the_wrong_type_is_an_error_naming_the_variable_and_type() {
    let decl = "variable \"v\" {\n  type = number\n}";
    let e = err_text(decl, &VarInputs::new().flag("v", "\"abc\""), &FakeEnv::new());
    assert!(e.contains("invalid value for variable \"v\" (type number)"), "{e}");
    let obj = "variable \"v\" {\n  type = object({a = string})\n}";
    let e = err_text(obj, &VarInputs::new().flag("v", "{b = 1}"), &FakeEnv::new());
    assert!(e.contains("attribute \"a\" is required"), "{e}");
}

#[test]
fn required_variable_without_value_names_variable_and_declaration() {
    let decl = "\n\nvariable \"image\" {\n  type = string\n}\nvariable \"v\" {\n  default = 1\n}";
    let e = err_text(decl, &VarInputs::new(), &FakeEnv::new());
    assert!(
        e.starts_with("vars.nomad.hcl:3:1: variable \"image\" (declared at vars.nomad.hcl:3:1) needs a value"),
        "{e}"
    );
    assert!(e.contains("NOMAD_VAR_image"), "{e}");
}

#[test]
fn undeclared_flag_and_var_file_entries_are_errors() {
    let vars = VarInputs::new().flag("nope", "1").file("x.vars.hcl", "\nalso_nope = 2\n");
    let e = err_text(STRING_VAR, &vars, &FakeEnv::new());
    assert!(e.contains("-var nope: variable \"nope\" is set with -var but not declared"), "{e}");
    assert!(e.contains("x.vars.hcl:2:1: variable \"also_nope\" is set in this var file but not declared"), "{e}");
}

#[test]
fn validation_failure_reports_error_message_at_the_condition() {
    let decl = r#"variable "v" {
  type    = number
  default = 3
  validation {
    condition     = var.v >= 10
    error_message = "v must be at least 10."
  }
}"#;
    let e = err_text(decl, &VarInputs::new(), &FakeEnv::new());
    assert_eq!(e, "vars.nomad.hcl:5:21: invalid value for variable \"v\": v must be at least 10.");
    assert_eq!(value_of(decl, &VarInputs::new().flag("v", "12"), &FakeEnv::new()).unwrap(), json!(12));
}

#[test]
fn variables_shorthand_block_declares_defaults() {
    let decl = "variables {\n  v = [\"x\"]\n}";
    assert_eq!(value_of(decl, &VarInputs::new(), &FakeEnv::new()).unwrap(), json!(["x"]));
}

#[test]
fn locals_may_refer_to_later_locals_and_variables() {
    let decl = r#"
locals {
  a = "${local.b}-a"
}
locals {
  b = upper(var.base)
}
variable "base" {
  default = "x"
}
variable "v" {
  default = "unused"
}"#;
    let src = format!(
        "{decl}\njob \"j\" {{\n  name = local.a\n  group \"g\" {{\n    task \"t\" {{ driver = \"exec\" }}\n  }}\n}}\n"
    );
    let out = parse_hcl(&src, "l.nomad.hcl", &VarInputs::new(), &FakeEnv::new()).unwrap();
    assert_eq!(out["Job"]["Name"], json!("X-a"));
}

#[test]
fn local_cycle_is_reported_with_its_members() {
    let src = "locals {\n  a = local.b\n  b = local.c\n  c = local.a\n}\njob \"j\" {\n  group \"g\" {\n    task \"t\" { driver = \"exec\" }\n  }\n}\n";
    let e = parse_hcl(src, "c.nomad.hcl", &VarInputs::new(), &FakeEnv::new()).unwrap_err();
    assert_eq!(e.errors.len(), 1, "{e}");
    assert!(e.errors[0].message.contains("cycle: local.a -> local.b -> local.c -> local.a"), "{e}");
    assert_eq!((e.errors[0].line, e.errors[0].column), (2, 7));
}

#[test]
fn unknown_variable_reference_is_an_error_at_its_position() {
    let src = "job \"j\" {\n  name = var.missing\n  group \"g\" {\n    task \"t\" { driver = \"exec\" }\n  }\n}\n";
    let e = parse_hcl(src, "u.nomad.hcl", &VarInputs::new(), &FakeEnv::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "u.nomad.hcl:2:10: reference to undeclared input variable \"missing\"; declare it with a variable \"missing\" block"
    );
}
