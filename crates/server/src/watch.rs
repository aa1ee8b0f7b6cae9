//! `WatchService`: streams committed changes in revision order, from a start token (or from
//! head), filtered by object type and relationship filters, with optional checkpoints. It
//! follows the change feed with `Datastore::subscribe`, never by polling, and ends when the
//! server shuts down.

use std::pin::Pin;
use std::sync::Arc;

use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::WatchKind;
use ostiary_proto::authzed::api::v1::watch_service_server::WatchService;
use ostiary_store::{Change, RevisionChanges};
use ostiary_types::{ObjectType, Relationship, RelationshipFilter, Revision, TenantId};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::auth::{Caller, caller};
use crate::permissions::token;
use crate::status::ApiError;
use crate::{ServerState, blocking, convert};

/// The WatchService implementation.
#[derive(Debug)]
pub(crate) struct Watcher {
    state: Arc<ServerState>,
}

impl Watcher {
    /// Serves over `state`.
    pub(crate) fn new(state: Arc<ServerState>) -> Self {
        Self { state }
    }
}

/// How often an idle Watch stream with checkpoints gets one. Checkpoints follow this
/// clock and the stream's own changes only, never other tenants' commits, so their timing
/// tells nothing about other tenants' writes.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// What a Watch stream sends.
#[derive(Debug)]
struct WatchFilter {
    /// The only resource types a definition-restricted token sees.
    allowed: Option<std::collections::BTreeSet<ObjectType>>,
    object_types: Vec<ObjectType>,
    relationship_filters: Vec<RelationshipFilter>,
    relationships: bool,
    schema: bool,
    checkpoints: bool,
}

impl WatchFilter {
    /// Converts the request's filters, for `caller`.
    fn from_request(request: &pb::WatchRequest, caller: &Caller) -> Result<Self, ApiError> {
        if !request.optional_object_types.is_empty()
            && !request.optional_relationship_filters.is_empty()
        {
            return Err(ApiError::invalid(
                "cannot specify both `optional_object_types` and `optional_relationship_filters`",
            ));
        }
        let object_types = request
            .optional_object_types
            .iter()
            .enumerate()
            .map(|(idx, text)| convert::object_type(&format!("optional_object_types[{idx}]"), text))
            .collect::<Result<_, _>>()?;
        let relationship_filters = request
            .optional_relationship_filters
            .iter()
            .enumerate()
            .map(|(idx, filter)| {
                convert::filter(
                    &format!("optional_relationship_filters[{idx}]"),
                    Some(filter),
                )
            })
            .collect::<Result<_, _>>()?;
        let kinds = &request.optional_update_kinds;
        let wants = |kind: WatchKind| kinds.contains(&(kind as i32));
        let allowed = caller
            .is_restricted()
            .then(|| caller.principal.definitions().cloned())
            .flatten();
        Ok(Self {
            allowed,
            object_types,
            relationship_filters,
            relationships: kinds.is_empty() || wants(WatchKind::IncludeRelationshipUpdates),
            schema: wants(WatchKind::IncludeSchemaUpdates),
            checkpoints: wants(WatchKind::IncludeCheckpoints),
        })
    }

    /// Reports whether `rel` passes the filters.
    fn admits(&self, rel: &Relationship) -> bool {
        self.allowed
            .as_ref()
            .is_none_or(|allowed| allowed.contains(rel.resource().object_type()))
            && (self.object_types.is_empty()
                || self
                    .object_types
                    .iter()
                    .any(|object_type| object_type == rel.resource().object_type()))
            && (self.relationship_filters.is_empty()
                || self
                    .relationship_filters
                    .iter()
                    .any(|filter| filter.matches(rel)))
    }

    /// The response for one revision, or `None` if nothing in it passes the filters.
    fn response(
        &self,
        changes: &RevisionChanges,
        state: &ServerState,
        tenant: &TenantId,
    ) -> Option<pb::WatchResponse> {
        use pb::relationship_update::Operation;
        let mut updates = Vec::new();
        let mut schema_updated = false;
        for change in &changes.changes {
            match change {
                Change::Touch(rel) if self.relationships && self.admits(rel) => {
                    updates.push(pb::RelationshipUpdate {
                        operation: Operation::Touch as i32,
                        relationship: Some(convert::relationship_to_pb(rel)),
                    });
                }
                Change::Delete(rel) if self.relationships && self.admits(rel) => {
                    updates.push(pb::RelationshipUpdate {
                        operation: Operation::Delete as i32,
                        relationship: Some(convert::relationship_to_pb(rel)),
                    });
                }
                Change::Schema(_) if self.schema => schema_updated = true,
                _ => {}
            }
        }
        (!updates.is_empty() || schema_updated).then(|| pb::WatchResponse {
            updates,
            changes_through: token(state, tenant, changes.revision),
            optional_transaction_metadata: None,
            schema_updated,
            is_checkpoint: false,
            full_revision_metadata: Vec::new(),
        })
    }
}

