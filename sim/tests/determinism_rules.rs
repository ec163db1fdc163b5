//! Rules the code that runs inside the simulation must follow for a seed to replay, checked
//! on its source (they are easy to break without noticing, and a broken one shows up only
//! as a seed that does not reproduce).

use std::path::{Path, PathBuf};

/// The crates whose code runs inside the simulated cluster.
const SIMULATED: [&str; 6] = ["store", "server", "client", "rpc", "sched", "model"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// An unbiased `tokio::select!` picks its first branch from tokio's per-thread random
/// source, which is seeded from a process-wide counter rather than from madsim: the
/// same seed would take other branches. Every `select!` in simulated code says `biased;`
/// and orders its branches on purpose.
#[test]
fn every_select_in_simulated_code_is_biased() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in SIMULATED {
        sources(&root.join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 50, "found the sources ({} files)", files.len());
    let mut unbiased = Vec::new();
    let mut selects = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("//") || !line.contains("select! {") {
                continue;
            }
            selects += 1;
            let next = lines[i + 1..].iter().map(|l| l.trim()).find(|l| !l.is_empty() && !l.starts_with("//"));
            if next != Some("biased;") {
                unbiased.push(format!("{}:{}", file.display(), i + 1));
            }
        }
    }
    assert!(selects >= 5, "the scan sees the select!s ({selects})");
    assert!(unbiased.is_empty(), "select! without `biased;` in simulated code: {unbiased:#?}");
}
