//! Prometheus metrics: the [`Metrics`] registry of one server, the tower layer that counts
//! every RPC once (started, handled by gRPC code, latency until the response body ends), and
//! the plain-HTTP `GET /metrics` endpoint ([`serve_metrics`]).
//!
//! Hot path: the layer maps the request path to an index into a static method table and
//! uses counters resolved at startup; the handled counter is looked up by two `&'static str`
//! labels (a hash lookup, no allocation). Unknown paths share the `unknown` label.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http_body::{Body, Frame};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tower_layer::Layer;
use tower_service::Service;

/// The gRPC methods the server answers, as `package.Service/Method` (the request path
/// without its leading `/`). Index [`UNKNOWN`] is for everything else.
const METHODS: &[&str] = &[
    "authzed.api.v1.PermissionsService/CheckPermission",
    "authzed.api.v1.PermissionsService/CheckBulkPermissions",
    "authzed.api.v1.PermissionsService/ExpandPermissionTree",
    "authzed.api.v1.PermissionsService/LookupResources",
    "authzed.api.v1.PermissionsService/LookupSubjects",
    "authzed.api.v1.PermissionsService/ReadRelationships",
    "authzed.api.v1.PermissionsService/WriteRelationships",
    "authzed.api.v1.PermissionsService/DeleteRelationships",
    "authzed.api.v1.PermissionsService/ImportBulkRelationships",
    "authzed.api.v1.PermissionsService/ExportBulkRelationships",
    "authzed.api.v1.SchemaService/ReadSchema",
    "authzed.api.v1.SchemaService/WriteSchema",
    "authzed.api.v1.SchemaService/ReflectSchema",
    "authzed.api.v1.SchemaService/ComputablePermissions",
    "authzed.api.v1.SchemaService/DependentRelations",
    "authzed.api.v1.SchemaService/DiffSchema",
    "authzed.api.v1.WatchService/Watch",
    "grpc.health.v1.Health/Check",
    "grpc.health.v1.Health/Watch",
    "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "unknown",
];

/// The index of the `unknown` method label.
const UNKNOWN: usize = METHODS.len() - 1;

/// gRPC status codes by number, as label values.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The label of gRPC code `code` (`UNKNOWN` for a number outside the range).
fn code_label(code: i32) -> &'static str {
    usize::try_from(code)
        .ok()
        .and_then(|idx| CODES.get(idx))
        .copied()
        .unwrap_or(CODES[2])
}

/// The index in [`METHODS`] of a request path.
fn method_index(path: &str) -> usize {
    let name = path.strip_prefix('/').unwrap_or(path);
    METHODS[..UNKNOWN]
        .iter()
        .position(|method| *method == name)
        .unwrap_or(UNKNOWN)
}

/// Reports the size of the store for the `ostiary_store_bytes` gauge, read at scrape time;
/// `None` when the backend cannot tell.
pub type StoreSizeFn = Box<dyn Fn() -> Option<u64> + Send + Sync>;

/// Reports the engine's Check cache counters, read at scrape time.
pub(crate) type CheckCacheFn = Box<dyn Fn() -> Option<ostiary_engine::CacheStats> + Send + Sync>;

/// The Check cache's series, registered only when the engine has a cache.
struct CheckCacheMetrics {
    hits: IntCounter,
    misses: IntCounter,
    entries: IntGauge,
    bytes: IntGauge,
    capacity_bytes: IntGauge,
    stats: CheckCacheFn,
}

