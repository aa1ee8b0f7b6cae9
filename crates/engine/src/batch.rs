//! SpiceDB's batched Check dispatch, replayed to tell whether it fails on a cycle.
//!
//! LookupResources checks the candidates it reaches through one conditional entrypoint (under
//! an intersection, an exclusion or an `.all()` arrow) in one Check dispatch of all of them.
//! SpiceDB evaluates such a dispatch over the *set* of resources: an intersection only stops
//! when it is empty for every resource of the set, an exclusion subtracts from the whole set,
//! and the sub-problems of all resources are dispatched together. So the sub-problems of one
//! candidate keep those of another alive, and a cycle that Check of each candidate alone never
//! enters (its own intersection is empty first) makes the whole dispatch fail with max depth,
//! and LookupResources with it.
//!
//! [`batch_fails`] replays that set evaluation with the same deterministic choices as
//! [`crate::check`] (an empty intersection and a member found while short-circuiting is
//! allowed win over a failing branch). It only computes membership, counting caveated
//! relationships as members the way SpiceDB's dispatch does (caveats are evaluated once, at
//! the end); the verdicts LookupResources returns still come from Check. A replay that grows
//! past a budget is abandoned and predicts nothing.

use std::collections::{BTreeMap, HashMap, HashSet};

use ostiary_schema::ir::{AllowedSubject, ArrowFunction, DefinitionId, RelationId, Rewrite};
use ostiary_store::{Page, ResourceQuery, Snapshot};
use ostiary_types::{ObjectId, RelationFilter, Relationship, SubjectFilter};

use crate::check::{CheckHint, ResolvedSubject};
use crate::{EngineError, EngineSchema};

/// SpiceDB's `dispatchChunkSize`: the most resources one dispatch carries.
const CHUNK: usize = 100;

/// Dispatches a replay may make before it gives up (it has no memo, as SpiceDB has none).
const BUDGET: u64 = 20_000;

/// Members found, each with whether it is determined (no caveat on the way).
type Members = BTreeMap<ObjectId, bool>;

/// Members found among the subjects dispatched, per (definition, relation) dispatched to.
type Reached = HashMap<(DefinitionId, RelationId), Members>;

/// Why a replay stopped without an answer.
enum Stop {
    /// SpiceDB would fail the dispatch (a cycle or the depth limit).
    Fails,
    /// The replay went over its budget.
    Budget,
    /// The store failed.
    Store(EngineError),
}

impl From<EngineError> for Stop {
    fn from(err: EngineError) -> Self {
        Self::Store(err)
    }
}

/// Whether the schema lets a Check of `start` come back to a relation it is evaluating (a
/// permission, arrow or subject set that leads to itself). Without that, no data can make a
/// dispatch go round a cycle, and [`batch_fails`] need not run.
pub(crate) fn may_recurse(schema: &EngineSchema, start: (DefinitionId, RelationId)) -> bool {
    fn next(
        schema: &EngineSchema,
        (def, rel): (DefinitionId, RelationId),
    ) -> Vec<(DefinitionId, RelationId)> {
        fn walk(def: DefinitionId, rewrite: &Rewrite, out: &mut Vec<(DefinitionId, RelationId)>) {
            match rewrite {
                Rewrite::Union(children) | Rewrite::Intersection(children) => {
                    children.iter().for_each(|child| walk(def, child, out));
                }
                Rewrite::Exclusion(base, subtracted) => {
                    walk(def, base, out);
                    walk(def, subtracted, out);
                }
                Rewrite::ComputedUserset(rel) => out.push((def, *rel)),
                Rewrite::TupleToUserset(ttu) => out.extend(ttu.targets.iter().copied()),
                Rewrite::Nil | Rewrite::This => {}
            }
        }
        let relation = schema.compiled().relation(def, rel);
        let mut out = Vec::new();
        match relation.rewrite() {
            Some(rewrite) => walk(def, rewrite, &mut out),
            None => out.extend(relation.allowed_types().iter().filter_map(|allowed| {
                match allowed.subject {
                    AllowedSubject::Relation(subject_rel) => {
                        Some((allowed.definition, subject_rel))
                    }
                    AllowedSubject::Ellipsis | AllowedSubject::Wildcard => None,
                }
            })),
        }
        out
    }
    // Depth-first search for a back edge: `open` holds the current path.
    let mut open: HashSet<(DefinitionId, RelationId)> = HashSet::new();
    let mut seen: HashSet<(DefinitionId, RelationId)> = HashSet::new();
    let mut stack = vec![(start, next(schema, start), 0_usize)];
    open.insert(start);
    while let Some((node, children, index)) = stack.last_mut() {
        let Some(&child) = children.get(*index) else {
            open.remove(node);
            seen.insert(*node);
            stack.pop();
            continue;
        };
        *index += 1;
        if open.contains(&child) {
            return true;
        }
        if seen.insert(child) {
            open.insert(child);
            let grandchildren = next(schema, child);
            stack.push((child, grandchildren, 0));
        }
    }
    false
}

