//! Cgroups for the exec driver: one per task attempt, `stead/<alloc_id>.<task>` under
//! each hierarchy it uses, limiting memory and weighting CPU per the task's resources.
//!
//! The driver decides (pure, [`plan`]) which directories to make and what to write; the
//! executor applies the plan ([`apply`]) before it starts the task, and the task enters
//! the leaves itself (it writes `0` to their `cgroup.procs` between fork and exec), so
//! the executor is never limited: an OOM kill takes the task, not the process that
//! reports it. After the exit the executor reads the OOM counter ([`oom_kills`]) and
//! removes the leaves ([`remove`]); the `stead` parents stay.
//!
//! Both layouts are handled:
//!
//! * v2 (`/sys/fs/cgroup/cgroup.controllers` exists): one tree; `memory` and `cpu` (and
//!   `cpuset` for reserved cores) are enabled in the parents' `cgroup.subtree_control`;
//!   `memory.max`, `memory.low` (with `memory_max`), `memory.swap.max`, `cpu.weight`.
//! * v1: a mount per controller (`/sys/fs/cgroup/memory`, `/cpu`, `/cpuset`);
//!   `memory.limit_in_bytes` (+ `memory.memsw.limit_in_bytes` where swap is accounted,
//!   so the limit cannot be dodged by swapping), `memory.soft_limit_in_bytes` (with
//!   `memory_max`), `cpu.shares`, `cpuset.cpus`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::TaskResources;

/// Where the hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The directory under each hierarchy that holds stead's task cgroups (Nomad's is `nomad`).
pub const PARENT: &str = "stead";

/// How many times [`remove`] tries a leaf that is still busy: the kernel releases a
/// cgroup a little after its last process is reaped. 200 × 10 ms = 2 s, after which the
/// leaf is reported and left (an empty cgroup costs a few kB).
const REMOVE_ATTEMPTS_MAX: u32 = 200;
const REMOVE_RETRY: Duration = Duration::from_millis(10);

/// The hierarchy a host offers, as usable by the driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hierarchy {
    /// The unified hierarchy mounted at `root`.
    V2 { root: PathBuf, cpuset: bool },
    /// One mount per controller; `cpuset` may be missing.
    V1 { memory: PathBuf, cpu: PathBuf, cpuset: Option<PathBuf> },
}

/// What the host has, as probed ([`probe`]); [`CgroupProbe::usable`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupProbe {
    V2 { root: PathBuf, controllers: Vec<String>, writable: bool },
    V1 { memory: Option<PathBuf>, cpu: Option<PathBuf>, cpuset: Option<PathBuf>, writable: bool },
    Missing,
}

impl CgroupProbe {
    /// The hierarchy if it can limit memory and CPU, else why not.
    pub fn usable(&self) -> Result<Hierarchy, String> {
        match self {
            CgroupProbe::V2 { root, controllers, writable } => {
                let missing: Vec<&str> =
                    ["memory", "cpu"].into_iter().filter(|c| !controllers.iter().any(|have| have == c)).collect();
                if !missing.is_empty() {
                    return Err(format!(
                        "cgroup v2 at {} lacks the {} controller(s) (cgroup.controllers: {:?})",
                        root.display(),
                        missing.join(" and "),
                        controllers.join(" ")
                    ));
                }
                if !writable {
                    return Err(format!("cgroup v2 at {} is not writable", root.display()));
                }
                Ok(Hierarchy::V2 { root: root.clone(), cpuset: controllers.iter().any(|c| c == "cpuset") })
            }
            CgroupProbe::V1 { memory, cpu, cpuset, writable } => match (memory, cpu) {
                (Some(memory), Some(cpu)) if *writable => {
                    Ok(Hierarchy::V1 { memory: memory.clone(), cpu: cpu.clone(), cpuset: cpuset.clone() })
                }
                (Some(memory), Some(cpu)) => {
                    Err(format!("cgroup v1 hierarchies {} and {} are not writable", memory.display(), cpu.display()))
                }
                (None, _) => Err("cgroup v1 without a memory controller mount".to_owned()),
                (_, None) => Err("cgroup v1 without a cpu controller mount".to_owned()),
            },
            CgroupProbe::Missing => Err(format!("no cgroup hierarchy at {CGROUP_ROOT}")),
        }
    }
}

