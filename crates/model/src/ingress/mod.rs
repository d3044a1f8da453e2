//! Ingress -> ALB: which Ingresses are ours, how they group, and what their annotations ask for.
//!
//! - [`class`]: whether an Ingress is ours (IngressClass, legacy annotation), and its class
//!   parameters ([`params`]: IngressClassParams over the annotations).
//! - [`group`]: IngressGroups: membership, order, finalizers.
//! - [`annotations`]: every `alb.ingress.kubernetes.io/` annotation, typed ([`json`]: the
//!   JSON-carrying ones).
//! - [`rules`]: `spec.rules` -> listener rules; [`target_groups`]: a Service backend -> its target
//!   group and binding; [`member`]: one Ingress's share of the ALB.
//! - [`build`]: a group -> the desired ALB stack, a bad member left out (not the group).

pub mod annotations;
pub mod build;
pub mod class;
pub mod error;
pub mod group;
mod group_settings;
pub mod json;
pub mod member;
pub mod params;
pub mod rules;
pub mod target_groups;

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::Ingress;
use lb_api::{IngressClassParamsSpec, TargetType};

pub use annotations::Scheme;
pub use build::build_group;
pub use group::GroupId;

use crate::stack::Stack;

/// What the cluster gives every ALB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressSettings {
    /// `--cluster-name`.
    pub cluster: String,
    /// `--default-tags`.
    pub default_tags: BTreeMap<String, String>,
    /// HTTPS listeners without `ssl-policy`.
    pub default_ssl_policy: String,
    /// `--default-target-type` (upstream: instance).
    pub default_target_type: TargetType,
    /// `--default-load-balancer-scheme` (upstream: internal).
    pub default_scheme: Scheme,
    /// `--enable-backend-security-group`, `--enable-manage-backend-security-group-rules`.
    pub security_groups: crate::stack::SecurityGroupSettings,
    /// `--external-managed-tags`: tag keys the controller leaves to someone else.
    pub external_managed_tags: Vec<String>,
}

impl IngressSettings {
    /// Cluster `cluster` with upstream's defaults for every other flag.
    pub fn upstream_defaults(cluster: &str) -> Self {
        Self {
            cluster: cluster.into(),
            default_tags: BTreeMap::new(),
            default_ssl_policy: crate::stack::DEFAULT_SSL_POLICY.into(),
            default_target_type: TargetType::Instance,
            default_scheme: Scheme::Internal,
            security_groups: Default::default(),
            external_managed_tags: Vec::new(),
        }
    }
}

/// An ACM certificate, for discovery by host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub arn: String,
    /// Domain name and subject alternative names; `*.example.com` covers one label.
    pub domains: Vec<String>,
}

impl Certificate {
    pub fn covers(&self, host: &str) -> bool {
        self.domains.iter().any(|domain| {
            if let Some(suffix) = domain.strip_prefix("*.") {
                host.split_once('.').is_some_and(|(label, rest)| {
                    !label.is_empty() && rest.eq_ignore_ascii_case(suffix)
                })
            } else {
                domain.eq_ignore_ascii_case(host)
            }
        })
    }
}

/// One Ingress of a group, its annotations parsed once (with its class's parameters over them):
/// what every step of a pass reads.
#[derive(Debug, Clone)]
pub struct GroupMember<'a> {
    pub ingress: &'a Ingress,
    /// The parsed annotations, or why they cannot be used.
    pub parsed: Result<member::ParsedMember, error::MemberError>,
}

impl<'a> GroupMember<'a> {
    pub fn new(ingress: &'a Ingress, params: Option<&IngressClassParamsSpec>) -> Self {
        Self {
            ingress,
            parsed: member::parse_member(ingress, params),
        }
    }
}

/// What became of one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberOutcome {
    /// `<namespace>/<name>`.
    pub key: String,
    /// Why the member is not in the ALB (a Warning names it); None when it is.
    pub error: Option<error::MemberError>,
    pub warnings: Vec<String>,
    /// Defaults adapted to what the member set (a Normal Event names each).
    pub adapted: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltGroup {
    /// None when no member could be built: AWS is then left as it is.
    pub stack: Option<Stack>,
    pub outcomes: Vec<MemberOutcome>,
}
