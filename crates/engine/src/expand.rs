//! Expand: the tree of a permission in SpiceDB's shape (`internal/graph/expand.go`, returned
//! by the v1 API as a `PermissionRelationshipTree`).
//!
//! * A relation is a leaf listing its relationships' subjects: objects and wildcards first,
//!   then subject sets (`group:eng#member`), each in store order.
//! * A permission's union, intersection or exclusion is an intermediate node whose children
//!   are its operands; `nil` is an empty leaf.
//! * A computed relation (`view = viewer`) is the expansion of that relation on the same
//!   object; an arrow is a union node (an intersection for `.all`) over the target's
//!   expansion on each object reached, a child per relationship.
//! * Every node names the object and relation it expands (`expanded_object`,
//!   `expanded_relation`): operator nodes, `nil` leaves and arrow nodes carry the permission
//!   being expanded, the others the relation they stand for.
//!
//! [`ExpandMode::Shallow`] is the v1 API's ExpandPermissionTree: it still descends through
//! permissions and arrows, but stops at subject sets. [`ExpandMode::Recursive`] also expands
//! each subject set: the relation becomes a union of the subject sets' trees followed by its
//! own leaf. Cycles in the data are not cut (SpiceDB does not cut them either): a cyclic
//! recursive expansion ends in [`EngineError::MaxDepthExceeded`].

use ostiary_schema::ir::{ArrowFunction, DefinitionId, RelationId, Rewrite, TupleToUserset};
use ostiary_store::{Page, ResourceQuery, Snapshot};
use ostiary_types::{ContextualizedCaveat, ObjectId, ObjectRef, RelationName, SubjectRef};

use crate::check::resolve_resource;
use crate::{EngineError, EngineSchema};

/// How far Expand descends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpandMode {
    /// Stop at subject sets (the v1 ExpandPermissionTree API).
    Shallow,
    /// Expand subject sets too (what validation files' expected relations need).
    Recursive,
}

/// The operation of an intermediate node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperation {
    /// `OPERATION_UNION`.
    Union,
    /// `OPERATION_INTERSECTION`.
    Intersection,
    /// `OPERATION_EXCLUSION`: the first child minus the others.
    Exclusion,
}

/// A subject listed in a leaf, with the caveat of its relationship.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectSubject {
    /// The subject (object, wildcard or subject set).
    pub subject: SubjectRef,
    /// The relationship's caveat, if any (the v1 API does not return it).
    pub caveat: Option<ContextualizedCaveat>,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpandNode {
    /// An operator over child trees.
    Intermediate {
        /// The operator.
        operation: SetOperation,
        /// The operands, in schema (or relationship) order.
        children: Vec<ExpandTree>,
    },
    /// The subjects of a relation's relationships.
    Leaf {
        /// The subjects.
        subjects: Vec<DirectSubject>,
    },
}

/// One node of an expansion tree (SpiceDB's `PermissionRelationshipTree`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandTree {
    /// The object whose relation this node expands.
    pub expanded_object: ObjectRef,
    /// The relation or permission this node expands.
    pub expanded_relation: RelationName,
    /// The caveat of the relationship that led here (arrow and subject-set children), if
    /// any; the v1 API does not return it.
    pub caveat: Option<ContextualizedCaveat>,
    /// The node itself.
    pub node: ExpandNode,
}

struct Expander<'a> {
    snapshot: &'a dyn Snapshot,
    schema: &'a EngineSchema,
    mode: ExpandMode,
    max_depth: u32,
    depth: u32,
}

