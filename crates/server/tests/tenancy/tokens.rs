//! Tokens at the boundary with a driven clock: expiry, revocation, rotation with a grace
//! period, scopes per API group, definition restrictions, privilege escalation through
//! `TokenService`, suspended and deleted tenants.

use std::time::Duration;

use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::ostiary::admin::v1 as admin;
use ostiary_store::{Datastore as _, DatastoreExt as _, Page};
use ostiary_types::{RelationshipFilter, TenantId};
use tonic::{Code, Status};

use crate::support::{
    HOUR, ROOT, SCHEMA, TENANT_SCOPES, TestServer, create_token_as, duration, expect_code,
    fully_consistent, object, req, req_in, subject, touch,
};

async fn check(server: &TestServer, token: &str, resource: &str) -> Result<i32, Status> {
    server
        .permissions()
        .check_permission(req(
            token,
            pb::CheckPermissionRequest {
                consistency: fully_consistent(),
                resource: Some(object(resource)),
                permission: "view".into(),
                subject: Some(subject("user:alice")),
                context: None,
                with_tracing: false,
            },
        ))
        .await
        .map(|response| response.into_inner().permissionship)
}

/// A server with tenant `a` holding the schema and `document:1#viewer@user:alice`.
async fn server_with_tenant() -> TestServer {
    let server = TestServer::start().await;
    server
        .create_tenant("a", admin::TenantQuotas::default())
        .await;
    let writer = server
        .create_token("a", &[admin::Scope::Schema, admin::Scope::Write], &[])
        .await;
    server.write_schema(&writer.secret, SCHEMA).await;
    server
        .write(
            &writer.secret,
            vec![
                touch("document:1#viewer@user:alice"),
                touch("folder:1#viewer@user:alice"),
            ],
        )
        .await
        .unwrap();
    server
}

const ALLOWED: i32 = pb::check_permission_response::Permissionship::HasPermission as i32;

#[tokio::test]
async fn an_expired_token_is_unauthenticated_from_its_expiry_on() {
    let server = server_with_tenant().await;
    let token = create_token_as(&server, ROOT, "a", &[admin::Scope::Check], &[], HOUR)
        .await
        .unwrap();
    assert_eq!(
        check(&server, &token.secret, "document:1").await.unwrap(),
        ALLOWED
    );
    server.clock.advance(HOUR - Duration::from_secs(1));
    assert_eq!(
        check(&server, &token.secret, "document:1").await.unwrap(),
        ALLOWED
    );
    server.clock.advance(Duration::from_secs(1));
    let status = expect_code(
        check(&server, &token.secret, "document:1").await,
        Code::Unauthenticated,
    );
    assert_eq!(status.message(), "token expired");
    server.stop().await;
}

