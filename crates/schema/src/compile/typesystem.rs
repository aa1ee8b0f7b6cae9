//! The type-system stage: resolves every reference into ids, validates what SpiceDB's
//! WriteSchema validates, emits `zed`-style lint warnings and builds the IR.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Compiled, DefUnit, Translated, fail_on_errors, strip_parens};
use crate::ast;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::ir::{
    AllowedSubject, AllowedSubjectType, ArrowFunction, Caveat, CaveatId, CompiledSchema,
    Definition, DefinitionId, Reachability, Relation, RelationId, RelationKind, Rewrite,
    TupleToUserset,
};
use crate::source::{SourceFile, Span};

/// The closest name within edit distance 2, for "did you mean" hints.
fn suggest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|candidate| (edit_distance(wanted, candidate), candidate))
        .filter(|(distance, _)| *distance <= 2 && *distance < wanted.len())
        .min()
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b_chars: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b_chars.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b_chars.len() + 1];
        for (j, cb) in b_chars.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b_chars.len()]
}

fn did_you_mean(hint: Option<&str>, otherwise: String) -> String {
    match hint {
        Some(name) => format!("did you mean `{name}`?"),
        None => otherwise,
    }
}

/// Per-definition member tables built before resolution.
struct DefTable<'a> {
    relation_ids: HashMap<String, RelationId>,
    /// The first occurrence of each member, indexed by `RelationId`.
    members: Vec<(&'a Arc<SourceFile>, &'a ast::Member)>,
}

impl DefTable<'_> {
    fn is_permission(&self, id: RelationId) -> bool {
        matches!(self.members[id.index()].1, ast::Member::Permission(_))
    }
}

struct Checker<'t, 'a> {
    tr: &'t Translated<'a>,
    definition_ids: HashMap<String, DefinitionId>,
    caveat_ids: HashMap<String, CaveatId>,
    tables: Vec<DefTable<'a>>,
    /// Resolved allowed types per (definition, relation); empty for permissions.
    allowed: Vec<Vec<Vec<AllowedSubjectType>>>,
    diags: Vec<Diagnostic>,
}

/// Runs the type-system stage on a translated schema.
pub(crate) fn check(tr: &Translated<'_>) -> Result<Compiled, Diagnostics> {
    let definition_ids = tr
        .definitions
        .iter()
        .enumerate()
        .map(|(idx, def)| (def.name.clone(), DefinitionId(idx as u32)))
        .collect();
    let caveat_ids = tr
        .caveats
        .iter()
        .enumerate()
        .map(|(idx, caveat)| (caveat.name.clone(), CaveatId(idx as u32)))
        .collect();
    let mut checker = Checker {
        tr,
        definition_ids,
        caveat_ids,
        tables: Vec::new(),
        allowed: Vec::new(),
        diags: tr.warnings.clone(),
    };
    for def in &tr.definitions {
        let table = checker.build_table(def);
        checker.tables.push(table);
    }
    for def_idx in 0..tr.definitions.len() {
        let per_relation = checker.resolve_allowed_types(def_idx);
        checker.allowed.push(per_relation);
    }
    checker.check_transitive_wildcards();
    let mut definitions = Vec::with_capacity(tr.definitions.len());
    for def_idx in 0..tr.definitions.len() {
        definitions.push(checker.build_definition(def_idx));
    }
    checker.check_alias_cycles();
    checker.lint_names();
    let Checker {
        definition_ids,
        caveat_ids,
        diags,
        ..
    } = checker;
    let mut warnings = fail_on_errors(diags)?;
    warnings.sort_by(|a, b| {
        a.file
            .name()
            .cmp(b.file.name())
            .then_with(|| a.span.cmp(&b.span))
    });
    let caveats = tr
        .caveats
        .iter()
        .map(|unit| Caveat {
            name: unit.name.clone(),
            comments: unit.comments.clone(),
            params: unit.params.clone(),
            expression: unit.expression.clone(),
        })
        .collect();
    let mut schema = CompiledSchema {
        definitions,
        caveats,
        features: tr.features,
        reachability: Reachability::default(),
        definition_ids,
        caveat_ids,
    };
    schema.reachability = Reachability::build(&schema);
    Ok(Compiled { schema, warnings })
}

