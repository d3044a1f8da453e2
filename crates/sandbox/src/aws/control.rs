//! What the Rust side can ask the emulator: its listeners with their local addresses and request
//! counts, and each target's health timeline (the plugin's control API, JSON on loopback).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, SandboxError};
use crate::guard::DestinationGuard;
use crate::http_client;

/// A listener of an emulated load balancer and the local address that carries its traffic.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ListenerInfo {
    pub load_balancer_arn: String,
    pub load_balancer_name: String,
    pub dns_name: String,
    #[serde(rename = "type")]
    pub load_balancer_type: String,
    pub listener_arn: String,
    pub protocol: String,
    pub port: u16,
    pub local_address: SocketAddr,
    /// HTTP: count per status code ("200", "503"); TCP: per outcome ("forwarded", "no_target").
    pub requests: BTreeMap<String, u64>,
}

/// One target of a target group, with every state it went through.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TargetInfo {
    pub id: String,
    pub port: u16,
    pub state: String,
    pub reason: Option<String>,
    /// Health checks run so far.
    pub checks: u64,
    /// Failed health checks so far, by reason code (`Target.Timeout`, ...).
    #[serde(default)]
    pub failed_checks: BTreeMap<String, u64>,
    pub timeline: Vec<HealthEvent>,
    /// Why the last health check was dropped by a security group (None: it was not).
    #[serde(default)]
    pub blocked: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct HealthEvent {
    /// Seconds since the Unix epoch.
    pub at: f64,
    pub state: String,
    pub reason: Option<String>,
}

/// A request through a listener: when, its status code (or TCP outcome), and the target.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RequestRecord(pub f64, pub String, pub Option<String>);

