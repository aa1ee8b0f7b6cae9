//! `ostiary export` / `ostiary import` against real servers: a full copy between two
//! servers, a tampered file refused before any write, and resumed imports and exports.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code"
)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::permissions_service_client::PermissionsServiceClient;
use ostiary_proto::authzed::api::v1::schema_service_client::SchemaServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

const KEY: &str = "k";

const SCHEMA: &str = "use expiration\n\n\
caveat allowed_ip(allowed bool) {\n\tallowed\n}\n\n\
definition user {}\n\n\
definition group {\n\trelation member: user\n}\n\n\
definition document {\n\trelation viewer: user | user with allowed_ip | user with expiration | group#member\n\tpermission view = viewer\n}\n";

/// How many relationships the source server holds.
const N_RELATIONSHIPS: usize = 3000;

#[derive(Clone)]
struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// A running `ostiary serve` on a memory datastore; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    channel: Channel,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start() -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ostiary"));
        command
            .args(["serve", "--grpc-addr", "127.0.0.1:0"])
            .args(["--datastore-engine", "memory", "--grpc-preshared-key", KEY])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OSTIARY_") {
                command.env_remove(&name);
            }
        }
        command.env("OSTIARY_LOG", "info").env("NO_COLOR", "1");
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let addr = line
                    .contains("serving gRPC")
                    .then(|| line.split_once("addr="))
                    .flatten()
                    .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok());
                if let Some(addr) = addr
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        let server = Self {
            child,
            addr,
            channel,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server
            .schema()
            .read_schema(pb::ReadSchemaRequest {})
            .await
            .is_err_and(|status| status.code() == Code::Unavailable)
        {
            assert!(Instant::now() < deadline, "the server is not ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    fn authed(&self) -> Authed {
        InterceptedService::new(
            self.channel.clone(),
            Bearer(format!("Bearer {KEY}").parse().unwrap()),
        )
    }

    fn permissions(&self) -> PermissionsServiceClient<Authed> {
        PermissionsServiceClient::new(self.authed())
    }

    fn schema(&self) -> SchemaServiceClient<Authed> {
        SchemaServiceClient::new(self.authed())
    }

    fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    async fn write_schema(&self, schema: &str) {
        self.schema()
            .write_schema(pb::WriteSchemaRequest {
                schema: schema.to_owned(),
            })
            .await
            .unwrap();
    }

    /// The schema text, or `None` when there is none.
    async fn read_schema(&self) -> Option<String> {
        match self.schema().read_schema(pb::ReadSchemaRequest {}).await {
            Ok(response) => Some(response.into_inner().schema_text),
            Err(status) if status.code() == Code::NotFound => None,
            Err(status) => panic!("ReadSchema failed: {status}"),
        }
    }

    async fn create(&self, rels: &[pb::Relationship]) {
        for chunk in rels.chunks(1000) {
            self.permissions()
                .write_relationships(pb::WriteRelationshipsRequest {
                    updates: chunk
                        .iter()
                        .map(|rel| pb::RelationshipUpdate {
                            operation: pb::relationship_update::Operation::Create.into(),
                            relationship: Some(rel.clone()),
                        })
                        .collect(),
                    optional_preconditions: Vec::new(),
                    optional_transaction_metadata: None,
                })
                .await
                .unwrap();
        }
    }

    /// Every relationship of `document` and `group`, in Debug form, sorted.
    async fn read_all(&self) -> Vec<String> {
        let mut all = Vec::new();
        for resource_type in ["document", "group"] {
            let mut stream = self
                .permissions()
                .read_relationships(pb::ReadRelationshipsRequest {
                    consistency: Some(pb::Consistency {
                        requirement: Some(pb::consistency::Requirement::FullyConsistent(true)),
                    }),
                    relationship_filter: Some(pb::RelationshipFilter {
                        resource_type: resource_type.to_owned(),
                        ..Default::default()
                    }),
                    optional_limit: 0,
                    optional_cursor: None,
                })
                .await
                .unwrap()
                .into_inner();
            while let Some(response) = stream.message().await.unwrap() {
                all.push(format!("{:?}", response.relationship.unwrap()));
            }
        }
        all.sort();
        all
    }
}

fn object(object_type: &str, object_id: &str) -> pb::ObjectReference {
    pb::ObjectReference {
        object_type: object_type.to_owned(),
        object_id: object_id.to_owned(),
    }
}

/// A mix of plain, caveated, expiring and subject-set relationships.
fn relationships() -> Vec<pb::Relationship> {
    (0..N_RELATIONSHIPS)
        .map(|idx| {
            let mut rel = pb::Relationship {
                resource: Some(object("document", &format!("doc{}", idx / 4))),
                relation: "viewer".to_owned(),
                subject: Some(pb::SubjectReference {
                    object: Some(object("user", &format!("u{idx}"))),
                    optional_relation: String::new(),
                }),
                optional_caveat: None,
                optional_expires_at: None,
            };
            match idx % 5 {
                0 => {
                    let allowed = prost_types::Value {
                        kind: Some(prost_types::value::Kind::BoolValue(idx % 2 == 0)),
                    };
                    rel.optional_caveat = Some(pb::ContextualizedCaveat {
                        caveat_name: "allowed_ip".to_owned(),
                        context: Some(prost_types::Struct {
                            fields: [("allowed".to_owned(), allowed)].into_iter().collect(),
                        }),
                    });
                }
                1 => {
                    rel.optional_expires_at = Some(prost_types::Timestamp {
                        seconds: 4_102_444_800 + i64::try_from(idx).unwrap(),
                        nanos: 0,
                    });
                }
                2 => {
                    rel.subject = Some(pb::SubjectReference {
                        object: Some(object("group", &format!("g{}", idx % 7))),
                        optional_relation: "member".to_owned(),
                    });
                }
                3 => {
                    rel.resource = Some(object("group", &format!("g{}", idx % 7)));
                    rel.relation = "member".to_owned();
                }
                _ => {}
            }
            rel
        })
        .collect()
}

/// Runs `ostiary ARGS --endpoint ENDPOINT --token KEY`.
fn ostiary(args: &[&str], server: &Server) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ostiary"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OSTIARY_") {
            command.env_remove(&name);
        }
    }
    command
        .args(args)
        .args(["--endpoint", &server.endpoint(), "--token", KEY])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "ostiary failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A source server holding [`SCHEMA`] and [`relationships`], and its export in `dir`.
