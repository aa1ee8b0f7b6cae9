//! The schema language: lexer → parser (spanned AST) → compiler (resolve, type-check) →
//! `CompiledSchema` IR, plus a canonical printer and diagnostics.
