//! Unit tests of [`super::plan`] and [`super::plan_cleanup`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use lb_api::{TargetGroupBinding, TargetType};
use serde_json::json;

use super::*;
use crate::elb::{TargetGroupInfo, TargetHealth, TargetKey, TargetState};
use crate::polling::PollState;
use crate::targets::Desired;

const GATE: &str = "target-health.alb.ingress.k8s.aws/web";
const NOW: &str = "2026-01-01T00:00:10Z";

fn binding(multi_cluster: bool) -> TargetGroupBinding {
    serde_json::from_value(json!({
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"targetGroupARN": "arn:tg", "serviceRef": {"name": "web", "port": 80},
                 "multiClusterTargetGroup": multi_cluster},
    }))
    .unwrap()
}

fn group() -> TargetGroupInfo {
    TargetGroupInfo {
        arn: "arn:tg".into(),
        name: "web-tg".into(),
        target_type: "ip".into(),
        health_check_interval_seconds: Some(5),
        healthy_threshold_count: Some(2),
        ..TargetGroupInfo::default()
    }
}

fn key(ip: &str) -> TargetKey {
    TargetKey::new(ip, 8080)
}

fn health(ip: &str, state: &str) -> TargetHealth {
    TargetHealth {
        target: key(ip),
        state: TargetState::parse(state),
        reason: None,
        description: None,
    }
}

/// Wanted targets, and pods (name -> ip) that are endpoints.
fn desired(wanted: &[&str], pods: &[(&str, &str)]) -> Desired {
    let pod_targets: BTreeMap<String, TargetKey> = pods
        .iter()
        .map(|(n, ip)| (n.to_string(), key(ip)))
        .collect();
    Desired {
        targets: wanted.iter().map(|ip| key(ip)).collect(),
        known: pod_targets.values().cloned().collect(),
        pod_targets,
    }
}

/// A pod with our gate (condition `gate` when Some), or without any gate.
fn pod(name: &str, gated: bool, gate: Option<&str>) -> Arc<Pod> {
    let mut value = json!({
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}")},
        "spec": {"containers": []},
        "status": {"conditions": []},
    });
    if gated {
        value["spec"]["readinessGates"] = json!([{"conditionType": GATE}]);
    }
    if let Some(status) = gate {
        value["status"]["conditions"] = json!([{"type": GATE, "status": status,
            "reason": "TargetHealthy", "message": "target 10.0.0.1:8080 is healthy in web-tg"}]);
    }
    Arc::new(serde_json::from_value(value).unwrap())
}

struct Case {
    binding: TargetGroupBinding,
    desired: Desired,
    health: Vec<TargetHealth>,
    pods: Vec<Arc<Pod>>,
    injection: bool,
    target_type: TargetType,
    /// The polling state the previous pass left.
    poll: PollState,
}

impl Case {
    fn new(desired: Desired, health: Vec<TargetHealth>) -> Case {
        Case {
            binding: binding(false),
            desired,
            health,
            pods: Vec::new(),
            injection: true,
            target_type: TargetType::Ip,
            poll: PollState::default(),
        }
    }

    fn plan_at(&self, now: Instant, registered_at: &dyn Fn(&TargetKey) -> Option<Instant>) -> Plan {
        let group = group();
        let input = PassInput {
            binding: &self.binding,
            group: &group,
            target_type: self.target_type,
            desired: &self.desired,
            health: &self.health,
            pods: &self.pods,
            injection_enabled: self.injection,
        };
        let clock = PassClock {
            now,
            now_text: NOW,
            registered_at,
            poll: self.poll,
        };
        plan(&input, &clock)
    }

    fn plan(&self) -> Plan {
        self.plan_at(Instant::now(), &|_| None)
    }
}

fn ips(targets: &[TargetKey]) -> Vec<&str> {
    targets.iter().map(|t| t.id.as_str()).collect()
}

