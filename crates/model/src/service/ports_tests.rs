use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::*;
use crate::service::annotations::parse;
use crate::service::build::*;
use crate::service::test_fixtures::*;
use crate::stack::tags;

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
            hc.port.to_string().as_str(),
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
        (hc.protocol.as_str(), hc.port.to_string().as_str(), hc.path),
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
            hc.port.to_string().as_str(),
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
        .flat_map(|rule| rule.ports.iter())
        .map(|p| (p.protocol.clone(), p.port.clone()))
        .collect();
    assert_eq!(
        ports,
        [("TCP".to_string(), Some(IntOrString::Int(8080)))],
        "the health-check port is the target port here: one port"
    );
}
