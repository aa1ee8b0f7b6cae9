//! `RocksTxn`: a read-write transaction that buffers its writes in memory over the
//! latest written state, then turns them into one `WriteBatch`.
//!
//! The datastore's writer mutex is held for the transaction's whole life, so its reads,
//! CREATE checks and preconditions see every earlier transaction and nothing can change
//! between them and the commit.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use ostiary_store::{
    Change, DeleteOutcome, Page, Record, RecordNamespace, RelationshipUpdate, StoreError,
    StoredSchema, WriteTxn, is_expired,
};
use ostiary_types::{
    Relationship, RelationshipFilter, RelationshipKey, Revision, TenantId, Timestamp,
};
use rocksdb::WriteBatch;

use crate::codec;
use crate::error::storage;
use crate::read::{self, Index, View};
use crate::{Cf, Shared};

/// One key the transaction wrote.
#[derive(Debug)]
struct Pending {
    key: RelationshipKey,
    /// The newest stored version before the transaction (expired or not), once read
    /// (`None`: not read yet). A TOUCH needs no before-image: whatever was stored, it
    /// writes a version and records a touch; CREATE and DELETE read it.
    before: Option<Option<Relationship>>,
    /// The value the transaction leaves (`None`: deleted).
    after: Option<Relationship>,
}

/// A transaction in progress.
pub(crate) struct RocksTxn<'a> {
    shared: &'a Shared,
    tenant: TenantId,
    revision: Revision,
    now: Timestamp,
    /// The keys written so far, by unversioned forward key (resource order).
    pending: BTreeMap<Vec<u8>, Pending>,
    schema: Option<Arc<str>>,
    /// Record writes by [encoded](codec::record_key) key: the new value, or `None` for a
    /// delete. They go into the commit's batch.
    records: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Whether an operation failed (possibly half-applied); such a transaction must not
    /// commit.
    failed: bool,
}

impl<'a> RocksTxn<'a> {
    pub(crate) fn new(
        shared: &'a Shared,
        tenant: TenantId,
        revision: Revision,
        now: Timestamp,
    ) -> Self {
        Self {
            shared,
            tenant,
            revision,
            now,
            pending: BTreeMap::new(),
            schema: None,
            records: BTreeMap::new(),
            failed: false,
        }
    }

    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// Every written version is at or before the transaction's own revision, which nobody
    /// else writes while it runs.
    fn view(&self) -> View {
        View {
            revision: self.revision,
            now: self.now,
        }
    }

    /// Returns the key's entry with its before-image read. The stored state is still the
    /// one before the transaction (nothing is written before the commit), so reading it
    /// late gives the same answer as reading it first.
    fn read_entry(
        &mut self,
        forward_key: Vec<u8>,
        key: &RelationshipKey,
    ) -> Result<&mut Pending, StoreError> {
        let shared = self.shared;
        let entry = self.pending.entry(forward_key);
        let needs_read = match &entry {
            Entry::Occupied(occupied) => occupied.get().before.is_none(),
            Entry::Vacant(_) => true,
        };
        let before = if needs_read {
            let cf = shared.cf(Cf::Forward)?;
            Some(read::current_version(&shared.db, cf, entry.key(), key)?)
        } else {
            None
        };
        Ok(match entry {
            Entry::Occupied(occupied) => {
                let pending = occupied.into_mut();
                if before.is_some() {
                    pending.before = before;
                }
                pending
            }
            Entry::Vacant(vacant) => {
                let before = before.unwrap_or_default();
                vacant.insert(Pending {
                    key: key.clone(),
                    after: before.clone(),
                    before: Some(before),
                })
            }
        })
    }

    fn apply_one(&mut self, update: &RelationshipUpdate) -> Result<(), StoreError> {
        let key = update.key();
        let forward_key = codec::forward_key(&self.tenant, key);
        let now = self.now;
        match update {
            RelationshipUpdate::Create(rel) => {
                let entry = self.read_entry(forward_key, key)?;
                if entry
                    .after
                    .as_ref()
                    .is_some_and(|rel| !is_expired(rel, now))
                {
                    return Err(StoreError::AlreadyExists(key.clone()));
                }
                entry.after = Some(rel.clone());
            }
            RelationshipUpdate::Touch(rel) => {
                self.pending
                    .entry(forward_key)
                    .and_modify(|entry| entry.after = Some(rel.clone()))
                    .or_insert_with(|| Pending {
                        key: key.clone(),
                        before: None,
                        after: Some(rel.clone()),
                    });
            }
            RelationshipUpdate::Delete(_) => {
                self.read_entry(forward_key, key)?.after = None;
            }
        }
        Ok(())
    }