#[test]
fn registers_the_wanted_and_deregisters_the_rest_but_not_what_drains() {
    let case = Case::new(
        desired(&["10.0.0.1", "10.0.0.2"], &[]),
        vec![
            health("10.0.0.1", "healthy"),
            health("10.0.0.3", "healthy"),
            health("10.0.0.4", "draining"),
        ],
    );
    let plan = case.plan();
    assert_eq!(ips(&plan.deregister), ["10.0.0.3"]);
    assert_eq!(ips(&plan.register), ["10.0.0.2"]);
    let notes: Vec<&str> = plan.notes.iter().map(|n| n.reason).collect();
    assert_eq!(notes, ["TargetsDeregistered", "TargetsRegistered"]);
    // What the target group says afterwards: the new target initial, the old one draining.
    let state = |ip: &str| {
        plan.health_after
            .iter()
            .find(|h| h.target.id == ip)
            .map(|h| h.state.clone())
    };
    assert_eq!(state("10.0.0.2"), Some(TargetState::Initial));
    assert_eq!(state("10.0.0.3"), Some(TargetState::Draining));
    assert_eq!(
        plan.status.target_health.as_deref(),
        Some("1/2 healthy, 2 draining")
    );
    assert!(plan.status.ready);
}

#[test]
fn a_returning_draining_target_is_registered_again() {
    let case = Case::new(
        desired(&["10.0.0.1"], &[]),
        vec![health("10.0.0.1", "draining")],
    );
    let plan = case.plan();
    assert_eq!(ips(&plan.register), ["10.0.0.1"]);
    assert!(plan.deregister.is_empty());
    assert_eq!(plan.health_after.len(), 1);
    assert_eq!(plan.health_after[0].state, TargetState::Initial);
}

#[test]
fn multi_cluster_bindings_deregister_only_this_cluster_s_targets() {
    let mut case = Case::new(
        desired(&["10.0.0.1"], &[("a", "10.0.0.1"), ("b", "10.0.0.2")]),
        vec![
            health("10.0.0.1", "healthy"),
            health("10.0.0.2", "healthy"),
            health("192.168.0.9", "healthy"),
        ],
    );
    case.binding = binding(true);
    assert_eq!(ips(&case.plan().deregister), ["10.0.0.2"]);
    case.binding = binding(false);
    assert_eq!(ips(&case.plan().deregister), ["10.0.0.2", "192.168.0.9"]);
}

#[test]
fn gates_open_on_healthy_stay_closed_otherwise_and_are_written_only_on_change() {
    let mut case = Case::new(
        desired(
            &["10.0.0.1", "10.0.0.2", "10.0.0.3"],
            &[
                ("up", "10.0.0.1"),
                ("new", "10.0.0.2"),
                ("done", "10.0.0.3"),
            ],
        ),
        vec![
            health("10.0.0.1", "healthy"),
            health("10.0.0.2", "initial"),
            health("10.0.0.3", "healthy"),
        ],
    );
    case.pods = vec![
        pod("up", true, None),
        pod("new", true, None),
        // Already True with the same reason and message: nothing to write.
        pod("done", true, Some("True")),
    ];
    case.desired
        .pod_targets
        .insert("done".into(), key("10.0.0.1"));
    let plan = case.plan();
    let writes: Vec<(&str, bool)> = plan
        .gate_writes
        .iter()
        .map(|w| (w.pod.as_str(), w.verdict.status))
        .collect();
    // "new" is on its way (initial): nothing to tell it yet.
    assert_eq!(writes, [("up", true)]);
    assert_eq!(plan.gate_writes[0].uid.as_deref(), Some("uid-up"));
    let pending: Vec<(&str, Option<&str>)> = plan
        .pending
        .iter()
        .map(|g| (g.pod.as_str(), g.target.as_ref().map(|t| t.id.as_str())))
        .collect();
    assert_eq!(pending, [("new", Some("10.0.0.2"))]);
    assert!(
        plan.status.message.contains("1 readiness gate(s) pending"),
        "{}",
        plan.status.message
    );
}

#[test]
fn a_target_registered_in_this_pass_keeps_its_gate_closed() {
    let mut case = Case::new(desired(&["10.0.0.1"], &[("p", "10.0.0.1")]), vec![]);
    case.pods = vec![pod("p", true, None)];
    let plan = case.plan();
    assert_eq!(ips(&plan.register), ["10.0.0.1"]);
    // A gate never open whose target is on its way: pending, and not written.
    assert!(plan.gate_writes.is_empty());
    assert_eq!(plan.pending.len(), 1);
    // An open gate whose target is registered again closes, with the reason.
    case.pods = vec![pod("p", true, Some("True"))];
    let plan = case.plan();
    assert_eq!(plan.gate_writes.len(), 1);
    assert!(!plan.gate_writes[0].verdict.status);
    assert_eq!(
        plan.gate_writes[0].verdict.reason,
        "Elb.RegistrationInProgress"
    );
}

