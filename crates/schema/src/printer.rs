//! The canonical printer: turns a spanned AST back into schema text in SpiceDB's generator
//! style, keeping every comment, so that `ostiary schema fmt` and ReflectSchema agree.
//!
//! The output is stable: printing the parse of printed text gives the same text again.
//! Layout rules:
//! - `use` directives come first, then the other items in source order; consecutive `use`
//!   and `import` lines stay together, every other item is separated by one blank line;
//! - members are indented by one tab; without a source file (see [`print_with_source`]) a
//!   blank line goes before a member that carries comments, as SpiceDB's generator does;
//! - permission expressions drop the user's parentheses and get back those the tree needs
//!   (loosest to tightest: `-`, `&`, `+`, arrows; all left-associative), plus parentheses
//!   around an operand whose operator differs from its parent's, so that the surprising
//!   precedence never misleads a reader;
//! - comments are kept verbatim, only re-indented; caveat expressions are trimmed and
//!   re-indented by one tab, unless they hold a multi-line string literal.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::ast::{
    AllowedKind, AllowedType, Arrow, ArrowKind, Caveat, Comment, Definition, Expr, Item, Member,
    Permission, Relation, Schema, TypeRef,
};
use crate::diagnostic::Diagnostic;
use crate::lexer::{self, TokenKind};
use crate::source::{SourceFile, Span};

const INDENT: &str = "\t";

/// The characters treated as blank when trimming and re-indenting lines. Other Unicode
/// spaces are left alone, so that trimming never changes what a later pass sees.
const BLANKS: [char; 3] = [' ', '\t', '\r'];

/// Prints `schema` in canonical form, ending with exactly one newline (or empty for an
/// empty schema).
pub fn print(schema: &Schema) -> String {
    Printer { source: None }.schema(schema)
}

/// Prints `schema` like [`print()`], but keeps the user's blank lines between members of a
/// definition (several blank lines become one). `source` must be the file `schema` was
/// parsed from; this is what `ostiary schema fmt` uses.
pub fn print_with_source(schema: &Schema, source: &SourceFile) -> String {
    Printer {
        source: Some(source),
    }
    .schema(schema)
}

/// Parses `file` and prints it with [`print_with_source`]: what `ostiary schema fmt` writes.
///
/// Refuses (returning the diagnostics) a file with syntax errors, and a file with a comment
/// the syntax tree has no place for (inside an expression, say), which formatting would drop.
pub fn format(file: &Arc<SourceFile>) -> Result<String, Vec<Diagnostic>> {
    let parsed = crate::parser::parse(file);
    if !parsed.is_ok() {
        return Err(parsed.diagnostics);
    }
    let printed = print_with_source(&parsed.schema, file);
    let lost = lost_comments(file, &printed);
    if lost.is_empty() {
        Ok(printed)
    } else {
        Err(lost)
    }
}

/// An error for each comment of `file` that `printed` does not contain (whitespace is
/// ignored, since the printer re-indents block comments).
fn lost_comments(file: &Arc<SourceFile>, printed: &str) -> Vec<Diagnostic> {
    let printed = squash_whitespace(printed);
    lexer::lex(file.text())
        .into_iter()
        .filter(|token| {
            matches!(
                token.kind,
                TokenKind::SinglelineComment | TokenKind::MultilineComment
            )
        })
        .filter(|token| !printed.contains(&squash_whitespace(file.slice(token.span))))
        .map(|token| {
            Diagnostic::error(
                "fmt-comment-dropped",
                file,
                token.span,
                "formatting would drop this comment",
            )
            .with_label("the syntax tree keeps no comment here")
            .with_help("move the comment onto its own line before a definition or member")
        })
        .collect()
}

/// `text` with every run of whitespace replaced by one space.
fn squash_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Printer<'src> {
    source: Option<&'src SourceFile>,
}

/// Which run of lines an item belongs to: `use` and `import` lines are kept together.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ItemGroup {
    Use,
    Import,
    Block,
}

