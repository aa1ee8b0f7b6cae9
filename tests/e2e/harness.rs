//! Starting and stopping the real `ostiary` binary, authenticated tonic clients for it, and
//! small builders for wire messages (`doc:1#viewer@user:alice` text forms).

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::permissions_service_client::PermissionsServiceClient;
use ostiary_proto::authzed::api::v1::schema_service_client::SchemaServiceClient;
use ostiary_proto::authzed::api::v1::watch_service_client::WatchServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The preshared key every test server accepts.
pub(crate) const KEY: &str = "e2e-preshared-key";

/// How long a server may take to bind, answer health checks or exit.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);

/// The schema most tests use: folders grant `view` to the documents under them, and
/// `banned` excludes a user from a document.
pub(crate) const SCHEMA: &str = "definition user {}\n\n\
definition folder {\n\trelation viewer: user\n\tpermission view = viewer\n}\n\n\
definition document {\n\trelation parent: folder\n\trelation viewer: user | user:*\n\trelation banned: user\n\tpermission view = (viewer + parent->view) - banned\n}\n";

/// Which datastore a test server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    /// `--datastore-engine memory`.
    Memory,
    /// `--datastore-engine rocksdb` in a fresh data directory.
    Rocksdb,
}

/// Adds the bearer key to every request.
#[derive(Clone, Debug)]
pub(crate) struct BearerKey(MetadataValue<Ascii>);

impl BearerKey {
    /// The header for `key`.
    pub(crate) fn new(key: &str) -> Self {
        Self(format!("Bearer {key}").parse().unwrap())
    }
}

impl Interceptor for BearerKey {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel that authenticates with [`KEY`].
pub(crate) type Authed = InterceptedService<Channel, BearerKey>;

/// A running `ostiary serve` child process; killed on drop.
#[derive(Debug)]
pub(crate) struct Ostiary {
    child: Option<Child>,
    addr: SocketAddr,
    channel: Channel,
    /// Everything the server wrote to stderr so far (ANSI colours stripped).
    log: Arc<Mutex<String>>,
    /// The RocksDB data directory, if any (owned by the caller's [`tempfile::TempDir`]).
    data_dir: Option<PathBuf>,
    /// The server's working directory, so that nothing lands in the repository.
    _workdir: tempfile::TempDir,
}

impl Ostiary {
    /// Starts a server on a fresh datastore of kind `engine`. A RocksDB data directory lives
    /// in the returned [`tempfile::TempDir`], which must outlive the server.
    pub(crate) async fn start(engine: Engine) -> (Self, tempfile::TempDir) {
        let data = tempfile::tempdir().unwrap();
        let server = match engine {
            Engine::Memory => Self::start_with(&["--datastore-engine", "memory"], None).await,
            Engine::Rocksdb => Self::start_rocksdb(&data.path().join("data")).await,
        };
        (server, data)
    }

    /// Starts a server on the RocksDB data directory `dir` (created if missing).
    pub(crate) async fn start_rocksdb(dir: &Path) -> Self {
        let dir_text = dir.to_str().unwrap().to_owned();
        Self::start_with(
            &[
                "--datastore-engine",
                "rocksdb",
                "--datastore-conn-uri",
                &dir_text,
            ],
            Some(dir.to_path_buf()),
        )
        .await
    }

    /// Starts a server with `args` after the address and key (the datastore flags and any
    /// others); `data_dir` is the RocksDB directory it uses, if any.
    pub(crate) async fn start_with(args: &[&str], data_dir: Option<PathBuf>) -> Self {
        let workdir = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_ostiary"));
        command
            .arg("serve")
            .args(["--grpc-addr", "127.0.0.1:0", "--grpc-preshared-key", KEY])
            .args(args)
            .current_dir(workdir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The test's own environment must not configure the server.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OSTIARY_") {
                command.env_remove(&name);
            }
        }
        command.env("OSTIARY_LOG", "info").env("NO_COLOR", "1");
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let thread_log = Arc::clone(&log);
        // Drains stderr for the whole life of the child (a full pipe would block it) and
        // reports the bound address once.
        std::thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                if let Some(addr) = bound_addr(&line)
                    && let Some(tx) = addr_tx.take()
                {
                    let _ = tx.send(addr);
                }
                let mut log = thread_log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match addr_rx.recv_timeout(PROCESS_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "ostiary serve printed no `serving gRPC addr=...` line (exit: {status:?}); its log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        let mut server = Self {
            child: Some(child),
            addr,
            channel,
            log,
            data_dir,
            _workdir: workdir,
        };
        server.wait_ready().await;
        server
    }

