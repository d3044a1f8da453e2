//! A Gateway and the routes that name it, built into the desired ALB stack and the statuses
//! the objects should get: one pure pass over a snapshot. Listeners are checked, routes attached,
//! their backends resolved into target groups and bindings, their rules laid out per port; the
//! ALB gets a listener for each port that has a usable listener and an attached route (as
//! upstream), and a managed security group open on every listener port. The listeners of the
//! ListenerSets the Gateway admits are served beside its own ([`super::listener_sets`]).

use std::collections::BTreeMap;

use ipnet::IpNet;
use lb_api::gateway::{Gateway, HTTPRoute, ListenerSet, ParentReference};
use lb_api::gateway_config::LoadBalancerConfigurationSpec;

use super::attach::Parent;
use super::attached::attach_routes;
use super::backends::BackendSnapshot;
use super::class::{PARAMETERS_GROUP, PARAMETERS_KIND};
use super::conditions::{Verdict, types};
use super::isolation::{isolated_rules, not_found};
use super::listener_sets::{NamingSet, merge, set_accepted};
use super::listeners::{CertificateSnapshot, CheckedListener, ListenerProtocol, check_all};
use super::load_balancer_config::{LoadBalancerSettings, settings as configured};
use super::rules::PortRoute;
use crate::ingress::{Certificate, IngressSettings};
use crate::naming::{self, GatewayName};
use crate::service::subnets::{Subnet, choose_subnets};
use crate::stack::{
    Binding, IngressRule, IpAddressType, Listener, LoadBalancer, LoadBalancerKind,
    ManagedSecurityGroup, Protocol, Stack, StackKind, SubnetMapping, TargetGroup, rule_sources,
    tags,
};

/// What a Gateway's build reads besides the Gateway.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// Every HTTPRoute that may name the Gateway.
    pub routes: &'a [HTTPRoute],
    /// Every ListenerSet that may name the Gateway.
    pub listener_sets: &'a [ListenerSet],
    pub namespace_labels: &'a BTreeMap<String, BTreeMap<String, String>>,
    pub backends: &'a BackendSnapshot,
    pub certificates: &'a CertificateSnapshot,
    /// The ACM certificate imported for each listener certificate Secret (namespace, name).
    pub certificate_arns: &'a BTreeMap<(String, String), String>,
    pub subnets: &'a [Subnet],
    /// The LoadBalancerConfigurations the GatewayClass and the Gateway name (found ones).
    pub configurations: Configurations<'a>,
    /// The account's issued ACM certificates, when an HTTPS listener finds its own by hostname
    /// (else empty).
    pub acm_certificates: &'a [Certificate],
}

/// The LoadBalancerConfigurations of a Gateway: its class's and its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Configurations<'a> {
    pub class: Option<&'a LoadBalancerConfigurationSpec>,
    pub gateway: Option<&'a LoadBalancerConfigurationSpec>,
}

/// What one route's parentRef naming the Gateway gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOutcome {
    pub namespace: String,
    pub name: String,
    pub parent_ref: ParentReference,
    pub accepted: Verdict,
    pub resolved_refs: Verdict,
}

/// A ListenerSet naming the Gateway, and its Accepted condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOutcome {
    pub set: NamingSet,
    pub accepted: Verdict,
}

/// The build's answer: the stack (None when the Gateway cannot have one), and every status.
#[derive(Debug, Clone)]
pub struct GatewayBuild {
    pub stack: Option<Stack>,
    /// Why there is no stack.
    pub problem: Option<String>,
    pub accepted: Verdict,
    /// The Gateway's own listeners, then its admitted ListenerSets' (each knows its origin).
    pub listeners: Vec<CheckedListener>,
    /// Every ListenerSet naming the Gateway, by precedence.
    pub sets: Vec<SetOutcome>,
    /// Routes attached, per listener (same order).
    pub attached_routes: Vec<i32>,
    /// Listeners left out of the ALB for now (an HTTPS listener whose certificate is not
    /// imported yet): by index.
    pub pending: Vec<usize>,
    pub routes: Vec<RouteOutcome>,
    /// The TargetGroupBindings of the attached routes' backends, also when there is no stack
    /// yet: the pod webhook predicts readiness gates from them before they exist.
    pub bindings: Vec<Binding>,
}