impl Printer<'_> {
    fn schema(&self, schema: &Schema) -> String {
        let mut out = String::new();
        // `use` must precede every definition, so moving the directives to the top never
        // changes the meaning; it only gathers them when the parser accepted them later.
        let uses = schema
            .items
            .iter()
            .filter(|item| matches!(item, Item::Use(_)));
        let others = schema
            .items
            .iter()
            .filter(|item| !matches!(item, Item::Use(_)));
        let mut previous: Option<ItemGroup> = None;
        for item in uses.chain(others) {
            let group = match item {
                Item::Use(_) => ItemGroup::Use,
                Item::Import(_) => ItemGroup::Import,
                _ => ItemGroup::Block,
            };
            if let Some(previous) = previous {
                let same_run = previous == group && group != ItemGroup::Block;
                if !same_run || !item.comments().is_empty() {
                    out.push('\n');
                }
            }
            previous = Some(group);
            self.item(&mut out, item);
        }
        if !schema.trailing_comments.is_empty() {
            if previous.is_some() {
                out.push('\n');
            }
            self.write_comments(&mut out, &schema.trailing_comments, "", None);
        }
        out
    }

    fn item(&self, out: &mut String, item: &Item) {
        self.write_comments(out, item.comments(), "", Some(item.span()));
        match item {
            Item::Use(directive) => {
                let _ = writeln!(out, "use {}", directive.flag.text);
            }
            Item::Import(import) => {
                let _ = writeln!(out, "import \"{}\"", import.path);
            }
            Item::Definition(definition) => self.definition(out, "definition", definition),
            Item::Partial(partial) => self.definition(out, "partial", partial),
            Item::Caveat(caveat) => {
                let first_indent = self
                    .source
                    .and_then(|source| caveat_first_indent(source, caveat));
                write_caveat(out, caveat, first_indent);
            }
        }
    }

    fn definition(&self, out: &mut String, keyword: &str, definition: &Definition) {
        let _ = write!(out, "{keyword} {}", definition.name.text);
        if definition.members.is_empty() && definition.trailing_comments.is_empty() {
            out.push_str(" {}\n");
            return;
        }
        out.push_str(" {\n");
        let mut previous_end: Option<Span> = None;
        for member in &definition.members {
            let start = member
                .comments()
                .first()
                .map_or(member.span(), |comment| comment.span);
            if let Some(previous_end) = previous_end
                && self.wants_blank_line(previous_end, start, !member.comments().is_empty())
            {
                out.push('\n');
            }
            previous_end = Some(member.span());
            self.write_comments(out, member.comments(), INDENT, Some(member.span()));
            out.push_str(INDENT);
            match member {
                Member::Relation(relation) => write_relation(out, relation),
                Member::Permission(permission) => write_permission(out, permission),
                Member::Splat(splat) => {
                    let _ = write!(out, "...{}", splat.partial.text);
                }
            }
            if let Some(comment) = member.trailing_comment() {
                out.push(' ');
                out.push_str(&comment.text);
            }
            out.push('\n');
        }
        if let Some(first) = definition.trailing_comments.first() {
            if let Some(previous_end) = previous_end
                && self.wants_blank_line(previous_end, first.span, true)
            {
                out.push('\n');
            }
            self.write_comments(out, &definition.trailing_comments, INDENT, None);
        }
        out.push_str("}\n");
    }

    /// Whether a blank line separates two members: as in the source when there is one,
    /// otherwise before anything that carries comments.
    fn wants_blank_line(&self, previous: Span, next: Span, next_has_comments: bool) -> bool {
        match self.source {
            Some(source) => source
                .text()
                .get(previous.end()..next.start())
                .is_some_and(|between| between.matches('\n').count() >= 2),
            None => next_has_comments,
        }
    }

    /// Writes a run of comments. With a source file, a blank line between two comments, or
    /// between the last one and `next` (what the comments belong to), is kept.
    fn write_comments(
        &self,
        out: &mut String,
        comments: &[Comment],
        indent: &str,
        next: Option<Span>,
    ) {
        for (idx, comment) in comments.iter().enumerate() {
            write_comment(out, &comment.text, indent);
            let following = comments.get(idx + 1).map(|comment| comment.span).or(next);
            if let Some(following) = following
                && self.source.is_some()
                && self.wants_blank_line(comment.span, following, false)
            {
                out.push('\n');
            }
        }
    }
}

