//! One pass of a live binding: read the snapshot, plan, carry the plan out in order. An AWS call
//! that fails stops the pass before anything that depends on it (no gate opens on health the
//! controller has not seen), and what the controller knew of the target group is dropped: the
//! next pass describes it whole, so a call that took effect although its answer was lost is
//! never repeated.
//!
//! Registration never waits for a describe: what a target group holds is known from the last
//! DescribeTargetHealth and the controller's own calls since ([`KnownTargets`]), so a pass
//! triggered by new endpoints registers them at once. Health is looked at only when a look is
//! due (the plan's next look: a target may have turned healthy), after that pass's own
//! registrations, and only for the targets whose state can have changed when they are few (not
//! the batches still on their way to healthy).
//! A burst of endpoint changes is taken in batches: passes that look at no health start at
//! least [`PASS_SPACING`] apart, the first at once.

use std::future::Future;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use lb_api::TargetGroupBinding;
use lb_aws::{AwsErrorKind, Elbv2, TargetGroups};
use lb_model::binding_admission::check_spec;
use lb_model::elb::{TargetGroupInfo, TargetHealth, TargetKey};
use lb_model::plan::{self, NextLook, PassClock, PassInput, Plan, missing_gate_message};
use lb_model::polling;
use lb_model::targets::{ClusterView, Desired, desired_targets};
use tracing::Instrument;

use super::diagnosis::{Diagnosis, diagnose};
use super::memory::KnownTargets;
use super::target_rules::BindingTargets;
use super::{Context, binding_key};
use crate::budget::CallKind;
use crate::error::{ControllerError, Result};
use crate::report;
use crate::writes::ClusterWrites;

/// How long what the controller knows of a target group stands in for a full describe (upstream
/// keeps its targets cache as long). Past it, the next pass describes the group whole.
pub const KNOWLEDGE_TTL: Duration = Duration::from_secs(300);
/// The least time between the starts of two passes of one binding that look at no health.
pub const PASS_SPACING: Duration = Duration::from_millis(250);
/// The least time between two status writes of a binding that only move its figures (counts,
/// health summary); a change of its Ready condition is written at once.
pub const STATUS_SPACING: Duration = Duration::from_secs(2);
/// The least wait before rules that failed are tried again (the pass itself went on).
const RULES_RETRY: Duration = Duration::from_secs(10);
/// How soon targets whose interface was not found are looked for again.
const UNRESOLVED_RETRY: Duration = Duration::from_secs(2);
/// A look due this soon is taken now.
const LOOK_EARLY: Duration = Duration::from_millis(20);

/// Runs `phase` in its own span and times it (`lb_controller_pass_phase_seconds`).
async fn phase<A, W: ClusterWrites, T>(
    ctx: &Context<A, W>,
    name: &'static str,
    work: impl Future<Output = T>,
) -> T {
    let started = Instant::now();
    let out = work
        .instrument(tracing::debug_span!("phase", phase = name))
        .await;
    ctx.metrics.phase(name, started.elapsed());
    out
}

/// Runs `call` within the shared call budget: the wait for a slot is timed as the phase
/// `budget_wait` (the controller's own queue), the call itself as `name` (AWS's answer).
async fn budgeted<A, W: ClusterWrites, T>(
    ctx: &Context<A, W>,
    kind: CallKind,
    name: &'static str,
    call: impl Future<Output = T>,
) -> T {
    let permit = phase(ctx, "budget_wait", ctx.budget.acquire(kind)).await;
    let out = phase(ctx, name, call).await;
    drop(permit);
    out
}

pub async fn apply<A: Elbv2, W: ClusterWrites>(
    binding: &TargetGroupBinding,
    ctx: &Context<A, W>,
) -> Result<Action> {
    check_spec(&binding.spec).map_err(ControllerError::InvalidSpec)?;
    let (client, group) =
        phase(ctx, "resolve", ctx.target_groups.resolve(&ctx.aws, binding)).await?;
    let result = converge(binding, ctx, &client, &group).await;
    if let Err(ControllerError::Aws(_)) = &result {
        // An AWS call failed: whether it took effect is unknown.
        ctx.memory.unknow(&group.arn);
    }
    result
}

