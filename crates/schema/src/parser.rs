//! The parser: tokens → spanned AST, by recursive descent.
//!
//! It accepts what SpiceDB's parser accepts and reports errors at the same token. Unlike
//! SpiceDB it does not stop at the first error: after an error it skips to the end of the
//! member or item and goes on, so one run reports every independent syntax error.
//!
//! Operator precedence, loosest first: `-`, `&`, `+`, then arrows (`->`, `.any()`, `.all()`),
//! all left-associative; so `a - b + c` is `a - (b + c)`.

use std::sync::Arc;

use crate::ast::{
    AllowedKind, AllowedType, Arrow, ArrowKind, Caveat, CaveatParam, Comment, Definition, Expr,
    Ident, Import, Item, Member, Permission, Relation, Schema, Splat, TypeRef, UseDirective,
};
use crate::diagnostic::Diagnostic;
use crate::lexer::{self, Token, TokenKind};
use crate::source::{SourceFile, Span};

/// The `use` flags SpiceDB knows.
pub(crate) const USE_FLAGS: &[&str] = &["expiration", "import", "partial", "self", "typechecking"];

/// The result of parsing: the tree (as much of it as could be read) and the syntax errors.
/// The tree is only trustworthy when `diagnostics` is empty.
#[derive(Debug)]
pub struct Parsed {
    /// The syntax tree.
    pub schema: Schema,
    /// Syntax errors, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// Whether the text parsed without errors.
    pub fn is_ok(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

/// Parses a schema file. Never fails: errors are returned beside the partial tree.
pub fn parse(file: &Arc<SourceFile>) -> Parsed {
    let mut parser = Parser::new(file);
    let schema = parser.schema();
    Parsed {
        schema,
        diagnostics: parser.diagnostics,
    }
}

/// Marker for "an error was reported; recover".
struct Reported;

type PResult<T> = Result<T, Reported>;

struct Parser<'a> {
    file: &'a Arc<SourceFile>,
    /// Significant tokens (no whitespace or comments), ending with `Eof`.
    tokens: Vec<Token>,
    /// Comments written before each significant token.
    comments: Vec<Vec<Comment>>,
    pos: usize,
    diagnostics: Vec<Diagnostic>,
    use_flags: Vec<String>,
    seen_definition: bool,
}

impl<'a> Parser<'a> {
    fn new(file: &'a Arc<SourceFile>) -> Self {
        let mut tokens = Vec::new();
        let mut comments = Vec::new();
        let mut pending = Vec::new();
        for token in lexer::lex(file.text()) {
            match token.kind {
                TokenKind::SinglelineComment | TokenKind::MultilineComment => {
                    pending.push(Comment {
                        text: file.slice(token.span).trim_end().to_owned(),
                        span: token.span,
                    });
                }
                kind if kind.is_trivia() => {}
                _ => {
                    tokens.push(token);
                    comments.push(std::mem::take(&mut pending));
                }
            }
        }
        Parser {
            file,
            tokens,
            comments,
            pos: 0,
            diagnostics: Vec::new(),
            use_flags: Vec::new(),
            seen_definition: false,
        }
    }

    // ---- token helpers ----

    fn current(&self) -> Token {
        // INVARIANT: the lexer always ends with `Eof` and `bump` never moves past it.
        self.tokens[self.pos]
    }

    fn peek_kind(&self, ahead: usize) -> TokenKind {
        self.tokens
            .get(self.pos + ahead)
            .map_or(TokenKind::Eof, |t| t.kind)
    }

    fn kind(&self) -> TokenKind {
        self.current().kind
    }

    fn text(&self) -> &'a str {
        self.file.slice(self.current().span)
    }

    fn bump(&mut self) -> Token {
        let token = self.current();
        if token.kind != TokenKind::Eof {
            self.pos += 1;
        }
        token
    }

    fn at(&self, kind: TokenKind) -> bool {
        self.kind() == kind
    }

    fn at_keyword(&self, word: &str) -> bool {
        self.kind() == TokenKind::Keyword && self.text() == word
    }

    fn at_word(&self, word: &str) -> bool {
        self.kind() == TokenKind::Identifier && self.text() == word
    }

    fn eat(&mut self, kind: TokenKind) -> Option<Token> {
        if self.at(kind) {
            Some(self.bump())
        } else {
            None
        }
    }

