//! One TargetGroupBinding pass, decided without I/O: from what the binding wants (its desired
//! targets) and what the target group holds (registered targets with their health) to the actions
//! that converge them, in the order they must run:
//!
//! 1. deregister what is registered but not wanted (first: a leaving pod must stop getting
//!    traffic before anything else happens);
//! 2. register what is wanted but not registered;
//! 3. write each gated pod's condition where it changed (computed from the health the target
//!    group will report once 1 and 2 are done: deregistered targets draining, new ones initial);
//! 4. report: Events, and the status (written only when it changed);
//! 5. the next look: none while nothing is pending, else planned from interval x threshold.
//!
//! Ownership: a target group bound by a binding is the binding's. Every registered target that is
//! not wanted is deregistered, as upstream does; with `multiClusterTargetGroup`, only targets that
//! belong to this cluster (endpoints of the bound Service, or instances of this cluster's nodes)
//! are ever deregistered, so other clusters' targets stay.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use lb_api::{TargetGroupBinding, TargetType, keys};

use crate::elb::{TargetGroupInfo, TargetHealth, TargetKey, TargetState};
use crate::gates::{self, GateVerdict};
use crate::polling::{self, PollState};
use crate::status::{BindingStatus, health_summary};
use crate::targets::{Desired, condition_status};

/// Everything a pass knows: the binding, its target group, what it wants, what is registered.
pub struct PassInput<'a> {
    pub binding: &'a TargetGroupBinding,
    pub group: &'a TargetGroupInfo,
    pub target_type: TargetType,
    pub desired: &'a Desired,
    /// DescribeTargetHealth of the target group, now.
    pub health: &'a [TargetHealth],
    /// The pods of the binding's namespace.
    pub pods: &'a [Arc<Pod>],
    /// Whether the namespace is labelled for readiness-gate injection.
    pub injection_enabled: bool,
}

/// The clock and memory a pass reads; the model never reads a clock itself.
pub struct PassClock<'a> {
    pub now: Instant,
    /// `now` as RFC 3339, for `lastTransitionTime`.
    pub now_text: &'a str,
    /// When this process registered a target, if it did and the target is still initial.
    pub registered_at: &'a dyn Fn(&TargetKey) -> Option<Instant>,
    /// The binding's polling state from the previous pass.
    pub poll: PollState,
}

/// A pod condition write: the pod (by name and uid) and the strategic-merge patch.
#[derive(Debug, Clone, PartialEq)]
pub struct GateWrite {
    pub pod: String,
    pub uid: Option<String>,
    pub verdict: GateVerdict,
    pub patch: serde_json::Value,
}

/// A pod by name and uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub name: String,
    pub uid: String,
}

/// A gate still closed after the pass: the pod, and its target when it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingGate {
    pub pod: String,
    pub target: Option<TargetKey>,
}

/// A Normal Event on the binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub reason: &'static str,
    pub message: String,
}

/// When to look at the binding again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextLook {
    /// Nothing pending: only a change of the binding, its Service, endpoints, pods or nodes.
    OnChange,
    /// This long after `PassClock::now` (the moment the health was read), not after the pass ends:
    /// the pass's own writes must not push the next look later.
    After(Duration),
}

/// The actions of one pass, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub deregister: Vec<TargetKey>,
    pub register: Vec<TargetKey>,
    pub gate_writes: Vec<GateWrite>,
    /// Pods behind the binding, in a namespace labelled for injection, that carry no gate of it.
    pub missing_gates: Vec<PodRef>,
    pub notes: Vec<Note>,
    pub status: BindingStatus,
    /// Gates that stay closed.
    pub pending: Vec<PendingGate>,
    /// The health the target group reports once the plan has run.
    pub health_after: Vec<TargetHealth>,
    pub next_look: NextLook,
    /// The polling state to keep (None: forget it).
    pub poll: Option<PollState>,
}

/// Decides one pass of `input`.
pub fn plan(input: &PassInput, clock: &PassClock) -> Plan {
    let (deregister, register) = target_changes(input);
    let health_after = health_after(input.health, &deregister, &register);
    let mut notes = Vec::new();
    if !deregister.is_empty() {
        notes.push(Note {
            reason: "TargetsDeregistered",
            message: format!(
                "deregistered {} target(s) from {}",
                deregister.len(),
                input.group.name
            ),
        });
    }
    if !register.is_empty() {
        notes.push(Note {
            reason: "TargetsRegistered",
            message: format!(
                "registered {} target(s) in {}",
                register.len(),
                input.group.name
            ),
        });
    }
    let gated = match input.target_type {
        TargetType::Ip => gate_pass(input, &health_after, clock.now_text),
        TargetType::Instance => GatePass::default(),
    };
    let summary = health_summary(&health_after);
    let registered = health_after
        .iter()
        .filter(|h| h.state != TargetState::Draining)
        .count();
    let status = BindingStatus {
        ready: true,
        reason: "Synced".to_string(),
        message: format!(
            "{registered} target(s) registered in {} ({summary}); {} readiness gate(s) pending",
            input.group.name,
            gated.pending.len()
        ),
        target_health: Some(summary),
    };
    let (next_look, poll) = next_look(input.group, &gated.pending, &health_after, &register, clock);
    Plan {
        deregister,
        register,
        gate_writes: gated.writes,
        missing_gates: gated.missing,
        notes,
        status,
        pending: gated.pending,
        health_after,
        next_look,
        poll,
    }
}

