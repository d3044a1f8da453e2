//! Every Service annotation upstream reads (`service.beta.kubernetes.io/...`), as typed values.
//! Absent means "not said": defaults belong to the stack builder, which knows the target type and
//! the traffic policy they depend on. A bad value is an [`AnnotationError`] naming the full key
//! and the value; the Service then changes nothing in AWS until it is fixed.
//!
//! [`AnnotationError`]: crate::annotations::AnnotationError

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use lb_api::TargetType;
use lb_api::keys::service as keys;

use super::selection::parse_target_type;
use crate::annotations::{AnnotationErrors, AnnotationReader};

/// `service.beta.kubernetes.io/actions.<PROTOCOL>-<port>`: a weighted default action.
const ACTIONS: &str = "service.beta.kubernetes.io/actions.";

/// The health check annotations.
pub const HEALTHCHECK_PATH: &str = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path";
pub const HEALTHCHECK_SUCCESS_CODES: &str =
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-success-codes";
pub const HEALTHCHECK_PROTOCOL: &str =
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol";
pub const HEALTHCHECK_PORT: &str = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port";
pub const HEALTHCHECK_HEALTHY_THRESHOLD: &str =
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-healthy-threshold";
pub const HEALTHCHECK_UNHEALTHY_THRESHOLD: &str =
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-unhealthy-threshold";
pub const HEALTHCHECK_TIMEOUT: &str =
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-timeout";
pub const HEALTHCHECK_INTERVAL: &str =
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval";

/// Upstream reads these but this controller does not build them yet: present, they give a
/// Warning "not supported yet" naming them, never a silent ignore.
pub const NOT_SUPPORTED_YET: [&str; 7] = [
    "service.beta.kubernetes.io/aws-load-balancer-inbound-sg-rules-on-private-link-traffic",
    "service.beta.kubernetes.io/aws-load-balancer-enable-prefix-for-ipv6-source-nat",
    "service.beta.kubernetes.io/aws-load-balancer-source-nat-ipv6-prefixes",
    "service.beta.kubernetes.io/aws-load-balancer-minimum-load-balancer-capacity",
    "service.beta.kubernetes.io/aws-load-balancer-enable-icmp-for-path-mtu-discovery",
    "service.beta.kubernetes.io/aws-load-balancer-quic-enabled-ports",
    "service.beta.kubernetes.io/aws-load-balancer-ipv6-addresses",
];

pub use crate::stack::{IpAddressType, Scheme};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendProtocol {
    Tcp,
    Ssl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckProtocol {
    Tcp,
    Http,
    Https,
}

/// A Service port as annotations name it: by number or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheckPort {
    /// The port traffic goes to (upstream's `traffic-port`).
    TrafficPort,
    Number(u16),
    /// A named container port of the targets.
    Name(String),
}

