//! The lb-controller API: the `TargetGroupBinding` custom resource (compatible with the upstream
//! AWS Load Balancer Controller's `elbv2.k8s.aws/v1beta1`, the stored version, and `v1alpha1`, so
//! existing objects apply unchanged),
//! and the keys (labels, annotations, condition types, finalizers) the controller shares with
//! users and with the upstream controller.

pub mod gateway;
pub mod gateway_config;
pub mod ingress_class_params;
pub mod keys;
pub mod shown;
pub mod target_group_binding;
pub mod v1alpha1;

pub use ingress_class_params::{IngressClassParams, IngressClassParamsSpec};
pub use target_group_binding::{
    NetworkingIngressRule, NetworkingPeer, NetworkingPort, ServiceReference, TargetGroupBinding,
    TargetGroupBindingNetworking, TargetGroupBindingSpec, TargetGroupBindingStatus, TargetType,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// The TargetGroupBinding CRD: v1beta1 (stored) and v1alpha1, both served.
pub fn target_group_binding_crd() -> CustomResourceDefinition {
    use kube_core::CustomResourceExt;
    let versions = vec![
        TargetGroupBinding::crd(),
        v1alpha1::TargetGroupBinding::crd(),
    ];
    // Both versions share group, kind and scope by construction (the types above): this cannot
    // fail, and the fallback is the stored version alone.
    kube_core::crd::merge_crds(versions, "v1beta1").unwrap_or_else(|_| TargetGroupBinding::crd())
}

/// The upstream controller's Gateway API configuration CRDs (`gateway.k8s.aws`), as written to
/// `config/crd/gateway.k8s.aws.yaml`.
pub fn gateway_crds_yaml() -> Result<String, serde_yaml_ng::Error> {
    let documents = gateway_config::crds()
        .iter()
        .map(serde_yaml_ng::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!(
        "# Generated from crates/api by `lb-controller crd gateway.k8s.aws`; do not edit.\n{}",
        documents.join("---\n")
    ))
}

/// The `elbv2.k8s.aws` CRDs of the project as YAML documents, as written to `config/crd/`.
pub fn crds_yaml() -> Result<String, serde_yaml_ng::Error> {
    use kube_core::CustomResourceExt;
    Ok(format!(
        "# Generated from crates/api by `lb-controller crd`; do not edit.\n{}---\n{}",
        serde_yaml_ng::to_string(&target_group_binding_crd())?,
        serde_yaml_ng::to_string(&IngressClassParams::crd())?
    ))
}
