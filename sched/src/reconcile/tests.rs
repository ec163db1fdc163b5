//! Reconciler tests: one `check` helper renders the answer as text, cases state the input and
//! the expected text; property tests drive random states through reconcile → apply →
//! reconcile.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use proptest::prelude::*;
use stead_model::{
    AllocClientStatus, AllocDeploymentStatus, AllocDesiredStatus, AllocId, Allocation, DelayFunction, EvalId, Job,
    JobId, JobType, Nanos, NodeId, RescheduleEvent, ReschedulePolicy, RescheduleTracker, Resources, Task, TaskEvent,
    TaskGroup, TaskState,
};

use super::reschedule::{is_eligible, next_delay};
use super::*;

const SEC: i64 = 1_000_000_000;
/// An arbitrary "now": far from 0 so that intervals before it are representable.
const NOW: i64 = 1_000_000 * SEC;

fn job(kind: JobType, groups: &[(&str, i32)]) -> Job {
    let mut job = Job {
        id: JobId::new("web"),
        job_type: Some(kind),
        task_groups: groups
            .iter()
            .map(|(name, count)| TaskGroup {
                name: (*name).to_owned(),
                count: Some(*count),
                tasks: vec![Task {
                    name: "srv".to_owned(),
                    driver: "docker".to_owned(),
                    config: [("image".to_owned(), serde_json::json!("v1"))].into(),
                    resources: Some(Resources { cpu: Some(100), memory_mb: Some(64), ..Resources::default() }),
                    ..Task::default()
                }],
                ..TaskGroup::default()
            })
            .collect(),
        ..Job::default()
    };
    job.canonicalize();
    job
}

fn service(count: i32) -> Job {
    job(JobType::Service, &[("app", count)])
}

fn batch(count: i32) -> Job {
    job(JobType::Batch, &[("app", count)])
}

/// The next version of `job`, changed by `change`.
fn next_version(job: &Job, change: impl FnOnce(&mut Job)) -> Job {
    let mut next = job.clone();
    change(&mut next);
    next.version += 1;
    next.job_modify_index += 1;
    next
}

fn group_mut(job: &mut Job) -> &mut TaskGroup {
    &mut job.task_groups[0]
}

fn task_mut(job: &mut Job) -> &mut Task {
    &mut job.task_groups[0].tasks[0]
}

/// A cluster state: the job, its allocations, the nodes.
struct World {
    job: Option<Job>,
    allocs: Vec<Allocation>,
    nodes: BTreeMap<NodeId, NodeState>,
    now: i64,
    eval_id: EvalId,
    ids: u32,
    /// `Some` for a system or sysbatch job: the nodes that should run it.
    candidates: Option<BTreeSet<NodeId>>,
}

/// Compact, for proptest's failure reports.
impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.job {
            Some(j) => {
                let g = &j.task_groups[0];
                let mp = g.update.as_ref().and_then(|u| u.max_parallel);
                writeln!(f, "job {} v{} count={:?} stop={} max_parallel={mp:?}", j.kind(), j.version, g.count, j.stop)?;
                writeln!(f, "  reschedule {:?}", g.reschedule_policy)?;
            }
            None => writeln!(f, "job purged")?,
        }
        for a in &self.allocs {
            writeln!(
                f,
                "  {} {} v{} on {} client={} desired={} migrate={:?} failed_at={} past={} followup={:?} healthy={:?} next={:?}",
                a.id,
                a.name,
                a.job_version,
                a.node_id,
                a.client_status,
                a.desired_status,
                a.desired_transition.migrate,
                secs(reschedule::failure_time(a)),
                a.reschedule_tracker.as_ref().map_or(0, |t| t.events.len()),
                a.followup_eval_id.as_str(),
                a.deployment_status.as_ref().and_then(|d| d.healthy),
                a.next_allocation.as_str(),
            )?;
        }
        Ok(())
    }
}

impl World {
    fn new(job: &Job) -> World {
        let nodes = [("n1", NodeState::Ready), ("n2", NodeState::Ready)]
            .into_iter()
            .map(|(id, s)| (NodeId::new(id), s))
            .collect();
        World {
            job: Some(job.clone()),
            allocs: Vec::new(),
            nodes,
            now: NOW,
            eval_id: EvalId::new("eval"),
            ids: 0,
            candidates: None,
        }
    }

    fn next_id(&mut self) -> AllocId {
        self.ids += 1;
        AllocId::new(format!("a{}", self.ids))
    }

    /// Add an allocation of `job`'s first group (or `group`) at `index` on `node`, running.
    fn alloc(&mut self, job: &Job, index: u32, node: &str) -> &mut Allocation {
        self.alloc_in(job, &job.task_groups[0].name.clone(), index, node)
    }

    fn alloc_in(&mut self, job: &Job, group: &str, index: u32, node: &str) -> &mut Allocation {
        let id = self.next_id();
        self.allocs.push(Allocation {
            id,
            name: alloc_name(job.id.as_str(), group, index),
            node_id: NodeId::new(node),
            job_id: job.id.clone(),
            job: Some(Box::new(job.clone())),
            job_version: job.version,
            task_group: group.to_owned(),
            desired_status: AllocDesiredStatus::Run,
            client_status: AllocClientStatus::Running,
            create_index: u64::from(self.ids),
            ..Allocation::default()
        });
        self.allocs.last_mut().expect("just pushed")
    }

    fn node(&mut self, id: &str, state: NodeState) {
        self.nodes.insert(NodeId::new(id), state);
    }

    fn reconcile(&self) -> Reconciliation {
        if let Some(candidates) = &self.candidates {
            return reconcile_system(&SystemInput {
                job: self.job.as_ref(),
                allocs: &self.allocs,
                nodes: &self.nodes,
                candidates,
                now: self.now,
                eval_id: &self.eval_id,
                deployment: None,
            });
        }
        reconcile(&ReconcileInput {
            job: self.job.as_ref(),
            allocs: &self.allocs,
            nodes: &self.nodes,
            now: self.now,
            eval_id: &self.eval_id,
            deployment: None,
        })
    }

