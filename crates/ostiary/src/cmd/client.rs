//! Client commands against a running server (`ostiary check`, `ostiary rel ...`,
//! `ostiary schema read|write|diff`, `ostiary lookup-resources`, `ostiary lookup-subjects`,
//! `ostiary expand`, `ostiary explain`, `ostiary watch`, and the `ostiary.admin.v1` commands
//! `ostiary tenant|token|audit ...`): the shared connection flags, the gRPC client and the
//! conversions between text forms and wire messages.

mod commands;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::permissions_service_client::PermissionsServiceClient;
use ostiary_proto::authzed::api::v1::schema_service_client::SchemaServiceClient;
use ostiary_proto::authzed::api::v1::watch_service_client::WatchServiceClient;
use ostiary_proto::ostiary::admin::v1::audit_service_client::AuditServiceClient;
use ostiary_proto::ostiary::admin::v1::tenant_service_client::TenantServiceClient;
use ostiary_proto::ostiary::admin::v1::token_service_client::TokenServiceClient;
use ostiary_types::{ObjectRef, Relationship, SubjectRef};
use serde_json::{Map, Value};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

pub(crate) use commands::{
    AuditCommand, CheckArgs, ExpandArgs, LookupResourcesArgs, LookupSubjectsArgs, RelCommand,
    SchemaDiffArgs, SchemaReadArgs, SchemaWriteArgs, TenantCommand, TokenCommand, WatchArgs, audit,
    check, expand, explain, lookup_resources, lookup_subjects, rel, schema_diff, schema_read,
    schema_write, tenant, token, watch,
};

/// The metadata a root token names the tenant of a call with.
const TENANT_HEADER: &str = "ostiary-tenant";

/// The metadata naming whom the caller acts for (support access), noted in the audit log.
const ON_BEHALF_OF_HEADER: &str = "ostiary-on-behalf-of";

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The endpoint used when neither a flag, the environment nor a profile names one.
const DEFAULT_ENDPOINT: &str = "127.0.0.1:50051";

/// Where the server is and how to authenticate: flags shared by every client command.
///
/// Each setting comes from its flag, else its environment variable, else the selected profile
/// of the client configuration file (see [`Profile`]), else the default.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectionArgs {
    /// The server's gRPC address (`host:port`, or a `http://` / `https://` URL)
    /// [default: 127.0.0.1:50051].
    #[arg(long, env = "OSTIARY_ENDPOINT", value_name = "ADDR")]
    pub(crate) endpoint: Option<String>,
    /// The API token (`ost_<id>_<secret>`) or preshared key, sent as
    /// `authorization: Bearer <token>`.
    #[arg(
        long,
        env = "OSTIARY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) token: Option<String>,
    /// The tenant to act on, sent as `ostiary-tenant` metadata (a root token may name any
    /// tenant; another token only its own) [default: the token's tenant].
    #[arg(long, env = "OSTIARY_TENANT", value_name = "TENANT")]
    pub(crate) tenant: Option<String>,
    /// Whom this call is made for (support access), sent as `ostiary-on-behalf-of` metadata
    /// and noted in the audit log.
    #[arg(long, env = "OSTIARY_ON_BEHALF_OF", value_name = "TEXT")]
    pub(crate) on_behalf_of: Option<String>,
    /// Connect in plaintext (no TLS), like `zed --insecure`.
    #[arg(long, env = "OSTIARY_INSECURE")]
    pub(crate) insecure: bool,
    /// A PEM CA certificate to verify the server's TLS certificate with (TLS is used unless
    /// `--insecure` is given).
    #[arg(long, env = "OSTIARY_CA_PATH", value_name = "FILE")]
    pub(crate) ca_path: Option<PathBuf>,
    /// A profile of the client configuration file (`$OSTIARY_CLIENT_CONFIG`, else
    /// `$XDG_CONFIG_HOME/ostiary/client.toml` or `~/.config/ostiary/client.toml`)
    /// [default: the file's `default-profile`].
    #[arg(long, env = "OSTIARY_PROFILE", value_name = "NAME")]
    pub(crate) profile: Option<String>,
    /// Print JSON instead of human-readable text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The client configuration file: named connection profiles.
///
/// ```toml
/// default-profile = "local"
///
/// [profiles.local]
/// endpoint = "127.0.0.1:50051"
/// token = "secret"
/// insecure = true
/// tenant = "acme"
/// ```
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ClientConfig {
    /// The profile used when `--profile` is not given.
    default_profile: Option<String>,
    /// The profiles by name.
    #[serde(default)]
    profiles: std::collections::BTreeMap<String, Profile>,
}

