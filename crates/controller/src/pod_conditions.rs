//! The one writer of pod conditions: the readiness-gate conditions a pass decided (see
//! [`lb_model::plan::GateWrite`]), written side by side (a rollout flips many at once), each only
//! our condition type, each guarded by the pod's uid. A live binding's pass hands its writes to
//! the [`GateWriter`] and goes on; a binding being deleted writes and waits ([`write`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lb_model::plan::GateWrite;

use crate::error::{KubeContext, Result};
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::write_queue::{Sink, WriteQueue, Written};
use crate::writes::ClusterWrites;

/// Pod status writes in flight at once per binding.
const WRITES_AT_ONCE: usize = 16;

/// Writes `gate_writes` in `namespace`. `health_seen` is when the health these verdicts come
/// from was read: a gate opened is counted and timed from then to its write (the controller's
/// share of the gate latency); None for gates released without health (a binding deleted).
pub async fn write<W: ClusterWrites>(
    writes: &W,
    metrics: &Metrics,
    namespace: &str,
    gate_writes: Vec<GateWrite>,
    health_seen: Option<Instant>,
) -> Result<()> {
    let results: Vec<Result<()>> = futures::stream::iter(gate_writes)
        .map(|write| async move {
            let written = writes
                .patch_pod_status(namespace, &write.pod, &write.patch)
                .await
                .context(|| {
                    format!(
                        "writing the readiness gate of pod {namespace}/{}",
                        write.pod
                    )
                })?;
            record(metrics, namespace, &write, written, health_seen);
            Ok(())
        })
        .buffer_unordered(WRITES_AT_ONCE)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Counts and times a gate opened (`written` True) from `health_seen`, and logs the write.
fn record(
    metrics: &Metrics,
    namespace: &str,
    write: &GateWrite,
    written: bool,
    health_seen: Option<Instant>,
) {
    if let (true, true, Some(seen)) = (written, write.verdict.status, health_seen) {
        metrics.gate_opened(format!("{namespace}/{}", write.pod), seen.elapsed());
    }
    tracing::debug!(pod = %write.pod, status = write.verdict.status, reason = %write.verdict.reason, written, "readiness gate");
}

/// Gate writes a pass hands over instead of waiting for them: a pass that found 100 targets
/// healthy must not hold back the next pass's registrations while 100 pod statuses are written.
/// Writes are keyed by pod and binding (a pod may carry the gates of several bindings, each its own
/// condition), and go through the [`WriteQueue`]: opening writes first (a pod waiting to be Ready
/// matters more than a reason shown on one that is not), only the latest per key, none twice, a
/// failed one tried again with backoff, a pod gone or recreated drops it, only while leading.
pub struct GateWriter<W: ClusterWrites> {
    queue: WriteQueue<PodGates<W>>,
}

/// Gate writes in flight at once, across all bindings.
const WRITERS: usize = 32;

/// (namespace, pod, binding).
type PodKey = (String, String, String);

/// A gate write and when the health it comes from was read.
pub struct GateJob {
    write: GateWrite,
    health_seen: Option<Instant>,
}

/// Pod status conditions, as a [`Sink`] of the write queue.
struct PodGates<W> {
    writes: Arc<W>,
    metrics: Metrics,
}

impl<W: ClusterWrites> Sink for PodGates<W> {
    type Key = PodKey;
    type Write = GateJob;
    const PHASE: &'static str = "gate_write";
    const FIRST_BACKOFF: Duration = Duration::from_millis(200);
    const MAX_BACKOFF: Duration = Duration::from_secs(5);
    const REMEMBERED: Duration = Duration::from_secs(30);

    fn same(a: &GateJob, b: &GateJob) -> bool {
        a.write.uid == b.write.uid && a.write.verdict == b.write.verdict
    }

    fn urgent(job: &GateJob) -> bool {
        job.write.verdict.status
    }

    async fn write(&self, (namespace, pod, _): &PodKey, job: &GateJob) -> Written {
        let started = Instant::now();
        let result = self
            .writes
            .patch_pod_status(namespace, pod, &job.write.patch)
            .await;
        // The API server's share of the gate write.
        self.metrics.phase("gate_patch", started.elapsed());
        match result {
            Ok(written) => {
                record(
                    &self.metrics,
                    namespace,
                    &job.write,
                    written,
                    job.health_seen,
                );
                // Not written: the pod is gone or was recreated, nothing to write any more.
                if written {
                    Written::Made
                } else {
                    Written::Dropped
                }
            }
            Err(err) => {
                tracing::warn!(%namespace, %pod, "writing the readiness gate failed: {err}");
                Written::Failed
            }
        }
    }
}

impl<W: ClusterWrites> GateWriter<W> {
    /// A writer of a replica that always leads (no leader election).
    pub fn new(writes: Arc<W>, metrics: Metrics) -> Self {
        Self::with_workers(writes, metrics, WRITERS)
    }

    /// A writer that writes only while `leadership` says this replica leads.
    pub fn while_leading(writes: Arc<W>, metrics: Metrics, leadership: Leadership) -> Self {
        Self::build(writes, metrics, WRITERS, leadership)
    }

    /// A writer with at most `workers` writes in flight, always leading.
    pub fn with_workers(writes: Arc<W>, metrics: Metrics, workers: usize) -> Self {
        Self::build(writes, metrics, workers, Leadership::always())
    }

    fn build(writes: Arc<W>, metrics: Metrics, workers: usize, leadership: Leadership) -> Self {
        let sink = PodGates {
            writes,
            metrics: metrics.clone(),
        };
        Self {
            queue: WriteQueue::new(sink, metrics, workers, leadership),
        }
    }

    /// Queues `gate_writes` of binding `binding` for pods in `namespace`; `health_seen` as for
    /// [`write`].
    pub fn submit(
        &self,
        namespace: &str,
        binding: &str,
        gate_writes: Vec<GateWrite>,
        health_seen: Option<Instant>,
    ) {
        self.queue.submit(gate_writes.into_iter().map(|write| {
            let key = (
                namespace.to_string(),
                write.pod.clone(),
                binding.to_string(),
            );
            (key, GateJob { write, health_seen })
        }));
    }

    /// Drops the queued writes of binding `namespace/binding` and waits for its writes in flight:
    /// what the binding's deletion writes next is then the last word.
    pub async fn settle_binding(&self, namespace: &str, binding: &str) {
        self.queue
            .settle(|key: &PodKey| key.0 == namespace && key.2 == binding)
            .await;
    }

    /// Waits until every queued write is made (or given up).
    pub async fn flush(&self) {
        self.queue.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writes::recording::RecordingWrites;
    use lb_model::gates::GateVerdict;
    use serde_json::json;

    fn gate(pod: &str, open: bool) -> GateWrite {
        GateWrite {
            pod: pod.to_string(),
            uid: Some(format!("uid-{pod}")),
            verdict: GateVerdict {
                status: open,
                reason: if open {
                    "Healthy"
                } else {
                    "Elb.RegistrationInProgress"
                }
                .to_string(),
                message: String::new(),
            },
            patch: json!({"open": open}),
        }
    }

    fn written(writes: &RecordingWrites) -> Vec<(String, serde_json::Value)> {
        writes.pod_patches.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn a_replica_that_loses_the_lease_drops_its_queued_gate_writes() {
        let writes = Arc::new(RecordingWrites::default());
        let (leading, leadership) = Leadership::switched_by_hand(true);
        let writer = GateWriter::while_leading(writes.clone(), Metrics::default(), leadership);
        writer.submit("ns", "web", vec![gate("a", true)], None);
        writer.flush().await;
        assert_eq!(written(&writes).len(), 1);
        // Another replica takes the Lease: what this one still hands over is not written.
        leading.send_replace(false);
        writer.submit("ns", "web", vec![gate("a", false), gate("b", true)], None);
        writer.flush().await;
        assert_eq!(written(&writes).len(), 1);
    }

    #[tokio::test]
    async fn a_replica_that_leads_again_writes_afresh_what_it_made_before() {
        let writes = Arc::new(RecordingWrites::default());
        let (leading, leadership) = Leadership::switched_by_hand(true);
        let writer = GateWriter::while_leading(writes.clone(), Metrics::default(), leadership);
        writer.submit("ns", "web", vec![gate("a", true)], None);
        writer.flush().await;
        // The Lease lost and won back with nothing handed over in between: another leader may
        // have written the gate meanwhile, so the same verdict is written again.
        leading.send_replace(false);
        tokio::time::sleep(Duration::from_millis(20)).await;
        leading.send_replace(true);
        writer.submit("ns", "web", vec![gate("a", true)], None);
        writer.flush().await;
        let pods: Vec<String> = written(&writes).into_iter().map(|(pod, _)| pod).collect();
        assert_eq!(pods, ["a", "a"]);
    }

    #[tokio::test]
    async fn opening_writes_go_first_only_the_latest_is_made_and_none_twice() {
        let writes = Arc::new(RecordingWrites::default());
        let writer = GateWriter::with_workers(writes.clone(), Metrics::default(), 1);
        writer.submit(
            "ns",
            "web",
            vec![gate("a", false), gate("b", false), gate("c", true)],
            None,
        );
        writer.flush().await;
        let order: Vec<String> = written(&writes).into_iter().map(|(pod, _)| pod).collect();
        assert_eq!(order, ["c", "a", "b"]);

        // The same verdict again, before the watch cache shows it: not written twice.
        writer.submit("ns", "web", vec![gate("c", true)], None);
        writer.flush().await;
        assert_eq!(written(&writes).len(), 3);

        // Two verdicts for one pod in one go: only the latest.
        writer.submit("ns", "web", vec![gate("d", false), gate("d", true)], None);
        writer.flush().await;
        let last = written(&writes);
        assert_eq!(last.len(), 4);
        assert_eq!(last[3], ("d".to_string(), json!({"open": true})));
    }

    #[tokio::test]
    async fn a_write_seen_again_while_queued_keeps_its_first_sighting() {
        let writes = Arc::new(RecordingWrites::default());
        let metrics = Metrics::default();
        let writer = GateWriter::with_workers(writes.clone(), metrics.clone(), 1);
        // Both before the worker runs (one thread): the second pass finds the write queued.
        let first = Instant::now() - Duration::from_secs(2);
        writer.submit("ns", "web", vec![gate("a", true)], Some(first));
        writer.submit("ns", "web", vec![gate("a", true)], Some(Instant::now()));
        writer.flush().await;
        assert_eq!(written(&writes).len(), 1);
        let opening = metrics.gate_openings.by_pod()["ns/a"];
        assert!(
            opening.written - opening.seen >= 1.9,
            "latency from the first sighting: {opening:?}"
        );
    }

    #[tokio::test]
    async fn each_binding_of_a_pod_gets_its_write_and_a_stale_close_never_lands_last() {
        let writes = Arc::new(RecordingWrites::default());
        let writer = GateWriter::with_workers(writes.clone(), Metrics::default(), 1);
        // One pod behind two bindings: two gates, two writes.
        writer.submit("ns", "a", vec![gate("p", true)], None);
        writer.submit("ns", "b", vec![gate("p", true)], None);
        writer.flush().await;
        assert_eq!(written(&writes).len(), 2);
        // A close queued, then the open already made again: the close is dropped, not written.
        writer.submit("ns", "a", vec![gate("p", false)], None);
        writer.submit("ns", "a", vec![gate("p", true)], None);
        writer.flush().await;
        assert_eq!(written(&writes).len(), 2);
        // A binding being deleted: its queued writes go, others stay.
        writer.submit("ns", "a", vec![gate("q", false)], None);
        writer.submit("ns", "b", vec![gate("q", false)], None);
        writer.settle_binding("ns", "a").await;
        writer.flush().await;
        assert_eq!(written(&writes).len(), 3);
    }
}
