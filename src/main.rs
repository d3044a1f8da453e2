//! `lb-controller`: binds Kubernetes workloads to AWS Elastic Load Balancers.
//!
//! The product: `lb-controller run` (the controller in a cluster) and `lb-controller crd`. With
//! the default `lab` feature, also the local sandbox's commands: `demo`, `bench-gates`,
//! `bench-rollout` (see `crates/lab`); `cargo build --no-default-features` leaves them out.

mod signals;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("rendering the CRDs: {0}")]
    Crd(String),
    #[error("installing the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("connecting to Kubernetes: {0}")]
    Kubernetes(kube::Error),
    #[error(transparent)]
    Controller(#[from] lb_controller_core::RunError),
    #[cfg(feature = "lab")]
    #[error("{0}")]
    Lab(String),
}

#[derive(Parser)]
#[command(name = "lb-controller", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller: in-cluster (or the kubeconfig's cluster) and AWS from the environment.
    Run(Box<RunArgs>),
    /// Print the CRDs (YAML), as committed in config/crd/.
    Crd,
    /// Run the demo on the local sandbox: a real control plane, simulated nodes, the AWS emulator,
    /// the controller, and your manifests (or the examples'), live.
    #[cfg(feature = "lab")]
    Demo(lb_lab::demo::DemoOptions),
    /// Measure readiness gates and registration on the sandbox (see crates/lab/src/bench.rs).
    #[cfg(feature = "lab")]
    BenchGates(lb_lab::bench::BenchOptions),
    /// Measure failed requests during rollouts and scale-in under load, per scenario (see
    /// crates/lab/src/bench_rollout/mod.rs); writes results.json, results.md and SVG timelines.
    #[cfg(feature = "lab")]
    BenchRollout(lb_lab::bench_rollout::RolloutOptions),
    /// Measure the product binary's size and memory on the sandbox (see
    /// crates/lab/src/bench_footprint.rs).
    #[cfg(feature = "lab")]
    BenchFootprint(lb_lab::bench_footprint::FootprintOptions),
    /// Measure Service -> NLB on the sandbox: first reconcile, a no-op reconcile, many Services
    /// at once; time and AWS calls (see crates/lab/src/bench_services.rs).
    #[cfg(feature = "lab")]
    BenchServices(lb_lab::bench_services::ServiceBenchOptions),
    /// Measure Ingress -> ALB on the sandbox: one Ingress, a group of many created at once, one
    /// path changed, a no-op; time and AWS calls (see crates/lab/src/bench_ingress.rs).
    #[cfg(feature = "lab")]
    BenchIngress(lb_lab::bench_ingress::IngressBenchOptions),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Serve the admission webhooks (pods, TargetGroupBindings) on this address.
    #[arg(long, default_value = "0.0.0.0:9443")]
    webhook_listen: std::net::SocketAddr,
    /// Directory with the webhooks' serving certificate (tls.crt, tls.key).
    #[arg(long, default_value = "/tmp/k8s-webhook-server/serving-certs")]
    webhook_cert_dir: PathBuf,
    /// Run without the webhooks (pods then get no gates injected, bindings no defaults).
    #[arg(long)]
    disable_webhook: bool,
    /// How long a pod behind a binding keeps serving after its deletion starts, when it has no
    /// preStop hook of its own (injected as a preStop sleep; 0s: never). Pods override it with the
    /// annotation lb-controller.dev/termination-hold-seconds.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pod_termination_hold: Duration,
    /// Serve Prometheus metrics on this address (`/metrics`).
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_listen: std::net::SocketAddr,
    /// The cluster's name: tagged on everything the controller creates in AWS, and how it tells
    /// its own resources (and subnets) from other clusters'.
    #[arg(long, default_value = "")]
    cluster_name: String,
    /// The cluster's VPC (target groups, subnets and security groups). Without it, Services are
    /// not reconciled.
    #[arg(long)]
    aws_vpc_id: Option<String>,
    /// Services with this spec.loadBalancerClass are ours.
    #[arg(long, default_value = lb_api::keys::service::DEFAULT_LOAD_BALANCER_CLASS)]
    load_balancer_class: String,
    /// Target type of Services selected by class without a target-type annotation.
    #[arg(long, default_value = "instance", value_parser = parse_target_type)]
    default_target_type: lb_api::TargetType,
    /// Tags for every AWS resource the controller creates: `key=value,key=value`.
    #[arg(long, default_value = "", value_parser = parse_tags)]
    default_tags: std::collections::BTreeMap<String, String>,
    /// TLS listeners without an ssl-negotiation-policy annotation get this policy.
    #[arg(long, default_value = "ELBSecurityPolicy-2016-08")]
    default_ssl_policy: String,
    /// Leave Services alone (only TargetGroupBindings are reconciled).
    #[arg(long)]
    disable_service_controller: bool,
    /// Ingresses whose kubernetes.io/ingress.class annotation says this are ours.
    #[arg(long, default_value = lb_api::keys::ingress::DEFAULT_CLASS)]
    ingress_class: String,
    /// Scheme of ALBs whose Ingresses say none.
    #[arg(long, default_value = "internal", value_parser = parse_scheme)]
    default_load_balancer_scheme: lb_model::ingress::Scheme,
    /// Leave Ingresses alone.
    #[arg(long)]
    disable_ingress_controller: bool,
}

