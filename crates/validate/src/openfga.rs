//! Translates OpenFGA authorization models (the DSL of schema 1.1) into SpiceDB schema text, so
//! OpenFGA test suites can run against Ostiary.
//!
//! The mapping follows SpiceDB's constructs: a type becomes a definition, a relation with only
//! direct types becomes a relation, a relation with only rewrites becomes a permission, and a
//! relation with both is split into a relation `<name>_direct` for the written part and a
//! permission `<name>` combining it with the rewrites (SpiceDB cannot write to a permission).
//! `or`, `and` and `but not` become `+`, `&` and `-`; `x from y` becomes `y->x`; conditions
//! become caveats with the CEL body carried over. Names that are not SpiceDB identifiers are
//! mapped (`-` becomes `_`, short names get an `r_` prefix); [`OpenFgaTranslation`] keeps the
//! mapping so tuples and checks can be translated too.
//!
//! ```
//! let zed = ostiary_validate::openfga_to_zed(
//!     "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define editor: [user]\n    define viewer: [user] or editor\n",
//! )?;
//! assert!(zed.contains("relation viewer_direct: user"));
//! assert!(zed.contains("permission viewer = viewer_direct + editor"));
//! # Ok::<(), ostiary_validate::OpenFgaError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A model that cannot be translated: the DSL does not parse, or uses a construct SpiceDB lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenFgaError {
    /// The DSL does not parse.
    #[error("{line}:{column}: {message}")]
    Syntax {
        /// The 1-based line.
        line: usize,
        /// The 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The model uses a construct that has no SpiceDB counterpart.
    #[error("{line}:{column}: cannot translate {construct}: {reason}")]
    Untranslatable {
        /// The 1-based line.
        line: usize,
        /// The 1-based column.
        column: usize,
        /// The construct, quoted from the model.
        construct: String,
        /// Why SpiceDB cannot express it.
        reason: String,
    },
}

/// A translated model: the schema text and the name mapping for tuples and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFgaTranslation {
    schema: String,
    types: BTreeMap<String, TypeNames>,
    conditions: BTreeMap<String, String>,
}

/// The SpiceDB names of one OpenFGA type and its relations.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TypeNames {
    name: String,
    /// OpenFGA relation → (name to check, name to write to when the relation has direct types).
    relations: BTreeMap<String, (String, Option<String>)>,
}

impl OpenFgaTranslation {
    /// The SpiceDB schema text.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The SpiceDB definition name of an OpenFGA type.
    pub fn type_name(&self, openfga_type: &str) -> Option<&str> {
        self.types
            .get(openfga_type)
            .map(|names| names.name.as_str())
    }

    /// The SpiceDB name to check (or to use as a subject relation) for an OpenFGA relation.
    pub fn check_relation(&self, openfga_type: &str, relation: &str) -> Option<&str> {
        let names = self.types.get(openfga_type)?;
        names
            .relations
            .get(relation)
            .map(|(check, _)| check.as_str())
    }

    /// The SpiceDB relation that stores written tuples of an OpenFGA relation; `None` when the
    /// relation has no direct types (OpenFGA rejects such writes).
    pub fn write_relation(&self, openfga_type: &str, relation: &str) -> Option<&str> {
        let names = self.types.get(openfga_type)?;
        names.relations.get(relation)?.1.as_deref()
    }

    /// The SpiceDB caveat name of an OpenFGA condition.
    pub fn caveat_name(&self, condition: &str) -> Option<&str> {
        self.conditions.get(condition).map(String::as_str)
    }
}

/// Translates an OpenFGA model (DSL, schema 1.1) into SpiceDB schema text.
///
/// # Errors
///
/// The DSL does not parse, or uses a construct SpiceDB lacks (modules, other schema versions,
/// a `from` over a computed relation); the error names the line and column.
pub fn openfga_to_zed(dsl: &str) -> Result<String, OpenFgaError> {
    translate_openfga(dsl).map(|translation| translation.schema)
}

/// Translates an OpenFGA model and keeps the name mapping (see [`openfga_to_zed`]).
///
/// # Errors
///
/// As [`openfga_to_zed`].
pub fn translate_openfga(dsl: &str) -> Result<OpenFgaTranslation, OpenFgaError> {
    let model = parse(dsl)?;
    emit(&model)
}

