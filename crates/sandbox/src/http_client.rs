//! A minimal HTTP/1.1 client (GET, and POST of JSON for the emulator's control API) for probes,
//! health checks and the demo, always through the guard.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
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
    exchange(guard, addr, host, Outgoing::Get(path), timeout).await
}

/// POST `body` (JSON) to `path` on `addr`, all of it within `timeout`.
pub async fn post_json(
    guard: &DestinationGuard,
    addr: SocketAddr,
    path: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<HttpResponse> {
    exchange(
        guard,
        addr,
        &addr.to_string(),
        Outgoing::PostJson(path, body),
        timeout,
    )
    .await
}

/// A request with a method and headers of its choosing (an ALB rule's conditions to meet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    /// The path with its query string.
    pub path: String,
    pub headers: Vec<(String, String)>,
}

/// Sends `request` for `host` to `addr`, all of it within `timeout`.
pub async fn send_request(
    guard: &DestinationGuard,
    addr: SocketAddr,
    host: &str,
    request: &HttpRequest,
    timeout: Duration,
) -> Result<HttpResponse> {
    exchange(guard, addr, host, Outgoing::Custom(request), timeout).await
}

/// The request to send.
enum Outgoing<'a> {
    Get(&'a str),
    PostJson(&'a str, Vec<u8>),
    Custom(&'a HttpRequest),
}

async fn exchange(
    guard: &DestinationGuard,
    addr: SocketAddr,
    host: &str,
    outgoing: Outgoing<'_>,
    timeout: Duration,
) -> Result<HttpResponse> {
    let path = match &outgoing {
        Outgoing::Get(path) | Outgoing::PostJson(path, _) => *path,
        Outgoing::Custom(request) => request.path.as_str(),
    };
    let url = format!("http://{host}{path} (via {addr})");
    match tokio::time::timeout(timeout, send(guard, addr, host, outgoing, &url)).await {
        Ok(result) => result,
        Err(_) => Err(SandboxError::Http {
            url,
            message: format!("timed out after {timeout:?}"),
        }),
    }
}

async fn send(
    guard: &DestinationGuard,
    addr: SocketAddr,
    host: &str,
    outgoing: Outgoing<'_>,
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
    let request = match outgoing {
        Outgoing::Get(path) => Request::get(path)
            .header(HOST, host)
            .header(CONNECTION, "close")
            .body(Full::new(Bytes::new())),
        Outgoing::PostJson(path, body) => Request::post(path)
            .header(HOST, host)
            .header(CONNECTION, "close")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body))),
        Outgoing::Custom(custom) => {
            let mut builder = Request::builder()
                .method(custom.method.as_str())
                .uri(custom.path.as_str())
                .header(HOST, host)
                .header(CONNECTION, "close");
            for (name, value) in &custom.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            builder.body(Full::new(Bytes::new()))
        }
    }
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
