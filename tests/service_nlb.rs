//! Service -> NLB on the sandbox: the seed's annotated Service (examples/service-nlb/) becomes an
//! NLB in the emulator with its listener, target group, managed security group and binding; pod
//! targets turn healthy, the status names the NLB, TCP traffic through the NLB reaches the pods;
//! a restarted controller changes nothing; a health-check change modifies the target group in
//! place; deleting the Service removes all of it and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::Client as Elb;
use aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum;
use k8s_openapi::api::core::v1::{Event, Service};
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

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

async fn hostname(client: &kube::Client, ns: &str, name: &str) -> Option<String> {
    let service = Api::<Service>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .ok()?;
    service
        .status?
        .load_balancer?
        .ingress?
        .first()?
        .hostname
        .clone()
}

async fn event_reasons(client: &kube::Client, ns: &str, name: &str) -> Vec<(String, String)> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

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
    init_tracing();
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
        || hostname(&client, NS, SERVICE),
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
    assert_eq!(nlb.security_groups().len(), 1, "the managed security group");
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
    let tg_arn = listener.default_actions()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
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
    let reasons = event_reasons(&client, NS, SERVICE).await;
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
