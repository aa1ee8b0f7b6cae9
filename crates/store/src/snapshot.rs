//! `Snapshot`: consistent reads of one tenant's relationships and schema at one revision,
//! and the query types it accepts.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use ostiary_types::{
    ObjectId, ObjectType, RelationFilter, RelationName, Relationship, RelationshipFilter,
    RelationshipKey, Revision, SubjectFilter, TenantId, Timestamp,
};

use crate::StoreError;

/// A read-only view of one tenant's data at one revision.
///
/// Obtained once per request from [`Datastore::snapshot`](crate::Datastore::snapshot) and
/// shared (it is an `Arc`) by everything that serves the request. Every read sees exactly the
/// writes committed at or before [`Snapshot::revision`], whatever is written meanwhile.
///
/// # Reads
///
/// The read methods *append* matching relationships to a caller-owned `Vec` and return how
/// many they appended. The engine reuses its buffers, so a read costs no per-row boxing and
/// no allocation beyond the relationships themselves (whose names are `Arc<str>`: cloning
/// one is a few reference-count increments).
///
/// * Relationships whose expiration is at or before [`Snapshot::now`] are invisible.
/// * Results come in a documented order ([`ReadOrder`]) that is stable across revisions, so
///   a [`Page`] cursor taken at one revision resumes correctly at another.
/// * A read that hits [`Page::limit`] may have more results: read again with
///   [`Page::after`] set to the key of the last relationship returned. A read that returns
///   fewer than the limit has returned everything.
///
/// # Hot path
///
/// The engine calls [`Snapshot::read_resources`] and [`Snapshot::read_subjects`] many times
/// per Check. Implementations must not log at info or above, take long-held locks or do
/// per-call work proportional to the data size; a read's cost should be proportional to the
/// rows it returns (plus one index seek per requested id).
pub trait Snapshot: Send + Sync + fmt::Debug {
    /// The revision this snapshot reads at.
    fn revision(&self) -> Revision;

    /// The tenant whose data this snapshot reads.
    fn tenant(&self) -> &TenantId;

    /// The instant expiration is judged against: relationships with
    /// `expiration <= now()` are invisible.
    ///
    /// This is the datastore clock's time when the snapshot was created, fixed for the
    /// snapshot's life so that one request sees one consistent set of relationships.
    fn now(&self) -> Timestamp;

    /// Returns the schema in force at this revision, or `None` if none was ever written.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError::Unavailable`] or [`StoreError::Internal`] on storage failure.
    fn read_schema(&self) -> Result<Option<StoredSchema>, StoreError>;

    /// Appends the relationships of the given resources to `out`, in
    /// [`ReadOrder::Resource`] order, and returns how many it appended.
    ///
    /// This is the forward index: "who is related to `document:1#viewer`?".
    ///
    /// # Errors
    ///
    /// Returns [`StoreError::Unavailable`] or [`StoreError::Internal`] on storage failure.
    fn read_resources(
        &self,
        query: &ResourceQuery<'_>,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> Result<usize, StoreError>;

    /// Appends the relationships whose subject matches `query` to `out`, in
    /// [`ReadOrder::Subject`] order, and returns how many it appended.
    ///
    /// This is the reverse index: "which resources is `user:alice` related to?".
    ///
    /// # Errors
    ///
    /// Returns [`StoreError::Unavailable`] or [`StoreError::Internal`] on storage failure.
    fn read_subjects(
        &self,
        query: &SubjectQuery<'_>,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> Result<usize, StoreError>;

    /// Appends the relationships matching `filter` (SpiceDB's `ReadRelationships`) to
    /// `out`, in [`ReadOrder::Resource`] order, and returns how many it appended.
    ///
    /// The filter is used as given ([`RelationshipFilter::matches`]); validating it is the
    /// caller's job. A filter without a resource type may make a backend scan every
    /// relationship of the tenant.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError::Unavailable`] or [`StoreError::Internal`] on storage failure.
    fn read_filtered(
        &self,
        filter: &RelationshipFilter,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> Result<usize, StoreError>;
}

/// The schema text stored for a tenant, as written by
/// [`WriteTxn::write_schema`](crate::WriteTxn::write_schema).
///
/// The store treats the text as opaque; the engine compiles it and caches the result keyed
/// by [`StoredSchema::revision`], which stays the same across all the revisions at which
/// this schema is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSchema {
    /// The schema text.
    pub text: Arc<str>,
    /// The revision of the transaction that wrote it.
    pub revision: Revision,
}

/// Selects relationships by resource, for [`Snapshot::read_resources`].
///
/// The fields are a conjunction; slices are disjunctions ("any of these ids").
#[derive(Debug, Clone, Copy)]
pub struct ResourceQuery<'a> {
    /// The resource type (required: the forward index is keyed by it).
    pub resource_type: &'a ObjectType,
    /// The resource ids to read, in any order and possibly with duplicates (each matching
    /// relationship is still returned once); empty means every id of the type.
    pub resource_ids: &'a [ObjectId],
    /// The relation on the resource; `None` means any relation.
    pub relation: Option<&'a RelationName>,
    /// A constraint on the subject; `None` means any subject.
    pub subject: Option<&'a SubjectFilter>,
}

impl<'a> ResourceQuery<'a> {
    /// Builds a query for every relationship of resources of `resource_type`.
    pub fn new(resource_type: &'a ObjectType) -> Self {
        Self {
            resource_type,
            resource_ids: &[],
            relation: None,
            subject: None,
        }
    }

