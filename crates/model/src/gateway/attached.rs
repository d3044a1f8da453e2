//! The routes attached to a Gateway (directly or through its ListenerSets): which parentRefs
//! name it, what each gets, the rules each route adds to the ports of the listeners it attached
//! to, and the target groups and bindings of its backends (with their TargetGroupConfiguration).

use std::collections::BTreeMap;

use lb_api::TargetType;
use lb_api::gateway::{HTTPRoute, ParentReference};

use super::attach::{Attachment, Parent, Route, attach, names_gateway};
use super::backends::{BackendSnapshot, Unresolved, resolve, resolved_refs};
use super::build::{RouteOutcome, Snapshot};
use super::conditions::{Verdict, types};
use super::isolation::{on_hosts_any, owns};
use super::listener_sets::{NamingSet, names_listener_set};
use super::listeners::Origin;
use super::rules::{PortRoute, match_conditions, rule_action};
use super::target_group_config::{RouteOf, props_for};
use super::target_groups::{Owner, configured_target_group};
use crate::ingress::IngressSettings;
use crate::stack::{Action, Binding, TargetGroup};

/// The routes attached to a Gateway: per listener, how many; per port, their rules; their
/// target groups and bindings (each once); and what each parentRef gets.
pub(super) struct Attached<'a> {
    pub(super) counts: Vec<i32>,
    pub(super) outcomes: Vec<RouteOutcome>,
    pub(super) ports: BTreeMap<i32, Vec<PortRoute<'a>>>,
    pub(super) target_groups: Vec<TargetGroup>,
    pub(super) bindings: Vec<Binding>,
}

impl<'a> Attached<'a> {
    /// Adds `route`'s rules to the ports of the listeners it attached to, and its groups.
    fn add(
        &mut self,
        route: &'a HTTPRoute,
        listeners: &[lb_api::gateway::Listener],
        on: &[(usize, Vec<String>)],
        parts: RouteParts,
    ) {
        let (actions, _, groups, bindings) = parts;
        let namespace = route.metadata.namespace.as_deref().unwrap_or_default();
        let name = route.metadata.name.as_deref().unwrap_or_default();
        for (i, hosts) in on {
            self.counts[*i] += 1;
            // Listener isolation: a hostname a more specific listener of the port owns is served
            // only by that listener's routes.
            let hosts: Vec<String> = hosts
                .iter()
                .filter(|host| owns(listeners, *i, host))
                .cloned()
                .collect();
            if hosts.is_empty() && !on_hosts_any(on, *i) {
                continue; // Every hostname is another listener's.
            }
            let hosts = &hosts;
            let entry = self.ports.entry(listeners[*i].port).or_default();
            match entry
                .iter_mut()
                .find(|p| p.namespace == namespace && p.name == name)
            {
                Some(existing) => {
                    for host in hostnames_or_any(hosts) {
                        if !existing.hostnames.contains(&host) {
                            existing.hostnames.push(host);
                        }
                    }
                }
                None => entry.push(PortRoute {
                    namespace,
                    name,
                    created: route
                        .metadata
                        .creation_timestamp
                        .as_ref()
                        .map_or(0, |t| t.0.as_second()),
                    hostnames: hostnames_or_any(hosts),
                    rules: &route.spec.rules,
                    actions: actions.clone(),
                }),
            }
        }
        for group in groups {
            if !self
                .target_groups
                .iter()
                .any(|g| g.resource_id == group.resource_id)
            {
                self.target_groups.push(group);
            }
        }
        for binding in bindings {
            if !self.bindings.iter().any(|b| b.name == binding.name) {
                self.bindings.push(binding);
            }
        }
    }
}

/// The hostnames a route serves on one listener; `""` for any (no host condition), so that a
/// route on several listeners of one port keeps "any" beside the hostnames of the others.
fn hostnames_or_any(hosts: &[String]) -> Vec<String> {
    match hosts.is_empty() {
        true => vec![String::new()],
        false => hosts.to_vec(),
    }
}

/// The object a route's parentRef names among the Gateway and the ListenerSets naming it: the
/// origin of the listeners it may attach to, or why it cannot attach (a ListenerSet the Gateway
/// does not admit); None when the reference is to something else.
fn named_parent(
    reference: &ParentReference,
    route_namespace: &str,
    parent: &Parent<'_>,
    sets: &[NamingSet],
) -> Option<Result<Origin, Verdict>> {
    if names_gateway(reference, route_namespace, parent.namespace, parent.name) {
        return Some(Ok(Origin::gateway(parent.namespace, parent.name)));
    }
    let set = sets
        .iter()
        .find(|s| names_listener_set(reference, route_namespace, &s.namespace, &s.name))?;
    Some(match set.admitted {
        true => Ok(Origin::listener_set(&set.namespace, &set.name)),
        false => Err(Verdict::new(
            types::ACCEPTED,
            false,
            "NotAllowedByListeners",
            format!(
                "ListenerSet {}/{} is not admitted by Gateway {}/{}",
                set.namespace, set.name, parent.namespace, parent.name
            ),
        )),
    })
}

