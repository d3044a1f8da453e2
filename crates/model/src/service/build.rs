//! A Service and its typed annotations -> the desired NLB [`Stack`], with upstream's defaults.
//!
//! One listener and one target group per Service port (a port number used by both TCP and UDP
//! becomes one `TCP_UDP` listener); TLS on the `ssl-ports` when `ssl-cert` is given; health checks
//! with the NLB defaults (TCP on the traffic port; for instance targets of an
//! `externalTrafficPolicy: Local` Service, HTTP `/healthz` on the health-check node port, as
//! upstream); subnets given or discovered (one per zone); the listener ports opened to the source
//! ranges in a managed security group unless explicit groups are given.

use std::collections::BTreeMap;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use lb_api::TargetType;

use super::annotations::ServiceAnnotations;
use super::ports::{PortContext, names};
use super::subnets::{Subnet, choose_subnets};
use crate::naming;
use crate::service::annotations::{IpAddressType, PortRef, ProxyProtocol, Scheme};
use crate::stack::{
    Binding, IngressRule, Listener, LoadBalancer, LoadBalancerKind, ManagedSecurityGroup,
    RuleSource, Stack, StackKind, SubnetMapping, rule_sources, tags,
};

/// What the cluster gives every stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `--cluster-name`.
    pub cluster: String,
    /// `--default-tags`.
    pub default_tags: BTreeMap<String, String>,
    /// TLS listeners without `ssl-negotiation-policy`.
    pub default_ssl_policy: String,
    /// `--enable-backend-security-group`, `--enable-manage-backend-security-group-rules`.
    pub security_groups: crate::stack::SecurityGroupSettings,
    /// `--external-managed-tags`: tag keys the controller leaves to someone else.
    pub external_managed_tags: Vec<String>,
    /// TCP and UDP on one port number make one `TCP_UDP` listener unless the Service says
    /// otherwise (`aws-load-balancer-enable-tcp-udp-listener`); upstream's gate
    /// `EnableTCPUDPListener`, off by default.
    pub tcp_udp_listeners: bool,
}

impl ClusterSettings {
    /// Cluster `cluster` with upstream's defaults for every other flag.
    pub fn upstream_defaults(cluster: &str) -> Self {
        Self {
            cluster: cluster.into(),
            default_tags: BTreeMap::new(),
            default_ssl_policy: crate::stack::DEFAULT_SSL_POLICY.into(),
            security_groups: Default::default(),
            external_managed_tags: Vec::new(),
            tcp_udp_listeners: false,
        }
    }
}

/// The stack, and what the user should hear about although it does not stop the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub stack: Stack,
    /// Each names the annotation and the value: an annotation not supported yet, or a port list
    /// naming a port the Service does not have (ignored, as upstream does, but said).
    pub warnings: Vec<String>,
    /// Defaults adapted to what the user set (a health-check timeout that would not fit the
    /// interval given), each naming the default and why.
    pub adapted: Vec<String>,
}

/// Why a Service's stack cannot be built; each names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("the Service has no ports")]
    NoPorts,
    /// ELB refuses a health check that times out after its next one is due.
    #[error(
        "annotations service.beta.kubernetes.io/aws-load-balancer-healthcheck-timeout ({timeout}s) and service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval ({interval}s): the timeout must not exceed the interval"
    )]
    HealthCheckTimeout { timeout: i32, interval: i32 },
    #[error("Service port {port} has no nodePort, which instance targets need")]
    NoNodePort { port: i32 },
    #[error(
        "Service port {port} has protocol {protocol}, which an NLB does not carry (TCP or UDP)"
    )]
    UnsupportedProtocol { port: i32, protocol: String },
    #[error("annotation {annotation}: {} names no port of the Service", crate::annotations::shown(.value))]
    UnknownPort { annotation: String, value: String },
    #[error(
        "Service ports {port}/TCP and {port}/UDP share a port number: set annotation service.beta.kubernetes.io/aws-load-balancer-enable-tcp-udp-listener: \"true\" for one TCP_UDP listener, or give them different ports"
    )]
    SharedPortNumber { port: i32 },
    #[error(
        "spec.ipFamilies has IPv6, which needs a dualstack load balancer: set annotation service.beta.kubernetes.io/aws-load-balancer-ip-address-type: dualstack"
    )]
    Ipv6NeedsDualstack,
    #[error(
        "annotation service.beta.kubernetes.io/aws-load-balancer-manage-backend-security-group-rules: \"true\" needs the backend security group, which --enable-backend-security-group=false turns off"
    )]
    BackendSecurityGroupDisabled,
    #[error(
        "annotation {annotation}: {count} value(s) for {subnets} subnet(s); give one per subnet"
    )]
    NotOnePerSubnet {
        annotation: String,
        count: usize,
        subnets: usize,
    },
    #[error("{0}")]
    Subnets(String),
    #[error(
        "annotations service.beta.kubernetes.io/aws-load-balancer-disable-nlb-sg: \"true\" and service.beta.kubernetes.io/aws-load-balancer-security-groups: an NLB without security groups cannot have some; drop one"
    )]
    SecurityGroupsDisabled,
}

