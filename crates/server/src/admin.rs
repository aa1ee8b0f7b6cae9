//! `ostiary.admin.v1`: tenants (root only), API tokens and the audit log, over
//! `ostiary-tenancy`. Which token may do what is the tenancy crate's rule; this module only
//! converts between the wire and the domain and runs the work on a blocking thread.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ostiary_proto::ostiary::admin::v1 as pb;
use ostiary_proto::ostiary::admin::v1::audit_service_server::AuditService;
use ostiary_proto::ostiary::admin::v1::tenant_service_server::TenantService;
use ostiary_proto::ostiary::admin::v1::token_service_server::TokenService;
use ostiary_store::add_duration;
use ostiary_tenancy::audit::{self, AuditFilter, ChainBreak, Verification};
use ostiary_tenancy::{
    NewToken, Quotas, Scope, Tenancy, TenantInfo, TenantState, TokenId, TokenInfo,
};
use ostiary_types::{ObjectType, TenantId};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::auth::{Caller, caller};
use crate::convert::{timestamp as timestamp_from_pb, timestamp_to_pb};
use crate::status::ApiError;
use crate::{ServerState, blocking};

/// Most audit entries one ReadAuditLog call streams when it sets no limit.
const MAX_AUDIT_READ: usize = 100_000;

/// The three admin services, sharing the tenancy service.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    state: Arc<ServerState>,
    tenancy: Arc<Tenancy>,
}

impl Admin {
    /// Serves `tenancy` (the state's).
    pub(crate) fn new(state: Arc<ServerState>, tenancy: Arc<Tenancy>) -> Self {
        Self { state, tenancy }
    }

    /// Runs `work` with the caller on a blocking thread.
    async fn run<R, T, F>(&self, request: Request<R>, work: F) -> Result<Response<T>, Status>
    where
        R: Send + 'static,
        T: Send + 'static,
        F: FnOnce(&Tenancy, &Caller, R) -> Result<T, ApiError> + Send + 'static,
    {
        let _permit = self.state.permit().await?;
        let caller = caller(&request)?;
        let tenancy = Arc::clone(&self.tenancy);
        let message = request.into_inner();
        let response = blocking(move || work(&tenancy, &caller, message)).await?;
        Ok(Response::new(response))
    }
}

/// Parses a tenant id field.
fn tenant_id(field: &str, text: &str) -> Result<TenantId, ApiError> {
    text.parse().map_err(|err| ApiError::field(field, &err))
}

/// The tenant a request names, or the caller's when it names none.
fn tenant_or_callers(caller: &Caller, text: &str) -> Result<TenantId, ApiError> {
    if text.is_empty() {
        Ok(caller.tenant.clone())
    } else {
        tenant_id("tenant", text)
    }
}

fn duration_from_pb(field: &str, duration: &prost_types::Duration) -> Result<Duration, ApiError> {
    let seconds = u64::try_from(duration.seconds)
        .map_err(|_| ApiError::invalid(format!("`{field}` must not be negative")))?;
    let nanos = u32::try_from(duration.nanos)
        .map_err(|_| ApiError::invalid(format!("`{field}` must not be negative")))?;
    Ok(Duration::new(seconds, nanos))
}

fn quotas_from_pb(quotas: Option<&pb::TenantQuotas>) -> Quotas {
    let nonzero = |value: u64| (value != 0).then_some(value);
    quotas.map_or_else(Quotas::default, |quotas| Quotas {
        max_relationships: nonzero(quotas.max_relationships),
        max_schema_bytes: nonzero(quotas.max_schema_bytes),
        max_requests_per_second: (quotas.max_requests_per_second != 0)
            .then_some(quotas.max_requests_per_second),
    })
}

fn tenant_to_pb(info: &TenantInfo) -> pb::Tenant {
    let state = match info.state {
        TenantState::Active => pb::TenantState::Active,
        TenantState::Suspended => pb::TenantState::Suspended,
        TenantState::Deleting => pb::TenantState::Deleting,
    };
    pb::Tenant {
        id: info.id.to_string(),
        state: state as i32,
        created_at: Some(timestamp_to_pb(info.created)),
        quotas: Some(pb::TenantQuotas {
            max_relationships: info.quotas.max_relationships.unwrap_or(0),
            max_schema_bytes: info.quotas.max_schema_bytes.unwrap_or(0),
            max_requests_per_second: info.quotas.max_requests_per_second.unwrap_or(0),
        }),
    }
}

