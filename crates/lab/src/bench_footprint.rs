//! `lb-controller bench-footprint`: what the product costs to run. The product binary (built
//! without the lab: `cargo build --release --no-default-features --target-dir target/product`) is
//! started as a child process against a sandbox exactly as in a cluster (a kubeconfig, AWS from
//! the environment, its webhooks served with a certificate of the sandbox CA and registered), and
//! its memory is read from `/proc/<pid>/status` once it settled: idle (no binding), then with a
//! binding of `pods` gated pods, all Ready. Also: the binary's size, as built and stripped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::PostParams;
use lb_api::TargetGroupBinding;
use lb_sandbox::guard::DestinationGuard;
use lb_sandbox::testing::{ready_pods, service, web_deployment};
use lb_sandbox::{Sandbox, SandboxConfig, http_client};

use crate::harness::{HarnessError, gated_web_binding, prepare_cluster};
use crate::spread::Spread;

const NS: &str = "footprint";

#[derive(Debug, Clone, clap::Args)]
pub struct FootprintOptions {
    /// The product binary.
    #[arg(long, default_value = "target/product/release/lb-controller")]
    pub binary: PathBuf,
    /// How long the controller is left alone before its memory is read.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// Gated pods behind one binding for the second reading.
    #[arg(long, default_value_t = 20)]
    pub pods: usize,
    /// A third reading at scale, when not 0: this many pods in all, spread over
    /// `--scale-bindings` bindings (each its own namespace, Service, ALB target group).
    #[arg(long, default_value_t = 0)]
    pub scale_pods: usize,
    #[arg(long, default_value_t = 100)]
    pub scale_bindings: usize,
    /// Services in all at scale: one per binding, the rest without pods or binding.
    #[arg(long, default_value_t = 200)]
    pub scale_services: usize,
}

impl FootprintOptions {
    /// The pods and bindings at scale.
    fn at_scale(&self) -> Spread {
        Spread::new(self.scale_pods, self.scale_bindings)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FootprintError {
    #[error(
        "{0} is missing: build the product binary first with `cargo build --release --no-default-features --target-dir target/product`"
    )]
    NoBinary(PathBuf),
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error(transparent)]
    Sandbox(#[from] lb_sandbox::SandboxError),
    #[error("Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Process(String),
}

/// Resident memory of a process, from `/proc/<pid>/status`: now and at its peak, in KiB.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory {
    pub(crate) rss_kib: u64,
    pub(crate) peak_kib: u64,
}

pub(crate) fn memory_of(pid: u32) -> Result<Memory, FootprintError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| FootprintError::Process(format!("reading /proc/{pid}/status: {e}")))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Memory {
        rss_kib: field("VmRSS:"),
        peak_kib: field("VmHWM:"),
    })
}

/// The size of `binary` as built, and stripped (by `strip`, when the machine has it).
fn sizes(binary: &Path) -> (u64, Option<u64>) {
    let built = std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0);
    let stripped =
        std::env::temp_dir().join(format!("lb-controller-stripped-{}", std::process::id()));
    let ok = std::process::Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(binary)
        .status()
        .is_ok_and(|s| s.success());
    let size = ok
        .then(|| std::fs::metadata(&stripped).map(|m| m.len()).ok())
        .flatten();
    let _ = std::fs::remove_file(&stripped);
    (built, size)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

pub async fn run(options: FootprintOptions) -> Result<String, FootprintError> {
    if !options.binary.is_file() {
        return Err(FootprintError::NoBinary(options.binary));
    }
    let at_scale = options.at_scale().pods();
    let sandbox = Sandbox::start(SandboxConfig::for_pods(options.pods + at_scale)).await?;
    let result = measure(&sandbox, &options).await;
    sandbox.shutdown().await;
    result
}

async fn measure(sandbox: &Sandbox, options: &FootprintOptions) -> Result<String, FootprintError> {
    let aws = sandbox.aws().ok_or(HarnessError::NoAws)?;
    let webhook_port = lb_sandbox::ports::free_loopback_port()?;
    let metrics_port = lb_sandbox::ports::free_loopback_port()?;
    let cert_dir = prepare_cluster(sandbox, webhook_port, true).await?;
    let mut child = tokio::process::Command::new(&options.binary)
        .arg("run")
        .arg(format!("--cluster-name={}", aws.cluster_name()))
        .arg(format!("--webhook-bind-port={webhook_port}"))
        .arg(format!("--webhook-cert-dir={}", cert_dir.display()))
        .arg(format!("--metrics-bind-addr=127.0.0.1:{metrics_port}"))
        .arg("--health-probe-bind-addr=127.0.0.1:0")
        .arg("--enable-leader-election=false")
        .env("KUBECONFIG", sandbox.kubeconfig_path())
        .envs(aws.env())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            FootprintError::Process(format!("starting {}: {e}", options.binary.display()))
        })?;
    let pid = child
        .id()
        .ok_or_else(|| FootprintError::Process("the controller exited at once".into()))?;
    wait_for_metrics(metrics_port).await?;
    tokio::time::sleep(options.settle).await;
    let idle = memory_of(pid)?;

    serve_pods(sandbox, options.pods).await?;
    tokio::time::sleep(options.settle).await;
    let serving = memory_of(pid)?;
    let at_scale = if options.scale_pods > 0 {
        let took = serve_at_scale(sandbox, options).await?;
        tokio::time::sleep(options.settle).await;
        Some((memory_of(pid)?, took))
    } else {
        None
    };
    let _ = child.kill().await;

    let (built, stripped) = sizes(&options.binary);
    let rows = [
        (
            "product binary (release, no lab), as built / stripped".to_string(),
            format!(
                "{} / {}",
                mib(built),
                stripped.map_or("strip not found".to_string(), mib)
            ),
        ),
        (
            format!(
                "resident memory idle, {} after start (VmRSS; peak VmHWM)",
                humantime::format_duration(options.settle)
            ),
            format!(
                "{:.1} MiB (peak {:.1} MiB)",
                idle.rss_kib as f64 / 1024.0,
                idle.peak_kib as f64 / 1024.0
            ),
        ),
        (
            format!(
                "resident memory with 1 binding, {} gated pods Ready, settled",
                options.pods
            ),
            format!(
                "{:.1} MiB (peak {:.1} MiB)",
                serving.rss_kib as f64 / 1024.0,
                serving.peak_kib as f64 / 1024.0
            ),
        ),
    ];
    let mut rows = rows.to_vec();
    if let Some((memory, took)) = at_scale {
        rows.push((
            format!(
                "resident memory with {} pods, {} Services, {} bindings (all pods Ready after {:.0} s), settled",
                options.scale_pods + options.pods,
                options.scale_services + 1,
                options.scale_bindings + 1,
                took.as_secs_f64()
            ),
            format!(
                "{:.1} MiB (peak {:.1} MiB)",
                memory.rss_kib as f64 / 1024.0,
                memory.peak_kib as f64 / 1024.0
            ),
        ));
    }
    let mut table = String::from("| figure | value |\n|---|---|\n");
    for (figure, value) in rows {
        table.push_str(&format!("| {figure} | {value} |\n"));
    }
    Ok(table)
}

