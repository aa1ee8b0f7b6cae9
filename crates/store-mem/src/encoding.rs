//! Order-preserving byte encoding of relationship keys for the in-memory indexes.
//!
//! Each component is written followed by `\0`. No valid name or id contains `\0` (and every
//! other byte is greater), so comparing encodings bytewise compares the components in
//! order, each as a string, with the ellipsis (written as the empty string) first: exactly
//! [`ReadOrder`](ostiary_store::ReadOrder). The encoding of a leading subset of components
//! is a prefix of every key that has those components.

use ostiary_types::{ObjectId, ObjectType, RelationName, RelationshipKey};

/// An encoded key or key prefix.
pub(crate) type Encoded = Vec<u8>;

/// Appends one component and its terminator.
pub(crate) fn push(buffer: &mut Encoded, component: &str) {
    buffer.extend_from_slice(component.as_bytes());
    buffer.push(0);
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
        let key = &keys[0];
        assert!(forward(key).starts_with(&object_prefix(
            key.resource().object_type(),
            Some(key.resource().object_id())
        )));
    }
}
