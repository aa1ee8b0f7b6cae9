//! `PermissionsService`: Check, CheckBulk, Expand, both Lookups, and reading, writing,
//! deleting, importing and exporting relationships.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;

use ostiary_engine::{
    CheckItem, ExpandMode, ExpandNode, ExpandTree, FoundSubject, Permissionship, SetOperation,
};
use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::permissions_service_server::PermissionsService;
use ostiary_proto::authzed::api::v1::{ErrorReason, ZedToken};
use ostiary_store::{DatastoreExt, Page, Precondition, RelationshipUpdate, Snapshot};
use ostiary_types::{Relationship, RelationshipFilter, RelationshipKey, TenantId};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Caller, caller};
use crate::consistency::pick_revision;
use crate::status::ApiError;
use crate::{ServerState, blocking, changes, convert, validate};

/// A boxed response stream.
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The PermissionsService implementation.
#[derive(Debug)]
pub(crate) struct Permissions {
    state: Arc<ServerState>,
}

impl Permissions {
    /// Serves over `state`.
    pub(crate) fn new(state: Arc<ServerState>) -> Self {
        Self { state }
    }
}

/// A token message for `revision`, bound to `tenant`.
pub(crate) fn token(
    state: &ServerState,
    tenant: &TenantId,
    revision: ostiary_types::Revision,
) -> Option<ZedToken> {
    Some(ZedToken {
        token: state.tokens.encode_token(tenant, revision),
    })
}

/// Opens the snapshot of `tenant` a read request asked for.
pub(crate) fn open_snapshot(
    state: &ServerState,
    tenant: &TenantId,
    consistency: Option<&pb::Consistency>,
) -> Result<Arc<dyn Snapshot>, ApiError> {
    let revision = pick_revision(state.store.as_ref(), &state.tokens, tenant, consistency)?;
    let snapshot = state.store.snapshot(tenant, revision)?;
    if let Some(metrics) = state.metrics() {
        // Revision lag: how far behind head this read is served (0 for fully consistent).
        let head = state.store.head_revision()?;
        let lag = head.as_u64().saturating_sub(revision.as_u64());
        #[expect(
            clippy::cast_precision_loss,
            reason = "a lag above 2^53 revisions is not a realistic histogram value"
        )]
        metrics.revision_lag.observe(lag as f64);
    }
    Ok(snapshot)
}

/// The wire permissionship of a check result and its partial caveat info.
fn check_permissionship(permissionship: Permissionship) -> (i32, Option<pb::PartialCaveatInfo>) {
    use pb::check_permission_response::Permissionship as P;
    match permissionship {
        Permissionship::Has => (P::HasPermission as i32, None),
        Permissionship::No => (P::NoPermission as i32, None),
        Permissionship::Conditional { missing_params } => (
            P::ConditionalPermission as i32,
            Some(pb::PartialCaveatInfo {
                missing_required_context: missing_params,
            }),
        ),
    }
}

/// A traced check of `item` and its debug information in SpiceDB's shape: the trace and the
/// schema text it was evaluated against.
fn check_with_trace(
    snapshot: &dyn Snapshot,
    state: &ServerState,
    schema: &ostiary_engine::EngineSchema,
    item: &CheckItem,
) -> Result<(ostiary_engine::CheckResult, pb::DebugInformation), ApiError> {
    let (result, trace) = state.engine.check_traced(
        snapshot,
        schema,
        &item.resource,
        &item.permission,
        &item.subject,
        &item.context,
    )?;
    let schema_used = snapshot
        .read_schema()?
        .map(|stored| stored.text.trim().to_owned())
        .unwrap_or_default();
    let debug = pb::DebugInformation {
        check: Some(convert::check_trace_to_pb(&trace, &item.subject)),
        schema_used,
    };
    Ok((result, debug))
}

/// The wire permissionship of a lookup result and its partial caveat info.
fn lookup_permissionship(permissionship: &Permissionship) -> (i32, Option<pb::PartialCaveatInfo>) {
    match permissionship {
        Permissionship::Conditional { missing_params } => (
            pb::LookupPermissionship::ConditionalPermission as i32,
            Some(pb::PartialCaveatInfo {
                missing_required_context: missing_params.clone(),
            }),
        ),
        _ => (pb::LookupPermissionship::HasPermission as i32, None),
    }
}

/// Converts a request limit: zero means "no limit"; above `max` is refused.
fn limit(field: &str, value: u32, max: usize) -> Result<Option<usize>, ApiError> {
    if value == 0 {
        return Ok(None);
    }
    let value = usize::try_from(value).unwrap_or(usize::MAX);
    if value > max {
        return Err(ApiError::invalid_with(
            ErrorReason::ExceedsMaximumAllowableLimit,
            format!("`{field}` is {value}, above the maximum of {max}"),
        ));
    }
    Ok(Some(value))
}

