//! `lb-controller bench-gates`: the TargetGroupBinding figures on the sandbox.
//!
//! `bindings` Deployments, each behind its own TargetGroupBinding (and target group) in a gated
//! namespace, are scaled from 0 to `pods / bindings` pods each, all at once; then the controller
//! is left alone for `steady`; then `delete` pods are deleted. From the pods' watch (when each
//! pod's ContainersReady and gate turned True) and the emulator's target timelines (when each
//! target was registered, turned healthy, started draining):
//!
//! - gate latency: target healthy in ELB -> pod gate condition True;
//! - registration latency: pod ContainersReady -> target registered;
//! - deregistration latency: pod deletion -> target draining;
//! - fairness: how long each binding took to its last gate;
//! - AWS calls for the scale-out, and DescribeTargetHealth calls per minute at steady state;
//! - the controller's own time per pass phase (from its `lb_controller_pass_phase_seconds`
//!   samples), apart from the sandbox's;
//! - the sandbox's own pace: pods started per second, and how long the emulator took from a
//!   registration to healthy beyond interval x threshold (its health-check lag), and, with
//!   `--api-writes`, what the API server wrote during the scale-out ([`crate::api_writes`]);
//! - who took the CPU during the scale-out: the controller, the sandbox's processes, the rest of
//!   this process ([`crate::cpu_use`]);
//! - security groups: with `--closed`, the load balancers carry only the frontend group and the
//!   bindings' `networking` admits it, so the controller must open the cluster security group:
//!   the EC2 calls and rules that takes, and the EC2 calls at steady state; `--no-security-groups`
//!   runs the emulator without enforcement (the figures before security groups were enforced).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use lb_aws::Operation;
use lb_sandbox::testing::{pods_of, web_deployment};
use lb_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;

pub use figures::{GateFigures, Samples};

use crate::api_writes::ApiWrites;
use crate::bench_rollout::record::PodRecorder;
use crate::clock::now;
use crate::cpu_use::CpuUse;
use crate::harness::{
    ControllerHandle, Front, HarnessError, OwnRuntime, start_controller, web_binding,
};
use crate::slice_recorder::SliceRecorder;
use crate::spread::Spread;

mod figures;
mod floor;

/// Registration deadlines (seconds) the fewest possible RegisterTargets calls are told for: the
/// issue's 0.5 s, and twice that.
const FLOOR_DEADLINES: [f64; 2] = [0.5, 1.0];

/// The target groups' healthy threshold (see `elb_setup::target_group`).
const HEALTHY_THRESHOLD: f64 = 2.0;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Pods to scale out to (from 0), in all.
    #[arg(long, default_value_t = 100)]
    pub pods: usize,
    /// Bindings (each a namespace, Service, Deployment and target group) the pods are spread over.
    #[arg(long, default_value_t = 1)]
    pub bindings: usize,
    /// Health-check interval of the target groups, seconds.
    #[arg(long, default_value_t = 2)]
    pub interval: i32,
    /// How long to watch the settled controller for AWS calls.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub steady: Duration,
    /// Pods to delete at the end (deregistration latency).
    #[arg(long, default_value_t = 20)]
    pub delete: usize,
    /// Pods per second the scale-out asks for, in all (the Deployments' replicas raised every
    /// 500 ms); 0: all at once. A rate the sandbox sustains keeps its API server out of the
    /// figure (see docs/figures.md).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Also count the API server's writes during the scale-out, by resource (from its
    /// `/metrics`). Off by default: runs with it came out slower on this machine.
    #[arg(long)]
    pub api_writes: bool,
    /// The load balancers carry the frontend group only; the bindings' `networking` admits it
    /// (the controller opens the cluster security group).
    #[arg(long)]
    pub closed: bool,
    /// The emulator enforces no security group.
    #[arg(long)]
    pub no_security_groups: bool,
}

impl BenchOptions {
    fn spread(&self) -> Spread {
        Spread::new(self.pods, self.bindings)
    }
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            pods: 100,
            bindings: 1,
            interval: 2,
            steady: Duration::from_secs(60),
            delete: 20,
            rate: 0.0,
            api_writes: false,
            closed: false,
            no_security_groups: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error(transparent)]
    Sandbox(#[from] lb_sandbox::SandboxError),
    #[error("Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Stuck(String),
}

pub async fn run(options: BenchOptions) -> Result<String, BenchError> {
    Ok(figures(options).await?.table())
}

