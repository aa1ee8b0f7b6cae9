//! Printer round trips: print → parse gives back the same tree (spans, parentheses and
//! comment whitespace aside), printing is idempotent, and the printed schema compiles to the
//! same IR. Checked on random trees (proptest), on `schema-examples/*.zed` and on every
//! SpiceDB parser fixture that parses.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ostiary_schema::ast::{
    AllowedKind, AllowedType, Arrow, ArrowKind, Caveat, CaveatParam, Comment, Definition, Expr,
    Ident, Import, Item, Member, Permission, Relation, Schema, Splat, TypeRef, UseDirective,
};
use ostiary_schema::compile::{CompileOptions, Compiled, compile_parsed};
use ostiary_schema::ir::CompiledSchema;
use ostiary_schema::{SourceFile, Span, parse, print, printer};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Span-, paren- and whitespace-insensitive normal form of a tree.

fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn n_ident(ident: &Ident) -> Ident {
    Ident {
        text: ident.text.clone(),
        span: Span::default(),
    }
}

fn n_trailing(comment: Option<&Comment>) -> Option<Comment> {
    comment.map(|comment| Comment {
        text: squash(&comment.text),
        span: Span::default(),
    })
}

fn n_comments(comments: &[Comment]) -> Vec<Comment> {
    comments
        .iter()
        .map(|comment| Comment {
            text: squash(&comment.text),
            span: Span::default(),
        })
        .collect()
}

fn n_expr(expr: &Expr) -> Expr {
    let z = Span::default();
    match expr {
        Expr::Ref(ident) => Expr::Ref(n_ident(ident)),
        Expr::Nil(_) => Expr::Nil(z),
        Expr::SelfRef(_) => Expr::SelfRef(z),
        Expr::Union(l, r, _) => Expr::Union(Box::new(n_expr(l)), Box::new(n_expr(r)), z),
        Expr::Intersection(l, r, _) => {
            Expr::Intersection(Box::new(n_expr(l)), Box::new(n_expr(r)), z)
        }
        Expr::Exclusion(l, r, _) => Expr::Exclusion(Box::new(n_expr(l)), Box::new(n_expr(r)), z),
        Expr::Arrow(arrow) => Expr::Arrow(Box::new(Arrow {
            left: n_expr(&arrow.left),
            kind: arrow.kind,
            target: n_ident(&arrow.target),
            span: z,
        })),
        Expr::Paren(inner, _) => n_expr(inner),
    }
}

fn n_type_ref(type_ref: &TypeRef) -> TypeRef {
    TypeRef {
        name: n_ident(&type_ref.name),
        args: type_ref.args.iter().map(n_type_ref).collect(),
        span: Span::default(),
    }
}

fn n_member(member: &Member) -> Member {
    let z = Span::default();
    match member {
        Member::Relation(relation) => Member::Relation(Relation {
            comments: n_comments(&relation.comments),
            name: n_ident(&relation.name),
            allowed_types: relation
                .allowed_types
                .iter()
                .map(|allowed| AllowedType {
                    type_name: n_ident(&allowed.type_name),
                    kind: match &allowed.kind {
                        // The printer writes `type#...` as `type`, which means the same.
                        AllowedKind::Direct | AllowedKind::Ellipsis(_) => AllowedKind::Direct,
                        AllowedKind::Wildcard(_) => AllowedKind::Wildcard(z),
                        AllowedKind::SubjectRelation(rel) => {
                            AllowedKind::SubjectRelation(n_ident(rel))
                        }
                    },
                    caveat: allowed.caveat.as_ref().map(n_ident),
                    expiration: allowed.expiration.map(|_| z),
                    span: z,
                })
                .collect(),
            trailing_comment: n_trailing(relation.trailing_comment.as_ref()),
            span: z,
        }),
        Member::Permission(permission) => Member::Permission(Permission {
            comments: n_comments(&permission.comments),
            name: n_ident(&permission.name),
            type_annotation: permission.type_annotation.iter().map(n_ident).collect(),
            expr: n_expr(&permission.expr),
            trailing_comment: n_trailing(permission.trailing_comment.as_ref()),
            span: z,
        }),
        Member::Splat(splat) => Member::Splat(Splat {
            comments: n_comments(&splat.comments),
            partial: n_ident(&splat.partial),
            trailing_comment: n_trailing(splat.trailing_comment.as_ref()),
            span: z,
        }),
    }
}

fn n_definition(definition: &Definition) -> Definition {
    Definition {
        comments: n_comments(&definition.comments),
        name: n_ident(&definition.name),
        members: definition.members.iter().map(n_member).collect(),
        trailing_comments: n_comments(&definition.trailing_comments),
        span: Span::default(),
    }
}

