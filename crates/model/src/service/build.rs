//! A Service and its typed annotations -> the desired NLB [`Stack`], with upstream's defaults.
//!
//! One listener and one target group per Service port (a port number used by both TCP and UDP
//! becomes one `TCP_UDP` listener); TLS on the `ssl-ports` when `ssl-cert` is given; health checks
//! with the NLB defaults (TCP on the traffic port; for instance targets of an
//! `externalTrafficPolicy: Local` Service, HTTP `/healthz` on the health-check node port, as
//! upstream); subnets given or discovered (one per zone); the listener ports opened to the source
//! ranges in a managed security group unless explicit groups are given.

use std::collections::BTreeMap;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use lb_api::TargetType;

use super::annotations::{BackendProtocol, ServiceAnnotations};
use super::subnets::{Subnet, choose_subnets};
use crate::naming::{self, ServiceName, ServiceTargetGroup};
use crate::service::annotations::{IpAddressType, PortRef, ProxyProtocol, Scheme};
use crate::service::health::health_check;
use crate::stack::{
    Action, Binding, IngressRule, Listener, LoadBalancer, LoadBalancerKind, ManagedSecurityGroup,
    NetworkPort, Stack, StackKind, SubnetMapping, TargetGroup, tags,
};

/// What the cluster gives every stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `--cluster-name`.
    pub cluster: String,
    /// `--default-tags`.
    pub default_tags: BTreeMap<String, String>,
    /// TLS listeners without `ssl-negotiation-policy`.
    pub default_ssl_policy: String,
    /// `--enable-backend-security-group`, `--enable-manage-backend-security-group-rules`.
    pub security_groups: crate::stack::SecurityGroupSettings,
    /// `--external-managed-tags`: tag keys the controller leaves to someone else.
    pub external_managed_tags: Vec<String>,
    /// TCP and UDP on one port number make one `TCP_UDP` listener unless the Service says
    /// otherwise (`aws-load-balancer-enable-tcp-udp-listener`); upstream's gate
    /// `EnableTCPUDPListener`, off by default.
    pub tcp_udp_listeners: bool,
}

/// The stack, and what the user should hear about although it does not stop the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub stack: Stack,
    /// Each names the annotation and the value: an annotation not supported yet, or a port list
    /// naming a port the Service does not have (ignored, as upstream does, but said).
    pub warnings: Vec<String>,
    /// Defaults adapted to what the user set (a health-check timeout that would not fit the
    /// interval given), each naming the default and why.
    pub adapted: Vec<String>,
}

/// Why a Service's stack cannot be built; each names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("the Service has no ports")]
    NoPorts,
    /// ELB refuses a health check that times out after its next one is due.
    #[error(
        "annotations {PREFIX}aws-load-balancer-healthcheck-timeout ({timeout}s) and {PREFIX}aws-load-balancer-healthcheck-interval ({interval}s): the timeout must not exceed the interval"
    )]
    HealthCheckTimeout { timeout: i32, interval: i32 },
    #[error("Service port {port} has no nodePort, which instance targets need")]
    NoNodePort { port: i32 },
    #[error(
        "Service port {port} has protocol {protocol}, which an NLB does not carry (TCP or UDP)"
    )]
    UnsupportedProtocol { port: i32, protocol: String },
    #[error("annotation {annotation}: {value:?} names no port of the Service")]
    UnknownPort { annotation: String, value: String },
    #[error(
        "Service ports {port}/TCP and {port}/UDP share a port number: set annotation {PREFIX}aws-load-balancer-enable-tcp-udp-listener: \"true\" for one TCP_UDP listener, or give them different ports"
    )]
    SharedPortNumber { port: i32 },
    #[error(
        "spec.ipFamilies has IPv6, which needs a dualstack load balancer: set annotation {PREFIX}aws-load-balancer-ip-address-type: dualstack"
    )]
    Ipv6NeedsDualstack,
    #[error(
        "annotation {PREFIX}aws-load-balancer-manage-backend-security-group-rules: \"true\" needs the backend security group, which --enable-backend-security-group=false turns off"
    )]
    BackendSecurityGroupDisabled,
    #[error(
        "annotation {annotation}: {count} value(s) for {subnets} subnet(s); give one per subnet"
    )]
    NotOnePerSubnet {
        annotation: String,
        count: usize,
        subnets: usize,
    },
    #[error("{0}")]
    Subnets(String),
}

