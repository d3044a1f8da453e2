//! What the pod webhook does to a pod being created (pure; the server lives in the controller).
//!
//! In namespaces labelled `elbv2.k8s.aws/pod-readiness-gate-inject=enabled`, a pod created behind
//! an `ip` TargetGroupBinding (the binding's Service selects the pod) gets the readiness gate
//! `target-health.alb.ingress.k8s.aws/<binding>`; a pod that already carries it, or the upstream
//! controller's `target-health.elbv2.k8s.aws/<binding>`, keeps what it has. Such a pod also gets
//! the termination hold (see [`crate::termination`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use json_patch::{AddOperation, PatchOperation};
use k8s_openapi::api::core::v1::{Pod, Service};
use lb_api::{TargetGroupBinding, TargetType, keys};
use serde_json::json;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::gates::injection_enabled;
use crate::selectors::service_selects;
use crate::stack::Binding;
use crate::targets::find_service_port;
use crate::termination;

/// The longest binding name a readiness gate can carry: its condition type is a qualified name,
/// whose name part (after the prefix's `/`) Kubernetes caps at 63 characters.
pub const MAX_GATED_NAME: usize = 63;

/// The webhook's answer for one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodMutation {
    /// The bindings behind which the pod is created.
    pub bindings: Vec<String>,
    /// The gate condition types added.
    pub gates: Vec<String>,
    /// The termination hold applied (zero when none).
    pub hold: Duration,
    pub operations: Vec<PatchOperation>,
    /// Admission warnings for the user (an invalid hold annotation, named with its value).
    pub warnings: Vec<String>,
}

/// Decides the mutation of `pod`, created in a namespace with `namespace_labels`, given the
/// namespace's bindings, a lookup of its Services, and `predicted`: the ip bindings the Service
/// and Ingress reconcilers will make for Services selecting the pod (they may not exist yet; a
/// predicted one whose Service port an existing binding already binds is that binding, perhaps
/// under another name: one another controller gave it); `default_hold` is the controller's hold.
pub fn mutate_pod(
    pod: &Pod,
    namespace_labels: Option<&BTreeMap<String, String>>,
    bindings: &[Arc<TargetGroupBinding>],
    service: &dyn Fn(&str) -> Option<Arc<Service>>,
    predicted: &[Binding],
    default_hold: Duration,
) -> PodMutation {
    let mut behind = bindings_behind(pod, namespace_labels, bindings, service);
    if injection_enabled(namespace_labels) {
        // Another stack's binding of the same Service port (one made by hand, another load
        // balancer's) is not the predicted one: only the same stack's is.
        let bound = |p: &Binding| {
            bindings.iter().any(|b| {
                let labels = b.metadata.labels.as_ref();
                b.metadata.deletion_timestamp.is_none()
                    && b.spec.service_ref.name == p.service_name
                    && p.labels
                        .iter()
                        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                    && binds_port(&b.spec.service_ref.port, p, service)
            })
        };
        behind.extend(
            predicted
                .iter()
                .filter(|p| !bound(p))
                .map(|p| p.name.clone()),
        );
        behind.sort();
        behind.dedup();
    }
    if behind.is_empty() {
        return PodMutation::default();
    }
    // A gate on a binding whose name is too long would make the API server refuse the pod:
    // the pod is created ungated on it (still held on termination), and told why.
    let (gated, too_long): (Vec<String>, Vec<String>) = behind
        .iter()
        .cloned()
        .partition(|name| name.len() <= MAX_GATED_NAME);
    let gates = gates_to_inject(pod, &gated);
    let (hold, invalid) = termination::hold_for(pod, default_hold);
    let mut warnings: Vec<String> = invalid
        .map(|invalid| vec![format!("{invalid}; using {}s", hold.as_secs())])
        .unwrap_or_default();
    warnings.extend(too_long.iter().map(|name| {
        format!(
            "TargetGroupBinding {name}: a name over {MAX_GATED_NAME} characters cannot make a readiness gate ({}<name>); the pod is not gated on it",
            keys::GATE_PREFIX
        )
    }));
    let mut operations = gate_patch(pod, &gates);
    operations.extend(termination::hold_patch(pod, hold));
    PodMutation {
        bindings: behind,
        gates,
        hold,
        operations,
        warnings,
    }
}

