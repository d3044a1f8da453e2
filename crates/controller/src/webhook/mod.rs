//! The admission webhooks, served over TLS (rustls) by axum, answering from the controller's
//! caches (and, for bindings, the target group cache):
//!
//! - `/mutate-v1-pod` ([`pod`]): readiness gates and the termination hold;
//! - `/mutate-elbv2-k8s-aws-v1beta1-targetgroupbinding` and
//!   `/validate-elbv2-k8s-aws-v1beta1-targetgroupbinding` ([`binding`]): defaults from the target
//!   group, immutable fields, one binding per target group.
//!
//! - `/validate-elbv2-k8s-aws-v1beta1-ingressclassparams` ([`class_params`]) and
//!   `/validate-networking-v1-ingress` ([`ingress`]): values the Ingress reconciler could not use
//!   are refused, naming them;
//! - `/mutate-v1-service` ([`service`]): the default load balancer class.
//!
//! The certificate is re-read when its files change ([`tls`]). The decisions are the model's ([`lb_model::pod_admission`], [`lb_model::binding_admission`]).

pub mod binding;
mod class_params;
mod ingress;
pub mod pod;
mod service;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use lb_api::keys::webhooks;
use lb_aws::Elbv2;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

pub use tls::{CERTIFICATE_CHECK, ReloadingCertificate, TlsError};

use crate::tgb::Context;
use crate::writes::ClusterWrites;

/// What the handlers read.
pub struct WebhookState<A, W: ClusterWrites> {
    pub ctx: Arc<Context<A, W>>,
    /// The termination hold given to pods behind a binding; zero: none.
    pub termination_hold: Duration,
    /// With the Service reconciler on: how it selects and names, so pods of its Services get
    /// their gates before its bindings exist.
    pub services: Option<ServiceNaming>,
    /// With the Ingress reconciler on: how it selects and names, likewise for Ingresses.
    pub ingresses: Option<IngressNaming>,
    /// With the Gateway reconcilers on: their settings and caches, likewise for route backends.
    pub gateways: Option<GatewayNaming>,
    /// The class new `type: LoadBalancer` Services get when they name none (None: left alone).
    pub load_balancer_class: Option<String>,
}

/// What predicting the Ingress reconciler's bindings takes.
#[derive(Debug, Clone)]
pub struct IngressNaming {
    pub settings: lb_model::ingress::IngressSettings,
    pub class: lb_model::ingress::class::ClassSettings,
}

/// What predicting the Gateway reconcilers' bindings takes.
#[derive(Clone)]
pub struct GatewayNaming {
    pub settings: lb_model::ingress::IngressSettings,
    pub caches: crate::gateway::Caches,
}

/// What predicting the Service reconciler's bindings takes.
#[derive(Debug, Clone)]
pub struct ServiceNaming {
    pub selection: lb_model::service::selection::SelectionSettings,
    pub cluster: lb_model::service::build::ClusterSettings,
}

pub fn router<A: Elbv2, W: ClusterWrites>(state: Arc<WebhookState<A, W>>) -> Router {
    Router::new()
        .route(webhooks::MUTATE_POD_PATH, post(pod::mutate::<A, W>))
        .route(webhooks::MUTATE_BINDING_PATH, post(binding::mutate::<A, W>))
        .route(
            webhooks::VALIDATE_BINDING_PATH,
            post(binding::validate::<A, W>),
        )
        .route(
            webhooks::VALIDATE_CLASS_PARAMS_PATH,
            post(class_params::validate),
        )
        .route(
            webhooks::VALIDATE_INGRESS_PATH,
            post(ingress::validate::<A, W>),
        )
        .route(webhooks::MUTATE_SERVICE_PATH, post(service::mutate::<A, W>))
        .with_state(state)
}

/// The request of a review, or the review answering that it is invalid.
fn request_of<K>(
    review: AdmissionReview<K>,
) -> Result<AdmissionRequest<K>, Box<AdmissionReview<DynamicObject>>>
where
    K: kube::Resource,
{
    review
        .try_into()
        .map_err(|err: kube::core::admission::ConvertAdmissionReviewError| {
            tracing::warn!("invalid admission review: {err}");
            Box::new(AdmissionResponse::invalid(err.to_string()).into_review())
        })
}

/// The answer allowing the request with `operations` as its JSON patch (none: as it is).
fn allowed_with(
    response: AdmissionResponse,
    operations: Vec<json_patch::PatchOperation>,
) -> AdmissionReview<DynamicObject> {
    if operations.is_empty() {
        return response.into_review();
    }
    match response.clone().with_patch(json_patch::Patch(operations)) {
        Ok(patched) => patched.into_review(),
        Err(err) => {
            tracing::warn!("serializing the admission patch: {err}");
            response.into_review()
        }
    }
}

/// Serves `app` with TLS on `listener` until the task is dropped. Connections are tasks of this
/// one, so they end with it: the apiserver keeps webhook connections alive, and a connection
/// outliving a stopped controller would answer from caches that no longer follow the cluster.
pub async fn serve(listener: tokio::net::TcpListener, tls: ServerConfig, app: Router) {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        connections.spawn(async move {
            match acceptor.accept(stream).await {
                Ok(tls) => {
                    if let Err(err) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await
                    {
                        tracing::debug!("webhook connection: {err}");
                    }
                }
                Err(err) => tracing::debug!("webhook TLS handshake: {err}"),
            }
        });
    }
}
