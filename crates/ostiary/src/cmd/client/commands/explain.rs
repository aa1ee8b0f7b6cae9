//! `ostiary explain`: a Check with SpiceDB's debug trace (`with_tracing`), rendered as an
//! indented tree of the nodes evaluated, the relationships that grant, and the caveats
//! evaluated with their context. Only the wire API is used (CheckPermission, the trace's
//! `schema_used`, ReadRelationships at the checked revision), so it explains a SpiceDB
//! server's answers too.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Context as _;
use ostiary_proto::authzed::api::v1 as pb;
use ostiary_schema::CompiledSchema;
use ostiary_schema::ir::{ArrowFunction, DefinitionId, Rewrite};
use serde_json::{Value, json};

use super::super::{Clients, struct_to_json};
use super::{CheckArgs, answer_of, block_on, object_text, out, relationship_text, rpc_error};
use super::{subject_text, token_text};

use pb::caveat_eval_info::Result as CaveatResult;
use pb::check_debug_trace::{PermissionType, Permissionship, Resolution};

/// `ostiary explain`.
pub(crate) fn explain(args: CheckArgs) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let mut clients = args.conn.connect().await?;
        let response = clients
            .permissions
            .check_permission(args.request(true))
            .await
            .map_err(rpc_error)?
            .into_inner();
        let (answer, code) = answer_of(&response);
        let debug = response
            .debug_trace
            .clone()
            .context("the server sent no debug trace")?;
        let trace = debug
            .check
            .as_ref()
            .context("the server's debug trace has no check trace")?;
        let schema = ostiary_schema::compile_str("schema_used.zed", &debug.schema_used)
            .ok()
            .map(|compiled| compiled.schema);
        let grants = read_grants(&mut clients, trace, response.checked_at.as_ref()).await?;
        let explanation = Explanation {
            schema: schema.as_ref(),
            grants: &grants,
        };
        if args.conn.json {
            let missing = response
                .partial_caveat_info
                .as_ref()
                .map(|info| info.missing_required_context.clone())
                .unwrap_or_default();
            out(&json!({
                "permissionship": answer,
                "missing_context": missing,
                "checked_at": token_text(response.checked_at.as_ref()),
                "trace": explanation.json(trace),
            })
            .to_string())?;
        } else {
            for line in explanation.lines(trace) {
                out(&line)?;
            }
        }
        Ok(args.exit_code(code))
    })
}

/// A node's `resource#permission` text.
fn node_name(node: &pb::CheckDebugTrace) -> String {
    format!(
        "{}#{}",
        object_text(node.resource.as_ref()),
        node.permission
    )
}

/// Whether `node` is a stored relation decided by its own relationships naming the subject
/// or its wildcard (a leaf that has the subject, or a caveat was evaluated): those
/// relationships are the reason to show.
fn is_deciding_leaf(node: &pb::CheckDebugTrace) -> bool {
    let leaf = matches!(node.resolution, Some(Resolution::WasCachedResult(false)));
    let granted = matches!(
        node.result(),
        Permissionship::HasPermission | Permissionship::ConditionalPermission
    );
    node.permission_type() == PermissionType::Relation
        && node.resolution != Some(Resolution::WasCachedResult(true))
        && node.source != "ostiary:subject"
        && ((leaf && granted) || node.caveat_evaluation_info.is_some())
}

/// The mark of a node's own relationships: granting, conditional, or not granting (a caveat
/// is false). A node granted through a subject set has its own relationships' caveat false.
fn grant_mark(node: &pb::CheckDebugTrace) -> &'static str {
    let caveat = node
        .caveat_evaluation_info
        .as_ref()
        .map(|info| info.result());
    match (node.result(), caveat) {
        (_, Some(CaveatResult::False)) => "✗",
        (_, Some(CaveatResult::MissingSomeContext)) => "?",
        (Permissionship::HasPermission, _) => "✓",
        (Permissionship::ConditionalPermission, _) => "?",
        (Permissionship::NoPermission | Permissionship::Unspecified, _) => "✗",
    }
}

