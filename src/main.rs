//! `lb-controller`: binds Kubernetes workloads to AWS Elastic Load Balancers.
//!
//! `lb-controller demo` runs everything on the local sandbox; `lb-controller crd` prints the CRDs.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The controller as it runs in a cluster.
async fn run_controller(
    webhook: Option<lb_controller_core::WebhookOptions>,
    metrics_listen: std::net::SocketAddr,
) -> Result<(), demo::CliError> {
    let signals = lb_sandbox::stop::StopSignals::install();
    let client = kube::Client::try_default()
        .await
        .map_err(|e| demo::CliError::Controller(format!("connecting to Kubernetes: {e}")))?;
    let calls = std::sync::Arc::new(lb_aws::AwsCalls::default());
    let aws = lb_aws::SdkTargetGroups::new(&lb_aws::load_sdk_config().await, calls.clone());
    let metrics = lb_controller_core::MetricsOptions {
        listen: metrics_listen,
        calls,
    };
    lb_controller_core::run(
        client,
        aws,
        webhook,
        Some(metrics),
        signals.wait(None),
        None,
    )
    .await
    .map_err(|e| demo::CliError::Controller(e.to_string()))
}

#[derive(Parser)]
#[command(name = "lb-controller", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo on the local sandbox: a real control plane, simulated nodes, the examples'
    /// workloads, and what happens to them, live.
    Demo {
        /// Stop after this long (e.g. 30s); default: until Ctrl-C.
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        run_for: Option<Duration>,
        /// Manifests to apply (YAML, several documents allowed).
        #[arg(long, default_values = ["examples/sandbox/echo-tgb.yaml", "examples/sandbox/echo.yaml"])]
        manifests: Vec<PathBuf>,
        /// Namespace for objects that name none.
        #[arg(long, default_value = "demo")]
        namespace: String,
    },
    /// Print the CRDs (YAML), as committed in config/crd/.
    Crd,
    /// Measure readiness gates and registration on the sandbox (see src/bench.rs).
    BenchGates {
        /// Pods to scale out to (from 0).
        #[arg(long, default_value_t = 100)]
        pods: usize,
        /// Health-check interval of the target group, seconds.
        #[arg(long, default_value_t = 2)]
        interval: i32,
        /// How long to watch the settled controller for AWS calls.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        steady: Duration,
        /// Pods to delete at the end (deregistration latency).
        #[arg(long, default_value_t = 20)]
        delete: usize,
    },
    /// Measure failed requests during rollouts and scale-in under load, per scenario (see
    /// src/bench_rollout/mod.rs); writes results.json, results.md and SVG timelines.
    BenchRollout(lb_controller::bench_rollout::RolloutOptions),
    /// Run the controller: in-cluster (or the kubeconfig's cluster) and AWS from the environment.
    Run {
        /// Serve the pod readiness-gate webhook on this address.
        #[arg(long, default_value = "0.0.0.0:9443")]
        webhook_listen: std::net::SocketAddr,
        /// Directory with the webhook's serving certificate (tls.crt, tls.key).
        #[arg(long, default_value = "/tmp/k8s-webhook-server/serving-certs")]
        webhook_cert_dir: PathBuf,
        /// Run without the webhook (pods then get no gates injected).
        #[arg(long)]
        disable_webhook: bool,
        /// How long a pod behind a binding keeps serving after its deletion starts, when it has
        /// no preStop hook of its own (injected as a preStop sleep; 0s: never). Pods override it
        /// with the annotation lb-controller.dev/termination-hold-seconds.
        #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
        pod_termination_hold: Duration,
        /// Serve Prometheus metrics on this address (`/metrics`).
        #[arg(long, default_value = "0.0.0.0:8080")]
        metrics_listen: std::net::SocketAddr,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // kube logs every non-2xx answer; the sandbox's /readyz answers 500 until it is up.
                .unwrap_or_else(|_| "warn,kube_client::client::builder=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Demo {
            run_for,
            manifests,
            namespace,
        } => {
            demo::run(demo::DemoOptions {
                run_for,
                manifests,
                namespace,
            })
            .await
        }
        Command::Crd => lb_api::crds_yaml()
            .map(|yaml| print!("{yaml}"))
            .map_err(|err| demo::CliError::Crd(err.to_string())),
        Command::BenchGates {
            pods,
            interval,
            steady,
            delete,
        } => {
            let options = lb_controller::bench::BenchOptions {
                pods,
                interval,
                steady,
                delete,
            };
            lb_controller::bench::run(options)
                .await
                .map(|table| println!("{table}"))
                .map_err(|e| demo::CliError::Controller(e.to_string()))
        }
        Command::BenchRollout(options) => lb_controller::bench_rollout::run(options)
            .await
            .map(|table| println!("{table}"))
            .map_err(|e| demo::CliError::Controller(e.to_string())),
        Command::Run {
            webhook_listen,
            webhook_cert_dir,
            disable_webhook,
            pod_termination_hold,
            metrics_listen,
        } => {
            let webhook = (!disable_webhook).then(|| lb_controller_core::WebhookOptions {
                listen: webhook_listen,
                cert: webhook_cert_dir.join("tls.crt"),
                key: webhook_cert_dir.join("tls.key"),
                termination_hold: pod_termination_hold,
            });
            run_controller(webhook, metrics_listen).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lb-controller: {err}");
            ExitCode::FAILURE
        }
    }
}