#[test]
fn a_failing_target_is_told_on_its_pod() {
    let mut health_failing = health("10.0.0.1", "unhealthy");
    health_failing.reason = Some("Target.ResponseCodeMismatch".into());
    let mut case = Case::new(
        desired(&["10.0.0.1"], &[("p", "10.0.0.1")]),
        vec![health_failing],
    );
    case.pods = vec![pod("p", true, None)];
    let plan = case.plan();
    assert_eq!(plan.gate_writes.len(), 1);
    assert_eq!(
        plan.gate_writes[0].verdict.reason,
        "Target.ResponseCodeMismatch"
    );
}

#[test]
fn pods_without_their_gate_are_listed_only_in_labelled_namespaces() {
    let mut case = Case::new(
        desired(&["10.0.0.1"], &[("bare", "10.0.0.1")]),
        vec![health("10.0.0.1", "healthy")],
    );
    case.pods = vec![pod("bare", false, None), pod("elsewhere", false, None)];
    let listed = case.plan().missing_gates;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].uid.as_str()),
        ("bare", "uid-bare")
    );
    case.injection = false;
    assert!(case.plan().missing_gates.is_empty());
}

#[test]
fn a_pod_older_than_its_binding_is_not_listed_without_its_gate() {
    let mut case = Case::new(
        desired(
            &["10.0.0.1", "10.0.0.2"],
            &[("old", "10.0.0.1"), ("new", "10.0.0.2")],
        ),
        vec![],
    );
    let created = |pod: &Arc<Pod>, at: &str| {
        let mut pod = pod.as_ref().clone();
        pod.metadata.creation_timestamp = Some(serde_json::from_value(json!(at)).unwrap());
        Arc::new(pod)
    };
    case.binding.metadata.creation_timestamp =
        Some(serde_json::from_value(json!("2026-12-07T10:00:00Z")).unwrap());
    case.pods = vec![
        created(&pod("old", false, None), "2026-12-07T09:59:59Z"),
        created(&pod("same-second", false, None), "2026-12-07T10:00:00Z"),
        created(&pod("new", false, None), "2026-12-07T10:00:01Z"),
    ];
    let listed = case.plan().missing_gates;
    let names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["new"]);
}

#[test]
fn instance_bindings_have_no_gates() {
    let mut case = Case::new(desired(&["10.0.0.1"], &[("p", "10.0.0.1")]), vec![]);
    case.pods = vec![pod("p", true, None)];
    case.target_type = TargetType::Instance;
    let plan = case.plan();
    assert!(plan.gate_writes.is_empty() && plan.pending.is_empty());
}

#[test]
fn an_initial_target_is_watched_until_it_settles_even_without_gates() {
    // Pods without gates (created before their binding, or not labelled): nothing pending, yet the
    // health summary must not stay at what registration saw.
    let case = Case::new(desired(&["10.0.0.1"], &[]), vec![]);
    match case.plan().next_look {
        NextLook::After(delay) => assert!(delay >= Duration::from_secs(10), "{delay:?}"),
        other => panic!("{other:?}"),
    }
    let settled = Case::new(
        desired(&["10.0.0.1"], &[]),
        vec![health("10.0.0.1", "unhealthy")],
    );
    assert_eq!(settled.plan().next_look, NextLook::OnChange);
}

#[test]
fn next_look_waits_for_interval_times_threshold_after_registering() {
    let mut case = Case::new(desired(&["10.0.0.1"], &[("p", "10.0.0.1")]), vec![]);
    case.pods = vec![pod("p", true, None)];
    let now = Instant::now();
    let plan = case.plan_at(now, &|_| None);
    // 5 s x 2 from the registration in this pass, looked at just after.
    match plan.next_look {
        NextLook::After(delay) => {
            assert!(delay > Duration::from_secs(10) && delay < Duration::from_millis(10_100))
        }
        other => panic!("{other:?}"),
    }
    assert!(plan.poll.is_some());

    // Registered 8 s ago by this process, still initial: 2 s more.
    let mut waiting = case;
    waiting.health = vec![health("10.0.0.1", "initial")];
    let earlier = now - Duration::from_secs(8);
    let plan = waiting.plan_at(now, &|_| Some(earlier));
    match plan.next_look {
        NextLook::After(delay) => {
            assert!(delay > Duration::from_secs(2) && delay < Duration::from_millis(2_100))
        }
        other => panic!("{other:?}"),
    }
    // Of unknown age (registered before a restart): look soon.
    let plan = waiting.plan_at(now, &|_| None);
    assert_eq!(plan.next_look, NextLook::After(Duration::from_millis(100)));
}

