//! `WriteTxn`: the operations of one read-write transaction, and the update and
//! precondition types it takes.

use std::fmt;

use ostiary_types::{
    Relationship, RelationshipFilter, RelationshipKey, Revision, TenantId, Timestamp,
};

use crate::{Page, Record, RecordNamespace, StoreError, StoredSchema};

/// One read-write transaction on one tenant, handed to the body passed to
/// [`Datastore::read_write`](crate::Datastore::read_write).
///
/// Operations apply in call order, and reads inside the transaction see the transaction's
/// own earlier writes on top of the latest committed state. Nothing is visible to anyone
/// else until the body returns `Ok` and the backend commits; if the body or any operation
/// fails, the whole transaction is rolled back ("all or nothing").
///
/// Expiration inside a transaction is judged against [`WriteTxn::now`]: an expired
/// relationship counts as absent for CREATE, DELETE, preconditions and reads.
///
/// An operation that fails may have been partly applied. The body must then give up and
/// return an error; backends refuse to commit a transaction in which an operation failed
/// (they return [`StoreError::Internal`]). A failed precondition check changes nothing and
/// does not count.
pub trait WriteTxn {
    /// The tenant this transaction writes.
    fn tenant(&self) -> &TenantId;

    /// The revision this transaction commits at if it commits (records such as audit
    /// entries note it). If a backend runs the body again, each run sees its own.
    fn revision(&self) -> Revision;

    /// The instant expiration is judged against (the clock's time when the transaction
    /// started); the commit is recorded at this time or later.
    fn now(&self) -> Timestamp;

    /// Checks `preconditions` against the transaction's current view.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError::PreconditionFailed`] naming the first precondition that does
    /// not hold.
    fn check_preconditions(&mut self, preconditions: &[Precondition]) -> Result<(), StoreError> {
        let mut buffer = Vec::new();
        for precondition in preconditions {
            buffer.clear();
            self.read_filtered(precondition.filter(), Page::first(1), &mut buffer)?;
            let matched = !buffer.is_empty();
            if matched != precondition.requires_match() {
                return Err(StoreError::PreconditionFailed(precondition.to_string()));
            }
        }
        Ok(())
    }

    /// Applies `updates` in order with SpiceDB's semantics:
    ///
    /// * CREATE inserts the relationship; if a live (unexpired) relationship with the same
    ///   key exists it fails with [`StoreError::AlreadyExists`] naming that key;
    /// * TOUCH inserts or replaces it (caveat, context and expiration all come from the
    ///   update);
    /// * DELETE removes it; deleting an absent relationship is not an error.
    ///
    /// # Errors
    ///
    /// [`StoreError::AlreadyExists`] as above, or a storage failure.
    fn apply(&mut self, updates: &[RelationshipUpdate]) -> Result<(), StoreError>;

    /// Deletes the live relationships matching `filter`, in
    /// [`ReadOrder::Resource`](crate::ReadOrder::Resource) order, at most `limit` of them if
    /// given.
    ///
    /// The filter is used as given; validating it (SpiceDB refuses an empty filter) is the
    /// caller's job.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn delete_filtered(
        &mut self,
        filter: &RelationshipFilter,
        limit: Option<usize>,
    ) -> Result<DeleteOutcome, StoreError>;

    /// Appends the live relationships matching `filter` to `out` in
    /// [`ReadOrder::Resource`](crate::ReadOrder::Resource) order, as
    /// [`Snapshot::read_filtered`](crate::Snapshot::read_filtered) does, but over the
    /// transaction's view (its own writes included). Returns how many it appended.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn read_filtered(
        &mut self,
        filter: &RelationshipFilter,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> Result<usize, StoreError>;

    /// Replaces the tenant's schema text. The text is opaque to the store; the caller has
    /// already compiled it and checked that no stored relationship is orphaned by it
    /// (which it can do with [`WriteTxn::read_filtered`] in the same transaction).
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn write_schema(&mut self, text: &str) -> Result<(), StoreError>;

    /// Returns the schema in the transaction's view (its own write included). Inside a
    /// transaction that wrote the schema, [`StoredSchema::revision`] is the revision the
    /// transaction will commit at.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn read_schema(&mut self) -> Result<Option<StoredSchema>, StoreError>;

    /// Sets the record `key` of `namespace` in the transaction's tenant to `value`
    /// (inserting or replacing it). Like every write, it is buffered and committed with
    /// the transaction, or discarded with it.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn put_record(
        &mut self,
        namespace: &RecordNamespace,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError>;

    /// Removes the record `key` of `namespace` in the transaction's tenant; removing an
    /// absent record is not an error.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn delete_record(&mut self, namespace: &RecordNamespace, key: &[u8]) -> Result<(), StoreError>;

    /// Returns the value of the record `key` of `namespace` in the transaction's view: its
    /// own writes on top of the latest committed value.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn read_record(
        &mut self,
        namespace: &RecordNamespace,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Returns the records of `namespace` whose key is at or after `start`, in bytewise key
    /// order, at most `limit` of them, in the transaction's view (its own writes on top of
    /// the latest committed values). The next page starts at
    /// [`record_key_successor`](crate::record_key_successor) of the last key.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    fn scan_records(
        &mut self,
        namespace: &RecordNamespace,
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;
}

