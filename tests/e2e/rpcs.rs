//! The happy path of every RPC over the tonic client, once per datastore engine: schema
//! writes and reads, reflection and diffs, writes with preconditions, checks, bulk checks,
//! expand, both lookups (with cursors), reads (with cursors), deletes, bulk import, bulk
//! export resumed from a cursor, and a Watch that sees a write. Also the unauthenticated
//! health and reflection services that grpcurl-style tools use.

use std::collections::BTreeSet;

use ostiary_proto::authzed::api::v1 as pb;

use crate::harness::{
    Engine, Ostiary, SCHEMA, at_exact_snapshot, at_least_as_fresh, create, fully_consistent,
    object, rel, rel_text, subject, touch,
};

#[tokio::test]
async fn every_rpc_works_on_memory() {
    every_rpc(Engine::Memory).await;
}

#[tokio::test]
async fn every_rpc_works_on_rocksdb() {
    every_rpc(Engine::Rocksdb).await;
}

#[tokio::test]
async fn health_and_reflection_answer_without_a_key() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

    let (server, _data) = Ostiary::start(Engine::Memory).await;
    let mut health = HealthClient::new(server.channel());
    for service in [
        "",
        "authzed.api.v1.PermissionsService",
        "authzed.api.v1.SchemaService",
        "authzed.api.v1.WatchService",
    ] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "health of `{service}`");
    }

    let mut reflection = ServerReflectionClient::new(server.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response: ServerReflectionResponse = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list, got {response:?}");
    };
    let services: BTreeSet<_> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    // Exactly the served services: the API's descriptor set also describes
    // `authzed.api.v1.ExperimentalService`, which is not served and so not listed.
    let expected: BTreeSet<_> = [
        "authzed.api.v1.PermissionsService",
        "authzed.api.v1.SchemaService",
        "authzed.api.v1.WatchService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "ostiary.admin.v1.AuditService",
        "ostiary.admin.v1.TenantService",
        "ostiary.admin.v1.TokenService",
    ]
    .into_iter()
    .map(ToOwned::to_owned)
    .collect();
    assert_eq!(services, expected);

    // grpcurl resolves `grpc.health.v1.Health/Check` through the file holding the symbol;
    // the messages of the unlisted experimental service stay resolvable too.
    for symbol in [
        "grpc.health.v1.Health",
        "grpc.health.v1.HealthCheckRequest",
        "authzed.api.v1.BulkCheckPermissionRequest",
    ] {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(symbol.to_owned())),
        };
        let mut responses = reflection
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let response: ServerReflectionResponse = responses.message().await.unwrap().unwrap();
        let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
            panic!("expected the file of `{symbol}`, got {response:?}");
        };
        assert!(!files.file_descriptor_proto.is_empty(), "{symbol}");
    }
}

async fn every_rpc(engine: Engine) {
    let (server, _data) = Ostiary::start(engine).await;
    let schema_token = schema_rpcs(&server).await;
    let written = write_and_check(&server, &schema_token).await;
    expand_and_lookups(&server, &written).await;
    read_and_delete(&server, &written).await;
    import_and_export(&server).await;
    watch_sees_a_write(&server).await;
}

