//! TLS for the gRPC listener: [`GrpcTls`] loads a PEM certificate chain and private key
//! (`--grpc-tls-cert-path`/`--grpc-tls-key-path`) and checks them up front, so that a bad
//! file is an error at startup rather than on the first connection. rustls with the `ring`
//! provider.

use std::path::{Path, PathBuf};

use tonic::transport::{Identity, ServerTlsConfig};

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read the TLS {what} file `{path}`")]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The certificate or key is not valid PEM, or they do not belong together.
    #[error("invalid TLS certificate `{cert_path}` or private key `{key_path}`: {reason}")]
    Invalid {
        /// The certificate path.
        cert_path: PathBuf,
        /// The key path.
        key_path: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// A checked TLS server configuration for the gRPC listener.
#[derive(Debug, Clone)]
pub struct GrpcTls {
    config: ServerTlsConfig,
}

/// Makes `ring` the process's rustls provider (the first call wins; later calls and an
/// already installed provider are fine).
pub(crate) fn install_ring_provider() {
    // An error means a provider is installed already, which is all that is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl GrpcTls {
    /// Loads and checks a PEM certificate chain and private key.
    ///
    /// # Errors
    ///
    /// [`TlsError::Read`] if a file cannot be read, [`TlsError::Invalid`] if the PEM does
    /// not parse or the key does not match.
    pub fn from_pem_files(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let read = |what: &'static str, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                what,
                path: path.to_owned(),
                source,
            })
        };
        let cert = read("certificate", cert_path)?;
        let key = read("private key", key_path)?;
        Self::from_pem(&cert, &key).map_err(|reason| TlsError::Invalid {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            reason,
        })
    }

    /// Builds from PEM bytes, checking them by building the acceptor once.
    fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, String> {
        install_ring_provider();
        let config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        tonic::transport::Server::builder()
            .tls_config(config.clone())
            .map_err(|err| {
                let mut reason = err.to_string();
                let mut source = std::error::Error::source(&err);
                while let Some(inner) = source {
                    reason = format!("{reason}: {inner}");
                    source = inner.source();
                }
                reason
            })?;
        Ok(Self { config })
    }

    /// The tonic configuration.
    pub(crate) fn config(&self) -> ServerTlsConfig {
        self.config.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_garbled_files_are_clear_errors() {
        let dir = std::env::temp_dir().join(format!("ostiary-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let err = GrpcTls::from_pem_files(&missing, &missing).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read the TLS certificate file"),
            "{err}"
        );
        let garbled = dir.join("garbled.pem");
        std::fs::write(&garbled, "not a certificate").unwrap();
        let err = GrpcTls::from_pem_files(&garbled, &garbled).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid TLS certificate"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