// ---------------------------------------------------------------------------------------------
// Parsing.

/// A position in the DSL, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

impl Pos {
    fn syntax(self, message: impl Into<String>) -> OpenFgaError {
        OpenFgaError::Syntax {
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }

    fn untranslatable(self, construct: &str, reason: &str) -> OpenFgaError {
        OpenFgaError::Untranslatable {
            line: self.line,
            column: self.column,
            construct: format!("`{construct}`"),
            reason: reason.to_owned(),
        }
    }
}

#[derive(Debug)]
struct Model {
    types: Vec<TypeDef>,
    conditions: Vec<Condition>,
}

#[derive(Debug)]
struct TypeDef {
    name: String,
    pos: Pos,
    relations: Vec<RelationDef>,
}

#[derive(Debug)]
struct RelationDef {
    name: String,
    pos: Pos,
    expr: Expr,
}

#[derive(Debug)]
struct Condition {
    name: String,
    pos: Pos,
    params: Vec<(String, String)>,
    body: String,
}

#[derive(Debug, Clone)]
struct DirectType {
    type_name: String,
    relation: Option<String>,
    wildcard: bool,
    condition: Option<String>,
}

#[derive(Debug, Clone)]
enum Expr {
    Direct(Vec<DirectType>),
    Computed(String, Pos),
    TupleToUserset {
        computed: String,
        tupleset: String,
        pos: Pos,
    },
    Union(Vec<Expr>),
    Intersection(Vec<Expr>),
    Exclusion(Box<Expr>, Box<Expr>),
}

/// Removes a comment: `#` at the start of the line or after whitespace.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (index, byte) in bytes.iter().enumerate() {
        if *byte == b'#'
            && (index == 0 || bytes.get(index - 1).is_some_and(u8::is_ascii_whitespace))
        {
            return line.get(..index).unwrap_or(line);
        }
    }
    line
}

fn parse(dsl: &str) -> Result<Model, OpenFgaError> {
    let lines: Vec<&str> = dsl.lines().collect();
    let mut model = Model {
        types: Vec::new(),
        conditions: Vec::new(),
    };
    let mut saw_schema = false;
    let mut index = 0;
    while let Some(raw) = lines.get(index) {
        let line_no = index + 1;
        index += 1;
        let text = strip_comment(raw);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            continue;
        }
        let column = text.len() - text.trim_start().len() + 1;
        let pos = Pos {
            line: line_no,
            column,
        };
        let mut words = trimmed.split_whitespace();
        let keyword = words.next().unwrap_or_default();
        match keyword {
            "model" => {}
            "schema" => {
                let version = words.next().unwrap_or_default();
                if version != "1.1" {
                    return Err(pos.untranslatable(trimmed, "only schema 1.1 models are supported"));
                }
                saw_schema = true;
            }
            "module" | "extend" => {
                return Err(pos.untranslatable(
                    trimmed,
                    "modular models have no SpiceDB counterpart; combine the modules first",
                ));
            }
            "type" => {
                let name = words
                    .next()
                    .ok_or_else(|| pos.syntax("expected a type name after `type`"))?;
                model.types.push(TypeDef {
                    name: name.to_owned(),
                    pos,
                    relations: Vec::new(),
                });
            }
            "relations" => {
                if model.types.is_empty() {
                    return Err(pos.syntax("`relations` outside a type"));
                }
            }
            "define" => {
                let current = model
                    .types
                    .last_mut()
                    .ok_or_else(|| pos.syntax("`define` outside a type"))?;
                let rest = trimmed.get("define".len()..).unwrap_or_default();
                let (name, expr_text) = rest
                    .split_once(':')
                    .ok_or_else(|| pos.syntax("expected `define NAME: EXPRESSION`"))?;
                let name = name.trim();
                if name.is_empty() {
                    return Err(pos.syntax("expected a relation name after `define`"));
                }
                let expr_start = raw.find(':').map_or(column, |colon| colon + 2);
                let expr = parse_expr(expr_text, line_no, expr_start)?;
                current.relations.push(RelationDef {
                    name: name.to_owned(),
                    pos,
                    expr,
                });
            }
            "condition" => {
                let mut text = trimmed
                    .get("condition".len()..)
                    .unwrap_or_default()
                    .to_owned();
                while brace_depth(&text) != Some(0) {
                    let Some(next) = lines.get(index) else {
                        return Err(pos.syntax("unterminated condition body"));
                    };
                    index += 1;
                    text.push('\n');
                    text.push_str(next);
                }
                model.conditions.push(parse_condition(&text, pos)?);
            }
            _ => return Err(pos.syntax(format!("unexpected `{keyword}`"))),
        }
    }
    if !saw_schema {
        return Err(Pos { line: 1, column: 1 }.syntax("expected `model` and `schema 1.1`"));
    }
    Ok(model)
}

