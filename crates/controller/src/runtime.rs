//! The controller's runtime: one shared watch per resource (pods, Services, EndpointSlices, nodes,
//! namespaces, TargetGroupBindings; managed fields stripped to save memory) feeding the caches
//! every reconciler and webhook reads, the binding reconciler fed by [`crate::binding_triggers`],
//! and the servers (webhooks, metrics), all stopped together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, Store};
use kube::runtime::utils::PredicateConfig;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use lb_api::{IngressClassParams, TargetGroupBinding};
use lb_aws::deployer::apply::LoadBalancers;
use lb_aws::{AwsCalls, Certificates, Ec2, Elbv2, ImportedCertificates};

use crate::binding_triggers::{by_node, by_pod, by_service, by_slice, pod_relevance};
use crate::gateway::{self, GatewayOptions};
use crate::health;
use crate::ingress::{self, IngressOptions};
use crate::leader::{LeaderElector, LeaderOptions, Leadership};
use crate::metrics;
use crate::reconciler::{CONCURRENCY, WatchScope, report_outcome};
use crate::service::{self, ServiceOptions};
use crate::slim;
use crate::stores::{CachesListed, Listed, Stores};
use crate::tgb::{self, Context};
use crate::webhook::{self, WebhookState};
use crate::writes::KubeWrites;

/// The load balancer reconcilers to run beside the binding reconciler, each when given.
pub struct LoadBalancerOptions<L, E, C> {
    /// Services of type LoadBalancer -> NLBs.
    pub services: Option<ServiceOptions<L, E>>,
    /// Ingresses -> ALBs.
    pub ingresses: Option<IngressOptions<L, E, C>>,
    /// Gateways of an ALB GatewayClass -> ALBs (when the Gateway API CRDs are installed).
    pub gateways: Option<GatewayOptions<L, E, C>>,
}

/// How long shutdown waits for the gate and status writes passes handed over.
const WRITES_FLUSH: Duration = Duration::from_secs(5);

/// Where to serve Prometheus metrics (plain HTTP, `/metrics`), and the AWS calls to include.
pub struct MetricsOptions {
    pub listen: SocketAddr,
    pub calls: Arc<AwsCalls>,
}

pub struct WebhookOptions {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The termination hold for pods behind a binding (zero: none).
    pub termination_hold: Duration,
    /// What the Service mutator gives `type: LoadBalancer` Services without a class (None: the
    /// mutator leaves them alone).
    pub load_balancer_class: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("webhook certificate: {0}")]
    Tls(#[from] webhook::TlsError),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Listens on `addr`; for all IPv6 addresses (`[::]`, what `:port` means) with IPv4 too, or on
/// all IPv4 addresses where the host has no IPv6.
async fn listen(addr: SocketAddr) -> Result<tokio::net::TcpListener, RunError> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => Ok(listener),
        Err(_) if addr.ip() == std::net::Ipv6Addr::UNSPECIFIED => {
            let v4 = SocketAddr::from(([0, 0, 0, 0], addr.port()));
            tokio::net::TcpListener::bind(v4)
                .await
                .map_err(|source| RunError::Listen { addr: v4, source })
        }
        Err(source) => Err(RunError::Listen { addr, source }),
    }
}

/// What a watched kind must be to be cached.
pub(crate) trait Cached:
    Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Cached for K where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// A reflected watch of the objects of `K` in `api`, with managed fields stripped: its cache,
/// whether that has had its first full list, and the objects touched (deletions matter too: a pod
/// gone, a Service removed).
pub(crate) fn reflect<K: Cached>(
    api: Api<K>,
) -> (
    Store<K>,
    Listed,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
) {
    reflect_slim(api, |_| {})
}

/// [`reflect`], keeping only what `slim` leaves of each object (see [`crate::slim`]).
pub(crate) fn reflect_slim<K: Cached>(
    api: Api<K>,
    slim: fn(&mut K),
) -> (
    Store<K>,
    Listed,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
) {
    let (store, listed, events) = reflect_events(api, slim);
    (store, listed, events.touched_objects())
}

/// The watch of [`reflect_slim`] as its events. The flag is set by the stream itself, once the
/// first list has reached the cache (see [`Listed`]).
fn reflect_events<K: Cached>(
    api: Api<K>,
    slim: fn(&mut K),
) -> (
    Store<K>,
    Listed,
    impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
) {
    let (store, writer) = reflector::store::<K>();
    let listed = Listed::default();
    let events = listed.marked_by(reflector::reflector(
        writer,
        watcher(api, watcher::Config::default())
            .modify(move |o| {
                o.managed_fields_mut().clear();
                slim(o);
            })
            .default_backoff(),
    ));
    (store, listed, events)
}

