//! Upstream's TargetGroupConfiguration (`gateway.k8s.aws`) on a route backend's target group:
//! the Service's configuration (same namespace, `targetReference` naming it), its default
//! settings overlaid field by field by the most specific route configuration (kind, namespace and
//! name; then kind and namespace; then kind), tags and attributes merged by key, then applied over
//! the controller's defaults.

use std::collections::BTreeMap;

use lb_api::TargetType;
use lb_api::gateway_config::{
    HealthCheckConfiguration, RouteIdentifier, TargetGroupConfiguration, TargetGroupProps,
};

use crate::stack::{CheckPort, HealthCheck, Protocol, ProtocolVersion};

/// The route a backend is reached from.
#[derive(Debug, Clone, Copy)]
pub struct RouteOf<'a> {
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The settings `configs` give the target groups of Service `namespace/service` behind `route`
/// (None: the Service has no configuration).
pub fn props_for(
    configs: &[TargetGroupConfiguration],
    namespace: &str,
    service: &str,
    route: RouteOf<'_>,
) -> Option<TargetGroupProps> {
    let config = configs.iter().find(|c| {
        c.metadata.namespace.as_deref() == Some(namespace)
            && c.spec.target_reference.as_ref().is_some_and(|r| {
                r.group.as_deref().unwrap_or("").is_empty()
                    && r.kind.as_deref().unwrap_or("Service") == "Service"
                    && r.name == service
            })
    })?;
    let default = config
        .spec
        .default_configuration
        .clone()
        .unwrap_or_default();
    let specific = config
        .spec
        .route_configurations
        .iter()
        .filter_map(|c| specificity(&c.route_identifier, route).map(|s| (s, c)))
        .max_by_key(|(s, _)| *s)
        .map(|(_, c)| &c.target_group_props);
    Some(match specific {
        Some(specific) => overlay(default, specific),
        None => default,
    })
}

/// How specifically `identifier` names `route` (None: it names another route).
fn specificity(identifier: &RouteIdentifier, route: RouteOf<'_>) -> Option<u8> {
    let matches =
        |given: &Option<String>, actual: &str| given.as_deref().is_none_or(|g| g == actual);
    if !matches(&identifier.kind, route.kind)
        || !matches(&identifier.namespace, route.namespace)
        || !matches(&identifier.name, route.name)
    {
        return None;
    }
    Some(
        u8::from(identifier.kind.is_some())
            + u8::from(identifier.namespace.is_some())
            + u8::from(identifier.name.is_some()),
    )
}

/// `specific` over `base`: each field set in `specific` wins; tags and attributes by key.
fn overlay(base: TargetGroupProps, specific: &TargetGroupProps) -> TargetGroupProps {
    let mut tags = base.tags.clone().unwrap_or_default();
    tags.extend(specific.tags.clone().unwrap_or_default());
    let mut attributes = base.target_group_attributes.clone();
    for attribute in &specific.target_group_attributes {
        attributes.retain(|a| a.key != attribute.key);
        attributes.push(attribute.clone());
    }
    let pick = |a: &Option<String>, b: &Option<String>| b.clone().or_else(|| a.clone());
    TargetGroupProps {
        target_group_name: pick(&base.target_group_name, &specific.target_group_name),
        ip_address_type: pick(&base.ip_address_type, &specific.ip_address_type),
        health_check_config: specific
            .health_check_config
            .clone()
            .or(base.health_check_config),
        node_selector: specific.node_selector.clone().or(base.node_selector),
        target_group_attributes: attributes,
        target_type: pick(&base.target_type, &specific.target_type),
        protocol: pick(&base.protocol, &specific.protocol),
        protocol_version: pick(&base.protocol_version, &specific.protocol_version),
        target_control_port: specific.target_control_port.or(base.target_control_port),
        enable_multi_cluster: specific.enable_multi_cluster.or(base.enable_multi_cluster),
        tags: (!tags.is_empty()).then_some(tags),
    }
}

/// The target type the settings ask for, else `default`.
pub fn target_type(props: Option<&TargetGroupProps>, default: TargetType) -> TargetType {
    match props.and_then(|p| p.target_type.as_deref()) {
        Some("ip") => TargetType::Ip,
        Some("instance") => TargetType::Instance,
        _ => default,
    }
}

/// The protocol version the settings ask for, else `default`.
pub fn protocol_version(
    props: Option<&TargetGroupProps>,
    default: ProtocolVersion,
) -> ProtocolVersion {
    props
        .and_then(|p| p.protocol_version.as_deref())
        .and_then(ProtocolVersion::parse)
        .unwrap_or(default)
}

/// The target group's protocol: HTTPS when asked, else HTTP (an ALB's targets take no other).
pub fn protocol(props: Option<&TargetGroupProps>) -> Protocol {
    match props.and_then(|p| p.protocol.as_deref()) {
        Some("HTTPS") => Protocol::Https,
        _ => Protocol::Http,
    }
}