/// Proxy protocol v2: on every target group (`*`), or on the listed ports only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyProtocol {
    All,
    Ports(Vec<PortRef>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthCheckAnnotations {
    pub protocol: Option<HealthCheckProtocol>,
    pub port: Option<HealthCheckPort>,
    pub path: Option<String>,
    pub healthy_threshold: Option<i32>,
    pub unhealthy_threshold: Option<i32>,
    pub timeout_seconds: Option<i32>,
    pub interval_seconds: Option<i32>,
    pub success_codes: Option<String>,
}

/// What a Service's annotations say, typed; None / empty where they say nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAnnotations {
    pub target_type: Option<TargetType>,
    pub name: Option<String>,
    pub scheme: Option<Scheme>,
    pub ip_address_type: Option<IpAddressType>,
    pub subnets: Option<Vec<String>>,
    pub eip_allocations: Option<Vec<String>>,
    pub private_ipv4_addresses: Option<Vec<IpAddr>>,
    pub security_groups: Option<Vec<String>>,
    /// `aws-load-balancer-manage-backend-security-group-rules`: with explicit security groups,
    /// attach the backend one too (and so admit it on the targets).
    pub manage_backend_security_group_rules: Option<bool>,
    /// `aws-load-balancer-security-group-prefix-lists`: managed prefix lists (`pl-...`) the
    /// managed group admits on the listener ports.
    pub prefix_lists: Option<Vec<String>>,
    /// `aws-load-balancer-disable-nlb-sg`: a new NLB gets no security group; its targets admit
    /// it by address.
    pub disable_nlb_security_groups: Option<bool>,
    /// `load-balancer-source-ranges`; `spec.loadBalancerSourceRanges` is the builder's to merge.
    pub source_ranges: Option<Vec<IpNet>>,
    pub load_balancer_attributes: BTreeMap<String, String>,
    /// The older attribute annotations (access logs, cross-zone), mapped to attribute keys.
    pub legacy_attributes: BTreeMap<String, String>,
    pub ssl_certificates: Option<Vec<String>>,
    pub ssl_ports: Option<Vec<PortRef>>,
    pub ssl_negotiation_policy: Option<String>,
    pub alpn_policy: Option<String>,
    pub tcp_udp_listeners: Option<bool>,
    /// `listener-attributes.<PROTOCOL>-<port>`: (protocol, port) -> attributes.
    pub listener_attributes: BTreeMap<(String, u16), BTreeMap<String, String>>,
    pub backend_protocol: Option<BackendProtocol>,
    pub health_check: HealthCheckAnnotations,
    pub target_group_attributes: BTreeMap<String, String>,
    pub proxy_protocol: Option<ProxyProtocol>,
    pub target_node_labels: BTreeMap<String, String>,
    pub multi_cluster_target_group: Option<bool>,
    pub additional_tags: BTreeMap<String, String>,
    /// Keys of [`NOT_SUPPORTED_YET`] present on the Service, full keys.
    pub not_supported_yet: Vec<String>,
}

pub fn parse(
    annotations: &BTreeMap<String, String>,
) -> Result<ServiceAnnotations, AnnotationErrors> {
    let mut reader = AnnotationReader::new(annotations);
    let mut parsed = ServiceAnnotations {
        target_type: reader.one_of(keys::NLB_TARGET_TYPE, "ip, instance", parse_target_type),
        not_supported_yet: not_supported_yet(&reader),
        ..ServiceAnnotations::default()
    };
    frontend(&mut reader, &mut parsed);
    listeners(&mut reader, &mut parsed);
    target_groups(&mut reader, &mut parsed);
    parsed.health_check = health_check(&mut reader);
    reader.finish().map(|()| parsed)
}

/// The keys of [`NOT_SUPPORTED_YET`] on the Service, and every `actions.<PROTOCOL>-<port>` (a
/// weighted default action, which this controller does not build yet), full keys.
fn not_supported_yet(reader: &AnnotationReader) -> Vec<String> {
    let mut keys: Vec<String> = NOT_SUPPORTED_YET
        .iter()
        .filter(|name| reader.present(name))
        .map(|name| name.to_string())
        .collect();
    keys.extend(
        reader
            .family(ACTIONS)
            .into_iter()
            .map(|(suffix, _)| format!("{ACTIONS}{suffix}")),
    );
    keys
}

