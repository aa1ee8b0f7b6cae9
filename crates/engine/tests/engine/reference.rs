//! A reference evaluator: plain set semantics over the whole (small) universe of objects,
//! Kleene iteration to the least fixpoint for recursion, and caveats as three-valued leaves.
//!
//! It knows one caveat, `cav(x int) { x > 0 }`, which the random generator uses, and
//! evaluates it by hand so that the engine's CEL path is checked rather than reused.

use std::collections::{BTreeSet, HashMap};

use ostiary_schema::CompiledSchema;
use ostiary_schema::ir::{ArrowFunction, DefinitionId, RelationId, Rewrite};
use ostiary_types::{ObjectId, Relationship, SubjectRef};
use serde_json::{Map, Value as Json};

/// A three-valued membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum V {
    F,
    P(BTreeSet<String>),
    T,
}

impl V {
    fn or(self, other: V) -> V {
        match (self, other) {
            (V::T, _) | (_, V::T) => V::T,
            (V::F, x) | (x, V::F) => x,
            (V::P(mut a), V::P(b)) => {
                a.extend(b);
                V::P(a)
            }
        }
    }

    fn and(self, other: V) -> V {
        match (self, other) {
            (V::F, _) | (_, V::F) => V::F,
            (V::T, x) | (x, V::T) => x,
            (V::P(mut a), V::P(b)) => {
                a.extend(b);
                V::P(a)
            }
        }
    }

    fn not(self) -> V {
        match self {
            V::T => V::F,
            V::F => V::T,
            partial => partial,
        }
    }
}

type Node = (DefinitionId, RelationId, ObjectId);

/// The reference model of one schema and one set of relationships.
pub(crate) struct Reference<'a> {
    schema: &'a CompiledSchema,
    rows: HashMap<(DefinitionId, RelationId, ObjectId), Vec<&'a Relationship>>,
    /// Every object id of each definition (resources and subjects seen, plus extra ones).
    ids: HashMap<DefinitionId, BTreeSet<ObjectId>>,
}

impl<'a> Reference<'a> {
    pub(crate) fn new(
        schema: &'a CompiledSchema,
        rels: &'a [Relationship],
        extra_ids: &[(DefinitionId, ObjectId)],
    ) -> Self {
        let mut rows: HashMap<_, Vec<&Relationship>> = HashMap::new();
        let mut ids: HashMap<DefinitionId, BTreeSet<ObjectId>> = HashMap::new();
        for rel in rels {
            let def = schema
                .definition_id(rel.resource().object_type().as_str())
                .unwrap();
            let relation = schema
                .definition(def)
                .relation_id(rel.relation().as_str())
                .unwrap();
            rows.entry((def, relation, rel.resource().object_id().clone()))
                .or_default()
                .push(rel);
            ids.entry(def)
                .or_default()
                .insert(rel.resource().object_id().clone());
            if !rel.subject().is_wildcard() {
                let subject_def = schema
                    .definition_id(rel.subject().object_type().as_str())
                    .unwrap();
                ids.entry(subject_def)
                    .or_default()
                    .insert(rel.subject().object_id().clone());
            }
        }
        for (def, id) in extra_ids {
            ids.entry(*def).or_default().insert(id.clone());
        }
        Self { schema, rows, ids }
    }

    /// Every node the subject is (possibly) a member of, or `None` if the iteration did not
    /// converge (recursion through an exclusion).
    pub(crate) fn solve(
        &self,
        subject: &SubjectRef,
        context: &Map<String, Json>,
    ) -> Option<HashMap<Node, V>> {
        let mut nodes = Vec::new();
        for (def_idx, definition) in self.schema.definitions.iter().enumerate() {
            let def = DefinitionId(def_idx as u32);
            for rel_idx in 0..definition.relations.len() {
                for id in self.ids.get(&def).into_iter().flatten() {
                    nodes.push((def, RelationId(rel_idx as u32), id.clone()));
                }
            }
        }
        let mut values: HashMap<Node, V> = HashMap::new();
        for _round in 0..200 {
            let mut changed = false;
            for node in &nodes {
                let value = self.eval_node(node, subject, context, &values);
                let old = values.get(node).cloned().unwrap_or(V::F);
                if value != old {
                    values.insert(node.clone(), value);
                    changed = true;
                }
            }
            if !changed {
                return Some(values);
            }
        }
        None
    }

    fn get(
        &self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
        subject: &SubjectRef,
        values: &HashMap<Node, V>,
    ) -> V {
        if self.is_subject(def, Some(rel), id, subject) {
            return V::T;
        }
        values.get(&(def, rel, id.clone())).cloned().unwrap_or(V::F)
    }

