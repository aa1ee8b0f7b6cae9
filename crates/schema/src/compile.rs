//! The compiler: schema text → parse → SpiceDB "compiler" checks → SpiceDB "type system"
//! validation → [`CompiledSchema`] IR, collecting every independent error on the way.
//!
//! The stages mirror SpiceDB's WriteSchema:
//!
//! 1. **parse** every file; syntax errors stop compilation (after all of them are collected);
//! 2. **translate** ([`check_translation`] runs only this far, like SpiceDB's
//!    `compiler.Compile`): `use` flags, name rules, object type prefixes, duplicate definitions
//!    and caveats, partials, nested arrows, caveat parameter types and CEL expressions;
//! 3. **type system**: every reference resolves (definitions, relations, permissions,
//!    caveats), no duplicate members, arrows walk relations without wildcards, no alias
//!    cycles; lint warnings (as `zed validate` prints them) come out of this stage too.

mod caveat;
mod names;
mod typesystem;

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::ir::{CaveatParam, CelExpression, CompiledSchema, Features};
use crate::source::SourceFile;

/// How definition and caveat names relate to an object type prefix (a tenant).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ObjectTypePrefix {
    /// Names are used as written, prefixed or not (what WriteSchema and validation files do).
    #[default]
    AllowUnprefixed,
    /// Every definition, caveat and type reference without a `prefix/` gets this prefix.
    Prepend(String),
    /// Every name must already carry a prefix (`found reference `x` without prefix`).
    Require,
}

/// Options for [`compile`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// How unprefixed names are treated.
    pub object_type_prefix: ObjectTypePrefix,
}

/// A successful compilation: the schema, and the lint warnings found on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    /// The compiled schema.
    pub schema: CompiledSchema,
    /// Warnings (never errors), sorted by file and position.
    pub warnings: Vec<Diagnostic>,
}

/// Compiles one or more schema files (their items are combined, as imports would) into the IR.
///
/// On failure, returns every error found (and any warnings found before stopping).
pub fn compile(
    sources: &[Arc<SourceFile>],
    options: &CompileOptions,
) -> Result<Compiled, Diagnostics> {
    let parsed = parse_all(sources)?;
    compile_parsed(&parsed, options)
}

/// Compiles one schema text with the default options (names used as written).
pub fn compile_str(name: &str, text: &str) -> Result<Compiled, Diagnostics> {
    compile(&[SourceFile::new(name, text)], &CompileOptions::default())
}

/// Compiles already-parsed files (each with the file its spans point into).
pub fn compile_parsed(
    inputs: &[(Arc<SourceFile>, ast::Schema)],
    options: &CompileOptions,
) -> Result<Compiled, Diagnostics> {
    let translated = translate(inputs, options)?;
    typesystem::check(&translated)
}

/// Parses and runs only the translation checks (SpiceDB's `compiler.Compile` on its own):
/// references between definitions are not resolved, so `relation r: unknown` passes.
pub fn check_translation(
    sources: &[Arc<SourceFile>],
    options: &CompileOptions,
) -> Result<(), Diagnostics> {
    let parsed = parse_all(sources)?;
    translate(&parsed, options).map(|_| ())
}

/// Parses every file, failing with all syntax errors if there are any.
fn parse_all(
    sources: &[Arc<SourceFile>],
) -> Result<Vec<(Arc<SourceFile>, ast::Schema)>, Diagnostics> {
    let mut diags = Vec::new();
    let mut parsed = Vec::with_capacity(sources.len());
    for file in sources {
        let result = crate::parser::parse(file);
        diags.extend(result.diagnostics);
        parsed.push((Arc::clone(file), result.schema));
    }
    fail_on_errors(diags)?;
    Ok(parsed)
}

/// `Err` with every diagnostic when any of them is an error, else the warnings.
fn fail_on_errors(diags: Vec<Diagnostic>) -> Result<Vec<Diagnostic>, Diagnostics> {
    match Diagnostics::new(diags) {
        Some(list) if list.has_errors() => Err(list),
        Some(list) => Ok(list.into_iter().collect()),
        None => Ok(Vec::new()),
    }
}

