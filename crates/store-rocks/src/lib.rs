//! RocksDB backend of the Ostiary datastore: [`RocksDatastore`].
//!
//! # Design
//!
//! * **Column families.** `forward` (relationships in resource order), `reverse` (the same
//!   versions in subject order, so reverse lookups need no second read), `changes` (one
//!   record per tenant and revision, for Watch), `schema` (schema text per revision) and
//!   `meta` (store format version, persisted horizon, commit time of every revision),
//!   `records` (unversioned per-tenant metadata: tokens, audit entries). The
//!   key layout is documented in `codec.rs`: the tenant id comes first in every key, and
//!   byte order equals [`ReadOrder`](ostiary_store::ReadOrder).
//! * **MVCC.** Every write adds a version `key || !revision` (newest first); a delete adds a
//!   tombstone. A read at revision `R` takes, per key, the newest version at or before `R`.
//!   Versions at or before head are never rewritten except by garbage collection, which
//!   only removes what no readable revision (and no live snapshot) can see, so reads need
//!   no RocksDB snapshot and no lock.
//! * **Writes.** One mutex serializes transactions: a transaction takes revision
//!   `last + 1`, reads the latest written state (its CREATE checks and preconditions are
//!   thus atomic with the write), buffers its updates and commits them as one `WriteBatch`
//!   (both indexes, change record, schema, commit time) appended to RocksDB's in-memory
//!   WAL buffer (manual WAL flush: no system call) and the memtables. A TOUCH needs no
//!   before-image and reads nothing. The mutex is then released and the writer waits for
//!   durability.
//! * **Group commit.** The first waiter becomes the sync leader: it notes the last written
//!   revision, writes the WAL buffer out and fsyncs it once (`FlushWAL(sync)`: one write
//!   and one fsync for the whole group), marks everything up to that
//!   revision durable and wakes the others; writers that arrived during the fsync share
//!   the next one. Head (what snapshots, [`Datastore::check_revision`] and Watch see) is
//!   the durable revision, so nothing is visible before it is acknowledged-durable.
//! * **Garbage collection** ([`Datastore::collect_garbage`]) walks the indexes in small
//!   batches without holding the writer mutex; see `gc.rs`.
//! * **Bulk load** ([`RocksDatastore::bulk_load`]) writes large sorted batches, each its own
//!   revision, without per-relationship existence checks. **Bulk import**
//!   ([`RocksDatastore::bulk_import`]) writes sorted SST files and ingests them into the
//!   indexes at one revision (the path for millions of relationships); a marker in `meta`
//!   lets open roll back an import a crash interrupted.
//! * **Records** are latest-value: a transaction buffers its record writes and puts them in
//!   its `WriteBatch`. Reads outside a transaction read the column family directly, then
//!   wait until everything written so far is durable, so nobody acts on a record a crash
//!   could still take back.
//! * **Format version.** `meta/format` is checked on open; see [`OpenError`].

mod bulk;
mod codec;
mod error;
mod gc;
mod read;
mod txn;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ostiary_store::{
    Datastore, DatastoreOptions, GcStats, Horizon, Record, RecordNamespace, RevisionChanges,
    Snapshot, StoreError, TxnBody, watch,
};
use ostiary_types::{Revision, TenantId, Timestamp};
use parking_lot::{Condvar, Mutex, RwLock};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Options,
};

pub use bulk::{BulkImportStats, BulkLoadStats};
pub use error::OpenError;

use crate::codec::Reader;
use crate::error::{corrupt, storage};

/// The column families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cf {
    Forward,
    Reverse,
    Changes,
    Schema,
    Meta,
    Records,
}

impl Cf {
    const ALL: [Cf; 6] = [
        Cf::Forward,
        Cf::Reverse,
        Cf::Changes,
        Cf::Schema,
        Cf::Meta,
        Cf::Records,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::Reverse => "reverse",
            Self::Changes => "changes",
            Self::Schema => "schema",
            Self::Meta => "meta",
            Self::Records => "records",
        }
    }
}

