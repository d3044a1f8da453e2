//! The one converge routine of every stack source: security groups -> describe -> diff ->
//! replacement switch -> apply -> the stack's bindings; and the one removal: bindings first,
//! then the load balancer and all it owned, then its security groups.

use kube::ResourceExt;
use lb_aws::Ec2;
use lb_aws::deployer::apply::{Applied, LoadBalancers, TargetCounts, apply, remove};
use lb_aws::deployer::diff::{Existing, Owner, Step, diff, missing_subnets, summary, teardown};
use lb_aws::deployer::switch::{self, Switch, SwitchPoint, Wait};
use lb_model::service::objects::{adopted_name, binding_object};
use lb_model::stack::{LoadBalancerKind, SourceAddresses, Stack};

use super::Pipeline;
use super::error::StackError;
use super::objects::{BindingScope, StackWrites};
use crate::security_groups::{self, Resolved};

/// What a converge did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Converged {
    /// Steps applied (0: the stack was converged already).
    pub steps: usize,
    pub dns_name: Option<String>,
    /// Listeners and rules still on a target group being replaced (held, or warming the
    /// replacement up): the source looks again soon.
    pub waiting: Vec<SwitchPoint>,
}

/// What a removal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// The stack's bindings are being deleted (their finalizers deregister the targets while
    /// the target groups still exist): look again soon.
    Draining,
    /// The load balancer and all it owned are gone; this many steps were taken.
    Gone { steps: usize },
}

impl<L, E: Ec2, W> Pipeline<L, E, W> {
    /// The VPC's subnets (cached by the EC2 edge), for a source's build.
    pub async fn subnets(&self) -> Result<Vec<lb_model::service::subnets::Subnet>, StackError> {
        self.ec2
            .subnets()
            .await
            .map_err(|source| StackError::Discovery {
                what: "subnets",
                source,
            })
    }
}

impl<L: LoadBalancers, E: Ec2, W: StackWrites> Pipeline<L, E, W> {
    /// AWS converged to `stack`, then its bindings in `scope`. A stack converged recently and
    /// built the same again costs no call at all.
    pub async fn converge(
        &self,
        stack: Stack,
        scope: &BindingScope,
    ) -> Result<Converged, StackError> {
        if let Some(dns_name) = self.converged.converged(&stack) {
            return Ok(Converged {
                dns_name,
                ..Converged::default()
            });
        }
        let id = stack.id.clone();
        let result = self.converge_afresh(stack.clone(), scope).await;
        match &result {
            Ok(done) if done.waiting.is_empty() => {
                self.converged.remember(stack, done.dns_name.clone());
            }
            _ => self.converged.forget(&id),
        }
        result
    }

    async fn converge_afresh(
        &self,
        mut stack: Stack,
        scope: &BindingScope,
    ) -> Result<Converged, StackError> {
        let owner = Owner::of(&stack);
        let existing = self.elb.describe_stack(&owner).await?;
        security_groups::keep_legacy_nlb(&mut stack, &existing);
        let groups = security_groups::resolve(&self.ec2, &owner, &mut stack).await?;
        let steps = diff(&stack, &existing);
        refuse_replacement_while_held(&stack, &existing, &steps)?;
        if let Some(problem) = missing_subnets(&stack, &steps) {
            return Err(StackError::NoSubnets {
                stack: stack.id.clone(),
                problem: problem.to_string(),
            });
        }
        let held = self.switches_to_wait(&stack, &existing, &steps).await?;
        let steps = switch::hold(steps, &held);
        if !steps.is_empty() {
            tracing::info!(steps = %summary(&steps), "converging");
            tracing::debug!(?existing, desired = ?stack, "what differs");
        }
        let applied = apply(&self.elb, &stack, &existing, &steps).await?;
        security_groups::after_apply(&self.ec2, &owner, &groups, &steps).await?;
        let addresses = security_groups::source_addresses(&self.ec2, &stack, &existing).await?;
        // While a switch waits, the old group's binding keeps its targets registered; while a
        // member is held its bindings are not known here: none is removed meanwhile.
        let keep_stale = !held.is_empty() || !stack.held_members.is_empty();
        let bound = Bound {
            applied: &applied,
            groups: &groups,
            addresses: &addresses,
        };
        self.write_bindings(&stack, &bound, scope, keep_stale)
            .await?;
        Ok(Converged {
            steps: steps.len(),
            dns_name: applied.dns_name,
            waiting: held.into_iter().map(|(h, _)| h.at).collect(),
        })
    }

