//! Each node's status manager: the one writer of its pods' statuses, as the kubelet's is.
//!
//! The kubelet writes pod statuses one at a time from a single loop, and a pod's newest status
//! replaces one of its own still waiting to be sent. The sandbox once let every pod worker write
//! its own status the moment it changed: at 1,000 pods starting at once the API server held some
//! 850 pod status patches in flight, which took 1.5 s on average and 2-5 s for nearly half of
//! them (profiled 2026-12-03), and every other client's writes, the controller's gate writes
//! among them, queued behind them. No real cluster sends that: its status writers are one per
//! node.
//!
//! A write refused because the pod is gone or was recreated (404, 409: every patch carries the
//! pod's uid) is dropped; the worker learns of the pod's end from its watch. So is one the API
//! server calls invalid (400, 422: the same patch would be refused again). Any other failure is
//! sent again, unless a newer status of that pod came meanwhile, after the writer has paused a
//! moment, as the kubelet backs off an API server in trouble.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use tokio::sync::Notify;

use super::pod_worker::PodKey;

/// The writer's pause after a write that failed for a reason that can pass.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// The statuses waiting to be written for one node's pods, newest per pod.
#[derive(Default)]
pub(crate) struct StatusQueue {
    pending: Mutex<Pending>,
    /// Notified when a status is queued.
    queued: Notify,
}

#[derive(Default)]
struct Pending {
    /// Pod uids in the order their (oldest unwritten) status was queued.
    order: VecDeque<String>,
    patches: HashMap<String, (PodKey, serde_json::Value)>,
}

impl StatusQueue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `patch` (a strategic-merge patch of the pod's status) for the pod; it replaces any
    /// of the pod's statuses not yet written, and keeps that one's place in the queue.
    pub fn submit(&self, key: &PodKey, patch: serde_json::Value) {
        let mut pending = self.lock();
        if pending
            .patches
            .insert(key.uid.clone(), (key.clone(), patch))
            .is_none()
        {
            pending.order.push_back(key.uid.clone());
        }
        drop(pending);
        self.queued.notify_one();
    }

    /// Puts back a status whose write failed, unless a newer one of the pod was queued meanwhile.
    fn retry(&self, key: PodKey, patch: serde_json::Value) {
        let mut pending = self.lock();
        if !pending.patches.contains_key(&key.uid) {
            pending.order.push_back(key.uid.clone());
            pending.patches.insert(key.uid.clone(), (key, patch));
        }
    }

    /// The oldest queued status, if any.
    fn take(&self) -> Option<(PodKey, serde_json::Value)> {
        let mut pending = self.lock();
        while let Some(uid) = pending.order.pop_front() {
            if let Some(entry) = pending.patches.remove(&uid) {
                return Some(entry);
            }
        }
        None
    }

    /// Statuses waiting to be written.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().patches.len()
    }
}

/// Writes the queue's statuses one at a time, for as long as the task lives.
pub(crate) async fn run_writer(client: Client, queue: Arc<StatusQueue>) {
    loop {
        let Some((key, patch)) = queue.take() else {
            // `notify_one` keeps a permit when no one waits: a status queued between `take` and
            // here is not missed.
            queue.queued.notified().await;
            continue;
        };
        let api: Api<Pod> = Api::namespaced(client.clone(), &key.namespace);
        match api
            .patch_status(
                &key.name,
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {
                tracing::debug!(pod = %key, "pod gone or replaced: {}", status.message);
            }
            Err(kube::Error::Api(status)) if is_invalid(status.code) => {
                tracing::warn!(pod = %key, "pod status refused as invalid, dropped: {}", status.message);
            }
            Err(err) => {
                tracing::warn!(pod = %key, "posting pod status failed, retrying: {err}");
                queue.retry(key, patch);
                tokio::time::sleep(PAUSE_AFTER_FAILURE).await;
            }
        }
    }
}

/// The API server found the patch itself wrong: sending it again cannot mend that. (Other client
/// errors can pass: 401 and 403 while credentials or RBAC settle, 408, 429.)
fn is_invalid(code: u16) -> bool {
    code == 400 || code == 422
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(uid: &str) -> PodKey {
        PodKey {
            namespace: "ns".into(),
            name: format!("pod-{uid}"),
            uid: uid.into(),
        }
    }

    #[test]
    fn a_newer_status_replaces_the_queued_one_and_keeps_its_place() {
        let queue = StatusQueue::default();
        queue.submit(&key("a"), json!(1));
        queue.submit(&key("b"), json!(2));
        queue.submit(&key("a"), json!(3));
        assert_eq!(queue.len(), 2);
        let (first, patch) = queue.take().expect("a status");
        assert_eq!((first.uid.as_str(), patch), ("a", json!(3)));
        let (second, patch) = queue.take().expect("a status");
        assert_eq!((second.uid.as_str(), patch), ("b", json!(2)));
        assert!(queue.take().is_none());
    }

    #[test]
    fn a_failed_write_comes_back_last_unless_a_newer_status_came() {
        let queue = StatusQueue::default();
        queue.submit(&key("a"), json!(1));
        queue.submit(&key("b"), json!(2));
        let (a, patch) = queue.take().expect("a status");
        queue.retry(a, patch);
        let (b, patch) = queue.take().expect("a status");
        assert_eq!(b.uid, "b");
        queue.submit(&key("b"), json!(4));
        queue.retry(b, patch);
        let order: Vec<_> = std::iter::from_fn(|| queue.take())
            .map(|(key, patch)| (key.uid, patch))
            .collect();
        assert_eq!(
            order,
            vec![("a".to_string(), json!(1)), ("b".to_string(), json!(4))]
        );
    }

    #[test]
    fn only_an_invalid_patch_is_dropped() {
        assert!(is_invalid(400));
        assert!(is_invalid(422));
        for passing in [401, 403, 408, 429, 500, 503] {
            assert!(!is_invalid(passing), "{passing}");
        }
    }
}