fn writable(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: plain syscall on a NUL-terminated path. Catches a read-only mount (EROFS),
    // which root's permission bypass would not.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// Looks at the hierarchies mounted under `root` (normally [`CGROUP_ROOT`]).
pub fn probe(root: &Path) -> CgroupProbe {
    if let Ok(text) = std::fs::read_to_string(root.join("cgroup.controllers")) {
        return CgroupProbe::V2 {
            root: root.to_owned(),
            controllers: text.split_whitespace().map(str::to_owned).collect(),
            writable: writable(root),
        };
    }
    let mount = |name: &str, file: &str| Some(root.join(name)).filter(|d| d.join(file).exists());
    let (memory, cpu) = (mount("memory", "memory.limit_in_bytes"), mount("cpu", "cpu.shares"));
    let cpuset = mount("cpuset", "cpuset.cpus");
    if memory.is_none() && cpu.is_none() {
        return CgroupProbe::Missing;
    }
    let writable = memory.iter().chain(&cpu).all(|d| writable(d));
    CgroupProbe::V1 { memory, cpu, cpuset, writable }
}

/// One step of setting a cgroup up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupStep {
    /// Creates the directory (an existing one is fine: parents are shared).
    Mkdir(PathBuf),
    /// Writes `value` to `file`; an `optional` file that does not exist is skipped
    /// (`memory.memsw.*` exists only where swap is accounted).
    Write { file: PathBuf, value: String, optional: bool },
    /// v1 cpuset: a new cpuset cgroup starts with no CPUs or memory nodes, and no task can
    /// join it; if `file` is empty, copy the parent directory's.
    Inherit { file: PathBuf },
}

/// What [`apply`] does for one task, and what the executor needs afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPlan {
    pub steps: Vec<CgroupStep>,
    /// The leaves' `cgroup.procs`: the task writes itself into each before it execs.
    pub procs: Vec<PathBuf>,
    /// The file whose `oom_kill N` line counts the task's OOM kills (v1
    /// `memory.oom_control`, v2 `memory.events`).
    pub oom_events: PathBuf,
    /// The task's own directories, removed once it has exited.
    pub leaves: Vec<PathBuf>,
}

const MIB: i64 = 1024 * 1024;

/// v1 `cpu.shares` bounds (the kernel clamps to them anyway).
const SHARES_MIN: i64 = 2;
const SHARES_MAX: i64 = 262_144;

/// `cpu.shares` → v2 `cpu.weight` (1..=10000), the linear map runc and systemd use, so
/// the default 1024 shares become weight 39 and the relative weights are kept.
pub fn cpu_weight(shares: i64) -> i64 {
    let shares = shares.clamp(SHARES_MIN, SHARES_MAX);
    1 + ((shares - SHARES_MIN) * 9999) / (SHARES_MAX - SHARES_MIN)
}

