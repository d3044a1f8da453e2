//! Every Ingress annotation upstream reads (`alb.ingress.kubernetes.io/...`), as typed values.
//! Absent means "not said"; the group builder applies defaults and merges members. The target
//! group ones ([`TargetGroupAnnotations`]) may also sit on a Service, whose values win (as
//! upstream). A bad value is an [`AnnotationError`] naming the full key and the value: the member
//! is left out of its group until it is fixed.
//!
//! [`AnnotationError`]: crate::annotations::AnnotationError

use std::collections::BTreeMap;

use ipnet::IpNet;
use lb_api::TargetType;

use super::json::{self, AnnotationAction, ListenerProtocol};
use crate::annotations::{AnnotationErrors, AnnotationReader};
use crate::naming::{LOAD_BALANCER_NAME_RULE, is_load_balancer_name};
use crate::service::annotations::{HealthCheckPort, health_check_port};
use crate::service::selection::parse_target_type;
use crate::stack::Condition;

/// The group an Ingress joins, and its place in it.
pub const GROUP_NAME: &str = "alb.ingress.kubernetes.io/group.name";
pub const GROUP_ORDER: &str = "alb.ingress.kubernetes.io/group.order";

/// Upstream reads these but this controller does not build them yet: present, they give a
/// Warning "not supported yet" naming them, never a silent ignore.
pub const NOT_SUPPORTED_YET: [&str; 25] = [
    "alb.ingress.kubernetes.io/auth-type",
    "alb.ingress.kubernetes.io/auth-idp-cognito",
    "alb.ingress.kubernetes.io/auth-idp-oidc",
    "alb.ingress.kubernetes.io/auth-on-unauthenticated-request",
    "alb.ingress.kubernetes.io/auth-scope",
    "alb.ingress.kubernetes.io/auth-session-cookie",
    "alb.ingress.kubernetes.io/auth-session-timeout",
    "alb.ingress.kubernetes.io/jwt-validation",
    "alb.ingress.kubernetes.io/wafv2-acl-arn",
    "alb.ingress.kubernetes.io/wafv2-acl-name",
    "alb.ingress.kubernetes.io/waf-acl-id",
    "alb.ingress.kubernetes.io/web-acl-id",
    "alb.ingress.kubernetes.io/shield-advanced-protection",
    "alb.ingress.kubernetes.io/mutual-authentication",
    "alb.ingress.kubernetes.io/enable-frontend-nlb",
    "alb.ingress.kubernetes.io/customer-owned-ipv4-pool",
    "alb.ingress.kubernetes.io/minimum-load-balancer-capacity",
    "alb.ingress.kubernetes.io/ipam-ipv4-pool-id",
    "alb.ingress.kubernetes.io/create-acm-cert",
    "alb.ingress.kubernetes.io/acm-pca-arn",
    "alb.ingress.kubernetes.io/dry-run-plan",
    "alb.ingress.kubernetes.io/frontend-nlb-scheme",
    "alb.ingress.kubernetes.io/frontend-nlb-subnets",
    "alb.ingress.kubernetes.io/frontend-nlb-security-groups",
    "alb.ingress.kubernetes.io/frontend-nlb-listener-port-mapping",
];

/// Families (`<stem><suffix>`) not supported yet.
const NOT_SUPPORTED_YET_FAMILIES: [&str; 4] = [
    "alb.ingress.kubernetes.io/transforms.",
    "alb.ingress.kubernetes.io/target-control-port.",
    "alb.ingress.kubernetes.io/frontend-nlb-healthcheck-",
    "alb.ingress.kubernetes.io/frontend-nlb-",
];

pub use crate::stack::{IpAddressType, ProtocolVersion, Scheme};