    /// Apply an answer as the plan commit would: stops, in-place updates, placements (on the
    /// first ready node), follow-up IDs. Placed allocations are pending and not yet healthy.
    fn apply(&mut self, r: &Reconciliation) {
        let ready = self.nodes.iter().find(|(_, s)| **s == NodeState::Ready).map(|(id, _)| id.clone());
        let ready = ready.unwrap_or_else(|| NodeId::new("fresh"));
        self.nodes.entry(ready.clone()).or_insert(NodeState::Ready);
        let job = self.job.clone();
        for g in r.groups.values() {
            let stops = g.stop.iter().chain(g.destructive_update.iter().map(|d| &d.stop));
            for s in stops {
                let a = self.allocs.iter_mut().find(|a| a.id == s.alloc_id).expect("stop of a known alloc");
                a.desired_status = AllocDesiredStatus::Stop;
                a.desired_description = s.reason.description().to_owned();
                if let Some(status) = &s.client_status {
                    a.client_status = status.clone();
                }
            }
            for u in &g.inplace_update {
                let job = job.as_ref().expect("in-place update needs a job");
                let a = self.allocs.iter_mut().find(|a| a.id == u.alloc_id).expect("known alloc");
                a.job = Some(Box::new(job.clone()));
                a.job_version = job.version;
            }
            for l in &g.reschedule_later {
                let a = self.allocs.iter_mut().find(|a| a.id == l.alloc.alloc_id).expect("known alloc");
                a.followup_eval_id = EvalId::new(format!("followup-{}", l.followup));
            }
            let places = g.place.iter().chain(g.destructive_update.iter().map(|d| &d.place));
            for p in places {
                let job = job.as_ref().expect("placement needs a job");
                let id = self.next_id();
                if let Some(prev) = &p.previous_alloc {
                    let a = self.allocs.iter_mut().find(|a| &a.id == prev).expect("known alloc");
                    a.next_allocation = id.clone();
                }
                self.allocs.push(Allocation {
                    id,
                    name: p.name.clone(),
                    node_id: p.node.clone().unwrap_or_else(|| ready.clone()),
                    job_id: job.id.clone(),
                    job: Some(Box::new(job.clone())),
                    job_version: job.version,
                    task_group: p.task_group.clone(),
                    desired_status: AllocDesiredStatus::Run,
                    client_status: AllocClientStatus::Pending,
                    previous_allocation: p.previous_alloc.clone().unwrap_or_default(),
                    reschedule_tracker: p.reschedule_tracker.clone(),
                    create_index: u64::from(self.ids),
                    ..Allocation::default()
                });
            }
        }
    }

    /// Names of allocations that run or will run (`name@node` for system jobs, whose names
    /// are unique per node).
    fn live_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .allocs
            .iter()
            .filter(|a| a.desired_status == AllocDesiredStatus::Run && !a.client_status.is_terminal())
            .map(|a| if self.candidates.is_some() { format!("{}@{}", a.name, a.node_id) } else { a.name.clone() })
            .collect();
        names.sort_unstable();
        names
    }
}

fn fail(alloc: &mut Allocation, at: i64) {
    alloc.client_status = AllocClientStatus::Failed;
    alloc.modify_time = at;
    let event = TaskEvent { event_type: "Terminated".to_owned(), time: at, ..TaskEvent::default() };
    alloc.task_states.insert("srv".to_owned(), TaskState { failed: true, events: vec![event], ..TaskState::default() });
}

fn secs(ns: i64) -> String {
    let d = ns - NOW;
    if d % SEC == 0 { format!("{:+}s", d / SEC) } else { format!("{d:+}ns") }
}

/// The answer as text: one line per decision, then the annotations and follow-ups.
fn render(r: &Reconciliation) -> String {
    let mut s = String::new();
    for (name, g) in &r.groups {
        let d = &g.desired_updates;
        let counts = [
            ("place", d.place),
            ("stop", d.stop),
            ("migrate", d.migrate),
            ("inplace", d.in_place_update),
            ("destructive", d.destructive_update),
            ("canary", d.canary),
            ("now", d.reschedule_now),
            ("later", d.reschedule_later),
            ("ignore", d.ignore),
        ];
        let counts: Vec<String> = counts.iter().filter(|(_, n)| *n > 0).map(|(k, n)| format!("{k}={n}")).collect();
        writeln!(s, "group {name}: {}", counts.join(" ")).unwrap();
        for p in &g.place {
            let prev = p.previous_alloc.as_ref().map(|a| format!(" replaces {a}")).unwrap_or_default();
            let tracker = p.reschedule_tracker.as_ref().map(|t| format!(" attempts={}", t.events.len()));
            writeln!(s, "  place {} {:?}{prev}{}", p.name, p.reason, tracker.unwrap_or_default()).unwrap();
        }
        for x in &g.stop {
            let status = x.client_status.as_ref().map(|c| format!(" [{c}]")).unwrap_or_default();
            writeln!(s, "  stop {} {}: {}{status}", x.alloc_id, x.name, x.reason.description()).unwrap();
        }
        for u in &g.inplace_update {
            writeln!(s, "  inplace {} {}", u.alloc_id, u.name).unwrap();
        }
        for u in &g.destructive_update {
            writeln!(s, "  destructive {} {} ({})", u.stop.alloc_id, u.stop.name, u.change).unwrap();
        }
        for l in &g.reschedule_later {
            writeln!(
                s,
                "  later {} {} at {} (followup {})",
                l.alloc.alloc_id,
                l.alloc.name,
                secs(l.reschedule_at),
                l.followup
            )
            .unwrap();
        }
        for i in &g.ignore {
            writeln!(s, "  ignore {} {}", i.alloc_id, i.name).unwrap();
        }
    }
    for (i, f) in r.followup_evals.iter().enumerate() {
        let ids: Vec<&str> = f.allocs.iter().map(|a| a.as_str()).collect();
        writeln!(s, "followup {i} at {}: {}", secs(f.wait_until), ids.join(" ")).unwrap();
    }
    s
}

/// Reconcile `world`, compare with `expect` (leading/trailing blank lines and the common
/// indentation of `expect` ignored), then apply the answer and check that reconciling again
/// changes nothing and that no two live allocations share a name.
#[track_caller]
fn check(world: &mut World, expect: &str) {
    let r = world.reconcile();
    let got = render(&r);
    let want = dedent(expect);
    assert_eq!(got, want, "\n--- got ---\n{got}--- want ---\n{want}");
    world.apply(&r);
    let again = world.reconcile();
    assert!(again.changes_nothing(), "not idempotent; second answer:\n{}", render(&again));
    let live = world.live_names();
    let mut unique = live.clone();
    unique.dedup();
    assert_eq!(live, unique, "two live allocations share a name");
}

