//! What the demo shows of a Service that became an NLB: its hostname, each listener with a few
//! connections sent through it (and which pods answered), its targets' health, and the Service's
//! Events.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Service};
use kube::api::ListParams;
use kube::{Api, Client};
use lb_api::TargetGroupBinding;
use lb_api::keys::service as keys;
use lb_sandbox::aws::ControlClient;
use lb_sandbox::{DestinationGuard, http_client};
use serde::Serialize;

use super::outcome::TargetOutcome;
use crate::status_hostname::StatusHostname;

/// Connections sent through each listener.
const PROBES: usize = 6;

#[derive(Debug, Clone, Serialize)]
pub struct LoadBalancerOutcome {
    pub hostname: String,
    pub listeners: Vec<ListenerOutcome>,
    /// `reason: message` of the Service's Events, oldest first.
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListenerOutcome {
    pub protocol: String,
    pub port: u16,
    /// Pod (or failure) -> connections it answered.
    pub answered_by: BTreeMap<String, usize>,
}

/// The NLB of `service`, if it has one; and the targets of its bindings.
pub async fn outcome(
    client: &Client,
    emulator: ControlClient,
    guard: &DestinationGuard,
    service: &Service,
    namespace: &str,
    name: &str,
) -> Option<(LoadBalancerOutcome, Vec<TargetOutcome>)> {
    let hostname = service.status_hostname()?;
    let mut listeners = Vec::new();
    for listener in emulator.listeners().await.unwrap_or_default() {
        if listener.dns_name != hostname {
            continue;
        }
        let mut answered_by = BTreeMap::new();
        for _ in 0..PROBES {
            let who =
                match http_client::get(guard, listener.local_address, "/", Duration::from_secs(3))
                    .await
                {
                    Ok(response) => String::from_utf8_lossy(&response.body)
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("pod="))
                        .map_or_else(|| format!("HTTP {}", response.status), str::to_string),
                    Err(err) => format!("failed: {err}"),
                };
            *answered_by.entry(who).or_insert(0) += 1;
        }
        listeners.push(ListenerOutcome {
            protocol: listener.protocol,
            port: listener.port,
            answered_by,
        });
    }
    let events = events_of(client, namespace, name).await;
    let targets = stack_targets(client, emulator, namespace, name).await;
    Some((
        LoadBalancerOutcome {
            hostname,
            listeners,
            events,
        },
        targets,
    ))
}

async fn events_of(client: &Client, namespace: &str, name: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().fields(&format!(
        "involvedObject.kind=Service,involvedObject.name={name}"
    ));
    api.list(&params)
        .await
        .map(|list| {
            list.items
                .into_iter()
                .map(|e| {
                    format!(
                        "{} {}: {}",
                        e.type_.unwrap_or_default(),
                        e.reason.unwrap_or_default(),
                        e.message.unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The targets of every binding of the Service's stack.
async fn stack_targets(
    client: &Client,
    emulator: ControlClient,
    namespace: &str,
    name: &str,
) -> Vec<TargetOutcome> {
    let api: Api<TargetGroupBinding> = Api::namespaced(client.clone(), namespace);
    let selector = format!("{}={name}", keys::STACK_NAME_LABEL);
    let bindings = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut targets = Vec::new();
    for binding in bindings {
        let Some(arn) = binding.spec.target_group_arn.as_deref() else {
            continue;
        };
        for t in emulator.targets(arn).await.unwrap_or_default() {
            targets.push(TargetOutcome {
                id: t.id,
                port: i32::from(t.port),
                state: t.state,
                reason: t.reason,
            });
        }
    }
    targets
}

/// The lines the demo prints under the Service.
pub fn text(lb: &LoadBalancerOutcome) -> Vec<String> {
    let mut lines = vec![format!("      NLB {}", lb.hostname)];
    for listener in &lb.listeners {
        let answers: Vec<String> = listener
            .answered_by
            .iter()
            .map(|(who, n)| format!("{who} x{n}"))
            .collect();
        lines.push(format!(
            "      listener {}:{} -> {}",
            listener.protocol,
            listener.port,
            answers.join(", ")
        ));
    }
    for event in &lb.events {
        lines.push(format!("      event {event}"));
    }
    lines
}
