//! `/mutate-v1-service`: a new `type: LoadBalancer` Service without `spec.loadBalancerClass` gets
//! the controller's class (`--load-balancer-class`), as upstream's Service mutator does, so the
//! NLB is ours and not the in-tree cloud provider's. Services that name a class keep it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use k8s_openapi::api::core::v1::Service;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionResponse, AdmissionReview, Operation};
use lb_aws::Elbv2;

use super::{WebhookState, allowed_with, request_of};
use crate::writes::ClusterWrites;

pub async fn mutate<A: Elbv2, W: ClusterWrites>(
    State(state): State<Arc<WebhookState<A, W>>>,
    Json(review): Json<AdmissionReview<Service>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let request = match request_of(review) {
        Ok(request) => request,
        Err(invalid) => return Json(*invalid),
    };
    let response = AdmissionResponse::from(&request);
    let (Some(service), Some(class)) = (&request.object, &state.load_balancer_class) else {
        return Json(response.into_review());
    };
    let creating = request.operation == Operation::Create;
    let patch = lb_model::service::admission::default_class(service, class, creating);
    Json(allowed_with(response, patch))
}
