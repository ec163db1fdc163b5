//! Fingerprinting: what the node is (CPU, memory, disk, kernel, OS, drivers) as the
//! `Node` record the client registers, with Nomad's attribute names so job constraints
//! written for Nomad (`${attr.kernel.name}`, `${attr.cpu.arch}`, `${attr.driver.raw_exec}`)
//! work unchanged.
//!
//! Three steps, so that tests and the simulator fingerprint without touching `/proc`:
//! the machine is read through [`Host`] ([`RealHost`], or [`FakeHost`] with fixed
//! answers); [`gather_facts`] parses what it read into [`HostFacts`]; [`assemble_node`]
//! turns facts, configuration, identity and driver health into a `Node`, purely.

use std::collections::BTreeMap;
use std::path::Path;

use stead_model::{
    DriverInfo, NetworkResource, Node, NodeCpuResources, NodeDiskResources, NodeMemoryResources,
    NodeReservedCpuResources, NodeReservedNetworkResources, NodeReservedResources, NodeResources, NodeStatus,
    SchedulingEligibility, StringMap,
};

use crate::config::ClientConfig;
use crate::state::NodeIdentity;

/// Used when neither `/proc/cpuinfo` nor cpufreq gives a frequency (some ARM and virtual
/// machines): better a plausible capacity than a node nothing fits on. `cpu_total_compute`
/// in the configuration overrides it.
pub const FALLBACK_CPU_MHZ: u64 = 1000;

/// The kernel as `uname(2)` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uname {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub machine: String,
}

/// Space of the file system holding a directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskSpace {
    pub total_bytes: u64,
    pub free_bytes: u64,
}

/// The machine as the client sees it. Everything fingerprinting and the raw_exec
/// environment read from the host goes through here.
pub trait Host: Send + Sync + 'static {
    /// A file's contents (`/proc/cpuinfo`, `/proc/meminfo`, `/etc/os-release`, ...);
    /// `None` when it cannot be read.
    fn read_file(&self, path: &str) -> Option<String>;
    fn uname(&self) -> Uname;
    fn disk_space(&self, path: &Path) -> Option<DiskSpace>;
    /// The client's own environment, which raw_exec tasks inherit (less the denylist).
    fn env_vars(&self) -> BTreeMap<String, String>;
    /// The architecture the binary runs on, in Rust's spelling (`x86_64`, `aarch64`).
    fn arch(&self) -> String {
        std::env::consts::ARCH.to_owned()
    }
}

/// The real machine: `/proc`, `/sys`, `/etc/os-release`, `uname(2)`, `statvfs(3)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealHost;

impl Host for RealHost {
    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    fn uname(&self) -> Uname {
        // SAFETY: `uname` fills the zeroed struct; its fields are NUL-terminated strings.
        let mut raw: libc::utsname = unsafe { std::mem::zeroed() };
        if unsafe { libc::uname(&mut raw) } != 0 {
            return Uname::default();
        }
        let field = |f: &[libc::c_char]| -> String {
            let bytes: Vec<u8> = f.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        Uname {
            sysname: field(&raw.sysname),
            nodename: field(&raw.nodename),
            release: field(&raw.release),
            machine: field(&raw.machine),
        }
    }

    fn disk_space(&self, path: &Path) -> Option<DiskSpace> {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        // SAFETY: `statvfs` writes into the zeroed struct; the path is NUL-terminated.
        let mut raw: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c_path.as_ptr(), &mut raw) } != 0 {
            return None;
        }
        let frsize = raw.f_frsize as u64;
        Some(DiskSpace {
            total_bytes: (raw.f_blocks as u64).saturating_mul(frsize),
            // Space an unprivileged writer can use, as Nomad's `unique.storage.bytesfree`.
            free_bytes: (raw.f_bavail as u64).saturating_mul(frsize),
        })
    }

    fn env_vars(&self) -> BTreeMap<String, String> {
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
    }
}

/// A host with fixed answers, for tests and the simulator.
#[derive(Debug, Clone)]
pub struct FakeHost {
    pub files: BTreeMap<String, String>,
    pub uname: Uname,
    pub disk: Option<DiskSpace>,
    pub env: BTreeMap<String, String>,
    pub arch: String,
}