/// What decides a target group; on the Ingress, or on the Service (which wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetGroupAnnotations {
    pub target_type: Option<TargetType>,
    pub backend_protocol: Option<ListenerProtocol>,
    pub protocol_version: Option<ProtocolVersion>,
    pub attributes: BTreeMap<String, String>,
    pub health_check_port: Option<HealthCheckPort>,
    pub health_check_protocol: Option<ListenerProtocol>,
    pub health_check_path: Option<String>,
    pub interval_seconds: Option<i32>,
    pub timeout_seconds: Option<i32>,
    pub healthy_threshold: Option<i32>,
    pub unhealthy_threshold: Option<i32>,
    pub success_codes: Option<String>,
    pub node_labels: BTreeMap<String, String>,
    pub multi_cluster: Option<bool>,
    /// `tags`: on the Service they win over the Ingress's for its target groups.
    pub tags: BTreeMap<String, String>,
}

impl TargetGroupAnnotations {
    /// `self` (a Service's) over `base` (the Ingress's): each value said here wins; maps merge
    /// key by key.
    pub fn over(&self, base: &Self) -> Self {
        let mut attributes = base.attributes.clone();
        attributes.extend(self.attributes.clone());
        let mut node_labels = base.node_labels.clone();
        node_labels.extend(self.node_labels.clone());
        let mut tags = base.tags.clone();
        tags.extend(self.tags.clone());
        Self {
            target_type: self.target_type.or(base.target_type),
            backend_protocol: self.backend_protocol.or(base.backend_protocol),
            protocol_version: self.protocol_version.or(base.protocol_version),
            attributes,
            health_check_port: self
                .health_check_port
                .clone()
                .or(base.health_check_port.clone()),
            health_check_protocol: self.health_check_protocol.or(base.health_check_protocol),
            health_check_path: self
                .health_check_path
                .clone()
                .or(base.health_check_path.clone()),
            interval_seconds: self.interval_seconds.or(base.interval_seconds),
            timeout_seconds: self.timeout_seconds.or(base.timeout_seconds),
            healthy_threshold: self.healthy_threshold.or(base.healthy_threshold),
            unhealthy_threshold: self.unhealthy_threshold.or(base.unhealthy_threshold),
            success_codes: self.success_codes.clone().or(base.success_codes.clone()),
            node_labels,
            multi_cluster: self.multi_cluster.or(base.multi_cluster),
            tags,
        }
    }
}

/// What one Ingress's annotations say, typed; None / empty where they say nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngressAnnotations {
    pub group_name: Option<String>,
    pub group_order: Option<i32>,
    pub load_balancer_name: Option<String>,
    pub scheme: Option<Scheme>,
    pub ip_address_type: Option<IpAddressType>,
    pub subnets: Option<Vec<String>>,
    pub security_groups: Option<Vec<String>>,
    /// `manage-backend-security-group-rules`: with explicit security groups, attach the backend
    /// one too (and so admit it on the targets).
    pub manage_backend_security_group_rules: Option<bool>,
    pub inbound_cidrs: Option<Vec<IpNet>>,
    /// `security-group-prefix-lists`: managed prefix lists (`pl-...`) the managed group admits.
    pub prefix_lists: Option<Vec<String>>,
    pub load_balancer_attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub listen_ports: Option<Vec<(ListenerProtocol, u16)>>,
    pub certificate_arns: Option<Vec<String>>,
    pub ssl_policy: Option<String>,
    pub ssl_redirect: Option<u16>,
    /// `listener-attributes.<PROTOCOL>-<port>`: (protocol, port) -> attributes.
    pub listener_attributes: BTreeMap<(ListenerProtocol, u16), BTreeMap<String, String>>,
    pub use_regex_path_match: bool,
    /// `actions.<name>` by name.
    pub actions: BTreeMap<String, AnnotationAction>,
    /// `conditions.<name>` by name.
    pub conditions: BTreeMap<String, Vec<Condition>>,
    pub target_group: TargetGroupAnnotations,
    /// Said, but not stopping the member: each names the annotation and the value.
    pub warnings: Vec<String>,
}