/// How to open a data directory.
#[derive(Debug, Clone)]
pub struct RocksConfig {
    /// The data directory.
    pub path: PathBuf,
    /// Initialize a new datastore if the directory is missing or empty (otherwise that is
    /// [`OpenError::Missing`]).
    pub create_if_missing: bool,
    /// The size of the block cache shared by all column families, in bytes.
    pub block_cache_bytes: usize,
}

impl RocksConfig {
    /// The default block cache size: 256 MiB.
    pub const DEFAULT_BLOCK_CACHE_BYTES: usize = 256 << 20;

    /// A configuration for `path` that creates the datastore if needed.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            create_if_missing: true,
            block_cache_bytes: Self::DEFAULT_BLOCK_CACHE_BYTES,
        }
    }
}

/// The RocksDB datastore. Dropping the last handle (and every snapshot) closes the
/// database.
#[derive(Debug, Clone)]
pub struct RocksDatastore {
    shared: Arc<Shared>,
}

/// Writer state, guarded by the writer mutex.
#[derive(Debug)]
struct WriterState {
    /// The newest revision written (maybe not yet durable).
    last_written: Revision,
    /// Its commit time.
    last_commit_time: Option<Timestamp>,
}

/// Group-commit state.
#[derive(Debug)]
struct SyncState {
    /// Every revision at or before this is durable (and published as head).
    synced: Revision,
    /// Whether a leader is fsyncing right now.
    syncing: bool,
    /// Set when an fsync failed: the WAL's state is unknown, so the datastore refuses
    /// writes until reopened.
    failed: Option<String>,
}

/// Group-commit counters (relaxed atomics, read by [`RocksDatastore::wal_sync_stats`]).
#[derive(Debug, Default)]
struct SyncCounters {
    n_syncs: AtomicU64,
    sync_nanos: AtomicU64,
    n_revisions_synced: AtomicU64,
}

/// Cumulative group-commit figures since the datastore was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WalSyncStats {
    /// WAL fsyncs made by sync leaders.
    pub n_syncs: u64,
    /// Time spent in those fsyncs.
    pub sync_time: Duration,
    /// Revisions made durable by them (the sum of the group sizes).
    pub n_revisions_synced: u64,
}

/// State shared by the datastore, its snapshots and transactions.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) db: DB,
    options: DatastoreOptions,
    writer: Mutex<WriterState>,
    /// The newest written revision, readable without the writer mutex (for the sync
    /// leader).
    last_written: Mutex<Revision>,
    sync: Mutex<SyncState>,
    sync_done: Condvar,
    /// Counters of group commit, for [`RocksDatastore::wal_sync_stats`].
    sync_counters: SyncCounters,
    /// Commit times from the horizon on, in revision order (including written but not yet
    /// durable revisions; readers cap at head).
    commits: RwLock<Vec<(Revision, Timestamp)>>,
    head_sender: watch::Sender<Revision>,
    horizon: Horizon,
    /// Revisions of live snapshots (with counts), which garbage collection preserves.
    pinned: Mutex<BTreeMap<Revision, usize>>,
}

/// Registers a snapshot's revision with the garbage collector for the snapshot's life.
#[derive(Debug)]
pub(crate) struct SnapshotPin {
    shared: Arc<Shared>,
    revision: Revision,
}

impl Drop for SnapshotPin {
    fn drop(&mut self) {
        let mut pinned = self.shared.pinned.lock();
        if let Some(count) = pinned.get_mut(&self.revision) {
            *count -= 1;
            if *count == 0 {
                pinned.remove(&self.revision);
            }
        }
    }
}

