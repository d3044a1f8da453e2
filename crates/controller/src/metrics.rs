//! The controller's Prometheus metrics (OpenMetrics text on `/metrics`):
//!
//! - `lb_controller_reconciles_total{result}` and `lb_controller_reconcile_duration_seconds{result}`;
//! - `lb_controller_targets_registered_total`, `lb_controller_targets_deregistered_total`;
//! - `lb_controller_readiness_gates_opened_total`, and `lb_controller_readiness_gate_latency_seconds`:
//!   from the moment the controller saw a target healthy to its pod's condition written;
//! - `lb_controller_pending_readiness_gates{age}`: gates still closed, by how long (at scrape time);
//! - `lb_controller_pods_without_readiness_gate_total`;
//! - `lb_controller_leader`: 1 on the replica that holds the leader Lease;
//! - `lb_controller_pass_phase_seconds{phase}`: the controller's own time in each phase of a
//!   binding pass (`resolve`, `pace`, `snapshot`, `budget_wait` (a call's wait for the shared
//!   budget), `describe`, `deregister`, `register` (the AWS calls), `gates`), and of the binding
//!   status writes made outside passes (`status`);
//! - the AWS calls by operation and result, and their latency ([`lb_aws::AwsCalls`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

/// The phase durations kept for in-process readers (benchmarks): the most recent ones.
const PHASE_SAMPLES_KEPT: usize = 20_000;

/// Recent phase durations, oldest first, bounded.
#[derive(Debug, Default)]
pub struct PhaseSamples {
    samples: Mutex<std::collections::VecDeque<(&'static str, Duration)>>,
}

impl PhaseSamples {
    fn push(&self, phase: &'static str, took: Duration) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == PHASE_SAMPLES_KEPT {
            samples.pop_front();
        }
        samples.push_back((phase, took));
    }

    /// The kept durations of each phase, in seconds.
    pub fn by_phase(&self) -> HashMap<&'static str, Vec<f64>> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_phase: HashMap<&'static str, Vec<f64>> = HashMap::new();
        for (phase, took) in samples.iter() {
            by_phase.entry(phase).or_default().push(took.as_secs_f64());
        }
        by_phase
    }

    pub fn clear(&self) {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// When recent gates were opened (written True): `namespace/pod` -> when the health was seen and
/// when the gate was written,
/// the most recent ones, for in-process readers (benchmarks compare them with ELB's timelines).
#[derive(Debug, Default)]
pub struct GateOpenings {
    opened: Mutex<std::collections::VecDeque<(String, GateOpening)>>,
}

/// When a gate's health was seen and when its opening was written, seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateOpening {
    pub seen: f64,
    pub written: f64,
}

impl GateOpenings {
    fn push(&self, pod: String, latency: Duration) {
        let written = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let opening = GateOpening {
            seen: written - latency.as_secs_f64(),
            written,
        };
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        if opened.len() == PHASE_SAMPLES_KEPT {
            opened.pop_front();
        }
        opened.push_back((pod, opening));
    }

