//! Random groups of Ingresses through [`build_group`]: members that agree and members that
//! conflict (the same `group.order`, another scheme, SSL policy or protocol on a port, the same
//! path to another backend, a second default backend), with ugly annotations and up to more rules
//! than a listener takes. Properties: never a panic; a refused member changes nothing (the stack
//! is the one its group builds without it); the order the caller lists members in changes
//! nothing; a conflict names the annotation, both values and the member it conflicts with; no
//! stack breaks an ALB quota.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::adversarial::{self, names};
use crate::annotations::shown;
use crate::ingress::member::Services;

const GROUP: &str = "shop";

/// The group-wide settings members fight over, each with two values that conflict.
const CONTESTED: [(&str, [&str; 2]); 6] = [
    ("scheme", ["internal", "internet-facing"]),
    (
        "ssl-policy",
        [
            "ELBSecurityPolicy-2016-08",
            "ELBSecurityPolicy-TLS13-1-2-2021-06",
        ],
    ),
    ("ip-address-type", ["ipv4", "dualstack"]),
    ("load-balancer-name", ["shop", "shop-2"]),
    ("inbound-cidrs", ["10.0.0.0/8", "192.168.0.0/16"]),
    ("security-groups", ["sg-1", "sg-2"]),
];

/// One path: host, path, path type and backend, each sound or not.
fn path() -> impl Strategy<Value = Value> {
    let host = prop::sample::select(vec![None, Some("a.example.com"), Some("b.example.com")]);
    let path = prop::sample::select(vec!["/", "/api", "/api/", "/", "/api", "/x*", ""]);
    let kind = prop_oneof![
        8 => prop::sample::select(vec!["Prefix", "Exact", "ImplementationSpecific"]),
        1 => Just("Regex"),
    ];
    let backend = prop_oneof![
        8 => prop::sample::select(vec![
            json!({"name": "web", "port": {"number": 80}}),
            json!({"name": "api", "port": {"number": 80}}),
            json!({"name": "web", "port": {"name": "http"}}),
            json!({"name": "canary", "port": {"name": "use-annotation"}}),
        ]),
        1 => prop::sample::select(vec![
            json!({"name": "missing", "port": {"number": 80}}),
            json!({"name": "web", "port": {"number": 0}}),
        ]),
    ];
    (host, path, kind, backend).prop_map(|(host, path, kind, backend)| {
        let mut rule = json!({"http": {"paths": [
            {"path": path, "pathType": kind, "backend": {"service": backend}}]}});
        if let Some(host) = host {
            rule["host"] = json!(host);
        }
        rule
    })
}