fn dedent(text: &str) -> String {
    let lines: Vec<&str> = text.lines().skip_while(|l| l.trim().is_empty()).collect();
    let indent = lines.iter().filter(|l| !l.trim().is_empty()).map(|l| l.len() - l.trim_start().len()).min();
    let indent = indent.unwrap_or(0);
    let mut out = String::new();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        out.push_str(&line[indent.min(line.len())..]);
        out.push('\n');
    }
    out
}

// ---- placing and scaling -------------------------------------------------------------------

#[test]
fn fresh_job_places_count_allocs_with_indexes_from_zero() {
    let mut w = World::new(&service(3));
    check(
        &mut w,
        "
        group app: place=3
          place web.app[0] New
          place web.app[1] New
          place web.app[2] New
        ",
    );
    assert_eq!(w.live_names(), ["web.app[0]", "web.app[1]", "web.app[2]"]);
}

#[test]
fn scale_up_fills_the_lowest_free_indexes() {
    let v0 = service(2);
    let mut w = World::new(&v0);
    w.alloc(&v0, 0, "n1");
    w.alloc(&v0, 2, "n1");
    w.job = Some(next_version(&v0, |j| group_mut(j).count = Some(4)));
    check(
        &mut w,
        "
        group app: place=2 inplace=2
          place web.app[1] New
          place web.app[3] New
          inplace a1 web.app[0]
          inplace a2 web.app[2]
        ",
    );
}

#[test]
fn scale_down_stops_the_highest_indexes_first() {
    let v0 = service(4);
    let mut w = World::new(&v0);
    for i in 0..4 {
        w.alloc(&v0, i, "n1");
    }
    w.job = Some(next_version(&v0, |j| group_mut(j).count = Some(2)));
    check(
        &mut w,
        "
        group app: stop=2 inplace=2
          stop a4 web.app[3]: alloc not needed due to job update
          stop a3 web.app[2]: alloc not needed due to job update
          inplace a1 web.app[0]
          inplace a2 web.app[1]
        ",
    );
}

#[test]
fn scale_down_drops_lost_and_failed_allocs_before_healthy_ones() {
    let v0 = service(3);
    let mut w = World::new(&v0);
    w.node("gone", NodeState::Down);
    w.alloc(&v0, 0, "gone");
    w.alloc(&v0, 1, "n1");
    w.alloc(&v0, 2, "n1");
    w.job = Some(next_version(&v0, |j| group_mut(j).count = Some(2)));
    check(
        &mut w,
        "
        group app: stop=1 inplace=2
          stop a1 web.app[0]: alloc is lost since its node is down [lost]
          inplace a2 web.app[1]
          inplace a3 web.app[2]
        ",
    );
}

#[test]
fn stopped_job_stops_every_allocation() {
    let v0 = service(2);
    let mut w = World::new(&v0);
    w.alloc(&v0, 0, "n1");
    w.alloc(&v0, 1, "n2");
    w.job.as_mut().unwrap().stop = true;
    check(
        &mut w,
        "
        group app: stop=2
          stop a1 web.app[0]: alloc not needed since job is stopped
          stop a2 web.app[1]: alloc not needed since job is stopped
        ",
    );
    assert!(w.live_names().is_empty());
}

#[test]
fn purged_job_stops_every_allocation_and_marks_those_on_down_nodes_lost() {
    let v0 = service(2);
    let mut w = World::new(&v0);
    w.node("gone", NodeState::Down);
    w.alloc(&v0, 0, "n1");
    w.alloc(&v0, 1, "gone");
    w.job = None;
    check(
        &mut w,
        "
        group app: stop=2
          stop a1 web.app[0]: alloc not needed since job is stopped
          stop a2 web.app[1]: alloc is lost since its node is down [lost]
        ",
    );
}

#[test]
fn removed_group_is_stopped_and_added_group_is_placed() {
    let v0 = job(JobType::Service, &[("old", 1)]);
    let mut w = World::new(&v0);
    w.alloc(&v0, 0, "n1");
    w.job = Some(next_version(&v0, |j| group_mut(j).name = "new".to_owned()));
    check(
        &mut w,
        "
        group new: place=1
          place web.new[0] New
        group old: stop=1
          stop a1 web.old[0]: alloc not needed due to job update
        ",
    );
}

#[test]
fn unchanged_job_ignores_its_allocations() {
    let v0 = service(2);
    let mut w = World::new(&v0);
    w.alloc(&v0, 0, "n1");
    w.alloc(&v0, 1, "n2");
    check(
        &mut w,
        "
        group app: ignore=2
          ignore a1 web.app[0]
          ignore a2 web.app[1]
        ",
    );
}

#[test]
fn duplicate_names_keep_one_allocation_and_stop_the_other() {
    let v0 = service(2);
    let mut w = World::new(&v0);
    w.alloc(&v0, 0, "n1");
    w.alloc(&v0, 0, "n2");
    check(
        &mut w,
        "
        group app: place=1 stop=1 ignore=1
          place web.app[1] New
          stop a2 web.app[0]: alloc not needed since another alloc has the same name
          ignore a1 web.app[0]
        ",
    );
}

#[test]
fn alloc_names_round_trip_and_odd_names_have_no_index() {
    assert_eq!(alloc_name("web", "app", 7), "web.app[7]");
    assert_eq!(alloc_index("web.app[7]", "web", "app"), Some(7));
    assert_eq!(alloc_index("a.b.c[2]", "a.b", "c"), Some(2), "job IDs may contain dots");
    for odd in ["web.app", "web.app[]", "web.app[-1]", "web.other[1]", "web.app[1]x", "batch/web.app[1]"] {
        assert_eq!(alloc_index(odd, "web", "app"), None, "{odd}");
    }
}

#[test]
fn scale_down_stops_odd_names_first() {
    let v0 = service(2);
    let mut w = World::new(&v0);
    w.alloc(&v0, 0, "n1");
    w.alloc(&v0, 1, "n1");
    w.alloc(&v0, 2, "n1").name = "web.app".to_owned();
    check(
        &mut w,
        "
        group app: stop=1 ignore=2
          stop a3 web.app: alloc not needed due to job update
          ignore a1 web.app[0]
          ignore a2 web.app[1]
        ",
    );
}

