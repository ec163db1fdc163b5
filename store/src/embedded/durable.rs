//! The embedded engine's durable layer: where committed batches go before they are
//! acknowledged. A small trait so production uses a real storage library (fjall) and the
//! simulation an in-memory twin (fjall starts threads, which madsim forbids).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::types::Version;

/// Final values of the keys one commit batch changed (None: cleared).
pub type Changes = BTreeMap<Bytes, Option<Bytes>>;

/// What a durable layer holds when the store opens.
#[derive(Debug, Default, Clone)]
pub struct Recovered {
    /// The last committed version, or None for a new store.
    pub version: Option<Version>,
    pub data: BTreeMap<Bytes, Bytes>,
}

pub trait Durable: Send + 'static {
    /// Everything committed so far.
    fn recover(&mut self) -> std::io::Result<Recovered>;
    /// Writes one batch atomically and durably: when this returns Ok, the batch survives a
    /// crash; if the process dies before, either all of it or none of it is there.
    fn write(&mut self, version: Version, changes: &Changes) -> std::io::Result<()>;
    /// Whether `write` looks at the changes. A layer that keeps nothing says no, and the
    /// committer does not collect them (a sorted map insert per written key).
    fn needs_changes(&self) -> bool {
        true
    }
}

/// Durable in the sense of "outlives the engine": clones share the data, so a simulated
/// server that restarts reopens what was committed. Each write is complete when it returns,
/// so a crash loses nothing acknowledged, which is the guarantee the real layer gives.
#[derive(Debug, Default, Clone)]
pub struct MemDurable {
    state: Arc<Mutex<Recovered>>,
}

impl MemDurable {
    pub fn new() -> MemDurable {
        MemDurable::default()
    }
}

impl Durable for MemDurable {
    fn recover(&mut self) -> std::io::Result<Recovered> {
        Ok(self.state.lock().clone())
    }

    fn write(&mut self, version: Version, changes: &Changes) -> std::io::Result<()> {
        let mut state = self.state.lock();
        for (k, v) in changes {
            match v {
                Some(v) => state.data.insert(k.clone(), v.clone()),
                None => state.data.remove(k),
            };
        }
        state.version = Some(version);
        Ok(())
    }
}

/// Keeps nothing: the in-memory store (`agent -dev` without a data directory, tests),
/// whose data lives in the engine's index alone and ends with the process. A second copy
/// would double the memory of every record for nothing (measured: a tenth of the CPU of a
/// write-heavy run went to maintaining it).
#[derive(Debug, Default, Clone, Copy)]
pub struct VolatileDurable;

impl Durable for VolatileDurable {
    fn recover(&mut self) -> std::io::Result<Recovered> {
        Ok(Recovered::default())
    }

    fn write(&mut self, _version: Version, _changes: &Changes) -> std::io::Result<()> {
        Ok(())
    }

    fn needs_changes(&self) -> bool {
        false
    }
}

#[cfg(not(madsim))]
pub use fjall_layer::{FjallDurable, open_fjall};

#[cfg(not(madsim))]
mod fjall_layer {
    use std::path::{Path, PathBuf};

    use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

    use super::{Changes, Durable, Recovered};
    use crate::error::OpenError;
    use crate::types::Version;

    /// The file that says a directory is a stead store, and which format it holds.
    pub const MARKER_FILE: &str = "STEAD_STORE";
    const FORMAT: u32 = 1;
    const DATA_DIR: &str = "fjall";
    /// A new store is built here, complete, and becomes `DATA_DIR` only after the marker is
    /// written, so a crash at any moment of creation leaves either the remains of an
    /// unfinished creation (no marker: swept away and started over) or a finished store
    /// waiting for its last rename (marker and `CREATING_DIR`: renamed on the next open).
    /// Never a marker over a half-built fjall directory, which no open could tell from a
    /// damaged one.
    const CREATING_DIR: &str = "fjall.creating";
    /// The marker is written here, synced, then renamed: it is whole or absent.
    const MARKER_TEMP: &str = "STEAD_STORE.creating";
    /// fjall's own marker in `DATA_DIR`. Without it fjall would quietly create a new,
    /// empty database over whatever is left.
    const FJALL_VERSION_FILE: &str = "version";
    const DATA_KEYSPACE: &str = "data";
    const META_KEYSPACE: &str = "meta";
    /// The last committed version. Written (as 0) when the store is created (since
    /// `COMMITTED_FILE` exists), so a store whose meta keyspace comes back without it has
    /// lost data, and is not taken for new.
    const META_VERSION_KEY: &[u8] = b"version";
    /// The last version acknowledged, rewritten in place after each batch is durable, not
    /// synced itself. fjall takes anything unreadable in its journal for the torn tail of a
    /// crash and cuts it off, so a damaged journal would otherwise silently lose
    /// acknowledged commits; a store that recovers below this version has lost them, and is
    /// refused. A process crash keeps the file's last write (the page cache survives); a
    /// power loss may leave an older one, which weakens the check but never fails a good
    /// store, as the file is written only after fjall's sync.
    const COMMITTED_FILE: &str = "STEAD_STORE.committed";
    const COMMITTED_CHECK: u64 = 0x5354_4541_4453_5652; // "STEADSVR": tells 16 bytes of ours from garbage

