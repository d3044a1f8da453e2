use super::*;
use crate::fixtures::{backend_service, ingress_settings, vpc};
use crate::stack::{Action, Condition, FixedResponse, TargetGroupRef};
use serde_json::json;

fn gateway(listeners: serde_json::Value) -> Gateway {
    serde_json::from_value(json!({
        "metadata": {"name": "gw", "namespace": "infra", "uid": "uid-gw", "generation": 2},
        "spec": {"gatewayClassName": "alb", "listeners": listeners},
    }))
    .expect("gateway")
}

fn route(name: &str, spec: serde_json::Value) -> HTTPRoute {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "infra", "generation": 1},
        "spec": spec,
    }))
    .expect("route")
}

struct World {
    labels: BTreeMap<String, BTreeMap<String, String>>,
    backends: BackendSnapshot,
    certificates: CertificateSnapshot,
    arns: BTreeMap<(String, String), String>,
    subnets: Vec<Subnet>,
    sets: Vec<ListenerSet>,
}

impl World {
    fn new() -> Self {
        let mut backends = BackendSnapshot::default();
        for name in ["v1", "v2"] {
            backends.services.insert(
                ("infra".into(), name.into()),
                backend_service("infra", name),
            );
        }
        Self {
            labels: BTreeMap::new(),
            backends,
            certificates: CertificateSnapshot::default(),
            arns: BTreeMap::new(),
            subnets: vpc(),
            sets: Vec::new(),
        }
    }

    fn build(&self, gateway: &Gateway, routes: &[HTTPRoute]) -> GatewayBuild {
        let snapshot = Snapshot {
            routes,
            listener_sets: &self.sets,
            namespace_labels: &self.labels,
            backends: &self.backends,
            certificates: &self.certificates,
            certificate_arns: &self.arns,
            subnets: &self.subnets,
            configurations: Default::default(),
            acm_certificates: &[],
        };
        build_gateway(gateway, snapshot, &ingress_settings())
    }
}

fn http_listener() -> serde_json::Value {
    json!([{"name": "http", "port": 80, "protocol": "HTTP"}])
}

#[test]
fn a_gateway_with_a_route_gets_an_alb_listener_rules_target_groups_and_bindings() {
    let web = route(
        "web",
        json!({
            "parentRefs": [{"name": "gw"}],
            "rules": [
                {"matches": [{"path": {"type": "Exact", "value": "/one"}}], "backendRefs": [{"name": "v1", "port": 80}]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                 "backendRefs": [{"name": "v1", "port": 80, "weight": 70}, {"name": "v2", "port": 80, "weight": 30}]},
            ],
        }),
    );
    let built = World::new().build(&gateway(http_listener()), &[web]);
    assert_eq!(built.problem, None);
    assert_eq!(built.accepted.reason, "Accepted");
    assert_eq!(built.attached_routes, [1]);
    let outcome = &built.routes[0];
    assert!(
        outcome.accepted.status && outcome.resolved_refs.status,
        "{outcome:?}"
    );
    let stack = built.stack.expect("stack");
    assert_eq!(stack.kind, StackKind::AlbGateway);
    assert_eq!(stack.id, "infra/gw");
    assert!(stack.load_balancer.name.starts_with("k8s-infra-gw-"));
    assert_eq!(stack.listeners.len(), 1);
    let listener = &stack.listeners[0];
    assert_eq!((listener.port, listener.protocol), (80, Protocol::Http));
    assert!(matches!(
        listener.default_action,
        Action::FixedResponse(FixedResponse {
            status_code: 404,
            ..
        })
    ));
    assert_eq!(listener.rules.len(), 2);
    assert!(
        matches!(&listener.rules[0].conditions[0], Condition::PathPattern { values, .. } if values == &["/one"])
    );
    let Action::Forward { target_groups, .. } = &listener.rules[1].action else {
        panic!("{:?}", listener.rules[1].action)
    };
    assert_eq!(target_groups.len(), 2);
    assert!(
        matches!(&target_groups[0].target_group, TargetGroupRef::Stack(id) if id.starts_with("infra/gw:infra-web:HTTPRoute-infra-v1:"))
    );
    // v1 once, though two rules send to it.
    assert_eq!(stack.target_groups.len(), 2);
    assert_eq!(stack.bindings.len(), 2);
    let sg = stack.managed_security_group.expect("managed group");
    assert_eq!(sg.ingress.iter().map(|r| r.port).collect::<Vec<_>>(), [80]);
}