/// (to deregister, to register): the difference between what is registered (draining targets
/// are on their way out already) and what is wanted, within what the binding may touch.
pub fn target_changes(input: &PassInput) -> (Vec<TargetKey>, Vec<TargetKey>) {
    let active: BTreeSet<&TargetKey> = input
        .health
        .iter()
        .filter(|h| h.state != TargetState::Draining)
        .map(|h| &h.target)
        .collect();
    let wanted: BTreeSet<&TargetKey> = input.desired.targets.iter().collect();
    let register = wanted.difference(&active).map(|t| (*t).clone()).collect();
    let deregister = active
        .difference(&wanted)
        .filter(|t| may_deregister(input.binding, input.desired, t))
        .map(|t| (*t).clone())
        .collect();
    (deregister, register)
}

/// Whether the binding may deregister `target`: any target of its target group, or with
/// `multiClusterTargetGroup` only targets that belong to this cluster.
pub fn may_deregister(binding: &TargetGroupBinding, desired: &Desired, target: &TargetKey) -> bool {
    !binding.spec.multi_cluster_target_group.unwrap_or(false) || desired.known.contains(target)
}

/// The health the target group reports after deregistering and registering.
pub fn health_after(
    health: &[TargetHealth],
    deregister: &[TargetKey],
    register: &[TargetKey],
) -> Vec<TargetHealth> {
    let deregister: HashSet<&TargetKey> = deregister.iter().collect();
    let register_set: HashSet<&TargetKey> = register.iter().collect();
    let mut after: Vec<TargetHealth> = health
        .iter()
        .filter(|h| !register_set.contains(&h.target))
        .cloned()
        .map(|mut h| {
            if deregister.contains(&h.target) {
                h.state = TargetState::Draining;
            }
            h
        })
        .collect();
    after.extend(register.iter().cloned().map(TargetHealth::registering));
    after
}

/// `known` with what a DescribeTargetHealth of some of its targets said: described targets take
/// their described state, and those ELB reports as not registered (`unused`,
/// `Target.NotRegistered`: a drained target gone, or one removed behind our back) leave.
pub fn merge_described(known: &[TargetHealth], described: &[TargetHealth]) -> Vec<TargetHealth> {
    let fresh: HashMap<&TargetKey, &TargetHealth> =
        described.iter().map(|h| (&h.target, h)).collect();
    let mut merged: Vec<TargetHealth> = known
        .iter()
        .filter_map(|h| match fresh.get(&h.target) {
            Some(now) if now.is_not_registered() => None,
            Some(now) => Some((*now).clone()),
            None => Some(h.clone()),
        })
        .collect();
    let known_targets: HashSet<&TargetKey> = known.iter().map(|h| &h.target).collect();
    merged.extend(
        described
            .iter()
            .filter(|h| !known_targets.contains(&h.target) && !h.is_not_registered())
            .cloned(),
    );
    merged
}

#[derive(Default)]
struct GatePass {
    writes: Vec<GateWrite>,
    missing: Vec<PodRef>,
    pending: Vec<PendingGate>,
}

/// Each gated pod's verdict and, where it changed, the write.
fn gate_pass(input: &PassInput, health: &[TargetHealth], now_text: &str) -> GatePass {
    let binding = input.binding.metadata.name.clone().unwrap_or_default();
    let health: HashMap<&TargetKey, &TargetHealth> =
        health.iter().map(|h| (&h.target, h)).collect();
    let mut pass = GatePass::default();
    for pod in input.pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let target = input.desired.pod_targets.get(&name);
        let types = gates::gate_types_on(pod, &binding);
        if types.is_empty() {
            // The webhook gives a gate only to pods created once the binding exists: a pod
            // older than its binding carries none, and that is no fault. Timestamps are whole
            // seconds: a pod of the binding's second may be older, and is not listed.
            let after_binding = match (
                &pod.metadata.creation_timestamp,
                &input.binding.metadata.creation_timestamp,
            ) {
                (Some(pod), Some(binding)) => pod.0 > binding.0,
                _ => true,
            };
            if let (true, true, Some(_), Some(uid)) = (
                input.injection_enabled,
                after_binding,
                target,
                &pod.metadata.uid,
            ) {
                pass.missing.push(PodRef {
                    name,
                    uid: uid.clone(),
                });
            }
            continue;
        }
        let target_health = target.and_then(|t| health.get(t).copied());
        let verdict = gates::verdict(target, target_health, &input.group.name);
        if !verdict.status {
            pass.pending.push(PendingGate {
                pod: name.clone(),
                target: target.cloned(),
            });
        }
        if !gates::worth_writing(pod, &types, &verdict) {
            continue;
        }
        if let Some(patch) = gates::patch(pod, &types, &verdict, now_text) {
            pass.writes.push(GateWrite {
                pod: name,
                uid: pod.metadata.uid.clone(),
                verdict,
                patch,
            });
        }
    }
    pass
}

