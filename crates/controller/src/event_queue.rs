//! Events published off the reconcilers' path. An Event is best effort, and while a scale-out
//! fills the API server one can take seconds to write: a binding's pass that waited for its
//! "registered 3 target(s)" held back the next registrations. Events are queued instead and
//! written a few at a time in the background; past [`MAX_WAITING`] waiting, new ones are dropped
//! (and logged), so a flood of Events never grows the controller's memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Recorder};
use tokio::sync::Semaphore;

/// Events written at once.
const IN_FLIGHT: usize = 4;
/// Events waiting or being written, at most.
const MAX_WAITING: usize = 1_000;

/// Publishes Events in the background (cheap to clone).
#[derive(Clone)]
pub struct EventQueue {
    recorder: Recorder,
    in_flight: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

impl EventQueue {
    pub fn new(recorder: Recorder) -> Self {
        Self {
            recorder,
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            waiting: Arc::default(),
        }
    }

    /// Queues `event` about `regarding`; returns at once.
    pub fn publish(&self, event: Event, regarding: ObjectReference) {
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!(reason = %event.reason, "an Event was dropped: {MAX_WAITING} are waiting");
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!(reason = %event.reason, "an Event was dropped: no async runtime");
            return;
        };
        let queue = self.clone();
        runtime.spawn(async move {
            // Never closed: the queue holds the semaphore.
            let permit = queue.in_flight.acquire().await;
            if let Err(err) = queue.recorder.publish(&event, &regarding).await {
                tracing::debug!("publishing an event failed: {err}");
            }
            drop(permit);
            queue.waiting.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
