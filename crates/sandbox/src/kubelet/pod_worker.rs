//! One pod's life on a sandbox node, as one task: take an address, start the fake app, run the
//! readiness probes, hand each new status to the node's status writer (see `status_manager`), and
//! on deletion run the preStop sleep (still serving), stop serving, and delete the pod with
//! grace 0.
//!
//! The task receives every new version of its pod through a watch channel; the channel closing
//! means the pod is gone from the API.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::{DeleteParams, Preconditions};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use super::KubeletContext;
use super::app::PodApp;
use super::behaviour::Behaviour;
use super::conditions::{self, TransitionClock};
use super::echo::EchoBasic;
use super::lifecycle;
use super::probe::{self, ProbeSpec, ProbeState};
use super::status_manager::StatusQueue;

/// Which pod this is; the uid guards every write so a recreated pod of the same name is never
/// touched.
#[derive(Debug, Clone)]
pub(crate) struct PodKey {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl PodKey {
    pub fn of(pod: &Pod) -> Option<PodKey> {
        Some(PodKey {
            namespace: pod.metadata.namespace.clone()?,
            name: pod.metadata.name.clone()?,
            uid: pod.metadata.uid.clone()?,
        })
    }
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

struct ContainerRuntime {
    name: String,
    image: String,
    probe: Option<ProbeSpec>,
    state: ProbeState,
    next_probe: Option<Instant>,
}

impl ContainerRuntime {
    fn ready(&self) -> bool {
        self.probe.is_none() || self.state.ready
    }
}

pub(crate) async fn run(ctx: Arc<KubeletContext>, key: PodKey, mut updates: watch::Receiver<Pod>) {
    let pod = updates.borrow_and_update().clone();
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .and_then(|name| ctx.node(name));
    let Some(node) = node else {
        tracing::warn!(pod = %key, "pod is bound to a node the sandbox does not run");
        return;
    };
    let (node_ip, status) = (node.node.address, node.status.clone());
    let ip = match ctx.allocate_address(&node.node).await {
        Ok(ip) => ip,
        Err(err) => {
            tracing::error!(pod = %key, "no address for the pod: {err}");
            return;
        }
    };
    if let Err(err) = ctx.network.add_address(ip).await {
        tracing::error!(pod = %key, %ip, "cannot give the pod its address: {err}");
        return;
    }
    tracing::debug!(pod = %key, %ip, "pod started");

    let mut worker = Worker::new(ctx.clone(), key.clone(), node_ip, status, ip, &pod);
    // The container has started when its process is up; probes and status come after.
    worker.app.wait_up().await;
    if let Outcome::Terminating(pod) = worker.run(&mut updates, pod).await {
        worker.terminate(&mut updates, &pod).await;
    }
    worker.app.stop();
    if let Err(err) = ctx.network.remove_address(ip).await {
        tracing::debug!(pod = %key, %ip, "removing the pod address: {err}");
    }
}

enum Outcome {
    /// The pod has a deletionTimestamp: terminate it gracefully.
    Terminating(Box<Pod>),
    /// The pod is gone from the API.
    Gone,
}

struct Worker {
    ctx: Arc<KubeletContext>,
    key: PodKey,
    node_ip: Ipv4Addr,
    ip: Ipv4Addr,
    started: Time,
    containers: Vec<ContainerRuntime>,
    behaviour: watch::Sender<Behaviour>,
    app: PodApp,
    clock: TransitionClock,
    /// The node's status writer, and the status last handed to it.
    status: Arc<StatusQueue>,
    last_posted: Option<serde_json::Value>,
}

impl Worker {
    fn new(
        ctx: Arc<KubeletContext>,
        key: PodKey,
        node_ip: Ipv4Addr,
        status: Arc<StatusQueue>,
        ip: Ipv4Addr,
        pod: &Pod,
    ) -> Worker {
        let (behaviour, problems) = Behaviour::from_annotations(pod.metadata.annotations.as_ref());
        for problem in problems {
            tracing::warn!(pod = %key, "{problem}");
        }
        let (behaviour, behaviour_rx) = watch::channel(behaviour);
        // The conformance suite's backend listens on its own port, declared or not.
        let echo = EchoBasic::of(pod).map(Arc::new);
        let ports = match &echo {
            Some(echo) => vec![echo.http_port],
            None => lifecycle::serving_ports(pod),
        };
        let app = PodApp::start(
            ctx.network.clone(),
            ip,
            ports,
            key.to_string(),
            behaviour_rx,
            echo,
        );
        let now = Instant::now();
        let containers = lifecycle::containers(pod)
            .iter()
            .map(|c| {
                let probe = c.readiness_probe.as_ref().and_then(|p| {
                    ProbeSpec::from_probe(p, c)
                        .inspect_err(
                            |err| tracing::warn!(pod = %key, "readiness probe ignored: {err}"),
                        )
                        .ok()
                });
                ContainerRuntime {
                    name: c.name.clone(),
                    image: c.image.clone().unwrap_or_default(),
                    next_probe: probe.as_ref().map(|p| now + p.initial_delay),
                    probe,
                    state: ProbeState::default(),
                }
            })
            .collect();
        Worker {
            ctx,
            key,
            node_ip,
            ip,
            started: Time(k8s_openapi::jiff::Timestamp::now()),
            containers,
            behaviour,
            app,
            clock: TransitionClock::default(),
            status,
            last_posted: None,
        }
    }

