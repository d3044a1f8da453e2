//! Errors of AWS calls, classified into a few kinds that decide what the controller does next
//! (the requeue, the Event reason, the metric label).

/// What went wrong, as far as the caller's next step is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AwsErrorKind {
    /// The resource does not exist (a target group, a role).
    NotFound,
    /// Refused for lack of permission, or a role that cannot be assumed.
    AccessDenied,
    /// Rate limited: back off long.
    Throttled,
    /// The request itself is wrong (an invalid target, a bad parameter): retrying will not help.
    InvalidRequest,
    /// The service failed or did not answer (5xx, timeouts, connection errors): retry.
    Unavailable,
    /// The resource is still used by another (EC2's DependencyViolation, ELB's ResourceInUse):
    /// it can go once that one has.
    InUse,
    /// Not sent, or given up in flight: this replica no longer holds the Lease (the
    /// [`crate::WriteFence`]). The new leader does the work.
    NotLeader,
    Other,
}

impl AwsErrorKind {
    /// Low-cardinality label for metrics and event reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AccessDenied => "access_denied",
            Self::Throttled => "throttled",
            Self::InvalidRequest => "invalid_request",
            Self::Unavailable => "unavailable",
            Self::InUse => "in_use",
            Self::NotLeader => "not_leader",
            Self::Other => "other",
        }
    }
}

#[derive(Clone, Debug, thiserror::Error)]
#[error("AWS {operation} failed ({}): {message}", kind.as_str())]
pub struct AwsError {
    pub operation: &'static str,
    pub kind: AwsErrorKind,
    pub message: String,
    /// The API's error code, when it answered one (`InvalidGroup.Duplicate`).
    pub code: Option<String>,
}

impl AwsError {
    pub fn new(operation: &'static str, kind: AwsErrorKind, message: impl Into<String>) -> Self {
        Self {
            operation,
            kind,
            message: message.into(),
            code: None,
        }
    }

    /// A mutating call the [`crate::WriteFence`] stopped; `how`: not sent, or given up in flight.
    pub fn not_leader(operation: &'static str, how: &str) -> Self {
        Self::new(
            operation,
            AwsErrorKind::NotLeader,
            format!("{how}: this replica no longer holds the leader Lease"),
        )
    }

    /// Whether the API answered one of these error codes.
    pub fn has_code(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    /// Classifies an error code from the API; `None` (no answer: a timeout, a connection error)
    /// is `Unavailable`.
    pub fn from_code(operation: &'static str, code: Option<&str>, message: String) -> Self {
        let kind = match code {
            None => AwsErrorKind::Unavailable,
            Some(
                "TargetGroupNotFound"
                | "TargetGroupNotFoundException"
                | "LoadBalancerNotFound"
                | "ListenerNotFound"
                | "InvalidGroup.NotFound"
                | "InvalidSubnetID.NotFound"
                | "NoSuchEntity"
                | "NoSuchEntityException",
            ) => AwsErrorKind::NotFound,
            Some(
                "AccessDenied"
                | "AccessDeniedException"
                | "UnauthorizedOperation"
                | "InvalidClientTokenId"
                | "ExpiredToken"
                | "ExpiredTokenException",
            ) => AwsErrorKind::AccessDenied,
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
                | "InvalidParameterValue"
                | "InvalidConfigurationRequest",
            ) => AwsErrorKind::InvalidRequest,
            Some(
                "ServiceUnavailable"
                | "InternalFailure"
                | "InternalError"
                | "RequestTimeout"
                | "RequestTimeoutException",
            ) => AwsErrorKind::Unavailable,
            Some("DependencyViolation" | "ResourceInUse") => AwsErrorKind::InUse,
            Some(_) => AwsErrorKind::Other,
        };
        Self {
            operation,
            kind,
            message,
            code: code.map(str::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_classified() {
        let kind = |code| AwsError::from_code("RegisterTargets", Some(code), String::new()).kind;
        assert_eq!(kind("TargetGroupNotFound"), AwsErrorKind::NotFound);
        assert_eq!(kind("AccessDenied"), AwsErrorKind::AccessDenied);
        assert_eq!(kind("Throttling"), AwsErrorKind::Throttled);
        assert_eq!(kind("InvalidTarget"), AwsErrorKind::InvalidRequest);
        assert_eq!(kind("ServiceUnavailable"), AwsErrorKind::Unavailable);
        assert_eq!(kind("Boom"), AwsErrorKind::Other);
        assert_eq!(
            AwsError::from_code("RegisterTargets", None, String::new()).kind,
            AwsErrorKind::Unavailable
        );
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
