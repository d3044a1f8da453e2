//! Rules on the targets' security groups, from the bindings' `spec.networking`, as upstream
//! writes them: a load balancer's health checks and traffic reach a target only when a security
//! group of the target's network interface admits them, and on EKS the nodes' interfaces (and the
//! VPC CNI's pods on them) carry the cluster security group, which admits only itself.
//!
//! For each target the binding wants, the controller finds its network interface (the pod IP's
//! interface on its node, a security-groups-for-pods branch interface, or a node's primary
//! interface for instance targets) and picks the interface's endpoint group ([`endpoint_group`]).
//! Every binding's rules are then pooled per group ([`Pool`]) and written with upstream's label
//! in the rule description ([`RULE_LABEL`]), so that only labelled rules are ever revoked and a
//! user's own rules stay. Rules from one security group are merged into one port range per
//! protocol (upstream's "restricted" rules): a scale-out adds no rule.
//!
//! Everything here is pure: the controller describes, this decides, the controller writes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use lb_api::target_group_binding::TargetGroupBindingNetworking;

/// The description of every rule the controller writes: upstream's label, so that either
/// controller recognises (and may revoke) the other's rules, and nobody else's.
pub const RULE_LABEL: &str = "elbv2.k8s.aws/targetGroupBinding=shared";
/// The tag key prefix that marks a cluster's security group on an interface with several.
pub const CLUSTER_TAG_PREFIX: &str = "kubernetes.io/cluster/";
/// The pod annotation where the VPC resource controller names a pod's branch interface (security
/// groups for pods).
pub const POD_ENI_ANNOTATION: &str = "vpc.amazonaws.com/pod-eni";

/// An IP protocol a rule admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// EC2's name for it.
    pub fn as_ec2(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_ec2())
    }
}

/// Where a rule admits traffic from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    Group(String),
    Cidr(IpNet),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Group(id) => f.write_str(id),
            Peer::Cidr(cidr) => write!(f, "{cidr}"),
        }
    }
}

/// One ingress rule as EC2 holds it: protocol, port range, one source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    pub protocol: Protocol,
    pub from: u16,
    pub to: u16,
    pub peer: Peer,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.from == self.to {
            true => write!(f, "{}/{} from {}", self.protocol, self.from, self.peer),
            false => write!(
                f,
                "{}/{}-{} from {}",
                self.protocol, self.from, self.to, self.peer
            ),
        }
    }
}

/// An ingress rule of a described security group, whoever wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedRule {
    /// EC2's protocol: `tcp`, `udp`, `icmp`, `-1` (all), or a number.
    pub protocol: String,
    /// The port range (`-1` for all protocols).
    pub from: i32,
    pub to: i32,
    pub peer: Peer,
    /// The rule's description is [`RULE_LABEL`]: a controller's, revocable.
    pub labelled: bool,
}

impl DescribedRule {
    /// The rule as a [`Permission`], when it is a TCP or UDP one.
    pub fn permission(&self) -> Option<Permission> {
        let protocol = match self.protocol.as_str() {
            "tcp" | "6" => Protocol::Tcp,
            "udp" | "17" => Protocol::Udp,
            _ => return None,
        };
        Some(Permission {
            protocol,
            from: u16::try_from(self.from).ok()?,
            to: u16::try_from(self.to).ok()?,
            peer: self.peer.clone(),
        })
    }

    /// Whether the rule admits `protocol` on `port` from `peer`.
    fn admits(&self, protocol: Protocol, port: u16, peer: &Source) -> bool {
        let protocol_ok = matches!(self.protocol.as_str(), "-1" | "all")
            || self
                .permission()
                .is_some_and(|p| p.protocol == protocol && p.from <= port && port <= p.to);
        protocol_ok
            && match (&self.peer, peer) {
                (Peer::Group(id), Source::Groups(groups)) => groups.contains(id),
                (Peer::Cidr(cidr), Source::Address(address)) => cidr.contains(address),
                _ => false,
            }
    }
}

/// A described security group: what picking an endpoint group and diagnosing need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub id: String,
    pub tags: BTreeMap<String, String>,
    pub ingress: Vec<DescribedRule>,
}

/// A described network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub id: String,
    /// The instance it is attached to, and at which device index (0: the primary interface).
    pub instance_id: Option<String>,
    pub device_index: Option<i32>,
    /// Every private address on it, the secondary ones (the VPC CNI's pod addresses) included.
    pub addresses: Vec<IpAddr>,
    /// Its delegated prefixes (the VPC CNI's prefix delegation: pod addresses inside them).
    pub prefixes: Vec<IpNet>,
    pub security_groups: Vec<String>,
}

/// Why a target's rules cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error(
        "expected exactly one security group tagged with {wanted} on {interface}, found {found:?}"
    )]
    NoEndpointGroup {
        interface: String,
        wanted: String,
        found: Vec<String>,
    },
    #[error(
        "spec.networking port {port:?} is not a container port of pod {pod} (named ports are resolved per pod)"
    )]
    UnknownNamedPort { pod: String, port: String },
    #[error(
        "spec.networking port {port:?} is a name, and instance targets have no pod to resolve it on"
    )]
    NamedPortOnInstance { port: String },
    #[error("spec.networking {field}: {value:?} is not valid")]
    Invalid { field: &'static str, value: String },
}