    fn is_subject(
        &self,
        def: DefinitionId,
        rel: Option<RelationId>,
        id: &ObjectId,
        subject: &SubjectRef,
    ) -> bool {
        let subject_def = self.schema.definition_id(subject.object_type().as_str());
        let subject_rel = subject.relation().map(|name| {
            self.schema
                .definition(subject_def.unwrap())
                .relation_id(name.as_str())
                .unwrap()
        });
        subject_def == Some(def) && subject_rel == rel && subject.object_id() == id
    }

    fn eval_node(
        &self,
        node: &Node,
        subject: &SubjectRef,
        context: &Map<String, Json>,
        values: &HashMap<Node, V>,
    ) -> V {
        let (def, rel, id) = node;
        if self.is_subject(*def, Some(*rel), id, subject) {
            return V::T;
        }
        match self.schema.relation(*def, *rel).rewrite() {
            Some(rewrite) => self.eval_rewrite(*def, id, rewrite, subject, context, values),
            None => {
                let mut acc = V::F;
                for row in self.rows_of(*def, *rel, id) {
                    let row_subject = row.subject();
                    let leaf = caveat(row, context);
                    let reaches = if row_subject.is_wildcard() {
                        if row_subject.object_type() == subject.object_type() {
                            V::T
                        } else {
                            V::F
                        }
                    } else if row_subject == subject {
                        V::T
                    } else if let Some(subject_rel) = row_subject.relation() {
                        let subject_def = self
                            .schema
                            .definition_id(row_subject.object_type().as_str())
                            .unwrap();
                        let subject_rel = self
                            .schema
                            .definition(subject_def)
                            .relation_id(subject_rel.as_str())
                            .unwrap();
                        self.get(
                            subject_def,
                            subject_rel,
                            row_subject.object_id(),
                            subject,
                            values,
                        )
                    } else {
                        V::F
                    };
                    acc = acc.or(leaf.and(reaches));
                }
                acc
            }
        }
    }

    fn rows_of(&self, def: DefinitionId, rel: RelationId, id: &ObjectId) -> &[&'a Relationship] {
        self.rows
            .get(&(def, rel, id.clone()))
            .map_or(&[], Vec::as_slice)
    }

    fn eval_rewrite(
        &self,
        def: DefinitionId,
        id: &ObjectId,
        rewrite: &Rewrite,
        subject: &SubjectRef,
        context: &Map<String, Json>,
        values: &HashMap<Node, V>,
    ) -> V {
        let recurse = |child: &Rewrite| self.eval_rewrite(def, id, child, subject, context, values);
        match rewrite {
            Rewrite::Union(children) => children.iter().map(recurse).fold(V::F, V::or),
            Rewrite::Intersection(children) => children.iter().map(recurse).fold(V::T, V::and),
            Rewrite::Exclusion(base, subtracted) => recurse(base).and(recurse(subtracted).not()),
            Rewrite::ComputedUserset(rel) => self.get(def, *rel, id, subject, values),
            Rewrite::Nil => V::F,
            Rewrite::This => {
                if self.is_subject(def, None, id, subject) {
                    V::T
                } else {
                    V::F
                }
            }
            Rewrite::TupleToUserset(ttu) => {
                let rows = self.rows_of(def, ttu.tupleset, id);
                let mut per_object = rows.iter().map(|row| {
                    let target_def = self
                        .schema
                        .definition_id(row.subject().object_type().as_str())
                        .unwrap();
                    match ttu.target_on(target_def) {
                        Some(target) => caveat(row, context).and(self.get(
                            target_def,
                            target,
                            row.subject().object_id(),
                            subject,
                            values,
                        )),
                        None => V::F,
                    }
                });
                match ttu.function {
                    ArrowFunction::Any => per_object.fold(V::F, V::or),
                    ArrowFunction::All => {
                        if rows.is_empty() {
                            V::F
                        } else {
                            per_object
                                .try_fold(V::T, |acc, value| Some(acc.and(value)))
                                .unwrap()
                        }
                    }
                }
            }
        }
    }
}

/// The caveat of a row: `cav(x int) { x > 0 }`, the stored `x` winning over the request's.
fn caveat(row: &Relationship, context: &Map<String, Json>) -> V {
    let Some(caveat) = row.caveat() else {
        return V::T;
    };
    assert_eq!(
        caveat.name().as_str(),
        "cav",
        "the reference knows only `cav`"
    );
    match caveat.context().get("x").or_else(|| context.get("x")) {
        None => V::P(BTreeSet::from(["x".to_owned()])),
        Some(value) => {
            if value.as_i64().unwrap() > 0 {
                V::T
            } else {
                V::F
            }
        }
    }
}
