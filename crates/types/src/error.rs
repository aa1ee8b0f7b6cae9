//! The single error type of this crate: what is wrong with a name, reference or relationship.

/// Errors from validating names, parsing text forms and checking filters.
///
/// Every variant is about bad input: the caller fixes the input, there is nothing to retry.
/// Messages name the offending input in backticks so that they can be shown to users as-is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypesError {
    /// An object type (definition name) does not follow the naming rule.
    #[error(
        "invalid object type `{0}`: must match `^([a-z][a-z0-9_]{{1,61}}[a-z0-9]/)*[a-z][a-z0-9_]{{1,62}}[a-z0-9]$` and be at most 128 bytes"
    )]
    InvalidObjectType(String),

    /// A relation or permission name does not follow the naming rule.
    #[error("invalid relation name `{0}`: must match `^[a-z][a-z0-9_]{{1,62}}[a-z0-9]$`")]
    InvalidRelationName(String),

    /// A caveat name does not follow the naming rule.
    #[error(
        "invalid caveat name `{0}`: must match `^([a-z][a-z0-9_]{{1,61}}[a-z0-9]/)*[a-z][a-z0-9_]{{1,62}}[a-z0-9]$` and be at most 128 bytes"
    )]
    InvalidCaveatName(String),

    /// An object id is empty, too long or uses a character outside the allowed set.
    #[error(
        "invalid object id `{0}`: must match `^[a-zA-Z0-9/_|\\-=+]{{1,1024}}$` (or be `*` for a subject)"
    )]
    InvalidObjectId(String),

    /// The wildcard `*` was used where only a concrete object is allowed (a resource).
    #[error("invalid resource `{0}`: the wildcard `*` is only allowed in subjects")]
    WildcardResource(String),

    /// A tenant id does not follow the naming rule.
    #[error("invalid tenant id `{0}`: must match `^[a-z0-9][a-z0-9_-]{{0,62}}$`")]
    InvalidTenantId(String),

    /// A timestamp is not RFC 3339 or is out of the supported range.
    #[error("invalid timestamp `{input}`: {reason}")]
    InvalidTimestamp {
        /// The text or value that was rejected.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A revision is not a decimal unsigned 64-bit number.
    #[error("invalid revision `{0}`: must be a decimal number")]
    InvalidRevision(String),

    /// Caveat context text is not a JSON object.
    #[error("invalid caveat context `{input}`: {reason}")]
    InvalidCaveatContext {
        /// The context text that was rejected.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An object reference is not of the form `type:id`.
    #[error("invalid object reference `{input}`: {reason}")]
    InvalidObjectRef {
        /// The text that was rejected.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A subject reference is not of the form `type:id`, `type:id#relation` or `type:*`.
    #[error("invalid subject reference `{input}`: {reason}")]
    InvalidSubjectRef {
        /// The text that was rejected.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A relationship is not in the text form `type:id#relation@type:id[caveat][expiration:…]`.
    #[error("invalid relationship `{input}`: {reason}")]
    InvalidRelationship {
        /// The text that was rejected.
        input: String,
        /// What is wrong with it (may quote a nested error).
        reason: String,
    },

    /// A relationship filter sets both the resource id and the resource id prefix.
    #[error(
        "invalid relationship filter: cannot specify both a resource id (`{id}`) and a resource id prefix (`{prefix}`)"
    )]
    FilterIdAndPrefix {
        /// The resource id of the filter.
        id: String,
        /// The resource id prefix of the filter.
        prefix: String,
    },

    /// A relationship filter sets no field at all and would match every relationship.
    #[error("invalid relationship filter: at least one filter field must be set")]
    EmptyFilter,

    /// A relationship filter's resource id prefix uses characters no object id can contain.
    #[error(
        "invalid relationship filter: resource id prefix `{0}` must match `^[a-zA-Z0-9/_|\\-=+]{{1,1024}}$`"
    )]
    InvalidResourceIdPrefix(String),
}
