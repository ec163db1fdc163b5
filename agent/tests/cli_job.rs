//! The `stead job` commands as a user runs them: the real binary, real files, stdin, exit
//! codes and output.
#![cfg(not(madsim))]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn stead(args: &[&str], dir: &std::path::Path, stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stead"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the stead binary starts");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_writes_an_example_that_validates_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = stead(&["job", "init"], dir.path(), None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("example.nomad.hcl").exists());
    let again = stead(&["job", "init"], dir.path(), None);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already exists"));
    let valid = stead(&["job", "validate", "example.nomad.hcl"], dir.path(), None);
    assert_eq!(text(&valid.stdout).trim(), "Job validation successful");
    assert!(valid.status.success());
}

#[test]
fn run_output_prints_the_defaulted_api_json_and_honours_variables() {
    let dir = tempfile::tempdir().unwrap();
    stead(&["job", "init"], dir.path(), None);
    let out = stead(&["job", "run", "-output", "-var", "environment=prod", "example.nomad.hcl"], dir.path(), None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let job = &json["Job"];
    assert_eq!(job["ID"], "example");
    assert_eq!(job["Priority"], 50, "defaults are applied");
    assert_eq!(job["TaskGroups"][0]["Count"], 3, "-var chose prod");
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Env"]["REDIS_PORT"], "${NOMAD_PORT_db}",
        "runtime values stay as written"
    );
    // The JSON it prints is itself a job file.
    let again = stead(&["job", "run", "-output", "-"], dir.path(), Some(&text(&out.stdout)));
    assert!(again.status.success(), "{}", text(&again.stderr));
    let twice: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(twice, json, "decode → canonicalize → encode is a fixed point");
}

#[test]
fn validate_reports_errors_with_exit_code_1_and_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let typo =
        stead(&["job", "validate", "-"], dir.path(), Some("job \"x\" {\n  group \"g\" {\n    cuont = 1\n  }\n}\n"));
    assert_eq!(typo.status.code(), Some(1));
    assert!(text(&typo.stderr).contains("<stdin>:3:5"), "{}", text(&typo.stderr));
    let invalid =
        "job \"x\" {\n  group \"g\" {\n    count = -1\n    task \"t\" {\n      driver = \"exec\"\n    }\n  }\n}\n";
    let out = stead(&["job", "validate", "-"], dir.path(), Some(invalid));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("<stdin>:3:5: TaskGroups[0].Count"), "{}", text(&out.stdout));
    let missing = stead(&["job", "validate", "nope.hcl"], dir.path(), None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("nope.hcl"));
}

#[test]
fn run_without_output_says_it_needs_a_server() {
    let dir = tempfile::tempdir().unwrap();
    stead(&["job", "init"], dir.path(), None);
    let out = stead(&["job", "run", "example.nomad.hcl"], dir.path(), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("-output"));
}
