//! What the demo prints as it happens: each pod as it changes (node, address, Ready, gate), each
//! target's health as the emulated ELB changes it, and requests through the ALB.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use lb_sandbox::aws::ControlClient;
use lb_sandbox::{Sandbox, http_client};

/// Prints a line with the time since the demo started.
pub fn say(clock: Instant, line: &str) {
    println!("[{:>6.1}s] {line}", clock.elapsed().as_secs_f64());
}

/// What the demo shows of a pod; a line is printed whenever it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodView {
    node: String,
    ip: String,
    ready: String,
    gate: String,
    terminating: bool,
}

fn condition_text(pod: &Pod, type_: &str, with_reason: bool) -> Option<String> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?;
    Some(match (&condition.status[..], &condition.reason) {
        ("True", _) => "True".to_string(),
        (status, Some(reason)) if with_reason => format!("{status} ({reason})"),
        (status, _) => status.to_string(),
    })
}

impl PodView {
    fn of(pod: &Pod) -> PodView {
        let gate_type = pod
            .spec
            .as_ref()
            .and_then(|s| s.readiness_gates.as_ref())
            .and_then(|g| g.first())
            .map(|g| g.condition_type.clone());
        let gate = match &gate_type {
            Some(t) => format!(
                "gate {}",
                condition_text(pod, t, true).unwrap_or_else(|| "-".into())
            ),
            None => "no gate".to_string(),
        };
        let ready = match condition_text(pod, "Ready", false).as_deref() {
            Some("True") => "Ready",
            Some(_) => "NotReady",
            None => "-",
        };
        PodView {
            node: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_else(|| "-".into()),
            ip: pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_else(|| "-".into()),
            ready: ready.to_string(),
            gate,
            terminating: pod.metadata.deletion_timestamp.is_some(),
        }
    }
}

/// Prints every change of a pod in `namespaces`.
pub async fn follow_pods(sandbox: &Sandbox, namespaces: &BTreeSet<String>, clock: Instant) {
    let pods: Api<Pod> = Api::all(sandbox.client());
    let mut events = watcher(pods, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut seen: HashMap<String, PodView> = HashMap::new();
    let shown = |pod: &Pod| namespaces.contains(&pod.namespace().unwrap_or_default());
    let label = |pod: &Pod| match namespaces.len() {
        1 => pod.name_any(),
        _ => format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any()),
    };
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) if shown(&pod) => {
                let name = label(&pod);
                let view = PodView::of(&pod);
                if seen.get(&name) == Some(&view) {
                    continue;
                }
                let terminating = if view.terminating {
                    "  terminating"
                } else {
                    ""
                };
                say(
                    clock,
                    &format!(
                        "pod {name:<22} {:<15} ip {:<14} {:<9} {}{terminating}",
                        view.node, view.ip, view.ready, view.gate
                    ),
                );
                seen.insert(name, view);
            }
            Ok(watcher::Event::Delete(pod)) if shown(&pod) => {
                let name = label(&pod);
                seen.remove(&name);
                say(clock, &format!("pod {name:<22} deleted"));
            }
            Ok(_) => {}
            Err(err) => say(clock, &format!("pod watch: {err}")),
        }
    }
}

/// Prints every health state change of the targets of `groups` ((ARN, name) pairs), from the
/// emulator.
pub async fn follow_targets(control: ControlClient, groups: Vec<(String, String)>, clock: Instant) {
    let mut printed: HashMap<(String, String, u16), usize> = HashMap::new();
    loop {
        for (arn, name) in &groups {
            let Ok(targets) = control.targets(arn).await else {
                continue;
            };
            for target in targets {
                let key = (arn.clone(), target.id.clone(), target.port);
                let shown = printed.entry(key).or_default();
                for event in target.timeline.iter().skip(*shown) {
                    let reason = event
                        .reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default();
                    say(
                        clock,
                        &format!(
                            "target {}:{} in target group {name}: {}{reason}",
                            target.id, target.port, event.state
                        ),
                    );
                }
                *shown = target.timeline.len();
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A request through the ALB every 2 s, to show who answers.
pub async fn send_requests(sandbox: &Sandbox, alb: SocketAddr, name: &str, clock: Instant) {
    let guard = sandbox.guard();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let line = match http_client::get(&guard, alb, "/", Duration::from_secs(2)).await {
            Ok(response) => format!(
                "    GET http://{name}/ -> {} {}",
                response.status,
                String::from_utf8_lossy(&response.body).trim()
            ),
            Err(err) => format!("    GET http://{name}/ failed: {err}"),
        };
        say(clock, &line);
    }
}
