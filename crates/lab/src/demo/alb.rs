//! What the demo shows of an Ingress of ours (or a Gateway of ours): its group's ALB (hostname),
//! each listener with its default action and its rules as ELB holds them, requests sent through
//! every listener for every rule's host and path (HTTP and HTTPS; a redirect is reported, not
//! followed) with the answers by status code and by the Service that answered, as percentages;
//! and the Events of every member of the group (a Gateway's conditions and Events). A user checks
//! a canary split or a redirect here before a cluster.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types as sdk;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use lb_api::TargetGroupBinding;
use lb_api::gateway::Gateway;
use lb_api::keys::gateway::{STACK_NAME_LABEL, STACK_NAMESPACE_LABEL};
use serde::Serialize;

use super::outcome::{Probes, TargetOutcome};
use crate::status_hostname::StatusHostname;
use lb_sandbox::http_client::{self, HttpRequest};

/// Requests sent per rule (and per listener default).
const REQUESTS: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct AlbOutcome {
    pub hostname: String,
    pub listeners: Vec<AlbListener>,
    /// `member: type reason: message` of every member of the group, oldest first.
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlbListener {
    pub protocol: String,
    pub port: u16,
    pub default_action: String,
    pub rules: Vec<AlbRule>,
    /// A request no rule matches.
    pub default_probe: Probe,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlbRule {
    pub priority: String,
    pub conditions: String,
    pub action: String,
    pub probe: Probe,
}

/// `requests` requests of `host` + `path` (with the method and headers a rule's conditions ask
/// for): the answers by status code and by Service, in percent.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub host: String,
    pub method: String,
    /// With the query string.
    pub path: String,
    /// `Name: value`.
    pub headers: Vec<String>,
    pub requests: usize,
    pub by_status: BTreeMap<String, f64>,
    pub by_service: BTreeMap<String, f64>,
}

/// The ALB of `ingress`'s group, if it has one; and the targets of its bindings.
pub async fn outcome(
    client: &Client,
    probes: &Probes<'_>,
    ingress: &Ingress,
) -> Option<(AlbOutcome, Vec<TargetOutcome>)> {
    let hostname = ingress.status_hostname()?;
    let group = lb_model::ingress::group::group_of(ingress, None);
    let found = targets_by_address(client, probes, &group.binding_selector()).await;
    let events = group_events(client, ingress).await;
    of_alb(probes, hostname, found, events).await
}

/// The ALB of `gateway`, if it has one; and the targets of its bindings.
pub async fn gateway_outcome(
    client: &Client,
    probes: &Probes<'_>,
    gateway: &Gateway,
) -> Option<(AlbOutcome, Vec<TargetOutcome>)> {
    let status = gateway.status.as_ref()?;
    let hostname = status.addresses.first()?.value.clone();
    let (namespace, name) = (gateway.namespace().unwrap_or_default(), gateway.name_any());
    let selector = format!("{STACK_NAMESPACE_LABEL}={namespace},{STACK_NAME_LABEL}={name}");
    let found = targets_by_address(client, probes, &selector).await;
    let mut events: Vec<String> = status
        .conditions
        .iter()
        .map(|c| {
            format!(
                "{namespace}/{name}: {}={} {}: {}",
                c.type_, c.status, c.reason, c.message
            )
        })
        .collect();
    events.extend(events_of(client, "Gateway", &namespace, &name).await);
    of_alb(probes, hostname, found, events).await
}

/// The ALB answering at `hostname`: its listeners and rules probed; `found` the services behind
/// the targets' addresses and the targets, `events` what to show of its objects.
async fn of_alb(
    probes: &Probes<'_>,
    hostname: String,
    (services, targets): (BTreeMap<String, String>, Vec<TargetOutcome>),
    events: Vec<String>,
) -> Option<(AlbOutcome, Vec<TargetOutcome>)> {
    let described = probes.elb.describe_load_balancers().send().await.ok()?;
    let alb = described
        .load_balancers()
        .iter()
        .find(|l| l.dns_name() == Some(hostname.as_str()))?;
    let listeners = probes
        .elb
        .describe_listeners()
        .load_balancer_arn(alb.load_balancer_arn()?)
        .send()
        .await
        .ok()?;
    let local = probes.emulator.listeners().await.unwrap_or_default();
    let mut out = Vec::new();
    for listener in listeners.listeners() {
        let port = listener.port().and_then(|p| u16::try_from(p).ok())?;
        let protocol = listener.protocol().map_or("", |p| p.as_str()).to_string();
        let Some(addr) = local
            .iter()
            .find(|l| l.dns_name == hostname && l.port == port)
            .map(|l| l.local_address)
        else {
            continue;
        };
        let send =
            |request: ProbeRequest| probe(probes, addr, protocol.clone(), request, &services);
        let rules = probes
            .elb
            .describe_rules()
            .listener_arn(listener.listener_arn().unwrap_or_default())
            .send()
            .await
            .map(|r| r.rules().to_vec())
            .unwrap_or_default();
        let mut shown = Vec::new();
        for rule in rules.iter().filter(|r| r.is_default() != Some(true)) {
            let request = request_for(rule.conditions());
            shown.push(AlbRule {
                priority: rule.priority().unwrap_or_default().to_string(),
                conditions: conditions_text(rule.conditions()),
                action: action_text(rule.actions()),
                probe: send(request).await,
            });
        }
        out.push(AlbListener {
            default_action: action_text(listener.default_actions()),
            default_probe: send(ProbeRequest {
                host: "unmatched.example.com".into(),
                request: HttpRequest {
                    method: "GET".into(),
                    path: "/no-rule-matches".into(),
                    headers: Vec::new(),
                },
            })
            .await,
            protocol,
            port,
            rules: shown,
        });
    }
    Some((
        AlbOutcome {
            hostname,
            listeners: out,
            events,
        },
        targets,
    ))
}

/// What a probe sends: a request that meets every condition of a rule.
#[derive(Debug, Clone)]
struct ProbeRequest {
    host: String,
    request: HttpRequest,
}

/// A request the rule's conditions match (wildcards filled in): its host, path, method, headers
/// and query string. A `source-ip` condition is met only when it covers the probe's own address
/// (the sandbox's loopback), which no request can choose.
fn request_for(conditions: &[sdk::RuleCondition]) -> ProbeRequest {
    let fill = |pattern: &str| pattern.replace(['*', '?'], "x");
    let mut host = "demo.example.com".to_string();
    let mut path = "/".to_string();
    let mut method = "GET".to_string();
    let mut headers = Vec::new();
    let mut query = Vec::new();
    for condition in conditions {
        match condition.field() {
            Some("host-header") => {
                if let Some(h) = condition
                    .host_header_config()
                    .and_then(|c| c.values().first())
                {
                    host = fill(h);
                }
            }
            Some("path-pattern") => {
                if let Some(p) = condition
                    .path_pattern_config()
                    .and_then(|c| c.values().first())
                {
                    path = fill(p);
                }
            }
            Some("http-request-method") => {
                if let Some(m) = condition
                    .http_request_method_config()
                    .and_then(|c| c.values().first())
                {
                    method = m.clone();
                }
            }
            Some("http-header") => {
                if let Some(config) = condition.http_header_config()
                    && let (Some(name), Some(value)) =
                        (config.http_header_name(), config.values().first())
                {
                    headers.push((name.to_string(), fill(value)));
                }
            }
            Some("query-string") => {
                if let Some(pair) = condition
                    .query_string_config()
                    .and_then(|c| c.values().first())
                {
                    let value = fill(pair.value().unwrap_or_default());
                    query.push(match pair.key() {
                        Some(key) => format!("{key}={value}"),
                        None => value,
                    });
                }
            }
            _ => {}
        }
    }
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    ProbeRequest {
        host,
        request: HttpRequest {
            method,
            path,
            headers,
        },
    }
}

async fn probe(
    probes: &Probes<'_>,
    addr: SocketAddr,
    protocol: String,
    probe: ProbeRequest,
    services: &BTreeMap<String, String>,
) -> Probe {
    let ProbeRequest { host, request } = probe;
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_service: BTreeMap<String, usize> = BTreeMap::new();
    let limit = Duration::from_secs(3);
    for _ in 0..REQUESTS {
        let (status, body, location) = if protocol == "HTTPS" {
            let sent = crate::https::send_request(
                probes.guard,
                addr,
                probes.ca_pem,
                &host,
                &request,
                limit,
            );
            match sent.await {
                Ok(r) => (r.status.to_string(), r.text, r.location),
                Err(err) => (format!("failed: {err}"), String::new(), None),
            }
        } else {
            match http_client::send_request(probes.guard, addr, &host, &request, limit).await {
                Ok(r) => (
                    r.status.to_string(),
                    String::from_utf8_lossy(&r.body).to_string(),
                    r.location,
                ),
                Err(err) => (format!("failed: {err}"), String::new(), None),
            }
        };
        let status = match location {
            Some(to) => format!("{status} -> {to}"),
            None => status,
        };
        *by_status.entry(status).or_default() += 1;
        let address = body
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .and_then(|a| a.rsplit_once(':').map(|(ip, _)| ip.to_string()));
        if let Some(service) = address.and_then(|a| services.get(&a)) {
            *by_service.entry(service.clone()).or_default() += 1;
        }
    }
    let percent = |counts: BTreeMap<String, usize>| {
        counts
            .into_iter()
            .map(|(k, n)| (k, 100.0 * n as f64 / REQUESTS as f64))
            .collect()
    };
    Probe {
        host,
        method: request.method,
        path: request.path,
        headers: request
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect(),
        requests: REQUESTS,
        by_status: percent(by_status),
        by_service: percent(by_service),
    }
}

/// Pod address -> `namespace/service`, from the targets of the bindings `selector` selects (a
/// stack's); and the targets.
async fn targets_by_address(
    client: &Client,
    probes: &Probes<'_>,
    selector: &str,
) -> (BTreeMap<String, String>, Vec<TargetOutcome>) {
    let api: Api<TargetGroupBinding> = Api::all(client.clone());
    let bindings = api
        .list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut services = BTreeMap::new();
    let mut targets = Vec::new();
    for binding in bindings {
        let Some(arn) = binding.spec.target_group_arn.as_deref() else {
            continue;
        };
        let service = format!(
            "{}/{}",
            binding.namespace().unwrap_or_default(),
            binding.spec.service_ref.name
        );
        // Who answered is read from the pod address the answer names: for instance targets
        // (nodes), the Service's endpoints say whose pod it is.
        let slices: Api<EndpointSlice> =
            Api::namespaced(client.clone(), &binding.namespace().unwrap_or_default());
        let of_service = ListParams::default().labels(&format!(
            "kubernetes.io/service-name={}",
            binding.spec.service_ref.name
        ));
        for slice in slices
            .list(&of_service)
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            for address in slice.endpoints.iter().flat_map(|e| &e.addresses) {
                services.insert(address.clone(), service.clone());
            }
        }
        for t in probes.emulator.targets(arn).await.unwrap_or_default() {
            services.insert(t.id.clone(), service.clone());
            targets.push(TargetOutcome {
                id: t.id,
                port: i32::from(t.port),
                state: t.state,
                reason: t.reason,
            });
        }
    }
    (services, targets)
}