/// Writes one comment on its own lines. `//` comments are kept as written; the lines of a
/// block comment are re-indented: lines starting with `*` line up under the opening `/*`,
/// other lines keep their indentation relative to each other.
fn write_comment(out: &mut String, text: &str, indent: &str) {
    let mut lines = text.trim_matches(BLANKS).split('\n');
    let first = lines.next().unwrap_or_default();
    let rest: Vec<&str> = lines.map(|line| line.trim_end_matches(BLANKS)).collect();
    let common = rest
        .iter()
        .filter(|line| {
            let trimmed = trim_indent(line);
            !trimmed.is_empty() && !trimmed.starts_with('*')
        })
        .map(|line| line.len() - trim_indent(line).len())
        .min()
        .unwrap_or(0);
    let _ = writeln!(out, "{indent}{}", first.trim_end_matches(BLANKS));
    for line in rest {
        let trimmed = trim_indent(line);
        if trimmed.is_empty() {
            out.push('\n');
        } else if trimmed.starts_with('*') {
            let _ = writeln!(out, "{indent} {trimmed}");
        } else {
            // INVARIANT: `common` counts leading ASCII blanks and no line counted has
            // fewer, so the slice starts on a character boundary.
            let kept = line.get(common..).unwrap_or(trimmed);
            let _ = writeln!(out, "{indent}{kept}");
        }
    }
}

/// `line` without its leading spaces and tabs.
fn trim_indent(line: &str) -> &str {
    line.trim_start_matches(BLANKS)
}

fn write_relation(out: &mut String, relation: &Relation) {
    let _ = write!(out, "relation {}: ", relation.name.text);
    for (idx, allowed) in relation.allowed_types.iter().enumerate() {
        if idx > 0 {
            out.push_str(" | ");
        }
        write_allowed_type(out, allowed);
    }
}

fn write_allowed_type(out: &mut String, allowed: &AllowedType) {
    out.push_str(&allowed.type_name.text);
    match &allowed.kind {
        // `type#...` means `type`, and is printed so as SpiceDB does. It could not end a
        // line anyway: a newline after `...` does not end the statement.
        AllowedKind::Direct | AllowedKind::Ellipsis(_) => {}
        AllowedKind::Wildcard(_) => out.push_str(":*"),
        AllowedKind::SubjectRelation(relation) => {
            let _ = write!(out, "#{}", relation.text);
        }
    }
    match (&allowed.caveat, allowed.expiration.is_some()) {
        (None, false) => {}
        (None, true) => out.push_str(" with expiration"),
        (Some(caveat), false) => {
            let _ = write!(out, " with {}", caveat.text);
        }
        (Some(caveat), true) => {
            let _ = write!(out, " with {} and expiration", caveat.text);
        }
    }
}

fn write_permission(out: &mut String, permission: &Permission) {
    let _ = write!(out, "permission {}", permission.name.text);
    for (idx, type_name) in permission.type_annotation.iter().enumerate() {
        out.push_str(if idx == 0 { ": " } else { " | " });
        out.push_str(&type_name.text);
    }
    out.push_str(" = ");
    write_expr(out, &permission.expr);
}

/// Binding strength of an expression's outermost operator; higher binds tighter.
fn precedence(expr: &Expr) -> u8 {
    match expr {
        Expr::Paren(inner, _) => precedence(inner),
        Expr::Exclusion(..) => 1,
        Expr::Intersection(..) => 2,
        Expr::Union(..) => 3,
        Expr::Arrow(_) => 4,
        Expr::Ref(_) | Expr::Nil(_) | Expr::SelfRef(_) => 5,
    }
}

/// Writes `expr`, dropping the user's parentheses and adding back only those the tree needs.
fn write_expr(out: &mut String, expr: &Expr) {
    match expr {
        Expr::Ref(ident) => out.push_str(&ident.text),
        Expr::Nil(_) => out.push_str("nil"),
        Expr::SelfRef(_) => out.push_str("self"),
        Expr::Paren(inner, _) => write_expr(out, inner),
        Expr::Union(left, right, _) => write_binary(out, left, " + ", right, 3),
        Expr::Intersection(left, right, _) => write_binary(out, left, " & ", right, 2),
        Expr::Exclusion(left, right, _) => write_binary(out, left, " - ", right, 1),
        Expr::Arrow(arrow) => write_arrow(out, arrow),
    }
}

