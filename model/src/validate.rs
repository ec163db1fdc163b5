//! `Job::validate`: every rule a job must satisfy before it is stored, checked in one pass so
//! the user sees all problems at once. Meant for a canonicalized job, but safe on any job:
//! fields that are not given are not reported unless they are required.

use std::collections::{BTreeMap, BTreeSet};

use super::duration::Nanos;
use super::group::{TaskGroup, VOLUME_TYPES};
use super::job::{JOB_PRIORITY_MAX, JOB_PRIORITY_MIN, Job, JobType};
use super::periodic::PayloadRequirement;
use super::placement::{AFFINITY_OPERANDS, Affinity, CONSTRAINT_OPERANDS, Constraint, Spread};
use super::policy::{
    DISCONNECT_RECONCILE_MODES, DelayFunction, HealthCheckMode, MigrateStrategy, ReschedulePolicy, RestartMode,
    RestartPolicy, UpdateStrategy,
};
use super::resources::{NetworkResource, PORT_MAX, Resources};
use super::service::{CHECK_TYPES, ON_UPDATE_MODES, SERVICE_ADDRESS_MODES, SERVICE_PROVIDERS, Service};
use super::task::{ARTIFACT_MODES, LifecycleHook, PROPAGATION_MODES, Task, Template, TemplateChangeMode};

/// One broken rule: where (a path in the API JSON, e.g. `TaskGroups[0].Tasks[1].Lifecycle.Hook`)
/// and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

impl std::error::Error for ValidationError {}

pub const CPU_MHZ_MIN: i32 = 1;
pub const MEMORY_MB_MIN: i32 = 10;
pub const EPHEMERAL_DISK_MB_MIN: i32 = 10;
/// Nomad refuses reschedule delays shorter than this.
pub const RESCHEDULE_DELAY_MIN: Nanos = Nanos::from_secs(5);
/// Service checks may not run more often, or time out sooner, than this.
pub const CHECK_INTERVAL_MIN: Nanos = Nanos::from_secs(1);

/// Collects errors with the path of the value being checked.
struct Checker {
    errors: Vec<ValidationError>,
}

impl Checker {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError { path: path.into(), message: message.into() });
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") }
}

fn one_of(values: &[&str]) -> String {
    values.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ")
}

impl Job {
    /// Check the job; `Err` carries every problem found, in document order.
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        let mut c = Checker { errors: Vec::new() };
        check_job(&mut c, self);
        if c.errors.is_empty() { Ok(()) } else { Err(c.errors) }
    }
}

