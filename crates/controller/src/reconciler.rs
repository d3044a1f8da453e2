//! The TargetGroupBinding reconciler: registers the binding's desired targets, deregisters the
//! rest, and flips readiness gates the moment ELB says a pod's target is healthy.
//!
//! One pass: resolve the target group, read the Service and its endpoints from the caches, compute
//! the desired targets (`desired`), describe the target group's health once, register and
//! deregister the difference in one call each (chunked), write each gated pod's condition if it
//! changed (`gates`), and record status. While a gate is pending, the next look is planned
//! (`polling`): a target we just registered cannot be healthy before interval x threshold, so the
//! reconciler sleeps until then and looks right after; past that it looks every 500 ms, slower
//! while nothing moves. Otherwise it waits for a change and makes no AWS call at all.
//!
//! Ownership: a target group bound by a binding is the binding's. Every registered target that is
//! not desired is deregistered, as upstream does; with `multiClusterTargetGroup`, only targets
//! that are endpoints of the bound Service (or, in instance mode, nodes of this cluster) are ever
//! deregistered, so other clusters' targets stay.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use lb_api::{TargetGroupBinding, TargetGroupBindingStatus, TargetType, keys};
use lb_aws::{TargetGroupInfo, TargetGroups, TargetHealth, TargetKey, TargetState};
use serde_json::json;

use crate::desired::{self, Desired};
use crate::error::{ControllerError, KubeContext, Result};
use crate::{gates, polling};

const FIELD_MANAGER: &str = "lb-controller";
/// Pod status writes in flight at once per binding.
const GATE_WRITES_AT_ONCE: usize = 16;
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// The caches the reconciler reads instead of the API.
#[derive(Clone)]
pub struct Stores {
    pub bindings: Store<TargetGroupBinding>,
    pub namespaces: Store<Namespace>,
    pub pods: Store<Pod>,
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub nodes: Store<Node>,
}

pub struct Context<T> {
    pub client: Client,
    pub aws: T,
    pub stores: Stores,
    pub recorder: Recorder,
    /// Consecutive failures per binding, for exponential backoff; reset on success.
    failures: Mutex<HashMap<ObjectRef<TargetGroupBinding>, u32>>,
    /// Health polling per binding while gates are pending.
    polls: Mutex<HashMap<ObjectRef<TargetGroupBinding>, crate::polling::PollState>>,
    /// When this process registered each target: the earliest it can turn healthy follows.
    registered_at: Mutex<HashMap<(String, TargetKey), Instant>>,
    /// Pods already reported for lacking a readiness gate, by uid: one Warning each.
    reported_without_gate: Mutex<HashSet<String>>,
    /// Target groups by ARN or name; their type and ARN never change.
    target_groups: Mutex<HashMap<String, TargetGroupInfo>>,
    /// Counters for /metrics and benchmarks.
    pub metrics: crate::metrics::Metrics,
}

impl<T> Context<T> {
    pub fn new(client: Client, aws: T, stores: Stores, recorder: Recorder) -> Self {
        Self {
            client,
            aws,
            stores,
            recorder,
            failures: Mutex::default(),
            polls: Mutex::default(),
            registered_at: Mutex::default(),
            reported_without_gate: Mutex::default(),
            target_groups: Mutex::default(),
            metrics: crate::metrics::Metrics::default(),
        }
    }
}

