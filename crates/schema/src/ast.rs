//! The spanned syntax tree the parser produces: exactly what the user wrote, comments included,
//! before any name resolution. The compiler turns it into the `CompiledSchema` IR, and the
//! printer turns it back into canonical text.

use crate::source::Span;

/// A name as written, with its span. Type and caveat names may carry a prefix (`tenant/doc`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    /// The text of the name, prefix included.
    pub text: String,
    /// Where it was written.
    pub span: Span,
}

/// A comment written before an item (`//`, `/* */` or `/** */`), kept verbatim so that the
/// printer and ReflectSchema can return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// The comment text including its delimiters (`// ...`, `/** ... */`).
    pub text: String,
    /// Where it was written.
    pub span: Span,
}

impl Comment {
    /// Whether this is a `/** ... */` documentation comment.
    pub fn is_doc(&self) -> bool {
        self.text.starts_with("/**") && self.text != "/**/"
    }
}

/// A whole schema file.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Schema {
    /// Top-level items in source order.
    pub items: Vec<Item>,
    /// Comments after the last item.
    pub trailing_comments: Vec<Comment>,
}

/// A top-level item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// `use expiration` and friends.
    Use(UseDirective),
    /// `import "path.zed"`.
    Import(Import),
    /// `definition name { ... }`.
    Definition(Definition),
    /// `partial name { ... }` (a block of members spliced into definitions with `...name`).
    Partial(Definition),
    /// `caveat name(params) { expression }`.
    Caveat(Caveat),
}

impl Item {
    /// The span of the whole item.
    pub fn span(&self) -> Span {
        match self {
            Item::Use(item) => item.span,
            Item::Import(item) => item.span,
            Item::Definition(item) | Item::Partial(item) => item.span,
            Item::Caveat(item) => item.span,
        }
    }

    /// The comments written before the item.
    pub fn comments(&self) -> &[Comment] {
        match self {
            Item::Use(item) => &item.comments,
            Item::Import(item) => &item.comments,
            Item::Definition(item) | Item::Partial(item) => &item.comments,
            Item::Caveat(item) => &item.comments,
        }
    }
}

/// `use <flag>`: opts into a language feature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UseDirective {
    /// Comments before the directive.
    pub comments: Vec<Comment>,
    /// The feature flag (`expiration`, `self`, `partial`, `import`, `typechecking`).
    pub flag: Ident,
    /// The whole directive.
    pub span: Span,
}

/// `import "path"`: includes another schema file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// Comments before the import.
    pub comments: Vec<Comment>,
    /// The path between the quotes.
    pub path: String,
    /// Where the quoted path was written.
    pub path_span: Span,
    /// The whole statement.
    pub span: Span,
}

/// `definition name { members }`, also used for `partial name { members }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    /// Comments before the definition.
    pub comments: Vec<Comment>,
    /// The (possibly prefixed) name.
    pub name: Ident,
    /// Relations, permissions and partial splats in source order.
    pub members: Vec<Member>,
    /// Comments after the last member, before the closing brace.
    pub trailing_comments: Vec<Comment>,
    /// The whole definition.
    pub span: Span,
}

/// A member of a definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Member {
    /// `relation name: types`.
    Relation(Relation),
    /// `permission name = expression`.
    Permission(Permission),
    /// `...partial_name`: splices a partial's members here.
    Splat(Splat),
}

impl Member {
    /// The span of the whole member.
    pub fn span(&self) -> Span {
        match self {
            Member::Relation(member) => member.span,
            Member::Permission(member) => member.span,
            Member::Splat(member) => member.span,
        }
    }

    /// The member's name (for a splat, the partial's name).
    pub fn name(&self) -> &Ident {
        match self {
            Member::Relation(member) => &member.name,
            Member::Permission(member) => &member.name,
            Member::Splat(member) => &member.partial,
        }
    }

    /// The comments written before the member.
    pub fn comments(&self) -> &[Comment] {
        match self {
            Member::Relation(member) => &member.comments,
            Member::Permission(member) => &member.comments,
            Member::Splat(member) => &member.comments,
        }
    }

    /// The comment written after the member on the same line.
    pub fn trailing_comment(&self) -> Option<&Comment> {
        match self {
            Member::Relation(member) => member.trailing_comment.as_ref(),
            Member::Permission(member) => member.trailing_comment.as_ref(),
            Member::Splat(member) => member.trailing_comment.as_ref(),
        }
    }

    /// Sets the comment written after the member on the same line.
    pub fn set_trailing_comment(&mut self, comment: Option<Comment>) {
        match self {
            Member::Relation(member) => member.trailing_comment = comment,
            Member::Permission(member) => member.trailing_comment = comment,
            Member::Splat(member) => member.trailing_comment = comment,
        }
    }
}