pub fn build(
    service: &Service,
    annotations: &ServiceAnnotations,
    target_type: TargetType,
    settings: &ClusterSettings,
    subnets: &[Subnet],
) -> Result<Built, BuildError> {
    let spec = service.spec.clone().unwrap_or_default();
    let ports = spec.ports.clone().unwrap_or_default();
    if ports.is_empty() {
        return Err(BuildError::NoPorts);
    }
    let scheme = annotations.scheme.unwrap_or(Scheme::Internal);
    let ip_address_type = load_balancer_ip_address_type(annotations);
    let backend_security_group = security_groups(annotations, settings)?;
    // The targets admit the backend group, or without one the managed group (upstream's).
    let networking = backend_security_group || annotations.security_groups.is_none();
    let context = PortContext::new(service, annotations, target_type, settings, networking)?;
    let identity = context.identity;
    let stack_id = format!("{}/{}", identity.namespace, identity.name);
    let base_tags = |resource: &str| ownership_tags(settings, annotations, &stack_id, resource);
    let warnings = warnings(annotations, &ports);
    let resources = context.port_resources(&ports, &base_tags)?;
    let listeners = resources.listeners;
    let lb_name = (annotations.name.clone()).unwrap_or_else(|| {
        naming::service_load_balancer(&settings.cluster, identity, scheme.as_str())
    });
    let mut attributes = annotations.load_balancer_attributes.clone();
    // The older specific annotations win over the attributes annotation, as upstream.
    attributes.extend(annotations.legacy_attributes.clone());
    let managed_security_group = annotations.security_groups.is_none().then(|| {
        let sources = rule_sources_of(&spec, annotations, ip_address_type);
        ManagedSecurityGroup {
            name: naming::service_security_group(&settings.cluster, identity),
            ingress: ingress_rules(&listeners, &sources),
            tags: base_tags(tags::MANAGED_SECURITY_GROUP),
        }
    });
    let (subnets, subnets_problem) =
        chosen_subnets(annotations, subnets, scheme.as_str(), &settings.cluster)?;
    let mut stack = Stack {
        id: stack_id.clone(),
        kind: StackKind::Service,
        load_balancer: LoadBalancer {
            name: lb_name,
            kind: LoadBalancerKind::Network,
            scheme,
            ip_address_type,
            subnets,
            subnets_named: annotations.subnets.is_some(),
            subnets_problem,
            security_groups: annotations.security_groups.clone().unwrap_or_default(),
            attributes,
            tags: base_tags(tags::LOAD_BALANCER),
        },
        managed_security_group,
        backend_security_group,
        listeners,
        target_groups: resources.target_groups,
        bindings: resources.bindings,
        external_managed_tags: settings.external_managed_tags.clone(),
        held_members: Vec::new(),
    };
    without_security_groups(&mut stack, &spec, annotations)?;
    Ok(Built {
        stack,
        warnings,
        adapted: resources.adapted,
    })
}

/// The NLB's subnets (named, or discovered for `scheme`), and why none was discovered: no
/// matter for an NLB that exists, which keeps its own.
fn chosen_subnets(
    annotations: &ServiceAnnotations,
    subnets: &[Subnet],
    scheme: &str,
    cluster: &str,
) -> Result<(Vec<SubnetMapping>, Option<String>), BuildError> {
    match subnet_mappings(annotations, subnets, scheme, cluster) {
        Ok(subnets) => Ok((subnets, None)),
        Err(BuildError::Subnets(problem)) if annotations.subnets.is_none() => {
            Ok((Vec::new(), Some(problem)))
        }
        Err(error) => Err(error),
    }
}

