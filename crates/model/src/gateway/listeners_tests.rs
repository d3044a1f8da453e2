use super::*;
use crate::gateway::listeners::check_gateway_listeners as check_listeners;
use lb_api::gateway::{
    AllowedRoutes, ListenerTls, ReferenceGrantFrom, ReferenceGrantSpec, ReferenceGrantTo,
    SecretObjectReference,
};

fn http(name: &str, port: i32, hostname: Option<&str>) -> Listener {
    Listener {
        name: name.into(),
        port,
        protocol: "HTTP".into(),
        hostname: hostname.map(str::to_string),
        ..Listener::default()
    }
}

fn https(name: &str, secret: SecretObjectReference) -> Listener {
    Listener {
        protocol: "HTTPS".into(),
        tls: Some(ListenerTls {
            certificate_refs: vec![secret],
            ..ListenerTls::default()
        }),
        ..http(name, 443, None)
    }
}

fn secret(namespace: Option<&str>, name: &str) -> SecretObjectReference {
    SecretObjectReference {
        name: name.into(),
        namespace: namespace.map(str::to_string),
        ..SecretObjectReference::default()
    }
}

fn reason(listener: &CheckedListener, type_: &str) -> (bool, &'static str) {
    let v = listener
        .verdicts
        .iter()
        .find(|v| v.type_ == type_)
        .expect("verdict");
    (v.status, v.reason)
}

fn snapshot() -> CertificateSnapshot {
    let mut snapshot = CertificateSnapshot::default();
    snapshot
        .secrets
        .insert(("infra".into(), "good".into()), SecretCertificate::Valid);
    snapshot.secrets.insert(
        ("infra".into(), "bad".into()),
        SecretCertificate::Malformed("tls.crt is not a PEM certificate".into()),
    );
    snapshot
        .secrets
        .insert(("web".into(), "cert".into()), SecretCertificate::Valid);
    snapshot
}

#[test]
fn an_unsupported_protocol_is_not_accepted_and_serves_no_kind() {
    let invalid = Listener {
        protocol: "INVALID".into(),
        ..http("invalid", 1111, None)
    };
    let checked = check_listeners("infra", &[http("http", 80, None), invalid], &snapshot());
    assert!(checked[0].usable());
    assert_eq!(
        reason(&checked[1], types::ACCEPTED),
        (false, "UnsupportedProtocol")
    );
    assert!(checked[1].supported_kinds.is_empty());
    assert!(!checked[1].accepted());
}

#[test]
fn route_kinds_the_listener_cannot_serve_leave_refs_unresolved_and_the_rest_supported() {
    let kinds = |names: &[&str]| AllowedRoutes {
        kinds: names
            .iter()
            .map(|k| RouteGroupKind {
                group: None,
                kind: (*k).into(),
            })
            .collect(),
        ..AllowedRoutes::default()
    };
    let only_invalid = Listener {
        allowed_routes: Some(kinds(&["InvalidRoute"])),
        ..http("a", 80, None)
    };
    let mixed = Listener {
        allowed_routes: Some(kinds(&["InvalidRoute", "HTTPRoute"])),
        ..http("b", 8080, None)
    };
    let checked = check_listeners("infra", &[only_invalid, mixed], &snapshot());
    for listener in &checked {
        assert_eq!(
            reason(listener, types::RESOLVED_REFS),
            (false, "InvalidRouteKinds")
        );
        assert!(listener.accepted() && !listener.usable());
    }
    assert!(checked[0].supported_kinds.is_empty());
    assert_eq!(checked[1].supported_kinds.len(), 1);
    let defaults = check_listeners("infra", &[http("c", 80, None)], &snapshot());
    let names: Vec<&str> = defaults[0]
        .supported_kinds
        .iter()
        .map(|k| k.kind.as_str())
        .collect();
    assert_eq!(names, ["HTTPRoute", "GRPCRoute"]);
}

#[test]
fn certificates_must_exist_be_secrets_be_granted_and_hold_a_key_pair() {
    let wrong_group = SecretObjectReference {
        group: Some("wrong.group.company.io".into()),
        ..secret(None, "good")
    };
    let wrong_kind = SecretObjectReference {
        kind: Some("WrongKind".into()),
        ..secret(None, "good")
    };
    let cases = [
        (secret(None, "good"), (true, "ResolvedRefs")),
        (secret(None, "missing"), (false, "InvalidCertificateRef")),
        (secret(None, "bad"), (false, "InvalidCertificateRef")),
        (wrong_group, (false, "InvalidCertificateRef")),
        (wrong_kind, (false, "InvalidCertificateRef")),
        (secret(Some("web"), "cert"), (false, "RefNotPermitted")),
    ];
    for (reference, expected) in cases {
        let checked = check_listeners("infra", &[https("https", reference.clone())], &snapshot());
        assert_eq!(
            reason(&checked[0], types::RESOLVED_REFS),
            expected,
            "{reference:?}"
        );
    }
    // A grant from the Gateway's namespace makes the other namespace's Secret usable.
    let mut granted = snapshot();
    let mut grant = ReferenceGrant::new(
        "gateways",
        ReferenceGrantSpec {
            from: vec![ReferenceGrantFrom {
                group: GROUP.into(),
                kind: "Gateway".into(),
                namespace: "infra".into(),
            }],
            to: vec![ReferenceGrantTo {
                group: String::new(),
                kind: "Secret".into(),
                name: None,
            }],
        },
    );
    grant.metadata.namespace = Some("web".into());
    granted.grants.push(grant);
    let checked = check_listeners(
        "infra",
        &[https("https", secret(Some("web"), "cert"))],
        &granted,
    );
    assert!(checked[0].usable());
    assert_eq!(
        checked[0].certificates,
        [("web".to_string(), "cert".to_string())]
    );
}

#[test]
fn one_port_with_two_protocols_or_one_hostname_twice_conflicts() {
    let tls = |name: &str| Listener {
        port: 80,
        ..https(name, secret(None, "good"))
    };
    let checked = check_listeners("infra", &[http("a", 80, None), tls("b")], &snapshot());
    for listener in &checked {
        assert_eq!(
            reason(listener, types::CONFLICTED),
            (true, "ProtocolConflict")
        );
        assert!(!listener.usable());
    }
    let checked = check_listeners(
        "infra",
        &[
            http("a", 80, Some("foo.com")),
            http("b", 80, Some("foo.com")),
            http("c", 80, Some("bar.com")),
        ],
        &snapshot(),
    );
    let conflicted: Vec<bool> = checked
        .iter()
        .map(|l| reason(l, types::CONFLICTED).0)
        .collect();
    assert_eq!(conflicted, [false, true, false]);
}
