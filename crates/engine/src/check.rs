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
//! overflow. A node met again while it is still being evaluated (a cycle) fails that branch
//! with [`EngineError::MaxDepthExceeded`] at once: SpiceDB has no cycle detection and unrolls
//! the cycle until its depth limit, so it fails there too (after 50 dispatches), unless
//! another branch decides the answer. Results that relied on such a cut-off at a shallower
//! node are not memoised, except `True`, which is always sound.
//!
//! An error in one branch of a union is ignored when another branch is a member (and in an
//! intersection when another branch is not; in an exclusion when the base is not): SpiceDB
//! short-circuits in those cases and answers, because the deciding branch finishes long
//! before the failing one has unrolled 50 levels.
//!
//! # Hot path
//!
//! No logging here. Store reads reuse buffers from a pool; the memo is keyed by dense ids and
//! the `Arc`-backed object id.
//! Tracing ([`crate::Engine::check_traced`]) is an optional recorder: an untraced check pays
//! one `None` test per node and per relationship read.

use std::collections::HashMap;

use ostiary_schema::ir::{
    AllowedSubject, ArrowFunction, DefinitionId, RelationId, Rewrite, TupleToUserset,
};
use ostiary_store::Snapshot;
use ostiary_types::{
    ObjectId, ObjectRef, RelationFilter, RelationName, Relationship, SubjectFilter, SubjectRef,
};
use serde_json::{Map, Value as Json};

use crate::caveat::{CaveatEvaluator, Tri};
use crate::rows::RowPool;
use crate::trace::{TraceResult, TraceSource, Tracer};
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
    pub(crate) exact_filter: SubjectFilter,
    /// Matches `type:*` relationships of the subject's type.
    pub(crate) wildcard_filter: SubjectFilter,
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

/// A fact LookupResources already established for the resource it asks about (SpiceDB's check
/// hints): the walk reached the resource through this branch, so Check takes it as a member
/// instead of evaluating it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum CheckHint {
    /// `def:id#rel` is a member.
    Node(DefinitionId, RelationId, ObjectId),
    /// The arrow `tupleset->target` on `def:id` reaches the subject through an object of
    /// `target.0`, whose relation `target.1` is the arrow's target.
    Arrow {
        /// The resource definition.
        def: DefinitionId,
        /// The resource id.
        id: ObjectId,
        /// The arrow's tupleset relation.
        tupleset: RelationId,
        /// The definition and relation the arrow reached.
        target: (DefinitionId, RelationId),
    },
}