/// The load balancer itself: name, scheme, addressing, security groups, attributes, tags.
fn frontend(reader: &mut AnnotationReader, parsed: &mut ServiceAnnotations) {
    parsed.name = reader.string("service.beta.kubernetes.io/aws-load-balancer-name");
    if let Some(name) = parsed.name.clone()
        && let Err(problem) = check_load_balancer_name(&name)
    {
        reader.reject(
            "service.beta.kubernetes.io/aws-load-balancer-name",
            &name,
            problem,
        );
        parsed.name = None;
    }
    parsed.scheme = reader.one_of(
        "service.beta.kubernetes.io/aws-load-balancer-scheme",
        "internal, internet-facing",
        |v| match v {
            "internal" => Some(Scheme::Internal),
            "internet-facing" => Some(Scheme::InternetFacing),
            _ => None,
        },
    );
    // The deprecated bool says the same; the newer annotation wins when both are there.
    let internal = reader.bool("service.beta.kubernetes.io/aws-load-balancer-internal");
    if parsed.scheme.is_none()
        && !reader.present("service.beta.kubernetes.io/aws-load-balancer-scheme")
    {
        parsed.scheme = internal.map(|i| {
            if i {
                Scheme::Internal
            } else {
                Scheme::InternetFacing
            }
        });
    }
    parsed.ip_address_type = reader.one_of(
        "service.beta.kubernetes.io/aws-load-balancer-ip-address-type",
        "ipv4, dualstack",
        |v| match v {
            "ipv4" => Some(IpAddressType::Ipv4),
            "dualstack" => Some(IpAddressType::Dualstack),
            _ => None,
        },
    );
    parsed.subnets = reader.string_list("service.beta.kubernetes.io/aws-load-balancer-subnets");
    parsed.eip_allocations =
        reader.string_list("service.beta.kubernetes.io/aws-load-balancer-eip-allocations");
    parsed.private_ipv4_addresses = private_ipv4(reader);
    parsed.security_groups =
        reader.string_list("service.beta.kubernetes.io/aws-load-balancer-security-groups");
    parsed.manage_backend_security_group_rules = reader
        .bool("service.beta.kubernetes.io/aws-load-balancer-manage-backend-security-group-rules");
    parsed.disable_nlb_security_groups =
        reader.bool("service.beta.kubernetes.io/aws-load-balancer-disable-nlb-sg");
    parsed.prefix_lists = reader
        .prefix_lists("service.beta.kubernetes.io/aws-load-balancer-security-group-prefix-lists");
    parsed.source_ranges = source_ranges(reader);
    parsed.load_balancer_attributes = reader
        .string_map("service.beta.kubernetes.io/aws-load-balancer-attributes")
        .unwrap_or_default();
    parsed.legacy_attributes = legacy_attributes(reader);
    parsed.additional_tags = reader
        .string_map("service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags")
        .unwrap_or_default();
}

/// ELB's rule: 1 to 32 letters, digits and hyphens, no hyphen first or last, not `internal-...`.
fn check_load_balancer_name(name: &str) -> Result<(), &'static str> {
    if name.len() > 32 {
        return Err("is longer than 32 characters");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("may hold only letters, digits and hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("may not begin or end with a hyphen");
    }
    if name.starts_with("internal-") {
        return Err("may not begin with \"internal-\"");
    }
    Ok(())
}

fn private_ipv4(reader: &mut AnnotationReader) -> Option<Vec<IpAddr>> {
    let name = "service.beta.kubernetes.io/aws-load-balancer-private-ipv4-addresses";
    let items = reader.string_list(name)?;
    let mut addresses = Vec::new();
    for item in items {
        match item.parse::<IpAddr>() {
            Ok(address @ IpAddr::V4(_)) => addresses.push(address),
            _ => {
                reader.reject(name, &item, "is not an IPv4 address");
                return None;
            }
        }
    }
    Some(addresses)
}

fn source_ranges(reader: &mut AnnotationReader) -> Option<Vec<IpNet>> {
    // The one Service annotation upstream reads without the `aws-` prefix.
    let name = "service.beta.kubernetes.io/load-balancer-source-ranges";
    let items = reader.string_list(name)?;
    let mut ranges = Vec::new();
    for item in items {
        match item.parse::<IpNet>() {
            Ok(range) => ranges.push(range),
            Err(_) => {
                reader.reject(name, &item, "is not a CIDR (such as 10.0.0.0/16)");
                return None;
            }
        }
    }
    Some(ranges)
}

