//! The controller installed on a sandbox the way users install it: `helm template` of
//! `charts/lb-controller`, every rendered object applied server-side to the apiserver, and the
//! controller run as the chart's ServiceAccount (a token from the TokenRequest API, so the
//! rendered RBAC is what it may do) with the chart's webhook certificate, behind the chart's
//! webhook configurations as rendered (Service reference, caBundle and all).
//!
//! Two stand-ins, because the sandbox runs no container images:
//! - the Deployment is applied with 0 replicas; the controller runs as processes of the product
//!   binary, which play its pods ([`ControllerProcess`]);
//! - the webhook Service loses its pod selector, and an EndpointSlice per process points it at the
//!   host end of the pod network, where the processes listen. The apiserver reaches webhooks
//!   through a Service's endpoints (`--enable-aggregator-routing`) with the Service's DNS name as
//!   TLS name, exactly what the chart's certificate is made for.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use lb_sandbox::{Sandbox, SandboxError, helm, manifests};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::harness::{HarnessError, write_file as write};

/// The release as the tests install it: name and namespace as in the chart's README.
pub const RELEASE: &str = "lb-controller";
pub const NAMESPACE: &str = "kube-system";

/// `charts/lb-controller` of this checkout.
pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/lb-controller")
}

fn manifest(e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Sandbox(SandboxError::Manifest(e.to_string()))
}

/// `helm <args>` on the chart (lint, template with other flags): its output or its error.
pub fn helm(args: &[&str]) -> Result<String, HarnessError> {
    let helm = helm::ensure()?;
    Ok(helm::run(&helm, &chart_dir(), args)?)
}

/// `helm template` of the chart with `--set` values and `--set-file` values (CRDs included).
pub fn render(sets: &[(&str, &str)], files: &[(&str, &Path)]) -> Result<String, HarnessError> {
    let helm = helm::ensure()?;
    let chart = chart_dir();
    let chart = chart.to_string_lossy();
    let sets: Vec<String> = sets.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut args = vec![
        "template",
        RELEASE,
        &chart,
        "--namespace",
        NAMESPACE,
        "--include-crds",
    ];
    let files: Vec<String> = files
        .iter()
        .map(|(k, path)| format!("{k}={}", path.display()))
        .collect();
    for set in &sets {
        args.extend(["--set", set.as_str()]);
    }
    for file in &files {
        args.extend(["--set-file", file.as_str()]);
    }
    Ok(helm::run(&helm, Path::new("."), &args)?)
}

