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
/// the response as text, read until the pod has named itself or the connection ends.
pub async fn tls_get(
    sandbox: &Sandbox,
    addr: std::net::SocketAddr,
    ca_pem: &str,
    server_name: &str,
    path: &str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::{self, pki_types::ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = sandbox
        .guard()
        .connect(addr, Duration::from_secs(10))
        .await
        .unwrap();
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let limit = Duration::from_secs(10);
    let mut tls = tokio::time::timeout(limit, connector.connect(name, tcp))
        .await
        .expect("TLS handshake in time")
        .expect("TLS handshake with the NLB");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    // Read until the pod has named itself (the relay may keep the connection open).
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("status=") {
        match tokio::time::timeout(limit, tls.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => response.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&response).to_string()
}