async fn wait_for_metrics(port: u16) -> Result<(), FootprintError> {
    let guard = DestinationGuard::loopback_only();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..300 {
        if http_client::get(&guard, addr, "/metrics", Duration::from_secs(1))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(FootprintError::Process(
        "the controller never served /metrics".into(),
    ))
}

/// A gated namespace, an ALB target group, a Service, a binding and `pods` pods, all Ready.
async fn serve_pods(sandbox: &Sandbox, pods: usize) -> Result<(), FootprintError> {
    let client = sandbox.client();
    gated_web_binding(sandbox, NS, "footprint", 2).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    Api::<Deployment>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &web_deployment("web", pods as i32, 5, 0),
        )
        .await?;
    for _ in 0..240 {
        if ready_pods(&client, NS, "web").await.len() == pods {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(FootprintError::Process(format!(
        "{pods} pods never all turned Ready"
    )))
}

/// `scale_pods` pods behind `scale_bindings` bindings (a namespace, Service, ALB target group and
/// binding each; namespaces not labelled for gates: what is measured is caches and targets), plus
/// Services without pods up to `scale_services`. Returns how long until every pod was Ready.
async fn serve_at_scale(
    sandbox: &Sandbox,
    options: &FootprintOptions,
) -> Result<Duration, FootprintError> {
    let started = std::time::Instant::now();
    let client = sandbox.client();
    let aws = sandbox.aws().ok_or(HarnessError::NoAws)?;
    let elb = lb_sandbox::aws::elb_setup::client(aws).await;
    let Spread {
        bindings,
        per_binding,
    } = options.at_scale();
    for index in 0..bindings {
        let namespace = format!("scale-{index}");
        sandbox.create_namespace(&namespace, &[]).await?;
        // Health checks every 30 s: the emulator checks every target of every group.
        let alb = lb_sandbox::aws::elb_setup::web_alb(
            &elb,
            aws,
            &format!("scale-{index}"),
            "/healthz",
            30,
            5,
        )
        .await?;
        Api::<Service>::namespaced(client.clone(), &namespace)
            .create(&PostParams::default(), &service("web", "ClusterIP"))
            .await?;
        let binding: TargetGroupBinding = serde_json::from_value(serde_json::json!({
            "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
            "metadata": {"name": "web"},
            "spec": {"targetGroupARN": alb.target_group_arn, "targetType": "ip",
                     "serviceRef": {"name": "web", "port": 80}},
        }))
        .map_err(|e| FootprintError::Process(e.to_string()))?;
        Api::<TargetGroupBinding>::namespaced(client.clone(), &namespace)
            .create(&PostParams::default(), &binding)
            .await?;
        Api::<Deployment>::namespaced(client.clone(), &namespace)
            .create(
                &PostParams::default(),
                &web_deployment("web", per_binding as i32, 25, 0),
            )
            .await?;
    }
    sandbox.create_namespace("scale-services", &[]).await?;
    let services: Api<Service> = Api::namespaced(client.clone(), "scale-services");
    for index in bindings..options.scale_services {
        services
            .create(
                &PostParams::default(),
                &service(&format!("idle-{index}"), "ClusterIP"),
            )
            .await?;
    }
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::all(client.clone());
    let wanted = per_binding * bindings;
    for _ in 0..1800 {
        let listed = pods
            .list(&kube::api::ListParams::default().labels("app=web"))
            .await?;
        let ready = listed
            .items
            .iter()
            .filter(|p| {
                p.metadata
                    .namespace
                    .as_deref()
                    .is_some_and(|n| n.starts_with("scale-"))
                    && lb_sandbox::testing::is_ready(p)
            })
            .count();
        if ready >= wanted {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(FootprintError::Process(format!(
        "{wanted} pods never all turned Ready at scale"
    )))
}
