//! `ostiary tenant ...`, `ostiary token ...` and `ostiary audit ...`: Ostiary's administration
//! API (`ostiary.admin.v1`: tenants, API tokens and the hash-chained audit log) from the
//! command line, with aligned tables by default and JSON with `--json`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use ostiary_proto::ostiary::admin::v1 as pb;
use ostiary_types::Timestamp;
use serde_json::{Value, json};

use super::super::{Clients, ConnectionArgs, block_on, rpc_error};
use super::out;
use crate::cli::{parse_duration, parse_size};

/// Entries asked for per ReadAuditLog call; longer reads page with `after_sequence`.
const AUDIT_PAGE: u32 = 1000;

/// The longest details an audit table shows (`--json` shows them whole).
const MAX_DETAILS_CHARS: usize = 120;

/// `ostiary tenant ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
    /// Register a new, active tenant (root token).
    Create(TenantCreateArgs),
    /// List the tenants (root token).
    List(ConnectionOnlyArgs),
    /// Show one tenant: state, creation time and quotas (root token).
    Get(TenantIdArgs),
    /// Suspend a tenant: its tokens are refused until it is resumed (root token).
    Suspend(TenantIdArgs),
    /// Resume a suspended tenant (root token).
    Resume(TenantIdArgs),
    /// Delete a tenant: its tokens stop at once and its data is removed in the background
    /// (root token).
    Delete(TenantIdArgs),
    /// Change a tenant's quotas; quotas not given keep their value, `0` means unlimited
    /// (root token).
    Quotas(TenantQuotasArgs),
}

/// Arguments of commands that only need the connection.
#[derive(Debug, Args)]
pub(crate) struct ConnectionOnlyArgs {
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of commands that name one tenant.
#[derive(Debug, Args)]
pub(crate) struct TenantIdArgs {
    /// The tenant id.
    #[arg(value_name = "ID")]
    id: String,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// A tenant's quota flags.
#[derive(Debug, Args)]
struct QuotaArgs {
    /// Most relationships the tenant may store (`0`: unlimited).
    #[arg(long, value_name = "N")]
    max_relationships: Option<u64>,
    /// Largest schema the tenant may write: bytes, or with a unit (`64KiB`) (`0`: unlimited).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_schema_bytes: Option<u64>,
    /// Requests per second the tenant may make (`0`: unlimited).
    #[arg(long, value_name = "RPS")]
    max_requests_per_second: Option<u32>,
}

impl QuotaArgs {
    /// The quotas: those given, the others from `current` (unlimited without it).
    fn merged(&self, current: Option<&pb::TenantQuotas>) -> pb::TenantQuotas {
        let current = current.copied().unwrap_or_default();
        pb::TenantQuotas {
            max_relationships: self.max_relationships.unwrap_or(current.max_relationships),
            max_schema_bytes: self.max_schema_bytes.unwrap_or(current.max_schema_bytes),
            max_requests_per_second: self
                .max_requests_per_second
                .unwrap_or(current.max_requests_per_second),
        }
    }