/// One connection profile: the same settings as the flags.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Profile {
    endpoint: Option<String>,
    token: Option<String>,
    insecure: Option<bool>,
    ca_path: Option<PathBuf>,
    tenant: Option<String>,
}

/// Where the client configuration file is, if anywhere.
fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("OSTIARY_CLIENT_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("ostiary").join("client.toml"))
}

/// Loads the selected profile: `name` (which must exist), else the file's default profile,
/// else none. A missing file is only an error when a profile was asked for.
fn load_profile(name: Option<&str>) -> anyhow::Result<Profile> {
    let path = config_path();
    let text = match &path {
        Some(path) if path.exists() => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read `{}`", path.display()))?,
        _ => {
            if let Some(name) = name {
                bail!("profile `{name}` not found: there is no client configuration file");
            }
            return Ok(Profile::default());
        }
    };
    let shown = path
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let config: ClientConfig = toml::from_str(&text)
        .with_context(|| format!("invalid client configuration file `{shown}`"))?;
    let Some(name) = name.or(config.default_profile.as_deref()) else {
        return Ok(Profile::default());
    };
    config
        .profiles
        .get(name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("profile `{name}` not found in `{shown}`"))
}

/// Adds the connection's metadata to every request: `authorization: Bearer <token>` when a
/// token was given, `ostiary-tenant` and `ostiary-on-behalf-of` when named.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallMetadata(Vec<(&'static str, MetadataValue<Ascii>)>);

impl CallMetadata {
    /// The metadata for a bearer `token`, a `tenant` (`ostiary-tenant`) and whom the calls
    /// are made for (`ostiary-on-behalf-of`), each when given.
    pub(crate) fn new(
        token: Option<&str>,
        tenant: Option<&str>,
        on_behalf_of: Option<&str>,
    ) -> anyhow::Result<Self> {
        let mut metadata = Self::default();
        if let Some(token) = token {
            metadata.push("authorization", &format!("Bearer {token}"), "token")?;
        }
        if let Some(tenant) = tenant {
            metadata.push(TENANT_HEADER, tenant, "tenant")?;
        }
        if let Some(on_behalf_of) = on_behalf_of {
            metadata.push(ON_BEHALF_OF_HEADER, on_behalf_of, "`--on-behalf-of` text")?;
        }
        Ok(metadata)
    }

    /// Adds `key: value`; `what` names the setting in the error when `value` cannot be sent.
    fn push(&mut self, key: &'static str, value: &str, what: &str) -> anyhow::Result<()> {
        let value = value
            .parse()
            .map_err(|_| anyhow::anyhow!("the {what} contains characters a header cannot carry"))?;
        self.0.push((key, value));
        Ok(())
    }
}

impl Interceptor for CallMetadata {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        for (key, value) in &self.0 {
            request.metadata_mut().insert(*key, value.clone());
        }
        Ok(request)
    }
}

/// An authenticated channel.
pub(crate) type Authed = InterceptedService<Channel, CallMetadata>;

/// The service clients over one connection.
pub(crate) struct Clients {
    /// `PermissionsService`.
    pub(crate) permissions: PermissionsServiceClient<Authed>,
    /// `SchemaService`.
    pub(crate) schema: SchemaServiceClient<Authed>,
    /// `WatchService`.
    pub(crate) watch: WatchServiceClient<Authed>,
    /// `ostiary.admin.v1.TenantService`.
    pub(crate) tenants: TenantServiceClient<Authed>,
    /// `ostiary.admin.v1.TokenService`.
    pub(crate) tokens: TokenServiceClient<Authed>,
    /// `ostiary.admin.v1.AuditService`.
    pub(crate) audit: AuditServiceClient<Authed>,
}

