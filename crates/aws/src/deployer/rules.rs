//! An ALB listener's rules: desired (in evaluation order) vs existing -> the calls that converge
//! them to upstream's layout: the desired rules at priorities 1, 2, 3, ... in order (a priority
//! held by a rule that is not ours to change is skipped), each tagged with the resource id
//! `<port>:<priority>`. Either controller then finds the other's rules where it would put its
//! own, and changes nothing.
//!
//! 1. A desired rule takes the first existing rule of ours with the same conditions and action:
//!    kept, and moved when it sits at another priority (one SetRulePriorities for every move:
//!    ELB applies it as one change).
//! 2. A desired rule left takes the rule of ours left at its priority: rewritten in place by
//!    ModifyRule (one call where delete + create would be two).
//! 3. Rules of ours still left are deleted; desired rules still left are created.
//!
//! Rules without this stack's tags (someone else's) are never touched, and neither are a held
//! group member's (its annotations broken) that no desired rule takes in step 1: they stay as
//! they are, their priorities skipped like a foreign rule's.
//!
//! Order of the calls: deletes (freeing priorities), the moves, the rewrites, the creates, then
//! the tags of the rules kept whose tags differ (a moved rule's resource id changes).

use std::collections::{BTreeMap, BTreeSet};

use lb_model::stack::{Action, Rule, StackKind};

use super::diff::{Step, resolve, tag_steps};

/// An existing rule of a listener (not its default rule); its action names target groups by ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRule {
    pub arn: String,
    pub priority: u32,
    pub rule: Rule,
}

/// What the rule steps of one listener need to know besides the rules.
pub struct RuleContext<'a> {
    pub port: u16,
    pub kind: StackKind,
    /// Whether an existing rule is this stack's to change.
    pub ours: &'a dyn Fn(&ExistingRule) -> bool,
    /// Whether a rule of ours is a held member's: it stays unless a desired rule is identical.
    pub held: &'a dyn Fn(&ExistingRule) -> bool,
    /// A stack target group's ARN (None while it is being created).
    pub arn_of: &'a dyn Fn(&str) -> Option<String>,
    /// Tag keys never removed (upstream's legacy keys, `--external-managed-tags`).
    pub ignored_tags: &'a BTreeSet<String>,
}

/// `rule`'s tags with its resource id, `<port>:<priority>`: what a rule at `priority` carries.
pub fn rule_tags(
    rule: &Rule,
    kind: StackKind,
    port: u16,
    priority: u32,
) -> BTreeMap<String, String> {
    let mut tags = rule.tags.clone();
    tags.insert(kind.resource_tag().into(), format!("{port}:{priority}"));
    tags
}

/// The steps for the rules of one listener.
pub fn rule_steps(
    context: &RuleContext,
    desired: &[Rule],
    existing: &[ExistingRule],
    steps: &mut Vec<Step>,
) {
    let mut mine: Vec<&ExistingRule> = existing.iter().filter(|r| (context.ours)(r)).collect();
    mine.sort_by_key(|r| r.priority);
    let resolved: Vec<Option<Action>> = desired
        .iter()
        .map(|r| resolve(&r.action, context.arn_of))
        .collect();
    // 1. Identical rules.
    let (mut paired, mut taken) = pair_identical(desired, &resolved, &mine);
    // A held member's rules left stay where they are, like someone else's.
    let held_left: Vec<usize> = (0..mine.len())
        .filter(|&j| !taken[j] && (context.held)(mine[j]))
        .collect();
    for &j in &held_left {
        taken[j] = true;
    }
    let occupied: BTreeSet<u32> = existing
        .iter()
        .filter(|r| !(context.ours)(r))
        .map(|r| r.priority)
        .chain(held_left.iter().map(|&j| mine[j].priority))
        .collect();
    let priorities = layout(desired.len(), &occupied);
    // 2. The rule of ours left at a desired rule's priority is rewritten to it.
    let mut modified = Vec::new();
    for (i, slot) in paired.iter_mut().enumerate() {
        if slot.is_some() {
            continue;
        }
        if let Some(j) = (0..mine.len()).find(|&j| !taken[j] && mine[j].priority == priorities[i]) {
            taken[j] = true;
            *slot = Some(j);
            modified.push(i);
        }
    }
    // 3. What is left of ours goes.
    for (j, have) in mine.iter().enumerate() {
        if !taken[j] {
            steps.push(Step::DeleteRule {
                arn: have.arn.clone(),
            });
        }
    }
    let moves: Vec<(String, u32)> = paired
        .iter()
        .zip(&priorities)
        .filter_map(|(slot, &want)| {
            let have = mine[(*slot)?];
            (have.priority != want).then(|| (have.arn.clone(), want))
        })
        .collect();
    if !moves.is_empty() {
        steps.push(Step::SetRulePriorities { priorities: moves });
    }
    for &i in &modified {
        if let Some(j) = paired[i] {
            steps.push(Step::ModifyRule {
                arn: mine[j].arn.clone(),
                port: context.port,
                rule: Box::new(desired[i].clone()),
            });
        }
    }
    create_and_tag(context, desired, &mine, &paired, &priorities, steps);
}

/// The creates of the desired rules no rule of ours took, then the tags of those taken (a
/// moved rule's resource id changes).
fn create_and_tag(
    context: &RuleContext,
    desired: &[Rule],
    mine: &[&ExistingRule],
    paired: &[Option<usize>],
    priorities: &[u32],
    steps: &mut Vec<Step>,
) {
    for (i, slot) in paired.iter().enumerate() {
        if slot.is_none() {
            let tags = rule_tags(&desired[i], context.kind, context.port, priorities[i]);
            steps.push(Step::CreateRule {
                port: context.port,
                priority: priorities[i],
                rule: Box::new(Rule {
                    tags,
                    ..desired[i].clone()
                }),
            });
        }
    }
    for (i, slot) in paired.iter().enumerate() {
        if let Some(j) = slot {
            let want = rule_tags(&desired[i], context.kind, context.port, priorities[i]);
            tag_steps(
                &mine[*j].arn,
                &want,
                &mine[*j].rule.tags,
                context.ignored_tags,
                steps,
            );
        }
    }
}

/// For each desired rule, the first rule of `mine` with the same conditions and action (its
/// target groups resolved); and which of `mine` are taken.
fn pair_identical(
    desired: &[Rule],
    resolved: &[Option<Action>],
    mine: &[&ExistingRule],
) -> (Vec<Option<usize>>, Vec<bool>) {
    let mut paired: Vec<Option<usize>> = vec![None; desired.len()];
    let mut taken = vec![false; mine.len()];
    for (i, slot) in paired.iter_mut().enumerate() {
        let same = |have: &ExistingRule| {
            resolved[i].as_ref() == Some(&have.rule.action)
                && desired[i].conditions == have.rule.conditions
        };
        if let Some(j) = (0..mine.len()).find(|&j| !taken[j] && same(mine[j])) {
            taken[j] = true;
            *slot = Some(j);
        }
    }
    (paired, taken)
}

/// Priorities for `count` rules in evaluation order: 1, 2, 3, ... skipping `occupied`.
pub fn layout(count: usize, occupied: &BTreeSet<u32>) -> Vec<u32> {
    let mut out = Vec::with_capacity(count);
    let mut next = 1u32;
    while out.len() < count {
        if !occupied.contains(&next) {
            out.push(next);
        }
        next += 1;
    }
    out
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
