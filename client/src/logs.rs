//! Task logs: written to rotated files, read back as a stream of frames.
//!
//! A task's stdout and stderr go to `alloc/logs/<task>.stdout.<n>` and `.stderr.<n>`, as
//! in Nomad. [`RotatingWriter`] starts file `n + 1` when file `n` reaches the task's
//! `logs.max_file_size` and deletes the oldest beyond `logs.max_files`; a restarted
//! task (or executor) appends to the newest file, so the files of a stream always hold
//! its latest output in order.
//!
//! [`read_logs`] serves `/v1/client/fs/logs`: a stream of [`LogFrame`]s over the logical
//! concatenation of a stream's files, starting `offset` bytes from its start or end, at
//! most [`FRAME_BYTES_MAX`] per frame and never spanning two files. Following, it polls
//! for growth and for new files until the receiver drops it; otherwise it ends at the
//! end of the newest file. It uses only `std::fs` and tokio timers, so it also runs under
//! the simulator.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use stead_model::{AllocId, LogConfig};

/// Nomad's defaults for the `logs` block.
pub const DEFAULT_MAX_FILES: u32 = 10;
pub const DEFAULT_MAX_FILE_SIZE_MB: u64 = 10;
/// Largest frame the reader sends (Nomad's streaming frame size).
pub const FRAME_BYTES_MAX: usize = 64 * 1024;

/// Where rotation happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLimits {
    pub max_file_bytes: u64,
    pub max_files: u32,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self { max_file_bytes: DEFAULT_MAX_FILE_SIZE_MB << 20, max_files: DEFAULT_MAX_FILES }
    }
}

impl LogLimits {
    /// From a task's `logs` block; non-positive values fall back to Nomad's defaults.
    pub fn from_config(config: Option<&LogConfig>) -> Self {
        let mb =
            config.and_then(|c| c.max_file_size_mb).filter(|v| *v > 0).map_or(DEFAULT_MAX_FILE_SIZE_MB, |v| v as u64);
        let files = config.and_then(|c| c.max_files).filter(|v| *v > 0).map_or(DEFAULT_MAX_FILES, |v| v as u32);
        Self { max_file_bytes: mb << 20, max_files: files }
    }
}

/// Which stream of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogKind {
    Stdout,
    Stderr,
}

impl LogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Stdout => "stdout",
            LogKind::Stderr => "stderr",
        }
    }
}

impl std::str::FromStr for LogKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "stdout" => Ok(LogKind::Stdout),
            "stderr" => Ok(LogKind::Stderr),
            other => Err(format!("log type must be \"stdout\" or \"stderr\", not \"{other}\"")),
        }
    }
}

/// Where `offset` counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogOrigin {
    #[default]
    Start,
    End,
}

impl std::str::FromStr for LogOrigin {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "start" => Ok(LogOrigin::Start),
            "end" => Ok(LogOrigin::End),
            other => Err(format!("origin must be \"start\" or \"end\", not \"{other}\"")),
        }
    }
}

/// `<task>.stdout` / `<task>.stderr`: a stream's file names without the index.
pub fn log_prefix(task: &str, kind: LogKind) -> String {
    format!("{task}.{}", kind.as_str())
}

/// A stream's files in `dir`: `(index, size)`, oldest first.
pub fn list_log_files(dir: &Path, prefix: &str) -> std::io::Result<Vec<(u64, u64)>> {
    let mut files = Vec::new();
    let lead = format!("{prefix}.");
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(index) = name.to_str().and_then(|n| n.strip_prefix(&lead)).and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        // A file rotated out between the listing and here is simply not there.
        if let Ok(meta) = entry.metadata() {
            files.push((index, meta.len()));
        }
    }
    files.sort_unstable();
    Ok(files)
}

/// Opens directory `dir` itself, refusing a symlink (`ELOOP`). Tasks of isolated drivers
/// can write their allocation's `alloc/` directory, logs included, while the client and
/// the executor write and read the logs as root: a task must not be able to turn
/// `alloc/logs` or a log file into a link to a host file. So the directory is opened
/// without following a link, and files in it through [`open_in`].
pub fn open_dir_nofollow(dir: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW).open(dir)
}

