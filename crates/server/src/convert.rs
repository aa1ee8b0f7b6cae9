//! Conversions between `authzed.api.v1` messages and Ostiary's types. Proto types stop here:
//! nothing past this module sees them. Every error names the offending request field.

use ostiary_engine::{
    CaveatResult, CaveatTrace, CheckTrace, Permissionship, TraceKind, TraceResult, TraceSource,
};
use ostiary_proto::authzed::api::v1 as pb;
use ostiary_types::{
    CaveatName, ContextualizedCaveat, ObjectId, ObjectRef, ObjectType, RelationFilter,
    RelationName, Relationship, RelationshipFilter, SubjectFilter, SubjectRef, Timestamp,
};
use prost_types::value::Kind;
use serde_json::{Map, Value as Json};

use crate::status::ApiError;

/// Parses an object type field.
pub(crate) fn object_type(field: &str, text: &str) -> Result<ObjectType, ApiError> {
    if text.is_empty() {
        return Err(ApiError::missing(field));
    }
    ObjectType::new(text).map_err(|err| ApiError::field(field, &err))
}

/// Parses a relation or permission name field.
pub(crate) fn relation_name(field: &str, text: &str) -> Result<RelationName, ApiError> {
    if text.is_empty() {
        return Err(ApiError::missing(field));
    }
    RelationName::new(text).map_err(|err| ApiError::field(field, &err))
}

/// Parses an object id field.
pub(crate) fn object_id(field: &str, text: &str) -> Result<ObjectId, ApiError> {
    if text.is_empty() {
        return Err(ApiError::missing(field));
    }
    ObjectId::new(text).map_err(|err| ApiError::field(field, &err))
}

/// Converts a required object reference.
pub(crate) fn object_ref(
    field: &str,
    object: Option<&pb::ObjectReference>,
) -> Result<ObjectRef, ApiError> {
    let object = object.ok_or_else(|| ApiError::missing(field))?;
    Ok(ObjectRef::new(
        object_type(&format!("{field}.object_type"), &object.object_type)?,
        object_id(&format!("{field}.object_id"), &object.object_id)?,
    ))
}

/// Converts a required subject reference.
pub(crate) fn subject_ref(
    field: &str,
    subject: Option<&pb::SubjectReference>,
) -> Result<SubjectRef, ApiError> {
    let subject = subject.ok_or_else(|| ApiError::missing(field))?;
    let object = object_ref(&format!("{field}.object"), subject.object.as_ref())?;
    let relation = if subject.optional_relation.is_empty() {
        None
    } else {
        Some(relation_name(
            &format!("{field}.optional_relation"),
            &subject.optional_relation,
        )?)
    };
    Ok(SubjectRef::new(object, relation))
}

/// Converts an optional `google.protobuf.Struct` into a JSON object.
pub(crate) fn context(context: Option<&prost_types::Struct>) -> Map<String, Json> {
    context.map(struct_to_json).unwrap_or_default()
}

/// Converts a `Struct` into a JSON object.
fn struct_to_json(value: &prost_types::Struct) -> Map<String, Json> {
    value
        .fields
        .iter()
        .map(|(key, value)| (key.clone(), value_to_json(value)))
        .collect()
}

/// Converts a protobuf `Value` into JSON (whole numbers become integers, as CEL wants).
fn value_to_json(value: &prost_types::Value) -> Json {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(value)) => Json::Bool(*value),
        Some(Kind::NumberValue(number)) => {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "only whole numbers within i64 range are converted"
            )]
            let whole = *number as i64;
            #[expect(clippy::cast_precision_loss, reason = "round-trip check")]
            if number.fract() == 0.0 && (whole as f64) == *number && number.abs() < 9.0e15 {
                Json::from(whole)
            } else {
                serde_json::Number::from_f64(*number).map_or(Json::Null, Json::Number)
            }
        }
        Some(Kind::StringValue(text)) => Json::String(text.clone()),
        Some(Kind::ListValue(list)) => Json::Array(list.values.iter().map(value_to_json).collect()),
        Some(Kind::StructValue(inner)) => Json::Object(struct_to_json(inner)),
    }
}

/// Converts a JSON object into a `Struct`.
pub(crate) fn json_to_struct(map: &Map<String, Json>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(key, value)| (key.clone(), json_to_value(value)))
            .collect(),
    }
}

