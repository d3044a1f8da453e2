//! The upstream controller's own Gateway API configuration kinds (`gateway.k8s.aws`):
//! [`LoadBalancerConfiguration`] (a Gateway's or GatewayClass's load balancer),
//! [`TargetGroupConfiguration`] (the target groups of a Service's routes) and
//! [`ListenerRuleConfiguration`] (ALB-only rule actions and conditions, by a route's
//! `ExtensionRef` filter). Field names, types, enumerations and required fields are upstream's, so
//! its users' manifests apply unchanged: `v1` is stored and `v1beta1` (what upstream releases
//! serve) is served with the same schema. Free-form values stay strings where the controller
//! reads them, and the schema carries the enumerations.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of the three kinds.
pub const GROUP: &str = "gateway.k8s.aws";

/// A `{key, value}` pair (load balancer, listener and target group attributes).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Attribute {
    pub key: String,
    pub value: String,
}

/// What a Gateway pass last read of the configuration (upstream's status).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_gateway_configuration_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_gateway_class_configuration_generation: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// TargetGroupConfiguration

/// The target groups made for a Service's routes: defaults, and per route kind / namespace /
/// name. One per Service, in the Service's namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "gateway.k8s.aws",
    version = "v1",
    kind = "TargetGroupConfiguration",
    namespaced,
    status = "ConfigurationStatus",
    printcolumn(
        name = "SERVICE-NAME",
        type_ = "string",
        json_path = ".spec.targetReference.name",
        description = "The Kubernetes Service's name"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupConfigurationSpec {
    /// The object whose target groups these are (a Service of this namespace). Without it, the
    /// configuration can only be a LoadBalancerConfiguration's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_reference: Option<TargetReference>,
    /// Applies to every route of the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_configuration: Option<TargetGroupProps>,
    /// Per route: the most specific identifier (kind, namespace, name) wins, field by field over
    /// the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route_configurations: Vec<RouteConfiguration>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetReference {
    /// `""` for the core group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = ""))]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Service"))]
    pub kind: Option<String>,
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteConfiguration {
    pub route_identifier: RouteIdentifier,
    pub target_group_props: TargetGroupProps,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteIdentifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A target group's settings; unset ones take the controller's defaults.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupProps {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["ipv4", "ipv6"]))]
    pub ip_address_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_config: Option<HealthCheckConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_group_attributes: Vec<Attribute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["instance", "ip"]))]
    pub target_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP"]))]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["HTTP1", "HTTP2", "GRPC"]))]
    pub protocol_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_control_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_multi_cluster: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold_count: Option<i32>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_interval: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_path: Option<String>,
    /// A port number as a string; default: the traffic port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["HTTP", "HTTPS", "TCP"]))]
    pub health_check_protocol: Option<String>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_timeout: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<HealthCheckMatcher>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckMatcher {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_code: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// LoadBalancerConfiguration

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

// ---------------------------------------------------------------------------------------------
// ListenerRuleConfiguration

/// ALB rule actions and conditions a route rule takes by an `ExtensionRef` filter (same
/// namespace as the route).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "gateway.k8s.aws",
    version = "v1",
    kind = "ListenerRuleConfiguration",
    namespaced,
    status = "ListenerRuleConfigurationStatus",
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ListenerRuleConfigurationSpec {
    /// At most one routing action (forward, redirect, fixed-response) and one pre-routing one
    /// (authenticate-cognito, authenticate-oidc, jwt-validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2))]
    pub actions: Option<Vec<RuleAction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub conditions: Option<Vec<RuleCondition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerRuleConfigurationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleAction {
    #[serde(rename = "type")]
    #[schemars(extend("enum" = [
        "forward", "fixed-response", "redirect", "authenticate-cognito", "authenticate-oidc",
        "jwt-validation"
    ]))]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_config: Option<ForwardActionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_config: Option<RedirectActionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_response_config: Option<FixedResponseActionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticate_cognito_config: Option<AuthenticateCognitoActionConfig>,
    #[serde(
        rename = "authenticateOIDCConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub authenticate_oidc_config: Option<AuthenticateOidcActionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_validation_config: Option<JwtValidationActionConfig>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForwardActionConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_stickiness_config: Option<TargetGroupStickinessConfig>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupStickinessConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800), extend("default" = 3600))]
    pub duration_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub enabled: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct RedirectActionConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "#{query}"))]
    pub query: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FixedResponseActionConfig {
    pub status_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "enum" = ["text/plain", "text/css", "text/html", "application/javascript", "application/json"],
        "default" = "text/plain"
    ))]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticateCognitoActionConfig {
    pub user_pool_arn: String,
    pub user_pool_client_id: String,
    pub user_pool_domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_request_extra_params: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["deny", "allow", "authenticate"]))]
    pub on_unauthenticated_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_cookie_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800))]
    pub session_timeout: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticateOidcActionConfig {
    pub authorization_endpoint: String,
    pub secret: SecretName,
    pub issuer: String,
    pub token_endpoint: String,
    pub user_info_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_request_extra_params: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["deny", "allow", "authenticate"]))]
    pub on_unauthenticated_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_cookie_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800))]
    pub session_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_existing_client_secret: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SecretName {
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtValidationActionConfig {
    #[schemars(length(max = 256))]
    pub issuer: String,
    #[schemars(length(max = 256))]
    pub jwks_endpoint: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_claims: Vec<JwtClaim>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct JwtClaim {
    #[schemars(extend("enum" = ["single-string", "string-array", "space-separated-values"]))]
    pub format: String,
    #[schemars(length(min = 1))]
    pub name: String,
    #[schemars(length(min = 1, max = 10))]
    pub values: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleCondition {
    #[schemars(extend("enum" = ["source-ip"]))]
    pub field: String,
    #[serde(
        rename = "sourceIPConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_ip_config: Option<SourceIpConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_indexes: Option<Vec<i32>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SourceIpConfig {
    #[schemars(length(min = 1))]
    pub values: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// The CRDs

/// The three CRDs: `v1` stored, and `v1beta1` (upstream's released version) served with the
/// same schema, deprecated as upstream marks it.
pub fn crds() -> Vec<CustomResourceDefinition> {
    use kube_core::CustomResourceExt;
    [
        LoadBalancerConfiguration::crd(),
        ListenerRuleConfiguration::crd(),
        TargetGroupConfiguration::crd(),
    ]
    .into_iter()
    .map(with_v1beta1)
    .collect()
}

fn with_v1beta1(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let kind = crd.spec.names.kind.clone();
    if let Some(v1) = crd.spec.versions.first().cloned() {
        let mut beta = v1;
        beta.name = "v1beta1".into();
        beta.storage = false;
        beta.deprecated = Some(true);
        beta.deprecation_warning = Some(format!(
            "{GROUP}/v1beta1 {kind} is deprecated; use {GROUP}/v1 instead"
        ));
        crd.spec.versions.push(beta);
    }
    crd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_manifests_deserialize() {
        let tgc: TargetGroupConfiguration = serde_yaml_ng::from_str(
            r#"
apiVersion: gateway.k8s.aws/v1beta1
kind: TargetGroupConfiguration
metadata: {name: custom-tg-config, namespace: example-namespace}
spec:
  targetReference:
    name: my-service
  defaultConfiguration:
    targetType: ip
    healthCheckConfig:
      healthCheckPath: /health
      healthCheckInterval: 30
      healthCheckPort: "8080"
      healthyThresholdCount: 3
      matcher: {httpCode: "200"}
    targetGroupAttributes:
      - key: deregistration_delay.timeout_seconds
        value: "30"
  routeConfigurations:
    - routeIdentifier: {kind: HTTPRoute, namespace: example-ns-1, name: api-route}
      targetGroupProps:
        healthCheckConfig: {healthCheckPath: /api/health, healthCheckProtocol: HTTP}
"#,
        )
        .unwrap();
        let default = tgc.spec.default_configuration.unwrap();
        assert_eq!(default.target_type.as_deref(), Some("ip"));
        assert_eq!(
            default
                .health_check_config
                .unwrap()
                .health_check_port
                .as_deref(),
            Some("8080")
        );
        let lrc: ListenerRuleConfiguration = serde_yaml_ng::from_str(
            r#"
apiVersion: gateway.k8s.aws/v1beta1
kind: ListenerRuleConfiguration
metadata: {name: oidc, namespace: example-ns}
spec:
  actions:
    - type: authenticate-oidc
      authenticateOIDCConfig:
        authorizationEndpoint: https://my-auth-server.com
        secret: {name: my-secret-name}
        issuer: https://my-issuer.com
        tokenEndpoint: https://my-token-endpoint.com
        userInfoEndpoint: https://my-user-info-endpoint.com
  conditions:
    - field: source-ip
      matchIndexes: [0, 1]
      sourceIPConfig: {values: [10.0.0.0/5]}
"#,
        )
        .unwrap();
        assert!(
            lrc.spec.actions.unwrap()[0]
                .authenticate_oidc_config
                .is_some()
        );
        let lbc: LoadBalancerConfiguration = serde_yaml_ng::from_str(
            r#"
apiVersion: gateway.k8s.aws/v1beta1
kind: LoadBalancerConfiguration
metadata: {name: lb, namespace: example-ns}
spec:
  scheme: internet-facing
  ipv4IPAMPoolId: ipam-1234
  loadBalancerSubnets:
    - {identifier: my-subnet, privateIPv4Allocation: 127.0.0.1}
  enableICMP: true
  wafV2: {webACL: arn}
  listenerConfigurations:
    - protocolPort: HTTPS:443
      defaultCertificate: arn:aws:acm:us-west-2:123456789012:certificate/x
      mutualAuthentication: {mode: verify, trustStore: ts-1234}
"#,
        )
        .unwrap();
        assert_eq!(lbc.spec.ipv4_ipam_pool_id.as_deref(), Some("ipam-1234"));
        assert_eq!(lbc.spec.enable_icmp, Some(true));
    }

    #[test]
    fn each_crd_serves_v1_stored_and_v1beta1() {
        for crd in crds() {
            assert_eq!(crd.spec.group, GROUP);
            assert_eq!(crd.spec.scope, "Namespaced");
            let versions: Vec<(&str, bool, bool)> = crd
                .spec
                .versions
                .iter()
                .map(|v| (v.name.as_str(), v.served, v.storage))
                .collect();
            assert_eq!(versions, [("v1", true, true), ("v1beta1", true, false)]);
            assert_eq!(
                crd.spec.versions[0].schema, crd.spec.versions[1].schema,
                "one schema"
            );
            assert!(
                crd.spec.versions[0]
                    .subresources
                    .as_ref()
                    .unwrap()
                    .status
                    .is_some()
            );
        }
    }
}