    fn take_comments(&mut self) -> Vec<Comment> {
        self.comments
            .get_mut(self.pos)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether `word` cannot be used as a name here: a keyword, or a word a `use` flag
    /// turned into one.
    fn is_reserved(&self, word: &str) -> bool {
        lexer::KEYWORDS.contains(&word)
            || (word == "expiration" && self.has_flag("expiration"))
            || (word == "self" && self.has_flag("self"))
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.use_flags.iter().any(|f| f == flag)
    }

    // ---- diagnostics ----

    /// How the current token reads in a message: its text for names and punctuation.
    fn found(&self) -> String {
        let token = self.current();
        match token.kind {
            TokenKind::Eof => "the end of the file".to_owned(),
            TokenKind::SyntheticSemicolon => "the end of the line".to_owned(),
            TokenKind::Error => format!("`{}`", self.file.slice(token.span).trim()),
            _ => format!("`{}`", self.file.slice(token.span)),
        }
    }

    /// Reports that the current token is not what was `expected`. Lexer errors get their own
    /// message (an unterminated string says so, not "unexpected").
    fn unexpected(&mut self, expected: &str, help: Option<&str>) -> Reported {
        let token = self.current();
        let diag = if token.kind == TokenKind::Error {
            self.lexer_error(token)
        } else {
            let span = if token.kind == TokenKind::SyntheticSemicolon {
                Span::point(token.span.start())
            } else {
                token.span
            };
            Diagnostic::error(
                "syntax",
                self.file,
                span,
                format!("unexpected {}", self.found()),
            )
            .with_label(format!("expected {expected}"))
        };
        let diag = match help {
            Some(help) if diag.help.is_none() => diag.with_help(help),
            _ => diag,
        };
        self.diagnostics.push(diag);
        Reported
    }

    fn lexer_error(&self, token: Token) -> Diagnostic {
        let text = self.file.slice(token.span);
        let (message, label, help) = if text.starts_with("/*") {
            (
                "unterminated comment".to_owned(),
                "this comment is never closed",
                "close it with `*/`",
            )
        } else if text.starts_with('"') || text.starts_with('\'') {
            (
                "unterminated string".to_owned(),
                "this string is never closed",
                "end the string with the quote it started with, on the same line",
            )
        } else {
            (
                format!("unrecognized character `{}`", text.escape_debug()),
                "not part of the schema language",
                "names use letters, digits and `_`; remove or replace this character",
            )
        };
        Diagnostic::error("syntax", self.file, token.span, message)
            .with_label(label)
            .with_help(help)
    }

    fn error_at(&mut self, span: Span, message: impl Into<String>, label: &str, help: &str) {
        self.diagnostics.push(
            Diagnostic::error("syntax", self.file, span, message)
                .with_label(label)
                .with_help(help),
        );
    }

    fn expect(&mut self, kind: TokenKind, expected: &str, help: Option<&str>) -> PResult<Token> {
        match self.eat(kind) {
            Some(token) => Ok(token),
            None => Err(self.unexpected(expected, help)),
        }
    }

    /// A plain name: an identifier that is not reserved.
    fn name(&mut self, what: &str) -> PResult<Ident> {
        let token = self.current();
        let text = self.text();
        if token.kind == TokenKind::Identifier && !self.is_reserved(text) {
            self.bump();
            return Ok(Ident {
                text: text.to_owned(),
                span: token.span,
            });
        }
        if matches!(token.kind, TokenKind::Keyword | TokenKind::Identifier) {
            self.error_at(
                token.span,
                format!("`{text}` is a keyword and cannot be used as {what}"),
                &format!("expected {what}"),
                "choose another name",
            );
            return Err(Reported);
        }
        Err(self.unexpected(what, None))
    }

    /// A type path: `name` or `prefix/name`, any number of prefix segments.
    fn type_path(&mut self, what: &str) -> PResult<Ident> {
        let first = self.name(what)?;
        let mut text = first.text;
        let mut span = first.span;
        while self.at(TokenKind::Div) {
            self.bump();
            let segment = self.name(what)?;
            text.push('/');
            text.push_str(&segment.text);
            span = span.to(segment.span);
        }
        Ok(Ident { text, span })
    }

    fn at_terminator(&self) -> bool {
        matches!(
            self.kind(),
            TokenKind::Semicolon | TokenKind::SyntheticSemicolon
        )
    }

    fn skip_terminators(&mut self) {
        while self.at_terminator() {
            self.bump();
        }
    }

    /// Requires the end of a member: `;` or a newline. As in SpiceDB, a `}` on the same line
    /// does not end it.
    fn end_of_statement(&mut self, after: &str) -> PResult<()> {
        if self.at_terminator() {
            self.bump();
            return Ok(());
        }
        if self.at(TokenKind::Eof) {
            // The caller reports the missing `}`; one error is enough.
            return Ok(());
        }
        let help = if self.at(TokenKind::RightBrace) {
            Some("put the closing `}` on its own line, or end the member with `;`")
        } else {
            None
        };
        Err(self.unexpected(&format!("a newline or `;` after {after}"), help))
    }

    // ---- top level ----

    fn schema(&mut self) -> Schema {
        let mut schema = Schema::default();
        loop {
            self.skip_terminators();
            if self.at(TokenKind::Eof) {
                schema.trailing_comments = self.take_comments();
                break;
            }
            let comments = self.take_comments();
            let item = if self.at_keyword("definition") {
                self.seen_definition = true;
                self.definition(comments, "definition")
                    .map(Item::Definition)
            } else if self.at_keyword("caveat") {
                self.seen_definition = true;
                self.caveat(comments).map(Item::Caveat)
            } else if self.at_word("use") && self.peek_kind(1) == TokenKind::Identifier {
                self.use_directive(comments).map(Item::Use)
            } else if self.at_word("import")
                && matches!(self.peek_kind(1), TokenKind::String | TokenKind::Error)
            {
                self.import(comments).map(Item::Import)
            } else if self.at_word("partial") && self.peek_kind(1) == TokenKind::Identifier {
                self.seen_definition = true;
                self.definition(comments, "partial").map(Item::Partial)
            } else {
                let help = if self.at(TokenKind::Identifier) {
                    Some("every type starts with `definition`, e.g. `definition user {}`")
                } else {
                    None
                };
                Err(self.unexpected("`definition`, `caveat`, `use`, `import` or `partial`", help))
            };
            match item {
                Ok(item) => schema.items.push(item),
                Err(Reported) => self.recover_top_level(),
            }
        }
        schema
    }

    /// Skips to the next token that can start a top-level item on a new statement.
    fn recover_top_level(&mut self) {
        let mut depth = 0usize;
        let start = self.pos;
        loop {
            let kind = self.kind();
            if kind == TokenKind::Eof {
                return;
            }
            let at_item_start = depth == 0
                && self.pos > start
                && (self.at_keyword("definition")
                    || self.at_keyword("caveat")
                    || ((self.at_word("use") || self.at_word("partial"))
                        && self.peek_kind(1) == TokenKind::Identifier)
                    || (self.at_word("import")
                        && matches!(self.peek_kind(1), TokenKind::String | TokenKind::Error)));
            if at_item_start {
                return;
            }
            match kind {
                TokenKind::LeftBrace => depth += 1,
                TokenKind::RightBrace => depth = depth.saturating_sub(1),
                _ => {}
            }
            self.bump();
        }
    }

    fn use_directive(&mut self, comments: Vec<Comment>) -> PResult<UseDirective> {
        let start = self.bump().span;
        // The flag is read as a plain word: `expiration` stays valid after `use expiration`.
        let token = self.bump();
        let flag = Ident {
            text: self.file.slice(token.span).to_owned(),
            span: token.span,
        };
        if !USE_FLAGS.contains(&flag.text.as_str()) {
            self.error_at(
                flag.span,
                format!("unknown `use` flag `{}`", flag.text),
                "not a feature of the schema language",
                &format!("the flags are {}", quoted_list(USE_FLAGS)),
            );
        } else if self.seen_definition {
            self.error_at(
                start.to(flag.span),
                "`use` must come before any definition or caveat",
                "declared after a definition",
                "move the `use` line to the top of the file",
            );
        } else if !self.has_flag(&flag.text) {
            self.use_flags.push(flag.text.clone());
        }
        let span = start.to(flag.span);
        self.eat(TokenKind::Semicolon);
        Ok(UseDirective {
            comments,
            flag,
            span,
        })
    }

    fn import(&mut self, comments: Vec<Comment>) -> PResult<Import> {
        let start = self.bump().span;
        let token = self.current();
        if token.kind != TokenKind::String {
            return Err(self.unexpected("a quoted path after `import`", None));
        }
        self.bump();
        let raw = self.file.slice(token.span);
        let path = raw
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| raw.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            .unwrap_or(raw)
            .to_owned();
        if !self.has_flag("import") {
            self.error_at(
                start,
                "`import` needs `use import`",
                "imports are an opt-in feature",
                "add `use import` at the top of the file",
            );
        }
        let span = start.to(token.span);
        // As in SpiceDB, a newline after the path (a string, which does not end a statement
        // by itself) is enough; `;` is optional.
        self.eat(TokenKind::Semicolon);
        Ok(Import {
            comments,
            path,
            path_span: token.span,
            span,
        })
    }

    /// `definition name { members }` or `partial name { members }`.
    fn definition(&mut self, comments: Vec<Comment>, keyword: &str) -> PResult<Definition> {
        let start = self.bump().span;
        let name = self.type_path(&format!("a name after `{keyword}`"))?;
        let open = self.expect(
            TokenKind::LeftBrace,
            "`{` to open the body",
            Some("the body goes in braces on the same line, e.g. `definition user {}`"),
        )?;
        if keyword == "partial" && !self.has_flag("partial") {
            self.error_at(
                start,
                "`partial` needs `use partial`",
                "partials are an opt-in feature",
                "add `use partial` at the top of the file",
            );
        }
        let mut members = Vec::new();
        let trailing_comments;
        loop {
            self.skip_terminators();
            if self.at(TokenKind::RightBrace) {
                trailing_comments = self.take_comments();
                break;
            }
            if self.at(TokenKind::Eof) || self.at_keyword("definition") || self.at_keyword("caveat")
            {
                let what = if self.at(TokenKind::Eof) {
                    "the end of the file".to_owned()
                } else {
                    self.found()
                };
                self.diagnostics.push(
                    Diagnostic::error(
                        "syntax",
                        self.file,
                        Span::point(self.current().span.start()),
                        format!("unclosed {keyword} `{}`: found {what}", name.text),
                    )
                    .with_label("expected `}`")
                    .with_help(format!(
                        "close the body that opens at line {} with `}}`",
                        self.file.line_col(open.span.start()).line
                    )),
                );
                return Err(Reported);
            }
            let comments = self.take_comments();
            let member = if self.at_keyword("relation") {
                self.relation(comments).map(Member::Relation)
            } else if self.at_keyword("permission") {
                self.permission(comments).map(Member::Permission)
            } else if self.at(TokenKind::Ellipsis) {
                self.splat(comments).map(Member::Splat)
            } else {
                let help = if self.at(TokenKind::Identifier) {
                    Some("start each member with `relation` or `permission`")
                } else {
                    None
                };
                Err(self.unexpected("`relation`, `permission` or `}`", help))
            };
            match member {
                Ok(mut member) => {
                    let what = match &member {
                        Member::Relation(r) => format!("relation `{}`", r.name.text),
                        Member::Permission(p) => format!("permission `{}`", p.name.text),
                        Member::Splat(s) => format!("`...{}`", s.partial.text),
                    };
                    // A `//` comment between the member and its newline belongs to the member.
                    if self.at(TokenKind::SyntheticSemicolon) {
                        let same_line = self.trailing_line_comment(member.span());
                        member.set_trailing_comment(same_line);
                    }
                    members.push(member);
                    if self.end_of_statement(&what).is_err() {
                        self.recover_member();
                    }
                }
                Err(Reported) => self.recover_member(),
            }
        }
        let close = self.bump();
        Ok(Definition {
            comments,
            name,
            members,
            trailing_comments,
            span: start.to(close.span),
        })
    }

    /// Takes the comment written after `member` on the same line (attached to the newline
    /// token the parser is at), if there is exactly one such `//` comment.
    fn trailing_line_comment(&mut self, member: Span) -> Option<Comment> {
        let comments = self.comments.get(self.pos)?;
        let [comment] = comments.as_slice() else {
            return None;
        };
        let between = self.file.text().get(member.end()..comment.span.start())?;
        if !comment.text.starts_with("//") || between.contains('\n') {
            return None;
        }
        self.comments.get_mut(self.pos).and_then(Vec::pop)
    }

    /// Skips the rest of a broken member: to the end of its statement, or to the `}` or
    /// keyword that starts something else.
    fn recover_member(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.kind() {
                TokenKind::Eof => return,
                TokenKind::Semicolon | TokenKind::SyntheticSemicolon if depth == 0 => {
                    self.bump();
                    return;
                }
                TokenKind::RightBrace if depth == 0 => return,
                TokenKind::Keyword
                    if depth == 0
                        && ["relation", "permission", "definition", "caveat"]
                            .contains(&self.text()) =>
                {
                    return;
                }
                TokenKind::LeftBrace | TokenKind::LeftParen => depth += 1,
                TokenKind::RightBrace | TokenKind::RightParen => depth = depth.saturating_sub(1),
                _ => {}
            }
            self.bump();
        }
    }