/// A target group in another account, as [`ControlClient::peer_target_group`] made it.
#[derive(Debug, Clone, Deserialize)]
pub struct PeerTargetGroup {
    pub target_group_arn: String,
    pub account: String,
    /// False when it existed already.
    pub created: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct ControlClient {
    addr: SocketAddr,
}

impl ControlClient {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr }
    }

    /// Where the control API listens (loopback).
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.get_within(path, Duration::from_secs(5)).await
    }

    async fn get_within<T: DeserializeOwned>(&self, path: &str, timeout: Duration) -> Result<T> {
        let response =
            http_client::get(&DestinationGuard::loopback_only(), self.addr, path, timeout).await?;
        self.answer(path, &response)
    }

    /// The JSON of a 200 answer to `path`; any other status is an error with the body.
    fn answer<T: DeserializeOwned>(
        &self,
        path: &str,
        response: &http_client::HttpResponse,
    ) -> Result<T> {
        let error = |message: String| SandboxError::Http {
            url: format!("http://{}{path}", self.addr),
            message: format!("status {}: {message}", response.status),
        };
        if response.status != 200 {
            return Err(error(String::from_utf8_lossy(&response.body).into_owned()));
        }
        serde_json::from_slice(&response.body).map_err(|e| error(e.to_string()))
    }

    /// The account's load balancers, target groups and the cluster VPC's security groups, in
    /// the shape of upstream's measured footprint (names where ELB and EC2 give ARNs and IDs).
    pub async fn footprint(&self) -> Result<serde_json::Value> {
        self.get_within("/footprint", Duration::from_secs(60)).await
    }

    /// Creates what `footprint` describes, with the calls upstream makes; `renames` maps a name
    /// of the footprint to the one to create (names that hash a Kubernetes UID). Returns the
    /// created names with their ARNs (security groups: IDs), by kind.
    pub async fn replay(
        &self,
        footprint: &serde_json::Value,
        renames: &BTreeMap<String, String>,
    ) -> Result<serde_json::Value> {
        let path = "/replay";
        let body = serde_json::json!({"footprint": footprint, "renames": renames});
        let response = http_client::post_json(
            &DestinationGuard::loopback_only(),
            self.addr,
            path,
            body.to_string().into_bytes(),
            Duration::from_secs(120),
        )
        .await?;
        self.answer(path, &response)
    }

    pub async fn healthy(&self) -> bool {
        self.get::<String>("/health").await.is_ok()
    }

    pub async fn listeners(&self) -> Result<Vec<ListenerInfo>> {
        self.get("/listeners").await
    }

    pub async fn targets(&self, target_group_arn: &str) -> Result<Vec<TargetInfo>> {
        self.get(&format!("/targets?target_group_arn={target_group_arn}"))
            .await
    }

    /// Requests through the listener since `since` (seconds since the epoch).
    pub async fn requests(&self, listener_arn: &str, since: f64) -> Result<Vec<RequestRecord>> {
        self.get(&format!(
            "/requests?listener_arn={listener_arn}&since={since}"
        ))
        .await
    }

    /// Makes target group `arn` exist in the account and region its ARN names: another account
    /// than the cluster's, reached by a binding's `iamRoleArnToAssume`. That account gets a VPC
    /// like the cluster's (as if peered), an ALB, and the target group with exactly this ARN.
    pub async fn peer_target_group(&self, arn: &str) -> Result<PeerTargetGroup> {
        self.get_within(
            &format!("/peer-target-group?arn={arn}"),
            Duration::from_secs(30),
        )
        .await
    }

    /// Throttles RegisterTargets, DeregisterTargets and DescribeTargetHealth to `per_second` calls
    /// a second (0: no throttling); calls beyond it are answered `Throttling`. Returns how many
    /// calls were refused so far.
    pub async fn set_throttle(&self, per_second: f64) -> Result<u64> {
        let answer: serde_json::Value = self
            .get(&format!("/throttle?per_second={per_second}"))
            .await?;
        Ok(answer["refused"].as_u64().unwrap_or(0))
    }

    /// Puts `addresses` on instance `instance_id`'s primary interface, as the VPC CNI's IP
    /// address manager does before its pods get them.
    pub async fn assign_addresses(&self, instance_id: &str, addresses: &[Ipv4Addr]) -> Result<()> {
        let path = "/interfaces/addresses";
        let body = serde_json::json!({"instance_id": instance_id, "addresses": addresses});
        let response = http_client::post_json(
            &DestinationGuard::loopback_only(),
            self.addr,
            path,
            body.to_string().into_bytes(),
            Duration::from_secs(10),
        )
        .await?;
        self.answer::<serde_json::Value>(path, &response)
            .map(|_| ())
    }

    /// Makes security group `id` (`sg-` and hex digits) exist in the cluster's VPC, without rules:
    /// a group of the user's that manifests name. Whether it was made now.
    pub async fn ensure_security_group(&self, id: &str) -> Result<bool> {
        let answer: serde_json::Value = self.get(&format!("/security-group?id={id}")).await?;
        Ok(answer["created"].as_bool().unwrap_or(false))
    }

    /// Turns security-group enforcement on or off (see the emulator's `network.py`).
    pub async fn enforce_security_groups(&self, enforce: bool) -> Result<()> {
        self.get::<serde_json::Value>(&format!("/security-groups?enforce={enforce}"))
            .await
            .map(|_| ())
    }

    /// The address the sandbox's clients stand for when a listener's security groups are
    /// checked (203.0.113.10 unless set).
    pub async fn set_client_address(&self, address: std::net::IpAddr) -> Result<()> {
        self.get::<serde_json::Value>(&format!("/security-groups?client_address={address}"))
            .await
            .map(|_| ())
    }

    /// Sets the data plane's routing lag: targets are routed by their state `lag` ago, as a real
    /// load balancer's nodes learn of registrations and deregistrations a little late.
    pub async fn set_routing_lag(&self, lag: Duration) -> Result<()> {
        self.get::<serde_json::Value>(&format!("/routing-lag?seconds={}", lag.as_secs_f64()))
            .await
            .map(|_| ())
    }
}
