//! The JSON-carrying Ingress annotations: `listen-ports`, `actions.<name>` and
//! `conditions.<name>`, as upstream documents them. Go's JSON decoder matches keys without regard
//! to case (upstream's own docs write both `values` and `Values`), so keys are folded to lower case
//! before decoding. Each parser returns the problem as a phrase for the annotation error.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use crate::stack::{Condition, FixedResponse, Protocol, QueryStringPair, Redirect, RedirectCode};

/// ALB's quota of target groups in one forward action.
pub const MAX_TARGET_GROUPS_PER_FORWARD: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ListenerProtocol {
    Http,
    Https,
}

impl From<ListenerProtocol> for crate::stack::Protocol {
    fn from(protocol: ListenerProtocol) -> Self {
        match protocol {
            ListenerProtocol::Http => Self::Http,
            ListenerProtocol::Https => Self::Https,
        }
    }
}

impl ListenerProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "HTTP",
            Self::Https => "HTTPS",
        }
    }
}

/// `[{"HTTP": 80}, {"HTTPS": 443}]`.
pub fn listen_ports(raw: &str) -> Result<Vec<(ListenerProtocol, u16)>, String> {
    let entries: Vec<BTreeMap<String, Value>> = serde_json::from_str(raw)
        .map_err(|e| format!("is not a JSON list of {{\"PROTOCOL\": port}} objects ({e})"))?;
    unique_keys(raw)?;
    let mut ports = Vec::new();
    for entry in entries {
        let [(protocol, port)] = <[(String, Value); 1]>::try_from(
            entry.into_iter().collect::<Vec<_>>(),
        )
        .map_err(|_| "has an entry that is not one {\"PROTOCOL\": port} pair".to_string())?;
        let protocol = match protocol.as_str() {
            "HTTP" => ListenerProtocol::Http,
            "HTTPS" => ListenerProtocol::Https,
            other => {
                return Err(format!(
                    "has protocol {other:?}; an ALB listens on HTTP or HTTPS"
                ));
            }
        };
        let port = port
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                format!(
                    "has port {port} for {}; a port is 1-65535",
                    protocol.as_str()
                )
            })?;
        if let Some((other, _)) = ports.iter().find(|(_, p)| *p == port) {
            if *other != protocol {
                return Err(format!("listens on port {port} with both HTTP and HTTPS"));
            }
            continue;
        }
        ports.push((protocol, port));
    }
    if ports.is_empty() {
        return Err("lists no listener".into());
    }
    Ok(ports)
}

/// A Service port as an action names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServicePortRef {
    Number(i32),
    /// A port name; a string of digits that names no port is read as the number (upstream's
    /// documentation writes `"servicePort": "80"`).
    Name(String),
}

/// Where one target group of a forward action comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionTarget {
    Service { name: String, port: ServicePortRef },
    Arn(String),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedActionTarget {
    pub target: ActionTarget,
    pub weight: Option<i32>,
}

/// An `actions.<name>` annotation, before its Services are resolved to target groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnotationAction {
    Forward {
        targets: Vec<WeightedActionTarget>,
        stickiness_seconds: Option<i32>,
    },
    Redirect(Redirect),
    FixedResponse(FixedResponse),
}

#[derive(Deserialize)]
struct RawAction {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "targetgrouparn")]
    target_group_arn: Option<String>,
    #[serde(rename = "forwardconfig")]
    forward: Option<RawForward>,
    #[serde(rename = "redirectconfig")]
    redirect: Option<RawRedirect>,
    #[serde(rename = "fixedresponseconfig")]
    fixed_response: Option<RawFixedResponse>,
}

#[derive(Deserialize)]
struct RawForward {
    #[serde(rename = "targetgroups", default)]
    target_groups: Vec<RawTuple>,
    #[serde(rename = "targetgroupstickinessconfig")]
    stickiness: Option<RawStickiness>,
}

#[derive(Deserialize)]
struct RawTuple {
    #[serde(rename = "targetgrouparn")]
    arn: Option<String>,
    #[serde(rename = "targetgroupname")]
    name: Option<String>,
    #[serde(rename = "servicename")]
    service_name: Option<String>,
    #[serde(rename = "serviceport")]
    service_port: Option<Value>,
    weight: Option<Value>,
}

#[derive(Deserialize)]
struct RawStickiness {
    enabled: Option<bool>,
    #[serde(rename = "durationseconds")]
    duration_seconds: Option<i32>,
}

#[derive(Deserialize)]
struct RawRedirect {
    protocol: Option<String>,
    port: Option<String>,
    host: Option<String>,
    path: Option<String>,
    query: Option<String>,
    #[serde(rename = "statuscode")]
    status_code: String,
}

#[derive(Deserialize)]
struct RawFixedResponse {
    #[serde(rename = "contenttype")]
    content_type: Option<String>,
    #[serde(rename = "messagebody")]
    message_body: Option<String>,
    #[serde(rename = "statuscode")]
    status_code: String,
}

