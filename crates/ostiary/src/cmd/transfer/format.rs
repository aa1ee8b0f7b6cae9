//! The export file format (`ostiary export` / `ostiary import`): JSON lines, one value per
//! line, UTF-8, each line ending in `\n`.
//!
//! 1. A header: `{"format":"ostiary-export","version":1,"schema":"<schema text>",
//!    "revision":"<consistency token>"}`. `revision` is the token every relationship was read
//!    at (one consistent snapshot).
//! 2. Relationship lines, in the server's export order:
//!    `{"resource":{"type":"document","id":"readme"},"relation":"viewer",
//!    "subject":{"type":"group","id":"eng","relation":"member"}}`, where `subject.relation` is
//!    left out for a plain subject, plus optionally `"caveat":{"name":"ip_allowed",
//!    "context":{...}}` (`context` left out when there is none) and
//!    `"expires_at":"2030-01-01T00:00:00Z"` (RFC 3339, UTC).
//! 3. Checkpoint lines, `{"checkpoint":"<cursor>","count":N}`, after every page the server
//!    sends: the export cursor after the first `N` relationships. `ostiary export --resume`
//!    continues from the last one; importers skip them.
//! 4. A trailer, `{"count":N,"sha256":"<hex>"}`: the number of relationship lines and the
//!    SHA-256 of their exact bytes (each including its `\n`), in order. A file without a
//!    trailer is incomplete; `ostiary import` refuses a file whose trailer does not match.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use ostiary_proto::authzed::api::v1 as pb;
use prost_types::value::Kind;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The `format` field of the header.
pub(crate) const FORMAT: &str = "ostiary-export";
/// The version of the format this build writes and reads.
pub(crate) const VERSION: u32 = 1;

/// The first line of an export file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    /// Always [`FORMAT`].
    pub(crate) format: String,
    /// Always [`VERSION`].
    pub(crate) version: u32,
    /// The schema text.
    pub(crate) schema: String,
    /// The consistency token the relationships were read at.
    pub(crate) revision: String,
}

impl Header {
    /// Parses and checks a header line.
    pub(crate) fn parse(line: &str) -> anyhow::Result<Self> {
        let header: Self =
            serde_json::from_str(line).context("the first line is not an ostiary export header")?;
        if header.format != FORMAT {
            bail!(
                "the first line names format `{}`, not `{FORMAT}`",
                header.format
            );
        }
        if header.version != VERSION {
            bail!(
                "the file is format version {}; this build reads version {VERSION}",
                header.version
            );
        }
        Ok(header)
    }
}

/// An object: a type and an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObjectLine {
    /// The object type.
    #[serde(rename = "type")]
    pub(crate) object_type: String,
    /// The object id.
    pub(crate) id: String,
}

/// A subject: an object and an optional relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubjectLine {
    /// The subject's object type.
    #[serde(rename = "type")]
    pub(crate) object_type: String,
    /// The subject's object id.
    pub(crate) id: String,
    /// The subject relation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) relation: Option<String>,
}

/// A caveat on a relationship.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaveatLine {
    /// The caveat's name.
    pub(crate) name: String,
    /// Its context, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) context: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One relationship line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RelationshipLine {
    /// The resource.
    pub(crate) resource: ObjectLine,
    /// The relation.
    pub(crate) relation: String,
    /// The subject.
    pub(crate) subject: SubjectLine,
    /// The caveat, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) caveat: Option<CaveatLine>,
    /// The expiration time (RFC 3339), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<String>,
}

/// A checkpoint line: the export cursor after `count` relationships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Checkpoint {
    /// The cursor to pass to ExportBulkRelationships to continue.
    pub(crate) checkpoint: String,
    /// How many relationship lines precede this checkpoint.
    pub(crate) count: u64,
}

/// The last line of a complete export file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Trailer {
    /// The number of relationship lines.
    pub(crate) count: u64,
    /// The lowercase hex SHA-256 of the relationship lines' bytes.
    pub(crate) sha256: String,
}

/// A line after the header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Line {
    /// A relationship.
    Relationship(Box<RelationshipLine>),
    /// A resume point.
    Checkpoint(Checkpoint),
    /// The end of the file.
    Trailer(Trailer),
}