/// Follows `tenant`'s change feed after `after`, sending responses until the client goes
/// away or the server shuts down.
async fn follow(
    state: Arc<ServerState>,
    caller: Caller,
    filter: Arc<WatchFilter>,
    mut after: Revision,
    tx: mpsc::Sender<Result<pb::WatchResponse, Status>>,
) {
    let mut head_changed = state.store.subscribe();
    let mut shutting_down = state.shutting_down.subscribe();
    // A checkpoint is due once caught up after sending changes; otherwise one every
    // `CHECKPOINT_INTERVAL`.
    let mut checkpoint_due = false;
    let mut next_heartbeat = tokio::time::Instant::now() + CHECKPOINT_INTERVAL;
    let tenant = caller.tenant.clone();
    loop {
        if *shutting_down.borrow() {
            return;
        }
        // A token revoked or expired, or a tenant suspended, while the stream is open
        // ends it before anything more is sent (in-memory lookups, as in the access layer).
        if let Err(status) = caller.recheck(state.tenancy.as_deref()) {
            let _ = tx.send(Err(status)).await;
            return;
        }
        // Mark the current head as seen before reading, so that a commit racing with the
        // read wakes the wait below.
        head_changed.borrow_and_update();
        let step_state = Arc::clone(&state);
        let step_filter = Arc::clone(&filter);
        let step_tenant = tenant.clone();
        let step = blocking(move || {
            let head = step_state.store.head_revision()?;
            let batch = step_state.store.changes_since(
                &step_tenant,
                after,
                step_state.config.watch_batch_revisions,
            )?;
            let responses: Vec<_> = batch
                .iter()
                .filter_map(|changes| step_filter.response(changes, &step_state, &step_tenant))
                .collect();
            // INVARIANT: `head` was read before `changes_since`, so an empty batch means every
            // revision up to `head` has been seen.
            let next = batch
                .last()
                .map_or(head.max(after), |changes| changes.revision);
            Ok((responses, next, batch.is_empty()))
        })
        .await;
        let (responses, next, caught_up) = match step {
            Ok(step) => step,
            Err(err) => {
                let _ = tx.send(Err(err.into())).await;
                return;
            }
        };
        checkpoint_due |= !responses.is_empty();
        for response in responses {
            if tx.send(Ok(response)).await.is_err() {
                return;
            }
        }
        after = next;
        if !caught_up {
            continue;
        }
        // Caught up: tell the client everything up to `after` has been sent.
        if filter.checkpoints && (checkpoint_due || tokio::time::Instant::now() >= next_heartbeat) {
            checkpoint_due = false;
            next_heartbeat = tokio::time::Instant::now() + CHECKPOINT_INTERVAL;
            let checkpoint = pb::WatchResponse {
                updates: Vec::new(),
                changes_through: token(&state, &tenant, after),
                optional_transaction_metadata: None,
                schema_updated: false,
                is_checkpoint: true,
                full_revision_metadata: Vec::new(),
            };
            if tx.send(Ok(checkpoint)).await.is_err() {
                return;
            }
        }
        let heartbeat = async {
            if filter.checkpoints {
                tokio::time::sleep_until(next_heartbeat).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            changed = head_changed.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = heartbeat => {}
            _ = shutting_down.changed() => return,
            () = tx.closed() => return,
        }
    }
}

#[tonic::async_trait]
impl WatchService for Watcher {
    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let filter = Arc::new(WatchFilter::from_request(&request, &caller)?);
        let state = Arc::clone(&self.state);
        let start = request.optional_start_cursor.clone();
        let streamer = caller.clone();
        let after = blocking(move || match start {
            Some(start) => {
                let revision = state.tokens.decode_token(
                    &caller.tenant,
                    "optional_start_cursor",
                    &start.token,
                )?;
                state.store.check_revision(revision)?;
                Ok(revision)
            }
            None => Ok(state.store.head_revision()?),
        })
        .await?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(follow(Arc::clone(&self.state), streamer, filter, after, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
