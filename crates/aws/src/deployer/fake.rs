//! An in-memory ELB for the deployer: load balancers, listeners and target groups with tags, with
//! ELB's idempotent creates (same name, same settings: the same ARN) and scripted failures.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use lb_model::stack::{
    Action, Listener, LoadBalancer, Rule, SubnetMapping, TargetGroup, TargetGroupRef,
};

use super::apply::{CreatedLoadBalancer, LoadBalancers};
use super::diff::{
    Existing, ExistingListener, ExistingLoadBalancer, ExistingRule, ExistingTargetGroup, Owner,
};
use crate::error::{AwsError, AwsErrorKind};

#[derive(Debug, Default)]
struct State {
    next_id: u32,
    load_balancers: BTreeMap<String, LoadBalancer>,
    /// arn -> (load balancer arn, listener with the target group's ARN as default).
    listeners: BTreeMap<String, (String, Listener)>,
    target_groups: BTreeMap<String, TargetGroup>,
    /// arn -> (listener arn, the rule at its priority, its action naming target groups by ARN).
    rules: BTreeMap<String, (String, ExistingRule)>,
    calls: Vec<&'static str>,
    /// Target group ARN -> registered targets (none unless set).
    registered: BTreeMap<String, usize>,
    /// Operation -> how many of its next calls fail.
    failures: BTreeMap<&'static str, u32>,
}

#[derive(Debug, Default)]
pub struct FakeLoadBalancers {
    state: Mutex<State>,
}

impl FakeLoadBalancers {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `times` calls of `operation` fail as unavailable (nothing happens).
    pub fn fail(&self, operation: &'static str, times: u32) {
        self.state().failures.insert(operation, times);
    }

    /// Every call so far, by operation name, in order.
    pub fn calls(&self) -> Vec<&'static str> {
        self.state().calls.clone()
    }

    /// `arn` has `count` registered targets from now on.
    pub fn set_registered(&self, arn: &str, count: usize) {
        self.state().registered.insert(arn.to_string(), count);
    }

    pub fn forget_calls(&self) {
        self.state().calls.clear();
    }

    pub fn target_group_arns(&self) -> Vec<String> {
        self.state().target_groups.keys().cloned().collect()
    }

    /// A target group someone else made (its tags are whatever `group` says).
    pub fn insert_target_group(&self, arn: &str, group: TargetGroup) {
        self.state().target_groups.insert(arn.into(), group);
    }

    /// (port, protocol, target group ARN) of every listener.
    pub fn listeners(&self) -> Vec<(u16, String, String)> {
        self.state()
            .listeners
            .values()
            .map(|(_, l)| {
                let target = match l.default_action.single_target() {
                    Some(TargetGroupRef::Arn(arn)) => arn.clone(),
                    _ => String::new(),
                };
                (l.port, l.protocol.as_str().to_string(), target)
            })
            .collect()
    }

    pub fn load_balancer_arns(&self) -> Vec<String> {
        self.state().load_balancers.keys().cloned().collect()
    }

    fn call(&self, operation: &'static str) -> Result<MutexGuard<'_, State>, AwsError> {
        let mut state = self.state();
        state.calls.push(operation);
        if let Some(left) = state.failures.get_mut(operation)
            && *left > 0
        {
            *left -= 1;
            return Err(AwsError::new(
                operation,
                AwsErrorKind::Unavailable,
                "scripted failure",
            ));
        }
        Ok(state)
    }
}

fn dns_name(lb: &LoadBalancer) -> String {
    format!("{}.elb.us-west-2.amazonaws.com", lb.name)
}

/// The tags of whatever `arn` is: a target group, load balancer, rule or listener.
fn tags_mut<'a>(state: &'a mut State, arn: &str) -> Option<&'a mut BTreeMap<String, String>> {
    if let Some(group) = state.target_groups.get_mut(arn) {
        Some(&mut group.tags)
    } else if let Some(lb) = state.load_balancers.get_mut(arn) {
        Some(&mut lb.tags)
    } else if let Some((_, rule)) = state.rules.get_mut(arn) {
        Some(&mut rule.rule.tags)
    } else {
        state
            .listeners
            .get_mut(arn)
            .map(|(_, listener)| &mut listener.tags)
    }
}

fn not_found(operation: &'static str, arn: &str) -> AwsError {
    AwsError::new(
        operation,
        AwsErrorKind::NotFound,
        format!("{arn} not found"),
    )
}

impl State {
    fn arn(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!(
            "arn:aws:elasticloadbalancing:us-west-2:123456789012:{kind}/{}",
            self.next_id
        )
    }
}

