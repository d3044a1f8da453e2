//! What the Service reconciler writes to Kubernetes, as values: what to do with a Service (build,
//! clean up, or leave it alone), the TargetGroupBindings of its stack, and its status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use lb_api::keys::service as keys;
use lb_api::target_group_binding::{
    IpBlock, NetworkingIngressRule, NetworkingPeer, NetworkingPort, SecurityGroup,
    TargetGroupBindingNetworking,
};
use lb_api::{ServiceReference, TargetGroupBinding, TargetGroupBindingSpec, TargetType};

use super::selection::Selection;
use crate::stack::{Binding, NetworkSource, SourceAddresses};

/// What a reconcile does with a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAction {
    /// Ours: build its stack and converge AWS (the finalizer goes on first).
    Deploy { target_type: Option<TargetType> },
    /// Not ours (any more) or being deleted, but we made something for it: remove it all, then
    /// the finalizer.
    CleanUp,
    /// Not ours and nothing of ours: untouched.
    Ignore,
}

pub fn action(service: &Service, selection: &Selection) -> ServiceAction {
    let has_finalizer = service
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == keys::FINALIZER);
    match selection {
        Selection::Ours { target_type } => ServiceAction::Deploy {
            target_type: *target_type,
        },
        Selection::NotOurs if has_finalizer => ServiceAction::CleanUp,
        Selection::NotOurs => ServiceAction::Ignore,
    }
}

/// The name a stack's binding of `target_group_arn` takes: that of the binding of the stack that
/// already binds it (another controller, or an earlier version, may have named it otherwise;
/// upstream matches bindings by ARN too), else the desired one.
pub fn adopted_name(
    existing: &[TargetGroupBinding],
    target_group_arn: &str,
    desired: &str,
) -> String {
    existing
        .iter()
        .find(|b| b.spec.target_group_arn.as_deref() == Some(target_group_arn))
        .and_then(|b| b.metadata.name.clone())
        .unwrap_or_else(|| desired.to_string())
}

/// The labels of a Service's TargetGroupBindings (upstream's).
pub fn stack_labels(namespace: &str, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (keys::STACK_NAME_LABEL.to_string(), name.to_string()),
        (
            keys::STACK_NAMESPACE_LABEL.to_string(),
            namespace.to_string(),
        ),
    ])
}

/// The TargetGroupBinding of one target group of the stack, named `name` (the binding's own, or
/// the one an existing binding of the target group has: [`adopted_name`]), pointing at its ARN;
/// its `networking` admits `source_group` (an ID: the backend group, else the managed one) when
/// the load balancer has it, and `addresses` for rules by address (an NLB without groups).
pub fn binding_object(
    binding: &Binding,
    name: &str,
    target_group_arn: &str,
    source_group: Option<&str>,
    addresses: &SourceAddresses,
) -> TargetGroupBinding {
    let node_selector = (!binding.node_selector.is_empty()).then(|| LabelSelector {
        match_labels: Some(binding.node_selector.clone()),
        ..LabelSelector::default()
    });
    TargetGroupBinding {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(binding.namespace.clone()),
            labels: Some(binding.labels.clone()),
            ..ObjectMeta::default()
        },
        spec: TargetGroupBindingSpec {
            target_group_arn: Some(target_group_arn.to_string()),
            target_type: Some(binding.target_type),
            service_ref: ServiceReference {
                name: binding.service_name.clone(),
                port: IntOrString::Int(binding.service_port),
            },
            ip_address_type: Some(binding.ip_address_type.as_str().to_string()),
            node_selector,
            networking: networking(binding, source_group, addresses),
            multi_cluster_target_group: binding.multi_cluster.then_some(true),
            ..TargetGroupBindingSpec::default()
        },
        status: None,
    }
}

/// Upstream's `networking`: each rule from its source to its ports; the source group and the
/// addresses resolved (a rule whose source is not known is left out).
fn networking(
    binding: &Binding,
    source_group: Option<&str>,
    addresses: &SourceAddresses,
) -> Option<TargetGroupBindingNetworking> {
    let cidrs = |cidrs: &[ipnet::IpNet]| -> Vec<NetworkingPeer> {
        cidrs
            .iter()
            .map(|cidr| NetworkingPeer {
                ip_block: Some(IpBlock {
                    cidr: cidr.to_string(),
                }),
                security_group: None,
            })
            .collect()
    };
    let ingress: Vec<NetworkingIngressRule> = binding
        .networking
        .iter()
        .filter_map(|rule| {
            let from = match &rule.from {
                NetworkSource::SourceGroup => vec![NetworkingPeer {
                    ip_block: None,
                    security_group: Some(SecurityGroup {
                        group_id: source_group?.to_string(),
                    }),
                }],
                NetworkSource::LoadBalancerSubnets => cidrs(&addresses.load_balancer_subnets),
                NetworkSource::Vpc => cidrs(&addresses.vpc),
                NetworkSource::Cidrs(list) => cidrs(list),
            };
            let ports = rule
                .ports
                .iter()
                .map(|p| NetworkingPort {
                    protocol: Some(p.protocol.clone()),
                    port: p.port.clone(),
                })
                .collect();
            (!from.is_empty()).then_some(NetworkingIngressRule { from, ports })
        })
        .collect();
    (!ingress.is_empty()).then_some(TargetGroupBindingNetworking { ingress })
}

