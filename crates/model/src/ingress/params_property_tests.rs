//! Random and adversarial IngressClassParams through the webhook's [`validate`] and the
//! reconciler's [`apply`]: never a panic, a refusal names the field and the value, and what the
//! webhook admits the reconciler can build without sending AWS (or Kubernetes) a name it refuses.

use std::sync::Arc;

use lb_api::ingress_class_params::{Attribute, IngressGroup, ListenerParams, SubnetSelector};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::adversarial::{self, names, value};
use crate::ingress::member::{Cluster, Services};
use crate::ingress::{GroupId, GroupMember, build_group};

fn attributes() -> impl Strategy<Value = Option<Vec<Attribute>>> {
    prop::option::of(prop::collection::vec(
        (value(), value()).prop_map(|(key, value)| Attribute { key, value }),
        0..3,
    ))
}

fn listener(sound: bool) -> impl Strategy<Value = ListenerParams> {
    let protocol = judged(sound, &["HTTP", "HTTPS"]);
    let port = match sound {
        true => prop::sample::select(vec![80, 443, 8443])
            .prop_map(Some)
            .boxed(),
        false => prop_oneof![
            Just(Some(80)),
            Just(Some(0)),
            Just(Some(65536)),
            Just(None),
            any::<i32>().prop_map(Some),
        ]
        .boxed(),
    };
    (protocol, port, attributes()).prop_map(|(protocol, port, listener_attributes)| {
        ListenerParams {
            protocol,
            port,
            listener_attributes,
        }
    })
}

/// A field the webhook judges: absent or one of `sound` when `sound`, else anything.
fn judged(sound: bool, values: &[&str]) -> BoxedStrategy<Option<String>> {
    match sound {
        true => {
            let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            prop::option::of(prop::sample::select(values)).boxed()
        }
        false => prop::option::of(value()).boxed(),
    }
}

/// Every field absent, sound or ugly; with `sound`, those the webhook judges absent or sound
/// (so that the ugly values of the others get through to the build).
fn params(sound: bool) -> impl Strategy<Value = IngressClassParamsSpec> {
    let text = || prop::option::of(value());
    let list = || prop::option::of(prop::collection::vec(value(), 0..3));
    let cidrs = match sound {
        true => prop::option::of(Just(vec!["10.0.0.0/8".to_string()])).boxed(),
        false => list().boxed(),
    };
    (
        (
            text(),
            judged(sound, &["internal", "internet-facing"]),
            cidrs,
            text(),
            judged(sound, &["443", "8443"]),
            list(),
        ),
        (
            judged(sound, &["ipv4", "dualstack"]),
            attributes(),
            judged(sound, &["ip", "instance"]),
            text(),
            list(),
            attributes(),
        ),
        prop::option::of(prop::collection::vec(listener(sound), 0..3)),
    )
        .prop_map(
            |(
                (group, scheme, inbound_cidrs, ssl_policy, ssl_redirect_port, subnets),
                (ip_address_type, tags, target_type, load_balancer_name, certificate_arn, lb_attrs),
                listeners,
            )| IngressClassParamsSpec {
                group: group.map(|name| IngressGroup { name }),
                scheme,
                inbound_cidrs,
                ssl_policy,
                ssl_redirect_port,
                subnets: subnets.map(|ids| SubnetSelector {
                    ids: Some(ids),
                    tags: None,
                }),
                ip_address_type,
                tags,
                target_type,
                load_balancer_name,
                certificate_arn,
                load_balancer_attributes: lb_attrs,
                listeners,
                ..Default::default()
            },
        )
}

proptest! {
    #![proptest_config(adversarial::config(512))]

    #[test]
    fn any_class_params_are_admitted_or_refused_by_field_and_value(spec in params(false)) {
        let verdict = validate(&spec);
        let mut scratch = IngressAnnotations::default();
        // The reconciler refuses exactly what the webhook refuses.
        prop_assert_eq!(apply(&spec, &mut scratch).err(), verdict.clone().err());
        match verdict {
            Err(MemberError::ClassParams { field, value, .. }) => {
                let error = MemberError::ClassParams { field, value: value.clone(), want: "" };
                names(&error.to_string(), &format!("spec.{field}"), &value)?;
            }
            Err(error @ MemberError::ClassTargetType(_)) => {
                let MemberError::ClassTargetType(value) = &error else { unreachable!() };
                names(&error.to_string(), "targetType", value)?;
            }
            Err(other) => prop_assert!(false, "refused as {other:?}"),
            Ok(warnings) => {
                for warning in warnings {
                    prop_assert!(warning.starts_with("spec."), "{warning}");
                }
            }
        }
    }

    /// A list field with nothing in it says nothing, as for the annotations it stands for (an
    /// empty list of subnets or CIDRs would make an ALB without subnets, or closed to everyone).
    #[test]
    fn an_empty_list_field_is_its_absence(spec in params(true)) {
        let mut emptied = spec.clone();
        emptied.inbound_cidrs.get_or_insert_default();
        emptied.certificate_arn.get_or_insert_default();
        emptied.listeners.get_or_insert_default();
        emptied.tags.get_or_insert_default();
        emptied.load_balancer_attributes.get_or_insert_default();
        emptied
            .subnets
            .get_or_insert_default()
            .ids
            .get_or_insert_default();
        let (mut with, mut without) = (IngressAnnotations::default(), IngressAnnotations::default());
        prop_assert_eq!(apply(&emptied, &mut with), apply(&spec, &mut without));
        prop_assert_eq!(with, without);
    }

    /// What the webhook admits builds into names AWS and Kubernetes take: the group's finalizer
    /// and the load balancer's name.
    #[test]
    fn admitted_class_params_build_into_names_aws_and_kubernetes_take(spec in params(true)) {
        prop_assume!(validate(&spec).is_ok());
        let ingress = crate::fixtures::ingress(
            "shop",
            "web",
            json!({}),
            crate::fixtures::prefix_root("web"),
        );
        let group = super::super::group::group_of(&ingress, Some(&spec));
        if let GroupId::Explicit(name) = &group {
            prop_assert!(adversarial::qualified_name_part(name), "group {:?}", adversarial::clip(name));
        }
        let settings = crate::fixtures::ingress_settings();
        let services = Services::new([Arc::new(crate::fixtures::backend_service("shop", "web"))]);
        let cluster = Cluster { settings: &settings, services: &services, certificates: &[] };
        let members = [GroupMember::new(&ingress, Some(&spec))];
        let built = build_group(&group, &members, &cluster, &crate::fixtures::vpc());
        if let Some(stack) = built.stack {
            let name = &stack.load_balancer.name;
            prop_assert!(crate::naming::is_load_balancer_name(name), "load balancer {:?}", adversarial::clip(name));
        }
    }
}
