//! [`LoadBalancers`] on the one in-memory ELB: load balancers, listeners, rules and target
//! groups with tags, with ELB's idempotent creates (same name, same settings: the same ARN). A
//! target group the deployer creates is a target group the binding side sees too (its targets,
//! their health), so a replacement switch waits on targets registered as a binding would.

use std::collections::BTreeMap;

use lb_model::elb::{TargetGroupInfo, TargetHealth, TargetKey, TargetState};
use lb_model::stack::{
    Action, Listener, LoadBalancer, Rule, SubnetMapping, TargetGroup, TargetGroupRef,
};

use super::{FakeElb, Fault, Group, OWN_ACCOUNT, State, fault_error};
use crate::calls::Operation;
use crate::deployer::apply::{CreatedLoadBalancer, LoadBalancers, TargetCounts};
use crate::deployer::diff::{
    Existing, ExistingListener, ExistingLoadBalancer, ExistingRule, ExistingTargetGroup, Owner,
};
use crate::error::{AwsError, AwsErrorKind};

/// What the deployer side holds.
#[derive(Debug, Default)]
pub(super) struct Stacks {
    next_id: u32,
    load_balancers: BTreeMap<String, LoadBalancer>,
    /// arn -> (load balancer arn, listener with the target group's ARN as default).
    listeners: BTreeMap<String, (String, Listener)>,
    target_groups: BTreeMap<String, TargetGroup>,
    /// arn -> (listener arn, the rule at its priority, its action naming target groups by ARN).
    rules: BTreeMap<String, (String, ExistingRule)>,
}

impl FakeElb {
    /// One deployer call: recorded, and failed when a fault is scripted for it (a lost answer
    /// too: the deployer's effects are not applied then).
    fn deploy_call(
        &self,
        operation: Operation,
    ) -> Result<std::sync::MutexGuard<'_, State>, AwsError> {
        let mut state = self.lock();
        let fault = state.take_fault(operation);
        state.record(
            operation,
            OWN_ACCOUNT,
            "",
            &[],
            fault.map(|f| fault_error(operation, f).kind),
        );
        match fault {
            Some(fault) => Err(fault_error(operation, fault)),
            None => Ok(state),
        }
    }

    /// The next `times` calls of `operation` fail with a 5xx answer.
    pub fn fail(&self, operation: Operation, times: u32) {
        for _ in 0..times {
            self.fail_next(operation, Fault::ServerError);
        }
    }

    /// Every call so far, by operation name, in order.
    pub fn call_names(&self) -> Vec<&'static str> {
        self.calls().iter().map(|c| c.operation.as_str()).collect()
    }

    /// Target group `arn` has `count` registered, healthy targets from now on (10.0.0.1:80, ...).
    pub fn set_registered(&self, arn: &str, count: usize) {
        self.set_targets(arn, count, TargetState::Healthy);
    }

    /// Target group `arn` has `count` registered targets in `state` from now on.
    pub fn set_targets(&self, arn: &str, count: usize, target_state: TargetState) {
        let mut state = self.lock();
        let Some(group) = state.groups.get_mut(arn) else {
            return;
        };
        group.targets.clear();
        for n in 0..count {
            let target = TargetKey {
                id: format!("10.0.{}.{}", n / 250, n % 250 + 1),
                port: 80,
            };
            let health = TargetHealth {
                target: target.clone(),
                state: target_state.clone(),
                reason: None,
                description: None,
            };
            group.targets.insert(target, health);
        }
    }

    /// The target groups the deployer side holds, by ARN.
    pub fn target_group_arns(&self) -> Vec<String> {
        self.lock().stacks.target_groups.keys().cloned().collect()
    }

    /// A target group someone else made (its tags are whatever `group` says).
    pub fn insert_target_group(&self, arn: &str, group: TargetGroup) {
        self.lock().stacks.target_groups.insert(arn.into(), group);
    }

    /// (port, protocol, target group ARN) of every listener.
    pub fn listeners(&self) -> Vec<(u16, String, String)> {
        self.lock()
            .stacks
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
        self.lock().stacks.load_balancers.keys().cloned().collect()
    }

    /// Everything the deployer side holds (load balancers, listeners, rules, target groups,
    /// each with its settings and tags), as one text: equal before and after means no change.
    pub fn deployed(&self) -> String {
        format!("{:#?}", self.lock().stacks)
    }

    /// The calls so far that change something (all but `Describe*`, `List*` and `AssumeRole`),
    /// by operation name.
    pub fn mutating_call_names(&self) -> Vec<&'static str> {
        let reads = |name: &str| {
            name.starts_with("Describe") || name.starts_with("List") || name == "AssumeRole"
        };
        self.call_names()
            .into_iter()
            .filter(|name| !reads(name))
            .collect()
    }
}