impl Line {
    /// Parses a line after the header; which kind it is follows from its keys.
    pub(crate) fn parse(line: &str) -> anyhow::Result<Self> {
        let value: serde_json::Value = serde_json::from_str(line).context("not a JSON value")?;
        let Some(object) = value.as_object() else {
            bail!("not a JSON object");
        };
        if object.contains_key("checkpoint") {
            Ok(Self::Checkpoint(
                serde_json::from_value(value).context("not a checkpoint line")?,
            ))
        } else if object.contains_key("sha256") {
            Ok(Self::Trailer(
                serde_json::from_value(value).context("not a trailer line")?,
            ))
        } else {
            Ok(Self::Relationship(Box::new(
                serde_json::from_value(value).context("not a relationship line")?,
            )))
        }
    }
}

/// Serializes `value` as one line, with its `\n`.
pub(crate) fn to_line<T: Serialize>(value: &T) -> anyhow::Result<String> {
    let mut line = serde_json::to_string(value).context("cannot serialize a line")?;
    line.push('\n');
    Ok(line)
}

/// The running count and checksum of relationship lines.
#[derive(Debug, Clone, Default)]
pub(crate) struct Digest {
    hasher: Sha256,
    count: u64,
}

impl Digest {
    /// Adds one relationship line (its exact bytes, `\n` included).
    pub(crate) fn add(&mut self, line: &[u8]) {
        self.hasher.update(line);
        self.count += 1;
    }

    /// How many lines were added.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The trailer for the lines added so far.
    pub(crate) fn trailer(&self) -> Trailer {
        let hash = self.hasher.clone().finalize();
        let sha256 = hash.iter().map(|byte| format!("{byte:02x}")).collect();
        Trailer {
            count: self.count,
            sha256,
        }
    }
}

/// Converts a wire relationship into its line form.
pub(crate) fn from_pb(rel: &pb::Relationship) -> anyhow::Result<RelationshipLine> {
    let resource = rel
        .resource
        .as_ref()
        .context("the server sent a relationship without a resource")?;
    let subject = rel
        .subject
        .as_ref()
        .context("the server sent a relationship without a subject")?;
    let subject_object = subject
        .object
        .as_ref()
        .context("the server sent a relationship without a subject object")?;
    let caveat = rel
        .optional_caveat
        .as_ref()
        .map(|caveat| -> anyhow::Result<CaveatLine> {
            Ok(CaveatLine {
                name: caveat.caveat_name.clone(),
                context: caveat.context.as_ref().map(struct_to_json).transpose()?,
            })
        })
        .transpose()?;
    Ok(RelationshipLine {
        resource: ObjectLine {
            object_type: resource.object_type.clone(),
            id: resource.object_id.clone(),
        },
        relation: rel.relation.clone(),
        subject: SubjectLine {
            object_type: subject_object.object_type.clone(),
            id: subject_object.object_id.clone(),
            relation: Some(subject.optional_relation.clone()).filter(|rel| !rel.is_empty()),
        },
        caveat,
        expires_at: rel.optional_expires_at.as_ref().map(ToString::to_string),
    })
}

/// Converts a relationship line into its wire form.
pub(crate) fn to_pb(line: &RelationshipLine) -> anyhow::Result<pb::Relationship> {
    let optional_expires_at = line
        .expires_at
        .as_deref()
        .map(|text| {
            text.parse::<prost_types::Timestamp>()
                .with_context(|| format!("`{text}` is not an RFC 3339 time"))
        })
        .transpose()?;
    Ok(pb::Relationship {
        resource: Some(pb::ObjectReference {
            object_type: line.resource.object_type.clone(),
            object_id: line.resource.id.clone(),
        }),
        relation: line.relation.clone(),
        subject: Some(pb::SubjectReference {
            object: Some(pb::ObjectReference {
                object_type: line.subject.object_type.clone(),
                object_id: line.subject.id.clone(),
            }),
            optional_relation: line.subject.relation.clone().unwrap_or_default(),
        }),
        optional_caveat: line.caveat.as_ref().map(|caveat| pb::ContextualizedCaveat {
            caveat_name: caveat.name.clone(),
            context: caveat.context.as_ref().map(json_to_struct),
        }),
        optional_expires_at,
    })
}

