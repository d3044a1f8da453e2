//! One group's pass: build the ALB from the members that can be built, converge AWS, then the
//! bindings, the members' finalizers, statuses and Events. A member that cannot be built keeps
//! what it had in AWS (its rules and target groups are held) and hears why; the others go on.
//! A group with no member left is removed from AWS, then its leavers' finalizers go.

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use kube::runtime::events::EventType;
use lb_aws::deployer::apply::{LoadBalancers, apply, remove};
use lb_aws::deployer::diff::{Owner, diff, missing_subnets, teardown};
use lb_aws::{Certificates, Ec2};
use lb_model::ingress::member::{Cluster, needs_certificate_discovery};
use lb_model::ingress::{GroupId, GroupMember, build_group};
use lb_model::service::objects::{adopted_name, binding_object};
use lb_model::stack::{Stack, StackKind};

use super::IngressContext;
use super::error::IngressError;
use super::members::GroupView;
use super::objects;
use crate::security_groups;

/// What a pass did, for the log.
#[derive(Debug, Default)]
pub struct Passed {
    pub steps: usize,
    pub dns_name: Option<String>,
    /// Bindings still draining after the group was removed: look again soon.
    pub draining: bool,
}

pub async fn reconcile_group<L: LoadBalancers, E: Ec2, C: Certificates>(
    group: &GroupId,
    view: &GroupView,
    ctx: &IngressContext<L, E, C>,
) -> Result<Passed, IngressError> {
    if view.members.is_empty() {
        return remove_group(group, view, ctx).await;
    }
    let (stack, broken) = desired(group, view, ctx).await?;
    let good: Vec<&Ingress> = view
        .members
        .iter()
        .map(|m| m.ingress.as_ref())
        .filter(|i| !broken.contains(&key(i)))
        .collect();
    // The finalizer goes on before anything exists in AWS, so nothing can be left behind.
    for ingress in &good {
        objects::add_finalizer(&ctx.client, ingress, &group.finalizer()).await?;
    }
    if let Some(dns_name) = ctx.already_converged(group, &stack) {
        finish_members(ctx, &good, view, group, dns_name.as_deref()).await?;
        return Ok(Passed {
            dns_name,
            ..Passed::default()
        });
    }
    let (steps, dns_name) = converge(group, stack.clone(), ctx).await?;
    finish_members(ctx, &good, view, group, dns_name.as_deref()).await?;
    ctx.remember(group, Some((stack, dns_name.clone())));
    Ok(Passed {
        steps,
        dns_name,
        draining: false,
    })
}

/// The group's desired stack from the members that build, and the keys of those that do not
/// (each told why by a Warning; those already in the ALB are held as they are).
async fn desired<L: LoadBalancers, E: Ec2, C: Certificates>(
    group: &GroupId,
    view: &GroupView,
    ctx: &IngressContext<L, E, C>,
) -> Result<(Stack, BTreeSet<String>), IngressError> {
    let subnets = ctx
        .ec2
        .subnets()
        .await
        .map_err(|source| IngressError::Discovery {
            what: "subnets",
            source,
        })?;
    let needs_acm = view
        .members
        .iter()
        .any(|m| needs_certificate_discovery(&m.ingress, m.params.as_ref()));
    let certificates = if needs_acm {
        ctx.acm
            .certificates()
            .await
            .map_err(|source| IngressError::Discovery {
                what: "ACM certificates",
                source,
            })?
    } else {
        Vec::new()
    };
    let service = |namespace: &str, name: &str| {
        ctx.stores
            .service(namespace, name)
            .map(|s| s.as_ref().clone())
    };
    let cluster = Cluster {
        settings: &ctx.settings,
        service: &service,
        certificates: &certificates,
    };
    let buildable: Vec<GroupMember> = view
        .members
        .iter()
        .filter(|m| m.refused.is_none())
        .map(|m| GroupMember {
            ingress: &m.ingress,
            params: m.params.as_ref(),
        })
        .collect();
    let built = build_group(group, &buildable, &cluster, &subnets);
    let mut broken: Vec<(&Ingress, String)> = view
        .members
        .iter()
        .filter_map(|m| Some((m.ingress.as_ref(), m.refused.clone()?)))
        .collect();
    for outcome in &built.outcomes {
        let Some(member) = view.members.iter().find(|m| key(&m.ingress) == outcome.key) else {
            continue;
        };
        for warning in &outcome.warnings {
            ctx.warn(&member.ingress, "AnnotationWarning", warning)
                .await;
        }
        for adapted in &outcome.adapted {
            ctx.publish(
                &member.ingress,
                EventType::Normal,
                "DefaultAdapted",
                adapted,
            )
            .await;
        }
        if let Some(error) = &outcome.error {
            broken.push((member.ingress.as_ref(), error.clone()));
        }
    }
    for (ingress, why) in &broken {
        ctx.warn(ingress, "FailedBuildModel", why).await;
    }
    let Some(mut stack) = built.stack else {
        return Err(IngressError::NoMember {
            group: group.stack_id(),
        });
    };
    // A broken member that was in the ALB (it has the finalizer) keeps its rules until fixed.
    stack.held_members = broken
        .iter()
        .filter(|(i, _)| i.finalizers().iter().any(|f| *f == group.finalizer()))
        .map(|(i, _)| key(i))
        .collect();
    Ok((stack, broken.iter().map(|(i, _)| key(i)).collect()))
}

