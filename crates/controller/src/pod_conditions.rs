//! The one writer of pod conditions: the readiness-gate conditions a pass decided (see
//! [`lb_model::plan::GateWrite`]), written side by side (a rollout flips many at once), each only
//! our condition type, each guarded by the pod's uid. A live binding's pass hands its writes to
//! the [`GateWriter`] and goes on; a binding being deleted writes and waits ([`write`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lb_model::plan::GateWrite;
use tokio::sync::Notify;

use crate::error::{KubeContext, Result};
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
                .context(|| format!("writing the readiness gate of pod {namespace}/{}", write.pod))?;
            if let (true, true, Some(seen)) = (written, write.verdict.status, health_seen) {
                metrics.gate_opened(format!("{namespace}/{}", write.pod), seen.elapsed());
            }
            tracing::debug!(pod = %write.pod, status = write.verdict.status, reason = %write.verdict.reason, written, "readiness gate");
            Ok(())
        })
        .buffer_unordered(WRITES_AT_ONCE)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Gate writes a pass hands over instead of waiting for them: a pass that found 100 targets
/// healthy must not hold back the next pass's registrations while 100 pod statuses are written.
/// Opening writes go before closing ones (a pod waiting to be Ready matters more than a reason
/// shown on one that is not), each pod has at most one write in flight and only its latest one
/// queued, and a write the watch cache has not caught up with yet is not made twice. A write that
/// fails is retried with backoff; a pod gone or recreated drops it.
pub struct GateWriter<W> {
    inner: Arc<WriterInner<W>>,
}

/// Gate writes in flight at once, across all bindings.
const WRITERS: usize = 32;
/// Attempts of one write before it is left to the binding's next pass.
const ATTEMPTS: u32 = 5;
/// How long a write is remembered as made while the watch cache catches up.
const REMEMBERED: Duration = Duration::from_secs(30);

type PodKey = (String, String);

struct Job {
    write: GateWrite,
    health_seen: Option<Instant>,
    submitted: Instant,
}

struct Made {
    uid: Option<String>,
    verdict: lb_model::gates::GateVerdict,
    at: Instant,
}

#[derive(Default)]
struct WriterState {
    opening: VecDeque<PodKey>,
    closing: VecDeque<PodKey>,
    queued: HashMap<PodKey, Job>,
    /// Pods being written, with the uid and verdict being written.
    in_flight: HashMap<PodKey, (Option<String>, lb_model::gates::GateVerdict)>,
    made: HashMap<PodKey, Made>,
    workers: usize,
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
}

struct WriterInner<W> {
    writes: Arc<W>,
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
    pub fn new(writes: Arc<W>, metrics: Metrics) -> Self {
        Self::with_workers(writes, metrics, WRITERS)
    }

    /// A writer with at most `workers` writes in flight.
    pub fn with_workers(writes: Arc<W>, metrics: Metrics, workers: usize) -> Self {
        Self {
            inner: Arc::new(WriterInner {
                writes,
                metrics,
                most_workers: workers.max(1),
                state: Mutex::new(WriterState::default()),
                idle: Notify::new(),
            }),
        }
    }

    /// Queues `gate_writes` of pods in `namespace`; `health_seen` as for [`write`].
    pub fn submit(
        &self,
        namespace: &str,
        gate_writes: Vec<GateWrite>,
        health_seen: Option<Instant>,
    ) {
        if gate_writes.is_empty() {
            return;
        }
        let now = Instant::now();
        let workers = {
            let mut state = self.inner.lock();
            state
                .made
                .retain(|_, made| now.saturating_duration_since(made.at) < REMEMBERED);
            for write in gate_writes {
                let key = (namespace.to_string(), write.pod.clone());
                // Made, or being made: the watch cache has not caught up yet.
                let already = state
                    .made
                    .get(&key)
                    .is_some_and(|made| made.uid == write.uid && made.verdict == write.verdict)
                    || state.in_flight.get(&key).is_some_and(|(uid, verdict)| {
                        *uid == write.uid && *verdict == write.verdict
                    });
                if already {
                    continue;
                }
                let queue = if write.verdict.status {
                    &mut state.opening
                } else {
                    &mut state.closing
                };
                queue.push_back(key.clone());
                // Only the latest write of a pod is made; its earlier place in a queue is skipped.
                state.queued.insert(
                    key,
                    Job {
                        write,
                        health_seen,
                        submitted: now,
                    },
                );
            }
            let wanted = state.queued.len().min(self.inner.most_workers);
            let start = wanted.saturating_sub(state.workers);
            state.workers += start;
            start
        };
        for _ in 0..workers {
            tokio::spawn(work(self.inner.clone()));
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

/// A worker: writes jobs until none is left, then ends.
async fn work<W: ClusterWrites>(inner: Arc<WriterInner<W>>) {
    loop {
        let next = {
            let mut state = inner.lock();
            let next = state.next();
            if next.is_none() {
                state.workers -= 1;
                if state.idle() {
                    inner.idle.notify_waiters();
                }
            }
            next
        };
        let Some((key, job)) = next else { return };
        let made = write_with_retries(&inner, &key, &job).await;
        // Queued and written: a phase of its pass that the pass does not wait for.
        inner.metrics.phase("gate_write", job.submitted.elapsed());
        let mut state = inner.lock();
        state.in_flight.remove(&key);
        if made {
            state.made.insert(
                key,
                Made {
                    uid: job.write.uid.clone(),
                    verdict: job.write.verdict.clone(),
                    at: Instant::now(),
                },
            );
        }
        if state.idle() {
            inner.idle.notify_waiters();
        }
    }
}

/// Whether the write was made (false: the pod is gone or recreated, or the write kept failing).
async fn write_with_retries<W: ClusterWrites>(
    inner: &WriterInner<W>,
    key: &PodKey,
    job: &Job,
) -> bool {
    let (namespace, pod) = key;
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        let started = Instant::now();
        let result = inner
            .writes
            .patch_pod_status(namespace, pod, &job.write.patch)
            .await;
        // The API server's share of the gate write.
        inner.metrics.phase("gate_patch", started.elapsed());
        match result {
            Ok(written) => {
                if let (true, true, Some(seen)) =
                    (written, job.write.verdict.status, job.health_seen)
                {
                    inner
                        .metrics
                        .gate_opened(format!("{namespace}/{pod}"), seen.elapsed());
                }
                tracing::debug!(%pod, status = job.write.verdict.status, reason = %job.write.verdict.reason, written, "readiness gate");
                return written;
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
    false
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
    async fn opening_writes_go_first_only_the_latest_is_made_and_none_twice() {
        let writes = Arc::new(RecordingWrites::default());
        let writer = GateWriter::with_workers(writes.clone(), Metrics::default(), 1);
        writer.submit(
            "ns",
            vec![gate("a", false), gate("b", false), gate("c", true)],
            None,
        );
        writer.flush().await;
        let order: Vec<String> = written(&writes).into_iter().map(|(pod, _)| pod).collect();
        assert_eq!(order, ["c", "a", "b"]);

        // The same verdict again, before the watch cache shows it: not written twice.
        writer.submit("ns", vec![gate("c", true)], None);
        writer.flush().await;
        assert_eq!(written(&writes).len(), 3);

        // Two verdicts for one pod in one go: only the latest.
        writer.submit("ns", vec![gate("d", false), gate("d", true)], None);
        writer.flush().await;
        let last = written(&writes);
        assert_eq!(last.len(), 4);
        assert_eq!(last[3], ("d".to_string(), json!({"open": true})));
    }
}
