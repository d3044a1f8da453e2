//! `lb-sandbox`: build the control-plane binaries, run a sandbox, or measure it.

use std::io::Write;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ipnet::Ipv4Net;
use lb_sandbox::{Sandbox, SandboxConfig, binaries};

mod bench;
mod bench_aws;

#[derive(Parser)]
#[command(
    name = "lb-sandbox",
    about = "A real Kubernetes control plane on loopback with simulated nodes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build (once) and cache etcd, kube-apiserver and kube-controller-manager.
    Prepare,
    /// Start a sandbox and keep it running until Ctrl-C or `--for` elapses.
    Up {
        #[command(flatten)]
        sandbox: SandboxArgs,
        /// Stop after this long (e.g. 30s, 5m); default: until Ctrl-C.
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        run_for: Option<Duration>,
    },
    /// Measure sandbox start time and pod creation -> Ready latency.
    Bench(bench::BenchArgs),
    /// Measure the AWS emulator: data-plane throughput and health-state timing.
    BenchAws(bench_aws::BenchAwsArgs),
}

#[derive(clap::Args, Clone)]
pub struct SandboxArgs {
    /// Number of simulated nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Pod CIDR (default: the first free of 10.244.0.0/16 .. 10.254.0.0/16).
    #[arg(long)]
    pod_cidr: Option<Ipv4Net>,
    /// AWS region the nodes claim to be in.
    #[arg(long, default_value = "us-west-2")]
    region: String,
    /// Cluster name (subnet tags `kubernetes.io/cluster/<name>`).
    #[arg(long, default_value = "lb-sandbox")]
    cluster_name: String,
    /// Run without the AWS emulator.
    #[arg(long)]
    no_aws: bool,
    /// Let every packet through: the emulator enforces no security group.
    #[arg(long)]
    no_security_groups: bool,
}

impl SandboxArgs {
    pub fn config(&self) -> SandboxConfig {
        SandboxConfig {
            nodes: self.nodes,
            pod_cidr: self.pod_cidr,
            region: self.region.clone(),
            cluster_name: self.cluster_name.clone(),
            aws: !self.no_aws,
            enforce_security_groups: !self.no_security_groups,
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // kube logs every non-2xx answer; /readyz answers 500 until the apiserver is up.
                .unwrap_or_else(|_| "info,kube_client::client::builder=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Prepare => prepare().await,
        Command::Up { sandbox, run_for } => up(sandbox.config(), run_for).await,
        Command::Bench(args) => bench::run(args).await,
        Command::BenchAws(args) => bench_aws::run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lb-sandbox: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn prepare() -> lb_sandbox::Result<()> {
    let bins = tokio::task::spawn_blocking(binaries::ensure)
        .await
        .map_err(|e| lb_sandbox::SandboxError::Config(e.to_string()))??;
    println!("etcd                     {}", bins.etcd.display());
    println!("kube-apiserver           {}", bins.kube_apiserver.display());
    println!(
        "kube-controller-manager  {}",
        bins.kube_controller_manager.display()
    );
    let helm = tokio::task::spawn_blocking(lb_sandbox::helm::ensure)
        .await
        .map_err(|e| lb_sandbox::SandboxError::Config(e.to_string()))??;
    println!("helm                     {}", helm.display());
    Ok(())
}

async fn up(config: SandboxConfig, run_for: Option<Duration>) -> lb_sandbox::Result<()> {
    // Before anything is announced: a Ctrl-C right after READY must stop us gracefully.
    let mut stop = Box::pin(lb_sandbox::stop::StopSignals::install().wait(run_for));
    let sandbox = tokio::select! {
        sandbox = Sandbox::start(config) => sandbox?,
        () = &mut stop => return Ok(()),
    };
    println!("sandbox ready in {:.1?}", sandbox.startup_time());
    println!("  apiserver   {}", sandbox.api_url());
    println!("  kubeconfig  {}", sandbox.kubeconfig_path().display());
    println!(
        "  pod CIDR    {} (network namespace {}, veth {})",
        sandbox.pod_cidr(),
        sandbox.netns_name(),
        sandbox.host_interface()
    );
    for node in sandbox.nodes() {
        println!(
            "  node        {} {} {} {}",
            node.name,
            node.zone,
            node.address,
            node.provider_id()
        );
    }
    if let Some(aws) = sandbox.aws() {
        let seeded = aws.seeded();
        println!(
            "  AWS         {} (moto; region {}, VPC {}, cluster security group {})",
            aws.endpoint(),
            aws.region(),
            seeded.vpc_id,
            seeded.cluster_security_group_id
        );
        for (zone, subnet) in &seeded.subnets {
            println!("  subnet      {zone} {subnet}");
        }
        println!("  certificate {}", seeded.certificate_arn);
        let env: Vec<String> = aws.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  AWS env     {}", env.join(" "));
    }
    println!(
        "  try: kubectl --kubeconfig {} get nodes -o wide",
        sandbox.kubeconfig_path().display()
    );
    println!("READY");
    stop.await;
    // Whoever read our output may be gone by now: never fail (or panic) on a closed stdout.
    let _ = writeln!(std::io::stdout(), "stopping");
    sandbox.shutdown().await;
    let _ = writeln!(std::io::stdout(), "stopped");
    Ok(())
}
