use proptest::prelude::*;

use super::*;

#[test]
fn listen_ports_read_as_upstream_writes_them() {
    type Case = (
        &'static str,
        Result<Vec<(ListenerProtocol, u16)>, &'static str>,
    );
    let cases: [Case; 8] = [
        (
            r#"[{"HTTP": 80}, {"HTTPS":443}]"#,
            Ok(vec![
                (ListenerProtocol::Http, 80),
                (ListenerProtocol::Https, 443),
            ]),
        ),
        (
            r#"[{"HTTP": 8080}, {"HTTP": 8080}]"#,
            Ok(vec![(ListenerProtocol::Http, 8080)]),
        ),
        (r#"[{"HTTP": 80}"#, Err("is not a JSON list")),
        (r#"[{"TCP": 80}]"#, Err("has protocol \"TCP\"")),
        (r#"[{"HTTP": 0}]"#, Err("has port 0 for HTTP")),
        (r#"[{"HTTP": "80"}]"#, Err("has port \"80\" for HTTP")),
        (
            r#"[{"HTTP": 80, "HTTPS": 443}]"#,
            Err("has an entry that is not one"),
        ),
        (
            r#"[{"HTTP": 80}, {"HTTPS": 80}]"#,
            Err("listens on port 80 with both HTTP and HTTPS"),
        ),
    ];
    for (raw, want) in cases {
        match (listen_ports(raw), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{raw}"),
            (Err(got), Err(want)) => assert!(got.starts_with(want), "{raw}: {got}"),
            (got, want) => panic!("{raw}: got {got:?}, want {want:?}"),
        }
    }
    assert_eq!(listen_ports("[]"), Err("lists no listener".into()));
}

#[test]
fn the_seeds_weighted_routing_action_reads_as_two_services_at_50() {
    let raw = r#"{
        "type": "forward",
        "forwardConfig": {
            "targetGroups": [
                {"serviceName": "ng", "servicePort": 80, "weight": 50},
                {"serviceName": "ng-canary", "servicePort": 80, "weight": 50}
            ],
            "targetGroupStickinessConfig": {"enabled": false}
        }
    }"#;
    let service = |name: &str| WeightedActionTarget {
        target: ActionTarget::Service {
            name: name.into(),
            port: ServicePortRef::Number(80),
        },
        weight: Some(50),
    };
    assert_eq!(
        action(raw),
        Ok(AnnotationAction::Forward {
            targets: vec![service("ng"), service("ng-canary")],
            stickiness_seconds: None,
        })
    );
}

#[test]
fn upstreams_documented_actions_read() {
    let redirect = r#"{"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}"#;
    assert_eq!(
        action(redirect),
        Ok(AnnotationAction::Redirect(Redirect {
            protocol: Some(crate::stack::Protocol::Https),
            port: Some("443".into()),
            host: None,
            path: None,
            query: None,
            status_code: crate::stack::RedirectCode::Http301,
        }))
    );
    let fixed = r#"{"type":"fixed-response","fixedResponseConfig":{"contentType":"text/plain","statusCode":"503","messageBody":"503 error text"}}"#;
    assert_eq!(
        action(fixed),
        Ok(AnnotationAction::FixedResponse(FixedResponse {
            status_code: 503,
            content_type: Some("text/plain".into()),
            message_body: Some("503 error text".into()),
        }))
    );
    let arn = r#"{"type":"forward","targetGroupARN": "arn:aws:elasticloadbalancing:tg/x"}"#;
    assert_eq!(
        action(arn),
        Ok(AnnotationAction::Forward {
            targets: vec![WeightedActionTarget {
                target: ActionTarget::Arn("arn:aws:elasticloadbalancing:tg/x".into()),
                weight: None,
            }],
            stickiness_seconds: None,
        })
    );
    let sticky = r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"a","servicePort":"http","weight":20},{"targetGroupName":"b","weight":20}],"targetGroupStickinessConfig":{"enabled":true,"durationSeconds":200}}}"#;
    let Ok(AnnotationAction::Forward {
        targets,
        stickiness_seconds,
    }) = action(sticky)
    else {
        panic!("a forward");
    };
    assert_eq!(stickiness_seconds, Some(200));
    assert_eq!(
        targets[0].target,
        ActionTarget::Service {
            name: "a".into(),
            port: ServicePortRef::Name("http".into())
        }
    );
    assert_eq!(targets[1].target, ActionTarget::Name("b".into()));
}

