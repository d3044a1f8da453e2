//! The targets a TargetGroupBinding wants registered, computed from snapshots (no I/O).
//!
//! ip targets: the Service's EndpointSlices, for the bound Service port, give each endpoint's pod
//! address and resolved target port. An endpoint is wanted when it is ready, or when its pod's
//! containers are ready and it carries a readiness gate of this binding (not terminating):
//! pre-registration while the gate is False, so the load balancer starts checking before
//! Kubernetes calls the pod Ready, and no gap while the EndpointSlice catches up after the flip. Terminating endpoints and pods being deleted are never wanted: their targets are
//! deregistered the moment deletion starts.
//!
//! instance targets: the selected Ready nodes' instance IDs (from `providerID`), at the Service
//! port's NodePort.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use lb_api::{TargetGroupBinding, TargetType, keys};
use lb_aws::TargetKey;

use crate::selectors::label_selector_matches;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesiredError {
    #[error("Service {service} has no port {port}")]
    ServicePortNotFound { service: String, port: String },
    #[error(
        "Service {service} port {port} has no NodePort; instance targets need a NodePort or LoadBalancer Service"
    )]
    NoNodePort { service: String, port: String },
    #[error(
        "no EndpointSlice of Service {service} has a port for Service port {port}: check that its targetPort matches a containerPort"
    )]
    NoEndpointPort { service: String, port: String },
}

/// What the binding wants, and which target each pod is (for its readiness gate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub targets: BTreeSet<TargetKey>,
    /// Pod name (in the binding's namespace) -> its target, for every endpoint with a pod, wanted
    /// or not.
    pub pod_targets: BTreeMap<String, TargetKey>,
}

pub fn find_service_port<'a>(
    service: &'a Service,
    port: &IntOrString,
) -> Result<&'a ServicePort, DesiredError> {
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    ports
        .iter()
        .find(|p| match port {
            IntOrString::Int(number) => p.port == *number,
            IntOrString::String(name) => p.name.as_deref() == Some(name.as_str()),
        })
        .ok_or_else(|| DesiredError::ServicePortNotFound {
            service: service.metadata.name.clone().unwrap_or_default(),
            port: port_text(port),
        })
}

fn port_text(port: &IntOrString) -> String {
    match port {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// Whether a pod carries a readiness gate of `binding` (ours or the upstream's).
pub fn has_gate(pod: &Pod, binding: &str) -> bool {
    let types = keys::gate_condition_types(binding);
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some_and(|gates| gates.iter().any(|g| types.contains(&g.condition_type)))
}

pub fn condition_status<'a>(pod: &'a Pod, type_: &str) -> Option<&'a str> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

pub fn ip_targets(
    binding: &TargetGroupBinding,
    service: &Service,
    slices: &[Arc<EndpointSlice>],
    pod: &dyn Fn(&str) -> Option<Arc<Pod>>,
) -> Result<Desired, DesiredError> {
    let binding_name = binding.metadata.name.clone().unwrap_or_default();
    let service_port = find_service_port(service, &binding.spec.service_ref.port)?;
    let port_name = service_port.name.clone().filter(|n| !n.is_empty());
    let mut desired = Desired::default();
    let mut saw_endpoints = false;
    let mut saw_port = false;
    for slice in slices {
        if !slice.endpoints.is_empty() {
            saw_endpoints = true;
        }
        let Some(port) = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.clone().filter(|n| !n.is_empty()) == port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        saw_port = true;
        for endpoint in &slice.endpoints {
            let Some(address) = endpoint.addresses.first() else {
                continue;
            };
            let target = TargetKey::new(address.clone(), port);
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let pod_name = endpoint
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name.clone());
            let pod = pod_name.as_deref().and_then(pod);
            let deleting = pod
                .as_ref()
                .is_some_and(|p| p.metadata.deletion_timestamp.is_some());
            if let Some(name) = &pod_name {
                desired.pod_targets.insert(name.clone(), target.clone());
            }
            if terminating || deleting {
                continue;
            }
            // Not ready, yet wanted: a pod whose containers are ready and which carries our gate.
            // While the gate is False that is pre-registration; once we set it True the slice
            // still says not ready for a moment, and the target must stay registered meanwhile.
            let wanted = ready
                || pod.as_ref().is_some_and(|p| {
                    condition_status(p, "ContainersReady") == Some("True")
                        && has_gate(p, &binding_name)
                });
            if wanted {
                desired.targets.insert(target);
            }
        }
    }
    if saw_endpoints && !saw_port {
        return Err(DesiredError::NoEndpointPort {
            service: service.metadata.name.clone().unwrap_or_default(),
            port: port_text(&binding.spec.service_ref.port),
        });
    }
    Ok(desired)
}

