//! Why an Ingress group reconcile failed: its Event reason (as upstream names them) and when to
//! retry.

use lb_aws::AwsError;

use crate::error::{ErrorCategory, aws_category};

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// No member of the group can be built: each member's Warning says why; AWS is untouched.
    #[error("no member of group {group} can be built")]
    NoMember { group: String },
    /// The group's ALB is to be made and no subnet is tagged for it (one that exists keeps its
    /// own subnets).
    #[error("group {group}: {problem}")]
    NoSubnets { group: String, problem: String },
    /// The VPC's subnets or the account's certificates could not be read.
    #[error("discovering {what}: {source}")]
    Discovery {
        what: &'static str,
        #[source]
        source: AwsError,
    },
    /// AWS refused or failed a call while converging.
    #[error(transparent)]
    Deploy(#[from] AwsError),
    #[error("Kubernetes API error while {context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
}

impl IngressError {
    /// The Event reason: upstream's, so alerts written for it keep working.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoMember { .. } | Self::NoSubnets { .. } | Self::Discovery { .. } => {
                "FailedBuildModel"
            }
            Self::Deploy(_) | Self::Kube { .. } => "FailedDeployModel",
        }
    }

    /// Broken members wait for a change; AWS errors retry as their kind says.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Self::NoMember { .. } | Self::NoSubnets { .. } => ErrorCategory::InvalidInput,
            Self::Discovery { source, .. } | Self::Deploy(source) => aws_category(source.kind),
            Self::Kube { .. } => ErrorCategory::Transient,
        }
    }
}

pub(crate) trait KubeContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, IngressError>;
}

impl<T> KubeContext<T> for Result<T, kube::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, IngressError> {
        self.map_err(|source| IngressError::Kube {
            context: context(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use lb_aws::AwsErrorKind;

    use super::*;

    #[test]
    fn reasons_and_categories_as_upstream_names_them() {
        let none = IngressError::NoMember {
            group: "shop".into(),
        };
        assert_eq!(none.reason(), "FailedBuildModel");
        assert_eq!(none.category(), ErrorCategory::InvalidInput);
        let throttled = AwsError::new("CreateRule", AwsErrorKind::Throttled, "slow down");
        let deploy = IngressError::Deploy(throttled);
        assert_eq!(deploy.reason(), "FailedDeployModel");
        assert_eq!(deploy.category(), ErrorCategory::Throttled);
    }
}
