//! Check: is a subject a member of `resource#relation`? A depth-first walk of the rewrite
//! trees and stored relationships with a per-request memo and cycle cut-off.
//!
//! # Semantics
//!
//! Each (definition, relation, object id) is a *node*; the subject is fixed for a checker.
//! A node's value is three-valued ([`Tri`]): member, not a member, or member subject to
//! caveats that the given context cannot decide. The walk mirrors SpiceDB's `check.go`:
//!
//! * a node equal to the subject (`group:eng#member` checked for subject `group:eng#member`)
//!   is a member;
//! * a relation reads the relationships naming the subject (and `type:*` when the relation
//!   allows the subject type's wildcard, whatever the subject's relation), then follows
//!   subject sets (`group:x#member`) by evaluating those nodes;
//! * a permission evaluates its rewrite: unions, intersections and exclusions in Kleene logic,
//!   arrows (`->`/`.any`: some object reached; `.all`: every object reached, none reached is
//!   no), `nil`, `self`;
//! * a relationship's caveat is evaluated as soon as it is read and ANDed with what it leads
//!   to.
//!
//! # Recursion and cycles
//!
//! Every node evaluated is one dispatch in SpiceDB's terms and counts against the depth limit
//! ([`EngineError::MaxDepthExceeded`]); the recursion depth is bounded by it, so no stack
//! overflow. A node met again while it is still being evaluated (a cycle) counts as "not a
//! member" on that path: for the monotone operators (everything except the subtracted side of
//! an exclusion) this computes the least fixpoint, i.e. exactly the derivations SpiceDB finds
//! by unrolling, without looping. Results that relied on such a cut-off at a shallower node
//! are not memoised (they may be incomplete there), except `True`, which is always sound.
//!
//! An error in one branch of a union is ignored when another branch is a member (and in an
//! intersection when another branch is not): SpiceDB answers in those cases too, whichever
//! branch finishes first.
//!
//! # Hot path
//!
//! No logging here. Store reads reuse buffers from a pool; the memo is keyed by dense ids and
//! the `Arc`-backed object id.

use std::collections::HashMap;

use ostiary_schema::ir::{
    AllowedSubject, ArrowFunction, DefinitionId, RelationId, Rewrite, TupleToUserset,
};
use ostiary_store::{Page, ResourceQuery, Snapshot};
use ostiary_types::{
    ObjectId, ObjectRef, RelationFilter, RelationName, Relationship, SubjectFilter, SubjectRef,
};
use serde_json::{Map, Value as Json};

use crate::caveat::{CaveatEvaluator, Tri};
use crate::{EngineError, EngineSchema};

/// A memo key: definition, relation, object id.
type NodeKey = (DefinitionId, RelationId, ObjectId);

/// The subject of a check, resolved against the schema.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedSubject {
    pub(crate) def: DefinitionId,
    pub(crate) id: ObjectId,
    pub(crate) relation: Option<RelationId>,
    /// Matches relationships naming exactly this subject.
    exact_filter: SubjectFilter,
    /// Matches `type:*` relationships of the subject's type.
    wildcard_filter: SubjectFilter,
}

impl ResolvedSubject {
    /// Resolves `subject`, rejecting unknown types and relations and the wildcard.
    pub(crate) fn resolve(
        schema: &EngineSchema,
        subject: &SubjectRef,
    ) -> Result<Self, EngineError> {
        if subject.is_wildcard() {
            return Err(EngineError::WildcardNotAllowed(subject.to_string()));
        }
        let def = schema.require_definition(subject.object_type())?;
        let relation = subject
            .relation()
            .map(|relation| schema.require_relation(def, relation.as_str()))
            .transpose()?;
        Ok(Self {
            def,
            id: subject.object_id().clone(),
            relation,
            exact_filter: SubjectFilter {
                subject_type: subject.object_type().clone(),
                optional_subject_id: Some(subject.object_id().clone()),
                optional_relation: Some(RelationFilter {
                    relation: subject.relation().cloned(),
                }),
            },
            wildcard_filter: SubjectFilter {
                subject_type: subject.object_type().clone(),
                optional_subject_id: Some(ObjectId::wildcard()),
                optional_relation: Some(RelationFilter { relation: None }),
            },
        })
    }
}

