//! Two footprints (the emulator's `GET /footprint` shape) compared field by field.
//!
//! Names that hash a Kubernetes UID differ from cluster to cluster even when everything else is
//! the same: a Service's NLB and managed security group (upstream hashes the Service's UID) and
//! every target group (the backend Service's). Those are replaced, everywhere they appear (a
//! forward action names its target groups, a load balancer its security groups), by a key made
//! of their ownership tags, so they are compared by what they are. Every other name is compared
//! as it is. Lists of resources are compared by name, whatever their order.

use std::collections::BTreeMap;

use serde_json::Value;

const TOP_LISTS: [&str; 3] = ["load_balancers", "target_groups", "security_groups"];

/// `footprint` with the UID-hashed names replaced by tag keys and its resources sorted by name;
/// `object_uids` (not AWS state) left out.
pub fn canonical(footprint: &Value) -> Value {
    let renames = uid_hashed_names(footprint);
    let mut out = rename(footprint, &renames);
    if let Some(object) = out.as_object_mut() {
        object.remove("object_uids");
        for list in TOP_LISTS {
            if let Some(Value::Array(items)) = object.get_mut(list) {
                items.sort_by_key(name_of);
            }
        }
    }
    out
}

/// Every difference between `expected` and `actual` (both canonical), as `path: expected vs
/// actual`; empty when they are the same.
pub fn differences(expected: &Value, actual: &Value) -> Vec<String> {
    let mut found = Vec::new();
    diff_at("", expected, actual, &mut found);
    found
}

fn name_of(item: &Value) -> String {
    item.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn tag<'a>(item: &'a Value, key: &str) -> Option<&'a str> {
    item.get("tags")?.get(key)?.as_str()
}

/// Names that hash a UID -> the key they are compared by.
fn uid_hashed_names(footprint: &Value) -> BTreeMap<String, String> {
    let items = |list: &str| {
        footprint
            .get(list)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut renames = BTreeMap::new();
    for lb in items("load_balancers") {
        if let Some(stack) = tag(&lb, "service.k8s.aws/stack") {
            renames.insert(name_of(&lb), format!("<service {stack} LoadBalancer>"));
        }
    }
    for sg in items("security_groups") {
        if let (Some(stack), Some(resource)) = (
            tag(&sg, "service.k8s.aws/stack"),
            tag(&sg, "service.k8s.aws/resource"),
        ) {
            renames.insert(name_of(&sg), format!("<service {stack} {resource}>"));
        }
    }
    for tg in items("target_groups") {
        let kind = ["service", "ingress"].into_iter().find_map(|kind| {
            let stack = tag(&tg, &format!("{kind}.k8s.aws/stack"))?;
            let resource = tag(&tg, &format!("{kind}.k8s.aws/resource"))?;
            Some(format!("<{kind} {stack} target group {resource}>"))
        });
        if let Some(key) = kind {
            renames.insert(name_of(&tg), key);
        }
    }
    renames
}

/// `value` with every string equal to a key of `renames` replaced.
pub fn rename(value: &Value, renames: &BTreeMap<String, String>) -> Value {
    match value {
        Value::String(s) => Value::String(renames.get(s).cloned().unwrap_or_else(|| s.clone())),
        Value::Array(items) => Value::Array(items.iter().map(|v| rename(v, renames)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), rename(v, renames)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn diff_at(path: &str, expected: &Value, actual: &Value, found: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                let at = format!("{path}.{key}");
                match a.get(key) {
                    Some(other) => diff_at(&at, value, other, found),
                    None => found.push(format!("{at}: expected {value}, missing")),
                }
            }
            for (key, value) in a {
                if !e.contains_key(key) {
                    found.push(format!("{path}.{key}: not expected, found {value}"));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if is_named(e) && is_named(a) => {
            let by_name = |items: &[Value]| -> BTreeMap<String, Value> {
                items.iter().map(|i| (name_of(i), i.clone())).collect()
            };
            let (e, a) = (by_name(e), by_name(a));
            for (name, item) in &e {
                let at = format!("{path}[{name}]");
                match a.get(name) {
                    Some(other) => diff_at(&at, item, other, found),
                    None => found.push(format!("{at}: expected, missing")),
                }
            }
            for name in a.keys().filter(|n| !e.contains_key(*n)) {
                found.push(format!("{path}[{name}]: not expected, found"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                found.push(format!(
                    "{path}: expected {} items {expected}, found {} {actual}",
                    e.len(),
                    a.len()
                ));
                return;
            }
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                diff_at(&format!("{path}[{i}]"), e, a, found);
            }
        }
        (e, a) if e != a => found.push(format!("{path}: expected {e}, found {a}")),
        _ => {}
    }
}

/// A list of resources (each with a `name`), compared by name.
fn is_named(items: &[Value]) -> bool {
    !items.is_empty()
        && items
            .iter()
            .all(|i| i.get("name").is_some_and(Value::is_string))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn uid_hashed_names_compare_by_tags_and_the_rest_as_it_is() {
        let service_tags = |resource: &str| json!({"service.k8s.aws/stack": "ns/svc", "service.k8s.aws/resource": resource});
        let footprint = |suffix: &str, alb: &str, port: u16| {
            json!({
                "object_uids": {"Service/ns/svc": suffix},
                "load_balancers": [
                    {"name": format!("k8s-ns-svc-{suffix}"), "tags": service_tags("LoadBalancer"),
                     "security_groups": [format!("k8s-ns-svc-sg{suffix}")],
                     "listeners": [{"port": port, "default_actions": [
                         {"ForwardConfig": {"TargetGroups": [{"TargetGroupArn": format!("k8s-ns-svc-tg{suffix}")}]}}]}]},
                    {"name": alb, "tags": {"ingress.k8s.aws/stack": "g"}},
                ],
                "target_groups": [{"name": format!("k8s-ns-svc-tg{suffix}"), "tags": service_tags("ns/svc:80")}],
                "security_groups": [{"name": format!("k8s-ns-svc-sg{suffix}"), "tags": service_tags("ManagedLBSecurityGroup")}],
            })
        };
        let a = canonical(&footprint("aaaa", "k8s-g-1111", 80));
        let b = canonical(&footprint("bbbb", "k8s-g-1111", 80));
        assert_eq!(differences(&a, &b), Vec::<String>::new());
        // An ALB name (no UID in it) and everything else still compare as they are.
        let c = canonical(&footprint("bbbb", "k8s-g-2222", 81));
        let found = differences(&a, &c);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found.iter().any(|d| d.contains("[k8s-g-1111]: expected")));
        assert!(
            found
                .iter()
                .any(|d| d.contains(".port: expected 80, found 81"))
        );
    }
}
