//! The sandbox's AWS, driven through the AWS SDK for Rust: real target health and a real data
//! plane in front of pods of the sandbox.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};
use lb_sandbox::aws::elb_setup::{self as elb, TargetGroupSpec, TargetState, target};
use lb_sandbox::http_client;
use serde_json::json;

const NS: &str = "shop";

fn state_of(states: &[TargetState], id: &str, port: i32) -> Option<(String, Option<String>)> {
    states
        .iter()
        .find(|t| t.id == id && t.port == port)
        .map(|t| (t.state.clone(), t.reason.clone()))
}

async fn health(elb: &aws_sdk_elasticloadbalancingv2::Client, tg: &str) -> Vec<TargetState> {
    elb::states(elb, tg).await.expect("target health described")
}

fn spec(
    name: &'static str,
    target_type: TargetTypeEnum,
    port: i32,
    path: &'static str,
) -> TargetGroupSpec<'static> {
    TargetGroupSpec {
        name,
        target_type,
        port,
        health_check_path: path,
        interval: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_health_goes_initial_healthy_unhealthy_then_drains_away() {
    let sandbox = start_sandbox().await;
    let client = sandbox.client();
    sandbox.create_namespace(NS, &[]).await.unwrap();
    let pod = serving_pod(&client, NS, "web", &[]).await;
    let ip = pod_ip(&pod).unwrap().to_string();
    let aws = sandbox.aws().unwrap();
    let elb = elb::client(aws).await;

    // Attached to an ALB: ELB checks only targets of target groups a load balancer uses.
    let tg = elb::web_alb(&elb, aws, "web", "/healthz", 2, 300)
        .await
        .unwrap()
        .target_group_arn;

    elb::register(&elb, &tg, vec![target(&ip, 8080)])
        .await
        .unwrap();
    let states = health(&elb, &tg).await;
    assert_eq!(
        state_of(&states, &ip, 8080),
        Some(("initial".into(), Some("Elb.RegistrationInProgress".into())))
    );

    eventually("the target healthy", Duration::from_secs(30), || async {
        let states = health(&elb, &tg).await;
        (state_of(&states, &ip, 8080)?.0 == "healthy").then_some(())
    })
    .await;
    // Two passing checks, one per 2 s interval, before healthy: never sooner than 4 s.
    let timeline = &aws.control().targets(&tg).await.unwrap()[0].timeline;
    let initial = timeline.iter().find(|e| e.state == "initial").unwrap().at;
    let healthy = timeline.iter().find(|e| e.state == "healthy").unwrap().at;
    assert!(
        healthy - initial >= 3.9,
        "healthy after {:.2} s, before two checks",
        healthy - initial
    );

    // The pod's health path starts failing: unhealthy after two failed checks, with ELB's reason.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    pods.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"sandbox.lb-controller.dev/fail-paths": "/healthz"}}})),
    )
    .await
    .unwrap();
    eventually("the target unhealthy", Duration::from_secs(30), || async {
        let states = health(&elb, &tg).await;
        let (state, reason) = state_of(&states, &ip, 8080)?;
        (state == "unhealthy").then_some(reason)
    })
    .await
    .filter(|r| r == "Target.ResponseCodeMismatch")
    .expect("unhealthy because of the response code");
    let description = health(&elb, &tg).await[0].description.clone().unwrap();
    assert!(description.contains("[500]"), "{description}");

    // Deregistered with a 3 s delay: draining, then gone.
    elb::set_deregistration_delay(&elb, &tg, 3).await.unwrap();
    let deregistered = Instant::now();
    elb::deregister(&elb, &tg, vec![target(&ip, 8080)])
        .await
        .unwrap();
    assert_eq!(
        state_of(&health(&elb, &tg).await, &ip, 8080),
        Some((
            "draining".into(),
            Some("Target.DeregistrationInProgress".into())
        ))
    );
    eventually(
        "the drained target gone",
        Duration::from_secs(20),
        || async { health(&elb, &tg).await.is_empty().then_some(()) },
    )
    .await;
    assert!(
        deregistered.elapsed() >= Duration::from_millis(2900),
        "gone before the 3 s delay"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_plane_routes_by_rule_and_answers_404_502_and_503_like_an_alb() {
    let sandbox = start_sandbox().await;
    let client = sandbox.client();
    sandbox.create_namespace(NS, &[]).await.unwrap();
    let good = pod_ip(&serving_pod(&client, NS, "good", &[]).await)
        .unwrap()
        .to_string();
    // Never listens: connections are refused.
    let refusing = pod_ip(
        &serving_pod(
            &client,
            NS,
            "refusing",
            &[("sandbox.lb-controller.dev/start-delay", "1h")],
        )
        .await,
    )
    .unwrap()
    .to_string();
    let aws = sandbox.aws().unwrap();
    let elb = elb::client(aws).await;

    let good_tg = elb::target_group(&elb, aws, spec("good", TargetTypeEnum::Ip, 8080, "/"))
        .await
        .unwrap();
    let bad_tg = elb::target_group(&elb, aws, spec("bad", TargetTypeEnum::Ip, 8080, "/"))
        .await
        .unwrap();
    let (lb, dns) = elb::application_load_balancer(&elb, aws, "shop")
        .await
        .unwrap();
    let listener = elb::http_listener(&elb, &lb, 80, elb::fixed_response("404", "no route"))
        .await
        .unwrap();
    elb::path_rule(&elb, &listener, 10, "/api/*", elb::forward(&good_tg))
        .await
        .unwrap();
    elb::path_rule(&elb, &listener, 20, "/broken/*", elb::forward(&bad_tg))
        .await
        .unwrap();
    elb::register(&elb, &good_tg, vec![target(&good, 8080)])
        .await
        .unwrap();
    elb::register(&elb, &bad_tg, vec![target(&refusing, 8080)])
        .await
        .unwrap();
    eventually(
        "good healthy and bad unhealthy",
        Duration::from_secs(30),
        || async {
            let good_state = state_of(&health(&elb, &good_tg).await, &good, 8080)?.0;
            let bad_state = state_of(&health(&elb, &bad_tg).await, &refusing, 8080)?.0;
            (good_state == "healthy" && bad_state == "unhealthy").then_some(())
        },
    )
    .await;

    let local = aws.listener_address(&dns, 80).await.unwrap();
    let guard = sandbox.guard();
    let get = |path: &'static str| async move {
        http_client::get(&guard, local, path, Duration::from_secs(5))
            .await
            .unwrap()
    };
    let ok = get("/api/orders").await;
    assert_eq!(ok.status, 200);
    assert!(String::from_utf8_lossy(&ok.body).contains("pod=shop/good"));
    let unrouted = get("/elsewhere").await;
    assert_eq!(
        (unrouted.status, &unrouted.body[..]),
        (404, &b"no route"[..])
    );
    // All targets unhealthy: the ALB fails open, and the refusing target gives 502.
    assert_eq!(get("/broken/x").await.status, 502);
    // A draining target takes no new request: no target left, 503.
    elb::deregister(&elb, &good_tg, vec![target(&good, 8080)])
        .await
        .unwrap();
    assert_eq!(get("/api/orders").await.status, 503);

    let listeners = aws.control().listeners().await.unwrap();
    let counts = &listeners
        .iter()
        .find(|l| l.listener_arn == listener)
        .unwrap()
        .requests;
    for status in ["200", "404", "502", "503"] {
        assert_eq!(counts.get(status), Some(&1), "{status} in {counts:?}");
    }
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_are_keyed_by_id_and_port_and_unused_until_a_load_balancer_uses_the_group() {
    let sandbox = start_sandbox().await;
    let client = sandbox.client();
    sandbox.create_namespace(NS, &[]).await.unwrap();
    let ip = pod_ip(&serving_pod(&client, NS, "web", &[]).await)
        .unwrap()
        .to_string();
    let aws = sandbox.aws().unwrap();
    let elb = elb::client(aws).await;

    let tg = elb::target_group(&elb, aws, spec("web", TargetTypeEnum::Ip, 8080, "/"))
        .await
        .unwrap();
    // Same address, two ports: two targets, as in ELB (moto alone would keep one).
    elb::register(&elb, &tg, vec![target(&ip, 8080), target(&ip, 9090)])
        .await
        .unwrap();
    assert_eq!(health(&elb, &tg).await.len(), 2);
    eventually(
        "both unused while no load balancer uses the group",
        Duration::from_secs(20),
        || async {
            let states = health(&elb, &tg).await;
            states
                .iter()
                .all(|t| t.state == "unused" && t.reason.as_deref() == Some("Target.NotInUse"))
                .then_some(())
        },
    )
    .await;

    let (lb, _) = elb::application_load_balancer(&elb, aws, "web")
        .await
        .unwrap();
    elb::http_listener(&elb, &lb, 80, elb::forward(&tg))
        .await
        .unwrap();
    eventually(
        "8080 healthy and 9090 unhealthy",
        Duration::from_secs(30),
        || async {
            let states = health(&elb, &tg).await;
            let serving = state_of(&states, &ip, 8080)?;
            let closed = state_of(&states, &ip, 9090)?;
            (serving.0 == "healthy"
                && closed == ("unhealthy".into(), Some("Target.FailedHealthChecks".into())))
                .then_some(())
        },
    )
    .await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_targets_are_the_nodes_and_are_checked_through_the_node_port() {
    let sandbox = start_sandbox().await;
    let client = sandbox.client();
    sandbox.create_namespace(NS, &[]).await.unwrap();
    let node_port = i32::from(web_behind_node_port(&client, NS, 2).await);

    let aws = sandbox.aws().unwrap();
    let elb = elb::client(aws).await;
    let tg = elb::target_group(
        &elb,
        aws,
        spec("web-nodes", TargetTypeEnum::Instance, node_port, "/healthz"),
    )
    .await
    .unwrap();
    let (lb, dns) = elb::application_load_balancer(&elb, aws, "web")
        .await
        .unwrap();
    elb::http_listener(&elb, &lb, 80, elb::forward(&tg))
        .await
        .unwrap();
    let instances: Vec<_> = sandbox
        .nodes()
        .iter()
        .map(|n| {
            assert_eq!(
                sandbox.aws().unwrap().seeded().instances[&n.name],
                n.instance_id
            );
            target(&n.instance_id, node_port)
        })
        .collect();
    elb::register(&elb, &tg, instances).await.unwrap();
    eventually("every node healthy", Duration::from_secs(30), || async {
        let states = health(&elb, &tg).await;
        (states.len() == 3 && states.iter().all(|t| t.state == "healthy")).then_some(())
    })
    .await;

    let local: SocketAddr = sandbox
        .aws()
        .unwrap()
        .listener_address(&dns, 80)
        .await
        .unwrap();
    let response = http_client::get(
        &sandbox.guard(),
        local,
        "/via-nodes",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(response.status, 200);
    assert!(String::from_utf8_lossy(&response.body).contains("pod=shop/web-"));
    sandbox.shutdown().await;
}
