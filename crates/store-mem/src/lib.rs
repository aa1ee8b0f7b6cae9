//! In-memory MVCC reference backend of the Ostiary datastore, used by engine tests and
//! `--datastore memory`.
//!
//! [`MemDatastore`] aims to be simple and obviously correct rather than fast; when it and
//! another backend disagree on the conformance suite, suspect the other one first.
//!
//! # Design
//!
//! * All state sits in one `RwLock`. Each tenant has a forward index (a `BTreeMap` from the
//!   encoded key to that key's versions) and a reverse index (encoded in subject order,
//!   pointing at the forward key). Keys are encoded as their components joined and ended by
//!   `\0`, which no name or id contains, so byte order equals
//!   [`ReadOrder`](ostiary_store::ReadOrder) order and a prefix selects a type, an id or a
//!   relation.
//! * A version is visible at revision `R` if `created <= R` and it was not deleted at or
//!   before `R`.
//! * Writers are serialized by a mutex. A transaction writes its versions straight into the
//!   shared maps at revision `head + 1`, which no snapshot can read until the commit moves
//!   head; a rollback removes what that revision wrote.
//! * Records (unversioned metadata) sit in a map of their own per tenant. A transaction
//!   buffers its record writes and applies them in its commit, under the same write lock
//!   that moves head.

mod encoding;
mod state;
mod txn;

use std::sync::Arc;

use ostiary_store::{
    Datastore, DatastoreOptions, GcStats, Horizon, Page, Record, RecordNamespace, ResourceQuery,
    RevisionChanges, Snapshot, StoreError, StoredSchema, SubjectQuery, TxnBody, watch,
};
use ostiary_types::{Relationship, RelationshipFilter, Revision, TenantId, Timestamp};
use parking_lot::{Mutex, RwLock};

use crate::state::State;

/// The in-memory datastore. Cheap to clone handles to through `Arc`; all data is lost when
/// the last handle is dropped.
#[derive(Debug)]
pub struct MemDatastore {
    shared: Arc<Shared>,
}

/// The state shared by the datastore and its snapshots.
#[derive(Debug)]
struct Shared {
    options: DatastoreOptions,
    state: RwLock<State>,
    /// Serializes read-write transactions (and tenant deletion).
    writer: Mutex<()>,
    head_sender: watch::Sender<Revision>,
    horizon: Horizon,
}

impl MemDatastore {
    /// Builds an empty datastore.
    pub fn new(options: DatastoreOptions) -> Self {
        let (head_sender, _) = watch::channel(Revision::ZERO);
        Self {
            shared: Arc::new(Shared {
                options,
                state: RwLock::new(State::default()),
                writer: Mutex::new(()),
                head_sender,
                horizon: Horizon::default(),
            }),
        }
    }
}

impl Default for MemDatastore {
    fn default() -> Self {
        Self::new(DatastoreOptions::default())
    }
}

impl Shared {
    fn now(&self) -> Timestamp {
        self.options.clock.now()
    }

    /// Computes the horizon at the clock's current time (see [`Datastore`]).
    fn horizon(&self, state: &State) -> Revision {
        let cutoff = ostiary_store::sub_duration(self.now(), self.options.gc_window);
        self.horizon.advance(state.revision_at(cutoff))
    }

    fn check_revision(&self, state: &State, revision: Revision) -> Result<(), StoreError> {
        if revision > state.head {
            return Err(StoreError::RevisionInFuture(revision));
        }
        if revision < self.horizon(state) {
            return Err(StoreError::RevisionExpired(revision));
        }
        Ok(())
    }
}

