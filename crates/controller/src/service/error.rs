//! Why a Service reconcile failed: its Event reason (as upstream names them) and when to retry.

use lb_aws::AwsError;
use lb_model::service::ModelError;

use crate::error::{ErrorCategory, aws_category};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// An annotation (or the Service itself) asks for something invalid: the error names it.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The VPC's subnets could not be described.
    #[error("discovering subnets: {0}")]
    Subnets(#[source] AwsError),
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

impl ServiceError {
    /// The Event reason: upstream's, so alerts written for it keep working.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Model(_) | Self::Subnets(_) => "FailedBuildModel",
            Self::Deploy(_) | Self::Kube { .. } => "FailedDeployModel",
        }
    }

    /// A bad annotation waits for the Service to change; AWS errors retry as their kind says.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Self::Model(_) => ErrorCategory::InvalidInput,
            Self::Subnets(err) | Self::Deploy(err) => aws_category(err.kind),
            Self::Kube { .. } => ErrorCategory::Transient,
        }
    }
}

pub(crate) trait KubeContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, ServiceError>;
}

impl<T> KubeContext<T> for Result<T, kube::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, ServiceError> {
        self.map_err(|source| ServiceError::Kube {
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
        let refused = AwsError::new(
            "CreateLoadBalancer",
            AwsErrorKind::InvalidRequest,
            "bad subnet",
        );
        let throttled = AwsError::new("DescribeTags", AwsErrorKind::Throttled, "slow down");
        assert_eq!(
            ServiceError::Deploy(refused.clone()).reason(),
            "FailedDeployModel"
        );
        assert_eq!(
            ServiceError::Deploy(refused).category(),
            ErrorCategory::InvalidInput
        );
        assert_eq!(
            ServiceError::Subnets(throttled.clone()).reason(),
            "FailedBuildModel"
        );
        assert_eq!(
            ServiceError::Deploy(throttled).category(),
            ErrorCategory::Throttled
        );
    }
}
