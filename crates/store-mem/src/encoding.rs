//! Order-preserving byte encoding of relationship keys for the in-memory indexes.
//!
//! Each component is written followed by `\0`. No valid name or id contains `\0` (and every
//! other byte is greater), so comparing encodings bytewise compares the components in
//! order, each as a string, with the ellipsis (written as the empty string) first: exactly
//! [`ReadOrder`](ostiary_store::ReadOrder). The encoding of a leading subset of components
//! is a prefix of every key that has those components.

use ostiary_store::RecordNamespace;
use ostiary_types::{ObjectId, ObjectType, RelationName, RelationshipKey, SubjectFilter};

/// An encoded key or key prefix.
pub(crate) type Encoded = Vec<u8>;

/// Appends one component and its terminator.
pub(crate) fn push(buffer: &mut Encoded, component: &str) {
    buffer.extend_from_slice(component.as_bytes());
    buffer.push(0);
}

/// Encodes the prefix of every record key of `namespace`: the namespace and `\0`.
///
/// Records sit in a map of their own, so their keys never meet relationship keys.
pub(crate) fn record_prefix(namespace: &RecordNamespace) -> Encoded {
    let mut buffer = Encoded::with_capacity(namespace.as_str().len() + 1);
    push(&mut buffer, namespace.as_str());
    buffer
}

/// Encodes the key of a record: its namespace prefix, then the key bytes (so the keys of
/// one namespace sort bytewise).
pub(crate) fn record_key(namespace: &RecordNamespace, key: &[u8]) -> Encoded {
    let mut buffer = record_prefix(namespace);
    buffer.extend_from_slice(key);
    buffer
}

/// The subject relation as a component: the empty string for the ellipsis.
fn relation_text(relation: Option<&RelationName>) -> &str {
    relation.map_or("", RelationName::as_str)
}

/// Encodes `key` in resource order.
pub(crate) fn forward(key: &RelationshipKey) -> Encoded {
    let mut buffer = Encoded::with_capacity(64);
    push(&mut buffer, key.resource().object_type().as_str());
    push(&mut buffer, key.resource().object_id().as_str());
    push(&mut buffer, key.relation().as_str());
    push(&mut buffer, key.subject().object_type().as_str());
    push(&mut buffer, key.subject().object_id().as_str());
    push(&mut buffer, relation_text(key.subject().relation()));
    buffer
}

/// Encodes `key` in subject order.
pub(crate) fn reverse(key: &RelationshipKey) -> Encoded {
    let mut buffer = Encoded::with_capacity(64);
    push(&mut buffer, key.subject().object_type().as_str());
    push(&mut buffer, key.subject().object_id().as_str());
    push(&mut buffer, relation_text(key.subject().relation()));
    push(&mut buffer, key.resource().object_type().as_str());
    push(&mut buffer, key.resource().object_id().as_str());
    push(&mut buffer, key.relation().as_str());
    buffer
}

/// Encodes the prefix of every key with the given type and, optionally, id.
pub(crate) fn object_prefix(object_type: &ObjectType, object_id: Option<&ObjectId>) -> Encoded {
    let mut buffer = Encoded::with_capacity(32);
    push(&mut buffer, object_type.as_str());
    if let Some(object_id) = object_id {
        push(&mut buffer, object_id.as_str());
    }
    buffer
}

/// The components after the resource id that a query fixes, encoded: the relation, then
/// (with a subject filter) the subject type, then its id, then its exact relation, stopping
/// at the first one left open. Every key the query matches starts with the resource prefix
/// followed by these bytes.
pub(crate) fn query_suffix(
    relation: Option<&RelationName>,
    subject: Option<&SubjectFilter>,
) -> Encoded {
    let mut buffer = Encoded::new();
    let Some(relation) = relation else {
        return buffer;
    };
    push(&mut buffer, relation.as_str());
    let Some(subject) = subject else {
        return buffer;
    };
    push(&mut buffer, subject.subject_type.as_str());
    let Some(subject_id) = &subject.optional_subject_id else {
        return buffer;
    };
    push(&mut buffer, subject_id.as_str());
    if let Some(relation_filter) = &subject.optional_relation {
        push(
            &mut buffer,
            relation_text(relation_filter.relation.as_ref()),
        );
    }
    buffer
}

#[cfg(test)]
mod tests {
    use ostiary_store::ReadOrder;

    use super::*;

    #[test]
    fn byte_order_matches_read_order() {
        let texts = [
            "doc:a#viewer@user:b",
            "doc:a#viewer@user:b#member",
            "doc:a#view@user:b",
            "doc:a#viewer@user:ba",
            "doc:ab#viewer@user:b",
            "doc:a-b#viewer@user:b",
            "doc/xyz:a#viewer@user:b",
            "docs:a#viewer@user:*",
            "doc:a#viewer@group:b#member",
            "doc:a#viewer@group:b",
        ];
        let keys: Vec<RelationshipKey> = texts.iter().map(|text| text.parse().unwrap()).collect();
        for left in &keys {
            for right in &keys {
                assert_eq!(
                    forward(left).cmp(&forward(right)),
                    ReadOrder::Resource.compare(left, right),
                    "{left} vs {right}"
                );
                assert_eq!(
                    reverse(left).cmp(&reverse(right)),
                    ReadOrder::Subject.compare(left, right),
                    "{left} vs {right}"
                );
            }
        }
        // A query's narrowed prefix starts exactly the keys it matches.
        for key in &keys {
            let relation_filter = |relation: Option<&RelationName>| {
                Some(ostiary_types::RelationFilter {
                    relation: relation.cloned(),
                })
            };
            let filters = [
                None,
                Some(SubjectFilter {
                    subject_type: key.subject().object_type().clone(),
                    optional_subject_id: None,
                    optional_relation: None,
                }),
                Some(SubjectFilter {
                    subject_type: key.subject().object_type().clone(),
                    optional_subject_id: Some(key.subject().object_id().clone()),
                    optional_relation: None,
                }),
                Some(SubjectFilter {
                    subject_type: key.subject().object_type().clone(),
                    optional_subject_id: Some(key.subject().object_id().clone()),
                    optional_relation: relation_filter(key.subject().relation()),
                }),
            ];
            for filter in &filters {
                let mut prefix = object_prefix(
                    key.resource().object_type(),
                    Some(key.resource().object_id()),
                );
                prefix.extend_from_slice(&query_suffix(Some(key.relation()), filter.as_ref()));
                for other in &keys {
                    let matches = other.resource() == key.resource()
                        && other.relation() == key.relation()
                        && filter.as_ref().is_none_or(|filter| {
                            filter.subject_type == *other.subject().object_type()
                                && filter
                                    .optional_subject_id
                                    .as_ref()
                                    .is_none_or(|id| id == other.subject().object_id())
                                && filter.optional_relation.as_ref().is_none_or(|rel| {
                                    rel.relation.as_ref() == other.subject().relation()
                                })
                        });
                    assert_eq!(
                        forward(other).starts_with(&prefix),
                        matches,
                        "{other} under {key} with {filter:?}"
                    );
                }
            }
        }
        let key = &keys[0];
        assert!(forward(key).starts_with(&object_prefix(
            key.resource().object_type(),
            Some(key.resource().object_id())
        )));
    }
}