/// On a change only, unless ELB has something to tell: a target still `initial` (it will turn
/// healthy or unhealthy: a pending gate, and the health summary, wait for it), a pending gate
/// whose target is registered, or a target draining (it will go). Then the planned delay (see
/// [`polling`]). A pending gate of a pod that is no registered target (its containers are not
/// ready yet) waits for the pod's own change, which brings a pass anyway.
fn next_look(
    group: &TargetGroupInfo,
    pending: &[PendingGate],
    health: &[TargetHealth],
    registered_now: &[TargetKey],
    clock: &PassClock,
) -> (NextLook, Option<PollState>) {
    let states: HashMap<&TargetKey, &TargetState> =
        health.iter().map(|h| (&h.target, &h.state)).collect();
    let registered = |target: &TargetKey| {
        states
            .get(target)
            .is_some_and(|s| **s != TargetState::Draining)
    };
    let mut watched: Vec<TargetKey> = pending
        .iter()
        .filter_map(|g| g.target.clone())
        .filter(|t| registered(t))
        .collect();
    let watched_set: HashSet<TargetKey> = watched.iter().cloned().collect();
    let initial: Vec<TargetKey> = health
        .iter()
        .filter(|h| h.state == TargetState::Initial && !watched_set.contains(&h.target))
        .map(|h| h.target.clone())
        .collect();
    watched.extend(initial);
    let draining = health.iter().any(|h| h.state == TargetState::Draining);
    if watched.is_empty() && !draining {
        return (NextLook::OnChange, None);
    }
    let registered_now: HashSet<&TargetKey> = registered_now.iter().collect();
    let registered_at = |target: &TargetKey| {
        if registered_now.contains(target) {
            Some(clock.now)
        } else {
            (clock.registered_at)(target)
        }
    };
    let expected = polling::expected_healthy(group, &watched, &states, &registered_at, clock.now);
    let mut poll = clock.poll;
    let delay = poll.next(
        polling::signature(health),
        !watched.is_empty(),
        &expected,
        clock.now,
    );
    (NextLook::After(delay), Some(poll))
}

/// What deleting a binding does: deregister its targets (with `multiClusterTargetGroup`, only
/// this cluster's), and open every gate of it still closed, so no pod stays unready behind a gate
/// nobody will open any more.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanupPlan {
    pub deregister: Vec<TargetKey>,
    pub gate_writes: Vec<GateWrite>,
}

/// `health` is None when the target group is gone (or was never named): nothing to deregister.
pub fn plan_cleanup(
    binding: &TargetGroupBinding,
    desired: &Desired,
    health: Option<&[TargetHealth]>,
    pods: &[Arc<Pod>],
    now_text: &str,
) -> CleanupPlan {
    let deregister = health
        .unwrap_or_default()
        .iter()
        .filter(|h| h.state != TargetState::Draining)
        .map(|h| h.target.clone())
        .filter(|t| may_deregister(binding, desired, t))
        .collect();
    let name = binding.metadata.name.clone().unwrap_or_default();
    let released = GateVerdict {
        status: true,
        reason: "BindingDeleted".to_string(),
        message: format!("TargetGroupBinding {name} was deleted"),
    };
    let gate_writes = pods
        .iter()
        .filter_map(|pod| {
            let closed: Vec<String> = gates::gate_types_on(pod, &name)
                .into_iter()
                .filter(|t| condition_status(pod, t) != Some("True"))
                .collect();
            let patch = gates::patch(pod, &closed, &released, now_text)?;
            Some(GateWrite {
                pod: pod.metadata.name.clone().unwrap_or_default(),
                uid: pod.metadata.uid.clone(),
                verdict: released.clone(),
                patch,
            })
        })
        .collect();
    CleanupPlan {
        deregister,
        gate_writes,
    }
}

/// The Warning for a pod behind binding `binding` that carries no gate of it.
pub fn missing_gate_message(binding: &str) -> String {
    format!(
        "pod is behind TargetGroupBinding {binding} but has no readiness gate {}{binding}: it was created while the pod webhook was unreachable, or before the binding or the namespace label; its readiness does not wait for the load balancer. Recreate the pod to get the gate.",
        keys::GATE_PREFIX
    )
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