/// Resolves `resource#permission` to ids, rejecting unknown names and wildcards.
pub(crate) fn resolve_resource(
    schema: &EngineSchema,
    resource: &ObjectRef,
    permission: &RelationName,
) -> Result<(DefinitionId, RelationId), EngineError> {
    if resource.is_wildcard() {
        return Err(EngineError::WildcardNotAllowed(resource.to_string()));
    }
    let def = schema.require_definition(resource.object_type())?;
    let rel = schema.require_relation(def, permission.as_str())?;
    Ok((def, rel))
}

/// Evaluates checks for one subject and one request context, sharing a memo between them.
#[derive(Debug)]
pub(crate) struct Checker<'a> {
    snapshot: &'a dyn Snapshot,
    schema: &'a EngineSchema,
    caveats: CaveatEvaluator<'a>,
    max_depth: u32,
    subject: ResolvedSubject,
    memo: HashMap<NodeKey, Tri>,
    /// Nodes being evaluated, with their depth.
    in_progress: HashMap<NodeKey, usize>,
    depth: usize,
    /// The shallowest in-progress depth a cut-off was taken at in the current frame.
    low: usize,
    buffers: Vec<Vec<Relationship>>,
}

impl<'a> Checker<'a> {
    /// A checker for `subject` (already resolved) with request `context`.
    pub(crate) fn new(
        snapshot: &'a dyn Snapshot,
        schema: &'a EngineSchema,
        subject: ResolvedSubject,
        context: &'a Map<String, Json>,
        max_depth: u32,
    ) -> Self {
        Self {
            snapshot,
            schema,
            caveats: CaveatEvaluator::new(schema.compiled(), context),
            max_depth,
            subject,
            memo: HashMap::new(),
            in_progress: HashMap::new(),
            depth: 0,
            low: usize::MAX,
            buffers: Vec::new(),
        }
    }

    /// Is the subject a member of `def:id#rel`?
    pub(crate) fn check(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
    ) -> Result<Tri, EngineError> {
        self.check_node(def, rel, id)
    }

