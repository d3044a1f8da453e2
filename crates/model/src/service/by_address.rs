//! An NLB without security groups (made before NLBs could have them, or asked so with
//! `aws-load-balancer-disable-nlb-sg`): nothing to reference in the targets' groups, so its
//! bindings admit it by address, as upstream's rules for such NLBs do. Its health checks come
//! from its own addresses (the CIDRs of its subnets); so does its traffic, unless the target
//! group preserves the client's address (`preserve_client_ip.enabled`, on by default for instance
//! targets and for UDP), when the clients must be admitted: the source ranges given, else
//! everyone for an internet-facing NLB and the VPC for an internal one.

use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use lb_api::TargetType;

use crate::stack::{NetworkPort, NetworkRule, NetworkSource, Stack, TargetGroup};

/// Whether the target group hands targets the client's address.
pub fn preserves_client_ip(group: &TargetGroup) -> bool {
    match group.attributes.get("preserve_client_ip.enabled") {
        Some(value) => value == "true",
        None => {
            group.target_type == TargetType::Instance
                || matches!(group.protocol.as_str(), "UDP" | "TCP_UDP")
        }
    }
}

/// Turns the stack's bindings' rules from its source group into rules by address, and leaves it
/// without security groups. `client_ranges`: the clients named (`loadBalancerSourceRanges` or
/// the annotation), None when none were.
pub fn admit_by_address(stack: &mut Stack, client_ranges: Option<&[IpNet]>) {
    stack.managed_security_group = None;
    stack.backend_security_group = false;
    stack.load_balancer.security_groups.clear();
    let internet_facing = stack.load_balancer.scheme == crate::stack::Scheme::InternetFacing;
    let clients = match client_ranges {
        Some(ranges) if !ranges.is_empty() => NetworkSource::Cidrs(ranges.to_vec()),
        _ if internet_facing => NetworkSource::Cidrs(vec![IpNet::V4(Default::default())]),
        _ => NetworkSource::Vpc,
    };
    for binding in &mut stack.bindings {
        let Some(group) = stack
            .target_groups
            .iter()
            .find(|g| g.resource_id == binding.target_group)
        else {
            continue;
        };
        let preserve = preserves_client_ip(group);
        let check_port: Option<i32> = group.health_check.port.number().map(i32::from);
        let mut rules = Vec::new();
        for rule in std::mem::take(&mut binding.networking) {
            if rule.from != NetworkSource::SourceGroup {
                rules.push(rule);
                continue;
            }
            // The health-check port's own entry (a number other than the traffic port) apart.
            let (checks, traffic): (Vec<NetworkPort>, Vec<NetworkPort>) =
                rule.ports.into_iter().partition(|p| {
                    check_port.is_some()
                        && p.protocol == "TCP"
                        && p.port == check_port.map(IntOrString::Int)
                        && !is_traffic_port(group, p)
                });
            let traffic_from = match preserve {
                true => clients.clone(),
                false => NetworkSource::LoadBalancerSubnets,
            };
            let mut checks = checks;
            if preserve && checks.is_empty() {
                // The checks come from the load balancer, the traffic from the clients: the
                // check port needs its own rule.
                checks.extend(traffic.iter().filter(|p| p.protocol == "TCP").cloned());
                if checks.is_empty() {
                    checks.extend(traffic.first().map(|p| NetworkPort {
                        protocol: "TCP".into(),
                        port: p.port.clone(),
                    }));
                }
            }
            rules.push(NetworkRule {
                from: traffic_from,
                ports: traffic,
            });
            if !checks.is_empty() {
                rules.push(NetworkRule {
                    from: NetworkSource::LoadBalancerSubnets,
                    ports: checks,
                });
            }
        }
        binding.networking = rules;
    }
}