#[test]
fn a_target_just_past_its_moment_is_polled_fast_until_a_second_has_gone() {
    let mut case = Case::new(desired(&["10.0.0.1"], &[("p", "10.0.0.1")]), vec![]);
    case.pods = vec![pod("p", true, None)];
    case.health = vec![health("10.0.0.1", "initial")];
    let now = Instant::now();
    // Registered 10.2 s ago (5 s x 2): its check is a little late; nothing moves between looks.
    let registered = now - Duration::from_millis(10_200);
    for _ in 0..4 {
        let plan = case.plan_at(now, &|_| Some(registered));
        assert_eq!(plan.next_look, NextLook::After(Duration::from_millis(100)));
        case.poll = plan.poll.expect("polling");
    }
    // 2 s past its moment and still nothing: slowing down.
    let later = now + Duration::from_secs(2);
    let plan = case.plan_at(later, &|_| Some(registered));
    assert_eq!(plan.next_look, NextLook::After(Duration::from_millis(150)));
}

#[test]
fn a_gate_whose_pod_is_no_registered_target_waits_for_the_pod_to_change() {
    // The pod is an endpoint, but its containers are not ready: not wanted, not registered.
    let mut case = Case::new(desired(&[], &[("p", "10.0.0.1")]), vec![]);
    case.pods = vec![pod("p", true, None)];
    let plan = case.plan();
    assert_eq!(plan.pending.len(), 1);
    assert!(plan.register.is_empty());
    assert_eq!(plan.next_look, NextLook::OnChange);
}

#[test]
fn nothing_pending_and_nothing_draining_waits_for_a_change() {
    let mut case = Case::new(
        desired(&["10.0.0.1"], &[("p", "10.0.0.1")]),
        vec![health("10.0.0.1", "healthy")],
    );
    case.pods = vec![pod("p", true, Some("True"))];
    let plan = case.plan();
    assert!(plan.gate_writes.is_empty());
    assert_eq!(plan.next_look, NextLook::OnChange);
    assert_eq!(plan.poll, None);
    // Draining alone: looked at slowly until it is gone.
    case.health.push(health("10.0.0.9", "draining"));
    assert_eq!(
        case.plan().next_look,
        NextLook::After(Duration::from_secs(5))
    );
}

#[test]
fn cleanup_deregisters_what_is_registered_and_opens_closed_gates() {
    let registered = [
        health("10.0.0.1", "healthy"),
        health("10.0.0.2", "draining"),
        health("192.168.0.9", "healthy"),
    ];
    let pods = vec![
        pod("closed", true, Some("False")),
        pod("open", true, Some("True")),
        pod("bare", false, None),
    ];
    let ours = desired(&[], &[("closed", "10.0.0.1")]);
    let plan = plan_cleanup(&binding(false), &ours, Some(&registered), &pods, NOW);
    assert_eq!(ips(&plan.deregister), ["10.0.0.1", "192.168.0.9"]);
    let released: Vec<&str> = plan.gate_writes.iter().map(|w| w.pod.as_str()).collect();
    assert_eq!(released, ["closed"]);
    assert_eq!(plan.gate_writes[0].verdict.reason, "BindingDeleted");
    // Shared with other clusters: only ours go.
    let shared = plan_cleanup(&binding(true), &ours, Some(&registered), &pods, NOW);
    assert_eq!(ips(&shared.deregister), ["10.0.0.1"]);
    // The target group is gone: only the gates.
    let gone = plan_cleanup(&binding(false), &ours, None, &pods, NOW);
    assert!(gone.deregister.is_empty());
    assert_eq!(gone.gate_writes.len(), 1);
}

#[test]
fn known_targets_cover_every_endpoint() {
    let d = desired(&["10.0.0.1"], &[("a", "10.0.0.1"), ("b", "10.0.0.2")]);
    let known: BTreeSet<&str> = d.known.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(known, BTreeSet::from(["10.0.0.1", "10.0.0.2"]));
}
