//! `Datastore`: revisions, snapshots, read-write transactions, the change feed and garbage
//! collection; its options; and `DatastoreExt`, the conveniences built on it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ostiary_types::{RelationshipFilter, Revision, TenantId};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::{
    Clock, Committed, DeleteOutcome, Precondition, Record, RecordNamespace, RelationshipUpdate,
    RevisionChanges, Snapshot, StoreError, SystemClock, WriteTxn,
};

/// The body of a read-write transaction, as [`Datastore::read_write`] takes it.
pub type TxnBody<'a> = dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError> + 'a;

/// A multi-tenant, multi-version store of relationships and schemas.
///
/// The trait is object-safe: the server holds an `Arc<dyn Datastore>` and picks the backend
/// at startup. Every method is synchronous; async callers run writes and garbage collection
/// on a blocking thread. Reads go through a [`Snapshot`], obtained once per request.
///
/// # Revisions
///
/// Every committed [`Datastore::read_write`] gets a revision strictly greater than every
/// earlier one, across all tenants (one global sequence, starting after
/// [`Revision::ZERO`], the empty store). A read at revision `R` sees exactly the
/// transactions committed at or before `R`. Each revision records its commit time from the
/// datastore's [`Clock`] (never earlier than the previous revision's).
///
/// # Garbage collection window
///
/// The *horizon* is the newest revision committed at or before `now - gc_window` (or
/// [`Revision::ZERO`] if there is none). Revisions at or after the horizon are readable;
/// older ones fail with [`StoreError::RevisionExpired`], whether or not garbage collection
/// has run yet. The horizon never moves backwards, even if the clock does. Head is always
/// readable, however old, because it is at or after the horizon.
///
/// # Implementing
///
/// A backend must pass `ostiary-store-conformance`. Nothing here assumes a key-value
/// engine: a PostgreSQL backend maps revisions to transaction ids or a sequence,
/// [`Snapshot`] to a repeatable-read transaction or `WHERE created <= R AND (deleted > R
/// OR deleted IS NULL)`, and [`Datastore::read_write`] to a serializable transaction whose
/// body it may run again on a serialization failure (hence `FnMut`).
pub trait Datastore: Send + Sync + fmt::Debug {
    /// Returns the newest committed revision ([`Revision::ZERO`] for an empty store).
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn head_revision(&self) -> Result<Revision, StoreError>;

    /// Returns a slightly stale revision that many requests share, for SpiceDB's
    /// `minimize_latency` consistency (it keeps caches warm).
    ///
    /// It is the newest revision committed at or before `now` rounded down to a multiple of
    /// [`DatastoreOptions::quantization`] (head itself if the quantization is zero), and
    /// never older than the horizon.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn optimized_revision(&self) -> Result<Revision, StoreError>;

    /// Checks that `revision` can be read now.
    ///
    /// # Errors
    ///
    /// * [`StoreError::RevisionExpired`] if it is older than the horizon;
    /// * [`StoreError::RevisionInFuture`] if it is newer than head.
    fn check_revision(&self, revision: Revision) -> Result<(), StoreError>;

    /// Opens a snapshot of `tenant` at `revision`, judging expiration at the clock's current
    /// time (see [`Snapshot::now`]).
    ///
    /// A snapshot stays readable for as long as it is held, even if its revision falls out
    /// of the window meanwhile, provided requests are shorter than the window.
    ///
    /// # Errors
    ///
    /// The errors of [`Datastore::check_revision`], or a storage failure.
    fn snapshot(
        &self,
        tenant: &TenantId,
        revision: Revision,
    ) -> Result<Arc<dyn Snapshot>, StoreError>;

