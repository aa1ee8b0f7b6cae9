//! Picks the revision a read runs at from the request's `Consistency`, as SpiceDB does.

use ostiary_proto::authzed::api::v1::{Consistency, consistency::Requirement};
use ostiary_store::Datastore;
use ostiary_types::{Revision, TenantId};

use crate::status::ApiError;
use crate::token::TokenCodec;

/// The revision to read at:
///
/// * absent or `minimize_latency`: the datastore's optimized (quantized) revision;
/// * `at_least_as_fresh`: the newer of the token and the optimized revision;
/// * `at_exact_snapshot`: the token's revision, if still readable (`OutOfRange` otherwise);
/// * `fully_consistent`: head.
///
/// Tokens must be `tenant`'s.
pub(crate) fn pick_revision(
    store: &dyn Datastore,
    tokens: &TokenCodec,
    tenant: &TenantId,
    consistency: Option<&Consistency>,
) -> Result<Revision, ApiError> {
    match consistency.and_then(|consistency| consistency.requirement.as_ref()) {
        None | Some(Requirement::MinimizeLatency(_)) => Ok(store.optimized_revision()?),
        Some(Requirement::FullyConsistent(_)) => Ok(store.head_revision()?),
        Some(Requirement::AtLeastAsFresh(token)) => {
            let requested =
                tokens.decode_token(tenant, "consistency.at_least_as_fresh", &token.token)?;
            store.check_revision(requested).or_else(|err| match err {
                // An old token is fine: a newer revision is at least as fresh.
                ostiary_store::StoreError::RevisionExpired(_) => Ok(()),
                other => Err(other),
            })?;
            Ok(requested.max(store.optimized_revision()?))
        }
        Some(Requirement::AtExactSnapshot(token)) => {
            let requested =
                tokens.decode_token(tenant, "consistency.at_exact_snapshot", &token.token)?;
            store.check_revision(requested)?;
            Ok(requested)
        }
    }
}