    fn splat(&mut self, comments: Vec<Comment>) -> PResult<Splat> {
        let start = self.bump().span;
        let partial = self.name("the name of a partial after `...`")?;
        Ok(Splat {
            comments,
            trailing_comment: None,
            span: start.to(partial.span),
            partial,
        })
    }

    fn relation(&mut self, comments: Vec<Comment>) -> PResult<Relation> {
        let start = self.bump().span;
        let name = self.name("a relation name")?;
        if self.at(TokenKind::Equals) {
            let span = self.current().span;
            self.error_at(
                span,
                format!("relation `{}` is followed by `=`", name.text),
                "expected `:` and the allowed subject types",
                &format!(
                    "relations list subject types (`relation {}: user`); computed sets are permissions (`permission {} = ...`)",
                    name.text, name.text
                ),
            );
            return Err(Reported);
        }
        self.expect(
            TokenKind::Colon,
            "`:` and the allowed subject types",
            Some("e.g. `relation viewer: user | group#member`"),
        )?;
        let mut allowed_types = vec![self.allowed_type()?];
        while self.eat(TokenKind::Pipe).is_some() {
            allowed_types.push(self.allowed_type()?);
        }
        if matches!(
            self.kind(),
            TokenKind::Plus | TokenKind::And | TokenKind::Minus | TokenKind::RightArrow
        ) {
            return Err(self.unexpected(
                "`|`, `with`, a newline or `;`",
                Some("a relation only lists subject types separated by `|`; combine relations in a permission"),
            ));
        }
        let span = start.to(allowed_types.last().map_or(name.span, |t| t.span));
        Ok(Relation {
            comments,
            trailing_comment: None,
            name,
            allowed_types,
            span,
        })
    }