/// Reads, at the revision the check was answered at, the relationships of every granting
/// leaf naming the subject or its type's wildcard; keyed by [`node_name`].
async fn read_grants(
    clients: &mut Clients,
    root: &pb::CheckDebugTrace,
    checked_at: Option<&pb::ZedToken>,
) -> anyhow::Result<HashMap<String, Vec<String>>> {
    let mut leaves = Vec::new();
    collect_leaves(root, &mut leaves);
    let consistency = checked_at.map(|token| pb::Consistency {
        requirement: Some(pb::consistency::Requirement::AtExactSnapshot(token.clone())),
    });
    let mut grants: HashMap<String, Vec<String>> = HashMap::new();
    for leaf in leaves {
        let name = node_name(leaf);
        if grants.contains_key(&name) {
            continue;
        }
        let (Some(resource), Some(subject)) = (&leaf.resource, &leaf.subject) else {
            continue;
        };
        let Some(subject_object) = &subject.object else {
            continue;
        };
        let mut found = Vec::new();
        // SpiceDB joins the ids of a batched dispatch with commas.
        for resource_id in resource.object_id.split(',') {
            for subject_id in [subject_object.object_id.as_str(), "*"] {
                let filter = pb::RelationshipFilter {
                    resource_type: resource.object_type.clone(),
                    optional_resource_id: resource_id.to_owned(),
                    optional_resource_id_prefix: String::new(),
                    optional_relation: leaf.permission.clone(),
                    optional_subject_filter: Some(pb::SubjectFilter {
                        subject_type: subject_object.object_type.clone(),
                        optional_subject_id: subject_id.to_owned(),
                        optional_relation: None,
                    }),
                };
                // The trace is the answer; relationships only illustrate it, so a failed
                // read (an old revision collected since) leaves them out.
                let Ok(rels) = read_all(clients, consistency.clone(), filter).await else {
                    continue;
                };
                for rel in rels {
                    let relation = rel
                        .subject
                        .as_ref()
                        .map(|subject| subject.optional_relation.as_str())
                        .unwrap_or_default();
                    // The wildcard matches any subject relation; an id only its own.
                    if subject_id == "*" || relation == subject.optional_relation {
                        found.push(relationship_text(&rel));
                    }
                }
            }
        }
        grants.insert(name, found);
    }
    Ok(grants)
}

/// Every relationship matching `filter`.
async fn read_all(
    clients: &mut Clients,
    consistency: Option<pb::Consistency>,
    filter: pb::RelationshipFilter,
) -> Result<Vec<pb::Relationship>, tonic::Status> {
    let mut stream = clients
        .permissions
        .read_relationships(pb::ReadRelationshipsRequest {
            consistency,
            relationship_filter: Some(filter),
            optional_limit: 0,
            optional_cursor: None,
        })
        .await?
        .into_inner();
    let mut rels = Vec::new();
    while let Some(response) = stream.message().await? {
        rels.extend(response.relationship);
    }
    Ok(rels)
}

fn collect_leaves<'t>(node: &'t pb::CheckDebugTrace, leaves: &mut Vec<&'t pb::CheckDebugTrace>) {
    if is_deciding_leaf(node) {
        leaves.push(node);
    }
    if let Some(Resolution::SubProblems(sub)) = &node.resolution {
        for child in &sub.traces {
            collect_leaves(child, leaves);
        }
    }
}

/// What is known to explain a trace: the schema it was evaluated against (if it compiles
/// here) and the relationships of the granting leaves.
pub(super) struct Explanation<'a> {
    pub(super) schema: Option<&'a CompiledSchema>,
    pub(super) grants: &'a HashMap<String, Vec<String>>,
}

/// One line below a node: a fact about it, or a sub-problem.
enum Item<'t> {
    Fact(String),
    Node(&'t pb::CheckDebugTrace),
}