fn write_binary(out: &mut String, left: &Expr, operator: &str, right: &Expr, level: u8) {
    // Left-associative, so a left operand with the same operator needs no parentheses and a
    // right one does (`a - (b - c)`). An operand with another operator is parenthesised
    // even where precedence would make it unnecessary: `a - b + c` means `a - (b + c)`,
    // which few readers would guess, and a misread exclusion grants access.
    write_operand(out, left, is_binary(left) && precedence(left) != level);
    out.push_str(operator);
    write_operand(out, right, is_binary(right));
}

/// Whether `expr` is a `+`, `&` or `-` expression (looking through parentheses).
fn is_binary(expr: &Expr) -> bool {
    (1..=3).contains(&precedence(expr))
}

fn write_operand(out: &mut String, expr: &Expr, parenthesise: bool) {
    if parenthesise {
        out.push('(');
        write_expr(out, expr);
        out.push(')');
    } else {
        write_expr(out, expr);
    }
}

fn write_arrow(out: &mut String, arrow: &Arrow) {
    write_operand(out, &arrow.left, precedence(&arrow.left) < 4);
    let target = &arrow.target.text;
    let _ = match arrow.kind {
        ArrowKind::Arrow => write!(out, "->{target}"),
        ArrowKind::Any => write!(out, ".any({target})"),
        ArrowKind::All => write!(out, ".all({target})"),
    };
}

/// The blank text before a caveat's expression on its line, when the expression starts a
/// line of its own in `source`.
fn caveat_first_indent<'src>(source: &'src SourceFile, caveat: &Caveat) -> Option<&'src str> {
    let span = caveat.expression_span;
    if source.slice(span) != caveat.expression {
        return None;
    }
    let before = source.text().get(..span.start())?;
    let line_start = before.rfind('\n').map_or(0, |idx| idx + 1);
    let prefix = before.get(line_start..)?;
    trim_indent(prefix).is_empty().then_some(prefix)
}

fn write_caveat(out: &mut String, caveat: &Caveat, first_indent: Option<&str>) {
    let _ = write!(out, "caveat {}(", caveat.name.text);
    for (idx, param) in caveat.params.iter().enumerate() {
        if idx > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{} ", param.name.text);
        write_type_ref(out, &param.param_type);
    }
    out.push_str(") {\n");
    for line in caveat_body_lines(&caveat.expression, first_indent) {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{INDENT}{line}");
        }
    }
    out.push_str("}\n");
}

fn write_type_ref(out: &mut String, type_ref: &TypeRef) {
    out.push_str(&type_ref.name.text);
    if !type_ref.args.is_empty() {
        out.push('<');
        for (idx, arg) in type_ref.args.iter().enumerate() {
            if idx > 0 {
                out.push_str(", ");
            }
            write_type_ref(out, arg);
        }
        out.push('>');
    }
}