/// Opens `name` in the directory `dir` (from [`open_dir_nofollow`]) for appending
/// (`append`, created if missing) or reading, never through a symlink, and only if it is
/// a regular file.
pub fn open_in(dir: &std::fs::File, name: &str, append: bool) -> std::io::Result<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let c_name = std::ffi::CString::new(name).map_err(|_| std::io::Error::other("a file name with a NUL byte"))?;
    let flags = libc::O_NOFOLLOW
        | libc::O_CLOEXEC
        | libc::O_NONBLOCK
        | if append { libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT } else { libc::O_RDONLY };
    // SAFETY: `openat` on a directory descriptor we hold, with a NUL-terminated name; the
    // returned descriptor is owned by the `File` at once.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c_name.as_ptr(), flags, 0o644 as libc::c_uint) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    if !file.metadata()?.is_file() {
        // A FIFO or a device node planted in place of a log (O_NONBLOCK kept the open
        // from blocking on a FIFO).
        return Err(std::io::Error::other(format!("{name} is not a regular file")));
    }
    Ok(file)
}

/// Appends to a stream's newest file, rotating at `max_file_bytes`.
#[derive(Debug)]
pub struct RotatingWriter {
    dir: PathBuf,
    /// `dir`, opened once: files are created and removed relative to it.
    dir_fd: std::fs::File,
    prefix: String,
    limits: LogLimits,
    index: u64,
    size: u64,
    file: std::fs::File,
}

