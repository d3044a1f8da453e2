//! One member of an Ingress group -> what it brings to the ALB: its settings, listeners, rules
//! with resolved actions, default action, target groups and bindings. A member that cannot be
//! built is left out of its group with the reason; the others go on.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use lb_api::IngressClassParamsSpec;

use super::GroupId;
use super::annotations::{self, IngressAnnotations, TargetGroupAnnotations};
use super::error::MemberError;
use super::json::{ActionTarget, AnnotationAction, ListenerProtocol};
use super::params;
use super::rules::{self, BackendRef};
use super::target_groups::Backend;
use crate::annotations::AnnotationErrors;
use crate::stack::{Action, Binding, Rule, TargetGroup, TargetGroupRef, WeightedTargetGroup};

/// What the group builder needs from the cluster.
pub struct Cluster<'a> {
    pub settings: &'a super::IngressSettings,
    /// The Services the members may point at, as the caller's snapshot holds them.
    pub services: &'a Services,
    /// ACM certificates for discovery by host.
    pub certificates: &'a [super::Certificate],
}

/// A snapshot of Services, by namespace and name: what a pass reads, taken once (the model never
/// calls back into the caller's caches). Each Service's `alb.ingress` annotations are parsed at
/// most once per snapshot, however many paths point at it.
#[derive(Debug, Default)]
pub struct Services(BTreeMap<(String, String), KnownService>);

/// A Service of the snapshot, and its target group annotations once parsed.
#[derive(Debug)]
pub struct KnownService {
    pub service: Arc<Service>,
    annotations: OnceLock<ParsedService>,
}

/// A Service's target group annotations and the warnings they give, or why they cannot be used.
pub type ParsedService = Result<(TargetGroupAnnotations, Vec<String>), AnnotationErrors>;

impl KnownService {
    pub fn annotations(&self) -> &ParsedService {
        self.annotations.get_or_init(|| {
            let empty = BTreeMap::new();
            annotations::parse_service(self.service.metadata.annotations.as_ref().unwrap_or(&empty))
        })
    }
}

