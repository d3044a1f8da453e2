//! A TargetGroupBinding's status: the `Ready` condition and the target health summary that
//! `kubectl get tgb` shows, computed so that it is written only when it says something new.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use lb_api::{TargetGroupBinding, TargetGroupBindingStatus, keys};

use crate::elb::{TargetHealth, TargetState};

/// Longest condition message or Event note written (the API's limit is 32 KiB; shorter reads).
pub const MAX_MESSAGE: usize = 1000;

/// What a pass says about the binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingStatus {
    pub ready: bool,
    /// A CamelCase reason: `Synced`, or the failure's (`ServiceNotFound`, ...).
    pub reason: String,
    pub message: String,
    /// `3/3 healthy` (with `, 1 draining` when some drain); kept as it was when None.
    pub target_health: Option<String>,
}

/// The health summary of a target group: healthy / registered (draining targets are not
/// registered any more), and the draining count when there are any.
pub fn health_summary(health: &[TargetHealth]) -> String {
    let draining = health
        .iter()
        .filter(|h| h.state == TargetState::Draining)
        .count();
    let registered = health.len() - draining;
    let healthy = health
        .iter()
        .filter(|h| h.state == TargetState::Healthy)
        .count();
    match draining {
        0 => format!("{healthy}/{registered} healthy"),
        _ => format!("{healthy}/{registered} healthy, {draining} draining"),
    }
}

/// Cuts `text` to `max` characters, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// Whether what `wanted` changes in `binding`'s status is only its figures (the message's counts,
/// the health summary): same generation observed, same Ready status and reason. Such a change may
/// wait a little (a scale-out moves the counts on every pass).
pub fn only_figures_move(binding: &TargetGroupBinding, wanted: &BindingStatus) -> bool {
    let Some(current) = binding.status.as_ref() else {
        return false;
    };
    let status = if wanted.ready { "True" } else { "False" };
    current.observed_generation == binding.metadata.generation
        && current
            .conditions
            .iter()
            .find(|c| c.type_ == keys::CONDITION_READY)
            .is_some_and(|c| c.status == status && c.reason == wanted.reason)
}

/// The status to write for `binding`, or None when its current status already says the same.
/// `lastTransitionTime` moves only when the condition's status flips.
pub fn status_update(
    binding: &TargetGroupBinding,
    wanted: &BindingStatus,
    now: Timestamp,
) -> Option<TargetGroupBindingStatus> {
    let current = binding.status.clone().unwrap_or_default();
    let status = if wanted.ready { "True" } else { "False" };
    let message = truncate(&wanted.message, MAX_MESSAGE);
    let previous = current
        .conditions
        .iter()
        .find(|c| c.type_ == keys::CONDITION_READY);
    let target_health = wanted
        .target_health
        .clone()
        .or_else(|| current.target_health.clone());
    let unchanged = current.observed_generation == binding.metadata.generation
        && current.target_health == target_health
        && previous.is_some_and(|c| {
            c.status == status && c.reason == wanted.reason && c.message == message
        });
    if unchanged {
        return None;
    }
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Time(now),
    };
    Some(TargetGroupBindingStatus {
        observed_generation: binding.metadata.generation,
        conditions: vec![Condition {
            type_: keys::CONDITION_READY.to_string(),
            status: status.to_string(),
            reason: wanted.reason.clone(),
            message,
            last_transition_time,
            observed_generation: binding.metadata.generation,
        }],
        target_health,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elb::TargetKey;

    fn health(states: &[&str]) -> Vec<TargetHealth> {
        states
            .iter()
            .enumerate()
            .map(|(i, s)| TargetHealth {
                target: TargetKey::new(format!("10.0.0.{i}"), 80),
                state: TargetState::parse(s),
                reason: None,
                description: None,
            })
            .collect()
    }

    #[test]
    fn summary_counts_healthy_of_registered_and_says_draining() {
        assert_eq!(health_summary(&[]), "0/0 healthy");
        assert_eq!(
            health_summary(&health(&["healthy", "healthy", "initial"])),
            "2/3 healthy"
        );
        assert_eq!(
            health_summary(&health(&["healthy", "draining"])),
            "1/1 healthy, 1 draining"
        );
    }

    fn binding(status: Option<serde_json::Value>) -> TargetGroupBinding {
        let mut value = serde_json::json!({
            "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
            "metadata": {"name": "web", "namespace": "shop", "generation": 2},
            "spec": {"targetGroupARN": "arn", "serviceRef": {"name": "web", "port": 80}},
        });
        if let Some(status) = status {
            value["status"] = status;
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn written_only_when_something_changed_and_transition_time_kept() {
        let now: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let later: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let synced = BindingStatus {
            ready: true,
            reason: "Synced".into(),
            message: "3 target(s)".into(),
            target_health: Some("3/3 healthy".into()),
        };
        let first = status_update(&binding(None), &synced, now).unwrap();
        assert_eq!(first.observed_generation, Some(2));
        assert_eq!(first.target_health.as_deref(), Some("3/3 healthy"));
        let written = binding(Some(serde_json::to_value(&first).unwrap()));
        assert_eq!(status_update(&written, &synced, later), None);

        let reworded = BindingStatus {
            message: "4 target(s)".into(),
            ..synced.clone()
        };
        let second = status_update(&written, &reworded, later).unwrap();
        assert_eq!(second.conditions[0].last_transition_time.0, now);

        let failed = BindingStatus {
            ready: false,
            reason: "ServiceNotFound".into(),
            message: "Service shop/web was not found".into(),
            target_health: None,
        };
        let third = status_update(&written, &failed, later).unwrap();
        assert_eq!(third.conditions[0].last_transition_time.0, later);
        // A failure keeps the last health summary.
        assert_eq!(third.target_health.as_deref(), Some("3/3 healthy"));

        // Only the figures moved: may wait. A new reason, Ready flipping, a new generation or no
        // status yet: not.
        assert!(!only_figures_move(&binding(None), &synced));
        assert!(only_figures_move(&written, &reworded));
        assert!(!only_figures_move(&written, &failed));
        let mut newer = written.clone();
        newer.metadata.generation = Some(3);
        assert!(!only_figures_move(&newer, &reworded));
    }

    #[test]
    fn long_messages_are_cut() {
        assert_eq!(truncate("abcdef", 3), "abc...");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
