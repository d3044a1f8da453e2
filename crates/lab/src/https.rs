//! One HTTPS GET through the sandbox's guard, trusting only the sandbox's CA: what the demo and the
//! tests send through an HTTPS or TLS listener of the emulator (SNI and Host say `server_name`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lb_sandbox::DestinationGuard;
use lb_sandbox::http_client::HttpRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsResponse {
    pub status: u16,
    /// The `Location` header of a redirect.
    pub location: Option<String>,
    /// The whole response as text (status line, headers, body).
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    #[error("the CA is not PEM: {0}")]
    Ca(String),
    #[error("{0:?} is not a server name")]
    Name(String),
    #[error("{0}")]
    Connect(String),
    #[error("TLS handshake: {0}")]
    Handshake(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("not an HTTP response: {0:?}")]
    Response(String),
}

/// GET `path` over TLS to `addr`, all within `timeout`.
pub async fn get(
    guard: &DestinationGuard,
    addr: SocketAddr,
    ca_pem: &str,
    server_name: &str,
    path: &str,
    timeout: Duration,
) -> Result<HttpsResponse, HttpsError> {
    let request = HttpRequest {
        method: "GET".into(),
        path: path.into(),
        headers: Vec::new(),
    };
    send_request(guard, addr, ca_pem, server_name, &request, timeout).await
}

/// `request` over TLS to `addr`, all within `timeout`.
pub async fn send_request(
    guard: &DestinationGuard,
    addr: SocketAddr,
    ca_pem: &str,
    server_name: &str,
    request: &HttpRequest,
    timeout: Duration,
) -> Result<HttpsResponse, HttpsError> {
    tokio::time::timeout(timeout, exchange(guard, addr, ca_pem, server_name, request))
        .await
        .map_err(|_| HttpsError::Timeout(timeout))?
}

async fn exchange(
    guard: &DestinationGuard,
    addr: SocketAddr,
    ca_pem: &str,
    server_name: &str,
    request: &HttpRequest,
) -> Result<HttpsResponse, HttpsError> {
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| HttpsError::Ca(e.to_string()))?;
        roots.add(cert).map_err(|e| HttpsError::Ca(e.to_string()))?;
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpsError::Handshake(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|_| HttpsError::Name(server_name.to_string()))?;
    let tcp = guard
        .connect(addr, Duration::from_secs(10))
        .await
        .map_err(|e| HttpsError::Connect(e.to_string()))?;
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| HttpsError::Handshake(e.to_string()))?;
    let headers: String = request
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "{} {} HTTP/1.1\r\nHost: {server_name}\r\n{headers}Connection: close\r\n\r\n",
        request.method, request.path
    );
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| HttpsError::Connect(e.to_string()))?;
    let mut raw = Vec::new();
    // Until the server closes; a reset after a complete response is not a failure.
    let _ = tls.read_to_end(&mut raw).await;
    parse(String::from_utf8_lossy(&raw).to_string())
}

fn parse(text: String) -> Result<HttpsResponse, HttpsError> {
    let status = text
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| HttpsError::Response(text.chars().take(80).collect()))?;
    let location = text
        .lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_string())
        });
    Ok(HttpsResponse {
        status,
        location,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_location_are_read_from_the_head() {
        let response = parse(
            "HTTP/1.1 301 Moved Permanently\r\nLocation: https://a.example.com:443/x\r\n\r\n"
                .into(),
        )
        .expect("a response");
        assert_eq!(response.status, 301);
        assert_eq!(
            response.location.as_deref(),
            Some("https://a.example.com:443/x")
        );
        assert!(parse("garbage".into()).is_err());
    }
}
