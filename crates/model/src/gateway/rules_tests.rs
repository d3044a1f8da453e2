use super::*;
use lb_api::gateway::{HTTPPathMatch, HTTPPathModifier, HTTPRequestRedirect, ValueMatch};

fn path(kind: &str, value: &str) -> HTTPRouteMatch {
    HTTPRouteMatch {
        path: Some(HTTPPathMatch {
            type_: Some(kind.into()),
            value: Some(value.into()),
        }),
        ..HTTPRouteMatch::default()
    }
}

fn with_header(mut m: HTTPRouteMatch, name: &str, value: &str) -> HTTPRouteMatch {
    m.headers.push(ValueMatch {
        type_: None,
        name: name.into(),
        value: value.into(),
    });
    m
}

fn rule(matches: Vec<HTTPRouteMatch>) -> HTTPRouteRule {
    HTTPRouteRule {
        matches,
        ..HTTPRouteRule::default()
    }
}

/// The route's rules, each forwarding to target group `tg-<index>`.
fn route<'a>(rules: &'a [HTTPRouteRule], hostnames: &[&str]) -> PortRoute<'a> {
    PortRoute {
        namespace: "infra",
        name: "route",
        created: 0,
        hostnames: hostnames.iter().map(|h| (*h).to_string()).collect(),
        rules,
        actions: (0..rules.len())
            .map(|i| Action::forward_to(&format!("tg-{i}")))
            .collect(),
    }
}

