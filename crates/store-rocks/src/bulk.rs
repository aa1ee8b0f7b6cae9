//! The bulk-load path: importing millions of relationships in large sorted batches.

use ostiary_store::{Change, StoreError};
use ostiary_types::{Relationship, Revision, TenantId};
use rocksdb::WriteBatch;

use crate::codec;
use crate::{Cf, RocksDatastore};

/// What [`RocksDatastore::bulk_load`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BulkLoadStats {
    /// Relationships written.
    pub n_relationships: usize,
    /// The revision of the last batch ([`Revision::ZERO`] if nothing was loaded); reads at
    /// it see the whole load.
    pub last_revision: Revision,
}

impl RocksDatastore {
    /// The default number of relationships per bulk-load batch.
    pub const DEFAULT_BULK_BATCH: usize = 50_000;

    /// Imports `relationships` into `tenant` with TOUCH semantics (an existing
    /// relationship is replaced; no existence checks are made), `batch_size` at a time.
    ///
    /// Each batch is one transaction with its own revision, sorted and deduplicated, and
    /// appears in the change feed; batches are written without per-batch fsync, and the
    /// call returns once all of them are durable. If it fails or the process dies midway, a
    /// prefix of the batches is committed and the rest is not.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    pub fn bulk_load(
        &self,
        tenant: &TenantId,
        relationships: impl IntoIterator<Item = Relationship>,
        batch_size: usize,
    ) -> Result<BulkLoadStats, StoreError> {
        let batch_size = batch_size.max(1);
        let mut stats = BulkLoadStats::default();
        let mut chunk: Vec<(Vec<u8>, Relationship)> = Vec::with_capacity(batch_size);
        for rel in relationships {
            chunk.push((codec::forward_key(tenant, rel.key()), rel));
            if chunk.len() >= batch_size {
                self.load_chunk(tenant, &mut chunk, &mut stats)?;
            }
        }
        if !chunk.is_empty() {
            self.load_chunk(tenant, &mut chunk, &mut stats)?;
        }
        if stats.last_revision > Revision::ZERO {
            self.shared.wait_durable(stats.last_revision)?;
        }
        Ok(stats)
    }

    fn load_chunk(
        &self,
        tenant: &TenantId,
        chunk: &mut Vec<(Vec<u8>, Relationship)>,
        stats: &mut BulkLoadStats,
    ) -> Result<(), StoreError> {
        // Sort by key, keeping the last of duplicates (a stable sort keeps input order).
        chunk.sort_by(|left, right| left.0.cmp(&right.0));
        chunk.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                std::mem::swap(later, earlier);
                true
            } else {
                false
            }
        });
        let shared = &*self.shared;
        let forward = shared.cf(Cf::Forward)?;
        let reverse = shared.cf(Cf::Reverse)?;
        let mut writer = shared.writer.lock();
        let revision = writer
            .last_written
            .checked_next()
            .ok_or_else(|| StoreError::Internal("revision counter exhausted".to_owned()))?;
        let committed_at = shared.commit_time(&writer);
        let mut batch = WriteBatch::default();
        let mut changes = Vec::with_capacity(chunk.len());
        for (forward_key, rel) in chunk.drain(..) {
            let value = codec::encode_version(&rel)?;
            batch.put_cf(forward, codec::versioned(&forward_key, revision), &value);
            let reverse_key = codec::reverse_key(tenant, rel.key());
            batch.put_cf(reverse, codec::versioned(&reverse_key, revision), &value);
            stats.n_relationships += 1;
            changes.push(Change::Touch(rel));
        }
        batch.put_cf(
            shared.cf(Cf::Changes)?,
            codec::change_key(tenant, revision),
            codec::encode_changes(committed_at, &changes)?,
        );
        let mut time = Vec::with_capacity(12);
        codec::encode_timestamp(&mut time, committed_at);
        batch.put_cf(shared.cf(Cf::Meta)?, codec::commit_key(revision), time);
        crate::txn::write_unsynced(shared, batch)?;
        shared.record_written(&mut writer, revision, committed_at);
        stats.last_revision = revision;
        Ok(())
    }
}