impl LoadBalancers for FakeLoadBalancers {
    async fn describe_stack(&self, owner: &Owner) -> Result<Existing, AwsError> {
        let state = self.call("DescribeStack")?;
        let load_balancer = state
            .load_balancers
            .iter()
            .find(|(_, lb)| owner.owns(&lb.tags))
            .map(|(arn, lb)| ExistingLoadBalancer {
                arn: arn.clone(),
                dns_name: dns_name(lb),
                load_balancer: lb.clone(),
            });
        let listeners = load_balancer
            .iter()
            .flat_map(|lb| {
                state
                    .listeners
                    .iter()
                    .filter(|(_, (on, _))| *on == lb.arn)
                    .map(|(arn, (_, l))| ExistingListener {
                        arn: arn.clone(),
                        listener: l.clone(),
                        rules: state
                            .rules
                            .values()
                            .filter(|(on, _)| on == arn)
                            .map(|(_, r)| r.clone())
                            .collect(),
                    })
            })
            .collect();
        let target_groups = state
            .target_groups
            .iter()
            .filter(|(_, t)| owner.owns(&t.tags))
            .map(|(arn, t)| ExistingTargetGroup {
                arn: arn.clone(),
                group: t.clone(),
            })
            .collect();
        Ok(Existing {
            load_balancer,
            listeners,
            target_groups,
        })
    }

    async fn create_target_group(&self, group: &TargetGroup) -> Result<String, AwsError> {
        let mut state = self.call("CreateTargetGroup")?;
        if let Some((arn, _)) = state
            .target_groups
            .iter()
            .find(|(_, t)| t.name == group.name)
        {
            return Ok(arn.clone()); // ELB: the same name and settings give the same group.
        }
        let arn = state.arn("targetgroup");
        state.target_groups.insert(arn.clone(), group.clone());
        Ok(arn)
    }

    async fn modify_health_check(&self, arn: &str, desired: &TargetGroup) -> Result<(), AwsError> {
        let mut state = self.call("ModifyTargetGroup")?;
        let group = state
            .target_groups
            .get_mut(arn)
            .ok_or_else(|| not_found("ModifyTargetGroup", arn))?;
        group.health_check = desired.health_check.clone();
        Ok(())
    }

