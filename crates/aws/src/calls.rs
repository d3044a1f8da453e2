//! Every AWS call counted by operation and result, and timed by operation: the figure users care
//! about (throttling, latency), what `/metrics` exports and what benchmarks read.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::{AwsError, AwsErrorKind};

/// Every AWS operation the controller calls. `ALL` lists them in declaration order, so
/// `op as usize` indexes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum Operation {
    // Targets and their health.
    DescribeTargetGroups,
    RegisterTargets,
    DeregisterTargets,
    DescribeTargetHealth,
    AssumeRole,
    // The deployer reading what exists.
    DescribeLoadBalancers,
    DescribeLoadBalancerAttributes,
    DescribeListeners,
    DescribeListenerAttributes,
    DescribeListenerCertificates,
    DescribeRules,
    DescribeTargetGroupAttributes,
    DescribeTags,
    DescribeSubnets,
    DescribeSecurityGroups,
    DescribeNetworkInterfaces,
    DescribeVpcs,
    ListCertificates,
    ListTagsForCertificate,
    // The deployer changing it.
    ImportCertificate,
    DeleteCertificate,
    CreateTargetGroup,
    ModifyTargetGroup,
    ModifyTargetGroupAttributes,
    AddTags,
    RemoveTags,
    CreateLoadBalancer,
    ModifyLoadBalancerAttributes,
    SetSubnets,
    SetSecurityGroups,
    CreateListener,
    ModifyListener,
    ModifyListenerAttributes,
    AddListenerCertificates,
    RemoveListenerCertificates,
    DeleteListener,
    CreateRule,
    ModifyRule,
    SetRulePriorities,
    DeleteRule,
    DeleteTargetGroup,
    DeleteLoadBalancer,
    CreateSecurityGroup,
    AuthorizeSecurityGroupIngress,
    RevokeSecurityGroupIngress,
    DeleteSecurityGroup,
    /// EC2's tag calls, on security groups.
    CreateTags,
    DeleteTags,
}

