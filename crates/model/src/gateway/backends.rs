//! A route's backends resolved: each a Service (the core kind), in reach (its own namespace, or
//! one a ReferenceGrant opens), existing, with the port named. A rule whose backends do not all
//! resolve answers 500 for the ones that do not (the spec's rule); the route's `ResolvedRefs`
//! condition names the first problem.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use lb_api::gateway::{BackendObjectReference, GROUP, HTTPRoute, ReferenceGrant};

use super::conditions::{Verdict, types};
use super::grants::{self, permitted};

/// A backend that resolved: the Service and its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    pub port: i32,
    pub weight: i32,
}

/// A backend that did not: the condition reason and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub reason: &'static str,
    pub message: String,
}

/// Services by (namespace, name), the grants in the cluster, and upstream's
/// TargetGroupConfigurations (empty when their CRD is not served).
#[derive(Debug, Clone, Default)]
pub struct BackendSnapshot {
    pub services: BTreeMap<(String, String), Service>,
    pub grants: Vec<ReferenceGrant>,
    pub target_group_configs: Vec<lb_api::gateway_config::TargetGroupConfiguration>,
}

/// Whether one of `route`'s rules sends to a Service of `namespace` whose name `named` takes
/// (the watches and the pod webhook find a Service's routes by it).
pub fn sends_to(route: &HTTPRoute, namespace: &str, named: impl Fn(&str) -> bool) -> bool {
    let route_namespace = route.metadata.namespace.as_deref().unwrap_or_default();
    route
        .spec
        .rules
        .iter()
        .flat_map(|r| &r.backend_refs)
        .any(|b| {
            named(&b.backend.name)
                && b.backend.namespace.as_deref().unwrap_or(route_namespace) == namespace
        })
}

/// Resolves `reference` of a `route_kind` in `route_namespace`.
pub fn resolve(
    reference: &BackendObjectReference,
    weight: Option<i32>,
    route_kind: &str,
    route_namespace: &str,
    snapshot: &BackendSnapshot,
) -> Result<Backend, Unresolved> {
    let group = reference.group.as_deref().unwrap_or("");
    let kind = reference.kind.as_deref().unwrap_or("Service");
    let namespace = reference.namespace.as_deref().unwrap_or(route_namespace);
    let name = format!("{namespace}/{}", reference.name);
    let unresolved = |reason, message: String| Err(Unresolved { reason, message });
    if !group.is_empty() || kind != "Service" {
        return unresolved(
            "InvalidKind",
            format!("backendRef {name} is a {group}/{kind}: only Services are supported"),
        );
    }
    let from = grants::From {
        group: GROUP,
        kind: route_kind,
        namespace: route_namespace,
    };
    let to = grants::To {
        group: "",
        kind: "Service",
        namespace,
        name: &reference.name,
    };
    if !permitted(&snapshot.grants, from, to) {
        return unresolved(
            "RefNotPermitted",
            format!(
                "no ReferenceGrant in {namespace} lets {route_kind}s of {route_namespace} use Service {name}"
            ),
        );
    }
    let Some(service) = snapshot
        .services
        .get(&(namespace.to_string(), reference.name.clone()))
    else {
        return unresolved("BackendNotFound", format!("Service {name} does not exist"));
    };
    let Some(port) = reference.port else {
        return unresolved(
            "UnsupportedValue",
            format!("backendRef {name} has no port (a Service needs one)"),
        );
    };
    let ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
    if !ports.into_iter().flatten().any(|p| p.port == port) {
        return unresolved(
            "BackendNotFound",
            format!("Service {name} has no port {port}"),
        );
    }
    Ok(Backend {
        namespace: namespace.to_string(),
        service: reference.name.clone(),
        port,
        weight: weight.unwrap_or(1),
    })
}

/// The route's `ResolvedRefs` condition from the problems of its backends (the first named).
pub fn resolved_refs<'a>(mut problems: impl Iterator<Item = &'a Unresolved>) -> Verdict {
    match problems.next() {
        None => Verdict::new(
            types::RESOLVED_REFS,
            true,
            "ResolvedRefs",
            "all backends resolved",
        ),
        Some(problem) => Verdict::new(
            types::RESOLVED_REFS,
            false,
            problem.reason,
            problem.message.clone(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};

    fn snapshot() -> BackendSnapshot {
        let service = |namespace: &str, name: &str| Service {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                ports: Some(vec![ServicePort {
                    port: 8080,
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        };
        let mut snapshot = BackendSnapshot::default();
        for (namespace, name) in [("infra", "infra-backend-v1"), ("web", "web-backend")] {
            snapshot
                .services
                .insert((namespace.into(), name.into()), service(namespace, name));
        }
        snapshot
    }

    fn backend(name: &str, namespace: Option<&str>, port: Option<i32>) -> BackendObjectReference {
        BackendObjectReference {
            name: name.into(),
            namespace: namespace.map(str::to_string),
            port,
            ..BackendObjectReference::default()
        }
    }

    fn reason(reference: &BackendObjectReference) -> &'static str {
        match resolve(reference, None, "HTTPRoute", "infra", &snapshot()) {
            Ok(_) => "ok",
            Err(problem) => problem.reason,
        }
    }

    #[test]
    fn a_backend_must_be_a_service_in_reach_that_exists_with_the_port() {
        assert_eq!(reason(&backend("infra-backend-v1", None, Some(8080))), "ok");
        let unknown_kind = BackendObjectReference {
            group: Some("unknownkind.example.com".into()),
            kind: Some("NonExistent".into()),
            ..backend("infra-backend-v1", None, Some(8080))
        };
        assert_eq!(reason(&unknown_kind), "InvalidKind");
        assert_eq!(
            reason(&backend("web-backend", Some("web"), Some(8080))),
            "RefNotPermitted"
        );
        assert_eq!(
            reason(&backend("nonexistent", None, Some(8080))),
            "BackendNotFound"
        );
        assert_eq!(
            reason(&backend("infra-backend-v1", None, None)),
            "UnsupportedValue"
        );
        assert_eq!(
            reason(&backend("infra-backend-v1", None, Some(9))),
            "BackendNotFound"
        );
        let resolved = resolve(
            &backend("infra-backend-v1", None, Some(8080)),
            Some(70),
            "HTTPRoute",
            "infra",
            &snapshot(),
        );
        assert_eq!(resolved.map(|b| b.weight), Ok(70));
    }
}
