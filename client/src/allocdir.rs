//! Allocation and task directories in Nomad's layout, so tasks find their files where
//! Nomad job files expect them:
//!
//! ```text
//! <data_dir>/alloc/<alloc_id>/alloc/{logs,data,tmp}      shared by the group's tasks
//! <data_dir>/alloc/<alloc_id>/<task>/{local,secrets,tmp} one per task (its working dir)
//! ```
//!
//! The directory goes when the allocation is garbage-collected (it disappears from the
//! set the servers send), not when its tasks finish: logs stay readable until then.

use std::path::{Path, PathBuf};

use stead_model::AllocId;

#[derive(Debug, thiserror::Error)]
pub enum AllocDirError {
    #[error("{what} \"{name}\" cannot name a directory (empty, \".\", \"..\" or containing \"/\" or NUL)")]
    BadName { what: &'static str, name: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// One allocation's directory tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocDir {
    root: PathBuf,
}

/// A task's directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDir {
    /// `<alloc>/<task>`: the task's working directory.
    pub dir: PathBuf,
    /// `NOMAD_TASK_DIR`.
    pub local: PathBuf,
    /// `NOMAD_SECRETS_DIR` (owner-only).
    pub secrets: PathBuf,
    pub tmp: PathBuf,
}

fn check_name(what: &'static str, name: &str) -> Result<(), AllocDirError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(AllocDirError::BadName { what, name: name.to_owned() });
    }
    Ok(())
}

impl AllocDir {
    /// The directory of `alloc` under `alloc_root` (`<data_dir>/alloc`).
    pub fn new(alloc_root: &Path, alloc: &AllocId) -> Result<Self, AllocDirError> {
        check_name("allocation ID", alloc.as_str())?;
        Ok(Self { root: alloc_root.join(alloc.as_str()) })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `NOMAD_ALLOC_DIR`: shared by the allocation's tasks.
    pub fn shared_dir(&self) -> PathBuf {
        self.root.join("alloc")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.shared_dir().join("logs")
    }

    pub fn task_dir(&self, task: &str) -> Result<TaskDir, AllocDirError> {
        check_name("task name", task)?;
        // A task named like a shared directory would share its files.
        if task == "alloc" {
            return Err(AllocDirError::BadName { what: "task name", name: task.to_owned() });
        }
        let dir = self.root.join(task);
        Ok(TaskDir { local: dir.join("local"), secrets: dir.join("secrets"), tmp: dir.join("tmp"), dir })
    }

    /// Creates the shared directories (idempotent).
    pub fn build(&self) -> Result<(), AllocDirError> {
        let shared = self.shared_dir();
        for dir in [shared.join("logs"), shared.join("data"), shared.join("tmp")] {
            create(&dir, 0o777)?;
        }
        Ok(())
    }

    /// Creates a task's directories (idempotent) and returns them.
    pub fn build_task(&self, task: &str) -> Result<TaskDir, AllocDirError> {
        self.build()?;
        let dirs = self.task_dir(task)?;
        create(&dirs.local, 0o777)?;
        create(&dirs.tmp, 0o777)?;
        create(&dirs.secrets, 0o700)?;
        Ok(dirs)
    }

    /// Removes the whole tree (idempotent).
    pub fn destroy(&self) -> Result<(), AllocDirError> {
        match std::fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(AllocDirError::Io { path: self.root.clone(), source: e })
            }
            _ => Ok(()),
        }
    }
}

fn create(dir: &Path, mode: u32) -> Result<(), AllocDirError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|source| AllocDirError::Io { path: dir.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_nomads_layout_and_destroys_it() {
        let root = tempfile::tempdir().unwrap();
        let dir = AllocDir::new(root.path(), &AllocId::new("a1")).unwrap();
        let task = dir.build_task("web").unwrap();
        for sub in ["alloc/logs", "alloc/data", "alloc/tmp", "web/local", "web/secrets", "web/tmp"] {
            assert!(root.path().join("a1").join(sub).is_dir(), "{sub}");
        }
        assert_eq!(task.dir, root.path().join("a1/web"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&task.secrets).unwrap().permissions().mode() & 0o777, 0o700);
        dir.build_task("web").unwrap();
        dir.destroy().unwrap();
        assert!(!root.path().join("a1").exists());
        dir.destroy().unwrap();
    }

    #[test]
    fn names_that_would_escape_the_tree_are_refused() {
        let root = tempfile::tempdir().unwrap();
        assert!(AllocDir::new(root.path(), &AllocId::new("../x")).is_err());
        assert!(AllocDir::new(root.path(), &AllocId::new("")).is_err());
        let dir = AllocDir::new(root.path(), &AllocId::new("a1")).unwrap();
        for bad in ["..", "a/b", "", "alloc"] {
            assert!(dir.task_dir(bad).is_err(), "{bad:?}");
        }
    }
}