/// Whether SpiceDB's Check of `resource_ids` (of `target`) in one dispatch, with the given
/// hints, fails with max depth for `subject`.
pub(crate) fn batch_fails(
    snapshot: &dyn Snapshot,
    schema: &EngineSchema,
    subject: &ResolvedSubject,
    target: (DefinitionId, RelationId),
    resource_ids: &[ObjectId],
    hints: &[CheckHint],
    max_depth: u32,
) -> Result<bool, EngineError> {
    let mut replay = Replay {
        snapshot,
        schema,
        subject,
        hints,
        max_depth,
        depth: 0,
        dispatches: 0,
        in_progress: HashSet::new(),
    };
    let mut failed = false;
    for chunk in resource_ids.chunks(CHUNK) {
        match replay.dispatch(target.0, target.1, chunk.to_vec(), chunk.len() > 1) {
            Ok(_) => {}
            Err(Stop::Fails) => failed = true,
            Err(Stop::Budget) => return Ok(false),
            Err(Stop::Store(err)) => return Err(err),
        }
        if failed {
            break;
        }
    }
    Ok(failed)
}

struct Replay<'a> {
    snapshot: &'a dyn Snapshot,
    schema: &'a EngineSchema,
    subject: &'a ResolvedSubject,
    hints: &'a [CheckHint],
    max_depth: u32,
    depth: u32,
    dispatches: u64,
    /// Dispatches under way: SpiceDB would repeat one of these until its depth limit.
    in_progress: HashSet<(DefinitionId, RelationId, Vec<ObjectId>, bool)>,
}

