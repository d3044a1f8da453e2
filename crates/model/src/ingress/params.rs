//! IngressClassParams over an Ingress's annotations: each field the class parameters say wins.
//! [`validate`] is what the validating webhook refuses; [`apply`] refuses the same values, named
//! by field, so an object that slipped past the webhook (or predates it) is still reported.

use ipnet::IpNet;
use lb_api::{IngressClassParamsSpec, TargetType};

use super::annotations::{
    GROUP_NAME_RULE, IngressAnnotations, IpAddressType, Scheme, is_group_name,
};
use super::error::MemberError;
use super::json::ListenerProtocol;
use crate::naming::{LOAD_BALANCER_NAME_RULE, is_load_balancer_name};

/// What the validating webhook says of `spec`: the problem that refuses it (naming the field and
/// the value), or the warnings it is admitted with (fields accepted but not built yet).
pub fn validate(spec: &IngressClassParamsSpec) -> Result<Vec<String>, MemberError> {
    let mut scratch = IngressAnnotations::default();
    apply(spec, &mut scratch)?;
    let unsupported = [
        (
            "minimumLoadBalancerCapacity",
            spec.minimum_load_balancer_capacity.is_some(),
        ),
        ("ipamConfiguration", spec.ipam_configuration.is_some()),
        (
            "subnets.tags",
            spec.subnets.as_ref().is_some_and(|s| s.tags.is_some()),
        ),
        ("prefixListsIDs", spec.prefix_lists_ids.is_some()),
        ("wafv2AclArn", spec.wafv2_acl_arn.is_some()),
        ("wafv2AclName", spec.wafv2_acl_name.is_some()),
    ];
    Ok(unsupported
        .iter()
        .filter(|(_, set)| *set)
        .map(|(field, _)| format!("spec.{field} is not supported yet: it has no effect"))
        .collect())
}

/// Overrides `annotations` with what `spec` says; returns the target type it forces.
pub fn apply(
    spec: &IngressClassParamsSpec,
    annotations: &mut IngressAnnotations,
) -> Result<Option<TargetType>, MemberError> {
    // The group's name goes into its finalizer, and the load balancer's to ELB: either refuses
    // any other, so the webhook does first, by field.
    if let Some(group) = &spec.group
        && !is_group_name(&group.name)
    {
        return Err(bad("group.name", &group.name, GROUP_NAME_RULE));
    }
    if let Some(scheme) = &spec.scheme {
        annotations.scheme = Some(
            Scheme::parse(scheme)
                .ok_or_else(|| bad("scheme", scheme, "internal or internet-facing"))?,
        );
    }
    if let Some(kind) = &spec.ip_address_type {
        annotations.ip_address_type = Some(match kind.as_str() {
            "ipv4" => IpAddressType::Ipv4,
            "dualstack" => IpAddressType::Dualstack,
            "dualstack-without-public-ipv4" => IpAddressType::DualstackWithoutPublicIpv4,
            other => {
                return Err(bad(
                    "ipAddressType",
                    other,
                    "ipv4, dualstack or dualstack-without-public-ipv4",
                ));
            }
        });
    }
    // An empty list says nothing, as an annotation with nothing in it (and as upstream reads
    // these fields): it must not make an ALB without subnets, or closed to everyone.
    if let Some(cidrs) = spec.inbound_cidrs.as_ref().filter(|c| !c.is_empty()) {
        let nets: Result<Vec<IpNet>, _> = cidrs.iter().map(|c| c.parse()).collect();
        annotations.inbound_cidrs =
            Some(nets.map_err(|_| bad("inboundCIDRs", &cidrs.join(","), "a list of CIDRs"))?);
    }
    if let Some(policy) = &spec.ssl_policy {
        annotations.ssl_policy = Some(policy.clone());
    }
    if let Some(port) = &spec.ssl_redirect_port {
        let parsed = port.parse::<u16>().ok().filter(|p| *p > 0);
        annotations.ssl_redirect =
            Some(parsed.ok_or_else(|| bad("sslRedirectPort", port, "a port 1-65535"))?);
    }
    if let Some(ids) = spec
        .subnets
        .as_ref()
        .and_then(|s| s.ids.clone())
        .filter(|ids| !ids.is_empty())
    {
        annotations.subnets = Some(ids);
    }
    if let Some(tags) = &spec.tags {
        annotations
            .tags
            .extend(tags.iter().map(|t| (t.key.clone(), t.value.clone())));
    }
    if let Some(name) = &spec.load_balancer_name {
        if !is_load_balancer_name(name) {
            return Err(bad("loadBalancerName", name, LOAD_BALANCER_NAME_RULE));
        }
        annotations.load_balancer_name = Some(name.clone());
    }
    if let Some(arns) = spec.certificate_arn.as_ref().filter(|a| !a.is_empty()) {
        annotations.certificate_arns = Some(arns.clone());
    }
    if let Some(attributes) = &spec.load_balancer_attributes {
        annotations
            .load_balancer_attributes
            .extend(attributes.iter().map(|a| (a.key.clone(), a.value.clone())));
    }
    if let Some(listeners) = &spec.listeners {
        apply_listeners(listeners, annotations)?;
    }
    forced(spec.target_type.as_deref())
}

