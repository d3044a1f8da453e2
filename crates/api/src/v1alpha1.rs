//! `elbv2.k8s.aws/v1alpha1` TargetGroupBinding: the upstream controller's first version, which it
//! still serves, so that manifests written for it apply too. It is a subset of v1beta1 under the
//! same field names (no `targetGroupName`, `nodeSelector`, `ipAddressType`, `vpcID`, ...), so the
//! API server stores such objects as v1beta1 without a conversion webhook, and the controller
//! reads every binding as v1beta1.

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::target_group_binding::{ServiceReference, TargetGroupBindingNetworking, TargetType};

// clippy reads the repeated `printcolumn(type_ = ...)` arguments as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "elbv2.k8s.aws",
    version = "v1alpha1",
    kind = "TargetGroupBinding",
    namespaced,
    status = "TargetGroupBindingStatus",
    shortname = "tgb",
    category = "all",
    printcolumn(
        name = "SERVICE-NAME",
        type_ = "string",
        json_path = ".spec.serviceRef.name",
        description = "The Kubernetes Service's name"
    ),
    printcolumn(
        name = "SERVICE-PORT",
        type_ = "string",
        json_path = ".spec.serviceRef.port",
        description = "The Kubernetes Service's port"
    ),
    printcolumn(
        name = "TARGET-TYPE",
        type_ = "string",
        json_path = ".spec.targetType",
        description = "The AWS TargetGroup's TargetType"
    ),
    printcolumn(
        name = "ARN",
        type_ = "string",
        json_path = ".spec.targetGroupARN",
        description = "The AWS TargetGroup's Amazon Resource Name",
        priority = 1
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupBindingSpec {
    /// ARN of the target group.
    #[serde(rename = "targetGroupARN")]
    pub target_group_arn: String,
    /// `ip` or `instance`; defaulted from the target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<TargetType>,
    /// The Service whose endpoints (or NodePort) are registered.
    pub service_ref: ServiceReference,
    /// Ingress rules that let the load balancer reach the targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<TargetGroupBindingNetworking>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupBindingStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
