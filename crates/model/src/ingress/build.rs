//! An Ingress group -> the desired ALB [`Stack`]. Members are built one by one in group order
//! ([`super::member`]) and merged; a member that cannot be built, or that contradicts the members
//! before it (a different scheme, a second default backend, a port as both HTTP and HTTPS, a quota
//! it would break), is left out with the reason, and the group is built from the others.
//!
//! Merge rules (upstream's): scheme, IP address type, name, subnets, security groups, inbound
//! CIDRs, SSL policy and SSL redirect are one value for the group (the first member that says one
//! sets it); listen ports, certificates, tags and attributes merge.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::annotations::{IpAddressType, Scheme};
use super::error::MemberError;
use super::group_settings::GroupSettings;
use super::json::ListenerProtocol;
use super::member::{Cluster, MemberModel, member_model, model_given_certificates};
use super::{BuiltGroup, GroupId, GroupMember, MemberOutcome};
use crate::naming;
use crate::service::subnets::{Subnet, choose_subnets};
use crate::stack::{
    Action, FixedResponse, IngressRule, Listener, LoadBalancer, LoadBalancerKind,
    ManagedSecurityGroup, Protocol, Redirect, RedirectCode, Stack, StackKind, SubnetMapping,
    rule_sources, tags,
};

/// ALB quotas checked before any AWS call.
pub const MAX_RULES_PER_LISTENER: usize = 100;
pub const MAX_TARGET_GROUPS: usize = 100;
pub const MAX_CERTIFICATES_PER_LISTENER: usize = 25;

#[derive(Default)]
struct Merged {
    settings: GroupSettings,
    members: Vec<MemberModel>,
    default_action: Option<(Action, String)>,
}

impl Merged {
    /// Adds `model` unless it contradicts the members already in, or breaks a quota.
    fn add(&mut self, model: MemberModel) -> Result<(), MemberError> {
        let mut settings = self.settings.clone();
        settings.claim(&model.annotations, &model.key)?;
        self.fits(&model)?;
        self.settings = settings;
        if let Some(action) = &model.default_action {
            self.default_action = Some((action.clone(), model.key.clone()));
        }
        self.members.push(model);
        Ok(())
    }

    /// Ports, default backend and quotas with `model` added.
    fn fits(&self, model: &MemberModel) -> Result<(), MemberError> {
        for (protocol, port) in &model.listen_ports {
            let clash = self.members.iter().find(|m| {
                m.listen_ports
                    .iter()
                    .any(|(p, q)| q == port && p != protocol)
            });
            if let Some(other) = clash {
                return Err(MemberError::PortProtocol {
                    port: *port,
                    protocol: protocol.as_str(),
                    other: other.key.clone(),
                });
            }
        }
        if let (Some(_), Some((_, by))) = (&model.default_action, &self.default_action) {
            return Err(MemberError::SecondDefaultBackend { other: by.clone() });
        }
        let target_groups = self
            .members
            .iter()
            .map(|m| m.target_groups.len())
            .sum::<usize>()
            + model.target_groups.len();
        if target_groups > MAX_TARGET_GROUPS {
            return Err(MemberError::TooManyTargetGroups {
                count: target_groups,
            });
        }
        for (_, port) in &model.listen_ports {
            let rules: usize = self
                .members
                .iter()
                .filter(|m| m.listen_ports.iter().any(|(_, q)| q == port))
                .map(|m| m.rules.len())
                .sum::<usize>()
                + model.rules.len();
            if rules > MAX_RULES_PER_LISTENER {
                return Err(MemberError::TooManyRules {
                    port: *port,
                    count: rules,
                });
            }
        }
        let certificates = self.certificates_with(model);
        if certificates.len() > MAX_CERTIFICATES_PER_LISTENER {
            return Err(MemberError::TooManyCertificates {
                count: certificates.len(),
            });
        }
        if let Some(port) = model
            .annotations
            .ssl_redirect
            .or_else(|| self.settings.ssl_redirect.get().copied())
        {
            let https = |ports: &[(ListenerProtocol, u16)]| {
                ports.contains(&(ListenerProtocol::Https, port))
            };
            let any =
                https(&model.listen_ports) || self.members.iter().any(|m| https(&m.listen_ports));
            if model.annotations.ssl_redirect.is_some() && !any {
                return Err(MemberError::SslRedirectWithoutHttps { port });
            }
        }
        Ok(())
    }

