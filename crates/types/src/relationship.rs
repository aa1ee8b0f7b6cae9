//! Relationships and their SpiceDB text form
//! `document:readme#viewer@user:alice[caveat:{"k":1}][expiration:2025-01-01T00:00:00Z]`.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::refs::serde_via_text;
use crate::{CaveatName, ObjectRef, RelationName, SubjectRef, Timestamp, TypesError};

/// A caveat attached to a relationship, with the context values stored alongside it.
///
/// The context plays the role of `google.protobuf.Struct`: a JSON object whose values are
/// merged with the request context when the caveat is evaluated (stored values win). An
/// empty context means "no stored context".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextualizedCaveat {
    name: CaveatName,
    context: Map<String, Value>,
}

impl ContextualizedCaveat {
    /// Builds a caveat reference with the given stored context.
    pub fn new(name: CaveatName, context: Map<String, Value>) -> Self {
        Self { name, context }
    }

    /// Builds a caveat reference without stored context.
    pub fn without_context(name: CaveatName) -> Self {
        Self::new(name, Map::new())
    }

    /// Returns the caveat's name.
    pub fn name(&self) -> &CaveatName {
        &self.name
    }

    /// Returns the stored context (empty when none was given).
    pub fn context(&self) -> &Map<String, Value> {
        &self.context
    }

    /// Splits the caveat into its name and context.
    pub fn into_parts(self) -> (CaveatName, Map<String, Value>) {
        (self.name, self.context)
    }
}

impl fmt::Display for ContextualizedCaveat {
    /// Writes `name` or `name:{"k":1}` (compact JSON, keys sorted), as inside `[...]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name.as_str())?;
        if !self.context.is_empty() {
            let json = serde_json::to_string(&self.context).map_err(|_| fmt::Error)?;
            write!(f, ":{json}")?;
        }
        Ok(())
    }
}

/// The identity of a relationship: resource, relation and subject.
///
/// Stores upsert by this key: two relationships with the same key and different caveats or
/// expirations are the same relationship at different points in time. Text form
/// `document:readme#viewer@user:alice`. The resource is never a wildcard.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelationshipKey {
    resource: ObjectRef,
    relation: RelationName,
    subject: SubjectRef,
}

impl RelationshipKey {
    /// Builds a key.
    ///
    /// # Errors
    ///
    /// Returns [`TypesError::WildcardResource`] when the resource id is `*`.
    pub fn new(
        resource: ObjectRef,
        relation: RelationName,
        subject: SubjectRef,
    ) -> Result<Self, TypesError> {
        if resource.is_wildcard() {
            return Err(TypesError::WildcardResource(resource.to_string()));
        }
        Ok(Self {
            resource,
            relation,
            subject,
        })
    }

    /// Returns the resource (never a wildcard).
    pub fn resource(&self) -> &ObjectRef {
        &self.resource
    }

    /// Returns the relation on the resource.
    pub fn relation(&self) -> &RelationName {
        &self.relation
    }

    /// Returns the subject.
    pub fn subject(&self) -> &SubjectRef {
        &self.subject
    }

    /// Splits the key into resource, relation and subject.
    pub fn into_parts(self) -> (ObjectRef, RelationName, SubjectRef) {
        (self.resource, self.relation, self.subject)
    }
}

impl fmt::Display for RelationshipKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}@{}", self.resource, self.relation, self.subject)
    }
}

impl fmt::Debug for RelationshipKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelationshipKey({self})")
    }
}

impl FromStr for RelationshipKey {
    type Err = TypesError;

    /// Parses `resource#relation@subject`; a caveat or expiration is an error.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let relationship: Relationship = text.parse()?;
        if relationship.caveat.is_some() || relationship.expiration.is_some() {
            return Err(TypesError::InvalidRelationship {
                input: text.to_owned(),
                reason: "a relationship key cannot carry a caveat or an expiration".to_owned(),
            });
        }
        Ok(relationship.key)
    }
}

