//! Between the SDK's ELB types and the stack's values. What ELB reports is normalised to what the
//! model would build, so a converged stack diffs to nothing: a TCP health check has no path and no
//! matcher, and a TCP listener no TLS policy, even when ELB reports its defaults for them.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types as sdk;
use lb_api::TargetType;
use lb_model::stack::{
    CheckPort, HealthCheck, IpAddressType, Listener, LoadBalancer, LoadBalancerKind, Protocol,
    ProtocolVersion, Scheme, SubnetMapping, TargetGroup, TargetIpAddressType, tags,
};

pub fn tags_from(described: &[sdk::Tag]) -> BTreeMap<String, String> {
    described
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

pub fn tags_to(tags: &BTreeMap<String, String>) -> Vec<sdk::Tag> {
    tags.iter()
        .map(|(k, v)| sdk::Tag::builder().key(k).value(v).build())
        .collect()
}

pub fn load_balancer_type(kind: LoadBalancerKind) -> sdk::LoadBalancerTypeEnum {
    match kind {
        LoadBalancerKind::Network => sdk::LoadBalancerTypeEnum::Network,
        LoadBalancerKind::Application => sdk::LoadBalancerTypeEnum::Application,
    }
}

pub fn subnet_mappings(subnets: &[SubnetMapping]) -> Vec<sdk::SubnetMapping> {
    subnets
        .iter()
        .map(|s| {
            sdk::SubnetMapping::builder()
                .subnet_id(&s.subnet_id)
                .set_allocation_id(s.allocation_id.clone())
                .set_private_ipv4_address(s.private_ipv4_address.clone())
                .build()
        })
        .collect()
}

pub fn certificates(arns: &[String]) -> Option<Vec<sdk::Certificate>> {
    (!arns.is_empty()).then(|| {
        arns.iter()
            .map(|a| sdk::Certificate::builder().certificate_arn(a).build())
            .collect()
    })
}

/// HTTP(S) health checks only: the success codes (gRPC codes for a GRPC target group).
/// Sets `group`'s health check on a CreateTargetGroup or a ModifyTargetGroup request (both have
/// the same setters): the one place a health check goes to ELB; [`target_group_from`] is the
/// way back.
macro_rules! with_health_check {
    ($request:expr, $group:expr) => {{
        let group: &lb_model::stack::TargetGroup = $group;
        let check = &group.health_check;
        $request
            .health_check_protocol($crate::deployer::convert::protocol_to(check.protocol))
            .health_check_port(check.port.to_string())
            .set_health_check_path(check.path.clone())
            .healthy_threshold_count(check.healthy_threshold)
            .unhealthy_threshold_count(check.unhealthy_threshold)
            .health_check_timeout_seconds(check.timeout_seconds)
            .health_check_interval_seconds(check.interval_seconds)
            .set_matcher($crate::deployer::convert::matcher(
                check,
                group.protocol_version,
            ))
    }};
}
pub(crate) use with_health_check;

/// A protocol as ELB takes it.
pub fn protocol_to(protocol: Protocol) -> sdk::ProtocolEnum {
    sdk::ProtocolEnum::from(protocol.as_str())
}

/// A protocol as ELB describes it. One this controller never sets (GENEVE, QUIC) reads as TCP:
/// it differs from what is desired, so the diff sets the desired one.
fn protocol_of(described: Option<&sdk::ProtocolEnum>) -> Protocol {
    described
        .and_then(|p| Protocol::parse(p.as_str()))
        .unwrap_or(Protocol::Tcp)
}

pub fn matcher(
    check: &HealthCheck,
    protocol_version: Option<ProtocolVersion>,
) -> Option<sdk::Matcher> {
    check.matcher.as_ref().map(|codes| {
        let matcher = sdk::Matcher::builder();
        if protocol_version == Some(ProtocolVersion::Grpc) {
            matcher.grpc_code(codes).build()
        } else {
            matcher.http_code(codes).build()
        }
    })
}

pub fn load_balancer_from(
    described: &sdk::LoadBalancer,
    attributes: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
) -> LoadBalancer {
    let kind = match described.r#type() {
        Some(sdk::LoadBalancerTypeEnum::Application) => LoadBalancerKind::Application,
        _ => LoadBalancerKind::Network,
    };
    let subnets = described
        .availability_zones()
        .iter()
        .map(|zone| {
            let address = zone.load_balancer_addresses().first();
            SubnetMapping {
                subnet_id: zone.subnet_id().unwrap_or_default().to_string(),
                allocation_id: address.and_then(|a| a.allocation_id()).map(str::to_string),
                private_ipv4_address: address
                    .and_then(|a| a.private_ipv4_address())
                    .map(str::to_string),
            }
        })
        .collect();
    LoadBalancer {
        name: described
            .load_balancer_name()
            .unwrap_or_default()
            .to_string(),
        kind,
        // ELB's own values; one we do not know reads as what differs, so the diff corrects it.
        scheme: match described.scheme() {
            Some(sdk::LoadBalancerSchemeEnum::Internal) => Scheme::Internal,
            _ => Scheme::InternetFacing,
        },
        ip_address_type: described
            .ip_address_type()
            .and_then(|t| IpAddressType::parse(t.as_str()))
            .unwrap_or(IpAddressType::Ipv4),
        subnets,
        // What exists says nothing of where its subnets came from.
        subnets_named: false,
        subnets_problem: None,
        security_groups: described.security_groups().to_vec(),
        attributes,
        tags,
    }
}

