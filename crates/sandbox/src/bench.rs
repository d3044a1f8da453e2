//! `lb-sandbox bench`: the sandbox's figures. Sandbox start time with cached binaries (to API
//! ready, nodes registered), and pod creation -> Ready latency under the simulated kubelet.
//! Prints a table and, with `--json`, writes the raw figures.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use lb_sandbox::{Result, Sandbox, SandboxError};
use serde_json::json;

use crate::SandboxArgs;
pub use lb_sandbox::testing::percentile;

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    sandbox: SandboxArgs,
    /// How many times to start a sandbox (each start is timed).
    #[arg(long, default_value_t = 3)]
    starts: usize,
    /// Pods to create, at `--rate` per second, each timed from create to Ready.
    #[arg(long, default_value_t = 50)]
    pods: usize,
    /// Pod creations per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let mut starts = Vec::new();
    let mut last = None;
    for i in 0..args.starts.max(1) {
        let sandbox = Sandbox::start(args.sandbox.config()).await?;
        let took = sandbox.startup_time();
        eprintln!("start {}: {:.2?}", i + 1, took);
        starts.push(took);
        if let Some(previous) = last.replace(sandbox) {
            Sandbox::shutdown(previous).await;
        }
    }
    let sandbox = last.ok_or_else(|| SandboxError::Config("no sandbox started".into()))?;
    let latencies = pod_ready_latencies(&sandbox, args.pods, args.rate).await;
    sandbox.shutdown().await;
    let latencies = latencies?;

    let start_secs: Vec<f64> = starts.iter().map(Duration::as_secs_f64).collect();
    let ready_ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| sandbox start to API ready + nodes registered (cached binaries), {} runs | p50 {:.2} s, max {:.2} s |",
        start_secs.len(),
        percentile(&start_secs, 0.5),
        percentile(&start_secs, 1.0)
    );
    println!(
        "| pod create -> Ready ({} pods, {}/s, httpGet readiness probe) | p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms |",
        ready_ms.len(),
        args.rate,
        percentile(&ready_ms, 0.5),
        percentile(&ready_ms, 0.9),
        percentile(&ready_ms, 0.99),
        percentile(&ready_ms, 1.0)
    );
    if let Some(path) = args.json {
        let figures = json!({
            "sandbox_start_seconds": start_secs,
            "pod_ready_ms": {
                "samples": ready_ms.len(),
                "p50": percentile(&ready_ms, 0.5),
                "p90": percentile(&ready_ms, 0.9),
                "p99": percentile(&ready_ms, 0.99),
                "max": percentile(&ready_ms, 1.0),
            },
        });
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&figures).unwrap_or_default(),
        )
        .map_err(|source| SandboxError::Io {
            context: format!("writing {}", path.display()),
            source,
        })?;
    }
    Ok(())
}

/// Creates `count` pods at `rate` per second and returns each one's create -> Ready time.
async fn pod_ready_latencies(sandbox: &Sandbox, count: usize, rate: f64) -> Result<Vec<Duration>> {
    sandbox.create_namespace("bench", &[]).await?;
    let pods: Api<Pod> = Api::namespaced(sandbox.client(), "bench");
    // Watch first, so no Ready transition is missed.
    let mut ready_events = watcher(pods.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let watch_task = tokio::spawn(async move {
        while let Some(Ok(pod)) = ready_events.next().await {
            if is_ready(&pod) {
                let _ = ready_tx.send((pod.metadata.name.unwrap_or_default(), Instant::now()));
            }
        }
    });

    let mut created = HashMap::new();
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
    for i in 0..count {
        let name = format!("bench-{i}");
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{
                "name": "app", "image": "sandbox/echo",
                "ports": [{"containerPort": 8080, "name": "http"}],
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
            }]},
        }))
        .map_err(|e| SandboxError::Config(e.to_string()))?;
        created.insert(name.clone(), Instant::now());
        pods.create(&PostParams::default(), &pod)
            .await
            .map_err(|source| SandboxError::Kube {
                context: format!("creating pod {name}"),
                source,
            })?;
        tokio::time::sleep(interval).await;
    }

    let mut latencies = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while latencies.len() < count {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some((name, at))) => {
                if let Some(start) = created.get(&name) {
                    latencies
                        .entry(name)
                        .or_insert_with(|| at.duration_since(*start));
                }
            }
            _ => break,
        }
    }
    watch_task.abort();
    if latencies.len() < count {
        return Err(SandboxError::Config(format!(
            "only {} of {count} pods became Ready within 60 s",
            latencies.len()
        )));
    }
    Ok(latencies.into_values().collect())
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