impl Replay<'_> {
    /// One dispatch of `def#rel` for `ids`; `require_all` is SpiceDB's `REQUIRE_ALL_RESULTS`.
    fn dispatch(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        mut ids: Vec<ObjectId>,
        require_all: bool,
    ) -> Result<Members, Stop> {
        ids.sort();
        ids.dedup();
        let mut members = Members::new();
        if self.subject.def == def
            && self.subject.relation == Some(rel)
            && let Some(pos) = ids.iter().position(|id| *id == self.subject.id)
        {
            members.insert(ids.remove(pos), true);
            if !require_all {
                return Ok(members);
            }
        }
        ids.retain(|id| {
            let hinted = self
                .hints
                .iter()
                .any(|hint| matches!(hint, CheckHint::Node(d, r, i) if (*d, *r) == (def, rel) && i == id));
            if hinted {
                members.insert(id.clone(), true);
            }
            !hinted
        });
        if ids.is_empty() {
            return Ok(members);
        }
        // One resource left: SpiceDB allows a single result again.
        let require_all = require_all && ids.len() > 1;
        let key = (def, rel, ids.clone(), require_all);
        if self.in_progress.contains(&key) || self.depth >= self.max_depth {
            return Err(Stop::Fails);
        }
        self.dispatches += 1;
        if self.dispatches > BUDGET {
            return Err(Stop::Budget);
        }
        self.in_progress.insert(key.clone());
        self.depth += 1;
        let schema = self.schema;
        let res = match schema.compiled().relation(def, rel).rewrite() {
            None => self.direct(def, rel, &ids, require_all),
            Some(rewrite) => self.rewrite(def, &ids, rewrite, require_all),
        };
        self.depth -= 1;
        self.in_progress.remove(&key);
        merge(&mut members, res?);
        Ok(members)
    }

    fn read(
        &self,
        def: DefinitionId,
        rel: RelationId,
        ids: &[ObjectId],
        filter: Option<&SubjectFilter>,
    ) -> Result<Vec<Relationship>, Stop> {
        let mut rows = Vec::new();
        if ids.is_empty() {
            return Ok(rows);
        }
        let query = ResourceQuery {
            resource_type: self.schema.object_type(def),
            resource_ids: ids,
            relation: Some(self.schema.relation_name(def, rel)),
            subject: filter,
        };
        self.snapshot
            .read_resources(&query, Page::ALL, &mut rows)
            .map_err(EngineError::from)?;
        Ok(rows)
    }

    fn direct(
        &mut self,
        def: DefinitionId,
        rel: RelationId,
        ids: &[ObjectId],
        require_all: bool,
    ) -> Result<Members, Stop> {
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
        let mut members = Members::new();
        let filters = [
            has_direct.then(|| self.subject.exact_filter.clone()),
            has_wildcard.then(|| self.subject.wildcard_filter.clone()),
        ];
        for filter in filters.iter().flatten() {
            for row in self.read(def, rel, ids, Some(filter))? {
                add(
                    &mut members,
                    row.resource().object_id(),
                    row.caveat().is_none(),
                );
            }
        }
        if !require_all && members.values().any(|determined| *determined) {
            return Ok(members);
        }
        let remaining: Vec<ObjectId> = ids
            .iter()
            .filter(|id| members.get(*id) != Some(&true))
            .cloned()
            .collect();
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
            let rows = self.read(def, rel, &remaining, Some(&filter))?;
            let caveated = rows.iter().any(|row| row.caveat().is_some());
            let found = self.follow(
                &rows,
                |_| Some((allowed.definition, subject_rel)),
                require_all || caveated,
            );
            match found {
                Ok(found) => merge(&mut members, found),
                Err(Stop::Fails) => {
                    error.get_or_insert(Stop::Fails);
                }
                Err(stop) => return Err(stop),
            }
            if !require_all && members.values().any(|determined| *determined) {
                return Ok(members);
            }
        }
        settle(members, error, require_all)
    }

    /// Dispatches the subjects of `rows` (to the relation `target` gives for each) in chunks,
    /// a union over the chunks: the members found, per target.
    fn dispatch_subjects(
        &mut self,
        rows: &[Relationship],
        target: &impl Fn(&Relationship) -> Option<(DefinitionId, RelationId)>,
        require_all: bool,
    ) -> Result<Reached, Stop> {
        let mut by_target: BTreeMap<(DefinitionId, RelationId), Vec<ObjectId>> = BTreeMap::new();
        for row in rows {
            if row.subject().is_wildcard() {
                continue;
            }
            if let Some(to) = target(row) {
                by_target
                    .entry(to)
                    .or_default()
                    .push(row.subject().object_id().clone());
            }
        }
        let mut reached = Reached::new();
        let mut error = None;
        let mut determined_found = false;
        'targets: for ((def, rel), mut subject_ids) in by_target {
            subject_ids.sort();
            subject_ids.dedup();
            for chunk in subject_ids.chunks(CHUNK) {
                match self.dispatch(def, rel, chunk.to_vec(), require_all) {
                    Ok(found) => {
                        determined_found |= found.values().any(|determined| *determined);
                        merge(reached.entry((def, rel)).or_default(), found);
                    }
                    Err(Stop::Fails) => {
                        error.get_or_insert(Stop::Fails);
                    }
                    Err(stop) => return Err(stop),
                }
                if !require_all && determined_found {
                    break 'targets;
                }
            }
        }
        match error {
            Some(stop) if require_all || !determined_found => Err(stop),
            _ => Ok(reached),
        }
    }

    /// [`Replay::dispatch_subjects`], with the members mapped back to the rows' resources.
    fn follow(
        &mut self,
        rows: &[Relationship],
        target: impl Fn(&Relationship) -> Option<(DefinitionId, RelationId)>,
        require_all: bool,
    ) -> Result<Members, Stop> {
        let reached = self.dispatch_subjects(rows, &target, require_all)?;
        let mut members = Members::new();
        for row in rows {
            if let Some(determined) = subject_member(&reached, row, &target) {
                add(
                    &mut members,
                    row.resource().object_id(),
                    determined && row.caveat().is_none(),
                );
            }
        }
        Ok(members)
    }

    fn rewrite(
        &mut self,
        def: DefinitionId,
        ids: &[ObjectId],
        rewrite: &Rewrite,
        require_all: bool,
    ) -> Result<Members, Stop> {
        match rewrite {
            Rewrite::Union(children) => {
                let mut members = Members::new();
                let mut error = None;
                for child in children {
                    match self.rewrite(def, ids, child, require_all) {
                        Ok(found) => merge(&mut members, found),
                        Err(Stop::Fails) => {
                            error.get_or_insert(Stop::Fails);
                        }
                        Err(stop) => return Err(stop),
                    }
                    if !require_all && members.values().any(|determined| *determined) {
                        return Ok(members);
                    }
                }
                settle(members, error, require_all)
            }
            Rewrite::Intersection(children) => {
                let mut running: Option<Members> = None;
                let mut error = None;
                for child in children {
                    match self.rewrite(def, ids, child, true) {
                        Ok(found) => {
                            let next = match running.take() {
                                None => found,
                                Some(acc) => acc
                                    .into_iter()
                                    .filter_map(|(id, determined)| {
                                        found.get(&id).map(|other| (id, determined && *other))
                                    })
                                    .collect(),
                            };
                            if next.is_empty() {
                                return Ok(next);
                            }
                            running = Some(next);
                        }
                        Err(Stop::Fails) => {
                            error.get_or_insert(Stop::Fails);
                        }
                        Err(stop) => return Err(stop),
                    }
                }
                match error {
                    Some(stop) => Err(stop),
                    None => Ok(running.unwrap_or_default()),
                }
            }
            Rewrite::Exclusion(base, subtracted) => {
                let base = self.rewrite(def, ids, base, true)?;
                if base.is_empty() {
                    return Ok(base);
                }
                // SpiceDB subtracts over the whole set, not only the base's members.
                let subtracted = self.rewrite(def, ids, subtracted, true)?;
                Ok(base
                    .into_iter()
                    .filter_map(|(id, determined)| match subtracted.get(&id) {
                        Some(true) => None,
                        Some(false) => Some((id, false)),
                        None => Some((id, determined)),
                    })
                    .collect())
            }
            Rewrite::ComputedUserset(rel) => self.dispatch(def, *rel, ids.to_vec(), require_all),
            Rewrite::TupleToUserset(ttu) => {
                let mut members = Members::new();
                let mut remaining = ids.to_vec();
                if ttu.function == ArrowFunction::Any {
                    remaining.retain(|id| {
                        let hinted = self.hints.iter().any(|hint| {
                            matches!(hint, CheckHint::Arrow { def: d, id: i, tupleset, target }
                                if *d == def && i == id && *tupleset == ttu.tupleset
                                    && ttu.target_on(target.0) == Some(target.1))
                        });
                        if hinted {
                            members.insert(id.clone(), true);
                        }
                        !hinted
                    });
                }
                let rows = self.read(def, ttu.tupleset, &remaining, None)?;
                let schema = self.schema;
                let target = |row: &Relationship| {
                    let subject_def = schema.definition_id(row.subject().object_type())?;
                    Some((subject_def, ttu.target_on(subject_def)?))
                };
                match ttu.function {
                    ArrowFunction::Any => {
                        let found = self.follow(&rows, target, require_all)?;
                        merge(&mut members, found);
                        Ok(members)
                    }
                    ArrowFunction::All => {
                        let reached = self.dispatch_subjects(&rows, &target, true)?;
                        // A resource is a member when every object its tupleset names is.
                        let mut all: BTreeMap<ObjectId, Option<bool>> = BTreeMap::new();
                        for row in &rows {
                            let member = subject_member(&reached, row, &target)
                                .map(|determined| determined && row.caveat().is_none());
                            let entry = all
                                .entry(row.resource().object_id().clone())
                                .or_insert(Some(true));
                            *entry = match (*entry, member) {
                                (Some(acc), Some(determined)) => Some(acc && determined),
                                _ => None,
                            };
                        }
                        merge(
                            &mut members,
                            all.into_iter()
                                .filter_map(|(id, member)| {
                                    member.map(|determined| (id, determined))
                                })
                                .collect(),
                        );
                        Ok(members)
                    }
                }
            }
            Rewrite::Nil => Ok(Members::new()),
            Rewrite::This => Ok(ids
                .iter()
                .filter(|id| {
                    self.subject.def == def
                        && self.subject.relation.is_none()
                        && **id == self.subject.id
                })
                .map(|id| (id.clone(), true))
                .collect()),
        }
    }
}

