//! `EngineError`: what can go wrong while answering a question.

use ostiary_store::StoreError;

/// Errors the engine returns; callers branch on the variant, never on the text.
///
/// The server maps them as SpiceDB does: unknown names → `FailedPrecondition`, bad requests
/// and caveat context errors → `InvalidArgument`, max depth → `ResourceExhausted`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The request names a definition the schema does not have.
    #[error("object definition `{0}` not found")]
    UnknownDefinition(String),
    /// The request names a relation or permission the definition does not have.
    #[error("relation/permission `{relation}` not found under definition `{definition}`")]
    UnknownRelation {
        /// The definition.
        definition: String,
        /// The missing relation or permission.
        relation: String,
    },
    /// A wildcard (`type:*`) was given where a concrete object is required.
    #[error("wildcard `{0}` is not allowed here")]
    WildcardNotAllowed(String),
    /// Evaluation went deeper than the configured maximum (usually a very deep or cyclic
    /// graph).
    #[error(
        "max depth exceeded: the relationships form a cycle or nest deeper than {max_depth} dispatches"
    )]
    MaxDepthExceeded {
        /// The configured limit.
        max_depth: u32,
    },
    /// A caveat parameter in the context has a value of the wrong type.
    #[error("could not convert context parameter `{param}` of caveat `{caveat}`: {reason}")]
    CaveatContext {
        /// The caveat.
        caveat: String,
        /// The parameter.
        param: String,
        /// Why the value does not fit.
        reason: String,
    },
    /// A caveat expression failed at run time.
    #[error("evaluation error for caveat `{caveat}`: {reason}")]
    CaveatEvaluation {
        /// The caveat.
        caveat: String,
        /// What failed.
        reason: String,
    },
    /// A relationship names a caveat the schema does not define.
    #[error("caveat `{0}` not found")]
    UnknownCaveat(String),
    /// A LookupResources or LookupSubjects cursor could not be decoded.
    #[error("invalid cursor `{0}`")]
    InvalidCursor(String),
    /// The datastore failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An internal invariant was violated (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}
