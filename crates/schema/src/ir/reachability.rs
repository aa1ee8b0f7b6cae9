//! The reverse reachability graph LookupResources walks, from a subject towards resources.
//!
//! A [`ReachNode`] is "subjects of this kind": `(user, ...)` means user objects themselves,
//! `(group, member)` means the subject set `group:X#member` for some `X`. An edge out of a node
//! says which `resource#relation` such a subject can be found in, and how:
//!
//! * [`ReachEdgeKind::Direct`]: relationships `resource:R#relation@subject` are stored (the
//!   subject kind is an allowed type of the relation; `wildcard` edges need the engine to look
//!   for `user:*` subjects instead of the concrete id);
//! * [`ReachEdgeKind::Computed`]: the permission's rewrite names the node's relation on the same
//!   object (`permission view = viewer`), so the resource id does not change;
//! * [`ReachEdgeKind::Arrow`]: the permission has `tupleset->target` and the node is
//!   `(subject type of tupleset, target)`; the engine reads `resource:?#tupleset@node_object`
//!   to find the resources;
//! * [`ReachEdgeKind::This`]: `self`, the resource is the subject object.
//!
//! An edge is `conditional` when it passes through an intersection, the left side of an
//! exclusion or an `.all()` arrow: reaching the resource that way makes it a *candidate*, and
//! the engine must confirm it with a Check. Subtracted branches (the right side of `-`) add
//! no edges, because they can only remove resources, and only the first branch of an
//! intersection adds edges, because every member of the intersection is in it.
//!
//! Walking from `(subject type, subject relation or ...)` with a worklist over
//! [`Reachability::edges_from`] visits every (resource type, relation) that may contain the
//! subject; [`Reachability::reachable_from`] does that walk for tests and planning.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use super::{
    AllowedSubject, ArrowFunction, CompiledSchema, DefinitionId, RelationId, RelationKind, Rewrite,
};

/// A kind of subject: objects of a definition (`relation: None`, the `...` ellipsis), or the
/// subject set of one of its relations or permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReachNode {
    /// The subject's definition.
    pub definition: DefinitionId,
    /// `None` for the object itself, else the subject relation.
    pub relation: Option<RelationId>,
}

/// How a subject reaches a resource relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReachEdgeKind {
    /// A stored relationship names the subject (or, if `wildcard`, `type:*`).
    Direct {
        /// The allowed type is `type:*`.
        wildcard: bool,
        /// The allowed type carries a caveat, so the result may be conditional on context.
        caveated: bool,
    },
    /// A computed userset on the same object.
    Computed,
    /// An arrow over the stored relation `tupleset` of the resource definition.
    Arrow {
        /// The tupleset relation on the resource definition.
        tupleset: RelationId,
        /// `any` or `all`.
        function: ArrowFunction,
    },
    /// `self`: the resource is the subject.
    This,
}

/// One edge of the reverse graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReachEdge {
    /// The resource definition reached.
    pub definition: DefinitionId,
    /// The relation or permission reached on it.
    pub relation: RelationId,
    /// How.
    pub kind: ReachEdgeKind,
    /// Whether resources found this way must still be checked (intersection, exclusion,
    /// `.all()`).
    pub conditional: bool,
}

/// The reverse graph: for each kind of subject, the resource relations it reaches in one step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reachability {
    edges: HashMap<ReachNode, Vec<ReachEdge>>,
}

impl Reachability {
    /// Builds the graph for a schema.
    pub(crate) fn build(schema: &CompiledSchema) -> Self {
        let mut edges: HashMap<ReachNode, BTreeSet<ReachEdge>> = HashMap::new();
        for (def_idx, definition) in schema.definitions.iter().enumerate() {
            let def_id = DefinitionId(def_idx as u32);
            for (rel_idx, relation) in definition.relations.iter().enumerate() {
                let rel_id = RelationId(rel_idx as u32);
                match &relation.kind {
                    RelationKind::Relation { allowed_types } => {
                        for allowed in allowed_types {
                            let (node_relation, wildcard) = match allowed.subject {
                                AllowedSubject::Ellipsis => (None, false),
                                AllowedSubject::Wildcard => (None, true),
                                AllowedSubject::Relation(subject_rel) => (Some(subject_rel), false),
                            };
                            let node = ReachNode {
                                definition: allowed.definition,
                                relation: node_relation,
                            };
                            edges.entry(node).or_default().insert(ReachEdge {
                                definition: def_id,
                                relation: rel_id,
                                kind: ReachEdgeKind::Direct {
                                    wildcard,
                                    caveated: allowed.caveat.is_some(),
                                },
                                conditional: false,
                            });
                        }
                    }
                    RelationKind::Permission { rewrite, .. } => {
                        let mut add = |node: ReachNode, kind: ReachEdgeKind, conditional: bool| {
                            edges.entry(node).or_default().insert(ReachEdge {
                                definition: def_id,
                                relation: rel_id,
                                kind,
                                conditional,
                            });
                        };
                        walk_rewrite(def_id, rewrite, false, &mut add);
                    }
                }
            }
        }
        Reachability {
            edges: edges
                .into_iter()
                .map(|(node, set)| (node, set.into_iter().collect()))
                .collect(),
        }
    }

