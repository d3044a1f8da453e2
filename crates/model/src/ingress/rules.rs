//! One Ingress's `spec.rules` -> listener rules in evaluation order, before their backends are
//! resolved to target groups.
//!
//! Each path is one rule: `host-header` from the rule's host, `path-pattern` from the path, and the
//! `conditions.<backend>` annotation's conditions. Within one host, paths are ordered as
//! Kubernetes defines precedence (ELB takes the first match): Exact first, then Prefix longest
//! first, then ImplementationSpecific as written. Path types map to ELB patterns:
//! - Exact `/a` -> `/a`;
//! - Prefix `/a` -> `/a` and `/a/*` (so `/ab` does not match); Prefix `/` -> `/*`;
//! - ImplementationSpecific: the path as written (ELB wildcards `*` `?`), a regular expression
//!   under `use-regex-path-match`, or no path condition when there is no path.
//!
//! A rule left without any condition gets `/*` (ELB needs one).

use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend};
use lb_api::keys::ingress as keys;

use super::annotations::IngressAnnotations;
use super::json::ServicePortRef;
use crate::stack::Condition;

/// Where a path's requests go, as the Ingress says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendRef {
    Service {
        name: String,
        port: ServicePortRef,
    },
    /// `port.name: use-annotation`: the `actions.<name>` annotation.
    Action(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule {
    pub conditions: Vec<Condition>,
    pub backend: BackendRef,
}

/// What is wrong with one path of the spec; the member is left out of its group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(
        "path {path:?} ({path_type}) contains a wildcard, which only ImplementationSpecific paths may"
    )]
    Wildcard { path: String, path_type: String },
    #[error("path {path:?} has pathType {path_type:?}; Exact, Prefix or ImplementationSpecific")]
    PathType { path: String, path_type: String },
    #[error("a backend names a resource, not a Service; only Services are supported")]
    ResourceBackend,
    #[error("a backend names no Service")]
    NoService,
    #[error(
        "backend {0:?} uses port use-annotation but annotation alb.ingress.kubernetes.io/actions.{0} is not set"
    )]
    MissingAction(String),
}

pub fn path_rules(
    ingress: &Ingress,
    annotations: &IngressAnnotations,
) -> Result<Vec<PathRule>, RuleError> {
    let mut rules = Vec::new();
    let spec_rules = ingress
        .spec
        .as_ref()
        .and_then(|s| s.rules.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    for rule in spec_rules {
        let host = rule.host.as_deref().filter(|h| !h.is_empty());
        let mut paths: Vec<&HTTPIngressPath> = rule
            .http
            .as_ref()
            .map(|h| h.paths.iter().collect())
            .unwrap_or_default();
        paths.sort_by_key(|p| precedence(p));
        for path in paths {
            let mut conditions = Vec::new();
            if let Some(host) = host {
                conditions.push(Condition::HostHeader(vec![host.to_string()]));
            }
            conditions.extend(path_condition(path, annotations.use_regex_path_match)?);
            let backend = backend(&path.backend, annotations)?;
            let name = match &backend {
                BackendRef::Service { name, .. } | BackendRef::Action(name) => name,
            };
            conditions.extend(
                annotations
                    .conditions
                    .get(name)
                    .cloned()
                    .unwrap_or_default(),
            );
            if conditions.is_empty() {
                conditions.push(Condition::PathPattern {
                    values: vec!["/*".into()],
                    regex: false,
                });
            }
            rules.push(PathRule {
                conditions,
                backend,
            });
        }
    }
    Ok(rules)
}

/// Sort key within one host: Exact (0), Prefix longest first (1, -len), the rest as written
/// (the sort is stable).
fn precedence(path: &HTTPIngressPath) -> (u8, isize) {
    let len = path.path.as_deref().map_or(0, str::len);
    match path.path_type.as_str() {
        "Exact" => (0, 0),
        "Prefix" => (1, -isize::try_from(len).unwrap_or(isize::MAX)),
        _ => (2, 0),
    }
}

fn path_condition(path: &HTTPIngressPath, regex: bool) -> Result<Option<Condition>, RuleError> {
    let value = path.path.clone().unwrap_or_default();
    let wildcard = value.contains('*') || value.contains('?');
    let pattern = |values: Vec<String>| {
        Some(Condition::PathPattern {
            values,
            regex: false,
        })
    };
    match path.path_type.as_str() {
        "Exact" | "Prefix" if wildcard => Err(RuleError::Wildcard {
            path: value,
            path_type: path.path_type.clone(),
        }),
        "Exact" => Ok(pattern(vec![value])),
        "Prefix" => {
            let trimmed = value.trim_end_matches('/');
            if trimmed.is_empty() {
                Ok(pattern(vec!["/*".into()]))
            } else {
                Ok(pattern(vec![trimmed.to_string(), format!("{trimmed}/*")]))
            }
        }
        "ImplementationSpecific" if value.is_empty() => Ok(None),
        "ImplementationSpecific" => Ok(Some(Condition::PathPattern {
            values: vec![value],
            regex,
        })),
        other => Err(RuleError::PathType {
            path: value,
            path_type: other.to_string(),
        }),
    }
}

pub fn backend(
    backend: &IngressBackend,
    annotations: &IngressAnnotations,
) -> Result<BackendRef, RuleError> {
    if backend.resource.is_some() {
        return Err(RuleError::ResourceBackend);
    }
    let service = backend.service.as_ref().ok_or(RuleError::NoService)?;
    let port = service.port.as_ref();
    let port_name = port.and_then(|p| p.name.as_deref());
    if port_name == Some(keys::USE_ANNOTATION) {
        if !annotations.actions.contains_key(&service.name) {
            return Err(RuleError::MissingAction(service.name.clone()));
        }
        return Ok(BackendRef::Action(service.name.clone()));
    }
    let port = match (port.and_then(|p| p.number), port_name) {
        (Some(n), _) => ServicePortRef::Number(n),
        (None, Some(name)) => ServicePortRef::Name(name.to_string()),
        (None, None) => ServicePortRef::Number(0),
    };
    Ok(BackendRef::Service {
        name: service.name.clone(),
        port,
    })
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