/// The controller with the Kubernetes writes of a cluster.
pub type ClusterContext<A> = Context<A, KubeWrites>;

/// Everything around the reconcilers: servers, leader election, the namespaces watched.
#[derive(Default)]
pub struct RuntimeOptions {
    pub webhook: Option<WebhookOptions>,
    pub metrics: Option<MetricsOptions>,
    /// Where `/healthz` and `/readyz` are served (plain HTTP).
    pub health: Option<SocketAddr>,
    /// None: this replica always leads (a single replica; the sandbox's in-process controller).
    pub leader: Option<LeaderOptions>,
    pub scope: WatchScope,
    /// The bindings' `spec.networking` written on their targets' security groups; None: not
    /// managed.
    pub target_rules: Option<crate::tgb::TargetRules>,
    /// The fence the AWS clients' mutating calls meet ([`lb_aws::AwsCalls::fence`]): tied here
    /// to the leadership, so a pass in flight when the Lease is lost stops at its next call.
    pub write_fence: Option<lb_aws::WriteFence>,
}

/// Runs the controller until `shutdown` resolves: the TargetGroupBinding reconciler, and the
/// Service and Ingress reconcilers when given. `ready` receives the binding reconciler's context
/// once the servers listen (tests and benchmarks read its metrics).
///
/// At shutdown the reconcilers stop taking work and finish what is in flight, the gate and status
/// writes they handed over land (for up to 5 s); then the Lease is released, so a standby takes
/// over at once.
pub async fn run<
    A: Elbv2,
    L: LoadBalancers + 'static,
    E: Ec2,
    C: Certificates + ImportedCertificates,
>(
    client: Client,
    aws: A,
    balancers: LoadBalancerOptions<L, E, C>,
    options: RuntimeOptions,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ready: Option<tokio::sync::oneshot::Sender<Arc<ClusterContext<A>>>>,
) -> Result<(), RunError> {
    let shutdown = shutdown.shared();
    let scope = options.scope.clone();
    let elector = options
        .leader
        .clone()
        .map(|leader| LeaderElector::start(client.clone(), leader));
    let leadership = elector
        .as_ref()
        .map_or_else(Leadership::always, LeaderElector::leadership);
    if let Some(fence) = &options.write_fence
        && !fence.follow(leadership.watch())
    {
        tracing::warn!("the AWS write fence already follows another leadership; left as it was");
    }
    let (stores, events) = watch(&client, &scope);
    // The bindings' own watch fills their cache: built here rather than by `Controller::new`, so
    // that its first full list sets a flag `/readyz` and the passes can read (see `Listed`).
    // Events for one binding that arrive while its pass runs are merged into the next pass, and
    // passes are paced: a rollout's many pod updates make a few batched AWS calls.
    let controller = Controller::for_stream(events.bindings, stores.bindings.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(CONCURRENCY));
    let writes = KubeWrites::new(client.clone());
    let ctx = Arc::new(
        Context::new(client, aws, writes, stores.clone())
            .with_leadership(leadership.clone())
            .with_target_rules(options.target_rules),
    );
    let asked = Servers {
        webhook: options.webhook,
        metrics: options.metrics,
        health: options.health,
    };
    let mut servers = start_servers(asked, &ctx, &balancers, &leadership).await?;
    servers.push(tokio::spawn(events.namespaces.for_each(|_| async {})));
    if let Some(ready) = ready {
        let _ = ready.send(ctx.clone());
    }
    let balancing = load_balancer_reconcilers(
        balancers,
        &ctx.client,
        &scope,
        (&stores, events.ingress),
        &leadership,
        shutdown.clone(),
    );
    let binding_reconciler = controller
        .watches_stream(events.services, by_service(&stores))
        .watches_stream(events.slices, by_slice(&stores))
        .watches_stream(events.pods, by_pod(&stores))
        .watches_stream(events.nodes, by_node(&stores))
        .reconcile_all_on(leadership.gained())
        .graceful_shutdown_on(shutdown)
        .run(tgb::reconcile, tgb::error_policy, ctx.clone())
        .for_each(|result| report_outcome("binding reconcile", result));
    futures::join!(binding_reconciler, balancing);
    hand_over(&ctx, elector, servers).await;
    Ok(())
}