    fn check_node(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
    ) -> Result<Tri, EngineError> {
        if self.subject.def == def && self.subject.relation == Some(rel) && self.subject.id == *id {
            return Ok(Tri::True);
        }
        let key = (def, rel, id.clone());
        if let Some(value) = self.memo.get(&key) {
            return Ok(value.clone());
        }
        if let Some(&level) = self.in_progress.get(&key) {
            self.low = self.low.min(level);
            return Ok(Tri::False);
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
        let res = self.eval_node(def, rel, id);
        self.in_progress.remove(&key);
        self.depth -= 1;
        let frame_low = self.low;
        self.low = saved_low.min(frame_low);
        if let Ok(value) = &res
            && (frame_low >= level || value.is_true())
        {
            self.memo.insert(key, value.clone());
        }
        res
    }

    fn eval_node(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
    ) -> Result<Tri, EngineError> {
        let schema = self.schema;
        match schema.compiled().relation(def, rel).rewrite() {
            None => self.eval_direct(def, rel, id),
            Some(rewrite) => self.eval_rewrite(def, id, rewrite),
        }
    }

    /// Reads `def:id#rel` relationships matching `filter` into a pooled buffer.
    fn read(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
        filter: Option<&SubjectFilter>,
    ) -> Result<Vec<Relationship>, EngineError> {
        let mut buffer = self.buffers.pop().unwrap_or_default();
        let schema = self.schema;
        let query = ResourceQuery {
            resource_type: schema.object_type(def),
            resource_ids: std::slice::from_ref(id),
            relation: Some(schema.relation_name(def, rel)),
            subject: filter,
        };
        self.snapshot
            .read_resources(&query, Page::ALL, &mut buffer)?;
        Ok(buffer)
    }

    fn recycle(&mut self, mut buffer: Vec<Relationship>) {
        buffer.clear();
        self.buffers.push(buffer);
    }

    /// ORs the caveats of the rows (the rows name the subject or its wildcard).
    fn direct_rows(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
        wildcard: bool,
    ) -> Result<Tri, EngineError> {
        let filter = if wildcard {
            self.subject.wildcard_filter.clone()
        } else {
            self.subject.exact_filter.clone()
        };
        let rows = self.read(def, rel, id, Some(&filter))?;
        let mut acc = Tri::False;
        let mut res = Ok(());
        for row in &rows {
            match self.caveats.eval(row.caveat()) {
                Ok(value) => acc = acc.or(value),
                Err(err) => {
                    res = Err(err);
                    break;
                }
            }
            if acc.is_true() {
                break;
            }
        }
        self.recycle(rows);
        res.map(|()| acc)
    }

    fn eval_direct(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
    ) -> Result<Tri, EngineError> {
        let schema = self.schema;
        let allowed_types = schema.compiled().relation(def, rel).allowed_types();
        let mut has_direct = false;
        let mut has_wildcard = false;
        for allowed in allowed_types {
            if allowed.definition != self.subject.def {
                continue;
            }
            match allowed.subject {
                AllowedSubject::Wildcard => has_wildcard = true,
                AllowedSubject::Ellipsis => has_direct |= self.subject.relation.is_none(),
                AllowedSubject::Relation(subject_rel) => {
                    has_direct |= self.subject.relation == Some(subject_rel);
                }
            }
        }
        let mut acc = Tri::False;
        if has_direct {
            acc = acc.or(self.direct_rows(def, rel, id, false)?);
            if acc.is_true() {
                return Ok(acc);
            }
        }
        if has_wildcard {
            acc = acc.or(self.direct_rows(def, rel, id, true)?);
            if acc.is_true() {
                return Ok(acc);
            }
        }
        // Subject sets: follow `group:x#member` relationships.
        let mut error = None;
        let mut seen: Vec<(DefinitionId, RelationId)> = Vec::new();
        for allowed in allowed_types {
            let AllowedSubject::Relation(subject_rel) = allowed.subject else {
                continue;
            };
            if seen.contains(&(allowed.definition, subject_rel)) {
                continue;
            }
            seen.push((allowed.definition, subject_rel));
            let filter = SubjectFilter {
                subject_type: schema.object_type(allowed.definition).clone(),
                optional_subject_id: None,
                optional_relation: Some(RelationFilter {
                    relation: Some(
                        schema
                            .relation_name(allowed.definition, subject_rel)
                            .clone(),
                    ),
                }),
            };
            let rows = self.read(def, rel, id, Some(&filter))?;
            for row in &rows {
                let value = self.caveats.eval(row.caveat()).and_then(|caveat| {
                    if caveat.is_false() {
                        return Ok(Tri::False);
                    }
                    let child = self.check_node(
                        allowed.definition,
                        subject_rel,
                        row.subject().object_id(),
                    )?;
                    Ok(caveat.and(child))
                });
                match value {
                    Ok(value) => acc = acc.or(value),
                    Err(err) => {
                        error.get_or_insert(err);
                    }
                }
                if acc.is_true() {
                    break;
                }
            }
            self.recycle(rows);
            if acc.is_true() {
                return Ok(acc);
            }
        }
        match error {
            Some(err) => Err(err),
            None => Ok(acc),
        }
    }

    fn eval_rewrite(
        &mut self,
        def: DefinitionId,
        id: &ObjectId,
        rewrite: &'a Rewrite,
    ) -> Result<Tri, EngineError> {
        match rewrite {
            Rewrite::Union(children) => {
                let mut acc = Tri::False;
                let mut error = None;
                for child in children {
                    match self.eval_rewrite(def, id, child) {
                        Ok(value) => {
                            acc = acc.or(value);
                            if acc.is_true() {
                                return Ok(Tri::True);
                            }
                        }
                        Err(err) => {
                            error.get_or_insert(err);
                        }
                    }
                }
                error.map_or(Ok(acc), Err)
            }
            Rewrite::Intersection(children) => {
                let mut acc = Tri::True;
                let mut error = None;
                for child in children {
                    match self.eval_rewrite(def, id, child) {
                        Ok(value) => {
                            acc = acc.and(value);
                            if acc.is_false() {
                                return Ok(Tri::False);
                            }
                        }
                        Err(err) => {
                            error.get_or_insert(err);
                        }
                    }
                }
                error.map_or(Ok(acc), Err)
            }
            Rewrite::Exclusion(base, subtracted) => {
                let base = self.eval_rewrite(def, id, base);
                if matches!(base, Ok(Tri::False)) {
                    return Ok(Tri::False);
                }
                let subtracted = self.eval_rewrite(def, id, subtracted);
                match (base, subtracted) {
                    (_, Ok(Tri::True)) => Ok(Tri::False),
                    (Ok(base), Ok(subtracted)) => Ok(base.and(subtracted.not())),
                    (Err(err), _) | (_, Err(err)) => Err(err),
                }
            }
            Rewrite::ComputedUserset(rel) => self.check_node(def, *rel, id),
            Rewrite::TupleToUserset(ttu) => self.eval_arrow(def, id, ttu),
            Rewrite::Nil => Ok(Tri::False),
            Rewrite::This => Ok(
                if self.subject.def == def
                    && self.subject.relation.is_none()
                    && self.subject.id == *id
                {
                    Tri::True
                } else {
                    Tri::False
                },
            ),
        }
    }

    fn eval_arrow(
        &mut self,
        def: DefinitionId,
        id: &ObjectId,
        ttu: &'a TupleToUserset,
    ) -> Result<Tri, EngineError> {
        let rows = self.read(def, ttu.tupleset, id, None)?;
        let res = match ttu.function {
            ArrowFunction::Any => self.arrow_any(ttu, &rows),
            ArrowFunction::All => self.arrow_all(ttu, &rows),
        };
        self.recycle(rows);
        res
    }

    /// The definition a row's subject object belongs to and the arrow's target there.
    fn arrow_target(
        &self,
        ttu: &TupleToUserset,
        row: &Relationship,
    ) -> Option<(DefinitionId, RelationId)> {
        if row.subject().is_wildcard() {
            return None;
        }
        let subject_def = self.schema.definition_id(row.subject().object_type())?;
        Some((subject_def, ttu.target_on(subject_def)?))
    }

    fn arrow_any(
        &mut self,
        ttu: &TupleToUserset,
        rows: &[Relationship],
    ) -> Result<Tri, EngineError> {
        let mut acc = Tri::False;
        let mut error = None;
        for row in rows {
            let Some((target_def, target_rel)) = self.arrow_target(ttu, row) else {
                continue;
            };
            let value = self.caveats.eval(row.caveat()).and_then(|caveat| {
                if caveat.is_false() {
                    return Ok(Tri::False);
                }
                let child = self.check_node(target_def, target_rel, row.subject().object_id())?;
                Ok(caveat.and(child))
            });
            match value {
                Ok(value) => {
                    acc = acc.or(value);
                    if acc.is_true() {
                        return Ok(Tri::True);
                    }
                }
                Err(err) => {
                    error.get_or_insert(err);
                }
            }
        }
        error.map_or(Ok(acc), Err)
    }

    fn arrow_all(
        &mut self,
        ttu: &TupleToUserset,
        rows: &[Relationship],
    ) -> Result<Tri, EngineError> {
        if rows.is_empty() {
            return Ok(Tri::False);
        }
        let mut acc = Tri::True;
        let mut error = None;
        for row in rows {
            // An object without the target relation can never grant it: SpiceDB finds no
            // result for it and the intersection fails.
            let Some((target_def, target_rel)) = self.arrow_target(ttu, row) else {
                return Ok(Tri::False);
            };
            let value = self.caveats.eval(row.caveat()).and_then(|caveat| {
                if caveat.is_false() {
                    return Ok(Tri::False);
                }
                let child = self.check_node(target_def, target_rel, row.subject().object_id())?;
                Ok(caveat.and(child))
            });
            match value {
                Ok(value) => {
                    acc = acc.and(value);
                    if acc.is_false() {
                        return Ok(Tri::False);
                    }
                }
                Err(err) => {
                    error.get_or_insert(err);
                }
            }
        }
        error.map_or(Ok(acc), Err)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ostiary_store::{DatastoreExt, RelationshipUpdate};
    use ostiary_store_mem::MemDatastore;
    use ostiary_types::{RelationshipKey, TenantId};

    use crate::{Engine, EngineConfig, EngineSchema, Permissionship};

    /// Runs each `check text => expected` line against the schema and relationships.
    /// Expected: `has`, `no`, `cond(a,b)` or `err`.
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
            let key: RelationshipKey = text.parse().unwrap();
            let res = engine.check(
                snapshot.as_ref(),
                &schema,
                key.resource(),
                key.relation(),
                key.subject(),
                &context,
            );
            let actual = match res {
                Ok(res) => match res.permissionship {
                    Permissionship::Has => "has".to_owned(),
                    Permissionship::No => "no".to_owned(),
                    Permissionship::Conditional { missing_params } => {
                        format!("cond({})", missing_params.join(","))
                    }
                },
                Err(err) => format!("err {err}"),
            };
            let ok = if *expected == "err" {
                actual.starts_with("err")
            } else {
                actual == *expected
            };
            assert!(ok, "{text}: expected {expected}, got {actual}");
        }
    }

