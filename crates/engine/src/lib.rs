//! The Ostiary evaluation engine: Check, CheckBulk, Expand, LookupResources and
//! LookupSubjects over one store [`Snapshot`] and a compiled schema ([`EngineSchema`]).
//!
//! Answers follow SpiceDB v1.54: relations and permissions, subject sets (`group:eng#member`),
//! wildcards, unions, intersections, exclusions, arrows (`->`, `.any`, `.all`), `nil`, `self`,
//! recursion and cycles, caveats (relationship context merged under the request context,
//! missing parameters give a conditional answer) and expiration (the store hides expired
//! relationships).
//!
//! ```
//! use std::sync::Arc;
//! use ostiary_engine::{Engine, EngineSchema, Permissionship};
//! # use ostiary_store::{Datastore, DatastoreExt, RelationshipUpdate};
//! # use ostiary_types::TenantId;
//! # fn demo(store: &dyn Datastore) -> Result<(), Box<dyn std::error::Error>> {
//! let compiled = ostiary_schema::compile_str("s.zed", "definition user {}\n\
//!     definition doc { relation viewer: user\n permission view = viewer }")
//!     .map_err(|diags| diags.to_string())?
//!     .schema;
//! let schema = EngineSchema::new(Arc::new(compiled))?;
//! let tenant = TenantId::default_tenant();
//! let snapshot = store.head_snapshot(&tenant)?;
//! let result = Engine::default().check(
//!     snapshot.as_ref(),
//!     &schema,
//!     &"doc:readme".parse()?,
//!     &"view".parse()?,
//!     &"user:alice".parse()?,
//!     &serde_json::Map::new(),
//! )?;
//! assert_eq!(result.permissionship, Permissionship::No);
//! # Ok(()) }
//! ```

mod batch;
mod cache;
mod caveat;
mod check;
mod error;
mod expand;
mod lookup;
mod lookup_subjects;
mod rows;
mod schema;
mod subjects;
mod trace;

use std::sync::Arc;

use ostiary_schema::ir::{DefinitionId, RelationId};
use ostiary_store::Snapshot;
use ostiary_types::{ObjectRef, ObjectType, RelationName, SubjectRef};
use serde_json::{Map, Value as Json};
use tracing::instrument;

pub use cache::CacheStats;
pub use error::EngineError;
pub use expand::{DirectSubject, ExpandMode, ExpandNode, ExpandTree, SetOperation};
pub use lookup::{LookupResourcesPage, LookupResult};
pub use lookup_subjects::{FoundSubject, ResolvedSubject};
pub use schema::EngineSchema;
pub use trace::{
    CaveatResult, CaveatTrace, CheckTrace, TraceKind, TraceOperation, TraceResult, TraceSource,
    TracedRelationship,
};

use crate::cache::{CacheKey, CheckCache};
use crate::caveat::Tri;
use crate::check::{Checker, ResolvedSubject as CheckSubject, resolve_resource};
use crate::trace::Tracer;

/// Engine settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// The deepest chain of dispatches (relation or permission evaluations nested in one
    /// another) before [`EngineError::MaxDepthExceeded`]; SpiceDB's default is 50.
    pub max_depth: u32,
}

impl EngineConfig {
    /// SpiceDB's default maximum depth.
    pub const DEFAULT_MAX_DEPTH: u32 = 50;
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_depth: Self::DEFAULT_MAX_DEPTH,
        }
    }
}

/// Whether a subject has a permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permissionship {
    /// `PERMISSIONSHIP_HAS_PERMISSION`.
    Has,
    /// `PERMISSIONSHIP_NO_PERMISSION`.
    No,
    /// `PERMISSIONSHIP_CONDITIONAL_PERMISSION`: it depends on caveat parameters the request
    /// did not supply.
    Conditional {
        /// The missing parameter names, sorted.
        missing_params: Vec<String>,
    },
}

impl From<Tri> for Permissionship {
    fn from(value: Tri) -> Self {
        match value {
            Tri::True => Permissionship::Has,
            Tri::False => Permissionship::No,
            Tri::Partial(missing_params) => Permissionship::Conditional { missing_params },
        }
    }
}