const PREFIX: &str = lb_api::keys::service::PREFIX;

pub fn build(
    service: &Service,
    annotations: &ServiceAnnotations,
    target_type: TargetType,
    settings: &ClusterSettings,
    subnets: &[Subnet],
) -> Result<Built, BuildError> {
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let name = service.metadata.name.clone().unwrap_or_default();
    let uid = service.metadata.uid.clone().unwrap_or_default();
    let spec = service.spec.clone().unwrap_or_default();
    let ports = spec.ports.clone().unwrap_or_default();
    if ports.is_empty() {
        return Err(BuildError::NoPorts);
    }
    let identity = ServiceName {
        namespace: &namespace,
        name: &name,
        uid: &uid,
    };
    let stack_id = format!("{namespace}/{name}");
    let scheme = match annotations.scheme.unwrap_or(Scheme::Internal) {
        Scheme::Internal => "internal",
        Scheme::InternetFacing => "internet-facing",
    };
    let ip_address_type = match annotations.ip_address_type {
        Some(IpAddressType::Dualstack) => "dualstack",
        _ => "ipv4",
    };
    let backend_security_group = backend_security_group(annotations, settings)?;
    let base_tags = |resource: &str| ownership_tags(settings, annotations, &stack_id, resource);
    let context = PortContext {
        service,
        annotations,
        target_type,
        settings,
        identity,
        target_ip_address_type: target_ip_address_type(service, ip_address_type)?,
        // The targets admit the backend group, or without one the managed group (upstream's).
        networking: backend_security_group || annotations.security_groups.is_none(),
    };
    let warnings = warnings(annotations, &ports);
    let PortResources {
        target_groups,
        listeners,
        bindings,
        adapted,
    } = context.port_resources(&ports, &base_tags)?;
    let lb_name = annotations
        .name
        .clone()
        .unwrap_or_else(|| naming::service_load_balancer(&settings.cluster, identity, scheme));
    let mut attributes = annotations.load_balancer_attributes.clone();
    // The older specific annotations win over the attributes annotation, as upstream.
    attributes.extend(annotations.legacy_attributes.clone());
    let managed_security_group = match &annotations.security_groups {
        Some(_) => None,
        None => Some(ManagedSecurityGroup {
            name: naming::service_security_group(&settings.cluster, identity),
            ingress: ingress_rules(
                &listeners,
                &source_ranges(&spec, annotations, ip_address_type),
            ),
            tags: base_tags(tags::MANAGED_SECURITY_GROUP),
        }),
    };
    let (subnets, subnets_problem) =
        match subnet_mappings(annotations, subnets, scheme, &settings.cluster) {
            Ok(subnets) => (subnets, None),
            // Discovery found nothing: fine for an NLB that exists (it keeps its subnets).
            Err(BuildError::Subnets(problem)) if annotations.subnets.is_none() => {
                (Vec::new(), Some(problem))
            }
            Err(error) => return Err(error),
        };
    let stack = Stack {
        id: stack_id.clone(),
        kind: StackKind::Service,
        load_balancer: LoadBalancer {
            name: lb_name,
            kind: LoadBalancerKind::Network,
            scheme: scheme.into(),
            ip_address_type: ip_address_type.into(),
            subnets,
            subnets_named: annotations.subnets.is_some(),
            subnets_problem,
            security_groups: annotations.security_groups.clone().unwrap_or_default(),
            attributes,
            tags: base_tags(tags::LOAD_BALANCER),
        },
        managed_security_group,
        backend_security_group,
        listeners,
        target_groups,
        bindings,
        external_managed_tags: settings.external_managed_tags.clone(),
        held_members: Vec::new(),
    };
    Ok(Built {
        stack,
        warnings,
        adapted,
    })
}

