//! The writes both load balancer reconcilers make on the objects they serve (Services, Ingresses):
//! their finalizers, and their Events.

use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use lb_model::status::{MAX_MESSAGE, truncate};
use serde_json::json;

use crate::writes::{ClusterWrites, KubeWrites};

/// Sets `object`'s finalizers, only if it has not changed meanwhile (its resourceVersion).
pub async fn set_finalizers<K>(
    api: &Api<K>,
    object: &K,
    finalizers: Vec<String>,
) -> Result<(), kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": object.resource_version(),
    }});
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await?;
    Ok(())
}

/// An Event about `object`, its message cut to what the API takes.
pub async fn publish<K: Resource<DynamicType = ()>>(
    writes: &KubeWrites,
    object: &K,
    type_: EventType,
    reason: &str,
    message: &str,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(truncate(message, MAX_MESSAGE)),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    writes.publish(event, object.object_ref(&())).await;
}
