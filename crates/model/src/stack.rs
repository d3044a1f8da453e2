//! The desired stack: what one Service (an NLB) or one Ingress group (an ALB) should have in AWS,
//! as plain values. Builders make it from Kubernetes objects; the deployer diffs it against what
//! exists (found by the ownership tags) and applies the difference. Target groups are referred to by
//! their resource id (stable across renames), not by ARN, which only exists once created.

use std::collections::BTreeMap;

use ipnet::IpNet;
use lb_api::TargetType;

/// AWS tag keys that say who owns a resource; nothing without them is ever modified or deleted.
pub mod tags {
    pub const CLUSTER: &str = "elbv2.k8s.aws/cluster";
    /// `service.k8s.aws/stack` = `<namespace>/<name>` for a Service's NLB.
    pub const SERVICE_STACK: &str = "service.k8s.aws/stack";
    /// `service.k8s.aws/resource` = `LoadBalancer`, `ManagedLBSecurityGroup` or a target group's id.
    pub const SERVICE_RESOURCE: &str = "service.k8s.aws/resource";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// `<namespace>/<name>` of the Service, or the Ingress group's name.
    pub id: String,
    pub load_balancer: LoadBalancer,
    /// Set when the controller manages the load balancer's frontend security group.
    pub managed_security_group: Option<ManagedSecurityGroup>,
    pub listeners: Vec<Listener>,
    pub target_groups: Vec<TargetGroup>,
    /// One per target group, same name: the TargetGroupBinding reconciler registers the targets.
    pub bindings: Vec<Binding>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalancerKind {
    Network,
    Application,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancer {
    pub name: String,
    pub kind: LoadBalancerKind,
    /// `internal` or `internet-facing`.
    pub scheme: String,
    /// `ipv4` or `dualstack`.
    pub ip_address_type: String,
    pub subnets: Vec<SubnetMapping>,
    /// Explicit security groups; empty with a managed one (see [`Stack::managed_security_group`]).
    pub security_groups: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetMapping {
    pub subnet_id: String,
    pub allocation_id: Option<String>,
    pub private_ipv4_address: Option<String>,
}

/// The frontend security group the controller creates for a load balancer: the listener ports
/// open to the source ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedSecurityGroup {
    pub name: String,
    pub ingress: Vec<IngressRule>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressRule {
    /// `tcp` or `udp`.
    pub protocol: String,
    pub port: u16,
    pub cidr: IpNet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    /// `TCP`, `UDP`, `TCP_UDP`, `TLS` (NLB); `HTTP`, `HTTPS` (ALB).
    pub protocol: String,
    pub certificates: Vec<String>,
    pub ssl_policy: Option<String>,
    pub alpn_policy: Option<String>,
    /// The resource id of the target group the listener forwards to.
    pub default_target_group: String,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    /// Stable id, `<namespace>/<service>:<port>`; tagged on the target group.
    pub resource_id: String,
    pub name: String,
    pub protocol: String,
    pub port: u16,
    pub target_type: TargetType,
    pub ip_address_type: String,
    pub health_check: HealthCheck,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// `TCP`, `HTTP` or `HTTPS`.
    pub protocol: String,
    /// `traffic-port` or a port number.
    pub port: String,
    /// HTTP(S) only.
    pub path: Option<String>,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
    pub timeout_seconds: i32,
    pub interval_seconds: i32,
    /// HTTP(S) only: the success codes.
    pub matcher: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub name: String,
    pub namespace: String,
    pub service_name: String,
    /// The Service port, by number.
    pub service_port: i32,
    pub target_group: String,
    pub target_type: TargetType,
    pub ip_address_type: String,
    pub node_selector: BTreeMap<String, String>,
    pub multi_cluster: bool,
}
