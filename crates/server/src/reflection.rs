//! Schema reflection for ReflectSchema and DiffSchema: the wire form of a compiled schema
//! (definitions, relations with their subject types, permissions, caveats with typed
//! parameters, doc comments), SpiceDB's `optional_filters`, and the diff between two schemas
//! with the diff kinds of `ReflectionSchemaDiff`, in SpiceDB's order.

use std::collections::BTreeMap;

use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::ErrorReason;
use ostiary_proto::authzed::api::v1::reflection_schema_diff::Diff;
use ostiary_proto::authzed::api::v1::reflection_type_reference::Typeref;
use ostiary_schema::CompiledSchema;
use ostiary_schema::ir::{
    AllowedSubject, AllowedSubjectType, Caveat, Definition, Relation, Rewrite,
};

use crate::status::ApiError;

/// The request's `optional_filters`, validated as SpiceDB does. Every name filter is a
/// prefix match; with no filters everything is reflected.
#[derive(Debug)]
pub(crate) struct SchemaFilters<'a> {
    filters: &'a [pb::ReflectionSchemaFilter],
}

impl<'a> SchemaFilters<'a> {
    /// Validates the filters: a definition filter excludes a caveat filter, and a relation
    /// or permission filter needs a definition filter and excludes the other.
    pub(crate) fn new(filters: &'a [pb::ReflectionSchemaFilter]) -> Result<Self, ApiError> {
        for (idx, filter) in filters.iter().enumerate() {
            let invalid = |message: &str| {
                ApiError::invalid_with(
                    ErrorReason::InvalidFilter,
                    format!("invalid `optional_filters[{idx}]`: {message}"),
                )
            };
            let definition = !filter.optional_definition_name_filter.is_empty();
            if definition && !filter.optional_caveat_name_filter.is_empty() {
                return Err(invalid("cannot filter by both definition and caveat name"));
            }
            if !filter.optional_relation_name_filter.is_empty() {
                if !definition {
                    return Err(invalid(
                        "relation name match requires definition name match",
                    ));
                }
                if !filter.optional_permission_name_filter.is_empty() {
                    return Err(invalid(
                        "cannot filter by both relation and permission name",
                    ));
                }
            }
            if !filter.optional_permission_name_filter.is_empty() && !definition {
                return Err(invalid(
                    "permission name match requires definition name match",
                ));
            }
        }
        Ok(Self { filters })
    }

    /// Whether any definition can pass.
    fn has_definitions(&self) -> bool {
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|filter| !filter.optional_definition_name_filter.is_empty())
    }

    /// Whether any caveat can pass.
    fn has_caveats(&self) -> bool {
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|filter| !filter.optional_caveat_name_filter.is_empty())
    }

    /// Whether the definition `name` passes.
    fn has_definition(&self, name: &str) -> bool {
        self.matches(
            |filter| &filter.optional_definition_name_filter,
            |filter| name.starts_with(filter.optional_definition_name_filter.as_str()),
        )
    }

    /// Whether the caveat `name` passes.
    fn has_caveat(&self, name: &str) -> bool {
        self.matches(
            |filter| &filter.optional_caveat_name_filter,
            |filter| name.starts_with(filter.optional_caveat_name_filter.as_str()),
        )
    }

    /// Whether the relation `definition#name` passes.
    fn has_relation(&self, definition: &str, name: &str) -> bool {
        self.matches(
            |filter| &filter.optional_relation_name_filter,
            |filter| {
                name.starts_with(filter.optional_relation_name_filter.as_str())
                    && definition.starts_with(filter.optional_definition_name_filter.as_str())
            },
        )
    }

    /// Whether the permission `definition#name` passes.
    fn has_permission(&self, definition: &str, name: &str) -> bool {
        self.matches(
            |filter| &filter.optional_permission_name_filter,
            |filter| {
                name.starts_with(filter.optional_permission_name_filter.as_str())
                    && definition.starts_with(filter.optional_definition_name_filter.as_str())
            },
        )
    }

    /// SpiceDB's rule: filters that do not set the field in question are ignored; if none
    /// sets it, everything passes; otherwise one of them must match.
    fn matches(
        &self,
        field: impl Fn(&pb::ReflectionSchemaFilter) -> &String,
        is_match: impl Fn(&pb::ReflectionSchemaFilter) -> bool,
    ) -> bool {
        let mut relevant = self
            .filters
            .iter()
            .filter(|filter| !field(filter).is_empty())
            .peekable();
        if relevant.peek().is_none() {
            return true;
        }
        relevant.any(is_match)
    }
}

