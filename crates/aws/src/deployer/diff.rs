//! Desired stack vs what exists -> the steps that converge one to the other, in a safe order:
//!
//! 1. target groups created (new, or replacing one whose protocol, port, target type or address
//!    type changed: ELB cannot modify those) and modified (health check, attributes, tags);
//! 2. the load balancer created (or replaced when its scheme changed), then modified;
//! 3. listeners created or modified, so traffic moves to a replacement target group before
//!    the old one goes;
//! 4. listeners deleted, then target groups nothing uses any more, then a replaced load balancer.
//!
//! Only resources that carry this stack's ownership tags are ever modified or deleted: the caller
//! passes what it found by those tags, and the diff checks them again. A converged stack gives no
//! steps at all.

use std::collections::BTreeMap;

use lb_model::stack::{
    Action, Listener, LoadBalancer, Stack, StackKind, TargetGroup, TargetGroupRef,
    WeightedTargetGroup, tags,
};

use super::rules;
pub use super::rules::ExistingRule;

/// An existing target group: its ARN and its settings as ELB describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingTargetGroup {
    pub arn: String,
    pub group: TargetGroup,
}

/// An existing listener; its actions name target groups by ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingListener {
    pub arn: String,
    /// Its `rules` are empty: the rules ELB has are in [`ExistingListener::rules`].
    pub listener: Listener,
    /// An ALB listener's rules but the default one (an NLB's has none).
    pub rules: Vec<ExistingRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingLoadBalancer {
    pub arn: String,
    pub dns_name: String,
    pub load_balancer: LoadBalancer,
}

/// What exists of one stack, found by its ownership tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Existing {
    pub load_balancer: Option<ExistingLoadBalancer>,
    pub listeners: Vec<ExistingListener>,
    pub target_groups: Vec<ExistingTargetGroup>,
}

/// One change to AWS. Target groups are named by the desired resource id (created ones have no
/// ARN yet) or by ARN (existing ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    CreateTargetGroup {
        resource_id: String,
    },
    ModifyTargetGroupHealthCheck {
        arn: String,
        resource_id: String,
    },
    SetTargetGroupAttributes {
        arn: String,
        attributes: BTreeMap<String, String>,
    },
    AddTags {
        arn: String,
        tags: BTreeMap<String, String>,
    },
    CreateLoadBalancer,
    SetLoadBalancerAttributes {
        arn: String,
        attributes: BTreeMap<String, String>,
    },
    SetSubnets {
        arn: String,
    },
    SetSecurityGroups {
        arn: String,
    },
    CreateListener {
        port: u16,
    },
    ModifyListener {
        arn: String,
        port: u16,
    },
    DeleteListener {
        arn: String,
        port: u16,
    },
    DeleteRule {
        arn: String,
    },
    /// Rewrites the rule's conditions and action to those of the listener's rule `index`.
    ModifyRule {
        arn: String,
        port: u16,
        index: usize,
    },
    /// (rule ARN, priority): one call that moves them all.
    SetRulePriorities {
        priorities: Vec<(String, u32)>,
    },
    /// The listener's rule `index`.
    CreateRule {
        port: u16,
        index: usize,
        priority: u32,
    },
    DeleteTargetGroup {
        arn: String,
    },
    DeleteLoadBalancer {
        arn: String,
    },
}

/// Whose resources these are: one stack of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub cluster: String,
    pub kind: StackKind,
    pub stack_id: String,
}

impl Owner {
    pub fn of(stack: &Stack) -> Self {
        Self {
            cluster: stack
                .load_balancer
                .tags
                .get(tags::CLUSTER)
                .cloned()
                .unwrap_or_default(),
            kind: stack.kind,
            stack_id: stack.id.clone(),
        }
    }

    /// True when `found` (a resource's tags) say it is this owner's.
    pub fn owns(&self, found: &BTreeMap<String, String>) -> bool {
        !self.cluster.is_empty()
            && found.get(tags::CLUSTER) == Some(&self.cluster)
            && found.get(self.kind.stack_tag()) == Some(&self.stack_id)
    }
}

