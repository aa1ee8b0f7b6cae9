//! The bulk paths: [`RocksDatastore::bulk_load`] (large sorted write batches, one revision
//! each) and [`RocksDatastore::bulk_import`] (SST files ingested into the indexes at one
//! revision), plus the recovery of an import interrupted by a crash.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ostiary_store::{Change, StoreError};
use ostiary_types::{Relationship, RelationshipKey, Revision, TenantId, Timestamp};
use rocksdb::{DB, IngestExternalFileOptions, SstFileWriter, WriteBatch};

use crate::codec::{self, ImportMarker};
use crate::error::{corrupt, storage};
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

/// What [`RocksDatastore::bulk_import`] did, with the time of each phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BulkImportStats {
    /// Distinct relationships written (duplicates in the input count once).
    pub n_relationships: usize,
    /// The import's revision ([`Revision::ZERO`] if the input was empty); reads at it see
    /// the whole import, reads before it none of it.
    pub revision: Revision,
    /// Encoding, sorting and deduplicating the input (before the writer lock).
    pub encode_time: Duration,
    /// Writing the SST files (forward index, reverse index and change log, on three
    /// threads).
    pub write_time: Duration,
    /// Ingesting the files, committing the revision and syncing the WAL.
    pub ingest_time: Duration,
}

/// Changes per change-log chunk of an import.
const CHANGES_PER_CHUNK: usize = 65_536;

/// The directory, inside the data directory, where an import stages its SST files.
const IMPORT_DIR: &str = "import.tmp";

/// Sorted, encoded index entries: keys and values packed into one buffer.
#[derive(Default)]
struct Entries {
    arena: Vec<u8>,
    /// Each entry's start in `arena` and the lengths of its key and value (the value
    /// follows the key). Entries are pushed in input order, so a later duplicate has a
    /// larger start.
    index: Vec<(usize, u32, u32)>,
}

impl Entries {
    fn key(&self, entry: &(usize, u32, u32)) -> &[u8] {
        &self.arena[entry.0..entry.0 + entry.1 as usize]
    }

    fn value(&self, entry: &(usize, u32, u32)) -> &[u8] {
        let start = entry.0 + entry.1 as usize;
        &self.arena[start..start + entry.2 as usize]
    }

    /// Encodes `relationships` as one index's entries (`push_key` writes the key), then
    /// sorts and deduplicates them.
    fn encode(
        relationships: &[Relationship],
        tenant: &TenantId,
        push_key: fn(&mut Vec<u8>, &TenantId, &RelationshipKey),
    ) -> Result<Self, StoreError> {
        let mut entries = Self {
            arena: Vec::with_capacity(relationships.len().saturating_mul(64)),
            index: Vec::with_capacity(relationships.len()),
        };
        for rel in relationships {
            let start = entries.arena.len();
            push_key(&mut entries.arena, tenant, rel.key());
            let value_start = entries.arena.len();
            codec::push_version(&mut entries.arena, rel)?;
            entries.push(start, value_start)?;
        }
        entries.sort_dedup();
        Ok(entries)
    }

    /// Records the entry whose key starts at `start` and whose value starts at
    /// `value_start` (both already in the arena).
    fn push(&mut self, start: usize, value_start: usize) -> Result<(), StoreError> {
        let too_long = |_| StoreError::Internal("relationship encoding too long".to_owned());
        let key_len = u32::try_from(value_start - start).map_err(too_long)?;
        let value_len = u32::try_from(self.arena.len() - value_start).map_err(too_long)?;
        self.index.push((start, key_len, value_len));
        Ok(())
    }

