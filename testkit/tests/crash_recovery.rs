//! Every acknowledged commit survives kill -9 at any moment, and no partial transaction is
//! ever visible after a restart.
//!
//! The writer child (`src/bin/crash-writer.rs`) commits transactions from 16 concurrent
//! tasks and prints `ack <id> <version>` after each acknowledged commit. Each round this
//! test starts it on the same, growing data directory and SIGKILLs it at a random moment:
//! in two rounds of five while it starts (exec, store recovery, first commits), in the
//! others 0-150 ms after its first acknowledged commit. Then it reads what the writer
//! acknowledged, reopens the store itself and checks it:
//!
//! * every id ever acknowledged (in this round or an earlier one) is there;
//! * every transaction is all there or not at all: `("txn", i)`, `("a", i)` and `("b", i)`
//!   together, with their exact payloads, and `("open", i)` (which transaction `i` clears)
//!   never alongside them, and `("open", j)` (which transaction `j - 16` sets) only with
//!   transaction `j - 16`;
//! * the `("count",)` counter (an atomic add in every transaction) equals the number of
//!   transactions present;
//! * the store's version is at least every acknowledged commit version.
//!
//! A second test kills writers while they create a new store, which must then open.
//!
//! Set `CRASH_TEST_SEED` to replay a run's kill times; the seed is printed at the start.

#![cfg(not(madsim))]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stead_store::embedded::{EmbeddedOptions, open};
use stead_store::{RangeOption, ReadMode, Version, tuple};
use stead_testkit::crash::{WRITERS, count_key, payload};

const ROUNDS: usize = 25;
/// Fewer acknowledged commits over the whole run than this and the test proves nothing.
const ACKS_MIN: usize = 1000;

/// What the writer printed before it died: acknowledged (id, commit version) pairs. A
/// line cut short by the kill is not a promise and is ignored. `first_ack` hears of the
/// first one as it arrives.
fn read_acks(stdout: impl Read, first_ack: mpsc::Sender<()>) -> Vec<(u64, Version)> {
    let mut reader = BufReader::new(stdout);
    let mut acks = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return acks,
            Ok(_) if line.last() != Some(&b'\n') => return acks,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let mut words = text.split_whitespace();
                match (words.next(), words.next().map(str::parse), words.next().map(str::parse)) {
                    (Some("ack"), Some(Ok(id)), Some(Ok(version))) => acks.push((id, version)),
                    _ => panic!("the writer printed an unexpected line: {text:?}"),
                }
                if acks.len() == 1 {
                    let _ = first_ack.send(());
                }
            }
        }
    }
}

struct Writer {
    child: Child,
    acks: JoinHandle<Vec<(u64, Version)>>,
    first_ack: mpsc::Receiver<()>,
    stderr: JoinHandle<String>,
}

