//! AWS calls made between two moments, by operation, for the benchmarks' figures.

use std::collections::BTreeMap;

use lb_aws::{AwsCalls, Operation};

/// Every operation's count now, in [`Operation::ALL`] order.
pub fn snapshot(calls: &AwsCalls) -> Vec<u64> {
    Operation::ALL.iter().map(|op| calls.count(*op)).collect()
}

/// Calls since `before`, by operation (only those made).
pub fn since(calls: &AwsCalls, before: &[u64]) -> BTreeMap<&'static str, u64> {
    Operation::ALL
        .iter()
        .zip(before)
        .map(|(op, b)| (op.as_str(), calls.count(*op) - b))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The calls of `calls` that change AWS, by operation.
pub fn mutating_calls(calls: &BTreeMap<&'static str, u64>) -> BTreeMap<&'static str, u64> {
    Operation::ALL
        .iter()
        .filter(|op| op.is_mutating())
        .filter_map(|op| Some((op.as_str(), *calls.get(op.as_str())?)))
        .collect()
}

/// How many of `calls` change AWS.
pub fn mutating(calls: &BTreeMap<&'static str, u64>) -> u64 {
    mutating_calls(calls).values().sum()
}

/// `Operation n, ...`.
pub fn describe(calls: &BTreeMap<&'static str, u64>) -> String {
    calls
        .iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
