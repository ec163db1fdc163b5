//! Unit tests of the node-local pieces: operators, versions, globs, capacity and ports.

use std::collections::BTreeMap;

use stead_model::{
    DriverInfo, Node, NodeCpuResources, NodeDiskResources, NodeMemoryResources, NodeReservedResources, NodeResources,
    NodeStatus, SchedulingEligibility,
};

use super::cluster::{
    Ask, DIM_CPU, DIM_DYNAMIC_PORT, DIM_MEMORY, DIM_RESERVED_PORT, NodeView, StaticPort, computed_class,
};
use super::constraint::{RegexCache, VersionMode, check_operator, glob_match, resolve_target, version_matches};
use super::rng::SplitMix64;

fn node() -> Node {
    Node {
        id: "node-1".into(),
        name: "web-1".to_owned(),
        datacenter: "dc1".to_owned(),
        node_class: "large".to_owned(),
        node_pool: String::new(),
        attributes: BTreeMap::from([
            ("kernel.name".to_owned(), "linux".to_owned()),
            ("cpu.numcores".to_owned(), "8".to_owned()),
            ("nomad.version".to_owned(), "1.7.3".to_owned()),
            ("os.version".to_owned(), "22.04".to_owned()),
            ("tags".to_owned(), "ssd, gpu,fast".to_owned()),
            ("unique.hostname".to_owned(), "web-1.example".to_owned()),
        ]),
        meta: BTreeMap::from([("rack".to_owned(), "r1".to_owned())]),
        status: NodeStatus::Ready,
        scheduling_eligibility: SchedulingEligibility::Eligible,
        ..Node::default()
    }
}

/// (operand, attribute key or literal ltarget, rtarget, expected).
fn check(cases: &[(&str, &str, &str, bool)]) {
    let n = node();
    let mut regexes = RegexCache::default();
    for &(op, l, r, want) in cases {
        let lv = resolve_target(l, &n);
        let rv = resolve_target(r, &n);
        assert_eq!(check_operator(op, lv, rv, &mut regexes), want, "{l:?} {op} {r:?} (resolved {lv:?})");
    }
}

#[test]
fn constraint_operators_follow_nomad_semantics() {
    check(&[
        ("=", "${attr.kernel.name}", "linux", true),
        ("==", "${attr.kernel.name}", "windows", false),
        ("is", "${node.datacenter}", "dc1", true),
        ("=", "${attr.missing}", "linux", false),
        ("!=", "${attr.kernel.name}", "windows", true),
        ("not", "${attr.kernel.name}", "linux", false),
        // A missing value differs from any value.
        ("!=", "${attr.missing}", "linux", true),
        // Numeric when both sides are numbers: 8 > 10 is false although "8" > "10" lexically.
        (">", "${attr.cpu.numcores}", "10", false),
        ("<", "${attr.cpu.numcores}", "10", true),
        (">=", "${attr.cpu.numcores}", "8", true),
        ("<=", "${attr.cpu.numcores}", "7.5", false),
        ("<", "${attr.os.version}", "22.10", true),
        // Lexical otherwise.
        (">", "${attr.kernel.name}", "darwin", true),
        ("<", "${attr.kernel.name}", "darwin", false),
        ("<", "${attr.missing}", "z", false),
        ("regexp", "${attr.kernel.name}", "^lin", true),
        ("regexp", "${attr.kernel.name}", "ux$", true),
        ("regexp", "${attr.kernel.name}", "^win", false),
        ("regexp", "${attr.kernel.name}", "(", false),
        ("version", "${attr.nomad.version}", ">= 1.2, < 2.0", true),
        ("version", "${attr.nomad.version}", "~> 1.6", true),
        ("version", "${attr.nomad.version}", "~> 1.6.0", false),
        ("version", "${attr.nomad.version}", "< 1.7", false),
        ("version", "${attr.nomad.version}", "1.7.3", true),
        ("version", "${attr.missing}", ">= 1.0", false),
        ("semver", "${attr.nomad.version}", ">= 1.7.0, < 1.8.0", true),
        ("semver", "${attr.nomad.version}", "~> 1.7", false),
        ("set_contains", "${attr.tags}", "ssd,gpu", true),
        ("set_contains_all", "${attr.tags}", "ssd, hdd", false),
        ("set_contains_any", "${attr.tags}", "hdd,fast", true),
        ("set_contains_any", "${attr.tags}", "hdd,nvme", false),
        ("set_contains", "${attr.missing}", "ssd", false),
        ("is_set", "${meta.rack}", "", true),
        ("is_set", "${meta.zone}", "", false),
        ("is_not_set", "${meta.zone}", "", true),
        ("is_not_set", "${meta.rack}", "", false),
        ("=", "${node.unique.id}", "node-1", true),
        ("=", "${node.unique.name}", "web-1", true),
        ("=", "${node.class}", "large", true),
        ("=", "${node.pool}", "default", true),
        ("=", "${meta.rack}", "r1", true),
        ("=", "${attr.unique.hostname}", "web-1.example", true),
        // The right side is interpolated too.
        ("=", "${meta.rack}", "${meta.rack}", true),
        ("=", "${node.region}", "global", false),
        ("distinct_hosts", "", "true", true),
        ("no_such_operator", "${meta.rack}", "r1", false),
    ]);
}

