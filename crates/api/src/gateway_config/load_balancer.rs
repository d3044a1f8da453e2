//! LoadBalancerConfiguration: a Gateway's (or a GatewayClass's) load balancer.

use std::collections::BTreeMap;

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Attribute, ConfigurationStatus};

/// A load balancer's settings, named by a Gateway's `infrastructure.parametersRef` (same
/// namespace) or a GatewayClass's `parametersRef`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "gateway.k8s.aws",
    version = "v1",
    kind = "LoadBalancerConfiguration",
    namespaced,
    status = "ConfigurationStatus",
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerConfigurationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["prefer-gateway", "prefer-gateway-class"]))]
    pub merging_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub load_balancer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["internal", "internet-facing"]))]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["ipv4", "dualstack", "dualstack-without-public-ipv4"]))]
    pub ip_address_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_security_group_inbound_rules_on_private_link_traffic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_owned_ipv4_pool: Option<String>,
    #[serde(
        rename = "ipv4IPAMPoolId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_ipam_pool_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_subnets: Vec<SubnetConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_subnets_selector: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listener_configurations: Vec<ListenerConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_security_group: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_group_prefixes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_ranges: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_attributes: Vec<Attribute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(
        rename = "enableICMP",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_icmp: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manage_backend_security_group_rules: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_load_balancer_capacity: Option<MinimumLoadBalancerCapacity>,
    #[serde(rename = "wafV2", default, skip_serializing_if = "Option::is_none")]
    pub waf_v2: Option<WafV2Configuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shield_configuration: Option<ShieldConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_target_group_configuration: Option<DefaultTargetGroupConfiguration>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubnetConfiguration {
    /// A subnet's name or ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip_allocation: Option<String>,
    #[serde(
        rename = "privateIPv4Allocation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub private_ipv4_allocation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_allocation: Option<String>,
    #[serde(
        rename = "sourceNatIPv6Prefix",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_nat_ipv6_prefix: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerConfiguration {
    /// `PROTOCOL:PORT`, e.g. `HTTPS:443`.
    #[schemars(regex(
        pattern = r"^(HTTP|HTTPS|TLS|TCP|UDP|TCP_UDP)?:(6553[0-5]|655[0-2]\d|65[0-4]\d{2}|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3})?$"
    ))]
    pub protocol_port: String,
    /// A certificate ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "enum" = ["HTTP1Only", "HTTP2Only", "HTTP2Optional", "HTTP2Preferred", "None"],
        "default" = "None"
    ))]
    pub alpn_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_stickiness: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutual_authentication: Option<MutualAuthentication>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listener_attributes: Vec<Attribute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quic_enabled: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MutualAuthentication {
    #[schemars(extend("enum" = ["off", "passthrough", "verify"]))]
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_store: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_client_certificate_expiry: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["on", "off"]))]
    pub advertise_trust_store_ca_names: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MinimumLoadBalancerCapacity {
    pub capacity_units: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct WafV2Configuration {
    #[serde(rename = "webACL")]
    pub web_acl: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ShieldConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct DefaultTargetGroupConfiguration {
    /// A TargetGroupConfiguration without `targetReference`, in this configuration's namespace.
    pub name: String,
}