// ---- updates -------------------------------------------------------------------------------

/// A change to a job, for table-driven update cases.
type Change = Box<dyn Fn(&mut Job)>;

#[test]
fn update_kind_follows_the_documented_rule() {
    let v0 = service(1);
    let group = |j: &Job| j.task_groups[0].clone();
    let cases: Vec<(&str, Change, &str)> = vec![
        ("nothing", Box::new(|_| {}), "in-place"),
        ("group meta", Box::new(|j| _ = group_mut(j).meta.insert("k".into(), "v".into())), "group \"app\" meta"),
        ("task meta", Box::new(move |j| _ = task_mut(j).meta.insert("k".into(), "v".into())), "task \"srv\" meta"),
        ("services", Box::new(|j| group_mut(j).services.push(Default::default())), "in-place"),
        ("update", Box::new(|j| group_mut(j).update.as_mut().unwrap().max_parallel = Some(3)), "in-place"),
        ("restart", Box::new(move |j| task_mut(j).restart_policy = None), "in-place"),
        ("count", Box::new(|j| group_mut(j).count = Some(5)), "in-place"),
        ("affinities", Box::new(|j| group_mut(j).affinities.push(Default::default())), "in-place"),
        (
            "config",
            Box::new(move |j| _ = task_mut(j).config.insert("image".into(), "v2".into())),
            "task \"srv\" config",
        ),
        ("driver", Box::new(move |j| task_mut(j).driver = "exec".into()), "task \"srv\" driver"),
        ("env", Box::new(move |j| _ = task_mut(j).env.insert("A".into(), "1".into())), "task \"srv\" env"),
        ("user", Box::new(move |j| task_mut(j).user = "nobody".into()), "task \"srv\" user"),
        (
            "resources",
            Box::new(move |j| task_mut(j).resources.as_mut().unwrap().cpu = Some(200)),
            "task \"srv\" resources",
        ),
        ("artifacts", Box::new(move |j| task_mut(j).artifacts.push(Default::default())), "task \"srv\" artifacts"),
        ("templates", Box::new(move |j| task_mut(j).templates.push(Default::default())), "task \"srv\" templates"),
        ("vault", Box::new(move |j| task_mut(j).vault = Some(serde_json::json!({}))), "task \"srv\" vault"),
        (
            "volume_mounts",
            Box::new(move |j| task_mut(j).volume_mounts.push(Default::default())),
            "task \"srv\" volume_mounts",
        ),
        ("network", Box::new(|j| group_mut(j).networks.push(Default::default())), "group \"app\" network"),
        (
            "new task",
            Box::new(|j| group_mut(j).tasks.push(Task { name: "side".into(), ..Task::default() })),
            "group \"app\" tasks added or removed",
        ),
        ("datacenters", Box::new(|j| j.datacenters = vec!["dc2".into()]), "job datacenters"),
    ];
    for (what, change, want) in cases {
        let v1 = next_version(&v0, change);
        let got = match decide_update(Some(&v0), v0.version, &v1, &group(&v1)) {
            UpdateKind::Ignore => "ignore".to_owned(),
            UpdateKind::InPlace => "in-place".to_owned(),
            UpdateKind::Destructive(field) => field,
        };
        assert_eq!(got, want, "change of {what}");
    }
    assert_eq!(decide_update(Some(&v0), v0.version, &v0, &group(&v0)), UpdateKind::Ignore);
    assert!(matches!(decide_update(None, 0, &next_version(&v0, |_| {}), &group(&v0)), UpdateKind::Destructive(_)));
}

#[test]
fn destructive_updates_are_limited_by_max_parallel_and_the_rest_wait() {
    let v0 = service(3);
    let mut w = World::new(&v0);
    for i in 0..3 {
        w.alloc(&v0, i, "n1");
    }
    w.job = Some(next_version(&v0, |j| {
        group_mut(j).update.as_mut().unwrap().max_parallel = Some(2);
        group_mut(j).tasks[0].config.insert("image".into(), "v2".into());
    }));
    check(
        &mut w,
        r#"
        group app: destructive=2 ignore=1
          destructive a1 web.app[0] (task "srv" config)
          destructive a2 web.app[1] (task "srv" config)
          ignore a3 web.app[2]
        "#,
    );
    // Once the replacements report healthy, the last one goes.
    for a in w.allocs.iter_mut().filter(|a| a.job_version == 1) {
        a.client_status = AllocClientStatus::Running;
        a.deployment_status = Some(AllocDeploymentStatus { healthy: Some(true), ..Default::default() });
    }
    check(
        &mut w,
        r#"
        group app: destructive=1 ignore=2
          destructive a3 web.app[2] (task "srv" config)
          ignore a4 web.app[0]
          ignore a5 web.app[1]
        "#,
    );
}

#[test]
fn max_parallel_zero_updates_all_at_once_and_batch_jobs_are_not_limited() {
    for mut v0 in [service(2), batch(2)] {
        if let Some(u) = group_mut(&mut v0).update.as_mut() {
            u.max_parallel = Some(0);
        }
        let mut w = World::new(&v0);
        w.alloc(&v0, 0, "n1");
        w.alloc(&v0, 1, "n1");
        w.job = Some(next_version(&v0, |j| _ = group_mut(j).tasks[0].config.insert("image".into(), "v2".into())));
        check(
            &mut w,
            r#"
            group app: destructive=2
              destructive a1 web.app[0] (task "srv" config)
              destructive a2 web.app[1] (task "srv" config)
            "#,
        );
    }
}

#[test]
fn paused_deployment_of_the_new_version_holds_destructive_updates() {
    let v0 = service(1);
    let mut w = World::new(&v0);
    w.alloc(&v0, 0, "n1");
    let v1 = next_version(&v0, |j| _ = group_mut(j).tasks[0].config.insert("image".into(), "v2".into()));
    let deployment =
        stead_model::Deployment { job_version: v1.version, status: DeploymentStatus::Paused, ..Default::default() };
    let r = reconcile(&ReconcileInput {
        job: Some(&v1),
        allocs: &w.allocs,
        nodes: &w.nodes,
        now: NOW,
        eval_id: &w.eval_id,
        deployment: Some(&deployment),
    });
    assert_eq!(render(&r), "group app: ignore=1\n  ignore a1 web.app[0]\n");
}

