//! Random and adversarial annotation maps over the keys the model reads, through the parser the
//! reconciler and the Ingress webhook share: never a panic, every error names its key and value
//! (the rule of [`crate::adversarial`]), and a value that cannot be read is always refused.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::adversarial::{self, names, value};
use crate::annotations::parse_bool;

/// What a key takes, for the oracle of what must be refused.
#[derive(Clone, Copy, Debug)]
enum Takes {
    Int(i64, i64),
    Bool,
    OneOf(&'static [&'static str]),
    /// Anything the tests do not judge alone (lists, maps, JSON, names).
    Other,
}

const PREFIX: &str = "alb.ingress.kubernetes.io/";

/// Every key `parse` reads (the families with a sound and an unsound suffix), and what it takes.
const KEYS: [(&str, Takes); 42] = [
    ("group.name", Takes::Other),
    ("group.order", Takes::Int(-1000, 1000)),
    ("load-balancer-name", Takes::Other),
    ("use-regex-path-match", Takes::Bool),
    ("scheme", Takes::OneOf(&["internal", "internet-facing"])),
    (
        "ip-address-type",
        Takes::OneOf(&["ipv4", "dualstack", "dualstack-without-public-ipv4"]),
    ),
    ("subnets", Takes::Other),
    ("security-groups", Takes::Other),
    ("manage-backend-security-group-rules", Takes::Bool),
    ("inbound-cidrs", Takes::Other),
    ("security-group-prefix-lists", Takes::Other),
    ("load-balancer-attributes", Takes::Other),
    ("tags", Takes::Other),
    ("listen-ports", Takes::Other),
    ("certificate-arn", Takes::Other),
    ("ssl-policy", Takes::Other),
    ("ssl-redirect", Takes::Int(1, 65535)),
    ("listener-attributes.HTTP-80", Takes::Other),
    ("listener-attributes.TCP-80", Takes::Other),
    ("listener-attributes.HTTPS-99999", Takes::Other),
    ("actions.web", Takes::Other),
    ("actions.redirect", Takes::Other),
    ("conditions.web", Takes::Other),
    ("conditions.🦀", Takes::Other),
    ("target-type", Takes::OneOf(&["ip", "instance"])),
    ("backend-protocol", Takes::OneOf(&["HTTP", "HTTPS"])),
    (
        "backend-protocol-version",
        Takes::OneOf(&["HTTP1", "HTTP2", "GRPC"]),
    ),
    ("target-group-attributes", Takes::Other),
    ("healthcheck-port", Takes::Other),
    ("healthcheck-protocol", Takes::OneOf(&["HTTP", "HTTPS"])),
    ("healthcheck-path", Takes::Other),
    ("healthcheck-interval-seconds", Takes::Int(1, 300)),
    ("healthcheck-timeout-seconds", Takes::Int(2, 120)),
    ("healthy-threshold-count", Takes::Int(2, 10)),
    ("unhealthy-threshold-count", Takes::Int(2, 10)),
    ("success-codes", Takes::Other),
    ("target-node-labels", Takes::Other),
    ("multi-cluster-target-group", Takes::Bool),
    ("auth-type", Takes::Other),
    ("wafv2-acl-arn", Takes::Other),
    ("transforms.web", Takes::Other),
    ("frontend-nlb-scheme", Takes::Other),
];

fn takes(key: &str) -> Takes {
    KEYS.iter()
        .find(|(k, _)| format!("{PREFIX}{k}") == key)
        .map_or(Takes::Other, |(_, t)| *t)
}

/// Whether `raw` is a value `takes` cannot read: such an annotation must be refused by name.
fn unreadable(takes: Takes, raw: &str) -> bool {
    let raw = raw.trim();
    match takes {
        Takes::Int(min, max) => raw.parse::<i64>().map_or(true, |n| n < min || n > max),
        Takes::Bool => parse_bool(raw).is_none(),
        Takes::OneOf(allowed) => !allowed.contains(&raw),
        Takes::Other => false,
    }
}

/// A map of 0 to 12 of the keys the model reads, each with a sound or an ugly value.
pub(crate) fn annotation_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop::sample::select(KEYS.map(|(k, _)| format!("{PREFIX}{k}")).to_vec());
    prop::collection::btree_map(key, value(), 0..12)
}

/// The errors of one map, each held to the rule; and every unreadable value among them.
fn check_refusals(
    map: &BTreeMap<String, String>,
    errors: &crate::annotations::AnnotationErrors,
) -> Result<(), TestCaseError> {
    prop_assert!(!errors.0.is_empty(), "refused without a reason");
    for error in &errors.0 {
        let raw = map.get(&error.key);
        prop_assert!(
            raw.is_some(),
            "{} is not an annotation of the map",
            error.key
        );
        prop_assert!(
            raw.is_some_and(|raw| raw.contains(error.value.as_str())),
            "the value of the error of {} is not the annotation's",
            error.key
        );
        names(&error.to_string(), &error.key, &error.value)?;
    }
    let message = errors.to_string();
    for error in &errors.0 {
        prop_assert!(message.contains(&error.key));
    }
    Ok(())
}

proptest! {
    #![proptest_config(adversarial::config(512))]

    /// The webhook refuses what the reconciler cannot read, naming every key and value, and
    /// admits nothing it would then leave out for its annotations.
    #[test]
    fn any_annotations_parse_or_are_refused_by_key_and_value(map in annotation_map()) {
        let must_refuse: Vec<&String> = map
            .iter()
            .filter(|(key, raw)| unreadable(takes(key), raw))
            .map(|(key, _)| key)
            .collect();
        match parse(&map) {
            Ok(parsed) => {
                prop_assert!(must_refuse.is_empty(), "admitted {must_refuse:?}");
                for warning in &parsed.warnings {
                    prop_assert!(warning.contains(PREFIX), "{}", adversarial::clip(warning));
                }
            }
            Err(errors) => {
                check_refusals(&map, &errors)?;
                for key in must_refuse {
                    prop_assert!(errors.0.iter().any(|e| &e.key == key), "{key} not refused");
                }
            }
        }
    }

    /// A Service carries the same target group annotations: the same rule holds there.
    #[test]
    fn a_services_alb_annotations_parse_or_are_refused_by_key_and_value(
        map in annotation_map(),
    ) {
        if let Err(errors) = parse_service(&map) {
            check_refusals(&map, &errors)?;
        }
    }
}

#[test]
fn the_oracle_knows_the_keys_it_judges() {
    // A typo in the table above would make the oracle judge nothing.
    assert!(unreadable(
        takes("alb.ingress.kubernetes.io/group.order"),
        "x"
    ));
    assert!(unreadable(
        takes("alb.ingress.kubernetes.io/scheme"),
        "public"
    ));
    assert!(!unreadable(
        takes("alb.ingress.kubernetes.io/scheme"),
        " internal "
    ));
    let refused = parse(&BTreeMap::from([(
        "alb.ingress.kubernetes.io/scheme".to_string(),
        "public".to_string(),
    )]));
    assert!(refused.is_err());
}