/// One update in a write: SpiceDB's `RelationshipUpdate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelationshipUpdate {
    /// Insert; fails if a live relationship with the same key exists.
    Create(Relationship),
    /// Insert or replace (upsert by key).
    Touch(Relationship),
    /// Remove if present; idempotent.
    Delete(RelationshipKey),
}

impl RelationshipUpdate {
    /// The key of the relationship this update is about.
    pub fn key(&self) -> &RelationshipKey {
        match self {
            Self::Create(rel) | Self::Touch(rel) => rel.key(),
            Self::Delete(key) => key,
        }
    }
}

/// A condition a write requires of the data, evaluated atomically with the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// At least one live relationship must match the filter.
    MustMatch(RelationshipFilter),
    /// No live relationship may match the filter.
    MustNotMatch(RelationshipFilter),
}

impl Precondition {
    /// The filter the precondition tests.
    pub fn filter(&self) -> &RelationshipFilter {
        match self {
            Self::MustMatch(filter) | Self::MustNotMatch(filter) => filter,
        }
    }

    /// Reports whether the precondition requires a match (`MustMatch`).
    pub fn requires_match(&self) -> bool {
        matches!(self, Self::MustMatch(_))
    }
}

impl fmt::Display for Precondition {
    /// Writes e.g. ``must match `resource_type: document, relation: viewer` ``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.requires_match() {
            "must match"
        } else {
            "must not match"
        };
        write!(f, "{verb} `{}`", FilterText(self.filter()))
    }
}

/// Writes a filter's set fields as `field: value` pairs.
struct FilterText<'a>(&'a RelationshipFilter);

impl fmt::Display for FilterText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let filter = self.0;
        let mut parts: Vec<String> = Vec::new();
        if let Some(resource_type) = &filter.resource_type {
            parts.push(format!("resource_type: {resource_type}"));
        }
        if let Some(id) = &filter.optional_resource_id {
            parts.push(format!("resource_id: {id}"));
        }
        if let Some(prefix) = &filter.optional_resource_id_prefix {
            parts.push(format!("resource_id_prefix: {prefix}"));
        }
        if let Some(relation) = &filter.optional_relation {
            parts.push(format!("relation: {relation}"));
        }
        if let Some(subject_filter) = &filter.optional_subject_filter {
            parts.push(format!("subject_type: {}", subject_filter.subject_type));
            if let Some(id) = &subject_filter.optional_subject_id {
                parts.push(format!("subject_id: {id}"));
            }
            if let Some(relation_filter) = &subject_filter.optional_relation {
                let relation = relation_filter
                    .relation
                    .as_ref()
                    .map_or("...", |relation| relation.as_str());
                parts.push(format!("subject_relation: {relation}"));
            }
        }
        f.write_str(&parts.join(", "))
    }
}

/// What [`WriteTxn::delete_filtered`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeleteOutcome {
    /// How many live relationships it deleted.
    pub n_deleted: usize,
    /// Whether live matching relationships remain because the limit stopped the deletion.
    pub more_remain: bool,
}

/// The outcome of a committed write: its revision and what the body returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed<T> {
    /// The revision the transaction committed at; reads at it see the write.
    pub revision: Revision,
    /// The body's result.
    pub value: T,
}

#[cfg(test)]
mod tests {
    use ostiary_types::{ObjectType, RelationFilter, SubjectFilter};

    use super::*;

    #[test]
    fn precondition_text() {
        let filter = RelationshipFilter {
            resource_type: Some(ObjectType::new("document").unwrap()),
            optional_resource_id_prefix: Some("re".to_owned()),
            optional_relation: Some("viewer".parse().unwrap()),
            optional_subject_filter: Some(SubjectFilter {
                subject_type: ObjectType::new("user").unwrap(),
                optional_subject_id: Some("alice".parse().unwrap()),
                optional_relation: Some(RelationFilter { relation: None }),
            }),
            ..RelationshipFilter::default()
        };
        assert_eq!(
            Precondition::MustMatch(filter.clone()).to_string(),
            "must match `resource_type: document, resource_id_prefix: re, relation: viewer, subject_type: user, subject_id: alice, subject_relation: ...`"
        );
        let err = StoreError::PreconditionFailed(Precondition::MustNotMatch(filter).to_string());
        assert!(err.to_string().starts_with(
            "unable to satisfy write precondition: must not match `resource_type: document"
        ));
    }

    #[test]
    fn update_key() {
        let rel: Relationship = "doc:a#viewer@user:b[expiration:2025-01-01T00:00:00Z]"
            .parse()
            .unwrap();
        assert_eq!(
            RelationshipUpdate::Touch(rel.clone()).key().to_string(),
            "doc:a#viewer@user:b"
        );
        assert_eq!(
            RelationshipUpdate::Delete(rel.key().clone()).key(),
            rel.key()
        );
    }
}
