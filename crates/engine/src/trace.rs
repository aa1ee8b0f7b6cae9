//! Check traces: the tree of nodes a Check evaluated, with the relationships it read, the
//! caveats it evaluated and each node's value, recorded only when a caller asks for it
//! ([`crate::Engine::check_traced`]).
//!
//! A trace node is one dispatch in SpiceDB's terms: a relation or permission of one object.
//! The untraced walk carries no recorder (`None`), so it pays one branch per node and per
//! relationship read.

use std::time::{Duration, Instant};

use ostiary_schema::ir::{ArrowFunction, DefinitionId, RelationId, Rewrite};
use ostiary_types::{ContextualizedCaveat, ObjectId, ObjectRef, RelationName, Relationship};
use serde_json::{Map, Value as Json};

use crate::caveat::Tri;
use crate::{EngineError, EngineSchema, Permissionship};

/// One node of a Check trace: the subject's membership in `resource#relation`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckTrace {
    /// The object evaluated.
    pub resource: ObjectRef,
    /// The relation or permission evaluated on it.
    pub relation: RelationName,
    /// Whether `relation` is a stored relation or a computed permission.
    pub kind: TraceKind,
    /// How the node's value is computed: the top operation of a permission's expression, or
    /// [`TraceOperation::Direct`] for a relation.
    pub operation: TraceOperation,
    /// The node's value.
    pub result: TraceResult,
    /// Whether the node was evaluated here, taken from the request's memo, or cut off.
    pub source: TraceSource,
    /// The relationship that led here from the parent node: a subject set
    /// (`doc:1#viewer@group:eng#member`) or an arrow's relationship (`doc:1#parent@folder:a`);
    /// `None` for the root and for nodes reached by naming another relation or permission of
    /// the same object.
    pub via: Option<Relationship>,
    /// The relationships of this node read while evaluating it, in order: those naming the
    /// subject or its type's wildcard, subject sets, and an arrow's relationships.
    pub relationships: Vec<TracedRelationship>,
    /// The nodes evaluated to answer this one, in order.
    pub sub_problems: Vec<CheckTrace>,
    /// Wall time spent on the node, sub-problems included.
    pub duration: Duration,
}

impl CheckTrace {
    /// The first caveat evaluated in this node, if any.
    pub fn first_caveat(&self) -> Option<&CaveatTrace> {
        self.relationships
            .iter()
            .find_map(|traced| traced.caveat.as_ref())
    }
}

/// A stored relation or a computed permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    /// `relation name: ...`.
    Relation,
    /// `permission name = ...`.
    Permission,
}

/// How a node's value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceOperation {
    /// A relation: its relationships naming the subject, then its subject sets.
    Direct,
    /// `a + b`.
    Union,
    /// `a & b`.
    Intersection,
    /// `a - b`.
    Exclusion,
    /// `= other`: another relation or permission of the same object.
    Computed,
    /// `tupleset->target` or `tupleset.any(target)`.
    ArrowAny,
    /// `tupleset.all(target)`.
    ArrowAll,
    /// `nil`.
    Nil,
    /// `self`.
    This,
}

impl TraceOperation {
    fn of(rewrite: Option<&Rewrite>) -> Self {
        match rewrite {
            None => Self::Direct,
            Some(Rewrite::Union(_)) => Self::Union,
            Some(Rewrite::Intersection(_)) => Self::Intersection,
            Some(Rewrite::Exclusion(..)) => Self::Exclusion,
            Some(Rewrite::ComputedUserset(_)) => Self::Computed,
            Some(Rewrite::TupleToUserset(ttu)) => match ttu.function {
                ArrowFunction::Any => Self::ArrowAny,
                ArrowFunction::All => Self::ArrowAll,
            },
            Some(Rewrite::Nil) => Self::Nil,
            Some(Rewrite::This) => Self::This,
        }
    }
}

/// A node's value, or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceResult {
    /// Has, no, or conditional.
    Permissionship(Permissionship),
    /// Evaluation of the node failed (a cycle, the depth limit, a caveat error); the message.
    Error(String),
}