fn parse_scheme(value: &str) -> Result<lb_model::ingress::Scheme, String> {
    lb_model::ingress::Scheme::parse(value)
        .ok_or_else(|| format!("{value:?}: expected internal or internet-facing"))
}

fn parse_target_type(value: &str) -> Result<lb_api::TargetType, String> {
    match value {
        "instance" => Ok(lb_api::TargetType::Instance),
        "ip" => Ok(lb_api::TargetType::Ip),
        other => Err(format!("{other:?}: expected instance or ip")),
    }
}

fn parse_tags(value: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    value
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(format!("{pair:?}: expected key=value")),
        })
        .collect()
}

/// The controller as it runs in a cluster, until SIGTERM or SIGINT.
async fn run_controller(args: RunArgs) -> Result<(), CliError> {
    let stop = signals::Stop::install().map_err(CliError::Signals)?;
    let client = kube::Client::try_default()
        .await
        .map_err(CliError::Kubernetes)?;
    let calls = std::sync::Arc::new(lb_aws::AwsCalls::default());
    let config = lb_aws::load_sdk_config().await;
    let aws = lb_aws::SdkElbv2::new(&config, calls.clone());
    let services = match (&args.aws_vpc_id, args.disable_service_controller) {
        (_, true) => None,
        (None, false) => {
            tracing::warn!("no --aws-vpc-id: Services and Ingresses are not reconciled");
            None
        }
        (Some(vpc), false) => Some(lb_controller_core::service::ServiceOptions {
            elb: lb_aws::SdkLoadBalancers::new(&config, calls.clone(), vpc),
            ec2: lb_aws::SdkEc2::new(&config, calls.clone(), vpc),
            cluster: lb_model::service::build::ClusterSettings {
                cluster: args.cluster_name.clone(),
                default_tags: args.default_tags.clone(),
                default_ssl_policy: args.default_ssl_policy.clone(),
            },
            selection: lb_model::service::selection::SelectionSettings {
                load_balancer_class: args.load_balancer_class.clone(),
                default_target_type: args.default_target_type,
            },
        }),
    };
    let ingresses = match (&args.aws_vpc_id, args.disable_ingress_controller) {
        (Some(vpc), false) => Some(lb_controller_core::ingress::IngressOptions {
            elb: lb_aws::SdkLoadBalancers::new(&config, calls.clone(), vpc),
            ec2: lb_aws::SdkEc2::new(&config, calls.clone(), vpc),
            acm: lb_aws::SdkAcm::new(&config, calls.clone()),
            settings: lb_model::ingress::IngressSettings {
                cluster: args.cluster_name.clone(),
                default_tags: args.default_tags.clone(),
                default_ssl_policy: args.default_ssl_policy.clone(),
                default_target_type: args.default_target_type,
                default_scheme: args.default_load_balancer_scheme,
            },
            class: lb_model::ingress::class::ClassSettings {
                ingress_class: args.ingress_class.clone(),
            },
        }),
        _ => None,
    };
    let webhook = (!args.disable_webhook).then(|| lb_controller_core::WebhookOptions {
        listen: args.webhook_listen,
        cert: args.webhook_cert_dir.join("tls.crt"),
        key: args.webhook_cert_dir.join("tls.key"),
        termination_hold: args.pod_termination_hold,
    });
    let metrics = lb_controller_core::MetricsOptions {
        listen: args.metrics_listen,
        calls,
    };
    lb_controller_core::run(
        client,
        aws,
        lb_controller_core::LoadBalancerOptions {
            services,
            ingresses,
        },
        webhook,
        Some(metrics),
        stop.wait(),
        None,
    )
    .await?;
    Ok(())
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
        Command::Run(args) => run_controller(*args).await,
        Command::Crd => lb_api::crds_yaml()
            .map(|yaml| print!("{yaml}"))
            .map_err(|err| CliError::Crd(err.to_string())),
        #[cfg(feature = "lab")]
        Command::Demo(options) => lb_lab::demo::run(options)
            .await
            .map_err(|e| CliError::Lab(e.to_string())),
        #[cfg(feature = "lab")]
        Command::BenchGates(options) => lb_lab::bench::run(options)
            .await
            .map(|table| println!("{table}"))
            .map_err(|e| CliError::Lab(e.to_string())),
        #[cfg(feature = "lab")]
        Command::BenchRollout(options) => lb_lab::bench_rollout::run(options)
            .await
            .map(|table| println!("{table}"))
            .map_err(|e| CliError::Lab(e.to_string())),
        #[cfg(feature = "lab")]
        Command::BenchFootprint(options) => lb_lab::bench_footprint::run(options)
            .await
            .map(|table| println!("{table}"))
            .map_err(|e| CliError::Lab(e.to_string())),
        #[cfg(feature = "lab")]
        Command::BenchServices(options) => lb_lab::bench_services::run(options)
            .await
            .map(|table| println!("{table}"))
            .map_err(|e| CliError::Lab(e.to_string())),
        #[cfg(feature = "lab")]
        Command::BenchIngress(options) => lb_lab::bench_ingress::run(options)
            .await
            .map(|table| println!("{table}"))
            .map_err(|e| CliError::Lab(e.to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lb-controller: {err}");
            ExitCode::FAILURE
        }
    }
}
