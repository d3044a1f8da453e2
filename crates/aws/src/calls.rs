//! Counts of AWS calls by operation and outcome: the figure users care about (throttling), and
//! what benchmarks read.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    DescribeTargetGroups,
    RegisterTargets,
    DeregisterTargets,
    DescribeTargetHealth,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::DescribeTargetGroups,
        Operation::RegisterTargets,
        Operation::DeregisterTargets,
        Operation::DescribeTargetHealth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DescribeTargetGroups => "DescribeTargetGroups",
            Self::RegisterTargets => "RegisterTargets",
            Self::DeregisterTargets => "DeregisterTargets",
            Self::DescribeTargetHealth => "DescribeTargetHealth",
        }
    }
}

#[derive(Debug, Default)]
pub struct AwsCalls {
    ok: [AtomicU64; 4],
    failed: [AtomicU64; 4],
}

impl AwsCalls {
    pub fn record(&self, operation: Operation, success: bool) {
        let counters = if success { &self.ok } else { &self.failed };
        counters[operation as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Calls made, successful or not.
    pub fn count(&self, operation: Operation) -> u64 {
        self.ok[operation as usize].load(Ordering::Relaxed)
            + self.failed[operation as usize].load(Ordering::Relaxed)
    }

    pub fn failed(&self, operation: Operation) -> u64 {
        self.failed[operation as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_operation_and_outcome() {
        let calls = AwsCalls::default();
        calls.record(Operation::RegisterTargets, true);
        calls.record(Operation::RegisterTargets, false);
        calls.record(Operation::DescribeTargetHealth, true);
        assert_eq!(calls.count(Operation::RegisterTargets), 2);
        assert_eq!(calls.failed(Operation::RegisterTargets), 1);
        assert_eq!(calls.count(Operation::DescribeTargetHealth), 1);
        assert_eq!(calls.count(Operation::DeregisterTargets), 0);
    }
}