    fn allowed_type(&mut self) -> PResult<AllowedType> {
        let type_name = self.type_path("a subject type")?;
        let mut span = type_name.span;
        let kind = if self.at(TokenKind::Colon) {
            self.bump();
            let star = self.expect(
                TokenKind::Star,
                "`*` after `:`",
                Some("`type:*` allows every object of the type (a wildcard)"),
            )?;
            span = span.to(star.span);
            AllowedKind::Wildcard(star.span)
        } else if self.at(TokenKind::Hash) {
            self.bump();
            if let Some(ellipsis) = self.eat(TokenKind::Ellipsis) {
                span = span.to(ellipsis.span);
                AllowedKind::Ellipsis(ellipsis.span)
            } else {
                let relation = self.name("a relation name after `#`")?;
                span = span.to(relation.span);
                AllowedKind::SubjectRelation(relation)
            }
        } else {
            AllowedKind::Direct
        };
        let mut caveat = None;
        let mut expiration = None;
        if self.at_keyword("with") {
            self.bump();
            if self.has_flag("expiration") && self.at_word("expiration") {
                let token = self.bump();
                span = span.to(token.span);
                expiration = Some(token.span);
                if self.at_word("and") {
                    let span = self.current().span;
                    self.error_at(
                        span,
                        "the caveat must come before expiration",
                        "found after `expiration`",
                        "write `with <caveat_name> and expiration`",
                    );
                    return Err(Reported);
                }
            } else {
                let name = self.type_path("a caveat name (or `expiration`) after `with`")?;
                span = span.to(name.span);
                caveat = Some(name);
                if self.at_word("and") {
                    self.bump();
                    if self.has_flag("expiration") && self.at_word("expiration") {
                        let token = self.bump();
                        span = span.to(token.span);
                        expiration = Some(token.span);
                    } else {
                        return Err(self.unexpected(
                            "`expiration` after `and`",
                            Some("`with <caveat> and expiration` needs `use expiration` at the top of the file"),
                        ));
                    }
                }
            }
        }
        Ok(AllowedType {
            type_name,
            kind,
            caveat,
            expiration,
            span,
        })
    }

