//! python-nomad, the Python client many Nomad users script with, against a real `stead
//! agent -dev`: register, list, read, plan, versions, evaluations, parse, a rejected job,
//! deregister with purge (`tests/python_nomad.py` says what it checks).
//!
//! The package comes from PyPI into a virtualenv of the test's own (kept in the target
//! directory between runs). Without Python or PyPI the test says so and passes, except
//! under CI (`CI=true`), where it fails instead.
#![cfg(not(madsim))]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Agent, job_json};

const PACKAGE: &str = "python-nomad==2.1.0";

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The virtualenv's python with python-nomad installed, or why there is none.
fn python_with_nomad() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-nomad-venv");
    let python = venv.join("bin/python");
    let has_nomad =
        |python: &Path| Command::new(python).args(["-c", "import nomad"]).output().is_ok_and(|o| o.status.success());
    if has_nomad(&python) {
        return Ok(python);
    }
    let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).output().map_err(|e| format!("python3: {e}"))?;
    if !made.status.success() {
        return Err(format!("python3 -m venv: {}", String::from_utf8_lossy(&made.stderr)));
    }
    let pip = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", PACKAGE])
        .output()
        .map_err(|e| format!("pip: {e}"))?;
    if !pip.status.success() || !has_nomad(&python) {
        return Err(format!("pip install {PACKAGE}: {}", String::from_utf8_lossy(&pip.stderr)));
    }
    Ok(python)
}

#[test]
fn python_nomad_registers_lists_reads_plans_versions_and_deregisters_a_job() {
    let python = match python_with_nomad() {
        Ok(p) => p,
        Err(why) if !under_ci() => {
            eprintln!("skipped: no python-nomad ({why})");
            return;
        }
        Err(why) => panic!("python-nomad is needed under CI: {why}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let job_file = dir.path().join("example.json");
    std::fs::write(&job_file, job_json("example")).unwrap();
    let agent = Agent::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python_nomad.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(format!("http://{}", agent.addr))
        .arg(&job_file)
        .output()
        .expect("python runs");
    let (status, _) = agent.interrupt();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "ok");
    assert!(status.success());
}
