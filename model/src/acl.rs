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
    pub name: String,
    pub description: String,
    /// The rules as submitted (HCL or JSON text); parsed by the ACL code.
    pub rules: String,
    #[serde(rename = "JobACL")]
    pub job_acl: Option<JobAcl>,
    pub create_index: u64,
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Attaches a policy to the workload identities of a job (or group or task).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobAcl {
    pub namespace: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub group: String,
    pub task: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AclToken {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    /// The bearer credential: never log it, omit it from listings.
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub name: String,
    #[serde(rename = "Type")]
    pub token_type: AclTokenType,
    pub policies: Vec<String>,
    pub roles: Vec<serde_json::Value>,
    pub global: bool,
    /// RFC 3339.
    pub create_time: String,
    pub expiration_time: Option<String>,
    #[serde(rename = "ExpirationTTL")]
    pub expiration_ttl: Nanos,
    pub create_index: u64,
    pub modify_index: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

impl AclToken {
    pub fn is_management(&self) -> bool {
        self.token_type == AclTokenType::Management
    }
}