/// Joins the doc comments of an item the way SpiceDB reports them.
fn comment(comments: &[String]) -> String {
    comments.join("\n")
}

/// The wire form of an allowed subject type.
///
/// SpiceDB marks a plain subject type by setting the `is_terminal_subject` member of the
/// oneof to its default (`false`); clients test which member is set, so this does the same.
fn type_to_pb(
    schema: &CompiledSchema,
    allowed: &AllowedSubjectType,
) -> pb::ReflectionTypeReference {
    let typeref = match allowed.subject {
        AllowedSubject::Ellipsis => Typeref::IsTerminalSubject(false),
        AllowedSubject::Wildcard => Typeref::IsPublicWildcard(true),
        AllowedSubject::Relation(id) => {
            Typeref::OptionalRelationName(schema.relation(allowed.definition, id).name.clone())
        }
    };
    pb::ReflectionTypeReference {
        subject_definition_name: allowed.definition_name.clone(),
        optional_caveat_name: allowed
            .caveat
            .map(|id| schema.caveat(id).name.clone())
            .unwrap_or_default(),
        typeref: Some(typeref),
    }
}

/// The wire form of a relation.
fn relation_to_pb(
    schema: &CompiledSchema,
    definition: &Definition,
    relation: &Relation,
) -> pb::ReflectionRelation {
    pb::ReflectionRelation {
        name: relation.name.clone(),
        comment: comment(&relation.comments),
        parent_definition_name: definition.name.clone(),
        subject_types: relation
            .allowed_types()
            .iter()
            .map(|allowed| type_to_pb(schema, allowed))
            .collect(),
    }
}

/// The wire form of a permission.
fn permission_to_pb(definition: &Definition, relation: &Relation) -> pb::ReflectionPermission {
    pb::ReflectionPermission {
        name: relation.name.clone(),
        comment: comment(&relation.comments),
        parent_definition_name: definition.name.clone(),
    }
}

/// The wire form of a definition, its relations and permissions in source order.
fn definition_to_pb(
    schema: &CompiledSchema,
    definition: &Definition,
    filters: Option<&SchemaFilters<'_>>,
) -> pb::ReflectionDefinition {
    let mut relations = Vec::new();
    let mut permissions = Vec::new();
    for relation in &definition.relations {
        if relation.is_permission() {
            if filters
                .is_none_or(|filters| filters.has_permission(&definition.name, &relation.name))
            {
                permissions.push(permission_to_pb(definition, relation));
            }
        } else if filters
            .is_none_or(|filters| filters.has_relation(&definition.name, &relation.name))
        {
            relations.push(relation_to_pb(schema, definition, relation));
        }
    }
    pb::ReflectionDefinition {
        name: definition.name.clone(),
        comment: comment(&definition.comments),
        relations,
        permissions,
    }
}

/// The wire form of one caveat parameter.
fn parameter_to_pb(caveat: &Caveat, name: &str) -> Option<pb::ReflectionCaveatParameter> {
    caveat
        .param_type(name)
        .map(|param_type| pb::ReflectionCaveatParameter {
            name: name.to_owned(),
            r#type: param_type.to_string(),
            parent_caveat_name: caveat.name.clone(),
        })
}

/// The wire form of a caveat; parameters sorted by name, as SpiceDB lists them.
fn caveat_to_pb(caveat: &Caveat) -> pb::ReflectionCaveat {
    let mut names: Vec<&str> = caveat
        .params
        .iter()
        .map(|param| param.name.as_str())
        .collect();
    names.sort_unstable();
    pb::ReflectionCaveat {
        name: caveat.name.clone(),
        comment: comment(&caveat.comments),
        parameters: names
            .into_iter()
            .filter_map(|name| parameter_to_pb(caveat, name))
            .collect(),
        expression: caveat.expression.source.trim().to_owned(),
    }
}