/// Converts the preconditions of a write or delete.
fn preconditions(
    state: &ServerState,
    preconditions: &[pb::Precondition],
) -> Result<Vec<Precondition>, ApiError> {
    let max = state.config.max_preconditions;
    if preconditions.len() > max {
        return Err(ApiError::invalid_with(
            ErrorReason::TooManyPreconditionsInRequest,
            format!(
                "`optional_preconditions` has {} preconditions, above the maximum of {max}",
                preconditions.len()
            ),
        ));
    }
    preconditions
        .iter()
        .enumerate()
        .map(|(idx, precondition)| {
            let field = format!("optional_preconditions[{idx}].filter");
            let filter = convert::filter(&field, precondition.filter.as_ref())?;
            match pb::precondition::Operation::try_from(precondition.operation) {
                Ok(pb::precondition::Operation::MustMatch) => Ok(Precondition::MustMatch(filter)),
                Ok(pb::precondition::Operation::MustNotMatch) => {
                    Ok(Precondition::MustNotMatch(filter))
                }
                _ => Err(ApiError::invalid(format!(
                    "invalid `optional_preconditions[{idx}].operation`: must be MUST_MATCH or MUST_NOT_MATCH"
                ))),
            }
        })
        .collect()
}

/// Checks every relationship that `updates` creates or touches against `schema`, naming it
/// as `{list}[{idx}]{suffix}` in an error.
fn validate_updates(
    schema: &ostiary_schema::CompiledSchema,
    updates: &[RelationshipUpdate],
    list: &str,
    suffix: &str,
) -> Result<(), ApiError> {
    for (idx, update) in updates.iter().enumerate() {
        if let RelationshipUpdate::Create(rel) | RelationshipUpdate::Touch(rel) = update {
            validate::relationship(schema, &format!("{list}[{idx}]{suffix}"), rel)?;
        }
    }
    Ok(())
}

/// Validates `updates` against the schema and writes them after checking `preconditions`,
/// such that the schema they were validated against is the one in force when they commit.
/// Returns the new revision.
///
/// Validating against the head schema and then writing in a separate transaction would let
/// a concurrent WriteSchema commit in between (say, dropping the relation being written,
/// its orphan check passing because the relationship is not there yet), leaving a
/// relationship the schema does not allow. So the write transaction reads the schema
/// record again: datastore write transactions are serializable (`Datastore::read_write`),
/// so what it reads is what is in force at the commit, and WriteSchema's own orphan check
/// runs in a transaction too. If that schema is still the one validated against (same
/// schema revision, the usual case) nothing more is done; otherwise the updates are
/// validated again, inside the transaction, against the new one. The first validation
/// runs outside the transaction so that bad requests (and compiling a new schema) do not
/// hold up other writers.
///
/// The caller's definition restriction is checked on every update, and the transaction
/// also appends the audit entry (`action`) and keeps the tenant's relationship count.
fn write_validated(
    state: &ServerState,
    caller: &Caller,
    action: &str,
    preconditions: &[Precondition],
    updates: &[RelationshipUpdate],
    list: &str,
    suffix: &str,
) -> Result<ostiary_types::Revision, ApiError> {
    if caller.is_restricted() {
        for (idx, update) in updates.iter().enumerate() {
            let resource = match update {
                RelationshipUpdate::Create(rel) | RelationshipUpdate::Touch(rel) => rel.resource(),
                RelationshipUpdate::Delete(key) => key.resource(),
            };
            caller.require_definition(&format!("{list}[{idx}]{suffix}"), resource.object_type())?;
        }
        require_precondition_definitions(caller, preconditions)?;
    }
    let tenant = &caller.tenant;
    let snapshot = state.store.head_snapshot(tenant)?;
    let head_schema = snapshot.read_schema()?;
    let schema = state.schema_of(tenant, head_schema.as_ref())?;
    validate_updates(schema.compiled(), updates, list, suffix)?;
    let validated_at = head_schema.map(|stored| stored.revision);
    let quota = changes::relationship_quota(state, caller)?;
    let committed = state
        .store
        .read_write_with(tenant, |txn| -> Result<(), ApiError> {
            let in_force = txn.read_schema()?;
            if in_force.as_ref().map(|stored| stored.revision) != validated_at {
                let schema = state.schema_of(tenant, in_force.as_ref())?;
                validate_updates(schema.compiled(), updates, list, suffix)?;
            }
            txn.check_preconditions(preconditions)?;
            changes::apply_counted(txn, quota, updates)?;
            changes::audit(state, txn, caller, action, changes::update_details(updates))?;
            Ok(())
        })?;
    Ok(committed.revision)
}

