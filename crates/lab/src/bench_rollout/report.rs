//! What the runs come to: per run, failed requests by kind, rollout duration, and each new pod's
//! ContainersReady -> target healthy -> Ready; per scenario, the same over its repetitions; the
//! rollout overhead of gates per surge step. Written as `results.json`, `results.md` (the table)
//! and one SVG timeline per run.

use std::collections::BTreeMap;
use std::path::Path;

use lb_sandbox::testing::percentile;
use serde::Serialize;

use super::record::{self, count_at, first, healthy_intervals, ready_intervals};
use super::{RolloutError, RolloutOptions, Run, Scenario, svg};

/// One run in figures. Times are seconds; `at` values are relative to the change.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub scenario: Scenario,
    pub number: &'static str,
    pub repetition: usize,
    pub requests: usize,
    pub failed: usize,
    pub failures_by_kind: BTreeMap<&'static str, usize>,
    pub rollout_seconds: f64,
    pub settled_seconds: f64,
    pub restart_seconds: Option<f64>,
    /// New pods created without a readiness gate (the webhook was away, and fails open).
    pub new_pods_without_gate: usize,
    /// New pods: ContainersReady -> their target healthy in the ELB.
    pub containers_ready_to_healthy: Vec<f64>,
    /// New pods: target healthy -> pod Ready (negative: Ready came first, the ELB still said no).
    pub healthy_to_ready: Vec<f64>,
    /// New pods: ContainersReady -> Ready, less the ELB's own interval x threshold: the time the
    /// controller added (registration + gate flip).
    pub controller_share: Vec<f64>,
    /// Every failed request: when it was sent and how it failed.
    pub failures: Vec<(f64, &'static str)>,
}

pub fn summarize(run: &Run, options: &RolloutOptions) -> RunSummary {
    let mut failures_by_kind = BTreeMap::new();
    let mut failures = Vec::new();
    for sample in run.samples.iter().filter(|s| s.outcome.is_failure()) {
        *failures_by_kind.entry(sample.outcome.kind()).or_insert(0) += 1;
        failures.push((sample.at - run.triggered, sample.outcome.kind()));
    }
    let elb_time = f64::from(options.interval * options.healthy_threshold);
    let mut containers_ready_to_healthy = Vec::new();
    let mut healthy_to_ready = Vec::new();
    let mut controller_share = Vec::new();
    for pod in run
        .pods
        .iter()
        .filter(|p| p.created.is_some_and(|c| c >= run.triggered))
    {
        let healthy = pod
            .ip
            .as_ref()
            .and_then(|ip| run.targets.get(ip))
            .and_then(|timeline| first(timeline, "healthy"));
        if let (Some(containers_ready), Some(healthy)) = (pod.containers_ready, healthy) {
            containers_ready_to_healthy.push(healthy - containers_ready);
        }
        if let (Some(healthy), Some(ready)) = (healthy, pod.ready) {
            healthy_to_ready.push(ready - healthy);
        }
        if let (Some(containers_ready), Some(ready)) = (pod.containers_ready, pod.ready) {
            controller_share.push(ready - containers_ready - elb_time);
        }
    }
    let new_pods_without_gate = run
        .pods
        .iter()
        .filter(|p| p.created.is_some_and(|c| c >= run.triggered) && !p.has_gate)
        .count();
    RunSummary {
        new_pods_without_gate,
        scenario: run.scenario,
        number: run.scenario.number(),
        repetition: run.repetition,
        requests: run.samples.len(),
        failed: failures.len(),
        failures_by_kind,
        rollout_seconds: run.rollout_seconds,
        settled_seconds: run.settled_seconds,
        restart_seconds: run.restart.map(|r| r.seconds),
        containers_ready_to_healthy,
        healthy_to_ready,
        controller_share,
        failures,
    }
}

/// A progress line for one run.
pub fn one_line(run: &Run) -> String {
    let failed = run
        .samples
        .iter()
        .filter(|s| s.outcome.is_failure())
        .count();
    format!(
        "  {} requests, {failed} failed, rollout {:.1} s, settled (old pods gone, targets healthy) after {:.1} s{}",
        run.samples.len(),
        run.rollout_seconds,
        run.settled_seconds,
        run.restart
            .map(|r| format!(", controller away for {:.2} s", r.seconds))
            .unwrap_or_default()
    )
}