    fn permission(&mut self, comments: Vec<Comment>) -> PResult<Permission> {
        let start = self.bump().span;
        let name = self.name("a permission name")?;
        let mut type_annotation = Vec::new();
        if self.eat(TokenKind::Colon).is_some() {
            loop {
                if !self.at(TokenKind::Identifier) {
                    return Err(self.unexpected(
                        "a subject type in the type annotation",
                        Some("annotate with the subject types, e.g. `permission view: user = viewer`"),
                    ));
                }
                type_annotation.push(self.type_path("a subject type")?);
                if self.eat(TokenKind::Pipe).is_none() {
                    break;
                }
            }
        }
        self.expect(
            TokenKind::Equals,
            "`=` and the permission's expression",
            Some("e.g. `permission view = viewer + editor`"),
        )?;
        let expr = self.expr()?;
        Ok(Permission {
            comments,
            trailing_comment: None,
            span: start.to(expr.span()),
            name,
            type_annotation,
            expr,
        })
    }

    // ---- expressions ----

    fn expr(&mut self) -> PResult<Expr> {
        self.binary(0)
    }

    /// Left-associative binary operators by level: 0 is `-`, 1 is `&`, 2 is `+`.
    fn binary(&mut self, level: usize) -> PResult<Expr> {
        if level == 3 {
            return self.arrow();
        }
        let op = [TokenKind::Minus, TokenKind::And, TokenKind::Plus][level];
        let mut left = self.binary(level + 1)?;
        while self.eat(op).is_some() {
            let right = self.binary(level + 1)?;
            let span = left.span().to(right.span());
            let (left_box, right_box) = (Box::new(left), Box::new(right));
            left = match op {
                TokenKind::Minus => Expr::Exclusion(left_box, right_box, span),
                TokenKind::And => Expr::Intersection(left_box, right_box, span),
                _ => Expr::Union(left_box, right_box, span),
            };
        }
        Ok(left)
    }

