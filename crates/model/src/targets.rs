//! The targets a TargetGroupBinding wants registered, computed from snapshots (no I/O).
//!
//! ip targets: the Service's EndpointSlices of the binding's address type (IPv4 unless
//! `ipAddressType: ipv6`), for the bound Service port, give each endpoint's pod address and
//! resolved target port. An endpoint is wanted when it is ready, or when its pod's containers are
//! ready and it carries a readiness gate of this binding (not terminating): pre-registration while
//! the gate is False, so the load balancer starts checking before Kubernetes calls the pod Ready,
//! and no gap while the EndpointSlice catches up after the flip. Terminating endpoints and pods
//! being deleted are never wanted: their targets are deregistered the moment deletion starts.
//!
//! instance targets: the Ready nodes eligible for load balancers (not control-plane, not excluded
//! by label, not Fargate, not tainted for removal) that match the binding's `nodeSelector`, by
//! instance ID (from `providerID`), at the Service port's NodePort.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service, ServicePort};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use lb_api::keys::kubernetes::{
    COMPUTE_TYPE_FARGATE, COMPUTE_TYPE_LABEL, CONTAINERS_READY, KARPENTER_DISRUPTED_TAINT,
    NODE_EXCLUDE_LABELS, READY, TO_BE_DELETED_TAINT,
};
use lb_api::{TargetGroupBinding, TargetType};

use crate::elb::{TargetGroupInfo, TargetKey};
use crate::gates::gate_types_on;
use crate::selectors::label_selector_matches;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesiredError {
    #[error("spec.serviceRef.port {port}: Service {service} has no such port")]
    ServicePortNotFound { service: String, port: String },
    #[error(
        "Service {service} port {port} has no NodePort; instance targets need a NodePort or LoadBalancer Service"
    )]
    NoNodePort { service: String, port: String },
    #[error(
        "no EndpointSlice of Service {service} has a port for Service port {port}: check that its targetPort matches a containerPort"
    )]
    NoEndpointPort { service: String, port: String },
    #[error("spec.serviceRef.name {name:?}: Service {namespace}/{name} was not found")]
    ServiceNotFound { namespace: String, name: String },
    #[error(
        "target group {target_group} has target type {group_type}, which a TargetGroupBinding cannot fill"
    )]
    UnsupportedTargetType {
        target_group: String,
        group_type: String,
    },
    #[error(
        "spec.targetType is {binding} but target group {target_group} has target type {group_type}"
    )]
    TargetTypeMismatch {
        binding: String,
        target_group: String,
        group_type: String,
    },
}

/// What the binding wants, and which target each pod is (for its readiness gate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub targets: BTreeSet<TargetKey>,
    /// Pod name (in the binding's namespace) -> its target, for every endpoint with a pod, wanted
    /// or not.
    pub pod_targets: BTreeMap<String, TargetKey>,
    /// Every target that belongs to this cluster, wanted or not: each endpoint of the Service
    /// (ip), each node's instance at the NodePort (instance). With `multiClusterTargetGroup`, only
    /// these are ever deregistered.
    pub known: BTreeSet<TargetKey>,
}

/// What the cluster holds for a binding, from the watch caches.
pub struct ClusterView<'a> {
    /// The bound Service, if it exists.
    pub service: Option<&'a Service>,
    /// The Service's EndpointSlices.
    pub slices: &'a [Arc<EndpointSlice>],
    /// A pod of the binding's namespace by name.
    pub pod: &'a dyn Fn(&str) -> Option<Arc<Pod>>,
    pub nodes: &'a [Arc<Node>],
}

