//! How a sandbox lays out its pod CIDR, and the allocator that hands pods their addresses.
//!
//! The CIDR is the emulated VPC. Its first three quarters are the subnets of zones a, b and c
//! (the fourth is left free). Like the VPC CNI, a node and its pods have addresses in the node's
//! zone subnet:
//!
//! ```text
//!   net+1          host end of the veth (source of every probe and health check)
//!   net+2          namespace end of the veth
//!   subnet+16 ..   nodes of the zone (their InternalIP, where NodePorts answer)
//!   subnet+64 ..   pods of the zone's nodes, a new address per pod, never reused while running
//! ```

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::{Result, SandboxError};

pub const ZONES: usize = 3;
const HOST_OFFSET: u32 = 1;
const NAMESPACE_OFFSET: u32 = 2;
const FIRST_NODE_OFFSET: u32 = 16;
const FIRST_POD_OFFSET: u32 = 64;
const NODES_PER_ZONE: usize = (FIRST_POD_OFFSET - FIRST_NODE_OFFSET) as usize;
pub const MAX_NODES: usize = NODES_PER_ZONE * ZONES;

/// The name of zone `zone` (0, 1, 2) of `region`: `us-west-2a`, `us-west-2b`, `us-west-2c`.
pub fn zone_name(region: &str, zone: usize) -> String {
    format!("{region}{}", ['a', 'b', 'c'][zone % ZONES])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPlan {
    cidr: Ipv4Net,
    zones: [Ipv4Net; ZONES],
}

impl AddressPlan {
    pub fn new(cidr: Ipv4Net) -> Result<Self> {
        if cidr.prefix_len() > 22 {
            return Err(SandboxError::Config(format!(
                "pod CIDR {cidr} is too small: use a /22 or larger (it holds three zone subnets)"
            )));
        }
        let cidr = cidr.trunc();
        let quarters: Vec<Ipv4Net> = cidr
            .subnets(cidr.prefix_len() + 2)
            .map_err(|e| SandboxError::Config(format!("splitting {cidr} into zone subnets: {e}")))?
            .take(ZONES)
            .collect();
        let zones: [Ipv4Net; ZONES] = quarters.try_into().map_err(|_| {
            SandboxError::Config(format!("{cidr} has no room for {ZONES} zone subnets"))
        })?;
        Ok(Self { cidr, zones })
    }

    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    /// The subnet of zone `zone` (0, 1, 2): a quarter of the CIDR.
    pub fn zone_subnet(&self, zone: usize) -> Ipv4Net {
        self.zones[zone % ZONES]
    }

    fn offset(net: Ipv4Net, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(net.network()) + offset)
    }

    pub fn host_address(&self) -> Ipv4Addr {
        Self::offset(self.cidr, HOST_OFFSET)
    }

    pub fn namespace_address(&self) -> Ipv4Addr {
        Self::offset(self.cidr, NAMESPACE_OFFSET)
    }

    /// Node `index` lives in zone `index % 3`.
    pub fn node_address(&self, index: usize) -> Result<Ipv4Addr> {
        if index >= MAX_NODES {
            return Err(SandboxError::Config(format!(
                "at most {MAX_NODES} nodes fit the address plan"
            )));
        }
        let subnet = self.zone_subnet(index % ZONES);
        Ok(Self::offset(
            subnet,
            FIRST_NODE_OFFSET + (index / ZONES) as u32,
        ))
    }

    pub fn first_pod_address(&self, zone: usize) -> Ipv4Addr {
        Self::offset(self.zone_subnet(zone), FIRST_POD_OFFSET)
    }

    /// Pod addresses per zone (the subnet's broadcast address is left out).
    pub fn pod_capacity_per_zone(&self) -> u32 {
        let size = 1u32 << (32 - self.zone_subnet(0).prefix_len());
        size - FIRST_POD_OFFSET - 1
    }
}

/// How many addresses a node takes at a time, as the VPC CNI's IP address manager assigns a
/// batch of secondary addresses to a node's interface before its pods need them.
pub const ADDRESS_BLOCK: u32 = 16;

/// A pod's address, and the addresses its node took for it (a new block, and at first a warm
/// one besides): they go on the node's interface before the pod uses its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub address: Ipv4Addr,
    pub new_addresses: Vec<Ipv4Addr>,
}