/// The cgroup directories and values for the task cgroup `name` (`<alloc_id>.<task>`).
/// A resource of 0 is left at the kernel's default (unlimited memory, 1024 shares).
pub fn plan(hierarchy: &Hierarchy, name: &str, resources: &TaskResources) -> CgroupPlan {
    let limit = resources.memory_limit_mb() * MIB;
    // With `memory_max` the task is guaranteed `memory` and may burst to `memory_max`.
    let soft =
        (resources.memory_max_mb > resources.memory_mb && resources.memory_mb > 0).then_some(resources.memory_mb * MIB);
    let cores = crate::env::cpuset(&resources.cores);
    let mut steps = Vec::new();
    let write = |file: PathBuf, value: String| CgroupStep::Write { file, value, optional: false };
    match hierarchy {
        Hierarchy::V2 { root, cpuset } => {
            let use_cpuset = *cpuset && !cores.is_empty();
            let parent = root.join(PARENT);
            let leaf = parent.join(name);
            let mut controllers = vec!["memory", "cpu"];
            if use_cpuset {
                controllers.push("cpuset");
            }
            steps.push(CgroupStep::Mkdir(parent.clone()));
            // A controller is usable in a cgroup only if its parent enables it.
            for dir in [root, &parent] {
                for c in &controllers {
                    steps.push(write(dir.join("cgroup.subtree_control"), format!("+{c}")));
                }
            }
            steps.push(CgroupStep::Mkdir(leaf.clone()));
            if limit > 0 {
                steps.push(write(leaf.join("memory.max"), limit.to_string()));
                // Swap would let the task exceed its limit unseen, as v1's memsw prevents.
                steps.push(CgroupStep::Write {
                    file: leaf.join("memory.swap.max"),
                    value: "0".to_owned(),
                    optional: true,
                });
            }
            if let Some(soft) = soft {
                steps.push(write(leaf.join("memory.low"), soft.to_string()));
            }
            if resources.cpu_shares > 0 {
                steps.push(write(leaf.join("cpu.weight"), cpu_weight(resources.cpu_shares).to_string()));
            }
            if use_cpuset {
                steps.push(write(leaf.join("cpuset.cpus"), cores));
            }
            CgroupPlan {
                steps,
                procs: vec![leaf.join("cgroup.procs")],
                oom_events: leaf.join("memory.events"),
                leaves: vec![leaf],
            }
        }
        Hierarchy::V1 { memory, cpu, cpuset } => {
            let (memory_leaf, cpu_leaf) = (memory.join(PARENT).join(name), cpu.join(PARENT).join(name));
            let mut leaves = vec![memory_leaf.clone(), cpu_leaf.clone()];
            steps.push(CgroupStep::Mkdir(memory.join(PARENT)));
            steps.push(CgroupStep::Mkdir(memory_leaf.clone()));
            if limit > 0 {
                // The plain limit first: memsw may never be below it.
                steps.push(write(memory_leaf.join("memory.limit_in_bytes"), limit.to_string()));
                steps.push(CgroupStep::Write {
                    file: memory_leaf.join("memory.memsw.limit_in_bytes"),
                    value: limit.to_string(),
                    optional: true,
                });
            }
            if let Some(soft) = soft {
                steps.push(write(memory_leaf.join("memory.soft_limit_in_bytes"), soft.to_string()));
            }
            steps.push(CgroupStep::Mkdir(cpu.join(PARENT)));
            steps.push(CgroupStep::Mkdir(cpu_leaf.clone()));
            if resources.cpu_shares > 0 {
                let shares = resources.cpu_shares.clamp(SHARES_MIN, SHARES_MAX);
                steps.push(write(cpu_leaf.join("cpu.shares"), shares.to_string()));
            }
            if let Some(cpuset) = cpuset.as_ref().filter(|_| !cores.is_empty()) {
                let (parent, leaf) = (cpuset.join(PARENT), cpuset.join(PARENT).join(name));
                steps.push(CgroupStep::Mkdir(parent.clone()));
                steps.push(CgroupStep::Inherit { file: parent.join("cpuset.cpus") });
                steps.push(CgroupStep::Inherit { file: parent.join("cpuset.mems") });
                steps.push(CgroupStep::Mkdir(leaf.clone()));
                steps.push(CgroupStep::Inherit { file: leaf.join("cpuset.mems") });
                steps.push(write(leaf.join("cpuset.cpus"), cores));
                leaves.push(leaf);
            }
            CgroupPlan {
                steps,
                procs: leaves.iter().map(|l| l.join("cgroup.procs")).collect(),
                oom_events: memory_leaf.join("memory.oom_control"),
                leaves,
            }
        }
    }
}

