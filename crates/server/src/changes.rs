//! What a write records besides its own change, in the same transaction: the tenant's audit
//! entry, and, for a tenant with a relationship quota, its relationship count.
//!
//! Counting costs a read per update (whether a TOUCH creates or replaces, whether a DELETE
//! finds anything), so it is only done for tenants with a `max_relationships` quota. Their
//! count lives in a record; a write of a tenant without a quota removes that record, so a
//! quota set later starts from a fresh count (one scan of the tenant) rather than a stale
//! one.

use ostiary_store::{Page, RecordNamespace, RelationshipUpdate, WriteTxn};
use ostiary_tenancy::{NewAuditEntry, audit};
use ostiary_types::{Relationship, RelationshipFilter, RelationshipKey, SubjectFilter};

use crate::ServerState;
use crate::auth::Caller;
use crate::status::ApiError;

/// Updates listed in an audit entry; above this, their count and digest.
const MAX_INLINE_AUDIT_UPDATES: usize = 100;
/// The record namespace and key of a tenant's relationship count.
const COUNT_NAMESPACE: &str = "counts";
const COUNT_KEY: &[u8] = b"relationships";

/// Appends the caller's audit entry for `action` to the transaction's tenant's log (when
/// the server has tenancy).
pub(crate) fn audit(
    state: &ServerState,
    txn: &mut dyn WriteTxn,
    caller: &Caller,
    action: &str,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    let Some(tenancy) = &state.tenancy else {
        return Ok(());
    };
    audit::append(
        txn,
        &NewAuditEntry {
            action: action.to_owned(),
            actor: caller.actor(),
            request_id: caller.context.request_id.clone(),
            client_address: caller.context.client_address.clone(),
            on_behalf_of: caller.context.on_behalf_of.clone(),
            details,
        },
        tenancy.revision_seal(),
    )?;
    Ok(())
}

/// The audit details of relationship updates.
pub(crate) fn update_details(updates: &[RelationshipUpdate]) -> serde_json::Value {
    audit::relationship_details(updates, MAX_INLINE_AUDIT_UPDATES)
}

/// The tenant's `max_relationships` quota, if it has one.
pub(crate) fn relationship_quota(
    state: &ServerState,
    caller: &Caller,
) -> Result<Option<u64>, ApiError> {
    let Some(tenancy) = &state.tenancy else {
        return Ok(None);
    };
    Ok(tenancy
        .tenant(&caller.tenant)?
        .and_then(|info| info.quotas.max_relationships))
}

fn count_namespace() -> Result<RecordNamespace, ApiError> {
    Ok(RecordNamespace::new(COUNT_NAMESPACE)?)
}

/// The tenant's relationship count as its record holds it, if it has one.
fn stored_count(txn: &mut dyn WriteTxn) -> Result<Option<u64>, ApiError> {
    Ok(txn
        .read_record(&count_namespace()?, COUNT_KEY)?
        .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
        .map(u64::from_be_bytes))
}

/// The tenant's relationship count in the transaction's view, from its record or, without
/// one, by counting.
fn current_count(txn: &mut dyn WriteTxn) -> Result<u64, ApiError> {
    if let Some(count) = stored_count(txn)? {
        return Ok(count);
    }
    let mut count = 0_u64;
    let mut page = Vec::new();
    let mut after: Option<RelationshipKey> = None;
    loop {
        page.clear();
        let request = match &after {
            Some(key) => Page::after(key, Some(COUNT_PAGE)),
            None => Page::first(COUNT_PAGE),
        };
        txn.read_filtered(&RelationshipFilter::default(), request, &mut page)?;
        count += u64::try_from(page.len()).unwrap_or(u64::MAX);
        match page.last() {
            Some(last) if page.len() == COUNT_PAGE => after = Some(last.key().clone()),
            _ => return Ok(count),
        }
    }
}

/// Relationships read per page when counting a tenant.
const COUNT_PAGE: usize = 10_000;

/// Whether the relationship `key` exists in the transaction's view.
fn exists(txn: &mut dyn WriteTxn, key: &RelationshipKey) -> Result<bool, ApiError> {
    let subject = key.subject();
    let filter = RelationshipFilter {
        resource_type: Some(key.resource().object_type().clone()),
        optional_resource_id: Some(key.resource().object_id().clone()),
        optional_resource_id_prefix: None,
        optional_relation: Some(key.relation().clone()),
        optional_subject_filter: Some(SubjectFilter {
            subject_type: subject.object().object_type().clone(),
            optional_subject_id: Some(subject.object().object_id().clone()),
            optional_relation: Some(ostiary_types::RelationFilter {
                relation: subject.relation().cloned(),
            }),
        }),
    };
    let mut out: Vec<Relationship> = Vec::with_capacity(1);
    txn.read_filtered(&filter, Page::first(1), &mut out)?;
    Ok(!out.is_empty())
}

/// Applies `updates`, keeping the relationship count of a tenant with a quota (`quota`)
/// and refusing a write that would take it over; without a quota, applies them and drops
/// any count record.
pub(crate) fn apply_counted(
    txn: &mut dyn WriteTxn,
    quota: Option<u64>,
    updates: &[RelationshipUpdate],
) -> Result<(), ApiError> {
    let Some(max) = quota else {
        txn.apply(updates)?;
        txn.delete_record(&count_namespace()?, COUNT_KEY)?;
        return Ok(());
    };
    let before = current_count(txn)?;
    let (mut added, mut removed) = (0_u64, 0_u64);
    for update in updates {
        match update {
            // A CREATE of an existing relationship fails in `apply`.
            RelationshipUpdate::Create(_) => added += 1,
            RelationshipUpdate::Touch(rel) => {
                if !exists(txn, rel.key())? {
                    added += 1;
                }
            }
            RelationshipUpdate::Delete(key) => {
                if exists(txn, key)? {
                    removed += 1;
                }
            }
        }
    }
    let after = (before + added).saturating_sub(removed);
    if after > max && added > removed {
        return Err(ApiError::QuotaExceeded(format!(
            "the write would store {after} relationships, over the tenant's quota of {max}"
        )));
    }
    txn.apply(updates)?;
    txn.put_record(&count_namespace()?, COUNT_KEY, &after.to_be_bytes())?;
    Ok(())
}

/// Records that `n_deleted` relationships were deleted by a filter.
pub(crate) fn count_deleted(
    txn: &mut dyn WriteTxn,
    quota: Option<u64>,
    n_deleted: usize,
) -> Result<(), ApiError> {
    if quota.is_none() {
        txn.delete_record(&count_namespace()?, COUNT_KEY)?;
        return Ok(());
    }
    // The deletion already happened in this transaction: subtract from the record, or
    // count what is left if there is no record yet.
    let after = match stored_count(txn)? {
        Some(before) => before.saturating_sub(u64::try_from(n_deleted).unwrap_or(u64::MAX)),
        None => current_count(txn)?,
    };
    txn.put_record(&count_namespace()?, COUNT_KEY, &after.to_be_bytes())?;
    Ok(())
}
