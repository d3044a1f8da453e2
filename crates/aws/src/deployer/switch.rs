//! Replacing a target group without a moment of zero targets. ELB cannot change a target group's
//! protocol or target type, so the diff creates a new one, points the listener (or the ALB rule)
//! at it and deletes the old. Done in one go, traffic would go to a group with no target
//! registered yet. So the switch waits:
//!
//! 1. the new group is created, and its binding registers the targets ([`Wait::Hold`]: the old
//!    listener or rule stays as it is);
//! 2. on an ALB, once the new group has registered targets, the rule (or listener) forwards to
//!    both, the new one at weight 0 ([`Wait::Warm`]): ELB health-checks a group only while a
//!    listener or rule uses it, and weight 0 sends it nothing meanwhile;
//! 3. once the new group has a healthy target (on an NLB, which forwards to one group only: a
//!    registered one), or the old group has none left to lose, the listener or rule moves and the
//!    old group goes.

use lb_model::stack::{Action, TargetGroupRef, WeightedTargetGroup};

use super::diff::{Existing, Step};

/// Where traffic is switched: a listener's default action or one of an ALB listener's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchPoint {
    Listener {
        port: u16,
    },
    /// The existing rule the steps rewrite (by ARN), on the listener at `port`.
    Rule {
        port: u16,
        arn: String,
    },
}

/// A listener or rule that the steps move from a target group being deleted to its replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub at: SwitchPoint,
    /// The target group it forwards to now, which the steps delete.
    pub old_arn: String,
    /// The replacement's resource id (its ARN, if it exists yet, is in `Existing`).
    pub new_resource_id: String,
}

/// What a switch that cannot be made yet does meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The listener or rule stays as it is.
    Hold,
    /// The rule or listener forwards to the old group and, at weight 0, to the new one, so ELB
    /// checks the new targets' health (ALB only).
    Warm,
}

/// The switches among `steps`: a listener modified, or a rule rewritten, from a target group the
/// steps delete (alone, or beside its replacement while it warms up) to a single target group of
/// the stack.
pub fn switches(existing: &Existing, steps: &[Step]) -> Vec<Switch> {
    let deleted = |arn: &str| {
        steps
            .iter()
            .any(|s| matches!(s, Step::DeleteTargetGroup { arn: a } if a == arn))
    };
    let switch = |at: SwitchPoint, from: &Action, to: &Action| {
        let TargetGroupRef::Stack(new) = to.single_target()? else {
            return None;
        };
        let old = from.target_groups().find_map(|t| match t {
            TargetGroupRef::Arn(arn) if deleted(arn) => Some(arn.clone()),
            _ => None,
        })?;
        Some(Switch {
            at,
            old_arn: old,
            new_resource_id: new.clone(),
        })
    };
    steps
        .iter()
        .filter_map(|step| match step {
            Step::ModifyListener { arn, listener } => {
                let current = existing.listeners.iter().find(|l| &l.arn == arn)?;
                let at = SwitchPoint::Listener {
                    port: listener.port,
                };
                switch(
                    at,
                    &current.listener.default_action,
                    &listener.default_action,
                )
            }
            Step::ModifyRule { arn, port, rule } => {
                let current = existing
                    .listeners
                    .iter()
                    .flat_map(|l| &l.rules)
                    .find(|r| &r.arn == arn)?;
                let at = SwitchPoint::Rule {
                    port: *port,
                    arn: arn.clone(),
                };
                switch(at, &current.rule.action, &rule.action)
            }
            _ => None,
        })
        .collect()
}

/// `steps` with the `waiting` switches not made: the old group stays; a held listener or rule is
/// not modified, a warming one forwards to both groups ([`warming`]).
pub fn hold(steps: Vec<Step>, waiting: &[(Switch, Wait)]) -> Vec<Step> {
    let at = |point: &SwitchPoint| waiting.iter().find(|(s, _)| &s.at == point);
    steps
        .into_iter()
        .filter_map(|step| match step {
            Step::ModifyListener { arn, mut listener } => {
                let point = SwitchPoint::Listener {
                    port: listener.port,
                };
                match at(&point) {
                    None => Some(Step::ModifyListener { arn, listener }),
                    Some((_, Wait::Hold)) => None,
                    Some((switch, Wait::Warm)) => {
                        listener.default_action = warming(switch);
                        Some(Step::ModifyListener { arn, listener })
                    }
                }
            }
            Step::ModifyRule {
                arn,
                port,
                mut rule,
            } => {
                let point = SwitchPoint::Rule {
                    port,
                    arn: arn.clone(),
                };
                match at(&point) {
                    None => Some(Step::ModifyRule { arn, port, rule }),
                    Some((_, Wait::Hold)) => None,
                    Some((switch, Wait::Warm)) => {
                        rule.action = warming(switch);
                        Some(Step::ModifyRule { arn, port, rule })
                    }
                }
            }
            Step::DeleteTargetGroup { arn } if waiting.iter().any(|(s, _)| s.old_arn == arn) => {
                None
            }
            step => Some(step),
        })
        .collect()
}

/// The old group, and the new one at weight 0: ELB checks the new targets' health and sends
/// them nothing yet.
pub fn warming(switch: &Switch) -> Action {
    Action::Forward {
        target_groups: vec![
            WeightedTargetGroup {
                target_group: TargetGroupRef::Arn(switch.old_arn.clone()),
                weight: Some(1),
            },
            WeightedTargetGroup {
                target_group: TargetGroupRef::Stack(switch.new_resource_id.clone()),
                weight: Some(0),
            },
        ],
        stickiness_seconds: None,
    }
}

