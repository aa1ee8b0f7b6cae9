//! The Ostiary gRPC server: the `authzed.api.v1` services (permissions, schema, watch) over a
//! [`Datastore`] and the engine, plus health and reflection.
//!
//! [`serve`] runs the server on a bound listener until a shutdown future completes, so that
//! tests bind `127.0.0.1:0`; [`serve_with`] adds TLS ([`GrpcTls`]) and the bound on the
//! graceful shutdown ([`ServeOptions`]). [`serve_metrics`] serves the Prometheus endpoint of
//! the state's [`Metrics`], which a tower layer fills for every RPC. Request handling: a
//! tower layer refuses a message above `max-message-bytes` with `ResourceExhausted` (as
//! grpc-go) before it is decoded, the auth interceptor checks the bearer key, a
//! semaphore bounds concurrency, the handler validates and converts the request
//! (`convert`), picks a revision from the consistency requirement (`consistency`), runs the
//! engine or the store on a blocking thread and answers with a consistency token. Every error
//! leaves through `status.rs`.

mod admin;
mod auth;
mod changes;
mod config;
mod consistency;
mod convert;
mod decisions;
mod frame_limit;
mod limits;
mod metrics;
mod permissions;
mod reflection;
mod schema_service;
mod status;
mod tls;
mod token;
mod validate;
mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ostiary_engine::{Engine, EngineSchema};
use ostiary_proto::authzed::api::v1::permissions_service_server::PermissionsServiceServer;
use ostiary_proto::authzed::api::v1::schema_service_server::SchemaServiceServer;
use ostiary_proto::authzed::api::v1::watch_service_server::WatchServiceServer;
use ostiary_proto::ostiary::admin::v1::audit_service_server::AuditServiceServer;
use ostiary_proto::ostiary::admin::v1::tenant_service_server::TenantServiceServer;
use ostiary_proto::ostiary::admin::v1::token_service_server::TokenServiceServer;
use ostiary_store::{Datastore, Snapshot, StoreError, StoredSchema};
use ostiary_tenancy::Tenancy;
use ostiary_types::{Revision, TenantId};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, SemaphorePermit, watch as signal};
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;

pub use crate::config::{ConfigError, ServerConfig};
pub use crate::limits::LimitsConfig;
pub use crate::metrics::{Metrics, StoreSizeFn, serve_metrics};
use crate::status::ApiError;
pub use crate::tls::{GrpcTls, TlsError};

/// Schemas kept compiled: one per tenant in use.
const SCHEMA_CACHE_TENANTS: usize = 4096;

