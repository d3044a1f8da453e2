//! The one writer of TargetGroupBinding statuses. A pass hands its binding's new status over and
//! goes on: while a scale-out fills the API server, one status write can take seconds, and a pass
//! that waited for it held back the registrations of the endpoints that arrived meanwhile (passes
//! of one binding never overlap).
//!
//! Statuses go through the [`WriteQueue`]: per binding the latest wins, one equal to the status
//! written in the last 10 s is not made again (the binding's watch cache lags behind our own
//! writes; past that, someone else may have changed the status, and ours is written again), a
//! write that fails for a reason that can pass (the API server busy or unreachable) is tried again
//! with backoff until it lands or a newer status replaces it; a binding gone, or a write refused
//! (forbidden, invalid), drops it with a warning. Only a leader writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lb_api::TargetGroupBindingStatus;

use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::write_queue::{Sink, WriteQueue, Written};
use crate::writes::ClusterWrites;

/// Status writes in flight at once, across all bindings.
const WRITERS: usize = 8;

/// (namespace, name) of a binding.
type BindingKey = (String, String);

/// Binding statuses, as a [`Sink`] of the write queue.
struct BindingStatuses<W> {
    writes: Arc<W>,
    metrics: Metrics,
}

impl<W: ClusterWrites> Sink for BindingStatuses<W> {
    type Key = BindingKey;
    type Write = TargetGroupBindingStatus;
    const PHASE: &'static str = "status_write";
    const FIRST_BACKOFF: Duration = Duration::from_millis(500);
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    const REMEMBERED: Duration = Duration::from_secs(10);

    fn same(a: &TargetGroupBindingStatus, b: &TargetGroupBindingStatus) -> bool {
        a == b
    }

    fn urgent(_: &TargetGroupBindingStatus) -> bool {
        false
    }

    async fn write(
        &self,
        (namespace, name): &BindingKey,
        status: &TargetGroupBindingStatus,
    ) -> Written {
        let started = Instant::now();
        let result = self
            .writes
            .apply_binding_status(namespace, name, status)
            .await;
        self.metrics.phase("status", started.elapsed());
        match result {
            Ok(()) => Written::Made,
            Err(kube::Error::Api(status)) if status.code == 404 => Written::Dropped,
            Err(kube::Error::Api(status)) if !passing(status.code) => {
                tracing::warn!(binding = %format!("{namespace}/{name}"), code = status.code, "writing the binding's status was refused: {}", status.message);
                Written::Dropped
            }
            Err(err) => {
                tracing::warn!(binding = %format!("{namespace}/{name}"), "writing the binding's status failed: {err}");
                Written::Failed
            }
        }
    }
}

/// Whether a write refused with HTTP `code` may pass if tried again: a conflict, throttling, or
/// the server's own trouble; not a request refused for what it is (forbidden, invalid).
fn passing(code: u16) -> bool {
    code == 409 || code == 429 || code >= 500
}

/// Writes binding statuses in the background (cheap to clone).
pub struct StatusWriter<W: ClusterWrites> {
    queue: WriteQueue<BindingStatuses<W>>,
}

impl<W: ClusterWrites> Clone for StatusWriter<W> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<W: ClusterWrites> StatusWriter<W> {
    /// A writer of a replica that always leads (no leader election).
    pub fn new(writes: Arc<W>, metrics: Metrics) -> Self {
        Self::while_leading(writes, metrics, Leadership::always())
    }

    /// A writer that writes only while `leadership` says this replica leads.
    pub fn while_leading(writes: Arc<W>, metrics: Metrics, leadership: Leadership) -> Self {
        let sink = BindingStatuses {
            writes,
            metrics: metrics.clone(),
        };
        Self {
            queue: WriteQueue::new(sink, metrics, WRITERS, leadership),
        }
    }

    /// Queues `status` for binding `namespace/name` (replacing one queued before); whether it
    /// was queued (false: the same status was written last, or is being written).
    pub fn submit(&self, namespace: &str, name: &str, status: TargetGroupBindingStatus) -> bool {
        let key = (namespace.to_string(), name.to_string());
        self.queue.submit([(key, status)]) == 1
    }

    /// Drops what is queued for binding `namespace/name` and forgets what was written (it is
    /// being deleted, or was).
    pub fn forget(&self, namespace: &str, name: &str) {
        self.queue
            .forget(|key: &BindingKey| key.0 == namespace && key.1 == name);
    }