/// Converts JSON into a protobuf `Value`.
fn json_to_value(value: &Json) -> prost_types::Value {
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(value) => Kind::BoolValue(*value),
        Json::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or_default()),
        Json::String(text) => Kind::StringValue(text.clone()),
        Json::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        Json::Object(map) => Kind::StructValue(json_to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// Converts a relationship from the wire; `field` is its path in the request.
pub(crate) fn relationship(
    field: &str,
    rel: Option<&pb::Relationship>,
) -> Result<Relationship, ApiError> {
    let rel = rel.ok_or_else(|| ApiError::missing(field))?;
    let resource = object_ref(&format!("{field}.resource"), rel.resource.as_ref())?;
    let relation = relation_name(&format!("{field}.relation"), &rel.relation)?;
    let subject = subject_ref(&format!("{field}.subject"), rel.subject.as_ref())?;
    let caveat = match &rel.optional_caveat {
        Some(caveat) if !caveat.caveat_name.is_empty() => {
            let name = CaveatName::new(&caveat.caveat_name)
                .map_err(|err| ApiError::field(&format!("{field}.optional_caveat"), &err))?;
            Some(ContextualizedCaveat::new(
                name,
                context(caveat.context.as_ref()),
            ))
        }
        Some(_) => {
            return Err(ApiError::missing(&format!(
                "{field}.optional_caveat.caveat_name"
            )));
        }
        None => None,
    };
    let expiration = rel
        .optional_expires_at
        .as_ref()
        .map(|at| timestamp(&format!("{field}.optional_expires_at"), at))
        .transpose()?;
    Ok(Relationship::new(resource, relation, subject)
        .map_err(|err| ApiError::field(&format!("{field}.resource"), &err))?
        .with_caveat(caveat)
        .with_expiration(expiration))
}

/// Converts a timestamp from the wire.
pub(crate) fn timestamp(field: &str, at: &prost_types::Timestamp) -> Result<Timestamp, ApiError> {
    let nanos = u32::try_from(at.nanos)
        .map_err(|_| ApiError::invalid(format!("invalid `{field}`: negative nanoseconds")))?;
    Timestamp::from_unix(at.seconds, nanos).map_err(|err| ApiError::field(field, &err))
}

/// Converts a timestamp to the wire.
pub(crate) fn timestamp_to_pb(at: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.unix_seconds(),
        nanos: i32::try_from(at.subsec_nanos()).unwrap_or(0),
    }
}

/// Converts an object reference to the wire.
pub(crate) fn object_to_pb(object: &ObjectRef) -> pb::ObjectReference {
    pb::ObjectReference {
        object_type: object.object_type().to_string(),
        object_id: object.object_id().to_string(),
    }
}

/// Converts a subject reference to the wire.
pub(crate) fn subject_to_pb(subject: &SubjectRef) -> pb::SubjectReference {
    pb::SubjectReference {
        object: Some(object_to_pb(subject.object())),
        optional_relation: subject
            .relation()
            .map(ToString::to_string)
            .unwrap_or_default(),
    }
}

/// Converts a relationship to the wire.
pub(crate) fn relationship_to_pb(rel: &Relationship) -> pb::Relationship {
    pb::Relationship {
        resource: Some(object_to_pb(rel.resource())),
        relation: rel.relation().to_string(),
        subject: Some(subject_to_pb(rel.subject())),
        optional_caveat: rel.caveat().map(|caveat| pb::ContextualizedCaveat {
            caveat_name: caveat.name().to_string(),
            context: Some(json_to_struct(caveat.context())),
        }),
        optional_expires_at: rel.expiration().map(|at| prost_types::Timestamp {
            seconds: at.unix_seconds(),
            nanos: i32::try_from(at.subsec_nanos()).unwrap_or(0),
        }),
    }
}