#[test]
fn version_constraints_treat_prereleases_as_hashicorp_and_semver_do() {
    let cases = [
        ("1.3.0-beta1", ">= 1.0", VersionMode::HashiCorp, false),
        ("1.3.0-beta1", ">= 1.0.0", VersionMode::Semver, true),
        ("1.3.0-beta2", ">= 1.3.0-beta1", VersionMode::HashiCorp, true),
        ("1.4.0-beta2", ">= 1.3.0-beta1", VersionMode::HashiCorp, false),
        ("1.3.0-beta1", "< 1.3.0", VersionMode::Semver, true),
        ("1.3.0-beta.2", "> 1.3.0-beta.10", VersionMode::Semver, false),
        ("1.3.0-rc.1", "> 1.3.0-beta.10", VersionMode::Semver, true),
        ("v2.0.0+build5", "= 2.0", VersionMode::HashiCorp, true),
        ("2", "~> 1", VersionMode::HashiCorp, true),
        ("1.2.3.4", ">= 1.2.3", VersionMode::HashiCorp, true),
        ("1.2.3.4", ">= 1.2.3", VersionMode::Semver, false),
        ("1.2", "!= 1.2.0", VersionMode::HashiCorp, false),
        ("abc", ">= 1", VersionMode::HashiCorp, false),
        ("1.0", "", VersionMode::HashiCorp, false),
    ];
    for (v, c, mode, want) in cases {
        assert_eq!(version_matches(v, c, mode), want, "{v} {c} {mode:?}");
    }
}

#[test]
fn datacenter_globs_match_star_anywhere() {
    for (pattern, text, want) in [
        ("*", "dc1", true),
        ("dc-*", "dc-east", true),
        ("dc-*", "dc1", false),
        ("*-east", "dc-east", true),
        ("d*-*t", "dc-east", true),
        ("dc1", "dc1", true),
        ("dc1", "dc10", false),
        ("", "", true),
        ("**", "x", true),
    ] {
        assert_eq!(glob_match(pattern, text), want, "{pattern} ~ {text}");
    }
}

fn sized(cpu: i64, mem: i64, disk: i64) -> Node {
    Node {
        node_resources: Some(NodeResources {
            cpu: NodeCpuResources { cpu_shares: cpu, total_cpu_cores: 4, ..Default::default() },
            memory: NodeMemoryResources { memory_mb: mem, ..Default::default() },
            disk: NodeDiskResources { disk_mb: disk, ..Default::default() },
            min_dynamic_port: 20000,
            max_dynamic_port: 20003,
            ..Default::default()
        }),
        ..node()
    }
}

