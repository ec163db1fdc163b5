//! A corrupt or foreign data directory gives a clear error naming the path: never a panic,
//! and never a silent reset (an empty or partial store handed back as if all were well).
//! And a good store reopens with everything it acknowledged, at a higher version.

#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stead_store::embedded::{EmbeddedOptions, open};
use stead_store::{Database, OpenError, RangeOption, ReadMode, Version};

type Data = BTreeMap<Bytes, Bytes>;

fn open_dir(path: &Path) -> Result<Database, OpenError> {
    open(&EmbeddedOptions { data_dir: Some(path.to_path_buf()) })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// Commits `data` in transactions of at most `per_txn` keys; returns the last commit version.
fn commit_all(db: &Database, data: &Data, per_txn: usize) -> Version {
    let rt = rt();
    let mut version = 0;
    let entries: Vec<(Bytes, Bytes)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for chunk in entries.chunks(per_txn) {
        let chunk = chunk.to_vec();
        let committed = rt
            .block_on(db.run_committed(|tx, _| {
                let chunk = chunk.clone();
                async move {
                    for (k, v) in &chunk {
                        tx.set(k, v);
                    }
                    Ok::<(), stead_store::Error>(())
                }
            }))
            .expect("committing");
        version = committed.commit.version;
    }
    version
}

/// Everything in the store, and its read version.
fn read_all(db: &Database) -> (Data, Version) {
    rt().block_on(async {
        let tx = db.create_transaction().expect("a transaction");
        let version = tx.get_read_version().await.expect("a read version");
        let kvs = tx
            .get_range_all(&RangeOption::new(&b""[..], &b"\xff"[..]), ReadMode::Snapshot)
            .await
            .expect("reading the whole store");
        (kvs.into_iter().map(|kv| (kv.key, kv.value)).collect(), version)
    })
}

fn sample(prefix: &str, n: usize, value_len: usize) -> Data {
    (0..n)
        .map(|i| {
            let key = Bytes::from(format!("{prefix}/{i:06}"));
            let value = Bytes::from(format!("{prefix}:{i};").bytes().cycle().take(value_len).collect::<Vec<u8>>());
            (key, value)
        })
        .collect()
}

/// Every file under `dir`, recursively, with its bytes: to show that an open that failed
/// changed nothing.
fn snapshot_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    if dir.is_file() {
        out.insert(dir.to_path_buf(), std::fs::read(dir).unwrap());
        return out;
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(snapshot_files(&path));
        } else {
            out.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    out
}

fn files_under(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path, keep));
        } else if keep(&path) {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn expect_err(result: Result<Database, OpenError>, what: &str) -> OpenError {
    match result {
        Ok(_) => panic!("{what}: the store opened"),
        Err(e) => e,
    }
}

fn assert_names(e: &OpenError, path: &Path) {
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "the error does not name {}: {message}", path.display());
}

#[test]
fn a_non_empty_directory_without_the_marker_is_foreign_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("someones");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("thesis.tex"), b"\\documentclass{article} % do not lose me").unwrap();
    std::fs::create_dir(path.join("figures")).unwrap();
    std::fs::write(path.join("figures").join("plot.png"), b"\x89PNG...").unwrap();
    let before = snapshot_files(&path);

    let e = expect_err(open_dir(&path), "a foreign directory");
    assert!(matches!(e, OpenError::Foreign { .. }), "expected Foreign, got {e:?}");
    assert_names(&e, &path);
    assert!(e.to_string().contains("thesis.tex"), "the error says what it found: {e}");
    assert_eq!(snapshot_files(&path), before, "opening a foreign directory changed it");
    let names: Vec<_> = std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "opening a foreign directory added files: {names:?}");
}

#[test]
fn a_regular_file_is_foreign_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    std::fs::write(&path, b"not a directory").unwrap();
    let e = expect_err(open_dir(&path), "a regular file");
    assert!(matches!(e, OpenError::Foreign { .. }), "expected Foreign, got {e:?}");
    assert_names(&e, &path);
    assert_eq!(std::fs::read(&path).unwrap(), b"not a directory");
}

