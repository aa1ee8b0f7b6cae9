//! Checks relationships against the compiled schema before they are written, as SpiceDB's
//! `ValidateRelationshipUpdates` does: the definition and relation exist, the relation is not
//! a permission, the subject type is allowed, and the caveat and expiration are allowed.

use ostiary_proto::authzed::api::v1::ErrorReason;
use ostiary_schema::CompiledSchema;
use ostiary_schema::ir::{AllowedSubject, CaveatType};
use ostiary_types::Relationship;
use serde_json::Value as Json;

use crate::status::ApiError;

/// Checks one relationship against `schema`; `field` names it in the request.
pub(crate) fn relationship(
    schema: &CompiledSchema,
    field: &str,
    rel: &Relationship,
) -> Result<(), ApiError> {
    let resource_type = rel.resource().object_type().as_str();
    let Some(definition) = schema.definition_by_name(resource_type) else {
        return Err(ApiError::precondition(
            ErrorReason::UnknownDefinition,
            format!("`{field}`: object definition `{resource_type}` not found"),
        ));
    };
    let relation_text = rel.relation().as_str();
    let Some(relation) = definition.relation_by_name(relation_text) else {
        return Err(ApiError::precondition(
            ErrorReason::UnknownRelationOrPermission,
            format!(
                "`{field}`: relation/permission `{relation_text}` not found under definition `{resource_type}`"
            ),
        ));
    };
    if relation.is_permission() {
        return Err(ApiError::invalid_with(
            ErrorReason::CannotUpdatePermission,
            format!(
                "`{field}`: cannot write a relationship to permission `{relation_text}` under definition `{resource_type}`"
            ),
        ));
    }
    let subject = rel.subject();
    let subject_type = subject.object_type().as_str();
    let Some(subject_def_id) = schema.definition_id(subject_type) else {
        return Err(ApiError::precondition(
            ErrorReason::UnknownDefinition,
            format!("`{field}`: object definition `{subject_type}` not found"),
        ));
    };
    if subject.is_wildcard() && subject.relation().is_some() {
        return Err(ApiError::invalid(format!(
            "`{field}`: a wildcard subject cannot have a relation"
        )));
    }
    let wanted = if subject.is_wildcard() {
        Some(AllowedSubject::Wildcard)
    } else {
        match subject.relation() {
            None => Some(AllowedSubject::Ellipsis),
            Some(name) => schema
                .definition(subject_def_id)
                .relation_id(name.as_str())
                .map(AllowedSubject::Relation),
        }
    };
    let caveat_id = match rel.caveat() {
        Some(caveat) => {
            let Some(id) = schema.caveat_id(caveat.name().as_str()) else {
                return Err(ApiError::precondition(
                    ErrorReason::UnknownCaveat,
                    format!("`{field}`: caveat `{}` not found", caveat.name()),
                ));
            };
            Some(id)
        }
        None => None,
    };
    let subject_text = subject_text(rel);
    let same_subject: Vec<_> = relation
        .allowed_types()
        .iter()
        .filter(|allowed| allowed.definition == subject_def_id && Some(allowed.subject) == wanted)
        .collect();
    if same_subject.is_empty() {
        return Err(ApiError::invalid_with(
            ErrorReason::InvalidSubjectType,
            format!(
                "`{field}`: subjects of type `{subject_text}` are not allowed on relation `{resource_type}#{relation_text}`"
            ),
        ));
    }
    let with_caveat: Vec<_> = same_subject
        .into_iter()
        .filter(|allowed| allowed.caveat == caveat_id)
        .collect();
    if with_caveat.is_empty() {
        let message = match rel.caveat() {
            Some(caveat) => format!(
                "`{field}`: subjects of type `{subject_text} with {}` are not allowed on relation `{resource_type}#{relation_text}`",
                caveat.name()
            ),
            None => format!(
                "`{field}`: subjects of type `{subject_text}` on relation `{resource_type}#{relation_text}` require a caveat"
            ),
        };
        return Err(ApiError::invalid_with(
            ErrorReason::InvalidSubjectType,
            message,
        ));
    }
    if rel.expiration().is_some() && !with_caveat.iter().any(|allowed| allowed.expiration) {
        return Err(ApiError::invalid_with(
            ErrorReason::InvalidSubjectType,
            format!(
                "`{field}`: subjects of type `{subject_text} with expiration` are not allowed on relation `{resource_type}#{relation_text}`"
            ),
        ));
    }
    if let (Some(caveat), Some(id)) = (rel.caveat(), caveat_id) {
        let definition = schema.caveat(id);
        for (param, value) in caveat.context() {
            let Some(param_type) = definition.param_type(param) else {
                return Err(ApiError::invalid_with(
                    ErrorReason::CaveatParameterTypeError,
                    format!(
                        "`{field}`: caveat `{}` has no parameter `{param}`",
                        caveat.name()
                    ),
                ));
            };
            if !fits(param_type, value) {
                return Err(ApiError::invalid_with(
                    ErrorReason::CaveatParameterTypeError,
                    format!(
                        "`{field}`: could not convert context parameter `{param}` of caveat `{}`: expected a value of type `{param_type}`",
                        caveat.name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The subject type as SpiceDB prints it in messages: `user`, `user:*` or `group#member`.
fn subject_text(rel: &Relationship) -> String {
    let subject = rel.subject();
    if subject.is_wildcard() {
        format!("{}:*", subject.object_type())
    } else if let Some(relation) = subject.relation() {
        format!("{}#{relation}", subject.object_type())
    } else {
        subject.object_type().to_string()
    }
}

/// Reports whether a JSON value can be converted to a caveat parameter type. Only the JSON
/// kind is checked here; the engine checks the rest (ranges, formats) at evaluation.
fn fits(param_type: &CaveatType, value: &Json) -> bool {
    match (param_type, value) {
        (CaveatType::Any, _) | (_, Json::Null) => true,
        (CaveatType::Bool, Json::Bool(_)) => true,
        (CaveatType::Int | CaveatType::Uint | CaveatType::Double, Json::Number(_)) => true,
        (
            CaveatType::String
            | CaveatType::Bytes
            | CaveatType::Duration
            | CaveatType::Timestamp
            | CaveatType::IpAddress,
            Json::String(_),
        ) => true,
        (CaveatType::List(item), Json::Array(items)) => items.iter().all(|value| fits(item, value)),
        (CaveatType::Map(item), Json::Object(map)) => map.values().all(|value| fits(item, value)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "use expiration\n\
        definition user {}\n\
        caveat on_day(day int) { day == 2 }\n\
        definition group {\n relation member: user\n }\n\
        definition doc {\n\
          relation viewer: user | user:* | group#member | user with on_day\n\
          relation temp: user with expiration\n\
          permission view = viewer\n\
        }";

    fn check(rel: &str) -> String {
        let schema = ostiary_schema::compile_str("s.zed", SCHEMA).unwrap().schema;
        let rel: Relationship = rel.parse().unwrap();
        match relationship(&schema, "updates[0]", &rel) {
            Ok(()) => "ok".to_owned(),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn relationships_are_checked_against_the_schema() {
        let cases = [
            ("doc:1#viewer@user:alice", "ok"),
            ("doc:1#viewer@user:*", "ok"),
            ("doc:1#viewer@group:eng#member", "ok"),
            ("doc:1#viewer@user:alice[on_day:{\"day\":2}]", "ok"),
            (
                "doc:1#temp@user:alice[expiration:2030-01-01T00:00:00Z]",
                "ok",
            ),
            (
                "folder:1#viewer@user:alice",
                "`updates[0]`: object definition `folder` not found",
            ),
            (
                "doc:1#owner@user:alice",
                "`updates[0]`: relation/permission `owner` not found under definition `doc`",
            ),
            (
                "doc:1#view@user:alice",
                "`updates[0]`: cannot write a relationship to permission `view` under definition `doc`",
            ),
            (
                "doc:1#viewer@group:eng",
                "`updates[0]`: subjects of type `group` are not allowed on relation `doc#viewer`",
            ),
            ("doc:1#temp@user:alice", "ok"),
            (
                "doc:1#viewer@user:alice[expiration:2030-01-01T00:00:00Z]",
                "`updates[0]`: subjects of type `user with expiration` are not allowed on relation `doc#viewer`",
            ),
            (
                "doc:1#viewer@user:alice[on_day:{\"day\":\"x\"}]",
                "`updates[0]`: could not convert context parameter `day` of caveat `on_day`: expected a value of type `int`",
            ),
            (
                "doc:1#viewer@user:alice[on_day:{\"week\":1}]",
                "`updates[0]`: caveat `on_day` has no parameter `week`",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(check(input), expected, "{input}");
        }
    }
}