fn check_job(c: &mut Checker, job: &Job) {
    let id = job.id.as_str();
    if id.is_empty() {
        c.err("ID", "missing job ID");
    } else if id.contains(' ') || id.contains('\0') {
        c.err("ID", "job ID must not contain spaces or null characters");
    }
    if job.name.is_empty() && id.is_empty() {
        c.err("Name", "missing job name");
    } else if job.name.contains('\0') {
        c.err("Name", "job name must not contain null characters");
    }
    let job_type = job.kind();
    if let Some(t) = &job.job_type
        && !t.is_unset()
        && !t.is_known()
    {
        c.err("Type", format!("invalid job type \"{t}\": expected one of {}", one_of(JobType::KNOWN)));
    }
    if job.priority != 0 && !(JOB_PRIORITY_MIN..=JOB_PRIORITY_MAX).contains(&job.priority) {
        c.err(
            "Priority",
            format!("job priority {} must be between {JOB_PRIORITY_MIN} and {JOB_PRIORITY_MAX}", job.priority),
        );
    }
    for (i, dc) in job.datacenters.iter().enumerate() {
        if dc.is_empty() {
            c.err(format!("Datacenters[{i}]"), "datacenter name must not be empty");
        }
    }
    if matches!(job_type, JobType::System | JobType::Sysbatch) {
        if !job.affinities.is_empty() {
            c.err("Affinities", format!("{job_type} jobs may not have affinities"));
        }
        if !job.spreads.is_empty() {
            c.err("Spreads", format!("{job_type} jobs may not have spreads"));
        }
    }
    check_constraints(c, "", &job.constraints, true);
    check_affinities(c, "", &job.affinities);
    check_spreads(c, "", &job.spreads);
    if let Some(update) = &job.update {
        if matches!(job_type, JobType::Service | JobType::System) {
            check_update(c, "Update", update);
        } else if job_type.is_known() {
            c.err("Update", format!("{job_type} jobs do not allow an update block"));
        }
    }
    if let Some(migrate) = &job.migrate {
        check_migrate(c, "Migrate", migrate);
    }
    if let Some(reschedule) = &job.reschedule {
        check_reschedule(c, "Reschedule", reschedule, &job_type);
    }

    if let Some(periodic) = &job.periodic {
        if !matches!(job_type, JobType::Batch | JobType::Sysbatch) {
            c.err("Periodic", format!("periodic is only allowed for batch and sysbatch jobs, not {job_type}"));
        }
        if !periodic.spec_type.is_empty() && periodic.spec_type != "cron" {
            c.err(
                "Periodic.SpecType",
                format!("unknown periodic spec type \"{}\": expected \"cron\"", periodic.spec_type),
            );
        }
        if periodic.enabled.unwrap_or(true) && periodic.all_specs().next().is_none() {
            c.err("Periodic.Specs", "an enabled periodic block needs at least one cron expression");
        }
        if !periodic.spec.is_empty() {
            check_cron(c, "Periodic.Spec", &periodic.spec);
        }
        for (i, spec) in periodic.specs.iter().enumerate() {
            check_cron(c, &format!("Periodic.Specs[{i}]"), spec);
        }
    }
    if let Some(param) = &job.parameterized_job {
        if !matches!(job_type, JobType::Batch | JobType::Sysbatch) {
            c.err(
                "ParameterizedJob",
                format!("parameterized is only allowed for batch and sysbatch jobs, not {job_type}"),
            );
        }
        if let Some(payload) = &param.payload
            && !payload.is_unset()
            && !payload.is_known()
        {
            c.err(
                "ParameterizedJob.Payload",
                format!(
                    "invalid payload requirement \"{payload}\": expected one of {}",
                    one_of(PayloadRequirement::KNOWN)
                ),
            );
        }
        let required: BTreeSet<&String> = param.meta_required.iter().collect();
        for (i, key) in param.meta_optional.iter().enumerate() {
            if required.contains(key) {
                c.err(
                    format!("ParameterizedJob.MetaOptional[{i}]"),
                    format!("meta key \"{key}\" is both required and optional"),
                );
            }
        }
    }

    if job.task_groups.is_empty() {
        c.err("TaskGroups", "a job needs at least one task group");
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, group) in job.task_groups.iter().enumerate() {
        let path = format!("TaskGroups[{i}]");
        if !group.name.is_empty()
            && let Some(first) = seen.insert(group.name.as_str(), i)
        {
            c.err(
                join(&path, "Name"),
                format!("task group name \"{}\" is also used by TaskGroups[{first}]", group.name),
            );
        }
        check_group(c, &path, group, job);
    }
}

fn check_cron(c: &mut Checker, path: &str, spec: &str) {
    if let Err(e) = croner::parser::CronParser::new().parse(spec) {
        c.err(path, format!("invalid cron expression \"{spec}\": {e}"));
    }
}

fn check_constraints(c: &mut Checker, path: &str, constraints: &[Constraint], allow_distinct: bool) {
    for (i, con) in constraints.iter().enumerate() {
        let p = join(path, &format!("Constraints[{i}]"));
        let op = con.operand.as_str();
        if op.is_empty() {
            // "=" is the default operator.
        } else if !CONSTRAINT_OPERANDS.contains(&op) {
            c.err(
                join(&p, "Operand"),
                format!("unknown constraint operator \"{op}\": expected one of {}", one_of(CONSTRAINT_OPERANDS)),
            );
        } else if !allow_distinct && matches!(op, "distinct_hosts" | "distinct_property") {
            c.err(join(&p, "Operand"), format!("\"{op}\" constraints are not allowed on tasks"));
        }
        match op {
            "distinct_hosts" => {}
            "distinct_property" | "is_set" | "is_not_set" => {
                if con.l_target.is_empty() {
                    c.err(join(&p, "LTarget"), format!("a \"{op}\" constraint needs an attribute"));
                }
            }
            _ => {
                if con.l_target.is_empty() && con.r_target.is_empty() {
                    c.err(p.clone(), "a constraint needs an attribute and a value");
                }
            }
        }
    }
}

fn check_affinities(c: &mut Checker, path: &str, affinities: &[Affinity]) {
    for (i, aff) in affinities.iter().enumerate() {
        let p = join(path, &format!("Affinities[{i}]"));
        if !aff.operand.is_empty() && !AFFINITY_OPERANDS.contains(&aff.operand.as_str()) {
            c.err(
                join(&p, "Operand"),
                format!("unknown affinity operator \"{}\": expected one of {}", aff.operand, one_of(AFFINITY_OPERANDS)),
            );
        }
        if aff.l_target.is_empty() {
            c.err(join(&p, "LTarget"), "an affinity needs an attribute");
        }
        if aff.r_target.is_empty() {
            c.err(join(&p, "RTarget"), "an affinity needs a value");
        }
        if let Some(w) = aff.weight
            && (w == 0 || !(-100..=100).contains(&w))
        {
            c.err(join(&p, "Weight"), format!("affinity weight {w} must be between -100 and 100 and not 0"));
        }
    }
}

