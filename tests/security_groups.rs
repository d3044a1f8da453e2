//! Security groups as AWS enforces them, on the sandbox (whose emulator drops what the groups do
//! not admit): the nodes' interfaces carry the cluster security group, which admits only itself,
//! so a load balancer's health checks reach the pods only through the rules the controller
//! writes there from the bindings' `networking` (labelled `elbv2.k8s.aws/targetGroupBinding=shared`,
//! one port range per source group). A user's own rule on that group survives everything; the
//! last load balancer gone takes our rules and the backend group with it. A binding without
//! `networking` on a closed group says why its targets cannot be reached, and opens when
//! `networking` is added. Source ranges that exclude the client stop it at the listener while the
//! targets stay healthy. An NLB without security groups (disable-nlb-sg) is admitted by the CIDRs
//! of its subnets. A restart in the middle of a scale-out revokes nothing.

mod common;

use std::time::Duration;

use aws_sdk_ec2::types::{IpPermission, IpRange};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use lb_api::TargetGroupBinding;
use lb_aws::Operation;
use lb_lab::harness::start_controller;
use lb_sandbox::aws::elb_setup;
use lb_sandbox::testing::*;
use lb_sandbox::{Sandbox, http_client, manifests};
use serde_json::json;

const LABEL: &str = "elbv2.k8s.aws/targetGroupBinding=shared";

async fn ec2(sandbox: &Sandbox) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&sandbox.aws().unwrap().sdk_config().await)
}

/// The cluster security group's ingress rules as `(protocol, from, to, source, description)`.
async fn cluster_rules(
    ec2: &aws_sdk_ec2::Client,
    sandbox: &Sandbox,
) -> Vec<(String, i32, i32, String, String)> {
    let id = &sandbox.aws().unwrap().seeded().cluster_security_group_id;
    let described = ec2
        .describe_security_groups()
        .group_ids(id)
        .send()
        .await
        .unwrap();
    let mut rules = Vec::new();
    for p in described.security_groups()[0].ip_permissions() {
        let protocol = p.ip_protocol().unwrap_or_default().to_string();
        let (from, to) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        for pair in p.user_id_group_pairs() {
            rules.push((
                protocol.clone(),
                from,
                to,
                pair.group_id().unwrap_or_default().to_string(),
                pair.description().unwrap_or_default().to_string(),
            ));
        }
        for range in p.ip_ranges() {
            rules.push((
                protocol.clone(),
                from,
                to,
                range.cidr_ip().unwrap_or_default().to_string(),
                range.description().unwrap_or_default().to_string(),
            ));
        }
    }
    rules.sort();
    rules
}

fn labelled(
    rules: &[(String, i32, i32, String, String)],
) -> Vec<(String, i32, i32, String, String)> {
    rules.iter().filter(|r| r.4 == LABEL).cloned().collect()
}

/// `count` GETs of `/` through a listener: how many a pod answered.
async fn answered(sandbox: &Sandbox, address: std::net::SocketAddr, count: usize) -> usize {
    let mut ok = 0;
    for _ in 0..count {
        let response =
            http_client::get(&sandbox.guard(), address, "/", Duration::from_secs(2)).await;
        if response.is_ok_and(|r| r.status == 200) {
            ok += 1;
        }
    }
    ok
}

