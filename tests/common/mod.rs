//! What the integration tests of the controller share: a sandbox with the controller running (as
//! in a cluster: CRDs, webhooks, AWS through the emulator) and an ip target group behind an ALB.

#![allow(dead_code)] // Each test file uses its own part.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::Client as Elb;
use kube::Api;
use kube::api::PostParams;
use lb_api::TargetGroupBinding;
use lb_lab::harness::{ControllerHandle, start_controller};
use lb_sandbox::Sandbox;
use lb_sandbox::aws::elb_setup;
use lb_sandbox::testing::*;
use serde_json::json;

/// The target group an action forwards to (the first one of a weighted forward): its
/// `ForwardConfig`, as the controller sends it, or its `TargetGroupArn`.
pub fn forwarded_to(action: &aws_sdk_elasticloadbalancingv2::types::Action) -> Option<String> {
    action
        .forward_config()
        .and_then(|c| c.target_groups().first())
        .and_then(|g| g.target_group_arn())
        .or(action.target_group_arn())
        .map(str::to_string)
}

pub const GATE: &str = "target-health.alb.ingress.k8s.aws/web";
pub const INJECT: (&str, &str) = ("elbv2.k8s.aws/pod-readiness-gate-inject", "enabled");

pub struct World {
    pub sandbox: Sandbox,
    pub controller: Option<ControllerHandle>,
    pub elb: Elb,
    pub tg: String,
}

impl World {
    /// A sandbox, the controller, namespace `ns` (labelled for gates if `gated`), and an ip target
    /// group (health check every 2 s on /healthz) behind an ALB listener.
    pub async fn start(ns: &str, gated: bool) -> World {
        // RUST_LOG=lb_controller_core=debug shows the controller's decisions.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let sandbox = start_sandbox().await;
        let controller = start_controller(&sandbox).await.expect("controller starts");
        let labels: &[(&str, &str)] = if gated { &[INJECT] } else { &[] };
        sandbox.create_namespace(ns, labels).await.unwrap();
        let aws = sandbox.aws().unwrap();
        let elb = elb_setup::client(aws).await;
        let tg = elb_setup::web_alb(&elb, aws, "web", "/healthz", 2, 2)
            .await
            .unwrap()
            .target_group_arn;
        World {
            sandbox,
            controller: Some(controller),
            elb,
            tg,
        }
    }

    pub async fn stop_controller(&mut self) {
        if let Some(controller) = self.controller.take() {
            controller.stop().await;
        }
    }

    pub async fn start_controller(&mut self) {
        self.controller = Some(
            start_controller(&self.sandbox)
                .await
                .expect("controller starts"),
        );
    }

    pub fn client(&self) -> kube::Client {
        self.sandbox.client()
    }

    pub async fn bind(&self, ns: &str, service: &str) {
        self.bind_to(ns, service, &self.tg).await;
    }

    /// Binds `service` to target group `tg`.
    pub async fn bind_to(&self, ns: &str, service: &str, tg: &str) {
        let binding: TargetGroupBinding = serde_json::from_value(json!({
            "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
            "metadata": {"name": "web"},
            "spec": {"targetGroupARN": tg, "targetType": "ip", "serviceRef": {"name": service, "port": 80}},
        }))
        .unwrap();
        Api::<TargetGroupBinding>::namespaced(self.client(), ns)
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
    }

    /// Registered (not draining) targets as `ip:port`.
    pub async fn active_targets(&self) -> BTreeSet<String> {
        elb_setup::states(&self.elb, &self.tg)
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.state != "draining")
            .map(|t| format!("{}:{}", t.id, t.port))
            .collect()
    }

    pub async fn healthy_count(&self) -> usize {
        elb_setup::states(&self.elb, &self.tg)
            .await
            .unwrap()
            .iter()
            .filter(|t| t.state == "healthy")
            .count()
    }

    pub async fn pod_targets(&self, ns: &str) -> BTreeSet<String> {
        pods_of(&self.client(), ns, "web")
            .await
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| pod_ip(p).map(|ip| format!("{ip}:8080")))
            .collect()
    }

    pub async fn stop(mut self) {
        self.stop_controller().await;
        self.sandbox.shutdown().await;
    }
}

/// GET `path` over TLS through `addr`, trusting only `ca_pem`, for `server_name` (SNI and Host):
/// the response as text, or the failure.
pub async fn tls_get(
    sandbox: &Sandbox,
    addr: std::net::SocketAddr,
    ca_pem: &str,
    server_name: &str,
    path: &str,
) -> String {
    let limit = Duration::from_secs(10);
    match lb_lab::https::get(&sandbox.guard(), addr, ca_pem, server_name, path, limit).await {
        Ok(response) => response.text,
        Err(err) => format!("failed: {err}"),
    }
}

/// Logs to the test's output (printed only when the test fails): RUST_LOG, or the controller's
/// own story at info, so that a failure in CI says what the controller did.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "error,lb_controller_core=info,lb_controller=info,lb_aws=info",
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// (reason, message) of every Event about the object named `name` in `ns`.
pub async fn event_reasons(client: &kube::Client, ns: &str, name: &str) -> Vec<(String, String)> {
    Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

/// The ARN of the load balancer whose DNS name is `dns_name`.
pub async fn load_balancer_arn(elb: &Elb, dns_name: &str) -> String {
    elb.describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancers()
        .iter()
        .find(|l| l.dns_name() == Some(dns_name))
        .and_then(|l| l.load_balancer_arn())
        .unwrap_or_else(|| panic!("a load balancer named {dns_name}"))
        .to_string()
}

/// `status.loadBalancer.ingress[0].hostname` of Ingress `ns/name`, once it has one.
pub async fn ingress_hostname(client: &kube::Client, ns: &str, name: &str) -> Option<String> {
    status_hostname::<k8s_openapi::api::networking::v1::Ingress>(client, ns, name).await
}

/// `status.loadBalancer.ingress[0].hostname` of Service `ns/name`, once it has one.
pub async fn service_hostname(client: &kube::Client, ns: &str, name: &str) -> Option<String> {
    status_hostname::<k8s_openapi::api::core::v1::Service>(client, ns, name).await
}

async fn status_hostname<K>(client: &kube::Client, ns: &str, name: &str) -> Option<String>
where
    K: lb_lab::status_hostname::StatusHostname
        + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let object = Api::<K>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .ok()?;
    object.status_hostname()
}

/// How many load balancers the emulated account has.
pub async fn load_balancer_count(elb: &Elb) -> usize {
    elb.describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancers()
        .len()
}

/// Applies each manifest file (paths from the repository's root), objects without a namespace
/// in `default`.
pub async fn apply_files(client: &kube::Client, files: &[&str]) {
    for file in files {
        let yaml = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        lb_sandbox::manifests::apply_yaml(client, &yaml, "default")
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}
