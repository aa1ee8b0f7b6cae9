//! Who is calling, on which tenant, with which rights: a tower layer in front of every
//! service that authenticates the bearer token, picks the tenant, checks the method's scope,
//! applies the rate limits and opens the request's span.
//!
//! A request passes through, in order:
//! 1. the route table: health and reflection are public; every other method needs a valid
//!    token, and each `authzed.api.v1` and `ostiary.admin.v1` method needs one [`Scope`];
//! 2. the per-source failure limit: a client address with too many recent failed
//!    authentications is refused before its token is even looked at (brute force);
//! 3. authentication: an Ostiary API token (`ost_<id>_<secret>`, see `ostiary-tenancy`), or
//!    one of the preshared keys, which act as a root token (SpiceDB's `--grpc-preshared-key`
//!    deployments keep working unchanged); with neither configured (`--insecure-no-auth`)
//!    every caller is root. Failures are `Unauthenticated` with the same message whatever
//!    was wrong, and are written to the system tenant's audit log;
//! 4. the tenant: a tenant token acts on its own tenant; root may pick one with the
//!    `ostiary-tenant` metadata (the default tenant otherwise). A tenant token naming another
//!    tenant is `PermissionDenied` without saying whether that tenant exists;
//! 5. the scope, then the token's and the tenant's token buckets (`ResourceExhausted` with
//!    `retry-after-ms` metadata) and the cap on concurrent streams per token;
//! 6. the [`Caller`] goes into the request's extensions for the handlers.

use std::hash::{BuildHasher as _, RandomState};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use ostiary_tenancy::{
    AuthError, NewAuditEntry, Principal, RequestContext, Scope, Tenancy, TenantState, TokenId,
};
use ostiary_types::{ObjectType, TenantId};
use tonic::Status;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument as _;

use crate::limits::{Limits, StreamGuard};
use crate::status::ApiError;
use crate::token::constant_time_eq;

/// The metadata a root caller names the tenant with.
pub(crate) const TENANT_HEADER: &str = "ostiary-tenant";
/// The metadata naming who the caller acts for (support access), for the audit log.
pub(crate) const ON_BEHALF_OF_HEADER: &str = "ostiary-on-behalf-of";

/// What a method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Health checks and reflection: no token.
    Public,
    /// A valid token with this scope.
    Scoped { scope: Scope, streaming: bool },
    /// A valid token of any scope; the method's own rules decide the rest.
    Authenticated,
    /// A method we do not serve: a valid token, then tonic answers `Unimplemented`.
    Unknown,
}

/// The route of a request path `/package.Service/Method`.
fn route(path: &str) -> Route {
    let scoped = |scope, streaming| Route::Scoped { scope, streaming };
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return Route::Unknown;
    };
    match service {
        "grpc.health.v1.Health"
        | "grpc.reflection.v1.ServerReflection"
        | "grpc.reflection.v1alpha.ServerReflection" => Route::Public,
        "authzed.api.v1.PermissionsService" => match method {
            "CheckPermission" | "CheckBulkPermissions" | "ExpandPermissionTree" => {
                scoped(Scope::Check, false)
            }
            "LookupResources" | "LookupSubjects" => scoped(Scope::Check, true),
            "ReadRelationships" | "ExportBulkRelationships" => scoped(Scope::Read, true),
            "WriteRelationships" | "DeleteRelationships" => scoped(Scope::Write, false),
            "ImportBulkRelationships" => scoped(Scope::Write, true),
            _ => Route::Unknown,
        },
        "authzed.api.v1.SchemaService" => match method {
            "ReadSchema" | "ReflectSchema" | "DiffSchema" => scoped(Scope::Read, false),
            "WriteSchema" => scoped(Scope::Schema, false),
            _ => Route::Unknown,
        },
        "authzed.api.v1.WatchService" => scoped(Scope::Watch, true),
        "ostiary.admin.v1.TenantService" => scoped(Scope::Root, false),
        "ostiary.admin.v1.TokenService" => match method {
            // A token may rotate or revoke itself (services rotate their own credentials);
            // `ostiary-tenancy` requires `admin` for any other token.
            "RotateToken" | "RevokeToken" => Route::Authenticated,
            _ => scoped(Scope::Admin, false),
        },
        "ostiary.admin.v1.AuditService" => scoped(Scope::Admin, method == "ReadAuditLog"),
        _ => Route::Unknown,
    }
}

