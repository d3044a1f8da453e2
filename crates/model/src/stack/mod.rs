//! The desired stack: what one Service (an NLB) or one Ingress group (an ALB) should have in AWS,
//! as plain values. Builders make it from Kubernetes objects; the deployer diffs it against what
//! exists (found by the ownership tags) and applies the difference. Target groups are referred to by
//! their resource id (stable across renames), not by ARN, which only exists once created.

use std::collections::BTreeMap;

use ipnet::IpNet;
use lb_api::TargetType;

mod values;
pub use values::*;

/// `--default-ssl-policy` (upstream's default): TLS and HTTPS listeners without a policy of
/// their own.
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";

/// AWS tag keys that say who owns a resource; nothing without them is ever modified or deleted.
pub mod tags {
    pub const CLUSTER: &str = "elbv2.k8s.aws/cluster";
    /// `service.k8s.aws/stack` = `<namespace>/<name>` for a Service's NLB.
    pub const SERVICE_STACK: &str = "service.k8s.aws/stack";
    /// `service.k8s.aws/resource` = `LoadBalancer`, `ManagedLBSecurityGroup` or a target group's id.
    pub const SERVICE_RESOURCE: &str = "service.k8s.aws/resource";
    /// `ingress.k8s.aws/stack` = the Ingress group's name (`<namespace>/<name>` for an implicit
    /// group) for an ALB; the label of an explicit group's bindings too.
    pub const INGRESS_STACK: &str = lb_api::keys::ingress::STACK_LABEL;
    /// `ingress.k8s.aws/resource` = `LoadBalancer`, `ManagedLBSecurityGroup`, a listener's
    /// `<port>`, a rule's `<port>:<priority>` or a target group's id.
    pub const INGRESS_RESOURCE: &str = "ingress.k8s.aws/resource";
    /// `elbv2.k8s.aws/resource` = [`BACKEND_SG`] on the cluster's shared backend security group.
    pub const ELBV2_RESOURCE: &str = "elbv2.k8s.aws/resource";
    /// `gateway.k8s.aws.alb/stack` = `<namespace>/<name>` of an ALB Gateway.
    pub const GATEWAY_ALB_STACK: &str = "gateway.k8s.aws.alb/stack";
    /// `gateway.k8s.aws.alb/resource` = `LoadBalancer`, `ManagedLBSecurityGroup`, a listener's
    /// `<port>`, a rule's `<port>:<priority>` or a target group's id.
    pub const GATEWAY_ALB_RESOURCE: &str = "gateway.k8s.aws.alb/resource";
    pub const BACKEND_SG: &str = "backend-sg";
    /// The managed frontend security group's resource id.
    pub const MANAGED_SECURITY_GROUP: &str = "ManagedLBSecurityGroup";
    /// The load balancer's resource id.
    pub const LOAD_BALANCER: &str = "LoadBalancer";

    /// Keys of older controllers' tags (upstream's "legacy" keys, the `lb-controller.dev/` ones of
    /// this controller's earlier versions are not among them: those go) that are never changed or
    /// removed on a load balancer, target group or security group, as upstream leaves them.
    pub fn legacy(cluster: &str) -> [String; 7] {
        [
            format!("kubernetes.io/cluster/{cluster}"),
            "kubernetes.io/cluster-name".into(),
            "kubernetes.io/namespace".into(),
            "kubernetes.io/ingress-name".into(),
            "kubernetes.io/service-name".into(),
            "kubernetes.io/service-port".into(),
            "ingress.k8s.aws/cluster".into(),
        ]
    }
}

/// Descriptions upstream gives the security groups it creates (EC2 cannot change a description).
pub mod descriptions {
    pub const MANAGED_SECURITY_GROUP: &str = "[k8s] Managed SecurityGroup for LoadBalancer";
    pub const BACKEND_SECURITY_GROUP: &str = "[k8s] Shared Backend SecurityGroup for LoadBalancer";
}