    /// Reports whether `rel` satisfies the query (the expiration plays no part).
    pub fn matches(&self, rel: &Relationship) -> bool {
        let resource = rel.resource();
        resource.object_type() == self.resource_type
            && (self.resource_ids.is_empty() || self.resource_ids.contains(resource.object_id()))
            && self
                .relation
                .is_none_or(|relation| relation == rel.relation())
            && self
                .subject
                .is_none_or(|subject_filter| subject_filter.matches(rel.subject()))
    }
}

/// Selects relationships by subject, for [`Snapshot::read_subjects`].
///
/// The fields are a conjunction; slices are disjunctions ("any of these ids").
#[derive(Debug, Clone, Copy)]
pub struct SubjectQuery<'a> {
    /// The subject type (required: the reverse index is keyed by it).
    pub subject_type: &'a ObjectType,
    /// The subject ids, in any order and possibly with duplicates; empty means every id.
    /// Ids match exactly: `*` matches only wildcard subjects (`user:*`), so a caller that
    /// wants "alice, or everyone" passes both `alice` and `*`.
    pub subject_ids: &'a [ObjectId],
    /// The subject relation: `None` allows any relation or none; see [`RelationFilter`]
    /// for the difference between `Some(RelationFilter { relation: None })` (the ellipsis
    /// only) and `Some(RelationFilter { relation: Some(r) })`.
    pub subject_relation: Option<&'a RelationFilter>,
    /// The resource type; `None` means any type.
    pub resource_type: Option<&'a ObjectType>,
    /// The relation on the resource; `None` means any relation.
    pub relation: Option<&'a RelationName>,
}

impl<'a> SubjectQuery<'a> {
    /// Builds a query for every relationship whose subject is of `subject_type`.
    pub fn new(subject_type: &'a ObjectType) -> Self {
        Self {
            subject_type,
            subject_ids: &[],
            subject_relation: None,
            resource_type: None,
            relation: None,
        }
    }

    /// Reports whether `rel` satisfies the query (the expiration plays no part).
    pub fn matches(&self, rel: &Relationship) -> bool {
        let subject = rel.subject();
        subject.object_type() == self.subject_type
            && (self.subject_ids.is_empty() || self.subject_ids.contains(subject.object_id()))
            && self.subject_relation.is_none_or(|relation_filter| {
                relation_filter.relation.as_ref() == subject.relation()
            })
            && self
                .resource_type
                .is_none_or(|resource_type| resource_type == rel.resource().object_type())
            && self
                .relation
                .is_none_or(|relation| relation == rel.relation())
    }
}

/// Where a read starts and how much it returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page<'a> {
    /// Resume strictly after this key, in the read's order; `None` starts at the beginning.
    /// The key need not exist (any more): the read resumes at the next key in order.
    pub after: Option<&'a RelationshipKey>,
    /// Return at most this many relationships; `None` means no limit. A limit of zero
    /// returns nothing.
    pub limit: Option<usize>,
}

