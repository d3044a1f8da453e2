//! Service -> NLB: which Services are ours, and what their annotations ask for.
//!
//! - [`selection`]: whether a Service is ours, and its target type.
//! - [`annotations`]: every `service.beta.kubernetes.io/` annotation upstream reads, as typed values.
//! - [`build`]: Service + annotations -> the desired NLB stack ([`health`]: its health checks,
//!   [`subnets`]: where it goes).
//! - [`objects`]: what the reconciler does with a Service, its bindings, its status.
//!
//! [`desired`] puts the first three together: the one call the reconciler makes.

pub mod annotations;
pub mod build;
pub mod health;
pub mod objects;
pub mod selection;
pub mod subnets;

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
}