impl Explanation<'_> {
    /// The trace as an indented tree, one line per node, relationship and caveat.
    pub(super) fn lines(&self, root: &pb::CheckDebugTrace) -> Vec<String> {
        let mut lines = vec![self.headline(root, None)];
        self.children(root, "", &mut lines);
        lines
    }

    fn children(&self, node: &pb::CheckDebugTrace, prefix: &str, lines: &mut Vec<String>) {
        let items = self.items(node);
        let n_items = items.len();
        for (item_idx, item) in items.into_iter().enumerate() {
            let last = item_idx + 1 == n_items;
            let (branch, more) = if last {
                ("└─ ", "   ")
            } else {
                ("├─ ", "│  ")
            };
            match item {
                Item::Fact(text) => lines.push(format!("{prefix}{branch}{text}")),
                Item::Node(child) => {
                    lines.push(format!(
                        "{prefix}{branch}{}",
                        self.headline(child, Some(node))
                    ));
                    self.children(child, &format!("{prefix}{more}"), lines);
                }
            }
        }
    }

    fn items<'t>(&self, node: &'t pb::CheckDebugTrace) -> Vec<Item<'t>> {
        let mut items = Vec::new();
        if let Some(caveat) = &node.caveat_evaluation_info {
            items.push(Item::Fact(caveat_text(caveat)));
        }
        if is_deciding_leaf(node)
            && let Some(grants) = self.grants.get(&node_name(node))
        {
            let mark = grant_mark(node);
            items.extend(grants.iter().map(|rel| Item::Fact(format!("{mark} {rel}"))));
        }
        if let Some(Resolution::SubProblems(sub)) = &node.resolution {
            items.extend(sub.traces.iter().map(Item::Node));
        }
        items
    }

    /// `resource#permission  RESULT  details`.
    fn headline(&self, node: &pb::CheckDebugTrace, parent: Option<&pb::CheckDebugTrace>) -> String {
        let mut line = format!("{}  {}", node_name(node), result_text(node.result()));
        let mut details = Vec::new();
        if let Some(via) = parent.and_then(|parent| self.via(parent, node)) {
            details.push(via);
        }
        if node.permission_type() == PermissionType::Permission
            && let Some(expression) = self.expression(node)
        {
            details.push(format!("= {expression}"));
        }
        match node.source.as_str() {
            "ostiary:memo" => details.push("(already evaluated above)".to_owned()),
            "ostiary:subject" => details.push("(the subject itself)".to_owned()),
            "ostiary:cycle" => details.push("cycle: already being evaluated, cut off".to_owned()),
            "ostiary:depth-limit" => details.push("depth limit reached".to_owned()),
            _ if matches!(node.resolution, Some(Resolution::WasCachedResult(true))) => {
                details.push("(cached)".to_owned());
            }
            _ => {}
        }
        if node.permission_type() == PermissionType::Relation
            && node.result() == Permissionship::NoPermission
            && node.caveat_evaluation_info.is_none()
            && matches!(node.resolution, Some(Resolution::WasCachedResult(false)))
        {
            details.push(format!(
                "no relationship for {}",
                subject_text(node.subject.as_ref())
            ));
        }
        for detail in details {
            line.push_str("  ");
            line.push_str(&detail);
        }
        line
    }

    /// How `node` was reached from `parent`: the subject set or arrow relationship that led
    /// there; `None` for another relation of the same object.
    fn via(&self, parent: &pb::CheckDebugTrace, node: &pb::CheckDebugTrace) -> Option<String> {
        let parent_object = object_text(parent.resource.as_ref());
        let object = object_text(node.resource.as_ref());
        if parent.permission_type() == PermissionType::Relation {
            return Some(format!(
                "via {}@{object}#{}",
                node_name(parent),
                node.permission
            ));
        }
        if parent_object == object {
            return None;
        }
        let tupleset = self.arrow_tupleset(parent, node);
        Some(format!(
            "via {parent_object}#{}@{object}",
            tupleset.as_deref().unwrap_or("?")
        ))
    }

    /// The definition and rewrite of a permission node, from the schema.
    fn rewrite(&self, node: &pb::CheckDebugTrace) -> Option<(DefinitionId, &Rewrite)> {
        let schema = self.schema?;
        let object = node.resource.as_ref()?;
        let (def, rel) = schema.resolve(&object.object_type, &node.permission)?;
        Some((def, schema.relation(def, rel).rewrite()?))
    }

    /// The permission's expression as written in the schema (normalised).
    fn expression(&self, node: &pb::CheckDebugTrace) -> Option<String> {
        let schema = self.schema?;
        let (def, rewrite) = self.rewrite(node)?;
        let mut text = String::new();
        write_rewrite(&mut text, schema, def, rewrite, false);
        Some(text)
    }

    /// The tupleset relation of the arrow in `parent`'s expression that reaches `node`.
    fn arrow_tupleset(
        &self,
        parent: &pb::CheckDebugTrace,
        node: &pb::CheckDebugTrace,
    ) -> Option<String> {
        let schema = self.schema?;
        let (def, rewrite) = self.rewrite(parent)?;
        let target_def = schema.definition_id(&node.resource.as_ref()?.object_type)?;
        let mut stack = vec![rewrite];
        while let Some(rewrite) = stack.pop() {
            match rewrite {
                Rewrite::Union(children) | Rewrite::Intersection(children) => {
                    stack.extend(children);
                }
                Rewrite::Exclusion(base, subtracted) => {
                    stack.push(&**base);
                    stack.push(&**subtracted);
                }
                Rewrite::TupleToUserset(ttu)
                    if ttu.computed == node.permission && ttu.target_on(target_def).is_some() =>
                {
                    return Some(schema.relation(def, ttu.tupleset).name.clone());
                }
                _ => {}
            }
        }
        None
    }

    /// The trace as JSON: each node with its result, how it was reached, its caveat, the
    /// relationships that grant it and its sub-problems.
    pub(super) fn json(&self, node: &pb::CheckDebugTrace) -> Value {
        self.json_node(node, None)
    }

    fn json_node(&self, node: &pb::CheckDebugTrace, parent: Option<&pb::CheckDebugTrace>) -> Value {
        let mut value = json!({
            "resource": object_text(node.resource.as_ref()),
            "permission": node.permission,
            "permission_type": match node.permission_type() {
                PermissionType::Relation => "relation",
                PermissionType::Permission => "permission",
                PermissionType::Unspecified => "unspecified",
            },
            "subject": subject_text(node.subject.as_ref()),
            "result": result_text(node.result()),
            "cached": matches!(node.resolution, Some(Resolution::WasCachedResult(true))),
            "source": node.source,
        });
        let Some(object) = value.as_object_mut() else {
            return value;
        };
        if let Some(duration) = &node.duration {
            let micros =
                duration.seconds.saturating_mul(1_000_000) + i64::from(duration.nanos / 1_000);
            object.insert("duration_us".to_owned(), json!(micros));
        }
        if let Some(via) = parent.and_then(|parent| self.via(parent, node)) {
            object.insert("via".to_owned(), json!(via.trim_start_matches("via ")));
        }
        if node.permission_type() == PermissionType::Permission
            && let Some(expression) = self.expression(node)
        {
            object.insert("expression".to_owned(), json!(expression));
        }
        if let Some(caveat) = &node.caveat_evaluation_info {
            object.insert(
                "caveat".to_owned(),
                json!({
                    "name": caveat.caveat_name,
                    "expression": caveat.expression,
                    "result": caveat_result_text(caveat),
                    "context": caveat.context.as_ref().map(struct_to_json).unwrap_or_default(),
                    "missing_context": missing_context(caveat),
                }),
            );
        }
        if is_deciding_leaf(node)
            && let Some(grants) = self.grants.get(&node_name(node))
        {
            object.insert("relationships".to_owned(), json!(grants));
        }
        if let Some(Resolution::SubProblems(sub)) = &node.resolution {
            let children: Vec<Value> = sub
                .traces
                .iter()
                .map(|child| self.json_node(child, Some(node)))
                .collect();
            object.insert("sub_problems".to_owned(), Value::Array(children));
        }
        value
    }
}

