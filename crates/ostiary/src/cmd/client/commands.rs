//! The client commands themselves: their arguments, the calls they make and how they print
//! the answers (human-readable text, or JSON with `--json`).

use std::io::{BufRead as _, Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use ostiary_proto::authzed::api::v1 as pb;
use ostiary_types::{ObjectRef, Relationship, SubjectRef};
use serde_json::{Map, Value, json};

mod admin;
mod explain;

pub(crate) use admin::{AuditCommand, TenantCommand, TokenCommand, audit, tenant, token};
pub(crate) use explain::explain;

use super::{
    ConnectionArgs, block_on, json_to_struct, object_text, object_to_pb, parse_consistency,
    parse_context, parse_object, parse_relationship, parse_subject, relationship_text,
    relationship_to_pb, rpc_error, subject_text, subject_to_pb, token_text,
};

/// Arguments of `ostiary check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The resource (`document:readme`).
    #[arg(value_parser = parse_object, value_name = "RESOURCE")]
    resource: ObjectRef,
    /// The permission or relation to check.
    #[arg(value_name = "PERMISSION")]
    permission: String,
    /// The subject (`user:alice`, `group:eng#member`).
    #[arg(value_parser = parse_subject, value_name = "SUBJECT")]
    subject: SubjectRef,
    /// Caveat context, a JSON object (`{"ip":"10.0.0.1"}`).
    #[arg(long, visible_alias = "context", value_parser = parse_context, value_name = "JSON")]
    caveat_context: Option<Map<String, Value>>,
    /// `minimize-latency` (default), `full`, `at-least:TOKEN` or `at-exact:TOKEN`.
    #[arg(long, value_parser = parse_consistency, value_name = "CONSISTENCY")]
    consistency: Option<pb::Consistency>,
    /// Exit with 1 when the subject has no permission (and 3 when the answer is caveated).
    #[arg(long)]
    error_on_no_permission: bool,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// `ostiary rel ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum RelCommand {
    /// Create relationships (fails if any exists already).
    Create(RelWriteArgs),
    /// Create or update relationships.
    Touch(RelWriteArgs),
    /// Delete relationships (missing ones are ignored).
    Delete(RelWriteArgs),
    /// Read the relationships matching a filter.
    Read(RelReadArgs),
}

