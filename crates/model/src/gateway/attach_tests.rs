use super::*;
use crate::gateway::listeners::check_gateway_listeners as check_listeners;
use crate::gateway::listeners::{CertificateSnapshot, Origin};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use lb_api::gateway::{AllowedRoutes, RouteNamespaces};

fn listener(name: &str, port: i32, hostname: Option<&str>, from: &str) -> Listener {
    let selector = (from == "Selector").then(|| LabelSelector {
        match_labels: Some(BTreeMap::from([(
            "gateway-conformance".into(),
            "backend".into(),
        )])),
        ..LabelSelector::default()
    });
    Listener {
        name: name.into(),
        port,
        protocol: "HTTP".into(),
        hostname: hostname.map(str::to_string),
        allowed_routes: Some(AllowedRoutes {
            namespaces: Some(RouteNamespaces {
                from: Some(from.into()),
                selector,
            }),
            kinds: Vec::new(),
        }),
        ..Listener::default()
    }
}

fn reference(section: Option<&str>, port: Option<i32>) -> ParentReference {
    ParentReference {
        name: "gw".into(),
        section_name: section.map(str::to_string),
        port,
        ..ParentReference::default()
    }
}

fn run(listeners: &[Listener], route: Route<'_>, reference: &ParentReference) -> Attachment {
    let checked = check_listeners("infra", listeners, &CertificateSnapshot::default());
    let parent = Parent {
        namespace: "infra",
        name: "gw",
        listeners,
        checked: &checked,
    };
    let labels = BTreeMap::from([(
        "web".to_string(),
        BTreeMap::from([("gateway-conformance".to_string(), "backend".to_string())]),
    )]);
    attach(
        route,
        reference,
        parent,
        &Origin::gateway("infra", "gw"),
        &labels,
    )
}

fn route<'a>(namespace: &'a str, hostnames: &'a [String]) -> Route<'a> {
    Route {
        kind: "HTTPRoute",
        namespace,
        hostnames,
    }
}

#[test]
fn a_parent_ref_names_the_gateway_by_defaults() {
    let mut r = reference(None, None);
    assert!(names_gateway(&r, "infra", "infra", "gw"));
    assert!(!names_gateway(&r, "web", "infra", "gw"));
    r.namespace = Some("infra".into());
    assert!(names_gateway(&r, "web", "infra", "gw"));
    r.kind = Some("ListenerSet".into());
    assert!(!names_gateway(&r, "web", "infra", "gw"));
}

#[test]
fn section_name_and_port_must_name_a_listener() {
    let listeners = [listener("http", 80, None, "Same")];
    let none = [];
    assert!(
        run(
            &listeners,
            route("infra", &none),
            &reference(Some("http"), Some(80))
        )
        .accepted
        .status
    );
    for wrong in [
        reference(Some("http1"), None),
        reference(None, Some(81)),
        reference(Some("http"), Some(81)),
    ] {
        let attachment = run(&listeners, route("infra", &none), &wrong);
        assert_eq!(attachment.accepted.reason, "NoMatchingParent", "{wrong:?}");
        assert!(attachment.listeners.is_empty());
    }
}

#[test]
fn listeners_admit_routes_by_namespace() {
    let none = [];
    let same = [listener("http", 80, None, "Same")];
    assert_eq!(
        run(&same, route("web", &none), &reference(None, None))
            .accepted
            .reason,
        "NotAllowedByListeners"
    );
    let all = [listener("http", 80, None, "All")];
    assert!(
        run(&all, route("web", &none), &reference(None, None))
            .accepted
            .status
    );
    let selector = [listener("http", 80, None, "Selector")];
    assert!(
        run(&selector, route("web", &none), &reference(None, None))
            .accepted
            .status
    );
    assert_eq!(
        run(&selector, route("other", &none), &reference(None, None))
            .accepted
            .reason,
        "NotAllowedByListeners"
    );
}

#[test]
fn hostnames_pick_the_listeners_and_none_matching_refuses_the_route() {
    let listeners = [
        listener("exact", 80, Some("very.specific.com"), "Same"),
        listener("wild", 80, Some("*.wildcard.io"), "Same"),
        listener("any", 80, None, "Same"),
    ];
    let hosts = ["foo.wildcard.io".to_string()];
    let attachment = run(&listeners, route("infra", &hosts), &reference(None, None));
    let attached: Vec<usize> = attachment.listeners.iter().map(|(i, _)| *i).collect();
    assert_eq!(attached, [1, 2]);
    let nothing = ["not.matching.com".to_string()];
    let specific = [listener("exact", 80, Some("very.specific.com"), "Same")];
    let attachment = run(&specific, route("infra", &nothing), &reference(None, None));
    assert_eq!(attachment.accepted.reason, "NoMatchingListenerHostname");
}