#[test]
fn bad_actions_say_what_is_wrong() {
    let tuple =
        |body: &str| format!(r#"{{"type":"forward","forwardConfig":{{"targetGroups":[{body}]}}}}"#);
    let six = [r#"{"serviceName":"a","servicePort":80}"#; 6].join(",");
    let cases = [
        ("{", "is not valid JSON".to_string()),
        (r#"{"type":"teleport"}"#, "has type \"teleport\"".into()),
        (
            r#"{"type":"forward"}"#,
            "is a forward with no target group".into(),
        ),
        (
            &tuple(r#"{"serviceName":"a","servicePort":80,"weight":"fifty"}"#),
            "has weight \"fifty\", which is not a number".into(),
        ),
        (
            &tuple(r#"{"serviceName":"a","servicePort":80,"weight":1000}"#),
            "has weight 1000".into(),
        ),
        (
            &tuple(r#"{"serviceName":"a"}"#),
            "names Service \"a\" without a servicePort".into(),
        ),
        (
            &tuple(r#"{"serviceName":"a","servicePort":80,"targetGroupARN":"x"}"#),
            "has a target group that does not name exactly one".into(),
        ),
        (&tuple(&six), "forwards to 6 target groups".into()),
        (
            r#"{"type":"redirect","redirectConfig":{"statusCode":"HTTP_307"}}"#,
            "has redirect statusCode \"HTTP_307\"".into(),
        ),
        (
            r#"{"type":"redirect"}"#,
            "is a redirect without redirectConfig".into(),
        ),
        (
            r#"{"type":"fixed-response","fixedResponseConfig":{"statusCode":"302"}}"#,
            "has fixed-response statusCode \"302\"".into(),
        ),
        (
            r#"{"type":"fixed-response","fixedResponseConfig":{"statusCode":"200","contentType":"image/png"}}"#,
            "has contentType \"image/png\"".into(),
        ),
        (
            r#"{"type":"authenticate-oidc"}"#,
            "is an action of type \"authenticate-oidc\", which is not supported yet".into(),
        ),
    ];
    for (raw, want) in cases {
        let got = action(raw).expect_err(raw);
        assert!(got.starts_with(&want), "{raw}: {got}");
    }
}

#[test]
fn upstreams_documented_conditions_read() {
    let raw = r#"[
        {"field":"host-header","hostHeaderConfig":{"values":["anno.example.com"]}},
        {"field":"path-pattern","pathPatternConfig":{"values":["/anno/path2"]}},
        {"field":"http-header","httpHeaderConfig":{"httpHeaderName": "HeaderName", "values":["HeaderValue1", "HeaderValue2"]}},
        {"field":"http-request-method","httpRequestMethodConfig":{"Values":["GET", "HEAD"]}},
        {"field":"query-string","queryStringConfig":{"values":[{"key":"paramA","value":"valueA1"},{"value":"valueB"}]}},
        {"field":"source-ip","sourceIpConfig":{"values":["192.168.0.0/16", "172.16.0.0/16"]}},
        {"field":"host-header","values":["legacy.example.com"]}
    ]"#;
    assert_eq!(
        conditions(raw),
        Ok(vec![
            Condition::HostHeader(vec!["anno.example.com".into()]),
            Condition::PathPattern {
                values: vec!["/anno/path2".into()],
                regex: false
            },
            Condition::HttpHeader {
                name: "HeaderName".into(),
                values: vec!["HeaderValue1".into(), "HeaderValue2".into()]
            },
            Condition::HttpRequestMethod(vec!["GET".into(), "HEAD".into()]),
            Condition::QueryString(vec![
                QueryStringPair {
                    key: Some("paramA".into()),
                    value: "valueA1".into()
                },
                QueryStringPair {
                    key: None,
                    value: "valueB".into()
                },
            ]),
            Condition::SourceIp(vec!["192.168.0.0/16".into(), "172.16.0.0/16".into()]),
            Condition::HostHeader(vec!["legacy.example.com".into()]),
        ])
    );
}

#[test]
fn bad_conditions_say_what_is_wrong() {
    let cases = [
        ("{}", "is not a list of condition objects"),
        (r#"[{"field":"cookie"}]"#, "has condition field \"cookie\""),
        (
            r#"[{"field":"host-header"}]"#,
            "has a host-header condition without values",
        ),
        (
            r#"[{"field":"source-ip","sourceIpConfig":{"values":["nope"]}}]"#,
            "has source-ip \"nope\", which is not a CIDR",
        ),
        (
            r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"x"}}]"#,
            "has an http-header condition without values",
        ),
        (
            r#"[{"field":"query-string","queryStringConfig":{"values":[]}}]"#,
            "has a query-string condition without values",
        ),
    ];
    for (raw, want) in cases {
        let got = conditions(raw).expect_err(raw);
        assert!(got.starts_with(want), "{raw}: {got}");
    }
}

#[test]
fn a_key_said_twice_is_refused_not_the_last_one_kept() {
    // Before: `[{"HTTP": 80, "HTTP": 443}]` listened on 443 alone, and `{"type": "forward",
    // "Type": "redirect", ...}` redirected: Go's decoder (upstream's) keeps the last silently.
    assert_eq!(
        listen_ports(r#"[{"HTTP": 80, "HTTP": 443}]"#),
        Err("names \"HTTP\" twice in one object at line 1 column 20".into())
    );
    let twice = r#"{"type": "fixed-response", "Type": "redirect",
        "fixedResponseConfig": {"statusCode": "503"}}"#;
    assert!(
        action(twice).is_err_and(|e| e.starts_with("names \"Type\" twice in one object")),
        "{:?}",
        action(twice)
    );
    let nested = r#"[{"field": "http-header", "httpHeaderConfig":
        {"httpHeaderName": "a", "HttpHeaderName": "b", "values": ["1"]}}]"#;
    assert!(conditions(nested).is_err_and(|e| e.contains("twice")));
    // Equal keys in different objects are no repetition.
    assert!(listen_ports(r#"[{"HTTP": 80}, {"HTTP": 8080}]"#).is_ok());
}

proptest! {
    #![proptest_config(crate::adversarial::config(512))]

    // The JSON-carrying annotations come from users: any text gives a value or a problem,
    // never a panic.
    #[test]
    fn any_text_parses_or_is_refused(raw in ".{0,200}") {
        let _ = listen_ports(&raw);
        let _ = action(&raw);
        let _ = conditions(&raw);
    }

    // The ugly ones too: trailing commas, duplicate keys, wrong types, truncated, nested past
    // the decoder's depth limit, 100 KB: a value or a problem said, never a panic.
    #[test]
    fn any_ugly_json_parses_or_is_refused(raw in crate::adversarial::ugly()) {
        for problem in [listen_ports(&raw).err(), action(&raw).err(), conditions(&raw).err()]
            .into_iter()
            .flatten()
        {
            prop_assert!(!problem.trim().is_empty(), "refused without a reason: {:?}", crate::adversarial::clip(&raw));
        }
    }

    #[test]
    fn any_json_shaped_action_parses_or_is_refused(
        kind in prop::sample::select(vec!["forward", "redirect", "fixed-response", "x"]),
        weight in prop::option::of(-5i64..2000),
        port in prop::option::of(-5i64..70000),
        status in "[0-9A-Z_]{0,8}",
    ) {
        let raw = serde_json::json!({
            "type": kind,
            "forwardConfig": {"targetGroups": [{"serviceName": "s", "servicePort": port, "weight": weight}]},
            "redirectConfig": {"statusCode": status},
            "fixedResponseConfig": {"statusCode": status},
        })
        .to_string();
        if let Ok(AnnotationAction::Forward { targets, .. }) = action(&raw) {
            prop_assert!(targets.iter().all(|t| t.weight.is_none_or(|w| (0..=999).contains(&w))));
        }
    }
}