/// A node's blocks: the one its pods take addresses from, how many it gave, and the next one,
/// taken ahead (the CNI's warm target).
#[derive(Debug, Clone, Copy)]
struct NodeBlocks {
    current: u32,
    used: u32,
    warm: Option<u32>,
}

/// Hands out pod addresses per node, from blocks of [`ADDRESS_BLOCK`] the node takes from its
/// zone's subnet in order. Addresses are not reused while the sandbox runs, so a recreated pod
/// always has a new address, as a restarted pod usually does under the VPC CNI.
#[derive(Debug)]
pub struct PodAddressAllocator {
    plan: AddressPlan,
    /// The next free block of each zone.
    next_block: [u32; ZONES],
    nodes: std::collections::HashMap<String, NodeBlocks>,
    /// Addresses a node took whose assignment to its interface failed: handed out again with
    /// the node's next allocation.
    unassigned: std::collections::HashMap<String, Vec<Ipv4Addr>>,
}

impl PodAddressAllocator {
    pub fn new(plan: AddressPlan) -> Self {
        Self {
            plan,
            next_block: [0; ZONES],
            nodes: Default::default(),
            unassigned: Default::default(),
        }
    }

    /// The addresses of block `block` of `zone` (the subnet's broadcast address left out).
    fn block_addresses(&self, zone: usize, block: u32) -> Vec<Ipv4Addr> {
        let first = u32::from(self.plan.first_pod_address(zone)) + block * ADDRESS_BLOCK;
        let capacity = self.plan.pod_capacity_per_zone();
        (0..ADDRESS_BLOCK)
            .filter(|i| block * ADDRESS_BLOCK + i < capacity)
            .map(|i| Ipv4Addr::from(first + i))
            .collect()
    }

    /// The zone's next free block, if any is left.
    fn take_block(&mut self, zone: usize) -> Option<u32> {
        let block = self.next_block[zone];
        if block * ADDRESS_BLOCK >= self.plan.pod_capacity_per_zone() {
            return None;
        }
        self.next_block[zone] += 1;
        Some(block)
    }

    /// A new address for a pod of `node` (in zone `zone`).
    pub fn allocate(&mut self, node: &str, zone: usize) -> Result<Allocation> {
        let zone = zone % ZONES;
        let exhausted = |plan: &AddressPlan| {
            SandboxError::Network(format!(
                "zone subnet {} has no pod address left",
                plan.zone_subnet(zone)
            ))
        };
        let mut taken = Vec::new();
        let mut blocks = match self.nodes.get(node) {
            Some(blocks) => *blocks,
            None => {
                let current = self.take_block(zone).ok_or_else(|| exhausted(&self.plan))?;
                taken.push(current);
                NodeBlocks {
                    current,
                    used: 0,
                    warm: None,
                }
            }
        };
        if blocks.used >= self.block_addresses(zone, blocks.current).len() as u32 {
            let next = match blocks.warm.take() {
                Some(warm) => warm,
                None => {
                    let block = self.take_block(zone).ok_or_else(|| exhausted(&self.plan))?;
                    taken.push(block);
                    block
                }
            };
            blocks.current = next;
            blocks.used = 0;
        }
        if blocks.warm.is_none()
            && let Some(warm) = self.take_block(zone)
        {
            taken.push(warm);
            blocks.warm = Some(warm);
        }
        let address = self.block_addresses(zone, blocks.current)[blocks.used as usize];
        blocks.used += 1;
        self.nodes.insert(node.to_string(), blocks);
        let mut new_addresses = self.unassigned.remove(node).unwrap_or_default();
        new_addresses.extend(
            taken
                .into_iter()
                .flat_map(|b| self.block_addresses(zone, b)),
        );
        Ok(Allocation {
            address,
            new_addresses,
        })
    }

    /// `addresses` of `node` did not reach its interface: they come again with its next
    /// allocation.
    pub fn not_assigned(&mut self, node: &str, addresses: Vec<Ipv4Addr>) {
        self.unassigned
            .entry(node.to_string())
            .or_default()
            .extend(addresses);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cidr: &str) -> AddressPlan {
        AddressPlan::new(cidr.parse().unwrap()).unwrap()
    }

    #[test]
    fn three_zone_subnets_of_a_quarter_each() {
        let p = plan("10.244.0.0/16");
        let subnets: Vec<String> = (0..3).map(|z| p.zone_subnet(z).to_string()).collect();
        assert_eq!(
            subnets,
            ["10.244.0.0/18", "10.244.64.0/18", "10.244.128.0/18"]
        );
        assert_eq!(p.host_address(), Ipv4Addr::new(10, 244, 0, 1));
        assert_eq!(p.namespace_address(), Ipv4Addr::new(10, 244, 0, 2));
    }