pub fn listener_from(described: &sdk::Listener, attributes: BTreeMap<String, String>) -> Listener {
    let protocol = protocol_of(described.protocol());
    // A policy only means something on a listener that terminates TLS; ELB may report its
    // default on others.
    let secure = protocol.terminates_tls();
    Listener {
        port: described
            .port()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0),
        protocol,
        certificates: described
            .certificates()
            .iter()
            .filter_map(|c| c.certificate_arn())
            .map(str::to_string)
            .collect(),
        ssl_policy: described
            .ssl_policy()
            .filter(|_| secure)
            .map(str::to_string),
        alpn_policy: described
            .alpn_policy()
            .first()
            .filter(|p| p.as_str() != "None")
            .cloned(),
        default_action: super::actions::action_from_sdk(described.default_actions()),
        rules: Vec::new(),
        attributes,
        // Described apart (DescribeTags).
        tags: BTreeMap::new(),
    }
}

pub fn target_group_from(
    described: &sdk::TargetGroup,
    attributes: BTreeMap<String, String>,
    group_tags: BTreeMap<String, String>,
) -> TargetGroup {
    let protocol = protocol_of(described.health_check_protocol());
    let http = protocol != Protocol::Tcp;
    let health_check = HealthCheck {
        // A port ELB would not give back reads as the traffic port: the diff then restates ours.
        port: described
            .health_check_port()
            .and_then(CheckPort::parse)
            .unwrap_or(CheckPort::TrafficPort),
        path: described
            .health_check_path()
            .filter(|_| http)
            .map(str::to_string),
        healthy_threshold: described.healthy_threshold_count().unwrap_or_default(),
        unhealthy_threshold: described.unhealthy_threshold_count().unwrap_or_default(),
        timeout_seconds: described.health_check_timeout_seconds().unwrap_or_default(),
        interval_seconds: described
            .health_check_interval_seconds()
            .unwrap_or_default(),
        matcher: described
            .matcher()
            .and_then(|m| m.http_code().or(m.grpc_code()))
            .filter(|_| http)
            .map(str::to_string),
        protocol,
    };
    TargetGroup {
        resource_id: [
            tags::SERVICE_RESOURCE,
            tags::INGRESS_RESOURCE,
            tags::GATEWAY_ALB_RESOURCE,
        ]
        .iter()
        .find_map(|key| group_tags.get(*key))
        .cloned()
        .unwrap_or_default(),
        name: described
            .target_group_name()
            .unwrap_or_default()
            .to_string(),
        protocol: protocol_of(described.protocol()),
        port: described
            .port()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0),
        target_type: match described.target_type() {
            Some(sdk::TargetTypeEnum::Ip) => TargetType::Ip,
            _ => TargetType::Instance,
        },
        ip_address_type: described
            .ip_address_type()
            .and_then(|t| TargetIpAddressType::parse(t.as_str()))
            .unwrap_or(TargetIpAddressType::Ipv4),
        protocol_version: described
            .protocol_version()
            .and_then(ProtocolVersion::parse),
        health_check,
        attributes,
        tags: group_tags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tcp_health_check_drops_the_path_and_matcher_elb_reports_by_default() {
        let described = sdk::TargetGroup::builder()
            .target_group_name("k8s-demo-web-0123456789")
            .protocol(sdk::ProtocolEnum::Tcp)
            .port(8080)
            .target_type(sdk::TargetTypeEnum::Ip)
            .health_check_protocol(sdk::ProtocolEnum::Tcp)
            .health_check_port("traffic-port")
            .health_check_path("/")
            .matcher(sdk::Matcher::builder().http_code("200").build())
            .healthy_threshold_count(3)
            .unhealthy_threshold_count(3)
            .health_check_timeout_seconds(10)
            .health_check_interval_seconds(10)
            .build();
        let tags = BTreeMap::from([(tags::SERVICE_RESOURCE.to_string(), "demo/web:80".into())]);
        let group = target_group_from(&described, BTreeMap::new(), tags);
        assert_eq!(group.resource_id, "demo/web:80");
        assert_eq!(group.target_type, TargetType::Ip);
        assert_eq!(group.ip_address_type, TargetIpAddressType::Ipv4);
        assert_eq!(group.health_check.path, None);
        assert_eq!(group.health_check.matcher, None);
        assert_eq!(group.health_check.port, CheckPort::TrafficPort);
        // A Gateway's group is known by its own resource tag.
        let id = "infra/gw:infra-web:HTTPRoute-infra-v1:3000";
        let tags = BTreeMap::from([(tags::GATEWAY_ALB_RESOURCE.to_string(), id.into())]);
        let group = target_group_from(&described, BTreeMap::new(), tags);
        assert_eq!(group.resource_id, id);
    }

    #[test]
    fn a_listener_forwards_to_its_default_actions_target_group() {
        let described = sdk::Listener::builder()
            .port(443)
            .protocol(sdk::ProtocolEnum::Tls)
            .certificates(
                sdk::Certificate::builder()
                    .certificate_arn("arn:cert")
                    .build(),
            )
            .ssl_policy("ELBSecurityPolicy-2016-08")
            .alpn_policy("None")
            .default_actions(
                sdk::Action::builder()
                    .r#type(sdk::ActionTypeEnum::Forward)
                    .target_group_arn("arn:tg")
                    .build(),
            )
            .build();
        let listener = listener_from(&described, BTreeMap::new());
        assert_eq!(listener.port, 443);
        assert_eq!(listener.protocol, Protocol::Tls);
        assert_eq!(listener.certificates, vec!["arn:cert".to_string()]);
        assert_eq!(listener.alpn_policy, None);
        assert_eq!(
            listener.default_action.single_target(),
            Some(&lb_model::stack::TargetGroupRef::Arn("arn:tg".into()))
        );
    }
}
