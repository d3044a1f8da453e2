//! Unit tests of [`super`]: defaulting and validation of TargetGroupBindings.

use std::sync::Arc;

use lb_api::TargetGroupBinding;
use serde_json::json;

use super::*;
use crate::elb::TargetGroupInfo;

const ARN: &str = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web/abc";

fn binding(name: &str, spec: serde_json::Value) -> TargetGroupBinding {
    serde_json::from_value(json!({
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    }))
    .unwrap()
}

fn group(target_type: &str) -> TargetGroupInfo {
    TargetGroupInfo {
        arn: ARN.into(),
        name: "web".into(),
        target_type: target_type.into(),
        protocol: Some("HTTP".into()),
        vpc_id: Some("vpc-0123456789abcdef0".into()),
        ip_address_type: Some("ipv4".into()),
        ..TargetGroupInfo::default()
    }
}

fn patched(binding: &TargetGroupBinding, group: &TargetGroupInfo) -> TargetGroupBinding {
    let mut value = serde_json::to_value(binding).unwrap();
    json_patch::patch(&mut value, &defaults(binding, group)).unwrap();
    serde_json::from_value(value).unwrap()
}

#[test]
fn a_binding_by_name_gets_the_arn_and_the_target_group_s_settings() {
    let by_name = binding(
        "web",
        json!({"targetGroupName": "web", "serviceRef": {"name": "web", "port": 80}}),
    );
    let defaulted = patched(&by_name, &group("ip"));
    let spec = &defaulted.spec;
    assert_eq!(spec.target_group_arn.as_deref(), Some(ARN));
    assert_eq!(spec.target_group_name.as_deref(), Some("web"));
    assert_eq!(spec.target_type, Some(TargetType::Ip));
    assert_eq!(spec.ip_address_type.as_deref(), Some("ipv4"));
    assert_eq!(spec.vpc_id.as_deref(), Some("vpc-0123456789abcdef0"));
    assert_eq!(spec.target_group_protocol.as_deref(), Some("HTTP"));
    // What the user wrote stays.
    let explicit = binding(
        "web",
        json!({"targetGroupARN": ARN, "targetType": "instance", "ipAddressType": "ipv4",
               "vpcID": "vpc-0123456789abcdef0", "targetGroupProtocol": "HTTP",
               "serviceRef": {"name": "web", "port": 80}}),
    );
    assert!(defaults(&explicit, &group("ip")).is_empty());
}

#[test]
fn creation_checks_the_target_group_and_the_spec() {
    let spec = |extra: serde_json::Value| {
        let mut spec = json!({"targetGroupARN": ARN, "targetType": "ip", "serviceRef": {"name": "web", "port": 80}});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        binding("web", spec)
    };
    let ok = spec(json!({}));
    assert_eq!(validate_create(&ok, Some(&group("ip")), &[]), Ok(()));
    let cases = [
        (
            spec(json!({})),
            group("instance"),
            "spec.targetType ip does not match",
        ),
        (
            spec(json!({"ipAddressType": "ipv6"})),
            group("ip"),
            "invalid IP address type ipv4",
        ),
        (
            spec(json!({"vpcID": "vpc-11111111"})),
            group("ip"),
            "spec.vpcID vpc-11111111 does not match the VPC of TargetGroup",
        ),
        (
            spec(json!({"vpcID": "my-vpc"})),
            group("ip"),
            "spec.vpcID \"my-vpc\" is not a VPC ID",
        ),
        (
            spec(json!({"nodeSelector": {"matchLabels": {"a": "b"}}})),
            group("ip"),
            "cannot set NodeSelector when TargetType is ip",
        ),
        (
            spec(
                json!({"targetType": "instance", "iamRoleArnToAssume": "arn:aws:iam::999999999999:role/x"}),
            ),
            group("instance"),
            "spec.iamRoleArnToAssume \"arn:aws:iam::999999999999:role/x\" cannot be used with targetType instance",
        ),
        (
            spec(json!({"ipAddressType": "dual"})),
            group("ip"),
            "spec.ipAddressType \"dual\"",
        ),
    ];
    for (binding, group, needle) in cases {
        let err = validate_create(&binding, Some(&group), &[]).unwrap_err();
        assert!(err.contains(needle), "{err} lacks {needle}");
    }
    let untyped = binding(
        "web",
        json!({"targetGroupARN": ARN, "serviceRef": {"name": "web", "port": 80}}),
    );
    assert_eq!(
        validate_create(&untyped, None, &[]).unwrap_err(),
        "TargetGroupBinding must specify these fields: spec.targetType"
    );
}