fn check_spreads(c: &mut Checker, path: &str, spreads: &[Spread]) {
    let mut attributes = BTreeSet::new();
    for (i, spread) in spreads.iter().enumerate() {
        let p = join(path, &format!("Spreads[{i}]"));
        if spread.attribute.is_empty() {
            c.err(join(&p, "Attribute"), "a spread needs an attribute");
        } else if !attributes.insert(spread.attribute.as_str()) {
            c.err(join(&p, "Attribute"), format!("attribute \"{}\" is spread more than once", spread.attribute));
        }
        if let Some(w) = spread.weight
            && !(0..=100).contains(&w)
        {
            c.err(join(&p, "Weight"), format!("spread weight {w} must be between 0 and 100"));
        }
        let mut values = BTreeSet::new();
        let mut total = 0;
        for (j, target) in spread.spread_target.iter().enumerate() {
            let tp = join(&p, &format!("SpreadTarget[{j}]"));
            if !values.insert(target.value.as_str()) {
                c.err(join(&tp, "Value"), format!("spread target \"{}\" is given more than once", target.value));
            }
            if !(0..=100).contains(&target.percent) {
                c.err(
                    join(&tp, "Percent"),
                    format!("spread target percent {} must be between 0 and 100", target.percent),
                );
            }
            total += target.percent;
        }
        if total > 100 {
            c.err(join(&p, "SpreadTarget"), format!("spread target percentages add up to {total}, more than 100"));
        }
    }
}

fn check_nonneg(c: &mut Checker, path: String, what: &str, value: Option<Nanos>) {
    if let Some(v) = value
        && v.0 < 0
    {
        c.err(path, format!("{what} must not be negative (got {v})"));
    }
}

fn check_update(c: &mut Checker, path: &str, u: &UpdateStrategy) {
    if let Some(mp) = u.max_parallel
        && mp < 0
    {
        c.err(join(path, "MaxParallel"), format!("max_parallel must be 0 or more (got {mp})"));
    }
    let canary = u.canary.unwrap_or(0);
    if canary < 0 {
        c.err(join(path, "Canary"), format!("canary must be 0 or more (got {canary})"));
    }
    if canary > 0 && u.max_parallel == Some(0) {
        c.err(
            join(path, "Canary"),
            "canaries need a rolling update: max_parallel must be greater than 0 when canary is set",
        );
    }
    if u.auto_promote == Some(true) && canary <= 0 {
        c.err(join(path, "AutoPromote"), "auto_promote needs canaries: set canary greater than 0");
    }
    if let Some(hc) = &u.health_check
        && !hc.is_unset()
        && !hc.is_known()
    {
        c.err(
            join(path, "HealthCheck"),
            format!("invalid health_check \"{hc}\": expected one of {}", one_of(HealthCheckMode::KNOWN)),
        );
    }
    check_nonneg(c, join(path, "Stagger"), "stagger", u.stagger);
    check_nonneg(c, join(path, "MinHealthyTime"), "min_healthy_time", u.min_healthy_time);
    check_nonneg(c, join(path, "ProgressDeadline"), "progress_deadline", u.progress_deadline);
    if let Some(hd) = u.healthy_deadline
        && hd.0 <= 0
    {
        c.err(join(path, "HealthyDeadline"), format!("healthy_deadline must be greater than 0 (got {hd})"));
    }
    if let (Some(min), Some(hd)) = (u.min_healthy_time, u.healthy_deadline)
        && hd.0 > 0
        && min >= hd
    {
        c.err(
            join(path, "MinHealthyTime"),
            format!("min_healthy_time ({min}) must be less than healthy_deadline ({hd})"),
        );
    }
    if let (Some(pd), Some(hd)) = (u.progress_deadline, u.healthy_deadline)
        && pd.0 > 0
        && pd < hd
    {
        c.err(
            join(path, "ProgressDeadline"),
            format!("progress_deadline ({pd}) must be 0 or at least healthy_deadline ({hd})"),
        );
    }
}