/// Whether the NLB gets the backend security group; refused when the annotations ask for
/// groups the flags turn off, or for none (`disable-nlb-sg`) and some. The annotations and the
/// flags alone decide: the webhook's prediction of the bindings refuses the same.
fn security_groups(
    annotations: &ServiceAnnotations,
    settings: &ClusterSettings,
) -> Result<bool, BuildError> {
    let explicit_groups = annotations.security_groups.is_some();
    if annotations.disable_nlb_security_groups == Some(true) && explicit_groups {
        return Err(BuildError::SecurityGroupsDisabled);
    }
    settings
        .security_groups
        .attaches_backend(
            explicit_groups,
            annotations.manage_backend_security_group_rules,
        )
        .map_err(|_| BuildError::BackendSecurityGroupDisabled)
}

/// `disable-nlb-sg: "true"`: an NLB without security groups, its targets admitting it by
/// address (with groups named it was refused by [`security_groups`]).
fn without_security_groups(
    stack: &mut Stack,
    spec: &ServiceSpec,
    annotations: &ServiceAnnotations,
) -> Result<(), BuildError> {
    if annotations.disable_nlb_security_groups != Some(true) {
        return Ok(());
    }
    let named = named_source_ranges(spec, annotations);
    super::by_address::admit_by_address(stack, named.as_deref());
    Ok(())
}

/// `dualstack` when the annotation says so, else `ipv4`.
pub(super) fn load_balancer_ip_address_type(annotations: &ServiceAnnotations) -> IpAddressType {
    match annotations.ip_address_type {
        Some(IpAddressType::Dualstack) => IpAddressType::Dualstack,
        _ => IpAddressType::Ipv4,
    }
}

/// The annotation's tags, the cluster's default tags over them (upstream's order: `--default-tags`
/// win), and the ownership tags (which always win).
fn ownership_tags(
    settings: &ClusterSettings,
    annotations: &ServiceAnnotations,
    stack_id: &str,
    resource: &str,
) -> BTreeMap<String, String> {
    let mut t = annotations.additional_tags.clone();
    t.extend(settings.default_tags.clone());
    t.insert(tags::CLUSTER.into(), settings.cluster.clone());
    t.insert(tags::SERVICE_STACK.into(), stack_id.to_string());
    t.insert(tags::SERVICE_RESOURCE.into(), resource.to_string());
    t
}

fn warnings(annotations: &ServiceAnnotations, ports: &[ServicePort]) -> Vec<String> {
    let mut warnings = port_list_warnings(annotations, ports);
    warnings.extend(
        annotations
            .not_supported_yet
            .iter()
            .map(|key| format!("annotation {key} is not supported yet: it has no effect")),
    );
    warnings
}

/// Ports named by `ssl-ports` and `proxy-protocol-per-target-group` that the Service lacks.
fn port_list_warnings(annotations: &ServiceAnnotations, ports: &[ServicePort]) -> Vec<String> {
    let lists = [
        (
            "service.beta.kubernetes.io/aws-load-balancer-ssl-ports",
            annotations.ssl_ports.as_ref(),
        ),
        (
            "service.beta.kubernetes.io/aws-load-balancer-proxy-protocol-per-target-group",
            match &annotations.proxy_protocol {
                Some(ProxyProtocol::Ports(p)) => Some(p),
                _ => None,
            },
        ),
    ];
    let mut warnings = Vec::new();
    for (annotation, refs) in lists {
        for port_ref in refs.into_iter().flatten() {
            if !ports.iter().any(|p| names(port_ref, p)) {
                let value = match port_ref {
                    PortRef::Number(n) => n.to_string(),
                    PortRef::Name(n) => n.clone(),
                };
                warnings.push(format!(
                    "annotation {annotation}: {} names no port of the Service; ignored",
                    crate::annotations::shown(&value)
                ));
            }
        }
    }
    warnings
}