/// The depth of `{`/`}` nesting at the end of `text`, `None` when no `{` opened yet.
fn brace_depth(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut opened = false;
    let mut quote: Option<char> = None;
    for ch in text.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(ch),
            (None, '{') => {
                opened = true;
                depth += 1;
            }
            (None, '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    opened.then_some(depth)
}

fn parse_condition(text: &str, pos: Pos) -> Result<Condition, OpenFgaError> {
    let (head, rest) = text
        .split_once('(')
        .ok_or_else(|| pos.syntax("expected `condition NAME(PARAMS) { EXPRESSION }`"))?;
    let (params_text, rest) = rest
        .split_once(')')
        .ok_or_else(|| pos.syntax("expected `)` after the condition parameters"))?;
    let open = rest
        .find('{')
        .ok_or_else(|| pos.syntax("expected `{` before the condition body"))?;
    let close = rest
        .rfind('}')
        .ok_or_else(|| pos.syntax("expected `}` after the condition body"))?;
    let body = rest
        .get(open + 1..close)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut params = Vec::new();
    for param in split_params(params_text) {
        let (name, param_type) = param
            .split_once(':')
            .ok_or_else(|| pos.syntax(format!("expected `NAME: TYPE` in `{}`", param.trim())))?;
        params.push((name.trim().to_owned(), param_type.trim().to_owned()));
    }
    Ok(Condition {
        name: head.trim().to_owned(),
        pos,
        params,
        body,
    })
}

/// Splits parameters at commas outside `<…>`.
fn split_params(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, ch) in text.char_indices() {
        match ch {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(text.get(start..index).unwrap_or_default());
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or_default());
    parts
        .into_iter()
        .filter(|part| !part.trim().is_empty())
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Punct(char),
    Word(String),
}

/// Splits an expression into tokens with their positions.
fn tokenize(text: &str, line: usize, start_column: usize) -> Vec<(Token, Pos)> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut word_pos = Pos { line, column: 0 };
    for (offset, ch) in text.chars().enumerate() {
        let pos = Pos {
            line,
            column: start_column + offset,
        };
        let is_punct = matches!(ch, '[' | ']' | '(' | ')' | ',' | '#' | ':');
        if ch.is_whitespace() || is_punct {
            if !word.is_empty() {
                tokens.push((Token::Word(std::mem::take(&mut word)), word_pos));
            }
            if is_punct {
                tokens.push((Token::Punct(ch), pos));
            }
        } else {
            if word.is_empty() {
                word_pos = pos;
            }
            word.push(ch);
        }
    }
    if !word.is_empty() {
        tokens.push((Token::Word(word), word_pos));
    }
    tokens
}

struct ExprParser {
    tokens: Vec<(Token, Pos)>,
    next: usize,
    end: Pos,
}

fn parse_expr(text: &str, line: usize, column: usize) -> Result<Expr, OpenFgaError> {
    let mut parser = ExprParser {
        tokens: tokenize(text, line, column),
        next: 0,
        end: Pos {
            line,
            column: column + text.chars().count(),
        },
    };
    let expr = parser.expr()?;
    if let Some((token, pos)) = parser.tokens.get(parser.next) {
        return Err(pos.syntax(format!("unexpected {}", describe(token))));
    }
    Ok(expr)
}

fn describe(token: &Token) -> String {
    match token {
        Token::Punct(ch) => format!("`{ch}`"),
        Token::Word(word) => format!("`{word}`"),
    }
}

