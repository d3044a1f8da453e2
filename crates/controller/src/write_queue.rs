//! One coalescing, keyed write queue: the controller's background writes to Kubernetes (pod
//! readiness gates, binding statuses) go through it. A pass hands its writes over and goes on; the
//! queue writes them side by side, in the background, with these rules:
//! - per key, only the latest write is made, and at most one is in flight;
//! - a write equal to the one made (or being made) is not made again while the watch cache
//!   catches up (an older, different one still queued is dropped: it must not land after);
//! - urgent writes (a gate opening) go before the others;
//! - a write that fails is tried again with backoff, unless a newer one came meanwhile;
//! - only a leader writes: a replica that loses the Lease drops what it queued and forgets what it
//!   made (the new leader decides anew; ours, landing later, would overwrite its news with older).
//!
//! What is written, and how an answer is judged, is the [`Sink`]'s business.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::leader::{Leadership, on_loss};
use crate::metrics::Metrics;

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Made,
    /// Nothing to write any more (the object is gone), or the write was refused for what it is:
    /// not tried again.
    Dropped,
    /// It may pass if tried again later.
    Failed,
}

/// Where a [`WriteQueue`] writes to.
pub trait Sink: Send + Sync + 'static {
    type Key: Clone + Eq + Hash + Send + Sync + 'static;
    type Write: Send + Sync + 'static;
    /// The metric phase timed from a write's submission to its end.
    const PHASE: &'static str;
    /// The first wait before a failed write is tried again; doubled each time up to
    /// [`Sink::MAX_BACKOFF`].
    const FIRST_BACKOFF: Duration;
    const MAX_BACKOFF: Duration;
    /// How long a write made is remembered while the watch cache catches up.
    const REMEMBERED: Duration;

    /// Whether two writes put the same thing (the second need not be made).
    fn same(a: &Self::Write, b: &Self::Write) -> bool;
    /// Whether `write` goes before the writes that are not urgent.
    fn urgent(write: &Self::Write) -> bool;
    fn write(&self, key: &Self::Key, write: &Self::Write) -> impl Future<Output = Written> + Send;
}

struct Job<W> {
    write: Arc<W>,
    /// Its place among the key's submissions (see `State::latest`).
    submission: u64,
    failures: u32,
    submitted: Instant,
}

struct State<S: Sink> {
    /// Keys with a queued write: urgent ones, then the others, oldest first.
    urgent: VecDeque<S::Key>,
    others: VecDeque<S::Key>,
    queued: HashMap<S::Key, Job<S::Write>>,
    in_flight: HashMap<S::Key, Arc<S::Write>>,
    made: HashMap<S::Key, (Arc<S::Write>, Instant)>,
    /// The latest submission per key: a failed write comes back only if it is still the latest.
    latest: HashMap<S::Key, u64>,
    submissions: u64,
    /// Failed writes waiting for their backoff.
    backing_off: usize,
    workers: usize,
}

impl<S: Sink> Default for State<S> {
    fn default() -> Self {
        Self {
            urgent: VecDeque::new(),
            others: VecDeque::new(),
            queued: HashMap::new(),
            in_flight: HashMap::new(),
            made: HashMap::new(),
            latest: HashMap::new(),
            submissions: 0,
            backing_off: 0,
            workers: 0,
        }
    }
}

impl<S: Sink> State<S> {
    fn submit(&mut self, key: S::Key, write: S::Write, now: Instant) -> bool {
        self.submissions += 1;
        let submission = self.submissions;
        // Whatever happens to this write, an older one backing off must not come back.
        self.latest.insert(key.clone(), submission);
        let same_as = |other: Option<&Arc<S::Write>>| other.is_some_and(|o| S::same(o, &write));
        if same_as(self.made.get(&key).map(|(made, _)| made)) || same_as(self.in_flight.get(&key)) {
            self.queued.remove(&key);
            return false;
        }
        if let Some(queued) = self.queued.get_mut(&key)
            && S::same(&queued.write, &write)
        {
            // Queued already: it keeps its place and its submission time (latencies count from
            // the first sighting).
            queued.submission = submission;
            return true;
        }
        let urgent = S::urgent(&write);
        let job = Job {
            write: Arc::new(write),
            submission,
            failures: 0,
            submitted: now,
        };
        self.requeue(key, job, urgent);
        true
    }

    /// Queues `job` for `key` in its lane, replacing the one queued before.
    fn requeue(&mut self, key: S::Key, job: Job<S::Write>, urgent: bool) {
        if let Some(old) = self.queued.insert(key.clone(), job)
            && S::urgent(&old.write) == urgent
        {
            return; // Same lane: the key keeps its place.
        }
        self.urgent.retain(|k| *k != key);
        self.others.retain(|k| *k != key);
        if urgent {
            self.urgent.push_back(key);
        } else {
            self.others.push_back(key);
        }
    }