pub fn parse(
    annotations: &BTreeMap<String, String>,
) -> Result<IngressAnnotations, AnnotationErrors> {
    let mut reader = AnnotationReader::new(annotations);
    let mut parsed = IngressAnnotations {
        group_name: group_name(&mut reader),
        group_order: reader.int(GROUP_ORDER, -1000, 1000),
        load_balancer_name: load_balancer_name(&mut reader),
        use_regex_path_match: reader
            .bool("alb.ingress.kubernetes.io/use-regex-path-match")
            .unwrap_or(false),
        ..IngressAnnotations::default()
    };
    frontend(&mut reader, &mut parsed);
    listeners(&mut reader, &mut parsed);
    rules(&mut reader, &mut parsed);
    let (mut target_group, warnings) = target_group(&mut reader);
    target_group.tags = parsed.tags.clone();
    parsed.target_group = target_group;
    parsed.warnings = warnings;
    parsed.warnings.extend(not_supported_yet(&reader));
    reader.finish()?;
    Ok(parsed)
}

/// The target group annotations of a Service (the `alb.ingress.kubernetes.io/` ones), and the
/// warnings they give: those not supported yet (the `auth-*` ones upstream also reads on a
/// Service among them) are named as on an Ingress.
pub fn parse_service(
    annotations: &BTreeMap<String, String>,
) -> Result<(TargetGroupAnnotations, Vec<String>), AnnotationErrors> {
    let mut reader = AnnotationReader::new(annotations);
    let (mut parsed, mut warnings) = target_group(&mut reader);
    parsed.tags = reader
        .string_map("alb.ingress.kubernetes.io/tags")
        .unwrap_or_default();
    warnings.extend(not_supported_yet(&reader));
    reader.finish()?;
    Ok((parsed, warnings))
}

/// What [`is_group_name`] asks, as a phrase.
pub const GROUP_NAME_RULE: &str = "a group name (lower-case letters, digits, '-' and '.', at most 63, starting and ending with a letter or digit)";

/// Upstream's rule: lower-case letters, digits, `-` and `.`, starting and ending with a letter or
/// digit, at most 63 characters. The group's finalizer carries it: Kubernetes takes no other.
pub fn is_group_name(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && edge(name.chars().next())
        && edge(name.chars().last())
}

fn group_name(reader: &mut AnnotationReader) -> Option<String> {
    let name = reader.string(GROUP_NAME)?;
    if !is_group_name(&name) {
        reader.reject(GROUP_NAME, &name, format!("is not {GROUP_NAME_RULE}"));
        return None;
    }
    Some(name)
}

fn load_balancer_name(reader: &mut AnnotationReader) -> Option<String> {
    const KEY: &str = "alb.ingress.kubernetes.io/load-balancer-name";
    let name = reader.string(KEY)?;
    if !is_load_balancer_name(&name) {
        reader.reject(KEY, &name, format!("is not {LOAD_BALANCER_NAME_RULE}"));
        return None;
    }
    Some(name)
}

fn frontend(reader: &mut AnnotationReader, parsed: &mut IngressAnnotations) {
    parsed.scheme = reader.one_of(
        "alb.ingress.kubernetes.io/scheme",
        "internal, internet-facing",
        Scheme::parse,
    );
    parsed.ip_address_type = reader.one_of(
        "alb.ingress.kubernetes.io/ip-address-type",
        "ipv4, dualstack, dualstack-without-public-ipv4",
        |v| match v {
            "ipv4" => Some(IpAddressType::Ipv4),
            "dualstack" => Some(IpAddressType::Dualstack),
            "dualstack-without-public-ipv4" => Some(IpAddressType::DualstackWithoutPublicIpv4),
            _ => None,
        },
    );
    parsed.subnets = reader.string_list("alb.ingress.kubernetes.io/subnets");
    parsed.security_groups = reader.string_list("alb.ingress.kubernetes.io/security-groups");
    parsed.manage_backend_security_group_rules =
        reader.bool("alb.ingress.kubernetes.io/manage-backend-security-group-rules");
    parsed.inbound_cidrs = reader
        .string_list("alb.ingress.kubernetes.io/inbound-cidrs")
        .and_then(|cidrs| {
            let parsed: Result<Vec<IpNet>, _> = cidrs.iter().map(|c| c.parse::<IpNet>()).collect();
            match parsed {
                Ok(nets) => Some(nets),
                Err(_) => {
                    let raw = reader
                        .raw("alb.ingress.kubernetes.io/inbound-cidrs")
                        .unwrap_or_default()
                        .to_string();
                    reader.reject(
                        "alb.ingress.kubernetes.io/inbound-cidrs",
                        &raw,
                        "is not a list of CIDRs",
                    );
                    None
                }
            }
        });
    parsed.prefix_lists =
        reader.prefix_lists("alb.ingress.kubernetes.io/security-group-prefix-lists");
    parsed.load_balancer_attributes = reader
        .string_map("alb.ingress.kubernetes.io/load-balancer-attributes")
        .unwrap_or_default();
    parsed.tags = reader
        .string_map("alb.ingress.kubernetes.io/tags")
        .unwrap_or_default();
}