/// The authenticated caller of a request, as handlers find it in the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The tenant the request acts on.
    pub(crate) tenant: TenantId,
    /// The token; [`Principal::operator`] (root) for a preshared key or an unauthenticated
    /// server.
    pub(crate) principal: Arc<Principal>,
    /// Request id, client address and on-behalf-of, for the audit log.
    pub(crate) context: RequestContext,
}

impl Caller {
    /// The actor id written to the audit log.
    pub(crate) fn actor(&self) -> Option<String> {
        Some(self.principal.token_id().to_string())
    }

    /// Refuses a resource type outside the token's definition restriction; `field` names
    /// where the request used it.
    pub(crate) fn require_definition(
        &self,
        field: &str,
        definition: &ObjectType,
    ) -> Result<(), ApiError> {
        if self.principal.allows_definition(definition) {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "this token may not use definition `{definition}` (in `{field}`)"
            )))
        }
    }

    /// Reports whether the token is restricted to some definitions.
    pub(crate) fn is_restricted(&self) -> bool {
        !self.principal.is_root() && self.principal.definitions().is_some()
    }

    /// Checks again that the caller may go on: its token is neither revoked nor expired
    /// and the tenant it acts on is active. Long-lived streams call it as they go, so that
    /// revocation, expiry and suspension end them rather than only refusing new requests.
    /// Callers authenticated otherwise (preshared keys, an open server) always may.
    pub(crate) fn recheck(&self, tenancy: Option<&Tenancy>) -> Result<(), Status> {
        let Some(tenancy) = tenancy else {
            return Ok(());
        };
        let principal = &self.principal;
        if principal.token_id() == &TokenId::operator() {
            return Ok(());
        }
        let unavailable = |err: ostiary_tenancy::TenancyError| {
            tracing::error!(error = %err, "cannot recheck a token");
            Status::unavailable("authentication unavailable; retry")
        };
        let holder = tenancy
            .token_tenant(principal.token_id())
            .map_err(unavailable)?;
        if holder.as_ref() != Some(principal.tenant()) {
            return Err(Status::unauthenticated("the token was revoked"));
        }
        if principal
            .expires()
            .is_some_and(|expires| expires <= tenancy.now())
        {
            return Err(Status::unauthenticated("token expired"));
        }
        if !self.tenant.is_system() {
            let active = tenancy
                .tenant(&self.tenant)
                .map_err(unavailable)?
                .is_some_and(|info| info.state == TenantState::Active);
            if !active {
                return Err(Status::permission_denied(
                    "the token's tenant is not active",
                ));
            }
        }
        Ok(())
    }
}

/// The caller a handler was given by the layer.
pub(crate) fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, ApiError> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| {
            ApiError::Unavailable("request reached a handler unauthenticated".to_owned())
        })
}

/// How the server authenticates.
#[derive(Debug)]
pub(crate) struct Authority {
    /// API tokens and tenants; `None` when the server runs without them.
    tenancy: Option<Arc<Tenancy>>,
    /// Preshared keys with root rights.
    preshared_keys: Arc<[String]>,
    /// Serve everyone as root.
    insecure_no_auth: bool,
    /// The tenant of callers that name none.
    default_tenant: TenantId,
    limits: Arc<Limits>,
}

impl Authority {
    /// Authenticates with `tenancy`'s tokens and `preshared_keys`; with neither, every
    /// caller is root (`--insecure-no-auth`).
    pub(crate) fn new(
        tenancy: Option<Arc<Tenancy>>,
        preshared_keys: Vec<String>,
        insecure_no_auth: bool,
        default_tenant: TenantId,
        limits: Arc<Limits>,
    ) -> Self {
        Self {
            tenancy,
            preshared_keys: preshared_keys.into(),
            insecure_no_auth,
            default_tenant,
            limits,
        }
    }

    /// Whether every caller is root: `--insecure-no-auth`, or a server with neither keys
    /// nor tokens.
    fn open(&self) -> bool {
        self.insecure_no_auth || (self.tenancy.is_none() && self.preshared_keys.is_empty())
    }