    /// The resource relations a subject of kind `node` reaches in one step.
    pub fn edges_from(&self, node: ReachNode) -> &[ReachEdge] {
        self.edges.get(&node).map_or(&[], Vec::as_slice)
    }

    /// Every kind of subject from which `target` (a resource relation) can be reached in zero
    /// or more steps: the walk towards `target` only needs edges into these nodes.
    pub fn nodes_reaching(&self, target: (DefinitionId, RelationId)) -> HashSet<ReachNode> {
        let mut reverse: HashMap<ReachNode, Vec<ReachNode>> = HashMap::new();
        for (from, edges) in &self.edges {
            for edge in edges {
                let to = ReachNode {
                    definition: edge.definition,
                    relation: Some(edge.relation),
                };
                reverse.entry(to).or_default().push(*from);
            }
        }
        let start = ReachNode {
            definition: target.0,
            relation: Some(target.1),
        };
        let mut seen = HashSet::from([start]);
        let mut queue = VecDeque::from([start]);
        while let Some(current) = queue.pop_front() {
            for from in reverse.get(&current).map_or(&[][..], Vec::as_slice) {
                if seen.insert(*from) {
                    queue.push_back(*from);
                }
            }
        }
        seen
    }

    /// Every (resource definition, relation) reachable from `node` in any number of steps,
    /// sorted.
    pub fn reachable_from(&self, node: ReachNode) -> Vec<(DefinitionId, RelationId)> {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([node]);
        while let Some(current) = queue.pop_front() {
            for edge in self.edges_from(current) {
                if seen.insert((edge.definition, edge.relation)) {
                    queue.push_back(ReachNode {
                        definition: edge.definition,
                        relation: Some(edge.relation),
                    });
                }
            }
        }
        seen.into_iter().collect()
    }
}