    const GROUPS: &str = "
        definition user {}
        definition group {
            relation member: user | group#member
        }
        definition doc {
            relation viewer: user | user:* | group#member
            relation editor: user
            relation banned: user | group#member
            relation parent: folder
            permission edit = editor
            permission view = viewer + edit
            permission both = viewer & editor
            permission allowed = view - banned
            permission nothing = nil
            permission via_parent = parent->view
            permission all_parents = parent.all(view)
        }
        definition folder {
            relation viewer: user
            permission view = viewer
        }
    ";

    #[test]
    fn relations_and_subject_sets() {
        check(
            GROUPS,
            "doc:1#viewer@user:alice
             doc:1#viewer@group:eng#member
             group:eng#member@group:core#member
             group:core#member@user:carol",
            50,
            &[
                ("doc:1#viewer@user:alice", "has"),
                ("doc:1#viewer@user:bob", "no"),
                ("doc:1#viewer@user:carol", "has"),
                ("doc:1#viewer@group:eng#member", "has"),
                ("doc:1#viewer@group:core#member", "has"),
                ("doc:1#viewer@group:other#member", "no"),
                ("group:eng#member@group:eng#member", "has"),
                ("doc:2#viewer@user:alice", "no"),
            ],
        );
    }

    #[test]
    fn union_intersection_exclusion_nil() {
        check(
            GROUPS,
            "doc:1#viewer@user:alice
             doc:1#editor@user:bob
             doc:1#editor@user:alice
             doc:1#viewer@group:eng#member
             group:eng#member@user:dan
             group:eng#member@user:erin
             doc:1#banned@user:erin",
            50,
            &[
                ("doc:1#view@user:bob", "has"),
                ("doc:1#view@user:alice", "has"),
                ("doc:1#view@user:zed", "no"),
                ("doc:1#both@user:alice", "has"),
                ("doc:1#both@user:bob", "no"),
                ("doc:1#allowed@user:dan", "has"),
                ("doc:1#allowed@user:erin", "no"),
                ("doc:1#nothing@user:alice", "no"),
            ],
        );
    }