    /// Sorts by key, keeping the last occurrence of each key in input order, and rewrites
    /// the arena in that order.
    ///
    /// The keys of one import share a long prefix (tenant, type, part of the id), so the
    /// entries are first radix-sorted by a big-endian 8-byte window after the common
    /// prefix (zero padding keeps the window's order consistent with the keys'), without
    /// touching the arena. One gather pass then copies the entries into a new arena in
    /// that order (random reads, sequential writes, independent so the memory system
    /// overlaps them); the short runs of equal windows are finished by comparing keys that
    /// now sit next to each other, and the SST writer reads the arena sequentially. Before
    /// the gather, an import in the reverse index's order (subjects) paid several cache
    /// misses per entry in the tie comparisons, the deduplication and the SST writer.
    fn sort_dedup(&mut self) {
        let Some(first) = self.index.first().map(|entry| self.key(entry)) else {
            return;
        };
        let mut skip = first.len();
        for entry in &self.index {
            let key = self.key(entry);
            skip = skip.min(
                first
                    .iter()
                    .zip(key)
                    .take_while(|(left, right)| left == right)
                    .count(),
            );
        }
        let mut keyed: Vec<(u64, usize)> = self
            .index
            .iter()
            .enumerate()
            .map(|(entry_idx, entry)| {
                let rest = self.key(entry).get(skip..).unwrap_or_default();
                let mut window = [0u8; 8];
                let n_bytes = rest.len().min(8);
                window[..n_bytes].copy_from_slice(&rest[..n_bytes]);
                (u64::from_be_bytes(window), entry_idx)
            })
            .collect();
        // Stable: among equal windows, entries stay in input order.
        radix_sort_by_window(&mut keyed);
        let mut sorted = Self {
            arena: Vec::with_capacity(self.arena.len()),
            index: Vec::with_capacity(self.index.len()),
        };
        for (_, entry_idx) in &keyed {
            let (start, key_len, value_len) = self.index[*entry_idx];
            let end = start + key_len as usize + value_len as usize;
            sorted.index.push((sorted.arena.len(), key_len, value_len));
            sorted.arena.extend_from_slice(&self.arena[start..end]);
        }
        *self = sorted;
        // Runs of equal windows are sorted by the rest of the key, the latest occurrence
        // of a key (the largest arena position, as the gather kept input order) first.
        let mut run_start = 0;
        while run_start < keyed.len() {
            let window = keyed[run_start].0;
            let run_len = keyed[run_start..]
                .iter()
                .take_while(|(other, _)| *other == window)
                .count();
            if run_len > 1 {
                let (arena, index) = (&self.arena, &mut self.index);
                let key =
                    |entry: &(usize, u32, u32)| &arena[entry.0 + skip..entry.0 + entry.1 as usize];
                index[run_start..run_start + run_len].sort_unstable_by(|left, right| {
                    key(left).cmp(key(right)).then(right.0.cmp(&left.0))
                });
            }
            run_start += run_len;
        }
        // Among equal keys the latest comes first now; keep it.
        let mut index = std::mem::take(&mut self.index);
        index.dedup_by(|later, earlier| self.key(later) == self.key(earlier));
        self.index = index;
    }

    fn first_last(&self) -> (Vec<u8>, Vec<u8>) {
        let bound = |entry: Option<&(usize, u32, u32)>| {
            entry
                .map(|entry| self.key(entry).to_vec())
                .unwrap_or_default()
        };
        (bound(self.index.first()), bound(self.index.last()))
    }
}

/// Sorts `keyed` by its 8-byte window: a least-significant-digit radix sort, one pass per
/// byte, skipping the bytes every window shares.
fn radix_sort_by_window<T: Copy>(keyed: &mut Vec<(u64, T)>) {
    let Some(&first) = keyed.first() else {
        return;
    };
    let mut counts = [[0usize; 256]; 8];
    for (window, _) in keyed.iter() {
        for (byte_idx, count) in counts.iter_mut().enumerate() {
            count[((window >> (8 * byte_idx)) & 0xff) as usize] += 1;
        }
    }
    let mut scratch = Vec::with_capacity(keyed.len());
    for (byte_idx, count) in counts.iter().enumerate() {
        if count.contains(&keyed.len()) {
            continue;
        }
        let mut offsets = [0usize; 256];
        let mut total = 0;
        for (offset, &n) in offsets.iter_mut().zip(count) {
            *offset = total;
            total += n;
        }
        scratch.clear();
        scratch.resize(keyed.len(), first);
        for item in keyed.iter() {
            let digit = ((item.0 >> (8 * byte_idx)) & 0xff) as usize;
            scratch[offsets[digit]] = *item;
            offsets[digit] += 1;
        }
        std::mem::swap(keyed, &mut scratch);
    }
}