impl RotatingWriter {
    /// Opens the newest file of `<dir>/<prefix>.<n>` for appending (file 0 if none).
    pub fn open(dir: &Path, prefix: &str, limits: LogLimits) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let dir_fd = open_dir_nofollow(dir)?;
        let (index, size) = list_log_files(dir, prefix)?.last().copied().unwrap_or((0, 0));
        let limits = LogLimits { max_file_bytes: limits.max_file_bytes.max(1), max_files: limits.max_files.max(1) };
        let file = open_in(&dir_fd, &format!("{prefix}.{index}"), true)?;
        let size = file.metadata().map_or(size, |m| m.len());
        Ok(Self { dir: dir.to_owned(), dir_fd, prefix: prefix.to_owned(), limits, index, size, file })
    }

    /// Writes all of `data`, splitting it across files at the size limit.
    pub fn write_all(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            if self.size >= self.limits.max_file_bytes {
                self.rotate()?;
            }
            let room = self.limits.max_file_bytes - self.size;
            let n = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            self.file.write_all(&data[..n])?;
            self.size += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.index += 1;
        self.file = open_in(&self.dir_fd, &format!("{}.{}", self.prefix, self.index), true)?;
        self.size = self.file.metadata()?.len();
        // Keep the newest `max_files`: everything at or below `index - max_files` goes.
        let keep_from = (self.index + 1).saturating_sub(u64::from(self.limits.max_files));
        for (old, _) in list_log_files(&self.dir, &self.prefix)? {
            if old < keep_from {
                let name = std::ffi::CString::new(format!("{}.{old}", self.prefix))
                    .map_err(|_| std::io::Error::other("a file name with a NUL byte"))?;
                // SAFETY: `unlinkat` relative to the directory we hold (a link in place
                // of an old file is removed itself, never what it points to).
                let rc = unsafe { libc::unlinkat(std::os::fd::AsRawFd::as_raw_fd(&self.dir_fd), name.as_ptr(), 0) };
                let err = std::io::Error::last_os_error();
                if rc != 0 && err.kind() != std::io::ErrorKind::NotFound {
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// The index of the file being written.
    pub fn index(&self) -> u64 {
        self.index
    }
}

/// Why logs cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("unknown allocation \"{0}\" on this node")]
    UnknownAlloc(AllocId),
    #[error("allocation \"{alloc}\" has no task \"{task}\"")]
    UnknownTask { alloc: AllocId, task: String },
    #[error("logging is disabled for task \"{task}\" of allocation \"{alloc}\"")]
    Disabled { alloc: AllocId, task: String },
    #[error("reading logs in {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// A chunk of a log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFrame {
    /// Relative to the allocation directory: `alloc/logs/<task>.stdout.0`.
    pub file: String,
    /// Where `data` starts in that file.
    pub offset: u64,
    pub data: Vec<u8>,
}

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    pub alloc_id: AllocId,
    pub task: String,
    pub kind: LogKind,
    pub origin: LogOrigin,
    /// Bytes from `origin` (towards the other end).
    pub offset: u64,
    pub follow: bool,
}

pub type LogStream = BoxStream<'static, Result<LogFrame, LogError>>;

/// Streams `<logs_dir>/<task>.<kind>.<n>` (see the module docs). `poll` is how often a
/// followed stream looks for more.
pub fn read_logs(
    logs_dir: PathBuf,
    task: &str,
    kind: LogKind,
    origin: LogOrigin,
    offset: u64,
    follow: bool,
    poll: Duration,
) -> LogStream {
    let reader = Reader {
        dir: logs_dir,
        prefix: log_prefix(task, kind),
        follow,
        poll,
        start: Some((origin, offset)),
        pos: (0, 0),
        open: None,
        done: false,
    };
    Box::pin(futures::stream::unfold(reader, |mut reader| async move {
        let item = reader.next_frame().await?;
        if item.is_err() {
            reader.done = true;
        }
        Some((item, reader))
    }))
}

struct Reader {
    dir: PathBuf,
    prefix: String,
    follow: bool,
    poll: Duration,
    /// Until the first file exists: where to start.
    start: Option<(LogOrigin, u64)>,
    /// (file index, offset in it).
    pos: (u64, u64),
    open: Option<(u64, std::fs::File)>,
    done: bool,
}

enum Step {
    Frame(LogFrame),
    /// Nothing more now: wait (following) or end.
    Idle,
    /// Position changed; look again.
    Moved,
    /// The log directory is gone (the allocation was collected).
    Gone,
}

impl Reader {
    async fn next_frame(&mut self) -> Option<Result<LogFrame, LogError>> {
        if self.done {
            return None;
        }
        loop {
            match self.step() {
                Ok(Step::Frame(frame)) => return Some(Ok(frame)),
                Ok(Step::Moved) => continue,
                Ok(Step::Gone) => return None,
                Ok(Step::Idle) if self.follow => tokio::time::sleep(self.poll).await,
                Ok(Step::Idle) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn io(&self, source: std::io::Error) -> LogError {
        LogError::Io { path: self.dir.clone(), source }
    }

    fn files(&self) -> Result<Option<Vec<(u64, u64)>>, LogError> {
        match list_log_files(&self.dir, &self.prefix) {
            Ok(files) => Ok(Some(files)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(e)),
        }
    }

    fn step(&mut self) -> Result<Step, LogError> {
        if let Some((origin, offset)) = self.start {
            let Some(files) = self.files()? else { return Ok(Step::Gone) };
            if files.is_empty() {
                return Ok(Step::Idle);
            }
            self.pos = resolve_start(&files, origin, offset);
            self.start = None;
        }
        let (index, offset) = self.pos;
        if self.open.as_ref().is_none_or(|(i, _)| *i != index) {
            match open_dir_nofollow(&self.dir).and_then(|d| open_in(&d, &format!("{}.{index}", self.prefix), false)) {
                Ok(f) => self.open = Some((index, f)),
                // Rotated out before we got to it: go on with the oldest file left.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let Some(files) = self.files()? else { return Ok(Step::Gone) };
                    return Ok(match files.iter().find(|(i, _)| *i > index) {
                        Some((next, _)) => {
                            self.pos = (*next, 0);
                            Step::Moved
                        }
                        None => Step::Idle,
                    });
                }
                Err(e) => return Err(self.io(e)),
            }
        }
        let n = self.read_at(offset)?;
        if let Some(frame) = n {
            return Ok(Step::Frame(frame));
        }
        // At the end of this file. A newer one means this one is complete (the writer
        // starts file n + 1 only after filling file n): read once more for what came
        // before the rotation, then move on.
        let Some(files) = self.files()? else { return Ok(Step::Gone) };
        let Some(&(next, _)) = files.iter().find(|(i, _)| *i > index) else {
            let len = self.open.as_ref().and_then(|(_, f)| f.metadata().ok()).map_or(0, |m| m.len());
            if len < offset {
                // Truncated under us: start the file over.
                self.pos = (index, 0);
                return Ok(Step::Moved);
            }
            return Ok(Step::Idle);
        };
        if let Some(frame) = self.read_at(offset)? {
            return Ok(Step::Frame(frame));
        }
        self.pos = (next, 0);
        Ok(Step::Moved)
    }

    fn read_at(&mut self, offset: u64) -> Result<Option<LogFrame>, LogError> {
        let Some((index, file)) = self.open.as_mut() else { return Ok(None) };
        let index = *index;
        let mut buf = vec![0u8; FRAME_BYTES_MAX];
        let read = file.seek(SeekFrom::Start(offset)).and_then(|_| file.read(&mut buf));
        let n = read.map_err(|e| LogError::Io { path: self.dir.clone(), source: e })?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        self.pos = (index, offset + n as u64);
        Ok(Some(LogFrame { file: format!("alloc/logs/{}.{index}", self.prefix), offset, data: buf }))
    }
}

/// Where `offset` from `origin` falls in the concatenation of `files` (non-empty):
/// `(index, offset in file)`, clamped to the ends.
fn resolve_start(files: &[(u64, u64)], origin: LogOrigin, offset: u64) -> (u64, u64) {
    match origin {
        LogOrigin::Start => {
            let mut remaining = offset;
            for &(index, size) in files {
                if remaining < size {
                    return (index, remaining);
                }
                remaining -= size;
            }
            files.last().map_or((0, 0), |&(i, s)| (i, s))
        }
        LogOrigin::End => {
            let mut remaining = offset;
            for &(index, size) in files.iter().rev() {
                if remaining <= size {
                    return (index, size - remaining);
                }
                remaining -= size;
            }
            files.first().map_or((0, 0), |&(i, _)| (i, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn limits(bytes: u64, files: u32) -> LogLimits {
        LogLimits { max_file_bytes: bytes, max_files: files }
    }

    #[test]
    fn log_files_and_the_logs_dir_are_never_opened_through_a_symlink_a_task_planted() {
        let tmp = tempfile::tempdir().unwrap();
        let (logs, victim) = (tmp.path().join("logs"), tmp.path().join("host-file"));
        std::fs::create_dir(&logs).unwrap();
        std::fs::write(&victim, "host data\n").unwrap();

        // A link in place of the newest log file: the writer refuses it, the reader too.
        std::os::unix::fs::symlink(&victim, logs.join("t.stdout.3")).unwrap();
        let err = RotatingWriter::open(&logs, "t.stdout", limits(100, 2)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        let dir = open_dir_nofollow(&logs).unwrap();
        assert!(open_in(&dir, "t.stdout.3", false).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host data\n");

        // Rotating out an old file that is a link removes the link, not its target.
        std::fs::remove_file(logs.join("t.stdout.3")).unwrap();
        std::os::unix::fs::symlink(&victim, logs.join("t.stderr.0")).unwrap();
        std::fs::write(logs.join("t.stderr.1"), "").unwrap();
        let mut w = RotatingWriter::open(&logs, "t.stderr", limits(4, 1)).unwrap();
        w.write_all(b"12345678").unwrap();
        assert!(std::fs::symlink_metadata(logs.join("t.stderr.0")).is_err(), "the old link is gone");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host data\n");

        // The logs directory itself replaced by a link to a host directory.
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let linked = tmp.path().join("linked-logs");
        std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
        assert!(RotatingWriter::open(&linked, "t.stdout", limits(100, 2)).is_err());
        assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none(), "nothing written through the link");
    }

    fn contents(dir: &Path, prefix: &str) -> Vec<(u64, String)> {
        list_log_files(dir, prefix)
            .unwrap()
            .into_iter()
            .map(|(i, _)| (i, std::fs::read_to_string(dir.join(format!("{prefix}.{i}"))).unwrap()))
            .collect()
    }

    async fn collect(stream: LogStream) -> Vec<LogFrame> {
        stream.map(|f| f.unwrap()).collect().await
    }

    fn joined(frames: &[LogFrame]) -> String {
        frames.iter().map(|f| String::from_utf8_lossy(&f.data).into_owned()).collect()
    }

    #[test]
    fn limits_come_from_the_logs_block_with_nomads_defaults() {
        assert_eq!(LogLimits::from_config(None), limits(10 << 20, 10));
        let config = LogConfig { max_files: Some(3), max_file_size_mb: Some(1), ..Default::default() };
        assert_eq!(LogLimits::from_config(Some(&config)), limits(1 << 20, 3));
        let bad = LogConfig { max_files: Some(0), max_file_size_mb: Some(-1), ..Default::default() };
        assert_eq!(LogLimits::from_config(Some(&bad)), limits(10 << 20, 10));
    }

    #[test]
    fn writer_rotates_at_the_size_limit_and_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RotatingWriter::open(dir.path(), "web.stdout", limits(10, 3)).unwrap();
        w.write_all(b"0123456789abcdefghij").unwrap();
        w.write_all(b"ABCDEFGHIJ").unwrap();
        w.write_all(b"xyz").unwrap();
        assert_eq!(
            contents(dir.path(), "web.stdout"),
            vec![(1, "abcdefghij".to_owned()), (2, "ABCDEFGHIJ".to_owned()), (3, "xyz".to_owned())]
        );
        assert_eq!(w.index(), 3);
    }

    #[test]
    fn reopened_writer_appends_to_the_newest_file() {
        let dir = tempfile::tempdir().unwrap();
        RotatingWriter::open(dir.path(), "t.stderr", limits(4, 5)).unwrap().write_all(b"aaaabb").unwrap();
        RotatingWriter::open(dir.path(), "t.stderr", limits(4, 5)).unwrap().write_all(b"ccc").unwrap();
        assert_eq!(
            contents(dir.path(), "t.stderr"),
            vec![(0, "aaaa".to_owned()), (1, "bbcc".to_owned()), (2, "c".to_owned())]
        );
        // Other streams' files are not touched or counted.
        RotatingWriter::open(dir.path(), "t.stdout", limits(4, 1)).unwrap().write_all(b"zzzzzzzzz").unwrap();
        assert_eq!(contents(dir.path(), "t.stderr").len(), 3);
        assert_eq!(contents(dir.path(), "t.stdout"), vec![(2, "z".to_owned())]);
    }

    #[test]
    fn start_positions_resolve_across_files_and_clamp() {
        let files = [(3, 10), (4, 10), (5, 5)];
        assert_eq!(resolve_start(&files, LogOrigin::Start, 0), (3, 0));
        assert_eq!(resolve_start(&files, LogOrigin::Start, 10), (4, 0));
        assert_eq!(resolve_start(&files, LogOrigin::Start, 23), (5, 3));
        assert_eq!(resolve_start(&files, LogOrigin::Start, 99), (5, 5));
        assert_eq!(resolve_start(&files, LogOrigin::End, 0), (5, 5));
        assert_eq!(resolve_start(&files, LogOrigin::End, 5), (5, 0));
        assert_eq!(resolve_start(&files, LogOrigin::End, 6), (4, 9));
        assert_eq!(resolve_start(&files, LogOrigin::End, 99), (3, 0));
    }

    #[tokio::test]
    async fn reader_frames_the_concatenation_file_by_file_with_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RotatingWriter::open(dir.path(), "web.stdout", limits(10, 3)).unwrap();
        w.write_all(b"0123456789abcdefghijABCDEFGHIJxyz").unwrap();
        let read = |origin, offset| {
            read_logs(dir.path().to_owned(), "web", LogKind::Stdout, origin, offset, false, Duration::from_millis(10))
        };

        let frames = collect(read(LogOrigin::Start, 0)).await;
        assert_eq!(joined(&frames), "abcdefghijABCDEFGHIJxyz");
        let shape: Vec<(&str, u64, usize)> = frames.iter().map(|f| (f.file.as_str(), f.offset, f.data.len())).collect();
        assert_eq!(
            shape,
            vec![
                ("alloc/logs/web.stdout.1", 0, 10),
                ("alloc/logs/web.stdout.2", 0, 10),
                ("alloc/logs/web.stdout.3", 0, 3)
            ]
        );

        let frames = collect(read(LogOrigin::Start, 15)).await;
        assert_eq!((frames[0].file.as_str(), frames[0].offset), ("alloc/logs/web.stdout.2", 5));
        assert_eq!(joined(&frames), "FGHIJxyz");
        assert_eq!(joined(&collect(read(LogOrigin::End, 5)).await), "IJxyz");
        assert_eq!(joined(&collect(read(LogOrigin::End, 0)).await), "");
        // Stderr has no files: an empty stream, not an error.
        let stderr =
            read_logs(dir.path().to_owned(), "web", LogKind::Stderr, LogOrigin::Start, 0, false, Duration::ZERO);
        assert!(collect(stderr).await.is_empty());
    }

    #[tokio::test]
    async fn frames_are_at_most_64_kib() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..150 * 1024).map(|i| (i % 251) as u8).collect();
        RotatingWriter::open(dir.path(), "t.stdout", LogLimits::default()).unwrap().write_all(&data).unwrap();
        let stream = read_logs(dir.path().to_owned(), "t", LogKind::Stdout, LogOrigin::Start, 0, false, Duration::ZERO);
        let frames = collect(stream).await;
        let sizes: Vec<usize> = frames.iter().map(|f| f.data.len()).collect();
        assert_eq!(sizes, vec![FRAME_BYTES_MAX, FRAME_BYTES_MAX, 150 * 1024 - 2 * FRAME_BYTES_MAX]);
        assert_eq!(frames[1].offset, FRAME_BYTES_MAX as u64);
        assert_eq!(frames.into_iter().flat_map(|f| f.data).collect::<Vec<u8>>(), data);
    }

    #[tokio::test]
    async fn followed_reader_sees_growth_and_new_files_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let poll = Duration::from_millis(5);
        // Following before the task wrote anything waits for the first file.
        let mut stream = read_logs(dir.path().to_owned(), "t", LogKind::Stdout, LogOrigin::Start, 0, true, poll);
        let mut w = RotatingWriter::open(dir.path(), "t.stdout", limits(4, 10)).unwrap();
        w.write_all(b"ab").unwrap();
        let mut seen = String::new();
        while seen != "ab" {
            seen.push_str(&String::from_utf8_lossy(&stream.next().await.unwrap().unwrap().data));
        }
        w.write_all(b"cdefghij").unwrap();
        let mut files = Vec::new();
        while seen != "abcdefghij" {
            let frame = stream.next().await.unwrap().unwrap();
            files.push(frame.file.clone());
            seen.push_str(&String::from_utf8_lossy(&frame.data));
        }
        assert_eq!(files.last().map(String::as_str), Some("alloc/logs/t.stdout.2"));
        drop(stream);
    }

    #[tokio::test]
    async fn reader_skips_files_rotated_out_before_it_reached_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RotatingWriter::open(dir.path(), "t.stdout", limits(2, 2)).unwrap();
        w.write_all(b"aabb").unwrap();
        let mut stream =
            read_logs(dir.path().to_owned(), "t", LogKind::Stdout, LogOrigin::Start, 0, true, Duration::from_millis(5));
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!((first.file.as_str(), first.data.as_slice()), ("alloc/logs/t.stdout.0", b"aa".as_slice()));
        // Files 1 and 2 go before the reader gets past file 0.
        w.write_all(b"ccddee").unwrap();
        let mut rest = String::new();
        while !rest.ends_with("ee") {
            rest.push_str(&String::from_utf8_lossy(&stream.next().await.unwrap().unwrap().data));
        }
        assert_eq!(rest, "ddee");
    }
}