impl Services {
    pub fn new(services: impl IntoIterator<Item = Arc<Service>>) -> Self {
        let key = |s: &Service| {
            (
                s.metadata.namespace.clone().unwrap_or_default(),
                s.metadata.name.clone().unwrap_or_default(),
            )
        };
        let known = |service| KnownService {
            service,
            annotations: OnceLock::new(),
        };
        Self(services.into_iter().map(|s| (key(&s), known(s))).collect())
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&KnownService> {
        self.0.get(&(namespace.to_string(), name.to_string()))
    }
}

#[derive(Debug, Clone)]
pub struct MemberModel {
    pub key: String,
    pub annotations: IngressAnnotations,
    pub listen_ports: Vec<(ListenerProtocol, u16)>,
    pub certificates: Vec<String>,
    /// In evaluation order; they go on every listener of `listen_ports`.
    pub rules: Vec<Rule>,
    pub default_action: Option<Action>,
    pub target_groups: Vec<TargetGroup>,
    pub bindings: Vec<Binding>,
    pub warnings: Vec<String>,
    /// Defaults adapted to what the member set, each named.
    pub adapted: Vec<String>,
}

pub fn member_model(
    member: &super::GroupMember,
    cluster: &Cluster,
    group: &GroupId,
    group_tags: &BTreeMap<String, String>,
) -> Result<MemberModel, MemberError> {
    let mut model = model_given_certificates(member, cluster, group, group_tags)?;
    model.certificates = certificates_for(
        &model.listen_ports,
        std::mem::take(&mut model.certificates),
        &model.rules,
        cluster,
    )?;
    Ok(model)
}

/// [`member_model`] with only the certificates the member names (none discovered, and none
/// missing): what the pod webhook, which does not ask ACM, can know.
pub(super) fn model_given_certificates(
    member: &super::GroupMember,
    cluster: &Cluster,
    group: &GroupId,
    group_tags: &BTreeMap<String, String>,
) -> Result<MemberModel, MemberError> {
    let ingress = member.ingress;
    let parsed = member.parsed.as_ref().map_err(Clone::clone)?;
    let Routes {
        annotations,
        rules,
        default_action,
        target_groups,
        bindings,
        warnings,
        adapted,
    } = routes(ingress, parsed, cluster, group, group_tags)?;
    let certificates = annotations.certificate_arns.clone().unwrap_or_default();
    let listen_ports = annotations.listen_ports.clone().unwrap_or_else(|| {
        if certificates.is_empty() {
            vec![(ListenerProtocol::Http, 80)]
        } else {
            vec![(ListenerProtocol::Https, 443)]
        }
    });
    Ok(MemberModel {
        key: super::group::member_key(ingress),
        annotations,
        listen_ports,
        certificates,
        rules,
        default_action,
        target_groups,
        bindings,
        warnings,
        adapted,
    })
}

/// The TargetGroupBindings the group's build makes for `ingress` (none when it does not build,
/// alone: its quotas, its SSL redirect, the backend security group it asks for): the pod webhook
/// gives pods their readiness gates before the bindings exist. What it cannot know is taken as
/// fine: its ACM certificates, its subnets, and the other members of its group.
pub fn member_bindings(
    ingress: &Ingress,
    params: Option<&IngressClassParamsSpec>,
    cluster: &Cluster,
) -> Vec<Binding> {
    let group = super::group::group_of(ingress, params);
    let member = super::GroupMember::new(ingress, params);
    super::build::bindings_alone(&member, cluster, &group)
}

/// A member's rules and what they forward to, before listeners and certificates.
struct Routes {
    annotations: IngressAnnotations,
    rules: Vec<Rule>,
    default_action: Option<Action>,
    target_groups: Vec<TargetGroup>,
    bindings: Vec<Binding>,
    warnings: Vec<String>,
    adapted: Vec<String>,
}

/// An Ingress's annotations parsed, with its class's parameters over them.
#[derive(Debug, Clone)]
pub struct ParsedMember {
    pub annotations: IngressAnnotations,
    /// The target type the class parameters force, if they do.
    pub forced_target_type: Option<lb_api::TargetType>,
}

/// Parses `ingress`'s annotations once and lays its class's parameters over them.
pub fn parse_member(
    ingress: &Ingress,
    params: Option<&IngressClassParamsSpec>,
) -> Result<ParsedMember, MemberError> {
    let empty = BTreeMap::new();
    let mut annotations =
        annotations::parse(ingress.metadata.annotations.as_ref().unwrap_or(&empty))?;
    let forced_target_type = match params {
        Some(p) => params::apply(p, &mut annotations)?,
        None => None,
    };
    // The class parameters' tags win over the annotation's, for target groups too.
    annotations.target_group.tags = annotations.tags.clone();
    Ok(ParsedMember {
        annotations,
        forced_target_type,
    })
}

fn routes(
    ingress: &Ingress,
    parsed: &ParsedMember,
    cluster: &Cluster,
    group: &GroupId,
    group_tags: &BTreeMap<String, String>,
) -> Result<Routes, MemberError> {
    let annotations = parsed.annotations.clone();
    let forced_target_type = parsed.forced_target_type;
    let namespace = ingress.metadata.namespace.clone().unwrap_or_default();
    let name = ingress.metadata.name.clone().unwrap_or_default();
    let binding_labels = group.binding_labels();
    let backend = Backend {
        cluster: &cluster.settings.cluster,
        binding_labels: &binding_labels,
        group,
        namespace: &namespace,
        ingress: &name,
        annotations: &annotations.target_group,
        forced_target_type,
        default_target_type: cluster.settings.default_target_type,
        dualstack: annotations
            .ip_address_type
            .is_some_and(|t| t != super::annotations::IpAddressType::Ipv4),
        tags: group_tags,
    };
    let mut resolver = Resolver {
        backend,
        cluster,
        annotations: &annotations,
        target_groups: Vec::new(),
        bindings: Vec::new(),
        warnings: annotations.warnings.clone(),
        adapted: Vec::new(),
    };
    // This Ingress's tags; the defaults and ownership over them (upstream's rule tags).
    let mut rule_tags = annotations.tags.clone();
    rule_tags.extend(group_tags.clone());
    let mut rules = Vec::new();
    for path in rules::path_rules(ingress, &annotations)? {
        rules.push(Rule {
            conditions: path.conditions,
            action: resolver.action(&path.backend)?,
            tags: rule_tags.clone(),
        });
    }
    let default_action = match ingress
        .spec
        .as_ref()
        .and_then(|s| s.default_backend.as_ref())
    {
        Some(b) => {
            let backend = rules::backend(b, &annotations)?;
            Some(resolver.action(&backend)?)
        }
        None => None,
    };
    let Resolver {
        target_groups,
        bindings,
        warnings,
        adapted,
        ..
    } = resolver;
    Ok(Routes {
        annotations,
        rules,
        default_action,
        target_groups,
        bindings,
        warnings,
        adapted,
    })
}

/// The member's certificates: given, or else (when it listens on HTTPS) the ACM certificates
/// that cover its rules' hosts.
fn certificates_for(
    listen_ports: &[(ListenerProtocol, u16)],
    given: Vec<String>,
    rules: &[Rule],
    cluster: &Cluster,
) -> Result<Vec<String>, MemberError> {
    let https = listen_ports
        .iter()
        .find(|(p, _)| *p == ListenerProtocol::Https);
    let Some((_, port)) = https.filter(|_| given.is_empty()) else {
        return Ok(given);
    };
    let hosts: Vec<&str> = rules
        .iter()
        .flat_map(|r| &r.conditions)
        .filter_map(|c| match c {
            crate::stack::Condition::HostHeader(hosts) => Some(hosts),
            _ => None,
        })
        .flatten()
        .map(String::as_str)
        .collect();
    let mut found: Vec<String> = Vec::new();
    for host in &hosts {
        let cert = cluster.certificates.iter().find(|c| c.covers(host));
        match cert {
            Some(c) if !found.contains(&c.arn) => found.push(c.arn.clone()),
            Some(_) => {}
            None => {
                return Err(MemberError::NoCertificateForHost {
                    port: *port,
                    host: host.to_string(),
                });
            }
        }
    }
    if found.is_empty() {
        return Err(MemberError::NoCertificate { port: *port });
    }
    Ok(found)
}

/// Backends -> actions, making each target group once.
struct Resolver<'a> {
    backend: Backend<'a>,
    cluster: &'a Cluster<'a>,
    annotations: &'a IngressAnnotations,
    target_groups: Vec<TargetGroup>,
    bindings: Vec<Binding>,
    warnings: Vec<String>,
    adapted: Vec<String>,
}