fn scope_to_pb(scope: Scope) -> pb::Scope {
    match scope {
        Scope::Check => pb::Scope::Check,
        Scope::Read => pb::Scope::Read,
        Scope::Write => pb::Scope::Write,
        Scope::Schema => pb::Scope::Schema,
        Scope::Watch => pb::Scope::Watch,
        Scope::Admin => pb::Scope::Admin,
        Scope::Root => pb::Scope::Root,
    }
}

fn scope_from_pb(idx: usize, value: i32) -> Result<Scope, ApiError> {
    match pb::Scope::try_from(value) {
        Ok(pb::Scope::Check) => Ok(Scope::Check),
        Ok(pb::Scope::Read) => Ok(Scope::Read),
        Ok(pb::Scope::Write) => Ok(Scope::Write),
        Ok(pb::Scope::Schema) => Ok(Scope::Schema),
        Ok(pb::Scope::Watch) => Ok(Scope::Watch),
        Ok(pb::Scope::Admin) => Ok(Scope::Admin),
        Ok(pb::Scope::Root) => Ok(Scope::Root),
        _ => Err(ApiError::invalid(format!(
            "invalid `scopes[{idx}]`: not a scope"
        ))),
    }
}

fn token_to_pb(info: &TokenInfo) -> pb::Token {
    pb::Token {
        id: info.id.to_string(),
        tenant: info.tenant.to_string(),
        scopes: info
            .scopes
            .iter()
            .map(|scope| scope_to_pb(scope) as i32)
            .collect(),
        definitions: info
            .definitions
            .iter()
            .flatten()
            .map(ToString::to_string)
            .collect(),
        created_at: Some(timestamp_to_pb(info.created)),
        expires_at: info.expires.map(timestamp_to_pb),
        last_used_at: info.last_used.map(timestamp_to_pb),
        description: info.description.clone(),
        created_by: info
            .created_by
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        revoked_at: None,
        previous_secret_valid_until: None,
    }
}

fn token_id(text: &str) -> Result<TokenId, ApiError> {
    TokenId::new(text)
        .map_err(|_| ApiError::invalid(format!("invalid `token_id`: `{text}` is not a token id")))
}

/// The info of one token of `tenant` after a change.
fn find_token(
    tenancy: &Tenancy,
    caller: &Caller,
    tenant: &TenantId,
    id: &TokenId,
) -> Result<Option<TokenInfo>, ApiError> {
    Ok(tenancy
        .list_tokens(&caller.principal, tenant)?
        .into_iter()
        .find(|info| &info.id == id))
}

/// The tenant a token id belongs to, as the caller may see it: its own tenant, or for root
/// whichever tenant holds it.
fn token_tenant(tenancy: &Tenancy, caller: &Caller, id: &TokenId) -> Result<TenantId, ApiError> {
    if caller.principal.is_root()
        && let Some(tenant) = tenancy.token_tenant(id)?
    {
        return Ok(tenant);
    }
    Ok(caller.principal.tenant().clone())
}

