//! The ELB call budget every binding shares: at most a fixed number of target calls in flight.
//! A waiting deregistration goes before waiting registrations, and those before health looks (a
//! leaving pod must stop getting traffic first; a new one must get it before we poll anyone's
//! health); among calls of one kind, first come, first served, so no binding starves while
//! others are busy. Health looks never hold every slot: a few are kept for registrations and
//! deregistrations, so a change never waits behind a round of slow describes of large groups.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Target calls in flight at once, across all bindings.
pub const CALLS_IN_FLIGHT: usize = 8;

/// Slots health looks leave to registrations and deregistrations.
pub const KEPT_FOR_CHANGES: usize = 2;

/// What a call does, in the order waiting calls are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Deregister = 0,
    Register = 1,
    Describe = 2,
}

const KINDS: [CallKind; 3] = [CallKind::Deregister, CallKind::Register, CallKind::Describe];

struct State {
    free: usize,
    /// Describes in flight, and how many may be.
    describing: usize,
    describe_limit: usize,
    waiting: [VecDeque<oneshot::Sender<Permit>>; KINDS.len()],
}

impl State {
    /// Whether a call of `kind` may take a free slot now (queues aside).
    fn may_start(&self, kind: CallKind) -> bool {
        self.free > 0 && (kind != CallKind::Describe || self.describing < self.describe_limit)
    }

    fn start(&mut self, kind: CallKind) {
        self.free -= 1;
        if kind == CallKind::Describe {
            self.describing += 1;
        }
    }

    fn finish(&mut self, kind: CallKind) {
        self.free += 1;
        if kind == CallKind::Describe {
            self.describing -= 1;
        }
    }
}

struct Inner {
    state: Mutex<State>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A shared budget of AWS calls (cheap to clone).
#[derive(Clone)]
pub struct CallBudget {
    inner: Arc<Inner>,
}

impl Default for CallBudget {
    fn default() -> Self {
        Self::new(CALLS_IN_FLIGHT)
    }
}

/// The right to make one call; returned to the budget when dropped.
pub struct Permit {
    inner: Arc<Inner>,
    kind: CallKind,
}

impl Drop for Permit {
    fn drop(&mut self) {
        release(&self.inner, self.kind);
    }
}

/// Returns the slot of a finished call of `kind`, then hands free slots to the first waiters by
/// kind that may start.
fn release(inner: &Arc<Inner>, kind: CallKind) {
    inner.lock().finish(kind);
    loop {
        let next = {
            let mut state = inner.lock();
            let next = KINDS.into_iter().find_map(|kind| {
                if !state.may_start(kind) {
                    return None;
                }
                state.waiting[kind as usize]
                    .pop_front()
                    .map(|waiter| (kind, waiter))
            });
            if let Some((kind, _)) = &next {
                state.start(*kind);
            }
            next
        };
        let Some((kind, waiter)) = next else { return };
        let permit = Permit {
            inner: inner.clone(),
            kind,
        };
        match waiter.send(permit) {
            Ok(()) => return,
            // That waiter gave up: take the slot back (without a drop, which would look for a
            // waiter again from inside this loop) and offer it to the next one.
            Err(permit) => {
                std::mem::forget(permit);
                inner.lock().finish(kind);
            }
        }
    }
}

impl CallBudget {
    pub fn new(calls: usize) -> Self {
        let calls = calls.max(1);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    free: calls,
                    describing: 0,
                    describe_limit: calls.saturating_sub(KEPT_FOR_CHANGES).max(1),
                    waiting: Default::default(),
                }),
            }),
        }
    }

    /// Waits for a slot for a call of `kind`.
    pub async fn acquire(&self, kind: CallKind) -> Permit {
        loop {
            let receiver = {
                let mut state = self.inner.lock();
                let ahead = state.waiting[..=kind as usize]
                    .iter()
                    .any(|q| !q.is_empty());
                if state.may_start(kind) && !ahead {
                    state.start(kind);
                    return Permit {
                        inner: self.inner.clone(),
                        kind,
                    };
                }
                let (sender, receiver) = oneshot::channel();
                state.waiting[kind as usize].push_back(sender);
                receiver
            };
            // A sender is only dropped unsent with the budget itself, which this caller holds:
            // were it ever, the caller queues again.
            if let Ok(permit) = receiver.await {
                return permit;
            }
        }
    }

    /// Runs `call` within the budget.
    pub async fn run<T>(&self, kind: CallKind, call: impl Future<Output = T>) -> T {
        let _permit = self.acquire(kind).await;
        call.await
    }

    /// Slots free now (for tests and metrics).
    pub fn free(&self) -> usize {
        self.inner.lock().free
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn never_more_calls_in_flight_than_the_budget() {
        let budget = CallBudget::new(2);
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (budget, in_flight, most) = (budget.clone(), in_flight.clone(), most.clone());
                tokio::spawn(async move {
                    budget
                        .run(CallKind::Register, async {
                            let now =
                                in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                            most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(budget.free(), 2);
    }

    #[tokio::test]
    async fn a_waiting_deregistration_goes_first_then_first_come_first_served() {
        let budget = CallBudget::new(1);
        let held = budget.acquire(CallKind::Describe).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, kind) in [
            ("describe", CallKind::Describe),
            ("register-1", CallKind::Register),
            ("register-2", CallKind::Register),
            ("deregister", CallKind::Deregister),
        ] {
            let (budget, order) = (budget.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = budget.acquire(kind).await;
                order.lock().unwrap().push(name);
            }));
            // Queued in this order.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["deregister", "register-1", "register-2", "describe"]
        );
        assert_eq!(budget.free(), 1);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_loses_no_slot() {
        let budget = CallBudget::new(1);
        let held = budget.acquire(CallKind::Register).await;
        let gave_up = tokio::time::timeout(
            Duration::from_millis(10),
            budget.acquire(CallKind::Register),
        )
        .await;
        assert!(gave_up.is_err());
        drop(held);
        assert_eq!(budget.free(), 1);
        let _again = budget.acquire(CallKind::Describe).await;
        assert_eq!(budget.free(), 0);
    }

    #[tokio::test]
    async fn health_looks_leave_slots_to_changes() {
        let budget = CallBudget::new(4);
        let first = budget.acquire(CallKind::Describe).await;
        let _second = budget.acquire(CallKind::Describe).await;
        // Two describes hold what they may: a third waits though two slots are free.
        let third = tokio::spawn({
            let budget = budget.clone();
            async move { budget.acquire(CallKind::Describe).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!third.is_finished());
        assert_eq!(budget.free(), 2);
        // A registration and a deregistration start at once.
        let register = budget.acquire(CallKind::Register).await;
        let deregister = budget.acquire(CallKind::Deregister).await;
        assert_eq!(budget.free(), 0);
        // A finished change's slot stays kept for changes; a finished describe's goes on.
        drop(register);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!third.is_finished());
        assert_eq!(budget.free(), 1);
        drop(first);
        let _third = third.await.unwrap();
        assert_eq!(budget.free(), 1);
        drop(deregister);
        assert_eq!(budget.free(), 2);
    }

    #[tokio::test]
    async fn a_describe_that_gives_up_frees_its_place_for_the_next() {
        let budget = CallBudget::new(3);
        let held = budget.acquire(CallKind::Describe).await;
        let gave_up = tokio::time::timeout(
            Duration::from_millis(10),
            budget.acquire(CallKind::Describe),
        )
        .await;
        assert!(gave_up.is_err());
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.acquire(CallKind::Describe).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(held);
        let _next = waiting.await.unwrap();
        assert_eq!(budget.free(), 2);
    }
}