impl ConnectionArgs {
    /// Connects to the server (bounded by [`CONNECT_TIMEOUT`]).
    pub(crate) async fn connect(&self) -> anyhow::Result<Clients> {
        let profile = load_profile(self.profile.as_deref())?;
        let address = self
            .endpoint
            .clone()
            .or(profile.endpoint)
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let insecure = self.insecure || profile.insecure.unwrap_or(false);
        let ca_path = self.ca_path.clone().or(profile.ca_path);
        let token = self.token.clone().or(profile.token);
        let tenant = self.tenant.clone().or(profile.tenant);
        let has_scheme = address.contains("://");
        let tls = !insecure && !address.starts_with("http://");
        let url = if has_scheme {
            address.clone()
        } else if tls {
            format!("https://{address}")
        } else {
            format!("http://{address}")
        };
        let mut endpoint = Endpoint::from_shared(url)
            .with_context(|| format!("`{address}` is not a valid endpoint"))?
            .connect_timeout(CONNECT_TIMEOUT);
        if tls {
            let Some(ca_path) = &ca_path else {
                bail!(
                    "TLS needs a CA certificate: pass `--ca-path FILE`, or `--insecure` for a plaintext server"
                );
            };
            let pem = std::fs::read(ca_path)
                .with_context(|| format!("cannot read `{}`", ca_path.display()))?;
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
                .context("invalid TLS configuration")?;
        }
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot connect to `{address}`"))?;
        let metadata = CallMetadata::new(
            token.as_deref(),
            tenant.as_deref(),
            self.on_behalf_of.as_deref(),
        )?;
        Ok(Clients {
            permissions: PermissionsServiceClient::with_interceptor(
                channel.clone(),
                metadata.clone(),
            ),
            schema: SchemaServiceClient::with_interceptor(channel.clone(), metadata.clone()),
            watch: WatchServiceClient::with_interceptor(channel.clone(), metadata.clone()),
            tenants: TenantServiceClient::with_interceptor(channel.clone(), metadata.clone()),
            tokens: TokenServiceClient::with_interceptor(channel.clone(), metadata.clone()),
            audit: AuditServiceClient::with_interceptor(channel, metadata),
        })
    }
}

/// Runs `future` on a fresh runtime.
pub(crate) fn block_on<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}

/// Describes a failed call: `server error (code): message`.
pub(crate) fn rpc_error(status: Status) -> anyhow::Error {
    anyhow::anyhow!("server error ({:?}): {}", status.code(), status.message())
}

/// Parses `--consistency`: `minimize-latency`, `full`, `at-least:TOKEN` or
/// `at-exact:TOKEN`.
pub(crate) fn parse_consistency(text: &str) -> Result<pb::Consistency, String> {
    use pb::consistency::Requirement;
    let requirement = match text.split_once(':') {
        None if text == "minimize-latency" => Requirement::MinimizeLatency(true),
        None if text == "full" => Requirement::FullyConsistent(true),
        Some(("at-least", token)) => Requirement::AtLeastAsFresh(pb::ZedToken {
            token: token.to_owned(),
        }),
        Some(("at-exact", token)) => Requirement::AtExactSnapshot(pb::ZedToken {
            token: token.to_owned(),
        }),
        _ => {
            return Err(format!(
                "`{text}` is not a consistency (use `minimize-latency`, `full`, `at-least:TOKEN` or `at-exact:TOKEN`)"
            ));
        }
    };
    Ok(pb::Consistency {
        requirement: Some(requirement),
    })
}

/// Parses a caveat context: a JSON object.
pub(crate) fn parse_context(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("`{text}` is not a JSON object")),
        Err(err) => Err(format!("`{text}` is not valid JSON: {err}")),
    }
}

/// Parses a relationship in text form (`document:readme#viewer@user:alice[caveat:{...}]`).
pub(crate) fn parse_relationship(text: &str) -> Result<Relationship, String> {
    text.parse::<Relationship>().map_err(|err| err.to_string())
}

/// Parses an object reference (`document:readme`).
pub(crate) fn parse_object(text: &str) -> Result<ObjectRef, String> {
    text.parse::<ObjectRef>().map_err(|err| err.to_string())
}

/// Parses a subject reference (`user:alice`, `group:eng#member`).
pub(crate) fn parse_subject(text: &str) -> Result<SubjectRef, String> {
    text.parse::<SubjectRef>().map_err(|err| err.to_string())
}

/// The wire form of an object reference.
pub(crate) fn object_to_pb(object: &ObjectRef) -> pb::ObjectReference {
    pb::ObjectReference {
        object_type: object.object_type().as_str().to_owned(),
        object_id: object.object_id().as_str().to_owned(),
    }
}

/// The wire form of a subject reference.
pub(crate) fn subject_to_pb(subject: &SubjectRef) -> pb::SubjectReference {
    pb::SubjectReference {
        object: Some(object_to_pb(subject.object())),
        optional_relation: subject
            .relation()
            .map(|relation| relation.as_str().to_owned())
            .unwrap_or_default(),
    }
}

/// The wire form of a relationship.
pub(crate) fn relationship_to_pb(rel: &Relationship) -> pb::Relationship {
    pb::Relationship {
        resource: Some(object_to_pb(rel.resource())),
        relation: rel.relation().as_str().to_owned(),
        subject: Some(subject_to_pb(rel.subject())),
        optional_caveat: rel.caveat().map(|caveat| pb::ContextualizedCaveat {
            caveat_name: caveat.name().as_str().to_owned(),
            context: (!caveat.context().is_empty()).then(|| json_to_struct(caveat.context())),
        }),
        optional_expires_at: rel.expiration().map(|at| prost_types::Timestamp {
            seconds: at.unix_seconds(),
            nanos: i32::try_from(at.subsec_nanos()).unwrap_or(0),
        }),
    }
}

