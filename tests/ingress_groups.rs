//! Ingress groups on the sandbox: members come and go with the fewest rule calls upstream's layout
//! allows (priorities 1..n in order: a rule appended, rewritten in place, inserted in front with one
//! SetRulePriorities moving the rest, deleted with one SetRulePriorities closing the gap), a no-op
//! calls nothing, and the last member to leave takes the ALB and all it owned with it.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::Client as Elb;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use lb_aws::Operation;
use lb_lab::harness::{ControllerHandle, start_controller};
use lb_sandbox::aws::elb_setup;
use lb_sandbox::testing::*;
use serde_json::json;

use common::{ingress_hostname as hostname, load_balancer_count};

/// An Ingress of group `shop` with one host and path to Service `service`.
fn shop_member(name: &str, order: i32, host: &str, path: &str, service: &str) -> Ingress {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "shop", "annotations": {
            "alb.ingress.kubernetes.io/group.name": "shop",
            "alb.ingress.kubernetes.io/group.order": order.to_string(),
            "alb.ingress.kubernetes.io/target-type": "ip",
        }},
        "spec": {"ingressClassName": "alb", "rules": [{"host": host, "http": {"paths": [{
            "path": path, "pathType": "Prefix",
            "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]},
    }))
    .unwrap()
}

/// Rule operations made since `before` (a snapshot of every operation's count).
fn rule_calls(controller: &ControllerHandle, before: &[u64]) -> BTreeMap<&'static str, u64> {
    Operation::ALL
        .iter()
        .zip(before)
        .filter(|(op, _)| {
            matches!(
                op,
                Operation::CreateRule
                    | Operation::ModifyRule
                    | Operation::SetRulePriorities
                    | Operation::DeleteRule
                    | Operation::CreateLoadBalancer
                    | Operation::DeleteLoadBalancer
            )
        })
        .map(|(op, b)| (op.as_str(), controller.calls.count(*op) - b))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn counts(controller: &ControllerHandle) -> Vec<u64> {
    Operation::ALL
        .iter()
        .map(|op| controller.calls.count(*op))
        .collect()
}

/// Waits until the group's passes have settled (no AWS call for 2 s).
async fn settled(controller: &ControllerHandle) {
    let mut last = counts(controller);
    let mut quiet_since = std::time::Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = counts(controller);
        if now != last {
            last = now;
            quiet_since = std::time::Instant::now();
        }
    }
}

async fn rule_hosts(elb: &Elb) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for lb in elb
        .describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancers()
    {
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(lb.load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        for listener in listeners.listeners() {
            let rules = elb
                .describe_rules()
                .listener_arn(listener.listener_arn().unwrap())
                .send()
                .await
                .unwrap();
            for rule in rules
                .rules()
                .iter()
                .filter(|r| r.is_default() != Some(true))
            {
                let host = rule
                    .conditions()
                    .iter()
                    .find_map(|c| c.host_header_config()?.values().first().cloned())
                    .unwrap_or_default();
                out.push((rule.priority().unwrap_or_default().to_string(), host));
            }
        }
    }
    out.sort_by_key(|(p, _)| p.parse::<u32>().unwrap_or(0));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_come_and_go_with_the_fewest_calls_and_the_last_takes_the_alb() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    let elb = elb_setup::client(sandbox.aws().unwrap()).await;
    sandbox.create_namespace("shop", &[]).await.unwrap();
    for name in ["web", "api"] {
        let service: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
        }))
        .unwrap();
        Api::namespaced(client.clone(), "shop")
            .create(&Default::default(), &service)
            .await
            .unwrap();
    }
    let ingresses = Api::<Ingress>::namespaced(client.clone(), "shop");
    let create = |ingress: Ingress| {
        let ingresses = ingresses.clone();
        async move {
            ingresses
                .create(&Default::default(), &ingress)
                .await
                .unwrap()
        }
    };
    create(shop_member("a", 1, "a.example.com", "/a", "web")).await;
    eventually("member a's ALB", Duration::from_secs(60), || {
        hostname(&client, "shop", "a")
    })
    .await;
    settled(&controller).await;

    // A member added after the others: one rule created at the end, nothing moved.
    let before = counts(&controller);
    create(shop_member("b", 2, "b.example.com", "/b", "api")).await;
    eventually("member b's hostname", Duration::from_secs(30), || {
        hostname(&client, "shop", "b")
    })
    .await;
    settled(&controller).await;
    assert_eq!(rule_calls(&controller, &before), [("CreateRule", 1)].into());
    assert_eq!(
        rule_hosts(&elb).await,
        [
            ("1".into(), "a.example.com".into()),
            ("2".into(), "b.example.com".into())
        ]
    );

    // A path changed: the rule rewritten in place.
    let before = counts(&controller);
    ingresses
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"rules": [{"host": "b.example.com", "http": {"paths": [{
                "path": "/b2", "pathType": "Prefix",
                "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}}]}}),
            ),
        )
        .await
        .unwrap();
    eventually("the rule rewritten", Duration::from_secs(30), || async {
        (controller.calls.count(Operation::ModifyRule) > before[index(Operation::ModifyRule)])
            .then_some(())
    })
    .await;
    settled(&controller).await;
    assert_eq!(rule_calls(&controller, &before), [("ModifyRule", 1)].into());

    // A member ordered first: its rule goes in front; the others move in one call.
    let before = counts(&controller);
    create(shop_member("c", 0, "c.example.com", "/c", "web")).await;
    eventually("member c's hostname", Duration::from_secs(30), || {
        hostname(&client, "shop", "c")
    })
    .await;
    settled(&controller).await;
    assert_eq!(
        rule_calls(&controller, &before),
        [("CreateRule", 1), ("SetRulePriorities", 1)].into()
    );
    let hosts: Vec<String> = rule_hosts(&elb).await.into_iter().map(|(_, h)| h).collect();
    assert_eq!(hosts, ["c.example.com", "a.example.com", "b.example.com"]);

    // A no-op: nothing is called at all (the group's stack is the one last converged).
    let before = counts(&controller);
    ingresses
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"touch": "1"}}})),
        )
        .await
        .unwrap();
    settled(&controller).await;
    assert_eq!(counts(&controller), before, "a no-op calls nothing");

    // A member leaves: its rule goes, and the one after it moves up (upstream's layout: 1..n).
    let before = counts(&controller);
    ingresses
        .delete("a", &DeleteParams::default())
        .await
        .unwrap();
    eventually("member a gone", Duration::from_secs(30), || async {
        ingresses
            .get_opt("a")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    settled(&controller).await;
    assert_eq!(
        rule_calls(&controller, &before),
        [("DeleteRule", 1), ("SetRulePriorities", 1)].into()
    );
    assert_eq!(
        rule_hosts(&elb).await,
        [
            ("1".into(), "c.example.com".into()),
            ("2".into(), "b.example.com".into())
        ]
    );

    // The last members leave: the ALB and all it owned go.
    for name in ["b", "c"] {
        ingresses
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    eventually("the ALB gone", Duration::from_secs(60), || async {
        (load_balancer_count(&elb).await == 0).then_some(())
    })
    .await;
    eventually(
        "its target groups gone",
        Duration::from_secs(30),
        || async {
            let groups = elb.describe_target_groups().send().await.unwrap();
            groups.target_groups().is_empty().then_some(())
        },
    )
    .await;
    controller.stop().await;
    sandbox.shutdown().await;
}

fn index(op: Operation) -> usize {
    Operation::ALL.iter().position(|o| *o == op).unwrap()
}
