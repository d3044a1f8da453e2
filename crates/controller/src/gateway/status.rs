//! The statuses a Gateway pass writes: the Gateway's (addresses as `Hostname`, as upstream;
//! Accepted, Programmed; each listener's conditions, kinds and attached routes; the ListenerSets
//! attached), each ListenerSet's naming it (the same, for its listeners) and, on each route that
//! names the Gateway or one of its ListenerSets, the entry of each parentRef naming it (Accepted,
//! ResolvedRefs). Each is written only when it says something new; a condition that says the same
//! keeps its time.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use lb_api::gateway::{
    ALB_CONTROLLER_NAME, Gateway, GatewayAddress, GatewayStatus, HTTPRoute, ListenerSet,
    ListenerSetStatus, ListenerStatus, RouteParentStatus,
};
use lb_model::gateway::attach::names_gateway;
use lb_model::gateway::build::{GatewayBuild, SetOutcome};
use lb_model::gateway::conditions::{Verdict, merge, types};
use lb_model::gateway::listener_sets::names_listener_set;
use lb_model::gateway::listeners::Origin;
use serde_json::json;

use crate::stack::StackError;
use crate::stack::error::KubeContext;

/// How the pass's converge went.
#[derive(Debug, Clone)]
pub enum Programmed {
    /// Converged; the load balancer's DNS name when it has one.
    Done(Option<String>),
    /// Not converged, and why (the pass is retried).
    Failed(String),
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// The Gateway's status after this pass.
fn gateway_status(
    gateway: &Gateway,
    built: &GatewayBuild,
    programmed: &Programmed,
) -> GatewayStatus {
    let previous = gateway.status.clone().unwrap_or_default();
    let generation = gateway.metadata.generation;
    let now = now();
    let address = match programmed {
        Programmed::Done(Some(dns)) => Some(dns.to_ascii_lowercase()),
        _ => None,
    };
    let verdict = programmed_verdict(built.accepted.status, programmed, address.as_deref());
    let namespace = gateway.namespace().unwrap_or_default();
    let own = Origin::gateway(&namespace, &gateway.name_any());
    let attached = built.sets.iter().filter(|s| s.accepted.status).count();
    GatewayStatus {
        listeners: listener_statuses(built, &own, &verdict, &previous.listeners, generation, &now),
        addresses: address
            .into_iter()
            .map(|value| GatewayAddress {
                type_: Some("Hostname".into()),
                value,
            })
            .collect(),
        conditions: merge(
            &previous.conditions,
            &[built.accepted.clone(), verdict],
            generation,
            &now,
        ),
        attached_listener_sets: Some(i32::try_from(attached).unwrap_or(i32::MAX)),
    }
}

/// The Gateway's Programmed condition.
fn programmed_verdict(accepted: bool, programmed: &Programmed, address: Option<&str>) -> Verdict {
    match (accepted, programmed, address) {
        (false, _, _) => Verdict::new(
            types::PROGRAMMED,
            false,
            "Invalid",
            "the Gateway is not accepted",
        ),
        (true, Programmed::Done(_), Some(dns)) => Verdict::new(
            types::PROGRAMMED,
            true,
            "Programmed",
            format!("load balancer {dns}"),
        ),
        (true, Programmed::Done(_), None) => Verdict::new(
            types::PROGRAMMED,
            false,
            "Pending",
            "the load balancer has no address yet",
        ),
        (true, Programmed::Failed(why), _) => {
            Verdict::new(types::PROGRAMMED, false, "Pending", why.clone())
        }
    }
}

/// The status of each listener written in `origin` (the Gateway, or one of its ListenerSets):
/// its checks, and Programmed as the Gateway is (unless it is invalid or waits for its
/// certificate).
fn listener_statuses(
    built: &GatewayBuild,
    origin: &Origin,
    gateway: &Verdict,
    previous: &[ListenerStatus],
    generation: Option<i64>,
    now: &Time,
) -> Vec<ListenerStatus> {
    built
        .listeners
        .iter()
        .enumerate()
        .filter(|(_, listener)| listener.origin == *origin)
        .map(|(i, listener)| {
            let mut verdicts = listener.verdicts.clone();
            // A listener refused for a conflict is not programmed for that same reason.
            let refused_by = listener
                .verdicts
                .iter()
                .find(|v| v.type_ == types::ACCEPTED && !v.status && v.reason.ends_with("Conflict"))
                .map(|v| v.reason);
            verdicts.push(
                match (
                    listener.usable(),
                    built.pending.contains(&i),
                    gateway.status,
                ) {
                    (false, _, _) => Verdict::new(
                        types::PROGRAMMED,
                        false,
                        refused_by.unwrap_or("Invalid"),
                        "the listener is not valid",
                    ),
                    (true, true, _) => Verdict::new(
                        types::PROGRAMMED,
                        false,
                        "Pending",
                        "its certificate is not imported yet",
                    ),
                    (true, false, true) => {
                        Verdict::new(types::PROGRAMMED, true, "Programmed", "listener programmed")
                    }
                    (true, false, false) => {
                        Verdict::new(types::PROGRAMMED, false, "Pending", gateway.message.clone())
                    }
                },
            );
            let before = previous.iter().find(|l| l.name == listener.name);
            ListenerStatus {
                name: listener.name.clone(),
                supported_kinds: listener.supported_kinds.clone(),
                attached_routes: built.attached_routes[i],
                conditions: merge(
                    before.map_or(&[][..], |l| &l.conditions[..]),
                    &verdicts,
                    generation,
                    now,
                ),
            }
        })
        .collect()
}

/// Whether two statuses say the same, times aside.
fn same_conditions(a: &[Condition], b: &[Condition]) -> bool {
    let key = |c: &Condition| {
        (
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.clone(),
            c.observed_generation,
        )
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| key(x) == key(y))
}

fn same_listeners(a: &[ListenerStatus], b: &[ListenerStatus]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (&x.name, &x.supported_kinds, x.attached_routes)
                == (&y.name, &y.supported_kinds, y.attached_routes)
                && same_conditions(&x.conditions, &y.conditions)
        })
}