impl CheckCacheMetrics {
    fn new(registry: &Registry, stats: CheckCacheFn) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            hits: IntCounter::new(
                "ostiary_check_cache_hits_total",
                "Checks answered from the cache of Check answers",
            )?,
            misses: IntCounter::new(
                "ostiary_check_cache_misses_total",
                "Cacheable checks that had to be evaluated",
            )?,
            entries: IntGauge::new("ostiary_check_cache_entries", "Answers in the Check cache")?,
            bytes: IntGauge::new(
                "ostiary_check_cache_bytes",
                "Estimated memory held by the Check cache, in bytes",
            )?,
            capacity_bytes: IntGauge::new(
                "ostiary_check_cache_capacity_bytes",
                "The Check cache's memory limit, in bytes",
            )?,
            stats,
        };
        registry.register(Box::new(metrics.hits.clone()))?;
        registry.register(Box::new(metrics.misses.clone()))?;
        registry.register(Box::new(metrics.entries.clone()))?;
        registry.register(Box::new(metrics.bytes.clone()))?;
        registry.register(Box::new(metrics.capacity_bytes.clone()))?;
        Ok(metrics)
    }

    /// Copies the engine's counters into the series (counters only move forward).
    fn refresh(&self) {
        let Some(stats) = (self.stats)() else {
            return;
        };
        self.hits.inc_by(stats.hits.saturating_sub(self.hits.get()));
        self.misses
            .inc_by(stats.misses.saturating_sub(self.misses.get()));
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.entries.set(gauge(stats.entries));
        self.bytes.set(gauge(stats.bytes));
        self.capacity_bytes.set(gauge(stats.capacity_bytes));
    }
}

/// Counters resolved once per method.
#[derive(Debug)]
struct MethodMetrics {
    started: IntCounter,
    duration: Histogram,
}

/// The metrics of one server, in their own registry (several servers in one process, as in
/// tests, do not share counters).
pub struct Metrics {
    registry: Registry,
    methods: Vec<MethodMetrics>,
    handled: IntCounterVec,
    in_flight: IntGauge,
    /// Permission checks evaluated (one per CheckPermission, one per CheckBulk item).
    pub(crate) checks: IntCounter,
    /// Nodes the engine evaluated for checks (SpiceDB's dispatch count).
    pub(crate) dispatches: IntCounter,
    /// Results streamed by LookupResources and LookupSubjects, by method.
    lookup_results: IntCounterVec,
    /// Engine schemas served from the per-revision cache.
    pub(crate) schema_cache_hits: IntCounter,
    /// Engine schemas compiled because the cache held another revision.
    pub(crate) schema_cache_misses: IntCounter,
    /// Head revision minus the revision a read ran at.
    pub(crate) revision_lag: Histogram,
    store_bytes: IntGauge,
    store_size: parking_lot::Mutex<Option<StoreSizeFn>>,
    check_cache: parking_lot::Mutex<Option<CheckCacheMetrics>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Latency buckets in seconds, from 100 µs to 60 s (Watch streams land in the last ones).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 60.0,
];

/// Revision-lag buckets, in revisions.
const LAG_BUCKETS: &[f64] = &[0.0, 1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 1000.0, 10_000.0];

