//! etcd, kube-apiserver and kube-controller-manager as child processes on 127.0.0.1.
//!
//! The apiserver serves TLS with a certificate of the sandbox CA, authorizes with RBAC, signs
//! service-account tokens, and has the admission webhooks on, so it can call a webhook served on
//! `https://127.0.0.1:PORT`. The controller manager runs only the controllers the sandbox needs for
//! Deployments to roll out for real: deployment, replicaset, endpointslice, namespace, garbage
//! collector and service accounts. There is no scheduler and no kubelet: the sandbox's node agent
//! binds pods and plays the kubelet.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::binaries::Binaries;
use crate::error::{Context, Result, SandboxError};
use crate::guard::DestinationGuard;
use crate::http_client;
use crate::pki::{Pki, PkiFiles};
use crate::ports::free_loopback_port;
use crate::process::{ChildProcess, log_says_address_in_use};

/// ClusterIPs are allocated from here; nothing ever connects to them.
const SERVICE_CIDR: &str = "10.96.0.0/16";
const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);
const PORT_ATTEMPTS: usize = 3;
const CONTROLLERS: &str = "deployment-controller,replicaset-controller,endpointslice-controller,\
namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller";

pub struct ControlPlane {
    // Field order is stop order on drop: the controller manager, the apiserver, then etcd.
    controller_manager: ChildProcess,
    apiserver: ChildProcess,
    etcd: ChildProcess,
    pki: Pki,
    kubeconfig: PathBuf,
    api_port: u16,
    etcd_port: u16,
    config: Config,
    binaries: Binaries,
    dir: PathBuf,
}

impl ControlPlane {
    pub async fn start(binaries: &Binaries, dir: &Path) -> Result<ControlPlane> {
        let pki = Pki::generate(dir, KUBERNETES_SERVICE_IP)?;
        let (etcd, etcd_port) = start_etcd(binaries, dir).await?;
        let (apiserver, api_port, kubeconfig, config) =
            start_apiserver(binaries, dir, &pki.files, etcd_port).await?;
        let controller_manager =
            start_controller_manager(binaries, dir, &pki.files, &kubeconfig, &config).await?;
        Ok(ControlPlane {
            controller_manager,
            apiserver,
            etcd,
            pki,
            kubeconfig,
            api_port,
            etcd_port,
            config,
            binaries: binaries.clone(),
            dir: dir.to_path_buf(),
        })
    }

    /// Stops kube-apiserver (SIGTERM, as a node drain or an upgrade stops it), keeps it down for
    /// `down`, and starts it again on the same port; returns when it is ready. Watches break and
    /// every client meets refused connections meanwhile, as in a control-plane restart.
    pub async fn restart_apiserver(&mut self, down: Duration) -> Result<()> {
        self.apiserver.stop(Duration::from_secs(10));
        tokio::time::sleep(down).await;
        let (mut child, (client, _)) = spawn_apiserver(
            &self.binaries,
            &self.dir,
            &self.pki.files,
            self.etcd_port,
            self.api_port,
        )
        .await?;
        let result = wait_ready(&mut child, Duration::from_secs(60), async || {
            apiserver_ready(&client).await
        })
        .await;
        self.apiserver = child;
        result
    }

    /// Stops (SIGSTOP) or continues (SIGCONT) etcd: while stopped, the apiserver's reads and
    /// writes hang until its own timeouts, as when etcd loses its quorum.
    pub fn pause_etcd(&self, paused: bool) -> Result<()> {
        let signal = if paused {
            nix::sys::signal::Signal::SIGSTOP
        } else {
            nix::sys::signal::Signal::SIGCONT
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.etcd.pid()).unwrap_or(i32::MAX));
        nix::sys::signal::kill(pid, signal)
            .map_err(std::io::Error::from)
            .context(|| format!("sending {signal} to etcd"))
    }

    pub fn config(&self) -> Config {
        self.config.clone()
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn api_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.api_port)
    }

    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    pub fn child_pids(&self) -> Vec<u32> {
        vec![
            self.etcd.pid(),
            self.apiserver.pid(),
            self.controller_manager.pid(),
        ]
    }

    /// Fails with the child's log tail if any control-plane process has died.
    pub fn check_alive(&mut self) -> Result<()> {
        for child in [
            &mut self.etcd,
            &mut self.apiserver,
            &mut self.controller_manager,
        ] {
            if let Some(status) = child.exited() {
                return Err(child.exited_error(status));
            }
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        self.controller_manager.stop(Duration::from_secs(5));
        self.apiserver.stop(Duration::from_secs(5));
        self.etcd.stop(Duration::from_secs(5));
    }
}