/// `status.loadBalancer` once the load balancer exists: its DNS name, as upstream reports it.
pub fn load_balancer_status(dns_name: &str) -> LoadBalancerStatus {
    LoadBalancerStatus {
        ingress: Some(vec![LoadBalancerIngress {
            hostname: Some(dns_name.to_string()),
            ..LoadBalancerIngress::default()
        }]),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(finalizers: &[&str]) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "demo", "finalizers": finalizers},
        }))
        .expect("service")
    }

    #[test]
    fn ours_deploys_and_a_service_that_left_is_cleaned_up_only_if_we_made_something() {
        let ours = Selection::Ours {
            target_type: Some(TargetType::Ip),
        };
        assert_eq!(
            action(&service(&[]), &ours),
            ServiceAction::Deploy {
                target_type: Some(TargetType::Ip)
            }
        );
        assert_eq!(
            action(&service(&[keys::FINALIZER]), &Selection::NotOurs),
            ServiceAction::CleanUp
        );
        assert_eq!(
            action(&service(&["other.io/finalizer"]), &Selection::NotOurs),
            ServiceAction::Ignore
        );
    }

    #[test]
    fn the_binding_object_points_at_the_target_group_and_carries_the_stack_labels() {
        let binding = Binding {
            name: "k8s-demo-web-0123456789".into(),
            namespace: "demo".into(),
            labels: stack_labels("demo", "web"),
            service_name: "web".into(),
            service_port: 80,
            target_group: "demo/web:80".into(),
            target_type: TargetType::Instance,
            ip_address_type: crate::stack::TargetIpAddressType::Ipv4,
            node_selector: BTreeMap::from([("role".to_string(), "edge".to_string())]),
            multi_cluster: false,
            networking: vec![crate::stack::NetworkRule {
                from: NetworkSource::SourceGroup,
                ports: vec![crate::stack::NetworkPort {
                    protocol: "TCP".into(),
                    port: Some(IntOrString::Int(30080)),
                }],
            }],
        };
        let none = SourceAddresses::default();
        let object = binding_object(&binding, &binding.name, "arn:tg", Some("sg-backend"), &none);
        let value = serde_json::to_value(&object).expect("json");
        assert_eq!(
            value,
            json!({
                "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
                "metadata": {
                    "name": "k8s-demo-web-0123456789", "namespace": "demo",
                    "labels": {"service.k8s.aws/stack-name": "web", "service.k8s.aws/stack-namespace": "demo"},
                },
                "spec": {
                    "targetGroupARN": "arn:tg", "targetType": "instance",
                    "serviceRef": {"name": "web", "port": 80}, "ipAddressType": "ipv4",
                    "nodeSelector": {"matchLabels": {"role": "edge"}},
                    "networking": {"ingress": [{
                        "from": [{"securityGroup": {"groupID": "sg-backend"}}],
                        "ports": [{"protocol": "TCP", "port": 30080}],
                    }]},
                },
            })
        );
        // Without the backend group there is no rule to write.
        assert_eq!(
            binding_object(&binding, &binding.name, "arn:tg", None, &none)
                .spec
                .networking,
            None
        );
        // Rules by address name the described addresses.
        let mut by_address = binding.clone();
        by_address.networking[0].from = NetworkSource::LoadBalancerSubnets;
        let addresses = SourceAddresses {
            load_balancer_subnets: vec![
                "10.0.0.0/24".parse().unwrap(),
                "10.0.1.0/24".parse().unwrap(),
            ],
            vpc: Vec::new(),
        };
        let object = binding_object(&by_address, &by_address.name, "arn:tg", None, &addresses);
        assert_eq!(
            serde_json::to_value(object.spec.networking).unwrap(),
            json!({"ingress": [{
                "from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}, {"ipBlock": {"cidr": "10.0.1.0/24"}}],
                "ports": [{"protocol": "TCP", "port": 30080}],
            }]})
        );
    }

    #[test]
    fn an_existing_binding_of_the_target_group_keeps_its_name() {
        let existing: TargetGroupBinding = serde_json::from_value(json!({
            "metadata": {"name": "k8s-demo-web-upstream00", "namespace": "demo"},
            "spec": {"targetGroupARN": "arn:tg", "serviceRef": {"name": "web", "port": 80}},
        }))
        .expect("binding");
        let existing = [existing];
        assert_eq!(
            adopted_name(&existing, "arn:tg", "k8s-demo-web-ours000000"),
            "k8s-demo-web-upstream00"
        );
        assert_eq!(
            adopted_name(&existing, "arn:other", "k8s-demo-web-ours000000"),
            "k8s-demo-web-ours000000"
        );
    }

    #[test]
    fn the_status_names_the_dns_name() {
        let status = load_balancer_status("k8s-demo-web-0123456789.elb.us-west-2.amazonaws.com");
        assert_eq!(
            serde_json::to_value(status).expect("json"),
            json!({"ingress": [{"hostname": "k8s-demo-web-0123456789.elb.us-west-2.amazonaws.com"}]})
        );
    }
}