#[test]
fn a_garbage_marker_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    // A directory with only a garbage marker, and a real store whose marker was overwritten.
    let bare = dir.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    std::fs::write(bare.join("STEAD_STORE"), b"\x00\xffgarbage\n").unwrap();
    let real = dir.path().join("real");
    drop(open_dir(&real).unwrap());
    std::fs::write(real.join("STEAD_STORE"), b"stead-stor\n").unwrap();
    for path in [bare, real] {
        let before = snapshot_files(&path);
        let e = expect_err(open_dir(&path), "a garbage marker");
        assert!(matches!(e, OpenError::Corrupt { .. }), "expected Corrupt, got {e:?}");
        assert_names(&e, &path);
        assert_eq!(snapshot_files(&path), before, "opening a corrupt store changed it");
    }
}

#[test]
fn a_newer_format_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let data = sample("k", 10, 50);
    let db = open_dir(&path).unwrap();
    commit_all(&db, &data, 10);
    drop(db);
    std::fs::write(path.join("STEAD_STORE"), b"stead-store format 99\n").unwrap();
    let before = snapshot_files(&path);
    let e = expect_err(open_dir(&path), "format 99");
    match &e {
        OpenError::UnsupportedFormat { found, supported, .. } => {
            assert_eq!(found, "99");
            assert_eq!(*supported, 1);
        }
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
    assert_names(&e, &path);
    assert!(e.to_string().contains("99"), "{e}");
    assert_eq!(snapshot_files(&path), before, "opening a newer store changed it");
}

#[test]
fn reopening_after_a_clean_drop_returns_everything_at_a_higher_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut expected = sample("first", 500, 100);

    let db = open_dir(&path).unwrap();
    let first_version = commit_all(&db, &expected, 50);
    // Clears survive too.
    let rt = rt();
    rt.block_on(db.run(|tx, _| async move {
        tx.clear_range(b"first/000100", b"first/000200");
        tx.clear(b"first/000300");
        Ok::<(), stead_store::Error>(())
    }))
    .unwrap();
    expected.retain(|k, _| {
        !(k.as_ref() >= &b"first/000100"[..] && k.as_ref() < &b"first/000200"[..]) && k.as_ref() != b"first/000300"
    });
    let (seen, version_before) = read_all(&db);
    assert_eq!(seen, expected);
    assert!(version_before > first_version);
    drop(db);

    for reopen in 0..3 {
        let db = open_dir(&path).unwrap();
        let (seen, version) = read_all(&db);
        assert_eq!(seen.len(), expected.len(), "reopen {reopen}: the store lost keys");
        assert_eq!(seen, expected, "reopen {reopen}: the store changed");
        assert!(version >= version_before, "reopen {reopen}: the read version {version} went below {version_before}");
        let more = sample(&format!("reopen{reopen}"), 20, 30);
        let committed = commit_all(&db, &more, 20);
        assert!(
            committed > version_before,
            "reopen {reopen}: commit version {committed} is not above {version_before}"
        );
        expected.extend(more);
        let (_, after) = read_all(&db);
        drop(db);
        assert!(after >= committed);
        // Versions handed out before a restart are never reused.
        let db = open_dir(&path).unwrap();
        let again = commit_all(&db, &sample(&format!("again{reopen}"), 1, 10), 1);
        assert!(again > committed, "reopen {reopen}: commit version {again} after a restart is not above {committed}");
        expected.extend(sample(&format!("again{reopen}"), 1, 10));
        drop(db);
    }
}

/// A store with data both in fjall's tables (flushed) and in its journal (not yet
/// flushed). Returns everything in it.
fn good_store(path: &Path) -> Data {
    let mut expected = sample("flushed", 2000, 200);
    let db = open_dir(path).unwrap();
    commit_all(&db, &expected, 200);
    drop(db);
    {
        // Flush what is in the journal into tables, as fjall does on its own once a
        // memtable fills up (64 MiB).
        let fjall_db = fjall::Database::builder(path.join("fjall")).open().unwrap();
        for name in ["data", "meta"] {
            let keyspace = fjall_db.keyspace(name, fjall::KeyspaceCreateOptions::default).unwrap();
            keyspace.rotate_memtable_and_wait().unwrap();
        }
    }
    let journal = sample("journal", 300, 200);
    let db = open_dir(path).unwrap();
    commit_all(&db, &journal, 100);
    drop(db);
    expected.extend(journal);
    let db = open_dir(path).unwrap();
    assert_eq!(read_all(&db).0, expected, "the good store is not good");
    drop(db);
    expected
}

