//! Garbage collection: removes relationship versions, change records, schema versions and
//! commit times that no readable revision can see, in small batches.
//!
//! It runs without the writer mutex. That is safe because it only touches versions at or
//! before head (writers only add versions after it), and what it removes is invisible at
//! every revision from its horizon on: versions superseded at or before the horizon, and
//! relationships that expired before `now - gc_window` (invisible to every new snapshot).
//! The horizon it uses is also capped by the oldest live snapshot's revision.

use ostiary_store::{GcStats, StoreError};
use ostiary_types::{Revision, Timestamp};
use rocksdb::WriteBatch;

use crate::codec::{self, Reader};
use crate::error::storage;
use crate::{Cf, Shared};

/// Operations per write batch: small enough not to stall writers.
const BATCH_OPS: usize = 1024;

/// Accumulates deletions and rewrites, writing them every [`BATCH_OPS`] operations.
struct Batcher<'a> {
    shared: &'a Shared,
    batch: WriteBatch,
}

impl Batcher<'_> {
    fn maybe_flush(&mut self) -> Result<(), StoreError> {
        if self.batch.len() >= BATCH_OPS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            // Not synced: a lost collection is redone by the next pass.
            self.shared.db.write(batch).map_err(storage)?;
        }
        Ok(())
    }
}

/// One stored version of a key during collection.
struct Version {
    key: Vec<u8>,
    revision: Revision,
    tombstone: bool,
    expiration: Option<Timestamp>,
}

/// Runs one pass.
pub(crate) fn collect(shared: &Shared) -> Result<GcStats, StoreError> {
    let horizon = shared.horizon();
    let effective = shared
        .oldest_pinned()
        .map_or(horizon, |pinned| pinned.min(horizon));
    let expired_before = ostiary_store::sub_duration(shared.now(), shared.options.gc_window);
    let mut stats = GcStats {
        horizon,
        ..GcStats::default()
    };
    let mut batcher = Batcher {
        shared,
        batch: WriteBatch::default(),
    };
    collect_versions(shared, &mut batcher, effective, expired_before, &mut stats)?;
    collect_changes(shared, &mut batcher, effective, &mut stats)?;
    collect_schemas(shared, &mut batcher, effective, &mut stats)?;
    // Commit times before the horizon are no longer needed to find it.
    let meta = shared.cf(Cf::Meta)?;
    batcher
        .batch
        .put_cf(meta, codec::META_HORIZON, codec::revision_bytes(horizon));
    batcher.batch.delete_range_cf(
        meta,
        codec::commit_key(Revision::ZERO),
        codec::commit_key(effective),
    );
    batcher.flush()?;
    shared
        .commits
        .write()
        .retain(|(revision, _)| *revision >= effective);
    Ok(stats)
}

/// Walks the forward index key by key and decides each key's versions.
fn collect_versions(
    shared: &Shared,
    batcher: &mut Batcher<'_>,
    horizon: Revision,
    expired_before: Timestamp,
    stats: &mut GcStats,
) -> Result<(), StoreError> {
    let forward = shared.cf(Cf::Forward)?;
    let mut iter = shared.db.raw_iterator_cf(forward);
    iter.seek_to_first();
    let mut current: Vec<u8> = Vec::new();
    let mut versions: Vec<Version> = Vec::new();
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        let (rel_key, revision) = codec::split_versioned(key)?;
        if rel_key != current.as_slice() {
            decide(
                shared,
                batcher,
                &current,
                &mut versions,
                horizon,
                expired_before,
                stats,
            )?;
            current.clear();
            current.extend_from_slice(rel_key);
        }
        let expiration = codec::peek_expiration(value)?;
        versions.push(Version {
            key: key.to_vec(),
            revision,
            tombstone: expiration.is_none(),
            expiration: expiration.flatten(),
        });
        iter.next();
    }
    iter.status().map_err(storage)?;
    decide(
        shared,
        batcher,
        &current,
        &mut versions,
        horizon,
        expired_before,
        stats,
    )
}