/// The binding's target type and desired targets, checked against its target group: the type
/// the binding names must be the group's (absent: the group's), and the Service must exist.
pub fn desired_targets(
    binding: &TargetGroupBinding,
    group: &TargetGroupInfo,
    cluster: &ClusterView,
) -> Result<(TargetType, Desired), DesiredError> {
    let target_type = target_type_of(binding, &group.target_type).ok_or_else(|| {
        DesiredError::UnsupportedTargetType {
            target_group: group.arn.clone(),
            group_type: group.target_type.clone(),
        }
    })?;
    if target_type.as_str() != group.target_type {
        return Err(DesiredError::TargetTypeMismatch {
            binding: target_type.as_str().to_string(),
            target_group: group.arn.clone(),
            group_type: group.target_type.clone(),
        });
    }
    let service = cluster
        .service
        .ok_or_else(|| DesiredError::ServiceNotFound {
            namespace: binding.metadata.namespace.clone().unwrap_or_default(),
            name: binding.spec.service_ref.name.clone(),
        })?;
    let desired = match target_type {
        TargetType::Ip => ip_targets(binding, service, cluster.slices, cluster.pod)?,
        TargetType::Instance => instance_targets(binding, service, cluster.nodes)?,
    };
    Ok((target_type, desired))
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

pub fn condition_status<'a>(pod: &'a Pod, type_: &str) -> Option<&'a str> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

/// The EndpointSlice address type a binding reads: `IPv6` for `ipAddressType: ipv6`, else `IPv4`.
fn slice_address_type(binding: &TargetGroupBinding) -> &'static str {
    match binding.spec.ip_address_type.as_deref() {
        Some("ipv6") => "IPv6",
        _ => "IPv4",
    }
}

/// The slice's port for the Service port named `port_name` (unnamed ports match unnamed).
fn slice_port(slice: &EndpointSlice, port_name: Option<&str>) -> Option<u16> {
    slice
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref().filter(|n| !n.is_empty()) == port_name)
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
}

