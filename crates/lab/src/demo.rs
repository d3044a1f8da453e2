//! `lb-controller demo`: the main job on the local sandbox. Starts a real control plane with
//! simulated nodes and the AWS emulator, runs the controller with its webhook, creates an ALB with
//! a target group in the emulator, applies the example workloads and their TargetGroupBinding in a
//! namespace labelled for readiness gates, and prints, as it happens: pods bound and probed,
//! targets registered and turning healthy, gates flipping, pods Ready, and requests answered
//! through the ALB. Once the pods are Ready, it rolls the Deployment under a steady load through
//! the ALB and counts the failed requests (none, thanks to the gates and the termination hold).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::bench_rollout::load::Load;
use crate::harness::{HarnessError, start_controller};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use lb_api::keys;
use lb_sandbox::aws::ControlClient;
use lb_sandbox::aws::elb_setup;
use lb_sandbox::stop::StopSignals;
use lb_sandbox::{Sandbox, SandboxConfig, SandboxError, http_client, manifests};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error("rendering the CRDs: {0}")]
    Crd(String),
    #[error("controller: {0}")]
    Controller(String),
    #[error("reading manifest {path}: {source}")]
    ReadManifest {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Stop this long after the demo is up (e.g. 30s; one-time builds do not count); default:
    /// until Ctrl-C.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    pub run_for: Option<Duration>,
    /// Manifests to apply (YAML, several documents allowed).
    #[arg(long, default_values = ["examples/sandbox/echo-tgb.yaml", "examples/sandbox/echo.yaml"])]
    pub manifests: Vec<PathBuf>,
    /// Namespace for objects that name none.
    #[arg(long, default_value = "demo")]
    pub namespace: String,
}

/// Resolves on Ctrl-C, SIGTERM or when `--for` has passed.
type Stop = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Placeholder in example manifests for the ARN of the target group the demo creates.
const ARN_PLACEHOLDER: &str = "${TARGET_GROUP_ARN}";

pub async fn run(options: DemoOptions) -> Result<(), CliError> {
    let clock = Instant::now();
    // Before anything is printed: a Ctrl-C at any point must stop the demo gracefully.
    let mut stop: Stop = Box::pin(StopSignals::install().wait(options.run_for));
    let manifests = options
        .manifests
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .map(|text| (path.clone(), text))
                .map_err(|source| CliError::ReadManifest {
                    path: path.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;

    say(
        clock,
        "starting the sandbox (the first run builds Kubernetes and the moto venv: minutes)",
    );
    let sandbox = tokio::select! {
        sandbox = Sandbox::start(SandboxConfig::default()) => sandbox?,
        () = &mut stop => {
            say(clock, "stopped before the sandbox was ready");
            return Ok(());
        }
    };
    say(
        clock,
        &format!(
            "sandbox ready in {:.1?}: apiserver {}",
            sandbox.startup_time(),
            sandbox.api_url()
        ),
    );
    say(
        clock,
        &format!(
            "  kubectl --kubeconfig {} get pods,tgb -A -o wide",
            sandbox.kubeconfig_path().display()
        ),
    );
    for node in sandbox.nodes() {
        say(
            clock,
            &format!(
                "  node {} in {} at {} ({})",
                node.name,
                node.zone,
                node.address,
                node.provider_id()
            ),
        );
    }
    let result = async {
        let controller = start_controller(&sandbox).await?;
        say(clock, "controller running, pod webhook registered");
        let outcome = show(&sandbox, &options, &manifests, &mut stop, clock).await;
        controller.stop().await;
        outcome
    }
    .await;
    say(clock, "stopping the sandbox");
    sandbox.shutdown().await;
    result
}

async fn show(
    sandbox: &Sandbox,
    options: &DemoOptions,
    manifests: &[(PathBuf, String)],
    stop: &mut Stop,
    clock: Instant,
) -> Result<(), CliError> {
    let aws = sandbox
        .aws()
        .ok_or_else(|| SandboxError::Config("the demo needs the AWS emulator".into()))?;
    let elb = elb_setup::client(aws).await;
    let web = elb_setup::web_alb(&elb, aws, "echo", "/healthz", 2, 10).await?;
    let (tg, dns) = (web.target_group_arn, web.dns_name);
    let alb = aws.listener_address(&dns, 80).await?;
    // Like a real ALB's nodes, the emulated one follows target changes a moment late.
    aws.control()
        .set_routing_lag(Duration::from_secs(2))
        .await?;
    say(
        clock,
        &format!(
            "ALB {dns}:80 (served locally at {alb}) forwards to target group echo (ip, health check /healthz every 2 s, 2 to be healthy; routes 2 s behind target changes)"
        ),
    );

    sandbox
        .create_namespace(
            &options.namespace,
            &[(
                keys::READINESS_GATE_INJECT_LABEL,
                keys::READINESS_GATE_INJECT_ENABLED,
            )],
        )
        .await?;
    say(
        clock,
        &format!(
            "namespace {} labelled {}={}",
            options.namespace,
            keys::READINESS_GATE_INJECT_LABEL,
            keys::READINESS_GATE_INJECT_ENABLED
        ),
    );
    for (path, text) in manifests {
        let text = text.replace(ARN_PLACEHOLDER, &tg);
        for applied in manifests::apply_yaml(&sandbox.client(), &text, &options.namespace).await? {
            say(clock, &format!("applied {applied} from {}", path.display()));
        }
    }
    tokio::select! {
        () = follow_pods(sandbox, &options.namespace, clock) => {}
        () = follow_targets(aws.control(), tg.clone(), clock) => {}
        () = send_requests(sandbox, alb, clock) => {}
        () = roll_under_load(sandbox, &options.namespace, alb, clock) => {}
        () = stop => {}
    }
    Ok(())
}

/// Once Deployment `echo` is fully Ready: a rolling update under 50 requests per second through
/// the ALB, with a tally every 5 s and a verdict once the old pods are gone.
async fn roll_under_load(
    sandbox: &Sandbox,
    namespace: &str,
    alb: std::net::SocketAddr,
    clock: Instant,
) {
    let client = sandbox.client();
    while !lb_sandbox::testing::rollout_complete(&client, namespace, "echo", 3).await {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let load = Load::start(alb, "/", 50);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {"demo/rollout": "2"}}}}});
    if let Err(err) = deployments
        .patch("echo", &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        say(clock, &format!("rolling update not started: {err}"));
        return std::future::pending().await;
    }
    say(
        clock,
        "rolling update of deployment/echo started, under 50 requests/s through the ALB",
    );
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (ok, failed) = load.tally();
        say(clock, &format!("    load: {ok} answered, {failed} failed"));
        let done = lb_sandbox::testing::rollout_complete(&client, namespace, "echo", 3).await
            && lb_sandbox::testing::pods_of(&client, namespace, "echo")
                .await
                .len()
                == 3;
        if done {
            break;
        }
    }
    let samples = load.stop().await;
    let failed = samples.iter().filter(|s| s.outcome.is_failure()).count();
    say(
        clock,
        &format!(
            "rolling update done in {:.0} s, old pods gone: {} requests, {failed} failed",
            started.elapsed().as_secs_f64(),
            samples.len()
        ),
    );
    std::future::pending().await
}