/// A relationship: `resource#relation@subject`, optionally caveated and expiring.
///
/// Text form (SpiceDB's `pkg/tuple`), with no whitespace outside the caveat's JSON:
///
/// ```text
/// relationship := resource "#" relation "@" subject [ "[" caveat [ ":" json_object ] "]" ]
///                 [ "[expiration:" rfc3339 "]" ]
/// ```
///
/// e.g. `document:readme#viewer@user:alice[only_weekdays:{"tz":"UTC"}][expiration:2025-01-01T00:00:00Z]`.
/// [`Display`](fmt::Display) writes the canonical form: the subject ellipsis omitted, the
/// context as compact JSON with sorted keys (omitted when empty), and the expiration in UTC
/// with a `Z` and fractional seconds only when non-zero.
#[derive(Clone, PartialEq, Eq)]
pub struct Relationship {
    key: RelationshipKey,
    caveat: Option<ContextualizedCaveat>,
    expiration: Option<Timestamp>,
}

impl Relationship {
    /// Builds a relationship without caveat or expiration.
    ///
    /// # Errors
    ///
    /// Returns [`TypesError::WildcardResource`] when the resource id is `*`.
    pub fn new(
        resource: ObjectRef,
        relation: RelationName,
        subject: SubjectRef,
    ) -> Result<Self, TypesError> {
        RelationshipKey::new(resource, relation, subject).map(Self::from)
    }

    /// Returns the relationship with its caveat replaced.
    #[must_use]
    pub fn with_caveat(mut self, caveat: Option<ContextualizedCaveat>) -> Self {
        self.caveat = caveat;
        self
    }

    /// Returns the relationship with its expiration replaced.
    #[must_use]
    pub fn with_expiration(mut self, expiration: Option<Timestamp>) -> Self {
        self.expiration = expiration;
        self
    }

    /// Returns the resource (never a wildcard).
    pub fn resource(&self) -> &ObjectRef {
        &self.key.resource
    }

    /// Returns the relation on the resource.
    pub fn relation(&self) -> &RelationName {
        &self.key.relation
    }

    /// Returns the subject.
    pub fn subject(&self) -> &SubjectRef {
        &self.key.subject
    }

    /// Returns the caveat, if the relationship is caveated.
    pub fn caveat(&self) -> Option<&ContextualizedCaveat> {
        self.caveat.as_ref()
    }

    /// Returns the expiration time, if any.
    pub fn expiration(&self) -> Option<Timestamp> {
        self.expiration
    }

    /// Returns the identity stores upsert by (everything but caveat and expiration).
    pub fn key(&self) -> &RelationshipKey {
        &self.key
    }

    /// Splits the relationship into its key, caveat and expiration.
    pub fn into_parts(
        self,
    ) -> (
        RelationshipKey,
        Option<ContextualizedCaveat>,
        Option<Timestamp>,
    ) {
        (self.key, self.caveat, self.expiration)
    }
}

impl From<RelationshipKey> for Relationship {
    fn from(key: RelationshipKey) -> Self {
        Self {
            key,
            caveat: None,
            expiration: None,
        }
    }
}

impl fmt::Display for Relationship {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.key, f)?;
        if let Some(caveat) = &self.caveat {
            write!(f, "[{caveat}]")?;
        }
        if let Some(expiration) = &self.expiration {
            write!(f, "[expiration:{expiration}]")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Relationship {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Relationship({self})")
    }
}

impl FromStr for Relationship {
    type Err = TypesError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_relationship(text)
    }
}

serde_via_text!(Relationship);
serde_via_text!(RelationshipKey);

/// The prefix of the expiration block.
const EXPIRATION_OPEN: &str = "[expiration:";

