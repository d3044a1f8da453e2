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

mod group;
mod members;
#[cfg(test)]
mod refusal_tests;
#[cfg(test)]
mod tests;

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

pub(crate) use members::{Classes, selection};

use crate::leader::Leadership;
use crate::reconciler::{WatchScope, debounced, report_outcome};
use crate::stack::{
    KubeStackWrites, Pipeline, REPLACEMENT_CHECK, RESYNC, Served, StackError, StackWrites,
};
use crate::stores::Stores;

/// The field manager of everything the Ingress reconciler writes.
const MANAGER: &str = "lb-controller-ingress";

/// What the Ingress reconciler needs from its caller.
pub struct IngressOptions<L, E, C> {
    pub elb: L,
    pub ec2: E,
    pub acm: C,
    pub settings: IngressSettings,
    pub class: ClassSettings,
}

pub struct IngressContext<L, E, C, W = KubeStackWrites> {
    pub pipeline: Pipeline<L, E, W>,
    pub acm: C,
    pub settings: IngressSettings,
    pub class: ClassSettings,
    stores: Stores,
    /// One lock per group: its passes never overlap.
    locks: Mutex<HashMap<GroupId, Arc<tokio::sync::Mutex<()>>>>,
    leadership: Leadership,
}

impl<L, E, C, W> IngressContext<L, E, C, W> {
    pub fn new(
        options: IngressOptions<L, E, C>,
        writes: W,
        stores: Stores,
        leadership: Leadership,
    ) -> Self {
        Self {
            pipeline: Pipeline::new(options.elb, options.ec2, writes),
            acm: options.acm,
            settings: options.settings,
            class: options.class,
            stores,
            locks: Mutex::new(HashMap::new()),
            leadership,
        }
    }

    fn lock(&self, group: &GroupId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(group.clone()).or_default().clone()
    }
}

#[tracing::instrument(skip_all, fields(ingress = %ingress.key()))]
pub async fn reconcile<L: LoadBalancers, E: Ec2, C: Certificates, W: StackWrites>(
    ingress: Arc<Ingress>,
    ctx: Arc<IngressContext<L, E, C, W>>,
) -> Result<Action, StackError> {
    if !ctx.leadership.is_leader() {
        return Ok(Action::await_change());
    }
    ctx.stores.synced(true).await;
    let started = Instant::now();
    let classes = members::Classes::read(&ctx.stores.ingress_classes, &ctx.stores.class_params);
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
        let view = members::view(
            &group,
            &ctx.stores.ingresses,
            &classes,
            &ctx.stores,
            &ctx.class,
        );
        match group::reconcile_group(&group, &view, &ctx).await {
            Ok(passed) if passed.waiting => next = Action::requeue(REPLACEMENT_CHECK),
            Ok(passed) => {
                tracing::info!(group = %group.stack_id(), steps = passed.steps, hostname = ?passed.dns_name, took = ?started.elapsed(), "reconciled");
                if !view.members.is_empty() && next == Action::await_change() {
                    next = Action::requeue(RESYNC);
                }
            }
            Err(err) => {
                ctx.pipeline.forget(&group.stack_id());
                ctx.pipeline
                    .writes
                    .publish(
                        ingress.as_ref(),
                        EventType::Warning,
                        err.reason(),
                        &err.to_string(),
                    )
                    .await;
                return Err(err);
            }
        }
    }
    ctx.pipeline.succeeded(&ingress.key());
    Ok(next)
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
    let controller =
        Controller::for_stream(watches.ingresses, ingresses.clone()).with_config(debounced());
    let writes = KubeStackWrites::new(client.clone(), MANAGER);
    let ctx = Arc::new(IngressContext::new(
        options,
        writes,
        stores,
        leadership.clone(),
    ));
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
        .run(reconcile, retry, ctx)
        .for_each(|result| report_outcome("ingress reconcile", result))
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

/// The pipeline's retry policy, as kube-runtime calls it.
fn retry<L, E, C, W>(
    object: Arc<Ingress>,
    err: &StackError,
    ctx: Arc<IngressContext<L, E, C, W>>,
) -> Action {
    ctx.pipeline.retry(object.as_ref(), err)
}