/// Whether the load balancer gets the cluster's backend security group: always with a managed
/// frontend group (unless `--enable-backend-security-group=false`); with explicit groups only
/// when the backend rules are to be managed (annotation, else the flag).
fn backend_security_group(
    annotations: &ServiceAnnotations,
    settings: &ClusterSettings,
) -> Result<bool, BuildError> {
    let groups = &settings.security_groups;
    if annotations.security_groups.is_none() {
        return Ok(groups.backend);
    }
    let manage = annotations
        .manage_backend_security_group_rules
        .unwrap_or(groups.manage_backend_rules);
    match (manage, groups.backend) {
        (true, false) => Err(BuildError::BackendSecurityGroupDisabled),
        (manage, _) => Ok(manage),
    }
}

/// The target groups' address type: `ipv6` when the Service has the IPv6 family (which needs a
/// dualstack load balancer), else `ipv4`. ELB takes no `dualstack` target group.
fn target_ip_address_type(
    service: &Service,
    load_balancer: &str,
) -> Result<&'static str, BuildError> {
    let ipv6 = service
        .spec
        .as_ref()
        .and_then(|s| s.ip_families.as_ref())
        .is_some_and(|families| families.iter().any(|f| f == "IPv6"));
    match (ipv6, load_balancer) {
        (false, _) => Ok("ipv4"),
        (true, "dualstack") => Ok("ipv6"),
        (true, _) => Err(BuildError::Ipv6NeedsDualstack),
    }
}

/// The annotation's tags, the cluster's default tags over them (upstream's order: `--default-tags`
/// win), and the ownership tags (which always win).
fn ownership_tags(
    settings: &ClusterSettings,
    annotations: &ServiceAnnotations,
    stack_id: &str,
    resource: &str,
) -> BTreeMap<String, String> {
    let mut t = annotations.additional_tags.clone();
    t.extend(settings.default_tags.clone());
    t.insert(tags::CLUSTER.into(), settings.cluster.clone());
    t.insert(tags::SERVICE_STACK.into(), stack_id.to_string());
    t.insert(tags::SERVICE_RESOURCE.into(), resource.to_string());
    t
}

fn warnings(annotations: &ServiceAnnotations, ports: &[ServicePort]) -> Vec<String> {
    let mut warnings = port_list_warnings(annotations, ports);
    warnings.extend(
        annotations
            .not_supported_yet
            .iter()
            .map(|key| format!("annotation {key} is not supported yet: it has no effect")),
    );
    warnings
}

/// The listeners' (port, protocol). TCP and UDP on one port number make one TCP_UDP listener when
/// `tcp_udp` (the annotation, else the cluster's default); otherwise they are refused by name
/// (ELB would refuse the second listener on the port).
fn listener_ports(
    ports: &[ServicePort],
    tcp_udp: bool,
) -> Result<Vec<(&ServicePort, String)>, BuildError> {
    let mut out: Vec<(&ServicePort, String)> = Vec::new();
    for port in ports {
        let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".into());
        if protocol != "TCP" && protocol != "UDP" {
            return Err(BuildError::UnsupportedProtocol {
                port: port.port,
                protocol,
            });
        }
        match out.iter_mut().find(|(p, _)| p.port == port.port) {
            Some((_, existing)) if *existing != protocol && tcp_udp => {
                *existing = "TCP_UDP".into();
            }
            Some((_, existing)) if *existing != protocol => {
                return Err(BuildError::SharedPortNumber { port: port.port });
            }
            Some(_) => {}
            None => out.push((port, protocol)),
        }
    }
    Ok(out)
}

/// Ports named by `ssl-ports` and `proxy-protocol-per-target-group` that the Service lacks.
fn port_list_warnings(annotations: &ServiceAnnotations, ports: &[ServicePort]) -> Vec<String> {
    let lists = [
        (
            "aws-load-balancer-ssl-ports",
            annotations.ssl_ports.as_ref(),
        ),
        (
            "aws-load-balancer-proxy-protocol-per-target-group",
            match &annotations.proxy_protocol {
                Some(ProxyProtocol::Ports(p)) => Some(p),
                _ => None,
            },
        ),
    ];
    let mut warnings = Vec::new();
    for (annotation, refs) in lists {
        for port_ref in refs.into_iter().flatten() {
            if !ports.iter().any(|p| names(port_ref, p)) {
                let value = match port_ref {
                    PortRef::Number(n) => n.to_string(),
                    PortRef::Name(n) => n.clone(),
                };
                warnings.push(format!(
                    "annotation {PREFIX}{annotation}: {value:?} names no port of the Service; ignored"
                ));
            }
        }
    }
    warnings
}

