//! A route backend's target group and its TargetGroupBinding, as upstream makes them for an ALB
//! Gateway: named after the route, identified by Gateway, route, Service and target port,
//! health-checked on the traffic port (`/`, 200-399, every 15 s, 3 in a row either way), gRPC
//! backends with ALB's gRPC health check; the Service's TargetGroupConfiguration over these
//! defaults ([`super::target_group_config`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use lb_api::TargetType;
use lb_api::gateway_config::TargetGroupProps;
use lb_api::keys::gateway::{STACK_NAME_LABEL, STACK_NAMESPACE_LABEL};

use super::target_group_config as config;

use crate::ingress::target_groups::networking;
use crate::naming::{self, GatewayTargetGroup};
use crate::stack::{
    Binding, CheckPort, HealthCheck, Protocol, ProtocolVersion, StackKind, TargetGroup,
    TargetIpAddressType, tags,
};
use crate::targets::{port_text, target_group_port, target_port};

/// Where a backend's target group belongs: the cluster, the Gateway and the route.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub cluster: &'a str,
    pub gateway_namespace: &'a str,
    pub gateway_name: &'a str,
    pub route_namespace: &'a str,
    pub route_name: &'a str,
    /// `HTTPRoute` or `GRPCRoute`.
    pub route_kind: &'a str,
    /// Whether the load balancer is dualstack (IPv6 targets need it).
    pub dualstack: bool,
}

/// Why a backend gets no target group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetGroupError {
    #[error("Service {service} has no port {port}")]
    NoSuchPort { service: String, port: i32 },
    #[error(
        "Service {service} port {port} has no node port: instance targets need a NodePort or LoadBalancer Service"
    )]
    NoNodePort { service: String, port: i32 },
    #[error("Service {service} has the IPv6 family: its targets need a dualstack load balancer")]
    Ipv6NeedsDualstack { service: String },
}

/// The target group and binding of `service`'s port `port` behind `owner`'s route, with
/// `target_type` targets; `default_tags` go on the group.
pub fn backend_target_group(
    owner: Owner<'_>,
    service: &Service,
    port: i32,
    target_type: TargetType,
    default_tags: &BTreeMap<String, String>,
) -> Result<(TargetGroup, Binding), TargetGroupError> {
    configured_target_group(owner, service, port, (target_type, default_tags, None))
}

/// [`backend_target_group`] with the settings of the Service's TargetGroupConfiguration
/// (`props`) over the defaults (`target_type` is the controller's default).
pub fn configured_target_group(
    owner: Owner<'_>,
    service: &Service,
    port: i32,
    (target_type, default_tags, props): (
        TargetType,
        &BTreeMap<String, String>,
        Option<&TargetGroupProps>,
    ),
) -> Result<(TargetGroup, Binding), TargetGroupError> {
    let target_type = config::target_type(props, target_type);
    let namespace = service.metadata.namespace.as_deref().unwrap_or_default();
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let service_name = format!("{namespace}/{name}");
    let ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
    let Some(service_port) = ports.into_iter().flatten().find(|p| p.port == port) else {
        return Err(TargetGroupError::NoSuchPort {
            service: service_name,
            port,
        });
    };
    let Some(targets_on) = target_port(service_port, target_type) else {
        return Err(TargetGroupError::NoNodePort {
            service: service_name,
            port,
        });
    };
    let Some(ip_address_type) = target_address_type(service, owner.dualstack) else {
        return Err(TargetGroupError::Ipv6NeedsDualstack {
            service: service_name,
        });
    };
    let grpc = owner.route_kind == "GRPCRoute";
    let version = config::protocol_version(
        props,
        match grpc {
            true => ProtocolVersion::Grpc,
            false => ProtocolVersion::Http1,
        },
    );
    let tg_port = target_group_port(&targets_on);
    let (resource_id, group_name) = identity(
        owner,
        service_port,
        (namespace, name),
        tg_port,
        target_type,
        version,
    );
    let health_check = config::health_check(props, health_check(grpc));
    let node_selector = props
        .and_then(|p| p.node_selector.as_ref())
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default();
    let binding = Binding {
        name: group_name.clone(),
        namespace: namespace.into(),
        labels: BTreeMap::from([
            (STACK_NAMESPACE_LABEL.into(), owner.gateway_namespace.into()),
            (STACK_NAME_LABEL.into(), owner.gateway_name.into()),
        ]),
        service_name: name.into(),
        service_port: port,
        target_group: resource_id.clone(),
        target_type,
        ip_address_type,
        node_selector,
        multi_cluster: props.and_then(|p| p.enable_multi_cluster).unwrap_or(false),
        networking: networking(service_port, target_type, health_check.port),
    };
    // The configuration's tags beside the defaults; ownership tags always win.
    let mut tags = default_tags.clone();
    tags.extend(props.and_then(|p| p.tags.clone()).unwrap_or_default());
    let group = TargetGroup {
        tags: group_tags(owner, &resource_id, &tags),
        resource_id,
        name: props
            .and_then(|p| p.target_group_name.clone())
            .unwrap_or(group_name),
        protocol: config::protocol(props),
        port: tg_port,
        target_type,
        ip_address_type,
        protocol_version: Some(version),
        health_check,
        attributes: config::attributes(props),
    };
    Ok((group, binding))
}

