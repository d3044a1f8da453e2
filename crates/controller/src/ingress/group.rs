//! One group's pass: build the ALB from the members that can be built, converge it through the
//! pipeline, then the members' finalizers, statuses and Events. A member that cannot be built
//! keeps what it had in AWS (its rules and target groups are held) and hears why; the others go
//! on. A group with no member left is removed from AWS, then its leavers' finalizers go.

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use kube::runtime::events::EventType;
use lb_aws::deployer::apply::LoadBalancers;
use lb_aws::deployer::diff::Owner;
use lb_aws::{Certificates, Ec2};
use lb_model::ingress::member::{Cluster, Services, needs_certificate_discovery};
use lb_model::ingress::{Certificate, GroupId, GroupMember, MemberOutcome, build_group};
use lb_model::service::subnets::Subnet;
use lb_model::stack::{Stack, StackKind};

use super::IngressContext;
use super::members::GroupView;
use crate::stack::objects::{add_finalizer, remove_finalizer, show_hostname};
use crate::stack::{BindingScope, Removed, StackError, StackWrites};

/// What a pass did, for the log.
#[derive(Debug, Default)]
pub struct Passed {
    pub steps: usize,
    pub dns_name: Option<String>,
    /// A switch to a replacement target group waits, or bindings still drain after the group
    /// was removed: look again soon.
    pub waiting: bool,
}

/// Where a group's bindings are: every namespace (a group spans them), by the group's labels.
fn binding_scope(group: &GroupId) -> BindingScope {
    BindingScope {
        namespace: None,
        selectors: group.binding_selectors(),
    }
}

pub async fn reconcile_group<L: LoadBalancers, E: Ec2, C: Certificates, W: StackWrites>(
    group: &GroupId,
    view: &GroupView,
    ctx: &IngressContext<L, E, C, W>,
) -> Result<Passed, StackError> {
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
    let writes = &ctx.pipeline.writes;
    // The finalizer goes on before anything exists in AWS, so nothing can be left behind.
    for ingress in &good {
        add_finalizer(writes, *ingress, &group.finalizer()).await?;
    }
    let converged = ctx.pipeline.converge(stack, &binding_scope(group)).await?;
    for ingress in &good {
        show_hostname(writes, *ingress, converged.dns_name.as_deref()).await?;
    }
    for ingress in &view.leaving {
        show_hostname(writes, ingress.as_ref(), None).await?;
        remove_finalizer(writes, ingress.as_ref(), &group.finalizer()).await?;
    }
    for ingress in &good {
        let reason = "SuccessfullyReconciled";
        writes
            .publish(
                *ingress,
                EventType::Normal,
                reason,
                "Successfully reconciled",
            )
            .await;
    }
    Ok(Passed {
        steps: converged.steps,
        dns_name: converged.dns_name,
        waiting: !converged.waiting.is_empty(),
    })
}

/// The group's desired stack from the members that build, and the keys of those that do not
/// (each told why by a Warning; those already in the ALB are held as they are).
async fn desired<L: LoadBalancers, E: Ec2, C: Certificates, W: StackWrites>(
    group: &GroupId,
    view: &GroupView,
    ctx: &IngressContext<L, E, C, W>,
) -> Result<(Stack, BTreeSet<String>), StackError> {
    let buildable: Vec<GroupMember> = view
        .members
        .iter()
        .filter(|m| m.refused.is_none())
        .map(|m| GroupMember::new(&m.ingress, m.params.as_ref()))
        .collect();
    let (subnets, certificates) = discover(&buildable, ctx).await?;
    let namespaces: BTreeSet<Option<String>> = view
        .members
        .iter()
        .map(|m| m.ingress.metadata.namespace.clone())
        .collect();
    let services = Services::new(
        ctx.stores
            .services
            .state()
            .into_iter()
            .filter(|s| namespaces.contains(&s.metadata.namespace)),
    );
    let cluster = Cluster {
        settings: &ctx.settings,
        services: &services,
        certificates: &certificates,
    };
    let built = build_group(group, &buildable, &cluster, &subnets);
    let broken = report_outcomes(view, &built.outcomes, &ctx.pipeline.writes).await;
    let Some(mut stack) = built.stack else {
        return Err(StackError::NoMember {
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

/// The VPC's subnets, and the account's certificates when a member finds its own by host.
async fn discover<L, E: Ec2, C: Certificates, W>(
    members: &[GroupMember<'_>],
    ctx: &IngressContext<L, E, C, W>,
) -> Result<(Vec<Subnet>, Vec<Certificate>), StackError> {
    let discovery = |what| move |source| StackError::Discovery { what, source };
    let subnets = ctx.pipeline.subnets().await?;
    let needs_acm = members.iter().any(needs_certificate_discovery);
    let certificates = match needs_acm {
        true => ctx
            .acm
            .certificates()
            .await
            .map_err(discovery("ACM certificates"))?,
        false => Vec::new(),
    };
    Ok((subnets, certificates))
}

/// Each member's warnings and adapted defaults as Events; the members that cannot be built
/// (refused by their class, or by the model), each told why.
async fn report_outcomes<'a, W: StackWrites>(
    view: &'a GroupView,
    outcomes: &[MemberOutcome],
    writes: &W,
) -> Vec<(&'a Ingress, String)> {
    let mut broken: Vec<(&Ingress, String)> = view
        .members
        .iter()
        .filter_map(|m| Some((m.ingress.as_ref(), m.refused.clone()?)))
        .collect();
    for outcome in outcomes {
        let Some(member) = view.members.iter().find(|m| key(&m.ingress) == outcome.key) else {
            continue;
        };
        let ingress = member.ingress.as_ref();
        for warning in &outcome.warnings {
            writes
                .publish(ingress, EventType::Warning, "AnnotationWarning", warning)
                .await;
        }
        for adapted in &outcome.adapted {
            writes
                .publish(ingress, EventType::Normal, "DefaultAdapted", adapted)
                .await;
        }
        if let Some(error) = &outcome.error {
            broken.push((ingress, error.to_string()));
        }
    }
    for (ingress, why) in &broken {
        writes
            .publish(*ingress, EventType::Warning, "FailedBuildModel", why)
            .await;
    }
    broken
}

/// No member left: the pipeline removes the ALB and all it owned (bindings first), then the
/// leavers' statuses are cleared and their finalizers go.
async fn remove_group<L: LoadBalancers, E: Ec2, C: Certificates, W: StackWrites>(
    group: &GroupId,
    view: &GroupView,
    ctx: &IngressContext<L, E, C, W>,
) -> Result<Passed, StackError> {
    let owner = Owner {
        cluster: ctx.settings.cluster.clone(),
        kind: StackKind::Ingress,
        stack_id: group.stack_id(),
    };
    let steps = match ctx.pipeline.remove(&owner, &binding_scope(group)).await? {
        Removed::Draining => {
            return Ok(Passed {
                waiting: true,
                ..Passed::default()
            });
        }
        Removed::Gone { steps } => steps,
    };
    let writes = &ctx.pipeline.writes;
    for ingress in &view.leaving {
        if ingress.metadata.deletion_timestamp.is_none() {
            show_hostname(writes, ingress.as_ref(), None).await?;
        }
        remove_finalizer(writes, ingress.as_ref(), &group.finalizer()).await?;
    }
    Ok(Passed {
        steps,
        ..Passed::default()
    })
}

fn key(ingress: &Ingress) -> String {
    lb_model::ingress::group::member_key(ingress)
}