/// The binding side's view of a target group the deployer made.
fn group_info(arn: &str, group: &TargetGroup) -> Group {
    Group {
        account: OWN_ACCOUNT.to_string(),
        info: TargetGroupInfo {
            arn: arn.to_string(),
            name: group.name.clone(),
            target_type: group.target_type.as_str().to_string(),
            protocol: Some(group.protocol.as_str().to_string()),
            port: Some(group.port),
            vpc_id: Some("vpc-0fake".to_string()),
            ip_address_type: Some(group.ip_address_type.as_str().to_string()),
            load_balancer_arns: Vec::new(),
            health_check_interval_seconds: u32::try_from(group.health_check.interval_seconds).ok(),
            healthy_threshold_count: u32::try_from(group.health_check.healthy_threshold).ok(),
        },
        targets: BTreeMap::new(),
    }
}

fn dns_name(lb: &LoadBalancer) -> String {
    format!("{}.elb.us-west-2.amazonaws.com", lb.name)
}

/// The tags of whatever `arn` is: a target group, load balancer, rule or listener.
fn tags_mut<'a>(state: &'a mut Stacks, arn: &str) -> Option<&'a mut BTreeMap<String, String>> {
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

impl Stacks {
    fn arn(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!(
            "arn:aws:elasticloadbalancing:us-west-2:123456789012:{kind}/{}",
            self.next_id
        )
    }
}