/// Reflects `schema` (absent: no schema stored, an empty reflection as SpiceDB gives),
/// definitions and caveats sorted by name.
pub(crate) fn reflect(
    schema: Option<&CompiledSchema>,
    filters: &SchemaFilters<'_>,
) -> (Vec<pb::ReflectionDefinition>, Vec<pb::ReflectionCaveat>) {
    let Some(schema) = schema else {
        return (Vec::new(), Vec::new());
    };
    let mut definitions: Vec<_> = if filters.has_definitions() {
        schema
            .definitions
            .iter()
            .filter(|definition| filters.has_definition(&definition.name))
            .map(|definition| definition_to_pb(schema, definition, Some(filters)))
            .collect()
    } else {
        Vec::new()
    };
    definitions.sort_by(|left, right| left.name.cmp(&right.name));
    let mut caveats: Vec<_> = if filters.has_caveats() {
        schema
            .caveats
            .iter()
            .filter(|caveat| filters.has_caveat(&caveat.name))
            .map(caveat_to_pb)
            .collect()
    } else {
        Vec::new()
    };
    caveats.sort_by(|left, right| left.name.cmp(&right.name));
    (definitions, caveats)
}

/// A name-based rendering of a rewrite, so that two schemas' permissions compare equal when
/// they compute the same expression whatever the relation ids.
fn rewrite_key(definition: &Definition, rewrite: &Rewrite, out: &mut String) {
    let name = |id: ostiary_schema::ir::RelationId| {
        definition
            .relations
            .get(id.index())
            .map_or("?", |relation| relation.name.as_str())
    };
    match rewrite {
        Rewrite::Union(children) | Rewrite::Intersection(children) => {
            out.push_str(if matches!(rewrite, Rewrite::Union(_)) {
                "union("
            } else {
                "intersection("
            });
            for child in children {
                rewrite_key(definition, child, out);
                out.push(',');
            }
            out.push(')');
        }
        Rewrite::Exclusion(base, excluded) => {
            out.push_str("exclusion(");
            rewrite_key(definition, base, out);
            out.push(',');
            rewrite_key(definition, excluded, out);
            out.push(')');
        }
        Rewrite::ComputedUserset(id) => {
            out.push_str("computed(");
            out.push_str(name(*id));
            out.push(')');
        }
        Rewrite::TupleToUserset(arrow) => {
            out.push_str(&format!(
                "arrow({},{},{:?})",
                name(arrow.tupleset),
                arrow.computed,
                arrow.function
            ));
        }
        Rewrite::Nil => out.push_str("nil"),
        Rewrite::This => out.push_str("self"),
    }
}

/// The rendering of a permission's expression.
fn permission_key(definition: &Definition, relation: &Relation) -> String {
    let mut out = String::new();
    if let Some(rewrite) = relation.rewrite() {
        rewrite_key(definition, rewrite, &mut out);
    }
    out
}

/// The source form of an allowed type (`user`, `user:*`, `group#member`, with its caveat
/// and expiration traits), which identifies it across schemas as SpiceDB's diff does.
fn type_key(schema: &CompiledSchema, allowed: &AllowedSubjectType) -> String {
    let mut key = allowed.definition_name.clone();
    match allowed.subject {
        AllowedSubject::Ellipsis => {}
        AllowedSubject::Wildcard => key.push_str(":*"),
        AllowedSubject::Relation(id) => {
            key.push('#');
            key.push_str(&schema.relation(allowed.definition, id).name);
        }
    }
    if let Some(caveat) = allowed.caveat {
        key.push_str(" with ");
        key.push_str(&schema.caveat(caveat).name);
    }
    if allowed.expiration {
        key.push_str(" and expiration");
    }
    key
}

/// Wraps one diff entry.
fn entry(diff: Diff) -> pb::ReflectionSchemaDiff {
    pb::ReflectionSchemaDiff { diff: Some(diff) }
}

