//! Readiness-gate conditions: what a pod's `target-health.../<binding>` condition should say, given
//! its target's health in the target group, and the patch that writes only that condition.

use k8s_openapi::api::core::v1::Pod;
use lb_api::keys;
use serde_json::json;

use crate::elb::{TargetHealth, TargetKey, TargetState};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateVerdict {
    pub status: bool,
    pub reason: String,
    pub message: String,
}

/// Reasons of a closed gate whose target is on its way: not an endpoint yet, not registered yet,
/// registration in progress (`initial`, with ELB's reason or without one). Nothing has gone
/// wrong, so nothing is worth a write on a pod whose gate was never open (see [`worth_writing`]).
const ON_ITS_WAY: [&str; 4] = [
    "PodNotAnEndpoint",
    "TargetNotRegistered",
    "Elb.RegistrationInProgress",
    "Target.initial",
];

impl GateVerdict {
    fn new(status: bool, reason: &str, message: String) -> Self {
        Self {
            status,
            reason: reason.to_string(),
            message,
        }
    }

    /// Whether the gate is closed only because its target is on its way.
    pub fn on_its_way(&self) -> bool {
        !self.status && ON_ITS_WAY.contains(&self.reason.as_str())
    }
}

/// Whether a verdict is worth a pod status write: an open gate, a gate that closes, or a closed
/// one with something to tell (a failing health check, ...). A gate that was never open and whose
/// target is on its way is left unwritten: an absent gate condition keeps the pod unready just as
/// a False one does, and at 1,000 pods those writes were two of every three the controller made,
/// delaying the ones that open gates.
pub fn worth_writing(pod: &Pod, gate_types: &[String], verdict: &GateVerdict) -> bool {
    !verdict.on_its_way()
        || gate_types
            .iter()
            .any(|t| crate::targets::condition_status(pod, t) == Some("True"))
}

/// The gate's verdict: True once ELB says the target is healthy. A target group that no load
/// balancer uses (`unused`, `Target.NotInUse`) has nothing to protect, so its gates open too, with
/// a reason that says so (the upstream controller leaves such pods unready forever).
pub fn verdict(
    target: Option<&TargetKey>,
    health: Option<&TargetHealth>,
    target_group: &str,
) -> GateVerdict {
    let Some(target) = target else {
        return GateVerdict::new(
            false,
            "PodNotAnEndpoint",
            format!(
                "the pod is not an endpoint of the bound Service port yet (target group {target_group})"
            ),
        );
    };
    let Some(health) = health else {
        return GateVerdict::new(
            false,
            "TargetNotRegistered",
            format!("target {target} is not registered in target group {target_group} yet"),
        );
    };
    let described = |fallback: &str| {
        format!(
            "target {target} in {target_group}: {}",
            health
                .description
                .clone()
                .unwrap_or_else(|| fallback.to_string())
        )
    };
    let reason = health.reason.clone().unwrap_or_default();
    match health.state {
        TargetState::Healthy => GateVerdict::new(
            true,
            "TargetHealthy",
            format!("target {target} is healthy in {target_group}"),
        ),
        TargetState::Unused if reason == "Target.NotInUse" => GateVerdict::new(
            true,
            "Target.NotInUse",
            described("no load balancer uses the target group"),
        ),
        ref state => {
            let reason = if reason.is_empty() {
                format!("Target.{}", state.as_str())
            } else {
                reason
            };
            GateVerdict::new(false, &reason, described(state.as_str()))
        }
    }
}

/// Whether pods created in a namespace with these labels get readiness gates injected.
pub fn injection_enabled(labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
    labels
        .and_then(|l| l.get(keys::READINESS_GATE_INJECT_LABEL))
        .is_some_and(|v| v == keys::READINESS_GATE_INJECT_ENABLED)
}

/// The gate condition types of `binding` the pod carries (ours, the upstream's, or both).
pub fn gate_types_on(pod: &Pod, binding: &str) -> Vec<String> {
    let types = keys::gate_condition_types(binding);
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .map(|gates| {
            gates
                .iter()
                .map(|g| g.condition_type.clone())
                .filter(|t| types.contains(t))
                .collect()
        })
        .unwrap_or_default()
}

