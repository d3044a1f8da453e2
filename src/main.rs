//! `lb-controller`: binds Kubernetes workloads to AWS Elastic Load Balancers.
//!
//! The product: `lb-controller run` (the controller in a cluster) and `lb-controller crd`. With
//! the default `lab` feature, also the local sandbox's commands: `demo`, `bench-gates`,
//! `bench-rollout` (see `crates/lab`); `cargo build --no-default-features` leaves them out.

mod feature_gates;
mod flags;
mod signals;
mod upstream_flags;

use flags::RunArgs;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("rendering the CRDs: {0}")]
    Crd(String),
    #[error("installing the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("connecting to Kubernetes: {0}")]
    Kubernetes(kube::Error),
    #[error("reading --kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error(transparent)]
    Flags(#[from] flags::FlagError),
    #[error(transparent)]
    Controller(#[from] lb_controller_core::RunError),
    #[cfg(feature = "lab")]
    #[error("{0}")]
    Lab(String),
}

#[derive(Parser)]
#[command(name = "lb-controller", version, about, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller: in-cluster (or the kubeconfig's cluster) and AWS from the environment.
    Run(Box<RunArgs>),
    /// Print the CRDs (YAML) of one API group, as committed in config/crd/<group>.yaml:
    /// elbv2.k8s.aws (default) or gateway.k8s.aws.
    Crd {
        #[arg(default_value = "elbv2.k8s.aws")]
        group: String,
    },
    /// Print the IAM policy of the AWS actions the controller calls, as committed in
    /// config/iam/iam-policy.json.
    IamPolicy,
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
    /// Run the reliability matrix on the sandbox: the fixed workload once per fault (AWS
    /// throttling, 5xx, latency, lost answers, outage; apiserver restart, etcd pause; the
    /// controller killed mid-pass, its Lease lost; the pod webhook down) and the invariants after
    /// each (see crates/lab/src/bench_faults/mod.rs).
    #[cfg(feature = "lab")]
    BenchFaults(lb_lab::bench_faults::FaultOptions),
    /// Take over the upstream controller's state on the sandbox: its measured footprint replayed
    /// into the emulator with its Kubernetes objects, then ours started over it; prints the AWS
    /// calls ours made, what it replaced, created and kept, and what a teardown left (see
    /// crates/lab/src/footprint/takeover.rs).
    #[cfg(feature = "lab")]
    Takeover(lb_lab::footprint::takeover::TakeoverOptions),
    /// Run the Gateway API conformance suite (GATEWAY-HTTP, unmodified) against the controller on
    /// the sandbox; writes the report YAML with --report (see crates/lab/src/conformance.rs).
    #[cfg(feature = "lab")]
    Conformance(lb_lab::conformance::ConformanceOptions),
}