fn check_migrate(c: &mut Checker, path: &str, m: &MigrateStrategy) {
    if let Some(mp) = m.max_parallel
        && mp < 0
    {
        c.err(join(path, "MaxParallel"), format!("max_parallel must be 0 or more (got {mp})"));
    }
    if let Some(hc) = &m.health_check
        && !hc.is_unset()
        && !matches!(hc, HealthCheckMode::Checks | HealthCheckMode::TaskStates)
    {
        c.err(
            join(path, "HealthCheck"),
            format!("invalid health_check \"{hc}\": expected \"checks\" or \"task_states\""),
        );
    }
    check_nonneg(c, join(path, "MinHealthyTime"), "min_healthy_time", m.min_healthy_time);
    if let (Some(min), Some(hd)) = (m.min_healthy_time, m.healthy_deadline)
        && min >= hd
    {
        c.err(
            join(path, "MinHealthyTime"),
            format!("min_healthy_time ({min}) must be less than healthy_deadline ({hd})"),
        );
    }
}

fn check_restart(c: &mut Checker, path: &str, r: &RestartPolicy) {
    if let Some(mode) = &r.mode
        && !mode.is_unset()
        && !mode.is_known()
    {
        c.err(
            join(path, "Mode"),
            format!("invalid restart mode \"{mode}\": expected one of {}", one_of(RestartMode::KNOWN)),
        );
    }
    if let Some(a) = r.attempts
        && a < 0
    {
        c.err(join(path, "Attempts"), format!("restart attempts must be 0 or more (got {a})"));
    }
    check_nonneg(c, join(path, "Delay"), "restart delay", r.delay);
    check_nonneg(c, join(path, "Interval"), "restart interval", r.interval);
    if let (Some(attempts), Some(delay), Some(interval), Some(RestartMode::Fail)) =
        (r.attempts, r.delay, r.interval, &r.mode)
        && attempts > 0
        && delay.0.saturating_mul(i64::from(attempts)) > interval.0
    {
        c.err(
            join(path, "Interval"),
            format!("{attempts} restarts with a delay of {delay} do not fit in an interval of {interval}: lengthen the interval or reduce attempts or delay"),
        );
    }
}

fn check_reschedule(c: &mut Checker, path: &str, r: &ReschedulePolicy, job_type: &JobType) {
    let disabled = r.attempts.unwrap_or(0) == 0 && r.unlimited != Some(true);
    if let Some(f) = &r.delay_function
        && !f.is_unset()
        && !f.is_known()
    {
        c.err(
            join(path, "DelayFunction"),
            format!("invalid delay_function \"{f}\": expected one of {}", one_of(DelayFunction::KNOWN)),
        );
    }
    if let Some(a) = r.attempts
        && a < 0
    {
        c.err(join(path, "Attempts"), format!("reschedule attempts must be 0 or more (got {a})"));
    }
    if matches!(job_type, JobType::System | JobType::Sysbatch) || disabled {
        return;
    }
    if let Some(d) = r.delay
        && d < RESCHEDULE_DELAY_MIN
    {
        c.err(join(path, "Delay"), format!("reschedule delay {d} must be at least {RESCHEDULE_DELAY_MIN}"));
    }
    if let (Some(max), Some(d)) = (r.max_delay, r.delay)
        && matches!(r.delay_function, Some(DelayFunction::Exponential | DelayFunction::Fibonacci))
        && max < d
    {
        c.err(join(path, "MaxDelay"), format!("max_delay ({max}) must be at least delay ({d})"));
    }
    if r.unlimited != Some(true)
        && let Some(interval) = r.interval
        && interval.0 <= 0
    {
        c.err(join(path, "Interval"), "a limited reschedule policy needs an interval greater than 0");
    }
}

