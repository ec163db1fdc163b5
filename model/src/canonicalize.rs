//! `Job::canonicalize`: fill in every default the way Nomad canonicalizes a submitted job, so
//! the stored job says exactly what will run. Idempotent: a field already set is never touched.

use super::common::Extra;
use super::duration::Nanos;
use super::group::{EphemeralDisk, ScalingPolicy, TaskGroup};
use super::job::{JOB_PRIORITY_DEFAULT, Job, JobType};
use super::periodic::PayloadRequirement;
use super::policy::{
    DelayFunction, DisconnectStrategy, MigrateStrategy, ReschedulePolicy, RestartMode, RestartPolicy, UpdateStrategy,
};
use super::resources::Resources;
use super::service::{CheckRestart, Service};
use super::task::{LogConfig, Task, Template, TemplateChangeMode};

pub const DEFAULT_REGION: &str = "global";
pub use super::namespace::DEFAULT_NAMESPACE;
pub const DEFAULT_NODE_POOL: &str = "default";
pub const DEFAULT_DATACENTER: &str = "*";
pub const DEFAULT_CPU_MHZ: i32 = 100;
pub const DEFAULT_MEMORY_MB: i32 = 300;
pub const DEFAULT_EPHEMERAL_DISK_MB: i32 = 300;
pub const DEFAULT_LOG_MAX_FILES: i32 = 10;
pub const DEFAULT_LOG_MAX_FILE_SIZE_MB: i32 = 10;
pub const DEFAULT_KILL_TIMEOUT: Nanos = Nanos::from_secs(5);
pub const DEFAULT_TEMPLATE_SPLAY: Nanos = Nanos::from_secs(5);
pub const DEFAULT_AFFINITY_WEIGHT: i32 = 50;
pub const DEFAULT_SPREAD_WEIGHT: i32 = 50;

/// Restart defaults by job type: service/system restart twice in 30 minutes, batch/sysbatch
/// three times a day; both wait 15 s and then fail.
pub fn default_restart_policy(job_type: &JobType) -> RestartPolicy {
    let (attempts, interval) = match job_type {
        JobType::Batch | JobType::Sysbatch => (3, Nanos::from_hours(24)),
        _ => (2, Nanos::from_mins(30)),
    };
    RestartPolicy {
        attempts: Some(attempts),
        interval: Some(interval),
        delay: Some(Nanos::from_secs(15)),
        mode: Some(RestartMode::Fail),
        render_templates: Some(false),
        extra: Extra::new(),
    }
}

/// Reschedule defaults by job type: service jobs reschedule forever with exponential backoff
/// from 30 s to 1 h; batch jobs once a day after 5 s; system and sysbatch jobs never.
pub fn default_reschedule_policy(job_type: &JobType) -> ReschedulePolicy {
    match job_type {
        JobType::Batch => ReschedulePolicy {
            attempts: Some(1),
            interval: Some(Nanos::from_hours(24)),
            delay: Some(Nanos::from_secs(5)),
            delay_function: Some(DelayFunction::Constant),
            max_delay: Some(Nanos::ZERO),
            unlimited: Some(false),
            extra: Extra::new(),
        },
        JobType::System | JobType::Sysbatch => ReschedulePolicy {
            attempts: Some(0),
            interval: Some(Nanos::ZERO),
            delay: Some(Nanos::ZERO),
            delay_function: Some(DelayFunction::Other(String::new())),
            max_delay: Some(Nanos::ZERO),
            unlimited: Some(false),
            extra: Extra::new(),
        },
        _ => ReschedulePolicy {
            attempts: Some(0),
            interval: Some(Nanos::ZERO),
            delay: Some(Nanos::from_secs(30)),
            delay_function: Some(DelayFunction::Exponential),
            max_delay: Some(Nanos::from_hours(1)),
            unlimited: Some(true),
            extra: Extra::new(),
        },
    }
}

fn set_if_empty(field: &mut String, value: &str) {
    if field.is_empty() {
        *field = value.to_owned();
    }
}

