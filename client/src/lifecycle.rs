//! The order of an allocation's tasks, purely (job spec §1.12, `lifecycle`): which task
//! may start now and which must be killed now, as functions of the tasks' roles and
//! states. The alloc runner asks after every task state change.
//!
//! Start order:
//!
//! * prestart tasks start at once; an ephemeral one (`sidecar = false`) must finish
//!   successfully, a sidecar must have started, before the main tasks start;
//! * poststart tasks start once every main task has started;
//! * poststop tasks start once every other task is dead (the allocation stopped, failed
//!   or completed).
//!
//! Stop order, once the allocation stops (asked to, a task failed, the leader died, or
//! only sidecars are left): the leader, then the other tasks that are not sidecars, then
//! the sidecars, each step once the previous one is dead; then the poststop tasks run. A
//! stop that must not wait (the servers forgot the allocation, the client shuts down
//! with its tasks) kills everything at once, poststop tasks included.
//!
//! Every gate is monotone: a task that has started once may always start again (its
//! restarts are the restart policy's business), so gates computed from the states a
//! restarted client restores agree with the ones the previous client opened.

use std::collections::BTreeMap;

use stead_model::{LifecycleHook, Task, TaskState, TaskStateKind};

/// Where a task sits in the allocation's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Prestart { sidecar: bool },
    Main,
    Poststart { sidecar: bool },
    Poststop,
}

impl Role {
    pub fn of(task: &Task) -> Role {
        let Some(lifecycle) = task.lifecycle.as_ref() else { return Role::Main };
        let sidecar = lifecycle.sidecar;
        match lifecycle.hook {
            LifecycleHook::Prestart => Role::Prestart { sidecar },
            LifecycleHook::Poststart => Role::Poststart { sidecar },
            LifecycleHook::Poststop => Role::Poststop,
            _ => Role::Main,
        }
    }

    pub fn sidecar(self) -> bool {
        matches!(self, Role::Prestart { sidecar: true } | Role::Poststart { sidecar: true })
    }

    /// A hook task that is not a sidecar: it runs once, and a successful exit is its end
    /// (not restarted, even in a service job).
    pub fn ephemeral(self) -> bool {
        self != Role::Main && !self.sidecar()
    }
}

/// One task as the ordering sees it.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub role: Role,
    pub leader: bool,
    pub state: &'a TaskState,
}

impl Member<'_> {
    fn dead(&self) -> bool {
        self.state.state == TaskStateKind::Dead
    }

    /// Has run at least once (a restarting task has, though it is pending again).
    fn started(&self) -> bool {
        self.state.started_at.is_some()
    }
}

/// How the allocation is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopping {
    No,
    /// In order, then the poststop tasks run.
    InOrder,
    /// Everything at once, poststop tasks included.
    Now,
}

/// Whether task `name` may start now.
pub fn may_start(members: &BTreeMap<String, Member<'_>>, name: &str, stopping: Stopping) -> bool {
    let Some(me) = members.get(name) else { return false };
    if me.started() {
        return true;
    }
    let others = || members.iter().filter(move |(n, _)| n.as_str() != name).map(|(_, m)| m);
    match me.role {
        Role::Poststop => stopping != Stopping::Now && others().all(|m| m.role == Role::Poststop || m.dead()),
        _ if stopping != Stopping::No => false,
        Role::Prestart { .. } => true,
        Role::Main => others().all(|m| match m.role {
            Role::Prestart { sidecar: false } => m.dead() && !m.state.failed,
            Role::Prestart { sidecar: true } => m.started(),
            _ => true,
        }),
        Role::Poststart { .. } => {
            let mut mains = others().filter(|m| m.role == Role::Main).peekable();
            mains.peek().is_some() && mains.all(|m| m.started())
        }
    }
}

/// Whether the allocation should stop by itself because its main work is over: every
/// main task is dead and every task still alive (poststop aside) is a sidecar, which
/// would otherwise run forever.
pub fn only_sidecars_left(members: &BTreeMap<String, Member<'_>>) -> bool {
    let mut mains = members.values().filter(|m| m.role == Role::Main).peekable();
    mains.peek().is_some()
        && mains.all(|m| m.dead())
        && members.values().filter(|m| m.role != Role::Poststop && !m.dead()).all(|m| m.role.sidecar())
}