/// Which controller half made a stack: the tag keys that say a resource is one stack's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackKind {
    /// A Service's NLB: `service.k8s.aws/stack`.
    Service,
    /// An Ingress group's ALB: `ingress.k8s.aws/stack`.
    Ingress,
    /// A Gateway's ALB: `gateway.k8s.aws.alb/stack`.
    AlbGateway,
}

impl StackKind {
    pub fn stack_tag(self) -> &'static str {
        match self {
            Self::Service => tags::SERVICE_STACK,
            Self::Ingress => tags::INGRESS_STACK,
            Self::AlbGateway => tags::GATEWAY_ALB_STACK,
        }
    }

    pub fn resource_tag(self) -> &'static str {
        match self {
            Self::Service => tags::SERVICE_RESOURCE,
            Self::Ingress => tags::INGRESS_RESOURCE,
            Self::AlbGateway => tags::GATEWAY_ALB_RESOURCE,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// `<namespace>/<name>` of the Service, or the Ingress group's name.
    pub id: String,
    pub kind: StackKind,
    pub load_balancer: LoadBalancer,
    /// Set when the controller manages the load balancer's frontend security group.
    pub managed_security_group: Option<ManagedSecurityGroup>,
    /// Whether the cluster's shared backend security group is attached (after the frontend
    /// ones): the source the targets' security groups admit (see the bindings' networking).
    pub backend_security_group: bool,
    pub listeners: Vec<Listener>,
    pub target_groups: Vec<TargetGroup>,
    /// One per target group, same name: the TargetGroupBinding reconciler registers the targets.
    pub bindings: Vec<Binding>,
    /// `--external-managed-tags`: keys someone else manages on these resources; never removed.
    pub external_managed_tags: Vec<String>,
    /// Ingress group members (`<namespace>/<name>`) whose annotations are broken: what they had
    /// stays until they are fixed (their target groups, known by their resource ids, and the
    /// rules that forward to them).
    pub held_members: Vec<String>,
}

impl Stack {
    /// Whether target group `resource_id` (`<ns>/<ingress>-<svc>:<port>`) is a held member's.
    /// An Ingress whose name begins with a held one's and a hyphen counts too: kept rather than
    /// lost.
    pub fn holds_target_group(&self, resource_id: &str) -> bool {
        self.held_members
            .iter()
            .any(|member| resource_id.starts_with(&format!("{member}-")))
    }
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
    pub scheme: Scheme,
    pub ip_address_type: IpAddressType,
    pub subnets: Vec<SubnetMapping>,
    /// The subnets were named by an annotation. Discovered ones are not forced on a load
    /// balancer that exists with the same scheme: it keeps its own, as upstream keeps them.
    pub subnets_named: bool,
    /// Why no subnet was discovered (none tagged for the scheme): no matter for a load balancer
    /// that exists (it keeps its own), the reason a new one cannot be made.
    pub subnets_problem: Option<String>,
    /// Explicit security groups (IDs, or names the controller resolves by their `Name` tag);
    /// empty with a managed one (see [`Stack::managed_security_group`]).
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
    pub source: RuleSource,
}

/// Who a frontend rule admits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuleSource {
    Cidr(IpNet),
    /// A managed prefix list (`pl-...`): `security-group-prefix-lists`.
    PrefixList(String),
}

impl std::fmt::Display for RuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleSource::Cidr(cidr) => write!(f, "{cidr}"),
            RuleSource::PrefixList(id) => f.write_str(id),
        }
    }
}