impl LoadBalancers for FakeElb {
    async fn describe_stack(&self, owner: &Owner) -> Result<Existing, AwsError> {
        let state = self.deploy_call(Operation::DescribeLoadBalancers)?;
        let load_balancer = state
            .stacks
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
                    .stacks
                    .listeners
                    .iter()
                    .filter(|(_, (on, _))| *on == lb.arn)
                    .map(|(arn, (_, l))| ExistingListener {
                        arn: arn.clone(),
                        listener: l.clone(),
                        rules: state
                            .stacks
                            .rules
                            .values()
                            .filter(|(on, _)| on == arn)
                            .map(|(_, r)| r.clone())
                            .collect(),
                    })
            })
            .collect();
        let target_groups = state
            .stacks
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
        let mut state = self.deploy_call(Operation::CreateTargetGroup)?;
        if let Some((arn, _)) = state
            .stacks
            .target_groups
            .iter()
            .find(|(_, t)| t.name == group.name)
        {
            return Ok(arn.clone()); // ELB: the same name and settings give the same group.
        }
        let arn = state.stacks.arn("targetgroup");
        state
            .stacks
            .target_groups
            .insert(arn.clone(), group.clone());
        state.groups.insert(arn.clone(), group_info(&arn, group));
        Ok(arn)
    }

    async fn modify_health_check(&self, arn: &str, desired: &TargetGroup) -> Result<(), AwsError> {
        let mut state = self.deploy_call(Operation::ModifyTargetGroup)?;
        let group = state
            .stacks
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
        let mut state = self.deploy_call(Operation::ModifyTargetGroupAttributes)?;
        let group = state
            .stacks
            .target_groups
            .get_mut(arn)
            .ok_or_else(|| not_found("ModifyTargetGroupAttributes", arn))?;
        group.attributes.extend(attributes.clone());
        Ok(())
    }

    async fn add_tags(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<(), AwsError> {
        let mut state = self.deploy_call(Operation::AddTags)?;
        tags_mut(&mut state.stacks, arn)
            .ok_or_else(|| not_found("AddTags", arn))?
            .extend(tags.clone());
        Ok(())
    }

    async fn remove_tags(&self, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        let mut state = self.deploy_call(Operation::RemoveTags)?;
        tags_mut(&mut state.stacks, arn)
            .ok_or_else(|| not_found("RemoveTags", arn))?
            .retain(|k, _| !keys.contains(k));
        Ok(())
    }

    async fn create_load_balancer(
        &self,
        lb: &LoadBalancer,
    ) -> Result<CreatedLoadBalancer, AwsError> {
        let mut state = self.deploy_call(Operation::CreateLoadBalancer)?;
        let dns_name = dns_name(lb);
        if let Some((arn, _)) = state
            .stacks
            .load_balancers
            .iter()
            .find(|(_, l)| l.name == lb.name)
        {
            return Ok(CreatedLoadBalancer {
                arn: arn.clone(),
                dns_name,
            });
        }
        let arn = state.stacks.arn("loadbalancer/net");
        state.stacks.load_balancers.insert(arn.clone(), lb.clone());
        Ok(CreatedLoadBalancer { arn, dns_name })
    }

    async fn set_load_balancer_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let mut state = self.deploy_call(Operation::ModifyLoadBalancerAttributes)?;
        let lb = state
            .stacks
            .load_balancers
            .get_mut(arn)
            .ok_or_else(|| not_found("ModifyLoadBalancerAttributes", arn))?;
        lb.attributes.extend(attributes.clone());
        Ok(())
    }

    async fn set_subnets(&self, arn: &str, subnets: &[SubnetMapping]) -> Result<(), AwsError> {
        let mut state = self.deploy_call(Operation::SetSubnets)?;
        let lb = state
            .stacks
            .load_balancers
            .get_mut(arn)
            .ok_or_else(|| not_found("SetSubnets", arn))?;
        lb.subnets = subnets.to_vec();
        Ok(())
    }

    async fn set_security_groups(&self, arn: &str, groups: &[String]) -> Result<(), AwsError> {
        let mut state = self.deploy_call(Operation::SetSecurityGroups)?;
        let lb = state
            .stacks
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
        let mut state = self.deploy_call(Operation::CreateListener)?;
        if !state.stacks.load_balancers.contains_key(load_balancer_arn) {
            return Err(not_found("CreateListener", load_balancer_arn));
        }
        if state
            .stacks
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
        let arn = state.stacks.arn("listener/net");
        let listener = Listener {
            default_action: default_action.clone(),
            ..listener.clone()
        };
        state
            .stacks
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
        let mut state = self.deploy_call(Operation::ModifyListener)?;
        let (_, have) = state
            .stacks
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
        let state = self.deploy_call(Operation::DescribeLoadBalancers)?;
        Ok(state
            .stacks
            .load_balancers
            .values()
            .flat_map(|lb| lb.security_groups.iter().cloned())
            .collect())
    }

    async fn delete_listener(&self, arn: &str) -> Result<(), AwsError> {
        let mut state = self.deploy_call(Operation::DeleteListener)?;
        state.stacks.listeners.remove(arn);
        state.stacks.rules.retain(|_, (on, _)| on != arn);
        Ok(())
    }

    async fn create_rule(
        &self,
        listener_arn: &str,
        rule: &Rule,
        action: &Action,
        priority: u32,
    ) -> Result<String, AwsError> {
        let mut state = self.deploy_call(Operation::CreateRule)?;
        if !state.stacks.listeners.contains_key(listener_arn) {
            return Err(not_found("CreateRule", listener_arn));
        }
        let taken = state
            .stacks
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
        let arn = state.stacks.arn("listener-rule/app");
        let existing = ExistingRule {
            arn: arn.clone(),
            priority,
            rule: Rule {
                action: action.clone(),
                ..rule.clone()
            },
        };
        state
            .stacks
            .rules
            .insert(arn.clone(), (listener_arn.into(), existing));
        Ok(arn)
    }

    async fn modify_rule(&self, arn: &str, rule: &Rule, action: &Action) -> Result<(), AwsError> {
        let mut state = self.deploy_call(Operation::ModifyRule)?;
        let (_, have) = state
            .stacks
            .rules
            .get_mut(arn)
            .ok_or_else(|| not_found("ModifyRule", arn))?;
        have.rule.conditions = rule.conditions.clone();
        have.rule.action = action.clone();
        Ok(())
    }

    async fn set_rule_priorities(&self, priorities: &[(String, u32)]) -> Result<(), AwsError> {
        let mut state = self.deploy_call(Operation::SetRulePriorities)?;
        for (arn, priority) in priorities {
            let (_, have) = state
                .stacks
                .rules
                .get_mut(arn)
                .ok_or_else(|| not_found("SetRulePriorities", arn))?;
            have.priority = *priority;
        }
        Ok(())
    }

    async fn delete_rule(&self, arn: &str) -> Result<(), AwsError> {
        self.deploy_call(Operation::DeleteRule)?
            .stacks
            .rules
            .remove(arn);
        Ok(())
    }

    async fn delete_target_group(&self, arn: &str) -> Result<(), AwsError> {
        let mut state = self.deploy_call(Operation::DeleteTargetGroup)?;
        let target = TargetGroupRef::Arn(arn.to_string());
        let by_listener = state
            .stacks
            .listeners
            .values()
            .any(|(_, l)| l.default_action.target_groups().any(|t| *t == target));
        let by_rule = state
            .stacks
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
        state.stacks.target_groups.remove(arn);
        state.groups.remove(arn);
        Ok(())
    }

    async fn target_counts(&self, arn: &str) -> Result<TargetCounts, AwsError> {
        let state = self.deploy_call(Operation::DescribeTargetHealth)?;
        if !state.stacks.target_groups.contains_key(arn) {
            return Err(not_found("DescribeTargetHealth", arn));
        }
        let count = |wanted: &dyn Fn(&TargetState) -> bool| {
            state.groups.get(arn).map_or(0, |g| {
                g.targets.values().filter(|t| wanted(&t.state)).count()
            })
        };
        Ok(TargetCounts {
            registered: count(&|s| *s != TargetState::Draining),
            healthy: count(&|s| *s == TargetState::Healthy),
        })
    }

    async fn delete_load_balancer(&self, arn: &str) -> Result<(), AwsError> {
        let mut state = self.deploy_call(Operation::DeleteLoadBalancer)?;
        state.stacks.load_balancers.remove(arn);
        let gone: Vec<String> = state
            .stacks
            .listeners
            .iter()
            .filter(|(_, (on, _))| on == arn)
            .map(|(listener, _)| listener.clone())
            .collect();
        state.stacks.listeners.retain(|_, (on, _)| on != arn);
        state.stacks.rules.retain(|_, (on, _)| !gone.contains(on));
        Ok(())
    }
}
