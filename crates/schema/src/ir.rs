//! The compiled schema: the validated, name-resolved form the evaluation engine runs.
//!
//! Everything is addressed by dense integer ids so that the engine's hot loops index vectors
//! instead of hashing strings:
//!
//! * a [`DefinitionId`] indexes [`CompiledSchema::definitions`],
//! * a [`RelationId`] indexes [`Definition::relations`] of *its* definition (relations and
//!   permissions share one id space per definition, in source order),
//! * a [`CaveatId`] indexes [`CompiledSchema::caveats`].
//!
//! Names are looked up once (at the API boundary) with [`CompiledSchema::definition_id`],
//! [`Definition::relation_id`] and [`CompiledSchema::caveat_id`].
//!
//! Permissions carry a [`Rewrite`] tree; relations carry their allowed subject types. The
//! [`Reachability`] graph answers, for LookupResources, which (resource type, relation) pairs a
//! given kind of subject can reach and through which edge.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

mod reachability;

pub use reachability::{ReachEdge, ReachEdgeKind, ReachNode, Reachability};

/// Index of a definition in [`CompiledSchema::definitions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DefinitionId(pub u32);

/// Index of a relation or permission in its definition's [`Definition::relations`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelationId(pub u32);

/// Index of a caveat in [`CompiledSchema::caveats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CaveatId(pub u32);

impl DefinitionId {
    /// The id as a vector index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl RelationId {
    /// The id as a vector index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl CaveatId {
    /// The id as a vector index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A whole compiled schema.
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledSchema {
    /// Object definitions in source order; a [`DefinitionId`] indexes this.
    pub definitions: Vec<Definition>,
    /// Caveats in source order; a [`CaveatId`] indexes this.
    pub caveats: Vec<Caveat>,
    /// The `use` flags the schema declared.
    pub features: Features,
    /// The reverse graph LookupResources walks (subject → resources).
    pub reachability: Reachability,
    pub(crate) definition_ids: HashMap<String, DefinitionId>,
    pub(crate) caveat_ids: HashMap<String, CaveatId>,
}

impl CompiledSchema {
    /// The id of the definition named `name` (prefix included).
    pub fn definition_id(&self, name: &str) -> Option<DefinitionId> {
        self.definition_ids.get(name).copied()
    }

    /// The definition with id `id`.
    pub fn definition(&self, id: DefinitionId) -> &Definition {
        &self.definitions[id.index()]
    }

    /// The definition named `name`.
    pub fn definition_by_name(&self, name: &str) -> Option<&Definition> {
        self.definition_id(name).map(|id| self.definition(id))
    }

    /// The id of the caveat named `name`.
    pub fn caveat_id(&self, name: &str) -> Option<CaveatId> {
        self.caveat_ids.get(name).copied()
    }

    /// The caveat with id `id`.
    pub fn caveat(&self, id: CaveatId) -> &Caveat {
        &self.caveats[id.index()]
    }

    /// The caveat named `name`.
    pub fn caveat_by_name(&self, name: &str) -> Option<&Caveat> {
        self.caveat_id(name).map(|id| self.caveat(id))
    }

    /// The relation or permission `definition#relation`.
    pub fn relation(&self, definition: DefinitionId, relation: RelationId) -> &Relation {
        &self.definition(definition).relations[relation.index()]
    }

    /// Resolves `definition#relation` by name.
    pub fn resolve(&self, definition: &str, relation: &str) -> Option<(DefinitionId, RelationId)> {
        let def_id = self.definition_id(definition)?;
        let rel_id = self.definition(def_id).relation_id(relation)?;
        Some((def_id, rel_id))
    }
}

/// Which `use` flags were declared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// `use expiration`.
    pub expiration: bool,
    /// `use self`.
    pub self_keyword: bool,
    /// `use partial`.
    pub partial: bool,
    /// `use import`.
    pub import: bool,
    /// `use typechecking`.
    pub typechecking: bool,
}

