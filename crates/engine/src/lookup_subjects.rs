//! LookupSubjects: every subject of a type (and optional subject relation) that has a
//! permission on one resource, computed as a [`SubjectSet`] per node by set algebra over the
//! rewrite tree, as SpiceDB's `internal/graph/lookupsubjects.go` does, never by checking
//! candidates one by one.
//!
//! # Semantics
//!
//! A node is (definition, relation, object id); its value is the set of matching subjects:
//!
//! * the node itself when it *is* the requested subject kind (`group:eng#member` looked up
//!   for `group#member`);
//! * a relation: its relationships naming the requested kind (`user:*` gives the wildcard),
//!   plus, for every subject set (`group:x#member`), that node's subjects, conditioned on the
//!   relationship's caveat;
//! * a permission: union, intersection and exclusion of its children's sets; an arrow unites
//!   (`->`, `.any`) or intersects (`.all`) the target's sets over the objects reached.
//!
//! # Recursion
//!
//! Depth and memo work as in Check ([`crate::check`]): each node evaluated counts against the
//! depth limit. A node met again while being evaluated (a cycle) fails the request with
//! [`EngineError::MaxDepthExceeded`], as SpiceDB does after unrolling the cycle to its depth
//! limit (LookupSubjects needs every branch, so nothing short-circuits it).
//!
//! # Hot path
//!
//! No logging. One forward read per node.

use std::collections::HashMap;
use std::rc::Rc;

use ostiary_schema::ir::{ArrowFunction, DefinitionId, RelationId, Rewrite, TupleToUserset};
use ostiary_store::Snapshot;
use ostiary_types::{ObjectId, ObjectRef, ObjectType, RelationName, Relationship};
use serde_json::{Map, Value as Json};

use crate::caveat::{CaveatEvaluator, Tri};
use crate::check::resolve_resource;
use crate::rows::RowPool;
use crate::subjects::{SubjectSet, Wildcard};
use crate::{EngineError, EngineSchema, Permissionship};

/// A subject id with its permissionship, as in SpiceDB's `ResolvedSubject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSubject {
    /// The subject's object id; `*` for a wildcard.
    pub subject_object_id: ObjectId,
    /// [`Permissionship::Has`] or [`Permissionship::Conditional`].
    pub permissionship: Permissionship,
}

/// One LookupSubjects result, as in SpiceDB's `LookupSubjectsResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSubject {
    /// The subject (a concrete id or the wildcard `*`).
    pub subject: ResolvedSubject,
    /// For a wildcard, the subjects it does not include, in id order; each is
    /// [`Permissionship::Has`] (always excluded) or [`Permissionship::Conditional`]
    /// (excluded depending on caveats). Empty for a concrete subject.
    pub excluded_subjects: Vec<ResolvedSubject>,
}

type NodeKey = (DefinitionId, RelationId, ObjectId);

/// The subject kind looked up: a definition and a relation (`None`: the ellipsis).
type Target = (DefinitionId, Option<RelationId>);

/// Evaluates the subject sets of nodes for one request.
#[derive(Debug)]
pub(crate) struct SubjectLookup<'a> {
    snapshot: &'a dyn Snapshot,
    schema: &'a EngineSchema,
    caveats: CaveatEvaluator<'a>,
    max_depth: u32,
    target: Target,
    memo: HashMap<NodeKey, Rc<SubjectSet>>,
    in_progress: HashMap<NodeKey, usize>,
    depth: usize,
    low: usize,
    rows: RowPool,
}

impl<'a> SubjectLookup<'a> {
    pub(crate) fn new(
        snapshot: &'a dyn Snapshot,
        schema: &'a EngineSchema,
        target: Target,
        context: &'a Map<String, Json>,
        max_depth: u32,
    ) -> Self {
        Self {
            snapshot,
            schema,
            caveats: CaveatEvaluator::new(schema.compiled(), context),
            max_depth,
            target,
            memo: HashMap::new(),
            in_progress: HashMap::new(),
            depth: 0,
            low: usize::MAX,
            rows: RowPool::default(),
        }
    }

