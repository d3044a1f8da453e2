//! `TargetRules` on an in-memory EC2: interfaces located per instance, one rule per source group
//! and protocol, nothing revoked until every binding is known after a start, a failed write
//! retried, and no call at steady state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex as SyncMutex;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod};
use lb_aws::{AwsError, AwsErrorKind};
use lb_model::elb::TargetKey;
use lb_model::target_rules::{DescribedRule, GroupInfo, Interface, Peer, Permission, Protocol};
use serde_json::json;

use super::*;
use crate::stores::filled::{Fill, put, stores};

/// EC2 holding one node instance with one interface (group `sg-node`) and its groups' rules.
#[derive(Default)]
struct FakeNetwork {
    groups: SyncMutex<BTreeMap<String, Vec<DescribedRule>>>,
    calls: SyncMutex<Vec<String>>,
    fail_authorize: SyncMutex<bool>,
}

impl FakeNetwork {
    fn with_group(rules: Vec<DescribedRule>) -> Self {
        let network = Self::default();
        lock(&network.groups).insert("sg-node".into(), rules);
        network
    }

    fn call(&self, name: &str) {
        lock(&self.calls).push(name.to_string());
    }

    fn calls(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.calls))
    }

    fn rules(&self) -> Vec<DescribedRule> {
        lock(&self.groups)
            .get("sg-node")
            .cloned()
            .unwrap_or_default()
    }
}

fn lock<T>(m: &SyncMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn described(p: &Permission) -> DescribedRule {
    DescribedRule {
        protocol: p.protocol.as_ec2().into(),
        from: p.from.into(),
        to: p.to.into(),
        peer: p.peer.clone(),
        labelled: true,
    }
}

impl TargetNetwork for FakeNetwork {
    fn instance_interfaces(
        &self,
        instances: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Interface>, AwsError>> {
        self.call("DescribeNetworkInterfaces");
        let found = instances
            .iter()
            .filter(|i| *i == "i-node")
            .map(|_| Interface {
                id: "eni-node".into(),
                instance_id: Some("i-node".into()),
                device_index: Some(0),
                addresses: vec!["10.0.0.16".parse().unwrap()],
                prefixes: vec!["10.0.0.64/28".parse().unwrap()],
                security_groups: vec!["sg-node".into()],
            })
            .collect();
        Box::pin(async move { Ok(found) })
    }

    fn interfaces_with_address(
        &self,
        _address: String,
    ) -> BoxFuture<'_, Result<Vec<Interface>, AwsError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn interfaces(&self, _ids: Vec<String>) -> BoxFuture<'_, Result<Vec<Interface>, AwsError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn security_groups(&self, ids: Vec<String>) -> BoxFuture<'_, Result<Vec<GroupInfo>, AwsError>> {
        self.call("DescribeSecurityGroups");
        let groups = lock(&self.groups);
        let found = ids
            .iter()
            .filter_map(|id| {
                Some(GroupInfo {
                    id: id.clone(),
                    tags: BTreeMap::new(),
                    ingress: groups.get(id)?.clone(),
                })
            })
            .collect();
        Box::pin(async move { Ok(found) })
    }

    fn cluster_security_groups(&self) -> BoxFuture<'_, Result<Vec<GroupInfo>, AwsError>> {
        self.call("DescribeSecurityGroups");
        let found = lock(&self.groups)
            .iter()
            .map(|(id, ingress)| GroupInfo {
                id: id.clone(),
                tags: BTreeMap::new(),
                ingress: ingress.clone(),
            })
            .collect();
        Box::pin(async move { Ok(found) })
    }

    fn authorize(
        &self,
        group: String,
        rules: Vec<Permission>,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        self.call("AuthorizeSecurityGroupIngress");
        let result = if *lock(&self.fail_authorize) {
            Err(AwsError::new(
                "AuthorizeSecurityGroupIngress",
                AwsErrorKind::Unavailable,
                "503",
            ))
        } else {
            let mut groups = lock(&self.groups);
            groups
                .entry(group)
                .or_default()
                .extend(rules.iter().map(described));
            Ok(())
        };
        Box::pin(async move { result })
    }

    fn revoke(&self, group: String, rules: Vec<Permission>) -> BoxFuture<'_, Result<(), AwsError>> {
        self.call("RevokeSecurityGroupIngress");
        let mut groups = lock(&self.groups);
        if let Some(held) = groups.get_mut(&group) {
            held.retain(|r| !rules.iter().any(|p| described(p) == *r));
        }
        Box::pin(async { Ok(()) })
    }
}

fn tcp(from: u16, to: u16, group: &str) -> Permission {
    Permission {
        protocol: Protocol::Tcp,
        from,
        to,
        peer: Peer::Group(group.into()),
    }
}

/// A binding `name` whose pods on `i-node` admit `sg-lb` on `port`.
fn binding(name: &str, port: i32) -> TargetGroupBinding {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "web"},
        "spec": {
            "targetGroupARN": "arn:tg", "targetType": "ip",
            "serviceRef": {"name": name, "port": 80},
            "networking": {"ingress": [{
                "from": [{"securityGroup": {"groupID": "sg-lb"}}],
                "ports": [{"protocol": "TCP", "port": port}],
            }]},
        },
    }))
    .expect("binding")
}

