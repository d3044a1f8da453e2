//! A minimal HTTP/1.1 GET for probes, health checks and the demo, always through the guard.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::{CONNECTION, HOST};
use hyper_util::rt::TokioIo;

use crate::error::{Result, SandboxError};
use crate::guard::DestinationGuard;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Bytes,
    /// The `Location` header of a redirect.
    pub location: Option<String>,
}

/// GET `path` from `addr`, all of it (connect, request, body) within `timeout`.
pub async fn get(
    guard: &DestinationGuard,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<HttpResponse> {
    get_for_host(guard, addr, &addr.to_string(), path, timeout).await
}

/// GET `path` from `addr` with `Host: host` (a load balancer's rules route by it).
pub async fn get_for_host(
    guard: &DestinationGuard,
    addr: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
) -> Result<HttpResponse> {
    let url = format!("http://{host}{path} (via {addr})");
    match tokio::time::timeout(timeout, get_inner(guard, addr, host, path, &url)).await {
        Ok(result) => result,
        Err(_) => Err(SandboxError::Http {
            url,
            message: format!("timed out after {timeout:?}"),
        }),
    }
}

async fn get_inner(
    guard: &DestinationGuard,
    addr: SocketAddr,
    host: &str,
    path: &str,
    url: &str,
) -> Result<HttpResponse> {
    let http_error = |message: String| SandboxError::Http {
        url: url.to_string(),
        message,
    };
    // The guard is checked inside connect; its refusal is returned as it is.
    let stream = guard.connect(addr, Duration::from_secs(3600)).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http_error(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let request = Request::get(path)
        .header(HOST, host)
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| http_error(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| http_error(e.to_string()))?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| http_error(e.to_string()))?
        .to_bytes();
    driver.abort();
    Ok(HttpResponse {
        status,
        body,
        location,
    })
}