/// Creates the cgroups and writes the limits. On an error, what was created is removed.
///
/// A leaf left by an earlier attempt of the same task (whose executor died, or whose
/// removal timed out) is emptied and removed first: the task starts alone in a fresh
/// cgroup, and its OOM counter counts only its own kills.
pub fn apply(plan: &CgroupPlan) -> Result<(), String> {
    remove(plan).map_err(|e| format!("a previous attempt's cgroup is in the way: {e}"))?;
    let result = plan.steps.iter().try_for_each(|step| match step {
        CgroupStep::Mkdir(dir) => match std::fs::create_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                Err(format!("cannot create cgroup {}: {e}", dir.display()))
            }
            _ => Ok(()),
        },
        CgroupStep::Write { file, optional: true, .. } if !file.exists() => Ok(()),
        CgroupStep::Write { file, value, .. } => {
            std::fs::write(file, value).map_err(|e| format!("cannot write {value:?} to {}: {e}", file.display()))
        }
        CgroupStep::Inherit { file } => {
            let own = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            if !own.trim().is_empty() {
                return Ok(());
            }
            let (Some(dir), Some(name)) = (file.parent().and_then(Path::parent), file.file_name()) else {
                return Err(format!("{} has no parent cgroup", file.display()));
            };
            let from = dir.join(name);
            let value = std::fs::read_to_string(&from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
            std::fs::write(file, value.trim())
                .map_err(|e| format!("cannot write {:?} to {}: {e}", value.trim(), file.display()))
        }
    });
    if result.is_err()
        && let Err(e) = remove(plan)
    {
        eprintln!("executor: {e}");
    }
    result
}

/// The `oom_kill N` count in a v1 `memory.oom_control` or v2 `memory.events`.
pub fn parse_oom_kills(text: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix("oom_kill ")?.trim().parse().ok())
}

/// How many of the task's processes the kernel OOM-killed; `None` if unknown.
pub fn oom_kills(plan: &CgroupPlan) -> Option<u64> {
    parse_oom_kills(&std::fs::read_to_string(&plan.oom_events).ok()?)
}