/// `default` with the health-check fields the settings give.
pub fn health_check(props: Option<&TargetGroupProps>, default: HealthCheck) -> HealthCheck {
    let Some(given) = props.and_then(|p| p.health_check_config.as_ref()) else {
        return default;
    };
    let HealthCheckConfiguration {
        healthy_threshold_count,
        health_check_interval,
        health_check_path,
        health_check_port,
        health_check_protocol,
        health_check_timeout,
        unhealthy_threshold_count,
        matcher,
    } = given;
    let protocol = match health_check_protocol.as_deref() {
        Some("HTTPS") => Protocol::Https,
        Some("TCP") => Protocol::Tcp,
        Some("HTTP") => Protocol::Http,
        _ => default.protocol,
    };
    let http = protocol != Protocol::Tcp;
    let code = matcher
        .as_ref()
        .and_then(|m| m.http_code.clone().or_else(|| m.grpc_code.clone()));
    HealthCheck {
        protocol,
        port: health_check_port
            .as_deref()
            .and_then(CheckPort::parse)
            .unwrap_or(default.port),
        path: http
            .then(|| health_check_path.clone().or(default.path))
            .flatten(),
        healthy_threshold: healthy_threshold_count.unwrap_or(default.healthy_threshold),
        unhealthy_threshold: unhealthy_threshold_count.unwrap_or(default.unhealthy_threshold),
        timeout_seconds: health_check_timeout.unwrap_or(default.timeout_seconds),
        interval_seconds: health_check_interval.unwrap_or(default.interval_seconds),
        matcher: http.then(|| code.or(default.matcher)).flatten(),
    }
}

/// The attributes the settings give, by key.
pub fn attributes(props: Option<&TargetGroupProps>) -> BTreeMap<String, String> {
    props
        .map(|p| {
            p.target_group_attributes
                .iter()
                .map(|a| (a.key.clone(), a.value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> TargetGroupConfiguration {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "infra"},
            "spec": {
                "targetReference": {"name": "v1"},
                "defaultConfiguration": {
                    "targetType": "ip",
                    "healthCheckConfig": {"healthCheckPath": "/health", "healthCheckInterval": 5},
                    "tags": {"team": "web", "tier": "default"},
                    "targetGroupAttributes": [{"key": "deregistration_delay.timeout_seconds", "value": "30"}],
                },
                "routeConfigurations": [
                    {"routeIdentifier": {"kind": "HTTPRoute"},
                     "targetGroupProps": {"tags": {"tier": "http"}}},
                    {"routeIdentifier": {"kind": "HTTPRoute", "namespace": "infra", "name": "api"},
                     "targetGroupProps": {"healthCheckConfig": {"healthCheckPath": "/api/health"}, "protocolVersion": "HTTP2"}},
                    {"routeIdentifier": {"kind": "HTTPRoute", "namespace": "infra", "name": "other"},
                     "targetGroupProps": {"targetType": "instance"}},
                ],
            },
        }))
        .expect("configuration")
    }

    fn route(name: &str) -> RouteOf<'_> {
        RouteOf {
            kind: "HTTPRoute",
            namespace: "infra",
            name,
        }
    }

    #[test]
    fn the_most_specific_route_configuration_overlays_the_default() {
        let configs = [config()];
        let api = props_for(&configs, "infra", "v1", route("api")).expect("props");
        assert_eq!(api.target_type.as_deref(), Some("ip"));
        assert_eq!(api.protocol_version.as_deref(), Some("HTTP2"));
        // The route's health check replaces the default's whole.
        let check = api.health_check_config.clone().unwrap();
        assert_eq!(check.health_check_path.as_deref(), Some("/api/health"));
        assert_eq!(check.health_check_interval, None);
        // Kind only matches too, but less specifically; the tags of the default stay.
        let web = props_for(&configs, "infra", "v1", route("web")).expect("props");
        let tags = web.tags.unwrap();
        assert_eq!(tags["tier"], "http");
        assert_eq!(tags["team"], "web");
        assert_eq!(web.target_group_attributes.len(), 1);
        // Another Service, or another namespace: nothing.
        assert!(props_for(&configs, "infra", "v2", route("web")).is_none());
        assert!(props_for(&configs, "web", "v1", route("web")).is_none());
    }

    #[test]
    fn settings_apply_over_the_defaults() {
        let configs = [config()];
        let props = props_for(&configs, "infra", "v1", route("web"));
        let default = HealthCheck {
            protocol: Protocol::Http,
            port: CheckPort::TrafficPort,
            path: Some("/".into()),
            healthy_threshold: 3,
            unhealthy_threshold: 3,
            timeout_seconds: 5,
            interval_seconds: 15,
            matcher: Some("200-399".into()),
        };
        let check = health_check(props.as_ref(), default.clone());
        assert_eq!(check.path.as_deref(), Some("/health"));
        assert_eq!(check.interval_seconds, 5);
        assert_eq!(check.healthy_threshold, 3);
        assert_eq!(
            target_type(props.as_ref(), TargetType::Instance),
            TargetType::Ip
        );
        assert_eq!(
            attributes(props.as_ref())["deregistration_delay.timeout_seconds"],
            "30"
        );
        let other = props_for(&configs, "infra", "v1", route("other"));
        assert_eq!(
            target_type(other.as_ref(), TargetType::Ip),
            TargetType::Instance
        );
        assert_eq!(health_check(None, default.clone()), default);
    }
}
