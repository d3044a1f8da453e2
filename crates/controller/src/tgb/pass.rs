//! One pass of a live binding: read the snapshot, plan, carry the plan out in order. An AWS call
//! that fails stops the pass before anything that depends on it (no gate opens on health the
//! controller has not seen); the next pass starts again from what AWS then reports, so a call
//! that took effect although its answer was lost is never repeated.

use std::time::Instant;

use kube::runtime::controller::Action;
use lb_api::TargetGroupBinding;
use lb_aws::{AwsErrorKind, Elbv2, TargetGroups};
use lb_model::binding_admission::check_spec;
use lb_model::elb::{TargetGroupInfo, TargetHealth};
use lb_model::plan::{self, NextLook, PassClock, PassInput, Plan, missing_gate_message};
use lb_model::targets::{ClusterView, Desired, desired_targets};

use super::{Context, binding_key};
use crate::error::{ControllerError, Result};
use crate::pod_conditions;
use crate::report;
use crate::writes::ClusterWrites;

pub async fn apply<A: Elbv2, W: ClusterWrites>(
    binding: &TargetGroupBinding,
    ctx: &Context<A, W>,
) -> Result<Action> {
    check_spec(&binding.spec).map_err(ControllerError::InvalidSpec)?;
    let (client, group) = ctx.target_groups.resolve(&ctx.aws, binding).await?;
    let namespace = binding.metadata.namespace.clone().unwrap_or_default();
    let (target_type, desired) = desired(binding, &group, ctx)?;
    let health = target_health(ctx, &client, &group).await?;
    let health_seen = Instant::now();
    let pods = ctx.stores.pods_in(&namespace);
    let key = binding_key(binding);
    let plan = {
        let input = PassInput {
            binding,
            group: &group,
            target_type,
            desired: &desired,
            health: &health,
            pods: &pods,
            injection_enabled: ctx.stores.injection_enabled(&namespace),
        };
        let now_text = k8s_openapi::jiff::Timestamp::now().to_string();
        let registered_at = |target: &_| ctx.memory.registered_at(&group.arn, target);
        let clock = PassClock {
            now: health_seen,
            now_text: &now_text,
            registered_at: &registered_at,
            poll: ctx.memory.poll(&key),
        };
        plan::plan(&input, &clock)
    };
    execute(binding, ctx, &client, &group, plan, health_seen).await
}

/// The binding's target type and desired targets, from the watch caches.
pub(super) fn desired<A, W>(
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

/// DescribeTargetHealth; a target group found gone is forgotten, so that one created again
/// under its name is found.
pub(super) async fn target_health<A, W, C: TargetGroups>(
    ctx: &Context<A, W>,
    client: &C,
    group: &TargetGroupInfo,
) -> Result<Vec<TargetHealth>> {
    client.target_health(&group.arn).await.map_err(|err| {
        if err.kind == AwsErrorKind::NotFound {
            ctx.target_groups.forget(&group.arn);
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

async fn execute<A: Elbv2, W: ClusterWrites>(
    binding: &TargetGroupBinding,
    ctx: &Context<A, W>,
    client: &A::Client,
    group: &TargetGroupInfo,
    plan: Plan,
    health_seen: Instant,
) -> Result<Action> {
    let namespace = binding.metadata.namespace.clone().unwrap_or_default();
    let key = binding_key(binding);
    // Deregister first: a leaving pod must stop getting traffic before anything else happens.
    if !plan.deregister.is_empty() {
        client
            .deregister_targets(&group.arn, &plan.deregister)
            .await?;
        ctx.metrics.deregistered(plan.deregister.len());
    }
    if !plan.register.is_empty() {
        client.register_targets(&group.arn, &plan.register).await?;
        ctx.memory
            .registered(&group.arn, &plan.register, Instant::now());
        ctx.metrics.registered(plan.register.len());
    }
    for note in &plan.notes {
        report::note(&ctx.writes, binding, note.reason, &note.message).await;
    }
    pod_conditions::write(
        &ctx.writes,
        &ctx.metrics,
        &namespace,
        plan.gate_writes,
        Some(health_seen),
    )
    .await?;
    report_missing_gates(binding, ctx, &plan.missing_gates).await;
    ctx.memory.settle(&group.arn, &plan.health_after);
    let pending: Vec<String> = plan.pending.into_iter().map(|g| g.pod).collect();
    ctx.metrics
        .pending_gates
        .update(&key, &pending, Instant::now());
    report::status(&ctx.writes, binding, &plan.status).await?;
    ctx.memory.set_poll(&key, plan.poll);
    Ok(match plan.next_look {
        NextLook::OnChange => Action::await_change(),
        NextLook::After(delay) => {
            Action::requeue((health_seen + delay).saturating_duration_since(Instant::now()))
        }
    })
}

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