impl ExprParser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(token, _)| token)
    }

    fn pos(&self) -> Pos {
        self.tokens.get(self.next).map_or(self.end, |(_, pos)| *pos)
    }

    fn bump(&mut self) -> Option<(Token, Pos)> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    fn word(&mut self, what: &str) -> Result<(String, Pos), OpenFgaError> {
        let pos = self.pos();
        match self.bump() {
            Some((Token::Word(word), pos)) => Ok((word, pos)),
            Some((token, pos)) => {
                Err(pos.syntax(format!("expected {what}, found {}", describe(&token))))
            }
            None => Err(pos.syntax(format!("expected {what}"))),
        }
    }

    fn punct(&mut self, ch: char) -> Result<(), OpenFgaError> {
        let pos = self.pos();
        match self.bump() {
            Some((Token::Punct(found), _)) if found == ch => Ok(()),
            Some((token, pos)) => {
                Err(pos.syntax(format!("expected `{ch}`, found {}", describe(&token))))
            }
            None => Err(pos.syntax(format!("expected `{ch}`"))),
        }
    }

    /// `base ('but' 'not' term)*`
    fn expr(&mut self) -> Result<Expr, OpenFgaError> {
        let mut expr = self.base()?;
        while self.is_word("but") {
            self.bump();
            if !self.is_word("not") {
                return Err(self.pos().syntax("expected `not` after `but`"));
            }
            self.bump();
            let right = self.term()?;
            expr = Expr::Exclusion(Box::new(expr), Box::new(right));
        }
        Ok(expr)
    }

    /// `term (('or' | 'and') term)*`, one operator throughout.
    fn base(&mut self) -> Result<Expr, OpenFgaError> {
        let first = self.term()?;
        let mut operator: Option<String> = None;
        let mut items = vec![first];
        while let Some(Token::Word(word)) = self.peek() {
            if word != "or" && word != "and" {
                break;
            }
            let word = word.clone();
            if operator.as_ref().is_some_and(|op| *op != word) {
                return Err(self
                    .pos()
                    .syntax("`or` and `and` cannot be mixed without parentheses"));
            }
            self.bump();
            items.push(self.term()?);
            operator = Some(word);
        }
        Ok(match operator.as_deref() {
            None => items.pop().unwrap_or(Expr::Union(Vec::new())),
            Some("and") => Expr::Intersection(items),
            Some(_) => Expr::Union(items),
        })
    }

    fn term(&mut self) -> Result<Expr, OpenFgaError> {
        match self.peek() {
            Some(Token::Punct('[')) => {
                self.bump();
                self.direct_types()
            }
            Some(Token::Punct('(')) => {
                self.bump();
                let expr = self.expr()?;
                self.punct(')')?;
                Ok(expr)
            }
            _ => {
                let (name, pos) = self.word("a relation")?;
                if self.is_word("from") {
                    self.bump();
                    let (tupleset, _) = self.word("a relation after `from`")?;
                    Ok(Expr::TupleToUserset {
                        computed: name,
                        tupleset,
                        pos,
                    })
                } else {
                    Ok(Expr::Computed(name, pos))
                }
            }
        }
    }

    /// The list after `[`: `type`, `type:*`, `type#relation`, each optionally `with cond`.
    fn direct_types(&mut self) -> Result<Expr, OpenFgaError> {
        let mut types = Vec::new();
        loop {
            let (type_name, _) = self.word("a type")?;
            let mut direct = DirectType {
                type_name,
                relation: None,
                wildcard: false,
                condition: None,
            };
            match self.peek() {
                Some(Token::Punct(':')) => {
                    self.bump();
                    let (star, pos) = self.word("`*`")?;
                    if star != "*" {
                        return Err(pos.syntax(format!("expected `*`, found `{star}`")));
                    }
                    direct.wildcard = true;
                }
                Some(Token::Punct('#')) => {
                    self.bump();
                    direct.relation = Some(self.word("a relation after `#`")?.0);
                }
                _ => {}
            }
            if self.is_word("with") {
                self.bump();
                direct.condition = Some(self.word("a condition after `with`")?.0);
            }
            types.push(direct);
            match self.bump() {
                Some((Token::Punct(','), _)) => {}
                Some((Token::Punct(']'), _)) => break,
                Some((token, pos)) => {
                    return Err(
                        pos.syntax(format!("expected `,` or `]`, found {}", describe(&token)))
                    );
                }
                None => return Err(self.end.syntax("expected `]`")),
            }
        }
        Ok(Expr::Direct(types))
    }
}