/// Arguments of `ostiary rel create|touch|delete`.
#[derive(Debug, Args)]
pub(crate) struct RelWriteArgs {
    /// Relationships in text form (`document:readme#viewer@user:alice[caveat:{...}]`);
    /// none, or `-`, reads them from standard input, one a line.
    #[arg(value_name = "RELATIONSHIP")]
    relationships: Vec<String>,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary rel read`.
#[derive(Debug, Args)]
pub(crate) struct RelReadArgs {
    /// The resource type, or `type:id`.
    #[arg(value_name = "RESOURCE")]
    resource: String,
    /// Only this relation.
    #[arg(value_name = "RELATION")]
    relation: Option<String>,
    /// Only this subject type, `type:id` or `type:id#relation`.
    #[arg(value_name = "SUBJECT")]
    subject: Option<String>,
    /// `minimize-latency` (default), `full`, `at-least:TOKEN` or `at-exact:TOKEN`.
    #[arg(long, value_parser = parse_consistency, value_name = "CONSISTENCY")]
    consistency: Option<pb::Consistency>,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary schema read`.
#[derive(Debug, Args)]
pub(crate) struct SchemaReadArgs {
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary schema write`.
#[derive(Debug, Args)]
pub(crate) struct SchemaWriteArgs {
    /// The schema file (`-` reads standard input).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary schema diff`.
#[derive(Debug, Args)]
pub(crate) struct SchemaDiffArgs {
    /// The schema file to compare the server's schema with (`-` reads standard input).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// `minimize-latency` (default), `full`, `at-least:TOKEN` or `at-exact:TOKEN`.
    #[arg(long, value_parser = parse_consistency, value_name = "CONSISTENCY")]
    consistency: Option<pb::Consistency>,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary lookup-resources`.
#[derive(Debug, Args)]
pub(crate) struct LookupResourcesArgs {
    /// The resource type.
    #[arg(value_name = "RESOURCE_TYPE")]
    resource_type: String,
    /// The permission.
    #[arg(value_name = "PERMISSION")]
    permission: String,
    /// The subject (`user:alice`).
    #[arg(value_parser = parse_subject, value_name = "SUBJECT")]
    subject: SubjectRef,
    /// Caveat context, a JSON object.
    #[arg(long, value_parser = parse_context, value_name = "JSON")]
    caveat_context: Option<Map<String, Value>>,
    /// `minimize-latency` (default), `full`, `at-least:TOKEN` or `at-exact:TOKEN`.
    #[arg(long, value_parser = parse_consistency, value_name = "CONSISTENCY")]
    consistency: Option<pb::Consistency>,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary lookup-subjects`.
#[derive(Debug, Args)]
pub(crate) struct LookupSubjectsArgs {
    /// The resource (`document:readme`).
    #[arg(value_parser = parse_object, value_name = "RESOURCE")]
    resource: ObjectRef,
    /// The permission.
    #[arg(value_name = "PERMISSION")]
    permission: String,
    /// The subject type, optionally with a relation (`group#member`).
    #[arg(value_name = "SUBJECT_TYPE")]
    subject_type: String,
    /// Caveat context, a JSON object.
    #[arg(long, value_parser = parse_context, value_name = "JSON")]
    caveat_context: Option<Map<String, Value>>,
    /// `minimize-latency` (default), `full`, `at-least:TOKEN` or `at-exact:TOKEN`.
    #[arg(long, value_parser = parse_consistency, value_name = "CONSISTENCY")]
    consistency: Option<pb::Consistency>,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary expand`.
#[derive(Debug, Args)]
pub(crate) struct ExpandArgs {
    /// The resource (`document:readme`).
    #[arg(value_parser = parse_object, value_name = "RESOURCE")]
    resource: ObjectRef,
    /// The permission or relation.
    #[arg(value_name = "PERMISSION")]
    permission: String,
    /// `minimize-latency` (default), `full`, `at-least:TOKEN` or `at-exact:TOKEN`.
    #[arg(long, value_parser = parse_consistency, value_name = "CONSISTENCY")]
    consistency: Option<pb::Consistency>,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary watch`.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Only changes to these resource types.
    #[arg(value_name = "RESOURCE_TYPE")]
    object_types: Vec<String>,
    /// Start after this revision token instead of now.
    #[arg(long, value_name = "TOKEN")]
    revision: Option<String>,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Prints one line on standard output.
fn out(line: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    Ok(())
}

impl CheckArgs {
    /// The CheckPermission request these arguments describe.
    fn request(&self, with_tracing: bool) -> pb::CheckPermissionRequest {
        pb::CheckPermissionRequest {
            consistency: self.consistency.clone(),
            resource: Some(object_to_pb(&self.resource)),
            permission: self.permission.clone(),
            subject: Some(subject_to_pb(&self.subject)),
            context: self.caveat_context.as_ref().map(json_to_struct),
            with_tracing,
        }
    }

