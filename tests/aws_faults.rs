//! Faults of the AWS API on the sandbox (the emulator's fault layer; the whole matrix is
//! `bench-faults`, docs/reliability.md): the answer of the first call of each create lost (the
//! work done in AWS, the SDK times out and retries) while an Ingress and an NLB Service are
//! created. Both converge with nothing twice (before the emulator followed ELB's idempotent
//! creates, the retried CreateListener made a second listener on the port) and without a failed
//! pass for a group or rule already made (before, the retried CreateSecurityGroup,
//! AuthorizeSecurityGroupIngress and CreateRule failed their pass on their own first attempt's
//! work: `.Duplicate`, `PriorityInUse`), and deleting them leaves nothing of theirs.

mod common;

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::Client as Elb;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use lb_api::keys;
use lb_lab::bench_faults::{inventory, workload};
use lb_lab::harness::start_controller;
use lb_sandbox::aws::{FaultKind, FaultRule, elb_setup};
use lb_sandbox::testing::*;

const NS: &str = "faults";

async fn target_group_arns(elb: &Elb) -> Vec<String> {
    elb.describe_target_groups()
        .send()
        .await
        .unwrap()
        .target_groups()
        .iter()
        .filter_map(|g| g.target_group_arn().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_create_answers_converge_with_nothing_twice_and_nothing_left() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let controller = start_controller(&sandbox).await.unwrap();
    let client = sandbox.client();
    let aws = sandbox.aws().unwrap();
    let control = aws.control();
    let elb = elb_setup::client(aws).await;
    let cluster = aws.cluster_name().to_string();
    sandbox
        .create_namespace(
            NS,
            &[(
                keys::READINESS_GATE_INJECT_LABEL,
                keys::READINESS_GATE_INJECT_ENABLED,
            )],
        )
        .await
        .unwrap();
    create(&client, NS, &service("web", "ClusterIP")).await;
    Api::<Deployment>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &web_deployment("web", workload::REPLICAS, 1, 0),
        )
        .await
        .unwrap();

    let lost = [
        "elasticloadbalancing:CreateLoadBalancer",
        "elasticloadbalancing:CreateTargetGroup",
        "elasticloadbalancing:CreateListener",
        "elasticloadbalancing:CreateRule",
        "elasticloadbalancing:RegisterTargets",
        "ec2:CreateSecurityGroup",
        "ec2:AuthorizeSecurityGroupIngress",
    ];
    let rules: Vec<FaultRule> = lost
        .iter()
        .map(|operation| {
            FaultRule::new(operation, FaultKind::Lose)
                .times(1)
                .seconds(11.0)
        })
        .collect();
    control.set_faults(&rules, 7).await.unwrap();

    Api::<Ingress>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &workload::member("shop", NS, 1))
        .await
        .unwrap();
    Api::<Service>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &workload::nlb(workload::NLB_BEFORE))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let groups = target_group_arns(&elb).await;
        let mut missing = workload::not_converged(&sandbox, NS, 1, 1, &groups).await;
        if groups.len() != 2 {
            missing.push(format!("{} target groups, not 2", groups.len()));
        }
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not converged after 300 s: {missing:?}; faults met: {:?}",
            control.faults().await.map(|f| f.calls)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let met = control.set_faults(&[], 7).await.unwrap();
    for operation in lost {
        let count = &met.calls[operation];
        assert!(
            count.injected == 1 && count.calls >= 2,
            "{operation}: its first answer was lost and it was retried: {count:?}"
        );
    }

    for (name, kind) in [("shop", "Ingress"), (workload::NLB_BEFORE, "Service")] {
        let failed: Vec<_> = common::event_reasons(&client, NS, name)
            .await
            .into_iter()
            .filter(|(_, message)| {
                message.contains(".Duplicate") || message.contains("PriorityInUse")
            })
            .collect();
        assert!(failed.is_empty(), "{kind} {name}: {failed:?}");
    }

    let footprint = control.footprint().await.unwrap();
    assert_eq!(
        inventory::duplicates(&footprint, &cluster),
        Vec::<String>::new()
    );
    assert_eq!(common::load_balancer_count(&elb).await, 2);

    Api::<Ingress>::namespaced(client.clone(), NS)
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    Api::<Service>::namespaced(client.clone(), NS)
        .delete(workload::NLB_BEFORE, &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "nothing of the Ingress and the Service left",
        Duration::from_secs(120),
        || async {
            let footprint = control.footprint().await.ok()?;
            inventory::of_run(&footprint, &cluster, NS)
                .is_empty()
                .then_some(())
        },
    )
    .await;
    controller.stop().await;
    sandbox.shutdown().await;
}