    fn arrow(&mut self) -> PResult<Expr> {
        let mut left = self.base()?;
        loop {
            let (kind, target, end) = if self.eat(TokenKind::RightArrow).is_some() {
                let target = self.name("a relation or permission name after `->`")?;
                let end = target.span;
                (ArrowKind::Arrow, target, end)
            } else if self.at(TokenKind::Period) {
                self.bump();
                let function = self.current();
                let kind = match (function.kind, self.text()) {
                    (TokenKind::Identifier, "any") => ArrowKind::Any,
                    (TokenKind::Identifier, "all") => ArrowKind::All,
                    _ => {
                        return Err(self.unexpected(
                            "`any` or `all` after `.`",
                            Some("arrow functions are `rel.any(perm)` (same as `rel->perm`) and `rel.all(perm)`"),
                        ));
                    }
                };
                self.bump();
                self.expect(TokenKind::LeftParen, "`(` after the arrow function", None)?;
                let target = self.name("a relation or permission name")?;
                let close = self.expect(TokenKind::RightParen, "`)`", None)?;
                (kind, target, close.span)
            } else {
                return Ok(left);
            };
            let span = left.span().to(end);
            left = Expr::Arrow(Box::new(Arrow {
                left,
                kind,
                target,
                span,
            }));
        }
    }

    fn base(&mut self) -> PResult<Expr> {
        let token = self.current();
        match token.kind {
            TokenKind::LeftParen => {
                self.bump();
                let inner = self.expr()?;
                let close = self.expect(TokenKind::RightParen, "`)` to close `(`", None)?;
                Ok(Expr::Paren(Box::new(inner), token.span.to(close.span)))
            }
            TokenKind::Keyword if self.text() == "nil" => {
                self.bump();
                Ok(Expr::Nil(token.span))
            }
            TokenKind::Identifier if self.text() == "self" && self.has_flag("self") => {
                self.bump();
                Ok(Expr::SelfRef(token.span))
            }
            TokenKind::Identifier => Ok(Expr::Ref(self.name("a relation or permission name")?)),
            _ => Err(self.unexpected(
                "a relation or permission name, `nil` or `(`",
                Some("a permission is an expression over relations and permissions of the same definition, e.g. `viewer + editor`"),
            )),
        }
    }