fn result_text(result: Permissionship) -> &'static str {
    match result {
        Permissionship::HasPermission => "HAS_PERMISSION",
        Permissionship::NoPermission => "NO_PERMISSION",
        Permissionship::ConditionalPermission => "CONDITIONAL_PERMISSION",
        Permissionship::Unspecified => "NO_RESULT",
    }
}

fn missing_context(caveat: &pb::CaveatEvalInfo) -> Vec<String> {
    caveat
        .partial_caveat_info
        .as_ref()
        .map(|info| info.missing_required_context.clone())
        .unwrap_or_default()
}

fn caveat_result_text(caveat: &pb::CaveatEvalInfo) -> String {
    match caveat.result() {
        CaveatResult::True => "true".to_owned(),
        CaveatResult::False => "false".to_owned(),
        CaveatResult::MissingSomeContext => {
            format!("missing context: {}", missing_context(caveat).join(", "))
        }
        CaveatResult::Unevaluated | CaveatResult::Unspecified => "not evaluated".to_owned(),
    }
}

/// `caveat name(expression) = result with {context}`.
fn caveat_text(caveat: &pb::CaveatEvalInfo) -> String {
    let context = caveat
        .context
        .as_ref()
        .map(struct_to_json)
        .unwrap_or_default();
    let expression = caveat
        .expression
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "caveat {}({expression}) = {} with {}",
        caveat.caveat_name,
        caveat_result_text(caveat),
        Value::Object(context)
    )
}

