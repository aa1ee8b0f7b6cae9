//! Shared harness of the multi-tenancy tests: an in-process server with tenancy over
//! `MemDatastore` and a `ManualClock` shared by the datastore and the tenancy service,
//! clients, request builders and helpers that manage tenants and tokens as root.

use std::sync::Arc;
use std::time::Duration;

use ostiary_engine::Engine;
use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::permissions_service_client::PermissionsServiceClient;
use ostiary_proto::authzed::api::v1::schema_service_client::SchemaServiceClient;
use ostiary_proto::authzed::api::v1::watch_service_client::WatchServiceClient;
use ostiary_proto::ostiary::admin::v1 as admin;
use ostiary_proto::ostiary::admin::v1::audit_service_client::AuditServiceClient;
use ostiary_proto::ostiary::admin::v1::tenant_service_client::TenantServiceClient;
use ostiary_proto::ostiary::admin::v1::token_service_client::TokenServiceClient;
use ostiary_server::{LimitsConfig, ServerConfig, ServerState, serve};
use ostiary_store::{DatastoreOptions, ManualClock};
use ostiary_store_mem::MemDatastore;
use ostiary_tenancy::{Tenancy, TokenPolicy};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// The preshared key: root (the operator) on every tenant.
pub(crate) const ROOT: &str = "root-preshared-key";
/// Where the manual clock starts.
pub(crate) const START: &str = "2030-01-01T00:00:00Z";
/// One hour.
pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// The schema every tenant of these tests shares (same type names in every tenant).
pub(crate) const SCHEMA: &str = "definition user {}\n\
definition group {\n  relation member: user | group#member\n}\n\
definition folder {\n  relation viewer: user | group#member\n  permission view = viewer\n}\n\
definition document {\n  relation parent: folder\n  relation viewer: user | group#member\n  relation editor: user\n  permission edit = editor\n  permission view = viewer + edit + parent->view\n}\n";

/// Limits without the per-source failure limit, which the tests of failed
/// authentications would otherwise trip for every test of the binary.
pub(crate) fn relaxed_limits() -> LimitsConfig {
    LimitsConfig {
        per_token_rps: 0,
        max_streams_per_token: 100,
        auth_failures_per_minute: 0,
    }
}