/// Builds `gateway` over `snapshot` with the cluster's `settings`.
pub fn build_gateway<'a>(
    gateway: &'a Gateway,
    snapshot: Snapshot<'a>,
    settings: &'a IngressSettings,
) -> GatewayBuild {
    let namespace = gateway.metadata.namespace.as_deref().unwrap_or_default();
    let name = gateway.metadata.name.as_deref().unwrap_or_default();
    let (merged, naming_sets) = merge(gateway, snapshot.listener_sets, snapshot.namespace_labels);
    let listeners = &merged.listeners;
    let lb = load_balancer_settings(gateway, snapshot.configurations);
    let lb_settings = lb.clone().unwrap_or_default();
    let discovered = discovered_certificates(listeners, &lb_settings, snapshot.acm_certificates);
    // The listeners that have certificates without certificateRefs: configured for their port,
    // or found in ACM by hostname.
    let certified: Vec<usize> = (0..listeners.len())
        .filter(|&i| {
            !discovered[i].is_empty() || !lb_settings.certificates(listeners[i].port).is_empty()
        })
        .collect();
    let checked = check_all(
        listeners,
        &merged.origins,
        snapshot.certificates,
        &certified,
    );
    let parent = Parent {
        namespace,
        name,
        listeners,
        checked: &checked,
    };
    let mut base_tags = settings.default_tags.clone();
    base_tags.insert(tags::CLUSTER.into(), settings.cluster.clone());
    base_tags.insert(
        tags::GATEWAY_ALB_STACK.into(),
        format!("{namespace}/{name}"),
    );
    let attached = attach_routes(parent, &naming_sets, snapshot, settings, &base_tags);
    let (alb_listeners, pending) = alb_listeners(
        &checked,
        listeners,
        &attached.ports,
        snapshot.certificate_arns,
        (settings, &lb_settings, &discovered),
        &base_tags,
    );
    let accepted = gateway_accepted(lb.err(), &checked);
    let sets = naming_sets
        .into_iter()
        .map(|set| SetOutcome {
            accepted: set_accepted(&set, accepted.status, &checked),
            set,
        })
        .collect();
    if !accepted.status {
        return GatewayBuild {
            stack: None,
            problem: Some(accepted.message.clone()),
            accepted,
            listeners: checked,
            sets,
            attached_routes: attached.counts,
            pending,
            routes: attached.outcomes,
            bindings: attached.bindings,
        };
    }
    let bindings = attached.bindings.clone();
    let stack = stack_of(
        gateway,
        (listeners, &checked),
        snapshot.subnets,
        (settings, &lb_settings),
        &base_tags,
        alb_listeners,
        (attached.target_groups, attached.bindings),
    );
    let (stack, problem) = match stack {
        Ok(stack) => (Some(stack), None),
        Err(problem) => (None, Some(problem)),
    };
    GatewayBuild {
        stack,
        problem,
        accepted,
        listeners: checked,
        sets,
        attached_routes: attached.counts,
        pending,
        routes: attached.outcomes,
        bindings,
    }
}

/// The ALB stack of `gateway`, or why it cannot have one (no subnets).
fn stack_of(
    gateway: &Gateway,
    served: (&[lb_api::gateway::Listener], &[CheckedListener]),
    subnets: &[Subnet],
    (settings, lb): (&IngressSettings, &LoadBalancerSettings),
    base_tags: &BTreeMap<String, String>,
    listeners: Vec<Listener>,
    (target_groups, bindings): (Vec<TargetGroup>, Vec<Binding>),
) -> Result<Stack, String> {
    let namespace = gateway.metadata.namespace.as_deref().unwrap_or_default();
    let name = gateway.metadata.name.as_deref().unwrap_or_default();
    let scheme = lb.scheme.unwrap_or(settings.default_scheme);
    let chosen = choose_subnets(
        lb.subnets.as_deref(),
        subnets,
        scheme.as_str(),
        &settings.cluster,
        "LoadBalancerConfiguration subnets",
    )?;
    let with = |resource: &str| {
        let mut tags = base_tags.clone();
        tags.insert(tags::GATEWAY_ALB_RESOURCE.into(), resource.into());
        tags
    };
    let gateway_name = GatewayName {
        namespace,
        name,
        uid: gateway.metadata.uid.as_deref().unwrap_or_default(),
    };
    let managed_security_group = ManagedSecurityGroup {
        name: naming::gateway_security_group(&settings.cluster, gateway_name),
        ingress: open_ports(served.0, served.1),
        tags: with(tags::MANAGED_SECURITY_GROUP),
    };
    Ok(Stack {
        id: format!("{namespace}/{name}"),
        kind: StackKind::AlbGateway,
        load_balancer: LoadBalancer {
            name: lb.name.clone().unwrap_or_else(|| {
                naming::gateway_load_balancer(&settings.cluster, gateway_name, scheme.as_str())
            }),
            kind: LoadBalancerKind::Application,
            scheme,
            ip_address_type: lb.ip_address_type.unwrap_or(IpAddressType::Ipv4),
            subnets: chosen
                .iter()
                .map(|s| SubnetMapping {
                    subnet_id: s.id.clone(),
                    allocation_id: None,
                    private_ipv4_address: None,
                })
                .collect(),
            subnets_named: lb.subnets.is_some(),
            subnets_problem: None,
            security_groups: Vec::new(),
            attributes: lb.attributes.clone(),
            // The configuration's tags beside the defaults; ownership tags always win.
            tags: {
                let mut tags = lb.tags.clone();
                tags.extend(with(tags::LOAD_BALANCER));
                tags
            },
        },
        managed_security_group: Some(managed_security_group),
        backend_security_group: settings.security_groups.backend,
        listeners,
        target_groups,
        bindings,
        external_managed_tags: settings.external_managed_tags.clone(),
        held_members: Vec::new(),
    })
}