    /// fjall keeps a journal it fsyncs per batch (group commit makes batches large) and
    /// an LSM tree it compacts in background threads.
    pub struct FjallDurable {
        path: PathBuf,
        db: Database,
        data: Keyspace,
        meta: Keyspace,
        /// `COMMITTED_FILE`, open once recovery has checked it.
        committed: Option<std::fs::File>,
    }

    /// Opens (or creates) the store under `path`, refusing directories that are not ours
    /// and stores that are damaged: a damaged store is never opened as a new one.
    pub fn open_fjall(path: &Path) -> Result<FjallDurable, OpenError> {
        let io = |source| OpenError::Io { path: path.to_path_buf(), source };
        let corrupt = |reason: String| OpenError::Corrupt { path: path.to_path_buf(), reason };
        let marker = path.join(MARKER_FILE);
        let expected = format!("stead-store format {FORMAT}\n");
        if !path.exists() {
            std::fs::create_dir_all(path).map_err(io)?;
            sync_parent(path).map_err(io)?;
        } else if !path.is_dir() {
            return Err(OpenError::Foreign {
                path: path.to_path_buf(),
                marker: MARKER_FILE,
                found: "a file, not a directory".into(),
            });
        }
        let entries: Vec<String> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        if !entries.iter().any(|e| e == MARKER_FILE) {
            // Empty, or holding only what an interrupted creation left (nothing was ever
            // committed there: commits need the marker): create the store.
            if entries.iter().any(|e| e != CREATING_DIR && e != MARKER_TEMP && e != COMMITTED_FILE) {
                let mut found = entries;
                found.sort();
                found.truncate(5);
                return Err(OpenError::Foreign {
                    path: path.to_path_buf(),
                    marker: MARKER_FILE,
                    found: found.join(", "),
                });
            }
            create(path, &expected)?;
        } else {
            let content = std::fs::read(&marker).map_err(io)?;
            if content != expected.as_bytes() {
                return Err(match String::from_utf8(content) {
                    Ok(text) if text.starts_with("stead-store format ") => OpenError::UnsupportedFormat {
                        path: path.to_path_buf(),
                        found: text.trim_start_matches("stead-store format ").trim().to_string(),
                        supported: FORMAT,
                    },
                    _ => corrupt(format!("{MARKER_FILE} does not hold a stead store format line")),
                });
            }
            if !path.join(DATA_DIR).is_dir() {
                if !path.join(CREATING_DIR).is_dir() {
                    return Err(corrupt(format!("the {DATA_DIR}/ directory is missing")));
                }
                // Creation stopped between writing the marker and its last rename.
                std::fs::rename(path.join(CREATING_DIR), path.join(DATA_DIR)).map_err(io)?;
                sync_dir(path).map_err(io)?;
            }
            if !path.join(DATA_DIR).join(FJALL_VERSION_FILE).is_file() {
                return Err(corrupt(format!(
                    "{DATA_DIR}/{FJALL_VERSION_FILE} is missing (the storage library's own marker)"
                )));
            }
        }
        let storage = |reason: String| OpenError::Storage { path: path.to_path_buf(), reason };
        // A library panic on a damaged directory must become an error that names the path.
        let opened = std::panic::catch_unwind(|| -> Result<_, fjall::Error> {
            let db = Database::builder(path.join(DATA_DIR)).manual_journal_persist(true).open()?;
            // Keyspaces are made when the store is created: one missing now means fjall
            // lost its catalogue, and asking for it would create it empty.
            if let Some(missing) = [DATA_KEYSPACE, META_KEYSPACE].into_iter().find(|name| !db.keyspace_exists(name)) {
                return Ok(Err(missing));
            }
            let data = db.keyspace(DATA_KEYSPACE, KeyspaceCreateOptions::default)?;
            let meta = db.keyspace(META_KEYSPACE, KeyspaceCreateOptions::default)?;
            Ok(Ok((db, data, meta)))
        });
        let (db, data, meta) = match opened {
            Ok(Ok(Ok(parts))) => parts,
            Ok(Ok(Err(missing))) => {
                return Err(corrupt(format!(
                    "the {missing:?} keyspace is missing from {DATA_DIR}/ (lost journal or catalogue)"
                )));
            }
            Ok(Err(e)) => return Err(storage(e.to_string())),
            Err(panic) => return Err(storage(panic_message(&panic))),
        };
        Ok(FjallDurable { path: path.to_path_buf(), db, data, meta, committed: None })
    }

