//! The namespace record.

use serde::{Deserialize, Serialize};

use super::common::{Extra, StringMap};

/// The namespace every cluster has.
pub const DEFAULT_NAMESPACE: &str = "default";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Namespace {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub name: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub description: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub quota: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub meta: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub capabilities: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub node_pool_configuration: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}