/// The Service and Ingress reconcilers, each when given, run until `shutdown` resolves.
async fn load_balancer_reconcilers<
    L: LoadBalancers + 'static,
    E: Ec2,
    C: Certificates + ImportedCertificates,
>(
    balancers: LoadBalancerOptions<L, E, C>,
    client: &Client,
    scope: &WatchScope,
    (stores, ingress_watches): (&Stores, ingress::Watches),
    leadership: &Leadership,
    shutdown: futures::future::Shared<impl Future<Output = ()> + Send + Sync + 'static>,
) {
    let services = async {
        if let Some(options) = balancers.services {
            let (client, leadership) = (client.clone(), leadership.clone());
            service::run(client, options, scope, leadership, shutdown.clone()).await;
        }
    };
    let ingresses = async {
        if let Some(options) = balancers.ingresses {
            let (client, stores, leadership) = (client.clone(), stores.clone(), leadership.clone());
            let run = ingress::run(
                client,
                options,
                stores,
                ingress_watches,
                scope,
                leadership,
                shutdown.clone(),
            );
            run.await;
        }
    };
    let gateways = async {
        if let Some(options) = balancers.gateways {
            let (client, stores, leadership) = (client.clone(), stores.clone(), leadership.clone());
            gateway::run(client, options, stores, scope, leadership, shutdown.clone()).await;
        }
    };
    futures::join!(services, ingresses, gateways);
}

/// The servers a run was asked for.
struct Servers {
    webhook: Option<WebhookOptions>,
    metrics: Option<MetricsOptions>,
    health: Option<SocketAddr>,
}

/// The webhooks, `/metrics` and the probes, each when asked for.
async fn start_servers<A: Elbv2, L, E, C>(
    options: Servers,
    ctx: &Arc<ClusterContext<A>>,
    balancers: &LoadBalancerOptions<L, E, C>,
    leadership: &Leadership,
) -> Result<Vec<tokio::task::JoinHandle<()>>, RunError> {
    let mut servers = Vec::new();
    if let Some(webhook) = options.webhook {
        servers.push(start_webhook(webhook, ctx, balancers).await?);
    }
    if let Some(metrics) = options.metrics {
        let listener = listen(metrics.listen).await?;
        servers.push(tokio::spawn(serve_metrics(
            listener,
            ctx,
            &metrics.calls,
            leadership.clone(),
        )));
    }
    if let Some(addr) = options.health {
        let listener = listen(addr).await?;
        let ingresses = balancers.ingresses.is_some();
        servers.push(tokio::spawn(health::serve(
            listener,
            ctx.stores.clone(),
            ingresses,
        )));
    }
    Ok(servers)
}

/// After the reconcilers stopped: what the last passes handed over lands before the standby
/// takes over, so that its writes are not overtaken by ours (bounded, as a write that keeps
/// failing must not hold the Lease); then the Lease is released and the servers stop.
async fn hand_over<A>(
    ctx: &ClusterContext<A>,
    elector: Option<LeaderElector>,
    servers: Vec<tokio::task::JoinHandle<()>>,
) {
    let handed_over = futures::future::join(ctx.gate_writer.flush(), ctx.status_writer.flush());
    if tokio::time::timeout(WRITES_FLUSH, handed_over)
        .await
        .is_err()
    {
        tracing::warn!("gate or status writes still pending at shutdown after {WRITES_FLUSH:?}");
    }
    if let Some(elector) = elector {
        elector.release().await;
    }
    for server in servers {
        server.abort();
    }
}

/// The event streams of the shared watches: polling them keeps the caches in [`Stores`] filled.
struct Events {
    /// The bindings applied: a deletion in progress arrives as an Apply (our finalizer's pass);
    /// the final Delete comes once that finalizer is removed, and needs no pass.
    bindings: BoxStream<'static, Result<TargetGroupBinding, watcher::Error>>,
    pods: BoxStream<'static, Result<Pod, watcher::Error>>,
    services: BoxStream<'static, Result<Service, watcher::Error>>,
    slices: BoxStream<'static, Result<EndpointSlice, watcher::Error>>,
    nodes: BoxStream<'static, Result<Node, watcher::Error>>,
    namespaces: BoxStream<'static, Result<Namespace, watcher::Error>>,
    /// Polled (and their caches filled) only with the Ingress reconciler on.
    ingress: ingress::Watches,
}

