//! A fake environment for parser tests: fixed clock, in-memory files, fixed UUIDs.

#![allow(dead_code)]

use std::collections::BTreeMap;

use stead_jobspec::{Env, JobspecErrors, VarInputs, parse_hcl};

#[derive(Default)]
pub struct FakeEnv {
    pub vars: BTreeMap<String, String>,
    pub files: BTreeMap<String, String>,
    /// Unix nanoseconds returned by the clock: 2026-11-25T10:30:00Z.
    pub now: i128,
}

impl FakeEnv {
    pub fn new() -> Self {
        FakeEnv { now: 1_795_602_600_000_000_000, ..Default::default() }
    }

    pub fn var(mut self, k: &str, v: &str) -> Self {
        self.vars.insert(k.into(), v.into());
        self
    }

    pub fn file(mut self, path: &str, contents: &str) -> Self {
        self.files.insert(path.into(), contents.into());
        self
    }
}

impl Env for FakeEnv {
    fn env_var(&self, key: &str) -> Option<String> {
        self.vars.get(key).cloned()
    }
    fn now_unix_nanos(&self) -> i128 {
        self.now
    }
    fn read_file(&self, path: &str) -> Result<Vec<u8>, String> {
        self.files.get(path).map(|s| s.as_bytes().to_vec()).ok_or_else(|| "no such file".to_string())
    }
    fn list_files(&self, dir: &str) -> Result<Vec<String>, String> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        Ok(self.files.keys().filter_map(|k| k.strip_prefix(&prefix).map(str::to_string)).collect())
    }
    fn uuid_v4(&self) -> String {
        "6ba7b810-9dad-41d1-80b4-00c04fd430c8".into()
    }
    fn home_dir(&self) -> Option<String> {
        Some("/home/stead".into())
    }
    fn current_dir(&self) -> Option<String> {
        Some("/work".into())
    }
}

pub fn fixture(name: &str) -> (String, String) {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    (format!("fixtures/{name}"), src)
}

pub fn parse_fixture(name: &str, vars: &VarInputs, env: &FakeEnv) -> Result<serde_json::Value, JobspecErrors> {
    let (path, src) = fixture(name);
    parse_hcl(&src, &path, vars, env)
}

/// Compares with `tests/fixtures/<golden>`; `UPDATE_GOLDEN=1` rewrites the file instead.
pub fn check_golden(golden: &str, actual: &serde_json::Value) {
    let path = format!("{}/tests/fixtures/{golden}", env!("CARGO_MANIFEST_DIR"));
    let pretty = serde_json::to_string_pretty(actual).expect("serializable") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &pretty).expect("writing golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {path}: {e} (run with UPDATE_GOLDEN=1 to create it)"));
    let expected: serde_json::Value = serde_json::from_str(&expected).expect("golden file is JSON");
    assert_eq!(&expected, actual, "output differs from {golden}; actual:\n{pretty}");
}