    // ---- caveats ----

    fn caveat(&mut self, comments: Vec<Comment>) -> PResult<Caveat> {
        let start = self.bump().span;
        let name = self.type_path("a caveat name")?;
        self.expect(
            TokenKind::LeftParen,
            "`(` and the caveat's parameters",
            Some("e.g. `caveat is_weekday(day string) { day != 'sunday' }`"),
        )?;
        let mut params = Vec::new();
        loop {
            if self.at(TokenKind::RightParen) && params.is_empty() {
                let span = self.current().span;
                self.error_at(
                    span,
                    format!("caveat `{}` has no parameters", name.text),
                    "expected a parameter",
                    "declare at least one parameter, e.g. `(day string)`",
                );
                return Err(Reported);
            }
            let param_name = self.name("a parameter name")?;
            let param_type = self.type_ref()?;
            params.push(CaveatParam {
                span: param_name.span.to(param_type.span),
                name: param_name,
                param_type,
            });
            if self.eat(TokenKind::Comma).is_some() {
                continue;
            }
            self.expect(TokenKind::RightParen, "`,` or `)`", None)?;
            break;
        }
        self.expect(TokenKind::LeftBrace, "`{` and the CEL expression", None)?;
        // The body is CEL: take every token up to the matching `}` and keep the text verbatim.
        let body_start = self.pos;
        let mut depth = 0usize;
        loop {
            match self.kind() {
                TokenKind::Eof => {
                    return Err(self.unexpected(
                        "`}` to close the caveat's expression",
                        Some("every `{` in the expression needs a matching `}`"),
                    ));
                }
                TokenKind::Error => return Err(self.unexpected("a CEL expression", None)),
                TokenKind::LeftBrace => depth += 1,
                TokenKind::RightBrace if depth == 0 => break,
                TokenKind::RightBrace => depth -= 1,
                _ => {}
            }
            self.bump();
        }
        let close = self.current();
        let significant: Vec<Token> = self.tokens[body_start..self.pos]
            .iter()
            .copied()
            .filter(|t| t.kind != TokenKind::SyntheticSemicolon)
            .collect();
        let (Some(first), Some(last)) = (significant.first(), significant.last()) else {
            self.error_at(
                close.span,
                format!("caveat `{}` has an empty expression", name.text),
                "expected a CEL expression before `}`",
                "write the condition as a CEL expression over the parameters",
            );
            self.bump();
            return Err(Reported);
        };
        let expression_span = first.span.to(last.span);
        self.bump();
        Ok(Caveat {
            comments,
            name,
            params,
            expression: self.file.slice(expression_span).to_owned(),
            expression_span,
            span: start.to(close.span),
        })
    }

    fn type_ref(&mut self) -> PResult<TypeRef> {
        let name = self.name("a parameter type")?;
        let mut span = name.span;
        let mut args = Vec::new();
        if self.eat(TokenKind::LessThan).is_some() {
            loop {
                args.push(self.type_ref()?);
                if self.eat(TokenKind::Comma).is_none() {
                    break;
                }
            }
            let close = self.expect(TokenKind::GreaterThan, "`>` to close the type", None)?;
            span = span.to(close.span);
        }
        Ok(TypeRef { name, args, span })
    }
}

