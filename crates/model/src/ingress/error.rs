//! Why an Ingress cannot join its group's ALB: each error names what to fix (the annotation and
//! its value, the Service, the class parameter, or the member it conflicts with).

use super::build::{MAX_CERTIFICATES_PER_LISTENER, MAX_RULES_PER_LISTENER, MAX_TARGET_GROUPS};
use super::rules::RuleError;
use crate::annotations::AnnotationErrors;
use lb_api::shown::{shown, shown_name};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error(transparent)]
    Annotations(#[from] AnnotationErrors),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("IngressClassParams spec.{field}: {} is not {want}", shown(.value))]
    ClassParams {
        field: &'static str,
        value: String,
        want: &'static str,
    },
    #[error("IngressClassParams targetType {} is not one of ip, instance", shown(.0))]
    ClassTargetType(String),
    #[error("annotation {key} is not set")]
    ActionNotSet { key: String },
    #[error("annotation {key}: {source}")]
    Action {
        key: String,
        source: Box<MemberError>,
    },
    #[error("targetGroupName {} is not supported yet; name it by targetGroupARN", shown(.0))]
    TargetGroupName(String),
    #[error(
        "listener HTTPS:{port} needs a certificate for host {}: no ACM certificate covers it; set annotation alb.ingress.kubernetes.io/certificate-arn",
        shown(.host)
    )]
    NoCertificateForHost { port: u16, host: String },
    #[error(
        "listener HTTPS:{port} needs a certificate: set annotation alb.ingress.kubernetes.io/certificate-arn, or give the rules hosts an ACM certificate covers"
    )]
    NoCertificate { port: u16 },
    /// `service`: `<namespace>/<name>`.
    #[error("Service {} not found", shown_name(.service))]
    ServiceNotFound { service: String },
    #[error("Service {} has no port {}", shown_name(.service), shown_name(.port))]
    NoSuchPort { service: String, port: String },
    #[error("Service {service}: {errors}")]
    ServiceAnnotations {
        service: String,
        errors: AnnotationErrors,
    },
    #[error(
        "Service {service} port {port} has no nodePort, which instance targets need (make it a NodePort Service, or use target-type ip)"
    )]
    NoNodePort { service: String, port: i32 },
    #[error(
        "Service {service} has the IPv6 family, which needs a dualstack load balancer: set annotation alb.ingress.kubernetes.io/ip-address-type: dualstack"
    )]
    Ipv6NeedsDualstack { service: String },
    #[error(
        "annotations alb.ingress.kubernetes.io/healthcheck-timeout-seconds ({timeout}s) and alb.ingress.kubernetes.io/healthcheck-interval-seconds ({interval}s): the timeout must be shorter than the interval"
    )]
    HealthCheckTimeout { timeout: i32, interval: i32 },
    #[error(
        "annotation alb.ingress.kubernetes.io/healthcheck-port: {} names no port of Service {service} usable for {target_type} targets",
        shown(.name)
    )]
    HealthCheckPort {
        name: String,
        service: String,
        target_type: &'static str,
    },
    /// A group-wide setting another member set otherwise.
    #[error(
        "annotation {annotation}: {} conflicts with {} of {member} in the same group",
        shown(.value),
        shown(.have)
    )]
    Conflict {
        annotation: &'static str,
        value: String,
        have: String,
        member: String,
    },
    #[error("listens on port {port} with {protocol}, which {other} uses with the other protocol")]
    PortProtocol {
        port: u16,
        protocol: &'static str,
        other: String,
    },
    #[error("has a default backend, and so does {other}; a group has one")]
    SecondDefaultBackend { other: String },
    #[error(
        "would bring the group to {count} target groups; an ALB has at most {MAX_TARGET_GROUPS}"
    )]
    TooManyTargetGroups { count: usize },
    #[error(
        "would bring listener {port} to {count} rules; a listener has at most {MAX_RULES_PER_LISTENER}"
    )]
    TooManyRules { port: u16, count: usize },
    #[error(
        "would bring the group to {count} certificates; a listener has at most {MAX_CERTIFICATES_PER_LISTENER}"
    )]
    TooManyCertificates { count: usize },
    #[error(
        "annotation alb.ingress.kubernetes.io/ssl-redirect: \"{port}\" names no HTTPS listener of the group (listen-ports)"
    )]
    SslRedirectWithoutHttps { port: u16 },
    #[error(
        "annotation alb.ingress.kubernetes.io/manage-backend-security-group-rules: \"true\" needs the backend security group, which --enable-backend-security-group=false turns off"
    )]
    BackendGroupDisabled,
    /// No subnet could be chosen for the group's ALB (the message names the annotation).
    #[error("{0}")]
    Subnets(String),
}