    async fn set_target_group_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let mut state = self.call("ModifyTargetGroupAttributes")?;
        let group = state
            .target_groups
            .get_mut(arn)
            .ok_or_else(|| not_found("ModifyTargetGroupAttributes", arn))?;
        group.attributes.extend(attributes.clone());
        Ok(())
    }

    async fn add_tags(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<(), AwsError> {
        let mut state = self.call("AddTags")?;
        tags_mut(&mut state, arn)
            .ok_or_else(|| not_found("AddTags", arn))?
            .extend(tags.clone());
        Ok(())
    }

    async fn remove_tags(&self, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        let mut state = self.call("RemoveTags")?;
        tags_mut(&mut state, arn)
            .ok_or_else(|| not_found("RemoveTags", arn))?
            .retain(|k, _| !keys.contains(k));
        Ok(())
    }

    async fn create_load_balancer(
        &self,
        lb: &LoadBalancer,
    ) -> Result<CreatedLoadBalancer, AwsError> {
        let mut state = self.call("CreateLoadBalancer")?;
        let dns_name = dns_name(lb);
        if let Some((arn, _)) = state.load_balancers.iter().find(|(_, l)| l.name == lb.name) {
            return Ok(CreatedLoadBalancer {
                arn: arn.clone(),
                dns_name,
            });
        }
        let arn = state.arn("loadbalancer/net");
        state.load_balancers.insert(arn.clone(), lb.clone());
        Ok(CreatedLoadBalancer { arn, dns_name })
    }

    async fn set_load_balancer_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let mut state = self.call("ModifyLoadBalancerAttributes")?;
        let lb = state
            .load_balancers
            .get_mut(arn)
            .ok_or_else(|| not_found("ModifyLoadBalancerAttributes", arn))?;
        lb.attributes.extend(attributes.clone());
        Ok(())
    }

    async fn set_subnets(&self, arn: &str, subnets: &[SubnetMapping]) -> Result<(), AwsError> {
        let mut state = self.call("SetSubnets")?;
        let lb = state
            .load_balancers
            .get_mut(arn)
            .ok_or_else(|| not_found("SetSubnets", arn))?;
        lb.subnets = subnets.to_vec();
        Ok(())
    }

    async fn set_security_groups(&self, arn: &str, groups: &[String]) -> Result<(), AwsError> {
        let mut state = self.call("SetSecurityGroups")?;
        let lb = state
            .load_balancers
            .get_mut(arn)
            .ok_or_else(|| not_found("SetSecurityGroups", arn))?;
        lb.security_groups = groups.to_vec();
        Ok(())
    }

    async fn create_listener(
        &self,
        load_balancer_arn: &str,
        listener: &Listener,
        default_action: &Action,
    ) -> Result<String, AwsError> {
        let mut state = self.call("CreateListener")?;
        if !state.load_balancers.contains_key(load_balancer_arn) {
            return Err(not_found("CreateListener", load_balancer_arn));
        }
        if state
            .listeners
            .values()
            .any(|(on, l)| on == load_balancer_arn && l.port == listener.port)
        {
            return Err(AwsError::new(
                "CreateListener",
                AwsErrorKind::InvalidRequest,
                "DuplicateListener",
            ));
        }
        let arn = state.arn("listener/net");
        let listener = Listener {
            default_action: default_action.clone(),
            ..listener.clone()
        };
        state
            .listeners
            .insert(arn.clone(), (load_balancer_arn.into(), listener));
        Ok(arn)
    }

    async fn modify_listener(
        &self,
        arn: &str,
        listener: &Listener,
        default_action: &Action,
    ) -> Result<(), AwsError> {
        let mut state = self.call("ModifyListener")?;
        let (_, have) = state
            .listeners
            .get_mut(arn)
            .ok_or_else(|| not_found("ModifyListener", arn))?;
        // ModifyListener leaves the tags as they are.
        *have = Listener {
            default_action: default_action.clone(),
            tags: have.tags.clone(),
            ..listener.clone()
        };
        Ok(())
    }

    async fn security_groups_in_use(&self) -> Result<std::collections::BTreeSet<String>, AwsError> {
        let state = self.call("DescribeLoadBalancers")?;
        Ok(state
            .load_balancers
            .values()
            .flat_map(|lb| lb.security_groups.iter().cloned())
            .collect())
    }

    async fn delete_listener(&self, arn: &str) -> Result<(), AwsError> {
        let mut state = self.call("DeleteListener")?;
        state.listeners.remove(arn);
        state.rules.retain(|_, (on, _)| on != arn);
        Ok(())
    }

    async fn create_rule(
        &self,
        listener_arn: &str,
        rule: &Rule,
        action: &Action,
        priority: u32,
    ) -> Result<String, AwsError> {
        let mut state = self.call("CreateRule")?;
        if !state.listeners.contains_key(listener_arn) {
            return Err(not_found("CreateRule", listener_arn));
        }
        let taken = state
            .rules
            .values()
            .any(|(on, r)| on == listener_arn && r.priority == priority);
        if taken {
            return Err(AwsError::new(
                "CreateRule",
                AwsErrorKind::InvalidRequest,
                "PriorityInUse",
            ));
        }
        let arn = state.arn("listener-rule/app");
        let existing = ExistingRule {
            arn: arn.clone(),
            priority,
            rule: Rule {
                action: action.clone(),
                ..rule.clone()
            },
        };
        state
            .rules
            .insert(arn.clone(), (listener_arn.into(), existing));
        Ok(arn)
    }

    async fn modify_rule(&self, arn: &str, rule: &Rule, action: &Action) -> Result<(), AwsError> {
        let mut state = self.call("ModifyRule")?;
        let (_, have) = state
            .rules
            .get_mut(arn)
            .ok_or_else(|| not_found("ModifyRule", arn))?;
        have.rule.conditions = rule.conditions.clone();
        have.rule.action = action.clone();
        Ok(())
    }

    async fn set_rule_priorities(&self, priorities: &[(String, u32)]) -> Result<(), AwsError> {
        let mut state = self.call("SetRulePriorities")?;
        for (arn, priority) in priorities {
            let (_, have) = state
                .rules
                .get_mut(arn)
                .ok_or_else(|| not_found("SetRulePriorities", arn))?;
            have.priority = *priority;
        }
        Ok(())
    }

    async fn delete_rule(&self, arn: &str) -> Result<(), AwsError> {
        self.call("DeleteRule")?.rules.remove(arn);
        Ok(())
    }

    async fn delete_target_group(&self, arn: &str) -> Result<(), AwsError> {
        let mut state = self.call("DeleteTargetGroup")?;
        let target = TargetGroupRef::Arn(arn.to_string());
        let by_listener = state
            .listeners
            .values()
            .any(|(_, l)| l.default_action.target_groups().any(|t| *t == target));
        let by_rule = state
            .rules
            .values()
            .any(|(_, r)| r.rule.action.target_groups().any(|t| *t == target));
        if by_listener || by_rule {
            return Err(AwsError::new(
                "DeleteTargetGroup",
                AwsErrorKind::InvalidRequest,
                "ResourceInUse",
            ));
        }
        state.target_groups.remove(arn);
        Ok(())
    }

    async fn registered_targets(&self, arn: &str) -> Result<usize, AwsError> {
        let state = self.call("DescribeTargetHealth")?;
        if !state.target_groups.contains_key(arn) {
            return Err(not_found("DescribeTargetHealth", arn));
        }
        Ok(state.registered.get(arn).copied().unwrap_or(0))
    }

    async fn delete_load_balancer(&self, arn: &str) -> Result<(), AwsError> {
        let mut state = self.call("DeleteLoadBalancer")?;
        state.load_balancers.remove(arn);
        let gone: Vec<String> = state
            .listeners
            .iter()
            .filter(|(_, (on, _))| on == arn)
            .map(|(listener, _)| listener.clone())
            .collect();
        state.listeners.retain(|_, (on, _)| on != arn);
        state.rules.retain(|_, (on, _)| !gone.contains(on));
        Ok(())
    }
}
