//! An IngressGroup's group-wide settings (scheme, address type, name, subnets, security groups,
//! inbound CIDRs, prefix lists, TLS policy, SSL redirect, backend rules): typed, each with the
//! member that set it first; a member that says otherwise is refused, naming both.

use ipnet::IpNet;

use super::annotations::{IngressAnnotations, IpAddressType, Scheme};
use super::error::MemberError;

/// A group-wide value and the member that set it first.
#[derive(Debug, Clone)]
pub(super) struct Claim<T>(Option<(T, String)>);

impl<T> Default for Claim<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T: Clone + PartialEq + ClaimText> Claim<T> {
    /// Checks `value` against what an earlier member set; records it when first.
    pub(super) fn claim(
        &mut self,
        annotation: &'static str,
        value: Option<&T>,
        member: &str,
    ) -> Result<(), MemberError> {
        let Some(value) = value else { return Ok(()) };
        match &self.0 {
            Some((have, by)) if have != value => Err(MemberError::Conflict {
                annotation,
                value: value.text(),
                have: have.text(),
                member: by.clone(),
            }),
            Some(_) => Ok(()),
            None => {
                self.0 = Some((value.clone(), member.to_string()));
                Ok(())
            }
        }
    }

    pub(super) fn get(&self) -> Option<&T> {
        self.0.as_ref().map(|(value, _)| value)
    }
}

/// A claimed value as its annotation spells it, for the conflict's message.
pub(super) trait ClaimText {
    fn text(&self) -> String;
}

impl ClaimText for String {
    fn text(&self) -> String {
        self.clone()
    }
}

impl ClaimText for u16 {
    fn text(&self) -> String {
        self.to_string()
    }
}

impl ClaimText for bool {
    fn text(&self) -> String {
        self.to_string()
    }
}

impl ClaimText for Scheme {
    fn text(&self) -> String {
        self.as_str().to_string()
    }
}

impl ClaimText for IpAddressType {
    fn text(&self) -> String {
        self.as_str().to_string()
    }
}

impl<T: ToString> ClaimText for Vec<T> {
    fn text(&self) -> String {
        let items: Vec<String> = self.iter().map(ToString::to_string).collect();
        items.join(",")
    }
}

/// The group-wide settings, typed, each with the member that set it: one value per group, and a
/// member that says otherwise is refused.
#[derive(Debug, Clone, Default)]
pub(super) struct GroupSettings {
    pub(super) scheme: Claim<Scheme>,
    pub(super) ip_address_type: Claim<IpAddressType>,
    pub(super) load_balancer_name: Claim<String>,
    pub(super) subnets: Claim<Vec<String>>,
    pub(super) security_groups: Claim<Vec<String>>,
    pub(super) inbound_cidrs: Claim<Vec<IpNet>>,
    pub(super) prefix_lists: Claim<Vec<String>>,
    pub(super) ssl_policy: Claim<String>,
    pub(super) ssl_redirect: Claim<u16>,
    pub(super) manage_backend_rules: Claim<bool>,
}

impl GroupSettings {
    /// Claims every group-wide setting `a` makes for `member`.
    pub(super) fn claim(
        &mut self,
        a: &IngressAnnotations,
        member: &str,
    ) -> Result<(), MemberError> {
        self.scheme.claim(
            "alb.ingress.kubernetes.io/scheme",
            a.scheme.as_ref(),
            member,
        )?;
        self.ip_address_type.claim(
            "alb.ingress.kubernetes.io/ip-address-type",
            a.ip_address_type.as_ref(),
            member,
        )?;
        self.load_balancer_name.claim(
            "alb.ingress.kubernetes.io/load-balancer-name",
            a.load_balancer_name.as_ref(),
            member,
        )?;
        self.subnets.claim(
            "alb.ingress.kubernetes.io/subnets",
            a.subnets.as_ref(),
            member,
        )?;
        self.security_groups.claim(
            "alb.ingress.kubernetes.io/security-groups",
            a.security_groups.as_ref(),
            member,
        )?;
        self.inbound_cidrs.claim(
            "alb.ingress.kubernetes.io/inbound-cidrs",
            a.inbound_cidrs.as_ref(),
            member,
        )?;
        self.prefix_lists.claim(
            "alb.ingress.kubernetes.io/security-group-prefix-lists",
            a.prefix_lists.as_ref(),
            member,
        )?;
        self.ssl_policy.claim(
            "alb.ingress.kubernetes.io/ssl-policy",
            a.ssl_policy.as_ref(),
            member,
        )?;
        self.ssl_redirect.claim(
            "alb.ingress.kubernetes.io/ssl-redirect",
            a.ssl_redirect.as_ref(),
            member,
        )?;
        self.manage_backend_rules.claim(
            "alb.ingress.kubernetes.io/manage-backend-security-group-rules",
            a.manage_backend_security_group_rules.as_ref(),
            member,
        )
    }
}