#[test]
fn a_missing_backend_answers_500_and_names_the_reason_a_refused_route_gets_nothing() {
    let broken = route(
        "broken",
        json!({
            "parentRefs": [{"name": "gw"}],
            "rules": [{"backendRefs": [{"name": "nonexistent", "port": 80}]}],
        }),
    );
    let elsewhere = route(
        "elsewhere",
        json!({"parentRefs": [{"name": "gw", "sectionName": "nope"}], "rules": [{"backendRefs": [{"name": "v1", "port": 80}]}]}),
    );
    let other_gateway = route("other", json!({"parentRefs": [{"name": "another"}]}));
    let built = World::new().build(
        &gateway(http_listener()),
        &[broken, elsewhere, other_gateway],
    );
    assert_eq!(
        built.routes.len(),
        2,
        "only the routes that name the Gateway"
    );
    assert_eq!(built.routes[0].resolved_refs.reason, "BackendNotFound");
    assert!(built.routes[0].accepted.status);
    assert_eq!(built.routes[1].accepted.reason, "NoMatchingParent");
    assert_eq!(built.attached_routes, [1]);
    let stack = built.stack.expect("stack");
    let rule = &stack.listeners[0].rules[0];
    assert!(matches!(
        rule.action,
        Action::FixedResponse(FixedResponse {
            status_code: 500,
            ..
        })
    ));
    assert!(stack.target_groups.is_empty());
}

#[test]
fn unsupported_filters_refuse_the_route_and_invalid_listeners_say_so() {
    let modifier = route(
        "modifier",
        json!({
            "parentRefs": [{"name": "gw"}],
            "rules": [{"filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {}}],
                       "backendRefs": [{"name": "v1", "port": 80}]}],
        }),
    );
    let listeners = json!([
        {"name": "http", "port": 80, "protocol": "HTTP"},
        {"name": "invalid", "port": 1111, "protocol": "INVALID"},
    ]);
    let built = World::new().build(&gateway(listeners), &[modifier]);
    assert_eq!(
        (built.accepted.status, built.accepted.reason),
        (true, "ListenersNotValid")
    );
    assert_eq!(built.routes[0].accepted.reason, "UnsupportedValue");
    assert_eq!(built.attached_routes, [0, 0]);
    let stack = built.stack.expect("stack");
    assert!(
        stack.listeners.is_empty(),
        "no attached route, no ALB listener (upstream's)"
    );
    let only_invalid = World::new().build(
        &gateway(json!([{"name": "invalid", "port": 1111, "protocol": "INVALID"}])),
        &[],
    );
    assert_eq!(
        (only_invalid.accepted.status, only_invalid.accepted.reason),
        (false, "ListenersNotValid")
    );
}

