use serde_json::json;

use super::*;
use crate::ingress::annotations::parse;

fn ingress(
    annotations: serde_json::Value,
    rules: serde_json::Value,
) -> (Ingress, IngressAnnotations) {
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "demo", "annotations": annotations},
        "spec": {"rules": rules},
    }))
    .expect("ingress");
    let parsed =
        parse(ingress.metadata.annotations.as_ref().expect("annotations")).expect("parses");
    (ingress, parsed)
}

fn path(
    path: Option<&str>,
    path_type: &str,
    service: &str,
    port: serde_json::Value,
) -> serde_json::Value {
    let mut value =
        json!({"pathType": path_type, "backend": {"service": {"name": service, "port": port}}});
    if let Some(p) = path {
        value["path"] = json!(p);
    }
    value
}

fn pattern(values: &[&str]) -> Condition {
    Condition::PathPattern {
        values: values.iter().map(|v| (*v).to_string()).collect(),
        regex: false,
    }
}

fn service(name: &str, port: i32) -> BackendRef {
    BackendRef::Service {
        name: name.into(),
        port: ServicePortRef::Number(port),
    }
}

#[test]
fn the_2048_prefix_slash_is_one_catch_all_rule() {
    let (ingress, annotations) = ingress(
        json!({}),
        json!([{"http": {"paths": [path(Some("/"), "Prefix", "service-2048", json!({"number": 80}))]}}]),
    );
    assert_eq!(
        path_rules(&ingress, &annotations),
        Ok(vec![PathRule {
            conditions: vec![pattern(&["/*"])],
            backend: service("service-2048", 80),
        }])
    );
}

#[test]
fn the_weighted_routing_seed_makes_one_rule_to_its_action() {
    let (ingress, annotations) = ingress(
        json!({"alb.ingress.kubernetes.io/actions.weighted-routing": r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"ng","servicePort":80,"weight":50},{"serviceName":"ng-canary","servicePort":80,"weight":50}]}}"#}),
        json!([{"http": {"paths": [path(None, "ImplementationSpecific", "weighted-routing", json!({"name": "use-annotation"}))]}}]),
    );
    assert_eq!(
        path_rules(&ingress, &annotations),
        Ok(vec![PathRule {
            conditions: vec![pattern(&["/*"])],
            backend: BackendRef::Action("weighted-routing".into()),
        }])
    );
}

#[test]
fn hosts_path_types_and_precedence() {
    let (ingress, annotations) = ingress(
        json!({"alb.ingress.kubernetes.io/conditions.api": r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Canary","values":["yes"]}}]"#}),
        json!([
            {"host": "a.example.com", "http": {"paths": [
                path(Some("/"), "Prefix", "root", json!({"number": 80})),
                path(Some("/img/*.png"), "ImplementationSpecific", "img", json!({"number": 80})),
                path(Some("/api/"), "Prefix", "api", json!({"name": "http"})),
                path(Some("/health"), "Exact", "health", json!({"number": 8080})),
            ]}},
            {"host": "b.example.com", "http": {"paths": [path(Some("/"), "Prefix", "b", json!({"number": 80}))]}},
        ]),
    );
    let host = |h: &str| Condition::HostHeader(vec![h.into()]);
    let rules = path_rules(&ingress, &annotations).expect("rules");
    assert_eq!(
        rules,
        vec![
            PathRule {
                conditions: vec![host("a.example.com"), pattern(&["/health"])],
                backend: service("health", 8080),
            },
            PathRule {
                conditions: vec![
                    host("a.example.com"),
                    pattern(&["/api", "/api/*"]),
                    Condition::HttpHeader {
                        name: "X-Canary".into(),
                        values: vec!["yes".into()]
                    },
                ],
                backend: BackendRef::Service {
                    name: "api".into(),
                    port: ServicePortRef::Name("http".into())
                },
            },
            PathRule {
                conditions: vec![host("a.example.com"), pattern(&["/*"])],
                backend: service("root", 80),
            },
            PathRule {
                conditions: vec![host("a.example.com"), pattern(&["/img/*.png"])],
                backend: service("img", 80),
            },
            PathRule {
                conditions: vec![host("b.example.com"), pattern(&["/*"])],
                backend: service("b", 80),
            },
        ]
    );
}

#[test]
fn regex_paths_under_use_regex_path_match() {
    let (ingress, annotations) = ingress(
        json!({"alb.ingress.kubernetes.io/use-regex-path-match": "true"}),
        json!([{"http": {"paths": [path(Some("^/v[0-9]+/.*$"), "ImplementationSpecific", "api", json!({"number": 80}))]}}]),
    );
    assert_eq!(
        path_rules(&ingress, &annotations).expect("rules")[0].conditions,
        vec![Condition::PathPattern {
            values: vec!["^/v[0-9]+/.*$".into()],
            regex: true
        }]
    );
}

#[test]
fn bad_paths_and_backends_are_named() {
    let cases = [
        (
            path(Some("/a/*"), "Prefix", "s", json!({"number": 80})),
            "path \"/a/*\" (Prefix) contains a wildcard, which only ImplementationSpecific paths may",
        ),
        (
            path(Some("/a"), "Fuzzy", "s", json!({"number": 80})),
            "path \"/a\" has pathType \"Fuzzy\"; Exact, Prefix or ImplementationSpecific",
        ),
        (
            path(
                Some("/a"),
                "Prefix",
                "canary",
                json!({"name": "use-annotation"}),
            ),
            "backend \"canary\" uses port use-annotation but annotation alb.ingress.kubernetes.io/actions.canary is not set",
        ),
    ];
    for (bad, want) in cases {
        let (ingress, annotations) = ingress(json!({}), json!([{"http": {"paths": [bad]}}]));
        assert_eq!(
            path_rules(&ingress, &annotations)
                .expect_err(want)
                .to_string(),
            want
        );
    }
}
