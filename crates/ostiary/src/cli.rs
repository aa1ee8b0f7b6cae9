//! The command-line interface: clap types and the parsers of their values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Ostiary: a Zanzibar-style permissions database that speaks SpiceDB's API and schema
/// language.
#[derive(Debug, Parser)]
#[command(name = "ostiary", version, about)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check and format schema files.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Run the gRPC server (SpiceDB's `authzed.api.v1` API).
    Serve(Box<ServeArgs>),
    /// Run SpiceDB validation files (`zed validate`) in process on a throwaway store.
    ///
    /// Each file is a YAML validation file (`schema` or `schemaFile`, `relationships`,
    /// `assertions`, `validation`) or a `.zed` schema on its own. Exits with 0 when every file
    /// passes, 1 when any fails, and 2 when a file cannot be read or is not a validation file.
    Validate(ValidateArgs),
    /// Copy a server's schema and relationships into a file (JSON lines with a checksum).
    ///
    /// The file holds a header (format, version, schema, revision), one line per
    /// relationship, checkpoint lines for `--resume`, and a trailer with the count and
    /// SHA-256 of the relationship lines. Everything is read at one revision.
    Export(crate::cmd::transfer::ExportArgs),
    /// Load a file written by `ostiary export` into a server: its schema, then its
    /// relationships.
    ///
    /// The whole file is checked (format, every line, count and SHA-256) before anything is
    /// written. `--resume` continues an interrupted import.
    Import(crate::cmd::transfer::ImportArgs),
    /// Check a permission on a running server: prints `true`, `false` or `caveated`.
    Check(Box<crate::cmd::client::CheckArgs>),
    /// Why can (or can't) a subject do this? A check with the server's trace, as a tree.
    ///
    /// Each line is a relation or permission evaluated, with its result and how it was
    /// reached (`via` the subject set or arrow relationship), the relationships that grant it
    /// (`✓`), and the caveats evaluated with their context. Takes the same arguments and
    /// exits like `ostiary check`; `--json` prints the trace as JSON.
    Explain(Box<crate::cmd::client::CheckArgs>),
    /// Create, touch, delete or read relationships on a running server.
    #[command(subcommand)]
    Rel(crate::cmd::client::RelCommand),
    /// List the resources of a type a subject has a permission on.
    LookupResources(Box<crate::cmd::client::LookupResourcesArgs>),
    /// List the subjects of a type that have a permission on a resource.
    LookupSubjects(Box<crate::cmd::client::LookupSubjectsArgs>),
    /// Print the tree of subjects a permission expands to, indented.
    Expand(Box<crate::cmd::client::ExpandArgs>),
    /// Follow relationship changes on a running server, one line each.
    Watch(Box<crate::cmd::client::WatchArgs>),
    /// Manage tenants (root token): create, list, get, suspend, resume, delete, quotas.
    #[command(subcommand)]
    Tenant(crate::cmd::client::TenantCommand),
    /// Manage API tokens (`ost_<id>_<secret>`): create, rotate, revoke, list.
    #[command(subcommand)]
    Token(crate::cmd::client::TokenCommand),
    /// Read, verify and export a tenant's hash-chained audit log.
    #[command(subcommand)]
    Audit(crate::cmd::client::AuditCommand),
}

