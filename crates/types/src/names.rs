//! Validated names and ids: object types, relations, caveats, object ids and tenants.
//!
//! The rules are SpiceDB's (v1.54, `pkg/tuple/parsing.go` and the `authzed.api.v1` protos).
//! Validation is written by hand: every rule is a short character-class check.
//!
//! All names store their text as `Arc<str>`. The engine clones names constantly (dispatch
//! keys, caches, results), and an `Arc<str>` clone is one reference-count increment with no
//! allocation, while the text itself stays immutable and can be shared across threads.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::TypesError;

/// The longest object type or caveat name, in bytes (the API's `max_bytes`).
const MAX_QUALIFIED_NAME_BYTES: usize = 128;

/// The longest object id, in bytes.
const MAX_OBJECT_ID_BYTES: usize = 1024;

/// The longest tenant id, in bytes.
const MAX_TENANT_ID_BYTES: usize = 63;

/// Checks one name segment: `[a-z][a-z0-9_]{1,max_middle}[a-z0-9]`.
fn is_valid_segment(text: &str, max_middle: usize) -> bool {
    let bytes = text.as_bytes();
    let n_bytes = bytes.len();
    if n_bytes < 3 || n_bytes > max_middle + 2 {
        return false;
    }
    let first_ok = bytes[0].is_ascii_lowercase();
    let middle_ok = bytes[1..n_bytes - 1]
        .iter()
        .all(|&byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    let last = bytes[n_bytes - 1];
    let last_ok = last.is_ascii_lowercase() || last.is_ascii_digit();
    first_ok && middle_ok && last_ok
}

/// Reports whether `text` is a valid relation, permission or name segment:
/// `^[a-z][a-z0-9_]{1,62}[a-z0-9]$`, that is 3 to 64 characters.
///
/// The schema compiler uses this to report SpiceDB's own errors for bad names.
pub fn is_valid_identifier(text: &str) -> bool {
    is_valid_segment(text, 62)
}

/// Reports whether `text` is a valid object type (definition name) or caveat name:
/// `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$`, at most 128 bytes.
///
/// Prefix segments (such as the tenant prefix in `example/user`) allow one character less
/// than the final segment, as SpiceDB's relationship parser and API do.
pub fn is_valid_qualified_name(text: &str) -> bool {
    if text.len() > MAX_QUALIFIED_NAME_BYTES {
        return false;
    }
    let mut segments = text.rsplit('/');
    let Some(last) = segments.next() else {
        return false;
    };
    is_valid_segment(last, 62) && segments.all(|prefix| is_valid_segment(prefix, 61))
}

/// Reports whether `text` is a valid concrete object id: `^[a-zA-Z0-9/_|\-=+]{1,1024}$`.
///
/// The wildcard `*` is not a concrete id, so this returns `false` for it.
pub fn is_valid_object_id(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_OBJECT_ID_BYTES && text.bytes().all(is_object_id_byte)
}

/// Reports whether `byte` may appear in an object id.
pub(crate) fn is_object_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'_' | b'|' | b'-' | b'=' | b'+')
}

/// Reports whether `text` is a valid tenant id: `^[a-z0-9][a-z0-9_-]{0,62}$`.
fn is_valid_tenant_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            text.len() <= MAX_TENANT_ID_BYTES
                && (first.is_ascii_lowercase() || first.is_ascii_digit())
                && rest.iter().all(|&byte| {
                    byte.is_ascii_lowercase()
                        || byte.is_ascii_digit()
                        || matches!(byte, b'_' | b'-')
                })
        }
        None => false,
    }
}

