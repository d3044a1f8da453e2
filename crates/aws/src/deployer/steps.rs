//! The steps the diff gives and `apply` carries out: one change to AWS each, carrying what it
//! applies; printed on one line for the log.

use std::collections::BTreeMap;

use lb_model::stack::{Listener, Rule, TargetGroup};

/// One change to AWS, carrying what it applies (the target group, listener or rule as desired):
/// applying a step looks nothing up. Existing resources are named by ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    CreateTargetGroup {
        group: Box<TargetGroup>,
    },
    /// Sets `group`'s health check on the target group `arn`.
    ModifyTargetGroupHealthCheck {
        arn: String,
        group: Box<TargetGroup>,
    },
    SetTargetGroupAttributes {
        arn: String,
        attributes: BTreeMap<String, String>,
    },
    AddTags {
        arn: String,
        tags: BTreeMap<String, String>,
    },
    RemoveTags {
        arn: String,
        keys: Vec<String>,
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
        listener: Box<Listener>,
    },
    /// Rewrites listener `arn` to `listener` (its default action's target groups are resolved to
    /// ARNs when applied: a replacement may be created by an earlier step).
    ModifyListener {
        arn: String,
        listener: Box<Listener>,
    },
    DeleteListener {
        arn: String,
        port: u16,
    },
    DeleteRule {
        arn: String,
    },
    /// Rewrites rule `arn` of the listener on `port` to `rule`.
    ModifyRule {
        arn: String,
        port: u16,
        rule: Box<Rule>,
    },
    /// (rule ARN, priority): one call that moves them all.
    SetRulePriorities {
        priorities: Vec<(String, u32)>,
    },
    /// Creates `rule` (tagged with its resource id) at `priority` on the listener on `port`.
    CreateRule {
        port: u16,
        priority: u32,
        rule: Box<Rule>,
    },
    DeleteTargetGroup {
        arn: String,
    },
    DeleteLoadBalancer {
        arn: String,
    },
}

impl std::fmt::Display for Step {
    /// One line per step for the log: what it does and to what, not the whole desired value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CreateTargetGroup { group } => {
                write!(f, "CreateTargetGroup {}", group.resource_id)
            }
            Self::ModifyTargetGroupHealthCheck { arn, .. } => write!(f, "ModifyTargetGroup {arn}"),
            Self::SetTargetGroupAttributes { arn, .. } => {
                write!(f, "ModifyTargetGroupAttributes {arn}")
            }
            Self::AddTags { arn, tags } => write!(f, "AddTags {arn} {tags:?}"),
            Self::RemoveTags { arn, keys } => write!(f, "RemoveTags {arn} {keys:?}"),
            Self::CreateLoadBalancer => f.write_str("CreateLoadBalancer"),
            Self::SetLoadBalancerAttributes { arn, .. } => {
                write!(f, "ModifyLoadBalancerAttributes {arn}")
            }
            Self::SetSubnets { arn } => write!(f, "SetSubnets {arn}"),
            Self::SetSecurityGroups { arn } => write!(f, "SetSecurityGroups {arn}"),
            Self::CreateListener { listener } => write!(f, "CreateListener {}", listener.port),
            Self::ModifyListener { arn, listener } => {
                write!(f, "ModifyListener {} {arn}", listener.port)
            }
            Self::DeleteListener { arn, port } => write!(f, "DeleteListener {port} {arn}"),
            Self::DeleteRule { arn } => write!(f, "DeleteRule {arn}"),
            Self::ModifyRule { arn, port, .. } => write!(f, "ModifyRule {port} {arn}"),
            Self::SetRulePriorities { priorities } => write!(f, "SetRulePriorities {priorities:?}"),
            Self::CreateRule { port, priority, .. } => write!(f, "CreateRule {port}:{priority}"),
            Self::DeleteTargetGroup { arn } => write!(f, "DeleteTargetGroup {arn}"),
            Self::DeleteLoadBalancer { arn } => write!(f, "DeleteLoadBalancer {arn}"),
        }
    }
}

/// `steps` on one line, for the log.
pub fn summary(steps: &[Step]) -> String {
    let lines: Vec<String> = steps.iter().map(ToString::to_string).collect();
    lines.join("; ")
}