    fn certificates_with(&self, model: &MemberModel) -> Vec<String> {
        unique_certificates(self.members.iter().chain([model]))
    }
}

/// The bindings `member` brings to a group of its own, none when the group would refuse it
/// (see [`super::member::member_bindings`]).
pub(super) fn bindings_alone(
    member: &GroupMember,
    cluster: &Cluster,
    group: &GroupId,
) -> Vec<crate::stack::Binding> {
    let Ok(model) = model_given_certificates(member, cluster, group, &BTreeMap::new()) else {
        return Vec::new();
    };
    let bindings = model.bindings.clone();
    let mut merged = Merged::default();
    if merged.add(model).is_err() {
        return Vec::new();
    }
    let named_groups = merged.settings.security_groups.get().is_some();
    let manage = merged.settings.manage_backend_rules.get().copied();
    match cluster
        .settings
        .security_groups
        .attaches_backend(named_groups, manage)
    {
        Ok(_) => bindings,
        Err(_) => Vec::new(),
    }
}

pub fn build_group(
    group: &GroupId,
    members: &[GroupMember],
    cluster: &Cluster,
    subnets: &[Subnet],
) -> BuiltGroup {
    let settings = cluster.settings;
    let stack_id = group.stack_id();
    let mut base_tags = settings.default_tags.clone();
    base_tags.insert(tags::CLUSTER.into(), settings.cluster.clone());
    base_tags.insert(tags::INGRESS_STACK.into(), stack_id.clone());
    let mut merged = Merged::default();
    let mut outcomes = Vec::new();
    let mut sorted: Vec<&GroupMember> = members.iter().collect();
    super::group::sort_members(&mut sorted, |m| m.ingress);
    for member in sorted {
        let key = super::group::member_key(member.ingress);
        let built = member_model(member, cluster, group, &base_tags);
        let (error, warnings, adapted) = match built {
            Ok(model) => {
                let warnings = model.warnings.clone();
                let adapted = model.adapted.clone();
                (merged.add(model).err(), warnings, adapted)
            }
            Err(problem) => (Some(problem), Vec::new(), Vec::new()),
        };
        outcomes.push(MemberOutcome {
            key,
            error,
            warnings,
            adapted,
        });
    }
    if merged.members.is_empty() {
        return BuiltGroup {
            stack: None,
            outcomes,
        };
    }
    match stack(group, &merged, settings, subnets, &base_tags) {
        Ok(stack) => BuiltGroup {
            stack: Some(stack),
            outcomes,
        },
        Err(problem) => {
            // Nothing of the group can be built (no subnets): every member hears why.
            for outcome in outcomes.iter_mut().filter(|o| o.error.is_none()) {
                outcome.error = Some(problem.clone());
            }
            BuiltGroup {
                stack: None,
                outcomes,
            }
        }
    }
}

