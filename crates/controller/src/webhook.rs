//! The pod mutating webhook: in namespaces labelled `elbv2.k8s.aws/pod-readiness-gate-inject=enabled`,
//! a pod created behind an `ip` TargetGroupBinding (its Service selects the pod) gets the readiness
//! gate `target-health.alb.ingress.k8s.aws/<binding>`. A pod that already carries that gate, or the
//! upstream controller's `target-health.elbv2.k8s.aws/<binding>`, is left as it is.
//!
//! Such a pod also gets the termination hold (see [`crate::termination`]): containers without a
//! preStop hook sleep before SIGTERM, so the load balancer stops routing to them first.
//!
//! Served over TLS (rustls) by axum, answering from the controller's caches only.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use json_patch::{AddOperation, PatchOperation};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::runtime::reflector::{ObjectRef, Store};
use lb_api::{TargetGroupBinding, TargetType, keys};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::selectors::service_selects;
use crate::termination;

pub const MUTATE_POD_PATH: &str = "/mutate-v1-pod";

/// The `ip` bindings whose Service selects `pod`, created in a namespace with these labels: none
/// unless the namespace is labelled for injection.
pub fn bindings_behind(
    pod: &Pod,
    namespace_labels: Option<&BTreeMap<String, String>>,
    bindings: &[Arc<TargetGroupBinding>],
    service: &dyn Fn(&str) -> Option<Arc<Service>>,
) -> Vec<String> {
    if !crate::gates::injection_enabled(namespace_labels) {
        return Vec::new();
    }
    let mut names: Vec<String> = bindings
        .iter()
        .filter(|b| {
            b.spec.target_type == Some(TargetType::Ip) && b.metadata.deletion_timestamp.is_none()
        })
        .filter(|b| {
            service(&b.spec.service_ref.name).is_some_and(|s| {
                service_selects(
                    s.spec.as_ref().and_then(|s| s.selector.as_ref()),
                    pod.metadata.labels.as_ref(),
                )
            })
        })
        .map(|b| b.name_any())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The readiness-gate condition types to add to `pod` behind `bindings` (from [`bindings_behind`]):
/// one per binding, unless the pod already carries ours or the upstream controller's.
pub fn gates_to_inject(pod: &Pod, bindings: &[String]) -> Vec<String> {
    let existing: Vec<&str> = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .map(|g| g.iter().map(|g| g.condition_type.as_str()).collect())
        .unwrap_or_default();
    bindings
        .iter()
        .filter(|name| {
            let [ours, upstream] = keys::gate_condition_types(name);
            !existing.contains(&ours.as_str()) && !existing.contains(&upstream.as_str())
        })
        .map(|name| format!("{}{name}", keys::GATE_PREFIX))
        .collect()
}

/// JSON-patch operations adding `gates` to the pod's readiness gates.
pub fn gate_patch(pod: &Pod, gates: &[String]) -> Vec<PatchOperation> {
    if gates.is_empty() {
        return Vec::new();
    }
    let has_list = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some();
    if has_list {
        gates
            .iter()
            .map(|gate| {
                PatchOperation::Add(AddOperation {
                    path: jsonptr::PointerBuf::parse("/spec/readinessGates/-").unwrap_or_default(),
                    value: serde_json::json!({"conditionType": gate}),
                })
            })
            .collect()
    } else {
        vec![PatchOperation::Add(AddOperation {
            path: jsonptr::PointerBuf::parse("/spec/readinessGates").unwrap_or_default(),
            value: serde_json::json!(
                gates
                    .iter()
                    .map(|g| serde_json::json!({"conditionType": g}))
                    .collect::<Vec<_>>()
            ),
        })]
    }
}

#[derive(Clone)]
pub struct WebhookState {
    pub bindings: Store<TargetGroupBinding>,
    pub services: Store<Service>,
    pub namespaces: Store<Namespace>,
    /// The termination hold given to pods behind a binding (see [`crate::termination`]); zero: none.
    pub termination_hold: Duration,
}

async fn mutate_pod(
    State(state): State<WebhookState>,
    Json(review): Json<AdmissionReview<Pod>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let request: AdmissionRequest<Pod> = match review.try_into() {
        Ok(request) => request,
        Err(err) => {
            tracing::warn!("invalid admission review: {err}");
            return Json(AdmissionResponse::invalid(err.to_string()).into_review());
        }
    };
    let response = AdmissionResponse::from(&request);
    let Some(pod) = &request.object else {
        return Json(response.into_review());
    };
    let namespace = request
        .namespace
        .clone()
        .or_else(|| pod.namespace())
        .unwrap_or_default();
    let namespace_labels = state
        .namespaces
        .get(&ObjectRef::new(&namespace))
        .and_then(|ns| ns.metadata.labels.clone());
    let bindings: Vec<Arc<TargetGroupBinding>> = state
        .bindings
        .state()
        .into_iter()
        .filter(|b| b.namespace().as_deref() == Some(namespace.as_str()))
        .collect();
    let services = &state.services;
    let lookup = |name: &str| services.get(&ObjectRef::new(name).within(&namespace));
    let behind = bindings_behind(pod, namespace_labels.as_ref(), &bindings, &lookup);
    if behind.is_empty() {
        return Json(response.into_review());
    }
    let gates = gates_to_inject(pod, &behind);
    let (hold, invalid) = termination::hold_for(pod, state.termination_hold);
    let mut response = response;
    if let Some(invalid) = invalid {
        tracing::warn!(namespace, pod = %pod.name_any(), "{invalid}; using {hold:?}");
        response.warnings = Some(vec![format!("{invalid}; using {}s", hold.as_secs())]);
    }
    let mut operations = gate_patch(pod, &gates);
    operations.extend(termination::hold_patch(pod, hold));
    if operations.is_empty() {
        return Json(response.into_review());
    }
    tracing::debug!(namespace, pod = %pod.name_any(), ?gates, ?hold, "mutating pod");
    match response.clone().with_patch(json_patch::Patch(operations)) {
        Ok(patched) => Json(patched.into_review()),
        Err(err) => {
            tracing::warn!("serializing the admission patch: {err}");
            Json(response.into_review())
        }
    }
}

pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route(MUTATE_POD_PATH, post(mutate_pod))
        .with_state(state)
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} holds no certificate or key")]
    NoPem(PathBuf),
    #[error("TLS configuration: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
}

