//! The schema language: lexer → parser (spanned AST) → compiler (resolve, type-check) →
//! `CompiledSchema` IR, plus a canonical printer and diagnostics.
//!
//! The language is SpiceDB's: `definition`s with `relation`s and `permission`s (`+ & -`,
//! arrows, `nil`), wildcards, subject relations, `caveat`s in CEL and relationship expiration.

pub mod ast;
pub mod compile;
pub mod diagnostic;
pub mod ir;
mod lexer;
mod parser;
pub mod printer;
pub mod source;

pub use compile::{
    CompileOptions, Compiled, ObjectTypePrefix, check_translation, compile, compile_parsed,
    compile_str,
};
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use ir::CompiledSchema;
pub use parser::{Parsed, parse};
pub use printer::print;
pub use source::{LineCol, SourceFile, Span};