    #[test]
    fn wildcards_and_exclusions() {
        check(
            GROUPS,
            "doc:1#viewer@user:*
             doc:1#banned@user:mallory",
            50,
            &[
                ("doc:1#view@user:anyone", "has"),
                ("doc:1#allowed@user:anyone", "has"),
                ("doc:1#allowed@user:mallory", "no"),
                ("doc:2#view@user:anyone", "no"),
                // A wildcard is not a subject set.
                ("doc:1#view@group:eng#member", "no"),
                ("doc:1#view@user:*", "err"),
            ],
        );
    }

    #[test]
    fn arrows_any_and_all() {
        check(
            GROUPS,
            "doc:1#parent@folder:a
             doc:1#parent@folder:b
             folder:a#viewer@user:alice
             folder:b#viewer@user:alice
             folder:b#viewer@user:bob
             doc:2#parent@folder:a",
            50,
            &[
                ("doc:1#via_parent@user:alice", "has"),
                ("doc:1#via_parent@user:bob", "has"),
                ("doc:1#via_parent@user:carol", "no"),
                ("doc:1#all_parents@user:alice", "has"),
                ("doc:1#all_parents@user:bob", "no"),
                ("doc:2#all_parents@user:alice", "has"),
                ("doc:3#all_parents@user:alice", "no"),
            ],
        );
    }

