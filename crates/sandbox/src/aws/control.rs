//! What the Rust side can ask the emulator: its listeners with their local addresses and request
//! counts, and each target's health timeline (the plugin's control API, JSON on loopback).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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

/// What an AWS call meets (the emulator's `faults.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Answered as AWS answers a caller over its rate; the work is not done.
    Throttle,
    /// A server error (500); the work is not done.
    Error,
    /// The call waits `seconds`, then runs.
    Latency,
    /// The call runs, its answer never arrives: held `seconds`, then the connection is closed.
    Lose,
    /// The call runs and answers, then the whole endpoint pauses until resumed.
    Pause,
}

/// One fault rule: calls matching `operation` (`service:Operation`, `service:*`, `*`; the service
/// as SigV4 names it: `elasticloadbalancing`, `ec2`, `acm`, `sts`) meet `kind`, a `share` of
/// them, at most `times` times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    pub operation: String,
    pub kind: FaultKind,
    pub share: f64,
    pub times: Option<u64>,
    pub seconds: f64,
    /// Only calls that change something (not Describe*, List*, Get*).
    pub mutating: bool,
    /// How many calls met it so far (answers only).
    #[serde(default, skip_serializing)]
    pub injected: u64,
}

impl FaultRule {
    /// Every matching call meets `kind` (seconds: 1 s latency, 12 s hold of a lost answer).
    pub fn new(operation: &str, kind: FaultKind) -> FaultRule {
        FaultRule {
            operation: operation.to_string(),
            kind,
            share: 1.0,
            times: None,
            seconds: if kind == FaultKind::Lose { 12.0 } else { 1.0 },
            mutating: false,
            injected: 0,
        }
    }

    pub fn share(mut self, share: f64) -> FaultRule {
        self.share = share;
        self
    }

    pub fn times(mut self, times: u64) -> FaultRule {
        self.times = Some(times);
        self
    }

    pub fn seconds(mut self, seconds: f64) -> FaultRule {
        self.seconds = seconds;
        self
    }

    pub fn mutating_only(mut self) -> FaultRule {
        self.mutating = true;
        self
    }
}

/// Calls of one operation and how many met a fault.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CallCount {
    pub calls: u64,
    pub injected: u64,
}

/// A mutating call, in the order they came, with what it met (`ok` or the fault's kind).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct MutatingCall {
    /// When it was let through (Unix seconds).
    pub at: f64,
    /// When it arrived: earlier than `at` when it waited out a pause.
    pub arrived: f64,
    pub call: String,
    pub met: String,
}

/// The faults in force and what the calls met.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct FaultState {
    pub paused: bool,
    pub rules: Vec<FaultRule>,
    pub calls: BTreeMap<String, CallCount>,
    pub mutating: Vec<MutatingCall>,
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

    /// Replaces the AWS fault rules (empty: none) and reseeds the generator that picks a
    /// rule's share of calls.
    pub async fn set_faults(&self, rules: &[FaultRule], seed: u64) -> Result<FaultState> {
        let path = "/faults";
        let body = serde_json::json!({"rules": rules, "seed": seed});
        let response = http_client::post_json(
            &DestinationGuard::loopback_only(),
            self.addr,
            path,
            body.to_string().into_bytes(),
            Duration::from_secs(5),
        )
        .await?;
        self.answer(path, &response)
    }

    /// The fault rules in force, the pause, and what the calls met.
    pub async fn faults(&self) -> Result<FaultState> {
        self.get("/faults").await
    }

    /// Pauses the whole AWS endpoint (every call waits) or resumes it.
    pub async fn pause_aws(&self, paused: bool) -> Result<FaultState> {
        self.get(&format!("/faults/pause?on={paused}")).await
    }

    /// Forgets the counts of calls and the log of mutating calls.
    pub async fn reset_fault_counts(&self) -> Result<FaultState> {
        self.get("/faults/reset").await
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
