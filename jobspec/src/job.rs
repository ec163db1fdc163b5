//! Second stage: the evaluated block tree mapped onto Nomad's API JSON (`api/jobs.go` field
//! names). Each block kind has a table of its arguments and sub-blocks.
//!
//! Unknown names: inside the blocks Nomad types (job, group, task, resources, service, ...)
//! an argument or block this table does not know is rejected with the list of accepted
//! names, as Nomad's own parser rejects it ("Unsupported argument") — a typo such as
//! `memmory = 256` must not silently become the default. Inside blocks Nomad passes on
//! without a schema (task `config`, `meta`, `env`, artifact `options`, scaling `policy`)
//! everything is kept as written. Blocks Nomad types but stead does not model in detail
//! (Consul Connect, `multiregion`, `ui`, `csi_plugin`, ...) are kept with their names
//! converted to PascalCase, as Nomad's API JSON spells them.

use std::collections::BTreeMap;
use std::ops::Range;

use serde_json::{Map, Value, json};

use crate::body::{Attr, BlockNode, Node};
use crate::value::{Val, num_to_json};

pub(crate) struct Problem {
    pub span: Option<Range<usize>>,
    pub msg: String,
}

type Errs = Vec<Problem>;

/// Where each produced JSON value came from: its path relative to the job, in the format of
/// `stead_model::validate` (`TaskGroups[0].Tasks[1].Resources.CPU`, map keys as
/// `Meta[team]`), to the byte offset of the block's first token or the argument's name.
#[derive(Debug, Default)]
pub(crate) struct Origins {
    pub map: BTreeMap<String, usize>,
}

impl Origins {
    fn at(&mut self, path: String, span: &Option<Range<usize>>) {
        if let Some(r) = span {
            self.map.insert(path, r.start);
        }
    }

    /// Forgets `path` and everything below it.
    fn remove_tree(&mut self, path: &str) {
        self.map.retain(|k, _| !is_within(k, path));
    }

    /// Takes over what `sub` recorded relative to its root (`""`), placed below `root`.
    fn absorb(&mut self, sub: Origins, root: &str) {
        for (k, v) in sub.map {
            let k = if k.is_empty() || k.starts_with('[') { format!("{root}{k}") } else { field_path(root, &k) };
            self.map.insert(k, v);
        }
    }

    /// Records everything recorded below `from` again below `to` (values copied in the JSON).
    fn copy_tree(&mut self, from: &str, to: &str) {
        let copies: Vec<(String, usize)> = self
            .map
            .iter()
            .filter(|(k, _)| is_within(k, from))
            .map(|(k, v)| (format!("{to}{}", &k[from.len()..]), *v))
            .collect();
        for (k, v) in copies {
            self.map.entry(k).or_insert(v);
        }
    }
}

/// Whether `path` is `root` or a path below it.
pub(crate) fn is_within(path: &str, root: &str) -> bool {
    match path.strip_prefix(root) {
        Some(rest) => root.is_empty() || rest.is_empty() || rest.starts_with(['.', '[']),
        None => false,
    }
}

/// `path.Field`, as validate.rs joins paths.
pub(crate) fn field_path(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_string() } else { format!("{path}.{field}") }
}

/// `path[i]` (array element) or `path[key]` (map entry).
fn index_path(path: &str, i: impl std::fmt::Display) -> String {
    format!("{path}[{i}]")
}

fn err(errs: &mut Errs, span: &Option<Range<usize>>, msg: impl Into<String>) {
    errs.push(Problem { span: span.clone(), msg: msg.into() });
}

/// How an argument's value becomes JSON.
#[derive(Clone, Copy, Debug, PartialEq)]
enum C {
    Str,
    Int,
    Bool,
    /// Go duration string ("30s", "1h30m") or a number of nanoseconds → integer nanoseconds.
    Dur,
    /// A number of MB, or a string with a unit ("512MB", "1GiB") → integer MB.
    Mb,
    StrList,
    StrMap,
    StrListMap,
    /// Any value, keys as written.
    Any,
}

/// The block kinds with a field table.
#[derive(Clone, Copy, Debug, PartialEq)]
enum K {
    Job,
    Group,
    Task,
    Resources,
    Device,
    Numa,
    Network,
    Dns,
    Cni,
    Service,
    Check,
    CheckRestart,
    Update,
    Migrate,
    Reschedule,
    Restart,
    Lifecycle,
    Template,
    ChangeScript,
    Wait,
    Constraint,
    Affinity,
    Spread,
    Periodic,
    Parameterized,
    Artifact,
    Volume,
    MountOptions,
    VolumeMount,
    EphemeralDisk,
    Logs,
    Vault,
    Consul,
    Identity,
    Scaling,
    Disconnect,
    DispatchPayload,
    Action,
    Weights,
}