    /// The next write no worker is writing the key of, urgent ones first.
    fn next(&mut self) -> Option<(S::Key, Job<S::Write>)> {
        for lane in [&mut self.urgent, &mut self.others] {
            let at = lane.iter().position(|k| !self.in_flight.contains_key(k));
            if let Some(key) = at.and_then(|at| lane.remove(at))
                && let Some(job) = self.queued.remove(&key)
            {
                self.in_flight.insert(key.clone(), job.write.clone());
                return Some((key, job));
            }
        }
        None
    }

    fn writable(&self) -> usize {
        self.urgent
            .iter()
            .chain(&self.others)
            .filter(|k| !self.in_flight.contains_key(*k))
            .count()
    }

    fn idle(&self) -> bool {
        self.queued.is_empty() && self.in_flight.is_empty() && self.backing_off == 0
    }

    /// Drops the queued writes of keys `matching`.
    fn drop_queued(&mut self, matching: impl Fn(&S::Key) -> bool) {
        self.queued.retain(|k, _| !matching(k));
        self.urgent.retain(|k| !matching(k));
        self.others.retain(|k| !matching(k));
    }

    /// Drops every queued write and the memory of what was made (leadership lost); returns how
    /// many writes were dropped. Writes in flight end as they will.
    fn drop_all(&mut self) -> usize {
        let dropped = self.queued.len();
        self.drop_queued(|_| true);
        self.made.clear();
        // Writes backing off are no longer the latest of their keys: they do not come back.
        self.latest.clear();
        dropped
    }
}

struct Inner<S: Sink> {
    sink: S,
    metrics: Metrics,
    leadership: Leadership,
    most_workers: usize,
    state: Mutex<State<S>>,
    /// Notified whenever a write ends or the queue is dropped.
    changed: Notify,
}

impl<S: Sink> Inner<S> {
    fn lock(&self) -> MutexGuard<'_, State<S>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A coalescing keyed write queue (cheap to clone).
pub struct WriteQueue<S: Sink> {
    inner: Arc<Inner<S>>,
}

impl<S: Sink> Clone for WriteQueue<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Sink> WriteQueue<S> {
    /// A queue writing to `sink` with at most `workers` writes in flight, only while
    /// `leadership` says this replica leads.
    pub fn new(sink: S, metrics: Metrics, workers: usize, leadership: Leadership) -> Self {
        let inner = Arc::new(Inner {
            sink,
            metrics,
            leadership: leadership.clone(),
            most_workers: workers.max(1),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        });
        on_loss(&leadership, &inner, |inner| {
            drop_all(inner);
            inner.changed.notify_waiters();
        });
        Self { inner }
    }

    /// Queues `writes`; how many were queued (the others are made already, or being made).
    pub fn submit(&self, writes: impl IntoIterator<Item = (S::Key, S::Write)>) -> usize {
        let now = Instant::now();
        let queued = {
            let mut state = self.inner.lock();
            state
                .made
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < S::REMEMBERED);
            writes
                .into_iter()
                .map(|(key, write)| state.submit(key, write, now))
                .filter(|queued| *queued)
                .count()
        };
        start_workers(&self.inner);
        queued
    }

    /// Drops the queued writes of keys `matching` and forgets what was made for them (their
    /// objects are being deleted, or were).
    pub fn forget(&self, matching: impl Fn(&S::Key) -> bool) {
        let mut state = self.inner.lock();
        state.drop_queued(&matching);
        state.made.retain(|k, _| !matching(k));
        state.latest.retain(|k, _| !matching(k));
    }

    /// [`WriteQueue::forget`]s keys `matching` and waits for their writes in flight: what the
    /// caller writes next is then the last word.
    pub async fn settle(&self, matching: impl Fn(&S::Key) -> bool) {
        self.forget(&matching);
        loop {
            let changed = self.inner.changed.notified();
            if !self.inner.lock().in_flight.keys().any(&matching) {
                return;
            }
            changed.await;
        }
    }

    /// Waits until nothing is queued, in flight or waiting to be tried again.
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

/// Starts as many workers as there are writes to make, up to the queue's most.
fn start_workers<S: Sink>(inner: &Arc<Inner<S>>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(phase = S::PHASE, "no async runtime: writes stay queued");
        return;
    };
    let wanted = {
        let mut state = inner.lock();
        let wanted = state
            .writable()
            .min(inner.most_workers.saturating_sub(state.workers));
        state.workers += wanted;
        wanted
    };
    for _ in 0..wanted {
        runtime.spawn(work(inner.clone()));
    }
}

