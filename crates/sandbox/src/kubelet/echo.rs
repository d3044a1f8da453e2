//! The Gateway API conformance suite's backend, `registry.k8s.io/gateway-api/echo-basic`, as the
//! sandbox's kubelet runs it: a pod whose container has that image serves HTTP on `HTTP_PORT`
//! (3000) whatever its declared ports, with the image's behaviour: `/health` answers `OK`,
//! `/status/NNN` answers NNN, `?delay=<duration>` waits first, `X-Echo-Set-Header: Name:Value,...`
//! becomes response headers, and every other path is echoed back as the JSON the suite reads
//! (`path`, `host`, `method`, `proto`, `headers`, `namespace`, `ingress`, `service`, `pod`,
//! `httpPort`) with `Content-Type: application/json`. The environment is read as the container
//! would see it: literal values and `fieldRef`s to the pod's name, namespace and address.

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::{HeaderMap, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::{Container, Pod};

/// The images that run this app.
const IMAGE: &str = "gateway-api/echo-basic";

/// One echo-basic container's configuration, from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoBasic {
    pub http_port: u16,
    pub namespace: String,
    pub pod: String,
    pub ingress: String,
    pub service: String,
}

impl EchoBasic {
    /// The echo-basic container of `pod`, if it has one (its gRPC, TCP and UDP modes are not
    /// served: the HTTP profile does not reach them).
    pub fn of(pod: &Pod) -> Option<Self> {
        let container = super::lifecycle::containers(pod)
            .iter()
            .find(|c| c.image.as_deref().is_some_and(|i| i.contains(IMAGE)))?;
        let env = environment(pod, container);
        let get = |key: &str| env.get(key).cloned().unwrap_or_default();
        Some(Self {
            http_port: env
                .get("HTTP_PORT")
                .and_then(|p| p.parse().ok())
                .unwrap_or(3000),
            namespace: get("NAMESPACE"),
            pod: get("POD_NAME"),
            ingress: get("INGRESS_NAME"),
            service: get("SERVICE_NAME"),
        })
    }

    /// The answer to `request` (its body is not read: the app never looks at it).
    pub async fn respond<B>(&self, request: &Request<B>) -> Response<String> {
        let uri = request.uri();
        let request_uri = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        if uri.path() == "/health" {
            return answer(StatusCode::OK, "OK".into(), "text/plain");
        }
        if let Some(code) = uri.path().strip_prefix("/status/") {
            let status = Some(code)
                .filter(|c| c.len() == 3 && request_uri == uri.path())
                .and_then(|c| c.parse::<u16>().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_REQUEST);
            return answer(status, String::new(), "text/plain");
        }
        if let Some(delay) = query(uri.query(), "delay") {
            match parse_duration(&delay) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => {
                    let message =
                        serde_json::json!({"message": format!("time: invalid duration {delay:?}")});
                    return answer(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        message.to_string(),
                        "application/json",
                    );
                }
            }
        }
        let echoed = serde_json::json!({
            "path": request_uri,
            "host": request.headers().get("host").and_then(|h| h.to_str().ok()).unwrap_or_default(),
            "method": request.method().as_str(),
            "proto": format!("{:?}", request.version()),
            "headers": canonical_headers(request.headers()),
            "httpPort": self.http_port.to_string(),
            "namespace": self.namespace,
            "ingress": self.ingress,
            "service": self.service,
            "pod": self.pod,
        });
        let body = serde_json::to_string_pretty(&echoed).unwrap_or_default();
        let mut response = answer(StatusCode::OK, body, "application/json");
        for (name, value) in echo_set_headers(request.headers()) {
            if let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(name.as_bytes()),
                hyper::header::HeaderValue::from_str(&value),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

fn answer(status: StatusCode, body: String, content_type: &str) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = content_type.parse() {
        headers.insert("content-type", value);
    }
    if let Ok(value) = "nosniff".parse() {
        headers.insert("x-content-type-options", value);
    }
    response
}

/// The container's environment: literal values, and the pod fields a `fieldRef` names.
fn environment(pod: &Pod, container: &Container) -> BTreeMap<String, String> {
    let field = |path: &str| match path {
        "metadata.name" => pod.metadata.name.clone(),
        "metadata.namespace" => pod.metadata.namespace.clone(),
        "status.podIP" => pod.status.as_ref().and_then(|s| s.pod_ip.clone()),
        "spec.nodeName" => pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        _ => None,
    };
    container
        .env
        .iter()
        .flatten()
        .filter_map(|var| {
            let value = match (&var.value, &var.value_from) {
                (Some(value), _) => Some(value.clone()),
                (None, Some(from)) => from.field_ref.as_ref().and_then(|f| field(&f.field_path)),
                (None, None) => Some(String::new()),
            };
            value.map(|v| (var.name.clone(), v))
        })
        .collect()
}

/// Request headers as Go's `http.Header` holds them: canonical names (`X-Echo-Set-Header`),
/// every value, the Host header apart.
fn canonical_headers(headers: &HeaderMap) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if name == "host" {
            continue;
        }
        let canonical = name
            .as_str()
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
                })
            })
            .collect::<Vec<_>>()
            .join("-");
        out.entry(canonical)
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).to_string());
    }
    out
}