fn n_item(item: &Item) -> Item {
    let z = Span::default();
    match item {
        Item::Use(directive) => Item::Use(UseDirective {
            comments: n_comments(&directive.comments),
            flag: n_ident(&directive.flag),
            span: z,
        }),
        Item::Import(import) => Item::Import(Import {
            comments: n_comments(&import.comments),
            path: import.path.clone(),
            path_span: z,
            span: z,
        }),
        Item::Definition(definition) => Item::Definition(n_definition(definition)),
        Item::Partial(partial) => Item::Partial(n_definition(partial)),
        Item::Caveat(caveat) => Item::Caveat(Caveat {
            comments: n_comments(&caveat.comments),
            name: n_ident(&caveat.name),
            params: caveat
                .params
                .iter()
                .map(|param| CaveatParam {
                    name: n_ident(&param.name),
                    param_type: n_type_ref(&param.param_type),
                    span: z,
                })
                .collect(),
            expression: squash(&caveat.expression),
            expression_span: z,
            span: z,
        }),
    }
}

/// The tree with spans zeroed, parentheses and `#...` removed, whitespace in comments and caveat
/// expressions squashed, and `use` directives first (the printer moves them there).
fn normal(schema: &Schema) -> Schema {
    let (uses, others): (Vec<&Item>, Vec<&Item>) = schema
        .items
        .iter()
        .partition(|item| matches!(item, Item::Use(_)));
    Schema {
        items: uses.into_iter().chain(others).map(n_item).collect(),
        trailing_comments: n_comments(&schema.trailing_comments),
    }
}

/// The IR with whitespace in comments and caveat expressions squashed.
fn normal_ir(mut schema: CompiledSchema) -> CompiledSchema {
    for definition in &mut schema.definitions {
        definition.comments = definition.comments.iter().map(|c| squash(c)).collect();
        for relation in &mut definition.relations {
            relation.comments = relation.comments.iter().map(|c| squash(c)).collect();
        }
    }
    for caveat in &mut schema.caveats {
        caveat.comments = caveat.comments.iter().map(|c| squash(c)).collect();
        caveat.expression.source = squash(&caveat.expression.source);
    }
    schema
}

fn compile_one(file: &Arc<SourceFile>, schema: &Schema) -> Option<Compiled> {
    compile_parsed(
        &[(Arc::clone(file), schema.clone())],
        &CompileOptions::default(),
    )
    .ok()
}

/// Prints `schema` (parsed from `file`), then checks the printed text parses to the same
/// tree, prints identically again, and (when `schema` compiles) compiles to the same IR.
fn assert_round_trip(file: &Arc<SourceFile>, schema: &Schema) -> Result<(), TestCaseError> {
    for (mode, printed) in [
        ("print", print(schema)),
        (
            "print_with_source",
            printer::print_with_source(schema, file),
        ),
    ] {
        let printed_file = SourceFile::new(format!("printed {}", file.name()), printed.as_str());
        let reparsed = parse(&printed_file);
        prop_assert!(
            reparsed.is_ok(),
            "{mode} output does not parse: {}\n--- printed\n{printed}",
            reparsed
                .diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        prop_assert_eq!(
            normal(&reparsed.schema),
            normal(schema),
            "{} changed the tree\n--- printed\n{}",
            mode,
            printed
        );
        let reprinted = match mode {
            "print" => print(&reparsed.schema),
            _ => printer::print_with_source(&reparsed.schema, &printed_file),
        };
        prop_assert_eq!(&reprinted, &printed, "{} is not idempotent", mode);
        prop_assert!(printed.ends_with('\n') || printed.is_empty());
        prop_assert!(!printed.ends_with("\n\n"));

        let before = compile_one(file, schema);
        let after = compile_one(&printed_file, &reparsed.schema);
        prop_assert_eq!(
            before.is_some(),
            after.is_some(),
            "{} changed compilability",
            mode
        );
        if let (Some(before), Some(after)) = (before, after) {
            prop_assert_eq!(normal_ir(before.schema), normal_ir(after.schema));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Files.

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn zed_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "zed"))
        .collect();
    files.sort();
    files
}

/// Round-trips every file that parses; returns how many did.
fn round_trip_files(files: &[PathBuf]) -> usize {
    let mut n_parsed = 0;
    for path in files {
        let text = std::fs::read_to_string(path).unwrap();
        let file = SourceFile::new(path.display().to_string(), text);
        let parsed = parse(&file);
        if !parsed.is_ok() {
            continue;
        }
        n_parsed += 1;
        if let Err(err) = assert_round_trip(&file, &parsed.schema) {
            panic!("{}: {err}", path.display());
        }
        // `fmt` is what users run: it must accept every valid file and be stable.
        let formatted = printer::format(&file)
            .unwrap_or_else(|diags| panic!("{}: fmt refused: {diags:?}", path.display()));
        let again = printer::format(&SourceFile::new("again", formatted.as_str())).unwrap();
        assert_eq!(
            again,
            formatted,
            "{}: fmt is not idempotent",
            path.display()
        );
    }
    n_parsed
}

#[test]
fn schema_examples_round_trip_and_all_compile() {
    let files = zed_files(&repo_dir().join("schema-examples"));
    assert!(!files.is_empty());
    assert_eq!(
        round_trip_files(&files),
        files.len(),
        "every example must parse"
    );
    for path in &files {
        let file = SourceFile::new(
            path.display().to_string(),
            std::fs::read_to_string(path).unwrap(),
        );
        let parsed = parse(&file);
        assert!(
            compile_one(&file, &parsed.schema).is_some(),
            "{} must compile",
            path.display()
        );
    }
}

#[test]
fn spicedb_parser_fixtures_round_trip() {
    let dir = repo_dir().join("../shared/conformance/spicedb/pkg/schemadsl/parser/tests");
    let files = zed_files(&dir);
    let n_parsed = round_trip_files(&files);
    // 65 fixtures, 29 of them with syntax errors (FORMAT.md §4).
    assert!(
        n_parsed >= 30,
        "only {n_parsed} of {} fixtures parsed",
        files.len()
    );
}

// ---------------------------------------------------------------------------------------
// Random trees.

const RESERVED: &[&str] = &[
    "definition",
    "caveat",
    "relation",
    "permission",
    "nil",
    "with",
    "self",
    "use",
    "import",
    "partial",
    "and",
    "expiration",
    "any",
    "all",
    "in",
    "true",
    "false",
    "null",
];

fn ident_from(text: String) -> Ident {
    Ident {
        text,
        span: Span::default(),
    }
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,4}[a-z0-9]"
        .prop_filter("reserved word", |name| !RESERVED.contains(&name.as_str()))
}

