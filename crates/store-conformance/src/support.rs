//! Helpers shared by the cases: a datastore with a manual clock, and terse builders and
//! readers for relationships in their text form.

use std::sync::Arc;
use std::time::Duration;

use ostiary_store::{
    Datastore, DatastoreExt, DatastoreOptions, ManualClock, Page, RelationshipUpdate, Snapshot,
    StoreError,
};
use ostiary_types::{
    ObjectType, Relationship, RelationshipFilter, RelationshipKey, Revision, TenantId, Timestamp,
};

use crate::{Factory, Instance};

/// The instant every case's clock starts at (a multiple of every quantum used).
pub(crate) const START: &str = "2025-01-01T00:00:00Z";

/// A datastore under test with its clock and the tenant most cases use.
pub(crate) struct Ctx {
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) tenant: TenantId,
    instance: Instance,
}

impl Ctx {
    /// A fresh datastore with the default options and a manual clock at [`START`].
    pub(crate) fn new(factory: Factory<'_>) -> Self {
        Self::with(factory, |_| {})
    }

    /// A fresh datastore with options adjusted by `adjust`.
    pub(crate) fn with(factory: Factory<'_>, adjust: impl FnOnce(&mut DatastoreOptions)) -> Self {
        let clock = Arc::new(ManualClock::new(ts(START)));
        let mut options = DatastoreOptions {
            clock: clock.clone(),
            ..DatastoreOptions::default()
        };
        adjust(&mut options);
        Self {
            clock,
            tenant: TenantId::default_tenant(),
            instance: factory(options),
        }
    }

    pub(crate) fn store(&self) -> &dyn Datastore {
        self.instance.store().as_ref()
    }

    pub(crate) fn shared_store(&self) -> Arc<dyn Datastore> {
        Arc::clone(self.instance.store())
    }

    pub(crate) fn advance(&self, duration: Duration) {
        self.clock.advance(duration);
    }

    /// Writes `updates` in the default tenant.
    pub(crate) fn write(&self, updates: &[RelationshipUpdate]) -> Revision {
        self.store()
            .write_relationships(&self.tenant, &[], updates)
            .unwrap()
    }

    /// Touches every relationship in `texts` in one transaction.
    pub(crate) fn touch_all(&self, texts: &[&str]) -> Revision {
        let updates: Vec<RelationshipUpdate> = texts.iter().map(|text| touch(text)).collect();
        self.write(&updates)
    }

    pub(crate) fn snapshot(&self, revision: Revision) -> Arc<dyn Snapshot> {
        self.store().snapshot(&self.tenant, revision).unwrap()
    }

    pub(crate) fn head(&self) -> Revision {
        self.store().head_revision().unwrap()
    }

    /// Every relationship of the default tenant at `revision`, as text in resource order.
    pub(crate) fn all_at(&self, revision: Revision) -> Vec<String> {
        read_all(self.snapshot(revision).as_ref())
    }
}

pub(crate) fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

pub(crate) fn rel(text: &str) -> Relationship {
    text.parse().unwrap()
}

pub(crate) fn key(text: &str) -> RelationshipKey {
    text.parse().unwrap()
}

pub(crate) fn object_type(text: &str) -> ObjectType {
    ObjectType::new(text).unwrap()
}

pub(crate) fn create(text: &str) -> RelationshipUpdate {
    RelationshipUpdate::Create(rel(text))
}

pub(crate) fn touch(text: &str) -> RelationshipUpdate {
    RelationshipUpdate::Touch(rel(text))
}

pub(crate) fn delete(text: &str) -> RelationshipUpdate {
    RelationshipUpdate::Delete(key(text))
}

/// A filter on the resource type only.
pub(crate) fn type_filter(resource_type: &str) -> RelationshipFilter {
    RelationshipFilter {
        resource_type: Some(object_type(resource_type)),
        ..RelationshipFilter::default()
    }
}

pub(crate) fn texts(rels: &[Relationship]) -> Vec<String> {
    rels.iter().map(ToString::to_string).collect()
}

/// Every relationship a snapshot sees, through the filter read with the fewest
/// constraints (each case uses only a few types: these are all of them).
pub(crate) fn read_all(snapshot: &dyn Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for resource_type in ALL_TYPES {
        snapshot
            .read_filtered(&type_filter(resource_type), Page::ALL, &mut out)
            .unwrap();
    }
    texts(&out)
}

/// The resource types the cases use, in byte order.
pub(crate) const ALL_TYPES: &[&str] = &["counter", "doc", "doc/sub", "docs", "folder", "lock"];

/// Reads with `filter` at `snapshot`, all pages.
pub(crate) fn read_filter(snapshot: &dyn Snapshot, filter: &RelationshipFilter) -> Vec<String> {
    let mut out = Vec::new();
    snapshot.read_filtered(filter, Page::ALL, &mut out).unwrap();
    texts(&out)
}

/// Asserts that `res` failed with an error matching `pattern`, showing what it got.
macro_rules! assert_err {
    ($res:expr, $pattern:pat $(if $guard:expr)?) => {
        match $res {
            Err($pattern) $(if $guard)? => {}
            Err(other) => panic!("expected {}, got error {other:?}", stringify!($pattern)),
            Ok(_) => panic!("expected {}, got Ok", stringify!($pattern)),
        }
    };
}
pub(crate) use assert_err;

/// Returns the error of `res`, or panics.
pub(crate) fn unwrap_err<T>(res: Result<T, StoreError>) -> StoreError {
    match res {
        Ok(_) => panic!("expected an error, got Ok"),
        Err(err) => err,
    }
}
