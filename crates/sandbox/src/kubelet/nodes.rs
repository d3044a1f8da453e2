//! The sandbox's Node objects: what EKS nodes look like to a controller (zone labels, an AWS
//! `providerID` with an instance ID, an InternalIP in the VPC, Ready).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Node, NodeSpec};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rand::Rng;
use serde_json::json;

use crate::addressing::{AddressPlan, ZONES, zone_name};
use crate::binaries::KUBERNETES_VERSION;
use crate::error::{Context, Result};

pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// Pods a node runs at most: the kubelet's default `--max-pods`, and what the nodes report.
pub const MAX_PODS_PER_NODE: usize = 110;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxNode {
    pub name: String,
    pub zone: String,
    /// 0, 1, 2 for zones a, b, c: which subnet of the address plan the node and its pods use.
    pub zone_index: usize,
    pub address: Ipv4Addr,
    /// `i-` and 17 hex digits, like an EC2 instance ID.
    pub instance_id: String,
}

impl SandboxNode {
    pub fn provider_id(&self) -> String {
        format!("aws:///{}/{}", self.zone, self.instance_id)
    }
}

/// `count` nodes spread round-robin over three zones of `region`, with fresh instance IDs.
pub fn plan_nodes(count: usize, region: &str, plan: &AddressPlan) -> Result<Vec<SandboxNode>> {
    let mut rng = rand::rng();
    (0..count)
        .map(|index| {
            Ok(SandboxNode {
                name: format!("sandbox-node-{index}"),
                zone: zone_name(region, index % ZONES),
                zone_index: index % ZONES,
                address: plan.node_address(index)?,
                instance_id: format!("i-0{:016x}", rng.random::<u64>()),
            })
        })
        .collect()
}

pub fn node_object(node: &SandboxNode, region: &str) -> Node {
    let labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", node.name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("node.kubernetes.io/instance-type", "m5.large"),
        (ZONE_LABEL, node.zone.as_str()),
        (REGION_LABEL, region),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Node {
        metadata: kube::api::ObjectMeta {
            name: Some(node.name.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            provider_id: Some(node.provider_id()),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

/// The node's status as a kubelet posts it: Ready, its addresses, capacity and versions.
pub fn node_status(node: &SandboxNode) -> serde_json::Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": type_, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        })
    };
    let max_pods = MAX_PODS_PER_NODE.to_string();
    let resources =
        json!({"cpu": "4", "memory": "16Gi", "pods": max_pods, "ephemeral-storage": "100Gi"});
    json!({
        "status": {
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": node.address.to_string()},
                {"type": "Hostname", "address": node.name},
            ],
            "capacity": resources,
            "allocatable": resources,
            "nodeInfo": {
                "machineID": node.instance_id, "systemUUID": node.instance_id, "bootID": node.instance_id,
                "kernelVersion": "sandbox", "osImage": "lb-sandbox", "containerRuntimeVersion": "sandbox://1",
                "kubeletVersion": KUBERNETES_VERSION, "kubeProxyVersion": KUBERNETES_VERSION,
                "operatingSystem": "linux", "architecture": "amd64",
            },
        }
    })
}

/// Creates each Node and posts its status.
pub async fn register(client: &Client, nodes: &[SandboxNode], region: &str) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    for node in nodes {
        api.create(&PostParams::default(), &node_object(node, region))
            .await
            .context(|| format!("creating node {}", node.name))?;
        api.patch_status(
            &node.name,
            &PatchParams::default(),
            &Patch::Merge(node_status(node)),
        )
        .await
        .context(|| format!("posting the status of node {}", node.name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_spread_over_three_zones_with_instance_ids() {
        let plan = AddressPlan::new("10.244.0.0/16".parse().unwrap()).unwrap();
        let nodes = plan_nodes(4, "us-west-2", &plan).unwrap();
        let zones: Vec<&str> = nodes.iter().map(|n| n.zone.as_str()).collect();
        assert_eq!(
            zones,
            ["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2a"]
        );
        assert_eq!(nodes[1].address, Ipv4Addr::new(10, 244, 64, 16));
        assert_eq!(nodes[3].zone_index, 0);
        for node in &nodes {
            assert_eq!(node.instance_id.len(), 19, "{}", node.instance_id);
            assert!(node.instance_id[2..].chars().all(|c| c.is_ascii_hexdigit()));
            assert!(
                node.provider_id()
                    .starts_with(&format!("aws:///{}/i-", node.zone))
            );
        }
    }

    #[test]
    fn node_object_carries_topology_and_provider_id() {
        let node = SandboxNode {
            name: "n".into(),
            zone: "us-west-2b".into(),
            zone_index: 1,
            address: Ipv4Addr::new(10, 244, 0, 16),
            instance_id: "i-0123456789abcdef0".into(),
        };
        let object = node_object(&node, "us-west-2");
        let labels = object.metadata.labels.unwrap();
        assert_eq!(labels[ZONE_LABEL], "us-west-2b");
        assert_eq!(labels[REGION_LABEL], "us-west-2");
        assert_eq!(
            object.spec.unwrap().provider_id.unwrap(),
            "aws:///us-west-2b/i-0123456789abcdef0"
        );
        let status = node_status(&node);
        assert_eq!(status["status"]["addresses"][0]["address"], "10.244.0.16");
    }
}
