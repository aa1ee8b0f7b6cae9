//! The audit log end to end: every write path appends exactly one entry (action, actor,
//! revision of the change, on-behalf-of), a failed write appends none, and VerifyAuditLog
//! passes on an intact log and pinpoints a flipped byte, a removed entry, a reordered pair
//! and a truncated tail, tampered directly in the datastore.

use std::time::Duration;

use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::ostiary::admin::v1 as admin;
use ostiary_store::{Datastore as _, DatastoreExt as _, RecordNamespace};
use ostiary_types::TenantId;
use tonic::{Code, Request};

use crate::support::{
    ROOT, SCHEMA, TENANT_SCOPES, TestServer, Token, delete, duration, expect_code, rel, req, touch,
};

const ON_BEHALF_OF: &str = "support-ticket-42";

/// `request` carrying `ostiary-on-behalf-of` metadata.
fn for_someone<T>(mut request: Request<T>) -> Request<T> {
    request
        .metadata_mut()
        .insert("ostiary-on-behalf-of", ON_BEHALF_OF.parse().unwrap());
    request
}

/// Asserts that `tenant`'s log grew by exactly one entry since `before` entries, with
/// `action` by `actor` at the store's head revision and for [`ON_BEHALF_OF`]; returns it.
async fn one_new_entry(
    server: &TestServer,
    tenant: &str,
    before: usize,
    action: &str,
    actor: &str,
) -> admin::AuditEntry {
    let log = server.audit_log(tenant).await;
    assert_eq!(
        log.len(),
        before + 1,
        "`{action}` appended {} entries: {log:#?}",
        log.len() - before
    );
    let entry = log.last().unwrap().clone();
    assert_eq!(entry.action, action);
    assert_eq!(entry.actor, actor, "{entry:?}");
    assert_eq!(entry.on_behalf_of, ON_BEHALF_OF, "{entry:?}");
    // The entry names its commit by the tenant's consistency token, never by the global
    // revision (which would count other tenants' commits); each entry has its own commit.
    assert!(!entry.written_at.is_empty(), "{entry:?}");
    assert!(
        entry.written_at.parse::<u64>().is_err(),
        "a raw revision: {entry:?}"
    );
    if before > 0 {
        assert_ne!(entry.written_at, log[before - 1].written_at, "{entry:?}");
    }
    assert_eq!(entry.client_address, "127.0.0.1", "{entry:?}");
    assert_eq!(entry.sequence, u64::try_from(before + 1).unwrap());
    assert!(!entry.request_id.is_empty());
    if before > 0 {
        assert_eq!(entry.previous_hash, log[before - 1].hash);
    }
    entry
}

/// A server with tenant `a`, its schema and a token of every tenant scope.
async fn tenant_a() -> (TestServer, Token) {
    let server = TestServer::start().await;
    server
        .create_tenant("a", admin::TenantQuotas::default())
        .await;
    let token = server.create_token("a", &TENANT_SCOPES, &[]).await;
    (server, token)
}