    /// Builds the transaction's write batch: the new versions in both indexes, the schema,
    /// the change record and the commit time.
    pub(crate) fn into_batch(self, committed_at: Timestamp) -> Result<WriteBatch, StoreError> {
        let shared = self.shared;
        let mut batch = WriteBatch::default();
        let mut changes = Vec::new();
        if let Some(text) = &self.schema {
            batch.put_cf(
                shared.cf(Cf::Schema)?,
                codec::schema_key(&self.tenant, self.revision),
                text.as_bytes(),
            );
            changes.push(Change::Schema(Arc::clone(text)));
        }
        let forward_cf = shared.cf(Cf::Forward)?;
        let reverse_cf = shared.cf(Cf::Reverse)?;
        for (forward_key, pending) in self.pending {
            // A deleted key's before-image was read (by the DELETE); a touched key's may
            // not have been, and is not needed.
            let before = pending.before.flatten();
            let value = match &pending.after {
                Some(rel) => codec::encode_version(rel)?,
                // Deleting a key with no current version needs no tombstone.
                None if before.is_none() => continue,
                None => codec::TOMBSTONE_VALUE.to_vec(),
            };
            let reverse_key = codec::reverse_key(&self.tenant, &pending.key);
            batch.put_cf(
                forward_cf,
                codec::versioned(&forward_key, self.revision),
                &value,
            );
            batch.put_cf(
                reverse_cf,
                codec::versioned(&reverse_key, self.revision),
                &value,
            );
            let live_before = before.filter(|rel| !is_expired(rel, self.now));
            let live_after = pending.after.filter(|rel| !is_expired(rel, self.now));
            match (live_after, live_before) {
                (Some(after), _) => changes.push(Change::Touch(after)),
                (None, Some(before)) => changes.push(Change::Delete(before)),
                (None, None) => {}
            }
        }
        if !changes.is_empty() {
            batch.put_cf(
                shared.cf(Cf::Changes)?,
                codec::change_key(&self.tenant, self.revision),
                codec::encode_changes(committed_at, &changes)?,
            );
        }
        if !self.records.is_empty() {
            let records_cf = shared.cf(Cf::Records)?;
            for (key, value) in &self.records {
                match value {
                    Some(value) => batch.put_cf(records_cf, key, value),
                    None => batch.delete_cf(records_cf, key),
                }
            }
        }
        let mut time = Vec::with_capacity(12);
        codec::encode_timestamp(&mut time, committed_at);
        batch.put_cf(shared.cf(Cf::Meta)?, codec::commit_key(self.revision), time);
        Ok(batch)
    }
}

