//! The controller's own counters: reconciles, targets registered and deregistered, gates opened.
//! (AWS calls are counted by `lb_aws::AwsCalls`.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Metrics {
    pub reconciles: AtomicU64,
    pub reconcile_errors: AtomicU64,
    pub reconcile_micros: AtomicU64,
    pub targets_registered: AtomicU64,
    pub targets_deregistered: AtomicU64,
    pub gates_opened: AtomicU64,
    pub pods_without_gate: AtomicU64,
}

impl Metrics {
    pub fn observe_reconcile(&self, took: Duration, ok: bool) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.reconcile_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.reconcile_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn registered(&self, count: usize) {
        self.targets_registered
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    pub fn deregistered(&self, count: usize) {
        self.targets_deregistered
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    pub fn gate_opened(&self) {
        self.gates_opened.fetch_add(1, Ordering::Relaxed);
    }

    pub fn pod_without_gate(&self) {
        self.pods_without_gate.fetch_add(1, Ordering::Relaxed);
    }
}

/// The Prometheus text exposition of the controller's counters and of the AWS calls.
pub fn render(metrics: &Metrics, calls: &lb_aws::AwsCalls) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let mut counter = |name: &str, help: &str, samples: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    counter(
        "lb_controller_reconciles_total",
        "TargetGroupBinding reconciles, by result.",
        &[
            (
                "{result=\"ok\"}".into(),
                (load(&metrics.reconciles) - load(&metrics.reconcile_errors)).to_string(),
            ),
            (
                "{result=\"error\"}".into(),
                load(&metrics.reconcile_errors).to_string(),
            ),
        ],
    );
    counter(
        "lb_controller_reconcile_seconds_total",
        "Time spent reconciling.",
        &[(
            String::new(),
            format!("{:.6}", load(&metrics.reconcile_micros) as f64 / 1e6),
        )],
    );
    counter(
        "lb_controller_targets_registered_total",
        "Targets registered.",
        &[(String::new(), load(&metrics.targets_registered).to_string())],
    );
    counter(
        "lb_controller_targets_deregistered_total",
        "Targets deregistered.",
        &[(
            String::new(),
            load(&metrics.targets_deregistered).to_string(),
        )],
    );
    counter(
        "lb_controller_readiness_gates_opened_total",
        "Readiness-gate conditions set True.",
        &[(String::new(), load(&metrics.gates_opened).to_string())],
    );
    counter(
        "lb_controller_pods_without_readiness_gate_total",
        "Pods behind a binding in a namespace labelled for injection that carry no gate of it (created while the webhook was unreachable, or before the binding or the label).",
        &[(String::new(), load(&metrics.pods_without_gate).to_string())],
    );
    let aws: Vec<(String, String)> = lb_aws::Operation::ALL
        .iter()
        .flat_map(|op| {
            let failed = calls.failed(*op);
            [
                (
                    format!("{{operation=\"{}\",result=\"ok\"}}", op.as_str()),
                    (calls.count(*op) - failed).to_string(),
                ),
                (
                    format!("{{operation=\"{}\",result=\"error\"}}", op.as_str()),
                    failed.to_string(),
                ),
            ]
        })
        .collect();
    counter(
        "lb_controller_aws_calls_total",
        "AWS API calls, by operation and result.",
        &aws,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.observe_reconcile(Duration::from_micros(1500), true);
        metrics.observe_reconcile(Duration::from_micros(500), false);
        metrics.registered(3);
        let calls = lb_aws::AwsCalls::default();
        calls.record(lb_aws::Operation::RegisterTargets, true);
        calls.record(lb_aws::Operation::DescribeTargetHealth, false);
        let text = render(&metrics, &calls);
        assert!(
            text.contains("lb_controller_reconciles_total{result=\"ok\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("lb_controller_reconciles_total{result=\"error\"} 1\n"));
        assert!(text.contains("lb_controller_reconcile_seconds_total 0.002000\n"));
        assert!(text.contains("lb_controller_targets_registered_total 3\n"));
        assert!(text.contains(
            "lb_controller_aws_calls_total{operation=\"RegisterTargets\",result=\"ok\"} 1\n"
        ));
        assert!(text.contains(
            "lb_controller_aws_calls_total{operation=\"DescribeTargetHealth\",result=\"error\"} 1\n"
        ));
        assert!(text.contains("# TYPE lb_controller_aws_calls_total counter\n"));
    }
}