    /// The subjects of `def:id#rel`.
    pub(crate) fn node(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
    ) -> Result<Rc<SubjectSet>, EngineError> {
        let key = (def, rel, id.clone());
        if let Some(value) = self.memo.get(&key) {
            return Ok(Rc::clone(value));
        }
        if let Some(&level) = self.in_progress.get(&key) {
            // As in Check: SpiceDB unrolls cycles until its depth limit, and LookupSubjects
            // never short-circuits, so any cycle reached fails the request.
            self.low = self.low.min(level);
            return Err(EngineError::MaxDepthExceeded {
                max_depth: self.max_depth,
            });
        }
        if self.depth >= self.max_depth as usize {
            return Err(EngineError::MaxDepthExceeded {
                max_depth: self.max_depth,
            });
        }
        self.depth += 1;
        let level = self.depth;
        self.in_progress.insert(key.clone(), level);
        let saved_low = std::mem::replace(&mut self.low, usize::MAX);
        let res = self.eval_node(def, rel, id).map(Rc::new);
        self.in_progress.remove(&key);
        self.depth -= 1;
        let frame_low = self.low;
        self.low = saved_low.min(frame_low);
        if let Ok(value) = &res
            && frame_low >= level
        {
            self.memo.insert(key, Rc::clone(value));
        }
        res
    }

    fn eval_node(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
    ) -> Result<SubjectSet, EngineError> {
        let mut res = SubjectSet::new();
        if self.target == (def, Some(rel)) {
            res.add_concrete(id.clone(), Tri::True);
        }
        let schema = self.schema;
        let found = match schema.compiled().relation(def, rel).rewrite() {
            None => self.eval_direct(def, rel, id)?,
            Some(rewrite) => self.eval_rewrite(def, id, rewrite)?,
        };
        res.union_with(&found);
        Ok(res)
    }

    fn read(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
    ) -> Result<Vec<Relationship>, EngineError> {
        self.rows
            .read(self.snapshot, self.schema, (def, rel, id), None)
    }

    fn recycle(&mut self, buffer: Vec<Relationship>) {
        self.rows.recycle(buffer);
    }

    fn eval_direct(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
    ) -> Result<SubjectSet, EngineError> {
        let rows = self.read(def, rel, id)?;
        let res = self.direct_rows(&rows);
        self.recycle(rows);
        res
    }

    fn direct_rows(&mut self, rows: &[Relationship]) -> Result<SubjectSet, EngineError> {
        let schema = self.schema;
        let mut res = SubjectSet::new();
        for row in rows {
            let subject = row.subject();
            let Some(subject_def) = schema.definition_id(subject.object_type()) else {
                continue;
            };
            let subject_rel = match subject.relation() {
                None => None,
                Some(name) => match schema
                    .compiled()
                    .definition(subject_def)
                    .relation_id(name.as_str())
                {
                    Some(subject_rel) => Some(subject_rel),
                    None => continue,
                },
            };
            let cond = self.caveats.eval(row.caveat())?;
            if cond.is_false() {
                continue;
            }
            if (subject_def, subject_rel) == self.target {
                if subject.is_wildcard() {
                    res.add_wildcard(Wildcard {
                        cond: cond.clone(),
                        excluded: Default::default(),
                    });
                } else {
                    res.add_concrete(subject.object_id().clone(), cond.clone());
                }
            }
            if let Some(subject_rel) = subject_rel
                && !subject.is_wildcard()
            {
                let child = self.node(subject_def, subject_rel, subject.object_id())?;
                res.union_with(&SubjectSet::clone(&child).with_parent(&cond));
            }
        }
        Ok(res)
    }

