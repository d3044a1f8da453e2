//! `lb-sandbox bench-aws`: the AWS emulator's figures, so later benchmarks know their ceiling.
//!
//! 1. Data-plane throughput: 50 concurrent keep-alive clients through an emulated ALB listener to
//!    3 pods, for `--seconds`: requests/s and latency percentiles.
//! 2. Health-state timing: `--targets` pods registered at once in a target group (interval 2 s,
//!    healthy threshold 2): how far each target's initial -> healthy time is from the configured
//!    interval x threshold.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::Client as ElbClient;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, PostParams};
use lb_sandbox::aws::elb_setup;
use lb_sandbox::{DestinationGuard, Result, Sandbox, SandboxError};
use serde_json::json;
use tokio::sync::Mutex;

use crate::SandboxArgs;
use crate::bench::percentile;

const INTERVAL: i32 = 2;
const HEALTHY_THRESHOLD: i32 = 2;

#[derive(clap::Args)]
pub struct BenchAwsArgs {
    #[command(flatten)]
    sandbox: SandboxArgs,
    /// Concurrent clients for the throughput run.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Length of the throughput run, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Targets for the health-timing run.
    #[arg(long, default_value_t = 20)]
    targets: usize,
}

fn fail(context: &str, err: impl std::fmt::Display) -> SandboxError {
    SandboxError::Config(format!("{context}: {err}"))
}

pub async fn run(args: BenchAwsArgs) -> Result<()> {
    let sandbox = Sandbox::start(args.sandbox.config()).await?;
    let result = measure(&sandbox, &args).await;
    sandbox.shutdown().await;
    let (throughput, timing) = result?;
    println!("| figure | value |");
    println!("|---|---|");
    println!("{throughput}");
    println!("{timing}");
    Ok(())
}

async fn measure(sandbox: &Sandbox, args: &BenchAwsArgs) -> Result<(String, String)> {
    let aws = sandbox
        .aws()
        .ok_or_else(|| SandboxError::Config("bench-aws needs the AWS emulator".into()))?;
    let elb = ElbClient::new(&aws.sdk_config().await);
    sandbox.create_namespace("bench", &[]).await?;

    // Throughput: 3 pods behind the ALB.
    let web = scale_pods(sandbox, "web", 3).await?;
    let web_alb = elb_setup::web_alb(&elb, aws, "web", "/healthz", INTERVAL, 300).await?;
    let web_tg = web_alb.target_group_arn;
    register(&elb, &web_tg, &web).await?;
    wait_healthy(&elb, &web_tg, web.len()).await?;
    let local = aws.listener_address(&web_alb.dns_name, 80).await?;
    let throughput = throughput(
        sandbox.guard(),
        local,
        args.clients,
        Duration::from_secs(args.seconds),
    )
    .await?;

    // Health timing: many targets registered at once.
    let many = scale_pods(sandbox, "many", args.targets).await?;
    let many_tg = elb_setup::web_alb(&elb, aws, "many", "/healthz", INTERVAL, 300)
        .await?
        .target_group_arn;
    register(&elb, &many_tg, &many).await?;
    wait_healthy(&elb, &many_tg, many.len()).await?;
    let expected = f64::from(INTERVAL * HEALTHY_THRESHOLD);
    let mut errors_ms = Vec::new();
    for target in aws.control().targets(&many_tg).await? {
        let at = |state: &str| {
            target
                .timeline
                .iter()
                .find(|e| e.state == state)
                .map(|e| e.at)
        };
        if let (Some(initial), Some(healthy)) = (at("initial"), at("healthy")) {
            errors_ms.push((healthy - initial - expected) * 1000.0);
        }
    }
    let timing = format!(
        "| initial -> healthy vs configured {INTERVAL} s x {HEALTHY_THRESHOLD} ({} targets registered at once) | error p50 {:+.0} ms, p99 {:+.0} ms, max {:+.0} ms |",
        errors_ms.len(),
        percentile(&errors_ms, 0.5),
        percentile(&errors_ms, 0.99),
        percentile(&errors_ms, 1.0),
    );
    Ok((throughput, timing))
}

/// A Deployment of `replicas` pods; returns their addresses once all run.
async fn scale_pods(sandbox: &Sandbox, name: &str, replicas: usize) -> Result<Vec<String>> {
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "sandbox/web", "ports": [{"containerPort": 8080}]}]},
            },
        },
    }))
    .map_err(|e| fail("deployment", e))?;
    Api::<Deployment>::namespaced(sandbox.client(), "bench")
        .create(&PostParams::default(), &deployment)
        .await
        .map_err(|e| fail("creating the deployment", e))?;
    let pods: Api<Pod> = Api::namespaced(sandbox.client(), "bench");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let list = pods
            .list(&ListParams::default().labels(&format!("app={name}")))
            .await
            .map_err(|e| fail("listing pods", e))?;
        let addresses: Vec<String> = list
            .items
            .iter()
            .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
            .collect();
        if addresses.len() == replicas {
            return Ok(addresses);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(fail(
        "pods",
        format!("{replicas} pods of {name} did not start"),
    ))
}

async fn register(elb: &ElbClient, tg: &str, addresses: &[String]) -> Result<()> {
    let targets = addresses
        .iter()
        .map(|ip| elb_setup::target(ip, 8080))
        .collect();
    elb_setup::register(elb, tg, targets).await
}

async fn wait_healthy(elb: &ElbClient, tg: &str, count: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let states = elb_setup::states(elb, tg).await?;
        if states.iter().filter(|t| t.state == "healthy").count() == count {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(fail(
        "targets",
        format!("not all {count} targets of {tg} became healthy"),
    ))
}

/// `clients` keep-alive connections sending GETs back to back for `duration`.
async fn throughput(
    guard: DestinationGuard,
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
) -> Result<String> {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let latencies = latencies.clone();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while started.elapsed() < duration {
                let Ok(stream) = guard.connect(addr, Duration::from_secs(5)).await else {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                };
                let Ok((mut sender, connection)) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
                else {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                };
                let driver = tokio::spawn(connection);
                while started.elapsed() < duration {
                    let request = hyper::Request::get("/")
                        .header(hyper::header::HOST, "bench.example.com")
                        .body(Empty::<Bytes>::new());
                    let Ok(request) = request else { break };
                    let sent = Instant::now();
                    match sender.send_request(request).await {
                        Ok(response) if response.status() == 200 => {
                            if response.into_body().collect().await.is_err() {
                                failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                break;
                            }
                            mine.push(sent.elapsed().as_secs_f64() * 1000.0);
                        }
                        _ => {
                            failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            break;
                        }
                    }
                }
                driver.abort();
            }
            latencies.lock().await.extend(mine);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let latencies = latencies.lock().await;
    Ok(format!(
        "| data plane, {clients} keep-alive clients, {:.0} s, ALB -> 3 pods | {:.0} req/s, latency p50 {:.1} ms, p99 {:.1} ms, failures {} |",
        elapsed,
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        failures.load(std::sync::atomic::Ordering::Relaxed)
    ))
}
