//! Upstream's LoadBalancerConfiguration (`gateway.k8s.aws`) on a Gateway's ALB: the one its
//! GatewayClass names and the one the Gateway names (`infrastructure.parametersRef`, same
//! namespace), merged as upstream merges them (the class's `mergingMode`, by default the class's
//! wins: single fields whole, tags and attributes by key, listener configurations by
//! `protocolPort`). The fields an ALB Gateway reads are below; a configuration that sets any
//! other is refused, naming them, rather than half-applied.

use std::collections::BTreeMap;

use lb_api::gateway_config::{Attribute, ListenerConfiguration, LoadBalancerConfigurationSpec};

use lb_api::shown::shown;

use crate::naming::{LOAD_BALANCER_NAME_RULE, is_load_balancer_name};
use crate::stack::{IpAddressType, Scheme};

/// What the Gateway's ALB takes from its configurations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadBalancerSettings {
    pub name: Option<String>,
    pub scheme: Option<Scheme>,
    pub ip_address_type: Option<IpAddressType>,
    /// Subnet IDs or names.
    pub subnets: Option<Vec<String>>,
    pub tags: BTreeMap<String, String>,
    pub attributes: BTreeMap<String, String>,
    /// By `protocolPort` (`HTTPS:443`).
    pub listeners: BTreeMap<String, ListenerConfiguration>,
}

impl LoadBalancerSettings {
    /// The certificates (ARNs) configured for HTTPS listeners on `port`: the default first.
    pub fn certificates(&self, port: i32) -> Vec<String> {
        let Some(listener) = self.listeners.get(&format!("HTTPS:{port}")) else {
            return Vec::new();
        };
        let mut arns: Vec<String> = listener.default_certificate.iter().cloned().collect();
        for arn in &listener.certificates {
            if !arns.contains(arn) {
                arns.push(arn.clone());
            }
        }
        arns
    }

    /// The listener configuration of `protocol:port`, if any.
    pub fn listener(&self, protocol: &str, port: i32) -> Option<&ListenerConfiguration> {
        self.listeners.get(&format!("{protocol}:{port}"))
    }
}

/// The settings of the class's (`class`) and the Gateway's (`gateway`) configurations, or what
/// an ALB Gateway cannot take from them.
pub fn settings(
    class: Option<&LoadBalancerConfigurationSpec>,
    gateway: Option<&LoadBalancerConfigurationSpec>,
) -> Result<LoadBalancerSettings, String> {
    let prefer_gateway = class.and_then(|c| c.merging_mode.as_deref()) == Some("prefer-gateway");
    let (high, low) = match prefer_gateway {
        true => (gateway, class),
        false => (class, gateway),
    };
    let mut unsupported: Vec<&str> = Vec::new();
    for spec in [high, low].into_iter().flatten() {
        unsupported.extend(unsupported_fields(spec));
    }
    unsupported.sort_unstable();
    unsupported.dedup();
    if !unsupported.is_empty() {
        return Err(format!(
            "LoadBalancerConfiguration fields not supported on an ALB Gateway yet: {}",
            unsupported.join(", ")
        ));
    }
    let pick = |field: fn(&LoadBalancerConfigurationSpec) -> Option<String>| {
        high.and_then(field).or_else(|| low.and_then(field))
    };
    let refused = |field: &str, value: &str, want: &str| {
        format!(
            "LoadBalancerConfiguration spec.{field} {} is not {want}",
            shown(value)
        )
    };
    let scheme = match pick(|s| s.scheme.clone()) {
        None => None,
        Some(text) => Some(
            Scheme::parse(&text)
                .ok_or_else(|| refused("scheme", &text, "internal or internet-facing"))?,
        ),
    };
    let ip_address_type = match pick(|s| s.ip_address_type.clone()) {
        None => None,
        Some(text) => Some(IpAddressType::parse(&text).ok_or_else(|| {
            refused(
                "ipAddressType",
                &text,
                "ipv4, dualstack or dualstack-without-public-ipv4",
            )
        })?),
    };
    let name = pick(|s| s.load_balancer_name.clone());
    // ELB refuses any other name: said here, by field, not by the first CreateLoadBalancer.
    if let Some(name) = name.as_deref().filter(|n| !is_load_balancer_name(n)) {
        return Err(refused("loadBalancerName", name, LOAD_BALANCER_NAME_RULE));
    }
    let subnets = [high, low]
        .into_iter()
        .flatten()
        .find(|s| !s.load_balancer_subnets.is_empty())
        .map(|s| {
            s.load_balancer_subnets
                .iter()
                .filter_map(|subnet| subnet.identifier.clone())
                .collect()
        });
    let mut tags = BTreeMap::new();
    let mut attributes = BTreeMap::new();
    let mut listeners = BTreeMap::new();
    // The low-priority one first, so that the high one's keys win.
    for spec in [low, high].into_iter().flatten() {
        tags.extend(spec.tags.clone().unwrap_or_default());
        attributes.extend(pairs(&spec.load_balancer_attributes));
        for listener in &spec.listener_configurations {
            listeners.insert(listener.protocol_port.clone(), listener.clone());
        }
    }
    Ok(LoadBalancerSettings {
        name,
        scheme,
        ip_address_type,
        subnets,
        tags,
        attributes,
        listeners,
    })
}

fn pairs(attributes: &[Attribute]) -> impl Iterator<Item = (String, String)> + '_ {
    attributes.iter().map(|a| (a.key.clone(), a.value.clone()))
}

