use k8s_openapi::api::networking::v1::Ingress;
use lb_api::TargetType;
use serde_json::{Value, json};

use super::*;
use crate::ingress::member::Services;
use crate::ingress::{Certificate, IngressSettings};
use crate::stack::{Condition, TargetGroupRef, WeightedTargetGroup};

use crate::fixtures::{backend_service as service, ingress, prefix_root};

fn settings() -> IngressSettings {
    crate::fixtures::ingress_settings()
}

fn subnets() -> Vec<Subnet> {
    ["a", "b"]
        .iter()
        .map(|zone| {
            crate::fixtures::subnet(
                &format!("subnet-{zone}"),
                &format!("us-west-2{zone}"),
                &[
                    ("kubernetes.io/role/elb", "1"),
                    ("kubernetes.io/role/internal-elb", "1"),
                ],
            )
        })
        .collect()
}

fn build(group: &GroupId, ingresses: &[Ingress], certificates: &[Certificate]) -> BuiltGroup {
    let settings = settings();
    let namespaces: std::collections::BTreeSet<&str> = ingresses
        .iter()
        .filter_map(|i| i.metadata.namespace.as_deref())
        .collect();
    let services = Services::new(namespaces.into_iter().flat_map(|namespace| {
        ["service-2048", "ng", "ng-canary", "web", "api"]
            .map(|name| std::sync::Arc::new(service(namespace, name)))
    }));
    let cluster = Cluster {
        settings: &settings,
        services: &services,
        certificates,
    };
    let members: Vec<GroupMember> = ingresses
        .iter()
        .map(|ingress| GroupMember::new(ingress, None))
        .collect();
    build_group(group, &members, &cluster, &subnets())
}

fn implicit(namespace: &str, name: &str) -> GroupId {
    GroupId::Implicit {
        namespace: namespace.into(),
        name: name.into(),
    }
}

#[test]
fn the_2048_game_is_an_internet_facing_alb_with_one_rule_to_an_ip_target_group() {
    let game = ingress(
        "game-2048",
        "ingress-2048",
        json!({"alb.ingress.kubernetes.io/scheme": "internet-facing",
               "alb.ingress.kubernetes.io/target-type": "ip"}),
        json!({"ingressClassName": "alb", "rules": prefix_root("service-2048")["rules"]}),
    );
    let built = build(&implicit("game-2048", "ingress-2048"), &[game], &[]);
    assert_eq!(built.outcomes[0].error, None);
    let stack = built.stack.expect("a stack");
    assert_eq!(stack.id, "game-2048/ingress-2048");
    assert_eq!(stack.kind, StackKind::Ingress);
    assert_eq!(stack.load_balancer.kind, LoadBalancerKind::Application);
    assert_eq!(stack.load_balancer.scheme.as_str(), "internet-facing");
    assert_eq!(stack.load_balancer.subnets.len(), 2);
    assert_eq!(stack.listeners.len(), 1);
    let listener = &stack.listeners[0];
    assert_eq!((listener.port, listener.protocol.as_str()), (80, "HTTP"));
    assert!(matches!(&listener.default_action, Action::FixedResponse(f) if f.status_code == 404));
    assert_eq!(listener.rules.len(), 1);
    let tg = &stack.target_groups[0];
    assert_eq!(tg.resource_id, "game-2048/ingress-2048-service-2048:80");
    assert_eq!(tg.target_type, TargetType::Ip);
    assert_eq!((tg.protocol.as_str(), tg.port), ("HTTP", 8080));
    assert_eq!(tg.health_check.path.as_deref(), Some("/"));
    assert_eq!(tg.health_check.matcher.as_deref(), Some("200"));
    assert_eq!(
        (
            tg.health_check.interval_seconds,
            tg.health_check.timeout_seconds
        ),
        (15, 5)
    );
    assert_eq!(
        listener.rules[0].action,
        Action::forward_to(&tg.resource_id)
    );
    assert_eq!(
        listener.rules[0].conditions,
        vec![Condition::PathPattern {
            values: vec!["/*".into()],
            regex: false
        }]
    );
    assert_eq!(stack.bindings[0].name, tg.name);
    assert_eq!(
        tg.tags.get(tags::INGRESS_RESOURCE).map(String::as_str),
        Some("game-2048/ingress-2048-service-2048:80")
    );
    let sg = stack
        .managed_security_group
        .expect("managed security group");
    assert_eq!(sg.ingress.len(), 1);
    assert_eq!(sg.ingress[0].source.to_string(), "0.0.0.0/0");
}

