//! `constraint`, `affinity` and `spread` blocks.

use serde::{Deserialize, Serialize};

use super::common::Extra;

/// Operators a `constraint` accepts (`Operand` in the JSON).
pub const CONSTRAINT_OPERANDS: &[&str] = &[
    "=",
    "==",
    "is",
    "!=",
    "not",
    ">",
    ">=",
    "<",
    "<=",
    "distinct_hosts",
    "distinct_property",
    "regexp",
    "set_contains",
    "set_contains_all",
    "set_contains_any",
    "version",
    "semver",
    "is_set",
    "is_not_set",
];

/// Operators an `affinity` accepts.
pub const AFFINITY_OPERANDS: &[&str] = &[
    "=",
    "==",
    "is",
    "!=",
    "not",
    ">",
    ">=",
    "<",
    "<=",
    "regexp",
    "set_contains",
    "set_contains_all",
    "set_contains_any",
    "version",
    "semver",
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Constraint {
    #[serde(rename = "LTarget")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub l_target: String,
    #[serde(rename = "RTarget")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub r_target: String,
    #[serde(rename = "Operand")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub operand: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Affinity {
    #[serde(rename = "LTarget")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub l_target: String,
    #[serde(rename = "RTarget")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub r_target: String,
    #[serde(rename = "Operand")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub operand: String,
    /// −100..=100, not 0; canonicalized to 50.
    #[serde(rename = "Weight")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub weight: Option<i32>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Spread {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub attribute: String,
    /// 0..=100; canonicalized to 50 as Nomad's API does.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub weight: Option<i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub spread_target: Vec<SpreadTarget>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SpreadTarget {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub value: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub percent: i32,
    #[serde(flatten)]
    pub extra: Extra,
}