/// `...name` inside a definition or partial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splat {
    /// Comments before the splat.
    pub comments: Vec<Comment>,
    /// The partial being spliced.
    pub partial: Ident,
    /// A `//` comment after the member on the same line.
    pub trailing_comment: Option<Comment>,
    /// The whole splat.
    pub span: Span,
}

/// `relation name: type | type#rel | type:* with caveat and expiration`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    /// Comments before the relation.
    pub comments: Vec<Comment>,
    /// The relation's name.
    pub name: Ident,
    /// The allowed subject types, at least one.
    pub allowed_types: Vec<AllowedType>,
    /// A `//` comment after the member on the same line.
    pub trailing_comment: Option<Comment>,
    /// The whole relation.
    pub span: Span,
}

/// One allowed subject type of a relation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedType {
    /// The subject definition (possibly prefixed).
    pub type_name: Ident,
    /// Plain, wildcard or subject relation.
    pub kind: AllowedKind,
    /// `with caveat_name`.
    pub caveat: Option<Ident>,
    /// `with expiration` (or `and expiration`): the span of the `expiration` word.
    pub expiration: Option<Span>,
    /// The whole allowed type, traits included.
    pub span: Span,
}

/// What kind of subject an allowed type admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedKind {
    /// `user`: the object itself (the `...` ellipsis relation).
    Direct,
    /// `user:*`: every object of the type.
    Wildcard(Span),
    /// `group#member`: the subjects of a relation or permission of the type.
    SubjectRelation(Ident),
    /// `group#...`: written out ellipsis; means the same as `Direct`.
    Ellipsis(Span),
}

/// `permission name = expression` or `permission name: type | type = expression`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    /// Comments before the permission.
    pub comments: Vec<Comment>,
    /// The permission's name.
    pub name: Ident,
    /// Type annotation (`use typechecking`): the subject types the permission may yield.
    pub type_annotation: Vec<Ident>,
    /// The userset rewrite.
    pub expr: Expr,
    /// A `//` comment after the member on the same line.
    pub trailing_comment: Option<Comment>,
    /// The whole permission.
    pub span: Span,
}

/// A permission expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// A relation or permission of the same definition.
    Ref(Ident),
    /// `nil`: the empty set.
    Nil(Span),
    /// `self` (`use self`): the resource itself as a subject.
    SelfRef(Span),
    /// `a + b`.
    Union(Box<Expr>, Box<Expr>, Span),
    /// `a & b`.
    Intersection(Box<Expr>, Box<Expr>, Span),
    /// `a - b`.
    Exclusion(Box<Expr>, Box<Expr>, Span),
    /// `left->name`, `left.any(name)` or `left.all(name)`.
    Arrow(Box<Arrow>),
    /// `( expr )`, kept so that the printer and spans stay faithful.
    Paren(Box<Expr>, Span),
}

impl Expr {
    /// The span of the whole expression.
    pub fn span(&self) -> Span {
        match self {
            Expr::Ref(ident) => ident.span,
            Expr::Nil(span) | Expr::SelfRef(span) => *span,
            Expr::Union(_, _, span)
            | Expr::Intersection(_, _, span)
            | Expr::Exclusion(_, _, span)
            | Expr::Paren(_, span) => *span,
            Expr::Arrow(arrow) => arrow.span,
        }
    }
}

/// Which form of arrow was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArrowKind {
    /// `rel->perm`.
    Arrow,
    /// `rel.any(perm)`, the same as `->`.
    Any,
    /// `rel.all(perm)`: the subject needs `perm` on every object reached.
    All,
}

/// `left->target` and its function forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrow {
    /// The tupleset side: a relation name, or (invalid for now) another arrow.
    pub left: Expr,
    /// Which arrow form.
    pub kind: ArrowKind,
    /// The relation or permission computed on the objects reached.
    pub target: Ident,
    /// The whole arrow.
    pub span: Span,
}

/// `caveat name(params) { expression }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caveat {
    /// Comments before the caveat.
    pub comments: Vec<Comment>,
    /// The (possibly prefixed) name.
    pub name: Ident,
    /// Parameters in order.
    pub params: Vec<CaveatParam>,
    /// The CEL expression between the braces, verbatim.
    pub expression: String,
    /// Where the expression text starts and ends.
    pub expression_span: Span,
    /// The whole caveat.
    pub span: Span,
}

/// `name type` inside a caveat's parameter list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaveatParam {
    /// The parameter's name.
    pub name: Ident,
    /// Its type.
    pub param_type: TypeRef,
    /// The whole parameter.
    pub span: Span,
}

/// A caveat parameter type such as `int` or `map<list<string>>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeRef {
    /// The base type name.
    pub name: Ident,
    /// Generic arguments (`list<T>`, `map<T>`).
    pub args: Vec<TypeRef>,
    /// The whole type.
    pub span: Span,
}
