//! Relationship filters, as in SpiceDB's `ReadRelationships` and `DeleteRelationships`.
//!
//! The semantics follow SpiceDB v1.54 (`authzed.api.v1.RelationshipFilter` and
//! `pkg/datastore.RelationshipsFilterFromPublicFilter`). Every field is optional and the
//! fields that are set must all match (a conjunction). An unset field places no constraint.

use crate::{ObjectId, ObjectType, RelationName, Relationship, SubjectRef, TypesError};

/// Selects relationships by resource and subject; used to read, delete and watch them.
///
/// `None` in any field means "any". The proto's empty strings map to `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelationshipFilter {
    /// The resource type. Optional since SpiceDB 1.3x, but see [`RelationshipFilter::validate`].
    pub resource_type: Option<ObjectType>,
    /// An exact resource id. Cannot be combined with `optional_resource_id_prefix`.
    pub optional_resource_id: Option<ObjectId>,
    /// A prefix every matching resource id starts with. Cannot be combined with
    /// `optional_resource_id`.
    pub optional_resource_id_prefix: Option<String>,
    /// The relation on the resource.
    pub optional_relation: Option<RelationName>,
    /// Constraints on the subject.
    pub optional_subject_filter: Option<SubjectFilter>,
}

/// Selects the subject of a relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectFilter {
    /// The subject type; always required, as in SpiceDB.
    pub subject_type: ObjectType,
    /// An exact subject id. The wildcard `*` matches only wildcard subjects (`user:*`),
    /// exactly as any other id would: it is not a pattern.
    pub optional_subject_id: Option<ObjectId>,
    /// Constraints on the subject relation; `None` allows any relation, including none.
    pub optional_relation: Option<RelationFilter>,
}

/// Constrains the subject relation of a [`SubjectFilter`].
///
/// SpiceDB's semantics, which differ between the absent filter and the empty relation:
///
/// | `SubjectFilter::optional_relation`          | matches subjects          |
/// |---------------------------------------------|---------------------------|
/// | `None`                                      | with any relation or none |
/// | `Some(RelationFilter { relation: None })`   | with no relation (`...`)  |
/// | `Some(RelationFilter { relation: Some(r) })`| with exactly relation `r` |
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelationFilter {
    /// The required subject relation; `None` requires the ellipsis (no relation).
    pub relation: Option<RelationName>,
}

impl RelationshipFilter {
    /// Checks the rules SpiceDB applies before running a filter.
    ///
    /// # Errors
    ///
    /// * [`TypesError::FilterIdAndPrefix`] when both the resource id and the resource id
    ///   prefix are set;
    /// * [`TypesError::WildcardResource`] when the resource id is `*`;
    /// * [`TypesError::InvalidResourceIdPrefix`] when the prefix is empty, longer than 1024
    ///   bytes or uses characters no object id can contain;
    /// * [`TypesError::EmptyFilter`] when no field is set: SpiceDB refuses such a filter
    ///   ("at least one filter field must be set"), which guards against deleting
    ///   everything by accident.
    pub fn validate(&self) -> Result<(), TypesError> {
        if let (Some(id), Some(prefix)) = (
            &self.optional_resource_id,
            &self.optional_resource_id_prefix,
        ) {
            return Err(TypesError::FilterIdAndPrefix {
                id: id.to_string(),
                prefix: prefix.clone(),
            });
        }
        if let Some(id) = &self.optional_resource_id
            && id.is_wildcard()
        {
            let resource_type = self.resource_type.as_ref().map_or("", |t| t.as_str());
            return Err(TypesError::WildcardResource(format!(
                "{resource_type}:{id}"
            )));
        }
        if let Some(prefix) = &self.optional_resource_id_prefix
            && !crate::is_valid_object_id(prefix)
        {
            return Err(TypesError::InvalidResourceIdPrefix(prefix.clone()));
        }
        let is_empty = self.resource_type.is_none()
            && self.optional_resource_id.is_none()
            && self.optional_resource_id_prefix.is_none()
            && self.optional_relation.is_none()
            && self.optional_subject_filter.is_none();
        if is_empty {
            return Err(TypesError::EmptyFilter);
        }
        Ok(())
    }

    /// Reports whether `rel` satisfies every field that is set.
    ///
    /// The caveat and the expiration play no part. This does not call
    /// [`RelationshipFilter::validate`]; an invalid filter matches by the same per-field
    /// rules (a filter with both an id and a prefix requires both to hold).
    pub fn matches(&self, rel: &Relationship) -> bool {
        let resource = rel.resource();
        self.resource_type
            .as_ref()
            .is_none_or(|resource_type| resource_type == resource.object_type())
            && self
                .optional_resource_id
                .as_ref()
                .is_none_or(|id| id == resource.object_id())
            && self
                .optional_resource_id_prefix
                .as_ref()
                .is_none_or(|prefix| resource.object_id().as_str().starts_with(prefix.as_str()))
            && self
                .optional_relation
                .as_ref()
                .is_none_or(|relation| relation == rel.relation())
            && self
                .optional_subject_filter
                .as_ref()
                .is_none_or(|subject_filter| subject_filter.matches(rel.subject()))
    }
}