/// Defines a validated string newtype over `Arc<str>` with the usual trait impls.
macro_rules! validated_name {
    (
        $(#[$meta:meta])*
        $name:ident, $is_valid:expr, $error:path
    ) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `text` and wraps it.
            ///
            /// # Errors
            ///
            /// Returns an error naming `text` when it breaks the naming rule.
            pub fn new(text: &str) -> Result<Self, TypesError> {
                if ($is_valid)(text) {
                    Ok(Self(Arc::from(text)))
                } else {
                    Err($error(text.to_owned()))
                }
            }

            /// Returns the name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = TypesError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::new(text)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // `Hash`, `Eq` and `Ord` are derived from the inner `str`, so borrowing as `str` is
        // consistent and lets maps keyed by names be queried with plain string slices.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::new(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

validated_name!(
    /// The name of an object definition, such as `document` or `tenant1/document`.
    ///
    /// Rule: `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$`, at most 128
    /// bytes (see [`is_valid_qualified_name`]).
    ObjectType, is_valid_qualified_name, TypesError::InvalidObjectType
);

validated_name!(
    /// The name of a relation or permission, such as `viewer`.
    ///
    /// Rule: `^[a-z][a-z0-9_]{1,62}[a-z0-9]$` (see [`is_valid_identifier`]). The subject
    /// ellipsis `...` is not a relation name; [`SubjectRef`](crate::SubjectRef) models it as
    /// the absence of a relation.
    RelationName, is_valid_identifier, TypesError::InvalidRelationName
);

validated_name!(
    /// The name of a caveat, such as `ip_allowlist` or `tenant1/ip_allowlist`.
    ///
    /// Rule: the same as [`ObjectType`] (see [`is_valid_qualified_name`]).
    CaveatName, is_valid_qualified_name, TypesError::InvalidCaveatName
);

validated_name!(
    /// The id of an object, such as `readme`, or the subject wildcard `*`.
    ///
    /// Rule: `^[a-zA-Z0-9/_|\-=+]{1,1024}$` (see [`is_valid_object_id`]), or exactly `*`.
    /// The wildcard is accepted here because subjects use it (`user:*`); the places that
    /// need a concrete object (a relationship's resource, a filter's resource id) reject it
    /// and say so. Use [`ObjectId::is_wildcard`] to tell the two apart.
    ObjectId, |text: &str| text == ObjectId::WILDCARD || is_valid_object_id(text), TypesError::InvalidObjectId
);

impl ObjectId {
    /// The text of the subject wildcard, which stands for every object of a type.
    pub const WILDCARD: &'static str = "*";

    /// Returns the wildcard id `*`.
    pub fn wildcard() -> Self {
        Self(Arc::from(Self::WILDCARD))
    }

    /// Reports whether this is the wildcard `*` rather than a concrete id.
    pub fn is_wildcard(&self) -> bool {
        &*self.0 == Self::WILDCARD
    }
}

validated_name!(
    /// The tenant that owns a store's data; storage keys are scoped by it.
    ///
    /// Rule: `^[a-z0-9][a-z0-9_-]{0,62}$`. The characters exclude `/`, `:` and `#`, so a
    /// tenant id can prefix a storage key without escaping, and the rule fits DNS-like and
    /// numeric tenant names alike. Single-tenant deployments use
    /// [`TenantId::default_tenant`].
    TenantId, is_valid_tenant_id, TypesError::InvalidTenantId
);

impl TenantId {
    /// The text of the default tenant.
    pub const DEFAULT: &'static str = "default";

    /// Returns the tenant used when none is configured: `default`.
    ///
    /// It is an ordinary tenant id, so a deployment may also name it explicitly.
    pub fn default_tenant() -> Self {
        Self(Arc::from(Self::DEFAULT))
    }

    /// The text of the [system tenant](TenantId::system).
    pub const SYSTEM: &'static str = "_system";

    /// Returns the reserved system tenant, `_system`, which holds server-wide data (the
    /// tenant registry, root tokens) in the same datastore as every other tenant.
    ///
    /// Its id starts with `_`, which the validation rule rejects, so no user input (an API
    /// request, a config file, a deserialized id) can ever name it: only code that calls
    /// this function reaches the system tenant's data.
    pub fn system() -> Self {
        Self(Arc::from(Self::SYSTEM))
    }

    /// Reports whether this is the [system tenant](TenantId::system).
    pub fn is_system(&self) -> bool {
        &*self.0 == Self::SYSTEM
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::default_tenant()
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// Renders the outcome of constructing each kind of name from `input`.
    fn check(input: &str, expected: Expect) {
        fn show<T: fmt::Display>(res: Result<T, TypesError>) -> String {
            match res {
                Ok(value) => format!("ok `{value}`"),
                Err(err) => format!("err {err}"),
            }
        }
        let actual = format!(
            "type: {}\nrelation: {}\ncaveat: {}\nid: {}\ntenant: {}\n",
            show(ObjectType::new(input)),
            show(RelationName::new(input)),
            show(CaveatName::new(input)),
            show(ObjectId::new(input)),
            show(TenantId::new(input)),
        );
        expected.assert_eq(&actual);
    }

    fn name_of_len(n_chars: usize) -> String {
        let mut text = String::from("a");
        text.push_str(&"b".repeat(n_chars.saturating_sub(1)));
        text
    }

    #[test]
    fn simple_names() {
        check(
            "document",
            expect![[r#"
                type: ok `document`
                relation: ok `document`
                caveat: ok `document`
                id: ok `document`
                tenant: ok `document`
            "#]],
        );
        check(
            "some_name_1",
            expect![[r#"
                type: ok `some_name_1`
                relation: ok `some_name_1`
                caveat: ok `some_name_1`
                id: ok `some_name_1`
                tenant: ok `some_name_1`
            "#]],
        );
    }

    #[test]
    fn rejects_uppercase_and_bad_edges() {
        check(
            "Foo",
            expect![[r#"
                type: err invalid object type `Foo`: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes
                relation: err invalid relation name `Foo`: must match `^[a-z][a-z0-9_]{1,62}[a-z0-9]$`
                caveat: err invalid caveat name `Foo`: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes
                id: ok `Foo`
                tenant: err invalid tenant id `Foo`: must match `^[a-z0-9][a-z0-9_-]{0,62}$`
            "#]],
        );
        check(
            "abc_",
            expect![[r#"
                type: err invalid object type `abc_`: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes
                relation: err invalid relation name `abc_`: must match `^[a-z][a-z0-9_]{1,62}[a-z0-9]$`
                caveat: err invalid caveat name `abc_`: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes
                id: ok `abc_`
                tenant: ok `abc_`
            "#]],
        );
        check(
            "1abc",
            expect![[r#"
                type: err invalid object type `1abc`: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes
                relation: err invalid relation name `1abc`: must match `^[a-z][a-z0-9_]{1,62}[a-z0-9]$`
                caveat: err invalid caveat name `1abc`: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes
                id: ok `1abc`
                tenant: ok `1abc`
            "#]],
        );
        check(
            "",
            expect![[r#"
                type: err invalid object type ``: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes
                relation: err invalid relation name ``: must match `^[a-z][a-z0-9_]{1,62}[a-z0-9]$`
                caveat: err invalid caveat name ``: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes
                id: err invalid object id ``: must match `^[a-zA-Z0-9/_|\-=+]{1,1024}$` (or be `*` for a subject)
                tenant: err invalid tenant id ``: must match `^[a-z0-9][a-z0-9_-]{0,62}$`
            "#]],
        );
    }

    #[test]
    fn id_characters() {
        check(
            "a-B=c+d|e/f_9",
            expect![[r#"
                type: err invalid object type `a-B=c+d|e/f_9`: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes
                relation: err invalid relation name `a-B=c+d|e/f_9`: must match `^[a-z][a-z0-9_]{1,62}[a-z0-9]$`
                caveat: err invalid caveat name `a-B=c+d|e/f_9`: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes
                id: ok `a-B=c+d|e/f_9`
                tenant: err invalid tenant id `a-B=c+d|e/f_9`: must match `^[a-z0-9][a-z0-9_-]{0,62}$`
            "#]],
        );
        for bad_id in ["a b", "a:b", "a#b", "a@b", "a.b", "é", "a*", "**", " "] {
            assert!(
                ObjectId::new(bad_id).is_err(),
                "{bad_id:?} should be rejected"
            );
            assert!(!is_valid_object_id(bad_id));
        }
    }

    #[test]
    fn wildcard_id() {
        let wildcard = ObjectId::new("*").unwrap();
        assert!(wildcard.is_wildcard());
        assert_eq!(wildcard, ObjectId::wildcard());
        assert_eq!(wildcard.as_str(), "*");
        assert!(!ObjectId::new("abc").unwrap().is_wildcard());
        assert!(!is_valid_object_id("*"));
    }

    #[test]
    fn identifier_length_boundaries() {
        let cases = [(2, false), (3, true), (64, true), (65, false)];
        for (n_chars, valid) in cases {
            let text = name_of_len(n_chars);
            assert_eq!(is_valid_identifier(&text), valid, "{n_chars} chars");
            assert_eq!(RelationName::new(&text).is_ok(), valid, "{n_chars} chars");
            assert_eq!(ObjectType::new(&text).is_ok(), valid, "{n_chars} chars");
            assert_eq!(CaveatName::new(&text).is_ok(), valid, "{n_chars} chars");
        }
        assert!(!is_valid_identifier("ab"));
    }

    #[test]
    fn prefix_segments() {
        let cases = [
            ("example/user", true),
            ("org/team/user", true),
            ("abc/de", false),
            ("ab/user", false),
            ("/user", false),
            ("user/", false),
            ("example//user", false),
            ("Example/user", false),
            ("exa_/user", false),
        ];
        for (text, valid) in cases {
            assert_eq!(ObjectType::new(text).is_ok(), valid, "{text}");
            assert_eq!(CaveatName::new(text).is_ok(), valid, "{text}");
            assert!(RelationName::new(text).is_err(), "{text}");
        }
        // A prefix segment allows 63 characters, one less than the final segment.
        let user = "user";
        assert!(ObjectType::new(&format!("{}/{user}", name_of_len(63))).is_ok());
        assert!(ObjectType::new(&format!("{}/{user}", name_of_len(64))).is_err());
        assert!(ObjectType::new(&format!("{user}/{}", name_of_len(64))).is_ok());
        // The whole name is at most 128 bytes.
        let at_limit = format!("{}/{}", name_of_len(63), name_of_len(64));
        assert_eq!(at_limit.len(), 128);
        assert!(ObjectType::new(&at_limit).is_ok());
        let three_segments = format!("abc/{}/{}", name_of_len(60), name_of_len(63));
        assert_eq!(three_segments.len(), 128);
        assert!(ObjectType::new(&three_segments).is_ok());
        let over_limit = format!("abcd/{}/{}", name_of_len(60), name_of_len(63));
        assert_eq!(over_limit.len(), 129);
        assert!(ObjectType::new(&over_limit).is_err());
    }

    #[test]
    fn object_id_length_boundaries() {
        assert!(ObjectId::new(&"x".repeat(1024)).is_ok());
        assert!(ObjectId::new(&"x".repeat(1025)).is_err());
        assert!(ObjectId::new("x").is_ok());
    }

    #[test]
    fn tenant_ids() {
        let cases = [
            ("default", true),
            ("0", true),
            ("acme-corp_1", true),
            ("-acme", false),
            ("_acme", false),
            ("Acme", false),
            ("acme/corp", false),
            ("acme:corp", false),
        ];
        for (text, valid) in cases {
            assert_eq!(TenantId::new(text).is_ok(), valid, "{text}");
        }
        assert!(TenantId::new(&"a".repeat(63)).is_ok());
        assert!(TenantId::new(&"a".repeat(64)).is_err());
        assert_eq!(TenantId::default_tenant().as_str(), "default");
        assert_eq!(TenantId::default(), TenantId::default_tenant());
        // The system tenant is reserved: no validated input produces it.
        assert_eq!(TenantId::system().as_str(), "_system");
        assert!(TenantId::system().is_system());
        assert!(!TenantId::default_tenant().is_system());
        assert!(TenantId::new(TenantId::SYSTEM).is_err());
        assert!(TenantId::SYSTEM.parse::<TenantId>().is_err());
        assert!(serde_json::from_str::<TenantId>("\"_system\"").is_err());
    }

    #[test]
    fn traits() {
        let name: RelationName = "viewer".parse().unwrap();
        assert_eq!(name.to_string(), "viewer");
        assert_eq!(format!("{name:?}"), "\"viewer\"");
        let mut set = std::collections::BTreeSet::new();
        set.insert(name.clone());
        assert!(set.contains("viewer"));
        assert!(RelationName::new("editor").unwrap() < name);

        let json = serde_json::to_string(&name).unwrap();
        assert_eq!(json, "\"viewer\"");
        let back: RelationName = serde_json::from_str(&json).unwrap();
        assert_eq!(back, name);
        let err = serde_json::from_str::<RelationName>("\"Viewer\"").unwrap_err();
        assert!(err.to_string().contains("invalid relation name `Viewer`"));
    }
}