fn is_journal(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "jnl")
}

fn is_table(p: &Path) -> bool {
    p.parent().and_then(Path::file_name).is_some_and(|n| n == "tables")
}

enum Damage {
    /// A few bytes in the middle of each file inverted.
    Flip,
    Garbage,
    Truncate,
    Empty,
    Delete,
}

fn damage(files: &[PathBuf], how: &Damage, rng: &mut StdRng) {
    for file in files {
        let len = std::fs::metadata(file).unwrap().len() as usize;
        match how {
            Damage::Flip => {
                let mut bytes = std::fs::read(file).unwrap();
                if !bytes.is_empty() {
                    for _ in 0..8 {
                        let at = rng.random_range(bytes.len() / 4..bytes.len() * 3 / 4 + 1).min(bytes.len() - 1);
                        bytes[at] = !bytes[at];
                    }
                }
                std::fs::write(file, bytes).unwrap();
            }
            Damage::Garbage => {
                let garbage: Vec<u8> = (0..len.max(64)).map(|_| rng.random()).collect();
                std::fs::write(file, garbage).unwrap();
            }
            Damage::Truncate => {
                let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
                f.set_len(len as u64 / 2).unwrap();
            }
            Damage::Empty => std::fs::write(file, b"").unwrap(),
            Damage::Delete => std::fs::remove_file(file).unwrap(),
        }
    }
}

/// How opening a damaged store went.
enum Outcome {
    /// An error naming the path.
    Refused(String),
    /// It opened with every key: the damage missed everything that mattered.
    Whole,
}

/// Opening a damaged store must fail with an error naming the path or return every key;
/// it must never panic, never call the store foreign, and never return anything else.
fn open_damaged(path: &Path, expected: &Data, what: &str) -> Result<Outcome, String> {
    let opened = std::panic::catch_unwind(|| open_dir(path))
        .map_err(|_| format!("{what}: opening the damaged store panicked"))?;
    match opened {
        Err(e) => {
            let message = e.to_string();
            if !message.contains(&path.display().to_string()) {
                return Err(format!("{what}: the error does not name the path: {message}"));
            }
            if matches!(e, OpenError::Foreign { .. }) {
                return Err(format!("{what}: a damaged store of ours is called foreign: {message}"));
            }
            Ok(Outcome::Refused(message))
        }
        Ok(db) => {
            let seen = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_all(&db).0))
                .map_err(|_| format!("{what}: reading the damaged store panicked"))?;
            if seen == *expected {
                Ok(Outcome::Whole)
            } else {
                Err(format!(
                    "{what}: the damaged store opened as if fine with {} of its {} keys",
                    seen.len(),
                    expected.len()
                ))
            }
        }
    }
}