impl<'a> Checker<'_, 'a> {
    fn build_table(&mut self, def: &'a DefUnit<'a>) -> DefTable<'a> {
        let mut relation_ids = HashMap::new();
        let mut members = Vec::new();
        for unit in &def.members {
            let name = unit.member.name();
            if relation_ids.contains_key(&name.text) {
                self.diags.push(
                    Diagnostic::error(
                        "duplicate-name",
                        &unit.file,
                        name.span,
                        format!(
                            "found duplicate relation/permission name `{}` under definition `{}`",
                            name.text, def.name
                        ),
                    )
                    .with_label("already defined in this definition")
                    .with_help("relations and permissions of a definition share one namespace: rename one of them"),
                );
                continue;
            }
            relation_ids.insert(name.text.clone(), RelationId(members.len() as u32));
            members.push((&unit.file, unit.member));
        }
        DefTable {
            relation_ids,
            members,
        }
    }

    fn lookup_definition(
        &mut self,
        file: &Arc<SourceFile>,
        ident: &ast::Ident,
    ) -> Option<DefinitionId> {
        let full = self.tr.full_name(&ident.text);
        if let Some(id) = self.definition_ids.get(&full) {
            return Some(*id);
        }
        let hint = suggest(&full, self.definition_ids.keys().map(String::as_str));
        self.diags.push(
            Diagnostic::error(
                "unknown-definition",
                file,
                ident.span,
                format!("object definition `{full}` not found"),
            )
            .with_label("no definition with this name")
            .with_help(did_you_mean(
                hint,
                format!("add `definition {full} {{}}` or fix the name"),
            )),
        );
        None
    }

    fn resolve_allowed_types(&mut self, def_idx: usize) -> Vec<Vec<AllowedSubjectType>> {
        let tr = self.tr;
        let def = &tr.definitions[def_idx];
        let mut per_relation = Vec::new();
        let members = self.tables[def_idx].members.clone();
        for (file, member) in members {
            let ast::Member::Relation(relation) = member else {
                per_relation.push(Vec::new());
                continue;
            };
            let mut resolved: Vec<AllowedSubjectType> = Vec::new();
            for allowed in &relation.allowed_types {
                let Some(subject_def) = self.lookup_definition(file, &allowed.type_name) else {
                    continue;
                };
                let subject = match &allowed.kind {
                    ast::AllowedKind::Direct | ast::AllowedKind::Ellipsis(_) => {
                        AllowedSubject::Ellipsis
                    }
                    ast::AllowedKind::Wildcard(_) => AllowedSubject::Wildcard,
                    ast::AllowedKind::SubjectRelation(rel) => {
                        match self.tables[subject_def.index()].relation_ids.get(&rel.text) {
                            Some(id) => AllowedSubject::Relation(*id),
                            None => {
                                let subject_name = &tr.definitions[subject_def.index()].name;
                                let hint = suggest(
                                    &rel.text,
                                    self.tables[subject_def.index()]
                                        .relation_ids
                                        .keys()
                                        .map(String::as_str),
                                );
                                self.diags.push(
                                    Diagnostic::error(
                                        "unknown-relation",
                                        file,
                                        rel.span,
                                        format!(
                                            "relation/permission `{}` not found under definition `{subject_name}`",
                                            rel.text
                                        ),
                                    )
                                    .with_label(format!("`{subject_name}` has no relation or permission with this name"))
                                    .with_help(did_you_mean(hint, format!("add `relation {}` to `{subject_name}` or fix the name", rel.text))),
                                );
                                continue;
                            }
                        }
                    }
                };
                let mut expiration = false;
                let mut caveat = None;
                if allowed.expiration.is_some() {
                    if tr.features.expiration {
                        expiration = true;
                    } else {
                        self.push_expiration_error(
                            file,
                            allowed.expiration.unwrap_or(allowed.span),
                        );
                        continue;
                    }
                }
                if let Some(caveat_ident) = &allowed.caveat {
                    if caveat_ident.text == "expiration" && tr.features.expiration {
                        expiration = true;
                    } else {
                        let full = tr.full_name(&caveat_ident.text);
                        match self.caveat_ids.get(&full) {
                            Some(id) => caveat = Some(*id),
                            None if caveat_ident.text == "expiration" => {
                                self.push_expiration_error(file, caveat_ident.span);
                                continue;
                            }
                            None => {
                                let hint =
                                    suggest(&full, self.caveat_ids.keys().map(String::as_str));
                                self.diags.push(
                                    Diagnostic::error(
                                        "unknown-caveat",
                                        file,
                                        caveat_ident.span,
                                        format!("caveat `{full}` not found"),
                                    )
                                    .with_label("no caveat with this name")
                                    .with_help(did_you_mean(hint, format!("declare it with `caveat {full}(param type) {{ expression }}` or fix the name"))),
                                );
                                continue;
                            }
                        }
                    }
                }
                let entry = AllowedSubjectType {
                    definition: subject_def,
                    definition_name: tr.definitions[subject_def.index()].name.clone(),
                    subject,
                    caveat,
                    expiration,
                };
                if resolved.contains(&entry) {
                    self.diags.push(
                        Diagnostic::error(
                            "duplicate-allowed-type",
                            file,
                            allowed.span,
                            format!(
                                "found duplicate allowed subject type `{}` on relation `{}` under definition `{}`",
                                self.display_allowed(&entry),
                                relation.name.text,
                                def.name
                            ),
                        )
                        .with_label("already allowed earlier in this relation")
                        .with_help("remove the repeated type"),
                    );
                    continue;
                }
                resolved.push(entry);
            }
            per_relation.push(resolved);
        }
        per_relation
    }

    fn push_expiration_error(&mut self, file: &Arc<SourceFile>, span: Span) {
        self.diags.push(
            Diagnostic::error(
                "feature-not-enabled",
                file,
                span,
                "`with expiration` requires `use expiration`",
            )
            .with_label("expiration is not enabled")
            .with_help("add `use expiration` at the top of the schema"),
        );
    }

    fn display_allowed(&self, allowed: &AllowedSubjectType) -> String {
        let mut text = allowed.definition_name.clone();
        match allowed.subject {
            AllowedSubject::Ellipsis => {}
            AllowedSubject::Wildcard => text.push_str(":*"),
            AllowedSubject::Relation(rel) => {
                text.push('#');
                text.push_str(
                    &self.tables[allowed.definition.index()].members[rel.index()]
                        .1
                        .name()
                        .text,
                );
            }
        }
        if let Some(caveat) = allowed.caveat {
            text.push_str(" with ");
            text.push_str(&self.tr.caveats[caveat.index()].name);
        }
        if allowed.expiration {
            text.push_str(if allowed.caveat.is_some() {
                " and expiration"
            } else {
                " with expiration"
            });
        }
        text
    }

    /// The wildcard type a relation includes, directly or through subject relations that are
    /// themselves relations.
    fn wildcard_in(
        &self,
        def: DefinitionId,
        rel: RelationId,
        seen: &mut HashSet<(DefinitionId, RelationId)>,
    ) -> Option<String> {
        if !seen.insert((def, rel)) {
            return None;
        }
        for allowed in &self.allowed[def.index()][rel.index()] {
            match allowed.subject {
                AllowedSubject::Wildcard => return Some(allowed.definition_name.clone()),
                AllowedSubject::Relation(sub) => {
                    if let Some(found) = self.wildcard_in(allowed.definition, sub, seen) {
                        return Some(found);
                    }
                }
                AllowedSubject::Ellipsis => {}
            }
        }
        None
    }

    /// SpiceDB rejects `relation r: doc#viewer` when `doc#viewer` includes a wildcard.
    fn check_transitive_wildcards(&mut self) {
        let tr = self.tr;
        for (def_idx, def) in tr.definitions.iter().enumerate() {
            for (rel_idx, (file, member)) in
                self.tables[def_idx].members.clone().into_iter().enumerate()
            {
                let ast::Member::Relation(relation) = member else {
                    continue;
                };
                let resolved = self.allowed[def_idx][rel_idx].clone();
                for allowed in &resolved {
                    let AllowedSubject::Relation(sub) = allowed.subject else {
                        continue;
                    };
                    if self.tables[allowed.definition.index()].is_permission(sub) {
                        continue;
                    }
                    let Some(wildcard_type) =
                        self.wildcard_in(allowed.definition, sub, &mut HashSet::new())
                    else {
                        continue;
                    };
                    let target = self.display_allowed(&AllowedSubjectType {
                        caveat: None,
                        expiration: false,
                        ..allowed.clone()
                    });
                    let span = relation
                        .allowed_types
                        .iter()
                        .find(|ast_allowed| matches!(&ast_allowed.kind, ast::AllowedKind::SubjectRelation(rel) if tr.full_name(&ast_allowed.type_name.text) == allowed.definition_name && Some(sub) == self.tables[allowed.definition.index()].relation_ids.get(&rel.text).copied()))
                        .map_or(relation.name.span, |ast_allowed| ast_allowed.span);
                    self.diags.push(
                        Diagnostic::error(
                            "transitive-wildcard",
                            file,
                            span,
                            format!(
                                "relation `{}` of `{}` uses `{target}`, which includes the wildcard `{wildcard_type}:*`; wildcard relations cannot be transitively included",
                                relation.name.text, def.name
                            ),
                        )
                        .with_label("this subject relation includes a wildcard")
                        .with_help(format!("allow `{wildcard_type}:*` on this relation directly instead")),
                    );
                }
            }
        }
    }

    fn build_definition(&mut self, def_idx: usize) -> Definition {
        let tr = self.tr;
        let def = &tr.definitions[def_idx];
        let members = self.tables[def_idx].members.clone();
        let mut relations = Vec::with_capacity(members.len());
        for (rel_idx, (file, member)) in members.into_iter().enumerate() {
            let (name, comments, kind) = match member {
                ast::Member::Relation(relation) => (
                    &relation.name,
                    &relation.comments,
                    RelationKind::Relation {
                        allowed_types: self.allowed[def_idx][rel_idx].clone(),
                    },
                ),
                ast::Member::Permission(permission) => {
                    let rewrite = self
                        .resolve_expr(def_idx, file, &permission.name.text, &permission.expr)
                        .unwrap_or(Rewrite::Nil);
                    let type_annotation = permission
                        .type_annotation
                        .iter()
                        .filter_map(|ident| {
                            self.lookup_definition(file, ident)
                                .map(|id| tr.definitions[id.index()].name.clone())
                        })
                        .collect();
                    (
                        &permission.name,
                        &permission.comments,
                        RelationKind::Permission {
                            rewrite,
                            type_annotation,
                        },
                    )
                }
                ast::Member::Splat(_) => continue,
            };
            relations.push(Relation {
                name: name.text.clone(),
                comments: super::comment_texts(comments),
                kind,
            });
        }
        Definition {
            name: def.name.clone(),
            comments: def.comments.clone(),
            relations,
            relation_ids: self.tables[def_idx].relation_ids.clone(),
        }
    }

    fn unknown_member(&mut self, def_idx: usize, file: &Arc<SourceFile>, ident: &ast::Ident) {
        let def_name = &self.tr.definitions[def_idx].name;
        let hint = suggest(
            &ident.text,
            self.tables[def_idx].relation_ids.keys().map(String::as_str),
        );
        let otherwise = if ident.text == "self" {
            "add `use self` at the top of the schema to use `self`".to_string()
        } else {
            format!(
                "add `relation {}: ...` to `{def_name}` or fix the name",
                ident.text
            )
        };
        self.diags.push(
            Diagnostic::error(
                "unknown-relation",
                file,
                ident.span,
                format!(
                    "relation/permission `{}` not found under definition `{def_name}`",
                    ident.text
                ),
            )
            .with_label("no relation or permission with this name")
            .with_help(did_you_mean(hint, otherwise)),
        );
    }

    fn resolve_expr(
        &mut self,
        def_idx: usize,
        file: &Arc<SourceFile>,
        permission: &str,
        expr: &ast::Expr,
    ) -> Option<Rewrite> {
        let tr = self.tr;
        match expr {
            ast::Expr::Ref(ident) => {
                if ident.text == "self"
                    && tr.features.self_keyword
                    && !self.tables[def_idx].relation_ids.contains_key("self")
                {
                    return Some(Rewrite::This);
                }
                match self.tables[def_idx].relation_ids.get(&ident.text) {
                    Some(id) => {
                        let id = *id;
                        if ident.text == permission {
                            self.diags.push(self.lint(
                                def_idx,
                                file,
                                ident.span,
                                "permission-references-itself",
                                format!("permission `{permission}` references itself, which will cause an error to be raised due to infinite recursion"),
                                "refers to the permission being defined",
                                "reference a relation or another permission instead",
                            ));
                        }
                        Some(Rewrite::ComputedUserset(id))
                    }
                    None => {
                        self.unknown_member(def_idx, file, ident);
                        None
                    }
                }
            }
            ast::Expr::SelfRef(span) => {
                if tr.features.self_keyword {
                    Some(Rewrite::This)
                } else {
                    let ident = ast::Ident {
                        text: "self".into(),
                        span: *span,
                    };
                    self.unknown_member(def_idx, file, &ident);
                    None
                }
            }
            ast::Expr::Nil(_) => Some(Rewrite::Nil),
            ast::Expr::Paren(inner, _) => self.resolve_expr(def_idx, file, permission, inner),
            ast::Expr::Union(left, right, _) => {
                let left = self.resolve_expr(def_idx, file, permission, left);
                let right = self.resolve_expr(def_idx, file, permission, right);
                Some(flatten(left?, right?, true))
            }
            ast::Expr::Intersection(left, right, _) => {
                let left = self.resolve_expr(def_idx, file, permission, left);
                let right = self.resolve_expr(def_idx, file, permission, right);
                Some(flatten(left?, right?, false))
            }
            ast::Expr::Exclusion(left, right, _) => {
                let left = self.resolve_expr(def_idx, file, permission, left);
                let right = self.resolve_expr(def_idx, file, permission, right);
                Some(Rewrite::Exclusion(Box::new(left?), Box::new(right?)))
            }
            ast::Expr::Arrow(arrow) => self.resolve_arrow(def_idx, file, permission, arrow),
        }
    }

    fn resolve_arrow(
        &mut self,
        def_idx: usize,
        file: &Arc<SourceFile>,
        permission: &str,
        arrow: &ast::Arrow,
    ) -> Option<Rewrite> {
        let tr = self.tr;
        let def_name = tr.definitions[def_idx].name.clone();
        let ast::Expr::Ref(left) = strip_parens(&arrow.left) else {
            return None;
        };
        let Some(&tupleset) = self.tables[def_idx].relation_ids.get(&left.text) else {
            self.unknown_member(def_idx, file, left);
            return None;
        };
        if self.tables[def_idx].is_permission(tupleset) {
            self.diags.push(
                Diagnostic::error(
                    "arrow-over-permission",
                    file,
                    left.span,
                    format!("permissions cannot be used on the left hand side of an arrow (found `{}` under permission `{permission}` of `{def_name}`)", left.text),
                )
                .with_label("this is a permission, expected a relation")
                .with_help("arrow over a relation whose subjects are the objects to walk to"),
            );
            return None;
        }
        let function = match arrow.kind {
            ast::ArrowKind::Arrow | ast::ArrowKind::Any => ArrowFunction::Any,
            ast::ArrowKind::All => ArrowFunction::All,
        };
        let arrow_text = match arrow.kind {
            ast::ArrowKind::Arrow => format!("{}->{}", left.text, arrow.target.text),
            ast::ArrowKind::Any => format!("{}.any({})", left.text, arrow.target.text),
            ast::ArrowKind::All => format!("{}.all({})", left.text, arrow.target.text),
        };
        let allowed = self.allowed[def_idx][tupleset.index()].clone();
        if let Some(wildcard) = allowed
            .iter()
            .find(|allowed| allowed.subject == AllowedSubject::Wildcard)
        {
            self.diags.push(
                Diagnostic::error(
                    "wildcard-arrow",
                    file,
                    left.span,
                    format!("relation `{def_name}#{}` includes wildcard type `{}` and cannot be used on the left side of an arrow", left.text, wildcard.definition_name),
                )
                .with_label("this relation allows a wildcard")
                .with_help(format!("remove `{}:*` from `{}` or arrow over another relation", wildcard.definition_name, left.text)),
            );
            return None;
        }
        let mut targets: Vec<(DefinitionId, RelationId)> = Vec::new();
        for allowed_type in &allowed {
            let table = &self.tables[allowed_type.definition.index()];
            if let Some(&target) = table.relation_ids.get(&arrow.target.text)
                && !targets
                    .iter()
                    .any(|(def, _)| *def == allowed_type.definition)
            {
                targets.push((allowed_type.definition, target));
            }
        }
        targets.sort();
        // Lints, as `zed validate` prints them.
        if targets.is_empty() && !allowed.is_empty() {
            self.diags.push(self.lint(
                def_idx,
                file,
                arrow.span,
                "arrow-references-unreachable-relation",
                format!("arrow `{arrow_text}` under permission `{permission}` references relation/permission `{}` that does not exist on any subject types of relation `{}`", arrow.target.text, left.text),
                "no subject type of the relation has this",
                "add the relation or permission to the subject types, or fix the name",
            ));
        }
        if let Some(sub) = allowed
            .iter()
            .find(|allowed| matches!(allowed.subject, AllowedSubject::Relation(_)))
        {
            let shown = self.display_allowed(&AllowedSubjectType {
                caveat: None,
                expiration: false,
                ..sub.clone()
            });
            self.diags.push(self.lint(
                def_idx,
                file,
                arrow.span,
                "arrow-walks-subject-relation",
                format!("arrow `{arrow_text}` under permission `{permission}` walks relation `{}`, which allows `{shown}`: the subject relation is ignored by the arrow", left.text),
                "the arrow ignores subject relations",
                "allow the plain subject type on the relation the arrow walks",
            ));
        }
        for (target_def, target_rel) in &targets {
            if *target_def == DefinitionId(def_idx as u32) {
                continue;
            }
            if !self.tables[target_def.index()].is_permission(*target_rel) {
                let target_def_name = tr.definitions[target_def.index()].name.clone();
                self.diags.push(self.lint(
                    def_idx,
                    file,
                    arrow.span,
                    "arrow-references-relation",
                    format!("arrow `{arrow_text}` under permission `{permission}` references relation `{}` on definition `{target_def_name}`; it is recommended to point to a permission", arrow.target.text),
                    "points at a relation",
                    format!("add a permission to `{target_def_name}` that wraps `{}` and arrow to it", arrow.target.text),
                ));
                break;
            }
        }
        Some(Rewrite::TupleToUserset(TupleToUserset {
            tupleset,
            computed: arrow.target.text.clone(),
            targets,
            function,
        }))
    }

    /// A lint warning, unless a `// spicedb-ignore-warning: name` comment on the enclosing
    /// member or definition silences it.
    #[expect(clippy::too_many_arguments, reason = "one call site shape per lint")]
    fn lint(
        &self,
        def_idx: usize,
        file: &Arc<SourceFile>,
        span: Span,
        name: &'static str,
        message: String,
        label: &str,
        help: impl Into<String>,
    ) -> Diagnostic {
        let mut diag = Diagnostic::warning(name, file, span, message)
            .with_label(label)
            .with_help(help);
        if self.is_ignored(def_idx, span, name) {
            // Silenced: keep the caller simple by downgrading to a no-op marker that the
            // caller filters out below.
            diag.code = "ignored";
        }
        diag
    }

    fn is_ignored(&self, def_idx: usize, span: Span, name: &str) -> bool {
        let marker = format!("spicedb-ignore-warning: {name}");
        self.tables[def_idx].members.iter().any(|(_, member)| {
            let member_span = member.span();
            member_span.start <= span.start
                && span.end <= member_span.end
                && member
                    .comments()
                    .iter()
                    .any(|comment| comment.text.contains(&marker))
        })
    }

    /// Permissions that are only another name (`permission a = b`) must not form a cycle.
    fn check_alias_cycles(&mut self) {
        let tr = self.tr;
        for (def_idx, def) in tr.definitions.iter().enumerate() {
            let table = &self.tables[def_idx];
            let mut alias_of: HashMap<RelationId, RelationId> = HashMap::new();
            for (rel_idx, (_, member)) in table.members.iter().enumerate() {
                if let ast::Member::Permission(permission) = member
                    && let ast::Expr::Ref(target) = strip_parens(&permission.expr)
                    && let Some(&target_id) = table.relation_ids.get(&target.text)
                {
                    alias_of.insert(RelationId(rel_idx as u32), target_id);
                }
            }
            let mut reported: HashSet<RelationId> = HashSet::new();
            for &start in alias_of.keys() {
                let mut path = vec![start];
                let mut current = start;
                while let Some(&next) = alias_of.get(&current) {
                    if let Some(pos) = path.iter().position(|id| *id == next) {
                        let cycle = &path[pos..];
                        if cycle.iter().any(|id| reported.contains(id)) {
                            break;
                        }
                        reported.extend(cycle.iter().copied());
                        let mut names: Vec<&str> = cycle
                            .iter()
                            .map(|id| table.members[id.index()].1.name().text.as_str())
                            .collect();
                        names.sort_unstable();
                        let first = cycle
                            .iter()
                            .min_by_key(|id| table.members[id.index()].1.span())
                            .copied()
                            .unwrap_or(start);
                        let (file, member) = table.members[first.index()];
                        self.diags.push(
                            Diagnostic::error(
                                "permission-cycle",
                                file,
                                member.name().span,
                                format!("under definition `{}`, there exists a cycle in permissions: `{}`", def.name, names.join("`, `")),
                            )
                            .with_label("this permission is only an alias, and the aliases loop")
                            .with_help("make one of the permissions refer to a relation"),
                        );
                        break;
                    }
                    path.push(next);
                    current = next;
                }
            }
        }
    }

    /// `relation-name-references-parent`: a member named after its definition.
    fn lint_names(&mut self) {
        let tr = self.tr;
        for (def_idx, def) in tr.definitions.iter().enumerate() {
            let short = def.name.rsplit('/').next().unwrap_or(&def.name);
            for (file, member) in self.tables[def_idx].members.clone() {
                let name = member.name();
                if !name.text.ends_with(&def.name) {
                    continue;
                }
                let kind = if matches!(member, ast::Member::Permission(_)) {
                    "permission"
                } else {
                    "relation"
                };
                let diag = self.lint(
                    def_idx,
                    file,
                    name.span,
                    "relation-name-references-parent",
                    format!("{kind} `{}` references parent type `{}` in its name; it is recommended to drop the suffix", name.text, def.name),
                    "the name repeats the definition's name",
                    format!("rename it without the `{short}` suffix"),
                );
                self.diags.push(diag);
            }
        }
        self.diags.retain(|diag| diag.code != "ignored");
    }
}

/// Joins two rewrites into a union (or intersection), flattening nested ones of the same kind.
fn flatten(left: Rewrite, right: Rewrite, union: bool) -> Rewrite {
    let mut children = Vec::new();
    for side in [left, right] {
        match (side, union) {
            (Rewrite::Union(inner), true) | (Rewrite::Intersection(inner), false) => {
                children.extend(inner)
            }
            (other, _) => children.push(other),
        }
    }
    if union {
        Rewrite::Union(children)
    } else {
        Rewrite::Intersection(children)
    }
}
