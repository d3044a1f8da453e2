//! What became of each applied object when the demo stops, printed and (with `--report`) written
//! as JSON: bindings with their condition and every target's health in ELB, Deployments with their
//! ready replicas, Services, pods; objects refused with the reason; and every Warning event in the
//! namespaces involved, naming the object and the reason.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::{Api, Client};
use lb_api::TargetGroupBinding;
use lb_sandbox::aws::ControlClient;
use serde::Serialize;

use lb_sandbox::DestinationGuard;

use super::alb::{self, AlbOutcome};
use super::manifests::Applied;
use super::nlb::{self, LoadBalancerOutcome};

/// How the demo reaches what it reports on: the emulator's control API and data plane (through
/// the guard), ELB's API, and the CA that signed the emulator's certificates.
#[derive(Clone, Copy)]
pub struct Probes<'a> {
    pub emulator: ControlClient,
    pub guard: &'a DestinationGuard,
    pub elb: &'a aws_sdk_elasticloadbalancingv2::Client,
    pub ca_pem: &'a str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub objects: Vec<ObjectOutcome>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectOutcome {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// The manifest files that applied it (one object applied again shows once).
    pub sources: Vec<String>,
    pub applied: bool,
    /// Why it was refused, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// What became of it, in a line.
    pub summary: String,
    /// A binding's targets in its target group (a Service's: its NLB's), with their health.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetOutcome>,
    /// A Service's NLB: hostname, listeners and who answered through them, Events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerOutcome>,
    /// An Ingress's (or a Gateway's) ALB: listeners, rules, the answers to requests through
    /// each, the group's Events (the Gateway's conditions and Events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_load_balancer: Option<AlbOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetOutcome {
    pub id: String,
    pub port: i32,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub namespace: String,
    /// `Kind/name` of the object the event is about.
    pub object: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
}

pub async fn collect(client: &Client, probes: &Probes<'_>, applied: &[Applied]) -> Report {
    let mut objects: Vec<ObjectOutcome> = Vec::new();
    for item in applied {
        let outcome = outcome(client, probes, item).await;
        let same = |o: &&mut ObjectOutcome| {
            (&o.kind, &o.namespace, &o.name) == (&outcome.kind, &outcome.namespace, &outcome.name)
        };
        match objects.iter_mut().find(|o| same(o)) {
            // Applied again: its latest outcome, from every file that applied it.
            Some(earlier) => {
                let mut sources = std::mem::take(&mut earlier.sources);
                sources.extend(outcome.sources);
                *earlier = ObjectOutcome { sources, ..outcome };
            }
            None => objects.push(outcome),
        }
    }
    let namespaces: BTreeSet<String> = applied.iter().filter_map(|a| a.namespace.clone()).collect();
    let mut warnings = Vec::new();
    for namespace in &namespaces {
        warnings.extend(warnings_in(client, namespace).await);
    }
    Report { objects, warnings }
}