// ---------------------------------------------------------------------------------------------
// Emitting.

/// Words SpiceDB's schema language reserves, which cannot name a definition or relation.
const SPICEDB_KEYWORDS: &[&str] = &[
    "definition",
    "caveat",
    "relation",
    "permission",
    "nil",
    "with",
    "expiration",
    "use",
    "import",
    "partial",
    "this",
    "any",
    "all",
];

/// Maps an OpenFGA name to a SpiceDB identifier: lowercase ASCII letters, digits and `_`,
/// starting with a letter, ending with a letter or digit, at least 3 characters.
fn identifier(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|ch| match ch {
            'a'..='z' | '0'..='9' | '_' => ch,
            'A'..='Z' => ch.to_ascii_lowercase(),
            _ => '_',
        })
        .collect();
    if !out.starts_with(|ch: char| ch.is_ascii_lowercase())
        || out.len() < 3
        || SPICEDB_KEYWORDS.contains(&out.as_str())
    {
        out.insert_str(0, "r_");
    }
    if out.ends_with('_') {
        out.push('x');
    }
    out
}

/// Maps an OpenFGA condition parameter type to a SpiceDB caveat type.
fn caveat_type(param_type: &str, pos: Pos) -> Result<String, OpenFgaError> {
    let param_type = param_type.trim();
    if let Some(inner) = param_type
        .strip_prefix("list<")
        .and_then(|rest| rest.strip_suffix('>'))
    {
        return Ok(format!("list<{}>", caveat_type(inner, pos)?));
    }
    if let Some(inner) = param_type
        .strip_prefix("map<")
        .and_then(|rest| rest.strip_suffix('>'))
    {
        return Ok(format!("map<{}>", caveat_type(inner, pos)?));
    }
    match param_type {
        "bool" | "string" | "int" | "uint" | "double" | "duration" | "timestamp" | "ipaddress"
        | "any" | "bytes" => Ok(param_type.to_owned()),
        other => Err(pos.untranslatable(other, "SpiceDB caveats have no such parameter type")),
    }
}

fn emit(model: &Model) -> Result<OpenFgaTranslation, OpenFgaError> {
    let mut types = BTreeMap::new();
    for def in &model.types {
        let mut relations = BTreeMap::new();
        for relation in &def.relations {
            let check = identifier(&relation.name);
            let write = match &relation.expr {
                Expr::Direct(_) => Some(check.clone()),
                expr if contains_direct(expr) => Some(format!("{check}_direct")),
                _ => None,
            };
            relations.insert(relation.name.clone(), (check, write));
        }
        types.insert(
            def.name.clone(),
            TypeNames {
                name: identifier(&def.name),
                relations,
            },
        );
    }
    let conditions: BTreeMap<String, String> = model
        .conditions
        .iter()
        .map(|condition| (condition.name.clone(), identifier(&condition.name)))
        .collect();
    let mut schema = String::new();
    for condition in &model.conditions {
        let pos = condition.pos;
        let mut params = Vec::new();
        for (name, param_type) in &condition.params {
            params.push(format!("{name} {}", caveat_type(param_type, pos)?));
        }
        let _ = writeln!(
            schema,
            "caveat {}({}) {{\n\t{}\n}}\n",
            identifier(&condition.name),
            params.join(", "),
            condition.body
        );
    }
    let ctx = Context {
        types: &types,
        conditions: &conditions,
    };
    for def in &model.types {
        let names = types.get(&def.name).ok_or_else(|| {
            def.pos
                .syntax(format!("type `{}` vanished while translating", def.name))
        })?;
        let mut body = String::new();
        for relation in &def.relations {
            let (check, write) = names
                .relations
                .get(&relation.name)
                .cloned()
                .unwrap_or_default();
            match (&relation.expr, write) {
                (Expr::Direct(direct), _) => {
                    let _ = writeln!(
                        body,
                        "\trelation {check}: {}",
                        ctx.direct(direct, relation.pos)?
                    );
                }
                (expr, Some(write)) => {
                    let direct = find_direct(expr).unwrap_or_default();
                    let _ = writeln!(
                        body,
                        "\trelation {write}: {}",
                        ctx.direct(&direct, relation.pos)?
                    );
                    let _ = writeln!(
                        body,
                        "\tpermission {check} = {}",
                        ctx.expr(expr, &def.name, &write, false)?
                    );
                }
                (expr, None) => {
                    let _ = writeln!(
                        body,
                        "\tpermission {check} = {}",
                        ctx.expr(expr, &def.name, "", false)?
                    );
                }
            }
        }
        if body.is_empty() {
            let _ = writeln!(schema, "definition {} {{}}\n", names.name);
        } else {
            let _ = writeln!(schema, "definition {} {{\n{body}}}\n", names.name);
        }
    }
    Ok(OpenFgaTranslation {
        schema: schema.trim_end().to_owned() + "\n",
        types,
        conditions,
    })
}