/// Refuses preconditions a definition-restricted token may not use: whether a write
/// succeeds would tell it whether relationships of other definitions exist.
fn require_precondition_definitions(
    caller: &Caller,
    preconditions: &[Precondition],
) -> Result<(), ApiError> {
    for (idx, precondition) in preconditions.iter().enumerate() {
        let field = format!("optional_preconditions[{idx}].filter");
        require_filter_definition(caller, &field, precondition.filter())?;
    }
    Ok(())
}

/// Refuses a filter a definition-restricted token may not use: without a resource type or
/// with one outside the restriction.
fn require_filter_definition(
    caller: &Caller,
    field: &str,
    filter: &RelationshipFilter,
) -> Result<(), ApiError> {
    if !caller.is_restricted() {
        return Ok(());
    }
    match &filter.resource_type {
        Some(resource_type) => {
            caller.require_definition(&format!("{field}.resource_type"), resource_type)
        }
        None => Err(ApiError::PermissionDenied(format!(
            "this token is restricted to some definitions: `{field}.resource_type` is required"
        ))),
    }
}

/// Converts an expand tree to the wire.
fn tree_to_pb(tree: &ExpandTree) -> pb::PermissionRelationshipTree {
    use pb::permission_relationship_tree::TreeType;
    let tree_type = match &tree.node {
        ExpandNode::Intermediate {
            operation,
            children,
        } => {
            let operation = match operation {
                SetOperation::Union => pb::algebraic_subject_set::Operation::Union,
                SetOperation::Intersection => pb::algebraic_subject_set::Operation::Intersection,
                SetOperation::Exclusion => pb::algebraic_subject_set::Operation::Exclusion,
            };
            TreeType::Intermediate(pb::AlgebraicSubjectSet {
                operation: operation as i32,
                children: children.iter().map(tree_to_pb).collect(),
            })
        }
        ExpandNode::Leaf { subjects } => TreeType::Leaf(pb::DirectSubjectSet {
            subjects: subjects
                .iter()
                .map(|direct| convert::subject_to_pb(&direct.subject))
                .collect(),
        }),
    };
    pb::PermissionRelationshipTree {
        expanded_object: Some(convert::object_to_pb(&tree.expanded_object)),
        expanded_relation: tree.expanded_relation.to_string(),
        tree_type: Some(tree_type),
    }
}

/// Converts a resolved subject to the wire.
fn resolved_to_pb(subject: &ostiary_engine::ResolvedSubject) -> pb::ResolvedSubject {
    let (permissionship, partial_caveat_info) = lookup_permissionship(&subject.permissionship);
    pb::ResolvedSubject {
        subject_object_id: subject.subject_object_id.to_string(),
        permissionship,
        partial_caveat_info,
    }
}

/// Converts a LookupSubjects result to the wire (with the deprecated fields filled too).
#[expect(
    deprecated,
    reason = "older clients still read the deprecated top-level fields"
)]
fn found_to_pb(found: &FoundSubject, looked_up_at: Option<ZedToken>) -> pb::LookupSubjectsResponse {
    let subject = resolved_to_pb(&found.subject);
    let excluded: Vec<_> = found.excluded_subjects.iter().map(resolved_to_pb).collect();
    pb::LookupSubjectsResponse {
        looked_up_at,
        subject_object_id: subject.subject_object_id.clone(),
        excluded_subject_ids: excluded
            .iter()
            .map(|excluded| excluded.subject_object_id.clone())
            .collect(),
        permissionship: subject.permissionship,
        partial_caveat_info: subject.partial_caveat_info.clone(),
        subject: Some(subject),
        excluded_subjects: excluded,
        after_result_cursor: None,
    }
}

/// Streams the items of `items` as a response stream.
fn stream_of<T: Send + 'static>(items: Vec<T>) -> BoxStream<T> {
    Box::pin(tokio_stream::iter(items.into_iter().map(Ok)))
}

/// Reads one page of relationships matching `filter` after `after`.
fn read_page(
    snapshot: &dyn Snapshot,
    filter: &RelationshipFilter,
    after: Option<&RelationshipKey>,
    limit: usize,
) -> Result<Vec<Relationship>, ApiError> {
    let mut out = Vec::new();
    let page = match after {
        Some(key) => Page::after(key, Some(limit)),
        None => Page::first(limit),
    };
    snapshot.read_filtered(filter, page, &mut out)?;
    Ok(out)
}

