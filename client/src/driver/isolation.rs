//! The exec driver's isolation: what a task gets instead of the host.
//!
//! The driver describes it ([`IsolationSpec`], part of the executor's spec file); the
//! executor carries it out around the fork:
//!
//! * **pid namespace**: the executor unshares its children's pid namespace
//!   ([`PidNamespace`]) just for the fork, so the task is PID 1 of a namespace of its
//!   own (and everything it leaves behind dies with it), then returns to its own (a
//!   process whose children go to another pid namespace cannot start threads).
//! * everything else happens in the child between fork and exec ([`Prepared::enter`]),
//!   from values prepared before the fork (paths as C strings, open `cgroup.procs`
//!   files), with only async-signal-safe syscalls: join the cgroups; unshare the
//!   **mount, ipc and uts namespaces**; make every mount a slave (nothing the task mounts
//!   reaches the host; the host's unmounts still reach the task); bind the task
//!   directory onto itself and mount into it: each `chroot_env` path read-only, the
//!   allocation directory at `/alloc`, a fresh `proc` (the task sees only its own
//!   processes) and a small `/dev` (a tmpfs with `null`, `zero`, `full`, `random`,
//!   `urandom`, `tty`, the `fd` links and a `/dev/shm` tmpfs); set the hostname;
//!   `pivot_root` into the task directory and detach the host's tree (plain `chroot`
//!   where the root cannot be pivoted, an initramfs root); change to the working
//!   directory; keep only the allowed capabilities.
//!
//! The mounts live in the task's mount namespace only, so they go when its last process
//! does: nothing is ever mounted in the host's namespace, and the task directory holds
//! only the (empty) mount points afterwards.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cgroup::CgroupPlan;

/// What the executor sets up around the task (the `isolation` of its spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationSpec {
    /// The task directory: the task's `/`.
    pub root: PathBuf,
    /// In mount order.
    pub mounts: Vec<Mount>,
    pub hostname: String,
    /// The capabilities the task keeps (names as in [`CAPABILITIES`]); all others are
    /// dropped from its bounding set.
    pub capabilities: Vec<String>,
    pub cgroup: Option<CgroupPlan>,
}

/// One mount inside the task's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Relative to the root (`usr`, `alloc`).
    pub target: PathBuf,
    pub kind: MountKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// A host file or directory.
    Bind { source: PathBuf, read_only: bool },
    /// A `proc` of the task's pid namespace.
    Proc,
    /// A tmpfs with the usual device nodes.
    Dev,
}

/// Where the task sees the allocation directory; `proc` and `dev` are mounted too, and
/// `local`, `secrets` and `tmp` are the task directory's own. `chroot_env` may not map
/// onto these.
const RESERVED: &[&str] = &["alloc", "local", "secrets", "tmp", "proc", "dev"];

