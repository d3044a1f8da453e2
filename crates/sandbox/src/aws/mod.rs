//! The sandbox's AWS: moto (pinned, in a venv) extended in-process by `lb_sandbox_aws` with real
//! target health checks and a data plane. The controller reaches it like AWS itself, through
//! `AWS_ENDPOINT_URL` and static credentials; nothing in the controller knows it is an emulator.

mod control;
pub mod elb_setup;
mod python;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use control::{
    CallCount, ControlClient, FaultKind, FaultRule, FaultState, HealthEvent, ListenerInfo,
    MutatingCall, PeerTargetGroup, RequestRecord, TargetInfo,
};
pub use python::ensure_venv;

use crate::addressing::{AddressPlan, ZONES, zone_name};
use crate::error::{Context, Result, SandboxError};
use crate::kubelet::nodes::SandboxNode;
use crate::process::ChildProcess;

/// Static test credentials; moto maps any key to its default account 123456789012.
pub const ACCESS_KEY_ID: &str = "testing";
pub const SECRET_ACCESS_KEY: &str = "testing";
/// The access key of the sandbox's own calls, which AWS faults never meet (`faults.py`'s
/// `EXEMPT_ACCESS_KEY`).
pub const OBSERVER_ACCESS_KEY_ID: &str = "sandbox-internal";

/// What the emulator is seeded with (see `lb_sandbox_aws/seed.py`).
#[derive(Debug, Serialize)]
struct EmulatorConfig<'a> {
    region: &'a str,
    cluster_name: &'a str,
    pod_cidr: String,
    subnets: Vec<SubnetConfig>,
    nodes: Vec<NodeConfig>,
    enforce_security_groups: bool,
}

#[derive(Debug, Serialize)]
struct SubnetConfig {
    zone: String,
    cidr: String,
}

#[derive(Debug, Serialize)]
struct NodeConfig {
    name: String,
    zone: String,
    address: String,
}

/// The emulator's addresses and the IDs of what it was seeded with.
#[derive(Debug, Clone, Deserialize)]
pub struct Seeded {
    /// The AWS endpoint (`AWS_ENDPOINT_URL`).
    pub endpoint: String,
    /// The control API of the plugin.
    pub control: String,
    pub vpc_id: String,
    /// Subnet ID by zone name.
    pub subnets: BTreeMap<String, String>,
    /// The cluster security group, as EKS makes it (admits only itself; on every node's
    /// interface).
    pub cluster_security_group_id: String,
    /// A group open to every client on every TCP port: the frontend of load balancers made by
    /// hand ([`elb_setup`]).
    pub frontend_security_group_id: String,
    /// EC2 instance ID by node name; the nodes' `providerID`s use them.
    pub instances: BTreeMap<String, String>,
    /// An issued ACM certificate for `*.example.com` (and `*.elb.amazonaws.com`), imported with
    /// its key: TLS listeners with it terminate TLS.
    pub certificate_arn: String,
    /// The CA that issued it (PEM): what a TLS client of the emulator trusts.
    pub certificate_ca_pem: String,
}

pub struct AwsEmulator {
    child: ChildProcess,
    seeded: Seeded,
    control: ControlClient,
    region: String,
    cluster_name: String,
}