fn names(port_ref: &PortRef, port: &ServicePort) -> bool {
    match port_ref {
        PortRef::Number(n) => i32::from(*n) == port.port,
        PortRef::Name(n) => port.name.as_deref() == Some(n.as_str()),
    }
}

/// The names of the TargetGroupBindings [`build`] makes for `service`, with the Service port
/// each binds: the pod webhook gives pods their readiness gates before the bindings exist.
/// Subnets play no part in them.
pub fn bindings(
    service: &Service,
    annotations: &ServiceAnnotations,
    target_type: TargetType,
    settings: &ClusterSettings,
) -> Result<Vec<Binding>, BuildError> {
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let name = service.metadata.name.clone().unwrap_or_default();
    let uid = service.metadata.uid.clone().unwrap_or_default();
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let ip_address_type = match annotations.ip_address_type {
        Some(IpAddressType::Dualstack) => "dualstack",
        _ => "ipv4",
    };
    let context = PortContext {
        service,
        annotations,
        target_type,
        settings,
        identity: ServiceName {
            namespace: &namespace,
            name: &name,
            uid: &uid,
        },
        target_ip_address_type: target_ip_address_type(service, ip_address_type)?,
        networking: false,
    };
    let resources = context.port_resources(&ports, &|_| BTreeMap::new())?;
    Ok(resources.bindings)
}

struct PortResources {
    target_groups: Vec<TargetGroup>,
    listeners: Vec<Listener>,
    bindings: Vec<Binding>,
    adapted: Vec<String>,
}

/// What building one port's listener, target group and binding needs.
struct PortContext<'a> {
    service: &'a Service,
    annotations: &'a ServiceAnnotations,
    target_type: TargetType,
    settings: &'a ClusterSettings,
    identity: ServiceName<'a>,
    /// `ipv4` or `ipv6`.
    target_ip_address_type: &'static str,
    /// The bindings admit the load balancer's source group (its backend or managed group).
    networking: bool,
}

