//! What a `bench-gates` run measured, and the table it prints.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use lb_aws::Operation;
use lb_sandbox::testing::percentile;

/// Latencies in milliseconds, one per sample.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn p(&self, quantile: f64) -> f64 {
        percentile(&self.0, quantile)
    }

    fn row(&self, name: &str) -> String {
        format!(
            "| {name} ({} samples) | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms |",
            self.0.len(),
            self.p(0.5),
            self.p(0.99),
            self.p(1.0)
        )
    }
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct GateFigures {
    pub pods: usize,
    pub bindings: usize,
    /// Pods per second the scale-out asked for (0: all at once).
    pub rate: f64,
    pub gate_ms: Samples,
    /// Target healthy in ELB -> the controller's write of the gate done (no watch in between).
    pub gate_written_ms: Samples,
    /// Target healthy in ELB -> the controller's look that saw it healthy returned.
    pub gate_seen_ms: Samples,
    pub register_ms: Samples,
    /// Pod ContainersReady (or, when later, listed in the EndpointSlice) -> target registered:
    /// the controller's share of the registration latency.
    pub register_after_slice_ms: Samples,
    /// Sandbox: pod ContainersReady -> listed in its Service's EndpointSlice.
    pub slice_ms: Samples,
    pub deregister_ms: Samples,
    /// Per binding: its first pod created -> its last gate open.
    pub binding_done_ms: Samples,
    pub webhook_ms: Samples,
    pub scale_out: Duration,
    /// AWS calls during the scale-out, by operation.
    pub calls: HashMap<Operation, u64>,
    /// DescribeTargetHealth calls while nothing changed.
    pub steady_describes: u64,
    /// EC2 calls (interfaces, security groups) while nothing changed.
    pub steady_ec2: u64,
    /// Labelled rules on the cluster security group after the scale-out.
    pub rules_added: usize,
    /// Pod created -> its gate True: what a user waits for, security groups and all.
    pub start_to_gate_ms: Samples,
    pub steady: Duration,
    /// The controller's own time per pass phase during the scale-out, in milliseconds.
    pub phases: Vec<(&'static str, Samples)>,
    /// Sandbox: pod created -> ContainersReady.
    pub start_ms: Samples,
    /// Sandbox: pods that reached ContainersReady per second of the scale-out.
    pub pods_per_second: f64,
    /// The fewest RegisterTargets any controller could have made registering every pod within a
    /// deadline of being ready and listed (see [`super::floor`]): (deadline in seconds, calls).
    pub register_floor: Vec<(f64, usize)>,
    /// The pods that floor covers: those seen both ContainersReady and in an EndpointSlice.
    pub floor_pods: usize,
    /// Sandbox: registered -> healthy, beyond interval x threshold.
    pub check_lag_ms: Samples,
    /// Sandbox: the emulator's failed health checks of the run's targets, by reason code.
    pub failed_checks: BTreeMap<String, u64>,
    /// Sandbox: the API server's writes during the scale-out, by verb and resource, most first
    /// (`--api-writes` only).
    pub api_writes: Option<Vec<(String, u64)>>,
    /// CPU used during the scale-out, by who used it (the controller and the watches apart), most
    /// first.
    pub cpu: Vec<(String, Duration)>,
    /// The machine's steal time during the scale-out (see [`crate::cpu_use::CpuUse`]).
    pub stolen: Option<Duration>,
}

impl GateFigures {
    pub fn calls(&self, operation: Operation) -> u64 {
        self.calls.get(&operation).copied().unwrap_or(0)
    }

    /// The fewest RegisterTargets this run's pod arrivals allowed, against the calls made.
    fn floor_row(&self) -> String {
        let per_100 = |calls: usize| calls as f64 * 100.0 / self.pods.max(1) as f64;
        let floors: Vec<String> = self
            .register_floor
            .iter()
            .map(|(deadline, calls)| {
                format!(
                    "within {deadline} s: {calls} ({:.1} per 100 pods)",
                    per_100(*calls)
                )
            })
            .collect();
        format!(
            "| RegisterTargets no controller could go below, registering every pod within a deadline of it being ready and listed as the benchmark's watches saw them (one call per target group and moment) | {}; {} of {} pods ready and listed |",
            floors.join("; "),
            self.floor_pods,
            self.pods
        )
    }

    /// The figures as a Markdown table.
    pub fn table(&self) -> String {
        let per_100 = |op| self.calls(op) as f64 * 100.0 / self.pods.max(1) as f64;
        let mut rows = vec![
            format!(
                "| figure ({} pods, {} binding(s), {}) | value |",
                self.pods,
                self.bindings,
                if self.rate > 0.0 {
                    format!("scaled at {} pods/s", self.rate)
                } else {
                    "scaled at once".to_string()
                }
            ),
            "|---|---|".to_string(),
            self.gate_ms
                .row("gate latency: target healthy in ELB -> pod gate True (seen by a watch)"),
            self.gate_written_ms
                .row("gate latency: target healthy in ELB -> the controller's gate write done"),
            self.gate_seen_ms
                .row("of which: target healthy in ELB -> seen healthy by the controller's look"),
            self.register_ms
                .row("registration latency: pod ContainersReady -> target registered"),
            self.register_after_slice_ms.row(
                "controller's share: pod ContainersReady and in the EndpointSlice -> target registered",
            ),
            self.slice_ms
                .row("sandbox: pod ContainersReady -> listed in the EndpointSlice"),
            self.deregister_ms
                .row("deregistration latency: pod deleted -> target draining"),
            self.binding_done_ms
                .row("per binding: its first pod created -> its last gate open"),
            self.start_to_gate_ms
                .row("pod created -> its gate True"),
            format!(
                "| pod webhook round trip over TLS, gate injected ({} reviews) | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms |",
                self.webhook_ms.0.len(),
                self.webhook_ms.p(0.5),
                self.webhook_ms.p(0.99),
                self.webhook_ms.p(1.0)
            ),
            format!(
                "| AWS calls for the 0 -> {} scale-out ({:.0} s to the last gate) | RegisterTargets {} ({:.1} per 100 pods), DeregisterTargets {}, DescribeTargetHealth {}, DescribeTargetGroups {} |",
                self.pods,
                self.scale_out.as_secs_f64(),
                self.calls(Operation::RegisterTargets),
                per_100(Operation::RegisterTargets),
                self.calls(Operation::DeregisterTargets),
                self.calls(Operation::DescribeTargetHealth),
                self.calls(Operation::DescribeTargetGroups),
            ),
            self.floor_row(),
            format!(
                "| EC2 calls for the scale-out (targets' security-group rules) | DescribeNetworkInterfaces {}, DescribeSecurityGroups {}, AuthorizeSecurityGroupIngress {}, RevokeSecurityGroupIngress {}; {} labelled rule(s) on the cluster security group |",
                self.calls(Operation::DescribeNetworkInterfaces),
                self.calls(Operation::DescribeSecurityGroups),
                self.calls(Operation::AuthorizeSecurityGroupIngress),
                self.calls(Operation::RevokeSecurityGroupIngress),
                self.rules_added,
            ),
            format!(
                "| EC2 calls at steady state ({:.0} s watched) | {} calls |",
                self.steady.as_secs_f64(),
                self.steady_ec2
            ),
            format!(
                "| DescribeTargetHealth at steady state ({:.0} s watched) | {} calls |",
                self.steady.as_secs_f64(),
                self.steady_describes
            ),
        ];
        for (phase, samples) in &self.phases {
            rows.push(format!(
                "| controller, pass phase `{phase}` ({} times) | p50 {:.1} ms, p99 {:.1} ms, total {:.2} s |",
                samples.0.len(),
                samples.p(0.5),
                samples.p(0.99),
                samples.0.iter().sum::<f64>() / 1000.0
            ));
        }
        rows.push(format!(
            "| sandbox: pod created -> ContainersReady | p50 {:.0} ms, p99 {:.0} ms; {:.1} pods/s started |",
            self.start_ms.p(0.5),
            self.start_ms.p(0.99),
            self.pods_per_second
        ));
        rows.push(
            self.check_lag_ms
                .row("sandbox: emulator registered -> healthy, beyond interval x threshold"),
        );
        let failed: Vec<String> = self
            .failed_checks
            .iter()
            .map(|(reason, count)| format!("{reason} {count}"))
            .collect();
        rows.push(format!(
            "| sandbox: the emulator's failed health checks | {} |",
            if failed.is_empty() {
                "none".to_string()
            } else {
                failed.join(", ")
            }
        ));
        if let Some(writes) = &self.api_writes {
            rows.push(crate::api_writes::row(writes, self.scale_out));
        }
        rows.push(crate::cpu_use::row(&self.cpu, self.scale_out, self.stolen));
        rows.join("\n")
    }
}