    /// Authenticates `headers` for `route`; on success the caller and, for a stream, the
    /// slot it holds.
    fn admit(
        &self,
        scope: Option<Scope>,
        streaming: bool,
        admin_route: bool,
        headers: &http::HeaderMap,
        client: Option<IpAddr>,
        context: RequestContext,
    ) -> Result<(Caller, Option<StreamGuard>), Status> {
        let named_tenant = headers
            .get(TENANT_HEADER)
            .map(|value| {
                value
                    .to_str()
                    .ok()
                    .and_then(|text| text.parse::<TenantId>().ok())
                    .ok_or_else(|| {
                        Status::invalid_argument(format!(
                            "`{TENANT_HEADER}` metadata is not a valid tenant id"
                        ))
                    })
            })
            .transpose()?;
        let principal = if self.open() {
            Principal::operator()
        } else {
            if let Some(client) = client
                && self.limits.auth_failures_exceeded(client)
            {
                return Err(Status::unauthenticated(
                    "too many failed authentications; retry later",
                ));
            }
            match self.authenticate(headers) {
                Ok(principal) => principal,
                Err(Refusal { status, kind }) => {
                    // Only a wrong credential counts toward the per-source limit: a correct
                    // token that is expired or of a suspended tenant is no guess, and
                    // counting it would block every tenant served from that address.
                    if kind == RefusalKind::WrongCredential
                        && let Some(client) = client
                    {
                        self.limits.record_auth_failure(client);
                    }
                    if kind != RefusalKind::Unavailable {
                        self.audit_failure(&context, status.message());
                    }
                    return Err(status);
                }
            }
        };
        let tenant = match (&principal, named_tenant) {
            (principal, named) if !principal.is_root() => {
                if named
                    .as_ref()
                    .is_some_and(|named| named != principal.tenant())
                {
                    return Err(Status::permission_denied(
                        "this token is not valid for the tenant named in the request",
                    ));
                }
                principal.tenant().clone()
            }
            (_, Some(named)) => named,
            (_, None) => self.default_tenant.clone(),
        };
        if let Some(scope) = scope
            && !principal.allows(&tenant, scope)
        {
            return Err(Status::permission_denied(format!(
                "this token lacks the `{scope}` scope this method needs"
            )));
        }
        let key = principal.token_id().as_str();
        // The tenant must be registered and active, and a tenant token counts against its
        // tenant's request quota, whatever it calls. Root's tenant and token management
        // name their tenants themselves, so root skips the check there. Root learns
        // whether a tenant exists; a tenant token never gets here with another tenant.
        let mut quota = 0;
        if let Some(tenancy) = &self.tenancy
            && (!principal.is_root() || !admin_route)
        {
            let info = tenancy.tenant(&tenant).map_err(|err| {
                tracing::error!(error = %err, "cannot read the tenant registry");
                Status::unavailable("tenant registry unavailable; retry")
            })?;
            match info {
                Some(info) if info.state == TenantState::Active => {
                    if !principal.is_root() {
                        quota = info.quotas.max_requests_per_second.unwrap_or(0);
                    }
                }
                _ => {
                    return Err(Status::failed_precondition(format!(
                        "tenant `{tenant}` does not exist or is not active"
                    )));
                }
            }
        }
        self.limits
            .admit(key, &tenant, quota)
            .map_err(rate_limited)?;
        let guard = if streaming {
            Some(self.limits.open_stream(key).ok_or_else(|| {
                Status::resource_exhausted("too many concurrent streams for this token")
            })?)
        } else {
            None
        };
        Ok((
            Caller {
                tenant,
                principal: Arc::new(principal),
                context,
            },
            guard,
        ))
    }