    /// `namespace/pod` -> its gate's last opening.
    pub fn by_pod(&self) -> HashMap<String, GateOpening> {
        let opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        opened.iter().cloned().collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AgeLabels {
    age: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn phase_histogram() -> Histogram {
    // 0.1 ms .. ~3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

fn reconcile_histogram() -> Histogram {
    // 1 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The pending-gate age buckets: upper bounds in seconds and their labels.
const AGE_BUCKETS: [(u64, &str); 5] = [
    (10, "0-10s"),
    (30, "10-30s"),
    (120, "30s-2m"),
    (600, "2m-10m"),
    (u64::MAX, "10m+"),
];

/// Gates still closed, with when each was first seen closed: (binding key, pod) -> since.
#[derive(Debug, Default)]
pub struct PendingGates {
    since: Mutex<HashMap<(String, String), Instant>>,
}

impl PendingGates {
    /// The binding's gates closed after a pass: pods newly pending start now, pods no longer
    /// pending are forgotten.
    pub fn update(&self, binding: &str, pods: &[String], now: Instant) {
        let pending: std::collections::HashSet<&String> = pods.iter().collect();
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        since.retain(|(b, pod), _| b != binding || pending.contains(pod));
        for pod in pods {
            since
                .entry((binding.to_string(), pod.clone()))
                .or_insert(now);
        }
    }

    /// Counts by age bucket at `now`.
    fn by_age(&self, now: Instant) -> [u64; AGE_BUCKETS.len()] {
        let since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts = [0; AGE_BUCKETS.len()];
        for at in since.values() {
            let age = now.saturating_duration_since(*at).as_secs();
            let bucket = AGE_BUCKETS
                .iter()
                .position(|(bound, _)| age < *bound)
                .unwrap_or(AGE_BUCKETS.len() - 1);
            counts[bucket] += 1;
        }
        counts
    }
}

impl Collector for PendingGates {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let family = Family::<AgeLabels, Gauge>::default();
        for ((_, label), count) in AGE_BUCKETS.iter().zip(self.by_age(Instant::now())) {
            family
                .get_or_create(&AgeLabels { age: label })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let metric = encoder.encode_descriptor(
            "lb_controller_pending_readiness_gates",
            "Readiness gates still closed, by how long they have been",
            None,
            family.metric_type(),
        )?;
        family.encode(metric)
    }
}

#[derive(Debug, Clone)]
pub struct Metrics {
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: HistogramFamily<ResultLabels>,
    targets_registered: Counter,
    targets_deregistered: Counter,
    gates_opened: Counter,
    gate_latency: Histogram,
    pods_without_gate: Counter,
    pass_phases: HistogramFamily<PhaseLabels>,
    /// The recent phase durations behind `pass_phases`.
    pub phase_samples: Arc<PhaseSamples>,
    /// When recent gates were opened.
    pub gate_openings: Arc<GateOpenings>,
    pub pending_gates: Arc<PendingGates>,
    /// 1 while this replica holds the leader Lease (set at scrape time).
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            reconcile_duration: Family::new_with_constructor(reconcile_histogram),
            targets_registered: Counter::default(),
            targets_deregistered: Counter::default(),
            gates_opened: Counter::default(),
            // 5 ms .. ~20 s.
            gate_latency: Histogram::new(exponential_buckets(0.005, 2.0, 13)),
            pods_without_gate: Counter::default(),
            pass_phases: Family::new_with_constructor(phase_histogram),
            phase_samples: Arc::default(),
            gate_openings: Arc::default(),
            pending_gates: Arc::default(),
            leader: Gauge::default(),
        }
    }
}

impl Metrics {
    pub fn observe_reconcile(&self, took: Duration, ok: bool) {
        let labels = ResultLabels {
            result: if ok { "ok" } else { "error" },
        };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A phase of a binding pass took `took`.
    pub fn phase(&self, phase: &'static str, took: Duration) {
        self.pass_phases
            .get_or_create(&PhaseLabels { phase })
            .observe(took.as_secs_f64());
        self.phase_samples.push(phase, took);
    }

    pub fn registered(&self, count: usize) {
        self.targets_registered.inc_by(count as u64);
    }

    pub fn deregistered(&self, count: usize) {
        self.targets_deregistered.inc_by(count as u64);
    }

    /// The gate of pod `namespace/pod` opened, `latency` after its target was seen healthy.
    pub fn gate_opened(&self, pod: String, latency: Duration) {
        self.gate_openings.push(pod, latency);
        self.gates_opened.inc();
        self.gate_latency.observe(latency.as_secs_f64());
        // Also as a phase: health seen -> gate written.
        self.phase_samples.push("gate_open", latency);
    }

    pub fn pod_without_gate(&self) {
        self.pods_without_gate.inc();
    }

    /// Reconciles that failed, so far.
    pub fn reconcile_errors(&self) -> u64 {
        self.reconciles
            .get_or_create(&ResultLabels { result: "error" })
            .get()
    }

    pub fn gates_opened(&self) -> u64 {
        self.gates_opened.get()
    }

    /// A registry with the controller's metrics and the AWS calls'.
    pub fn registry(&self, calls: &lb_aws::AwsCalls) -> Registry {
        let mut registry = Registry::default();
        registry.register(
            "lb_controller_leader",
            "1 while this replica holds the leader Lease and reconciles; 0 on a standby",
            self.leader.clone(),
        );
        registry.register(
            "lb_controller_reconciles",
            "TargetGroupBinding reconciles, by result",
            self.reconciles.clone(),
        );
        registry.register(
            "lb_controller_reconcile_duration_seconds",
            "Time a TargetGroupBinding reconcile took, by result",
            self.reconcile_duration.clone(),
        );
        registry.register(
            "lb_controller_pass_phase_seconds",
            "Time the controller spent in each phase of a TargetGroupBinding pass",
            self.pass_phases.clone(),
        );
        registry.register(
            "lb_controller_targets_registered",
            "Targets registered",
            self.targets_registered.clone(),
        );
        registry.register(
            "lb_controller_targets_deregistered",
            "Targets deregistered",
            self.targets_deregistered.clone(),
        );
        registry.register(
            "lb_controller_readiness_gates_opened",
            "Readiness-gate conditions set True because their target turned healthy",
            self.gates_opened.clone(),
        );
        registry.register(
            "lb_controller_readiness_gate_latency_seconds",
            "From the target seen healthy in ELB to its pod's gate condition written",
            self.gate_latency.clone(),
        );
        registry.register(
            "lb_controller_pods_without_readiness_gate",
            "Pods behind a binding in a namespace labelled for injection that carry no gate of it (created while the webhook was unreachable, or before the binding or the label)",
            self.pods_without_gate.clone(),
        );
        registry.register_collector(Box::new(self.pending_gates.clone()));
        calls.register(&mut registry);
        registry
    }
}

/// The OpenMetrics text of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    if let Err(err) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::warn!("encoding metrics: {err}");
    }
    text
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_in_openmetrics_text() {
        let metrics = Metrics::default();
        metrics.observe_reconcile(Duration::from_micros(1500), true);
        metrics.observe_reconcile(Duration::from_micros(500), false);
        metrics.registered(3);
        metrics.gate_opened("shop/web-1".to_string(), Duration::from_millis(120));
        metrics.pod_without_gate();
        let now = Instant::now();
        metrics.pending_gates.update(
            "shop/web",
            &["a".into(), "b".into()],
            now - Duration::from_secs(40),
        );
        metrics.pending_gates.update("shop/api", &["c".into()], now);
        let calls = lb_aws::AwsCalls::default();
        calls.record(
            lb_aws::Operation::RegisterTargets,
            None,
            Duration::from_millis(20),
        );
        let text = render(&metrics.registry(&calls));
        for line in [
            "lb_controller_reconciles_total{result=\"ok\"} 1",
            "lb_controller_reconciles_total{result=\"error\"} 1",
            "lb_controller_reconcile_duration_seconds_count{result=\"ok\"} 1",
            "lb_controller_targets_registered_total 3",
            "lb_controller_readiness_gates_opened_total 1",
            "lb_controller_readiness_gate_latency_seconds_count 1",
            "lb_controller_pods_without_readiness_gate_total 1",
            "lb_controller_pending_readiness_gates{age=\"0-10s\"} 1",
            "lb_controller_pending_readiness_gates{age=\"30s-2m\"} 2",
            "lb_controller_aws_calls_total{operation=\"RegisterTargets\",result=\"ok\"} 1",
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "{line} missing in\n{text}"
            );
        }
        // A binding's gates all open: its pending entries go.
        metrics.pending_gates.update("shop/web", &[], now);
        let text = render(&metrics.registry(&calls));
        assert!(text.contains("lb_controller_pending_readiness_gates{age=\"30s-2m\"} 0\n"));
    }
}