    fn eval_rewrite(
        &mut self,
        def: DefinitionId,
        id: &ObjectId,
        rewrite: &'a Rewrite,
    ) -> Result<SubjectSet, EngineError> {
        match rewrite {
            Rewrite::Union(children) => {
                let mut acc = SubjectSet::new();
                for child in children {
                    let value = self.eval_rewrite(def, id, child)?;
                    acc.union_with(&value);
                }
                Ok(acc)
            }
            Rewrite::Intersection(children) => {
                let mut acc: Option<SubjectSet> = None;
                for child in children {
                    let value = self.eval_rewrite(def, id, child)?;
                    // No early exit on an empty set: SpiceDB evaluates every child (and
                    // fails if one fails, e.g. on a cycle).
                    match &mut acc {
                        None => acc = Some(value),
                        Some(acc) => acc.intersect_with(&value),
                    }
                }
                Ok(acc.unwrap_or_default())
            }
            Rewrite::Exclusion(base, subtracted) => {
                // Both sides always, as SpiceDB (an error in either fails the lookup).
                let mut base = self.eval_rewrite(def, id, base)?;
                let subtracted = self.eval_rewrite(def, id, subtracted)?;
                base.subtract(&subtracted);
                Ok(base)
            }
            Rewrite::ComputedUserset(rel) => {
                let value = self.node(def, *rel, id)?;
                Ok(SubjectSet::clone(&value))
            }
            Rewrite::TupleToUserset(ttu) => self.eval_arrow(def, id, ttu),
            Rewrite::Nil => Ok(SubjectSet::new()),
            Rewrite::This => {
                let mut res = SubjectSet::new();
                if self.target == (def, None) {
                    res.add_concrete(id.clone(), Tri::True);
                }
                Ok(res)
            }
        }
    }

    fn eval_arrow(
        &mut self,
        def: DefinitionId,
        id: &ObjectId,
        ttu: &'a TupleToUserset,
    ) -> Result<SubjectSet, EngineError> {
        let rows = self.read(def, ttu.tupleset, id)?;
        let res = self.arrow_rows(ttu, &rows);
        self.recycle(rows);
        res
    }

    fn arrow_rows(
        &mut self,
        ttu: &TupleToUserset,
        rows: &[Relationship],
    ) -> Result<SubjectSet, EngineError> {
        let schema = self.schema;
        let mut acc: Option<SubjectSet> = None;
        for row in rows {
            let subject = row.subject();
            let target = if subject.is_wildcard() {
                None
            } else {
                schema
                    .definition_id(subject.object_type())
                    .and_then(|subject_def| Some((subject_def, ttu.target_on(subject_def)?)))
            };
            let Some((target_def, target_rel)) = target else {
                // As in Check: an object without the target relation adds nothing to `.any`
                // and makes `.all` fail.
                if ttu.function == ArrowFunction::All {
                    return Ok(SubjectSet::new());
                }
                continue;
            };
            let cond = self.caveats.eval(row.caveat())?;
            let value = if cond.is_false() {
                SubjectSet::new()
            } else {
                let child = self.node(target_def, target_rel, subject.object_id())?;
                SubjectSet::clone(&child).with_parent(&cond)
            };
            match (&mut acc, ttu.function) {
                (None, _) => acc = Some(value),
                (Some(acc), ArrowFunction::Any) => acc.union_with(&value),
                (Some(acc), ArrowFunction::All) => acc.intersect_with(&value),
            }
            if ttu.function == ArrowFunction::All && acc.as_ref().is_some_and(SubjectSet::is_empty)
            {
                break;
            }
        }
        Ok(acc.unwrap_or_default())
    }
}

/// Runs LookupSubjects; see [`crate::Engine::lookup_subjects`].
#[expect(clippy::too_many_arguments, reason = "mirrors the RPC's fields")]
pub(crate) fn lookup_subjects(
    snapshot: &dyn Snapshot,
    schema: &EngineSchema,
    max_depth: u32,
    resource: &ObjectRef,
    permission: &RelationName,
    subject_type: &ObjectType,
    subject_relation: Option<&RelationName>,
    context: &Map<String, Json>,
) -> Result<Vec<FoundSubject>, EngineError> {
    let (def, rel) = resolve_resource(schema, resource, permission)?;
    let subject_def = schema.require_definition(subject_type)?;
    let subject_rel = subject_relation
        .map(|relation| schema.require_relation(subject_def, relation.as_str()))
        .transpose()?;
    let mut lookup = SubjectLookup::new(
        snapshot,
        schema,
        (subject_def, subject_rel),
        context,
        max_depth,
    );
    let set = lookup.node(def, rel, resource.object_id())?;
    Ok(found_subjects(&set))
}

