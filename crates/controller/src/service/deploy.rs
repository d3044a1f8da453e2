//! A Service of ours: its stack built by the model, AWS converged to it, then its
//! TargetGroupBindings and its status hostname. Nothing is written to AWS when the model cannot be
//! built (a bad annotation): the error names it and AWS stays as it was.

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::runtime::events::EventType;
use lb_api::TargetType;
use lb_aws::Ec2;
use lb_aws::deployer::apply::{LoadBalancers, apply};
use lb_aws::deployer::diff::{Existing, Owner, Step, diff, missing_subnets};
use lb_aws::deployer::switch::{self, Switch};
use lb_model::service::ModelError;
use lb_model::service::build::BuildError;
use lb_model::service::objects::{adopted_name, binding_object, load_balancer_status};
use lb_model::stack::Listener;

use super::ServiceContext;
use super::error::ServiceError;
use super::objects;
use crate::security_groups;

/// What a deploy did, for the log and the Event.
#[derive(Debug, Default)]
pub struct Deployed {
    pub steps: usize,
    pub dns_name: Option<String>,
    /// Listeners (by port) still on a target group being replaced, until its replacement has a
    /// registered target: the reconcile looks again soon.
    pub waiting: Vec<u16>,
}

pub async fn deploy<L: LoadBalancers, E: Ec2>(
    service: &Service,
    target_type: Option<TargetType>,
    ctx: &ServiceContext<L, E>,
) -> Result<Deployed, ServiceError> {
    let subnets = ctx.ec2.subnets().await.map_err(ServiceError::Subnets)?;
    let built = lb_model::service::desired(service, target_type, &ctx.cluster, &subnets)?;
    for warning in &built.warnings {
        ctx.warn(service, "UnsupportedAnnotation", warning).await;
    }
    for adapted in &built.adapted {
        ctx.publish(service, EventType::Normal, "DefaultAdapted", adapted)
            .await;
    }
    // The finalizer goes on before anything exists in AWS, so nothing can be left behind.
    if !objects::has_finalizer(service) {
        objects::add_finalizer(&ctx.client, service).await?;
    }
    let mut stack = built.stack;
    let owner = Owner::of(&stack);
    let existing = ctx.elb.describe_stack(&owner).await?;
    security_groups::keep_legacy_nlb(&mut stack, &existing);
    let groups = security_groups::resolve(&ctx.ec2, &owner, &mut stack).await?;
    let steps = diff(&stack, &existing);
    if let Some(problem) = missing_subnets(&stack, &steps) {
        return Err(ModelError::Build(BuildError::Subnets(problem.to_string())).into());
    }
    let held = switches_to_hold(&ctx.elb, &stack.listeners, &existing, &steps).await?;
    let steps = switch::hold(steps, &held);
    if !steps.is_empty() {
        tracing::info!(steps = ?steps, "converging");
        tracing::debug!(?existing, desired = ?stack, "what differs");
    }
    let applied = apply(&ctx.elb, &stack, &existing, &steps).await?;
    security_groups::after_apply(&ctx.ec2, &owner, &groups, &steps).await?;
    let addresses = security_groups::source_addresses(&ctx.ec2, &stack, &existing).await?;
    let namespace = service.namespace().unwrap_or_default();
    let existing_bindings =
        objects::stack_bindings(&ctx.client, &namespace, &service.name_any()).await?;
    let mut wanted = Vec::new();
    for binding in &stack.bindings {
        let Some(arn) = applied.target_group_arns.get(&binding.target_group) else {
            continue;
        };
        let name = adopted_name(&existing_bindings, arn, &binding.name);
        let object = binding_object(binding, &name, arn, groups.rules_source(), &addresses);
        objects::apply_binding(&ctx.client, &object).await?;
        wanted.push(name);
    }
    // While a switch waits, the old group's binding keeps its targets registered.
    if held.is_empty() {
        for stale in &existing_bindings {
            if !wanted.contains(&stale.name_any()) {
                objects::delete_binding(&ctx.client, stale).await?;
            }
        }
    }
    if let Some(dns_name) = &applied.dns_name {
        objects::set_status(&ctx.client, service, Some(load_balancer_status(dns_name))).await?;
    }
    Ok(Deployed {
        steps: steps.len(),
        dns_name: applied.dns_name,
        waiting: held.iter().map(|h| h.port).collect(),
    })
}

/// The listener switches that must wait: the old group still has targets and the new one has
/// none registered yet (or does not exist yet).
async fn switches_to_hold<L: LoadBalancers>(
    elb: &L,
    listeners: &[Listener],
    existing: &Existing,
    steps: &[Step],
) -> Result<Vec<Switch>, ServiceError> {
    let mut held = Vec::new();
    for candidate in switch::switches(listeners, existing, steps) {
        if elb.registered_targets(&candidate.old_arn).await? == 0 {
            continue;
        }
        let replacement = existing.target_groups.iter().find(|t| {
            t.group.resource_id == candidate.new_resource_id && t.arn != candidate.old_arn
        });
        let ready = match replacement {
            Some(new) => elb.registered_targets(&new.arn).await? > 0,
            None => false,
        };
        if !ready {
            held.push(candidate);
        }
    }
    Ok(held)
}