impl RocksDatastore {
    /// Opens (or, if `config.create_if_missing`, creates) the datastore in `config.path`.
    ///
    /// # Errors
    ///
    /// An [`OpenError`] saying whether the directory is missing, is not a datastore, has a
    /// newer store format, is corrupted or cannot be accessed.
    pub fn open(config: &RocksConfig, options: DatastoreOptions) -> Result<Self, OpenError> {
        let path = config.path.as_path();
        let is_empty = match std::fs::read_dir(path) {
            Ok(mut entries) => entries.next().is_none(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => true,
            Err(err) => {
                return Err(OpenError::Io {
                    path: path.to_path_buf(),
                    source: Box::new(err),
                });
            }
        };
        if is_empty && !config.create_if_missing {
            return Err(OpenError::Missing(path.to_path_buf()));
        }
        if is_empty {
            initialize(path)?;
        }
        if !path.join("CURRENT").exists() {
            return Err(OpenError::NotADatastore(path.to_path_buf()));
        }
        let mut db_options = db_options(false);
        let families = DB::list_cf(&db_options, path).map_err(|err| open_error(path, err))?;
        let has_family = |cf: Cf| families.iter().any(|name| name == cf.name());
        if Cf::ALL
            .iter()
            .any(|cf| *cf != Cf::Records && !has_family(*cf))
        {
            return Err(OpenError::NotADatastore(path.to_path_buf()));
        }
        // Directories written before format 3 lack the `records` family: create it.
        let records_missing = !has_family(Cf::Records);
        if records_missing {
            db_options.create_missing_column_families(true);
        }
        let cache = Cache::new_lru_cache(config.block_cache_bytes);
        let descriptors = Cf::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(*cf, &cache)));
        let db = DB::open_cf_descriptors(&db_options, path, descriptors)
            .map_err(|err| open_error(path, err))?;
        let meta = db
            .cf_handle(Cf::Meta.name())
            .ok_or_else(|| OpenError::NotADatastore(path.to_path_buf()))?;
        let corrupted = |reason: String| OpenError::Corrupted {
            path: path.to_path_buf(),
            reason,
        };
        match db
            .get_cf(meta, codec::META_FORMAT)
            .map_err(|err| open_error(path, err))?
        {
            None => return Err(OpenError::NotADatastore(path.to_path_buf())),
            Some(bytes) => {
                let array: [u8; 4] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupted("store format version is not 4 bytes".to_owned()))?;
                let found = u32::from_be_bytes(array);
                if found > codec::FORMAT_VERSION {
                    return Err(OpenError::NewerFormat {
                        path: path.to_path_buf(),
                        found,
                        supported: codec::FORMAT_VERSION,
                    });
                }
                if found == 0 {
                    return Err(corrupted("store format version 0".to_owned()));
                }
                if records_missing && found >= codec::FORMAT_WITH_RECORDS {
                    return Err(corrupted(format!(
                        "store format {found} without the `records` column family"
                    )));
                }
                if found < codec::FORMAT_VERSION {
                    // Formats 2 and 3 only add record kinds and the (now created) `records`
                    // family; older data reads unchanged.
                    let mut write_options = rocksdb::WriteOptions::default();
                    write_options.set_sync(true);
                    db.put_cf_opt(
                        meta,
                        codec::META_FORMAT,
                        codec::FORMAT_VERSION.to_be_bytes(),
                        &write_options,
                    )
                    .map_err(|err| open_error(path, err))?;
                }
            }
        }
        bulk::recover_import(&db).map_err(|err| corrupted(err.to_string()))?;
        let (horizon, commits) =
            load_commits(&db, meta).map_err(|err| corrupted(err.to_string()))?;
        let head = commits
            .last()
            .map_or(Revision::ZERO, |(revision, _)| *revision);
        let last_commit_time = commits.last().map(|(_, time)| *time);
        let (head_sender, _) = watch::channel(head);
        Ok(Self {
            shared: Arc::new(Shared {
                db,
                options,
                writer: Mutex::new(WriterState {
                    last_written: head,
                    last_commit_time,
                }),
                last_written: Mutex::new(head),
                sync: Mutex::new(SyncState {
                    synced: head,
                    syncing: false,
                    failed: None,
                }),
                sync_done: Condvar::new(),
                sync_counters: SyncCounters::default(),
                commits: RwLock::new(commits),
                head_sender,
                horizon: Horizon::new(horizon),
                pinned: Mutex::new(BTreeMap::new()),
            }),
        })
    }

    /// Flushes memtables and compacts every column family fully (benchmarks use it to
    /// measure bytes on disk; operators may use it after a bulk load).
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    pub fn compact(&self) -> Result<(), StoreError> {
        // Rewrite the bottommost level too: files a bulk import ingested there are LZ4 and
        // get the bottommost ZSTD compression only this way.
        let mut options = rocksdb::CompactOptions::default();
        options.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        for cf in Cf::ALL {
            let handle = self.shared.cf(cf)?;
            self.shared.db.flush_cf(handle).map_err(storage)?;
            self.shared
                .db
                .compact_range_cf_opt(handle, None::<&[u8]>, None::<&[u8]>, &options);
        }
        Ok(())
    }

    /// Returns cumulative group-commit figures: how many WAL fsyncs were made, the time
    /// spent in them and how many revisions they made durable (their ratio is the average
    /// group size).
    pub fn wal_sync_stats(&self) -> WalSyncStats {
        let counters = &self.shared.sync_counters;
        WalSyncStats {
            n_syncs: counters.n_syncs.load(Ordering::Relaxed),
            sync_time: Duration::from_nanos(counters.sync_nanos.load(Ordering::Relaxed)),
            n_revisions_synced: counters.n_revisions_synced.load(Ordering::Relaxed),
        }
    }

    /// Returns the size of the live SST files of each column family (`forward`,
    /// `reverse`, `changes`, `schema`, `meta`), in bytes.
    ///
    /// # Errors
    ///
    /// Returns a storage failure.
    pub fn sst_bytes(&self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        let mut sizes = Vec::new();
        for cf in Cf::ALL {
            let handle = self.shared.cf(cf)?;
            let size = self
                .shared
                .db
                .property_int_value_cf(handle, "rocksdb.total-sst-files-size")
                .map_err(storage)?
                .unwrap_or(0);
            sizes.push((cf.name(), size));
        }
        Ok(sizes)
    }
}