/// Whether the subject of `row` was found a member (and determined) at its target.
fn subject_member(
    reached: &Reached,
    row: &Relationship,
    target: &impl Fn(&Relationship) -> Option<(DefinitionId, RelationId)>,
) -> Option<bool> {
    if row.subject().is_wildcard() {
        return None;
    }
    reached
        .get(&target(row)?)?
        .get(row.subject().object_id())
        .copied()
}

/// Adds a member, keeping it determined if any way to it is.
fn add(members: &mut Members, id: &ObjectId, determined: bool) {
    let entry = members.entry(id.clone()).or_insert(false);
    *entry |= determined;
}

fn merge(members: &mut Members, found: Members) {
    for (id, determined) in found {
        let entry = members.entry(id).or_insert(false);
        *entry |= determined;
    }
}

/// A union's outcome: a failing branch fails it unless a determined member was found while a
/// single result is allowed.
fn settle(members: Members, error: Option<Stop>, require_all: bool) -> Result<Members, Stop> {
    match error {
        Some(stop) if require_all || !members.values().any(|determined| *determined) => Err(stop),
        _ => Ok(members),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::may_recurse;
    use crate::EngineSchema;

    #[test]
    fn recursion_is_found_through_arrows_subject_sets_and_permissions() {
        let compiled = ostiary_schema::compile_str(
            "t.zed",
            r#"
definition user {}

definition group {
    relation member: user | group#member
}

definition folder {
    relation parent: folder
    relation viewer: user
    permission view = viewer + parent->view
}

definition document {
    relation folder: folder
    relation owner: user
    relation team: group
    permission edit = owner
    permission read = edit + folder->viewer
    permission view = read + folder->view
    permission member_view = team->member & edit
}
"#,
        )
        .unwrap()
        .schema;
        let schema = EngineSchema::new(Arc::new(compiled)).unwrap();
        let resolve = |def: &str, rel: &str| schema.compiled().resolve(def, rel).unwrap();
        // Nothing leads back to `read`, `edit` or `folder#viewer`.
        assert!(!may_recurse(&schema, resolve("document", "read")));
        assert!(!may_recurse(&schema, resolve("document", "edit")));
        assert!(!may_recurse(&schema, resolve("folder", "viewer")));
        // `folder#view` follows `parent->view`; `group#member` names `group#member`.
        assert!(may_recurse(&schema, resolve("document", "view")));
        assert!(may_recurse(&schema, resolve("folder", "view")));
        assert!(may_recurse(&schema, resolve("document", "member_view")));
    }
}
