//! ELB's values as the controller reasons about them: targets, their health, target groups.
//! Plain data, independent of the AWS SDK's types (`crates/aws` converts).

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

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

impl TargetHealth {
    /// What DescribeTargetHealth reports for a target just registered.
    pub fn registering(target: TargetKey) -> Self {
        Self {
            target,
            state: TargetState::Initial,
            reason: Some("Elb.RegistrationInProgress".to_string()),
            description: Some("Target registration is in progress".to_string()),
        }
    }

    /// Whether ELB reported the target as not registered (asked about by name, it is no
    /// target of the group: drained and gone, or removed by someone else).
    pub fn is_not_registered(&self) -> bool {
        self.state == TargetState::Unused && self.reason.as_deref() == Some(NOT_REGISTERED_REASON)
    }
}

/// The reason ELB gives for a target asked about that is not registered.
pub const NOT_REGISTERED_REASON: &str = "Target.NotRegistered";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroupInfo {
    pub arn: String,
    pub name: String,
    /// `ip`, `instance`, `lambda` or `alb`.
    pub target_type: String,
    /// `HTTP`, `HTTPS`, `TCP`, `TLS`, `UDP`, `TCP_UDP`, `GENEVE`, ...
    pub protocol: Option<String>,
    pub port: Option<u16>,
    pub vpc_id: Option<String>,
    /// `ipv4` or `ipv6`.
    pub ip_address_type: Option<String>,
    pub load_balancer_arns: Vec<String>,
    /// Seconds between health checks, and passes needed to turn healthy: together, the earliest
    /// a newly registered target can be healthy.
    pub health_check_interval_seconds: Option<u32>,
    pub healthy_threshold_count: Option<u32>,
}

/// The account ID in an ARN (`arn:aws:elasticloadbalancing:<region>:<account>:...`).
pub fn account_of_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
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
    fn accounts_come_from_the_arn() {
        assert_eq!(
            account_of_arn("arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/a/b"),
            Some("123456789012")
        );
        assert_eq!(
            account_of_arn("arn:aws:iam::999999999999:role/x"),
            Some("999999999999")
        );
        assert_eq!(account_of_arn("web"), None);
    }
}