/// A definition after translation: full name, members with partials spliced in.
#[derive(Debug)]
pub(crate) struct DefUnit<'a> {
    pub(crate) name: String,
    pub(crate) comments: Vec<String>,
    pub(crate) members: Vec<MemberUnit<'a>>,
}

/// A relation or permission, with the file it was written in (a partial's, when spliced).
#[derive(Debug)]
pub(crate) struct MemberUnit<'a> {
    pub(crate) file: Arc<SourceFile>,
    pub(crate) member: &'a ast::Member,
}

/// A caveat after translation.
#[derive(Debug)]
pub(crate) struct CaveatUnit {
    pub(crate) name: String,
    pub(crate) comments: Vec<String>,
    pub(crate) params: Vec<CaveatParam>,
    pub(crate) expression: CelExpression,
}

/// The output of the translation stage.
#[derive(Debug)]
pub(crate) struct Translated<'a> {
    pub(crate) features: Features,
    pub(crate) prefix: ObjectTypePrefix,
    pub(crate) definitions: Vec<DefUnit<'a>>,
    pub(crate) caveats: Vec<CaveatUnit>,
    /// Warnings found so far (none yet; kept for symmetry with later stages).
    pub(crate) warnings: Vec<Diagnostic>,
}

impl Translated<'_> {
    /// The full name of a type or caveat reference under the prefix option.
    pub(crate) fn full_name(&self, text: &str) -> String {
        full_name(&self.prefix, text)
    }
}

fn full_name(prefix: &ObjectTypePrefix, text: &str) -> String {
    match prefix {
        ObjectTypePrefix::Prepend(prefix) if !text.contains('/') => format!("{prefix}/{text}"),
        _ => text.to_string(),
    }
}

/// The comment texts of an item, with the indentation of continuation lines normalised
/// (` * text` for block-comment lines, no indentation otherwise), so that the IR does not
/// depend on how the schema was indented and `parse → print → parse` keeps it equal.
pub(crate) fn comment_texts(comments: &[ast::Comment]) -> Vec<String> {
    comments
        .iter()
        .map(|comment| {
            let mut lines = comment.text.lines();
            let mut text = lines.next().unwrap_or_default().trim_end().to_owned();
            for line in lines {
                let line = line.trim();
                text.push('\n');
                if line.starts_with('*') {
                    text.push(' ');
                }
                text.push_str(line);
            }
            text
        })
        .collect()
}

/// The translation stage's state.
struct Translator<'a> {
    options: &'a CompileOptions,
    features: Features,
    diags: Vec<Diagnostic>,
    partials: HashMap<&'a str, (&'a Arc<SourceFile>, &'a ast::Definition)>,
}

impl<'a> Translator<'a> {
    /// Checks a type or caveat reference against the prefix rule.
    fn check_prefix(&mut self, file: &Arc<SourceFile>, ident: &ast::Ident) {
        if self.options.object_type_prefix == ObjectTypePrefix::Require && !ident.text.contains('/')
        {
            self.diags.push(
                Diagnostic::error(
                    "missing-prefix",
                    file,
                    ident.span,
                    format!("found reference `{}` without prefix", ident.text),
                )
                .with_label("expected a prefixed name such as `tenant/name`")
                .with_help(format!(
                    "write the name with its prefix, e.g. `tenant/{}`",
                    ident.text
                )),
            );
        }
    }

    fn check_member(&mut self, file: &Arc<SourceFile>, member: &ast::Member) {
        let name = member.name();
        let kind = match member {
            ast::Member::Relation(_) => "relation",
            ast::Member::Permission(_) => "permission",
            ast::Member::Splat(_) => return,
        };
        if !names::is_valid_relation_name(&name.text) {
            self.diags.push(
                Diagnostic::error(
                    "invalid-name",
                    file,
                    name.span,
                    format!("invalid {kind} name `{}`", name.text),
                )
                .with_label(format!("not a valid {kind} name"))
                .with_help(names::NAME_RULES_HELP),
            );
        }
        match member {
            ast::Member::Relation(relation) => {
                for allowed in &relation.allowed_types {
                    self.check_prefix(file, &allowed.type_name);
                    if let Some(caveat) = &allowed.caveat {
                        let is_expiration_trait =
                            self.features.expiration && caveat.text == "expiration";
                        if !is_expiration_trait {
                            self.check_prefix(file, caveat);
                        }
                    }
                }
            }
            ast::Member::Permission(permission) => {
                self.check_expr(file, &permission.expr);
            }
            ast::Member::Splat(_) => {}
        }
    }