/// The `Name:Value` pairs of every `X-Echo-Set-Header` (values of one name joined by commas).
fn echo_set_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for list in headers.get_all("x-echo-set-header") {
        for pair in String::from_utf8_lossy(list.as_bytes()).split(',') {
            let (name, value) = pair.trim().split_once(':').unwrap_or((pair.trim(), ""));
            match out.iter_mut().find(|(n, _)| n == name) {
                Some((_, existing)) => {
                    existing.push(',');
                    existing.push_str(value.trim());
                }
                None => out.push((name.to_string(), value.to_string())),
            }
        }
    }
    out
}

/// The first value of `key` in a query string.
fn query(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

/// A Go duration (`500ms`, `1.5s`, `2m`, `1h30m`).
fn parse_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(number_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number.parse::<f64>().ok()? * scale;
        rest = next;
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "infra-backend-v1-abc", "namespace": "gateway-conformance-infra"},
            "spec": {"containers": [{
                "name": "infra-backend-v1",
                "image": "registry.k8s.io/gateway-api/echo-basic:v1.5.1",
                "env": [
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                ],
            }]},
        }))
        .expect("pod")
    }

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri(uri).header("host", "example.com");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request")
    }

    #[test]
    fn an_echo_basic_container_is_found_with_its_environment() {
        let echo = EchoBasic::of(&pod()).expect("echo-basic");
        assert_eq!(echo.http_port, 3000);
        assert_eq!(echo.pod, "infra-backend-v1-abc");
        assert_eq!(echo.namespace, "gateway-conformance-infra");
        let mut other = pod();
        other.spec.as_mut().unwrap().containers[0].image = Some("nginx".into());
        assert_eq!(EchoBasic::of(&other), None);
    }

    #[tokio::test]
    async fn requests_are_echoed_as_the_suite_reads_them() {
        let echo = EchoBasic::of(&pod()).expect("echo-basic");
        let response = echo
            .respond(&request(
                "/v2/example?a=b",
                &[
                    ("x-custom", "one"),
                    ("X-Echo-Set-Header", "X-Foo:bar,X-Foo:baz"),
                ],
            ))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["x-foo"], "bar,baz");
        let body: serde_json::Value = serde_json::from_str(response.body()).expect("json");
        assert_eq!(body["path"], "/v2/example?a=b");
        assert_eq!(body["host"], "example.com");
        assert_eq!(body["method"], "GET");
        assert_eq!(body["proto"], "HTTP/1.1");
        assert_eq!(body["headers"]["X-Custom"], json!(["one"]));
        assert_eq!(body["pod"], "infra-backend-v1-abc");
        assert_eq!(body["namespace"], "gateway-conformance-infra");
    }

    #[tokio::test]
    async fn health_status_and_delay_behave_as_the_image() {
        let echo = EchoBasic::of(&pod()).expect("echo-basic");
        assert_eq!(echo.respond(&request("/health", &[])).await.body(), "OK");
        assert_eq!(
            echo.respond(&request("/status/503", &[])).await.status(),
            503
        );
        assert_eq!(
            echo.respond(&request("/status/abc", &[])).await.status(),
            400
        );
        assert_eq!(
            echo.respond(&request("/?delay=bogus", &[])).await.status(),
            500
        );
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("10ms"), Some(Duration::from_millis(10)));
    }
}
