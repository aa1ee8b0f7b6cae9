//! End-to-end tests of the gRPC server: an in-process server on `127.0.0.1:0` over
//! `MemDatastore`, driven by the generated tonic clients.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: helpers outside `#[test]` functions fail loudly too"
)]

use std::sync::Arc;
use std::time::Duration;

use ostiary_engine::Engine;
use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::permissions_service_client::PermissionsServiceClient;
use ostiary_proto::authzed::api::v1::schema_service_client::SchemaServiceClient;
use ostiary_proto::authzed::api::v1::watch_service_client::WatchServiceClient;
use ostiary_server::{ServerConfig, ServerState, serve};
use ostiary_store::DatastoreOptions;
use ostiary_store_mem::MemDatastore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Request};

const KEY: &str = "test-key";

const SCHEMA: &str = "definition user {}\n\
definition folder {\n  relation viewer: user\n  permission view = viewer\n}\n\
definition document {\n  relation parent: folder\n  relation viewer: user\n  permission view = viewer + parent->view\n}\n";

/// A running server and a way to stop it.
struct TestServer {
    channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestServer {
    async fn start_with(config: ServerConfig) -> Self {
        Self::start_on(config, DatastoreOptions::default()).await
    }

    async fn start_on(config: ServerConfig, options: DatastoreOptions) -> Self {
        let store = Arc::new(MemDatastore::new(options));
        let state = Arc::new(
            ServerState::new(store, Engine::default(), config, vec![KEY.to_owned()]).unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve(listener, state, async {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self {
            channel,
            stop: Some(stop),
            handle,
        }
    }

    async fn start() -> Self {
        Self::start_with(ServerConfig::default()).await
    }

    fn permissions(&self) -> PermissionsServiceClient<Channel> {
        PermissionsServiceClient::new(self.channel.clone())
    }

    fn schema(&self) -> SchemaServiceClient<Channel> {
        SchemaServiceClient::new(self.channel.clone())
    }

    fn watch(&self) -> WatchServiceClient<Channel> {
        WatchServiceClient::new(self.channel.clone())
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("server stops")
            .unwrap()
            .unwrap();
    }
}

/// A request carrying the bearer key.
fn authed<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    request
}

fn object(text: &str) -> pb::ObjectReference {
    let (object_type, object_id) = text.split_once(':').unwrap();
    pb::ObjectReference {
        object_type: object_type.into(),
        object_id: object_id.into(),
    }
}

fn subject(text: &str) -> pb::SubjectReference {
    let (object_text, relation) = text.split_once('#').unwrap_or((text, ""));
    pb::SubjectReference {
        object: Some(object(object_text)),
        optional_relation: relation.into(),
    }
}

/// `doc:1#viewer@user:alice` as a wire relationship.
fn rel(text: &str) -> pb::Relationship {
    let (resource, rest) = text.split_once('#').unwrap();
    let (relation, subject_text) = rest.split_once('@').unwrap();
    pb::Relationship {
        resource: Some(object(resource)),
        relation: relation.into(),
        subject: Some(subject(subject_text)),
        optional_caveat: None,
        optional_expires_at: None,
    }
}

fn update(operation: pb::relationship_update::Operation, text: &str) -> pb::RelationshipUpdate {
    pb::RelationshipUpdate {
        operation: operation as i32,
        relationship: Some(rel(text)),
    }
}

fn touch(text: &str) -> pb::RelationshipUpdate {
    update(pb::relationship_update::Operation::Touch, text)
}

fn fresh(token: &pb::ZedToken) -> Option<pb::Consistency> {
    Some(pb::Consistency {
        requirement: Some(pb::consistency::Requirement::AtLeastAsFresh(token.clone())),
    })
}

fn fully_consistent() -> Option<pb::Consistency> {
    Some(pb::Consistency {
        requirement: Some(pb::consistency::Requirement::FullyConsistent(true)),
    })
}

async fn write_schema(server: &TestServer) -> pb::ZedToken {
    server
        .schema()
        .write_schema(authed(pb::WriteSchemaRequest {
            schema: SCHEMA.into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .written_at
        .unwrap()
}

async fn write(
    server: &TestServer,
    updates: Vec<pb::RelationshipUpdate>,
) -> Result<pb::ZedToken, tonic::Status> {
    server
        .permissions()
        .write_relationships(authed(pb::WriteRelationshipsRequest {
            updates,
            optional_preconditions: Vec::new(),
            optional_transaction_metadata: None,
        }))
        .await
        .map(|response| response.into_inner().written_at.unwrap())
}

async fn check(
    server: &TestServer,
    consistency: Option<pb::Consistency>,
    resource: &str,
    permission: &str,
    subject_text: &str,
) -> Result<pb::check_permission_response::Permissionship, tonic::Status> {
    let response = server
        .permissions()
        .check_permission(authed(pb::CheckPermissionRequest {
            consistency,
            resource: Some(object(resource)),
            permission: permission.into(),
            subject: Some(subject(subject_text)),
            context: None,
            with_tracing: false,
        }))
        .await?
        .into_inner();
    assert!(response.checked_at.is_some());
    Ok(pb::check_permission_response::Permissionship::try_from(response.permissionship).unwrap())
}

/// All relationships, as text, read fully consistently.
async fn read_all(server: &TestServer, resource_type: &str) -> Vec<String> {
    let mut stream = server
        .permissions()
        .read_relationships(authed(pb::ReadRelationshipsRequest {
            consistency: fully_consistent(),
            relationship_filter: Some(pb::RelationshipFilter {
                resource_type: resource_type.into(),
                ..Default::default()
            }),
            optional_limit: 0,
            optional_cursor: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(response) = stream.message().await.unwrap() {
        out.push(text(&response.relationship.unwrap()));
    }
    out
}

fn text(rel: &pb::Relationship) -> String {
    let resource = rel.resource.as_ref().unwrap();
    let subject = rel.subject.as_ref().unwrap();
    let subject_object = subject.object.as_ref().unwrap();
    let mut out = format!(
        "{}:{}#{}@{}:{}",
        resource.object_type,
        resource.object_id,
        rel.relation,
        subject_object.object_type,
        subject_object.object_id
    );
    if !subject.optional_relation.is_empty() {
        out.push('#');
        out.push_str(&subject.optional_relation);
    }
    out
}

use pb::check_permission_response::Permissionship as P;

#[tokio::test]
async fn check_allows_and_denies_and_the_new_enemy_is_denied() {
    let server = TestServer::start().await;
    write_schema(&server).await;
    let token = write(
        &server,
        vec![
            touch("folder:secret#viewer@user:alice"),
            touch("document:readme#viewer@user:bob"),
        ],
    )
    .await
    .unwrap();
    let consistency = fresh(&token);
    assert_eq!(
        check(
            &server,
            consistency.clone(),
            "document:readme",
            "view",
            "user:bob"
        )
        .await
        .unwrap(),
        P::HasPermission
    );
    assert_eq!(
        check(
            &server,
            consistency.clone(),
            "document:readme",
            "view",
            "user:alice"
        )
        .await
        .unwrap(),
        P::NoPermission
    );

    // New enemy: remove alice from the folder, then put a secret document in it. A check at
    // the second write's token must see both writes and deny.
    write(
        &server,
        vec![update(
            pb::relationship_update::Operation::Delete,
            "folder:secret#viewer@user:alice",
        )],
    )
    .await
    .unwrap();
    let token = write(&server, vec![touch("document:plan#parent@folder:secret")])
        .await
        .unwrap();
    assert_eq!(
        check(
            &server,
            fresh(&token),
            "document:plan",
            "view",
            "user:alice"
        )
        .await
        .unwrap(),
        P::NoPermission
    );
    let exact = Some(pb::Consistency {
        requirement: Some(pb::consistency::Requirement::AtExactSnapshot(token.clone())),
    });
    assert_eq!(
        check(&server, exact, "document:plan", "view", "user:alice")
            .await
            .unwrap(),
        P::NoPermission
    );

    // CheckBulk answers each item, errors per item.
    let bulk = server
        .permissions()
        .check_bulk_permissions(authed(pb::CheckBulkPermissionsRequest {
            consistency: fresh(&token),
            items: vec![
                pb::CheckBulkPermissionsRequestItem {
                    resource: Some(object("document:readme")),
                    permission: "view".into(),
                    subject: Some(subject("user:bob")),
                    context: None,
                },
                pb::CheckBulkPermissionsRequestItem {
                    resource: Some(object("document:readme")),
                    permission: "nope".into(),
                    subject: Some(subject("user:bob")),
                    context: None,
                },
            ],
            with_tracing: false,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bulk.pairs.len(), 2);
    match bulk.pairs[0].response.as_ref().unwrap() {
        pb::check_bulk_permissions_pair::Response::Item(item) => {
            assert_eq!(item.permissionship, P::HasPermission as i32);
        }
        other => panic!("unexpected {other:?}"),
    }
    match bulk.pairs[1].response.as_ref().unwrap() {
        pb::check_bulk_permissions_pair::Response::Error(status) => {
            assert_eq!(status.code, Code::FailedPrecondition as i32);
        }
        other => panic!("unexpected {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn lookups_expand_and_read_with_cursors() {
    let server = TestServer::start().await;
    write_schema(&server).await;
    let mut updates = vec![touch("folder:f#viewer@user:alice")];
    for idx in 0..5 {
        updates.push(touch(&format!("document:d{idx}#parent@folder:f")));
    }
    updates.push(touch("document:other#viewer@user:bob"));
    let token = write(&server, updates).await.unwrap();

    let mut stream = server
        .permissions()
        .lookup_resources(authed(pb::LookupResourcesRequest {
            consistency: fresh(&token),
            resource_object_type: "document".into(),
            permission: "view".into(),
            subject: Some(subject("user:alice")),
            context: None,
            optional_limit: 0,
            optional_cursor: None,
            with_debug: false,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut ids = Vec::new();
    while let Some(response) = stream.message().await.unwrap() {
        ids.push(response.resource_object_id);
    }
    assert_eq!(ids, ["d0", "d1", "d2", "d3", "d4"]);

    // LookupResources pages with a limit and the last result's cursor.
    let mut cursor = None;
    let mut paged = Vec::new();
    loop {
        let mut stream = server
            .permissions()
            .lookup_resources(authed(pb::LookupResourcesRequest {
                consistency: fresh(&token),
                resource_object_type: "document".into(),
                permission: "view".into(),
                subject: Some(subject("user:alice")),
                context: None,
                optional_limit: 2,
                optional_cursor: cursor.take(),
                with_debug: false,
            }))
            .await
            .unwrap()
            .into_inner();
        let mut n_page = 0;
        while let Some(response) = stream.message().await.unwrap() {
            n_page += 1;
            paged.push(response.resource_object_id);
            cursor = response.after_result_cursor.or(cursor);
        }
        if n_page == 0 || cursor.is_none() {
            break;
        }
    }
    assert_eq!(paged, ["d0", "d1", "d2", "d3", "d4"]);

    // ReadRelationships with a limit and cursors sees every relationship once.
    let mut cursor = None;
    let mut read = Vec::new();
    loop {
        let mut stream = server
            .permissions()
            .read_relationships(authed(pb::ReadRelationshipsRequest {
                consistency: fresh(&token),
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "document".into(),
                    ..Default::default()
                }),
                optional_limit: 4,
                optional_cursor: cursor.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        let mut n_page = 0;
        while let Some(response) = stream.message().await.unwrap() {
            n_page += 1;
            read.push(text(&response.relationship.unwrap()));
            cursor = response.after_result_cursor;
        }
        if n_page < 4 {
            break;
        }
    }
    assert_eq!(read.len(), 6, "{read:?}");
    assert_eq!(read[0], "document:d0#parent@folder:f");
    assert_eq!(read[5], "document:other#viewer@user:bob");

    // LookupSubjects and Expand.
    let mut stream = server
        .permissions()
        .lookup_subjects(authed(pb::LookupSubjectsRequest {
            consistency: fresh(&token),
            resource: Some(object("document:d3")),
            permission: "view".into(),
            subject_object_type: "user".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let mut subjects = Vec::new();
    while let Some(response) = stream.message().await.unwrap() {
        subjects.push(response.subject.unwrap().subject_object_id);
    }
    assert_eq!(subjects, ["alice"]);
    let expanded = server
        .permissions()
        .expand_permission_tree(authed(pb::ExpandPermissionTreeRequest {
            consistency: fresh(&token),
            resource: Some(object("document:d3")),
            permission: "view".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let root = expanded.tree_root.unwrap();
    assert_eq!(root.expanded_relation, "view");
    assert!(matches!(
        root.tree_type,
        Some(pb::permission_relationship_tree::TreeType::Intermediate(_))
    ));

    // Export sees everything; import loads a batch.
    let mut stream = server
        .permissions()
        .export_bulk_relationships(authed(pb::ExportBulkRelationshipsRequest {
            consistency: fresh(&token),
            optional_limit: 3,
            optional_cursor: None,
            optional_relationship_filter: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut n_exported = 0;
    while let Some(response) = stream.message().await.unwrap() {
        assert!(response.relationships.len() <= 3);
        n_exported += response.relationships.len();
    }
    assert_eq!(n_exported, 7);
    let batches = vec![
        pb::ImportBulkRelationshipsRequest {
            relationships: vec![rel("document:i1#viewer@user:carol")],
        },
        pb::ImportBulkRelationshipsRequest {
            relationships: vec![rel("document:i2#viewer@user:carol")],
        },
    ];
    let imported = server
        .permissions()
        .import_bulk_relationships(authed(tokio_stream::iter(batches)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.num_loaded, 2);
    assert_eq!(read_all(&server, "document").await.len(), 8);
    server.stop().await;
}

#[tokio::test]
async fn delete_honours_preconditions_and_limits() {
    let server = TestServer::start().await;
    write_schema(&server).await;
    write(
        &server,
        vec![
            touch("document:a#viewer@user:alice"),
            touch("document:b#viewer@user:alice"),
            touch("document:c#viewer@user:alice"),
        ],
    )
    .await
    .unwrap();
    let filter = Some(pb::RelationshipFilter {
        resource_type: "document".into(),
        optional_relation: "viewer".into(),
        ..Default::default()
    });
    let failing = pb::Precondition {
        operation: pb::precondition::Operation::MustMatch as i32,
        filter: Some(pb::RelationshipFilter {
            resource_type: "folder".into(),
            ..Default::default()
        }),
    };
    let err = server
        .permissions()
        .delete_relationships(authed(pb::DeleteRelationshipsRequest {
            relationship_filter: filter.clone(),
            optional_preconditions: vec![failing],
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(read_all(&server, "document").await.len(), 3);

    // A limit below the match count without partial deletion deletes nothing.
    let err = server
        .permissions()
        .delete_relationships(authed(pb::DeleteRelationshipsRequest {
            relationship_filter: filter.clone(),
            optional_limit: 2,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(read_all(&server, "document").await.len(), 3);

    let partial = server
        .permissions()
        .delete_relationships(authed(pb::DeleteRelationshipsRequest {
            relationship_filter: filter.clone(),
            optional_limit: 2,
            optional_allow_partial_deletions: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(partial.relationships_deleted_count, 2);
    assert_eq!(
        partial.deletion_progress,
        pb::delete_relationships_response::DeletionProgress::Partial as i32
    );
    let passing = pb::Precondition {
        operation: pb::precondition::Operation::MustMatch as i32,
        filter: filter.clone(),
    };
    let rest = server
        .permissions()
        .delete_relationships(authed(pb::DeleteRelationshipsRequest {
            relationship_filter: filter,
            optional_preconditions: vec![passing],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.relationships_deleted_count, 1);
    assert!(read_all(&server, "document").await.is_empty());
    server.stop().await;
}

async fn next_update(stream: &mut tonic::Streaming<pb::WatchResponse>) -> pb::WatchResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a watch response in time")
        .unwrap()
        .expect("the stream stays open")
}

#[tokio::test]
async fn watch_streams_writes_and_resumes_from_a_token() {
    let server = TestServer::start().await;
    write_schema(&server).await;
    let mut stream = server
        .watch()
        .watch(authed(pb::WatchRequest {
            optional_object_types: vec!["document".into()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let first = write(&server, vec![touch("document:a#viewer@user:alice")])
        .await
        .unwrap();
    // A change to another type is filtered out.
    write(&server, vec![touch("folder:f#viewer@user:alice")])
        .await
        .unwrap();
    let second = write(&server, vec![touch("document:b#viewer@user:bob")])
        .await
        .unwrap();

    let response = next_update(&mut stream).await;
    assert_eq!(response.changes_through.as_ref(), Some(&first));
    assert_eq!(
        text(response.updates[0].relationship.as_ref().unwrap()),
        "document:a#viewer@user:alice"
    );
    let response = next_update(&mut stream).await;
    assert_eq!(response.changes_through.as_ref(), Some(&second));
    assert_eq!(
        text(response.updates[0].relationship.as_ref().unwrap()),
        "document:b#viewer@user:bob"
    );
    drop(stream);

    // Resume after the first change: the second comes again, nothing before it.
    let mut resumed = server
        .watch()
        .watch(authed(pb::WatchRequest {
            optional_object_types: vec!["document".into()],
            optional_start_cursor: Some(first.clone()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let response = next_update(&mut resumed).await;
    assert_eq!(response.changes_through.as_ref(), Some(&second));
    assert_eq!(response.updates.len(), 1);
    let deleted = write(
        &server,
        vec![update(
            pb::relationship_update::Operation::Delete,
            "document:a#viewer@user:alice",
        )],
    )
    .await
    .unwrap();
    let response = next_update(&mut resumed).await;
    assert_eq!(response.changes_through.as_ref(), Some(&deleted));
    assert_eq!(
        response.updates[0].operation,
        pb::relationship_update::Operation::Delete as i32
    );

    // Shutdown ends the open stream instead of hanging.
    server.stop().await;
    let end = tokio::time::timeout(Duration::from_secs(10), resumed.message())
        .await
        .expect("stream ends");
    assert!(!matches!(end, Ok(Some(_))), "{end:?}");
}

#[tokio::test]
async fn bad_input_gets_the_right_code_and_changes_nothing() {
    let server = TestServer::start_with(ServerConfig {
        max_updates_per_write: 3,
        ..ServerConfig::default()
    })
    .await;
    write_schema(&server).await;
    let token = write(&server, vec![touch("document:a#viewer@user:alice")])
        .await
        .unwrap();

    let garbled = pb::ZedToken {
        token: format!("{}x", token.token),
    };
    let err = check(&server, fresh(&garbled), "document:a", "view", "user:alice")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("consistency.at_least_as_fresh"),
        "{}",
        err.message()
    );

    let err = check(&server, fully_consistent(), "nope:a", "view", "user:alice")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("`nope`"), "{}", err.message());

    let cases: Vec<(Vec<pb::RelationshipUpdate>, Code, &str)> = vec![
        (
            vec![
                touch("document:b#viewer@user:bob"),
                touch("nope:x#viewer@user:bob"),
            ],
            Code::FailedPrecondition,
            "`updates[1].relationship`: object definition `nope` not found",
        ),
        (
            vec![touch("document:b#owner@user:bob")],
            Code::FailedPrecondition,
            "relation/permission `owner` not found",
        ),
        (
            vec![touch("document:b#view@user:bob")],
            Code::InvalidArgument,
            "cannot write a relationship to permission `view`",
        ),
        (
            vec![touch("document:b#viewer@folder:f")],
            Code::InvalidArgument,
            "subjects of type `folder` are not allowed",
        ),
        (
            vec![touch("document:bad id#viewer@user:bob")],
            Code::InvalidArgument,
            "`updates[0].relationship.resource.object_id`",
        ),
        (
            (0..4)
                .map(|idx| touch(&format!("document:n{idx}#viewer@user:bob")))
                .collect(),
            Code::InvalidArgument,
            "above the maximum of 3",
        ),
        (
            vec![
                touch("document:b#viewer@user:bob"),
                touch("document:b#viewer@user:bob"),
            ],
            Code::InvalidArgument,
            "more than one update",
        ),
        (
            vec![update(
                pb::relationship_update::Operation::Create,
                "document:a#viewer@user:alice",
            )],
            Code::AlreadyExists,
            "already exists",
        ),
    ];
    for (updates, code, message) in cases {
        let err = write(&server, updates).await.unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
        assert!(
            err.message().contains(message),
            "{} does not contain {message}",
            err.message()
        );
    }
    assert_eq!(
        read_all(&server, "document").await,
        ["document:a#viewer@user:alice"]
    );

    // Schema errors: diagnostics are InvalidArgument; orphaning data is FailedPrecondition.
    let err = server
        .schema()
        .write_schema(authed(pb::WriteSchemaRequest {
            schema: "definition {".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let orphaning = "definition user {}\n\
definition folder {\n  relation viewer: user\n  permission view = viewer\n}\n\
definition document {\n  relation parent: folder\n  permission view = parent->view\n}\n";
    let err = server
        .schema()
        .write_schema(authed(pb::WriteSchemaRequest {
            schema: orphaning.into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(
        err.message()
            .contains("cannot delete relation `viewer` in object definition `document`"),
        "{}",
        err.message()
    );
    let read = server
        .schema()
        .read_schema(authed(pb::ReadSchemaRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.schema_text, SCHEMA);
    server.stop().await;
}

#[tokio::test]
async fn requests_without_the_key_are_unauthenticated() {
    let server = TestServer::start().await;
    let err = server
        .schema()
        .read_schema(Request::new(pb::ReadSchemaRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut request = Request::new(pb::ReadSchemaRequest {});
    request
        .metadata_mut()
        .insert("authorization", "Bearer wrong".parse().unwrap());
    let err = server.schema().read_schema(request).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // With the key, the request gets through (and finds no schema yet: NotFound, as SpiceDB).
    let err = server
        .schema()
        .read_schema(authed(pb::ReadSchemaRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    server.stop().await;
}

#[tokio::test]
async fn health_and_reflection_are_served_without_a_key() {
    let server = TestServer::start().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel.clone());
    let response = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "authzed.api.v1.PermissionsService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    server.stop().await;
}

#[tokio::test]
async fn exact_snapshots_outside_the_gc_window_are_out_of_range() {
    let clock = Arc::new(ostiary_store::ManualClock::new(
        ostiary_types::Timestamp::now(),
    ));
    let options = DatastoreOptions {
        gc_window: Duration::from_secs(3600),
        quantization: Duration::ZERO,
        clock: clock.clone(),
    };
    let server = TestServer::start_on(ServerConfig::default(), options).await;
    write_schema(&server).await;
    let old = write(&server, vec![touch("document:a#viewer@user:alice")])
        .await
        .unwrap();
    let exact = |token: &pb::ZedToken| {
        Some(pb::Consistency {
            requirement: Some(pb::consistency::Requirement::AtExactSnapshot(token.clone())),
        })
    };
    assert_eq!(
        check(&server, exact(&old), "document:a", "view", "user:alice")
            .await
            .unwrap(),
        P::HasPermission
    );
    // The horizon is the newest revision at least an hour old: after two more writes two
    // hours apart, `old` is behind it.
    clock.advance(Duration::from_secs(2 * 3600));
    let new = write(&server, vec![touch("document:b#viewer@user:alice")])
        .await
        .unwrap();
    clock.advance(Duration::from_secs(2 * 3600));
    write(&server, vec![touch("document:c#viewer@user:alice")])
        .await
        .unwrap();
    let err = check(&server, exact(&old), "document:a", "view", "user:alice")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{}", err.message());
    // An old token is still fine for at_least_as_fresh: a newer revision is used.
    assert_eq!(
        check(&server, fresh(&old), "document:b", "view", "user:alice")
            .await
            .unwrap(),
        P::HasPermission
    );
    assert_eq!(
        check(&server, exact(&new), "document:b", "view", "user:alice")
            .await
            .unwrap(),
        P::HasPermission
    );
    // Watch cannot resume from a revision that has left the window.
    let err = server
        .watch()
        .watch(authed(pb::WatchRequest {
            optional_start_cursor: Some(old),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{}", err.message());
    server.stop().await;
}

#[tokio::test]
async fn watch_sends_checkpoints_and_schema_updates_when_asked() {
    let server = TestServer::start().await;
    let mut stream = server
        .watch()
        .watch(authed(pb::WatchRequest {
            optional_update_kinds: vec![
                pb::WatchKind::IncludeRelationshipUpdates as i32,
                pb::WatchKind::IncludeSchemaUpdates as i32,
                pb::WatchKind::IncludeCheckpoints as i32,
            ],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let schema_token = write_schema(&server).await;
    let response = next_update(&mut stream).await;
    assert!(response.schema_updated);
    assert_eq!(response.changes_through.as_ref(), Some(&schema_token));
    let response = next_update(&mut stream).await;
    assert!(response.is_checkpoint);
    assert!(response.updates.is_empty());
    assert_eq!(response.changes_through.as_ref(), Some(&schema_token));
    let garbled = server
        .watch()
        .watch(authed(pb::WatchRequest {
            optional_start_cursor: Some(pb::ZedToken {
                token: "garbage".into(),
            }),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(garbled.code(), Code::InvalidArgument);
    server.stop().await;
}

/// A request message above `max_message_bytes` is refused with grpc-go's ResourceExhausted
/// (tonic alone answers OutOfRange), naming the limit, whether it is a unary request or a
/// later message of a client stream; messages within the limit still pass.
#[tokio::test]
async fn oversize_messages_are_resource_exhausted() {
    let server = TestServer::start_with(ServerConfig {
        max_message_bytes: 2048,
        ..ServerConfig::default()
    })
    .await;
    write_schema(&server).await;
    let small = vec![touch("document:a#viewer@user:alice")];
    write(&server, small).await.unwrap();
    let big: Vec<_> = (0..100)
        .map(|idx| touch(&format!("document:{idx}{}#viewer@user:bob", "x".repeat(40))))
        .collect();
    let err = write(&server, big).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    assert!(
        err.message()
            .starts_with("grpc: received message larger than max (")
            && err.message().ends_with(" vs. 2048)"),
        "{}",
        err.message()
    );

    // ImportBulkRelationships: the first batch fits, the second does not; nothing is loaded.
    let batch = |prefix: &str, n_rels: usize| pb::ImportBulkRelationshipsRequest {
        relationships: (0..n_rels)
            .map(|idx| rel(&format!("document:{prefix}{idx}#viewer@user:carol")))
            .collect(),
    };
    let batches = vec![batch("small", 2), batch("big", 200)];
    let err = server
        .permissions()
        .import_bulk_relationships(authed(tokio_stream::iter(batches)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    assert!(err.message().contains("vs. 2048)"), "{}", err.message());
    assert_eq!(
        read_all(&server, "document").await,
        ["document:a#viewer@user:alice"]
    );
    server.stop().await;
}

/// As in SpiceDB, WriteSchema with an empty schema clears the schema, unless relationships
/// still use a definition (FailedPrecondition naming it); afterwards ReadSchema is NotFound
/// and checks name the missing definition.
#[tokio::test]
async fn an_empty_schema_clears_the_schema_once_no_relationship_needs_it() {
    let server = TestServer::start().await;
    let write_text = |text: &'static str| {
        let mut client = server.schema();
        async move {
            client
                .write_schema(authed(pb::WriteSchemaRequest {
                    schema: text.into(),
                }))
                .await
        }
    };
    write_schema(&server).await;
    write(&server, vec![touch("document:a#viewer@user:alice")])
        .await
        .unwrap();
    for empty in ["", "  \n", "// nothing here\n"] {
        let err = write_text(empty).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        assert!(
            err.message()
                .contains("cannot delete object definition `document`"),
            "{}",
            err.message()
        );
    }
    let read = server
        .schema()
        .read_schema(authed(pb::ReadSchemaRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.schema_text, SCHEMA);

    write(
        &server,
        vec![update(
            pb::relationship_update::Operation::Delete,
            "document:a#viewer@user:alice",
        )],
    )
    .await
    .unwrap();
    let cleared = write_text("")
        .await
        .unwrap()
        .into_inner()
        .written_at
        .unwrap();
    let err = server
        .schema()
        .read_schema(authed(pb::ReadSchemaRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    let err = check(&server, fresh(&cleared), "document:a", "view", "user:alice")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(err.message().contains("`document`"), "{}", err.message());
    let err = write(&server, vec![touch("document:a#viewer@user:alice")])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());

    // A schema can be written again afterwards.
    write_schema(&server).await;
    write(&server, vec![touch("document:a#viewer@user:alice")])
        .await
        .unwrap();
    server.stop().await;
}

/// `user`, `user with cav` and `user with expiration` are distinct allowed types: dropping
/// one while relationships of it exist is refused (naming one), as SpiceDB refuses it.
#[tokio::test]
async fn schema_changes_keep_caveated_and_expiring_relationships_typed() {
    let server = TestServer::start().await;
    let schema = |viewer: &str| {
        format!(
            "use expiration\n\ncaveat cav(n int) {{\n  n > 0\n}}\n\ndefinition user {{}}\n\n\
             definition doc {{\n  relation viewer: {viewer}\n  permission view = viewer\n}}\n"
        )
    };
    let write_schema_text = |text: String| async {
        server
            .schema()
            .write_schema(authed(pb::WriteSchemaRequest { schema: text }))
            .await
    };
    write_schema_text(schema("user | user with cav | user with expiration"))
        .await
        .unwrap();
    let mut expiring = rel("doc:1#viewer@user:alice");
    expiring.optional_expires_at = Some(prost_types::Timestamp {
        seconds: 1_893_456_000,
        nanos: 0,
    });
    let mut caveated = rel("doc:1#viewer@user:bob");
    caveated.optional_caveat = Some(pb::ContextualizedCaveat {
        caveat_name: "cav".into(),
        context: None,
    });
    let plain = rel("doc:1#viewer@user:carol");
    let updates = [expiring, caveated, plain]
        .into_iter()
        .map(|relationship| pb::RelationshipUpdate {
            operation: pb::relationship_update::Operation::Touch as i32,
            relationship: Some(relationship),
        })
        .collect();
    write(&server, updates).await.unwrap();
    for (viewer, removed, witness) in [
        ("user | user with cav", "user with expiration", "user:alice"),
        ("user | user with expiration", "user with cav", "user:bob"),
        (
            "user with cav | user with expiration",
            "`user`",
            "user:carol",
        ),
    ] {
        let err = write_schema_text(schema(viewer)).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        assert!(
            err.message().contains(removed) && err.message().contains(witness),
            "{viewer}: {}",
            err.message()
        );
    }
    // Dropping a type no relationship uses is fine.
    write(
        &server,
        vec![update(
            pb::relationship_update::Operation::Delete,
            "doc:1#viewer@user:bob",
        )],
    )
    .await
    .unwrap();
    write_schema_text(schema("user | user with expiration"))
        .await
        .unwrap();
    server.stop().await;
}
