//! A Service backend of one Ingress -> its ALB target group and TargetGroupBinding.
//!
//! One target group per Ingress + Service + port (upstream's id `<ns>/<ingress>-<svc>:<port>`),
//! with the Ingress's target group annotations under the Service's (which win). ALB defaults:
//! HTTP, HTTP1, health check on the traffic port at `/` every 15 s, timeout 5 s, 2 / 2, success
//! `200` (gRPC: `/AWS.ALB/healthcheck`, `12`). Instance targets go to the Service's node port.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use lb_api::TargetType;

use super::annotations::{ProtocolVersion, TargetGroupAnnotations};
use super::error::MemberError;
use super::group::GroupId;
use super::json::{ListenerProtocol, ServicePortRef};
use super::member::KnownService;
use crate::naming::{self, IngressTargetGroup};
use crate::service::annotations::HealthCheckPort;
use crate::stack::{
    Binding, CheckPort, HealthCheck, NetworkPort, NetworkRule, NetworkSource, TargetGroup,
    TargetIpAddressType, tags,
};
use crate::targets::{has_ipv6_family, target_group_port, target_port};

/// What a target group needs from its Ingress.
pub struct Backend<'a> {
    pub cluster: &'a str,
    /// The group the Ingress is in: its target groups' names hash it.
    pub group: &'a GroupId,
    pub namespace: &'a str,
    pub ingress: &'a str,
    /// The Ingress's target group annotations (class parameters applied).
    pub annotations: &'a TargetGroupAnnotations,
    /// The class parameters' target type, which wins over every annotation.
    pub forced_target_type: Option<TargetType>,
    pub default_target_type: TargetType,
    /// The load balancer is dualstack: a Service of the IPv6 family gets ipv6 targets.
    pub dualstack: bool,
    /// The group's binding labels.
    pub binding_labels: &'a BTreeMap<String, String>,
    /// The cluster's default tags and the ownership tags every resource of the group carries:
    /// they win over the annotations' tags.
    pub tags: &'a BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    pub target_group: TargetGroup,
    pub binding: Binding,
    /// The Service's annotations said something that does not stop the build.
    pub warnings: Vec<String>,
    /// A default adapted to what the user set, named.
    pub adapted: Option<String>,
}

/// A Service found, its port, and its target group annotations with their warnings.
type LookedUp<'k> = (
    &'k Service,
    &'k ServicePort,
    &'k TargetGroupAnnotations,
    &'k Vec<String>,
);

