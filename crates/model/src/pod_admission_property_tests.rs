//! Random pods (labels, readiness gates they already carry, containers with and without hooks,
//! grace periods from negative to `i64::MAX`, ugly hold annotations) behind random bindings
//! (names up to Kubernetes' 253 characters, ip and instance, being deleted) through the pod
//! webhook's [`mutate_pod`]: never a panic; the patch always applies, as the API server applies
//! it, and leaves a pod the API server takes (each gate once, every gate's condition type a
//! qualified name); a second pass (the API server's reinvocation) adds nothing; a warning names
//! the annotation and its value.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use lb_api::{TargetGroupBinding, TargetType, keys};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::adversarial::{self, names, value};

/// Binding names as Kubernetes admits them (DNS subdomains up to 253 characters).
fn binding_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["web", "api", "k8s-shop-web-0123456789"])
            .prop_map(str::to_string),
        1 => (1usize..=253).prop_map(|n| "b".repeat(n)),
        1 => Just(format!("{}.{}", "a".repeat(40), "b".repeat(40))),
    ]
}

fn bindings() -> impl Strategy<Value = Vec<Arc<TargetGroupBinding>>> {
    let one = (
        binding_name(),
        prop::option::weighted(0.9, prop::sample::select(vec!["ip", "ip", "instance"])),
        prop::sample::select(vec!["web", "web", "api"]),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(name, target_type, service, deleted)| {
            let mut spec =
                json!({"targetGroupARN": "arn", "serviceRef": {"name": service, "port": 80}});
            if let Some(t) = target_type {
                spec["targetType"] = json!(t);
            }
            let mut metadata = json!({"name": name, "namespace": "shop"});
            if deleted {
                metadata["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
            }
            let binding: Option<TargetGroupBinding> = serde_json::from_value(json!({
                "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
                "metadata": metadata, "spec": spec,
            }))
            .ok();
            binding.map(Arc::new)
        });
    prop::collection::vec(one, 1..4).prop_map(|b| b.into_iter().flatten().collect())
}

fn predicted() -> impl Strategy<Value = Vec<Binding>> {
    let one =
        (binding_name(), prop::sample::select(vec![80, 443])).prop_map(|(name, port)| Binding {
            name,
            namespace: "shop".into(),
            labels: Default::default(),
            service_name: "web".into(),
            service_port: port,
            target_group: "shop/web:80".into(),
            target_type: TargetType::Ip,
            ip_address_type: crate::stack::TargetIpAddressType::Ipv4,
            node_selector: Default::default(),
            multi_cluster: false,
            networking: Vec::new(),
        });
    prop::collection::vec(one, 0..3)
}

fn container() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!({"name": "app"}),
        json!({"name": "app", "lifecycle": {}}),
        json!({"name": "app", "lifecycle": {"postStart": {"exec": {"command": ["true"]}}}}),
        json!({"name": "app", "lifecycle": {"preStop": {"exec": {"command": ["sleep", "3"]}}}}),
    ])
}

fn pod() -> impl Strategy<Value = Pod> {
    let labels = prop_oneof![
        3 => Just(json!({"app": "web"})),
        1 => Just(json!({})),
        1 => Just(json!({"app": "api"})),
    ];
    let gates = prop::collection::vec(
        prop_oneof![
            binding_name().prop_map(|b| format!("{}{b}", keys::GATE_PREFIX)),
            binding_name().prop_map(|b| format!("{}{b}", keys::UPSTREAM_GATE_PREFIX)),
            Just("example.com/ready".to_string()),
        ],
        0..3,
    );
    let hold = prop::option::of(value());
    let grace = prop::option::of(prop_oneof![
        Just(30i64),
        Just(0),
        Just(-5),
        Just(i64::MAX),
        any::<i64>(),
    ]);
    let containers = prop::collection::vec(container(), 1..4);
    (labels, gates, hold, grace, containers, any::<bool>()).prop_map(
        |(labels, gates, hold, grace, containers, gate_list)| {
            let mut spec = json!({"containers": containers});
            if gate_list || !gates.is_empty() {
                let gates: Vec<Value> = gates.iter().map(|g| json!({"conditionType": g})).collect();
                spec["readinessGates"] = json!(gates);
            }
            if let Some(grace) = grace {
                spec["terminationGracePeriodSeconds"] = json!(grace);
            }
            let mut metadata = json!({"name": "p", "namespace": "shop", "labels": labels});
            if let Some(hold) = hold {
                metadata["annotations"] = json!({(keys::TERMINATION_HOLD_ANNOTATION): hold});
            }
            serde_json::from_value(json!({"metadata": metadata, "spec": spec})).unwrap_or_default()
        },
    )
}