fn stack(
    group: &GroupId,
    merged: &Merged,
    settings: &super::IngressSettings,
    subnets: &[Subnet],
    base_tags: &BTreeMap<String, String>,
) -> Result<Stack, MemberError> {
    let group_settings = &merged.settings;
    let scheme = group_settings
        .scheme
        .get()
        .copied()
        .unwrap_or(settings.default_scheme);
    let ip_address_type = group_settings
        .ip_address_type
        .get()
        .copied()
        .unwrap_or(IpAddressType::Ipv4);
    let with = |resource: &str| resource_tags(merged, base_tags, resource);
    let listeners = listeners(merged, settings, &with);
    let security_groups: Option<Vec<String>> = group_settings.security_groups.get().cloned();
    let managed_security_group = security_groups.is_none().then(|| ManagedSecurityGroup {
        name: naming::ingress_security_group(&settings.cluster, group),
        ingress: ingress_rules(
            &listeners,
            group_settings.inbound_cidrs.get().map(Vec::as_slice),
            group_settings.prefix_lists.get().map(Vec::as_slice),
            ip_address_type,
        ),
        tags: with(tags::MANAGED_SECURITY_GROUP),
    });
    let backend_security_group = settings
        .security_groups
        .attaches_backend(
            security_groups.is_some(),
            group_settings.manage_backend_rules.get().copied(),
        )
        .map_err(|_| MemberError::BackendGroupDisabled)?;
    let named_subnets: Option<&Vec<String>> = group_settings.subnets.get();
    let (chosen, subnets_problem) =
        subnet_mappings(named_subnets, subnets, scheme, &settings.cluster)?;
    let (attributes, target_groups, mut bindings) = member_resources(merged);
    // The targets admit the backend group, or without one the managed group (upstream's).
    if !backend_security_group && managed_security_group.is_none() {
        for binding in &mut bindings {
            binding.networking.clear();
        }
    }
    Ok(Stack {
        id: group.stack_id(),
        kind: StackKind::Ingress,
        load_balancer: LoadBalancer {
            name: group_settings
                .load_balancer_name
                .get()
                .cloned()
                .unwrap_or_else(|| {
                    naming::ingress_load_balancer(&settings.cluster, group, scheme.as_str())
                }),
            kind: LoadBalancerKind::Application,
            scheme,
            ip_address_type,
            subnets: chosen,
            subnets_named: named_subnets.is_some(),
            subnets_problem,
            security_groups: security_groups.unwrap_or_default(),
            attributes,
            tags: with(tags::LOAD_BALANCER),
        },
        managed_security_group,
        backend_security_group,
        listeners,
        target_groups,
        bindings,
        external_managed_tags: settings.external_managed_tags.clone(),
        held_members: Vec::new(),
    })
}

/// The tags of the group's resource `resource`: every member's, then the defaults and ownership
/// over them (upstream's order).
fn resource_tags(
    merged: &Merged,
    base_tags: &BTreeMap<String, String>,
    resource: &str,
) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for member in &merged.members {
        tags.extend(member.annotations.tags.clone());
    }
    tags.extend(base_tags.clone());
    tags.insert(tags::INGRESS_RESOURCE.into(), resource.into());
    tags
}

/// The ALB's subnets: those named, or discovered for `scheme`; and why none was discovered
/// (fine for an ALB that exists: it keeps its own).
fn subnet_mappings(
    named: Option<&Vec<String>>,
    subnets: &[Subnet],
    scheme: Scheme,
    cluster: &str,
) -> Result<(Vec<SubnetMapping>, Option<String>), MemberError> {
    let annotation = "alb.ingress.kubernetes.io/subnets";
    let chosen = match choose_subnets(
        named.map(Vec::as_slice),
        subnets,
        scheme.as_str(),
        cluster,
        annotation,
    ) {
        Ok(chosen) => chosen,
        Err(problem) if named.is_none() => return Ok((Vec::new(), Some(problem))),
        Err(problem) => return Err(MemberError::Subnets(problem)),
    };
    let mappings = chosen
        .iter()
        .map(|s| SubnetMapping {
            subnet_id: s.id.clone(),
            allocation_id: None,
            private_ipv4_address: None,
        })
        .collect();
    Ok((mappings, None))
}

/// The members' load balancer attributes, target groups and bindings, each once.
fn member_resources(
    merged: &Merged,
) -> (
    BTreeMap<String, String>,
    Vec<crate::stack::TargetGroup>,
    Vec<crate::stack::Binding>,
) {
    let mut attributes = BTreeMap::new();
    let mut target_groups: Vec<crate::stack::TargetGroup> = Vec::new();
    let mut bindings: Vec<crate::stack::Binding> = Vec::new();
    for member in &merged.members {
        attributes.extend(member.annotations.load_balancer_attributes.clone());
        for tg in &member.target_groups {
            if !target_groups
                .iter()
                .any(|t| t.resource_id == tg.resource_id)
            {
                target_groups.push(tg.clone());
            }
        }
        for binding in &member.bindings {
            if !bindings.iter().any(|b| b.name == binding.name) {
                bindings.push(binding.clone());
            }
        }
    }
    (attributes, target_groups, bindings)
}