fn same_gateway_status(a: &GatewayStatus, b: &GatewayStatus) -> bool {
    a.addresses == b.addresses
        && a.attached_listener_sets == b.attached_listener_sets
        && same_conditions(&a.conditions, &b.conditions)
        && same_listeners(&a.listeners, &b.listeners)
}

/// Writes the Gateway's status when it says something new.
pub async fn write_gateway_status(
    client: &Client,
    gateway: &Gateway,
    built: &GatewayBuild,
    programmed: &Programmed,
) -> Result<(), StackError> {
    let status = gateway_status(gateway, built, programmed);
    if gateway
        .status
        .as_ref()
        .is_some_and(|s| same_gateway_status(s, &status))
    {
        return Ok(());
    }
    let api: Api<Gateway> =
        Api::namespaced(client.clone(), &gateway.namespace().unwrap_or_default());
    api.patch_status(
        &gateway.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .context(|| format!("writing the status of Gateway {}", gateway.name_any()))?;
    Ok(())
}

/// A ListenerSet's status after this pass: Accepted as the build says, Programmed as the
/// Gateway is once accepted, and its listeners'.
fn listener_set_status(
    set: &ListenerSet,
    outcome: &SetOutcome,
    built: &GatewayBuild,
    gateway: &Verdict,
) -> ListenerSetStatus {
    let previous = set.status.clone().unwrap_or_default();
    let generation = set.metadata.generation;
    let now = now();
    let accepted = &outcome.accepted;
    let programmed = match (accepted.status, gateway.status) {
        (false, _) => Verdict::new(
            types::PROGRAMMED,
            false,
            accepted.reason,
            accepted.message.clone(),
        ),
        (true, true) => Verdict::new(
            types::PROGRAMMED,
            true,
            "Programmed",
            "its listeners are programmed",
        ),
        (true, false) => Verdict::new(types::PROGRAMMED, false, "Pending", gateway.message.clone()),
    };
    let origin = Origin::listener_set(&outcome.set.namespace, &outcome.set.name);
    ListenerSetStatus {
        conditions: merge(
            &previous.conditions,
            &[accepted.clone(), programmed],
            generation,
            &now,
        ),
        listeners: listener_statuses(
            built,
            &origin,
            gateway,
            &previous.listeners,
            generation,
            &now,
        ),
    }
}

/// Writes the status of every ListenerSet naming the Gateway, when it says something new.
pub async fn write_listener_set_statuses(
    client: &Client,
    gateway: &Gateway,
    sets: &[ListenerSet],
    built: &GatewayBuild,
    programmed: &Programmed,
) -> Result<(), StackError> {
    let address = match programmed {
        Programmed::Done(Some(dns)) => Some(dns.to_ascii_lowercase()),
        _ => None,
    };
    let verdict = programmed_verdict(built.accepted.status, programmed, address.as_deref());
    for outcome in &built.sets {
        let Some(set) = sets.iter().find(|s| {
            s.namespace().as_deref() == Some(outcome.set.namespace.as_str())
                && s.name_any() == outcome.set.name
        }) else {
            continue;
        };
        let status = listener_set_status(set, outcome, built, &verdict);
        let unchanged = set.status.as_ref().is_some_and(|s| {
            same_conditions(&s.conditions, &status.conditions)
                && same_listeners(&s.listeners, &status.listeners)
        });
        if unchanged {
            continue;
        }
        let api: Api<ListenerSet> = Api::namespaced(client.clone(), &outcome.set.namespace);
        api.patch_status(
            &outcome.set.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .context(|| {
            format!(
                "writing the status of ListenerSet {}/{} (Gateway {})",
                outcome.set.namespace,
                outcome.set.name,
                gateway.name_any()
            )
        })?;
    }
    Ok(())
}

/// Writes, on every route that names the Gateway or one of its ListenerSets (or named it, and
/// still has our entry for it), the entries of the parentRefs naming it; other parents' entries
/// stay.
pub async fn write_route_statuses(
    client: &Client,
    gateway: &Gateway,
    routes: &[HTTPRoute],
    built: &GatewayBuild,
) -> Result<(), StackError> {
    let namespace = gateway.namespace().unwrap_or_default();
    let name = gateway.name_any();
    let now = now();
    for route in routes {
        let route_namespace = route.namespace().unwrap_or_default();
        let route_name = route.name_any();
        let ours = |entry: &RouteParentStatus| {
            let reference = &entry.parent_ref;
            entry.controller_name == ALB_CONTROLLER_NAME
                && (names_gateway(reference, &route_namespace, &namespace, &name)
                    || built.sets.iter().any(|s| {
                        names_listener_set(
                            reference,
                            &route_namespace,
                            &s.set.namespace,
                            &s.set.name,
                        )
                    }))
        };
        let previous = route.status.clone().unwrap_or_default().parents;
        let outcomes: Vec<_> = built
            .routes
            .iter()
            .filter(|o| o.namespace == route_namespace && o.name == route_name)
            .collect();
        if outcomes.is_empty() && !previous.iter().any(ours) {
            continue;
        }
        let mut parents: Vec<RouteParentStatus> =
            previous.iter().filter(|e| !ours(e)).cloned().collect();
        for outcome in outcomes {
            let before = previous.iter().find(|e| {
                e.controller_name == ALB_CONTROLLER_NAME && e.parent_ref == outcome.parent_ref
            });
            let verdicts = [outcome.accepted.clone(), outcome.resolved_refs.clone()];
            parents.push(RouteParentStatus {
                parent_ref: outcome.parent_ref.clone(),
                controller_name: ALB_CONTROLLER_NAME.into(),
                conditions: merge(
                    before.map_or(&[][..], |e| &e.conditions[..]),
                    &verdicts,
                    route.metadata.generation,
                    &now,
                ),
            });
        }
        let unchanged = parents.len() == previous.len()
            && parents.iter().all(|p| {
                previous.iter().any(|q| {
                    q.parent_ref == p.parent_ref
                        && q.controller_name == p.controller_name
                        && same_conditions(&q.conditions, &p.conditions)
                })
            });
        if unchanged {
            continue;
        }
        let api: Api<HTTPRoute> = Api::namespaced(client.clone(), &route_namespace);
        // Only over the route as it was read: another Gateway's pass may write it too.
        let patch = json!({
            "metadata": {"resourceVersion": route.resource_version()},
            "status": {"parents": parents},
        });
        api.patch_status(&route_name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .context(|| {
                format!("writing the status of HTTPRoute {route_namespace}/{route_name}")
            })?;
    }
    Ok(())
}