/// Arguments of `ostiary serve`. Every flag can also come from the environment
/// (`OSTIARY_...`) or the `--config` file; flags win over the environment, which wins over
/// the file.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// A TOML configuration file (see `deploy/config.example.toml`).
    #[arg(long, env = "OSTIARY_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The address the gRPC server listens on [default: 127.0.0.1:50051].
    #[arg(long, env = "OSTIARY_GRPC_ADDR", value_name = "ADDR")]
    pub(crate) grpc_addr: Option<SocketAddr>,
    /// A preshared key clients must send as `authorization: Bearer <key>` (repeat or
    /// separate with commas for several).
    #[arg(
        long,
        env = "OSTIARY_GRPC_PRESHARED_KEY",
        value_name = "KEY",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub(crate) grpc_preshared_key: Vec<String>,
    /// Serve without authentication (for local experiments only).
    #[arg(long, env = "OSTIARY_INSECURE_NO_AUTH")]
    pub(crate) insecure_no_auth: bool,
    /// The datastore: `rocksdb` (embedded, durable; needs the `rocksdb` build feature) or
    /// `memory` (throwaway) [default: rocksdb if built with it, else memory].
    #[arg(
        long,
        env = "OSTIARY_DATASTORE_ENGINE",
        value_enum,
        value_name = "ENGINE"
    )]
    pub(crate) datastore_engine: Option<DatastoreEngine>,
    /// For `rocksdb`: the data directory [default: ./ostiary-data].
    #[arg(long, env = "OSTIARY_DATASTORE_CONN_URI", value_name = "PATH")]
    pub(crate) datastore_conn_uri: Option<PathBuf>,
    /// The address of the Prometheus endpoint (`GET /metrics`, plain HTTP) [default: not
    /// served].
    #[arg(long, env = "OSTIARY_METRICS_ADDR", value_name = "ADDR")]
    pub(crate) metrics_addr: Option<SocketAddr>,
    /// How far `minimize_latency` reads may lag: the revision they read at is rounded down
    /// to this interval, so that caches are shared (`0s` reads at head) [default: 5s].
    #[arg(
        long,
        env = "OSTIARY_DATASTORE_REVISION_QUANTIZATION_INTERVAL",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub(crate) datastore_revision_quantization_interval: Option<Duration>,
    /// How long old revisions stay readable (`at_exact_snapshot`, Watch resume) before
    /// garbage collection removes them [default: 24h].
    #[arg(
        long,
        env = "OSTIARY_DATASTORE_GC_WINDOW",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub(crate) datastore_gc_window: Option<Duration>,
    /// The memory the cache of Check answers may use: bytes, or with a unit (`64MiB`,
    /// `512KiB`, `1GiB`); `0` disables it [default: 64MiB].
    #[arg(
        long,
        env = "OSTIARY_DISPATCH_CACHE_MAX_COST",
        value_name = "SIZE",
        value_parser = parse_size
    )]
    pub(crate) dispatch_cache_max_cost: Option<u64>,
    /// A PEM certificate chain: serve gRPC over TLS (needs `--grpc-tls-key-path`).
    #[arg(long, env = "OSTIARY_GRPC_TLS_CERT_PATH", value_name = "FILE")]
    pub(crate) grpc_tls_cert_path: Option<PathBuf>,
    /// The PEM private key of `--grpc-tls-cert-path`.
    #[arg(long, env = "OSTIARY_GRPC_TLS_KEY_PATH", value_name = "FILE")]
    pub(crate) grpc_tls_key_path: Option<PathBuf>,
    /// Where the first start writes the root token (owner-only) [default: root-token in the
    /// data directory; for memory, ostiary-root-token-PID in the temporary directory].
    #[arg(long, env = "OSTIARY_ROOT_TOKEN_FILE", value_name = "FILE")]
    pub(crate) root_token_file: Option<PathBuf>,
    /// The longest lifetime of an API token [default: 366d].
    #[arg(
        long,
        env = "OSTIARY_TOKEN_MAX_LIFETIME",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub(crate) token_max_lifetime: Option<Duration>,
    /// Allow API tokens without an expiry.
    #[arg(long, env = "OSTIARY_TOKEN_ALLOW_NON_EXPIRING")]
    pub(crate) token_allow_non_expiring: bool,
    /// Create a new root token at this start and write it to the root token file (when the
    /// old one is lost or about to expire; the old one stays valid until revoked).
    #[arg(long)]
    pub(crate) new_root_token: bool,
    /// Requests per second each token may make (`0`: unlimited) [default: 0].
    #[arg(long, env = "OSTIARY_RATE_LIMIT_PER_TOKEN", value_name = "RPS")]
    pub(crate) rate_limit_per_token: Option<u32>,
    /// Concurrent streaming calls per token (`0`: unlimited) [default: 100].
    #[arg(long, env = "OSTIARY_MAX_STREAMS_PER_TOKEN", value_name = "N")]
    pub(crate) max_streams_per_token: Option<usize>,
    /// Failed authentications per minute from one address before it is refused for a while
    /// (`0`: unlimited) [default: 30].
    #[arg(long, env = "OSTIARY_AUTH_FAILURES_PER_MINUTE", value_name = "N")]
    pub(crate) auth_failures_per_minute: Option<u32>,
}

/// Parses a duration as SpiceDB's flags spell it (Go's `time.ParseDuration`): `5s`, `100ms`,
/// `1m30s`, `24h`, or a bare `0`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, humantime::DurationError> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text)
}

/// Parses a size in bytes: a number, optionally followed by `B`, `KiB`, `MiB` or `GiB`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. `64MiB`)"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use B, KiB, MiB or GiB)"
            ));
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// The datastore backends `ostiary serve` can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DatastoreEngine {
    /// Embedded RocksDB in a data directory.
    Rocksdb,
    /// In memory; everything is lost on exit.
    Memory,
}

/// `ostiary schema ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum SchemaCommand {
    /// Parse and compile schema files, reporting errors and warnings.
    ///
    /// Exits with 0 when every file is valid (warnings allowed), 1 when any has errors, and 2
    /// when a file cannot be read.
    Check(CheckArgs),
    /// Rewrite schema files in canonical form.
    ///
    /// Files with syntax errors are left alone and reported. Exits with 1 when any file could
    /// not be formatted, or (with `--check`) when any file is not formatted.
    Fmt(FmtArgs),
    /// Translate an OpenFGA model (DSL, schema 1.1) into a SpiceDB schema on standard output.
    ///
    /// Relations with both direct types and rewrites are split into `<name>_direct` and a
    /// permission `<name>`; conditions become caveats. Exits with 1 and a `FILE:LINE:COLUMN`
    /// diagnostic when the model does not parse or uses a construct SpiceDB lacks.
    FromOpenfga(FromOpenFgaArgs),
    /// Print the schema of a running server.
    Read(crate::cmd::client::SchemaReadArgs),
    /// Write a schema file to a running server.
    Write(crate::cmd::client::SchemaWriteArgs),
    /// List the differences between a running server's schema and a schema file.
    Diff(crate::cmd::client::SchemaDiffArgs),
}

/// Arguments of `ostiary schema check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Schema files to check (`-` reads standard input).
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// Print the diagnostics as a JSON array on standard output instead.
    #[arg(long)]
    pub(crate) json: bool,
    /// When to colour the diagnostics.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
}

/// Arguments of `ostiary schema fmt`.
#[derive(Debug, Args)]
pub(crate) struct FmtArgs {
    /// Schema files to format in place (`-` formats standard input to standard output).
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// Write nothing; list the files that would change and exit with 1 if there are any.
    #[arg(long)]
    pub(crate) check: bool,
    /// When to colour the diagnostics.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
}

/// Arguments of `ostiary schema from-openfga`.
#[derive(Debug, Args)]
pub(crate) struct FromOpenFgaArgs {
    /// The OpenFGA model file (`-` reads standard input).
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
}

/// Arguments of `ostiary validate`.
#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Validation files (`.yaml`), or schema files (`.zed`) to check on their own.
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// Print the reports as a JSON array on standard output instead.
    #[arg(long)]
    pub(crate) json: bool,
    /// When to colour the diagnostics.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
}

/// When to colour terminal output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colour when standard error is a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}