#[cfg(test)]
mod tests {
    use lb_api::TargetType;

    use super::*;
    use crate::deployer::diff::diff;
    use crate::deployer::diff::tests::{converged, stack};

    #[test]
    fn a_target_type_change_is_a_switch_that_can_be_held_until_the_new_group_is_healthy() {
        let before = stack();
        let existing = converged(&before);
        let mut after = before.clone();
        after.target_groups[0].target_type = TargetType::Instance;
        let steps = diff(&after, &existing);
        let found = switches(&existing, &steps);
        assert_eq!(found.len(), 1);
        let old_arn = existing.target_groups[0].arn.clone();
        assert_eq!(found[0].old_arn, old_arn);
        assert_eq!(found[0].new_resource_id, after.target_groups[0].resource_id);

        let waiting: Vec<(Switch, Wait)> = found.iter().map(|s| (s.clone(), Wait::Hold)).collect();
        let held = hold(steps.clone(), &waiting);
        assert!(
            held.iter()
                .any(|s| matches!(s, Step::CreateTargetGroup { .. }))
        );
        assert!(
            !held
                .iter()
                .any(|s| matches!(s, Step::ModifyListener { .. }))
        );
        assert!(
            !held
                .iter()
                .any(|s| matches!(s, Step::DeleteTargetGroup { .. }))
        );
        // Released, the steps are the diff's own.
        assert_eq!(hold(steps.clone(), &[]), steps);
    }

    /// An ALB: the listener forwards `/` to the stack's second target group by a rule.
    fn with_rule() -> lb_model::stack::Stack {
        let mut alb = stack();
        let mut second = alb.target_groups[0].clone();
        second.resource_id = "demo/web-api:8080".into();
        alb.target_groups.push(second);
        alb.listeners[0].rules.push(lb_model::stack::Rule {
            conditions: vec![lb_model::stack::Condition::PathPattern {
                values: vec!["/api".into()],
                regex: false,
            }],
            action: lb_model::stack::Action::forward_to("demo/web-api:8080"),
            tags: Default::default(),
        });
        alb
    }

    #[test]
    fn a_rules_target_group_replaced_is_a_switch_held_like_a_listeners() {
        let before = with_rule();
        let existing = converged(&before);
        let mut after = before.clone();
        after.target_groups[2].target_type = TargetType::Instance;
        let steps = diff(&after, &existing);
        let found = switches(&existing, &steps);
        let rule_arn = existing.listeners[0].rules[0].arn.clone();
        assert_eq!(
            found,
            [Switch {
                at: SwitchPoint::Rule {
                    port: after.listeners[0].port,
                    arn: rule_arn,
                },
                old_arn: existing.target_groups[2].arn.clone(),
                new_resource_id: "demo/web-api:8080".into(),
            }]
        );
        let waiting: Vec<(Switch, Wait)> = found.iter().map(|s| (s.clone(), Wait::Hold)).collect();
        let held = hold(steps, &waiting);
        assert!(
            held.iter()
                .any(|s| matches!(s, Step::CreateTargetGroup { .. }))
        );
        assert!(
            !held
                .iter()
                .any(|s| matches!(s, Step::ModifyRule { .. } | Step::DeleteTargetGroup { .. }))
        );
    }

    #[test]
    fn a_warming_rule_forwards_to_both_groups_and_is_still_a_switch_until_it_moves() {
        let before = with_rule();
        let existing = converged(&before);
        let mut after = before.clone();
        after.target_groups[2].target_type = TargetType::Instance;
        let steps = diff(&after, &existing);
        let found = switches(&existing, &steps);
        let waiting = vec![(found[0].clone(), Wait::Warm)];
        let warmed = hold(steps, &waiting);
        let rule = warmed
            .iter()
            .find_map(|s| match s {
                Step::ModifyRule { rule, .. } => Some(rule.clone()),
                _ => None,
            })
            .expect("the rule is rewritten");
        assert_eq!(rule.action, warming(&found[0]));
        assert!(
            !warmed
                .iter()
                .any(|s| matches!(s, Step::DeleteTargetGroup { .. })),
            "the old group stays while the new one warms up"
        );
        // ELB now holds the weighted forward (the new group by its ARN): the next diff moves the
        // rule to the new group alone, and that is still the same switch.
        let mut warm = existing.clone();
        let new_arn = "arn:tg/new".to_string();
        warm.target_groups
            .push(crate::deployer::diff::ExistingTargetGroup {
                arn: new_arn.clone(),
                group: after.target_groups[2].clone(),
            });
        let old_arn = found[0].old_arn.clone();
        warm.listeners[0].rules[0].rule.action = Action::Forward {
            target_groups: vec![
                WeightedTargetGroup {
                    target_group: TargetGroupRef::Arn(old_arn.clone()),
                    weight: Some(1),
                },
                WeightedTargetGroup {
                    target_group: TargetGroupRef::Arn(new_arn),
                    weight: Some(0),
                },
            ],
            stickiness_seconds: None,
        };
        let steps = diff(&after, &warm);
        assert_eq!(switches(&warm, &steps), found);
    }

    #[test]
    fn a_health_check_change_is_no_switch() {
        let before = stack();
        let existing = converged(&before);
        let mut after = before.clone();
        after.target_groups[0].health_check.interval_seconds = 30;
        let steps = diff(&after, &existing);
        assert!(switches(&existing, &steps).is_empty());
    }
}
