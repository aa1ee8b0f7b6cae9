//! Caveats: parameter types, CEL parsing (errors mapped back into the schema file), the check
//! that the expression only names declared parameters and known functions, and a light type
//! inference that rejects expressions which cannot yield a boolean.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cel::IdedExpr;
use cel::common::ast::{Expr, LiteralValue};

use crate::ast;
use crate::diagnostic::Diagnostic;
use crate::ir::{CaveatParam, CaveatType, CelExpression};
use crate::source::{SourceFile, Span};

/// Functions and macros a caveat expression may call: CEL's standard library and the
/// extensions SpiceDB registers (`in_cidr` for `ipaddress`, `isSubtreeOf` for maps).
const KNOWN_FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "duration",
    "timestamp",
    "dyn",
    "type",
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getFullYear",
    "getHours",
    "getMilliseconds",
    "getMinutes",
    "getMonth",
    "getSeconds",
    "in_cidr",
    "isSubtreeOf",
    "ipaddress",
];

/// Resolves a parameter type such as `map<list<int>>`.
pub(crate) fn resolve_type(
    file: &Arc<SourceFile>,
    type_ref: &ast::TypeRef,
    param: &str,
    caveat: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<CaveatType> {
    let name = type_ref.name.text.as_str();
    let generic = |args: &[ast::TypeRef], diags: &mut Vec<Diagnostic>| -> Option<CaveatType> {
        if args.len() != 1 {
            diags.push(
                Diagnostic::error(
                    "caveat-parameter-type",
                    file,
                    type_ref.span,
                    format!(
                        "type `{name}` of parameter `{param}` on caveat `{caveat}` takes 1 type argument, found {}",
                        args.len()
                    ),
                )
                .with_label("expected exactly one type argument")
                .with_help(format!("write `{name}<T>`, for example `{name}<string>`")),
            );
            return None;
        }
        resolve_type(file, &args[0], param, caveat, diags)
    };
    let resolved = match name {
        "any" => CaveatType::Any,
        "bool" => CaveatType::Bool,
        "string" => CaveatType::String,
        "int" => CaveatType::Int,
        "uint" => CaveatType::Uint,
        "double" => CaveatType::Double,
        "bytes" => CaveatType::Bytes,
        "duration" => CaveatType::Duration,
        "timestamp" => CaveatType::Timestamp,
        "ipaddress" => CaveatType::IpAddress,
        "list" => CaveatType::List(Box::new(generic(&type_ref.args, diags)?)),
        "map" => CaveatType::Map(Box::new(generic(&type_ref.args, diags)?)),
        _ => {
            diags.push(
                Diagnostic::error(
                    "caveat-parameter-type",
                    file,
                    type_ref.name.span,
                    format!("unknown type `{name}` for parameter `{param}` on caveat `{caveat}`"),
                )
                .with_label("not a caveat parameter type")
                .with_help(
                    "use one of `any`, `bool`, `string`, `int`, `uint`, `double`, `bytes`, `duration`, `timestamp`, `ipaddress`, `list<T>` or `map<T>`",
                ),
            );
            return None;
        }
    };
    Some(resolved)
}

/// Maps positions inside the caveat expression text to byte spans in the schema file.
struct PositionMap<'a> {
    text: &'a str,
    /// Byte offset of the expression text in the file.
    base: usize,
}

impl PositionMap<'_> {
    /// The file offset of the `char_idx`-th character of the expression.
    fn char_offset(&self, char_idx: usize) -> usize {
        let byte = self
            .text
            .char_indices()
            .nth(char_idx)
            .map_or(self.text.len(), |(byte, _)| byte);
        self.base + byte
    }

    /// The file offset of a 1-based line and 0-based character column of the expression.
    fn line_col_offset(&self, line: isize, column: isize) -> usize {
        let mut byte = 0;
        for (line_idx, line_text) in self.text.split_inclusive('\n').enumerate() {
            if line_idx + 1 == usize::try_from(line).unwrap_or(1) {
                let column = usize::try_from(column).unwrap_or(0);
                let in_line = line_text
                    .char_indices()
                    .nth(column)
                    .map_or(line_text.len(), |(idx, _)| idx);
                return self.base + byte + in_line;
            }
            byte += line_text.len();
        }
        self.base + self.text.len()
    }
}

