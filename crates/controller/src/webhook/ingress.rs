//! `/validate-networking-v1-ingress`: an Ingress of ours (by class, as the reconciler selects)
//! whose annotations the reconciler could not use is refused, naming each annotation and value,
//! instead of being accepted and then left out of its group with a Warning Event. Annotations
//! accepted but not built yet are admitted with a warning. Ingresses of other controllers pass.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionResponse, AdmissionReview};
use lb_aws::Elbv2;
use lb_model::ingress::annotations::parse;
use lb_model::ingress::class::Selection;

use super::{WebhookState, request_of};
use crate::ingress::{Classes, selection};
use crate::writes::ClusterWrites;

pub async fn validate<A: Elbv2, W: ClusterWrites>(
    State(state): State<Arc<WebhookState<A, W>>>,
    Json(review): Json<AdmissionReview<Ingress>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let request = match request_of(review) {
        Ok(request) => request,
        Err(invalid) => return Json(*invalid),
    };
    let response = AdmissionResponse::from(&request);
    let (Some(ingress), Some(naming)) = (&request.object, &state.ingresses) else {
        return Json(response.into_review());
    };
    // Never in the way of a deletion (the finalizer's removal is an update), nor of an update
    // that leaves the annotations and the class as they were (finalizers, labels, rules): an
    // Ingress admitted before, or before the webhook existed, stays manageable.
    let unchanged = request.old_object.as_ref().is_some_and(|old| {
        old.metadata.annotations == ingress.metadata.annotations
            && old
                .spec
                .as_ref()
                .and_then(|s| s.ingress_class_name.as_ref())
                == ingress
                    .spec
                    .as_ref()
                    .and_then(|s| s.ingress_class_name.as_ref())
    });
    if ingress.metadata.deletion_timestamp.is_some() || unchanged {
        return Json(response.into_review());
    }
    let stores = &state.ctx.stores;
    let classes = Classes::read(&stores.ingress_classes, &stores.class_params);
    match selection(ingress, &classes, stores, &naming.class) {
        Selection::NotOurs => Json(response.into_review()),
        Selection::Refused(reason) => Json(response.deny(reason).into_review()),
        Selection::Ours { .. } => {
            let annotations = ingress.metadata.annotations.clone().unwrap_or_default();
            match parse(&annotations) {
                Ok(parsed) if parsed.warnings.is_empty() => Json(response.into_review()),
                Ok(parsed) => {
                    let mut response = response;
                    response.warnings = Some(parsed.warnings);
                    Json(response.into_review())
                }
                Err(errors) => {
                    tracing::info!(ingress = %request.name, "Ingress refused: {errors}");
                    Json(response.deny(errors.to_string()).into_review())
                }
            }
        }
    }
}