/// Access logs and cross-zone from their deprecated annotations, as load balancer attributes.
fn legacy_attributes(reader: &mut AnnotationReader) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    if let Some(on) = reader.bool("service.beta.kubernetes.io/aws-load-balancer-access-log-enabled")
    {
        attributes.insert("access_logs.s3.enabled".into(), on.to_string());
    }
    if let Some(bucket) =
        reader.string("service.beta.kubernetes.io/aws-load-balancer-access-log-s3-bucket-name")
    {
        attributes.insert("access_logs.s3.bucket".into(), bucket);
    }
    if let Some(prefix) =
        reader.string("service.beta.kubernetes.io/aws-load-balancer-access-log-s3-bucket-prefix")
    {
        attributes.insert("access_logs.s3.prefix".into(), prefix);
    }
    if let Some(on) = reader
        .bool("service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled")
    {
        attributes.insert("load_balancing.cross_zone.enabled".into(), on.to_string());
    }
    attributes
}

fn listeners(reader: &mut AnnotationReader, parsed: &mut ServiceAnnotations) {
    parsed.ssl_certificates =
        reader.string_list("service.beta.kubernetes.io/aws-load-balancer-ssl-cert");
    parsed.ssl_ports = reader
        .string_list("service.beta.kubernetes.io/aws-load-balancer-ssl-ports")
        .map(|ports| ports.iter().map(|p| port_ref(p)).collect());
    parsed.ssl_negotiation_policy =
        reader.string("service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy");
    parsed.alpn_policy = reader.one_of(
        "service.beta.kubernetes.io/aws-load-balancer-alpn-policy",
        "HTTP1Only, HTTP2Only, HTTP2Optional, HTTP2Preferred, None",
        |v| {
            matches!(
                v,
                "HTTP1Only" | "HTTP2Only" | "HTTP2Optional" | "HTTP2Preferred" | "None"
            )
            .then(|| v.to_string())
        },
    );
    parsed.tcp_udp_listeners =
        reader.bool("service.beta.kubernetes.io/aws-load-balancer-enable-tcp-udp-listener");
    let stem = "service.beta.kubernetes.io/aws-load-balancer-listener-attributes.";
    for (suffix, raw) in reader.family(stem) {
        let name = format!("{stem}{suffix}");
        let Some(listener) = listener_of(&suffix) else {
            reader.reject(
                &name,
                &raw,
                "is on a key that does not end in <PROTOCOL>-<port> (such as TCP-80)",
            );
            continue;
        };
        match crate::annotations::parse_map(&raw) {
            Ok(map) => {
                parsed.listener_attributes.insert(listener, map);
            }
            Err(problem) => reader.reject(&name, &raw, problem),
        }
    }
}

/// `TCP-80` -> ("TCP", 80).
fn listener_of(suffix: &str) -> Option<(String, u16)> {
    let (protocol, port) = suffix.split_once('-')?;
    let protocol = protocol.to_ascii_uppercase();
    let known = matches!(
        protocol.as_str(),
        "TCP" | "UDP" | "TCP_UDP" | "TLS" | "QUIC" | "TCP_QUIC"
    );
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    known.then_some((protocol, port))
}

fn port_ref(value: &str) -> PortRef {
    match value.parse::<u16>() {
        Ok(n) => PortRef::Number(n),
        Err(_) => PortRef::Name(value.to_string()),
    }
}

fn target_groups(reader: &mut AnnotationReader, parsed: &mut ServiceAnnotations) {
    parsed.backend_protocol = reader.one_of(
        "service.beta.kubernetes.io/aws-load-balancer-backend-protocol",
        "tcp, ssl",
        |v| match v.to_ascii_lowercase().as_str() {
            "tcp" => Some(BackendProtocol::Tcp),
            "ssl" => Some(BackendProtocol::Ssl),
            _ => None,
        },
    );
    parsed.target_group_attributes = reader
        .string_map("service.beta.kubernetes.io/aws-load-balancer-target-group-attributes")
        .unwrap_or_default();
    parsed.proxy_protocol = proxy_protocol(reader);
    parsed.target_node_labels = reader
        .string_map("service.beta.kubernetes.io/aws-load-balancer-target-node-labels")
        .unwrap_or_default();
    parsed.multi_cluster_target_group =
        reader.bool("service.beta.kubernetes.io/aws-load-balancer-multi-cluster-target-group");
}

