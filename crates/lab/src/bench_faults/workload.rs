//! The fixed workload of one fault run, in namespace `ns`: a Deployment `web` behind every kind
//! of stack source, so one fault meets them all.
//!
//! - before the fault: a hand-made ALB and target group with a TargetGroupBinding (ip targets), an
//!   IngressGroup of two Ingresses (ip targets, group `ns`), an NLB Service (ip targets);
//!   readiness gates on every pod (the namespace is labelled);
//! - during the fault (the changes it meets): a third Ingress joins the group, a second NLB
//!   Service is created, and the Deployment rolls to a new revision under load.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use lb_api::TargetGroupBinding;
use lb_sandbox::{Sandbox, testing};
use serde_json::json;

use crate::bench::BenchError;
use crate::harness::{Front, web_binding};
use crate::status_hostname::StatusHostname;

pub const REPLICAS: i32 = 3;
/// The Ingress members present before the fault, and the one that joins during it.
pub const MEMBERS_BEFORE: [&str; 2] = ["shop", "api"];
pub const MEMBER_DURING: &str = "admin";
pub const NLB_BEFORE: &str = "web-nlb";
pub const NLB_DURING: &str = "web-nlb2";
/// The path the load goes to (member `shop`'s first).
pub const LOAD_PATH: &str = "/shop/p0";

fn kube_error(context: &'static str) -> impl Fn(kube::Error) -> BenchError {
    move |source| BenchError::Stuck(format!("{context}: {source}"))
}

/// An Ingress of group `group` with two paths to Service `web` (ip targets, quick checks).
pub fn member(name: &str, group: &str, order: i32) -> Ingress {
    let paths: Vec<_> = (0..2)
        .map(|p| {
            json!({"path": format!("/{name}/p{p}"), "pathType": "Prefix",
                   "backend": {"service": {"name": "web", "port": {"number": 80}}}})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {
            "alb.ingress.kubernetes.io/group.name": group,
            "alb.ingress.kubernetes.io/group.order": order.to_string(),
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/target-type": "ip",
            "alb.ingress.kubernetes.io/healthcheck-path": "/healthz",
            "alb.ingress.kubernetes.io/healthcheck-interval-seconds": "5",
            "alb.ingress.kubernetes.io/healthy-threshold-count": "2",
            "alb.ingress.kubernetes.io/target-group-attributes": "deregistration_delay.timeout_seconds=5",
        }},
        "spec": {"ingressClassName": "alb", "rules": [{"http": {"paths": paths}}]},
    }))
    .expect("a valid Ingress")
}

/// An NLB Service for the pods of `web` (ip targets, quick checks).
pub fn nlb(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval": "5",
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-healthy-threshold": "2",
            "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": "deregistration_delay.timeout_seconds=5",
        }},
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    }))
    .expect("a valid Service")
}

/// Creates what exists before the fault; returns the hand-made target group's ARN.
pub async fn create_before(sandbox: &Sandbox, ns: &str) -> Result<String, BenchError> {
    // The namespace (gates on), Service `web`, a hand-made ALB + target group, and the binding.
    let binding_group = format!("{ns}-tgb");
    let target_group_arn = web_binding(sandbox, ns, &binding_group, 5, Front::Open).await?;
    let client = sandbox.client();
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &testing::web_deployment("web", REPLICAS, 1, 0),
        )
        .await
        .map_err(kube_error("creating Deployment web"))?;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    for (order, name) in (1..).zip(MEMBERS_BEFORE) {
        ingresses
            .create(&PostParams::default(), &member(name, ns, order))
            .await
            .map_err(kube_error("creating an Ingress"))?;
    }
    Api::<Service>::namespaced(client, ns)
        .create(&PostParams::default(), &nlb(NLB_BEFORE))
        .await
        .map_err(kube_error("creating the NLB Service"))?;
    Ok(target_group_arn)
}