/// Parses the text form; see [`Relationship`].
fn parse_relationship(text: &str) -> Result<Relationship, TypesError> {
    let invalid = |reason: String| TypesError::InvalidRelationship {
        input: text.to_owned(),
        reason,
    };
    // No part before the caveat may contain `#`, `@` or `[` except as the separators, so the
    // first occurrence of each is the separator.
    let (resource_text, rest) = text
        .split_once('#')
        .ok_or_else(|| invalid("expected `#` after the resource".to_owned()))?;
    let (relation_text, rest) = rest
        .split_once('@')
        .ok_or_else(|| invalid("expected `@` after the relation".to_owned()))?;
    let (subject_text, tail) = match rest.find('[') {
        Some(bracket_idx) => rest.split_at(bracket_idx),
        None => (rest, ""),
    };

    let resource: ObjectRef = resource_text
        .parse()
        .map_err(|err: TypesError| invalid(err.to_string()))?;
    let relation = RelationName::new(relation_text).map_err(|err| invalid(err.to_string()))?;
    let subject: SubjectRef = subject_text
        .parse()
        .map_err(|err: TypesError| invalid(err.to_string()))?;
    let (caveat_text, expiration_text) = split_tail(tail);

    let caveat = match caveat_text {
        "" => None,
        caveat_text => Some(parse_caveat(caveat_text).map_err(invalid)?),
    };
    let expiration = match expiration_text {
        None => None,
        Some(expiration_text) => Some(
            expiration_text
                .parse::<Timestamp>()
                .map_err(|err| invalid(err.to_string()))?,
        ),
    };

    let key = RelationshipKey::new(resource, relation, subject)
        .map_err(|err| invalid(err.to_string()))?;
    Ok(Relationship::from(key)
        .with_caveat(caveat)
        .with_expiration(expiration))
}

/// Splits the text after the subject into the caveat block and the expiration timestamp.
///
/// The expiration block is the last `[expiration:…]` when everything up to the final `]` is
/// timestamp characters. Those characters exclude `}`, `"` and `]`, so a caveat's JSON
/// (which ends in `}`) can never be mistaken for it.
fn split_tail(tail: &str) -> (&str, Option<&str>) {
    if let Some(before_close) = tail.strip_suffix(']')
        && let Some(open_idx) = before_close.rfind(EXPIRATION_OPEN)
    {
        let timestamp_text = &before_close[open_idx + EXPIRATION_OPEN.len()..];
        let is_timestamp_text = timestamp_text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || matches!(byte, b'-' | b'.' | b':' | b'T' | b'Z'));
        if is_timestamp_text {
            return (&tail[..open_idx], Some(timestamp_text));
        }
    }
    (tail, None)
}

/// Parses `[name]` or `[name:{json object}]`; the error is a reason for the caller to wrap.
fn parse_caveat(block: &str) -> Result<ContextualizedCaveat, String> {
    let inner = block
        .strip_prefix('[')
        .and_then(|block| block.strip_suffix(']'))
        .ok_or_else(|| {
            format!(
                "expected `[caveat]`, `[caveat:{{…}}]` or `[expiration:…]` after the subject, found `{block}`"
            )
        })?;
    let (name_text, context_text) = match inner.split_once(':') {
        Some((name_text, context_text)) => (name_text, Some(context_text)),
        None => (inner, None),
    };
    // A block named `expiration` without JSON context is a misplaced or malformed expiration
    // (a caveat named `expiration` is still possible, with a JSON context).
    if name_text == "expiration"
        && let Some(context_text) = context_text
        && !context_text.starts_with('{')
    {
        let misplaced = "expected at most one `[caveat]` block followed by at most one \
                         `[expiration:…]` block";
        if context_text.contains(']') {
            return Err(misplaced.to_owned());
        }
        return Err(match context_text.parse::<Timestamp>() {
            Ok(_) => misplaced.to_owned(),
            Err(err) => err.to_string(),
        });
    }
    let name = CaveatName::new(name_text).map_err(|err| err.to_string())?;
    let context = match context_text {
        None => Map::new(),
        Some(context_text) => parse_context(context_text).map_err(|err| err.to_string())?,
    };
    Ok(ContextualizedCaveat::new(name, context))
}