/// Everything the services share: the datastore, the engine, the limits, tenants and tokens.
pub struct ServerState {
    store: Arc<dyn Datastore>,
    engine: Engine,
    config: ServerConfig,
    /// The tenant of callers that name none (and of preshared-key callers).
    default_tenant: TenantId,
    preshared_keys: Vec<String>,
    /// API tokens and tenants; `None` serves the default tenant with preshared keys only.
    tenancy: Option<Arc<Tenancy>>,
    /// Serve every caller as root, even with tenancy.
    insecure_no_auth: bool,
    limits: LimitsConfig,
    /// Consistency tokens and cursors, bound to their tenant.
    tokens: token::TokenCodec,
    /// Each tenant's engine schema of the last schema revision used, compiled once per
    /// revision.
    schema_cache: quick_cache::sync::Cache<TenantId, (Revision, EngineSchema)>,
    /// Bounds the requests served at once.
    permits: Semaphore,
    /// Samples Check decisions for the decision log.
    decisions: decisions::DecisionLog,
    /// Flipped to `true` when the server shuts down; Watch streams end on it.
    shutting_down: signal::Sender<bool>,
    /// This server's Prometheus metrics (`None` only if registering them failed).
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("store", &self.store)
            .field("config", &self.config)
            .field("default_tenant", &self.default_tenant)
            .field("n_preshared_keys", &self.preshared_keys.len())
            .field("tenancy", &self.tenancy.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerState {
    /// Builds the state over `store`, serving the default tenant. `preshared_keys` act as
    /// root tokens; with none and no [tenancy](ServerState::with_tenancy), nothing is
    /// authenticated (`--insecure-no-auth`).
    ///
    /// # Errors
    ///
    /// Returns a store error if the server secret (which consistency tokens derive from)
    /// cannot be read or created.
    pub fn new(
        store: Arc<dyn Datastore>,
        engine: Engine,
        config: ServerConfig,
        preshared_keys: Vec<String>,
    ) -> Result<Self, StoreError> {
        let tokens = token::TokenCodec::load_or_create(store.as_ref())?;
        let decisions = decisions::DecisionLog::new(config.decision_log_every);
        let permits = Semaphore::new(config.max_concurrent_requests);
        let (shutting_down, _) = signal::channel(false);
        let metrics = match Metrics::new() {
            Ok(metrics) => Some(Arc::new(metrics)),
            Err(err) => {
                debug_assert!(false, "metrics failed to register: {err}");
                tracing::error!(error = %err, "metrics disabled: they failed to register");
                None
            }
        };
        if let Some(metrics) = &metrics
            && engine.cache_stats().is_some()
        {
            let engine = engine.clone();
            metrics.set_check_cache(Box::new(move || engine.cache_stats()));
        }
        Ok(Self {
            store,
            engine,
            config,
            default_tenant: TenantId::default_tenant(),
            preshared_keys,
            tenancy: None,
            insecure_no_auth: false,
            limits: LimitsConfig::default(),
            tokens,
            schema_cache: quick_cache::sync::Cache::new(SCHEMA_CACHE_TENANTS),
            permits,
            decisions,
            shutting_down,
            metrics,
        })
    }

    /// Authenticates API tokens and serves every active tenant of `tenancy` (which must be
    /// over the same datastore).
    #[must_use]
    ///
    /// From then on the tenancy's audit entries name revisions by this server's consistency
    /// tokens (see `RevisionSeal`).
    pub fn with_tenancy(mut self, tenancy: Arc<Tenancy>) -> Self {
        tenancy.seal_revisions_with(Arc::new(self.tokens.clone()));
        self.tenancy = Some(tenancy);
        self
    }

    /// Serves every caller as root without looking at tokens (`--insecure-no-auth`), even
    /// with tenancy.
    #[must_use]
    pub fn insecure_no_auth(mut self) -> Self {
        self.insecure_no_auth = true;
        self
    }

    /// Applies `limits` (rate limits, stream caps, authentication failures).
    #[must_use]
    pub fn with_limits(mut self, limits: LimitsConfig) -> Self {
        self.limits = limits;
        self
    }

    /// The tenancy service, if tokens are enabled.
    pub fn tenancy(&self) -> Option<&Arc<Tenancy>> {
        self.tenancy.as_ref()
    }

    /// Removes the data of every tenant marked for deletion, on a blocking thread; the
    /// registry entry goes last, so a crash midway leaves the tenant marked and the next
    /// start (or deletion) finishes the job.
    pub fn purge_in_background(&self) {
        let Some(tenancy) = self.tenancy.clone() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn_blocking(move || purge_deleted_tenants(&tenancy));
    }

    /// This server's metrics, for [`serve_metrics`].
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// Exports `ostiary_store_bytes`, read from `size` at every scrape (for backends that
    /// know their size; the datastore trait does not say).
    pub fn set_store_size(&self, size: StoreSizeFn) {
        if let Some(metrics) = &self.metrics {
            metrics.set_store_size(size);
        }
    }

    /// Records into the metrics, if there are any.
    pub(crate) fn record(&self, record: impl FnOnce(&Metrics)) {
        if let Some(metrics) = &self.metrics {
            record(metrics);
        }
    }

    /// Waits for a request slot.
    pub(crate) async fn permit(&self) -> Result<SemaphorePermit<'_>, ApiError> {
        self.permits
            .acquire()
            .await
            .map_err(|_| ApiError::Unavailable("server is shutting down".to_owned()))
    }

    /// The engine schema in force in `snapshot`, compiled once per schema revision.
    pub(crate) fn schema_at(&self, snapshot: &dyn Snapshot) -> Result<EngineSchema, ApiError> {
        self.schema_of(snapshot.tenant(), snapshot.read_schema()?.as_ref())
    }

    /// The engine schema of `tenant`'s stored schema record (as a snapshot or a write
    /// transaction reads it), compiled once per schema revision; no record is
    /// FailedPrecondition.
    pub(crate) fn schema_of(
        &self,
        tenant: &TenantId,
        stored: Option<&StoredSchema>,
    ) -> Result<EngineSchema, ApiError> {
        let Some(stored) = stored else {
            return Err(ApiError::precondition(
                ostiary_proto::authzed::api::v1::ErrorReason::Unspecified,
                "no schema has been defined; please call WriteSchema to start",
            ));
        };
        if let Some((revision, schema)) = self.schema_cache.get(tenant)
            && revision == stored.revision
        {
            self.record(|metrics| metrics.schema_cache_hits.inc());
            return Ok(schema);
        }
        self.record(|metrics| metrics.schema_cache_misses.inc());
        let compiled = ostiary_schema::compile_str("schema.zed", &stored.text)
            .map_err(ApiError::Schema)?
            .schema;
        let schema = EngineSchema::new(Arc::new(compiled))?;
        self.schema_cache
            .insert(tenant.clone(), (stored.revision, schema.clone()));
        Ok(schema)
    }
}

/// Purges every tenant marked for deletion, logging failures (it runs in the background).
fn purge_deleted_tenants(tenancy: &Tenancy) {
    let pending = match tenancy.tenants_pending_deletion() {
        Ok(pending) => pending,
        Err(err) => {
            tracing::error!(error = %err, "cannot list the tenants to delete");
            return;
        }
    };
    for tenant in pending {
        match tenancy.purge_tenant(&tenant, &ostiary_tenancy::RequestContext::default()) {
            Ok(()) => tracing::info!(%tenant, "tenant deleted"),
            Err(err) => tracing::error!(%tenant, error = %err, "deleting a tenant failed"),
        }
    }
}

/// Runs `work` on a blocking thread (the store and engine are synchronous).
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ApiError::Unavailable(format!("request worker failed: {err}")))?
}

