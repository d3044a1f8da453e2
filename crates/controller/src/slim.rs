//! What the watch caches keep of the objects there are many of: only the fields the controller
//! reads. At 2,000 pods a whole pod (containers, volumes, env, status of each container) is most
//! of the controller's memory; the fields kept here are what `pod_relevance`, the target and gate
//! model ([`lb_model::targets`], [`lb_model::gates`]) and the Service and Ingress models read.
//! The admission webhooks read the object under review, never these copies.
//!
//! A field added to the model must be kept here too; the tests below pin what is kept.

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Node, NodeSpec, NodeStatus, Pod, PodSpec, PodStatus,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use lb_model::target_rules::POD_ENI_ANNOTATION;

/// The identity, labels and deletion mark of an object.
fn slim_meta(meta: &mut ObjectMeta) {
    let kept = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        labels: meta.labels.take(),
        deletion_timestamp: meta.deletion_timestamp.take(),
        ..ObjectMeta::default()
    };
    *meta = kept;
}

/// A pod: its readiness gates, node, address and conditions; its containers' ports (named
/// ports in a binding's `networking` are resolved per pod) and its branch interface annotation
/// (security groups for pods); and its creation time (a pod older than its binding is expected
/// to have no gate).
pub fn pod(pod: &mut Pod) {
    let branch = pod
        .metadata
        .annotations
        .as_mut()
        .and_then(|a| a.remove_entry(POD_ENI_ANNOTATION));
    let created = pod.metadata.creation_timestamp.take();
    slim_meta(&mut pod.metadata);
    pod.metadata.annotations = branch.map(|entry| [entry].into());
    pod.metadata.creation_timestamp = created;
    pod.spec = pod.spec.take().map(|spec| PodSpec {
        readiness_gates: spec.readiness_gates,
        node_name: spec.node_name,
        containers: spec
            .containers
            .into_iter()
            .filter(|c| c.ports.as_ref().is_some_and(|p| !p.is_empty()))
            .map(|c| Container {
                name: c.name,
                ports: c.ports.map(|ports| {
                    ports
                        .into_iter()
                        .map(|p| ContainerPort {
                            name: p.name,
                            container_port: p.container_port,
                            protocol: p.protocol,
                            ..ContainerPort::default()
                        })
                        .collect()
                }),
                ..Container::default()
            })
            .collect(),
        ..PodSpec::default()
    });
    pod.status = pod.status.take().map(|status| PodStatus {
        pod_ip: status.pod_ip,
        pod_ips: status.pod_ips,
        // Whole: a gate patch compares status, reason and message.
        conditions: status.conditions,
        phase: status.phase,
        ..PodStatus::default()
    });
}

/// A node: its labels, instance ID, taints and Ready condition.
pub fn node(node: &mut Node) {
    slim_meta(&mut node.metadata);
    node.spec = node.spec.take().map(|spec| NodeSpec {
        provider_id: spec.provider_id,
        taints: spec.taints,
        unschedulable: spec.unschedulable,
        ..NodeSpec::default()
    });
    node.status = node.status.take().map(|status| NodeStatus {
        addresses: status.addresses,
        conditions: status.conditions.map(|conditions| {
            conditions
                .into_iter()
                .filter(|c| c.type_ == "Ready")
                .map(|mut c| {
                    c.message = None;
                    c.last_heartbeat_time = None;
                    c
                })
                .collect()
        }),
        ..NodeStatus::default()
    });
}

/// An EndpointSlice: its endpoints and ports (no topology hints).
pub fn endpoint_slice(slice: &mut EndpointSlice) {
    slim_meta(&mut slice.metadata);
    for endpoint in &mut slice.endpoints {
        endpoint.hints = None;
        endpoint.deprecated_topology = None;
        if let Some(target) = endpoint.target_ref.as_mut() {
            target.resource_version = None;
            target.field_path = None;
            target.api_version = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn pod_json() -> serde_json::Value {
        json!({
            "metadata": {"name": "web-1", "namespace": "app", "uid": "u1", "resourceVersion": "7",
                "creationTimestamp": "2026-12-01T00:00:00Z",
                "labels": {"app": "web"}, "annotations": {"big": "x".repeat(1000),
                    "vpc.amazonaws.com/pod-eni": "[{\"eniId\":\"eni-1\"}]"},
                "deletionTimestamp": "2026-12-02T00:00:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "r"}]},
            "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx",
                "env": [{"name": "A", "value": "b"}],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP", "hostPort": 80}]},
                {"name": "sidecar", "image": "envoy"}],
                "readinessGates": [{"conditionType": "target-health.elbv2.k8s.aws/web"}]},
            "status": {"podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}], "phase": "Running",
                "conditions": [{"type": "ContainersReady", "status": "True",
                    "lastTransitionTime": "2026-12-02T00:00:00Z"},
                    {"type": "target-health.elbv2.k8s.aws/web", "status": "False", "reason": "Elb.RegistrationInProgress", "message": "m"}],
                "containerStatuses": [{"name": "app", "image": "nginx", "imageID": "", "ready": true, "restartCount": 0}]}
        })
    }

    #[test]
    fn a_pod_keeps_what_the_model_reads() {
        let mut pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod_json()).unwrap();
        super::pod(&mut pod);
        let mut kept = serde_json::to_value(&pod).unwrap();
        kept.as_object_mut()
            .unwrap()
            .retain(|k, _| k != "apiVersion" && k != "kind");
        assert_eq!(
            kept,
            json!({
                "metadata": {"name": "web-1", "namespace": "app", "uid": "u1", "resourceVersion": "7",
                    "creationTimestamp": "2026-12-01T00:00:00Z",
                    "labels": {"app": "web"}, "deletionTimestamp": "2026-12-02T00:00:00Z",
                    "annotations": {"vpc.amazonaws.com/pod-eni": "[{\"eniId\":\"eni-1\"}]"}},
                "spec": {"nodeName": "node-1", "containers": [{"name": "app",
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}],
                    "readinessGates": [{"conditionType": "target-health.elbv2.k8s.aws/web"}]},
                "status": {"podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}], "phase": "Running",
                    "conditions": [{"type": "ContainersReady", "status": "True",
                        "lastTransitionTime": "2026-12-02T00:00:00Z"},
                        {"type": "target-health.elbv2.k8s.aws/web", "status": "False", "reason": "Elb.RegistrationInProgress", "message": "m"}]}
            })
        );
    }

    #[test]
    fn a_node_keeps_its_instance_taints_and_readiness() {
        let mut node: k8s_openapi::api::core::v1::Node = serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "a"}},
            "spec": {"providerID": "aws:///us-west-2a/i-0abc", "podCIDR": "10.0.0.0/24",
                "taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {"images": [{"names": ["nginx"], "sizeBytes": 1}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                "conditions": [{"type": "Ready", "status": "True", "message": "ok"},
                    {"type": "MemoryPressure", "status": "False"}]}
        }))
        .unwrap();
        super::node(&mut node);
        let mut kept = serde_json::to_value(&node).unwrap();
        kept.as_object_mut()
            .unwrap()
            .retain(|k, _| k != "apiVersion" && k != "kind");
        assert_eq!(
            kept,
            json!({
                "metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "a"}},
                "spec": {"providerID": "aws:///us-west-2a/i-0abc",
                    "taints": [{"key": "k", "effect": "NoSchedule"}]},
                "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                    "conditions": [{"type": "Ready", "status": "True"}]}
            })
        );
        assert_eq!(
            lb_model::targets::instance_id(&node).as_deref(),
            Some("i-0abc")
        );
    }
}
