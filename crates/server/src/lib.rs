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

mod auth;
mod config;
mod consistency;
mod convert;
mod frame_limit;
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ostiary_engine::{Engine, EngineSchema};
use ostiary_proto::authzed::api::v1::permissions_service_server::PermissionsServiceServer;
use ostiary_proto::authzed::api::v1::schema_service_server::SchemaServiceServer;
use ostiary_proto::authzed::api::v1::watch_service_server::WatchServiceServer;
use ostiary_store::{Datastore, Snapshot, StoredSchema};
use ostiary_types::{Revision, TenantId};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, SemaphorePermit, watch as signal};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;

pub use crate::config::{ConfigError, ServerConfig};
pub use crate::metrics::{Metrics, StoreSizeFn, serve_metrics};
use crate::status::ApiError;
pub use crate::tls::{GrpcTls, TlsError};

/// Everything the services share: the datastore, the engine, the limits and the accepted
/// bearer keys.
#[derive(Debug)]
pub struct ServerState {
    store: Arc<dyn Datastore>,
    engine: Engine,
    config: ServerConfig,
    tenant: TenantId,
    preshared_keys: Vec<String>,
    /// The engine schema of the last schema revision used, compiled once per revision.
    schema_cache: parking_lot::Mutex<Option<(Revision, EngineSchema)>>,
    /// Bounds the requests served at once.
    permits: Semaphore,
    /// Flipped to `true` when the server shuts down; Watch streams end on it.
    shutting_down: signal::Sender<bool>,
    /// This server's Prometheus metrics (`None` only if registering them failed).
    metrics: Option<Arc<Metrics>>,
}

impl ServerState {
    /// Builds the state. `preshared_keys` empty means no authentication (`--insecure-no-auth`).
    pub fn new(
        store: Arc<dyn Datastore>,
        engine: Engine,
        config: ServerConfig,
        preshared_keys: Vec<String>,
    ) -> Self {
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
        Self {
            store,
            engine,
            config,
            tenant: TenantId::default_tenant(),
            preshared_keys,
            schema_cache: parking_lot::Mutex::new(None),
            permits,
            shutting_down,
            metrics,
        }
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
        self.schema_of(snapshot.read_schema()?.as_ref())
    }

    /// The engine schema of a stored schema record (as a snapshot or a write transaction
    /// reads it), compiled once per schema revision; no record is FailedPrecondition.
    pub(crate) fn schema_of(
        &self,
        stored: Option<&StoredSchema>,
    ) -> Result<EngineSchema, ApiError> {
        let Some(stored) = stored else {
            return Err(ApiError::precondition(
                ostiary_proto::authzed::api::v1::ErrorReason::Unspecified,
                "no schema has been defined; please call WriteSchema to start",
            ));
        };
        if let Some((revision, schema)) = self.schema_cache.lock().as_ref()
            && *revision == stored.revision
        {
            self.record(|metrics| metrics.schema_cache_hits.inc());
            return Ok(schema.clone());
        }
        self.record(|metrics| metrics.schema_cache_misses.inc());
        let compiled = ostiary_schema::compile_str("schema.zed", &stored.text)
            .map_err(ApiError::Schema)?
            .schema;
        let schema = EngineSchema::new(Arc::new(compiled))?;
        *self.schema_cache.lock() = Some((stored.revision, schema.clone()));
        Ok(schema)
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

/// Server reflection over the API's descriptors and the health service's (so that grpcurl
/// can call `grpc.health.v1.Health/Check`), listing only [`REFLECTED_SERVICES`].
fn reflection_service() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    REFLECTED_SERVICES
        .into_iter()
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
    let auth = auth::Authenticator::new(state.preshared_keys.clone());
    let max_message = state.config.max_message_bytes;
    let permissions = InterceptedService::new(
        PermissionsServiceServer::new(permissions::Permissions::new(Arc::clone(&state)))
            .max_decoding_message_size(max_message),
        auth.clone(),
    );
    let schema = InterceptedService::new(
        SchemaServiceServer::new(schema_service::Schemas::new(Arc::clone(&state)))
            .max_decoding_message_size(max_message),
        auth.clone(),
    );
    let watch = InterceptedService::new(
        WatchServiceServer::new(watch::Watcher::new(Arc::clone(&state)))
            .max_decoding_message_size(max_message),
        auth,
    );
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
    let reflection = reflection_service();
    let request_ids = Arc::new(AtomicU64::new(1));
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &options.tls {
        tls::install_ring_provider();
        builder = builder.tls_config(tls.config())?;
    }
    let mut builder = builder
        .trace_fn(move |request| {
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|value| value.to_str().ok())
                .map_or_else(
                    || request_ids.fetch_add(1, Ordering::Relaxed).to_string(),
                    ToOwned::to_owned,
                );
            tracing::info_span!("rpc", method = %request.uri().path(), request_id = %request_id)
        })
        .layer(metrics::MetricsLayer::new(state.metrics.clone()))
        .layer(frame_limit::FrameLimitLayer::new(max_message));
    let mut router = builder
        .add_service(health_service)
        .add_service(permissions)
        .add_service(schema)
        .add_service(watch);
    router = match reflection {
        Ok(reflection) => router.add_service(reflection),
        Err(err) => {
            tracing::warn!(error = %err, "server reflection disabled: bad descriptor set");
            router
        }
    };
    let shutdown_state = Arc::clone(&state);
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let server =
        router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
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
