//! The Service reconciler: `type: LoadBalancer` Services of ours become NLBs.
//!
//! Each pass asks the model whether the Service is ours ([`lb_model::service::selection`]), then
//! either builds its stack and converges AWS to it ([`deploy`]), or removes everything made for
//! it ([`cleanup`]), behind the finalizer `service.k8s.aws/resources`. Targets are not registered
//! here: the stack's TargetGroupBindings are, by the binding reconciler, with readiness gates.
//!
//! Events as upstream: `SuccessfullyReconciled`, `FailedBuildModel` (naming the annotation and
//! its value; AWS untouched, no retry until the Service changes), `FailedDeployModel` (naming the
//! AWS error; retried with backoff).

mod cleanup;
mod deploy;
mod error;
mod objects;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use lb_aws::Ec2;
use lb_aws::deployer::apply::LoadBalancers;
use lb_model::service::build::ClusterSettings;
use lb_model::service::objects::{ServiceAction, action};
use lb_model::service::selection::{SelectionSettings, select};

pub use error::ServiceError;

use crate::error::retry_delay;
use crate::leader::Leadership;
use crate::runtime::WatchScope;
use crate::tgb::BindingMemory;
use crate::writes::KubeWrites;

/// A converged Service is looked at again after this long even if nothing changed, so drift in
/// AWS (a listener deleted by hand) is repaired.
pub const RESYNC: Duration = Duration::from_secs(3600);
/// How soon a listener waiting for its replacement target group looks again.
pub const REPLACEMENT_CHECK: Duration = Duration::from_secs(2);

/// What the Service reconciler needs from its caller.
pub struct ServiceOptions<L, E> {
    pub elb: L,
    pub ec2: E,
    pub cluster: ClusterSettings,
    pub selection: SelectionSettings,
}

pub struct ServiceContext<L, E> {
    pub client: Client,
    pub elb: L,
    pub ec2: E,
    pub cluster: ClusterSettings,
    pub selection: SelectionSettings,
    writes: KubeWrites,
    /// Consecutive failures per Service, for the backoff.
    failures: BindingMemory,
    leadership: Leadership,
}

impl<L, E> ServiceContext<L, E> {
    pub fn new(client: Client, options: ServiceOptions<L, E>, leadership: Leadership) -> Self {
        Self {
            writes: KubeWrites::new(client.clone()),
            client,
            elb: options.elb,
            ec2: options.ec2,
            cluster: options.cluster,
            selection: options.selection,
            failures: BindingMemory::default(),
            leadership,
        }
    }

    async fn publish(&self, service: &Service, type_: EventType, reason: &str, message: &str) {
        crate::object_writes::publish(&self.writes, service, type_, reason, message).await;
    }

    async fn warn(&self, service: &Service, reason: &str, message: &str) {
        self.publish(service, EventType::Warning, reason, message)
            .await;
    }
}

fn service_key(service: &Service) -> String {
    format!(
        "{}/{}",
        service.namespace().unwrap_or_default(),
        service.name_any()
    )
}

#[tracing::instrument(skip_all, fields(service = %service_key(&service)))]
pub async fn reconcile<L: LoadBalancers, E: Ec2>(
    service: Arc<Service>,
    ctx: Arc<ServiceContext<L, E>>,
) -> Result<Action, ServiceError> {
    if !ctx.leadership.is_leader() {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let result = match action(&service, &select(&service, &ctx.selection)) {
        ServiceAction::Ignore => return Ok(Action::await_change()),
        ServiceAction::CleanUp => cleanup::clean_up(&service, &ctx).await,
        ServiceAction::Deploy { target_type } => {
            match deploy::deploy(&service, target_type, &ctx).await {
                Ok(deployed) if !deployed.waiting.is_empty() => {
                    tracing::info!(steps = deployed.steps, listeners = ?deployed.waiting, "waiting for a replacement target group's first registered target");
                    Ok(Action::requeue(REPLACEMENT_CHECK))
                }
                Ok(deployed) => {
                    tracing::info!(steps = deployed.steps, hostname = ?deployed.dns_name, took = ?started.elapsed(), "reconciled");
                    ctx.publish(
                        &service,
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
        Ok(_) => ctx.failures.succeeded(&service_key(&service)),
        Err(err) => ctx.warn(&service, err.reason(), &err.to_string()).await,
    }
    result
}

/// Retries as the error's category says: a bad annotation waits for the Service to change.
pub fn error_policy<L, E>(
    service: Arc<Service>,
    err: &ServiceError,
    ctx: Arc<ServiceContext<L, E>>,
) -> Action {
    let key = service_key(&service);
    let failures = ctx.failures.failed(&key);
    match retry_delay(err.category(), failures) {
        Some(delay) => {
            let jitter = delay.mul_f64(rand::random::<f64>() * 0.2);
            tracing::warn!(service = %key, reason = err.reason(), failures, ?delay, "reconcile failed: {err}");
            Action::requeue(delay + jitter)
        }
        None => {
            tracing::warn!(service = %key, reason = err.reason(), "reconcile failed, waiting for a change: {err}");
            Action::await_change()
        }
    }
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
    let ctx = Arc::new(ServiceContext::new(client.clone(), options, leadership));
    Controller::new(scope.api::<Service>(&client), watcher::Config::default())
        .with_config(
            kube::runtime::controller::Config::default()
                .debounce(crate::runtime::DEBOUNCE)
                .concurrency(crate::runtime::CONCURRENCY),
        )
        .reconcile_all_on(gained)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| crate::runtime::report_outcome("service reconcile", result))
        .await;
}