    /// Polls the health service until it answers `SERVING` (bounded).
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let mut health = HealthClient::new(self.channel.clone());
        loop {
            let res = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            match res {
                Ok(response) if response.get_ref().status() == ServingStatus::Serving => return,
                other => {
                    if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                        panic!(
                            "ostiary serve exited before it was ready ({status}); its log:\n{}",
                            self.log()
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "ostiary serve on {} is not ready after {PROCESS_TIMEOUT:?} (last answer: {other:?}); its log:\n{}",
                        self.addr,
                        self.log()
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// The bound gRPC address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The RocksDB data directory, for a restart on the same data.
    pub(crate) fn data_dir(&self) -> &Path {
        self.data_dir.as_deref().unwrap()
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// A channel without credentials.
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    fn authed(&self) -> Authed {
        InterceptedService::new(self.channel.clone(), BearerKey::new(KEY))
    }

    /// An authenticated PermissionsService client.
    pub(crate) fn permissions(&self) -> PermissionsServiceClient<Authed> {
        PermissionsServiceClient::new(self.authed())
    }

    /// An authenticated SchemaService client.
    pub(crate) fn schema(&self) -> SchemaServiceClient<Authed> {
        SchemaServiceClient::new(self.authed())
    }

    /// An authenticated WatchService client on a connection of its own, so that dropping it
    /// really disconnects.
    pub(crate) async fn watch_client(&self) -> WatchServiceClient<Authed> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        WatchServiceClient::new(InterceptedService::new(channel, BearerKey::new(KEY)))
    }

    /// Sends SIGTERM and waits for a clean exit; returns the server's log.
    ///
    /// The wait runs off the async runtime: a graceful HTTP/2 shutdown needs the clients'
    /// connection tasks (on this runtime) to answer the server's GOAWAY ping.
    pub(crate) async fn stop(mut self) -> String {
        let mut child = self.child.take().unwrap();
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success(), "kill -TERM failed: {killed}");
        let status = tokio::task::spawn_blocking(move || wait_timeout(&mut child, PROCESS_TIMEOUT))
            .await
            .unwrap();
        let log = self.log();
        assert!(
            status.is_some_and(|status| status.success()),
            "ostiary serve did not exit cleanly on SIGTERM ({status:?}); its log:\n{log}"
        );
        log
    }

    /// Kills the server with SIGKILL (no chance to flush anything) and waits for it.
    pub(crate) fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Writes [`SCHEMA`] (or `schema`) and returns its token.
    pub(crate) async fn write_schema(&self, schema: &str) -> pb::ZedToken {
        self.schema()
            .write_schema(pb::WriteSchemaRequest {
                schema: schema.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .written_at
            .unwrap()
    }

    /// Applies `updates` in one WriteRelationships.
    pub(crate) async fn write(
        &self,
        updates: Vec<pb::RelationshipUpdate>,
    ) -> Result<pb::ZedToken, Status> {
        self.permissions()
            .write_relationships(pb::WriteRelationshipsRequest {
                updates,
                optional_preconditions: Vec::new(),
                optional_transaction_metadata: None,
            })
            .await
            .map(|response| response.into_inner().written_at.unwrap())
    }

    /// Checks `resource#permission@subject` and returns the answer and its `checked_at`.
    pub(crate) async fn check(
        &self,
        consistency: Option<pb::Consistency>,
        resource: &str,
        permission: &str,
        subject_text: &str,
    ) -> Result<(Permissionship, pb::ZedToken), Status> {
        let response = self
            .permissions()
            .check_permission(pb::CheckPermissionRequest {
                consistency,
                resource: Some(object(resource)),
                permission: permission.to_owned(),
                subject: Some(subject(subject_text)),
                context: None,
                with_tracing: false,
            })
            .await?
            .into_inner();
        Ok((response.permissionship(), response.checked_at.unwrap()))
    }

    /// [`Ostiary::check`] at `consistency` that must succeed; returns only the answer.
    pub(crate) async fn allowed(
        &self,
        consistency: Option<pb::Consistency>,
        resource: &str,
        subject_text: &str,
    ) -> bool {
        let (answer, _) = self
            .check(consistency, resource, "view", subject_text)
            .await
            .unwrap();
        match answer {
            Permissionship::HasPermission => true,
            Permissionship::NoPermission => false,
            other => panic!("unexpected permissionship {other:?} for {resource}@{subject_text}"),
        }
    }

    /// Everything the store holds, read at head: the schema text (`None` before the first
    /// WriteSchema) and every relationship in text form, sorted.
    pub(crate) async fn dump(&self) -> StoreDump {
        let schema = match self.schema().read_schema(pb::ReadSchemaRequest {}).await {
            Ok(response) => Some(response.into_inner().schema_text),
            Err(status) if status.code() == Code::NotFound => None,
            Err(status) => panic!("ReadSchema failed: {status:?}"),
        };
        let mut relationships = Vec::new();
        let mut stream = self
            .permissions()
            .export_bulk_relationships(pb::ExportBulkRelationshipsRequest {
                consistency: fully_consistent(),
                optional_limit: 0,
                optional_cursor: None,
                optional_relationship_filter: None,
            })
            .await
            .unwrap()
            .into_inner();
        while let Some(batch) = stream.message().await.unwrap() {
            relationships.extend(batch.relationships.iter().map(rel_text));
        }
        relationships.sort();
        StoreDump {
            schema,
            relationships,
        }
    }
}

impl Drop for Ostiary {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits up to `timeout` for `child` to exit; `None` if it did not (it is killed then).
pub(crate) fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The whole content of a store, to prove a refused request changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreDump {
    /// The schema text, if one was written.
    pub(crate) schema: Option<String>,
    /// Every relationship, sorted, in `doc:1#viewer@user:alice` form.
    pub(crate) relationships: Vec<String>,
}

/// The answer of a check.
pub(crate) type Permissionship = pb::check_permission_response::Permissionship;

/// Removes ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The address of a `serving gRPC addr=127.0.0.1:1234 ...` log line.
fn bound_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("serving gRPC") {
        return None;
    }
    let (_, rest) = line.split_once("addr=")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// `document:1` as a wire object.
pub(crate) fn object(text: &str) -> pb::ObjectReference {
    let (object_type, object_id) = text.split_once(':').unwrap();
    pb::ObjectReference {
        object_type: object_type.to_owned(),
        object_id: object_id.to_owned(),
    }
}

/// `user:alice` or `folder:f#viewer` as a wire subject.
pub(crate) fn subject(text: &str) -> pb::SubjectReference {
    let (object_text, relation) = text.split_once('#').unwrap_or((text, ""));
    pb::SubjectReference {
        object: Some(object(object_text)),
        optional_relation: relation.to_owned(),
    }
}

/// `document:1#viewer@user:alice` as a wire relationship.
pub(crate) fn rel(text: &str) -> pb::Relationship {
    let (resource, rest) = text.split_once('#').unwrap();
    let (relation, subject_text) = rest.split_once('@').unwrap();
    pb::Relationship {
        resource: Some(object(resource)),
        relation: relation.to_owned(),
        subject: Some(subject(subject_text)),
        optional_caveat: None,
        optional_expires_at: None,
    }
}

/// The text form of a wire relationship.
pub(crate) fn rel_text(rel: &pb::Relationship) -> String {
    let resource = rel.resource.as_ref().unwrap();
    let subject = rel.subject.as_ref().unwrap();
    let subject_object = subject.object.as_ref().unwrap();
    let mut text = format!(
        "{}:{}#{}@{}:{}",
        resource.object_type,
        resource.object_id,
        rel.relation,
        subject_object.object_type,
        subject_object.object_id
    );
    if !subject.optional_relation.is_empty() {
        text.push('#');
        text.push_str(&subject.optional_relation);
    }
    text
}

fn update(operation: pb::relationship_update::Operation, text: &str) -> pb::RelationshipUpdate {
    pb::RelationshipUpdate {
        operation: operation as i32,
        relationship: Some(rel(text)),
    }
}

/// A CREATE update.
pub(crate) fn create(text: &str) -> pb::RelationshipUpdate {
    update(pb::relationship_update::Operation::Create, text)
}

/// A TOUCH update.
pub(crate) fn touch(text: &str) -> pb::RelationshipUpdate {
    update(pb::relationship_update::Operation::Touch, text)
}

/// A DELETE update.
pub(crate) fn delete(text: &str) -> pb::RelationshipUpdate {
    update(pb::relationship_update::Operation::Delete, text)
}

fn requirement(requirement: pb::consistency::Requirement) -> Option<pb::Consistency> {
    Some(pb::Consistency {
        requirement: Some(requirement),
    })
}

/// `minimize_latency`.
pub(crate) fn minimize_latency() -> Option<pb::Consistency> {
    requirement(pb::consistency::Requirement::MinimizeLatency(true))
}

/// `at_least_as_fresh(token)`.
pub(crate) fn at_least_as_fresh(token: &pb::ZedToken) -> Option<pb::Consistency> {
    requirement(pb::consistency::Requirement::AtLeastAsFresh(token.clone()))
}

/// `at_exact_snapshot(token)`.
pub(crate) fn at_exact_snapshot(token: &pb::ZedToken) -> Option<pb::Consistency> {
    requirement(pb::consistency::Requirement::AtExactSnapshot(token.clone()))
}

/// `fully_consistent`.
pub(crate) fn fully_consistent() -> Option<pb::Consistency> {
    requirement(pb::consistency::Requirement::FullyConsistent(true))
}

/// Asserts that `res` failed with `code` and a message containing `needle`.
#[track_caller]
pub(crate) fn assert_status<T: std::fmt::Debug>(res: Result<T, Status>, code: Code, needle: &str) {
    match res {
        Ok(value) => panic!("expected {code:?} containing `{needle}`, got Ok({value:?})"),
        Err(status) => {
            assert_eq!(
                status.code(),
                code,
                "wrong code for `{}` (expected one containing `{needle}`)",
                status.message()
            );
            assert!(
                status.message().contains(needle),
                "the {code:?} message `{}` does not contain `{needle}`",
                status.message()
            );
        }
    }
}