/// Creates a new datastore in a sibling directory and renames it into place, so that a
/// crash during initialization never leaves a half-initialized data directory.
fn initialize(path: &Path) -> Result<(), OpenError> {
    let io_error = |err: std::io::Error| OpenError::Io {
        path: path.to_path_buf(),
        source: Box::new(err),
    };
    let mut staging = path.as_os_str().to_owned();
    staging.push(".initializing");
    let staging = PathBuf::from(staging);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_error)?;
    }
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(io_error)?;
    }
    {
        let cache = Cache::new_lru_cache(1 << 20);
        let descriptors = Cf::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(*cf, &cache)));
        let db = DB::open_cf_descriptors(&db_options(true), &staging, descriptors)
            .map_err(|err| open_error(&staging, err))?;
        let meta = db
            .cf_handle(Cf::Meta.name())
            .ok_or_else(|| OpenError::NotADatastore(staging.clone()))?;
        let mut write_options = rocksdb::WriteOptions::default();
        write_options.set_sync(true);
        db.put_cf_opt(
            meta,
            codec::META_FORMAT,
            codec::FORMAT_VERSION.to_be_bytes(),
            &write_options,
        )
        .map_err(|err| open_error(&staging, err))?;
        db.flush_wal(true)
            .map_err(|err| open_error(&staging, err))?;
    }
    std::fs::rename(&staging, path).map_err(io_error)
}

/// Maps an error of opening RocksDB.
fn open_error(path: &Path, err: rocksdb::Error) -> OpenError {
    match err.kind() {
        rocksdb::ErrorKind::Corruption | rocksdb::ErrorKind::InvalidArgument => {
            OpenError::Corrupted {
                path: path.to_path_buf(),
                reason: err.into_string(),
            }
        }
        _ => OpenError::Io {
            path: path.to_path_buf(),
            source: Box::new(err),
        },
    }
}

/// Database-wide options.
fn db_options(create: bool) -> Options {
    let mut options = Options::default();
    options.create_if_missing(create);
    options.create_missing_column_families(create);
    options.set_paranoid_checks(true);
    options.increase_parallelism(2);
    options.set_max_background_jobs(2);
    // Recover every complete batch in the WAL and stop at the first damaged record: a
    // torn tail from a crash loses only unacknowledged writes.
    options.set_wal_recovery_mode(rocksdb::DBRecoveryMode::PointInTime);
    options.set_keep_log_file_num(4);
    // Writes append to RocksDB's in-memory WAL buffer; the group-commit leader writes the
    // buffer out and fsyncs it once per group (`flush_wal(true)`), so a transaction costs
    // no system call under the writer mutex. RocksDB also writes the buffer before it
    // switches memtables, and syncs closed WALs before a flush (multiple column families),
    // so no flushed table ever holds a batch the WAL lost.
    options.set_manual_wal_flush(true);
    options
}

