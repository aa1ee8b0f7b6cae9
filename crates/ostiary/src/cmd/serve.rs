//! `ostiary serve`: merges flags, environment and the config file into one validated
//! [`ServeConfig`], opens the datastore and runs the gRPC server (plaintext or TLS) and the
//! optional metrics endpoint until SIGTERM or Ctrl-C, then shuts down gracefully within
//! `shutdown-timeout-secs` and closes the store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use ostiary_engine::Engine;
use ostiary_server::{GrpcTls, LimitsConfig, ServeOptions, ServerConfig, ServerState, StoreSizeFn};
use ostiary_store::{Datastore, DatastoreOptions, SystemClock};
use ostiary_tenancy::{Principal, Quotas, RequestContext, Tenancy, TokenPolicy};
use ostiary_types::TenantId;
use serde::Deserialize;

use crate::cli::{DatastoreEngine, ServeArgs};

/// The whole configuration of `ostiary serve`, as the TOML file spells it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ServeConfig {
    /// Where the gRPC server listens.
    pub(crate) grpc_addr: SocketAddr,
    /// Accepted bearer keys.
    pub(crate) grpc_preshared_key: Vec<String>,
    /// Serve without authentication.
    pub(crate) insecure_no_auth: bool,
    /// The datastore backend.
    pub(crate) datastore_engine: DatastoreEngine,
    /// The RocksDB data directory.
    pub(crate) datastore_conn_uri: PathBuf,
    /// The interval `minimize_latency` revisions are rounded down to (zero: head).
    #[serde(deserialize_with = "duration_text")]
    pub(crate) datastore_revision_quantization_interval: Duration,
    /// How long old revisions stay readable.
    #[serde(deserialize_with = "duration_text")]
    pub(crate) datastore_gc_window: Duration,
    /// The Prometheus endpoint (`GET /metrics`); not served when absent.
    pub(crate) metrics_addr: Option<SocketAddr>,
    /// The bytes the cache of Check answers may hold (`0`: no cache).
    #[serde(deserialize_with = "size_text")]
    pub(crate) dispatch_cache_max_cost: u64,
    /// The PEM certificate chain for gRPC over TLS.
    pub(crate) grpc_tls_cert_path: Option<PathBuf>,
    /// The PEM private key for gRPC over TLS.
    pub(crate) grpc_tls_key_path: Option<PathBuf>,
    /// How long a graceful shutdown may take, in seconds.
    pub(crate) shutdown_timeout_secs: u64,
    /// Where the first start writes the root token.
    pub(crate) root_token_file: Option<PathBuf>,
    /// The longest lifetime of an API token.
    #[serde(deserialize_with = "duration_text")]
    pub(crate) token_max_lifetime: Duration,
    /// Allow API tokens without an expiry.
    pub(crate) token_allow_non_expiring: bool,
    /// Create a new root token at this start even if one exists.
    #[serde(skip)]
    pub(crate) new_root_token: bool,
    /// Rate limits, stream caps and the authentication failure limit.
    pub(crate) limits: LimitsSettings,
    /// Request limits and server settings.
    pub(crate) server: ServerConfig,
}

/// The `[limits]` table: rate limits and abuse prevention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct LimitsSettings {
    /// Requests per second per token (`0`: unlimited).
    pub(crate) rate_limit_per_token: u32,
    /// Concurrent streaming calls per token (`0`: unlimited).
    pub(crate) max_streams_per_token: usize,
    /// Failed authentications per minute per client address (`0`: unlimited).
    pub(crate) auth_failures_per_minute: u32,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        let defaults = LimitsConfig::default();
        Self {
            rate_limit_per_token: defaults.per_token_rps,
            max_streams_per_token: defaults.max_streams_per_token,
            auth_failures_per_minute: defaults.auth_failures_per_minute,
        }
    }
}

