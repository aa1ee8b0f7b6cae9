//! Transport latency: the server sets `TCP_NODELAY` on accepted connections, so a small
//! response is not held back by Nagle's algorithm waiting for the client's delayed ACK
//! (about 40 ms per call on Linux loopback).

use std::time::{Duration, Instant};

use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::ostiary::admin::v1 as admin;

use crate::support::{SCHEMA, TENANT_SCOPES, TestServer, req};

#[tokio::test]
async fn sequential_small_calls_are_not_delayed_by_nagle() {
    let server = TestServer::start().await;
    server
        .create_tenant("a", admin::TenantQuotas::default())
        .await;
    let token = server.create_token("a", &TENANT_SCOPES, &[]).await.secret;
    server.write_schema(&token, SCHEMA).await;
    let mut client = server.schema();
    let n_calls: u32 = 50;
    let started = Instant::now();
    for _ in 0..n_calls {
        client
            .read_schema(req(&token, pb::ReadSchemaRequest {}))
            .await
            .unwrap();
    }
    let elapsed = started.elapsed();
    // A debug build answers in about a millisecond; one delayed ACK costs 40 ms.
    assert!(
        elapsed < Duration::from_millis(20) * n_calls,
        "{n_calls} calls took {elapsed:?}"
    );
    server.stop().await;
}
