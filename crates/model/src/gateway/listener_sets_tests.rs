use super::*;
use crate::gateway::listeners::{CertificateSnapshot, check_all};
use serde_json::json;

fn gateway(allowed: Option<serde_json::Value>) -> Gateway {
    let mut spec = json!({
        "gatewayClassName": "alb",
        "listeners": [{"name": "gw-http", "port": 80, "protocol": "HTTP", "hostname": "gw.example"}],
    });
    if let Some(from) = allowed {
        spec["allowedListeners"] = json!({"namespaces": from});
    }
    serde_json::from_value(json!({
        "metadata": {"name": "gw", "namespace": "infra"},
        "spec": spec,
    }))
    .expect("gateway")
}

fn set(namespace: &str, name: &str, created: &str, listeners: serde_json::Value) -> ListenerSet {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created, "generation": 3},
        "spec": {
            "parentRef": {"name": "gw", "namespace": "infra", "kind": "Gateway", "group": GROUP},
            "listeners": listeners,
        },
    }))
    .expect("listener set")
}

fn http(name: &str, hostname: &str) -> serde_json::Value {
    json!({"name": name, "port": 80, "protocol": "HTTP", "hostname": hostname})
}

fn labels() -> BTreeMap<String, BTreeMap<String, String>> {
    BTreeMap::from([(
        "team".to_string(),
        BTreeMap::from([("allowed".to_string(), "ns".to_string())]),
    )])
}

fn admitted(gateway: &Gateway, sets: &[ListenerSet]) -> Vec<(String, bool)> {
    let (_, naming) = merge(gateway, sets, &labels());
    naming
        .into_iter()
        .map(|s| (format!("{}/{}", s.namespace, s.name), s.admitted))
        .collect()
}

#[test]
fn a_gateway_admits_no_listener_set_unless_its_allowed_listeners_say_so() {
    let sets = [
        set(
            "infra",
            "same",
            "2026-01-01T00:00:00Z",
            json!([http("a", "a.example")]),
        ),
        set(
            "team",
            "selected",
            "2026-01-01T00:00:00Z",
            json!([http("b", "b.example")]),
        ),
        set(
            "other",
            "elsewhere",
            "2026-01-01T00:00:00Z",
            json!([http("c", "c.example")]),
        ),
    ];
    let none = [
        ("infra/same".to_string(), false),
        ("other/elsewhere".to_string(), false),
        ("team/selected".to_string(), false),
    ];
    assert_eq!(admitted(&gateway(None), &sets), none);
    assert_eq!(
        admitted(&gateway(Some(json!({"from": "None"}))), &sets),
        none
    );
    let same = admitted(&gateway(Some(json!({"from": "Same"}))), &sets);
    assert_eq!(same[0], ("infra/same".to_string(), true));
    assert!(!same[1].1 && !same[2].1);
    let selector = json!({"from": "Selector", "selector": {"matchLabels": {"allowed": "ns"}}});
    let selected = admitted(&gateway(Some(selector)), &sets);
    assert_eq!(
        selected,
        [
            ("infra/same".to_string(), false),
            ("other/elsewhere".to_string(), false),
            ("team/selected".to_string(), true),
        ]
    );
    let all = admitted(&gateway(Some(json!({"from": "All"}))), &sets);
    assert!(all.iter().all(|(_, admitted)| *admitted));
}

#[test]
fn only_sets_naming_the_gateway_are_merged_oldest_first_after_its_own_listeners() {
    let mut elsewhere = set(
        "infra",
        "for-another",
        "2026-01-01T00:00:00Z",
        json!([http("x", "x.example")]),
    );
    elsewhere.spec.parent_ref.name = "another".into();
    let sets = [
        set(
            "infra",
            "b-newer",
            "2026-01-02T00:00:00Z",
            json!([http("b", "b.example")]),
        ),
        set(
            "infra",
            "z-older",
            "2026-01-01T00:00:00Z",
            json!([http("z", "z.example")]),
        ),
        set(
            "infra",
            "a-older",
            "2026-01-01T00:00:00Z",
            json!([http("a", "a.example")]),
        ),
        elsewhere,
    ];
    let (merged, naming) = merge(&gateway(Some(json!({"from": "All"}))), &sets, &labels());
    let names: Vec<&str> = merged.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["gw-http", "a", "z", "b"]);
    assert_eq!(merged.origins[0], Origin::gateway("infra", "gw"));
    assert_eq!(merged.origins[1], Origin::listener_set("infra", "a-older"));
    assert_eq!(naming.len(), 3);
    assert_eq!(naming[0].generation, Some(3));
}