/// The rendered documents, as JSON values (empty documents left out).
pub fn documents(rendered: &str) -> Result<Vec<Value>, HarnessError> {
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(rendered) {
        let value = Value::deserialize(document).map_err(manifest)?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// What an installed release gives the controller's processes.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The webhook's serving certificate and key from the chart's Secret (`tls.crt`, `tls.key`).
    pub cert_dir: PathBuf,
    /// A kubeconfig with the ServiceAccount's token.
    pub kubeconfig: PathBuf,
    /// The ServiceAccount's name.
    pub service_account: String,
}

/// Applies the rendered chart to the sandbox (with the two stand-ins above) and prepares what a
/// controller process needs: the certificate files and the ServiceAccount's kubeconfig.
pub async fn install(sandbox: &Sandbox, rendered: &str) -> Result<Installed, HarnessError> {
    let client = sandbox.client();
    let mut documents = documents(rendered)?;
    // CRDs first, and usable, before the objects of their kinds.
    documents.sort_by_key(|d| d["kind"] != "CustomResourceDefinition");
    let mut secret = None;
    let mut service_account = None;
    for mut document in documents {
        match document["kind"].as_str() {
            Some("Deployment") => document["spec"]["replicas"] = json!(0),
            Some("Service")
                if document["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("-webhook-service")) =>
            {
                document["spec"]["selector"] = Value::Null;
            }
            Some("Secret") => secret = Some(document.clone()),
            Some("ServiceAccount") => {
                service_account = document["metadata"]["name"].as_str().map(String::from);
            }
            _ => {}
        }
        let crd = document["kind"] == "CustomResourceDefinition";
        manifests::apply_value(&client, document, NAMESPACE).await?;
        if crd {
            crate::harness::wait_for_crds(&client).await?;
        }
    }
    let secret: Secret = serde_json::from_value(secret.ok_or_else(|| manifest("no TLS Secret"))?)
        .map_err(manifest)?;
    let service_account = service_account.ok_or_else(|| manifest("no ServiceAccount"))?;
    let cert_dir = sandbox.dir().join("chart-webhook-certs");
    let data = secret.data.unwrap_or_default();
    for file in ["tls.crt", "tls.key", "ca.crt"] {
        let bytes = data
            .get(file)
            .ok_or_else(|| manifest(format!("the TLS Secret has no {file}")))?;
        write(&cert_dir.join(file), &bytes.0)?;
    }
    let kubeconfig = service_account_kubeconfig(sandbox, &service_account).await?;
    wait_for_rbac(&kubeconfig).await?;
    Ok(Installed {
        cert_dir,
        kubeconfig,
        service_account,
    })
}

/// A kubeconfig for the sandbox apiserver with a token of `service_account` (TokenRequest API,
/// valid for a day): every request the controller makes is authorized by the chart's RBAC.
async fn service_account_kubeconfig(
    sandbox: &Sandbox,
    service_account: &str,
) -> Result<PathBuf, HarnessError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(sandbox.client(), NAMESPACE);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(86_400),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let token = accounts
        .create_token_request(service_account, &PostParams::default(), &request)
        .await
        .map_err(|source| HarnessError::Kube {
            context: "requesting the ServiceAccount's token",
            source,
        })?
        .status
        .map(|s| s.token)
        .ok_or_else(|| manifest("the TokenRequest came back without a token"))?;
    let ca = sandbox.dir().join("chart-apiserver-ca.crt");
    write(&ca, sandbox.pki().ca_pem().as_bytes())?;
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": {"server": sandbox.api_url(), "certificate-authority": ca}}],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "sandbox", "user": service_account}}],
        "current-context": "sa",
    });
    let path = sandbox.dir().join("chart-sa.kubeconfig");
    write(
        &path,
        serde_yaml_ng::to_string(&kubeconfig)
            .map_err(manifest)?
            .as_bytes(),
    )?;
    Ok(path)
}