impl FakeHost {
    /// A 4-core 2.5 GHz x86_64 Debian machine with 8 GiB of memory and 100 GiB free.
    pub fn standard(hostname: &str) -> Self {
        let cpuinfo: String = (0..4)
            .map(|i| format!("processor\t: {i}\nmodel name\t: Fake CPU @ 2.50GHz\ncpu MHz\t\t: 2500.000\n\n"))
            .collect();
        let files = BTreeMap::from([
            ("/proc/cpuinfo".to_owned(), cpuinfo),
            ("/proc/meminfo".to_owned(), "MemTotal:        8388608 kB\nMemFree:         4000000 kB\n".to_owned()),
            ("/etc/os-release".to_owned(), "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian 12\"\n".to_owned()),
        ]);
        Self {
            files,
            uname: Uname {
                sysname: "Linux".to_owned(),
                nodename: hostname.to_owned(),
                release: "6.1.0-fake".to_owned(),
                machine: "x86_64".to_owned(),
            },
            disk: Some(DiskSpace { total_bytes: 200 << 30, free_bytes: 100 << 30 }),
            env: BTreeMap::from([("PATH".to_owned(), "/usr/bin:/bin".to_owned())]),
            arch: "x86_64".to_owned(),
        }
    }
}

impl Host for FakeHost {
    fn read_file(&self, path: &str) -> Option<String> {
        self.files.get(path).cloned()
    }
    fn uname(&self) -> Uname {
        self.uname.clone()
    }
    fn disk_space(&self, _path: &Path) -> Option<DiskSpace> {
        self.disk
    }
    fn env_vars(&self) -> BTreeMap<String, String> {
        self.env.clone()
    }
    fn arch(&self) -> String {
        self.arch.clone()
    }
}

/// What fingerprinting found, parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFacts {
    pub cpu_cores: u16,
    /// Per core; `None` when the host does not say.
    pub cpu_mhz: Option<u64>,
    pub cpu_model: Option<String>,
    pub memory_bytes: Option<u64>,
    pub disk: Option<DiskSpace>,
    pub uname: Uname,
    /// `/etc/os-release` `ID` and `VERSION_ID`.
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    /// Rust's spelling of the architecture.
    pub arch: String,
}

/// Reads and parses everything fingerprinting needs from `host`.
pub fn gather_facts(host: &dyn Host, data_dir: &Path) -> HostFacts {
    let cpuinfo = host.read_file("/proc/cpuinfo").unwrap_or_default();
    let cpu = parse_cpuinfo(&cpuinfo);
    let max_freq_mhz = host
        .read_file("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|khz| khz / 1000)
        .filter(|mhz| *mhz > 0);
    let os = host.read_file("/etc/os-release").map(|s| parse_os_release(&s)).unwrap_or_default();
    HostFacts {
        cpu_cores: cpu.cores.max(1),
        cpu_mhz: cpu.mhz.or(max_freq_mhz),
        cpu_model: cpu.model,
        memory_bytes: host.read_file("/proc/meminfo").and_then(|s| parse_meminfo_total(&s)),
        disk: host.disk_space(data_dir),
        uname: host.uname(),
        os_name: os.get("ID").cloned(),
        os_version: os.get("VERSION_ID").cloned(),
        arch: host.arch(),
    }
}

#[derive(Debug, Default, PartialEq)]
struct CpuInfo {
    cores: u16,
    mhz: Option<u64>,
    model: Option<String>,
}

/// Cores are `processor` entries; the frequency is the highest `cpu MHz` (cores throttle
/// independently, and capacity is what a core can do).
fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => info.cores = info.cores.saturating_add(1),
            "cpu MHz" => {
                if let Ok(mhz) = value.parse::<f64>()
                    && mhz >= 1.0
                {
                    info.mhz = Some(info.mhz.unwrap_or(0).max(mhz.round() as u64));
                }
            }
            "model name" if info.model.is_none() && !value.is_empty() => info.model = Some(value.to_owned()),
            _ => {}
        }
    }
    info
}

/// `MemTotal` in bytes.
fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => value.checked_mul(1024),
        Some(_) => None,
    }
}

/// `KEY=value` lines, values unquoted.
fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').trim_matches('\'').to_owned()))
        .collect()
}

/// Rust's architecture names in Go's `GOARCH` spelling, which Nomad's `cpu.arch` uses.
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        "mips64" => "mips64",
        other => other,
    }
}