/// Object keys in lower case, all the way down (Go's decoder ignores their case).
fn fold_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), fold_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(fold_keys).collect()),
        other => other,
    }
}

fn decode<T: serde::de::DeserializeOwned>(raw: &str, what: &str) -> Result<T, String> {
    let value: Value = serde_json::from_str(raw).map_err(|e| format!("is not valid JSON ({e})"))?;
    unique_keys(raw)?;
    serde_json::from_value(fold_keys(value)).map_err(|e| format!("is not {what} ({e})"))
}

/// Refuses JSON (valid JSON: its syntax was checked) where an object names a key twice, case
/// aside as keys are matched. Go's decoder, upstream's, keeps the last silently: a `"type"` or a
/// port said twice is almost always a slip, and the last one winning a surprise.
fn unique_keys(raw: &str) -> Result<(), String> {
    serde_json::from_str::<Unique>(raw)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Any JSON value whose objects name each key once.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.to_ascii_lowercase()) {
                let key = lb_api::shown::shown(&key);
                return Err(serde::de::Error::custom(format!(
                    "names {key} twice in one object"
                )));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}

pub fn action(raw: &str) -> Result<AnnotationAction, String> {
    let raw: RawAction = decode(raw, "an action object")?;
    match raw.kind.as_str() {
        "forward" => forward(raw),
        "redirect" => redirect(raw.redirect.ok_or("is a redirect without redirectConfig")?),
        "fixed-response" => fixed_response(
            raw.fixed_response
                .ok_or("is a fixed-response without fixedResponseConfig")?,
        ),
        "authenticate-oidc" | "authenticate-cognito" => Err(format!(
            "is an action of type {:?}, which is not supported yet",
            raw.kind
        )),
        other => Err(format!(
            "has type {other:?}; one of forward, redirect, fixed-response"
        )),
    }
}

fn forward(raw: RawAction) -> Result<AnnotationAction, String> {
    let mut targets = Vec::new();
    let mut stickiness_seconds = None;
    if let Some(config) = raw.forward {
        for tuple in config.target_groups {
            targets.push(weighted_target(tuple)?);
        }
        if let Some(sticky) = config.stickiness.filter(|s| s.enabled == Some(true)) {
            let seconds = sticky.duration_seconds.unwrap_or(3600);
            if !(1..=604_800).contains(&seconds) {
                return Err(format!(
                    "has stickiness durationSeconds {seconds}; it must be 1-604800"
                ));
            }
            stickiness_seconds = Some(seconds);
        }
    }
    if targets.is_empty() {
        match raw.target_group_arn {
            Some(arn) => targets.push(WeightedActionTarget {
                target: ActionTarget::Arn(arn),
                weight: None,
            }),
            None => {
                return Err(
                    "is a forward with no target group (forwardConfig.targetGroups or targetGroupARN)"
                        .into(),
                );
            }
        }
    }
    if targets.len() > MAX_TARGET_GROUPS_PER_FORWARD {
        return Err(format!(
            "forwards to {} target groups; ALB allows {MAX_TARGET_GROUPS_PER_FORWARD} per action",
            targets.len()
        ));
    }
    Ok(AnnotationAction::Forward {
        targets,
        stickiness_seconds,
    })
}

fn weighted_target(tuple: RawTuple) -> Result<WeightedActionTarget, String> {
    let weight = match tuple.weight {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .and_then(|w| i32::try_from(w).ok())
                .filter(|w| (0..=999).contains(w))
                .ok_or_else(|| format!("has weight {n}; a weight is a whole number 0-999"))?,
        ),
        Some(other) => return Err(format!("has weight {other}, which is not a number")),
    };
    let target = match (tuple.arn, tuple.name, tuple.service_name) {
        (Some(arn), None, None) => ActionTarget::Arn(arn),
        (None, Some(name), None) => ActionTarget::Name(name),
        (None, None, Some(name)) => ActionTarget::Service {
            port: service_port(tuple.service_port, &name)?,
            name,
        },
        _ => {
            return Err(
                "has a target group that does not name exactly one of serviceName, targetGroupARN, targetGroupName"
                    .into(),
            );
        }
    };
    Ok(WeightedActionTarget { target, weight })
}

fn service_port(value: Option<Value>, service: &str) -> Result<ServicePortRef, String> {
    match value {
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| (1..=65535).contains(p))
            .map(ServicePortRef::Number)
            .ok_or_else(|| format!("has servicePort {n} for {service:?}; a port is 1-65535")),
        Some(Value::String(name)) if !name.is_empty() => Ok(ServicePortRef::Name(name)),
        _ => Err(format!(
            "names Service {service:?} without a servicePort (a number or a port name)"
        )),
    }
}