/// Attaches every route of the snapshot that names the Gateway or one of its ListenerSets.
pub(super) fn attach_routes<'a>(
    parent: Parent<'_>,
    sets: &[NamingSet],
    snapshot: Snapshot<'a>,
    settings: &'a IngressSettings,
    base_tags: &BTreeMap<String, String>,
) -> Attached<'a> {
    let mut attached = Attached {
        counts: vec![0; parent.listeners.len()],
        outcomes: Vec::new(),
        ports: BTreeMap::new(),
        target_groups: Vec::new(),
        bindings: Vec::new(),
    };
    for route in snapshot.routes {
        let route_namespace = route.metadata.namespace.as_deref().unwrap_or_default();
        let naming_us = route.spec.parent_refs.iter().filter_map(|reference| {
            named_parent(reference, route_namespace, &parent, sets).map(|named| (reference, named))
        });
        for (reference, named) in naming_us {
            let view = Route {
                kind: "HTTPRoute",
                namespace: route_namespace,
                hostnames: &route.spec.hostnames,
            };
            let attachment = match &named {
                Ok(origin) => attach(view, reference, parent, origin, snapshot.namespace_labels),
                Err(refused) => Attachment {
                    accepted: refused.clone(),
                    listeners: Vec::new(),
                },
            };
            let owner = Owner {
                cluster: &settings.cluster,
                gateway_namespace: parent.namespace,
                gateway_name: parent.name,
                route_namespace,
                route_name: route.metadata.name.as_deref().unwrap_or_default(),
                route_kind: "HTTPRoute",
                dualstack: false,
            };
            let mut accepted = attachment.accepted.clone();
            let mut resolved_refs = resolved_refs(std::iter::empty());
            if accepted.status {
                match route_actions(
                    route,
                    owner,
                    snapshot.backends,
                    settings.default_target_type,
                    base_tags,
                ) {
                    Err(problem) => {
                        accepted = Verdict::new(types::ACCEPTED, false, "UnsupportedValue", problem)
                    }
                    Ok(parts) => {
                        resolved_refs = resolved_refs_of(&parts.1);
                        attached.add(route, parent.listeners, &attachment.listeners, parts);
                    }
                }
            }
            attached.outcomes.push(RouteOutcome {
                namespace: route_namespace.into(),
                name: route.metadata.name.clone().unwrap_or_default(),
                parent_ref: reference.clone(),
                accepted,
                resolved_refs,
            });
        }
    }
    attached
}

fn resolved_refs_of(problems: &[Unresolved]) -> Verdict {
    resolved_refs(problems.iter())
}

type RouteParts = (Vec<Action>, Vec<Unresolved>, Vec<TargetGroup>, Vec<Binding>);

/// Each rule's action, the backends that did not resolve, and the target groups and bindings of
/// those that did; Err names what an ALB cannot do.
fn route_actions(
    route: &HTTPRoute,
    owner: Owner<'_>,
    snapshot: &BackendSnapshot,
    target_type: TargetType,
    base_tags: &BTreeMap<String, String>,
) -> Result<RouteParts, String> {
    let (mut actions, mut problems, mut groups, mut bindings) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (index, rule) in route.spec.rules.iter().enumerate() {
        for m in &rule.matches {
            match_conditions(m)
                .map_err(|what| format!("rule {index}: {what} is not supported on an ALB"))?;
        }
        let mut backends = Vec::new();
        for reference in &rule.backend_refs {
            let resolved = resolve(
                &reference.backend,
                reference.weight,
                "HTTPRoute",
                owner.route_namespace,
                snapshot,
            )
            .and_then(|backend| {
                let service =
                    &snapshot.services[&(backend.namespace.clone(), backend.service.clone())];
                let route = RouteOf {
                    kind: owner.route_kind,
                    namespace: owner.route_namespace,
                    name: owner.route_name,
                };
                let props = props_for(
                    &snapshot.target_group_configs,
                    &backend.namespace,
                    &backend.service,
                    route,
                );
                let settings = (target_type, base_tags, props.as_ref());
                configured_target_group(owner, service, backend.port, settings)
                    .map(|(group, binding)| (group, binding, backend.weight))
                    .map_err(|err| Unresolved {
                        reason: "BackendNotFound",
                        message: err.to_string(),
                    })
            });
            match resolved {
                Ok((group, binding, weight)) => {
                    backends.push(Some((group.resource_id.clone(), weight)));
                    groups.push(group);
                    bindings.push(binding);
                }
                Err(problem) => {
                    backends.push(None);
                    problems.push(problem);
                }
            }
        }
        actions.push(rule_action(index, rule, &backends).map_err(|err| err.to_string())?);
    }
    Ok((actions, problems, groups, bindings))
}