/// The Kubernetes client: `--kubeconfig`'s cluster, else in-cluster or the usual kubeconfig.
async fn kubernetes(args: &RunArgs) -> Result<kube::Client, CliError> {
    let Some(path) = &args.kubeconfig else {
        return kube::Client::try_default()
            .await
            .map_err(CliError::Kubernetes);
    };
    let kubeconfig_error = |source| CliError::Kubeconfig {
        path: path.display().to_string(),
        source,
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(kubeconfig_error)?;
    kube::Client::try_from(config).map_err(CliError::Kubernetes)
}

/// The controller as it runs in a cluster, until SIGTERM or SIGINT.
async fn run_controller(args: RunArgs) -> Result<(), CliError> {
    args.validate()?;
    let ignored = args.not_implemented();
    if !ignored.is_empty() {
        tracing::warn!(
            flags = %ignored.join(" "),
            "accepted upstream flags this controller does not implement; they have no effect"
        );
    }
    let stop = signals::Stop::install().map_err(CliError::Signals)?;
    let client = kubernetes(&args).await?;
    let calls = std::sync::Arc::new(lb_aws::AwsCalls::default());
    let config = lb_aws::load_sdk_config(&lb_aws::AwsSettings {
        region: args.aws_region.clone(),
        endpoints: args.aws_api_endpoints.clone(),
    })
    .await;
    let aws = lb_aws::SdkElbv2::new(&config, calls.clone());
    let balancers = load_balancers(&args, &config, &calls).await;
    let webhook = (!args.disable_webhook).then(|| lb_controller_core::WebhookOptions {
        listen: (std::net::Ipv6Addr::UNSPECIFIED, args.webhook_bind_port).into(),
        cert: args
            .webhook_cert_file
            .clone()
            .unwrap_or_else(|| args.webhook_cert_dir.join("tls.crt")),
        key: args
            .webhook_key_file
            .clone()
            .unwrap_or_else(|| args.webhook_cert_dir.join("tls.key")),
        termination_hold: args.pod_termination_hold,
        load_balancer_class: balancers
            .services
            .as_ref()
            .map(|_| args.load_balancer_class.clone()),
    });
    let target_rules = target_rules(&args, &config, &calls);
    let write_fence = calls.fence().clone();
    let options = lb_controller_core::RuntimeOptions {
        webhook,
        metrics: Some(lb_controller_core::MetricsOptions {
            listen: args.metrics_bind_addr,
            calls,
        }),
        health: Some(args.health_probe_bind_addr),
        leader: args.leader(),
        scope: lb_controller_core::WatchScope {
            namespace: args.watch_namespace.clone(),
        },
        target_rules: Some(target_rules),
        write_fence: Some(write_fence),
    };
    lb_controller_core::run(client, aws, balancers, options, stop.wait(), None).await?;
    Ok(())
}

type SdkBalancers = lb_controller_core::LoadBalancerOptions<
    lb_aws::SdkLoadBalancers,
    lb_aws::SdkEc2,
    lb_aws::SdkAcm,
>;

/// The bindings' `spec.networking`, written on their targets' security groups (EC2 calls that
/// need no VPC).
fn target_rules(
    args: &RunArgs,
    config: &lb_aws::SdkConfig,
    calls: &std::sync::Arc<lb_aws::AwsCalls>,
) -> lb_controller_core::tgb::TargetRules {
    let ec2 = lb_aws::SdkEc2::new(config, calls.clone(), "", args.backend_security_group())
        .for_cluster(&args.cluster_name);
    lb_controller_core::tgb::TargetRules::new(
        std::sync::Arc::new(ec2),
        lb_controller_core::tgb::TargetRulesSettings {
            cluster: args.cluster_name.clone(),
            extra_tags: args.service_target_eni_security_group_tags.clone(),
            restricted: !args.disable_restricted_sg_rules,
        },
    )
}

/// The cluster's VPC: `--aws-vpc-id`, else found by `--aws-vpc-tags` or instance metadata.
async fn vpc(
    args: &RunArgs,
    config: &lb_aws::SdkConfig,
    calls: &std::sync::Arc<lb_aws::AwsCalls>,
) -> Option<String> {
    if let Some(vpc) = &args.aws_vpc_id {
        return Some(vpc.clone());
    }
    match lb_aws::vpc::discover_vpc(config, calls, &args.aws_vpc_tags).await {
        Ok(vpc) => {
            tracing::info!(vpc, "found the cluster's VPC");
            Some(vpc)
        }
        Err(err) => {
            tracing::warn!("{err}: Services and Ingresses are not reconciled");
            None
        }
    }
}

/// The Service and Ingress reconcilers the flags ask for (both need the VPC).
async fn load_balancers(
    args: &RunArgs,
    config: &lb_aws::SdkConfig,
    calls: &std::sync::Arc<lb_aws::AwsCalls>,
) -> SdkBalancers {
    let gates = args.feature_gates();
    let services_on = !args.disable_service_controller && gates.enabled("EnableServiceController");
    let ingresses_on = !args.disable_ingress_controller;
    // Upstream's gate (on by default); the reconcilers also need the Gateway API CRDs.
    let gateways_on = gates.enabled("ALBGatewayAPI");
    // Nothing to reconcile, nothing to look up.
    let vpc = if services_on || ingresses_on || gateways_on {
        vpc(args, config, calls).await
    } else {
        None
    };
    let Some(vpc) = &vpc else {
        return lb_controller_core::LoadBalancerOptions {
            services: None,
            ingresses: None,
            gateways: None,
        };
    };
    // One for both reconcilers: they share the backend group and its release.
    let shared_ec2 = lb_aws::SdkEc2::new(config, calls.clone(), vpc, args.backend_security_group());
    let ec2 = || shared_ec2.clone();
    let services = services_on.then(|| lb_controller_core::service::ServiceOptions {
        elb: lb_aws::SdkLoadBalancers::new(config, calls.clone(), vpc),
        ec2: ec2(),
        cluster: lb_model::service::build::ClusterSettings {
            cluster: args.cluster_name.clone(),
            default_tags: args.default_tags.clone(),
            default_ssl_policy: args.default_ssl_policy.clone(),
            security_groups: args.security_group_settings(),
            external_managed_tags: args.external_managed_tags.clone(),
            tcp_udp_listeners: gates.enabled("EnableTCPUDPListener"),
        },
        selection: lb_model::service::selection::SelectionSettings {
            load_balancer_class: args.load_balancer_class.clone(),
            default_target_type: args.default_target_type,
        },
    });
    // Ingresses and Gateways share upstream's flags.
    let alb_settings = lb_model::ingress::IngressSettings {
        cluster: args.cluster_name.clone(),
        default_tags: args.default_tags.clone(),
        default_ssl_policy: args.default_ssl_policy.clone(),
        default_target_type: args.default_target_type,
        default_scheme: args.default_load_balancer_scheme,
        security_groups: args.security_group_settings(),
        external_managed_tags: args.external_managed_tags.clone(),
    };
    let ingresses = ingresses_on.then(|| lb_controller_core::ingress::IngressOptions {
        elb: lb_aws::SdkLoadBalancers::new(config, calls.clone(), vpc),
        ec2: ec2(),
        acm: lb_aws::SdkAcm::new(config, calls.clone()),
        settings: alb_settings.clone(),
        class: lb_model::ingress::class::ClassSettings {
            ingress_class: args.ingress_class.clone(),
        },
    });
    let gateways = gateways_on.then(|| lb_controller_core::gateway::GatewayOptions {
        elb: lb_aws::SdkLoadBalancers::new(config, calls.clone(), vpc),
        ec2: ec2(),
        acm: lb_aws::SdkAcm::new(config, calls.clone()),
        settings: alb_settings,
        caches: lb_controller_core::gateway::GatewayCaches::default(),
    });
    lb_controller_core::LoadBalancerOptions {
        services,
        ingresses,
        gateways,
    }
}

/// Logs to stderr: text or JSON lines, `info` or `debug` unless RUST_LOG says otherwise.
fn init_logging(level: &str, json: bool) {
    // kube logs every non-2xx answer; the sandbox's /readyz answers 500 until it is up.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| format!("{level},kube_client::client::builder=off").into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The arguments, with `run` put first when they begin with a flag: upstream's image takes its
/// flags without a subcommand, so a Deployment written for it starts this one unchanged.
fn arguments() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let first_is_flag = args
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| a.starts_with("--") && !matches!(a, "--help" | "--version"));
    if first_is_flag {
        args.insert(1, "run".into());
    }
    args
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse_from(arguments());
    match &cli.command {
        Command::Run(args) => init_logging(&args.log_level, args.log_format == "json"),
        _ => init_logging("warn", false),
    }
    let result = match cli.command {
        Command::Run(args) => run_controller(*args).await,
        Command::IamPolicy => {
            print!("{}", lb_aws::iam::policy_json());
            Ok(())
        }
        Command::Crd { group } => match group.as_str() {
            "elbv2.k8s.aws" => lb_api::crds_yaml(),
            lb_api::gateway_config::GROUP => lb_api::gateway_crds_yaml(),
            other => Ok(format!("# no CRDs of the group {other}\n")),
        }
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
        #[cfg(feature = "lab")]
        Command::BenchFaults(options) => lb_lab::bench_faults::run(options)
            .await
            .map(|table| println!("{table}"))
            .map_err(|e| CliError::Lab(e.to_string())),
        #[cfg(feature = "lab")]
        Command::Takeover(options) => lb_lab::footprint::takeover::run(options)
            .await
            .map(|report| println!("{report}"))
            .map_err(|e| CliError::Lab(e.to_string())),
        #[cfg(feature = "lab")]
        Command::Conformance(options) => lb_lab::conformance::run(options)
            .await
            .map(|summary| println!("{summary}"))
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