fn struct_to_json(
    value: &prost_types::Struct,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    value
        .fields
        .iter()
        .map(|(key, value)| Ok((key.clone(), value_to_json(value)?)))
        .collect()
}

fn value_to_json(value: &prost_types::Value) -> anyhow::Result<serde_json::Value> {
    Ok(match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(flag)) => serde_json::Value::Bool(*flag),
        Some(Kind::StringValue(text)) => serde_json::Value::String(text.clone()),
        Some(Kind::NumberValue(number)) => serde_json::Number::from_f64(*number)
            .map(serde_json::Value::Number)
            .with_context(|| format!("caveat context number `{number}` has no JSON form"))?,
        Some(Kind::StructValue(inner)) => serde_json::Value::Object(struct_to_json(inner)?),
        Some(Kind::ListValue(list)) => serde_json::Value::Array(
            list.values
                .iter()
                .map(value_to_json)
                .collect::<anyhow::Result<_>>()?,
        ),
    })
}

fn json_to_struct(map: &serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(key, value)| (key.clone(), json_to_value(value)))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn json_to_value(value: &serde_json::Value) -> prost_types::Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(flag) => Kind::BoolValue(*flag),
        serde_json::Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(text) => Kind::StringValue(text.clone()),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(json_to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caveated() -> pb::Relationship {
        let line: RelationshipLine = serde_json::from_str(
            r#"{"resource":{"type":"doc","id":"1"},"relation":"viewer","subject":{"type":"group","id":"eng","relation":"member"},"caveat":{"name":"ip","context":{"cidr":"10.0.0.0/8","n":3,"list":[true,null,"x"],"inner":{"a":1.5}}},"expires_at":"2030-01-02T03:04:05Z"}"#,
        )
        .unwrap();
        to_pb(&line).unwrap()
    }

    #[test]
    fn relationships_round_trip_through_lines() {
        let rel = caveated();
        assert_eq!(rel.subject.as_ref().unwrap().optional_relation, "member");
        assert_eq!(rel.optional_expires_at.unwrap().seconds, 1_893_553_445);
        let line = from_pb(&rel).unwrap();
        assert_eq!(to_pb(&line).unwrap(), rel);
        let text = to_line(&line).unwrap();
        assert!(text.ends_with("}\n"));
        let Line::Relationship(parsed) = Line::parse(text.trim_end()).unwrap() else {
            panic!("not a relationship line: {text}");
        };
        assert_eq!(*parsed, line);
    }

    #[test]
    fn plain_relationships_leave_out_optional_fields() {
        let mut rel = caveated();
        rel.optional_caveat = None;
        rel.optional_expires_at = None;
        rel.subject.as_mut().unwrap().optional_relation = String::new();
        let text = to_line(&from_pb(&rel).unwrap()).unwrap();
        assert_eq!(
            text,
            "{\"resource\":{\"type\":\"doc\",\"id\":\"1\"},\"relation\":\"viewer\",\"subject\":{\"type\":\"group\",\"id\":\"eng\"}}\n"
        );
    }

    #[test]
    fn lines_are_told_apart_by_their_keys() {
        assert_eq!(
            Line::parse(r#"{"checkpoint":"abc","count":2}"#).unwrap(),
            Line::Checkpoint(Checkpoint {
                checkpoint: "abc".to_owned(),
                count: 2
            })
        );
        assert!(matches!(
            Line::parse(r#"{"count":2,"sha256":"00"}"#).unwrap(),
            Line::Trailer(_)
        ));
        assert!(Line::parse(r#"{"resource":1}"#).is_err());
        assert!(Line::parse("[1]").is_err());
    }

    #[test]
    fn headers_are_checked() {
        let good = r#"{"format":"ostiary-export","version":1,"schema":"definition user {}","revision":"t"}"#;
        assert_eq!(Header::parse(good).unwrap().schema, "definition user {}");
        assert!(Header::parse(&good.replace("\"version\":1", "\"version\":2")).is_err());
        assert!(Header::parse(&good.replace("ostiary-export", "other")).is_err());
    }

    #[test]
    fn the_digest_is_sha256_of_the_lines() {
        let mut digest = Digest::default();
        digest.add(b"abc");
        let trailer = digest.trailer();
        assert_eq!(trailer.count, 1);
        assert_eq!(
            trailer.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