/// The managed security group's rules: every listener's port open to everyone (IPv4; upstream
/// opens every Gateway listener's, routes or not), and every accepted ListenerSet listener's.
fn open_ports(
    listeners: &[lb_api::gateway::Listener],
    checked: &[CheckedListener],
) -> Vec<IngressRule> {
    let everyone = [IpNet::V4(Default::default())];
    let sources = rule_sources(None, &[], &everyone);
    let mut ports: Vec<u16> = listeners
        .iter()
        .zip(checked)
        .filter(|(_, c)| c.origin.is_gateway() || c.accepted())
        .filter_map(|(l, _)| u16::try_from(l.port).ok())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
        .iter()
        .flat_map(|port| {
            sources.iter().map(|source| IngressRule {
                protocol: "tcp".into(),
                port: *port,
                source: source.clone(),
            })
        })
        .collect()
}

/// The Gateway's Accepted condition: refused for parameters or static addresses an ALB Gateway
/// cannot take, else from its listeners'.
fn gateway_accepted(refused: Option<Verdict>, listeners: &[CheckedListener]) -> Verdict {
    if let Some(problem) = refused {
        return problem;
    }
    let own = listeners.iter().filter(|l| l.origin.is_gateway());
    let (valid, all) = own.fold((0, 0), |(valid, all), l| {
        (valid + usize::from(l.accepted()), all + 1)
    });
    if valid == all {
        Verdict::new(types::ACCEPTED, true, "Accepted", "Gateway accepted")
    } else if valid > 0 {
        Verdict::new(
            types::ACCEPTED,
            true,
            "ListenersNotValid",
            "some listeners are not valid",
        )
    } else {
        Verdict::new(
            types::ACCEPTED,
            false,
            "ListenersNotValid",
            "no listener is valid",
        )
    }
}

