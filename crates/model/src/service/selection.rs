//! Which Services this controller owns, exactly as upstream decides (its `IsServiceSupported`):
//!
//! - `spec.loadBalancerClass` set: ours only when it is our class (`--load-balancer-class`,
//!   default `service.k8s.aws/nlb`); the annotations do not matter then.
//! - no class: ours when `aws-load-balancer-type` is `nlb-ip` (ip targets), or `external` with
//!   `aws-load-balancer-nlb-target-type` `ip` or `instance`. `external` alone is not ours (upstream
//!   ignores it too; the in-tree cloud provider is told to leave `external` alone).
//!
//! A Service that stops being ours is cleaned up by its finalizer: the caller compares this
//! answer with whether the finalizer is there.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use lb_api::TargetType;
use lb_api::keys::service as keys;

use crate::annotations::AnnotationReader;

/// What the cluster settings say about selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionSettings {
    /// `--load-balancer-class`.
    pub load_balancer_class: String,
    /// `--default-target-type`: for Services selected by class without a target-type annotation.
    pub default_target_type: TargetType,
}

impl Default for SelectionSettings {
    fn default() -> Self {
        Self {
            load_balancer_class: keys::DEFAULT_LOAD_BALANCER_CLASS.to_string(),
            default_target_type: TargetType::Instance,
        }
    }
}

/// Why a Service is ours, and with which target type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    NotOurs,
    /// Ours. `target_type` is None when the annotation has a value we cannot use: the caller reports
    /// the annotation error found by the annotation parser and changes nothing.
    Ours {
        target_type: Option<TargetType>,
    },
}

pub fn select(service: &Service, settings: &SelectionSettings) -> Selection {
    if service.metadata.deletion_timestamp.is_some() {
        return Selection::NotOurs;
    }
    let empty = BTreeMap::new();
    let reader = AnnotationReader::new(service.metadata.annotations.as_ref().unwrap_or(&empty));
    let annotation = |name: &str| reader.string(name);
    let target_type_annotation = annotation(keys::NLB_TARGET_TYPE);
    let annotated_target_type = target_type_annotation
        .as_deref()
        .and_then(parse_target_type);
    let class = service
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_class.as_deref());
    if let Some(class) = class {
        if class != settings.load_balancer_class {
            return Selection::NotOurs;
        }
        // `nlb-ip` means ip targets whatever else is said, as upstream's target-type rule.
        let target_type = match (annotation(keys::TYPE).as_deref(), target_type_annotation) {
            (Some(keys::TYPE_NLB_IP), _) => Some(TargetType::Ip),
            (_, None) => Some(settings.default_target_type),
            (_, Some(_)) => annotated_target_type,
        };
        return Selection::Ours { target_type };
    }
    match annotation(keys::TYPE).as_deref() {
        Some(keys::TYPE_NLB_IP) => Selection::Ours {
            target_type: Some(TargetType::Ip),
        },
        Some(keys::TYPE_EXTERNAL) if annotated_target_type.is_some() => Selection::Ours {
            target_type: annotated_target_type,
        },
        _ => Selection::NotOurs,
    }
}

pub fn parse_target_type(value: &str) -> Option<TargetType> {
    match value {
        "ip" => Some(TargetType::Ip),
        "instance" => Some(TargetType::Instance),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(class: Option<&str>, annotations: &[(&str, &str)]) -> Service {
        let annotations: serde_json::Map<String, serde_json::Value> = annotations
            .iter()
            .map(|(k, v)| (format!("service.beta.kubernetes.io/{k}"), json!(v)))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "demo", "annotations": annotations},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": class},
        }))
        .expect("service")
    }

    fn ours(target_type: TargetType) -> Selection {
        Selection::Ours {
            target_type: Some(target_type),
        }
    }

    #[test]
    fn selection_follows_upstream() {
        let settings = SelectionSettings::default();
        let ip = TargetType::Ip;
        let instance = TargetType::Instance;
        type Case = (
            Option<&'static str>,
            Vec<(&'static str, &'static str)>,
            Selection,
        );
        let cases: Vec<Case> = vec![
            (None, vec![], Selection::NotOurs),
            (None, vec![("aws-load-balancer-type", "nlb-ip")], ours(ip)),
            (
                None,
                vec![("aws-load-balancer-type", "external")],
                Selection::NotOurs,
            ),
            (
                None,
                vec![
                    ("aws-load-balancer-type", "external"),
                    ("aws-load-balancer-nlb-target-type", "ip"),
                ],
                ours(ip),
            ),
            (
                None,
                vec![
                    ("aws-load-balancer-type", "external"),
                    ("aws-load-balancer-nlb-target-type", "instance"),
                ],
                ours(instance),
            ),
            (
                None,
                vec![("aws-load-balancer-type", "nlb")],
                Selection::NotOurs,
            ),
            (Some("service.k8s.aws/nlb"), vec![], ours(instance)),
            (
                Some("service.k8s.aws/nlb"),
                vec![("aws-load-balancer-nlb-target-type", "ip")],
                ours(ip),
            ),
            (
                Some("service.k8s.aws/nlb"),
                vec![("aws-load-balancer-nlb-target-type", "pod")],
                Selection::Ours { target_type: None },
            ),
            (
                Some("service.k8s.aws/nlb"),
                vec![("aws-load-balancer-type", "nlb-ip")],
                ours(ip),
            ),
            // Another class wins over our annotations.
            (
                Some("example.com/other"),
                vec![("aws-load-balancer-type", "nlb-ip")],
                Selection::NotOurs,
            ),
        ];
        for (class, annotations, expected) in cases {
            let svc = service(class, &annotations);
            assert_eq!(
                select(&svc, &settings),
                expected,
                "{class:?} {annotations:?}"
            );
        }
    }

    #[test]
    fn a_service_being_deleted_is_not_selected_and_our_class_is_a_setting() {
        let mut svc = service(Some("corp/nlb"), &[]);
        let settings = SelectionSettings {
            load_balancer_class: "corp/nlb".into(),
            default_target_type: TargetType::Ip,
        };
        assert_eq!(select(&svc, &settings), ours(TargetType::Ip));
        svc.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert_eq!(select(&svc, &settings), Selection::NotOurs);
    }
}