impl Resolver<'_> {
    fn action(&mut self, backend: &BackendRef) -> Result<Action, MemberError> {
        match backend {
            BackendRef::Service { name, port } => {
                let id = self.target_group(name, port)?;
                Ok(Action::forward_to(&id))
            }
            BackendRef::Action(name) => {
                let key = format!("alb.ingress.kubernetes.io/actions.{name}");
                let action = self
                    .annotations
                    .actions
                    .get(name)
                    .ok_or_else(|| MemberError::ActionNotSet { key: key.clone() })?;
                self.annotation_action(action)
                    .map_err(|e| MemberError::Action {
                        key,
                        source: Box::new(e),
                    })
            }
        }
    }

    fn annotation_action(&mut self, action: &AnnotationAction) -> Result<Action, MemberError> {
        match action {
            AnnotationAction::Redirect(r) => Ok(Action::Redirect(r.clone())),
            AnnotationAction::FixedResponse(f) => Ok(Action::FixedResponse(f.clone())),
            AnnotationAction::Forward {
                targets,
                stickiness_seconds,
            } => {
                let mut target_groups = Vec::new();
                for t in targets {
                    let target_group = match &t.target {
                        ActionTarget::Service { name, port } => {
                            TargetGroupRef::Stack(self.target_group(name, port)?)
                        }
                        ActionTarget::Arn(arn) => TargetGroupRef::Arn(arn.clone()),
                        ActionTarget::Name(name) => {
                            return Err(MemberError::TargetGroupName(name.clone()));
                        }
                    };
                    target_groups.push(WeightedTargetGroup {
                        target_group,
                        // ELB's default weight is 1 when a forward names several groups.
                        weight: if targets.len() > 1 {
                            Some(t.weight.unwrap_or(1))
                        } else {
                            None
                        },
                    });
                }
                Ok(Action::Forward {
                    target_groups,
                    stickiness_seconds: *stickiness_seconds,
                })
            }
        }
    }

    /// The resource id of the target group for `service`:`port`, made on first use.
    fn target_group(
        &mut self,
        service: &str,
        port: &super::json::ServicePortRef,
    ) -> Result<String, MemberError> {
        let found = self.cluster.services.get(self.backend.namespace, service);
        let made = self.backend.target_group(found, service, port)?;
        let id = made.target_group.resource_id.clone();
        if !self.target_groups.iter().any(|t| t.resource_id == id) {
            self.target_groups.push(made.target_group);
            self.bindings.push(made.binding);
            self.warnings.extend(made.warnings);
            self.adapted.extend(made.adapted);
        }
        Ok(id)
    }
}

/// Whether building `ingress` may need the account's certificates: it listens on HTTPS (by
/// annotation or class parameters) without naming a certificate. The reconciler asks ACM only
/// then.
pub fn needs_certificate_discovery(member: &super::GroupMember) -> bool {
    let Ok(parsed) = &member.parsed else {
        return false;
    };
    let parsed = &parsed.annotations;
    parsed.certificate_arns.is_none()
        && parsed
            .listen_ports
            .iter()
            .flatten()
            .any(|(protocol, _)| *protocol == ListenerProtocol::Https)
}