    /// The exit status for an answer: success, unless `--error-on-no-permission` asks for
    /// 1 (no permission) or 3 (caveated).
    fn exit_code(&self, code: u8) -> ExitCode {
        if self.error_on_no_permission {
            ExitCode::from(code)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// The answer's word (`true`, `caveated`, `false`) and its `--error-on-no-permission` code.
fn answer_of(response: &pb::CheckPermissionResponse) -> (&'static str, u8) {
    use pb::check_permission_response::Permissionship;
    match response.permissionship() {
        Permissionship::HasPermission => ("true", 0),
        Permissionship::ConditionalPermission => ("caveated", 3),
        Permissionship::NoPermission | Permissionship::Unspecified => ("false", 1),
    }
}

/// `ostiary check`.
pub(crate) fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let mut clients = args.conn.connect().await?;
        let response = clients
            .permissions
            .check_permission(args.request(false))
            .await
            .map_err(rpc_error)?
            .into_inner();
        let (answer, code) = answer_of(&response);
        let missing = response
            .partial_caveat_info
            .map(|info| info.missing_required_context)
            .unwrap_or_default();
        if args.conn.json {
            out(&json!({
                "permissionship": answer,
                "missing_context": missing,
                "checked_at": token_text(response.checked_at.as_ref()),
            })
            .to_string())?;
        } else if missing.is_empty() {
            out(answer)?;
        } else {
            out(&format!(
                "{answer} (missing context: {})",
                missing.join(", ")
            ))?;
        }
        Ok(args.exit_code(code))
    })
}

/// Reads relationship texts from the arguments, or standard input when there are none or the
/// only one is `-`; blank lines and `//` comments are skipped.
fn relationship_inputs(args: &[String]) -> anyhow::Result<Vec<Relationship>> {
    let lines: Vec<String> = if args.is_empty() || args == ["-"] {
        let mut lines = Vec::new();
        for line in std::io::stdin().lock().lines() {
            lines.push(line.context("cannot read standard input")?);
        }
        lines
    } else {
        args.to_vec()
    };
    let mut rels = Vec::new();
    for line in &lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        rels.push(parse_relationship(line).map_err(|err| anyhow::anyhow!("{err}"))?);
    }
    if rels.is_empty() {
        bail!("no relationships given");
    }
    Ok(rels)
}

/// `ostiary rel ...`.
pub(crate) fn rel(command: RelCommand) -> anyhow::Result<ExitCode> {
    use pb::relationship_update::Operation;
    match command {
        RelCommand::Create(args) => rel_write(args, Operation::Create),
        RelCommand::Touch(args) => rel_write(args, Operation::Touch),
        RelCommand::Delete(args) => rel_write(args, Operation::Delete),
        RelCommand::Read(args) => rel_read(args),
    }
}

fn rel_write(
    args: RelWriteArgs,
    operation: pb::relationship_update::Operation,
) -> anyhow::Result<ExitCode> {
    let rels = relationship_inputs(&args.relationships)?;
    block_on(async move {
        let mut clients = args.conn.connect().await?;
        let updates = rels
            .iter()
            .map(|rel| pb::RelationshipUpdate {
                operation: operation.into(),
                relationship: Some(relationship_to_pb(rel)),
            })
            .collect();
        let response = clients
            .permissions
            .write_relationships(pb::WriteRelationshipsRequest {
                updates,
                ..Default::default()
            })
            .await
            .map_err(rpc_error)?
            .into_inner();
        let token = token_text(response.written_at.as_ref());
        if args.conn.json {
            out(&json!({"written_at": token, "count": rels.len()}).to_string())?;
        } else {
            out(&token)?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn rel_read(args: RelReadArgs) -> anyhow::Result<ExitCode> {
    let (resource_type, resource_id) = match args.resource.split_once(':') {
        Some((kind, id)) => (kind.to_owned(), id.to_owned()),
        None => (args.resource.clone(), String::new()),
    };
    let subject_filter = args.subject.as_deref().map(|subject| {
        let (object, relation) = match subject.split_once('#') {
            Some((object, relation)) => (object, Some(relation)),
            None => (subject, None),
        };
        let (subject_type, subject_id) = object.split_once(':').unwrap_or((object, ""));
        pb::SubjectFilter {
            subject_type: subject_type.to_owned(),
            optional_subject_id: subject_id.to_owned(),
            optional_relation: relation.map(|relation| pb::subject_filter::RelationFilter {
                relation: relation.to_owned(),
            }),
        }
    });
    let filter = pb::RelationshipFilter {
        resource_type,
        optional_resource_id: resource_id,
        optional_resource_id_prefix: String::new(),
        optional_relation: args.relation.clone().unwrap_or_default(),
        optional_subject_filter: subject_filter,
    };
    block_on(async move {
        let mut clients = args.conn.connect().await?;
        let mut stream = clients
            .permissions
            .read_relationships(pb::ReadRelationshipsRequest {
                consistency: args.consistency,
                relationship_filter: Some(filter),
                optional_limit: 0,
                optional_cursor: None,
            })
            .await
            .map_err(rpc_error)?
            .into_inner();
        while let Some(response) = stream.message().await.map_err(rpc_error)? {
            let Some(rel) = response.relationship else {
                continue;
            };
            let text = relationship_text(&rel);
            if args.conn.json {
                out(&json!({"relationship": text}).to_string())?;
            } else {
                out(&text)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn read_file_or_stdin(path: &std::path::Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))
    }
}

/// `ostiary schema read`.
pub(crate) fn schema_read(args: SchemaReadArgs) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let mut clients = args.conn.connect().await?;
        let response = clients
            .schema
            .read_schema(pb::ReadSchemaRequest {})
            .await
            .map_err(rpc_error)?
            .into_inner();
        if args.conn.json {
            out(&json!({
                "schema_text": response.schema_text,
                "read_at": token_text(response.read_at.as_ref()),
            })
            .to_string())?;
        } else {
            out(response.schema_text.trim_end())?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `ostiary schema write`.
pub(crate) fn schema_write(args: SchemaWriteArgs) -> anyhow::Result<ExitCode> {
    let schema = read_file_or_stdin(&args.file)?;
    block_on(async move {
        let mut clients = args.conn.connect().await?;
        let response = clients
            .schema
            .write_schema(pb::WriteSchemaRequest { schema })
            .await
            .map_err(rpc_error)?
            .into_inner();
        let token = token_text(response.written_at.as_ref());
        if args.conn.json {
            out(&json!({"written_at": token}).to_string())?;
        } else {
            out(&token)?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// One schema difference as `(kind, item)`, e.g. `("relation added", "document#viewer")`.
fn describe_diff(diff: &pb::reflection_schema_diff::Diff) -> (&'static str, String) {
    use pb::reflection_schema_diff::Diff;
    let relation = |r: &pb::ReflectionRelation| format!("{}#{}", r.parent_definition_name, r.name);
    let permission =
        |p: &pb::ReflectionPermission| format!("{}#{}", p.parent_definition_name, p.name);
    let parameter =
        |p: &pb::ReflectionCaveatParameter| format!("{}({})", p.parent_caveat_name, p.name);
    let subject_change = |c: &pb::ReflectionRelationSubjectTypeChange| {
        let relation_name = c.relation.as_ref().map(relation).unwrap_or_default();
        let subject = c
            .changed_subject_type
            .as_ref()
            .map(|t| t.subject_definition_name.clone())
            .unwrap_or_default();
        format!("{relation_name}: {subject}")
    };
    match diff {
        Diff::DefinitionAdded(d) => ("definition added", d.name.clone()),
        Diff::DefinitionRemoved(d) => ("definition removed", d.name.clone()),
        Diff::DefinitionDocCommentChanged(d) => ("definition comment changed", d.name.clone()),
        Diff::RelationAdded(r) => ("relation added", relation(r)),
        Diff::RelationRemoved(r) => ("relation removed", relation(r)),
        Diff::RelationDocCommentChanged(r) => ("relation comment changed", relation(r)),
        Diff::RelationSubjectTypeAdded(c) => ("subject type added", subject_change(c)),
        Diff::RelationSubjectTypeRemoved(c) => ("subject type removed", subject_change(c)),
        Diff::PermissionAdded(p) => ("permission added", permission(p)),
        Diff::PermissionRemoved(p) => ("permission removed", permission(p)),
        Diff::PermissionDocCommentChanged(p) => ("permission comment changed", permission(p)),
        Diff::PermissionExprChanged(p) => ("permission expression changed", permission(p)),
        Diff::CaveatAdded(c) => ("caveat added", c.name.clone()),
        Diff::CaveatRemoved(c) => ("caveat removed", c.name.clone()),
        Diff::CaveatDocCommentChanged(c) => ("caveat comment changed", c.name.clone()),
        Diff::CaveatExprChanged(c) => ("caveat expression changed", c.name.clone()),
        Diff::CaveatParameterAdded(p) => ("caveat parameter added", parameter(p)),
        Diff::CaveatParameterRemoved(p) => ("caveat parameter removed", parameter(p)),
        Diff::CaveatParameterTypeChanged(c) => (
            "caveat parameter type changed",
            c.parameter.as_ref().map(parameter).unwrap_or_default(),
        ),
    }
}

/// `ostiary schema diff`.
pub(crate) fn schema_diff(args: SchemaDiffArgs) -> anyhow::Result<ExitCode> {
    let comparison_schema = read_file_or_stdin(&args.file)?;
    block_on(async move {
        let mut clients = args.conn.connect().await?;
        let response = clients
            .schema
            .diff_schema(pb::DiffSchemaRequest {
                consistency: args.consistency,
                comparison_schema,
            })
            .await
            .map_err(rpc_error)?
            .into_inner();
        let diffs: Vec<(&str, String)> = response
            .diffs
            .iter()
            .filter_map(|diff| diff.diff.as_ref().map(describe_diff))
            .collect();
        if args.conn.json {
            let items: Vec<Value> = diffs
                .iter()
                .map(|(kind, item)| json!({"change": kind, "item": item}))
                .collect();
            out(&Value::Array(items).to_string())?;
        } else if diffs.is_empty() {
            out("no differences")?;
        } else {
            for (kind, item) in &diffs {
                out(&format!("{kind}: {item}"))?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The text of a lookup answer's permissionship.
fn lookup_permissionship(value: i32, missing: &[String]) -> String {
    match pb::LookupPermissionship::try_from(value) {
        Ok(pb::LookupPermissionship::ConditionalPermission) if missing.is_empty() => {
            "caveated".to_owned()
        }
        Ok(pb::LookupPermissionship::ConditionalPermission) => {
            format!("caveated (missing context: {})", missing.join(", "))
        }
        _ => String::new(),
    }
}

/// `ostiary lookup-resources`.
pub(crate) fn lookup_resources(args: LookupResourcesArgs) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let mut clients = args.conn.connect().await?;
        let mut stream = clients
            .permissions
            .lookup_resources(pb::LookupResourcesRequest {
                consistency: args.consistency,
                resource_object_type: args.resource_type.clone(),
                permission: args.permission.clone(),
                subject: Some(subject_to_pb(&args.subject)),
                context: args.caveat_context.as_ref().map(json_to_struct),
                ..Default::default()
            })
            .await
            .map_err(rpc_error)?
            .into_inner();
        while let Some(response) = stream.message().await.map_err(rpc_error)? {
            let missing = response
                .partial_caveat_info
                .map(|info| info.missing_required_context)
                .unwrap_or_default();
            let caveated = lookup_permissionship(response.permissionship, &missing);
            let resource = format!("{}:{}", args.resource_type, response.resource_object_id);
            if args.conn.json {
                out(&json!({
                    "resource": resource,
                    "caveated": !caveated.is_empty(),
                    "missing_context": missing,
                })
                .to_string())?;
            } else if caveated.is_empty() {
                out(&resource)?;
            } else {
                out(&format!("{resource} {caveated}"))?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `ostiary lookup-subjects`.
pub(crate) fn lookup_subjects(args: LookupSubjectsArgs) -> anyhow::Result<ExitCode> {
    let (subject_type, subject_relation) = match args.subject_type.split_once('#') {
        Some((kind, relation)) => (kind.to_owned(), relation.to_owned()),
        None => (args.subject_type.clone(), String::new()),
    };
    block_on(async move {
        let mut clients = args.conn.connect().await?;
        let mut stream = clients
            .permissions
            .lookup_subjects(pb::LookupSubjectsRequest {
                consistency: args.consistency,
                resource: Some(object_to_pb(&args.resource)),
                permission: args.permission.clone(),
                subject_object_type: subject_type.clone(),
                optional_subject_relation: subject_relation.clone(),
                context: args.caveat_context.as_ref().map(json_to_struct),
                ..Default::default()
            })
            .await
            .map_err(rpc_error)?
            .into_inner();
        let suffix = if subject_relation.is_empty() {
            String::new()
        } else {
            format!("#{subject_relation}")
        };
        while let Some(response) = stream.message().await.map_err(rpc_error)? {
            let Some(subject) = response.subject else {
                continue;
            };
            let missing = subject
                .partial_caveat_info
                .map(|info| info.missing_required_context)
                .unwrap_or_default();
            let caveated = lookup_permissionship(subject.permissionship, &missing);
            let text = format!("{subject_type}:{}{suffix}", subject.subject_object_id);
            let excluded: Vec<String> = response
                .excluded_subjects
                .iter()
                .map(|ex| format!("{subject_type}:{}", ex.subject_object_id))
                .collect();
            if args.conn.json {
                out(&json!({
                    "subject": text,
                    "caveated": !caveated.is_empty(),
                    "missing_context": missing,
                    "excluded": excluded,
                })
                .to_string())?;
            } else {
                let mut line = text;
                if !excluded.is_empty() {
                    line.push_str(&format!(" - {{{}}}", excluded.join(", ")));
                }
                if !caveated.is_empty() {
                    line.push(' ');
                    line.push_str(&caveated);
                }
                out(&line)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The name of a set operation.
fn operation_name(value: i32) -> &'static str {
    use pb::algebraic_subject_set::Operation;
    match Operation::try_from(value) {
        Ok(Operation::Union) => "union",
        Ok(Operation::Intersection) => "intersection",
        Ok(Operation::Exclusion) => "exclusion",
        _ => "unknown",
    }
}

/// Renders an expand tree as indented lines: each node is `object#relation` (with its set
/// operation), and leaves list their subjects one level deeper.
pub(crate) fn render_tree(tree: &pb::PermissionRelationshipTree, depth: usize, out: &mut String) {
    use pb::permission_relationship_tree::TreeType;
    let indent = "  ".repeat(depth);
    let label = format!(
        "{}#{}",
        object_text(tree.expanded_object.as_ref()),
        tree.expanded_relation
    );
    match &tree.tree_type {
        Some(TreeType::Intermediate(set)) => {
            out.push_str(&format!(
                "{indent}{label} ({})\n",
                operation_name(set.operation)
            ));
            for child in &set.children {
                render_tree(child, depth + 1, out);
            }
        }
        Some(TreeType::Leaf(leaf)) => {
            out.push_str(&format!("{indent}{label}\n"));
            for subject in &leaf.subjects {
                out.push_str(&format!("{indent}  {}\n", subject_text(Some(subject))));
            }
        }
        None => out.push_str(&format!("{indent}{label}\n")),
    }
}

/// An expand tree as JSON.
fn tree_json(tree: &pb::PermissionRelationshipTree) -> Value {
    use pb::permission_relationship_tree::TreeType;
    let node = format!(
        "{}#{}",
        object_text(tree.expanded_object.as_ref()),
        tree.expanded_relation
    );
    match &tree.tree_type {
        Some(TreeType::Intermediate(set)) => json!({
            "node": node,
            "operation": operation_name(set.operation),
            "children": set.children.iter().map(tree_json).collect::<Vec<_>>(),
        }),
        Some(TreeType::Leaf(leaf)) => json!({
            "node": node,
            "subjects": leaf.subjects.iter().map(|s| subject_text(Some(s))).collect::<Vec<_>>(),
        }),
        None => json!({"node": node}),
    }
}

/// `ostiary expand`.
pub(crate) fn expand(args: ExpandArgs) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let mut clients = args.conn.connect().await?;
        let response = clients
            .permissions
            .expand_permission_tree(pb::ExpandPermissionTreeRequest {
                consistency: args.consistency,
                resource: Some(object_to_pb(&args.resource)),
                permission: args.permission.clone(),
            })
            .await
            .map_err(rpc_error)?
            .into_inner();
        let Some(tree) = response.tree_root else {
            bail!("the server sent no tree");
        };
        if args.conn.json {
            out(&json!({
                "tree": tree_json(&tree),
                "expanded_at": token_text(response.expanded_at.as_ref()),
            })
            .to_string())?;
        } else {
            let mut text = String::new();
            render_tree(&tree, 0, &mut text);
            out(text.trim_end())?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The name of an update operation.
fn update_name(value: i32) -> &'static str {
    use pb::relationship_update::Operation;
    match Operation::try_from(value) {
        Ok(Operation::Create) => "CREATE",
        Ok(Operation::Touch) => "TOUCH",
        Ok(Operation::Delete) => "DELETE",
        _ => "UNKNOWN",
    }
}

/// `ostiary watch`: prints each change as it happens, until interrupted.
pub(crate) fn watch(args: WatchArgs) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let mut clients = args.conn.connect().await?;
        let mut stream = clients
            .watch
            .watch(pb::WatchRequest {
                optional_object_types: args.object_types.clone(),
                optional_start_cursor: args.revision.clone().map(|token| pb::ZedToken { token }),
                ..Default::default()
            })
            .await
            .map_err(rpc_error)?
            .into_inner();
        while let Some(response) = stream.message().await.map_err(rpc_error)? {
            let token = token_text(response.changes_through.as_ref());
            for update in &response.updates {
                let operation = update_name(update.operation);
                let text = update
                    .relationship
                    .as_ref()
                    .map(relationship_text)
                    .unwrap_or_default();
                if args.conn.json {
                    out(&json!({
                        "operation": operation,
                        "relationship": text,
                        "revision": token,
                    })
                    .to_string())?;
                } else {
                    out(&format!("{operation} {text}"))?;
                }
            }
            if response.schema_updated && !args.conn.json {
                out("SCHEMA updated")?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