/// Per-column-family options: LZ4 for the upper levels, ZSTD for the bottommost (most of
/// the data), prefix-compressed blocks, and a bloom filter-free index (reads are prefix
/// seeks).
fn cf_options(cf: Cf, cache: &Cache) -> Options {
    let mut options = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_block_size(16 << 10);
    table.set_format_version(5);
    table.set_cache_index_and_filter_blocks(true);
    options.set_block_based_table_factory(&table);
    options.set_compression_type(DBCompressionType::Lz4);
    options.set_bottommost_compression_type(DBCompressionType::Zstd);
    options.set_level_compaction_dynamic_level_bytes(true);
    if matches!(cf, Cf::Forward | Cf::Reverse) {
        options.set_write_buffer_size(64 << 20);
    } else {
        options.set_write_buffer_size(16 << 20);
    }
    options
}

/// Options of the SST files a bulk import writes: the index tables' format, LZ4 (fast to
/// write; a later compaction into the bottommost level recompresses with ZSTD).
pub(crate) fn sst_options() -> Options {
    let mut options = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_size(16 << 10);
    table.set_format_version(5);
    options.set_block_based_table_factory(&table);
    options.set_compression_type(DBCompressionType::Lz4);
    options
}

/// Loads the persisted horizon and the commit times from it on.
fn load_commits(
    db: &DB,
    meta: &ColumnFamily,
) -> Result<(Revision, Vec<(Revision, Timestamp)>), StoreError> {
    let horizon = match db.get_cf(meta, codec::META_HORIZON).map_err(storage)? {
        Some(bytes) => codec::decode_revision(&bytes)?,
        None => Revision::ZERO,
    };
    let mut commits = Vec::new();
    let mut iter = db.raw_iterator_cf(meta);
    iter.seek(codec::META_COMMIT);
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        let Some(revision) = key.strip_prefix(codec::META_COMMIT) else {
            break;
        };
        let revision = codec::decode_revision(revision)?;
        let time = codec::decode_timestamp(&mut Reader::new(value))?;
        if commits
            .last()
            .is_some_and(|(last, _): &(Revision, Timestamp)| *last >= revision)
        {
            return Err(corrupt("commit records out of order"));
        }
        commits.push((revision, time));
        iter.next();
    }
    iter.status().map_err(storage)?;
    Ok((horizon, commits))
}

