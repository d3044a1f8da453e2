//! Where a run's traffic enters: an ALB the benchmark makes in the emulator with a binding of its
//! own (scenarios 1-5), the NLB the controller makes from an annotated Service (scenario 6), or
//! the ALB the controller makes from an Ingress (scenario 7).

use std::time::Duration;

use std::future::Future;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::PostParams;
use lb_api::TargetGroupBinding;
use lb_sandbox::Sandbox;
use lb_sandbox::aws::elb_setup;
use lb_sandbox::testing::service;
use serde_json::json;

use super::{RolloutError, RolloutOptions, kube_context, wait_until};
use crate::harness::HarnessError;

/// Where a run's traffic enters and which target group is behind it.
pub struct Front {
    pub target_group_arn: String,
    pub dns_name: String,
}

/// An ALB made in the emulator (HTTP listener -> ip target group) and a TargetGroupBinding of
/// Service `web` to it.
pub async fn alb_front(
    sandbox: &Sandbox,
    namespace: &str,
    options: &RolloutOptions,
) -> Result<Front, RolloutError> {
    let client = sandbox.client();
    let aws = sandbox.aws().ok_or(HarnessError::NoAws)?;
    let elb = elb_setup::client(aws).await;
    let alb = elb_setup::web_alb(
        &elb,
        aws,
        &format!("rb-{namespace}"),
        "/healthz",
        options.interval,
        options.deregistration_delay,
    )
    .await?;
    if options.healthy_threshold != 2 {
        elb.modify_target_group()
            .target_group_arn(&alb.target_group_arn)
            .healthy_threshold_count(options.healthy_threshold)
            .send()
            .await
            .map_err(|e| lb_sandbox::SandboxError::Config(format!("threshold: {e}")))?;
    }
    Api::<Service>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &service("web", "ClusterIP"))
        .await
        .map_err(kube_context("creating the Service"))?;
    let binding: TargetGroupBinding = serde_json::from_value(json!({
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
        "metadata": {"name": "web"},
        "spec": {"targetGroupARN": alb.target_group_arn, "targetType": "ip", "serviceRef": {"name": "web", "port": 80}},
    }))
    .map_err(|e| lb_sandbox::SandboxError::Manifest(e.to_string()))?;
    Api::<TargetGroupBinding>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await
        .map_err(kube_context("creating the TargetGroupBinding"))?;
    Ok(Front {
        target_group_arn: alb.target_group_arn,
        dns_name: alb.dns_name,
    })
}

/// Service `web` annotated for an NLB with ip targets, health checks and deregistration delay as
/// the options say: the controller makes the NLB, its target group and the binding.
pub async fn nlb_front(
    sandbox: &Sandbox,
    namespace: &str,
    options: &RolloutOptions,
) -> Result<Result<Front, RolloutError>, Duration> {
    let client = sandbox.client();
    let prefix = lb_api::keys::service::PREFIX;
    let interval = options.interval.max(5);
    let mut web = service("web", "LoadBalancer");
    web.metadata.annotations = Some(
        [
            ("aws-load-balancer-type", "external".to_string()),
            ("aws-load-balancer-nlb-target-type", "ip".to_string()),
            ("aws-load-balancer-scheme", "internet-facing".to_string()),
            (
                "aws-load-balancer-healthcheck-interval",
                interval.to_string(),
            ),
            (
                "aws-load-balancer-healthcheck-timeout",
                interval.to_string(),
            ),
            (
                "aws-load-balancer-healthcheck-healthy-threshold",
                options.healthy_threshold.to_string(),
            ),
            (
                "aws-load-balancer-target-group-attributes",
                format!(
                    "deregistration_delay.timeout_seconds={}",
                    options.deregistration_delay
                ),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v))
        .collect(),
    );
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    if let Err(source) = services.create(&PostParams::default(), &web).await {
        return Ok(Err(RolloutError::Kube {
            context: "creating the NLB Service",
            source,
        }));
    }
    let hostname = || async {
        services
            .get("web")
            .await
            .ok()
            .and_then(|s| s.status?.load_balancer?.ingress?.first()?.hostname.clone())
    };
    made_front(sandbox, namespace, hostname, "NLB").await
}

/// Service `web` behind Ingress `web` (ip targets, internet-facing, HTTP health checks on
/// `/healthz` as the options say): the controller makes the ALB, its rule, target group and binding.
pub async fn ingress_front(
    sandbox: &Sandbox,
    namespace: &str,
    options: &RolloutOptions,
) -> Result<Result<Front, RolloutError>, Duration> {
    let client = sandbox.client();
    let interval = options.interval.max(5);
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    if let Err(source) = services
        .create(&PostParams::default(), &service("web", "ClusterIP"))
        .await
    {
        return Ok(Err(RolloutError::Kube {
            context: "creating the Service",
            source,
        }));
    }
    let prefix = lb_api::keys::ingress::PREFIX;
    let ingress: Ingress = match serde_json::from_value(json!({
        "metadata": {"name": "web", "annotations": {
            format!("{prefix}scheme"): "internet-facing",
            format!("{prefix}target-type"): "ip",
            format!("{prefix}healthcheck-path"): "/healthz",
            format!("{prefix}healthcheck-interval-seconds"): interval.to_string(),
            format!("{prefix}healthcheck-timeout-seconds"): (interval - 1).max(2).to_string(),
            format!("{prefix}healthy-threshold-count"): options.healthy_threshold.to_string(),
            format!("{prefix}target-group-attributes"): format!("deregistration_delay.timeout_seconds={}", options.deregistration_delay),
        }},
        "spec": {"ingressClassName": "alb", "rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]},
    })) {
        Ok(ingress) => ingress,
        Err(e) => return Ok(Err(lb_sandbox::SandboxError::Manifest(e.to_string()).into())),
    };
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    if let Err(source) = ingresses.create(&PostParams::default(), &ingress).await {
        return Ok(Err(RolloutError::Kube {
            context: "creating the Ingress",
            source,
        }));
    }
    let hostname = || async {
        ingresses
            .get("web")
            .await
            .ok()
            .and_then(|i| i.status?.load_balancer?.ingress?.first()?.hostname.clone())
    };
    made_front(sandbox, namespace, hostname, "ALB").await
}

/// The front the controller made: once `hostname` says the object has its load balancer and the
/// namespace has the binding, that binding's target group.
async fn made_front<F, Fut>(
    sandbox: &Sandbox,
    namespace: &str,
    hostname: F,
    what: &str,
) -> Result<Result<Front, RolloutError>, Duration>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<String>>,
{
    let bindings: Api<TargetGroupBinding> = Api::namespaced(sandbox.client(), namespace);
    let found = std::sync::Mutex::new(None);
    wait_until(Duration::from_secs(120), || async {
        let arn = bindings.list(&Default::default()).await.ok().and_then(|l| {
            l.items
                .first()
                .and_then(|b| b.spec.target_group_arn.clone())
        });
        if let (Some(dns_name), Some(target_group_arn)) = (hostname().await, arn) {
            *found.lock().unwrap_or_else(|e| e.into_inner()) = Some(Front {
                target_group_arn,
                dns_name,
            });
            return true;
        }
        false
    })
    .await?;
    let front = found.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(front.ok_or_else(|| {
        RolloutError::Sandbox(lb_sandbox::SandboxError::Config(format!("no {what} found")))
    }))
}