/// The answer to a Check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Has, no, or conditional.
    pub permissionship: Permissionship,
    /// Nodes (a relation or permission of one object) evaluated to answer, as SpiceDB counts
    /// dispatches; 0 when the answer came from the Check cache or another item's memo.
    pub dispatch_count: u64,
}

/// One item of a CheckBulk request.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckItem {
    /// The resource.
    pub resource: ObjectRef,
    /// The relation or permission.
    pub permission: RelationName,
    /// The subject.
    pub subject: SubjectRef,
    /// The request caveat context.
    pub context: Map<String, Json>,
}

/// The evaluation engine: its configuration and an optional cache of Check answers; one per
/// server, shared by every request (clones share the cache).
#[derive(Debug, Clone, Default)]
pub struct Engine {
    config: EngineConfig,
    cache: Option<Arc<CheckCache>>,
}

impl Engine {
    /// An engine with `config`.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            config,
            cache: None,
        }
    }

    /// Adds a cache of Check answers holding at most `max_bytes` (estimated), keyed by
    /// tenant, revision, resource, permission and subject; `0` disables it.
    ///
    /// The key does not name the datastore: share a cached engine only across requests to
    /// one datastore (as a server does).
    #[must_use]
    pub fn with_check_cache(mut self, max_bytes: u64) -> Self {
        self.cache = (max_bytes > 0).then(|| Arc::new(CheckCache::new(max_bytes)));
        self
    }

    /// Hits, misses and size of the Check cache, if there is one.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(|cache| cache.stats())
    }

    /// The cache and key for a check, when its answer may be cached.
    fn cache_key(
        &self,
        snapshot: &dyn Snapshot,
        schema: &EngineSchema,
        resource: (DefinitionId, RelationId, &ObjectRef),
        subject: &CheckSubject,
        context: &Map<String, Json>,
    ) -> Option<(&CheckCache, CacheKey)> {
        let cache = self.cache.as_deref()?;
        if !context.is_empty() || schema.may_expire() {
            return None;
        }
        Some((
            cache,
            CacheKey {
                tenant: snapshot.tenant().clone(),
                revision: snapshot.revision(),
                resource: (resource.0, resource.1, resource.2.object_id().clone()),
                subject: (subject.def, subject.relation, subject.id.clone()),
            },
        ))
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Check: does `subject` have `permission` (a relation or a permission) on `resource`?
    ///
    /// # Errors
    ///
    /// Unknown definitions or relations (of the resource or the subject), a wildcard resource
    /// or subject, a caveat context value of the wrong type or a failing caveat, the depth
    /// limit, or a store failure.
    #[instrument(level = "debug", skip_all, fields(%resource, %permission, %subject))]
    pub fn check(
        &self,
        snapshot: &dyn Snapshot,
        schema: &EngineSchema,
        resource: &ObjectRef,
        permission: &RelationName,
        subject: &SubjectRef,
        context: &Map<String, Json>,
    ) -> Result<CheckResult, EngineError> {
        let (def, rel) = resolve_resource(schema, resource, permission)?;
        let subject = CheckSubject::resolve(schema, subject)?;
        let cached = self.cache_key(snapshot, schema, (def, rel, resource), &subject, context);
        answer(cached, || {
            let mut checker =
                Checker::new(snapshot, schema, subject, context, self.config.max_depth);
            let value = checker.check(def, rel, resource.object_id())?;
            Ok((value, checker.dispatches()))
        })
    }

    /// Check with a trace: the same answer as [`Engine::check`], and the tree of nodes
    /// evaluated to reach it (relationships read, caveats evaluated, each node's value). It
    /// bypasses the Check cache, so the trace is complete, and stops where the untraced check
    /// would (a union stops at its first member).
    ///
    /// # Errors
    ///
    /// Those of [`Engine::check`].
    #[instrument(level = "debug", skip_all, fields(%resource, %permission, %subject))]
    pub fn check_traced(
        &self,
        snapshot: &dyn Snapshot,
        schema: &EngineSchema,
        resource: &ObjectRef,
        permission: &RelationName,
        subject: &SubjectRef,
        context: &Map<String, Json>,
    ) -> Result<(CheckResult, CheckTrace), EngineError> {
        let (def, rel) = resolve_resource(schema, resource, permission)?;
        let subject = CheckSubject::resolve(schema, subject)?;
        let mut checker = Checker::new(snapshot, schema, subject, context, self.config.max_depth)
            .with_tracer(Tracer::new(context));
        let value = checker.check(def, rel, resource.object_id())?;
        let trace = checker
            .take_trace()
            .ok_or_else(|| EngineError::Internal("check recorded no trace".into()))?;
        let result = CheckResult {
            permissionship: value.into(),
            dispatch_count: checker.dispatches(),
        };
        Ok((result, trace))
    }

    /// CheckBulk: many checks at one snapshot. Items with the same subject and context share
    /// one memo, so common sub-problems are evaluated once. Each item gets its own result,
    /// in order.
    #[instrument(level = "debug", skip_all, fields(n_items = items.len()))]
    pub fn check_bulk(
        &self,
        snapshot: &dyn Snapshot,
        schema: &EngineSchema,
        items: &[CheckItem],
    ) -> Vec<Result<CheckResult, EngineError>> {
        let mut results: Vec<Option<Result<CheckResult, EngineError>>> =
            items.iter().map(|_| None).collect();
        // Group items by (subject, context), keeping the first item's index as the group key.
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for (item_idx, item) in items.iter().enumerate() {
            let group = groups.iter_mut().find(|(first, _)| {
                items[*first].subject == item.subject && items[*first].context == item.context
            });
            match group {
                Some((_, members)) => members.push(item_idx),
                None => groups.push((item_idx, vec![item_idx])),
            }
        }
        for (first, members) in groups {
            let first_item = &items[first];
            let subject = match CheckSubject::resolve(schema, &first_item.subject) {
                Ok(subject) => subject,
                Err(err) => {
                    let message = err.to_string();
                    for item_idx in members {
                        results[item_idx] = Some(Err(clone_error(&err, &message)));
                    }
                    continue;
                }
            };
            let mut checker = Checker::new(
                snapshot,
                schema,
                subject,
                &first_item.context,
                self.config.max_depth,
            );
            for item_idx in members {
                let item = &items[item_idx];
                let res = resolve_resource(schema, &item.resource, &item.permission).and_then(
                    |(def, rel)| {
                        let cached = self.cache_key(
                            snapshot,
                            schema,
                            (def, rel, &item.resource),
                            checker.subject(),
                            &item.context,
                        );
                        answer(cached, || {
                            let before = checker.dispatches();
                            let value = checker.check(def, rel, item.resource.object_id())?;
                            Ok((value, checker.dispatches() - before))
                        })
                    },
                );
                results[item_idx] = Some(res);
            }
        }
        results
            .into_iter()
            .map(|res| res.unwrap_or_else(|| Err(EngineError::Internal("unanswered item".into()))))
            .collect()
    }
}