#[tokio::test]
async fn a_revoked_token_is_unauthenticated_at_once_like_an_unknown_one() {
    let server = server_with_tenant().await;
    let token = server.create_token("a", &[admin::Scope::Check], &[]).await;
    assert_eq!(
        check(&server, &token.secret, "document:1").await.unwrap(),
        ALLOWED
    );
    let revoked = server
        .tokens()
        .revoke_token(req(
            ROOT,
            admin::RevokeTokenRequest {
                token_id: token.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .token
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    let revoked_status = expect_code(
        check(&server, &token.secret, "document:1").await,
        Code::Unauthenticated,
    );
    // No hint whether the id exists: a revoked token, an unknown id and a wrong secret
    // get the same answer.
    let unknown = format!("ost_{}_{}", "v".repeat(16), "0".repeat(52));
    let unknown_status = expect_code(
        check(&server, &unknown, "document:1").await,
        Code::Unauthenticated,
    );
    let other = server.create_token("a", &[admin::Scope::Check], &[]).await;
    let wrong_secret = format!("ost_{}_{}", other.id, "0".repeat(52));
    let wrong_status = expect_code(
        check(&server, &wrong_secret, "document:1").await,
        Code::Unauthenticated,
    );
    assert_eq!(revoked_status.message(), unknown_status.message());
    assert_eq!(wrong_status.message(), unknown_status.message());
    // The token is gone from the list too.
    let listed = server
        .tokens()
        .list_tokens(req(ROOT, admin::ListTokensRequest { tenant: "a".into() }))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert!(listed.iter().all(|listed| listed.id != token.id));
    server.stop().await;
}

#[tokio::test]
async fn a_rotated_secret_works_during_the_grace_period_and_is_refused_after() {
    let server = server_with_tenant().await;
    let token = server.create_token("a", &[admin::Scope::Check], &[]).await;
    let grace = Duration::from_secs(600);
    let rotated = server
        .tokens()
        .rotate_token(req(
            ROOT,
            admin::RotateTokenRequest {
                token_id: token.id.clone(),
                grace_period: Some(duration(grace)),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.token.as_ref().unwrap().id, token.id);
    assert!(
        rotated
            .token
            .as_ref()
            .unwrap()
            .previous_secret_valid_until
            .is_some()
    );
    let new_secret = rotated.secret_token;
    assert_ne!(new_secret, token.secret);
    for secret in [&token.secret, &new_secret] {
        assert_eq!(check(&server, secret, "document:1").await.unwrap(), ALLOWED);
    }
    server.clock.advance(grace - Duration::from_secs(1));
    assert_eq!(
        check(&server, &token.secret, "document:1").await.unwrap(),
        ALLOWED
    );
    server.clock.advance(Duration::from_secs(1));
    let status = expect_code(
        check(&server, &token.secret, "document:1").await,
        Code::Unauthenticated,
    );
    assert_eq!(status.message(), "invalid token");
    assert_eq!(
        check(&server, &new_secret, "document:1").await.unwrap(),
        ALLOWED
    );
    // A rotation without grace retires the current secret at once.
    let again = server
        .tokens()
        .rotate_token(req(
            ROOT,
            admin::RotateTokenRequest {
                token_id: token.id.clone(),
                grace_period: None,
            },
        ))
        .await;
    let again = again.unwrap().into_inner().secret_token;
    expect_code(
        check(&server, &new_secret, "document:1").await,
        Code::Unauthenticated,
    );
    assert_eq!(check(&server, &again, "document:1").await.unwrap(), ALLOWED);
    server.stop().await;
}

/// The outcome of one call of each API group with `token`: `true` when the access layer
/// or the handler refused it with PermissionDenied.
async fn denied_by_group(server: &TestServer, token: &str) -> Vec<(&'static str, bool)> {
    let denied = |res: Result<(), Status>| match res {
        Ok(()) => false,
        Err(status) => status.code() == Code::PermissionDenied,
    };
    let mut out = Vec::new();
    out.push((
        "check",
        denied(check(server, token, "document:1").await.map(|_| ())),
    ));
    let read = server
        .permissions()
        .read_relationships(req(
            token,
            pb::ReadRelationshipsRequest {
                consistency: fully_consistent(),
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "document".into(),
                    ..Default::default()
                }),
                optional_limit: 0,
                optional_cursor: None,
            },
        ))
        .await
        .map(|_| ());
    out.push(("read", denied(read)));
    let read_schema = server
        .schema()
        .read_schema(req(token, pb::ReadSchemaRequest {}))
        .await
        .map(|_| ());
    out.push(("read schema", denied(read_schema)));
    let write = server
        .write(token, vec![touch("document:9#viewer@user:bob")])
        .await
        .map(|_| ());
    out.push(("write", denied(write)));
    let write_schema = server
        .schema()
        .write_schema(req(
            token,
            pb::WriteSchemaRequest {
                schema: SCHEMA.into(),
            },
        ))
        .await
        .map(|_| ());
    out.push(("schema", denied(write_schema)));
    let watch = server
        .watch()
        .watch(req(token, pb::WatchRequest::default()))
        .await
        .map(|_| ());
    out.push(("watch", denied(watch)));
    let list = server
        .tokens()
        .list_tokens(req(token, admin::ListTokensRequest::default()))
        .await
        .map(|_| ());
    out.push(("admin", denied(list)));
    let tenants = server
        .tenants()
        .list_tenants(req(token, admin::ListTenantsRequest {}))
        .await
        .map(|_| ());
    out.push(("root", denied(tenants)));
    out
}

#[tokio::test]
async fn each_scope_opens_its_api_group_only() {
    let server = server_with_tenant().await;
    let group_of = |scope: admin::Scope| match scope {
        admin::Scope::Check => vec!["check"],
        admin::Scope::Read => vec!["read", "read schema"],
        admin::Scope::Write => vec!["write"],
        admin::Scope::Schema => vec!["schema"],
        admin::Scope::Watch => vec!["watch"],
        admin::Scope::Admin => vec!["admin"],
        _ => unreachable!(),
    };
    for scope in TENANT_SCOPES {
        let token = server.create_token("a", &[scope], &[]).await;
        let allowed = group_of(scope);
        for (group, denied) in denied_by_group(&server, &token.secret).await {
            assert_eq!(
                denied,
                !allowed.contains(&group),
                "a `{scope:?}` token calling the `{group}` group"
            );
        }
    }
    // Every tenant scope together still does not reach root.
    let all = server.create_token("a", &TENANT_SCOPES, &[]).await;
    for (group, denied) in denied_by_group(&server, &all.secret).await {
        assert_eq!(denied, group == "root", "{group}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_definition_restricted_token_cannot_touch_other_definitions() {
    let server = server_with_tenant().await;
    let token = server
        .create_token(
            "a",
            &[
                admin::Scope::Check,
                admin::Scope::Read,
                admin::Scope::Write,
                admin::Scope::Watch,
            ],
            &["document"],
        )
        .await;
    let secret = &token.secret;
    assert_eq!(check(&server, secret, "document:1").await.unwrap(), ALLOWED);
    expect_code(
        check(&server, secret, "folder:1").await,
        Code::PermissionDenied,
    );
    server
        .write(secret, vec![touch("document:2#viewer@user:bob")])
        .await
        .unwrap();
    expect_code(
        server
            .write(secret, vec![touch("folder:2#viewer@user:bob")])
            .await,
        Code::PermissionDenied,
    );
    // A mixed write is refused whole.
    expect_code(
        server
            .write(
                secret,
                vec![
                    touch("document:3#viewer@user:bob"),
                    touch("folder:3#viewer@user:bob"),
                ],
            )
            .await,
        Code::PermissionDenied,
    );
    let read_folder = server
        .permissions()
        .read_relationships(req(
            secret,
            pb::ReadRelationshipsRequest {
                consistency: fully_consistent(),
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "folder".into(),
                    ..Default::default()
                }),
                optional_limit: 0,
                optional_cursor: None,
            },
        ))
        .await;
    expect_code(read_folder.map(|_| ()), Code::PermissionDenied);
    let lookup = server
        .permissions()
        .lookup_resources(req(
            secret,
            pb::LookupResourcesRequest {
                consistency: fully_consistent(),
                resource_object_type: "folder".into(),
                permission: "view".into(),
                subject: Some(subject("user:alice")),
                ..Default::default()
            },
        ))
        .await;
    expect_code(lookup.map(|_| ()), Code::PermissionDenied);
    let delete = server
        .permissions()
        .delete_relationships(req(
            secret,
            pb::DeleteRelationshipsRequest {
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "folder".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await;
    expect_code(delete.map(|_| ()), Code::PermissionDenied);
    // Preconditions must not probe relationships of other definitions either: a write
    // of its own definition conditioned on a folder relationship is refused whether or not
    // that relationship exists.
    let folder_filter = |id: &str| pb::RelationshipFilter {
        resource_type: "folder".into(),
        optional_resource_id: id.into(),
        ..Default::default()
    };
    for (folder_id, operation) in [
        ("1", pb::precondition::Operation::MustMatch),
        ("nope", pb::precondition::Operation::MustMatch),
        ("1", pb::precondition::Operation::MustNotMatch),
    ] {
        let probe = server
            .permissions()
            .write_relationships(req(
                secret,
                pb::WriteRelationshipsRequest {
                    updates: vec![touch("document:8#viewer@user:bob")],
                    optional_preconditions: vec![pb::Precondition {
                        operation: operation as i32,
                        filter: Some(folder_filter(folder_id)),
                    }],
                    optional_transaction_metadata: None,
                },
            ))
            .await;
        expect_code(probe, Code::PermissionDenied);
        let probe = server
            .permissions()
            .delete_relationships(req(
                secret,
                pb::DeleteRelationshipsRequest {
                    relationship_filter: Some(pb::RelationshipFilter {
                        resource_type: "document".into(),
                        optional_resource_id: "8".into(),
                        ..Default::default()
                    }),
                    optional_preconditions: vec![pb::Precondition {
                        operation: operation as i32,
                        filter: Some(folder_filter(folder_id)),
                    }],
                    ..Default::default()
                },
            ))
            .await;
        expect_code(probe, Code::PermissionDenied);
    }
    // An export without a filter shows its definitions only.
    let mut export = server
        .permissions()
        .export_bulk_relationships(req(
            secret,
            pb::ExportBulkRelationshipsRequest {
                consistency: fully_consistent(),
                ..Default::default()
            },
        ))
        .await;
    match &mut export {
        Ok(stream) => {
            let stream = stream.get_mut();
            while let Some(page) = stream.message().await.unwrap() {
                for rel in &page.relationships {
                    assert_eq!(rel.resource.as_ref().unwrap().object_type, "document");
                }
            }
        }
        Err(status) => assert_eq!(status.code(), Code::PermissionDenied, "{status:?}"),
    }
    // Watch shows the token's definitions only.
    let mut stream = server
        .watch()
        .watch(req(
            secret,
            pb::WatchRequest {
                optional_update_kinds: vec![pb::WatchKind::IncludeRelationshipUpdates as i32],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let root = TenantScopedRoot::new("a");
    root.write(
        &server,
        vec![
            touch("folder:7#viewer@user:carol"),
            touch("document:7#viewer@user:carol"),
        ],
    )
    .await;
    let response = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let seen: Vec<String> = response
        .updates
        .iter()
        .map(|update| crate::support::text(update.relationship.as_ref().unwrap()))
        .collect();
    assert_eq!(seen, vec!["document:7#viewer@user:carol".to_owned()]);
    server.stop().await;
}

/// Root acting in one tenant through `ostiary-tenant` metadata.
struct TenantScopedRoot {
    tenant: String,
}

impl TenantScopedRoot {
    fn new(tenant: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
        }
    }

    async fn write(&self, server: &TestServer, updates: Vec<pb::RelationshipUpdate>) {
        server
            .permissions()
            .write_relationships(req_in(
                ROOT,
                &self.tenant,
                pb::WriteRelationshipsRequest {
                    updates,
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
    }
}

/// What an escalation attempt asks for: its name, tenant, scopes, definitions and ttl.
type Escalation = (
    &'static str,
    &'static str,
    Vec<admin::Scope>,
    Vec<&'static str>,
    Duration,
);

#[tokio::test]
async fn no_privilege_escalation_through_the_token_service() {
    let server = server_with_tenant().await;
    server
        .create_tenant("b", admin::TenantQuotas::default())
        .await;
    let admin_token = create_token_as(
        &server,
        ROOT,
        "a",
        &[admin::Scope::Admin, admin::Scope::Check],
        &["document"],
        HOUR,
    )
    .await
    .unwrap();
    let actor = &admin_token.secret;
    let attempts: Vec<Escalation> = vec![
        (
            "a scope it lacks",
            "",
            vec![admin::Scope::Write],
            vec!["document"],
            HOUR / 2,
        ),
        (
            "root",
            "",
            vec![admin::Scope::Root],
            vec!["document"],
            HOUR / 2,
        ),
        (
            "another tenant",
            "b",
            vec![admin::Scope::Check],
            vec!["document"],
            HOUR / 2,
        ),
        (
            "a later expiry",
            "",
            vec![admin::Scope::Check],
            vec!["document"],
            HOUR * 2,
        ),
        (
            "other definitions",
            "",
            vec![admin::Scope::Check],
            vec!["document", "folder"],
            HOUR / 2,
        ),
        (
            "no definition restriction",
            "",
            vec![admin::Scope::Check],
            vec![],
            HOUR / 2,
        ),
    ];
    for (what, tenant, scopes, definitions, ttl) in attempts {
        let res = create_token_as(&server, actor, tenant, &scopes, &definitions, ttl).await;
        match res {
            Ok(token) => panic!("escalation to {what} succeeded: {token:?}"),
            Err(status) => assert!(
                matches!(status.code(), Code::PermissionDenied),
                "{what}: {status:?}"
            ),
        }
    }
    // Within its own rights it may create a token.
    let lesser = create_token_as(
        &server,
        actor,
        "",
        &[admin::Scope::Check],
        &["document"],
        HOUR / 2,
    )
    .await
    .unwrap();
    assert_eq!(
        check(&server, &lesser.secret, "document:1").await.unwrap(),
        ALLOWED
    );
    // Rotating a stronger token of its tenant would hand it that token's secret.
    let stronger = server
        .create_token("a", &[admin::Scope::Write, admin::Scope::Check], &[])
        .await;
    let rotate = server
        .tokens()
        .rotate_token(req(
            actor,
            admin::RotateTokenRequest {
                token_id: stronger.id.clone(),
                grace_period: None,
            },
        ))
        .await;
    expect_code(rotate, Code::PermissionDenied);
    // The stronger token still works with its old secret.
    assert_eq!(
        check(&server, &stronger.secret, "document:1")
            .await
            .unwrap(),
        ALLOWED
    );
    // Tenant management, another tenant's tokens and audit log, and naming another
    // tenant in metadata are all refused.
    let create_tenant = server
        .tenants()
        .create_tenant(req(
            actor,
            admin::CreateTenantRequest {
                id: "c".into(),
                quotas: None,
            },
        ))
        .await;
    expect_code(create_tenant, Code::PermissionDenied);
    let list_b = server
        .tokens()
        .list_tokens(req(actor, admin::ListTokensRequest { tenant: "b".into() }))
        .await;
    expect_code(list_b, Code::PermissionDenied);
    let audit_b = server
        .audit()
        .verify_audit_log(req(
            actor,
            admin::VerifyAuditLogRequest { tenant: "b".into() },
        ))
        .await;
    expect_code(audit_b, Code::PermissionDenied);
    let named = server
        .tokens()
        .list_tokens(req_in(actor, "b", admin::ListTokensRequest::default()))
        .await;
    expect_code(named, Code::PermissionDenied);
    // A token without `admin` can rotate itself (within its own rights) but create nothing.
    let checker = server.create_token("a", &[admin::Scope::Check], &[]).await;
    let created = create_token_as(
        &server,
        &checker.secret,
        "",
        &[admin::Scope::Check],
        &[],
        HOUR / 2,
    )
    .await;
    expect_code(created, Code::PermissionDenied);
    server.stop().await;
}

#[tokio::test]
async fn a_suspended_tenants_tokens_are_refused_until_it_is_resumed() {
    let server = server_with_tenant().await;
    let token = server.create_token("a", &[admin::Scope::Check], &[]).await;
    assert_eq!(
        check(&server, &token.secret, "document:1").await.unwrap(),
        ALLOWED
    );
    server
        .tenants()
        .suspend_tenant(req(ROOT, admin::SuspendTenantRequest { id: "a".into() }))
        .await
        .unwrap();
    expect_code(
        check(&server, &token.secret, "document:1").await,
        Code::PermissionDenied,
    );
    // Root acting in the suspended tenant is refused too; its data is kept.
    let root_read = server
        .schema()
        .read_schema(req_in(ROOT, "a", pb::ReadSchemaRequest {}))
        .await;
    expect_code(root_read, Code::FailedPrecondition);
    server
        .tenants()
        .resume_tenant(req(ROOT, admin::ResumeTenantRequest { id: "a".into() }))
        .await
        .unwrap();
    assert_eq!(
        check(&server, &token.secret, "document:1").await.unwrap(),
        ALLOWED
    );
    server.stop().await;
}

#[tokio::test]
async fn a_deleted_tenants_data_is_purged_and_its_tokens_refused() {
    let server = server_with_tenant().await;
    server
        .create_tenant("b", admin::TenantQuotas::default())
        .await;
    let b_writer = server
        .create_token("b", &[admin::Scope::Schema, admin::Scope::Write], &[])
        .await;
    server.write_schema(&b_writer.secret, SCHEMA).await;
    server
        .write(&b_writer.secret, vec![touch("document:1#viewer@user:bob")])
        .await
        .unwrap();
    let token = server.create_token("a", &[admin::Scope::Check], &[]).await;
    server
        .tenants()
        .delete_tenant(req(ROOT, admin::DeleteTenantRequest { id: "a".into() }))
        .await
        .unwrap();
    let refused = check(&server, &token.secret, "document:1").await;
    assert!(
        matches!(
            &refused,
            Err(status) if matches!(status.code(), Code::PermissionDenied | Code::Unauthenticated)
        ),
        "{refused:?}"
    );
    // The purge runs in the background; the registry entry goes last.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = server
            .tenants()
            .get_tenant(req(ROOT, admin::GetTenantRequest { id: "a".into() }))
            .await;
        match got {
            Err(status) if status.code() == Code::NotFound => break,
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "tenant not purged: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    // Nothing of `a` is left in the store; `b` is intact.
    let a = TenantId::new("a").unwrap();
    let snapshot = server.store.head_snapshot(&a).unwrap();
    assert!(snapshot.read_schema().unwrap().is_none());
    let mut rels = Vec::new();
    snapshot
        .read_filtered(&RelationshipFilter::default(), Page::first(10), &mut rels)
        .unwrap();
    assert!(rels.is_empty(), "{rels:?}");
    let records = server
        .store
        .scan_records(
            &a,
            &ostiary_store::RecordNamespace::new("audit").unwrap(),
            b"",
            10,
        )
        .unwrap();
    assert!(records.is_empty());
    let status = expect_code(
        check(&server, &token.secret, "document:1").await,
        Code::Unauthenticated,
    );
    assert_eq!(status.message(), "invalid token");
    assert_eq!(
        server.dump("b").await,
        vec!["document:1#viewer@user:bob".to_owned()]
    );
    // Root naming the purged tenant learns it is gone, nothing more.
    let gone = server
        .schema()
        .read_schema(req_in(ROOT, "a", pb::ReadSchemaRequest {}))
        .await;
    expect_code(gone, Code::FailedPrecondition);
    // A new tenant under the same id starts empty: root reads no schema, no
    // relationships, no tokens and an empty audit log; the old token stays refused.
    server
        .create_tenant("a", admin::TenantQuotas::default())
        .await;
    let no_schema = server.schema_text("a").await;
    let status = expect_code(no_schema, Code::NotFound);
    assert!(status.message().contains("no schema"), "{status:?}");
    assert!(server.dump("a").await.is_empty());
    let tokens = server
        .tokens()
        .list_tokens(req(ROOT, admin::ListTokensRequest { tenant: "a".into() }))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert!(tokens.is_empty(), "{tokens:?}");
    assert!(server.audit_log("a").await.is_empty());
    expect_code(
        check(&server, &token.secret, "document:1").await,
        Code::Unauthenticated,
    );
    server.stop().await;
}

/// Opens a Watch stream of relationship updates with `token`.
async fn watch_updates(server: &TestServer, token: &str) -> tonic::Streaming<pb::WatchResponse> {
    server
        .watch()
        .watch(req(
            token,
            pb::WatchRequest {
                optional_update_kinds: vec![pb::WatchKind::IncludeRelationshipUpdates as i32],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn an_open_watch_stream_ends_when_its_token_is_revoked_expires_or_its_tenant_is_suspended() {
    let server = server_with_tenant().await;
    let writer = server
        .create_token("a", &[admin::Scope::Write], &[])
        .await
        .secret;
    let mut n_written = 0;
    let mut write = async || {
        n_written += 1;
        server
            .write(
                &writer,
                vec![touch(&format!("document:w{n_written}#viewer@user:bob"))],
            )
            .await
            .unwrap();
    };
    // Revocation.
    let revoked = server.create_token("a", &[admin::Scope::Watch], &[]).await;
    let mut revoked_stream = watch_updates(&server, &revoked.secret).await;
    // Expiry.
    let expiring = create_token_as(&server, ROOT, "a", &[admin::Scope::Watch], &[], HOUR)
        .await
        .unwrap();
    let mut expiring_stream = watch_updates(&server, &expiring.secret).await;
    // A token that stays valid sees everything.
    let steady = server.create_token("a", &[admin::Scope::Watch], &[]).await;
    let mut steady_stream = watch_updates(&server, &steady.secret).await;
    write().await;
    for stream in [
        &mut revoked_stream,
        &mut expiring_stream,
        &mut steady_stream,
    ] {
        let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .unwrap()
            .unwrap();
        assert!(first.is_some());
    }
    server
        .tokens()
        .revoke_token(req(
            ROOT,
            admin::RevokeTokenRequest {
                token_id: revoked.id.clone(),
            },
        ))
        .await
        .unwrap();
    server.clock.advance(HOUR);
    write().await;
    for stream in [&mut revoked_stream, &mut expiring_stream] {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .unwrap();
        match next {
            Err(status) => assert_eq!(status.code(), Code::Unauthenticated, "{status:?}"),
            Ok(message) => panic!("the stream went on: {message:?}"),
        }
    }
    let next = tokio::time::timeout(Duration::from_secs(5), steady_stream.message())
        .await
        .unwrap()
        .unwrap();
    assert!(next.is_some());
    // Suspension ends the stream too, at the next commit anywhere.
    server
        .create_tenant("b", admin::TenantQuotas::default())
        .await;
    let b_schema = server.create_token("b", &[admin::Scope::Schema], &[]).await;
    server
        .tenants()
        .suspend_tenant(req(ROOT, admin::SuspendTenantRequest { id: "a".into() }))
        .await
        .unwrap();
    server.write_schema(&b_schema.secret, SCHEMA).await;
    let next = tokio::time::timeout(Duration::from_secs(5), steady_stream.message())
        .await
        .unwrap();
    match next {
        Err(status) => assert_eq!(status.code(), Code::PermissionDenied, "{status:?}"),
        Ok(message) => panic!("the stream went on: {message:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn a_token_without_admin_rotates_and_revokes_itself_but_no_other_token() {
    let server = server_with_tenant().await;
    let token = server.create_token("a", &[admin::Scope::Check], &[]).await;
    let other = server.create_token("a", &[admin::Scope::Check], &[]).await;
    // Another token of its tenant: not without `admin`.
    for id in [&other.id] {
        let rotate = server
            .tokens()
            .rotate_token(req(
                &token.secret,
                admin::RotateTokenRequest {
                    token_id: id.clone(),
                    grace_period: None,
                },
            ))
            .await;
        expect_code(rotate, Code::PermissionDenied);
        let revoke = server
            .tokens()
            .revoke_token(req(
                &token.secret,
                admin::RevokeTokenRequest {
                    token_id: id.clone(),
                },
            ))
            .await;
        expect_code(revoke, Code::PermissionDenied);
    }
    assert_eq!(
        check(&server, &other.secret, "document:1").await.unwrap(),
        ALLOWED
    );
    // Itself: a new secret, the old one retired at once without grace.
    let rotated = server
        .tokens()
        .rotate_token(req(
            &token.secret,
            admin::RotateTokenRequest {
                token_id: token.id.clone(),
                grace_period: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .secret_token;
    expect_code(
        check(&server, &token.secret, "document:1").await,
        Code::Unauthenticated,
    );
    assert_eq!(
        check(&server, &rotated, "document:1").await.unwrap(),
        ALLOWED
    );
    // Listing and creating tokens still need `admin`.
    let list = server
        .tokens()
        .list_tokens(req(&rotated, admin::ListTokensRequest::default()))
        .await;
    expect_code(list, Code::PermissionDenied);
    // And it can retire itself.
    server
        .tokens()
        .revoke_token(req(
            &rotated,
            admin::RevokeTokenRequest {
                token_id: token.id.clone(),
            },
        ))
        .await
        .unwrap();
    expect_code(
        check(&server, &rotated, "document:1").await,
        Code::Unauthenticated,
    );
    server.stop().await;
}