/// An object type: `definition name { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    /// The full name, prefix included.
    pub name: String,
    /// The `/** ... */` (and `//`) comments written before it, verbatim, for ReflectSchema.
    pub comments: Vec<String>,
    /// Relations and permissions in source order; a [`RelationId`] indexes this.
    pub relations: Vec<Relation>,
    pub(crate) relation_ids: HashMap<String, RelationId>,
}

impl Definition {
    /// The id of the relation or permission named `name`.
    pub fn relation_id(&self, name: &str) -> Option<RelationId> {
        self.relation_ids.get(name).copied()
    }

    /// The relation or permission named `name`.
    pub fn relation_by_name(&self, name: &str) -> Option<&Relation> {
        self.relation_id(name).map(|id| &self.relations[id.index()])
    }
}

/// A relation or a permission of a definition.
#[derive(Clone, Debug, PartialEq)]
pub struct Relation {
    /// Its name.
    pub name: String,
    /// The comments written before it, verbatim.
    pub comments: Vec<String>,
    /// What it is.
    pub kind: RelationKind,
}

impl Relation {
    /// Whether this is a permission (computed) rather than a stored relation.
    pub fn is_permission(&self) -> bool {
        matches!(self.kind, RelationKind::Permission { .. })
    }

    /// The allowed subject types of a relation (empty for a permission).
    pub fn allowed_types(&self) -> &[AllowedSubjectType] {
        match &self.kind {
            RelationKind::Relation { allowed_types } => allowed_types,
            RelationKind::Permission { .. } => &[],
        }
    }

    /// The rewrite of a permission (`None` for a relation).
    pub fn rewrite(&self) -> Option<&Rewrite> {
        match &self.kind {
            RelationKind::Relation { .. } => None,
            RelationKind::Permission { rewrite, .. } => Some(rewrite),
        }
    }
}

/// A stored relation or a computed permission.
#[derive(Clone, Debug, PartialEq)]
pub enum RelationKind {
    /// `relation name: types`: relationships are stored for it.
    Relation {
        /// The subject types a relationship may name, in source order.
        allowed_types: Vec<AllowedSubjectType>,
    },
    /// `permission name = expression`: computed from other relations.
    Permission {
        /// The userset rewrite.
        rewrite: Rewrite,
        /// The type annotation (`use typechecking`), as full definition names.
        type_annotation: Vec<String>,
    },
}

/// One allowed subject type of a relation, e.g. `group#member with caveat and expiration`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedSubjectType {
    /// The subject's definition.
    pub definition: DefinitionId,
    /// Its full name (kept for messages and printing).
    pub definition_name: String,
    /// Plain object, wildcard or subject relation.
    pub subject: AllowedSubject,
    /// `with caveat`: relationships of this type must (when `optional` caveats are written
    /// separately, may) carry this caveat.
    pub caveat: Option<CaveatId>,
    /// `with expiration`: relationships of this type may expire.
    pub expiration: bool,
}

/// What kind of subject an allowed type admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllowedSubject {
    /// `user` or `user#...`: the object itself.
    Ellipsis,
    /// `user:*`: every object of the type.
    Wildcard,
    /// `group#member`: the subjects of this relation or permission of the subject type.
    Relation(RelationId),
}

/// Which function an arrow applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArrowFunction {
    /// `->` or `.any()`: a subject needs the target on at least one object reached.
    Any,
    /// `.all()`: a subject needs the target on every object reached.
    All,
}

/// A permission's userset rewrite.
///
/// Nested unions and intersections are flattened (`a + b + c` is one `Union` of three), as
/// SpiceDB does; parentheses leave no trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rewrite {
    /// Members of any child.
    Union(Vec<Rewrite>),
    /// Members of every child.
    Intersection(Vec<Rewrite>),
    /// Members of the first minus members of the second.
    Exclusion(Box<Rewrite>, Box<Rewrite>),
    /// The subjects of another relation or permission of the same definition.
    ComputedUserset(RelationId),
    /// `tupleset->computed`: follow the relationships of `tupleset` to their subject objects
    /// and take `computed` there.
    TupleToUserset(TupleToUserset),
    /// `nil`: nobody.
    Nil,
    /// `self` (`use self`): the resource itself, as a subject.
    This,
}

