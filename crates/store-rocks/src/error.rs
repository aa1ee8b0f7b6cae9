//! Errors of opening a data directory, and the mapping of RocksDB errors to `StoreError`.

use std::path::PathBuf;

use ostiary_store::StoreError;

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The directory does not exist (or is empty) and creating it was not requested.
    #[error("data directory `{0}` does not exist or holds no datastore")]
    Missing(PathBuf),
    /// The directory holds files but no Ostiary datastore: no store format version, or
    /// none of its column families (a foreign directory, or a damaged manifest).
    #[error(
        "data directory `{0}` is not an ostiary datastore or is damaged (no store format version)"
    )]
    NotADatastore(PathBuf),
    /// The directory was written by a newer Ostiary with a store format this build cannot
    /// read.
    #[error(
        "data directory `{path}` has store format {found}, newer than the supported format {supported}; upgrade ostiary"
    )]
    NewerFormat {
        /// The directory.
        path: PathBuf,
        /// The format version found on disk.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// The directory's files are damaged.
    #[error("data directory `{path}` is corrupted: {reason}")]
    Corrupted {
        /// The directory.
        path: PathBuf,
        /// What is wrong, as the storage engine reports it.
        reason: String,
    },
    /// The directory could not be read or written (permissions, a lock held by another
    /// process, disk full).
    #[error("cannot open data directory `{path}`")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A corrupt-data error for stored bytes that do not decode.
pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Internal(format!("corrupt stored data: {what}"))
}

/// Maps a RocksDB error: corruption is `Internal` (retrying will not help), anything else
/// is `Unavailable`.
pub(crate) fn storage(err: rocksdb::Error) -> StoreError {
    match err.kind() {
        rocksdb::ErrorKind::Corruption => corrupt(&err.into_string()),
        _ => StoreError::Unavailable(Box::new(err)),
    }
}
