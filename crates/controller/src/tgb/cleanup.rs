//! A binding being deleted: its targets are deregistered (with `multiClusterTargetGroup`, only
//! this cluster's) and every gate of it still closed is opened, so no pod stays unready behind a
//! gate nobody will open any more. Then the finalizer goes.

use kube::runtime::controller::Action;
use lb_api::TargetGroupBinding;
use lb_aws::{Elbv2, TargetGroups};
use lb_model::plan::plan_cleanup;
use lb_model::targets::Desired;

use super::pass::{describe, desired};
use super::{Context, binding_key};
use crate::budget::CallKind;
use crate::error::{ControllerError, Result};
use crate::pod_conditions;
use crate::writes::ClusterWrites;

pub async fn cleanup<A: Elbv2, W: ClusterWrites>(
    binding: &TargetGroupBinding,
    ctx: &Context<A, W>,
) -> Result<Action> {
    let resolved = match ctx.target_groups.resolve(&ctx.aws, binding).await {
        Ok(resolved) => Some(resolved),
        // Nothing to deregister from a target group that is gone or was never named.
        Err(ControllerError::TargetGroupNotFound { .. } | ControllerError::NoTargetGroup) => None,
        Err(err) => return Err(err),
    };
    // This cluster's targets, as far as they can still be told (the Service may be gone).
    let ours = match &resolved {
        Some((_, group)) => desired(binding, group, ctx)
            .map(|(_, desired)| desired)
            .unwrap_or_default(),
        None => Desired::default(),
    };
    let health = match &resolved {
        Some((client, group)) => match describe(ctx, client, group, None).await {
            Ok(health) => Some(health),
            Err(ControllerError::TargetGroupNotFound { .. }) => None,
            Err(err) => return Err(err),
        },
        None => None,
    };
    let namespace = binding.metadata.namespace.clone().unwrap_or_default();
    let pods = ctx.stores.pods_in(&namespace);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let plan = plan_cleanup(binding, &ours, health.as_deref(), &pods, &now);
    if let Some((client, group)) = &resolved
        && !plan.deregister.is_empty()
    {
        ctx.budget
            .run(
                CallKind::Deregister,
                client.deregister_targets(&group.arn, &plan.deregister),
            )
            .await?;
        ctx.metrics.deregistered(plan.deregister.len());
    }
    // A gate write of the binding's last pass still queued or in flight must not land after
    // these.
    let name = binding.metadata.name.clone().unwrap_or_default();
    ctx.gate_writer.settle_binding(&namespace, &name).await;
    pod_conditions::write(
        &ctx.writes,
        &ctx.metrics,
        &namespace,
        plan.gate_writes,
        None,
    )
    .await?;
    let key = binding_key(binding);
    if let Some(rules) = &ctx.target_rules {
        rules.forget(&key, &ctx.stores).await?;
    }
    ctx.memory.forget(&key);
    ctx.status_writer.forget(&namespace, &name);
    if let Some((_, group)) = &resolved {
        ctx.memory.unknow(&group.arn);
    }
    ctx.metrics
        .pending_gates
        .update(&key, &[], std::time::Instant::now());
    Ok(Action::await_change())
}