/// An arrow `tupleset->computed` (or `.any`/`.all`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TupleToUserset {
    /// The relation (never a permission) whose subjects are walked.
    pub tupleset: RelationId,
    /// The name of the relation or permission taken on the subjects reached.
    pub computed: String,
    /// For each subject definition of `tupleset` that has `computed`, its id there, sorted by
    /// definition. Subject types without it contribute nothing (SpiceDB only warns).
    pub targets: Vec<(DefinitionId, RelationId)>,
    /// `any` or `all`.
    pub function: ArrowFunction,
}

impl TupleToUserset {
    /// The id of `computed` on the subject definition `definition`, if it has it.
    pub fn target_on(&self, definition: DefinitionId) -> Option<RelationId> {
        self.targets
            .binary_search_by_key(&definition, |(def, _)| *def)
            .ok()
            .map(|idx| self.targets[idx].1)
    }
}

/// A caveat: a named CEL expression over typed parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Caveat {
    /// The full name, prefix included.
    pub name: String,
    /// The comments written before it, verbatim.
    pub comments: Vec<String>,
    /// Parameters in declaration order.
    pub params: Vec<CaveatParam>,
    /// The parsed expression, with its source text.
    pub expression: CelExpression,
}

impl Caveat {
    /// The declared type of parameter `name`.
    pub fn param_type(&self, name: &str) -> Option<&CaveatType> {
        self.params
            .iter()
            .find(|param| param.name == name)
            .map(|param| &param.param_type)
    }
}

/// A typed caveat parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaveatParam {
    /// Its name.
    pub name: String,
    /// Its type.
    pub param_type: CaveatType,
}

/// A caveat parameter type, as SpiceDB registers them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CaveatType {
    /// `any`: any value.
    Any,
    /// `bool`.
    Bool,
    /// `string`.
    String,
    /// `int` (64-bit signed).
    Int,
    /// `uint` (64-bit unsigned).
    Uint,
    /// `double`.
    Double,
    /// `bytes`.
    Bytes,
    /// `duration`.
    Duration,
    /// `timestamp`.
    Timestamp,
    /// `ipaddress` (with `in_cidr`).
    IpAddress,
    /// `list<T>`.
    List(Box<CaveatType>),
    /// `map<T>` (string keys).
    Map(Box<CaveatType>),
}

impl fmt::Display for CaveatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaveatType::Any => f.write_str("any"),
            CaveatType::Bool => f.write_str("bool"),
            CaveatType::String => f.write_str("string"),
            CaveatType::Int => f.write_str("int"),
            CaveatType::Uint => f.write_str("uint"),
            CaveatType::Double => f.write_str("double"),
            CaveatType::Bytes => f.write_str("bytes"),
            CaveatType::Duration => f.write_str("duration"),
            CaveatType::Timestamp => f.write_str("timestamp"),
            CaveatType::IpAddress => f.write_str("ipaddress"),
            CaveatType::List(inner) => write!(f, "list<{inner}>"),
            CaveatType::Map(inner) => write!(f, "map<{inner}>"),
        }
    }
}

/// A parsed CEL expression and the text it was parsed from. Two expressions are equal when
/// their texts are (the parsed program has no equality of its own).
#[derive(Clone)]
pub struct CelExpression {
    /// The expression text, verbatim from the schema.
    pub source: String,
    /// The parsed program, ready to execute.
    pub program: Arc<cel::Program>,
}

impl CelExpression {
    /// The expression's lines without their indentation, and without blank lines: two
    /// expressions that differ only there are the same expression.
    fn normalized_lines(&self) -> impl Iterator<Item = &str> {
        self.source
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
    }
}

/// Equal when the sources are equal up to indentation (the printer re-indents caveat bodies).
impl PartialEq for CelExpression {
    fn eq(&self, other: &Self) -> bool {
        self.normalized_lines().eq(other.normalized_lines())
    }
}

