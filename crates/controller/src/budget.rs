//! The ELB call budget every binding shares: at most a fixed number of target calls in flight.
//! A waiting deregistration goes before waiting registrations, and those before health looks (a
//! leaving pod must stop getting traffic first; a new one must get it before we poll anyone's
//! health); among calls of one kind, first come, first served, so no binding starves while
//! others are busy.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Target calls in flight at once, across all bindings.
pub const CALLS_IN_FLIGHT: usize = 8;

/// What a call does, in the order waiting calls are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Deregister = 0,
    Register = 1,
    Describe = 2,
}

const KINDS: usize = 3;

struct State {
    free: usize,
    waiting: [VecDeque<oneshot::Sender<Permit>>; KINDS],
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
}

impl Drop for Permit {
    fn drop(&mut self) {
        release(&self.inner);
    }
}

/// Hands the freed slot to the first waiter by kind, or back to the pool.
fn release(inner: &Arc<Inner>) {
    loop {
        let next = {
            let mut state = inner.lock();
            let next = state.waiting.iter_mut().find_map(VecDeque::pop_front);
            if next.is_none() {
                state.free += 1;
            }
            next
        };
        let Some(waiter) = next else { return };
        match waiter.send(Permit {
            inner: inner.clone(),
        }) {
            Ok(()) => return,
            // That waiter gave up: the slot goes to the next one (without a drop, which
            // would release it a second time).
            Err(permit) => std::mem::forget(permit),
        }
    }
}

impl CallBudget {
    pub fn new(calls: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    free: calls.max(1),
                    waiting: Default::default(),
                }),
            }),
        }
    }

    /// Waits for a slot for a call of `kind`.
    pub async fn acquire(&self, kind: CallKind) -> Permit {
        let receiver = {
            let mut state = self.inner.lock();
            let ahead = state.waiting[..=kind as usize]
                .iter()
                .any(|q| !q.is_empty());
            if state.free > 0 && !ahead {
                state.free -= 1;
                return Permit {
                    inner: self.inner.clone(),
                };
            }
            let (sender, receiver) = oneshot::channel();
            state.waiting[kind as usize].push_back(sender);
            receiver
        };
        match receiver.await {
            Ok(permit) => permit,
            // The budget itself is never dropped while a caller holds it.
            Err(_) => Permit {
                inner: self.inner.clone(),
            },
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
}