/// Evaluates checks for one subject and one request context, sharing a memo between them.
#[derive(Debug)]
pub(crate) struct Checker<'a> {
    snapshot: &'a dyn Snapshot,
    schema: &'a EngineSchema,
    caveats: CaveatEvaluator<'a>,
    max_depth: u32,
    subject: ResolvedSubject,
    /// Memoised values, one map per [`Checker::all_results`] mode (`false`, `true`).
    memo: [HashMap<NodeKey, Tri>; 2],
    /// SpiceDB's `REQUIRE_ALL_RESULTS`: set below intersections, exclusions and `.all()`
    /// arrows, where SpiceDB's unions stop short-circuiting, so an error in any branch (a
    /// cycle) fails the branch even if another branch found the subject.
    all_results: bool,
    /// How many resources SpiceDB would evaluate together with the current node.
    batch: usize,
    /// Nodes being evaluated, with their depth.
    in_progress: HashMap<NodeKey, usize>,
    depth: usize,
    /// Nodes evaluated so far (memo hits excluded).
    dispatches: u64,
    /// A branch known to be a member (set only on a checker used for one hinted check).
    hint: Option<CheckHint>,
    /// The shallowest in-progress depth a cut-off was taken at in the current frame.
    low: usize,
    rows: RowPool,
    /// Records a trace when the caller asked for one ([`Checker::with_tracer`]).
    tracer: Option<Box<Tracer>>,
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
            memo: [HashMap::new(), HashMap::new()],
            all_results: false,
            batch: 1,
            in_progress: HashMap::new(),
            depth: 0,
            dispatches: 0,
            hint: None,
            low: usize::MAX,
            rows: RowPool::default(),
            tracer: None,
        }
    }

    /// Records a trace of what this checker evaluates; take it with
    /// [`Checker::take_trace`].
    pub(crate) fn with_tracer(mut self, tracer: Tracer) -> Self {
        self.tracer = Some(Box::new(tracer));
        self
    }

    /// The recorded trace of the last check, if tracing.
    pub(crate) fn take_trace(&mut self) -> Option<crate::CheckTrace> {
        self.tracer.take().and_then(|tracer| tracer.finish())
    }

    /// Runs `record` on the tracer, if tracing.
    #[inline]
    fn trace(&mut self, record: impl FnOnce(&mut Tracer, &EngineSchema)) {
        if let Some(tracer) = self.tracer.as_deref_mut() {
            record(tracer, self.schema);
        }
    }

    /// Traces a relationship read and its caveat's value, if tracing.
    #[inline]
    fn trace_row(&mut self, row: &Relationship, caveat: &Result<Tri, EngineError>, leads: bool) {
        if let Some(tracer) = self.tracer.as_deref_mut() {
            tracer.relationship(self.schema, row, caveat, leads);
        }
    }

    /// Gives this checker a hint; use a fresh checker for each hinted check, since the hint
    /// also shapes what it memoises.
    pub(crate) fn with_hint(mut self, hint: CheckHint) -> Self {
        self.hint = Some(hint);
        self
    }

    /// Nodes evaluated so far, as SpiceDB counts dispatches (memo hits excluded).
    pub(crate) fn dispatches(&self) -> u64 {
        self.dispatches
    }

    /// The subject this checker answers for.
    pub(crate) fn subject(&self) -> &ResolvedSubject {
        &self.subject
    }

    /// Is the subject a member of `def:id#rel`?
    pub(crate) fn check(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
    ) -> Result<Tri, EngineError> {
        self.check_node(def, rel, id, 1, false)
    }

    /// Evaluates one node, as one of the `batch` resources SpiceDB would dispatch together.
    ///
    /// SpiceDB keeps `REQUIRE_ALL_RESULTS` for a dispatch of several resources (and sets it
    /// for subject sets reached through caveated relationships) but resets it to
    /// `ALLOW_SINGLE_RESULT` for a dispatch of one resource.
    fn check_node(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
        batch: usize,
        caveated: bool,
    ) -> Result<Tri, EngineError> {
        let all_results = (self.all_results || caveated) && batch > 1;
        let saved = (
            std::mem::replace(&mut self.all_results, all_results),
            std::mem::replace(&mut self.batch, batch),
        );
        let res = self.check_node_in_mode(def, rel, id);
        (self.all_results, self.batch) = saved;
        res
    }

    fn check_node_in_mode(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        id: &ObjectId,
    ) -> Result<Tri, EngineError> {
        if self.subject.def == def && self.subject.relation == Some(rel) && self.subject.id == *id {
            self.trace(|tracer, schema| {
                let result = TraceResult::of(&Ok(Tri::True));
                tracer.leaf(schema, (def, rel, id), TraceSource::Subject, result);
            });
            return Ok(Tri::True);
        }
        if let Some(CheckHint::Node(hint_def, hint_rel, hint_id)) = &self.hint
            && (*hint_def, *hint_rel) == (def, rel)
            && hint_id == id
        {
            return Ok(Tri::True);
        }
        let key = (def, rel, id.clone());
        // A value found needing all results holds without that requirement too.
        let memoised = match self.memo[1].get(&key) {
            Some(value) => Some(value.clone()),
            None if !self.all_results => self.memo[0].get(&key).cloned(),
            None => None,
        };
        if let Some(value) = memoised {
            self.trace(|tracer, schema| {
                let result = TraceResult::of(&Ok(value.clone()));
                tracer.leaf(schema, (def, rel, id), TraceSource::Memo, result);
            });
            return Ok(value);
        }
        let cut_off = if let Some(&level) = self.in_progress.get(&key) {
            // SpiceDB has no cycle detection: it re-dispatches around the cycle until the
            // depth limit and fails, unless another branch decides the answer first. Failing
            // here at once gives the same answer without the 50 useless dispatches.
            self.low = self.low.min(level);
            Some(TraceSource::Cycle)
        } else if self.depth >= self.max_depth as usize {
            Some(TraceSource::DepthLimit)
        } else {
            None
        };
        if let Some(source) = cut_off {
            let err = EngineError::MaxDepthExceeded {
                max_depth: self.max_depth,
            };
            self.trace(|tracer, schema| {
                let result = TraceResult::Error(err.to_string());
                tracer.leaf(schema, (def, rel, id), source, result);
            });
            return Err(err);
        }
        self.depth += 1;
        self.dispatches += 1;
        let level = self.depth;
        self.in_progress.insert(key.clone(), level);
        let saved_low = std::mem::replace(&mut self.low, usize::MAX);
        self.trace(|tracer, schema| tracer.enter(schema, (def, rel, id)));
        let res = self.eval_node(def, rel, id);
        self.trace(|tracer, _| tracer.leave(&res));
        self.in_progress.remove(&key);
        self.depth -= 1;
        let frame_low = self.low;
        self.low = saved_low.min(frame_low);
        if let Ok(value) = &res
            && (frame_low >= level || value.is_true())
        {
            self.memo[usize::from(self.all_results)].insert(key, value.clone());
        }
        res
    }

    /// Whether a member found in one branch may end a union early (SpiceDB's
    /// `ALLOW_SINGLE_RESULT`).
    fn short_circuit(&self, acc: &Tri) -> bool {
        !self.all_results && acc.is_true()
    }

    /// A union's value from its accumulated value and its first error: the error wins unless
    /// a member was found and short-circuiting is allowed.
    fn settle(&self, acc: Tri, error: Option<EngineError>) -> Result<Tri, EngineError> {
        match error {
            Some(err) if !self.short_circuit(&acc) => Err(err),
            _ => Ok(acc),
        }
    }

    /// Runs `f` with [`Checker::all_results`] set, as SpiceDB evaluates the children of
    /// intersections and exclusions.
    fn with_all_results<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = std::mem::replace(&mut self.all_results, true);
        let res = f(self);
        self.all_results = saved;
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
        self.rows
            .read(self.snapshot, self.schema, (def, rel, id), filter)
    }

    fn recycle(&mut self, buffer: Vec<Relationship>) {
        self.rows.recycle(buffer);
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
            let caveat = self.caveats.eval(row.caveat());
            self.trace_row(row, &caveat, false);
            match caveat {
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
        // A resource found directly (without caveat) is never dispatched further, in either
        // mode: SpiceDB's `checkDirect` filters it out before following subject sets.
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
            let batch = rows.len();
            let caveated = rows.iter().any(|row| row.caveat().is_some());
            for row in &rows {
                let caveat = self.caveats.eval(row.caveat());
                self.trace_row(row, &caveat, true);
                let value = caveat.and_then(|caveat| {
                    if caveat.is_false() {
                        return Ok(Tri::False);
                    }
                    let child = self.check_node(
                        allowed.definition,
                        subject_rel,
                        row.subject().object_id(),
                        batch,
                        caveated,
                    )?;
                    Ok(caveat.and(child))
                });
                match value {
                    Ok(value) => acc = acc.or(value),
                    Err(err) => {
                        error.get_or_insert(err);
                    }
                }
                if self.short_circuit(&acc) {
                    break;
                }
            }
            self.recycle(rows);
            if self.short_circuit(&acc) {
                return Ok(acc);
            }
        }
        self.settle(acc, error)
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
                            if self.short_circuit(&acc) {
                                return Ok(Tri::True);
                            }
                        }
                        Err(err) => {
                            error.get_or_insert(err);
                        }
                    }
                }
                self.settle(acc, error)
            }
            Rewrite::Intersection(children) => {
                let mut acc = Tri::True;
                let mut error = None;
                for child in children {
                    match self.with_all_results(|this| this.eval_rewrite(def, id, child)) {
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
                let base = self.with_all_results(|this| this.eval_rewrite(def, id, base));
                if matches!(base, Ok(Tri::False)) {
                    return Ok(Tri::False);
                }
                // Only an empty base decides an exclusion early: SpiceDB waits for both sides
                // and fails if either failed.
                let subtracted =
                    self.with_all_results(|this| this.eval_rewrite(def, id, subtracted));
                match (base, subtracted) {
                    (Ok(base), Ok(subtracted)) => Ok(base.and(subtracted.not())),
                    (Err(err), _) | (_, Err(err)) => Err(err),
                }
            }
            Rewrite::ComputedUserset(rel) => {
                self.trace(|tracer, _| tracer.computed());
                self.check_node(def, *rel, id, self.batch, false)
            }
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
        if let Some(CheckHint::Arrow {
            def: hint_def,
            id: hint_id,
            tupleset,
            target,
        }) = &self.hint
            && *hint_def == def
            && *tupleset == ttu.tupleset
            && ttu.function == ArrowFunction::Any
            && ttu.target_on(target.0) == Some(target.1)
            && hint_id == id
        {
            return Ok(Tri::True);
        }
        let rows = self.read(def, ttu.tupleset, id, None)?;
        let res = match ttu.function {
            ArrowFunction::Any => self.arrow_any(ttu, &rows),
            ArrowFunction::All => self.with_all_results(|this| this.arrow_all(ttu, &rows)),
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
            let caveat = self.caveats.eval(row.caveat());
            self.trace_row(row, &caveat, true);
            let value = caveat.and_then(|caveat| {
                if caveat.is_false() {
                    return Ok(Tri::False);
                }
                let child = self.check_node(
                    target_def,
                    target_rel,
                    row.subject().object_id(),
                    rows.len(),
                    false,
                )?;
                Ok(caveat.and(child))
            });
            match value {
                Ok(value) => {
                    acc = acc.or(value);
                    if self.short_circuit(&acc) {
                        return Ok(Tri::True);
                    }
                }
                Err(err) => {
                    error.get_or_insert(err);
                }
            }
        }
        self.settle(acc, error)
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
            let caveat = self.caveats.eval(row.caveat());
            self.trace_row(row, &caveat, true);
            let value = caveat.and_then(|caveat| {
                if caveat.is_false() {
                    return Ok(Tri::False);
                }
                let child = self.check_node(
                    target_def,
                    target_rel,
                    row.subject().object_id(),
                    rows.len(),
                    false,
                )?;
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
                // Found before the cycle matters: SpiceDB short-circuits too.
                ("doc:1#view@user:alice", "has"),
                // Not found: SpiceDB unrolls the cycle to its depth limit and fails.
                ("doc:1#view@user:bob", "err"),
                ("group:a#member@user:bob", "err"),
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
