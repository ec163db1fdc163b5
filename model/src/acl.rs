//! ACL records: policies (named rule sets) and tokens.

use serde::{Deserialize, Serialize};

use super::common::{Extra, string_enum};
use super::duration::Nanos;

string_enum!(
    AclTokenType {
        Client = "client",
        Management = "management",
    }
);

/// The policy applied to requests without a token, when it exists.
pub const ANONYMOUS_POLICY_NAME: &str = "anonymous";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AclPolicy {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub name: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub description: String,
    /// The rules as submitted (HCL or JSON text); parsed by the ACL code.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub rules: String,
    #[serde(rename = "JobACL")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_acl: Option<JobAcl>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Attaches a policy to the workload identities of a job (or group or task).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobAcl {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub namespace: String,
    #[serde(rename = "JobID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub job_id: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub group: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub task: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AclToken {
    #[serde(rename = "AccessorID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub accessor_id: String,
    /// The bearer credential: never log it, omit it from listings.
    #[serde(rename = "SecretID")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub secret_id: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub name: String,
    #[serde(rename = "Type")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub token_type: AclTokenType,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub policies: Vec<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub roles: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub global: bool,
    /// RFC 3339.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_time: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub expiration_time: Option<String>,
    #[serde(rename = "ExpirationTTL")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub expiration_ttl: Nanos,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub create_index: u64,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

impl AclToken {
    pub fn is_management(&self) -> bool {
        self.token_type == AclTokenType::Management
    }
}