    /// Waits until nothing is queued, in flight or waiting to be tried again (for tests and a
    /// clean shutdown).
    pub async fn flush(&self) {
        self.queue.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writes::recording::RecordingWrites;

    fn status(health: &str) -> TargetGroupBindingStatus {
        TargetGroupBindingStatus {
            target_health: Some(health.to_string()),
            ..TargetGroupBindingStatus::default()
        }
    }

    #[tokio::test]
    async fn the_latest_status_of_a_binding_is_written_and_the_same_one_not_again() {
        let writes = Arc::new(RecordingWrites::default());
        let writer = StatusWriter::new(writes.clone(), Metrics::default());
        assert!(writer.submit("ns", "web", status("0/2 healthy")));
        assert!(writer.submit("ns", "web", status("1/2 healthy")));
        writer.flush().await;
        assert_eq!(writes.last_health().as_deref(), Some("1/2 healthy"));
        let written = writes.statuses_written();
        assert!(written <= 2, "{written}");
        assert!(!writer.submit("ns", "web", status("1/2 healthy")));
        writer.flush().await;
        assert_eq!(writes.statuses_written(), written);
    }

    #[tokio::test]
    async fn a_failed_write_is_tried_again_until_it_lands() {
        let writes = Arc::new(RecordingWrites::default());
        writes.fail_status_writes(2, 500);
        let writer = StatusWriter::new(writes.clone(), Metrics::default());
        writer.submit("ns", "web", status("2/2 healthy"));
        writer.flush().await;
        assert_eq!(writes.last_health().as_deref(), Some("2/2 healthy"));
        assert_eq!(writes.statuses_written(), 1);
    }

    #[tokio::test]
    async fn a_failed_write_tried_again_never_overwrites_a_newer_status() {
        let writes = Arc::new(RecordingWrites::default());
        writes.fail_status_writes(1, 503);
        let writer = StatusWriter::new(writes.clone(), Metrics::default());
        writer.submit("ns", "web", status("1/2 healthy"));
        // Its write fails and waits for its backoff; meanwhile the binding moves on.
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer.submit("ns", "web", status("2/2 healthy"));
        writer.flush().await;
        assert_eq!(writes.last_health().as_deref(), Some("2/2 healthy"));
        assert_eq!(writes.statuses_written(), 1);
    }

    #[tokio::test]
    async fn a_refused_write_is_dropped_not_tried_again() {
        let writes = Arc::new(RecordingWrites::default());
        writes.fail_status_writes(1, 403);
        let writer = StatusWriter::new(writes.clone(), Metrics::default());
        writer.submit("ns", "web", status("2/2 healthy"));
        writer.flush().await;
        assert_eq!(writes.statuses_written(), 0);
    }

    #[tokio::test]
    async fn a_replica_that_loses_the_lease_drops_its_queued_statuses() {
        let writes = Arc::new(RecordingWrites::default());
        writes.fail_status_writes(1, 503);
        let (leading, leadership) = Leadership::switched_by_hand(true);
        let writer = StatusWriter::while_leading(writes.clone(), Metrics::default(), leadership);
        writer.submit("ns", "web", status("1/2 healthy"));
        // Its write fails and waits for its backoff; meanwhile another replica takes the Lease.
        tokio::time::sleep(Duration::from_millis(100)).await;
        leading.send_replace(false);
        writer.flush().await;
        assert_eq!(writes.statuses_written(), 0);
    }

    #[tokio::test]
    async fn a_replica_that_leads_again_writes_afresh_what_it_wrote_before() {
        let writes = Arc::new(RecordingWrites::default());
        let (leading, leadership) = Leadership::switched_by_hand(true);
        let writer = StatusWriter::while_leading(writes.clone(), Metrics::default(), leadership);
        writer.submit("ns", "web", status("2/2 healthy"));
        writer.flush().await;
        assert_eq!(writes.statuses_written(), 1);
        // The Lease lost and won back with nothing written in between: another leader may have
        // written the status meanwhile, so the same status is written again.
        leading.send_replace(false);
        tokio::time::sleep(Duration::from_millis(20)).await;
        leading.send_replace(true);
        assert!(writer.submit("ns", "web", status("2/2 healthy")));
        writer.flush().await;
        assert_eq!(writes.statuses_written(), 2);
    }
}