    /// SpiceDB validates the relation names an expression refers to with the same rule as
    /// declared names.
    fn check_reference_name(&mut self, file: &Arc<SourceFile>, ident: &ast::Ident) {
        if !names::is_valid_relation_name(&ident.text) {
            self.diags.push(
                Diagnostic::error(
                    "invalid-name",
                    file,
                    ident.span,
                    format!("invalid relation name `{}` in expression", ident.text),
                )
                .with_label("not a valid relation or permission name")
                .with_help(names::NAME_RULES_HELP),
            );
        }
    }

    fn check_expr(&mut self, file: &Arc<SourceFile>, expr: &ast::Expr) {
        match expr {
            ast::Expr::Ref(ident) => self.check_reference_name(file, ident),
            ast::Expr::Nil(_) | ast::Expr::SelfRef(_) => {}
            ast::Expr::Union(left, right, _)
            | ast::Expr::Intersection(left, right, _)
            | ast::Expr::Exclusion(left, right, _) => {
                self.check_expr(file, left);
                self.check_expr(file, right);
            }
            ast::Expr::Paren(inner, _) => self.check_expr(file, inner),
            ast::Expr::Arrow(arrow) => match strip_parens(&arrow.left) {
                ast::Expr::Ref(left) => {
                    self.check_reference_name(file, left);
                    self.check_reference_name(file, &arrow.target);
                }
                ast::Expr::Arrow(_) => self.diags.push(
                    Diagnostic::error(
                        "nested-arrow",
                        file,
                        arrow.span,
                        "nested arrows are not supported",
                    )
                    .with_label("an arrow whose left side is another arrow")
                    .with_help(
                        "add a permission for the inner arrow on the intermediate definition and arrow to it",
                    ),
                ),
                other => self.diags.push(
                    Diagnostic::error(
                        "invalid-arrow",
                        file,
                        other.span(),
                        "the left side of an arrow must be a relation",
                    )
                    .with_label("expected a relation name")
                    .with_help("write `relation->permission`, where `relation` is a relation of this definition"),
                ),
            },
        }
    }

    /// Appends a definition's members, splicing partials recursively.
    fn expand(
        &mut self,
        file: &'a Arc<SourceFile>,
        members: &'a [ast::Member],
        stack: &mut Vec<&'a str>,
        out: &mut Vec<MemberUnit<'a>>,
    ) {
        for member in members {
            let ast::Member::Splat(splat) = member else {
                out.push(MemberUnit {
                    file: Arc::clone(file),
                    member,
                });
                continue;
            };
            let name = splat.partial.text.as_str();
            let Some(&(partial_file, partial)) = self.partials.get(name) else {
                self.diags.push(
                    Diagnostic::error(
                        "unknown-partial",
                        file,
                        splat.partial.span,
                        format!("could not find partial reference `{name}`"),
                    )
                    .with_label("no partial with this name")
                    .with_help(format!("declare it with `partial {name} {{ ... }}`")),
                );
                continue;
            };
            if stack.contains(&name) {
                self.diags.push(
                    Diagnostic::error(
                        "partial-cycle",
                        file,
                        splat.partial.span,
                        format!(
                            "could not resolve partials: `{name}` includes itself through `{}`",
                            stack.join("` -> `")
                        ),
                    )
                    .with_label("this splat closes a cycle")
                    .with_help(
                        "remove one of the splats so that partials do not include each other",
                    ),
                );
                continue;
            }
            stack.push(name);
            self.expand(partial_file, &partial.members, stack, out);
            stack.pop();
        }
    }
}

fn strip_parens(expr: &ast::Expr) -> &ast::Expr {
    match expr {
        ast::Expr::Paren(inner, _) => strip_parens(inner),
        other => other,
    }
}