impl From<LimitsSettings> for LimitsConfig {
    fn from(settings: LimitsSettings) -> Self {
        Self {
            per_token_rps: settings.rate_limit_per_token,
            max_streams_per_token: settings.max_streams_per_token,
            auth_failures_per_minute: settings.auth_failures_per_minute,
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            grpc_preshared_key: Vec::new(),
            insecure_no_auth: false,
            // RocksDB when this build has it (the `rocksdb` feature), else memory.
            datastore_engine: if cfg!(feature = "rocksdb") {
                DatastoreEngine::Rocksdb
            } else {
                DatastoreEngine::Memory
            },
            datastore_conn_uri: PathBuf::from("ostiary-data"),
            datastore_revision_quantization_interval: DatastoreOptions::DEFAULT_QUANTIZATION,
            datastore_gc_window: DatastoreOptions::DEFAULT_GC_WINDOW,
            metrics_addr: None,
            dispatch_cache_max_cost: 64 << 20,
            grpc_tls_cert_path: None,
            grpc_tls_key_path: None,
            shutdown_timeout_secs: 30,
            root_token_file: None,
            token_max_lifetime: TokenPolicy::DEFAULT_MAX_LIFETIME,
            token_allow_non_expiring: false,
            new_root_token: false,
            limits: LimitsSettings::default(),
            server: ServerConfig::default(),
        }
    }
}

impl ServeConfig {
    /// Reads a TOML file.
    pub(crate) fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file `{}`", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file `{}`", path.display()))
    }

    /// Applies the flags and environment over the file's values.
    fn merge(mut self, args: ServeArgs) -> Self {
        if let Some(addr) = args.grpc_addr {
            self.grpc_addr = addr;
        }
        if !args.grpc_preshared_key.is_empty() {
            self.grpc_preshared_key = args.grpc_preshared_key;
        }
        self.insecure_no_auth |= args.insecure_no_auth;
        if let Some(engine) = args.datastore_engine {
            self.datastore_engine = engine;
        }
        if let Some(path) = args.datastore_conn_uri {
            self.datastore_conn_uri = path;
        }
        if let Some(interval) = args.datastore_revision_quantization_interval {
            self.datastore_revision_quantization_interval = interval;
        }
        if let Some(window) = args.datastore_gc_window {
            self.datastore_gc_window = window;
        }
        if args.metrics_addr.is_some() {
            self.metrics_addr = args.metrics_addr;
        }
        if let Some(bytes) = args.dispatch_cache_max_cost {
            self.dispatch_cache_max_cost = bytes;
        }
        if args.grpc_tls_cert_path.is_some() {
            self.grpc_tls_cert_path = args.grpc_tls_cert_path;
        }
        if args.grpc_tls_key_path.is_some() {
            self.grpc_tls_key_path = args.grpc_tls_key_path;
        }
        if args.root_token_file.is_some() {
            self.root_token_file = args.root_token_file;
        }
        if let Some(lifetime) = args.token_max_lifetime {
            self.token_max_lifetime = lifetime;
        }
        self.token_allow_non_expiring |= args.token_allow_non_expiring;
        self.new_root_token |= args.new_root_token;
        if let Some(rps) = args.rate_limit_per_token {
            self.limits.rate_limit_per_token = rps;
        }
        if let Some(streams) = args.max_streams_per_token {
            self.limits.max_streams_per_token = streams;
        }
        if let Some(failures) = args.auth_failures_per_minute {
            self.limits.auth_failures_per_minute = failures;
        }
        self
    }

    /// Where the root token file goes.
    fn root_token_path(&self) -> PathBuf {
        match (&self.root_token_file, self.datastore_engine) {
            (Some(path), _) => path.clone(),
            (None, DatastoreEngine::Rocksdb) => self.datastore_conn_uri.join("root-token"),
            // A throwaway store: one file per process, so that servers side by side do not
            // clash.
            (None, DatastoreEngine::Memory) => {
                std::env::temp_dir().join(format!("ostiary-root-token-{}", std::process::id()))
            }
        }
    }

    /// The datastore options these settings ask for.
    fn datastore_options(&self) -> DatastoreOptions {
        DatastoreOptions {
            gc_window: self.datastore_gc_window,
            quantization: self.datastore_revision_quantization_interval,
            ..DatastoreOptions::default()
        }
    }

    /// Checks that the configuration can work.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        self.server.validate()?;
        let keys_present = self
            .grpc_preshared_key
            .iter()
            .any(|key| !key.trim().is_empty());
        if self
            .grpc_preshared_key
            .iter()
            .any(|key| key.trim().is_empty())
        {
            bail!("`grpc-preshared-key` must not contain an empty key");
        }
        if self.token_max_lifetime.is_zero() {
            bail!("`token-max-lifetime` must be longer than zero");
        }
        if keys_present && self.insecure_no_auth {
            bail!("`--insecure-no-auth` cannot be combined with `--grpc-preshared-key`");
        }
        if self.grpc_tls_cert_path.is_some() != self.grpc_tls_key_path.is_some() {
            bail!(
                "`--grpc-tls-cert-path` and `--grpc-tls-key-path` must be given together (or neither, for plaintext gRPC)"
            );
        }
        if self.datastore_gc_window.is_zero() {
            bail!("`datastore-gc-window` must be longer than zero");
        }
        // A quantized revision older than the window would be expired the moment it is
        // picked, so every `minimize_latency` read would fail.
        if self.datastore_gc_window <= self.datastore_revision_quantization_interval {
            bail!(
                "`datastore-gc-window` ({}) must be longer than `datastore-revision-quantization-interval` ({})",
                humantime::format_duration(self.datastore_gc_window),
                humantime::format_duration(self.datastore_revision_quantization_interval)
            );
        }
        if self.shutdown_timeout_secs == 0 {
            bail!("`shutdown-timeout-secs` must be at least 1");
        }
        Ok(())
    }
}