/// The counts a timeline draws, every `step` seconds from `from` to `to` (relative to the change).
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub at: Vec<f64>,
    pub ready_pods: Vec<usize>,
    pub healthy_targets: Vec<usize>,
}

pub fn series(run: &Run, from: f64, to: f64, step: f64) -> Series {
    let ready = ready_intervals(&run.pods);
    let healthy = healthy_intervals(&run.targets);
    let mut at = Vec::new();
    let mut t = from;
    while t <= to {
        at.push(t);
        t += step;
    }
    Series {
        ready_pods: at
            .iter()
            .map(|t| count_at(&ready, run.triggered + t))
            .collect(),
        healthy_targets: at
            .iter()
            .map(|t| count_at(&healthy, run.triggered + t))
            .collect(),
        at,
    }
}

#[derive(Serialize)]
struct Results<'a> {
    options: BTreeMap<&'static str, String>,
    runs: &'a [RunSummary],
    pods: Vec<(&'static str, usize, &'a [record::PodLife])>,
}

/// Writes results.json, results.md and the timelines into `options.out`; returns the table.
pub fn write(options: &RolloutOptions, runs: &[Run]) -> Result<String, RolloutError> {
    let out = &options.out;
    std::fs::create_dir_all(out).map_err(|source| RolloutError::Write {
        path: out.clone(),
        source,
    })?;
    let summaries: Vec<RunSummary> = runs.iter().map(|r| summarize(r, options)).collect();
    let mut pictures = Vec::new();
    for run in runs {
        let name = format!(
            "{}-{}-{}.svg",
            run.scenario.number(),
            run.scenario.slug(),
            run.repetition
        );
        write_file(&out.join(&name), &svg::timeline(run, options))?;
        pictures.push(name);
    }
    let table = table(options, &summaries, &pictures);
    let results = Results {
        options: describe(options),
        runs: &summaries,
        pods: runs
            .iter()
            .map(|r| (r.scenario.number(), r.repetition, r.pods.as_slice()))
            .collect(),
    };
    let json = serde_json::to_string_pretty(&results).unwrap_or_default();
    write_file(&out.join("results.json"), &json)?;
    write_file(&out.join("results.md"), &table)?;
    Ok(table)
}

