//! Service -> NLB: which Services are ours, and what their annotations ask for.
//!
//! - [`selection`]: whether a Service is ours, and its target type.
//! - [`annotations`]: every `service.beta.kubernetes.io/` annotation upstream reads, as typed values.
//! - [`build`]: Service + annotations -> the desired NLB stack (`ports`: its listeners, target
//!   groups and bindings; [`health`]: their health checks; [`subnets`]: where it goes).
//! - [`objects`]: what the reconciler does with a Service, its bindings, its status.
//!
//! [`desired`] puts the first three together: the one call the reconciler makes.

pub mod admission;
pub mod annotations;
pub mod build;
pub mod by_address;
pub mod health;
pub mod objects;
mod ports;
pub mod selection;
pub mod subnets;
#[cfg(test)]
mod test_fixtures;

use k8s_openapi::api::core::v1::Service;
use lb_api::TargetType;

use crate::annotations::AnnotationErrors;
use build::{BuildError, Built, ClusterSettings};
use subnets::Subnet;

/// Why a Service of ours has no desired stack: the Event `FailedBuildModel` says this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Annotations(#[from] AnnotationErrors),
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// The desired stack of a Service that [`selection`] found ours, with `target_type` as it said
/// (None when the target-type annotation is bad: the annotation errors then name it).
pub fn desired(
    service: &Service,
    target_type: Option<TargetType>,
    settings: &ClusterSettings,
    subnets: &[Subnet],
) -> Result<Built, ModelError> {
    let empty = Default::default();
    let raw = service.metadata.annotations.as_ref().unwrap_or(&empty);
    let annotations = annotations::parse(raw)?;
    // A bad target type was reported by the parser above; None here means selection by class
    // with the default already applied, so this fallback is never the one used.
    let target_type = target_type
        .or(annotations.target_type)
        .unwrap_or(TargetType::Instance);
    Ok(build::build(
        service,
        &annotations,
        target_type,
        settings,
        subnets,
    )?)
}

/// The TargetGroupBindings the Service reconciler will make for `service` whose targets are pod
/// IPs (the only ones with readiness gates): what the pod webhook gates a pod on when the
/// Service selects it, even before the bindings exist. Empty for Services not ours, or whose
/// annotations do not build (the reconciler reports those).
pub fn predicted_ip_bindings(
    service: &Service,
    selection: &selection::SelectionSettings,
    settings: &ClusterSettings,
) -> Vec<crate::stack::Binding> {
    let selection::Selection::Ours { target_type } = selection::select(service, selection) else {
        return Vec::new();
    };
    let empty = Default::default();
    let raw = service.metadata.annotations.as_ref().unwrap_or(&empty);
    let Ok(annotations) = annotations::parse(raw) else {
        return Vec::new();
    };
    let target_type = target_type
        .or(annotations.target_type)
        .unwrap_or(TargetType::Instance);
    if target_type != TargetType::Ip {
        return Vec::new();
    }
    build::bindings(service, &annotations, target_type, settings).unwrap_or_default()
}

#[cfg(test)]
mod property_tests;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bad_annotations_and_build_errors_both_come_back_named() {
        let settings = ClusterSettings {
            cluster: "lab".into(),
            default_tags: Default::default(),
            default_ssl_policy: "ELBSecurityPolicy-2016-08".into(),
            security_groups: Default::default(),
            external_managed_tags: Vec::new(),
            tcp_udp_listeners: false,
        };
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "demo", "annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval": "1",
            }},
            "spec": {"ports": [{"port": 80}]},
        }))
        .expect("service");
        let error = desired(&service, Some(TargetType::Ip), &settings, &[]).expect_err("bad");
        assert_eq!(
            error.to_string(),
            "annotation service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval: \"1\" must be between 5 and 300"
        );
        let mut no_ports = service.clone();
        no_ports.metadata.annotations = None;
        no_ports.spec = None;
        assert_eq!(
            desired(&no_ports, Some(TargetType::Ip), &settings, &[]),
            Err(ModelError::Build(BuildError::NoPorts))
        );
    }

    #[test]
    fn the_webhook_predicts_the_names_of_the_ip_bindings_the_build_makes() {
        let settings = ClusterSettings {
            cluster: "lab".into(),
            default_tags: Default::default(),
            default_ssl_policy: "ELBSecurityPolicy-2016-08".into(),
            security_groups: Default::default(),
            external_managed_tags: Vec::new(),
            tcp_udp_listeners: false,
        };
        let service = |target_type: &str| -> Service {
            serde_json::from_value(json!({
                "metadata": {"name": "web", "namespace": "demo", "annotations": {
                    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": target_type,
                }},
                "spec": {"type": "LoadBalancer", "ports": [
                    {"port": 80, "targetPort": 8080, "nodePort": 30080},
                    {"port": 443, "targetPort": 8443, "nodePort": 30443},
                ]},
            }))
            .expect("service")
        };
        let subnets = [subnets::Subnet {
            cidr: None,
            id: "subnet-a".into(),
            zone: "us-west-2a".into(),
            tags: [(
                "kubernetes.io/role/internal-elb".to_string(),
                "1".to_string(),
            )]
            .into(),
        }];
        let selection = selection::SelectionSettings::default();
        let ip = service("ip");
        let built = desired(&ip, Some(TargetType::Ip), &settings, &subnets).expect("builds");
        let names: Vec<String> = built
            .stack
            .bindings
            .iter()
            .map(|b| b.name.clone())
            .collect();
        assert_eq!(names.len(), 2);
        let predicted: Vec<String> = predicted_ip_bindings(&ip, &selection, &settings)
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(predicted, names);
        // Instance targets have no gates; a Service not ours predicts nothing.
        assert!(predicted_ip_bindings(&service("instance"), &selection, &settings).is_empty());
        let mut not_ours = ip.clone();
        not_ours.metadata.annotations = None;
        assert!(predicted_ip_bindings(&not_ours, &selection, &settings).is_empty());
        // Refused for its annotations alone (no security groups, and some): no binding will be
        // made, so none is predicted. Before: one was, and pods were gated on it for good.
        let mut refused = ip.clone();
        let annotations = refused.metadata.annotations.get_or_insert_default();
        annotations.insert(
            "service.beta.kubernetes.io/aws-load-balancer-disable-nlb-sg".into(),
            "true".into(),
        );
        annotations.insert(
            "service.beta.kubernetes.io/aws-load-balancer-security-groups".into(),
            "sg-1".into(),
        );
        assert_eq!(
            desired(&refused, Some(TargetType::Ip), &settings, &subnets),
            Err(ModelError::Build(BuildError::SecurityGroupsDisabled))
        );
        assert!(predicted_ip_bindings(&refused, &selection, &settings).is_empty());
    }
}
