//! Every AWS call counted by operation and result, and timed by operation: the figure users care
//! about (throttling, latency), what `/metrics` exports and what benchmarks read.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::AwsErrorKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum Operation {
    DescribeTargetGroups,
    RegisterTargets,
    DeregisterTargets,
    DescribeTargetHealth,
    AssumeRole,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::DescribeTargetGroups,
        Operation::RegisterTargets,
        Operation::DeregisterTargets,
        Operation::DescribeTargetHealth,
        Operation::AssumeRole,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DescribeTargetGroups => "DescribeTargetGroups",
            Self::RegisterTargets => "RegisterTargets",
            Self::DeregisterTargets => "DeregisterTargets",
            Self::DescribeTargetHealth => "DescribeTargetHealth",
            Self::AssumeRole => "AssumeRole",
        }
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
            Some(AwsErrorKind::Other) => Self::other,
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
