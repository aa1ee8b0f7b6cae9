//! LookupResources: the resources of a type on which a subject has a permission.
//!
//! The walk starts at the subject and follows the schema's reverse reachability graph
//! ([`ostiary_schema::ir::Reachability`]) through the store's reverse index
//! ([`Snapshot::read_subjects`]), one batched read per (edge, frontier of one kind): every
//! object it reaches of the requested type and permission is a *candidate*. Candidates are a
//! superset of the answer (intersections, exclusions, `.all()` arrows and caveats are ignored
//! while walking), so each is confirmed by Check; the checks share one memo.

use std::collections::{BTreeSet, HashMap, HashSet};

use ostiary_schema::ir::{DefinitionId, ReachEdgeKind, ReachNode, RelationId};
use ostiary_store::{Page, Snapshot, SubjectQuery};
use ostiary_types::{ObjectId, ObjectType, RelationFilter, RelationName, SubjectRef};
use serde_json::{Map, Value as Json};

use crate::caveat::Tri;
use crate::check::{Checker, ResolvedSubject};
use crate::{EngineError, EngineSchema, Permissionship};

/// One resource found by LookupResources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupResult {
    /// The resource id.
    pub resource_id: ObjectId,
    /// [`Permissionship::Has`] or [`Permissionship::Conditional`].
    pub permissionship: Permissionship,
}

/// One page of LookupResources results, in resource id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupResourcesPage {
    /// The results.
    pub results: Vec<LookupResult>,
    /// Where the next page starts, if the limit cut this one short.
    pub cursor: Option<String>,
}

/// A frontier node: objects of one kind reached by the walk.
type Kind = (DefinitionId, Option<RelationId>);

/// Finds every candidate resource id of `target` reachable from `subject`.
fn candidates(
    snapshot: &dyn Snapshot,
    schema: &EngineSchema,
    resolved: &ResolvedSubject,
    target: (DefinitionId, RelationId),
) -> Result<BTreeSet<ObjectId>, EngineError> {
    let reachability = &schema.compiled().reachability;
    let mut found = BTreeSet::new();
    let mut visited: HashSet<(Kind, ObjectId)> = HashSet::new();
    let start: Kind = (resolved.def, resolved.relation);
    visited.insert((start, resolved.id.clone()));
    if start == (target.0, Some(target.1)) {
        found.insert(resolved.id.clone());
    }
    let mut frontier: HashMap<Kind, Vec<ObjectId>> = HashMap::new();
    frontier.insert(start, vec![resolved.id.clone()]);
    let mut buffer = Vec::new();
    while !frontier.is_empty() {
        let mut next: HashMap<Kind, Vec<ObjectId>> = HashMap::new();
        for ((def, relation), ids) in frontier {
            let node = ReachNode {
                definition: def,
                relation,
            };
            for edge in reachability.edges_from(node) {
                let reached_kind: Kind = (edge.definition, Some(edge.relation));
                let mut reached: Vec<ObjectId> = Vec::new();
                match edge.kind {
                    ReachEdgeKind::Computed => reached.extend(ids.iter().cloned()),
                    ReachEdgeKind::This => {
                        if relation.is_none() && def == edge.definition {
                            reached.extend(ids.iter().cloned());
                        }
                    }
                    ReachEdgeKind::Direct { wildcard, .. } => {
                        // A wildcard relationship grants every subject of its type, so it
                        // applies to the subject itself only.
                        if wildcard && (def, relation) != start {
                            continue;
                        }
                        let wildcard_ids = [ObjectId::wildcard()];
                        let relation_filter = RelationFilter {
                            relation: relation.map(|rel| schema.relation_name(def, rel).clone()),
                        };
                        let ellipsis = RelationFilter { relation: None };
                        let query = SubjectQuery {
                            subject_type: schema.object_type(def),
                            subject_ids: if wildcard { &wildcard_ids } else { &ids },
                            subject_relation: Some(if wildcard {
                                &ellipsis
                            } else {
                                &relation_filter
                            }),
                            resource_type: Some(schema.object_type(edge.definition)),
                            relation: Some(schema.relation_name(edge.definition, edge.relation)),
                        };
                        buffer.clear();
                        snapshot.read_subjects(&query, Page::ALL, &mut buffer)?;
                        reached.extend(buffer.iter().map(|rel| rel.resource().object_id().clone()));
                    }
                    ReachEdgeKind::Arrow { tupleset, .. } => {
                        // The frontier objects are the subjects of `tupleset` relationships.
                        let query = SubjectQuery {
                            subject_type: schema.object_type(def),
                            subject_ids: &ids,
                            subject_relation: None,
                            resource_type: Some(schema.object_type(edge.definition)),
                            relation: Some(schema.relation_name(edge.definition, tupleset)),
                        };
                        buffer.clear();
                        snapshot.read_subjects(&query, Page::ALL, &mut buffer)?;
                        reached.extend(buffer.iter().map(|rel| rel.resource().object_id().clone()));
                    }
                }
                for id in reached {
                    if visited.insert((reached_kind, id.clone())) {
                        if reached_kind == (target.0, Some(target.1)) {
                            found.insert(id.clone());
                        }
                        next.entry(reached_kind).or_default().push(id);
                    }
                }
            }
        }
        frontier = next;
    }
    Ok(found)
}

/// Runs LookupResources; see [`crate::Engine::lookup_resources`].
#[expect(clippy::too_many_arguments, reason = "mirrors the RPC's fields")]
pub(crate) fn lookup_resources(
    snapshot: &dyn Snapshot,
    schema: &EngineSchema,
    max_depth: u32,
    resource_type: &ObjectType,
    permission: &RelationName,
    subject: &SubjectRef,
    context: &Map<String, Json>,
    limit: Option<usize>,
    cursor: Option<&str>,
) -> Result<LookupResourcesPage, EngineError> {
    let def = schema.require_definition(resource_type)?;
    let rel = schema.require_relation(def, permission.as_str())?;
    let resolved = ResolvedSubject::resolve(schema, subject)?;
    let after = cursor
        .map(|text| ObjectId::new(text).map_err(|_| EngineError::InvalidCursor(text.to_owned())))
        .transpose()?;
    let found = candidates(snapshot, schema, &resolved, (def, rel))?;
    let mut checker = Checker::new(snapshot, schema, resolved, context, max_depth);
    let mut results = Vec::new();
    let range = match &after {
        Some(after) => found
            .range::<ObjectId, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
        None => found.range::<ObjectId, _>(..),
    };
    for id in range {
        if limit.is_some_and(|limit| results.len() >= limit) {
            let last: Option<&LookupResult> = results.last();
            return Ok(LookupResourcesPage {
                cursor: last.map(|res| res.resource_id.to_string()),
                results,
            });
        }
        match checker.check(def, rel, id)? {
            Tri::False => {}
            value => results.push(LookupResult {
                resource_id: id.clone(),
                permissionship: value.into(),
            }),
        }
    }
    Ok(LookupResourcesPage {
        results,
        cursor: None,
    })
}
