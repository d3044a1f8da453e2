//! Whether a route attaches to a Gateway (or to one of its ListenerSets), and to which of its
//! listeners: the parentRef's section name and port, the listeners' allowed kinds and namespaces,
//! and hostname intersection. The answer is the route's `Accepted` condition for that parent, and
//! the listeners it counts on. A parentRef reaches only the listeners written in the object it
//! names: a Gateway's own, or one ListenerSet's.

use std::collections::BTreeMap;

use lb_api::gateway::{GROUP, Listener, ParentReference};

use super::conditions::{Verdict, types};
use super::hostnames::intersect;
use super::listeners::{CheckedListener, Origin};
use crate::selectors::label_selector_matches;

/// The route as attachment sees it.
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    /// `HTTPRoute` or `GRPCRoute`.
    pub kind: &'a str,
    pub namespace: &'a str,
    pub hostnames: &'a [String],
}

/// The Gateway as attachment sees it: its listeners (with its ListenerSets') as written and as
/// checked (same order).
#[derive(Debug, Clone, Copy)]
pub struct Parent<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub listeners: &'a [Listener],
    pub checked: &'a [CheckedListener],
}

/// The outcome for one parentRef that names the Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub accepted: Verdict,
    /// The listeners (by index) the route attached to, with the hostnames it serves on each
    /// (empty: any).
    pub listeners: Vec<(usize, Vec<String>)>,
}

/// Whether `reference` (of a route in `route_namespace`) names the Gateway `namespace/name`.
pub fn names_gateway(
    reference: &ParentReference,
    route_namespace: &str,
    namespace: &str,
    name: &str,
) -> bool {
    reference.group.as_deref().unwrap_or(GROUP) == GROUP
        && reference.kind.as_deref().unwrap_or("Gateway") == "Gateway"
        && reference.namespace.as_deref().unwrap_or(route_namespace) == namespace
        && reference.name == name
}

/// Attaches `route` through `reference` (which names `origin`, the Gateway or one of its
/// ListenerSets); `namespace_labels` are the cluster's namespaces' labels (for `allowedRoutes`
/// selectors).
pub fn attach(
    route: Route<'_>,
    reference: &ParentReference,
    parent: Parent<'_>,
    origin: &Origin,
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> Attachment {
    let refused = |reason: &'static str, message: String| Attachment {
        accepted: Verdict::new(types::ACCEPTED, false, reason, message),
        listeners: Vec::new(),
    };
    let named: Vec<usize> = (0..parent.listeners.len())
        .filter(|&i| {
            let listener = &parent.listeners[i];
            parent.checked[i].origin == *origin
                && reference
                    .section_name
                    .as_deref()
                    .is_none_or(|s| s == listener.name)
                && reference.port.is_none_or(|p| p == listener.port)
        })
        .collect();
    if named.is_empty() {
        let message = format!(
            "{origin} has no listener{}{}",
            reference
                .section_name
                .as_deref()
                .map(|s| format!(" named {s}"))
                .unwrap_or_default(),
            reference
                .port
                .map(|p| format!(" on port {p}"))
                .unwrap_or_default(),
        );
        return refused("NoMatchingParent", message);
    }
    let allowed: Vec<usize> = named
        .into_iter()
        .filter(|&i| parent.checked[i].accepted() && admits(&parent, i, route, namespace_labels))
        .collect();
    if allowed.is_empty() {
        let message = format!(
            "no listener of {origin} admits {}s from namespace {}",
            route.kind, route.namespace
        );
        return refused("NotAllowedByListeners", message);
    }
    let listeners: Vec<(usize, Vec<String>)> = allowed
        .into_iter()
        .filter_map(|i| {
            let hostname = parent.listeners[i].hostname.as_deref();
            intersect(hostname, route.hostnames).map(|hosts| (i, hosts))
        })
        .collect();
    if listeners.is_empty() {
        let message = format!("no hostname of the route matches a listener of {origin}");
        return refused("NoMatchingListenerHostname", message);
    }
    Attachment {
        accepted: Verdict::new(types::ACCEPTED, true, "Accepted", "route accepted"),
        listeners,
    }
}

/// Whether listener `i` admits the route's kind and namespace.
fn admits(
    parent: &Parent<'_>,
    i: usize,
    route: Route<'_>,
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> bool {
    let kind_ok = parent.checked[i]
        .supported_kinds
        .iter()
        .any(|k| k.kind == route.kind);
    let namespaces = parent.listeners[i]
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    let from = namespaces.and_then(|n| n.from.as_deref()).unwrap_or("Same");
    let namespace_ok = match from {
        "All" => true,
        // The namespace of the object the listener is written in.
        "Same" => route.namespace == parent.checked[i].origin.namespace,
        "Selector" => namespaces
            .and_then(|n| n.selector.as_ref())
            .is_some_and(|selector| {
                label_selector_matches(selector, namespace_labels.get(route.namespace))
            }),
        _ => false,
    };
    kind_ok && namespace_ok
}

#[cfg(test)]
#[path = "attach_tests.rs"]
mod tests;
