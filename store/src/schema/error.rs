use crate::error::{Error, StoreError};

/// What typed access can fail with. Every variant but `Store` names the record kind and key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SchemaError {
    /// The store refused an operation; may be retryable (`Database::run` retries it).
    #[error(transparent)]
    Store(#[from] Error),
    #[error("cannot encode {kind} {key}: {reason}")]
    Encode { kind: &'static str, key: String, reason: String },
    #[error("cannot decode {kind} {key}: {reason}")]
    Decode { kind: &'static str, key: String, reason: String },
    /// The keys of a record or index entry are not what this layer writes (a missing part,
    /// a missing version, an index entry pointing nowhere, a key that is not a tuple).
    #[error("corrupt {kind} {key}: {reason}")]
    Corrupt { kind: &'static str, key: String, reason: String },
    /// A record larger than `RECORD_BYTES_MAX` encoded: it would not fit a transaction
    /// comfortably. Store large content out of the record (or in several records).
    #[error("{kind} {key} encodes to {size} bytes, over the limit of {max} bytes for one record")]
    RecordTooLarge { kind: &'static str, key: String, size: usize, max: usize },
    /// A primary key or index entry over the store's key size limit.
    #[error("{kind} {key}: key of {size} bytes is over the limit of {max} bytes")]
    KeyTooLarge { kind: &'static str, key: String, size: usize, max: usize },
    /// A continuation that does not belong to the range being read.
    #[error("continuation does not belong to this {kind} listing: start again without one")]
    BadContinuation { kind: &'static str },
}

impl StoreError for SchemaError {
    fn as_store_error(&self) -> Option<&Error> {
        match self {
            SchemaError::Store(error) => Some(error),
            _ => None,
        }
    }
}

impl SchemaError {
    /// The store error inside, if this is one.
    pub fn store_error(&self) -> Option<&Error> {
        self.as_store_error()
    }
}
