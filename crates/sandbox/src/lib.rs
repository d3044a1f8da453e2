//! The local sandbox: a real Kubernetes control plane on loopback, a pod network in a network
//! namespace of its own, and simulated nodes whose kubelet binds pods, serves real HTTP for them,
//! runs their readiness probes and honours readiness gates.
//!
//! ```no_run
//! # async fn demo() -> lb_sandbox::Result<()> {
//! let sandbox = lb_sandbox::Sandbox::start(lb_sandbox::SandboxConfig::default()).await?;
//! let client = sandbox.client(); // a kube::Client with admin rights
//! // ... create Deployments, Services; pods get addresses in sandbox.pod_cidr() ...
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Requirements: root (network namespaces), iproute2, and Go for the one-time build of etcd,
//! kube-apiserver and kube-controller-manager (see `binaries`).

pub mod addressing;
pub mod aws;
pub mod binaries;
pub mod control_plane;
mod error;
pub mod guard;
pub mod helm;
pub mod http_client;
pub mod kubelet;
pub mod manifests;
pub mod netns;
pub mod node_ports;
pub mod one_time;
pub mod pki;
pub mod ports;
pub mod process;
pub mod stop;
pub mod testing;
pub mod tools;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

pub use error::{Result, SandboxError};
pub use guard::DestinationGuard;
pub use kubelet::nodes::{MAX_PODS_PER_NODE, SandboxNode};

use aws::AwsEmulator;
use control_plane::ControlPlane;
use kubelet::NodeAgent;
use netns::PodNetwork;
use node_ports::NodePortProxy;

/// Sandbox directories are named `lb-sandbox-<pid>-<random>` in the temp dir, so a later sandbox
/// can remove those of a process that died without cleaning up (a `kill -9`).
const DIR_PREFIX: &str = "lb-sandbox-";

/// Removes the directories (logs, etcd data) of sandboxes whose process is gone.
pub fn remove_stale_directories() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            tracing::info!(dir = %entry.path().display(), "removing the directory of a dead sandbox");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Number of simulated nodes, spread over three zones.
    pub nodes: usize,
    /// The pod CIDR; by default the first of 10.244.0.0/16 .. 10.254.0.0/16 no host route uses.
    pub pod_cidr: Option<Ipv4Net>,
    /// AWS region the nodes claim to run in (zones are `<region>a`, `b`, `c`).
    pub region: String,
    /// Cluster name, as in subnet tags `kubernetes.io/cluster/<name>`.
    pub cluster_name: String,
    /// Start the AWS emulator (moto with real health checks and a data plane).
    pub aws: bool,
    /// The emulator drops what security groups do not admit, as a VPC does (on by default).
    pub enforce_security_groups: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            nodes: 3,
            pod_cidr: None,
            region: "us-west-2".to_string(),
            cluster_name: "lb-sandbox".to_string(),
            aws: true,
            enforce_security_groups: true,
        }
    }
}

impl SandboxConfig {
    /// The default sandbox, with as many nodes as `pods` pods need at the kubelet's default of
    /// [`MAX_PODS_PER_NODE`] each: each node writes its pods' statuses one at a time, as a
    /// kubelet does, so a benchmark's thousand pods on three nodes would wait for their statuses
    /// as no real cluster's pods do. At most [`addressing::MAX_NODES`], all the address plan holds.
    pub fn for_pods(pods: usize) -> SandboxConfig {
        let default = SandboxConfig::default();
        SandboxConfig {
            nodes: default
                .nodes
                .max(pods.div_ceil(MAX_PODS_PER_NODE))
                .min(addressing::MAX_NODES),
            ..default
        }
    }
}

pub struct Sandbox {
    // Stopped in this order: traffic first, then nodes, then the control plane, then the network.
    node_ports: Option<NodePortProxy>,
    kubelet: Option<NodeAgent>,
    control_plane: ControlPlane,
    aws: Option<AwsEmulator>,
    network: Arc<PodNetwork>,
    nodes: Vec<SandboxNode>,
    client: Client,
    dir: tempfile::TempDir,
    startup: Duration,
}

