//! Service -> NLB on the sandbox: the seed's annotated Service (examples/service-nlb/) becomes an
//! NLB in the emulator with its listener, target group, managed security group and binding; pod
//! targets turn healthy, the status names the NLB, TCP traffic through the NLB reaches the pods;
//! a restarted controller changes nothing; a health-check change modifies the target group in
//! place; deleting the Service removes all of it and nothing else.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::Client as Elb;
use aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use lb_api::TargetGroupBinding;
use lb_aws::Operation;
use lb_lab::harness::{ControllerHandle, start_controller};
use lb_sandbox::aws::elb_setup;
use lb_sandbox::testing::*;
use lb_sandbox::{Sandbox, http_client, manifests};

const NS: &str = "nlb-demo";
const SERVICE: &str = "svc-nlb-ip-type";
const GATE_PREFIX: &str = "target-health.alb.ingress.k8s.aws/";

/// Load balancer names in the emulated account.
async fn load_balancer_names(elb: &Elb) -> BTreeSet<String> {
    elb.describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancers()
        .iter()
        .filter_map(|l| l.load_balancer_name().map(str::to_string))
        .collect()
}

async fn target_group_attributes(elb: &Elb, arn: &str) -> BTreeMap<String, String> {
    elb.describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .unwrap()
        .attributes()
        .iter()
        .filter_map(|a| Some((a.key()?.to_string(), a.value()?.to_string())))
        .collect()
}

