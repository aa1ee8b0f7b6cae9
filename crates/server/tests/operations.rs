//! Operating the server: the Prometheus endpoint after real RPCs, gRPC over TLS with a
//! generated CA, and graceful shutdown (in-flight calls finish, Watch streams end cleanly,
//! the shutdown is bounded by its timeout). Servers run in-process on `127.0.0.1:0`.

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
use ostiary_server::{GrpcTls, ServeOptions, ServerConfig, ServerState, serve_metrics, serve_with};
use ostiary_store::DatastoreOptions;
use ostiary_store_mem::MemDatastore;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic::{Code, Request};

const KEY: &str = "test-key";

fn authed<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    request
}

fn new_state() -> Arc<ServerState> {
    Arc::new(
        ServerState::new(
            Arc::new(MemDatastore::new(DatastoreOptions::default())),
            Engine::default(),
            ServerConfig::default(),
            vec![KEY.to_owned()],
        )
        .unwrap(),
    )
}

/// A server started with `options`, stopped through `stop`.
struct Running {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

async fn start(state: Arc<ServerState>, options: ServeOptions) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(serve_with(listener, state, options, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        handle,
    }
}

async fn plaintext(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

const SCHEMA: &str =
    "definition user {}\ndefinition doc {\n  relation viewer: user\n  permission view = viewer\n}";

fn doc_viewer(doc: &str, user: &str) -> pb::Relationship {
    pb::Relationship {
        resource: Some(pb::ObjectReference {
            object_type: "doc".into(),
            object_id: doc.into(),
        }),
        relation: "viewer".into(),
        subject: Some(pb::SubjectReference {
            object: Some(pb::ObjectReference {
                object_type: "user".into(),
                object_id: user.into(),
            }),
            optional_relation: String::new(),
        }),
        optional_caveat: None,
        optional_expires_at: None,
    }
}

fn check_request(user: &str) -> pb::CheckPermissionRequest {
    pb::CheckPermissionRequest {
        consistency: Some(pb::Consistency {
            requirement: Some(pb::consistency::Requirement::FullyConsistent(true)),
        }),
        resource: Some(pb::ObjectReference {
            object_type: "doc".into(),
            object_id: "1".into(),
        }),
        permission: "view".into(),
        subject: Some(pb::SubjectReference {
            object: Some(pb::ObjectReference {
                object_type: "user".into(),
                object_id: user.into(),
            }),
            optional_relation: String::new(),
        }),
        context: None,
        with_tracing: false,
    }
}

async fn write_schema_and_viewer(channel: &Channel) {
    SchemaServiceClient::new(channel.clone())
        .write_schema(authed(pb::WriteSchemaRequest {
            schema: SCHEMA.into(),
        }))
        .await
        .unwrap();
    PermissionsServiceClient::new(channel.clone())
        .write_relationships(authed(pb::WriteRelationshipsRequest {
            updates: vec![pb::RelationshipUpdate {
                operation: pb::relationship_update::Operation::Touch as i32,
                relationship: Some(doc_viewer("1", "alice")),
            }],
            optional_preconditions: Vec::new(),
            optional_transaction_metadata: None,
        }))
        .await
        .unwrap();
}

/// GETs `path` from the metrics endpoint and returns the status line and the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample `series` (name and labels exactly as exported).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn the_check_cache_answers_repeated_checks_and_is_exported() {
    let state = Arc::new(
        ServerState::new(
            Arc::new(MemDatastore::new(DatastoreOptions::default())),
            Engine::default().with_check_cache(1 << 20),
            ServerConfig::default(),
            vec![KEY.to_owned()],
        )
        .unwrap(),
    );
    let metrics = Arc::clone(state.metrics().unwrap());
    let server = start(state, ServeOptions::default()).await;
    let channel = plaintext(server.addr).await;
    write_schema_and_viewer(&channel).await;
    let mut permissions = PermissionsServiceClient::new(channel.clone());
    let mut answers = Vec::new();
    for user in ["alice", "alice", "bob", "bob", "alice"] {
        let response = permissions
            .check_permission(authed(check_request(user)))
            .await
            .unwrap()
            .into_inner();
        answers.push(response.permissionship);
    }
    let has = pb::check_permission_response::Permissionship::HasPermission as i32;
    let no = pb::check_permission_response::Permissionship::NoPermission as i32;
    assert_eq!(answers, [has, has, no, no, has]);
    let text = metrics.render();
    assert_eq!(
        sample(&text, "ostiary_check_cache_misses_total"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ostiary_check_cache_hits_total"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ostiary_check_cache_entries"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ostiary_check_cache_capacity_bytes"),
        Some(1_048_576.0)
    );
    assert!(sample(&text, "ostiary_check_cache_bytes").is_some_and(|bytes| bytes > 0.0));
    // Each evaluated check walked `view` and `viewer` of doc:1; cached answers walk nothing.
    assert_eq!(
        sample(&text, "ostiary_dispatches_total"),
        Some(4.0),
        "{text}"
    );
    // Rendering twice does not double-count.
    let text = metrics.render();
    assert_eq!(
        sample(&text, "ostiary_check_cache_hits_total"),
        Some(3.0),
        "{text}"
    );
    // A write makes a new revision: the next check is evaluated again and sees it.
    permissions
        .write_relationships(authed(pb::WriteRelationshipsRequest {
            updates: vec![pb::RelationshipUpdate {
                operation: pb::relationship_update::Operation::Touch as i32,
                relationship: Some(doc_viewer("1", "bob")),
            }],
            optional_preconditions: Vec::new(),
            optional_transaction_metadata: None,
        }))
        .await
        .unwrap();
    let response = permissions
        .check_permission(authed(check_request("bob")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.permissionship, has);
}

#[tokio::test]
async fn metrics_count_rpcs_codes_checks_lookups_cache_and_lag() {
    let state = new_state();
    state.set_store_size(Box::new(|| Some(1234)));
    let metrics = Arc::clone(state.metrics().unwrap());
    let metrics_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics_listener.local_addr().unwrap();
    tokio::spawn(serve_metrics(
        metrics_listener,
        metrics,
        std::future::pending(),
    ));
    let server = start(state, ServeOptions::default()).await;
    let channel = plaintext(server.addr).await;
    write_schema_and_viewer(&channel).await;
    let mut permissions = PermissionsServiceClient::new(channel.clone());
    for user in ["alice", "bob", "carol"] {
        permissions
            .check_permission(authed(check_request(user)))
            .await
            .unwrap();
    }
    // One refused request (bad id) and one unauthenticated one.
    let status = permissions
        .check_permission(authed(check_request("not valid!")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = permissions
        .check_permission(Request::new(check_request("alice")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut stream = permissions
        .lookup_resources(authed(pb::LookupResourcesRequest {
            consistency: check_request("alice").consistency,
            resource_object_type: "doc".into(),
            permission: "view".into(),
            subject: check_request("alice").subject,
            context: None,
            optional_limit: 0,
            optional_cursor: None,
            ..pb::LookupResourcesRequest::default()
        }))
        .await
        .unwrap()
        .into_inner();
    while stream.message().await.unwrap().is_some() {}

    let (status_line, text) = http_get(metrics_addr, "/metrics").await;
    assert_eq!(status_line, "HTTP/1.1 200 OK");
    let check = "method=\"authzed.api.v1.PermissionsService/CheckPermission\"";
    assert_eq!(
        sample(&text, &format!("ostiary_grpc_requests_total{{{check}}}")),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("ostiary_grpc_handled_total{{code=\"OK\",{check}}}")
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("ostiary_grpc_handled_total{{code=\"INVALID_ARGUMENT\",{check}}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("ostiary_grpc_handled_total{{code=\"UNAUTHENTICATED\",{check}}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("ostiary_grpc_request_duration_seconds_count{{{check}}}")
        ),
        Some(5.0)
    );
    assert_eq!(
        sample(
            &text,
            "ostiary_grpc_handled_total{code=\"OK\",method=\"authzed.api.v1.PermissionsService/LookupResources\"}"
        ),
        Some(1.0)
    );
    assert_eq!(sample(&text, "ostiary_checks_total"), Some(3.0));
    assert_eq!(
        sample(
            &text,
            "ostiary_lookup_results_total{method=\"LookupResources\"}"
        ),
        Some(1.0)
    );
    // Four reads used the schema: one compiled it, the others hit the cache.
    assert_eq!(
        sample(&text, "ostiary_schema_cache_misses_total"),
        Some(1.0)
    );
    assert!(sample(&text, "ostiary_schema_cache_hits_total").unwrap() >= 3.0);
    // Fully consistent checks are served at head: a lag of zero.
    assert!(sample(&text, "ostiary_read_revision_lag_bucket{le=\"0\"}").unwrap() >= 3.0);
    assert_eq!(sample(&text, "ostiary_grpc_requests_in_flight"), Some(0.0));
    assert_eq!(sample(&text, "ostiary_store_bytes"), Some(1234.0));

    let (status_line, _) = http_get(metrics_addr, "/other").await;
    assert_eq!(status_line, "HTTP/1.1 404 Not Found");
}

/// A CA and a `localhost` certificate it signed, as PEM (CA, certificate, key).
fn generate_pki() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn tls_clients_trusting_the_ca_get_answers_and_plaintext_clients_do_not() {
    let (ca, cert, key) = generate_pki();
    let dir = std::env::temp_dir().join(format!("ostiary-server-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let tls = GrpcTls::from_pem_files(&cert_path, &key_path).unwrap();
    // A key that does not belong to the certificate is refused up front.
    let (_, _, other_key) = generate_pki();
    let other_key_path = dir.join("other-key.pem");
    std::fs::write(&other_key_path, other_key).unwrap();
    let err = GrpcTls::from_pem_files(&cert_path, &other_key_path).unwrap_err();
    assert!(
        err.to_string().starts_with("invalid TLS certificate"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let server = start(
        new_state(),
        ServeOptions {
            tls: Some(tls),
            ..ServeOptions::default()
        },
    )
    .await;
    let channel = Channel::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap();
    write_schema_and_viewer(&channel).await;
    let answer = PermissionsServiceClient::new(channel)
        .check_permission(authed(check_request("alice")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.permissionship,
        pb::check_permission_response::Permissionship::HasPermission as i32
    );

    // Plaintext HTTP/2 against the TLS port fails, at connect or at the first call.
    let plaintext = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let res = PermissionsServiceClient::new(channel)
            .check_permission(authed(check_request("alice")))
            .await;
        assert!(res.is_err(), "a plaintext call got an answer");
    }
}

#[tokio::test]
async fn shutdown_finishes_in_flight_calls_and_ends_watch_streams_cleanly() {
    let server = start(new_state(), ServeOptions::default()).await;
    let channel = plaintext(server.addr).await;
    write_schema_and_viewer(&channel).await;
    let mut watch = WatchServiceClient::new(channel.clone())
        .watch(authed(pb::WatchRequest::default()))
        .await
        .unwrap()
        .into_inner();

    // An import whose request stream is still open: a call in flight.
    let (batches, receiver) = tokio::sync::mpsc::channel(4);
    let import = tokio::spawn({
        let channel = channel.clone();
        async move {
            PermissionsServiceClient::new(channel)
                .import_bulk_relationships(authed(tokio_stream::wrappers::ReceiverStream::new(
                    receiver,
                )))
                .await
        }
    });
    batches
        .send(pb::ImportBulkRelationshipsRequest {
            relationships: vec![doc_viewer("2", "bob")],
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut server = server;
    server.stop.take().unwrap().send(()).unwrap();
    // The Watch stream ends without an error, although the client keeps it open.
    let end = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("the watch stream ends on shutdown");
    assert!(matches!(end, Ok(None)), "{end:?}");
    // The in-flight import still completes.
    batches
        .send(pb::ImportBulkRelationshipsRequest {
            relationships: vec![doc_viewer("3", "carol")],
        })
        .await
        .unwrap();
    drop(batches);
    let imported = tokio::time::timeout(Duration::from_secs(5), import)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_inner();
    assert_eq!(imported.num_loaded, 2);
    // And the server stops, well before the 30 s bound.
    tokio::time::timeout(Duration::from_secs(5), server.handle)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
    // Nothing listens any more.
    assert!(TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_is_bounded_by_its_timeout() {
    let server = start(
        new_state(),
        ServeOptions {
            tls: None,
            shutdown_timeout: Duration::from_millis(300),
        },
    )
    .await;
    let channel = plaintext(server.addr).await;
    write_schema_and_viewer(&channel).await;
    // An import that never finishes its request stream.
    let (batches, receiver) = tokio::sync::mpsc::channel(4);
    let _import = tokio::spawn(async move {
        PermissionsServiceClient::new(channel)
            .import_bulk_relationships(authed(tokio_stream::wrappers::ReceiverStream::new(
                receiver,
            )))
            .await
    });
    batches
        .send(pb::ImportBulkRelationshipsRequest {
            relationships: vec![doc_viewer("2", "bob")],
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut server = server;
    let started = std::time::Instant::now();
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.handle)
        .await
        .expect("the timeout stops the server")
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250), "{took:?}");
    drop(batches);
}
