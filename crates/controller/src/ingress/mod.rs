//! The Ingress reconciler: Ingresses of ours become ALBs, one per IngressGroup.
//!
//! A pass is keyed by an Ingress but works on whole groups: the groups the Ingress is in now and
//! those whose finalizer it still carries (it may be leaving one). A group's passes never overlap
//! (a lock per group); each reads the members from the watch cache, builds the ALB from those that
//! can be built ([`lb_model::ingress::build_group`]), converges AWS and writes every member's
//! status ([`group`]). Targets are not registered here: the stack's TargetGroupBindings are, by
//! the binding reconciler, with readiness gates.
//!
//! Events as upstream: `SuccessfullyReconciled` on every member served, `FailedBuildModel` on a
//! member left out (naming the annotation and its value), `FailedDeployModel` (naming the AWS
//! error; retried with backoff).

mod error;
mod group;
mod members;
mod objects;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use lb_api::IngressClassParams;
use lb_aws::deployer::apply::LoadBalancers;
use lb_aws::{Certificates, Ec2};
use lb_model::ingress::class::ClassSettings;
use lb_model::ingress::{GroupId, IngressSettings};

pub use error::IngressError;
pub(crate) use members::{Classes, selection};

use crate::error::retry_delay;
use crate::leader::Leadership;
use crate::runtime::WatchScope;
use crate::service::{REPLACEMENT_CHECK, RESYNC};
use crate::stores::Stores;
use crate::tgb::BindingMemory;
use crate::writes::KubeWrites;

/// What the Ingress reconciler needs from its caller.
pub struct IngressOptions<L, E, C> {
    pub elb: L,
    pub ec2: E,
    pub acm: C,
    pub settings: IngressSettings,
    pub class: ClassSettings,
}

pub struct IngressContext<L, E, C> {
    pub client: Client,
    pub elb: L,
    pub ec2: E,
    pub acm: C,
    pub settings: IngressSettings,
    pub class: ClassSettings,
    stores: Stores,
    ingresses: Store<Ingress>,
    classes: Store<IngressClass>,
    class_params: Store<IngressClassParams>,
    writes: KubeWrites,
    failures: BindingMemory,
    /// One lock per group: its passes never overlap.
    locks: Mutex<HashMap<GroupId, Arc<tokio::sync::Mutex<()>>>>,
    /// Per group, the stack last converged and its load balancer's DNS name: a pass that builds
    /// the same stack again within [`RESYNC`] makes no AWS call (the members of a group created
    /// at once wake one pass each; the first converges, the others find nothing to do).
    converged: Mutex<HashMap<GroupId, Converged>>,
    leadership: Leadership,
}

#[derive(Debug, Clone)]
struct Converged {
    stack: lb_model::stack::Stack,
    dns_name: Option<String>,
    at: Instant,
}

impl<L, E, C> IngressContext<L, E, C> {
    async fn publish(&self, ingress: &Ingress, type_: EventType, reason: &str, message: &str) {
        crate::object_writes::publish(&self.writes, ingress, type_, reason, message).await;
    }

    async fn warn(&self, ingress: &Ingress, reason: &str, message: &str) {
        self.publish(ingress, EventType::Warning, reason, message)
            .await;
    }

    /// The DNS name of the group's load balancer if `stack` is what was last converged, recently.
    fn already_converged(
        &self,
        group: &GroupId,
        stack: &lb_model::stack::Stack,
    ) -> Option<Option<String>> {
        let converged = self.converged.lock().unwrap_or_else(|e| e.into_inner());
        converged
            .get(group)
            .filter(|c| c.stack == *stack && c.at.elapsed() < RESYNC)
            .map(|c| c.dns_name.clone())
    }

    /// Records what a pass converged (None: nothing known, the next pass describes AWS).
    fn remember(&self, group: &GroupId, stack: Option<(lb_model::stack::Stack, Option<String>)>) {
        let mut converged = self.converged.lock().unwrap_or_else(|e| e.into_inner());
        match stack {
            Some((stack, dns_name)) => {
                converged.insert(
                    group.clone(),
                    Converged {
                        stack,
                        dns_name,
                        at: Instant::now(),
                    },
                );
            }
            None => {
                converged.remove(group);
            }
        }
    }

    fn lock(&self, group: &GroupId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(group.clone()).or_default().clone()
    }
}

fn ingress_key(ingress: &Ingress) -> String {
    lb_model::ingress::group::member_key(ingress)
}

