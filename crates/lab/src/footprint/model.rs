//! The measured workload built by this controller's model, with the UIDs the measurement recorded
//! and its cluster name, compared field by field with what upstream created: every name, tag,
//! description, listener, rule (priority, conditions, actions), health check and security-group
//! rule, and every attribute the model sets (the rest of the fixture's attributes are the
//! emulator's defaults, which the sandbox half of the footprint test compares).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use lb_aws::deployer::rules::layout;
use lb_model::ingress::member::{Cluster, Services};
use lb_model::ingress::{GroupMember, IngressSettings, build_group};
use lb_model::service::build::ClusterSettings;
use lb_model::service::selection::{Selection, SelectionSettings, select};
use lb_model::service::subnets::Subnet;
use lb_model::stack::{
    Action, Condition, LoadBalancerKind, Stack, TargetGroupRef, descriptions, tags,
};
use serde_json::{Value, json};

/// The workload's Services and Ingresses, with the UIDs of `object_uids` (`Kind/ns/name`).
pub struct Workload {
    pub services: Vec<Service>,
    pub ingresses: Vec<Ingress>,
}

pub fn workload(yaml: &str, uids: &BTreeMap<String, String>) -> Result<Workload, String> {
    let mut workload = Workload {
        services: Vec::new(),
        ingresses: Vec::new(),
    };
    let documents = crate::chart::documents(yaml).map_err(|e| e.to_string())?;
    for mut value in documents {
        let kind = value["kind"].as_str().unwrap_or_default().to_string();
        let meta = &value["metadata"];
        let key = format!(
            "{kind}/{}/{}",
            meta["namespace"].as_str().unwrap_or("default"),
            meta["name"].as_str().unwrap_or_default()
        );
        if let Some(uid) = uids.get(&key) {
            value["metadata"]["uid"] = json!(uid);
        }
        match kind.as_str() {
            "Service" => {
                workload
                    .services
                    .push(serde_json::from_value(value).map_err(|e| e.to_string())?);
            }
            "Ingress" => {
                workload
                    .ingresses
                    .push(serde_json::from_value(value).map_err(|e| e.to_string())?);
            }
            _ => {}
        }
    }
    Ok(workload)
}

