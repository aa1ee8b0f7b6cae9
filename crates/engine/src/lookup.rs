//! LookupResources: the resources of a type on which a subject has a permission.
//!
//! The walk starts at the subject and follows the schema's reverse reachability graph
//! ([`ostiary_schema::ir::Reachability`]) through the store's reverse index
//! ([`Snapshot::read_subjects`]), one batched read per (edge, frontier of one kind): every
//! object it reaches of the requested type and permission is a *candidate*. Candidates are a
//! superset of the answer (intersections, exclusions, `.all()` arrows and caveats are ignored
//! while walking), so each is confirmed by Check; the checks share one memo.

use std::collections::{BTreeSet, HashMap};

use ostiary_schema::ir::{DefinitionId, ReachEdgeKind, ReachNode, RelationId};
use ostiary_store::{Page, Snapshot, SubjectQuery};
use ostiary_types::{ObjectId, ObjectType, RelationFilter, RelationName, SubjectRef};
use serde_json::{Map, Value as Json};

use crate::batch::{batch_fails, may_recurse};
use crate::caveat::Tri;
use crate::check::{CheckHint, Checker, ResolvedSubject};
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

/// The walk's graph of (kind, object) nodes, kept to find cycles.
#[derive(Default)]
struct WalkGraph {
    index: HashMap<(Kind, ObjectId), usize>,
    edges: Vec<(usize, usize)>,
}

impl WalkGraph {
    /// The node's index, and whether it is new.
    fn node(&mut self, kind: Kind, id: &ObjectId) -> (usize, bool) {
        let next = self.index.len();
        match self.index.entry((kind, id.clone())) {
            std::collections::hash_map::Entry::Occupied(entry) => (*entry.get(), false),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(next);
                (next, true)
            }
        }
    }

    /// Whether the edges contain a cycle (Kahn's algorithm leaves nodes unsorted).
    fn has_cycle(&self) -> bool {
        let count = self.index.len();
        let mut in_degree = vec![0_usize; count];
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); count];
        for &(from, to) in &self.edges {
            in_degree[to] += 1;
            out[from].push(to);
        }
        let mut ready: Vec<usize> = (0..count).filter(|&n| in_degree[n] == 0).collect();
        let mut sorted = 0;
        while let Some(node) = ready.pop() {
            sorted += 1;
            for &to in &out[node] {
                in_degree[to] -= 1;
                if in_degree[to] == 0 {
                    ready.push(to);
                }
            }
        }
        sorted < count
    }
}

/// What the walk found: candidate ids of the target, and the hinted verdicts of those it
/// already checked (reached through a conditional edge; a hint ignores the caveats on the
/// path, so these verdicts are a fallback only).
struct Candidates {
    ids: BTreeSet<ObjectId>,
    checked: HashMap<ObjectId, Tri>,
}

