//! The scheduler core is pure: its dependency tree holds no async runtime, no store engine,
//! no simulator and no global randomness, and its source reads no clock. Time and
//! randomness come in as arguments, which is what lets the same core run in the worker,
//! in `job plan`, in benchmarks and under the simulator with the same answers.

use std::process::Command;

const FORBIDDEN_CRATES: &[&str] = &["tokio", "madsim", "stead-store", "fjall", "foundationdb", "rand", "getrandom"];
const FORBIDDEN_CALLS: &[&str] = &["Instant::now", "SystemTime::now", "thread_rng", "rand::", "tokio::", "std::thread"];

#[test]
fn the_core_depends_on_no_runtime_store_or_randomness_crate() {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-p", "stead-sched", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains(&"stead-model"), "the tree was read: {crates:?}");
    for forbidden in FORBIDDEN_CRATES {
        assert!(!crates.contains(forbidden), "stead-sched depends on {forbidden}:\n{tree}");
    }
}

#[test]
fn the_core_source_reads_no_clock_and_no_global_randomness() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for call in FORBIDDEN_CALLS {
                    assert!(!text.contains(call), "{} uses {call}", path.display());
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 2, "the sources were read");
}