    /// The switches that must wait (see [`switch`]): while the old group has targets to lose,
    /// the listener or rule holds until the replacement has registered targets; on an ALB it
    /// then warms the replacement up (weight 0) until one is healthy.
    async fn switches_to_wait(
        &self,
        stack: &Stack,
        existing: &Existing,
        steps: &[Step],
    ) -> Result<Vec<(Switch, Wait)>, StackError> {
        let alb = stack.load_balancer.kind == LoadBalancerKind::Application;
        let mut waiting = Vec::new();
        for candidate in switch::switches(existing, steps) {
            if self.elb.target_counts(&candidate.old_arn).await?.registered == 0 {
                continue;
            }
            let replacement = existing.target_groups.iter().find(|t| {
                t.group.resource_id == candidate.new_resource_id && t.arn != candidate.old_arn
            });
            let counts = match replacement {
                Some(new) => self.elb.target_counts(&new.arn).await?,
                None => TargetCounts::default(),
            };
            let wait = match (counts.registered, counts.healthy, alb) {
                (0, _, _) => Some(Wait::Hold),
                (_, 0, true) => Some(Wait::Warm),
                _ => None,
            };
            waiting.extend(wait.map(|wait| (candidate, wait)));
        }
        Ok(waiting)
    }

    /// Applies the stack's bindings (a target group bound already keeps its binding's name) and
    /// deletes the stale ones in `scope` unless `keep_stale`.
    async fn write_bindings(
        &self,
        stack: &Stack,
        bound: &Bound<'_>,
        scope: &BindingScope,
        keep_stale: bool,
    ) -> Result<(), StackError> {
        let existing = self.writes.bindings(scope).await?;
        let mut wanted = Vec::new();
        for binding in &stack.bindings {
            let Some(arn) = bound.applied.target_group_arns.get(&binding.target_group) else {
                continue;
            };
            let name = adopted_name(&existing, arn, &binding.name);
            let source = bound.groups.rules_source();
            let object = binding_object(binding, &name, arn, source, bound.addresses);
            self.writes.apply_binding(&object).await?;
            wanted.push(name);
        }
        if !keep_stale {
            for stale in existing.iter().filter(|b| !wanted.contains(&b.name_any())) {
                self.writes.delete_binding(stale).await?;
            }
        }
        Ok(())
    }

    /// Everything of `owner` removed, in an order that loses nothing: its bindings first (their
    /// finalizers deregister the targets and open the gates while the target groups exist),
    /// then listeners, target groups and the load balancer, then the managed security group
    /// (and the shared backend one, once no load balancer uses it).
    pub async fn remove(&self, owner: &Owner, scope: &BindingScope) -> Result<Removed, StackError> {
        let bindings = self.writes.bindings(scope).await?;
        if !bindings.is_empty() {
            for binding in bindings
                .iter()
                .filter(|b| b.metadata.deletion_timestamp.is_none())
            {
                self.writes.delete_binding(binding).await?;
            }
            return Ok(Removed::Draining);
        }
        self.converged.forget(&owner.stack_id);
        let existing = self.elb.describe_stack(owner).await?;
        let steps = teardown(owner, &existing);
        if !steps.is_empty() {
            tracing::info!(steps = %summary(&steps), "removing the stack");
        }
        remove(&self.elb, &steps).await?;
        security_groups::remove(&self.elb, &self.ec2, owner).await?;
        Ok(Removed::Gone { steps: steps.len() })
    }
}

/// What the bindings of a converged stack point at and admit.
struct Bound<'a> {
    applied: &'a Applied,
    groups: &'a Resolved,
    addresses: &'a SourceAddresses,
}

/// Refuses steps that replace the load balancer while members of its group are held by their
/// errors (see [`StackError::ReplaceWhileHeld`]).
fn refuse_replacement_while_held(
    stack: &Stack,
    existing: &Existing,
    steps: &[Step],
) -> Result<(), StackError> {
    let replaces = steps
        .iter()
        .any(|s| matches!(s, Step::DeleteLoadBalancer { .. }));
    let Some(current) = existing.load_balancer.as_ref() else {
        return Ok(());
    };
    if !replaces || stack.held_members.is_empty() {
        return Ok(());
    }
    let (have, want) = (&current.load_balancer, &stack.load_balancer);
    let change = if have.scheme != want.scheme {
        format!("scheme {} -> {}", have.scheme, want.scheme)
    } else {
        format!("type {:?} -> {:?}", have.kind, want.kind)
    };
    Err(StackError::ReplaceWhileHeld {
        stack: stack.id.clone(),
        change,
        members: stack.held_members.clone(),
    })
}