/// The live tasks to kill now, given how the allocation stops.
pub fn to_kill<'m>(members: &'m BTreeMap<String, Member<'_>>, stopping: Stopping) -> Vec<&'m str> {
    let live = || members.iter().filter(|(_, m)| !m.dead());
    let pick = |f: &dyn Fn(&Member<'_>) -> bool| -> Vec<&'m str> {
        live().filter(|(_, m)| f(m)).map(|(n, _)| n.as_str()).collect()
    };
    match stopping {
        Stopping::No => Vec::new(),
        Stopping::Now => pick(&|_| true),
        Stopping::InOrder => {
            let steps: [&dyn Fn(&Member<'_>) -> bool; 3] =
                [&|m| m.leader && m.role != Role::Poststop, &|m| !m.role.sidecar() && m.role != Role::Poststop, &|m| {
                    m.role.sidecar()
                }];
            steps.iter().map(|step| pick(*step)).find(|names| !names.is_empty()).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use stead_model::{Lifecycle, TaskStateKind::*};

    use super::*;

    fn state(kind: TaskStateKind, started: bool, failed: bool) -> TaskState {
        TaskState {
            state: kind,
            started_at: started.then(|| "2026-01-01T00:00:00Z".to_owned()),
            failed,
            ..Default::default()
        }
    }

    struct Group(Vec<(&'static str, Role, bool, TaskState)>);

    impl Group {
        fn new() -> Self {
            Group(Vec::new())
        }
        fn with(mut self, name: &'static str, role: Role, s: TaskState) -> Self {
            self.0.push((name, role, false, s));
            self
        }
        fn leader(mut self, name: &'static str, s: TaskState) -> Self {
            self.0.push((name, Role::Main, true, s));
            self
        }
        fn members(&self) -> BTreeMap<String, Member<'_>> {
            self.0
                .iter()
                .map(|(n, role, leader, s)| ((*n).to_owned(), Member { role: *role, leader: *leader, state: s }))
                .collect()
        }
        fn may_start(&self, name: &str) -> bool {
            may_start(&self.members(), name, Stopping::No)
        }
    }

    const INIT: Role = Role::Prestart { sidecar: false };
    const PROXY: Role = Role::Prestart { sidecar: true };
    const AFTER: Role = Role::Poststart { sidecar: false };
    const SHIPPER: Role = Role::Poststart { sidecar: true };

    #[test]
    fn roles_come_from_the_lifecycle_block() {
        let task = |hook: LifecycleHook, sidecar| Task {
            lifecycle: Some(Lifecycle { hook, sidecar, ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(Role::of(&Task::default()), Role::Main);
        assert_eq!(Role::of(&task(LifecycleHook::Prestart, false)), INIT);
        assert_eq!(Role::of(&task(LifecycleHook::Prestart, true)), PROXY);
        assert_eq!(Role::of(&task(LifecycleHook::Poststart, true)), SHIPPER);
        assert_eq!(Role::of(&task(LifecycleHook::Poststop, false)), Role::Poststop);
        assert!(INIT.ephemeral() && AFTER.ephemeral() && Role::Poststop.ephemeral());
        assert!(!PROXY.ephemeral() && !Role::Main.ephemeral() && PROXY.sidecar());
    }

    #[test]
    fn main_tasks_wait_for_prestart_tasks_to_succeed_and_sidecars_to_start() {
        let pending = || state(Pending, false, false);
        let g = Group::new().with("init", INIT, pending()).with("proxy", PROXY, pending()).with(
            "web",
            Role::Main,
            pending(),
        );
        assert!(g.may_start("init") && g.may_start("proxy"), "prestart tasks start at once");
        assert!(!g.may_start("web"));

        let g = Group::new()
            .with("init", INIT, state(Running, true, false))
            .with("proxy", PROXY, state(Running, true, false))
            .with("web", Role::Main, pending());
        assert!(!g.may_start("web"), "the init task is still running");

        let g = Group::new()
            .with("init", INIT, state(Dead, true, false))
            .with("proxy", PROXY, state(Pending, false, false))
            .with("web", Role::Main, pending());
        assert!(!g.may_start("web"), "the sidecar has not started");

        let g = Group::new()
            .with("init", INIT, state(Dead, true, false))
            .with("proxy", PROXY, state(Pending, true, false))
            .with("web", Role::Main, pending());
        assert!(g.may_start("web"), "a sidecar restarting after it ran once counts as started");

        let g = Group::new().with("init", INIT, state(Dead, true, true)).with("web", Role::Main, pending());
        assert!(!g.may_start("web"), "a failed init task never lets the main task start");
    }

    #[test]
    fn poststart_waits_for_every_main_task_to_start() {
        let g = Group::new()
            .with("a", Role::Main, state(Running, true, false))
            .with("b", Role::Main, state(Pending, false, false))
            .with("after", AFTER, state(Pending, false, false));
        assert!(!g.may_start("after"));
        let g = Group::new()
            .with("a", Role::Main, state(Running, true, false))
            .with("b", Role::Main, state(Dead, true, false))
            .with("after", AFTER, state(Pending, false, false));
        assert!(g.may_start("after"), "a main task that already finished has started");
    }

    #[test]
    fn poststop_waits_until_every_other_task_is_dead_and_runs_even_after_a_failure() {
        let g = Group::new()
            .with("web", Role::Main, state(Dead, true, true))
            .with("proxy", PROXY, state(Running, true, false))
            .with("cleanup", Role::Poststop, state(Pending, false, false));
        assert!(!g.may_start("cleanup"));
        let g = Group::new()
            .with("web", Role::Main, state(Dead, true, true))
            .with("proxy", PROXY, state(Dead, true, false))
            .with("cleanup", Role::Poststop, state(Pending, false, false));
        let members = g.members();
        assert!(may_start(&members, "cleanup", Stopping::InOrder));
        assert!(!may_start(&members, "cleanup", Stopping::Now), "a stop that cannot wait skips poststop");
    }

    #[test]
    fn a_stopping_allocation_starts_nothing_new_but_what_ran_may_run_again() {
        let g = Group::new().with("init", INIT, state(Pending, false, false)).with(
            "web",
            Role::Main,
            state(Pending, true, false),
        );
        let members = g.members();
        assert!(!may_start(&members, "init", Stopping::InOrder));
        assert!(may_start(&members, "web", Stopping::No));
    }

    #[test]
    fn stopping_in_order_kills_the_leader_then_other_tasks_then_sidecars() {
        let run = || state(Running, true, false);
        let g = Group::new().leader("lead", run()).with("web", Role::Main, run()).with("proxy", PROXY, run()).with(
            "cleanup",
            Role::Poststop,
            state(Pending, false, false),
        );
        assert_eq!(to_kill(&g.members(), Stopping::InOrder), vec!["lead"]);
        assert_eq!(to_kill(&g.members(), Stopping::No), Vec::<&str>::new());
        assert_eq!(to_kill(&g.members(), Stopping::Now), vec!["cleanup", "lead", "proxy", "web"]);

        let g = Group::new()
            .leader("lead", state(Dead, true, false))
            .with("web", Role::Main, run())
            .with("after", AFTER, run())
            .with("proxy", PROXY, run());
        assert_eq!(to_kill(&g.members(), Stopping::InOrder), vec!["after", "web"]);

        let g = Group::new().with("web", Role::Main, state(Dead, true, false)).with("proxy", PROXY, run()).with(
            "cleanup",
            Role::Poststop,
            state(Pending, false, false),
        );
        assert_eq!(to_kill(&g.members(), Stopping::InOrder), vec!["proxy"]);
    }

    #[test]
    fn an_allocation_with_only_sidecars_left_stops_by_itself() {
        let g = Group::new()
            .with("web", Role::Main, state(Dead, true, false))
            .with("proxy", PROXY, state(Running, true, false))
            .with("cleanup", Role::Poststop, state(Pending, false, false));
        assert!(only_sidecars_left(&g.members()));
        let g = Group::new()
            .with("web", Role::Main, state(Dead, true, false))
            .with("after", AFTER, state(Running, true, false))
            .with("proxy", PROXY, state(Running, true, false));
        assert!(!only_sidecars_left(&g.members()), "an ephemeral poststart task is still working");
        let g = Group::new().with("web", Role::Main, state(Running, true, false)).with(
            "proxy",
            PROXY,
            state(Running, true, false),
        );
        assert!(!only_sidecars_left(&g.members()));
    }
}