#[test]
fn an_https_listener_waits_for_its_imported_certificate() {
    let mut world = World::new();
    world.certificates.secrets.insert(
        ("infra".into(), "cert".into()),
        crate::gateway::listeners::SecretCertificate::Valid,
    );
    let listeners = json!([{"name": "https", "port": 443, "protocol": "HTTPS",
                            "tls": {"certificateRefs": [{"name": "cert"}]}}]);
    let web = route(
        "web",
        json!({"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "v1", "port": 80}]}]}),
    );
    let waiting = world.build(&gateway(listeners.clone()), std::slice::from_ref(&web));
    assert_eq!(waiting.pending, [0]);
    assert!(waiting.stack.expect("stack").listeners.is_empty());
    world
        .arns
        .insert(("infra".into(), "cert".into()), "arn:aws:acm:cert".into());
    let ready = world.build(&gateway(listeners), &[web]);
    let stack = ready.stack.expect("stack");
    assert_eq!(stack.listeners[0].certificates, ["arn:aws:acm:cert"]);
    assert!(ready.pending.is_empty());
}

#[test]
fn parameters_and_static_addresses_are_refused_an_empty_address_is_not() {
    let mut with_parameters = gateway(http_listener());
    with_parameters.spec.infrastructure = Some(lb_api::gateway::GatewayInfrastructure {
        parameters_ref: Some(lb_api::gateway::LocalParametersReference {
            group: "invalid.io".into(),
            kind: "InvalidParameters".into(),
            name: "x".into(),
        }),
        ..Default::default()
    });
    let built = World::new().build(&with_parameters, &[]);
    assert_eq!(
        (built.accepted.status, built.accepted.reason),
        (false, "InvalidParameters")
    );
    assert!(built.stack.is_none());
    let mut with_address = gateway(http_listener());
    with_address.spec.addresses = vec![lb_api::gateway::GatewayAddress {
        type_: Some("IPAddress".into()),
        value: "10.0.0.1".into(),
    }];
    assert_eq!(
        World::new().build(&with_address, &[]).accepted.reason,
        "UnsupportedAddress"
    );
    with_address.spec.addresses[0].value.clear();
    assert!(World::new().build(&with_address, &[]).stack.is_some());
}

#[test]
fn listeners_with_different_hostnames_on_one_port_are_isolated() {
    let listeners = json!([
        {"name": "empty", "port": 80, "protocol": "HTTP"},
        {"name": "wildcard", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"},
        {"name": "specific", "port": 80, "protocol": "HTTP", "hostname": "abc.example.com"},
    ]);
    let on = |section: &str, path: &str| {
        route(
            section,
            json!({
                "parentRefs": [{"name": "gw", "sectionName": section}],
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}], "backendRefs": [{"name": "v1", "port": 80}]}],
            }),
        )
    };
    let routes = [
        on("empty", "/empty"),
        on("wildcard", "/wildcard"),
        on("specific", "/specific"),
    ];
    let built = World::new().build(&gateway(listeners), &routes);
    let rules = &built.stack.expect("stack").listeners[0].rules;
    let summary: Vec<(Option<String>, bool)> = rules
        .iter()
        .map(|r| {
            let host = r.conditions.iter().find_map(|c| match c {
                Condition::HostHeader(h) => Some(h.join(",")),
                _ => None,
            });
            (
                host,
                matches!(
                    r.action,
                    Action::FixedResponse(FixedResponse {
                        status_code: 404,
                        ..
                    })
                ),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some("abc.example.com".into()), false),
            (Some("abc.example.com".into()), true),
            (Some("*.example.com".into()), false),
            (Some("*.example.com".into()), true),
            (None, false),
        ]
    );
}

#[test]
fn a_hostname_a_more_specific_listener_owns_is_left_to_its_routes() {
    let listeners = json!([
        {"name": "empty", "port": 80, "protocol": "HTTP"},
        {"name": "wildcard", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"},
        {"name": "abc", "port": 80, "protocol": "HTTP", "hostname": "abc.foo.example.com"},
    ]);
    let via_wildcard = route(
        "wild",
        json!({
            "parentRefs": [{"name": "gw", "sectionName": "wildcard"}],
            "hostnames": ["*.example.com", "abc.foo.example.com"],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/wildcard"}}], "backendRefs": [{"name": "v1", "port": 80}]}],
        }),
    );
    let built = World::new().build(&gateway(listeners), &[via_wildcard]);
    let rules = &built.stack.expect("stack").listeners[0].rules;
    let forwarding_hosts: Vec<String> = rules
        .iter()
        .filter(|r| matches!(r.action, Action::Forward { .. }))
        .flat_map(|r| r.conditions.iter())
        .filter_map(|c| match c {
            Condition::HostHeader(h) => Some(h.join(",")),
            _ => None,
        })
        .collect();
    assert_eq!(forwarding_hosts, ["*.example.com"]);
}

fn listener_set(name: &str, listeners: serde_json::Value) -> ListenerSet {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "infra", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"parentRef": {"name": "gw"}, "listeners": listeners},
    }))
    .expect("listener set")
}

