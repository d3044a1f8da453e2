//! What the reconciler remembers between passes, only to be faster or gentler: consecutive
//! failures (backoff), health polling state, and when it registered targets (the earliest they
//! can turn healthy). Losing it all (a restart) costs a few extra looks, never a wrong action.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

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
}

impl BindingMemory {
    /// Counts a failure of `binding`; returns how many in a row.
    pub fn failed(&self, binding: &str) -> u32 {
        let mut failures = lock(&self.failures);
        let count = failures.entry(binding.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        *count
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

    pub fn registered(&self, group: &str, targets: &[TargetKey], at: Instant) {
        lock(&self.registered_at)
            .extend(targets.iter().map(|t| ((group.to_string(), t.clone()), at)));
    }

    /// Forgets registration times of the group's targets that are no longer `initial`.
    pub fn settle(&self, group: &str, health: &[TargetHealth]) {
        lock(&self.registered_at).retain(|(arn, target), _| {
            arn != group
                || health
                    .iter()
                    .any(|h| &h.target == target && h.state == TargetState::Initial)
        });
    }

    /// Forgets everything about a binding that is gone.
    pub fn forget(&self, binding: &str) {
        lock(&self.failures).remove(binding);
        lock(&self.polls).remove(binding);
    }
}