/// Converts an engine check trace to SpiceDB's `CheckDebugTrace`: one message per node
/// evaluated, sub-problems in evaluation order, `was_cached_result` for nodes taken from the
/// request's memo, the first caveat a node evaluated as its `caveat_evaluation_info`, and
/// `source` saying `ostiary:evaluated`, `ostiary:memo`, `ostiary:subject`, `ostiary:cycle`
/// or `ostiary:depth-limit`.
pub(crate) fn check_trace_to_pb(trace: &CheckTrace, subject: &SubjectRef) -> pb::CheckDebugTrace {
    use pb::check_debug_trace::{PermissionType, Permissionship as P, Resolution, SubProblems};
    let result = match &trace.result {
        TraceResult::Permissionship(Permissionship::Has) => P::HasPermission,
        TraceResult::Permissionship(Permissionship::No) => P::NoPermission,
        TraceResult::Permissionship(Permissionship::Conditional { .. }) => P::ConditionalPermission,
        TraceResult::Error(_) => P::Unspecified,
    };
    let resolution = if trace.sub_problems.is_empty() {
        Resolution::WasCachedResult(trace.source == TraceSource::Memo)
    } else {
        Resolution::SubProblems(SubProblems {
            traces: trace
                .sub_problems
                .iter()
                .map(|sub| check_trace_to_pb(sub, subject))
                .collect(),
        })
    };
    let source = match trace.source {
        TraceSource::Evaluated => "evaluated",
        TraceSource::Memo => "memo",
        TraceSource::Subject => "subject",
        TraceSource::Cycle => "cycle",
        TraceSource::DepthLimit => "depth-limit",
    };
    pb::CheckDebugTrace {
        resource: Some(object_to_pb(&trace.resource)),
        permission: trace.relation.to_string(),
        permission_type: match trace.kind {
            TraceKind::Relation => PermissionType::Relation,
            TraceKind::Permission => PermissionType::Permission,
        } as i32,
        subject: Some(subject_to_pb(subject)),
        result: result as i32,
        caveat_evaluation_info: trace.first_caveat().map(caveat_trace_to_pb),
        duration: prost_types::Duration::try_from(trace.duration).ok(),
        optional_expires_at: trace
            .relationships
            .iter()
            .filter_map(|traced| traced.relationship.expiration())
            .min()
            .map(|at| prost_types::Timestamp {
                seconds: at.unix_seconds(),
                nanos: i32::try_from(at.subsec_nanos()).unwrap_or(0),
            }),
        trace_operation_id: String::new(),
        source: format!("ostiary:{source}"),
        resolution: Some(resolution),
    }
}

/// Converts one caveat evaluation to SpiceDB's `CaveatEvalInfo`.
fn caveat_trace_to_pb(caveat: &CaveatTrace) -> pb::CaveatEvalInfo {
    use pb::caveat_eval_info::Result as R;
    let (result, partial_caveat_info) = match &caveat.result {
        CaveatResult::True => (R::True, None),
        CaveatResult::False => (R::False, None),
        CaveatResult::MissingContext(missing) => (
            R::MissingSomeContext,
            Some(pb::PartialCaveatInfo {
                missing_required_context: missing.clone(),
            }),
        ),
        CaveatResult::Error(_) => (R::Unevaluated, None),
    };
    pb::CaveatEvalInfo {
        expression: caveat.expression.clone(),
        result: result as i32,
        context: Some(json_to_struct(&caveat.context)),
        partial_caveat_info,
        caveat_name: caveat.name.clone(),
    }
}