/// The `ip` bindings whose Service selects `pod`, created in a namespace with these labels: none
/// unless the namespace is labelled for injection.
pub fn bindings_behind(
    pod: &Pod,
    namespace_labels: Option<&BTreeMap<String, String>>,
    bindings: &[Arc<TargetGroupBinding>],
    service: &dyn Fn(&str) -> Option<Arc<Service>>,
) -> Vec<String> {
    if !injection_enabled(namespace_labels) {
        return Vec::new();
    }
    let mut names: Vec<String> = bindings
        .iter()
        .filter(|b| {
            b.spec.target_type == Some(TargetType::Ip) && b.metadata.deletion_timestamp.is_none()
        })
        .filter(|b| {
            service(&b.spec.service_ref.name).is_some_and(|s| {
                service_selects(
                    s.spec.as_ref().and_then(|s| s.selector.as_ref()),
                    pod.metadata.labels.as_ref(),
                )
            })
        })
        .filter_map(|b| b.metadata.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether a binding's Service port (a number, or a port's name) is the predicted binding's.
fn binds_port(
    port: &IntOrString,
    predicted: &Binding,
    service: &dyn Fn(&str) -> Option<Arc<Service>>,
) -> bool {
    match port {
        IntOrString::Int(n) => *n == predicted.service_port,
        IntOrString::String(_) => service(&predicted.service_name).is_some_and(|s| {
            find_service_port(&s, port).is_ok_and(|p| p.port == predicted.service_port)
        }),
    }
}

/// The readiness-gate condition types to add to `pod` behind `bindings` (from [`bindings_behind`]):
/// one per binding, unless the pod already carries ours or the upstream controller's.
pub fn gates_to_inject(pod: &Pod, bindings: &[String]) -> Vec<String> {
    let existing: Vec<&str> = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .map(|g| g.iter().map(|g| g.condition_type.as_str()).collect())
        .unwrap_or_default();
    bindings
        .iter()
        .filter(|name| {
            let [ours, upstream] = keys::gate_condition_types(name);
            !existing.contains(&ours.as_str()) && !existing.contains(&upstream.as_str())
        })
        .map(|name| format!("{}{name}", keys::GATE_PREFIX))
        .collect()
}

/// JSON-patch operations adding `gates` to the pod's readiness gates.
pub fn gate_patch(pod: &Pod, gates: &[String]) -> Vec<PatchOperation> {
    if gates.is_empty() {
        return Vec::new();
    }
    let has_list = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some();
    if has_list {
        gates
            .iter()
            .map(|gate| add("/spec/readinessGates/-", json!({"conditionType": gate})))
            .collect()
    } else {
        let list: Vec<_> = gates.iter().map(|g| json!({"conditionType": g})).collect();
        vec![add("/spec/readinessGates", json!(list))]
    }
}

/// A JSON-patch `add` at `path` (a JSON pointer made by this crate, always valid).
pub(crate) fn add(path: &str, value: serde_json::Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: jsonptr::PointerBuf::parse(path).unwrap_or_default(),
        value,
    })
}