/// Page size for unlimited streaming reads.
const STREAM_PAGE: usize = 1000;

#[tonic::async_trait]
impl PermissionsService for Permissions {
    type ReadRelationshipsStream = BoxStream<pb::ReadRelationshipsResponse>;
    type LookupResourcesStream = BoxStream<pb::LookupResourcesResponse>;
    type LookupSubjectsStream = BoxStream<pb::LookupSubjectsResponse>;
    type ExportBulkRelationshipsStream = BoxStream<pb::ExportBulkRelationshipsResponse>;

    async fn read_relationships(
        &self,
        request: Request<pb::ReadRelationshipsRequest>,
    ) -> Result<Response<Self::ReadRelationshipsStream>, Status> {
        let _permit = self.state.permit().await?;
        let state = Arc::clone(&self.state);
        let caller = caller(&request)?;
        let request = request.into_inner();
        let responses = blocking(move || {
            let tenant = &caller.tenant;
            let filter =
                convert::filter("relationship_filter", request.relationship_filter.as_ref())?;
            require_filter_definition(&caller, "relationship_filter", &filter)?;
            let limit = limit(
                "optional_limit",
                request.optional_limit,
                state.config.max_read_relationships_limit,
            )?;
            let after = request
                .optional_cursor
                .as_ref()
                .map(|cursor| {
                    state
                        .tokens
                        .decode_key_cursor(tenant, "optional_cursor", &cursor.token)
                })
                .transpose()?;
            let snapshot = open_snapshot(&state, tenant, request.consistency.as_ref())?;
            let revision = snapshot.revision();
            let mut rels = Vec::new();
            let mut after = after;
            loop {
                let want = limit.map_or(STREAM_PAGE, |limit| (limit - rels.len()).min(STREAM_PAGE));
                let page = read_page(snapshot.as_ref(), &filter, after.as_ref(), want)?;
                let done = page.len() < want;
                after = page.last().map(|rel| rel.key().clone());
                rels.extend(page);
                if done || limit.is_some_and(|limit| rels.len() >= limit) {
                    break;
                }
            }
            Ok(rels
                .iter()
                .map(|rel| pb::ReadRelationshipsResponse {
                    read_at: token(&state, tenant, revision),
                    relationship: Some(convert::relationship_to_pb(rel)),
                    after_result_cursor: Some(pb::Cursor {
                        token: state.tokens.encode_key_cursor(tenant, rel.key()),
                    }),
                })
                .collect::<Vec<_>>())
        })
        .await?;
        Ok(Response::new(stream_of(responses)))
    }