#[test]
fn capacity_is_resources_minus_reserved() {
    let mut n = sized(4000, 8192, 10_000);
    n.reserved_resources = Some(NodeReservedResources {
        cpu: stead_model::NodeReservedCpuResources {
            cpu_shares: 500,
            reserved_cpu_cores: vec![0],
            ..Default::default()
        },
        memory: NodeMemoryResources { memory_mb: 1024, ..Default::default() },
        networks: stead_model::NodeReservedNetworkResources {
            reserved_host_ports: "22,20001".to_owned(),
            ..Default::default()
        },
        ..Default::default()
    });
    let v = NodeView::new(n.into());
    assert_eq!((v.capacity.cpu_mhz, v.capacity.memory_mb, v.capacity.disk_mb), (3500, 7168, 10_000));
    assert_eq!(v.capacity.cores.iter().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(v.capacity.mhz_per_core, 1000);

    let ask = |cpu, mem| Ask { cpu_mhz: cpu, memory_mb: mem, disk_mb: 0, ..Ask::default() };
    assert_eq!(v.fits(&ask(3500, 7168)), Ok(()));
    assert_eq!(v.fits(&ask(3501, 10)), Err(DIM_CPU));
    assert_eq!(v.fits(&ask(10, 7169)), Err(DIM_MEMORY));
    let port = |p| Ask {
        static_ports: vec![StaticPort { label: "x".into(), port: p, ignore_collision: false }],
        ..Ask::default()
    };
    assert_eq!(v.fits(&port(22)), Err(DIM_RESERVED_PORT), "a port the node reserves");
    assert_eq!(v.fits(&port(8080)), Ok(()));
    let ignoring = Ask {
        static_ports: vec![StaticPort { label: "x".into(), port: 22, ignore_collision: true }],
        ..Ask::default()
    };
    assert_eq!(v.fits(&ignoring), Ok(()));
}

#[test]
fn static_ports_collide_and_dynamic_ports_never_do() {
    // Dynamic range 20000..=20003: four ports.
    let mut v = NodeView::new(sized(100_000, 100_000, 100_000).into());
    let mut rng = SplitMix64::new(7);
    let web = Ask {
        static_ports: vec![StaticPort { label: "http".into(), port: 20001, ignore_collision: false }],
        dynamic_ports: vec!["a".into()],
        ..Ask::default()
    };
    let taken = v.take(&web, &mut rng);
    assert_eq!(v.fits(&web), Err(DIM_RESERVED_PORT), "the static port is now used");
    assert_ne!(taken.dynamic_ports[0].1, 20001);
    let two_dynamic = Ask { dynamic_ports: vec!["a".into(), "b".into()], ..Ask::default() };
    let more = v.take(&two_dynamic, &mut rng);
    let mut all: Vec<u16> = v.usage.ports.iter().copied().collect();
    all.sort_unstable();
    assert_eq!(all, vec![20000, 20001, 20002, 20003]);
    assert!(more.dynamic_ports.iter().all(|(_, p)| (20000..=20003).contains(p)));
    assert_eq!(v.fits(&Ask { dynamic_ports: vec!["c".into()], ..Ask::default() }), Err(DIM_DYNAMIC_PORT));
}

#[test]
fn computed_class_ignores_unique_attributes_but_not_drivers() {
    let a = node();
    let mut b = node();
    b.id = "node-2".into();
    b.name = "web-2".into();
    b.attributes.insert("unique.hostname".into(), "web-2.example".into());
    assert_eq!(computed_class(&a), computed_class(&b));
    b.drivers.insert("docker".into(), DriverInfo { detected: true, healthy: true, ..Default::default() });
    assert_ne!(computed_class(&a), computed_class(&b));
    let mut c = node();
    c.meta.insert("rack".into(), "r2".into());
    assert_ne!(computed_class(&a), computed_class(&c));
}

#[test]
fn seeded_shuffle_is_deterministic_and_a_permutation() {
    let mut a: Vec<u32> = (0..50).collect();
    let mut b = a.clone();
    SplitMix64::new(42).shuffle(&mut a);
    SplitMix64::new(42).shuffle(&mut b);
    assert_eq!(a, b);
    let mut c = (0..50).collect::<Vec<u32>>();
    SplitMix64::new(43).shuffle(&mut c);
    assert_ne!(a, c);
    a.sort_unstable();
    assert_eq!(a, (0..50).collect::<Vec<_>>());
}

#[test]
fn a_group_ask_takes_the_largest_lifecycle_phase_and_all_ports() {
    use stead_model::{EphemeralDisk, Lifecycle, LifecycleHook, NetworkResource, Port, Resources, Task, TaskGroup};
    let task = |name: &str, cpu, mem, hook: Option<(LifecycleHook, bool)>| Task {
        name: name.into(),
        driver: "docker".into(),
        resources: Some(Resources { cpu: Some(cpu), memory_mb: Some(mem), ..Default::default() }),
        lifecycle: hook.map(|(hook, sidecar)| Lifecycle { hook, sidecar, ..Default::default() }),
        ..Default::default()
    };
    let group = TaskGroup {
        name: "g".into(),
        tasks: vec![
            task("init", 2000, 100, Some((LifecycleHook::Prestart, false))),
            task("main", 500, 400, None),
            task("proxy", 100, 50, Some((LifecycleHook::Prestart, true))),
            task("cleanup", 50, 1000, Some((LifecycleHook::Poststop, false))),
        ],
        ephemeral_disk: Some(EphemeralDisk { size_mb: Some(150), ..Default::default() }),
        networks: vec![NetworkResource {
            reserved_ports: vec![Port { label: "http".into(), value: 80, ..Default::default() }],
            dynamic_ports: vec![Port { label: "admin".into(), ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let ask = Ask::of_group(&group);
    // CPU: init phase 2000 + sidecar 100 beats main 500 + 100; memory: poststop 1000 wins.
    assert_eq!((ask.cpu_mhz, ask.memory_mb, ask.disk_mb), (2100, 1000, 150));
    assert_eq!(ask.static_ports.iter().map(|p| p.port).collect::<Vec<_>>(), vec![80]);
    assert_eq!(ask.dynamic_ports, vec!["admin".to_owned()]);
}

#[test]
fn cores_are_reserved_exclusively_and_cost_their_mhz() {
    let mut v = NodeView::new(sized(4000, 100_000, 100_000).into());
    let mut rng = SplitMix64::new(1);
    let two = Ask { cores: 2, ..Ask::default() };
    let a = v.take(&two, &mut rng);
    let b = v.take(&two, &mut rng);
    assert_eq!(v.usage.cpu_mhz, 4000);
    assert!(a.cores.iter().all(|c| !b.cores.contains(c)), "{:?} {:?}", a.cores, b.cores);
    assert_eq!(v.fits(&Ask { cores: 1, ..Ask::default() }), Err(super::cluster::DIM_CORES));
}

fn named(id: &str, dc: &str) -> Node {
    Node { id: id.into(), datacenter: dc.to_owned(), ..node() }
}

#[test]
fn candidates_are_memoized_per_node_set_and_follow_node_changes_but_not_usage_changes() {
    use std::sync::Arc;

    use super::cluster::NodeSet;

    let set = |nodes: Vec<Node>| NodeSet::new(nodes.into_iter().map(|n| Arc::new(NodeView::new(Arc::new(n)))));
    let mut s = set(vec![named("a", "dc1"), named("b", "dc2"), named("c", "dc1")]);
    let dcs = vec!["dc1".to_owned()];
    let first = s.candidates("default", &dcs);
    assert_eq!(first.indexes, vec![0, 2]);
    assert_eq!((first.nodes_in_pool, first.nodes_available.get("dc1")), (3, Some(&2)));
    assert!(Arc::ptr_eq(&first, &s.candidates("default", &dcs)), "memoized");
    assert_eq!(s.candidates("default", &["*".to_owned()]).indexes, vec![0, 1, 2]);

    // A usage change keeps the node record: the memo stays.
    let mut busier = NodeView::clone(s.get(&"a".into()).unwrap());
    busier.usage.cpu_mhz = 100;
    s.update(vec![Arc::new(busier)], &Default::default());
    assert!(Arc::ptr_eq(&first, &s.candidates("default", &dcs)));

    // A node turning ineligible is a record change: candidates are computed again.
    let mut off = named("c", "dc1");
    off.scheduling_eligibility = SchedulingEligibility::Ineligible;
    s.update(vec![Arc::new(NodeView::new(Arc::new(off)))], &Default::default());
    assert_eq!(s.candidates("default", &dcs).indexes, vec![0]);
}