fn write_file(path: &Path, text: &str) -> Result<(), RolloutError> {
    std::fs::write(path, text).map_err(|source| RolloutError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn describe(options: &RolloutOptions) -> BTreeMap<&'static str, String> {
    [
        ("replicas", options.replicas.to_string()),
        ("max_surge", options.max_surge.to_string()),
        ("scale_in_to", options.scale_in_to.to_string()),
        ("health_check_interval_s", options.interval.to_string()),
        ("healthy_threshold", options.healthy_threshold.to_string()),
        (
            "deregistration_delay_s",
            options.deregistration_delay.to_string(),
        ),
        ("rate_per_s", options.rate.to_string()),
        ("start_delay", format!("{:?}", options.start_delay)),
        ("routing_lag", format!("{:?}", options.routing_lag)),
        (
            "termination_hold",
            format!("{:?}", options.termination_hold),
        ),
        (
            "restart_downtime",
            format!("{:?}", options.restart_downtime),
        ),
        ("repetitions", options.repetitions.to_string()),
    ]
    .into()
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

/// The readable table: one row per scenario, then the overhead of gates per surge step.
pub fn table(options: &RolloutOptions, runs: &[RunSummary], pictures: &[String]) -> String {
    let mut lines = vec![
        format!(
            "{} replicas, maxSurge {}, maxUnavailable 0; health check {} s x {}; deregistration delay {} s; {} req/s; pods ready {:?} after start; ALB routing lag {:?}; controller hold {:?}",
            options.replicas,
            options.max_surge,
            options.interval,
            options.healthy_threshold,
            options.deregistration_delay,
            options.rate,
            options.start_delay,
            options.routing_lag,
            options.termination_hold,
        ),
        String::new(),
        "| # | scenario | runs | failed requests per run | 502 / 503 / 504 / conn. error / other | rollout s (median; runs) | ContainersReady -> healthy s (p50) | healthy -> Ready s (p50, max) | controller share per pod s (p50, max) |".to_string(),
        "|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    let mut scenarios: Vec<Scenario> = runs.iter().map(|r| r.scenario).collect();
    scenarios.sort();
    scenarios.dedup();
    let mut rollout_median = BTreeMap::new();
    for scenario in scenarios {
        let these: Vec<&RunSummary> = runs.iter().filter(|r| r.scenario == scenario).collect();
        let total = |kind: &str| -> usize {
            these
                .iter()
                .map(|r| r.failures_by_kind.get(kind).copied().unwrap_or(0))
                .sum()
        };
        let all = |f: fn(&RunSummary) -> &Vec<f64>| -> Vec<f64> {
            these.iter().flat_map(|r| f(r).iter().copied()).collect()
        };
        let rollouts: Vec<f64> = these.iter().map(|r| r.rollout_seconds).collect();
        rollout_median.insert(scenario, median(&rollouts));
        let ready_to_healthy = all(|r| &r.containers_ready_to_healthy);
        let healthy_to_ready = all(|r| &r.healthy_to_ready);
        let share = all(|r| &r.controller_share);
        let per_pod = |values: &[f64], with_max: bool| {
            if values.is_empty() {
                "-".to_string()
            } else if with_max {
                format!("{:.2}, {:.2}", median(values), percentile(values, 1.0))
            } else {
                format!("{:.2}", median(values))
            }
        };
        let gated = scenario != Scenario::NoGates;
        lines.push(format!(
            "| {} | {} | {} | {} | {} / {} / {} / {} / {} | {:.1}; {} | {} | {} | {} |",
            scenario.number(),
            scenario.description(),
            these.len(),
            these
                .iter()
                .map(|r| r.failed.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            total("502"),
            total("503"),
            total("504"),
            total("connection error"),
            total("other status") + total("timeout"),
            median(&rollouts),
            rollouts
                .iter()
                .map(|s| format!("{s:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            per_pod(&ready_to_healthy, false),
            per_pod(&healthy_to_ready, true),
            if gated {
                per_pod(&share, true)
            } else {
                "-".to_string()
            },
        ));
    }
    let mut notes = Vec::new();
    for scenario in Scenario::ALL
        .into_iter()
        .filter(|s| *s != Scenario::NoGates)
    {
        let these: Vec<&RunSummary> = runs.iter().filter(|r| r.scenario == scenario).collect();
        let ungated: usize = these.iter().map(|r| r.new_pods_without_gate).sum();
        if ungated > 0 {
            notes.push(format!(
                "Scenario {}: {ungated} new pods over {} runs were created without a readiness gate (the webhook was away; it fails open).",
                scenario.number(),
                these.len()
            ));
        }
        let away: Vec<f64> = these.iter().filter_map(|r| r.restart_seconds).collect();
        if !away.is_empty() {
            notes.push(format!(
                "Scenario {}: the controller was away {} s (stop, downtime, start until ready), from the moment the first old pod began terminating.",
                scenario.number(),
                away.iter().map(|s| format!("{s:.1}")).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if !notes.is_empty() {
        lines.push(String::new());
        lines.extend(notes);
    }
    let steps = options.surge_steps() as f64;
    let limit = f64::from(options.interval * options.healthy_threshold) + 2.0;
    if let Some(base) = rollout_median.get(&Scenario::NoGates) {
        lines.push(String::new());
        for scenario in [Scenario::Gates, Scenario::GatesPrestop] {
            if let Some(gated) = rollout_median.get(&scenario) {
                lines.push(format!(
                    "Rollout overhead of scenario {} over scenario 1: ({gated:.1} s - {base:.1} s) / {steps} surge steps = {:.1} s per step (limit: interval x threshold + 2 s = {limit:.0} s).",
                    scenario.number(),
                    (gated - base) / steps,
                ));
            }
        }
    }
    lines.push(String::new());
    lines.push(format!("Timelines: {}", pictures.join(", ")));
    lines.join("\n")
}