fn contains_direct(expr: &Expr) -> bool {
    find_direct(expr).is_some()
}

fn find_direct(expr: &Expr) -> Option<Vec<DirectType>> {
    match expr {
        Expr::Direct(types) => Some(types.clone()),
        Expr::Computed(..) | Expr::TupleToUserset { .. } => None,
        Expr::Union(items) | Expr::Intersection(items) => items.iter().find_map(find_direct),
        Expr::Exclusion(left, right) => find_direct(left).or_else(|| find_direct(right)),
    }
}

struct Context<'a> {
    types: &'a BTreeMap<String, TypeNames>,
    conditions: &'a BTreeMap<String, String>,
}

impl Context<'_> {
    fn direct(&self, direct: &[DirectType], pos: Pos) -> Result<String, OpenFgaError> {
        let mut parts = Vec::new();
        for allowed in direct {
            let names = self.types.get(&allowed.type_name).ok_or_else(|| {
                pos.syntax(format!("type `{}` is not defined", allowed.type_name))
            })?;
            let mut part = names.name.clone();
            if allowed.wildcard {
                part.push_str(":*");
            } else if let Some(relation) = &allowed.relation {
                let (check, _) = names.relations.get(relation).ok_or_else(|| {
                    pos.syntax(format!(
                        "relation `{relation}` is not defined on type `{}`",
                        allowed.type_name
                    ))
                })?;
                part.push('#');
                part.push_str(check);
            }
            if let Some(condition) = &allowed.condition {
                let caveat = self
                    .conditions
                    .get(condition)
                    .ok_or_else(|| pos.syntax(format!("condition `{condition}` is not defined")))?;
                part.push_str(" with ");
                part.push_str(caveat);
            }
            parts.push(part);
        }
        Ok(parts.join(" | "))
    }

    /// The permission expression; `direct` names the relation standing for `[...]`, and
    /// compound subexpressions are parenthesised when `nested`.
    fn expr(
        &self,
        expr: &Expr,
        type_name: &str,
        direct: &str,
        nested: bool,
    ) -> Result<String, OpenFgaError> {
        let text = match expr {
            Expr::Direct(_) => return Ok(direct.to_owned()),
            Expr::Computed(name, pos) => {
                return self.relation(type_name, name, *pos).map(|(check, _)| check);
            }
            Expr::TupleToUserset {
                computed,
                tupleset,
                pos,
            } => {
                let (_, write) = self.relation(type_name, tupleset, *pos)?;
                let Some(write) = write else {
                    return Err(pos.untranslatable(
                        &format!("{computed} from {tupleset}"),
                        "SpiceDB arrows must start at a relation, and this one is only computed",
                    ));
                };
                return Ok(format!("{write}->{}", identifier(computed)));
            }
            Expr::Union(items) => self.join(items, " + ", type_name, direct)?,
            Expr::Intersection(items) => self.join(items, " & ", type_name, direct)?,
            Expr::Exclusion(left, right) => format!(
                "{} - {}",
                self.expr(left, type_name, direct, true)?,
                self.expr(right, type_name, direct, true)?
            ),
        };
        Ok(if nested { format!("({text})") } else { text })
    }

    fn join(
        &self,
        items: &[Expr],
        operator: &str,
        type_name: &str,
        direct: &str,
    ) -> Result<String, OpenFgaError> {
        let parts: Result<Vec<String>, OpenFgaError> = items
            .iter()
            .map(|item| self.expr(item, type_name, direct, true))
            .collect();
        Ok(parts?.join(operator))
    }

    fn relation(
        &self,
        type_name: &str,
        relation: &str,
        pos: Pos,
    ) -> Result<(String, Option<String>), OpenFgaError> {
        self.types
            .get(type_name)
            .and_then(|names| names.relations.get(relation))
            .cloned()
            .ok_or_else(|| {
                pos.syntax(format!(
                    "relation `{relation}` is not defined on type `{type_name}`"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zed(body: &str) -> String {
        openfga_to_zed(&format!("model\n  schema 1.1\n{body}"))
            .unwrap_or_else(|err| err.to_string())
    }

    #[test]
    fn direct_computed_and_split_relations() {
        let out = zed(
            "type user\ntype group\n  relations\n    define member: [user, group#member]\ntype doc\n  relations\n    define owner: [user, user:*]\n    define editor: [user] or owner\n    define viewer: editor\n",
        );
        assert_eq!(
            out,
            "definition user {}\n\ndefinition group {\n\trelation member: user | group#member\n}\n\ndefinition doc {\n\trelation owner: user | user:*\n\trelation editor_direct: user\n\tpermission editor = editor_direct + owner\n\tpermission viewer = editor\n}\n"
        );
    }

    #[test]
    fn operators_and_arrows_keep_their_grouping() {
        let out = zed(
            "type user\ntype folder\n  relations\n    define viewer: [user]\ntype doc\n  relations\n    define parent: [folder]\n    define ann: [user]\n    define bob: [user]\n    define cat: [user]\n    define v1: ann but not (bob or cat)\n    define v2: (ann but not bob) and viewer from parent\n",
        );
        assert!(out.contains("permission r_v1 = ann - (bob + cat)"), "{out}");
        assert!(
            out.contains("permission r_v2 = (ann - bob) & parent->viewer"),
            "{out}"
        );
    }

    #[test]
    fn conditions_become_caveats() {
        let out = zed(
            "type user\ntype doc\n  relations\n    define viewer: [user with small, user:* with small]\ncondition small(x: int, tags: list<string>) {\n  x < 100 && \"a\" in tags\n}\n",
        );
        assert!(
            out.contains("caveat small(x int, tags list<string>) {\n\tx < 100 && \"a\" in tags\n}"),
            "{out}"
        );
        assert!(
            out.contains("relation viewer: user with small | user:* with small"),
            "{out}"
        );
    }

    #[test]
    fn names_are_mapped_to_identifiers() {
        let translation = translate_openfga(
            "model\n  schema 1.1\ntype directs-user\n  relations\n    define a1: [directs-user]\n",
        )
        .unwrap();
        assert_eq!(translation.type_name("directs-user"), Some("directs_user"));
        assert_eq!(
            translation.check_relation("directs-user", "a1"),
            Some("r_a1")
        );
        assert!(translation.schema().contains("relation r_a1: directs_user"));
        assert_eq!(identifier("permission"), "r_permission");
        assert_eq!(identifier("Team-"), "team_x");
    }

    #[test]
    fn untranslatable_input_names_line_and_column() {
        let err = openfga_to_zed("model\n  schema 1.0\ntype user\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "2:3: cannot translate `schema 1.0`: only schema 1.1 models are supported"
        );
        let err = openfga_to_zed(
            "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define v: [user] or (x\n",
        )
        .unwrap_err();
        assert!(matches!(err, OpenFgaError::Syntax { line: 6, .. }), "{err}");
        let err = openfga_to_zed(
            "model\n  schema 1.1\ntype user\n  relations\n    define a: [user]\n    define b: a or x from a and a\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot be mixed"), "{err}");
        let err = openfga_to_zed(
            "model\n  schema 1.1\ntype user\ncondition odd(x: float) {\n  x > 1.0\n}\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "4:1: cannot translate `float`: SpiceDB caveats have no such parameter type"
        );
    }
}
