//! Where each target is reached: its network interface, as EC2 describes it. Interfaces are
//! described per node instance (one call for every instance a pass misses) and kept for
//! [`INTERFACES_TTL`]: the VPC CNI puts addresses on a node's interface ahead of its pods (or
//! prefixes, with prefix delegation), so a scale-out seldom misses, and a group changed on an
//! interface is seen within the TTL. Branch interfaces (security groups for pods) are described
//! by ID.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use lb_api::TargetType;
use lb_aws::{AwsError, TargetNetwork};
use lb_model::elb::TargetKey;
use lb_model::target_rules::{Interface, interface_with_address, pod_branch_interface};
use lb_model::targets::instance_id;

use super::BindingTargets;
use crate::stores::Stores;

/// How long an instance's described interfaces stand.
pub const INTERFACES_TTL: Duration = Duration::from_secs(600);

/// Where a target's interface is found.
#[derive(Debug, Clone)]
pub(super) enum Place {
    /// An instance target: the instance's primary interface.
    Primary(String),
    /// A pod on a node: the node instance's interface holding the address.
    Address(String, IpAddr),
    /// A pod with a branch interface.
    Branch(String),
    /// A pod whose node (or instance) is not known.
    Unknown,
}

/// The interfaces described so far.
#[derive(Default)]
pub(super) struct InterfaceCache {
    /// By instance, with when they were described.
    instances: HashMap<String, (Instant, Vec<Interface>)>,
    /// Branch interfaces by ID.
    branches: HashMap<String, Interface>,
}

/// The targets found (with their pods, which resolve named ports) and those not yet.
#[derive(Default)]
pub(super) struct Located {
    pub found: Vec<(TargetKey, Interface, Option<Arc<Pod>>)>,
    pub unresolved: Vec<String>,
}

impl InterfaceCache {
    pub fn find(&self, place: &Place) -> Option<&Interface> {
        match place {
            Place::Primary(instance) => self
                .instances
                .get(instance)?
                .1
                .iter()
                .find(|i| i.device_index == Some(0)),
            Place::Address(instance, address) => {
                interface_with_address(&self.instances.get(instance)?.1, *address)
            }
            Place::Branch(id) => self.branches.get(id),
            Place::Unknown => None,
        }
    }

    /// The instance whose known interfaces hold `address`.
    pub fn instance_holding(&self, address: IpAddr) -> Option<String> {
        self.instances
            .iter()
            .find(|(_, (_, list))| interface_with_address(list, address).is_some())
            .map(|(instance, _)| instance.clone())
    }

    fn fresh(&self, instance: &str, now: Instant) -> bool {
        self.instances
            .get(instance)
            .is_some_and(|(at, _)| now < *at + INTERFACES_TTL)
    }

    /// Keeps `described` as the interfaces of `instances` (an instance with none keeps none).
    pub fn keep_instances(&mut self, instances: &BTreeSet<String>, described: Vec<Interface>) {
        let now = Instant::now();
        for instance in instances {
            self.instances.insert(instance.clone(), (now, Vec::new()));
        }
        for interface in described {
            if let Some(instance) = &interface.instance_id
                && let Some((_, list)) = self.instances.get_mut(instance)
            {
                list.push(interface);
            }
        }
    }

    pub fn keep_branch(&mut self, interface: Interface) {
        self.branches.insert(interface.id.clone(), interface);
    }

    /// Each wanted target's interface, describing what is missing or stale in one call per kind.
    pub async fn locate(
        &mut self,
        network: &dyn TargetNetwork,
        targets: &BindingTargets<'_>,
        stores: &Stores,
    ) -> Result<Located, AwsError> {
        let wanted = places(targets, stores);
        let now = Instant::now();
        let mut instances = BTreeSet::new();
        let mut branches = BTreeSet::new();
        for (_, place, _) in &wanted {
            match place {
                Place::Primary(instance) | Place::Address(instance, _)
                    if self.find(place).is_none() || !self.fresh(instance, now) =>
                {
                    instances.insert(instance.clone());
                }
                Place::Branch(id) if self.find(place).is_none() => {
                    branches.insert(id.clone());
                }
                _ => {}
            }
        }
        if !instances.is_empty() {
            let described = network
                .instance_interfaces(instances.iter().cloned().collect())
                .await?;
            self.keep_instances(&instances, described);
        }
        if !branches.is_empty() {
            for interface in network.interfaces(branches.into_iter().collect()).await? {
                self.keep_branch(interface);
            }
        }
        let mut located = Located::default();
        for (target, place, pod) in wanted {
            match self.find(&place) {
                Some(interface) => located.found.push((target, interface.clone(), pod)),
                None => located.unresolved.push(target.id),
            }
        }
        Ok(located)
    }
}

/// Where each of the binding's wanted targets is looked for, with its pod.
fn places(
    targets: &BindingTargets<'_>,
    stores: &Stores,
) -> Vec<(TargetKey, Place, Option<Arc<Pod>>)> {
    let namespace = targets
        .binding
        .metadata
        .namespace
        .clone()
        .unwrap_or_default();
    let pods_of: HashMap<&TargetKey, &str> = targets
        .desired
        .pod_targets
        .iter()
        .map(|(pod, key)| (key, pod.as_str()))
        .collect();
    let nodes = stores.nodes.state();
    let instance_of_node = |name: &str| {
        nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
            .and_then(|n| instance_id(n))
    };
    let mut wanted = Vec::new();
    for target in &targets.desired.targets {
        if targets.target_type == TargetType::Instance {
            wanted.push((target.clone(), Place::Primary(target.id.clone()), None));
            continue;
        }
        let Ok(address) = target.id.parse::<IpAddr>() else {
            continue;
        };
        let pod = pods_of
            .get(target)
            .and_then(|name| stores.pod(&namespace, name));
        let place = match pod.as_deref().and_then(pod_branch_interface) {
            Some(branch) => Place::Branch(branch),
            None => pod
                .as_deref()
                .and_then(|p| p.spec.as_ref()?.node_name.clone())
                .and_then(|node| instance_of_node(&node))
                .map_or(Place::Unknown, |instance| Place::Address(instance, address)),
        };
        wanted.push((target.clone(), place, pod));
    }
    wanted
}