    /// The token or preshared key in `authorization: Bearer ...`.
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<Principal, Refusal> {
        let wrong = |status| Refusal {
            status,
            kind: RefusalKind::WrongCredential,
        };
        let unusable = |status| Refusal {
            status,
            kind: RefusalKind::Unusable,
        };
        let Some(header) = headers.get(http::header::AUTHORIZATION) else {
            return Err(wrong(Status::unauthenticated(
                "missing `authorization` header",
            )));
        };
        let presented = header
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                wrong(Status::unauthenticated(
                    "`authorization` header must be `Bearer <token>`",
                ))
            })?;
        // Every key is compared (no early exit), so timing does not tell which one matched.
        let preshared = self.preshared_keys.iter().fold(false, |found, key| {
            found | constant_time_eq(key.as_bytes(), presented.as_bytes())
        });
        if preshared {
            return Ok(Principal::operator());
        }
        let Some(tenancy) = &self.tenancy else {
            return Err(wrong(Status::unauthenticated("invalid token")));
        };
        match tenancy.authenticate(presented) {
            Ok(principal) => Ok(principal),
            Err(AuthError::Unavailable(err)) => {
                tracing::error!(error = %err, "authentication failed: datastore unavailable");
                Err(Refusal {
                    status: Status::unavailable("authentication unavailable; retry"),
                    kind: RefusalKind::Unavailable,
                })
            }
            Err(AuthError::Expired) => Err(unusable(Status::unauthenticated("token expired"))),
            Err(AuthError::TenantNotActive) => Err(unusable(Status::permission_denied(
                "the token's tenant is not active",
            ))),
            Err(_) => Err(wrong(Status::unauthenticated("invalid token"))),
        }
    }

    /// Writes an authentication failure to the system tenant's audit log.
    fn audit_failure(&self, context: &RequestContext, reason: &str) {
        let Some(tenancy) = &self.tenancy else {
            return;
        };
        let entry = NewAuditEntry {
            action: "auth.failure".to_owned(),
            actor: None,
            request_id: context.request_id.clone(),
            client_address: context.client_address.clone(),
            on_behalf_of: context.on_behalf_of.clone(),
            details: serde_json::json!({ "reason": reason }),
        };
        if let Err(err) = ostiary_tenancy::audit::append_alone(
            tenancy.store().as_ref(),
            &TenantId::system(),
            &entry,
            tenancy.revision_seal(),
        ) {
            tracing::error!(error = %err, "could not audit an authentication failure");
        }
    }
}

/// Why [`Authority::authenticate`] refused a request, and the answer.
#[derive(Debug)]
struct Refusal {
    status: Status,
    kind: RefusalKind,
}

/// What a refused authentication means for the per-source limit and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefusalKind {
    /// No token, a malformed one, or a wrong secret (a guess): counted and audited.
    WrongCredential,
    /// The right secret of a token that cannot be used (expired, tenant not active):
    /// audited, not counted.
    Unusable,
    /// The datastore failed: neither (the caller did nothing wrong).
    Unavailable,
}

/// `ResourceExhausted` with the time to wait in `retry-after-ms` metadata.
fn rate_limited(retry_after: std::time::Duration) -> Status {
    let mut status = Status::resource_exhausted(format!(
        "rate limit exceeded; retry after {} ms",
        retry_after.as_millis().max(1)
    ));
    if let Ok(value) = retry_after.as_millis().max(1).to_string().parse() {
        status.metadata_mut().insert("retry-after-ms", value);
    }
    status
}

/// The layer putting [`AccessControl`] in front of the router.
#[derive(Debug, Clone)]
pub(crate) struct AccessLayer {
    authority: Arc<Authority>,
    request_ids: Arc<RequestIds>,
}

/// Generates request ids: a counter passed through SipHash under a random per-process key,
/// as 16 hex digits. Not the counter itself: request ids reach every tenant's audit log,
/// and consecutive numbers would tell a tenant how many requests other tenants made
/// between two of its own.
#[derive(Debug)]
struct RequestIds {
    next: AtomicU64,
    key: RandomState,
}

impl RequestIds {
    fn new() -> Self {
        Self {
            next: AtomicU64::new(1),
            key: RandomState::new(),
        }
    }

    /// A fresh id.
    fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}", self.key.hash_one(n))
    }
}

impl AccessLayer {
    /// Admits requests with `authority`.
    pub(crate) fn new(authority: Arc<Authority>) -> Self {
        Self {
            authority,
            request_ids: Arc::new(RequestIds::new()),
        }
    }
}