async fn converge<A: Elbv2, W: ClusterWrites>(
    binding: &TargetGroupBinding,
    ctx: &Context<A, W>,
    client: &A::Client,
    group: &TargetGroupInfo,
) -> Result<Action> {
    let key = binding_key(binding);
    let now = Instant::now();
    let known = ctx.memory.known(&group.arn, KNOWLEDGE_TTL, now);
    let due = ctx.memory.due(&key);
    let look_due = due.is_some_and(|at| at <= now + LOOK_EARLY);
    if let Some(wait) = paced(ctx, &key, known.is_some() && !look_due, due, now) {
        ctx.metrics.phase("pace", wait);
        return Ok(Action::requeue(wait));
    }
    ctx.memory.pass_started(&key, now);
    let (target_type, desired) =
        phase(ctx, "snapshot", async { desired(binding, group, ctx) }).await?;
    let mut rules = rules_phase(binding, ctx, &key, target_type, &desired, group, now).await;
    let namespace = binding.metadata.namespace.clone().unwrap_or_default();
    let pods = ctx.stores.pods_in(&namespace);
    let injection_enabled = ctx.stores.injection_enabled(&namespace);
    let now_text = k8s_openapi::jiff::Timestamp::now().to_string();
    // Kept by `change_targets` for every registration, this pass's included.
    let registered_at = |target: &TargetKey| ctx.memory.registered_at(&group.arn, target);
    let plan_with = |health: &[TargetHealth], at: Instant| {
        let input = PassInput {
            binding,
            group,
            target_type,
            desired: &desired,
            health,
            pods: &pods,
            injection_enabled,
        };
        let clock = PassClock {
            now: at,
            now_text: &now_text,
            registered_at: &registered_at,
            poll: ctx.memory.poll(&key),
        };
        plan::plan(&input, &clock)
    };
    let pass = Pass {
        binding,
        ctx,
        client,
        group,
    };
    let looked = pass
        .look(known, look_due, &plan_with, &registered_at)
        .await?;
    let seen = looked.looked_at.unwrap_or_else(Instant::now);
    let mut plan = plan_with(&looked.health, seen);
    report_rules(
        binding, ctx, client, group, &key, &mut plan, &mut rules, seen,
    )
    .await;
    tracing::debug!(
        binding = %key,
        looked = looked.looked_at.is_some(),
        register = plan.register.len(),
        gate_writes = plan.gate_writes.len(),
        pending = plan.pending.len(),
        next_look = ?plan.next_look,
        "pass planned"
    );
    pass.finish(&key, plan, looked, due, rules.look, seen).await
}

/// How long a paced pass waits: never past the planned look. The pass comes back then rather
/// than sleeping here, so the worker it would hold goes to other bindings meanwhile (with 100
/// bindings the sleeping passes kept the others waiting). Nothing changed yet: the planned look
/// and any put-off status write are taken by that pass. A binding whose last pass failed is not
/// paced: this early return would count as a success and reset its backoff.
fn paced<A, W: ClusterWrites>(
    ctx: &Context<A, W>,
    key: &str,
    may_pace: bool,
    due: Option<Instant>,
    now: Instant,
) -> Option<Duration> {
    if !may_pace || ctx.memory.failing(key) {
        return None;
    }
    let previous = ctx.memory.last_start(key)?;
    let until = (previous + PASS_SPACING).min(due.unwrap_or(previous + PASS_SPACING));
    let wait = until.saturating_duration_since(now);
    (!wait.is_zero()).then_some(wait)
}

/// When the pass wants to look again: its plan's next look or the rules', the sooner.
fn next_look(plan: &Plan, rules_look: Option<Instant>, seen: Instant) -> Option<Instant> {
    let next = match plan.next_look {
        NextLook::OnChange => None,
        NextLook::After(delay) => Some(seen + delay),
    };
    match (next, rules_look) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One binding's pass: what it works on.
struct Pass<'a, A: Elbv2, W: ClusterWrites> {
    binding: &'a TargetGroupBinding,
    ctx: &'a Context<A, W>,
    client: &'a A::Client,
    group: &'a TargetGroupInfo,
}

/// What the pass knows of the group's targets after its look (if it looked).
struct Looked {
    health: Vec<TargetHealth>,
    /// When the whole group was last described.
    described_at: Instant,
    /// When this pass looked (None: it did not).
    looked_at: Option<Instant>,
}

