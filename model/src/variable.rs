//! The variable record (`/v1/var/:path`): a small map of secrets at a path in a namespace.

use serde::{Deserialize, Serialize};

use super::common::{Extra, StringMap};

/// Largest encoded `Items`, in bytes.
pub const VARIABLE_ITEMS_SIZE_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Variable {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub namespace: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub path: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub modify_index: u64,
    /// Unix nanoseconds.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_time: i64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub modify_time: i64,
    /// Empty in metadata listings.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub items: StringMap,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub lock: Option<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Whether `path` is a valid variable path: 1..=128 of `[a-zA-Z0-9-_~/]`, not starting with `/`.
pub fn is_valid_variable_path(path: &str) -> bool {
    (1..=128).contains(&path.len())
        && !path.starts_with('/')
        && path.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '~' | '/'))
}