// ---- nodes ---------------------------------------------------------------------------------

#[test]
fn down_node_marks_allocs_lost_and_replaces_them_without_a_reschedule_attempt() {
    let v0 = service(2);
    let mut w = World::new(&v0);
    w.node("gone", NodeState::Down);
    w.node("away", NodeState::Disconnected);
    w.alloc(&v0, 0, "gone");
    w.alloc(&v0, 1, "away");
    check(
        &mut w,
        "
        group app: place=2 stop=2
          place web.app[0] Lost replaces a1
          place web.app[1] Lost replaces a2
          stop a1 web.app[0]: alloc is lost since its node is down [lost]
          stop a2 web.app[1]: alloc is lost since its node is down [lost]
        ",
    );
    assert!(w.allocs.iter().all(|a| a.reschedule_tracker.is_none()));
}

#[test]
fn vanished_node_counts_as_down() {
    let v0 = service(1);
    let mut w = World::new(&v0);
    w.alloc(&v0, 0, "never-heard-of");
    check(
        &mut w,
        "
        group app: place=1 stop=1
          place web.app[0] Lost replaces a1
          stop a1 web.app[0]: alloc is lost since its node is down [lost]
        ",
    );
}

#[test]
fn draining_node_migrates_the_allocs_the_drainer_marked() {
    let v0 = service(2);
    let mut w = World::new(&v0);
    w.node("draining", NodeState::Draining);
    w.alloc(&v0, 0, "draining").desired_transition.migrate = Some(true);
    w.alloc(&v0, 1, "draining");
    check(
        &mut w,
        "
        group app: migrate=1 ignore=1
          place web.app[0] Migrate replaces a1
          stop a1 web.app[0]: alloc is being migrated
          ignore a2 web.app[1]
        ",
    );
}

#[test]
fn node_state_of_a_node_reads_status_and_drain() {
    let mut node = stead_model::Node { status: stead_model::NodeStatus::Ready, ..Default::default() };
    assert_eq!(NodeState::of(&node), NodeState::Ready);
    node.drain_strategy = Some(Default::default());
    assert_eq!(NodeState::of(&node), NodeState::Draining);
    node.drain_strategy = None;
    node.scheduling_eligibility = stead_model::SchedulingEligibility::Ineligible;
    assert_eq!(NodeState::of(&node), NodeState::Ineligible);
    node.status = stead_model::NodeStatus::Down;
    assert_eq!(NodeState::of(&node), NodeState::Down);
    node.status = stead_model::NodeStatus::Disconnected;
    assert_eq!(NodeState::of(&node), NodeState::Disconnected);
}

// ---- failures and rescheduling -------------------------------------------------------------

fn policy(
    attempts: i32,
    interval_s: i64,
    delay_s: i64,
    function: DelayFunction,
    max_s: i64,
    unlimited: bool,
) -> ReschedulePolicy {
    ReschedulePolicy {
        attempts: Some(attempts),
        interval: Some(Nanos::from_secs(interval_s)),
        delay: Some(Nanos::from_secs(delay_s)),
        delay_function: Some(function),
        max_delay: Some(Nanos::from_secs(max_s)),
        unlimited: Some(unlimited),
        ..ReschedulePolicy::default()
    }
}

fn tracker(events: &[(i64, i64)]) -> RescheduleTracker {
    RescheduleTracker {
        events: events
            .iter()
            .map(|(at, delay_s)| RescheduleEvent {
                reschedule_time: *at,
                delay: Nanos::from_secs(*delay_s),
                ..RescheduleEvent::default()
            })
            .collect(),
        ..RescheduleTracker::default()
    }
}

#[test]
fn delay_functions_grow_as_documented_and_stop_at_max_delay() {
    // (function, delays of past events, expected next delay in seconds); base 5 s, max 60 s.
    let cases: &[(DelayFunction, &[i64], i64)] = &[
        (DelayFunction::Constant, &[], 5),
        (DelayFunction::Constant, &[5, 5, 5], 5),
        (DelayFunction::Exponential, &[], 5),
        (DelayFunction::Exponential, &[5], 10),
        (DelayFunction::Exponential, &[5, 10], 20),
        (DelayFunction::Exponential, &[5, 10, 20, 40], 60),
        (DelayFunction::Fibonacci, &[], 5),
        (DelayFunction::Fibonacci, &[5], 5),
        (DelayFunction::Fibonacci, &[5, 5], 10),
        (DelayFunction::Fibonacci, &[5, 10], 15),
        (DelayFunction::Fibonacci, &[25, 40], 60),
    ];
    for (function, delays, want) in cases {
        let p = policy(0, 0, 5, function.clone(), 60, true);
        // Past events one second apart, the last one second before the failure.
        let n = delays.len() as i64;
        let events: Vec<(i64, i64)> =
            delays.iter().enumerate().map(|(i, d)| (NOW - (n - i as i64) * SEC, *d)).collect();
        let got = next_delay(&p, Some(&tracker(&events)), NOW);
        assert_eq!(got, Nanos::from_secs(*want), "{function} after {delays:?}");
    }
    // A failure long after the last reschedule starts over at the base delay.
    let p = policy(0, 0, 5, DelayFunction::Exponential, 60, true);
    assert_eq!(next_delay(&p, Some(&tracker(&[(NOW - 3600 * SEC, 40)])), NOW), Nanos::from_secs(5));
}

#[test]
fn reschedule_attempts_count_only_within_the_interval() {
    let p = policy(2, 600, 5, DelayFunction::Constant, 0, false);
    assert!(is_eligible(&p, None, NOW));
    assert!(is_eligible(&p, Some(&tracker(&[(NOW - 10 * SEC, 5)])), NOW));
    assert!(!is_eligible(&p, Some(&tracker(&[(NOW - 20 * SEC, 5), (NOW - 10 * SEC, 5)])), NOW));
    assert!(is_eligible(&p, Some(&tracker(&[(NOW - 700 * SEC, 5), (NOW - 10 * SEC, 5)])), NOW));
    let disabled = policy(0, 600, 5, DelayFunction::Constant, 0, false);
    assert!(!is_eligible(&disabled, None, NOW));
    let unlimited = policy(0, 0, 5, DelayFunction::Constant, 0, true);
    assert!(is_eligible(&unlimited, Some(&tracker(&[(NOW - SEC, 5); 20])), NOW));
}

