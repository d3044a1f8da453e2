//! Names of what the controller creates in AWS, computed exactly as the upstream controller computes
//! them: the same object in the same cluster gets the same name from either controller, so a
//! console, a DNS record or a dashboard never sees a switch between them.
//!
//! Every generated name is `k8s-<ns8>-<name8>-<hash10>` (an explicit Ingress group's load balancer
//! and security group: `k8s-<group17>-<hash10>`; the shared backend security group:
//! `k8s-traffic-<cluster>-<hash10>`): the namespace and name with everything but ASCII letters and
//! digits removed, cut to 8 (17) characters, and the first 10 hex digits of SHA-256 over the
//! inputs written one after the other, with no separator (upstream's choice, kept for the names'
//! sake). The inputs per resource are upstream's; `tests/upstream_footprint.rs` checks them against
//! names measured from upstream's own binary.
//!
//! Several names hash a Kubernetes UID (a Service's NLB, its security group, every target group),
//! so they differ between clusters; the others hash only the cluster name and the object's
//! identity. None of them is how the controller finds a resource again: that is by its tags.

use sha2::{Digest, Sha256};

use crate::ingress::group::GroupId;

/// ELB's limit for load balancer and target group names.
pub const MAX_NAME: usize = 32;

/// What [`is_load_balancer_name`] asks, as a phrase.
pub const LOAD_BALANCER_NAME_RULE: &str =
    "a load balancer name (at most 32 letters, digits and hyphens, no hyphen first or last)";

/// ELB's rule for a name a user gives a load balancer: 1 to [`MAX_NAME`] letters, digits and
/// hyphens, not starting or ending with a hyphen, not `internal-...`.
pub fn is_load_balancer_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.starts_with("internal-")
}

/// `value` with everything but ASCII letters and digits removed (upstream's `[[:^alnum:]]`), at
/// most `max` characters, case kept.
fn sanitized(value: &str, max: usize) -> String {
    value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(max)
        .collect()
}

/// The first 10 hex digits of SHA-256 over the parts written one after the other.
fn hash10(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `k8s-<ns8>-<name8>-<hash10>`: at most 32 characters.
fn namespaced(namespace: &str, name: &str, hashed: &[&str]) -> String {
    format!(
        "k8s-{}-{}-{}",
        sanitized(namespace, 8),
        sanitized(name, 8),
        hash10(hashed)
    )
}

/// `k8s-<group17>-<hash10>` for an explicit group, `k8s-<ns8>-<name8>-<hash10>` for an Ingress alone.
fn group_named(group: &GroupId, hashed: &[&str]) -> String {
    match group {
        GroupId::Explicit(name) => format!("k8s-{}-{}", sanitized(name, 17), hash10(hashed)),
        GroupId::Implicit { namespace, name } => namespaced(namespace, name, hashed),
    }
}

/// An Ingress group's ALB: hashes the cluster, the group and the scheme (a scheme change is a new
/// load balancer).
pub fn ingress_load_balancer(cluster: &str, group: &GroupId, scheme: &str) -> String {
    group_named(group, &[cluster, &group.stack_id(), scheme])
}

/// An Ingress group's managed frontend security group: hashes the cluster and the group.
pub fn ingress_security_group(cluster: &str, group: &GroupId) -> String {
    group_named(group, &[cluster, &group.stack_id()])
}

/// What makes an Ingress backend's target group (and its TargetGroupBinding, named the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngressTargetGroup<'a> {
    pub cluster: &'a str,
    pub group: &'a GroupId,
    pub ingress_namespace: &'a str,
    pub ingress_name: &'a str,
    pub service_name: &'a str,
    pub service_uid: &'a str,
    /// The backend's port as the Ingress gives it: a number or a name.
    pub service_port: &'a str,
    /// The target group's port: the node port (instance) or the target port (ip).
    pub port: u16,
    pub target_type: &'a str,
    pub protocol: &'a str,
    pub protocol_version: &'a str,
}

/// Named after the Service (the targets' namespace and name), hashed over everything that makes
/// the group.
pub fn ingress_target_group(tg: &IngressTargetGroup) -> String {
    let port = tg.port.to_string();
    namespaced(
        tg.ingress_namespace,
        tg.service_name,
        &[
            tg.cluster,
            &tg.group.stack_id(),
            tg.ingress_namespace,
            tg.ingress_name,
            tg.service_uid,
            tg.service_port,
            &port,
            tg.target_type,
            tg.protocol,
            tg.protocol_version,
        ],
    )
}

/// A Service, as its names need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceName<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

/// A Service's NLB: hashes the cluster, the Service's UID and the scheme.
pub fn service_load_balancer(cluster: &str, service: ServiceName, scheme: &str) -> String {
    namespaced(
        service.namespace,
        service.name,
        &[cluster, service.uid, scheme],
    )
}

