//! What a pipeline remembers between passes: the stack last converged per stack id (a pass that
//! builds the same stack again soon makes no AWS call), and consecutive failures per served
//! object (for the backoff).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lb_model::stack::Stack;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone)]
struct Converged {
    stack: Stack,
    dns_name: Option<String>,
    at: Instant,
}

/// Per stack id, the stack last converged and its load balancer's DNS name.
#[derive(Debug)]
pub struct ConvergedStacks {
    /// How long a converged stack is trusted: after that a pass describes AWS again, so drift
    /// (a listener deleted by hand) is repaired.
    trust: Duration,
    stacks: Mutex<HashMap<String, Converged>>,
}

impl ConvergedStacks {
    pub fn new(trust: Duration) -> Self {
        Self {
            trust,
            stacks: Mutex::default(),
        }
    }

    /// The DNS name of the stack's load balancer if `stack` is what was last converged, recently.
    pub fn converged(&self, stack: &Stack) -> Option<Option<String>> {
        lock(&self.stacks)
            .get(&stack.id)
            .filter(|c| c.stack == *stack && c.at.elapsed() < self.trust)
            .map(|c| c.dns_name.clone())
    }

    pub fn remember(&self, stack: Stack, dns_name: Option<String>) {
        let converged = Converged {
            stack,
            dns_name,
            at: Instant::now(),
        };
        lock(&self.stacks).insert(converged.stack.id.clone(), converged);
    }

    /// Nothing known of `stack_id` any more: its next pass describes AWS.
    pub fn forget(&self, stack_id: &str) {
        lock(&self.stacks).remove(stack_id);
    }
}

/// Consecutive failures per served object.
#[derive(Debug, Default)]
pub struct Failures(Mutex<HashMap<String, u32>>);

impl Failures {
    /// Counts a failure of `key`; returns how many in a row.
    pub fn failed(&self, key: &str) -> u32 {
        let mut failures = lock(&self.0);
        let count = failures.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    pub fn succeeded(&self, key: &str) {
        lock(&self.0).remove(key);
    }
}