/// The instance ID in a node's `providerID` (`aws:///us-west-2a/i-0123...`).
pub fn instance_id(node: &Node) -> Option<String> {
    let provider = node.spec.as_ref()?.provider_id.as_deref()?;
    let id = provider.strip_prefix("aws://")?.rsplit('/').next()?;
    id.starts_with("i-").then(|| id.to_string())
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn instance_targets(
    binding: &TargetGroupBinding,
    service: &Service,
    nodes: &[Arc<Node>],
) -> Result<Desired, DesiredError> {
    let service_port = find_service_port(service, &binding.spec.service_ref.port)?;
    let node_port = service_port
        .node_port
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| DesiredError::NoNodePort {
            service: service.metadata.name.clone().unwrap_or_default(),
            port: port_text(&binding.spec.service_ref.port),
        })?;
    let selector = binding.spec.node_selector.clone().unwrap_or_default();
    let targets = nodes
        .iter()
        .filter(|n| node_ready(n) && n.metadata.deletion_timestamp.is_none())
        .filter(|n| label_selector_matches(&selector, n.metadata.labels.as_ref()))
        .filter_map(|n| instance_id(n))
        .map(|id| TargetKey::new(id, node_port))
        .collect();
    Ok(Desired {
        targets,
        pod_targets: BTreeMap::new(),
    })
}

