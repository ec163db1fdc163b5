//! `periodic` and `parameterized` job blocks.

use serde::{Deserialize, Serialize};

use super::common::{Extra, string_enum};

string_enum!(
    /// `parameterized.payload`.
    PayloadRequirement {
        Optional = "optional",
        Required = "required",
        Forbidden = "forbidden",
    }
);

/// `periodic` block (`PeriodicConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PeriodicConfig {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub enabled: Option<bool>,
    /// Legacy single expression (`cron`), kept alongside `Specs`.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub spec: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub specs: Vec<String>,
    /// Only `cron`.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub spec_type: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub prohibit_overlap: Option<bool>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub time_zone: String,
    #[serde(flatten)]
    pub extra: Extra,
}

impl PeriodicConfig {
    /// Every cron expression: `Specs` plus the legacy `Spec` if set.
    pub fn all_specs(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.spec.as_str()).filter(|s| !s.is_empty()).chain(self.specs.iter().map(String::as_str))
    }
}

/// `parameterized` block (`ParameterizedJobConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ParameterizedJobConfig {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub payload: Option<PayloadRequirement>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub meta_required: Vec<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub meta_optional: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Largest dispatch payload Nomad accepts, in bytes.
pub const DISPATCH_PAYLOAD_SIZE_MAX: usize = 16 * 1024;
