//! Between the SDK's listener actions and rule conditions and the stack's. What ELB reports is
//! normalised to what the model builds, so a converged listener or rule diffs to nothing: a
//! forward to one target group carries no weight, stickiness off is no stickiness, and a
//! redirect's `#{host}`-style placeholders mean "keep the request's own", which the model says
//! with None.

use aws_sdk_elasticloadbalancingv2::types as sdk;
use lb_model::stack::{
    Action, Condition, FixedResponse, Protocol, QueryStringPair, Redirect, RedirectCode,
    TargetGroupRef, WeightedTargetGroup,
};

/// The SDK action for `action`, whose target groups are named by ARN (see `diff::resolve`).
pub fn action_to_sdk(action: &Action) -> sdk::Action {
    match action {
        Action::Forward {
            target_groups,
            stickiness_seconds,
        } => forward_to_sdk(target_groups, *stickiness_seconds),
        Action::Redirect(redirect) => sdk::Action::builder()
            .r#type(sdk::ActionTypeEnum::Redirect)
            .order(1)
            .redirect_config(
                sdk::RedirectActionConfig::builder()
                    .set_protocol(redirect.protocol.map(|p| p.as_str().to_string()))
                    .set_port(redirect.port.clone())
                    .set_host(redirect.host.clone())
                    .set_path(redirect.path.clone())
                    .set_query(redirect.query.clone())
                    .status_code(sdk::RedirectActionStatusCodeEnum::from(
                        redirect.status_code.as_str(),
                    ))
                    .build(),
            )
            .build(),
        Action::FixedResponse(fixed) => sdk::Action::builder()
            .r#type(sdk::ActionTypeEnum::FixedResponse)
            .order(1)
            .fixed_response_config(
                sdk::FixedResponseActionConfig::builder()
                    .status_code(fixed.status_code.to_string())
                    .set_content_type(fixed.content_type.clone())
                    .set_message_body(fixed.message_body.clone())
                    .build(),
            )
            .build(),
    }
}

/// A forward as upstream sends it: always a `ForwardConfig` (never the action's `TargetGroupArn`,
/// which upstream ignores when comparing, so it would rewrite the rule), weights only where the
/// stack says them, stickiness only when on.
fn forward_to_sdk(groups: &[WeightedTargetGroup], stickiness: Option<i32>) -> sdk::Action {
    let arn = |r: &TargetGroupRef| match r {
        TargetGroupRef::Arn(arn) | TargetGroupRef::Stack(arn) => arn.clone(),
    };
    let tuples = groups
        .iter()
        .map(|g| {
            sdk::TargetGroupTuple::builder()
                .target_group_arn(arn(&g.target_group))
                .set_weight(g.weight)
                .build()
        })
        .collect();
    let stickiness_config = stickiness.map(|seconds| {
        sdk::TargetGroupStickinessConfig::builder()
            .enabled(true)
            .duration_seconds(seconds)
            .build()
    });
    sdk::Action::builder()
        .r#type(sdk::ActionTypeEnum::Forward)
        .order(1)
        .forward_config(
            sdk::ForwardActionConfig::builder()
                .set_target_groups(Some(tuples))
                .set_target_group_stickiness_config(stickiness_config)
                .build(),
        )
        .build()
}

/// The stack's action for what ELB describes (target groups by ARN). Actions the model does not
/// build (authentication) come back as a 500 fixed response, which never equals a desired action:
/// a rule holding one is rewritten.
pub fn action_from_sdk(described: &[sdk::Action]) -> Action {
    // ELB orders an authenticate action before the forward; the model has one action per rule.
    let Some(action) = described.iter().max_by_key(|a| a.order().unwrap_or(0)) else {
        return unknown();
    };
    match action.r#type() {
        Some(sdk::ActionTypeEnum::Forward) => forward_from_sdk(action),
        Some(sdk::ActionTypeEnum::Redirect) => {
            let Some(config) = action.redirect_config() else {
                return unknown();
            };
            let part = |value: Option<&str>, placeholder: &str| {
                value.filter(|v| *v != placeholder).map(str::to_string)
            };
            Action::Redirect(Redirect {
                // A protocol other than HTTP(S) reads as none: the diff restates ours.
                protocol: part(config.protocol(), "#{protocol}").and_then(|p| Protocol::parse(&p)),
                port: part(config.port(), "#{port}"),
                host: part(config.host(), "#{host}"),
                path: part(config.path(), "/#{path}"),
                query: part(config.query(), "#{query}"),
                status_code: config
                    .status_code()
                    .and_then(|c| RedirectCode::parse(c.as_str()))
                    .unwrap_or(RedirectCode::Http301),
            })
        }
        Some(sdk::ActionTypeEnum::FixedResponse) => {
            let Some(config) = action.fixed_response_config() else {
                return unknown();
            };
            Action::FixedResponse(FixedResponse {
                status_code: config
                    .status_code()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(500),
                content_type: config.content_type().map(str::to_string),
                message_body: config.message_body().map(str::to_string),
            })
        }
        _ => unknown(),
    }
}