#[test]
fn a_later_listener_conflicting_with_an_earlier_one_is_refused_and_the_earlier_keeps_its_place() {
    let sets = [
        set(
            "infra",
            "first",
            "2026-01-01T00:00:00Z",
            json!([
                http("own", "first.example"),
                http("taken-by-gateway", "gw.example"),
                http("shared", "shared.example"),
                {"name": "tcp", "port": 80, "protocol": "TCP"},
            ]),
        ),
        set(
            "infra",
            "second",
            "2026-01-01T00:00:01Z",
            json!([http("shared", "shared.example")]),
        ),
    ];
    let gateway = gateway(Some(json!({"from": "Same"})));
    let (merged, naming) = merge(&gateway, &sets, &labels());
    let checked = check_all(
        &merged.listeners,
        &merged.origins,
        &CertificateSnapshot::default(),
        &[],
    );
    let reason = |i: usize, type_: &str| {
        let v = checked[i]
            .verdicts
            .iter()
            .find(|v| v.type_ == type_)
            .expect(type_);
        (v.status, v.reason)
    };
    assert!(checked[0].usable() && checked[1].usable() && checked[3].usable());
    assert_eq!(reason(2, "Accepted"), (false, "HostnameConflict"));
    assert_eq!(reason(2, "Conflicted"), (true, "HostnameConflict"));
    // A protocol an ALB cannot serve is named by its conflict first.
    assert_eq!(reason(4, "Accepted"), (false, "ProtocolConflict"));
    assert_eq!(reason(5, "Conflicted"), (true, "HostnameConflict"));
    let first = set_accepted(&naming[0], true, &checked);
    assert_eq!((first.status, first.reason), (true, "Accepted"));
    let second = set_accepted(&naming[1], true, &checked);
    assert_eq!((second.status, second.reason), (false, "ListenersNotValid"));
    let orphan = set_accepted(&naming[0], false, &checked);
    assert_eq!(orphan.reason, "ParentNotAccepted");
}

#[test]
fn a_set_the_gateway_does_not_admit_is_not_allowed_and_lends_it_no_listener() {
    let sets = [set(
        "infra",
        "first",
        "2026-01-01T00:00:00Z",
        json!([http("own", "first.example")]),
    )];
    let (merged, naming) = merge(&gateway(None), &sets, &labels());
    assert_eq!(merged.listeners.len(), 1);
    let accepted = set_accepted(&naming[0], true, &[]);
    assert_eq!((accepted.status, accepted.reason), (false, "NotAllowed"));
}

#[test]
fn a_route_names_a_listener_set_only_with_its_kind() {
    let reference = |kind: Option<&str>, namespace: Option<&str>| ParentReference {
        kind: kind.map(str::to_string),
        namespace: namespace.map(str::to_string),
        name: "first".into(),
        ..ParentReference::default()
    };
    assert!(names_listener_set(
        &reference(Some("ListenerSet"), None),
        "infra",
        "infra",
        "first"
    ));
    assert!(names_listener_set(
        &reference(Some("ListenerSet"), Some("infra")),
        "web",
        "infra",
        "first"
    ));
    assert!(!names_listener_set(
        &reference(None, None),
        "infra",
        "infra",
        "first"
    ));
    assert!(!names_listener_set(
        &reference(Some("ListenerSet"), None),
        "web",
        "infra",
        "first"
    ));
}