pub fn tls_config(cert: &PathBuf, key: &PathBuf) -> Result<ServerConfig, WebhookError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| WebhookError::Read {
            path: path.clone(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(WebhookError::NoPem(cert.clone()));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| WebhookError::NoPem(key.clone()))?;
    Ok(ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?)
}

/// Serves the webhook with TLS on `listener` until the task is dropped. Connections are tasks of
/// this one, so they end with it: the apiserver keeps webhook connections alive, and a connection
/// outliving a stopped controller would answer from caches that no longer follow the cluster.
pub async fn serve(listener: tokio::net::TcpListener, tls: ServerConfig, state: WebhookState) {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let app = router(state);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn binding(name: &str, service: &str, target_type: Option<&str>) -> Arc<TargetGroupBinding> {
        let mut spec =
            json!({"targetGroupARN": "arn", "serviceRef": {"name": service, "port": 80}});
        if let Some(t) = target_type {
            spec["targetType"] = json!(t);
        }
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
                "metadata": {"name": name, "namespace": "shop"}, "spec": spec,
            }))
            .unwrap(),
        )
    }

    fn service(selector: serde_json::Value) -> Arc<Service> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": "web"}, "spec": {"selector": selector}}),
            )
            .unwrap(),
        )
    }

    fn pod(gates: &[&str]) -> Pod {
        let mut spec = json!({"containers": []});
        if !gates.is_empty() {
            spec["readinessGates"] = json!(
                gates
                    .iter()
                    .map(|g| json!({"conditionType": g}))
                    .collect::<Vec<_>>()
            );
        }
        serde_json::from_value(
            json!({"metadata": {"name": "p", "labels": {"app": "web"}}, "spec": spec}),
        )
        .unwrap()
    }

    fn enabled() -> BTreeMap<String, String> {
        [(
            keys::READINESS_GATE_INJECT_LABEL.to_string(),
            "enabled".to_string(),
        )]
        .into()
    }

    #[test]
    fn injects_for_ip_bindings_whose_service_selects_the_pod() {
        let svc = service(json!({"app": "web"}));
        let lookup = |name: &str| (name == "web").then(|| svc.clone());
        let bindings = [
            binding("web-tgb", "web", Some("ip")),
            binding("nodes", "web", Some("instance")),
            binding("other", "api", Some("ip")),
        ];
        let behind = bindings_behind(&pod(&[]), Some(&enabled()), &bindings, &lookup);
        assert_eq!(behind, ["web-tgb"]);
        let gates = gates_to_inject(&pod(&[]), &behind);
        assert_eq!(gates, ["target-health.alb.ingress.k8s.aws/web-tgb"]);
    }

    #[test]
    fn nothing_without_the_namespace_label_or_when_already_gated() {
        let svc = service(json!({"app": "web"}));
        let lookup = |_: &str| Some(svc.clone());
        let bindings = [binding("web-tgb", "web", Some("ip"))];
        assert!(bindings_behind(&pod(&[]), None, &bindings, &lookup).is_empty());
        let disabled: BTreeMap<String, String> = [(
            keys::READINESS_GATE_INJECT_LABEL.to_string(),
            "disabled".to_string(),
        )]
        .into();
        assert!(bindings_behind(&pod(&[]), Some(&disabled), &bindings, &lookup).is_empty());
        for already in [
            "target-health.alb.ingress.k8s.aws/web-tgb",
            "target-health.elbv2.k8s.aws/web-tgb",
        ] {
            assert!(
                gates_to_inject(&pod(&[already]), &["web-tgb".to_string()]).is_empty(),
                "{already}"
            );
        }
    }

    #[test]
    fn patch_creates_or_extends_the_list() {
        let gates = vec!["target-health.alb.ingress.k8s.aws/a".to_string()];
        let mut fresh = serde_json::to_value(pod(&[])).unwrap();
        json_patch::patch(
            &mut fresh,
            &json_patch::Patch(gate_patch(&pod(&[]), &gates)),
        )
        .unwrap();
        assert_eq!(
            fresh["spec"]["readinessGates"],
            json!([{"conditionType": "target-health.alb.ingress.k8s.aws/a"}])
        );
        let gated = pod(&["x"]);
        let mut extended = serde_json::to_value(&gated).unwrap();
        json_patch::patch(
            &mut extended,
            &json_patch::Patch(gate_patch(&gated, &gates)),
        )
        .unwrap();
        assert_eq!(
            extended["spec"]["readinessGates"],
            json!([{"conditionType": "x"}, {"conditionType": "target-health.alb.ingress.k8s.aws/a"}])
        );
    }
}