    /// Creates a new store in `path`, which is empty or holds the remains of an earlier
    /// attempt: builds the fjall directory aside, writes the marker, then moves the fjall
    /// directory into place, each step durable before the next.
    fn create(path: &Path, marker_content: &str) -> Result<(), OpenError> {
        let io = |source| OpenError::Io { path: path.to_path_buf(), source };
        let storage = |reason: String| OpenError::Storage { path: path.to_path_buf(), reason };
        let staging = path.join(CREATING_DIR);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io)?;
        }
        let built = std::panic::catch_unwind(|| -> Result<(), fjall::Error> {
            let db = Database::builder(&staging).manual_journal_persist(true).open()?;
            let _data = db.keyspace(DATA_KEYSPACE, KeyspaceCreateOptions::default)?;
            let meta = db.keyspace(META_KEYSPACE, KeyspaceCreateOptions::default)?;
            let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
            batch.insert(&meta, META_VERSION_KEY, &(0 as Version).to_be_bytes()[..]);
            batch.commit()?;
            db.persist(PersistMode::SyncAll)?;
            Ok(())
        });
        match built {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(storage(e.to_string())),
            Err(panic) => return Err(storage(panic_message(&panic))),
        }
        sync_tree(&staging).map_err(io)?;
        write_committed_file(&path.join(COMMITTED_FILE), 0).map_err(io)?;
        sync_dir(path).map_err(io)?;
        let temp = path.join(MARKER_TEMP);
        std::fs::write(&temp, marker_content).map_err(io)?;
        std::fs::File::open(&temp).and_then(|f| f.sync_all()).map_err(io)?;
        std::fs::rename(&temp, path.join(MARKER_FILE)).map_err(io)?;
        sync_dir(path).map_err(io)?;
        std::fs::rename(&staging, path.join(DATA_DIR)).map_err(io)?;
        sync_dir(path).map_err(io)
    }

    fn encode_committed(version: Version) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&version.to_be_bytes());
        bytes[8..].copy_from_slice(&(version as u64 ^ COMMITTED_CHECK).to_be_bytes());
        bytes
    }

    fn decode_committed(bytes: &[u8]) -> Option<Version> {
        let version = Version::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let check = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
        (bytes.len() == 16 && check == version as u64 ^ COMMITTED_CHECK).then_some(version)
    }

    /// Writes `COMMITTED_FILE` whole and syncs it (at creation, and when an older store
    /// gets one).
    fn write_committed_file(file: &Path, version: Version) -> std::io::Result<()> {
        std::fs::write(file, encode_committed(version))?;
        std::fs::File::open(file)?.sync_all()
    }

    fn sync_dir(dir: &Path) -> std::io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }

    /// Makes the entry of a new directory durable in its parent.
    fn sync_parent(path: &Path) -> std::io::Result<()> {
        match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
            _ => sync_dir(Path::new(".")),
        }
    }

    /// Syncs every file and directory under `dir` (a freshly built, small tree).
    fn sync_tree(dir: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                sync_tree(&entry.path())?;
            } else {
                std::fs::File::open(entry.path())?.sync_all()?;
            }
        }
        sync_dir(dir)
    }

    fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the storage library panicked".into())
    }

    fn other(e: impl std::fmt::Display) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }

    impl FjallDurable {
        pub fn path(&self) -> &Path {
            &self.path
        }
    }

    impl Durable for FjallDurable {
        fn recover(&mut self) -> std::io::Result<Recovered> {
            // open() reports these as corrupt, naming the path.
            let corrupt = |reason: String| other(reason);
            let committed_path = self.path.join(COMMITTED_FILE);
            // Stores made before COMMITTED_FILE existed got no version at creation either.
            let versioned_at_creation = committed_path.exists();
            // A library panic on damaged data must become an error that names the path.
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> std::io::Result<Recovered> {
                // Read through an iterator, as the data is: fjall's point reads see
                // tables its snapshots cannot (after a lost journal its sequence numbers
                // restart below them), and the two must agree.
                let mut stored = None;
                for guard in self.meta.iter() {
                    let (k, v) = guard.into_inner().map_err(other)?;
                    if k.as_ref() == META_VERSION_KEY {
                        stored = Some(v);
                    }
                }
                let version = match stored {
                    None if self.meta.get(META_VERSION_KEY).map_err(other)?.is_some() => {
                        return Err(corrupt(
                            "its tables hold data that fjall's sequence numbers cannot see (journal missing?)".into(),
                        ));
                    }
                    // Every store has one from its creation on: fjall lost data.
                    None if versioned_at_creation => {
                        return Err(corrupt("the committed version is missing from the meta keyspace".into()));
                    }
                    None => None,
                    Some(v) => {
                        let bytes: [u8; 8] = v
                            .as_ref()
                            .try_into()
                            .map_err(|_| corrupt(format!("meta version is {} bytes, not 8", v.len())))?;
                        Some(Version::from_be_bytes(bytes))
                    }
                };
                let mut data = std::collections::BTreeMap::new();
                for guard in self.data.iter() {
                    let (k, v) = guard.into_inner().map_err(other)?;
                    data.insert(bytes::Bytes::from(k), bytes::Bytes::from(v));
                }
                if version.is_none() && !data.is_empty() {
                    return Err(corrupt("data without a committed version".into()));
                }
                Ok(Recovered { version, data })
            }));
            let recovered = match read {
                Ok(result) => result?,
                Err(panic) => return Err(corrupt(format!("reading it panicked: {}", panic_message(&panic)))),
            };
            let recovered_version = recovered.version.unwrap_or(0);
            match std::fs::read(&committed_path) {
                Ok(bytes) => match decode_committed(&bytes) {
                    None => return Err(corrupt(format!("{COMMITTED_FILE} is damaged"))),
                    Some(acknowledged) if acknowledged > recovered_version => {
                        return Err(corrupt(format!(
                            "fjall recovered version {recovered_version}, but version {acknowledged} was acknowledged: \
                             its journal lost acknowledged commits"
                        )));
                    }
                    Some(_) => {}
                },
                // A store from before the file existed: start it now.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    write_committed_file(&committed_path, recovered_version)?;
                    std::fs::File::open(&self.path)?.sync_all()?;
                }
                Err(e) => return Err(e),
            }
            self.committed = Some(std::fs::OpenOptions::new().write(true).open(&committed_path)?);
            Ok(recovered)
        }

        fn write(&mut self, version: Version, changes: &Changes) -> std::io::Result<()> {
            let mut batch = self.db.batch().durability(Some(PersistMode::SyncData));
            for (k, v) in changes {
                match v {
                    // fjall's `bytes_1` feature makes these clones, not copies.
                    Some(v) => batch.insert(&self.data, k.clone(), v.clone()),
                    None => batch.remove(&self.data, k.clone()),
                }
            }
            batch.insert(&self.meta, META_VERSION_KEY, &version.to_be_bytes()[..]);
            batch.commit().map_err(other)?;
            // Durable now: record it. No sync (see COMMITTED_FILE); a failure here only
            // weakens the recovery check, so it stops the recording, not the store.
            if let Some(file) = &mut self.committed {
                use std::io::{Seek, SeekFrom, Write};
                if let Err(e) = file.seek(SeekFrom::Start(0)).and_then(|_| file.write_all(&encode_committed(version))) {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot record the acknowledged version; recovery will not check it");
                    self.committed = None;
                    // Half a record would make the next open refuse a good store.
                    let _ = std::fs::remove_file(self.path.join(COMMITTED_FILE));
                }
            }
            Ok(())
        }
    }
}