/// The sources of a managed group's rules: the CIDRs, then the prefix lists. Named prefix lists
/// alone admit only them: the default (everyone) holds only when neither is named.
pub fn rule_sources(
    named_cidrs: Option<&[IpNet]>,
    prefix_lists: &[String],
    everyone: &[IpNet],
) -> Vec<RuleSource> {
    let cidrs = match (named_cidrs, prefix_lists.is_empty()) {
        (Some(cidrs), _) => cidrs.to_vec(),
        (None, true) => everyone.to_vec(),
        (None, false) => Vec::new(),
    };
    cidrs
        .into_iter()
        .map(RuleSource::Cidr)
        .chain(prefix_lists.iter().cloned().map(RuleSource::PrefixList))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    /// `TCP`, `UDP`, `TCP_UDP`, `TLS` (NLB); `HTTP`, `HTTPS` (ALB).
    pub protocol: Protocol,
    pub certificates: Vec<String>,
    pub ssl_policy: Option<String>,
    pub alpn_policy: Option<String>,
    /// What a request no rule matches gets (an NLB listener has nothing else).
    pub default_action: Action,
    /// ALB only: the rules in the order ELB evaluates them; the deployer gives them priorities.
    pub rules: Vec<Rule>,
    pub attributes: BTreeMap<String, String>,
    /// Ownership tags (resource `<port>`) and the user's.
    pub tags: BTreeMap<String, String>,
}