/// Drops what is queued and what was made (leadership lost), and says so.
fn drop_all<S: Sink>(inner: &Inner<S>) {
    let dropped = inner.lock().drop_all();
    if dropped > 0 {
        tracing::info!(
            dropped,
            phase = S::PHASE,
            "not the leader any more: queued writes dropped"
        );
    }
}

/// A worker: makes writes until none is left that it may make, then ends.
async fn work<S: Sink>(inner: Arc<Inner<S>>) {
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
        let written = inner.sink.write(&key, &job.write).await;
        inner.metrics.phase(S::PHASE, job.submitted.elapsed());
        let retry = {
            let mut state = inner.lock();
            state.in_flight.remove(&key);
            match written {
                Written::Made => {
                    state
                        .made
                        .insert(key.clone(), (job.write.clone(), Instant::now()));
                    false
                }
                Written::Dropped => false,
                Written::Failed => {
                    let latest = state.latest.get(&key) == Some(&job.submission);
                    state.backing_off += usize::from(latest);
                    latest
                }
            }
        };
        if retry {
            tokio::spawn(back_off(inner.clone(), key, job));
        }
        inner.changed.notify_waiters();
    }
}

/// Queues a failed write again after its backoff, unless a newer write of its key came
/// meanwhile, or the key was settled or leadership lost (both forget the latest submissions).
async fn back_off<S: Sink>(inner: Arc<Inner<S>>, key: S::Key, job: Job<S::Write>) {
    let failures = job.failures + 1;
    let delay = S::FIRST_BACKOFF
        .saturating_mul(1 << failures.min(8).saturating_sub(1))
        .min(S::MAX_BACKOFF);
    tokio::time::sleep(delay).await;
    {
        let mut state = inner.lock();
        state.backing_off -= 1;
        let latest = state.latest.get(&key) == Some(&job.submission);
        if latest && !state.queued.contains_key(&key) {
            let urgent = S::urgent(&job.write);
            state.requeue(key, Job { failures, ..job }, urgent);
        }
    }
    start_workers(&inner);
    inner.changed.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Writes (key, value) pairs into a list; fails the first `failing` writes.
    #[derive(Default)]
    struct ListSink {
        made: Mutex<Vec<(u32, u32)>>,
        failing: AtomicU32,
    }

    impl Sink for Arc<ListSink> {
        type Key = u32;
        type Write = u32;
        const PHASE: &'static str = "test_write";
        const FIRST_BACKOFF: Duration = Duration::from_millis(10);
        const MAX_BACKOFF: Duration = Duration::from_millis(40);
        const REMEMBERED: Duration = Duration::from_secs(10);

        fn same(a: &u32, b: &u32) -> bool {
            a == b
        }

        fn urgent(write: &u32) -> bool {
            *write >= 100
        }

        async fn write(&self, key: &u32, write: &u32) -> Written {
            let failing = self.failing.load(Ordering::SeqCst);
            if failing > 0 {
                self.failing.store(failing - 1, Ordering::SeqCst);
                return Written::Failed;
            }
            self.made.lock().unwrap().push((*key, *write));
            Written::Made
        }
    }

    fn queue(sink: &Arc<ListSink>, workers: usize) -> WriteQueue<Arc<ListSink>> {
        WriteQueue::new(
            sink.clone(),
            Metrics::default(),
            workers,
            Leadership::always(),
        )
    }

    #[tokio::test]
    async fn urgent_writes_first_the_latest_per_key_and_none_twice() {
        let sink = Arc::new(ListSink::default());
        let queue = queue(&sink, 1);
        assert_eq!(queue.submit([(1, 1), (2, 2), (1, 3), (3, 100)]), 4);
        queue.flush().await;
        assert_eq!(*sink.made.lock().unwrap(), [(3, 100), (1, 3), (2, 2)]);
        assert_eq!(queue.submit([(1, 3)]), 0, "made already");
    }

    #[tokio::test]
    async fn a_failed_write_comes_back_unless_its_key_was_forgotten() {
        let sink = Arc::new(ListSink::default());
        sink.failing.store(2, Ordering::SeqCst);
        let queue = queue(&sink, 4);
        queue.submit([(1, 1), (2, 2)]);
        // Both fail and back off; key 2's object goes away meanwhile.
        tokio::time::sleep(Duration::from_millis(2)).await;
        queue.forget(|key| *key == 2);
        queue.flush().await;
        assert_eq!(*sink.made.lock().unwrap(), [(1, 1)]);
    }
}
