//! Replacing a target group without a moment of zero targets. ELB cannot change a target group's
//! protocol, port or target type, so the diff creates a new one, points the listener at it and
//! deletes the old. Done in one go, the listener would forward to a group with no target
//! registered yet. So the switch waits: the new group is created (and its binding registers the
//! targets), and only once it has a registered target (or the old one has none, so there is
//! nothing to lose) does the listener move and the old group go.
//!
//! Registered, not healthy: ELB runs no health checks for a group no listener uses (its targets
//! are `unused`), so waiting for health before the switch would wait forever. After the switch
//! the new targets pass their first checks (healthy threshold x interval) before they serve.

use lb_model::stack::TargetGroupRef;

use super::diff::{Existing, Step};

/// A listener that the steps move from a target group being deleted to its replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub port: u16,
    /// The target group the listener forwards to now, which the steps delete.
    pub old_arn: String,
    /// The replacement's resource id (its ARN, if it exists yet, is in `Existing`).
    pub new_resource_id: String,
}

/// The listener switches among `steps`.
pub fn switches(
    listeners: &[lb_model::stack::Listener],
    existing: &Existing,
    steps: &[Step],
) -> Vec<Switch> {
    let deleted = |arn: &str| {
        steps
            .iter()
            .any(|s| matches!(s, Step::DeleteTargetGroup { arn: a } if a == arn))
    };
    steps
        .iter()
        .filter_map(|step| {
            let Step::ModifyListener { port, .. } = step else {
                return None;
            };
            let current = existing
                .listeners
                .iter()
                .find(|l| l.listener.port == *port)?;
            let TargetGroupRef::Arn(old) = current.listener.default_action.single_target()? else {
                return None;
            };
            let desired = listeners.iter().find(|l| l.port == *port)?;
            let TargetGroupRef::Stack(new) = desired.default_action.single_target()? else {
                return None;
            };
            deleted(old).then(|| Switch {
                port: *port,
                old_arn: old.clone(),
                new_resource_id: new.clone(),
            })
        })
        .collect()
}

/// `steps` without the listener modifications and target-group deletions of `held` switches.
pub fn hold(steps: Vec<Step>, held: &[Switch]) -> Vec<Step> {
    steps
        .into_iter()
        .filter(|step| match step {
            Step::ModifyListener { port, .. } => !held.iter().any(|h| h.port == *port),
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
        let found = switches(&after.listeners, &existing, &steps);
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

    #[test]
    fn a_health_check_change_is_no_switch() {
        let before = stack();
        let existing = converged(&before);
        let mut after = before.clone();
        after.target_groups[0].health_check.interval_seconds = 30;
        let steps = diff(&after, &existing);
        assert!(switches(&after.listeners, &existing, &steps).is_empty());
    }
}