    #[test]
    fn cycles_terminate_and_depth_is_limited() {
        check(
            GROUPS,
            "group:a#member@group:b#member
             group:b#member@group:a#member
             group:b#member@user:alice
             doc:1#viewer@group:a#member",
            50,
            &[
                ("doc:1#view@user:alice", "has"),
                ("doc:1#view@user:bob", "no"),
                ("group:a#member@user:bob", "no"),
            ],
        );
        let chain: String = (0..60)
            .map(|idx| format!("group:g{idx}#member@group:g{}#member\n", idx + 1))
            .chain(std::iter::once("group:g60#member@user:alice\n".to_owned()))
            .collect();
        check(
            GROUPS,
            &chain,
            50,
            &[
                ("group:g30#member@user:alice", "has"),
                ("group:g0#member@user:alice", "err"),
                ("group:g0#member@user:bob", "err"),
            ],
        );
        check(
            GROUPS,
            &chain,
            100,
            &[("group:g0#member@user:alice", "has")],
        );
    }

    #[test]
    fn caveats_and_conditional_algebra() {
        let schema = "
            caveat over(limit int, used int) { used < limit }
            definition user {}
            definition doc {
                relation viewer: user with over | user
                relation editor: user with over
                relation banned: user with over
                permission both = viewer & editor
                permission allowed = viewer - banned
            }
        ";
        check(
            schema,
            r#"doc:1#viewer@user:alice[over:{"limit":10}]
               doc:1#editor@user:alice[over:{"limit":5}]
               doc:1#viewer@user:bob
               doc:1#banned@user:bob[over:{"limit":3}]"#,
            50,
            &[
                ("doc:1#viewer@user:alice", "cond(used)"),
                (r#"doc:1#viewer@user:alice with {"used": 3}"#, "has"),
                (r#"doc:1#viewer@user:alice with {"used": 30}"#, "no"),
                // The stored limit wins over the request's.
                (
                    r#"doc:1#viewer@user:alice with {"used": 30, "limit": 100}"#,
                    "no",
                ),
                (r#"doc:1#both@user:alice with {"used": 7}"#, "no"),
                (r#"doc:1#both@user:alice with {"used": 1}"#, "has"),
                ("doc:1#both@user:alice", "cond(used)"),
                ("doc:1#allowed@user:bob", "cond(used)"),
                (r#"doc:1#allowed@user:bob with {"used": 1}"#, "no"),
                (r#"doc:1#allowed@user:bob with {"used": 5}"#, "has"),
                (r#"doc:1#viewer@user:alice with {"used": "many"}"#, "err"),
            ],
        );
    }

    #[test]
    fn self_keyword() {
        check(
            "use self
             definition user {
                relation related: user
                permission me_or_related = related + self
             }",
            "user:bob#related@user:alice",
            50,
            &[
                ("user:bob#me_or_related@user:bob", "has"),
                ("user:alice#me_or_related@user:alice", "has"),
                ("user:bob#me_or_related@user:alice", "has"),
                ("user:alice#me_or_related@user:bob", "no"),
            ],
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        check(
            GROUPS,
            "",
            50,
            &[
                ("nope:1#view@user:alice", "err"),
                ("doc:1#nope@user:alice", "err"),
                ("doc:1#view@nope:alice", "err"),
                ("doc:1#view@group:eng#nope", "err"),
            ],
        );
    }

    #[test]
    fn expired_relationships_are_absent() {
        check(
            "use expiration
             definition user {}
             definition doc {
                relation viewer: user with expiration
             }",
            "doc:1#viewer@user:old[expiration:2020-01-01T00:00:00Z]
             doc:1#viewer@user:new[expiration:2300-01-01T00:00:00Z]",
            50,
            &[
                ("doc:1#viewer@user:old", "no"),
                ("doc:1#viewer@user:new", "has"),
            ],
        );
    }
}
