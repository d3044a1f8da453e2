//! Random and adversarial TargetGroupBinding specs (bad ARNs, ports 0 and 65536, bad CIDRs and
//! security group IDs, bad VPC IDs, huge and unicode values) through the binding webhooks'
//! decisions: never a panic; a refusal names the field and stays short (the rule of
//! [`crate::adversarial`]); the defaulting patches always apply, and an update that only leaves
//! out what defaulting filled in is never refused for it.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use lb_api::target_group_binding::{
    IpBlock, NetworkingIngressRule, NetworkingPeer, NetworkingPort, SecurityGroup,
    ServiceReference, TargetGroupBindingNetworking,
};
use lb_api::{TargetGroupBinding, TargetGroupBindingSpec, TargetType};
use proptest::prelude::*;

use super::*;
use crate::adversarial::{self, value};
use crate::elb::TargetGroupInfo;

const ARN: &str = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web/abc";

/// Absent, sound (one of `sound`), or anything.
fn field(sound: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        prop::sample::select(sound).prop_map(|s| Some(s.to_string())),
        value().prop_map(Some),
    ]
}

fn port() -> impl Strategy<Value = IntOrString> {
    prop_oneof![
        prop::sample::select(vec![80, 0, -1, 65535, 65536, i32::MAX]).prop_map(IntOrString::Int),
        any::<i32>().prop_map(IntOrString::Int),
        value().prop_map(IntOrString::String),
    ]
}

fn peer() -> impl Strategy<Value = NetworkingPeer> {
    let block = field(&["10.0.0.0/8", "::/0"]).prop_map(|c| c.map(|cidr| IpBlock { cidr }));
    let group =
        field(&["sg-0123456789abcdef0"]).prop_map(|g| g.map(|group_id| SecurityGroup { group_id }));
    (block, group).prop_map(|(ip_block, security_group)| NetworkingPeer {
        ip_block,
        security_group,
    })
}

fn networking() -> impl Strategy<Value = Option<TargetGroupBindingNetworking>> {
    let ports = prop::collection::vec(
        (field(&["TCP", "UDP"]), prop::option::of(port()))
            .prop_map(|(protocol, port)| NetworkingPort { protocol, port }),
        0..3,
    );
    let rule = (prop::collection::vec(peer(), 0..3), ports)
        .prop_map(|(from, ports)| NetworkingIngressRule { from, ports });
    prop::option::of(
        prop::collection::vec(rule, 0..3)
            .prop_map(|ingress| TargetGroupBindingNetworking { ingress }),
    )
}

fn spec() -> impl Strategy<Value = TargetGroupBindingSpec> {
    let target_type = prop::option::of(prop::sample::select(vec![
        TargetType::Ip,
        TargetType::Instance,
    ]));
    let service_ref = (value(), port()).prop_map(|(name, port)| ServiceReference { name, port });
    (
        (
            field(&[ARN, "arn:aws:elasticloadbalancing:::"]),
            field(&["web"]),
            target_type,
            service_ref,
        ),
        (
            field(&["ipv4", "ipv6"]),
            networking(),
            field(&["vpc-0123abcd", "vpc-0123456789abcdef0"]),
        ),
        (
            prop::option::of(any::<bool>()),
            field(&["HTTP", "TCP"]),
            field(&["arn:aws:iam::1:role/x"]),
        ),
    )
        .prop_map(
            |(
                (target_group_arn, target_group_name, target_type, service_ref),
                (ip_address_type, networking, vpc_id),
                (multi_cluster_target_group, target_group_protocol, iam_role_arn_to_assume),
            )| TargetGroupBindingSpec {
                target_group_arn,
                target_group_name,
                target_type,
                service_ref,
                ip_address_type,
                node_selector: None,
                networking,
                vpc_id,
                multi_cluster_target_group,
                target_group_protocol,
                iam_role_arn_to_assume,
                assume_role_external_id: None,
            },
        )
}