/// Waits until the ServiceAccount may list what the controller watches: the apiserver's RBAC
/// cache follows the new ClusterRoleBinding a moment after it is written, and a controller started
/// before would spend its first watches' backoff on 403s.
async fn wait_for_rbac(kubeconfig: &Path) -> Result<(), HarnessError> {
    let config = lb_sandbox::control_plane::load_kubeconfig(kubeconfig).await?;
    let client = kube::Client::try_from(config).map_err(|source| HarnessError::Kube {
        context: "building the ServiceAccount's client",
        source,
    })?;
    let listing = kube::api::ListParams::default().limit(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pods = Api::<k8s_openapi::api::core::v1::Pod>::all(client.clone())
            .list(&listing)
            .await;
        let bindings = Api::<lb_api::TargetGroupBinding>::all(client.clone())
            .list(&listing)
            .await;
        match (pods, bindings) {
            (Ok(_), Ok(_)) => return Ok(()),
            (Err(source), _) | (_, Err(source)) if Instant::now() > deadline => {
                return Err(HarnessError::Kube {
                    context: "listing as the chart's ServiceAccount",
                    source,
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Points the chart's webhook Service at the processes listening on `ports` of the host end of
/// the pod network: one EndpointSlice per process (a slice carries one port set).
pub async fn point_webhook_service(sandbox: &Sandbox, ports: &[u16]) -> Result<(), HarnessError> {
    let service = format!("{RELEASE}-webhook-service");
    let slices: Api<k8s_openapi::api::discovery::v1::EndpointSlice> =
        Api::namespaced(sandbox.client(), NAMESPACE);
    for (index, port) in ports.iter().enumerate() {
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{service}-process-{index}"), "namespace": NAMESPACE,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [sandbox.host_address().to_string()], "conditions": {"ready": true}}],
            "ports": [{"name": "webhook-server", "port": port, "protocol": "TCP"}],
        });
        manifests::apply_value(&sandbox.client(), slice, NAMESPACE).await?;
    }
    // Slices of processes no longer listed (a restart with fewer processes).
    for index in ports.len()..8 {
        let _ = slices
            .delete(
                &format!("{service}-process-{index}"),
                &DeleteParams::default(),
            )
            .await;
    }
    Ok(())
}

/// One controller process: the product binary as one replica of the chart's Deployment would run
/// it (`run` with the chart's flags, the ServiceAccount's token, the chart's certificate).
pub struct ControllerProcess {
    pub name: String,
    child: tokio::process::Child,
    pub webhook_port: u16,
    pub metrics_port: u16,
    pub health_port: u16,
    pub log: PathBuf,
}

impl ControllerProcess {
    /// Starts replica `name`; it serves its webhooks on a port of its own.
    pub async fn start(
        binary: &Path,
        sandbox: &Sandbox,
        installed: &Installed,
        name: &str,
    ) -> Result<ControllerProcess, HarnessError> {
        let aws = sandbox.aws().ok_or(HarnessError::NoAws)?;
        let free = lb_sandbox::ports::free_loopback_port;
        let (webhook_port, metrics_port, health_port) = (free()?, free()?, free()?);
        let endpoint = aws.endpoint().to_string();
        let endpoints = ["elasticloadbalancing", "ec2", "acm", "sts"]
            .map(|service| format!("{service}={endpoint}"))
            .join(",");
        let log = sandbox.dir().join(format!("controller-{name}.log"));
        let log_file = std::fs::File::create(&log).map_err(|source| HarnessError::Write {
            path: log.clone(),
            source,
        })?;
        let child = tokio::process::Command::new(binary)
            .arg("run")
            .arg(format!("--cluster-name={}", aws.cluster_name()))
            .arg(format!("--aws-region={}", aws.region()))
            .arg(format!("--aws-vpc-id={}", aws.seeded().vpc_id))
            .arg(format!("--aws-api-endpoints={endpoints}"))
            .arg(format!("--webhook-bind-port={webhook_port}"))
            .arg(format!(
                "--webhook-cert-dir={}",
                installed.cert_dir.display()
            ))
            .arg(format!("--metrics-bind-addr=127.0.0.1:{metrics_port}"))
            .arg(format!("--health-probe-bind-addr=127.0.0.1:{health_port}"))
            .arg("--enable-leader-election=true")
            .arg(format!("--leader-election-namespace={NAMESPACE}"))
            .arg("--log-format=json")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", &installed.kubeconfig)
            .env("POD_NAME", name)
            .env("POD_NAMESPACE", NAMESPACE)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "info,kube_client::client::builder=off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HarnessError::Exited(format!("starting {}: {e}", binary.display())))?;
        let process = ControllerProcess {
            name: name.to_string(),
            child,
            webhook_port,
            metrics_port,
            health_port,
            log,
        };
        let mut process = process;
        process.wait_ready(Duration::from_secs(60)).await?;
        Ok(process)
    }

    /// Waits for `/readyz` to answer 200 (caches synced, webhooks listening).
    async fn wait_ready(&mut self, within: Duration) -> Result<(), HarnessError> {
        let guard = lb_sandbox::guard::DestinationGuard::loopback_only();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.health_port));
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failed(&format!("exited ({status})")));
            }
            let answer =
                lb_sandbox::http_client::get(&guard, addr, "/readyz", Duration::from_secs(1)).await;
            if answer.is_ok_and(|a| a.status == 200) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self.failed("never answered /readyz"))
    }

    /// The error for a process that did not come up, with the end of its log.
    fn failed(&self, what: &str) -> HarnessError {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        HarnessError::Exited(format!(
            "{} {what}; the end of its log ({}):\n{}",
            self.name,
            self.log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }

    /// A counter or gauge of the process's `/metrics` (0 when absent or unreadable).
    pub async fn metric(&self, name: &str) -> f64 {
        let guard = lb_sandbox::guard::DestinationGuard::loopback_only();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.metrics_port));
        let Ok(answer) =
            lb_sandbox::http_client::get(&guard, addr, "/metrics", Duration::from_secs(2)).await
        else {
            return 0.0;
        };
        String::from_utf8_lossy(&answer.body)
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// kill -9: no shutdown, no Lease released.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM, as Kubernetes stops a pod; waits for the process to exit (at most `within`).
    pub async fn terminate(mut self, within: Duration) -> Option<std::process::ExitStatus> {
        if let Some(pid) = self.child.id() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// The holder of the leader Lease (`lb-controller-leader` in the release's namespace), if any.
pub async fn lease_holder(sandbox: &Sandbox) -> Option<String> {
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(sandbox.client(), NAMESPACE);
    leases
        .get_opt("lb-controller-leader")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}