fn lock<V>(mutex: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

pub async fn reconcile<T: TargetGroups>(
    binding: Arc<TargetGroupBinding>,
    ctx: Arc<Context<T>>,
) -> Result<Action> {
    let started = Instant::now();
    let namespace = binding.namespace().unwrap_or_default();
    let api: Api<TargetGroupBinding> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = ObjectRef::from_obj(&*binding);
    let result = finalizer(&api, keys::FINALIZER, binding.clone(), |event| async {
        match event {
            finalizer::Event::Apply(b) => apply(&b, &ctx).await,
            finalizer::Event::Cleanup(b) => cleanup(&b, &ctx).await,
        }
    })
    .await;
    ctx.metrics
        .observe_reconcile(started.elapsed(), result.is_ok());
    match result {
        Ok(action) => {
            lock(&ctx.failures).remove(&key);
            Ok(action)
        }
        Err(finalizer::Error::ApplyFailed(err) | finalizer::Error::CleanupFailed(err)) => {
            report_failure(&binding, &ctx, &err).await;
            Err(err)
        }
        Err(other) => Err(ControllerError::Finalizer(other.to_string())),
    }
}

/// Per-binding exponential backoff with jitter (kube-runtime has none of its own).
pub fn error_policy<T>(
    binding: Arc<TargetGroupBinding>,
    err: &ControllerError,
    ctx: Arc<Context<T>>,
) -> Action {
    let key = ObjectRef::from_obj(&*binding);
    let failures = {
        let mut all = lock(&ctx.failures);
        let count = all.entry(key).or_insert(0);
        *count = count.saturating_add(1);
        *count
    };
    let exponential = BACKOFF_BASE.saturating_mul(2u32.saturating_pow(failures.min(16) - 1));
    let delay = exponential.min(BACKOFF_CAP);
    let jitter = delay.mul_f64(rand::random::<f64>() * 0.2);
    tracing::warn!(binding = %binding.name_any(), reason = err.reason(), failures, ?delay, "reconcile failed: {err}");
    Action::requeue(delay + jitter)
}

async fn report_failure<T>(binding: &TargetGroupBinding, ctx: &Context<T>, err: &ControllerError) {
    let event = Event {
        type_: EventType::Warning,
        reason: err.reason().to_string(),
        note: Some(truncate(&err.to_string(), 1000)),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    if let Err(publish) = ctx.recorder.publish(&event, &binding.object_ref(&())).await {
        tracing::debug!("publishing an event failed: {publish}");
    }
    let condition = ready_condition(binding, false, err.reason(), &err.to_string());
    let _ = write_status(binding, ctx, condition).await;
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

async fn target_group<T: TargetGroups>(
    binding: &TargetGroupBinding,
    ctx: &Context<T>,
) -> Result<TargetGroupInfo> {
    let (key, by_arn) = match (
        &binding.spec.target_group_arn,
        &binding.spec.target_group_name,
    ) {
        (Some(arn), _) if !arn.is_empty() => (arn.clone(), true),
        (_, Some(name)) if !name.is_empty() => (name.clone(), false),
        _ => return Err(ControllerError::NoTargetGroup),
    };
    if let Some(found) = lock(&ctx.target_groups).get(&key) {
        return Ok(found.clone());
    }
    let found = if by_arn {
        ctx.aws.describe_target_group(&key).await?
    } else {
        ctx.aws.find_target_group(&key).await?
    };
    let found = found.ok_or_else(|| ControllerError::TargetGroupNotFound(key.clone()))?;
    lock(&ctx.target_groups).insert(key, found.clone());
    Ok(found)
}

/// The binding's desired targets and its target type.
fn desired_targets<T>(
    binding: &TargetGroupBinding,
    ctx: &Context<T>,
    group: &TargetGroupInfo,
) -> Result<(TargetType, Desired)> {
    let namespace = binding.namespace().unwrap_or_default();
    let target_type = desired::target_type_of(binding, &group.target_type).ok_or_else(|| {
        ControllerError::UnsupportedTargetType(group.arn.clone(), group.target_type.clone())
    })?;
    if target_type.as_str() != group.target_type {
        return Err(ControllerError::TargetTypeMismatch {
            binding: target_type.as_str().to_string(),
            target_group: group.arn.clone(),
            group: group.target_type.clone(),
        });
    }
    let service_name = &binding.spec.service_ref.name;
    let service = ctx
        .stores
        .services
        .get(&ObjectRef::new(service_name).within(&namespace))
        .ok_or_else(|| ControllerError::ServiceNotFound {
            namespace: namespace.clone(),
            name: service_name.clone(),
        })?;
    let desired = match target_type {
        TargetType::Ip => {
            let slices: Vec<Arc<EndpointSlice>> = ctx
                .stores
                .slices
                .state()
                .into_iter()
                .filter(|s| {
                    s.namespace().as_deref() == Some(namespace.as_str())
                        && s.labels().get("kubernetes.io/service-name") == Some(service_name)
                })
                .collect();
            let pods = &ctx.stores.pods;
            let lookup = |name: &str| pods.get(&ObjectRef::new(name).within(&namespace));
            desired::ip_targets(binding, &service, &slices, &lookup)?
        }
        TargetType::Instance => {
            desired::instance_targets(binding, &service, &ctx.stores.nodes.state())?
        }
    };
    Ok((target_type, desired))
}

async fn apply<T: TargetGroups>(binding: &TargetGroupBinding, ctx: &Context<T>) -> Result<Action> {
    binding
        .spec
        .validate()
        .map_err(ControllerError::InvalidSpec)?;
    let group = target_group(binding, ctx).await?;
    let (target_type, desired) = desired_targets(binding, ctx, &group)?;
    let mut health = ctx.aws.target_health(&group.arn).await?;
    let active: BTreeSet<TargetKey> = health
        .iter()
        .filter(|h| h.state != TargetState::Draining)
        .map(|h| h.target.clone())
        .collect();
    let to_register: Vec<TargetKey> = desired.targets.difference(&active).cloned().collect();
    let multi_cluster = binding.spec.multi_cluster_target_group.unwrap_or(false);
    let ours: BTreeSet<&TargetKey> = desired.pod_targets.values().collect();
    let to_deregister: Vec<TargetKey> = active
        .difference(&desired.targets)
        .filter(|t| !multi_cluster || ours.contains(t) || target_type == TargetType::Instance)
        .cloned()
        .collect();

    // Deregister first: a leaving pod must stop getting traffic before anything else happens.
    if !to_deregister.is_empty() {
        ctx.aws
            .deregister_targets(&group.arn, &to_deregister)
            .await?;
        ctx.metrics.deregistered(to_deregister.len());
        note(
            binding,
            ctx,
            "TargetsDeregistered",
            format!(
                "deregistered {} target(s) from {}",
                to_deregister.len(),
                group.name
            ),
        )
        .await;
        for target in &to_deregister {
            if let Some(h) = health.iter_mut().find(|h| &h.target == target) {
                h.state = TargetState::Draining;
            }
        }
    }
    if !to_register.is_empty() {
        ctx.aws.register_targets(&group.arn, &to_register).await?;
        let now = Instant::now();
        lock(&ctx.registered_at).extend(
            to_register
                .iter()
                .map(|t| ((group.arn.clone(), t.clone()), now)),
        );
        ctx.metrics.registered(to_register.len());
        note(
            binding,
            ctx,
            "TargetsRegistered",
            format!(
                "registered {} target(s) in {}",
                to_register.len(),
                group.name
            ),
        )
        .await;
        for target in to_register {
            health.retain(|h| h.target != target);
            health.push(TargetHealth {
                target,
                state: TargetState::Initial,
                reason: Some("Elb.RegistrationInProgress".to_string()),
                description: Some("Target registration is in progress".to_string()),
            });
        }
    }

    let pending = if target_type == TargetType::Ip {
        write_gates(binding, ctx, &group, &desired, &health).await?
    } else {
        Vec::new()
    };
    let pending_gates = pending.len();
    // Forget registration times of targets that are healthy or gone.
    lock(&ctx.registered_at).retain(|(arn, target), _| {
        arn != &group.arn
            || health
                .iter()
                .any(|h| &h.target == target && h.state == TargetState::Initial)
    });
    let draining = health.iter().any(|h| h.state == TargetState::Draining);
    let registered = health
        .iter()
        .filter(|h| h.state != TargetState::Draining)
        .count();
    let message = format!(
        "{registered} target(s) registered in {}; {pending_gates} readiness gate(s) pending",
        group.name
    );
    write_status(
        binding,
        ctx,
        ready_condition(binding, true, "Synced", &message),
    )
    .await?;

    let key = ObjectRef::from_obj(binding);
    if pending.is_empty() && !draining {
        lock(&ctx.polls).remove(&key);
        return Ok(Action::await_change());
    }
    let earliest = earliest_healthy(ctx, &group, &pending, &health);
    let mut polls = lock(&ctx.polls);
    let delay = polls.entry(key).or_default().next(
        polling::signature(&health),
        !pending.is_empty(),
        earliest,
        Instant::now(),
    );
    Ok(Action::requeue(delay))
}

/// The earliest moment every pending target could be healthy, when all of them are targets this
/// process registered and still `initial`; None when any is in another state or of unknown age.
fn earliest_healthy<T>(
    ctx: &Context<T>,
    group: &TargetGroupInfo,
    pending: &[TargetKey],
    health: &[TargetHealth],
) -> Option<Instant> {
    let settle = polling::time_to_healthy(group)?;
    let registered_at = lock(&ctx.registered_at);
    pending
        .iter()
        .map(|target| {
            let initial = health
                .iter()
                .any(|h| &h.target == target && h.state == TargetState::Initial);
            let at = registered_at.get(&(group.arn.clone(), target.clone()))?;
            initial.then_some(*at + settle)
        })
        .collect::<Option<Vec<Instant>>>()?
        .into_iter()
        .min()
}

/// Writes each gated pod's condition where it changed; returns the targets of the pods whose gate
/// is still closed (a pod that is no target yet counts as an empty key).
async fn write_gates<T>(
    binding: &TargetGroupBinding,
    ctx: &Context<T>,
    group: &TargetGroupInfo,
    desired: &Desired,
    health: &[TargetHealth],
) -> Result<Vec<TargetKey>> {
    let namespace = binding.namespace().unwrap_or_default();
    let name = binding.name_any();
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let mut pending = Vec::new();
    let mut writes = Vec::new();
    // In a namespace labelled for injection, a pod behind the binding without its gate is a pod
    // whose readiness the load balancer does not hold: say so once per pod.
    let injects = ctx
        .stores
        .namespaces
        .get(&ObjectRef::new(&namespace))
        .is_some_and(|ns| gates::injection_enabled(ns.metadata.labels.as_ref()));
    let mut without_gate = Vec::new();
    for pod in ctx.stores.pods.state() {
        if pod.namespace().as_deref() != Some(namespace.as_str())
            || pod.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        let types = gates::gate_types_on(&pod, &name);
        if types.is_empty() {
            if injects && desired.pod_targets.contains_key(&pod.name_any()) {
                without_gate.push(pod);
            }
            continue;
        }
        let target = desired.pod_targets.get(&pod.name_any());
        let target_health = target.and_then(|t| health.iter().find(|h| &h.target == t));
        let verdict = gates::verdict(target, target_health, &group.name);
        if !verdict.status {
            pending.push(target.cloned().unwrap_or_else(|| TargetKey::new("", 0)));
        }
        if let Some(patch) = gates::patch(&pod, &types, &verdict, &now) {
            writes.push((pod, verdict, patch));
        }
    }
    // Many pods flip at once in a rollout: write their conditions side by side.
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let results: Vec<Result<()>> = futures::stream::iter(writes)
        .map(|(pod, verdict, patch)| {
            let pods = pods.clone();
            async move { write_gate(ctx, &pods, &pod, &verdict, &patch).await }
        })
        .buffer_unordered(GATE_WRITES_AT_ONCE)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    report_without_gate(ctx, &name, without_gate).await;
    Ok(pending)
}

/// A Warning on each pod behind binding `name` that has no gate of it, once per pod.
async fn report_without_gate<T>(ctx: &Context<T>, name: &str, pods: Vec<Arc<Pod>>) {
    for pod in pods {
        let Some(uid) = pod.metadata.uid.clone() else {
            continue;
        };
        {
            let mut reported = lock(&ctx.reported_without_gate);
            if reported.len() > 100_000 {
                reported.clear(); // A bound, not a cache: at worst a pod is reported twice.
            }
            if !reported.insert(uid) {
                continue;
            }
        }
        ctx.metrics.pod_without_gate();
        let event = Event {
            type_: EventType::Warning,
            reason: "ReadinessGateMissing".into(),
            note: Some(format!(
                "pod is behind TargetGroupBinding {name} but has no readiness gate {}{name}: it was created while the pod webhook was unreachable, or before the binding or the namespace label; its readiness does not wait for the load balancer. Recreate the pod to get the gate.",
                keys::GATE_PREFIX
            )),
            action: "CheckReadinessGate".into(),
            secondary: None,
        };
        if let Err(err) = ctx.recorder.publish(&event, &pod.object_ref(&())).await {
            tracing::debug!("publishing an event failed: {err}");
        }
    }
}

async fn write_gate<T>(
    ctx: &Context<T>,
    pods: &Api<Pod>,
    pod: &Pod,
    verdict: &gates::GateVerdict,
    patch: &serde_json::Value,
) -> Result<()> {
    match pods
        .patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
    {
        Ok(_) => {
            if verdict.status {
                ctx.metrics.gate_opened();
            }
            tracing::debug!(pod = %pod.name_any(), status = verdict.status, reason = %verdict.reason, "readiness gate written");
            Ok(())
        }
        // Gone or recreated under the same name: its successor gets its own pass.
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
        Err(err) => {
            Err(err).context(|| format!("writing the readiness gate of pod {}", pod.name_any()))
        }
    }
}

async fn cleanup<T: TargetGroups>(
    binding: &TargetGroupBinding,
    ctx: &Context<T>,
) -> Result<Action> {
    let group = match target_group(binding, ctx).await {
        Ok(group) => Some(group),
        // Nothing to deregister from a target group that is gone or was never named.
        Err(ControllerError::TargetGroupNotFound(_) | ControllerError::NoTargetGroup) => None,
        Err(err) => return Err(err),
    };
    if let Some(group) = group {
        let ours: BTreeSet<TargetKey> = match desired_targets(binding, ctx, &group) {
            Ok((_, desired)) => desired
                .targets
                .into_iter()
                .chain(desired.pod_targets.into_values())
                .collect(),
            Err(_) => BTreeSet::new(),
        };
        let multi_cluster = binding.spec.multi_cluster_target_group.unwrap_or(false);
        let registered: Vec<TargetKey> = ctx
            .aws
            .target_health(&group.arn)
            .await?
            .into_iter()
            .filter(|h| h.state != TargetState::Draining)
            .map(|h| h.target)
            .filter(|t| !multi_cluster || ours.contains(t))
            .collect();
        if !registered.is_empty() {
            ctx.aws.deregister_targets(&group.arn, &registered).await?;
            ctx.metrics.deregistered(registered.len());
        }
    }
    // No pod may stay stuck behind a gate nobody will open any more.
    let namespace = binding.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let released = gates::GateVerdict {
        status: true,
        reason: "BindingDeleted".to_string(),
        message: format!("TargetGroupBinding {} was deleted", binding.name_any()),
    };
    for pod in ctx.stores.pods.state() {
        if pod.namespace().as_deref() != Some(namespace.as_str()) {
            continue;
        }
        let types = gates::gate_types_on(&pod, &binding.name_any());
        let pending: Vec<String> = types
            .into_iter()
            .filter(|t| desired::condition_status(&pod, t) != Some("True"))
            .collect();
        if let Some(patch) = gates::patch(&pod, &pending, &released, &now) {
            match pods
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(&patch),
                )
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
                Err(err) => {
                    return Err(err)
                        .context(|| format!("releasing the gate of pod {}", pod.name_any()));
                }
            }
        }
    }
    lock(&ctx.polls).remove(&ObjectRef::from_obj(binding));
    Ok(Action::await_change())
}

async fn note<T>(binding: &TargetGroupBinding, ctx: &Context<T>, reason: &str, message: String) {
    let event = Event {
        type_: EventType::Normal,
        reason: reason.to_string(),
        note: Some(message),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&event, &binding.object_ref(&())).await {
        tracing::debug!("publishing an event failed: {err}");
    }
}

fn ready_condition(
    binding: &TargetGroupBinding,
    ok: bool,
    reason: &str,
    message: &str,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let previous = binding.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == keys::CONDITION_READY)
    });
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Time(k8s_openapi::jiff::Timestamp::now()),
    };
    Condition {
        type_: keys::CONDITION_READY.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: truncate(message, 1000),
        last_transition_time,
        observed_generation: binding.metadata.generation,
    }
}

/// Writes the status only when it says something new.
async fn write_status<T>(
    binding: &TargetGroupBinding,
    ctx: &Context<T>,
    condition: Condition,
) -> Result<()> {
    let current = binding.status.clone().unwrap_or_default();
    let unchanged = current.observed_generation == binding.metadata.generation
        && current.conditions.iter().any(|c| {
            c.type_ == condition.type_
                && c.status == condition.status
                && c.reason == condition.reason
                && c.message == condition.message
        });
    if unchanged {
        return Ok(());
    }
    let status = TargetGroupBindingStatus {
        observed_generation: binding.metadata.generation,
        conditions: vec![condition],
    };
    let api: Api<TargetGroupBinding> =
        Api::namespaced(ctx.client.clone(), &binding.namespace().unwrap_or_default());
    api.patch_status(
        &binding.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(json!({
            "apiVersion": "elbv2.k8s.aws/v1beta1",
            "kind": "TargetGroupBinding",
            "status": status,
        })),
    )
    .await
    .context(|| format!("writing the status of {}", binding.name_any()))?;
    Ok(())
}