impl SubjectFilter {
    /// Builds a filter for every subject of `subject_type`.
    pub fn new(subject_type: ObjectType) -> Self {
        Self {
            subject_type,
            optional_subject_id: None,
            optional_relation: None,
        }
    }

    /// Reports whether `subject` satisfies the filter.
    pub fn matches(&self, subject: &SubjectRef) -> bool {
        &self.subject_type == subject.object_type()
            && self
                .optional_subject_id
                .as_ref()
                .is_none_or(|id| id == subject.object_id())
            && self
                .optional_relation
                .as_ref()
                .is_none_or(|relation_filter| {
                    relation_filter.relation.as_ref() == subject.relation()
                })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(text: &str) -> Relationship {
        text.parse().unwrap()
    }

    fn object_type(text: &str) -> ObjectType {
        ObjectType::new(text).unwrap()
    }

    fn id(text: &str) -> ObjectId {
        ObjectId::new(text).unwrap()
    }

    fn relation(text: &str) -> RelationName {
        RelationName::new(text).unwrap()
    }

    /// The relationships every filter test runs against.
    const CORPUS: [&str; 8] = [
        "document:readme#viewer@user:alice",
        "document:readme#editor@user:bob",
        "document:report#viewer@group:eng#member",
        "document:report#viewer@group:eng",
        "document:public#viewer@user:*",
        "folder:readme#viewer@user:alice",
        r#"document:rebase#viewer@user:alice[cav:{"a":1}][expiration:2025-01-01T00:00:00Z]"#,
        "tenant/document:readme#viewer@user:alice",
    ];

    /// Returns the corpus entries `filter` matches.
    fn matching(filter: &RelationshipFilter) -> Vec<&'static str> {
        CORPUS
            .into_iter()
            .filter(|text| filter.matches(&rel(text)))
            .collect()
    }

    fn subject_filter(
        subject_type: &str,
        subject_id: Option<&str>,
        relation_filter: Option<Option<&str>>,
    ) -> RelationshipFilter {
        RelationshipFilter {
            optional_subject_filter: Some(SubjectFilter {
                subject_type: object_type(subject_type),
                optional_subject_id: subject_id.map(id),
                optional_relation: relation_filter.map(|rel_name| RelationFilter {
                    relation: rel_name.map(relation),
                }),
            }),
            ..RelationshipFilter::default()
        }
    }

    #[test]
    fn empty_filter_matches_everything_but_is_invalid() {
        let filter = RelationshipFilter::default();
        assert_eq!(matching(&filter), CORPUS.to_vec());
        assert_eq!(filter.validate(), Err(TypesError::EmptyFilter));
        assert_eq!(
            TypesError::EmptyFilter.to_string(),
            "invalid relationship filter: at least one filter field must be set"
        );
    }

    #[test]
    fn resource_type() {
        let filter = RelationshipFilter {
            resource_type: Some(object_type("folder")),
            ..RelationshipFilter::default()
        };
        assert_eq!(matching(&filter), ["folder:readme#viewer@user:alice"]);
        assert_eq!(filter.validate(), Ok(()));
        let filter = RelationshipFilter {
            resource_type: Some(object_type("tenant/document")),
            ..RelationshipFilter::default()
        };
        assert_eq!(
            matching(&filter),
            ["tenant/document:readme#viewer@user:alice"]
        );
    }

    #[test]
    fn resource_id_without_type() {
        let filter = RelationshipFilter {
            optional_resource_id: Some(id("readme")),
            ..RelationshipFilter::default()
        };
        assert_eq!(
            matching(&filter),
            [
                "document:readme#viewer@user:alice",
                "document:readme#editor@user:bob",
                "folder:readme#viewer@user:alice",
                "tenant/document:readme#viewer@user:alice",
            ]
        );
        assert_eq!(filter.validate(), Ok(()));
    }

    #[test]
    fn resource_id_prefix() {
        let filter = RelationshipFilter {
            resource_type: Some(object_type("document")),
            optional_resource_id_prefix: Some("re".to_owned()),
            ..RelationshipFilter::default()
        };
        assert_eq!(
            matching(&filter),
            [
                "document:readme#viewer@user:alice",
                "document:readme#editor@user:bob",
                "document:report#viewer@group:eng#member",
                "document:report#viewer@group:eng",
                r#"document:rebase#viewer@user:alice[cav:{"a":1}][expiration:2025-01-01T00:00:00Z]"#,
            ]
        );
        assert_eq!(filter.validate(), Ok(()));
        // The prefix is case-sensitive and may be the whole id.
        let filter = RelationshipFilter {
            optional_resource_id_prefix: Some("readme".to_owned()),
            ..filter
        };
        assert_eq!(matching(&filter).len(), 2);
    }