/// How a sub-block becomes JSON.
#[derive(Clone, Copy, Debug)]
enum B {
    /// At most one; an object.
    One(K),
    /// Repeatable; an array of objects.
    Many(K),
    /// Repeatable with one label; an array of objects with the label stored in the field.
    Labeled(K, &'static str),
    /// Repeatable with one label; an object keyed by label, the label also stored in the field.
    Keyed(K, &'static str),
    /// A block of string-valued arguments (`meta`, `env`).
    StrMap,
    /// A block kept as written (task `config`, artifact `options`, scaling `policy`).
    Opaque,
    /// A block Nomad types but stead keeps generically, names in PascalCase.
    Generic,
    /// Handled by the kind's own code.
    Special,
}

type Attrs = &'static [(&'static str, &'static str, C)];
type Blocks = &'static [(&'static str, &'static str, B)];

fn table(k: K) -> (Attrs, Blocks) {
    use C::*;
    match k {
        K::Job => (
            &[
                ("region", "Region", Str),
                ("namespace", "Namespace", Str),
                ("type", "Type", Str),
                ("priority", "Priority", Int),
                ("datacenters", "Datacenters", StrList),
                ("node_pool", "NodePool", Str),
                ("all_at_once", "AllAtOnce", Bool),
                ("name", "Name", Str),
                ("id", "ID", Str),
                ("vault_token", "VaultToken", Str),
                ("consul_token", "ConsulToken", Str),
                ("consul_namespace", "ConsulNamespace", Str),
                ("vault_namespace", "VaultNamespace", Str),
                ("meta", "Meta", StrMap),
            ],
            &[
                ("constraint", "Constraints", B::Many(K::Constraint)),
                ("affinity", "Affinities", B::Many(K::Affinity)),
                ("spread", "Spreads", B::Many(K::Spread)),
                ("meta", "Meta", B::StrMap),
                ("update", "Update", B::One(K::Update)),
                ("migrate", "Migrate", B::One(K::Migrate)),
                ("reschedule", "Reschedule", B::One(K::Reschedule)),
                ("periodic", "Periodic", B::One(K::Periodic)),
                ("parameterized", "ParameterizedJob", B::One(K::Parameterized)),
                ("vault", "Vault", B::One(K::Vault)),
                ("group", "TaskGroups", B::Labeled(K::Group, "Name")),
                ("multiregion", "Multiregion", B::Generic),
                ("ui", "UI", B::Generic),
            ],
        ),
        K::Group => (
            &[
                ("count", "Count", Int),
                ("shutdown_delay", "ShutdownDelay", Dur),
                ("stop_after_client_disconnect", "StopAfterClientDisconnect", Dur),
                ("max_client_disconnect", "MaxClientDisconnect", Dur),
                ("prevent_reschedule_on_lost", "PreventRescheduleOnLost", Bool),
                ("meta", "Meta", StrMap),
            ],
            &[
                ("constraint", "Constraints", B::Many(K::Constraint)),
                ("affinity", "Affinities", B::Many(K::Affinity)),
                ("spread", "Spreads", B::Many(K::Spread)),
                ("meta", "Meta", B::StrMap),
                ("network", "Networks", B::Many(K::Network)),
                ("service", "Services", B::Many(K::Service)),
                ("volume", "Volumes", B::Keyed(K::Volume, "Name")),
                ("ephemeral_disk", "EphemeralDisk", B::One(K::EphemeralDisk)),
                ("restart", "RestartPolicy", B::One(K::Restart)),
                ("reschedule", "ReschedulePolicy", B::One(K::Reschedule)),
                ("update", "Update", B::One(K::Update)),
                ("migrate", "Migrate", B::One(K::Migrate)),
                ("disconnect", "Disconnect", B::One(K::Disconnect)),
                ("consul", "Consul", B::One(K::Consul)),
                ("vault", "Vault", B::One(K::Vault)),
                ("scaling", "Scaling", B::One(K::Scaling)),
                ("task", "Tasks", B::Labeled(K::Task, "Name")),
            ],
        ),
        K::Task => (
            &[
                ("driver", "Driver", Str),
                ("user", "User", Str),
                ("kill_timeout", "KillTimeout", Dur),
                ("kill_signal", "KillSignal", Str),
                ("leader", "Leader", Bool),
                ("shutdown_delay", "ShutdownDelay", Dur),
                ("kind", "Kind", Str),
                ("meta", "Meta", StrMap),
                ("env", "Env", StrMap),
                ("config", "Config", Any),
            ],
            &[
                ("config", "Config", B::Opaque),
                ("env", "Env", B::StrMap),
                ("meta", "Meta", B::StrMap),
                ("constraint", "Constraints", B::Many(K::Constraint)),
                ("affinity", "Affinities", B::Many(K::Affinity)),
                ("resources", "Resources", B::One(K::Resources)),
                ("service", "Services", B::Many(K::Service)),
                ("template", "Templates", B::Many(K::Template)),
                ("artifact", "Artifacts", B::Many(K::Artifact)),
                ("lifecycle", "Lifecycle", B::One(K::Lifecycle)),
                ("logs", "LogConfig", B::One(K::Logs)),
                ("restart", "RestartPolicy", B::One(K::Restart)),
                ("dispatch_payload", "DispatchPayload", B::One(K::DispatchPayload)),
                ("volume_mount", "VolumeMounts", B::Many(K::VolumeMount)),
                ("vault", "Vault", B::One(K::Vault)),
                ("consul", "Consul", B::One(K::Consul)),
                ("identity", "Identity", B::Special),
                ("scaling", "ScalingPolicies", B::Special),
                ("action", "Actions", B::Labeled(K::Action, "Name")),
                ("csi_plugin", "CSIPluginConfig", B::Generic),
                ("schedule", "Schedule", B::Generic),
                ("secret", "Secrets", B::Generic),
            ],
        ),
        K::Resources => (
            &[
                ("cpu", "CPU", Int),
                ("cores", "Cores", Int),
                ("memory", "MemoryMB", Mb),
                ("memory_max", "MemoryMaxMB", Mb),
                ("disk", "DiskMB", Mb),
                ("iops", "IOPS", Int),
                ("secrets", "SecretsMB", Mb),
            ],
            &[
                ("device", "Devices", B::Labeled(K::Device, "Name")),
                ("network", "Networks", B::Many(K::Network)),
                ("numa", "NUMA", B::One(K::Numa)),
            ],
        ),
        K::Device => (
            &[("count", "Count", Int)],
            &[("constraint", "Constraints", B::Many(K::Constraint)), ("affinity", "Affinities", B::Many(K::Affinity))],
        ),
        K::Numa => (&[("affinity", "Affinity", Str), ("devices", "Devices", StrList)], &[]),
        K::Network => (
            &[
                ("mode", "Mode", Str),
                ("hostname", "Hostname", Str),
                ("mbits", "MBits", Int),
                ("device", "Device", Str),
                ("cidr", "CIDR", Str),
                ("ip", "IP", Str),
            ],
            &[("port", "", B::Special), ("dns", "DNS", B::One(K::Dns)), ("cni", "CNI", B::One(K::Cni))],
        ),
        K::Dns => (
            &[("servers", "Servers", StrList), ("searches", "Searches", StrList), ("options", "Options", StrList)],
            &[],
        ),
        K::Cni => (&[("args", "Args", StrMap)], &[]),
        K::Service => (
            &[
                ("name", "Name", Str),
                ("tags", "Tags", StrList),
                ("canary_tags", "CanaryTags", StrList),
                ("enable_tag_override", "EnableTagOverride", Bool),
                ("port", "PortLabel", Str),
                ("address_mode", "AddressMode", Str),
                ("address", "Address", Str),
                ("meta", "Meta", StrMap),
                ("canary_meta", "CanaryMeta", StrMap),
                ("tagged_addresses", "TaggedAddresses", StrMap),
                ("task", "TaskName", Str),
                ("on_update", "OnUpdate", Str),
                ("provider", "Provider", Str),
                ("cluster", "Cluster", Str),
                ("kind", "Kind", Str),
            ],
            &[
                ("check", "Checks", B::Many(K::Check)),
                ("check_restart", "CheckRestart", B::One(K::CheckRestart)),
                ("connect", "Connect", B::Generic),
                ("meta", "Meta", B::StrMap),
                ("canary_meta", "CanaryMeta", B::StrMap),
                ("tagged_addresses", "TaggedAddresses", B::StrMap),
                ("identity", "Identity", B::One(K::Identity)),
                ("weights", "Weights", B::One(K::Weights)),
            ],
        ),
        K::Weights => (&[("passing", "Passing", Int), ("warning", "Warning", Int)], &[]),
        K::Check => (
            &[
                ("name", "Name", Str),
                ("type", "Type", Str),
                ("command", "Command", Str),
                ("args", "Args", StrList),
                ("path", "Path", Str),
                ("protocol", "Protocol", Str),
                ("port", "PortLabel", Str),
                ("expose", "Expose", Bool),
                ("address_mode", "AddressMode", Str),
                ("advertise", "Advertise", Str),
                ("interval", "Interval", Dur),
                ("timeout", "Timeout", Dur),
                ("initial_status", "InitialStatus", Str),
                ("notes", "Notes", Str),
                ("tls_server_name", "TLSServerName", Str),
                ("tls_skip_verify", "TLSSkipVerify", Bool),
                ("header", "Header", StrListMap),
                ("method", "Method", Str),
                ("body", "Body", Str),
                ("grpc_service", "GRPCService", Str),
                ("grpc_use_tls", "GRPCUseTLS", Bool),
                ("task", "TaskName", Str),
                ("success_before_passing", "SuccessBeforePassing", Int),
                ("failures_before_critical", "FailuresBeforeCritical", Int),
                ("failures_before_warning", "FailuresBeforeWarning", Int),
                ("on_update", "OnUpdate", Str),
            ],
            &[("check_restart", "CheckRestart", B::One(K::CheckRestart)), ("header", "Header", B::Opaque)],
        ),
        K::CheckRestart => {
            (&[("limit", "Limit", Int), ("grace", "Grace", Dur), ("ignore_warnings", "IgnoreWarnings", Bool)], &[])
        }
        K::Update => (
            &[
                ("stagger", "Stagger", Dur),
                ("max_parallel", "MaxParallel", Int),
                ("health_check", "HealthCheck", Str),
                ("min_healthy_time", "MinHealthyTime", Dur),
                ("healthy_deadline", "HealthyDeadline", Dur),
                ("progress_deadline", "ProgressDeadline", Dur),
                ("canary", "Canary", Int),
                ("auto_revert", "AutoRevert", Bool),
                ("auto_promote", "AutoPromote", Bool),
            ],
            &[],
        ),
        K::Migrate => (
            &[
                ("max_parallel", "MaxParallel", Int),
                ("health_check", "HealthCheck", Str),
                ("min_healthy_time", "MinHealthyTime", Dur),
                ("healthy_deadline", "HealthyDeadline", Dur),
            ],
            &[],
        ),
        K::Reschedule => (
            &[
                ("attempts", "Attempts", Int),
                ("interval", "Interval", Dur),
                ("delay", "Delay", Dur),
                ("delay_function", "DelayFunction", Str),
                ("max_delay", "MaxDelay", Dur),
                ("unlimited", "Unlimited", Bool),
            ],
            &[],
        ),
        K::Restart => (
            &[
                ("attempts", "Attempts", Int),
                ("interval", "Interval", Dur),
                ("delay", "Delay", Dur),
                ("mode", "Mode", Str),
                ("render_templates", "RenderTemplates", Bool),
            ],
            &[],
        ),
        K::Lifecycle => (&[("hook", "Hook", Str), ("sidecar", "Sidecar", Bool)], &[]),
        K::Template => (
            &[
                ("source", "SourcePath", Str),
                ("destination", "DestPath", Str),
                ("data", "EmbeddedTmpl", Str),
                ("change_mode", "ChangeMode", Str),
                ("change_signal", "ChangeSignal", Str),
                ("splay", "Splay", Dur),
                ("perms", "Perms", Str),
                ("uid", "Uid", Int),
                ("gid", "Gid", Int),
                ("left_delimiter", "LeftDelim", Str),
                ("right_delimiter", "RightDelim", Str),
                ("env", "Envvars", Bool),
                ("vault_grace", "VaultGrace", Dur),
                ("error_on_missing_key", "ErrMissingKey", Bool),
                ("once", "Once", Bool),
            ],
            &[("change_script", "ChangeScript", B::One(K::ChangeScript)), ("wait", "Wait", B::One(K::Wait))],
        ),
        K::ChangeScript => (
            &[
                ("command", "Command", Str),
                ("args", "Args", StrList),
                ("timeout", "Timeout", Dur),
                ("fail_on_error", "FailOnError", Bool),
            ],
            &[],
        ),
        K::Wait => (&[("min", "Min", Dur), ("max", "Max", Dur)], &[]),
        K::Constraint => (
            &[
                ("attribute", "LTarget", Str),
                ("operator", "Operand", Str),
                ("value", "RTarget", Str),
                // Shorthands (see `shorthand_operand`).
                ("distinct_hosts", "", Any),
                ("distinct_property", "", Any),
                ("regexp", "", Any),
                ("version", "", Any),
                ("semver", "", Any),
                ("set_contains", "", Any),
                ("set_contains_any", "", Any),
                ("set_contains_all", "", Any),
            ],
            &[],
        ),
        K::Affinity => (
            &[
                ("attribute", "LTarget", Str),
                ("operator", "Operand", Str),
                ("value", "RTarget", Str),
                ("weight", "Weight", Int),
                ("regexp", "", Any),
                ("version", "", Any),
                ("semver", "", Any),
                ("set_contains", "", Any),
                ("set_contains_any", "", Any),
                ("set_contains_all", "", Any),
            ],
            &[],
        ),
        K::Spread => {
            (&[("attribute", "Attribute", Str), ("weight", "Weight", Int)], &[("target", "SpreadTarget", B::Special)])
        }
        K::Periodic => (
            &[
                ("cron", "Spec", Str),
                ("crons", "Specs", StrList),
                ("prohibit_overlap", "ProhibitOverlap", Bool),
                ("time_zone", "TimeZone", Str),
                ("enabled", "Enabled", Bool),
            ],
            &[],
        ),
        K::Parameterized => (
            &[
                ("payload", "Payload", Str),
                ("meta_required", "MetaRequired", StrList),
                ("meta_optional", "MetaOptional", StrList),
            ],
            &[],
        ),
        K::Artifact => (
            &[
                ("source", "GetterSource", Str),
                ("options", "GetterOptions", StrMap),
                ("headers", "GetterHeaders", StrMap),
                ("mode", "GetterMode", Str),
                ("destination", "RelativeDest", Str),
                ("chown", "Chown", Bool),
                ("insecure", "GetterInsecure", Bool),
            ],
            &[("options", "GetterOptions", B::StrMap), ("headers", "GetterHeaders", B::StrMap)],
        ),
        K::Volume => (
            &[
                ("type", "Type", Str),
                ("source", "Source", Str),
                ("read_only", "ReadOnly", Bool),
                ("sticky", "Sticky", Bool),
                ("per_alloc", "PerAlloc", Bool),
                ("access_mode", "AccessMode", Str),
                ("attachment_mode", "AttachmentMode", Str),
            ],
            &[("mount_options", "MountOptions", B::One(K::MountOptions))],
        ),
        K::MountOptions => (&[("fs_type", "FSType", Str), ("mount_flags", "MountFlags", StrList)], &[]),
        K::VolumeMount => (
            &[
                ("volume", "Volume", Str),
                ("destination", "Destination", Str),
                ("read_only", "ReadOnly", Bool),
                ("propagation_mode", "PropagationMode", Str),
                ("selinux_label", "SELinuxLabel", Str),
            ],
            &[],
        ),
        K::EphemeralDisk => (&[("sticky", "Sticky", Bool), ("migrate", "Migrate", Bool), ("size", "SizeMB", Mb)], &[]),
        K::Logs => (
            &[
                ("max_files", "MaxFiles", Int),
                ("max_file_size", "MaxFileSizeMB", Mb),
                ("disabled", "Disabled", Bool),
                ("enabled", "Enabled", Bool),
            ],
            &[],
        ),
        K::Vault => (
            &[
                ("role", "Role", Str),
                ("cluster", "Cluster", Str),
                ("namespace", "Namespace", Str),
                ("change_mode", "ChangeMode", Str),
                ("change_signal", "ChangeSignal", Str),
                ("env", "Env", Bool),
                ("disable_file", "DisableFile", Bool),
                ("allow_token_expiration", "AllowTokenExpiration", Bool),
                ("policies", "Policies", StrList),
            ],
            &[],
        ),
        K::Consul => {
            (&[("cluster", "Cluster", Str), ("namespace", "Namespace", Str), ("partition", "Partition", Str)], &[])
        }
        K::Identity => (
            &[
                ("name", "Name", Str),
                ("aud", "Audience", StrList),
                ("env", "Env", Bool),
                ("file", "File", Bool),
                ("ttl", "TTL", Dur),
                ("change_mode", "ChangeMode", Str),
                ("change_signal", "ChangeSignal", Str),
                ("service_name", "ServiceName", Str),
                ("filepath", "Filepath", Str),
            ],
            &[],
        ),
        K::Scaling => (
            &[("min", "Min", Int), ("max", "Max", Int), ("enabled", "Enabled", Bool), ("policy", "Policy", Any)],
            &[("policy", "Policy", B::Opaque)],
        ),
        K::Disconnect => (
            &[
                ("lost_after", "LostAfter", Dur),
                ("replace", "Replace", Bool),
                ("stop_on_client_after", "StopOnClientAfter", Dur),
                ("reconcile", "Reconcile", Str),
            ],
            &[],
        ),
        K::DispatchPayload => (&[("file", "File", Str)], &[]),
        K::Action => (&[("command", "Command", Str), ("args", "Args", StrList)], &[]),
    }
}

fn block_name(k: K) -> &'static str {
    match k {
        K::Job => "job",
        K::Group => "group",
        K::Task => "task",
        K::Resources => "resources",
        K::Device => "device",
        K::Numa => "numa",
        K::Network => "network",
        K::Dns => "dns",
        K::Cni => "cni",
        K::Service => "service",
        K::Check => "check",
        K::CheckRestart => "check_restart",
        K::Update => "update",
        K::Migrate => "migrate",
        K::Reschedule => "reschedule",
        K::Restart => "restart",
        K::Lifecycle => "lifecycle",
        K::Template => "template",
        K::ChangeScript => "change_script",
        K::Wait => "wait",
        K::Constraint => "constraint",
        K::Affinity => "affinity",
        K::Spread => "spread",
        K::Periodic => "periodic",
        K::Parameterized => "parameterized",
        K::Artifact => "artifact",
        K::Volume => "volume",
        K::MountOptions => "mount_options",
        K::VolumeMount => "volume_mount",
        K::EphemeralDisk => "ephemeral_disk",
        K::Logs => "logs",
        K::Vault => "vault",
        K::Consul => "consul",
        K::Identity => "identity",
        K::Scaling => "scaling",
        K::Disconnect => "disconnect",
        K::DispatchPayload => "dispatch_payload",
        K::Action => "action",
        K::Weights => "weights",
    }
}

/// Maps the `job "id" { ... }` block to `{"Job": {...}}`.
pub(crate) fn convert_job(job: &BlockNode, errs: &mut Errs, og: &mut Origins) -> Value {
    let id = match job.labels.as_slice() {
        [id] => id.clone(),
        _ => {
            err(errs, &job.span, "a job block needs exactly one label, the job ID, as in job \"example\" { ... }");
            String::new()
        }
    };
    og.at(String::new(), &job.span);
    og.at("ID".into(), &job.span);
    let mut obj = convert_block(K::Job, &job.body, errs, og, "");
    obj.insert("ID".into(), json!(id));
    if !obj.contains_key("Name") {
        og.at("Name".into(), &job.span);
        obj.insert("Name".into(), json!(id));
    }
    if !obj.contains_key("TaskGroups") {
        err(errs, &job.span, format!("job {id:?} needs at least one group block"));
    }
    push_vault_down(&mut obj, og);
    json!({ "Job": Value::Object(obj) })
}

/// Nomad's parser copies a job- or group-level `vault` block into every task that has none.
fn push_vault_down(job: &mut Map<String, Value>, og: &mut Origins) {
    let job_vault = job.remove("Vault");
    if let Some(Value::Array(groups)) = job.get_mut("TaskGroups") {
        for (gi, g) in groups.iter_mut().enumerate() {
            let Some(g) = g.as_object_mut() else { continue };
            let group_path = index_path("TaskGroups", gi);
            let (vault, from) = match g.remove("Vault") {
                Some(v) => (v, field_path(&group_path, "Vault")),
                None => match &job_vault {
                    Some(v) => (v.clone(), "Vault".to_string()),
                    None => continue,
                },
            };
            if let Some(Value::Array(tasks)) = g.get_mut("Tasks") {
                for (ti, t) in tasks.iter_mut().enumerate() {
                    if let Some(t) = t.as_object_mut()
                        && !t.contains_key("Vault")
                    {
                        t.insert("Vault".into(), vault.clone());
                        let task_path = index_path(&field_path(&group_path, "Tasks"), ti);
                        og.copy_tree(&from, &field_path(&task_path, "Vault"));
                    }
                }
            }
            og.remove_tree(&field_path(&group_path, "Vault"));
        }
    }
    og.remove_tree("Vault");
}

fn convert_block(k: K, node: &Node, errs: &mut Errs, og: &mut Origins, path: &str) -> Map<String, Value> {
    let (attrs, blocks) = table(k);
    let mut out = Map::new();
    for a in &node.attrs {
        let Some((_, json_name, conv)) = attrs.iter().find(|(n, _, _)| *n == a.name) else {
            let mut names: Vec<&str> = attrs.iter().map(|(n, _, _)| *n).collect();
            names.extend(blocks.iter().map(|(n, _, _)| *n));
            names.sort();
            names.dedup();
            err(
                errs,
                &a.key_span,
                match closest(&a.name, &names) {
                    Some(near) => format!(
                        "unsupported argument {:?} in a {} block; did you mean {near:?}?",
                        a.name,
                        block_name(k)
                    ),
                    None => format!(
                        "unsupported argument {:?} in a {} block; expected one of: {}",
                        a.name,
                        block_name(k),
                        names.join(", ")
                    ),
                },
            );
            continue;
        };
        if json_name.is_empty() {
            continue; // shorthand, handled below
        }
        if let Some(v) = convert_value(a, *conv, errs) {
            og.at(field_path(path, json_name), &a.key_span);
            out.insert((*json_name).to_string(), v);
        }
    }
    for (hcl_name, json_name, rule) in blocks.iter() {
        let found: Vec<&BlockNode> = node.blocks.iter().filter(|b| b.ty == *hcl_name).collect();
        if found.is_empty() {
            continue;
        }
        if out.contains_key(*json_name) && !json_name.is_empty() {
            err(errs, &found[0].span, format!("{hcl_name} is set both as an argument and as a block"));
            continue;
        }
        let here = field_path(path, json_name);
        if !matches!(rule, B::Special) {
            og.at(here.clone(), &found[0].span);
        }
        match rule {
            B::One(sub) => {
                if found.len() > 1 {
                    err(errs, &found[1].span, format!("only one {hcl_name} block is allowed here"));
                }
                no_labels(found[0], errs);
                out.insert((*json_name).into(), Value::Object(convert_block(*sub, &found[0].body, errs, og, &here)));
            }
            B::Many(sub) => {
                let items = found
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        no_labels(b, errs);
                        let item = index_path(&here, i);
                        og.at(item.clone(), &b.span);
                        Value::Object(convert_block(*sub, &b.body, errs, og, &item))
                    })
                    .collect();
                out.insert((*json_name).into(), Value::Array(items));
            }
            B::Labeled(sub, field) => {
                let mut seen: Vec<String> = Vec::new();
                let mut items = Vec::new();
                for b in &found {
                    let label = one_label(b, errs);
                    if seen.contains(&label) {
                        err(errs, &b.span, format!("{hcl_name} {label:?} is defined more than once"));
                    }
                    seen.push(label.clone());
                    let item = index_path(&here, items.len());
                    og.at(item.clone(), &b.span);
                    og.at(field_path(&item, field), &b.span);
                    let mut obj = Map::new();
                    obj.insert((*field).into(), json!(label));
                    obj.extend(convert_block(*sub, &b.body, errs, og, &item));
                    items.push(Value::Object(obj));
                }
                out.insert((*json_name).into(), Value::Array(items));
            }
            B::Keyed(sub, field) => {
                let mut map = Map::new();
                for b in &found {
                    let label = one_label(b, errs);
                    if map.contains_key(&label) {
                        err(errs, &b.span, format!("{hcl_name} {label:?} is defined more than once"));
                    }
                    let item = index_path(&here, &label);
                    og.at(item.clone(), &b.span);
                    og.at(field_path(&item, field), &b.span);
                    let mut obj = Map::new();
                    obj.insert((*field).into(), json!(label));
                    obj.extend(convert_block(*sub, &b.body, errs, og, &item));
                    map.insert(label, Value::Object(obj));
                }
                out.insert((*json_name).into(), Value::Object(map));
            }
            B::StrMap => {
                let mut map = Map::new();
                for b in &found {
                    for a in &b.body.attrs {
                        match a.val.to_str() {
                            Ok(s) => {
                                og.at(index_path(&here, &a.name), &a.key_span);
                                map.insert(a.name.clone(), json!(s));
                            }
                            Err(m) => err(errs, &a.span, format!("{hcl_name}.{}: {m}", a.name)),
                        }
                    }
                    for inner in &b.body.blocks {
                        err(
                            errs,
                            &inner.span,
                            format!("a {hcl_name} block holds only key = value arguments, not blocks"),
                        );
                    }
                }
                out.insert((*json_name).into(), Value::Object(map));
            }
            B::Opaque => {
                if found.len() > 1 {
                    err(errs, &found[1].span, format!("only one {hcl_name} block is allowed here"));
                }
                out.insert((*json_name).into(), Value::Object(opaque(&found[0].body, og, &here)));
            }
            B::Generic => {
                let v = generic_blocks(hcl_name, &found, og, &here);
                out.insert((*json_name).into(), v);
            }
            B::Special => special_block(k, hcl_name, &found, &mut out, errs, og, path),
        }
    }
    for b in &node.blocks {
        if !blocks.iter().any(|(n, _, _)| *n == b.ty) {
            let mut names: Vec<&str> = blocks.iter().map(|(n, _, _)| *n).collect();
            names.sort();
            err(
                errs,
                &b.span,
                if names.is_empty() {
                    format!("unsupported block {:?}: a {} block takes no blocks", b.ty, block_name(k))
                } else {
                    format!(
                        "unsupported block {:?} in a {} block; expected one of: {}",
                        b.ty,
                        block_name(k),
                        names.join(", ")
                    )
                },
            );
        }
    }
    post_process(k, node, &mut out, errs, og, path);
    out
}

