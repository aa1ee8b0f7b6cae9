//! `ostiary serve`: merges flags, environment and the config file into one validated
//! [`ServeConfig`], opens the datastore and runs the gRPC server until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use ostiary_engine::Engine;
use ostiary_server::{ServerConfig, ServerState};
use ostiary_store::{Datastore, DatastoreOptions};
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
    /// The metrics endpoint (not served yet).
    pub(crate) metrics_addr: Option<SocketAddr>,
    /// Request limits and server settings.
    pub(crate) server: ServerConfig,
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
            metrics_addr: None,
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
        if args.metrics_addr.is_some() {
            self.metrics_addr = args.metrics_addr;
        }
        self
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
        if !keys_present && !self.insecure_no_auth {
            bail!(
                "a preshared key is required: pass `--grpc-preshared-key` (or set `OSTIARY_GRPC_PRESHARED_KEY`), or `--insecure-no-auth` to serve without authentication"
            );
        }
        if keys_present && self.insecure_no_auth {
            bail!("`--insecure-no-auth` cannot be combined with `--grpc-preshared-key`");
        }
        Ok(())
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
    Ok(ExitCode::SUCCESS)
}

/// Opens the datastore, binds and serves.
async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let store: Arc<dyn Datastore> = match config.datastore_engine {
        DatastoreEngine::Memory => Arc::new(ostiary_store_mem::MemDatastore::new(
            DatastoreOptions::default(),
        )),
        #[cfg(feature = "rocksdb")]
        DatastoreEngine::Rocksdb => {
            let rocks_config = ostiary_store_rocks::RocksConfig::new(&config.datastore_conn_uri);
            let store = ostiary_store_rocks::RocksDatastore::open(
                &rocks_config,
                DatastoreOptions::default(),
            )
            .with_context(|| {
                format!(
                    "cannot open the RocksDB datastore in `{}`",
                    config.datastore_conn_uri.display()
                )
            })?;
            Arc::new(store)
        }
        #[cfg(not(feature = "rocksdb"))]
        DatastoreEngine::Rocksdb => bail!(
            "this build has no RocksDB support: rebuild with `--features rocksdb`, or use `--datastore-engine memory`"
        ),
    };
    if let Some(addr) = config.metrics_addr {
        tracing::warn!(%addr, "the metrics endpoint is not implemented yet; ignoring `metrics-addr`");
    }
    let listener = tokio::net::TcpListener::bind(config.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on `{}`", config.grpc_addr))?;
    let keys = if config.insecure_no_auth {
        tracing::warn!("serving without authentication (`--insecure-no-auth`)");
        Vec::new()
    } else {
        config.grpc_preshared_key.clone()
    };
    let state = Arc::new(ServerState::new(
        store,
        Engine::default(),
        config.server.clone(),
        keys,
    ));
    tracing::info!(addr = %listener.local_addr()?, engine = ?config.datastore_engine, "serving gRPC");
    ostiary_server::serve(listener, state, shutdown_signal())
        .await
        .context("the gRPC server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
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
    }

    #[test]
    fn unknown_keys_and_missing_auth_are_refused() {
        let err = toml::from_str::<ServeConfig>("grpc-adress = \"127.0.0.1:1\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `grpc-adress`"),
            "{err}"
        );
        let err = ServeConfig::default().validate().unwrap_err();
        assert!(
            err.to_string().contains("a preshared key is required"),
            "{err}"
        );
        let insecure = ServeConfig {
            insecure_no_auth: true,
            ..ServeConfig::default()
        };
        insecure.validate().unwrap();
    }
}