/// `/usr/lib` → `usr/lib`; `None` for the root itself or a path with `..`.
fn inside_root(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The mounts for a task: the `chroot_env` paths that exist on the host (`exists`)
/// read-only, parents before children, then `/alloc`, `/proc`, `/dev`.
pub fn plan_mounts(
    chroot_env: &BTreeMap<String, String>,
    alloc_dir: &Path,
    exists: impl Fn(&Path) -> bool,
) -> Result<Vec<Mount>, String> {
    let mut binds = Vec::new();
    for (host, inside) in chroot_env {
        let target = inside_root(inside).ok_or_else(|| {
            format!("client chroot_env maps {host:?} to {inside:?}: the target must be a path below / without \"..\"")
        })?;
        let first = target.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or_default();
        if RESERVED.contains(&first) {
            return Err(format!(
                "client chroot_env maps {host:?} to {inside:?}, which the exec driver uses itself (/{})",
                RESERVED.join(", /")
            ));
        }
        if !Path::new(host).is_absolute() {
            return Err(format!("client chroot_env source {host:?} must be an absolute host path"));
        }
        if exists(Path::new(host)) {
            binds.push(Mount { target, kind: MountKind::Bind { source: host.into(), read_only: true } });
        }
    }
    binds.sort_by(|a, b| (a.target.components().count(), &a.target).cmp(&(b.target.components().count(), &b.target)));
    binds.push(Mount {
        target: "alloc".into(),
        kind: MountKind::Bind { source: alloc_dir.to_owned(), read_only: false },
    });
    binds.push(Mount { target: "proc".into(), kind: MountKind::Proc });
    binds.push(Mount { target: "dev".into(), kind: MountKind::Dev });
    Ok(binds)
}

/// `<task>-<first 8 of the alloc ID>`, cut to a valid host name (63 bytes of letters,
/// digits and `-`).
pub fn hostname(task: &str, alloc_id: &str) -> String {
    let short: String = alloc_id.chars().take(8).collect();
    let name: String = format!("{task}-{short}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .take(63)
        .collect();
    name.trim_matches('-').to_owned()
}

/// Linux capabilities by number (`capability.h`).
pub const CAPABILITIES: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// What an exec task keeps by default, and the most it may add (Nomad's default
/// `allow_caps` for exec: Docker's default set without `net_raw`).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "audit_write",
    "chown",
    "dac_override",
    "fowner",
    "fsetid",
    "kill",
    "mknod",
    "net_bind_service",
    "setfcap",
    "setgid",
    "setpcap",
    "setuid",
    "sys_chroot",
];

/// `CAP_SYS_ADMIN`, `sys_admin` → `sys_admin`; `None` if no such capability.
fn capability(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
    CAPABILITIES.iter().copied().find(|c| *c == bare)
}

/// The capabilities a task keeps: the default set, less `cap_drop`, plus `cap_add`
/// (which may only add back what the default allows). `"all"` means every allowed one.
pub fn decide_capabilities(cap_add: &[String], cap_drop: &[String]) -> Result<Vec<String>, String> {
    let parse = |key: &str, names: &[String]| -> Result<Vec<&'static str>, String> {
        let mut out = Vec::new();
        for name in names {
            if name.trim().eq_ignore_ascii_case("all") {
                out.extend_from_slice(DEFAULT_CAPABILITIES);
                continue;
            }
            out.push(capability(name).ok_or_else(|| format!("{key}: unknown capability {name:?}"))?);
        }
        Ok(out)
    };
    let (add, drop) = (parse("cap_add", cap_add)?, parse("cap_drop", cap_drop)?);
    if let Some(denied) = add.iter().find(|c| !DEFAULT_CAPABILITIES.contains(c)) {
        return Err(format!(
            "cap_add: {denied:?} is not allowed for exec tasks (allowed: {})",
            DEFAULT_CAPABILITIES.join(", ")
        ));
    }
    let mut keep: Vec<&str> = DEFAULT_CAPABILITIES.iter().copied().filter(|c| !drop.contains(c)).collect();
    keep.extend(add);
    keep.sort_by_key(|c| CAPABILITIES.iter().position(|k| k == c));
    keep.dedup();
    Ok(keep.into_iter().map(str::to_owned).collect())
}

/// The namespaces the exec driver needs (`/proc/self/ns/<name>`).
pub const NAMESPACES: &[&str] = &["pid", "mnt", "ipc", "uts"];

/// Which of [`NAMESPACES`] this kernel lacks.
pub fn missing_namespaces() -> Vec<&'static str> {
    NAMESPACES.iter().copied().filter(|ns| !Path::new("/proc/self/ns").join(ns).exists()).collect()
}

#[cfg(target_os = "linux")]
pub use sys::{PidNamespace, Prepared};

