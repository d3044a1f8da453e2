//! Errors of the reconcilers. Each has a stable, low-cardinality reason used three ways: as the
//! Kubernetes Event reason, as the status condition reason, and as the metric label.

use lb_aws::{AwsError, AwsErrorKind};

use crate::desired::DesiredError;

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("target group {0} was not found")]
    TargetGroupNotFound(String),
    #[error("the binding names neither spec.targetGroupARN nor spec.targetGroupName")]
    NoTargetGroup,
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("spec.targetType is {binding} but target group {target_group} has target type {group}")]
    TargetTypeMismatch {
        binding: String,
        target_group: String,
        group: String,
    },
    #[error("target group {0} has target type {1}, which a TargetGroupBinding cannot fill")]
    UnsupportedTargetType(String, String),
    #[error("Service {namespace}/{name} was not found")]
    ServiceNotFound { namespace: String, name: String },
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
}

impl ControllerError {
    /// The Event and condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TargetGroupNotFound(_) => "TargetGroupNotFound",
            Self::NoTargetGroup | Self::InvalidSpec(_) => "InvalidSpec",
            Self::TargetTypeMismatch { .. } | Self::UnsupportedTargetType(..) => {
                "TargetTypeMismatch"
            }
            Self::ServiceNotFound { .. } => "ServiceNotFound",
            Self::Desired(DesiredError::ServicePortNotFound { .. }) => "ServicePortNotFound",
            Self::Desired(DesiredError::NoNodePort { .. }) => "NoNodePort",
            Self::Desired(DesiredError::NoEndpointPort { .. }) => "NoEndpointPort",
            Self::Aws(err) if err.kind == AwsErrorKind::Throttled => "AwsThrottled",
            Self::Aws(_) => "AwsError",
            Self::Kube { .. } => "KubernetesError",
            Self::Finalizer(_) => "FinalizerError",
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