impl fmt::Debug for CelExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CelExpression").field(&self.source).finish()
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use crate::compile_str;

    #[test]
    fn ir_shape_of_a_small_schema() {
        let compiled = compile_str(
            "t.zed",
            r#"use expiration

caveat ip_allowed(ip ipaddress) {
    ip.in_cidr('10.0.0.0/8')
}

definition user {}

/** a document */
definition document {
    relation parent: document
    relation viewer: user with ip_allowed | user:* with expiration
    permission view = viewer + (viewer & parent) + parent->view - nil
    permission any_view = parent.all(view)
}
"#,
        )
        .unwrap();
        let schema = &compiled.schema;
        let document = schema.definition_by_name("document").unwrap();
        assert_eq!(document.comments, ["/** a document */"]);
        expect![[r#"
            [
                Relation {
                    name: "parent",
                    comments: [],
                    kind: Relation {
                        allowed_types: [
                            AllowedSubjectType {
                                definition: DefinitionId(
                                    1,
                                ),
                                definition_name: "document",
                                subject: Ellipsis,
                                caveat: None,
                                expiration: false,
                            },
                        ],
                    },
                },
                Relation {
                    name: "viewer",
                    comments: [],
                    kind: Relation {
                        allowed_types: [
                            AllowedSubjectType {
                                definition: DefinitionId(
                                    0,
                                ),
                                definition_name: "user",
                                subject: Ellipsis,
                                caveat: Some(
                                    CaveatId(
                                        0,
                                    ),
                                ),
                                expiration: false,
                            },
                            AllowedSubjectType {
                                definition: DefinitionId(
                                    0,
                                ),
                                definition_name: "user",
                                subject: Wildcard,
                                caveat: None,
                                expiration: true,
                            },
                        ],
                    },
                },
                Relation {
                    name: "view",
                    comments: [],
                    kind: Permission {
                        rewrite: Exclusion(
                            Union(
                                [
                                    ComputedUserset(
                                        RelationId(
                                            1,
                                        ),
                                    ),
                                    Intersection(
                                        [
                                            ComputedUserset(
                                                RelationId(
                                                    1,
                                                ),
                                            ),
                                            ComputedUserset(
                                                RelationId(
                                                    0,
                                                ),
                                            ),
                                        ],
                                    ),
                                    TupleToUserset(
                                        TupleToUserset {
                                            tupleset: RelationId(
                                                0,
                                            ),
                                            computed: "view",
                                            targets: [
                                                (
                                                    DefinitionId(
                                                        1,
                                                    ),
                                                    RelationId(
                                                        2,
                                                    ),
                                                ),
                                            ],
                                            function: Any,
                                        },
                                    ),
                                ],
                            ),
                            Nil,
                        ),
                        type_annotation: [],
                    },
                },
                Relation {
                    name: "any_view",
                    comments: [],
                    kind: Permission {
                        rewrite: TupleToUserset(
                            TupleToUserset {
                                tupleset: RelationId(
                                    0,
                                ),
                                computed: "view",
                                targets: [
                                    (
                                        DefinitionId(
                                            1,
                                        ),
                                        RelationId(
                                            2,
                                        ),
                                    ),
                                ],
                                function: All,
                            },
                        ),
                        type_annotation: [],
                    },
                },
            ]
        "#]]
        .assert_debug_eq(&document.relations);
        let caveat = schema.caveat_by_name("ip_allowed").unwrap();
        assert_eq!(caveat.params[0].param_type.to_string(), "ipaddress");
        assert!(schema.features.expiration);
        // Equal texts give equal IRs, and the comparison sees differences (what a printer
        // round-trip test relies on).
        let text = "definition user {}\n\ndefinition doc {\n    relation viewer: user\n}\n";
        let first = compile_str("a.zed", text).unwrap().schema;
        assert_eq!(first, compile_str("b.zed", text).unwrap().schema);
        let other = compile_str("c.zed", &text.replace("viewer", "reader"))
            .unwrap()
            .schema;
        assert_ne!(first, other);
    }
}
