//! What the TargetGroupBinding webhooks decide (pure; the server lives in the controller), as the
//! upstream controller does, so that its manifests and habits carry over:
//!
//! - defaulting, on create: the ARN from `targetGroupName`, and `targetType`, `ipAddressType`,
//!   `vpcID` and `targetGroupProtocol` from the target group, where absent; on update, the values
//!   a change leaves out are kept (a server-side apply of the original manifest would otherwise
//!   remove what the webhook filled in, and the change would be refused as touching an immutable
//!   field);
//! - validation, on create: a target type, no `nodeSelector` with ip targets, the target group's
//!   type, IP address type and VPC, and one binding per target group unless every binding of it
//!   is `multiClusterTargetGroup`; on update: the immutable fields (`targetGroupARN`,
//!   `targetType`, `ipAddressType`, `vpcID`) unchanged.
//!
//! Messages name the field and the value (as [`shown`] shows it), and, for a target group bound
//! already, the binding.

use std::sync::Arc;

use json_patch::PatchOperation;
use lb_api::shown::{shown, shown_name};
use lb_api::{TargetGroupBinding, TargetGroupBindingSpec, TargetType};
use serde_json::json;

use crate::elb::TargetGroupInfo;
use crate::pod_admission::add;

/// Checks of the spec alone, which the reconciler repeats (a binding may have been stored while
/// the webhook was away): the networking rules, the VPC ID's form, the IP address type, and no
/// role to assume with instance targets.
pub fn check_spec(spec: &TargetGroupBindingSpec) -> Result<(), String> {
    spec.validate()?;
    if let Some(kind) = &spec.ip_address_type
        && !matches!(kind.as_str(), "ipv4" | "ipv6")
    {
        return Err(format!(
            "spec.ipAddressType {} is not ipv4 or ipv6",
            shown(kind)
        ));
    }
    if let Some(vpc) = spec.vpc_id.as_deref().filter(|v| !v.is_empty())
        && !is_vpc_id(vpc)
    {
        return Err(format!(
            "spec.vpcID {} is not a VPC ID (vpc- and 8 or 17 hexadecimal digits)",
            shown(vpc)
        ));
    }
    let role = spec
        .iam_role_arn_to_assume
        .as_deref()
        .filter(|r| !r.is_empty());
    if let (Some(role), Some(TargetType::Instance)) = (role, spec.target_type) {
        return Err(format!(
            "spec.iamRoleArnToAssume {} cannot be used with targetType instance: nodes of this cluster are not instances of another account",
            shown(role)
        ));
    }
    Ok(())
}

