//! The controller's own counters: reconciles, targets registered and deregistered, gates opened.
//! (AWS calls are counted by `lb_aws::AwsCalls`.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

#[derive(Debug, Default)]
pub struct Metrics {
    pub reconciles: AtomicU64,
    pub reconcile_errors: AtomicU64,
    pub reconcile_micros: AtomicU64,
    pub targets_registered: AtomicU64,
    pub targets_deregistered: AtomicU64,
    pub gates_opened: AtomicU64,
}

impl Metrics {
    pub fn observe_reconcile(&self, took: Duration, ok: bool) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.reconcile_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.reconcile_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn registered(&self, count: usize) {
        self.targets_registered
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    pub fn deregistered(&self, count: usize) {
        self.targets_deregistered
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    pub fn gate_opened(&self, _pod: &Pod) {
        self.gates_opened.fetch_add(1, Ordering::Relaxed);
    }
}