fn check_group(c: &mut Checker, path: &str, group: &TaskGroup, job: &Job) {
    let job_type = job.kind();
    if group.name.is_empty() {
        c.err(join(path, "Name"), "missing task group name");
    }
    if let Some(count) = group.count
        && count < 0
    {
        c.err(join(path, "Count"), format!("count must be 0 or more (got {count})"));
    }
    let system_like = matches!(job_type, JobType::System | JobType::Sysbatch);
    if system_like && group.count.unwrap_or(1) > 1 {
        c.err(
            join(path, "Count"),
            format!("count cannot exceed 1 for {job_type} jobs (they run one allocation per node)"),
        );
    }
    if system_like && !group.affinities.is_empty() {
        c.err(join(path, "Affinities"), format!("{job_type} jobs may not have affinities"));
    }
    if system_like && !group.spreads.is_empty() {
        c.err(join(path, "Spreads"), format!("{job_type} jobs may not have spreads"));
    }
    check_constraints(c, path, &group.constraints, true);
    check_affinities(c, path, &group.affinities);
    check_spreads(c, path, &group.spreads);
    if let Some(update) = &group.update {
        if matches!(job_type, JobType::Service | JobType::System) {
            check_update(c, &join(path, "Update"), update);
        } else if job_type.is_known() {
            c.err(join(path, "Update"), format!("{job_type} jobs do not allow an update block"));
        }
    }
    if let Some(migrate) = &group.migrate {
        check_migrate(c, &join(path, "Migrate"), migrate);
    }
    if let Some(restart) = &group.restart_policy {
        check_restart(c, &join(path, "RestartPolicy"), restart);
    }
    if let Some(reschedule) = &group.reschedule_policy {
        check_reschedule(c, &join(path, "ReschedulePolicy"), reschedule, &job_type);
    }
    if let Some(disk) = &group.ephemeral_disk
        && let Some(size) = disk.size_mb
        && size < EPHEMERAL_DISK_MB_MIN
    {
        c.err(
            join(path, "EphemeralDisk.SizeMB"),
            format!("ephemeral disk size must be at least {EPHEMERAL_DISK_MB_MIN} MB (got {size})"),
        );
    }
    if let Some(d) = &group.disconnect {
        check_nonneg(c, join(path, "Disconnect.LostAfter"), "lost_after", d.lost_after);
        check_nonneg(c, join(path, "Disconnect.StopOnClientAfter"), "stop_on_client_after", d.stop_on_client_after);
        if let Some(mode) = &d.reconcile
            && !DISCONNECT_RECONCILE_MODES.contains(&mode.as_str())
        {
            c.err(
                join(path, "Disconnect.Reconcile"),
                format!("invalid reconcile \"{mode}\": expected one of {}", one_of(DISCONNECT_RECONCILE_MODES)),
            );
        }
    }
    check_nonneg(c, join(path, "ShutdownDelay"), "shutdown_delay", group.shutdown_delay);
    // Rotated logs live on the ephemeral disk, so each task's must fit on it (Nomad checks
    // task by task, not the sum: a group of three tasks with default logs and disk is valid).
    if let Some(disk_mb) = group.ephemeral_disk.as_ref().and_then(|d| d.size_mb) {
        for (i, task) in group.tasks.iter().enumerate() {
            let Some(logs) = task.log_config.as_ref().filter(|l| l.disabled != Some(true)) else { continue };
            let logs_mb = i64::from(logs.max_files.unwrap_or(0)) * i64::from(logs.max_file_size_mb.unwrap_or(0));
            if logs_mb >= i64::from(disk_mb) {
                c.err(
                    join(path, &format!("Tasks[{i}].LogConfig")),
                    format!(
                        "log storage ({logs_mb} MB) must be less than the group's ephemeral disk ({disk_mb} MB): \
                         enlarge the disk or shrink the logs block"
                    ),
                );
            }
        }
    }
    if let Some(scaling) = &group.scaling {
        let sp = join(path, "Scaling");
        match scaling.max {
            None => c.err(join(&sp, "Max"), "scaling needs a max"),
            Some(max) => {
                let min = scaling.min.unwrap_or(0);
                if min < 0 {
                    c.err(join(&sp, "Min"), format!("scaling min must be 0 or more (got {min})"));
                }
                if max < min {
                    c.err(join(&sp, "Max"), format!("scaling max ({max}) must be at least min ({min})"));
                }
                if let Some(count) = group.count
                    && (i64::from(count) < min || i64::from(count) > max)
                {
                    c.err(join(path, "Count"), format!("count {count} is outside the scaling range {min}..={max}"));
                }
            }
        }
    }
    for (name, volume) in &group.volumes {
        let vp = join(path, &format!("Volumes[{name}]"));
        if !VOLUME_TYPES.contains(&volume.volume_type.as_str()) {
            c.err(
                join(&vp, "Type"),
                format!("invalid volume type \"{}\": expected one of {}", volume.volume_type, one_of(VOLUME_TYPES)),
            );
        }
        if volume.source.is_empty() {
            c.err(join(&vp, "Source"), "a volume needs a source");
        }
    }
    check_networks(c, path, &group.networks);
    check_services(c, path, &group.services);
    // All services of a group (group and task level) must use one provider.
    let providers: BTreeSet<&str> = group
        .services
        .iter()
        .chain(group.tasks.iter().flat_map(|t| t.services.iter()))
        .map(|s| if s.provider.is_empty() { "consul" } else { s.provider.as_str() })
        .collect();
    if providers.len() > 1 {
        c.err(join(path, "Services"), "all services of a task group (and its tasks) must use the same provider");
    }

    if group.tasks.is_empty() {
        c.err(join(path, "Tasks"), "a task group needs at least one task");
    } else if !group.tasks.iter().any(Task::is_main) {
        c.err(join(path, "Tasks"), "a task group needs at least one main task (a task without a lifecycle block)");
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut leaders = 0;
    for (i, task) in group.tasks.iter().enumerate() {
        let tp = join(path, &format!("Tasks[{i}]"));
        if !task.name.is_empty()
            && let Some(first) = seen.insert(task.name.as_str(), i)
        {
            c.err(join(&tp, "Name"), format!("task name \"{}\" is also used by Tasks[{first}]", task.name));
        }
        if task.leader {
            leaders += 1;
            if leaders == 2 {
                c.err(join(&tp, "Leader"), "only one task of a group may be the leader");
            }
        }
        check_task(c, &tp, task, group, job);
    }
}

fn check_networks(c: &mut Checker, path: &str, networks: &[NetworkResource]) {
    let mut labels: BTreeMap<&str, String> = BTreeMap::new();
    let mut statics: BTreeMap<(i32, &str), String> = BTreeMap::new();
    for (i, net) in networks.iter().enumerate() {
        let np = join(path, &format!("Networks[{i}]"));
        let mode = net.mode.as_str();
        if !(mode.is_empty() || matches!(mode, "host" | "bridge" | "none") || mode.starts_with("cni/")) {
            c.err(
                join(&np, "Mode"),
                format!("invalid network mode \"{mode}\": expected \"host\", \"bridge\", \"none\" or \"cni/<name>\""),
            );
        }
        for (kind, ports, reserved) in
            [("ReservedPorts", &net.reserved_ports, true), ("DynamicPorts", &net.dynamic_ports, false)]
        {
            for (j, port) in ports.iter().enumerate() {
                let pp = join(&np, &format!("{kind}[{j}]"));
                if port.label.is_empty() {
                    c.err(join(&pp, "Label"), "a port needs a label");
                } else if !port.label.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                    c.err(
                        join(&pp, "Label"),
                        format!("port label \"{}\" may only contain letters, digits and underscores", port.label),
                    );
                } else if let Some(first) = labels.insert(port.label.as_str(), pp.clone()) {
                    c.err(join(&pp, "Label"), format!("port label \"{}\" is also used by {first}", port.label));
                }
                if reserved {
                    if !(1..=PORT_MAX).contains(&port.value) {
                        c.err(
                            join(&pp, "Value"),
                            format!("static port {} must be between 1 and {PORT_MAX}", port.value),
                        );
                    } else if !port.ignore_collision
                        && let Some(first) = statics.insert((port.value, port.host_network.as_str()), pp.clone())
                    {
                        c.err(join(&pp, "Value"), format!("static port {} is also reserved by {first}", port.value));
                    }
                } else if port.value != 0 && !(1..=PORT_MAX).contains(&port.value) {
                    c.err(join(&pp, "Value"), format!("port {} must be between 1 and {PORT_MAX}", port.value));
                }
                if !(-1..=PORT_MAX).contains(&port.to) {
                    c.err(join(&pp, "To"), format!("mapped port {} must be between -1 and {PORT_MAX}", port.to));
                }
            }
        }
    }
}