/// The services reflection lists: exactly the ones served. The descriptor set of the API
/// also describes `authzed.api.v1.ExperimentalService`, which is not served; its messages
/// stay resolvable (other services use some of them) but it is not listed.
const REFLECTED_SERVICES: [&str; 5] = [
    <PermissionsServiceServer<permissions::Permissions> as NamedService>::NAME,
    <SchemaServiceServer<schema_service::Schemas> as NamedService>::NAME,
    <WatchServiceServer<watch::Watcher> as NamedService>::NAME,
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
];

/// The admin services, reflected when served (with tenancy).
const REFLECTED_ADMIN_SERVICES: [&str; 3] = [
    <TenantServiceServer<admin::Admin> as NamedService>::NAME,
    <TokenServiceServer<admin::Admin> as NamedService>::NAME,
    <AuditServiceServer<admin::Admin> as NamedService>::NAME,
];

/// Server reflection over the API's descriptors and the health service's (so that grpcurl
/// can call `grpc.health.v1.Health/Check`), listing only [`REFLECTED_SERVICES`] and, when
/// `with_admin`, [`REFLECTED_ADMIN_SERVICES`].
fn reflection_service(
    with_admin: bool,
) -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    let admin: &[&'static str] = if with_admin {
        &REFLECTED_ADMIN_SERVICES
    } else {
        &[]
    };
    REFLECTED_SERVICES
        .into_iter()
        .chain(admin.iter().copied())
        .fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(ostiary_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
            tonic_reflection::server::Builder::with_service_name,
        )
        .build_v1()
}

/// How [`serve_with`] serves: TLS, and how long a graceful shutdown may take.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Serve gRPC over TLS with this certificate; plaintext when `None`.
    pub tls: Option<GrpcTls>,
    /// After the shutdown signal, how long in-flight requests may take to finish before the
    /// server stops anyway.
    pub shutdown_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            tls: None,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves the gRPC API on `listener` in plaintext until `shutdown` completes; see
