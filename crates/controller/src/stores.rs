//! The watch caches the reconcilers and webhooks read instead of the API, with the lookups they
//! need (filled by the shared watches of [`crate::runtime`]).

use std::sync::Arc;

use futures::FutureExt;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use lb_api::keys::kubernetes::SERVICE_NAME_LABEL;
use lb_api::{IngressClassParams, TargetGroupBinding};
use lb_model::gates::injection_enabled;

#[derive(Clone)]
pub struct Stores {
    pub bindings: Store<TargetGroupBinding>,
    pub namespaces: Store<Namespace>,
    pub pods: Store<Pod>,
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub nodes: Store<Node>,
    /// Filled only while the Ingress reconciler runs.
    pub ingresses: Store<Ingress>,
    pub ingress_classes: Store<IngressClass>,
    pub class_params: Store<IngressClassParams>,
}

impl Stores {
    pub fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get(&ObjectRef::new(name).within(namespace))
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods.get(&ObjectRef::new(name).within(namespace))
    }

    /// The pods of `namespace`.
    pub fn pods_in(&self, namespace: &str) -> Vec<Arc<Pod>> {
        self.pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .collect()
    }

    /// The EndpointSlices of Service `namespace/service`.
    pub fn slices_of(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>> {
        self.slices
            .state()
            .into_iter()
            .filter(|s| {
                s.metadata.namespace.as_deref() == Some(namespace)
                    && s.labels().get(SERVICE_NAME_LABEL).map(String::as_str) == Some(service)
            })
            .collect()
    }

    /// The bindings of `namespace`.
    pub fn bindings_in(&self, namespace: &str) -> Vec<Arc<TargetGroupBinding>> {
        self.bindings
            .state()
            .into_iter()
            .filter(|b| b.metadata.namespace.as_deref() == Some(namespace))
            .collect()
    }

    pub fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        self.namespaces
            .get(&ObjectRef::new(namespace))
            .and_then(|ns| ns.metadata.labels.clone())
    }

    /// The caches that have not had their first full list yet (the IngressClass caches too when
    /// `ingresses`). Polled: a store's readiness future wakes only its last poller.
    pub fn unsynced(&self, ingresses: bool) -> Vec<&'static str> {
        let mut caches = vec![
            ("targetgroupbindings", listed(&self.bindings)),
            ("pods", listed(&self.pods)),
            ("services", listed(&self.services)),
            ("endpointslices", listed(&self.slices)),
            ("nodes", listed(&self.nodes)),
            ("namespaces", listed(&self.namespaces)),
        ];
        // The Ingress cache is not polled here: its reconciler's runtime waits for it, and a poll
        // here would take the runtime's wake-up (a store's readiness wakes only its last poller).
        if ingresses {
            caches.push(("ingressclasses", listed(&self.ingress_classes)));
            caches.push(("ingressclassparams", listed(&self.class_params)));
        }
        caches
            .into_iter()
            .filter(|(_, synced)| !synced)
            .map(|(name, _)| name)
            .collect()
    }

    /// Waits until the caches a pass reads have had their first full list (the IngressClass
    /// caches too when `ingresses`): a binding pass over a half-listed cache would take endpoints
    /// not listed yet for gone and deregister them; an Ingress pass would take a class not listed
    /// yet for gone and delete its Ingresses' rules.
    pub async fn synced(&self, ingresses: bool) {
        while !self.unsynced(ingresses).is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Whether `namespace` is labelled for readiness-gate injection.
    pub fn injection_enabled(&self, namespace: &str) -> bool {
        injection_enabled(self.namespace_labels(namespace).as_ref())
    }
}

/// Whether `store` has had its first full list (polled, not awaited: see [`Stores::unsynced`]).
fn listed<K>(store: &Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store.wait_until_ready().now_or_never().is_some()
}

/// Stores filled by hand, for unit tests.
#[cfg(test)]
pub mod filled {
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::{reflector, watcher};

    use super::*;

    /// Writers for each store of a [`Stores`].
    pub struct Fill {
        pub bindings: Writer<TargetGroupBinding>,
        pub namespaces: Writer<Namespace>,
        pub pods: Writer<Pod>,
        pub services: Writer<Service>,
        pub slices: Writer<EndpointSlice>,
        pub nodes: Writer<Node>,
    }

    pub fn stores() -> (Stores, Fill) {
        let (bindings, bindings_w) = reflector::store();
        let (namespaces, namespaces_w) = reflector::store();
        let (pods, pods_w) = reflector::store();
        let (services, services_w) = reflector::store();
        let (slices, slices_w) = reflector::store();
        let (nodes, nodes_w) = reflector::store();
        let stores = Stores {
            bindings,
            namespaces,
            pods,
            services,
            slices,
            nodes,
            ingresses: reflector::store().0,
            ingress_classes: reflector::store().0,
            class_params: reflector::store().0,
        };
        let fill = Fill {
            bindings: bindings_w,
            namespaces: namespaces_w,
            pods: pods_w,
            services: services_w,
            slices: slices_w,
            nodes: nodes_w,
        };
        (stores, fill)
    }

    /// Puts (or replaces) an object in a store.
    pub fn put<K>(writer: &mut Writer<K>, object: K)
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        writer.apply_watcher_event(&watcher::Event::Apply(object));
    }

    /// Removes an object from a store.
    pub fn remove<K>(writer: &mut Writer<K>, object: K)
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        writer.apply_watcher_event(&watcher::Event::Delete(object));
    }
}