/// The names of the TargetGroupBindings [`build`] makes for `service`, with the Service port
/// each binds: the pod webhook gives pods their readiness gates before the bindings exist.
/// Subnets play no part in them; every refusal of the annotations and flags alone does (a pod
/// gated on a binding that will never be made would stay unready).
pub fn bindings(
    service: &Service,
    annotations: &ServiceAnnotations,
    target_type: TargetType,
    settings: &ClusterSettings,
) -> Result<Vec<Binding>, BuildError> {
    security_groups(annotations, settings)?;
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let context = PortContext::new(service, annotations, target_type, settings, false)?;
    let resources = context.port_resources(&ports, &|_| BTreeMap::new())?;
    Ok(resources.bindings)
}

/// `load-balancer-source-ranges`, else `spec.loadBalancerSourceRanges`, else everyone.
/// The clients a Service names: the annotation, else `spec.loadBalancerSourceRanges`.
fn named_source_ranges(
    spec: &k8s_openapi::api::core::v1::ServiceSpec,
    annotations: &ServiceAnnotations,
) -> Option<Vec<IpNet>> {
    if let Some(ranges) = &annotations.source_ranges {
        return Some(ranges.clone());
    }
    let from_spec: Vec<IpNet> = spec
        .load_balancer_source_ranges
        .iter()
        .flatten()
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    (!from_spec.is_empty()).then_some(from_spec)
}

/// Who the managed group admits: the source ranges and prefix lists named, else everyone (IPv6
/// too when dualstack).
fn rule_sources_of(
    spec: &k8s_openapi::api::core::v1::ServiceSpec,
    annotations: &ServiceAnnotations,
    ip_address_type: IpAddressType,
) -> Vec<RuleSource> {
    let mut everyone = vec![IpNet::V4(ipnet::Ipv4Net::default())];
    if ip_address_type == IpAddressType::Dualstack {
        everyone.push(IpNet::V6(ipnet::Ipv6Net::default()));
    }
    let named = named_source_ranges(spec, annotations);
    let prefix_lists = annotations.prefix_lists.clone().unwrap_or_default();
    rule_sources(named.as_deref(), &prefix_lists, &everyone)
}

fn ingress_rules(listeners: &[Listener], sources: &[RuleSource]) -> Vec<IngressRule> {
    let mut rules = Vec::new();
    for listener in listeners {
        let protocols: &[&str] = match listener.protocol.as_str() {
            "UDP" => &["udp"],
            "TCP_UDP" => &["tcp", "udp"],
            _ => &["tcp"],
        };
        for protocol in protocols {
            for source in sources {
                rules.push(IngressRule {
                    protocol: (*protocol).into(),
                    port: listener.port,
                    source: source.clone(),
                });
            }
        }
    }
    rules
}

fn subnet_mappings(
    annotations: &ServiceAnnotations,
    subnets: &[Subnet],
    scheme: &str,
    cluster: &str,
) -> Result<Vec<SubnetMapping>, BuildError> {
    let annotation = "service.beta.kubernetes.io/aws-load-balancer-subnets";
    let chosen = choose_subnets(
        annotations.subnets.as_deref(),
        subnets,
        scheme,
        cluster,
        annotation,
    )
    .map_err(BuildError::Subnets)?;
    let per_subnet = |annotation: &str, values: Option<Vec<String>>| match values {
        Some(v) if v.len() != chosen.len() => Err(BuildError::NotOnePerSubnet {
            annotation: annotation.to_string(),
            count: v.len(),
            subnets: chosen.len(),
        }),
        Some(v) => Ok(v.into_iter().map(Some).collect()),
        None => Ok(vec![None; chosen.len()]),
    };
    let eips = per_subnet(
        "service.beta.kubernetes.io/aws-load-balancer-eip-allocations",
        annotations.eip_allocations.clone(),
    )?;
    let private = per_subnet(
        "service.beta.kubernetes.io/aws-load-balancer-private-ipv4-addresses",
        annotations
            .private_ipv4_addresses
            .as_ref()
            .map(|a| a.iter().map(ToString::to_string).collect()),
    )?;
    Ok(chosen
        .into_iter()
        .zip(eips.into_iter().zip(private))
        .map(
            |(subnet, (allocation_id, private_ipv4_address))| SubnetMapping {
                subnet_id: subnet.id.clone(),
                allocation_id,
                private_ipv4_address,
            },
        )
        .collect())
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