fn ident() -> impl Strategy<Value = Ident> {
    name().prop_map(ident_from)
}

/// A definition or caveat name, sometimes with a prefix.
fn type_name() -> impl Strategy<Value = Ident> {
    (prop::option::of(name()), name()).prop_map(|(prefix, name)| {
        ident_from(match prefix {
            Some(prefix) => format!("{prefix}/{name}"),
            None => name,
        })
    })
}

fn comment() -> impl Strategy<Value = Comment> {
    prop_oneof![
        "[a-zA-Z0-9 .,`*]{0,20}".prop_map(|text| format!("//{text}")),
        "[a-zA-Z0-9 .,`]{0,20}".prop_map(|text| format!("/* {text} */")),
        ("[a-z ]{0,12}", "[a-z ]{0,12}")
            .prop_map(|(one, two)| format!("/**\n   * {one}\n      * {two}\n   */")),
        ("[a-z ]{1,12}", "[a-z ]{1,12}")
            .prop_map(|(one, two)| format!("/* {one}\n        {two}\n    */")),
    ]
    .prop_map(|text| Comment {
        text,
        span: Span::default(),
    })
}

fn comments() -> impl Strategy<Value = Vec<Comment>> {
    prop::collection::vec(comment(), 0..3)
}

fn expr() -> impl Strategy<Value = Expr> {
    let z = Span::default();
    let leaf = prop_oneof![
        4 => ident().prop_map(Expr::Ref),
        1 => Just(Expr::Nil(z)),
        1 => Just(Expr::SelfRef(z)),
    ];
    // An arrow's left side is a relation name or another arrow.
    let arrow_chain = (
        ident(),
        prop::collection::vec(
            (
                prop_oneof![
                    Just(ArrowKind::Arrow),
                    Just(ArrowKind::Any),
                    Just(ArrowKind::All)
                ],
                ident(),
            ),
            1..4,
        ),
    )
        .prop_map(move |(start, steps)| {
            steps
                .into_iter()
                .fold(Expr::Ref(start), |left, (kind, target)| {
                    Expr::Arrow(Box::new(Arrow {
                        left,
                        kind,
                        target,
                        span: z,
                    }))
                })
        });
    prop_oneof![3 => leaf, 1 => arrow_chain].prop_recursive(5, 32, 2, move |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(move |(l, r)| Expr::Union(
                Box::new(l),
                Box::new(r),
                z
            )),
            (inner.clone(), inner.clone()).prop_map(move |(l, r)| Expr::Intersection(
                Box::new(l),
                Box::new(r),
                z
            )),
            (inner.clone(), inner.clone()).prop_map(move |(l, r)| Expr::Exclusion(
                Box::new(l),
                Box::new(r),
                z
            )),
            inner.prop_map(move |e| Expr::Paren(Box::new(e), z)),
        ]
    })
}