fn with_policy(mut job: Job, p: ReschedulePolicy) -> Job {
    group_mut(&mut job).reschedule_policy = Some(p);
    job
}

#[test]
fn failed_alloc_past_its_delay_is_rescheduled_now() {
    let v0 = with_policy(service(1), policy(0, 0, 30, DelayFunction::Exponential, 3600, true));
    let mut w = World::new(&v0);
    fail(w.alloc(&v0, 0, "n1"), NOW - 60 * SEC);
    check(
        &mut w,
        "
        group app: now=1
          place web.app[0] Reschedule replaces a1 attempts=1
          stop a1 web.app[0]: alloc was rescheduled because it failed
        ",
    );
    let placed = w.allocs.last().unwrap();
    let event = &placed.reschedule_tracker.as_ref().unwrap().events[0];
    assert_eq!(
        (event.reschedule_time, event.delay, &event.prev_alloc_id),
        (NOW, Nanos::from_secs(30), &AllocId::new("a1"))
    );
}

#[test]
fn failed_alloc_within_its_delay_is_rescheduled_later_by_a_followup_eval() {
    let v0 = with_policy(service(3), policy(0, 0, 30, DelayFunction::Constant, 0, true));
    let mut w = World::new(&v0);
    fail(w.alloc(&v0, 0, "n1"), NOW - 10 * SEC);
    fail(w.alloc(&v0, 1, "n1"), NOW - 8 * SEC);
    fail(w.alloc(&v0, 2, "n1"), NOW);
    check(
        &mut w,
        "
        group app: later=3
          later a1 web.app[0] at +20s (followup 0)
          later a2 web.app[1] at +22s (followup 0)
          later a3 web.app[2] at +30s (followup 1)
        followup 0 at +20s: a1 a2
        followup 1 at +30s: a3
        ",
    );
    // The follow-up evaluation, when it runs, replaces them.
    w.eval_id = EvalId::new("followup-0");
    w.now = NOW + 20 * SEC;
    check(
        &mut w,
        "
        group app: now=2 ignore=1
          place web.app[0] Reschedule replaces a1 attempts=1
          place web.app[1] Reschedule replaces a2 attempts=1
          stop a1 web.app[0]: alloc was rescheduled because it failed
          stop a2 web.app[1]: alloc was rescheduled because it failed
          ignore a3 web.app[2]
        ",
    );
}

#[test]
fn failed_alloc_with_exhausted_attempts_is_not_rescheduled() {
    let v0 = with_policy(batch(1), policy(1, 3600, 5, DelayFunction::Constant, 0, false));
    let mut w = World::new(&v0);
    let a = w.alloc(&v0, 0, "n1");
    fail(a, NOW - 60 * SEC);
    a.reschedule_tracker = Some(tracker(&[(NOW - 120 * SEC, 5)]));
    check(
        &mut w,
        "
        group app: ignore=1
          ignore a1 web.app[0]
        ",
    );
}

#[test]
fn force_reschedule_replaces_a_failed_alloc_despite_its_policy() {
    let v0 = with_policy(batch(1), policy(0, 0, 5, DelayFunction::Constant, 0, false));
    let mut w = World::new(&v0);
    let a = w.alloc(&v0, 0, "n1");
    fail(a, NOW);
    a.desired_transition.force_reschedule = Some(true);
    check(
        &mut w,
        "
        group app: now=1
          place web.app[0] Reschedule replaces a1 attempts=1
          stop a1 web.app[0]: alloc was rescheduled because it failed
        ",
    );
}

#[test]
fn batch_completed_allocs_are_not_replaced_but_service_ones_are() {
    let b = batch(2);
    let mut w = World::new(&b);
    w.alloc(&b, 0, "n1").client_status = AllocClientStatus::Complete;
    w.alloc(&b, 1, "n1");
    check(
        &mut w,
        "
        group app: ignore=2
          ignore a1 web.app[0]
          ignore a2 web.app[1]
        ",
    );
    let s = service(1);
    let mut w = World::new(&s);
    w.alloc(&s, 0, "n1").client_status = AllocClientStatus::Complete;
    check(
        &mut w,
        "
        group app: place=1
          place web.app[0] New
        ",
    );
}

// ---- properties ----------------------------------------------------------------------------

/// One generated allocation: (index, old version?, node, client status, server stopped?,
/// drainer mark, failed this many seconds ago, past reschedules, follow-up arranged,
/// healthy, already replaced).
type AllocSpec = (u32, bool, usize, usize, bool, bool, i64, usize, usize, bool, bool);

const NODES: [(&str, NodeState); 4] =
    [("n1", NodeState::Ready), ("n2", NodeState::Draining), ("n3", NodeState::Down), ("n4", NodeState::Disconnected)];
const NODE_NAMES: [&str; 5] = ["n1", "n2", "n3", "n4", "vanished"];
const CLIENT: [AllocClientStatus; 6] = [
    AllocClientStatus::Pending,
    AllocClientStatus::Running,
    AllocClientStatus::Complete,
    AllocClientStatus::Failed,
    AllocClientStatus::Lost,
    AllocClientStatus::Unknown,
];

fn alloc_spec() -> impl Strategy<Value = AllocSpec> {
    (
        0u32..6,
        any::<bool>(),
        0usize..NODE_NAMES.len(),
        0usize..CLIENT.len(),
        prop::bool::weighted(0.2),
        any::<bool>(),
        0i64..7200,
        0usize..4,
        0usize..3,
        any::<bool>(),
        prop::bool::weighted(0.1),
    )
}