fn binding(name: &str, spec: TargetGroupBindingSpec) -> TargetGroupBinding {
    let mut binding = TargetGroupBinding::new(name, spec);
    binding.metadata.namespace = Some("shop".into());
    binding
}

fn group() -> impl Strategy<Value = TargetGroupInfo> {
    (
        prop::sample::select(vec!["ip", "instance", "lambda", "alb"]),
        field(&["ipv4", "ipv6"]),
        field(&["vpc-0123abcd"]),
        field(&["HTTP"]),
    )
        .prop_map(
            |(target_type, ip_address_type, vpc_id, protocol)| TargetGroupInfo {
                arn: ARN.into(),
                name: "web".into(),
                target_type: target_type.into(),
                protocol,
                vpc_id,
                ip_address_type,
                ..TargetGroupInfo::default()
            },
        )
}

/// A refusal names what to fix and stays short however long the value.
fn check_refusal(message: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        message.contains("spec.") || message.starts_with("TargetGroup"),
        "names no field: {}",
        adversarial::clip(message)
    );
    prop_assert!(
        message.chars().count() <= 1000,
        "{} characters: {}",
        message.chars().count(),
        adversarial::clip(message)
    );
    Ok(())
}

/// `binding` with the JSON patch `operations` applied, as the API server applies it.
fn apply(
    binding: &TargetGroupBinding,
    operations: Vec<json_patch::PatchOperation>,
) -> Result<TargetGroupBinding, TestCaseError> {
    let mut json = serde_json::to_value(binding).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let applied = json_patch::patch(&mut json, &operations);
    prop_assert!(applied.is_ok(), "the patch does not apply: {applied:?}");
    serde_json::from_value(json).map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    #![proptest_config(adversarial::config(512))]

    #[test]
    fn any_binding_is_defaulted_and_admitted_or_refused_by_field(
        spec in spec(),
        group in prop::option::of(group()),
        other in spec(),
    ) {
        let new = binding("web", spec);
        if let Err(message) = check_spec(&new.spec) {
            check_refusal(&message)?;
        }
        let defaulted = match &group {
            Some(group) => apply(&new, defaults(&new, group))?,
            None => new.clone(),
        };
        let others = [Arc::new(binding("other", other))];
        if let Err(message) = validate_create(&defaulted, group.as_ref(), &others) {
            check_refusal(&message)?;
        }
    }

    #[test]
    fn an_update_is_refused_by_field_and_never_for_what_defaulting_filled_in(
        old in spec(),
        new in spec(),
    ) {
        let (old, new) = (binding("web", old), binding("web", new));
        prop_assert_eq!(validate_update(&old, &old), Ok(()));
        if let Err(message) = validate_update(&old, &new) {
            check_refusal(&message)?;
        }
        // The same spec again with the defaulted fields left out (a server-side apply of the
        // original manifest): once the webhook keeps them, it is no change at all.
        let mut bare = old.clone();
        bare.spec.target_group_arn = None;
        bare.spec.ip_address_type = None;
        bare.spec.vpc_id = None;
        bare.spec.target_group_protocol = None;
        bare.spec.target_type = None;
        let kept = apply(&bare, keep_on_update(&old, &bare))?;
        let absent = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
        let same = |was: &Option<String>, is: &Option<String>| absent(was) && absent(is) || was == is;
        prop_assert!(same(&old.spec.target_group_arn, &kept.spec.target_group_arn));
        prop_assert!(same(&old.spec.vpc_id, &kept.spec.vpc_id));
        prop_assert!(same(&old.spec.ip_address_type, &kept.spec.ip_address_type));
        prop_assert_eq!(old.spec.target_type, kept.spec.target_type);
        if let Err(message) = validate_update(&old, &kept) {
            prop_assert!(
                !message.contains("update may not change"),
                "refused for fields the webhook filled in: {message}"
            );
        }
    }
}