/// Kills whatever is still in the task's cgroups and removes them. Idempotent: a leaf
/// that is gone is fine. Only the processes a leaf lists are signalled: they are the
/// task's (it put them there).
pub fn remove(plan: &CgroupPlan) -> Result<(), String> {
    let mut failed = Vec::new();
    for leaf in plan.leaves.iter().rev() {
        let mut attempt = 0;
        loop {
            match std::fs::remove_dir(leaf) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if attempt + 1 >= REMOVE_ATTEMPTS_MAX => {
                    failed.push(format!("{}: {e}", leaf.display()));
                    break;
                }
                Err(_) => {
                    let procs = std::fs::read_to_string(leaf.join("cgroup.procs")).unwrap_or_default();
                    for pid in procs.lines().filter_map(|l| l.trim().parse::<libc::pid_t>().ok()) {
                        if pid > 1 {
                            // SAFETY: plain syscall on a process of the task's own cgroup.
                            unsafe {
                                libc::kill(pid, libc::SIGKILL);
                            }
                        }
                    }
                    std::thread::sleep(REMOVE_RETRY);
                    attempt += 1;
                }
            }
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(format!("cannot remove the task's cgroups: {}", failed.join("; "))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(cpu: i64, memory: i64, memory_max: i64, cores: &[u16]) -> TaskResources {
        TaskResources { cpu_shares: cpu, cores: cores.to_vec(), memory_mb: memory, memory_max_mb: memory_max }
    }

    /// The plan as `mkdir dir` / `file = value` lines relative to `/cg`, for comparing.
    fn show(plan: &CgroupPlan) -> Vec<String> {
        let rel = |p: &Path| p.strip_prefix("/cg").unwrap().display().to_string();
        plan.steps
            .iter()
            .map(|s| match s {
                CgroupStep::Mkdir(d) => format!("mkdir {}", rel(d)),
                CgroupStep::Write { file, value, optional } => {
                    format!("{} = {value}{}", rel(file), if *optional { " (if present)" } else { "" })
                }
                CgroupStep::Inherit { file } => format!("{} = parent's if empty", rel(file)),
            })
            .collect()
    }

    #[test]
    fn v1_plan_sets_the_hard_and_swap_limit_the_soft_limit_with_memory_max_and_shares() {
        let h = Hierarchy::V1 { memory: "/cg/memory".into(), cpu: "/cg/cpu".into(), cpuset: None };
        let plan = plan(&h, "a1.web", &resources(250, 64, 128, &[]));
        assert_eq!(
            show(&plan),
            [
                "mkdir memory/stead",
                "mkdir memory/stead/a1.web",
                "memory/stead/a1.web/memory.limit_in_bytes = 134217728",
                "memory/stead/a1.web/memory.memsw.limit_in_bytes = 134217728 (if present)",
                "memory/stead/a1.web/memory.soft_limit_in_bytes = 67108864",
                "mkdir cpu/stead",
                "mkdir cpu/stead/a1.web",
                "cpu/stead/a1.web/cpu.shares = 250",
            ]
        );
        assert_eq!(plan.oom_events, Path::new("/cg/memory/stead/a1.web/memory.oom_control"));
        assert_eq!(plan.procs.len(), 2);
        assert_eq!(plan.leaves, [PathBuf::from("/cg/memory/stead/a1.web"), PathBuf::from("/cg/cpu/stead/a1.web")]);
    }

    #[test]
    fn v1_plan_pins_reserved_cores_in_a_cpuset_that_inherits_memory_nodes() {
        let h = Hierarchy::V1 { memory: "/cg/memory".into(), cpu: "/cg/cpu".into(), cpuset: Some("/cg/cpuset".into()) };
        let plan = plan(&h, "a.t", &resources(1, 32, 0, &[3, 1, 2]));
        let shown = show(&plan);
        assert_eq!(shown[2], "memory/stead/a.t/memory.limit_in_bytes = 33554432");
        assert!(!shown.iter().any(|s| s.contains("soft_limit")), "{shown:?}");
        assert!(shown.contains(&"cpu/stead/a.t/cpu.shares = 2".to_owned()), "shares are clamped: {shown:?}");
        assert_eq!(
            &shown[shown.len() - 6..],
            [
                "mkdir cpuset/stead",
                "cpuset/stead/cpuset.cpus = parent's if empty",
                "cpuset/stead/cpuset.mems = parent's if empty",
                "mkdir cpuset/stead/a.t",
                "cpuset/stead/a.t/cpuset.mems = parent's if empty",
                "cpuset/stead/a.t/cpuset.cpus = 1-3",
            ]
        );
        assert_eq!(plan.leaves.len(), 3);
    }

    #[test]
    fn v2_plan_enables_controllers_in_the_parents_and_scales_the_weight() {
        let h = Hierarchy::V2 { root: "/cg".into(), cpuset: true };
        let plan = plan(&h, "a.t", &resources(1024, 300, 0, &[0]));
        assert_eq!(
            show(&plan),
            [
                "mkdir stead",
                "cgroup.subtree_control = +memory",
                "cgroup.subtree_control = +cpu",
                "cgroup.subtree_control = +cpuset",
                "stead/cgroup.subtree_control = +memory",
                "stead/cgroup.subtree_control = +cpu",
                "stead/cgroup.subtree_control = +cpuset",
                "mkdir stead/a.t",
                "stead/a.t/memory.max = 314572800",
                "stead/a.t/memory.swap.max = 0 (if present)",
                "stead/a.t/cpu.weight = 39",
                "stead/a.t/cpuset.cpus = 0",
            ]
        );
        assert_eq!(plan.oom_events, Path::new("/cg/stead/a.t/memory.events"));
        assert_eq!(plan.procs, [PathBuf::from("/cg/stead/a.t/cgroup.procs")]);
    }

    #[test]
    fn zero_resources_leave_the_kernel_defaults() {
        let h = Hierarchy::V2 { root: "/cg".into(), cpuset: false };
        let shown = show(&plan(&h, "a.t", &resources(0, 0, 0, &[])));
        assert!(shown.iter().all(|s| !s.contains("memory.max") && !s.contains("cpu.weight")), "{shown:?}");
    }

    #[test]
    fn cpu_weight_keeps_the_ends_and_the_default() {
        assert_eq!([cpu_weight(0), cpu_weight(2), cpu_weight(1024), cpu_weight(262_144)], [1, 1, 39, 10000]);
    }

    #[test]
    fn oom_kills_are_read_from_v1_oom_control_and_v2_memory_events() {
        assert_eq!(parse_oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"), Some(2));
        assert_eq!(parse_oom_kills("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n"), Some(1));
        assert_eq!(parse_oom_kills("oom_kill_disable 0\nunder_oom 0\n"), None);
    }

    #[test]
    fn probe_decides_on_the_controllers_and_writability() {
        let v2 = |c: &[&str], writable| CgroupProbe::V2 {
            root: "/cg".into(),
            controllers: c.iter().map(|s| (*s).to_owned()).collect(),
            writable,
        };
        assert_eq!(v2(&["cpu", "memory"], true).usable(), Ok(Hierarchy::V2 { root: "/cg".into(), cpuset: false }));
        let e = v2(&["cpu", "io"], true).usable().unwrap_err();
        assert!(e.contains("lacks the memory controller"), "{e}");
        assert!(v2(&["cpu", "memory"], false).usable().unwrap_err().contains("not writable"));
        let v1 = |memory: bool, writable| CgroupProbe::V1 {
            memory: memory.then(|| "/cg/memory".into()),
            cpu: Some("/cg/cpu".into()),
            cpuset: None,
            writable,
        };
        assert!(v1(true, true).usable().is_ok());
        assert!(v1(false, true).usable().unwrap_err().contains("memory controller"));
        assert!(v1(true, false).usable().unwrap_err().contains("not writable"));
        assert!(CgroupProbe::Missing.usable().is_err());
    }

    #[test]
    fn probe_reads_a_v1_layout_and_a_v2_layout() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe(dir.path()), CgroupProbe::Missing);
        for (d, f) in [("memory", "memory.limit_in_bytes"), ("cpu", "cpu.shares")] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
            std::fs::write(dir.path().join(d).join(f), "").unwrap();
        }
        assert!(matches!(probe(dir.path()), CgroupProbe::V1 { memory: Some(_), cpu: Some(_), cpuset: None, .. }));
        std::fs::write(dir.path().join("cgroup.controllers"), "cpuset cpu io memory pids\n").unwrap();
        let CgroupProbe::V2 { controllers, .. } = probe(dir.path()) else { panic!("v2 expected") };
        assert_eq!(controllers, ["cpuset", "cpu", "io", "memory", "pids"]);
    }

    #[test]
    fn apply_writes_creates_and_inherits_and_remove_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("cpuset.cpus"), "0-3\n").unwrap();
        let leaf = root.join("leaf");
        let plan = CgroupPlan {
            steps: vec![
                CgroupStep::Mkdir(leaf.clone()),
                CgroupStep::Write { file: leaf.join("limit"), value: "42".to_owned(), optional: false },
                CgroupStep::Write { file: leaf.join("absent"), value: "1".to_owned(), optional: true },
                CgroupStep::Write { file: leaf.join("cpuset.cpus"), value: String::new(), optional: false },
                CgroupStep::Inherit { file: leaf.join("cpuset.cpus") },
            ],
            procs: vec![],
            oom_events: leaf.join("events"),
            leaves: vec![leaf.clone()],
        };
        apply(&plan).unwrap();
        assert_eq!(std::fs::read_to_string(leaf.join("limit")).unwrap(), "42");
        assert!(!leaf.join("absent").exists());
        assert_eq!(std::fs::read_to_string(leaf.join("cpuset.cpus")).unwrap(), "0-3");
        // A real cgroup directory holds only kernel files; here the files must go first.
        for f in ["limit", "cpuset.cpus"] {
            std::fs::remove_file(leaf.join(f)).unwrap();
        }
        remove(&plan).unwrap();
        assert!(!leaf.exists());
        remove(&plan).unwrap();

        let bad = CgroupPlan {
            steps: vec![
                CgroupStep::Mkdir(leaf.clone()),
                CgroupStep::Write { file: root.join("no/such/file"), value: "1".to_owned(), optional: false },
            ],
            ..plan
        };
        let e = apply(&bad).unwrap_err();
        assert!(e.contains("cannot write \"1\" to"), "{e}");
        assert!(!leaf.exists(), "a failed apply removes what it created");
    }
}
