//! Workloads on the sandbox: Deployments, Services, rollouts, readiness gates, termination,
//! NodePorts. Each test runs its own sandbox (real etcd, kube-apiserver, kube-controller-manager).

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use lb_sandbox::http_client;
use serde_json::json;

const NS: &str = "shop";
const GATE: &str = "target-health.alb.ingress.k8s.aws/web-tgb";
const UPSTREAM_GATE: &str = "target-health.elbv2.k8s.aws/web-tgb";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_pods_get_addresses_serve_http_and_fill_the_endpoint_slice() {
    let sandbox = start_sandbox().await;
    let client = sandbox.client();
    sandbox.create_namespace(NS, &[]).await.unwrap();
    create(&client, NS, &web_deployment("web", 3, 1, 0)).await;
    create(&client, NS, &service("web", "ClusterIP")).await;

    let pods = eventually("3 ready pods", Duration::from_secs(60), || async {
        let ready = ready_pods(&client, NS, "web").await;
        (ready.len() == 3).then_some(ready)
    })
    .await;

    let node_names: HashSet<String> = sandbox.nodes().iter().map(|n| n.name.clone()).collect();
    let mut addresses = HashSet::new();
    for pod in &pods {
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let node = pod.spec.as_ref().unwrap().node_name.clone().unwrap();
        assert!(
            node_names.contains(&node),
            "bound to an unknown node {node}"
        );
        let ip = pod_ip(pod).expect("pod has an address");
        assert!(
            sandbox.pod_cidr().contains(&ip),
            "{ip} outside {}",
            sandbox.pod_cidr()
        );
        assert!(addresses.insert(ip), "address {ip} given twice");
        let response = http_client::get(
            &sandbox.guard(),
            SocketAddr::from((ip, 8080)),
            "/",
            Duration::from_secs(2),
        )
        .await
        .expect("pod answers");
        assert_eq!(response.status, 200);
        let body = String::from_utf8_lossy(&response.body);
        assert!(body.contains(&pod.metadata.name.clone().unwrap()), "{body}");
    }
    // Round-robin binding spreads three pods over three nodes.
    let used_nodes: HashSet<String> = pods
        .iter()
        .map(|p| p.spec.as_ref().unwrap().node_name.clone().unwrap())
        .collect();
    assert_eq!(used_nodes.len(), 3);

    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    let ready_in_slice = eventually("3 ready endpoints", Duration::from_secs(30), || async {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?;
        let ready: HashSet<std::net::Ipv4Addr> = list
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .flat_map(|e| e.addresses.iter().filter_map(|a| a.parse().ok()))
            .collect();
        (ready.len() == 3).then_some(ready)
    })
    .await;
    assert_eq!(ready_in_slice, addresses);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_replaces_every_pod_without_dropping_below_three_ready() {
    let sandbox = start_sandbox().await;
    let client = sandbox.client();
    sandbox.create_namespace(NS, &[]).await.unwrap();
    create(&client, NS, &web_deployment("web", 3, 1, 0)).await;
    let before = eventually("3 ready pods", Duration::from_secs(60), || async {
        let ready = ready_pods(&client, NS, "web").await;
        (ready.len() == 3).then_some(ready)
    })
    .await;
    let old_uids: HashSet<String> = before
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();

    // Watch every pod change and keep the lowest count of ready, non-terminating pods seen.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let minimum = Arc::new(AtomicUsize::new(usize::MAX));
    let (reader, writer) = kube::runtime::reflector::store::<Pod>();
    let mut stream = watcher(pods.clone(), watcher::Config::default().labels("app=web"))
        .default_backoff()
        .reflect(writer)
        .boxed();
    let observer = {
        let minimum = minimum.clone();
        tokio::spawn(async move {
            // The store fills after the initial list; count only once it shows the 3 pods.
            let mut listed = false;
            while stream.next().await.is_some() {
                let ready = reader
                    .state()
                    .iter()
                    .filter(|p| is_ready(p) && p.metadata.deletion_timestamp.is_none())
                    .count();
                listed |= ready >= 3;
                if listed {
                    minimum.fetch_min(ready, Ordering::SeqCst);
                }
            }
        })
    };
    // Let the observer list the pods before the rollout starts.
    eventually(
        "the observer to list the pods",
        Duration::from_secs(10),
        || async { (minimum.load(Ordering::SeqCst) == 3).then_some(()) },
    )
    .await;

    start_rollout(&client, NS, "web", "2").await;

    let after = eventually(
        "the rollout to complete",
        Duration::from_secs(120),
        || async {
            let done = rollout_complete(&client, NS, "web", 3).await;
            let pods = pods_of(&client, NS, "web").await;
            let settled = pods.len() == 3
                && pods
                    .iter()
                    .all(|p| is_ready(p) && p.metadata.deletion_timestamp.is_none());
            (done && settled).then_some(pods)
        },
    )
    .await;
    observer.abort();

    let new_uids: HashSet<String> = after
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    assert!(old_uids.is_disjoint(&new_uids), "every pod was replaced");
    let lowest = minimum.load(Ordering::SeqCst);
    assert!(lowest != usize::MAX, "the observer saw the rollout");
    assert!(
        lowest >= 3,
        "ready pods dropped to {lowest} during the rollout"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_gates_hold_ready_false_until_their_conditions_are_true() {
    let sandbox = start_sandbox().await;
    let client = sandbox.client();
    sandbox.create_namespace(NS, &[]).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "gated"},
        "spec": {
            "readinessGates": [{"conditionType": GATE}, {"conditionType": UPSTREAM_GATE}],
            "containers": [{"name": "web", "image": "sandbox/web:1", "ports": [{"containerPort": 8080}]}],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();

    let pod = eventually("ContainersReady", Duration::from_secs(30), || async {
        let pod = pods.get("gated").await.ok()?;
        (condition(&pod, "ContainersReady").as_deref() == Some("True")).then_some(pod)
    })
    .await;
    assert_eq!(condition(&pod, "Ready").as_deref(), Some("False"));
    let ready = pod
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready.reason.as_deref(), Some("ReadinessGatesNotReady"));

    let set_gate = |gate: &'static str| {
        let pods = pods.clone();
        async move {
            let patch = json!({"status": {"conditions": [{"type": gate, "status": "True", "reason": "TargetHealthy"}]}});
            pods.patch_status("gated", &PatchParams::default(), &Patch::Strategic(patch))
                .await
                .unwrap();
        }
    };
    // One gate True is not enough.
    set_gate(GATE).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pod = pods.get("gated").await.unwrap();
    assert_eq!(
        condition(&pod, GATE).as_deref(),
        Some("True"),
        "the kubelet keeps our condition"
    );
    assert_eq!(condition(&pod, "Ready").as_deref(), Some("False"));

    set_gate(UPSTREAM_GATE).await;
    let pod = eventually(
        "Ready after both gates",
        Duration::from_secs(30),
        || async {
            let pod = pods.get("gated").await.ok()?;
            is_ready(&pod).then_some(pod)
        },
    )
    .await;
    assert_eq!(condition(&pod, GATE).as_deref(), Some("True"));
    assert_eq!(condition(&pod, UPSTREAM_GATE).as_deref(), Some("True"));
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_stop_sleep_keeps_a_terminating_pod_serving_then_it_is_gone() {
    let sandbox = start_sandbox().await;
    let client = sandbox.client();
    sandbox.create_namespace(NS, &[]).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "draining"},
        "spec": {
            "terminationGracePeriodSeconds": 30,
            "containers": [{
                "name": "web", "image": "sandbox/web:1", "ports": [{"containerPort": 8080}],
                "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 2"]}}},
            }],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let ip = eventually("Ready", Duration::from_secs(30), || async {
        let pod = pods.get("draining").await.ok()?;
        if is_ready(&pod) { pod_ip(&pod) } else { None }
    })
    .await;
    let addr = SocketAddr::from((ip, 8080));
    let guard = sandbox.guard();

    let deleted_at = Instant::now();
    pods.delete("draining", &DeleteParams::default())
        .await
        .unwrap();
    // During the hook: terminating, still in the API, still answering.
    let mut served_while_terminating = 0;
    while deleted_at.elapsed() < Duration::from_millis(1500) {
        let pod = pods
            .get("draining")
            .await
            .expect("still there during preStop");
        assert!(pod.metadata.deletion_timestamp.is_some());
        let response = http_client::get(&guard, addr, "/", Duration::from_secs(1)).await;
        assert_eq!(response.expect("serving during preStop").status, 200);
        served_while_terminating += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(served_while_terminating >= 3);

    eventually("the pod to be gone", Duration::from_secs(20), || async {
        matches!(pods.get_opt("draining").await, Ok(None)).then_some(())
    })
    .await;
    let gone_after = deleted_at.elapsed();
    assert!(
        gone_after >= Duration::from_secs(2),
        "gone after {gone_after:?}, before its 2 s preStop ended"
    );
    assert!(
        http_client::get(&guard, addr, "/", Duration::from_millis(500))
            .await
            .is_err(),
        "a deleted pod no longer answers"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_port_answers_on_every_node_address() {
    let sandbox = start_sandbox().await;
    let client = sandbox.client();
    sandbox.create_namespace(NS, &[]).await.unwrap();
    let node_port = web_behind_node_port(&client, NS, 2).await;

    let guard = sandbox.guard();
    for node in sandbox.nodes() {
        let addr = SocketAddr::from((node.address, node_port));
        let body = eventually(
            &format!("{addr} to answer"),
            Duration::from_secs(30),
            || async {
                match http_client::get(&guard, addr, "/via-node-port", Duration::from_secs(2)).await
                {
                    Ok(response) if response.status == 200 => {
                        Some(String::from_utf8_lossy(&response.body).into_owned())
                    }
                    _ => None,
                }
            },
        )
        .await;
        assert!(
            body.contains("pod=shop/web-") && body.contains("path=/via-node-port"),
            "{body}"
        );
    }
    sandbox.shutdown().await;
}