/// The changes made while the fault is on.
pub async fn change_during(client: &Client, ns: &str, revision: &str) -> Result<(), BenchError> {
    Api::<Ingress>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &member(MEMBER_DURING, ns, 3))
        .await
        .map_err(kube_error("creating the third Ingress"))?;
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &nlb(NLB_DURING))
        .await
        .map_err(kube_error("creating the second NLB Service"))?;
    testing::start_rollout(client, ns, "web", revision).await;
    Ok(())
}

/// What still differs from converged (empty: converged): statuses, the rollout, and the
/// targets of every target group of the run (`target_groups`: their ARNs).
pub async fn not_converged(
    sandbox: &Sandbox,
    ns: &str,
    expect_members: usize,
    expect_nlbs: usize,
    target_groups: &[String],
) -> Vec<String> {
    let client = sandbox.client();
    let mut missing = Vec::new();
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    missing.extend(too_few_addressed(&ingresses, expect_members, "Ingresses").await);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    missing.extend(too_few_addressed(&services, expect_nlbs, "NLB Services").await);
    if !testing::rollout_complete(&client, ns, "web", REPLICAS).await {
        missing.push("the rollout is not complete".to_string());
    }
    let ready: BTreeSet<Ipv4Addr> = testing::ready_pods(&client, ns, "web")
        .await
        .iter()
        .filter_map(testing::pod_ip)
        .collect();
    if ready.len() != REPLICAS as usize {
        missing.push(format!("{}/{REPLICAS} pods Ready", ready.len()));
    }
    let Some(aws) = sandbox.aws() else {
        return vec!["no AWS emulator".to_string()];
    };
    for arn in target_groups {
        let Ok(targets) = aws.control().targets(arn).await else {
            missing.push(format!("targets of {arn} unreadable"));
            continue;
        };
        let serving: BTreeSet<Ipv4Addr> = targets
            .iter()
            .filter(|t| t.state != "draining")
            .filter_map(|t| t.id.parse().ok())
            .collect();
        let healthy = targets.iter().filter(|t| t.state == "healthy").count();
        if serving != ready || healthy != ready.len() {
            let name = arn.rsplit('/').nth(1).unwrap_or(arn);
            missing.push(format!(
                "target group {name}: {} registered, {healthy} healthy, {} pods Ready",
                serving.len(),
                ready.len()
            ));
        }
    }
    missing
}

/// What is missing when fewer than `expected` objects of `api` have an address in their status.
async fn too_few_addressed<K>(api: &Api<K>, expected: usize, what: &str) -> Option<String>
where
    K: StatusHostname + kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.list(&ListParams::default()).await {
        Ok(list) => {
            let with = list
                .items
                .iter()
                .filter(|o| o.status_hostname().is_some())
                .count();
            (with < expected).then(|| format!("{with}/{expected} {what} have an address"))
        }
        Err(err) => Some(format!("listing {what}: {err}")),
    }
}

/// Deletes the run's Ingresses, Services and binding, then its namespace.
pub async fn delete(client: &Client, ns: &str) -> Result<(), BenchError> {
    let params = DeleteParams::default();
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    ingresses
        .delete_collection(&params, &ListParams::default())
        .await
        .map_err(kube_error("deleting the Ingresses"))?;
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    for name in [NLB_BEFORE, NLB_DURING] {
        let _ = services.delete(name, &params).await;
    }
    let bindings: Api<TargetGroupBinding> = Api::namespaced(client.clone(), ns);
    let _ = bindings.delete("web", &params).await;
    // The finalizers go once AWS is clean; then the namespace.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let left = ingresses
            .list(&ListParams::default())
            .await
            .map(|l| l.items.len())
            .unwrap_or(1)
            + services
                .list(&ListParams::default())
                .await
                .map(|l| {
                    l.items
                        .iter()
                        .filter(|s| s.status_hostname().is_some())
                        .count()
                })
                .unwrap_or(1)
            + bindings
                .list(&ListParams::default())
                .await
                .map(|l| l.items.len())
                .unwrap_or(1);
        if left == 0 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(ns, &params).await;
    Ok(())
}
