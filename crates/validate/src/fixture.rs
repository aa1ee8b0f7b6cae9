//! The throwaway store: a compiled schema and relationships written to a `MemDatastore`, with
//! each relationship checked against the schema first (as SpiceDB's loader does).

use std::sync::Arc;

use ostiary_engine::{Engine, EngineSchema};
use ostiary_schema::CompiledSchema;
use ostiary_schema::ir::{AllowedSubject, CaveatType};
use ostiary_store::{DatastoreExt as _, RelationshipUpdate, Snapshot};
use ostiary_store_mem::MemDatastore;
use ostiary_types::{Relationship, TenantId};
use serde_json::Value as Json;

/// SpiceDB writes a validation file's relationships in transactions of this size.
const CHUNK: usize = 500;

/// A validation file's schema and relationships loaded into a throwaway in-memory store, with
/// an engine to query it (see [`load_str`](crate::load_str)).
pub struct Fixture {
    pub(crate) schema: EngineSchema,
    pub(crate) snapshot: Arc<dyn Snapshot>,
    pub(crate) engine: Engine,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture").finish_non_exhaustive()
    }
}

impl Fixture {
    /// The compiled schema, as the engine takes it.
    pub fn schema(&self) -> &EngineSchema {
        &self.schema
    }

    /// The store's snapshot after the relationships were written.
    pub fn snapshot(&self) -> &dyn Snapshot {
        self.snapshot.as_ref()
    }

    /// The engine (default settings) that runs the file's assertions.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Writes `relationships` (already checked) and opens a snapshot at the head.
pub(crate) fn load(
    compiled: CompiledSchema,
    relationships: &[Relationship],
) -> Result<Fixture, String> {
    let schema = EngineSchema::new(Arc::new(compiled)).map_err(|err| err.to_string())?;
    let store = MemDatastore::default();
    let tenant = TenantId::default_tenant();
    let updates: Vec<RelationshipUpdate> = relationships
        .iter()
        .cloned()
        .map(RelationshipUpdate::Touch)
        .collect();
    for chunk in updates.chunks(CHUNK) {
        store
            .write_relationships(&tenant, &[], chunk)
            .map_err(|err| err.to_string())?;
    }
    let snapshot = store
        .head_snapshot(&tenant)
        .map_err(|err| err.to_string())?;
    Ok(Fixture {
        schema,
        snapshot,
        engine: Engine::default(),
    })
}

/// Checks one relationship against the schema: the definition and relation exist, the
/// relation is not a permission, the subject type, caveat and expiration are allowed, and the
/// caveat context fits the caveat's parameters. Messages follow SpiceDB's.
pub(crate) fn check_relationship(
    schema: &CompiledSchema,
    rel: &Relationship,
) -> Result<(), String> {
    let resource_type = rel.resource().object_type().as_str();
    let definition = schema
        .definition_by_name(resource_type)
        .ok_or_else(|| format!("object definition `{resource_type}` not found"))?;
    let relation_text = rel.relation().as_str();
    let relation = definition.relation_by_name(relation_text).ok_or_else(|| {
        format!(
            "relation/permission `{relation_text}` not found under definition `{resource_type}`"
        )
    })?;
    if relation.is_permission() {
        return Err(format!(
            "cannot write a relationship to permission `{relation_text}` under definition `{resource_type}`"
        ));
    }
    let subject = rel.subject();
    let subject_type = subject.object_type().as_str();
    let subject_def_id = schema
        .definition_id(subject_type)
        .ok_or_else(|| format!("object definition `{subject_type}` not found"))?;
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
        Some(caveat) => Some(
            schema
                .caveat_id(caveat.name().as_str())
                .ok_or_else(|| format!("caveat `{}` not found", caveat.name()))?,
        ),
        None => None,
    };
    let subject_text = subject_type_text(rel);
    let same_subject: Vec<_> = relation
        .allowed_types()
        .iter()
        .filter(|allowed| allowed.definition == subject_def_id && Some(allowed.subject) == wanted)
        .collect();
    if same_subject.is_empty() {
        return Err(format!(
            "subjects of type `{subject_text}` are not allowed on relation `{resource_type}#{relation_text}`"
        ));
    }
    let with_caveat: Vec<_> = same_subject
        .into_iter()
        .filter(|allowed| allowed.caveat == caveat_id)
        .collect();
    if with_caveat.is_empty() {
        return Err(match rel.caveat() {
            Some(caveat) => format!(
                "subjects of type `{subject_text} with {}` are not allowed on relation `{resource_type}#{relation_text}`",
                caveat.name()
            ),
            None => format!(
                "subjects of type `{subject_text}` on relation `{resource_type}#{relation_text}` require a caveat"
            ),
        });
    }
    if rel.expiration().is_some() && !with_caveat.iter().any(|allowed| allowed.expiration) {
        return Err(format!(
            "subjects of type `{subject_text} with expiration` are not allowed on relation `{resource_type}#{relation_text}`"
        ));
    }
    if let (Some(caveat), Some(id)) = (rel.caveat(), caveat_id) {
        let definition = schema.caveat(id);
        for (param, value) in caveat.context() {
            let param_type = definition
                .param_type(param)
                .ok_or_else(|| format!("caveat `{}` has no parameter `{param}`", caveat.name()))?;
            if !fits(param_type, value) {
                return Err(format!(
                    "could not convert context parameter `{param}` of caveat `{}`: expected a value of type `{param_type}`",
                    caveat.name()
                ));
            }
        }
    }
    Ok(())
}

/// The subject type as SpiceDB prints it in messages: `user`, `user:*` or `group#member`.
fn subject_type_text(rel: &Relationship) -> String {
    let subject = rel.subject();
    if subject.is_wildcard() {
        format!("{}:*", subject.object_type())
    } else if let Some(relation) = subject.relation() {
        format!("{}#{relation}", subject.object_type())
    } else {
        subject.object_type().to_string()
    }
}

/// Whether a JSON value's kind fits a caveat parameter type (the engine checks the rest).
fn fits(param_type: &CaveatType, value: &Json) -> bool {
    match (param_type, value) {
        (CaveatType::Any, _) | (_, Json::Null) | (CaveatType::Bool, Json::Bool(_)) => true,
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
