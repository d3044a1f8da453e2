//! Random and adversarial Services (annotation maps over the keys the model reads, odd ports)
//! through [`desired`], the reconciler's one call, and [`predicted_ip_bindings`], the pod
//! webhook's: never a panic; every annotation error names its key and value (the rule of
//! [`crate::adversarial`]) and a value that cannot be read is always refused; build errors stay
//! short; the webhook predicts exactly the ip bindings the reconciler makes; a blank list
//! annotation is its absence.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::adversarial::{self, names, value};
use crate::annotations::parse_bool;

/// What a key takes, for the oracle of what must be refused.
#[derive(Clone, Copy, Debug)]
enum Takes {
    Int(i64, i64),
    Bool,
    /// One of these, compared without regard to case when the flag says so.
    OneOf(&'static [&'static str], bool),
    Other,
}

const P: &str = "service.beta.kubernetes.io/";

/// Every key `annotations::parse` reads (families with a sound and an unsound suffix).
const KEYS: [(&str, Takes); 44] = [
    ("aws-load-balancer-type", Takes::Other),
    (
        "aws-load-balancer-nlb-target-type",
        Takes::OneOf(&["ip", "instance"], false),
    ),
    ("aws-load-balancer-name", Takes::Other),
    (
        "aws-load-balancer-scheme",
        Takes::OneOf(&["internal", "internet-facing"], false),
    ),
    ("aws-load-balancer-internal", Takes::Bool),
    (
        "aws-load-balancer-ip-address-type",
        Takes::OneOf(&["ipv4", "dualstack"], false),
    ),
    ("aws-load-balancer-subnets", Takes::Other),
    ("aws-load-balancer-eip-allocations", Takes::Other),
    ("aws-load-balancer-private-ipv4-addresses", Takes::Other),
    ("aws-load-balancer-security-groups", Takes::Other),
    (
        "aws-load-balancer-manage-backend-security-group-rules",
        Takes::Bool,
    ),
    ("aws-load-balancer-disable-nlb-sg", Takes::Bool),
    (
        "aws-load-balancer-security-group-prefix-lists",
        Takes::Other,
    ),
    ("load-balancer-source-ranges", Takes::Other),
    ("aws-load-balancer-attributes", Takes::Other),
    ("aws-load-balancer-access-log-enabled", Takes::Bool),
    ("aws-load-balancer-access-log-s3-bucket-name", Takes::Other),
    (
        "aws-load-balancer-cross-zone-load-balancing-enabled",
        Takes::Bool,
    ),
    ("aws-load-balancer-additional-resource-tags", Takes::Other),
    ("aws-load-balancer-ssl-cert", Takes::Other),
    ("aws-load-balancer-ssl-ports", Takes::Other),
    ("aws-load-balancer-ssl-negotiation-policy", Takes::Other),
    (
        "aws-load-balancer-alpn-policy",
        Takes::OneOf(
            &[
                "HTTP1Only",
                "HTTP2Only",
                "HTTP2Optional",
                "HTTP2Preferred",
                "None",
            ],
            false,
        ),
    ),
    ("aws-load-balancer-enable-tcp-udp-listener", Takes::Bool),
    ("aws-load-balancer-listener-attributes.TCP-80", Takes::Other),
    ("aws-load-balancer-listener-attributes.HTTP-0", Takes::Other),
    (
        "aws-load-balancer-backend-protocol",
        Takes::OneOf(&["tcp", "ssl"], true),
    ),
    ("aws-load-balancer-target-group-attributes", Takes::Other),
    ("aws-load-balancer-proxy-protocol", Takes::Other),
    (
        "aws-load-balancer-proxy-protocol-per-target-group",
        Takes::Other,
    ),
    ("aws-load-balancer-target-node-labels", Takes::Other),
    ("aws-load-balancer-multi-cluster-target-group", Takes::Bool),
    (
        "aws-load-balancer-healthcheck-protocol",
        Takes::OneOf(&["tcp", "http", "https"], true),
    ),
    ("aws-load-balancer-healthcheck-port", Takes::Other),
    ("aws-load-balancer-healthcheck-path", Takes::Other),
    ("aws-load-balancer-healthcheck-success-codes", Takes::Other),
    (
        "aws-load-balancer-healthcheck-healthy-threshold",
        Takes::Int(2, 10),
    ),
    (
        "aws-load-balancer-healthcheck-unhealthy-threshold",
        Takes::Int(2, 10),
    ),
    ("aws-load-balancer-healthcheck-timeout", Takes::Int(2, 120)),
    ("aws-load-balancer-healthcheck-interval", Takes::Int(5, 300)),
    ("aws-load-balancer-quic-enabled-ports", Takes::Other),
    ("actions.TCP-80", Takes::Other),
    (
        "aws-load-balancer-inbound-sg-rules-on-private-link-traffic",
        Takes::Other,
    ),
    ("aws-load-balancer-ipv6-addresses", Takes::Other),
];