impl Metrics {
    /// Registers every metric in a fresh registry.
    ///
    /// # Errors
    ///
    /// A registration error (only on a programming mistake such as a duplicate name).
    pub(crate) fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let started = IntCounterVec::new(
            Opts::new(
                "ostiary_grpc_requests_total",
                "gRPC requests received, by method",
            ),
            &["method"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "ostiary_grpc_request_duration_seconds",
                "Time from a gRPC request's arrival to the end of its response (for streams, the whole stream), by method",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method"],
        )?;
        let handled = IntCounterVec::new(
            Opts::new(
                "ostiary_grpc_handled_total",
                "gRPC requests completed, by method and gRPC status code",
            ),
            &["method", "code"],
        )?;
        let in_flight = IntGauge::new(
            "ostiary_grpc_requests_in_flight",
            "gRPC requests whose response has not ended yet",
        )?;
        let checks = IntCounter::new(
            "ostiary_checks_total",
            "Permission checks evaluated (CheckPermission, and each CheckBulkPermissions item)",
        )?;
        let dispatches = IntCounter::new(
            "ostiary_dispatches_total",
            "Nodes (a relation or permission of one object) the engine evaluated for checks",
        )?;
        let lookup_results = IntCounterVec::new(
            Opts::new(
                "ostiary_lookup_results_total",
                "Results streamed by LookupResources and LookupSubjects, by method",
            ),
            &["method"],
        )?;
        let schema_cache_hits = IntCounter::new(
            "ostiary_schema_cache_hits_total",
            "Requests that found the compiled schema of their revision in the cache",
        )?;
        let schema_cache_misses = IntCounter::new(
            "ostiary_schema_cache_misses_total",
            "Requests that compiled the schema of their revision",
        )?;
        let revision_lag = Histogram::with_opts(
            HistogramOpts::new(
                "ostiary_read_revision_lag",
                "Head revision minus the revision a read was served at, in revisions",
            )
            .buckets(LAG_BUCKETS.to_vec()),
        )?;
        let store_bytes = IntGauge::new(
            "ostiary_store_bytes",
            "Size of the datastore on disk, in bytes (only for backends that report it)",
        )?;
        registry.register(Box::new(started.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(handled.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(checks.clone()))?;
        registry.register(Box::new(dispatches.clone()))?;
        registry.register(Box::new(lookup_results.clone()))?;
        registry.register(Box::new(schema_cache_hits.clone()))?;
        registry.register(Box::new(schema_cache_misses.clone()))?;
        registry.register(Box::new(revision_lag.clone()))?;
        let methods = METHODS
            .iter()
            .map(|method| {
                Ok(MethodMetrics {
                    started: started.get_metric_with_label_values(&[method])?,
                    duration: duration.get_metric_with_label_values(&[method])?,
                })
            })
            .collect::<Result<_, prometheus::Error>>()?;
        Ok(Self {
            registry,
            methods,
            handled,
            in_flight,
            checks,
            dispatches,
            lookup_results,
            schema_cache_hits,
            schema_cache_misses,
            revision_lag,
            store_bytes,
            store_size: parking_lot::Mutex::new(None),
            check_cache: parking_lot::Mutex::new(None),
        })
    }

    /// Sets the function that reports the store's size; the `ostiary_store_bytes` gauge is
    /// exported from then on.
    pub(crate) fn set_store_size(&self, size: StoreSizeFn) {
        if self
            .registry
            .register(Box::new(self.store_bytes.clone()))
            .is_err()
        {
            tracing::debug!("store size gauge already registered");
        }
        *self.store_size.lock() = Some(size);
    }

    /// Exports the Check cache's hits, misses and size, read from `stats` at every scrape.
    pub(crate) fn set_check_cache(&self, stats: CheckCacheFn) {
        match CheckCacheMetrics::new(&self.registry, stats) {
            Ok(metrics) => *self.check_cache.lock() = Some(metrics),
            Err(err) => tracing::debug!(error = %err, "check cache metrics not registered"),
        }
    }

    /// Counts `n_results` results streamed by the lookup `method`.
    pub(crate) fn lookup_results(&self, method: &'static str, n_results: usize) {
        if let Ok(counter) = self.lookup_results.get_metric_with_label_values(&[method]) {
            counter.inc_by(u64::try_from(n_results).unwrap_or(u64::MAX));
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        if let Some(size) = self.store_size.lock().as_ref().and_then(|size| size()) {
            self.store_bytes
                .set(i64::try_from(size).unwrap_or(i64::MAX));
        }
        if let Some(check_cache) = self.check_cache.lock().as_ref() {
            check_cache.refresh();
        }
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %err, "cannot encode metrics");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Records one call when dropped: the handled counter by code, the latency, in-flight.
struct CallGuard {
    metrics: Arc<Metrics>,
    method: usize,
    start: Instant,
    /// The gRPC code, once seen in the response headers or trailers.
    code: Option<i32>,
}

impl CallGuard {
    /// Starts counting a call of `method`.
    fn start(metrics: Arc<Metrics>, method: usize) -> Self {
        if let Some(method) = metrics.methods.get(method) {
            method.started.inc();
        }
        metrics.in_flight.inc();
        Self {
            metrics,
            method,
            start: Instant::now(),
            code: None,
        }
    }

    /// Takes the code from a `grpc-status` header, if present.
    fn observe(&mut self, headers: &http::HeaderMap) {
        if let Some(code) = headers
            .get("grpc-status")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<i32>().ok())
        {
            self.code = Some(code);
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let metrics = &self.metrics;
        metrics.in_flight.dec();
        if let Some(method) = metrics.methods.get(self.method) {
            method.duration.observe(self.start.elapsed().as_secs_f64());
        }
        // A response that ended without a status was cut short: the client went away.
        let code = code_label(self.code.unwrap_or(1));
        let method = METHODS.get(self.method).copied().unwrap_or("unknown");
        if let Ok(counter) = metrics
            .handled
            .get_metric_with_label_values(&[method, code])
        {
            counter.inc();
        }
    }
}

/// The tower layer that counts every RPC (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct MetricsLayer {
    metrics: Option<Arc<Metrics>>,
}

impl MetricsLayer {
    /// Counts into `metrics` (nothing when `None`).
    pub(crate) fn new(metrics: Option<Arc<Metrics>>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`MetricsLayer`] wraps around the gRPC router.
#[derive(Debug, Clone)]
pub(crate) struct MetricsService<S> {
    inner: S,
    metrics: Option<Arc<Metrics>>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for MetricsService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<MetricsBody<ResBody>>;
    type Error = S::Error;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let guard = self.metrics.as_ref().map(|metrics| {
            CallGuard::start(Arc::clone(metrics), method_index(request.uri().path()))
        });
        MetricsFuture {
            inner: self.inner.call(request),
            guard,
        }
    }
}

pin_project! {
    /// The response future of [`MetricsService`].
    pub(crate) struct MetricsFuture<F> {
        #[pin]
        inner: F,
        guard: Option<CallGuard>,
    }
}

impl<F, ResBody, E> Future for MetricsFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<MetricsBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = ready!(this.inner.poll(cx));
        let mut guard = this.guard.take();
        Poll::Ready(res.map(|response| {
            if let Some(guard) = guard.as_mut() {
                // A trailers-only response (an error) carries its status in the headers.
                guard.observe(response.headers());
            }
            response.map(|body| MetricsBody { inner: body, guard })
        }))
    }
}

pin_project! {
    /// A response body that records its call when the trailers arrive or it is dropped.
    pub(crate) struct MetricsBody<B> {
        #[pin]
        inner: B,
        guard: Option<CallGuard>,
    }
}

impl<B: Body> Body for MetricsBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(trailers), Some(guard)) = (frame.trailers_ref(), this.guard.as_mut()) {
                    guard.observe(trailers);
                }
            }
            Some(Err(_)) => {
                if let Some(guard) = this.guard.as_mut() {
                    guard.code = Some(13);
                }
            }
            None => {}
        }
        if frame.is_none() || this.inner.is_end_stream() {
            // Record now rather than whenever the body is dropped.
            this.guard.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `GET /metrics` (Prometheus text format) on `listener` until `shutdown` completes.
/// Any other path answers 404.
///
/// # Errors
///
/// Never fails once bound; a connection that errors is logged and dropped.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "metrics endpoint: accept failed");
                    continue;
                }
            },
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
                let metrics = Arc::clone(&metrics);
                async move { Ok::<_, Infallible>(metrics_response(&request, &metrics)) }
            });
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %err, "metrics endpoint: connection failed");
            }
        });
    }
}