/// The relations (or permissions, `permissions == true`) of a definition by name.
fn members(definition: &Definition, permissions: bool) -> BTreeMap<&str, &Relation> {
    definition
        .relations
        .iter()
        .filter(|relation| relation.is_permission() == permissions)
        .map(|relation| (relation.name.as_str(), relation))
        .collect()
}

/// The changes inside one definition present in both schemas, in SpiceDB's order: the
/// definition's comment, removed and added relations, removed and added permissions, then
/// per shared permission its expression and comment, then per shared relation its comment
/// and removed and added subject types.
fn diff_definition(
    existing_schema: &CompiledSchema,
    existing: &Definition,
    comparison_schema: &CompiledSchema,
    comparison: &Definition,
    out: &mut Vec<pb::ReflectionSchemaDiff>,
) {
    if existing.comments != comparison.comments {
        out.push(entry(Diff::DefinitionDocCommentChanged(definition_to_pb(
            comparison_schema,
            comparison,
            None,
        ))));
    }
    let old_relations = members(existing, false);
    let new_relations = members(comparison, false);
    let old_permissions = members(existing, true);
    let new_permissions = members(comparison, true);
    for (name, relation) in &old_relations {
        if !new_relations.contains_key(name) {
            out.push(entry(Diff::RelationRemoved(relation_to_pb(
                existing_schema,
                existing,
                relation,
            ))));
        }
    }
    for (name, relation) in &new_relations {
        if !old_relations.contains_key(name) {
            out.push(entry(Diff::RelationAdded(relation_to_pb(
                comparison_schema,
                comparison,
                relation,
            ))));
        }
    }
    for (name, permission) in &old_permissions {
        if !new_permissions.contains_key(name) {
            out.push(entry(Diff::PermissionRemoved(permission_to_pb(
                existing, permission,
            ))));
        }
    }
    for (name, permission) in &new_permissions {
        if !old_permissions.contains_key(name) {
            out.push(entry(Diff::PermissionAdded(permission_to_pb(
                comparison, permission,
            ))));
        }
    }
    for (name, new_permission) in &new_permissions {
        let Some(old_permission) = old_permissions.get(name) else {
            continue;
        };
        if permission_key(existing, old_permission) != permission_key(comparison, new_permission) {
            out.push(entry(Diff::PermissionExprChanged(permission_to_pb(
                comparison,
                new_permission,
            ))));
        }
        if old_permission.comments != new_permission.comments {
            out.push(entry(Diff::PermissionDocCommentChanged(permission_to_pb(
                comparison,
                new_permission,
            ))));
        }
    }
    for (name, new_relation) in &new_relations {
        let Some(old_relation) = old_relations.get(name) else {
            continue;
        };
        let relation_pb = || relation_to_pb(comparison_schema, comparison, new_relation);
        if old_relation.comments != new_relation.comments {
            out.push(entry(Diff::RelationDocCommentChanged(relation_pb())));
        }
        let old_types: BTreeMap<String, &AllowedSubjectType> = old_relation
            .allowed_types()
            .iter()
            .map(|allowed| (type_key(existing_schema, allowed), allowed))
            .collect();
        let new_types: BTreeMap<String, &AllowedSubjectType> = new_relation
            .allowed_types()
            .iter()
            .map(|allowed| (type_key(comparison_schema, allowed), allowed))
            .collect();
        for (key, allowed) in &old_types {
            if !new_types.contains_key(key) {
                out.push(entry(Diff::RelationSubjectTypeRemoved(
                    pb::ReflectionRelationSubjectTypeChange {
                        relation: Some(relation_pb()),
                        changed_subject_type: Some(type_to_pb(existing_schema, allowed)),
                    },
                )));
            }
        }
        for (key, allowed) in &new_types {
            if !old_types.contains_key(key) {
                out.push(entry(Diff::RelationSubjectTypeAdded(
                    pb::ReflectionRelationSubjectTypeChange {
                        relation: Some(relation_pb()),
                        changed_subject_type: Some(type_to_pb(comparison_schema, allowed)),
                    },
                )));
            }
        }
    }
}