/// Runs the benchmark on a sandbox of its own.
pub async fn figures(options: BenchOptions) -> Result<GateFigures, BenchError> {
    let config = SandboxConfig {
        enforce_security_groups: !options.no_security_groups,
        ..SandboxConfig::for_pods(options.spread().pods())
    };
    let sandbox = Sandbox::start(config).await?;
    let controller = start_controller(&sandbox).await?;
    let result = measure(&sandbox, &controller, &options).await;
    controller.stop().await;
    sandbox.shutdown().await;
    result
}

/// The namespace of binding `index`.
fn namespace(options: &BenchOptions, index: usize) -> String {
    if options.bindings <= 1 {
        "bench".to_string()
    } else {
        format!("bench-{index}")
    }
}

/// How the scale-out raises the Deployments' replicas: all at once (`rate` 0), or `rate` pods a
/// second in all, in steps every [`RAMP_STEP`], binding after binding (each binding's pods come
/// together, as a Deployment's own scale-out brings them).
#[derive(Debug, Clone, Copy)]
struct Ramp {
    spread: Spread,
    rate: f64,
}

const RAMP_STEP: Duration = Duration::from_millis(500);

impl Ramp {
    /// How long the ramp takes.
    fn length(&self) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.spread.pods() as f64 / self.rate)
    }

    /// The replicas of binding `index`'s Deployment `elapsed` into the ramp.
    fn replicas_at(&self, index: usize, elapsed: Duration) -> usize {
        let per_binding = self.spread.per_binding;
        if self.rate <= 0.0 {
            return per_binding;
        }
        let pods = (self.rate * elapsed.as_secs_f64()).ceil() as usize;
        pods.saturating_sub(index * per_binding).min(per_binding)
    }
}

/// Raises every Deployment's replicas along `ramp`, to `per_binding` each.
async fn scale_out(
    client: &kube::Client,
    options: &BenchOptions,
    ramp: Ramp,
) -> Result<(), BenchError> {
    let started = Instant::now();
    let mut replicas = vec![0; ramp.spread.bindings];
    loop {
        let elapsed = started.elapsed() + RAMP_STEP;
        let scales = replicas
            .iter_mut()
            .enumerate()
            .filter_map(|(index, current)| {
                let wanted = ramp.replicas_at(index, elapsed);
                (wanted > *current).then(|| {
                    *current = wanted;
                    let api =
                        Api::<Deployment>::namespaced(client.clone(), &namespace(options, index));
                    async move {
                        api.patch(
                            "web",
                            &PatchParams::default(),
                            &Patch::Merge(json!({"spec": {"replicas": wanted}})),
                        )
                        .await
                    }
                })
            });
        for scaled in futures::future::join_all(scales).await {
            scaled?;
        }
        if replicas.iter().all(|r| *r >= ramp.spread.per_binding) {
            return Ok(());
        }
        tokio::time::sleep(RAMP_STEP).await;
    }
}

/// The EC2 operations of the targets' security-group rules.
pub const EC2_OPERATIONS: [Operation; 4] = [
    Operation::DescribeNetworkInterfaces,
    Operation::DescribeSecurityGroups,
    Operation::AuthorizeSecurityGroupIngress,
    Operation::RevokeSecurityGroupIngress,
];

/// The rules on the cluster security group that carry the controller's label.
async fn labelled_rules(sandbox: &Sandbox) -> Result<usize, BenchError> {
    let aws = sandbox.aws().ok_or(HarnessError::NoAws)?;
    let ec2 = aws_sdk_ec2::Client::new(&aws.sdk_config().await);
    let described = ec2
        .describe_security_groups()
        .group_ids(&aws.seeded().cluster_security_group_id)
        .send()
        .await
        .map_err(|e| BenchError::Stuck(format!("DescribeSecurityGroups: {e}")))?;
    let label = lb_model::target_rules::RULE_LABEL;
    Ok(described
        .security_groups()
        .iter()
        .flat_map(|g| g.ip_permissions())
        .map(|p| {
            p.user_id_group_pairs()
                .iter()
                .filter(|pair| pair.description() == Some(label))
                .count()
                + p.ip_ranges()
                    .iter()
                    .filter(|range| range.description() == Some(label))
                    .count()
        })
        .sum())
}