    /// Runs `body` in a read-write transaction on `tenant` and commits it, returning the new
    /// revision. Every successful call commits a new revision, even if nothing changed: a
    /// transaction that only writes records (no relationship or schema change) also takes
    /// one, which appears nowhere but in [`Datastore::head_revision`] (it adds nothing to
    /// the change feed), so every revision still names exactly one commit.
    ///
    /// If `body` or an operation in it fails, nothing is written and the error is returned.
    /// Transactions are serializable: the body's reads and preconditions cannot be
    /// invalidated by a concurrent writer before the commit. A backend may run `body` more
    /// than once (on an internal conflict), so it must have no effect outside the
    /// transaction other than recording its result. When the call returns `Ok`, the
    /// transaction is durable and visible to snapshots at the returned revision.
    ///
    /// # Errors
    ///
    /// The body's error, [`StoreError::Conflict`] if retries ran out, or a storage failure.
    fn read_write(&self, tenant: &TenantId, body: &mut TxnBody<'_>)
    -> Result<Revision, StoreError>;

    /// Returns the tenant's changes committed after revision `after`, one
    /// [`RevisionChanges`] per revision in increasing order, at most `max_revisions` of
    /// them (revisions that changed nothing in this tenant are skipped and not counted).
    ///
    /// To follow the feed, call again with `after` set to the last revision returned; when
    /// the result is empty, wait on [`Datastore::subscribe`] for head to move.
    ///
    /// # Errors
    ///
    /// The errors of [`Datastore::check_revision`] for `after`, or a storage failure.
    fn changes_since(
        &self,
        tenant: &TenantId,
        after: Revision,
        max_revisions: usize,
    ) -> Result<Vec<RevisionChanges>, StoreError>;

    /// Returns a receiver of the head revision, updated after every commit (in any tenant).
    ///
    /// Watch streams await `changed()` on it instead of polling. The value is only a hint to
    /// call [`Datastore::changes_since`] again.
    fn subscribe(&self) -> watch::Receiver<Revision>;

    /// Runs one garbage-collection pass and reports what it removed.
    ///
    /// It removes versions invisible at the horizon and after (deleted or replaced at or
    /// before the horizon), relationships that expired at or before `now - gc_window`,
    /// change-feed revisions at or before the horizon, and superseded schema versions.
    /// It must not block readers or writers for long: backends work in small batches.
    /// The server calls it periodically from a background thread.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn collect_garbage(&self) -> Result<GcStats, StoreError>;

    /// Returns the latest committed value of the record `key` of `namespace` in `tenant`.
    ///
    /// Records are not versioned, so this reads no snapshot: a read that starts after a
    /// [`Datastore::read_write`] returned sees its records, and a record is never visible
    /// before its transaction is durable.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn read_record(
        &self,
        tenant: &TenantId,
        namespace: &RecordNamespace,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Returns the latest committed records of `namespace` in `tenant` whose key is at or
    /// after `start`, in bytewise key order, at most `limit` of them (see
    /// [`Datastore::read_record`] for what "latest committed" means). The next page starts
    /// at [`record_key_successor`](crate::record_key_successor) of the last key.
    ///
    /// A scan is not a snapshot: records committed while it runs may or may not appear.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn scan_records(
        &self,
        tenant: &TenantId,
        namespace: &RecordNamespace,
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;

    /// Removes everything stored for `tenant`: every relationship version, the schema, the
    /// change feed and the records. This is not versioned: afterwards the tenant reads as
    /// empty at every revision.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn delete_tenant(&self, tenant: &TenantId) -> Result<(), StoreError>;
}

/// What one [`Datastore::collect_garbage`] pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GcStats {
    /// The horizon the pass used: the oldest revision still readable.
    pub horizon: Revision,
    /// Relationship versions removed (deleted, replaced or expired).
    pub n_relationship_versions: usize,
    /// Change-feed revisions removed.
    pub n_change_revisions: usize,
    /// Schema versions removed.
    pub n_schema_versions: usize,
}

/// Options every backend takes.
#[derive(Debug, Clone)]
pub struct DatastoreOptions {
    /// How long revisions stay readable (SpiceDB's `--datastore-gc-window`); 24 hours by
    /// default.
    pub gc_window: Duration,
    /// The quantum [`Datastore::optimized_revision`] rounds down to (SpiceDB's
    /// `--datastore-revision-quantization-interval`); 5 seconds by default, zero for head.
    pub quantization: Duration,
    /// Where the datastore gets the time; the system clock by default.
    pub clock: Arc<dyn Clock>,
}

impl DatastoreOptions {
    /// The default garbage-collection window: 24 hours.
    pub const DEFAULT_GC_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
    /// The default revision quantization: 5 seconds.
    pub const DEFAULT_QUANTIZATION: Duration = Duration::from_secs(5);
}