/// Finds every candidate resource id of `target` reachable from `subject`.
///
/// As SpiceDB's LookupResources does: the walk only follows edges that can still lead to
/// `target`; an object reached through a conditional edge (under an intersection, exclusion
/// or `.all()`) is checked first, with the branch just walked given as a hint, and the walk
/// goes on from it only if it passes; and the walk fails with
/// [`EngineError::MaxDepthExceeded`] when the objects it goes through form a cycle, since
/// SpiceDB re-dispatches around such a cycle until its depth limit.
fn candidates(
    snapshot: &dyn Snapshot,
    schema: &EngineSchema,
    resolved: &ResolvedSubject,
    target: (DefinitionId, RelationId),
    context: &Map<String, Json>,
    max_depth: u32,
) -> Result<Candidates, EngineError> {
    let reachability = &schema.compiled().reachability;
    let useful = reachability.nodes_reaching(target);
    let mut found = BTreeSet::new();
    let mut checked: HashMap<ObjectId, Tri> = HashMap::new();
    // Keyed by the hint too: a check is only as good as the branch it takes for granted.
    let mut verdicts: HashMap<(Kind, ObjectId, Option<CheckHint>), Tri> = HashMap::new();
    let mut graph = WalkGraph::default();
    let start: Kind = (resolved.def, resolved.relation);
    graph.node(start, &resolved.id);
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
                if !useful.contains(&ReachNode {
                    definition: edge.definition,
                    relation: Some(edge.relation),
                }) {
                    continue;
                }
                // (source id, reached id) pairs.
                let mut reached: Vec<(ObjectId, ObjectId)> = Vec::new();
                match edge.kind {
                    ReachEdgeKind::Computed => {
                        reached.extend(ids.iter().map(|id| (id.clone(), id.clone())));
                    }
                    ReachEdgeKind::This => {
                        if relation.is_none() && def == edge.definition {
                            reached.extend(ids.iter().map(|id| (id.clone(), id.clone())));
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
                        reached.extend(buffer.iter().map(|rel| {
                            (
                                rel.subject().object_id().clone(),
                                rel.resource().object_id().clone(),
                            )
                        }));
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
                        reached.extend(buffer.iter().map(|rel| {
                            (
                                rel.subject().object_id().clone(),
                                rel.resource().object_id().clone(),
                            )
                        }));
                    }
                }
                let hint_for = |id: &ObjectId| match edge.kind {
                    ReachEdgeKind::Computed => {
                        relation.map(|rel| CheckHint::Node(def, rel, id.clone()))
                    }
                    ReachEdgeKind::Arrow { tupleset, .. } => relation.map(|rel| CheckHint::Arrow {
                        def: edge.definition,
                        id: id.clone(),
                        tupleset,
                        target: (def, rel),
                    }),
                    ReachEdgeKind::Direct { .. } | ReachEdgeKind::This => None,
                };
                if edge.conditional {
                    // SpiceDB checks these candidates in one dispatch, which can fail on a
                    // cycle that none of the checks of one candidate enters.
                    let mut batch: Vec<ObjectId> =
                        reached.iter().map(|(_, id)| id.clone()).collect();
                    batch.sort();
                    batch.dedup();
                    if batch.len() > 1 && may_recurse(schema, (edge.definition, edge.relation)) {
                        let hints: Vec<CheckHint> = batch.iter().filter_map(&hint_for).collect();
                        if batch_fails(
                            snapshot,
                            schema,
                            resolved,
                            (edge.definition, edge.relation),
                            &batch,
                            &hints,
                            max_depth,
                        )? {
                            return Err(EngineError::MaxDepthExceeded { max_depth });
                        }
                    }
                }
                for (from_id, id) in reached {
                    // A wildcard row's subject is `*`, which stands for the start object.
                    let from_id = if from_id.is_wildcard() {
                        &resolved.id
                    } else {
                        &from_id
                    };
                    if edge.conditional {
                        let hint = hint_for(&id);
                        let key = (reached_kind, id.clone(), hint.clone());
                        let verdict = match verdicts.get(&key) {
                            Some(verdict) => verdict.clone(),
                            None => {
                                let mut checker = Checker::new(
                                    snapshot,
                                    schema,
                                    resolved.clone(),
                                    context,
                                    max_depth,
                                );
                                if let Some(hint) = hint {
                                    checker = checker.with_hint(hint);
                                }
                                let verdict = checker.check(edge.definition, edge.relation, &id)?;
                                verdicts.insert(key, verdict.clone());
                                verdict
                            }
                        };
                        if verdict.is_false() {
                            continue;
                        }
                        if reached_kind == (target.0, Some(target.1)) {
                            checked.entry(id.clone()).or_insert(verdict);
                        }
                    }
                    let (from, _) = graph.node((def, relation), from_id);
                    let (to, new) = graph.node(reached_kind, &id);
                    graph.edges.push((from, to));
                    if new {
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
    if graph.has_cycle() {
        return Err(EngineError::MaxDepthExceeded { max_depth });
    }
    Ok(Candidates {
        ids: found,
        checked,
    })
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
    let Candidates {
        ids: found,
        checked,
    } = candidates(snapshot, schema, &resolved, (def, rel), context, max_depth)?;
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
        // Every candidate is confirmed here (caveats, and edges the walk ignores). One the walk
        // already checked with a hint keeps that verdict if this check fails (a cycle the
        // hint let SpiceDB skip), as SpiceDB does not check it again.
        let verdict = match (checker.check(def, rel, id), checked.get(id)) {
            (Ok(verdict), _) => verdict,
            (Err(EngineError::MaxDepthExceeded { .. }), Some(verdict)) => verdict.clone(),
            (Err(err), _) => return Err(err),
        };
        match verdict {
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