#[test]
fn the_canary_forwards_to_two_weighted_target_groups() {
    let canary = ingress(
        "default",
        "traffic-split",
        json!({
            "alb.ingress.kubernetes.io/group.name": "traffic-split",
            "alb.ingress.kubernetes.io/load-balancer-name": "traffic-split",
            "alb.ingress.kubernetes.io/target-type": "ip",
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/actions.weighted-routing": r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"ng","servicePort":80,"weight":50},{"serviceName":"ng-canary","servicePort":80,"weight":50}],"targetGroupStickinessConfig":{"enabled":false}}}"#,
        }),
        json!({"rules": [{"http": {"paths": [{"pathType": "ImplementationSpecific",
            "backend": {"service": {"name": "weighted-routing", "port": {"name": "use-annotation"}}}}]}}]}),
    );
    let built = build(&GroupId::Explicit("traffic-split".into()), &[canary], &[]);
    let stack = built.stack.expect("a stack");
    assert_eq!(stack.load_balancer.name, "traffic-split");
    assert_eq!(stack.target_groups.len(), 2);
    let weighted = |i: usize| WeightedTargetGroup {
        target_group: TargetGroupRef::Stack(stack.target_groups[i].resource_id.clone()),
        weight: Some(50),
    };
    assert_eq!(
        stack.listeners[0].rules[0].action,
        Action::Forward {
            target_groups: vec![weighted(0), weighted(1)],
            stickiness_seconds: None
        }
    );
}

#[test]
fn ssl_redirect_makes_http_redirect_and_https_carry_the_rules() {
    let tls = ingress(
        "game-2048",
        "ingress-2048",
        json!({
            "alb.ingress.kubernetes.io/certificate-arn": "arn:aws:acm:us-west-2:1:certificate/x",
            "alb.ingress.kubernetes.io/listen-ports": r#"[{"HTTP": 80}, {"HTTPS":443}]"#,
            "alb.ingress.kubernetes.io/ssl-redirect": "443",
        }),
        prefix_root("service-2048"),
    );
    let stack = build(&implicit("game-2048", "ingress-2048"), &[tls], &[])
        .stack
        .expect("a stack");
    let [http, https] = stack.listeners.as_slice() else {
        panic!("two listeners");
    };
    assert!(http.rules.is_empty());
    assert!(
        matches!(&http.default_action, Action::Redirect(r) if r.port.as_deref() == Some("443") && r.protocol == Some(crate::stack::Protocol::Https) && r.status_code == crate::stack::RedirectCode::Http301)
    );
    assert_eq!(https.rules.len(), 1);
    assert_eq!(
        https.certificates,
        vec!["arn:aws:acm:us-west-2:1:certificate/x".to_string()]
    );
    assert_eq!(
        https.ssl_policy.as_deref(),
        Some("ELBSecurityPolicy-2016-08")
    );
    // Without an HTTPS listener the redirect is refused, by name.
    let bad = ingress(
        "demo",
        "bad",
        json!({"alb.ingress.kubernetes.io/ssl-redirect": "443"}),
        prefix_root("web"),
    );
    let built = build(&implicit("demo", "bad"), &[bad], &[]);
    assert!(built.stack.is_none());
    assert_eq!(
        built.outcomes[0]
            .error
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some(
            "annotation alb.ingress.kubernetes.io/ssl-redirect: \"443\" names no HTTPS listener of the group (listen-ports)"
        )
    );
}

