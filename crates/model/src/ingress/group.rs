//! IngressGroups: Ingresses with the same `group.name` share one ALB; without one an Ingress is a
//! group of its own. Members are ordered by `group.order`, then namespace, then name: the order
//! their rules take on the listeners.

use k8s_openapi::api::networking::v1::Ingress;
use lb_api::IngressClassParamsSpec;
use lb_api::keys::ingress as keys;

use super::annotations::{GROUP_NAME, GROUP_ORDER};

/// Which ALB an Ingress belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupId {
    /// `group.name` (or the class parameters' `group.name`).
    Explicit(String),
    /// The Ingress alone.
    Implicit { namespace: String, name: String },
}

impl GroupId {
    /// The stack id, tagged `ingress.k8s.aws/stack` on everything of the group: the name, or
    /// `<namespace>/<name>` for an Ingress alone.
    pub fn stack_id(&self) -> String {
        match self {
            Self::Explicit(name) => name.clone(),
            Self::Implicit { namespace, name } => format!("{namespace}/{name}"),
        }
    }

    /// Upstream's finalizers: `group.ingress.k8s.aws/<group>`, or `ingress.k8s.aws/resources`.
    pub fn finalizer(&self) -> String {
        match self {
            Self::Explicit(name) => format!("{}{name}", keys::GROUP_FINALIZER_PREFIX),
            Self::Implicit { .. } => keys::FINALIZER.to_string(),
        }
    }

    /// The labels of the group's TargetGroupBindings (upstream's): an explicit group by its
    /// name, an Ingress alone by its name and namespace.
    pub fn binding_labels(&self) -> std::collections::BTreeMap<String, String> {
        match self {
            Self::Explicit(name) => [(keys::STACK_LABEL.to_string(), name.clone())].into(),
            Self::Implicit { namespace, name } => [
                (keys::STACK_NAME_LABEL.to_string(), name.clone()),
                (keys::STACK_NAMESPACE_LABEL.to_string(), namespace.clone()),
            ]
            .into(),
        }
    }

    /// The label selectors of the group's bindings: [`GroupId::binding_selector`], and for an
    /// explicit group also that of the bindings this controller's earlier versions labelled with
    /// the group's name as `stack-name` (upstream labels them `stack`), so they are adopted, not
    /// left behind.
    pub fn binding_selectors(&self) -> Vec<String> {
        let mut selectors = vec![self.binding_selector()];
        if let Self::Explicit(name) = self {
            selectors.push(format!(
                "{}={name},!{}",
                keys::STACK_NAME_LABEL,
                keys::STACK_NAMESPACE_LABEL
            ));
        }
        selectors
    }

    /// The label selector of exactly the group's bindings.
    pub fn binding_selector(&self) -> String {
        match self {
            Self::Explicit(name) => format!("{}={name}", keys::STACK_LABEL),
            Self::Implicit { namespace, name } => format!(
                "{}={name},{}={namespace}",
                keys::STACK_NAME_LABEL,
                keys::STACK_NAMESPACE_LABEL
            ),
        }
    }
}

fn annotation<'a>(ingress: &'a Ingress, key: &str) -> Option<&'a str> {
    ingress
        .metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// The group of `ingress`: its class parameters' group, else its `group.name` annotation (a bad
/// one is reported by the annotation parser; the Ingress is then left alone), else itself.
pub fn group_of(ingress: &Ingress, params: Option<&IngressClassParamsSpec>) -> GroupId {
    let explicit = params
        .and_then(|p| p.group.as_ref())
        .map(|g| g.name.clone())
        .or_else(|| annotation(ingress, GROUP_NAME).map(str::to_string));
    match explicit {
        Some(name) => GroupId::Explicit(name),
        None => GroupId::Implicit {
            namespace: ingress.metadata.namespace.clone().unwrap_or_default(),
            name: ingress.metadata.name.clone().unwrap_or_default(),
        },
    }
}

/// `group.order`, 0 when absent or not a number (the parser names a bad one).
pub fn order_of(ingress: &Ingress) -> i32 {
    annotation(ingress, GROUP_ORDER)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `<namespace>/<name>`.
pub fn member_key(ingress: &Ingress) -> String {
    format!(
        "{}/{}",
        ingress.metadata.namespace.as_deref().unwrap_or_default(),
        ingress.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Members in rule order: `group.order`, then namespace/name.
pub fn sort_members<T>(members: &mut [T], ingress: impl Fn(&T) -> &Ingress) {
    members.sort_by(|a, b| {
        let (a, b) = (ingress(a), ingress(b));
        (order_of(a), member_key(a)).cmp(&(order_of(b), member_key(b)))
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ingress(namespace: &str, name: &str, annotations: serde_json::Value) -> Ingress {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        }))
        .expect("ingress")
    }

    #[test]
    fn groups_their_finalizers_and_stack_ids() {
        let alone = ingress("game-2048", "ingress-2048", json!({}));
        let group = group_of(&alone, None);
        assert_eq!(group.stack_id(), "game-2048/ingress-2048");
        assert_eq!(group.finalizer(), "ingress.k8s.aws/resources");
        let member = ingress(
            "default",
            "traffic-split",
            json!({"alb.ingress.kubernetes.io/group.name": "traffic-split"}),
        );
        let group = group_of(&member, None);
        assert_eq!(group, GroupId::Explicit("traffic-split".into()));
        assert_eq!(group.finalizer(), "group.ingress.k8s.aws/traffic-split");
        let params = IngressClassParamsSpec {
            group: Some(lb_api::ingress_class_params::IngressGroup {
                name: "shared".into(),
            }),
            ..Default::default()
        };
        assert_eq!(
            group_of(&member, Some(&params)),
            GroupId::Explicit("shared".into())
        );
    }

    #[test]
    fn members_sort_by_order_then_namespace_and_name() {
        let order = |o: &str| json!({"alb.ingress.kubernetes.io/group.order": o});
        let mut members = vec![
            ingress("b", "x", order("0")),
            ingress("a", "y", order("0")),
            ingress("z", "z", order("-5")),
            ingress("a", "a", order("10")),
            ingress("a", "x", json!({})),
        ];
        sort_members(&mut members, |i| i);
        let keys: Vec<String> = members.iter().map(member_key).collect();
        assert_eq!(keys, ["z/z", "a/x", "a/y", "b/x", "a/a"]);
    }
}