const USE_FLAGS: &[&str] = &["expiration", "import", "partial", "self", "typechecking"];

/// The translation stage (SpiceDB's compiler proper).
fn translate<'a>(
    inputs: &'a [(Arc<SourceFile>, ast::Schema)],
    options: &'a CompileOptions,
) -> Result<Translated<'a>, Diagnostics> {
    let mut tr = Translator {
        options,
        features: Features::default(),
        diags: Vec::new(),
        partials: HashMap::new(),
    };

    // `use` flags first: they change how later items read.
    for (file, schema) in inputs {
        let mut seen_item = false;
        for item in &schema.items {
            match item {
                ast::Item::Use(directive) => {
                    let flag = directive.flag.text.as_str();
                    if seen_item {
                        tr.diags.push(
                            Diagnostic::error(
                                "use-after-definition",
                                file,
                                directive.span,
                                "`use` expressions must be declared before any definition",
                            )
                            .with_label("this comes after a definition")
                            .with_help("move every `use` line to the top of the schema"),
                        );
                    }
                    match flag {
                        "expiration" => tr.features.expiration = true,
                        "import" => tr.features.import = true,
                        "partial" => tr.features.partial = true,
                        "self" => tr.features.self_keyword = true,
                        "typechecking" => tr.features.typechecking = true,
                        _ => tr.diags.push(
                            Diagnostic::error(
                                "unknown-use-flag",
                                file,
                                directive.flag.span,
                                format!("unknown use flag `{flag}`"),
                            )
                            .with_label("not a language feature")
                            .with_help(format!("the flags are `{}`", USE_FLAGS.join("`, `"))),
                        ),
                    }
                }
                ast::Item::Import(_) => {}
                ast::Item::Definition(_) | ast::Item::Partial(_) | ast::Item::Caveat(_) => {
                    seen_item = true;
                }
            }
        }
    }

    // Partials, by name.
    for (file, schema) in inputs {
        for item in &schema.items {
            if let ast::Item::Partial(partial) = item {
                if !tr.features.partial {
                    tr.diags.push(
                        Diagnostic::error(
                            "feature-not-enabled",
                            file,
                            partial.name.span,
                            "partials require `use partial`",
                        )
                        .with_label("a partial without the feature flag")
                        .with_help("add `use partial` at the top of the schema"),
                    );
                }
                if tr.partials.contains_key(partial.name.text.as_str()) {
                    tr.diags.push(
                        Diagnostic::error(
                            "duplicate-name",
                            file,
                            partial.name.span,
                            format!(
                                "found partial `{}` defined more than once",
                                partial.name.text
                            ),
                        )
                        .with_label("a partial with this name already exists")
                        .with_help("rename one of the partials"),
                    );
                    continue;
                }
                tr.partials
                    .insert(partial.name.text.as_str(), (file, partial));
            }
        }
    }

    let mut definitions = Vec::new();
    let mut caveats = Vec::new();
    let mut seen_names: HashMap<String, ()> = HashMap::new();
    for (file, schema) in inputs {
        for item in &schema.items {
            match item {
                ast::Item::Use(_) => {}
                ast::Item::Import(import) => tr.diags.push(
                    Diagnostic::error(
                        "unsupported",
                        file,
                        import.span,
                        "`import` is not supported by this compiler",
                    )
                    .with_label("imports are resolved by the caller")
                    .with_help("pass every schema file to the compiler instead"),
                ),
                ast::Item::Partial(partial) => {
                    for member in &partial.members {
                        tr.check_member(file, member);
                    }
                    // Expanding reports cycles and unknown partials inside partials too.
                    let mut stack = vec![partial.name.text.as_str()];
                    let mut scratch = Vec::new();
                    tr.expand(file, &partial.members, &mut stack, &mut scratch);
                }
                ast::Item::Definition(definition) => {
                    tr.check_prefix(file, &definition.name);
                    let name = full_name(&options.object_type_prefix, &definition.name.text);
                    check_definition_name(&mut tr, file, &definition.name, &name);
                    if tr.partials.contains_key(definition.name.text.as_str()) {
                        tr.diags.push(
                            Diagnostic::error(
                                "duplicate-name",
                                file,
                                definition.name.span,
                                format!(
                                    "found definition with same name as existing partial `{}`",
                                    definition.name.text
                                ),
                            )
                            .with_label("a partial has this name")
                            .with_help("rename the definition or the partial"),
                        );
                    }
                    report_duplicate(&mut tr, &mut seen_names, file, &definition.name, &name);
                    for member in &definition.members {
                        tr.check_member(file, member);
                    }
                    let mut members = Vec::new();
                    let mut stack = Vec::new();
                    tr.expand(file, &definition.members, &mut stack, &mut members);
                    definitions.push(DefUnit {
                        name,
                        comments: comment_texts(&definition.comments),
                        members,
                    });
                }
                ast::Item::Caveat(caveat) => {
                    tr.check_prefix(file, &caveat.name);
                    let name = full_name(&options.object_type_prefix, &caveat.name.text);
                    if tr.partials.contains_key(caveat.name.text.as_str()) {
                        tr.diags.push(
                            Diagnostic::error(
                                "duplicate-name",
                                file,
                                caveat.name.span,
                                format!(
                                    "found caveat with same name as existing partial `{}`",
                                    caveat.name.text
                                ),
                            )
                            .with_label("a partial has this name")
                            .with_help("rename the caveat or the partial"),
                        );
                    }
                    report_duplicate(&mut tr, &mut seen_names, file, &caveat.name, &name);
                    if let Some(unit) = translate_caveat(&mut tr, file, caveat, name) {
                        caveats.push(unit);
                    }
                }
            }
        }
    }

    let warnings = fail_on_errors(tr.diags)?;
    Ok(Translated {
        features: tr.features,
        prefix: options.object_type_prefix.clone(),
        definitions,
        caveats,
        warnings,
    })
}