/// The changes inside one caveat present in both schemas: its comment, added and removed
/// parameters, parameter type changes, then its expression.
fn diff_caveat(existing: &Caveat, comparison: &Caveat, out: &mut Vec<pb::ReflectionSchemaDiff>) {
    if existing.comments != comparison.comments {
        out.push(entry(Diff::CaveatDocCommentChanged(caveat_to_pb(
            comparison,
        ))));
    }
    let mut old_names: Vec<&str> = existing.params.iter().map(|p| p.name.as_str()).collect();
    let mut new_names: Vec<&str> = comparison.params.iter().map(|p| p.name.as_str()).collect();
    old_names.sort_unstable();
    new_names.sort_unstable();
    for name in &new_names {
        if existing.param_type(name).is_none()
            && let Some(param) = parameter_to_pb(comparison, name)
        {
            out.push(entry(Diff::CaveatParameterAdded(param)));
        }
    }
    for name in &old_names {
        if comparison.param_type(name).is_none()
            && let Some(param) = parameter_to_pb(existing, name)
        {
            out.push(entry(Diff::CaveatParameterRemoved(param)));
        }
    }
    for name in &new_names {
        let (Some(old_type), Some(param)) =
            (existing.param_type(name), parameter_to_pb(comparison, name))
        else {
            continue;
        };
        if old_type.to_string() != param.r#type {
            out.push(entry(Diff::CaveatParameterTypeChanged(
                pb::ReflectionCaveatParameterTypeChange {
                    parameter: Some(param),
                    previous_type: old_type.to_string(),
                },
            )));
        }
    }
    if existing.expression != comparison.expression {
        out.push(entry(Diff::CaveatExprChanged(caveat_to_pb(comparison))));
    }
}

/// The differences from `existing` (the stored schema; absent when none is stored) to
/// `comparison`, in SpiceDB's order: added then removed definitions, added then removed
/// caveats, changed definitions, changed caveats (each group sorted by name).
pub(crate) fn diff(
    existing: Option<&CompiledSchema>,
    comparison: &CompiledSchema,
) -> Vec<pb::ReflectionSchemaDiff> {
    let old_definitions: BTreeMap<&str, (&CompiledSchema, &Definition)> = existing
        .into_iter()
        .flat_map(|schema| {
            schema
                .definitions
                .iter()
                .map(move |definition| (definition.name.as_str(), (schema, definition)))
        })
        .collect();
    let new_definitions: BTreeMap<&str, &Definition> = comparison
        .definitions
        .iter()
        .map(|definition| (definition.name.as_str(), definition))
        .collect();
    let old_caveats: BTreeMap<&str, &Caveat> = existing
        .into_iter()
        .flat_map(|schema| schema.caveats.iter())
        .map(|caveat| (caveat.name.as_str(), caveat))
        .collect();
    let new_caveats: BTreeMap<&str, &Caveat> = comparison
        .caveats
        .iter()
        .map(|caveat| (caveat.name.as_str(), caveat))
        .collect();
    let mut out = Vec::new();
    for (name, definition) in &new_definitions {
        if !old_definitions.contains_key(name) {
            out.push(entry(Diff::DefinitionAdded(definition_to_pb(
                comparison, definition, None,
            ))));
        }
    }
    for (name, (schema, definition)) in &old_definitions {
        if !new_definitions.contains_key(name) {
            out.push(entry(Diff::DefinitionRemoved(definition_to_pb(
                schema, definition, None,
            ))));
        }
    }
    for (name, caveat) in &new_caveats {
        if !old_caveats.contains_key(name) {
            out.push(entry(Diff::CaveatAdded(caveat_to_pb(caveat))));
        }
    }
    for (name, caveat) in &old_caveats {
        if !new_caveats.contains_key(name) {
            out.push(entry(Diff::CaveatRemoved(caveat_to_pb(caveat))));
        }
    }
    for (name, new_definition) in &new_definitions {
        if let Some((schema, old_definition)) = old_definitions.get(name) {
            diff_definition(schema, old_definition, comparison, new_definition, &mut out);
        }
    }
    for (name, new_caveat) in &new_caveats {
        if let Some(old_caveat) = old_caveats.get(name) {
            diff_caveat(old_caveat, new_caveat, &mut out);
        }
    }
    out
}