fn quoted_list(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Parsed {
        parse(&SourceFile::new("test.zed", text))
    }

    fn errors(text: &str) -> Vec<String> {
        parse_text(text)
            .diagnostics
            .iter()
            .map(|d| format!("{}:{}", d.position(), d.message))
            .collect()
    }

    #[test]
    fn parses_definitions_relations_and_permissions() {
        let parsed = parse_text(
            "definition user {}\n\ndefinition doc {\n  relation viewer: user | group#member | user:*\n  permission view = viewer + parent->view - banned & x\n}\n",
        );
        assert!(parsed.is_ok(), "{:?}", parsed.diagnostics);
        assert_eq!(parsed.schema.items.len(), 2);
        let Item::Definition(doc) = &parsed.schema.items[1] else {
            panic!("expected a definition");
        };
        assert_eq!(doc.name.text, "doc");
        assert_eq!(doc.members.len(), 2);
        let Member::Permission(view) = &doc.members[1] else {
            panic!("expected a permission");
        };
        // `-` is loosest: (viewer + parent->view) - (banned & x).
        let Expr::Exclusion(left, right, _) = &view.expr else {
            panic!("expected an exclusion, got {:?}", view.expr);
        };
        assert!(matches!(**left, Expr::Union(..)));
        assert!(matches!(**right, Expr::Intersection(..)));
    }

    #[test]
    fn minus_then_plus_groups_to_the_right() {
        let parsed = parse_text("definition d {\n permission p = a - b + c\n}");
        let Item::Definition(def) = &parsed.schema.items[0] else {
            panic!()
        };
        let Member::Permission(p) = &def.members[0] else {
            panic!()
        };
        let Expr::Exclusion(_, right, _) = &p.expr else {
            panic!("{:?}", p.expr)
        };
        assert!(matches!(**right, Expr::Union(..)));
    }

    #[test]
    fn reports_position_of_unexpected_token() {
        assert_eq!(
            errors("definition foo {\n\t\t\t\trelation something: rela | relb + relc\n\t\t\t}"),
            ["2:37:unexpected `+`"]
        );
        assert_eq!(errors("foo"), ["1:1:unexpected `foo`"]);
    }

    #[test]
    fn reports_several_independent_errors() {
        let found = errors(
            "definition a {\n relation r: +\n permission p = \n}\ndefinition b {\n relation = x\n}\n",
        );
        assert_eq!(found.len(), 3, "{found:?}");
    }

    #[test]
    fn caveat_bodies_are_kept_verbatim() {
        let parsed = parse_text(
            "caveat c(a int, b map<list<string>>) {\n  a == 1 && {'k': 2}.size() > 0\n}",
        );
        assert!(parsed.is_ok(), "{:?}", parsed.diagnostics);
        let Item::Caveat(caveat) = &parsed.schema.items[0] else {
            panic!()
        };
        assert_eq!(caveat.expression, "a == 1 && {'k': 2}.size() > 0");
        assert_eq!(
            caveat.params[1].param_type.args[0].args[0].name.text,
            "string"
        );
    }

    #[test]
    fn expiration_is_a_keyword_only_with_use_expiration() {
        assert!(parse_text("caveat expiration(a int) { a == 1 }").is_ok());
        assert_eq!(
            errors("use expiration\ncaveat expiration(a int) { a == 1 }"),
            ["2:8:`expiration` is a keyword and cannot be used as a caveat name"]
        );
        let parsed = parse_text(
            "use expiration\ndefinition d {\n relation r: user with expiration | user with c and expiration\n}",
        );
        assert!(parsed.is_ok(), "{:?}", parsed.diagnostics);
    }

    #[test]
    fn same_line_comments_stay_with_their_member() {
        let parsed = parse_text(
            "definition d {\n relation r: u // who may read\n // about p\n permission p = r // alias\n}",
        );
        assert!(parsed.is_ok(), "{:?}", parsed.diagnostics);
        let Item::Definition(def) = &parsed.schema.items[0] else {
            panic!()
        };
        assert_eq!(
            def.members[0].trailing_comment().map(|c| c.text.as_str()),
            Some("// who may read")
        );
        assert_eq!(def.members[1].comments()[0].text, "// about p");
        assert_eq!(
            def.members[1].trailing_comment().map(|c| c.text.as_str()),
            Some("// alias")
        );
    }

    #[test]
    fn comments_attach_to_the_next_item() {
        let parsed =
            parse_text("/** doc */\ndefinition d {\n // rel\n relation r: u\n // tail\n}\n// end");
        let Item::Definition(def) = &parsed.schema.items[0] else {
            panic!()
        };
        assert_eq!(def.comments[0].text, "/** doc */");
        assert_eq!(def.members[0].comments()[0].text, "// rel");
        assert_eq!(def.trailing_comments[0].text, "// tail");
        assert_eq!(parsed.schema.trailing_comments[0].text, "// end");
    }
}