/// The target type the class parameters force, if any.
fn forced(target_type: Option<&str>) -> Result<Option<TargetType>, MemberError> {
    match target_type {
        None => Ok(None),
        Some(t) => crate::service::selection::parse_target_type(t)
            .map(Some)
            .ok_or_else(|| MemberError::ClassTargetType(t.to_string())),
    }
}

fn bad(field: &'static str, value: &str, want: &'static str) -> MemberError {
    MemberError::ClassParams {
        field,
        value: value.to_string(),
        want,
    }
}

/// `spec.listeners` as `listen-ports` and `listener-attributes.*`.
fn apply_listeners(
    listeners: &[lb_api::ingress_class_params::ListenerParams],
    annotations: &mut IngressAnnotations,
) -> Result<(), MemberError> {
    let mut ports = Vec::new();
    for listener in listeners {
        let protocol = match listener.protocol.as_deref() {
            Some("HTTP") => ListenerProtocol::Http,
            Some("HTTPS") => ListenerProtocol::Https,
            other => {
                return Err(bad(
                    "listeners[].protocol",
                    other.unwrap_or(""),
                    "HTTP or HTTPS",
                ));
            }
        };
        let port = listener
            .port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                let port = listener.port.map(|p| p.to_string()).unwrap_or_default();
                bad("listeners[].port", &port, "a port 1-65535")
            })?;
        ports.push((protocol, port));
        if let Some(attributes) = &listener.listener_attributes {
            annotations.listener_attributes.insert(
                (protocol, port),
                attributes
                    .iter()
                    .map(|a| (a.key.clone(), a.value.clone()))
                    .collect(),
            );
        }
    }
    if !ports.is_empty() {
        annotations.listen_ports = Some(ports);
    }
    Ok(())
}

#[cfg(test)]
#[path = "params_property_tests.rs"]
mod property_tests;

#[cfg(test)]
mod tests {
    use lb_api::ingress_class_params::{Attribute, ListenerParams};

    use super::*;

    #[test]
    fn class_parameters_win_over_annotations() {
        let spec = IngressClassParamsSpec {
            scheme: Some("internet-facing".into()),
            ssl_redirect_port: Some("443".into()),
            target_type: Some("ip".into()),
            listeners: Some(vec![ListenerParams {
                protocol: Some("HTTPS".into()),
                port: Some(8443),
                listener_attributes: Some(vec![Attribute {
                    key: "routing.http.response.server.enabled".into(),
                    value: "false".into(),
                }]),
            }]),
            ..Default::default()
        };
        let mut annotations = IngressAnnotations {
            scheme: Some(Scheme::Internal),
            listen_ports: Some(vec![(ListenerProtocol::Http, 80)]),
            ..Default::default()
        };
        assert_eq!(apply(&spec, &mut annotations), Ok(Some(TargetType::Ip)));
        assert_eq!(annotations.scheme, Some(Scheme::InternetFacing));
        assert_eq!(annotations.ssl_redirect, Some(443));
        assert_eq!(
            annotations.listen_ports,
            Some(vec![(ListenerProtocol::Https, 8443)])
        );
        assert!(
            annotations
                .listener_attributes
                .contains_key(&(ListenerProtocol::Https, 8443))
        );
    }

    #[test]
    fn the_webhook_refuses_bad_values_by_field() {
        let bad = IngressClassParamsSpec {
            scheme: Some("public".into()),
            ..Default::default()
        };
        assert_eq!(
            validate(&bad).map_err(|e| e.to_string()),
            Err(
                "IngressClassParams spec.scheme: \"public\" is not internal or internet-facing"
                    .into()
            )
        );
        let target = IngressClassParamsSpec {
            target_type: Some("pod".into()),
            ..Default::default()
        };
        assert_eq!(
            validate(&target).map_err(|e| e.to_string()),
            Err("IngressClassParams targetType \"pod\" is not one of ip, instance".into())
        );
        let waf = IngressClassParamsSpec {
            wafv2_acl_arn: Some("arn".into()),
            ..Default::default()
        };
        assert_eq!(
            validate(&waf),
            Ok(vec![
                "spec.wafv2AclArn is not supported yet: it has no effect".to_string()
            ])
        );
        assert_eq!(validate(&IngressClassParamsSpec::default()), Ok(vec![]));
    }