impl RocksDatastore {
    /// Imports `relationships` into `tenant` by writing SST files and ingesting them into
    /// the forward and reverse indexes: the fast path for loading millions of
    /// relationships, best into an empty store or a key range no one else writes.
    ///
    /// Semantics:
    /// * **One revision.** The whole import commits at one new revision, atomically: reads
    ///   at earlier revisions see none of it, reads at it and later all of it. The call
    ///   returns once the revision is durable.
    /// * **TOUCH.** No existence checks: a relationship that already exists gets a new
    ///   version (older revisions still see the old one); of duplicates in the input, the
    ///   last wins.
    /// * **Change log.** The revision's change record lists every imported relationship as
    ///   a touch (stored in chunks of 65,536 changes; Watch delivers them as one revision).
    /// * **Writers wait.** Encoding and sorting run before the writer lock; writing and
    ///   ingesting the files hold it, so concurrent writes wait for that part.
    /// * **Overlap.** Ingesting into a key range that already holds data is correct (the
    ///   versions carry the new revision) but slower: the files land in an upper level and
    ///   are compacted later instead of going straight to the bottommost level.
    /// * **Crashes.** A marker written before ingestion lets [`RocksDatastore::open`] remove
    ///   a half-ingested import; no partial import is ever visible.
    ///
    /// The input is held in memory, encoded (about 100 bytes per relationship). For small
    /// loads, [`RocksDatastore::bulk_load`] or ordinary writes are cheaper.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    pub fn bulk_import(
        &self,
        tenant: &TenantId,
        relationships: impl IntoIterator<Item = Relationship>,
    ) -> Result<BulkImportStats, StoreError> {
        let mut stats = BulkImportStats::default();
        let started = Instant::now();
        let relationships: Vec<Relationship> = relationships.into_iter().collect();
        if relationships.is_empty() {
            return Ok(stats);
        }
        // Each index is encoded and sorted on its own thread.
        let (forward, reverse) = std::thread::scope(|scope| {
            let reverse_thread =
                scope.spawn(|| Entries::encode(&relationships, tenant, codec::push_reverse_key));
            let forward = Entries::encode(&relationships, tenant, codec::push_forward_key);
            let reverse = reverse_thread
                .join()
                .unwrap_or_else(|_| Err(StoreError::Internal("import sort panicked".to_owned())));
            (forward, reverse)
        });
        drop(relationships);
        let (forward, reverse) = (forward?, reverse?);
        if forward.index.len() != reverse.index.len() {
            return Err(StoreError::Internal(
                "import indexes disagree after deduplication".to_owned(),
            ));
        }
        stats.n_relationships = forward.index.len();
        stats.encode_time = started.elapsed();

        let shared = &*self.shared;
        let mut writer = shared.writer.lock();
        if let Some(reason) = &shared.sync.lock().failed {
            return Err(StoreError::Unavailable(reason.clone().into()));
        }
        let revision = writer
            .last_written
            .checked_next()
            .ok_or_else(|| StoreError::Internal("revision counter exhausted".to_owned()))?;
        let committed_at = shared.commit_time(&writer);
        let marker = ImportMarker {
            tenant: codec::tenant_prefix(tenant),
            revision,
            forward: forward.first_last(),
            reverse: reverse.first_last(),
        };
        let meta = shared.cf(Cf::Meta)?;
        let mut sync_options = rocksdb::WriteOptions::default();
        sync_options.set_sync(true);
        shared
            .db
            .put_cf_opt(
                meta,
                codec::META_IMPORT,
                codec::encode_import_marker(&marker),
                &sync_options,
            )
            .map_err(storage)?;

        let started = Instant::now();
        let dir = shared.db.path().join(IMPORT_DIR).join(revision.to_string());
        std::fs::create_dir_all(&dir).map_err(io_error)?;
        let files = ImportFiles {
            forward: dir.join("forward.sst"),
            reverse: dir.join("reverse.sst"),
            changes: dir.join("changes.sst"),
        };
        // Three files on (at most) three threads: the forward index, the reverse index and
        // the change log, which is about as much work as one index.
        let change_log = ChangeLog {
            path: &files.changes,
            tenant,
            tenant_len: marker.tenant.len(),
            committed_at,
        };
        let results = std::thread::scope(|scope| {
            let joined = |thread: std::thread::ScopedJoinHandle<'_, Result<(), StoreError>>| {
                thread.join().unwrap_or_else(|_| {
                    Err(StoreError::Internal("import writer panicked".to_owned()))
                })
            };
            let reverse_thread =
                scope.spawn(|| write_index_sst(&files.reverse, &reverse, revision));
            let change_thread =
                scope.spawn(|| write_change_log_sst(&change_log, &forward, revision));
            let forward_res = write_index_sst(&files.forward, &forward, revision);
            [forward_res, joined(reverse_thread), joined(change_thread)]
        });
        for res in results {
            res?;
        }
        drop(forward);
        drop(reverse);
        stats.write_time = started.elapsed();

        let started = Instant::now();
        let mut ingest_options = IngestExternalFileOptions::default();
        ingest_options.set_move_files(true);
        for (cf, path) in [
            (Cf::Reverse, &files.reverse),
            (Cf::Forward, &files.forward),
            (Cf::Changes, &files.changes),
        ] {
            shared
                .db
                .ingest_external_file_cf_opts(shared.cf(cf)?, &ingest_options, vec![path])
                .map_err(storage)?;
        }
        let mut batch = WriteBatch::default();
        let mut time = Vec::with_capacity(12);
        codec::encode_timestamp(&mut time, committed_at);
        batch.put_cf(meta, codec::commit_key(revision), time);
        batch.delete_cf(meta, codec::META_IMPORT);
        crate::txn::write_unsynced(shared, batch)?;
        shared.record_written(&mut writer, revision, committed_at);
        drop(writer);
        // Best effort: the files were moved into the database; only the directory is left.
        let _ = std::fs::remove_dir_all(&dir);
        shared.wait_durable(revision)?;
        stats.ingest_time = started.elapsed();
        stats.revision = revision;
        Ok(stats)
    }
}