#[test]
fn listener_set_listeners_serve_only_the_routes_that_name_their_set() {
    let mut gw = gateway(json!([
        {"name": "gw-http", "port": 80, "protocol": "HTTP", "hostname": "gw.example"},
    ]));
    gw.spec.allowed_listeners =
        serde_json::from_value(json!({"namespaces": {"from": "Same"}})).expect("allowed");
    let mut world = World::new();
    world.sets = vec![listener_set(
        "extra",
        json!([
            {"name": "ls-http", "port": 80, "protocol": "HTTP", "hostname": "ls.example"},
            {"name": "ls-8080", "port": 8080, "protocol": "HTTP"},
        ]),
    )];
    let to_set =
        json!({"kind": "ListenerSet", "group": "gateway.networking.k8s.io", "name": "extra"});
    let both = route(
        "both",
        json!({"parentRefs": [{"name": "gw"}, to_set], "rules": [{"backendRefs": [{"name": "v1", "port": 80}]}]}),
    );
    let set_only = route(
        "set-only",
        json!({"parentRefs": [{"kind": "ListenerSet", "name": "extra", "sectionName": "ls-http"}],
               "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/ls"}}], "backendRefs": [{"name": "v2", "port": 80}]}]}),
    );
    // A Gateway parentRef cannot reach a ListenerSet's listener by its name.
    let wrong_parent = route(
        "wrong-parent",
        json!({"parentRefs": [{"name": "gw", "sectionName": "ls-http"}], "rules": [{"backendRefs": [{"name": "v1", "port": 80}]}]}),
    );
    let built = world.build(&gw, &[both, set_only, wrong_parent]);
    assert_eq!(built.problem, None);
    let names: Vec<&str> = built.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["gw-http", "ls-http", "ls-8080"]);
    assert_eq!(built.attached_routes, [1, 2, 1]);
    assert_eq!(built.sets.len(), 1);
    assert_eq!(built.sets[0].accepted.reason, "Accepted");
    let outcome = |name: &str, kind: Option<&str>| {
        built
            .routes
            .iter()
            .find(|o| o.name == name && o.parent_ref.kind.as_deref() == kind)
            .map(|o| (o.accepted.status, o.accepted.reason))
            .expect(name)
    };
    assert_eq!(outcome("both", None), (true, "Accepted"));
    assert_eq!(outcome("both", Some("ListenerSet")), (true, "Accepted"));
    assert_eq!(outcome("set-only", Some("ListenerSet")), (true, "Accepted"));
    assert_eq!(outcome("wrong-parent", None), (false, "NoMatchingParent"));
    let stack = built.stack.expect("stack");
    let ports: Vec<u16> = stack.listeners.iter().map(|l| l.port).collect();
    assert_eq!(ports, [80, 8080]);
    let sg = stack.managed_security_group.expect("managed group");
    let open: Vec<u16> = sg.ingress.iter().map(|r| r.port).collect();
    assert_eq!(open, [80, 8080]);
    // On port 80: /ls only for ls.example, "both" for each hostname, then isolation's 404s.
    let host_of = |rule: &crate::stack::Rule| {
        rule.conditions.iter().find_map(|c| match c {
            Condition::HostHeader(values) => Some(values.clone()),
            _ => None,
        })
    };
    let port_80 = &stack.listeners[0].rules;
    let ls_rule = port_80
        .iter()
        .find(|r| r.conditions.iter().any(|c| matches!(c, Condition::PathPattern { values, .. } if values == &["/ls*"] || values == &["/ls", "/ls/*"])))
        .expect("the set-only route's rule");
    assert_eq!(host_of(ls_rule), Some(vec!["ls.example".to_string()]));
}

#[test]
fn a_route_naming_a_set_the_gateway_does_not_admit_is_not_accepted() {
    let gw = gateway(http_listener());
    let mut world = World::new();
    world.sets = vec![listener_set(
        "extra",
        json!([{"name": "ls-http", "port": 80, "protocol": "HTTP", "hostname": "ls.example"}]),
    )];
    let to_set = route(
        "to-set",
        json!({"parentRefs": [{"kind": "ListenerSet", "name": "extra"}], "rules": [{"backendRefs": [{"name": "v1", "port": 80}]}]}),
    );
    let built = world.build(&gw, &[to_set]);
    assert_eq!(built.listeners.len(), 1);
    assert_eq!(built.sets[0].accepted.reason, "NotAllowed");
    assert_eq!(built.routes[0].accepted.reason, "NotAllowedByListeners");
    assert!(built.stack.expect("stack").listeners.is_empty());
}

