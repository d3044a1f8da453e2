//! An ALB listener's rules: desired (in evaluation order) vs existing (by priority) -> the fewest
//! calls that converge them, with priorities that move as little as possible.
//!
//! 1. Pairing: a desired rule takes an existing one with the same conditions and action (kept as
//!    it is); the desired rules left take the existing ones left, in order (ModifyRule rewrites
//!    them: one call, where delete + create would be two); existing rules still left are deleted,
//!    desired rules still left are created.
//! 2. Priorities ([`assign`]): paired rules whose priorities already increase in the desired order
//!    (the longest such run) keep them; the others take the lowest free priority after their
//!    predecessor, which pushes a following rule on only when there is no gap. A changed path is
//!    one ModifyRule; an added rule is one CreateRule (plus one SetRulePriorities when it lands
//!    between two rules with no gap); a removed one is one DeleteRule.
//!
//! Rules without this stack's tags (someone else's, or those of a group member kept as it was
//! while its annotations are broken) are never touched: their priorities are taken.
//!
//! Order of the calls: deletes (freeing priorities), modifies (at their old priorities), one
//! SetRulePriorities for every paired rule that moves (ELB applies it as one change), creates.

use std::collections::BTreeSet;

use lb_model::stack::{Action, Rule};

use super::diff::{Step, resolve};

/// ELB's highest rule priority.
pub const MAX_PRIORITY: u32 = 50_000;

/// An existing rule of a listener (not its default rule); its action names target groups by ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRule {
    pub arn: String,
    pub priority: u32,
    pub rule: Rule,
}

/// The steps for the rules of the listener on `port`. `ours` says whether an existing rule is
/// this stack's to change; `arn_of` gives a stack target group's ARN (None while being created).
pub fn rule_steps(
    port: u16,
    desired: &[Rule],
    existing: &[ExistingRule],
    ours: impl Fn(&ExistingRule) -> bool,
    arn_of: impl Fn(&str) -> Option<String>,
    steps: &mut Vec<Step>,
) {
    let mut mine: Vec<&ExistingRule> = existing.iter().filter(|r| ours(r)).collect();
    mine.sort_by_key(|r| r.priority);
    let occupied: BTreeSet<u32> = existing
        .iter()
        .filter(|r| !ours(r))
        .map(|r| r.priority)
        .collect();
    let resolved: Vec<Option<Action>> = desired
        .iter()
        .map(|r| resolve(&r.action, &arn_of))
        .collect();
    let same = |i: usize, have: &ExistingRule| {
        resolved[i].as_ref() == Some(&have.rule.action)
            && desired[i].conditions == have.rule.conditions
    };
    let Pairing {
        paired,
        taken,
        modified,
    } = pair(desired.len(), &mine, same);
    for (j, have) in mine.iter().enumerate() {
        if !taken[j] {
            steps.push(Step::DeleteRule {
                arn: have.arn.clone(),
            });
        }
    }
    for &i in &modified {
        if let Some(j) = paired[i] {
            steps.push(Step::ModifyRule {
                arn: mine[j].arn.clone(),
                port,
                index: i,
            });
        }
    }
    for (i, slot) in paired.iter().enumerate() {
        if let Some(j) = slot
            && mine[*j].rule.tags != desired[i].tags
        {
            steps.push(Step::AddTags {
                arn: mine[*j].arn.clone(),
                tags: desired[i].tags.clone(),
            });
        }
    }
    // 2. Priorities.
    let current: Vec<Option<u32>> = paired
        .iter()
        .map(|slot| slot.map(|j| mine[j].priority))
        .collect();
    let priorities = assign(&current, &occupied);
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
    for (i, slot) in paired.iter().enumerate() {
        if slot.is_none() {
            steps.push(Step::CreateRule {
                port,
                index: i,
                priority: priorities[i],
            });
        }
    }
}

/// Desired rule -> the existing rule it takes (an index into the listener's rules of ours).
struct Pairing {
    paired: Vec<Option<usize>>,
    /// Existing rules taken by a desired one.
    taken: Vec<bool>,
    /// Desired rules that took an existing rule that differs: rewritten by ModifyRule.
    modified: Vec<usize>,
}

/// Identical rules pair first; the desired rules left take the existing ones left, in order.
fn pair(
    desired: usize,
    mine: &[&ExistingRule],
    same: impl Fn(usize, &ExistingRule) -> bool,
) -> Pairing {
    let mut paired: Vec<Option<usize>> = vec![None; desired];
    let mut taken = vec![false; mine.len()];
    for (i, slot) in paired.iter_mut().enumerate() {
        if let Some(j) = (0..mine.len()).find(|&j| !taken[j] && same(i, mine[j])) {
            taken[j] = true;
            *slot = Some(j);
        }
    }
    let left: Vec<usize> = (0..mine.len()).filter(|&j| !taken[j]).collect();
    let mut left = left.into_iter();
    let mut modified = Vec::new();
    for (i, slot) in paired.iter_mut().enumerate() {
        if slot.is_none()
            && let Some(j) = left.next()
        {
            taken[j] = true;
            *slot = Some(j);
            modified.push(i);
        }
    }
    Pairing {
        paired,
        taken,
        modified,
    }
}

/// Priorities for rules in evaluation order: `current[i]` is the priority rule `i` has (None for
/// a new one); `occupied` are taken by rules not ours. The result strictly increases, avoids
/// `occupied`, and keeps as many current priorities as the order allows.
pub fn assign(current: &[Option<u32>], occupied: &BTreeSet<u32>) -> Vec<u32> {
    let anchors = longest_increasing(current);
    let mut out = Vec::with_capacity(current.len());
    let mut next = 1u32;
    for (i, have) in current.iter().enumerate() {
        let priority = match have {
            Some(p) if anchors.contains(&i) && *p >= next && !occupied.contains(p) => *p,
            _ => {
                while occupied.contains(&next) {
                    next += 1;
                }
                next
            }
        };
        out.push(priority);
        next = priority + 1;
    }
    if out.last().is_some_and(|p| *p > MAX_PRIORITY) {
        // Pushed past ELB's range (only after many rules near the top): renumber from 1.
        return assign(&vec![None; current.len()], occupied);
    }
    out
}

/// The indices of a longest strictly increasing run of the `Some` values (O(n^2): a listener has
/// at most 100 rules).
fn longest_increasing(values: &[Option<u32>]) -> BTreeSet<usize> {
    let n = values.len();
    let mut length = vec![0usize; n];
    let mut previous: Vec<Option<usize>> = vec![None; n];
    for i in 0..n {
        let Some(v) = values[i] else { continue };
        length[i] = 1;
        for j in 0..i {
            if let Some(u) = values[j]
                && u < v
                && length[j] + 1 > length[i]
            {
                length[i] = length[j] + 1;
                previous[i] = Some(j);
            }
        }
    }
    let mut chain = BTreeSet::new();
    let mut at = (0..n)
        .filter(|&i| length[i] > 0)
        .max_by_key(|&i| (length[i], std::cmp::Reverse(i)));
    while let Some(i) = at {
        chain.insert(i);
        at = previous[i];
    }
    chain
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
