//! Carrying out the diff's steps through a [`LoadBalancers`] API (the SDK, or the in-memory fake),
//! in the diff's order. A failed call stops the apply: the next reconcile describes again and
//! diffs from what then exists, so a step whose answer was lost is not repeated blindly (ELB's
//! create calls are idempotent by name, and what was created carries our tags from the start).

use std::collections::BTreeMap;
use std::future::Future;

use lb_model::stack::{Action, Listener, LoadBalancer, Rule, Stack, SubnetMapping, TargetGroup};

use super::diff::{Existing, Owner, Step, resolve, same_identity};
use crate::error::{AwsError, AwsErrorKind};

/// The ELB calls the deployer needs. Created resources carry their tags from the create call.
pub trait LoadBalancers: Send + Sync {
    /// The load balancer, its listeners and the target groups that carry `owner`'s tags.
    fn describe_stack(
        &self,
        owner: &Owner,
    ) -> impl Future<Output = Result<Existing, AwsError>> + Send;
    /// Creates the target group and sets its attributes; returns its ARN.
    fn create_target_group(
        &self,
        group: &TargetGroup,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// Sets `group`'s health check on the target group `arn`.
    fn modify_health_check(
        &self,
        arn: &str,
        group: &TargetGroup,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn set_target_group_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn add_tags(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn remove_tags(
        &self,
        arn: &str,
        keys: &[String],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Creates the load balancer and sets its attributes.
    fn create_load_balancer(
        &self,
        lb: &LoadBalancer,
    ) -> impl Future<Output = Result<CreatedLoadBalancer, AwsError>> + Send;
    fn set_load_balancer_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn set_subnets(
        &self,
        arn: &str,
        subnets: &[SubnetMapping],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn set_security_groups(
        &self,
        arn: &str,
        groups: &[String],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// `default_action` is the listener's with its target groups named by ARN (the listener's
    /// own names them by resource id); it is created with the listener's tags, its rules are not
    /// created here.
    fn create_listener(
        &self,
        load_balancer_arn: &str,
        listener: &Listener,
        default_action: &Action,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;
    fn modify_listener(
        &self,
        arn: &str,
        listener: &Listener,
        default_action: &Action,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// The group's targets that are not leaving (not draining), and how many of them are
    /// healthy: a replacement waits for them. An unattached group's targets are `unused` (ELB
    /// checks no health there).
    fn target_counts(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<TargetCounts, AwsError>> + Send;
    fn delete_listener(&self, arn: &str) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Creates `rule` (tagged) with `action` (its own, target groups named by ARN); returns its ARN.
    fn create_rule(
        &self,
        listener_arn: &str,
        rule: &Rule,
        action: &Action,
        priority: u32,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// Sets the rule's conditions to `rule`'s and its action to `action`.
    fn modify_rule(
        &self,
        arn: &str,
        rule: &Rule,
        action: &Action,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn set_rule_priorities(
        &self,
        priorities: &[(String, u32)],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn delete_rule(&self, arn: &str) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn delete_target_group(&self, arn: &str) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn delete_load_balancer(&self, arn: &str) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// The security groups any load balancer of the account has (IDs).
    fn security_groups_in_use(
        &self,
    ) -> impl Future<Output = Result<std::collections::BTreeSet<String>, AwsError>> + Send;
}

/// A target group's targets, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetCounts {
    /// Not draining.
    pub registered: usize,
    pub healthy: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedLoadBalancer {
    pub arn: String,
    pub dns_name: String,
}

/// What the stack's resources are called in AWS once applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub load_balancer_arn: Option<String>,
    /// The load balancer's DNS name: the Service's (or Ingress's) status hostname.
    pub dns_name: Option<String>,
    /// Target group resource id -> ARN: where the stack's TargetGroupBindings point.
    pub target_group_arns: BTreeMap<String, String>,
    /// Listener port -> ARN: where rules go.
    pub listener_arns: BTreeMap<u16, String>,
}

pub async fn apply<A: LoadBalancers>(
    api: &A,
    stack: &Stack,
    existing: &Existing,
    steps: &[Step],
) -> Result<Applied, AwsError> {
    let mut applied = Applied {
        load_balancer_arn: existing.load_balancer.as_ref().map(|l| l.arn.clone()),
        dns_name: existing.load_balancer.as_ref().map(|l| l.dns_name.clone()),
        target_group_arns: kept_target_groups(stack, existing),
        listener_arns: existing
            .listeners
            .iter()
            .map(|l| (l.listener.port, l.arn.clone()))
            .collect(),
    };
    for step in steps {
        apply_step(api, stack, &mut applied, step).await?;
    }
    Ok(applied)
}

/// Carries out [`super::diff::teardown`]'s steps: deletes only, in their order.
pub async fn remove<A: LoadBalancers>(api: &A, steps: &[Step]) -> Result<(), AwsError> {
    for step in steps {
        match step {
            Step::DeleteListener { arn, .. } => api.delete_listener(arn).await?,
            Step::DeleteTargetGroup { arn } => api.delete_target_group(arn).await?,
            Step::DeleteLoadBalancer { arn } => api.delete_load_balancer(arn).await?,
            _ => return Err(inconsistent("a teardown step that is not a delete")),
        }
    }
    Ok(())
}

/// The existing target groups the diff keeps: same resource id, same identity, ours.
fn kept_target_groups(stack: &Stack, existing: &Existing) -> BTreeMap<String, String> {
    let owner = Owner::of(stack);
    stack
        .target_groups
        .iter()
        .filter_map(|desired| {
            existing
                .target_groups
                .iter()
                .find(|e| {
                    e.group.resource_id == desired.resource_id
                        && same_identity(&e.group, desired)
                        && owner.owns(&e.group.tags)
                })
                .map(|e| (desired.resource_id.clone(), e.arn.clone()))
        })
        .collect()
}

async fn apply_step<A: LoadBalancers>(
    api: &A,
    stack: &Stack,
    applied: &mut Applied,
    step: &Step,
) -> Result<(), AwsError> {
    match step {
        Step::CreateTargetGroup { group } => {
            let arn = api.create_target_group(group).await?;
            applied
                .target_group_arns
                .insert(group.resource_id.clone(), arn);
        }
        Step::ModifyTargetGroupHealthCheck { arn, group } => {
            api.modify_health_check(arn, group).await?;
        }
        Step::SetTargetGroupAttributes { arn, attributes } => {
            api.set_target_group_attributes(arn, attributes).await?;
        }
        Step::AddTags { arn, tags } => api.add_tags(arn, tags).await?,
        Step::RemoveTags { arn, keys } => api.remove_tags(arn, keys).await?,
        Step::CreateLoadBalancer => {
            let created = api.create_load_balancer(&stack.load_balancer).await?;
            applied.load_balancer_arn = Some(created.arn);
            applied.dns_name = Some(created.dns_name);
        }
        Step::SetLoadBalancerAttributes { arn, attributes } => {
            api.set_load_balancer_attributes(arn, attributes).await?;
        }
        Step::SetSubnets { arn } => api.set_subnets(arn, &stack.load_balancer.subnets).await?,
        Step::SetSecurityGroups { arn } => {
            api.set_security_groups(arn, &stack.load_balancer.security_groups)
                .await?;
        }
        Step::CreateListener { listener } => {
            let action = with_arns(&listener.default_action, applied)?;
            let lb = applied
                .load_balancer_arn
                .as_deref()
                .ok_or_else(|| inconsistent("a listener before its load balancer"))?;
            let arn = api.create_listener(lb, listener, &action).await?;
            applied.listener_arns.insert(listener.port, arn);
        }
        Step::ModifyListener { arn, listener } => {
            let action = with_arns(&listener.default_action, applied)?;
            api.modify_listener(arn, listener, &action).await?;
        }
        Step::DeleteListener { arn, .. } => api.delete_listener(arn).await?,
        Step::DeleteRule { arn } => api.delete_rule(arn).await?,
        Step::ModifyRule { arn, rule, .. } => {
            let action = with_arns(&rule.action, applied)?;
            api.modify_rule(arn, rule, &action).await?;
        }
        Step::SetRulePriorities { priorities } => api.set_rule_priorities(priorities).await?,
        Step::CreateRule {
            port,
            priority,
            rule,
        } => {
            let action = with_arns(&rule.action, applied)?;
            let listener = applied
                .listener_arns
                .get(port)
                .ok_or_else(|| inconsistent("a rule before its listener"))?;
            api.create_rule(listener, rule, &action, *priority).await?;
        }
        Step::DeleteTargetGroup { arn } => api.delete_target_group(arn).await?,
        Step::DeleteLoadBalancer { arn } => api.delete_load_balancer(arn).await?,
    }
    Ok(())
}

/// `action` with the stack's target groups named by their ARNs (created by earlier steps, or
/// found existing).
fn with_arns(action: &Action, applied: &Applied) -> Result<Action, AwsError> {
    resolve(action, |id| applied.target_group_arns.get(id).cloned())
        .ok_or_else(|| inconsistent("an action forwards to a target group not created"))
}

/// The steps do not fit the stack: a bug of the diff, never retried as an AWS fault.
fn inconsistent(what: &str) -> AwsError {
    AwsError::new(
        "Deploy",
        AwsErrorKind::InvalidRequest,
        format!("deployer: {what}"),
    )
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
