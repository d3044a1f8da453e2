//! Readiness gates for route backends, before their bindings exist: the pod webhook asks which
//! `ip` TargetGroupBindings the Gateways of ours will have for the Services selecting a new pod,
//! and gates the pod for them, exactly as for an Ingress's backends. The answer is each
//! Gateway's build (no AWS state is needed for its bindings).

use lb_api::TargetType;
use lb_api::gateway::Gateway;

use super::build::{Snapshot, build_gateway};
use crate::ingress::IngressSettings;
use crate::stack::Binding;

/// The `ip` bindings `gateways` will have for the Services of `namespace` named in `selecting`.
pub fn predicted_bindings<'a>(
    gateways: impl IntoIterator<Item = &'a Gateway>,
    snapshot: Snapshot<'_>,
    settings: &IngressSettings,
    namespace: &str,
    selecting: &[String],
) -> Vec<Binding> {
    if selecting.is_empty() {
        return Vec::new();
    }
    gateways
        .into_iter()
        .flat_map(|gateway| build_gateway(gateway, snapshot, settings).bindings)
        .filter(|b| {
            b.target_type == TargetType::Ip
                && b.namespace == namespace
                && selecting.contains(&b.service_name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::fixtures::{backend_service, ingress_settings, vpc};
    use crate::gateway::backends::BackendSnapshot;
    use crate::gateway::listeners::CertificateSnapshot;
    use lb_api::gateway::HTTPRoute;
    use serde_json::json;

    fn gateway() -> Gateway {
        serde_json::from_value(json!({
            "metadata": {"name": "gw", "namespace": "infra", "uid": "uid-gw"},
            "spec": {"gatewayClassName": "alb", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
        }))
        .expect("gateway")
    }

    fn route() -> HTTPRoute {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "infra"},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "v1", "port": 80}]}]},
        }))
        .expect("route")
    }

    #[test]
    fn a_pod_behind_a_route_backend_is_gated_for_the_binding_the_stack_will_have() {
        let mut backends = BackendSnapshot::default();
        backends.services.insert(
            ("infra".into(), "v1".into()),
            backend_service("infra", "v1"),
        );
        let (routes, labels) = ([route()], BTreeMap::new());
        let (certificates, arns, subnets) =
            (CertificateSnapshot::default(), BTreeMap::new(), vpc());
        let snapshot = Snapshot {
            routes: &routes,
            listener_sets: &[],
            namespace_labels: &labels,
            backends: &backends,
            certificates: &certificates,
            certificate_arns: &arns,
            subnets: &subnets,
            configurations: Default::default(),
            acm_certificates: &[],
        };
        let ip = IngressSettings {
            default_target_type: TargetType::Ip,
            ..ingress_settings()
        };
        let gateway = gateway();
        let selecting = ["v1".to_string()];
        let predicted = predicted_bindings([&gateway], snapshot, &ip, "infra", &selecting);
        let stack = build_gateway(&gateway, snapshot, &ip).stack.expect("stack");
        assert_eq!(predicted.len(), 1);
        assert_eq!(predicted[0].name, stack.bindings[0].name);
        // Without subnets (the webhook reads none) the prediction is the same.
        let blind = Snapshot {
            subnets: &[],
            ..snapshot
        };
        let without = predicted_bindings([&gateway], blind, &ip, "infra", &selecting);
        assert_eq!(without[0].name, predicted[0].name);
        // Not for another namespace's pods, nor another Service's, nor instance targets.
        assert!(predicted_bindings([&gateway], snapshot, &ip, "web", &selecting).is_empty());
        assert!(predicted_bindings([&gateway], snapshot, &ip, "infra", &["v2".into()]).is_empty());
        let instance = IngressSettings {
            default_target_type: TargetType::Instance,
            ..ingress_settings()
        };
        assert!(
            predicted_bindings([&gateway], snapshot, &instance, "infra", &selecting).is_empty()
        );
    }
}