fn check_services(c: &mut Checker, path: &str, services: &[Service]) {
    for (i, svc) in services.iter().enumerate() {
        let sp = join(path, &format!("Services[{i}]"));
        if !svc.provider.is_empty() && !SERVICE_PROVIDERS.contains(&svc.provider.as_str()) {
            c.err(
                join(&sp, "Provider"),
                format!("invalid service provider \"{}\": expected one of {}", svc.provider, one_of(SERVICE_PROVIDERS)),
            );
        }
        if !svc.address_mode.is_empty() && !SERVICE_ADDRESS_MODES.contains(&svc.address_mode.as_str()) {
            c.err(
                join(&sp, "AddressMode"),
                format!(
                    "invalid address_mode \"{}\": expected one of {}",
                    svc.address_mode,
                    one_of(SERVICE_ADDRESS_MODES)
                ),
            );
        }
        if !svc.on_update.is_empty() && !ON_UPDATE_MODES.contains(&svc.on_update.as_str()) {
            c.err(
                join(&sp, "OnUpdate"),
                format!("invalid on_update \"{}\": expected one of {}", svc.on_update, one_of(ON_UPDATE_MODES)),
            );
        }
        if svc.name.contains(' ') {
            c.err(join(&sp, "Name"), format!("service name \"{}\" must not contain spaces", svc.name));
        }
        for (j, check) in svc.checks.iter().enumerate() {
            let cp = join(&sp, &format!("Checks[{j}]"));
            let t = check.check_type.as_str();
            let allowed: &[&str] = if svc.provider == "nomad" { &["http", "tcp"] } else { CHECK_TYPES };
            if t.is_empty() {
                c.err(join(&cp, "Type"), "a check needs a type");
            } else if !allowed.contains(&t) {
                c.err(
                    join(&cp, "Type"),
                    format!(
                        "invalid check type \"{t}\" for provider \"{}\": expected one of {}",
                        svc.provider,
                        one_of(allowed)
                    ),
                );
            }
            if check.interval < CHECK_INTERVAL_MIN {
                c.err(
                    join(&cp, "Interval"),
                    format!("check interval {} must be at least {CHECK_INTERVAL_MIN}", check.interval),
                );
            }
            if check.timeout < CHECK_INTERVAL_MIN {
                c.err(
                    join(&cp, "Timeout"),
                    format!("check timeout {} must be at least {CHECK_INTERVAL_MIN}", check.timeout),
                );
            }
            if t == "script" && check.command.is_empty() {
                c.err(join(&cp, "Command"), "a script check needs a command");
            }
            if !check.on_update.is_empty() && !ON_UPDATE_MODES.contains(&check.on_update.as_str()) {
                c.err(
                    join(&cp, "OnUpdate"),
                    format!("invalid on_update \"{}\": expected one of {}", check.on_update, one_of(ON_UPDATE_MODES)),
                );
            }
        }
    }
}