/// Converts a relationship filter from the wire and checks SpiceDB's rules for it.
pub(crate) fn filter(
    field: &str,
    filter: Option<&pb::RelationshipFilter>,
) -> Result<RelationshipFilter, ApiError> {
    let filter = filter.ok_or_else(|| ApiError::missing(field))?;
    let optional = |name: &str, text: &str| -> Option<String> {
        let _ = name;
        (!text.is_empty()).then(|| text.to_owned())
    };
    let resource_type = optional("resource_type", &filter.resource_type)
        .map(|text| object_type(&format!("{field}.resource_type"), &text))
        .transpose()?;
    let optional_resource_id = optional("id", &filter.optional_resource_id)
        .map(|text| object_id(&format!("{field}.optional_resource_id"), &text))
        .transpose()?;
    let optional_relation = optional("relation", &filter.optional_relation)
        .map(|text| relation_name(&format!("{field}.optional_relation"), &text))
        .transpose()?;
    let optional_subject_filter = filter
        .optional_subject_filter
        .as_ref()
        .map(|subject| -> Result<SubjectFilter, ApiError> {
            let subject_field = format!("{field}.optional_subject_filter");
            Ok(SubjectFilter {
                subject_type: object_type(
                    &format!("{subject_field}.subject_type"),
                    &subject.subject_type,
                )?,
                optional_subject_id: optional("id", &subject.optional_subject_id)
                    .map(|text| object_id(&format!("{subject_field}.optional_subject_id"), &text))
                    .transpose()?,
                optional_relation: subject
                    .optional_relation
                    .as_ref()
                    .map(|relation| -> Result<RelationFilter, ApiError> {
                        Ok(RelationFilter {
                            relation: optional("relation", &relation.relation)
                                .map(|text| {
                                    relation_name(
                                        &format!("{subject_field}.optional_relation.relation"),
                                        &text,
                                    )
                                })
                                .transpose()?,
                        })
                    })
                    .transpose()?,
            })
        })
        .transpose()?;
    let converted = RelationshipFilter {
        resource_type,
        optional_resource_id,
        optional_resource_id_prefix: optional("prefix", &filter.optional_resource_id_prefix),
        optional_relation,
        optional_subject_filter,
    };
    converted
        .validate()
        .map_err(|err| ApiError::field(field, &err))?;
    Ok(converted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relationships_round_trip_through_the_wire_form() {
        let rel: Relationship = "doc:1#viewer@group:eng#member[only_on_tuesday:{\"day\":2}]"
            .parse()
            .unwrap();
        let wire = relationship_to_pb(&rel);
        assert_eq!(relationship("r", Some(&wire)).unwrap(), rel);
    }

    #[test]
    fn errors_name_the_field() {
        let wire = pb::Relationship {
            resource: Some(pb::ObjectReference {
                object_type: "doc".into(),
                object_id: "bad id!".into(),
            }),
            relation: "viewer".into(),
            subject: None,
            optional_caveat: None,
            optional_expires_at: None,
        };
        let err = relationship("updates[3].relationship", Some(&wire)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid `updates[3].relationship.resource.object_id`"),
            "{err}"
        );
    }

    #[test]
    fn traces_take_spicedb_shape() {
        use ostiary_engine::TracedRelationship;
        use pb::check_debug_trace::{PermissionType, Permissionship as P, Resolution};
        let leaf = |relation: &str, source, result| CheckTrace {
            resource: "group:eng".parse().unwrap(),
            relation: relation.parse().unwrap(),
            kind: TraceKind::Relation,
            operation: ostiary_engine::TraceOperation::Direct,
            result,
            source,
            via: None,
            relationships: Vec::new(),
            sub_problems: Vec::new(),
            duration: std::time::Duration::from_micros(5),
        };
        let mut caveated = leaf(
            "member",
            TraceSource::Evaluated,
            TraceResult::Permissionship(Permissionship::Conditional {
                missing_params: vec!["day".to_owned()],
            }),
        );
        caveated.relationships.push(TracedRelationship {
            relationship: "group:eng#member@user:alice[not_on]".parse().unwrap(),
            caveat: Some(CaveatTrace {
                name: "not_on".to_owned(),
                expression: "day != \"sat\"".to_owned(),
                context: Map::new(),
                result: CaveatResult::MissingContext(vec!["day".to_owned()]),
            }),
        });
        let root = CheckTrace {
            kind: TraceKind::Permission,
            sub_problems: vec![
                caveated,
                leaf(
                    "member",
                    TraceSource::Memo,
                    TraceResult::Permissionship(Permissionship::No),
                ),
                leaf(
                    "member",
                    TraceSource::Cycle,
                    TraceResult::Error("max depth exceeded".to_owned()),
                ),
            ],
            ..leaf(
                "view",
                TraceSource::Evaluated,
                TraceResult::Permissionship(Permissionship::Has),
            )
        };
        let subject: SubjectRef = "user:alice".parse().unwrap();
        let wire = check_trace_to_pb(&root, &subject);
        assert_eq!(wire.permission_type(), PermissionType::Permission);
        assert_eq!(wire.result(), P::HasPermission);
        assert_eq!(wire.subject, Some(subject_to_pb(&subject)));
        assert_eq!(wire.source, "ostiary:evaluated");
        let Some(Resolution::SubProblems(sub)) = &wire.resolution else {
            panic!("sub-problems expected");
        };
        let [caveated, memo, cycle] = sub.traces.as_slice() else {
            panic!("three sub-problems expected");
        };
        assert_eq!(caveated.result(), P::ConditionalPermission);
        assert_eq!(
            caveated.resolution,
            Some(Resolution::WasCachedResult(false))
        );
        let info = caveated.caveat_evaluation_info.as_ref().unwrap();
        assert_eq!(info.caveat_name, "not_on");
        assert_eq!(
            info.result(),
            pb::caveat_eval_info::Result::MissingSomeContext
        );
        assert_eq!(
            info.partial_caveat_info
                .as_ref()
                .unwrap()
                .missing_required_context,
            ["day"]
        );
        assert_eq!(memo.resolution, Some(Resolution::WasCachedResult(true)));
        assert_eq!(cycle.result(), P::Unspecified);
        assert_eq!(cycle.source, "ostiary:cycle");
    }
}