/// The accepted name nearest to a misspelt one, if it is within two edits.
fn closest<'n>(name: &str, names: &[&'n str]) -> Option<&'n str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let cost = usize::from(ca != *cb);
                cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    names.iter().map(|n| (distance(name, n), *n)).filter(|(d, _)| *d <= 2).min().map(|(_, n)| n)
}

fn no_labels(b: &BlockNode, errs: &mut Errs) {
    if !b.labels.is_empty() {
        err(errs, &b.span, format!("a {} block takes no labels", b.ty));
    }
}

fn one_label(b: &BlockNode, errs: &mut Errs) -> String {
    match b.labels.as_slice() {
        [l] => l.clone(),
        _ => {
            err(
                errs,
                &b.span,
                format!("a {} block needs exactly one label, its name, as in {} \"name\" {{ ... }}", b.ty, b.ty),
            );
            b.labels.first().cloned().unwrap_or_default()
        }
    }
}

fn special_block(
    k: K,
    name: &str,
    found: &[&BlockNode],
    out: &mut Map<String, Value>,
    errs: &mut Errs,
    og: &mut Origins,
    path: &str,
) {
    match (k, name) {
        (K::Network, "port") => {
            let (mut reserved, mut dynamic) = (Vec::new(), Vec::new());
            let mut seen: Vec<String> = Vec::new();
            for b in found {
                let label = one_label(b, errs);
                if seen.contains(&label) {
                    err(errs, &b.span, format!("port {label:?} is defined more than once"));
                }
                seen.push(label.clone());
                let mut port = Map::new();
                port.insert("Label".into(), json!(label));
                let mut is_static = false;
                let mut members: Vec<(&str, &Option<Range<usize>>)> = vec![("Label", &b.span)];
                for a in &b.body.attrs {
                    let (key, conv) = match a.name.as_str() {
                        "static" => ("Value", C::Int),
                        "to" => ("To", C::Int),
                        "host_network" => ("HostNetwork", C::Str),
                        "ignore_collision" => ("IgnoreCollision", C::Bool),
                        other => {
                            err(
                                errs,
                                &a.key_span,
                                format!(
                                    "unsupported argument {other:?} in a port block; expected one of: host_network, ignore_collision, static, to"
                                ),
                            );
                            continue;
                        }
                    };
                    if let Some(v) = convert_value(a, conv, errs) {
                        if key == "Value" {
                            is_static = v.as_i64().is_some_and(|p| p > 0);
                        }
                        members.push((key, &a.key_span));
                        port.insert(key.into(), v);
                    }
                }
                for inner in &b.body.blocks {
                    err(errs, &inner.span, "a port block takes no blocks");
                }
                port.entry("Value").or_insert(json!(0));
                port.entry("To").or_insert(json!(0));
                let (list, list_name) =
                    if is_static { (&mut reserved, "ReservedPorts") } else { (&mut dynamic, "DynamicPorts") };
                let list_path = field_path(path, list_name);
                if list.is_empty() {
                    og.at(list_path.clone(), &b.span);
                }
                let item = index_path(&list_path, list.len());
                og.at(item.clone(), &b.span);
                for (key, span) in members {
                    og.at(field_path(&item, key), span);
                }
                list.push(Value::Object(port));
            }
            if !reserved.is_empty() {
                out.insert("ReservedPorts".into(), Value::Array(reserved));
            }
            if !dynamic.is_empty() {
                out.insert("DynamicPorts".into(), Value::Array(dynamic));
            }
        }
        (K::Spread, "target") => {
            let list_path = field_path(path, "SpreadTarget");
            og.at(list_path.clone(), &found[0].span);
            let mut targets = Vec::new();
            for b in found {
                let label = one_label(b, errs);
                let item = index_path(&list_path, targets.len());
                og.at(item.clone(), &b.span);
                og.at(field_path(&item, "Value"), &b.span);
                let mut t = Map::new();
                t.insert("Value".into(), json!(label));
                for a in &b.body.attrs {
                    if a.name == "percent" {
                        if let Some(v) = convert_value(a, C::Int, errs) {
                            og.at(field_path(&item, "Percent"), &a.key_span);
                            t.insert("Percent".into(), v);
                        }
                    } else {
                        err(
                            errs,
                            &a.key_span,
                            format!("unsupported argument {:?} in a spread target; expected percent", a.name),
                        );
                    }
                }
                targets.push(Value::Object(t));
            }
            out.insert("SpreadTarget".into(), Value::Array(targets));
        }
        (K::Task, "identity") => {
            let mut named = Vec::new();
            for b in found {
                no_labels(b, errs);
                let mut sub = Origins::default();
                sub.at(String::new(), &b.span);
                let obj = convert_block(K::Identity, &b.body, errs, &mut sub, "");
                let is_default = obj.get("Name").and_then(Value::as_str).is_none_or(|n| n == "default");
                if is_default {
                    if out.contains_key("Identity") {
                        err(errs, &b.span, "only one identity block without a name (the default identity) is allowed");
                    }
                    og.absorb(sub, &field_path(path, "Identity"));
                    out.insert("Identity".into(), Value::Object(obj));
                } else {
                    let list_path = field_path(path, "Identities");
                    if named.is_empty() {
                        og.at(list_path.clone(), &b.span);
                    }
                    og.absorb(sub, &index_path(&list_path, named.len()));
                    named.push(Value::Object(obj));
                }
            }
            if !named.is_empty() {
                out.insert("Identities".into(), Value::Array(named));
            }
        }
        (K::Task, "scaling") => {
            let list_path = field_path(path, "ScalingPolicies");
            og.at(list_path.clone(), &found[0].span);
            let mut policies = Vec::new();
            for b in found {
                let label = one_label(b, errs);
                if label != "cpu" && label != "mem" {
                    err(errs, &b.span, format!("a task scaling block is labelled \"cpu\" or \"mem\", not {label:?}"));
                }
                let item = index_path(&list_path, policies.len());
                og.at(item.clone(), &b.span);
                og.at(field_path(&item, "Type"), &b.span);
                let mut obj = Map::new();
                obj.insert("Type".into(), json!(format!("vertical_{label}")));
                obj.extend(convert_block(K::Scaling, &b.body, errs, og, &item));
                policies.push(Value::Object(obj));
            }
            out.insert("ScalingPolicies".into(), Value::Array(policies));
        }
        _ => {}
    }
}

