//! Pod conditions as the kubelet computes them. The rule the whole project rests on lives here:
//! **Ready = ContainersReady AND every `spec.readinessGates` condition is True.** Gate conditions
//! are written by controllers on `pods/status`; the kubelet only reads them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const POD_SCHEDULED: &str = "PodScheduled";
pub const INITIALIZED: &str = "Initialized";
pub const CONTAINERS_READY: &str = "ContainersReady";
pub const READY: &str = "Ready";

/// The condition types the kubelet owns and writes. Anything else on the pod (readiness gates) is
/// someone else's and is never part of our patch.
pub const KUBELET_CONDITIONS: [&str; 4] = [POD_SCHEDULED, INITIALIZED, CONTAINERS_READY, READY];

/// A condition's status with the reason and message the kubelet would give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: bool,
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl Verdict {
    fn yes() -> Self {
        Verdict {
            status: true,
            reason: None,
            message: None,
        }
    }

    fn no(reason: &str, message: String) -> Self {
        Verdict {
            status: false,
            reason: Some(reason.to_string()),
            message: Some(message),
        }
    }
}

/// ContainersReady: all containers ready.
pub fn containers_ready(unready_containers: &[String]) -> Verdict {
    if unready_containers.is_empty() {
        Verdict::yes()
    } else {
        Verdict::no(
            "ContainersNotReady",
            format!(
                "containers with unready status: [{}]",
                unready_containers.join(" ")
            ),
        )
    }
}

/// Ready: containers ready and every readiness gate True, with the kubelet's reasons and messages.
pub fn ready(unready_containers: &[String], pod: &Pod) -> Verdict {
    if !unready_containers.is_empty() {
        return containers_ready(unready_containers);
    }
    let problems: Vec<String> = gate_states(pod)
        .into_iter()
        .filter_map(|(gate, status)| match status {
            None => Some(format!(
                "corresponding condition of pod readiness gate \"{gate}\" does not exist."
            )),
            Some(status) if status != "True" => Some(format!(
                "the status of pod readiness gate \"{gate}\" is not \"True\", but {status}"
            )),
            Some(_) => None,
        })
        .collect();
    if problems.is_empty() {
        Verdict::yes()
    } else {
        Verdict::no("ReadinessGatesNotReady", problems.join(", "))
    }
}

/// Each readiness gate of the pod with the status of its condition, if the condition exists.
pub fn gate_states(pod: &Pod) -> Vec<(String, Option<String>)> {
    let gates = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.readiness_gates.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let conditions = pod
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    gates
        .iter()
        .map(|gate| {
            let status = conditions
                .iter()
                .find(|c| c.type_ == gate.condition_type)
                .map(|c| c.status.clone());
            (gate.condition_type.clone(), status)
        })
        .collect()
}

/// Remembers when each condition last changed, so `lastTransitionTime` moves only on a flip.
#[derive(Debug, Default)]
pub struct TransitionClock {
    last: BTreeMap<&'static str, (bool, Time)>,
}

impl TransitionClock {
    /// The condition as it should be written now.
    pub fn condition(
        &mut self,
        type_: &'static str,
        verdict: &Verdict,
        now: &Time,
    ) -> PodCondition {
        let entry = self
            .last
            .entry(type_)
            .or_insert_with(|| (verdict.status, now.clone()));
        if entry.0 != verdict.status {
            *entry = (verdict.status, now.clone());
        }
        PodCondition {
            type_: type_.to_string(),
            status: if verdict.status { "True" } else { "False" }.to_string(),
            reason: verdict.reason.clone(),
            message: verdict.message.clone(),
            last_transition_time: Some(entry.1.clone()),
            last_probe_time: None,
            observed_generation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodReadinessGate, PodSpec, PodStatus};

    fn pod(gates: &[&str], conditions: &[(&str, &str)]) -> Pod {
        Pod {
            spec: Some(PodSpec {
                readiness_gates: Some(
                    gates
                        .iter()
                        .map(|g| PodReadinessGate {
                            condition_type: g.to_string(),
                        })
                        .collect(),
                ),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s)| PodCondition {
                            type_: t.to_string(),
                            status: s.to_string(),
                            ..PodCondition::default()
                        })
                        .collect(),
                ),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    const GATE: &str = "target-health.alb.ingress.k8s.aws/x";
    const UPSTREAM_GATE: &str = "target-health.elbv2.k8s.aws/y";

    #[test]
    fn ready_without_gates_follows_the_containers() {
        assert!(ready(&[], &pod(&[], &[])).status);
        let v = ready(&["app".into()], &pod(&[], &[]));
        assert!(!v.status);
        assert_eq!(v.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            v.message.as_deref(),
            Some("containers with unready status: [app]")
        );
    }

    #[test]
    fn a_missing_gate_condition_holds_ready_false() {
        let v = ready(&[], &pod(&[GATE], &[]));
        assert!(!v.status);
        assert_eq!(v.reason.as_deref(), Some("ReadinessGatesNotReady"));
        assert!(v.message.unwrap().contains("does not exist"));
    }

    #[test]
    fn a_false_gate_condition_holds_ready_false() {
        let v = ready(&[], &pod(&[GATE], &[(GATE, "False")]));
        assert!(!v.status);
        assert!(v.message.unwrap().contains("is not \"True\", but False"));
    }

    #[test]
    fn ready_needs_every_gate_true() {
        let both = pod(
            &[GATE, UPSTREAM_GATE],
            &[(GATE, "True"), (UPSTREAM_GATE, "False")],
        );
        assert!(!ready(&[], &both).status);
        let both = pod(
            &[GATE, UPSTREAM_GATE],
            &[(GATE, "True"), (UPSTREAM_GATE, "True")],
        );
        assert!(ready(&[], &both).status);
    }

    #[test]
    fn unready_containers_win_over_true_gates() {
        let v = ready(&["app".into()], &pod(&[GATE], &[(GATE, "True")]));
        assert!(!v.status);
        assert_eq!(v.reason.as_deref(), Some("ContainersNotReady"));
    }

    #[test]
    fn conditions_that_are_not_gates_do_not_matter() {
        assert!(ready(&[], &pod(&[], &[("SomethingElse", "False")])).status);
    }

    #[test]
    fn transition_time_moves_only_on_a_flip() {
        let mut clock = TransitionClock::default();
        let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2_000).unwrap());
        let t2 = Time(k8s_openapi::jiff::Timestamp::from_second(3_000).unwrap());
        let no = containers_ready(&["app".into()]);
        let yes = containers_ready(&[]);
        let c = clock.condition(CONTAINERS_READY, &no, &t0);
        assert_eq!(c.last_transition_time, Some(t0.clone()));
        let c = clock.condition(CONTAINERS_READY, &no, &t1);
        assert_eq!(c.last_transition_time, Some(t0));
        let c = clock.condition(CONTAINERS_READY, &yes, &t2);
        assert_eq!(c.last_transition_time, Some(t2));
        assert_eq!(c.status, "True");
    }
}
