//! TargetGroupBinding on the sandbox: real kube-apiserver, the controller in-process with its
//! webhook registered, and the AWS emulator with real health checks.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{GATE, INJECT, World};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use lb_api::TargetGroupBinding;
use lb_sandbox::aws::elb_setup;
use lb_sandbox::http_client;
use lb_sandbox::testing::*;
use serde_json::json;

async fn scale(client: &kube::Client, ns: &str, replicas: i32) {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_follow_the_deployment_as_it_scales_and_deleted_pods_drain() {
    let ns = "shop";
    let world = World::start(ns, false).await;
    let client = world.client();
    create(&client, ns, &web_deployment("web", 3, 1, 0)).await;
    create(&client, ns, &service("web", "ClusterIP")).await;
    world.bind(ns, "web").await;

    for replicas in [3, 6, 1] {
        scale(&client, ns, replicas).await;
        eventually(
            &format!("{replicas} targets, one per pod"),
            Duration::from_secs(60),
            || async {
                let pods = world.pod_targets(ns).await;
                let targets = world.active_targets().await;
                (pods.len() == replicas as usize && targets == pods).then_some(())
            },
        )
        .await;
    }
    // The pods scaled away left draining targets behind.
    let draining = elb_setup::states(&world.elb, &world.tg).await.unwrap();
    assert!(
        draining.iter().any(|t| t.state == "draining"),
        "{draining:?}"
    );
    // Nothing in the API events but the controller's own successes.
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.kind.as_deref() == Some("TargetGroupBinding"))
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        reasons.iter().any(|r| r == "TargetsRegistered"),
        "{reasons:?}"
    );
    // Every AWS call shows in the metrics.
    let metrics = http_client::get(
        &world.sandbox.guard(),
        world.controller.as_ref().unwrap().metrics,
        "/metrics",
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    let registers = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "lb_controller_aws_calls_total{operation=\"RegisterTargets\",result=\"ok\"} ",
            )
        })
        .and_then(|v| v.parse::<u64>().ok());
    assert!(registers.is_some_and(|n| n >= 1), "{text}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gated_pods_turn_ready_only_once_their_target_is_healthy() {
    let ns = "gated";
    let world = World::start(ns, true).await;
    let client = world.client();
    create(&client, ns, &service("web", "ClusterIP")).await;
    world.bind(ns, "web").await;
    create(&client, ns, &web_deployment("web", 2, 1, 0)).await;
    // A pod of the Service whose health path fails: its gate must stay closed.
    let sick: Pod = serde_json::from_value(json!({
        "metadata": {"name": "sick", "labels": {"app": "web"}, "annotations": {"sandbox.lb-controller.dev/fail-paths": "/healthz"}},
        "spec": {"containers": [{"name": "web", "image": "sandbox/web:1", "ports": [{"name": "http", "containerPort": 8080}]}]},
    }))
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sick)
        .await
        .unwrap();

    let pods = eventually("the 2 web pods Ready", Duration::from_secs(60), || async {
        let ready: Vec<Pod> = ready_pods(&client, ns, "web")
            .await
            .into_iter()
            .filter(|p| p.metadata.name.as_deref() != Some("sick"))
            .collect();
        (ready.len() == 2).then_some(ready)
    })
    .await;
    let aws = world.sandbox.aws().unwrap();
    let timelines = aws.control().targets(&world.tg).await.unwrap();
    for pod in &pods {
        let gates: Vec<String> = pod
            .spec
            .as_ref()
            .unwrap()
            .readiness_gates
            .iter()
            .flatten()
            .map(|g| g.condition_type.clone())
            .collect();
        assert_eq!(gates, [GATE], "the webhook injected exactly our gate");
        // And the termination hold: a preStop sleep, the grace period longer by as much.
        let spec = pod.spec.as_ref().unwrap();
        let pre_stop = spec.containers[0]
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .and_then(|h| h.sleep.as_ref())
            .map(|s| s.seconds);
        assert_eq!(pre_stop, Some(15), "the default hold");
        assert_eq!(spec.termination_grace_period_seconds, Some(5 + 15));
        assert_eq!(condition(pod, GATE).as_deref(), Some("True"));
        // Ready came after the emulated ELB said healthy.
        let ip = pod_ip(pod).unwrap().to_string();
        let timeline = &timelines
            .iter()
            .find(|t| t.id == ip)
            .expect("target of the pod")
            .timeline;
        let healthy_at = timeline
            .iter()
            .find(|e| e.state == "healthy")
            .expect("healthy")
            .at;
        let initial_at = timeline.iter().find(|e| e.state == "initial").unwrap().at;
        let ready = pod
            .status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        let ready_at = ready.last_transition_time.as_ref().unwrap().0.as_second() as f64;
        // lastTransitionTime has whole seconds: Ready no earlier than the second ELB said healthy.
        assert!(
            ready_at >= healthy_at.floor(),
            "Ready at {ready_at}, healthy at {healthy_at}"
        );
        assert!(
            healthy_at - initial_at >= 3.9,
            "healthy needs two checks 2 s apart"
        );
    }
    let sick = eventually(
        "the sick pod's gate to carry ELB's reason",
        Duration::from_secs(30),
        || async {
            let pod = Api::<Pod>::namespaced(client.clone(), ns)
                .get("sick")
                .await
                .ok()?;
            let gate = pod
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == GATE)?
                .clone();
            (gate.reason.as_deref() == Some("Target.ResponseCodeMismatch")).then_some((pod, gate))
        },
    )
    .await;
    assert_eq!(sick.1.status, "False");
    assert!(sick.1.message.unwrap().contains("[500]"));
    assert_eq!(
        condition(&sick.0, "ContainersReady").as_deref(),
        Some("True")
    );
    assert_eq!(condition(&sick.0, "Ready").as_deref(), Some("False"));

    // Another namespace without the label (and its own target group: one binding per target
    // group): no gates.
    world.sandbox.create_namespace("plain", &[]).await.unwrap();
    create(&client, "plain", &service("web", "ClusterIP")).await;
    let aws = world.sandbox.aws().unwrap();
    let plain_tg = elb_setup::web_alb(&world.elb, aws, "plain", "/healthz", 2, 2)
        .await
        .unwrap()
        .target_group_arn;
    world.bind_to("plain", "web", &plain_tg).await;
    create(&client, "plain", &web_deployment("web", 1, 1, 0)).await;
    let plain = eventually("a plain pod", Duration::from_secs(30), || async {
        pods_of(&client, "plain", "web").await.into_iter().next()
    })
    .await;
    let plain = plain.spec.unwrap();
    assert!(
        plain.readiness_gates.is_none(),
        "no gate outside labelled namespaces"
    );
    assert!(plain.containers[0].lifecycle.is_none(), "and no hold");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_rolling_update_never_drops_below_the_healthy_minimum() {
    let ns = "rolling";
    let world = World::start(ns, true).await;
    let client = world.client();
    create(&client, ns, &service("web", "ClusterIP")).await;
    world.bind(ns, "web").await;
    create(&client, ns, &web_deployment("web", 3, 1, 0)).await;
    eventually("3 ready pods", Duration::from_secs(60), || async {
        (ready_pods(&client, ns, "web").await.len() == 3 && world.healthy_count().await == 3)
            .then_some(())
    })
    .await;

    let minimum = Arc::new(AtomicUsize::new(usize::MAX));
    let sampler = {
        let elb = world.elb.clone();
        let tg = world.tg.clone();
        let minimum = minimum.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(states) = elb_setup::states(&elb, &tg).await {
                    minimum.fetch_min(
                        states.iter().filter(|t| t.state == "healthy").count(),
                        Ordering::SeqCst,
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    start_rollout(&client, ns, "web", "2").await;
    eventually(
        "the rollout to complete",
        Duration::from_secs(180),
        || async {
            let done = rollout_complete(&client, ns, "web", 3).await;
            (done && world.active_targets().await == world.pod_targets(ns).await).then_some(())
        },
    )
    .await;
    sampler.abort();
    let lowest = minimum.load(Ordering::SeqCst);
    // replicas 3 - maxUnavailable 0.
    assert!(
        lowest >= 3 && lowest != usize::MAX,
        "healthy targets dropped to {lowest}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_binding_deregisters_everything_and_releases_every_gate() {
    let ns = "leaving";
    let world = World::start(ns, true).await;
    let client = world.client();
    create(&client, ns, &service("web", "ClusterIP")).await;
    world.bind(ns, "web").await;
    // The pods pass their readiness probe but fail the load balancer's health check: their gates
    // stay pending until the binding goes.
    let mut deployment = web_deployment("web", 2, 1, 0);
    let template = &mut deployment.spec.as_mut().unwrap().template;
    template.metadata.as_mut().unwrap().annotations = Some(
        [(
            "sandbox.lb-controller.dev/fail-paths".to_string(),
            "/healthz".to_string(),
        )]
        .into(),
    );
    let probe = template.spec.as_mut().unwrap().containers[0]
        .readiness_probe
        .as_mut()
        .unwrap();
    probe.http_get.as_mut().unwrap().path = Some("/".to_string());
    create(&client, ns, &deployment).await;
    eventually("2 targets registered", Duration::from_secs(60), || async {
        (world.active_targets().await.len() == 2).then_some(())
    })
    .await;
    assert!(
        ready_pods(&client, ns, "web").await.is_empty(),
        "failing pods are not Ready"
    );

    Api::<TargetGroupBinding>::namespaced(client.clone(), ns)
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the binding gone", Duration::from_secs(30), || async {
        Api::<TargetGroupBinding>::namespaced(client.clone(), ns)
            .get_opt("web")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        world.active_targets().await.is_empty(),
        "no target left registered"
    );
    eventually(
        "both pods Ready, their gates released",
        Duration::from_secs(30),
        || async { (ready_pods(&client, ns, "web").await.len() == 2).then_some(()) },
    )
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_to_a_missing_service_warns_then_heals() {
    let ns = "early";
    let world = World::start(ns, false).await;
    let client = world.client();
    create(&client, ns, &web_deployment("web", 2, 1, 0)).await;
    world.bind(ns, "web").await;
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let service_not_found = || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("ServiceNotFound")
        })
    };
    // A binding applied a moment before its Service is no fault yet: retried quietly at first.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        service_not_found().await.is_none(),
        "no Warning during the grace period"
    );
    let bindings: Api<TargetGroupBinding> = Api::namespaced(client.clone(), ns);
    let condition = eventually(
        "a ServiceNotFound condition",
        Duration::from_secs(60),
        || async {
            let b = bindings.get("web").await.ok()?;
            b.status?
                .conditions
                .into_iter()
                .find(|c| c.reason == "ServiceNotFound")
        },
    )
    .await;
    assert_eq!(condition.status, "False");
    assert!(
        condition
            .message
            .contains("Service early/web was not found"),
        "{}",
        condition.message
    );
    eventually(
        "a Warning event naming the problem",
        Duration::from_secs(30),
        service_not_found,
    )
    .await;
    assert!(
        world.active_targets().await.is_empty(),
        "no AWS change without the Service"
    );

    create(&client, ns, &service("web", "ClusterIP")).await;
    eventually(
        "the binding to heal and register both pods",
        Duration::from_secs(60),
        || async {
            let pods = world.pod_targets(ns).await;
            let ready = bindings
                .get("web")
                .await
                .ok()?
                .status?
                .conditions
                .into_iter()
                .any(|c| c.status == "True");
            (ready && pods.len() == 2 && world.active_targets().await == pods).then_some(())
        },
    )
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_converges_to_what_changed_while_it_was_down() {
    let ns = "restart";
    let mut world = World::start(ns, false).await;
    let client = world.client();
    create(&client, ns, &web_deployment("web", 2, 1, 0)).await;
    create(&client, ns, &service("web", "ClusterIP")).await;
    world.bind(ns, "web").await;
    eventually("2 targets", Duration::from_secs(60), || async {
        (world.active_targets().await.len() == 2).then_some(())
    })
    .await;

    // Down: the Deployment changes under it.
    world.stop_controller().await;
    scale(&client, ns, 4).await;
    eventually("4 pods running", Duration::from_secs(60), || async {
        (ready_pods(&client, ns, "web").await.len() == 4).then_some(())
    })
    .await;
    assert_eq!(
        world.active_targets().await.len(),
        2,
        "nothing registers targets while the controller is down"
    );

    // Up again: state lives in Kubernetes and AWS only, so it converges.
    world.start_controller().await;
    eventually(
        "4 targets, one per pod",
        Duration::from_secs(60),
        || async {
            let pods = world.pod_targets(ns).await;
            (pods.len() == 4 && world.active_targets().await == pods).then_some(())
        },
    )
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_restarted_on_its_port_serves_the_webhook_from_fresh_caches() {
    let mut world = World::start("before", true).await;
    let client = world.client();
    // A pod through the webhook: the apiserver now keeps a connection to it open.
    create(&client, "before", &service("web", "ClusterIP")).await;
    world.bind("before", "web").await;
    create(&client, "before", &web_deployment("web", 1, 1, 0)).await;
    eventually("a gated pod", Duration::from_secs(30), || async {
        pods_of(&client, "before", "web")
            .await
            .into_iter()
            .find(|p| p.spec.as_ref().is_some_and(|s| s.readiness_gates.is_some()))
    })
    .await;

    // Restarted behind the same address, as a pod behind its Service.
    let controller = world.controller.take().unwrap();
    world.controller = Some(
        controller
            .restart(&world.sandbox, Duration::ZERO)
            .await
            .expect("controller restarts"),
    );

    // A namespace, Service and binding the old controller never saw.
    world
        .sandbox
        .create_namespace("after", &[INJECT])
        .await
        .unwrap();
    let aws = world.sandbox.aws().unwrap();
    let other = elb_setup::web_alb(&world.elb, aws, "after", "/healthz", 2, 2)
        .await
        .unwrap()
        .target_group_arn;
    create(&client, "after", &service("web", "ClusterIP")).await;
    let binding: TargetGroupBinding = serde_json::from_value(json!({
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
        "metadata": {"name": "web"},
        "spec": {"targetGroupARN": other, "targetType": "ip", "serviceRef": {"name": "web", "port": 80}},
    }))
    .unwrap();
    Api::<TargetGroupBinding>::namespaced(client.clone(), "after")
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    // The new controller's caches know them once its webhook would inject; give them a moment.
    tokio::time::sleep(Duration::from_secs(1)).await;
    create(&client, "after", &web_deployment("web", 3, 1, 0)).await;
    let pods = eventually("3 pods", Duration::from_secs(30), || async {
        let pods = pods_of(&client, "after", "web").await;
        (pods.len() == 3).then_some(pods)
    })
    .await;
    for pod in pods {
        let gates: Vec<String> = pod
            .spec
            .unwrap()
            .readiness_gates
            .into_iter()
            .flatten()
            .map(|g| g.condition_type)
            .collect();
        assert_eq!(gates, [GATE], "every pod went through the new controller");
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_without_their_gate_in_a_labelled_namespace_are_reported_once() {
    let ns = "ungated";
    let world = World::start(ns, false).await;
    let client = world.client();
    // Created before the binding: the webhook had nothing to inject, and that is no fault.
    create(&client, ns, &service("web", "ClusterIP")).await;
    create(&client, ns, &web_deployment("web", 2, 1, 0)).await;
    eventually("2 ready pods", Duration::from_secs(30), || async {
        (ready_pods(&client, ns, "web").await.len() == 2).then_some(())
    })
    .await;
    let older: BTreeSet<String> = pods_of(&client, ns, "web")
        .await
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    world.bind(ns, "web").await;
    // Creation times are whole seconds: the new pods come a second later than the binding.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Created after the binding in a namespace not yet labelled: no gate, which matters once
    // the namespace asks for gates.
    scale(&client, ns, 4).await;
    eventually("4 ready pods", Duration::from_secs(30), || async {
        (ready_pods(&client, ns, "web").await.len() == 4).then_some(())
    })
    .await;
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {INJECT.0: INJECT.1}}})),
        )
        .await
        .unwrap();
    let newer: BTreeSet<String> = pods_of(&client, ns, "web")
        .await
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .filter(|name| !older.contains(name))
        .collect();
    assert_eq!(newer.len(), 2);
    // A pass after the label: scaling to 5 adds a pod (with its gate, the namespace labelled now).
    scale(&client, ns, 5).await;

    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let warned = eventually(
        "a ReadinessGateMissing warning on each pod made after the binding",
        Duration::from_secs(30),
        || async {
            let list = events.list(&ListParams::default()).await.ok()?;
            let pods: BTreeSet<String> = list
                .items
                .into_iter()
                .filter(|e| {
                    e.type_.as_deref() == Some("Warning")
                        && e.reason.as_deref() == Some("ReadinessGateMissing")
                        && e.involved_object.kind.as_deref() == Some("Pod")
                })
                .filter_map(|e| e.involved_object.name)
                .collect();
            (pods.len() >= 2).then_some(pods)
        },
    )
    .await;
    assert_eq!(
        warned, newer,
        "the pods older than the binding are not warned about"
    );

    // Their targets are registered all the same, and each pod is counted once however many passes.
    eventually("5 targets", Duration::from_secs(30), || async {
        (world.active_targets().await.len() == 5).then_some(())
    })
    .await;
    let metrics = world.controller.as_ref().unwrap().metrics;
    let text = http_client::get(
        &lb_sandbox::DestinationGuard::loopback_only(),
        metrics,
        "/metrics",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&text.body).to_string();
    assert!(
        text.contains("lb_controller_pods_without_readiness_gate_total 2\n"),
        "{text}"
    );
    world.stop().await;
}
