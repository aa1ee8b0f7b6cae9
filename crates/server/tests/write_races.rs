//! A WriteSchema that commits between the validation of a WriteRelationships (or
//! ImportBulkRelationships) and its write transaction. The datastore wrapper below makes the
//! race deterministic: armed with a schema, it commits that schema just before the next write
//! transaction starts, exactly where a concurrent WriteSchema would slip in.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: helpers outside `#[test]` functions fail loudly too"
)]

use std::sync::{Arc, Mutex};

use ostiary_engine::Engine;
use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::permissions_service_client::PermissionsServiceClient;
use ostiary_proto::authzed::api::v1::schema_service_client::SchemaServiceClient;
use ostiary_server::{ServerConfig, ServerState, serve};
use ostiary_store::{
    Datastore, DatastoreExt, DatastoreOptions, GcStats, Record, RecordNamespace, RevisionChanges,
    Snapshot, StoreError, TxnBody, watch,
};
use ostiary_store_mem::MemDatastore;
use ostiary_types::{Revision, TenantId};
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic::{Code, Request};

const KEY: &str = "test-key";

const WITH_VIEWER: &str = "definition user {}\n\
definition document {\n  relation viewer: user\n  permission view = viewer\n}\n";

/// `document` without its `viewer` relation.
const WITHOUT_VIEWER: &str = "definition user {}\n\
definition document {\n  relation owner: user\n  permission view = owner\n}\n";

/// `WITH_VIEWER` plus an unrelated definition: writes of `document#viewer` stay valid.
const WITH_VIEWER_AND_FOLDER: &str = "definition user {}\n\
definition folder {}\n\
definition document {\n  relation viewer: user\n  permission view = viewer\n}\n";

/// A [`MemDatastore`] that, when armed, writes a schema right before the next write
/// transaction.
#[derive(Debug)]
struct SchemaSwapOnWrite {
    inner: MemDatastore,
    armed: Mutex<Option<&'static str>>,
}

impl SchemaSwapOnWrite {
    fn arm(&self, schema: &'static str) {
        *self.armed.lock().unwrap() = Some(schema);
    }
}

impl Datastore for SchemaSwapOnWrite {
    fn head_revision(&self) -> Result<Revision, StoreError> {
        self.inner.head_revision()
    }

    fn optimized_revision(&self) -> Result<Revision, StoreError> {
        self.inner.optimized_revision()
    }

    fn check_revision(&self, revision: Revision) -> Result<(), StoreError> {
        self.inner.check_revision(revision)
    }

    fn snapshot(
        &self,
        tenant: &TenantId,
        revision: Revision,
    ) -> Result<Arc<dyn Snapshot>, StoreError> {
        self.inner.snapshot(tenant, revision)
    }

    fn read_write(
        &self,
        tenant: &TenantId,
        body: &mut TxnBody<'_>,
    ) -> Result<Revision, StoreError> {
        let armed = self.armed.lock().unwrap().take();
        if let Some(schema) = armed {
            self.inner.write_schema(tenant, schema)?;
        }
        self.inner.read_write(tenant, body)
    }

    fn changes_since(
        &self,
        tenant: &TenantId,
        after: Revision,
        max_revisions: usize,
    ) -> Result<Vec<RevisionChanges>, StoreError> {
        self.inner.changes_since(tenant, after, max_revisions)
    }

    fn subscribe(&self) -> watch::Receiver<Revision> {
        self.inner.subscribe()
    }

    fn collect_garbage(&self) -> Result<GcStats, StoreError> {
        self.inner.collect_garbage()
    }

    fn read_record(
        &self,
        tenant: &TenantId,
        namespace: &RecordNamespace,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.read_record(tenant, namespace, key)
    }

    fn scan_records(
        &self,
        tenant: &TenantId,
        namespace: &RecordNamespace,
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.inner.scan_records(tenant, namespace, start, limit)
    }

    fn delete_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        self.inner.delete_tenant(tenant)
    }
}

fn authed<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    request
}

