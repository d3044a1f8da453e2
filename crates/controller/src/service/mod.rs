//! The Service reconciler: `type: LoadBalancer` Services of ours become NLBs.
//!
//! Each pass asks the model whether the Service is ours ([`lb_model::service::selection`]), then
//! either builds its stack and converges it through the [`Pipeline`] ([`deploy`]), or removes
//! everything made for it ([`cleanup`]), behind the finalizer `service.k8s.aws/resources`.
//! Targets are not registered here: the stack's TargetGroupBindings are, by the binding
//! reconciler, with readiness gates.
//!
//! Events as upstream: `SuccessfullyReconciled`, `FailedBuildModel` (naming the annotation and
//! its value; AWS untouched, no retry until the Service changes), `FailedDeployModel` (naming the
//! AWS error; retried with backoff).

mod cleanup;
mod deploy;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use lb_api::keys::service as keys;
use lb_aws::Ec2;
use lb_aws::deployer::apply::LoadBalancers;
use lb_model::service::build::ClusterSettings;
use lb_model::service::objects::{ServiceAction, action};
use lb_model::service::selection::{SelectionSettings, select};

use crate::leader::Leadership;
use crate::reconciler::{WatchScope, debounced, report_outcome};
use crate::stack::{
    BindingScope, KubeStackWrites, Pipeline, REPLACEMENT_CHECK, RESYNC, Served, StackError,
    StackWrites,
};

/// The field manager of everything the Service reconciler writes.
const MANAGER: &str = "lb-controller-service";

/// What the Service reconciler needs from its caller.
pub struct ServiceOptions<L, E> {
    pub elb: L,
    pub ec2: E,
    pub cluster: ClusterSettings,
    pub selection: SelectionSettings,
}

pub struct ServiceContext<L, E, W = KubeStackWrites> {
    pub pipeline: Pipeline<L, E, W>,
    pub cluster: ClusterSettings,
    pub selection: SelectionSettings,
    leadership: Leadership,
}

impl<L, E, W> ServiceContext<L, E, W> {
    pub fn new(options: ServiceOptions<L, E>, writes: W, leadership: Leadership) -> Self {
        Self {
            pipeline: Pipeline::new(options.elb, options.ec2, writes),
            cluster: options.cluster,
            selection: options.selection,
            leadership,
        }
    }
}

/// Where a Service's bindings are: its namespace, labelled with its name (upstream's labels).
fn binding_scope(service: &Service) -> BindingScope {
    let namespace = service.namespace().unwrap_or_default();
    BindingScope {
        selectors: vec![format!(
            "{}={},{}={namespace}",
            keys::STACK_NAME_LABEL,
            service.name_any(),
            keys::STACK_NAMESPACE_LABEL
        )],
        namespace: Some(namespace),
    }
}

#[tracing::instrument(skip_all, fields(service = %service.key()))]
pub async fn reconcile<L: LoadBalancers, E: Ec2, W: StackWrites>(
    service: Arc<Service>,
    ctx: Arc<ServiceContext<L, E, W>>,
) -> Result<Action, StackError> {
    if !ctx.leadership.is_leader() {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let writes = &ctx.pipeline.writes;
    let result = match action(&service, &select(&service, &ctx.selection)) {
        ServiceAction::Ignore => return Ok(Action::await_change()),
        ServiceAction::CleanUp => cleanup::clean_up(&service, &ctx).await,
        ServiceAction::Deploy { target_type } => {
            match deploy::deploy(&service, target_type, &ctx).await {
                Ok(deployed) if !deployed.waiting.is_empty() => {
                    tracing::info!(steps = deployed.steps, waiting = ?deployed.waiting, "waiting for a replacement target group's first registered target");
                    Ok(Action::requeue(REPLACEMENT_CHECK))
                }
                Ok(deployed) => {
                    tracing::info!(steps = deployed.steps, hostname = ?deployed.dns_name, took = ?started.elapsed(), "reconciled");
                    writes
                        .publish(
                            service.as_ref(),
                            EventType::Normal,
                            "SuccessfullyReconciled",
                            "Successfully reconciled",
                        )
                        .await;
                    Ok(Action::requeue(RESYNC))
                }
                Err(err) => Err(err),
            }
        }
    };
    match &result {
        Ok(_) => ctx.pipeline.succeeded(&service.key()),
        Err(err) => {
            writes
                .publish(
                    service.as_ref(),
                    EventType::Warning,
                    err.reason(),
                    &err.to_string(),
                )
                .await
        }
    }
    result
}

/// Runs the Service reconciler until `shutdown` resolves, on the Services of `scope`; passes
/// happen only while `leadership` says this replica leads.
pub async fn run<L, E>(
    client: Client,
    options: ServiceOptions<L, E>,
    scope: &WatchScope,
    leadership: Leadership,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) where
    L: LoadBalancers + 'static,
    E: Ec2,
{
    let gained = leadership.gained();
    let writes = KubeStackWrites::new(client.clone(), MANAGER);
    let ctx = Arc::new(ServiceContext::new(options, writes, leadership));
    Controller::new(scope.api::<Service>(&client), watcher::Config::default())
        .with_config(debounced())
        .reconcile_all_on(gained)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, retry, ctx)
        .for_each(|result| report_outcome("service reconcile", result))
        .await;
}

/// The pipeline's retry policy, as kube-runtime calls it.
fn retry<L, E, W>(
    object: Arc<Service>,
    err: &StackError,
    ctx: Arc<ServiceContext<L, E, W>>,
) -> Action {
    ctx.pipeline.retry(object.as_ref(), err)
}
