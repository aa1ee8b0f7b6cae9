//! Rate limits, stream caps, the per-source limit on failed authentications and the
//! per-tenant quotas (relationships, schema size) end to end. The token buckets run on
//! real time (governor's clock), so the bounds allow for the refill during a burst.

use std::time::{Duration, Instant};

use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::permissions_service_client::PermissionsServiceClient;
use ostiary_proto::ostiary::admin::v1 as admin;
use ostiary_server::LimitsConfig;
use tonic::{Code, Status};

use crate::support::{
    HOUR, ROOT, SCHEMA, TENANT_SCOPES, TestServer, delete, expect_code, fully_consistent, object,
    rel, relaxed_limits, req, subject, touch,
};

fn check_request(token: &str) -> tonic::Request<pb::CheckPermissionRequest> {
    req(
        token,
        pb::CheckPermissionRequest {
            consistency: fully_consistent(),
            resource: Some(object("document:1")),
            permission: "view".into(),
            subject: Some(subject("user:alice")),
            context: None,
            with_tracing: false,
        },
    )
}

/// A server with tenants `a` and `b`, each with the schema and one relationship.
async fn two_tenants(limits: LimitsConfig) -> TestServer {
    let server = TestServer::start_with(limits).await;
    for tenant in ["a", "b"] {
        server
            .create_tenant(tenant, admin::TenantQuotas::default())
            .await;
        let writer = server.create_token(tenant, &TENANT_SCOPES, &[]).await;
        server.write_schema(&writer.secret, SCHEMA).await;
        server
            .write(&writer.secret, vec![touch("document:1#viewer@user:alice")])
            .await
            .unwrap();
    }
    server
}

/// `n_clients` clients, each on its own connection with its token, sending `n_each`
/// Checks as fast as they can, all at once; every outcome.
async fn burst(server: &TestServer, tokens: &[String], n_each: usize) -> Vec<Result<(), Status>> {
    let mut tasks = Vec::new();
    for token in tokens {
        let channel = server.connect().await;
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = PermissionsServiceClient::new(channel);
            let mut out = Vec::with_capacity(n_each);
            for _ in 0..n_each {
                out.push(
                    client
                        .check_permission(check_request(&token))
                        .await
                        .map(|_| ()),
                );
            }
            out
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.extend(task.await.unwrap());
    }
    out
}

/// Asserts that every refusal is ResourceExhausted with a positive `retry-after-ms`, and
/// returns (admitted, refused).
#[track_caller]
fn tally(outcomes: &[Result<(), Status>]) -> (usize, usize) {
    let mut refused = 0;
    for outcome in outcomes {
        if let Err(status) = outcome {
            assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
            let retry_after: u64 = status
                .metadata()
                .get("retry-after-ms")
                .expect("retry-after-ms metadata")
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry_after > 0 && retry_after <= 1000, "{retry_after}");
            refused += 1;
        }
    }
    (outcomes.len() - refused, refused)
}

