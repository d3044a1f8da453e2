//! The watch caches the reconcilers and webhooks read instead of the API, with the lookups they
//! need (filled by the shared watches of [`crate::runtime`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{Stream, StreamExt};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
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
    /// Which of these caches have had their first full list.
    pub listed: CachesListed,
}

/// Whether a watch's cache has had its first full list. The watch's own stream sets it when the
/// list ends (see [`Listed::marked_by`]), and it is read without polling the store's
/// readiness future: that future wakes only its last poller, and kube-runtime's controllers await
/// it, so a probe polling it could take a controller's wake-up and leave it waiting.
#[derive(Clone, Debug, Default)]
pub struct Listed(Arc<AtomicBool>);

impl Listed {
    pub fn is_listed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    #[cfg(test)]
    pub(crate) fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// `events`, a reflector's (each event is in its store when it comes out), setting this flag
    /// at the end of the first list.
    pub(crate) fn marked_by<K, S>(&self, events: S) -> impl Stream<Item = S::Item> + use<K, S>
    where
        S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    {
        let flag = self.0.clone();
        events.inspect(move |event| {
            if let Ok(watcher::Event::InitDone) = event {
                flag.store(true, Ordering::Release);
            }
        })
    }
}

/// One [`Listed`] per cache of [`Stores`].
#[derive(Clone, Debug, Default)]
pub struct CachesListed {
    pub bindings: Listed,
    pub namespaces: Listed,
    pub pods: Listed,
    pub services: Listed,
    pub slices: Listed,
    pub nodes: Listed,
    pub ingresses: Listed,
    pub ingress_classes: Listed,
    pub class_params: Listed,
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

    /// The caches that have not had their first full list yet (the Ingress caches too when
    /// `ingresses`).
    pub fn unsynced(&self, ingresses: bool) -> Vec<&'static str> {
        let listed = &self.listed;
        let mut caches = vec![
            ("targetgroupbindings", &listed.bindings),
            ("pods", &listed.pods),
            ("services", &listed.services),
            ("endpointslices", &listed.slices),
            ("nodes", &listed.nodes),
            ("namespaces", &listed.namespaces),
        ];
        if ingresses {
            caches.push(("ingresses", &listed.ingresses));
            caches.push(("ingressclasses", &listed.ingress_classes));
            caches.push(("ingressclassparams", &listed.class_params));
        }
        caches
            .into_iter()
            .filter(|(_, listed)| !listed.is_listed())
            .map(|(name, _)| name)
            .collect()
    }

    /// Waits until the caches a pass reads have had their first full list (the Ingress caches
    /// too when `ingresses`): a binding pass over a half-listed cache would take endpoints
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
        pub ingresses: Writer<Ingress>,
        pub ingress_classes: Writer<IngressClass>,
    }

    pub fn stores() -> (Stores, Fill) {
        let (bindings, bindings_w) = reflector::store();
        let (namespaces, namespaces_w) = reflector::store();
        let (pods, pods_w) = reflector::store();
        let (services, services_w) = reflector::store();
        let (slices, slices_w) = reflector::store();
        let (nodes, nodes_w) = reflector::store();
        let (ingresses, ingresses_w) = reflector::store();
        let (ingress_classes, ingress_classes_w) = reflector::store();
        let stores = Stores {
            bindings,
            namespaces,
            pods,
            services,
            slices,
            nodes,
            ingresses,
            ingress_classes,
            class_params: reflector::store().0,
            listed: CachesListed::default(),
        };
        let fill = Fill {
            bindings: bindings_w,
            namespaces: namespaces_w,
            pods: pods_w,
            services: services_w,
            slices: slices_w,
            nodes: nodes_w,
            ingresses: ingresses_w,
            ingress_classes: ingress_classes_w,
        };
        (stores, fill)
    }

    /// Every cache marked as listed, as after the watches' first lists.
    pub fn all_listed(stores: &Stores) {
        let listed = &stores.listed;
        for flag in [
            &listed.bindings,
            &listed.namespaces,
            &listed.pods,
            &listed.services,
            &listed.slices,
            &listed.nodes,
            &listed.ingresses,
            &listed.ingress_classes,
            &listed.class_params,
        ] {
            flag.mark();
        }
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

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kube::runtime::reflector;

    use super::*;

    fn namespace(name: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    #[tokio::test]
    async fn a_cache_is_listed_once_its_first_list_is_in_its_store() {
        let (store, writer) = reflector::store::<Namespace>();
        let listed = Listed::default();
        let list = futures::stream::iter([
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(namespace("a"))),
            Ok(watcher::Event::InitApply(namespace("b"))),
            Ok(watcher::Event::InitDone),
        ]);
        let mut events = std::pin::pin!(listed.marked_by(reflector::reflector(writer, list)));
        for _ in 0..3 {
            events.next().await;
            assert!(!listed.is_listed());
        }
        events.next().await;
        assert!(listed.is_listed());
        assert_eq!(store.len(), 2, "the whole list is in the store");
    }

    #[test]
    fn the_caches_not_listed_yet_are_named_and_the_ingress_ones_only_with_ingresses() {
        let (stores, _fill) = filled::stores();
        let all = stores.unsynced(true);
        assert_eq!(all.len(), 9, "{all:?}");
        assert_eq!(stores.unsynced(false).len(), 6);
        // Flags are shared with the watches' streams that set them.
        let listed = stores.listed.clone();
        for flag in [
            &listed.bindings,
            &listed.namespaces,
            &listed.pods,
            &listed.services,
            &listed.slices,
            &listed.nodes,
        ] {
            flag.mark();
        }
        assert!(stores.unsynced(false).is_empty());
        assert_eq!(
            stores.unsynced(true),
            vec!["ingresses", "ingressclasses", "ingressclassparams"]
        );
        listed.ingresses.mark();
        listed.ingress_classes.mark();
        listed.class_params.mark();
        assert!(stores.unsynced(true).is_empty());
    }
}