/// The answer to one request of the metrics endpoint.
fn metrics_response<B>(
    request: &http::Request<B>,
    metrics: &Metrics,
) -> http::Response<Full<Bytes>> {
    if request.method() != http::Method::GET || request.uri().path() != "/metrics" {
        let mut response = http::Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *response.status_mut() = http::StatusCode::NOT_FOUND;
        return response;
    }
    let mut response = http::Response::new(Full::new(Bytes::from(metrics.render())));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_static_method_labels() {
        assert_eq!(
            METHODS[method_index("/authzed.api.v1.PermissionsService/CheckPermission")],
            "authzed.api.v1.PermissionsService/CheckPermission"
        );
        assert_eq!(METHODS[method_index("/nope.Service/Method")], "unknown");
        assert_eq!(code_label(0), "OK");
        assert_eq!(code_label(16), "UNAUTHENTICATED");
        assert_eq!(code_label(99), "UNKNOWN");
    }

    #[test]
    fn render_exports_the_registered_families() {
        let metrics = Metrics::new().unwrap();
        metrics.checks.inc_by(3);
        metrics.set_store_size(Box::new(|| Some(4096)));
        let text = metrics.render();
        assert!(text.contains("ostiary_checks_total 3"), "{text}");
        assert!(text.contains("ostiary_store_bytes 4096"), "{text}");
    }
}