fn forward_from_sdk(action: &sdk::Action) -> Action {
    let config = action.forward_config();
    let mut target_groups: Vec<WeightedTargetGroup> = config
        .map(|c| c.target_groups())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| {
            Some(WeightedTargetGroup {
                target_group: TargetGroupRef::Arn(t.target_group_arn()?.to_string()),
                weight: t.weight(),
            })
        })
        .collect();
    if target_groups.is_empty()
        && let Some(arn) = action.target_group_arn()
    {
        target_groups.push(WeightedTargetGroup {
            target_group: TargetGroupRef::Arn(arn.to_string()),
            weight: None,
        });
    }
    if let [single] = target_groups.as_mut_slice() {
        single.weight = None;
    }
    let stickiness_seconds = config
        .and_then(|c| c.target_group_stickiness_config())
        .filter(|s| s.enabled() == Some(true))
        .map(|s| s.duration_seconds().unwrap_or(0));
    Action::Forward {
        target_groups,
        stickiness_seconds,
    }
}

fn unknown() -> Action {
    Action::FixedResponse(FixedResponse {
        status_code: 500,
        content_type: None,
        message_body: Some("an action this controller does not build".into()),
    })
}

pub fn condition_to_sdk(condition: &Condition) -> sdk::RuleCondition {
    let builder = sdk::RuleCondition::builder();
    match condition {
        Condition::HostHeader(values) => builder.field("host-header").host_header_config(
            sdk::HostHeaderConditionConfig::builder()
                .set_values(Some(values.clone()))
                .build(),
        ),
        Condition::PathPattern { values, regex } => {
            let config = sdk::PathPatternConditionConfig::builder();
            let config = if *regex {
                config.set_regex_values(Some(values.clone()))
            } else {
                config.set_values(Some(values.clone()))
            };
            builder
                .field("path-pattern")
                .path_pattern_config(config.build())
        }
        Condition::HttpHeader { name, values } => builder.field("http-header").http_header_config(
            sdk::HttpHeaderConditionConfig::builder()
                .http_header_name(name)
                .set_values(Some(values.clone()))
                .build(),
        ),
        Condition::HttpRequestMethod(values) => builder
            .field("http-request-method")
            .http_request_method_config(
                sdk::HttpRequestMethodConditionConfig::builder()
                    .set_values(Some(values.clone()))
                    .build(),
            ),
        Condition::QueryString(pairs) => builder.field("query-string").query_string_config(
            sdk::QueryStringConditionConfig::builder()
                .set_values(Some(
                    pairs
                        .iter()
                        .map(|p| {
                            sdk::QueryStringKeyValuePair::builder()
                                .set_key(p.key.clone())
                                .value(&p.value)
                                .build()
                        })
                        .collect(),
                ))
                .build(),
        ),
        Condition::SourceIp(values) => builder.field("source-ip").source_ip_config(
            sdk::SourceIpConditionConfig::builder()
                .set_values(Some(values.clone()))
                .build(),
        ),
    }
    .build()
}

