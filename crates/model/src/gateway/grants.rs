//! ReferenceGrants: whether an object in one namespace may refer to one in another (a route to a
//! Service, a Gateway to a Secret). A reference within one namespace needs no grant.

use lb_api::gateway::ReferenceGrant;

/// The referring side: the kind's group and name, and its namespace.
#[derive(Debug, Clone, Copy)]
pub struct From<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
}

/// The referred side.
#[derive(Debug, Clone, Copy)]
pub struct To<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// Whether `from` may refer to `to`: the same namespace, or a grant in `to`'s namespace that
/// lists `from`'s kind and namespace and `to`'s kind (and name, when it names one).
pub fn permitted(grants: &[ReferenceGrant], from: From<'_>, to: To<'_>) -> bool {
    if from.namespace == to.namespace {
        return true;
    }
    grants
        .iter()
        .filter(|grant| grant.metadata.namespace.as_deref() == Some(to.namespace))
        .any(|grant| {
            let from_listed = grant.spec.from.iter().any(|f| {
                f.group == from.group && f.kind == from.kind && f.namespace == from.namespace
            });
            let to_listed = grant.spec.to.iter().any(|t| {
                t.group == to.group
                    && t.kind == to.kind
                    && t.name.as_deref().is_none_or(|name| name == to.name)
            });
            from_listed && to_listed
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_api::gateway::{ReferenceGrantFrom, ReferenceGrantSpec, ReferenceGrantTo};

    fn grant(namespace: &str, from: ReferenceGrantFrom, to: ReferenceGrantTo) -> ReferenceGrant {
        let mut grant = ReferenceGrant::new(
            "grant",
            ReferenceGrantSpec {
                from: vec![from],
                to: vec![to],
            },
        );
        grant.metadata.namespace = Some(namespace.into());
        grant
    }

    const ROUTE: From<'static> = From {
        group: "gateway.networking.k8s.io",
        kind: "HTTPRoute",
        namespace: "infra",
    };

    fn service(namespace: &'static str) -> To<'static> {
        To {
            group: "",
            kind: "Service",
            namespace,
            name: "web",
        }
    }

    fn from_routes_of(namespace: &str) -> ReferenceGrantFrom {
        ReferenceGrantFrom {
            group: "gateway.networking.k8s.io".into(),
            kind: "HTTPRoute".into(),
            namespace: namespace.into(),
        }
    }

    fn to_service(name: Option<&str>) -> ReferenceGrantTo {
        ReferenceGrantTo {
            group: String::new(),
            kind: "Service".into(),
            name: name.map(str::to_string),
        }
    }

    #[test]
    fn the_same_namespace_needs_no_grant_another_needs_a_matching_one() {
        assert!(permitted(&[], ROUTE, service("infra")));
        assert!(!permitted(&[], ROUTE, service("web")));
        let good = grant("web", from_routes_of("infra"), to_service(None));
        assert!(permitted(
            std::slice::from_ref(&good),
            ROUTE,
            service("web")
        ));
        let named = grant("web", from_routes_of("infra"), to_service(Some("web")));
        assert!(permitted(&[named], ROUTE, service("web")));
    }

    #[test]
    fn a_grant_wrong_in_any_one_field_permits_nothing() {
        let wrong = [
            grant("infra", from_routes_of("infra"), to_service(None)),
            grant("web", from_routes_of("other"), to_service(None)),
            grant("web", from_routes_of("infra"), to_service(Some("other"))),
            grant(
                "web",
                ReferenceGrantFrom {
                    kind: "GRPCRoute".into(),
                    ..from_routes_of("infra")
                },
                to_service(None),
            ),
            grant(
                "web",
                from_routes_of("infra"),
                ReferenceGrantTo {
                    kind: "Secret".into(),
                    ..to_service(None)
                },
            ),
            grant(
                "web",
                ReferenceGrantFrom {
                    group: "wrong.example.com".into(),
                    ..from_routes_of("infra")
                },
                to_service(None),
            ),
        ];
        for grant in wrong {
            assert!(
                !permitted(std::slice::from_ref(&grant), ROUTE, service("web")),
                "{grant:?}"
            );
        }
    }
}
