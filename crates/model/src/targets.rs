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

pub(crate) fn port_text(port: &IntOrString) -> String {
    match port {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// The port a Service port's targets take: its node port for instance targets (None without
/// one), else its target port (the Service port when none is given).
pub(crate) fn target_port(port: &ServicePort, target_type: TargetType) -> Option<IntOrString> {
    match target_type {
        TargetType::Instance => port.node_port.map(IntOrString::Int),
        TargetType::Ip => Some(
            port.target_port
                .clone()
                .unwrap_or(IntOrString::Int(port.port)),
        ),
    }
}

/// A target group's port for targets on `target_port`. A named port can differ per pod and is
/// not in the data path (targets register with their own port): upstream writes 1.
pub(crate) fn target_group_port(target_port: &IntOrString) -> u16 {
    match target_port {
        IntOrString::Int(n) => u16::try_from(*n).unwrap_or(u16::MAX),
        IntOrString::String(_) => 1,
    }
}

/// Whether the Service has the IPv6 family: its ip targets are IPv6 addresses.
pub(crate) fn has_ipv6_family(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ip_families.as_ref())
        .is_some_and(|families| families.iter().any(|f| f == "IPv6"))
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
#[path = "targets_tests.rs"]
mod tests;