/// Fix-ups a kind needs after its table: constraint shorthands, periodic SpecType.
fn post_process(k: K, node: &Node, out: &mut Map<String, Value>, errs: &mut Errs, og: &mut Origins, path: &str) {
    match k {
        K::Constraint | K::Affinity => {
            for a in &node.attrs {
                let operand = a.name.as_str();
                if !matches!(
                    operand,
                    "distinct_hosts"
                        | "distinct_property"
                        | "regexp"
                        | "version"
                        | "semver"
                        | "set_contains"
                        | "set_contains_any"
                        | "set_contains_all"
                ) {
                    continue;
                }
                if out.contains_key("Operand") {
                    err(
                        errs,
                        &a.span,
                        format!(
                            "{operand} = ... is a shorthand for operator = {operand:?}; do not set operator as well"
                        ),
                    );
                    continue;
                }
                out.insert("Operand".into(), json!(operand));
                og.at(field_path(path, "Operand"), &a.key_span);
                match operand {
                    "distinct_hosts" => match a.val.to_bool() {
                        Ok(true) => {
                            og.at(field_path(path, "RTarget"), &a.key_span);
                            out.insert("RTarget".into(), json!("true"));
                        }
                        Ok(false) => {
                            og.remove_tree(&field_path(path, "Operand"));
                            out.remove("Operand");
                        }
                        Err(m) => err(errs, &a.span, format!("distinct_hosts: {m}")),
                    },
                    // distinct_property names the attribute; `value` stays the limit.
                    "distinct_property" => match a.val.to_str() {
                        Ok(s) => {
                            og.at(field_path(path, "LTarget"), &a.key_span);
                            out.insert("LTarget".into(), json!(s));
                        }
                        Err(m) => err(errs, &a.span, format!("distinct_property: {m}")),
                    },
                    _ => match a.val.to_str() {
                        Ok(s) => {
                            og.at(field_path(path, "RTarget"), &a.key_span);
                            out.insert("RTarget".into(), json!(s));
                        }
                        Err(m) => err(errs, &a.span, format!("{operand}: {m}")),
                    },
                }
            }
        }
        K::Periodic if out.contains_key("Spec") || out.contains_key("Specs") => {
            let from = ["Spec", "Specs"].iter().find_map(|f| og.map.get(&field_path(path, f)).copied());
            if let Some(offset) = from {
                og.map.insert(field_path(path, "SpecType"), offset);
            }
            out.insert("SpecType".into(), json!("cron"));
        }
        _ => {}
    }
}

