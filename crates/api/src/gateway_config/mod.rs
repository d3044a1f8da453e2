//! The upstream controller's own Gateway API configuration kinds (`gateway.k8s.aws`):
//! [`LoadBalancerConfiguration`] (a Gateway's or GatewayClass's load balancer),
//! [`TargetGroupConfiguration`] (the target groups of a Service's routes) and
//! [`ListenerRuleConfiguration`] (ALB-only rule actions and conditions, by a route's
//! `ExtensionRef` filter). Field names, types, enumerations and required fields are upstream's, so
//! its users' manifests apply unchanged: `v1` is stored and `v1beta1` (what upstream releases
//! serve) is served with the same schema. Free-form values stay strings where the controller
//! reads them, and the schema carries the enumerations.

mod listener_rule;
mod load_balancer;
mod target_group;

pub use listener_rule::*;
pub use load_balancer::*;
pub use target_group::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
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
