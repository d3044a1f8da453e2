//! A Service's ports -> its listeners, target groups and TargetGroupBindings: one of each per
//! listener port (TCP and UDP on one port number: one `TCP_UDP` listener, when asked), with
//! upstream's names, tags, attributes and binding `networking`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use lb_api::TargetType;

use super::annotations::{BackendProtocol, PortRef, ProxyProtocol, ServiceAnnotations};
use super::build::{BuildError, ClusterSettings, load_balancer_ip_address_type};
use super::health::health_check;
use crate::naming::{self, ServiceName, ServiceTargetGroup};
use crate::stack::{
    Action, Binding, Listener, NetworkPort, NetworkRule, NetworkSource, TargetGroup,
};
use crate::stack::{CheckPort, IpAddressType, Protocol, TargetIpAddressType};
use crate::targets::{has_ipv6_family, port_text, target_group_port, target_port};

/// The listeners' (port, protocol). TCP and UDP on one port number make one TCP_UDP listener when
/// `tcp_udp` (the annotation, else the cluster's default); otherwise they are refused by name
/// (ELB would refuse the second listener on the port).
pub(super) fn listener_ports(
    ports: &[ServicePort],
    tcp_udp: bool,
) -> Result<Vec<(&ServicePort, Protocol)>, BuildError> {
    let mut out: Vec<(&ServicePort, Protocol)> = Vec::new();
    for port in ports {
        let protocol = match port.protocol.as_deref().unwrap_or("TCP") {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            other => {
                return Err(BuildError::UnsupportedProtocol {
                    port: port.port,
                    protocol: other.to_string(),
                });
            }
        };
        match out.iter_mut().find(|(p, _)| p.port == port.port) {
            Some((_, existing)) if *existing != protocol && tcp_udp => {
                *existing = Protocol::TcpUdp;
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

pub(super) fn names(port_ref: &PortRef, port: &ServicePort) -> bool {
    match port_ref {
        PortRef::Number(n) => i32::from(*n) == port.port,
        PortRef::Name(n) => port.name.as_deref() == Some(n.as_str()),
    }
}

pub(super) struct PortResources {
    pub(super) target_groups: Vec<TargetGroup>,
    pub(super) listeners: Vec<Listener>,
    pub(super) bindings: Vec<Binding>,
    pub(super) adapted: Vec<String>,
}

/// What building one port's listener, target group and binding needs.
pub(super) struct PortContext<'a> {
    pub(super) service: &'a Service,
    pub(super) annotations: &'a ServiceAnnotations,
    pub(super) target_type: TargetType,
    pub(super) settings: &'a ClusterSettings,
    pub(super) identity: ServiceName<'a>,
    /// `ipv4` or `ipv6`.
    pub(super) target_ip_address_type: TargetIpAddressType,
    /// The bindings admit the load balancer's source group (its backend or managed group).
    pub(super) networking: bool,
}

impl<'a> PortContext<'a> {
    /// `networking`: the bindings admit the load balancer's source group.
    pub(super) fn new(
        service: &'a Service,
        annotations: &'a ServiceAnnotations,
        target_type: TargetType,
        settings: &'a ClusterSettings,
        networking: bool,
    ) -> Result<Self, BuildError> {
        let metadata = &service.metadata;
        let load_balancer = load_balancer_ip_address_type(annotations);
        Ok(Self {
            service,
            annotations,
            target_type,
            settings,
            identity: ServiceName {
                namespace: metadata.namespace.as_deref().unwrap_or_default(),
                name: metadata.name.as_deref().unwrap_or_default(),
                uid: metadata.uid.as_deref().unwrap_or_default(),
            },
            target_ip_address_type: target_ip_address_type(service, load_balancer)?,
            networking,
        })
    }

    /// One listener, target group and binding per listener port (TCP and UDP on one port: one
    /// when asked). `tags` gives the tags of a resource id.
    pub(super) fn port_resources(
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
            let (tg, adapted) = self.target_group(port, protocol, tags)?;
            resources.adapted.extend(adapted);
            resources
                .listeners
                .push(self.listener(port, protocol, &tg.resource_id, tags));
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
        listener_protocol: Protocol,
        tags: &dyn Fn(&str) -> BTreeMap<String, String>,
    ) -> Result<(TargetGroup, Option<String>), BuildError> {
        let protocol = match listener_protocol {
            Protocol::Tcp if self.tls(port) => match self.annotations.backend_protocol {
                Some(BackendProtocol::Ssl) => Protocol::Tls,
                _ => Protocol::Tcp,
            },
            other => other,
        };
        let target_port = target_group_port(
            &target_port(port, self.target_type)
                .ok_or(BuildError::NoNodePort { port: port.port })?,
        );
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
            protocol: protocol.as_str(),
            health_check_protocol: health_check.protocol.as_str(),
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
            protocol,
            port: target_port,
            target_type: self.target_type,
            ip_address_type: self.target_ip_address_type,
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
        protocol: Protocol,
        target_group: &str,
        tags: &dyn Fn(&str) -> BTreeMap<String, String>,
    ) -> Listener {
        let tls = protocol == Protocol::Tcp && self.tls(port);
        let key = if tls { Protocol::Tls } else { protocol };
        let listener_port = u16::try_from(port.port).unwrap_or(u16::MAX);
        Listener {
            port: listener_port,
            protocol: key,
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
                .get(&(key.as_str().to_string(), listener_port))
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
            ip_address_type: self.target_ip_address_type,
            node_selector: self.annotations.target_node_labels.clone(),
            multi_cluster: self.annotations.multi_cluster_target_group.unwrap_or(false),
            networking: if self.networking {
                vec![NetworkRule {
                    from: NetworkSource::SourceGroup,
                    ports: self.networking_ports(port, tg),
                }]
            } else {
                Vec::new()
            },
        }
    }

    /// Upstream's one rule from the backend group: the target port (TCP, or UDP for UDP; both
    /// for TCP_UDP or a UDP group checked on its own port), and the health-check port when it is
    /// another number.
    fn networking_ports(&self, port: &ServicePort, tg: &TargetGroup) -> Vec<NetworkPort> {
        let target_port = target_port(port, self.target_type);
        let entry = |protocol: &str| NetworkPort {
            protocol: protocol.into(),
            port: target_port.clone(),
        };
        let check = tg.health_check.port;
        let checks_traffic_port = check == CheckPort::TrafficPort
            || Some(check.to_string()) == target_port.as_ref().map(port_text);
        let mut ports = match tg.protocol {
            Protocol::Udp if checks_traffic_port => vec![entry("UDP"), entry("TCP")],
            Protocol::Udp => vec![entry("UDP")],
            Protocol::TcpUdp => vec![entry("UDP"), entry("TCP")],
            _ => vec![entry("TCP")],
        };
        if let Some(number) = check.number().map(i32::from)
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

/// The target groups' address type: `ipv6` when the Service has the IPv6 family (which needs a
/// dualstack load balancer), else `ipv4`. ELB takes no `dualstack` target group.
fn target_ip_address_type(
    service: &Service,
    load_balancer: IpAddressType,
) -> Result<TargetIpAddressType, BuildError> {
    match (has_ipv6_family(service), load_balancer) {
        (false, _) => Ok(TargetIpAddressType::Ipv4),
        (true, IpAddressType::Dualstack) => Ok(TargetIpAddressType::Ipv6),
        (true, _) => Err(BuildError::Ipv6NeedsDualstack),
    }
}

#[cfg(test)]
#[path = "ports_tests.rs"]
mod tests;