/// Decides the versions (newest first) of one key and queues the removals in both
/// indexes.
fn decide(
    shared: &Shared,
    batcher: &mut Batcher<'_>,
    forward_key: &[u8],
    versions: &mut Vec<Version>,
    horizon: Revision,
    expired_before: Timestamp,
    stats: &mut GcStats,
) -> Result<(), StoreError> {
    if versions.is_empty() {
        return Ok(());
    }
    let forward = shared.cf(Cf::Forward)?;
    let reverse = shared.cf(Cf::Reverse)?;
    let reverse_key = reverse_from_forward(forward_key)?;
    let remove = |batcher: &mut Batcher<'_>, version: &Version| {
        batcher.batch.delete_cf(forward, &version.key);
        batcher
            .batch
            .delete_cf(reverse, codec::versioned(&reverse_key, version.revision));
    };
    // Versions older than the one visible at the horizon are invisible from it on.
    let n_keep = versions
        .iter()
        .position(|version| version.revision <= horizon)
        .map_or(versions.len(), |visible_idx| visible_idx + 1);
    // Only live versions count as relationship versions; tombstones are bookkeeping.
    for version in versions.drain(n_keep..) {
        remove(batcher, &version);
        if !version.tombstone {
            stats.n_relationship_versions += 1;
        }
    }
    // An expired version is as good as a tombstone.
    let mut converted = vec![false; versions.len()];
    for (version, converted) in versions.iter_mut().zip(converted.iter_mut()) {
        if !version.tombstone && version.expiration.is_some_and(|at| at <= expired_before) {
            version.tombstone = true;
            *converted = true;
        }
    }
    // The oldest versions, while they are tombstones, hide nothing: remove them.
    while versions.last().is_some_and(|version| version.tombstone) {
        if let Some(version) = versions.pop() {
            remove(batcher, &version);
            if converted.pop() == Some(true) {
                stats.n_relationship_versions += 1;
            }
        }
    }
    // Expired versions that still hide an older one become real tombstones.
    for (version, converted) in versions.iter().zip(&converted) {
        if *converted {
            batcher
                .batch
                .put_cf(forward, &version.key, codec::TOMBSTONE_VALUE);
            batcher.batch.put_cf(
                reverse,
                codec::versioned(&reverse_key, version.revision),
                codec::TOMBSTONE_VALUE,
            );
            stats.n_relationship_versions += 1;
        }
    }
    versions.clear();
    batcher.maybe_flush()
}

/// Rewrites an unversioned forward key into the reverse key of the same relationship.
fn reverse_from_forward(forward_key: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut reader = Reader::new(forward_key);
    let mut components = [""; 7];
    for component in &mut components {
        *component = reader.component()?;
    }
    let [
        tenant,
        resource_type,
        resource_id,
        relation,
        subject_type,
        subject_id,
        subject_relation,
    ] = components;
    let mut key = Vec::with_capacity(forward_key.len());
    for component in [
        tenant,
        subject_type,
        subject_id,
        subject_relation,
        resource_type,
        resource_id,
        relation,
    ] {
        codec::push(&mut key, component);
    }
    Ok(key)
}

/// Returns the tenant prefix (first component and its terminator) of `key`.
fn tenant_of(key: &[u8]) -> Option<&[u8]> {
    key.iter()
        .position(|&byte| byte == 0)
        .map(|end| &key[..=end])
}

/// Removes change records at or before the horizon, tenant by tenant.
fn collect_changes(
    shared: &Shared,
    batcher: &mut Batcher<'_>,
    horizon: Revision,
    stats: &mut GcStats,
) -> Result<(), StoreError> {
    let changes = shared.cf(Cf::Changes)?;
    let mut iter = shared.db.raw_iterator_cf(changes);
    iter.seek_to_first();
    while let Some(key) = iter.key() {
        let Some(tenant) = tenant_of(key).map(<[u8]>::to_vec) else {
            return Err(crate::error::corrupt("change key without tenant"));
        };
        let (revision, chunk) = codec::decode_change_suffix(&key[tenant.len()..])?;
        if revision <= horizon {
            batcher.batch.delete_cf(changes, key);
            // An import's change record is split into chunks; count its revision once.
            if chunk.is_none_or(|chunk| chunk == 0) {
                stats.n_change_revisions += 1;
            }
            batcher.maybe_flush()?;
            iter.next();
        } else {
            // Skip the rest of this tenant.
            match codec::prefix_successor(&tenant) {
                Some(next) => iter.seek(next),
                None => break,
            }
        }
    }
    iter.status().map_err(storage)
}

/// Keeps, per tenant, the schema in force at the horizon and every later one.
fn collect_schemas(
    shared: &Shared,
    batcher: &mut Batcher<'_>,
    horizon: Revision,
    stats: &mut GcStats,
) -> Result<(), StoreError> {
    let schema = shared.cf(Cf::Schema)?;
    let mut iter = shared.db.raw_iterator_cf(schema);
    iter.seek_to_first();
    let mut tenant: Vec<u8> = Vec::new();
    let mut seen_in_force = false;
    while let Some(key) = iter.key() {
        let Some(key_tenant) = tenant_of(key) else {
            return Err(crate::error::corrupt("schema key without tenant"));
        };
        if key_tenant != tenant.as_slice() {
            tenant = key_tenant.to_vec();
            seen_in_force = false;
        }
        let (_, revision) = codec::split_versioned(&key[tenant.len()..])?;
        if revision <= horizon {
            if seen_in_force {
                batcher.batch.delete_cf(schema, key);
                stats.n_schema_versions += 1;
                batcher.maybe_flush()?;
            }
            seen_in_force = true;
        }
        iter.next();
    }
    iter.status().map_err(storage)
}

#[cfg(test)]
mod tests {
    use ostiary_types::{RelationshipKey, TenantId};

    use super::*;

    #[test]
    fn reverse_key_from_forward_key() {
        let tenant = TenantId::default_tenant();
        for text in ["doc:a#viewer@user:b", "doc:a#viewer@group:g#member"] {
            let key: RelationshipKey = text.parse().unwrap();
            assert_eq!(
                reverse_from_forward(&codec::forward_key(&tenant, &key)).unwrap(),
                codec::reverse_key(&tenant, &key)
            );
        }
        assert!(reverse_from_forward(b"t\0doc\0").is_err());
    }
}