/// Deserializes a duration written as text (`"5s"`, `"24h"`), as the flags take it.
fn duration_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    crate::cli::parse_duration(&text)
        .map_err(|err| serde::de::Error::custom(format!("invalid duration `{text}`: {err}")))
}

/// Deserializes a size: a number of bytes, or text with a unit (`"64MiB"`), as the flag
/// takes it.
fn size_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(deserializer)? {
        Size::Bytes(bytes) => Ok(bytes),
        Size::Text(text) => crate::cli::parse_size(&text).map_err(serde::de::Error::custom),
    }
}

/// Whether the start creates a root token.
#[derive(Debug, Clone, Copy)]
enum RootToken {
    /// No (`--insecure-no-auth`).
    None,
    /// On the first start, one living this long.
    IfNone(Duration),
    /// Yes (`--new-root-token`), living this long.
    New(Duration),
}

/// Registers the default tenant and creates a root token if asked (on the first start, or
/// with `--new-root-token`), writing it to `root_token_path`, readable by the owner only.
fn bootstrap(
    tenancy: &Tenancy,
    root_token: RootToken,
    root_token_path: &Path,
) -> anyhow::Result<()> {
    let operator = Principal::operator();
    let ctx = RequestContext::default();
    let default = TenantId::default_tenant();
    if tenancy.tenant(&default)?.is_none() {
        tenancy.create_tenant(
            &operator,
            &default,
            Quotas::default(),
            "the default tenant",
            &ctx,
        )?;
    }
    let lifetime = match root_token {
        RootToken::None => return Ok(()),
        RootToken::IfNone(_) if tenancy.has_root_token()? => return Ok(()),
        RootToken::IfNone(lifetime) => lifetime,
        RootToken::New(lifetime) => {
            // A new token replaces the file's old one (which stays valid until revoked).
            match std::fs::remove_file(root_token_path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(err).with_context(|| {
                        format!("cannot replace `{}`", root_token_path.display())
                    });
                }
                _ => lifetime,
            }
        }
    };
    let expires = ostiary_store::add_duration(tenancy.now(), lifetime);
    let created = tenancy.create_root_token("created at server start", Some(expires), &ctx)?;
    write_secret_file(root_token_path, created.text.expose()).with_context(|| {
        format!(
            "cannot write the root token to `{}`",
            root_token_path.display()
        )
    })?;
    tracing::warn!(
        path = %root_token_path.display(),
        "first start: created a root token and wrote it to this file (owner-only); use it to create tenants and tokens, then store it safely"
    );
    Ok(())
}