/// Parses and checks a caveat's expression against its parameters.
pub(crate) fn check_expression(
    file: &Arc<SourceFile>,
    caveat: &ast::Caveat,
    full_name: &str,
    params: &[CaveatParam],
    diags: &mut Vec<Diagnostic>,
) -> Option<CelExpression> {
    // The AST keeps the expression verbatim; if its span disagrees (a hand-built AST), point
    // at the start of the expression span.
    let base = caveat.expression_span.start();
    let map = PositionMap {
        text: &caveat.expression,
        base,
    };
    let program = match cel::Program::compile(&caveat.expression) {
        Ok(program) => program,
        Err(errors) => {
            for error in errors.errors {
                // CEL parse positions are a 1-based line and a 1-based column.
                let offset = map.line_col_offset(error.pos.0, error.pos.1 - 1);
                let message = error.msg.trim().trim_start_matches("Syntax error: ");
                let message = message.split(" expecting ").next().unwrap_or(message);
                diags.push(
                    Diagnostic::error(
                        "caveat-syntax",
                        file,
                        Span::new(offset, (offset + 1).min(caveat.expression_span.end())),
                        format!("invalid expression for caveat `{full_name}`: {message}"),
                    )
                    .with_label("the CEL expression does not parse here")
                    .with_help(
                        "write the caveat body as a CEL expression, e.g. `{ amount < limit }`",
                    ),
                );
            }
            return None;
        }
    };
    let param_types: HashMap<&str, &CaveatType> = params
        .iter()
        .map(|param| (param.name.as_str(), &param.param_type))
        .collect();
    let mut checker = Checker {
        file,
        caveat_name: full_name,
        map: &map,
        program: &program,
        params: &param_types,
        bound: Vec::new(),
        used: HashSet::new(),
        n_errors: 0,
        diags,
    };
    let result_type = checker.infer(program.expression());
    let used = std::mem::take(&mut checker.used);
    let n_errors = checker.n_errors;
    if n_errors == 0
        && let Some(found) = result_type
        && found != InferredType::Bool
    {
        let trimmed = caveat.expression.trim_start();
        let start = base + (caveat.expression.len() - trimmed.len());
        let span = Span::new(start, start + trimmed.trim_end().len());
        diags.push(
            Diagnostic::error(
                "caveat-type",
                file,
                span,
                format!(
                    "caveat expression for `{full_name}` must result in a boolean value, found `{}`",
                    found.name()
                ),
            )
            .with_label("this is not a boolean")
            .with_help("compare the value, e.g. `param == 42`, so that the caveat is true or false"),
        );
        return None;
    }
    if n_errors > 0 {
        return None;
    }
    let mut all_used = true;
    for param in &caveat.params {
        if !used.contains(param.name.text.as_str()) {
            all_used = false;
            diags.push(
                Diagnostic::error(
                    "unused-caveat-parameter",
                    file,
                    param.name.span,
                    format!(
                        "parameter `{}` of caveat `{full_name}` is unused",
                        param.name.text
                    ),
                )
                .with_label("never used in the expression")
                .with_help("use the parameter in the expression or remove it"),
            );
        }
    }
    if !all_used {
        return None;
    }
    Some(CelExpression {
        source: caveat.expression.clone(),
        program: Arc::new(program),
    })
}

/// What the light type inference knows about a sub-expression.
#[derive(Clone, Debug, PartialEq, Eq)]
enum InferredType {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Duration,
    Timestamp,
    IpAddress,
    Null,
    List(Option<Box<InferredType>>),
    Map(Option<Box<InferredType>>),
}

impl InferredType {
    fn name(&self) -> String {
        match self {
            InferredType::Bool => "bool".into(),
            InferredType::Int => "int".into(),
            InferredType::Uint => "uint".into(),
            InferredType::Double => "double".into(),
            InferredType::String => "string".into(),
            InferredType::Bytes => "bytes".into(),
            InferredType::Duration => "duration".into(),
            InferredType::Timestamp => "timestamp".into(),
            InferredType::IpAddress => "ipaddress".into(),
            InferredType::Null => "null".into(),
            InferredType::List(_) => "list".into(),
            InferredType::Map(_) => "map".into(),
        }
    }