/// WriteSchema, ReadSchema, ReflectSchema and DiffSchema.
async fn schema_rpcs(server: &Ostiary) -> pb::ZedToken {
    let token = server.write_schema(SCHEMA).await;
    let read = server
        .schema()
        .read_schema(pb::ReadSchemaRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.schema_text, SCHEMA);
    assert!(read.read_at.is_some(), "ReadSchema carries `read_at`");

    let reflected = server
        .schema()
        .reflect_schema(pb::ReflectSchemaRequest {
            consistency: at_least_as_fresh(&token),
            optional_filters: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let names: BTreeSet<_> = reflected
        .definitions
        .iter()
        .map(|definition| definition.name.as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["document", "folder", "user"]));
    let document = reflected
        .definitions
        .iter()
        .find(|definition| definition.name == "document")
        .unwrap();
    let relations: Vec<_> = document
        .relations
        .iter()
        .map(|relation| relation.name.as_str())
        .collect();
    assert_eq!(relations, ["parent", "viewer", "banned"]);
    let permissions: Vec<_> = document
        .permissions
        .iter()
        .map(|permission| permission.name.as_str())
        .collect();
    assert_eq!(permissions, ["view"]);

    let comparison = SCHEMA.replace(
        "\trelation viewer: user\n\tpermission view = viewer\n",
        "\trelation viewer: user\n\trelation editor: user\n\tpermission view = viewer\n",
    );
    let diff = server
        .schema()
        .diff_schema(pb::DiffSchemaRequest {
            consistency: at_least_as_fresh(&token),
            comparison_schema: comparison,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(diff.diffs.len(), 1, "{diff:?}");
    match &diff.diffs[0].diff {
        Some(pb::reflection_schema_diff::Diff::RelationAdded(relation)) => {
            assert_eq!(relation.name, "editor");
            assert_eq!(relation.parent_definition_name, "folder");
        }
        other => panic!("expected `editor` added to `folder`, got {other:?}"),
    }
    token
}

/// WriteRelationships (with a precondition), CheckPermission and CheckBulkPermissions.
async fn write_and_check(server: &Ostiary, schema_token: &pb::ZedToken) -> pb::ZedToken {
    let written = server
        .permissions()
        .write_relationships(pb::WriteRelationshipsRequest {
            updates: vec![
                create("folder:eng#viewer@user:alice"),
                create("folder:eng#viewer@user:dave"),
                create("document:spec#parent@folder:eng"),
                create("document:spec#viewer@user:bob"),
                create("document:spec#banned@user:dave"),
                touch("document:memo#viewer@user:carol"),
                touch("document:public#viewer@user:*"),
            ],
            optional_preconditions: vec![pb::Precondition {
                operation: pb::precondition::Operation::MustNotMatch as i32,
                filter: Some(pb::RelationshipFilter {
                    resource_type: "document".to_owned(),
                    ..Default::default()
                }),
            }],
            optional_transaction_metadata: None,
        })
        .await
        .unwrap()
        .into_inner()
        .written_at
        .unwrap();
    assert_ne!(&written, schema_token, "a write moves the revision");

    let fresh = || at_least_as_fresh(&written);
    assert!(server.allowed(fresh(), "document:spec", "user:alice").await);
    assert!(server.allowed(fresh(), "document:spec", "user:bob").await);
    assert!(!server.allowed(fresh(), "document:spec", "user:dave").await);
    assert!(!server.allowed(fresh(), "document:spec", "user:erin").await);
    assert!(
        server
            .allowed(fresh(), "document:public", "user:erin")
            .await
    );
    let (_, checked_at) = server
        .check(fresh(), "document:spec", "view", "user:alice")
        .await
        .unwrap();
    assert!(!checked_at.token.is_empty());

    let item = |resource: &str, permission: &str, subject_text: &str| {
        pb::CheckBulkPermissionsRequestItem {
            resource: Some(object(resource)),
            permission: permission.to_owned(),
            subject: Some(subject(subject_text)),
            context: None,
        }
    };
    let bulk = server
        .permissions()
        .check_bulk_permissions(pb::CheckBulkPermissionsRequest {
            consistency: fresh(),
            items: vec![
                item("document:spec", "view", "user:alice"),
                item("document:spec", "view", "user:dave"),
                item("document:spec", "nope", "user:alice"),
                item("folder:eng", "view", "user:dave"),
            ],
            with_tracing: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(bulk.checked_at.is_some());
    let answers: Vec<String> = bulk
        .pairs
        .iter()
        .map(|pair| match pair.response.as_ref().unwrap() {
            pb::check_bulk_permissions_pair::Response::Item(item) => {
                format!("{:?}", item.permissionship())
            }
            pb::check_bulk_permissions_pair::Response::Error(status) => {
                format!("{:?}", tonic::Code::from_i32(status.code))
            }
        })
        .collect();
    assert_eq!(
        answers,
        [
            "HasPermission",
            "NoPermission",
            "FailedPrecondition",
            "HasPermission"
        ],
        "one bad item fails alone, in request order"
    );
    written
}

/// ExpandPermissionTree, LookupResources (paged with cursors) and LookupSubjects.
async fn expand_and_lookups(server: &Ostiary, written: &pb::ZedToken) {
    let expanded = server
        .permissions()
        .expand_permission_tree(pb::ExpandPermissionTreeRequest {
            consistency: at_exact_snapshot(written),
            resource: Some(object("document:spec")),
            permission: "view".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(expanded.expanded_at.is_some());
    let root = expanded.tree_root.unwrap();
    assert_eq!(root.expanded_object, Some(object("document:spec")));
    assert_eq!(root.expanded_relation, "view");
    match root.tree_type {
        Some(pb::permission_relationship_tree::TreeType::Intermediate(set)) => {
            assert_eq!(
                set.operation(),
                pb::algebraic_subject_set::Operation::Exclusion
            );
            assert_eq!(set.children.len(), 2);
        }
        other => panic!("`view` expands to an exclusion, got {other:?}"),
    }

    // Eight more documents alice sees through the folder, looked up two at a time.
    let more: Vec<_> = (0..8)
        .map(|idx| create(&format!("document:doc{idx}#parent@folder:eng")))
        .collect();
    let token = server.write(more).await.unwrap();
    let mut expected: BTreeSet<String> = (0..8).map(|idx| format!("doc{idx}")).collect();
    expected.extend(["spec".to_owned(), "public".to_owned()]);
    let lookup = |limit: u32, cursor: Option<pb::Cursor>| {
        let mut client = server.permissions();
        let consistency = at_exact_snapshot(&token);
        async move {
            let mut stream = client
                .lookup_resources(pb::LookupResourcesRequest {
                    consistency,
                    resource_object_type: "document".to_owned(),
                    permission: "view".to_owned(),
                    subject: Some(subject("user:alice")),
                    context: None,
                    optional_limit: limit,
                    optional_cursor: cursor,
                    with_debug: false,
                })
                .await
                .unwrap()
                .into_inner();
            let mut page = Vec::new();
            while let Some(found) = stream.message().await.unwrap() {
                assert_eq!(
                    found.permissionship(),
                    pb::LookupPermissionship::HasPermission
                );
                let cursor = found
                    .after_result_cursor
                    .expect("every LookupResources result carries a cursor");
                page.push((found.resource_object_id, cursor));
            }
            page
        }
    };
    // Pages of two, each resumed from the last result's cursor, until an empty page: the
    // last page is full (10 results), so its cursor must lead to an empty page rather than
    // start over.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = lookup(2, cursor.take()).await;
        assert!(
            page.len() <= 2,
            "a page holds at most `optional_limit` results"
        );
        let Some((_, last_cursor)) = page.last() else {
            break;
        };
        cursor = Some(last_cursor.clone());
        seen.extend(page);
        assert!(
            seen.len() <= expected.len(),
            "paging does not end: {seen:?}"
        );
    }
    let ids: Vec<String> = seen.iter().map(|(id, _)| id.clone()).collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "no result twice across pages: {ids:?}"
    );
    assert_eq!(unique, expected);
    // Resuming from a result in the middle of a page (a stream that broke off) yields
    // exactly the results after it.
    let resumed: Vec<String> = lookup(0, Some(seen[2].1.clone()))
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(resumed, ids[3..]);

    let lookup_subjects = |resource: &'static str| {
        let mut client = server.permissions();
        let consistency = at_least_as_fresh(&token);
        async move {
            let mut stream = client
                .lookup_subjects(pb::LookupSubjectsRequest {
                    consistency,
                    resource: Some(object(resource)),
                    permission: "view".to_owned(),
                    subject_object_type: "user".to_owned(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let mut found = BTreeSet::new();
            while let Some(response) = stream.message().await.unwrap() {
                assert!(response.looked_up_at.is_some());
                found.insert(response.subject.unwrap().subject_object_id);
            }
            found
        }
    };
    assert_eq!(
        lookup_subjects("document:spec").await,
        BTreeSet::from(["alice".to_owned(), "bob".to_owned()]),
        "dave is banned"
    );
    assert_eq!(
        lookup_subjects("document:public").await,
        BTreeSet::from(["*".to_owned()])
    );
}

/// ReadRelationships (whole and paged) and DeleteRelationships.
async fn read_and_delete(server: &Ostiary, written: &pb::ZedToken) {
    let read = |limit: u32, cursor: Option<pb::Cursor>| {
        let mut client = server.permissions();
        let consistency = at_least_as_fresh(written);
        async move {
            let mut stream = client
                .read_relationships(pb::ReadRelationshipsRequest {
                    consistency,
                    relationship_filter: Some(pb::RelationshipFilter {
                        resource_type: "document".to_owned(),
                        optional_resource_id: "spec".to_owned(),
                        ..Default::default()
                    }),
                    optional_limit: limit,
                    optional_cursor: cursor,
                })
                .await
                .unwrap()
                .into_inner();
            let mut out = Vec::new();
            while let Some(response) = stream.message().await.unwrap() {
                assert!(response.read_at.is_some());
                out.push((
                    rel_text(response.relationship.as_ref().unwrap()),
                    response.after_result_cursor,
                ));
            }
            out
        }
    };
    let all: Vec<String> = read(0, None)
        .await
        .into_iter()
        .map(|(text, _)| text)
        .collect();
    assert_eq!(
        all.iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "document:spec#banned@user:dave".to_owned(),
            "document:spec#parent@folder:eng".to_owned(),
            "document:spec#viewer@user:bob".to_owned(),
        ])
    );
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = read(1, cursor.take()).await;
        assert!(page.len() <= 1);
        let Some((text, next)) = page.into_iter().next() else {
            break;
        };
        paged.push(text);
        cursor = Some(next.expect("every result carries a cursor"));
        assert!(paged.len() <= all.len(), "paging does not end: {paged:?}");
    }
    assert_eq!(paged, all, "pages of one follow the same order as one read");

    let deleted = server
        .permissions()
        .delete_relationships(pb::DeleteRelationshipsRequest {
            relationship_filter: Some(pb::RelationshipFilter {
                resource_type: "document".to_owned(),
                optional_resource_id: "memo".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.relationships_deleted_count, 1);
    assert_eq!(
        deleted.deletion_progress(),
        pb::delete_relationships_response::DeletionProgress::Complete
    );
    let deleted_at = deleted.deleted_at.unwrap();
    assert!(
        !server
            .allowed(
                at_least_as_fresh(&deleted_at),
                "document:memo",
                "user:carol"
            )
            .await
    );
    let dump = server.dump().await;
    assert!(
        !dump
            .relationships
            .iter()
            .any(|text| text.starts_with("document:memo")),
        "{dump:?}"
    );
}

/// ImportBulkRelationships in several messages, then ExportBulkRelationships resumed from a
/// cursor after the first batch.
async fn import_and_export(server: &Ostiary) {
    let n_total = 250;
    let batches: Vec<_> = (0..n_total)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(|chunk| pb::ImportBulkRelationshipsRequest {
            relationships: chunk
                .iter()
                .map(|idx| rel(&format!("document:bulk{idx:04}#viewer@user:u{idx}")))
                .collect(),
        })
        .collect();
    assert_eq!(batches.len(), 3);
    let imported = server
        .permissions()
        .import_bulk_relationships(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.num_loaded, n_total);
    assert!(
        server
            .allowed(fully_consistent(), "document:bulk0042", "user:u42")
            .await
    );

    let filter = Some(pb::RelationshipFilter {
        resource_type: "document".to_owned(),
        optional_relation: "viewer".to_owned(),
        optional_subject_filter: None,
        ..Default::default()
    });
    let export = |cursor: Option<pb::Cursor>| {
        let mut client = server.permissions();
        let filter = filter.clone();
        async move {
            client
                .export_bulk_relationships(pb::ExportBulkRelationshipsRequest {
                    consistency: fully_consistent(),
                    optional_limit: 40,
                    optional_cursor: cursor,
                    optional_relationship_filter: filter,
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    // Take one batch, disconnect, and resume from its cursor.
    let mut first_stream = export(None).await;
    let first = first_stream.message().await.unwrap().unwrap();
    drop(first_stream);
    assert_eq!(first.relationships.len(), 40);
    let mut exported: Vec<String> = first.relationships.iter().map(rel_text).collect();
    let mut rest = export(first.after_result_cursor).await;
    let mut n_batches = 1;
    while let Some(batch) = rest.message().await.unwrap() {
        assert!(batch.relationships.len() <= 40);
        assert!(batch.after_result_cursor.is_some());
        exported.extend(batch.relationships.iter().map(rel_text));
        n_batches += 1;
    }
    let unique: BTreeSet<_> = exported.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        exported.len(),
        "no relationship exported twice"
    );
    let bulk: BTreeSet<_> = exported
        .iter()
        .filter(|text| text.starts_with("document:bulk"))
        .cloned()
        .collect();
    let expected: BTreeSet<_> = (0..n_total)
        .map(|idx| format!("document:bulk{idx:04}#viewer@user:u{idx}"))
        .collect();
    assert_eq!(bulk, expected);
    // The other viewers: bob on spec and the public wildcard.
    assert_eq!(
        exported.len(),
        250 + 2,
        "{:?}",
        unique.difference(&expected)
    );
    assert!(n_batches >= 7, "252 relationships in batches of 40");
}

/// A Watch started now sees the next write, at the write's token.
async fn watch_sees_a_write(server: &Ostiary) {
    let mut watch = server.watch_client().await;
    let mut stream = watch
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let token = server
        .write(vec![create("document:late#viewer@user:zoe")])
        .await
        .unwrap();
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .expect("the write reaches the Watch stream")
        .unwrap()
        .unwrap();
    assert_eq!(response.changes_through, Some(token));
    let updates: Vec<_> = response
        .updates
        .iter()
        .map(|update| {
            (
                update.operation(),
                rel_text(update.relationship.as_ref().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        updates,
        [(
            pb::relationship_update::Operation::Touch,
            "document:late#viewer@user:zoe".to_owned()
        )]
    );
}