async fn outcome(client: &Client, probes: &Probes<'_>, applied: &Applied) -> ObjectOutcome {
    let (emulator, guard) = (probes.emulator, probes.guard);
    let document = &applied.document;
    let mut outcome = ObjectOutcome {
        kind: document.kind().to_string(),
        namespace: applied.namespace.clone(),
        name: document.name().to_string(),
        sources: vec![document.source.display().to_string()],
        applied: applied.refused.is_none(),
        refused: applied.refused.clone(),
        summary: String::new(),
        targets: Vec::new(),
        load_balancer: None,
        application_load_balancer: None,
    };
    if let Some(refused) = &applied.refused {
        outcome.summary = format!("refused: {refused}");
        return outcome;
    }
    let namespace = applied.namespace.clone().unwrap_or_default();
    let name = document.name();
    outcome.summary = match document.kind() {
        "TargetGroupBinding" => {
            let (summary, targets) = binding(client, emulator, &namespace, name).await;
            outcome.targets = targets;
            summary
        }
        "Deployment" => deployment(client, &namespace, name).await,
        "Service" => {
            let (summary, nlb) = service(client, emulator, guard, &namespace, name).await;
            if let Some((lb, targets)) = nlb {
                outcome.load_balancer = Some(lb);
                outcome.targets = targets;
            }
            summary
        }
        "Pod" => pod(client, &namespace, name).await,
        "Gateway" => {
            let api: Api<lb_api::gateway::Gateway> = Api::namespaced(client.clone(), &namespace);
            match api.get(name).await {
                Ok(gateway) => match alb::gateway_outcome(client, probes, &gateway).await {
                    Some((lb, targets)) => {
                        let summary = format!("ALB {}", lb.hostname);
                        outcome.application_load_balancer = Some(lb);
                        outcome.targets = targets;
                        summary
                    }
                    None => "no ALB (yet): see its status".to_string(),
                },
                Err(_) => "gone".to_string(),
            }
        }
        "Ingress" => {
            let api: Api<Ingress> = Api::namespaced(client.clone(), &namespace);
            match api.get(name).await {
                Ok(ingress) => match alb::outcome(client, probes, &ingress).await {
                    Some((lb, targets)) => {
                        let summary = format!("ALB {}", lb.hostname);
                        outcome.application_load_balancer = Some(lb);
                        outcome.targets = targets;
                        summary
                    }
                    None => "no ALB (yet): see its Events".to_string(),
                },
                Err(_) => "gone".to_string(),
            }
        }
        _ => "applied".to_string(),
    };
    outcome
}

/// A binding's condition, and its targets as ELB reports them (read from the emulator, which sees
/// every account's target groups).
async fn binding(
    client: &Client,
    emulator: ControlClient,
    namespace: &str,
    name: &str,
) -> (String, Vec<TargetOutcome>) {
    let api: Api<TargetGroupBinding> = Api::namespaced(client.clone(), namespace);
    let Ok(binding) = api.get(name).await else {
        return ("gone".to_string(), Vec::new());
    };
    let status = binding.status.clone().unwrap_or_default();
    let condition = status.conditions.iter().find(|c| c.type_ == "Ready");
    let summary = match condition {
        Some(c) => format!("Ready={} ({}): {}", c.status, c.reason, c.message),
        None => "no status yet".to_string(),
    };
    let Some(arn) = binding.spec.target_group_arn.as_deref() else {
        return (summary, Vec::new());
    };
    let targets = emulator
        .targets(arn)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|t| TargetOutcome {
            id: t.id,
            port: i32::from(t.port),
            state: t.state,
            reason: t.reason,
        })
        .collect();
    (summary, targets)
}

async fn deployment(client: &Client, namespace: &str, name: &str) -> String {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    match api.get(name).await {
        Ok(d) => {
            let wanted = d.spec.and_then(|s| s.replicas).unwrap_or(1);
            let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
            format!("{ready}/{wanted} replicas ready")
        }
        Err(_) => "gone".to_string(),
    }
}

type NlbOutcome = Option<(LoadBalancerOutcome, Vec<TargetOutcome>)>;

async fn service(
    client: &Client,
    emulator: ControlClient,
    guard: &DestinationGuard,
    namespace: &str,
    name: &str,
) -> (String, NlbOutcome) {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let Ok(service) = api.get(name).await else {
        return ("gone".to_string(), None);
    };
    let nlb = nlb::outcome(client, emulator, guard, &service, namespace, name).await;
    let spec = service.spec.unwrap_or_default();
    let ports: Vec<String> = spec
        .ports
        .unwrap_or_default()
        .iter()
        .map(|p| match p.node_port {
            Some(node_port) => format!("{} (NodePort {node_port})", p.port),
            None => p.port.to_string(),
        })
        .collect();
    let summary = format!(
        "{}, ports {}",
        spec.type_.unwrap_or_else(|| "ClusterIP".into()),
        ports.join(", ")
    );
    (summary, nlb)
}