type AuditStream = Pin<Box<dyn Stream<Item = Result<pb::ReadAuditLogResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TenantService for Admin {
    async fn create_tenant(
        &self,
        request: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::CreateTenantResponse>, Status> {
        self.run(request, |tenancy, caller, request| {
            let id = tenant_id("id", &request.id)?;
            let info = tenancy.create_tenant(
                &caller.principal,
                &id,
                quotas_from_pb(request.quotas.as_ref()),
                "",
                &caller.context,
            )?;
            Ok(pb::CreateTenantResponse {
                tenant: Some(tenant_to_pb(&info)),
            })
        })
        .await
    }

    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        self.run(request, |tenancy, caller, _| {
            Ok(pb::ListTenantsResponse {
                tenants: tenancy
                    .list_tenants(&caller.principal)?
                    .iter()
                    .map(tenant_to_pb)
                    .collect(),
            })
        })
        .await
    }

    async fn get_tenant(
        &self,
        request: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::GetTenantResponse>, Status> {
        self.run(request, |tenancy, _, request| {
            let id = tenant_id("id", &request.id)?;
            let info = tenancy
                .tenant(&id)?
                .ok_or_else(|| ApiError::NotFound(format!("tenant `{id}` not found")))?;
            Ok(pb::GetTenantResponse {
                tenant: Some(tenant_to_pb(&info)),
            })
        })
        .await
    }

    async fn suspend_tenant(
        &self,
        request: Request<pb::SuspendTenantRequest>,
    ) -> Result<Response<pb::SuspendTenantResponse>, Status> {
        self.run(request, |tenancy, caller, request| {
            let id = tenant_id("id", &request.id)?;
            let info = tenancy.suspend_tenant(&caller.principal, &id, &caller.context)?;
            Ok(pb::SuspendTenantResponse {
                tenant: Some(tenant_to_pb(&info)),
            })
        })
        .await
    }

    async fn resume_tenant(
        &self,
        request: Request<pb::ResumeTenantRequest>,
    ) -> Result<Response<pb::ResumeTenantResponse>, Status> {
        self.run(request, |tenancy, caller, request| {
            let id = tenant_id("id", &request.id)?;
            let info = tenancy.resume_tenant(&caller.principal, &id, &caller.context)?;
            Ok(pb::ResumeTenantResponse {
                tenant: Some(tenant_to_pb(&info)),
            })
        })
        .await
    }

    async fn delete_tenant(
        &self,
        request: Request<pb::DeleteTenantRequest>,
    ) -> Result<Response<pb::DeleteTenantResponse>, Status> {
        let state = Arc::clone(&self.state);
        self.run(request, move |tenancy, caller, request| {
            let id = tenant_id("id", &request.id)?;
            let info = tenancy.delete_tenant(&caller.principal, &id, &caller.context)?;
            state.purge_in_background();
            Ok(pb::DeleteTenantResponse {
                tenant: Some(tenant_to_pb(&info)),
            })
        })
        .await
    }

    async fn set_tenant_quotas(
        &self,
        request: Request<pb::SetTenantQuotasRequest>,
    ) -> Result<Response<pb::SetTenantQuotasResponse>, Status> {
        self.run(request, |tenancy, caller, request| {
            let id = tenant_id("id", &request.id)?;
            let info = tenancy.set_quotas(
                &caller.principal,
                &id,
                quotas_from_pb(request.quotas.as_ref()),
                &caller.context,
            )?;
            Ok(pb::SetTenantQuotasResponse {
                tenant: Some(tenant_to_pb(&info)),
            })
        })
        .await
    }
}

#[tonic::async_trait]
impl TokenService for Admin {
    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        self.run(request, move |tenancy, caller, request| {
            let tenant = tenant_or_callers(caller, &request.tenant)?;
            let scopes = request
                .scopes
                .iter()
                .enumerate()
                .map(|(idx, scope)| scope_from_pb(idx, *scope))
                .collect::<Result<Vec<_>, _>>()?;
            let expires = request
                .ttl
                .as_ref()
                .map(|ttl| duration_from_pb("ttl", ttl))
                .transpose()?
                .map(|ttl| add_duration(tenancy.now(), ttl));
            let mut new = NewToken::new(tenant, scopes, expires, &request.description);
            if !request.definitions.is_empty() {
                new.definitions = Some(
                    request
                        .definitions
                        .iter()
                        .enumerate()
                        .map(|(idx, text)| {
                            text.parse::<ObjectType>().map_err(|err| {
                                ApiError::field(&format!("definitions[{idx}]"), &err)
                            })
                        })
                        .collect::<Result<_, _>>()?,
                );
            }
            let created = tenancy.create_token(&caller.principal, new, &caller.context)?;
            Ok(pb::CreateTokenResponse {
                token: Some(token_to_pb(&created.info)),
                secret_token: created.text.expose().to_owned(),
            })
        })
        .await
    }

    async fn rotate_token(
        &self,
        request: Request<pb::RotateTokenRequest>,
    ) -> Result<Response<pb::RotateTokenResponse>, Status> {
        self.run(request, move |tenancy, caller, request| {
            let id = token_id(&request.token_id)?;
            let grace = request
                .grace_period
                .as_ref()
                .map(|grace| duration_from_pb("grace_period", grace))
                .transpose()?
                .unwrap_or_default();
            let tenant = token_tenant(tenancy, caller, &id)?;
            let created =
                tenancy.rotate_token(&caller.principal, &tenant, &id, grace, &caller.context)?;
            let mut token = token_to_pb(&created.info);
            if !grace.is_zero() {
                token.previous_secret_valid_until =
                    Some(timestamp_to_pb(add_duration(tenancy.now(), grace)));
            }
            Ok(pb::RotateTokenResponse {
                token: Some(token),
                secret_token: created.text.expose().to_owned(),
            })
        })
        .await
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        self.run(request, move |tenancy, caller, request| {
            let id = token_id(&request.token_id)?;
            let tenant = token_tenant(tenancy, caller, &id)?;
            let before = find_token(tenancy, caller, &tenant, &id).ok().flatten();
            tenancy.revoke_token(&caller.principal, &tenant, &id, &caller.context)?;
            let mut token = before.as_ref().map_or_else(
                || pb::Token {
                    id: id.to_string(),
                    tenant: tenant.to_string(),
                    ..pb::Token::default()
                },
                token_to_pb,
            );
            token.revoked_at = Some(timestamp_to_pb(tenancy.now()));
            Ok(pb::RevokeTokenResponse { token: Some(token) })
        })
        .await
    }

    async fn list_tokens(
        &self,
        request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        self.run(request, |tenancy, caller, request| {
            let tenant = tenant_or_callers(caller, &request.tenant)?;
            Ok(pb::ListTokensResponse {
                tokens: tenancy
                    .list_tokens(&caller.principal, &tenant)?
                    .iter()
                    .map(token_to_pb)
                    .collect(),
            })
        })
        .await
    }
}

