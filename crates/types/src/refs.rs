//! Object references (`document:readme`) and subject references (`group:eng#member`).

use std::fmt;
use std::str::FromStr;

use crate::{ObjectId, ObjectType, RelationName, TypesError};

/// The subject relation text that means "the object itself" (no relation).
pub(crate) const ELLIPSIS: &str = "...";

/// A reference to one object, written `type:id`, e.g. `document:readme`.
///
/// The id may be the wildcard `*` (`user:*`), which only makes sense as a subject;
/// [`ObjectRef::is_wildcard`] tells, and places that need a concrete object (a
/// relationship's resource) reject it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    object_type: ObjectType,
    object_id: ObjectId,
}

impl ObjectRef {
    /// Builds a reference from validated parts.
    pub fn new(object_type: ObjectType, object_id: ObjectId) -> Self {
        Self {
            object_type,
            object_id,
        }
    }

    /// Returns the object's type.
    pub fn object_type(&self) -> &ObjectType {
        &self.object_type
    }

    /// Returns the object's id.
    pub fn object_id(&self) -> &ObjectId {
        &self.object_id
    }

    /// Reports whether the id is the wildcard `*`.
    pub fn is_wildcard(&self) -> bool {
        self.object_id.is_wildcard()
    }

    /// Splits the reference into its type and id.
    pub fn into_parts(self) -> (ObjectType, ObjectId) {
        (self.object_type, self.object_id)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.object_type, self.object_id)
    }
}

impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectRef({self})")
    }
}

impl FromStr for ObjectRef {
    type Err = TypesError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| TypesError::InvalidObjectRef {
            input: text.to_owned(),
            reason,
        };
        let (type_text, id_text) = text.split_once(':').ok_or_else(|| {
            invalid("expected `:` between the object type and the object id".to_owned())
        })?;
        let object_type = ObjectType::new(type_text).map_err(|err| invalid(err.to_string()))?;
        let object_id = ObjectId::new(id_text).map_err(|err| invalid(err.to_string()))?;
        Ok(Self::new(object_type, object_id))
    }
}

/// The subject of a relationship: an object, a wildcard, or a subject set.
///
/// Text forms: `user:alice` (an object), `user:*` (every user), `group:eng#member` (the
/// members of a group). A relation of `None` is SpiceDB's ellipsis `...`, meaning the object
/// itself; `group:eng#...` parses to the same value as `group:eng` and prints as the latter.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubjectRef {
    object: ObjectRef,
    relation: Option<RelationName>,
}

impl SubjectRef {
    /// Builds a subject from an object and an optional relation (`None` is the ellipsis).
    pub fn new(object: ObjectRef, relation: Option<RelationName>) -> Self {
        Self { object, relation }
    }

    /// Builds the wildcard subject `type:*`.
    pub fn wildcard(object_type: ObjectType) -> Self {
        Self::new(ObjectRef::new(object_type, ObjectId::wildcard()), None)
    }

    /// Returns the subject's object (its id may be the wildcard).
    pub fn object(&self) -> &ObjectRef {
        &self.object
    }

    /// Returns the subject's type.
    pub fn object_type(&self) -> &ObjectType {
        self.object.object_type()
    }

    /// Returns the subject's id (possibly the wildcard).
    pub fn object_id(&self) -> &ObjectId {
        self.object.object_id()
    }

    /// Returns the subject relation, or `None` for the ellipsis (the object itself).
    pub fn relation(&self) -> Option<&RelationName> {
        self.relation.as_ref()
    }

    /// Reports whether the subject id is the wildcard `*`.
    pub fn is_wildcard(&self) -> bool {
        self.object.is_wildcard()
    }

    /// Splits the subject into its object and relation.
    pub fn into_parts(self) -> (ObjectRef, Option<RelationName>) {
        (self.object, self.relation)
    }
}

impl From<ObjectRef> for SubjectRef {
    fn from(object: ObjectRef) -> Self {
        Self::new(object, None)
    }
}

impl fmt::Display for SubjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.relation {
            Some(relation) => write!(f, "{}#{relation}", self.object),
            None => fmt::Display::fmt(&self.object, f),
        }
    }
}

impl fmt::Debug for SubjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectRef({self})")
    }
}

impl FromStr for SubjectRef {
    type Err = TypesError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| TypesError::InvalidSubjectRef {
            input: text.to_owned(),
            reason,
        };
        let (object_text, relation_text) = match text.split_once('#') {
            Some((object_text, relation_text)) => (object_text, Some(relation_text)),
            None => (text, None),
        };
        let (type_text, id_text) = object_text.split_once(':').ok_or_else(|| {
            invalid("expected `:` between the subject type and the subject id".to_owned())
        })?;
        let object_type = ObjectType::new(type_text).map_err(|err| invalid(err.to_string()))?;
        let object_id = ObjectId::new(id_text).map_err(|err| invalid(err.to_string()))?;
        let relation = match relation_text {
            None | Some(ELLIPSIS) => None,
            Some(relation_text) => {
                Some(RelationName::new(relation_text).map_err(|err| invalid(err.to_string()))?)
            }
        };
        Ok(Self::new(ObjectRef::new(object_type, object_id), relation))
    }
}

