//! The one writer of TargetGroupBinding statuses. A pass hands its binding's new status over and
//! goes on: while a scale-out fills the API server, one status write can take seconds, and a pass
//! that waited for it held back the registrations of the endpoints that arrived meanwhile (passes
//! of one binding never overlap).
//!
//! Per binding, the latest status wins: at most one write in flight, only the newest one queued,
//! and one equal to the status written (or being written) in the last [`REMEMBERED`] is not made
//! again (the binding's watch cache lags behind our own writes; past that, someone else may have
//! changed the status, and ours is written again). A write that fails for a reason that can pass
//! (the API server busy or unreachable) is tried again with backoff until it succeeds or a newer
//! status is submitted, which then wins even if the older one's retry comes later; a binding gone,
//! or a write refused (forbidden, invalid), drops it with a warning.
//!
//! Only a leader writes: a replica that loses the Lease drops what it has queued (the new leader
//! reconciles every binding and writes their statuses itself; ours, landing later, would overwrite
//! them with older news) and forgets what it wrote, so it writes afresh should it lead again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lb_api::TargetGroupBindingStatus;
use tokio::sync::Notify;

use crate::leader::{Leadership, on_loss};
use crate::metrics::Metrics;
use crate::writes::ClusterWrites;

/// Status writes in flight at once, across all bindings.
const WRITERS: usize = 8;
/// The first wait before a failed write is tried again; doubled each time, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a status written is remembered while the watch cache catches up.
const REMEMBERED: Duration = Duration::from_secs(10);

/// (namespace, name) of a binding.
type BindingKey = (String, String);

struct Job {
    status: TargetGroupBindingStatus,
    /// Its place among the binding's submissions (see `State::latest`).
    submission: u64,
    failures: u32,
}

#[derive(Default)]
struct State {
    /// Bindings with a queued write, oldest first.
    order: VecDeque<BindingKey>,
    queued: HashMap<BindingKey, Job>,
    in_flight: HashSet<BindingKey>,
    /// The status last written, or being written, per binding, and since when.
    written: HashMap<BindingKey, (TargetGroupBindingStatus, Instant)>,
    /// Failed writes waiting for their backoff.
    backing_off: usize,
    workers: usize,
    /// The latest submission per binding: a failed write comes back only if it is still the
    /// latest (a newer status written meanwhile must not be overwritten by an older one).
    latest: HashMap<BindingKey, u64>,
    submissions: u64,
}

impl State {
    /// The oldest queued write whose binding has none in flight.
    fn next(&mut self) -> Option<(BindingKey, Job)> {
        let at = self
            .order
            .iter()
            .position(|key| !self.in_flight.contains(key))?;
        let key = self.order.remove(at)?;
        let job = self.queued.remove(&key)?;
        self.in_flight.insert(key.clone());
        self.written
            .insert(key.clone(), (job.status.clone(), Instant::now()));
        Some((key, job))
    }

    fn idle(&self) -> bool {
        self.queued.is_empty() && self.in_flight.is_empty() && self.backing_off == 0
    }

    /// Drops every queued write and the memory of what was written (leadership lost); returns
    /// how many writes were dropped. Writes in flight end as they will.
    fn drop_all(&mut self) -> usize {
        let dropped = self.queued.len();
        self.queued.clear();
        self.order.clear();
        self.written.clear();
        self.latest.clear();
        dropped
    }
}

struct Inner<W> {
    writes: Arc<W>,
    metrics: Metrics,
    /// Writes are made only while this replica leads.
    leadership: Leadership,
    state: Mutex<State>,
    /// Notified whenever a write ends.
    changed: Notify,
}

impl<W> Inner<W> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes binding statuses in the background (cheap to clone).
pub struct StatusWriter<W> {
    inner: Arc<Inner<W>>,
}

