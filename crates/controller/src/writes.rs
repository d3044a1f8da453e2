//! The controller's writes to Kubernetes, behind one small trait: a pod's status (readiness-gate
//! conditions), a binding's status, Events. Reads come from the watch caches; the reconcilers
//! never call the API for anything else (but the finalizer). Unit tests record these writes
//! instead of sending them.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, Recorder, Reporter};
use kube::{Api, Client};
use lb_api::{TargetGroupBinding, TargetGroupBindingStatus, keys};
use serde_json::json;

use crate::event_queue::EventQueue;

/// Kubernetes writes of the controller.
pub trait ClusterWrites: Send + Sync + 'static {
    /// A strategic-merge patch of pod `name`'s status; the patch carries the pod's uid, so a pod
    /// recreated under the same name is never touched. Ok(false): the pod is gone or recreated.
    fn patch_pod_status(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> impl Future<Output = Result<bool, kube::Error>> + Send;

    /// Writes a binding's status (server-side apply of the status subresource).
    fn apply_binding_status(
        &self,
        namespace: &str,
        name: &str,
        status: &TargetGroupBindingStatus,
    ) -> impl Future<Output = Result<(), kube::Error>> + Send;

    /// Publishes an Event about `regarding`. Events are best effort: a failure is logged, and
    /// the API server's write may still be under way when this returns.
    fn publish(&self, event: Event, regarding: ObjectReference) -> impl Future<Output = ()> + Send;
}

/// Shared writes (the reconciler and its gate writer hold the same).
impl<W: ClusterWrites> ClusterWrites for std::sync::Arc<W> {
    fn patch_pod_status(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> impl Future<Output = Result<bool, kube::Error>> + Send {
        (**self).patch_pod_status(namespace, name, patch)
    }

    fn apply_binding_status(
        &self,
        namespace: &str,
        name: &str,
        status: &TargetGroupBindingStatus,
    ) -> impl Future<Output = Result<(), kube::Error>> + Send {
        (**self).apply_binding_status(namespace, name, status)
    }

    fn publish(&self, event: Event, regarding: ObjectReference) -> impl Future<Output = ()> + Send {
        (**self).publish(event, regarding)
    }
}

/// [`ClusterWrites`] through the API server.
#[derive(Clone)]
pub struct KubeWrites {
    client: Client,
    events: EventQueue,
}

impl KubeWrites {
    pub fn new(client: Client) -> Self {
        let reporter = Reporter {
            controller: keys::EVENT_REPORTER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            events: EventQueue::new(Recorder::new(client.clone(), reporter)),
            client,
        }
    }
}

impl ClusterWrites for KubeWrites {
    async fn patch_pod_status(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<bool, kube::Error> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        match pods
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(_) => Ok(true),
            // Gone, or recreated under the same name (the uid no longer matches).
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn apply_binding_status(
        &self,
        namespace: &str,
        name: &str,
        status: &TargetGroupBindingStatus,
    ) -> Result<(), kube::Error> {
        let api: Api<TargetGroupBinding> = Api::namespaced(self.client.clone(), namespace);
        api.patch_status(
            name,
            &PatchParams::apply(keys::FIELD_MANAGER).force(),
            &Patch::Apply(json!({
                "apiVersion": "elbv2.k8s.aws/v1beta1",
                "kind": "TargetGroupBinding",
                "status": status,
            })),
        )
        .await
        .map(|_| ())
    }

    /// Queued, not awaited (see [`EventQueue`]).
    async fn publish(&self, event: Event, regarding: ObjectReference) {
        self.events.publish(event, regarding);
    }
}

/// Writes recorded in memory, for unit tests of the reconcilers.
#[cfg(test)]
pub mod recording {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    pub struct RecordingWrites {
        /// (pod, patch)
        pub pod_patches: Mutex<Vec<(String, serde_json::Value)>>,
        /// (binding, status)
        pub statuses: Mutex<Vec<(String, TargetGroupBindingStatus)>>,
        /// (kind of the object, its name, event reason)
        pub events: Mutex<Vec<(String, String, String)>>,
        /// Status writes still to fail, and the HTTP code they fail with.
        pub failing_status_writes: Mutex<(u32, u16)>,
    }

    impl RecordingWrites {
        pub fn event_reasons(&self) -> Vec<String> {
            let events = self.events.lock().unwrap();
            events.iter().map(|(_, _, r)| r.clone()).collect()
        }

        pub fn last_status(&self) -> Option<TargetGroupBindingStatus> {
            self.statuses.lock().unwrap().last().map(|(_, s)| s.clone())
        }

        /// The health summary of the status last written.
        pub fn last_health(&self) -> Option<String> {
            self.last_status().and_then(|s| s.target_health)
        }

        /// Status writes that succeeded.
        pub fn statuses_written(&self) -> usize {
            self.statuses.lock().unwrap().len()
        }

        /// The next `writes` status writes fail with HTTP `code`.
        pub fn fail_status_writes(&self, writes: u32, code: u16) {
            *self.failing_status_writes.lock().unwrap() = (writes, code);
        }

        /// The conditions last written to pod `name`.
        pub fn last_conditions(&self, name: &str) -> Vec<serde_json::Value> {
            let patches = self.pod_patches.lock().unwrap();
            patches
                .iter()
                .rev()
                .find(|(pod, _)| pod == name)
                .and_then(|(_, patch)| patch["status"]["conditions"].as_array().cloned())
                .unwrap_or_default()
        }

        /// The status each pod's gate was last set to, by pod name.
        pub fn gate_states(&self) -> std::collections::BTreeMap<String, String> {
            let patches = self.pod_patches.lock().unwrap();
            patches
                .iter()
                .map(|(pod, patch)| {
                    let status = patch["status"]["conditions"][0]["status"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    (pod.clone(), status)
                })
                .collect()
        }
    }

    impl ClusterWrites for RecordingWrites {
        async fn patch_pod_status(
            &self,
            _namespace: &str,
            name: &str,
            patch: &serde_json::Value,
        ) -> Result<bool, kube::Error> {
            let mut patches = self.pod_patches.lock().unwrap();
            patches.push((name.to_string(), patch.clone()));
            Ok(true)
        }

        async fn apply_binding_status(
            &self,
            _namespace: &str,
            name: &str,
            status: &TargetGroupBindingStatus,
        ) -> Result<(), kube::Error> {
            {
                let mut failing = self.failing_status_writes.lock().unwrap();
                if failing.0 > 0 {
                    failing.0 -= 1;
                    return Err(kube::Error::Api(
                        kube::core::Status::failure("the test says no", "Failed")
                            .with_code(failing.1)
                            .boxed(),
                    ));
                }
            }
            let mut statuses = self.statuses.lock().unwrap();
            statuses.push((name.to_string(), status.clone()));
            Ok(())
        }

        async fn publish(&self, event: Event, regarding: ObjectReference) {
            let mut events = self.events.lock().unwrap();
            events.push((
                regarding.kind.unwrap_or_default(),
                regarding.name.unwrap_or_default(),
                event.reason,
            ));
        }
    }
}