impl Sandbox {
    pub async fn start(config: SandboxConfig) -> Result<Sandbox> {
        let started = Instant::now();
        tools::require_root()?;
        tools::require_iproute2()?;
        if config.nodes == 0 || config.nodes > addressing::MAX_NODES {
            return Err(SandboxError::Config(format!(
                "nodes must be 1..={}, not {}",
                addressing::MAX_NODES,
                config.nodes
            )));
        }
        let binaries = tokio::task::spawn_blocking(binaries::ensure)
            .await
            .map_err(|e| SandboxError::Config(format!("binary build task failed: {e}")))??;
        remove_stale_directories();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(|source| SandboxError::Io {
                context: "creating the sandbox directory".into(),
                source,
            })?;
        let network = Arc::new(PodNetwork::create(config.pod_cidr)?);
        let mut nodes = kubelet::nodes::plan_nodes(config.nodes, &config.region, network.plan())?;
        // The control plane and the AWS emulator start side by side.
        let start_aws = async {
            if config.aws {
                let emulator = AwsEmulator::start(
                    dir.path(),
                    network.plan(),
                    &nodes,
                    &config.region,
                    &config.cluster_name,
                    config.enforce_security_groups,
                )
                .await?;
                Ok::<_, SandboxError>(Some(emulator))
            } else {
                Ok(None)
            }
        };
        let (control_plane, aws) =
            tokio::join!(ControlPlane::start(&binaries, dir.path()), start_aws);
        let (control_plane, aws) = (control_plane?, aws?);
        if let Some(aws) = &aws {
            // Nodes are the emulator's EC2 instances: their providerIDs name those instances.
            for node in &mut nodes {
                if let Some(id) = aws.seeded().instances.get(&node.name) {
                    node.instance_id = id.clone();
                }
            }
        }
        let client =
            Client::try_from(control_plane.config()).map_err(|source| SandboxError::Kube {
                context: "building the sandbox client".into(),
                source,
            })?;
        let kubelet = NodeAgent::start(
            client.clone(),
            network.clone(),
            nodes.clone(),
            &config.region,
            aws.as_ref().map(AwsEmulator::control),
        )
        .await?;
        let node_ports = NodePortProxy::start(
            client.clone(),
            network.clone(),
            nodes.iter().map(|n| n.address).collect(),
        );
        let startup = started.elapsed();
        tracing::info!(
            api = %control_plane.api_url(),
            pod_cidr = %network.cidr(),
            netns = network.netns_name(),
            ?startup,
            "sandbox ready"
        );
        Ok(Sandbox {
            node_ports: Some(node_ports),
            kubelet: Some(kubelet),
            control_plane,
            aws,
            network,
            nodes,
            client,
            dir,
            startup,
        })
    }

    /// An admin client of the sandbox apiserver.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn kube_config(&self) -> kube::Config {
        self.control_plane.config()
    }

    pub fn kubeconfig_path(&self) -> &Path {
        self.control_plane.kubeconfig_path()
    }

    pub fn api_url(&self) -> String {
        self.control_plane.api_url()
    }

    pub fn pki(&self) -> &pki::Pki {
        self.control_plane.pki()
    }

    pub fn pod_cidr(&self) -> Ipv4Net {
        self.network.cidr()
    }

    /// The guard every client of the sandbox must use: loopback and the pod CIDR only.
    pub fn guard(&self) -> DestinationGuard {
        self.network.guard()
    }

    pub fn nodes(&self) -> &[SandboxNode] {
        &self.nodes
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The host end of the pod network's veth: an address Kubernetes accepts in EndpointSlices
    /// (pods reach it, the apiserver dials it) where a process of the host can listen.
    pub fn host_address(&self) -> std::net::Ipv4Addr {
        self.network.plan().host_address()
    }

    pub fn netns_name(&self) -> &str {
        self.network.netns_name()
    }

    pub fn host_interface(&self) -> &str {
        self.network.host_interface()
    }

    /// Time from `start` being called to the sandbox being ready.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// The AWS emulator, unless the sandbox was started without it.
    pub fn aws(&self) -> Option<&AwsEmulator> {
        self.aws.as_ref()
    }

    /// PIDs of the child processes: the control plane and the AWS emulator.
    pub fn process_ids(&self) -> Vec<u32> {
        let mut pids = self.control_plane.child_pids();
        pids.extend(self.aws.as_ref().map(AwsEmulator::pid));
        pids
    }

    /// Stops kube-apiserver, keeps it down for `down`, starts it again on the same port (a
    /// control-plane restart, for the fault matrix); returns when it is ready.
    pub async fn restart_apiserver(&mut self, down: Duration) -> Result<()> {
        self.control_plane.restart_apiserver(down).await
    }

    /// Pauses (SIGSTOP) or continues etcd.
    pub fn pause_etcd(&self, paused: bool) -> Result<()> {
        self.control_plane.pause_etcd(paused)
    }

    /// Fails with a log tail if a control-plane or emulator process died.
    pub fn check_alive(&mut self) -> Result<()> {
        self.control_plane.check_alive()?;
        match &mut self.aws {
            Some(aws) => aws.check_alive(),
            None => Ok(()),
        }
    }

    /// Creates a namespace with `labels` and waits until pods can be created in it (its default
    /// service account exists).
    pub async fn create_namespace(&self, name: &str, labels: &[(&str, &str)]) -> Result<()> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .map_err(|source| SandboxError::Kube {
                context: format!("creating namespace {name}"),
                source,
            })?;
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), name);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = accounts.get_opt("default").await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(SandboxError::Config(format!(
            "namespace {name} got no default service account within 30s"
        )))
    }

    /// Stops everything and removes the network namespace, the veth pair and the directory.
    /// Set `LB_SANDBOX_KEEP_DIR=1` to keep the directory (logs, kubeconfig) for a post-mortem.
    pub async fn shutdown(mut self) {
        if let Some(proxy) = self.node_ports.take() {
            proxy.stop().await;
        }
        if let Some(kubelet) = self.kubelet.take() {
            kubelet.stop().await;
        }
        self.control_plane.stop();
        if let Some(aws) = &mut self.aws {
            aws.stop();
        }
        self.network.teardown();
        if std::env::var_os("LB_SANDBOX_KEEP_DIR").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("[sandbox] kept {}", self.dir.path().display());
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Without an explicit shutdown (a panic in a test, say): the same, synchronously.
        self.node_ports.take();
        self.kubelet.take();
        self.control_plane.stop();
        if let Some(aws) = &mut self.aws {
            aws.stop();
        }
        self.network.teardown();
    }
}