impl Default for DatastoreOptions {
    fn default() -> Self {
        Self {
            gc_window: Self::DEFAULT_GC_WINDOW,
            quantization: Self::DEFAULT_QUANTIZATION,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Conveniences over [`Datastore`], for every datastore (including `dyn Datastore`).
pub trait DatastoreExt: Datastore {
    /// Like [`Datastore::read_write`], but the body returns a value and its own error type.
    ///
    /// If the body fails with `E`, the transaction rolls back and that `E` is returned;
    /// store errors become `E` through `From`.
    ///
    /// # Errors
    ///
    /// The body's error, or a store error converted into `E`.
    fn read_write_with<T, E, F>(&self, tenant: &TenantId, mut body: F) -> Result<Committed<T>, E>
    where
        F: FnMut(&mut dyn WriteTxn) -> Result<T, E>,
        E: From<StoreError>,
    {
        let mut value: Option<T> = None;
        let mut body_error: Option<E> = None;
        let res = self.read_write(tenant, &mut |txn| {
            // A backend may run the body again; only the last run's outcome counts.
            value = None;
            body_error = None;
            match body(txn) {
                Ok(output) => {
                    value = Some(output);
                    Ok(())
                }
                Err(err) => {
                    body_error = Some(err);
                    Err(StoreError::Aborted(Box::new(BodyFailed)))
                }
            }
        });
        match (res, value, body_error) {
            (Ok(revision), Some(value), _) => Ok(Committed { revision, value }),
            (Ok(_), None, _) => Err(E::from(StoreError::Internal(
                "transaction committed without running its body".to_owned(),
            ))),
            (Err(_), _, Some(err)) => Err(err),
            (Err(err), _, None) => Err(E::from(err)),
        }
    }

    /// Writes relationships: checks `preconditions`, then applies `updates`, atomically
    /// (SpiceDB's `WriteRelationships`). Returns the new revision.
    ///
    /// # Errors
    ///
    /// [`StoreError::PreconditionFailed`], [`StoreError::AlreadyExists`] or a storage
    /// failure; nothing is written on error.
    fn write_relationships(
        &self,
        tenant: &TenantId,
        preconditions: &[Precondition],
        updates: &[RelationshipUpdate],
    ) -> Result<Revision, StoreError> {
        self.read_write(tenant, &mut |txn| {
            txn.check_preconditions(preconditions)?;
            txn.apply(updates)
        })
    }

    /// Deletes relationships by filter: checks `preconditions`, then deletes at most `limit`
    /// matching relationships, atomically (SpiceDB's `DeleteRelationships`).
    ///
    /// # Errors
    ///
    /// [`StoreError::PreconditionFailed`] or a storage failure; nothing is written on error.
    fn delete_relationships(
        &self,
        tenant: &TenantId,
        preconditions: &[Precondition],
        filter: &RelationshipFilter,
        limit: Option<usize>,
    ) -> Result<Committed<DeleteOutcome>, StoreError> {
        self.read_write_with(tenant, |txn| {
            txn.check_preconditions(preconditions)?;
            txn.delete_filtered(filter, limit)
        })
    }

    /// Replaces the tenant's schema text in a transaction of its own. Returns the new
    /// revision.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn write_schema(&self, tenant: &TenantId, text: &str) -> Result<Revision, StoreError> {
        self.read_write(tenant, &mut |txn| txn.write_schema(text))
    }

    /// Opens a snapshot of `tenant` at the head revision.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn head_snapshot(&self, tenant: &TenantId) -> Result<Arc<dyn Snapshot>, StoreError> {
        let revision = self.head_revision()?;
        self.snapshot(tenant, revision)
    }
}

impl<D: Datastore + ?Sized> DatastoreExt for D {}

/// The marker error [`DatastoreExt::read_write_with`] aborts with; the real error is the
/// body's own, returned to the caller.
#[derive(Debug, thiserror::Error)]
#[error("the transaction body returned an error")]
struct BodyFailed;

/// Tracks the horizon so that it never moves backwards; a helper for backends.
///
/// Backends compute a candidate horizon from commit times and the clock and pass it through
/// [`Horizon::advance`], which returns the larger of it and every horizon seen before.
#[derive(Debug, Default)]
pub struct Horizon {
    highest: Mutex<Revision>,
}

impl Horizon {
    /// Builds a tracker starting at `revision` (e.g. the horizon persisted by the last GC).
    pub fn new(revision: Revision) -> Self {
        Self {
            highest: Mutex::new(revision),
        }
    }

    /// Records `candidate` and returns the highest horizon seen so far.
    pub fn advance(&self, candidate: Revision) -> Revision {
        let mut highest = self.highest.lock();
        if candidate > *highest {
            *highest = candidate;
        }
        *highest
    }
}