#[tokio::test]
async fn every_write_path_appends_exactly_one_entry_with_the_change() {
    let (server, token) = tenant_a().await;
    let secret = &token.secret;
    let n_before = server.audit_log("a").await.len();

    let written = server
        .schema()
        .write_schema(for_someone(req(
            secret,
            pb::WriteSchemaRequest {
                schema: SCHEMA.into(),
            },
        )))
        .await
        .unwrap()
        .into_inner()
        .written_at
        .unwrap();
    let entry = one_new_entry(&server, "a", n_before, "schema.write", &token.id).await;
    // The entry's revision is the one the ZedToken stands for: a read at exactly that
    // snapshot sees the schema.
    let schema_at = server
        .schema()
        .reflect_schema(req(
            secret,
            pb::ReflectSchemaRequest {
                consistency: Some(pb::Consistency {
                    requirement: Some(pb::consistency::Requirement::AtExactSnapshot(
                        written.clone(),
                    )),
                }),
                optional_filters: Vec::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(schema_at.definitions.len(), 4);
    // The entry names the commit by the very token the write returned.
    assert_eq!(entry.written_at, written.token);

    let mut n = n_before + 1;
    let write = server
        .permissions()
        .write_relationships(for_someone(req(
            secret,
            pb::WriteRelationshipsRequest {
                updates: vec![
                    touch("document:1#viewer@user:alice"),
                    touch("document:2#viewer@user:bob"),
                ],
                ..Default::default()
            },
        )))
        .await;
    let written = write.unwrap().into_inner().written_at.unwrap();
    let entry = one_new_entry(&server, "a", n, "relationships.write", &token.id).await;
    assert!(
        entry
            .details_json
            .contains("TOUCH document:1#viewer@user:alice")
    );
    assert_eq!(entry.written_at, written.token);
    n += 1;

    let deleted = server
        .permissions()
        .delete_relationships(for_someone(req(
            secret,
            pb::DeleteRelationshipsRequest {
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "document".into(),
                    optional_resource_id: "2".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )))
        .await
        .unwrap()
        .into_inner()
        .deleted_at
        .unwrap();
    let entry = one_new_entry(&server, "a", n, "relationships.delete", &token.id).await;
    assert_eq!(entry.written_at, deleted.token);
    n += 1;

    let import = tokio_stream::iter(vec![
        pb::ImportBulkRelationshipsRequest {
            relationships: vec![rel("document:3#viewer@user:carol")],
        },
        pb::ImportBulkRelationshipsRequest {
            relationships: vec![rel("document:4#viewer@user:carol")],
        },
    ]);
    let loaded = server
        .permissions()
        .import_bulk_relationships(for_someone(req(secret, import)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(loaded.num_loaded, 2);
    one_new_entry(&server, "a", n, "relationships.import", &token.id).await;
    n += 1;

    // Token actions by the tenant's own admin token land in its log.
    let created = server
        .tokens()
        .create_token(for_someone(req(
            secret,
            admin::CreateTokenRequest {
                tenant: String::new(),
                scopes: vec![admin::Scope::Check as i32],
                definitions: Vec::new(),
                ttl: Some(duration(Duration::from_secs(600))),
                description: "audited".into(),
            },
        )))
        .await
        .unwrap()
        .into_inner();
    let new_id = created.token.unwrap().id;
    let entry = one_new_entry(&server, "a", n, "token.create", &token.id).await;
    assert!(entry.details_json.contains(&new_id));
    assert!(!entry.details_json.contains(&created.secret_token));
    n += 1;
    let rotated = server
        .tokens()
        .rotate_token(for_someone(req(
            secret,
            admin::RotateTokenRequest {
                token_id: new_id.clone(),
                grace_period: Some(duration(Duration::from_secs(60))),
            },
        )))
        .await
        .unwrap()
        .into_inner();
    let entry = one_new_entry(&server, "a", n, "token.rotate", &token.id).await;
    assert!(!entry.details_json.contains(&rotated.secret_token));
    n += 1;
    server
        .tokens()
        .revoke_token(for_someone(req(
            secret,
            admin::RevokeTokenRequest {
                token_id: new_id.clone(),
            },
        )))
        .await
        .unwrap();
    one_new_entry(&server, "a", n, "token.revoke", &token.id).await;
    n += 1;

    // Tenant actions by root land in the system tenant's log, with the operator as actor.
    let operator = "0".repeat(16);
    let system = "_system";
    let mut n_system = server.audit_log(system).await.len();
    server
        .tenants()
        .create_tenant(for_someone(req(
            ROOT,
            admin::CreateTenantRequest {
                id: "c".into(),
                quotas: None,
            },
        )))
        .await
        .unwrap();
    one_new_entry(&server, system, n_system, "tenant.create", &operator).await;
    n_system += 1;
    server
        .tenants()
        .set_tenant_quotas(for_someone(req(
            ROOT,
            admin::SetTenantQuotasRequest {
                id: "c".into(),
                quotas: Some(admin::TenantQuotas {
                    max_relationships: 10,
                    ..Default::default()
                }),
            },
        )))
        .await
        .unwrap();
    one_new_entry(&server, system, n_system, "tenant.set_quotas", &operator).await;
    n_system += 1;
    server
        .tenants()
        .suspend_tenant(for_someone(req(
            ROOT,
            admin::SuspendTenantRequest { id: "c".into() },
        )))
        .await
        .unwrap();
    one_new_entry(&server, system, n_system, "tenant.suspend", &operator).await;
    n_system += 1;
    server
        .tenants()
        .resume_tenant(for_someone(req(
            ROOT,
            admin::ResumeTenantRequest { id: "c".into() },
        )))
        .await
        .unwrap();
    one_new_entry(&server, system, n_system, "tenant.resume", &operator).await;
    n_system += 1;

    // An authentication failure: one entry in the system log, without an actor.
    let failed = server
        .schema()
        .read_schema(for_someone(req(
            "ost_vvvvvvvvvvvvvvvv_0000000000000000000000000000000000000000000000000000",
            pb::ReadSchemaRequest {},
        )))
        .await;
    expect_code(failed, Code::Unauthenticated);
    one_new_entry(&server, system, n_system, "auth.failure", "").await;
    n_system += 1;

    // Deleting a tenant: one entry for the request, one for the background purge.
    server
        .tenants()
        .delete_tenant(for_someone(req(
            ROOT,
            admin::DeleteTenantRequest { id: "c".into() },
        )))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server
        .tenants()
        .get_tenant(req(ROOT, admin::GetTenantRequest { id: "c".into() }))
        .await
        .is_ok()
    {
        assert!(tokio::time::Instant::now() < deadline, "tenant not purged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = server.audit_log(system).await;
    let actions: Vec<(&str, &str)> = log[n_system..]
        .iter()
        .map(|entry| (entry.action.as_str(), entry.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![("tenant.delete", operator.as_str()), ("tenant.purge", "")]
    );
    assert_eq!(log[n_system].on_behalf_of, ON_BEHALF_OF);

    // Nothing else reached `a`'s log, and the chain verifies.
    assert_eq!(server.audit_log("a").await.len(), n);
    let verified = server
        .audit()
        .verify_audit_log(req(
            secret,
            admin::VerifyAuditLogRequest {
                tenant: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(verified.intact, "{verified:?}");
    assert_eq!(verified.entries_checked, u64::try_from(n).unwrap());
    server.stop().await;
}

#[tokio::test]
async fn a_failed_write_appends_nothing() {
    let (server, token) = tenant_a().await;
    let secret = &token.secret;
    server.write_schema(secret, SCHEMA).await;
    server
        .write(secret, vec![touch("document:1#viewer@user:alice")])
        .await
        .unwrap();
    let before = server.audit_log("a").await;
    let create_existing = pb::RelationshipUpdate {
        operation: pb::relationship_update::Operation::Create as i32,
        relationship: Some(rel("document:1#viewer@user:alice")),
    };
    expect_code(
        server.write(secret, vec![create_existing]).await,
        Code::AlreadyExists,
    );
    expect_code(
        server
            .write(secret, vec![touch("nothing:1#viewer@user:alice")])
            .await,
        Code::FailedPrecondition,
    );
    let failed_precondition = server
        .permissions()
        .write_relationships(req(
            secret,
            pb::WriteRelationshipsRequest {
                updates: vec![touch("document:2#viewer@user:bob")],
                optional_preconditions: vec![pb::Precondition {
                    operation: pb::precondition::Operation::MustMatch as i32,
                    filter: Some(pb::RelationshipFilter {
                        resource_type: "document".into(),
                        optional_resource_id: "9".into(),
                        ..Default::default()
                    }),
                }],
                optional_transaction_metadata: None,
            },
        ))
        .await;
    expect_code(failed_precondition, Code::FailedPrecondition);
    let bad_schema = server
        .schema()
        .write_schema(req(
            secret,
            pb::WriteSchemaRequest {
                schema: "definition {".into(),
            },
        ))
        .await;
    expect_code(bad_schema, Code::InvalidArgument);
    // Dropping a relation in use is refused.
    let orphaning = server
        .schema()
        .write_schema(req(
            secret,
            pb::WriteSchemaRequest {
                schema: "definition user {}\ndefinition document {}\n".into(),
            },
        ))
        .await;
    expect_code(orphaning, Code::FailedPrecondition);
    let import = tokio_stream::iter(vec![pb::ImportBulkRelationshipsRequest {
        relationships: vec![
            rel("document:5#viewer@user:bob"),
            rel("document:1#viewer@user:alice"),
        ],
    }]);
    let imported = server
        .permissions()
        .import_bulk_relationships(req(secret, import))
        .await;
    assert!(imported.is_err(), "{imported:?}");
    let checker = server.create_token("a", &[admin::Scope::Check], &[]).await;
    let before_denied = server.audit_log("a").await;
    assert_eq!(before_denied.len(), before.len() + 1, "the token creation");
    expect_code(
        server
            .write(&checker.secret, vec![touch("document:3#viewer@user:bob")])
            .await,
        Code::PermissionDenied,
    );
    let delete_denied = server
        .write(
            &checker.secret,
            vec![delete("document:1#viewer@user:alice")],
        )
        .await;
    expect_code(delete_denied, Code::PermissionDenied);
    let after = server.audit_log("a").await;
    assert_eq!(after, before_denied);
    assert_eq!(
        server.dump("a").await,
        vec!["document:1#viewer@user:alice".to_owned()]
    );
    server.stop().await;
}

/// The store key of audit entry `sequence`.
fn key(sequence: u64) -> [u8; 8] {
    sequence.to_be_bytes()
}

fn audit_namespace() -> RecordNamespace {
    RecordNamespace::new("audit").unwrap()
}

fn read_entry(server: &TestServer, tenant: &TenantId, sequence: u64) -> Vec<u8> {
    server
        .store
        .read_record(tenant, &audit_namespace(), &key(sequence))
        .unwrap()
        .unwrap()
}

fn put_entry(server: &TestServer, tenant: &TenantId, sequence: u64, bytes: &[u8]) {
    server
        .store
        .read_write_with(tenant, |txn| {
            txn.put_record(&audit_namespace(), &key(sequence), bytes)
        })
        .unwrap();
}

fn remove_entry(server: &TestServer, tenant: &TenantId, sequence: u64) {
    server
        .store
        .read_write_with(tenant, |txn| {
            txn.delete_record(&audit_namespace(), &key(sequence))
        })
        .unwrap();
}

async fn verify(server: &TestServer, token: &str) -> admin::VerifyAuditLogResponse {
    server
        .audit()
        .verify_audit_log(req(token, admin::VerifyAuditLogRequest::default()))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn verify_passes_intact_and_pinpoints_a_flipped_byte_a_removed_entry_and_a_reordered_pair() {
    let (server, token) = tenant_a().await;
    let secret = &token.secret;
    server.write_schema(secret, SCHEMA).await;
    for idx in 0..4 {
        server
            .write(
                secret,
                vec![touch(&format!("document:{idx}#viewer@user:alice"))],
            )
            .await
            .unwrap();
    }
    let a = TenantId::new("a").unwrap();
    let intact = verify(&server, secret).await;
    assert!(intact.intact, "{intact:?}");
    let n_entries = intact.entries_checked;
    // The token's creation, the schema and four writes.
    assert_eq!(n_entries, 6);

    // A flipped byte in entry 3's details (still valid JSON, different content).
    let original = read_entry(&server, &a, 3);
    let at = original
        .windows(5)
        .position(|window| window == b"alice")
        .unwrap();
    let mut flipped = original.clone();
    flipped[at] ^= 0x01;
    put_entry(&server, &a, 3, &flipped);
    let report = verify(&server, secret).await;
    assert!(!report.intact);
    assert_eq!(report.problem_sequence, 3, "{report:?}");
    assert!(report.problem.contains("tampered"), "{report:?}");
    // A byte that breaks the JSON is caught too.
    let mut broken = original.clone();
    broken[0] ^= 0xff;
    put_entry(&server, &a, 3, &broken);
    let report = verify(&server, secret).await;
    assert_eq!(
        (report.intact, report.problem_sequence),
        (false, 3),
        "{report:?}"
    );
    put_entry(&server, &a, 3, &original);
    assert!(verify(&server, secret).await.intact);

    // A removed entry.
    let removed = read_entry(&server, &a, 2);
    remove_entry(&server, &a, 2);
    let report = verify(&server, secret).await;
    assert!(!report.intact);
    assert_eq!(report.problem_sequence, 2, "{report:?}");
    assert!(report.problem.contains("missing"), "{report:?}");
    put_entry(&server, &a, 2, &removed);
    assert!(verify(&server, secret).await.intact);

    // A reordered pair: entries 2 and 3 swap places.
    let second = read_entry(&server, &a, 2);
    let third = read_entry(&server, &a, 3);
    put_entry(&server, &a, 2, &third);
    put_entry(&server, &a, 3, &second);
    let report = verify(&server, secret).await;
    assert!(!report.intact);
    assert_eq!(report.problem_sequence, 2, "{report:?}");
    assert!(report.problem.contains("reordered"), "{report:?}");
    put_entry(&server, &a, 2, &second);
    put_entry(&server, &a, 3, &third);
    assert!(verify(&server, secret).await.intact);

    // A truncated tail: the last entry removed.
    let last = read_entry(&server, &a, n_entries);
    remove_entry(&server, &a, n_entries);
    let report = verify(&server, secret).await;
    assert!(!report.intact, "{report:?}");
    assert_eq!(report.problem_sequence, n_entries, "{report:?}");
    put_entry(&server, &a, n_entries, &last);
    let report = verify(&server, secret).await;
    assert!(report.intact, "{report:?}");
    assert_eq!(report.entries_checked, n_entries);
    server.stop().await;
}

#[tokio::test]
async fn request_ids_in_the_audit_log_do_not_count_other_tenants_requests() {
    let (server, token) = tenant_a().await;
    let secret = &token.secret;
    server.write_schema(secret, SCHEMA).await;
    server
        .create_tenant("b", admin::TenantQuotas::default())
        .await;
    let b_token = server.create_token("b", &[admin::Scope::Read], &[]).await;
    server
        .write(secret, vec![touch("document:1#viewer@user:alice")])
        .await
        .unwrap();
    let n_b_requests = 25;
    for _ in 0..n_b_requests {
        server
            .schema()
            .read_schema(req(&b_token.secret, pb::ReadSchemaRequest {}))
            .await
            .ok();
    }
    server
        .write(secret, vec![touch("document:2#viewer@user:alice")])
        .await
        .unwrap();
    let log = server.audit_log("a").await;
    let ids: Vec<&str> = log[log.len() - 2..]
        .iter()
        .map(|entry| entry.request_id.as_str())
        .collect();
    // Generated ids are opaque: 16 hex digits that say nothing about the requests between.
    for id in &ids {
        assert_eq!(id.len(), 16, "{ids:?}");
        assert!(id.bytes().all(|byte| byte.is_ascii_hexdigit()), "{ids:?}");
    }
    assert_ne!(ids[0], ids[1]);
    let as_numbers = (
        u64::from_str_radix(ids[0], 16).unwrap(),
        u64::from_str_radix(ids[1], 16).unwrap(),
    );
    assert!(
        as_numbers.1.abs_diff(as_numbers.0) > 1000,
        "request ids look like a counter: {ids:?}"
    );
    // A request id the client sends is kept as is.
    let mut request = req(
        secret,
        pb::WriteRelationshipsRequest {
            updates: vec![touch("document:3#viewer@user:alice")],
            ..Default::default()
        },
    );
    request
        .metadata_mut()
        .insert("x-request-id", "client-chosen-7".parse().unwrap());
    server
        .permissions()
        .write_relationships(request)
        .await
        .unwrap();
    let log = server.audit_log("a").await;
    assert_eq!(log.last().unwrap().request_id, "client-chosen-7");
    server.stop().await;
}