fn spawn_writer(dir: &Path, first: u64) -> Writer {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
        .arg(dir)
        .arg(first.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning crash-writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (first_ack_tx, first_ack) = mpsc::channel();
    let acks = std::thread::spawn(move || read_acks(stdout, first_ack_tx));
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    Writer { child, acks, first_ack, stderr }
}

/// The run's seed: `CRASH_TEST_SEED`, or the clock. Printed, so a failure can be replayed
/// (the kill times replay; where in the writer's work a kill lands still varies).
fn seed() -> u64 {
    let seed =
        std::env::var("CRASH_TEST_SEED").ok().map(|s| s.parse().expect("CRASH_TEST_SEED is a number")).unwrap_or_else(
            || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
        );
    println!("seed: {seed} (set CRASH_TEST_SEED={seed} to replay)");
    seed
}

/// What a reopened store holds, in the writer's terms.
struct Contents {
    /// Ids with all three of their keys (the checks fail on fewer).
    present: BTreeSet<u64>,
    /// Ids whose `("open", id)` key is set.
    open: BTreeSet<u64>,
    count: i64,
    version: Version,
}

/// Reopens the store, checks that every transaction in it is whole and that the counter
/// agrees, and closes it again (dropping the `Database` joins its commit thread).
fn reopen_and_check(dir: &Path, rt: &tokio::runtime::Runtime, round: usize) -> Contents {
    let db = open(&EmbeddedOptions { data_dir: Some(dir.to_path_buf()) })
        .unwrap_or_else(|e| panic!("round {round}: reopening the store after kill -9 failed: {e}"));
    let (kvs, version) = rt.block_on(async {
        let tx = db.create_transaction().expect("a transaction");
        let version = tx.get_read_version().await.expect("a read version");
        let kvs = tx
            .get_range_all(&RangeOption::new(&b""[..], &b"\xff"[..]), ReadMode::Snapshot)
            .await
            .expect("reading the whole store");
        (kvs, version)
    });
    drop(db);

    let mut parts: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut open = BTreeSet::new();
    let mut count = None;
    for kv in &kvs {
        if kv.key.as_ref() == count_key().as_slice() {
            let bytes: [u8; 8] =
                kv.value.as_ref().try_into().unwrap_or_else(|_| panic!("round {round}: count is not 8 bytes"));
            count = Some(i64::from_le_bytes(bytes));
            continue;
        }
        let (which, id): (String, u64) = tuple::unpack(&kv.key)
            .unwrap_or_else(|e| panic!("round {round}: a key the writer never writes: {:?} ({e:?})", kv.key));
        match which.as_str() {
            "txn" | "a" | "b" => {
                assert_eq!(
                    kv.value.as_ref(),
                    payload(&which, id).as_slice(),
                    "round {round}: ({which:?}, {id}) holds a torn or foreign value"
                );
                parts.entry(id).or_default().push(which);
            }
            "open" => {
                assert_eq!(kv.value.as_ref(), b"open", "round {round}: (\"open\", {id}) has a wrong value");
                open.insert(id);
            }
            other => panic!("round {round}: a key the writer never writes: ({other:?}, {id})"),
        }
    }
    for (id, which) in &parts {
        assert_eq!(which.len(), 3, "round {round}: transaction {id} is partially visible: only {which:?} of txn, a, b");
        assert!(
            !open.contains(id),
            "round {round}: transaction {id} is partially visible: its clear of (\"open\", {id}) is not"
        );
    }
    for id in &open {
        let setter = id.checked_sub(WRITERS).expect("open ids start above the stride");
        assert!(
            parts.contains_key(&setter),
            "round {round}: (\"open\", {id}) is there but transaction {setter}, which set it, is not"
        );
    }
    let present: BTreeSet<u64> = parts.keys().copied().collect();
    let count = count.unwrap_or(0);
    assert_eq!(count, present.len() as i64, "round {round}: the counter disagrees with the transactions present");
    Contents { present, open, count, version }
}

#[test]
fn acknowledged_commits_survive_kill_9_and_no_partial_transaction_is_visible() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let data_dir = dir.path().join("store");

    let started = Instant::now();
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let mut acked_version_max: Version = 0;
    let mut first = WRITERS; // ("open", j) names transaction j - WRITERS, so ids start at WRITERS.
    let mut rounds_without_acks = 0;
    // How long the writer took to its first acknowledged commit, last time it was measured.
    let mut startup = Duration::from_millis(80);
    for round in 0..ROUNDS {
        // Two rounds in five kill the writer while it starts: exec, opening (creating in
        // round 0, recovering after) the store, first commits. The other three let it
        // reach steady state (its first acknowledged commit) and kill it up to 150 ms on.
        let mut writer = spawn_writer(&data_dir, first);
        let spawned = Instant::now();
        let startup_kill = round % 5 < 2;
        if startup_kill {
            let bound = startup.as_millis().max(1) as u64;
            std::thread::sleep(Duration::from_millis(rng.random_range(0..bound)));
        } else {
            let delay = Duration::from_millis(rng.random_range(0..150));
            // On a timeout the writer died on its own or hangs: the checks below say which.
            if writer.first_ack.recv_timeout(Duration::from_secs(20)).is_ok() {
                startup = spawned.elapsed();
                std::thread::sleep(delay);
            }
        }
        let killed_after = spawned.elapsed();
        writer.child.kill().expect("sending SIGKILL to the writer");
        let status = writer.child.wait().expect("waiting for the writer");
        let round_acks = writer.acks.join().expect("the ack reader");
        let errors = writer.stderr.join().expect("the stderr reader");
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.signal(),
                Some(9),
                "round {round}: the writer ended on its own ({status}) before it was killed; its stderr:\n{errors}"
            );
        }
        if !startup_kill && round_acks.is_empty() {
            panic!("round {round}: the writer acknowledged nothing in 20 s; its stderr:\n{errors}");
        }
        if round_acks.is_empty() {
            rounds_without_acks += 1;
        }
        for &(id, version) in &round_acks {
            assert!(acked.insert(id), "round {round}: id {id} acknowledged twice");
            acked_version_max = acked_version_max.max(version);
        }

        let reopening = Instant::now();
        let contents = reopen_and_check(&data_dir, &rt, round);
        let reopened_in = reopening.elapsed();
        let lost: Vec<u64> = acked.difference(&contents.present).copied().take(10).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged commits are missing after kill -9 (first few: {lost:?}; seed {seed})"
        );
        assert!(
            contents.version >= acked_version_max,
            "round {round}: the store reopened at version {} below the acknowledged commit version {acked_version_max}",
            contents.version
        );
        println!(
            "round {round:2}: {} kill after {:3} ms, {:5} acks, store holds {:6} transactions (count {}, {} open), version {}, checked in {} ms",
            if startup_kill { "start-up" } else { "steady  " },
            killed_after.as_millis(),
            round_acks.len(),
            contents.present.len(),
            contents.count,
            contents.open.len(),
            contents.version,
            reopened_in.as_millis(),
        );
        let highest = contents.present.iter().chain(contents.open.iter()).max().copied().unwrap_or(0);
        first = first.max(highest + 1);
    }
    let elapsed = started.elapsed();
    println!(
        "{ROUNDS} rounds, {} acknowledged commits, {rounds_without_acks} rounds killed before the first ack, {:.1} s",
        acked.len(),
        elapsed.as_secs_f64()
    );
    assert!(
        acked.len() >= ACKS_MIN,
        "only {} commits were acknowledged over {ROUNDS} rounds; the test needs at least {ACKS_MIN} to mean anything",
        acked.len()
    );
}