/// Parses caveat context text, which must be a non-empty JSON object.
fn parse_context(text: &str) -> Result<Map<String, Value>, TypesError> {
    let invalid = |reason: String| TypesError::InvalidCaveatContext {
        input: text.to_owned(),
        reason,
    };
    // SpiceDB's grammar is `\{(.+)\}`: at least one character between the braces.
    if !(text.len() > 2 && text.starts_with('{') && text.ends_with('}')) {
        return Err(invalid(
            "must be a non-empty JSON object such as `{\"key\":1}`; write `[name]` for no context"
                .to_owned(),
        ));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid("must be a JSON object".to_owned())),
        Err(err) => Err(invalid(format!("not valid JSON: {err}"))),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use proptest::prelude::*;

    use super::*;
    use crate::{ObjectId, ObjectType};

    /// Parses `input` and renders the canonical form plus the caveat and expiration parts.
    fn check(input: &str, expected: Expect) {
        let actual = match input.parse::<Relationship>() {
            Ok(rel) => {
                let mut out = format!("ok {rel}");
                if let Some(caveat) = rel.caveat() {
                    out.push_str(&format!(
                        "\n  caveat {} context {}",
                        caveat.name(),
                        Value::Object(caveat.context().clone())
                    ));
                }
                if let Some(expiration) = rel.expiration() {
                    out.push_str(&format!("\n  expires {}", expiration.unix_seconds()));
                }
                // The canonical form parses back to the same value.
                let reparsed: Relationship = rel.to_string().parse().unwrap();
                assert_eq!(reparsed, rel);
                out
            }
            Err(err) => format!("err {err}"),
        };
        expected.assert_eq(&actual);
    }

    #[test]
    fn format_md_examples() {
        check(
            "document:firstdoc#viewer@user:tom",
            expect!["ok document:firstdoc#viewer@user:tom"],
        );
        check(
            "system:somesystem#viewer@group:somegroup#membership",
            expect!["ok system:somesystem#viewer@group:somegroup#membership"],
        );
        check(
            "document:public#viewer@user:*",
            expect!["ok document:public#viewer@user:*"],
        );
        check(
            r#"resource:first#reader@user:sarah[some_caveat:{"somecondition": 42}]"#,
            expect![[r#"
                ok resource:first#reader@user:sarah[some_caveat:{"somecondition":42}]
                  caveat some_caveat context {"somecondition":42}"#]],
        );
        check(
            r#"document:thirddoc#viewer@user:fred[somecaveat:{"somesecret":42}][expiration:2322-01-02T12:23:34Z]"#,
            expect![[r#"
                ok document:thirddoc#viewer@user:fred[somecaveat:{"somesecret":42}][expiration:2322-01-02T12:23:34Z]
                  caveat somecaveat context {"somesecret":42}
                  expires 11108147014"#]],
        );
        check(
            "document:readme#viewer@user:alice[expiration:2025-01-01T00:00:00Z]",
            expect![[r#"
                ok document:readme#viewer@user:alice[expiration:2025-01-01T00:00:00Z]
                  expires 1735689600"#]],
        );
        check(
            "access:blue#assigned@user:alice",
            expect!["ok access:blue#assigned@user:alice"],
        );
    }

    #[test]
    fn canonical_forms() {
        check(
            "document:readme#viewer@group:eng#...",
            expect!["ok document:readme#viewer@group:eng"],
        );
        check(
            "example/document:a/b|c=d+e-f_g#viewer@example/user:*",
            expect!["ok example/document:a/b|c=d+e-f_g#viewer@example/user:*"],
        );
        check(
            "document:readme#viewer@user:alice[only_weekdays]",
            expect![[r#"
                ok document:readme#viewer@user:alice[only_weekdays]
                  caveat only_weekdays context {}"#]],
        );
        check(
            r#"document:readme#viewer@user:alice[tenant/cav:{"b":[1,2],"a":{"x":"]"}}]"#,
            expect![[r#"
                ok document:readme#viewer@user:alice[tenant/cav:{"a":{"x":"]"},"b":[1,2]}]
                  caveat tenant/cav context {"a":{"x":"]"},"b":[1,2]}"#]],
        );
        check(
            r#"document:readme#viewer@user:alice[cav:{"at":"[expiration:1]"}]"#,
            expect![[r#"
                ok document:readme#viewer@user:alice[cav:{"at":"[expiration:1]"}]
                  caveat cav context {"at":"[expiration:1]"}"#]],
        );
        check(
            "document:readme#viewer@user:alice[expiration:2025-01-01T00:00:00.120Z]",
            expect![[r#"
                ok document:readme#viewer@user:alice[expiration:2025-01-01T00:00:00.12Z]
                  expires 1735689600"#]],
        );
        check(
            "document:readme#viewer@user:alice[expiration:2025-01-01T01:00:00-01:00]",
            expect![[r#"
                ok document:readme#viewer@user:alice[expiration:2025-01-01T02:00:00Z]
                  expires 1735696800"#]],
        );
    }

    #[test]
    fn structural_errors() {
        check(
            "document:readme",
            expect!["err invalid relationship `document:readme`: expected `#` after the resource"],
        );
        check(
            "document:readme#viewer",
            expect![
                "err invalid relationship `document:readme#viewer`: expected `@` after the relation"
            ],
        );
        check(
            "document:readme#viewer@",
            expect![
                "err invalid relationship `document:readme#viewer@`: invalid subject reference ``: expected `:` between the subject type and the subject id"
            ],
        );
        check(
            "documentreadme#viewer@user:alice",
            expect![
                "err invalid relationship `documentreadme#viewer@user:alice`: invalid object reference `documentreadme`: expected `:` between the object type and the object id"
            ],
        );
        check(
            "",
            expect!["err invalid relationship ``: expected `#` after the resource"],
        );
    }

    #[test]
    fn whitespace_is_rejected() {
        check(
            " document:readme#viewer@user:alice",
            expect![
                "err invalid relationship ` document:readme#viewer@user:alice`: invalid object reference ` document:readme`: invalid object type ` document`: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes"
            ],
        );
        check(
            "document:readme#viewer @user:alice",
            expect![
                "err invalid relationship `document:readme#viewer @user:alice`: invalid relation name `viewer `: must match `^[a-z][a-z0-9_]{1,62}[a-z0-9]$`"
            ],
        );
        check(
            "document:readme#viewer@user:alice ",
            expect![
                "err invalid relationship `document:readme#viewer@user:alice `: invalid subject reference `user:alice `: invalid object id `alice `: must match `^[a-zA-Z0-9/_|\\-=+]{1,1024}$` (or be `*` for a subject)"
            ],
        );
        check(
            "document:readme#viewer@user:alice [cav]",
            expect![
                "err invalid relationship `document:readme#viewer@user:alice [cav]`: invalid subject reference `user:alice `: invalid object id `alice `: must match `^[a-zA-Z0-9/_|\\-=+]{1,1024}$` (or be `*` for a subject)"
            ],
        );
        check(
            "document:readme#viewer@user:alice[expiration: 2025-01-01T00:00:00Z]",
            expect![
                "err invalid relationship `document:readme#viewer@user:alice[expiration: 2025-01-01T00:00:00Z]`: invalid timestamp ` 2025-01-01T00:00:00Z`: must be RFC 3339 using only `0-9`, `-`, `.`, `:`, `T` and `Z`, e.g. `2025-01-01T00:00:00Z`"
            ],
        );
    }

    #[test]
    fn bad_names() {
        check(
            "Document:readme#viewer@user:alice",
            expect![
                "err invalid relationship `Document:readme#viewer@user:alice`: invalid object reference `Document:readme`: invalid object type `Document`: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes"
            ],
        );
        check(
            "document:readme#vi@user:alice",
            expect![
                "err invalid relationship `document:readme#vi@user:alice`: invalid relation name `vi`: must match `^[a-z][a-z0-9_]{1,62}[a-z0-9]$`"
            ],
        );
        check(
            "document:readme#viewer@user:alice#Member",
            expect![
                "err invalid relationship `document:readme#viewer@user:alice#Member`: invalid subject reference `user:alice#Member`: invalid relation name `Member`: must match `^[a-z][a-z0-9_]{1,62}[a-z0-9]$`"
            ],
        );
        check(
            "document:readme#viewer@user:alice[Cav]",
            expect![
                "err invalid relationship `document:readme#viewer@user:alice[Cav]`: invalid caveat name `Cav`: must match `^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$` and be at most 128 bytes"
            ],
        );
        check(
            "document:*#viewer@user:alice",
            expect![
                "err invalid relationship `document:*#viewer@user:alice`: invalid resource `document:*`: the wildcard `*` is only allowed in subjects"
            ],
        );
        check(
            "document:readme#...@user:alice",
            expect![
                "err invalid relationship `document:readme#...@user:alice`: invalid relation name `...`: must match `^[a-z][a-z0-9_]{1,62}[a-z0-9]$`"
            ],
        );
    }

    #[test]
    fn id_length_limits() {
        let long_id = "x".repeat(1024);
        let ok_text = format!("document:{long_id}#viewer@user:{long_id}");
        assert_eq!(
            ok_text.parse::<Relationship>().unwrap().to_string(),
            ok_text
        );
        let too_long = "x".repeat(1025);
        assert!(
            format!("document:{too_long}#viewer@user:alice")
                .parse::<Relationship>()
                .is_err()
        );
        assert!(
            format!("document:readme#viewer@user:{too_long}")
                .parse::<Relationship>()
                .is_err()
        );
    }

    #[test]
    fn caveat_context_errors() {
        check(
            "document:readme#viewer@user:alice[cav:{}]",
            expect![
                "err invalid relationship `document:readme#viewer@user:alice[cav:{}]`: invalid caveat context `{}`: must be a non-empty JSON object such as `{\"key\":1}`; write `[name]` for no context"
            ],
        );
        check(
            "document:readme#viewer@user:alice[cav:[1,2]]",
            expect![
                "err invalid relationship `document:readme#viewer@user:alice[cav:[1,2]]`: invalid caveat context `[1,2]`: must be a non-empty JSON object such as `{\"key\":1}`; write `[name]` for no context"
            ],
        );
        check(
            "document:readme#viewer@user:alice[cav:42]",
            expect![
                "err invalid relationship `document:readme#viewer@user:alice[cav:42]`: invalid caveat context `42`: must be a non-empty JSON object such as `{\"key\":1}`; write `[name]` for no context"
            ],
        );
        check(
            r#"document:readme#viewer@user:alice[cav:{"a":1}{"b":2}]"#,
            expect![[
                r#"err invalid relationship `document:readme#viewer@user:alice[cav:{"a":1}{"b":2}]`: invalid caveat context `{"a":1}{"b":2}`: not valid JSON: trailing characters at line 1 column 8"#
            ]],
        );
        check(
            r#"document:readme#viewer@user:alice[cav:{"a":}]"#,
            expect![[
                r#"err invalid relationship `document:readme#viewer@user:alice[cav:{"a":}]`: invalid caveat context `{"a":}`: not valid JSON: expected value at line 1 column 6"#
            ]],
        );
        check(
            r#"document:readme#viewer@user:alice[cav:{"a":1}"#,
            expect![[
                r#"err invalid relationship `document:readme#viewer@user:alice[cav:{"a":1}`: expected `[caveat]`, `[caveat:{…}]` or `[expiration:…]` after the subject, found `[cav:{"a":1}`"#
            ]],
        );
        check(
            r#"document:readme#viewer@user:alice[cav:{"a":1}]x"#,
            expect![[
                r#"err invalid relationship `document:readme#viewer@user:alice[cav:{"a":1}]x`: expected `[caveat]`, `[caveat:{…}]` or `[expiration:…]` after the subject, found `[cav:{"a":1}]x`"#
            ]],
        );
    }

    #[test]
    fn expiration_errors_and_order() {
        check(
            "document:readme#viewer@user:alice[expiration:2025-01-01]",
            expect![
                "err invalid relationship `document:readme#viewer@user:alice[expiration:2025-01-01]`: invalid timestamp `2025-01-01`: must be RFC 3339, e.g. `2025-01-01T00:00:00Z`"
            ],
        );
        // The caveat must come before the expiration.
        check(
            "document:readme#viewer@user:alice[expiration:2025-01-01T00:00:00Z][cav]",
            expect![
                "err invalid relationship `document:readme#viewer@user:alice[expiration:2025-01-01T00:00:00Z][cav]`: expected at most one `[caveat]` block followed by at most one `[expiration:…]` block"
            ],
        );
        check(
            "document:readme#viewer@user:alice[expiration:2025-01-01T00:00:00Z][expiration:2025-01-01T00:00:00Z]",
            expect![
                "err invalid relationship `document:readme#viewer@user:alice[expiration:2025-01-01T00:00:00Z][expiration:2025-01-01T00:00:00Z]`: expected at most one `[caveat]` block followed by at most one `[expiration:…]` block"
            ],
        );
        check(
            "document:readme#viewer@user:alice[expiration:2025-01-01T00:00:00+01:00]",
            expect![
                "err invalid relationship `document:readme#viewer@user:alice[expiration:2025-01-01T00:00:00+01:00]`: invalid timestamp `2025-01-01T00:00:00+01:00`: must be RFC 3339 using only `0-9`, `-`, `.`, `:`, `T` and `Z`, e.g. `2025-01-01T00:00:00Z`"
            ],
        );
    }

    #[test]
    fn key_identity() {
        let plain: Relationship = "document:readme#viewer@user:alice".parse().unwrap();
        let caveated: Relationship =
            r#"document:readme#viewer@user:alice[cav:{"a":1}][expiration:2025-01-01T00:00:00Z]"#
                .parse()
                .unwrap();
        assert_ne!(plain, caveated);
        assert_eq!(plain.key(), caveated.key());
        assert_eq!(
            caveated.key().to_string(),
            "document:readme#viewer@user:alice"
        );
        let ellipsis: Relationship = "document:readme#viewer@user:alice#...".parse().unwrap();
        assert_eq!(ellipsis, plain);

        let key: RelationshipKey = "document:readme#viewer@user:alice".parse().unwrap();
        assert_eq!(&key, plain.key());
        expect!["invalid relationship `document:readme#viewer@user:alice[cav]`: a relationship key cannot carry a caveat or an expiration"]
            .assert_eq(
                &"document:readme#viewer@user:alice[cav]"
                    .parse::<RelationshipKey>()
                    .unwrap_err()
                    .to_string(),
            );
        let (resource, relation, subject) = key.clone().into_parts();
        assert_eq!(
            RelationshipKey::new(resource, relation, subject).unwrap(),
            key
        );
    }

    #[test]
    fn constructors() {
        let document = ObjectType::new("document").unwrap();
        let user = ObjectType::new("user").unwrap();
        let viewer = RelationName::new("viewer").unwrap();
        let wildcard_resource = ObjectRef::new(document.clone(), ObjectId::wildcard());
        let err = Relationship::new(
            wildcard_resource,
            viewer.clone(),
            SubjectRef::wildcard(user.clone()),
        )
        .unwrap_err();
        assert_eq!(err, TypesError::WildcardResource("document:*".to_owned()));

        let resource = ObjectRef::new(document, ObjectId::new("readme").unwrap());
        let mut context = Map::new();
        context.insert("k".to_owned(), Value::from(1));
        let caveat = ContextualizedCaveat::new(CaveatName::new("cav").unwrap(), context);
        let expiration: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let rel = Relationship::new(resource.clone(), viewer, SubjectRef::wildcard(user))
            .unwrap()
            .with_caveat(Some(caveat.clone()))
            .with_expiration(Some(expiration));
        assert_eq!(
            rel.to_string(),
            r#"document:readme#viewer@user:*[cav:{"k":1}][expiration:2025-01-01T00:00:00Z]"#
        );
        assert_eq!(rel.resource(), &resource);
        assert_eq!(rel.relation().as_str(), "viewer");
        assert!(rel.subject().is_wildcard());
        assert_eq!(rel.caveat(), Some(&caveat));
        assert_eq!(rel.expiration(), Some(expiration));
        assert_eq!(
            ContextualizedCaveat::without_context(CaveatName::new("cav").unwrap()).to_string(),
            "cav"
        );
        let (key, caveat_part, expiration_part) = rel.clone().into_parts();
        assert_eq!(
            Relationship::from(key)
                .with_caveat(caveat_part)
                .with_expiration(expiration_part),
            rel
        );
        assert_eq!(
            format!("{rel:?}"),
            r#"Relationship(document:readme#viewer@user:*[cav:{"k":1}][expiration:2025-01-01T00:00:00Z])"#
        );

        let json = serde_json::to_string(&rel).unwrap();
        assert_eq!(serde_json::from_str::<Relationship>(&json).unwrap(), rel);
    }

    fn qualified_name() -> impl Strategy<Value = String> {
        (
            proptest::option::of("[a-z][a-z0-9_]{1,20}[a-z0-9]"),
            "[a-z][a-z0-9_]{1,62}[a-z0-9]",
        )
            .prop_map(|(prefix, name)| match prefix {
                Some(prefix) => format!("{prefix}/{name}"),
                None => name,
            })
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[ -~]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                proptest::collection::btree_map("[ -~]{0,4}", inner, 0..3)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    fn relationship() -> impl Strategy<Value = Relationship> {
        let id = "[a-zA-Z0-9/_|=+-]{1,40}";
        let subject_id = prop_oneof![Just("*".to_owned()), id.prop_map(|id| id)];
        let caveat = proptest::option::of((
            qualified_name(),
            proptest::collection::btree_map("[ -~]{0,6}", json_value(), 0..3),
        ));
        let expiration = proptest::option::of((
            -62_167_219_200_i64..253_402_300_799,
            prop_oneof![Just(0_u32), 0_u32..1_000_000_000],
        ));
        (
            (qualified_name(), id, "[a-z][a-z0-9_]{1,62}[a-z0-9]"),
            (
                qualified_name(),
                subject_id,
                proptest::option::of("[a-z][a-z0-9_]{1,62}[a-z0-9]"),
            ),
            caveat,
            expiration,
        )
            .prop_map(
                |(
                    (resource_type, resource_id, relation),
                    (subject_type, subject_id, subject_relation),
                    caveat,
                    expiration,
                )| {
                    let resource = ObjectRef::new(
                        ObjectType::new(&resource_type).unwrap(),
                        ObjectId::new(&resource_id).unwrap(),
                    );
                    let subject = SubjectRef::new(
                        ObjectRef::new(
                            ObjectType::new(&subject_type).unwrap(),
                            ObjectId::new(&subject_id).unwrap(),
                        ),
                        subject_relation.map(|relation| RelationName::new(&relation).unwrap()),
                    );
                    let caveat = caveat.map(|(name, context)| {
                        ContextualizedCaveat::new(
                            CaveatName::new(&name).unwrap(),
                            context.into_iter().collect(),
                        )
                    });
                    let expiration = expiration
                        .map(|(seconds, nanos)| Timestamp::from_unix(seconds, nanos).unwrap());
                    Relationship::new(resource, RelationName::new(&relation).unwrap(), subject)
                        .unwrap()
                        .with_caveat(caveat)
                        .with_expiration(expiration)
                },
            )
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(rel in relationship()) {
            let text = rel.to_string();
            let parsed: Relationship = text.parse().unwrap();
            prop_assert_eq!(&parsed, &rel);
            prop_assert_eq!(parsed.to_string(), text);
        }
    }
}
