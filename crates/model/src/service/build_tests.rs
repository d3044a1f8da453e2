use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::*;
use crate::service::annotations::parse;

const P: &str = "service.beta.kubernetes.io/";

fn settings() -> ClusterSettings {
    ClusterSettings {
        cluster: "lab".into(),
        default_tags: BTreeMap::from([("owner".to_string(), "platform".to_string())]),
        default_ssl_policy: "ELBSecurityPolicy-2016-08".into(),
        security_groups: Default::default(),
        external_managed_tags: Vec::new(),
        tcp_udp_listeners: false,
    }
}

fn subnet(id: &str, zone: &str, tags: &[(&str, &str)]) -> Subnet {
    Subnet {
        id: id.into(),
        zone: zone.into(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
    }
}

/// Two zones with public and private subnets, and a subnet of another cluster.
fn vpc() -> Vec<Subnet> {
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

fn service(annotations: &[(&str, &str)], spec: serde_json::Value) -> Service {
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

fn seed_spec() -> serde_json::Value {
    json!({
        "type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb",
        "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 31080}],
        "selector": {"app": "deploy-websrv"},
    })
}

const SEED: [(&str, &str); 5] = [
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

fn built(svc: &Service, target_type: TargetType) -> Result<Built, BuildError> {
    let annotations =
        parse(svc.metadata.annotations.as_ref().expect("annotations")).expect("annotations parse");
    build(svc, &annotations, target_type, &settings(), &vpc())
}

/// Blog 001's `svc-nlb-ip-type`: every annotation lands where the blog says it does.
#[test]
fn the_seed_nlb_service_builds_its_stack() {
    let svc = service(&SEED, seed_spec());
    let Built {
        stack, warnings, ..
    } = built(&svc, TargetType::Ip).expect("stack");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(stack.id, "default/svc-nlb-ip-type");
    let lb = &stack.load_balancer;
    assert_eq!(lb.kind, LoadBalancerKind::Network);
    assert_eq!(lb.scheme, "internet-facing");
    assert!(lb.name.starts_with("k8s-default-svcnlbip-"), "{}", lb.name);
    let subnets: Vec<&str> = lb.subnets.iter().map(|s| s.subnet_id.as_str()).collect();
    assert_eq!(subnets, ["subnet-pub-a", "subnet-pub-b"]);
    assert_eq!(
        lb.attributes
            .get("load_balancing.cross_zone.enabled")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(lb.tags.get(tags::CLUSTER).map(String::as_str), Some("lab"));
    assert_eq!(
        lb.tags.get(tags::SERVICE_RESOURCE).map(String::as_str),
        Some("LoadBalancer")
    );
    assert_eq!(lb.tags.get("owner").map(String::as_str), Some("platform"));

    let [listener] = stack.listeners.as_slice() else {
        panic!("one listener: {:?}", stack.listeners)
    };
    assert_eq!((listener.port, listener.protocol.as_str()), (80, "TCP"));
    let [tg] = stack.target_groups.as_slice() else {
        panic!("one target group")
    };
    assert_eq!(
        listener.default_action,
        crate::stack::Action::forward_to(&tg.resource_id)
    );
    assert_eq!(tg.resource_id, "default/svc-nlb-ip-type:80");
    assert_eq!(
        (tg.protocol.as_str(), tg.port, tg.target_type),
        ("TCP", 8080, TargetType::Ip)
    );
    assert_eq!(tg.health_check.port, "8080");
    assert_eq!(tg.health_check.protocol, "TCP");
    assert_eq!(
        tg.attributes
            .get("deregistration_delay.timeout_seconds")
            .map(String::as_str),
        Some("60")
    );
    assert_eq!(tg.tags.get(tags::SERVICE_RESOURCE), Some(&tg.resource_id));

    let [binding] = stack.bindings.as_slice() else {
        panic!("one binding")
    };
    assert_eq!(binding.name, tg.name);
    assert_eq!(
        (binding.service_name.as_str(), binding.service_port),
        ("svc-nlb-ip-type", 80)
    );

    let sg = stack
        .managed_security_group
        .as_ref()
        .expect("managed security group");
    let rules: Vec<String> = sg
        .ingress
        .iter()
        .map(|r| format!("{} {} {}", r.protocol, r.port, r.cidr))
        .collect();
    assert_eq!(rules, ["tcp 80 0.0.0.0/0"]);
}

/// The blog's TLS variant names `ssl-ports: 443` on a Service with only port 80: like upstream
/// there is no TLS listener, but unlike upstream the user is told why.
#[test]
fn the_seed_tls_variant_warns_about_a_port_the_service_lacks() {
    let mut annotations = SEED.to_vec();
    annotations.push((
        "aws-load-balancer-ssl-cert",
        "arn:aws:acm:ap-northeast-2:123456789012:certificate/x",
    ));
    annotations.push(("aws-load-balancer-ssl-ports", "443"));
    let svc = service(&annotations, seed_spec());
    let Built {
        stack, warnings, ..
    } = built(&svc, TargetType::Ip).expect("stack");
    assert_eq!(stack.listeners[0].protocol, "TCP");
    assert_eq!(
        warnings,
        [
            "annotation service.beta.kubernetes.io/aws-load-balancer-ssl-ports: \"443\" names no port of the Service; ignored"
        ]
    );
    // As the blog writes it, `nlb-target-type: external` is no target type: named, nothing built.
    let mut raw = svc.metadata.annotations.clone().expect("annotations");
    raw.insert(
        format!("{P}aws-load-balancer-nlb-target-type"),
        "external".into(),
    );
    let error = parse(&raw).expect_err("external is no target type");
    assert_eq!(
        error.to_string(),
        "annotation service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: \"external\" is not one of ip, instance"
    );
}

#[test]
fn tls_listeners_on_the_ssl_ports_with_policy_and_alpn() {
    let svc = service(
        &[
            ("aws-load-balancer-ssl-cert", "arn:cert"),
            ("aws-load-balancer-ssl-ports", "https"),
            ("aws-load-balancer-alpn-policy", "HTTP2Preferred"),
            ("aws-load-balancer-backend-protocol", "ssl"),
        ],
        json!({"ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "https", "port": 443, "targetPort": 8443},
        ]}),
    );
    let stack = built(&svc, TargetType::Ip).expect("stack").stack;
    let summary: Vec<(u16, &str, Option<&str>, Option<&str>)> = stack
        .listeners
        .iter()
        .map(|l| {
            (
                l.port,
                l.protocol.as_str(),
                l.ssl_policy.as_deref(),
                l.alpn_policy.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (80, "TCP", None, None),
            (
                443,
                "TLS",
                Some("ELBSecurityPolicy-2016-08"),
                Some("HTTP2Preferred")
            )
        ]
    );
    assert_eq!(stack.listeners[1].certificates, ["arn:cert"]);
    let protocols: Vec<&str> = stack
        .target_groups
        .iter()
        .map(|t| t.protocol.as_str())
        .collect();
    assert_eq!(protocols, ["TCP", "TLS"]);
}

#[test]
fn tcp_and_udp_on_one_port_make_one_tcp_udp_listener_when_enabled() {
    let ports = json!({"ports": [
        {"name": "dns-tcp", "port": 53, "targetPort": 53, "protocol": "TCP"},
        {"name": "dns-udp", "port": 53, "targetPort": 53, "protocol": "UDP"},
    ]});
    // Upstream's default is off: the shared port number is refused by name, not sent to ELB.
    assert_eq!(
        built(&service(&[], ports.clone()), TargetType::Ip).map(|b| b.stack),
        Err(BuildError::SharedPortNumber { port: 53 })
    );
    let off = service(
        &[("aws-load-balancer-enable-tcp-udp-listener", "false")],
        ports.clone(),
    );
    let mut on_by_default = settings();
    on_by_default.tcp_udp_listeners = true;
    assert!(
        crate::service::desired(&off, Some(TargetType::Ip), &on_by_default, &vpc()).is_err(),
        "the annotation wins over the cluster's default"
    );
    let svc = service(
        &[("aws-load-balancer-enable-tcp-udp-listener", "true")],
        json!({"ports": [
            {"name": "dns-tcp", "port": 53, "targetPort": 53, "protocol": "TCP"},
            {"name": "dns-udp", "port": 53, "targetPort": 53, "protocol": "UDP"},
            {"name": "ntp", "port": 123, "targetPort": 123, "protocol": "UDP"},
        ]}),
    );
    let stack = built(&svc, TargetType::Ip).expect("stack").stack;
    let listeners: Vec<(u16, &str)> = stack
        .listeners
        .iter()
        .map(|l| (l.port, l.protocol.as_str()))
        .collect();
    assert_eq!(listeners, [(53, "TCP_UDP"), (123, "UDP")]);
    let sg = stack.managed_security_group.expect("managed");
    let rules: Vec<(String, u16)> = sg
        .ingress
        .iter()
        .map(|r| (r.protocol.clone(), r.port))
        .collect();
    assert_eq!(
        rules,
        [("tcp".into(), 53), ("udp".into(), 53), ("udp".into(), 123)]
    );
    let sctp = service(&[], json!({"ports": [{"port": 9, "protocol": "SCTP"}]}));
    assert_eq!(
        built(&sctp, TargetType::Ip).map(|b| b.stack),
        Err(BuildError::UnsupportedProtocol {
            port: 9,
            protocol: "SCTP".into()
        })
    );
}

#[test]
fn instance_targets_use_node_ports_and_local_policy_checks_the_health_node_port() {
    let spec = json!({
        "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
        "ports": [{"port": 80, "targetPort": 8080, "nodePort": 31080}],
    });
    let svc = service(&[], spec);
    let stack = built(&svc, TargetType::Instance).expect("stack").stack;
    let tg = &stack.target_groups[0];
    assert_eq!((tg.port, tg.target_type), (31080, TargetType::Instance));
    let hc = &tg.health_check;
    assert_eq!(
        (
            hc.protocol.as_str(),
            hc.port.as_str(),
            hc.path.as_deref(),
            hc.matcher.as_deref()
        ),
        ("HTTP", "32000", Some("/healthz"), Some("200-399"))
    );
    assert_eq!(
        (
            hc.healthy_threshold,
            hc.unhealthy_threshold,
            hc.timeout_seconds,
            hc.interval_seconds
        ),
        (2, 2, 6, 10)
    );
    // Cluster policy: TCP on the traffic port, 3 / 3, 10 s, 10 s.
    let cluster = service(&[], json!({"ports": [{"port": 80, "nodePort": 31080}]}));
    let hc = built(&cluster, TargetType::Instance)
        .expect("stack")
        .stack
        .target_groups[0]
        .health_check
        .clone();
    assert_eq!(
        (hc.protocol.as_str(), hc.port.as_str(), hc.path),
        ("TCP", "traffic-port", None)
    );
    assert_eq!((hc.healthy_threshold, hc.timeout_seconds), (3, 10));
    let no_node_port = service(&[], json!({"ports": [{"port": 80}]}));
    assert_eq!(
        built(&no_node_port, TargetType::Instance).map(|b| b.stack),
        Err(BuildError::NoNodePort { port: 80 })
    );
}

#[test]
fn health_check_annotations_override_the_defaults() {
    let svc = service(
        &[
            ("aws-load-balancer-healthcheck-protocol", "HTTP"),
            ("aws-load-balancer-healthcheck-port", "admin"),
            ("aws-load-balancer-healthcheck-path", "/ready"),
            ("aws-load-balancer-healthcheck-success-codes", "200"),
            ("aws-load-balancer-healthcheck-interval", "5"),
            ("aws-load-balancer-healthcheck-timeout", "5"),
        ],
        json!({"ports": [
            {"name": "web", "port": 80, "targetPort": 8080},
            {"name": "admin", "port": 9000, "targetPort": 9090},
        ]}),
    );
    let hc = built(&svc, TargetType::Ip)
        .expect("stack")
        .stack
        .target_groups[0]
        .health_check
        .clone();
    assert_eq!(
        (
            hc.protocol.as_str(),
            hc.port.as_str(),
            hc.path.as_deref(),
            hc.matcher.as_deref()
        ),
        ("HTTP", "9090", Some("/ready"), Some("200"))
    );
    assert_eq!(hc.interval_seconds, 5);
    // A check every 5 s and no timeout: the default (10 s) would not fit, so the timeout is the
    // interval, and the build says which default it adapted (upstream sends 10 and AWS refuses).
    let short = service(
        &[("aws-load-balancer-healthcheck-interval", "5")],
        json!({"ports": [{"port": 80}]}),
    );
    let adapted = built(&short, TargetType::Ip).expect("builds");
    assert_eq!(
        adapted.stack.target_groups[0].health_check.timeout_seconds,
        5
    );
    assert_eq!(adapted.adapted.len(), 1);
    assert!(
        adapted.adapted[0].contains("aws-load-balancer-healthcheck-interval is 5s")
            && adapted.adapted[0].contains("not the default 10s"),
        "{:?}",
        adapted.adapted
    );
    // A timeout the user set longer than the interval is theirs to fix: named before AWS refuses.
    let too_slow = service(
        &[
            ("aws-load-balancer-healthcheck-interval", "5"),
            ("aws-load-balancer-healthcheck-timeout", "10"),
        ],
        json!({"ports": [{"port": 80}]}),
    );
    assert_eq!(
        built(&too_slow, TargetType::Ip).map(|b| b.stack),
        Err(BuildError::HealthCheckTimeout {
            timeout: 10,
            interval: 5
        })
    );
    let unknown = service(
        &[("aws-load-balancer-healthcheck-port", "nope")],
        json!({"ports": [{"port": 80}]}),
    );
    assert_eq!(
        built(&unknown, TargetType::Ip).map(|b| b.stack),
        Err(BuildError::UnknownPort {
            annotation: format!("{P}aws-load-balancer-healthcheck-port"),
            value: "nope".into()
        })
    );
}

#[test]
fn explicit_subnets_security_groups_source_ranges_and_eips() {
    let svc = service(
        &[
            ("aws-load-balancer-subnets", "subnet-pub-b, subnet-pub-a"),
            (
                "aws-load-balancer-eip-allocations",
                "eipalloc-b, eipalloc-a",
            ),
            ("aws-load-balancer-name", "edge"),
        ],
        json!({"ports": [{"port": 443}], "loadBalancerSourceRanges": ["203.0.113.0/24"]}),
    );
    let stack = built(&svc, TargetType::Ip).expect("stack").stack;
    assert_eq!(stack.load_balancer.name, "edge");
    let mappings: Vec<(&str, Option<&str>)> = stack
        .load_balancer
        .subnets
        .iter()
        .map(|m| (m.subnet_id.as_str(), m.allocation_id.as_deref()))
        .collect();
    assert_eq!(
        mappings,
        [
            ("subnet-pub-b", Some("eipalloc-b")),
            ("subnet-pub-a", Some("eipalloc-a"))
        ]
    );
    let rules: Vec<String> = stack
        .managed_security_group
        .expect("managed")
        .ingress
        .iter()
        .map(|r| r.cidr.to_string())
        .collect();
    assert_eq!(rules, ["203.0.113.0/24"]);

    let explicit = service(
        &[("aws-load-balancer-security-groups", "sg-1")],
        json!({"ports": [{"port": 443}]}),
    );
    let stack = built(&explicit, TargetType::Ip).expect("stack").stack;
    assert_eq!(stack.managed_security_group, None);
    assert_eq!(stack.load_balancer.security_groups, ["sg-1"]);

    let mismatch = service(
        &[("aws-load-balancer-eip-allocations", "eipalloc-1")],
        json!({"ports": [{"port": 443}]}),
    );
    assert_eq!(
        built(&mismatch, TargetType::Ip).map(|b| b.stack),
        Err(BuildError::NotOnePerSubnet {
            annotation: format!("{P}aws-load-balancer-eip-allocations"),
            count: 1,
            subnets: 2
        })
    );
}

#[test]
fn internal_load_balancers_discover_internal_subnets_and_unknown_names_are_named() {
    let svc = service(&[], json!({"ports": [{"port": 80}]}));
    let stack = built(&svc, TargetType::Ip).expect("stack").stack;
    assert_eq!(stack.load_balancer.scheme, "internal");
    let subnets: Vec<&str> = stack
        .load_balancer
        .subnets
        .iter()
        .map(|s| s.subnet_id.as_str())
        .collect();
    assert_eq!(subnets, ["subnet-priv-a", "subnet-priv-b"]);
    let named = service(
        &[("aws-load-balancer-subnets", "subnet-missing")],
        json!({"ports": [{"port": 80}]}),
    );
    let Err(BuildError::Subnets(message)) = built(&named, TargetType::Ip) else {
        panic!("unknown subnet")
    };
    assert!(
        message.contains("\"subnet-missing\" is no subnet"),
        "{message}"
    );
    // None discovered: the stack says why (a new NLB cannot be made; one that exists keeps its
    // own subnets).
    let annotations = parse(&BTreeMap::new()).expect("none");
    let lb = build(&svc, &annotations, TargetType::Ip, &settings(), &[])
        .expect("builds")
        .stack
        .load_balancer;
    assert!(lb.subnets.is_empty());
    let message = lb.subnets_problem.expect("the reason");
    assert!(
        message.contains("kubernetes.io/role/internal-elb"),
        "{message}"
    );
}

#[test]
fn proxy_protocol_node_labels_multi_cluster_and_unsupported_annotations() {
    let svc = service(
        &[
            (
                "aws-load-balancer-proxy-protocol-per-target-group",
                "80, 9999",
            ),
            ("aws-load-balancer-target-node-labels", "role=edge"),
            ("aws-load-balancer-multi-cluster-target-group", "true"),
            ("aws-load-balancer-quic-enabled-ports", "443"),
        ],
        json!({"ports": [{"port": 80, "nodePort": 30080}, {"port": 81, "nodePort": 30081}]}),
    );
    let Built {
        stack, warnings, ..
    } = built(&svc, TargetType::Instance).expect("stack");
    let proxy: Vec<Option<&str>> = stack
        .target_groups
        .iter()
        .map(|t| {
            t.attributes
                .get("proxy_protocol_v2.enabled")
                .map(String::as_str)
        })
        .collect();
    // Upstream always says it: off unless asked.
    assert_eq!(proxy, [Some("true"), Some("false")]);
    assert_eq!(
        stack.bindings[0]
            .node_selector
            .get("role")
            .map(String::as_str),
        Some("edge")
    );
    assert!(stack.bindings.iter().all(|b| b.multi_cluster));
    assert_eq!(
        warnings,
        [
            format!(
                "annotation {P}aws-load-balancer-proxy-protocol-per-target-group: \"9999\" names no port of the Service; ignored"
            ),
            format!(
                "annotation {P}aws-load-balancer-quic-enabled-ports is not supported yet: it has no effect"
            ),
        ]
    );
}

/// A dualstack NLB's target groups take their address type from the Service's families: ELB
/// takes ipv4 or ipv6 there, never dualstack (which it refuses).
#[test]
fn a_dualstack_nlbs_target_groups_are_ipv6_for_an_ipv6_service_else_ipv4() {
    let dualstack = [("aws-load-balancer-ip-address-type", "dualstack")];
    let families = |families: serde_json::Value| json!({"ports": [{"port": 80, "targetPort": 8080}], "ipFamilies": families});
    let v6 = built(
        &service(&dualstack, families(json!(["IPv6", "IPv4"]))),
        TargetType::Ip,
    )
    .expect("builds")
    .stack;
    assert_eq!(v6.load_balancer.ip_address_type, "dualstack");
    assert_eq!(v6.target_groups[0].ip_address_type, "ipv6");
    assert_eq!(v6.bindings[0].ip_address_type, "ipv6");
    let v4 = built(
        &service(&dualstack, families(json!(["IPv4"]))),
        TargetType::Ip,
    )
    .expect("builds")
    .stack;
    assert_eq!(v4.target_groups[0].ip_address_type, "ipv4");
    // An IPv6 Service behind an IPv4-only NLB is named, not sent to ELB.
    assert_eq!(
        built(&service(&[], families(json!(["IPv6"]))), TargetType::Ip).map(|b| b.stack),
        Err(BuildError::Ipv6NeedsDualstack)
    );
}

/// Names, tags and networking as upstream's: the NLB's and its target group's names hash the
/// Service's UID, listeners carry their port as resource id, the binding admits the backend
/// group on the target port and the health-check port.
#[test]
fn upstreams_names_listener_tags_and_binding_networking() {
    let mut svc = service(&SEED, seed_spec());
    svc.metadata.uid = Some("883089c2-56e1-4678-a2ee-545bd585e7b9".into());
    let mut settings = settings();
    settings.cluster = "lb-sandbox".into();
    let annotations =
        parse(svc.metadata.annotations.as_ref().expect("annotations")).expect("parse");
    let stack = build(&svc, &annotations, TargetType::Ip, &settings, &vpc())
        .expect("builds")
        .stack;
    // The same Service recreated (another UID) gets other names: upstream's hashes.
    let mut recreated = svc.clone();
    recreated.metadata.uid = Some("00000000-0000-0000-0000-000000000000".into());
    let again = build(&recreated, &annotations, TargetType::Ip, &settings, &vpc())
        .expect("builds")
        .stack;
    assert!(
        stack
            .load_balancer
            .name
            .starts_with("k8s-default-svcnlbip-")
    );
    assert_ne!(stack.load_balancer.name, again.load_balancer.name);
    assert_ne!(stack.target_groups[0].name, again.target_groups[0].name);
    assert!(stack.backend_security_group);
    assert_eq!(
        stack.listeners[0]
            .tags
            .get(tags::SERVICE_RESOURCE)
            .map(String::as_str),
        Some("80")
    );
    let ports: Vec<(String, Option<IntOrString>)> = stack.bindings[0]
        .networking
        .iter()
        .flatten()
        .map(|p| (p.protocol.clone(), p.port.clone()))
        .collect();
    assert_eq!(
        ports,
        [("TCP".to_string(), Some(IntOrString::Int(8080)))],
        "the health-check port is the target port here: one port"
    );
}
