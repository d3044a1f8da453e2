//! Unit tests of [`super`]: desired targets from endpoints and nodes.

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
fn slice(port_name: &str, port: i32, endpoints: &[(&str, &str, bool, bool)]) -> Arc<EndpointSlice> {
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
    let desired = ip_targets(&binding(json!(80)), &service(), &slices, &lookup(vec![])).unwrap();
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
    let err = ip_targets(&binding(json!(81)), &service(), &slices, &lookup(vec![])).unwrap_err();
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