impl<A: Elbv2, W: ClusterWrites> Pass<'_, A, W> {
    /// Carries the plan out, remembers what the group holds and when to look again; the
    /// pass's requeue.
    async fn finish(
        &self,
        key: &str,
        plan: Plan,
        looked: Looked,
        due: Option<Instant>,
        rules_look: Option<Instant>,
        seen: Instant,
    ) -> Result<Action> {
        let ctx = self.ctx;
        let next = next_look(&plan, rules_look, seen);
        // A pass that did not look keeps the look already planned, unless its own plan wants
        // one sooner (it registered targets that may turn healthy first).
        let keep_planned = looked.looked_at.is_none()
            && due.is_some_and(|planned| next.is_none_or(|wanted| planned <= wanted));
        let poll = plan.poll;
        let health_after = plan.health_after.clone();
        let status_later = execute(self.binding, ctx, self.client, self.group, plan, seen).await?;
        ctx.memory.know(
            &self.group.arn,
            KnownTargets {
                health: health_after,
                described_at: looked.described_at,
            },
        );
        let next = if keep_planned {
            due
        } else {
            ctx.memory.set_poll(key, poll);
            next
        };
        ctx.memory.set_due(key, next);
        // A status write put off comes back at its time (not as a look).
        let requeue = next.into_iter().chain(status_later).min();
        Ok(match requeue {
            None => Action::await_change(),
            Some(at) => Action::requeue(at.saturating_duration_since(Instant::now())),
        })
    }

    /// What the group holds: known, or described whole now; when a look is due, the targets
    /// are registered and deregistered first, from what is known, then looked at.
    async fn look(
        &self,
        known: Option<KnownTargets>,
        look_due: bool,
        plan_with: &(dyn Fn(&[TargetHealth], Instant) -> Plan + Sync),
        registered_at: &(dyn Fn(&TargetKey) -> Option<Instant> + Sync),
    ) -> Result<Looked> {
        let (binding, ctx, client, group) = (self.binding, self.ctx, self.client, self.group);
        let known = match known {
            Some(known) => known,
            None => {
                let health = describe(ctx, client, group, None).await?;
                let at = Instant::now();
                return Ok(Looked {
                    health,
                    described_at: at,
                    looked_at: Some(at),
                });
            }
        };
        let mut looked = Looked {
            health: known.health,
            described_at: known.described_at,
            looked_at: None,
        };
        if !look_due {
            return Ok(looked);
        }
        let changes = plan_with(&looked.health, Instant::now());
        change_targets(binding, ctx, client, group, &changes).await?;
        let mut health = changes.health_after;
        // Only what can have changed: not the batches still on their way to healthy (the
        // targets this pass just registered among them).
        let watched = polling::worth_asking(group, &health, registered_at, Instant::now());
        if watched.is_empty() {
            // Nothing whose state can have changed: nothing to ask.
        } else if watched.len() * 2 < health.len() {
            let described = describe(ctx, client, group, Some(&watched)).await?;
            health = plan::merge_described(&health, &described);
        } else {
            health = describe(ctx, client, group, None).await?;
            looked.described_at = Instant::now();
        }
        // What this pass just changed stands, even if the describe does not show it yet.
        looked.health = plan::health_after(&health, &changes.deregister, &changes.register);
        looked.looked_at = Some(Instant::now());
        Ok(looked)
    }
}

/// The binding's target type and desired targets, from the watch caches.
pub(super) fn desired<A, W: ClusterWrites>(
    binding: &TargetGroupBinding,
    group: &TargetGroupInfo,
    ctx: &Context<A, W>,
) -> Result<(lb_api::TargetType, Desired)> {
    let namespace = binding.metadata.namespace.clone().unwrap_or_default();
    let service_name = &binding.spec.service_ref.name;
    let service = ctx.stores.service(&namespace, service_name);
    let slices = ctx.stores.slices_of(&namespace, service_name);
    let nodes = ctx.stores.nodes.state();
    let pod = |name: &str| ctx.stores.pod(&namespace, name);
    let cluster = ClusterView {
        service: service.as_deref(),
        slices: &slices,
        pod: &pod,
        nodes: &nodes,
    };
    Ok(desired_targets(binding, group, &cluster)?)
}

/// DescribeTargetHealth of the group, or of `targets`, within the call budget; a target group
/// found gone is forgotten, so that one created again under its name is found.
pub(super) async fn describe<A, W: ClusterWrites, C: TargetGroups>(
    ctx: &Context<A, W>,
    client: &C,
    group: &TargetGroupInfo,
    targets: Option<&[TargetKey]>,
) -> Result<Vec<TargetHealth>> {
    let call = client.target_health(&group.arn, targets);
    budgeted(ctx, CallKind::Describe, "describe", call)
        .await
        .map_err(|err| {
            if err.kind == AwsErrorKind::NotFound {
                ctx.target_groups.forget(&group.arn);
                ctx.memory.unknow(&group.arn);
                ControllerError::TargetGroupNotFound {
                    field: "spec.targetGroupARN",
                    value: group.arn.clone(),
                    account: None,
                }
            } else {
                err.into()
            }
        })
}