async fn measure(
    sandbox: &Sandbox,
    controller: &ControllerHandle,
    options: &BenchOptions,
) -> Result<GateFigures, BenchError> {
    let client = sandbox.client();
    let aws = sandbox.aws().ok_or(HarnessError::NoAws)?;
    let spread = options.spread();
    let (bindings, total) = (spread.bindings, spread.pods());
    let mut groups = Vec::new();
    for index in 0..bindings {
        let namespace = namespace(options, index);
        let name = if bindings == 1 {
            "web".to_string()
        } else {
            format!("web-{index}")
        };
        let front = if options.closed {
            Front::Closed
        } else {
            Front::Open
        };
        groups.push(web_binding(sandbox, &namespace, &name, options.interval, front).await?);
        Api::<Deployment>::namespaced(client.clone(), &namespace)
            .create(&PostParams::default(), &web_deployment("web", 0, 25, 0))
            .await?;
    }

    // Watch the pods (when ContainersReady and our gate turned True) and the EndpointSlices, on a
    // runtime and with connections of their own: on this one, their events queued behind the
    // simulated kubelets and the pods' servers, and that wait would count in the figures.
    let watches = OwnRuntime::start(crate::cpu_use::WATCH_THREAD, Some(1))?;
    let (recorder, slices) = {
        let watch_client = watches.client(sandbox)?;
        let _inside = watches.handle.enter();
        (
            PodRecorder::start_labelled(&watch_client, "app=web"),
            SliceRecorder::start(&watch_client),
        )
    };

    let calls = &controller.calls;
    let count = |op| calls.count(op);
    let before: Vec<u64> = Operation::ALL.iter().map(|op| count(*op)).collect();
    controller.context.metrics.phase_samples.clear();
    let writes_before = if options.api_writes {
        Some(ApiWrites::read(&client).await?)
    } else {
        None
    };
    let cpu_before = CpuUse::read();
    let scale_started = Instant::now();
    let scale_started_at = now();
    let ramp = Ramp {
        spread,
        rate: options.rate,
    };
    let deadline = Instant::now() + Duration::from_secs(180 + total as u64 / 4) + ramp.length();
    let all_gated = async {
        loop {
            let gated = recorder
                .snapshot()
                .iter()
                .filter(|p| p.gate_true.is_some())
                .count();
            if gated >= total {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::Stuck(format!(
                    "only {gated} of {total} gates opened"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    futures::future::try_join(scale_out(&client, options, ramp), all_gated).await?;
    let scale_out = scale_started.elapsed();
    let cpu_after = CpuUse::read();
    let cpu = cpu_after.since(&cpu_before);
    let stolen = cpu_after.stolen_since(&cpu_before);
    let api_writes = match writes_before {
        Some(before) => Some(ApiWrites::read(&client).await?.since(&before)),
        None => None,
    };
    // The pods of the scale-out (not the replacements of the pods deleted later).
    let scaled: HashSet<String> = recorder
        .snapshot()
        .into_iter()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    let phase_samples = controller.context.metrics.phase_samples.by_phase();
    let after: Vec<u64> = Operation::ALL.iter().map(|op| count(*op)).collect();
    let calls_used: HashMap<Operation, u64> = Operation::ALL
        .iter()
        .map(|op| (*op, after[*op as usize] - before[*op as usize]))
        .collect();

    let rules_added = labelled_rules(sandbox).await?;

    // Steady state: no change, so no call.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let steady_before = count(Operation::DescribeTargetHealth);
    let ec2_count = || EC2_OPERATIONS.iter().map(|op| count(*op)).sum::<u64>();
    let steady_ec2_before = ec2_count();
    tokio::time::sleep(options.steady).await;
    let steady_describes = count(Operation::DescribeTargetHealth) - steady_before;
    let steady_ec2 = ec2_count() - steady_ec2_before;

    // The webhook, straight from its caches: 500 reviews of pods behind the first binding.
    let first = namespace(options, 0);
    let reviews = crate::webhook_probe::time_reviews(
        controller.webhook,
        &sandbox.pki().ca_pem(),
        lb_api::keys::webhooks::MUTATE_POD_PATH,
        |i| crate::webhook_probe::pod_review(&first, &format!("probe-{i}"), json!({"app": "web"})),
        500,
        true,
    )
    .await
    .map_err(|e| BenchError::Stuck(format!("webhook: {e}")))?;
    let webhook_ms: Vec<f64> = reviews.iter().map(|d| d.as_secs_f64() * 1000.0).collect();

    // Deletions, from the first binding.
    let pods = pods_of(&client, &first, "web").await;
    let mut deleted_at = HashMap::new();
    let api: Api<Pod> = Api::namespaced(client.clone(), &first);
    for pod in pods.iter().take(options.delete) {
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        deleted_at.insert(ip, now());
        api.delete(&pod.name_any(), &DeleteParams::default())
            .await?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lives = recorder.snapshot();
    let openings = controller.context.metrics.gate_openings.by_pod();

    // Every target of every group, by IP (a pod IP is in one group only).
    let mut timelines = HashMap::new();
    let mut failed_checks: BTreeMap<String, u64> = BTreeMap::new();
    for group in &groups {
        for target in aws.control().targets(group).await? {
            for (reason, count) in target.failed_checks {
                *failed_checks.entry(reason).or_default() += count;
            }
            timelines.insert(target.id.clone(), target.timeline);
        }
    }
    let at = |ip: &str, state: &str| {
        timelines
            .get(ip)
            .and_then(|t| t.iter().find(|e| e.state == state).map(|e| e.at))
    };
    let settle_ms = f64::from(options.interval) * HEALTHY_THRESHOLD * 1000.0;
    let mut figures = GateFigures {
        pods: total,
        bindings,
        rate: options.rate,
        scale_out,
        calls: calls_used,
        steady_describes,
        steady_ec2,
        rules_added,
        steady: options.steady,
        webhook_ms: Samples(webhook_ms),
        api_writes,
        cpu,
        stolen,
        failed_checks,
        ..GateFigures::default()
    };
    // By target group (a binding's namespace): when each pod could first be registered.
    let mut registrable: HashMap<String, Vec<f64>> = HashMap::new();
    let mut done: HashMap<&str, f64> = HashMap::new();
    let mut first_created: HashMap<&str, f64> = HashMap::new();
    let mut last_ready: f64 = scale_started_at;
    for pod in lives
        .iter()
        .filter(|p| scaled.contains(&format!("{}/{}", p.namespace, p.name)))
    {
        if let (Some(created), Some(ready)) = (pod.created, pod.containers_ready) {
            figures.start_ms.0.push((ready - created) * 1000.0);
            last_ready = last_ready.max(ready);
        }
        if let (Some(created), Some(gate)) = (pod.created, pod.gate_true) {
            figures.start_to_gate_ms.0.push((gate - created) * 1000.0);
        }
        if let Some(created) = pod.created {
            let first = first_created
                .entry(pod.namespace.as_str())
                .or_insert(created);
            *first = first.min(created);
        }
        if let Some(gate) = pod.gate_true {
            let latest = done.entry(pod.namespace.as_str()).or_insert(gate);
            *latest = latest.max(gate);
        }
        let Some(ip) = &pod.ip else { continue };
        if let (Some(healthy), Some(gate)) = (at(ip, "healthy"), pod.gate_true) {
            figures.gate_ms.0.push((gate - healthy) * 1000.0);
        }
        let opened = openings.get(&format!("{}/{}", pod.namespace, pod.name));
        if let (Some(healthy), Some(opened)) = (at(ip, "healthy"), opened) {
            figures
                .gate_written_ms
                .0
                .push((opened.written - healthy) * 1000.0);
            figures
                .gate_seen_ms
                .0
                .push((opened.seen - healthy) * 1000.0);
        }
        let listed = slices.first_seen(ip);
        // The floor counts every pod that became registrable, whether the controller registered
        // it or not: leaving one out would lower the floor.
        if let (Some(ready), Some(listed)) = (pod.containers_ready, listed) {
            registrable
                .entry(pod.namespace.clone())
                .or_default()
                .push(ready.max(listed));
        }
        if let (Some(ready), Some(registered)) = (pod.containers_ready, at(ip, "initial")) {
            figures.register_ms.0.push((registered - ready) * 1000.0);
            if let Some(listed) = listed {
                figures.slice_ms.0.push((listed - ready) * 1000.0);
                figures
                    .register_after_slice_ms
                    .0
                    .push((registered - ready.max(listed)) * 1000.0);
            }
        }
        if let (Some(registered), Some(healthy)) = (at(ip, "initial"), at(ip, "healthy")) {
            figures
                .check_lag_ms
                .0
                .push((healthy - registered) * 1000.0 - settle_ms);
        }
    }
    figures.binding_done_ms = Samples(
        done.iter()
            .map(|(namespace, last)| {
                let first = first_created.get(namespace).copied();
                (last - first.unwrap_or(scale_started_at)) * 1000.0
            })
            .collect(),
    );
    figures.floor_pods = registrable.values().map(Vec::len).sum();
    figures.register_floor = FLOOR_DEADLINES
        .iter()
        .map(|deadline| (*deadline, floor::fewest_calls(&registrable, *deadline)))
        .collect();
    figures.pods_per_second =
        figures.start_ms.0.len() as f64 / (last_ready - scale_started_at).max(0.001);
    figures.deregister_ms = Samples(
        deleted_at
            .iter()
            .filter_map(|(ip, deleted)| at(ip, "draining").map(|d| (d - deleted) * 1000.0))
            .collect(),
    );
    let mut phases: Vec<(&'static str, Samples)> = phase_samples
        .into_iter()
        .map(|(phase, seconds)| (phase, Samples(seconds.iter().map(|s| s * 1000.0).collect())))
        .collect();
    phases.sort_by_key(|(phase, _)| *phase);
    figures.phases = phases;
    Ok(figures)
}