/// The most requests a bucket of `rps` per second (burst `rps`) admits in `elapsed`.
fn most_admitted(rps: u32, elapsed: Duration) -> usize {
    let refilled = (f64::from(rps) * elapsed.as_secs_f64()).ceil();
    usize::try_from(rps).unwrap() + refilled as usize + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_request_quota_is_refused_while_another_is_served() {
    let server = two_tenants(relaxed_limits()).await;
    let quota = 20;
    server
        .tenants()
        .set_tenant_quotas(req(
            ROOT,
            admin::SetTenantQuotasRequest {
                id: "a".into(),
                quotas: Some(admin::TenantQuotas {
                    max_requests_per_second: quota,
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap();
    let mut a_tokens = Vec::new();
    let mut b_tokens = Vec::new();
    for _ in 0..4 {
        a_tokens.push(
            server
                .create_token("a", &[admin::Scope::Check], &[])
                .await
                .secret,
        );
        b_tokens.push(
            server
                .create_token("b", &[admin::Scope::Check], &[])
                .await
                .secret,
        );
    }
    let started = Instant::now();
    let (a_outcomes, b_outcomes) =
        tokio::join!(burst(&server, &a_tokens, 30), burst(&server, &b_tokens, 30));
    let elapsed = started.elapsed();
    let (a_admitted, a_refused) = tally(&a_outcomes);
    assert!(
        a_refused > 0,
        "no refusal in a burst of {}",
        a_outcomes.len()
    );
    assert!(
        a_admitted >= usize::try_from(quota).unwrap()
            && a_admitted <= most_admitted(quota, elapsed),
        "{a_admitted} admitted in {elapsed:?}"
    );
    // The other tenant, at the same time: every call served.
    for outcome in &b_outcomes {
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_rate_is_refused_while_other_tokens_are_served() {
    let rps = 10;
    let server = two_tenants(LimitsConfig {
        per_token_rps: rps,
        ..relaxed_limits()
    })
    .await;
    let hot = server
        .create_token("a", &[admin::Scope::Check], &[])
        .await
        .secret;
    let calm_a = server
        .create_token("a", &[admin::Scope::Check], &[])
        .await
        .secret;
    let calm_b = server
        .create_token("b", &[admin::Scope::Check], &[])
        .await
        .secret;
    let started = Instant::now();
    // Three clients share the hot token; two others send a few calls each meanwhile.
    let hot_clients = [hot.clone(), hot.clone(), hot];
    let calm_clients = [calm_a, calm_b];
    let (hot_outcomes, calm_outcomes) = tokio::join!(
        burst(&server, &hot_clients, 15),
        burst(&server, &calm_clients, 5)
    );
    let elapsed = started.elapsed();
    let (admitted, refused) = tally(&hot_outcomes);
    assert!(refused > 0);
    assert!(
        admitted >= usize::try_from(rps).unwrap() && admitted <= most_admitted(rps, elapsed),
        "{admitted} admitted in {elapsed:?}"
    );
    for outcome in &calm_outcomes {
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    server.stop().await;
}

async fn open_watch(
    server: &TestServer,
    token: &str,
) -> Result<tonic::Streaming<pb::WatchResponse>, Status> {
    server
        .watch()
        .watch(req(token, pb::WatchRequest::default()))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn concurrent_streams_are_capped_per_token() {
    let server = two_tenants(LimitsConfig {
        max_streams_per_token: 2,
        ..relaxed_limits()
    })
    .await;
    let token = server
        .create_token("a", &[admin::Scope::Watch], &[])
        .await
        .secret;
    let other = server
        .create_token("a", &[admin::Scope::Watch], &[])
        .await
        .secret;
    let first = open_watch(&server, &token).await.unwrap();
    let _second = open_watch(&server, &token).await.unwrap();
    let status = expect_code(open_watch(&server, &token).await, Code::ResourceExhausted);
    assert!(status.message().contains("streams"), "{status:?}");
    let _other = open_watch(&server, &other).await.unwrap();
    // Closing a stream frees its slot.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    let _third = loop {
        match open_watch(&server, &token).await {
            Ok(stream) => break stream,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                assert!(Instant::now() < deadline, "the slot was never freed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    server.stop().await;
}

#[tokio::test]
async fn repeated_failed_authentications_block_the_source_even_with_a_good_token() {
    let server = two_tenants(LimitsConfig {
        auth_failures_per_minute: 3,
        ..relaxed_limits()
    })
    .await;
    let good = server
        .create_token("a", &[admin::Scope::Check], &[])
        .await
        .secret;
    let mut client = server.permissions();
    assert!(client.check_permission(check_request(&good)).await.is_ok());
    let wrong = format!("ost_{}_{}", "v".repeat(16), "0".repeat(52));
    for _ in 0..4 {
        let status = expect_code(
            client.check_permission(check_request(&wrong)).await,
            Code::Unauthenticated,
        );
        assert_eq!(status.message(), "invalid token");
    }
    // Now the address is refused, whatever it presents (the preshared key too).
    let status = expect_code(
        client.check_permission(check_request(&good)).await,
        Code::Unauthenticated,
    );
    assert!(status.message().contains("too many"), "{status:?}");
    let status = expect_code(
        server
            .schema()
            .read_schema(req(ROOT, pb::ReadSchemaRequest {}))
            .await,
        Code::Unauthenticated,
    );
    assert!(status.message().contains("too many"), "{status:?}");
    server.stop().await;
}

async fn set_quotas(server: &TestServer, tenant: &str, quotas: admin::TenantQuotas) {
    server
        .tenants()
        .set_tenant_quotas(req(
            ROOT,
            admin::SetTenantQuotasRequest {
                id: tenant.into(),
                quotas: Some(quotas),
            },
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_relationship_quota_refuses_growth_and_allows_deletes() {
    let server = two_tenants(relaxed_limits()).await;
    let token = server.create_token("a", &TENANT_SCOPES, &[]).await.secret;
    // `a` holds one relationship before the quota exists: it is counted.
    set_quotas(
        &server,
        "a",
        admin::TenantQuotas {
            max_relationships: 4,
            ..Default::default()
        },
    )
    .await;
    server
        .write(
            &token,
            vec![
                touch("document:2#viewer@user:alice"),
                touch("document:3#viewer@user:alice"),
            ],
        )
        .await
        .unwrap();
    // Touching existing relationships does not grow the count.
    server
        .write(&token, vec![touch("document:2#viewer@user:alice")])
        .await
        .unwrap();
    server
        .write(&token, vec![touch("document:4#viewer@user:alice")])
        .await
        .unwrap();
    let status = expect_code(
        server
            .write(&token, vec![touch("document:5#viewer@user:alice")])
            .await,
        Code::ResourceExhausted,
    );
    assert!(status.message().contains("quota"), "{status:?}");
    let import = tokio_stream::iter(vec![pb::ImportBulkRelationshipsRequest {
        relationships: vec![rel("document:6#viewer@user:alice")],
    }]);
    let imported = server
        .permissions()
        .import_bulk_relationships(req(&token, import))
        .await;
    expect_code(imported, Code::ResourceExhausted);
    // A swap that keeps the count is allowed at the limit.
    server
        .write(
            &token,
            vec![
                delete("document:4#viewer@user:alice"),
                touch("document:5#viewer@user:alice"),
            ],
        )
        .await
        .unwrap();
    // Deletes are always allowed, and free room.
    server
        .write(&token, vec![delete("document:5#viewer@user:alice")])
        .await
        .unwrap();
    server
        .permissions()
        .delete_relationships(req(
            &token,
            pb::DeleteRelationshipsRequest {
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "document".into(),
                    optional_resource_id: "3".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    server
        .write(
            &token,
            vec![
                touch("document:7#viewer@user:alice"),
                touch("document:8#viewer@user:alice"),
            ],
        )
        .await
        .unwrap();
    expect_code(
        server
            .write(&token, vec![touch("document:9#viewer@user:alice")])
            .await,
        Code::ResourceExhausted,
    );
    assert_eq!(server.dump("a").await.len(), 4);
    // `b` has no quota.
    let b_token = server.create_token("b", &TENANT_SCOPES, &[]).await.secret;
    let many: Vec<_> = (0..20)
        .map(|idx| touch(&format!("document:{idx}#viewer@user:bob")))
        .collect();
    server.write(&b_token, many).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn the_schema_size_quota_refuses_a_big_schema() {
    let server = two_tenants(relaxed_limits()).await;
    let token = server.create_token("a", &TENANT_SCOPES, &[]).await.secret;
    set_quotas(
        &server,
        "a",
        admin::TenantQuotas {
            max_schema_bytes: u64::try_from(SCHEMA.len()).unwrap(),
            ..Default::default()
        },
    )
    .await;
    // The current schema fits exactly; one more definition does not.
    server.write_schema(&token, SCHEMA).await;
    let bigger = format!("{SCHEMA}definition extra {{}}\n");
    let status = expect_code(
        server
            .schema()
            .write_schema(req(&token, pb::WriteSchemaRequest { schema: bigger }))
            .await,
        Code::ResourceExhausted,
    );
    assert!(status.message().contains("bytes"), "{status:?}");
    assert_eq!(server.schema_text("a").await.unwrap(), SCHEMA);
    server.stop().await;
}

#[tokio::test]
async fn the_tenant_request_quota_covers_token_and_audit_calls() {
    let server = two_tenants(relaxed_limits()).await;
    let quota = 5;
    set_quotas(
        &server,
        "a",
        admin::TenantQuotas {
            max_requests_per_second: quota,
            ..Default::default()
        },
    )
    .await;
    let admin_token = server
        .create_token("a", &[admin::Scope::Admin], &[])
        .await
        .secret;
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for idx in 0..30 {
        let res = if idx % 2 == 0 {
            server
                .tokens()
                .list_tokens(req(&admin_token, admin::ListTokensRequest::default()))
                .await
                .map(|_| ())
        } else {
            server
                .audit()
                .verify_audit_log(req(&admin_token, admin::VerifyAuditLogRequest::default()))
                .await
                .map(|_| ())
        };
        outcomes.push(res);
    }
    let elapsed = started.elapsed();
    let (admitted, refused) = tally(&outcomes);
    assert!(refused > 0, "30 admin calls in {elapsed:?}, none refused");
    assert!(admitted <= most_admitted(quota, elapsed), "{admitted}");
    // Root is not held to a tenant's quota.
    for _ in 0..30 {
        server
            .tokens()
            .list_tokens(req(ROOT, admin::ListTokensRequest { tenant: "a".into() }))
            .await
            .unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn refusing_a_correct_but_unusable_token_does_not_block_its_address() {
    let server = two_tenants(LimitsConfig {
        auth_failures_per_minute: 3,
        ..relaxed_limits()
    })
    .await;
    // One client address (a platform's backend) serves tenants `a` and `b`.
    let a_token = server
        .create_token("a", &[admin::Scope::Check], &[])
        .await
        .secret;
    let short_lived =
        crate::support::create_token_as(&server, ROOT, "b", &[admin::Scope::Check], &[], HOUR)
            .await
            .unwrap()
            .secret;
    let b_token = server
        .create_token("b", &[admin::Scope::Check], &[])
        .await
        .secret;
    let mut client = server.permissions();
    // `a` is suspended and `b`'s short-lived token expires, but their clients keep calling.
    server
        .tenants()
        .suspend_tenant(req(ROOT, admin::SuspendTenantRequest { id: "a".into() }))
        .await
        .unwrap();
    server.clock.advance(HOUR);
    for _ in 0..10 {
        expect_code(
            client.check_permission(check_request(&a_token)).await,
            Code::PermissionDenied,
        );
        let status = expect_code(
            client.check_permission(check_request(&short_lived)).await,
            Code::Unauthenticated,
        );
        assert_eq!(status.message(), "token expired");
    }
    // Those were not guesses: the address is not blocked for `b`'s valid token.
    client
        .check_permission(check_request(&b_token))
        .await
        .unwrap();
    // Guessing still is.
    let wrong = format!("ost_{}_{}", "v".repeat(16), "0".repeat(52));
    for _ in 0..4 {
        expect_code(
            client.check_permission(check_request(&wrong)).await,
            Code::Unauthenticated,
        );
    }
    let status = expect_code(
        client.check_permission(check_request(&b_token)).await,
        Code::Unauthenticated,
    );
    assert!(status.message().contains("too many"), "{status:?}");
    server.stop().await;
}