/// Damaged journals and tables, fjall's own marker gone, fjall/ gone: an error naming the
/// path every time.
///
/// The journal cases are the subtle ones: fjall takes anything unreadable in its journal
/// for the torn tail of a crash and cuts it off, so on its own it would open a store with
/// a damaged journal at an earlier state (or empty) without a word. The store refuses
/// those because the meta keyspace lost the version written at creation, or because the
/// recovered version is below the one recorded in STEAD_STORE.committed.
#[test]
fn damaged_fjall_files_give_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template");
    let expected = good_store(&template);
    let journals = files_under(&template.join("fjall"), &is_journal);
    let tables = files_under(&template.join("fjall"), &is_table);
    assert!(!journals.is_empty(), "the good store has no journal files");
    assert!(!tables.is_empty(), "the good store has no table files");

    let mut rng = StdRng::seed_from_u64(7);
    let is_fjall_version = |p: &Path| {
        p.file_name().is_some_and(|n| n == "version")
            && p.parent().and_then(Path::file_name).is_some_and(|n| n == "fjall")
    };
    let cases: Vec<Case<'_>> = vec![
        ("journals with bytes flipped", &is_journal, Damage::Flip),
        ("journals overwritten with garbage", &is_journal, Damage::Garbage),
        ("journals truncated to half", &is_journal, Damage::Truncate),
        ("journals emptied", &is_journal, Damage::Empty),
        ("journals deleted", &is_journal, Damage::Delete),
        ("tables with bytes flipped", &is_table, Damage::Flip),
        ("tables overwritten with garbage", &is_table, Damage::Garbage),
        ("tables truncated to half", &is_table, Damage::Truncate),
        ("tables emptied", &is_table, Damage::Empty),
        ("tables deleted", &is_table, Damage::Delete),
        ("fjall's version file deleted", &is_fjall_version, Damage::Delete),
        ("fjall's version file overwritten with garbage", &is_fjall_version, Damage::Garbage),
        ("every file under fjall/ with bytes flipped", &|_: &Path| true, Damage::Flip),
        ("every file under fjall/ overwritten with garbage", &|_: &Path| true, Damage::Garbage),
        ("every file under fjall/ deleted", &|_: &Path| true, Damage::Delete),
    ];
    let mut report = Vec::new();
    let mut bad = Vec::new();
    damage_copies(&template, &expected, &cases, &mut rng, &mut report, &mut bad);

    // A store whose data never left the journal (fjall flushes a memtable at 64 MiB, so
    // this is every small store): losing the journal would be a reset, and must be refused.
    let young = dir.path().join("young");
    let db = open_dir(&young).unwrap();
    let young_expected = sample("young", 500, 100);
    commit_all(&db, &young_expected, 100);
    drop(db);
    let journal_cases: Vec<_> = cases.into_iter().filter(|(what, _, _)| what.starts_with("journals")).collect();
    damage_copies(&young, &young_expected, &journal_cases, &mut rng, &mut report, &mut bad);

    // The whole fjall/ directory gone.
    let path = dir.path().join("no-fjall");
    copy_dir(&template, &path);
    std::fs::remove_dir_all(path.join("fjall")).unwrap();
    match open_dir(&path) {
        Err(e @ OpenError::Corrupt { .. }) if e.to_string().contains(&path.display().to_string()) => {
            report.push(format!("fjall/ deleted: refused: {e}"))
        }
        Err(e) => bad.push(format!("fjall/ deleted: expected Corrupt naming the path, got {e:?}")),
        Ok(_) => bad.push("fjall/ deleted: the store opened".into()),
    }

    // The record of the acknowledged version: damaged is corrupt; gone (as in a store from
    // before it existed) is started again from what fjall recovered.
    let path = dir.path().join("committed-garbage");
    copy_dir(&template, &path);
    std::fs::write(path.join("STEAD_STORE.committed"), b"0123456789abcdef").unwrap();
    match open_dir(&path) {
        Err(e @ OpenError::Corrupt { .. }) if e.to_string().contains(&path.display().to_string()) => {
            report.push(format!("STEAD_STORE.committed overwritten: refused: {e}"))
        }
        Err(e) => bad.push(format!("STEAD_STORE.committed overwritten: expected Corrupt naming the path, got {e:?}")),
        Ok(_) => bad.push("STEAD_STORE.committed overwritten: the store opened".into()),
    }
    let path = dir.path().join("committed-gone");
    copy_dir(&template, &path);
    std::fs::remove_file(path.join("STEAD_STORE.committed")).unwrap();
    match open_damaged(&path, &expected, "STEAD_STORE.committed deleted") {
        Ok(Outcome::Whole) => report.push("STEAD_STORE.committed deleted: opened with every key".into()),
        Ok(Outcome::Refused(message)) => {
            bad.push(format!("STEAD_STORE.committed deleted: refused a good store: {message}"))
        }
        Err(failure) => bad.push(failure),
    }
    assert!(path.join("STEAD_STORE.committed").is_file(), "the record was not started again");

    for line in &report {
        println!("{line}");
    }
    assert!(bad.is_empty(), "damaged stores were mishandled:\n{}", bad.join("\n"));
}