fn say(clock: Instant, line: &str) {
    println!("[{:>6.1}s] {line}", clock.elapsed().as_secs_f64());
}

/// What the demo shows of a pod; a line is printed whenever it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodView {
    node: String,
    ip: String,
    ready: String,
    gate: String,
    terminating: bool,
}

fn condition_text(pod: &Pod, type_: &str, with_reason: bool) -> Option<String> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?;
    Some(match (&condition.status[..], &condition.reason) {
        ("True", _) => "True".to_string(),
        (status, Some(reason)) if with_reason => format!("{status} ({reason})"),
        (status, _) => status.to_string(),
    })
}

impl PodView {
    fn of(pod: &Pod) -> PodView {
        let gate_type = pod
            .spec
            .as_ref()
            .and_then(|s| s.readiness_gates.as_ref())
            .and_then(|g| g.first())
            .map(|g| g.condition_type.clone());
        let gate = match &gate_type {
            Some(t) => format!(
                "gate {}",
                condition_text(pod, t, true).unwrap_or_else(|| "-".into())
            ),
            None => "no gate".to_string(),
        };
        PodView {
            node: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_else(|| "-".into()),
            ip: pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_else(|| "-".into()),
            ready: condition_text(pod, "Ready", false).map_or("-".into(), |s| {
                if s == "True" {
                    "Ready".into()
                } else {
                    "NotReady".into()
                }
            }),
            gate,
            terminating: pod.metadata.deletion_timestamp.is_some(),
        }
    }
}

async fn follow_pods(sandbox: &Sandbox, namespace: &str, clock: Instant) {
    let pods: Api<Pod> = Api::namespaced(sandbox.client(), namespace);
    let mut events = watcher(pods, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut seen: HashMap<String, PodView> = HashMap::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                let name = pod.name_any();
                let view = PodView::of(&pod);
                if seen.get(&name) == Some(&view) {
                    continue;
                }
                say(
                    clock,
                    &format!(
                        "pod {name:<22} {:<15} ip {:<14} {:<9} {}{}",
                        view.node,
                        view.ip,
                        view.ready,
                        view.gate,
                        if view.terminating {
                            "  terminating"
                        } else {
                            ""
                        }
                    ),
                );
                seen.insert(name, view);
            }
            Ok(watcher::Event::Delete(pod)) => {
                seen.remove(&pod.name_any());
                say(clock, &format!("pod {:<22} deleted", pod.name_any()));
            }
            Ok(_) => {}
            Err(err) => say(clock, &format!("pod watch: {err}")),
        }
    }
}

/// Prints every health state change of the target group's targets, from the emulator.
async fn follow_targets(control: ControlClient, target_group: String, clock: Instant) {
    let mut printed: HashMap<(String, u16), usize> = HashMap::new();
    loop {
        if let Ok(targets) = control.targets(&target_group).await {
            for target in targets {
                let shown = printed.entry((target.id.clone(), target.port)).or_default();
                for event in target.timeline.iter().skip(*shown) {
                    let reason = event
                        .reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default();
                    say(
                        clock,
                        &format!(
                            "target {}:{} in ALB target group: {}{reason}",
                            target.id, target.port, event.state
                        ),
                    );
                }
                *shown = target.timeline.len();
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A request through the ALB every 2 s, to show who answers.
async fn send_requests(sandbox: &Sandbox, alb: std::net::SocketAddr, clock: Instant) {
    let guard = sandbox.guard();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let line = match http_client::get(&guard, alb, "/", Duration::from_secs(2)).await {
            Ok(response) => format!(
                "    GET http://echo-alb/ -> {} {}",
                response.status,
                String::from_utf8_lossy(&response.body).trim()
            ),
            Err(err) => format!("    GET http://echo-alb/ failed: {err}"),
        };
        say(clock, &line);
    }
}
