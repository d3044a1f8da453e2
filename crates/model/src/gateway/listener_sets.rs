//! ListenerSets (the spec's ListenerSet, GEP-1713): listeners written outside a Gateway, in
//! their own object and possibly their own namespace, merged into the Gateway's when its
//! `allowedListeners` admits them. Admitted sets follow the Gateway's own listeners, oldest
//! first (then by namespace and name), which is the precedence conflicts are settled by.

use std::collections::BTreeMap;

use lb_api::gateway::{GROUP, Gateway, Listener, ListenerSet, ParentReference};

use super::conditions::{Verdict, types};
use super::listeners::{CheckedListener, Origin};
use crate::selectors::label_selector_matches;

/// Whether `reference` (of a route in `route_namespace`) names the ListenerSet
/// `namespace/name` (the kind is never implied: a bare reference is to a Gateway).
pub fn names_listener_set(
    reference: &ParentReference,
    route_namespace: &str,
    namespace: &str,
    name: &str,
) -> bool {
    reference.group.as_deref().unwrap_or(GROUP) == GROUP
        && reference.kind.as_deref() == Some("ListenerSet")
        && reference.namespace.as_deref().unwrap_or(route_namespace) == namespace
        && reference.name == name
}

/// Whether `set` names `gateway` as its parent.
pub fn names_gateway(set: &ListenerSet, gateway: &Gateway) -> bool {
    let reference = &set.spec.parent_ref;
    let set_namespace = set.metadata.namespace.as_deref().unwrap_or_default();
    reference.group.as_deref().unwrap_or(GROUP) == GROUP
        && reference.kind.as_deref().unwrap_or("Gateway") == "Gateway"
        && reference.namespace.as_deref().unwrap_or(set_namespace)
            == gateway.metadata.namespace.as_deref().unwrap_or_default()
        && Some(reference.name.as_str()) == gateway.metadata.name.as_deref()
}

/// The ListenerSets naming `gateway`, by precedence: oldest first, then namespace and name.
pub fn naming<'a>(gateway: &Gateway, sets: &'a [ListenerSet]) -> Vec<&'a ListenerSet> {
    let mut naming: Vec<&ListenerSet> = sets.iter().filter(|s| names_gateway(s, gateway)).collect();
    naming.sort_by_key(|s| {
        (
            s.metadata.creation_timestamp.as_ref().map(|t| t.0),
            s.metadata.namespace.clone(),
            s.metadata.name.clone(),
        )
    });
    naming
}

/// Whether `gateway`'s `allowedListeners` admits a ListenerSet of `namespace` (by default none).
pub fn allowed(
    gateway: &Gateway,
    namespace: &str,
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> bool {
    let namespaces = gateway
        .spec
        .allowed_listeners
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    match namespaces.and_then(|n| n.from.as_deref()).unwrap_or("None") {
        "All" => true,
        "Same" => Some(namespace) == gateway.metadata.namespace.as_deref(),
        "Selector" => namespaces
            .and_then(|n| n.selector.as_ref())
            .is_some_and(|selector| {
                label_selector_matches(selector, namespace_labels.get(namespace))
            }),
        _ => false,
    }
}

/// The listeners a Gateway serves: its own, then those of the ListenerSets it admits, each with
/// the object it is written in (same order).
#[derive(Debug, Clone, Default)]
pub struct MergedListeners {
    pub listeners: Vec<Listener>,
    pub origins: Vec<Origin>,
}

/// A ListenerSet naming the Gateway, and whether the Gateway admits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamingSet {
    pub namespace: String,
    pub name: String,
    pub generation: Option<i64>,
    pub admitted: bool,
}

/// The Gateway's listeners merged with those of the `sets` naming it that it admits.
pub fn merge(
    gateway: &Gateway,
    sets: &[ListenerSet],
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> (MergedListeners, Vec<NamingSet>) {
    let namespace = gateway.metadata.namespace.as_deref().unwrap_or_default();
    let name = gateway.metadata.name.as_deref().unwrap_or_default();
    let mut merged = MergedListeners {
        listeners: gateway.spec.listeners.clone(),
        origins: vec![Origin::gateway(namespace, name); gateway.spec.listeners.len()],
    };
    let mut naming_sets = Vec::new();
    for set in naming(gateway, sets) {
        let set_namespace = set.metadata.namespace.clone().unwrap_or_default();
        let set_name = set.metadata.name.clone().unwrap_or_default();
        let admitted = allowed(gateway, &set_namespace, namespace_labels);
        if admitted {
            for listener in &set.spec.listeners {
                merged.listeners.push(listener.clone());
                merged
                    .origins
                    .push(Origin::listener_set(&set_namespace, &set_name));
            }
        }
        naming_sets.push(NamingSet {
            namespace: set_namespace,
            name: set_name,
            generation: set.metadata.generation,
            admitted,
        });
    }
    (merged, naming_sets)
}

/// A ListenerSet's Accepted condition: refused when the Gateway does not admit it or is itself
/// not accepted, or when none of its listeners is usable.
pub fn set_accepted(
    set: &NamingSet,
    gateway_accepted: bool,
    checked: &[CheckedListener],
) -> Verdict {
    let refused = |reason: &'static str, message: String| {
        Verdict::new(types::ACCEPTED, false, reason, message)
    };
    if !set.admitted {
        return refused(
            "NotAllowed",
            "the parent Gateway's allowedListeners does not admit ListenerSets of this namespace"
                .into(),
        );
    }
    if !gateway_accepted {
        return refused(
            "ParentNotAccepted",
            "the parent Gateway is not accepted".into(),
        );
    }
    let own = checked
        .iter()
        .filter(|l| l.origin == Origin::listener_set(&set.namespace, &set.name));
    let (mut usable, mut all) = (0, 0);
    for listener in own {
        all += 1;
        usable += usize::from(listener.usable());
    }
    match usable {
        0 => refused(
            "ListenersNotValid",
            format!("none of its {all} listeners is valid"),
        ),
        _ if usable < all => Verdict::new(
            types::ACCEPTED,
            true,
            "Accepted",
            format!("{usable} of its {all} listeners are valid"),
        ),
        _ => Verdict::new(types::ACCEPTED, true, "Accepted", "ListenerSet accepted"),
    }
}

#[cfg(test)]
#[path = "listener_sets_tests.rs"]
mod tests;
