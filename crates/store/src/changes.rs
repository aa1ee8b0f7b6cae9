//! The change feed: what each committed revision changed, for Watch.

use std::sync::Arc;

use ostiary_types::{Relationship, Revision, Timestamp};

/// Everything one committed transaction changed in one tenant.
///
/// Returned by [`Datastore::changes_since`](crate::Datastore::changes_since), one value per
/// revision, in increasing revision order. Revisions are global to the datastore, so a
/// tenant's feed skips the revisions other tenants wrote (and revisions that changed
/// nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionChanges {
    /// The revision of the transaction.
    pub revision: Revision,
    /// When it committed, by the datastore's clock.
    pub committed_at: Timestamp,
    /// Its net changes; never empty. A schema change comes first, then one change per
    /// relationship key in [`ReadOrder::Resource`](crate::ReadOrder::Resource) order.
    pub changes: Vec<Change>,
}

/// One net change within a revision.
///
/// The feed reports the net effect of a transaction per relationship key, comparing the
/// state before and after it (expired relationships count as absent):
///
/// * a key written by CREATE or TOUCH that is live after the transaction gives
///   [`Change::Touch`] with its final value, even if the value did not change (as SpiceDB
///   reports every TOUCH);
/// * a key that was live before and is absent after gives [`Change::Delete`] with the value
///   it had;
/// * anything else (deleting an absent key, creating then deleting in one transaction)
///   gives nothing.
///
/// Expiration and garbage collection never produce changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The relationship was created or touched and now has this value.
    Touch(Relationship),
    /// The relationship was deleted; this is the value it had.
    Delete(Relationship),
    /// The tenant's schema was written; this is the new text.
    Schema(Arc<str>),
}
