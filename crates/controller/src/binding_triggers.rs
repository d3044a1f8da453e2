//! Which TargetGroupBindings an event concerns: a Service's, an EndpointSlice's, a pod's or a
//! node's change re-queues only the bindings it can change, and a pod's update only when what
//! bindings read of it changed ([`pod_relevance`]).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use lb_api::keys::kubernetes::{CONTAINERS_READY, SERVICE_NAME_LABEL};
use lb_api::{TargetGroupBinding, TargetType};
use lb_model::selectors::service_selects;

use crate::stores::Stores;

type Refs = Vec<ObjectRef<TargetGroupBinding>>;

fn refs<'a>(bindings: impl Iterator<Item = &'a Arc<TargetGroupBinding>>) -> Refs {
    bindings.map(|b| ObjectRef::from_obj(&**b)).collect()
}

fn bindings_of_service(stores: &Stores, namespace: &str, service: &str) -> Refs {
    let bindings = stores.bindings_in(namespace);
    refs(
        bindings
            .iter()
            .filter(|b| b.spec.service_ref.name == service),
    )
}

pub(crate) fn by_service(stores: &Stores) -> impl Fn(Service) -> Refs + Send + Sync + 'static {
    let stores = stores.clone();
    move |service| {
        bindings_of_service(
            &stores,
            &service.namespace().unwrap_or_default(),
            &service.name_any(),
        )
    }
}

pub(crate) fn by_slice(stores: &Stores) -> impl Fn(EndpointSlice) -> Refs + Send + Sync + 'static {
    let stores = stores.clone();
    move |slice| match slice.labels().get(SERVICE_NAME_LABEL) {
        Some(name) => bindings_of_service(&stores, &slice.namespace().unwrap_or_default(), name),
        None => Vec::new(),
    }
}

/// Bindings whose Service selects the pod: its endpoints and its gates are theirs.
pub(crate) fn by_pod(stores: &Stores) -> impl Fn(Pod) -> Refs + Send + Sync + 'static {
    let stores = stores.clone();
    move |pod| {
        let namespace = pod.namespace().unwrap_or_default();
        let bindings = stores.bindings_in(&namespace);
        refs(bindings.iter().filter(|b| {
            stores
                .service(&namespace, &b.spec.service_ref.name)
                .is_some_and(|s| {
                    service_selects(
                        s.spec.as_ref().and_then(|s| s.selector.as_ref()),
                        pod.metadata.labels.as_ref(),
                    )
                })
        }))
    }
}

/// Bindings that may have instance targets: those that say so, and those that say nothing (their
/// type comes from the target group; the webhook fills it in, unless it was away).
pub(crate) fn by_node(stores: &Stores) -> impl Fn(Node) -> Refs + Send + Sync + 'static {
    let stores = stores.clone();
    move |_| {
        let bindings = stores.bindings.state();
        refs(
            bindings
                .iter()
                .filter(|b| b.spec.target_type != Some(TargetType::Ip)),
        )
    }
}

/// What of a pod matters to its bindings: labels (which Services select it), its address, its
/// containers' readiness, whether it is being deleted, and which gates it carries.
pub(crate) fn pod_relevance(pod: &Pod) -> Option<u64> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    pod.metadata.labels.hash(&mut hasher);
    pod.metadata.deletion_timestamp.is_some().hash(&mut hasher);
    let status = pod.status.as_ref();
    status.and_then(|s| s.pod_ip.as_ref()).hash(&mut hasher);
    status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == CONTAINERS_READY))
        .map(|c| c.status.as_str())
        .hash(&mut hasher);
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .map(|g| {
            g.iter()
                .map(|g| g.condition_type.as_str())
                .collect::<Vec<_>>()
        })
        .hash(&mut hasher);
    Some(hasher.finish())
}
