//! The webhook server's certificate, from PEM files (the Helm chart mounts its Secret), re-read
//! when the files change: cert-manager or a re-rendered chart rotates the Secret, the kubelet
//! swaps the mounted files, and the next TLS handshake already uses the new pair. No restart.
//!
//! rustls only offers TLS 1.2 and 1.3 with AEAD cipher suites, which is upstream's floor too.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

/// How often the certificate files are compared with what is served.
pub const CERTIFICATE_CHECK: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} holds no certificate or key")]
    NoPem(PathBuf),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The served certificate and key, and the files they come from.
#[derive(Debug)]
pub struct ReloadingCertificate {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Arc<Served>,
}

/// What the handshakes read: the pair, and the file contents it was made from.
#[derive(Debug)]
struct Served {
    pair: RwLock<(Arc<CertifiedKey>, Vec<u8>)>,
}

impl ResolvesServerCert for Served {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let pair = self.pair.read().unwrap_or_else(|e| e.into_inner());
        Some(pair.0.clone())
    }
}

impl ReloadingCertificate {
    /// Reads the pair; an unreadable or unusable pair at start is an error (the pod restarts).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (pair, contents) = read_pair(cert, key, &provider)?;
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current: Arc::new(Served {
                pair: RwLock::new((Arc::new(pair), contents)),
            }),
        })
    }

    /// The server configuration, which asks this certificate at every handshake.
    pub fn server_config(&self) -> ServerConfig {
        ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map(|builder| {
                builder
                    .with_no_client_auth()
                    .with_cert_resolver(self.current.clone())
            })
            .unwrap_or_else(|_| {
                // The default provider supports the default versions; never reached.
                ServerConfig::builder()
                    .with_no_client_auth()
                    .with_cert_resolver(self.current.clone())
            })
    }

    /// Compares the files with what is served every `every`, and serves a changed pair once it
    /// reads whole and matches (a half-written rotation is retried at the next look).
    pub async fn watch(self, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let served = {
                let pair = self.current.pair.read().unwrap_or_else(|e| e.into_inner());
                pair.1.clone()
            };
            match contents(&self.cert, &self.key) {
                Ok(now) if now == served => {}
                Ok(_) => match read_pair(&self.cert, &self.key, &self.provider) {
                    Ok((pair, contents)) => {
                        let mut current =
                            self.current.pair.write().unwrap_or_else(|e| e.into_inner());
                        *current = (Arc::new(pair), contents);
                        tracing::info!(cert = %self.cert.display(), "webhook certificate reloaded");
                    }
                    Err(err) => tracing::warn!(
                        "webhook certificate changed but unusable, still serving the previous one: {err}"
                    ),
                },
                Err(err) => tracing::warn!("webhook certificate: {err}"),
            }
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Both files' bytes, one after the other (what a change is judged by).
fn contents(cert: &Path, key: &Path) -> Result<Vec<u8>, TlsError> {
    let mut bytes = read(cert)?;
    bytes.extend(read(key)?);
    Ok(bytes)
}

fn read_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, Vec<u8>), TlsError> {
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoPem(cert.to_path_buf()));
    }
    let private: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::NoPem(key.to_path_buf()))?;
    let pair = CertifiedKey::from_der(certs, private, provider)?;
    let mut contents = cert_pem;
    contents.extend(key_pem);
    Ok((pair, contents))
}
