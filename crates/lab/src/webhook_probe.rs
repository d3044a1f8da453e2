//! Times the pod webhook directly: AdmissionReview requests over TLS (trusting the sandbox CA) on
//! one keep-alive connection, as the apiserver sends them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("TLS: {0}")]
    Tls(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("the webhook answered {0}")]
    Status(u16),
}

/// An AdmissionReview for the creation of pod `name` with `labels` in `namespace`.
pub fn pod_review(namespace: &str, name: &str, labels: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uuid::Uuid::new_v4().to_string(),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": {"containers": [{"name": "web", "image": "sandbox/web"}]},
            },
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    })
}

/// Sends `count` reviews and returns each round trip; the answers must carry a patch when
/// `expect_patch`.
pub async fn time_reviews(
    addr: SocketAddr,
    ca_pem: &str,
    path: &str,
    review: impl Fn(usize) -> serde_json::Value,
    count: usize,
    expect_patch: bool,
) -> Result<Vec<Duration>, ProbeError> {
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()).flatten() {
        roots
            .add(cert)
            .map_err(|e| ProbeError::Tls(e.to_string()))?;
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let server = ServerName::IpAddress(addr.ip().into());
    let tls = TlsConnector::from(Arc::new(config))
        .connect(server, stream)
        .await
        .map_err(|e| ProbeError::Tls(e.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| ProbeError::Http(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        let body = serde_json::to_vec(&review(i)).map_err(|e| ProbeError::Http(e.to_string()))?;
        let request = hyper::Request::post(path)
            .header(hyper::header::HOST, addr.to_string())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ProbeError::Http(e.to_string()))?;
        sender
            .ready()
            .await
            .map_err(|e| ProbeError::Http(format!("connection not ready: {e}")))?;
        let sent = Instant::now();
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| ProbeError::Http(format!("request {i}: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| ProbeError::Http(e.to_string()))?
            .to_bytes();
        times.push(sent.elapsed());
        if status != 200 {
            return Err(ProbeError::Status(status));
        }
        let answer: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| ProbeError::Http(e.to_string()))?;
        let patched = !answer["response"]["patch"].is_null();
        if patched != expect_patch {
            return Err(ProbeError::Http(format!("unexpected answer: {answer}")));
        }
    }
    driver.abort();
    Ok(times)
}
