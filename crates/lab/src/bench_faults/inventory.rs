//! What the account holds, read from the emulator's footprint (load balancers with their
//! listeners and rules, target groups, the cluster VPC's security groups, each with its tags), and
//! the invariants over it: nothing of ours twice, nothing of ours left behind, nothing foreign
//! changed.

use std::collections::BTreeMap;

use serde_json::Value;

/// The tag every resource of ours carries: `elbv2.k8s.aws/cluster = <cluster>`.
const CLUSTER_TAG: &str = "elbv2.k8s.aws/cluster";

/// One resource of the footprint: its kind and name, its tags, the whole description.
struct Resource<'a> {
    kind: &'static str,
    name: &'a str,
    tags: BTreeMap<&'a str, &'a str>,
    value: &'a Value,
}

fn resources(footprint: &Value) -> Vec<Resource<'_>> {
    let mut all = Vec::new();
    for (kind, key) in [
        ("load balancer", "load_balancers"),
        ("target group", "target_groups"),
        ("security group", "security_groups"),
    ] {
        for value in footprint[key].as_array().into_iter().flatten() {
            let tags = value["tags"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
                .collect();
            all.push(Resource {
                kind,
                name: value["name"].as_str().unwrap_or_default(),
                tags,
                value,
            });
        }
    }
    all
}

fn is_ours(resource: &Resource<'_>, cluster: &str) -> bool {
    resource.tags.get(CLUSTER_TAG) == Some(&cluster)
}

/// Resources of ours that exist twice (the same tags: the same stack's same resource), and
/// listeners or rules of a load balancer of ours that exist twice.
pub fn duplicates(footprint: &Value, cluster: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut by_tags: BTreeMap<(&str, String), Vec<&str>> = BTreeMap::new();
    for resource in resources(footprint)
        .into_iter()
        .filter(|r| is_ours(r, cluster))
    {
        let tags = format!("{:?}", resource.tags);
        by_tags
            .entry((resource.kind, tags))
            .or_default()
            .push(resource.name);
        if resource.kind != "load balancer" {
            continue;
        }
        let mut ports = BTreeMap::new();
        for listener in resource.value["listeners"].as_array().into_iter().flatten() {
            *ports.entry(listener["port"].to_string()).or_insert(0) += 1;
            let mut rules = BTreeMap::new();
            for rule in listener["rules"].as_array().into_iter().flatten() {
                let key = format!("{}{}", rule["conditions"], rule["actions"]);
                *rules.entry(key).or_insert(0) += 1;
            }
            if let Some((rule, _)) = rules.iter().find(|(_, n)| **n > 1) {
                found.push(format!(
                    "{}: listener {} has a rule twice: {rule}",
                    resource.name, listener["port"]
                ));
            }
        }
        if let Some((port, _)) = ports.iter().find(|(_, n)| **n > 1) {
            found.push(format!("{}: two listeners on port {port}", resource.name));
        }
    }
    for ((kind, tags), names) in by_tags {
        if names.len() > 1 {
            found.push(format!("{kind} twice ({}): tags {tags}", names.join(", ")));
        }
    }
    found
}

/// Resources of ours whose tags name `stack_part` (a run's namespace): after the run's objects
/// are deleted, each one is leaked.
pub fn of_run(footprint: &Value, cluster: &str, stack_part: &str) -> Vec<String> {
    resources(footprint)
        .into_iter()
        .filter(|r| is_ours(r, cluster))
        .filter(|r| r.tags.values().any(|v| v.contains(stack_part)))
        .map(|r| format!("{} {}", r.kind, r.name))
        .collect()
}

/// Every resource not ours (no cluster tag of this cluster), by kind and name, as described.
pub fn foreign(footprint: &Value, cluster: &str) -> BTreeMap<String, Value> {
    resources(footprint)
        .into_iter()
        .filter(|r| !is_ours(r, cluster))
        .map(|r| (format!("{} {}", r.kind, r.name), r.value.clone()))
        .collect()
}

/// Foreign resources of `before` that are gone or differ in `after`.
pub fn foreign_changes(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
) -> Vec<String> {
    before
        .iter()
        .filter_map(|(name, value)| match after.get(name) {
            None => Some(format!("{name} deleted")),
            Some(now) if now != value => Some(format!("{name} modified")),
            Some(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn footprint() -> Value {
        json!({
            "load_balancers": [
                {"name": "k8s-a", "tags": {CLUSTER_TAG: "c", "ingress.k8s.aws/stack": "run1"},
                 "listeners": [{"port": 80, "rules": [
                     {"conditions": [1], "actions": [2], "priority": 1},
                     {"conditions": [1], "actions": [2], "priority": 2}]}]},
                {"name": "theirs", "tags": {CLUSTER_TAG: "other", "ingress.k8s.aws/stack": "run1"},
                 "listeners": []},
            ],
            "target_groups": [
                {"name": "k8s-t1", "tags": {CLUSTER_TAG: "c", "ingress.k8s.aws/stack": "run1", "r": "x"}},
                {"name": "k8s-t2", "tags": {CLUSTER_TAG: "c", "ingress.k8s.aws/stack": "run1", "r": "x"}},
                {"name": "hand-made", "tags": {}},
            ],
            "security_groups": [],
        })
    }

    #[test]
    fn the_same_tags_twice_and_a_rule_twice_are_duplicates() {
        let found = duplicates(&footprint(), "c");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().any(|f| f.contains("k8s-t1, k8s-t2")));
        assert!(found.iter().any(|f| f.contains("a rule twice")));
    }

    #[test]
    fn a_run_owns_only_its_cluster_resources_and_foreign_ones_are_compared() {
        let footprint = footprint();
        assert_eq!(of_run(&footprint, "c", "run1").len(), 3);
        let before = foreign(&footprint, "c");
        assert_eq!(before.len(), 2);
        let mut after = before.clone();
        after.remove("target group hand-made");
        after.insert("load balancer theirs".into(), json!({"name": "theirs"}));
        assert_eq!(
            foreign_changes(&before, &after),
            vec![
                "load balancer theirs modified".to_string(),
                "target group hand-made deleted".to_string()
            ]
        );
    }
}