impl Job {
    /// Apply Nomad's defaults (see `shared/reference/nomad.md` §1). Job-level `update`,
    /// `migrate` and `reschedule` are merged into each group (group fields win), and group
    /// `restart` into each task. Calling it twice changes nothing the second time.
    pub fn canonicalize(&mut self) {
        if self.name.is_empty() {
            self.name = self.id.0.clone();
        }
        set_if_empty(&mut self.region, DEFAULT_REGION);
        set_if_empty(&mut self.namespace, DEFAULT_NAMESPACE);
        set_if_empty(&mut self.node_pool, DEFAULT_NODE_POOL);
        if self.job_type.as_ref().is_none_or(|t| t.is_unset()) {
            self.job_type = Some(JobType::Service);
        }
        let job_type = self.kind();
        if self.priority == 0 {
            self.priority = JOB_PRIORITY_DEFAULT;
        }
        if self.datacenters.is_empty() {
            self.datacenters = vec![DEFAULT_DATACENTER.to_owned()];
        }
        canonicalize_placement(&mut self.affinities, &mut self.spreads);

        match &mut self.update {
            Some(update) => fill_update(update),
            None if job_type == JobType::Service => self.update = Some(UpdateStrategy::defaults()),
            None => {}
        }
        if let Some(periodic) = &mut self.periodic {
            periodic.enabled.get_or_insert(true);
            set_if_empty(&mut periodic.spec_type, "cron");
            periodic.prohibit_overlap.get_or_insert(false);
            set_if_empty(&mut periodic.time_zone, "UTC");
        }
        if let Some(param) = &mut self.parameterized_job
            && param.payload.as_ref().is_none_or(|p| p.is_unset())
        {
            param.payload = Some(PayloadRequirement::Optional);
        }

        let job_update = self.update.clone();
        let job_migrate = self.migrate.clone();
        let job_reschedule = self.reschedule.clone();
        let job_name = self.name.clone();
        for group in &mut self.task_groups {
            canonicalize_group(
                group,
                &job_type,
                &job_name,
                job_update.as_ref(),
                job_migrate.as_ref(),
                job_reschedule.as_ref(),
            );
        }
    }
}

fn canonicalize_placement(affinities: &mut [super::placement::Affinity], spreads: &mut [super::placement::Spread]) {
    for affinity in affinities {
        affinity.weight.get_or_insert(DEFAULT_AFFINITY_WEIGHT);
    }
    for spread in spreads {
        spread.weight.get_or_insert(DEFAULT_SPREAD_WEIGHT);
    }
}

fn fill_update(update: &mut UpdateStrategy) {
    let mut filled = UpdateStrategy::defaults();
    filled.merge(update);
    *update = filled;
}

fn canonicalize_group(
    group: &mut TaskGroup,
    job_type: &JobType,
    job_name: &str,
    job_update: Option<&UpdateStrategy>,
    job_migrate: Option<&MigrateStrategy>,
    job_reschedule: Option<&ReschedulePolicy>,
) {
    if group.count.is_none() {
        let from_scaling = group.scaling.as_ref().and_then(|s| s.min).and_then(|m| i32::try_from(m).ok());
        group.count = Some(from_scaling.unwrap_or(1));
    }
    let count = group.count.unwrap_or(1);
    if let Some(scaling) = &mut group.scaling {
        canonicalize_scaling(scaling, count);
    }
    canonicalize_placement(&mut group.affinities, &mut group.spreads);

    let disk = group.ephemeral_disk.get_or_insert_with(EphemeralDisk::default);
    disk.sticky.get_or_insert(false);
    disk.migrate.get_or_insert(false);
    disk.size_mb.get_or_insert(DEFAULT_EPHEMERAL_DISK_MB);

    // Update: job-level values, overridden by the group's; an empty job block is not inherited.
    group.update = match (job_update, group.update.take()) {
        (Some(job), Some(own)) => {
            let mut merged = job.clone();
            merged.merge(&own);
            Some(merged)
        }
        (Some(job), None) if !job.is_empty() => Some(job.clone()),
        (_, own) => own,
    };
    if let Some(update) = &mut group.update {
        fill_update(update);
    }

    // Migrate: only service jobs get a default.
    let mut migrate = job_migrate.cloned();
    if let Some(own) = group.migrate.take() {
        match &mut migrate {
            Some(m) => m.merge(&own),
            None => migrate = Some(own),
        }
    }
    if *job_type == JobType::Service {
        let mut filled = MigrateStrategy::defaults();
        if let Some(m) = &migrate {
            filled.merge(m);
        }
        migrate = Some(filled);
    }
    group.migrate = migrate;

    // Reschedule: defaults by type ← job block ← group block.
    let mut reschedule = default_reschedule_policy(job_type);
    if let Some(job) = job_reschedule {
        reschedule.merge(job);
    }
    if let Some(own) = &group.reschedule_policy {
        reschedule.merge(own);
    }
    group.reschedule_policy = Some(reschedule);

    // Restart: defaults by type ← group block; tasks then merge over the group's.
    let mut restart = default_restart_policy(job_type);
    if let Some(own) = &group.restart_policy {
        restart.merge(own);
    }
    group.restart_policy = Some(restart.clone());

    if let Some(disconnect) = &mut group.disconnect {
        let mut filled = DisconnectStrategy {
            replace: Some(true),
            reconcile: Some("best_score".to_owned()),
            ..DisconnectStrategy::default()
        };
        filled.merge(disconnect);
        *disconnect = filled;
    }
    for network in &mut group.networks {
        set_if_empty(&mut network.mode, "host");
    }
    for (name, volume) in &mut group.volumes {
        set_if_empty(&mut volume.name, name);
    }
    let group_name = group.name.clone();
    for service in &mut group.services {
        canonicalize_service(service, &format!("{job_name}-{group_name}"));
    }
    for task in &mut group.tasks {
        canonicalize_task(task, &restart, job_name, &group_name);
    }
}

