//! `StoreError`, the one error type every datastore returns.

use ostiary_types::{RelationshipKey, Revision, TypesError};

/// Errors a datastore returns; callers branch on the variant, never on the text.
///
/// Each variant says what the caller can do: fix the request (`AlreadyExists`,
/// `PreconditionFailed`, `InvalidArgument`, `InvalidRecordNamespace`), pick another revision (`RevisionExpired`,
/// `RevisionInFuture`), retry (`Conflict`, `Unavailable`) or give up (`Internal`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The revision is older than the garbage-collection window: its data may be gone.
    /// The server maps this to `OutOfRange`; the client should retry at a newer revision.
    #[error("revision `{0}` is older than the garbage-collection window")]
    RevisionExpired(Revision),
    /// The revision has not been committed yet (it is newer than the head revision).
    #[error("revision `{0}` is newer than the newest committed revision")]
    RevisionInFuture(Revision),
    /// A CREATE named a relationship that already exists (and has not expired).
    #[error("relationship `{0}` already exists")]
    AlreadyExists(RelationshipKey),
    /// A write precondition did not hold; the text describes the precondition.
    #[error("unable to satisfy write precondition: {0}")]
    PreconditionFailed(String),
    /// A request the datastore cannot run as given (an invalid filter, a zero limit).
    #[error("invalid datastore request: {0}")]
    InvalidArgument(#[from] TypesError),
    /// A record namespace name breaks the rule of
    /// [`RecordNamespace`](crate::RecordNamespace).
    #[error("invalid record namespace `{0}`")]
    InvalidRecordNamespace(String),
    /// The write conflicted with a concurrent transaction; retrying may succeed.
    ///
    /// Backends that serialize writers never return it; optimistic backends (PostgreSQL,
    /// serializable transactions) do after their own retries run out.
    #[error("write conflicted with a concurrent transaction")]
    Conflict,
    /// The body of a read-write transaction gave up; nothing was written.
    ///
    /// The boxed error is the body's own reason.
    /// [`DatastoreExt::read_write_with`](crate::DatastoreExt::read_write_with) uses this to
    /// carry a caller-defined error through the backend.
    #[error("transaction aborted by its caller")]
    Aborted(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The datastore cannot be reached or failed an I/O operation; retrying may succeed.
    #[error("datastore unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Stored data is corrupt or an internal invariant broke: a bug or disk damage.
    #[error("internal datastore error: {0}")]
    Internal(String),
}

impl StoreError {
    /// Reports whether retrying the same operation may succeed (`Conflict`, `Unavailable`).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Conflict | Self::Unavailable(_))
    }
}