/// A JSON object as a `google.protobuf.Struct`.
pub(crate) fn json_to_struct(map: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(key, value)| (key.clone(), json_to_value(value)))
            .collect(),
    }
}

fn json_to_value(value: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(json_to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A `google.protobuf.Struct` as a JSON object.
pub(crate) fn struct_to_json(value: &prost_types::Struct) -> Map<String, Value> {
    value
        .fields
        .iter()
        .map(|(key, value)| (key.clone(), value_to_json(value)))
        .collect()
}

fn value_to_json(value: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => {
            // Whole numbers print as integers, as they were most likely written.
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "checked to be a whole number well inside i64's range"
                )]
                let whole = *n as i64;
                Value::from(whole)
            } else {
                serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
        }
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.iter().map(value_to_json).collect())
        }
        Some(Kind::StructValue(map)) => Value::Object(struct_to_json(map)),
    }
}

/// `type:id` of a wire object reference.
pub(crate) fn object_text(object: Option<&pb::ObjectReference>) -> String {
    object.map_or_else(String::new, |object| {
        format!("{}:{}", object.object_type, object.object_id)
    })
}

/// `type:id` or `type:id#relation` of a wire subject reference.
pub(crate) fn subject_text(subject: Option<&pb::SubjectReference>) -> String {
    let Some(subject) = subject else {
        return String::new();
    };
    let object = object_text(subject.object.as_ref());
    if subject.optional_relation.is_empty() {
        object
    } else {
        format!("{object}#{}", subject.optional_relation)
    }
}

/// The text form of a wire relationship.
pub(crate) fn relationship_text(rel: &pb::Relationship) -> String {
    let mut text = format!(
        "{}#{}@{}",
        object_text(rel.resource.as_ref()),
        rel.relation,
        subject_text(rel.subject.as_ref())
    );
    if let Some(caveat) = &rel.optional_caveat {
        text.push('[');
        text.push_str(&caveat.caveat_name);
        if let Some(context) = &caveat.context
            && !context.fields.is_empty()
        {
            text.push(':');
            text.push_str(&Value::Object(struct_to_json(context)).to_string());
        }
        text.push(']');
    }
    if let Some(at) = &rel.optional_expires_at {
        let nanos = u32::try_from(at.nanos).unwrap_or(0);
        if let Ok(at) = ostiary_types::Timestamp::from_unix(at.seconds, nanos) {
            text.push_str(&format!("[expiration:{at}]"));
        }
    }
    text
}

/// The token's text, or empty.
pub(crate) fn token_text(token: Option<&pb::ZedToken>) -> String {
    token.map(|token| token.token.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_forms_parse() {
        use pb::consistency::Requirement;
        assert_eq!(
            parse_consistency("full").unwrap().requirement,
            Some(Requirement::FullyConsistent(true))
        );
        assert_eq!(
            parse_consistency("at-least:abc").unwrap().requirement,
            Some(Requirement::AtLeastAsFresh(pb::ZedToken {
                token: "abc".to_owned()
            }))
        );
        assert!(parse_consistency("sometimes").is_err());
    }

    #[test]
    fn relationship_round_trips_through_the_wire_form() {
        let text = r#"document:readme#viewer@user:alice[only_on:{"day":"mon","n":3}]"#;
        let rel = parse_relationship(text).unwrap();
        assert_eq!(relationship_text(&relationship_to_pb(&rel)), text);
        let expiring = "document:a#viewer@group:eng#member[expiration:2030-01-01T00:00:00Z]";
        let rel = parse_relationship(expiring).unwrap();
        assert_eq!(relationship_text(&relationship_to_pb(&rel)), expiring);
    }

    #[test]
    fn client_config_parses_profiles() {
        let config: ClientConfig = toml::from_str(
            "default-profile = \"local\"\n[profiles.local]\nendpoint = \"h:1\"\ninsecure = true\ntenant = \"acme\"\n",
        )
        .unwrap();
        assert_eq!(config.default_profile.as_deref(), Some("local"));
        let local = &config.profiles["local"];
        assert_eq!(local.endpoint.as_deref(), Some("h:1"));
        assert_eq!(local.insecure, Some(true));
        assert_eq!(local.tenant.as_deref(), Some("acme"));
        assert!(toml::from_str::<ClientConfig>("[profiles.x]\nport = 1\n").is_err());
    }

    #[test]
    fn context_must_be_an_object() {
        assert!(parse_context("[1]").is_err());
        assert!(parse_context("{").is_err());
        assert_eq!(parse_context(r#"{"a":1}"#).unwrap().len(), 1);
    }
}
