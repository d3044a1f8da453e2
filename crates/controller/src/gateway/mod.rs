//! The ALB Gateway reconcilers (Gateway API, `controllerName: gateway.k8s.aws/alb`): GatewayClasses
//! of ours are accepted with the features supported ([`class`]); each Gateway of such a class
//! becomes an ALB through the one stack pipeline, its routes become listener rules, and every
//! object gets the status the spec asks for ([`pass`], [`status`]). Targets are registered by the
//! binding reconciler, from the stack's TargetGroupBindings, as for Ingresses.
//!
//! Without the Gateway API CRDs in the cluster the reconcilers log it and do not start (never a
//! crash loop: upstream's users ask for exactly this). ListenerSets are read when their CRD is
//! served (Gateway API v1.5 and later), and otherwise there are none.

mod certificates;
mod class;
mod pass;
mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use lb_api::gateway::{Gateway, GatewayClass, HTTPRoute, ListenerSet, ReferenceGrant};
use lb_api::gateway_config::{LoadBalancerConfiguration, TargetGroupConfiguration};
use lb_aws::Ec2;
use lb_aws::deployer::apply::LoadBalancers;
use lb_model::gateway::backends::sends_to;
use lb_model::ingress::IngressSettings;

use crate::leader::Leadership;
use crate::reconciler::{WatchScope, debounced, report_outcome};
use crate::stack::{KubeStackWrites, Pipeline, Served};
use crate::stores::Stores;

/// The field manager of everything the Gateway reconcilers write.
const MANAGER: &str = "lb-controller-gateway";

/// The kinds an ALB Gateway needs served (upstream's detection list, the API group's share).
const NEEDED: [&str; 4] = [
    "gatewayclasses",
    "gateways",
    "httproutes",
    "referencegrants",
];

/// What the Gateway reconcilers need from their caller.
pub struct GatewayOptions<L, E, C> {
    pub elb: L,
    pub ec2: E,
    /// Where listener certificates from Secrets are imported.
    pub acm: C,
    /// The flags Ingresses and Gateways share (cluster, default tags, scheme, target type...).
    pub settings: IngressSettings,
    /// The Gateway API objects' caches, filled once the reconcilers run; the pod webhook reads
    /// them too (`GatewayCaches::default()`).
    pub caches: GatewayCaches,
}

/// The Gateway API objects' caches and what fills them.
pub struct GatewayCaches {
    stores: Caches,
    writers: Writers,
}

impl Default for GatewayCaches {
    fn default() -> Self {
        let (gateways, gateway_writer) = reflector::store();
        let (classes, class_writer) = reflector::store();
        let (routes, route_writer) = reflector::store();
        let (grants, grant_writer) = reflector::store();
        let (listener_sets, set_writer) = reflector::store();
        let (target_group_configs, config_writer) = reflector::store();
        let (load_balancer_configs, lb_config_writer) = reflector::store();
        Self {
            stores: Caches {
                gateways,
                classes,
                routes,
                grants,
                listener_sets,
                target_group_configs,
                load_balancer_configs,
            },
            writers: Writers {
                gateways: gateway_writer,
                classes: class_writer,
                routes: route_writer,
                grants: grant_writer,
                listener_sets: set_writer,
                target_group_configs: config_writer,
                load_balancer_configs: lb_config_writer,
            },
        }
    }
}

impl GatewayCaches {
    /// The caches to read (they stay empty while the reconcilers do not run).
    pub fn stores(&self) -> Caches {
        self.stores.clone()
    }
}

struct Writers {
    gateways: reflector::store::Writer<Gateway>,
    classes: reflector::store::Writer<GatewayClass>,
    routes: reflector::store::Writer<HTTPRoute>,
    grants: reflector::store::Writer<ReferenceGrant>,
    listener_sets: reflector::store::Writer<ListenerSet>,
    target_group_configs: reflector::store::Writer<TargetGroupConfiguration>,
    load_balancer_configs: reflector::store::Writer<LoadBalancerConfiguration>,
}