/// A target group an action forwards to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TargetGroupRef {
    /// One of the stack's own, by resource id.
    Stack(String),
    /// By ARN: one the user made (an action's `targetGroupARN`), or, in what the deployer
    /// reads back from ELB, any.
    Arn(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedTargetGroup {
    pub target_group: TargetGroupRef,
    /// None for a forward to one target group (ELB ignores the weight then).
    pub weight: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Forward {
        target_groups: Vec<WeightedTargetGroup>,
        /// Target group stickiness, seconds; None when off.
        stickiness_seconds: Option<i32>,
    },
    Redirect(Redirect),
    FixedResponse(FixedResponse),
}

impl Action {
    /// A plain forward to one of the stack's target groups.
    pub fn forward_to(resource_id: &str) -> Self {
        Self::Forward {
            target_groups: vec![WeightedTargetGroup {
                target_group: TargetGroupRef::Stack(resource_id.to_string()),
                weight: None,
            }],
            stickiness_seconds: None,
        }
    }

    /// The one target group of a plain forward (an NLB listener's only kind of action).
    pub fn single_target(&self) -> Option<&TargetGroupRef> {
        match self {
            Self::Forward { target_groups, .. } if target_groups.len() == 1 => {
                Some(&target_groups[0].target_group)
            }
            _ => None,
        }
    }

    /// The target groups the action forwards to (none for a redirect or a fixed response).
    pub fn target_groups(&self) -> impl Iterator<Item = &TargetGroupRef> {
        let groups = match self {
            Self::Forward { target_groups, .. } => target_groups.as_slice(),
            _ => &[],
        };
        groups.iter().map(|w| &w.target_group)
    }
}

/// ELB's redirect: each part None keeps the request's own (`#{protocol}`, ... in ELB's terms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// HTTP or HTTPS.
    pub protocol: Option<Protocol>,
    pub port: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    pub status_code: RedirectCode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedResponse {
    /// A 2XX, 4XX or 5XX code.
    pub status_code: u16,
    pub content_type: Option<String>,
    pub message_body: Option<String>,
}

/// One listener rule: every condition must match (values within one condition are ORed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub conditions: Vec<Condition>,
    pub action: Action,
    /// Ownership tags and the tags of the Ingress that made the rule; the deployer adds the
    /// resource tag `<port>:<priority>` once it knows the priority.
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    HostHeader(Vec<String>),
    /// Wildcard patterns (`*`, `?`), or regular expressions when `regex`.
    PathPattern {
        values: Vec<String>,
        regex: bool,
    },
    HttpHeader {
        name: String,
        values: Vec<String>,
    },
    HttpRequestMethod(Vec<String>),
    QueryString(Vec<QueryStringPair>),
    SourceIp(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryStringPair {
    /// None matches the value under any key.
    pub key: Option<String>,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    /// Stable id, `<namespace>/<service>:<port>`; tagged on the target group.
    pub resource_id: String,
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    pub target_type: TargetType,
    pub ip_address_type: TargetIpAddressType,
    /// ALB only; None on an NLB's.
    pub protocol_version: Option<ProtocolVersion>,
    pub health_check: HealthCheck,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// `TCP`, `HTTP` or `HTTPS`.
    pub protocol: Protocol,
    pub port: CheckPort,
    /// HTTP(S) only.
    pub path: Option<String>,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
    pub timeout_seconds: i32,
    pub interval_seconds: i32,
    /// HTTP(S) only: the success codes.
    pub matcher: Option<String>,
}

/// How the cluster's load balancers reach their targets: upstream's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityGroupSettings {
    /// `--enable-backend-security-group` (default true): a load balancer with a managed frontend
    /// group also gets the cluster's shared backend group.
    pub backend: bool,
    /// `--enable-manage-backend-security-group-rules` (default false): a load balancer with
    /// explicit security groups gets the backend group too, unless its annotation says otherwise.
    pub manage_backend_rules: bool,
}

/// Managing the backend rules was asked with `--enable-backend-security-group=false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendGroupDisabled;

impl SecurityGroupSettings {
    /// Whether a load balancer gets the cluster's backend security group: always with a managed
    /// frontend group (unless backend groups are off); with explicit groups only when the backend
    /// rules are to be managed (`manage`: the load balancer's annotation, else the flag).
    pub fn attaches_backend(
        &self,
        explicit_groups: bool,
        manage: Option<bool>,
    ) -> Result<bool, BackendGroupDisabled> {
        if !explicit_groups {
            return Ok(self.backend);
        }
        match (manage.unwrap_or(self.manage_backend_rules), self.backend) {
            (true, false) => Err(BackendGroupDisabled),
            (manage, _) => Ok(manage),
        }
    }
}

impl Default for SecurityGroupSettings {
    fn default() -> Self {
        Self {
            backend: true,
            manage_backend_rules: false,
        }
    }
}

/// A port the backend security group may reach on the targets (a TargetGroupBinding's
/// `networking`): protocol `TCP` or `UDP`, and the port (a number or a named container port;
/// None: every port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPort {
    pub protocol: String,
    pub port: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub name: String,
    pub namespace: String,
    /// The labels that say whose stack it is (upstream's): `service.k8s.aws/stack-name` and
    /// `-namespace`, or an Ingress group's.
    pub labels: BTreeMap<String, String>,
    pub service_name: String,
    /// The Service port, by number.
    pub service_port: i32,
    pub target_group: String,
    pub target_type: TargetType,
    pub ip_address_type: TargetIpAddressType,
    pub node_selector: BTreeMap<String, String>,
    pub multi_cluster: bool,
    /// Its `networking` rules: from the load balancer's source group (the backend group, else
    /// its managed group), or by address for an NLB without security groups; empty when it has
    /// no source.
    pub networking: Vec<NetworkRule>,
}

/// One `networking` rule of a binding: where from, to which ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRule {
    pub from: NetworkSource,
    pub ports: Vec<NetworkPort>,
}

/// Where a binding's rule admits traffic from. All but [`NetworkSource::Cidrs`] are known only
/// once AWS is described ([`SourceAddresses`] and the resolved groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkSource {
    /// The load balancer's source group: the backend group, else its managed group.
    SourceGroup,
    /// The load balancer's own addresses: the CIDRs of its subnets (its health checks, and its
    /// traffic when it does not preserve the client's address).
    LoadBalancerSubnets,
    /// The VPC's CIDRs (an internal load balancer's clients, none named).
    Vpc,
    /// These clients.
    Cidrs(Vec<ipnet::IpNet>),
}

/// The addresses [`NetworkSource`]s stand for, as described.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceAddresses {
    pub load_balancer_subnets: Vec<ipnet::IpNet>,
    pub vpc: Vec<ipnet::IpNet>,
}