impl Shared {
    pub(crate) fn cf(&self, cf: Cf) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| StoreError::Internal(format!("column family `{}` missing", cf.name())))
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.options.clock.now()
    }

    pub(crate) fn head(&self) -> Revision {
        self.sync.lock().synced
    }

    /// Returns the newest durable revision committed at or before `time`.
    fn revision_at(&self, time: Timestamp, head: Revision) -> Revision {
        let commits = self.commits.read();
        let n_before = commits
            .partition_point(|(revision, committed_at)| *committed_at <= time && *revision <= head);
        match n_before.checked_sub(1) {
            Some(commit_idx) => commits[commit_idx].0,
            None => Revision::ZERO,
        }
    }

    /// Computes the horizon at the clock's current time (see [`Datastore`]).
    pub(crate) fn horizon(&self) -> Revision {
        let head = self.head();
        let cutoff = ostiary_store::sub_duration(self.now(), self.options.gc_window);
        self.horizon.advance(self.revision_at(cutoff, head))
    }

    fn check_revision(&self, revision: Revision) -> Result<(), StoreError> {
        if revision > self.head() {
            return Err(StoreError::RevisionInFuture(revision));
        }
        if revision < self.horizon() {
            return Err(StoreError::RevisionExpired(revision));
        }
        Ok(())
    }

    /// The oldest revision a live snapshot reads, if any.
    pub(crate) fn oldest_pinned(&self) -> Option<Revision> {
        self.pinned.lock().keys().next().copied()
    }

    /// Records a written (not yet durable) revision.
    fn record_written(&self, writer: &mut WriterState, revision: Revision, at: Timestamp) {
        writer.last_written = revision;
        writer.last_commit_time = Some(at);
        self.commits.write().push((revision, at));
        *self.last_written.lock() = revision;
    }

    /// Picks the commit time of the next revision: the clock's time, but never before the
    /// previous revision's.
    fn commit_time(&self, writer: &WriterState) -> Timestamp {
        let now = self.now();
        match writer.last_commit_time {
            Some(last) if last > now => last,
            _ => now,
        }
    }

    /// Waits until `revision` is durable, fsyncing the WAL as the group's leader if no
    /// one else is. Publishes the new head.
    pub(crate) fn wait_durable(&self, revision: Revision) -> Result<(), StoreError> {
        let mut sync = self.sync.lock();
        loop {
            if sync.synced >= revision {
                return Ok(());
            }
            if let Some(reason) = &sync.failed {
                return Err(StoreError::Unavailable(reason.clone().into()));
            }
            if sync.syncing {
                self.sync_done.wait(&mut sync);
                continue;
            }
            sync.syncing = true;
            // Every revision up to `target` is in the WAL already: revisions are written
            // in order, and `last_written` moves only after a write.
            let target = *self.last_written.lock();
            drop(sync);
            let started = Instant::now();
            let res = self.db.flush_wal(true);
            let elapsed = started.elapsed();
            sync = self.sync.lock();
            sync.syncing = false;
            match res {
                Ok(()) => {
                    if target > sync.synced {
                        let counters = &self.sync_counters;
                        counters.n_syncs.fetch_add(1, Ordering::Relaxed);
                        counters.sync_nanos.fetch_add(
                            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
                            Ordering::Relaxed,
                        );
                        counters.n_revisions_synced.fetch_add(
                            target.as_u64().saturating_sub(sync.synced.as_u64()),
                            Ordering::Relaxed,
                        );
                        sync.synced = target;
                        self.head_sender.send_replace(target);
                    }
                }
                Err(err) => sync.failed = Some(format!("WAL sync failed: {err}")),
            }
            self.sync_done.notify_all();
        }
    }

    /// Waits until every revision written so far is durable: called after reading records
    /// (which are not versioned), so that what the read saw cannot be lost in a crash.
    /// Free when no write is waiting for its fsync.
    fn wait_all_written_durable(&self) -> Result<(), StoreError> {
        let written = *self.last_written.lock();
        self.wait_durable(written)
    }

    fn pin(self: &Arc<Self>, revision: Revision) -> SnapshotPin {
        *self.pinned.lock().entry(revision).or_insert(0) += 1;
        SnapshotPin {
            shared: Arc::clone(self),
            revision,
        }
    }
}