/// Writes `text` to a new file only its owner can read.
fn write_secret_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Writes tokens' last-use times to the store every 10 seconds.
async fn flush_last_used(tenancy: Arc<Tenancy>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    loop {
        ticks.tick().await;
        let tenancy = Arc::clone(&tenancy);
        match tokio::task::spawn_blocking(move || tenancy.flush_last_used()).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot record token last-use times"),
            Err(_) => return,
        }
    }
}

/// Runs the server until a shutdown signal.
pub(crate) fn run(mut args: ServeArgs) -> anyhow::Result<ExitCode> {
    let file = match args.config.take() {
        Some(path) => ServeConfig::from_file(&path)?,
        None => ServeConfig::default(),
    };
    let config = file.merge(args);
    config.validate()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OSTIARY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))?;
    // Tasks still running (a Watch stream's last step, a blocking read) get a moment; the
    // store closes when the last of them lets go of it.
    runtime.shutdown_timeout(Duration::from_secs(5));
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Opens the datastore, binds and serves.
async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    // Check the TLS files before anything else, so that a bad file fails fast.
    let tls = match (&config.grpc_tls_cert_path, &config.grpc_tls_key_path) {
        (Some(cert), Some(key)) => Some(GrpcTls::from_pem_files(cert, key)?),
        _ => None,
    };
    let (store, store_size): (Arc<dyn Datastore>, Option<StoreSizeFn>) = match config
        .datastore_engine
    {
        DatastoreEngine::Memory => (
            Arc::new(ostiary_store_mem::MemDatastore::new(
                config.datastore_options(),
            )),
            None,
        ),
        #[cfg(feature = "rocksdb")]
        DatastoreEngine::Rocksdb => {
            let rocks_config = ostiary_store_rocks::RocksConfig::new(&config.datastore_conn_uri);
            let store = ostiary_store_rocks::RocksDatastore::open(
                &rocks_config,
                config.datastore_options(),
            )
            .with_context(|| {
                format!(
                    "cannot open the RocksDB datastore in `{}`",
                    config.datastore_conn_uri.display()
                )
            })?;
            let store = Arc::new(store);
            let sized = Arc::clone(&store);
            let size: StoreSizeFn = Box::new(move || {
                let files = sized.sst_bytes().ok()?;
                Some(files.iter().map(|(_, bytes)| bytes).sum())
            });
            (store, Some(size))
        }
        #[cfg(not(feature = "rocksdb"))]
        DatastoreEngine::Rocksdb => bail!(
            "this build has no RocksDB support: rebuild with `--features rocksdb`, or use `--datastore-engine memory`"
        ),
    };
    let listener = tokio::net::TcpListener::bind(config.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on `{}`", config.grpc_addr))?;
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on `{addr}` for metrics"))?,
        ),
        None => None,
    };
    let tenancy = Arc::new(Tenancy::new(
        Arc::clone(&store),
        Arc::new(SystemClock),
        TokenPolicy {
            allow_non_expiring: config.token_allow_non_expiring,
            max_lifetime: Some(config.token_max_lifetime),
        },
    ));
    let mut state = ServerState::new(
        store,
        Engine::default().with_check_cache(config.dispatch_cache_max_cost),
        config.server.clone(),
        config.grpc_preshared_key.clone(),
    )
    .context("cannot read or create the server secret")?
    .with_tenancy(Arc::clone(&tenancy))
    .with_limits(config.limits.into());
    if config.insecure_no_auth {
        tracing::warn!("serving without authentication (`--insecure-no-auth`)");
        state = state.insecure_no_auth();
    }
    let state = Arc::new(state);
    // After the state: it installs the audit log's revision seal (consistency tokens).
    {
        let tenancy = Arc::clone(&tenancy);
        let path = config.root_token_path();
        let root_token = if config.insecure_no_auth {
            RootToken::None
        } else if config.new_root_token || config.datastore_engine == DatastoreEngine::Memory {
            // A memory store starts empty, so a file already at its path holds the token of
            // a store that is gone (a stale file whose name a reused pid matches): replace it.
            RootToken::New(config.token_max_lifetime)
        } else {
            RootToken::IfNone(config.token_max_lifetime)
        };
        tokio::task::spawn_blocking(move || bootstrap(&tenancy, root_token, &path))
            .await
            .context("bootstrap task failed")??;
    }
    // Tenants deleted before a restart finish deleting; last-use times reach the store.
    state.purge_in_background();
    tokio::spawn(flush_last_used(Arc::clone(&tenancy)));
    if let Some(size) = store_size {
        state.set_store_size(size);
    }
    // One signal, seen by the gRPC server and the metrics endpoint.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let signal = shutdown_signal()?;
    tokio::spawn(async move {
        signal.await;
        tracing::info!("shutdown signal received");
        stop.send_replace(true);
    });
    let wait_for_stop = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        // An error means the sender is gone, which also means stop.
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let metrics_task = match (metrics_listener, state.metrics()) {
        (Some(listener), Some(metrics)) => {
            tracing::info!(addr = %listener.local_addr()?, "serving metrics");
            Some(tokio::spawn(ostiary_server::serve_metrics(
                listener,
                Arc::clone(metrics),
                wait_for_stop(stopped.clone()),
            )))
        }
        _ => None,
    };
    tracing::info!(
        addr = %listener.local_addr()?,
        engine = ?config.datastore_engine,
        tls = tls.is_some(),
        "serving gRPC"
    );
    let options = ServeOptions {
        tls,
        shutdown_timeout: Duration::from_secs(config.shutdown_timeout_secs),
    };
    ostiary_server::serve_with(
        listener,
        Arc::clone(&state),
        options,
        wait_for_stop(stopped),
    )
    .await
    .context("the gRPC server failed")?;
    if let Some(task) = metrics_task
        && let Err(err) = task.await
    {
        tracing::warn!(error = %err, "the metrics endpoint failed");
    }
    // Our handle on the store goes; it closes once in-flight work lets go of it too.
    drop(state);
    tracing::info!("closing the datastore");
    // The token of a memory store dies with it: the file it was written to by default (one
    // per process, in the temp directory) goes too. (A file the user named is theirs.)
    if config.datastore_engine == DatastoreEngine::Memory
        && config.root_token_file.is_none()
        && !config.insecure_no_auth
    {
        let path = config.root_token_path();
        if let Err(err) = std::fs::remove_file(&path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %err, "cannot remove the root token file");
        }
    }
    Ok(())
}