    async fn write_relationships(
        &self,
        request: Request<pb::WriteRelationshipsRequest>,
    ) -> Result<Response<pb::WriteRelationshipsResponse>, Status> {
        let _permit = self.state.permit().await?;
        let state = Arc::clone(&self.state);
        let caller = caller(&request)?;
        let tenant = caller.tenant.clone();
        let request = request.into_inner();
        let revision = blocking(move || {
            let max = state.config.max_updates_per_write;
            if request.updates.len() > max {
                return Err(ApiError::invalid_with(
                    ErrorReason::TooManyUpdatesInRequest,
                    format!(
                        "`updates` has {} updates, above the maximum of {max}",
                        request.updates.len()
                    ),
                ));
            }
            let preconditions = preconditions(&state, &request.optional_preconditions)?;
            let mut seen = HashSet::new();
            let mut updates = Vec::with_capacity(request.updates.len());
            for (idx, update) in request.updates.iter().enumerate() {
                let field = format!("updates[{idx}].relationship");
                let rel = convert::relationship(&field, update.relationship.as_ref())?;
                let operation = pb::relationship_update::Operation::try_from(update.operation);
                if !matches!(operation, Ok(pb::relationship_update::Operation::Delete)) {
                    let context_bytes = rel
                        .caveat()
                        .map_or(0, |caveat| serde_json::Value::Object(caveat.context().clone()).to_string().len());
                    if context_bytes > state.config.max_relationship_context_bytes {
                        return Err(ApiError::invalid_with(
                            ErrorReason::MaxRelationshipContextSize,
                            format!(
                                "`{field}.optional_caveat.context` is {context_bytes} bytes, above the maximum of {}",
                                state.config.max_relationship_context_bytes
                            ),
                        ));
                    }
                }
                if !seen.insert(rel.key().clone()) {
                    return Err(ApiError::invalid_with(
                        ErrorReason::UpdatesOnSameRelationship,
                        format!(
                            "found more than one update for relationship `{}` in this request; a relationship can only be specified once per request",
                            rel.key()
                        ),
                    ));
                }
                updates.push(match operation {
                    Ok(pb::relationship_update::Operation::Create) => RelationshipUpdate::Create(rel),
                    Ok(pb::relationship_update::Operation::Touch) => RelationshipUpdate::Touch(rel),
                    Ok(pb::relationship_update::Operation::Delete) => {
                        RelationshipUpdate::Delete(rel.key().clone())
                    }
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "invalid `updates[{idx}].operation`: must be CREATE, TOUCH or DELETE"
                        )));
                    }
                });
            }
            write_validated(
                &state,
                &caller,
                "relationships.write",
                &preconditions,
                &updates,
                "updates",
                ".relationship",
            )
        })
        .await?;
        Ok(Response::new(pb::WriteRelationshipsResponse {
            written_at: token(&self.state, &tenant, revision),
        }))
    }

    async fn delete_relationships(
        &self,
        request: Request<pb::DeleteRelationshipsRequest>,
    ) -> Result<Response<pb::DeleteRelationshipsResponse>, Status> {
        let _permit = self.state.permit().await?;
        let state = Arc::clone(&self.state);
        let caller = caller(&request)?;
        let tenant = caller.tenant.clone();
        let request = request.into_inner();
        let committed = blocking(move || {
            let filter = convert::filter("relationship_filter", request.relationship_filter.as_ref())?;
            require_filter_definition(&caller, "relationship_filter", &filter)?;
            let preconditions = preconditions(&state, &request.optional_preconditions)?;
            require_precondition_definitions(&caller, &preconditions)?;
            let limit = limit(
                "optional_limit",
                request.optional_limit,
                state.config.max_delete_relationships_limit,
            )?;
            let allow_partial = request.optional_allow_partial_deletions;
            if allow_partial && limit.is_none() {
                return Err(ApiError::invalid(
                    "`optional_allow_partial_deletions` requires `optional_limit`",
                ));
            }
            let quota = changes::relationship_quota(&state, &caller)?;
            state
                .store
                .read_write_with(&caller.tenant, |txn| -> Result<_, ApiError> {
                    txn.check_preconditions(&preconditions)?;
                    let outcome = txn.delete_filtered(&filter, limit)?;
                    changes::count_deleted(txn, quota, outcome.n_deleted)?;
                    changes::audit(
                        &state,
                        txn,
                        &caller,
                        "relationships.delete",
                        serde_json::json!({
                            "filter": format!("{filter:?}"),
                            "deleted": outcome.n_deleted,
                        }),
                    )?;
                    if outcome.more_remain && !allow_partial {
                        return Err(ApiError::invalid_with(
                            ErrorReason::TooManyRelationshipsForTransactionalDelete,
                            format!(
                                "found more than {} relationships to be deleted and partial deletion was not requested",
                                limit.unwrap_or_default()
                            ),
                        ));
                    }
                    Ok(outcome)
                })
        })
        .await?;
        let progress = if committed.value.more_remain {
            pb::delete_relationships_response::DeletionProgress::Partial
        } else {
            pb::delete_relationships_response::DeletionProgress::Complete
        };
        Ok(Response::new(pb::DeleteRelationshipsResponse {
            deleted_at: token(&self.state, &tenant, committed.revision),
            deletion_progress: progress as i32,
            relationships_deleted_count: u64::try_from(committed.value.n_deleted)
                .unwrap_or(u64::MAX),
        }))
    }

    async fn check_permission(
        &self,
        request: Request<pb::CheckPermissionRequest>,
    ) -> Result<Response<pb::CheckPermissionResponse>, Status> {
        let _permit = self.state.permit().await?;
        let state = Arc::clone(&self.state);
        let caller = caller(&request)?;
        let request = request.into_inner();
        let response = blocking(move || {
            let tenant = &caller.tenant;
            let resource = convert::object_ref("resource", request.resource.as_ref())?;
            caller.require_definition("resource", resource.object_type())?;
            let permission = convert::relation_name("permission", &request.permission)?;
            let subject = convert::subject_ref("subject", request.subject.as_ref())?;
            let context = convert::context(request.context.as_ref());
            let snapshot = open_snapshot(&state, tenant, request.consistency.as_ref())?;
            let schema = state.schema_at(snapshot.as_ref())?;
            state.record(|metrics| metrics.checks.inc());
            let item = CheckItem {
                resource,
                permission,
                subject,
                context,
            };
            let (result, debug_trace) = if request.with_tracing {
                let (result, debug) = check_with_trace(snapshot.as_ref(), &state, &schema, &item)?;
                (result, Some(debug))
            } else {
                let result = state.engine.check(
                    snapshot.as_ref(),
                    &schema,
                    &item.resource,
                    &item.permission,
                    &item.subject,
                    &item.context,
                )?;
                (result, None)
            };
            state.record(|metrics| metrics.dispatches.inc_by(result.dispatch_count));
            state
                .decisions
                .record(&caller, &item, &result.permissionship, snapshot.revision());
            let (permissionship, partial_caveat_info) = check_permissionship(result.permissionship);
            Ok(pb::CheckPermissionResponse {
                checked_at: token(&state, tenant, snapshot.revision()),
                permissionship,
                partial_caveat_info,
                debug_trace,
                optional_expires_at: None,
            })
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn check_bulk_permissions(
        &self,
        request: Request<pb::CheckBulkPermissionsRequest>,
    ) -> Result<Response<pb::CheckBulkPermissionsResponse>, Status> {
        let _permit = self.state.permit().await?;
        let state = Arc::clone(&self.state);
        let caller = caller(&request)?;
        let request = request.into_inner();
        let response = blocking(move || {
            let tenant = &caller.tenant;
            let max = state.config.max_bulk_check_items;
            if request.items.len() > max {
                return Err(ApiError::invalid_with(
                    ErrorReason::TooManyChecksInRequest,
                    format!(
                        "`items` has {} items, above the maximum of {max}",
                        request.items.len()
                    ),
                ));
            }
            let mut items = Vec::with_capacity(request.items.len());
            for (idx, item) in request.items.iter().enumerate() {
                if let Some(resource) = &item.resource
                    && let Ok(resource_type) =
                        resource.object_type.parse::<ostiary_types::ObjectType>()
                {
                    caller.require_definition(&format!("items[{idx}].resource"), &resource_type)?;
                }
                items.push(CheckItem {
                    resource: convert::object_ref(
                        &format!("items[{idx}].resource"),
                        item.resource.as_ref(),
                    )?,
                    permission: convert::relation_name(
                        &format!("items[{idx}].permission"),
                        &item.permission,
                    )?,
                    subject: convert::subject_ref(
                        &format!("items[{idx}].subject"),
                        item.subject.as_ref(),
                    )?,
                    context: convert::context(item.context.as_ref()),
                });
            }
            let snapshot = open_snapshot(&state, tenant, request.consistency.as_ref())?;
            let schema = state.schema_at(snapshot.as_ref())?;
            state.record(|metrics| {
                metrics
                    .checks
                    .inc_by(u64::try_from(items.len()).unwrap_or(u64::MAX));
            });
            // Traced items are checked one by one, outside the shared memo and the cache, so
            // that each trace is complete.
            let results: Vec<_> = if request.with_tracing {
                items
                    .iter()
                    .map(|item| {
                        check_with_trace(snapshot.as_ref(), &state, &schema, item)
                            .map(|(result, debug)| (result, Some(debug)))
                    })
                    .collect()
            } else {
                state
                    .engine
                    .check_bulk(snapshot.as_ref(), &schema, &items)
                    .into_iter()
                    .map(|res| res.map(|result| (result, None)).map_err(ApiError::from))
                    .collect()
            };
            state.record(|metrics| {
                let dispatches = results
                    .iter()
                    .filter_map(|res| res.as_ref().ok())
                    .map(|(result, _)| result.dispatch_count)
                    .sum();
                metrics.dispatches.inc_by(dispatches);
            });
            for (item, result) in items.iter().zip(&results) {
                if let Ok((result, _)) = result {
                    state.decisions.record(
                        &caller,
                        item,
                        &result.permissionship,
                        snapshot.revision(),
                    );
                }
            }
            let pairs = request
                .items
                .into_iter()
                .zip(results)
                .map(|(item, res)| {
                    let response = match res {
                        Ok((result, debug_trace)) => {
                            let (permissionship, partial_caveat_info) =
                                check_permissionship(result.permissionship);
                            pb::check_bulk_permissions_pair::Response::Item(
                                pb::CheckBulkPermissionsResponseItem {
                                    permissionship,
                                    partial_caveat_info,
                                    debug_trace,
                                },
                            )
                        }
                        Err(err) => {
                            let status = Status::from(err);
                            pb::check_bulk_permissions_pair::Response::Error(
                                ostiary_proto::google::rpc::Status {
                                    code: status.code() as i32,
                                    message: status.message().to_owned(),
                                    details: Vec::new(),
                                },
                            )
                        }
                    };
                    pb::CheckBulkPermissionsPair {
                        request: Some(item),
                        response: Some(response),
                    }
                })
                .collect();
            Ok(pb::CheckBulkPermissionsResponse {
                checked_at: token(&state, tenant, snapshot.revision()),
                pairs,
            })
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn expand_permission_tree(
        &self,
        request: Request<pb::ExpandPermissionTreeRequest>,
    ) -> Result<Response<pb::ExpandPermissionTreeResponse>, Status> {
        let _permit = self.state.permit().await?;
        let state = Arc::clone(&self.state);
        let caller = caller(&request)?;
        let request = request.into_inner();
        let response = blocking(move || {
            let tenant = &caller.tenant;
            let resource = convert::object_ref("resource", request.resource.as_ref())?;
            caller.require_definition("resource", resource.object_type())?;
            let permission = convert::relation_name("permission", &request.permission)?;
            let snapshot = open_snapshot(&state, tenant, request.consistency.as_ref())?;
            let schema = state.schema_at(snapshot.as_ref())?;
            let tree = state.engine.expand(
                snapshot.as_ref(),
                &schema,
                &resource,
                &permission,
                ExpandMode::Shallow,
            )?;
            Ok(pb::ExpandPermissionTreeResponse {
                expanded_at: token(&state, tenant, snapshot.revision()),
                tree_root: Some(tree_to_pb(&tree)),
            })
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn lookup_resources(
        &self,
        request: Request<pb::LookupResourcesRequest>,
    ) -> Result<Response<Self::LookupResourcesStream>, Status> {
        let _permit = self.state.permit().await?;
        let state = Arc::clone(&self.state);
        let caller = caller(&request)?;
        let request = request.into_inner();
        let responses = blocking(move || {
            let tenant = &caller.tenant;
            let resource_type =
                convert::object_type("resource_object_type", &request.resource_object_type)?;
            caller.require_definition("resource_object_type", &resource_type)?;
            let permission = convert::relation_name("permission", &request.permission)?;
            let subject = convert::subject_ref("subject", request.subject.as_ref())?;
            let context = convert::context(request.context.as_ref());
            let limit = limit(
                "optional_limit",
                request.optional_limit,
                state.config.max_lookup_resources_limit,
            )?;
            let snapshot = open_snapshot(&state, tenant, request.consistency.as_ref())?;
            let schema = state.schema_at(snapshot.as_ref())?;
            let mut cursor = request
                .optional_cursor
                .map(|cursor| {
                    state
                        .tokens
                        .decode_cursor(tenant, "optional_cursor", &cursor.token)
                })
                .transpose()?;
            let mut responses = Vec::new();
            loop {
                let want = limit.map_or(STREAM_PAGE, |limit| limit - responses.len());
                let page = state.engine.lookup_resources(
                    snapshot.as_ref(),
                    &schema,
                    &resource_type,
                    &permission,
                    &subject,
                    &context,
                    Some(want),
                    cursor.as_deref(),
                )?;
                for result in page.results {
                    let (permissionship, partial_caveat_info) =
                        lookup_permissionship(&result.permissionship);
                    // Every result carries the cursor that resumes after it, as in SpiceDB:
                    // clients resume from the last result they received, which may be the
                    // last one of all (its cursor then leads to an empty page) or one in the
                    // middle of a stream that broke off.
                    // INVARIANT: the engine's cursor is the id of the last result it
                    // returned, and results come in id order.
                    let resource_object_id = result.resource_id.to_string();
                    responses.push(pb::LookupResourcesResponse {
                        looked_up_at: token(&state, tenant, snapshot.revision()),
                        after_result_cursor: Some(pb::Cursor {
                            token: state.tokens.encode_cursor(tenant, &resource_object_id),
                        }),
                        resource_object_id,
                        permissionship,
                        partial_caveat_info,
                    });
                }
                cursor = page.cursor;
                if cursor.is_none() || limit.is_some() {
                    break;
                }
            }
            state.record(|metrics| metrics.lookup_results("LookupResources", responses.len()));
            Ok(responses)
        })
        .await?;
        Ok(Response::new(stream_of(responses)))
    }

    async fn lookup_subjects(
        &self,
        request: Request<pb::LookupSubjectsRequest>,
    ) -> Result<Response<Self::LookupSubjectsStream>, Status> {
        let _permit = self.state.permit().await?;
        let state = Arc::clone(&self.state);
        let caller = caller(&request)?;
        let request = request.into_inner();
        let responses = blocking(move || {
            let tenant = &caller.tenant;
            // As SpiceDB v1.54: a concrete limit is refused before anything else, and without
            // one the cursor is ignored (every result is streamed, none carries a cursor).
            if request.optional_concrete_limit != 0 {
                return Err(ApiError::Unimplemented(
                    "concrete limit is not yet supported",
                ));
            }
            let resource = convert::object_ref("resource", request.resource.as_ref())?;
            caller.require_definition("resource", resource.object_type())?;
            let permission = convert::relation_name("permission", &request.permission)?;
            let subject_type =
                convert::object_type("subject_object_type", &request.subject_object_type)?;
            let subject_relation = if request.optional_subject_relation.is_empty() {
                None
            } else {
                Some(convert::relation_name(
                    "optional_subject_relation",
                    &request.optional_subject_relation,
                )?)
            };
            let context = convert::context(request.context.as_ref());
            let snapshot = open_snapshot(&state, tenant, request.consistency.as_ref())?;
            let schema = state.schema_at(snapshot.as_ref())?;
            let found = state.engine.lookup_subjects(
                snapshot.as_ref(),
                &schema,
                &resource,
                &permission,
                &subject_type,
                subject_relation.as_ref(),
                &context,
            )?;
            let exclude_wildcards = request.wildcard_option
                == pb::lookup_subjects_request::WildcardOption::ExcludeWildcards as i32;
            let responses = found
                .iter()
                .filter(|found| {
                    !(exclude_wildcards && found.subject.subject_object_id.is_wildcard())
                })
                .map(|found| found_to_pb(found, token(&state, tenant, snapshot.revision())))
                .collect::<Vec<_>>();
            state.record(|metrics| metrics.lookup_results("LookupSubjects", responses.len()));
            Ok(responses)
        })
        .await?;
        Ok(Response::new(stream_of(responses)))
    }

    async fn import_bulk_relationships(
        &self,
        request: Request<Streaming<pb::ImportBulkRelationshipsRequest>>,
    ) -> Result<Response<pb::ImportBulkRelationshipsResponse>, Status> {
        let _permit = self.state.permit().await?;
        let caller = caller(&request)?;
        let mut stream = request.into_inner();
        let mut wire = Vec::new();
        while let Some(batch) = stream.message().await? {
            wire.extend(batch.relationships);
        }
        let state = Arc::clone(&self.state);
        let n_loaded = blocking(move || {
            let mut updates = Vec::with_capacity(wire.len());
            for (idx, rel) in wire.iter().enumerate() {
                let field = format!("relationships[{idx}]");
                let rel = convert::relationship(&field, Some(rel))?;
                updates.push(RelationshipUpdate::Create(rel));
            }
            write_validated(
                &state,
                &caller,
                "relationships.import",
                &[],
                &updates,
                "relationships",
                "",
            )?;
            Ok(updates.len())
        })
        .await?;
        Ok(Response::new(pb::ImportBulkRelationshipsResponse {
            num_loaded: u64::try_from(n_loaded).unwrap_or(u64::MAX),
        }))
    }

    async fn export_bulk_relationships(
        &self,
        request: Request<pb::ExportBulkRelationshipsRequest>,
    ) -> Result<Response<Self::ExportBulkRelationshipsStream>, Status> {
        let _permit = self.state.permit().await?;
        let state = Arc::clone(&self.state);
        let caller = caller(&request)?;
        let request = request.into_inner();
        let responses = blocking(move || {
            let tenant = &caller.tenant;
            let filter = match request.optional_relationship_filter.as_ref() {
                Some(filter) => convert::filter("optional_relationship_filter", Some(filter))?,
                None => RelationshipFilter::default(),
            };
            require_filter_definition(&caller, "optional_relationship_filter", &filter)?;
            let batch = limit(
                "optional_limit",
                request.optional_limit,
                state.config.max_bulk_export_relationships_limit,
            )?
            .unwrap_or(STREAM_PAGE);
            let mut after = request
                .optional_cursor
                .as_ref()
                .map(|cursor| {
                    state
                        .tokens
                        .decode_key_cursor(tenant, "optional_cursor", &cursor.token)
                })
                .transpose()?;
            let snapshot = open_snapshot(&state, tenant, request.consistency.as_ref())?;
            let mut responses = Vec::new();
            loop {
                let page = read_page(snapshot.as_ref(), &filter, after.as_ref(), batch)?;
                let Some(last) = page.last() else { break };
                after = Some(last.key().clone());
                let done = page.len() < batch;
                responses.push(pb::ExportBulkRelationshipsResponse {
                    after_result_cursor: Some(pb::Cursor {
                        token: state.tokens.encode_key_cursor(tenant, last.key()),
                    }),
                    relationships: page.iter().map(convert::relationship_to_pb).collect(),
                });
                if done {
                    break;
                }
            }
            Ok(responses)
        })
        .await?;
        Ok(Response::new(stream_of(responses)))
    }
}
