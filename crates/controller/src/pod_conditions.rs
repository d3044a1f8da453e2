//! The one writer of pod conditions: the readiness-gate conditions a pass decided (see
//! [`lb_model::plan::GateWrite`]), written side by side (a rollout flips many at once), each only
//! our condition type, each guarded by the pod's uid. A live binding's pass hands its writes to
//! the [`GateWriter`] and goes on; a binding being deleted writes and waits ([`write`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lb_model::gates::GateVerdict;
use lb_model::plan::GateWrite;
use tokio::sync::Notify;

use crate::error::{KubeContext, Result};
use crate::leader::{Leadership, on_loss};
use crate::metrics::Metrics;
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
/// condition). Opening writes go before closing ones (a pod waiting to be Ready matters more than
/// a reason shown on one that is not); each key has at most one write in flight and only its
/// latest one queued; a write the watch cache has not caught up with yet is not made twice. A write
/// that fails is retried with backoff, then queued again a little later (the binding may have no
/// pass coming: its gate is no longer pending once decided); a pod gone or recreated drops it.
/// Only a leader writes: a replica that loses the Lease drops its queued writes and forgets what
/// it made (the new leader decides every gate anew; ours, landing later, could close a gate it
/// opened).
pub struct GateWriter<W> {
    inner: Arc<WriterInner<W>>,
}

/// Gate writes in flight at once, across all bindings.
const WRITERS: usize = 32;
/// Attempts of one write before it is queued again later.
const ATTEMPTS: u32 = 5;
/// How long a write that kept failing waits before it is queued again.
const REQUEUE_AFTER: Duration = Duration::from_secs(5);
/// How long a write is remembered as made while the watch cache catches up.
const REMEMBERED: Duration = Duration::from_secs(30);

/// (namespace, pod, binding).
type PodKey = (String, String, String);

struct Job {
    write: GateWrite,
    health_seen: Option<Instant>,
    submitted: Instant,
}

struct Made {
    uid: Option<String>,
    verdict: GateVerdict,
    at: Instant,
}

#[derive(Default)]
struct WriterState {
    opening: VecDeque<PodKey>,
    closing: VecDeque<PodKey>,
    queued: HashMap<PodKey, Job>,
    /// Pods being written, with the uid and verdict being written.
    in_flight: HashMap<PodKey, (Option<String>, GateVerdict)>,
    made: HashMap<PodKey, Made>,
    workers: usize,
    /// Times the queue was dropped for lost leadership (at the loss, or by a worker that found it
    /// lost): a failed write queued again later belongs to its term only.
    losses: u64,
}

impl WriterState {
    /// The next job no other worker is writing the pod of, opening writes first.
    fn next(&mut self) -> Option<(PodKey, Job)> {
        for queue in [&mut self.opening, &mut self.closing] {
            // Places left behind by a later write of the same pod.
            while queue
                .front()
                .is_some_and(|key| !self.queued.contains_key(key))
            {
                queue.pop_front();
            }
            let position = queue
                .iter()
                .position(|key| !self.in_flight.contains_key(key) && self.queued.contains_key(key));
            if let Some(position) = position
                && let Some(key) = queue.remove(position)
                && let Some(job) = self.queued.remove(&key)
            {
                self.in_flight.insert(
                    key.clone(),
                    (job.write.uid.clone(), job.write.verdict.clone()),
                );
                return Some((key, job));
            }
        }
        None
    }

    fn idle(&self) -> bool {
        self.queued.is_empty() && self.in_flight.is_empty()
    }

    /// Drops every queued write and the memory of what was made (leadership lost); returns how
    /// many writes were dropped.
    fn drop_all(&mut self) -> usize {
        let dropped = self.queued.len();
        self.queued.clear();
        self.opening.clear();
        self.closing.clear();
        self.made.clear();
        self.losses += 1;
        dropped
    }
}

struct WriterInner<W> {
    writes: Arc<W>,
    /// Writes are made only while this replica leads.
    leadership: Leadership,
    most_workers: usize,
    metrics: Metrics,
    state: Mutex<WriterState>,
    idle: Notify,
}

impl<W> WriterInner<W> {
    fn lock(&self) -> MutexGuard<'_, WriterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
        let inner = Arc::new(WriterInner {
            writes,
            leadership: leadership.clone(),
            metrics,
            most_workers: workers.max(1),
            state: Mutex::new(WriterState::default()),
            idle: Notify::new(),
        });
        on_loss(&leadership, &inner, |inner| {
            drop_all(inner);
            inner.idle.notify_waiters();
        });
        Self { inner }
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
        let now = Instant::now();
        let jobs = gate_writes.into_iter().map(|write| {
            let key = (
                namespace.to_string(),
                write.pod.clone(),
                binding.to_string(),
            );
            let job = Job {
                write,
                health_seen,
                submitted: now,
            };
            (key, job)
        });
        enqueue(&self.inner, jobs);
    }

    /// Drops the queued writes of binding `namespace/binding` and waits for its writes in flight:
    /// what the binding's deletion writes next is then the last word.
    pub async fn settle_binding(&self, namespace: &str, binding: &str) {
        let ours = |key: &PodKey| key.0 == namespace && key.2 == binding;
        self.inner.lock().queued.retain(|key, _| !ours(key));
        loop {
            let changed = self.inner.idle.notified();
            if !self.inner.lock().in_flight.keys().any(ours) {
                return;
            }
            changed.await;
        }
    }

    /// Waits until every queued write is made (or given up).
    pub async fn flush(&self) {
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.lock().idle() {
                return;
            }
            idle.await;
        }
    }
}