impl TraceResult {
    /// The result of a node's evaluation.
    pub(crate) fn of(res: &Result<Tri, EngineError>) -> Self {
        match res {
            Ok(value) => Self::Permissionship(value.clone().into()),
            Err(err) => Self::Error(err.to_string()),
        }
    }
}

/// Where a node's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceSource {
    /// Evaluated here; its sub-problems and relationships say how.
    Evaluated,
    /// Already evaluated for this request (a node reached twice): the memoised value.
    Memo,
    /// The node is the subject itself (`group:eng#member` checked for that subject set).
    Subject,
    /// The node is already being evaluated further up: a cycle, cut off here.
    Cycle,
    /// The depth limit was reached before evaluating it.
    DepthLimit,
}

/// A relationship read during a check, with its caveat's evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct TracedRelationship {
    /// The relationship.
    pub relationship: Relationship,
    /// Its caveat's evaluation, if it has a caveat.
    pub caveat: Option<CaveatTrace>,
}

/// One evaluation of a relationship's caveat.
#[derive(Debug, Clone, PartialEq)]
pub struct CaveatTrace {
    /// The caveat's name.
    pub name: String,
    /// Its CEL expression, as written in the schema.
    pub expression: String,
    /// The parameters' values used: the relationship's own context, then the request's.
    pub context: Map<String, Json>,
    /// The outcome.
    pub result: CaveatResult,
}

/// The outcome of a caveat evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaveatResult {
    /// The expression is true.
    True,
    /// The expression is false.
    False,
    /// The expression depends on parameters neither context supplies; their names, sorted.
    MissingContext(Vec<String>),
    /// Evaluation failed; the message.
    Error(String),
}

/// Records a trace while a checker walks; one open frame per node being evaluated.
#[derive(Debug)]
pub(crate) struct Tracer {
    request: Map<String, Json>,
    /// Open nodes, innermost last, with the time each was entered.
    stack: Vec<(CheckTrace, Instant)>,
    /// The relationship about to lead to a sub-problem.
    pending_via: Option<Relationship>,
    root: Option<CheckTrace>,
}

impl Tracer {
    /// A recorder for a check with request context `request`.
    pub(crate) fn new(request: &Map<String, Json>) -> Self {
        Self {
            request: request.clone(),
            stack: Vec::new(),
            pending_via: None,
            root: None,
        }
    }

    /// The recorded trace, once the root node is done.
    pub(crate) fn finish(self) -> Option<CheckTrace> {
        self.root
    }

    fn node(
        &mut self,
        schema: &EngineSchema,
        (def, rel, id): (DefinitionId, RelationId, &ObjectId),
        source: TraceSource,
    ) -> CheckTrace {
        let relation = schema.compiled().relation(def, rel);
        CheckTrace {
            resource: ObjectRef::new(schema.object_type(def).clone(), id.clone()),
            relation: schema.relation_name(def, rel).clone(),
            kind: if relation.is_permission() {
                TraceKind::Permission
            } else {
                TraceKind::Relation
            },
            operation: TraceOperation::of(relation.rewrite()),
            result: TraceResult::Error("not evaluated".to_owned()),
            source,
            via: self.pending_via.take(),
            relationships: Vec::new(),
            sub_problems: Vec::new(),
            duration: Duration::ZERO,
        }
    }

    fn attach(&mut self, node: CheckTrace) {
        match self.stack.last_mut() {
            Some((parent, _)) => parent.sub_problems.push(node),
            None => self.root = Some(node),
        }
    }

    /// A node not evaluated here (memo, the subject itself, a cycle, the depth limit).
    pub(crate) fn leaf(
        &mut self,
        schema: &EngineSchema,
        node: (DefinitionId, RelationId, &ObjectId),
        source: TraceSource,
        result: TraceResult,
    ) {
        let mut node = self.node(schema, node, source);
        node.result = result;
        self.attach(node);
    }