/// The staged files of one import.
struct ImportFiles {
    forward: PathBuf,
    reverse: PathBuf,
    changes: PathBuf,
}

/// Where and how to write an import's change log next to its forward index.
struct ChangeLog<'a> {
    path: &'a Path,
    tenant: &'a TenantId,
    tenant_len: usize,
    committed_at: Timestamp,
}

fn io_error(err: std::io::Error) -> StoreError {
    StoreError::Unavailable(Box::new(err))
}

/// Writes the sorted `entries` at `revision` into an SST file.
fn write_index_sst(path: &Path, entries: &Entries, revision: Revision) -> Result<(), StoreError> {
    let options = crate::sst_options();
    let mut writer = SstFileWriter::create(&options);
    writer.open(path).map_err(storage)?;
    let mut key = Vec::with_capacity(128);
    for entry in &entries.index {
        key.clear();
        key.extend_from_slice(entries.key(entry));
        codec::push_revision_desc(&mut key, revision);
        writer.put(&key, entries.value(entry)).map_err(storage)?;
    }
    writer.finish().map_err(storage)
}

/// Writes the import's change log (a touch per forward entry, in forward order, in chunks
/// of [`CHANGES_PER_CHUNK`]) at `revision` into an SST file.
fn write_change_log_sst(
    log: &ChangeLog<'_>,
    forward: &Entries,
    revision: Revision,
) -> Result<(), StoreError> {
    let options = crate::sst_options();
    let mut writer = SstFileWriter::create(&options);
    writer.open(log.path).map_err(storage)?;
    let mut chunk = Vec::new();
    for (chunk_idx, entries) in forward.index.chunks(CHANGES_PER_CHUNK).enumerate() {
        chunk.clear();
        codec::encode_timestamp(&mut chunk, log.committed_at);
        for entry in entries {
            codec::push_touch_change(
                &mut chunk,
                forward.key(entry),
                log.tenant_len,
                forward.value(entry),
            );
        }
        let chunk_idx = u32::try_from(chunk_idx)
            .map_err(|_| StoreError::Internal("import change log too long".to_owned()))?;
        writer
            .put(
                codec::change_chunk_key(log.tenant, revision, chunk_idx),
                &chunk,
            )
            .map_err(storage)?;
    }
    writer.finish().map_err(storage)
}