/// Implements string-based serde for a type with `Display` and `FromStr`.
macro_rules! serde_via_text {
    ($name:ty) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use serde_via_text;

serde_via_text!(ObjectRef);
serde_via_text!(SubjectRef);

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check_subject(input: &str, expected: Expect) {
        let actual = match input.parse::<SubjectRef>() {
            Ok(subject) => format!(
                "ok {subject} (type {}, id {}, relation {:?}, wildcard {})",
                subject.object_type(),
                subject.object_id(),
                subject.relation().map(RelationName::as_str),
                subject.is_wildcard()
            ),
            Err(err) => format!("err {err}"),
        };
        expected.assert_eq(&actual);
    }

    fn check_object(input: &str, expected: Expect) {
        let actual = match input.parse::<ObjectRef>() {
            Ok(object) => format!("ok {object} (wildcard {})", object.is_wildcard()),
            Err(err) => format!("err {err}"),
        };
        expected.assert_eq(&actual);
    }

    #[test]
    fn subjects() {
        check_subject(
            "user:alice",
            expect![[r#"ok user:alice (type user, id alice, relation None, wildcard false)"#]],
        );
        check_subject(
            "group:eng#member",
            expect![[
                r#"ok group:eng#member (type group, id eng, relation Some("member"), wildcard false)"#
            ]],
        );
        check_subject(
            "group:eng#...",
            expect![[r#"ok group:eng (type group, id eng, relation None, wildcard false)"#]],
        );
        check_subject(
            "user:*",
            expect![[r#"ok user:* (type user, id *, relation None, wildcard true)"#]],
        );
        check_subject(
            "example/user:a|b",
            expect![[
                r#"ok example/user:a|b (type example/user, id a|b, relation None, wildcard false)"#
            ]],
        );
    }

    #[test]
    fn bad_subjects() {
        check_subject(
            "user",
            expect![
                "err invalid subject reference `user`: expected `:` between the subject type and the subject id"
            ],
        );
        check_subject(
            "user:",
            expect![
                "err invalid subject reference `user:`: invalid object id ``: must match `^[a-zA-Z0-9/_|\\-=+]{1,1024}$` (or be `*` for a subject)"
            ],
        );
        check_subject(
            "group:eng#",
            expect![
                "err invalid subject reference `group:eng#`: invalid relation name ``: must match `^[a-z][a-z0-9_]{1,62}[a-z0-9]$`"
            ],
        );
        check_subject(
            "group:eng#..",
            expect![
                "err invalid subject reference `group:eng#..`: invalid relation name `..`: must match `^[a-z][a-z0-9_]{1,62}[a-z0-9]$`"
            ],
        );
        check_subject(
            "Us:alice",
            expect![
                "err invalid subject reference `Us:alice`: invalid object type `Us`: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes"
            ],
        );
        check_subject(
            "user:a:b",
            expect![
                "err invalid subject reference `user:a:b`: invalid object id `a:b`: must match `^[a-zA-Z0-9/_|\\-=+]{1,1024}$` (or be `*` for a subject)"
            ],
        );
    }

    #[test]
    fn objects() {
        check_object(
            "document:readme",
            expect!["ok document:readme (wildcard false)"],
        );
        check_object("user:*", expect!["ok user:* (wildcard true)"]);
        check_object(
            "document",
            expect![
                "err invalid object reference `document`: expected `:` between the object type and the object id"
            ],
        );
        check_object(
            "document:read me",
            expect![
                "err invalid object reference `document:read me`: invalid object id `read me`: must match `^[a-zA-Z0-9/_|\\-=+]{1,1024}$` (or be `*` for a subject)"
            ],
        );
    }

    #[test]
    fn constructors_and_serde() {
        let user = ObjectType::new("user").unwrap();
        let wildcard = SubjectRef::wildcard(user.clone());
        assert_eq!(wildcard.to_string(), "user:*");
        assert!(wildcard.is_wildcard());

        let alice = ObjectRef::new(user, ObjectId::new("alice").unwrap());
        let subject = SubjectRef::from(alice.clone());
        assert_eq!(subject.object(), &alice);
        assert_eq!(subject.relation(), None);
        assert_eq!(format!("{subject:?}"), "SubjectRef(user:alice)");
        let (object, relation) = subject.clone().into_parts();
        assert_eq!((object, relation), (alice.clone(), None));

        let json = serde_json::to_string(&subject).unwrap();
        assert_eq!(json, "\"user:alice\"");
        assert_eq!(serde_json::from_str::<SubjectRef>(&json).unwrap(), subject);
        let json = serde_json::to_string(&alice).unwrap();
        assert_eq!(serde_json::from_str::<ObjectRef>(&json).unwrap(), alice);
    }
}