impl<S> Layer<S> for AccessLayer {
    type Service = AccessControl<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessControl {
            inner,
            authority: Arc::clone(&self.authority),
            request_ids: Arc::clone(&self.request_ids),
        }
    }
}

/// The service [`AccessLayer`] wraps around the gRPC router.
#[derive(Debug, Clone)]
pub(crate) struct AccessControl<S> {
    inner: S,
    authority: Arc<Authority>,
    request_ids: Arc<RequestIds>,
}

type BoxFuture<T, E> = Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

impl<S> Service<http::Request<tonic::body::Body>> for AccessControl<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        // The clone that was driven to readiness serves this request (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path().to_owned();
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .map_or_else(|| self.request_ids.next_id(), ToOwned::to_owned);
        let span = tracing::info_span!("rpc", method = %path, request_id = %request_id);
        let route = route(&path);
        // Tenant and token management, which name their tenants themselves.
        let admin_route = matches!(
            route,
            Route::Scoped {
                scope: Scope::Root | Scope::Admin,
                ..
            } | Route::Authenticated
        );
        let (scope, streaming) = match route {
            Route::Public => {
                return Box::pin(async move { inner.call(request).await }.instrument(span));
            }
            Route::Scoped { scope, streaming } => (Some(scope), streaming),
            Route::Authenticated | Route::Unknown => (None, false),
        };
        let client = client_address(&request);
        let context = RequestContext {
            request_id: Some(request_id),
            client_address: client.map(|ip| ip.to_string()),
            on_behalf_of: request
                .headers()
                .get(ON_BEHALF_OF_HEADER)
                .and_then(|value| value.to_str().ok())
                .map(ToOwned::to_owned),
        };
        let admitted = {
            let _entered = span.enter();
            self.authority.admit(
                scope,
                streaming,
                admin_route,
                request.headers(),
                client,
                context,
            )
        };
        match admitted {
            Ok((caller, guard)) => {
                request.extensions_mut().insert(caller);
                Box::pin(
                    async move {
                        let response = inner.call(request).await?;
                        Ok(match guard {
                            // The slot is held until the response stream ends.
                            Some(guard) => response.map(|body| {
                                tonic::body::Body::new(crate::limits::GuardedBody::new(body, guard))
                            }),
                            None => response,
                        })
                    }
                    .instrument(span),
                )
            }
            Err(status) => {
                let _entered = span.enter();
                tracing::debug!(code = ?status.code(), message = status.message(), "request refused");
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

/// The peer address of a request, over plaintext or TLS.
fn client_address<B>(request: &http::Request<B>) -> Option<IpAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
        .map(|addr| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_method_has_a_scope() {
        let cases = [
            (
                "/authzed.api.v1.PermissionsService/CheckPermission",
                Scope::Check,
            ),
            (
                "/authzed.api.v1.PermissionsService/LookupSubjects",
                Scope::Check,
            ),
            (
                "/authzed.api.v1.PermissionsService/ReadRelationships",
                Scope::Read,
            ),
            (
                "/authzed.api.v1.PermissionsService/ImportBulkRelationships",
                Scope::Write,
            ),
            ("/authzed.api.v1.SchemaService/WriteSchema", Scope::Schema),
            ("/authzed.api.v1.SchemaService/DiffSchema", Scope::Read),
            ("/authzed.api.v1.WatchService/Watch", Scope::Watch),
            ("/ostiary.admin.v1.TenantService/CreateTenant", Scope::Root),
            ("/ostiary.admin.v1.TokenService/CreateToken", Scope::Admin),
            (
                "/ostiary.admin.v1.AuditService/VerifyAuditLog",
                Scope::Admin,
            ),
        ];
        for (path, scope) in cases {
            assert!(
                matches!(route(path), Route::Scoped { scope: s, .. } if s == scope),
                "{path}"
            );
        }
        assert_eq!(route("/grpc.health.v1.Health/Check"), Route::Public);
        assert_eq!(
            route("/ostiary.admin.v1.TokenService/RotateToken"),
            Route::Authenticated
        );
        assert_eq!(
            route("/authzed.api.v1.PermissionsService/Nope"),
            Route::Unknown
        );
        assert_eq!(route("/nope"), Route::Unknown);
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