type Case<'a> = (&'a str, &'a dyn Fn(&Path) -> bool, Damage);

/// Damages a copy of `template` for each case and opens it.
fn damage_copies(
    template: &Path,
    expected: &Data,
    cases: &[Case<'_>],
    rng: &mut StdRng,
    report: &mut Vec<String>,
    bad: &mut Vec<String>,
) {
    let name = template.file_name().unwrap().to_string_lossy().into_owned();
    for (i, (what, which, how)) in cases.iter().enumerate() {
        let what = format!("{name}: {what}");
        let path = template.with_file_name(format!("{name}-case-{i}"));
        copy_dir(template, &path);
        let files = files_under(&path.join("fjall"), *which);
        assert!(!files.is_empty(), "{what}: no such files");
        damage(&files, how, rng);
        match open_damaged(&path, expected, &what) {
            Ok(Outcome::Refused(message)) => report.push(format!("{what}: refused: {message}")),
            Ok(Outcome::Whole) => report.push(format!("{what}: opened with every key (the damage missed)")),
            Err(failure) => bad.push(failure),
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// What a crash at each step of creating a store leaves behind opens: the remains of an
/// unfinished creation (no marker yet) are swept away and the store created afresh; a
/// finished fjall directory waiting for its last rename (marker written) is moved into
/// place. `testkit/tests/crash_recovery.rs` kills real writers during creation; this
/// builds each state by hand.
#[test]
fn what_an_interrupted_creation_leaves_opens() {
    let dir = tempfile::tempdir().unwrap();

    // Killed while fjall built its directory aside: a half-made fjall.creating/.
    let path = dir.path().join("half-built");
    std::fs::create_dir_all(path.join("fjall.creating").join("keyspaces")).unwrap();
    std::fs::write(path.join("fjall.creating").join("lock"), b"").unwrap();
    std::fs::write(path.join("fjall.creating").join("0.jnl"), vec![0u8; 4096]).unwrap();
    let db = open_dir(&path).expect("a half-built creation is started over");
    assert!(read_all(&db).0.is_empty());
    commit_all(&db, &sample("k", 3, 10), 3);
    drop(db);
    assert_eq!(read_all(&open_dir(&path).unwrap()).0, sample("k", 3, 10));
    assert!(!path.join("fjall.creating").exists());

    // Killed after the record and a partly written temporary marker, before the marker.
    let path = dir.path().join("no-marker-yet");
    std::fs::create_dir_all(path.join("fjall.creating")).unwrap();
    std::fs::write(path.join("STEAD_STORE.committed"), b"\x00\x00").unwrap();
    std::fs::write(path.join("STEAD_STORE.creating"), b"stead-st").unwrap();
    let db = open_dir(&path).expect("a creation stopped before the marker is started over");
    assert!(read_all(&db).0.is_empty());
    drop(db);
    let mut names: Vec<String> =
        std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["STEAD_STORE", "STEAD_STORE.committed", "fjall"]);

    // Killed between writing the marker and moving fjall.creating/ into place.
    let path = dir.path().join("marker-written");
    drop(open_dir(&path).unwrap());
    std::fs::rename(path.join("fjall"), path.join("fjall.creating")).unwrap();
    let db = open_dir(&path).expect("a finished creation is moved into place");
    assert!(read_all(&db).0.is_empty());
    drop(db);
    assert!(path.join("fjall").is_dir() && !path.join("fjall.creating").exists());

    // The names of creation's remains do not make someone's directory ours.
    let path = dir.path().join("someones");
    std::fs::create_dir_all(path.join("fjall.creating")).unwrap();
    std::fs::write(path.join("notes.txt"), b"mine").unwrap();
    let before = snapshot_files(&path);
    let e = expect_err(open_dir(&path), "a foreign directory with a fjall.creating/");
    assert!(matches!(e, OpenError::Foreign { .. }), "expected Foreign, got {e:?}");
    assert_names(&e, &path);
    assert_eq!(snapshot_files(&path), before);
    assert!(path.join("fjall.creating").is_dir());
}
