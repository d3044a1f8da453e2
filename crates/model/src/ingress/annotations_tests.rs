use super::*;

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                format!("{}{k}", lb_api::keys::ingress::PREFIX),
                (*v).to_string(),
            )
        })
        .collect()
}

#[test]
fn the_seeds_annotations_read() {
    let parsed = parse(&annotations(&[
        ("scheme", "internet-facing"),
        ("target-type", "ip"),
        ("group.name", "traffic-split"),
        ("load-balancer-name", "traffic-split"),
        (
            "certificate-arn",
            "arn:aws:acm:ap-northeast-2:1:certificate/x",
        ),
        ("listen-ports", r#"[{"HTTP": 80}, {"HTTPS":443}]"#),
        ("ssl-redirect", "443"),
        ("healthcheck-path", "/logistics/health"),
        ("success-codes", "200-301"),
        ("healthcheck-interval-seconds", "10"),
    ]))
    .expect("parses");
    assert_eq!(parsed.scheme, Some(Scheme::InternetFacing));
    assert_eq!(parsed.target_group.target_type, Some(TargetType::Ip));
    assert_eq!(parsed.group_name.as_deref(), Some("traffic-split"));
    assert_eq!(parsed.load_balancer_name.as_deref(), Some("traffic-split"));
    assert_eq!(
        parsed.listen_ports,
        Some(vec![
            (ListenerProtocol::Http, 80),
            (ListenerProtocol::Https, 443)
        ])
    );
    assert_eq!(parsed.ssl_redirect, Some(443));
    assert_eq!(
        parsed.target_group.health_check_path.as_deref(),
        Some("/logistics/health")
    );
    assert_eq!(
        parsed.target_group.success_codes.as_deref(),
        Some("200-301")
    );
    assert_eq!(parsed.target_group.interval_seconds, Some(10));
    assert!(parsed.warnings.is_empty());
}

#[test]
fn an_interval_below_albs_minimum_is_raised_with_a_warning() {
    let parsed = parse(&annotations(&[("healthcheck-interval-seconds", "3")])).expect("parses");
    assert_eq!(parsed.target_group.interval_seconds, Some(5));
    assert_eq!(
        parsed.warnings,
        vec![
            "annotation alb.ingress.kubernetes.io/healthcheck-interval-seconds: \"3\" is below ALB's minimum health check interval; 5 is used"
        ]
    );
}

#[test]
fn every_bad_value_is_named_with_its_annotation() {
    let cases = [
        ("group.name", "Traffic_Split", "is not a group name"),
        ("group.order", "1001", "must be between -1000 and 1000"),
        ("load-balancer-name", "-bad", "is not a load balancer name"),
        (
            "scheme",
            "public",
            "is not one of internal, internet-facing",
        ),
        (
            "ip-address-type",
            "ipv6",
            "is not one of ipv4, dualstack, dualstack-without-public-ipv4",
        ),
        (
            "inbound-cidrs",
            "10.0.0.0/8, everywhere",
            "is not a list of CIDRs",
        ),
        (
            "load-balancer-attributes",
            "idle_timeout",
            "is not a list of key=value pairs",
        ),
        ("listen-ports", r#"[{"HTTP": 80}"#, "is not a JSON list"),
        ("ssl-redirect", "https", "is not a whole number"),
        (
            "listener-attributes.TCP-80",
            "a=b",
            "is not keyed HTTP-<port> or HTTPS-<port>",
        ),
        (
            "actions.canary",
            r#"{"type":"forward"}"#,
            "is a forward with no target group",
        ),
        (
            "conditions.canary",
            "[{}]",
            "is not a list of condition objects",
        ),
        ("target-type", "pod", "is not one of ip, instance"),
        ("backend-protocol", "TCP", "is not one of HTTP, HTTPS"),
        (
            "backend-protocol-version",
            "HTTP3",
            "is not one of HTTP1, HTTP2, GRPC",
        ),
        ("healthcheck-port", "0", "is not a port between 1 and 65535"),
        (
            "healthcheck-timeout-seconds",
            "1",
            "must be between 2 and 120",
        ),
        ("healthy-threshold-count", "11", "must be between 2 and 10"),
        ("unhealthy-threshold-count", "x", "is not a whole number"),
        (
            "success-codes",
            "200-600",
            "is not a list or range of status codes",
        ),
        ("use-regex-path-match", "yes", "is not a boolean"),
        ("multi-cluster-target-group", "maybe", "is not a boolean"),
    ];
    for (name, value, problem) in cases {
        let errors = parse(&annotations(&[(name, value)])).expect_err(name);
        assert_eq!(errors.0.len(), 1, "{name}: {errors}");
        let error = &errors.0[0];
        assert_eq!(error.key, format!("alb.ingress.kubernetes.io/{name}"));
        assert_eq!(error.value, value);
        assert!(
            error.problem.starts_with(problem),
            "{name}: {}",
            error.problem
        );
    }
}

#[test]
fn all_bad_values_come_back_at_once() {
    let errors = parse(&annotations(&[
        ("scheme", "public"),
        ("actions.a", "{"),
        ("conditions.b", "{"),
    ]))
    .expect_err("three");
    assert_eq!(errors.0.len(), 3);
}

#[test]
fn actions_conditions_and_listener_attributes_are_keyed_by_name() {
    let parsed = parse(&annotations(&[
        (
            "actions.redirect-to-eks",
            r#"{"type":"redirect","redirectConfig":{"host":"aws.amazon.com","path":"/eks/","port":"443","protocol":"HTTPS","query":"k=v","statusCode":"HTTP_302"}}"#,
        ),
        (
            "conditions.rule-path1",
            r#"[{"field":"host-header","hostHeaderConfig":{"values":["anno.example.com"]}}]"#,
        ),
        ("listener-attributes.HTTP-80", "routing.http.response.server.enabled=false"),
    ]))
    .expect("parses");
    assert!(parsed.actions.contains_key("redirect-to-eks"));
    assert_eq!(
        parsed.conditions.get("rule-path1"),
        Some(&vec![Condition::HostHeader(vec![
            "anno.example.com".into()
        ])])
    );
    assert_eq!(
        parsed
            .listener_attributes
            .get(&(ListenerProtocol::Http, 80)),
        Some(&BTreeMap::from([(
            "routing.http.response.server.enabled".to_string(),
            "false".to_string()
        )]))
    );
}

#[test]
fn unsupported_annotations_warn_by_name_and_auth_type_none_does_not() {
    let parsed = parse(&annotations(&[
        ("wafv2-acl-arn", "arn:aws:wafv2:x"),
        ("transforms.svc", "[]"),
        ("auth-type", "none"),
    ]))
    .expect("parses");
    assert_eq!(
        parsed.warnings,
        vec![
            "annotation alb.ingress.kubernetes.io/transforms.svc is not supported yet: it has no effect",
            "annotation alb.ingress.kubernetes.io/wafv2-acl-arn is not supported yet: it has no effect",
        ]
    );
    let oidc = parse(&annotations(&[("auth-type", "oidc")])).expect("parses");
    assert_eq!(oidc.warnings.len(), 1);
}

#[test]
fn a_services_target_group_annotations_win_over_the_ingress() {
    let ingress = parse(&annotations(&[
        ("healthcheck-path", "/ingress"),
        ("success-codes", "200"),
        ("target-group-attributes", "a=1,b=1"),
    ]))
    .expect("parses")
    .target_group;
    let (service, warnings) = parse_service(&annotations(&[
        ("healthcheck-path", "/service"),
        ("target-group-attributes", "b=2"),
    ]))
    .expect("parses");
    assert!(warnings.is_empty());
    let merged = service.over(&ingress);
    assert_eq!(merged.health_check_path.as_deref(), Some("/service"));
    assert_eq!(merged.success_codes.as_deref(), Some("200"));
    assert_eq!(
        merged.attributes,
        BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string())
        ])
    );
}

