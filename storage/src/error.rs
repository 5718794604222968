//! The storage error type.

/// Why a storage operation failed. Variants name the cause, so the server
/// can tell "try again later" from "this data is damaged".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing database cannot be reached or refused the operation
    /// (I/O error, disk full, connection lost). Retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Data read back from the store is not what was written (bad encoding,
    /// missing chunk). Never retried silently.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The store is shutting down and accepts no more work.
    #[error("store is closed")]
    Closed,
    /// A unique value (an e-mail, a membership) already exists.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The record to change does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The change would break an invariant the store keeps, named by a
    /// stable code (e.g. `last_owner`).
    #[error("constraint violated: {0}")]
    Constraint(&'static str),
    /// The document was deleted for good (its template is gone, see
    /// [`crate::DocStore::tombstone`]): nothing may be stored for it, and
    /// there is nothing to load.
    #[error("document `{0}` was deleted")]
    Deleted(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// Result alias used throughout this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