/// [`serve_with`].
///
/// # Errors
///
/// Returns the transport error if the server fails.
pub async fn serve(
    listener: TcpListener,
    state: Arc<ServerState>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    serve_with(listener, state, ServeOptions::default(), shutdown).await
}

/// Serves the gRPC API on `listener` until `shutdown` completes, then shuts down
/// gracefully: it stops accepting connections, ends Watch streams (they would otherwise
/// keep the server alive), lets in-flight requests finish and closes the request
/// semaphore, all within `options.shutdown_timeout`; past it the remaining connections are
/// dropped. The caller then drops its last handle on the state, which closes the store.
///
/// # Errors
///
/// Returns the transport error if the server fails or the TLS configuration is refused.
pub async fn serve_with(
    listener: TcpListener,
    state: Arc<ServerState>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let authority = Arc::new(auth::Authority::new(
        state.tenancy.clone(),
        state.preshared_keys.clone(),
        state.insecure_no_auth,
        state.default_tenant.clone(),
        Arc::new(limits::Limits::new(state.limits)),
    ));
    let max_message = state.config.max_message_bytes;
    let permissions =
        PermissionsServiceServer::new(permissions::Permissions::new(Arc::clone(&state)))
            .max_decoding_message_size(max_message);
    let schema = SchemaServiceServer::new(schema_service::Schemas::new(Arc::clone(&state)))
        .max_decoding_message_size(max_message);
    let watch = WatchServiceServer::new(watch::Watcher::new(Arc::clone(&state)))
        .max_decoding_message_size(max_message);
    let admin = state
        .tenancy
        .clone()
        .map(|tenancy| admin::Admin::new(Arc::clone(&state), tenancy));
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<PermissionsServiceServer<permissions::Permissions>>()
        .await;
    health_reporter
        .set_serving::<SchemaServiceServer<schema_service::Schemas>>()
        .await;
    health_reporter
        .set_serving::<WatchServiceServer<watch::Watcher>>()
        .await;
    let reflection = reflection_service(admin.is_some());
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &options.tls {
        tls::install_ring_provider();
        builder = builder.tls_config(tls.config())?;
    }
    // Metrics see every request, refused ones included; the access layer then opens each
    // request's span (with its request id) around everything else.
    let mut builder = builder
        .layer(metrics::MetricsLayer::new(state.metrics.clone()))
        .layer(auth::AccessLayer::new(authority))
        .layer(frame_limit::FrameLimitLayer::new(max_message));
    let mut router = builder
        .add_service(health_service)
        .add_service(permissions)
        .add_service(schema)
        .add_service(watch);
    if let Some(admin) = admin {
        router = router
            .add_service(TenantServiceServer::new(admin.clone()))
            .add_service(TokenServiceServer::new(admin.clone()))
            .add_service(AuditServiceServer::new(admin));
    }
    router = match reflection {
        Ok(reflection) => router.add_service(reflection),
        Err(err) => {
            tracing::warn!(error = %err, "server reflection disabled: bad descriptor set");
            router
        }
    };
    let shutdown_state = Arc::clone(&state);
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    // With an incoming stream tonic ignores its own `tcp_nodelay` default, so it is set
    // here: without it Nagle's algorithm holds a response's last small frame until the
    // client's delayed ACK, about 40 ms per call.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = router.serve_with_incoming_shutdown(incoming, async move {
        shutdown.await;
        tracing::info!("shutting down: ending watch streams and draining requests");
        shutdown_state.shutting_down.send_replace(true);
        let _ = signalled.send(());
    });
    let deadline = async move {
        if on_signal.await.is_err() {
            // The server stopped on its own; nothing to bound.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(options.shutdown_timeout).await;
    };
    let res = tokio::select! {
        res = server => res,
        () = deadline => {
            tracing::warn!(
                timeout = ?options.shutdown_timeout,
                "graceful shutdown timed out; dropping the remaining connections"
            );
            Ok(())
        }
    };
    state.permits.close();
    res
}
