//! The one reporter: Events about bindings and pods, and bindings' status, as users read them
//! (`kubectl describe tgb`, `kubectl get tgb`, `kubectl get events`).

use std::collections::HashSet;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::runtime::events::{Event, EventType};
use lb_api::TargetGroupBinding;
use lb_model::plan::PodRef;
use lb_model::status::{BindingStatus, MAX_MESSAGE, status_update, truncate};

use crate::error::ControllerError;
use crate::status_writer::StatusWriter;
use crate::writes::ClusterWrites;

fn event(type_: EventType, reason: &str, message: &str, action: &str) -> Event {
    Event {
        type_,
        reason: reason.to_string(),
        note: Some(truncate(message, MAX_MESSAGE)),
        action: action.to_string(),
        secondary: None,
    }
}

/// A Normal Event on the binding (targets registered, deregistered).
pub async fn note<W: ClusterWrites>(
    writes: &W,
    binding: &TargetGroupBinding,
    reason: &str,
    message: &str,
) {
    let event = event(EventType::Normal, reason, message, "Reconcile");
    writes.publish(event, binding.object_ref(&())).await;
}

/// A Warning on the binding (its targets cannot be reached).
pub async fn warn<W: ClusterWrites>(
    writes: &W,
    binding: &TargetGroupBinding,
    reason: &str,
    message: &str,
) {
    let event = event(EventType::Warning, reason, message, "Reconcile");
    writes.publish(event, binding.object_ref(&())).await;
}

/// A Warning on a pod.
pub async fn warn_pod<W: ClusterWrites>(
    writes: &W,
    namespace: &str,
    pod: &PodRef,
    reason: &str,
    message: &str,
) {
    let regarding = ObjectReference {
        api_version: Some("v1".to_string()),
        kind: Some("Pod".to_string()),
        name: Some(pod.name.clone()),
        namespace: Some(namespace.to_string()),
        uid: Some(pod.uid.clone()),
        ..ObjectReference::default()
    };
    let event = event(EventType::Warning, reason, message, "CheckReadinessGate");
    writes.publish(event, regarding).await;
}

/// Hands the binding's status to `writer` if it says something new (from what the watch cache
/// shows); whether it did.
pub fn status<W: ClusterWrites>(
    writer: &StatusWriter<W>,
    binding: &TargetGroupBinding,
    wanted: &BindingStatus,
) -> bool {
    let Some(status) = status_update(binding, wanted, Timestamp::now()) else {
        return false;
    };
    let namespace = binding.metadata.namespace.clone().unwrap_or_default();
    let name = binding.metadata.name.clone().unwrap_or_default();
    writer.submit(&namespace, &name, status)
}

/// A failed pass: a Warning naming the problem, and `Ready=False` with its reason.
pub async fn failure<W: ClusterWrites>(
    writes: &W,
    writer: &StatusWriter<W>,
    binding: &TargetGroupBinding,
    err: &ControllerError,
) {
    let message = err.to_string();
    let warning = event(EventType::Warning, err.reason(), &message, "Reconcile");
    writes.publish(warning, binding.object_ref(&())).await;
    let wanted = BindingStatus {
        ready: false,
        reason: err.reason().to_string(),
        message,
        target_health: None,
    };
    status(writer, binding, &wanted);
}

/// Remembers which pods were reported, so that each is reported once (by uid).
#[derive(Default)]
pub struct ReportedOnce {
    uids: Mutex<HashSet<String>>,
}

impl ReportedOnce {
    /// Whether `uid` is reported for the first time (and remembers it).
    pub fn first_time(&self, uid: &str) -> bool {
        let mut uids = self.uids.lock().unwrap_or_else(|e| e.into_inner());
        if uids.len() > 100_000 {
            uids.clear(); // A bound, not a cache: at worst a pod is reported twice.
        }
        uids.insert(uid.to_string())
    }
}