#[test]
fn a_target_group_has_one_binding_unless_all_share_it_across_clusters() {
    let spec = |shared: bool| {
        json!({"targetGroupARN": ARN, "targetType": "ip", "multiClusterTargetGroup": shared,
               "serviceRef": {"name": "web", "port": 80}})
    };
    let mut first = binding("first", spec(false));
    first.metadata.namespace = Some("other".into());
    let others = [Arc::new(first)];
    let err = validate_create(&binding("second", spec(false)), None, &others).unwrap_err();
    assert!(
        err.contains(&format!(
            "TargetGroup {ARN} is already bound to TargetGroupBinding other/first"
        )),
        "{err}"
    );
    // Only one side shared: still refused.
    assert!(validate_create(&binding("second", spec(true)), None, &others).is_err());
    let mut shared_first = binding("first", spec(true));
    shared_first.metadata.namespace = Some("other".into());
    assert_eq!(
        validate_create(
            &binding("second", spec(true)),
            None,
            &[Arc::new(shared_first)]
        ),
        Ok(())
    );
    // Itself (a retried create) is no other binding.
    let me = Arc::new(binding("second", spec(false)));
    assert_eq!(
        validate_create(&binding("second", spec(false)), None, &[me]),
        Ok(())
    );
}

#[test]
fn an_update_that_leaves_defaults_out_keeps_them() {
    let stored = patched(
        &binding(
            "web",
            json!({"targetGroupName": "web", "serviceRef": {"name": "web", "port": 80}}),
        ),
        &group("ip"),
    );
    // The same manifest applied again (server-side apply drops what it no longer lists).
    let reapplied = binding(
        "web",
        json!({"targetGroupName": "web", "serviceRef": {"name": "web", "port": 8080}}),
    );
    let mut value = serde_json::to_value(&reapplied).unwrap();
    json_patch::patch(&mut value, &keep_on_update(&stored, &reapplied)).unwrap();
    let kept: TargetGroupBinding = serde_json::from_value(value).unwrap();
    assert_eq!(validate_update(&stored, &kept), Ok(()));
    assert_eq!(kept.spec.target_group_arn.as_deref(), Some(ARN));
    assert_eq!(kept.spec.target_type, Some(TargetType::Ip));
    assert_eq!(
        kept.spec.service_ref.port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080)
    );
    // A change that states a field keeps the change (and validation judges it).
    assert!(keep_on_update(&stored, &stored).is_empty());
}

#[test]
fn metadata_only_changes_pass_even_for_an_invalid_stored_spec() {
    let invalid = binding(
        "web",
        json!({"targetGroupARN": ARN, "serviceRef": {"name": "web", "port": 80},
                                        "networking": {"ingress": [{"from": [{}], "ports": []}]}}),
    );
    let mut finalizer_removed = invalid.clone();
    finalizer_removed.metadata.finalizers = None;
    assert_eq!(validate_update(&invalid, &finalizer_removed), Ok(()));
    let mut changed = invalid.clone();
    changed.spec.service_ref.port =
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(81);
    assert!(validate_update(&invalid, &changed).is_err());
}

#[test]
fn updates_may_not_change_immutable_fields() {
    let old = binding(
        "web",
        json!({"targetGroupARN": ARN, "targetType": "ip", "vpcID": "vpc-0123456789abcdef0",
               "serviceRef": {"name": "web", "port": 80}}),
    );
    let mut new = old.clone();
    new.spec.service_ref.port =
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080);
    new.spec.ip_address_type = Some("ipv4".into());
    assert_eq!(validate_update(&old, &new), Ok(()));
    new.spec.target_group_arn = Some("arn:other".into());
    new.spec.target_type = Some(TargetType::Instance);
    new.spec.vpc_id = None;
    new.spec.ip_address_type = Some("ipv6".into());
    assert_eq!(
        validate_update(&old, &new).unwrap_err(),
        "TargetGroupBinding update may not change these fields: spec.targetGroupARN,spec.targetType,spec.ipAddressType,spec.vpcID"
    );
}

#[test]
fn a_huge_value_is_refused_with_the_value_cut() {
    // Before: the whole 100 KB value was the denial.
    let huge = "v".repeat(100 * 1024);
    let cut = format!(
        "\"{}\"... (102400 characters)",
        "v".repeat(lb_api::shown::MAX_SHOWN_VALUE)
    );
    for (field, needle) in [
        ("vpcID", format!("spec.vpcID {cut} is not a VPC ID")),
        (
            "ipAddressType",
            format!("spec.ipAddressType {cut} is not ipv4 or ipv6"),
        ),
    ] {
        let mut spec = json!({"targetGroupARN": ARN, "targetType": "ip",
            "serviceRef": {"name": "web", "port": 80}});
        spec[field] = json!(huge);
        let err = validate_create(&binding("web", spec), None, &[]).unwrap_err();
        assert!(err.starts_with(&needle), "{err:.300}");
        assert!(err.len() < 300, "{err:.300}");
    }
    let networking = json!({"targetGroupARN": ARN, "targetType": "ip",
        "serviceRef": {"name": "web", "port": 80},
        "networking": {"ingress": [{"from": [{"ipBlock": {"cidr": huge}}], "ports": []}]}});
    let err = validate_create(&binding("web", networking), None, &[]).unwrap_err();
    assert_eq!(
        err,
        format!("spec.networking.ingress[0].from.ipBlock.cidr {cut} is not a CIDR")
    );
}
