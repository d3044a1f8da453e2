//! Every AWS call counted by operation and result, and timed by operation: the figure users care
//! about (throttling, latency), what `/metrics` exports and what benchmarks read. Every call
//! passes here, so here too a mutating call meets the [`WriteFence`] (refused while this replica
//! does not lead).

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::{AwsError, AwsErrorKind};
use crate::write_fence::WriteFence;

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
    /// Not sent: this replica no longer leads (the [`WriteFence`]).
    not_leader,
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
            Some(AwsErrorKind::NotLeader) => Self::not_leader,
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
    fence: WriteFence,
}

impl Default for AwsCalls {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            fence: WriteFence::default(),
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

    /// The fence mutating calls meet; the runtime ties it to its leadership.
    pub fn fence(&self) -> &WriteFence {
        &self.fence
    }

    /// A mutating call the fence refused, counted apart from the calls AWS answered (it took
    /// no time and reached no one).
    fn record_refused(&self, operation: Operation) {
        self.calls
            .get_or_create(&CallLabels {
                operation,
                result: CallResult::not_leader,
            })
            .inc();
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
/// operation, the error code and the message. A mutating call is not sent while the fence is
/// closed, and is given up (SDK retries included) if it closes while the call is in flight.
pub(crate) async fn timed<T, E>(
    calls: &AwsCalls,
    operation: Operation,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, AwsError>
where
    E: aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let fenced = operation.is_mutating();
    if fenced && !calls.fence.is_open() {
        calls.record_refused(operation);
        return Err(AwsError::not_leader(operation.as_str(), "not sent"));
    }
    // On the heap: an SDK request future is tens of KB, and the select below would otherwise
    // hold more copies of it in this future (a debug build overflowed a worker's stack).
    let request = Box::pin(request);
    let started = std::time::Instant::now();
    let answered = async {
        request.await.map_err(|err| {
            // AWS's own code and message when it answered (what users read in Events and
            // conditions); the whole error chain when it did not (a timeout, a connection
            // refused).
            let message = match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                _ => aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext(&err).to_string(),
            };
            AwsError::from_code(operation.as_str(), err.code(), message)
        })
    };
    let result = if fenced {
        tokio::select! {
            result = answered => result,
            () = calls.fence.closed() => {
                tracing::warn!(
                    operation = operation.as_str(),
                    "leadership lost while the call was in flight: given up (AWS may have done it)"
                );
                Err(AwsError::not_leader(operation.as_str(), "given up in flight"))
            }
        }
    } else {
        answered.await
    };
    calls.record(
        operation,
        result.as_ref().err().map(|e| e.kind),
        started.elapsed(),
    );
    result
}

const ALL_RESULTS: [CallResult; 8] = [
    CallResult::ok,
    CallResult::not_found,
    CallResult::access_denied,
    CallResult::throttled,
    CallResult::invalid_request,
    CallResult::unavailable,
    CallResult::not_leader,
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

    type Answer = Result<
        (),
        aws_sdk_elasticloadbalancingv2::operation::register_targets::RegisterTargetsError,
    >;

    #[tokio::test]
    async fn the_fence_stops_mutating_calls_before_they_are_sent_and_gives_up_one_in_flight() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        let calls = AwsCalls::default();
        let (leading, receiver) = tokio::sync::watch::channel(false);
        calls.fence().follow(receiver);
        let sent = AtomicUsize::new(0);
        let request = || async {
            sent.fetch_add(1, Ordering::SeqCst);
            Answer::Ok(())
        };

        // Not leading: a mutating call is not sent; a read is.
        let refused = timed(&calls, Operation::RegisterTargets, request())
            .await
            .expect_err("refused");
        assert_eq!(refused.kind, AwsErrorKind::NotLeader);
        assert_eq!(
            refused.to_string(),
            "AWS RegisterTargets failed (not_leader): not sent: this replica no longer holds the leader Lease"
        );
        assert_eq!(
            sent.load(Ordering::SeqCst),
            0,
            "the request was never polled"
        );
        timed(&calls, Operation::DescribeTargetHealth, request())
            .await
            .expect("a read goes out while not leading");
        assert_eq!(sent.load(Ordering::SeqCst), 1);

        // Leading: sent; a call still waiting for its answer when the Lease is lost is given up.
        leading.send(true).expect("the fence listens");
        timed(&calls, Operation::RegisterTargets, request())
            .await
            .expect("sent while leading");
        assert_eq!(sent.load(Ordering::SeqCst), 2);
        let in_flight = timed(
            &calls,
            Operation::CreateRule,
            std::future::pending::<Answer>(),
        );
        let lose = async {
            tokio::task::yield_now().await;
            leading.send(false).expect("the fence listens");
        };
        let (given_up, ()) = tokio::time::timeout(Duration::from_secs(5), async {
            futures::join!(in_flight, lose)
        })
        .await
        .expect("given up at once");
        let given_up = given_up.expect_err("given up");
        assert_eq!(given_up.kind, AwsErrorKind::NotLeader);
        assert!(
            given_up.message.starts_with("given up in flight"),
            "{given_up}"
        );

        assert_eq!(
            calls.of(Operation::RegisterTargets, CallResult::not_leader),
            1
        );
        assert_eq!(calls.of(Operation::RegisterTargets, CallResult::ok), 1);
        assert_eq!(calls.of(Operation::CreateRule, CallResult::not_leader), 1);
        assert_eq!(calls.failed(Operation::RegisterTargets), 1);
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