/// The stack's condition for what ELB describes; None for a field the model does not know
/// (the rule then never equals a desired one and is rewritten).
pub fn condition_from_sdk(described: &sdk::RuleCondition) -> Option<Condition> {
    // ELB may answer with the legacy `Values` list instead of the typed config.
    let legacy = || described.values().to_vec();
    let or_legacy = |values: Option<&[String]>| match values {
        Some(v) if !v.is_empty() => v.to_vec(),
        _ => legacy(),
    };
    Some(match described.field()? {
        "host-header" => Condition::HostHeader(or_legacy(
            described.host_header_config().map(|c| c.values()),
        )),
        "path-pattern" => {
            let config = described.path_pattern_config();
            let regex = config.map(|c| c.regex_values()).unwrap_or_default();
            if regex.is_empty() {
                Condition::PathPattern {
                    values: or_legacy(config.map(|c| c.values())),
                    regex: false,
                }
            } else {
                Condition::PathPattern {
                    values: regex.to_vec(),
                    regex: true,
                }
            }
        }
        "http-header" => {
            let config = described.http_header_config()?;
            Condition::HttpHeader {
                name: config.http_header_name()?.to_string(),
                values: config.values().to_vec(),
            }
        }
        "http-request-method" => Condition::HttpRequestMethod(
            described
                .http_request_method_config()
                .map(|c| c.values().to_vec())
                .unwrap_or_default(),
        ),
        "query-string" => Condition::QueryString(
            described
                .query_string_config()
                .map(|c| c.values())
                .unwrap_or_default()
                .iter()
                .map(|p| QueryStringPair {
                    key: p.key().map(str::to_string),
                    value: p.value().unwrap_or_default().to_string(),
                })
                .collect(),
        ),
        "source-ip" => Condition::SourceIp(
            described
                .source_ip_config()
                .map(|c| c.values().to_vec())
                .unwrap_or_default(),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arn(a: &str) -> TargetGroupRef {
        TargetGroupRef::Arn(a.into())
    }

    #[test]
    fn every_action_comes_back_as_it_went() {
        let actions = [
            Action::Forward {
                target_groups: vec![WeightedTargetGroup {
                    target_group: arn("arn:a"),
                    weight: None,
                }],
                stickiness_seconds: None,
            },
            Action::Forward {
                target_groups: vec![
                    WeightedTargetGroup {
                        target_group: arn("arn:a"),
                        weight: Some(90),
                    },
                    WeightedTargetGroup {
                        target_group: arn("arn:b"),
                        weight: Some(10),
                    },
                ],
                stickiness_seconds: Some(200),
            },
            Action::Redirect(Redirect {
                protocol: Some(Protocol::Https),
                port: Some("443".into()),
                host: None,
                path: None,
                query: None,
                status_code: RedirectCode::Http301,
            }),
            Action::FixedResponse(FixedResponse {
                status_code: 404,
                content_type: Some("text/plain".into()),
                message_body: None,
            }),
        ];
        for action in actions {
            assert_eq!(action_from_sdk(&[action_to_sdk(&action)]), action);
        }
    }

    #[test]
    fn elb_placeholders_and_single_weights_normalise_away() {
        let described = sdk::Action::builder()
            .r#type(sdk::ActionTypeEnum::Redirect)
            .redirect_config(
                sdk::RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port("443")
                    .host("#{host}")
                    .path("/#{path}")
                    .query("#{query}")
                    .status_code(sdk::RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build();
        let Action::Redirect(redirect) = action_from_sdk(&[described]) else {
            panic!("a redirect");
        };
        assert_eq!(
            (redirect.host, redirect.path, redirect.query),
            (None, None, None)
        );
        let forward = sdk::Action::builder()
            .r#type(sdk::ActionTypeEnum::Forward)
            .target_group_arn("arn:a")
            .forward_config(
                sdk::ForwardActionConfig::builder()
                    .target_groups(
                        sdk::TargetGroupTuple::builder()
                            .target_group_arn("arn:a")
                            .weight(1)
                            .build(),
                    )
                    .target_group_stickiness_config(
                        sdk::TargetGroupStickinessConfig::builder()
                            .enabled(false)
                            .build(),
                    )
                    .build(),
            )
            .build();
        assert_eq!(
            action_from_sdk(&[forward]),
            Action::Forward {
                target_groups: vec![WeightedTargetGroup {
                    target_group: arn("arn:a"),
                    weight: None
                }],
                stickiness_seconds: None
            }
        );
    }

    #[test]
    fn every_condition_comes_back_as_it_went() {
        let conditions = [
            Condition::HostHeader(vec!["a.example.com".into()]),
            Condition::PathPattern {
                values: vec!["/api/*".into()],
                regex: false,
            },
            Condition::PathPattern {
                values: vec!["^/v[0-9]+/".into()],
                regex: true,
            },
            Condition::HttpHeader {
                name: "X-Canary".into(),
                values: vec!["yes".into()],
            },
            Condition::HttpRequestMethod(vec!["GET".into(), "HEAD".into()]),
            Condition::QueryString(vec![
                QueryStringPair {
                    key: Some("a".into()),
                    value: "1".into(),
                },
                QueryStringPair {
                    key: None,
                    value: "x".into(),
                },
            ]),
            Condition::SourceIp(vec!["10.0.0.0/8".into()]),
        ];
        for condition in conditions {
            assert_eq!(
                condition_from_sdk(&condition_to_sdk(&condition)),
                Some(condition)
            );
        }
    }
}
