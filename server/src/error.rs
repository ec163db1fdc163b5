//! What server operations fail with.

use stead_store::schema::SchemaError;
use stead_store::{Error, StoreError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ServerError {
    /// A store or schema failure; store errors inside may be retryable.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A check-index (`EnforceIndex`, `-check-index`) did not match.
    #[error("{0}")]
    Conflict(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (what and where are in the message).
    #[error("{0}")]
    Invalid(String),
    /// The caller's credential (a node's secret) does not match.
    #[error("{0}")]
    Unauthorized(String),
    /// The worker's lease on the job's evaluation was taken over: another worker owns it now.
    #[error("the lease on job {job} is no longer held by this worker (expired and claimed by another)")]
    LeaseLost { job: String },
    /// The lease on a server duty is no longer held by this server.
    #[error("the lease on duty {duty} is no longer held by this server")]
    DutyLost { duty: String },
    /// The job changed since the snapshot the plan was computed on.
    #[error("job {job} changed since the plan's snapshot (JobModifyIndex {planned} → {stored})")]
    JobChanged { job: String, planned: u64, stored: u64 },
    /// Something stored is not what this release writes.
    #[error("corrupt {what}: {reason}")]
    Corrupt { what: String, reason: String },
}

impl From<Error> for ServerError {
    fn from(e: Error) -> Self {
        ServerError::Schema(SchemaError::Store(e))
    }
}

impl StoreError for ServerError {
    fn as_store_error(&self) -> Option<&Error> {
        match self {
            ServerError::Schema(e) => e.as_store_error(),
            _ => None,
        }
    }
}

pub type Result<T, E = ServerError> = std::result::Result<T, E>;