impl<'a> Page<'a> {
    /// Every result, from the beginning.
    pub const ALL: Page<'static> = Page {
        after: None,
        limit: None,
    };

    /// At most `limit` results, from the beginning.
    pub fn first(limit: usize) -> Self {
        Page {
            after: None,
            limit: Some(limit),
        }
    }

    /// At most `limit` results after `after`.
    pub fn after(after: &'a RelationshipKey, limit: Option<usize>) -> Self {
        Page {
            after: Some(after),
            limit,
        }
    }
}

/// The two orders reads return relationships in. Both are total orders on
/// [`RelationshipKey`]; text compares bytewise, and a subject without relation (the
/// ellipsis) sorts before any subject relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOrder {
    /// (resource type, resource id, relation, subject type, subject id, subject relation):
    /// the order of [`RelationshipKey`]'s `Ord`. Used by [`Snapshot::read_resources`] and
    /// [`Snapshot::read_filtered`], and by delete-by-filter.
    Resource,
    /// (subject type, subject id, subject relation, resource type, resource id, relation).
    /// Used by [`Snapshot::read_subjects`].
    Subject,
}

impl ReadOrder {
    /// Compares two keys in this order.
    pub fn compare(self, left: &RelationshipKey, right: &RelationshipKey) -> Ordering {
        match self {
            Self::Resource => left.cmp(right),
            Self::Subject => left
                .subject()
                .cmp(right.subject())
                .then_with(|| left.resource().cmp(right.resource()))
                .then_with(|| left.relation().cmp(right.relation())),
        }
    }
}

/// Reports whether `rel` has expired at `now` (its expiration is at or before `now`).
///
/// Expired relationships are invisible to every read and count as absent for CREATE,
/// preconditions and DELETE, as in SpiceDB.
pub fn is_expired(rel: &Relationship, now: Timestamp) -> bool {
    rel.expiration().is_some_and(|expiration| expiration <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> RelationshipKey {
        text.parse().unwrap()
    }

    #[test]
    fn orders() {
        let mut keys = [
            key("doc:b#viewer@user:a"),
            key("doc:a#viewer@group:g#member"),
            key("doc:a#viewer@group:g"),
            key("doc:a#editor@user:z"),
            key("folder:a#viewer@user:a"),
            key("doc:ab#viewer@user:a"),
        ];
        keys.sort_by(|left, right| ReadOrder::Resource.compare(left, right));
        let texts: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "doc:a#editor@user:z",
                "doc:a#viewer@group:g",
                "doc:a#viewer@group:g#member",
                "doc:ab#viewer@user:a",
                "doc:b#viewer@user:a",
                "folder:a#viewer@user:a",
            ]
        );
        keys.sort_by(|left, right| ReadOrder::Subject.compare(left, right));
        let texts: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "doc:a#viewer@group:g",
                "doc:a#viewer@group:g#member",
                "doc:ab#viewer@user:a",
                "doc:b#viewer@user:a",
                "folder:a#viewer@user:a",
                "doc:a#editor@user:z",
            ]
        );
    }

    #[test]
    fn query_matching() {
        let rel: Relationship = "doc:a#viewer@group:g#member[expiration:2025-01-01T00:00:00Z]"
            .parse()
            .unwrap();
        let doc = ObjectType::new("doc").unwrap();
        let group = ObjectType::new("group").unwrap();
        let ids = [ObjectId::new("b").unwrap(), ObjectId::new("a").unwrap()];
        let viewer = RelationName::new("viewer").unwrap();
        let editor = RelationName::new("editor").unwrap();
        let mut query = ResourceQuery::new(&doc);
        assert!(query.matches(&rel));
        query.resource_ids = &ids;
        query.relation = Some(&viewer);
        assert!(query.matches(&rel));
        query.relation = Some(&editor);
        assert!(!query.matches(&rel));

        let ellipsis = RelationFilter { relation: None };
        let mut subject_query = SubjectQuery::new(&group);
        assert!(subject_query.matches(&rel));
        subject_query.subject_relation = Some(&ellipsis);
        assert!(!subject_query.matches(&rel));
        subject_query.subject_relation = None;
        subject_query.resource_type = Some(&group);
        assert!(!subject_query.matches(&rel));

        assert!(is_expired(&rel, "2025-01-01T00:00:00Z".parse().unwrap()));
        assert!(!is_expired(&rel, "2024-12-31T23:59:59Z".parse().unwrap()));
    }
}
