//! `TargetGroupBinding` (`elbv2.k8s.aws/v1beta1`): binds a Service's endpoints (or its nodes'
//! NodePort) to an ELB target group. Field names follow the upstream controller exactly.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::shown::shown;

// clippy reads the repeated `printcolumn(type_ = ...)` arguments as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "elbv2.k8s.aws",
    version = "v1beta1",
    kind = "TargetGroupBinding",
    namespaced,
    status = "TargetGroupBindingStatus",
    shortname = "tgb",
    category = "all",
    printcolumn(
        name = "SERVICE-NAME",
        type_ = "string",
        json_path = ".spec.serviceRef.name",
        description = "The Kubernetes Service's name"
    ),
    printcolumn(
        name = "SERVICE-PORT",
        type_ = "string",
        json_path = ".spec.serviceRef.port",
        description = "The Kubernetes Service's port"
    ),
    printcolumn(
        name = "TARGET-TYPE",
        type_ = "string",
        json_path = ".spec.targetType",
        description = "The AWS TargetGroup's TargetType"
    ),
    printcolumn(
        name = "ARN",
        type_ = "string",
        json_path = ".spec.targetGroupARN",
        description = "The AWS TargetGroup's Amazon Resource Name",
        priority = 1
    ),
    printcolumn(
        name = "HEALTH",
        type_ = "string",
        json_path = ".status.targetHealth",
        description = "Healthy / registered targets in the target group, as last seen"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupBindingSpec {
    /// ARN of the target group. One of targetGroupARN and targetGroupName is required.
    #[serde(
        rename = "targetGroupARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub target_group_arn: Option<String>,
    /// Name of the target group, resolved to its ARN by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_name: Option<String>,
    /// How targets are registered: `ip` (pod addresses) or `instance` (node instances + NodePort).
    /// Defaults to the target group's own type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<TargetType>,
    /// The Service whose endpoints (or NodePort) are registered.
    pub service_ref: ServiceReference,
    /// `ipv4` (default) or `ipv6`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_type: Option<String>,
    /// instance targets: the nodes to register (default: every Ready node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    /// Ingress rules that let the load balancer reach the targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<TargetGroupBindingNetworking>,
    /// VPC of the target group; checked against the target group when set.
    #[serde(rename = "vpcID", default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// The target group is shared with other clusters: only targets this binding registered are
    /// ever deregistered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_cluster_target_group: Option<bool>,
    /// The target group's protocol (HTTP, HTTPS, TCP, TLS, UDP, TCP_UDP, ...); defaulted from the
    /// target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_protocol: Option<String>,
    /// A role to assume for a target group in another AWS account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_role_arn_to_assume: Option<String>,
    /// The external ID the role's trust policy requires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_external_id: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    Ip,
    Instance,
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Ip => "ip",
            TargetType::Instance => "instance",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ServiceReference {
    pub name: String,
    /// The Service port: its number or its name.
    pub port: IntOrString,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TargetGroupBindingNetworking {
    #[serde(default)]
    pub ingress: Vec<NetworkingIngressRule>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct NetworkingIngressRule {
    pub from: Vec<NetworkingPeer>,
    pub ports: Vec<NetworkingPort>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkingPeer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group: Option<SecurityGroup>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct IpBlock {
    pub cidr: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SecurityGroup {
    #[serde(rename = "groupID")]
    pub group_id: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct NetworkingPort {
    /// TCP (default), UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// A port number or name; all ports when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
}

impl TargetGroupBindingSpec {
    /// Checks what the schema cannot: the networking rules' CIDRs, security group IDs, protocols
    /// and ports. The message names the field and the value (as [`shown`] shows it).
    pub fn validate(&self) -> Result<(), String> {
        let rules = self.networking.iter().flat_map(|n| n.ingress.iter());
        for (i, rule) in rules.enumerate() {
            for peer in &rule.from {
                match (&peer.ip_block, &peer.security_group) {
                    (Some(block), None) => {
                        block.cidr.parse::<ipnet::IpNet>().map_err(|_| {
                            format!(
                                "spec.networking.ingress[{i}].from.ipBlock.cidr {} is not a CIDR",
                                shown(&block.cidr)
                            )
                        })?;
                    }
                    (None, Some(group)) => {
                        if !group.group_id.starts_with("sg-") {
                            return Err(format!(
                                "spec.networking.ingress[{i}].from.securityGroup.groupID {} is not a security group ID",
                                shown(&group.group_id)
                            ));
                        }
                    }
                    _ => {
                        return Err(format!(
                            "spec.networking.ingress[{i}].from needs exactly one of ipBlock and securityGroup"
                        ));
                    }
                }
            }
            for port in &rule.ports {
                if let Some(protocol) = &port.protocol
                    && !matches!(protocol.as_str(), "TCP" | "UDP")
                {
                    return Err(format!(
                        "spec.networking.ingress[{i}].ports.protocol {} is not TCP or UDP",
                        shown(protocol)
                    ));
                }
                if let Some(IntOrString::Int(number)) = port.port
                    && !(1..=65535).contains(&number)
                {
                    return Err(format!(
                        "spec.networking.ingress[{i}].ports.port {number} is out of range"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupBindingStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Healthy / registered targets in the target group (`3/3 healthy`), as of the last pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_health: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_object_deserializes_unchanged() {
        let upstream = serde_json::json!({
            "apiVersion": "elbv2.k8s.aws/v1beta1",
            "kind": "TargetGroupBinding",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "targetGroupARN": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web/abc",
                "targetType": "ip",
                "serviceRef": {"name": "web", "port": 80},
                "ipAddressType": "ipv4",
                "vpcID": "vpc-123",
                "multiClusterTargetGroup": false,
                "networking": {"ingress": [{
                    "from": [{"securityGroup": {"groupID": "sg-1"}}, {"ipBlock": {"cidr": "10.0.0.0/8"}}],
                    "ports": [{"protocol": "TCP", "port": 8080}],
                }]},
            },
        });
        let tgb: TargetGroupBinding = serde_json::from_value(upstream.clone()).unwrap();
        assert_eq!(tgb.spec.target_type, Some(TargetType::Ip));
        assert_eq!(tgb.spec.service_ref.port, IntOrString::Int(80));
        assert_eq!(tgb.spec.vpc_id.as_deref(), Some("vpc-123"));
        let again = serde_json::to_value(&tgb).unwrap();
        assert_eq!(again["spec"], upstream["spec"]);
    }

    #[test]
    fn named_service_ports_and_target_group_names() {
        let spec: TargetGroupBindingSpec = serde_json::from_value(serde_json::json!({
            "targetGroupName": "web",
            "serviceRef": {"name": "web", "port": "http"},
            "targetType": "instance",
            "nodeSelector": {"matchLabels": {"pool": "web"}},
        }))
        .unwrap();
        assert_eq!(spec.service_ref.port, IntOrString::String("http".into()));
        assert_eq!(spec.target_type, Some(TargetType::Instance));
        assert!(spec.target_group_arn.is_none());
    }

    #[test]
    fn networking_rules_are_validated_with_the_field_named() {
        let spec = |networking: serde_json::Value| -> TargetGroupBindingSpec {
            serde_json::from_value(serde_json::json!({
                "serviceRef": {"name": "web", "port": 80},
                "networking": networking,
            }))
            .unwrap()
        };
        let good = spec(serde_json::json!({"ingress": [{
            "from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}, {"securityGroup": {"groupID": "sg-1"}}],
            "ports": [{"protocol": "TCP", "port": 8080}, {"port": "http"}],
        }]}));
        assert_eq!(good.validate(), Ok(()));
        let cases = [
            (
                serde_json::json!({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0/8"}}], "ports": []}]}),
                "ipBlock.cidr \"10.0.0/8\"",
            ),
            (
                serde_json::json!({"ingress": [{"from": [{"securityGroup": {"groupID": "web"}}], "ports": []}]}),
                "groupID \"web\"",
            ),
            (
                serde_json::json!({"ingress": [{"from": [{}], "ports": []}]}),
                "exactly one",
            ),
            (
                serde_json::json!({"ingress": [{"from": [], "ports": [{"protocol": "ICMP"}]}]}),
                "\"ICMP\"",
            ),
            (
                serde_json::json!({"ingress": [{"from": [], "ports": [{"port": 70000}]}]}),
                "70000",
            ),
        ];
        for (networking, needle) in cases {
            let err = spec(networking).validate().unwrap_err();
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
    }

    #[test]
    fn crd_has_the_upstream_names_short_name_and_columns() {
        let crd = crate::target_group_binding_crd();
        let versions: Vec<(&str, bool, bool)> = crd
            .spec
            .versions
            .iter()
            .map(|v| (v.name.as_str(), v.served, v.storage))
            .collect();
        assert_eq!(
            versions,
            [("v1beta1", true, true), ("v1alpha1", true, false)]
        );
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("targetgroupbindings.elbv2.k8s.aws")
        );
        assert_eq!(crd.spec.names.short_names, Some(vec!["tgb".to_string()]));
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1beta1");
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            columns,
            [
                "SERVICE-NAME",
                "SERVICE-PORT",
                "TARGET-TYPE",
                "ARN",
                "HEALTH",
                "AGE"
            ]
        );
        assert!(version.subresources.as_ref().unwrap().status.is_some());
    }

    #[test]
    fn config_crd_matches_the_types() {
        let committed = include_str!("../../../config/crd/elbv2.k8s.aws.yaml");
        let generated = crate::crds_yaml().unwrap();
        assert!(
            committed == generated,
            "config/crd is stale: run `cargo run -- crd > config/crd/elbv2.k8s.aws.yaml`"
        );
    }

    #[test]
    fn config_crd_of_upstreams_gateway_kinds_matches_the_types() {
        let committed = include_str!("../../../config/crd/gateway.k8s.aws.yaml");
        let generated = crate::gateway_crds_yaml().unwrap();
        assert!(
            committed == generated,
            "config/crd is stale: run `cargo run -- crd gateway.k8s.aws > config/crd/gateway.k8s.aws.yaml`"
        );
    }
}