/// Deregisters, then registers, what `plan` says, within the call budget; with the plan's notes.
async fn change_targets<A: Elbv2, W: ClusterWrites>(
    binding: &TargetGroupBinding,
    ctx: &Context<A, W>,
    client: &A::Client,
    group: &TargetGroupInfo,
    plan: &Plan,
) -> Result<()> {
    if !plan.deregister.is_empty() || !plan.register.is_empty() {
        tracing::debug!(target_group = %group.arn, deregister = ?plan.deregister, register = ?plan.register, "changing targets");
    }
    // Deregister first: a leaving pod must stop getting traffic before anything else happens.
    if !plan.deregister.is_empty() {
        let call = client.deregister_targets(&group.arn, &plan.deregister);
        budgeted(ctx, CallKind::Deregister, "deregister", call).await?;
        ctx.metrics.deregistered(plan.deregister.len());
    }
    if !plan.register.is_empty() {
        let call = client.register_targets(&group.arn, &plan.register);
        budgeted(ctx, CallKind::Register, "register", call).await?;
        ctx.memory
            .registered(&group.arn, &plan.register, Instant::now());
        ctx.metrics.registered(plan.register.len());
    }
    for note in &plan.notes {
        report::note(&ctx.writes, binding, note.reason, &note.message).await;
    }
    Ok(())
}

/// Carries `plan` out; returns when a status write put off is due (see [`STATUS_SPACING`]).
async fn execute<A: Elbv2, W: ClusterWrites>(
    binding: &TargetGroupBinding,
    ctx: &Context<A, W>,
    client: &A::Client,
    group: &TargetGroupInfo,
    plan: Plan,
    health_seen: Instant,
) -> Result<Option<Instant>> {
    let namespace = binding.metadata.namespace.clone().unwrap_or_default();
    let key = binding_key(binding);
    change_targets(binding, ctx, client, group, &plan).await?;
    // Handed over, not awaited: the next pass's registrations never wait for them.
    let gate_writes = plan.gate_writes;
    phase(ctx, "gates", async {
        ctx.gate_writer.submit(
            &namespace,
            binding.metadata.name.as_deref().unwrap_or_default(),
            gate_writes,
            Some(health_seen),
        )
    })
    .await;
    report_missing_gates(binding, ctx, &plan.missing_gates).await;
    ctx.memory.settle(&group.arn, &plan.health_after);
    let pending: Vec<String> = plan.pending.into_iter().map(|g| g.pod).collect();
    ctx.metrics
        .pending_gates
        .update(&key, &pending, Instant::now());
    let now = Instant::now();
    let written_at = ctx.memory.status_written_at(&key);
    if let Some(at) = written_at
        && now < at + STATUS_SPACING
        && lb_model::status::only_figures_move(binding, &plan.status)
    {
        return Ok(Some(at + STATUS_SPACING));
    }
    // Handed over, not awaited (see `crate::status_writer`).
    if report::status(&ctx.status_writer, binding, &plan.status) {
        ctx.memory.status_written(&key, Instant::now());
    }
    Ok(None)
}

/// What the security-group rules made of a pass: a look they ask for (soon after rules opened
/// the way to the targets, which may turn healthy; later while they fail or a diagnosis
/// stands, as someone may fix it), and a failure to report.
#[derive(Default)]
struct RulesPhase {
    look: Option<Instant>,
    failed: Option<ControllerError>,
}

impl RulesPhase {
    fn look_at(&mut self, at: Instant) {
        self.look = Some(self.look.map_or(at, |planned| planned.min(at)));
    }
}

