//! Fixtures the Service builder's tests share: the cluster, a VPC with public and private subnets
//! in two zones, and blog 001's `svc-nlb-ip-type` Service.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use lb_api::TargetType;
use serde_json::json;

use super::annotations::parse;
use super::build::{BuildError, Built, ClusterSettings, build};
use super::subnets::Subnet;

pub(super) const P: &str = "service.beta.kubernetes.io/";

pub(super) fn settings() -> ClusterSettings {
    ClusterSettings {
        cluster: "lab".into(),
        default_tags: BTreeMap::from([("owner".to_string(), "platform".to_string())]),
        default_ssl_policy: "ELBSecurityPolicy-2016-08".into(),
        security_groups: Default::default(),
        external_managed_tags: Vec::new(),
        tcp_udp_listeners: false,
    }
}

pub(super) fn subnet(id: &str, zone: &str, tags: &[(&str, &str)]) -> Subnet {
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
pub(super) fn vpc() -> Vec<Subnet> {
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

pub(super) fn service(annotations: &[(&str, &str)], spec: serde_json::Value) -> Service {
    let annotations: serde_json::Map<String, serde_json::Value> = annotations
        .iter()
        .map(|(k, v)| (format!("{P}{k}"), json!(v)))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": "svc-nlb-ip-type", "namespace": "default", "annotations": annotations},
        "spec": spec,
    }))
    .expect("service")
}

pub(super) fn seed_spec() -> serde_json::Value {
    json!({
        "type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb",
        "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 31080}],
        "selector": {"app": "deploy-websrv"},
    })
}

pub(super) const SEED: [(&str, &str); 5] = [
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

pub(super) fn built(svc: &Service, target_type: TargetType) -> Result<Built, BuildError> {
    let annotations =
        parse(svc.metadata.annotations.as_ref().expect("annotations")).expect("annotations parse");
    build(svc, &annotations, target_type, &settings(), &vpc())
}