pub fn target_type_of(binding: &TargetGroupBinding, group_type: &str) -> Option<TargetType> {
    binding.spec.target_type.or(match group_type {
        "ip" => Some(TargetType::Ip),
        "instance" => Some(TargetType::Instance),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GATE: &str = "target-health.alb.ingress.k8s.aws/web";

    fn binding(port: serde_json::Value) -> TargetGroupBinding {
        serde_json::from_value(json!({
            "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"targetGroupARN": "arn", "serviceRef": {"name": "web", "port": port}},
        }))
        .unwrap()
    }

    fn service() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080},
                {"name": "admin", "port": 9000},
            ]},
        }))
        .unwrap()
    }

    /// (address, pod, ready, terminating)
    fn slice(
        port_name: &str,
        port: i32,
        endpoints: &[(&str, &str, bool, bool)],
    ) -> Arc<EndpointSlice> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "web-x", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4",
                "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
                "endpoints": endpoints.iter().map(|(ip, pod, ready, terminating)| json!({
                    "addresses": [ip],
                    "conditions": {"ready": ready, "serving": ready, "terminating": terminating},
                    "targetRef": {"kind": "Pod", "name": pod, "namespace": "shop"},
                })).collect::<Vec<_>>(),
            }))
            .unwrap(),
        )
    }

    fn pod(name: &str, containers_ready: bool, gate: Option<&str>, deleting: bool) -> Arc<Pod> {
        let mut conditions = vec![
            json!({"type": "ContainersReady", "status": if containers_ready {"True"} else {"False"}}),
        ];
        if let Some(status) = gate {
            conditions.push(json!({"type": GATE, "status": status}));
        }
        let mut value = json!({
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"containers": [], "readinessGates": [{"conditionType": GATE}]},
            "status": {"conditions": conditions},
        });
        if deleting {
            value["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        Arc::new(serde_json::from_value(value).unwrap())
    }

    fn lookup(pods: Vec<Arc<Pod>>) -> impl Fn(&str) -> Option<Arc<Pod>> {
        move |name| {
            pods.iter()
                .find(|p| p.metadata.name.as_deref() == Some(name))
                .cloned()
        }
    }

    fn keys(desired: &Desired) -> Vec<String> {
        desired.targets.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn ready_endpoints_are_targets_at_the_resolved_port() {
        let slices = [slice(
            "http",
            8080,
            &[
                ("10.0.0.1", "a", true, false),
                ("10.0.0.2", "b", true, false),
            ],
        )];
        let desired =
            ip_targets(&binding(json!(80)), &service(), &slices, &lookup(vec![])).unwrap();
        assert_eq!(keys(&desired), ["10.0.0.1:8080", "10.0.0.2:8080"]);
        assert_eq!(desired.pod_targets["a"].to_string(), "10.0.0.1:8080");
        // Port by name gives the same.
        let by_name = ip_targets(
            &binding(json!("http")),
            &service(),
            &slices,
            &lookup(vec![]),
        )
        .unwrap();
        assert_eq!(by_name.targets, desired.targets);
    }

    #[test]
    fn gated_pods_are_pre_registered_before_they_are_ready() {
        let slices = [slice(
            "http",
            8080,
            &[
                ("10.0.0.1", "gated", false, false),
                ("10.0.0.2", "probing", false, false),
                ("10.0.0.3", "flipped", false, false),
            ],
        )];
        let pods = lookup(vec![
            pod("gated", true, Some("False"), false),
            pod("probing", false, None, false),
            pod("flipped", true, Some("True"), false),
        ]);
        let desired = ip_targets(&binding(json!(80)), &service(), &slices, &pods).unwrap();
        // Pods held back by our gate, or whose gate was just opened while the slice lags; never
        // a pod whose containers are not ready.
        assert_eq!(keys(&desired), ["10.0.0.1:8080", "10.0.0.3:8080"]);
    }

    #[test]
    fn terminating_endpoints_and_deleted_pods_are_dropped_at_once() {
        let slices = [slice(
            "http",
            8080,
            &[
                ("10.0.0.1", "leaving", true, true),
                ("10.0.0.2", "deleted", true, false),
                ("10.0.0.3", "staying", true, false),
            ],
        )];
        let pods = lookup(vec![pod("deleted", true, Some("True"), true)]);
        let desired = ip_targets(&binding(json!(80)), &service(), &slices, &pods).unwrap();
        assert_eq!(keys(&desired), ["10.0.0.3:8080"]);
    }

    #[test]
    fn bad_ports_name_the_problem() {
        let slices = [slice("http", 8080, &[("10.0.0.1", "a", true, false)])];
        let err =
            ip_targets(&binding(json!(81)), &service(), &slices, &lookup(vec![])).unwrap_err();
        assert_eq!(err.to_string(), "Service web has no port 81");
        let err = ip_targets(
            &binding(json!("admin")),
            &service(),
            &slices,
            &lookup(vec![]),
        )
        .unwrap_err();
        assert!(matches!(err, DesiredError::NoEndpointPort { .. }), "{err}");
        // No endpoints at all is no error: there is nothing to register.
        assert!(
            ip_targets(&binding(json!("admin")), &service(), &[], &lookup(vec![]))
                .unwrap()
                .targets
                .is_empty()
        );
    }

    #[test]
    fn instance_targets_are_ready_selected_nodes_at_the_node_port() {
        let node = |name: &str, ready: bool, pool: &str| -> Arc<Node> {
            Arc::new(serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"pool": pool}},
                "spec": {"providerID": format!("aws:///us-west-2a/i-0{name}")},
                "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
            })).unwrap())
        };
        let nodes = [
            node("a1", true, "web"),
            node("b2", false, "web"),
            node("c3", true, "batch"),
        ];
        let all = instance_targets(&binding(json!(80)), &service(), &nodes).unwrap();
        assert_eq!(keys(&all), ["i-0a1:30080", "i-0c3:30080"]);
        let mut selective = binding(json!("http"));
        selective.spec.node_selector =
            Some(serde_json::from_value(json!({"matchLabels": {"pool": "web"}})).unwrap());
        assert_eq!(
            keys(&instance_targets(&selective, &service(), &nodes).unwrap()),
            ["i-0a1:30080"]
        );
        let err = instance_targets(&binding(json!("admin")), &service(), &nodes).unwrap_err();
        assert!(matches!(err, DesiredError::NoNodePort { .. }));
    }

    #[test]
    fn target_type_defaults_to_the_target_group_s() {
        let b = binding(json!(80));
        assert_eq!(target_type_of(&b, "ip"), Some(TargetType::Ip));
        assert_eq!(target_type_of(&b, "lambda"), None);
        let mut explicit = b.clone();
        explicit.spec.target_type = Some(TargetType::Instance);
        assert_eq!(target_type_of(&explicit, "ip"), Some(TargetType::Instance));
    }
}
