//! The simulated kubelet (and scheduler) of the sandbox's nodes.
//!
//! One watch on all pods drives it: a pending pod is bound to the next node round-robin; a pod bound
//! to one of our nodes gets a worker task (see `pod_worker`) that plays the kubelet for it. The
//! kubelet's central rule, Ready = ContainersReady AND every readiness gate True, is in
//! `conditions`. Each node writes its pods' statuses one at a time (`status_manager`).

pub mod app;
pub mod behaviour;
pub mod conditions;
pub mod echo;
pub mod lifecycle;
pub mod nodes;
mod pod_worker;
pub mod probe;
mod status_manager;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::addressing::PodAddressAllocator;
use crate::aws::ControlClient;
use crate::error::Result;
use crate::guard::DestinationGuard;
use crate::netns::PodNetwork;
use nodes::SandboxNode;
use pod_worker::PodKey;
use status_manager::StatusQueue;

/// What every pod worker shares.
pub(crate) struct KubeletContext {
    pub client: Client,
    pub network: Arc<PodNetwork>,
    pub guard: DestinationGuard,
    allocator: tokio::sync::Mutex<PodAddressAllocator>,
    /// The AWS emulator's control API, where nodes' interfaces get their pod addresses.
    aws: Option<ControlClient>,
    nodes: Vec<KubeletNode>,
}

/// A node the kubelet plays, and the queue of its status writer.
pub(crate) struct KubeletNode {
    pub node: SandboxNode,
    pub status: Arc<StatusQueue>,
}

impl KubeletContext {
    fn node(&self, name: &str) -> Option<&KubeletNode> {
        self.nodes.iter().find(|n| n.node.name == name)
    }

    /// A new pod address in the subnet of the node's zone. Addresses the node takes for it go on
    /// the node's interface in the emulated EC2 first, as the VPC CNI assigns them (the lock is
    /// held meanwhile, so no pod uses an address its interface does not hold yet).
    async fn allocate_address(&self, node: &SandboxNode) -> Result<Ipv4Addr> {
        let mut allocator = self.allocator.lock().await;
        let allocation = allocator.allocate(&node.name, node.zone_index)?;
        if let Some(aws) = &self.aws
            && !allocation.new_addresses.is_empty()
            && let Err(err) = aws
                .assign_addresses(&node.instance_id, &allocation.new_addresses)
                .await
        {
            allocator.not_assigned(&node.name, allocation.new_addresses);
            return Err(err);
        }
        Ok(allocation.address)
    }
}

pub struct NodeAgent {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl NodeAgent {
    /// Registers the nodes, gives each its address in the pod network, and starts the pod loop.
    pub async fn start(
        client: Client,
        network: Arc<PodNetwork>,
        nodes: Vec<SandboxNode>,
        region: &str,
        aws: Option<ControlClient>,
    ) -> Result<NodeAgent> {
        for node in &nodes {
            network.add_address(node.address).await?;
        }
        nodes::register(&client, &nodes, region).await?;
        let ctx = Arc::new(KubeletContext {
            client,
            guard: network.guard(),
            allocator: tokio::sync::Mutex::new(PodAddressAllocator::new(*network.plan())),
            aws,
            network,
            nodes: nodes
                .into_iter()
                .map(|node| KubeletNode {
                    node,
                    status: Arc::default(),
                })
                .collect(),
        });
        Ok(NodeAgent {
            task: Some(tokio::spawn(run(ctx))),
        })
    }

    /// Stops every pod worker (their apps stop serving) and the pod loop.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for NodeAgent {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn run(ctx: Arc<KubeletContext>) {
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let mut events = watcher(pods, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut agent = PodLoop {
        ctx,
        workers: HashMap::new(),
        tasks: JoinSet::new(),
        next_node: 0,
        relisting: None,
    };
    for node in &agent.ctx.nodes {
        agent.tasks.spawn(status_manager::run_writer(
            agent.ctx.client.clone(),
            node.status.clone(),
        ));
    }
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => agent.handle(event).await,
                Some(Err(err)) => tracing::warn!("pod watch: {err}"),
                None => break,
            },
            Some(joined) = agent.tasks.join_next(), if !agent.tasks.is_empty() => {
                // Nothing in a worker or a writer should panic; if one did, say so (a node's
                // writer gone means its pods' statuses stop).
                if let Err(err) = joined
                    && err.is_panic()
                {
                    tracing::error!("a kubelet task panicked: {err}");
                }
            }
        }
    }
}

struct PodLoop {
    ctx: Arc<KubeletContext>,
    /// Latest version of each pod with a worker, by uid; kept until the pod's Delete event, so a
    /// late update of a pod whose worker has finished never starts a second worker.
    workers: HashMap<String, watch::Sender<Pod>>,
    /// Owns the worker tasks and the nodes' status writers: dropping the loop aborts them all.
    tasks: JoinSet<()>,
    next_node: usize,
    /// uids seen since a re-list started; workers of pods not seen are dropped when it ends.
    relisting: Option<HashSet<String>>,
}

impl PodLoop {
    async fn handle(&mut self, event: watcher::Event<Pod>) {
        match event {
            watcher::Event::Init => self.relisting = Some(HashSet::new()),
            watcher::Event::InitApply(pod) => {
                if let (Some(seen), Some(uid)) = (&mut self.relisting, pod.metadata.uid.clone()) {
                    seen.insert(uid);
                }
                self.apply(pod).await;
            }
            watcher::Event::InitDone => {
                if let Some(seen) = self.relisting.take() {
                    self.workers.retain(|uid, _| seen.contains(uid));
                }
            }
            watcher::Event::Apply(pod) => self.apply(pod).await,
            watcher::Event::Delete(pod) => {
                if let Some(uid) = &pod.metadata.uid {
                    // Dropping the sender tells the worker its pod is gone.
                    self.workers.remove(uid);
                }
            }
        }
    }

    async fn apply(&mut self, pod: Pod) {
        let Some(key) = PodKey::of(&pod) else { return };
        if let Some(sender) = self.workers.get(&key.uid) {
            sender.send_replace(pod);
            return;
        }
        let spec = pod.spec.as_ref();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return;
        }
        match spec.and_then(|s| s.node_name.as_deref()) {
            None if pod.metadata.deletion_timestamp.is_none() => self.bind(&key).await,
            None => {}
            Some(node) if self.ctx.node(node).is_some() => {
                let (sender, receiver) = watch::channel(pod);
                self.workers.insert(key.uid.clone(), sender);
                self.tasks
                    .spawn(pod_worker::run(self.ctx.clone(), key, receiver));
            }
            Some(_) => {}
        }
    }

    /// Binds a pending pod to the next node, like a scheduler with a round-robin policy.
    async fn bind(&mut self, key: &PodKey) {
        let node = &self.ctx.nodes[self.next_node % self.ctx.nodes.len()].node;
        self.next_node += 1;
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": key.name, "uid": key.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node.name},
        });
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        match api
            .create_subresource::<_, serde_json::Value>(
                "binding",
                &key.name,
                &PostParams::default(),
                &binding,
            )
            .await
        {
            Ok(_) => tracing::debug!(pod = %key, node = %node.name, "bound"),
            // Already bound (a repeated event) or already gone: nothing to do.
            Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => {}
            Err(err) => tracing::warn!(pod = %key, "binding failed: {err}"),
        }
    }
}