    async fn run(&mut self, updates: &mut watch::Receiver<Pod>, mut pod: Pod) -> Outcome {
        loop {
            if pod.metadata.deletion_timestamp.is_some() {
                return Outcome::Terminating(Box::new(pod));
            }
            self.post_status(&pod);
            let wake = self.containers.iter().filter_map(|c| c.next_probe).min();
            tokio::select! {
                changed = updates.changed() => {
                    if changed.is_err() {
                        return Outcome::Gone;
                    }
                    pod = updates.borrow_and_update().clone();
                    let (behaviour, _) = Behaviour::from_annotations(pod.metadata.annotations.as_ref());
                    self.behaviour.send_if_modified(|current| {
                        let changed = *current != behaviour;
                        *current = behaviour;
                        changed
                    });
                }
                () = sleep_until(wake) => self.run_due_probes().await,
            }
        }
    }

    async fn run_due_probes(&mut self) {
        let now = Instant::now();
        let guard = self.ctx.guard;
        let ip = IpAddr::V4(self.ip);
        for container in &mut self.containers {
            let (Some(spec), Some(due)) = (&container.probe, container.next_probe) else {
                continue;
            };
            if due > now {
                continue;
            }
            let success = probe::run_once(&spec.action, ip, spec.timeout, &guard).await;
            if container.state.record(spec, success) {
                tracing::debug!(pod = %self.key, container = %container.name, ready = container.state.ready, "readiness changed");
            }
            container.next_probe = Some(Instant::now() + spec.period);
        }
    }

    /// Hands the pod's status to the node's writer if it differs from what was last handed over.
    fn post_status(&mut self, pod: &Pod) {
        let patch = self.status_patch(pod);
        if self.last_posted.as_ref() != Some(&patch) {
            self.status.submit(&self.key, patch.clone());
            self.last_posted = Some(patch);
        }
    }

    /// A strategic-merge patch of the kubelet's own status fields. Conditions merge by type, so
    /// readiness-gate conditions written by controllers are never touched.
    fn status_patch(&mut self, pod: &Pod) -> serde_json::Value {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let unready: Vec<String> = self
            .containers
            .iter()
            .filter(|c| !c.ready())
            .map(|c| c.name.clone())
            .collect();
        let scheduled = conditions::Verdict {
            status: true,
            reason: None,
            message: None,
        };
        let pod_conditions = vec![
            self.clock
                .condition(conditions::POD_SCHEDULED, &scheduled, &self.started),
            self.clock
                .condition(conditions::INITIALIZED, &scheduled, &self.started),
            self.clock.condition(
                conditions::CONTAINERS_READY,
                &conditions::containers_ready(&unready),
                &now,
            ),
            self.clock
                .condition(conditions::READY, &conditions::ready(&unready, pod), &now),
        ];
        let container_statuses: Vec<serde_json::Value> = self
            .containers
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "image": c.image,
                    "imageID": format!("sandbox://{}", c.image),
                    "containerID": format!("sandbox://{}/{}", self.key.uid, c.name),
                    "ready": c.ready(),
                    "started": true,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": self.started}},
                })
            })
            .collect();
        json!({
            // A different uid makes the apiserver refuse the patch: never write a recreated pod.
            "metadata": {"uid": self.key.uid},
            "status": {
                "phase": "Running",
                "hostIP": self.node_ip.to_string(),
                "hostIPs": [{"ip": self.node_ip.to_string()}],
                "podIP": self.ip.to_string(),
                "podIPs": [{"ip": self.ip.to_string()}],
                "startTime": self.started,
                "conditions": pod_conditions,
                "containerStatuses": container_statuses,
            }
        })
    }

    /// preStop sleep while still serving (bounded by the grace period), then stop and delete.
    async fn terminate(&mut self, updates: &mut watch::Receiver<Pod>, pod: &Pod) {
        let grace = lifecycle::grace_period(pod);
        let pre_stop = lifecycle::pre_stop_sleep(pod)
            .unwrap_or_default()
            .min(grace);
        if pre_stop > Duration::ZERO {
            // The app keeps serving while the hook sleeps, as a real container does.
            let deadline = Instant::now() + pre_stop;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => break,
                    changed = updates.changed() => if changed.is_err() { break },
                }
            }
        }
        // SIGTERM: the fake app exits at once; connections are refused from now on.
        self.app.stop();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.key.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.key.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&self.key.name, &params).await {
            Ok(_) => tracing::debug!(pod = %self.key, "pod terminated"),
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
            Err(err) => {
                tracing::warn!(pod = %self.key, "deleting the terminated pod failed: {err}")
            }
        }
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