impl AwsEmulator {
    /// Starts moto with the plugin and seeds it for `nodes` on the `plan`'s VPC.
    pub async fn start(
        dir: &Path,
        plan: &AddressPlan,
        nodes: &[SandboxNode],
        region: &str,
        cluster_name: &str,
        enforce_security_groups: bool,
    ) -> Result<AwsEmulator> {
        let python = tokio::task::spawn_blocking(python::ensure_venv)
            .await
            .map_err(|e| SandboxError::Config(format!("venv task failed: {e}")))??;
        let plugin_path = python::write_package(&dir.join("aws-plugin"))?;
        let config = EmulatorConfig {
            region,
            cluster_name,
            pod_cidr: plan.cidr().to_string(),
            subnets: (0..ZONES)
                .map(|zone| SubnetConfig {
                    zone: zone_name(region, zone),
                    cidr: plan.zone_subnet(zone).to_string(),
                })
                .collect(),
            nodes: nodes
                .iter()
                .map(|n| NodeConfig {
                    name: n.name.clone(),
                    zone: n.zone.clone(),
                    address: n.address.to_string(),
                })
                .collect(),
            enforce_security_groups,
        };
        let config_path = dir.join("aws-config.json");
        let config_text = serde_json::to_string_pretty(&config)
            .map_err(|e| SandboxError::Config(format!("encoding the emulator config: {e}")))?;
        std::fs::write(&config_path, config_text)
            .context(|| format!("writing {}", config_path.display()))?;
        let ready_path = dir.join("aws-ready.json");
        let plugin_path = plugin_path.to_string_lossy().into_owned();
        let mut child = ChildProcess::spawn_with_env(
            "moto",
            &python,
            [
                "-m".to_string(),
                "lb_sandbox_aws".to_string(),
                format!("--config={}", config_path.display()),
                format!("--ready-file={}", ready_path.display()),
            ],
            &[
                ("PYTHONPATH", plugin_path.as_str()),
                ("PYTHONUNBUFFERED", "1"),
                // ACM certificates requested by DNS validation are issued at once.
                ("MOTO_ACM_VALIDATION_WAIT", "0"),
            ],
            &dir.join("moto.log"),
        )?;
        let seeded = wait_for_ready_file(&mut child, &ready_path, Duration::from_secs(90)).await?;
        let control_addr: SocketAddr = seeded
            .control
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| {
                SandboxError::Config(format!("control address {}: {e}", seeded.control))
            })?;
        Ok(AwsEmulator {
            child,
            seeded,
            control: ControlClient::new(control_addr),
            region: region.to_string(),
            cluster_name: cluster_name.to_string(),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.seeded.endpoint
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The cluster name the emulated account is tagged for (`--cluster-name`).
    pub fn cluster_name(&self) -> &str {
        &self.cluster_name
    }

    pub fn seeded(&self) -> &Seeded {
        &self.seeded
    }

    pub fn control(&self) -> ControlClient {
        self.control
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.exited() {
            Some(status) => Err(self.child.exited_error(status)),
            None => Ok(()),
        }
    }

    /// The environment a controller process needs to talk to this emulator as to AWS.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.seeded.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
            ("AWS_REGION", self.region.as_str()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// An AWS SDK configuration pointing at the emulator, for the controllers tests run, and
    /// for tests and benchmarks that act as a user would: the fault rules (`ControlClient::set_faults`) apply to
    /// its calls.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        self.sdk_config_as(ACCESS_KEY_ID).await
    }

    /// [`Self::sdk_config`] for the sandbox's own look into AWS (what tests set up by hand and
    /// check): the fault rules never apply to its calls (the emulator's `faults.py` lets its access
    /// key through).
    pub async fn observer_sdk_config(&self) -> aws_config::SdkConfig {
        self.sdk_config_as(OBSERVER_ACCESS_KEY_ID).await
    }

    async fn sdk_config_as(&self, access_key_id: &str) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(self.region.clone()))
            .endpoint_url(self.seeded.endpoint.clone())
            .credentials_provider(aws_credential_types::Credentials::new(
                access_key_id,
                SECRET_ACCESS_KEY,
                None,
                None,
                "lb-sandbox",
            ))
            .load()
            .await
    }

    /// The local address of the listener on `port` of the load balancer named `dns_name`, once the
    /// data plane serves it (it picks up new listeners within a fraction of a second).
    pub async fn listener_address(&self, dns_name: &str, port: u16) -> Result<SocketAddr> {
        let started = Instant::now();
        loop {
            let listeners = self.control.listeners().await?;
            if let Some(found) = listeners
                .iter()
                .find(|l| l.dns_name == dns_name && l.port == port)
            {
                return Ok(found.local_address);
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(SandboxError::Config(format!(
                    "no data-plane listener for {dns_name}:{port}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stop(&mut self) {
        self.child.stop(Duration::from_secs(2));
    }
}

async fn wait_for_ready_file(
    child: &mut ChildProcess,
    path: &Path,
    timeout: Duration,
) -> Result<Seeded> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.exited() {
            return Err(child.exited_error(status));
        }
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text)
                .map_err(|e| SandboxError::Config(format!("reading {}: {e}", path.display())));
        }
        if started.elapsed() > timeout {
            return Err(child.not_ready_error(timeout));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