/// What a Gateway pass reads and writes through.
pub struct GatewayContext<L, E, C> {
    pub pipeline: Pipeline<L, E, KubeStackWrites>,
    pub acm: C,
    imports: certificates::Imports,
    pub settings: IngressSettings,
    pub client: Client,
    stores: Stores,
    caches: Caches,
    leadership: Leadership,
}

/// The Gateway API objects' caches.
#[derive(Clone)]
pub struct Caches {
    pub gateways: Store<Gateway>,
    pub classes: Store<GatewayClass>,
    pub routes: Store<HTTPRoute>,
    pub grants: Store<ReferenceGrant>,
    /// Empty when the ListenerSet CRD is not served.
    pub listener_sets: Store<ListenerSet>,
    /// Upstream's TargetGroupConfigurations; empty when their CRD is not served.
    pub target_group_configs: Store<TargetGroupConfiguration>,
    /// Upstream's LoadBalancerConfigurations; empty when their CRD is not served.
    pub load_balancer_configs: Store<LoadBalancerConfiguration>,
}

impl Served for Gateway {
    fn hostname(&self) -> Option<&str> {
        let status = self.status.as_ref()?;
        Some(status.addresses.first()?.value.as_str())
    }
}

/// The Gateway API kinds the API server serves (`gateway.networking.k8s.io/v1`).
async fn served_kinds(client: &Client) -> Vec<String> {
    served_in(client, &format!("{}/v1", lb_api::gateway::GROUP)).await
}

/// The resources the API server serves in `group_version` (none when it answers that the group
/// version is not served). Any other failure is asked again, backing off: an API server that
/// answered nothing at start must not pass for one without the CRDs.
async fn served_in(client: &Client, group_version: &str) -> Vec<String> {
    let mut delay = Duration::from_millis(500);
    loop {
        match client.list_api_group_resources(group_version).await {
            Ok(list) => return list.resources.into_iter().map(|r| r.name).collect(),
            Err(kube::Error::Api(status)) if status.code == 404 => return Vec::new(),
            Err(err) => {
                tracing::warn!(%group_version, retry_in = ?delay, "discovery failed, asked again: {err}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(DISCOVERY_RETRY);
            }
        }
    }
}

/// Which of the Gateway API kinds an ALB Gateway needs are not served.
pub async fn missing_kinds(client: &Client) -> Vec<&'static str> {
    let served = served_kinds(client).await;
    NEEDED
        .into_iter()
        .filter(|kind| !served.iter().any(|s| s == kind))
        .collect()
}