/// `auth-*` on a Service (upstream reads them there for the Service's rules) is named as on an
/// Ingress, never silently ignored; a Service's `tags` win over the Ingress's for its groups.
#[test]
fn a_services_auth_annotations_warn_and_its_tags_win() {
    let (service, warnings) = parse_service(&annotations(&[
        ("auth-type", "cognito"),
        ("auth-scope", "openid"),
        ("tags", "team=web,owner=svc"),
    ]))
    .expect("parses");
    assert_eq!(
        warnings,
        [
            "annotation alb.ingress.kubernetes.io/auth-scope is not supported yet: it has no effect",
            "annotation alb.ingress.kubernetes.io/auth-type is not supported yet: it has no effect",
        ]
    );
    let ingress = parse(&annotations(&[("tags", "owner=ing,cost=1")]))
        .expect("parses")
        .target_group;
    assert_eq!(
        service.over(&ingress).tags,
        BTreeMap::from([
            ("cost".to_string(), "1".to_string()),
            ("owner".to_string(), "svc".to_string()),
            ("team".to_string(), "web".to_string()),
        ])
    );
}

#[test]
fn success_codes_take_albs_forms() {
    for good in ["200", "200,302", "200-399", "12", "0-99", "200-299,404"] {
        assert!(success_codes_valid(good), "{good}");
    }
    for bad in ["", "ok", "200-100", "500-600", "200,"] {
        assert!(!success_codes_valid(bad), "{bad}");
    }
}