/// A strategic-merge patch of `pods/status` setting the gate conditions whose content differs from
/// `verdict`; None when every one already says the same. `lastTransitionTime` moves only on a
/// flip; the pod's uid makes the apiserver refuse the patch for a recreated pod of the same name.
pub fn patch(
    pod: &Pod,
    gate_types: &[String],
    verdict: &GateVerdict,
    now: &str,
) -> Option<serde_json::Value> {
    let status = if verdict.status { "True" } else { "False" };
    let existing = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    let conditions: Vec<serde_json::Value> = gate_types
        .iter()
        .filter_map(|type_| {
            let current = existing.and_then(|c| c.iter().find(|c| &c.type_ == type_));
            let same = current.is_some_and(|c| {
                c.status == status
                    && c.reason.as_deref() == Some(verdict.reason.as_str())
                    && c.message.as_deref() == Some(verdict.message.as_str())
            });
            if same {
                return None;
            }
            let transition = match current {
                Some(c) if c.status == status => c
                    .last_transition_time
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_else(|| now.to_string()),
                _ => now.to_string(),
            };
            Some(json!({
                "type": type_,
                "status": status,
                "reason": verdict.reason,
                "message": verdict.message,
                "lastTransitionTime": transition,
                "lastProbeTime": null,
            }))
        })
        .collect();
    if conditions.is_empty() {
        return None;
    }
    Some(json!({
        "metadata": {"uid": pod.metadata.uid},
        "status": {"conditions": conditions},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GATE: &str = "target-health.alb.ingress.k8s.aws/web";
    const UPSTREAM: &str = "target-health.elbv2.k8s.aws/web";

    #[test]
    fn injection_needs_the_label_set_to_enabled() {
        let labels = |value: &str| {
            std::collections::BTreeMap::from([(
                keys::READINESS_GATE_INJECT_LABEL.to_string(),
                value.to_string(),
            )])
        };
        assert!(injection_enabled(Some(&labels("enabled"))));
        assert!(!injection_enabled(Some(&labels("disabled"))));
        assert!(!injection_enabled(Some(&Default::default())));
        assert!(!injection_enabled(None));
    }

    fn health(state: &str, reason: Option<&str>, description: Option<&str>) -> TargetHealth {
        TargetHealth {
            target: TargetKey::new("10.0.0.1", 8080),
            state: TargetState::parse(state),
            reason: reason.map(str::to_string),
            description: description.map(str::to_string),
        }
    }

    fn target() -> TargetKey {
        TargetKey::new("10.0.0.1", 8080)
    }

    #[test]
    fn healthy_opens_the_gate() {
        let v = verdict(Some(&target()), Some(&health("healthy", None, None)), "tg");
        assert!(v.status);
        assert_eq!(v.reason, "TargetHealthy");
    }

    #[test]
    fn other_states_keep_it_closed_with_elb_s_reason() {
        let v = verdict(
            Some(&target()),
            Some(&health(
                "unhealthy",
                Some("Target.FailedHealthChecks"),
                Some("Health checks failed"),
            )),
            "tg",
        );
        assert!(!v.status);
        assert_eq!(v.reason, "Target.FailedHealthChecks");
        assert!(
            v.message.contains("Health checks failed") && v.message.contains("10.0.0.1:8080"),
            "{}",
            v.message
        );
        let v = verdict(
            Some(&target()),
            Some(&health("initial", Some("Elb.RegistrationInProgress"), None)),
            "tg",
        );
        assert_eq!(
            (v.status, v.reason.as_str()),
            (false, "Elb.RegistrationInProgress")
        );
        let v = verdict(Some(&target()), Some(&health("draining", None, None)), "tg");
        assert_eq!((v.status, v.reason.as_str()), (false, "Target.draining"));
    }

    #[test]
    fn unused_target_groups_have_nothing_to_protect() {
        let v = verdict(
            Some(&target()),
            Some(&health("unused", Some("Target.NotInUse"), None)),
            "tg",
        );
        assert!(v.status);
        assert_eq!(v.reason, "Target.NotInUse");
        // Not registered is "unused" too, but with another reason: the gate stays closed.
        let v = verdict(
            Some(&target()),
            Some(&health("unused", Some("Target.NotRegistered"), None)),
            "tg",
        );
        assert!(!v.status);
    }

    #[test]
    fn missing_targets_say_why() {
        assert_eq!(verdict(None, None, "tg").reason, "PodNotAnEndpoint");
        assert_eq!(
            verdict(Some(&target()), None, "tg").reason,
            "TargetNotRegistered"
        );
    }

    fn pod(conditions: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "uid": "u-1"},
            "spec": {"containers": [], "readinessGates": [{"conditionType": GATE}, {"conditionType": UPSTREAM}, {"conditionType": "other"}]},
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    #[test]
    fn gate_types_are_ours_and_upstream_s_only() {
        assert_eq!(gate_types_on(&pod(json!([])), "web"), [GATE, UPSTREAM]);
        assert!(gate_types_on(&pod(json!([])), "api").is_empty());
    }

    #[test]
    fn patch_writes_only_what_changed_and_keeps_transition_times() {
        let yes = GateVerdict::new(true, "TargetHealthy", "ok".into());
        let p = pod(json!([]));
        let body = patch(&p, &[GATE.into()], &yes, "2026-01-01T00:00:10Z").unwrap();
        assert_eq!(body["metadata"]["uid"], "u-1");
        assert_eq!(
            body["status"]["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:10Z"
        );

        let settled = pod(
            json!([{"type": GATE, "status": "True", "reason": "TargetHealthy", "message": "ok", "lastTransitionTime": "2026-01-01T00:00:10Z"}]),
        );
        assert_eq!(
            patch(&settled, &[GATE.into()], &yes, "2026-01-01T00:01:00Z"),
            None
        );

        // Same status, new message: the transition time stays.
        let reworded = GateVerdict::new(true, "TargetHealthy", "still ok".into());
        let body = patch(&settled, &[GATE.into()], &reworded, "2026-01-01T00:01:00Z").unwrap();
        assert_eq!(
            body["status"]["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:10Z"
        );

        // A flip moves it.
        let no = GateVerdict::new(false, "Target.FailedHealthChecks", "bad".into());
        let body = patch(&settled, &[GATE.into()], &no, "2026-01-01T00:02:00Z").unwrap();
        assert_eq!(
            body["status"]["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:02:00Z"
        );
        assert_eq!(body["status"]["conditions"][0]["status"], "False");
    }
}