/// `action` with the stack's target groups named by ARN, as ELB describes it; None while one of
/// them has no ARN yet (it is being created).
pub(crate) fn resolve(action: &Action, arn_of: impl Fn(&str) -> Option<String>) -> Option<Action> {
    let Action::Forward {
        target_groups,
        stickiness_seconds,
    } = action
    else {
        return Some(action.clone());
    };
    let target_groups = target_groups
        .iter()
        .map(|w| {
            let arn = match &w.target_group {
                TargetGroupRef::Stack(id) => arn_of(id)?,
                TargetGroupRef::Arn(arn) => arn.clone(),
            };
            Some(WeightedTargetGroup {
                target_group: TargetGroupRef::Arn(arn),
                weight: w.weight,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Action::Forward {
        target_groups,
        stickiness_seconds: *stickiness_seconds,
    })
}

/// Everything of `owner` removed (a Service that is no longer ours, or deleted): listeners, then
/// target groups, then the load balancer. Resources without the owner's tags stay.
pub fn teardown(owner: &Owner, existing: &Existing) -> Vec<Step> {
    let lb = existing
        .load_balancer
        .as_ref()
        .filter(|l| owner.owns(&l.load_balancer.tags));
    let mut steps: Vec<Step> = Vec::new();
    if lb.is_some() {
        steps.extend(existing.listeners.iter().map(|l| Step::DeleteListener {
            arn: l.arn.clone(),
            port: l.listener.port,
        }));
    }
    steps.extend(
        existing
            .target_groups
            .iter()
            .filter(|t| owner.owns(&t.group.tags))
            .map(|t| Step::DeleteTargetGroup { arn: t.arn.clone() }),
    );
    steps.extend(lb.map(|l| Step::DeleteLoadBalancer { arn: l.arn.clone() }));
    steps
}

/// Whether `tags` name a held group member: its resources stay as they are.
fn held(stack: &Stack, tags: &BTreeMap<String, String>) -> bool {
    tags.get(tags::INGRESS_MEMBER)
        .is_some_and(|m| stack.held_members.contains(m))
}

/// What becomes of the stack's load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadBalancerFate {
    /// Ours and modifiable in place: its listeners are compared with the desired ones.
    Kept,
    /// None of ours exists: one is created (a load balancer without our tags is left alone).
    Created,
    /// Ours, but its scheme, type or name changed: a new one, the old deleted last.
    Replaced,
}

pub fn diff(stack: &Stack, existing: &Existing) -> Vec<Step> {
    let owner = Owner::of(stack);
    let mut steps = Vec::new();
    // Desired resource id -> the ARN listeners should point at (None: being created).
    let mut arns: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let mut kept: Vec<&str> = Vec::new();
    for desired in &stack.target_groups {
        let current = existing.target_groups.iter().find(|e| {
            e.group.resource_id == desired.resource_id
                && same_identity(&e.group, desired)
                && owner.owns(&e.group.tags)
        });
        match current {
            None => {
                steps.push(Step::CreateTargetGroup {
                    resource_id: desired.resource_id.clone(),
                });
                arns.insert(&desired.resource_id, None);
            }
            Some(current) => {
                kept.push(&current.arn);
                arns.insert(&desired.resource_id, Some(&current.arn));
                target_group_changes(desired, current, &mut steps);
            }
        }
    }
    let fate = load_balancer_steps(stack, &owner, existing, &mut steps);
    listener_steps(
        stack,
        existing,
        fate == LoadBalancerFate::Kept,
        &arns,
        &mut steps,
    );
    for old in &existing.target_groups {
        if !kept.contains(&old.arn.as_str())
            && owner.owns(&old.group.tags)
            && !held(stack, &old.group.tags)
        {
            steps.push(Step::DeleteTargetGroup {
                arn: old.arn.clone(),
            });
        }
    }
    if fate == LoadBalancerFate::Replaced
        && let Some(old) = &existing.load_balancer
    {
        steps.push(Step::DeleteLoadBalancer {
            arn: old.arn.clone(),
        });
    }
    steps
}

/// What ELB cannot modify in place: a change means a new target group.
pub(crate) fn same_identity(a: &TargetGroup, b: &TargetGroup) -> bool {
    a.protocol == b.protocol
        && a.port == b.port
        && a.target_type == b.target_type
        && a.ip_address_type == b.ip_address_type
}

fn target_group_changes(
    desired: &TargetGroup,
    current: &ExistingTargetGroup,
    steps: &mut Vec<Step>,
) {
    if desired.health_check != current.group.health_check {
        steps.push(Step::ModifyTargetGroupHealthCheck {
            arn: current.arn.clone(),
            resource_id: desired.resource_id.clone(),
        });
    }
    let attributes = changed(&desired.attributes, &current.group.attributes);
    if !attributes.is_empty() {
        steps.push(Step::SetTargetGroupAttributes {
            arn: current.arn.clone(),
            attributes,
        });
    }
    let tags = changed(&desired.tags, &current.group.tags);
    if !tags.is_empty() {
        steps.push(Step::AddTags {
            arn: current.arn.clone(),
            tags,
        });
    }
}

/// The desired entries that are missing or different in `current`. Keys the stack does not name
/// are left as they are (ELB's defaults, or what someone set by hand).
fn changed(
    desired: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Creates, replaces (scheme, type or name changed: ELB cannot modify those) or modifies the
/// load balancer.
fn load_balancer_steps(
    stack: &Stack,
    owner: &Owner,
    existing: &Existing,
    steps: &mut Vec<Step>,
) -> LoadBalancerFate {
    let desired = &stack.load_balancer;
    let Some(current) = existing
        .load_balancer
        .as_ref()
        .filter(|l| owner.owns(&l.load_balancer.tags))
    else {
        steps.push(Step::CreateLoadBalancer);
        return LoadBalancerFate::Created;
    };
    let have = &current.load_balancer;
    if have.scheme != desired.scheme || have.kind != desired.kind || have.name != desired.name {
        steps.push(Step::CreateLoadBalancer);
        return LoadBalancerFate::Replaced;
    }
    let arn = current.arn.clone();
    let mut desired_subnets: Vec<&str> = desired
        .subnets
        .iter()
        .map(|s| s.subnet_id.as_str())
        .collect();
    let mut have_subnets: Vec<&str> = have.subnets.iter().map(|s| s.subnet_id.as_str()).collect();
    desired_subnets.sort_unstable();
    have_subnets.sort_unstable();
    if desired_subnets != have_subnets {
        steps.push(Step::SetSubnets { arn: arn.clone() });
    }
    let mut desired_groups = desired.security_groups.clone();
    let mut have_groups = have.security_groups.clone();
    desired_groups.sort();
    have_groups.sort();
    if !desired_groups.is_empty() && desired_groups != have_groups {
        steps.push(Step::SetSecurityGroups { arn: arn.clone() });
    }
    let attributes = changed(&desired.attributes, &have.attributes);
    if !attributes.is_empty() {
        steps.push(Step::SetLoadBalancerAttributes {
            arn: arn.clone(),
            attributes,
        });
    }
    let tags = changed(&desired.tags, &have.tags);
    if !tags.is_empty() {
        steps.push(Step::AddTags { arn, tags });
    }
    LoadBalancerFate::Kept
}

/// Listeners by port. On a load balancer being created or replaced every listener is new.
fn listener_steps(
    stack: &Stack,
    existing: &Existing,
    load_balancer_kept: bool,
    arns: &BTreeMap<&str, Option<&str>>,
    steps: &mut Vec<Step>,
) {
    let current = |port: u16| {
        existing
            .listeners
            .iter()
            .find(|l| l.listener.port == port)
            .filter(|_| load_balancer_kept)
    };
    let arn_of = |id: &str| arns.get(id).copied().flatten().map(str::to_string);
    let owner = Owner::of(stack);
    for desired in &stack.listeners {
        let have_rules = current(desired.port).map_or(&[][..], |l| l.rules.as_slice());
        let mut rule_changes = Vec::new();
        rules::rule_steps(
            desired.port,
            &desired.rules,
            have_rules,
            |r| owner.owns(&r.rule.tags) && !held(stack, &r.rule.tags),
            arn_of,
            &mut rule_changes,
        );
        match current(desired.port) {
            None => steps.push(Step::CreateListener { port: desired.port }),
            Some(have) => {
                let action = resolve(&desired.default_action, |id| {
                    arns.get(id).copied().flatten().map(str::to_string)
                });
                let same = have.listener.protocol == desired.protocol
                    && have.listener.certificates == desired.certificates
                    && have.listener.ssl_policy == desired.ssl_policy
                    && have.listener.alpn_policy == desired.alpn_policy
                    && action.as_ref() == Some(&have.listener.default_action)
                    && changed(&desired.attributes, &have.listener.attributes).is_empty();
                if !same {
                    steps.push(Step::ModifyListener {
                        arn: have.arn.clone(),
                        port: desired.port,
                    });
                }
            }
        }
        steps.extend(rule_changes);
    }
    if !load_balancer_kept {
        return;
    }
    for have in &existing.listeners {
        if !stack.listeners.iter().any(|l| l.port == have.listener.port) {
            steps.push(Step::DeleteListener {
                arn: have.arn.clone(),
                port: have.listener.port,
            });
        }
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
pub(crate) mod tests;
