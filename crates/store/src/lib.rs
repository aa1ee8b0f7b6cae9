//! Storage traits of Ostiary: the [`Datastore`], consistent [`Snapshot`] reads at a
//! revision, [`WriteTxn`] read-write transactions, the change feed and [`StoreError`].
//!
//! This crate has no implementation and links no storage engine. Backends live beside it
//! (`ostiary-store-mem`, `ostiary-store-rocks`) and all pass `ostiary-store-conformance`.
//! The store knows no schema semantics: it keeps the schema text and its revision as an
//! opaque record.
//!
//! # Model
//!
//! * A datastore holds many tenants' data; every operation names a [`TenantId`](ostiary_types::TenantId)
//!   (today usually [`TenantId::default_tenant`](ostiary_types::TenantId::default_tenant)) and backends prefix every key with it.
//! * Each committed transaction gets a strictly greater [`Revision`](ostiary_types::Revision) (one sequence for the
//!   whole datastore). A [`Snapshot`] reads one tenant at one revision and sees exactly the
//!   transactions committed at or before it.
//! * Relationships are identified by their [`RelationshipKey`](ostiary_types::RelationshipKey)
//!   (resource, relation, subject) and carry an optional caveat and expiration. A
//!   relationship whose expiration is at or before "now" is invisible everywhere, as if
//!   deleted ([`is_expired`]).
//! * Besides relationships and the schema, a tenant holds *records*: unversioned key/value
//!   metadata in a [`RecordNamespace`] (tokens, audit entries), written in the same
//!   transactions as relationships ([`WriteTxn::put_record`]) and read at their latest
//!   committed value ([`Datastore::read_record`]). The reserved
//!   [`TenantId::system`](ostiary_types::TenantId::system) tenant holds server-wide records.
//! * Revisions older than the garbage-collection window fail with
//!   [`StoreError::RevisionExpired`]; see [`Datastore`] for the exact rule.
//!
//! # Typical use
//!
//! ```
//! use ostiary_store::{Datastore, DatastoreExt, Page, RelationshipUpdate, ResourceQuery, StoreError};
//! use ostiary_types::{ObjectId, ObjectType, RelationName, TenantId};
//!
//! fn example(store: &dyn Datastore) -> Result<(), StoreError> {
//!     let tenant = TenantId::default_tenant();
//!     // Server, WriteRelationships: the returned revision is the consistency token.
//!     let update = RelationshipUpdate::Touch("document:readme#viewer@user:alice".parse()?);
//!     let revision = store.write_relationships(&tenant, &[], &[update])?;
//!
//!     // Engine, once per request: one snapshot, many cheap reads into reused buffers.
//!     let snapshot = store.snapshot(&tenant, revision)?;
//!     let document = ObjectType::new("document")?;
//!     let viewer = RelationName::new("viewer")?;
//!     let ids = [ObjectId::new("readme")?, ObjectId::new("other")?];
//!     let query = ResourceQuery {
//!         resource_ids: &ids,
//!         relation: Some(&viewer),
//!         ..ResourceQuery::new(&document)
//!     };
//!     let mut buffer = Vec::new();
//!     snapshot.read_resources(&query, Page::ALL, &mut buffer)?;
//!     assert_eq!(buffer.len(), 1);
//!     Ok(())
//! }
//! ```

mod changes;
mod clock;
mod datastore;
mod error;
mod gc;
mod records;
mod snapshot;
mod txn;

pub use changes::{Change, RevisionChanges};
pub use clock::{Clock, ManualClock, SystemClock, add_duration, quantize_down, sub_duration};
pub use datastore::{Datastore, DatastoreExt, DatastoreOptions, GcStats, Horizon, TxnBody};
pub use error::StoreError;
pub use gc::{GcOutcome, GcWorker};
pub use records::{Record, RecordNamespace, merge_pending_records, record_key_successor};
pub use snapshot::{
    Page, ReadOrder, ResourceQuery, Snapshot, StoredSchema, SubjectQuery, is_expired,
};
pub use tokio::sync::watch;
pub use txn::{Committed, DeleteOutcome, Precondition, RelationshipUpdate, WriteTxn};