/// Queues `jobs` (the latest for a key wins; one made or being made with the same verdict is
/// skipped, and so is an older one still queued; one queued already with the same verdict stays
/// as it was) and starts the workers they need.
fn enqueue<W: ClusterWrites>(
    inner: &Arc<WriterInner<W>>,
    jobs: impl Iterator<Item = (PodKey, Job)>,
) {
    let now = Instant::now();
    let workers = {
        let mut state = inner.lock();
        state
            .made
            .retain(|_, made| now.saturating_duration_since(made.at) < REMEMBERED);
        for (key, job) in jobs {
            let write = &job.write;
            let same = |uid: &Option<String>, verdict: &GateVerdict| {
                *uid == write.uid && *verdict == write.verdict
            };
            // Made, or being made: the watch cache has not caught up yet.
            let already = state
                .made
                .get(&key)
                .is_some_and(|made| same(&made.uid, &made.verdict))
                || state
                    .in_flight
                    .get(&key)
                    .is_some_and(|(uid, verdict)| same(uid, verdict));
            if already {
                // An older write still queued (say, a close before this open) must not land after.
                state.queued.remove(&key);
                continue;
            }
            if state
                .queued
                .get(&key)
                .is_some_and(|queued| same(&queued.write.uid, &queued.write.verdict))
            {
                // Queued already (a later pass saw the same): it keeps its place, and the moment
                // its health was first seen, which is what its latency is measured from.
                continue;
            }
            let queue = if write.verdict.status {
                &mut state.opening
            } else {
                &mut state.closing
            };
            queue.push_back(key.clone());
            // Only the latest write of a key is made; its earlier place in a queue is skipped.
            state.queued.insert(key, job);
        }
        let wanted = state.queued.len().min(inner.most_workers);
        let start = wanted.saturating_sub(state.workers);
        state.workers += start;
        start
    };
    for _ in 0..workers {
        tokio::spawn(work(inner.clone()));
    }
}

/// Drops what is queued and what was made (leadership lost), and says so.
fn drop_all<W>(inner: &WriterInner<W>) {
    let dropped = inner.lock().drop_all();
    if dropped > 0 {
        tracing::info!(
            dropped,
            "not the leader any more: queued gate writes dropped"
        );
    }
}

/// A worker: writes jobs until none is left, then ends.
async fn work<W: ClusterWrites>(inner: Arc<WriterInner<W>>) {
    loop {
        if !inner.leadership.is_leader() {
            // Passes that were running when the Lease was lost may still hand writes over.
            drop_all(&inner);
        }
        let next = {
            let mut state = inner.lock();
            let next = state.next();
            if next.is_none() {
                state.workers -= 1;
                inner.idle.notify_waiters();
            }
            next
        };
        let Some((key, job)) = next else { return };
        let outcome = write_with_retries(&inner, &key, &job).await;
        // Queued and written: a phase of its pass that the pass does not wait for.
        inner.metrics.phase("gate_write", job.submitted.elapsed());
        {
            let mut state = inner.lock();
            state.in_flight.remove(&key);
            if outcome == Outcome::Made {
                state.made.insert(
                    key.clone(),
                    Made {
                        uid: job.write.uid.clone(),
                        verdict: job.write.verdict.clone(),
                        at: Instant::now(),
                    },
                );
            }
            // Waiters on a binding (and on idleness) look again.
            inner.idle.notify_waiters();
        }
        if outcome == Outcome::Failed {
            let inner = inner.clone();
            let term = inner.lock().losses;
            tokio::spawn(async move {
                tokio::time::sleep(REQUEUE_AFTER).await;
                // Unless a newer write of the key came in meanwhile, or the term it was decided
                // in has ended.
                let stale = {
                    let state = inner.lock();
                    state.queued.contains_key(&key)
                        || state.in_flight.contains_key(&key)
                        || state.losses != term
                };
                if !stale {
                    enqueue(&inner, std::iter::once((key, job)));
                }
            });
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Made,
    /// The pod is gone or was recreated: nothing to write any more.
    Gone,
    Failed,
    /// Leadership was lost between attempts: the new leader writes the gate.
    Abandoned,
}

/// Writes `job`, retrying with backoff.
async fn write_with_retries<W: ClusterWrites>(
    inner: &WriterInner<W>,
    key: &PodKey,
    job: &Job,
) -> Outcome {
    let (namespace, pod, _) = key;
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 && !inner.leadership.is_leader() {
            // Another replica leads now and decides this gate itself.
            return Outcome::Abandoned;
        }
        let started = Instant::now();
        let result = inner
            .writes
            .patch_pod_status(namespace, pod, &job.write.patch)
            .await;
        // The API server's share of the gate write.
        inner.metrics.phase("gate_patch", started.elapsed());
        match result {
            Ok(written) => {
                record(
                    &inner.metrics,
                    namespace,
                    &job.write,
                    written,
                    job.health_seen,
                );
                return if written {
                    Outcome::Made
                } else {
                    Outcome::Gone
                };
            }
            Err(err) => {
                tracing::warn!(%namespace, %pod, attempt, "writing the readiness gate failed: {err}");
                if attempt < ATTEMPTS {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
    Outcome::Failed
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
