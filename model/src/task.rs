//! The `task` block and the blocks only tasks have: `lifecycle`, `template`, `artifact`,
//! `logs`, `dispatch_payload`, `volume_mount`.

use serde::{Deserialize, Serialize};

use super::common::{Extra, OpaqueMap, StringMap, string_enum};
use super::duration::Nanos;
use super::placement::{Affinity, Constraint};
use super::policy::RestartPolicy;
use super::resources::Resources;
use super::service::Service;

string_enum!(
    /// `lifecycle.hook`.
    LifecycleHook {
        Prestart = "prestart",
        Poststart = "poststart",
        Poststop = "poststop",
    }
);

string_enum!(
    /// `template.change_mode`.
    TemplateChangeMode {
        Noop = "noop",
        Restart = "restart",
        Signal = "signal",
        Script = "script",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Task {
    pub name: String,
    pub driver: String,
    pub user: String,
    pub lifecycle: Option<Lifecycle>,
    /// The driver's own configuration, opaque to the server.
    pub config: OpaqueMap,
    pub constraints: Vec<Constraint>,
    pub affinities: Vec<Affinity>,
    pub env: StringMap,
    pub services: Vec<Service>,
    pub resources: Option<Resources>,
    pub restart_policy: Option<RestartPolicy>,
    pub meta: StringMap,
    pub kill_timeout: Option<Nanos>,
    pub log_config: Option<LogConfig>,
    pub artifacts: Vec<Artifact>,
    /// Kept verbatim; stead does not act on Vault yet.
    pub vault: Option<serde_json::Value>,
    /// Kept verbatim; stead does not act on Consul yet.
    pub consul: Option<serde_json::Value>,
    pub templates: Vec<Template>,
    pub dispatch_payload: Option<DispatchPayloadConfig>,
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(rename = "CSIPluginConfig")]
    pub csi_plugin_config: Option<serde_json::Value>,
    pub leader: bool,
    pub shutdown_delay: Nanos,
    pub kill_signal: String,
    pub kind: String,
    pub identity: Option<serde_json::Value>,
    pub identities: Vec<serde_json::Value>,
    pub actions: Vec<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Task {
    /// A main task has no lifecycle hook.
    pub fn is_main(&self) -> bool {
        self.lifecycle.as_ref().is_none_or(|l| l.hook.is_unset())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Lifecycle {
    pub hook: LifecycleHook,
    pub sidecar: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Task `logs` block (`LogConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct LogConfig {
    pub max_files: Option<i32>,
    #[serde(rename = "MaxFileSizeMB")]
    pub max_file_size_mb: Option<i32>,
    pub disabled: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `artifact` block (go-getter download).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Artifact {
    pub getter_source: String,
    pub getter_options: StringMap,
    pub getter_headers: StringMap,
    /// `any` | `file` | `dir`.
    pub getter_mode: String,
    pub relative_dest: String,
    pub chown: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Values `artifact.mode` accepts.
pub const ARTIFACT_MODES: &[&str] = &["any", "file", "dir"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Template {
    pub source_path: String,
    pub dest_path: String,
    pub embedded_tmpl: String,
    pub change_mode: Option<TemplateChangeMode>,
    pub change_signal: String,
    pub change_script: Option<ChangeScript>,
    pub splay: Option<Nanos>,
    pub perms: String,
    pub uid: Option<i32>,
    pub gid: Option<i32>,
    pub left_delim: String,
    pub right_delim: String,
    pub envvars: bool,
    pub wait: Option<WaitConfig>,
    pub err_missing_key: bool,
    pub once: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ChangeScript {
    pub command: String,
    pub args: Vec<String>,
    pub timeout: Option<Nanos>,
    pub fail_on_error: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct WaitConfig {
    pub min: Option<Nanos>,
    pub max: Option<Nanos>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `dispatch_payload { file = "x" }`: where a dispatched payload is written (under `local/`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DispatchPayloadConfig {
    pub file: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeMount {
    pub volume: String,
    pub destination: String,
    pub read_only: bool,
    /// `private` | `host-to-task` | `bidirectional`.
    pub propagation_mode: String,
    #[serde(rename = "SELinuxLabel")]
    pub selinux_label: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Values `volume_mount.propagation_mode` accepts.
pub const PROPAGATION_MODES: &[&str] = &["private", "host-to-task", "bidirectional"];