/// Polls `ready` until it says yes, the child dies, or `timeout` passes.
async fn wait_ready(
    child: &mut ChildProcess,
    timeout: Duration,
    mut ready: impl AsyncFnMut() -> bool,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.exited() {
            return Err(child.exited_error(status));
        }
        if ready().await {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(child.not_ready_error(timeout));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a child on freshly picked loopback ports and waits until `ready`; starts it again on
/// new ports if its log says one was taken in between (a port is never assumed to stay free).
/// `spawn` returns the child and whatever `ready` needs to ask it (a client, an address).
async fn start_on_free_ports<S>(
    name: &str,
    ports_needed: usize,
    timeout: Duration,
    mut spawn: impl AsyncFnMut(&[u16]) -> Result<(ChildProcess, S)>,
    ready: impl AsyncFn(&S) -> bool,
) -> Result<(ChildProcess, Vec<u16>, S)> {
    let mut last_error = None;
    for _ in 0..PORT_ATTEMPTS {
        let ports = (0..ports_needed)
            .map(|_| free_loopback_port())
            .collect::<Result<Vec<u16>>>()?;
        let (mut child, state) = spawn(&ports).await?;
        match wait_ready(&mut child, timeout, async || ready(&state).await).await {
            Ok(()) => return Ok((child, ports, state)),
            Err(err) if log_says_address_in_use(child.log_path()) => {
                tracing::warn!(
                    name,
                    ?ports,
                    "a port was taken before {name} bound it; retrying"
                );
                child.stop(Duration::from_secs(2));
                last_error = Some(err);
            }
            Err(err) => return Err(err),
        }
    }
    Err(last_error.unwrap_or_else(|| SandboxError::Config(format!("{name}: no free port"))))
}

async fn start_etcd(binaries: &Binaries, dir: &Path) -> Result<(ChildProcess, u16)> {
    let data_dir = dir.join("etcd-data");
    let log = dir.join("etcd.log");
    let spawn = async |ports: &[u16]| {
        let client = format!("http://127.0.0.1:{}", ports[0]);
        let peer = format!("http://127.0.0.1:{}", ports[1]);
        let child = ChildProcess::spawn(
            "etcd",
            &binaries.etcd,
            [
                "--name=sandbox".to_string(),
                format!("--data-dir={}", data_dir.display()),
                format!("--listen-client-urls={client}"),
                format!("--advertise-client-urls={client}"),
                format!("--listen-peer-urls={peer}"),
                format!("--initial-advertise-peer-urls={peer}"),
                format!("--initial-cluster=sandbox={peer}"),
                // A throwaway cluster: durability buys nothing and costs seconds.
                "--unsafe-no-fsync=true".to_string(),
                "--log-level=warn".to_string(),
            ],
            &log,
        )?;
        Ok((child, SocketAddr::from((Ipv4Addr::LOCALHOST, ports[0]))))
    };
    let (child, ports, _) =
        start_on_free_ports("etcd", 2, Duration::from_secs(30), spawn, etcd_healthy).await?;
    Ok((child, ports[0]))
}

async fn etcd_healthy(addr: &SocketAddr) -> bool {
    match http_client::get(
        &DestinationGuard::loopback_only(),
        *addr,
        "/health",
        Duration::from_secs(1),
    )
    .await
    {
        Ok(response) => {
            response.status == 200
                && String::from_utf8_lossy(&response.body).contains("\"health\":\"true\"")
        }
        Err(_) => false,
    }
}

async fn start_apiserver(
    binaries: &Binaries,
    dir: &Path,
    pki: &PkiFiles,
    etcd_port: u16,
) -> Result<(ChildProcess, u16, PathBuf, Config)> {
    let spawn =
        async |ports: &[u16]| spawn_apiserver(binaries, dir, pki, etcd_port, ports[0]).await;
    let (child, ports, (_, config)) = start_on_free_ports(
        "kube-apiserver",
        1,
        Duration::from_secs(60),
        spawn,
        async |(client, _): &(Client, Config)| apiserver_ready(client).await,
    )
    .await?;
    Ok((child, ports[0], dir.join("kubeconfig"), config))
}

/// Spawns kube-apiserver on `port` and writes the admin kubeconfig; returns a client of it.
async fn spawn_apiserver(
    binaries: &Binaries,
    dir: &Path,
    pki: &PkiFiles,
    etcd_port: u16,
    port: u16,
) -> Result<(ChildProcess, (Client, Config))> {
    let log = dir.join("kube-apiserver.log");
    let kubeconfig = dir.join("kubeconfig");
    let child = ChildProcess::spawn(
        "kube-apiserver",
        &binaries.kube_apiserver,
        [
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".to_string(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", dir.display()),
            format!("--tls-cert-file={}", pki.server_cert.display()),
            format!("--tls-private-key-file={}", pki.server_key.display()),
            format!("--client-ca-file={}", pki.ca_cert.display()),
            "--authorization-mode=RBAC".to_string(),
            "--service-account-issuer=https://kubernetes.default.svc".to_string(),
            format!(
                "--service-account-key-file={}",
                pki.service_account_public_key.display()
            ),
            format!(
                "--service-account-signing-key-file={}",
                pki.service_account_key.display()
            ),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            // The apiserver would publish 127.0.0.1 as the `kubernetes` endpoint, which
            // EndpointSlice validation rejects; nothing in the sandbox needs that endpoint.
            "--endpoint-reconciler-type=none".to_string(),
            // Webhooks behind a Service are reached at an endpoint of the Service, not its
            // ClusterIP (the sandbox has no kube-proxy): the chart's webhook configurations
            // then work as rendered, TLS name and all.
            "--enable-aggregator-routing=true".to_string(),
            "--profiling=false".to_string(),
            "--v=1".to_string(),
        ],
        &log,
    )?;
    let server = format!("https://127.0.0.1:{port}");
    std::fs::write(&kubeconfig, render_kubeconfig(&server, pki))
        .context(|| format!("writing {}", kubeconfig.display()))?;
    let config = load_kubeconfig(&kubeconfig).await?;
    let client = Client::try_from(config.clone())
        .context(|| "building a client for the sandbox apiserver".into())?;
    Ok((child, (client, config)))
}

async fn apiserver_ready(client: &Client) -> bool {
    let Ok(request) = hyper::Request::get("/readyz").body(Vec::new()) else {
        return false;
    };
    matches!(client.request_text(request).await, Ok(text) if text.trim() == "ok")
}

async fn start_controller_manager(
    binaries: &Binaries,
    dir: &Path,
    pki: &PkiFiles,
    kubeconfig: &Path,
    config: &Config,
) -> Result<ChildProcess> {
    let mut child = ChildProcess::spawn(
        "kube-controller-manager",
        &binaries.kube_controller_manager,
        [
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--controllers={CONTROLLERS}"),
            "--leader-elect=false".to_string(),
            "--use-service-account-credentials=false".to_string(),
            format!(
                "--service-account-private-key-file={}",
                pki.service_account_key.display()
            ),
            format!("--root-ca-file={}", pki.ca_cert.display()),
            // No serving port: nothing scrapes it, and a port is one more thing to collide.
            "--secure-port=0".to_string(),
            // Rollouts in benchmarks create and delete pods quickly; don't let client-side
            // throttling of the controller manager be what we measure.
            "--kube-api-qps=200".to_string(),
            "--kube-api-burst=400".to_string(),
            "--v=1".to_string(),
        ],
        &dir.join("kube-controller-manager.log"),
    )?;
    // The service-account controller creating `default/default` shows the controllers run; pods
    // cannot be created in a namespace before its default service account exists.
    let client = Client::try_from(config.clone())
        .context(|| "building a client for the sandbox apiserver".into())?;
    let accounts: Api<ServiceAccount> = Api::namespaced(client, "default");
    wait_ready(&mut child, Duration::from_secs(60), async || {
        matches!(accounts.get_opt("default").await, Ok(Some(_)))
    })
    .await?;
    Ok(child)
}

/// An admin kubeconfig pointing at the sandbox, with the PKI files by path.
pub fn render_kubeconfig(server: &str, pki: &PkiFiles) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: lb-sandbox
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: lb-sandbox-admin
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: lb-sandbox
  context:
    cluster: lb-sandbox
    user: lb-sandbox-admin
    namespace: default
current-context: lb-sandbox
",
        ca = pki.ca_cert.display(),
        cert = pki.admin_cert.display(),
        key = pki.admin_key.display(),
    )
}

pub async fn load_kubeconfig(path: &Path) -> Result<Config> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|source| SandboxError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    })?;
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| SandboxError::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rendered_kubeconfig_loads_with_kube() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path(), KUBERNETES_SERVICE_IP).unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            render_kubeconfig("https://127.0.0.1:6443", &pki.files),
        )
        .unwrap();
        let config = load_kubeconfig(&path).await.unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert_eq!(config.default_namespace, "default");
        assert!(config.root_cert.is_some());
    }
}