    fn from_param(param: &CaveatType) -> Option<InferredType> {
        Some(match param {
            CaveatType::Any => return None,
            CaveatType::Bool => InferredType::Bool,
            CaveatType::String => InferredType::String,
            CaveatType::Int => InferredType::Int,
            CaveatType::Uint => InferredType::Uint,
            CaveatType::Double => InferredType::Double,
            CaveatType::Bytes => InferredType::Bytes,
            CaveatType::Duration => InferredType::Duration,
            CaveatType::Timestamp => InferredType::Timestamp,
            CaveatType::IpAddress => InferredType::IpAddress,
            CaveatType::List(inner) => {
                InferredType::List(InferredType::from_param(inner).map(Box::new))
            }
            CaveatType::Map(inner) => {
                InferredType::Map(InferredType::from_param(inner).map(Box::new))
            }
        })
    }

    /// Whether `==`/`<` between the two can never have an overload (both fully known
    /// scalars of different types).
    fn incomparable(&self, other: &InferredType) -> bool {
        let scalar = |ty: &InferredType| {
            !matches!(
                ty,
                InferredType::List(_) | InferredType::Map(_) | InferredType::Null
            )
        };
        scalar(self) && scalar(other) && self != other
    }
}

/// Walks the parsed CEL tree.
struct Checker<'a> {
    file: &'a Arc<SourceFile>,
    caveat_name: &'a str,
    map: &'a PositionMap<'a>,
    program: &'a cel::Program,
    params: &'a HashMap<&'a str, &'a CaveatType>,
    /// Variables bound by enclosing comprehensions (macro variables).
    bound: Vec<String>,
    used: HashSet<String>,
    n_errors: usize,
    diags: &'a mut Vec<Diagnostic>,
}

