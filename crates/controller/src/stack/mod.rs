//! One pipeline for every stack source. A source (an Ingress group, a Service; Gateway next)
//! turns its snapshot into a desired [`Stack`](lb_model::stack::Stack) and says where the stack's
//! bindings live; the [`Pipeline`] converges AWS to it and writes the bindings
//! ([`converge`]), or removes it; every source's writes go through [`StackWrites`], its errors are
//! one [`StackError`], retried by one policy ([`Pipeline::retry`]).
//!
//! - [`converge`]: security groups -> describe -> diff -> replacement switch -> apply ->
//!   bindings; removal.
//! - [`objects`]: the served object's finalizer, status hostname and Events; the bindings.
//! - [`memory`]: the stacks converged (a pass over one costs no call) and the failures.
//! - [`error`]: the error, its Event reason and its retry category.

pub mod converge;
pub mod error;
#[cfg(test)]
pub mod fake;
pub mod memory;
pub mod objects;
#[cfg(test)]
mod tests;

use std::time::Duration;

use kube::runtime::controller::Action;

pub use converge::{Converged, Removed};
pub use error::StackError;
pub use objects::{BindingScope, KubeStackWrites, Served, StackWrites};

use crate::error::retry_delay;
use memory::{ConvergedStacks, Failures};

/// A converged stack is looked at again after this long even if nothing changed, so drift in
/// AWS (a listener deleted by hand) is repaired.
pub const RESYNC: Duration = Duration::from_secs(3600);
/// How soon a stack waiting for a replacement target group, or for its bindings to go, looks
/// again.
pub const REPLACEMENT_CHECK: Duration = Duration::from_secs(2);

/// The AWS edges and Kubernetes writes a stack source converges through, and what it remembers.
pub struct Pipeline<L, E, W> {
    pub elb: L,
    pub ec2: E,
    pub writes: W,
    converged: ConvergedStacks,
    failures: Failures,
}

impl<L, E, W> Pipeline<L, E, W> {
    pub fn new(elb: L, ec2: E, writes: W) -> Self {
        Self {
            elb,
            ec2,
            writes,
            converged: ConvergedStacks::new(RESYNC),
            failures: Failures::default(),
        }
    }

    /// A pass of `key` (a served object) succeeded: its backoff starts over.
    pub fn succeeded(&self, key: &str) {
        self.failures.succeeded(key);
    }

    /// The error policy of every stack source: retries as the error's category says, with
    /// backoff per served object; bad input waits for a change of the object.
    pub fn retry<K: Served>(&self, object: &K, err: &StackError) -> Action {
        let key = object.key();
        let failures = self.failures.failed(&key);
        match retry_delay(err.category(), failures) {
            Some(delay) => {
                let jitter = delay.mul_f64(rand::random::<f64>() * 0.2);
                tracing::warn!(object = %key, reason = err.reason(), failures, ?delay, "reconcile failed: {err}");
                Action::requeue(delay + jitter)
            }
            None => {
                tracing::warn!(object = %key, reason = err.reason(), "reconcile failed, waiting for a change: {err}");
                Action::await_change()
            }
        }
    }

    /// The stack `stack_id` is to be described on its next pass (its pass failed elsewhere).
    pub fn forget(&self, stack_id: &str) {
        self.converged.forget(stack_id);
    }
}