impl Expander<'_> {
    fn object(&self, def: DefinitionId, id: &ObjectId) -> ObjectRef {
        ObjectRef::new(self.schema.object_type(def).clone(), id.clone())
    }

    fn tree(
        &self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
        node: ExpandNode,
    ) -> ExpandTree {
        ExpandTree {
            expanded_object: self.object(def, id),
            expanded_relation: self.schema.relation_name(def, rel).clone(),
            caveat: None,
            node,
        }
    }

    /// One dispatch: the expansion of `def:id#rel`.
    fn expand_node(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
    ) -> Result<ExpandTree, EngineError> {
        if self.depth >= self.max_depth {
            return Err(EngineError::MaxDepthExceeded {
                max_depth: self.max_depth,
            });
        }
        self.depth += 1;
        let schema = self.schema;
        let res = match schema.compiled().relation(def, rel).rewrite() {
            None => self.expand_direct(def, rel, id),
            // A permission's rewrite is always a set operation in SpiceDB (`view = viewer` is
            // a union of one child), while the IR keeps a lone operand bare.
            Some(
                rewrite @ (Rewrite::Union(_) | Rewrite::Intersection(_) | Rewrite::Exclusion(..)),
            ) => self.expand_rewrite(def, rel, id, rewrite),
            Some(rewrite) => self.expand_rewrite(def, rel, id, rewrite).map(|child| {
                self.tree(
                    def,
                    rel,
                    id,
                    ExpandNode::Intermediate {
                        operation: SetOperation::Union,
                        children: vec![child],
                    },
                )
            }),
        };
        self.depth -= 1;
        res
    }

    fn expand_direct(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
    ) -> Result<ExpandTree, EngineError> {
        let schema = self.schema;
        let query = ResourceQuery {
            resource_type: schema.object_type(def),
            resource_ids: std::slice::from_ref(id),
            relation: Some(schema.relation_name(def, rel)),
            subject: None,
        };
        let mut rows = Vec::new();
        self.snapshot.read_resources(&query, Page::ALL, &mut rows)?;
        let (terminal, sets): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .map(|row| {
                let (key, caveat, _) = row.into_parts();
                let (_, _, subject) = key.into_parts();
                DirectSubject { subject, caveat }
            })
            .partition(|direct| direct.subject.relation().is_none());
        let mut children = Vec::new();
        if self.mode == ExpandMode::Recursive {
            for set in &sets {
                let Some(relation) = set.subject.relation() else {
                    continue;
                };
                let Some((set_def, set_rel)) = schema
                    .compiled()
                    .resolve(set.subject.object_type().as_str(), relation.as_str())
                else {
                    continue;
                };
                let mut child = self.expand_node(set_def, set_rel, set.subject.object_id())?;
                child.caveat = set.caveat.clone();
                children.push(child);
            }
        }
        let leaf = self.tree(
            def,
            rel,
            id,
            ExpandNode::Leaf {
                subjects: terminal.into_iter().chain(sets).collect(),
            },
        );
        if children.is_empty() {
            return Ok(leaf);
        }
        children.push(leaf);
        Ok(self.tree(
            def,
            rel,
            id,
            ExpandNode::Intermediate {
                operation: SetOperation::Union,
                children,
            },
        ))
    }

    /// Expands a rewrite of permission `def:id#rel`.
    fn expand_rewrite(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
        rewrite: &Rewrite,
    ) -> Result<ExpandTree, EngineError> {
        let operator = |operation, children| ExpandNode::Intermediate {
            operation,
            children,
        };
        let node = match rewrite {
            Rewrite::Union(children) => operator(
                SetOperation::Union,
                self.expand_children(def, rel, id, children.iter())?,
            ),
            Rewrite::Intersection(children) => operator(
                SetOperation::Intersection,
                self.expand_children(def, rel, id, children.iter())?,
            ),
            Rewrite::Exclusion(base, subtracted) => operator(
                SetOperation::Exclusion,
                self.expand_children(def, rel, id, [&**base, &**subtracted].into_iter())?,
            ),
            Rewrite::ComputedUserset(computed) => return self.expand_node(def, *computed, id),
            Rewrite::TupleToUserset(ttu) => return self.expand_arrow(def, rel, id, ttu),
            Rewrite::Nil => ExpandNode::Leaf {
                subjects: Vec::new(),
            },
            Rewrite::This => ExpandNode::Leaf {
                subjects: vec![DirectSubject {
                    subject: SubjectRef::new(self.object(def, id), None),
                    caveat: None,
                }],
            },
        };
        Ok(self.tree(def, rel, id, node))
    }

    fn expand_children<'r>(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
        children: impl Iterator<Item = &'r Rewrite>,
    ) -> Result<Vec<ExpandTree>, EngineError> {
        children
            .map(|child| self.expand_rewrite(def, rel, id, child))
            .collect()
    }

    fn expand_arrow(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
        ttu: &TupleToUserset,
    ) -> Result<ExpandTree, EngineError> {
        let schema = self.schema;
        let query = ResourceQuery {
            resource_type: schema.object_type(def),
            resource_ids: std::slice::from_ref(id),
            relation: Some(schema.relation_name(def, ttu.tupleset)),
            subject: None,
        };
        let mut rows = Vec::new();
        self.snapshot.read_resources(&query, Page::ALL, &mut rows)?;
        let mut children = Vec::with_capacity(rows.len());
        for row in &rows {
            let subject = row.subject();
            let target = schema
                .definition_id(subject.object_type())
                .and_then(|subject_def| Some((subject_def, ttu.target_on(subject_def)?)));
            let mut child = match target {
                Some((target_def, target_rel)) if !subject.is_wildcard() => {
                    self.expand_node(target_def, target_rel, subject.object_id())?
                }
                // SpiceDB expands a missing relation to an empty leaf of the permission.
                _ => self.tree(
                    def,
                    rel,
                    id,
                    ExpandNode::Leaf {
                        subjects: Vec::new(),
                    },
                ),
            };
            child.caveat = row.caveat().cloned();
            children.push(child);
        }
        let operation = match ttu.function {
            ArrowFunction::Any => SetOperation::Union,
            ArrowFunction::All => SetOperation::Intersection,
        };
        Ok(self.tree(
            def,
            rel,
            id,
            ExpandNode::Intermediate {
                operation,
                children,
            },
        ))
    }
}