/// The fields set in `spec` that an ALB Gateway does not read yet.
fn unsupported_fields(spec: &LoadBalancerConfigurationSpec) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let mut check = |set: bool, name: &'static str| {
        if set {
            fields.push(name);
        }
    };
    check(
        spec.enforce_security_group_inbound_rules_on_private_link_traffic
            .is_some(),
        "enforceSecurityGroupInboundRulesOnPrivateLinkTraffic",
    );
    check(
        spec.customer_owned_ipv4_pool.is_some(),
        "customerOwnedIpv4Pool",
    );
    check(spec.ipv4_ipam_pool_id.is_some(), "ipv4IPAMPoolId");
    check(
        spec.load_balancer_subnets_selector.is_some(),
        "loadBalancerSubnetsSelector",
    );
    check(
        spec.disable_security_group.is_some(),
        "disableSecurityGroup",
    );
    check(!spec.security_groups.is_empty(), "securityGroups");
    check(
        !spec.security_group_prefixes.is_empty(),
        "securityGroupPrefixes",
    );
    check(!spec.source_ranges.is_empty(), "sourceRanges");
    check(spec.enable_icmp.is_some(), "enableICMP");
    check(
        spec.manage_backend_security_group_rules.is_some(),
        "manageBackendSecurityGroupRules",
    );
    check(
        spec.minimum_load_balancer_capacity.is_some(),
        "minimumLoadBalancerCapacity",
    );
    check(spec.waf_v2.is_some(), "wafV2");
    check(spec.shield_configuration.is_some(), "shieldConfiguration");
    check(
        spec.default_target_group_configuration.is_some(),
        "defaultTargetGroupConfiguration",
    );
    let subnet_allocations = spec.load_balancer_subnets.iter().any(|s| {
        s.eip_allocation.is_some()
            || s.private_ipv4_allocation.is_some()
            || s.ipv6_allocation.is_some()
            || s.source_nat_ipv6_prefix.is_some()
    });
    check(
        subnet_allocations,
        "loadBalancerSubnets allocations (NLB only)",
    );
    let listener_extras = spec.listener_configurations.iter().any(|l| {
        l.mutual_authentication.is_some()
            || !l.listener_attributes.is_empty()
            || l.quic_enabled.is_some()
            || l.target_group_stickiness.is_some()
    });
    check(
        listener_extras,
        "listenerConfigurations mutualAuthentication / listenerAttributes / quicEnabled / targetGroupStickiness",
    );
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> LoadBalancerConfigurationSpec {
        serde_json::from_value(value).expect("spec")
    }

    #[test]
    fn the_class_wins_by_default_tags_attributes_and_listeners_merge_by_key() {
        let class = spec(json!({
            "scheme": "internet-facing",
            "tags": {"team": "platform", "env": "prod"},
            "loadBalancerAttributes": [{"key": "idle_timeout.timeout_seconds", "value": "120"}],
            "listenerConfigurations": [{"protocolPort": "HTTPS:443", "defaultCertificate": "arn:class"}],
        }));
        let gateway = spec(json!({
            "scheme": "internal",
            "loadBalancerName": "web",
            "tags": {"env": "dev", "app": "web"},
            "listenerConfigurations": [
                {"protocolPort": "HTTPS:443", "defaultCertificate": "arn:gateway"},
                {"protocolPort": "HTTPS:8443", "defaultCertificate": "arn:one", "certificates": ["arn:two", "arn:one"]},
            ],
        }));
        let merged = settings(Some(&class), Some(&gateway)).expect("settings");
        assert_eq!(merged.scheme, Some(Scheme::InternetFacing));
        assert_eq!(merged.name.as_deref(), Some("web"));
        assert_eq!(merged.tags["env"], "prod");
        assert_eq!(merged.tags["app"], "web");
        assert_eq!(merged.attributes["idle_timeout.timeout_seconds"], "120");
        assert_eq!(merged.certificates(443), ["arn:class"]);
        assert_eq!(merged.certificates(8443), ["arn:one", "arn:two"]);
        assert!(merged.certificates(80).is_empty());
        let mut preferring = class.clone();
        preferring.merging_mode = Some("prefer-gateway".into());
        let merged = settings(Some(&preferring), Some(&gateway)).expect("settings");
        assert_eq!(merged.scheme, Some(Scheme::Internal));
        assert_eq!(merged.tags["env"], "dev");
        assert_eq!(merged.certificates(443), ["arn:gateway"]);
    }

    #[test]
    fn fields_not_read_yet_refuse_the_configuration_by_name() {
        let with = spec(
            json!({"scheme": "internal", "wafV2": {"webACL": "arn"}, "sourceRanges": ["10.0.0.0/8"]}),
        );
        let err = settings(None, Some(&with)).unwrap_err();
        assert!(
            err.contains("sourceRanges") && err.contains("wafV2"),
            "{err}"
        );
        assert_eq!(settings(None, None), Ok(LoadBalancerSettings::default()));
    }

    #[test]
    fn a_bad_name_scheme_or_address_type_is_refused_by_field_and_value() {
        // Before: a name ELB refuses was taken (and CreateLoadBalancer failed), and a bad scheme
        // was said as "scheme public", naming neither the field nor what it takes.
        let refused = |value: serde_json::Value| settings(None, Some(&spec(value))).unwrap_err();
        assert_eq!(
            refused(json!({"loadBalancerName": "shop front"})),
            "LoadBalancerConfiguration spec.loadBalancerName \"shop front\" is not a load balancer name (at most 32 letters, digits and hyphens, no hyphen first or last)"
        );
        assert_eq!(
            refused(json!({"scheme": "public"})),
            "LoadBalancerConfiguration spec.scheme \"public\" is not internal or internet-facing"
        );
        assert!(
            refused(json!({"ipAddressType": "v6"}))
                .starts_with("LoadBalancerConfiguration spec.ipAddressType \"v6\" is not ipv4")
        );
    }
}

#[cfg(test)]
#[path = "load_balancer_config_property_tests.rs"]
mod property_tests;