fn entry_to_pb(entry: &ostiary_tenancy::AuditEntry) -> pb::AuditEntry {
    pb::AuditEntry {
        sequence: entry.sequence,
        time: Some(timestamp_to_pb(entry.time)),
        written_at: entry.revision.clone(),
        actor: entry.actor.clone().unwrap_or_default(),
        action: entry.action.clone(),
        request_id: entry.request_id.clone().unwrap_or_default(),
        client_address: entry.client_address.clone().unwrap_or_default(),
        on_behalf_of: entry.on_behalf_of.clone().unwrap_or_default(),
        details_json: entry.details.clone(),
        previous_hash: entry.prev_hash.clone(),
        hash: entry.hash.clone(),
    }
}

/// The tenant whose audit log a request reads: its own, or any for root (the system
/// tenant's log with `_system`).
fn audit_tenant(caller: &Caller, text: &str) -> Result<TenantId, ApiError> {
    if caller.principal.is_root() && text == TenantId::SYSTEM {
        return Ok(TenantId::system());
    }
    let tenant = tenant_or_callers(caller, text)?;
    if !caller.principal.allows(&tenant, Scope::Admin) {
        return Err(ApiError::PermissionDenied(
            "this token may only read its own tenant's audit log".to_owned(),
        ));
    }
    Ok(tenant)
}

#[tonic::async_trait]
impl AuditService for Admin {
    type ReadAuditLogStream = AuditStream;

    async fn read_audit_log(
        &self,
        request: Request<pb::ReadAuditLogRequest>,
    ) -> Result<Response<Self::ReadAuditLogStream>, Status> {
        let response = self
            .run(request, |tenancy, caller, request| {
                let tenant = audit_tenant(caller, &request.tenant)?;
                let filter = AuditFilter {
                    from: request
                        .since
                        .as_ref()
                        .map(|since| timestamp_from_pb("since", since))
                        .transpose()?,
                    until: request
                        .until
                        .as_ref()
                        .map(|until| timestamp_from_pb("until", until))
                        .transpose()?,
                    actor: (!request.actor.is_empty()).then(|| request.actor.clone()),
                    action: (!request.action.is_empty()).then(|| request.action.clone()),
                };
                let limit = match usize::try_from(request.limit) {
                    Ok(0) | Err(_) => MAX_AUDIT_READ,
                    Ok(limit) => limit.min(MAX_AUDIT_READ),
                };
                let entries = audit::read(
                    tenancy.store().as_ref(),
                    &tenant,
                    &filter,
                    request.after_sequence,
                    limit,
                )?;
                Ok(entries
                    .iter()
                    .map(|entry| {
                        Ok(pb::ReadAuditLogResponse {
                            entry: Some(entry_to_pb(entry)),
                        })
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        let stream: AuditStream = Box::pin(tokio_stream::iter(response.into_inner()));
        Ok(Response::new(stream))
    }

    async fn verify_audit_log(
        &self,
        request: Request<pb::VerifyAuditLogRequest>,
    ) -> Result<Response<pb::VerifyAuditLogResponse>, Status> {
        self.run(request, |tenancy, caller, request| {
            let tenant = audit_tenant(caller, &request.tenant)?;
            Ok(match audit::verify(tenancy.store().as_ref(), &tenant)? {
                Verification::Intact { n_entries, .. } => pb::VerifyAuditLogResponse {
                    intact: true,
                    entries_checked: n_entries,
                    problem: String::new(),
                    problem_sequence: 0,
                },
                Verification::Broken(broken) => {
                    let sequence = match broken {
                        ChainBreak::Tampered { sequence } | ChainBreak::Missing { sequence } => {
                            sequence
                        }
                        ChainBreak::Reordered { first, .. } => first,
                    };
                    pb::VerifyAuditLogResponse {
                        intact: false,
                        entries_checked: sequence.saturating_sub(1),
                        problem: broken.to_string(),
                        problem_sequence: sequence,
                    }
                }
            })
        })
        .await
    }
}
