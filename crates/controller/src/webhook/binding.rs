//! The TargetGroupBinding webhooks (see [`lb_model::binding_admission`]):
//! `/mutate-elbv2-k8s-aws-v1beta1-targetgroupbinding` fills a new binding's ARN, target type, IP
//! address type, VPC and protocol from its target group, and keeps them when a change leaves them
//! out; `/validate-...` refuses a binding its
//! target group contradicts, a second binding of a target group, and changes of immutable fields.
//! A target group or role that cannot be found or assumed refuses the creation, naming both.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use lb_api::TargetGroupBinding;
use lb_aws::Elbv2;
use lb_model::binding_admission::{defaults, keep_on_update, validate_create, validate_update};

use super::{WebhookState, allowed_with, request_of};
use crate::writes::ClusterWrites;

type Review = Json<AdmissionReview<DynamicObject>>;

fn denied(request: &AdmissionRequest<TargetGroupBinding>, reason: String) -> Review {
    tracing::info!(name = %request.name, namespace = ?request.namespace, "TargetGroupBinding refused: {reason}");
    Json(AdmissionResponse::from(request).deny(reason).into_review())
}

pub async fn mutate<A: Elbv2, W: ClusterWrites>(
    State(state): State<Arc<WebhookState<A, W>>>,
    Json(review): Json<AdmissionReview<TargetGroupBinding>>,
) -> Review {
    let request = match request_of(review) {
        Ok(request) => request,
        Err(invalid) => return Json(*invalid),
    };
    let response = AdmissionResponse::from(&request);
    let operations = match (&request.operation, &request.object, &request.old_object) {
        (Operation::Create, Some(binding), _) => {
            let ctx = &state.ctx;
            match ctx.target_groups.resolve(&ctx.aws, binding).await {
                Ok((_, group)) => defaults(binding, &group),
                Err(err) => return denied(&request, err.to_string()),
            }
        }
        (Operation::Update, Some(binding), Some(old)) => keep_on_update(old, binding),
        _ => Vec::new(),
    };
    Json(allowed_with(response, operations))
}

pub async fn validate<A: Elbv2, W: ClusterWrites>(
    State(state): State<Arc<WebhookState<A, W>>>,
    Json(review): Json<AdmissionReview<TargetGroupBinding>>,
) -> Review {
    let request = match request_of(review) {
        Ok(request) => request,
        Err(invalid) => return Json(*invalid),
    };
    let verdict = match (&request.operation, &request.object, &request.old_object) {
        (Operation::Create, Some(binding), _) => {
            let ctx = &state.ctx;
            match ctx.target_groups.resolve(&ctx.aws, binding).await {
                Ok((_, group)) => {
                    validate_create(binding, Some(&group), &ctx.stores.bindings.state())
                }
                Err(err) => Err(err.to_string()),
            }
        }
        (Operation::Update, Some(binding), Some(old)) => validate_update(old, binding),
        _ => Ok(()),
    };
    match verdict {
        Ok(()) => Json(AdmissionResponse::from(&request).into_review()),
        Err(reason) => denied(&request, reason),
    }
}