fn redirect(raw: RawRedirect) -> Result<AnnotationAction, String> {
    let Some(status_code) = RedirectCode::parse(&raw.status_code) else {
        return Err(format!(
            "has redirect statusCode {:?}; HTTP_301 or HTTP_302",
            raw.status_code
        ));
    };
    let keep = |value: Option<String>, placeholder: &str| value.filter(|v| v != placeholder);
    let protocol = match keep(raw.protocol, "#{protocol}") {
        None => None,
        Some(protocol) => match protocol.as_str() {
            "HTTP" => Some(Protocol::Http),
            "HTTPS" => Some(Protocol::Https),
            _ => {
                return Err(format!(
                    "has redirect protocol {protocol:?}; HTTP, HTTPS or #{{protocol}}"
                ));
            }
        },
    };
    Ok(AnnotationAction::Redirect(Redirect {
        protocol,
        port: keep(raw.port, "#{port}"),
        host: keep(raw.host, "#{host}"),
        path: keep(raw.path, "/#{path}"),
        query: keep(raw.query, "#{query}"),
        status_code,
    }))
}

const CONTENT_TYPES: [&str; 5] = [
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];

fn fixed_response(raw: RawFixedResponse) -> Result<AnnotationAction, String> {
    let code = &raw.status_code;
    let status_code = Some(code)
        .filter(|code| code.len() == 3 && matches!(code.as_bytes()[0], b'2' | b'4' | b'5'))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("has fixed-response statusCode {code:?}; a 2XX, 4XX or 5XX code"))?;
    if let Some(kind) = &raw.content_type
        && !CONTENT_TYPES.contains(&kind.as_str())
    {
        return Err(format!(
            "has contentType {kind:?}; one of {}",
            CONTENT_TYPES.join(", ")
        ));
    }
    if raw.message_body.as_ref().is_some_and(|b| b.len() > 1024) {
        return Err("has a messageBody over ALB's 1024 bytes".into());
    }
    Ok(AnnotationAction::FixedResponse(FixedResponse {
        status_code,
        content_type: raw.content_type,
        message_body: raw.message_body,
    }))
}

#[derive(Deserialize)]
struct RawCondition {
    field: String,
    /// The legacy form for host-header and path-pattern.
    #[serde(default)]
    values: Vec<String>,
    #[serde(rename = "hostheaderconfig")]
    host_header: Option<RawValues>,
    #[serde(rename = "pathpatternconfig")]
    path_pattern: Option<RawValues>,
    #[serde(rename = "httpheaderconfig")]
    http_header: Option<RawHeader>,
    #[serde(rename = "httprequestmethodconfig")]
    http_request_method: Option<RawValues>,
    #[serde(rename = "querystringconfig")]
    query_string: Option<RawQuery>,
    #[serde(rename = "sourceipconfig")]
    source_ip: Option<RawValues>,
}

#[derive(Deserialize)]
struct RawValues {
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    #[serde(rename = "httpheadername")]
    name: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Deserialize)]
struct RawQuery {
    #[serde(default)]
    values: Vec<RawPair>,
}

#[derive(Deserialize)]
struct RawPair {
    key: Option<String>,
    value: String,
}

/// `conditions.<name>`: a JSON list of rule conditions, all of which a request must match.
pub fn conditions(raw: &str) -> Result<Vec<Condition>, String> {
    let raw: Vec<RawCondition> = decode(raw, "a list of condition objects")?;
    raw.into_iter().map(condition).collect()
}

fn condition(raw: RawCondition) -> Result<Condition, String> {
    let field = raw.field.clone();
    let values = |config: Option<RawValues>| -> Result<Vec<String>, String> {
        let values = config.map(|c| c.values).unwrap_or(raw.values.clone());
        if values.is_empty() {
            return Err(format!("has a {field} condition without values"));
        }
        Ok(values)
    };
    let condition = match raw.field.as_str() {
        "host-header" => Condition::HostHeader(values(raw.host_header)?),
        "path-pattern" => Condition::PathPattern {
            values: values(raw.path_pattern)?,
            regex: false,
        },
        "http-request-method" => Condition::HttpRequestMethod(values(raw.http_request_method)?),
        "source-ip" => {
            let cidrs = values(raw.source_ip)?;
            if let Some(bad) = cidrs.iter().find(|c| c.parse::<IpNet>().is_err()) {
                return Err(format!("has source-ip {bad:?}, which is not a CIDR"));
            }
            Condition::SourceIp(cidrs)
        }
        "http-header" => {
            let header = raw
                .http_header
                .ok_or("has an http-header condition without httpHeaderConfig")?;
            if header.values.is_empty() {
                return Err("has an http-header condition without values".into());
            }
            Condition::HttpHeader {
                name: header.name,
                values: header.values,
            }
        }
        "query-string" => {
            let pairs = raw.query_string.map(|q| q.values).unwrap_or_default();
            if pairs.is_empty() {
                return Err("has a query-string condition without values".into());
            }
            Condition::QueryString(
                pairs
                    .into_iter()
                    .map(|p| QueryStringPair {
                        key: p.key,
                        value: p.value,
                    })
                    .collect(),
            )
        }
        other => {
            return Err(format!(
                "has condition field {other:?}; one of host-header, path-pattern, http-header, http-request-method, query-string, source-ip"
            ));
        }
    };
    Ok(condition)
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
