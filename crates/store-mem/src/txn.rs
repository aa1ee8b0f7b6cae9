//! `MemTxn`: a read-write transaction writing straight into the shared state at the
//! uncommitted revision `head + 1`, with rollback by revision.

use std::collections::BTreeMap;
use std::sync::Arc;

use ostiary_store::{
    Change, DeleteOutcome, Page, Record, RecordNamespace, RelationshipUpdate, RevisionChanges,
    StoreError, StoredSchema, WriteTxn,
};
use ostiary_types::{Relationship, RelationshipFilter, Revision, TenantId, Timestamp};

use crate::Shared;
use crate::encoding::{self, Encoded};
use crate::state::View;

/// A transaction in progress. The datastore's writer mutex is held for its whole life, so
/// it is the only writer, and no snapshot can read its revision before the commit.
pub(crate) struct MemTxn<'a> {
    shared: &'a Shared,
    tenant: TenantId,
    revision: Revision,
    now: Timestamp,
    /// The keys this transaction wrote, in resource order, with their live value before it.
    touched: BTreeMap<Encoded, Option<Relationship>>,
    schema: Option<Arc<str>>,
    /// Record writes, by [encoded](encoding::record_key) key: the new value, or `None` for
    /// a delete. Applied at commit.
    records: BTreeMap<Encoded, Option<Vec<u8>>>,
    /// Whether an operation failed (possibly half-applied); such a transaction must not
    /// commit.
    failed: bool,
}

impl<'a> MemTxn<'a> {
    pub(crate) fn new(shared: &'a Shared, tenant: TenantId, revision: Revision) -> Self {
        Self {
            shared,
            tenant,
            revision,
            now: shared.now(),
            touched: BTreeMap::new(),
            schema: None,
            records: BTreeMap::new(),
            failed: false,
        }
    }

    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    fn view(&self) -> View {
        View {
            revision: self.revision,
            now: self.now,
        }
    }

    /// Applies one update; the caller holds the state's write lock.
    fn apply_one(
        &mut self,
        tenant_state: &mut crate::state::TenantState,
        update: &RelationshipUpdate,
    ) -> Result<(), StoreError> {
        let view = self.view();
        let forward_key = encoding::forward(update.key());
        if !self.touched.contains_key(&forward_key) {
            let before = tenant_state.live(&forward_key, view).cloned();
            self.touched.insert(forward_key.clone(), before);
        }
        match update {
            RelationshipUpdate::Create(rel) => {
                if tenant_state.live(&forward_key, view).is_some() {
                    return Err(StoreError::AlreadyExists(rel.key().clone()));
                }
                tenant_state.put(&forward_key, rel, self.revision);
            }
            RelationshipUpdate::Touch(rel) => tenant_state.put(&forward_key, rel, self.revision),
            RelationshipUpdate::Delete(_) => tenant_state.end_current(&forward_key, self.revision),
        }
        Ok(())
    }

    /// Publishes the transaction: records its net changes and moves head to its revision.
    pub(crate) fn commit(self) {
        let mut state = self.shared.state.write();
        let clock_now = self.shared.now();
        let committed_at = match state.last_commit_time() {
            Some(last) if last > clock_now => last,
            _ => clock_now,
        };
        let view = self.view();
        let mut changes: Vec<Change> = Vec::new();
        if let Some(text) = &self.schema {
            changes.push(Change::Schema(Arc::clone(text)));
        }
        if let Some(tenant_state) = state.tenants.get(&self.tenant) {
            for (forward_key, before) in &self.touched {
                match (tenant_state.live(forward_key, view), before) {
                    (Some(after), _) => changes.push(Change::Touch(after.clone())),
                    (None, Some(before)) => changes.push(Change::Delete(before.clone())),
                    (None, None) => {}
                }
            }
        }
        if !changes.is_empty() {
            state
                .tenants
                .entry(self.tenant.clone())
                .or_default()
                .changes
                .push(RevisionChanges {
                    revision: self.revision,
                    committed_at,
                    changes,
                });
        }
        if !self.records.is_empty() {
            let records = &mut state
                .tenants
                .entry(self.tenant.clone())
                .or_default()
                .records;
            for (key, value) in self.records {
                match value {
                    Some(value) => records.insert(key, value),
                    None => records.remove(&key),
                };
            }
        }
        state.commits.push((self.revision, committed_at));
        state.head = self.revision;
    }

    /// Removes every trace of the transaction.
    pub(crate) fn rollback(self) {
        let mut state = self.shared.state.write();
        if let Some(tenant_state) = state.tenants.get_mut(&self.tenant) {
            for forward_key in self.touched.keys() {
                tenant_state.undo(forward_key, self.revision);
            }
            tenant_state
                .schemas
                .retain(|schema| schema.revision != self.revision);
        }
    }
}

impl WriteTxn for MemTxn<'_> {
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
        let shared = self.shared;
        let mut state = shared.state.write();
        let tenant_state = state.tenants.entry(self.tenant.clone()).or_default();
        for update in updates {
            if let Err(err) = self.apply_one(tenant_state, update) {
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
        let state = self.shared.state.read();
        Ok(state.tenants.get(&self.tenant).map_or(0, |tenant_state| {
            tenant_state.read_filtered(self.view(), filter, page, out)
        }))
    }

    fn write_schema(&mut self, text: &str) -> Result<(), StoreError> {
        let text: Arc<str> = Arc::from(text);
        let mut state = self.shared.state.write();
        let schemas = &mut state
            .tenants
            .entry(self.tenant.clone())
            .or_default()
            .schemas;
        schemas.retain(|schema| schema.revision != self.revision);
        schemas.push(StoredSchema {
            text: Arc::clone(&text),
            revision: self.revision,
        });
        self.schema = Some(text);
        Ok(())
    }

    fn read_schema(&mut self) -> Result<Option<StoredSchema>, StoreError> {
        let state = self.shared.state.read();
        Ok(state
            .tenants
            .get(&self.tenant)
            .and_then(|tenant_state| tenant_state.schema_at(self.revision)))
    }

    fn put_record(
        &mut self,
        namespace: &RecordNamespace,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.records
            .insert(encoding::record_key(namespace, key), Some(value.to_vec()));
        Ok(())
    }

    fn delete_record(&mut self, namespace: &RecordNamespace, key: &[u8]) -> Result<(), StoreError> {
        self.records
            .insert(encoding::record_key(namespace, key), None);
        Ok(())
    }

    fn read_record(
        &mut self,
        namespace: &RecordNamespace,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let encoded = encoding::record_key(namespace, key);
        if let Some(pending) = self.records.get(&encoded) {
            return Ok(pending.clone());
        }
        let state = self.shared.state.read();
        Ok(state
            .tenants
            .get(&self.tenant)
            .and_then(|tenant_state| tenant_state.records.get(&encoded).cloned()))
    }

    fn scan_records(
        &mut self,
        namespace: &RecordNamespace,
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let prefix = encoding::record_prefix(namespace);
        let pending: Vec<(&[u8], Option<&[u8]>)> = self
            .records
            .range(encoding::record_key(namespace, start)..)
            .map_while(|(key, value)| {
                key.strip_prefix(prefix.as_slice())
                    .map(|key| (key, value.as_deref()))
            })
            .collect();
        let committed = {
            let state = self.shared.state.read();
            state
                .tenants
                .get(&self.tenant)
                .map_or_else(Vec::new, |tenant_state| {
                    tenant_state.scan_records(namespace, start, limit.saturating_add(pending.len()))
                })
        };
        Ok(ostiary_store::merge_pending_records(
            committed,
            pending.into_iter(),
            start,
            limit,
        ))
    }
}