/// A running server with tenancy.
pub(crate) struct TestServer {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) channel: Channel,
    pub(crate) store: Arc<MemDatastore>,
    pub(crate) clock: Arc<ManualClock>,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestServer {
    /// A server with relaxed limits.
    pub(crate) async fn start() -> Self {
        Self::start_with(relaxed_limits()).await
    }

    /// A server with `limits`, revisions read at head (no quantization).
    pub(crate) async fn start_with(limits: LimitsConfig) -> Self {
        let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
        let store = Arc::new(MemDatastore::new(DatastoreOptions {
            quantization: Duration::ZERO,
            clock: clock.clone(),
            ..DatastoreOptions::default()
        }));
        let tenancy = Arc::new(Tenancy::new(
            store.clone(),
            clock.clone(),
            TokenPolicy::default(),
        ));
        let state = Arc::new(
            ServerState::new(
                store.clone(),
                // With the Check cache on, as `ostiary serve` runs by default: answers
                // cached for one tenant must not serve another.
                Engine::default().with_check_cache(64 << 20),
                ServerConfig::default(),
                vec![ROOT.to_owned()],
            )
            .unwrap()
            .with_tenancy(Arc::clone(&tenancy))
            .with_limits(limits),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve(listener, state, async {
            let _ = stopped.await;
        }));
        let channel = connect(addr).await;
        Self {
            addr,
            channel,
            store,
            clock,
            stop: Some(stop),
            handle,
        }
    }

    /// A new connection (its own HTTP/2 connection), for concurrent clients.
    pub(crate) async fn connect(&self) -> Channel {
        connect(self.addr).await
    }

    pub(crate) fn permissions(&self) -> PermissionsServiceClient<Channel> {
        PermissionsServiceClient::new(self.channel.clone())
    }

    pub(crate) fn schema(&self) -> SchemaServiceClient<Channel> {
        SchemaServiceClient::new(self.channel.clone())
    }

    pub(crate) fn watch(&self) -> WatchServiceClient<Channel> {
        WatchServiceClient::new(self.channel.clone())
    }

    pub(crate) fn tenants(&self) -> TenantServiceClient<Channel> {
        TenantServiceClient::new(self.channel.clone())
    }

    pub(crate) fn tokens(&self) -> TokenServiceClient<Channel> {
        TokenServiceClient::new(self.channel.clone())
    }

    pub(crate) fn audit(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.channel.clone())
    }

    /// Registers tenant `id` as root, with `quotas`.
    pub(crate) async fn create_tenant(&self, id: &str, quotas: admin::TenantQuotas) {
        self.tenants()
            .create_tenant(req(
                ROOT,
                admin::CreateTenantRequest {
                    id: id.to_owned(),
                    quotas: Some(quotas),
                },
            ))
            .await
            .unwrap();
    }

    /// Creates a token of `tenant` as root; returns its id and its bearer text.
    pub(crate) async fn create_token(
        &self,
        tenant: &str,
        scopes: &[admin::Scope],
        definitions: &[&str],
    ) -> Token {
        create_token_as(self, ROOT, tenant, scopes, definitions, HOUR * 24)
            .await
            .unwrap()
    }

    /// Writes [`SCHEMA`] as `token`.
    pub(crate) async fn write_schema(&self, token: &str, schema: &str) -> pb::ZedToken {
        self.schema()
            .write_schema(req(
                token,
                pb::WriteSchemaRequest {
                    schema: schema.to_owned(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .written_at
            .unwrap()
    }

    /// Writes `updates` as `token`.
    pub(crate) async fn write(
        &self,
        token: &str,
        updates: Vec<pb::RelationshipUpdate>,
    ) -> Result<pb::ZedToken, Status> {
        self.permissions()
            .write_relationships(req(
                token,
                pb::WriteRelationshipsRequest {
                    updates,
                    optional_preconditions: Vec::new(),
                    optional_transaction_metadata: None,
                },
            ))
            .await
            .map(|response| response.into_inner().written_at.unwrap())
    }

    /// Every relationship of `tenant`, as sorted text, exported fully consistently by root.
    pub(crate) async fn dump(&self, tenant: &str) -> Vec<String> {
        let mut stream = self
            .permissions()
            .export_bulk_relationships(req_in(
                ROOT,
                tenant,
                pb::ExportBulkRelationshipsRequest {
                    consistency: fully_consistent(),
                    optional_limit: 0,
                    optional_cursor: None,
                    optional_relationship_filter: None,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let mut out = Vec::new();
        while let Some(response) = stream.message().await.unwrap() {
            out.extend(response.relationships.iter().map(text));
        }
        out.sort();
        out
    }

    /// The schema text of `tenant`, read by root.
    pub(crate) async fn schema_text(&self, tenant: &str) -> Result<String, Status> {
        self.schema()
            .read_schema(req_in(ROOT, tenant, pb::ReadSchemaRequest {}))
            .await
            .map(|response| response.into_inner().schema_text)
    }

    /// `tenant`'s audit log, read by root.
    pub(crate) async fn audit_log(&self, tenant: &str) -> Vec<admin::AuditEntry> {
        let mut stream = self
            .audit()
            .read_audit_log(req(
                ROOT,
                admin::ReadAuditLogRequest {
                    tenant: tenant.to_owned(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let mut out = Vec::new();
        while let Some(response) = stream.message().await.unwrap() {
            out.push(response.entry.unwrap());
        }
        out
    }

    /// Stops the server and waits for it.
    pub(crate) async fn stop(mut self) {
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

async fn connect(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A token just created: its id and bearer text.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) id: String,
    pub(crate) secret: String,
}

/// Creates a token of `tenant` (empty: the caller's) as `actor`.
pub(crate) async fn create_token_as(
    server: &TestServer,
    actor: &str,
    tenant: &str,
    scopes: &[admin::Scope],
    definitions: &[&str],
    ttl: Duration,
) -> Result<Token, Status> {
    let response = server
        .tokens()
        .create_token(req(
            actor,
            admin::CreateTokenRequest {
                tenant: tenant.to_owned(),
                scopes: scopes.iter().map(|scope| *scope as i32).collect(),
                definitions: definitions.iter().map(|text| (*text).to_owned()).collect(),
                ttl: Some(duration(ttl)),
                description: "test".to_owned(),
            },
        ))
        .await?
        .into_inner();
    Ok(Token {
        id: response.token.unwrap().id,
        secret: response.secret_token,
    })
}

pub(crate) fn duration(duration: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(duration.as_secs()).unwrap(),
        nanos: i32::try_from(duration.subsec_nanos()).unwrap(),
    }
}

/// A request carrying `token` as its bearer.
pub(crate) fn req<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A request carrying `token` and naming `tenant` in `ostiary-tenant` metadata.
pub(crate) fn req_in<T>(token: &str, tenant: &str, message: T) -> Request<T> {
    let mut request = req(token, message);
    request
        .metadata_mut()
        .insert("ostiary-tenant", tenant.parse().unwrap());
    request
}

pub(crate) fn fully_consistent() -> Option<pb::Consistency> {
    Some(pb::Consistency {
        requirement: Some(pb::consistency::Requirement::FullyConsistent(true)),
    })
}

pub(crate) fn object(text: &str) -> pb::ObjectReference {
    let (object_type, object_id) = text.split_once(':').unwrap();
    pb::ObjectReference {
        object_type: object_type.into(),
        object_id: object_id.into(),
    }
}

pub(crate) fn subject(text: &str) -> pb::SubjectReference {
    let (object_text, relation) = text.split_once('#').unwrap_or((text, ""));
    pb::SubjectReference {
        object: Some(object(object_text)),
        optional_relation: relation.into(),
    }
}

/// `document:1#viewer@user:alice` as a wire relationship.
pub(crate) fn rel(text: &str) -> pb::Relationship {
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

pub(crate) fn touch(text: &str) -> pb::RelationshipUpdate {
    pb::RelationshipUpdate {
        operation: pb::relationship_update::Operation::Touch as i32,
        relationship: Some(rel(text)),
    }
}

pub(crate) fn delete(text: &str) -> pb::RelationshipUpdate {
    pb::RelationshipUpdate {
        operation: pb::relationship_update::Operation::Delete as i32,
        relationship: Some(rel(text)),
    }
}

/// A wire relationship as text.
pub(crate) fn text(rel: &pb::Relationship) -> String {
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

/// Asserts that `res` failed with `code`; returns the status.
#[track_caller]
pub(crate) fn expect_code<T: std::fmt::Debug>(res: Result<T, Status>, code: Code) -> Status {
    match res {
        Ok(value) => panic!("expected {code:?}, got Ok({value:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            status
        }
    }
}

/// Every scope but root.
pub(crate) const TENANT_SCOPES: [admin::Scope; 6] = [
    admin::Scope::Check,
    admin::Scope::Read,
    admin::Scope::Write,
    admin::Scope::Schema,
    admin::Scope::Watch,
    admin::Scope::Admin,
];
