use super::*;

const P: &str = "service.beta.kubernetes.io/";

fn parse_pairs(pairs: &[(&str, &str)]) -> Result<ServiceAnnotations, AnnotationErrors> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (format!("{P}{k}"), (*v).to_string()))
        .collect();
    parse(&map)
}

fn good(pairs: &[(&str, &str)]) -> ServiceAnnotations {
    parse_pairs(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// The seed's NLB Service (blog 001): ip targets, internet-facing, health check on 8080,
/// cross-zone through the attributes, deregistration delay 60 s.
#[test]
fn the_seed_nlb_service_parses() {
    let parsed = good(&[
        ("aws-load-balancer-type", "external"),
        ("aws-load-balancer-nlb-target-type", "ip"),
        ("aws-load-balancer-scheme", "internet-facing"),
        ("aws-load-balancer-healthcheck-port", "8080"),
        (
            "aws-load-balancer-attributes",
            "load_balancing.cross_zone.enabled=true",
        ),
        (
            "aws-load-balancer-target-group-attributes",
            "deregistration_delay.timeout_seconds=60",
        ),
    ]);
    assert_eq!(parsed.target_type, Some(TargetType::Ip));
    assert_eq!(parsed.scheme, Some(Scheme::InternetFacing));
    assert_eq!(
        parsed.health_check.port,
        Some(HealthCheckPort::Number(8080))
    );
    assert_eq!(
        parsed.load_balancer_attributes,
        map(&[("load_balancing.cross_zone.enabled", "true")])
    );
    assert_eq!(
        parsed.target_group_attributes,
        map(&[("deregistration_delay.timeout_seconds", "60")])
    );
    assert!(parsed.not_supported_yet.is_empty());
}

#[test]
fn no_annotations_say_nothing() {
    assert_eq!(good(&[]), ServiceAnnotations::default());
}

#[test]
fn good_values_of_every_annotation() {
    let parsed = good(&[
        ("aws-load-balancer-name", "my-nlb-1"),
        ("aws-load-balancer-ip-address-type", "dualstack"),
        ("aws-load-balancer-subnets", "subnet-a, subnet-b"),
        ("aws-load-balancer-eip-allocations", "eipalloc-1,eipalloc-2"),
        (
            "aws-load-balancer-private-ipv4-addresses",
            "10.0.1.5, 10.0.2.5",
        ),
        ("aws-load-balancer-security-groups", "sg-1,web-sg"),
        ("load-balancer-source-ranges", "10.0.0.0/8, 192.168.1.0/24"),
        (
            "aws-load-balancer-additional-resource-tags",
            "team=web, env=prod",
        ),
        (
            "aws-load-balancer-ssl-cert",
            "arn:aws:acm:us-west-2:123456789012:certificate/abc",
        ),
        ("aws-load-balancer-ssl-ports", "443, https"),
        (
            "aws-load-balancer-ssl-negotiation-policy",
            "ELBSecurityPolicy-TLS13-1-2-2021-06",
        ),
        ("aws-load-balancer-alpn-policy", "HTTP2Preferred"),
        ("aws-load-balancer-enable-tcp-udp-listener", "true"),
        (
            "aws-load-balancer-listener-attributes.TCP-80",
            "tcp.idle_timeout.seconds=400",
        ),
        ("aws-load-balancer-backend-protocol", "ssl"),
        (
            "aws-load-balancer-proxy-protocol-per-target-group",
            "80, dns",
        ),
        ("aws-load-balancer-target-node-labels", "role=edge"),
        ("aws-load-balancer-multi-cluster-target-group", "true"),
    ]);
    assert_eq!(parsed.name.as_deref(), Some("my-nlb-1"));
    assert_eq!(parsed.ip_address_type, Some(IpAddressType::Dualstack));
    assert_eq!(
        parsed.subnets,
        Some(vec!["subnet-a".into(), "subnet-b".into()])
    );
    assert_eq!(parsed.eip_allocations.map(|e| e.len()), Some(2));
    assert_eq!(
        parsed.private_ipv4_addresses,
        Some(vec![
            "10.0.1.5".parse().expect("ip"),
            "10.0.2.5".parse().expect("ip")
        ])
    );
    assert_eq!(
        parsed.security_groups,
        Some(vec!["sg-1".into(), "web-sg".into()])
    );
    assert_eq!(parsed.source_ranges.map(|r| r.len()), Some(2));
    assert_eq!(
        parsed.additional_tags,
        map(&[("team", "web"), ("env", "prod")])
    );
    assert_eq!(parsed.ssl_certificates.map(|c| c.len()), Some(1));
    assert_eq!(
        parsed.ssl_ports,
        Some(vec![PortRef::Number(443), PortRef::Name("https".into())])
    );
    assert!(parsed.ssl_negotiation_policy.is_some());
    assert_eq!(parsed.alpn_policy.as_deref(), Some("HTTP2Preferred"));
    assert_eq!(parsed.tcp_udp_listeners, Some(true));
    assert_eq!(
        parsed.listener_attributes.get(&("TCP".to_string(), 80)),
        Some(&map(&[("tcp.idle_timeout.seconds", "400")]))
    );
    assert_eq!(parsed.backend_protocol, Some(BackendProtocol::Ssl));
    assert_eq!(
        parsed.proxy_protocol,
        Some(ProxyProtocol::Ports(vec![
            PortRef::Number(80),
            PortRef::Name("dns".into())
        ]))
    );
    assert_eq!(parsed.target_node_labels, map(&[("role", "edge")]));
    assert_eq!(parsed.multi_cluster_target_group, Some(true));
}

#[test]
fn health_check_annotations() {
    let parsed = good(&[
        ("aws-load-balancer-healthcheck-protocol", "http"),
        ("aws-load-balancer-healthcheck-port", "traffic-port"),
        ("aws-load-balancer-healthcheck-path", "/healthz"),
        ("aws-load-balancer-healthcheck-healthy-threshold", "2"),
        ("aws-load-balancer-healthcheck-unhealthy-threshold", "3"),
        ("aws-load-balancer-healthcheck-timeout", "6"),
        ("aws-load-balancer-healthcheck-interval", "10"),
        ("aws-load-balancer-healthcheck-success-codes", "200-399"),
    ]);
    assert_eq!(
        parsed.health_check,
        HealthCheckAnnotations {
            protocol: Some(HealthCheckProtocol::Http),
            port: Some(HealthCheckPort::TrafficPort),
            path: Some("/healthz".into()),
            healthy_threshold: Some(2),
            unhealthy_threshold: Some(3),
            timeout_seconds: Some(6),
            interval_seconds: Some(10),
            success_codes: Some("200-399".into()),
        }
    );
    let named = good(&[("aws-load-balancer-healthcheck-port", "metrics")]);
    assert_eq!(
        named.health_check.port,
        Some(HealthCheckPort::Name("metrics".into()))
    );
    let listed = good(&[("aws-load-balancer-healthcheck-success-codes", "200,202")]);
    assert_eq!(
        listed.health_check.success_codes.as_deref(),
        Some("200,202")
    );
}

#[test]
fn scheme_from_the_deprecated_internal_annotation_unless_scheme_is_given() {
    let internal = good(&[("aws-load-balancer-internal", "true")]);
    assert_eq!(internal.scheme, Some(Scheme::Internal));
    let external = good(&[("aws-load-balancer-internal", "false")]);
    assert_eq!(external.scheme, Some(Scheme::InternetFacing));
    let both = good(&[
        ("aws-load-balancer-internal", "true"),
        ("aws-load-balancer-scheme", "internet-facing"),
    ]);
    assert_eq!(both.scheme, Some(Scheme::InternetFacing));
}

#[test]
fn legacy_attribute_annotations_become_attributes() {
    let parsed = good(&[
        ("aws-load-balancer-access-log-enabled", "true"),
        ("aws-load-balancer-access-log-s3-bucket-name", "logs"),
        ("aws-load-balancer-access-log-s3-bucket-prefix", "nlb/"),
        (
            "aws-load-balancer-cross-zone-load-balancing-enabled",
            "true",
        ),
    ]);
    assert_eq!(
        parsed.legacy_attributes,
        map(&[
            ("access_logs.s3.enabled", "true"),
            ("access_logs.s3.bucket", "logs"),
            ("access_logs.s3.prefix", "nlb/"),
            ("load_balancing.cross_zone.enabled", "true"),
        ])
    );
}

#[test]
fn proxy_protocol_star_wins_over_the_per_port_list() {
    let parsed = good(&[
        ("aws-load-balancer-proxy-protocol", "*"),
        ("aws-load-balancer-proxy-protocol-per-target-group", "80"),
    ]);
    assert_eq!(parsed.proxy_protocol, Some(ProxyProtocol::All));
}

/// Each bad value is named with its full key, its value and what is wrong.
#[test]
fn bad_values_are_named() {
    let cases: [(&str, &str, &str); 24] = [
        (
            "aws-load-balancer-healthcheck-port",
            "0",
            "is not a port between 1 and 65535",
        ),
        (
            "aws-load-balancer-healthcheck-port",
            "70000",
            "is not a port between 1 and 65535",
        ),
        (
            "aws-load-balancer-nlb-target-type",
            "pod",
            "is not one of ip, instance",
        ),
        (
            "aws-load-balancer-name",
            "a-name-much-longer-than-thirty-two-chars",
            "is longer than 32 characters",
        ),
        (
            "aws-load-balancer-name",
            "my_nlb",
            "may hold only letters, digits and hyphens",
        ),
        (
            "aws-load-balancer-name",
            "-nlb",
            "may not begin or end with a hyphen",
        ),
        (
            "aws-load-balancer-name",
            "internal-nlb",
            "may not begin with \"internal-\"",
        ),
        (
            "aws-load-balancer-scheme",
            "public",
            "is not one of internal, internet-facing",
        ),
        (
            "aws-load-balancer-internal",
            "yes",
            "is not a boolean (true or false)",
        ),
        (
            "aws-load-balancer-ip-address-type",
            "ipv6",
            "is not one of ipv4, dualstack",
        ),
        (
            "aws-load-balancer-private-ipv4-addresses",
            "10.0.0.300",
            "is not an IPv4 address",
        ),
        (
            "load-balancer-source-ranges",
            "10.0.0.0",
            "is not a CIDR (such as 10.0.0.0/16)",
        ),
        (
            "aws-load-balancer-attributes",
            "deletion_protection.enabled",
            "is not a list of key=value pairs (\"deletion_protection.enabled\" has no '=')",
        ),
        (
            "aws-load-balancer-additional-resource-tags",
            "a=1,a=2",
            "sets \"a\" twice",
        ),
        (
            "aws-load-balancer-alpn-policy",
            "h2",
            "is not one of HTTP1Only, HTTP2Only, HTTP2Optional, HTTP2Preferred, None",
        ),
        (
            "aws-load-balancer-enable-tcp-udp-listener",
            "on",
            "is not a boolean (true or false)",
        ),
        (
            "aws-load-balancer-listener-attributes.HTTP-80",
            "a=1",
            "is on a key that does not end in <PROTOCOL>-<port> (such as TCP-80)",
        ),
        (
            "aws-load-balancer-backend-protocol",
            "http",
            "is not one of tcp, ssl",
        ),
        (
            "aws-load-balancer-proxy-protocol",
            "v2",
            "is not \"*\" (the only value: proxy protocol v2 on every target group)",
        ),
        (
            "aws-load-balancer-healthcheck-protocol",
            "UDP",
            "is not one of TCP, HTTP, HTTPS",
        ),
        (
            "aws-load-balancer-healthcheck-path",
            "healthz",
            "does not begin with '/'",
        ),
        (
            "aws-load-balancer-healthcheck-interval",
            "3",
            "must be between 5 and 300",
        ),
        (
            "aws-load-balancer-healthcheck-healthy-threshold",
            "two",
            "is not a whole number",
        ),
        (
            "aws-load-balancer-healthcheck-success-codes",
            "399-200",
            "is not HTTP codes between 200 and 599, listed (200,202) or as a range (200-399)",
        ),
    ];
    for (name, value, problem) in cases {
        let errors = parse_pairs(&[(name, value)]).expect_err(name);
        assert_eq!(errors.0.len(), 1, "{name}: {errors}");
        let error = &errors.0[0];
        assert_eq!(error.key, format!("{P}{name}"));
        assert_eq!(error.value, value, "{name}");
        assert_eq!(error.problem, problem, "{name}");
    }
}

#[test]
fn several_bad_values_are_all_named_at_once() {
    let errors = parse_pairs(&[
        ("aws-load-balancer-scheme", "public"),
        ("aws-load-balancer-healthcheck-timeout", "500"),
    ])
    .expect_err("two bad values");
    let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "service.beta.kubernetes.io/aws-load-balancer-scheme",
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-timeout"
        ]
    );
}

#[test]
fn annotations_not_built_yet_are_listed_not_ignored() {
    let parsed = good(&[
        ("aws-load-balancer-quic-enabled-ports", "443"),
        (
            "aws-load-balancer-manage-backend-security-group-rules",
            "false",
        ),
        ("actions.TCP-80", r#"{"type":"forward"}"#),
    ]);
    // A weighted default action is named, never silently ignored.
    assert_eq!(
        parsed.not_supported_yet,
        [
            "service.beta.kubernetes.io/aws-load-balancer-quic-enabled-ports",
            "service.beta.kubernetes.io/actions.TCP-80"
        ]
    );
    assert_eq!(parsed.manage_backend_security_group_rules, Some(false));
}