async fn exported(dir: &Path) -> (Server, std::path::PathBuf) {
    let source = Server::start().await;
    source.write_schema(SCHEMA).await;
    source.create(&relationships()).await;
    let file = dir.join("export.jsonl");
    assert_ok(&ostiary(&["export", file.to_str().unwrap()], &source));
    (source, file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_copies_schema_and_relationships() {
    let dir = tempfile::tempdir().unwrap();
    let (source, file) = exported(dir.path()).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let header: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(header["format"], "ostiary-export");
    assert_eq!(header["version"], 1);
    let trailer: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(trailer["count"], N_RELATIONSHIPS);
    assert_eq!(trailer["sha256"].as_str().unwrap().len(), 64);
    assert!(text.contains(r#""caveat":{"name":"allowed_ip","context":{"allowed":true}}"#));
    assert!(text.contains(r#""expires_at":"2100-01-01T00:00:01Z""#));
    assert!(text.contains(r#""subject":{"type":"group","id":"g2","relation":"member"}"#));

    let target = Server::start().await;
    assert_ok(&ostiary(&["import", file.to_str().unwrap()], &target));
    assert_eq!(target.read_schema().await, source.read_schema().await);
    let copied = target.read_all().await;
    assert_eq!(copied.len(), N_RELATIONSHIPS);
    assert_eq!(copied, source.read_all().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_file_is_refused_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let (_source, file) = exported(dir.path()).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let tampered = text.replacen(r#""id":"u4"}"#, r#""id":"mallory"}"#, 1);
    assert_ne!(tampered, text);
    let tampered_file = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered_file, tampered).unwrap();

    let target = Server::start().await;
    let output = ostiary(&["import", tampered_file.to_str().unwrap()], &target);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is damaged"), "{stderr}");
    assert_eq!(target.read_schema().await, None);

    // A file cut short (no trailer) is refused too.
    let cut_file = dir.path().join("cut.jsonl");
    let cut: Vec<&str> = text.lines().take(100).collect();
    std::fs::write(&cut_file, cut.join("\n") + "\n").unwrap();
    let output = ostiary(&["import", cut_file.to_str().unwrap()], &target);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no trailer"), "{stderr}");
    assert_eq!(target.read_schema().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (source, file) = exported(dir.path()).await;
    // An earlier run got the schema and part of the relationships in.
    let target = Server::start().await;
    target.write_schema(SCHEMA).await;
    target.create(&relationships()[..2500]).await;

    let output = ostiary(&["import", file.to_str().unwrap()], &target);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--resume"), "{stderr}");

    assert_ok(&ostiary(
        &["import", "--resume", file.to_str().unwrap()],
        &target,
    ));
    assert_eq!(target.read_all().await, source.read_all().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_export_resumes_to_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let (source, file) = exported(dir.path()).await;
    let complete = std::fs::read_to_string(&file).unwrap();
    // Keep everything up to the first checkpoint, then half of the next line.
    let checkpoint = complete.find("{\"checkpoint\"").unwrap();
    let next_line = checkpoint + complete[checkpoint..].find('\n').unwrap() + 1;
    let partial = &complete[..next_line + 40];
    let partial_file = dir.path().join("partial.jsonl");
    std::fs::write(&partial_file, partial).unwrap();

    assert_ok(&ostiary(
        &["export", "--resume", partial_file.to_str().unwrap()],
        &source,
    ));
    assert_eq!(std::fs::read_to_string(&partial_file).unwrap(), complete);
    // Resuming a complete file changes nothing.
    assert_ok(&ostiary(
        &["export", "--resume", partial_file.to_str().unwrap()],
        &source,
    ));
    assert_eq!(std::fs::read_to_string(&partial_file).unwrap(), complete);
}