/// Which pods answered `count` TCP connections (HTTP over them) through the NLB's listener.
async fn answering_pods(sandbox: &Sandbox, dns_name: &str, count: usize) -> BTreeSet<String> {
    let aws = sandbox.aws().unwrap();
    let listeners = aws.control().listeners().await.unwrap();
    let listener = listeners
        .iter()
        .find(|l| l.dns_name == dns_name && l.port == 80)
        .unwrap_or_else(|| panic!("no listener on port 80 of {dns_name}: {listeners:?}"));
    assert_eq!(listener.protocol, "TCP");
    let mut pods = BTreeSet::new();
    for _ in 0..count {
        let response = http_client::get(
            &sandbox.guard(),
            listener.local_address,
            "/",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(response.status, 200);
        let body = String::from_utf8_lossy(&response.body).to_string();
        if let Some(pod) = body.split_whitespace().find_map(|w| w.strip_prefix("pod=")) {
            pods.insert(pod.to_string());
        }
    }
    pods
}

fn mutating_calls(controller: &ControllerHandle) -> Vec<(&'static str, u64)> {
    Operation::ALL
        .iter()
        .filter(|op| op.is_mutating())
        .map(|op| (op.as_str(), controller.calls.count(*op)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_nlb_service_gets_an_nlb_that_carries_traffic_and_goes_with_the_service() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let mut controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    let aws = sandbox.aws().unwrap();
    let elb = elb_setup::client(aws).await;
    // Someone else's load balancer, without our tags: it must survive everything below.
    let (foreign, _) = elb_setup::application_load_balancer(&elb, aws, "not-ours")
        .await
        .unwrap();

    let yaml = std::fs::read_to_string("examples/service-nlb/nlb-ip.yaml").unwrap();
    manifests::apply_yaml(&client, &yaml, "default")
        .await
        .unwrap();
    let dns_name = eventually(
        "the NLB's hostname in the status",
        Duration::from_secs(60),
        || common::service_hostname(&client, NS, SERVICE),
    )
    .await;

    // The NLB as the annotations say.
    let described = elb.describe_load_balancers().send().await.unwrap();
    let nlb = described
        .load_balancers()
        .iter()
        .find(|l| l.dns_name() == Some(dns_name.as_str()))
        .expect("the NLB of the status");
    assert_eq!(nlb.r#type(), Some(&LoadBalancerTypeEnum::Network));
    assert_eq!(nlb.scheme().map(|s| s.as_str()), Some("internet-facing"));
    assert!(
        nlb.load_balancer_name()
            .unwrap()
            .starts_with("k8s-nlbdemo-svcnlbip-")
    );
    assert_eq!(nlb.availability_zones().len(), 3, "one subnet per zone");
    assert_eq!(
        nlb.security_groups().len(),
        2,
        "the managed security group and the shared backend one"
    );
    let nlb_arn = nlb.load_balancer_arn().unwrap().to_string();
    let attributes = elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(&nlb_arn)
        .send()
        .await
        .unwrap();
    assert!(attributes.attributes().iter().any(|a| {
        a.key() == Some("load_balancing.cross_zone.enabled") && a.value() == Some("true")
    }));
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(&nlb_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(listeners.listeners().len(), 1);
    let listener = &listeners.listeners()[0];
    assert_eq!(listener.port(), Some(80));
    assert_eq!(listener.protocol().map(|p| p.as_str()), Some("TCP"));
    let tg_arn = common::forwarded_to(&listener.default_actions()[0]).unwrap();
    let groups = elb
        .describe_target_groups()
        .target_group_arns(&tg_arn)
        .send()
        .await
        .unwrap();
    let group = &groups.target_groups()[0];
    assert_eq!(group.protocol().map(|p| p.as_str()), Some("TCP"));
    assert_eq!(group.port(), Some(8080));
    assert_eq!(group.target_type().map(|t| t.as_str()), Some("ip"));
    assert_eq!(group.health_check_port(), Some("8080"));
    assert_eq!(
        target_group_attributes(&elb, &tg_arn)
            .await
            .get("deregistration_delay.timeout_seconds")
            .map(String::as_str),
        Some("60")
    );

    // The binding the stack made: the pods' IPs registered and healthy, their gates open.
    let bindings = Api::<TargetGroupBinding>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(bindings.items.len(), 1);
    assert_eq!(
        bindings.items[0].spec.target_group_arn.as_deref(),
        Some(tg_arn.as_str())
    );
    let gate = format!(
        "{GATE_PREFIX}{}",
        bindings.items[0].metadata.name.clone().unwrap()
    );
    eventually(
        "both pods healthy in the NLB's target group",
        Duration::from_secs(60),
        || async {
            let states = elb_setup::states(&elb, &tg_arn).await.ok()?;
            (states.len() == 2 && states.iter().all(|t| t.state == "healthy")).then_some(())
        },
    )
    .await;
    eventually(
        "the pods' readiness gates open",
        Duration::from_secs(30),
        || async {
            let pods = pods_of(&client, NS, "deploy-websrv").await;
            (pods.len() == 2
                && pods
                    .iter()
                    .all(|p| condition(p, &gate).as_deref() == Some("True")))
            .then_some(())
        },
    )
    .await;

    // TCP through the NLB reaches both pods.
    let answered = answering_pods(&sandbox, &dns_name, 20).await;
    assert_eq!(answered.len(), 2, "{answered:?}");
    let reasons = common::event_reasons(&client, NS, SERVICE).await;
    assert!(
        reasons.iter().any(|(r, _)| r == "SuccessfullyReconciled"),
        "{reasons:?}"
    );

    // A restarted controller finds everything converged: describes only.
    controller = controller
        .restart(&sandbox, Duration::from_millis(200))
        .await
        .expect("controller restarts");
    eventually(
        "the restarted controller's first look",
        Duration::from_secs(30),
        || async {
            (controller.calls.count(Operation::DescribeListeners) > 0
                && controller.calls.count(Operation::DescribeTargetHealth) > 0)
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        mutating_calls(&controller),
        vec![],
        "no change after a restart"
    );

    // A health-check change modifies the target group in place.
    Api::<Service>::namespaced(client.clone(), NS)
        .patch(
            SERVICE,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval": "15",
            }}})),
        )
        .await
        .unwrap();
    eventually(
        "the health check interval modified",
        Duration::from_secs(30),
        || async {
            let groups = elb
                .describe_target_groups()
                .target_group_arns(&tg_arn)
                .send()
                .await
                .ok()?;
            (groups.target_groups()[0].health_check_interval_seconds() == Some(15)).then_some(())
        },
    )
    .await;
    assert_eq!(controller.calls.count(Operation::CreateTargetGroup), 0);

    // Deleting the Service removes the NLB, its target group, security group and binding.
    Api::<Service>::namespaced(client.clone(), NS)
        .delete(SERVICE, &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the Service gone (finalizer removed)",
        Duration::from_secs(60),
        || async {
            Api::<Service>::namespaced(client.clone(), NS)
                .get_opt(SERVICE)
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    let names = load_balancer_names(&elb).await;
    assert_eq!(names, BTreeSet::from(["not-ours".to_string()]));
    assert!(
        elb.describe_target_groups()
            .target_group_arns(&tg_arn)
            .send()
            .await
            .is_err(),
        "the target group is deleted"
    );
    let bindings = Api::<TargetGroupBinding>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(bindings.items.is_empty());
    assert!(controller.calls.count(Operation::DeleteSecurityGroup) >= 1);
    assert!(
        elb.describe_load_balancers()
            .load_balancer_arns(&foreign)
            .send()
            .await
            .is_ok()
    );

    controller.stop().await;
    sandbox.shutdown().await;
}

/// A Service of `ns` selected by annotation, with its pods' Deployment.
async fn annotated_service(
    client: &kube::Client,
    ns: &str,
    name: &str,
    annotations: serde_json::Value,
) {
    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    }))
    .unwrap();
    create(client, ns, &service).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_annotation_is_named_and_touches_nothing_and_instance_targets_are_the_nodes() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    let ns = "edge";
    sandbox.create_namespace(ns, &[]).await.unwrap();
    create(&client, ns, &web_deployment("web", 2, 1, 0)).await;
    let elb = elb_setup::client(sandbox.aws().unwrap()).await;

    // A non-number interval: a Warning naming annotation and value; AWS untouched.
    let interval = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval";
    annotated_service(
        &client,
        ns,
        "web",
        serde_json::json!({
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "instance",
            interval: "often",
        }),
    )
    .await;
    let (_, message) = eventually(
        "a FailedBuildModel Warning",
        Duration::from_secs(30),
        || async {
            common::event_reasons(&client, ns, "web")
                .await
                .into_iter()
                .find(|(reason, _)| reason == "FailedBuildModel")
        },
    )
    .await;
    assert!(
        message.contains(interval) && message.contains("\"often\""),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mutating_calls(&controller), vec![]);
    assert_eq!(controller.calls.count(Operation::DescribeLoadBalancers), 0);
    assert!(load_balancer_names(&elb).await.is_empty());

    // Fixed: an NLB with instance targets, the nodes on the Service's NodePort.
    Api::<Service>::namespaced(client.clone(), ns)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
                interval: "5",
                "service.beta.kubernetes.io/aws-load-balancer-healthcheck-timeout": "5",
                "service.beta.kubernetes.io/aws-load-balancer-healthcheck-healthy-threshold": "2",
            }}})),
        )
        .await
        .unwrap();
    eventually("the NLB's hostname", Duration::from_secs(60), || {
        common::service_hostname(&client, ns, "web")
    })
    .await;
    let service = Api::<Service>::namespaced(client.clone(), ns)
        .get("web")
        .await
        .unwrap();
    let node_port = service.spec.unwrap().ports.unwrap()[0].node_port.unwrap();
    let binding = Api::<TargetGroupBinding>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(binding.spec.target_type, Some(lb_api::TargetType::Instance));
    let tg = binding.spec.target_group_arn.unwrap();
    let instances: BTreeSet<String> = sandbox
        .aws()
        .unwrap()
        .seeded()
        .instances
        .values()
        .map(|id| format!("{id}:{node_port}"))
        .collect();
    eventually(
        "every node registered on the NodePort and healthy",
        Duration::from_secs(60),
        || async {
            let states = elb_setup::states(&elb, &tg).await.ok()?;
            let registered: BTreeSet<String> = states
                .iter()
                .map(|t| format!("{}:{}", t.id, t.port))
                .collect();
            (registered == instances && states.iter().all(|t| t.state == "healthy")).then_some(())
        },
    )
    .await;

    // instance -> ip: a new target group; the listener moves only once it has registered targets,
    // so every look at the listener finds targets behind it (healthy ones, until the switch).
    Api::<Service>::namespaced(client.clone(), ns)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            }}})),
        )
        .await
        .unwrap();
    let nlb_arn = elb
        .describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let looks = std::sync::atomic::AtomicUsize::new(0);
    let new_tg = eventually(
        "the listener on an ip target group",
        Duration::from_secs(90),
        || async {
            let listeners = elb
                .describe_listeners()
                .load_balancer_arn(&nlb_arn)
                .send()
                .await
                .ok()?;
            let current = common::forwarded_to(&listeners.listeners()[0].default_actions()[0])?;
            let states = elb_setup::states(&elb, &current).await.ok()?;
            looks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            assert!(
                states.iter().any(|t| t.state != "draining"),
                "the listener forwards to {current} without a target: {states:?}"
            );
            if current == tg {
                assert!(states.iter().any(|t| t.state == "healthy"), "{states:?}");
            }
            (current != tg).then_some(current)
        },
    )
    .await;
    assert!(looks.into_inner() > 1, "the switch was watched");
    let groups = elb
        .describe_target_groups()
        .target_group_arns(&new_tg)
        .send()
        .await
        .unwrap();
    assert_eq!(
        groups.target_groups()[0].target_type().map(|t| t.as_str()),
        Some("ip")
    );
    eventually(
        "the pods healthy in the new group",
        Duration::from_secs(60),
        || async {
            let states = elb_setup::states(&elb, &new_tg).await.ok()?;
            (states.len() == 2 && states.iter().all(|t| t.state == "healthy")).then_some(())
        },
    )
    .await;
    eventually(
        "the old target group and its binding gone",
        Duration::from_secs(30),
        || async {
            let old_gone = elb
                .describe_target_groups()
                .target_group_arns(&tg)
                .send()
                .await
                .is_err();
            let bindings = Api::<TargetGroupBinding>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await
                .ok()?;
            (old_gone && bindings.items.len() == 1).then_some(())
        },
    )
    .await;

    controller.stop().await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_tls_variant_terminates_tls_with_the_certificate_and_refuses_external_as_a_target_type()
 {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    let aws = sandbox.aws().unwrap();
    let seeded = aws.seeded().clone();
    let ns = "nlb-tls";
    let yaml = std::fs::read_to_string("examples/service-nlb/nlb-tls.yaml")
        .unwrap()
        .replace("${CERTIFICATE_ARN}", &seeded.certificate_arn);

    // As the seed writes it: target type "external", which is none; named, nothing made.
    let seed_as_written = yaml.replace(
        "aws-load-balancer-nlb-target-type: ip",
        "aws-load-balancer-nlb-target-type: external",
    );
    manifests::apply_yaml(&client, &seed_as_written, "default")
        .await
        .unwrap();
    let (_, message) = eventually(
        "a FailedBuildModel Warning",
        Duration::from_secs(30),
        || async {
            common::event_reasons(&client, ns, SERVICE)
                .await
                .into_iter()
                .find(|(reason, _)| reason == "FailedBuildModel")
        },
    )
    .await;
    assert!(
        message.contains("aws-load-balancer-nlb-target-type") && message.contains("\"external\""),
        "{message}"
    );
    assert_eq!(controller.calls.count(Operation::CreateLoadBalancer), 0);

    // With ip targets: TCP on 80, TLS on 443 with the certificate.
    manifests::apply_yaml(&client, &yaml, "default")
        .await
        .unwrap();
    let dns_name = eventually("the NLB's hostname", Duration::from_secs(60), || {
        common::service_hostname(&client, ns, SERVICE)
    })
    .await;
    let elb = elb_setup::client(aws).await;
    let tg_arns: Vec<String> = Api::<TargetGroupBinding>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|b| b.spec.target_group_arn)
        .collect();
    assert_eq!(tg_arns.len(), 2, "one target group per port");
    eventually(
        "the pods healthy in both target groups",
        Duration::from_secs(90),
        || async {
            for arn in &tg_arns {
                let states = elb_setup::states(&elb, arn).await.ok()?;
                if states.len() != 2 || states.iter().any(|t| t.state != "healthy") {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let listeners = aws.control().listeners().await.unwrap();
    let tls = listeners
        .iter()
        .find(|l| l.dns_name == dns_name && l.port == 443)
        .expect("a listener on 443");
    assert_eq!(tls.protocol, "TLS");
    let described = elb
        .describe_listeners()
        .listener_arns(&tls.listener_arn)
        .send()
        .await
        .unwrap();
    let listener = &described.listeners()[0];
    assert_eq!(
        listener.certificates()[0].certificate_arn(),
        Some(seeded.certificate_arn.as_str())
    );
    assert!(listener.ssl_policy().is_some());
    let response = common::tls_get(
        &sandbox,
        tls.local_address,
        &seeded.certificate_ca_pem,
        "web.example.com",
        "/",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("pod=nlb-tls/deploy-echo-"), "{response}");
    // Port 80 stays plain TCP.
    assert_eq!(answering_pods(&sandbox, &dns_name, 10).await.len(), 2);

    controller.stop().await;
    sandbox.shutdown().await;
}

/// The security groups of the NLB named `name` in the emulated account.
async fn security_groups_of(elb: &Elb, name: &str) -> Option<Vec<String>> {
    let described = elb
        .describe_load_balancers()
        .names(name)
        .send()
        .await
        .ok()?;
    Some(
        described
            .load_balancers()
            .first()?
            .security_groups()
            .to_vec(),
    )
}

/// `aws-load-balancer-security-groups` names groups by ID or by their `Name` tag (upstream's
/// lookup); with them the NLB gets no managed group, and the backend group only with
/// `aws-load-balancer-manage-backend-security-group-rules`. Without them: the managed group and
/// the shared backend group, which goes when the last load balancer using it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_groups_named_by_tag_are_resolved_and_the_backend_group_comes_and_goes() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    let aws = sandbox.aws().unwrap();
    let elb = elb_setup::client(aws).await;
    let ec2 = aws_sdk_ec2::Client::new(&aws.sdk_config().await);
    let edge = ec2
        .create_security_group()
        .group_name("edge-sg-group-name")
        .description("the user's")
        .vpc_id(&aws.seeded().vpc_id)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("Name")
                        .value("edge")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    let ns = "named-groups";
    sandbox.create_namespace(ns, &[]).await.unwrap();
    create(&client, ns, &web_deployment("web", 1, 1, 0)).await;
    let group_ids = || async {
        let described = ec2
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(&aws.seeded().vpc_id)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        described
            .security_groups()
            .iter()
            .filter_map(|g| Some((g.group_name()?.to_string(), g.group_id()?.to_string())))
            .collect::<BTreeMap<String, String>>()
    };
    annotated_service(
        &client,
        ns,
        "named",
        serde_json::json!({
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-security-groups": "edge",
        }),
    )
    .await;
    eventually("the NLB's hostname", Duration::from_secs(60), || {
        common::service_hostname(&client, ns, "named")
    })
    .await;
    let nlb = load_balancer_names(&elb)
        .await
        .into_iter()
        .find(|n| n.starts_with("k8s-namedgro-named-"))
        .expect("the NLB");
    assert_eq!(
        security_groups_of(&elb, &nlb).await,
        Some(vec![edge.clone()])
    );
    assert!(
        !group_ids().await.keys().any(|n| n.starts_with("k8s-")),
        "no managed and no backend group: {:?}",
        group_ids().await
    );

    // The backend rules managed: the backend group joins the user's.
    Api::<Service>::namespaced(client.clone(), ns)
        .patch(
            "named",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-manage-backend-security-group-rules": "true",
            }}})),
        )
        .await
        .unwrap();
    let backend = lb_model::naming::backend_security_group(aws.cluster_name());
    let backend_id = eventually(
        "the backend group attached",
        Duration::from_secs(60),
        || async {
            let id = group_ids().await.get(&backend).cloned()?;
            let groups = security_groups_of(&elb, &nlb).await?;
            (groups == [edge.clone(), id.clone()]).then_some(id)
        },
    )
    .await;
    // Its binding admits the backend group (written once the load balancer has it).
    let bindings = Api::<TargetGroupBinding>::namespaced(client.clone(), ns);
    eventually(
        "the binding admitting the backend group",
        Duration::from_secs(30),
        || async {
            let binding = bindings
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .pop()?;
            let networking = binding.spec.networking?;
            let from = networking
                .ingress
                .first()?
                .from
                .first()?
                .security_group
                .clone()?;
            (from.group_id == backend_id).then_some(())
        },
    )
    .await;

    // The Service goes: so does the backend group, no load balancer using it; the user's stays.
    Api::<Service>::namespaced(client.clone(), ns)
        .delete("named", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the NLB and the backend group gone",
        Duration::from_secs(90),
        || async {
            let groups = group_ids().await;
            (!load_balancer_names(&elb).await.contains(&nlb) && !groups.contains_key(&backend))
                .then_some(())
        },
    )
    .await;
    assert!(group_ids().await.contains_key("edge-sg-group-name"));
    controller.stop().await;
    sandbox.shutdown().await;
}
