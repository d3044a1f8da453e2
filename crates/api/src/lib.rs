//! The lb-controller API: the `TargetGroupBinding` custom resource (compatible with the upstream
//! AWS Load Balancer Controller's `elbv2.k8s.aws/v1beta1`, so existing objects apply unchanged),
//! and the keys (labels, annotations, condition types, finalizers) the controller shares with
//! users and with the upstream controller.

pub mod keys;
pub mod target_group_binding;

pub use target_group_binding::{
    NetworkingIngressRule, NetworkingPeer, NetworkingPort, ServiceReference, TargetGroupBinding,
    TargetGroupBindingNetworking, TargetGroupBindingSpec, TargetGroupBindingStatus, TargetType,
};

/// Every CRD of the project as YAML documents, as written to `config/crd/`.
pub fn crds_yaml() -> Result<String, serde_yaml_ng::Error> {
    use kube_core::CustomResourceExt;
    let crd = TargetGroupBinding::crd();
    Ok(format!(
        "# Generated from crates/api by `lb-controller crd`; do not edit.\n{}",
        serde_yaml_ng::to_string(&crd)?
    ))
}