/// One ALB listener per port with a usable listener and an attached route; HTTPS ones only once
/// their certificates are imported (the others are returned as pending).
fn alb_listeners(
    checked: &[CheckedListener],
    listeners: &[lb_api::gateway::Listener],
    ports: &BTreeMap<i32, Vec<PortRoute<'_>>>,
    certificate_arns: &BTreeMap<(String, String), String>,
    (settings, lb, discovered): (&IngressSettings, &LoadBalancerSettings, &[Vec<String>]),
    base_tags: &BTreeMap<String, String>,
) -> (Vec<Listener>, Vec<usize>) {
    let mut built = Vec::new();
    let mut pending = Vec::new();
    for (port, routes) in ports {
        let on_port: Vec<usize> = (0..listeners.len())
            .filter(|&i| listeners[i].port == *port && checked[i].usable())
            .collect();
        let (Some(&first), Ok(alb_port)) = (on_port.first(), u16::try_from(*port)) else {
            continue;
        };
        let https = checked[first].protocol == Some(ListenerProtocol::Https);
        // The configuration's certificates first (its default is the listener's default), then
        // those imported from Secrets.
        let mut certificates = Vec::new();
        if https {
            certificates = lb.certificates(*port);
            for arn in on_port.iter().flat_map(|&i| &discovered[i]) {
                if !certificates.contains(arn) {
                    certificates.push(arn.clone());
                }
            }
            let secrets = on_port.iter().flat_map(|&i| checked[i].certificates.iter());
            let arns: Option<Vec<String>> = secrets
                .map(|secret| certificate_arns.get(secret).cloned())
                .collect();
            match arns {
                Some(arns) if !arns.is_empty() || !certificates.is_empty() => {
                    for arn in arns {
                        if !certificates.contains(&arn) {
                            certificates.push(arn);
                        }
                    }
                }
                _ => {
                    pending.extend(on_port);
                    continue;
                }
            }
        }
        let configured = lb.listener(if https { "HTTPS" } else { "HTTP" }, *port);
        let mut listener_tags = base_tags.clone();
        listener_tags.insert(tags::GATEWAY_ALB_RESOURCE.into(), port.to_string());
        built.push(Listener {
            port: alb_port,
            protocol: if https {
                Protocol::Https
            } else {
                Protocol::Http
            },
            certificates,
            ssl_policy: https.then(|| {
                configured
                    .and_then(|c| c.ssl_policy.clone())
                    .unwrap_or_else(|| settings.default_ssl_policy.clone())
            }),
            alpn_policy: configured
                .and_then(|c| c.alpn_policy.clone())
                .filter(|p| https && p != "None"),
            default_action: not_found(),
            rules: isolated_rules(routes, &on_port, listeners, base_tags),
            attributes: BTreeMap::new(),
            tags: listener_tags,
        });
    }
    (built, pending)
}

/// Per listener, the ACM certificate found for its hostname (upstream's discovery): only for an
/// HTTPS listener with a hostname, no certificateRefs and no certificate configured for its port.
fn discovered_certificates(
    listeners: &[lb_api::gateway::Listener],
    lb: &LoadBalancerSettings,
    acm: &[Certificate],
) -> Vec<Vec<String>> {
    listeners
        .iter()
        .map(|listener| {
            let refs = listener
                .tls
                .as_ref()
                .is_some_and(|t| !t.certificate_refs.is_empty());
            let eligible =
                listener.protocol == "HTTPS" && !refs && lb.certificates(listener.port).is_empty();
            match (eligible, listener.hostname.as_deref()) {
                (true, Some(host)) => acm
                    .iter()
                    .find(|c| c.covers(host))
                    .map(|c| vec![c.arn.clone()])
                    .unwrap_or_default(),
                _ => Vec::new(),
            }
        })
        .collect()
}

/// The settings of the Gateway's (and its class's) LoadBalancerConfigurations, or why the
/// Gateway is refused: parameters of another kind, a configuration that does not exist or sets
/// what an ALB Gateway cannot take yet, or a static address.
fn load_balancer_settings(
    gateway: &Gateway,
    configurations: Configurations<'_>,
) -> Result<LoadBalancerSettings, Verdict> {
    let invalid =
        |message: String| Verdict::new(types::ACCEPTED, false, "InvalidParameters", message);
    let infrastructure = gateway.spec.infrastructure.as_ref();
    if let Some(reference) = infrastructure.and_then(|i| i.parameters_ref.as_ref()) {
        if reference.group != PARAMETERS_GROUP || reference.kind != PARAMETERS_KIND {
            return Err(invalid(format!(
                "infrastructure.parametersRef names {}/{}; only {PARAMETERS_GROUP}/{PARAMETERS_KIND} is supported",
                reference.group, reference.kind
            )));
        }
        if configurations.gateway.is_none() {
            return Err(invalid(format!(
                "infrastructure.parametersRef {PARAMETERS_KIND} {} does not exist in the Gateway's namespace",
                reference.name
            )));
        }
    }
    if let Some(problem) = unsupported_spec(gateway) {
        return Err(problem);
    }
    configured(configurations.class, configurations.gateway).map_err(invalid)
}

/// What the Gateway asks that an ALB Gateway cannot take: a static address (an ALB's addresses
/// are its own; an address without a value asks for nothing).
fn unsupported_spec(gateway: &Gateway) -> Option<Verdict> {
    let fixed = gateway
        .spec
        .addresses
        .iter()
        .find(|a| !a.value.is_empty())?;
    let message = format!(
        "address {} cannot be given: an ALB's addresses are its own (its DNS name)",
        fixed.value
    );
    Some(Verdict::new(
        types::ACCEPTED,
        false,
        "UnsupportedAddress",
        message,
    ))
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
