//! When to look at a target group's health again while readiness gates are pending.
//!
//! ELB cannot call a newly registered target healthy before HealthyThresholdCount checks, one per
//! HealthCheckIntervalSeconds. So a target just registered has nothing to tell before that moment:
//! the next look is just after the soonest such moment among the targets watched. A target past
//! its moment (or of unknown age) is overdue: look every 100 ms, for the first second past a
//! moment (ELB's checks land a little late) at that pace, then slowing down by half each time
//! nothing moved, up to 5 s (a target whose check keeps failing must not cost a call per second
//! forever), but never past the next target's moment. During a scale-out, targets registered in
//! batches are thus looked at as each batch can turn healthy. Draining targets alone are looked at
//! every 5 s. A look asks only for the targets worth asking about ([`worth_asking`]): one batch's
//! moment brings a look at that batch, not at the batches still on their way, so looks stay
//! small and can come often.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use crate::elb::{TargetGroupInfo, TargetHealth, TargetKey, TargetState};

const FAST: Duration = Duration::from_millis(100);
const SLOW: Duration = Duration::from_secs(5);
/// Looked at just after the earliest moment, so the check that turned it healthy has landed.
const MARGIN: Duration = Duration::from_millis(50);
/// How long after its moment a target is "just due": ELB's checks land a little after the moment
/// (more so when it checks many targets), so the fast polls go on that long before slowing down.
pub const JUST_DUE: Duration = Duration::from_secs(1);

/// interval x threshold, when the target group says both.
pub fn time_to_healthy(group: &TargetGroupInfo) -> Option<Duration> {
    let interval = group.health_check_interval_seconds?;
    let threshold = group.healthy_threshold_count?;
    Some(Duration::from_secs(
        u64::from(interval) * u64::from(threshold),
    ))
}

/// A digest of the target group's health, to tell whether anything moved.
pub fn signature(health: &[TargetHealth]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for h in health {
        (&h.target, h.state.as_str(), &h.reason).hash(&mut hasher);
    }
    hasher.finish()
}

/// The soonest moment ELB can call a target healthy: interval x threshold (`settle`) after this
/// process registered it, while it is still `initial`; None when there is no telling (another
/// state, registered before a restart or by someone else, or settings unknown).
fn healthy_moment(
    settle: Option<Duration>,
    initial: bool,
    registered: Option<Instant>,
) -> Option<Instant> {
    settle
        .zip(registered)
        .filter(|_| initial)
        .map(|(settle, at)| at + settle)
}

/// The targets of `health` whose state may have changed since it was known: every target that is
/// not healthy, except those this process registered that are still `initial` and have not
/// reached interval x threshold since (ELB cannot call them healthy yet; `registered_at` says
/// when it registered a target, if it did).
pub fn worth_asking(
    group: &TargetGroupInfo,
    health: &[TargetHealth],
    registered_at: &dyn Fn(&TargetKey) -> Option<Instant>,
    now: Instant,
) -> Vec<TargetKey> {
    let settle = time_to_healthy(group);
    health
        .iter()
        .filter(|h| {
            h.state != TargetState::Healthy
                && healthy_moment(
                    settle,
                    h.state == TargetState::Initial,
                    registered_at(&h.target),
                )
                .is_none_or(|moment| moment <= now)
        })
        .map(|h| h.target.clone())
        .collect()
}

/// When the watched targets can turn healthy, as far as can be told.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Some target is past its moment, or of unknown age or state: no telling.
    pub overdue: bool,
    /// Some target passed its moment less than [`JUST_DUE`] ago.
    pub just_due: bool,
    /// The soonest moment still to come.
    pub next: Option<Instant>,
}

