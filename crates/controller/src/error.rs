//! Errors of the reconcilers. Each has a stable, low-cardinality reason, used as the Kubernetes
//! Event reason, the status condition reason and the metric label; and a category that decides
//! when to try again.

use std::time::Duration;

use lb_aws::{AwsError, AwsErrorKind};
use lb_model::target_rules::RulesError;
use lb_model::targets::DesiredError;

use crate::tgb::target_rules::TargetRulesError;

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The target group the binding names does not exist (in the account it is reached in).
    #[error("{field} {value:?}: no such target group{}", account.as_ref().map(|a| format!(" in account {a}")).unwrap_or_default())]
    TargetGroupNotFound {
        field: &'static str,
        value: String,
        account: Option<String>,
    },
    /// The role the binding names could not be assumed.
    #[error("spec.iamRoleArnToAssume {role:?}: {source}")]
    Role {
        role: String,
        #[source]
        source: AwsError,
    },
    #[error("the binding names neither spec.targetGroupARN nor spec.targetGroupName")]
    NoTargetGroup,
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error(transparent)]
    Desired(#[from] DesiredError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("Kubernetes API error while {context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// The rules on the targets' security groups could not be computed or written.
    #[error("spec.networking: {0}")]
    TargetRules(#[from] TargetRulesError),
}

/// What kind of failure, as far as trying again is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCategory {
    /// The binding (or the Service it names) is wrong: nothing changes until the object does,
    /// and its watch brings it back.
    InvalidInput,
    /// Something in the cluster is missing (the Service): it may appear any moment; retry soon.
    MissingInCluster,
    /// Something in AWS is missing (the target group): retry, slowly.
    MissingInAws,
    /// AWS refused for lack of permission (a role that cannot be assumed): retry, slowly.
    AccessDenied,
    /// AWS rate limiting, after the SDK's own retries: back off long.
    Throttled,
    /// AWS or the Kubernetes API failed or did not answer: retry with backoff.
    Transient,
}

/// First delay and cap of the exponential backoff, per category (None: wait for a change).
pub fn backoff(category: ErrorCategory) -> Option<(Duration, Duration)> {
    let seconds = Duration::from_secs;
    match category {
        ErrorCategory::InvalidInput => None,
        ErrorCategory::MissingInCluster => Some((Duration::from_millis(500), seconds(30))),
        ErrorCategory::MissingInAws | ErrorCategory::AccessDenied => {
            Some((seconds(5), seconds(300)))
        }
        ErrorCategory::Throttled => Some((seconds(10), seconds(300))),
        ErrorCategory::Transient => Some((Duration::from_millis(500), seconds(300))),
    }
}

/// The delay before attempt `failures + 1`: exponential from the category's first delay to its
/// cap; None for input errors. Jitter is the caller's.
pub fn retry_delay(category: ErrorCategory, failures: u32) -> Option<Duration> {
    let (first, cap) = backoff(category)?;
    let doublings = failures.saturating_sub(1).min(16);
    Some(
        first
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(cap),
    )
}

/// When to try again after AWS answered with an error of this kind.
pub fn aws_category(kind: AwsErrorKind) -> ErrorCategory {
    match kind {
        AwsErrorKind::NotFound => ErrorCategory::MissingInAws,
        AwsErrorKind::AccessDenied => ErrorCategory::AccessDenied,
        AwsErrorKind::Throttled => ErrorCategory::Throttled,
        AwsErrorKind::InvalidRequest => ErrorCategory::InvalidInput,
        AwsErrorKind::Unavailable
        | AwsErrorKind::InUse
        | AwsErrorKind::NotLeader
        | AwsErrorKind::Other => ErrorCategory::Transient,
    }
}