#[test]
fn https_without_a_given_certificate_discovers_one_by_host() {
    let spec = json!({"rules": [{"host": "shop.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]});
    let https = ingress(
        "demo",
        "shop",
        json!({"alb.ingress.kubernetes.io/listen-ports": r#"[{"HTTPS":443}]"#}),
        spec,
    );
    let certificates = [
        Certificate {
            arn: "arn:other".into(),
            domains: vec!["other.org".into()],
        },
        Certificate {
            arn: "arn:wildcard".into(),
            domains: vec!["*.example.com".into()],
        },
    ];
    let stack = build(
        &implicit("demo", "shop"),
        std::slice::from_ref(&https),
        &certificates,
    )
    .stack
    .expect("a stack");
    assert_eq!(
        stack.listeners[0].certificates,
        vec!["arn:wildcard".to_string()]
    );
    let built = build(&implicit("demo", "shop"), &[https], &certificates[..1]);
    assert!(
        built.outcomes[0]
            .error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("no ACM certificate covers it"))
    );
}

#[test]
fn a_bad_member_is_left_out_and_the_group_goes_on() {
    let group = GroupId::Explicit("shop".into());
    let member = |name: &str, order: &str, extra: Value, service: &str| {
        let mut annotations = json!({"alb.ingress.kubernetes.io/group.name": "shop",
            "alb.ingress.kubernetes.io/group.order": order});
        if let Value::Object(more) = extra {
            annotations.as_object_mut().expect("object").extend(more);
        }
        let spec = json!({"rules": [{"host": format!("{name}.example.com"), "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]});
        ingress("demo", name, annotations, spec)
    };
    let members = [
        member(
            "web",
            "1",
            json!({"alb.ingress.kubernetes.io/scheme": "internet-facing"}),
            "web",
        ),
        member("api", "2", json!({}), "api"),
        member(
            "conflict",
            "3",
            json!({"alb.ingress.kubernetes.io/scheme": "internal"}),
            "web",
        ),
        member(
            "broken",
            "4",
            json!({"alb.ingress.kubernetes.io/listen-ports": "[{\"HTTP\": 80"}),
            "web",
        ),
        member("missing", "5", json!({}), "nowhere"),
    ];
    let built = build(&group, &members, &[]);
    let texts: Vec<(&str, Option<String>)> = built
        .outcomes
        .iter()
        .map(|o| (o.key.as_str(), o.error.as_ref().map(ToString::to_string)))
        .collect();
    let errors: Vec<(&str, Option<&str>)> = texts.iter().map(|(k, e)| (*k, e.as_deref())).collect();
    assert_eq!(errors[0], ("demo/web", None));
    assert_eq!(errors[1], ("demo/api", None));
    assert_eq!(
        errors[2],
        (
            "demo/conflict",
            Some(
                "annotation alb.ingress.kubernetes.io/scheme: \"internal\" conflicts with \"internet-facing\" of demo/web in the same group"
            )
        )
    );
    assert!(errors[3].1.is_some_and(|e| e.starts_with("annotation alb.ingress.kubernetes.io/listen-ports: \"[{\\\"HTTP\\\": 80\" is not a JSON list")));
    assert_eq!(
        errors[4],
        ("demo/missing", Some("Service demo/nowhere not found"))
    );
    let stack = built.stack.expect("the good members' stack");
    assert_eq!(stack.load_balancer.scheme.as_str(), "internet-facing");
    let hosts: Vec<&Condition> = stack.listeners[0]
        .rules
        .iter()
        .map(|r| &r.conditions[0])
        .collect();
    assert_eq!(
        hosts,
        [
            &Condition::HostHeader(vec!["web.example.com".into()]),
            &Condition::HostHeader(vec!["api.example.com".into()]),
        ]
    );
}

#[test]
fn instance_targets_use_the_node_port_and_service_annotations_win() {
    let mut web = service("demo", "web");
    web.metadata.annotations = Some(
        [
            (
                "alb.ingress.kubernetes.io/healthcheck-path".to_string(),
                "/ready".to_string(),
            ),
            (
                "alb.ingress.kubernetes.io/healthcheck-interval-seconds".to_string(),
                "10".to_string(),
            ),
        ]
        .into(),
    );
    let settings = settings();
    let services = Services::new([std::sync::Arc::new(web)]);
    let cluster = Cluster {
        settings: &settings,
        services: &services,
        certificates: &[],
    };
    let legacy = ingress(
        "demo",
        "django-ingress",
        json!({"kubernetes.io/ingress.class": "alb",
               "alb.ingress.kubernetes.io/healthcheck-path": "/logistics/health",
               "alb.ingress.kubernetes.io/success-codes": "200-301",
               "alb.ingress.kubernetes.io/healthcheck-interval-seconds": "3"}),
        prefix_root("web"),
    );
    let members = [GroupMember::new(&legacy, None)];
    let built = build_group(
        &implicit("demo", "django-ingress"),
        &members,
        &cluster,
        &subnets(),
    );
    let stack = built.stack.expect("a stack");
    let tg = &stack.target_groups[0];
    assert_eq!((tg.target_type, tg.port), (TargetType::Instance, 30080));
    assert_eq!(tg.health_check.path.as_deref(), Some("/ready"));
    assert_eq!(tg.health_check.matcher.as_deref(), Some("200-301"));
    assert_eq!(tg.health_check.interval_seconds, 10);
    assert_eq!(
        built.outcomes[0].warnings.len(),
        1,
        "{:?}",
        built.outcomes[0].warnings
    );
}

#[test]
fn the_seeds_interval_of_3_becomes_5_with_a_shorter_timeout() {
    let legacy = ingress(
        "demo",
        "django-ingress",
        json!({"alb.ingress.kubernetes.io/healthcheck-interval-seconds": "3"}),
        prefix_root("web"),
    );
    let built = build(&implicit("demo", "django-ingress"), &[legacy], &[]);
    let stack = built.stack.expect("a stack");
    let check = &stack.target_groups[0].health_check;
    assert_eq!((check.interval_seconds, check.timeout_seconds), (5, 4));
}