    #[test]
    fn names_aws_or_kubernetes_would_refuse_are_refused_by_field() {
        // Before: admitted, and the first CreateLoadBalancer (or the group's finalizer) failed.
        let named = IngressClassParamsSpec {
            load_balancer_name: Some("10.0.0.0/8, 192.168.0.0/16".into()),
            ..Default::default()
        };
        assert_eq!(
            validate(&named).map_err(|e| e.to_string()),
            Err("IngressClassParams spec.loadBalancerName: \"10.0.0.0/8, 192.168.0.0/16\" is not a load balancer name (at most 32 letters, digits and hyphens, no hyphen first or last)".into())
        );
        let grouped = IngressClassParamsSpec {
            group: Some(lb_api::ingress_class_params::IngressGroup {
                name: "Shop Front".into(),
            }),
            ..Default::default()
        };
        assert!(
            validate(&grouped)
                .map_err(|e| e.to_string())
                .is_err_and(|e| e.starts_with(
                    "IngressClassParams spec.group.name: \"Shop Front\" is not a group name"
                ))
        );
        let fine = IngressClassParamsSpec {
            load_balancer_name: Some("shop-front".into()),
            group: Some(lb_api::ingress_class_params::IngressGroup {
                name: "shop.front".into(),
            }),
            ..Default::default()
        };
        assert_eq!(validate(&fine), Ok(vec![]));
    }

    #[test]
    fn a_listener_port_is_named_by_its_number_and_subnet_tags_are_said_unsupported() {
        // Before: the port was shown as Rust writes an Option ("Some(70000)"), and subnets chosen
        // by tags were silently ignored.
        let listener = |port| IngressClassParamsSpec {
            listeners: Some(vec![ListenerParams {
                protocol: Some("HTTP".into()),
                port,
                listener_attributes: None,
            }]),
            ..Default::default()
        };
        assert_eq!(
            validate(&listener(Some(70000))).map_err(|e| e.to_string()),
            Err("IngressClassParams spec.listeners[].port: \"70000\" is not a port 1-65535".into())
        );
        assert_eq!(
            validate(&listener(None)).map_err(|e| e.to_string()),
            Err("IngressClassParams spec.listeners[].port: \"\" is not a port 1-65535".into())
        );
        let tagged = IngressClassParamsSpec {
            subnets: Some(lb_api::ingress_class_params::SubnetSelector {
                ids: None,
                tags: Some([("tier".to_string(), vec!["web".to_string()])].into()),
            }),
            ..Default::default()
        };
        assert_eq!(
            validate(&tagged),
            Ok(vec![
                "spec.subnets.tags is not supported yet: it has no effect".to_string()
            ])
        );
    }

    #[test]
    fn empty_lists_say_nothing() {
        // Before: `subnets: {ids: []}` made an ALB with no subnet, `inboundCIDRs: []` one no
        // client could reach.
        let empty = IngressClassParamsSpec {
            inbound_cidrs: Some(vec![]),
            certificate_arn: Some(vec![]),
            subnets: Some(lb_api::ingress_class_params::SubnetSelector {
                ids: Some(vec![]),
                tags: None,
            }),
            ..Default::default()
        };
        let mut annotations = IngressAnnotations::default();
        assert_eq!(apply(&empty, &mut annotations), Ok(None));
        assert_eq!(annotations.inbound_cidrs, None);
        assert_eq!(annotations.certificate_arns, None);
        assert_eq!(annotations.subnets, None);
    }

    #[test]
    fn a_huge_value_is_refused_with_the_value_cut() {
        // Before: the 100 KB value was the message, whole.
        let huge = IngressClassParamsSpec {
            scheme: Some("x".repeat(100 * 1024)),
            ..Default::default()
        };
        let message = validate(&huge)
            .map_err(|e| e.to_string())
            .expect_err("refused");
        assert_eq!(
            message,
            format!(
                "IngressClassParams spec.scheme: \"{}\"... (102400 characters) is not internal or internet-facing",
                "x".repeat(crate::annotations::MAX_SHOWN_VALUE)
            )
        );
    }
}
