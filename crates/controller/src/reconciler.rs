//! What every reconciler's controller loop shares (a leaf: it imports no other module of the
//! crate, so the reconcilers and the runtime that wires them both point here): the watch scope,
//! the debounce and concurrency of the load balancer reconcilers, and the outcome log.

use std::time::Duration;

use kube::runtime::controller::Config;
use kube::runtime::watcher;
use kube::{Api, Client, Resource};

/// How long events for one Service or Ingress are gathered before it is reconciled. (Bindings
/// have none: each new event would push the pass back again, so a long burst of endpoint changes
/// would starve it; their passes are paced instead, see [`crate::tgb`].)
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// Objects reconciled at once, per reconciler (a binding's paced pass waits in its slot; AWS calls are bounded by the
/// shared [`crate::budget`], not by this).
pub const CONCURRENCY: u16 = 32;

/// The controller configuration of the load balancer reconcilers (Services, Ingresses).
pub fn debounced() -> Config {
    Config::default()
        .debounce(DEBOUNCE)
        .concurrency(CONCURRENCY)
}

/// Which namespaces the controller watches: all, or one (`--watch-namespace`). Cluster-scoped
/// kinds (nodes, namespaces, classes) are always watched whole.
#[derive(Debug, Clone, Default)]
pub struct WatchScope {
    pub namespace: Option<String>,
}

impl WatchScope {
    /// The API of a namespaced kind within the scope.
    pub fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.namespace {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        }
    }
}

/// Logs what a controller's stream yields: a failed watch as a warning (it is retried with
/// backoff; until it lists, the caches stay empty and `/readyz` says so; a 403 names the verb the
/// ServiceAccount lacks), a failed reconcile at debug (its Event and metrics say it already).
pub(crate) async fn report_outcome<T, E: std::error::Error + 'static>(
    what: &'static str,
    result: Result<T, kube::runtime::controller::Error<E, watcher::Error>>,
) {
    match result {
        Ok(_) => {}
        Err(kube::runtime::controller::Error::QueueError(err)) => {
            tracing::warn!("{what}: a watch failed (retried with backoff): {err}");
        }
        Err(err) => tracing::debug!("{what}: {err}"),
    }
}