/// The security group of `interface` that gets the rules: the only one, else the one tagged
/// `kubernetes.io/cluster/<cluster>` (any value) that also carries every `extra_tags` pair
/// (`--service-target-eni-security-group-tags`). `groups` holds the interface's groups described.
pub fn endpoint_group(
    interface: &Interface,
    groups: &BTreeMap<String, GroupInfo>,
    cluster: &str,
    extra_tags: &BTreeMap<String, String>,
) -> Result<String, RulesError> {
    if let [only] = interface.security_groups.as_slice()
        && extra_tags.is_empty()
    {
        return Ok(only.clone());
    }
    let cluster_key = format!("{CLUSTER_TAG_PREFIX}{cluster}");
    let tagged: Vec<String> = interface
        .security_groups
        .iter()
        .filter(|id| {
            groups.get(*id).is_some_and(|g| {
                g.tags.contains_key(&cluster_key)
                    && extra_tags.iter().all(|(k, v)| g.tags.get(k) == Some(v))
            })
        })
        .cloned()
        .collect();
    match tagged.as_slice() {
        [one] => Ok(one.clone()),
        _ => {
            let mut wanted = cluster_key;
            for (k, v) in extra_tags {
                wanted.push_str(&format!(", {k}={v}"));
            }
            Err(RulesError::NoEndpointGroup {
                interface: interface.id.clone(),
                wanted,
                found: interface.security_groups.clone(),
            })
        }
    }
}

/// The interface that holds `address` (as an address, or inside a delegated prefix), among
/// `interfaces`.
pub fn interface_with_address(interfaces: &[Interface], address: IpAddr) -> Option<&Interface> {
    interfaces
        .iter()
        .find(|i| i.addresses.contains(&address) || i.prefixes.iter().any(|p| p.contains(&address)))
}

/// A pod's branch interface (security groups for pods), from its `vpc.amazonaws.com/pod-eni`
/// annotation: `[{"eniId": "eni-...", "privateIp": "10.0.0.5", ...}]`.
pub fn pod_branch_interface(pod: &Pod) -> Option<String> {
    let raw = pod.metadata.annotations.as_ref()?.get(POD_ENI_ANNOTATION)?;
    let entries: Vec<serde_json::Value> = serde_json::from_str(raw).ok()?;
    entries.first()?.get("eniId")?.as_str().map(str::to_string)
}

/// The permissions `networking` asks for one target; `pod` resolves named ports (ip targets).
pub fn target_permissions(
    networking: &TargetGroupBindingNetworking,
    pod: Option<&Pod>,
) -> Result<Vec<Permission>, RulesError> {
    let mut permissions = Vec::new();
    for rule in &networking.ingress {
        let mut peers = Vec::new();
        for from in &rule.from {
            if let Some(group) = &from.security_group {
                peers.push(Peer::Group(group.group_id.clone()));
            }
            if let Some(block) = &from.ip_block {
                let cidr: IpNet = block.cidr.parse().map_err(|_| RulesError::Invalid {
                    field: "ingress[].from[].ipBlock.cidr",
                    value: block.cidr.clone(),
                })?;
                peers.push(Peer::Cidr(cidr.trunc()));
            }
        }
        for port in &rule.ports {
            let protocol = match port.protocol.as_deref().unwrap_or("TCP") {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                other => {
                    return Err(RulesError::Invalid {
                        field: "ingress[].ports[].protocol",
                        value: other.to_string(),
                    });
                }
            };
            let (from, to) = match &port.port {
                None => (0, 65535),
                Some(IntOrString::Int(n)) => {
                    let n = u16::try_from(*n).map_err(|_| RulesError::Invalid {
                        field: "ingress[].ports[].port",
                        value: n.to_string(),
                    })?;
                    (n, n)
                }
                Some(IntOrString::String(name)) => {
                    let n = named_port(pod, name, protocol)?;
                    (n, n)
                }
            };
            for peer in &peers {
                permissions.push(Permission {
                    protocol,
                    from,
                    to,
                    peer: peer.clone(),
                });
            }
        }
    }
    Ok(permissions)
}

fn named_port(pod: Option<&Pod>, name: &str, protocol: Protocol) -> Result<u16, RulesError> {
    let Some(pod) = pod else {
        return Err(RulesError::NamedPortOnInstance {
            port: name.to_string(),
        });
    };
    let wanted = match protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    };
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| {
            p.name.as_deref() == Some(name) && p.protocol.as_deref().unwrap_or("TCP") == wanted
        })
        .and_then(|p| u16::try_from(p.container_port).ok())
        .ok_or_else(|| RulesError::UnknownNamedPort {
            pod: pod.metadata.name.clone().unwrap_or_default(),
            port: name.to_string(),
        })
}

