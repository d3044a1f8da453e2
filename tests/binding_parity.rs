//! TargetGroupBinding as upstream users write it, on the sandbox: the binding webhooks (defaults
//! from the target group, one binding per target group, immutable fields, missing target groups),
//! the health summary `kubectl get tgb` shows, instance targets on the eligible nodes only, and a
//! target group in another AWS account reached by assuming a role.

mod common;

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use lb_api::{TargetGroupBinding, TargetType};
use lb_aws::Operation;
use lb_sandbox::aws::elb_setup::{self, TargetGroupSpec};
use lb_sandbox::testing::*;
use serde_json::json;

use common::World;

fn binding(name: &str, spec: serde_json::Value) -> TargetGroupBinding {
    serde_json::from_value(json!({
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("binding")
}

/// The refusal message of a create or patch that must fail.
fn refusal<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn health_summary(api: &Api<TargetGroupBinding>, name: &str) -> Option<String> {
    api.get(name).await.ok()?.status?.target_health
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_default_a_binding_by_name_and_refuse_what_upstream_refuses() {
    let ns = "shop";
    let world = World::start(ns, true).await;
    let client = world.client();
    create(&client, ns, &service("web", "ClusterIP")).await;
    create(&client, ns, &web_deployment("web", 2, 1, 0)).await;
    let api: Api<TargetGroupBinding> = Api::namespaced(client.clone(), ns);

    // The guide's first sample: a target group by name, nothing else.
    let by_name = binding(
        "web",
        json!({"serviceRef": {"name": "web", "port": 80}, "targetGroupName": "web"}),
    );
    let created = api
        .create(&PostParams::default(), &by_name)
        .await
        .expect("created");
    let spec = &created.spec;
    assert_eq!(spec.target_group_arn.as_deref(), Some(world.tg.as_str()));
    assert_eq!(spec.target_type, Some(TargetType::Ip));
    assert_eq!(spec.ip_address_type.as_deref(), Some("ipv4"));
    let vpc = world.sandbox.aws().unwrap().seeded().vpc_id.clone();
    assert_eq!(spec.vpc_id.as_deref(), Some(vpc.as_str()));
    assert_eq!(spec.target_group_protocol.as_deref(), Some("HTTP"));

    // `kubectl get tgb` shows the health summary from status.
    let seen = std::sync::Mutex::new(None);
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let summary = health_summary(&api, "web").await;
            if summary.as_deref() == Some("2/2 healthy") {
                break;
            }
            *seen.lock().unwrap() = summary;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    let binding_now = api.get("web").await.ok().and_then(|b| b.status);
    assert!(
        waited.is_ok(),
        "HEALTH 2/2 healthy; last seen {:?}; status {binding_now:?}",
        seen.lock().unwrap()
    );

    // Applied again as written (server-side apply), it keeps what the webhook filled in.
    let reapplied = api
        .patch(
            "web",
            &PatchParams::apply("user").force(),
            &Patch::Apply(&by_name),
        )
        .await
        .expect("re-applied");
    assert_eq!(reapplied.spec.target_type, Some(TargetType::Ip));

    // One binding per target group, and the refusal names the other binding.
    let twin = binding(
        "twin",
        json!({"serviceRef": {"name": "web", "port": 80}, "targetGroupARN": world.tg}),
    );
    let message = refusal(api.create(&PostParams::default(), &twin).await);
    assert!(
        message.contains(&format!(
            "TargetGroup {} is already bound to TargetGroupBinding shop/web",
            world.tg
        )),
        "{message}"
    );
    // Immutable fields.
    let change = json!({"spec": {"targetType": "instance"}});
    let message = refusal(
        api.patch("web", &PatchParams::default(), &Patch::Merge(change))
            .await,
    );
    assert!(
        message.contains("may not change these fields: spec.targetType"),
        "{message}"
    );
    // A target group that does not exist, named by field and value.
    let nowhere = binding(
        "nowhere",
        json!({"serviceRef": {"name": "web", "port": 80}, "targetGroupName": "nope"}),
    );
    let message = refusal(api.create(&PostParams::default(), &nowhere).await);
    assert!(
        message.contains("spec.targetGroupName \"nope\": no such target group"),
        "{message}"
    );
    // A VPC the target group is not in.
    let other = elb_setup::web_alb(
        &world.elb,
        world.sandbox.aws().unwrap(),
        "other",
        "/healthz",
        2,
        2,
    )
    .await
    .expect("second target group")
    .target_group_arn;
    let elsewhere = binding(
        "elsewhere",
        json!({"serviceRef": {"name": "web", "port": 80},
                                                "targetGroupARN": other, "vpcID": "vpc-11111111"}),
    );
    let message = refusal(api.create(&PostParams::default(), &elsewhere).await);
    assert!(message.contains("spec.vpcID \"vpc-11111111\""), "{message}");

    // A manifest of upstream's first version, v1alpha1, applies and is read as v1beta1, defaulted.
    let alpha = format!(
        "apiVersion: elbv2.k8s.aws/v1alpha1\nkind: TargetGroupBinding\nmetadata:\n  name: alpha\n\
         spec:\n  serviceRef:\n    name: web\n    port: 80\n  targetGroupARN: {other}\n"
    );
    lb_sandbox::manifests::apply_yaml(&client, &alpha, ns)
        .await
        .expect("v1alpha1 applies");
    let stored = api.get("alpha").await.expect("read as v1beta1");
    assert_eq!(
        stored.spec.target_group_arn.as_deref(),
        Some(other.as_str())
    );
    assert_eq!(stored.spec.target_type, Some(TargetType::Ip));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_targets_are_the_eligible_nodes_at_the_node_port() {
    let ns = "nodes";
    let world = World::start(ns, false).await;
    let client = world.client();
    let node_port = web_behind_node_port(&client, ns, 2).await;
    let aws = world.sandbox.aws().unwrap();
    // One node is kept out of load balancers by its label.
    let nodes = world.sandbox.nodes().to_vec();
    let excluded = &nodes[0];
    let label = json!({"metadata": {"labels": {"node.kubernetes.io/exclude-from-external-load-balancers": "true"}}});
    Api::<Node>::all(client.clone())
        .patch(
            &excluded.name,
            &PatchParams::default(),
            &Patch::Merge(label),
        )
        .await
        .expect("node labelled");
    let spec = TargetGroupSpec {
        name: "nodes",
        target_type: TargetTypeEnum::Instance,
        port: 80,
        health_check_path: "/healthz",
        interval: 2,
    };
    let tg = elb_setup::target_group(&world.elb, aws, spec)
        .await
        .expect("instance target group");
    let (alb, _) = elb_setup::application_load_balancer(&world.elb, aws, "nodes")
        .await
        .expect("alb");
    elb_setup::http_listener(&world.elb, &alb, 80, elb_setup::forward(&tg))
        .await
        .expect("listener");
    let api: Api<TargetGroupBinding> = Api::namespaced(client.clone(), ns);
    let nodes_binding = binding(
        "web",
        json!({"serviceRef": {"name": "web", "port": 80}, "targetGroupARN": tg}),
    );
    let created = api
        .create(&PostParams::default(), &nodes_binding)
        .await
        .expect("created");
    assert_eq!(
        created.spec.target_type,
        Some(TargetType::Instance),
        "defaulted from the target group"
    );

    let expected: std::collections::BTreeSet<String> = nodes[1..]
        .iter()
        .map(|n| format!("{}:{node_port}", n.instance_id))
        .collect();
    eventually(
        "the two eligible nodes healthy",
        Duration::from_secs(60),
        || async {
            let states = elb_setup::states(&world.elb, &tg).await.ok()?;
            let healthy: std::collections::BTreeSet<String> = states
                .iter()
                .filter(|t| t.state == "healthy")
                .map(|t| format!("{}:{}", t.id, t.port))
                .collect();
            (healthy == expected && states.len() == 2).then_some(())
        },
    )
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_reaches_a_target_group_in_another_account_and_is_assumed_once() {
    let ns = "nlb-game-2048-1";
    let world = World::start(ns, true).await;
    let client = world.client();
    let aws = world.sandbox.aws().unwrap();
    // The guide's cross-account sample, as written: account 155642222660, its role and target group.
    let arn = "arn:aws:elasticloadbalancing:us-west-2:155642222660:targetgroup/peered-tg/6a4ecf7bfae473c1";
    let peer = aws
        .control()
        .peer_target_group(arn)
        .await
        .expect("the other account");
    assert_eq!(peer.account, "155642222660");
    // The group its networking names, as the user's own.
    aws.control()
        .ensure_security_group("sg-0b6a41a2fd959623f")
        .await
        .expect("the group");
    create(&client, ns, &service("service-2048", "ClusterIP")).await;
    create(&client, ns, &web_deployment("web", 2, 1, 0)).await;
    let api: Api<TargetGroupBinding> = Api::namespaced(client.clone(), ns);
    let peered: TargetGroupBinding = serde_yaml_ng::from_str(&format!(
        r#"
apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata:
  name: peered-tg
  namespace: nlb-game-2048-1
spec:
  assumeRoleExternalId: very-secret-string-2
  iamRoleArnToAssume: arn:aws:iam::155642222660:role/tg-management-role
  networking:
    ingress:
    - from:
      - securityGroup:
          groupID: sg-0b6a41a2fd959623f
      ports:
      - port: 80
        protocol: TCP
  serviceRef:
    name: service-2048
    port: 80
  targetGroupARN: {arn}
"#
    ))
    .expect("the guide's sample");
    let service_selects_web = json!({"spec": {"selector": {"app": "web"}}});
    Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), ns)
        .patch(
            "service-2048",
            &PatchParams::default(),
            &Patch::Merge(service_selects_web),
        )
        .await
        .expect("service selects the pods");
    api.create(&PostParams::default(), &peered)
        .await
        .expect("created");
    eventually(
        "2/2 healthy in the other account",
        Duration::from_secs(60),
        || async {
            (health_summary(&api, "peered-tg").await.as_deref() == Some("2/2 healthy"))
                .then_some(())
        },
    )
    .await;
    let targets = aws
        .control()
        .targets(arn)
        .await
        .expect("the peer's targets");
    assert_eq!(targets.iter().filter(|t| t.state == "healthy").count(), 2);
    // Not in the cluster's own account.
    assert!(elb_setup::states(&world.elb, arn).await.is_err());
    // Credentials are cached until they expire: one AssumeRole for the webhooks and every pass.
    let calls = &world.controller.as_ref().unwrap().calls;
    assert_eq!(calls.count(Operation::AssumeRole), 1);
    // The role cannot reach a target group its account does not have.
    let missing = binding(
        "missing",
        json!({
            "serviceRef": {"name": "service-2048", "port": 80},
            "iamRoleArnToAssume": "arn:aws:iam::155642222660:role/tg-management-role",
            "targetGroupName": "nope",
        }),
    );
    let message = refusal(api.create(&PostParams::default(), &missing).await);
    assert!(
        message.contains("no such target group in account 155642222660"),
        "{message}"
    );
    world.stop().await;
}
