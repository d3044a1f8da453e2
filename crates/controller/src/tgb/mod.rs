//! The TargetGroupBinding reconciler: registers the binding's desired targets, deregisters the
//! rest, and flips readiness gates the moment ELB says a pod's target is healthy. It decides
//! nothing itself: each pass reads a snapshot (the watch caches, and what the controller knows of
//! the target group, described when unknown or when a look is due), asks the model for the plan
//! ([`lb_model::plan`]) and carries it out ([`pass`]). Deleting a
//! binding deregisters its targets and opens its gates ([`cleanup`]), behind the finalizer
//! `elbv2.k8s.aws/resources`.
//!
//! A failed pass is reported (a Warning naming the problem, `Ready=False`) and retried as its
//! error's category says: an invalid spec when the object changes, a missing Service soon,
//! throttling after a long backoff (see [`crate::error`]).

mod cleanup;
mod diagnosis;
mod memory;
mod pass;
mod target_group;
pub mod target_rules;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, finalizer};
use kube::{Api, Client, ResourceExt};
use lb_api::{TargetGroupBinding, keys};
use lb_aws::Elbv2;

pub use memory::BindingMemory;
pub use target_group::{TargetGroupCache, TargetGroupRef, role_of};
pub use target_rules::{TargetRules, TargetRulesSettings};

use crate::budget::CallBudget;
use crate::error::{ControllerError, Result, retry_delay};
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::pod_conditions::GateWriter;
use crate::report::{self, ReportedOnce};
use crate::status_writer::StatusWriter;
use crate::stores::Stores;
use crate::writes::ClusterWrites;

/// What the reconciler (and the webhooks) share.
pub struct Context<A, W: ClusterWrites> {
    pub client: Client,
    pub aws: A,
    pub writes: Arc<W>,
    /// Where passes hand their gate writes.
    pub gate_writer: GateWriter<W>,
    /// Where passes hand their binding's status.
    pub status_writer: StatusWriter<W>,
    pub stores: Stores,
    pub target_groups: TargetGroupCache,
    pub metrics: Metrics,
    pub memory: BindingMemory,
    /// The ELB target calls in flight, shared by all bindings.
    pub budget: CallBudget,
    /// Pods already warned for lacking a readiness gate.
    pub reported_without_gate: ReportedOnce,
    /// Only the leader reconciles; a standby keeps its caches warm.
    pub leadership: Leadership,
    /// The rules on the targets' security groups (`spec.networking`); None: not managed.
    pub target_rules: Option<Arc<TargetRules>>,
}

impl<A, W: ClusterWrites> Context<A, W> {
    pub fn new(client: Client, aws: A, writes: W, stores: Stores) -> Self {
        let writes = Arc::new(writes);
        let metrics = Metrics::default();
        Self {
            client,
            aws,
            gate_writer: GateWriter::new(writes.clone(), metrics.clone()),
            status_writer: StatusWriter::new(writes.clone(), metrics.clone()),
            writes,
            stores,
            target_groups: TargetGroupCache::default(),
            metrics,
            memory: BindingMemory::default(),
            budget: CallBudget::default(),
            reported_without_gate: ReportedOnce::default(),
            leadership: Leadership::always(),
            target_rules: None,
        }
    }

    /// The same context, writing the bindings' `spec.networking` on their targets' groups
    /// (what it knows is dropped whenever the lease is lost).
    pub fn with_target_rules(mut self, rules: Option<TargetRules>) -> Self {
        self.target_rules = rules.map(Arc::new);
        if let Some(rules) = &self.target_rules {
            crate::leader::on_loss(&self.leadership, rules, TargetRules::forget_all);
        }
        self
    }

    /// The same context, reconciling only while `leadership` says this replica leads.
    pub fn with_leadership(mut self, leadership: Leadership) -> Self {
        // The writers, too, write only while leading (a pass may hand over writes just as the
        // Lease is lost).
        self.gate_writer = GateWriter::while_leading(
            self.writes.clone(),
            self.metrics.clone(),
            leadership.clone(),
        );
        self.status_writer = StatusWriter::while_leading(
            self.writes.clone(),
            self.metrics.clone(),
            leadership.clone(),
        );
        self.leadership = leadership;
        self
    }
}