impl WriteTxn for RocksTxn<'_> {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn revision(&self) -> Revision {
        self.revision
    }

    fn now(&self) -> Timestamp {
        self.now
    }

    fn apply(&mut self, updates: &[RelationshipUpdate]) -> Result<(), StoreError> {
        for update in updates {
            if let Err(err) = self.apply_one(update) {
                self.failed = true;
                return Err(err);
            }
        }
        Ok(())
    }

    fn delete_filtered(
        &mut self,
        filter: &RelationshipFilter,
        limit: Option<usize>,
    ) -> Result<DeleteOutcome, StoreError> {
        let mut matching = Vec::new();
        let page = Page {
            after: None,
            limit: limit.map(|limit| limit.saturating_add(1)),
        };
        self.read_filtered(filter, page, &mut matching)?;
        let n_to_delete = limit.map_or(matching.len(), |limit| limit.min(matching.len()));
        let more_remain = matching.len() > n_to_delete;
        let updates: Vec<RelationshipUpdate> = matching
            .into_iter()
            .take(n_to_delete)
            .map(|rel| RelationshipUpdate::Delete(rel.key().clone()))
            .collect();
        self.apply(&updates)?;
        Ok(DeleteOutcome {
            n_deleted: n_to_delete,
            more_remain,
        })
    }

    fn read_filtered(
        &mut self,
        filter: &RelationshipFilter,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> Result<usize, StoreError> {
        let prefix = read::filter_prefix(&self.tenant, filter);
        let after = page.after.map(|key| codec::forward_key(&self.tenant, key));
        // Stored relationships whose key the transaction wrote are replaced by the
        // transaction's value; each excluded key can displace at most one result, so
        // reading `limit` stored ones is enough.
        let mut merged: Vec<(Vec<u8>, Relationship)> = Vec::new();
        let pending = &self.pending;
        read::scan(
            self.shared,
            Index::Forward,
            &prefix,
            after.as_deref(),
            self.view(),
            |key, rel| {
                if !pending.contains_key(key) && filter.matches(&rel) {
                    merged.push((key.to_vec(), rel));
                }
                Ok(page.limit.is_none_or(|limit| merged.len() < limit))
            },
        )?;
        for (forward_key, entry) in pending {
            let in_range = forward_key.starts_with(&prefix)
                && after.as_ref().is_none_or(|after| forward_key > after);
            if let Some(rel) = &entry.after
                && in_range
                && !is_expired(rel, self.now)
                && filter.matches(rel)
            {
                merged.push((forward_key.clone(), rel.clone()));
            }
        }
        merged.sort_by(|left, right| left.0.cmp(&right.0));
        if let Some(limit) = page.limit {
            merged.truncate(limit);
        }
        let n_appended = merged.len();
        out.extend(merged.into_iter().map(|(_, rel)| rel));
        Ok(n_appended)
    }

    fn write_schema(&mut self, text: &str) -> Result<(), StoreError> {
        self.schema = Some(Arc::from(text));
        Ok(())
    }

    fn read_schema(&mut self) -> Result<Option<StoredSchema>, StoreError> {
        if let Some(text) = &self.schema {
            return Ok(Some(StoredSchema {
                text: Arc::clone(text),
                revision: self.revision,
            }));
        }
        read::schema_at(self.shared, &self.tenant, self.revision)
    }

    fn put_record(
        &mut self,
        namespace: &RecordNamespace,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.records.insert(
            codec::record_key(&self.tenant, namespace, key),
            Some(value.to_vec()),
        );
        Ok(())
    }

    fn delete_record(&mut self, namespace: &RecordNamespace, key: &[u8]) -> Result<(), StoreError> {
        self.records
            .insert(codec::record_key(&self.tenant, namespace, key), None);
        Ok(())
    }

    fn read_record(
        &mut self,
        namespace: &RecordNamespace,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let encoded = codec::record_key(&self.tenant, namespace, key);
        if let Some(pending) = self.records.get(&encoded) {
            return Ok(pending.clone());
        }
        // The writer mutex is held: the latest written state is the committed one this
        // transaction builds on.
        let shared = self.shared;
        shared
            .db
            .get_cf(shared.cf(Cf::Records)?, encoded)
            .map_err(storage)
    }

    fn scan_records(
        &mut self,
        namespace: &RecordNamespace,
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let prefix = codec::record_prefix(&self.tenant, namespace);
        let pending: Vec<(&[u8], Option<&[u8]>)> = self
            .records
            .range(codec::record_key(&self.tenant, namespace, start)..)
            .map_while(|(key, value)| {
                key.strip_prefix(prefix.as_slice())
                    .map(|key| (key, value.as_deref()))
            })
            .collect();
        let committed = read::scan_records(
            self.shared,
            &self.tenant,
            namespace,
            start,
            limit.saturating_add(pending.len()),
        )?;
        Ok(ostiary_store::merge_pending_records(
            committed,
            pending.into_iter(),
            start,
            limit,
        ))
    }
}

/// Writes `batch` to the WAL and memtable without waiting for an fsync (the caller waits
/// for a group sync afterwards).
pub(crate) fn write_unsynced(shared: &Shared, batch: WriteBatch) -> Result<(), StoreError> {
    let mut write_options = rocksdb::WriteOptions::default();
    write_options.set_sync(false);
    shared.db.write_opt(batch, &write_options).map_err(storage)
}
