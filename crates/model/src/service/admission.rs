//! The Service mutator's decision: a new `type: LoadBalancer` Service that names no
//! `spec.loadBalancerClass` gets the controller's, as upstream's `mservice` webhook does, so its
//! NLB is made by us and not by the in-tree cloud provider. A Service naming a class keeps it;
//! updates are never touched (the class is immutable once set).

use json_patch::{AddOperation, PatchOperation};
use k8s_openapi::api::core::v1::Service;

/// The JSON patch giving a Service being created the class `class` (empty: leave it as it is).
pub fn default_class(service: &Service, class: &str, creating: bool) -> Vec<PatchOperation> {
    let spec = service.spec.as_ref();
    let load_balancer = spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    let named = spec.and_then(|s| s.load_balancer_class.as_ref()).is_some();
    if !creating || !load_balancer || named {
        return Vec::new();
    }
    vec![PatchOperation::Add(AddOperation {
        path: jsonptr::PointerBuf::from_tokens(["spec", "loadBalancerClass"]),
        value: serde_json::Value::String(class.to_string()),
    })]
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;

    fn service(type_: &str, class: Option<&str>) -> Service {
        Service {
            spec: Some(ServiceSpec {
                type_: Some(type_.into()),
                load_balancer_class: class.map(Into::into),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    #[test]
    fn only_new_load_balancers_without_a_class_get_ours() {
        let patch = default_class(&service("LoadBalancer", None), "service.k8s.aws/nlb", true);
        let mut value = serde_json::to_value(service("LoadBalancer", None)).unwrap();
        json_patch::patch(&mut value, &json_patch::Patch(patch)).unwrap();
        assert_eq!(value["spec"]["loadBalancerClass"], "service.k8s.aws/nlb");
        for (svc, creating) in [
            (service("LoadBalancer", Some("other.io/lb")), true),
            (service("ClusterIP", None), true),
            (service("LoadBalancer", None), false),
        ] {
            assert!(default_class(&svc, "service.k8s.aws/nlb", creating).is_empty());
        }
    }
}