/// Runs the GatewayClass and Gateway reconcilers until `shutdown` resolves; passes happen only
/// while `leadership` says this replica leads. Returns at once when the CRDs are missing.
pub async fn run<L, E, C>(
    client: Client,
    options: GatewayOptions<L, E, C>,
    stores: Stores,
    scope: &WatchScope,
    leadership: Leadership,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
) where
    L: LoadBalancers + 'static,
    E: Ec2,
    C: lb_aws::ImportedCertificates + lb_aws::Certificates,
{
    // Discovery is asked until it answers (see `served_in`), unless the controller stops first.
    let missing = tokio::select! {
        missing = missing_kinds(&client) => missing,
        () = shutdown.clone() => return,
    };
    if !missing.is_empty() {
        tracing::info!(missing = ?missing, "the Gateway API CRDs are not installed: the Gateway reconcilers do not run (install them, e.g. with the chart's gatewayAPI.installCRDs, and restart)");
        return;
    }
    let GatewayCaches {
        stores: caches,
        writers,
    } = options.caches;
    let Caches {
        gateways,
        routes,
        listener_sets,
        ..
    } = caches.clone();
    let gateway_events = reflected(scope.api::<Gateway>(&client), writers.gateways);
    let class_events = reflected(Api::<GatewayClass>::all(client.clone()), writers.classes);
    let route_events = reflected(scope.api::<HTTPRoute>(&client), writers.routes);
    let grant_events = reflected(scope.api::<ReferenceGrant>(&client), writers.grants);
    // Upstream's configuration kinds and ListenerSets are optional: a Gateway works without
    // them, and their CRDs may come after the controller (a chart installing them later, a user
    // adding upstream's kinds); each is watched from when it is served.
    let configurations = format!("{}/v1", lb_api::gateway_config::GROUP);
    let lb_config_events = when_served(
        client.clone(),
        Kind::new(&configurations, "loadbalancerconfigurations"),
        reflected(
            scope.api::<LoadBalancerConfiguration>(&client),
            writers.load_balancer_configs,
        ),
    );
    let config_events = when_served(
        client.clone(),
        Kind::new(&configurations, "targetgroupconfigurations"),
        reflected(
            scope.api::<TargetGroupConfiguration>(&client),
            writers.target_group_configs,
        ),
    );
    let set_events = when_served(
        client.clone(),
        Kind::new(&format!("{}/v1", lb_api::gateway::GROUP), "listenersets"),
        reflected(scope.api::<ListenerSet>(&client), writers.listener_sets),
    );
    let ctx = Arc::new(GatewayContext {
        pipeline: Pipeline::new(
            options.elb,
            options.ec2,
            KubeStackWrites::new(client.clone(), MANAGER),
        ),
        acm: options.acm,
        imports: certificates::Imports::default(),
        settings: options.settings,
        client: client.clone(),
        stores,
        caches: caches.clone(),
        leadership: leadership.clone(),
    });
    // The classes' own loop watches them once more (a stream has one reader): few and small.
    let (class_store, writer) = reflector::store();
    let class_stream = reflected(Api::<GatewayClass>::all(client.clone()), writer);
    let classes_loop = Controller::for_stream(class_stream, class_store)
        .reconcile_all_on(leadership.gained())
        .graceful_shutdown_on(shutdown.clone())
        .run(class::reconcile, class::retry, ctx.clone())
        .for_each(|result| report_outcome("gatewayclass reconcile", result));
    let of_route = {
        let sets = listener_sets.clone();
        move |route: HTTPRoute| pass::gateways_of_route(&route, &sets)
    };
    // A namespace's labels decide what listener and route selectors admit.
    let namespace_events = watcher(
        Api::<kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Namespace>>::all(
            client.clone(),
        ),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    let of_namespace = every_gateway(gateways.clone());
    // A LoadBalancerConfiguration may be any Gateway's, through its class.
    let of_configuration = every_gateway(gateways.clone());
    // A backend Service appearing (or going) changes its routes' references: only the Services'
    // names are watched, to find them.
    let service_events = watcher(
        scope.api::<kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Service>>(&client),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    let of_service = gateways_of_backend(routes.clone(), listener_sets.clone());
    let of_config = {
        let of_service = gateways_of_backend(routes.clone(), listener_sets.clone());
        move |config: TargetGroupConfiguration| match &config.spec.target_reference {
            Some(reference) => {
                let mut service =
                    kube::core::PartialObjectMeta::<k8s_openapi::api::core::v1::Service>::default();
                service.metadata.namespace = config.namespace();
                service.metadata.name = Some(reference.name.clone());
                of_service(service)
            }
            None => Vec::new(),
        }
    };
    let of_set = gateways_of_set(gateways.clone());
    let (all_gateways, of_class) = (
        every_gateway(gateways.clone()),
        gateways_of_class(gateways.clone()),
    );
    let gateways_loop = Controller::for_stream(gateway_events, gateways)
        .with_config(debounced())
        .watches_stream(route_events, of_route)
        .watches_stream(grant_events, all_gateways)
        .watches_stream(set_events, of_set)
        .watches_stream(config_events, of_config)
        .watches_stream(lb_config_events, of_configuration)
        .watches_stream(namespace_events, of_namespace)
        .watches_stream(class_events, of_class)
        .watches_stream(service_events, of_service)
        .reconcile_all_on(leadership.gained())
        .graceful_shutdown_on(shutdown)
        .run(pass::reconcile, pass::retry, ctx)
        .for_each(|result| report_outcome("gateway reconcile", result));
    futures::join!(classes_loop, gateways_loop);
}

/// Every Gateway (a ReferenceGrant may open a reference for any of them, a namespace's labels
/// may let its objects in).
fn every_gateway<T>(gateways: Store<Gateway>) -> impl Fn(T) -> Vec<ObjectRef<Gateway>> {
    move |_| {
        gateways
            .state()
            .iter()
            .map(|g| ObjectRef::from_obj(g.as_ref()))
            .collect()
    }
}

/// The Gateway a ListenerSet names, and those that may have admitted it before it changed its
/// parent (every Gateway admitting ListenerSets).
fn gateways_of_set(gateways: Store<Gateway>) -> impl Fn(ListenerSet) -> Vec<ObjectRef<Gateway>> {
    move |set| {
        let mut named = gateways
            .state()
            .iter()
            .filter(|g| {
                g.spec.allowed_listeners.is_some()
                    || lb_model::gateway::listener_sets::names_gateway(&set, g)
            })
            .map(|g| ObjectRef::from_obj(g.as_ref()))
            .collect::<Vec<_>>();
        let reference = &set.spec.parent_ref;
        let namespace = reference
            .namespace
            .clone()
            .unwrap_or_else(|| set.namespace().unwrap_or_default());
        let parent = ObjectRef::new(&reference.name).within(&namespace);
        if !named.contains(&parent) {
            named.push(parent);
        }
        named
    }
}

/// The Gateways whose routes send to a Service.
fn gateways_of_backend(
    routes: Store<HTTPRoute>,
    sets: Store<ListenerSet>,
) -> impl Fn(kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Service>) -> Vec<ObjectRef<Gateway>>
{
    move |service| {
        let (namespace, name) = (service.namespace().unwrap_or_default(), service.name_any());
        routes
            .state()
            .iter()
            .filter(|route| sends_to(route, &namespace, |n| n == name))
            .flat_map(|route| pass::gateways_of_route(route, &sets))
            .collect()
    }
}

/// The Gateways of a class.
fn gateways_of_class(gateways: Store<Gateway>) -> impl Fn(GatewayClass) -> Vec<ObjectRef<Gateway>> {
    move |class| {
        let name = class.name_any();
        gateways
            .state()
            .iter()
            .filter(|g| g.spec.gateway_class_name == name)
            .map(|g| ObjectRef::from_obj(g.as_ref()))
            .collect()
    }
}

/// How soon discovery is asked again for a kind it did not serve.
const DISCOVERY_RETRY: Duration = Duration::from_secs(15);

/// A resource of a group version, as discovery names it.
struct Kind {
    group_version: String,
    resource: &'static str,
}

impl Kind {
    fn new(group_version: &str, resource: &'static str) -> Self {
        Self {
            group_version: group_version.to_string(),
            resource,
        }
    }
}

/// `events` (a [`reflected`] watch, which asks nothing until polled) from when the API server
/// serves `kind`: until then nothing (its store stays empty, as if none existed), and discovery
/// is asked again every [`DISCOVERY_RETRY`]. Deciding once at start would leave a CRD installed a
/// moment later unread until the controller restarts.
fn when_served<K: Send + 'static>(
    client: Client,
    kind: Kind,
    events: impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
) -> futures::stream::BoxStream<'static, Result<K, watcher::Error>> {
    futures::stream::once(async move {
        let mut told = false;
        loop {
            let served = served_in(&client, &kind.group_version).await;
            if served.iter().any(|r| r == kind.resource) {
                if told {
                    tracing::info!(resource = kind.resource, "now served: watched from now on");
                }
                return events;
            }
            if !told {
                tracing::info!(
                    resource = kind.resource,
                    group_version = %kind.group_version,
                    "not served (its CRD is not installed): none exist until it is; looked for again every {}s",
                    DISCOVERY_RETRY.as_secs()
                );
                told = true;
            }
            tokio::time::sleep(DISCOVERY_RETRY).await;
        }
    })
    .flatten()
    .boxed()
}

/// The objects of `api` as they change, kept in `writer`'s store.
fn reflected<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects()
}