impl Backend<'_> {
    pub fn target_group(
        &self,
        known: Option<&KnownService>,
        service_name: &str,
        port_ref: &ServicePortRef,
    ) -> Result<Made, MemberError> {
        let (service, port, on_service, warnings) = self.lookup(known, service_name, port_ref)?;
        let warnings = warnings.clone();
        let merged = on_service.over(self.annotations);
        let target_type = self
            .forced_target_type
            .or(merged.target_type)
            .unwrap_or(self.default_target_type);
        let tg_port = target_group_port(&target_port(port, target_type).ok_or_else(|| {
            MemberError::NoNodePort {
                service: format!("{}/{service_name}", self.namespace),
                port: port.port,
            }
        })?);
        let ip_address_type = self.ip_address_type(service, service_name)?;
        let protocol = merged.backend_protocol.unwrap_or(ListenerProtocol::Http);
        let version = merged.protocol_version.unwrap_or(ProtocolVersion::Http1);
        let (health_check, adapted) =
            self.health_check(&merged, service, target_type, protocol, version)?;
        let port_text = port_text(port_ref);
        let resource_id = format!(
            "{}/{}-{service_name}:{port_text}",
            self.namespace, self.ingress
        );
        let uid = service.metadata.uid.clone().unwrap_or_default();
        let name = naming::ingress_target_group(&IngressTargetGroup {
            cluster: self.cluster,
            group: self.group,
            ingress_namespace: self.namespace,
            ingress_name: self.ingress,
            service_name,
            service_uid: &uid,
            service_port: &port_text,
            port: tg_port,
            target_type: target_type.as_str(),
            protocol: protocol.as_str(),
            protocol_version: version.as_str(),
        });
        // The Service's tags over the Ingress's, the defaults and ownership over both (upstream's).
        let mut tags = merged.tags.clone();
        tags.extend(self.tags.clone());
        tags.insert(tags::INGRESS_RESOURCE.into(), resource_id.clone());
        let binding = self.binding(
            &name,
            service_name,
            port,
            &resource_id,
            target_type,
            ip_address_type,
            health_check.port,
            &merged,
        );
        let target_group = TargetGroup {
            resource_id,
            name,
            protocol: protocol.into(),
            port: tg_port,
            target_type,
            ip_address_type,
            protocol_version: Some(version),
            health_check,
            attributes: merged.attributes.clone(),
            tags,
        };
        Ok(Made {
            target_group,
            binding,
            warnings,
            adapted,
        })
    }

    /// The Service, its port `port_ref`, and its target group annotations with their warnings.
    fn lookup<'k>(
        &self,
        known: Option<&'k KnownService>,
        service_name: &str,
        port_ref: &ServicePortRef,
    ) -> Result<LookedUp<'k>, MemberError> {
        let qualified = || format!("{}/{service_name}", self.namespace);
        let known = known.ok_or_else(|| MemberError::ServiceNotFound {
            service: qualified(),
        })?;
        let service = known.service.as_ref();
        let port = find_port(service, port_ref).ok_or_else(|| MemberError::NoSuchPort {
            service: qualified(),
            port: port_text(port_ref),
        })?;
        let (on_service, warnings) =
            known
                .annotations()
                .as_ref()
                .map_err(|errors| MemberError::ServiceAnnotations {
                    service: qualified(),
                    errors: errors.clone(),
                })?;
        Ok((service, port, on_service, warnings))
    }

    /// The targets' address type: IPv6 for a Service of that family, which needs a dualstack
    /// load balancer.
    fn ip_address_type(
        &self,
        service: &Service,
        service_name: &str,
    ) -> Result<TargetIpAddressType, MemberError> {
        match (has_ipv6_family(service), self.dualstack) {
            (false, _) => Ok(TargetIpAddressType::Ipv4),
            (true, true) => Ok(TargetIpAddressType::Ipv6),
            (true, false) => Err(MemberError::Ipv6NeedsDualstack {
                service: format!("{}/{service_name}", self.namespace),
            }),
        }
    }

    /// The binding of target group `name`: same name, so pods can be gated before it exists.
    #[allow(clippy::too_many_arguments)]
    fn binding(
        &self,
        name: &str,
        service_name: &str,
        port: &ServicePort,
        resource_id: &str,
        target_type: TargetType,
        ip_address_type: TargetIpAddressType,
        health_check_port: CheckPort,
        merged: &TargetGroupAnnotations,
    ) -> Binding {
        Binding {
            name: name.to_string(),
            namespace: self.namespace.into(),
            labels: self.binding_labels.clone(),
            service_name: service_name.into(),
            service_port: port.port,
            target_group: resource_id.to_string(),
            target_type,
            ip_address_type,
            node_selector: merged.node_labels.clone(),
            multi_cluster: merged.multi_cluster.unwrap_or(false),
            // Cleared by the group's build when its load balancer has no backend group.
            networking: networking(port, target_type, health_check_port),
        }
    }

    fn health_check(
        &self,
        merged: &TargetGroupAnnotations,
        service: &Service,
        target_type: TargetType,
        protocol: ListenerProtocol,
        version: ProtocolVersion,
    ) -> Result<(HealthCheck, Option<String>), MemberError> {
        let grpc = version == ProtocolVersion::Grpc;
        let interval = merged.interval_seconds.unwrap_or(DEFAULT_INTERVAL);
        let mut adapted = None;
        let timeout = match merged.timeout_seconds {
            Some(t) if t >= interval => {
                return Err(MemberError::HealthCheckTimeout {
                    timeout: t,
                    interval,
                });
            }
            Some(t) => t,
            // The default never contradicts the interval the user set (upstream sends 5 s and
            // ELB refuses it for an interval of 5 s): one second shorter, at least ELB's 2 s.
            None if DEFAULT_TIMEOUT >= interval => {
                let fitted = (interval - 1).max(2);
                adapted = Some(format!(
                    "annotation alb.ingress.kubernetes.io/healthcheck-interval-seconds is {interval}s and no alb.ingress.kubernetes.io/healthcheck-timeout-seconds is set: the health-check timeout is {fitted}s, not the default {DEFAULT_TIMEOUT}s, which ELB would refuse as not shorter than the interval"
                ));
                fitted
            }
            None => DEFAULT_TIMEOUT,
        };
        let port_value = match &merged.health_check_port {
            None | Some(HealthCheckPort::TrafficPort) => CheckPort::TrafficPort,
            Some(HealthCheckPort::Number(n)) => CheckPort::Number(*n),
            Some(HealthCheckPort::Name(name)) => named_port(service, name, target_type)
                .ok_or_else(|| MemberError::HealthCheckPort {
                    name: name.clone(),
                    service: service.metadata.name.clone().unwrap_or_default(),
                    target_type: target_type.as_str(),
                })?,
        };
        let check = HealthCheck {
            protocol: merged.health_check_protocol.unwrap_or(protocol).into(),
            port: port_value,
            path: Some(
                merged
                    .health_check_path
                    .clone()
                    .unwrap_or_else(|| if grpc { "/AWS.ALB/healthcheck" } else { "/" }.into()),
            ),
            healthy_threshold: merged.healthy_threshold.unwrap_or(2),
            unhealthy_threshold: merged.unhealthy_threshold.unwrap_or(2),
            timeout_seconds: timeout,
            interval_seconds: interval,
            matcher: Some(
                merged
                    .success_codes
                    .clone()
                    .unwrap_or_else(|| if grpc { "12" } else { "200" }.into()),
            ),
        };
        Ok((check, adapted))
    }
}

