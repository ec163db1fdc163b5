//! What the client keeps on disk under `<data_dir>/client/`, so that a restarted client is
//! the same node and re-attaches every task it had:
//!
//! ```text
//! client/node.json                          node ID and secret
//! client/allocs/<alloc>/alloc.json          the allocation as last received (with its job)
//! client/allocs/<alloc>/task-<task>.json    a task's state, restart history, driver handle
//! client/allocs/<alloc>/run/<task>-<n>/     a driver's private files for start attempt n
//! ```
//!
//! Every file is written atomically (temporary file, fsync, rename, fsync of the
//! directory): a crash leaves the old version or the new one, never a torn file.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stead_model::{AllocId, NodeId};

use crate::clock::Entropy;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid client state ({source}); remove it to start over")]
    Corrupt { path: PathBuf, source: serde_json::Error },
}

impl StateError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }
}

/// Writes `bytes` to `path` atomically and durably.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    atomic_write_with(path, bytes, true)
}

/// Writes `bytes` to `path` atomically; `durable` also fsyncs the file and its directory.
/// Without it the write still survives a crash of the process (the rename is atomic and
/// the page cache outlives the process), but not one of the machine.
pub fn atomic_write_with(path: &Path, bytes: &[u8], durable: bool) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| StateError::io(dir, e))?;
    let mut tmp_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| StateError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| StateError::io(path, e))?;
    // The rename is durable only once the directory entry is.
    if durable && let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes `value` as JSON to `path` atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StateError::io(path, std::io::Error::other(e)))?;
    atomic_write(path, &bytes)
}

/// Reads JSON from `path`; `Ok(None)` when the file does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StateError::Corrupt { path: path.to_owned(), source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::io(path, e)),
    }
}

/// The node's identity: kept across restarts so the servers see the same node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeIdentity {
    #[serde(rename = "ID")]
    pub id: NodeId,
    #[serde(rename = "SecretID")]
    pub secret_id: String,
}

impl NodeIdentity {
    /// Reads `<state_dir>/node.json`, or creates it with new UUIDs.
    pub fn load_or_create(state_dir: &Path, entropy: &dyn Entropy) -> Result<NodeIdentity, StateError> {
        let path = state_dir.join("node.json");
        if let Some(identity) = read_json::<NodeIdentity>(&path)? {
            return Ok(identity);
        }
        let identity = NodeIdentity { id: NodeId::new(entropy.new_uuid()), secret_id: entropy.new_uuid() };
        write_json(&path, &identity)?;
        Ok(identity)
    }
}

/// The persisted allocation state: paths, and writes.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
    durable: bool,
}

impl StateDir {
    /// `durable`: fsync every write (see [`atomic_write_with`]).
    pub fn new(state_dir: &Path, durable: bool) -> Self {
        Self { root: state_dir.join("allocs"), durable }
    }

    /// Writes `value` as JSON to `path` atomically (durably if so configured).
    pub fn write<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StateError::io(path, std::io::Error::other(e)))?;
        atomic_write_with(path, &bytes, self.durable)
    }

    pub fn alloc_dir(&self, alloc: &AllocId) -> PathBuf {
        self.root.join(file_name(alloc.as_str()))
    }

    pub fn alloc_file(&self, alloc: &AllocId) -> PathBuf {
        self.alloc_dir(alloc).join("alloc.json")
    }

    pub fn task_file(&self, alloc: &AllocId, task: &str) -> PathBuf {
        self.alloc_dir(alloc).join(format!("task-{}.json", file_name(task)))
    }

    /// A driver's private directory for one start attempt of a task.
    pub fn run_dir(&self, alloc: &AllocId, task: &str, attempt: u32) -> PathBuf {
        self.alloc_dir(alloc).join("run").join(format!("{}-{attempt}", file_name(task)))
    }

    /// The allocations with persisted state (directories holding an `alloc.json`).
    pub fn list_allocs(&self) -> Result<Vec<AllocId>, StateError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StateError::io(&self.root, e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StateError::io(&self.root, e))?;
            if entry.path().join("alloc.json").is_file() {
                ids.push(AllocId::new(unescape(&entry.file_name().to_string_lossy())));
            }
        }
        ids.sort();
        Ok(ids)
    }

    pub fn remove_alloc(&self, alloc: &AllocId) -> Result<(), StateError> {
        let dir = self.alloc_dir(alloc);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StateError::io(&dir, e)),
            _ => Ok(()),
        }
    }
}

/// A name made safe as one path component: letters, digits, `_`, `-` and inner `.` stay,
/// everything else becomes `%XX`, so two names never share a file.
pub fn file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = name.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SeededEntropy;

    #[test]
    fn node_identity_is_created_once_and_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeIdentity::load_or_create(dir.path(), &SeededEntropy::new(1)).unwrap();
        let second = NodeIdentity::load_or_create(dir.path(), &SeededEntropy::new(2)).unwrap();
        assert_eq!(first, second);
        assert_ne!(first.id.as_str(), first.secret_id);
    }

    #[test]
    fn a_corrupt_identity_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("node.json"), b"{not json").unwrap();
        let err = NodeIdentity::load_or_create(dir.path(), &SeededEntropy::new(1)).unwrap_err();
        assert!(err.to_string().contains("node.json"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.json");
        write_json(&path, &vec![1, 2, 3]).unwrap();
        write_json(&path, &vec![4]).unwrap();
        assert_eq!(read_json::<Vec<i32>>(&path).unwrap(), Some(vec![4]));
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("b.json")]);
        assert_eq!(read_json::<Vec<i32>>(&dir.path().join("missing.json")).unwrap(), None);
    }

    #[test]
    fn file_names_escape_what_is_not_safe_and_round_trip() {
        assert_eq!(file_name("web-1.x"), "web-1.x");
        assert_eq!(file_name("../x"), "%2E.%2Fx");
        assert_eq!(file_name("a b"), "a%20b");
        for name in ["web", "../x", "a b", "ü", "%41"] {
            assert_eq!(unescape(&file_name(name)), name);
        }
    }

    #[test]
    fn persisted_allocations_are_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path(), false);
        let id = AllocId::new("a1");
        assert!(state.list_allocs().unwrap().is_empty());
        state.write(&state.alloc_file(&id), &1).unwrap();
        std::fs::create_dir_all(state.alloc_dir(&AllocId::new("half-written"))).unwrap();
        assert_eq!(state.list_allocs().unwrap(), vec![id.clone()]);
        state.remove_alloc(&id).unwrap();
        state.remove_alloc(&id).unwrap();
        assert!(state.list_allocs().unwrap().is_empty());
    }
}
