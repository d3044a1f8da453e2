//! Builders the tests of every crate share (feature `fixtures`): the cluster's settings, a VPC
//! with public and private subnets in two zones, blog 001's `svc-nlb-ip-type` Service, Ingresses
//! and the Services they point at.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use lb_api::TargetType;
use serde_json::{Value, json};

use crate::ingress::{IngressSettings, Scheme};
use crate::service::build::ClusterSettings;
use crate::service::subnets::Subnet;

/// The prefix of the Service annotations.
pub const P: &str = "service.beta.kubernetes.io/";
/// The cluster of every fixture.
pub const CLUSTER: &str = "lab";

/// Cluster `lab`, default tag `owner=platform`, upstream's defaults otherwise.
pub fn settings() -> ClusterSettings {
    ClusterSettings {
        default_tags: BTreeMap::from([("owner".to_string(), "platform".to_string())]),
        default_ssl_policy: "ELBSecurityPolicy-2016-08".into(),
        ..ClusterSettings::upstream_defaults(CLUSTER)
    }
}

/// Cluster `lab` for Ingresses: instance targets and internal ALBs unless told otherwise.
pub fn ingress_settings() -> IngressSettings {
    IngressSettings {
        cluster: CLUSTER.into(),
        default_tags: BTreeMap::new(),
        default_ssl_policy: "ELBSecurityPolicy-2016-08".into(),
        default_target_type: TargetType::Instance,
        default_scheme: Scheme::Internal,
        security_groups: Default::default(),
        external_managed_tags: Vec::new(),
    }
}

pub fn subnet(id: &str, zone: &str, tags: &[(&str, &str)]) -> Subnet {
    Subnet {
        cidr: None,
        id: id.into(),
        zone: zone.into(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
    }
}

/// Two zones with public and private subnets, and a subnet of another cluster.
pub fn vpc() -> Vec<Subnet> {
    vec![
        subnet(
            "subnet-pub-a",
            "us-west-2a",
            &[("kubernetes.io/role/elb", "1")],
        ),
        subnet(
            "subnet-pub-b",
            "us-west-2b",
            &[("kubernetes.io/role/elb", "")],
        ),
        subnet(
            "subnet-priv-a",
            "us-west-2a",
            &[("kubernetes.io/role/internal-elb", "1")],
        ),
        subnet(
            "subnet-priv-b",
            "us-west-2b",
            &[("kubernetes.io/role/internal-elb", "1")],
        ),
        subnet(
            "subnet-aaa-other",
            "us-west-2a",
            &[
                ("kubernetes.io/role/elb", "1"),
                ("kubernetes.io/cluster/other", "owned"),
            ],
        ),
    ]
}

/// Service `default/svc-nlb-ip-type` with `annotations` (keys without [`P`]) and `spec`.
pub fn service(annotations: &[(&str, &str)], spec: Value) -> Service {
    let annotations: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| (format!("{P}{k}"), json!(v)))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": "svc-nlb-ip-type", "namespace": "default", "annotations": annotations},
        "spec": spec,
    }))
    .expect("service")
}

/// Blog 001's Service spec: port 80 to 8080, NLB class.
pub fn seed_spec() -> Value {
    json!({
        "type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb",
        "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 31080}],
        "selector": {"app": "deploy-websrv"},
    })
}

/// Blog 001's annotations (keys without [`P`]).
pub const SEED: [(&str, &str); 5] = [
    ("aws-load-balancer-nlb-target-type", "ip"),
    ("aws-load-balancer-scheme", "internet-facing"),
    ("aws-load-balancer-healthcheck-port", "8080"),
    (
        "aws-load-balancer-cross-zone-load-balancing-enabled",
        "true",
    ),
    (
        "aws-load-balancer-target-group-attributes",
        "deregistration_delay.timeout_seconds=60",
    ),
];

/// Blog 001's Service as it is written.
pub fn seed_service() -> Service {
    service(&SEED, seed_spec())
}

/// A NodePort Service `namespace/name` on port 80 (to 8080): what an Ingress path points at.
pub fn backend_service(namespace: &str, name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]},
    }))
    .expect("service")
}

/// Ingress `namespace/name` with `annotations` (full keys) and `spec`.
pub fn ingress(namespace: &str, name: &str, annotations: Value, spec: Value) -> Ingress {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": spec,
    }))
    .expect("ingress")
}

/// An Ingress spec of one rule: `/` (Prefix) to Service `service` port 80.
pub fn prefix_root(service: &str) -> Value {
    json!({"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]})
}