/// A Service's managed frontend security group (name, namespace and UID, in upstream's order).
pub fn service_security_group(cluster: &str, service: ServiceName) -> String {
    namespaced(
        service.namespace,
        service.name,
        &[cluster, service.name, service.namespace, service.uid],
    )
}

/// What makes a Service port's target group (and its binding, named the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceTargetGroup<'a> {
    pub cluster: &'a str,
    pub service: ServiceName<'a>,
    /// The Service port's number.
    pub service_port: i32,
    /// The target group's port: the node port (instance) or the target port (ip).
    pub port: u16,
    pub target_type: &'a str,
    pub protocol: &'a str,
    pub health_check_protocol: &'a str,
    pub health_check_interval: i32,
}

pub fn service_target_group(tg: &ServiceTargetGroup) -> String {
    let port = tg.port.to_string();
    let service_port = tg.service_port.to_string();
    let interval = tg.health_check_interval.to_string();
    namespaced(
        tg.service.namespace,
        tg.service.name,
        &[
            tg.cluster,
            tg.service.uid,
            &port,
            &service_port,
            tg.target_type,
            tg.protocol,
            tg.health_check_protocol,
            &interval,
        ],
    )
}

/// The cluster's shared backend security group, attached to every load balancer with a managed
/// frontend group: the source the targets' security groups admit.
pub fn backend_security_group(cluster: &str) -> String {
    format!(
        "k8s-traffic-{}-{}",
        sanitized(cluster, 232),
        hash10(&[cluster])
    )
}

/// A Gateway, as its names need it: upstream names a Gateway's load balancer and security group
/// exactly as a Service's (namespace, name, UID).
pub type GatewayName<'a> = ServiceName<'a>;

/// A Gateway's load balancer: hashed over cluster, UID and scheme, as a Service's.
pub fn gateway_load_balancer(cluster: &str, gateway: GatewayName, scheme: &str) -> String {
    service_load_balancer(cluster, gateway, scheme)
}

/// A Gateway's managed frontend security group, named as a Service's.
pub fn gateway_security_group(cluster: &str, gateway: GatewayName) -> String {
    service_security_group(cluster, gateway)
}

/// What makes a route backend's target group (and its binding, named the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayTargetGroup<'a> {
    pub cluster: &'a str,
    pub gateway_namespace: &'a str,
    pub gateway_name: &'a str,
    pub route_namespace: &'a str,
    pub route_name: &'a str,
    /// `HTTPRoute` or `GRPCRoute`.
    pub route_kind: &'a str,
    pub service_namespace: &'a str,
    pub service_name: &'a str,
    /// The target group's port: the node port (instance) or the target port (ip).
    pub port: u16,
    pub target_type: &'a str,
    pub protocol: &'a str,
    pub protocol_version: &'a str,
}