/// The targets' addresses: IPv4 whenever the Service has that family (a dual-stack Service
/// behind an IPv4 load balancer is reached on IPv4, where upstream refuses it), IPv6 for an
/// IPv6-first Service behind a dualstack one; None for an IPv6-only Service behind an IPv4 one.
fn target_address_type(service: &Service, dualstack: bool) -> Option<TargetIpAddressType> {
    let families: Vec<&str> = service
        .spec
        .as_ref()
        .and_then(|s| s.ip_families.as_ref())
        .map(|f| f.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let ipv4 = families.is_empty() || families.contains(&"IPv4");
    match (families.first() == Some(&"IPv6"), ipv4, dualstack) {
        (true, _, true) => Some(TargetIpAddressType::Ipv6),
        (_, true, _) => Some(TargetIpAddressType::Ipv4),
        _ => None,
    }
}

/// The group's resource id (`<gateway>:<route>:<Kind>-<service>:<target port as written>`) and
/// name.
fn identity(
    owner: Owner<'_>,
    service_port: &ServicePort,
    (namespace, name): (&str, &str),
    tg_port: u16,
    target_type: TargetType,
    version: ProtocolVersion,
) -> (String, String) {
    let id_port = service_port
        .target_port
        .as_ref()
        .map_or_else(|| service_port.port.to_string(), port_text);
    let resource_id = format!(
        "{}/{}:{}-{}:{}-{namespace}-{name}:{id_port}",
        owner.gateway_namespace,
        owner.gateway_name,
        owner.route_namespace,
        owner.route_name,
        owner.route_kind
    );
    let group_name = naming::gateway_target_group(&GatewayTargetGroup {
        cluster: owner.cluster,
        gateway_namespace: owner.gateway_namespace,
        gateway_name: owner.gateway_name,
        route_namespace: owner.route_namespace,
        route_name: owner.route_name,
        route_kind: owner.route_kind,
        service_namespace: namespace,
        service_name: name,
        port: tg_port,
        target_type: target_type.as_str(),
        protocol: Protocol::Http.as_str(),
        protocol_version: version.as_str(),
    });
    (resource_id, group_name)
}

/// Upstream's health check of a Gateway backend: the traffic port, `/` and 200-399 (gRPC: ALB's
/// gRPC check and code 12), every 15 s, 5 s timeout, 3 in a row either way.
fn health_check(grpc: bool) -> HealthCheck {
    HealthCheck {
        protocol: Protocol::Http,
        port: CheckPort::TrafficPort,
        path: Some(if grpc { "/AWS.ALB/healthcheck" } else { "/" }.into()),
        healthy_threshold: 3,
        unhealthy_threshold: 3,
        timeout_seconds: 5,
        interval_seconds: 15,
        matcher: Some(if grpc { "12" } else { "200-399" }.into()),
    }
}

/// The defaults, then ownership: the cluster, the Gateway's stack and the group's resource id.
fn group_tags(
    owner: Owner<'_>,
    resource_id: &str,
    default_tags: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut group_tags = default_tags.clone();
    group_tags.insert(tags::CLUSTER.into(), owner.cluster.into());
    group_tags.insert(
        StackKind::AlbGateway.stack_tag().into(),
        format!("{}/{}", owner.gateway_namespace, owner.gateway_name),
    );
    group_tags.insert(
        StackKind::AlbGateway.resource_tag().into(),
        resource_id.into(),
    );
    group_tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn echo_service() -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("infra-backend-v1".into()),
                namespace: Some("gateway-conformance-infra".into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                ports: Some(vec![ServicePort {
                    port: 8080,
                    target_port: Some(IntOrString::Int(3000)),
                    node_port: None,
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    fn owner(kind: &'static str) -> Owner<'static> {
        Owner {
            cluster: "lb-sandbox",
            gateway_namespace: "gateway-conformance-infra",
            gateway_name: "same-namespace",
            route_namespace: "gateway-conformance-infra",
            route_name: "exact-matching",
            route_kind: kind,
            dualstack: false,
        }
    }

    #[test]
    fn a_backend_group_is_named_identified_and_checked_as_upstreams() {
        let (group, binding) = backend_target_group(
            owner("HTTPRoute"),
            &echo_service(),
            8080,
            TargetType::Ip,
            &BTreeMap::new(),
        )
        .expect("group");
        assert_eq!(
            group.resource_id,
            "gateway-conformance-infra/same-namespace:gateway-conformance-infra-exact-matching:HTTPRoute-gateway-conformance-infra-infra-backend-v1:3000"
        );
        assert!(
            group.name.starts_with("k8s-gatewayc-exactmat-"),
            "{}",
            group.name
        );
        assert_eq!(
            (group.port, group.protocol_version),
            (3000, Some(ProtocolVersion::Http1))
        );
        let check = &group.health_check;
        assert_eq!(
            (
                check.path.as_deref(),
                check.matcher.as_deref(),
                check.interval_seconds,
                check.healthy_threshold
            ),
            (Some("/"), Some("200-399"), 15, 3)
        );
        assert_eq!(
            group.tags[tags::GATEWAY_ALB_STACK],
            "gateway-conformance-infra/same-namespace"
        );
        assert_eq!(
            (binding.name.as_str(), binding.service_port),
            (group.name.as_str(), 8080)
        );
        assert_eq!(binding.labels[STACK_NAME_LABEL], "same-namespace");

        let (grpc, _) = backend_target_group(
            owner("GRPCRoute"),
            &echo_service(),
            8080,
            TargetType::Ip,
            &BTreeMap::new(),
        )
        .expect("grpc group");
        assert_eq!(grpc.health_check.matcher.as_deref(), Some("12"));
        assert_ne!(grpc.name, group.name);
    }

    #[test]
    fn a_dual_stack_service_is_reached_on_ipv4_an_ipv6_only_one_needs_dualstack() {
        let with_families = |families: &[&str]| {
            let mut service = echo_service();
            service.spec.as_mut().unwrap().ip_families =
                Some(families.iter().map(|f| (*f).to_string()).collect());
            service
        };
        let address = |families: &[&str], dualstack: bool| {
            let owner = Owner {
                dualstack,
                ..owner("HTTPRoute")
            };
            backend_target_group(
                owner,
                &with_families(families),
                8080,
                TargetType::Ip,
                &BTreeMap::new(),
            )
            .map(|(group, _)| group.ip_address_type)
        };
        assert_eq!(
            address(&["IPv4", "IPv6"], false),
            Ok(TargetIpAddressType::Ipv4)
        );
        assert_eq!(
            address(&["IPv6", "IPv4"], false),
            Ok(TargetIpAddressType::Ipv4)
        );
        assert_eq!(
            address(&["IPv6", "IPv4"], true),
            Ok(TargetIpAddressType::Ipv6)
        );
        assert!(address(&["IPv6"], false).is_err());
    }

    #[test]
    fn a_missing_port_or_node_port_is_named() {
        let err = backend_target_group(
            owner("HTTPRoute"),
            &echo_service(),
            9,
            TargetType::Ip,
            &BTreeMap::new(),
        );
        assert!(matches!(
            err,
            Err(TargetGroupError::NoSuchPort { port: 9, .. })
        ));
        let err = backend_target_group(
            owner("HTTPRoute"),
            &echo_service(),
            8080,
            TargetType::Instance,
            &BTreeMap::new(),
        );
        assert!(matches!(err, Err(TargetGroupError::NoNodePort { .. })));
    }
}