    /// Reports whether no quota flag was given.
    fn is_empty(&self) -> bool {
        self.max_relationships.is_none()
            && self.max_schema_bytes.is_none()
            && self.max_requests_per_second.is_none()
    }
}

/// Arguments of `ostiary tenant create`.
#[derive(Debug, Args)]
pub(crate) struct TenantCreateArgs {
    /// The new tenant's id (`[a-z0-9][a-z0-9_-]{0,62}`).
    #[arg(value_name = "ID")]
    id: String,
    #[command(flatten)]
    quotas: QuotaArgs,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary tenant quotas`.
#[derive(Debug, Args)]
pub(crate) struct TenantQuotasArgs {
    /// The tenant id.
    #[arg(value_name = "ID")]
    id: String,
    #[command(flatten)]
    quotas: QuotaArgs,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// `ostiary token ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create an API token; its secret is printed this once.
    ///
    /// A token can only create tokens within its own rights: scopes, definitions and
    /// expiry.
    Create(TokenCreateArgs),
    /// Give a token a new secret (printed this once); the old one keeps working for
    /// `--grace`.
    Rotate(TokenRotateArgs),
    /// Revoke a token: it is refused from now on.
    Revoke(TokenIdArgs),
    /// List a tenant's tokens (never their secrets).
    List(TokenListArgs),
}

/// Arguments of `ostiary token create`.
#[derive(Debug, Args)]
pub(crate) struct TokenCreateArgs {
    /// The scopes, comma-separated or repeated: `check`, `read`, `write`, `schema`, `watch`,
    /// `admin` (the tenant's tokens and audit log), `root` (server-wide).
    #[arg(
        long = "scope",
        visible_alias = "scopes",
        required = true,
        value_delimiter = ',',
        value_parser = parse_scope,
        value_name = "SCOPE"
    )]
    scopes: Vec<pb::Scope>,
    /// Only resources of these definitions (comma-separated or repeated) [default: all].
    #[arg(long = "definition", value_delimiter = ',', value_name = "DEFINITION")]
    definitions: Vec<String>,
    /// How long the token lives (`30d`, `12h`); required unless the server allows
    /// non-expiring tokens.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    ttl: Option<Duration>,
    /// What the token is for.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// The tenant of the new token (root token only) [default: the caller's tenant].
    #[arg(long, value_name = "TENANT")]
    for_tenant: Option<String>,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary token rotate`.
#[derive(Debug, Args)]
pub(crate) struct TokenRotateArgs {
    /// The token id (the `<id>` of `ost_<id>_<secret>`).
    #[arg(value_name = "ID")]
    id: String,
    /// How long the previous secret keeps working (`0`: it stops at once).
    #[arg(long, default_value = "0", value_parser = parse_duration, value_name = "DURATION")]
    grace: Duration,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary token revoke`.
#[derive(Debug, Args)]
pub(crate) struct TokenIdArgs {
    /// The token id (the `<id>` of `ost_<id>_<secret>`).
    #[arg(value_name = "ID")]
    id: String,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary token list`.
#[derive(Debug, Args)]
pub(crate) struct TokenListArgs {
    /// The tenant whose tokens to list (root token only) [default: the caller's tenant].
    #[arg(long, value_name = "TENANT")]
    for_tenant: Option<String>,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// `ostiary audit ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Print audit entries, oldest first: a table, or JSON lines with `--json`.
    Read(AuditReadArgs),
    /// Check the audit log's hash chain: exits with 0 when it is intact, 1 (naming the
    /// first tampered, missing or reordered entry) when not.
    Verify(AuditVerifyArgs),
    /// Write the whole audit log to a file as JSON lines (one entry a line), for a SIEM.
    Export(AuditExportArgs),
}

/// Which audit log, for `ostiary audit ...`.
#[derive(Debug, Args)]
struct AuditTenantArgs {
    /// The tenant whose log to use (root token only; `_system` is the log of tenant
    /// management) [default: the caller's tenant].
    #[arg(long, value_name = "TENANT")]
    for_tenant: Option<String>,
}

/// Arguments of `ostiary audit read`.
#[derive(Debug, Args)]
pub(crate) struct AuditReadArgs {
    /// Only entries at or after this time (RFC 3339, `2026-01-02T15:04:05Z`).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    since: Option<Timestamp>,
    /// Only entries before this time (RFC 3339).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    until: Option<Timestamp>,
    /// Only entries of this actor (a token id).
    #[arg(long, value_name = "TOKEN_ID")]
    actor: Option<String>,
    /// Only entries of this action (`token.create`, `relationships.write`, ...).
    #[arg(long, value_name = "NAME")]
    action: Option<String>,
    /// Only entries after this sequence number (for paging).
    #[arg(long, default_value_t = 0, value_name = "SEQ")]
    after: u64,
    /// At most this many entries (`0`: all).
    #[arg(long, default_value_t = 0, value_name = "N")]
    limit: u32,
    #[command(flatten)]
    tenant: AuditTenantArgs,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary audit verify`.
#[derive(Debug, Args)]
pub(crate) struct AuditVerifyArgs {
    #[command(flatten)]
    tenant: AuditTenantArgs,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Arguments of `ostiary audit export`.
#[derive(Debug, Args)]
pub(crate) struct AuditExportArgs {
    /// The file to write (`-`: standard output).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    tenant: AuditTenantArgs,
    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Parses a scope name (`check`) into its wire value.
fn parse_scope(text: &str) -> Result<pb::Scope, String> {
    let name = text.trim().to_ascii_uppercase();
    match pb::Scope::from_str_name(&format!("SCOPE_{name}")) {
        Some(scope) if scope != pb::Scope::Unspecified => Ok(scope),
        _ => Err(format!(
            "unknown scope `{text}` (use check, read, write, schema, watch, admin or root)"
        )),
    }
}

/// The name of a wire scope value (`check`).
fn scope_name(value: i32) -> String {
    pb::Scope::try_from(value).map_or_else(
        |_| format!("scope-{value}"),
        |scope| {
            scope
                .as_str_name()
                .trim_start_matches("SCOPE_")
                .to_ascii_lowercase()
        },
    )
}

/// Parses an RFC 3339 time.
fn parse_time(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>()
        .map_err(|err| format!("`{text}` is not an RFC 3339 time: {err}"))
}

fn timestamp_to_pb(at: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.unix_seconds(),
        nanos: i32::try_from(at.subsec_nanos()).unwrap_or(0),
    }
}

fn duration_to_pb(duration: Duration) -> anyhow::Result<prost_types::Duration> {
    Ok(prost_types::Duration {
        seconds: i64::try_from(duration.as_secs()).context("the duration is too long")?,
        nanos: i32::try_from(duration.subsec_nanos()).unwrap_or(0),
    })
}

/// The RFC 3339 text of a wire timestamp, if set and valid.
fn time_text(at: Option<&prost_types::Timestamp>) -> Option<String> {
    let at = at?;
    let nanos = u32::try_from(at.nanos).ok()?;
    Timestamp::from_unix(at.seconds, nanos)
        .ok()
        .map(|at| at.to_string())
}

/// A time for people: to the second, or `-` when unset.
fn time_cell(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(|at| Timestamp::from_unix(at.seconds, 0).ok())
        .map_or_else(|| "-".to_owned(), |at| at.to_string())
}

/// A quota for humans: the number, or `unlimited` for 0.
fn quota_text(value: u64) -> String {
    if value == 0 {
        "unlimited".to_owned()
    } else {
        value.to_string()
    }
}

/// Lines of `label: value` pairs with the values aligned.
fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0)
        + 1;
    pairs
        .iter()
        .map(|(label, value)| format!("{:<width$} {value}", format!("{label}:")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A table: a header row and rows, columns left-aligned and two spaces apart (the last one
/// unpadded).
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: Vec<&str>| {
        let n_cells = cells.len();
        let mut line = String::new();
        for (idx, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            line.push_str(cell);
            if idx + 1 < n_cells {
                let pad = width.saturating_sub(cell.chars().count()) + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        line.trim_end().to_owned()
    };
    let mut lines = vec![render(headers.to_vec())];
    lines.extend(
        rows.iter()
            .map(|row| render(row.iter().map(String::as_str).collect())),
    );
    lines.join("\n")
}

/// The name of a tenant state (`active`).
fn state_name(value: i32) -> &'static str {
    match pb::TenantState::try_from(value) {
        Ok(pb::TenantState::Active) => "active",
        Ok(pb::TenantState::Suspended) => "suspended",
        Ok(pb::TenantState::Deleting) => "deleting",
        _ => "unknown",
    }
}

fn tenant_json(tenant: &pb::Tenant) -> Value {
    let quotas = tenant.quotas.unwrap_or_default();
    json!({
        "id": tenant.id,
        "state": state_name(tenant.state),
        "created_at": time_text(tenant.created_at.as_ref()),
        "quotas": {
            "max_relationships": quotas.max_relationships,
            "max_schema_bytes": quotas.max_schema_bytes,
            "max_requests_per_second": quotas.max_requests_per_second,
        },
    })
}

fn tenant_fields(tenant: &pb::Tenant) -> String {
    let quotas = tenant.quotas.unwrap_or_default();
    fields(&[
        ("id", tenant.id.clone()),
        ("state", state_name(tenant.state).to_owned()),
        ("created", time_cell(tenant.created_at.as_ref())),
        ("max relationships", quota_text(quotas.max_relationships)),
        ("max schema bytes", quota_text(quotas.max_schema_bytes)),
        (
            "max requests/s",
            quota_text(u64::from(quotas.max_requests_per_second)),
        ),
    ])
}

/// Prints one tenant: JSON, or its fields.
fn print_tenant(conn: &ConnectionArgs, tenant: Option<pb::Tenant>) -> anyhow::Result<ExitCode> {
    let Some(tenant) = tenant else {
        bail!("the server sent no tenant");
    };
    if conn.json {
        out(&tenant_json(&tenant).to_string())?;
    } else {
        out(&tenant_fields(&tenant))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `ostiary tenant ...`.
pub(crate) fn tenant(command: TenantCommand) -> anyhow::Result<ExitCode> {
    block_on(async move {
        match command {
            TenantCommand::Create(args) => {
                let mut clients = args.conn.connect().await?;
                let response = clients
                    .tenants
                    .create_tenant(pb::CreateTenantRequest {
                        id: args.id.clone(),
                        quotas: Some(args.quotas.merged(None)),
                    })
                    .await
                    .map_err(rpc_error)?
                    .into_inner();
                print_tenant(&args.conn, response.tenant)
            }
            TenantCommand::List(args) => {
                let mut clients = args.conn.connect().await?;
                let response = clients
                    .tenants
                    .list_tenants(pb::ListTenantsRequest {})
                    .await
                    .map_err(rpc_error)?
                    .into_inner();
                if args.conn.json {
                    let tenants: Vec<Value> = response.tenants.iter().map(tenant_json).collect();
                    out(&Value::Array(tenants).to_string())?;
                } else {
                    let rows: Vec<Vec<String>> = response
                        .tenants
                        .iter()
                        .map(|tenant| {
                            let quotas = tenant.quotas.unwrap_or_default();
                            vec![
                                tenant.id.clone(),
                                state_name(tenant.state).to_owned(),
                                time_cell(tenant.created_at.as_ref()),
                                quota_text(quotas.max_relationships),
                                quota_text(quotas.max_schema_bytes),
                                quota_text(u64::from(quotas.max_requests_per_second)),
                            ]
                        })
                        .collect();
                    out(&table(
                        &[
                            "ID",
                            "STATE",
                            "CREATED",
                            "MAX-RELATIONSHIPS",
                            "MAX-SCHEMA-BYTES",
                            "MAX-RPS",
                        ],
                        &rows,
                    ))?;
                }
                Ok(ExitCode::SUCCESS)
            }
            TenantCommand::Get(args) => {
                let mut clients = args.conn.connect().await?;
                let tenant = get_tenant(&mut clients, &args.id).await?;
                print_tenant(&args.conn, Some(tenant))
            }
            TenantCommand::Suspend(args) => {
                let mut clients = args.conn.connect().await?;
                let response = clients
                    .tenants
                    .suspend_tenant(pb::SuspendTenantRequest { id: args.id })
                    .await
                    .map_err(rpc_error)?
                    .into_inner();
                print_tenant(&args.conn, response.tenant)
            }
            TenantCommand::Resume(args) => {
                let mut clients = args.conn.connect().await?;
                let response = clients
                    .tenants
                    .resume_tenant(pb::ResumeTenantRequest { id: args.id })
                    .await
                    .map_err(rpc_error)?
                    .into_inner();
                print_tenant(&args.conn, response.tenant)
            }
            TenantCommand::Delete(args) => {
                let mut clients = args.conn.connect().await?;
                let response = clients
                    .tenants
                    .delete_tenant(pb::DeleteTenantRequest {
                        id: args.id.clone(),
                    })
                    .await
                    .map_err(rpc_error)?
                    .into_inner();
                let code = print_tenant(&args.conn, response.tenant)?;
                if !args.conn.json {
                    out(&format!(
                        "its data is being removed in the background; `ostiary tenant get {}` answers NotFound once it is gone",
                        args.id
                    ))?;
                }
                Ok(code)
            }
            TenantCommand::Quotas(args) => {
                if args.quotas.is_empty() {
                    bail!(
                        "no quota given: pass `--max-relationships`, `--max-schema-bytes` or `--max-requests-per-second`"
                    );
                }
                let mut clients = args.conn.connect().await?;
                let current = get_tenant(&mut clients, &args.id).await?;
                let response = clients
                    .tenants
                    .set_tenant_quotas(pb::SetTenantQuotasRequest {
                        id: args.id.clone(),
                        quotas: Some(args.quotas.merged(current.quotas.as_ref())),
                    })
                    .await
                    .map_err(rpc_error)?
                    .into_inner();
                print_tenant(&args.conn, response.tenant)
            }
        }
    })
}

async fn get_tenant(clients: &mut Clients, id: &str) -> anyhow::Result<pb::Tenant> {
    clients
        .tenants
        .get_tenant(pb::GetTenantRequest { id: id.to_owned() })
        .await
        .map_err(rpc_error)?
        .into_inner()
        .tenant
        .context("the server sent no tenant")
}

/// A token's expiry for people: the time, or `never`.
fn expiry_cell(token: &pb::Token) -> String {
    if token.expires_at.is_some() {
        time_cell(token.expires_at.as_ref())
    } else {
        "never".to_owned()
    }
}

fn scopes_text(token: &pb::Token) -> String {
    token
        .scopes
        .iter()
        .map(|scope| scope_name(*scope))
        .collect::<Vec<_>>()
        .join(",")
}

fn token_json(token: &pb::Token) -> Value {
    json!({
        "id": token.id,
        "tenant": token.tenant,
        "scopes": token.scopes.iter().map(|scope| scope_name(*scope)).collect::<Vec<_>>(),
        "definitions": token.definitions,
        "created_at": time_text(token.created_at.as_ref()),
        "expires_at": time_text(token.expires_at.as_ref()),
        "last_used_at": time_text(token.last_used_at.as_ref()),
        "description": token.description,
        "created_by": token.created_by,
        "revoked_at": time_text(token.revoked_at.as_ref()),
        "previous_secret_valid_until": time_text(token.previous_secret_valid_until.as_ref()),
    })
}

/// The human form of a token just created or rotated: its fields, then the secret.
fn token_fields(token: &pb::Token, secret: &str) -> String {
    let mut pairs = vec![
        ("id", token.id.clone()),
        ("tenant", token.tenant.clone()),
        ("scopes", scopes_text(token)),
        (
            "definitions",
            if token.definitions.is_empty() {
                "all".to_owned()
            } else {
                token.definitions.join(",")
            },
        ),
        ("expires", expiry_cell(token)),
    ];
    if !token.description.is_empty() {
        pairs.push(("description", token.description.clone()));
    }
    if token.previous_secret_valid_until.is_some() {
        pairs.push((
            "old secret valid until",
            time_cell(token.previous_secret_valid_until.as_ref()),
        ));
    }
    pairs.push(("secret", secret.to_owned()));
    fields(&pairs)
}

/// Prints a token with its secret, and on standard error that the secret is not shown again.
fn print_secret(
    conn: &ConnectionArgs,
    token: Option<&pb::Token>,
    secret: &str,
) -> anyhow::Result<()> {
    let Some(token) = token else {
        bail!("the server sent no token");
    };
    if conn.json {
        let mut value = token_json(token);
        value["secret_token"] = Value::String(secret.to_owned());
        out(&value.to_string())?;
    } else {
        out(&token_fields(token, secret))?;
        let mut stderr = std::io::stderr().lock();
        writeln!(
            stderr,
            "note: the secret is shown only this once; store it now (use it as --token or OSTIARY_TOKEN)"
        )?;
    }
    Ok(())
}

/// `ostiary token ...`.
pub(crate) fn token(command: TokenCommand) -> anyhow::Result<ExitCode> {
    block_on(async move {
        match command {
            TokenCommand::Create(args) => {
                let ttl = args.ttl.map(duration_to_pb).transpose()?;
                let mut clients = args.conn.connect().await?;
                let response = clients
                    .tokens
                    .create_token(pb::CreateTokenRequest {
                        tenant: args.for_tenant.clone().unwrap_or_default(),
                        scopes: args.scopes.iter().map(|scope| *scope as i32).collect(),
                        definitions: args.definitions.clone(),
                        ttl,
                        description: args.description.clone().unwrap_or_default(),
                    })
                    .await
                    .map_err(rpc_error)?
                    .into_inner();
                print_secret(&args.conn, response.token.as_ref(), &response.secret_token)?;
            }
            TokenCommand::Rotate(args) => {
                let grace_period = Some(duration_to_pb(args.grace)?);
                let mut clients = args.conn.connect().await?;
                let response = clients
                    .tokens
                    .rotate_token(pb::RotateTokenRequest {
                        token_id: args.id.clone(),
                        grace_period,
                    })
                    .await
                    .map_err(rpc_error)?
                    .into_inner();
                print_secret(&args.conn, response.token.as_ref(), &response.secret_token)?;
            }
            TokenCommand::Revoke(args) => {
                let mut clients = args.conn.connect().await?;
                let response = clients
                    .tokens
                    .revoke_token(pb::RevokeTokenRequest {
                        token_id: args.id.clone(),
                    })
                    .await
                    .map_err(rpc_error)?
                    .into_inner();
                let token = response.token.unwrap_or_default();
                if args.conn.json {
                    out(&token_json(&token).to_string())?;
                } else {
                    out(&format!(
                        "revoked token `{}` of tenant `{}` at {}",
                        args.id,
                        token.tenant,
                        time_cell(token.revoked_at.as_ref())
                    ))?;
                }
            }
            TokenCommand::List(args) => {
                let mut clients = args.conn.connect().await?;
                let response = clients
                    .tokens
                    .list_tokens(pb::ListTokensRequest {
                        tenant: args.for_tenant.clone().unwrap_or_default(),
                    })
                    .await
                    .map_err(rpc_error)?
                    .into_inner();
                if args.conn.json {
                    let tokens: Vec<Value> = response.tokens.iter().map(token_json).collect();
                    out(&Value::Array(tokens).to_string())?;
                } else {
                    let rows: Vec<Vec<String>> = response
                        .tokens
                        .iter()
                        .map(|token| {
                            vec![
                                token.id.clone(),
                                token.tenant.clone(),
                                scopes_text(token),
                                if token.definitions.is_empty() {
                                    "all".to_owned()
                                } else {
                                    token.definitions.join(",")
                                },
                                expiry_cell(token),
                                time_cell(token.last_used_at.as_ref()),
                                if token.created_by.is_empty() {
                                    "-".to_owned()
                                } else {
                                    token.created_by.clone()
                                },
                                token.description.clone(),
                            ]
                        })
                        .collect();
                    out(&table(
                        &[
                            "ID",
                            "TENANT",
                            "SCOPES",
                            "DEFINITIONS",
                            "EXPIRES",
                            "LAST-USED",
                            "CREATED-BY",
                            "DESCRIPTION",
                        ],
                        &rows,
                    ))?;
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// An audit entry as JSON (its details parsed, when they are JSON).
fn entry_json(entry: &pb::AuditEntry) -> Value {
    let details = serde_json::from_str::<Value>(&entry.details_json)
        .unwrap_or_else(|_| Value::String(entry.details_json.clone()));
    let text_or_null = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    json!({
        "sequence": entry.sequence,
        "time": time_text(entry.time.as_ref()),
        "written_at": entry.written_at,
        "actor": text_or_null(&entry.actor),
        "action": entry.action,
        "request_id": text_or_null(&entry.request_id),
        "client_address": text_or_null(&entry.client_address),
        "on_behalf_of": text_or_null(&entry.on_behalf_of),
        "details": details,
        "previous_hash": entry.previous_hash,
        "hash": entry.hash,
    })
}

/// Reads the entries `request` selects, paging by sequence, at most `limit` (0: all), and
/// hands each to `each`; returns how many there were.
async fn read_entries(
    clients: &mut Clients,
    request: pb::ReadAuditLogRequest,
    limit: u32,
    mut each: impl FnMut(&pb::AuditEntry) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut after_sequence = request.after_sequence;
    let mut n_read: u64 = 0;
    loop {
        let page = if limit == 0 {
            AUDIT_PAGE
        } else {
            let remaining = u64::from(limit).saturating_sub(n_read);
            if remaining == 0 {
                break;
            }
            u32::try_from(remaining.min(u64::from(AUDIT_PAGE))).unwrap_or(AUDIT_PAGE)
        };
        let mut stream = clients
            .audit
            .read_audit_log(pb::ReadAuditLogRequest {
                after_sequence,
                limit: page,
                ..request.clone()
            })
            .await
            .map_err(rpc_error)?
            .into_inner();
        let mut n_page: u32 = 0;
        while let Some(response) = stream.message().await.map_err(rpc_error)? {
            let Some(entry) = response.entry else {
                continue;
            };
            after_sequence = entry.sequence;
            n_page += 1;
            n_read += 1;
            each(&entry)?;
        }
        if n_page < page {
            break;
        }
    }
    Ok(n_read)
}

/// `text` cut to `max` characters, ending with `…` when cut.
fn shortened(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The human verdict of a verification.
fn verify_text(response: &pb::VerifyAuditLogResponse) -> String {
    if response.intact {
        format!(
            "intact: {} entries checked, the hash chain is unbroken",
            response.entries_checked
        )
    } else {
        format!(
            "broken at entry {}: {} ({} entries before it are intact)",
            response.problem_sequence, response.problem, response.entries_checked
        )
    }
}

/// `ostiary audit ...`.
pub(crate) fn audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    block_on(async move {
        match command {
            AuditCommand::Read(args) => {
                let mut clients = args.conn.connect().await?;
                let request = pb::ReadAuditLogRequest {
                    tenant: args.tenant.for_tenant.clone().unwrap_or_default(),
                    since: args.since.map(timestamp_to_pb),
                    until: args.until.map(timestamp_to_pb),
                    actor: args.actor.clone().unwrap_or_default(),
                    action: args.action.clone().unwrap_or_default(),
                    after_sequence: args.after,
                    limit: 0,
                };
                let json = args.conn.json;
                let mut rows = Vec::new();
                read_entries(&mut clients, request, args.limit, |entry| {
                    if json {
                        out(&entry_json(entry).to_string())?;
                    } else {
                        rows.push(vec![
                            entry.sequence.to_string(),
                            time_cell(entry.time.as_ref()),
                            if entry.actor.is_empty() {
                                "-".to_owned()
                            } else {
                                entry.actor.clone()
                            },
                            entry.action.clone(),
                            if entry.on_behalf_of.is_empty() {
                                "-".to_owned()
                            } else {
                                entry.on_behalf_of.clone()
                            },
                            shortened(&entry.details_json, MAX_DETAILS_CHARS),
                        ]);
                    }
                    Ok(())
                })
                .await?;
                if !json {
                    out(&table(
                        &["SEQ", "TIME", "ACTOR", "ACTION", "ON-BEHALF-OF", "DETAILS"],
                        &rows,
                    ))?;
                }
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Verify(args) => {
                let mut clients = args.conn.connect().await?;
                let response = clients
                    .audit
                    .verify_audit_log(pb::VerifyAuditLogRequest {
                        tenant: args.tenant.for_tenant.clone().unwrap_or_default(),
                    })
                    .await
                    .map_err(rpc_error)?
                    .into_inner();
                if args.conn.json {
                    out(&json!({
                        "intact": response.intact,
                        "entries_checked": response.entries_checked,
                        "problem": (!response.intact).then(|| response.problem.clone()),
                        "problem_sequence": (!response.intact).then_some(response.problem_sequence),
                    })
                    .to_string())?;
                } else {
                    out(&verify_text(&response))?;
                }
                Ok(if response.intact {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
            AuditCommand::Export(args) => {
                let mut clients = args.conn.connect().await?;
                let to_stdout = args.file.as_os_str() == "-";
                let mut writer: Box<dyn std::io::Write> = if to_stdout {
                    Box::new(std::io::stdout().lock())
                } else {
                    let file = std::fs::File::create(&args.file)
                        .with_context(|| format!("cannot create `{}`", args.file.display()))?;
                    Box::new(std::io::BufWriter::new(file))
                };
                let request = pb::ReadAuditLogRequest {
                    tenant: args.tenant.for_tenant.clone().unwrap_or_default(),
                    ..pb::ReadAuditLogRequest::default()
                };
                let shown = args.file.display().to_string();
                let n_entries = read_entries(&mut clients, request, 0, |entry| {
                    writeln!(writer, "{}", entry_json(entry))
                        .with_context(|| format!("cannot write `{shown}`"))
                })
                .await?;
                writer
                    .flush()
                    .with_context(|| format!("cannot write `{shown}`"))?;
                drop(writer);
                if !to_stdout {
                    if args.conn.json {
                        out(&json!({"file": shown, "entries": n_entries}).to_string())?;
                    } else {
                        out(&format!("exported {n_entries} audit entries to `{shown}`"))?;
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_by_name_and_print_back() {
        assert_eq!(parse_scope("check"), Ok(pb::Scope::Check));
        assert_eq!(parse_scope("ROOT"), Ok(pb::Scope::Root));
        assert!(parse_scope("unspecified").is_err());
        assert!(
            parse_scope("everything")
                .unwrap_err()
                .contains("`everything`")
        );
        assert_eq!(scope_name(pb::Scope::Admin as i32), "admin");
        assert_eq!(scope_name(99), "scope-99");
    }

    #[test]
    fn quotas_not_given_keep_their_value() {
        let args = QuotaArgs {
            max_relationships: Some(0),
            max_schema_bytes: None,
            max_requests_per_second: Some(5),
        };
        let current = pb::TenantQuotas {
            max_relationships: 100,
            max_schema_bytes: 2048,
            max_requests_per_second: 1,
        };
        assert_eq!(
            args.merged(Some(&current)),
            pb::TenantQuotas {
                max_relationships: 0,
                max_schema_bytes: 2048,
                max_requests_per_second: 5,
            }
        );
        assert_eq!(args.merged(None).max_schema_bytes, 0);
        assert!(!args.is_empty());
    }

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["ID", "STATE"],
            &[
                vec!["acme".to_owned(), "active".to_owned()],
                vec!["a".to_owned(), "suspended".to_owned()],
            ],
        );
        assert_eq!(text, "ID    STATE\nacme  active\na     suspended");
        assert_eq!(shortened("abcdef", 4), "abc…");
        assert_eq!(shortened("abcd", 4), "abcd");
        assert_eq!(
            fields(&[("id", "x".to_owned()), ("secret", "y".to_owned())]),
            "id:     x\nsecret: y"
        );
    }

    #[test]
    fn a_broken_chain_names_the_entry_and_the_problem() {
        let broken = pb::VerifyAuditLogResponse {
            intact: false,
            entries_checked: 6,
            problem: "entry 7 was altered".to_owned(),
            problem_sequence: 7,
        };
        assert_eq!(
            verify_text(&broken),
            "broken at entry 7: entry 7 was altered (6 entries before it are intact)"
        );
        let intact = pb::VerifyAuditLogResponse {
            intact: true,
            entries_checked: 3,
            ..Default::default()
        };
        assert_eq!(
            verify_text(&intact),
            "intact: 3 entries checked, the hash chain is unbroken"
        );
    }

    #[test]
    fn entries_become_json_with_parsed_details() {
        let entry = pb::AuditEntry {
            sequence: 3,
            time: Some(prost_types::Timestamp {
                seconds: 1_767_225_600,
                nanos: 0,
            }),
            actor: "abc".to_owned(),
            action: "token.create".to_owned(),
            details_json: r#"{"scopes":["check"]}"#.to_owned(),
            ..Default::default()
        };
        let value = entry_json(&entry);
        assert_eq!(value["time"], "2026-01-01T00:00:00Z");
        assert_eq!(value["details"]["scopes"][0], "check");
        assert_eq!(value["on_behalf_of"], Value::Null);
    }
}