    #[test]
    fn nodes_and_their_pods_share_the_zone_subnet() {
        let p = plan("10.244.0.0/16");
        assert_eq!(p.node_address(0).unwrap(), Ipv4Addr::new(10, 244, 0, 16));
        assert_eq!(p.node_address(1).unwrap(), Ipv4Addr::new(10, 244, 64, 16));
        assert_eq!(p.node_address(2).unwrap(), Ipv4Addr::new(10, 244, 128, 16));
        assert_eq!(p.node_address(3).unwrap(), Ipv4Addr::new(10, 244, 0, 17));
        assert!(p.node_address(MAX_NODES).is_err());
        let mut alloc = PodAddressAllocator::new(p);
        let address = |a: Result<Allocation>| a.unwrap().address;
        assert_eq!(
            address(alloc.allocate("b", 1)),
            Ipv4Addr::new(10, 244, 64, 64)
        );
        assert_eq!(
            address(alloc.allocate("b", 1)),
            Ipv4Addr::new(10, 244, 64, 65)
        );
        assert_eq!(
            address(alloc.allocate("a", 0)),
            Ipv4Addr::new(10, 244, 0, 64)
        );
        for zone in 0..3 {
            assert!(p.zone_subnet(zone).contains(&p.first_pod_address(zone)));
        }
    }

    #[test]
    fn normalises_host_bits_and_rejects_tiny_cidrs() {
        assert_eq!(plan("10.250.3.7/16").cidr().to_string(), "10.250.0.0/16");
        assert!(AddressPlan::new("10.0.0.0/23".parse().unwrap()).is_err());
    }

    #[test]
    fn allocator_never_reuses_and_stops_at_the_subnet_broadcast() {
        let p = plan("10.1.0.0/22");
        let mut alloc = PodAddressAllocator::new(p);
        let all: Vec<Ipv4Addr> =
            std::iter::from_fn(|| alloc.allocate("c", 2).ok().map(|a| a.address)).collect();
        assert_eq!(all.len(), 256 - 64 - 1);
        assert_eq!(all[0], Ipv4Addr::new(10, 1, 2, 64));
        assert_eq!(*all.last().unwrap(), Ipv4Addr::new(10, 1, 2, 254));
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }

    #[test]
    fn a_node_takes_blocks_ahead_and_its_pods_use_only_its_own() {
        let p = plan("10.244.0.0/16");
        let mut alloc = PodAddressAllocator::new(p);
        // The first pod of a node takes its block and a warm one.
        let first = alloc.allocate("a", 0).unwrap();
        assert_eq!(first.address, Ipv4Addr::new(10, 244, 0, 64));
        assert_eq!(first.new_addresses.len(), 2 * ADDRESS_BLOCK as usize);
        // Another node of the zone takes the next blocks.
        let other = alloc.allocate("d", 0).unwrap();
        assert_eq!(other.address, Ipv4Addr::new(10, 244, 0, 96));
        // The next 15 pods of "a" take nothing new; the 17th moves to the warm block and takes
        // the next warm one.
        for _ in 1..ADDRESS_BLOCK {
            assert!(alloc.allocate("a", 0).unwrap().new_addresses.is_empty());
        }
        let seventeenth = alloc.allocate("a", 0).unwrap();
        assert_eq!(seventeenth.address, Ipv4Addr::new(10, 244, 0, 80));
        assert_eq!(
            seventeenth.new_addresses.first(),
            Some(&Ipv4Addr::new(10, 244, 0, 128))
        );
        // Addresses whose assignment failed come again with the node's next allocation.
        alloc.not_assigned("a", vec![Ipv4Addr::new(10, 244, 0, 81)]);
        let next = alloc.allocate("a", 0).unwrap();
        assert_eq!(next.new_addresses, [Ipv4Addr::new(10, 244, 0, 81)]);
        // Every address a pod got was taken by its node first.
        let mut taken_by_a: std::collections::HashSet<Ipv4Addr> =
            first.new_addresses.into_iter().collect();
        taken_by_a.extend(seventeenth.new_addresses);
        assert!(taken_by_a.contains(&seventeenth.address));
        assert!(!taken_by_a.contains(&other.address));
    }
}