fn check_definition_name(
    tr: &mut Translator<'_>,
    file: &Arc<SourceFile>,
    ident: &ast::Ident,
    full: &str,
) {
    if !names::is_valid_definition_name(full) {
        tr.diags.push(
            Diagnostic::error(
                "invalid-name",
                file,
                ident.span,
                format!("invalid definition name `{full}`"),
            )
            .with_label("not a valid definition name")
            .with_help(format!(
                "{}; a prefix is written `prefix/name`",
                names::NAME_RULES_HELP
            )),
        );
    }
}

fn report_duplicate(
    tr: &mut Translator<'_>,
    seen: &mut HashMap<String, ()>,
    file: &Arc<SourceFile>,
    ident: &ast::Ident,
    full: &str,
) {
    if seen.insert(full.to_string(), ()).is_some() {
        tr.diags.push(
            Diagnostic::error(
                "duplicate-name",
                file,
                ident.span,
                format!("found name `{full}` reused between multiple definitions and/or caveats"),
            )
            .with_label("this name is already used")
            .with_help("definitions and caveats share one namespace: rename one of them"),
        );
    }
}

fn translate_caveat(
    tr: &mut Translator<'_>,
    file: &Arc<SourceFile>,
    caveat: &ast::Caveat,
    name: String,
) -> Option<CaveatUnit> {
    let mut params: Vec<CaveatParam> = Vec::new();
    let mut ok = true;
    for param in &caveat.params {
        if params
            .iter()
            .any(|existing| existing.name == param.name.text)
        {
            tr.diags.push(
                Diagnostic::error(
                    "duplicate-name",
                    file,
                    param.name.span,
                    format!(
                        "duplicate parameter `{}` defined on caveat `{name}`",
                        param.name.text
                    ),
                )
                .with_label("declared twice")
                .with_help("rename or remove one of the parameters"),
            );
            ok = false;
            continue;
        }
        match caveat::resolve_type(
            file,
            &param.param_type,
            &param.name.text,
            &name,
            &mut tr.diags,
        ) {
            Some(param_type) => params.push(CaveatParam {
                name: param.name.text.clone(),
                param_type,
            }),
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    let expression = caveat::check_expression(file, caveat, &name, &params, &mut tr.diags)?;
    Some(CaveatUnit {
        name,
        comments: comment_texts(&caveat.comments),
        params,
        expression,
    })
}