impl<W> Clone for StatusWriter<W> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
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
        let inner = Arc::new(Inner {
            writes,
            metrics,
            leadership: leadership.clone(),
            state: Mutex::default(),
            changed: Notify::new(),
        });
        on_loss(&leadership, &inner, |inner| {
            drop_all(inner);
            inner.changed.notify_waiters();
        });
        Self { inner }
    }

    /// Queues `status` for binding `namespace/name` (replacing one queued before); whether it
    /// was queued (false: the same status was written last, or is being written).
    pub fn submit(&self, namespace: &str, name: &str, status: TargetGroupBindingStatus) -> bool {
        let key = (namespace.to_string(), name.to_string());
        {
            let mut state = self.inner.lock();
            let recent = |(written, at): &(TargetGroupBindingStatus, Instant)| {
                *written == status && at.elapsed() < REMEMBERED
            };
            if !state.queued.contains_key(&key) && state.written.get(&key).is_some_and(recent) {
                return false;
            }
            state.submissions += 1;
            let submission = state.submissions;
            state.latest.insert(key.clone(), submission);
            let job = Job {
                status,
                submission,
                failures: 0,
            };
            if state.queued.insert(key.clone(), job).is_none() {
                state.order.push_back(key);
            }
        }
        start_workers(&self.inner);
        true
    }

    /// Drops what is queued for binding `namespace/name` and forgets what was written (it is
    /// being deleted, or was).
    pub fn forget(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        let mut state = self.inner.lock();
        state.queued.remove(&key);
        state.order.retain(|k| *k != key);
        state.written.remove(&key);
        state.latest.remove(&key);
    }

    /// Waits until nothing is queued, in flight or waiting to be tried again (for tests and a
    /// clean shutdown).
    pub async fn flush(&self) {
        loop {
            let changed = self.inner.changed.notified();
            if self.inner.lock().idle() {
                return;
            }
            changed.await;
        }
    }
}

/// Whether a write refused with HTTP `code` may pass if tried again: a conflict, throttling, or
/// the server's own trouble; not a request refused for what it is (forbidden, invalid).
fn passing(code: u16) -> bool {
    code == 409 || code == 429 || code >= 500
}

/// Starts as many workers as there are writes to make, up to [`WRITERS`].
fn start_workers<W: ClusterWrites>(inner: &Arc<Inner<W>>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no async runtime: binding statuses stay queued");
        return;
    };
    let mut state = inner.lock();
    let writable = state
        .order
        .iter()
        .filter(|key| !state.in_flight.contains(*key))
        .count();
    let wanted = writable.min(WRITERS.saturating_sub(state.workers));
    state.workers += wanted;
    drop(state);
    for _ in 0..wanted {
        runtime.spawn(work(inner.clone()));
    }
}

/// Drops what is queued and what was written (leadership lost), and says so.
fn drop_all<W>(inner: &Inner<W>) {
    let dropped = inner.lock().drop_all();
    if dropped > 0 {
        tracing::info!(
            dropped,
            "not the leader any more: queued binding statuses dropped"
        );
    }
}

/// Writes queued statuses until none is left that it may write.
async fn work<W: ClusterWrites>(inner: Arc<Inner<W>>) {
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
            }
            next
        };
        let Some((key, job)) = next else {
            inner.changed.notify_waiters();
            return;
        };
        let started = Instant::now();
        let result = inner
            .writes
            .apply_binding_status(&key.0, &key.1, &job.status)
            .await;
        inner.metrics.phase("status", started.elapsed());
        let retry = {
            let mut state = inner.lock();
            state.in_flight.remove(&key);
            match result {
                Ok(()) => None,
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    state.written.remove(&key);
                    None
                }
                Err(kube::Error::Api(status)) if !passing(status.code) => {
                    state.written.remove(&key);
                    tracing::warn!(binding = %format!("{}/{}", key.0, key.1), code = status.code, "writing the binding's status was refused: {}", status.message);
                    None
                }
                Err(err) => {
                    state.written.remove(&key);
                    if state.latest.get(&key) != Some(&job.submission) {
                        None // A newer status replaces this one.
                    } else {
                        let failures = job.failures + 1;
                        tracing::warn!(binding = %format!("{}/{}", key.0, key.1), failures, "writing the binding's status failed: {err}");
                        state.backing_off += 1;
                        Some(Job { failures, ..job })
                    }
                }
            }
        };
        if let Some(job) = retry {
            let delay = FIRST_BACKOFF
                .saturating_mul(1 << job.failures.min(8).saturating_sub(1))
                .min(MAX_BACKOFF);
            let inner = inner.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                {
                    let mut state = inner.lock();
                    state.backing_off -= 1;
                    let latest = state.latest.get(&key) == Some(&job.submission);
                    if latest && !state.queued.contains_key(&key) {
                        state.queued.insert(key.clone(), job);
                        state.order.push_back(key);
                    }
                }
                start_workers(&inner);
                inner.changed.notify_waiters();
            });
        }
        inner.changed.notify_waiters();
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
