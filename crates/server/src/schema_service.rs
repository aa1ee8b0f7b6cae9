//! `SchemaService`: ReadSchema, WriteSchema (compiled first; refused if it would orphan
//! stored relationships; an empty schema clears it), ReflectSchema and DiffSchema (see `reflection`).
//! ComputablePermissions and DependentRelations are not implemented yet.

use std::sync::Arc;

use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::ErrorReason;
use ostiary_proto::authzed::api::v1::schema_service_server::SchemaService;
use ostiary_schema::CompiledSchema;
use ostiary_schema::ir::AllowedSubject;
use ostiary_store::{DatastoreExt, Page, WriteTxn};
use ostiary_types::{
    ObjectType, RelationFilter, RelationName, Relationship, RelationshipFilter, RelationshipKey,
    SubjectFilter,
};
use tonic::{Request, Response, Status};

use crate::auth::caller;
use crate::changes;
use crate::permissions::{open_snapshot, token};
use crate::reflection::{self, SchemaFilters};
use crate::status::ApiError;
use crate::{ServerState, blocking};

/// The SchemaService implementation.
#[derive(Debug)]
pub(crate) struct Schemas {
    state: Arc<ServerState>,
}

impl Schemas {
    /// Serves over `state`.
    pub(crate) fn new(state: Arc<ServerState>) -> Self {
        Self { state }
    }
}

/// Reports whether any live relationship matches `filter` in the transaction's view.
fn any_match(txn: &mut dyn WriteTxn, filter: &RelationshipFilter) -> Result<bool, ApiError> {
    Ok(first_match(txn, filter, |_| true)?.is_some())
}

/// The first relationship `filter` selects that also satisfies `keep`, read in pages.
fn first_match(
    txn: &mut dyn WriteTxn,
    filter: &RelationshipFilter,
    keep: impl Fn(&Relationship) -> bool,
) -> Result<Option<Relationship>, ApiError> {
    const PAGE: usize = 1000;
    let mut out = Vec::with_capacity(PAGE);
    let mut after: Option<RelationshipKey> = None;
    loop {
        out.clear();
        let page = match &after {
            Some(key) => Page::after(key, Some(PAGE)),
            None => Page::first(PAGE),
        };
        txn.read_filtered(filter, page, &mut out)?;
        if let Some(found) = out.iter().find(|rel| keep(rel)) {
            return Ok(Some(found.clone()));
        }
        match out.last() {
            Some(last) if out.len() == PAGE => after = Some(last.key().clone()),
            _ => return Ok(None),
        }
    }
}

/// The caveat name of an allowed type, if it has one.
fn caveat_name<'s>(
    schema: &'s CompiledSchema,
    allowed: &ostiary_schema::ir::AllowedSubjectType,
) -> Option<&'s str> {
    allowed
        .caveat
        .map(|caveat| schema.caveat(caveat).name.as_str())
}