fn takes(key: &str) -> Takes {
    KEYS.iter()
        .find(|(k, _)| format!("{P}{k}") == key)
        .map_or(Takes::Other, |(_, t)| *t)
}

fn unreadable(takes: Takes, raw: &str) -> bool {
    let raw = raw.trim();
    match takes {
        Takes::Int(min, max) => raw.parse::<i64>().map_or(true, |n| n < min || n > max),
        Takes::Bool => parse_bool(raw).is_none(),
        Takes::OneOf(allowed, fold) => !allowed
            .iter()
            .any(|a| *a == raw || (fold && a.eq_ignore_ascii_case(raw))),
        Takes::Other => false,
    }
}

fn annotation_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop::sample::select(KEYS.map(|(k, _)| format!("{P}{k}")).to_vec());
    prop::collection::btree_map(key, value(), 0..10)
}

/// Sound annotations (so that the build is reached, and ip bindings made), now and then with
/// one of the ugly maps over them.
fn service_annotations() -> impl Strategy<Value = BTreeMap<String, String>> {
    let sound = prop::collection::btree_map(
        prop::sample::select(vec![
            ("aws-load-balancer-scheme", "internet-facing"),
            ("aws-load-balancer-healthcheck-port", "traffic-port"),
            ("aws-load-balancer-healthcheck-port", "http"),
            (
                "aws-load-balancer-ssl-cert",
                "arn:aws:acm:us-west-2:1:certificate/x",
            ),
            ("aws-load-balancer-ssl-ports", "443, http"),
            ("aws-load-balancer-proxy-protocol", "*"),
            ("aws-load-balancer-target-group-attributes", "a=b"),
            ("aws-load-balancer-healthcheck-interval", "10"),
            ("aws-load-balancer-healthcheck-timeout", "20"),
            ("aws-load-balancer-enable-tcp-udp-listener", "true"),
            ("aws-load-balancer-ip-address-type", "dualstack"),
            ("aws-load-balancer-subnets", "subnet-pub-a, subnet-pub-b"),
            ("aws-load-balancer-eip-allocations", "eipalloc-1"),
            ("aws-load-balancer-security-groups", "sg-1"),
            ("aws-load-balancer-disable-nlb-sg", "true"),
            (
                "aws-load-balancer-manage-backend-security-group-rules",
                "true",
            ),
        ]),
        Just(()),
        0..5,
    );
    let target_type = prop::sample::select(vec!["ip", "ip", "instance"]);
    (
        sound,
        target_type,
        prop::option::weighted(0.3, annotation_map()),
    )
        .prop_map(|(sound, target_type, ugly)| {
            let mut map: BTreeMap<String, String> = sound
                .into_keys()
                .map(|(k, v)| (format!("{P}{k}"), v.to_string()))
                .collect();
            map.insert(
                format!("{P}aws-load-balancer-nlb-target-type"),
                target_type.into(),
            );
            map.extend(ugly.into_iter().flatten());
            map
        })
}

/// Zero to three ports, each as the API server admits it (port and target port 1-65535, a node
/// port allocated or none): TCP, UDP and others, the same number twice, node ports or not.
fn ports() -> impl Strategy<Value = Vec<Value>> {
    let number = prop::sample::select(vec![80, 80, 443, 8080, 1, 65535]);
    let protocol = prop::sample::select(vec!["TCP", "TCP", "TCP", "UDP", "SCTP"]);
    let node_port = prop::option::of(prop::sample::select(vec![30080, 32767]));
    let target = prop::sample::select(vec![json!(8080), json!("http"), json!(65535)]);
    let port = (number, protocol, node_port, target).prop_map(|(port, protocol, node, target)| {
        let mut port = json!({"port": port, "protocol": protocol, "targetPort": target});
        if let Some(node) = node {
            port["nodePort"] = json!(node);
        }
        port
    });
    prop::collection::vec(port, 0..4).prop_filter("not empty, mostly", |ports| !ports.is_empty())
}

fn service() -> impl Strategy<Value = Service> {
    let policy = prop::sample::select(vec!["Cluster", "Local", ""]);
    let families = prop::sample::select(vec![
        json!(["IPv4"]),
        json!(["IPv4"]),
        json!(["IPv6"]),
        json!([]),
    ]);
    let map = prop_oneof![annotation_map(), service_annotations()];
    (map, ports(), policy, families).prop_map(|(map, ports, policy, families)| {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "annotations": map},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb",
                "ports": ports, "externalTrafficPolicy": policy, "ipFamilies": families,
                "healthCheckNodePort": 32000, "selector": {"app": "web"}},
        }))
        .unwrap_or_default()
    })
}