/// Adds the edges a rewrite contributes to its permission.
fn walk_rewrite(
    def_id: DefinitionId,
    rewrite: &Rewrite,
    conditional: bool,
    add: &mut impl FnMut(ReachNode, ReachEdgeKind, bool),
) {
    match rewrite {
        Rewrite::Union(children) => {
            // As SpiceDB's reachability graph: once an `.all()` arrow is met, the siblings
            // after it are conditional too (it changes the state shared by the loop).
            let mut conditional = conditional;
            for child in children {
                walk_rewrite(def_id, child, conditional, add);
                conditional |= matches!(
                    child,
                    Rewrite::TupleToUserset(ttu) if ttu.function == ArrowFunction::All
                );
            }
        }
        // Only the first branch of an intersection is walked: every resource in the
        // intersection is in it, and the Check that confirms each candidate covers the
        // others. SpiceDB's LookupResources walks the same branch, which decides whether
        // it ever goes round a cycle in the other branches (and fails for it).
        Rewrite::Intersection(children) => {
            if let Some(first) = children.first() {
                walk_rewrite(def_id, first, true, add);
            }
        }
        Rewrite::Exclusion(base, _subtracted) => walk_rewrite(def_id, base, true, add),
        Rewrite::ComputedUserset(relation) => add(
            ReachNode {
                definition: def_id,
                relation: Some(*relation),
            },
            ReachEdgeKind::Computed,
            conditional,
        ),
        Rewrite::TupleToUserset(ttu) => {
            for (target_def, target_rel) in &ttu.targets {
                add(
                    ReachNode {
                        definition: *target_def,
                        relation: Some(*target_rel),
                    },
                    ReachEdgeKind::Arrow {
                        tupleset: ttu.tupleset,
                        function: ttu.function,
                    },
                    conditional || ttu.function == ArrowFunction::All,
                );
            }
        }
        Rewrite::This => add(
            ReachNode {
                definition: def_id,
                relation: None,
            },
            ReachEdgeKind::This,
            conditional,
        ),
        Rewrite::Nil => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::compile_str;
    use crate::ir::{ReachEdgeKind, ReachNode};

    const SCHEMA: &str = r#"
definition user {}

definition group {
    relation member: user | group#member
}

definition folder {
    relation parent: folder
    relation viewer: user | user:* | group#member
    permission view = viewer + parent->view
}

definition document {
    relation folder: folder
    relation banned: user
    relation owner: user
    permission edit = owner - banned
    permission view = edit + folder->view
    permission strict = folder.all(view)
}
"#;

    fn names(schema: &crate::CompiledSchema, node: ReachNode) -> Vec<String> {
        schema
            .reachability
            .reachable_from(node)
            .into_iter()
            .map(|(def, rel)| {
                let definition = schema.definition(def);
                format!(
                    "{}#{}",
                    definition.name,
                    definition.relations[rel.index()].name
                )
            })
            .collect()
    }

    #[test]
    fn users_reach_everything_they_can_be_granted() {
        let schema = compile_str("t.zed", SCHEMA).unwrap().schema;
        let user = schema.definition_id("user").unwrap();
        let reached = names(
            &schema,
            ReachNode {
                definition: user,
                relation: None,
            },
        );
        assert_eq!(
            reached,
            [
                "group#member",
                "folder#viewer",
                "folder#view",
                "document#banned",
                "document#owner",
                "document#edit",
                "document#view",
                "document#strict",
            ]
        );
    }

    #[test]
    fn edges_say_how_and_whether_a_check_is_needed() {
        let schema = compile_str("t.zed", SCHEMA).unwrap().schema;
        let (folder, view) = schema.resolve("folder", "view").unwrap();
        let edges = schema.reachability.edges_from(ReachNode {
            definition: folder,
            relation: Some(view),
        });
        let shown: Vec<String> = edges
            .iter()
            .map(|edge| {
                let definition = schema.definition(edge.definition);
                let kind = match edge.kind {
                    ReachEdgeKind::Arrow { tupleset, function } => format!(
                        "arrow over {} ({function:?})",
                        definition.relations[tupleset.index()].name
                    ),
                    other => format!("{other:?}"),
                };
                format!(
                    "{}#{} by {kind}{}",
                    definition.name,
                    definition.relations[edge.relation.index()].name,
                    if edge.conditional {
                        ", needs check"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                "folder#view by arrow over parent (Any)",
                "document#view by arrow over folder (Any)",
                "document#strict by arrow over folder (All), needs check",
            ]
        );
        // `banned` is subtracted: it adds no edge towards `edit`.
        let (document, banned) = schema.resolve("document", "banned").unwrap();
        assert!(
            schema
                .reachability
                .edges_from(ReachNode {
                    definition: document,
                    relation: Some(banned)
                })
                .is_empty()
        );
        // Wildcards are direct edges flagged for the engine.
        let user = schema.definition_id("user").unwrap();
        let wildcard = schema
            .reachability
            .edges_from(ReachNode {
                definition: user,
                relation: None,
            })
            .iter()
            .filter(|edge| matches!(edge.kind, ReachEdgeKind::Direct { wildcard: true, .. }))
            .count();
        assert_eq!(wildcard, 1);
    }

    #[test]
    fn only_the_first_branch_of_an_intersection_is_walked() {
        let schema = compile_str(
            "t.zed",
            r#"
definition user {}

definition document {
    relation parent: document
    relation owner: user
    relation reviewer: user
    permission approve = owner & reviewer & parent->approve
    permission read = parent.all(approve) + reviewer
}
"#,
        )
        .unwrap()
        .schema;
        let (document, approve) = schema.resolve("document", "approve").unwrap();
        let into_approve = |relation: &str| {
            let (_, rel) = schema.resolve("document", relation).unwrap();
            schema
                .reachability
                .edges_from(ReachNode {
                    definition: document,
                    relation: Some(rel),
                })
                .iter()
                .filter(|edge| edge.relation == approve)
                .map(|edge| edge.conditional)
                .collect::<Vec<_>>()
        };
        // `owner` leads into `approve` (to be checked); `reviewer` and the recursive arrow,
        // later branches, do not.
        assert_eq!(into_approve("owner"), [true]);
        assert_eq!(into_approve("reviewer"), Vec::<bool>::new());
        assert_eq!(into_approve("approve"), Vec::<bool>::new());
        // The branch after an `.all()` arrow needs a check too, as in SpiceDB.
        let (_, read) = schema.resolve("document", "read").unwrap();
        let (_, reviewer) = schema.resolve("document", "reviewer").unwrap();
        let into_read: Vec<bool> = schema
            .reachability
            .edges_from(ReachNode {
                definition: document,
                relation: Some(reviewer),
            })
            .iter()
            .filter(|edge| edge.relation == read)
            .map(|edge| edge.conditional)
            .collect();
        assert_eq!(into_read, [true]);
    }
}
