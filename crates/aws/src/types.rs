//! Plain values for targets, their health and target groups, independent of the SDK's types.

use std::fmt;

/// A target as ELB keys it: instance ID or IP address, and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey {
    pub id: String,
    pub port: u16,
}

impl TargetKey {
    pub fn new(id: impl Into<String>, port: u16) -> Self {
        Self {
            id: id.into(),
            port,
        }
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.id, self.port)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetState {
    Initial,
    Healthy,
    Unhealthy,
    Unused,
    Draining,
    Unavailable,
    Other(String),
}

impl TargetState {
    pub fn parse(state: &str) -> Self {
        match state {
            "initial" => Self::Initial,
            "healthy" => Self::Healthy,
            "unhealthy" => Self::Unhealthy,
            "unused" => Self::Unused,
            "draining" => Self::Draining,
            "unavailable" => Self::Unavailable,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Initial => "initial",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Unused => "unused",
            Self::Draining => "draining",
            Self::Unavailable => "unavailable",
            Self::Other(s) => s,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetHealth {
    pub target: TargetKey,
    pub state: TargetState,
    /// ELB's reason code, e.g. `Target.FailedHealthChecks`.
    pub reason: Option<String>,
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroupInfo {
    pub arn: String,
    pub name: String,
    /// `ip`, `instance`, `lambda` or `alb`.
    pub target_type: String,
    pub port: Option<u16>,
    pub vpc_id: Option<String>,
    pub load_balancer_arns: Vec<String>,
    /// Seconds between health checks, and passes needed to turn healthy: together, the earliest
    /// a newly registered target can be healthy.
    pub health_check_interval_seconds: Option<u32>,
    pub healthy_threshold_count: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsErrorKind {
    NotFound,
    Throttled,
    InvalidRequest,
    Unavailable,
    Other,
}

impl AwsErrorKind {
    /// Low-cardinality label for metrics and event reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Throttled => "throttled",
            Self::InvalidRequest => "invalid_request",
            Self::Unavailable => "unavailable",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("AWS {operation} failed ({}): {message}", kind.as_str())]
pub struct AwsError {
    pub operation: &'static str,
    pub kind: AwsErrorKind,
    pub message: String,
}

impl AwsError {
    /// Classifies an error code from the API.
    pub fn from_code(operation: &'static str, code: Option<&str>, message: String) -> Self {
        let kind = match code {
            Some("TargetGroupNotFound" | "TargetGroupNotFoundException") => AwsErrorKind::NotFound,
            Some(
                "Throttling"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "TooManyRequestsException",
            ) => AwsErrorKind::Throttled,
            Some(
                "ValidationError"
                | "InvalidTarget"
                | "InvalidTargetException"
                | "InvalidParameterValue",
            ) => AwsErrorKind::InvalidRequest,
            Some("ServiceUnavailable" | "InternalFailure" | "InternalError") => {
                AwsErrorKind::Unavailable
            }
            _ => AwsErrorKind::Other,
        };
        Self {
            operation,
            kind,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in [
            "initial",
            "healthy",
            "unhealthy",
            "unused",
            "draining",
            "unavailable",
            "weird",
        ] {
            assert_eq!(TargetState::parse(s).as_str(), s);
        }
    }

    #[test]
    fn error_codes_are_classified() {
        let kind = |code| AwsError::from_code("RegisterTargets", Some(code), String::new()).kind;
        assert_eq!(kind("TargetGroupNotFound"), AwsErrorKind::NotFound);
        assert_eq!(kind("Throttling"), AwsErrorKind::Throttled);
        assert_eq!(kind("InvalidTarget"), AwsErrorKind::InvalidRequest);
        assert_eq!(kind("ServiceUnavailable"), AwsErrorKind::Unavailable);
        assert_eq!(kind("Boom"), AwsErrorKind::Other);
        let text = AwsError::from_code(
            "RegisterTargets",
            Some("Throttling"),
            "Rate exceeded".into(),
        )
        .to_string();
        assert_eq!(
            text,
            "AWS RegisterTargets failed (throttled): Rate exceeded"
        );
    }
}
