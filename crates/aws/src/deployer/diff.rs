//! Desired stack vs what exists -> the steps that converge one to the other, in a safe order:
//!
//! 1. target groups created (new, or replacing one whose protocol, target type or protocol version
//!    changed: ELB cannot modify those) and modified (health check, attributes, tags);
//! 2. the load balancer created (or replaced when its scheme changed), then modified;
//! 3. listeners created or modified, so traffic moves to a replacement target group before
//!    the old one goes;
//! 4. listeners deleted, then target groups nothing uses any more, then a replaced load balancer.
//!
//! Only resources that carry this stack's ownership tags are ever modified or deleted: the caller
//! passes what it found by those tags, and the diff checks them again. A converged stack gives no
//! steps at all.
//!
//! Resources are matched as upstream matches them, so state either controller built is adopted
//! as it is: the load balancer and target groups by their resource-id tag, whatever their names
//! (a load balancer is replaced only when its type or scheme changes), listeners by port, rules
//! by content. Tags are made exactly the desired ones (upstream's legacy keys and
//! `--external-managed-tags` excepted), so tags an older version left go too.

use std::collections::{BTreeMap, BTreeSet};

use lb_model::stack::{
    Action, Listener, LoadBalancer, Stack, StackKind, TargetGroup, TargetGroupRef,
    WeightedTargetGroup, tags,
};

use super::rules;
pub use super::rules::ExistingRule;
pub use super::steps::{Step, summary};

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

    /// Tag keys the deployer never removes: upstream's legacy keys and the stack's
    /// `--external-managed-tags`.
    pub fn ignored_tags(&self, stack: &Stack) -> BTreeSet<String> {
        tags::legacy(&self.cluster)
            .into_iter()
            .chain(stack.external_managed_tags.iter().cloned())
            .collect()
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

/// AddTags for the desired tags `current` lacks or has otherwise, RemoveTags for the keys it has
/// that are not desired (but `ignored`).
pub(crate) fn tag_steps(
    arn: &str,
    desired: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
    ignored: &BTreeSet<String>,
    steps: &mut Vec<Step>,
) {
    let (add, remove) = tag_changes(desired, current, ignored);
    if !add.is_empty() {
        steps.push(Step::AddTags {
            arn: arn.to_string(),
            tags: add,
        });
    }
    if !remove.is_empty() {
        steps.push(Step::RemoveTags {
            arn: arn.to_string(),
            keys: remove,
        });
    }
}

/// The tags to add (the desired ones `current` lacks or has otherwise) and the keys to remove
/// (`current`'s that are not desired, but `ignored`): what makes tags exact, on any resource.
pub(crate) fn tag_changes(
    desired: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
    ignored: &BTreeSet<String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let remove = current
        .keys()
        .filter(|k| !desired.contains_key(*k) && !ignored.contains(*k))
        .cloned()
        .collect();
    (changed(desired, current), remove)
}

/// What becomes of the stack's load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadBalancerFate {
    /// Ours and modifiable in place: its listeners are compared with the desired ones.
    Kept,
    /// None of ours exists: one is created (a load balancer without our tags is left alone).
    Created,
    /// Ours, but its scheme or type changed: a new one, the old deleted last. (A name is not
    /// reason enough: upstream keeps the load balancer, and so its DNS name.)
    Replaced,
}

pub fn diff(stack: &Stack, existing: &Existing) -> Vec<Step> {
    let owner = Owner::of(stack);
    let ignored = owner.ignored_tags(stack);
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
                    group: Box::new(desired.clone()),
                });
                arns.insert(&desired.resource_id, None);
            }
            Some(current) => {
                kept.push(&current.arn);
                arns.insert(&desired.resource_id, Some(&current.arn));
                target_group_changes(desired, current, &ignored, &mut steps);
            }
        }
    }
    let fate = load_balancer_steps(stack, &owner, existing, &ignored, &mut steps);
    listener_steps(
        stack,
        existing,
        fate == LoadBalancerFate::Kept,
        &arns,
        &ignored,
        &mut steps,
    );
    for old in &existing.target_groups {
        // A held member's target groups stay until it is fixed.
        if !kept.contains(&old.arn.as_str())
            && owner.owns(&old.group.tags)
            && !stack.holds_target_group(&old.group.resource_id)
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

/// Why the steps cannot be taken: a load balancer to create, and no subnet for it (discovery
/// found none; one that exists keeps its own, so this matters only for a new one).
pub fn missing_subnets<'a>(stack: &'a Stack, steps: &[Step]) -> Option<&'a str> {
    let creates = steps.iter().any(|s| matches!(s, Step::CreateLoadBalancer));
    let lb = &stack.load_balancer;
    lb.subnets_problem
        .as_deref()
        .filter(|_| creates && lb.subnets.is_empty())
}

/// What makes `have` unfit for `desired`, as upstream judges it: another protocol, target type or
/// (when the stack says one) protocol version means a new target group. The port is not in the
/// data path (targets register with their own) and stays; the names hash all of these, so a
/// replacement's name is free.
pub(crate) fn same_identity(have: &TargetGroup, desired: &TargetGroup) -> bool {
    have.protocol == desired.protocol
        && have.target_type == desired.target_type
        && (desired.protocol_version.is_none() || have.protocol_version == desired.protocol_version)
}

