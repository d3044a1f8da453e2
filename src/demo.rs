//! `lb-controller demo`: the main job on the local sandbox. Starts a real control plane with
//! simulated nodes, applies the example workloads, and prints what happens to their pods as it
//! happens: bound to a node, given an address, probed, Ready, answering HTTP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use lb_sandbox::{DestinationGuard, Sandbox, SandboxConfig, SandboxError, http_client, manifests};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
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

pub struct DemoOptions {
    pub run_for: Option<Duration>,
    pub manifests: Vec<PathBuf>,
    pub namespace: String,
}

pub async fn run(options: DemoOptions) -> Result<(), CliError> {
    let clock = Instant::now();
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
        "starting the sandbox (the first run builds Kubernetes from its Go modules: minutes)",
    );
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
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
            "  kubectl --kubeconfig {} get pods -A -o wide",
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
        sandbox.create_namespace(&options.namespace, &[]).await?;
        for (path, text) in &manifests {
            for applied in
                manifests::apply_yaml(&sandbox.client(), text, &options.namespace).await?
            {
                say(clock, &format!("applied {applied} from {}", path.display()));
            }
        }
        tokio::select! {
            () = follow_pods(&sandbox, &options.namespace, clock) => {}
            () = lb_sandbox::stop::wait_for_stop(options.run_for) => {}
        }
        Ok::<(), CliError>(())
    }
    .await;
    say(clock, "stopping the sandbox");
    sandbox.shutdown().await;
    result
}

fn say(clock: Instant, line: &str) {
    println!("[{:>6.1}s] {line}", clock.elapsed().as_secs_f64());
}

/// What the demo shows of a pod; a line is printed whenever it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodView {
    node: String,
    ip: String,
    phase: String,
    ready: String,
    terminating: bool,
}

impl PodView {
    fn of(pod: &Pod) -> PodView {
        let status = pod.status.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .map(|c| match (&c.status[..], &c.reason) {
                ("True", _) => "Ready".to_string(),
                (_, Some(reason)) => format!("NotReady ({reason})"),
                _ => "NotReady".to_string(),
            })
            .unwrap_or_else(|| "-".to_string());
        PodView {
            node: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_else(|| "-".into()),
            ip: status
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_else(|| "-".into()),
            phase: status
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Pending".into()),
            ready,
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
    let guard = sandbox.guard();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                let name = pod.name_any();
                let view = PodView::of(&pod);
                if seen.get(&name) == Some(&view) {
                    continue;
                }
                let became_ready =
                    view.ready == "Ready" && seen.get(&name).is_none_or(|old| old.ready != "Ready");
                say(
                    clock,
                    &format!(
                        "pod {name:<24} node {:<15} ip {:<13} {:<8} {}{}",
                        view.node,
                        view.ip,
                        view.phase,
                        view.ready,
                        if view.terminating {
                            "  terminating"
                        } else {
                            ""
                        }
                    ),
                );
                if became_ready {
                    tokio::spawn(show_answer(guard, pod, clock));
                }
                seen.insert(name, view);
            }
            Ok(watcher::Event::Delete(pod)) => {
                let name = pod.name_any();
                seen.remove(&name);
                say(clock, &format!("pod {name:<24} deleted"));
            }
            Ok(_) => {}
            Err(err) => say(clock, &format!("pod watch: {err}")),
        }
    }
}

/// GET / from a pod that just became Ready, to show it really serves.
async fn show_answer(guard: DestinationGuard, pod: Pod, clock: Instant) {
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_ref())
        .and_then(|ip| ip.parse().ok());
    let port = pod
        .spec
        .as_ref()
        .and_then(|s| {
            s.containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .next()
        })
        .and_then(|p| u16::try_from(p.container_port).ok());
    let (Some(ip), Some(port)) = (ip, port) else {
        return;
    };
    let addr = SocketAddr::new(ip, port);
    let line = match http_client::get(&guard, addr, "/", Duration::from_secs(2)).await {
        Ok(response) => format!(
            "    GET http://{addr}/ -> {} {}",
            response.status,
            String::from_utf8_lossy(&response.body).trim()
        ),
        Err(err) => format!("    GET http://{addr}/ failed: {err}"),
    };
    say(clock, &line);
}