/// The Events of every Ingress whose status names the same ALB.
async fn group_events(client: &Client, ingress: &Ingress) -> Vec<String> {
    let hostname = ingress.status_hostname();
    let all: Api<Ingress> = Api::all(client.clone());
    let members = all
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|i| hostname.is_some() && i.status_hostname() == hostname);
    let mut lines = Vec::new();
    for member in members {
        let namespace = member.namespace().unwrap_or_default();
        lines.extend(events_of(client, "Ingress", &namespace, &member.name_any()).await);
    }
    lines
}

/// The Events of one object, `namespace/name: type reason: message`.
async fn events_of(client: &Client, kind: &str, namespace: &str, name: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().fields(&format!(
        "involvedObject.kind={kind},involvedObject.name={name}"
    ));
    api.list(&params)
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            format!(
                "{namespace}/{name}: {} {}: {}",
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default()
            )
        })
        .collect()
}

fn conditions_text(conditions: &[sdk::RuleCondition]) -> String {
    conditions
        .iter()
        .map(|c| {
            let values: Vec<String> = match c.field() {
                Some("host-header") => c.host_header_config().map(|h| h.values().to_vec()),
                Some("path-pattern") => c.path_pattern_config().map(|p| {
                    let regex = p.regex_values();
                    if regex.is_empty() {
                        p.values().to_vec()
                    } else {
                        regex.to_vec()
                    }
                }),
                Some("http-header") => c.http_header_config().map(|h| {
                    let name = h.http_header_name().unwrap_or_default();
                    h.values().iter().map(|v| format!("{name}={v}")).collect()
                }),
                Some("http-request-method") => {
                    c.http_request_method_config().map(|m| m.values().to_vec())
                }
                Some("source-ip") => c.source_ip_config().map(|s| s.values().to_vec()),
                Some("query-string") => c.query_string_config().map(|q| {
                    q.values()
                        .iter()
                        .map(|p| format!("{}={}", p.key().unwrap_or("*"), p.value().unwrap_or("")))
                        .collect()
                }),
                _ => None,
            }
            .unwrap_or_default();
            format!("{} {}", c.field().unwrap_or("?"), values.join(","))
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

fn action_text(actions: &[sdk::Action]) -> String {
    let Some(action) = actions.last() else {
        return "none".into();
    };
    match action.r#type() {
        Some(sdk::ActionTypeEnum::Forward) => {
            let groups = action
                .forward_config()
                .map(|f| f.target_groups().to_vec())
                .unwrap_or_default();
            if groups.len() > 1 {
                let parts: Vec<String> = groups
                    .iter()
                    .map(|g| {
                        let name = g.target_group_arn().unwrap_or_default();
                        let short = name.rsplit('/').nth(1).unwrap_or(name);
                        format!("{short} weight {}", g.weight().unwrap_or(1))
                    })
                    .collect();
                format!("forward to {}", parts.join(", "))
            } else {
                let arn = action.target_group_arn().unwrap_or_default();
                format!("forward to {}", arn.rsplit('/').nth(1).unwrap_or(arn))
            }
        }
        Some(sdk::ActionTypeEnum::Redirect) => {
            let r = action.redirect_config();
            format!(
                "redirect {} to {}:{}",
                r.and_then(|r| r.status_code()).map_or("", |c| c.as_str()),
                r.and_then(|r| r.protocol()).unwrap_or("#{protocol}"),
                r.and_then(|r| r.port()).unwrap_or("#{port}")
            )
        }
        Some(sdk::ActionTypeEnum::FixedResponse) => format!(
            "fixed response {}",
            action
                .fixed_response_config()
                .and_then(|f| f.status_code())
                .unwrap_or("")
        ),
        other => format!("{other:?}"),
    }
}

/// The lines the demo prints under the Ingress.
pub fn text(alb: &AlbOutcome) -> Vec<String> {
    let mut lines = vec![format!("      ALB {}", alb.hostname)];
    let shares = |m: &BTreeMap<String, f64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v:.0}%"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let probe_line = |p: &Probe| {
        let headers: String = p.headers.iter().map(|h| format!(" [{h}]")).collect();
        let mut line = format!(
            "          {} x {} {}{}{headers}: {}",
            p.requests,
            p.method,
            p.host,
            p.path,
            shares(&p.by_status)
        );
        if !p.by_service.is_empty() {
            line.push_str(&format!("; answered by {}", shares(&p.by_service)));
        }
        line
    };
    for listener in &alb.listeners {
        lines.push(format!(
            "      listener {}:{} default: {}",
            listener.protocol, listener.port, listener.default_action
        ));
        for rule in &listener.rules {
            lines.push(format!(
                "        rule {} if {} -> {}",
                rule.priority, rule.conditions, rule.action
            ));
            lines.push(probe_line(&rule.probe));
        }
        lines.push("        another host and path:".to_string());
        lines.push(probe_line(&listener.default_probe));
    }
    for event in &alb.events {
        lines.push(format!("      event {event}"));
    }
    lines
}