impl Operation {
    pub const ALL: [Operation; 48] = [
        Operation::DescribeTargetGroups,
        Operation::RegisterTargets,
        Operation::DeregisterTargets,
        Operation::DescribeTargetHealth,
        Operation::AssumeRole,
        Operation::DescribeLoadBalancers,
        Operation::DescribeLoadBalancerAttributes,
        Operation::DescribeListeners,
        Operation::DescribeListenerAttributes,
        Operation::DescribeListenerCertificates,
        Operation::DescribeRules,
        Operation::DescribeTargetGroupAttributes,
        Operation::DescribeTags,
        Operation::DescribeSubnets,
        Operation::DescribeSecurityGroups,
        Operation::DescribeNetworkInterfaces,
        Operation::DescribeVpcs,
        Operation::ListCertificates,
        Operation::ListTagsForCertificate,
        Operation::ImportCertificate,
        Operation::DeleteCertificate,
        Operation::CreateTargetGroup,
        Operation::ModifyTargetGroup,
        Operation::ModifyTargetGroupAttributes,
        Operation::AddTags,
        Operation::RemoveTags,
        Operation::CreateLoadBalancer,
        Operation::ModifyLoadBalancerAttributes,
        Operation::SetSubnets,
        Operation::SetSecurityGroups,
        Operation::CreateListener,
        Operation::ModifyListener,
        Operation::ModifyListenerAttributes,
        Operation::AddListenerCertificates,
        Operation::RemoveListenerCertificates,
        Operation::DeleteListener,
        Operation::CreateRule,
        Operation::ModifyRule,
        Operation::SetRulePriorities,
        Operation::DeleteRule,
        Operation::DeleteTargetGroup,
        Operation::DeleteLoadBalancer,
        Operation::CreateSecurityGroup,
        Operation::AuthorizeSecurityGroupIngress,
        Operation::RevokeSecurityGroupIngress,
        Operation::DeleteSecurityGroup,
        Operation::CreateTags,
        Operation::DeleteTags,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DescribeTargetGroups => "DescribeTargetGroups",
            Self::RegisterTargets => "RegisterTargets",
            Self::DeregisterTargets => "DeregisterTargets",
            Self::DescribeTargetHealth => "DescribeTargetHealth",
            Self::AssumeRole => "AssumeRole",
            Self::DescribeLoadBalancers => "DescribeLoadBalancers",
            Self::DescribeLoadBalancerAttributes => "DescribeLoadBalancerAttributes",
            Self::DescribeListeners => "DescribeListeners",
            Self::DescribeListenerAttributes => "DescribeListenerAttributes",
            Self::DescribeListenerCertificates => "DescribeListenerCertificates",
            Self::DescribeRules => "DescribeRules",
            Self::DescribeTargetGroupAttributes => "DescribeTargetGroupAttributes",
            Self::DescribeTags => "DescribeTags",
            Self::DescribeSubnets => "DescribeSubnets",
            Self::DescribeSecurityGroups => "DescribeSecurityGroups",
            Self::DescribeNetworkInterfaces => "DescribeNetworkInterfaces",
            Self::DescribeVpcs => "DescribeVpcs",
            Self::ListCertificates => "ListCertificates",
            Self::ListTagsForCertificate => "ListTagsForCertificate",
            Self::ImportCertificate => "ImportCertificate",
            Self::DeleteCertificate => "DeleteCertificate",
            Self::CreateTargetGroup => "CreateTargetGroup",
            Self::ModifyTargetGroup => "ModifyTargetGroup",
            Self::ModifyTargetGroupAttributes => "ModifyTargetGroupAttributes",
            Self::AddTags => "AddTags",
            Self::RemoveTags => "RemoveTags",
            Self::CreateLoadBalancer => "CreateLoadBalancer",
            Self::ModifyLoadBalancerAttributes => "ModifyLoadBalancerAttributes",
            Self::SetSubnets => "SetSubnets",
            Self::SetSecurityGroups => "SetSecurityGroups",
            Self::CreateListener => "CreateListener",
            Self::ModifyListener => "ModifyListener",
            Self::ModifyListenerAttributes => "ModifyListenerAttributes",
            Self::AddListenerCertificates => "AddListenerCertificates",
            Self::RemoveListenerCertificates => "RemoveListenerCertificates",
            Self::DeleteListener => "DeleteListener",
            Self::CreateRule => "CreateRule",
            Self::ModifyRule => "ModifyRule",
            Self::SetRulePriorities => "SetRulePriorities",
            Self::DeleteRule => "DeleteRule",
            Self::DeleteTargetGroup => "DeleteTargetGroup",
            Self::DeleteLoadBalancer => "DeleteLoadBalancer",
            Self::CreateSecurityGroup => "CreateSecurityGroup",
            Self::AuthorizeSecurityGroupIngress => "AuthorizeSecurityGroupIngress",
            Self::RevokeSecurityGroupIngress => "RevokeSecurityGroupIngress",
            Self::DeleteSecurityGroup => "DeleteSecurityGroup",
            Self::CreateTags => "CreateTags",
            Self::DeleteTags => "DeleteTags",
        }
    }

    /// True for calls that change AWS (a converged stack should make none of them).
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            Self::RegisterTargets
                | Self::ImportCertificate
                | Self::DeleteCertificate
                | Self::DeregisterTargets
                | Self::CreateTargetGroup
                | Self::ModifyTargetGroup
                | Self::ModifyTargetGroupAttributes
                | Self::AddTags
                | Self::RemoveTags
                | Self::CreateLoadBalancer
                | Self::ModifyLoadBalancerAttributes
                | Self::SetSubnets
                | Self::SetSecurityGroups
                | Self::CreateListener
                | Self::ModifyListener
                | Self::ModifyListenerAttributes
                | Self::AddListenerCertificates
                | Self::RemoveListenerCertificates
                | Self::DeleteListener
                | Self::CreateRule
                | Self::ModifyRule
                | Self::SetRulePriorities
                | Self::DeleteRule
                | Self::DeleteTargetGroup
                | Self::DeleteLoadBalancer
                | Self::CreateSecurityGroup
                | Self::AuthorizeSecurityGroupIngress
                | Self::RevokeSecurityGroupIngress
                | Self::DeleteSecurityGroup
                | Self::CreateTags
                | Self::DeleteTags
        )
    }
}

/// A call's result: `ok`, or the kind of error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)] // label values as Prometheus users expect them
pub enum CallResult {
    ok,
    not_found,
    access_denied,
    throttled,
    invalid_request,
    unavailable,
    other,
}