#[cfg(test)]
#[path = "pod_admission_property_tests.rs"]
mod property_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, service: &str, target_type: Option<&str>) -> Arc<TargetGroupBinding> {
        let mut spec =
            json!({"targetGroupARN": "arn", "serviceRef": {"name": service, "port": 80}});
        if let Some(t) = target_type {
            spec["targetType"] = json!(t);
        }
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
                "metadata": {"name": name, "namespace": "shop"}, "spec": spec,
            }))
            .unwrap(),
        )
    }

    fn service(selector: serde_json::Value) -> Arc<Service> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": "web"}, "spec": {"selector": selector}}),
            )
            .unwrap(),
        )
    }

    fn pod(gates: &[&str]) -> Pod {
        let mut spec = json!({"containers": [{"name": "app"}]});
        if !gates.is_empty() {
            spec["readinessGates"] = json!(
                gates
                    .iter()
                    .map(|g| json!({"conditionType": g}))
                    .collect::<Vec<_>>()
            );
        }
        serde_json::from_value(
            json!({"metadata": {"name": "p", "labels": {"app": "web"}}, "spec": spec}),
        )
        .unwrap()
    }

    fn predicted_binding(name: &str, port: i32) -> Binding {
        Binding {
            name: name.into(),
            namespace: "shop".into(),
            labels: BTreeMap::from([("service.k8s.aws/stack-name".to_string(), "web".to_string())]),
            service_name: "web".into(),
            service_port: port,
            target_group: "shop/web:80".into(),
            target_type: TargetType::Ip,
            ip_address_type: crate::stack::TargetIpAddressType::Ipv4,
            node_selector: BTreeMap::new(),
            multi_cluster: false,
            networking: Vec::new(),
        }
    }

    #[test]
    fn a_predicted_binding_another_binding_already_is_not_gated_twice() {
        // Upstream named the binding of web:80 otherwise (another cluster's UID in its hash, or
        // an older naming): the pod is gated on that one only, which will flip.
        let svc = service(json!({"app": "web"}));
        let lookup = |_: &str| Some(svc.clone());
        let mut upstreams = (*binding("k8s-shop-web-upstream00", "web", Some("ip"))).clone();
        upstreams.metadata.labels = Some(BTreeMap::from([(
            "service.k8s.aws/stack-name".to_string(),
            "web".to_string(),
        )]));
        // A binding of the same port made by hand (no stack labels) does not stand for it.
        let bindings = [Arc::new(upstreams), binding("by-hand", "web", Some("ip"))];
        let predicted = [
            predicted_binding("k8s-shop-web-ours000000", 80),
            predicted_binding("k8s-shop-web-other00000", 443),
        ];
        let mutation = mutate_pod(
            &pod(&[]),
            Some(&enabled()),
            &bindings,
            &lookup,
            &predicted,
            Duration::ZERO,
        );
        assert_eq!(
            mutation.bindings,
            [
                "by-hand",
                "k8s-shop-web-other00000",
                "k8s-shop-web-upstream00"
            ]
        );
        let alone = [binding("by-hand", "web", Some("ip"))];
        let mutation = mutate_pod(
            &pod(&[]),
            Some(&enabled()),
            &alone,
            &lookup,
            &predicted[..1],
            Duration::ZERO,
        );
        assert_eq!(mutation.bindings, ["by-hand", "k8s-shop-web-ours000000"]);
    }

    fn enabled() -> BTreeMap<String, String> {
        [(
            keys::READINESS_GATE_INJECT_LABEL.to_string(),
            "enabled".to_string(),
        )]
        .into()
    }

    #[test]
    fn a_binding_named_too_long_for_a_gate_gates_nothing_and_is_warned() {
        // Before: the gate was injected, and the API server refused every such pod (a
        // condition type's name part is at most 63 characters; a binding's name up to 253).
        let svc = service(json!({"app": "web"}));
        let lookup = |_: &str| Some(svc.clone());
        let long = "b".repeat(64);
        let bindings = [
            binding(&long, "web", Some("ip")),
            binding(&"a".repeat(63), "web", Some("ip")),
        ];
        let hold = Duration::from_secs(15);
        let mutation = mutate_pod(&pod(&[]), Some(&enabled()), &bindings, &lookup, &[], hold);
        assert_eq!(
            mutation.gates,
            [format!(
                "target-health.alb.ingress.k8s.aws/{}",
                "a".repeat(63)
            )]
        );
        assert_eq!(mutation.hold, hold, "still held");
        assert_eq!(
            mutation.warnings,
            [format!(
                "TargetGroupBinding {long}: a name over 63 characters cannot make a readiness gate (target-health.alb.ingress.k8s.aws/<name>); the pod is not gated on it"
            )]
        );
    }

    #[test]
    fn injects_for_ip_bindings_whose_service_selects_the_pod() {
        let svc = service(json!({"app": "web"}));
        let lookup = |name: &str| (name == "web").then(|| svc.clone());
        let bindings = [
            binding("web-tgb", "web", Some("ip")),
            binding("nodes", "web", Some("instance")),
            binding("other", "api", Some("ip")),
        ];
        let behind = bindings_behind(&pod(&[]), Some(&enabled()), &bindings, &lookup);
        assert_eq!(behind, ["web-tgb"]);
        let gates = gates_to_inject(&pod(&[]), &behind);
        assert_eq!(gates, ["target-health.alb.ingress.k8s.aws/web-tgb"]);
    }

    #[test]
    fn nothing_without_the_namespace_label_or_when_already_gated() {
        let svc = service(json!({"app": "web"}));
        let lookup = |_: &str| Some(svc.clone());
        let bindings = [binding("web-tgb", "web", Some("ip"))];
        assert!(bindings_behind(&pod(&[]), None, &bindings, &lookup).is_empty());
        let disabled: BTreeMap<String, String> = [(
            keys::READINESS_GATE_INJECT_LABEL.to_string(),
            "disabled".to_string(),
        )]
        .into();
        assert!(bindings_behind(&pod(&[]), Some(&disabled), &bindings, &lookup).is_empty());
        for already in [
            "target-health.alb.ingress.k8s.aws/web-tgb",
            "target-health.elbv2.k8s.aws/web-tgb",
        ] {
            assert!(
                gates_to_inject(&pod(&[already]), &["web-tgb".to_string()]).is_empty(),
                "{already}"
            );
        }
    }

    #[test]
    fn patch_creates_or_extends_the_list() {
        let gates = vec!["target-health.alb.ingress.k8s.aws/a".to_string()];
        let mut fresh = serde_json::to_value(pod(&[])).unwrap();
        json_patch::patch(
            &mut fresh,
            &json_patch::Patch(gate_patch(&pod(&[]), &gates)),
        )
        .unwrap();
        assert_eq!(
            fresh["spec"]["readinessGates"],
            json!([{"conditionType": "target-health.alb.ingress.k8s.aws/a"}])
        );
        let gated = pod(&["x"]);
        let mut extended = serde_json::to_value(&gated).unwrap();
        json_patch::patch(
            &mut extended,
            &json_patch::Patch(gate_patch(&gated, &gates)),
        )
        .unwrap();
        assert_eq!(
            extended["spec"]["readinessGates"],
            json!([{"conditionType": "x"}, {"conditionType": "target-health.alb.ingress.k8s.aws/a"}])
        );
    }

    #[test]
    fn a_pod_behind_a_binding_gets_its_gate_and_the_hold_and_bad_holds_are_warned() {
        let svc = service(json!({"app": "web"}));
        let lookup = |_: &str| Some(svc.clone());
        let bindings = [binding("web-tgb", "web", Some("ip"))];
        let hold = Duration::from_secs(15);
        let plain = mutate_pod(&pod(&[]), Some(&enabled()), &bindings, &lookup, &[], hold);
        assert_eq!(plain.gates, ["target-health.alb.ingress.k8s.aws/web-tgb"]);
        assert_eq!(plain.hold, hold);
        let mut value = serde_json::to_value(pod(&[])).unwrap();
        json_patch::patch(&mut value, &plain.operations).unwrap();
        assert_eq!(
            value["spec"]["containers"][0]["lifecycle"]["preStop"],
            json!({"sleep": {"seconds": 15}})
        );
        assert!(plain.warnings.is_empty());

        let mut annotated = pod(&[]);
        annotated.metadata.annotations = Some(
            [(
                keys::TERMINATION_HOLD_ANNOTATION.to_string(),
                "soon".to_string(),
            )]
            .into(),
        );
        let warned = mutate_pod(&annotated, Some(&enabled()), &bindings, &lookup, &[], hold);
        assert_eq!(warned.hold, hold);
        assert!(
            warned.warnings[0].contains(keys::TERMINATION_HOLD_ANNOTATION)
                && warned.warnings[0].contains("\"soon\""),
            "{:?}",
            warned.warnings
        );
        // A binding the Service reconciler has yet to make gates the pod all the same.
        let predicted = [predicted_binding("k8s-demo-web-0123456789", 80)];
        let early = mutate_pod(&pod(&[]), Some(&enabled()), &[], &lookup, &predicted, hold);
        assert_eq!(
            early.gates,
            ["target-health.alb.ingress.k8s.aws/k8s-demo-web-0123456789"]
        );
        // Outside a labelled namespace: nothing at all.
        assert_eq!(
            mutate_pod(&pod(&[]), None, &bindings, &lookup, &predicted, hold),
            PodMutation::default()
        );
    }
}