/// Runs Expand; see [`crate::Engine::expand`].
pub(crate) fn expand(
    snapshot: &dyn Snapshot,
    schema: &EngineSchema,
    max_depth: u32,
    resource: &ObjectRef,
    permission: &RelationName,
    mode: ExpandMode,
) -> Result<ExpandTree, EngineError> {
    let (def, rel) = resolve_resource(schema, resource, permission)?;
    let mut expander = Expander {
        snapshot,
        schema,
        mode,
        max_depth,
        depth: 0,
    };
    expander.expand_node(def, rel, resource.object_id())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ostiary_store::{DatastoreExt, RelationshipUpdate};
    use ostiary_store_mem::MemDatastore;
    use ostiary_types::TenantId;

    use super::{ExpandMode, ExpandNode, ExpandTree, SetOperation};
    use crate::{Engine, EngineConfig, EngineSchema};

    /// `op(object#relation)[children]` or `leaf(object#relation)[subjects]`; a `~` marks a
    /// caveated subject or subtree.
    fn render(tree: &ExpandTree) -> String {
        let place = format!("{}#{}", tree.expanded_object, tree.expanded_relation);
        let mark = if tree.caveat.is_some() { "~" } else { "" };
        match &tree.node {
            ExpandNode::Leaf { subjects } => {
                let subjects: Vec<String> = subjects
                    .iter()
                    .map(|direct| {
                        let mark = if direct.caveat.is_some() { "~" } else { "" };
                        format!("{}{mark}", direct.subject)
                    })
                    .collect();
                format!("{mark}leaf({place})[{}]", subjects.join(" "))
            }
            ExpandNode::Intermediate {
                operation,
                children,
            } => {
                let name = match operation {
                    SetOperation::Union => "union",
                    SetOperation::Intersection => "intersection",
                    SetOperation::Exclusion => "exclusion",
                };
                let children: Vec<String> = children.iter().map(render).collect();
                format!("{mark}{name}({place})[{}]", children.join(" "))
            }
        }
    }

    fn check(schema: &str, relationships: &str, cases: &[(&str, ExpandMode, &str)]) {
        let compiled = ostiary_schema::compile_str("t.zed", schema).unwrap().schema;
        let schema = EngineSchema::new(Arc::new(compiled)).unwrap();
        let store = MemDatastore::default();
        let tenant = TenantId::default_tenant();
        let updates: Vec<_> = relationships
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| RelationshipUpdate::Touch(line.parse().unwrap()))
            .collect();
        store.write_relationships(&tenant, &[], &updates).unwrap();
        let snapshot = store.head_snapshot(&tenant).unwrap();
        let engine = Engine::new(EngineConfig { max_depth: 50 });
        for (text, mode, expected) in cases {
            let (resource, permission) = text.split_once('#').unwrap();
            let actual = match engine.expand(
                snapshot.as_ref(),
                &schema,
                &resource.parse().unwrap(),
                &permission.parse().unwrap(),
                *mode,
            ) {
                Ok(tree) => render(&tree),
                Err(err) => format!("err {err}"),
            };
            assert_eq!(actual, *expected, "{text} {mode:?}");
        }
    }

    /// Shapes confirmed against SpiceDB v1.54's ExpandPermissionTree.
    #[test]
    fn shallow_trees_have_spicedbs_shape() {
        check(
            "caveat cav(x int) { x > 0 }
             definition user {}
             definition group {
                relation member: user | group#member
             }
             definition doc {
                relation viewer: user | user:* | group#member
                relation editor: user
                relation banned: user | user with cav
                permission view = viewer + editor
                permission allowed = viewer - banned
                permission nothing = nil
             }",
            "doc:1#viewer@user:alice
             doc:1#viewer@group:eng#member
             group:eng#member@user:bob
             doc:2#viewer@user:*
             doc:2#banned@user:mallory
             doc:2#banned@user:cond[cav]",
            &[
                (
                    "doc:1#view",
                    ExpandMode::Shallow,
                    "union(doc:1#view)[leaf(doc:1#viewer)[user:alice group:eng#member] \
                     leaf(doc:1#editor)[]]",
                ),
                (
                    "doc:2#allowed",
                    ExpandMode::Shallow,
                    "exclusion(doc:2#allowed)[leaf(doc:2#viewer)[user:*] \
                     leaf(doc:2#banned)[user:cond~ user:mallory]]",
                ),
                (
                    "doc:1#nothing",
                    ExpandMode::Shallow,
                    "union(doc:1#nothing)[leaf(doc:1#nothing)[]]",
                ),
                (
                    "doc:1#viewer",
                    ExpandMode::Recursive,
                    "union(doc:1#viewer)[leaf(group:eng#member)[user:bob] \
                     leaf(doc:1#viewer)[user:alice group:eng#member]]",
                ),
            ],
        );
    }

    #[test]
    fn arrows_and_cycles() {
        check(
            "definition user {}
             definition group {
                relation member: user | group#member
             }
             definition folder {
                relation parent: folder
                relation viewer: user
                permission view = viewer + parent->view
                permission view_all = viewer + parent.all(view)
             }",
            "folder:a#viewer@user:alice
             folder:b#parent@folder:a
             folder:b#viewer@user:bob
             folder:d#parent@folder:a
             folder:d#parent@folder:b
             group:x#member@group:y#member
             group:y#member@group:x#member",
            &[
                (
                    "folder:d#view_all",
                    ExpandMode::Shallow,
                    "union(folder:d#view_all)[leaf(folder:d#viewer)[] \
                     intersection(folder:d#view_all)[\
                     union(folder:a#view)[leaf(folder:a#viewer)[user:alice] union(folder:a#view)[]] \
                     union(folder:b#view)[leaf(folder:b#viewer)[user:bob] union(folder:b#view)[\
                     union(folder:a#view)[leaf(folder:a#viewer)[user:alice] union(folder:a#view)[]]]]]]",
                ),
                (
                    "group:x#member",
                    ExpandMode::Shallow,
                    "leaf(group:x#member)[group:y#member]",
                ),
                (
                    "group:x#member",
                    ExpandMode::Recursive,
                    "err max depth exceeded: the relationships form a cycle or nest deeper than 50 dispatches",
                ),
            ],
        );
    }
}