impl From<Option<AwsErrorKind>> for CallResult {
    fn from(error: Option<AwsErrorKind>) -> Self {
        match error {
            None => Self::ok,
            Some(AwsErrorKind::NotFound) => Self::not_found,
            Some(AwsErrorKind::AccessDenied) => Self::access_denied,
            Some(AwsErrorKind::Throttled) => Self::throttled,
            Some(AwsErrorKind::InvalidRequest) => Self::invalid_request,
            Some(AwsErrorKind::Unavailable) => Self::unavailable,
            Some(AwsErrorKind::Other | AwsErrorKind::InUse) => Self::other,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    operation: Operation,
    result: CallResult,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabels {
    operation: Operation,
}

type LatencyFamily = Family<OperationLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 5 ms .. ~20 s: an API call, including the SDK's retries.
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

#[derive(Debug, Clone)]
pub struct AwsCalls {
    calls: Family<CallLabels, Counter>,
    latency: LatencyFamily,
}

impl Default for AwsCalls {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl AwsCalls {
    /// Records one call: its operation, its error kind (None: success) and how long it took.
    pub fn record(&self, operation: Operation, error: Option<AwsErrorKind>, took: Duration) {
        self.calls
            .get_or_create(&CallLabels {
                operation,
                result: error.into(),
            })
            .inc();
        self.latency
            .get_or_create(&OperationLabels { operation })
            .observe(took.as_secs_f64());
    }

    /// Calls made, successful or not.
    pub fn count(&self, operation: Operation) -> u64 {
        ALL_RESULTS
            .iter()
            .map(|result| self.of(operation, *result))
            .sum()
    }

    /// Calls that failed.
    pub fn failed(&self, operation: Operation) -> u64 {
        self.count(operation) - self.of(operation, CallResult::ok)
    }

    fn of(&self, operation: Operation, result: CallResult) -> u64 {
        self.calls
            .get(&CallLabels { operation, result })
            .map_or(0, |counter| counter.get())
    }

    /// Adds the families to `registry` (`lb_controller_aws_calls_total`,
    /// `lb_controller_aws_call_duration_seconds`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "lb_controller_aws_calls",
            "AWS API calls, by operation and result",
            self.calls.clone(),
        );
        registry.register(
            "lb_controller_aws_call_duration_seconds",
            "AWS API call latency, SDK retries included, by operation",
            self.latency.clone(),
        );
    }
}

/// Sends one SDK request: the call is recorded in `calls` (operation, outcome, time until it
/// answers, SDK retries included) and its error turned into an [`AwsError`] that names the
/// operation, the error code and the message.
pub(crate) async fn timed<T, E>(
    calls: &AwsCalls,
    operation: Operation,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, AwsError>
where
    E: aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let started = std::time::Instant::now();
    let result = request.await.map_err(|err| {
        // AWS's own code and message when it answered (what users read in Events and
        // conditions); the whole error chain when it did not (a timeout, a connection refused).
        let message = match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            _ => aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext(&err).to_string(),
        };
        AwsError::from_code(operation.as_str(), err.code(), message)
    });
    calls.record(
        operation,
        result.as_ref().err().map(|e| e.kind),
        started.elapsed(),
    );
    result
}

const ALL_RESULTS: [CallResult; 7] = [
    CallResult::ok,
    CallResult::not_found,
    CallResult::access_denied,
    CallResult::throttled,
    CallResult::invalid_request,
    CallResult::unavailable,
    CallResult::other,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_operations_are_listed_in_declaration_order() {
        for (index, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(*op as usize, index, "{}", op.as_str());
        }
        assert!(Operation::CreateListener.is_mutating());
        assert!(!Operation::DescribeTags.is_mutating());
    }

    #[test]
    fn counts_by_operation_and_outcome_and_exports_them() {
        let calls = AwsCalls::default();
        let ms = Duration::from_millis(3);
        calls.record(Operation::RegisterTargets, None, ms);
        calls.record(
            Operation::RegisterTargets,
            Some(AwsErrorKind::Throttled),
            ms,
        );
        calls.record(Operation::DescribeTargetHealth, None, ms);
        assert_eq!(calls.count(Operation::RegisterTargets), 2);
        assert_eq!(calls.failed(Operation::RegisterTargets), 1);
        assert_eq!(calls.count(Operation::DescribeTargetHealth), 1);
        assert_eq!(calls.count(Operation::DeregisterTargets), 0);

        let mut registry = Registry::default();
        calls.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                "lb_controller_aws_calls_total{operation=\"RegisterTargets\",result=\"throttled\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains(
            "lb_controller_aws_call_duration_seconds_count{operation=\"RegisterTargets\"} 2"
        ));
    }
}