async fn pod(client: &Client, namespace: &str, name: &str) -> String {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let Ok(pod) = api.get(name).await else {
        return "gone".to_string();
    };
    let status = pod.status.unwrap_or_default();
    let ready = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status)
        .unwrap_or_else(|| "Unknown".into());
    format!(
        "{}, Ready={ready}",
        status.phase.unwrap_or_else(|| "Pending".into())
    )
}

async fn warnings_in(client: &Client, namespace: &str) -> Vec<Warning> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().fields("type=Warning");
    let Ok(events) = api.list(&params).await else {
        return Vec::new();
    };
    events
        .items
        .into_iter()
        .map(|e| Warning {
            namespace: namespace.to_string(),
            object: format!(
                "{}/{}",
                e.involved_object.kind.unwrap_or_default(),
                e.involved_object.name.unwrap_or_default()
            ),
            reason: e.reason.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
            count: e.count.unwrap_or(1),
        })
        .collect()
}

/// Said when a target is still `initial` at the end: upstream's default checks (which the seeds'
/// Service and Ingress keep) take about 30 s to pass, longer than a short `--for`.
const INITIAL_HINT: &str = "targets still initial have not passed their first health checks yet: that takes \
interval x healthy threshold, 30 s with upstream's defaults (NLB 10 s x 3, ALB 15 s x 2); run longer to see them \
healthy (--for 60s)";

/// The report as the demo prints it.
pub fn text(report: &Report) -> String {
    let mut lines = vec!["outcome of the manifests:".to_string()];
    for object in &report.objects {
        let path = match &object.namespace {
            Some(ns) => format!("{}/{ns}/{}", object.kind.to_lowercase(), object.name),
            None => format!("{}/{}", object.kind.to_lowercase(), object.name),
        };
        lines.push(format!("  {path:<44} {}", object.summary));
        if let Some(lb) = &object.load_balancer {
            lines.extend(nlb::text(lb));
        }
        if let Some(lb) = &object.application_load_balancer {
            lines.extend(alb::text(lb));
        }
        for target in &object.targets {
            let reason = target
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            lines.push(format!(
                "      target {}:{} {}{reason}",
                target.id, target.port, target.state
            ));
        }
    }
    let checking = report
        .objects
        .iter()
        .flat_map(|o| &o.targets)
        .any(|t| t.state == "initial");
    if checking {
        // Not a failure: the demo ended before the first checks could pass.
        lines.push(INITIAL_HINT.to_string());
    }
    if report.warnings.is_empty() {
        lines.push("no Warning events".to_string());
    } else {
        lines.push("Warning events:".to_string());
        for warning in &report.warnings {
            lines.push(format!(
                "  {}/{} {}: {} (x{})",
                warning.namespace, warning.object, warning.reason, warning.message, warning.count
            ));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_with(state: &str) -> Report {
        Report {
            objects: vec![ObjectOutcome {
                kind: "TargetGroupBinding".into(),
                namespace: Some("demo".into()),
                name: "echo".into(),
                sources: vec!["echo-tgb.yaml".into()],
                applied: true,
                refused: None,
                summary: "Ready=True".into(),
                targets: vec![TargetOutcome {
                    id: "10.244.0.64".into(),
                    port: 8080,
                    state: state.into(),
                    reason: None,
                }],
                load_balancer: None,
                application_load_balancer: None,
            }],
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_target_still_initial_at_the_end_is_explained() {
        let printed = text(&binding_with("initial"));
        assert!(printed.contains("      target 10.244.0.64:8080 initial"));
        assert!(printed.contains(INITIAL_HINT));
    }

    #[test]
    fn no_hint_once_every_target_was_checked() {
        assert!(!text(&binding_with("healthy")).contains(INITIAL_HINT));
    }
}