    /// Starts evaluating a node.
    pub(crate) fn enter(
        &mut self,
        schema: &EngineSchema,
        node: (DefinitionId, RelationId, &ObjectId),
    ) {
        let node = self.node(schema, node, TraceSource::Evaluated);
        self.stack.push((node, Instant::now()));
    }

    /// Ends the innermost node with its value.
    pub(crate) fn leave(&mut self, res: &Result<Tri, EngineError>) {
        self.pending_via = None;
        if let Some((mut node, started)) = self.stack.pop() {
            node.result = TraceResult::of(res);
            node.duration = started.elapsed();
            self.attach(node);
        }
    }

    /// The next sub-problem is reached through another relation of the same object.
    pub(crate) fn computed(&mut self) {
        self.pending_via = None;
    }

    /// A relationship read by the innermost node, with its caveat's evaluation; `leads` when
    /// a sub-problem may follow from it (a subject set or an arrow).
    pub(crate) fn relationship(
        &mut self,
        schema: &EngineSchema,
        row: &Relationship,
        caveat: &Result<Tri, EngineError>,
        leads: bool,
    ) {
        let caveat = row
            .caveat()
            .map(|contextualized| caveat_trace(schema, &self.request, contextualized, caveat));
        self.pending_via = leads.then(|| row.clone());
        if let Some((node, _)) = self.stack.last_mut() {
            node.relationships.push(TracedRelationship {
                relationship: row.clone(),
                caveat,
            });
        }
    }
}

