//! `/mutate-v1-pod`: readiness gates and the termination hold for pods created behind an `ip`
//! binding in a namespace labelled for injection (see [`lb_model::pod_admission`]), including
//! the bindings the Service, Ingress and Gateway reconcilers are about to make.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionResponse, AdmissionReview};
use kube::runtime::reflector::ObjectRef;
use lb_api::TargetType;
use lb_api::gateway::{ALB_CONTROLLER_NAME, Gateway, HTTPRoute, ListenerSet, ReferenceGrant};
use lb_aws::Elbv2;
use lb_model::gateway::backends::{BackendSnapshot, sends_to};
use lb_model::gateway::build::Snapshot;
use lb_model::gateway::gates;
use lb_model::gateway::listeners::CertificateSnapshot;
use lb_model::ingress::class::Selection;
use lb_model::ingress::member::{Cluster, Services, member_bindings};
use lb_model::pod_admission::mutate_pod;
use lb_model::selectors::service_selects;
use lb_model::service::predicted_ip_bindings;
use lb_model::stack::Binding;

use super::{GatewayNaming, IngressNaming, ServiceNaming, WebhookState, allowed_with, request_of};
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
    if let Some(naming) = &state.gateways {
        predicted.extend(predicted_gateway_bindings(stores, &namespace, pod, naming));
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

/// The names of the namespace's Services that select `pod`.
fn selecting_services(stores: &Stores, namespace: &str, pod: &Pod) -> Vec<String> {
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
        .map(|s| s.name_any())
        .collect()
}

/// The ip bindings the Gateway reconcilers make for the backends of routes attached to Gateways
/// of ours, where the backend is a Service of the namespace selecting `pod`, from the caches.
fn predicted_gateway_bindings(
    stores: &Stores,
    namespace: &str,
    pod: &Pod,
    naming: &GatewayNaming,
) -> Vec<Binding> {
    let selecting = selecting_services(stores, namespace, pod);
    let caches = &naming.caches;
    let routes: Vec<HTTPRoute> = caches
        .routes
        .state()
        .iter()
        .filter(|route| sends_to(route, namespace, |n| selecting.iter().any(|s| s == n)))
        .map(|r| (**r).clone())
        .collect();
    if routes.is_empty() {
        return Vec::new();
    }
    let listener_sets: Vec<ListenerSet> = caches
        .listener_sets
        .state()
        .iter()
        .map(|s| (**s).clone())
        .collect();
    let grants: Vec<ReferenceGrant> = caches
        .grants
        .state()
        .iter()
        .map(|g| (**g).clone())
        .collect();
    let backends = BackendSnapshot {
        services: stores
            .services
            .state()
            .iter()
            .map(|s| {
                (
                    (s.namespace().unwrap_or_default(), s.name_any()),
                    (**s).clone(),
                )
            })
            .collect(),
        grants,
        target_group_configs: caches
            .target_group_configs
            .state()
            .iter()
            .map(|c| (**c).clone())
            .collect(),
    };
    let namespace_labels: BTreeMap<String, BTreeMap<String, String>> = stores
        .namespaces
        .state()
        .iter()
        .map(|n| (n.name_any(), n.labels().clone()))
        .collect();
    let (certificates, arns) = (CertificateSnapshot::default(), BTreeMap::new());
    let snapshot = Snapshot {
        routes: &routes,
        listener_sets: &listener_sets,
        namespace_labels: &namespace_labels,
        backends: &backends,
        certificates: &certificates,
        certificate_arns: &arns,
        subnets: &[],
        // The load balancer's settings do not change its bindings.
        configurations: Default::default(),
        acm_certificates: &[],
    };
    let ours = |gateway: &Gateway| {
        gateway.metadata.deletion_timestamp.is_none()
            && caches
                .classes
                .get(&ObjectRef::new(&gateway.spec.gateway_class_name))
                .is_some_and(|class| class.spec.controller_name == ALB_CONTROLLER_NAME)
    };
    let gateways = caches.gateways.state();
    gates::predicted_bindings(
        gateways.iter().map(|g| g.as_ref()).filter(|g| ours(g)),
        snapshot,
        &naming.settings,
        namespace,
        &selecting,
    )
}

/// The ip bindings the Ingress reconciler makes for the namespace's Ingresses of ours that route
/// to a Service selecting `pod`.
fn predicted_ingress_bindings(
    stores: &Stores,
    namespace: &str,
    pod: &Pod,
    naming: &IngressNaming,
) -> Vec<Binding> {
    let selecting = selecting_services(stores, namespace, pod);
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
