//! Why a load balancer stack's pass failed, whatever its source (Ingress group, Service): the
//! Event reason (as upstream names them) and when to try again.

use lb_aws::AwsError;
use lb_model::service::ModelError;

use crate::error::{ErrorCategory, aws_category};

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A Service's annotations (or the Service itself) ask for something invalid: the error
    /// names the annotation and its value; AWS is untouched.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// No member of an Ingress group can be built: each member's Warning says why; AWS is
    /// untouched.
    #[error("no member of group {group} can be built")]
    NoMember { group: String },
    /// The stack's load balancer is to be made and no subnet is tagged for it (one that exists
    /// keeps its own subnets).
    #[error("{stack}: {problem}")]
    NoSubnets { stack: String, problem: String },
    /// The load balancer would be replaced (its scheme or type changed) while members of its
    /// group are held by their errors: their rules live on the load balancer and would go with
    /// it, so a conflicting member taking the lead could take the others offline. AWS is
    /// untouched until the held members are fixed (or leave the group).
    #[error(
        "{stack}: the load balancer would be replaced ({change}) while {} held by an error; fix or remove {} first",
        held_text(members),
        if members.len() == 1 { "it" } else { "them" }
    )]
    ReplaceWhileHeld {
        stack: String,
        change: String,
        members: Vec<String>,
    },
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

impl StackError {
    /// The Event reason: upstream's, so alerts written for it keep working.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Model(_)
            | Self::NoMember { .. }
            | Self::NoSubnets { .. }
            | Self::ReplaceWhileHeld { .. } => "FailedBuildModel",
            Self::Discovery { .. } => "FailedBuildModel",
            Self::Deploy(_) | Self::Kube { .. } => "FailedDeployModel",
        }
    }

    /// Bad input waits for a change of the object; AWS errors retry as their kind says.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Self::Model(_)
            | Self::NoMember { .. }
            | Self::NoSubnets { .. }
            | Self::ReplaceWhileHeld { .. } => ErrorCategory::InvalidInput,
            Self::Discovery { source, .. } | Self::Deploy(source) => aws_category(source.kind),
            Self::Kube { .. } => ErrorCategory::Transient,
        }
    }
}

/// "member a/b is" or "members a/b, c/d are".
fn held_text(members: &[String]) -> String {
    match members {
        [one] => format!("member {one} is"),
        many => format!("members {} are", many.join(", ")),
    }
}

/// A Kubernetes API error with what was being done.
pub(crate) trait KubeContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StackError>;
}

impl<T> KubeContext<T> for Result<T, kube::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StackError> {
        self.map_err(|source| StackError::Kube {
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
        let none = StackError::NoMember {
            group: "shop".into(),
        };
        assert_eq!(none.reason(), "FailedBuildModel");
        assert_eq!(none.category(), ErrorCategory::InvalidInput);
        let refused = AwsError::new(
            "CreateLoadBalancer",
            AwsErrorKind::InvalidRequest,
            "bad subnet",
        );
        let throttled = AwsError::new("DescribeTags", AwsErrorKind::Throttled, "slow down");
        assert_eq!(
            StackError::Deploy(refused.clone()).reason(),
            "FailedDeployModel"
        );
        assert_eq!(
            StackError::Deploy(refused).category(),
            ErrorCategory::InvalidInput
        );
        let discovery = StackError::Discovery {
            what: "subnets",
            source: throttled.clone(),
        };
        assert_eq!(discovery.reason(), "FailedBuildModel");
        assert_eq!(discovery.category(), ErrorCategory::Throttled);
        assert_eq!(
            StackError::Deploy(throttled).category(),
            ErrorCategory::Throttled
        );
    }
}