fn targets(rules: &[Rule]) -> Vec<String> {
    rules
        .iter()
        .map(|r| match r.action.single_target() {
            Some(TargetGroupRef::Stack(id)) => id.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

fn paths(rules: &[Rule]) -> Vec<Vec<String>> {
    rules
        .iter()
        .map(|r| {
            r.conditions
                .iter()
                .filter_map(|c| match c {
                    Condition::PathPattern { values, .. } => Some(values.join(",")),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn exact_paths_go_first_then_the_longest_prefix() {
    let rules = [
        rule(vec![path("Exact", "/match")]),
        rule(vec![path("Exact", "/match/exact")]),
        rule(vec![path("Exact", "/match/exact/one")]),
        rule(vec![path("PathPrefix", "/match/")]),
        rule(vec![path("PathPrefix", "/match/prefix/")]),
        rule(vec![path("PathPrefix", "/match/prefix/one")]),
    ];
    let built = listener_rules(&[route(&rules, &[])], &BTreeMap::new());
    assert_eq!(
        targets(&built),
        ["tg-2", "tg-1", "tg-0", "tg-5", "tg-4", "tg-3"]
    );
    assert_eq!(
        paths(&built)[3..],
        [
            vec!["/match/prefix/one,/match/prefix/one/*".to_string()],
            vec!["/match/prefix,/match/prefix/*".into()],
            vec!["/match,/match/*".into()]
        ]
    );
}

#[test]
fn each_match_is_a_rule_and_more_headers_win_on_the_same_path() {
    // HTTPRouteMatching: `/` or version:one -> v1; `/v2` or version:two -> v2 (paths defaulted
    // to PathPrefix `/` by the API server).
    let rules = [
        rule(vec![
            path("PathPrefix", "/"),
            with_header(path("PathPrefix", "/"), "version", "one"),
        ]),
        rule(vec![
            path("PathPrefix", "/v2"),
            with_header(path("PathPrefix", "/"), "version", "two"),
        ]),
    ];
    let built = listener_rules(&[route(&rules, &[])], &BTreeMap::new());
    assert_eq!(built.len(), 4);
    assert_eq!(targets(&built), ["tg-1", "tg-0", "tg-1", "tg-0"]);
    assert_eq!(paths(&built)[0], ["/v2,/v2/*"]);
    assert_eq!(paths(&built)[3], ["/*"]);
}

#[test]
fn hostnames_split_rules_and_exact_hostnames_go_before_wildcards_and_none() {
    let rules = [rule(vec![path("PathPrefix", "/")])];
    let specific = route(&rules, &["very.specific.com", "*.wildcard.io"]);
    let rules_any = [rule(vec![path("PathPrefix", "/")])];
    let mut any = route(&rules_any, &[]);
    any.name = "any";
    let built = listener_rules(&[any, specific], &BTreeMap::new());
    let hosts: Vec<Option<String>> = built
        .iter()
        .map(|r| {
            r.conditions.iter().find_map(|c| match c {
                Condition::HostHeader(h) => Some(h.join(",")),
                _ => None,
            })
        })
        .collect();
    assert_eq!(
        hosts,
        [
            Some("very.specific.com".into()),
            Some("*.wildcard.io".into()),
            None
        ]
    );
}

#[test]
fn backends_forward_by_weight_and_a_rule_with_nowhere_to_go_answers_500() {
    let plain = rule(vec![]);
    let weighted = rule_action(
        0,
        &plain,
        &[
            Some(("v1".into(), 70)),
            Some(("v2".into(), 30)),
            Some(("v3".into(), 0)),
        ],
    );
    let Ok(Action::Forward { target_groups, .. }) = weighted else {
        panic!("{weighted:?}")
    };
    let weights: Vec<Option<i32>> = target_groups.iter().map(|t| t.weight).collect();
    assert_eq!(weights, [Some(70), Some(30)]);
    for backends in [
        vec![],
        vec![None, Some(("v1".to_string(), 1))],
        vec![Some(("v1".to_string(), 0))],
    ] {
        let action = rule_action(0, &plain, &backends);
        assert!(
            matches!(
                action,
                Ok(Action::FixedResponse(FixedResponse {
                    status_code: 500,
                    ..
                }))
            ),
            "{backends:?}"
        );
    }
}

#[test]
fn redirects_map_to_alb_and_what_alb_cannot_do_is_named() {
    let redirect = |r: HTTPRequestRedirect| HTTPRouteRule {
        filters: vec![HTTPRouteFilter {
            type_: "RequestRedirect".into(),
            request_redirect: Some(r),
            extension_ref: None,
        }],
        ..HTTPRouteRule::default()
    };
    let host = redirect(HTTPRequestRedirect {
        hostname: Some("example.org".into()),
        ..HTTPRequestRedirect::default()
    });
    let Ok(Action::Redirect(r)) = rule_action(0, &host, &[]) else {
        panic!()
    };
    assert_eq!(
        (
            r.status_code,
            r.host.as_deref(),
            r.port.as_deref(),
            r.protocol
        ),
        (RedirectCode::Http302, Some("example.org"), None, None)
    );
    let scheme = redirect(HTTPRequestRedirect {
        scheme: Some("https".into()),
        status_code: Some(301),
        ..HTTPRequestRedirect::default()
    });
    let Ok(Action::Redirect(r)) = rule_action(0, &scheme, &[]) else {
        panic!()
    };
    assert_eq!(
        (r.status_code, r.port.as_deref(), r.protocol),
        (RedirectCode::Http301, Some("443"), Some(Protocol::Https))
    );

    let prefix = redirect(HTTPRequestRedirect {
        path: Some(HTTPPathModifier {
            type_: "ReplacePrefixMatch".into(),
            replace_full_path: None,
            replace_prefix_match: Some("/new".into()),
        }),
        ..HTTPRequestRedirect::default()
    });
    let code = redirect(HTTPRequestRedirect {
        status_code: Some(308),
        ..HTTPRequestRedirect::default()
    });
    let modifier = HTTPRouteRule {
        filters: vec![HTTPRouteFilter {
            type_: "RequestHeaderModifier".into(),
            ..HTTPRouteFilter::default()
        }],
        ..HTTPRouteRule::default()
    };
    for (rule, needle) in [
        (prefix, "ReplacePrefixMatch"),
        (code, "308"),
        (modifier, "RequestHeaderModifier"),
    ] {
        let err = rule_action(2, &rule, &[]).expect_err("unsupported");
        assert!(err.to_string().contains(needle) && err.rule == 2, "{err}");
    }
}
