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

/// Hands out pod addresses in order, per zone. Addresses are not reused while the sandbox runs,
/// so a recreated pod always has a new address, as a restarted pod usually does under the VPC CNI.
#[derive(Debug)]
pub struct PodAddressAllocator {
    plan: AddressPlan,
    next: [u32; ZONES],
}

impl PodAddressAllocator {
    pub fn new(plan: AddressPlan) -> Self {
        Self {
            plan,
            next: [0; ZONES],
        }
    }

    pub fn allocate(&mut self, zone: usize) -> Result<Ipv4Addr> {
        let zone = zone % ZONES;
        let used = self.next[zone];
        if used >= self.plan.pod_capacity_per_zone() {
            return Err(SandboxError::Network(format!(
                "zone subnet {} has no pod address left ({used} used)",
                self.plan.zone_subnet(zone)
            )));
        }
        self.next[zone] += 1;
        Ok(Ipv4Addr::from(
            u32::from(self.plan.first_pod_address(zone)) + used,
        ))
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
        assert_eq!(alloc.allocate(1).unwrap(), Ipv4Addr::new(10, 244, 64, 64));
        assert_eq!(alloc.allocate(1).unwrap(), Ipv4Addr::new(10, 244, 64, 65));
        assert_eq!(alloc.allocate(0).unwrap(), Ipv4Addr::new(10, 244, 0, 64));
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
        let all: Vec<Ipv4Addr> = std::iter::from_fn(|| alloc.allocate(2).ok()).collect();
        assert_eq!(all.len(), 256 - 64 - 1);
        assert_eq!(all[0], Ipv4Addr::new(10, 1, 2, 64));
        assert_eq!(*all.last().unwrap(), Ipv4Addr::new(10, 1, 2, 254));
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }
}