fn is_traffic_port(group: &TargetGroup, port: &NetworkPort) -> bool {
    port.port == Some(IntOrString::Int(i32::from(group.port)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::stack::{
        Binding, HealthCheck, LoadBalancer, LoadBalancerKind, ManagedSecurityGroup, StackKind,
    };

    fn group(protocol: &str, target_type: TargetType, check_port: &str) -> TargetGroup {
        TargetGroup {
            resource_id: "ns/web:80".into(),
            name: "k8s-ns-web-0123456789".into(),
            protocol: crate::stack::Protocol::parse(protocol).expect("protocol"),
            port: 8080,
            target_type,
            ip_address_type: crate::stack::TargetIpAddressType::Ipv4,
            protocol_version: None,
            health_check: HealthCheck {
                protocol: crate::stack::Protocol::Tcp,
                port: crate::stack::CheckPort::parse(check_port).expect("check port"),
                path: None,
                healthy_threshold: 3,
                unhealthy_threshold: 3,
                timeout_seconds: 10,
                interval_seconds: 10,
                matcher: None,
            },
            attributes: BTreeMap::new(),
            tags: BTreeMap::new(),
        }
    }

    fn port(protocol: &str, number: i32) -> NetworkPort {
        NetworkPort {
            protocol: protocol.into(),
            port: Some(IntOrString::Int(number)),
        }
    }

    fn stack(scheme: &str, group: TargetGroup, ports: Vec<NetworkPort>) -> Stack {
        Stack {
            id: "ns/web".into(),
            kind: StackKind::Service,
            load_balancer: LoadBalancer {
                name: "k8s-ns-web-0123456789".into(),
                kind: LoadBalancerKind::Network,
                scheme: crate::stack::Scheme::parse(scheme).expect("scheme"),
                ip_address_type: crate::stack::IpAddressType::Ipv4,
                subnets: Vec::new(),
                subnets_named: false,
                subnets_problem: None,
                security_groups: vec!["sg-frontend".into()],
                attributes: Default::default(),
                tags: Default::default(),
            },
            managed_security_group: Some(ManagedSecurityGroup {
                name: "k8s-ns-web-9876543210".into(),
                ingress: Vec::new(),
                tags: Default::default(),
            }),
            backend_security_group: true,
            listeners: Vec::new(),
            bindings: vec![Binding {
                name: group.name.clone(),
                namespace: "ns".into(),
                labels: BTreeMap::new(),
                service_name: "web".into(),
                service_port: 80,
                target_group: group.resource_id.clone(),
                target_type: group.target_type,
                ip_address_type: crate::stack::TargetIpAddressType::Ipv4,
                node_selector: BTreeMap::new(),
                multi_cluster: false,
                networking: vec![NetworkRule {
                    from: NetworkSource::SourceGroup,
                    ports,
                }],
            }],
            target_groups: vec![group],
            external_managed_tags: Vec::new(),
            held_members: Vec::new(),
        }
    }

    #[test]
    fn without_client_ip_the_load_balancer_subnets_are_admitted_on_every_port() {
        let mut s = stack(
            "internet-facing",
            group("TCP", TargetType::Ip, "9000"),
            vec![port("TCP", 8080), port("TCP", 9000)],
        );
        admit_by_address(&mut s, None);
        assert!(s.managed_security_group.is_none() && !s.backend_security_group);
        assert!(s.load_balancer.security_groups.is_empty());
        assert_eq!(
            s.bindings[0].networking,
            vec![
                NetworkRule {
                    from: NetworkSource::LoadBalancerSubnets,
                    ports: vec![port("TCP", 8080)],
                },
                NetworkRule {
                    from: NetworkSource::LoadBalancerSubnets,
                    ports: vec![port("TCP", 9000)],
                },
            ]
        );
    }

    #[test]
    fn with_client_ip_the_clients_get_the_traffic_port_and_the_load_balancer_the_checks() {
        // Instance targets preserve the client's address: the named ranges, else everyone
        // (internet-facing) or the VPC (internal).
        let ranges: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut named = stack(
            "internal",
            group("TCP", TargetType::Instance, "traffic-port"),
            vec![port("TCP", 8080)],
        );
        admit_by_address(&mut named, Some(&ranges));
        assert_eq!(
            named.bindings[0].networking,
            vec![
                NetworkRule {
                    from: NetworkSource::Cidrs(ranges.clone()),
                    ports: vec![port("TCP", 8080)],
                },
                NetworkRule {
                    from: NetworkSource::LoadBalancerSubnets,
                    ports: vec![port("TCP", 8080)],
                },
            ]
        );
        let mut internal = stack(
            "internal",
            group("UDP", TargetType::Ip, "traffic-port"),
            vec![port("UDP", 53), port("TCP", 53)],
        );
        admit_by_address(&mut internal, None);
        assert_eq!(internal.bindings[0].networking[0].from, NetworkSource::Vpc);
        let mut public = stack(
            "internet-facing",
            group("TCP", TargetType::Instance, "traffic-port"),
            vec![port("TCP", 8080)],
        );
        admit_by_address(&mut public, None);
        assert_eq!(
            public.bindings[0].networking[0].from,
            NetworkSource::Cidrs(vec!["0.0.0.0/0".parse().unwrap()])
        );
    }
}