fn is_vpc_id(text: &str) -> bool {
    text.strip_prefix("vpc-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// The target group's type as a binding's, if a binding can fill it.
fn target_type_of_group(group: &TargetGroupInfo) -> Option<TargetType> {
    match group.target_type.as_str() {
        "ip" => Some(TargetType::Ip),
        "instance" => Some(TargetType::Instance),
        _ => None,
    }
}

/// The target group's IP address type as a binding's (`ipv4` unless it says `ipv6`).
fn ip_address_type_of_group(group: &TargetGroupInfo) -> &'static str {
    match group.ip_address_type.as_deref() {
        Some("ipv6") => "ipv6",
        _ => "ipv4",
    }
}

/// The defaults a new binding gets from its target group, as JSON-patch operations.
pub fn defaults(binding: &TargetGroupBinding, group: &TargetGroupInfo) -> Vec<PatchOperation> {
    let spec = &binding.spec;
    let absent = |value: &Option<String>| value.as_deref().is_none_or(str::is_empty);
    let mut operations = Vec::new();
    if absent(&spec.target_group_arn) {
        operations.push(add("/spec/targetGroupARN", json!(group.arn)));
    }
    if spec.target_type.is_none()
        && let Some(kind) = target_type_of_group(group)
    {
        operations.push(add("/spec/targetType", json!(kind.as_str())));
    }
    if absent(&spec.ip_address_type) {
        operations.push(add(
            "/spec/ipAddressType",
            json!(ip_address_type_of_group(group)),
        ));
    }
    if absent(&spec.vpc_id)
        && let Some(vpc) = &group.vpc_id
    {
        operations.push(add("/spec/vpcID", json!(vpc)));
    }
    if absent(&spec.target_group_protocol)
        && let Some(protocol) = &group.protocol
    {
        operations.push(add("/spec/targetGroupProtocol", json!(protocol)));
    }
    operations
}

/// On update: the defaulted fields a change leaves out keep their values.
pub fn keep_on_update(old: &TargetGroupBinding, new: &TargetGroupBinding) -> Vec<PatchOperation> {
    let (old, new) = (&old.spec, &new.spec);
    let absent = |value: &Option<String>| value.as_deref().is_none_or(str::is_empty);
    let mut operations = Vec::new();
    let fields = [
        (
            "/spec/targetGroupARN",
            &old.target_group_arn,
            &new.target_group_arn,
        ),
        (
            "/spec/ipAddressType",
            &old.ip_address_type,
            &new.ip_address_type,
        ),
        ("/spec/vpcID", &old.vpc_id, &new.vpc_id),
        (
            "/spec/targetGroupProtocol",
            &old.target_group_protocol,
            &new.target_group_protocol,
        ),
    ];
    for (path, was, is) in fields {
        if let (Some(was), true) = (was, absent(is))
            && !was.is_empty()
        {
            operations.push(add(path, json!(was)));
        }
    }
    if let (Some(was), None) = (old.target_type, new.target_type) {
        operations.push(add("/spec/targetType", json!(was.as_str())));
    }
    operations
}

fn namespaced_name(binding: &TargetGroupBinding) -> String {
    format!(
        "{}/{}",
        binding.metadata.namespace.as_deref().unwrap_or_default(),
        binding.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Checks every version of a binding must pass.
fn check_common(spec: &TargetGroupBindingSpec) -> Result<(), String> {
    check_spec(spec)?;
    let Some(target_type) = spec.target_type else {
        return Err("TargetGroupBinding must specify these fields: spec.targetType".to_string());
    };
    if target_type == TargetType::Ip && spec.node_selector.is_some() {
        return Err("TargetGroupBinding cannot set NodeSelector when TargetType is ip".to_string());
    }
    Ok(())
}

/// Validates a new binding (after defaulting) against its target group, when it was found, and
/// the cluster's other bindings.
pub fn validate_create(
    binding: &TargetGroupBinding,
    group: Option<&TargetGroupInfo>,
    others: &[Arc<TargetGroupBinding>],
) -> Result<(), String> {
    let spec = &binding.spec;
    check_common(spec)?;
    if let Some(group) = group {
        check_against_group(spec, group)?;
    }
    let Some(arn) = spec.target_group_arn.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    let shared = |b: &TargetGroupBinding| b.spec.multi_cluster_target_group.unwrap_or(false);
    let me = namespaced_name(binding);
    let other = others.iter().find(|other| {
        other.spec.target_group_arn.as_deref() == Some(arn)
            && namespaced_name(other) != me
            && !(shared(binding) && shared(other))
    });
    match other {
        Some(other) => Err(format!(
            "TargetGroup {} is already bound to TargetGroupBinding {}; a target group has one binding unless every binding of it sets multiClusterTargetGroup: true",
            shown_name(arn),
            namespaced_name(other)
        )),
        None => Ok(()),
    }
}

/// The binding must agree with its target group: type, IP address type, VPC.
fn check_against_group(
    spec: &TargetGroupBindingSpec,
    group: &TargetGroupInfo,
) -> Result<(), String> {
    if let Some(wanted) = spec.target_type
        && target_type_of_group(group) != Some(wanted)
    {
        return Err(format!(
            "spec.targetType {} does not match target group {}, whose target type is {}",
            wanted.as_str(),
            group.arn,
            group.target_type
        ));
    }
    let group_ip = ip_address_type_of_group(group);
    if spec.ip_address_type.as_deref().unwrap_or("ipv4") != group_ip {
        return Err(format!(
            "invalid IP address type {group_ip} for TargetGroup {}: spec.ipAddressType is {:?}",
            group.arn,
            spec.ip_address_type.as_deref().unwrap_or("ipv4")
        ));
    }
    if let (Some(wanted), Some(actual)) = (
        spec.vpc_id.as_deref().filter(|v| !v.is_empty()),
        &group.vpc_id,
    ) && wanted != actual
    {
        return Err(format!(
            "spec.vpcID {wanted} does not match the VPC of TargetGroup {} ({actual})",
            group.arn
        ));
    }
    Ok(())
}

/// Validates a change of a binding: the immutable fields stay as they were. A change that leaves
/// the spec alone (labels, annotations, the finalizer's coming and going) is never refused: a
/// binding stored while the webhook was away must still be deletable.
pub fn validate_update(old: &TargetGroupBinding, new: &TargetGroupBinding) -> Result<(), String> {
    if old.spec == new.spec {
        return Ok(());
    }
    check_common(&new.spec)?;
    let (old, new) = (&old.spec, &new.spec);
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut changed = Vec::new();
    if text(&old.target_group_arn) != text(&new.target_group_arn) {
        changed.push("spec.targetGroupARN");
    }
    if old.target_type != new.target_type {
        changed.push("spec.targetType");
    }
    // Absent means ipv4: stating it is no change.
    let ip = |v: &Option<String>| v.clone().unwrap_or_else(|| "ipv4".to_string());
    if ip(&old.ip_address_type) != ip(&new.ip_address_type) {
        changed.push("spec.ipAddressType");
    }
    if text(&old.vpc_id) != text(&new.vpc_id) {
        changed.push("spec.vpcID");
    }
    if changed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "TargetGroupBinding update may not change these fields: {}",
            changed.join(",")
        ))
    }
}

#[cfg(test)]
#[path = "binding_admission_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "binding_admission_property_tests.rs"]
mod property_tests;