/// Usually a few paths; sometimes exactly a listener's quota, or one more.
fn paths() -> impl Strategy<Value = Vec<Value>> {
    let one = json!({"http": {"paths": [{"path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}});
    prop_oneof![
        8 => prop::collection::vec(path(), 0..5),
        1 => (40usize..=60).prop_map(move |n| vec![one.clone(); n]),
        1 => prop::sample::select(vec![100usize, 101]).prop_map({
            let one = json!({"http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}});
            move |n| vec![one.clone(); n]
        }),
    ]
}

/// A member's own annotations: its order, some contested settings, its listeners, an action,
/// and now and then an ugly annotation.
fn member_annotations() -> impl Strategy<Value = BTreeMap<String, String>> {
    let order = prop::option::of(prop_oneof![
        8 => prop::sample::select(vec!["-1", "0", "5"]),
        1 => prop::sample::select(vec!["x", "1001"]),
    ]);
    let contested = prop::collection::vec((0..CONTESTED.len(), 0..2usize), 0..4);
    let ports = prop::option::of(prop::sample::select(vec![
        "[{\"HTTP\": 80}]",
        "[{\"HTTPS\": 443}]",
        "[{\"HTTP\": 80}, {\"HTTPS\": 443}]",
        "[{\"HTTPS\": 80}]",
    ]));
    let redirect = prop::option::weighted(0.2, Just("443"));
    let ugly = prop::option::weighted(
        0.2,
        crate::ingress::annotations::property_tests::annotation_map(),
    );
    (order, contested, ports, redirect, ugly).prop_map(
        |(order, contested, ports, redirect, ugly)| {
            let key = |name: &str| format!("alb.ingress.kubernetes.io/{name}");
            let mut map = BTreeMap::from([
                (key("group.name"), GROUP.to_string()),
                (key("target-type"), "ip".to_string()),
                (
                    key("certificate-arn"),
                    "arn:aws:acm:us-west-2:1:certificate/x".to_string(),
                ),
                (
                    key("actions.canary"),
                    r#"{"type": "fixed-response", "fixedResponseConfig": {"statusCode": "503"}}"#
                        .to_string(),
                ),
            ]);
            let mut put = |name: &str, value: &str| map.insert(key(name), value.to_string());
            if let Some(order) = order {
                put("group.order", order);
            }
            for (setting, choice) in contested {
                let (name, values) = CONTESTED[setting];
                put(name, values[choice]);
            }
            if let Some(ports) = ports {
                put("listen-ports", ports);
            }
            if let Some(redirect) = redirect {
                put("ssl-redirect", redirect);
            }
            // The group stays this one: the ugly map may not move the member elsewhere.
            for (k, v) in ugly
                .into_iter()
                .flatten()
                .filter(|(k, _)| !k.ends_with("group.name"))
            {
                map.insert(k, v);
            }
            map
        },
    )
}

fn member() -> impl Strategy<Value = (BTreeMap<String, String>, Vec<Value>, bool)> {
    (member_annotations(), paths(), prop::bool::weighted(0.2))
}

/// Two to four members of group `shop`, named apart.
fn members() -> impl Strategy<Value = Vec<Ingress>> {
    prop::collection::vec(member(), 1..5).prop_map(|members| {
        members
            .into_iter()
            .enumerate()
            .map(|(i, (annotations, rules, default))| {
                let mut spec = json!({"rules": rules});
                if default {
                    spec["defaultBackend"] =
                        json!({"service": {"name": "web", "port": {"number": 80}}});
                }
                let namespace = if i % 2 == 0 { "shop" } else { "team" };
                crate::fixtures::ingress(namespace, &format!("m{i}"), json!(annotations), spec)
            })
            .collect()
    })
}

/// Services `web` and `api` (port 80, named `http`) in both namespaces.
fn backend_services() -> Services {
    let service = |namespace: &str, name: &str| {
        let mut service = crate::fixtures::backend_service(namespace, name);
        let ports = service.spec.as_mut().and_then(|s| s.ports.as_mut());
        if let Some(port) = ports.and_then(|p| p.first_mut()) {
            port.name = Some("http".into());
        }
        Arc::new(service)
    };
    Services::new(
        ["shop", "team"]
            .into_iter()
            .flat_map(|ns| [service(ns, "web"), service(ns, "api")]),
    )
}

/// The group built from `ingresses` as the reconciler builds it.
fn build(ingresses: &[&Ingress]) -> BuiltGroup {
    let settings = crate::fixtures::ingress_settings();
    let services = backend_services();
    let cluster = Cluster {
        settings: &settings,
        services: &services,
        certificates: &[],
    };
    let members: Vec<GroupMember> = ingresses
        .iter()
        .map(|i| GroupMember::new(i, None))
        .collect();
    build_group(
        &GroupId::Explicit(GROUP.into()),
        &members,
        &cluster,
        &crate::fixtures::vpc(),
    )
}

fn check_conflict(error: &MemberError, accepted: &[&str]) -> Result<(), TestCaseError> {
    if let MemberError::Conflict {
        annotation,
        value,
        have,
        member,
    } = error
    {
        let message = error.to_string();
        names(&message, annotation, value)?;
        prop_assert!(message.contains(&shown(have)), "{message}");
        prop_assert!(message.contains(member.as_str()), "{message}");
        prop_assert!(
            accepted.contains(&member.as_str()),
            "{member} conflicts but is not in"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(adversarial::config(256))]

    #[test]
    fn a_refused_member_changes_nothing_and_the_listing_order_nothing_either(
        ingresses in members(),
        rotate in 0usize..4,
    ) {
        let all: Vec<&Ingress> = ingresses.iter().collect();
        let built = build(&all);
        prop_assert_eq!(built.outcomes.len(), ingresses.len());
        let accepted: Vec<&str> = built
            .outcomes
            .iter()
            .filter(|o| o.error.is_none())
            .map(|o| o.key.as_str())
            .collect();
        for error in built.outcomes.iter().filter_map(|o| o.error.as_ref()) {
            check_conflict(error, &accepted)?;
            // Annotation errors are held to the rule one by one (annotations_property_tests).
            if !matches!(error, MemberError::Annotations(_)) {
                let message = error.to_string();
                prop_assert!(message.chars().count() <= 1000, "{}", adversarial::clip(&message));
            }
        }
        let kept: Vec<&Ingress> = all
            .iter()
            .copied()
            .filter(|i| accepted.contains(&crate::ingress::group::member_key(i).as_str()))
            .collect();
        prop_assert_eq!(&build(&kept).stack, &built.stack, "without the refused members");
        let mut rotated = all.clone();
        rotated.rotate_left(rotate % all.len());
        prop_assert_eq!(build(&rotated), built.clone(), "listed in another order");
        if let Some(stack) = &built.stack {
            prop_assert!(stack.target_groups.len() <= MAX_TARGET_GROUPS);
            for listener in &stack.listeners {
                prop_assert!(listener.rules.len() <= MAX_RULES_PER_LISTENER, "{} rules", listener.rules.len());
                prop_assert!(listener.certificates.len() <= MAX_CERTIFICATES_PER_LISTENER);
            }
        }
    }
}

proptest! {
    #![proptest_config(adversarial::config(512))]

    /// One Ingress whose annotations parse but say something the build cannot use (subnets not
    /// in the VPC, a Service an action names that does not exist, a health check port no port
    /// has): the message stays short and names what to fix.
    #[test]
    fn a_member_the_build_refuses_is_told_in_a_short_message(
        map in prop_oneof![
            crate::ingress::annotations::property_tests::annotation_map(),
            read_but_not_built(),
        ],
        path in path(),
    ) {
        let mut map = map;
        map.insert("alb.ingress.kubernetes.io/group.name".into(), GROUP.into());
        let ingress = crate::fixtures::ingress("shop", "web", json!(map), json!({"rules": [path]}));
        let built = build(&[&ingress]);
        prop_assert_eq!(built.outcomes.len(), 1);
        prop_assert_eq!(built.stack.is_some(), built.outcomes[0].error.is_none());
        match &built.outcomes[0].error {
            Some(MemberError::Annotations(_)) | None => {}
            Some(error) => {
                let message = error.to_string();
                prop_assert!(message.chars().count() <= 1000, "{}", adversarial::clip(&message));
            }
        }
    }
}

proptest! {
    #![proptest_config(adversarial::config(256))]

    /// A list annotation with nothing in it (`""`, `" , "`) says nothing, as upstream reads it:
    /// it must not make an ALB without subnets, without security groups, or closed to everyone.
    #[test]
    fn a_blank_list_annotation_is_its_absence(
        ingresses in members(),
        key in prop::sample::select(vec![
            "subnets",
            "security-groups",
            "inbound-cidrs",
            "security-group-prefix-lists",
            "certificate-arn",
        ]),
        blank in prop::sample::select(vec!["", " ", ",", " , ,"]),
    ) {
        let key = format!("alb.ingress.kubernetes.io/{key}");
        let mut blanked = ingresses.clone();
        for ingress in &mut blanked {
            let annotations = ingress.metadata.annotations.get_or_insert_default();
            if !annotations.contains_key(&key) {
                annotations.insert(key.clone(), blank.to_string());
            }
        }
        let without: Vec<&Ingress> = ingresses.iter().collect();
        let with: Vec<&Ingress> = blanked.iter().collect();
        prop_assert_eq!(build(&with), build(&without));
    }
}

proptest! {
    #![proptest_config(adversarial::config(256))]

    /// The pod webhook gates pods on the bindings an Ingress alone will get: exactly those its
    /// group (of it alone) makes, none when it is refused.
    #[test]
    fn the_webhook_predicts_exactly_the_bindings_of_an_ingress_alone(
        ingresses in members(),
    ) {
        let ingress = &ingresses[0];
        let settings = crate::fixtures::ingress_settings();
        let services = backend_services();
        let cluster = Cluster { settings: &settings, services: &services, certificates: &[] };
        let predicted: Vec<String> = crate::ingress::member::member_bindings(ingress, None, &cluster)
            .into_iter()
            .map(|b| b.name)
            .collect();
        let built = build(&[ingress]);
        // The webhook knows neither the VPC's subnets nor the account's certificates: a member
        // refused for those is predicted as if they were there.
        if let Some(
            MemberError::Subnets(_)
            | MemberError::NoCertificate { .. }
            | MemberError::NoCertificateForHost { .. },
        ) = &built.outcomes[0].error
        {
            return Ok(());
        }
        let made: Vec<String> = built
            .stack
            .iter()
            .flat_map(|s| &s.bindings)
            .map(|b| b.name.clone())
            .collect();
        prop_assert_eq!(predicted, made, "{:?}", built.outcomes[0].error);
    }
}

/// Annotations any value parses for, which only the build judges: subnets and security groups
/// by name, certificates, the SSL policy, the health check's port and path, and the Service and
/// port a forward action names.
fn read_but_not_built() -> impl Strategy<Value = BTreeMap<String, String>> {
    let free = prop::sample::select(vec![
        "subnets",
        "security-groups",
        "certificate-arn",
        "ssl-policy",
        "healthcheck-path",
        "healthcheck-port",
    ]);
    let settings = prop::collection::btree_map(free, adversarial::value(), 0..4);
    let action = (adversarial::value(), adversarial::value()).prop_map(|(service, port)| {
        json!({"type": "forward", "forwardConfig": {"targetGroups": [
            {"serviceName": service, "servicePort": port}]}})
        .to_string()
    });
    (settings, action).prop_map(|(settings, action)| {
        let mut map: BTreeMap<String, String> = settings
            .into_iter()
            .map(|(k, v)| (format!("alb.ingress.kubernetes.io/{k}"), v))
            .collect();
        map.insert("alb.ingress.kubernetes.io/actions.canary".into(), action);
        map
    })
}

/// Member `name` of group `shop` with `annotations` (short keys) and `count` paths to `service`.
fn simple(name: &str, annotations: &[(&str, &str)], count: usize, service: &str) -> Ingress {
    let mut map: BTreeMap<String, String> = annotations
        .iter()
        .map(|(k, v)| (format!("alb.ingress.kubernetes.io/{k}"), v.to_string()))
        .collect();
    map.insert("alb.ingress.kubernetes.io/group.name".into(), GROUP.into());
    map.insert("alb.ingress.kubernetes.io/target-type".into(), "ip".into());
    let paths: Vec<Value> = (0..count)
        .map(|i| {
            json!({"path": format!("/p{i}"), "pathType": "Exact",
            "backend": {"service": {"name": service, "port": {"number": 80}}}})
        })
        .collect();
    crate::fixtures::ingress(
        "shop",
        name,
        json!(map),
        json!({"rules": [{"http": {"paths": paths}}]}),
    )
}

#[test]
fn a_listener_takes_100_rules_and_the_member_bringing_the_101st_is_refused() {
    let full = simple("full", &[], 100, "web");
    assert_eq!(build(&[&full]).outcomes[0].error, None);
    let over = simple("over", &[], 101, "web");
    assert_eq!(
        build(&[&over]).outcomes[0]
            .error
            .as_ref()
            .map(ToString::to_string),
        Some("would bring listener 80 to 101 rules; a listener has at most 100".into())
    );
    // The pod webhook gates no pod on a binding of the refused member (before: it did, and the
    // pods stayed unready for good).
    let settings = crate::fixtures::ingress_settings();
    let services = backend_services();
    let cluster = Cluster {
        settings: &settings,
        services: &services,
        certificates: &[],
    };
    assert_eq!(
        crate::ingress::member::member_bindings(&full, None, &cluster).len(),
        1
    );
    assert_eq!(
        crate::ingress::member::member_bindings(&over, None, &cluster),
        []
    );
    let first = simple("a", &[("group.order", "1")], 60, "web");
    let second = simple("b", &[("group.order", "2")], 41, "api");
    let built = build(&[&second, &first]);
    let errors: Vec<Option<String>> = built
        .outcomes
        .iter()
        .map(|o| o.error.as_ref().map(ToString::to_string))
        .collect();
    assert_eq!(
        errors,
        [
            None,
            Some("would bring listener 80 to 101 rules; a listener has at most 100".into())
        ]
    );
    assert_eq!(
        built.stack.expect("the first member's").listeners[0]
            .rules
            .len(),
        60
    );
}

#[test]
fn the_same_path_to_two_backends_goes_to_the_member_first_in_group_order() {
    // Both are admitted (upstream's behaviour); the ALB takes the first match, so the order
    // decides, and the same order breaks its tie by namespace and name.
    let web = simple("web", &[("group.order", "5")], 1, "web");
    let api = simple("api", &[("group.order", "5")], 1, "api");
    let built = build(&[&web, &api]);
    assert!(
        built.outcomes.iter().all(|o| o.error.is_none()),
        "{:?}",
        built.outcomes
    );
    let rules = &built.stack.expect("both").listeners[0].rules;
    let forwards: Vec<String> = rules.iter().map(|r| format!("{:?}", r.action)).collect();
    assert_eq!(rules.len(), 2);
    assert!(forwards[0].contains("api-api:80"), "{forwards:?}");
    assert!(forwards[1].contains("web-web:80"), "{forwards:?}");
}
