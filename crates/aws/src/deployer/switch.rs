//! Replacing a target group without a moment of zero targets. ELB cannot change a target group's
//! protocol or target type, so the diff creates a new one, points the listener (or the ALB rule)
//! at it and deletes the old. Done in one go, traffic would go to a group with no target
//! registered yet. So the switch waits: the new group is created (and its binding registers the
//! targets), and only once it has a registered target (or the old one has none, so there is
//! nothing to lose) does the listener or rule move and the old group go.
//!
//! Registered, not healthy: ELB runs no health checks for a group no listener uses (its targets
//! are `unused`), so waiting for health before the switch would wait forever. After the switch
//! the new targets pass their first checks (healthy threshold x interval) before they serve.

use lb_model::stack::{Action, TargetGroupRef};

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

/// The switches among `steps`: a listener modified, or a rule rewritten, from a single target
/// group the steps delete to a single target group of the stack.
pub fn switches(existing: &Existing, steps: &[Step]) -> Vec<Switch> {
    let deleted = |arn: &str| {
        steps
            .iter()
            .any(|s| matches!(s, Step::DeleteTargetGroup { arn: a } if a == arn))
    };
    let switch = |at: SwitchPoint, from: &Action, to: &Action| {
        let TargetGroupRef::Arn(old) = from.single_target()? else {
            return None;
        };
        let TargetGroupRef::Stack(new) = to.single_target()? else {
            return None;
        };
        deleted(old).then(|| Switch {
            at,
            old_arn: old.clone(),
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

/// `steps` without the listener and rule modifications and target-group deletions of `held`
/// switches.
pub fn hold(steps: Vec<Step>, held: &[Switch]) -> Vec<Step> {
    let holds = |point: &SwitchPoint| held.iter().any(|h| &h.at == point);
    steps
        .into_iter()
        .filter(|step| match step {
            Step::ModifyListener { listener, .. } => !holds(&SwitchPoint::Listener {
                port: listener.port,
            }),
            Step::ModifyRule { arn, port, .. } => !holds(&SwitchPoint::Rule {
                port: *port,
                arn: arn.clone(),
            }),
            Step::DeleteTargetGroup { arn } => !held.iter().any(|h| &h.old_arn == arn),
            _ => true,
        })
        .collect()
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

        let held = hold(steps.clone(), &found);
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
        let held = hold(steps, &found);
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
    fn a_health_check_change_is_no_switch() {
        let before = stack();
        let existing = converged(&before);
        let mut after = before.clone();
        after.target_groups[0].health_check.interval_seconds = 30;
        let steps = diff(&after, &existing);
        assert!(switches(&existing, &steps).is_empty());
    }
}
