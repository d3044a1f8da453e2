//! Random and adversarial LoadBalancerConfigurations (a GatewayClass's and a Gateway's) through
//! [`settings`]: never a panic; a refusal names the field and shows the value, short (the rule of
//! [`crate::adversarial`]); what is taken is what ELB takes (a load balancer name it accepts).

use lb_api::gateway_config::{Attribute, LoadBalancerConfigurationSpec, SubnetConfiguration};
use proptest::prelude::*;

use super::*;
use crate::adversarial::{self, names, value};

fn text(sound: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        2 => prop::sample::select(sound).prop_map(|s| Some(s.to_string())),
        1 => value().prop_map(Some),
    ]
}

fn spec() -> impl Strategy<Value = LoadBalancerConfigurationSpec> {
    let subnets = prop::collection::vec(prop::option::of(value()), 0..3);
    let attributes = prop::collection::vec((value(), value()), 0..3);
    (
        text(&["prefer-gateway", "prefer-gateway-class"]),
        text(&["shop", "shop-alb"]),
        text(&["internal", "internet-facing"]),
        text(&["ipv4", "dualstack"]),
        subnets,
        attributes,
        prop::option::of(prop::collection::btree_map(value(), value(), 0..3)),
    )
        .prop_map(
            |(merging_mode, name, scheme, ip_address_type, subnets, attributes, tags)| {
                LoadBalancerConfigurationSpec {
                    merging_mode,
                    load_balancer_name: name,
                    scheme,
                    ip_address_type,
                    load_balancer_subnets: subnets
                        .into_iter()
                        .map(|identifier| SubnetConfiguration {
                            identifier,
                            ..Default::default()
                        })
                        .collect(),
                    load_balancer_attributes: attributes
                        .into_iter()
                        .map(|(key, value)| Attribute { key, value })
                        .collect(),
                    tags,
                    ..Default::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(adversarial::config(512))]

    #[test]
    fn any_configurations_are_taken_or_refused_by_field_and_value(
        class in prop::option::of(spec()),
        gateway in prop::option::of(spec()),
    ) {
        match settings(class.as_ref(), gateway.as_ref()) {
            Ok(taken) => {
                if let Some(name) = &taken.name {
                    prop_assert!(
                        crate::naming::is_load_balancer_name(name),
                        "load balancer {}",
                        adversarial::clip(name)
                    );
                }
            }
            Err(message) => {
                prop_assert!(message.starts_with("LoadBalancerConfiguration spec."), "{}", adversarial::clip(&message));
                let field = message
                    .trim_start_matches("LoadBalancerConfiguration ")
                    .split(' ')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let said = |spec: &Option<LoadBalancerConfigurationSpec>| -> Option<String> {
                    let spec = spec.as_ref()?;
                    match field.as_str() {
                        "spec.scheme" => spec.scheme.clone(),
                        "spec.ipAddressType" => spec.ip_address_type.clone(),
                        "spec.loadBalancerName" => spec.load_balancer_name.clone(),
                        _ => None,
                    }
                };
                let values: Vec<String> = [said(&class), said(&gateway)].into_iter().flatten().collect();
                prop_assert!(!values.is_empty(), "{field} is no field set: {}", adversarial::clip(&message));
                let shown = values.iter().any(|v| names(&message, &field, v).is_ok());
                prop_assert!(shown, "no value of {field} shown in {}", adversarial::clip(&message));
            }
        }
    }
}