fn is_list_block(name: &str) -> bool {
    matches!(name, "upstreams" | "path" | "listener" | "region" | "link" | "expose_path" | "secret")
}

/// Blocks Nomad types but stead keeps generically: one object, or a list when repeated or
/// when the block is a list by nature. The caller records `path` itself.
fn generic_blocks(ty: &str, found: &[&BlockNode], og: &mut Origins, path: &str) -> Value {
    if found.len() == 1 && !is_list_block(ty) {
        generic_block(found[0], og, path)
    } else {
        Value::Array(
            found
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let item = index_path(path, i);
                    og.at(item.clone(), &b.span);
                    generic_block(b, og, &item)
                })
                .collect(),
        )
    }
}

/// A block Nomad types but stead keeps generically: names to PascalCase, labels kept as `Name`.
fn generic_block(b: &BlockNode, og: &mut Origins, path: &str) -> Value {
    let mut obj = Map::new();
    if let Some(l) = b.labels.first() {
        og.at(field_path(path, "Name"), &b.span);
        obj.insert("Name".into(), json!(l));
    }
    for a in &b.body.attrs {
        let key = pascal(&a.name);
        og.at(field_path(path, &key), &a.key_span);
        obj.insert(key, a.val.to_json());
    }
    let mut types: Vec<&str> = Vec::new();
    for inner in &b.body.blocks {
        if !types.contains(&inner.ty.as_str()) {
            types.push(&inner.ty);
        }
    }
    for ty in types {
        let found: Vec<&BlockNode> = b.body.blocks.iter().filter(|x| x.ty == ty).collect();
        let key = match ty {
            "upstreams" => "Upstreams".to_string(),
            "path" => "Paths".to_string(),
            "listener" => "Listeners".to_string(),
            "region" => "Regions".to_string(),
            "link" => "Links".to_string(),
            "config" => "Config".to_string(),
            other => pascal(other),
        };
        let here = field_path(path, &key);
        og.at(here.clone(), &found[0].span);
        let v = if ty == "config" {
            Value::Object(opaque(&found[0].body, og, &here))
        } else {
            generic_blocks(ty, &found, og, &here)
        };
        obj.insert(key, v);
    }
    Value::Object(obj)
}