    #[test]
    fn id_and_prefix_are_exclusive() {
        let filter = RelationshipFilter {
            resource_type: Some(object_type("document")),
            optional_resource_id: Some(id("readme")),
            optional_resource_id_prefix: Some("rea".to_owned()),
            ..RelationshipFilter::default()
        };
        let err = filter.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid relationship filter: cannot specify both a resource id (`readme`) and a resource id prefix (`rea`)"
        );
        // `matches` still applies both constraints.
        assert_eq!(
            matching(&filter),
            [
                "document:readme#viewer@user:alice",
                "document:readme#editor@user:bob"
            ]
        );
    }

    #[test]
    fn invalid_prefixes_and_wildcard_ids() {
        for bad_prefix in ["", "a b", "a:b", "*"] {
            let filter = RelationshipFilter {
                optional_resource_id_prefix: Some(bad_prefix.to_owned()),
                ..RelationshipFilter::default()
            };
            assert_eq!(
                filter.validate(),
                Err(TypesError::InvalidResourceIdPrefix(bad_prefix.to_owned()))
            );
        }
        let filter = RelationshipFilter {
            resource_type: Some(object_type("document")),
            optional_resource_id: Some(ObjectId::wildcard()),
            ..RelationshipFilter::default()
        };
        assert_eq!(
            filter.validate().unwrap_err().to_string(),
            "invalid resource `document:*`: the wildcard `*` is only allowed in subjects"
        );
    }

    #[test]
    fn resource_relation() {
        let filter = RelationshipFilter {
            optional_relation: Some(relation("editor")),
            ..RelationshipFilter::default()
        };
        assert_eq!(matching(&filter), ["document:readme#editor@user:bob"]);
        assert_eq!(filter.validate(), Ok(()));
    }

    #[test]
    fn subject_type_and_id() {
        let filter = subject_filter("group", None, None);
        assert_eq!(
            matching(&filter),
            [
                "document:report#viewer@group:eng#member",
                "document:report#viewer@group:eng",
            ]
        );
        assert_eq!(filter.validate(), Ok(()));
        let filter = subject_filter("user", Some("alice"), None);
        assert_eq!(
            matching(&filter),
            [
                "document:readme#viewer@user:alice",
                "folder:readme#viewer@user:alice",
                r#"document:rebase#viewer@user:alice[cav:{"a":1}][expiration:2025-01-01T00:00:00Z]"#,
                "tenant/document:readme#viewer@user:alice",
            ]
        );
    }

    #[test]
    fn wildcard_subject_id_is_literal() {
        let filter = subject_filter("user", Some("*"), None);
        assert_eq!(matching(&filter), ["document:public#viewer@user:*"]);
    }

    #[test]
    fn subject_relation_filter() {
        // No relation filter: any relation, including the ellipsis.
        assert_eq!(
            matching(&subject_filter("group", Some("eng"), None)).len(),
            2
        );
        // An empty relation filter: only the ellipsis.
        assert_eq!(
            matching(&subject_filter("group", Some("eng"), Some(None))),
            ["document:report#viewer@group:eng"]
        );
        // A named relation: exactly that relation.
        assert_eq!(
            matching(&subject_filter("group", Some("eng"), Some(Some("member")))),
            ["document:report#viewer@group:eng#member"]
        );
        assert!(matching(&subject_filter("group", Some("eng"), Some(Some("admin")))).is_empty());
    }

    #[test]
    fn all_fields_together() {
        let filter = RelationshipFilter {
            resource_type: Some(object_type("document")),
            optional_resource_id: Some(id("report")),
            optional_resource_id_prefix: None,
            optional_relation: Some(relation("viewer")),
            optional_subject_filter: Some(SubjectFilter {
                subject_type: object_type("group"),
                optional_subject_id: Some(id("eng")),
                optional_relation: Some(RelationFilter {
                    relation: Some(relation("member")),
                }),
            }),
        };
        assert_eq!(filter.validate(), Ok(()));
        assert_eq!(
            matching(&filter),
            ["document:report#viewer@group:eng#member"]
        );
        // Changing any one field breaks the match.
        let mismatches = [
            RelationshipFilter {
                resource_type: Some(object_type("folder")),
                ..filter.clone()
            },
            RelationshipFilter {
                optional_resource_id: Some(id("readme")),
                ..filter.clone()
            },
            RelationshipFilter {
                optional_relation: Some(relation("editor")),
                ..filter.clone()
            },
        ];
        for mismatch in mismatches {
            assert!(matching(&mismatch).is_empty(), "{mismatch:?}");
        }
    }

    #[test]
    fn subject_filter_new() {
        let filter = SubjectFilter::new(object_type("user"));
        assert!(filter.matches(&"user:*".parse().unwrap()));
        assert!(filter.matches(&"user:bob#friend".parse().unwrap()));
        assert!(!filter.matches(&"group:eng".parse().unwrap()));
    }
}