/// A check's answer from the cache, or from `evaluate` (value and dispatches), which is then
/// cached; `cached` is `None` when the answer may not be cached.
fn answer(
    cached: Option<(&CheckCache, CacheKey)>,
    evaluate: impl FnOnce() -> Result<(Tri, u64), EngineError>,
) -> Result<CheckResult, EngineError> {
    if let Some((cache, key)) = &cached
        && let Some(permissionship) = cache.get(key)
    {
        return Ok(CheckResult {
            permissionship,
            dispatch_count: 0,
        });
    }
    let (value, dispatch_count) = evaluate()?;
    let permissionship: Permissionship = value.into();
    if let Some((cache, key)) = cached {
        cache.insert(key, permissionship.clone());
    }
    Ok(CheckResult {
        permissionship,
        dispatch_count,
    })
}

impl Engine {
    /// LookupResources: the ids of the resources of `resource_type` on which `subject` has
    /// `permission`, in id order, each [`Permissionship::Has`] or
    /// [`Permissionship::Conditional`]. At most `limit` results are returned; when more may
    /// follow, the page carries a cursor to pass back as `cursor`.
    ///
    /// # Errors
    ///
    /// The errors of [`Engine::check`], or [`EngineError::InvalidCursor`].
    #[expect(clippy::too_many_arguments, reason = "mirrors the RPC's fields")]
    #[instrument(level = "debug", skip_all, fields(%resource_type, %permission, %subject))]
    pub fn lookup_resources(
        &self,
        snapshot: &dyn Snapshot,
        schema: &EngineSchema,
        resource_type: &ObjectType,
        permission: &RelationName,
        subject: &SubjectRef,
        context: &Map<String, Json>,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<LookupResourcesPage, EngineError> {
        lookup::lookup_resources(
            snapshot,
            schema,
            self.config.max_depth,
            resource_type,
            permission,
            subject,
            context,
            limit,
            cursor,
        )
    }
}

impl Engine {
    /// LookupSubjects: the subjects of `subject_type` (with `subject_relation`, or plain
    /// objects when `None`) that have `permission` on `resource`.
    ///
    /// Results come as SpiceDB's `LookupSubjectsResponse` does: concrete ids, and at most
    /// one wildcard (`*`) listing the subjects it excludes. A concrete subject may also be
    /// covered by the wildcard (it is listed in both forms, as in SpiceDB). Results whose
    /// caveats are false in `context` are dropped; those that depend on missing parameters
    /// are [`Permissionship::Conditional`]. The wildcard comes first, then ids in order.
    ///
    /// SpiceDB streams the parts of a relation's answer (its direct subjects, then each
    /// subject set's) as separate messages without merging them, so its stream may repeat
    /// an id; here every answer is merged into one set.
    ///
    /// # Errors
    ///
    /// Unknown definitions or relations, a wildcard resource, a caveat context value of the
    /// wrong type or a failing caveat, the depth limit, or a store failure.
    #[expect(clippy::too_many_arguments, reason = "mirrors the RPC's fields")]
    #[instrument(level = "debug", skip_all, fields(%resource, %permission, %subject_type))]
    pub fn lookup_subjects(
        &self,
        snapshot: &dyn Snapshot,
        schema: &EngineSchema,
        resource: &ObjectRef,
        permission: &RelationName,
        subject_type: &ObjectType,
        subject_relation: Option<&RelationName>,
        context: &Map<String, Json>,
    ) -> Result<Vec<FoundSubject>, EngineError> {
        lookup_subjects::lookup_subjects(
            snapshot,
            schema,
            self.config.max_depth,
            resource,
            permission,
            subject_type,
            subject_relation,
            context,
        )
    }