/// A block kept as written: arguments by their own names, nested blocks as lists of objects
/// under their type name (labelled blocks nest one level per label), as Nomad hands a driver's
/// `config` to the driver. Its keys are user data, so their paths are `path[key]`.
pub(crate) fn opaque(node: &Node, og: &mut Origins, path: &str) -> Map<String, Value> {
    let mut obj = Map::new();
    for a in &node.attrs {
        og.at(index_path(path, &a.name), &a.key_span);
        obj.insert(a.name.clone(), a.val.to_json());
    }
    for b in &node.blocks {
        let list_path = index_path(path, &b.ty);
        let i = match obj.get(&b.ty) {
            Some(Value::Array(list)) => list.len(),
            _ => {
                og.at(list_path.clone(), &b.span);
                0
            }
        };
        let mut item = index_path(&list_path, i);
        og.at(item.clone(), &b.span);
        for l in &b.labels {
            item = index_path(&item, l);
            og.at(item.clone(), &b.span);
        }
        let mut inner = Value::Object(opaque(&b.body, og, &item));
        for l in b.labels.iter().rev() {
            let mut m = Map::new();
            m.insert(l.clone(), inner);
            inner = Value::Object(m);
        }
        match obj.get_mut(&b.ty) {
            Some(Value::Array(list)) => list.push(inner),
            _ => {
                obj.insert(b.ty.clone(), Value::Array(vec![inner]));
            }
        }
    }
    obj
}