/// The API form of a set: the wildcard first (`*` sorts before every id), then concrete
/// subjects in id order.
pub(crate) fn found_subjects(set: &SubjectSet) -> Vec<FoundSubject> {
    let resolved = |id: &ObjectId, cond: &Tri| ResolvedSubject {
        subject_object_id: id.clone(),
        permissionship: cond.clone().into(),
    };
    let mut res = Vec::with_capacity(set.concrete.len() + 1);
    if let Some(wildcard) = &set.wildcard {
        res.push(FoundSubject {
            subject: resolved(&ObjectId::wildcard(), &wildcard.cond),
            excluded_subjects: wildcard
                .excluded
                .iter()
                .map(|(id, cond)| resolved(id, cond))
                .collect(),
        });
    }
    res.extend(set.concrete.iter().map(|(id, cond)| FoundSubject {
        subject: resolved(id, cond),
        excluded_subjects: Vec::new(),
    }));
    res
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ostiary_store::{DatastoreExt, RelationshipUpdate};
    use ostiary_store_mem::MemDatastore;
    use ostiary_types::TenantId;

    use crate::{Engine, EngineConfig, EngineSchema, FoundSubject, Permissionship};

    /// Renders results as SpiceDB's answers are written in the steel-thread goldens:
    /// `id`, `id?params` when conditional, `* - {a, b?x}` for a wildcard.
    fn render(results: &[FoundSubject]) -> String {
        let one = |id: &str, permissionship: &Permissionship| match permissionship {
            Permissionship::Conditional { missing_params } => {
                format!("{id}?{}", missing_params.join(","))
            }
            _ => id.to_owned(),
        };
        results
            .iter()
            .map(|found| {
                let mut text = one(
                    found.subject.subject_object_id.as_str(),
                    &found.subject.permissionship,
                );
                if !found.excluded_subjects.is_empty() {
                    let excluded: Vec<String> = found
                        .excluded_subjects
                        .iter()
                        .map(|ex| one(ex.subject_object_id.as_str(), &ex.permissionship))
                        .collect();
                    text.push_str(&format!(" - {{{}}}", excluded.join(", ")));
                }
                text
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// Runs `resource#permission@subject_type[#relation] [with {json}] => expected` cases.
    fn check(schema: &str, relationships: &str, max_depth: u32, cases: &[(&str, &str)]) {
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
        let engine = Engine::new(EngineConfig { max_depth });
        for (text, expected) in cases {
            let (text, context) = match text.split_once(" with ") {
                Some((text, context)) => (text, serde_json::from_str(context).unwrap()),
                None => (*text, serde_json::Map::new()),
            };
            let (resource, rest) = text.split_once('#').unwrap();
            let (permission, subject) = rest.split_once('@').unwrap();
            let (subject_type, subject_relation) = match subject.split_once('#') {
                Some((subject_type, relation)) => (subject_type, Some(relation.parse().unwrap())),
                None => (subject, None),
            };
            let res = engine.lookup_subjects(
                snapshot.as_ref(),
                &schema,
                &resource.parse().unwrap(),
                &permission.parse().unwrap(),
                &subject_type.parse().unwrap(),
                subject_relation.as_ref(),
                &context,
            );
            let actual = match res {
                Ok(results) => render(&results),
                Err(err) => format!("err {err}"),
            };
            assert_eq!(actual, *expected, "{text}");
        }
    }

    /// The schema and data of a probe run against SpiceDB v1.54; the expected answers are
    /// SpiceDB's (merged where SpiceDB's stream repeats an id).
    const SCHEMA: &str = "
        caveat cav(x int) { x > 0 }
        definition user {}
        definition group {
            relation member: user | group#member
        }
        definition doc {
            relation viewer: user | user:* | group#member | user with cav
            relation editor: user | user with cav
            relation banned: user | user with cav | group#member
            permission view = viewer + editor
            permission allowed = viewer - banned
            permission both = viewer & editor
            permission allowed_or_edit = (viewer - banned) + editor
            permission nothing = nil
        }
    ";

    const DATA: &str = "
        doc:1#viewer@user:alice
        doc:1#viewer@group:eng#member
        group:eng#member@user:alice
        group:eng#member@user:bob
        group:eng#member@group:core#member
        group:core#member@user:carol
        doc:2#viewer@user:*
        doc:2#banned@user:mallory
        doc:2#banned@user:cond[cav]
        doc:2#editor@user:ed
        doc:2#editor@user:mallory[cav]
        doc:3#viewer@user:*
        doc:3#viewer@user:alice[cav]
        doc:3#banned@group:eng#member
    ";

    #[test]
    fn concrete_subjects_through_subject_sets() {
        check(
            SCHEMA,
            DATA,
            50,
            &[
                ("doc:1#viewer@user", "alice | bob | carol"),
                ("doc:1#view@user", "alice | bob | carol"),
                ("doc:1#allowed@user", "alice | bob | carol"),
                ("doc:1#both@user", ""),
                ("doc:1#nothing@user", ""),
                ("doc:1#viewer@group#member", "core | eng"),
                ("group:eng#member@group#member", "core | eng"),
                ("doc:9#view@user", ""),
            ],
        );
    }

    #[test]
    fn wildcards_and_exclusions() {
        check(
            SCHEMA,
            DATA,
            50,
            &[
                ("doc:2#viewer@user", "*"),
                ("doc:2#view@user", "* | ed | mallory?x"),
                ("doc:2#allowed@user", "* - {cond?x, mallory}"),
                ("doc:2#both@user", "ed | mallory?x"),
                (
                    "doc:2#allowed_or_edit@user",
                    "* - {cond?x, mallory?x} | ed | mallory?x",
                ),
                ("doc:3#viewer@user", "* | alice?x"),
                ("doc:3#allowed@user", "* - {alice, bob, carol}"),
                ("doc:3#both@user", ""),
                // A wildcard is never a subject set.
                ("doc:2#viewer@group#member", ""),
            ],
        );
    }

    #[test]
    fn caveats_decided_by_the_context() {
        check(
            SCHEMA,
            DATA,
            50,
            &[
                (r#"doc:2#allowed@user with {"x": 1}"#, "* - {cond, mallory}"),
                (r#"doc:2#allowed@user with {"x": 0}"#, "* - {mallory}"),
                (r#"doc:2#view@user with {"x": 0}"#, "* | ed"),
                (r#"doc:3#viewer@user with {"x": 5}"#, "* | alice"),
            ],
        );
    }

    #[test]
    fn arrows_cycles_depth_and_errors() {
        let schema = "
            definition user {}
            definition group {
                relation member: user | group#member
            }
            definition folder {
                relation parent: folder
                relation viewer: user
                permission view = viewer + parent->view
                permission view_all = viewer + parent.all(view)
            }
        ";
        check(
            schema,
            "folder:a#viewer@user:alice
             folder:b#parent@folder:a
             folder:b#viewer@user:bob
             folder:c#parent@folder:b
             folder:d#parent@folder:a
             folder:d#parent@folder:b
             group:x#member@group:y#member
             group:y#member@group:x#member
             group:y#member@user:carol",
            50,
            &[
                ("folder:c#view@user", "alice | bob"),
                ("folder:d#view@user", "alice | bob"),
                ("folder:d#view_all@user", "alice"),
                // The cycle x <-> y: SpiceDB fails after unrolling it to its depth limit.
                (
                    "group:x#member@user",
                    "err max depth exceeded: the relationships form a cycle or nest deeper than 50 dispatches",
                ),
                (
                    "group:x#member@group#member",
                    "err max depth exceeded: the relationships form a cycle or nest deeper than 50 dispatches",
                ),
                (
                    "folder:c#nope@user",
                    "err relation/permission `nope` not found under definition `folder`",
                ),
                (
                    "folder:c#view@nope",
                    "err object definition `nope` not found",
                ),
                (
                    "folder:*#view@user",
                    "err wildcard `folder:*` is not allowed here",
                ),
            ],
        );
        let chain: String = (0..60)
            .map(|idx| format!("group:g{idx}#member@group:g{}#member\n", idx + 1))
            .chain(std::iter::once("group:g60#member@user:alice\n".to_owned()))
            .collect();
        check(
            schema,
            &chain,
            50,
            &[
                ("group:g30#member@user", "alice"),
                (
                    "group:g0#member@user",
                    "err max depth exceeded: the relationships form a cycle or nest deeper than 50 dispatches",
                ),
            ],
        );
    }
}