/// The trace of one caveat evaluation.
fn caveat_trace(
    schema: &EngineSchema,
    request: &Map<String, Json>,
    caveat: &ContextualizedCaveat,
    value: &Result<Tri, EngineError>,
) -> CaveatTrace {
    let definition = schema.compiled().caveat_by_name(caveat.name().as_str());
    let mut context = Map::new();
    if let Some(definition) = definition {
        for param in &definition.params {
            let used = caveat
                .context()
                .get(&param.name)
                .or_else(|| request.get(&param.name));
            if let Some(used) = used {
                context.insert(param.name.clone(), used.clone());
            }
        }
    }
    CaveatTrace {
        name: caveat.name().to_string(),
        expression: definition
            .map(|definition| definition.expression.source.trim().to_owned())
            .unwrap_or_default(),
        context,
        result: match value {
            Ok(Tri::True) => CaveatResult::True,
            Ok(Tri::False) => CaveatResult::False,
            Ok(Tri::Partial(missing)) => CaveatResult::MissingContext(missing.clone()),
            Err(err) => CaveatResult::Error(err.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ostiary_store::{DatastoreExt, RelationshipUpdate};
    use ostiary_store_mem::MemDatastore;
    use ostiary_types::{RelationshipKey, TenantId};
    use serde_json::json;

    use super::*;
    use crate::{CheckResult, Engine, EngineConfig};

    const SCHEMA: &str = "
        caveat over(limit int, used int) { used < limit }
        definition user {}
        definition group {
            relation member: user | group#member
        }
        definition folder {
            relation viewer: user
            permission view = viewer
        }
        definition doc {
            relation viewer: user | user:* | group#member | user with over
            relation editor: user
            relation banned: user | group#member
            relation parent: folder
            permission edit = editor
            permission view = viewer + edit + parent->view
            permission both = viewer & editor
            permission allowed = view - banned
            permission all_parents = parent.all(view)
        }
    ";

    const RELATIONSHIPS: &str = r#"
        doc:1#viewer@user:alice
        doc:1#editor@user:alice
        doc:1#viewer@group:eng#member
        group:eng#member@user:dan
        doc:1#banned@user:dan
        doc:1#parent@folder:a
        folder:a#viewer@user:fay
        doc:2#viewer@user:*
        doc:3#viewer@user:carl[over:{"limit":10}]
        group:x#member@group:y#member
        group:y#member@group:x#member
        doc:4#viewer@group:x#member
        doc:5#viewer@group:eng#member
        doc:5#banned@group:eng#member
    "#;

    fn setup() -> (MemDatastore, EngineSchema) {
        let compiled = ostiary_schema::compile_str("t.zed", SCHEMA).unwrap().schema;
        let schema = EngineSchema::new(Arc::new(compiled)).unwrap();
        let store = MemDatastore::default();
        let updates: Vec<_> = RELATIONSHIPS
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| RelationshipUpdate::Touch(line.parse().unwrap()))
            .collect();
        store
            .write_relationships(&TenantId::default_tenant(), &[], &updates)
            .unwrap();
        (store, schema)
    }

    /// Checks `text` (`doc:1#view@user:alice`, optionally ` with {json}`) traced and
    /// untraced on `engine`; asserts they agree and returns the traced answer.
    fn traced(
        engine: &Engine,
        store: &MemDatastore,
        schema: &EngineSchema,
        text: &str,
    ) -> Result<(CheckResult, CheckTrace), String> {
        let (text, context) = match text.split_once(" with ") {
            Some((text, context)) => (text, serde_json::from_str(context).unwrap()),
            None => (text, Map::new()),
        };
        let key: RelationshipKey = text.parse().unwrap();
        let snapshot = store.head_snapshot(&TenantId::default_tenant()).unwrap();
        let args = (key.resource(), key.relation(), key.subject(), &context);
        let plain = engine
            .check(snapshot.as_ref(), schema, args.0, args.1, args.2, args.3)
            .map_err(|err| err.to_string());
        let traced = engine
            .check_traced(snapshot.as_ref(), schema, args.0, args.1, args.2, args.3)
            .map_err(|err| err.to_string());
        assert_eq!(
            plain.as_ref().map(|res| &res.permissionship),
            traced.as_ref().map(|(res, _)| &res.permissionship),
            "{text}: traced and untraced checks disagree"
        );
        traced
    }

    fn has() -> TraceResult {
        TraceResult::Permissionship(Permissionship::Has)
    }

    fn no() -> TraceResult {
        TraceResult::Permissionship(Permissionship::No)
    }

    #[test]
    fn traced_and_untraced_checks_agree() {
        let (store, schema) = setup();
        let engine = Engine::default();
        let cases = [
            ("doc:1#view@user:alice", Some(Permissionship::Has)),
            ("doc:1#view@user:fay", Some(Permissionship::Has)),
            ("doc:1#view@user:dan", Some(Permissionship::Has)),
            ("doc:1#view@user:zed", Some(Permissionship::No)),
            ("doc:1#both@user:alice", Some(Permissionship::Has)),
            ("doc:1#both@user:dan", Some(Permissionship::No)),
            ("doc:1#allowed@user:alice", Some(Permissionship::Has)),
            ("doc:1#allowed@user:dan", Some(Permissionship::No)),
            ("doc:1#all_parents@user:fay", Some(Permissionship::Has)),
            ("doc:1#all_parents@user:alice", Some(Permissionship::No)),
            ("doc:2#view@user:anyone", Some(Permissionship::Has)),
            (
                "doc:3#view@user:carl",
                Some(Permissionship::Conditional {
                    missing_params: vec!["used".to_owned()],
                }),
            ),
            (
                r#"doc:3#view@user:carl with {"used": 1}"#,
                Some(Permissionship::Has),
            ),
            (
                r#"doc:3#view@user:carl with {"used": 11}"#,
                Some(Permissionship::No),
            ),
            ("doc:4#view@user:alice", None),
        ];
        for (text, expected) in cases {
            let res = traced(&engine, &store, &schema, text);
            match expected {
                Some(expected) => {
                    let (result, trace) = res.unwrap();
                    assert_eq!(result.permissionship, expected, "{text}");
                    assert_eq!(
                        trace.result,
                        TraceResult::Permissionship(expected),
                        "{text}"
                    );
                }
                None => assert!(res.is_err(), "{text}: expected an error"),
            }
        }
    }

    #[test]
    fn a_granting_path_names_its_relationships() {
        let (store, schema) = setup();
        let (_, trace) =
            traced(&Engine::default(), &store, &schema, "doc:1#view@user:fay").unwrap();
        assert_eq!(trace.resource.to_string(), "doc:1");
        assert_eq!(trace.relation.as_str(), "view");
        assert_eq!(trace.kind, TraceKind::Permission);
        assert_eq!(trace.operation, TraceOperation::Union);
        assert_eq!(trace.result, has());
        assert_eq!(trace.source, TraceSource::Evaluated);
        let names: Vec<String> = trace
            .sub_problems
            .iter()
            .map(|node| format!("{}#{} {:?}", node.resource, node.relation, node.result))
            .collect();
        assert_eq!(
            names,
            [
                format!("doc:1#viewer {:?}", no()),
                format!("doc:1#edit {:?}", no()),
                format!("folder:a#view {:?}", has()),
            ]
        );
        let viewer = &trace.sub_problems[0];
        assert_eq!(viewer.kind, TraceKind::Relation);
        assert_eq!(viewer.operation, TraceOperation::Direct);
        assert!(viewer.via.is_none());
        // The subject set group:eng#member was followed and found no fay.
        assert_eq!(
            viewer.sub_problems[0].via.as_ref().map(ToString::to_string),
            Some("doc:1#viewer@group:eng#member".to_owned())
        );
        assert_eq!(viewer.sub_problems[0].result, no());
        let folder = &trace.sub_problems[2];
        assert_eq!(
            folder.via.as_ref().map(ToString::to_string),
            Some("doc:1#parent@folder:a".to_owned())
        );
        assert_eq!(trace.relationships.len(), 1, "the arrow's relationship");
        let folder_viewer = &folder.sub_problems[0];
        assert_eq!(folder_viewer.result, has());
        assert_eq!(
            folder_viewer.relationships[0].relationship.to_string(),
            "folder:a#viewer@user:fay"
        );
        assert!(folder_viewer.via.is_none());
    }

    #[test]
    fn wildcards_exclusions_and_cycles_are_visible() {
        let (store, schema) = setup();
        let engine = Engine::default();
        let (_, trace) = traced(&engine, &store, &schema, "doc:2#viewer@user:anyone").unwrap();
        assert_eq!(
            trace.relationships[0].relationship.to_string(),
            "doc:2#viewer@user:*"
        );
        let (_, trace) = traced(&engine, &store, &schema, "doc:1#allowed@user:dan").unwrap();
        assert_eq!(trace.operation, TraceOperation::Exclusion);
        assert_eq!(trace.result, no());
        let sides: Vec<_> = trace
            .sub_problems
            .iter()
            .map(|node| (node.relation.as_str(), node.result.clone()))
            .collect();
        assert_eq!(sides, [("view", has()), ("banned", has())]);
        let err = traced(&engine, &store, &schema, "group:x#member@user:bob").unwrap_err();
        assert!(err.contains("max depth"), "{err}");
    }

    /// Nodes evaluated (not memoised or cut off) in a trace.
    fn evaluated(trace: &CheckTrace) -> u64 {
        u64::from(trace.source == TraceSource::Evaluated)
            + trace.sub_problems.iter().map(evaluated).sum::<u64>()
    }

    #[test]
    fn caveats_show_expression_context_and_outcome() {
        let (store, schema) = setup();
        let engine = Engine::default();
        let caveat_of = |text: &str| {
            let (_, trace) = traced(&engine, &store, &schema, text).unwrap();
            trace.sub_problems[0].first_caveat().cloned().unwrap()
        };
        let missing = caveat_of("doc:3#view@user:carl");
        assert_eq!(missing.name, "over");
        assert_eq!(missing.expression, "used < limit");
        assert_eq!(
            missing.context,
            json!({"limit": 10}).as_object().cloned().unwrap()
        );
        assert_eq!(
            missing.result,
            CaveatResult::MissingContext(vec!["used".to_owned()])
        );
        let denied = caveat_of(r#"doc:3#view@user:carl with {"used": 11, "limit": 99}"#);
        // The relationship's own value wins over the request's.
        assert_eq!(
            denied.context,
            json!({"limit": 10, "used": 11})
                .as_object()
                .cloned()
                .unwrap()
        );
        assert_eq!(denied.result, CaveatResult::False);
        let allowed = caveat_of(r#"doc:3#view@user:carl with {"used": 1}"#);
        assert_eq!(allowed.result, CaveatResult::True);
    }

    #[test]
    fn a_traced_check_bypasses_the_cache_and_marks_cycles() {
        let (store, schema) = setup();
        let engine = Engine::new(EngineConfig::default()).with_check_cache(1 << 20);
        let snapshot = store.head_snapshot(&TenantId::default_tenant()).unwrap();
        let key: RelationshipKey = "doc:1#view@user:fay".parse().unwrap();
        for _ in 0..2 {
            engine
                .check(
                    snapshot.as_ref(),
                    &schema,
                    key.resource(),
                    key.relation(),
                    key.subject(),
                    &Map::new(),
                )
                .unwrap();
        }
        assert_eq!(engine.cache_stats().unwrap().hits, 1);
        let (result, trace) = traced(&engine, &store, &schema, "doc:1#view@user:fay").unwrap();
        assert_eq!(trace.sub_problems.len(), 3);
        assert_eq!(result.dispatch_count, evaluated(&trace));
        // A cycle below a union that finds the subject: answered, the path is visible.
        let updates = [RelationshipUpdate::Touch(
            "group:y#member@user:bob".parse().unwrap(),
        )];
        store
            .write_relationships(&TenantId::default_tenant(), &[], &updates)
            .unwrap();
        let (_, trace) = traced(&engine, &store, &schema, "group:x#member@user:bob").unwrap();
        assert_eq!(trace.result, has());
        let y = &trace.sub_problems[0];
        assert_eq!(y.resource.to_string(), "group:y");
        assert_eq!(y.result, has());
        assert_eq!(
            y.relationships[0].relationship.to_string(),
            "group:y#member@user:bob"
        );
    }

    #[test]
    fn a_node_met_twice_comes_from_the_memo() {
        let (store, schema) = setup();
        // `allowed = view - banned`: both follow group:eng#member.
        let (result, trace) = traced(
            &Engine::default(),
            &store,
            &schema,
            "doc:5#allowed@user:dan",
        )
        .unwrap();
        assert_eq!(trace.result, no());
        fn find<'t>(trace: &'t CheckTrace, out: &mut Vec<&'t CheckTrace>) {
            if trace.resource.to_string() == "group:eng" {
                out.push(trace);
            }
            for sub in &trace.sub_problems {
                find(sub, out);
            }
        }
        let mut eng = Vec::new();
        find(&trace, &mut eng);
        let sources: Vec<_> = eng.iter().map(|node| node.source).collect();
        assert_eq!(sources, [TraceSource::Evaluated, TraceSource::Memo]);
        assert_eq!(result.dispatch_count, evaluated(&trace));
    }

    #[test]
    fn cycles_are_marked() {
        let (store, schema) = setup();
        // Tracing the failing branch directly: the checker's own recorder.
        let snapshot = store.head_snapshot(&TenantId::default_tenant()).unwrap();
        let subject =
            crate::check::ResolvedSubject::resolve(&schema, &"user:bob".parse().unwrap()).unwrap();
        let context = Map::new();
        let mut checker =
            crate::check::Checker::new(snapshot.as_ref(), &schema, subject, &context, 50)
                .with_tracer(Tracer::new(&context));
        let (def, rel) = crate::check::resolve_resource(
            &schema,
            &"group:x".parse().unwrap(),
            &"member".parse().unwrap(),
        )
        .unwrap();
        assert!(checker.check(def, rel, &"x".parse().unwrap()).is_err());
        let trace = checker.take_trace().unwrap();
        assert!(matches!(trace.result, TraceResult::Error(_)));
        let y = &trace.sub_problems[0];
        assert_eq!(y.resource.to_string(), "group:y");
        let back = &y.sub_problems[0];
        assert_eq!(back.resource.to_string(), "group:x");
        assert_eq!(back.source, TraceSource::Cycle);
        assert_eq!(
            back.via.as_ref().map(ToString::to_string),
            Some("group:y#member@group:x#member".to_owned())
        );
    }
}
