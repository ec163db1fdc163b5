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
    const META_VERSION_KEY: &[u8] = b"version";

    /// fjall keeps a journal it fsyncs per batch (group commit makes batches large) and
    /// an LSM tree it compacts in background threads.
    pub struct FjallDurable {
        path: PathBuf,
        db: Database,
        data: Keyspace,
        meta: Keyspace,
    }

    /// Opens (or creates) the store under `path`, refusing directories that are not ours.
    pub fn open_fjall(path: &Path) -> Result<FjallDurable, OpenError> {
        let io = |source| OpenError::Io { path: path.to_path_buf(), source };
        let marker = path.join(MARKER_FILE);
        let expected = format!("stead-store format {FORMAT}\n");
        if path.exists() {
            if !path.is_dir() {
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
            if entries.iter().any(|e| e == MARKER_FILE) {
                let content = std::fs::read(&marker).map_err(io)?;
                if content != expected.as_bytes() {
                    return Err(match String::from_utf8(content) {
                        Ok(text) if text.starts_with("stead-store format ") => OpenError::UnsupportedFormat {
                            path: path.to_path_buf(),
                            found: text.trim_start_matches("stead-store format ").trim().to_string(),
                            supported: FORMAT,
                        },
                        _ => OpenError::Corrupt {
                            path: path.to_path_buf(),
                            reason: format!("{MARKER_FILE} does not hold a stead store format line"),
                        },
                    });
                }
                if !path.join(DATA_DIR).is_dir() {
                    return Err(OpenError::Corrupt {
                        path: path.to_path_buf(),
                        reason: format!("the {DATA_DIR}/ directory is missing"),
                    });
                }
            } else if !entries.is_empty() {
                let mut found = entries;
                found.sort();
                found.truncate(5);
                return Err(OpenError::Foreign { path: path.to_path_buf(), marker: MARKER_FILE, found: found.join(", ") });
            } else {
                write_marker(&marker, &expected).map_err(io)?;
            }
        } else {
            std::fs::create_dir_all(path).map_err(io)?;
            write_marker(&marker, &expected).map_err(io)?;
        }
        let storage = |reason: String| OpenError::Storage { path: path.to_path_buf(), reason };
        // A library panic on a damaged directory must become an error that names the path.
        let opened = std::panic::catch_unwind(|| -> Result<_, fjall::Error> {
            let db = Database::builder(path.join(DATA_DIR)).manual_journal_persist(true).open()?;
            let data = db.keyspace("data", KeyspaceCreateOptions::default)?;
            let meta = db.keyspace("meta", KeyspaceCreateOptions::default)?;
            Ok((db, data, meta))
        });
        let (db, data, meta) = match opened {
            Ok(Ok(parts)) => parts,
            Ok(Err(e)) => return Err(storage(e.to_string())),
            Err(panic) => return Err(storage(panic_message(&panic))),
        };
        Ok(FjallDurable { path: path.to_path_buf(), db, data, meta })
    }

    fn write_marker(marker: &Path, content: &str) -> std::io::Result<()> {
        std::fs::write(marker, content)?;
        std::fs::File::open(marker)?.sync_all()?;
        if let Some(dir) = marker.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
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
            let version = match self.meta.get(META_VERSION_KEY).map_err(other)? {
                None => None,
                Some(v) => {
                    let bytes: [u8; 8] = v.as_ref().try_into().map_err(|_| {
                        other(format!("{}: corrupt stead store: meta version is {} bytes, not 8", self.path.display(), v.len()))
                    })?;
                    Some(Version::from_be_bytes(bytes))
                }
            };
            let mut data = std::collections::BTreeMap::new();
            for guard in self.data.iter() {
                let (k, v) = guard.into_inner().map_err(other)?;
                data.insert(bytes::Bytes::copy_from_slice(&k), bytes::Bytes::copy_from_slice(&v));
            }
            if version.is_none() && !data.is_empty() {
                return Err(other(format!("{}: corrupt stead store: data without a committed version", self.path.display())));
            }
            Ok(Recovered { version, data })
        }

        fn write(&mut self, version: Version, changes: &Changes) -> std::io::Result<()> {
            let mut batch = self.db.batch().durability(Some(PersistMode::SyncData));
            for (k, v) in changes {
                match v {
                    Some(v) => batch.insert(&self.data, k.as_ref(), v.as_ref()),
                    None => batch.remove(&self.data, k.as_ref()),
                }
            }
            batch.insert(&self.meta, META_VERSION_KEY, &version.to_be_bytes()[..]);
            batch.commit().map_err(other)
        }
    }
}