/// Assembles the node record, purely. `drivers` is the enabled drivers' health (each with
/// its own `UpdateTime`).
pub fn assemble_node(
    facts: &HostFacts,
    config: &ClientConfig,
    identity: &NodeIdentity,
    drivers: &BTreeMap<String, DriverInfo>,
) -> Node {
    let cores = facts.cpu_cores.max(1);
    let mhz = facts.cpu_mhz.unwrap_or(FALLBACK_CPU_MHZ);
    let total_compute = config.cpu_total_compute.unwrap_or(i64::from(cores) * mhz as i64);
    let memory_mb = config.memory_total_mb.unwrap_or(facts.memory_bytes.map_or(0, |b| (b >> 20) as i64));
    let disk_free_mb = config.disk_free_mb.unwrap_or(facts.disk.map_or(0, |d| (d.free_bytes >> 20) as i64));
    let hostname = facts.uname.nodename.clone();
    // The servers require a name: the configured one, else the host's, else the ID.
    let name = [config.node_name.as_str(), hostname.as_str(), identity.id.as_str()]
        .into_iter()
        .find(|n| !n.is_empty())
        .unwrap_or_default()
        .to_owned();

    let mut attributes = StringMap::new();
    let mut set = |k: &str, v: String| {
        if !v.is_empty() {
            attributes.insert(k.to_owned(), v);
        }
    };
    set("kernel.name", facts.uname.sysname.to_lowercase());
    set("kernel.version", facts.uname.release.clone());
    set("kernel.arch", facts.uname.machine.clone());
    set("os.name", facts.os_name.clone().unwrap_or_default());
    set("os.version", facts.os_version.clone().unwrap_or_default());
    set("cpu.arch", go_arch(&facts.arch).to_owned());
    set("cpu.numcores", cores.to_string());
    set("cpu.reservablecores", cores.to_string());
    set("cpu.frequency", facts.cpu_mhz.map(|m| m.to_string()).unwrap_or_default());
    set("cpu.totalcompute", total_compute.to_string());
    set("cpu.usablecompute", (total_compute - config.reserved.cpu_mhz).max(0).to_string());
    set("cpu.modelname", facts.cpu_model.clone().unwrap_or_default());
    set("memory.totalbytes", facts.memory_bytes.map(|b| b.to_string()).unwrap_or_default());
    set("unique.hostname", hostname);
    set("unique.network.ip-address", config.advertise_ip.clone());
    set("unique.storage.volume", config.data_dir.display().to_string());
    if let Some(disk) = facts.disk {
        set("unique.storage.bytestotal", disk.total_bytes.to_string());
        set("unique.storage.bytesfree", disk.free_bytes.to_string());
    }
    set("stead.version", env!("CARGO_PKG_VERSION").to_owned());
    for (key, value) in driver_attributes(drivers) {
        set(&key, value);
    }
    for (key, value) in &config.attributes {
        set(key, value.clone());
    }

    let network = NetworkResource {
        mode: "host".to_owned(),
        device: String::new(),
        cidr: if config.advertise_ip.contains(':') {
            format!("{}/128", config.advertise_ip)
        } else {
            format!("{}/32", config.advertise_ip)
        },
        ip: config.advertise_ip.clone(),
        // Nomad's default link speed when it cannot be read.
        mbits: Some(1000),
        ..Default::default()
    };
    let reserved = &config.reserved;
    Node {
        id: identity.id.clone(),
        secret_id: identity.secret_id.clone(),
        datacenter: config.datacenter.clone(),
        name,
        http_addr: config.http_addr.clone(),
        attributes,
        node_resources: Some(NodeResources {
            cpu: NodeCpuResources {
                cpu_shares: total_compute,
                total_cpu_cores: cores,
                reservable_cpu_cores: (0..cores).collect(),
                ..Default::default()
            },
            memory: NodeMemoryResources { memory_mb, ..Default::default() },
            disk: NodeDiskResources { disk_mb: disk_free_mb, ..Default::default() },
            networks: vec![network],
            min_dynamic_port: config.min_dynamic_port,
            max_dynamic_port: config.max_dynamic_port,
            ..Default::default()
        }),
        reserved_resources: Some(NodeReservedResources {
            cpu: NodeReservedCpuResources { cpu_shares: reserved.cpu_mhz, ..Default::default() },
            memory: NodeMemoryResources { memory_mb: reserved.memory_mb, ..Default::default() },
            disk: NodeDiskResources { disk_mb: reserved.disk_mb, ..Default::default() },
            networks: NodeReservedNetworkResources {
                reserved_host_ports: reserved.reserved_ports.clone(),
                ..Default::default()
            },
            ..Default::default()
        }),
        meta: config.meta.clone(),
        node_class: config.node_class.clone(),
        node_pool: config.node_pool.clone(),
        scheduling_eligibility: SchedulingEligibility::Eligible,
        status: NodeStatus::Ready,
        drivers: drivers.clone(),
        ..Default::default()
    }
}

