//! When to look at a target group's health again while readiness gates are pending.
//!
//! ELB cannot call a newly registered target healthy before HealthyThresholdCount checks, one per
//! HealthCheckIntervalSeconds. So while every pending target is fresh, there is nothing to learn
//! before that moment: sleep until just after it. Past it, look every 500 ms, and slow down by half
//! each time nothing moved, up to 5 s (a target whose check keeps failing must not cost a call per
//! second forever). Draining targets alone are looked at every 5 s.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use crate::elb::{TargetGroupInfo, TargetHealth};

const FAST: Duration = Duration::from_millis(500);
const SLOW: Duration = Duration::from_secs(5);
/// Looked at just after the earliest moment, so the check that turned it healthy has landed.
const MARGIN: Duration = Duration::from_millis(50);

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

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollState {
    interval: Option<Duration>,
    signature: u64,
}

impl PollState {
    /// The delay before the next look.
    pub fn next(
        &mut self,
        signature: u64,
        gates_pending: bool,
        earliest_healthy: Option<Instant>,
        now: Instant,
    ) -> Duration {
        if !gates_pending {
            self.interval = None;
            return SLOW;
        }
        if let Some(at) = earliest_healthy
            && at > now
        {
            self.interval = None;
            self.signature = signature;
            return at - now + MARGIN;
        }
        let interval = match self.interval {
            Some(previous) if self.signature == signature => previous.mul_f64(1.5).min(SLOW),
            _ => FAST,
        };
        self.interval = Some(interval);
        self.signature = signature;
        interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_until_the_earliest_healthy_moment() {
        let now = Instant::now();
        let mut state = PollState::default();
        let delay = state.next(1, true, Some(now + Duration::from_secs(4)), now);
        assert_eq!(delay, Duration::from_secs(4) + MARGIN);
    }

    #[test]
    fn then_polls_fast_and_slows_down_while_nothing_moves() {
        let now = Instant::now();
        let mut state = PollState::default();
        assert_eq!(state.next(1, true, Some(now), now), FAST);
        assert_eq!(state.next(1, true, None, now), FAST.mul_f64(1.5));
        assert_eq!(state.next(1, true, None, now), FAST.mul_f64(2.25));
        for _ in 0..20 {
            state.next(1, true, None, now);
        }
        assert_eq!(state.next(1, true, None, now), SLOW);
        // Something moved: fast again.
        assert_eq!(state.next(2, true, None, now), FAST);
    }

    #[test]
    fn draining_alone_is_looked_at_slowly() {
        let mut state = PollState::default();
        assert_eq!(state.next(1, false, None, Instant::now()), SLOW);
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