/// The store's creation is a kill -9 moment like any other: a writer killed while it
/// creates a new store must leave a directory that opens (empty, or with what it
/// acknowledged), never one that is refused as corrupt or foreign.
#[test]
fn kill_9_while_the_store_is_created_leaves_a_directory_that_opens() {
    const TRIES: usize = 40;
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temp dir");

    // How long a writer takes from spawn to its first acknowledged commit on a new store:
    // the shortest of three, as the first may wait on a cold disk cache.
    let mut startup = Duration::MAX;
    for calibration in 0..3 {
        let mut writer = spawn_writer(&dir.path().join(format!("calibration-{calibration}")), WRITERS);
        let spawned = Instant::now();
        writer
            .first_ack
            .recv_timeout(Duration::from_secs(20))
            .expect("the writer acknowledges a commit on a new store");
        startup = startup.min(spawned.elapsed());
        writer.child.kill().expect("sending SIGKILL to the writer");
        writer.child.wait().expect("waiting for the writer");
        let _ = writer.acks.join();
    }
    println!("a writer reaches its first commit on a new store in {} ms", startup.as_millis());

    let mut outcomes = BTreeMap::<&str, usize>::new();
    for try_ in 0..TRIES {
        let data_dir = dir.path().join(format!("store-{try_}"));
        let mut writer = spawn_writer(&data_dir, WRITERS);
        let bound = (startup.as_micros() as u64 * 3 / 2).max(1);
        std::thread::sleep(Duration::from_micros(rng.random_range(0..bound)));
        writer.child.kill().expect("sending SIGKILL to the writer");
        let status = writer.child.wait().expect("waiting for the writer");
        let acks = writer.acks.join().expect("the ack reader");
        let errors = writer.stderr.join().expect("the stderr reader");
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.signal(),
                Some(9),
                "try {try_}: the writer ended on its own ({status}); its stderr:\n{errors}"
            );
        }
        let existed = data_dir.exists();
        let contents = reopen_and_check(&data_dir, &rt, try_);
        for (id, _) in &acks {
            assert!(
                contents.present.contains(id),
                "try {try_}: acknowledged transaction {id} is missing (seed {seed})"
            );
        }
        let outcome = match (existed, acks.is_empty()) {
            (false, _) => "killed before the directory existed",
            (true, true) => "killed while creating or before the first ack",
            (true, false) => "killed after the first ack",
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    println!("{TRIES} tries: {outcomes:?}");
}