impl Datastore for MemDatastore {
    fn head_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.shared.state.read().head)
    }

    fn optimized_revision(&self) -> Result<Revision, StoreError> {
        let state = self.shared.state.read();
        let quantization = self.shared.options.quantization;
        if quantization.is_zero() {
            return Ok(state.head);
        }
        let boundary = ostiary_store::quantize_down(self.shared.now(), quantization);
        let revision = state.revision_at(boundary);
        Ok(revision.max(self.shared.horizon(&state)))
    }

    fn check_revision(&self, revision: Revision) -> Result<(), StoreError> {
        let state = self.shared.state.read();
        self.shared.check_revision(&state, revision)
    }

    fn snapshot(
        &self,
        tenant: &TenantId,
        revision: Revision,
    ) -> Result<Arc<dyn Snapshot>, StoreError> {
        let state = self.shared.state.read();
        self.shared.check_revision(&state, revision)?;
        Ok(Arc::new(MemSnapshot {
            shared: Arc::clone(&self.shared),
            tenant: tenant.clone(),
            revision,
            now: self.shared.now(),
        }))
    }

    fn read_write(
        &self,
        tenant: &TenantId,
        body: &mut TxnBody<'_>,
    ) -> Result<Revision, StoreError> {
        let _writer = self.shared.writer.lock();
        let revision = {
            let state = self.shared.state.read();
            state
                .head
                .checked_next()
                .ok_or_else(|| StoreError::Internal("revision counter exhausted".to_owned()))?
        };
        let mut txn = txn::MemTxn::new(&self.shared, tenant.clone(), revision);
        let res = body(&mut txn);
        let res = match res {
            Ok(()) if txn.failed() => Err(StoreError::Internal(
                "transaction body returned success after a failed operation".to_owned(),
            )),
            other => other,
        };
        match res {
            Ok(()) => {
                txn.commit();
                self.shared.head_sender.send_replace(revision);
                Ok(revision)
            }
            Err(err) => {
                txn.rollback();
                Err(err)
            }
        }
    }

    fn changes_since(
        &self,
        tenant: &TenantId,
        after: Revision,
        max_revisions: usize,
    ) -> Result<Vec<RevisionChanges>, StoreError> {
        let state = self.shared.state.read();
        self.shared.check_revision(&state, after)?;
        let Some(tenant_state) = state.tenants.get(tenant) else {
            return Ok(Vec::new());
        };
        Ok(tenant_state
            .changes
            .iter()
            .filter(|group| group.revision > after && group.revision <= state.head)
            .take(max_revisions)
            .cloned()
            .collect())
    }

    fn subscribe(&self) -> watch::Receiver<Revision> {
        self.shared.head_sender.subscribe()
    }

    fn collect_garbage(&self) -> Result<GcStats, StoreError> {
        let mut state = self.shared.state.write();
        let horizon = self.shared.horizon(&state);
        let expired_before =
            ostiary_store::sub_duration(self.shared.now(), self.shared.options.gc_window);
        Ok(state.collect_garbage(horizon, expired_before))
    }

    fn read_record(
        &self,
        tenant: &TenantId,
        namespace: &RecordNamespace,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let state = self.shared.state.read();
        Ok(state.tenants.get(tenant).and_then(|tenant_state| {
            tenant_state
                .records
                .get(&encoding::record_key(namespace, key))
                .cloned()
        }))
    }

    fn scan_records(
        &self,
        tenant: &TenantId,
        namespace: &RecordNamespace,
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let state = self.shared.state.read();
        Ok(state
            .tenants
            .get(tenant)
            .map_or_else(Vec::new, |tenant_state| {
                tenant_state.scan_records(namespace, start, limit)
            }))
    }

    fn delete_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let _writer = self.shared.writer.lock();
        self.shared.state.write().tenants.remove(tenant);
        Ok(())
    }
}

/// A snapshot of one tenant at one revision.
#[derive(Debug)]
struct MemSnapshot {
    shared: Arc<Shared>,
    tenant: TenantId,
    revision: Revision,
    now: Timestamp,
}

impl Snapshot for MemSnapshot {
    fn revision(&self) -> Revision {
        self.revision
    }

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn now(&self) -> Timestamp {
        self.now
    }

    fn read_schema(&self) -> Result<Option<StoredSchema>, StoreError> {
        let state = self.shared.state.read();
        Ok(state
            .tenants
            .get(&self.tenant)
            .and_then(|tenant_state| tenant_state.schema_at(self.revision)))
    }

    fn read_resources(
        &self,
        query: &ResourceQuery<'_>,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> Result<usize, StoreError> {
        let state = self.shared.state.read();
        let Some(tenant_state) = state.tenants.get(&self.tenant) else {
            return Ok(0);
        };
        let view = state::View {
            revision: self.revision,
            now: self.now,
        };
        Ok(tenant_state.read_resources(view, query, page, out))
    }

    fn read_subjects(
        &self,
        query: &SubjectQuery<'_>,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> Result<usize, StoreError> {
        let state = self.shared.state.read();
        let Some(tenant_state) = state.tenants.get(&self.tenant) else {
            return Ok(0);
        };
        let view = state::View {
            revision: self.revision,
            now: self.now,
        };
        Ok(tenant_state.read_subjects(view, query, page, out))
    }

    fn read_filtered(
        &self,
        filter: &RelationshipFilter,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> Result<usize, StoreError> {
        let state = self.shared.state.read();
        let Some(tenant_state) = state.tenants.get(&self.tenant) else {
            return Ok(0);
        };
        let view = state::View {
            revision: self.revision,
            now: self.now,
        };
        Ok(tenant_state.read_filtered(view, filter, page, out))
    }
}