/// Writes a permission expression in schema syntax, parenthesising nested operations.
fn write_rewrite(
    out: &mut String,
    schema: &CompiledSchema,
    def: DefinitionId,
    rewrite: &Rewrite,
    nested: bool,
) {
    let join = |out: &mut String, children: &[&Rewrite], operator: &str| {
        if nested {
            out.push('(');
        }
        for (child_idx, child) in children.iter().enumerate() {
            if child_idx > 0 {
                out.push_str(operator);
            }
            write_rewrite(out, schema, def, child, true);
        }
        if nested {
            out.push(')');
        }
    };
    match rewrite {
        Rewrite::Union(children) => join(out, &children.iter().collect::<Vec<_>>(), " + "),
        Rewrite::Intersection(children) => {
            join(out, &children.iter().collect::<Vec<_>>(), " & ");
        }
        Rewrite::Exclusion(base, subtracted) => join(out, &[&**base, &**subtracted], " - "),
        Rewrite::ComputedUserset(rel) => out.push_str(&schema.relation(def, *rel).name),
        Rewrite::TupleToUserset(ttu) => {
            let tupleset = &schema.relation(def, ttu.tupleset).name;
            match ttu.function {
                ArrowFunction::Any => out.push_str(&format!("{tupleset}->{}", ttu.computed)),
                ArrowFunction::All => out.push_str(&format!("{tupleset}.all({})", ttu.computed)),
            }
        }
        Rewrite::Nil => out.push_str("nil"),
        Rewrite::This => out.push_str("self"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "definition user {}
        definition folder {
            relation viewer: user
            permission view = viewer
        }
        definition document {
            relation viewer: user
            relation parent: folder
            relation banned: user
            permission view = (viewer + parent->view) - banned
            permission all = parent.all(view) & viewer
        }";

    fn node(
        resource: &str,
        permission: &str,
        permission_type: PermissionType,
        result: Permissionship,
        sub_problems: Vec<pb::CheckDebugTrace>,
    ) -> pb::CheckDebugTrace {
        let (object_type, object_id) = resource.split_once(':').unwrap();
        pb::CheckDebugTrace {
            resource: Some(pb::ObjectReference {
                object_type: object_type.to_owned(),
                object_id: object_id.to_owned(),
            }),
            permission: permission.to_owned(),
            permission_type: permission_type as i32,
            subject: Some(pb::SubjectReference {
                object: Some(pb::ObjectReference {
                    object_type: "user".to_owned(),
                    object_id: "alice".to_owned(),
                }),
                optional_relation: String::new(),
            }),
            result: result as i32,
            resolution: Some(if sub_problems.is_empty() {
                Resolution::WasCachedResult(false)
            } else {
                Resolution::SubProblems(pb::check_debug_trace::SubProblems {
                    traces: sub_problems,
                })
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_trace_renders_as_a_tree_with_arrows_and_expressions() {
        use PermissionType::{Permission, Relation};
        use Permissionship::{HasPermission as Has, NoPermission as No};
        let schema = ostiary_schema::compile_str("s.zed", SCHEMA).unwrap().schema;
        let trace = node(
            "document:readme",
            "view",
            Permission,
            Has,
            vec![
                node("document:readme", "viewer", Relation, No, vec![]),
                node(
                    "folder:root",
                    "view",
                    Permission,
                    Has,
                    vec![node("folder:root", "viewer", Relation, Has, vec![])],
                ),
                node("document:readme", "banned", Relation, No, vec![]),
            ],
        );
        let grants = HashMap::from([(
            "folder:root#viewer".to_owned(),
            vec!["folder:root#viewer@user:alice".to_owned()],
        )]);
        let explanation = Explanation {
            schema: Some(&schema),
            grants: &grants,
        };
        assert_eq!(
            explanation.lines(&trace),
            [
                "document:readme#view  HAS_PERMISSION  = (viewer + parent->view) - banned",
                "├─ document:readme#viewer  NO_PERMISSION  no relationship for user:alice",
                "├─ folder:root#view  HAS_PERMISSION  via document:readme#parent@folder:root  = viewer",
                "│  └─ folder:root#viewer  HAS_PERMISSION",
                "│     └─ ✓ folder:root#viewer@user:alice",
                "└─ document:readme#banned  NO_PERMISSION  no relationship for user:alice",
            ]
        );
        let json = explanation.json(&trace);
        assert_eq!(
            json["sub_problems"][1]["via"],
            "document:readme#parent@folder:root"
        );
        // Without a schema (one this build cannot compile) the tree still renders.
        let bare = Explanation {
            schema: None,
            grants: &grants,
        };
        assert_eq!(
            bare.lines(&trace)[2],
            "├─ folder:root#view  HAS_PERMISSION  via document:readme#?@folder:root"
        );
    }

    #[test]
    fn expressions_and_caveats_print_as_written() {
        let schema = ostiary_schema::compile_str("s.zed", SCHEMA).unwrap().schema;
        let (def, rel) = schema.resolve("document", "all").unwrap();
        let mut text = String::new();
        write_rewrite(
            &mut text,
            &schema,
            def,
            schema.relation(def, rel).rewrite().unwrap(),
            false,
        );
        assert_eq!(text, "parent.all(view) & viewer");
        let caveat = pb::CaveatEvalInfo {
            expression: "ip ==\n   allowed".to_owned(),
            result: CaveatResult::MissingSomeContext as i32,
            context: Some(super::super::json_to_struct(
                json!({"allowed": "10.0.0.1"}).as_object().unwrap(),
            )),
            partial_caveat_info: Some(pb::PartialCaveatInfo {
                missing_required_context: vec!["ip".to_owned()],
            }),
            caveat_name: "ip_allowed".to_owned(),
        };
        assert_eq!(
            caveat_text(&caveat),
            r#"caveat ip_allowed(ip == allowed) = missing context: ip with {"allowed":"10.0.0.1"}"#
        );
    }
}