fn web() -> Arc<Service> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 443}]},
        }))
        .unwrap_or_default(),
    )
}

/// Kubernetes' rule for a readiness gate's condition type: a qualified name (an optional DNS
/// prefix and `/`, then at most 63 letters, digits, `-`, `_` and `.`, alphanumeric at the ends).
fn qualified_name(text: &str) -> bool {
    let name = text.rsplit_once('/').map_or(text, |(_, name)| name);
    adversarial::qualified_name_part(name)
}

fn condition_types(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.readiness_gates.iter().flatten())
        .map(|g| g.condition_type.clone())
        .collect()
}

proptest! {
    #![proptest_config(adversarial::config(512))]

    #[test]
    fn any_pod_gets_a_patch_that_applies_once_and_leaves_a_pod_kubernetes_takes(
        pod in pod(),
        bindings in bindings(),
        predicted in predicted(),
        namespace in prop::sample::select(vec!["enabled", "enabled", "enabled", "disabled", ""]),
        hold in prop::sample::select(vec![0u64, 15, 3600]),
    ) {
        let labels = (!namespace.is_empty()).then(|| {
            [(keys::READINESS_GATE_INJECT_LABEL.to_string(), namespace.to_string())].into()
        });
        let lookup = |name: &str| (name == "web").then(web);
        let hold = Duration::from_secs(hold);
        let mutation = mutate_pod(&pod, labels.as_ref(), &bindings, &lookup, &predicted, hold);
        let mut json = serde_json::to_value(&pod).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let applied = json_patch::patch(&mut json, &mutation.operations);
        prop_assert!(applied.is_ok(), "the patch does not apply: {applied:?}");
        let patched: Pod = serde_json::from_value(json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let before = condition_types(&pod);
        let after = condition_types(&patched);
        for gate in &mutation.gates {
            prop_assert_eq!(after.iter().filter(|t| *t == gate).count(), 1, "{}", gate);
        }
        for added in after.iter().filter(|t| !before.contains(t)) {
            prop_assert!(qualified_name(added), "gate {added:?} is no qualified name");
        }
        let grace = |pod: &Pod| pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds);
        // Lengthened by the hold when touched, and never wrapped round.
        if grace(&pod) != grace(&patched) {
            let (was, is) = (grace(&pod).unwrap_or(30).max(0), grace(&patched).unwrap_or(30));
            prop_assert!(is >= was, "grace period {was} became {is}");
        }
        let raw = pod.metadata.annotations.as_ref().and_then(|a| a.get(keys::TERMINATION_HOLD_ANNOTATION));
        for warning in &mutation.warnings {
            match warning.strip_prefix("TargetGroupBinding ") {
                Some(rest) => prop_assert!(rest.contains("cannot make a readiness gate"), "{warning}"),
                None => names(warning, keys::TERMINATION_HOLD_ANNOTATION, raw.map_or("", String::as_str))?,
            }
        }
        let again = mutate_pod(&patched, labels.as_ref(), &bindings, &lookup, &predicted, hold);
        prop_assert!(again.gates.is_empty(), "gated twice: {:?}", again.gates);
        prop_assert!(again.operations.is_empty(), "patched twice: {:?}", again.operations);
    }
}
