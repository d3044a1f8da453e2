use crate::stack::{CheckPort, NetworkSource};
use serde_json::json;

use super::*;
use crate::service::annotations::parse;
use crate::service::test_fixtures::*;

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
    assert_eq!(lb.scheme.as_str(), "internet-facing");
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
    assert_eq!(tg.health_check.port, CheckPort::Number(8080));
    assert_eq!(tg.health_check.protocol.as_str(), "TCP");
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
        .map(|r| format!("{} {} {}", r.protocol, r.port, r.source))
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
    assert_eq!(stack.listeners[0].protocol.as_str(), "TCP");
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
        .map(|r| r.source.to_string())
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
    assert_eq!(stack.load_balancer.scheme.as_str(), "internal");
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
    assert_eq!(v6.load_balancer.ip_address_type.as_str(), "dualstack");
    assert_eq!(v6.target_groups[0].ip_address_type.as_str(), "ipv6");
    assert_eq!(v6.bindings[0].ip_address_type.as_str(), "ipv6");
    let v4 = built(
        &service(&dualstack, families(json!(["IPv4"]))),
        TargetType::Ip,
    )
    .expect("builds")
    .stack;
    assert_eq!(v4.target_groups[0].ip_address_type.as_str(), "ipv4");
    // An IPv6 Service behind an IPv4-only NLB is named, not sent to ELB.
    assert_eq!(
        built(&service(&[], families(json!(["IPv6"]))), TargetType::Ip).map(|b| b.stack),
        Err(BuildError::Ipv6NeedsDualstack)
    );
}

#[test]
fn disable_nlb_sg_builds_an_nlb_without_groups_whose_bindings_admit_it_by_address() {
    let mut annotations: Vec<(&str, &str)> = SEED.to_vec();
    annotations.push(("aws-load-balancer-disable-nlb-sg", "true"));
    let svc = service(&annotations, seed_spec());
    let stack = built(&svc, TargetType::Ip).expect("stack").stack;
    assert!(stack.managed_security_group.is_none() && !stack.backend_security_group);
    assert!(stack.load_balancer.security_groups.is_empty());
    // ip targets over TCP do not preserve the client's address: the NLB's own subnets, on the
    // target port (the health check's too).
    let sources: Vec<&NetworkSource> = stack.bindings[0]
        .networking
        .iter()
        .map(|rule| &rule.from)
        .collect();
    assert_eq!(sources, [&NetworkSource::LoadBalancerSubnets]);
    // Security groups named as well: refused, naming both annotations.
    annotations.push(("aws-load-balancer-security-groups", "sg-0123"));
    let both = service(&annotations, seed_spec());
    let err = built(&both, TargetType::Ip).expect_err("refused");
    assert_eq!(err, BuildError::SecurityGroupsDisabled);
    assert!(
        err.to_string().contains("aws-load-balancer-disable-nlb-sg"),
        "{err}"
    );
}

#[test]
fn prefix_lists_alone_admit_only_them_and_a_bad_id_is_named() {
    let mut annotations: Vec<(&str, &str)> = SEED.to_vec();
    annotations.push((
        "aws-load-balancer-security-group-prefix-lists",
        "pl-00aa11, pl-ffee22",
    ));
    let svc = service(&annotations, seed_spec());
    let stack = built(&svc, TargetType::Ip).expect("stack").stack;
    let sources: Vec<String> = stack
        .managed_security_group
        .expect("managed")
        .ingress
        .iter()
        .map(|r| format!("{} {} {}", r.protocol, r.port, r.source))
        .collect();
    assert_eq!(sources, ["tcp 80 pl-00aa11", "tcp 80 pl-ffee22"]);
    // With source ranges too, both.
    let mut with_ranges = annotations.clone();
    with_ranges.push(("load-balancer-source-ranges", "10.0.0.0/8"));
    let svc = service(&with_ranges, seed_spec());
    let ingress = built(&svc, TargetType::Ip)
        .expect("stack")
        .stack
        .managed_security_group
        .expect("managed")
        .ingress;
    assert_eq!(ingress.len(), 3, "{ingress:?}");
    // Not a prefix list ID: the annotation and value are named.
    let bad = BTreeMap::from([(
        format!(
            "{}aws-load-balancer-security-group-prefix-lists",
            lb_api::keys::service::PREFIX
        ),
        "sg-0123".to_string(),
    )]);
    let err = parse(&bad).expect_err("refused");
    assert!(
        err.to_string()
            .contains("aws-load-balancer-security-group-prefix-lists"),
        "{err}"
    );
}

#[test]
fn a_huge_port_name_is_named_cut_in_the_warning_and_the_error() {
    // Before: the whole 100 KB value was the warning (and the health check port's error).
    let huge = "x".repeat(100 * 1024);
    let cut = format!(
        "\"{}\"... (102400 characters)",
        "x".repeat(crate::annotations::MAX_SHOWN_VALUE)
    );
    let spec = json!({"ports": [{"port": 80, "targetPort": 8080}]});
    let svc = service(&[("aws-load-balancer-ssl-ports", &huge)], spec.clone());
    let Built { warnings, .. } = built(&svc, TargetType::Ip).expect("stack");
    assert_eq!(
        warnings,
        [format!(
            "annotation {P}aws-load-balancer-ssl-ports: {cut} names no port of the Service; ignored"
        )]
    );
    let svc = service(&[("aws-load-balancer-healthcheck-port", &huge)], spec);
    assert_eq!(
        built(&svc, TargetType::Ip).map_err(|e| e.to_string()),
        Err(format!(
            "annotation {P}aws-load-balancer-healthcheck-port: {cut} names no port of the Service"
        ))
    );
}