fn target_group_changes(
    desired: &TargetGroup,
    current: &ExistingTargetGroup,
    ignored: &BTreeSet<String>,
    steps: &mut Vec<Step>,
) {
    if desired.health_check != current.group.health_check {
        steps.push(Step::ModifyTargetGroupHealthCheck {
            arn: current.arn.clone(),
            group: Box::new(desired.clone()),
        });
    }
    let attributes = changed(&desired.attributes, &current.group.attributes);
    if !attributes.is_empty() {
        steps.push(Step::SetTargetGroupAttributes {
            arn: current.arn.clone(),
            attributes,
        });
    }
    tag_steps(
        &current.arn,
        &desired.tags,
        &current.group.tags,
        ignored,
        steps,
    );
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

/// Creates, replaces (scheme or type changed: ELB cannot modify those) or modifies the load
/// balancer.
fn load_balancer_steps(
    stack: &Stack,
    owner: &Owner,
    existing: &Existing,
    ignored: &BTreeSet<String>,
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
    if have.scheme != desired.scheme || have.kind != desired.kind {
        steps.push(Step::CreateLoadBalancer);
        return LoadBalancerFate::Replaced;
    }
    let arn = current.arn.clone();
    // Discovered subnets are for new load balancers: one that exists keeps its own (upstream's
    // rule; a subnet tagged later moves nothing).
    if desired.subnets_named {
        subnet_steps(&arn, desired, have, steps);
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
    tag_steps(&arn, &desired.tags, &have.tags, ignored, steps);
    LoadBalancerFate::Kept
}

fn subnet_steps(arn: &str, desired: &LoadBalancer, have: &LoadBalancer, steps: &mut Vec<Step>) {
    let mut desired_subnets: Vec<&str> = desired
        .subnets
        .iter()
        .map(|s| s.subnet_id.as_str())
        .collect();
    let mut have_subnets: Vec<&str> = have.subnets.iter().map(|s| s.subnet_id.as_str()).collect();
    desired_subnets.sort_unstable();
    have_subnets.sort_unstable();
    if desired_subnets != have_subnets {
        steps.push(Step::SetSubnets {
            arn: arn.to_string(),
        });
    }
}

/// Whether a rule on a listener of ours is ours to change: tagged as this stack's, or carrying no
/// ownership tag at all (upstream's rules from before it tagged them, or with its gate
/// `ListenerRulesTagging` off: upstream takes every rule of its listeners for its own). A rule
/// tagged for another stack or cluster is someone else's.
pub(crate) fn rule_is_ours(owner: &Owner, tags: &BTreeMap<String, String>) -> bool {
    let tagged = [
        tags::CLUSTER,
        StackKind::Ingress.stack_tag(),
        StackKind::Service.stack_tag(),
        StackKind::AlbGateway.stack_tag(),
    ]
    .iter()
    .any(|key| tags.contains_key(*key));
    owner.owns(tags) || !tagged
}

/// Whether listener `have` is `desired` already (its default action's target groups by ARN).
fn same_listener(
    desired: &Listener,
    have: &ExistingListener,
    arn_of: &dyn Fn(&str) -> Option<String>,
) -> bool {
    let action = resolve(&desired.default_action, arn_of);
    have.listener.protocol == desired.protocol
        && have.listener.certificates == desired.certificates
        && have.listener.ssl_policy == desired.ssl_policy
        && have.listener.alpn_policy == desired.alpn_policy
        && action.as_ref() == Some(&have.listener.default_action)
        && changed(&desired.attributes, &have.listener.attributes).is_empty()
}

/// Listeners by port. On a load balancer being created or replaced every listener is new.
fn listener_steps(
    stack: &Stack,
    existing: &Existing,
    load_balancer_kept: bool,
    arns: &BTreeMap<&str, Option<&str>>,
    ignored: &BTreeSet<String>,
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
    let ours = |r: &ExistingRule| rule_is_ours(&owner, &r.rule.tags);
    // A held member's rules: those forwarding to its target groups.
    let held_groups: BTreeSet<&str> = existing
        .target_groups
        .iter()
        .filter(|t| stack.holds_target_group(&t.group.resource_id))
        .map(|t| t.arn.as_str())
        .collect();
    let held = |r: &ExistingRule| {
        r.rule.action.target_groups().any(|g| match g {
            TargetGroupRef::Arn(arn) => held_groups.contains(arn.as_str()),
            TargetGroupRef::Stack(_) => false,
        })
    };
    for desired in &stack.listeners {
        let have_rules = current(desired.port).map_or(&[][..], |l| l.rules.as_slice());
        let mut rule_changes = Vec::new();
        rules::rule_steps(
            &rules::RuleContext {
                port: desired.port,
                kind: stack.kind,
                ours: &ours,
                held: &held,
                arn_of: &arn_of,
                ignored_tags: ignored,
            },
            &desired.rules,
            have_rules,
            &mut rule_changes,
        );
        match current(desired.port) {
            None => steps.push(Step::CreateListener {
                listener: Box::new(desired.clone()),
            }),
            Some(have) => {
                if !same_listener(desired, have, &arn_of) {
                    steps.push(Step::ModifyListener {
                        arn: have.arn.clone(),
                        listener: Box::new(desired.clone()),
                    });
                }
                tag_steps(
                    &have.arn,
                    &desired.tags,
                    &have.listener.tags,
                    ignored,
                    steps,
                );
            }
        }
        steps.extend(rule_changes);
    }
    if load_balancer_kept {
        let holds = |r: &ExistingRule| ours(r) && held(r);
        delete_listeners(stack, existing, &holds, steps);
    }
}

/// The existing listeners on ports the stack has no more, but those a held member's rules are
/// on (`holds`): they stay with them.
fn delete_listeners(
    stack: &Stack,
    existing: &Existing,
    holds: &dyn Fn(&ExistingRule) -> bool,
    steps: &mut Vec<Step>,
) {
    for have in &existing.listeners {
        let held = have.rules.iter().any(holds);
        if !stack.listeners.iter().any(|l| l.port == have.listener.port) && !held {
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
