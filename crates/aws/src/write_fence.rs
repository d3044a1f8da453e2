//! Mutating AWS calls refused while this replica does not lead.
//!
//! The reconcilers ask for leadership at the start of a pass, but a pass can take many seconds
//! (a load balancer, its listeners, rules and target groups, one call after another, each with the
//! SDK's retries). A replica that loses its Lease mid-pass must not go on changing AWS while the
//! new leader converges the same stack: two writers would race on the same rules and targets.
//! So every mutating call asks the fence before it is sent, and a call in flight is given up
//! (its SDK retries with it) the moment leadership is lost. What was already sent may have been
//! done; the next leader reads AWS afresh, and every create finds what exists first, so a call
//! given up halfway leaves nothing twice.
//!
//! The fence is open until [`WriteFence::follow`] ties it to a leadership (a single replica and
//! the tests never tie it).

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

/// Shared by every AWS client of a process (it sits in [`crate::AwsCalls`], which they all hold).
#[derive(Clone, Debug, Default)]
pub struct WriteFence {
    leading: Arc<OnceLock<watch::Receiver<bool>>>,
}

impl WriteFence {
    /// Ties the fence to `leading` (true while this replica holds the Lease). Only the first
    /// call ties it; later ones are ignored and return false.
    pub fn follow(&self, leading: watch::Receiver<bool>) -> bool {
        self.leading.set(leading).is_ok()
    }

    /// Whether a mutating call may be sent now.
    pub fn is_open(&self) -> bool {
        self.leading.get().is_none_or(|leading| *leading.borrow())
    }

    /// Resolves when the fence closes (leadership lost); never when it is not tied, or when the
    /// election has ended (its last word stands: a replica shutting down released the Lease
    /// after its passes ended).
    pub async fn closed(&self) {
        let Some(leading) = self.leading.get() else {
            return std::future::pending().await;
        };
        let mut leading = leading.clone();
        if leading.wait_for(|leading| !*leading).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn open_until_tied_then_follows_leadership_and_wakes_a_waiter_on_loss() {
        let fence = WriteFence::default();
        assert!(fence.is_open());
        let untied = tokio::time::timeout(Duration::from_millis(20), fence.closed()).await;
        assert!(untied.is_err(), "an untied fence never closes");

        let (leading, receiver) = watch::channel(true);
        assert!(fence.follow(receiver));
        assert!(!fence.follow(watch::channel(false).1), "tied only once");
        assert!(fence.is_open());

        let waiter = tokio::spawn({
            let fence = fence.clone();
            async move { fence.closed().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        leading.send(false).expect("the fence listens");
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the loss wakes the waiter")
            .expect("the waiter ends");
        assert!(!fence.is_open(), "a clone shares the fence");

        leading.send(true).expect("the fence listens");
        assert!(fence.is_open());
        drop(leading);
        let ended = tokio::time::timeout(Duration::from_millis(20), fence.closed()).await;
        assert!(ended.is_err(), "an ended election keeps its last word");
    }
}