fn check_task(c: &mut Checker, path: &str, task: &Task, group: &TaskGroup, job: &Job) {
    if task.name.is_empty() {
        c.err(join(path, "Name"), "missing task name");
    } else if task.name.contains('/') {
        c.err(join(path, "Name"), format!("task name \"{}\" must not contain \"/\"", task.name));
    }
    if task.driver.is_empty() {
        c.err(join(path, "Driver"), "missing task driver (e.g. \"docker\", \"exec\", \"raw_exec\")");
    }
    check_constraints(c, path, &task.constraints, false);
    check_affinities(c, path, &task.affinities);
    check_nonneg(c, join(path, "KillTimeout"), "kill_timeout", task.kill_timeout);
    if task.shutdown_delay.0 < 0 {
        c.err(join(path, "ShutdownDelay"), "shutdown_delay must not be negative");
    }
    if let Some(restart) = &task.restart_policy {
        check_restart(c, &join(path, "RestartPolicy"), restart);
    }
    if let Some(lc) = &task.lifecycle {
        let lp = join(path, "Lifecycle");
        if lc.hook.is_unset() {
            c.err(
                join(&lp, "Hook"),
                format!("a lifecycle block needs a hook: one of {}", one_of(LifecycleHook::KNOWN)),
            );
        } else if !lc.hook.is_known() {
            c.err(
                join(&lp, "Hook"),
                format!("invalid lifecycle hook \"{}\": expected one of {}", lc.hook, one_of(LifecycleHook::KNOWN)),
            );
        } else if lc.sidecar && lc.hook == LifecycleHook::Poststop {
            c.err(join(&lp, "Sidecar"), "a poststop task cannot be a sidecar");
        }
        if task.leader && !lc.hook.is_unset() {
            c.err(join(path, "Leader"), "a lifecycle task cannot be the leader");
        }
    }
    if let Some(res) = &task.resources {
        check_resources(c, &join(path, "Resources"), res);
    }
    if let Some(logs) = &task.log_config {
        if let Some(n) = logs.max_files
            && n < 1
        {
            c.err(join(path, "LogConfig.MaxFiles"), format!("max_files must be at least 1 (got {n})"));
        }
        if let Some(n) = logs.max_file_size_mb
            && n < 1
        {
            c.err(join(path, "LogConfig.MaxFileSizeMB"), format!("max_file_size must be at least 1 MB (got {n})"));
        }
    }
    for (i, artifact) in task.artifacts.iter().enumerate() {
        let ap = join(path, &format!("Artifacts[{i}]"));
        if artifact.getter_source.is_empty() {
            c.err(join(&ap, "GetterSource"), "an artifact needs a source");
        }
        if !artifact.getter_mode.is_empty() && !ARTIFACT_MODES.contains(&artifact.getter_mode.as_str()) {
            c.err(
                join(&ap, "GetterMode"),
                format!(
                    "invalid artifact mode \"{}\": expected one of {}",
                    artifact.getter_mode,
                    one_of(ARTIFACT_MODES)
                ),
            );
        }
    }
    let mut destinations = BTreeMap::new();
    for (i, template) in task.templates.iter().enumerate() {
        let tp = join(path, &format!("Templates[{i}]"));
        check_template(c, &tp, template);
        if !template.dest_path.is_empty()
            && let Some(first) = destinations.insert(template.dest_path.as_str(), i)
        {
            c.err(
                join(&tp, "DestPath"),
                format!("destination \"{}\" is also used by Templates[{first}]", template.dest_path),
            );
        }
    }
    if task.dispatch_payload.is_some() && job.parameterized_job.is_none() {
        c.err(join(path, "DispatchPayload"), "dispatch_payload is only allowed in a parameterized job");
    }
    if let Some(dp) = &task.dispatch_payload
        && (dp.file.starts_with('/') || dp.file.split('/').any(|s| s == ".."))
    {
        c.err(
            join(path, "DispatchPayload.File"),
            format!("payload file \"{}\" must be a relative path inside the task directory", dp.file),
        );
    }
    for (i, mount) in task.volume_mounts.iter().enumerate() {
        let mp = join(path, &format!("VolumeMounts[{i}]"));
        if mount.volume.is_empty() {
            c.err(join(&mp, "Volume"), "a volume mount needs a volume");
        } else if !group.volumes.contains_key(&mount.volume) {
            c.err(join(&mp, "Volume"), format!("volume \"{}\" is not declared in the task group", mount.volume));
        }
        if mount.destination.is_empty() {
            c.err(join(&mp, "Destination"), "a volume mount needs a destination");
        }
        if !mount.propagation_mode.is_empty() && !PROPAGATION_MODES.contains(&mount.propagation_mode.as_str()) {
            c.err(
                join(&mp, "PropagationMode"),
                format!(
                    "invalid propagation_mode \"{}\": expected one of {}",
                    mount.propagation_mode,
                    one_of(PROPAGATION_MODES)
                ),
            );
        }
    }
    check_services(c, path, &task.services);
}