impl Datastore for RocksDatastore {
    fn head_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.shared.head())
    }

    fn optimized_revision(&self) -> Result<Revision, StoreError> {
        let shared = &self.shared;
        let head = shared.head();
        let quantization = shared.options.quantization;
        if quantization.is_zero() {
            return Ok(head);
        }
        let boundary = ostiary_store::quantize_down(shared.now(), quantization);
        let revision = shared.revision_at(boundary, head);
        Ok(revision.max(shared.horizon()))
    }

    fn check_revision(&self, revision: Revision) -> Result<(), StoreError> {
        self.shared.check_revision(revision)
    }

    fn snapshot(
        &self,
        tenant: &TenantId,
        revision: Revision,
    ) -> Result<Arc<dyn Snapshot>, StoreError> {
        // Pin first, then check: a collection that computed its horizon before the pin
        // existed used a horizon no newer than the one checked here.
        let pin = self.shared.pin(revision);
        self.shared.check_revision(revision)?;
        Ok(Arc::new(read::RocksSnapshot {
            shared: Arc::clone(&self.shared),
            tenant: tenant.clone(),
            view: read::View {
                revision,
                now: self.shared.now(),
            },
            _pin: pin,
        }))
    }

    fn read_write(
        &self,
        tenant: &TenantId,
        body: &mut TxnBody<'_>,
    ) -> Result<Revision, StoreError> {
        let shared = &*self.shared;
        let revision = {
            let mut writer = shared.writer.lock();
            if let Some(reason) = &shared.sync.lock().failed {
                return Err(StoreError::Unavailable(reason.clone().into()));
            }
            let revision = writer
                .last_written
                .checked_next()
                .ok_or_else(|| StoreError::Internal("revision counter exhausted".to_owned()))?;
            let mut txn = txn::RocksTxn::new(shared, tenant.clone(), revision, shared.now());
            body(&mut txn)?;
            if txn.failed() {
                return Err(StoreError::Internal(
                    "transaction body returned success after a failed operation".to_owned(),
                ));
            }
            let committed_at = shared.commit_time(&writer);
            let batch = txn.into_batch(committed_at)?;
            txn::write_unsynced(shared, batch)?;
            shared.record_written(&mut writer, revision, committed_at);
            revision
        };
        shared.wait_durable(revision)?;
        Ok(revision)
    }

    fn changes_since(
        &self,
        tenant: &TenantId,
        after: Revision,
        max_revisions: usize,
    ) -> Result<Vec<RevisionChanges>, StoreError> {
        let shared = &self.shared;
        let head = shared.head();
        shared.check_revision(after)?;
        let mut out = Vec::new();
        if max_revisions == 0 {
            return Ok(out);
        }
        let Some(start) = after.checked_next() else {
            return Ok(out);
        };
        let prefix = codec::tenant_prefix(tenant);
        let mut read_options = rocksdb::ReadOptions::default();
        read_options.set_iterate_upper_bound(codec::change_key(
            tenant,
            head.checked_next().unwrap_or(head),
        ));
        let mut iter = shared
            .db
            .raw_iterator_cf_opt(shared.cf(Cf::Changes)?, read_options);
        iter.seek(codec::change_key(tenant, start));
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let Some(suffix) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let (revision, _chunk) = codec::decode_change_suffix(suffix)?;
            if revision > head {
                break;
            }
            let (committed_at, changes) = codec::decode_changes(value)?;
            if let Some(last) = out.last_mut().filter(|last| last.revision == revision) {
                // The next chunk of an import's change record.
                last.changes.extend(changes);
            } else if out.len() >= max_revisions {
                break;
            } else {
                out.push(RevisionChanges {
                    revision,
                    committed_at,
                    changes,
                });
            }
            iter.next();
        }
        iter.status().map_err(storage)?;
        Ok(out)
    }

    fn subscribe(&self) -> watch::Receiver<Revision> {
        self.shared.head_sender.subscribe()
    }

    fn collect_garbage(&self) -> Result<GcStats, StoreError> {
        gc::collect(&self.shared)
    }

    fn read_record(
        &self,
        tenant: &TenantId,
        namespace: &RecordNamespace,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let shared = &*self.shared;
        let value = shared
            .db
            .get_cf(
                shared.cf(Cf::Records)?,
                codec::record_key(tenant, namespace, key),
            )
            .map_err(storage)?;
        shared.wait_all_written_durable()?;
        Ok(value)
    }

    fn scan_records(
        &self,
        tenant: &TenantId,
        namespace: &RecordNamespace,
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let shared = &*self.shared;
        let records = read::scan_records(shared, tenant, namespace, start, limit)?;
        shared.wait_all_written_durable()?;
        Ok(records)
    }

    fn delete_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let shared = &*self.shared;
        let _writer = shared.writer.lock();
        let start = codec::tenant_prefix(tenant);
        let end = codec::prefix_successor(&start)
            .ok_or_else(|| StoreError::Internal("tenant prefix has no successor".to_owned()))?;
        let mut batch = rocksdb::WriteBatch::default();
        for cf in [
            Cf::Forward,
            Cf::Reverse,
            Cf::Changes,
            Cf::Schema,
            Cf::Records,
        ] {
            batch.delete_range_cf(shared.cf(cf)?, &start, &end);
        }
        let mut write_options = rocksdb::WriteOptions::default();
        write_options.set_sync(true);
        shared.db.write_opt(batch, &write_options).map_err(storage)
    }
}