fn canonicalize_scaling(scaling: &mut ScalingPolicy, count: i32) {
    scaling.min.get_or_insert(i64::from(count));
    scaling.enabled.get_or_insert(false);
    set_if_empty(&mut scaling.policy_type, "horizontal");
}

fn canonicalize_task(task: &mut Task, group_restart: &RestartPolicy, job_name: &str, group_name: &str) {
    let mut restart = group_restart.clone();
    if let Some(own) = &task.restart_policy {
        restart.merge(own);
    }
    task.restart_policy = Some(restart);

    let resources = task.resources.get_or_insert_with(Resources::default);
    canonicalize_resources(resources);

    task.kill_timeout.get_or_insert(DEFAULT_KILL_TIMEOUT);
    let logs = task.log_config.get_or_insert_with(LogConfig::default);
    logs.max_files.get_or_insert(DEFAULT_LOG_MAX_FILES);
    logs.max_file_size_mb.get_or_insert(DEFAULT_LOG_MAX_FILE_SIZE_MB);
    logs.disabled.get_or_insert(false);

    canonicalize_placement(&mut task.affinities, &mut []);
    // An empty `lifecycle {}` means no lifecycle at all, as in Nomad.
    if task.lifecycle.as_ref().is_some_and(|l| l.hook.is_unset() && !l.sidecar && l.extra.is_empty()) {
        task.lifecycle = None;
    }
    for template in &mut task.templates {
        canonicalize_template(template);
    }
    for artifact in &mut task.artifacts {
        set_if_empty(&mut artifact.getter_mode, "any");
        set_if_empty(&mut artifact.relative_dest, "local/");
    }
    for mount in &mut task.volume_mounts {
        set_if_empty(&mut mount.propagation_mode, "private");
    }
    let task_name = task.name.clone();
    for service in &mut task.services {
        canonicalize_service(service, &format!("{job_name}-{group_name}-{task_name}"));
    }
}

fn canonicalize_resources(resources: &mut Resources) {
    // CPU gets its default only when cores are not asked for: the two are exclusive.
    match resources.cores {
        Some(cores) if cores > 0 => {
            resources.cpu.get_or_insert(0);
        }
        _ => {
            resources.cores.get_or_insert(0);
            resources.cpu.get_or_insert(DEFAULT_CPU_MHZ);
        }
    }
    resources.memory_mb.get_or_insert(DEFAULT_MEMORY_MB);
    resources.memory_max_mb.get_or_insert(0);
    for device in &mut resources.devices {
        device.count.get_or_insert(1);
    }
    for network in &mut resources.networks {
        set_if_empty(&mut network.mode, "host");
    }
}

fn canonicalize_template(template: &mut Template) {
    if template.change_mode.as_ref().is_none_or(|m| m.is_unset()) {
        template.change_mode = Some(TemplateChangeMode::Restart);
    }
    if template.change_mode == Some(TemplateChangeMode::Signal) {
        template.change_signal = template.change_signal.to_uppercase();
    }
    if let Some(script) = &mut template.change_script {
        script.timeout.get_or_insert(Nanos::from_secs(5));
    }
    template.splay.get_or_insert(DEFAULT_TEMPLATE_SPLAY);
    set_if_empty(&mut template.perms, "0644");
    set_if_empty(&mut template.left_delim, "{{");
    set_if_empty(&mut template.right_delim, "}}");
}

fn canonicalize_service(service: &mut Service, default_name: &str) {
    set_if_empty(&mut service.name, default_name);
    set_if_empty(&mut service.address_mode, "auto");
    set_if_empty(&mut service.on_update, "require_healthy");
    set_if_empty(&mut service.provider, "consul");
    if let Some(restart) = &mut service.check_restart {
        canonicalize_check_restart(restart);
    }
    let service_restart = service.check_restart.clone();
    let service_on_update = service.on_update.clone();
    let default_check_name = format!("service: \"{}\" check", service.name);
    for check in &mut service.checks {
        set_if_empty(&mut check.name, &default_check_name);
        set_if_empty(&mut check.on_update, &service_on_update);
        // A check inherits the service's check_restart; its own fields win where given.
        check.check_restart = match (&service_restart, check.check_restart.take()) {
            (Some(svc), Some(own)) => Some(CheckRestart {
                limit: if own.limit != 0 { own.limit } else { svc.limit },
                grace: own.grace.or(svc.grace),
                ignore_warnings: own.ignore_warnings || svc.ignore_warnings,
                extra: own.extra,
            }),
            (Some(svc), None) => Some(svc.clone()),
            (None, own) => own,
        };
        if let Some(restart) = &mut check.check_restart {
            canonicalize_check_restart(restart);
        }
    }
}

fn canonicalize_check_restart(restart: &mut CheckRestart) {
    restart.grace.get_or_insert(Nanos::from_secs(1));
}