async fn listener_address(sandbox: &Sandbox, dns_name: &str, port: u16) -> std::net::SocketAddr {
    let aws = sandbox.aws().unwrap();
    eventually(
        "the data plane's listener",
        Duration::from_secs(10),
        || async {
            let listeners = aws.control().listeners().await.ok()?;
            listeners
                .into_iter()
                .find(|l| l.dns_name == dns_name && l.port == port)
                .map(|l| l.local_address)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_opens_the_cluster_group_to_its_load_balancers_and_only_its_rules_go() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let mut controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    let ec2 = ec2(&sandbox).await;
    let cluster_group = sandbox
        .aws()
        .unwrap()
        .seeded()
        .cluster_security_group_id
        .clone();
    // A user's own rule on the cluster group: it must survive everything below.
    ec2.authorize_security_group_ingress()
        .group_id(&cluster_group)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(
                    IpRange::builder()
                        .cidr_ip("10.99.0.0/16")
                        .description("ssh from the bastion")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let before = cluster_rules(&ec2, &sandbox).await;
    assert!(labelled(&before).is_empty(), "{before:?}");

    // The seeds' ALB (ip targets on 80) and NLB (ip targets on 8080): the pods are reached only
    // because the controller opened the cluster group to the backend group.
    common::apply_files(
        &client,
        &[
            "examples/ingress-alb/game-2048.yaml",
            "examples/service-nlb/nlb-ip.yaml",
        ],
    )
    .await;
    let alb = eventually("the ALB's hostname", Duration::from_secs(60), || {
        common::ingress_hostname(&client, "game-2048", "ingress-2048")
    })
    .await;
    let alb = listener_address(&sandbox, &alb, 80).await;
    eventually(
        "the 2048 pods answer through the ALB",
        Duration::from_secs(90),
        || async { (answered(&sandbox, alb, 5).await == 5).then_some(()) },
    )
    .await;
    let nlb = eventually("the NLB's hostname", Duration::from_secs(60), || {
        common::service_hostname(&client, "nlb-demo", "svc-nlb-ip-type")
    })
    .await;
    let nlb = listener_address(&sandbox, &nlb, 80).await;
    eventually(
        "the echo pods answer through the NLB",
        Duration::from_secs(90),
        || async { (answered(&sandbox, nlb, 5).await == 5).then_some(()) },
    )
    .await;
    // One rule: from the backend group, the range of both target ports, labelled.
    let rules = cluster_rules(&ec2, &sandbox).await;
    let ours = labelled(&rules);
    assert_eq!(ours.len(), 1, "{rules:?}");
    let (protocol, from, to, source, _) = &ours[0];
    assert_eq!(
        (protocol.as_str(), *from, *to),
        ("tcp", 80, 8080),
        "{rules:?}"
    );
    let backend = ec2
        .describe_security_groups()
        .group_ids(source)
        .send()
        .await
        .unwrap();
    let backend_name = backend.security_groups()[0]
        .group_name()
        .unwrap_or_default();
    assert!(backend_name.starts_with("k8s-traffic-"), "{backend_name}");

    // A restart in the middle of a scale-out revokes nothing (and, the rule covering every
    // binding's ports, adds nothing either).
    Api::<Deployment>::namespaced(client.clone(), "nlb-demo")
        .patch(
            "deploy-echo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 8}})),
        )
        .await
        .unwrap();
    controller = controller
        .restart(&sandbox, Duration::from_millis(200))
        .await
        .expect("controller restarts");
    eventually(
        "the scale-out's pods ready",
        Duration::from_secs(90),
        || async {
            (ready_pods(&client, "nlb-demo", "deploy-websrv").await.len() == 8).then_some(())
        },
    )
    .await;
    assert_eq!(
        controller
            .calls
            .count(Operation::RevokeSecurityGroupIngress),
        0
    );
    assert_eq!(
        controller
            .calls
            .count(Operation::AuthorizeSecurityGroupIngress),
        0
    );
    assert_eq!(labelled(&cluster_rules(&ec2, &sandbox).await), ours);

    // Deleting the Ingress narrows the rule to the NLB's port; deleting the Service takes our
    // rule and the backend group; the user's rule stays.
    Api::<Ingress>::namespaced(client.clone(), "game-2048")
        .delete("ingress-2048", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the rule narrowed to 8080",
        Duration::from_secs(60),
        || async {
            let ours = labelled(&cluster_rules(&ec2, &sandbox).await);
            (ours.len() == 1 && (ours[0].1, ours[0].2) == (8080, 8080)).then_some(())
        },
    )
    .await;
    Api::<Service>::namespaced(client.clone(), "nlb-demo")
        .delete("svc-nlb-ip-type", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "our rules and the backend group gone",
        Duration::from_secs(90),
        || async {
            let rules = cluster_rules(&ec2, &sandbox).await;
            let backend_left = ec2
                .describe_security_groups()
                .group_ids(source)
                .send()
                .await
                .is_ok_and(|d| !d.security_groups().is_empty());
            (labelled(&rules).is_empty() && !backend_left).then_some(rules)
        },
    )
    .await;
    assert_eq!(
        cluster_rules(&ec2, &sandbox).await,
        before,
        "the user's rule stays as it was"
    );
    controller.stop().await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_on_a_closed_group_says_why_and_opens_when_networking_is_added() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    let aws = sandbox.aws().unwrap();
    let seeded = aws.seeded();
    let elb = elb_setup::client(aws).await;
    // A load balancer made by hand with its frontend group only: nothing admits it on the nodes.
    let frontend = seeded.frontend_security_group_id.clone();
    let tg = elb_setup::target_group(
        &elb,
        aws,
        elb_setup::TargetGroupSpec {
            name: "closed",
            target_type: aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip,
            port: 8080,
            health_check_path: "/healthz",
            interval: 2,
        },
    )
    .await
    .unwrap();
    let (lb, _) = elb_setup::application_load_balancer_with_groups(
        &elb,
        aws,
        "closed",
        std::slice::from_ref(&frontend),
    )
    .await
    .unwrap();
    elb_setup::http_listener(&elb, &lb, 80, elb_setup::forward(&tg))
        .await
        .unwrap();
    sandbox.create_namespace("closed", &[]).await.unwrap();
    create(&client, "closed", &web_deployment("web", 2, 1, 0)).await;
    create(&client, "closed", &service("web", "ClusterIP")).await;
    let bindings = Api::<TargetGroupBinding>::namespaced(client.clone(), "closed");
    let binding: TargetGroupBinding = serde_json::from_value(json!({
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
        "metadata": {"name": "web"},
        "spec": {"targetGroupARN": tg, "targetType": "ip", "serviceRef": {"name": "web", "port": 80}},
    }))
    .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    // The targets time out, and the binding says why by name.
    let cluster_group = &seeded.cluster_security_group_id;
    let status = eventually(
        "the diagnosis on the binding",
        Duration::from_secs(90),
        || async {
            let binding = bindings.get("web").await.ok()?;
            let status = binding.status?;
            let ready = status.conditions.iter().find(|c| c.type_ == "Ready")?;
            (ready.reason == "TargetsUnreachable")
                .then(|| (ready.message.clone(), status.target_health))
        },
    )
    .await;
    let (message, health) = status;
    assert!(
        message.contains(&format!("{cluster_group} on eni-"))
            && message.contains(&format!(
                "admits nothing from {frontend} (the load balancer) on tcp/8080"
            )),
        "{message}"
    );
    assert!(health.is_some_and(|h| h.contains("unreachable")));
    let targets = aws.control().targets(&tg).await.unwrap();
    assert!(
        targets.iter().all(|t| t.state == "unhealthy"
            && t.reason.as_deref() == Some("Target.Timeout")
            && t.blocked.is_some()),
        "{targets:?}"
    );
    let reasons = common::event_reasons(&client, "closed", "web").await;
    assert!(
        reasons.iter().any(|(r, _)| r == "TargetsUnreachable"),
        "{reasons:?}"
    );

    // Adding networking opens the cluster group to the load balancer, without a restart.
    bindings
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"networking": {"ingress": [{
                "from": [{"securityGroup": {"groupID": frontend}}],
                "ports": [{"protocol": "TCP", "port": 8080}],
            }]}}})),
        )
        .await
        .unwrap();
    eventually("both targets healthy", Duration::from_secs(60), || async {
        let states = elb_setup::states(&elb, &tg).await.ok()?;
        (states.len() == 2 && states.iter().all(|t| t.state == "healthy")).then_some(())
    })
    .await;
    let ec2 = ec2(&sandbox).await;
    let ours = labelled(&cluster_rules(&ec2, &sandbox).await);
    assert_eq!(
        ours,
        [("tcp".into(), 8080, 8080, frontend.clone(), LABEL.into())]
    );
    eventually(
        "the binding ready again",
        Duration::from_secs(30),
        || async {
            let binding = bindings.get("web").await.ok()?;
            let ready = binding
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready")?;
            (ready.status == "True").then_some(())
        },
    )
    .await;
    controller.stop().await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_ranges_stop_the_client_at_the_listener_and_an_nlb_without_groups_is_admitted_by_address()
 {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    let aws = sandbox.aws().unwrap();
    let yaml = std::fs::read_to_string("examples/ingress-alb/game-2048.yaml")
        .unwrap()
        .replace(
            "alb.ingress.kubernetes.io/scheme: internet-facing",
            "alb.ingress.kubernetes.io/scheme: internet-facing\n    alb.ingress.kubernetes.io/inbound-cidrs: 10.0.0.0/8",
        );
    assert!(
        yaml.contains("inbound-cidrs"),
        "the example's scheme line moved"
    );
    manifests::apply_yaml(&client, &yaml, "default")
        .await
        .unwrap();
    let dns = eventually("the ALB's hostname", Duration::from_secs(60), || {
        common::ingress_hostname(&client, "game-2048", "ingress-2048")
    })
    .await;
    let address = listener_address(&sandbox, &dns, 80).await;
    let elb = elb_setup::client(aws).await;
    let arn = common::load_balancer_arn(&elb, &dns).await;
    // The targets turn healthy (the backend path is open)...
    eventually("the targets healthy", Duration::from_secs(90), || async {
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(&arn)
            .send()
            .await
            .ok()?;
        let listener = listeners.listeners().first()?.listener_arn()?.to_string();
        let rules = elb
            .describe_rules()
            .listener_arn(listener)
            .send()
            .await
            .ok()?;
        let group = rules
            .rules()
            .iter()
            .find(|r| r.is_default() != Some(true))
            .and_then(|r| common::forwarded_to(&r.actions()[0]))?;
        let states = elb_setup::states(&elb, &group).await.ok()?;
        (!states.is_empty() && states.iter().all(|t| t.state == "healthy")).then_some(())
    })
    .await;
    // ...while the client, from 203.0.113.10, is dropped at the listener.
    assert_eq!(answered(&sandbox, address, 2).await, 0);
    let dropped = aws.control().listeners().await.unwrap();
    let counts = &dropped.iter().find(|l| l.dns_name == dns).unwrap().requests;
    assert!(counts.get("dropped").is_some_and(|n| *n >= 2), "{counts:?}");
    // A client inside the range gets through.
    aws.control()
        .set_client_address("10.1.2.3".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(answered(&sandbox, address, 3).await, 3);

    // An NLB without security groups (disable-nlb-sg): its binding admits it by address, the
    // CIDRs of its subnets, and the cluster group gets those rules.
    let yaml = std::fs::read_to_string("examples/service-nlb/nlb-ip.yaml")
        .unwrap()
        .replace(
            "service.beta.kubernetes.io/aws-load-balancer-scheme: internet-facing",
            "service.beta.kubernetes.io/aws-load-balancer-scheme: internet-facing\n    service.beta.kubernetes.io/aws-load-balancer-disable-nlb-sg: \"true\"",
        );
    assert!(
        yaml.contains("disable-nlb-sg"),
        "the example's scheme line moved"
    );
    manifests::apply_yaml(&client, &yaml, "default")
        .await
        .unwrap();
    let nlb = eventually("the NLB's hostname", Duration::from_secs(60), || {
        common::service_hostname(&client, "nlb-demo", "svc-nlb-ip-type")
    })
    .await;
    let arn = common::load_balancer_arn(&elb, &nlb).await;
    let described = elb
        .describe_load_balancers()
        .load_balancer_arns(&arn)
        .send()
        .await
        .unwrap();
    assert!(described.load_balancers()[0].security_groups().is_empty());
    let nlb = listener_address(&sandbox, &nlb, 80).await;
    eventually(
        "the echo pods answer through the NLB",
        Duration::from_secs(90),
        || async { (answered(&sandbox, nlb, 3).await == 3).then_some(()) },
    )
    .await;
    let ec2 = ec2(&sandbox).await;
    let subnet_cidrs: Vec<String> = ec2
        .describe_subnets()
        .subnet_ids(aws.seeded().subnets.values().next().unwrap())
        .send()
        .await
        .unwrap()
        .subnets()
        .iter()
        .filter_map(|s| s.cidr_block().map(str::to_string))
        .collect();
    let by_address: Vec<_> = labelled(&cluster_rules(&ec2, &sandbox).await)
        .into_iter()
        .filter(|r| r.3.contains('/'))
        .collect();
    assert!(
        by_address
            .iter()
            .any(|r| (r.1, r.2) == (8080, 8080) && subnet_cidrs.contains(&r.3)),
        "{by_address:?} {subnet_cidrs:?}"
    );
    controller.stop().await;
    sandbox.shutdown().await;
}