/// `namespace/name`: the key of the binding's memory and metrics.
pub fn binding_key(binding: &TargetGroupBinding) -> String {
    format!(
        "{}/{}",
        binding.namespace().unwrap_or_default(),
        binding.name_any()
    )
}

#[tracing::instrument(skip_all, fields(binding = %binding_key(&binding), generation = binding.metadata.generation))]
pub async fn reconcile<A: Elbv2, W: ClusterWrites>(
    binding: Arc<TargetGroupBinding>,
    ctx: Arc<Context<A, W>>,
) -> Result<Action> {
    if !ctx.leadership.is_leader() {
        // A standby: the new leader looks at every binding once when it takes over.
        return Ok(Action::await_change());
    }
    ctx.stores.synced(false).await;
    let started = Instant::now();
    let api: Api<TargetGroupBinding> =
        Api::namespaced(ctx.client.clone(), &binding.namespace().unwrap_or_default());
    let result = finalizer(&api, keys::FINALIZER, binding.clone(), |event| async {
        match event {
            finalizer::Event::Apply(b) => pass::apply(&b, &ctx).await,
            finalizer::Event::Cleanup(b) => cleanup::cleanup(&b, &ctx).await,
        }
    })
    .await;
    ctx.metrics
        .observe_reconcile(started.elapsed(), result.is_ok());
    match result {
        Ok(action) => {
            ctx.memory.succeeded(&binding_key(&binding));
            Ok(action)
        }
        Err(finalizer::Error::ApplyFailed(err) | finalizer::Error::CleanupFailed(err)) => {
            if waiting_for_its_service(&binding, &err) {
                tracing::debug!(binding = %binding_key(&binding), "its Service does not exist yet: {err}");
            } else {
                report::failure(ctx.writes.as_ref(), &ctx.status_writer, &binding, &err).await;
            }
            Err(err)
        }
        Err(other) => Err(ControllerError::Finalizer(other.to_string())),
    }
}

/// How long a new binding may wait for its Service before that is a fault: manifests applied
/// together (the binding first) create the Service a moment later.
const SERVICE_GRACE: Duration = Duration::from_secs(15);

/// Whether `err` is a missing Service of a binding younger than [`SERVICE_GRACE`]: retried
/// (soon, as its category says) without a Warning or a failed status.
fn waiting_for_its_service(binding: &TargetGroupBinding, err: &ControllerError) -> bool {
    let missing = matches!(
        err,
        ControllerError::Desired(lb_model::targets::DesiredError::ServiceNotFound { .. })
    );
    let age = binding
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|created| k8s_openapi::jiff::Timestamp::now().as_second() - created.0.as_second());
    missing && age.is_some_and(|age| age < SERVICE_GRACE.as_secs() as i64)
}

/// Retries as the error's category says, with per-binding exponential backoff and jitter
/// (kube-runtime has none of its own).
pub fn error_policy<A, W: ClusterWrites>(
    binding: Arc<TargetGroupBinding>,
    err: &ControllerError,
    ctx: Arc<Context<A, W>>,
) -> Action {
    let failures = ctx.memory.failed(&binding_key(&binding));
    let category = err.category();
    match retry_delay(category, failures) {
        Some(delay) => {
            let jitter = delay.mul_f64(rand::random::<f64>() * 0.2);
            tracing::warn!(binding = %binding_key(&binding), reason = err.reason(), ?category, failures, ?delay, "reconcile failed: {err}");
            Action::requeue(delay + jitter)
        }
        None => {
            tracing::warn!(binding = %binding_key(&binding), reason = err.reason(), ?category, "reconcile failed, waiting for a change: {err}");
            Action::await_change()
        }
    }
}