impl ControllerError {
    pub fn category(&self) -> ErrorCategory {
        match self {
            Self::NoTargetGroup | Self::InvalidSpec(_) => ErrorCategory::InvalidInput,
            Self::TargetGroupNotFound { .. } => ErrorCategory::MissingInAws,
            Self::Role { source, .. } => match source.kind {
                AwsErrorKind::Throttled => ErrorCategory::Throttled,
                AwsErrorKind::Unavailable
                | AwsErrorKind::InUse
                | AwsErrorKind::NotLeader
                | AwsErrorKind::Other => ErrorCategory::Transient,
                _ => ErrorCategory::AccessDenied,
            },
            Self::Desired(DesiredError::ServiceNotFound { .. }) => ErrorCategory::MissingInCluster,
            Self::Desired(_) => ErrorCategory::InvalidInput,
            Self::Aws(err) => aws_category(err.kind),
            Self::Kube { .. } | Self::Finalizer(_) => ErrorCategory::Transient,
            Self::TargetRules(TargetRulesError::Aws(err)) => aws_category(err.kind),
            Self::TargetRules(TargetRulesError::Rules(RulesError::NoEndpointGroup { .. })) => {
                ErrorCategory::MissingInAws
            }
            Self::TargetRules(TargetRulesError::Rules(_)) => ErrorCategory::InvalidInput,
        }
    }

    /// The Event and condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TargetGroupNotFound { .. } => "TargetGroupNotFound",
            Self::Role { .. } => "AssumeRoleFailed",
            Self::NoTargetGroup | Self::InvalidSpec(_) => "InvalidSpec",
            Self::Desired(err) => match err {
                DesiredError::ServicePortNotFound { .. } => "ServicePortNotFound",
                DesiredError::NoNodePort { .. } => "NoNodePort",
                DesiredError::NoEndpointPort { .. } => "NoEndpointPort",
                DesiredError::ServiceNotFound { .. } => "ServiceNotFound",
                DesiredError::UnsupportedTargetType { .. }
                | DesiredError::TargetTypeMismatch { .. } => "TargetTypeMismatch",
            },
            Self::Aws(err) => match err.kind {
                AwsErrorKind::Throttled => "AwsThrottled",
                AwsErrorKind::AccessDenied => "AwsAccessDenied",
                AwsErrorKind::NotFound => "AwsNotFound",
                AwsErrorKind::InvalidRequest => "AwsInvalidRequest",
                AwsErrorKind::NotLeader => "NotLeader",
                AwsErrorKind::Unavailable | AwsErrorKind::InUse | AwsErrorKind::Other => "AwsError",
            },
            Self::Kube { .. } => "KubernetesError",
            Self::Finalizer(_) => "FinalizerError",
            Self::TargetRules(TargetRulesError::Aws(_)) => "SecurityGroupRulesFailed",
            Self::TargetRules(TargetRulesError::Rules(RulesError::NoEndpointGroup { .. })) => {
                "NoEndpointSecurityGroup"
            }
            Self::TargetRules(TargetRulesError::Rules(_)) => "InvalidNetworking",
        }
    }
}

pub type Result<T, E = ControllerError> = std::result::Result<T, E>;

pub(crate) trait KubeContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> KubeContext<T> for std::result::Result<T, kube::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| ControllerError::Kube {
            context: context(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(kind: AwsErrorKind) -> ControllerError {
        ControllerError::Aws(AwsError::new("RegisterTargets", kind, "x"))
    }

    #[test]
    fn categories_choose_the_requeue() {
        let missing_service = ControllerError::Desired(DesiredError::ServiceNotFound {
            namespace: "shop".into(),
            name: "web".into(),
        });
        assert_eq!(missing_service.category(), ErrorCategory::MissingInCluster);
        assert_eq!(missing_service.reason(), "ServiceNotFound");
        assert_eq!(
            ControllerError::InvalidSpec("x".into()).category(),
            ErrorCategory::InvalidInput
        );
        assert_eq!(
            aws(AwsErrorKind::Throttled).category(),
            ErrorCategory::Throttled
        );
        assert_eq!(aws(AwsErrorKind::Throttled).reason(), "AwsThrottled");
        assert_eq!(
            aws(AwsErrorKind::Unavailable).category(),
            ErrorCategory::Transient
        );

        // An invalid spec waits for a change; a missing Service retries soon; throttling long.
        assert_eq!(retry_delay(ErrorCategory::InvalidInput, 1), None);
        assert_eq!(
            retry_delay(ErrorCategory::MissingInCluster, 1),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            retry_delay(ErrorCategory::MissingInCluster, 20),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_delay(ErrorCategory::Throttled, 1),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_delay(ErrorCategory::Throttled, 2),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            retry_delay(ErrorCategory::Transient, 3),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_delay(ErrorCategory::Transient, 40),
            Some(Duration::from_secs(300))
        );
    }
}
