//! `lb-controller bench-gates`: the TargetGroupBinding figures on the sandbox.
//!
//! A Deployment behind a TargetGroupBinding in a gated namespace is scaled from 0 to `pods`; then
//! the controller is left alone for `steady`; then `delete` pods are deleted. From the pods' watch
//! (when each pod's ContainersReady and gate turned True) and the emulator's target timelines (when
//! each target was registered, turned healthy, started draining):
//!
//! - gate latency: target healthy in ELB -> pod gate condition True;
//! - registration latency: pod ContainersReady -> target registered;
//! - deregistration latency: pod deletion -> target draining;
//! - AWS calls for the scale-out, and DescribeTargetHealth calls per minute at steady state.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use lb_aws::Operation;
use lb_sandbox::testing::{percentile, pods_of, web_deployment};
use lb_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;

use crate::bench_rollout::record::PodRecorder;
use crate::clock::now;
use crate::harness::{ControllerHandle, HarnessError, gated_web_binding, start_controller};

const NS: &str = "bench";

#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Pods to scale out to (from 0).
    #[arg(long, default_value_t = 100)]
    pub pods: usize,
    /// Health-check interval of the target group, seconds.
    #[arg(long, default_value_t = 2)]
    pub interval: i32,
    /// How long to watch the settled controller for AWS calls.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub steady: Duration,
    /// Pods to delete at the end (deregistration latency).
    #[arg(long, default_value_t = 20)]
    pub delete: usize,
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
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let controller = start_controller(&sandbox).await?;
    let result = measure(&sandbox, &controller, &options).await;
    controller.stop().await;
    sandbox.shutdown().await;
    result
}

async fn measure(
    sandbox: &Sandbox,
    controller: &ControllerHandle,
    options: &BenchOptions,
) -> Result<String, BenchError> {
    let client = sandbox.client();
    let aws = sandbox.aws().ok_or(HarnessError::NoAws)?;
    let tg = gated_web_binding(sandbox, NS, "web", options.interval).await?;
    Api::<Deployment>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &web_deployment("web", 0, 25, 0))
        .await?;

    // Watch the pods: when ContainersReady and our gate turned True.
    let recorder = PodRecorder::start(&client, NS);

    let calls = &controller.calls;
    let count = |op| calls.count(op);
    let before: Vec<u64> = Operation::ALL.iter().map(|op| count(*op)).collect();
    let scale_started = Instant::now();
    Api::<Deployment>::namespaced(client.clone(), NS)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": options.pods}})),
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let gated = recorder
            .snapshot()
            .iter()
            .filter(|p| p.gate_true.is_some())
            .count();
        if gated >= options.pods {
            break;
        }
        if Instant::now() > deadline {
            return Err(BenchError::Stuck(format!(
                "only {gated} of {} gates opened",
                options.pods
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let scale_out = scale_started.elapsed();
    let after: Vec<u64> = Operation::ALL.iter().map(|op| count(*op)).collect();
    let used = |op: Operation| after[op as usize] - before[op as usize];

    // Steady state: no change, so no call.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let steady_before = count(Operation::DescribeTargetHealth);
    tokio::time::sleep(options.steady).await;
    let steady_calls = count(Operation::DescribeTargetHealth) - steady_before;
    let per_minute = steady_calls as f64 * 60.0 / options.steady.as_secs_f64();

    // The webhook, straight from its caches: 500 reviews of pods behind the binding.
    let reviews = crate::webhook_probe::time_reviews(
        controller.webhook,
        &sandbox.pki().ca_pem(),
        lb_api::keys::webhooks::MUTATE_POD_PATH,
        |i| crate::webhook_probe::pod_review(NS, &format!("probe-{i}"), json!({"app": "web"})),
        500,
        true,
    )
    .await
    .map_err(|e| BenchError::Stuck(format!("webhook: {e}")))?;
    let webhook_ms: Vec<f64> = reviews.iter().map(|d| d.as_secs_f64() * 1000.0).collect();

    // Deletions.
    let pods = pods_of(&client, NS, "web").await;
    let mut deleted_at = HashMap::new();
    let api: Api<Pod> = Api::namespaced(client.clone(), NS);
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

    let timelines = aws.control().targets(&tg).await?;
    let at = |ip: &str, state: &str| {
        timelines
            .iter()
            .find(|t| t.id == ip)
            .and_then(|t| t.timeline.iter().find(|e| e.state == state).map(|e| e.at))
    };
    let mut gate_ms = Vec::new();
    let mut register_ms = Vec::new();
    for pod in &lives {
        let Some(ip) = &pod.ip else { continue };
        if let (Some(healthy), Some(gate)) = (at(ip, "healthy"), pod.gate_true) {
            gate_ms.push((gate - healthy) * 1000.0);
        }
        if let (Some(ready), Some(registered)) = (pod.containers_ready, at(ip, "initial")) {
            register_ms.push((registered - ready) * 1000.0);
        }
    }
    let deregister_ms: Vec<f64> = deleted_at
        .iter()
        .filter_map(|(ip, deleted)| at(ip, "draining").map(|d| (d - deleted) * 1000.0))
        .collect();

    let row = |name: &str, values: &[f64]| {
        format!(
            "| {name} ({} samples) | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms |",
            values.len(),
            percentile(values, 0.5),
            percentile(values, 0.99),
            percentile(values, 1.0)
        )
    };
    Ok([
        "| figure | value |".to_string(),
        "|---|---|".to_string(),
        row("gate latency: target healthy in ELB -> pod gate True", &gate_ms),
        row("registration latency: pod ContainersReady -> target registered", &register_ms),
        row("deregistration latency: pod deleted -> target draining", &deregister_ms),
        format!(
            "| pod webhook round trip over TLS, gate injected ({} reviews) | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms |",
            webhook_ms.len(),
            percentile(&webhook_ms, 0.5),
            percentile(&webhook_ms, 0.99),
            percentile(&webhook_ms, 1.0)
        ),
        format!(
            "| AWS calls for a 0 -> {} scale-out ({:.0} s to the last gate) | RegisterTargets {}, DeregisterTargets {}, DescribeTargetHealth {}, DescribeTargetGroups {} |",
            options.pods,
            scale_out.as_secs_f64(),
            used(Operation::RegisterTargets),
            used(Operation::DeregisterTargets),
            used(Operation::DescribeTargetHealth),
            used(Operation::DescribeTargetGroups),
        ),
        format!(
            "| DescribeTargetHealth at steady state ({:.0} s watched) | {per_minute:.1} calls/minute |",
            options.steady.as_secs_f64()
        ),
    ]
    .join("\n"))
}
