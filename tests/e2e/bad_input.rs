//! Bad input over the wire: unknown types and relations, malformed ids, oversize batches,
//! duplicate or existing relationships, failed preconditions, bad schemas, bad imports and
//! missing credentials each get SpiceDB's gRPC code and a message naming the culprit, and
//! the store is unchanged afterwards (read back in full to prove it), on both engines.

use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::permissions_service_client::PermissionsServiceClient;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;

use crate::harness::{
    BearerKey, Engine, Ostiary, SCHEMA, assert_status, at_least_as_fresh, create, delete,
    fully_consistent, object, rel, subject, touch,
};

#[tokio::test]
async fn bad_input_changes_nothing_on_memory() {
    bad_input(Engine::Memory).await;
}

#[tokio::test]
async fn bad_input_changes_nothing_on_rocksdb() {
    bad_input(Engine::Rocksdb).await;
}

/// A relationship update with raw (possibly invalid) parts.
fn raw_update(
    resource_type: &str,
    resource_id: &str,
    relation: &str,
    subject_type: &str,
    subject_id: &str,
) -> pb::RelationshipUpdate {
    pb::RelationshipUpdate {
        operation: pb::relationship_update::Operation::Touch as i32,
        relationship: Some(pb::Relationship {
            resource: Some(pb::ObjectReference {
                object_type: resource_type.to_owned(),
                object_id: resource_id.to_owned(),
            }),
            relation: relation.to_owned(),
            subject: Some(pb::SubjectReference {
                object: Some(pb::ObjectReference {
                    object_type: subject_type.to_owned(),
                    object_id: subject_id.to_owned(),
                }),
                optional_relation: String::new(),
            }),
            optional_caveat: None,
            optional_expires_at: None,
        }),
    }
}

