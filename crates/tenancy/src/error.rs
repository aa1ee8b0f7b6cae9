//! `TenancyError`, the error of every tenancy operation, and `AuthError`, the outcome of a
//! failed authentication.

use ostiary_store::StoreError;

/// Errors of tenant, token and audit operations; callers branch on the variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TenancyError {
    /// The caller's token may not do this (missing scope, another tenant, or a request
    /// for more than the token itself has). The server maps it to `PermissionDenied`.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The request is malformed or breaks a policy (an expiry in the past, too long a
    /// lifetime, an unknown scope). The server maps it to `InvalidArgument`.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No tenant has this id.
    #[error("tenant `{0}` not found")]
    TenantNotFound(String),
    /// A tenant with this id exists already.
    #[error("tenant `{0}` already exists")]
    TenantExists(String),
    /// The tenant is suspended or being deleted, so this operation is refused.
    #[error("tenant `{tenant}` is {state}")]
    TenantNotActive {
        /// The tenant.
        tenant: String,
        /// Its state, as text.
        state: String,
    },
    /// No token of the tenant has this id (or it was revoked).
    #[error("token `{0}` not found")]
    TokenNotFound(String),
    /// The datastore failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing an export failed.
    #[error("cannot write the export")]
    Io(#[from] std::io::Error),
    /// Stored tenancy data is corrupt, or an internal step failed (the random number
    /// generator).
    #[error("internal tenancy error: {0}")]
    Internal(String),
}

/// Why an authentication failed. The server answers all of them with `Unauthenticated`
/// except [`AuthError::Unavailable`].
///
/// [`AuthError::Invalid`] covers a malformed text, an unknown id, a wrong secret, a revoked
/// token and a rotated-out secret alike, so a failure tells nothing about whether a token
/// id exists. The other reasons are only given to a caller who presented the right
/// secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token is not valid.
    #[error("invalid token")]
    Invalid,
    /// The token is valid but expired.
    #[error("token expired")]
    Expired,
    /// The token is valid but its tenant is suspended, being deleted or gone.
    #[error("tenant is not active")]
    TenantNotActive,
    /// The datastore failed; retrying may succeed.
    #[error("authentication unavailable")]
    Unavailable(#[source] TenancyError),
}