fn rel(resource_id: &str) -> pb::Relationship {
    pb::Relationship {
        resource: Some(pb::ObjectReference {
            object_type: "document".into(),
            object_id: resource_id.into(),
        }),
        relation: "viewer".into(),
        subject: Some(pb::SubjectReference {
            object: Some(pb::ObjectReference {
                object_type: "user".into(),
                object_id: "alice".into(),
            }),
            optional_relation: String::new(),
        }),
        optional_caveat: None,
        optional_expires_at: None,
    }
}

fn touch(resource_id: &str) -> pb::WriteRelationshipsRequest {
    pb::WriteRelationshipsRequest {
        updates: vec![pb::RelationshipUpdate {
            operation: pb::relationship_update::Operation::Touch as i32,
            relationship: Some(rel(resource_id)),
        }],
        optional_preconditions: Vec::new(),
        optional_transaction_metadata: None,
    }
}

/// Starts a server over a fresh wrapped store; returns the store and a channel.
async fn start() -> (Arc<SchemaSwapOnWrite>, Channel) {
    let store = Arc::new(SchemaSwapOnWrite {
        inner: MemDatastore::new(DatastoreOptions::default()),
        armed: Mutex::new(None),
    });
    let state = Arc::new(
        ServerState::new(
            Arc::clone(&store) as Arc<dyn Datastore>,
            Engine::default(),
            ServerConfig::default(),
            vec![KEY.to_owned()],
        )
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, state, std::future::pending()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (store, channel)
}

async fn write_schema(channel: &Channel, schema: &str) {
    SchemaServiceClient::new(channel.clone())
        .write_schema(authed(pb::WriteSchemaRequest {
            schema: schema.into(),
        }))
        .await
        .unwrap();
}

async fn read_schema(channel: &Channel) -> String {
    SchemaServiceClient::new(channel.clone())
        .read_schema(authed(pb::ReadSchemaRequest {}))
        .await
        .unwrap()
        .into_inner()
        .schema_text
}

/// How many `document` relationships are stored, read at head.
async fn n_documents(channel: &Channel) -> usize {
    let mut stream = PermissionsServiceClient::new(channel.clone())
        .read_relationships(authed(pb::ReadRelationshipsRequest {
            consistency: Some(pb::Consistency {
                requirement: Some(pb::consistency::Requirement::FullyConsistent(true)),
            }),
            relationship_filter: Some(pb::RelationshipFilter {
                resource_type: "document".into(),
                ..Default::default()
            }),
            optional_limit: 0,
            optional_cursor: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut n_rels = 0;
    while stream.message().await.unwrap().is_some() {
        n_rels += 1;
    }
    n_rels
}

#[tokio::test]
async fn a_schema_change_before_the_write_transaction_is_validated_against() {
    let (store, channel) = start().await;
    let mut permissions = PermissionsServiceClient::new(channel.clone());
    write_schema(&channel, WITH_VIEWER).await;

    // The request is valid against the head schema, but `viewer` is gone by the time the
    // write transaction runs: the write must not commit a relationship the schema refuses.
    store.arm(WITHOUT_VIEWER);
    let err = permissions
        .write_relationships(authed(touch("a")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(err.message().contains("`viewer`"), "{}", err.message());
    assert_eq!(read_schema(&channel).await, WITHOUT_VIEWER);
    assert_eq!(n_documents(&channel).await, 0);

    // The same for a bulk import.
    write_schema(&channel, WITH_VIEWER).await;
    store.arm(WITHOUT_VIEWER);
    let err = permissions
        .import_bulk_relationships(authed(tokio_stream::iter([
            pb::ImportBulkRelationshipsRequest {
                relationships: vec![rel("b"), rel("c")],
            },
        ])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(err.message().contains("`viewer`"), "{}", err.message());
    assert_eq!(n_documents(&channel).await, 0);

    // A schema change that still allows the write lets it through.
    write_schema(&channel, WITH_VIEWER).await;
    store.arm(WITH_VIEWER_AND_FOLDER);
    permissions
        .write_relationships(authed(touch("d")))
        .await
        .unwrap();
    assert_eq!(read_schema(&channel).await, WITH_VIEWER_AND_FOLDER);
    assert_eq!(n_documents(&channel).await, 1);
}
