//! The namespace record.

use serde::{Deserialize, Serialize};

use super::common::{Extra, StringMap};

/// The namespace every cluster has.
pub const DEFAULT_NAMESPACE: &str = "default";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Namespace {
    pub name: String,
    pub description: String,
    pub quota: String,
    pub meta: StringMap,
    pub capabilities: Option<serde_json::Value>,
    pub node_pool_configuration: Option<serde_json::Value>,
    pub create_index: u64,
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}