/// Writes the binding's `networking` on its targets' groups. A failure does not hold the
/// targets back (their registration and gates go on): it is reported with the status, and the
/// rules are tried again after the error's category's first delay (at least [`RULES_RETRY`]).
async fn rules_phase<A, W: ClusterWrites>(
    binding: &TargetGroupBinding,
    ctx: &Context<A, W>,
    key: &str,
    target_type: lb_api::TargetType,
    desired: &Desired,
    group: &TargetGroupInfo,
    now: Instant,
) -> RulesPhase {
    let mut out = RulesPhase::default();
    let Some(rules) = &ctx.target_rules else {
        return out;
    };
    let targets = BindingTargets {
        key,
        binding,
        target_type,
        desired,
    };
    match phase(ctx, "target_rules", rules.reconcile(&targets, &ctx.stores)).await {
        Ok(outcome) => {
            if !outcome.unresolved.is_empty() {
                tracing::debug!(binding = %key, unresolved = ?outcome.unresolved, "targets whose interface is not known yet");
                out.look_at(now + UNRESOLVED_RETRY);
            }
            if outcome.opened {
                let settle = lb_model::polling::time_to_healthy(group).unwrap_or(PASS_SPACING);
                out.look_at(now + settle);
            }
        }
        Err(err) => {
            let err = ControllerError::from(err);
            tracing::warn!(binding = %key, reason = err.reason(), "target rules: {err}");
            let delay = crate::error::retry_delay(err.category(), 1)
                .unwrap_or(super::diagnosis::DIAGNOSIS_TTL)
                .max(RULES_RETRY);
            out.look_at(now + delay);
            out.failed = Some(err);
        }
    }
    out
}

/// What the rules say in the binding's status: their failure, else a diagnosis of targets a
/// security group drops (looked at again within [`super::diagnosis::DIAGNOSIS_TTL`]).
#[allow(clippy::too_many_arguments)]
async fn report_rules<A, W: ClusterWrites, C: TargetGroups>(
    binding: &TargetGroupBinding,
    ctx: &Context<A, W>,
    client: &C,
    group: &TargetGroupInfo,
    key: &str,
    plan: &mut Plan,
    rules_phase: &mut RulesPhase,
    seen: Instant,
) {
    let Some(rules) = &ctx.target_rules else {
        return;
    };
    if let Some(err) = &rules_phase.failed {
        let said = binding_says(binding, err.reason(), &err.to_string());
        plan.status.ready = false;
        plan.status.reason = err.reason().to_string();
        plan.status.message = err.to_string();
        if !said {
            report::warn(&ctx.writes, binding, err.reason(), &plan.status.message).await;
        }
        return;
    }
    let found = diagnose(
        rules,
        &rules.diagnoses,
        key,
        client,
        group,
        &plan.health_after,
    );
    if let Some(diagnosis) = phase(ctx, "diagnosis", found).await {
        report_unreachable(
            binding,
            ctx,
            &mut plan.status,
            &plan.health_after,
            diagnosis,
        )
        .await;
        rules_phase.look_at(seen + super::diagnosis::DIAGNOSIS_TTL);
    }
}

/// Whether the binding's Ready condition already says this (its Warning was sent).
fn binding_says(binding: &TargetGroupBinding, reason: &str, message: &str) -> bool {
    binding
        .status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .any(|c| {
            c.type_ == lb_api::keys::CONDITION_READY && c.reason == reason && c.message == message
        })
}

/// Targets a security group drops: `Ready=False` with the diagnosis, the count in the health
/// summary `kubectl get tgb` shows, and a Warning when the diagnosis is new.
async fn report_unreachable<A, W: ClusterWrites>(
    binding: &TargetGroupBinding,
    ctx: &Context<A, W>,
    status: &mut lb_model::status::BindingStatus,
    health: &[TargetHealth],
    diagnosis: Diagnosis,
) {
    let summary = lb_model::status::health_summary(health);
    status.ready = false;
    status.reason = UNREACHABLE.to_string();
    status.message = format!(
        "{} target(s) unreachable: {}",
        diagnosis.unreachable, diagnosis.message
    );
    status.target_health = Some(format!("{summary}, {} unreachable", diagnosis.unreachable));
    if diagnosis.fresh {
        report::warn(&ctx.writes, binding, UNREACHABLE, &status.message).await;
    }
}

/// The reason of a binding whose targets a security group drops.
const UNREACHABLE: &str = "TargetsUnreachable";

/// One Warning per pod behind the binding that carries no gate of it.
async fn report_missing_gates<A, W: ClusterWrites>(
    binding: &TargetGroupBinding,
    ctx: &Context<A, W>,
    pods: &[lb_model::plan::PodRef],
) {
    let namespace = binding.metadata.namespace.clone().unwrap_or_default();
    let name = binding.metadata.name.clone().unwrap_or_default();
    for pod in pods {
        if !ctx.reported_without_gate.first_time(&pod.uid) {
            continue;
        }
        ctx.metrics.pod_without_gate();
        let message = missing_gate_message(&name);
        report::warn_pod(
            &ctx.writes,
            &namespace,
            pod,
            "ReadinessGateMissing",
            &message,
        )
        .await;
    }
}