impl PortContext<'_> {
    /// One listener, target group and binding per listener port (TCP and UDP on one port: one
    /// when asked). `tags` gives the tags of a resource id.
    fn port_resources(
        &self,
        ports: &[ServicePort],
        tags: &dyn Fn(&str) -> BTreeMap<String, String>,
    ) -> Result<PortResources, BuildError> {
        let mut resources = PortResources {
            target_groups: Vec::new(),
            listeners: Vec::new(),
            bindings: Vec::new(),
            adapted: Vec::new(),
        };
        let tcp_udp = self
            .annotations
            .tcp_udp_listeners
            .unwrap_or(self.settings.tcp_udp_listeners);
        for (port, protocol) in listener_ports(ports, tcp_udp)? {
            let (tg, adapted) = self.target_group(port, &protocol, tags)?;
            resources.adapted.extend(adapted);
            resources
                .listeners
                .push(self.listener(port, &protocol, &tg.resource_id, tags));
            resources.bindings.push(self.binding(port, &tg));
            resources.target_groups.push(tg);
        }
        resources.adapted.dedup();
        Ok(resources)
    }

    fn tls(&self, port: &ServicePort) -> bool {
        self.annotations.ssl_certificates.is_some()
            && self
                .annotations
                .ssl_ports
                .as_ref()
                .is_none_or(|refs| refs.iter().any(|r| names(r, port)))
    }

    /// The port's target group, and the defaults its health check adapted.
    fn target_group(
        &self,
        port: &ServicePort,
        listener_protocol: &str,
        tags: &dyn Fn(&str) -> BTreeMap<String, String>,
    ) -> Result<(TargetGroup, Option<String>), BuildError> {
        let protocol = match listener_protocol {
            "TCP" if self.tls(port) => match self.annotations.backend_protocol {
                Some(BackendProtocol::Ssl) => "TLS",
                _ => "TCP",
            },
            other => other,
        };
        let target_port = match self.target_type {
            TargetType::Instance => port
                .node_port
                .ok_or(BuildError::NoNodePort { port: port.port })?,
            TargetType::Ip => match &port.target_port {
                Some(IntOrString::Int(n)) => *n,
                // A named target port can differ per pod; the group's port is not in the data
                // path (targets register with their own), so upstream writes 1.
                Some(IntOrString::String(_)) => 1,
                None => port.port,
            },
        };
        let target_port = u16::try_from(target_port).unwrap_or(u16::MAX);
        let resource_id = format!(
            "{}/{}:{}",
            self.identity.namespace, self.identity.name, port.port
        );
        let (health_check, adapted) = health_check(
            self.service,
            &self.annotations.health_check,
            self.target_type,
        )?;
        let name = naming::service_target_group(&ServiceTargetGroup {
            cluster: &self.settings.cluster,
            service: self.identity,
            service_port: port.port,
            port: target_port,
            target_type: self.target_type.as_str(),
            protocol,
            health_check_protocol: &health_check.protocol,
            health_check_interval: health_check.interval_seconds,
        });
        // Upstream always says proxy protocol v2, off unless asked.
        let mut attributes =
            BTreeMap::from([("proxy_protocol_v2.enabled".to_string(), "false".to_string())]);
        attributes.extend(self.annotations.target_group_attributes.clone());
        let proxy = match &self.annotations.proxy_protocol {
            Some(ProxyProtocol::All) => true,
            Some(ProxyProtocol::Ports(refs)) => refs.iter().any(|r| names(r, port)),
            None => false,
        };
        if proxy {
            attributes.insert("proxy_protocol_v2.enabled".into(), "true".into());
        }
        let group = TargetGroup {
            health_check,
            name,
            protocol: protocol.into(),
            port: target_port,
            target_type: self.target_type,
            ip_address_type: self.target_ip_address_type.into(),
            protocol_version: None,
            attributes,
            tags: tags(&resource_id),
            resource_id,
        };
        Ok((group, adapted))
    }

    fn listener(
        &self,
        port: &ServicePort,
        protocol: &str,
        target_group: &str,
        tags: &dyn Fn(&str) -> BTreeMap<String, String>,
    ) -> Listener {
        let tls = protocol == "TCP" && self.tls(port);
        let key = if tls { "TLS" } else { protocol };
        let listener_port = u16::try_from(port.port).unwrap_or(u16::MAX);
        Listener {
            port: listener_port,
            protocol: key.into(),
            certificates: if tls {
                self.annotations
                    .ssl_certificates
                    .clone()
                    .unwrap_or_default()
            } else {
                Vec::new()
            },
            ssl_policy: tls.then(|| {
                self.annotations
                    .ssl_negotiation_policy
                    .clone()
                    .unwrap_or_else(|| self.settings.default_ssl_policy.clone())
            }),
            alpn_policy: if tls {
                self.annotations.alpn_policy.clone()
            } else {
                None
            },
            default_action: Action::forward_to(target_group),
            rules: Vec::new(),
            attributes: self
                .annotations
                .listener_attributes
                .get(&(key.to_string(), listener_port))
                .cloned()
                .unwrap_or_default(),
            tags: tags(&listener_port.to_string()),
        }
    }

    fn binding(&self, port: &ServicePort, tg: &TargetGroup) -> Binding {
        Binding {
            name: tg.name.clone(),
            namespace: self.identity.namespace.into(),
            labels: super::objects::stack_labels(self.identity.namespace, self.identity.name),
            service_name: self.identity.name.into(),
            service_port: port.port,
            target_group: tg.resource_id.clone(),
            target_type: self.target_type,
            ip_address_type: self.target_ip_address_type.into(),
            node_selector: self.annotations.target_node_labels.clone(),
            multi_cluster: self.annotations.multi_cluster_target_group.unwrap_or(false),
            networking: if self.networking {
                vec![self.networking_ports(port, tg)]
            } else {
                Vec::new()
            },
        }
    }

    /// Upstream's one rule from the backend group: the target port (TCP, or UDP for UDP; both
    /// for TCP_UDP or a UDP group checked on its own port), and the health-check port when it is
    /// another number.
    fn networking_ports(&self, port: &ServicePort, tg: &TargetGroup) -> Vec<NetworkPort> {
        let target_port = match self.target_type {
            TargetType::Instance => port.node_port.map(IntOrString::Int),
            TargetType::Ip => Some(
                port.target_port
                    .clone()
                    .unwrap_or(IntOrString::Int(port.port)),
            ),
        };
        let entry = |protocol: &str| NetworkPort {
            protocol: protocol.into(),
            port: target_port.clone(),
        };
        let check = &tg.health_check.port;
        let checks_traffic_port =
            check == "traffic-port" || Some(check.clone()) == target_port.as_ref().map(port_text);
        let mut ports = match tg.protocol.as_str() {
            "UDP" if checks_traffic_port => vec![entry("UDP"), entry("TCP")],
            "UDP" => vec![entry("UDP")],
            "TCP_UDP" => vec![entry("UDP"), entry("TCP")],
            _ => vec![entry("TCP")],
        };
        if let Ok(number) = check.parse::<i32>()
            && !checks_traffic_port
        {
            ports.push(NetworkPort {
                protocol: "TCP".into(),
                port: Some(IntOrString::Int(number)),
            });
        }
        ports
    }
}