fn check_resources(c: &mut Checker, path: &str, res: &Resources) {
    let cores = res.cores.unwrap_or(0);
    if cores < 0 {
        c.err(join(path, "Cores"), format!("cores must be 0 or more (got {cores})"));
    }
    match res.cpu {
        Some(cpu) if cores > 0 && cpu > 0 => {
            c.err(join(path, "CPU"), "cpu and cores are exclusive: give one of them");
        }
        Some(cpu) if cores == 0 && cpu < CPU_MHZ_MIN => {
            c.err(join(path, "CPU"), format!("cpu must be at least {CPU_MHZ_MIN} MHz (got {cpu})"));
        }
        _ => {}
    }
    if let Some(mem) = res.memory_mb
        && mem < MEMORY_MB_MIN
    {
        c.err(join(path, "MemoryMB"), format!("memory must be at least {MEMORY_MB_MIN} MB (got {mem})"));
    }
    if let (Some(max), Some(mem)) = (res.memory_max_mb, res.memory_mb)
        && max != 0
        && max < mem
    {
        c.err(join(path, "MemoryMaxMB"), format!("memory_max ({max} MB) must be at least memory ({mem} MB)"));
    }
    for (i, dev) in res.devices.iter().enumerate() {
        if dev.name.is_empty() {
            c.err(join(path, &format!("Devices[{i}].Name")), "a device request needs a name");
        }
    }
    check_networks(c, path, &res.networks);
}

fn check_template(c: &mut Checker, path: &str, t: &Template) {
    let has_source = !t.source_path.is_empty();
    let has_data = !t.embedded_tmpl.is_empty();
    if has_source && has_data {
        c.err(path.to_owned(), "a template takes either a source or data, not both");
    } else if !has_source && !has_data {
        c.err(path.to_owned(), "a template needs a source or data");
    }
    if t.dest_path.is_empty() {
        c.err(join(path, "DestPath"), "a template needs a destination");
    }
    match &t.change_mode {
        Some(TemplateChangeMode::Signal) => {
            if t.change_signal.is_empty() {
                c.err(join(path, "ChangeSignal"), "change_mode \"signal\" needs a change_signal (e.g. \"SIGHUP\")");
            }
            if t.envvars {
                c.err(join(path, "Envvars"), "env templates cannot use change_mode \"signal\"");
            }
        }
        Some(TemplateChangeMode::Script) if t.change_script.as_ref().is_none_or(|s| s.command.is_empty()) => {
            c.err(join(path, "ChangeScript.Command"), "change_mode \"script\" needs a change_script with a command");
        }
        Some(mode) if !mode.is_unset() && !mode.is_known() => {
            c.err(
                join(path, "ChangeMode"),
                format!("invalid change_mode \"{mode}\": expected one of {}", one_of(TemplateChangeMode::KNOWN)),
            );
        }
        _ => {}
    }
    check_nonneg(c, join(path, "Splay"), "splay", t.splay);
    if let Some(wait) = &t.wait
        && let (Some(min), Some(max)) = (wait.min, wait.max)
        && max < min
    {
        c.err(join(path, "Wait"), format!("wait max ({max}) must be at least min ({min})"));
    }
    if !t.perms.is_empty() && (t.perms.len() > 4 || !t.perms.chars().all(|ch| ('0'..='7').contains(&ch))) {
        c.err(join(path, "Perms"), format!("perms \"{}\" must be an octal mode such as \"0644\"", t.perms));
    }
}
