//! In-place or destructive: how an allocation of an older job version catches up.
//!
//! The rule (ours, in the spirit of Nomad's `tasksUpdated`): a change is **destructive** —
//! stop the allocation and place a new one with the same name — when the running tasks
//! would have to start again to see it, or when it may change which node fits:
//!
//! * per task: added, removed or renamed tasks; `driver`, `user`, `config`, `env`, `meta`,
//!   `resources`, `artifacts`, `templates`, `vault`, `consul`, `volume_mounts`, `lifecycle`,
//!   `logs`, `dispatch_payload`, `identity`/`identities`, `kill_signal`, CSI plugin config,
//!   task `constraints`;
//! * per group: `network`, `ephemeral_disk`, `volume`, `consul`, `constraints`, `meta`;
//! * per job: `datacenters`, `node_pool`, `constraints`, `meta` (the reconciler does not see
//!   nodes, so any change that could make the current node infeasible moves the allocation).
//!   Meta is destructive at every level, as in Nomad: it reaches the tasks as
//!   `NOMAD_META_*` environment variables, which only a new start can refresh.
//!
//! Everything else is an **in-place** update (the allocation keeps running and takes the new
//! job version): `services` and checks, `update`, `migrate`,
//! `restart`, `reschedule`, `disconnect`, `scaling`, `count`, `shutdown_delay`,
//! `kill_timeout`, `affinities`, `spreads`, `priority`. Affinities and spreads only rank
//! future placements, so they never move a running allocation.
//!
use stead_model::{Job, Task, TaskGroup};

/// How an existing allocation relates to the job version the reconciler works toward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateKind {
    /// Same job version: nothing to do.
    Ignore,
    /// Newer version, only in-place fields changed: the allocation takes the new version.
    InPlace,
    /// A destructive field changed: stop and place anew. The text names the first field found
    /// (`task "web" config`), for annotations and tests.
    Destructive(String),
}

/// Decide how an allocation running `old_job` (version `old_version`; the job itself may be
/// missing from list stubs) catches up with group `group` of `new_job`.
pub fn decide_update(old_job: Option<&Job>, old_version: u64, new_job: &Job, group: &TaskGroup) -> UpdateKind {
    let Some(old_job) = old_job else {
        // Without the old job there is nothing to compare: only the version number says
        // whether anything changed, and a change must be assumed destructive.
        return if old_version == new_job.version {
            UpdateKind::Ignore
        } else {
            UpdateKind::Destructive("job of the allocation unknown".to_owned())
        };
    };
    if old_version == new_job.version {
        return UpdateKind::Ignore;
    }
    let Some(old_group) = old_job.task_group(&group.name) else {
        return UpdateKind::Destructive(format!("group \"{}\" is new", group.name));
    };
    match destructive_change(old_job, old_group, new_job, group) {
        Some(field) => UpdateKind::Destructive(field),
        None => UpdateKind::InPlace,
    }
}

/// The first destructive difference, by field path; `None` when every difference is in place.
fn destructive_change(old_job: &Job, old: &TaskGroup, new_job: &Job, new: &TaskGroup) -> Option<String> {
    let job_fields: [(&str, bool); 4] = [
        ("job datacenters", old_job.datacenters != new_job.datacenters),
        ("job node_pool", old_job.node_pool != new_job.node_pool),
        ("job constraints", old_job.constraints != new_job.constraints),
        ("job meta", old_job.meta != new_job.meta),
    ];
    let group_fields: [(&str, bool); 6] = [
        ("network", old.networks != new.networks),
        ("ephemeral_disk", old.ephemeral_disk != new.ephemeral_disk),
        ("volume", old.volumes != new.volumes),
        ("consul", old.consul != new.consul),
        ("constraints", old.constraints != new.constraints),
        ("meta", old.meta != new.meta),
    ];
    if let Some((name, _)) = job_fields.iter().find(|(_, changed)| *changed) {
        return Some((*name).to_owned());
    }
    if let Some((name, _)) = group_fields.iter().find(|(_, changed)| *changed) {
        return Some(format!("group \"{}\" {name}", new.name));
    }
    if old.tasks.len() != new.tasks.len() {
        return Some(format!("group \"{}\" tasks added or removed", new.name));
    }
    for new_task in &new.tasks {
        let Some(old_task) = old.tasks.iter().find(|t| t.name == new_task.name) else {
            return Some(format!("task \"{}\" is new", new_task.name));
        };
        if let Some(field) = destructive_task_change(old_task, new_task) {
            return Some(format!("task \"{}\" {field}", new_task.name));
        }
    }
    None
}

fn destructive_task_change(old: &Task, new: &Task) -> Option<&'static str> {
    let fields: [(&'static str, bool); 18] = [
        ("driver", old.driver != new.driver),
        ("meta", old.meta != new.meta),
        ("user", old.user != new.user),
        ("config", old.config != new.config),
        ("env", old.env != new.env),
        ("resources", old.resources != new.resources),
        ("artifacts", old.artifacts != new.artifacts),
        ("templates", old.templates != new.templates),
        ("vault", old.vault != new.vault),
        ("consul", old.consul != new.consul),
        ("volume_mounts", old.volume_mounts != new.volume_mounts),
        ("lifecycle", old.lifecycle != new.lifecycle),
        ("logs", old.log_config != new.log_config),
        ("dispatch_payload", old.dispatch_payload != new.dispatch_payload),
        ("identity", old.identity != new.identity || old.identities != new.identities),
        ("kill_signal", old.kill_signal != new.kill_signal),
        ("constraints", old.constraints != new.constraints),
        ("csi_plugin", old.csi_plugin_config != new.csi_plugin_config),
    ];
    fields.iter().find(|(_, changed)| *changed).map(|(name, _)| *name)
}