fn port_text(port: &IntOrString) -> String {
    match port {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// `load-balancer-source-ranges`, else `spec.loadBalancerSourceRanges`, else everyone.
fn source_ranges(
    spec: &k8s_openapi::api::core::v1::ServiceSpec,
    annotations: &ServiceAnnotations,
    ip_address_type: &str,
) -> Vec<IpNet> {
    if let Some(ranges) = &annotations.source_ranges {
        return ranges.clone();
    }
    let from_spec: Vec<IpNet> = spec
        .load_balancer_source_ranges
        .iter()
        .flatten()
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    if !from_spec.is_empty() {
        return from_spec;
    }
    let mut everyone = vec![IpNet::V4(ipnet::Ipv4Net::default())];
    if ip_address_type == "dualstack" {
        everyone.push(IpNet::V6(ipnet::Ipv6Net::default()));
    }
    everyone
}

fn ingress_rules(listeners: &[Listener], ranges: &[IpNet]) -> Vec<IngressRule> {
    let mut rules = Vec::new();
    for listener in listeners {
        let protocols: &[&str] = match listener.protocol.as_str() {
            "UDP" => &["udp"],
            "TCP_UDP" => &["tcp", "udp"],
            _ => &["tcp"],
        };
        for protocol in protocols {
            for cidr in ranges {
                rules.push(IngressRule {
                    protocol: (*protocol).into(),
                    port: listener.port,
                    cidr: *cidr,
                });
            }
        }
    }
    rules
}

fn subnet_mappings(
    annotations: &ServiceAnnotations,
    subnets: &[Subnet],
    scheme: &str,
    cluster: &str,
) -> Result<Vec<SubnetMapping>, BuildError> {
    let annotation = format!("{PREFIX}aws-load-balancer-subnets");
    let chosen = choose_subnets(
        annotations.subnets.as_deref(),
        subnets,
        scheme,
        cluster,
        &annotation,
    )
    .map_err(BuildError::Subnets)?;
    let per_subnet = |annotation: &str, values: Option<Vec<String>>| match values {
        Some(v) if v.len() != chosen.len() => Err(BuildError::NotOnePerSubnet {
            annotation: format!("{PREFIX}{annotation}"),
            count: v.len(),
            subnets: chosen.len(),
        }),
        Some(v) => Ok(v.into_iter().map(Some).collect()),
        None => Ok(vec![None; chosen.len()]),
    };
    let eips = per_subnet(
        "aws-load-balancer-eip-allocations",
        annotations.eip_allocations.clone(),
    )?;
    let private = per_subnet(
        "aws-load-balancer-private-ipv4-addresses",
        annotations
            .private_ipv4_addresses
            .as_ref()
            .map(|a| a.iter().map(ToString::to_string).collect()),
    )?;
    Ok(chosen
        .into_iter()
        .zip(eips.into_iter().zip(private))
        .map(
            |(subnet, (allocation_id, private_ipv4_address))| SubnetMapping {
                subnet_id: subnet.id.clone(),
                allocation_id,
                private_ipv4_address,
            },
        )
        .collect())
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
