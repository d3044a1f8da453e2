//! `/validate-elbv2-k8s-aws-v1beta1-ingressclassparams`: an IngressClassParams the Ingress
//! reconciler could not use is refused, naming the field and the value; fields accepted but not
//! built yet are admitted with a warning (see [`lb_model::ingress::params::validate`]).

use axum::Json;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionResponse, AdmissionReview};
use lb_api::IngressClassParams;
use lb_model::ingress::params::validate as verdict;

use super::request_of;

pub async fn validate(
    Json(review): Json<AdmissionReview<IngressClassParams>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let request = match request_of(review) {
        Ok(request) => request,
        Err(invalid) => return Json(*invalid),
    };
    let response = AdmissionResponse::from(&request);
    let Some(params) = &request.object else {
        return Json(response.into_review());
    };
    match verdict(&params.spec) {
        Ok(warnings) if warnings.is_empty() => Json(response.into_review()),
        Ok(warnings) => {
            let mut response = response;
            response.warnings = Some(warnings);
            Json(response.into_review())
        }
        Err(reason) => {
            tracing::info!(name = %request.name, "IngressClassParams refused: {reason}");
            Json(response.deny(reason).into_review())
        }
    }
}