/// snake_case to Nomad's Go-style PascalCase, with Go's initialisms upper-cased.
pub(crate) fn pascal(name: &str) -> String {
    name.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| match p {
            "id" | "ttl" | "tls" | "dns" | "cpu" | "ip" | "url" | "http" | "grpc" | "cni" | "csi" | "mb" | "json"
            | "api" | "acl" | "uri" | "numa" | "ui" | "tcp" | "udp" | "sni" => p.to_uppercase(),
            _ => {
                let mut c = p.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().chain(c).collect(),
                    None => String::new(),
                }
            }
        })
        .collect()
}

fn convert_value(a: &Attr, conv: C, errs: &mut Errs) -> Option<Value> {
    let r: Result<Value, String> = match conv {
        C::Str => a.val.to_str().map(Value::String),
        C::Int => a.val.to_num().and_then(|n| {
            if n.fract() != 0.0 {
                Err(format!("expected a whole number, found {}", a.val.describe()))
            } else {
                Ok(num_to_json(n))
            }
        }),
        C::Bool => a.val.to_bool().map(Value::Bool),
        C::Dur => duration_nanos(&a.val).map(Value::from),
        C::Mb => size_mb(&a.val).map(Value::from),
        C::StrList => match &a.val {
            Val::List(l) => {
                l.iter().map(|v| v.to_str().map(Value::String)).collect::<Result<Vec<_>, _>>().map(Value::Array)
            }
            other => Err(format!("expected a list of strings, found {}", other.describe())),
        },
        C::StrMap => match &a.val {
            Val::Obj(o) => o
                .iter()
                .map(|(k, v)| v.to_str().map(|s| (k.clone(), Value::String(s))).map_err(|m| format!("key {k:?}: {m}")))
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object),
            other => Err(format!("expected a map of strings, found {}", other.describe())),
        },
        C::StrListMap => match &a.val {
            Val::Obj(o) => o
                .iter()
                .map(|(k, v)| match v {
                    Val::List(l) => l
                        .iter()
                        .map(|x| x.to_str().map(Value::String))
                        .collect::<Result<Vec<_>, _>>()
                        .map(|l| (k.clone(), Value::Array(l))),
                    other => other.to_str().map(|s| (k.clone(), Value::Array(vec![Value::String(s)]))),
                })
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object),
            other => Err(format!("expected a map of string lists, found {}", other.describe())),
        },
        C::Any => Ok(a.val.to_json()),
    };
    match r {
        Ok(v) => Some(v),
        Err(m) => {
            err(errs, &a.span, format!("{}: {m}", a.name));
            None
        }
    }
}