#[cfg(target_os = "linux")]
mod sys {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};

    use super::{CAPABILITIES, IsolationSpec, MountKind};

    /// The highest capability number when the kernel does not say.
    const CAP_LAST_DEFAULT: u32 = 40;

    fn cstring(path: &Path) -> Result<CString, String> {
        CString::new(path.as_os_str().as_bytes()).map_err(|_| format!("path {} contains a NUL byte", path.display()))
    }

    fn errno() -> std::io::Error {
        std::io::Error::last_os_error()
    }

    /// One syscall (or a few) of [`Prepared::enter`], on prepared values only.
    enum Op {
        JoinCgroup(OwnedFd),
        Unshare(libc::c_int),
        SlaveMounts,
        Mount { source: CString, target: CString, fstype: Option<CString>, flags: libc::c_ulong, data: Option<CString> },
        Remount { target: CString, flags: libc::c_ulong },
        Mknod { path: CString, dev: libc::dev_t },
        Symlink { target: CString, link: CString },
        Mkdir(CString),
        Hostname(CString),
        PivotRoot(CString),
        Chdir(CString),
        Capabilities { keep: u64, last: u32 },
    }

    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: libc::c_int,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }

    const CAP_VERSION_3: u32 = 0x2008_0522;

    fn check(rc: libc::c_int) -> std::io::Result<()> {
        if rc == 0 { Ok(()) } else { Err(errno()) }
    }

    fn opt_ptr(s: &Option<CString>) -> *const libc::c_char {
        s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
    }

    impl Op {
        /// SAFETY (for the caller): runs in the forked child; every call here is a raw
        /// syscall on memory prepared before the fork, nothing allocates or locks.
        unsafe fn run(&self) -> std::io::Result<()> {
            // SAFETY: see above; pointers are to live, NUL-terminated strings.
            unsafe {
                match self {
                    Op::JoinCgroup(fd) => {
                        // "0" is the writing process itself.
                        if libc::write(fd.as_raw_fd(), c"0".as_ptr().cast(), 1) == 1 { Ok(()) } else { Err(errno()) }
                    }
                    Op::Unshare(flags) => check(libc::unshare(*flags)),
                    Op::SlaveMounts => check(libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_SLAVE,
                        std::ptr::null(),
                    )),
                    Op::Mount { source, target, fstype, flags, data } => check(libc::mount(
                        source.as_ptr(),
                        target.as_ptr(),
                        opt_ptr(fstype),
                        *flags,
                        opt_ptr(data).cast(),
                    )),
                    Op::Remount { target, flags } => check(libc::mount(
                        std::ptr::null(),
                        target.as_ptr(),
                        std::ptr::null(),
                        *flags,
                        std::ptr::null(),
                    )),
                    Op::Mknod { path, dev } => {
                        check(libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, *dev))?;
                        // mknod's mode went through the umask.
                        check(libc::chmod(path.as_ptr(), 0o666))
                    }
                    Op::Symlink { target, link } => check(libc::symlink(target.as_ptr(), link.as_ptr())),
                    Op::Mkdir(path) => check(libc::mkdir(path.as_ptr(), 0o755)),
                    Op::Hostname(name) => check(libc::sethostname(name.as_ptr(), name.as_bytes().len())),
                    Op::PivotRoot(root) => {
                        check(libc::chdir(root.as_ptr()))?;
                        // Put the old root on top of the new one, then detach it: the
                        // host's tree is then unreachable from the task.
                        if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) == 0 {
                            check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH))?;
                        } else if errno().raw_os_error() == Some(libc::EINVAL) {
                            // An initramfs root cannot be pivoted away from.
                            check(libc::chroot(c".".as_ptr()))?;
                            CHROOTED_ONLY.store(true, std::sync::atomic::Ordering::SeqCst);
                        } else {
                            return Err(errno());
                        }
                        check(libc::chdir(c"/".as_ptr()))
                    }
                    Op::Chdir(dir) => check(libc::chdir(dir.as_ptr())),
                    Op::Capabilities { keep, last } => {
                        let mut keep = *keep;
                        if CHROOTED_ONLY.load(std::sync::atomic::Ordering::SeqCst) {
                            keep &= !(1u64 << CAP_SYS_CHROOT);
                        }
                        for cap in 0..=*last {
                            if keep & (1u64 << cap) == 0 {
                                check(libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0))?;
                            }
                        }
                        // Not supported before Linux 4.3, where there is no ambient set.
                        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0);
                        let mut header = CapHeader { version: CAP_VERSION_3, pid: 0 };
                        let part = |shift: u32| {
                            let bits = (keep >> shift) as u32;
                            CapData { effective: bits, permitted: bits, inheritable: bits }
                        };
                        let data = [part(0), part(32)];
                        if libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) == 0 {
                            Ok(())
                        } else {
                            Err(errno())
                        }
                    }
                }
            }
        }
    }

    struct Step {
        op: Op,
        /// What the step does, for the error when it fails.
        what: String,
        /// A step on a path that may not exist on this kernel (`/proc/kcore`): `ENOENT`
        /// skips it.
        optional: bool,
    }

    struct StepList(Vec<Step>);

    impl StepList {
        fn add(&mut self, op: Op, what: String) {
            self.0.push(Step { op, what, optional: false });
        }

        fn optional(&mut self, op: Op, what: String) {
            self.0.push(Step { op, what, optional: true });
        }
    }

    /// Set in the child when the root could only be `chroot`ed (an initramfs root):
    /// `CAP_SYS_CHROOT` would then let the task climb out, so it is not kept.
    static CHROOTED_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    const CAP_SYS_CHROOT: u32 = 18;

    /// Under the task's `/proc`: made read-only (the kernel's knobs; the task runs as
    /// root, and uid 0 is what most of them check) ...
    const PROC_READ_ONLY: &[&str] = &["sys", "sysrq-trigger", "irq", "bus", "fs"];
    /// ... and hidden behind `/dev/null` (kernel memory, keys, timers), as runc does.
    const PROC_MASKED: &[&str] = &["kcore", "keys", "timer_list", "sched_debug", "latency_stats", "timer_stats"];

    /// Everything [`Prepared::enter`] needs, made before the fork.
    pub struct Prepared {
        steps: Vec<Step>,
        /// The child writes the index of a failed step here (both ends close on exec).
        report_read: OwnedFd,
        report_write: OwnedFd,
    }

    /// Makes `root/rel` exist as a directory (or, if `file`, an empty file), refusing
    /// symlinks on the way: the task directory is the task's to write, and a symlink
    /// there must not point a mount (or a `mkdir`) at the host.
    fn mount_point(root: &Path, rel: &Path, file: bool) -> Result<PathBuf, String> {
        let mut path = root.to_owned();
        let parts: Vec<_> = rel.components().collect();
        for (i, part) in parts.iter().enumerate() {
            path.push(part);
            let want_file = file && i + 1 == parts.len();
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(format!("{} is a symlink; refusing to mount over it", path.display()));
                }
                Ok(m) if m.is_dir() == want_file => {
                    let want = if want_file { "a file" } else { "a directory" };
                    return Err(format!("{} is not {want}; cannot mount on it", path.display()));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let made =
                        if want_file { std::fs::File::create(&path).map(drop) } else { std::fs::create_dir(&path) };
                    made.map_err(|e| format!("cannot create mount point {}: {e}", path.display()))?;
                }
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        Ok(path)
    }

    /// `nosuid`, `nodev` and `noexec` of the file system `path` is on, which a
    /// read-only remount of a bind of it keeps.
    fn kept_flags(path: &Path) -> libc::c_ulong {
        let Ok(c) = cstring(path) else { return 0 };
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
        // SAFETY: statvfs fills the struct it is given.
        if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
            return 0;
        }
        // SAFETY: statvfs succeeded, so the struct is initialised.
        let f = unsafe { st.assume_init() }.f_flag;
        [(libc::ST_NOSUID, libc::MS_NOSUID), (libc::ST_NODEV, libc::MS_NODEV), (libc::ST_NOEXEC, libc::MS_NOEXEC)]
            .into_iter()
            .filter(|(st, _)| f & st != 0)
            .fold(0, |acc, (_, ms)| acc | ms)
    }

    fn capability_mask(names: &[String]) -> Result<u64, String> {
        names.iter().try_fold(0u64, |mask, name| {
            let n =
                CAPABILITIES.iter().position(|c| c == name).ok_or_else(|| format!("unknown capability {name:?}"))?;
            Ok(mask | (1u64 << n))
        })
    }

    impl Prepared {
        /// Creates the mount points in the task directory and prepares every step, so
        /// that the child only makes syscalls. `cwd` is the working directory inside
        /// the root.
        pub fn new(spec: &IsolationSpec, cwd: &Path) -> Result<Self, String> {
            let root = std::fs::canonicalize(&spec.root)
                .map_err(|e| format!("task directory {}: {e}", spec.root.display()))?;
            let mut steps = StepList(Vec::new());
            for procs in spec.cgroup.iter().flat_map(|c| &c.procs) {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(procs)
                    .map_err(|e| format!("cannot open {}: {e}", procs.display()))?;
                steps.add(Op::JoinCgroup(file.into()), format!("joining the cgroup ({})", procs.display()));
            }
            steps.add(
                Op::Unshare(libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS),
                "creating the mount, ipc and uts namespaces".to_owned(),
            );
            steps.add(Op::SlaveMounts, "making the task's mounts slaves of the host's".to_owned());
            let root_c = cstring(&root)?;
            steps.add(
                Op::Mount {
                    source: root_c.clone(),
                    target: root_c.clone(),
                    fstype: None,
                    flags: libc::MS_BIND | libc::MS_REC,
                    data: None,
                },
                format!("binding the task directory {} onto itself", root.display()),
            );
            // What the task can write holds no device nodes or set-uid files that work.
            steps.add(
                Op::Remount {
                    target: root_c.clone(),
                    flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV | kept_flags(&root),
                },
                format!("making the task directory {} nosuid and nodev", root.display()),
            );
            let tmpfs = |options: &str| (Some(c"tmpfs".to_owned()), Some(CString::new(options).unwrap_or_default()));
            for mount in &spec.mounts {
                match &mount.kind {
                    MountKind::Bind { source, read_only } => {
                        let Ok(meta) = std::fs::metadata(source) else { continue }; // Gone: skip.
                        let target = mount_point(&root, &mount.target, !meta.is_dir())?;
                        let (source_c, target_c) = (cstring(source)?, cstring(&target)?);
                        let flags = libc::MS_BIND | if meta.is_dir() { libc::MS_REC } else { 0 };
                        let what = format!("binding {} at {}", source.display(), target.display());
                        steps.add(
                            Op::Mount { source: source_c, target: target_c.clone(), fstype: None, flags, data: None },
                            what.clone(),
                        );
                        let (flags, how) = if *read_only {
                            (libc::MS_RDONLY | libc::MS_NODEV, "read-only and nodev")
                        } else {
                            (libc::MS_NOSUID | libc::MS_NODEV, "nosuid and nodev")
                        };
                        let flags = libc::MS_BIND | libc::MS_REMOUNT | flags | kept_flags(source);
                        steps.add(Op::Remount { target: target_c, flags }, format!("{what}: making it {how}"));
                    }
                    MountKind::Proc => {
                        let target = mount_point(&root, &mount.target, false)?;
                        steps.add(
                            Op::Mount {
                                source: c"proc".to_owned(),
                                target: cstring(&target)?,
                                fstype: Some(c"proc".to_owned()),
                                flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                                data: None,
                            },
                            format!("mounting proc at {}", target.display()),
                        );
                        for name in PROC_READ_ONLY {
                            let path = cstring(&target.join(name))?;
                            let what = format!("making {} read-only", target.join(name).display());
                            let bind = Op::Mount {
                                source: path.clone(),
                                target: path.clone(),
                                fstype: None,
                                flags: libc::MS_BIND | libc::MS_REC,
                                data: None,
                            };
                            let flags = libc::MS_BIND
                                | libc::MS_REMOUNT
                                | libc::MS_RDONLY
                                | libc::MS_NOSUID
                                | libc::MS_NODEV
                                | libc::MS_NOEXEC;
                            steps.optional(bind, what.clone());
                            steps.optional(Op::Remount { target: path, flags }, what);
                        }
                        for name in PROC_MASKED {
                            let path = target.join(name);
                            let mask = Op::Mount {
                                source: c"/dev/null".to_owned(),
                                target: cstring(&path)?,
                                fstype: None,
                                flags: libc::MS_BIND,
                                data: None,
                            };
                            steps.optional(mask, format!("hiding {}", path.display()));
                        }
                    }
                    MountKind::Dev => {
                        let dev = mount_point(&root, &mount.target, false)?;
                        let (fstype, data) = tmpfs("mode=755,size=65536k");
                        steps.add(
                            Op::Mount {
                                source: c"tmpfs".to_owned(),
                                target: cstring(&dev)?,
                                fstype,
                                flags: libc::MS_NOSUID | libc::MS_NOEXEC,
                                data,
                            },
                            format!("mounting a tmpfs at {}", dev.display()),
                        );
                        for (name, major, minor) in [
                            ("null", 1, 3),
                            ("zero", 1, 5),
                            ("full", 1, 7),
                            ("random", 1, 8),
                            ("urandom", 1, 9),
                            ("tty", 5, 0),
                        ] {
                            let path = dev.join(name);
                            steps.add(
                                Op::Mknod { path: cstring(&path)?, dev: libc::makedev(major, minor) },
                                format!("creating {}", path.display()),
                            );
                        }
                        for (link, target) in [
                            ("fd", "/proc/self/fd"),
                            ("stdin", "/proc/self/fd/0"),
                            ("stdout", "/proc/self/fd/1"),
                            ("stderr", "/proc/self/fd/2"),
                        ] {
                            let link = dev.join(link);
                            steps.add(
                                Op::Symlink { target: cstring(Path::new(target))?, link: cstring(&link)? },
                                format!("linking {} to {target}", link.display()),
                            );
                        }
                        let shm = dev.join("shm");
                        steps.add(Op::Mkdir(cstring(&shm)?), format!("creating {}", shm.display()));
                        let (fstype, data) = tmpfs("mode=1777,size=65536k");
                        steps.add(
                            Op::Mount {
                                source: c"shm".to_owned(),
                                target: cstring(&shm)?,
                                fstype,
                                flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                                data,
                            },
                            format!("mounting a tmpfs at {}", shm.display()),
                        );
                        // No new device nodes (the task keeps `mknod`, as in Nomad).
                        steps.add(
                            Op::Remount {
                                target: cstring(&dev)?,
                                flags: libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOEXEC,
                            },
                            format!("making {} read-only", dev.display()),
                        );
                    }
                }
            }
            let hostname = CString::new(spec.hostname.as_str())
                .map_err(|_| format!("host name {:?} contains a NUL byte", spec.hostname))?;
            steps.add(Op::Hostname(hostname), format!("setting the host name to {:?}", spec.hostname));
            steps.add(Op::PivotRoot(root_c), format!("changing the root to {}", root.display()));
            let keep = capability_mask(&spec.capabilities)?;
            let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(CAP_LAST_DEFAULT)
                .min(63);
            steps.add(Op::Chdir(cstring(cwd)?), format!("changing to the working directory {}", cwd.display()));
            steps.add(Op::Capabilities { keep, last }, "dropping capabilities".to_owned());

            let mut fds = [0; 2];
            // SAFETY: pipe2 fills the two descriptors it is given.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
                return Err(format!("cannot create a pipe: {}", errno()));
            }
            // SAFETY: both descriptors were just created and are owned by nobody else.
            let (report_read, report_write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            Ok(Self { steps: steps.0, report_read, report_write })
        }

        /// Runs the steps. Only between fork and exec, in the child.
        ///
        /// # Safety
        /// The caller is the freshly forked child (a `pre_exec` closure): the steps
        /// change its namespaces, root and capabilities.
        pub unsafe fn enter(&self) -> std::io::Result<()> {
            for (i, step) in self.steps.iter().enumerate() {
                // SAFETY: the caller's contract; each step is a syscall on prepared data.
                if let Err(e) = unsafe { step.op.run() } {
                    if step.optional && e.raw_os_error() == Some(libc::ENOENT) {
                        continue;
                    }
                    let index = (i as u32).to_ne_bytes();
                    // SAFETY: a write of 4 bytes to our own pipe; a failure leaves the
                    // parent with the bare errno, which is still reported.
                    unsafe {
                        libc::write(self.report_write.as_raw_fd(), index.as_ptr().cast(), index.len());
                    }
                    return Err(e);
                }
            }
            Ok(())
        }

        /// After a failed spawn: what the step that failed in the child did, if the
        /// failure was one.
        pub fn failed_step(&self) -> Option<&str> {
            let mut index = [0u8; 4];
            // SAFETY: a non-blocking read into a local buffer.
            let n = unsafe { libc::read(self.report_read.as_raw_fd(), index.as_mut_ptr().cast(), index.len()) };
            if n != 4 {
                return None;
            }
            let step = self.steps.get(u32::from_ne_bytes(index) as usize)?;
            Some(&step.what)
        }
    }

    /// The executor's children's pid namespace, unshared for one fork.
    pub struct PidNamespace {
        own: OwnedFd,
    }

    impl PidNamespace {
        /// From now on the executor's next child is PID 1 of a new pid namespace.
        /// Until [`PidNamespace::restore`], the executor cannot start threads.
        pub fn unshare() -> Result<Self, String> {
            let own: OwnedFd = std::fs::File::open("/proc/self/ns/pid")
                .map_err(|e| format!("cannot open /proc/self/ns/pid: {e}"))?
                .into();
            // SAFETY: plain syscall.
            check(unsafe { libc::unshare(libc::CLONE_NEWPID) })
                .map_err(|e| format!("cannot create a pid namespace: {e}"))?;
            Ok(Self { own })
        }

        /// Back to the executor's own pid namespace for later children (and threads).
        pub fn restore(self) -> Result<(), String> {
            // SAFETY: plain syscall on an open namespace descriptor.
            check(unsafe { libc::setns(self.own.as_raw_fd(), libc::CLONE_NEWPID) })
                .map_err(|e| format!("cannot return to the executor's pid namespace: {e}"))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn mount_points_are_created_with_the_sources_type_and_symlinks_are_refused() {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            assert_eq!(mount_point(root, Path::new("usr/lib"), false).unwrap(), root.join("usr/lib"));
            assert!(root.join("usr/lib").is_dir());
            assert!(mount_point(root, Path::new("etc/hosts"), true).unwrap().is_file());
            assert!(mount_point(root, Path::new("usr"), false).is_ok(), "an existing one is reused");
            let e = mount_point(root, Path::new("usr"), true).unwrap_err();
            assert!(e.ends_with("usr is not a file; cannot mount on it"), "{e}");
            let e = mount_point(root, Path::new("etc/hosts"), false).unwrap_err();
            assert!(e.ends_with("is not a directory; cannot mount on it"), "{e}");
            std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
            let e = mount_point(root, Path::new("escape/usr"), false).unwrap_err();
            assert!(e.contains("is a symlink"), "{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn mounts_bind_existing_chroot_env_paths_read_only_parents_first_then_alloc_proc_dev() {
        let env: BTreeMap<String, String> =
            [("/usr/lib", "/usr/lib"), ("/usr", "/usr"), ("/bin", "/bin"), ("/gone", "/gone")]
                .into_iter()
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .collect();
        let mounts = plan_mounts(&env, Path::new("/data/a1/alloc"), |p| p != Path::new("/gone")).unwrap();
        let shown: Vec<String> = mounts
            .iter()
            .map(|m| match &m.kind {
                MountKind::Bind { source, read_only } => {
                    format!("{} <- {}{}", m.target.display(), source.display(), if *read_only { " ro" } else { "" })
                }
                MountKind::Proc => format!("{} proc", m.target.display()),
                MountKind::Dev => format!("{} dev", m.target.display()),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "bin <- /bin ro",
                "usr <- /usr ro",
                "usr/lib <- /usr/lib ro",
                "alloc <- /data/a1/alloc",
                "proc proc",
                "dev dev"
            ]
        );
    }

    #[test]
    fn chroot_env_may_not_map_onto_the_root_the_drivers_own_mounts_or_outside() {
        for (inside, wants) in
            [("/", "below /"), ("/usr/../..", "without \"..\""), ("/proc", "uses itself"), ("/alloc/x", "uses itself")]
        {
            let env = BTreeMap::from([("/usr".to_owned(), inside.to_owned())]);
            let e = plan_mounts(&env, Path::new("/a"), |_| true).unwrap_err();
            assert!(e.contains(wants), "{inside}: {e}");
        }
        let env = BTreeMap::from([("usr".to_owned(), "/usr".to_owned())]);
        assert!(plan_mounts(&env, Path::new("/a"), |_| true).unwrap_err().contains("absolute"));
    }

    #[test]
    fn hostnames_are_task_and_short_alloc_id_made_valid() {
        assert_eq!(hostname("web", "0b7a41c2-7f1e-4c55"), "web-0b7a41c2");
        assert_eq!(hostname("my_task.v2", "a-b"), "my-task-v2-a-b");
        assert_eq!(hostname(&"x".repeat(100), "abc").len(), 63);
    }

    #[test]
    fn capabilities_start_from_the_default_drop_and_add_back_only_allowed_ones() {
        let default = decide_capabilities(&[], &[]).unwrap();
        assert_eq!(default.len(), DEFAULT_CAPABILITIES.len());
        assert_eq!(default[0], "chown", "in capability order");
        let kept = decide_capabilities(&strings(&["CAP_KILL"]), &strings(&["all"])).unwrap();
        assert_eq!(kept, ["kill"]);
        let kept = decide_capabilities(&[], &strings(&["net_bind_service", "Cap_Chown"])).unwrap();
        assert!(!kept.iter().any(|c| c == "chown" || c == "net_bind_service"));
        assert_eq!(kept.len(), DEFAULT_CAPABILITIES.len() - 2);
        let e = decide_capabilities(&strings(&["sys_admin"]), &[]).unwrap_err();
        assert!(e.contains("\"sys_admin\" is not allowed") && e.contains("allowed: audit_write"), "{e}");
        let e = decide_capabilities(&[], &strings(&["bogus"])).unwrap_err();
        assert_eq!(e, "cap_drop: unknown capability \"bogus\"");
    }

    #[test]
    fn the_capability_table_matches_the_kernel_numbers() {
        // Spot checks against capability.h.
        let n = |c: &str| CAPABILITIES.iter().position(|k| *k == c).unwrap();
        assert_eq!(
            (n("chown"), n("net_raw"), n("sys_admin"), n("mknod"), n("checkpoint_restore")),
            (0, 13, 21, 27, 40)
        );
    }
}