/// `proxy-protocol: "*"` wins over `proxy-protocol-per-target-group`, as upstream.
fn proxy_protocol(reader: &mut AnnotationReader) -> Option<ProxyProtocol> {
    let all = "service.beta.kubernetes.io/aws-load-balancer-proxy-protocol";
    if let Some(raw) = reader.raw(all) {
        if raw.trim() == "*" {
            return Some(ProxyProtocol::All);
        }
        reader.reject(
            all,
            raw,
            "is not \"*\" (the only value: proxy protocol v2 on every target group)",
        );
        return None;
    }
    reader
        .string_list("service.beta.kubernetes.io/aws-load-balancer-proxy-protocol-per-target-group")
        .map(|ports| ProxyProtocol::Ports(ports.iter().map(|p| port_ref(p)).collect()))
}

fn health_check(reader: &mut AnnotationReader) -> HealthCheckAnnotations {
    let path = reader.string(HEALTHCHECK_PATH);
    if let Some(path) = &path
        && !path.starts_with('/')
    {
        reader.reject(HEALTHCHECK_PATH, path, "does not begin with '/'");
    }
    let success_codes = reader.string(HEALTHCHECK_SUCCESS_CODES);
    if let Some(codes) = &success_codes
        && !success_codes_valid(codes)
    {
        reader.reject(
            HEALTHCHECK_SUCCESS_CODES,
            codes,
            "is not HTTP codes between 200 and 599, listed (200,202) or as a range (200-399)",
        );
    }
    HealthCheckAnnotations {
        protocol: reader.one_of(HEALTHCHECK_PROTOCOL, "TCP, HTTP, HTTPS", |v| {
            match v.to_ascii_uppercase().as_str() {
                "TCP" => Some(HealthCheckProtocol::Tcp),
                "HTTP" => Some(HealthCheckProtocol::Http),
                "HTTPS" => Some(HealthCheckProtocol::Https),
                _ => None,
            }
        }),
        port: health_check_port(reader, HEALTHCHECK_PORT),
        path: path.filter(|p| p.starts_with('/')),
        healthy_threshold: reader.int(HEALTHCHECK_HEALTHY_THRESHOLD, 2, 10),
        unhealthy_threshold: reader.int(HEALTHCHECK_UNHEALTHY_THRESHOLD, 2, 10),
        timeout_seconds: reader.int(HEALTHCHECK_TIMEOUT, 2, 120),
        interval_seconds: reader.int(HEALTHCHECK_INTERVAL, 5, 300),
        success_codes: success_codes.filter(|c| success_codes_valid(c)),
    }
}

/// `traffic-port`, a port number (1 to 65535), or a named container port.
pub(crate) fn health_check_port(
    reader: &mut AnnotationReader,
    name: &str,
) -> Option<HealthCheckPort> {
    let value = reader.string(name)?;
    match (value.as_str(), port_ref(&value)) {
        ("traffic-port", _) => Some(HealthCheckPort::TrafficPort),
        (_, PortRef::Number(0)) => {
            reader.reject(name, &value, "is not a port between 1 and 65535");
            None
        }
        (_, PortRef::Number(n)) => Some(HealthCheckPort::Number(n)),
        (_, PortRef::Name(n)) if n.chars().all(|c| c.is_ascii_digit()) => {
            reader.reject(name, &value, "is not a port between 1 and 65535");
            None
        }
        (_, PortRef::Name(n)) => Some(HealthCheckPort::Name(n)),
    }
}

/// `200`, `200,202`, `200-399`: every code within 200..=599, a range low to high.
fn success_codes_valid(codes: &str) -> bool {
    let code = |s: &str| {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (200..=599).contains(c))
    };
    if let Some((low, high)) = codes.split_once('-') {
        return matches!((code(low), code(high)), (Some(l), Some(h)) if l <= h);
    }
    codes.split(',').all(|c| code(c).is_some())
}

#[cfg(test)]
#[path = "annotations_tests.rs"]
mod tests;