/// When the `watched` targets (their states in `states`) can turn healthy; see
/// [`healthy_moment`].
pub fn expected_healthy(
    group: &TargetGroupInfo,
    watched: &[TargetKey],
    states: &HashMap<&TargetKey, &TargetState>,
    registered_at: &dyn Fn(&TargetKey) -> Option<Instant>,
    now: Instant,
) -> Expected {
    let mut expected = Expected::default();
    let settle = time_to_healthy(group);
    for target in watched {
        let initial = states.get(target) == Some(&&TargetState::Initial);
        match healthy_moment(settle, initial, registered_at(target)) {
            Some(at) if at > now => {
                expected.next = Some(expected.next.map_or(at, |next: Instant| next.min(at)));
            }
            Some(at) => {
                expected.overdue = true;
                expected.just_due |= now.saturating_duration_since(at) < JUST_DUE;
            }
            None => expected.overdue = true,
        }
    }
    expected
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollState {
    interval: Option<Duration>,
    signature: u64,
    moved: bool,
}

impl PollState {
    /// The delay before the next look, from what is `expected` of the watched targets: a look
    /// just after the next moment, and while some are overdue, fast polls (not slowing down while
    /// one is just due).
    pub fn next(
        &mut self,
        signature: u64,
        gates_pending: bool,
        expected: &Expected,
        now: Instant,
    ) -> Duration {
        if !gates_pending {
            self.interval = None;
            return SLOW;
        }
        let planned = expected
            .next
            .filter(|at| *at > now)
            .map(|at| at - now + MARGIN);
        self.signature_moved(signature);
        if !expected.overdue {
            self.interval = None;
            return planned.unwrap_or(FAST);
        }
        let interval = match self.interval {
            Some(previous) if !self.moved && !expected.just_due => previous.mul_f64(1.5).min(SLOW),
            _ => FAST,
        };
        self.interval = Some(interval);
        planned.map_or(interval, |p| p.min(interval))
    }

    fn signature_moved(&mut self, signature: u64) {
        self.moved = self.signature != signature;
        self.signature = signature;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(overdue: bool, just_due: bool, next: Option<Instant>) -> Expected {
        Expected {
            overdue,
            just_due,
            next,
        }
    }

    #[test]
    fn sleeps_until_the_earliest_healthy_moment() {
        let now = Instant::now();
        let mut state = PollState::default();
        let delay = state.next(
            1,
            true,
            &expected(false, false, Some(now + Duration::from_secs(4))),
            now,
        );
        assert_eq!(delay, Duration::from_secs(4) + MARGIN);
    }

    #[test]
    fn overdue_targets_are_polled_fast_slowing_down_while_nothing_moves() {
        let now = Instant::now();
        let mut state = PollState::default();
        assert_eq!(state.next(1, true, &expected(true, false, None), now), FAST);
        assert_eq!(
            state.next(1, true, &expected(true, false, None), now),
            FAST.mul_f64(1.5)
        );
        assert_eq!(
            state.next(1, true, &expected(true, false, None), now),
            FAST.mul_f64(2.25)
        );
        for _ in 0..20 {
            state.next(1, true, &expected(true, false, None), now);
        }
        assert_eq!(state.next(1, true, &expected(true, false, None), now), SLOW);
        // Something moved: fast again.
        assert_eq!(state.next(2, true, &expected(true, false, None), now), FAST);
    }

    #[test]
    fn a_target_just_due_is_polled_fast_even_while_nothing_moves() {
        let now = Instant::now();
        let mut state = PollState::default();
        for _ in 0..5 {
            assert_eq!(state.next(1, true, &expected(true, true, None), now), FAST);
        }
        // Past JUST_DUE, still nothing: slowing down.
        assert_eq!(
            state.next(1, true, &expected(true, false, None), now),
            FAST.mul_f64(1.5)
        );
    }

    #[test]
    fn a_slow_poll_never_passes_the_next_batchs_moment() {
        let now = Instant::now();
        let mut state = PollState::default();
        for _ in 0..20 {
            state.next(1, true, &expected(true, false, None), now);
        }
        let soon = now + Duration::from_millis(700);
        assert_eq!(
            state.next(1, true, &expected(true, false, Some(soon)), now),
            Duration::from_millis(700) + MARGIN
        );
    }

    #[test]
    fn draining_alone_is_looked_at_slowly() {
        let mut state = PollState::default();
        assert_eq!(
            state.next(1, false, &expected(false, false, None), Instant::now()),
            SLOW
        );
    }

    #[test]
    fn only_targets_that_can_have_changed_are_worth_asking_about() {
        let group = TargetGroupInfo {
            health_check_interval_seconds: Some(5),
            healthy_threshold_count: Some(2),
            ..TargetGroupInfo::default()
        };
        let health = |ip: &str, state: TargetState| TargetHealth {
            target: TargetKey::new(ip, 80),
            state,
            reason: None,
            description: None,
        };
        let now = Instant::now();
        let all = [
            health("10.0.0.1", TargetState::Healthy),
            health("10.0.0.2", TargetState::Initial),
            health("10.0.0.3", TargetState::Initial),
            health("10.0.0.4", TargetState::Initial),
            health("10.0.0.5", TargetState::Unhealthy),
            health("10.0.0.6", TargetState::Draining),
        ];
        let registered_at = |t: &TargetKey| match t.id.as_str() {
            // Registered 11 s ago: past interval x threshold.
            "10.0.0.2" => Some(now - Duration::from_secs(11)),
            // 3 s ago: ELB cannot call it healthy before 7 s from now.
            "10.0.0.3" => Some(now - Duration::from_secs(3)),
            // 10.0.0.4: not registered by this process (age unknown).
            _ => None,
        };
        let ids: Vec<String> = worth_asking(&group, &all, &registered_at, now)
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, ["10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
    }

    #[test]
    fn time_to_healthy_needs_both_settings() {
        let mut group = TargetGroupInfo {
            health_check_interval_seconds: Some(5),
            healthy_threshold_count: Some(2),
            ..TargetGroupInfo::default()
        };
        assert_eq!(time_to_healthy(&group), Some(Duration::from_secs(10)));
        group.healthy_threshold_count = None;
        assert_eq!(time_to_healthy(&group), None);
    }
}