/// A random job (service or batch; count; change kind; max_parallel; reschedule policy; stop)
/// and random allocations of it.
fn world_strategy() -> impl Strategy<Value = World> {
    (
        any::<bool>(),
        0i32..6,
        0usize..3,
        0i32..4,
        (0i32..3, any::<bool>(), 0usize..3, 0i64..120),
        0usize..12,
        prop::collection::vec(alloc_spec(), 0..10),
    )
        .prop_map(
            |(is_batch, count, change, max_parallel, (attempts, unlimited, function, delay), stopped, specs)| {
                let mut v0 = if is_batch { batch(count) } else { service(count) };
                let functions = [DelayFunction::Constant, DelayFunction::Exponential, DelayFunction::Fibonacci];
                group_mut(&mut v0).reschedule_policy =
                    Some(policy(attempts, 3600, delay, functions[function].clone(), 300, unlimited));
                if let Some(u) = group_mut(&mut v0).update.as_mut() {
                    u.max_parallel = Some(max_parallel);
                }
                let v1 = next_version(&v0, |j| match change {
                    0 => {}
                    1 => group_mut(j).services.push(Default::default()),
                    _ => _ = task_mut(j).config.insert("image".into(), "v2".into()),
                });
                let mut w = World::new(&v1);
                w.nodes = NODES.iter().map(|(id, s)| (NodeId::new(*id), *s)).collect();
                for (index, old, node, client, stopped, mark, failed_ago, past, followup, healthy, replaced) in specs {
                    let version = if old { &v0 } else { &v1 };
                    let a = w.alloc(version, index, NODE_NAMES[node]);
                    a.client_status = CLIENT[client].clone();
                    if a.client_status == AllocClientStatus::Failed {
                        fail(a, NOW - failed_ago * SEC);
                        let events: Vec<(i64, i64)> =
                            (0..past as i64).map(|i| (NOW - failed_ago * SEC - (i + 1) * 60 * SEC, delay)).collect();
                        a.reschedule_tracker = Some(tracker(&events));
                    }
                    if stopped {
                        a.desired_status = AllocDesiredStatus::Stop;
                    }
                    a.desired_transition.migrate = Some(mark);
                    a.followup_eval_id = match followup {
                        0 => EvalId::default(),
                        1 => EvalId::new("eval"),
                        _ => EvalId::new("elsewhere"),
                    };
                    if healthy {
                        a.deployment_status = Some(AllocDeploymentStatus { healthy: Some(true), ..Default::default() });
                    }
                    if replaced {
                        a.next_allocation = AllocId::new("later-one");
                    }
                }
                match stopped {
                    0 => w.job = None,
                    1 => w.job.as_mut().unwrap().stop = true,
                    _ => {}
                }
                w
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn reconciler_never_leaves_two_live_allocs_with_one_name_and_is_idempotent(mut w in world_strategy()) {
        let first = w.reconcile();
        prop_assert_eq!(&first, &w.reconcile(), "deterministic");

        // Each allocation gets at most one decision.
        let mut decided: Vec<&AllocId> = Vec::new();
        for g in first.groups.values() {
            decided.extend(g.stop.iter().map(|s| &s.alloc_id));
            decided.extend(g.destructive_update.iter().map(|d| &d.stop.alloc_id));
            decided.extend(g.inplace_update.iter().map(|u| &u.alloc_id));
            decided.extend(g.reschedule_later.iter().map(|l| &l.alloc.alloc_id));
            decided.extend(g.ignore.iter().map(|i| &i.alloc_id));
        }
        let total = decided.len();
        decided.sort();
        decided.dedup();
        prop_assert_eq!(total, decided.len(), "an allocation got two decisions:\n{}", render(&first));

        w.apply(&first);
        let live = w.live_names();
        let mut unique = live.clone();
        unique.dedup();
        prop_assert_eq!(&live, &unique, "two live allocations share a name:\n{}", render(&first));

        let wanted = match &w.job {
            Some(j) if !j.stop => j.task_groups[0].desired_count() as usize,
            _ => 0,
        };
        prop_assert!(live.len() <= wanted, "{} live for count {wanted}:\n{}", live.len(), render(&first));

        let second = w.reconcile();
        prop_assert!(second.changes_nothing(), "first:\n{}second:\n{}", render(&first), render(&second));
    }
}

// ---- system and sysbatch -------------------------------------------------------------------

fn system_world(job: &Job, nodes: &[(&str, NodeState)], candidates: &[&str]) -> World {
    let mut w = World::new(job);
    w.nodes = nodes.iter().map(|(id, s)| (NodeId::new(*id), *s)).collect();
    w.candidates = Some(candidates.iter().map(|id| NodeId::new(*id)).collect());
    w
}

fn render_nodes(r: &Reconciliation) -> Vec<String> {
    r.groups.values().flat_map(|g| &g.place).map(|p| format!("{} on {}", p.name, p.node.as_ref().unwrap())).collect()
}

#[test]
fn system_job_places_one_alloc_on_every_ready_candidate_node() {
    let sys = job(JobType::System, &[("app", 1)]);
    let nodes =
        [("n1", NodeState::Ready), ("n2", NodeState::Ready), ("n3", NodeState::Ineligible), ("n4", NodeState::Ready)];
    let mut w = system_world(&sys, &nodes, &["n1", "n2", "n3"]);
    w.alloc(&sys, 0, "n2");
    assert_eq!(render_nodes(&w.reconcile()), ["web.app[0] on n1"]);
    check(
        &mut w,
        "
        group app: place=1 ignore=1
          place web.app[0] New
          ignore a1 web.app[0]
        ",
    );
}

#[test]
fn system_job_stops_allocs_on_lost_left_and_drained_nodes_without_replacing_them() {
    let sys = job(JobType::System, &[("app", 1)]);
    let nodes = [
        ("down", NodeState::Down),
        ("left", NodeState::Ready),
        ("draining", NodeState::Draining),
        ("ineligible", NodeState::Ineligible),
    ];
    let mut w = system_world(&sys, &nodes, &["down", "draining", "ineligible"]);
    w.alloc(&sys, 0, "down");
    w.alloc(&sys, 0, "left");
    w.alloc(&sys, 0, "draining").desired_transition.migrate = Some(true);
    w.alloc(&sys, 0, "ineligible");
    check(
        &mut w,
        "
        group app: stop=2 migrate=1 ignore=1
          stop a1 web.app[0]: alloc is lost since its node is down [lost]
          stop a3 web.app[0]: alloc is being migrated
          stop a2 web.app[0]: alloc not needed due to job update
          ignore a4 web.app[0]
        ",
    );
}

#[test]
fn system_job_keeps_one_alloc_per_node_and_never_reschedules_failed_ones() {
    let sys = job(JobType::System, &[("app", 1)]);
    let mut w = system_world(&sys, &[("n1", NodeState::Ready), ("n2", NodeState::Ready)], &["n1", "n2"]);
    fail(w.alloc(&sys, 0, "n1"), NOW - 3600 * SEC);
    w.alloc(&sys, 0, "n2");
    w.alloc(&sys, 0, "n2").client_status = AllocClientStatus::Pending;
    check(
        &mut w,
        "
        group app: stop=1 ignore=2
          stop a3 web.app[0]: alloc not needed since another alloc has the same name
          ignore a1 web.app[0]
          ignore a2 web.app[0]
        ",
    );
}

#[test]
fn sysbatch_completed_allocs_are_done_but_system_ones_run_again() {
    let sb = job(JobType::Sysbatch, &[("app", 1)]);
    let mut w = system_world(&sb, &[("n1", NodeState::Ready)], &["n1"]);
    w.alloc(&sb, 0, "n1").client_status = AllocClientStatus::Complete;
    check(
        &mut w,
        "
        group app: ignore=1
          ignore a1 web.app[0]
        ",
    );
    let sys = job(JobType::System, &[("app", 1)]);
    let mut w = system_world(&sys, &[("n1", NodeState::Ready)], &["n1"]);
    w.alloc(&sys, 0, "n1").client_status = AllocClientStatus::Complete;
    check(
        &mut w,
        "
        group app: place=1
          place web.app[0] New
        ",
    );
}

#[test]
fn system_job_update_is_destructive_within_max_parallel() {
    let mut sys = job(JobType::System, &[("app", 1)]);
    group_mut(&mut sys).update = Some(stead_model::UpdateStrategy { max_parallel: Some(1), ..Default::default() });
    let mut w = system_world(&sys, &[("n1", NodeState::Ready), ("n2", NodeState::Ready)], &["n1", "n2"]);
    w.alloc(&sys, 0, "n1");
    w.alloc(&sys, 0, "n2");
    w.job = Some(next_version(&sys, |j| _ = task_mut(j).config.insert("image".into(), "v2".into())));
    check(
        &mut w,
        r#"
        group app: destructive=1 ignore=1
          destructive a1 web.app[0] (task "srv" config)
          ignore a2 web.app[0]
        "#,
    );
    assert_eq!(w.allocs.last().unwrap().node_id, NodeId::new("n1"), "the replacement stays on its node");
}

#[test]
fn stopped_system_job_stops_everything() {
    let sys = job(JobType::System, &[("app", 1)]);
    let mut w = system_world(&sys, &[("n1", NodeState::Ready)], &["n1"]);
    w.alloc(&sys, 0, "n1");
    w.job.as_mut().unwrap().stop = true;
    check(
        &mut w,
        "
        group app: stop=1
          stop a1 web.app[0]: alloc not needed since job is stopped
        ",
    );
}

/// A random system or sysbatch job over nodes in random states, some of them candidates, with
/// random allocations (node, old version?, client status, server stopped?, drainer mark).
fn system_world_strategy() -> impl Strategy<Value = World> {
    let states =
        [NodeState::Ready, NodeState::Ineligible, NodeState::Draining, NodeState::Down, NodeState::Disconnected];
    (
        any::<bool>(),
        0usize..3,
        0i32..3,
        prop::collection::vec((0usize..states.len(), any::<bool>()), 1..6),
        prop::collection::vec(
            (0usize..7, any::<bool>(), 0usize..CLIENT.len(), prop::bool::weighted(0.2), any::<bool>()),
            0..10,
        ),
        0usize..12,
    )
        .prop_map(move |(is_sysbatch, change, max_parallel, nodes, specs, stopped)| {
            let kind = if is_sysbatch { JobType::Sysbatch } else { JobType::System };
            let mut v0 = job(kind, &[("app", 1)]);
            group_mut(&mut v0).update =
                Some(stead_model::UpdateStrategy { max_parallel: Some(max_parallel), ..Default::default() });
            let v1 = next_version(&v0, |j| match change {
                0 => {}
                1 => group_mut(j).services.push(Default::default()),
                _ => _ = task_mut(j).config.insert("image".into(), "v2".into()),
            });
            let ids: Vec<String> = (0..7).map(|i| format!("n{i}")).collect();
            let node_list: Vec<(&str, NodeState)> =
                nodes.iter().enumerate().map(|(i, (s, _))| (ids[i].as_str(), states[*s])).collect();
            let candidates: Vec<&str> =
                nodes.iter().enumerate().filter(|(_, (_, c))| *c).map(|(i, _)| ids[i].as_str()).collect();
            let mut w = system_world(&v1, &node_list, &candidates);
            for (node, old, client, stopped, mark) in specs {
                // Node indexes past the list are vanished nodes.
                let a = w.alloc(if old { &v0 } else { &v1 }, 0, &ids[node]);
                a.client_status = CLIENT[client].clone();
                if stopped {
                    a.desired_status = AllocDesiredStatus::Stop;
                }
                a.desired_transition.migrate = Some(mark);
            }
            match stopped {
                0 => w.job = None,
                1 => w.job.as_mut().unwrap().stop = true,
                _ => {}
            }
            w
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn system_reconciler_runs_at_most_one_alloc_per_node_only_on_candidates_and_is_idempotent(
        mut w in system_world_strategy()
    ) {
        let first = w.reconcile();
        w.apply(&first);
        let live = w.live_names();
        let mut unique = live.clone();
        unique.dedup();
        prop_assert_eq!(&live, &unique, "two live allocations on one node:\n{}", render(&first));
        let candidates = w.candidates.clone().unwrap_or_default();
        let wanted = w.job.as_ref().is_some_and(|j| !j.stop);
        for a in w.allocs.iter().filter(|a| a.desired_status == AllocDesiredStatus::Run && !a.client_status.is_terminal()) {
            prop_assert!(wanted, "live alloc {} of a stopped job", a.id);
            prop_assert!(candidates.contains(&a.node_id), "live alloc {} on non-candidate {}", a.id, a.node_id);
        }
        let second = w.reconcile();
        prop_assert!(second.changes_nothing(), "first:\n{}second:\n{}", render(&first), render(&second));
    }
}