/// AWS converged to `stack`, then the group's bindings: the steps taken and the DNS name.
async fn converge<L: LoadBalancers, E: Ec2, C: Certificates>(
    group: &GroupId,
    mut stack: Stack,
    ctx: &IngressContext<L, E, C>,
) -> Result<(usize, Option<String>), IngressError> {
    let owner = Owner::of(&stack);
    let groups = security_groups::resolve(&ctx.ec2, &owner, &mut stack).await?;
    let existing = ctx.elb.describe_stack(&owner).await?;
    let steps = diff(&stack, &existing);
    if let Some(problem) = missing_subnets(&stack, &steps) {
        return Err(IngressError::NoSubnets {
            group: group.stack_id(),
            problem: problem.to_string(),
        });
    }
    if !steps.is_empty() {
        tracing::info!(steps = ?steps, "converging");
    }
    let applied = apply(&ctx.elb, &stack, &existing, &steps).await?;
    security_groups::after_apply(&ctx.ec2, &owner, &groups, &steps).await?;
    let existing_bindings = objects::group_bindings(&ctx.client, group).await?;
    let mut wanted = Vec::new();
    for binding in &stack.bindings {
        let Some(arn) = applied.target_group_arns.get(&binding.target_group) else {
            continue;
        };
        let name = adopted_name(&existing_bindings, arn, &binding.name);
        // An ALB always has security groups: no rule by address.
        let none = lb_model::stack::SourceAddresses::default();
        let object = binding_object(binding, &name, arn, groups.rules_source(), &none);
        objects::apply_binding(&ctx.client, &object).await?;
        wanted.push(name);
    }
    // While a member is held its bindings are not known here: none is removed until it is fixed.
    if stack.held_members.is_empty() {
        for stale in &existing_bindings {
            if !wanted.contains(&stale.name_any()) {
                objects::delete_binding(&ctx.client, stale).await?;
            }
        }
    }
    Ok((steps.len(), applied.dns_name))
}

/// The members' statuses and Events; the leavers' finalizers go.
async fn finish_members<L, E, C>(
    ctx: &IngressContext<L, E, C>,
    good: &[&Ingress],
    view: &GroupView,
    group: &GroupId,
    dns_name: Option<&str>,
) -> Result<(), IngressError> {
    for ingress in good {
        objects::set_status(&ctx.client, ingress, dns_name).await?;
    }
    for ingress in &view.leaving {
        objects::set_status(&ctx.client, ingress, None).await?;
        objects::remove_finalizer(&ctx.client, ingress, &group.finalizer()).await?;
    }
    for ingress in good {
        ctx.publish(
            ingress,
            EventType::Normal,
            "SuccessfullyReconciled",
            "Successfully reconciled",
        )
        .await;
    }
    Ok(())
}

/// No member left: bindings first (their finalizers deregister the targets while the target
/// groups exist), then the ALB and all it owned, then the security group, then the finalizers.
async fn remove_group<L: LoadBalancers, E: Ec2, C: Certificates>(
    group: &GroupId,
    view: &GroupView,
    ctx: &IngressContext<L, E, C>,
) -> Result<Passed, IngressError> {
    let bindings = objects::group_bindings(&ctx.client, group).await?;
    if !bindings.is_empty() {
        for binding in bindings
            .iter()
            .filter(|b| b.metadata.deletion_timestamp.is_none())
        {
            objects::delete_binding(&ctx.client, binding).await?;
        }
        return Ok(Passed {
            draining: true,
            ..Passed::default()
        });
    }
    let owner = Owner {
        cluster: ctx.settings.cluster.clone(),
        kind: StackKind::Ingress,
        stack_id: group.stack_id(),
    };
    let existing = ctx.elb.describe_stack(&owner).await?;
    let steps = teardown(&owner, &existing);
    if !steps.is_empty() {
        tracing::info!(steps = ?steps, "removing the group's ALB");
    }
    remove(&ctx.elb, &steps).await?;
    security_groups::remove(&ctx.elb, &ctx.ec2, &owner).await?;
    ctx.remember(group, None);
    for ingress in &view.leaving {
        if ingress.metadata.deletion_timestamp.is_none() {
            objects::set_status(&ctx.client, ingress, None).await?;
        }
        objects::remove_finalizer(&ctx.client, ingress, &group.finalizer()).await?;
    }
    Ok(Passed {
        steps: steps.len(),
        ..Passed::default()
    })
}

fn key(ingress: &Ingress) -> String {
    lb_model::ingress::group::member_key(ingress)
}
