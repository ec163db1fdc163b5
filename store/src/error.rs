//! One error type for every engine, carrying FoundationDB's error codes and the same
//! predicates (`is_retryable`, `maybe_committed`) so retry logic is written once.

use std::fmt;
use std::path::PathBuf;

/// FoundationDB error codes the store produces or understands. `Other` keeps any code a
/// FoundationDB cluster returns that has no name here, so nothing is lost in translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    TransactionTooOld,
    FutureVersion,
    NotCommitted,
    CommitUnknownResult,
    TransactionCancelled,
    TransactionTimedOut,
    TooManyWatches,
    AccessedUnreadable,
    OperationCancelled,
    IoError,
    ClientInvalidOperation,
    KeyOutsideLegalRange,
    InvertedRange,
    UsedDuringCommit,
    TransactionTooLarge,
    KeyTooLarge,
    ValueTooLarge,
    Other(i32),
}

/// (code, name) for every named variant; the single table behind `code()` and `from_code()`.
const CODES: &[(ErrorCode, i32, &str)] = &[
    (ErrorCode::TransactionTooOld, 1007, "transaction_too_old"),
    (ErrorCode::FutureVersion, 1009, "future_version"),
    (ErrorCode::NotCommitted, 1020, "not_committed"),
    (ErrorCode::CommitUnknownResult, 1021, "commit_unknown_result"),
    (ErrorCode::TransactionCancelled, 1025, "transaction_cancelled"),
    (ErrorCode::TransactionTimedOut, 1031, "transaction_timed_out"),
    (ErrorCode::TooManyWatches, 1032, "too_many_watches"),
    (ErrorCode::AccessedUnreadable, 1036, "accessed_unreadable"),
    (ErrorCode::OperationCancelled, 1101, "operation_cancelled"),
    (ErrorCode::IoError, 1510, "io_error"),
    (ErrorCode::ClientInvalidOperation, 2000, "client_invalid_operation"),
    (ErrorCode::KeyOutsideLegalRange, 2004, "key_outside_legal_range"),
    (ErrorCode::InvertedRange, 2005, "inverted_range"),
    (ErrorCode::UsedDuringCommit, 2017, "used_during_commit"),
    (ErrorCode::TransactionTooLarge, 2101, "transaction_too_large"),
    (ErrorCode::KeyTooLarge, 2102, "key_too_large"),
    (ErrorCode::ValueTooLarge, 2103, "value_too_large"),
];

impl ErrorCode {
    pub fn code(self) -> i32 {
        match self {
            ErrorCode::Other(code) => code,
            named => CODES.iter().find(|(c, _, _)| *c == named).map_or(4000, |(_, n, _)| *n),
        }
    }

    pub fn from_code(code: i32) -> ErrorCode {
        CODES.iter().find(|(_, n, _)| *n == code).map_or(ErrorCode::Other(code), |(c, _, _)| *c)
    }

    pub fn name(self) -> &'static str {
        CODES.iter().find(|(c, _, _)| *c == self).map_or("unknown_error", |(_, _, name)| name)
    }

    /// The commit may have been applied even though the caller saw an error
    /// (FoundationDB's `fdb_error_predicate(MAYBE_COMMITTED)`).
    pub fn maybe_committed(self) -> bool {
        matches!(self.code(), 1021 | 1039)
    }

    /// Retrying cannot apply the transaction twice: it certainly did not commit.
    pub fn retryable_not_committed(self) -> bool {
        matches!(self.code(), 1007 | 1009 | 1020 | 1037 | 1038 | 1042 | 1078 | 1051 | 1213 | 1235 | 1242)
    }

    pub fn is_retryable(self) -> bool {
        self.maybe_committed() || self.retryable_not_committed()
    }
}

/// A store error: a FoundationDB code plus, where useful, what the store was doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    context: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode) -> Error {
        Error { code, context: None }
    }

    pub fn with_context(code: ErrorCode, context: impl Into<String>) -> Error {
        Error { code, context: Some(context.into()) }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    pub fn is_retryable(&self) -> bool {
        self.code.is_retryable()
    }

    pub fn maybe_committed(&self) -> bool {
        self.code.maybe_committed()
    }

    pub fn retryable_not_committed(&self) -> bool {
        self.code.retryable_not_committed()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code.name(), self.code.code())?;
        if let Some(context) = &self.context {
            write!(f, ": {context}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Lets `Database::run` tell a store error (maybe retryable) from the caller's own error type.
pub trait StoreError: From<Error> {
    fn as_store_error(&self) -> Option<&Error>;
}

impl StoreError for Error {
    fn as_store_error(&self) -> Option<&Error> {
        Some(self)
    }
}

/// Why a store could not be opened. Always names the path it was looking at.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{path}: not a stead store data directory (it is not empty and has no {marker} file: found {found}); \
         choose an empty or new directory, or the directory a stead store created"
    )]
    Foreign { path: PathBuf, marker: &'static str, found: String },
    #[error("{path}: corrupt stead store: {reason}; restore the directory from a backup or move it aside")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: stead store format {found} is not supported by this release (it reads format {supported})")]
    UnsupportedFormat { path: PathBuf, found: String, supported: u32 },
    #[error("{path}: cannot open the store: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: the storage library refused to open the store: {reason}")]
    Storage { path: PathBuf, reason: String },
    #[error("{0}")]
    Unsupported(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_predicates_match_foundationdb() {
        for (code, number, _) in CODES {
            assert_eq!(ErrorCode::from_code(*number), *code);
            assert_eq!(code.code(), *number);
        }
        assert!(ErrorCode::NotCommitted.is_retryable());
        assert!(!ErrorCode::NotCommitted.maybe_committed());
        assert!(ErrorCode::CommitUnknownResult.is_retryable());
        assert!(ErrorCode::CommitUnknownResult.maybe_committed());
        assert!(ErrorCode::TransactionTooOld.retryable_not_committed());
        assert!(!ErrorCode::TransactionTimedOut.is_retryable());
        assert!(!ErrorCode::KeyTooLarge.is_retryable());
        assert_eq!(ErrorCode::from_code(1234), ErrorCode::Other(1234));
        assert_eq!(
            Error::with_context(ErrorCode::KeyTooLarge, "key of 10001 bytes").to_string(),
            "key_too_large (2102): key of 10001 bytes"
        );
    }
}