/// Refuses a schema change that would leave stored relationships without a definition, a
/// relation or an allowed subject type.
fn check_orphans(
    txn: &mut dyn WriteTxn,
    old: &CompiledSchema,
    new: &CompiledSchema,
) -> Result<(), ApiError> {
    let internal = |err: ostiary_types::TypesError| ApiError::from(err);
    for definition in &old.definitions {
        let resource_type = ObjectType::new(&definition.name).map_err(internal)?;
        let new_definition = new.definition_by_name(&definition.name);
        if new_definition.is_none() {
            let filter = RelationshipFilter {
                resource_type: Some(resource_type.clone()),
                ..RelationshipFilter::default()
            };
            if any_match(txn, &filter)? {
                return Err(ApiError::precondition(
                    ErrorReason::SchemaTypeError,
                    format!(
                        "cannot delete object definition `{}`: relationships still exist for it",
                        definition.name
                    ),
                ));
            }
        }
        for relation in &definition.relations {
            if relation.is_permission() {
                continue;
            }
            let relation_name = RelationName::new(&relation.name).map_err(internal)?;
            let new_relation = new_definition
                .and_then(|new_definition| new_definition.relation_by_name(&relation.name))
                .filter(|new_relation| !new_relation.is_permission());
            let relation_filter = RelationshipFilter {
                resource_type: Some(resource_type.clone()),
                optional_relation: Some(relation_name.clone()),
                ..RelationshipFilter::default()
            };
            let Some(new_relation) = new_relation else {
                if any_match(txn, &relation_filter)? {
                    return Err(ApiError::precondition(
                        ErrorReason::SchemaTypeError,
                        format!(
                            "cannot delete relation `{}` in object definition `{}`: relationships still exist for it",
                            relation.name, definition.name
                        ),
                    ));
                }
                continue;
            };
            for allowed in relation.allowed_types() {
                // `user`, `user with cav` and `user with expiration` are distinct allowed
                // types, as in SpiceDB: each admits its own relationships.
                let still_allowed = new_relation.allowed_types().iter().any(|candidate| {
                    candidate.definition_name == allowed.definition_name
                        && same_subject(old, new, allowed, candidate)
                        && caveat_name(old, allowed) == caveat_name(new, candidate)
                        && allowed.expiration == candidate.expiration
                });
                if still_allowed {
                    continue;
                }
                let subject_relation = match allowed.subject {
                    AllowedSubject::Relation(id) => {
                        let name = &old.relation(allowed.definition, id).name;
                        Some(RelationFilter {
                            relation: Some(RelationName::new(name).map_err(internal)?),
                        })
                    }
                    AllowedSubject::Ellipsis => Some(RelationFilter { relation: None }),
                    AllowedSubject::Wildcard => None,
                };
                let filter = RelationshipFilter {
                    optional_subject_filter: Some(SubjectFilter {
                        subject_type: ObjectType::new(&allowed.definition_name)
                            .map_err(internal)?,
                        optional_subject_id: matches!(allowed.subject, AllowedSubject::Wildcard)
                            .then(ostiary_types::ObjectId::wildcard),
                        optional_relation: subject_relation,
                    }),
                    ..relation_filter.clone()
                };
                let caveat = caveat_name(old, allowed);
                let of_this_type = |rel: &Relationship| {
                    rel.caveat().map(|caveat| caveat.name().as_str()) == caveat
                        && rel.expiration().is_some() == allowed.expiration
                };
                if let Some(rel) = first_match(txn, &filter, of_this_type)? {
                    let mut type_text = allowed.definition_name.clone();
                    match allowed.subject {
                        AllowedSubject::Wildcard => type_text.push_str(":*"),
                        AllowedSubject::Relation(id) => {
                            type_text.push('#');
                            type_text.push_str(&old.relation(allowed.definition, id).name);
                        }
                        AllowedSubject::Ellipsis => {}
                    }
                    let traits: Vec<&str> = caveat
                        .into_iter()
                        .chain(allowed.expiration.then_some("expiration"))
                        .collect();
                    if !traits.is_empty() {
                        type_text = format!("{type_text} with {}", traits.join(" and "));
                    }
                    return Err(ApiError::precondition(
                        ErrorReason::SchemaTypeError,
                        format!(
                            "cannot remove allowed type `{type_text}` from relation `{}` in object definition `{}`, as a relationship exists with it: {rel}",
                            relation.name, definition.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Reports whether two allowed types admit the same kind of subject (plain, wildcard, or the
/// same subject relation); caveat and expiration are compared by the caller.
fn same_subject(
    old: &CompiledSchema,
    new: &CompiledSchema,
    left: &ostiary_schema::ir::AllowedSubjectType,
    right: &ostiary_schema::ir::AllowedSubjectType,
) -> bool {
    match (left.subject, right.subject) {
        (AllowedSubject::Ellipsis, AllowedSubject::Ellipsis)
        | (AllowedSubject::Wildcard, AllowedSubject::Wildcard) => true,
        (AllowedSubject::Relation(left_id), AllowedSubject::Relation(right_id)) => {
            old.relation(left.definition, left_id).name
                == new.relation(right.definition, right_id).name
        }
        _ => false,
    }
}

#[tonic::async_trait]
impl SchemaService for Schemas {
    async fn read_schema(
        &self,
        request: Request<pb::ReadSchemaRequest>,
    ) -> Result<Response<pb::ReadSchemaResponse>, Status> {
        let _permit = self.state.permit().await?;
        let state = Arc::clone(&self.state);
        let caller = caller(&request)?;
        let response = blocking(move || {
            let tenant = &caller.tenant;
            let snapshot = state.store.head_snapshot(tenant)?;
            let stored = match snapshot.read_schema()? {
                // A schema without object definitions (never written, or cleared by writing
                // an empty one) is no schema to SpiceDB, which answers NotFound; clients
                // (e.g. zed, the harness) rely on it.
                Some(stored)
                    if !state
                        .schema_at(snapshot.as_ref())?
                        .compiled()
                        .definitions
                        .is_empty() =>
                {
                    stored
                }
                _ => {
                    return Err(ApiError::NotFound(
                        "no schema has been defined; please call WriteSchema to start".to_owned(),
                    ));
                }
            };
            Ok(pb::ReadSchemaResponse {
                schema_text: stored.text.to_string(),
                read_at: token(&state, tenant, snapshot.revision()),
            })
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn write_schema(
        &self,
        request: Request<pb::WriteSchemaRequest>,
    ) -> Result<Response<pb::WriteSchemaResponse>, Status> {
        let _permit = self.state.permit().await?;
        let state = Arc::clone(&self.state);
        let caller = caller(&request)?;
        let tenant = caller.tenant.clone();
        let text = request.into_inner().schema;
        let revision = blocking(move || {
            if caller.is_restricted() {
                return Err(ApiError::PermissionDenied(
                    "a token restricted to some definitions may not write the schema".to_owned(),
                ));
            }
            if let Some(tenancy) = &state.tenancy
                && let Some(info) = tenancy.tenant(&caller.tenant)?
            {
                info.quotas
                    .check_schema_bytes(text.len())
                    .map_err(|err| ApiError::QuotaExceeded(err.to_string()))?;
            }
            // An empty schema is a valid one with no definitions: as in SpiceDB, writing it
            // clears the schema, unless stored relationships still use a definition (the
            // orphan check below refuses that with FailedPrecondition).
            let new = ostiary_schema::compile_str("schema.zed", &text)
                .map_err(ApiError::Schema)?
                .schema;
            let committed = state.store.read_write_with(&caller.tenant, |txn| {
                if let Some(stored) = txn.read_schema()? {
                    // The stored schema compiled when it was written; if it no longer does
                    // (a compiler change), nothing can be checked against it.
                    if let Ok(old) = ostiary_schema::compile_str("schema.zed", &stored.text) {
                        check_orphans(txn, &old.schema, &new)?;
                    }
                }
                txn.write_schema(&text)?;
                changes::audit(
                    &state,
                    txn,
                    &caller,
                    "schema.write",
                    serde_json::json!({ "schema": text }),
                )?;
                Ok::<(), ApiError>(())
            })?;
            Ok(committed.revision)
        })
        .await?;
        Ok(Response::new(pb::WriteSchemaResponse {
            written_at: token(&self.state, &tenant, revision),
        }))
    }

    async fn reflect_schema(
        &self,
        request: Request<pb::ReflectSchemaRequest>,
    ) -> Result<Response<pb::ReflectSchemaResponse>, Status> {
        let _permit = self.state.permit().await?;
        let state = Arc::clone(&self.state);
        let caller = caller(&request)?;
        let request = request.into_inner();
        let response = blocking(move || {
            let tenant = &caller.tenant;
            let filters = SchemaFilters::new(&request.optional_filters)?;
            let snapshot = open_snapshot(&state, tenant, request.consistency.as_ref())?;
            // SpiceDB reflects a missing schema as an empty one (only ReadSchema answers
            // NotFound).
            let schema = match snapshot.read_schema()? {
                Some(_) => Some(state.schema_at(snapshot.as_ref())?),
                None => None,
            };
            let (definitions, caveats) =
                reflection::reflect(schema.as_ref().map(|schema| schema.compiled()), &filters);
            Ok(pb::ReflectSchemaResponse {
                definitions,
                caveats,
                read_at: token(&state, tenant, snapshot.revision()),
            })
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn computable_permissions(
        &self,
        _request: Request<pb::ComputablePermissionsRequest>,
    ) -> Result<Response<pb::ComputablePermissionsResponse>, Status> {
        Err(ApiError::Unimplemented("ComputablePermissions is not implemented yet").into())
    }

    async fn dependent_relations(
        &self,
        _request: Request<pb::DependentRelationsRequest>,
    ) -> Result<Response<pb::DependentRelationsResponse>, Status> {
        Err(ApiError::Unimplemented("DependentRelations is not implemented yet").into())
    }

    async fn diff_schema(
        &self,
        request: Request<pb::DiffSchemaRequest>,
    ) -> Result<Response<pb::DiffSchemaResponse>, Status> {
        let _permit = self.state.permit().await?;
        let state = Arc::clone(&self.state);
        let caller = caller(&request)?;
        let request = request.into_inner();
        let response = blocking(move || {
            let tenant = &caller.tenant;
            let snapshot = open_snapshot(&state, tenant, request.consistency.as_ref())?;
            let existing = match snapshot.read_schema()? {
                Some(_) => Some(state.schema_at(snapshot.as_ref())?),
                None => None,
            };
            let comparison = ostiary_schema::compile_str("schema.zed", &request.comparison_schema)
                .map_err(ApiError::Schema)?
                .schema;
            Ok(pb::DiffSchemaResponse {
                diffs: reflection::diff(
                    existing.as_ref().map(|schema| schema.compiled()),
                    &comparison,
                ),
                read_at: token(&state, tenant, snapshot.revision()),
            })
        })
        .await?;
        Ok(Response::new(response))
    }
}