#[test]
fn a_load_balancer_configuration_shapes_the_alb_and_gives_https_its_certificate() {
    let mut gw = gateway(json!([
        {"name": "http", "port": 80, "protocol": "HTTP"},
        {"name": "https", "port": 443, "protocol": "HTTPS"},
    ]));
    gw.spec.infrastructure = Some(lb_api::gateway::GatewayInfrastructure {
        parameters_ref: Some(lb_api::gateway::LocalParametersReference {
            group: "gateway.k8s.aws".into(),
            kind: "LoadBalancerConfiguration".into(),
            name: "lb".into(),
        }),
        ..Default::default()
    });
    let web = route(
        "web",
        json!({"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "v1", "port": 80}]}]}),
    );
    let world = World::new();
    // Named but missing: refused, naming it.
    let missing = world.build(&gw, std::slice::from_ref(&web));
    assert_eq!(missing.accepted.reason, "InvalidParameters");
    assert!(
        missing.accepted.message.contains("lb"),
        "{:?}",
        missing.accepted
    );
    let spec: LoadBalancerConfigurationSpec = serde_json::from_value(json!({
        "scheme": "internal",
        "tags": {"team": "web"},
        "loadBalancerAttributes": [{"key": "idle_timeout.timeout_seconds", "value": "120"}],
        "listenerConfigurations": [{
            "protocolPort": "HTTPS:443",
            "defaultCertificate": "arn:aws:acm:us-west-2:123456789012:certificate/web",
            "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        }],
    }))
    .unwrap();
    let snapshot = Snapshot {
        routes: std::slice::from_ref(&web),
        listener_sets: &[],
        namespace_labels: &world.labels,
        backends: &world.backends,
        certificates: &world.certificates,
        certificate_arns: &world.arns,
        subnets: &world.subnets,
        configurations: Configurations {
            class: None,
            gateway: Some(&spec),
        },
        acm_certificates: &[],
    };
    let built = build_gateway(&gw, snapshot, &ingress_settings());
    assert_eq!(built.accepted.reason, "Accepted", "{:?}", built.accepted);
    let stack = built.stack.expect("stack");
    assert_eq!(stack.load_balancer.scheme, crate::stack::Scheme::Internal);
    assert_eq!(stack.load_balancer.tags["team"], "web");
    assert_eq!(
        stack.load_balancer.attributes["idle_timeout.timeout_seconds"],
        "120"
    );
    let https = stack
        .listeners
        .iter()
        .find(|l| l.port == 443)
        .expect("HTTPS listener without certificateRefs");
    assert_eq!(
        https.certificates,
        ["arn:aws:acm:us-west-2:123456789012:certificate/web"]
    );
    assert_eq!(
        https.ssl_policy.as_deref(),
        Some("ELBSecurityPolicy-TLS13-1-2-2021-06")
    );
    // A field not read yet refuses the Gateway instead of half-applying the configuration.
    let mut unread = spec.clone();
    unread.source_ranges = vec!["10.0.0.0/8".into()];
    let refused = build_gateway(
        &gw,
        Snapshot {
            configurations: Configurations {
                class: None,
                gateway: Some(&unread),
            },
            ..snapshot
        },
        &ingress_settings(),
    );
    assert_eq!(refused.accepted.reason, "InvalidParameters");
    assert!(refused.accepted.message.contains("sourceRanges"));
    assert!(refused.stack.is_none());
}

#[test]
fn an_https_listener_without_a_certificate_finds_one_in_acm_by_its_hostname() {
    let gw = gateway(json!([
        {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "web.example.com"},
    ]));
    let web = route(
        "web",
        json!({"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "v1", "port": 80}]}]}),
    );
    let world = World::new();
    let acm = [
        crate::ingress::Certificate {
            arn: "arn:other".into(),
            domains: vec!["other.example.org".into()],
        },
        crate::ingress::Certificate {
            arn: "arn:wildcard".into(),
            domains: vec!["*.example.com".into()],
        },
    ];
    let snapshot = |acm_certificates| Snapshot {
        routes: std::slice::from_ref(&web),
        listener_sets: &[],
        namespace_labels: &world.labels,
        backends: &world.backends,
        certificates: &world.certificates,
        certificate_arns: &world.arns,
        subnets: &world.subnets,
        configurations: Configurations::default(),
        acm_certificates,
    };
    let built = build_gateway(&gw, snapshot(&acm), &ingress_settings());
    let stack = built.stack.expect("stack");
    assert_eq!(stack.listeners[0].certificates, ["arn:wildcard"]);
    // None covers it: the listener says why.
    let none = build_gateway(&gw, snapshot(&acm[..1]), &ingress_settings());
    let resolved = none.listeners[0]
        .verdicts
        .iter()
        .find(|v| v.type_ == "ResolvedRefs")
        .unwrap();
    assert_eq!(
        (resolved.status, resolved.reason),
        (false, "InvalidCertificateRef")
    );
}