    /// Expand: the tree of `permission` on `resource` in SpiceDB's shape.
    /// [`ExpandMode::Shallow`] is the v1 API's ExpandPermissionTree;
    /// [`ExpandMode::Recursive`] also expands subject sets.
    ///
    /// # Errors
    ///
    /// Unknown definitions or relations, a wildcard resource, the depth limit (always, for a
    /// recursive expansion of cyclic data), or a store failure.
    #[instrument(level = "debug", skip_all, fields(%resource, %permission))]
    pub fn expand(
        &self,
        snapshot: &dyn Snapshot,
        schema: &EngineSchema,
        resource: &ObjectRef,
        permission: &RelationName,
        mode: ExpandMode,
    ) -> Result<ExpandTree, EngineError> {
        expand::expand(
            snapshot,
            schema,
            self.config.max_depth,
            resource,
            permission,
            mode,
        )
    }
}

/// Copies a subject-resolution error for every item of a group (errors are not `Clone`
/// because store errors wrap foreign ones; resolution errors are plain data).
fn clone_error(err: &EngineError, message: &str) -> EngineError {
    match err {
        EngineError::UnknownDefinition(name) => EngineError::UnknownDefinition(name.clone()),
        EngineError::UnknownRelation {
            definition,
            relation,
        } => EngineError::UnknownRelation {
            definition: definition.clone(),
            relation: relation.clone(),
        },
        EngineError::WildcardNotAllowed(text) => EngineError::WildcardNotAllowed(text.clone()),
        _ => EngineError::Internal(message.to_owned()),
    }
}