/// Upstream's restricted rules: the rules from one security group, per protocol, become one
/// port range from the lowest port to the highest; rules from CIDRs stay as they are.
pub fn restricted(permissions: impl IntoIterator<Item = Permission>) -> BTreeSet<Permission> {
    let mut ranges: BTreeMap<(Protocol, String), (u16, u16)> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for p in permissions {
        match &p.peer {
            Peer::Group(id) => {
                let range = ranges
                    .entry((p.protocol, id.clone()))
                    .or_insert((p.from, p.to));
                *range = (range.0.min(p.from), range.1.max(p.to));
            }
            Peer::Cidr(_) => {
                out.insert(p);
            }
        }
    }
    for ((protocol, id), (from, to)) in ranges {
        out.insert(Permission {
            protocol,
            from,
            to,
            peer: Peer::Group(id),
        });
    }
    out
}

/// Every binding's permissions per endpoint group, pooled: what each group should carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pool {
    /// binding (`namespace/name`) -> endpoint group -> its permissions (merged when restricted).
    bindings: BTreeMap<String, BTreeMap<String, BTreeSet<Permission>>>,
}

impl Pool {
    /// Sets `binding`'s permissions; returns the groups whose pooled rules may have changed.
    pub fn set(
        &mut self,
        binding: &str,
        groups: BTreeMap<String, BTreeSet<Permission>>,
    ) -> BTreeSet<String> {
        let before = self.bindings.remove(binding).unwrap_or_default();
        let touched = before.keys().chain(groups.keys()).cloned().collect();
        if !groups.is_empty() {
            self.bindings.insert(binding.to_string(), groups);
        }
        touched
    }

    /// Forgets `binding`; returns the groups it had rules on.
    pub fn remove(&mut self, binding: &str) -> BTreeSet<String> {
        self.set(binding, BTreeMap::new())
    }

    /// What `group` should carry, from every binding; merged into ranges when `restricted`.
    pub fn desired(&self, group: &str, restricted_rules: bool) -> BTreeSet<Permission> {
        let all = self
            .bindings
            .values()
            .filter_map(|groups| groups.get(group))
            .flatten()
            .cloned();
        match restricted_rules {
            true => restricted(all),
            false => all.collect(),
        }
    }

    /// Every group some binding has rules on.
    pub fn groups(&self) -> BTreeSet<String> {
        self.bindings
            .values()
            .flat_map(|g| g.keys().cloned())
            .collect()
    }
}

/// What to write on one group: rules to authorize, labelled rules to revoke.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub authorize: Vec<Permission>,
    pub revoke: Vec<Permission>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.authorize.is_empty() && self.revoke.is_empty()
    }
}

/// The changes that make `existing` carry `desired`: a desired rule already there (labelled or
/// a user's identical one, which EC2 would call a duplicate) is not authorized again; only
/// labelled rules are revoked, and none while `authorize_only` (after a start, until every
/// binding's rules are known), when a rule a present one covers is not added either.
pub fn changes(
    desired: &BTreeSet<Permission>,
    existing: &[DescribedRule],
    authorize_only: bool,
) -> Changes {
    let present: BTreeSet<Permission> = existing.iter().filter_map(|r| r.permission()).collect();
    let covered = |p: &Permission| {
        present.iter().any(|q| {
            q.protocol == p.protocol && q.peer == p.peer && q.from <= p.from && p.to <= q.to
        })
    };
    let authorize = desired
        .difference(&present)
        // While revoking is held back, a rule inside one that stays is not added beside it: a
        // restarted controller that knows only some bindings yet adds nothing.
        .filter(|p| !(authorize_only && covered(p)))
        .cloned()
        .collect();
    let revoke = match authorize_only {
        true => Vec::new(),
        false => existing
            .iter()
            .filter(|r| r.labelled)
            .filter_map(|r| r.permission())
            .filter(|p| !desired.contains(p))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    Changes { authorize, revoke }
}

/// Where traffic comes from, for [`admits`]: a load balancer's security groups, or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Groups(Vec<String>),
    Address(IpAddr),
}

/// Whether any of `groups` admits `protocol` on `port` from `source`.
pub fn admits(groups: &[&GroupInfo], protocol: Protocol, port: u16, source: &Source) -> bool {
    groups
        .iter()
        .flat_map(|g| g.ingress.iter())
        .any(|r| r.admits(protocol, port, source))
}

/// The diagnosis of a target that cannot be reached: its interface's groups (described) admit
/// nothing from the load balancer's groups on the port. `None` when they do admit it (the
/// target is unhealthy for another reason) or when the load balancer has no security group.
pub fn unreachable_message(
    interface: &Interface,
    groups: &[&GroupInfo],
    balancer_groups: &[String],
    protocol: Protocol,
    port: u16,
) -> Option<String> {
    if balancer_groups.is_empty() {
        return None;
    }
    let source = Source::Groups(balancer_groups.to_vec());
    if admits(groups, protocol, port, &source) {
        return None;
    }
    Some(format!(
        "{} on {} admits nothing from {} (the load balancer) on {protocol}/{port}: add spec.networking, or let the controller manage backend rules",
        interface.security_groups.join(", "),
        interface.id,
        balancer_groups.join(", "),
    ))
}

#[cfg(test)]
#[path = "target_rules_tests.rs"]
mod tests;
