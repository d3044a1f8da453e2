//! Which Ingresses are ours, as upstream decides: the legacy annotation
//! `kubernetes.io/ingress.class` equal to `--ingress-class`, or else `spec.ingressClassName` (or,
//! without one, the cluster's default IngressClass) naming an IngressClass whose controller is
//! `ingress.k8s.aws/alb`. Such a class may carry `IngressClassParams`, whose fields override the
//! Ingress's annotations.

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use lb_api::IngressClassParamsSpec;
use lb_api::keys::ingress as keys;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSettings {
    /// `--ingress-class`.
    pub ingress_class: String,
}

impl Default for ClassSettings {
    fn default() -> Self {
        Self {
            ingress_class: keys::DEFAULT_CLASS.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Ours; the class's parameters, when it names some.
    Ours {
        params: Option<Box<IngressClassParamsSpec>>,
    },
    NotOurs,
    /// It names a class of ours whose parameters cannot be used: said as a Warning; the Ingress
    /// stays out of its group until fixed.
    Refused(String),
}

/// What the reconciler knows about one IngressClass.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownClass {
    pub class: IngressClass,
    /// The IngressClassParams the class names, when it names one and it exists.
    pub params: Option<IngressClassParamsSpec>,
}

impl KnownClass {
    fn name(&self) -> &str {
        self.class.metadata.name.as_deref().unwrap_or_default()
    }

    fn ours(&self) -> bool {
        self.class
            .spec
            .as_ref()
            .and_then(|s| s.controller.as_deref())
            == Some(keys::CONTROLLER)
    }

    fn is_default(&self) -> bool {
        self.class
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(keys::DEFAULT_CLASS_ANNOTATION))
            .map(String::as_str)
            == Some("true")
    }

    /// The IngressClassParams the class names (`elbv2.k8s.aws` / `IngressClassParams`).
    pub fn params_name(&self) -> Option<&str> {
        let parameters = self.class.spec.as_ref()?.parameters.as_ref()?;
        let ours = parameters.api_group.as_deref() == Some("elbv2.k8s.aws")
            && parameters.kind == "IngressClassParams";
        ours.then_some(parameters.name.as_str())
    }
}

pub fn select(
    ingress: &Ingress,
    classes: &[KnownClass],
    namespace_labels: &std::collections::BTreeMap<String, String>,
    settings: &ClassSettings,
) -> Selection {
    let annotation = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(keys::CLASS_ANNOTATION));
    if let Some(class) = annotation {
        return if class.trim() == settings.ingress_class {
            Selection::Ours { params: None }
        } else {
            Selection::NotOurs
        };
    }
    let named = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref());
    let class = match named {
        Some(name) => classes.iter().find(|c| c.name() == name),
        None => classes.iter().find(|c| c.is_default()),
    };
    let Some(class) = class.filter(|c| c.ours()) else {
        return Selection::NotOurs;
    };
    let Some(params_name) = class.params_name() else {
        return Selection::Ours { params: None };
    };
    let Some(params) = &class.params else {
        return Selection::Refused(format!(
            "IngressClass {} names IngressClassParams {params_name}, which does not exist",
            class.name()
        ));
    };
    if let Some(selector) = &params.namespace_selector
        && !crate::selectors::label_selector_matches(selector, Some(namespace_labels))
    {
        return Selection::Refused(format!(
            "IngressClassParams {params_name} (of IngressClass {}) does not admit this namespace (namespaceSelector)",
            class.name()
        ));
    }
    Selection::Ours {
        params: Some(Box::new(params.clone())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn class(name: &str, controller: &str, default: bool, params: Option<&str>) -> KnownClass {
        let mut value = json!({
            "metadata": {"name": name},
            "spec": {"controller": controller},
        });
        if default {
            value["metadata"]["annotations"] =
                json!({"ingressclass.kubernetes.io/is-default-class": "true"});
        }
        if let Some(p) = params {
            value["spec"]["parameters"] =
                json!({"apiGroup": "elbv2.k8s.aws", "kind": "IngressClassParams", "name": p});
        }
        KnownClass {
            class: serde_json::from_value(value).expect("class"),
            params: None,
        }
    }

    fn ingress(class_name: Option<&str>, annotation: Option<&str>) -> Ingress {
        let mut value = json!({"metadata": {"name": "web", "namespace": "demo"}, "spec": {}});
        if let Some(c) = class_name {
            value["spec"]["ingressClassName"] = json!(c);
        }
        if let Some(a) = annotation {
            value["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": a});
        }
        serde_json::from_value(value).expect("ingress")
    }

    #[test]
    fn class_name_annotation_and_default_class_select_as_upstream() {
        let settings = ClassSettings::default();
        let none = Default::default();
        let classes = [
            class("alb", "ingress.k8s.aws/alb", false, None),
            class("nginx", "k8s.io/ingress-nginx", true, None),
        ];
        let ours = Selection::Ours { params: None };
        assert_eq!(
            select(&ingress(Some("alb"), None), &classes, &none, &settings),
            ours
        );
        assert_eq!(
            select(&ingress(Some("nginx"), None), &classes, &none, &settings),
            Selection::NotOurs
        );
        assert_eq!(
            select(&ingress(Some("missing"), None), &classes, &none, &settings),
            Selection::NotOurs
        );
        // The legacy annotation decides, whatever the class name says.
        assert_eq!(
            select(
                &ingress(Some("nginx"), Some("alb")),
                &classes,
                &none,
                &settings
            ),
            ours
        );
        assert_eq!(
            select(
                &ingress(Some("alb"), Some("nginx")),
                &classes,
                &none,
                &settings
            ),
            Selection::NotOurs
        );
        // Without either, the default class decides: here nginx's.
        assert_eq!(
            select(&ingress(None, None), &classes, &none, &settings),
            Selection::NotOurs
        );
        let ours_default = [class("alb", "ingress.k8s.aws/alb", true, None)];
        assert_eq!(
            select(&ingress(None, None), &ours_default, &none, &settings),
            ours
        );
    }

    #[test]
    fn class_params_are_handed_over_missing_or_refusing_ones_are_said() {
        let settings = ClassSettings::default();
        let none = Default::default();
        let mut with_params = class("alb", "ingress.k8s.aws/alb", false, Some("public"));
        assert_eq!(
            select(
                &ingress(Some("alb"), None),
                &[with_params.clone()],
                &none,
                &settings
            ),
            Selection::Refused(
                "IngressClass alb names IngressClassParams public, which does not exist".into()
            )
        );
        with_params.params = Some(IngressClassParamsSpec {
            scheme: Some("internet-facing".into()),
            namespace_selector: Some(
                serde_json::from_value(json!({"matchLabels": {"team": "web"}})).expect("selector"),
            ),
            ..Default::default()
        });
        let Selection::Ours {
            params: Some(params),
        } = select(
            &ingress(Some("alb"), None),
            &[with_params.clone()],
            &[("team".to_string(), "web".to_string())].into(),
            &settings,
        )
        else {
            panic!("ours with params");
        };
        assert_eq!(params.scheme.as_deref(), Some("internet-facing"));
        assert!(matches!(
            select(&ingress(Some("alb"), None), &[with_params], &none, &settings),
            Selection::Refused(message) if message.contains("does not admit this namespace")
        ));
    }
}
