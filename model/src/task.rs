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
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub name: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub driver: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub user: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub lifecycle: Option<Lifecycle>,
    /// The driver's own configuration, opaque to the server.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub config: OpaqueMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub constraints: Vec<Constraint>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub affinities: Vec<Affinity>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub env: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub services: Vec<Service>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub resources: Option<Resources>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub meta: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub kill_timeout: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub log_config: Option<LogConfig>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub artifacts: Vec<Artifact>,
    /// Kept verbatim; stead does not act on Vault yet.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub vault: Option<serde_json::Value>,
    /// Kept verbatim; stead does not act on Consul yet.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub consul: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub templates: Vec<Template>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub dispatch_payload: Option<DispatchPayloadConfig>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(rename = "CSIPluginConfig")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub csi_plugin_config: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub leader: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub shutdown_delay: Nanos,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub kill_signal: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub kind: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub identity: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub identities: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
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
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub hook: LifecycleHook,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub sidecar: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Task `logs` block (`LogConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub max_files: Option<i32>,
    #[serde(rename = "MaxFileSizeMB")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub max_file_size_mb: Option<i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub disabled: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `artifact` block (go-getter download).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Artifact {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub getter_source: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub getter_options: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub getter_headers: StringMap,
    /// `any` | `file` | `dir`.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub getter_mode: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub relative_dest: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub chown: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Values `artifact.mode` accepts.
pub const ARTIFACT_MODES: &[&str] = &["any", "file", "dir"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Template {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub source_path: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub dest_path: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub embedded_tmpl: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub change_mode: Option<TemplateChangeMode>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub change_signal: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub change_script: Option<ChangeScript>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub splay: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub perms: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub uid: Option<i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub gid: Option<i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub left_delim: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub right_delim: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub envvars: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub wait: Option<WaitConfig>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub err_missing_key: bool,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub once: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ChangeScript {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub command: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub timeout: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub fail_on_error: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct WaitConfig {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub min: Option<Nanos>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub max: Option<Nanos>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `dispatch_payload { file = "x" }`: where a dispatched payload is written (under `local/`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DispatchPayloadConfig {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub file: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeMount {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub volume: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub destination: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub read_only: bool,
    /// `private` | `host-to-task` | `bidirectional`.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub propagation_mode: String,
    #[serde(rename = "SELinuxLabel")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub selinux_label: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Values `volume_mount.propagation_mode` accepts.
pub const PROPAGATION_MODES: &[&str] = &["private", "host-to-task", "bidirectional"];