/// A VPC like the sandbox's: one subnet per zone, tagged for both schemes and the cluster.
fn subnets(cluster: &str) -> Vec<Subnet> {
    ["a", "b", "c"]
        .iter()
        .map(|zone| Subnet {
            cidr: None,
            id: format!("subnet-{zone}"),
            zone: format!("us-west-2{zone}"),
            tags: [
                ("kubernetes.io/role/elb", "1"),
                ("kubernetes.io/role/internal-elb", "1"),
                (&*format!("kubernetes.io/cluster/{cluster}"), "shared"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        })
        .collect()
}

/// The stacks this controller builds for `workload`, with upstream's defaults for every flag.
pub fn stacks(workload: &Workload, cluster: &str) -> Result<Vec<Stack>, String> {
    let subnets = subnets(cluster);
    let mut stacks = Vec::new();
    let services = ClusterSettings::upstream_defaults(cluster);
    for service in &workload.services {
        let Selection::Ours { target_type } = select(service, &SelectionSettings::default()) else {
            continue;
        };
        let built = lb_model::service::desired(service, target_type, &services, &subnets)
            .map_err(|e| e.to_string())?;
        stacks.push(built.stack);
    }
    let settings = IngressSettings::upstream_defaults(cluster);
    let services = Services::new(workload.services.iter().cloned().map(std::sync::Arc::new));
    let cluster_view = Cluster {
        settings: &settings,
        services: &services,
        certificates: &[],
    };
    let mut groups: BTreeMap<lb_model::ingress::GroupId, Vec<GroupMember>> = BTreeMap::new();
    for ingress in &workload.ingresses {
        groups
            .entry(lb_model::ingress::group::group_of(ingress, None))
            .or_default()
            .push(GroupMember::new(ingress, None));
    }
    for (group, members) in &groups {
        let built = build_group(group, members, &cluster_view, &subnets);
        if let Some(problem) = built.outcomes.iter().find_map(|o| o.error.clone()) {
            return Err(format!("group {}: {problem}", group.stack_id()));
        }
        stacks.extend(built.stack);
    }
    Ok(stacks)
}

/// Every difference between the fixture and the stacks, as `what: upstream vs ours`.
pub fn differences(fixture: &Value, stacks: &[Stack], cluster: &str) -> Vec<String> {
    let mut found = Vec::new();
    let list = |name: &str| {
        fixture
            .get(name)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let by_name = |items: Vec<Value>| -> BTreeMap<String, Value> {
        items
            .into_iter()
            .map(|i| (i["name"].as_str().unwrap_or_default().to_string(), i))
            .collect()
    };
    let (lbs, tgs, sgs) = (
        by_name(list("load_balancers")),
        by_name(list("target_groups")),
        by_name(list("security_groups")),
    );
    let backend = lb_model::naming::backend_security_group(cluster);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for stack in stacks {
        let names = |id: &str| {
            stack
                .target_groups
                .iter()
                .find(|t| t.resource_id == id)
                .map_or_else(|| id.to_string(), |t| t.name.clone())
        };
        let lb = &stack.load_balancer;
        seen.insert(lb.name.clone());
        let Some(upstream) = lbs.get(&lb.name) else {
            found.push(format!(
                "load balancer {}: not in upstream's footprint",
                lb.name
            ));
            continue;
        };
        let what = format!("load balancer {}", lb.name);
        let kind = match lb.kind {
            LoadBalancerKind::Application => "application",
            LoadBalancerKind::Network => "network",
        };
        same(&mut found, &what, "type", &upstream["type"], &json!(kind));
        same(
            &mut found,
            &what,
            "scheme",
            &upstream["scheme"],
            &json!(lb.scheme.as_str()),
        );
        same(
            &mut found,
            &what,
            "ip_address_type",
            &upstream["ip_address_type"],
            &json!(lb.ip_address_type.as_str()),
        );
        same(
            &mut found,
            &what,
            "tags",
            &upstream["tags"],
            &json!(lb.tags),
        );
        subset(&mut found, &what, &upstream["attributes"], &lb.attributes);
        let mut groups: Vec<String> = stack
            .managed_security_group
            .iter()
            .map(|g| g.name.clone())
            .chain(lb.security_groups.iter().cloned())
            .collect();
        if stack.backend_security_group {
            groups.push(backend.clone());
        }
        same(
            &mut found,
            &what,
            "security_groups",
            &upstream["security_groups"],
            &json!(groups),
        );
        listeners(&mut found, &what, upstream, stack, &names);
        for group in &stack.target_groups {
            seen.insert(group.name.clone());
            target_group(&mut found, tgs.get(&group.name), group);
        }
        if let Some(group) = &stack.managed_security_group {
            seen.insert(group.name.clone());
            managed_security_group(&mut found, sgs.get(&group.name), group);
        }
    }
    if stacks.iter().any(|s| s.backend_security_group) {
        seen.insert(backend.clone());
        let what = format!("security group {backend}");
        match sgs.get(&backend) {
            None => found.push(format!("{what}: not in upstream's footprint")),
            Some(sg) => {
                same(
                    &mut found,
                    &what,
                    "description",
                    &sg["description"],
                    &json!(descriptions::BACKEND_SECURITY_GROUP),
                );
                let tags = BTreeMap::from([
                    (tags::CLUSTER, cluster),
                    (tags::ELBV2_RESOURCE, tags::BACKEND_SG),
                ]);
                same(&mut found, &what, "tags", &sg["tags"], &json!(tags));
                same(&mut found, &what, "ingress", &sg["ingress"], &json!([]));
            }
        }
    }
    for name in lbs.keys().chain(tgs.keys()).chain(sgs.keys()) {
        if !seen.contains(name) && name != "default" {
            found.push(format!("{name}: upstream made it, ours does not"));
        }
    }
    found
}

fn same(found: &mut Vec<String>, what: &str, field: &str, upstream: &Value, ours: &Value) {
    if upstream != ours {
        found.push(format!("{what} {field}: upstream {upstream}, ours {ours}"));
    }
}

/// Every attribute the model sets is upstream's (the others are the emulator's defaults).
fn subset(found: &mut Vec<String>, what: &str, upstream: &Value, ours: &BTreeMap<String, String>) {
    for (key, value) in ours {
        if upstream.get(key).and_then(Value::as_str) != Some(value.as_str()) {
            found.push(format!(
                "{what} attribute {key}: upstream {}, ours {value:?}",
                upstream.get(key).unwrap_or(&Value::Null)
            ));
        }
    }
}

fn listeners(
    found: &mut Vec<String>,
    what: &str,
    upstream: &Value,
    stack: &Stack,
    names: &dyn Fn(&str) -> String,
) {
    let theirs = upstream["listeners"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if theirs.len() != stack.listeners.len() {
        found.push(format!(
            "{what}: upstream has {} listeners, ours {}",
            theirs.len(),
            stack.listeners.len()
        ));
    }
    for listener in &stack.listeners {
        let what = format!("{what} listener {}", listener.port);
        let Some(upstream) = theirs
            .iter()
            .find(|l| l["port"].as_u64() == Some(u64::from(listener.port)))
        else {
            found.push(format!("{what}: not in upstream's footprint"));
            continue;
        };
        same(
            found,
            &what,
            "protocol",
            &upstream["protocol"],
            &json!(listener.protocol.as_str()),
        );
        same(
            found,
            &what,
            "default action",
            &normal_actions(&upstream["default_actions"]),
            &action(&listener.default_action, names),
        );
        let rules = upstream["rules"].as_array().cloned().unwrap_or_default();
        if rules.len() != listener.rules.len() {
            found.push(format!(
                "{what}: upstream has {} rules, ours {}",
                rules.len(),
                listener.rules.len()
            ));
        }
        let priorities = layout(listener.rules.len(), &BTreeSet::new());
        for ((rule, priority), upstream) in listener.rules.iter().zip(priorities).zip(&rules) {
            let what = format!("{what} rule {priority}");
            same(
                found,
                &what,
                "priority",
                &upstream["priority"],
                &json!(priority.to_string()),
            );
            same(
                found,
                &what,
                "conditions",
                &normal_conditions(&upstream["conditions"]),
                &conditions(&rule.conditions),
            );
            same(
                found,
                &what,
                "action",
                &normal_actions(&upstream["actions"]),
                &action(&rule.action, names),
            );
        }
    }
}

fn target_group(
    found: &mut Vec<String>,
    upstream: Option<&Value>,
    group: &lb_model::stack::TargetGroup,
) {
    let what = format!("target group {}", group.name);
    let Some(upstream) = upstream else {
        found.push(format!("{what}: not in upstream's footprint"));
        return;
    };
    let check = &group.health_check;
    let http = check.protocol != lb_model::stack::Protocol::Tcp;
    let mut ours = json!({
        "Protocol": group.protocol.as_str(),
        "Port": group.port,
        "TargetType": group.target_type.as_str(),
        "IpAddressType": group.ip_address_type.as_str(),
        "HealthCheckProtocol": check.protocol.as_str(),
        "HealthCheckPort": check.port.to_string(),
        "HealthCheckIntervalSeconds": check.interval_seconds,
        "HealthCheckTimeoutSeconds": check.timeout_seconds,
        "HealthyThresholdCount": check.healthy_threshold,
        "UnhealthyThresholdCount": check.unhealthy_threshold,
    });
    if let Some(version) = &group.protocol_version {
        ours["ProtocolVersion"] = json!(version.as_str());
    }
    if http {
        ours["HealthCheckPath"] = json!(check.path);
        ours["Matcher"] = json!({"HttpCode": check.matcher});
    }
    for (field, value) in ours.as_object().into_iter().flatten() {
        same(found, &what, field, &upstream[field], value);
    }
    for field in ["HealthCheckPath", "Matcher", "ProtocolVersion"] {
        if ours.get(field).is_none() && upstream.get(field).is_some() {
            found.push(format!(
                "{what} {field}: upstream {}, ours none",
                upstream[field]
            ));
        }
    }
    same(found, &what, "tags", &upstream["tags"], &json!(group.tags));
    subset(found, &what, &upstream["attributes"], &group.attributes);
}

fn managed_security_group(
    found: &mut Vec<String>,
    upstream: Option<&Value>,
    group: &lb_model::stack::ManagedSecurityGroup,
) {
    let what = format!("security group {}", group.name);
    let Some(upstream) = upstream else {
        found.push(format!("{what}: not in upstream's footprint"));
        return;
    };
    same(
        found,
        &what,
        "description",
        &upstream["description"],
        &json!(descriptions::MANAGED_SECURITY_GROUP),
    );
    same(found, &what, "tags", &upstream["tags"], &json!(group.tags));
    let mut theirs: BTreeSet<(String, i64, i64, String)> = BTreeSet::new();
    for rule in upstream["ingress"].as_array().into_iter().flatten() {
        for cidr in rule["cidrs"].as_array().into_iter().flatten() {
            theirs.insert((
                rule["proto"].as_str().unwrap_or_default().to_string(),
                rule["from"].as_i64().unwrap_or(-1),
                rule["to"].as_i64().unwrap_or(-1),
                cidr[0].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    let ours: BTreeSet<(String, i64, i64, String)> = group
        .ingress
        .iter()
        .map(|r| {
            let port = i64::from(r.port);
            (r.protocol.clone(), port, port, r.source.to_string())
        })
        .collect();
    if theirs != ours {
        found.push(format!(
            "{what} ingress rules: upstream {theirs:?}, ours {ours:?}"
        ));
    }
}

/// An action as ELB describes it, the few ways of saying the same thing made one: a forward to
/// one target group carries no weight, stickiness off is none.
fn normal_actions(actions: &Value) -> Value {
    let Some(action) = actions.as_array().and_then(|a| a.last()) else {
        return Value::Null;
    };
    match action["Type"].as_str() {
        Some("forward") => {
            let groups = action["ForwardConfig"]["TargetGroups"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let single = groups.len() == 1;
            let groups: Vec<Value> = groups
                .iter()
                .map(|g| {
                    let weight = if single {
                        Value::Null
                    } else {
                        g["Weight"].clone()
                    };
                    json!({"name": g["TargetGroupArn"], "weight": weight})
                })
                .collect();
            let sticky = &action["ForwardConfig"]["TargetGroupStickinessConfig"];
            let stickiness = match sticky["Enabled"].as_bool() {
                Some(true) => sticky["DurationSeconds"].clone(),
                _ => Value::Null,
            };
            json!({"forward": groups, "stickiness": stickiness})
        }
        Some("fixed-response") => json!({"fixed-response": action["FixedResponseConfig"]}),
        Some("redirect") => json!({"redirect": action["RedirectConfig"]}),
        other => json!({"unknown": other}),
    }
}

fn action(action: &Action, names: &dyn Fn(&str) -> String) -> Value {
    match action {
        Action::Forward {
            target_groups,
            stickiness_seconds,
        } => {
            let single = target_groups.len() == 1;
            let groups: Vec<Value> = target_groups
                .iter()
                .map(|g| {
                    let name = match &g.target_group {
                        TargetGroupRef::Stack(id) => names(id),
                        TargetGroupRef::Arn(arn) => arn.clone(),
                    };
                    let weight = if single { Value::Null } else { json!(g.weight) };
                    json!({"name": name, "weight": weight})
                })
                .collect();
            json!({"forward": groups, "stickiness": stickiness_seconds})
        }
        Action::FixedResponse(fixed) => {
            let mut config = json!({"StatusCode": fixed.status_code.to_string()});
            if let Some(content_type) = &fixed.content_type {
                config["ContentType"] = json!(content_type);
            }
            if let Some(body) = &fixed.message_body {
                config["MessageBody"] = json!(body);
            }
            json!({"fixed-response": config})
        }
        Action::Redirect(redirect) => json!({"redirect": format!("{redirect:?}")}),
    }
}

fn normal_conditions(conditions: &Value) -> Value {
    let items: Vec<Value> = conditions
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| match c["Field"].as_str() {
            Some("host-header") => json!({"host-header": c["HostHeaderConfig"]["Values"]}),
            Some("path-pattern") => json!({"path-pattern": c["PathPatternConfig"]["Values"]}),
            other => json!({"other": other}),
        })
        .collect();
    json!(items)
}

fn conditions(conditions: &[Condition]) -> Value {
    let items: Vec<Value> = conditions
        .iter()
        .map(|c| match c {
            Condition::HostHeader(values) => json!({"host-header": values}),
            Condition::PathPattern {
                values,
                regex: false,
            } => json!({"path-pattern": values}),
            other => json!({"other": format!("{other:?}")}),
        })
        .collect();
    json!(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::footprint::{CLUSTER, WORKLOAD_YAML, fixture};

    fn built() -> Vec<Stack> {
        let fixture = fixture();
        let uids = serde_json::from_value(fixture["object_uids"].clone()).expect("uids");
        stacks(&workload(WORKLOAD_YAML, &uids).expect("workload"), CLUSTER).expect("stacks")
    }

    /// The comparison finds what differs: a fixture changed in a tag, a path, a health check,
    /// a rule's priority, a security group's rule and a name each give one difference.
    #[test]
    fn every_kind_of_difference_is_found() {
        let stacks = built();
        assert!(differences(&fixture(), &stacks, CLUSTER).is_empty());
        let mut changed = fixture();
        changed["target_groups"][0]["tags"]["team"] = json!("web");
        changed["load_balancers"][1]["listeners"][0]["rules"][0]["conditions"][1]["PathPatternConfig"]
            ["Values"][0] = json!("/basket");
        changed["target_groups"][1]["HealthCheckTimeoutSeconds"] = json!(6);
        changed["load_balancers"][1]["listeners"][0]["rules"][2]["priority"] = json!("4");
        changed["security_groups"][2]["ingress"][0]["from"] = json!(443);
        changed["load_balancers"][0]["name"] = json!("k8s-game2048-ingress2-0000000000");
        let found = differences(&changed, &stacks, CLUSTER);
        // The renamed ALB is both missing (ours) and extra (upstream's).
        assert_eq!(found.len(), 7, "{found:#?}");
    }
}