async fn bad_input(engine: Engine) {
    let (server, _data) = Ostiary::start(engine).await;
    server.write_schema(SCHEMA).await;
    let seeded = server
        .write(vec![
            create("folder:f#viewer@user:alice"),
            create("document:d#parent@folder:f"),
            create("document:d#banned@user:eve"),
        ])
        .await
        .unwrap();
    let before = server.dump().await;
    assert_eq!(before.relationships.len(), 3);
    let valid = || touch("document:new#viewer@user:bob");

    // Each refused write carries a valid update first: the write is all or nothing.
    let refused_writes: Vec<(Vec<pb::RelationshipUpdate>, Code, &str)> = vec![
        (
            vec![valid(), touch("widget:w#viewer@user:bob")],
            Code::FailedPrecondition,
            "object definition `widget` not found",
        ),
        (
            vec![valid(), touch("document:d#owner@user:bob")],
            Code::FailedPrecondition,
            "relation/permission `owner` not found under definition `document`",
        ),
        (
            vec![valid(), touch("document:d#view@user:bob")],
            Code::InvalidArgument,
            "permission `view`",
        ),
        (
            vec![valid(), touch("document:d#parent@user:bob")],
            Code::InvalidArgument,
            "subjects of type `user` are not allowed on relation `document#parent`",
        ),
        (
            vec![
                valid(),
                raw_update("document", "has space", "viewer", "user", "bob"),
            ],
            Code::InvalidArgument,
            "updates[1].relationship",
        ),
        (
            vec![valid(), raw_update("document", "", "viewer", "user", "bob")],
            Code::InvalidArgument,
            "updates[1].relationship",
        ),
        (
            vec![
                valid(),
                raw_update("Document", "x", "viewer", "user", "bob"),
            ],
            Code::InvalidArgument,
            "updates[1].relationship",
        ),
        (
            vec![
                valid(),
                raw_update("document", "x", "viewer", "user", "b\u{e9}b"),
            ],
            Code::InvalidArgument,
            "updates[1].relationship",
        ),
        (
            vec![valid(), raw_update("document", "x", "", "user", "bob")],
            Code::InvalidArgument,
            "updates[1].relationship",
        ),
        (
            vec![valid(), create("folder:f#viewer@user:alice")],
            Code::AlreadyExists,
            "folder:f#viewer@user:alice",
        ),
        (
            vec![valid(), delete("document:new#viewer@user:bob")],
            Code::InvalidArgument,
            "document:new#viewer@user:bob",
        ),
        (
            (0..1001)
                .map(|idx| touch(&format!("document:n{idx}#viewer@user:bob")))
                .collect(),
            Code::InvalidArgument,
            "1001",
        ),
    ];
    for (updates, code, needle) in refused_writes {
        let res = server.write(updates).await;
        assert_status(res, code, needle);
        assert_eq!(
            server.dump().await,
            before,
            "a refused write (`{needle}`) changed the store"
        );
    }

    // A failed precondition refuses the whole write.
    let res = server
        .permissions()
        .write_relationships(pb::WriteRelationshipsRequest {
            updates: vec![valid()],
            optional_preconditions: vec![pb::Precondition {
                operation: pb::precondition::Operation::MustMatch as i32,
                filter: Some(pb::RelationshipFilter {
                    resource_type: "folder".to_owned(),
                    optional_resource_id: "missing".to_owned(),
                    ..Default::default()
                }),
            }],
            optional_transaction_metadata: None,
        })
        .await;
    assert_status(res, Code::FailedPrecondition, "");
    // A delete without a resource type, and a delete with a failed precondition.
    let res = server
        .permissions()
        .delete_relationships(pb::DeleteRelationshipsRequest {
            relationship_filter: Some(pb::RelationshipFilter::default()),
            ..Default::default()
        })
        .await;
    assert_status(res, Code::InvalidArgument, "relationship_filter");
    let res = server
        .permissions()
        .delete_relationships(pb::DeleteRelationshipsRequest {
            relationship_filter: Some(pb::RelationshipFilter {
                resource_type: "document".to_owned(),
                ..Default::default()
            }),
            optional_preconditions: vec![pb::Precondition {
                operation: pb::precondition::Operation::MustNotMatch as i32,
                filter: Some(pb::RelationshipFilter {
                    resource_type: "folder".to_owned(),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        })
        .await;
    assert_status(res, Code::FailedPrecondition, "");
    assert_eq!(server.dump().await, before);

    // An import with one bad relationship in its second message imports nothing.
    let batches = vec![
        pb::ImportBulkRelationshipsRequest {
            relationships: (0..50)
                .map(|idx| rel(&format!("document:imp{idx}#viewer@user:bob")))
                .collect(),
        },
        pb::ImportBulkRelationshipsRequest {
            relationships: vec![
                rel("document:imp50#viewer@user:bob"),
                rel("gadget:g#viewer@user:bob"),
            ],
        },
    ];
    let res = server
        .permissions()
        .import_bulk_relationships(tokio_stream::iter(batches))
        .await;
    assert_status(res, Code::FailedPrecondition, "gadget");
    // Importing a relationship that already exists fails as a CREATE does.
    let res = server
        .permissions()
        .import_bulk_relationships(tokio_stream::iter(vec![
            pb::ImportBulkRelationshipsRequest {
                relationships: vec![
                    rel("document:imp0#viewer@user:bob"),
                    rel("folder:f#viewer@user:alice"),
                ],
            },
        ]))
        .await;
    assert_status(res, Code::AlreadyExists, "folder:f#viewer@user:alice");
    assert_eq!(server.dump().await, before);

    // Schemas: a syntax error, and a change that would orphan `banned` relationships.
    let res = server
        .schema()
        .write_schema(pb::WriteSchemaRequest {
            schema: "definition user {\n  relation broken: \n}\n".to_owned(),
        })
        .await;
    assert_status(res, Code::InvalidArgument, "");
    let without_banned = SCHEMA
        .replace("\trelation banned: user\n", "")
        .replace(" - banned", "");
    let res = server
        .schema()
        .write_schema(pb::WriteSchemaRequest {
            schema: without_banned,
        })
        .await;
    assert_status(res, Code::FailedPrecondition, "banned");
    assert_eq!(server.dump().await, before);

    // Oversize and malformed reads.
    let item = |resource: &str| pb::CheckBulkPermissionsRequestItem {
        resource: Some(object(resource)),
        permission: "view".to_owned(),
        subject: Some(subject("user:alice")),
        context: None,
    };
    let res = server
        .permissions()
        .check_bulk_permissions(pb::CheckBulkPermissionsRequest {
            consistency: fully_consistent(),
            items: (0..1001)
                .map(|idx| item(&format!("document:c{idx}")))
                .collect(),
            with_tracing: false,
        })
        .await;
    assert_status(res, Code::InvalidArgument, "1001");
    let res = server
        .permissions()
        .read_relationships(pb::ReadRelationshipsRequest {
            consistency: fully_consistent(),
            relationship_filter: Some(pb::RelationshipFilter {
                resource_type: "document".to_owned(),
                ..Default::default()
            }),
            optional_limit: 1001,
            optional_cursor: None,
        })
        .await;
    assert_status(res, Code::InvalidArgument, "optional_limit");
    let res = server
        .check(at_least_as_fresh(&seeded), "widget:w", "view", "user:alice")
        .await;
    assert_status(res, Code::FailedPrecondition, "widget");
    let res = server
        .check(
            at_least_as_fresh(&seeded),
            "document:d",
            "edit",
            "user:alice",
        )
        .await;
    assert_status(res, Code::FailedPrecondition, "edit");
    let res = server
        .check(
            at_least_as_fresh(&seeded),
            "document:bad id",
            "view",
            "user:alice",
        )
        .await;
    assert_status(res, Code::InvalidArgument, "resource");
    let res = server
        .check(at_least_as_fresh(&seeded), "document:d", "view", "user:")
        .await;
    assert_status(res, Code::InvalidArgument, "subject");

    // A message above the 4 MiB limit is refused before it is decoded.
    let huge_id = "x".repeat(1024);
    let huge: Vec<_> = (0..5000)
        .map(|idx| touch(&format!("document:{idx}{huge_id}#viewer@user:bob")))
        .collect();
    let res = server.write(huge).await;
    // ResourceExhausted naming the limit, in grpc-go's words ("grpc: received message larger
    // than max (N vs. 4194304)"), as SpiceDB answers.
    assert_status(res, Code::ResourceExhausted, "vs. 4194304)");

    // Credentials: none, and a wrong key.
    let mut anonymous = PermissionsServiceClient::new(server.channel());
    let res = anonymous
        .write_relationships(pb::WriteRelationshipsRequest {
            updates: vec![valid()],
            ..Default::default()
        })
        .await;
    assert_status(res, Code::Unauthenticated, "authorization");
    let mut wrong_key = PermissionsServiceClient::new(InterceptedService::new(
        server.channel(),
        BearerKey::new("not-the-key"),
    ));
    let res = wrong_key
        .write_relationships(pb::WriteRelationshipsRequest {
            updates: vec![valid()],
            ..Default::default()
        })
        .await;
    assert_status(res, Code::Unauthenticated, "invalid token");

    assert_eq!(server.dump().await, before, "the store is unchanged");
}