fn listeners(reader: &mut AnnotationReader, parsed: &mut IngressAnnotations) {
    if let Some(raw) = reader.raw("alb.ingress.kubernetes.io/listen-ports") {
        match json::listen_ports(raw) {
            Ok(ports) => parsed.listen_ports = Some(ports),
            Err(problem) => reader.reject("alb.ingress.kubernetes.io/listen-ports", raw, problem),
        }
    }
    parsed.certificate_arns = reader.string_list("alb.ingress.kubernetes.io/certificate-arn");
    parsed.ssl_policy = reader.string("alb.ingress.kubernetes.io/ssl-policy");
    parsed.ssl_redirect = reader.int("alb.ingress.kubernetes.io/ssl-redirect", 1, 65535);
    for (suffix, raw) in reader.family("alb.ingress.kubernetes.io/listener-attributes.") {
        let name = format!("alb.ingress.kubernetes.io/listener-attributes.{suffix}");
        let key = suffix.split_once('-').and_then(|(protocol, port)| {
            let protocol = match protocol {
                "HTTP" => ListenerProtocol::Http,
                "HTTPS" => ListenerProtocol::Https,
                _ => return None,
            };
            Some((protocol, port.parse::<u16>().ok()?))
        });
        let Some(key) = key else {
            reader.reject(&name, &raw, "is not keyed HTTP-<port> or HTTPS-<port>");
            continue;
        };
        if let Some(map) = reader.string_map(&name) {
            parsed.listener_attributes.insert(key, map);
        }
    }
}

fn rules(reader: &mut AnnotationReader, parsed: &mut IngressAnnotations) {
    for (name, raw) in reader.family("alb.ingress.kubernetes.io/actions.") {
        match json::action(&raw) {
            Ok(action) => {
                parsed.actions.insert(name, action);
            }
            Err(problem) => reader.reject(
                &format!("alb.ingress.kubernetes.io/actions.{name}"),
                &raw,
                problem,
            ),
        }
    }
    for (name, raw) in reader.family("alb.ingress.kubernetes.io/conditions.") {
        match json::conditions(&raw) {
            Ok(conditions) => {
                parsed.conditions.insert(name, conditions);
            }
            Err(problem) => reader.reject(
                &format!("alb.ingress.kubernetes.io/conditions.{name}"),
                &raw,
                problem,
            ),
        }
    }
}

/// ALB's health check interval is 5-300 s. Below 5 (the seeds' `'3'`) is raised to 5 with a
/// warning rather than refused: the Ingress works, and the user hears what it got.
const MIN_INTERVAL: i32 = 5;