/// One listener per port any member listens on; each carries the rules of the members that
/// listen there, in member order. With `ssl-redirect`, HTTP listeners only redirect.
fn listeners(
    merged: &Merged,
    settings: &super::IngressSettings,
    tags: &dyn Fn(&str) -> BTreeMap<String, String>,
) -> Vec<Listener> {
    let group_settings = &merged.settings;
    let redirect_to: Option<String> = group_settings.ssl_redirect.get().map(u16::to_string);
    let mut ports: Vec<(ListenerProtocol, u16)> = merged
        .members
        .iter()
        .flat_map(|m| m.listen_ports.iter().copied())
        .collect();
    ports.sort_by_key(|(_, port)| *port);
    ports.dedup();
    let certificates = unique_certificates(merged.members.iter());
    let default_action = merged
        .default_action
        .as_ref()
        .map(|(a, _)| a.clone())
        .unwrap_or_else(|| {
            Action::FixedResponse(FixedResponse {
                status_code: 404,
                content_type: Some("text/plain".into()),
                message_body: None,
            })
        });
    ports
        .into_iter()
        .map(|(protocol, port)| {
            let https = protocol == ListenerProtocol::Https;
            let redirect = redirect_to.as_ref().filter(|_| !https);
            let rules = match redirect {
                Some(_) => Vec::new(),
                None => merged
                    .members
                    .iter()
                    .filter(|m| m.listen_ports.contains(&(protocol, port)))
                    .flat_map(|m| m.rules.iter().cloned())
                    .collect(),
            };
            let attributes = listener_attributes(merged, protocol, port);
            Listener {
                port,
                protocol: protocol.into(),
                certificates: if https {
                    certificates.clone()
                } else {
                    Vec::new()
                },
                ssl_policy: https.then(|| {
                    group_settings
                        .ssl_policy
                        .get()
                        .cloned()
                        .unwrap_or_else(|| settings.default_ssl_policy.clone())
                }),
                alpn_policy: None,
                default_action: match redirect {
                    Some(to) => https_redirect(to),
                    None => default_action.clone(),
                },
                rules,
                attributes,
                tags: tags(&port.to_string()),
            }
        })
        .collect()
}

/// The attributes the members set on the listener `protocol`:`port`, later members over earlier.
fn listener_attributes(
    merged: &Merged,
    protocol: ListenerProtocol,
    port: u16,
) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    for member in &merged.members {
        if let Some(a) = member
            .annotations
            .listener_attributes
            .get(&(protocol, port))
        {
            attributes.extend(a.clone());
        }
    }
    attributes
}

/// `ssl-redirect`'s action: HTTPS on port `to`, permanently.
fn https_redirect(to: &str) -> Action {
    Action::Redirect(Redirect {
        protocol: Some(Protocol::Https),
        port: Some(to.to_string()),
        host: None,
        path: None,
        query: None,
        status_code: RedirectCode::Http301,
    })
}

/// The listener ports open to the inbound CIDRs and prefix lists (when neither is named,
/// everyone; IPv6 too when dualstack).
fn ingress_rules(
    listeners: &[Listener],
    cidrs: Option<&[IpNet]>,
    prefix_lists: Option<&[String]>,
    ip_address_type: IpAddressType,
) -> Vec<IngressRule> {
    let everyone: Vec<IpNet> = match ip_address_type {
        IpAddressType::Ipv4 => vec![IpNet::V4(Default::default())],
        _ => vec![IpNet::V4(Default::default()), IpNet::V6(Default::default())],
    };
    let sources = rule_sources(cidrs, prefix_lists.unwrap_or_default(), &everyone);
    listeners
        .iter()
        .flat_map(|l| {
            sources.iter().map(move |source| IngressRule {
                protocol: "tcp".into(),
                port: l.port,
                source: source.clone(),
            })
        })
        .collect()
}

/// The members' certificates, each once, in member order (the first is the listener's default).
fn unique_certificates<'a>(members: impl Iterator<Item = &'a MemberModel>) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for arn in members.flat_map(|m| &m.certificates) {
        if !all.contains(arn) {
            all.push(arn.clone());
        }
    }
    all
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "build_property_tests.rs"]
mod property_tests;
