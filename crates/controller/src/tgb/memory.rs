//! What the reconciler remembers between passes, only to be faster or gentler: consecutive
//! failures (backoff), health polling state and the next look, when passes started (pacing), when
//! it registered targets (the earliest they can turn healthy), and what each target group holds
//! (the last DescribeTargetHealth with the controller's own changes since). Losing it all (a
//! restart) costs a describe per target group and a few extra looks, never a wrong action.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lb_model::elb::{TargetHealth, TargetKey, TargetState};
use lb_model::polling::PollState;

fn lock<V>(mutex: &Mutex<V>) -> MutexGuard<'_, V> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Per-binding memory, keyed by `namespace/name`.
#[derive(Default)]
pub struct BindingMemory {
    failures: Mutex<HashMap<String, u32>>,
    polls: Mutex<HashMap<String, PollState>>,
    /// (target group ARN, target) -> when this process registered it.
    registered_at: Mutex<HashMap<(String, TargetKey), Instant>>,
    /// Target group ARN -> what it holds, as far as the controller knows.
    known: Mutex<HashMap<String, KnownTargets>>,
    /// Binding -> when its next health look is due (absent: none planned).
    due: Mutex<HashMap<String, Instant>>,
    /// Binding -> when its last pass started.
    started: Mutex<HashMap<String, Instant>>,
    /// Binding -> when its status was last written.
    status_written: Mutex<HashMap<String, Instant>>,
}

/// A target group's targets as the controller knows them: the last full DescribeTargetHealth,
/// partial looks merged in, and the controller's own registrations (initial) and
/// deregistrations (draining) since.
#[derive(Debug, Clone)]
pub struct KnownTargets {
    pub health: Vec<TargetHealth>,
    /// When the whole group was last described.
    pub described_at: Instant,
}

impl BindingMemory {
    /// Counts a failure of `binding`; returns how many in a row.
    pub fn failed(&self, binding: &str) -> u32 {
        let mut failures = lock(&self.failures);
        let count = failures.entry(binding.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// Whether the last pass of `binding` failed.
    pub fn failing(&self, binding: &str) -> bool {
        lock(&self.failures).contains_key(binding)
    }

    pub fn succeeded(&self, binding: &str) {
        lock(&self.failures).remove(binding);
    }

    pub fn poll(&self, binding: &str) -> PollState {
        lock(&self.polls).get(binding).copied().unwrap_or_default()
    }

    /// Keeps the binding's polling state, or forgets it (None).
    pub fn set_poll(&self, binding: &str, poll: Option<PollState>) {
        let mut polls = lock(&self.polls);
        match poll {
            Some(poll) => {
                polls.insert(binding.to_string(), poll);
            }
            None => {
                polls.remove(binding);
            }
        }
    }

    pub fn registered_at(&self, group: &str, target: &TargetKey) -> Option<Instant> {
        lock(&self.registered_at)
            .get(&(group.to_string(), target.clone()))
            .copied()
    }

    /// Moves every registration `by` into the past, as if that much time went by (tests).
    #[cfg(test)]
    pub fn age_registrations(&self, by: Duration) {
        for at in lock(&self.registered_at).values_mut() {
            *at -= by;
        }
    }

    pub fn registered(&self, group: &str, targets: &[TargetKey], at: Instant) {
        lock(&self.registered_at)
            .extend(targets.iter().map(|t| ((group.to_string(), t.clone()), at)));
    }

    /// Forgets registration times of the group's targets that are no longer `initial`.
    pub fn settle(&self, group: &str, health: &[TargetHealth]) {
        let initial: std::collections::HashSet<&TargetKey> = health
            .iter()
            .filter(|h| h.state == TargetState::Initial)
            .map(|h| &h.target)
            .collect();
        lock(&self.registered_at)
            .retain(|(arn, target), _| arn != group || initial.contains(target));
    }

    /// What target group `group` holds, if the whole group was described within `max_age`.
    pub fn known(&self, group: &str, max_age: Duration, now: Instant) -> Option<KnownTargets> {
        lock(&self.known)
            .get(group)
            .filter(|k| now.saturating_duration_since(k.described_at) <= max_age)
            .cloned()
    }

    /// Keeps what target group `group` holds now.
    pub fn know(&self, group: &str, known: KnownTargets) {
        lock(&self.known).insert(group.to_string(), known);
    }

    /// Forgets what target group `group` holds: the next pass describes it whole (after a
    /// failed call, whose effect is unknown, or when the group is gone).
    pub fn unknow(&self, group: &str) {
        lock(&self.known).remove(group);
    }

    pub fn due(&self, binding: &str) -> Option<Instant> {
        lock(&self.due).get(binding).copied()
    }

    pub fn set_due(&self, binding: &str, due: Option<Instant>) {
        let mut dues = lock(&self.due);
        match due {
            Some(at) => dues.insert(binding.to_string(), at),
            None => dues.remove(binding),
        };
    }

    /// Records that a pass of `binding` starts at `now`.
    pub fn pass_started(&self, binding: &str, now: Instant) {
        lock(&self.started).insert(binding.to_string(), now);
    }

    /// When the last pass of `binding` started.
    pub fn last_start(&self, binding: &str) -> Option<Instant> {
        lock(&self.started).get(binding).copied()
    }

    pub fn status_written_at(&self, binding: &str) -> Option<Instant> {
        lock(&self.status_written).get(binding).copied()
    }

    pub fn status_written(&self, binding: &str, at: Instant) {
        lock(&self.status_written).insert(binding.to_string(), at);
    }

    /// Forgets everything about a binding that is gone.
    pub fn forget(&self, binding: &str) {
        lock(&self.status_written).remove(binding);
        lock(&self.failures).remove(binding);
        lock(&self.polls).remove(binding);
        lock(&self.due).remove(binding);
        lock(&self.started).remove(binding);
    }
}