/// The lines of a caveat's CEL expression, without surrounding blank lines, trailing
/// whitespace and the common indentation.
///
/// The parser's expression text starts at its first token, so the first line's indentation
/// is known only from the source: `first_indent` is the blank text before the expression on
/// its line, when it stands on a line of its own. Without it, the first line is trimmed and
/// does not count towards the common indentation (the result is stable either way: a
/// second pass strips exactly the tab the first pass added).
fn caveat_body_lines(expression: &str, first_indent: Option<&str>) -> Vec<String> {
    if expression.contains("'''") || expression.contains("\"\"\"") {
        // A multi-line string literal would change if its lines were re-indented.
        let trimmed = expression.trim_matches([' ', '\t', '\r', '\n']);
        return if trimmed.is_empty() {
            Vec::new()
        } else {
            vec![trimmed.to_owned()]
        };
    }
    let mut lines: Vec<String> = expression
        .split('\n')
        .map(|line| line.trim_end_matches(BLANKS).to_owned())
        .collect();
    let first_line_known = match (first_indent, lines.first_mut()) {
        (Some(prefix), Some(first)) if !first.is_empty() => {
            first.insert_str(0, prefix);
            true
        }
        _ => false,
    };
    let is_blank = |line: &String| trim_indent(line).is_empty();
    let first_line_idx = lines.iter().position(|line| !is_blank(line));
    let last_line_idx = lines.iter().rposition(|line| !is_blank(line));
    let (Some(first_line_idx), Some(last_line_idx)) = (first_line_idx, last_line_idx) else {
        return Vec::new();
    };
    let skip_first = !first_line_known;
    let lines = &lines[first_line_idx..=last_line_idx];
    let common = lines
        .iter()
        .enumerate()
        .filter(|(idx, line)| (*idx > 0 || !skip_first) && !is_blank(line))
        .map(|(_, line)| line.len() - trim_indent(line).len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .enumerate()
        .map(|(idx, line)| {
            if skip_first && idx == 0 {
                trim_indent(line).to_owned()
            } else {
                // Leading blanks are ASCII, so `common` falls on a character boundary.
                line.get(common..)
                    .unwrap_or_else(|| trim_indent(line))
                    .to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;
    use crate::ast::{AllowedKind, CaveatParam, Ident, Import, Item, Splat, TypeRef, UseDirective};

    fn ident(text: &str) -> Ident {
        Ident {
            text: text.to_owned(),
            span: Span::default(),
        }
    }

    fn comment(text: &str) -> Comment {
        Comment {
            text: text.to_owned(),
            span: Span::default(),
        }
    }

    fn comments(texts: &[&str]) -> Vec<Comment> {
        texts.iter().map(|text| comment(text)).collect()
    }

    fn definition(name: &str, members: Vec<Member>) -> Definition {
        Definition {
            comments: Vec::new(),
            name: ident(name),
            members,
            trailing_comments: Vec::new(),
            span: Span::default(),
        }
    }

    fn def(name: &str, members: Vec<Member>) -> Item {
        Item::Definition(definition(name, members))
    }

    fn use_flag(flag: &str) -> Item {
        Item::Use(UseDirective {
            comments: Vec::new(),
            flag: ident(flag),
            span: Span::default(),
        })
    }

    fn import(path: &str) -> Item {
        Item::Import(Import {
            comments: Vec::new(),
            path: path.to_owned(),
            path_span: Span::default(),
            span: Span::default(),
        })
    }

    fn ty(name: &str, kind: AllowedKind) -> AllowedType {
        AllowedType {
            type_name: ident(name),
            kind,
            caveat: None,
            expiration: None,
            span: Span::default(),
        }
    }

    fn direct(name: &str) -> AllowedType {
        ty(name, AllowedKind::Direct)
    }

    fn with(mut allowed: AllowedType, caveat: Option<&str>, expiration: bool) -> AllowedType {
        allowed.caveat = caveat.map(ident);
        allowed.expiration = expiration.then(Span::default);
        allowed
    }

    fn rel(name: &str, allowed_types: Vec<AllowedType>) -> Member {
        Member::Relation(Relation {
            comments: Vec::new(),
            name: ident(name),
            allowed_types,
            trailing_comment: None,
            span: Span::default(),
        })
    }

    fn perm(name: &str, expr: Expr) -> Member {
        Member::Permission(Permission {
            comments: Vec::new(),
            name: ident(name),
            type_annotation: Vec::new(),
            expr,
            trailing_comment: None,
            span: Span::default(),
        })
    }

    fn commented(mut member: Member, texts: &[&str]) -> Member {
        let target = match &mut member {
            Member::Relation(member) => &mut member.comments,
            Member::Permission(member) => &mut member.comments,
            Member::Splat(member) => &mut member.comments,
        };
        *target = comments(texts);
        member
    }

    fn r(name: &str) -> Expr {
        Expr::Ref(ident(name))
    }

    fn union(left: Expr, right: Expr) -> Expr {
        Expr::Union(Box::new(left), Box::new(right), Span::default())
    }

    fn inter(left: Expr, right: Expr) -> Expr {
        Expr::Intersection(Box::new(left), Box::new(right), Span::default())
    }

    fn excl(left: Expr, right: Expr) -> Expr {
        Expr::Exclusion(Box::new(left), Box::new(right), Span::default())
    }

    fn paren(inner: Expr) -> Expr {
        Expr::Paren(Box::new(inner), Span::default())
    }

    fn arrow(left: Expr, kind: ArrowKind, target: &str) -> Expr {
        Expr::Arrow(Box::new(Arrow {
            left,
            kind,
            target: ident(target),
            span: Span::default(),
        }))
    }

    fn type_ref(name: &str, args: Vec<TypeRef>) -> TypeRef {
        TypeRef {
            name: ident(name),
            args,
            span: Span::default(),
        }
    }

    fn caveat(name: &str, params: &[(&str, TypeRef)], expression: &str) -> Item {
        Item::Caveat(Caveat {
            comments: Vec::new(),
            name: ident(name),
            params: params
                .iter()
                .map(|(name, param_type)| CaveatParam {
                    name: ident(name),
                    param_type: param_type.clone(),
                    span: Span::default(),
                })
                .collect(),
            expression: expression.to_owned(),
            expression_span: Span::default(),
            span: Span::default(),
        })
    }

    fn schema(items: Vec<Item>) -> Schema {
        Schema {
            items,
            trailing_comments: Vec::new(),
        }
    }

    fn check(schema: &Schema, expect: Expect) {
        expect.assert_eq(&print(schema));
    }

    /// Prints each expression as the body of a permission, one per line.
    fn check_exprs(exprs: Vec<Expr>, expect: Expect) {
        let mut out = String::new();
        for expr in exprs {
            write_expr(&mut out, &expr);
            out.push('\n');
        }
        expect.assert_eq(&out);
    }

    #[test]
    fn empty_schema_prints_nothing() {
        check(&Schema::default(), expect![""]);
    }

    #[test]
    fn uses_come_first_then_items_in_source_order() {
        check(
            &schema(vec![
                use_flag("expiration"),
                import("a.zed"),
                def("user", Vec::new()),
                import("b.zed"),
                use_flag("import"),
                caveat("c", &[], "true"),
                def("doc", vec![rel("viewer", vec![direct("user")])]),
            ]),
            expect![[r#"
                use expiration
                use import

                import "a.zed"

                definition user {}

                import "b.zed"

                caveat c() {
                	true
                }

                definition doc {
                	relation viewer: user
                }
            "#]],
        );
    }

    #[test]
    fn consecutive_imports_stay_together() {
        check(
            &schema(vec![
                use_flag("import"),
                import("a.zed"),
                import("b/c.zed"),
                def("user", Vec::new()),
            ]),
            expect![[r#"
                use import

                import "a.zed"
                import "b/c.zed"

                definition user {}
            "#]],
        );
    }

    #[test]
    fn relations_print_every_allowed_type_form() {
        check(
            &schema(vec![def(
                "tenant/doc",
                vec![
                    rel("plain", vec![direct("user")]),
                    rel(
                        "many",
                        vec![
                            direct("user"),
                            ty("group", AllowedKind::SubjectRelation(ident("member"))),
                            ty("user", AllowedKind::Wildcard(Span::default())),
                            ty("folder", AllowedKind::Ellipsis(Span::default())),
                        ],
                    ),
                    rel(
                        "traits",
                        vec![
                            with(direct("user"), Some("cav"), false),
                            with(direct("user"), None, true),
                            with(direct("user"), Some("tenant/cav"), true),
                            with(
                                ty("user", AllowedKind::Wildcard(Span::default())),
                                Some("cav"),
                                false,
                            ),
                            with(
                                ty("group", AllowedKind::SubjectRelation(ident("member"))),
                                Some("cav"),
                                true,
                            ),
                        ],
                    ),
                ],
            )]),
            expect![[r#"
                definition tenant/doc {
                	relation plain: user
                	relation many: user | group#member | user:* | folder
                	relation traits: user with cav | user with expiration | user with tenant/cav and expiration | user:* with cav | group#member with cav and expiration
                }
            "#]],
        );
    }

    #[test]
    fn binary_operators_get_needed_and_clarifying_parentheses() {
        check_exprs(
            vec![
                union(union(r("a"), r("b")), r("c")),
                union(r("a"), union(r("b"), r("c"))),
                excl(excl(r("a"), r("b")), r("c")),
                excl(r("a"), excl(r("b"), r("c"))),
                inter(r("a"), inter(r("b"), r("c"))),
                // `-` binds loosest, so a union on either side needs no parentheses, but gets
                // them so that nobody reads `a - b + c` as `(a - b) + c`.
                excl(union(r("a"), r("b")), r("c")),
                excl(r("a"), union(r("b"), r("c"))),
                // An exclusion inside a union or intersection needs them.
                union(r("a"), excl(r("b"), r("c"))),
                union(excl(r("a"), r("b")), r("c")),
                inter(excl(r("a"), r("b")), r("c")),
                inter(union(r("a"), r("b")), r("c")),
                union(inter(r("a"), r("b")), r("c")),
                union(r("a"), inter(r("b"), r("c"))),
                excl(inter(r("a"), r("b")), inter(r("c"), r("d"))),
                // Written parentheses are dropped where they are not needed.
                paren(paren(r("a"))),
                union(paren(r("a")), paren(union(r("b"), r("c")))),
                excl(paren(union(r("a"), r("b"))), paren(excl(r("c"), r("d")))),
                union(Expr::Nil(Span::default()), Expr::SelfRef(Span::default())),
            ],
            expect![[r#"
                a + b + c
                a + (b + c)
                a - b - c
                a - (b - c)
                a & (b & c)
                (a + b) - c
                a - (b + c)
                a + (b - c)
                (a - b) + c
                (a - b) & c
                (a + b) & c
                (a & b) + c
                a + (b & c)
                (a & b) - (c & d)
                a
                a + (b + c)
                (a + b) - (c - d)
                nil + self
            "#]],
        );
    }

    #[test]
    fn arrows_keep_their_written_form() {
        check_exprs(
            vec![
                arrow(r("parent"), ArrowKind::Arrow, "view"),
                arrow(r("parent"), ArrowKind::Any, "view"),
                arrow(r("parent"), ArrowKind::All, "view"),
                arrow(
                    arrow(arrow(r("p1"), ArrowKind::Any, "m1"), ArrowKind::All, "m2"),
                    ArrowKind::Arrow,
                    "m3",
                ),
                union(
                    r("foo"),
                    arrow(
                        arrow(r("bar"), ArrowKind::Arrow, "baz"),
                        ArrowKind::Arrow,
                        "meh",
                    ),
                ),
                excl(
                    arrow(r("a"), ArrowKind::Arrow, "b"),
                    arrow(r("c"), ArrowKind::All, "d"),
                ),
                arrow(paren(union(r("a"), r("b"))), ArrowKind::Arrow, "c"),
                arrow(
                    paren(arrow(r("a"), ArrowKind::Arrow, "b")),
                    ArrowKind::Any,
                    "c",
                ),
            ],
            expect![[r#"
                parent->view
                parent.any(view)
                parent.all(view)
                p1.any(m1).all(m2)->m3
                foo + bar->baz->meh
                a->b - c.all(d)
                (a + b)->c
                a->b.any(c)
            "#]],
        );
    }

    #[test]
    fn permissions_print_type_annotations_and_splats() {
        let mut annotated = perm("view", r("viewer"));
        if let Member::Permission(permission) = &mut annotated {
            permission.type_annotation = vec![ident("user"), ident("tenant/group")];
        }
        let splat = Member::Splat(Splat {
            comments: Vec::new(),
            partial: ident("common"),
            trailing_comment: None,
            span: Span::default(),
        });
        check(
            &schema(vec![
                use_flag("typechecking"),
                use_flag("partial"),
                Item::Partial(definition(
                    "common",
                    vec![rel("viewer", vec![direct("user")])],
                )),
                def(
                    "doc",
                    vec![splat, annotated, perm("none", Expr::Nil(Span::default()))],
                ),
            ]),
            expect![[r#"
                use typechecking
                use partial

                partial common {
                	relation viewer: user
                }

                definition doc {
                	...common
                	permission view: user | tenant/group = viewer
                	permission none = nil
                }
            "#]],
        );
    }

    #[test]
    fn caveats_print_parameters_and_a_reindented_body() {
        check(
            &schema(vec![
                caveat(
                    "simple",
                    &[
                        ("count", type_ref("int", Vec::new())),
                        (
                            "names",
                            type_ref("list", vec![type_ref("string", Vec::new())]),
                        ),
                        (
                            "nested",
                            type_ref(
                                "map",
                                vec![type_ref("list", vec![type_ref("ipaddress", Vec::new())])],
                            ),
                        ),
                    ],
                    "\n    count > 1   \n",
                ),
                // The first line sits on the brace line; the rest keeps its relative indent.
                caveat(
                    "multi",
                    &[("a", type_ref("bool", Vec::new()))],
                    " a &&\n        ({\n          \"k\": 1\n        }).contains(\"k\")\n    ",
                ),
                caveat("empty", &[], "  \n  "),
                caveat("literal", &[], "\n  '''line one\n     line two''' == x\n"),
            ]),
            expect![[r#"
                caveat simple(count int, names list<string>, nested map<list<ipaddress>>) {
                	count > 1
                }

                caveat multi(a bool) {
                	a &&
                	({
                	  "k": 1
                	}).contains("k")
                }

                caveat empty() {
                }

                caveat literal() {
                	'''line one
                     line two''' == x
                }
            "#]],
        );
    }

    #[test]
    fn comments_are_kept_and_reindented() {
        let mut doc = definition(
            "doc",
            vec![
                commented(rel("owner", vec![direct("user")]), &["// owns it"]),
                rel("viewer", vec![direct("user")]),
                commented(
                    perm("view", union(r("owner"), r("viewer"))),
                    &[
                        "/**\n         * view is\n         *   indented\n         */",
                        "// second",
                    ],
                ),
                commented(
                    perm("edit", r("owner")),
                    &[
                        "/* free\n            text\n              indented more\n\n            end */",
                    ],
                ),
            ],
        );
        doc.comments = comments(&["/** doc is a document */"]);
        doc.trailing_comments = comments(&["// the end of doc"]);
        let mut only_comments = definition("bare", Vec::new());
        only_comments.trailing_comments = comments(&["// nothing yet"]);
        let mut schema = schema(vec![Item::Definition(doc), Item::Definition(only_comments)]);
        schema.trailing_comments = comments(&["// file end   ", "/* really */"]);
        check(
            &schema,
            expect![[r#"
                /** doc is a document */
                definition doc {
                	// owns it
                	relation owner: user
                	relation viewer: user

                	/**
                	 * view is
                	 *   indented
                	 */
                	// second
                	permission view = owner + viewer

                	/* free
                	text
                	  indented more

                	end */
                	permission edit = owner

                	// the end of doc
                }

                definition bare {
                	// nothing yet
                }

                // file end
                /* really */
            "#]],
        );
    }

    #[test]
    fn comments_on_use_directives_separate_them() {
        let mut licence = use_flag("expiration");
        if let Item::Use(directive) = &mut licence {
            directive.comments = comments(&["// Licence header."]);
        }
        let mut second = use_flag("self");
        if let Item::Use(directive) = &mut second {
            directive.comments = comments(&["// self is for groups"]);
        }
        check(
            &schema(vec![licence, use_flag("partial"), second]),
            expect![[r#"
                // Licence header.
                use expiration
                use partial

                // self is for groups
                use self
            "#]],
        );
    }

    #[test]
    fn source_blank_lines_between_members_are_kept_once() {
        let text = "definition doc {\n  relation a: user\n\n\n  relation b: user\n  // c\n  permission c = a\n}\n";
        let file = SourceFile::new("t.zed", text);
        let span_of = |needle: &str| {
            let start = text.find(needle).unwrap_or_default();
            Span::new(start, start + needle.len())
        };
        let mut a = rel("a", vec![direct("user")]);
        let mut b = rel("b", vec![direct("user")]);
        let mut c = commented(perm("c", r("a")), &["// c"]);
        if let (Member::Relation(a), Member::Relation(b), Member::Permission(c)) =
            (&mut a, &mut b, &mut c)
        {
            a.span = span_of("relation a: user");
            b.span = span_of("relation b: user");
            c.span = span_of("permission c = a");
            c.comments[0].span = span_of("// c");
        }
        let schema = schema(vec![def("doc", vec![a, b, c])]);
        expect![[r#"
            definition doc {
            	relation a: user

            	relation b: user
            	// c
            	permission c = a
            }
        "#]]
        .assert_eq(&print_with_source(&schema, &file));
    }
}