impl Checker<'_> {
    fn span_of(&self, expr: &IdedExpr) -> Span {
        match self.program.source_info().offset_for(expr.id) {
            Some((start, stop)) => {
                // CEL records the first and last character of a token, both inclusive.
                let start_offset = self.map.char_offset(start as usize);
                let stop_offset = self
                    .map
                    .char_offset(stop as usize + 1)
                    .max(start_offset + 1);
                if let Expr::Call(call) = &expr.expr
                    && !call.func_name.starts_with(['_', '@', '!', '-'])
                {
                    // A named call is recorded at its `(`: underline the function name.
                    let name_start = start_offset
                        .saturating_sub(call.func_name.len())
                        .max(self.map.base);
                    return Span::new(name_start, start_offset);
                }
                Span::new(start_offset, stop_offset)
            }
            None => Span::point(self.map.base),
        }
    }

    fn error(&mut self, expr: &IdedExpr, message: String, label: &str, help: String) {
        self.n_errors += 1;
        let span = self.span_of(expr);
        self.diags.push(
            Diagnostic::error("caveat-expression", self.file, span, message)
                .with_label(label)
                .with_help(help),
        );
    }

    fn param_list(&self) -> String {
        let mut names: Vec<_> = self.params.keys().map(|name| format!("`{name}`")).collect();
        names.sort();
        if names.is_empty() {
            "the caveat declares no parameters".into()
        } else {
            format!("declared parameters: {}", names.join(", "))
        }
    }

    fn infer(&mut self, expr: &IdedExpr) -> Option<InferredType> {
        match &expr.expr {
            Expr::Unspecified => None,
            Expr::Literal(literal) => Some(match literal {
                LiteralValue::Boolean(_) => InferredType::Bool,
                LiteralValue::Bytes(_) => InferredType::Bytes,
                LiteralValue::Double(_) => InferredType::Double,
                LiteralValue::Int(_) => InferredType::Int,
                LiteralValue::Null => InferredType::Null,
                LiteralValue::String(_) => InferredType::String,
                LiteralValue::UInt(_) => InferredType::Uint,
            }),
            Expr::Ident(name) => {
                if self.bound.iter().any(|bound| bound == name) {
                    return None;
                }
                if let Some(param) = self.params.get(name.as_str()) {
                    self.used.insert(name.clone());
                    return InferredType::from_param(param);
                }
                let message = format!(
                    "undeclared reference to `{name}` in caveat `{}`",
                    self.caveat_name
                );
                let help = format!(
                    "declare `{name}` as a parameter of the caveat ({})",
                    self.param_list()
                );
                self.error(expr, message, "not a parameter of this caveat", help);
                None
            }
            Expr::Select(select) => {
                let operand = self.infer(&select.operand);
                if select.test {
                    return Some(InferredType::Bool);
                }
                match operand {
                    Some(InferredType::Map(inner)) => inner.map(|inner| *inner),
                    _ => None,
                }
            }
            Expr::List(list) => {
                let mut element = None;
                for item in &list.elements {
                    element = self.infer(item);
                }
                Some(InferredType::List(element.map(Box::new)))
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let cel::common::ast::EntryExpr::MapEntry(entry) = &entry.expr {
                        self.infer(&entry.key);
                        self.infer(&entry.value);
                    }
                }
                Some(InferredType::Map(None))
            }
            Expr::Struct(structure) => {
                for entry in &structure.entries {
                    if let cel::common::ast::EntryExpr::StructField(field) = &entry.expr {
                        self.infer(&field.value);
                    }
                }
                None
            }
            Expr::Comprehension(comprehension) => {
                self.infer(&comprehension.iter_range);
                let n_bound = self.bound.len();
                self.bound.push(comprehension.iter_var.clone());
                if let Some(var) = &comprehension.iter_var2 {
                    self.bound.push(var.clone());
                }
                self.bound.push(comprehension.accu_var.clone());
                let init = self.infer(&comprehension.accu_init);
                self.infer(&comprehension.loop_cond);
                self.infer(&comprehension.loop_step);
                let result = self.infer(&comprehension.result);
                self.bound.truncate(n_bound);
                match &comprehension.result.expr {
                    Expr::Ident(name) if *name == comprehension.accu_var => init,
                    _ => result,
                }
            }
            Expr::Call(call) => self.infer_call(expr, call),
        }
    }

    fn infer_call(
        &mut self,
        expr: &IdedExpr,
        call: &cel::common::ast::CallExpr,
    ) -> Option<InferredType> {
        let target = call.target.as_ref().map(|target| self.infer(target));
        let args: Vec<Option<InferredType>> = call.args.iter().map(|arg| self.infer(arg)).collect();
        let name = call.func_name.as_str();
        let is_operator = name.starts_with('_')
            || name.starts_with('@')
            || name.starts_with('!')
            || name.starts_with('-');
        if !is_operator && !KNOWN_FUNCTIONS.contains(&name) {
            let message = format!("unknown function `{name}` in caveat `{}`", self.caveat_name);
            self.error(
                expr,
                message,
                "no such function",
                "use a CEL standard function (`size`, `contains`, `startsWith`, `matches`, ...) or `in_cidr`".into(),
            );
            return None;
        }
        let binary = match (args.first(), args.get(1)) {
            (Some(Some(left)), Some(Some(right))) => Some((left.clone(), right.clone())),
            _ => None,
        };
        match name {
            "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" => {
                let numeric = |ty: &InferredType| {
                    matches!(
                        ty,
                        InferredType::Int | InferredType::Uint | InferredType::Double
                    )
                };
                // CEL's equality is heterogeneous across numeric types (`uint == 42` holds);
                // ordering is not (SpiceDB rejects `int > 1.5`).
                let equality = name == "_==_" || name == "_!=_";
                if let Some((left, right)) = binary
                    && left.incomparable(&right)
                    && !(equality && numeric(&left) && numeric(&right))
                {
                    let symbol = name.trim_matches('_');
                    let message = format!(
                        "cannot compare `{}` with `{}` using `{symbol}` in caveat `{}`",
                        left.name(),
                        right.name(),
                        self.caveat_name
                    );
                    self.error(
                        expr,
                        message,
                        "no overload for these operand types",
                        "compare values of the same type, converting one side if needed (e.g. `double(x)`)".into(),
                    );
                    return None;
                }
                Some(InferredType::Bool)
            }
            "_&&_"
            | "_||_"
            | "!_"
            | "@in"
            | "@not_strictly_false"
            | "contains"
            | "startsWith"
            | "endsWith"
            | "matches"
            | "in_cidr"
            | "isSubtreeOf"
            | "has"
            | "all"
            | "exists"
            | "exists_one"
            | "bool" => Some(InferredType::Bool),
            "size" | "int" | "getDate" | "getDayOfMonth" | "getDayOfWeek" | "getDayOfYear"
            | "getFullYear" | "getHours" | "getMilliseconds" | "getMinutes" | "getMonth"
            | "getSeconds" => Some(InferredType::Int),
            "uint" => Some(InferredType::Uint),
            "double" => Some(InferredType::Double),
            "string" => Some(InferredType::String),
            "bytes" => Some(InferredType::Bytes),
            "duration" => Some(InferredType::Duration),
            "timestamp" => Some(InferredType::Timestamp),
            "ipaddress" => Some(InferredType::IpAddress),
            "_+_" | "_-_" | "_*_" | "_/_" | "_%_" => match binary {
                Some((left, right)) if left == right => Some(left),
                _ => None,
            },
            "-_" => args.first().cloned().flatten(),
            "_?_:_" => args.get(1).cloned().flatten(),
            "_[_]" => match args.first().cloned().flatten() {
                Some(InferredType::List(inner) | InferredType::Map(inner)) => {
                    inner.map(|inner| *inner)
                }
                _ => None,
            },
            _ => {
                let _ = target;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(params: &[(&str, CaveatType)], expression: &str) -> Vec<String> {
        let text = format!("caveat cav(...) {{{expression}}}");
        let file = SourceFile::new("t.zed", text.clone());
        let start = text.find('{').unwrap() + 1;
        let caveat = ast::Caveat {
            comments: Vec::new(),
            name: ast::Ident {
                text: "cav".into(),
                span: Span::new(7, 10),
            },
            params: params
                .iter()
                .map(|(name, _)| ast::CaveatParam {
                    name: ast::Ident {
                        text: (*name).into(),
                        span: Span::new(11, 14),
                    },
                    param_type: ast::TypeRef {
                        name: ast::Ident {
                            text: "int".into(),
                            span: Span::new(0, 0),
                        },
                        args: Vec::new(),
                        span: Span::new(0, 0),
                    },
                    span: Span::new(11, 14),
                })
                .collect(),
            expression: expression.into(),
            expression_span: Span::new(start, start + expression.len()),
            span: Span::new(0, text.len()),
        };
        let params: Vec<CaveatParam> = params
            .iter()
            .map(|(name, ty)| CaveatParam {
                name: (*name).into(),
                param_type: ty.clone(),
            })
            .collect();
        let mut diags = Vec::new();
        let result = check_expression(&file, &caveat, "cav", &params, &mut diags);
        assert_eq!(result.is_some(), diags.is_empty());
        diags
            .iter()
            .map(|d| format!("{}: {}", d.position(), d.message))
            .collect()
    }

    #[test]
    fn valid_expressions_pass() {
        let int = CaveatType::Int;
        assert!(check(&[("a", int.clone())], " a == 42 ").is_empty());
        assert!(
            check(
                &[("a", CaveatType::List(Box::new(int.clone())))],
                "a.all(x, x > 1)"
            )
            .is_empty()
        );
        assert!(
            check(
                &[("ip", CaveatType::IpAddress)],
                "!ip.in_cidr('1.2.3.0/24')"
            )
            .is_empty()
        );
        assert!(
            check(
                &[
                    ("m", CaveatType::Map(Box::new(CaveatType::Any))),
                    ("n", CaveatType::Map(Box::new(CaveatType::Any)))
                ],
                "m.isSubtreeOf(n)"
            )
            .is_empty()
        );
        assert!(
            check(
                &[("s", CaveatType::String)],
                "s.startsWith('x') && size(s) > 1"
            )
            .is_empty()
        );
        assert!(
            check(
                &[("t", CaveatType::Timestamp)],
                "t > timestamp('2020-01-01T00:00:00Z')"
            )
            .is_empty()
        );
    }

    #[test]
    fn errors_point_into_the_schema_file() {
        assert_eq!(
            check(&[("a", CaveatType::Int)], "\n  b == 42"),
            ["2:3: undeclared reference to `b` in caveat `cav`"]
        );
        assert_eq!(
            check(&[("a", CaveatType::Int)], " a "),
            ["1:19: caveat expression for `cav` must result in a boolean value, found `int`"]
        );
        assert_eq!(
            check(&[("a", CaveatType::Int)], " a == 'x' "),
            ["1:21: cannot compare `int` with `string` using `==` in caveat `cav`"]
        );
        assert_eq!(
            check(
                &[("a", CaveatType::Int), ("b", CaveatType::Int)],
                " a == 1 "
            ),
            ["1:12: parameter `b` of caveat `cav` is unused"]
        );
        let parse = check(&[("a", CaveatType::Int)], "\n a:{}");
        assert_eq!(parse.len(), 1, "{parse:?}");
        assert!(
            parse[0].starts_with("2:3: invalid expression for caveat `cav`"),
            "{parse:?}"
        );
    }
}