fn settings() -> build::ClusterSettings {
    crate::fixtures::settings()
}

proptest! {
    #![proptest_config(adversarial::config(512))]

    #[test]
    fn any_service_builds_or_is_refused_by_key_and_value(service in service()) {
        let map = service.metadata.annotations.clone().unwrap_or_default();
        let must_refuse: Vec<&String> = map
            .iter()
            .filter(|(key, raw)| unreadable(takes(key), raw))
            .map(|(key, _)| key)
            .collect();
        match desired(&service, Some(TargetType::Ip), &settings(), &crate::fixtures::vpc()) {
            Err(ModelError::Annotations(errors)) => {
                prop_assert!(!errors.0.is_empty());
                for error in &errors.0 {
                    let raw = map.get(&error.key);
                    prop_assert!(raw.is_some_and(|raw| raw.contains(error.value.as_str())), "{}", error.key);
                    names(&error.to_string(), &error.key, &error.value)?;
                }
                for key in must_refuse {
                    prop_assert!(errors.0.iter().any(|e| &e.key == key), "{key} not refused");
                }
            }
            Err(ModelError::Build(error)) => {
                prop_assert!(must_refuse.is_empty(), "{must_refuse:?} not refused");
                let message = error.to_string();
                prop_assert!(message.chars().count() <= 1000, "{}", adversarial::clip(&message));
                if let build::BuildError::UnknownPort { annotation, value } = &error {
                    names(&message, annotation, value)?;
                }
            }
            Ok(built) => {
                prop_assert!(must_refuse.is_empty(), "{must_refuse:?} not refused");
                for listener in &built.stack.listeners {
                    prop_assert!(listener.port > 0);
                }
                for warning in built.warnings.iter().chain(&built.adapted) {
                    prop_assert!(warning.chars().count() <= 1000, "{}", adversarial::clip(warning));
                }
            }
        }
    }

    /// The pod webhook gates pods on the bindings the reconciler will make: the same names, or
    /// none when the Service does not build.
    #[test]
    fn the_webhook_predicts_exactly_the_ip_bindings_the_reconciler_makes(service in service()) {
        let selection = selection::SelectionSettings::default();
        let predicted: Vec<String> = predicted_ip_bindings(&service, &selection, &settings())
            .into_iter()
            .map(|b| b.name)
            .collect();
        let selection::Selection::Ours { target_type } = selection::select(&service, &selection) else {
            prop_assert!(predicted.is_empty());
            return Ok(());
        };
        let built = desired(&service, target_type, &settings(), &crate::fixtures::vpc());
        let made: Vec<String> = match built {
            // The webhook knows no subnets: a Service whose subnets do not fit (a subnet the VPC
            // lacks, an address per subnet that does not count out) is predicted as if they did.
            Err(ModelError::Build(
                build::BuildError::Subnets(_) | build::BuildError::NotOnePerSubnet { .. },
            )) => return Ok(()),
            Ok(built) => built
                .stack
                .bindings
                .into_iter()
                .filter(|b| b.target_type == TargetType::Ip)
                .map(|b| b.name)
                .collect(),
            Err(_) => Vec::new(),
        };
        prop_assert_eq!(predicted, made);
    }

    /// A list annotation with nothing in it says nothing, as upstream reads it.
    #[test]
    fn a_blank_list_annotation_is_its_absence(
        service in service(),
        key in prop::sample::select(vec![
            "aws-load-balancer-subnets",
            "aws-load-balancer-eip-allocations",
            "aws-load-balancer-private-ipv4-addresses",
            "aws-load-balancer-security-groups",
            "aws-load-balancer-security-group-prefix-lists",
            "load-balancer-source-ranges",
            "aws-load-balancer-ssl-cert",
            "aws-load-balancer-ssl-ports",
            "aws-load-balancer-proxy-protocol-per-target-group",
        ]),
        blank in prop::sample::select(vec!["", " ", ",", " , ,"]),
    ) {
        let key = format!("{P}{key}");
        prop_assume!(!service.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(&key)));
        let mut blanked = service.clone();
        blanked.metadata.annotations.get_or_insert_default().insert(key, blank.to_string());
        let vpc = crate::fixtures::vpc();
        prop_assert_eq!(
            desired(&blanked, Some(TargetType::Ip), &settings(), &vpc),
            desired(&service, Some(TargetType::Ip), &settings(), &vpc)
        );
    }
}