/// Go's `time.ParseDuration` ("1h30m", "500ms", "1.5s", "-2m"), as the model parses it;
/// a number is nanoseconds.
pub(crate) fn duration_nanos(v: &Val) -> Result<i64, String> {
    match v {
        Val::Num(n) if n.fract() == 0.0 => Ok(*n as i64),
        Val::Str(s) => s.trim().parse::<stead_model::Nanos>().map(|n| n.0),
        other => Err(format!("expected a duration such as \"30s\" or \"5m\", found {}", other.describe())),
    }
}

/// A size in MB: a number (already MB), a numeric string, or a string with a unit
/// ("512MB", "1GB", "1GiB", "512MiB"; decimal and binary units both count as MB-sized steps
/// the way Nomad's `humanize` parsing does: 1 GB = 1000 MB, 1 GiB = 1024 MiB).
pub(crate) fn size_mb(v: &Val) -> Result<i64, String> {
    match v {
        Val::Num(n) if n.fract() == 0.0 => Ok(*n as i64),
        Val::Str(s) => {
            let t = s.trim();
            if let Ok(n) = t.parse::<i64>() {
                return Ok(n);
            }
            let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
            let num: f64 = t[..split].parse().map_err(|_| {
                format!("invalid size {s:?}; expected a number of MB or a size such as \"512MB\" or \"1GB\"")
            })?;
            let bytes = match t[split..].trim().to_ascii_lowercase().as_str() {
                "b" => 1.0,
                "kb" | "k" => 1e3,
                "kib" => 1024.0,
                "mb" | "m" => 1e6,
                "mib" => 1024.0 * 1024.0,
                "gb" | "g" => 1e9,
                "gib" => 1024.0 * 1024.0 * 1024.0,
                "tb" | "t" => 1e12,
                "tib" => 1024f64.powi(4),
                _ => {
                    return Err(format!(
                        "invalid size {s:?}; expected a number of MB or a size such as \"512MB\" or \"1GB\""
                    ));
                }
            };
            let per_mb = if t[split..].to_ascii_lowercase().contains('i') { 1024.0 * 1024.0 } else { 1e6 };
            Ok((num * bytes / per_mb).round() as i64)
        }
        other => Err(format!("expected a size in MB, found {}", other.describe())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        let ok = [
            (Val::Str("30s".into()), 30_000_000_000),
            (Val::Str("1h30m".into()), 5_400_000_000_000),
            (Val::Str("1.5h".into()), 5_400_000_000_000),
            (Val::Str("500ms".into()), 500_000_000),
            (Val::Str("2us".into()), 2_000),
            (Val::Str("3µs".into()), 3_000),
            (Val::Str("7ns".into()), 7),
            (Val::Str("-2m".into()), -120_000_000_000),
            (Val::Str("0".into()), 0),
            (Val::Num(1500.0), 1500),
        ];
        for (v, want) in ok {
            assert_eq!(duration_nanos(&v), Ok(want), "{v:?}");
        }
        for bad in ["", "5", "5 s", "1d", "s", "1h-2m", "--1s"] {
            assert!(duration_nanos(&Val::Str(bad.into())).is_err(), "{bad:?} should be rejected");
        }
        assert!(duration_nanos(&Val::Bool(true)).is_err());
    }

    #[test]
    fn sizes_are_mb() {
        let ok = [
            (Val::Num(256.0), 256),
            (Val::Str("512".into()), 512),
            (Val::Str("1GB".into()), 1000),
            (Val::Str("1GiB".into()), 1024),
            (Val::Str("512MiB".into()), 512),
            (Val::Str("300 MB".into()), 300),
        ];
        for (v, want) in ok {
            assert_eq!(size_mb(&v), Ok(want), "{v:?}");
        }
        assert!(size_mb(&Val::Str("lots".into())).is_err());
        assert!(size_mb(&Val::Str("5 parsecs".into())).is_err());
    }

    #[test]
    fn pascal_case_uses_go_initialisms() {
        assert_eq!(pascal("destination_name"), "DestinationName");
        assert_eq!(pascal("local_bind_port"), "LocalBindPort");
        assert_eq!(pascal("tls_server_name"), "TLSServerName");
        assert_eq!(pascal("service_id"), "ServiceID");
        assert_eq!(pascal("ui"), "UI");
    }
}
