//! A Service target group's health check: upstream's NLB defaults, then the annotations.
//!
//! Defaults: TCP on the traffic port, 3 healthy / 3 unhealthy, timeout 10 s, every 10 s. For
//! instance targets of an `externalTrafficPolicy: Local` Service, kube-proxy answers on the
//! health-check node port whether the node has a ready endpoint: HTTP `/healthz` there, 2 / 2,
//! timeout 6 s, every 10 s (upstream's defaults, which keep traffic off nodes without a pod).
//!
//! A default never contradicts the user: an interval set shorter than the default timeout, with
//! no timeout set, takes the interval as its timeout (ELB refuses a timeout longer than the
//! interval; upstream sends the default and fails there), and the build says so.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use lb_api::TargetType;

use super::annotations::{
    HEALTHCHECK_INTERVAL, HEALTHCHECK_PORT, HEALTHCHECK_TIMEOUT, HealthCheckAnnotations,
    HealthCheckPort, HealthCheckProtocol,
};
use super::build::BuildError;
use crate::stack::{CheckPort, HealthCheck, Protocol};

/// The health check, and the default it adapted to the user's interval (named), if any.
pub fn health_check(
    service: &Service,
    annotations: &HealthCheckAnnotations,
    target_type: TargetType,
) -> Result<(HealthCheck, Option<String>), BuildError> {
    let spec = service.spec.clone().unwrap_or_default();
    let local = spec.external_traffic_policy.as_deref() == Some("Local")
        && target_type == TargetType::Instance;
    let mut check = if local {
        HealthCheck {
            protocol: Protocol::Http,
            port: spec
                .health_check_node_port
                .and_then(|p| u16::try_from(p).ok())
                .map_or(CheckPort::TrafficPort, CheckPort::Number),
            path: Some("/healthz".into()),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
            timeout_seconds: 6,
            interval_seconds: 10,
            matcher: None,
        }
    } else {
        tcp_default()
    };
    if let Some(protocol) = annotations.protocol {
        check.protocol = match protocol {
            HealthCheckProtocol::Tcp => Protocol::Tcp,
            HealthCheckProtocol::Http => Protocol::Http,
            HealthCheckProtocol::Https => Protocol::Https,
        };
    }
    if let Some(port) = &annotations.port {
        check.port = port_of(service, port, target_type)?;
    }
    let set = |value: Option<i32>, field: &mut i32| {
        if let Some(v) = value {
            *field = v;
        }
    };
    set(annotations.healthy_threshold, &mut check.healthy_threshold);
    set(
        annotations.unhealthy_threshold,
        &mut check.unhealthy_threshold,
    );
    set(annotations.timeout_seconds, &mut check.timeout_seconds);
    set(annotations.interval_seconds, &mut check.interval_seconds);
    let mut adapted = None;
    if annotations.timeout_seconds.is_none() && check.timeout_seconds > check.interval_seconds {
        adapted = Some(format!(
            "annotation {HEALTHCHECK_INTERVAL} is {interval}s and no {HEALTHCHECK_TIMEOUT} is set: the health-check timeout is {interval}s, not the default {default}s, which ELB would refuse as longer than the interval",
            interval = check.interval_seconds,
            default = check.timeout_seconds,
        ));
        check.timeout_seconds = check.interval_seconds;
    }
    if check.timeout_seconds > check.interval_seconds {
        return Err(BuildError::HealthCheckTimeout {
            timeout: check.timeout_seconds,
            interval: check.interval_seconds,
        });
    }
    if check.protocol == Protocol::Tcp {
        check.path = None;
        check.matcher = None;
    } else {
        let path = annotations.path.clone().or(check.path.take());
        check.path = Some(path.unwrap_or_else(|| "/".into()));
        check.matcher = Some(
            annotations
                .success_codes
                .clone()
                .unwrap_or_else(|| "200-399".into()),
        );
    }
    Ok((check, adapted))
}

/// Upstream's NLB default: TCP on the traffic port, 3 / 3, timeout 10 s, every 10 s.
pub fn tcp_default() -> HealthCheck {
    HealthCheck {
        protocol: Protocol::Tcp,
        port: CheckPort::TrafficPort,
        path: None,
        healthy_threshold: 3,
        unhealthy_threshold: 3,
        timeout_seconds: 10,
        interval_seconds: 10,
        matcher: None,
    }
}

/// A named health-check port is a Service port's name: its target port (ip) or node port (instance).
fn port_of(
    service: &Service,
    port: &HealthCheckPort,
    target_type: TargetType,
) -> Result<CheckPort, BuildError> {
    match port {
        HealthCheckPort::TrafficPort => Ok(CheckPort::TrafficPort),
        HealthCheckPort::Number(n) => Ok(CheckPort::Number(*n)),
        HealthCheckPort::Name(name) => {
            let unknown = || BuildError::UnknownPort {
                annotation: HEALTHCHECK_PORT.to_string(),
                value: name.clone(),
            };
            let ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
            let port = ports
                .into_iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .ok_or_else(unknown)?;
            let number = match target_type {
                TargetType::Instance => port.node_port,
                TargetType::Ip => match &port.target_port {
                    Some(IntOrString::Int(n)) => Some(*n),
                    None => Some(port.port),
                    Some(IntOrString::String(_)) => None,
                },
            };
            number
                .and_then(|n| u16::try_from(n).ok())
                .map(CheckPort::Number)
                .ok_or_else(unknown)
        }
    }
}
