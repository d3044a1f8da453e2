//! `/mutate-v1-pod`: readiness gates and the termination hold for pods created behind an `ip`
//! binding in a namespace labelled for injection (see [`lb_model::pod_admission`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionResponse, AdmissionReview};
use lb_api::TargetType;
use lb_aws::Elbv2;
use lb_model::ingress::class::Selection;
use lb_model::ingress::member::{Cluster, Services, member_bindings};
use lb_model::pod_admission::mutate_pod;
use lb_model::selectors::service_selects;
use lb_model::service::predicted_ip_bindings;
use lb_model::stack::Binding;

use super::{IngressNaming, ServiceNaming, WebhookState, allowed_with, request_of};
use crate::ingress::{Classes, selection};
use crate::stores::Stores;
use crate::writes::ClusterWrites;

pub async fn mutate<A: Elbv2, W: ClusterWrites>(
    State(state): State<Arc<WebhookState<A, W>>>,
    Json(review): Json<AdmissionReview<Pod>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let request = match request_of(review) {
        Ok(request) => request,
        Err(invalid) => return Json(*invalid),
    };
    let mut response = AdmissionResponse::from(&request);
    let Some(pod) = &request.object else {
        return Json(response.into_review());
    };
    let namespace = request
        .namespace
        .clone()
        .or_else(|| pod.namespace())
        .unwrap_or_default();
    let stores = &state.ctx.stores;
    let labels = stores.namespace_labels(&namespace);
    let bindings = stores.bindings_in(&namespace);
    let service = |name: &str| stores.service(&namespace, name);
    let mut predicted = match &state.services {
        Some(naming) => predicted_bindings(stores, &namespace, pod, naming),
        None => Vec::new(),
    };
    if let Some(naming) = &state.ingresses {
        predicted.extend(predicted_ingress_bindings(stores, &namespace, pod, naming));
    }
    let mutation = mutate_pod(
        pod,
        labels.as_ref(),
        &bindings,
        &service,
        &predicted,
        state.termination_hold,
    );
    if !mutation.warnings.is_empty() {
        tracing::warn!(namespace, pod = %pod.name_any(), warnings = ?mutation.warnings, "pod admission");
        response.warnings = Some(mutation.warnings.clone());
    }
    if !mutation.operations.is_empty() {
        tracing::debug!(namespace, pod = %pod.name_any(), gates = ?mutation.gates, hold = ?mutation.hold, "mutating pod");
    }
    Json(allowed_with(response, mutation.operations))
}

/// The ip bindings the Service reconciler makes for the namespace's Services that select `pod`.
fn predicted_bindings(
    stores: &Stores,
    namespace: &str,
    pod: &Pod,
    naming: &ServiceNaming,
) -> Vec<Binding> {
    stores
        .services
        .state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
        .filter(|s| {
            service_selects(
                s.spec.as_ref().and_then(|spec| spec.selector.as_ref()),
                pod.metadata.labels.as_ref(),
            )
        })
        .flat_map(|s| predicted_ip_bindings(s, &naming.selection, &naming.cluster))
        .collect()
}

/// The ip bindings the Ingress reconciler makes for the namespace's Ingresses of ours that route
/// to a Service selecting `pod`.
fn predicted_ingress_bindings(
    stores: &Stores,
    namespace: &str,
    pod: &Pod,
    naming: &IngressNaming,
) -> Vec<Binding> {
    let selecting: Vec<String> = stores
        .services
        .state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
        .filter(|s| {
            service_selects(
                s.spec.as_ref().and_then(|spec| spec.selector.as_ref()),
                pod.metadata.labels.as_ref(),
            )
        })
        .map(|s| s.name_any())
        .collect();
    if selecting.is_empty() {
        return Vec::new();
    }
    let classes = Classes::read(&stores.ingress_classes, &stores.class_params);
    let services = Services::new(
        stores
            .services
            .state()
            .into_iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(namespace)),
    );
    let cluster = Cluster {
        settings: &naming.settings,
        services: &services,
        certificates: &[],
    };
    stores
        .ingresses
        .state()
        .iter()
        .filter(|i| i.metadata.namespace.as_deref() == Some(namespace))
        .filter_map(
            |ingress| match selection(ingress, &classes, stores, &naming.class) {
                Selection::Ours { params } => {
                    Some(member_bindings(ingress, params.as_deref(), &cluster))
                }
                _ => None,
            },
        )
        .flatten()
        .filter(|b| b.target_type == TargetType::Ip && selecting.contains(&b.service_name))
        .collect()
}