fn world(bindings: &[&TargetGroupBinding]) -> (Stores, Fill) {
    let (stores, mut fill) = stores();
    for b in bindings {
        put(&mut fill.bindings, (*b).clone());
    }
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "node-a"},
        "spec": {"providerID": "aws:///us-west-2a/i-node"},
    }))
    .expect("node");
    put(&mut fill.nodes, node);
    for (pod, ip) in [("a-1", "10.0.0.64"), ("b-1", "10.0.0.65")] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": pod, "namespace": "web"},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app"}]},
            "status": {"podIP": ip},
        }))
        .expect("pod");
        put(&mut fill.pods, pod);
    }
    (stores, fill)
}

fn desired(pod: &str, ip: &str, port: u16) -> Desired {
    let target = TargetKey::new(ip, port);
    Desired {
        targets: BTreeSet::from([target.clone()]),
        pod_targets: BTreeMap::from([(pod.to_string(), target.clone())]),
        known: BTreeSet::from([target]),
    }
}

async fn pass(
    rules: &TargetRules,
    stores: &Stores,
    binding: &TargetGroupBinding,
    desired: &Desired,
) -> Result<RulesOutcome, TargetRulesError> {
    let key = crate::tgb::binding_key(binding);
    let targets = BindingTargets {
        key: &key,
        binding,
        target_type: TargetType::Ip,
        desired,
    };
    rules.reconcile(&targets, stores).await
}

fn settings() -> TargetRulesSettings {
    TargetRulesSettings {
        cluster: "lab".into(),
        extra_tags: BTreeMap::new(),
        restricted: true,
    }
}

#[tokio::test]
async fn after_a_start_nothing_is_revoked_until_every_binding_is_known_then_rules_are_exact() {
    // A rule left from before (a range wider than needed) and a stale one.
    let network = Arc::new(FakeNetwork::with_group(vec![
        described(&tcp(8080, 9090, "sg-lb")),
        described(&tcp(7000, 7000, "sg-gone")),
    ]));
    let rules = TargetRules::new(network.clone(), settings());
    let (a, b) = (binding("a", 8080), binding("b", 9090));
    let (stores, _fill) = world(&[&a, &b]);

    // Only a is known: nothing revoked, and nothing added (its port is inside a present rule).
    pass(&rules, &stores, &a, &desired("a-1", "10.0.0.64", 8080))
        .await
        .expect("a");
    assert_eq!(network.rules().len(), 2);
    assert!(
        !network
            .calls()
            .iter()
            .any(|c| c.contains("Authorize") || c.contains("Revoke"))
    );

    // b known too: the sweep makes the group exact, the stale rule goes.
    pass(&rules, &stores, &b, &desired("b-1", "10.0.0.65", 9090))
        .await
        .expect("b");
    assert_eq!(network.rules(), vec![described(&tcp(8080, 9090, "sg-lb"))]);

    // Steady state: no call at all.
    network.calls();
    pass(&rules, &stores, &a, &desired("a-1", "10.0.0.64", 8080))
        .await
        .expect("a again");
    assert_eq!(network.calls(), Vec::<String>::new());

    // b deleted: the range narrows to a's port, added before the wider one goes.
    rules.forget("web/b", &stores).await.expect("forget");
    assert_eq!(
        network.calls(),
        [
            "DescribeSecurityGroups",
            "AuthorizeSecurityGroupIngress",
            "RevokeSecurityGroupIngress"
        ]
    );
    assert_eq!(network.rules(), vec![described(&tcp(8080, 8080, "sg-lb"))]);
}

#[tokio::test]
async fn a_failed_write_is_retried_by_the_next_pass() {
    let network = Arc::new(FakeNetwork::with_group(Vec::new()));
    let rules = TargetRules::new(network.clone(), settings());
    let a = binding("a", 8080);
    let (stores, _fill) = world(&[&a]);
    *lock(&network.fail_authorize) = true;
    let failed = pass(&rules, &stores, &a, &desired("a-1", "10.0.0.64", 8080)).await;
    assert!(matches!(failed, Err(TargetRulesError::Aws(_))));
    *lock(&network.fail_authorize) = false;
    let outcome = pass(&rules, &stores, &a, &desired("a-1", "10.0.0.64", 8080))
        .await
        .expect("retried");
    assert!(outcome.opened);
    assert_eq!(network.rules(), vec![described(&tcp(8080, 8080, "sg-lb"))]);
}

#[tokio::test]
async fn a_pod_on_an_unknown_node_is_reported_unresolved_and_a_lost_lease_forgets() {
    let network = Arc::new(FakeNetwork::with_group(Vec::new()));
    let rules = TargetRules::new(network.clone(), settings());
    let a = binding("a", 8080);
    let (stores, _fill) = world(&[&a]);
    // A target whose pod is not in the cache: no node, no interface.
    let outcome = pass(&rules, &stores, &a, &desired("a-9", "10.0.0.99", 8080))
        .await
        .expect("pass");
    assert_eq!(outcome.unresolved, ["10.0.0.99"]);
    pass(&rules, &stores, &a, &desired("a-1", "10.0.0.64", 8080))
        .await
        .expect("pass");
    network.calls();
    // After a lost lease, everything is described again.
    rules.forget_all();
    pass(&rules, &stores, &a, &desired("a-1", "10.0.0.64", 8080))
        .await
        .expect("pass");
    assert!(
        network
            .calls()
            .contains(&"DescribeNetworkInterfaces".to_string())
    );
}