/// A future that completes on Ctrl-C or SIGTERM. The SIGTERM handler is installed before
/// this returns, so a signal sent right after is not missed.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    Ok(async move {
        let ctrl_c = async {
            if let Err(err) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %err, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async {
            terminate.recv().await;
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {}
            () = terminate => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config.example.toml");
        let config = ServeConfig::from_file(&path).unwrap();
        config.validate().unwrap();
        assert_eq!(config.grpc_addr, SocketAddr::from(([127, 0, 0, 1], 50051)));
        assert_eq!(config.server.max_updates_per_write, 1000);
        assert_eq!(
            config.datastore_revision_quantization_interval,
            Duration::from_secs(5)
        );
        assert_eq!(
            config.datastore_gc_window,
            Duration::from_secs(24 * 60 * 60)
        );
        assert_eq!(config.dispatch_cache_max_cost, 64 << 20);
    }

    #[test]
    fn cache_sizes_parse_with_units_in_flags_and_files() {
        use crate::cli::parse_size;
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1500"), Ok(1500));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert!(
            parse_size("64MB")
                .unwrap_err()
                .contains("unknown size unit `MB`")
        );
        assert!(parse_size("lots").unwrap_err().contains("is not a size"));
        let file: ServeConfig = toml::from_str("dispatch-cache-max-cost = \"1MiB\"").unwrap();
        assert_eq!(file.dispatch_cache_max_cost, 1 << 20);
        let file: ServeConfig = toml::from_str("dispatch-cache-max-cost = 0").unwrap();
        assert_eq!(file.dispatch_cache_max_cost, 0);
        assert!(toml::from_str::<ServeConfig>("dispatch-cache-max-cost = \"big\"").is_err());
    }

    #[test]
    fn datastore_durations_come_from_the_file_and_the_flags() {
        let file: ServeConfig = toml::from_str(
            "datastore-revision-quantization-interval = \"100ms\"\ndatastore-gc-window = \"1h30m\"",
        )
        .unwrap();
        assert_eq!(
            file.datastore_revision_quantization_interval,
            Duration::from_millis(100)
        );
        assert_eq!(file.datastore_gc_window, Duration::from_secs(90 * 60));
        let options = file.datastore_options();
        assert_eq!(options.quantization, Duration::from_millis(100));
        assert_eq!(options.gc_window, Duration::from_secs(90 * 60));

        let err = toml::from_str::<ServeConfig>("datastore-gc-window = \"soon\"").unwrap_err();
        assert!(err.to_string().contains("invalid duration `soon`"), "{err}");

        // Flags win over the file; a bare `0` is Go's zero duration.
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from([
            "ostiary",
            "serve",
            "--datastore-revision-quantization-interval",
            "0",
            "--datastore-gc-window",
            "2m",
        ])
        .unwrap();
        let crate::cli::Command::Serve(args) = cli.command else {
            panic!("expected serve");
        };
        let merged = file.merge(*args);
        assert_eq!(
            merged.datastore_revision_quantization_interval,
            Duration::ZERO
        );
        assert_eq!(merged.datastore_gc_window, Duration::from_secs(120));
    }

    #[test]
    fn the_gc_window_must_outlast_the_quantization() {
        let config = ServeConfig {
            insecure_no_auth: true,
            datastore_gc_window: Duration::from_secs(5),
            ..ServeConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`datastore-gc-window` (5s) must be longer than `datastore-revision-quantization-interval` (5s)"
        );
        let zero = ServeConfig {
            insecure_no_auth: true,
            datastore_gc_window: Duration::ZERO,
            datastore_revision_quantization_interval: Duration::ZERO,
            ..ServeConfig::default()
        };
        assert_eq!(
            zero.validate().unwrap_err().to_string(),
            "`datastore-gc-window` must be longer than zero"
        );
    }

    #[test]
    fn unknown_keys_and_conflicting_auth_are_refused() {
        let err = toml::from_str::<ServeConfig>("grpc-adress = \"127.0.0.1:1\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `grpc-adress`"),
            "{err}"
        );
        // API tokens need no preshared key: the first start creates a root token.
        ServeConfig::default().validate().unwrap();
        let both = ServeConfig {
            insecure_no_auth: true,
            grpc_preshared_key: vec!["k".to_owned()],
            ..ServeConfig::default()
        };
        let err = both.validate().unwrap_err();
        assert!(err.to_string().contains("cannot be combined"), "{err}");
        let limits: ServeConfig = toml::from_str(
            "token-max-lifetime = \"30d\"\n[limits]\nrate-limit-per-token = 5\nmax-streams-per-token = 2\n",
        )
        .unwrap();
        assert_eq!(limits.token_max_lifetime, Duration::from_secs(30 * 86_400));
        assert_eq!(LimitsConfig::from(limits.limits).per_token_rps, 5);
        assert_eq!(limits.limits.max_streams_per_token, 2);
    }

    #[test]
    fn tls_paths_come_together() {
        let half = ServeConfig {
            insecure_no_auth: true,
            grpc_tls_cert_path: Some(PathBuf::from("cert.pem")),
            ..ServeConfig::default()
        };
        let err = half.validate().unwrap_err();
        assert!(err.to_string().contains("must be given together"), "{err}");
        let both = ServeConfig {
            grpc_tls_key_path: Some(PathBuf::from("key.pem")),
            ..half
        };
        both.validate().unwrap();
    }

    #[tokio::test]
    async fn a_bad_tls_file_is_an_error_at_startup() {
        let config = ServeConfig {
            insecure_no_auth: true,
            datastore_engine: DatastoreEngine::Memory,
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc_tls_cert_path: Some(PathBuf::from("/nonexistent/cert.pem")),
            grpc_tls_key_path: Some(PathBuf::from("/nonexistent/key.pem")),
            ..ServeConfig::default()
        };
        let err = serve(config).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read the TLS certificate file `/nonexistent/cert.pem`"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn sigterm_completes_the_shutdown_signal() {
        let signal = shutdown_signal().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(5), signal)
            .await
            .expect("SIGTERM ends the wait");
    }
}