/// The node attributes the drivers give: `driver.<name> = 1` for each detected driver,
/// and the attributes a detected driver reports itself (`driver.docker.version`).
fn driver_attributes(drivers: &BTreeMap<String, DriverInfo>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (driver, info) in drivers.iter().filter(|(_, info)| info.detected) {
        out.push((format!("driver.{driver}"), "1".to_owned()));
        out.extend(info.attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// Puts the drivers' health as fingerprinted now into `node` (its `Drivers` and the
/// driver attributes). Returns whether anything but the fingerprint times changed: only
/// then is the node worth registering again.
pub fn update_drivers(node: &mut Node, drivers: &BTreeMap<String, DriverInfo>) -> bool {
    let timeless = |d: &BTreeMap<String, DriverInfo>| -> BTreeMap<String, DriverInfo> {
        d.iter().map(|(k, v)| (k.clone(), DriverInfo { update_time: String::new(), ..v.clone() })).collect()
    };
    if timeless(&node.drivers) == timeless(drivers) {
        return false;
    }
    let old = driver_attributes(&node.drivers);
    for (key, _) in &old {
        node.attributes.remove(key);
    }
    node.attributes.extend(driver_attributes(drivers));
    node.drivers = drivers.clone();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_update_the_node_only_when_their_health_changes() {
        let info = |detected: bool, healthy: bool, time: &str| DriverInfo {
            detected,
            healthy,
            health_description: if healthy { "Healthy".to_owned() } else { "daemon down".to_owned() },
            update_time: time.to_owned(),
            attributes: if detected {
                StringMap::from([("driver.docker.version".to_owned(), "20.10".to_owned())])
            } else {
                StringMap::new()
            },
            ..Default::default()
        };
        let mut node = Node::default();
        assert!(update_drivers(&mut node, &BTreeMap::from([("docker".to_owned(), info(true, true, "t1"))])));
        assert_eq!(node.attributes.get("driver.docker").map(String::as_str), Some("1"));
        assert_eq!(node.attributes.get("driver.docker.version").map(String::as_str), Some("20.10"));
        assert!(
            !update_drivers(&mut node, &BTreeMap::from([("docker".to_owned(), info(true, true, "t2"))])),
            "a newer fingerprint time alone is no change"
        );
        assert!(update_drivers(&mut node, &BTreeMap::from([("docker".to_owned(), info(false, false, "t3"))])));
        assert!(!node.drivers["docker"].healthy);
        assert!(
            !node.attributes.contains_key("driver.docker") && !node.attributes.contains_key("driver.docker.version")
        );
    }

    fn identity() -> NodeIdentity {
        NodeIdentity { id: "node-1".into(), secret_id: "secret".to_owned() }
    }

    #[test]
    fn cpuinfo_counts_processors_and_takes_the_highest_frequency() {
        let text = "processor\t: 0\nmodel name\t: X\ncpu MHz\t\t: 1800.250\n\nprocessor\t: 1\ncpu MHz\t\t: 3400.6\n";
        assert_eq!(parse_cpuinfo(text), CpuInfo { cores: 2, mhz: Some(3401), model: Some("X".to_owned()) });
        // ARM kernels print no MHz: cpufreq's maximum (kHz) is used instead.
        let mut host = FakeHost::standard("h");
        host.files.insert("/proc/cpuinfo".to_owned(), "processor : 0\nprocessor : 1\nBogoMIPS : 50\n".to_owned());
        host.files.insert("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq".to_owned(), "2000000\n".to_owned());
        let facts = gather_facts(&host, Path::new("/data"));
        assert_eq!((facts.cpu_cores, facts.cpu_mhz), (2, Some(2000)));
    }

    #[test]
    fn meminfo_and_os_release_parse_what_linux_writes() {
        assert_eq!(parse_meminfo_total("MemTotal:       16314204 kB\nMemFree: 1 kB\n"), Some(16_314_204 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
        let os = parse_os_release("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n");
        assert_eq!(os.get("ID").map(String::as_str), Some("debian"));
        assert_eq!(os.get("VERSION_ID").map(String::as_str), Some("12"));
    }

    #[test]
    fn node_from_a_fake_host_has_nomads_attributes_and_resources() {
        let mut config = ClientConfig::new("/data");
        config.node_class = "fast".to_owned();
        config.meta.insert("rack".to_owned(), "r1".to_owned());
        config.reserved.memory_mb = 256;
        config.attributes.insert("unique.stead.rpc_addr".to_owned(), "10.0.0.1:4647".to_owned());
        config.attributes.insert("kernel.name".to_owned(), "plan9".to_owned());
        let drivers = BTreeMap::from([(
            "raw_exec".to_owned(),
            DriverInfo {
                detected: true,
                healthy: true,
                health_description: "Healthy".to_owned(),
                ..Default::default()
            },
        )]);
        let facts = gather_facts(&FakeHost::standard("host-a"), &config.data_dir);
        let node = assemble_node(&facts, &config, &identity(), &drivers);

        let attr = |k: &str| node.attributes.get(k).map(String::as_str);
        assert_eq!(attr("kernel.name"), Some("plan9"), "configured attributes win");
        assert_eq!(attr("unique.stead.rpc_addr"), Some("10.0.0.1:4647"));
        assert_eq!(attr("kernel.version"), Some("6.1.0-fake"));
        assert_eq!(attr("os.name"), Some("debian"));
        assert_eq!(attr("os.version"), Some("12"));
        assert_eq!(attr("cpu.arch"), Some("amd64"));
        assert_eq!(attr("cpu.numcores"), Some("4"));
        assert_eq!(attr("cpu.frequency"), Some("2500"));
        assert_eq!(attr("cpu.totalcompute"), Some("10000"));
        assert_eq!(attr("memory.totalbytes"), Some("8589934592"));
        assert_eq!(attr("unique.hostname"), Some("host-a"));
        assert_eq!(attr("driver.raw_exec"), Some("1"));
        assert!(attr("stead.version").is_some());

        assert_eq!(
            (node.name.as_str(), node.datacenter.as_str(), node.node_pool.as_str()),
            ("host-a", "dc1", "default")
        );
        assert_eq!(node.node_class, "fast");
        assert_eq!(node.meta.get("rack").map(String::as_str), Some("r1"));
        assert_eq!(node.status, NodeStatus::Ready);
        let r = node.node_resources.as_ref().unwrap();
        assert_eq!((r.cpu.cpu_shares, r.cpu.total_cpu_cores), (10_000, 4));
        assert_eq!(r.cpu.reservable_cpu_cores, vec![0, 1, 2, 3]);
        assert_eq!(r.memory.memory_mb, 8192);
        assert_eq!(r.disk.disk_mb, 100 * 1024);
        assert_eq!((r.min_dynamic_port, r.max_dynamic_port), (20000, 32000));
        assert_eq!(r.networks[0].ip, "127.0.0.1");
        assert_eq!(r.networks[0].cidr, "127.0.0.1/32");
        assert_eq!(node.reserved_resources.as_ref().unwrap().memory.memory_mb, 256);
        assert!(node.drivers["raw_exec"].healthy);
    }

    #[test]
    fn configuration_overrides_what_the_host_reports_and_missing_facts_fall_back() {
        let mut host = FakeHost::standard("");
        host.files.clear();
        host.disk = None;
        let mut config = ClientConfig::new("/data");
        config.node_name = "named".to_owned();
        let facts = gather_facts(&host, &config.data_dir);
        let node = assemble_node(&facts, &config, &identity(), &BTreeMap::new());
        let r = node.node_resources.as_ref().unwrap();
        assert_eq!(r.cpu.cpu_shares, FALLBACK_CPU_MHZ as i64);
        assert!(!node.attributes.contains_key("cpu.frequency"));
        assert_eq!(node.name, "named");
        config.node_name.clear();
        assert_eq!(
            assemble_node(&facts, &config, &identity(), &BTreeMap::new()).name,
            "node-1",
            "no host name: the ID"
        );

        config.cpu_total_compute = Some(12_345);
        config.memory_total_mb = Some(1024);
        config.disk_free_mb = Some(77);
        let node = assemble_node(&facts, &config, &identity(), &BTreeMap::new());
        let r = node.node_resources.as_ref().unwrap();
        assert_eq!((r.cpu.cpu_shares, r.memory.memory_mb, r.disk.disk_mb), (12_345, 1024, 77));
    }

    #[test]
    fn real_host_reports_something_plausible() {
        let facts = gather_facts(&RealHost, Path::new("/"));
        assert!(facts.cpu_cores >= 1);
        assert!(facts.memory_bytes.is_some_and(|b| b > 0));
        assert!(facts.disk.is_some_and(|d| d.total_bytes > 0));
        assert!(!facts.uname.sysname.is_empty());
    }
}