pub fn ip_targets(
    binding: &TargetGroupBinding,
    service: &Service,
    slices: &[Arc<EndpointSlice>],
    pod: &dyn Fn(&str) -> Option<Arc<Pod>>,
) -> Result<Desired, DesiredError> {
    let binding_name = binding.metadata.name.clone().unwrap_or_default();
    let service_port = find_service_port(service, &binding.spec.service_ref.port)?;
    let port_name = service_port.name.as_deref().filter(|n| !n.is_empty());
    let address_type = slice_address_type(binding);
    let mut desired = Desired::default();
    let mut saw_endpoints = false;
    let mut saw_port = false;
    for slice in slices.iter().filter(|s| s.address_type == address_type) {
        saw_endpoints |= !slice.endpoints.is_empty();
        let Some(port) = slice_port(slice, port_name) else {
            continue;
        };
        saw_port = true;
        for endpoint in &slice.endpoints {
            let Some(address) = endpoint.addresses.first() else {
                continue;
            };
            let target = TargetKey::new(address.clone(), port);
            let pod_name = endpoint
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name.clone());
            let pod = pod_name.as_deref().and_then(pod);
            if endpoint_wanted(endpoint, pod.as_deref(), &binding_name) {
                desired.targets.insert(target.clone());
            }
            desired.known.insert(target.clone());
            if let Some(name) = pod_name {
                desired.pod_targets.insert(name, target);
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

/// Whether an endpoint should be a target. Terminating endpoints and pods being deleted never
/// are. A ready endpoint is. A not-ready one is when its pod's containers are ready and it carries
/// a gate of this binding: while the gate is False that is pre-registration; once we set it True
/// the slice still says not ready for a moment, and the target must stay registered meanwhile.
fn endpoint_wanted(endpoint: &Endpoint, pod: Option<&Pod>, binding: &str) -> bool {
    let conditions = endpoint.conditions.as_ref();
    let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
    let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
    let deleting = pod.is_some_and(|p| p.metadata.deletion_timestamp.is_some());
    if terminating || deleting {
        return false;
    }
    ready
        || pod.is_some_and(|p| {
            condition_status(p, CONTAINERS_READY) == Some("True")
                && !gate_types_on(p, binding).is_empty()
        })
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
        .is_some_and(|c| c.iter().any(|c| c.type_ == READY && c.status == "True"))
}

/// Whether a node may carry instance targets at all, before the binding's `nodeSelector`: not a
/// control-plane node, not excluded from load balancers by label, not a Fargate node, not tainted
/// for removal (the upstream controller's default node selection).
pub fn node_eligible(node: &Node) -> bool {
    let labels = node.metadata.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key));
    if NODE_EXCLUDE_LABELS.iter().any(|key| label(key).is_some())
        || label(COMPUTE_TYPE_LABEL).map(String::as_str) == Some(COMPUTE_TYPE_FARGATE)
    {
        return false;
    }
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_ref());
    !taints.into_iter().flatten().any(|t| {
        t.key == TO_BE_DELETED_TAINT
            || (t.key == KARPENTER_DISRUPTED_TAINT && t.effect == "NoSchedule")
    })
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
        .filter(|n| node_ready(n) && n.metadata.deletion_timestamp.is_none() && node_eligible(n))
        .filter(|n| label_selector_matches(&selector, n.metadata.labels.as_ref()))
        .filter_map(|n| instance_id(n))
        .map(|id| TargetKey::new(id, node_port))
        .collect();
    let known = nodes
        .iter()
        .filter_map(|n| instance_id(n))
        .map(|id| TargetKey::new(id, node_port))
        .collect();
    Ok(Desired {
        targets,
        pod_targets: BTreeMap::new(),
        known,
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
        assert_eq!(
            err.to_string(),
            "spec.serviceRef.port 81: Service web has no such port"
        );
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
    fn control_plane_excluded_fargate_and_departing_nodes_are_never_targets() {
        let node = |name: &str, extra: serde_json::Value| -> Arc<Node> {
            let mut value = json!({
                "metadata": {"name": name, "labels": {"pool": "web"}},
                "spec": {"providerID": format!("aws:///us-west-2a/i-0{name}")},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            });
            if let Some(labels) = extra.get("labels").and_then(|l| l.as_object()) {
                for (k, v) in labels {
                    value["metadata"]["labels"][k] = v.clone();
                }
            }
            if let Some(taints) = extra.get("taints") {
                value["spec"]["taints"] = taints.clone();
            }
            Arc::new(serde_json::from_value(value).unwrap())
        };
        let nodes = [
            node("a1", json!({})),
            node(
                "b1",
                json!({"labels": {"node-role.kubernetes.io/control-plane": ""}}),
            ),
            node(
                "b2",
                json!({"labels": {"node-role.kubernetes.io/master": ""}}),
            ),
            node(
                "b3",
                json!({"labels": {"node.kubernetes.io/exclude-from-external-load-balancers": "true"}}),
            ),
            node(
                "b4",
                json!({"labels": {"alpha.service-controller.kubernetes.io/exclude-balancer": "true"}}),
            ),
            node(
                "b5",
                json!({"labels": {"eks.amazonaws.com/compute-type": "fargate"}}),
            ),
            node(
                "b6",
                json!({"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]}),
            ),
            node(
                "b7",
                json!({"taints": [{"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]}),
            ),
            node(
                "c1",
                json!({"labels": {"eks.amazonaws.com/compute-type": "ec2"}}),
            ),
            node(
                "c2",
                json!({"taints": [{"key": "karpenter.sh/disrupted", "effect": "PreferNoSchedule"}]}),
            ),
        ];
        let all = instance_targets(&binding(json!(80)), &service(), &nodes).unwrap();
        assert_eq!(keys(&all), ["i-0a1:30080", "i-0c1:30080", "i-0c2:30080"]);
        // The binding's nodeSelector narrows further; it never brings an excluded node back.
        let mut selective = binding(json!(80));
        selective.spec.node_selector = Some(
            serde_json::from_value(
                json!({"matchExpressions": [{"key": "pool", "operator": "Exists"}]}),
            )
            .unwrap(),
        );
        let selected = instance_targets(&selective, &service(), &nodes).unwrap();
        assert_eq!(selected.targets, all.targets);
    }

    #[test]
    fn only_slices_of_the_binding_s_address_type_count() {
        let mut v6 = (*slice("http", 8080, &[("fd00::1", "a", true, false)])).clone();
        v6.address_type = "IPv6".to_string();
        let slices = [
            slice("http", 8080, &[("10.0.0.1", "a", true, false)]),
            Arc::new(v6),
        ];
        let ipv4 = ip_targets(&binding(json!(80)), &service(), &slices, &lookup(vec![])).unwrap();
        assert_eq!(keys(&ipv4), ["10.0.0.1:8080"]);
        let mut six = binding(json!(80));
        six.spec.ip_address_type = Some("ipv6".to_string());
        let ipv6 = ip_targets(&six, &service(), &slices, &lookup(vec![])).unwrap();
        assert_eq!(keys(&ipv6), ["fd00::1:8080"]);
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