/// ALB's health-check defaults (upstream's): every 15 s, timeout 5 s.
const DEFAULT_INTERVAL: i32 = 15;
const DEFAULT_TIMEOUT: i32 = 5;

/// Upstream's rules from the backend security group: the target port (the node port for
/// instance targets), and the health-check port when it is another one; TCP, one rule each.
pub(crate) fn networking(
    port: &ServicePort,
    target_type: TargetType,
    health_check_port: CheckPort,
) -> Vec<NetworkRule> {
    let target_port = target_port(port, target_type);
    let tcp = |port: Option<IntOrString>| NetworkRule {
        from: NetworkSource::SourceGroup,
        ports: vec![NetworkPort {
            protocol: "TCP".into(),
            port,
        }],
    };
    let mut rules = vec![tcp(target_port)];
    if let Some(number) = health_check_port.number() {
        rules.push(tcp(Some(IntOrString::Int(i32::from(number)))));
    }
    rules
}

fn port_text(port: &ServicePortRef) -> String {
    match port {
        ServicePortRef::Number(n) => n.to_string(),
        ServicePortRef::Name(name) => name.clone(),
    }
}

/// The Service port `port_ref` names: by number, or by name (a name of digits that no port has
/// is read as a number, as upstream's documented `"servicePort": "80"` needs).
pub fn find_port<'a>(service: &'a Service, port_ref: &ServicePortRef) -> Option<&'a ServicePort> {
    let ports = service.spec.as_ref()?.ports.as_ref()?;
    match port_ref {
        ServicePortRef::Number(n) => ports.iter().find(|p| p.port == *n),
        ServicePortRef::Name(name) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .or_else(|| {
                let n: i32 = name.parse().ok()?;
                ports.iter().find(|p| p.port == n)
            }),
    }
}

/// A named health-check port: that Service port's target port (ip) or node port (instance).
fn named_port(service: &Service, name: &str, target_type: TargetType) -> Option<CheckPort> {
    let port = find_port(service, &ServicePortRef::Name(name.to_string()))?;
    let number = match target_type {
        TargetType::Instance => port.node_port?,
        TargetType::Ip => match &port.target_port {
            Some(IntOrString::Int(n)) => *n,
            None => port.port,
            Some(IntOrString::String(_)) => return None,
        },
    };
    u16::try_from(number).ok().map(CheckPort::Number)
}