/// Named after the route, hashed over the Gateway, the route, the Service and how the group
/// reaches it (no UID: upstream's inputs and order).
pub fn gateway_target_group(tg: &GatewayTargetGroup) -> String {
    let port = tg.port.to_string();
    namespaced(
        tg.route_namespace,
        tg.route_name,
        &[
            tg.cluster,
            tg.gateway_namespace,
            tg.gateway_name,
            tg.route_namespace,
            tg.route_name,
            tg.route_kind,
            tg.service_namespace,
            tg.service_name,
            &port,
            tg.target_type,
            tg.protocol,
            tg.protocol_version,
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Names measured from upstream's binary (crates/lab/fixtures/upstream-footprint), cluster
    // `lb-sandbox`; the footprint test checks every one of them, these check the shapes.

    #[test]
    fn ingress_names_are_upstreams() {
        let implicit = &GroupId::Implicit {
            namespace: "game-2048".into(),
            name: "ingress-2048".into(),
        };
        assert_eq!(
            ingress_load_balancer("lb-sandbox", implicit, "internet-facing"),
            "k8s-game2048-ingress2-066081e12f"
        );
        assert_eq!(
            ingress_security_group("lb-sandbox", implicit),
            "k8s-game2048-ingress2-c81c28902a"
        );
        let explicit = &GroupId::Explicit("store-front".into());
        assert_eq!(
            ingress_load_balancer("lb-sandbox", explicit, "internet-facing"),
            "k8s-storefront-c821b6cdc6"
        );
        assert_eq!(
            ingress_security_group("lb-sandbox", explicit),
            "k8s-storefront-102d9e54cd"
        );
        assert_eq!(
            ingress_target_group(&IngressTargetGroup {
                cluster: "lb-sandbox",
                group: explicit,
                ingress_namespace: "store",
                ingress_name: "cart",
                service_name: "cart",
                service_uid: "5868d9b6-1e34-4c30-99ca-0e94f0e1c352",
                service_port: "80",
                port: 8080,
                target_type: "ip",
                protocol: "HTTP",
                protocol_version: "HTTP1",
            }),
            "k8s-store-cart-411fb25aea"
        );
    }

    #[test]
    fn service_and_backend_names_are_upstreams() {
        let service = ServiceName {
            namespace: "nlb-demo",
            name: "svc-nlb-ip-type",
            uid: "883089c2-56e1-4678-a2ee-545bd585e7b9",
        };
        assert_eq!(
            service_load_balancer("lb-sandbox", service, "internet-facing"),
            "k8s-nlbdemo-svcnlbip-cffca4911d"
        );
        assert_eq!(
            service_security_group("lb-sandbox", service),
            "k8s-nlbdemo-svcnlbip-532c35bed2"
        );
        assert_eq!(
            service_target_group(&ServiceTargetGroup {
                cluster: "lb-sandbox",
                service,
                service_port: 80,
                port: 8080,
                target_type: "ip",
                protocol: "TCP",
                health_check_protocol: "TCP",
                health_check_interval: 10,
            }),
            "k8s-nlbdemo-svcnlbip-e9544d6c87"
        );
        assert_eq!(
            backend_security_group("lb-sandbox"),
            "k8s-traffic-lbsandbox-b61a8e4488"
        );
    }

    #[test]
    fn long_and_odd_names_fit_elb() {
        let long = service_load_balancer(
            "c",
            ServiceName {
                namespace: "a-very-long-namespace-name",
                name: "an.even.longer.service.name",
                uid: "u",
            },
            "internal",
        );
        assert_eq!(long.len(), MAX_NAME, "{long}");
        let group = ingress_load_balancer(
            "c",
            &GroupId::Explicit("a.group_with/odd*characters-and-length".into()),
            "internal",
        );
        assert!(group.starts_with("k8s-agroupwithoddchar-"), "{group}");
        assert_eq!(group.len(), MAX_NAME, "{group}");
        assert!(
            [long, group]
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        );
    }

    #[test]
    fn what_elb_cannot_modify_changes_the_name() {
        let service = ServiceName {
            namespace: "ns",
            name: "web",
            uid: "uid-1",
        };
        let base = ServiceTargetGroup {
            cluster: "c",
            service,
            service_port: 80,
            port: 8080,
            target_type: "ip",
            protocol: "TCP",
            health_check_protocol: "TCP",
            health_check_interval: 10,
        };
        let name = service_target_group(&base);
        for changed in [
            ServiceTargetGroup {
                protocol: "TLS",
                ..base
            },
            ServiceTargetGroup { port: 8081, ..base },
            ServiceTargetGroup {
                target_type: "instance",
                ..base
            },
            ServiceTargetGroup {
                service: ServiceName {
                    uid: "uid-2",
                    ..service
                },
                ..base
            },
        ] {
            assert_ne!(service_target_group(&changed), name, "{changed:?}");
        }
        assert_ne!(
            service_load_balancer("c", service, "internal"),
            service_load_balancer("c", service, "internet-facing")
        );
    }

    #[test]
    fn gateway_names_have_upstreams_shape_and_inputs() {
        let gateway = GatewayName {
            namespace: "gateway-conformance-infra",
            name: "same-namespace",
            uid: "0b5e6d7a",
        };
        let lb = gateway_load_balancer("lb-sandbox", gateway, "internal");
        assert!(lb.starts_with("k8s-gatewayc-samename-"), "{lb}");
        assert_eq!(lb.len(), "k8s-gatewayc-samename-".len() + 10);
        assert_ne!(
            lb,
            gateway_load_balancer("lb-sandbox", gateway, "internet-facing")
        );
        let tg = GatewayTargetGroup {
            cluster: "lb-sandbox",
            gateway_namespace: "infra",
            gateway_name: "gw",
            route_namespace: "apps",
            route_name: "web-route",
            route_kind: "HTTPRoute",
            service_namespace: "apps",
            service_name: "web",
            port: 3000,
            target_type: "ip",
            protocol: "HTTP",
            protocol_version: "HTTP1",
        };
        let name = gateway_target_group(&tg);
        assert!(name.starts_with("k8s-apps-webroute-"), "{name}");
        // The same inputs written one after another: moving a character between two inputs
        // gives the same hash (upstream's concatenation without separators).
        let shifted = GatewayTargetGroup {
            route_name: "web-rout",
            route_kind: "eHTTPRoute",
            ..tg
        };
        let hash = |n: &str| n[n.len() - 10..].to_string();
        assert_eq!(hash(&name), hash(&gateway_target_group(&shifted)));
        assert_ne!(
            name,
            gateway_target_group(&GatewayTargetGroup {
                route_kind: "GRPCRoute",
                ..tg
            })
        );
    }
}
