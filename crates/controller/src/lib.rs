//! lb-controller's reconcilers, readiness gates and webhooks.
//!
//! `run` wires one shared watch per resource (pods, Services, EndpointSlices, nodes, namespaces,
//! TargetGroupBindings; managed fields stripped to save memory) into the TargetGroupBinding
//! reconciler and the pod webhook, which both read those caches.

pub mod desired;
pub mod error;
pub mod gates;
pub mod metrics;
pub mod polling;
pub mod reconciler;
pub mod selectors;
pub mod termination;
pub mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::PredicateConfig;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use lb_api::{TargetGroupBinding, TargetType};
use lb_aws::TargetGroups;

pub use reconciler::{Context, Stores};

/// How long events for one binding are gathered before it is reconciled.
pub const DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(50);

use crate::selectors::service_selects;

/// Where to serve Prometheus metrics (plain HTTP, `/metrics`), and the AWS call counts to include.
pub struct MetricsOptions {
    pub listen: SocketAddr,
    pub calls: Arc<lb_aws::AwsCalls>,
}

pub struct WebhookOptions {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The termination hold for pods behind a binding (zero: none); see [`termination`].
    pub termination_hold: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Webhook(#[from] webhook::WebhookError),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

async fn listen(addr: SocketAddr) -> Result<tokio::net::TcpListener, RunError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Listen { addr, source })
}

/// A reflected watch of all objects of `K`, with managed fields stripped.
fn reflect<K>(
    client: &Client,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let stream = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default())
            .modify(|o| o.managed_fields_mut().clear())
            .default_backoff(),
    )
    // Deletions matter too: a pod gone, a Service removed.
    .touched_objects();
    (store, stream)
}

/// Runs the controller until `shutdown` resolves. Returns the context (for its counters).
pub async fn run<T: TargetGroups>(
    client: Client,
    aws: T,
    webhook: Option<WebhookOptions>,
    metrics: Option<MetricsOptions>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ready: Option<tokio::sync::oneshot::Sender<Arc<Context<T>>>>,
) -> Result<(), RunError> {
    let bindings_api: Api<TargetGroupBinding> = Api::all(client.clone());
    // Events for one binding within the debounce window are merged into one pass: a rollout's
    // many pod updates make a few batched AWS calls instead of one each.
    let controller = Controller::new(bindings_api, watcher::Config::default()).with_config(
        kube::runtime::controller::Config::default()
            .debounce(DEBOUNCE)
            .concurrency(16),
    );
    let bindings = controller.store();
    let (pods, pod_events) = reflect::<Pod>(&client);
    // Only pod changes that matter to targets trigger a pass; not the Ready flips and gate
    // conditions our own writes cause (the EndpointSlice reports readiness anyway).
    let pod_events = pod_events.predicate_filter(pod_relevance, PredicateConfig::default());
    let (services, service_events) = reflect::<Service>(&client);
    let (slices, slice_events) = reflect::<EndpointSlice>(&client);
    let (nodes, node_events) = reflect::<Node>(&client);
    let (namespaces, namespace_events) = reflect::<Namespace>(&client);

    let webhook_task = match webhook {
        Some(options) => {
            let tls = webhook::tls_config(&options.cert, &options.key)?;
            let listener = listen(options.listen).await?;
            let state = webhook::WebhookState {
                bindings: bindings.clone(),
                services: services.clone(),
                namespaces: namespaces.clone(),
                termination_hold: options.termination_hold,
            };
            Some(tokio::spawn(webhook::serve(listener, tls, state)))
        }
        None => None,
    };
    let namespaces_task = tokio::spawn(namespace_events.for_each(|_| async {}));

    let stores = Stores {
        bindings: bindings.clone(),
        namespaces: namespaces.clone(),
        pods: pods.clone(),
        services: services.clone(),
        slices: slices.clone(),
        nodes: nodes.clone(),
    };
    let reporter = Reporter {
        controller: "lb-controller".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        aws,
        stores,
        Recorder::new(client.clone(), reporter),
    ));
    let metrics_task = match metrics {
        Some(options) => {
            let listener = listen(options.listen).await?;
            let ctx = ctx.clone();
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let text = metrics::render(&ctx.metrics, &options.calls);
                    async move { text }
                }),
            );
            Some(tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, app).await {
                    tracing::warn!("metrics server: {err}");
                }
            }))
        }
        None => None,
    };
    if let Some(ready) = ready {
        let _ = ready.send(ctx.clone());
    }

    let by_service = {
        let bindings = bindings.clone();
        move |service: Service| {
            bindings_of_service(
                &bindings,
                &service.namespace().unwrap_or_default(),
                &service.name_any(),
            )
        }
    };
    let by_slice = {
        let bindings = bindings.clone();
        move |slice: EndpointSlice| match slice.labels().get("kubernetes.io/service-name") {
            Some(name) => {
                bindings_of_service(&bindings, &slice.namespace().unwrap_or_default(), name)
            }
            None => Vec::new(),
        }
    };
    let by_pod = {
        let bindings = bindings.clone();
        let services = services.clone();
        move |pod: Pod| bindings_of_pod(&bindings, &services, &pod)
    };
    let by_node = {
        let bindings = bindings.clone();
        move |_: Node| {
            bindings
                .state()
                .iter()
                .filter(|b| b.spec.target_type == Some(TargetType::Instance))
                .map(|b| ObjectRef::from_obj(&**b))
                .collect::<Vec<_>>()
        }
    };

    controller
        .watches_stream(service_events, by_service)
        .watches_stream(slice_events, by_slice)
        .watches_stream(pod_events, by_pod)
        .watches_stream(node_events, by_node)
        .graceful_shutdown_on(shutdown)
        .run(reconciler::reconcile, reconciler::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!("reconcile: {err}");
            }
        })
        .await;
    namespaces_task.abort();
    for task in [webhook_task, metrics_task].into_iter().flatten() {
        task.abort();
    }
    Ok(())
}

fn bindings_of_service(
    bindings: &Store<TargetGroupBinding>,
    namespace: &str,
    service: &str,
) -> Vec<ObjectRef<TargetGroupBinding>> {
    bindings
        .state()
        .iter()
        .filter(|b| {
            b.namespace().as_deref() == Some(namespace) && b.spec.service_ref.name == service
        })
        .map(|b| ObjectRef::from_obj(&**b))
        .collect()
}

/// Bindings whose Service selects the pod: its endpoints and its gates are theirs.
fn bindings_of_pod(
    bindings: &Store<TargetGroupBinding>,
    services: &Store<Service>,
    pod: &Pod,
) -> Vec<ObjectRef<TargetGroupBinding>> {
    let namespace = pod.namespace().unwrap_or_default();
    bindings
        .state()
        .iter()
        .filter(|b| b.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|b| {
            services
                .get(&ObjectRef::new(&b.spec.service_ref.name).within(&namespace))
                .is_some_and(|s| {
                    service_selects(
                        s.spec.as_ref().and_then(|s| s.selector.as_ref()),
                        pod.metadata.labels.as_ref(),
                    )
                })
        })
        .map(|b| ObjectRef::from_obj(&**b))
        .collect()
}

/// What of a pod matters to its bindings: labels (which Services select it), its address, its
/// containers' readiness, whether it is being deleted, and which gates it carries.
fn pod_relevance(pod: &Pod) -> Option<u64> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    pod.metadata.labels.hash(&mut hasher);
    pod.metadata.deletion_timestamp.is_some().hash(&mut hasher);
    let status = pod.status.as_ref();
    status.and_then(|s| s.pod_ip.as_ref()).hash(&mut hasher);
    status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "ContainersReady"))
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
