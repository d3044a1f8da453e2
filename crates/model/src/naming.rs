//! Names of what the controller creates in AWS and Kubernetes: `k8s-<ns8>-<name8>-<hash10>`, the
//! shape upstream uses, so a console of either controller reads the same.
//!
//! The hash covers what makes the resource itself: the cluster, the object, and the fields ELB
//! cannot change in place (a load balancer's scheme; a target group's protocol, port, target type,
//! address type). Change one of those and the name changes too, so the replacement can exist next
//! to the old resource while traffic moves (names are unique per account and region).

use sha2::{Digest, Sha256};

/// ELB's limit for load balancer and target group names.
pub const MAX_NAME: usize = 32;

/// The first 8 characters of `value` that ELB accepts in a name (letters, digits), lower-cased.
fn short(value: &str) -> String {
    value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The first 10 hex digits of SHA-256 over the parts, each ended by a NUL (so `a`,`bc` and `ab`,`c`
/// differ).
fn hash10(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hasher
        .finalize()
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `k8s-<ns8>-<name8>-<hash10>`: at most 4 + 9 + 9 + 10 = 32 characters.
pub fn resource_name(namespace: &str, name: &str, hashed: &[&str]) -> String {
    format!(
        "k8s-{}-{}-{}",
        short(namespace),
        short(name),
        hash10(hashed)
    )
}

/// A Service's or an Ingress group's load balancer.
pub fn load_balancer_name(cluster: &str, namespace: &str, name: &str, scheme: &str) -> String {
    resource_name(namespace, name, &[cluster, namespace, name, scheme])
}

/// What makes a target group, as ELB sees it: none of it can change in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetGroupIdentity<'a> {
    pub cluster: &'a str,
    pub namespace: &'a str,
    /// The Service the targets come from.
    pub service: &'a str,
    /// The Service port, as a string (number or name).
    pub service_port: &'a str,
    pub protocol: &'a str,
    pub port: u16,
    pub target_type: &'a str,
    pub ip_address_type: &'a str,
}

/// The target group's name; its TargetGroupBinding has the same name.
pub fn target_group_name(id: &TargetGroupIdentity) -> String {
    let port = id.port.to_string();
    resource_name(
        id.namespace,
        id.service,
        &[
            id.cluster,
            id.namespace,
            id.service,
            id.service_port,
            id.protocol,
            &port,
            id.target_type,
            id.ip_address_type,
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> TargetGroupIdentity<'static> {
        TargetGroupIdentity {
            cluster: "prod",
            namespace: "game-2048",
            service: "service-2048",
            service_port: "80",
            protocol: "TCP",
            port: 8080,
            target_type: "ip",
            ip_address_type: "ipv4",
        }
    }

    #[test]
    fn names_have_upstreams_shape_and_fit_elb() {
        let name = target_group_name(&identity());
        assert!(name.starts_with("k8s-game2048-service2-"), "{name}");
        assert_eq!(name.len(), "k8s-game2048-service2-".len() + 10);
        let long = load_balancer_name(
            "c",
            "a-very-long-namespace-name",
            "an.even.longer.service.name",
            "internal",
        );
        assert!(long.len() <= MAX_NAME, "{long}");
        assert!(long.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn names_are_stable_and_change_with_what_elb_cannot_modify() {
        let base = target_group_name(&identity());
        assert_eq!(base, target_group_name(&identity()));
        for changed in [
            TargetGroupIdentity {
                protocol: "TLS",
                ..identity()
            },
            TargetGroupIdentity {
                port: 8081,
                ..identity()
            },
            TargetGroupIdentity {
                target_type: "instance",
                ..identity()
            },
            TargetGroupIdentity {
                cluster: "staging",
                ..identity()
            },
            TargetGroupIdentity {
                service_port: "443",
                ..identity()
            },
        ] {
            assert_ne!(target_group_name(&changed), base, "{changed:?}");
        }
        assert_ne!(
            load_balancer_name("c", "ns", "web", "internal"),
            load_balancer_name("c", "ns", "web", "internet-facing")
        );
        // Parts are delimited: moving a character across a boundary changes the hash.
        assert_ne!(hash10(&["ab", "c"]), hash10(&["a", "bc"]));
    }
}