#[tracing::instrument(skip_all, fields(ingress = %ingress_key(&ingress)))]
pub async fn reconcile<L: LoadBalancers, E: Ec2, C: Certificates>(
    ingress: Arc<Ingress>,
    ctx: Arc<IngressContext<L, E, C>>,
) -> Result<Action, IngressError> {
    if !ctx.leadership.is_leader() {
        return Ok(Action::await_change());
    }
    ctx.stores.synced(true).await;
    let started = Instant::now();
    let classes = members::Classes::read(&ctx.classes, &ctx.class_params);
    let selection = members::selection(&ingress, &classes, &ctx.stores, &ctx.class);
    let mut groups = members::finalizer_groups(&ingress);
    if let Some(current) = members::current_group(&ingress, &selection)
        && !groups.contains(&current)
    {
        groups.push(current);
    }
    let mut next = Action::await_change();
    for group in groups {
        let lock = ctx.lock(&group);
        let _held = lock.lock().await;
        let view = members::view(&group, &ctx.ingresses, &classes, &ctx.stores, &ctx.class);
        let result = group::reconcile_group(&group, &view, &ctx).await;
        match result {
            Ok(passed) if passed.draining => next = Action::requeue(REPLACEMENT_CHECK),
            Ok(passed) => {
                tracing::info!(group = %group.stack_id(), steps = passed.steps, hostname = ?passed.dns_name, took = ?started.elapsed(), "reconciled");
                if !view.members.is_empty() && next == Action::await_change() {
                    next = Action::requeue(RESYNC);
                }
            }
            Err(err) => {
                ctx.remember(&group, None);
                ctx.warn(&ingress, err.reason(), &err.to_string()).await;
                return Err(err);
            }
        }
    }
    ctx.failures.succeeded(&ingress_key(&ingress));
    Ok(next)
}

/// Retries as the error's category says: a group with no buildable member waits for a change.
pub fn error_policy<L, E, C>(
    ingress: Arc<Ingress>,
    err: &IngressError,
    ctx: Arc<IngressContext<L, E, C>>,
) -> Action {
    let key = ingress_key(&ingress);
    let failures = ctx.failures.failed(&key);
    match retry_delay(err.category(), failures) {
        Some(delay) => {
            let jitter = delay.mul_f64(rand::random::<f64>() * 0.2);
            tracing::warn!(ingress = %key, reason = err.reason(), failures, ?delay, "reconcile failed: {err}");
            Action::requeue(delay + jitter)
        }
        None => {
            tracing::warn!(ingress = %key, reason = err.reason(), "reconcile failed, waiting for a change: {err}");
            Action::await_change()
        }
    }
}

/// The watches whose caches are in [`Stores`] (`ingresses`, `ingress_classes`, `class_params`):
/// polled only by the Ingress reconciler.
pub struct Watches {
    pub ingresses: BoxStream<'static, Result<Ingress, watcher::Error>>,
    pub classes: BoxStream<'static, Result<IngressClass, watcher::Error>>,
    pub params: BoxStream<'static, Result<IngressClassParams, watcher::Error>>,
}

/// Runs the Ingress reconciler until `shutdown` resolves, on the shared watch caches; passes
/// happen only while `leadership` says this replica leads.
pub async fn run<L, E, C>(
    client: Client,
    options: IngressOptions<L, E, C>,
    stores: Stores,
    watches: Watches,
    scope: &WatchScope,
    leadership: Leadership,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) where
    L: LoadBalancers + 'static,
    E: Ec2,
    C: Certificates,
{
    let ingresses = stores.ingresses.clone();
    let controller = Controller::for_stream(watches.ingresses, ingresses.clone()).with_config(
        kube::runtime::controller::Config::default()
            .debounce(crate::runtime::DEBOUNCE)
            .concurrency(crate::runtime::CONCURRENCY),
    );
    let ctx = Arc::new(IngressContext {
        client: client.clone(),
        elb: options.elb,
        ec2: options.ec2,
        acm: options.acm,
        settings: options.settings,
        class: options.class,
        classes: stores.ingress_classes.clone(),
        class_params: stores.class_params.clone(),
        stores,
        ingresses: ingresses.clone(),
        writes: KubeWrites::new(client.clone()),
        failures: BindingMemory::default(),
        locks: Mutex::new(HashMap::new()),
        converged: Mutex::new(HashMap::new()),
        leadership: leadership.clone(),
    });
    let in_namespace = {
        let store = ingresses.clone();
        move |service: k8s_openapi::api::core::v1::Service| {
            let namespace = service.namespace();
            store
                .state()
                .iter()
                .filter(|i| i.namespace() == namespace)
                .map(|i| ObjectRef::from_obj(i.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    controller
        .watches(
            scope.api::<k8s_openapi::api::core::v1::Service>(&client),
            watcher::Config::default(),
            in_namespace,
        )
        .reconcile_all_on(leadership.gained())
        .watches_stream(watches.classes, all_of(ingresses.clone()))
        .watches_stream(watches.params, all_of(ingresses))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| crate::runtime::report_outcome("ingress reconcile", result))
        .await;
}

/// Every Ingress: what a change of a class or of class parameters may concern.
fn all_of<K>(store: Store<Ingress>) -> impl Fn(K) -> Vec<ObjectRef<Ingress>> {
    move |_| {
        store
            .state()
            .iter()
            .map(|i| ObjectRef::from_obj(i.as_ref()))
            .collect()
    }
}