fn target_group(reader: &mut AnnotationReader) -> (TargetGroupAnnotations, Vec<String>) {
    let mut warnings = Vec::new();
    let http = |v: &str| match v {
        "HTTP" => Some(ListenerProtocol::Http),
        "HTTPS" => Some(ListenerProtocol::Https),
        _ => None,
    };
    let interval_seconds = interval(reader, &mut warnings);
    let success_codes = success_codes(reader);
    let annotations = TargetGroupAnnotations {
        target_type: reader.one_of(
            "alb.ingress.kubernetes.io/target-type",
            "ip, instance",
            parse_target_type,
        ),
        backend_protocol: reader.one_of(
            "alb.ingress.kubernetes.io/backend-protocol",
            "HTTP, HTTPS",
            http,
        ),
        protocol_version: reader.one_of(
            "alb.ingress.kubernetes.io/backend-protocol-version",
            "HTTP1, HTTP2, GRPC",
            |v| match v {
                "HTTP1" => Some(ProtocolVersion::Http1),
                "HTTP2" => Some(ProtocolVersion::Http2),
                "GRPC" => Some(ProtocolVersion::Grpc),
                _ => None,
            },
        ),
        attributes: reader
            .string_map("alb.ingress.kubernetes.io/target-group-attributes")
            .unwrap_or_default(),
        health_check_port: health_check_port(reader, "alb.ingress.kubernetes.io/healthcheck-port"),
        health_check_protocol: reader.one_of(
            "alb.ingress.kubernetes.io/healthcheck-protocol",
            "HTTP, HTTPS",
            http,
        ),
        health_check_path: reader.string("alb.ingress.kubernetes.io/healthcheck-path"),
        interval_seconds,
        timeout_seconds: reader.int(
            "alb.ingress.kubernetes.io/healthcheck-timeout-seconds",
            2,
            120,
        ),
        healthy_threshold: reader.int("alb.ingress.kubernetes.io/healthy-threshold-count", 2, 10),
        unhealthy_threshold: reader.int(
            "alb.ingress.kubernetes.io/unhealthy-threshold-count",
            2,
            10,
        ),
        success_codes,
        node_labels: reader
            .string_map("alb.ingress.kubernetes.io/target-node-labels")
            .unwrap_or_default(),
        multi_cluster: reader.bool("alb.ingress.kubernetes.io/multi-cluster-target-group"),
        // The Ingress's `tags` are read with its frontend ones (see `parse`); a Service's here.
        tags: BTreeMap::new(),
    };
    (annotations, warnings)
}

/// The health check interval; below ALB's minimum it is raised to it, with a warning.
fn interval(reader: &mut AnnotationReader, warnings: &mut Vec<String>) -> Option<i32> {
    const KEY: &str = "alb.ingress.kubernetes.io/healthcheck-interval-seconds";
    let seconds = reader.int(KEY, 1, 300)?;
    if seconds < MIN_INTERVAL {
        warnings.push(format!(
            "annotation {KEY}: \"{seconds}\" is below ALB's minimum health check interval; {MIN_INTERVAL} is used"
        ));
        return Some(MIN_INTERVAL);
    }
    Some(seconds)
}

/// The health check's success codes, when they are valid ones.
fn success_codes(reader: &mut AnnotationReader) -> Option<String> {
    const KEY: &str = "alb.ingress.kubernetes.io/success-codes";
    let codes = reader.string(KEY)?;
    if !success_codes_valid(&codes) {
        let problem = "is not a list or range of status codes (HTTP 200-499, gRPC 0-99)";
        reader.reject(KEY, &codes, problem);
        return None;
    }
    Some(codes)
}

/// `200`, `200,202`, `200-299` (HTTP, 200-499) or gRPC codes (0-99), as ALB's matcher takes them.
fn success_codes_valid(codes: &str) -> bool {
    let code = |s: &str| s.trim().parse::<u16>().ok().filter(|c| *c <= 499);
    let part = |p: &str| match p.split_once('-') {
        Some((low, high)) => matches!((code(low), code(high)), (Some(l), Some(h)) if l <= h),
        None => code(p).is_some(),
    };
    !codes.trim().is_empty() && codes.split(',').all(part)
}

fn not_supported_yet(reader: &AnnotationReader) -> Vec<String> {
    let mut keys: Vec<String> = NOT_SUPPORTED_YET
        .iter()
        .filter(|name| reader.present(name))
        // `auth-type: none` is the default said out loud.
        .filter(|name| {
            !(**name == "alb.ingress.kubernetes.io/auth-type"
                && reader.raw(name).map(str::trim) == Some("none"))
        })
        .map(|name| name.to_string())
        .collect();
    for stem in NOT_SUPPORTED_YET_FAMILIES {
        for (suffix, _) in reader.family(stem) {
            let key = format!("{stem}{suffix}");
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys.sort();
    keys.into_iter()
        .map(|key| format!("annotation {key} is not supported yet: it has no effect"))
        .collect()
}

#[cfg(test)]
#[path = "annotations_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "annotations_property_tests.rs"]
pub(crate) mod property_tests;