/// Starts the shared watches of `scope`: their caches (the bindings' too, which the binding
/// controller reads and is driven by) and the streams that fill them.
fn watch(client: &Client, scope: &WatchScope) -> (Stores, Events) {
    let (bindings, bindings_listed, binding_events) =
        reflect_events::<TargetGroupBinding>(scope.api(client), |_| {});
    let (pods, pods_listed, pod_events) = reflect_slim::<Pod>(scope.api(client), slim::pod);
    // Only pod changes that matter to targets trigger a pass; not the Ready flips and gate
    // conditions our own writes cause (the EndpointSlice reports readiness anyway).
    let pod_events = pod_events.predicate_filter(pod_relevance, PredicateConfig::default());
    let (services, services_listed, service_events) = reflect::<Service>(scope.api(client));
    let (slices, slices_listed, slice_events) =
        reflect_slim::<EndpointSlice>(scope.api(client), slim::endpoint_slice);
    let (nodes, nodes_listed, node_events) =
        reflect_slim::<Node>(Api::all(client.clone()), slim::node);
    let (namespaces, namespaces_listed, namespace_events) =
        reflect::<Namespace>(Api::all(client.clone()));
    let (ingresses, ingresses_listed, ingress_events) = reflect::<Ingress>(scope.api(client));
    let (ingress_classes, classes_listed, class_events) =
        reflect::<IngressClass>(Api::all(client.clone()));
    let (class_params, params_listed, params_events) =
        reflect::<IngressClassParams>(Api::all(client.clone()));
    let stores = Stores {
        bindings,
        namespaces,
        pods,
        services,
        slices,
        nodes,
        ingresses,
        ingress_classes,
        class_params,
        listed: CachesListed {
            bindings: bindings_listed,
            namespaces: namespaces_listed,
            pods: pods_listed,
            services: services_listed,
            slices: slices_listed,
            nodes: nodes_listed,
            ingresses: ingresses_listed,
            ingress_classes: classes_listed,
            class_params: params_listed,
        },
    };
    let events = Events {
        bindings: binding_events.applied_objects().boxed(),
        pods: pod_events.boxed(),
        services: service_events.boxed(),
        slices: slice_events.boxed(),
        nodes: node_events.boxed(),
        namespaces: namespace_events.boxed(),
        ingress: ingress::Watches {
            ingresses: ingress_events.boxed(),
            classes: class_events.boxed(),
            params: params_events.boxed(),
        },
    };
    (stores, events)
}

/// Serves the admission webhooks (TLS, the certificate re-read when its files change).
async fn start_webhook<A: Elbv2, L, E, C>(
    options: WebhookOptions,
    ctx: &Arc<ClusterContext<A>>,
    balancers: &LoadBalancerOptions<L, E, C>,
) -> Result<tokio::task::JoinHandle<()>, RunError> {
    let certificate = webhook::ReloadingCertificate::load(&options.cert, &options.key)?;
    let tls = certificate.server_config();
    let listener = listen(options.listen).await?;
    let state = Arc::new(WebhookState {
        ctx: ctx.clone(),
        termination_hold: options.termination_hold,
        services: balancers.services.as_ref().map(|o| webhook::ServiceNaming {
            selection: o.selection.clone(),
            cluster: o.cluster.clone(),
        }),
        ingresses: balancers
            .ingresses
            .as_ref()
            .map(|o| webhook::IngressNaming {
                settings: o.settings.clone(),
                class: o.class.clone(),
            }),
        gateways: balancers.gateways.as_ref().map(|o| webhook::GatewayNaming {
            settings: o.settings.clone(),
            caches: o.caches.stores(),
        }),
        load_balancer_class: options.load_balancer_class,
    });
    let reload = tokio::spawn(certificate.watch(webhook::CERTIFICATE_CHECK));
    let serve = webhook::serve(listener, tls, webhook::router(state));
    Ok(tokio::spawn(async move {
        serve.await;
        reload.abort();
    }))
}

/// `/metrics` over plain HTTP until the task is dropped.
fn serve_metrics<A>(
    listener: tokio::net::TcpListener,
    ctx: &ClusterContext<A>,
    calls: &AwsCalls,
    leadership: Leadership,
) -> impl Future<Output = ()> + Send + 'static {
    let registry = Arc::new(ctx.metrics.registry(calls));
    let leader = ctx.metrics.leader.clone();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            leader.set(i64::from(leadership.is_leader()));
            let text = metrics::render(&registry);
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
                    text,
                )
            }
        }),
    );
    async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!("metrics server: {err}");
        }
    }
}