fn allowed_type() -> impl Strategy<Value = AllowedType> {
    let z = Span::default();
    (
        type_name(),
        prop_oneof![
            Just(AllowedKind::Direct),
            Just(AllowedKind::Wildcard(z)),
            ident().prop_map(AllowedKind::SubjectRelation),
            Just(AllowedKind::Ellipsis(z)),
        ],
        prop::option::of(type_name()),
        any::<bool>(),
    )
        .prop_map(move |(type_name, kind, caveat, expiration)| AllowedType {
            type_name,
            kind,
            caveat,
            expiration: expiration.then_some(z),
            span: z,
        })
}

fn member() -> impl Strategy<Value = Member> {
    let z = Span::default();
    prop_oneof![
        3 => (comments(), ident(), prop::collection::vec(allowed_type(), 1..4)).prop_map(
            move |(comments, name, allowed_types)| {
                Member::Relation(Relation { comments, name, allowed_types, trailing_comment: None, span: z })
            }
        ),
        3 => (comments(), ident(), prop::collection::vec(type_name(), 0..3), expr()).prop_map(
            move |(comments, name, type_annotation, expr)| {
                Member::Permission(Permission { comments, name, type_annotation, expr, trailing_comment: None, span: z })
            }
        ),
        1 => (comments(), ident()).prop_map(move |(comments, partial)| {
            Member::Splat(Splat { comments, partial, trailing_comment: None, span: z })
        }),
    ]
}

fn definition() -> impl Strategy<Value = Definition> {
    (
        comments(),
        type_name(),
        prop::collection::vec(member(), 0..6),
        comments(),
    )
        .prop_map(|(comments, name, members, trailing_comments)| Definition {
            comments,
            name,
            members,
            trailing_comments,
            span: Span::default(),
        })
}

fn type_ref() -> impl Strategy<Value = TypeRef> {
    let z = Span::default();
    let base = prop_oneof![
        Just("int"),
        Just("uint"),
        Just("string"),
        Just("bool"),
        Just("double"),
        Just("bytes"),
        Just("duration"),
        Just("timestamp"),
        Just("ipaddress"),
        Just("any"),
    ]
    .prop_map(move |name| TypeRef {
        name: ident_from(name.to_owned()),
        args: Vec::new(),
        span: z,
    });
    base.prop_recursive(2, 4, 1, move |inner| {
        (prop_oneof![Just("list"), Just("map")], inner).prop_map(move |(name, arg)| TypeRef {
            name: ident_from(name.to_owned()),
            args: vec![arg],
            span: z,
        })
    })
}

fn caveat() -> impl Strategy<Value = Caveat> {
    let z = Span::default();
    let expression = prop_oneof![
        Just("a == 1"),
        Just("\n  a == 1\n"),
        Just(" a > 1 &&\n      b.contains(\"x\")\n  "),
        Just("\n\t\tx in [1, 2,\n\t\t  3]\n\t"),
        Just("{\n  \"k\": 1\n}.size() == 1"),
    ];
    (
        comments(),
        type_name(),
        prop::collection::vec((ident(), type_ref()), 1..3),
        expression,
    )
        .prop_map(move |(comments, name, params, expression)| Caveat {
            comments,
            name,
            params: params
                .into_iter()
                .map(|(name, param_type)| CaveatParam {
                    name,
                    param_type,
                    span: z,
                })
                .collect(),
            expression: expression.to_owned(),
            expression_span: z,
            span: z,
        })
}

fn schema() -> impl Strategy<Value = Schema> {
    let z = Span::default();
    let item = prop_oneof![
        4 => definition().prop_map(Item::Definition),
        1 => definition().prop_map(Item::Partial),
        1 => caveat().prop_map(Item::Caveat),
        1 => (comments(), "[a-z]{1,6}(/[a-z]{1,6})?").prop_map(move |(comments, path)| {
            Item::Import(Import { comments, path: format!("{path}.zed"), path_span: z, span: z })
        }),
    ];
    (comments(), prop::collection::vec(item, 0..6), comments()).prop_map(
        move |(first_comments, items, trailing_comments)| {
            // Every feature is on, so that every construct parses.
            let mut all: Vec<Item> = ["expiration", "self", "partial", "typechecking", "import"]
                .iter()
                .enumerate()
                .map(|(idx, flag)| {
                    Item::Use(UseDirective {
                        comments: if idx == 0 {
                            first_comments.clone()
                        } else {
                            Vec::new()
                        },
                        flag: ident_from((*flag).to_owned()),
                        span: z,
                    })
                })
                .collect();
            all.extend(items);
            Schema {
                items: all,
                trailing_comments,
            }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_trees_round_trip(schema in schema()) {
        let file = SourceFile::new("generated.zed", print(&schema));
        assert_round_trip(&file, &schema)?;
    }
}
