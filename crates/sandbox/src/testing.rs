//! Helpers for tests and benchmarks on the sandbox. They panic with a message naming what they
//! waited for, as test assertions do: use them in tests, not in the controller.

use std::future::Future;
use std::time::Duration;

use crate::{Sandbox, SandboxConfig};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

pub async fn start_sandbox() -> Sandbox {
    match Sandbox::start(SandboxConfig::default()).await {
        Ok(sandbox) => sandbox,
        Err(err) => panic!("sandbox did not start: {err}"),
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics naming `what` after `timeout`.
/// A liveness bound, not a performance assertion: timeouts are generous.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn condition(pod: &Pod, type_: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

pub fn is_ready(pod: &Pod) -> bool {
    condition(pod, "Ready").as_deref() == Some("True")
}

pub fn pod_ip(pod: &Pod) -> Option<std::net::Ipv4Addr> {
    pod.status.as_ref()?.pod_ip.as_ref()?.parse().ok()
}

/// A Deployment of `replicas` fake web pods serving port 8080 with a readiness probe on /healthz.
pub fn web_deployment(
    name: &str,
    replicas: i32,
    max_surge: i32,
    max_unavailable: i32,
) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{
                        "name": "web", "image": "sandbox/web:1",
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
                    }],
                },
            },
        },
    }))
    .expect("valid deployment")
}

pub fn service(name: &str, type_: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "type": type_,
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }))
    .expect("valid service")
}

pub async fn create<K>(client: &Client, namespace: &str, object: &K)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.create(&PostParams::default(), object)
        .await
        .expect("object created");
}

pub async fn pods_of(client: &Client, namespace: &str, app: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    api.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|list| list.items)
        .unwrap_or_default()
}

/// The ready, not terminating pods of `app`.
pub async fn ready_pods(client: &Client, namespace: &str, app: &str) -> Vec<Pod> {
    pods_of(client, namespace, app)
        .await
        .into_iter()
        .filter(|p| is_ready(p) && p.metadata.deletion_timestamp.is_none())
        .collect()
}

/// A single pod serving HTTP on 8080, with sandbox behaviour annotations.
pub async fn serving_pod(
    client: &Client,
    namespace: &str,
    name: &str,
    annotations: &[(&str, &str)],
) -> Pod {
    let annotations: std::collections::BTreeMap<&str, &str> = annotations.iter().copied().collect();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}, "annotations": annotations},
        "spec": {"containers": [{"name": "web", "image": "sandbox/web:1", "ports": [{"containerPort": 8080}]}]},
    }))
    .expect("valid pod");
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    api.create(&PostParams::default(), &pod)
        .await
        .expect("pod created");
    eventually(
        &format!("pod {name} running"),
        Duration::from_secs(30),
        || async {
            api.get(name)
                .await
                .ok()
                .filter(|p| pod_ip(p).is_some() && is_ready(p))
        },
    )
    .await
}

/// The `p` quantile (0..=1) of `values` by nearest rank; NaN for no values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Creates a Deployment of `replicas` web pods and a NodePort Service in `namespace`, waits until
/// the pods are Ready, and returns the allocated NodePort.
pub async fn web_behind_node_port(client: &Client, namespace: &str, replicas: usize) -> u16 {
    create(
        client,
        namespace,
        &web_deployment("web", replicas as i32, 1, 0),
    )
    .await;
    create(client, namespace, &service("web", "NodePort")).await;
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let node_port = services
        .get("web")
        .await
        .ok()
        .and_then(|s| s.spec?.ports?.first()?.node_port)
        .expect("a NodePort was allocated");
    eventually(
        &format!("{replicas} ready pods"),
        Duration::from_secs(60),
        || async { (ready_pods(client, namespace, "web").await.len() == replicas).then_some(()) },
    )
    .await;
    u16::try_from(node_port).expect("a NodePort fits u16")
}

/// Changes the pod template of Deployment `name`, which starts a rolling update.
pub async fn start_rollout(client: &Client, namespace: &str, name: &str, revision: &str) {
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"spec": {"template": {"metadata": {"annotations": {"rollout": revision}}}}}),
            ),
        )
        .await
        .expect("rollout started");
}

/// Whether Deployment `name` has rolled out completely to `replicas` updated, available pods.
pub async fn rollout_complete(client: &Client, namespace: &str, name: &str, replicas: i32) -> bool {
    let Ok(deployment) = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(name)
        .await
    else {
        return false;
    };
    let generation = deployment.metadata.generation;
    deployment.status.is_some_and(|s| {
        s.observed_generation == generation
            && s.updated_replicas == Some(replicas)
            && s.available_replicas == Some(replicas)
            && s.replicas == Some(replicas)
    })
}
