//! A GatewayClass of ours (`controllerName: gateway.k8s.aws/alb`): accepted when its parameters
//! (if any) name a `LoadBalancerConfiguration` that exists, with the features this controller
//! supports listed in its status (the conformance suite reads them).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use lb_api::gateway::{GatewayClass, GatewayClassStatus, SupportedFeature};

use super::conditions::{Verdict, merge, types};

/// The group and kind of the parameters a class (or a Gateway) may name.
pub const PARAMETERS_GROUP: &str = "gateway.k8s.aws";
pub const PARAMETERS_KIND: &str = "LoadBalancerConfiguration";

/// The Gateway API features an ALB Gateway supports (the spec's names, sorted): the core ones,
/// and the extended ones an ALB can do that are built. The conformance run claims exactly these.
pub const SUPPORTED_FEATURES: [&str; 15] = [
    "Gateway",
    "GatewayAddressEmpty",
    "GatewayHTTPListenerIsolation",
    "GatewayInfrastructure",
    "GatewayPort8080",
    "HTTPRoute",
    "HTTPRouteDestinationPortMatching",
    "HTTPRouteMethodMatching",
    "HTTPRouteNamedRouteRule",
    "HTTPRouteParentRefPort",
    "HTTPRoutePortRedirect",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteSchemeRedirect",
    "ListenerSet",
    "ReferenceGrant",
];

/// What the snapshot says of the class's `parametersRef`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parameters {
    /// The class names none.
    None,
    /// It names a LoadBalancerConfiguration that exists.
    Found,
    /// It names one that does not exist.
    Missing,
}

/// The status the class should have (Accepted, with the supported features).
pub fn class_status(
    class: &GatewayClass,
    parameters: Parameters,
    now: &Time,
) -> GatewayClassStatus {
    let verdict = accepted(class, parameters);
    let previous = class.status.as_ref().map_or(&[][..], |s| &s.conditions[..]);
    GatewayClassStatus {
        conditions: merge(previous, &[verdict], class.metadata.generation, now),
        supported_features: SUPPORTED_FEATURES
            .iter()
            .map(|name| SupportedFeature {
                name: (*name).to_string(),
            })
            .collect(),
    }
}

fn accepted(class: &GatewayClass, parameters: Parameters) -> Verdict {
    let refused =
        |message: String| Verdict::new(types::ACCEPTED, false, "InvalidParameters", message);
    match (&class.spec.parameters_ref, parameters) {
        (Some(reference), _)
            if reference.group != PARAMETERS_GROUP || reference.kind != PARAMETERS_KIND =>
        {
            refused(format!(
                "parametersRef names {}/{}; only {PARAMETERS_GROUP}/{PARAMETERS_KIND} is supported",
                reference.group, reference.kind
            ))
        }
        (Some(reference), _) if reference.namespace.is_none() => refused(format!(
            "parametersRef {PARAMETERS_KIND} {} has no namespace (a class is cluster-wide, its parameters are not)",
            reference.name
        )),
        (Some(reference), Parameters::Missing) => refused(format!(
            "parametersRef {PARAMETERS_KIND} {}/{} does not exist",
            reference.namespace.as_deref().unwrap_or_default(),
            reference.name
        )),
        _ => Verdict::new(
            types::ACCEPTED,
            true,
            "Accepted",
            "accepted by lb-controller",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_api::gateway::{GatewayClassSpec, ParametersReference};

    fn class(parameters: Option<ParametersReference>) -> GatewayClass {
        let mut class = GatewayClass::new(
            "alb",
            GatewayClassSpec {
                controller_name: lb_api::gateway::ALB_CONTROLLER_NAME.into(),
                parameters_ref: parameters,
                description: None,
            },
        );
        class.metadata.generation = Some(4);
        class
    }

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(100).expect("time"))
    }

    fn accepted_of(status: &GatewayClassStatus) -> (String, String, Option<i64>) {
        let c = &status.conditions[0];
        (c.status.clone(), c.reason.clone(), c.observed_generation)
    }

    #[test]
    fn a_class_without_parameters_is_accepted_at_its_generation_with_the_features() {
        let status = class_status(&class(None), Parameters::None, &now());
        assert_eq!(
            accepted_of(&status),
            ("True".into(), "Accepted".into(), Some(4))
        );
        let names: Vec<&str> = status
            .supported_features
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, SUPPORTED_FEATURES);
    }

    #[test]
    fn parameters_of_another_kind_without_namespace_or_missing_are_invalid() {
        let reference = |kind: &str, namespace: Option<&str>| ParametersReference {
            group: PARAMETERS_GROUP.into(),
            kind: kind.into(),
            name: "config".into(),
            namespace: namespace.map(str::to_string),
        };
        for (parameters, found) in [
            (reference("ConfigMap", Some("ns")), Parameters::Found),
            (reference(PARAMETERS_KIND, None), Parameters::Found),
            (reference(PARAMETERS_KIND, Some("ns")), Parameters::Missing),
        ] {
            let status = class_status(&class(Some(parameters.clone())), found, &now());
            assert_eq!(
                accepted_of(&status),
                ("False".into(), "InvalidParameters".into(), Some(4)),
                "{parameters:?}"
            );
        }
        let status = class_status(
            &class(Some(reference(PARAMETERS_KIND, Some("ns")))),
            Parameters::Found,
            &now(),
        );
        assert_eq!(accepted_of(&status).0, "True");
    }
}