/// Removes what an interrupted [`RocksDatastore::bulk_import`] may have ingested: the
/// versions at its revision within its key ranges and its change records. Run on open,
/// before the revision counter is read.
pub(crate) fn recover_import(db: &DB) -> Result<(), StoreError> {
    let cf = |cf: Cf| {
        db.cf_handle(cf.name())
            .ok_or_else(|| StoreError::Internal(format!("column family `{}` missing", cf.name())))
    };
    let meta = cf(Cf::Meta)?;
    let staging = db.path().join(IMPORT_DIR);
    let Some(bytes) = db.get_cf(meta, codec::META_IMPORT).map_err(storage)? else {
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io_error)?;
        }
        return Ok(());
    };
    let marker = codec::decode_import_marker(&bytes)?;
    let committed = db
        .get_cf(meta, codec::commit_key(marker.revision))
        .map_err(storage)?
        .is_some();
    let mut batch = WriteBatch::default();
    if !committed {
        for (index, (first, last)) in [
            (Cf::Forward, &marker.forward),
            (Cf::Reverse, &marker.reverse),
        ] {
            let handle = cf(index)?;
            let mut read_options = rocksdb::ReadOptions::default();
            if let Some(end) = codec::prefix_successor(last) {
                read_options.set_iterate_upper_bound(end);
            }
            let mut iter = db.raw_iterator_cf_opt(handle, read_options);
            iter.seek(first);
            while let Some(key) = iter.key() {
                let (_, revision) = codec::split_versioned(key)?;
                if revision == marker.revision {
                    batch.delete_cf(handle, key);
                }
                if batch.len() >= 10_000 {
                    db.write(std::mem::take(&mut batch)).map_err(storage)?;
                }
                iter.next();
            }
            iter.status().map_err(storage)?;
        }
        let mut start = marker.tenant.clone();
        start.extend_from_slice(&codec::revision_bytes(marker.revision));
        let mut end = marker.tenant.clone();
        let next = marker
            .revision
            .checked_next()
            .ok_or_else(|| corrupt("import marker at the last revision"))?;
        end.extend_from_slice(&codec::revision_bytes(next));
        batch.delete_range_cf(cf(Cf::Changes)?, start, end);
    }
    batch.delete_cf(meta, codec::META_IMPORT);
    let mut sync_options = rocksdb::WriteOptions::default();
    sync_options.set_sync(true);
    db.write_opt(batch, &sync_options).map_err(storage)?;
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ostiary_store::{
        Datastore, DatastoreExt, DatastoreOptions, Page, RelationshipUpdate, ResourceQuery,
    };
    use ostiary_types::ObjectType;

    use super::*;
    use crate::RocksConfig;

    fn read_docs(store: &RocksDatastore, revision: Revision) -> Vec<String> {
        let snapshot = store
            .snapshot(&TenantId::default_tenant(), revision)
            .unwrap();
        let doc = ObjectType::new("doc").unwrap();
        let mut out = Vec::new();
        snapshot
            .read_resources(&ResourceQuery::new(&doc), Page::ALL, &mut out)
            .unwrap();
        out.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn open_rolls_back_an_interrupted_import() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let tenant = TenantId::default_tenant();
        let config = RocksConfig::new(&path);
        let store = RocksDatastore::open(&config, DatastoreOptions::default()).unwrap();
        let head = store
            .write_relationships(
                &tenant,
                &[],
                &[RelationshipUpdate::Touch(
                    "doc:a#viewer@user:u1".parse().unwrap(),
                )],
            )
            .unwrap();
        // A crash after ingestion and before the commit record: the marker, versions at
        // the next revision in both indexes and a change chunk, but no commit time.
        let pending = head.checked_next().unwrap();
        let rels: Vec<Relationship> = [
            "doc:a#viewer@user:u1[expiration:2999-01-01T00:00:00Z]",
            "doc:b#viewer@user:u2",
        ]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
        let shared = &*store.shared;
        let mut batch = WriteBatch::default();
        let mut forward_keys = Vec::new();
        let mut reverse_keys = Vec::new();
        for rel in &rels {
            let value = codec::encode_version(rel).unwrap();
            let forward_key = codec::forward_key(&tenant, rel.key());
            let reverse_key = codec::reverse_key(&tenant, rel.key());
            batch.put_cf(
                shared.cf(Cf::Forward).unwrap(),
                codec::versioned(&forward_key, pending),
                &value,
            );
            batch.put_cf(
                shared.cf(Cf::Reverse).unwrap(),
                codec::versioned(&reverse_key, pending),
                &value,
            );
            forward_keys.push(forward_key);
            reverse_keys.push(reverse_key);
        }
        forward_keys.sort();
        reverse_keys.sort();
        let changes: Vec<Change> = rels.iter().cloned().map(Change::Touch).collect();
        batch.put_cf(
            shared.cf(Cf::Changes).unwrap(),
            codec::change_chunk_key(&tenant, pending, 0),
            codec::encode_changes(shared.now(), &changes).unwrap(),
        );
        let marker = ImportMarker {
            tenant: codec::tenant_prefix(&tenant),
            revision: pending,
            forward: (forward_keys[0].clone(), forward_keys[1].clone()),
            reverse: (reverse_keys[0].clone(), reverse_keys[1].clone()),
        };
        batch.put_cf(
            shared.cf(Cf::Meta).unwrap(),
            codec::META_IMPORT,
            codec::encode_import_marker(&marker),
        );
        shared.db.write(batch).unwrap();
        std::fs::create_dir_all(path.join(IMPORT_DIR).join("2")).unwrap();
        drop(store);

        let store = RocksDatastore::open(&config, DatastoreOptions::default()).unwrap();
        assert_eq!(store.head_revision().unwrap(), head);
        assert!(!path.join(IMPORT_DIR).exists());
        assert!(
            store
                .shared
                .db
                .get_cf(store.shared.cf(Cf::Meta).unwrap(), codec::META_IMPORT)
                .unwrap()
                .is_none()
        );
        // The next write takes the rolled-back revision and sees none of the import.
        let next = store
            .write_relationships(
                &tenant,
                &[],
                &[RelationshipUpdate::Touch(
                    "doc:c#viewer@user:u3".parse().unwrap(),
                )],
            )
            .unwrap();
        assert_eq!(next, pending);
        assert_eq!(
            read_docs(&store, next),
            ["doc:a#viewer@user:u1", "doc:c#viewer@user:u3"]
        );
        let changes = store.changes_since(&tenant, head, 10).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].changes.len(), 1);
    }

    #[test]
    fn sort_dedup_orders_keys_and_keeps_the_last_duplicate() {
        // Keys with a long common prefix, ties in the 8-byte window, keys shorter than the
        // window, keys that are prefixes of others and duplicates (values tell them apart).
        let mut rng = 7u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut input: Vec<(Vec<u8>, u8)> = Vec::new();
        for idx in 0..5_000u64 {
            let mut key = b"tenant\0document\0doc".to_vec();
            let len = usize::try_from(next() % 14).unwrap();
            for _ in 0..len {
                key.push(b"\x0012ab\xff"[usize::try_from(next() % 6).unwrap()]);
            }
            input.push((key, u8::try_from(idx % 251).unwrap()));
        }
        let mut entries = Entries::default();
        for (key, value) in &input {
            let start = entries.arena.len();
            entries.arena.extend_from_slice(key);
            let value_start = entries.arena.len();
            entries.arena.push(*value);
            entries.push(start, value_start).unwrap();
        }
        entries.sort_dedup();
        let got: Vec<(Vec<u8>, u8)> = entries
            .index
            .iter()
            .map(|entry| (entries.key(entry).to_vec(), entries.value(entry)[0]))
            .collect();
        let mut expected: BTreeMap<Vec<u8>, u8> = BTreeMap::new();
        for (key, value) in input {
            expected.insert(key, value);
        }
        assert_eq!(got, expected.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn import_marker_round_trips() {
        let marker = ImportMarker {
            tenant: b"t\0".to_vec(),
            revision: Revision::new(9),
            forward: (b"a".to_vec(), b"b".to_vec()),
            reverse: (Vec::new(), b"z".to_vec()),
        };
        let bytes = codec::encode_import_marker(&marker);
        assert_eq!(codec::decode_import_marker(&bytes).unwrap(), marker);
        assert!(codec::decode_import_marker(&bytes[..bytes.len() - 1]).is_err());
    }
}
