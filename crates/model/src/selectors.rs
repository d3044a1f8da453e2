//! Label selectors: a Service's `selector` map and a `LabelSelector` (nodeSelector).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A Service selector selects a pod when every pair is among the pod's labels. An empty or absent
/// selector selects nothing (such Services have manually managed endpoints).
pub fn service_selects(
    selector: Option<&BTreeMap<String, String>>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return false;
    };
    let labels = labels.cloned().unwrap_or_default();
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// `matchLabels` and `matchExpressions` (In, NotIn, Exists, DoesNotExist); an empty selector
/// matches everything.
pub fn label_selector_matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn service_selector_needs_every_pair_and_never_matches_when_empty() {
        let labels = map(&[("app", "web"), ("tier", "front")]);
        assert!(service_selects(
            Some(&map(&[("app", "web")])),
            Some(&labels)
        ));
        assert!(!service_selects(
            Some(&map(&[("app", "api")])),
            Some(&labels)
        ));
        assert!(!service_selects(Some(&map(&[])), Some(&labels)));
        assert!(!service_selects(None, Some(&labels)));
        assert!(!service_selects(Some(&map(&[("app", "web")])), None));
    }

    #[test]
    fn label_selector_expressions() {
        let requirement = |key: &str, operator: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
        };
        let labels = map(&[("pool", "web"), ("zone", "a")]);
        let selector = LabelSelector {
            match_labels: Some(map(&[("pool", "web")])),
            match_expressions: Some(vec![
                requirement("zone", "In", &["a", "b"]),
                requirement("gpu", "DoesNotExist", &[]),
                requirement("spot", "NotIn", &["true"]),
            ]),
        };
        assert!(label_selector_matches(&selector, Some(&labels)));
        let other = map(&[("pool", "web"), ("zone", "c")]);
        assert!(!label_selector_matches(&selector, Some(&other)));
        assert!(label_selector_matches(&LabelSelector::default(), None));
        let exists = LabelSelector {
            match_expressions: Some(vec![requirement("pool", "Exists", &[])]),
            ..LabelSelector::default()
        };
        assert!(!label_selector_matches(&exists, None));
    }
}
