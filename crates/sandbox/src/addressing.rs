//! How a sandbox lays out its pod CIDR, and the allocator that hands pods their addresses.
//!
//! ```text
//!   net+1          host end of the veth (source address of every probe and health check)
//!   net+2          namespace end of the veth
//!   net+16 ..+63   nodes (their InternalIP, where NodePorts answer)
//!   net+64 ..      pods, one new address per pod, never reused while the sandbox runs
//! ```
//! Like the VPC CNI, nodes and pods share one address space; the cloud-side VPC of later issues uses
//! this same CIDR.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::{Result, SandboxError};

const HOST_OFFSET: u32 = 1;
const NAMESPACE_OFFSET: u32 = 2;
const FIRST_NODE_OFFSET: u32 = 16;
const FIRST_POD_OFFSET: u32 = 64;
pub const MAX_NODES: usize = (FIRST_POD_OFFSET - FIRST_NODE_OFFSET) as usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPlan {
    cidr: Ipv4Net,
}

impl AddressPlan {
    pub fn new(cidr: Ipv4Net) -> Result<Self> {
        if cidr.prefix_len() > 24 {
            return Err(SandboxError::Config(format!(
                "pod CIDR {cidr} is too small: use a /24 or larger"
            )));
        }
        Ok(Self { cidr: cidr.trunc() })
    }

    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    fn at(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.cidr.network()) + offset)
    }

    pub fn host_address(&self) -> Ipv4Addr {
        self.at(HOST_OFFSET)
    }

    pub fn namespace_address(&self) -> Ipv4Addr {
        self.at(NAMESPACE_OFFSET)
    }

    pub fn node_address(&self, index: usize) -> Result<Ipv4Addr> {
        if index >= MAX_NODES {
            return Err(SandboxError::Config(format!(
                "at most {MAX_NODES} nodes fit the address plan"
            )));
        }
        Ok(self.at(FIRST_NODE_OFFSET + index as u32))
    }

    pub fn first_pod_address(&self) -> Ipv4Addr {
        self.at(FIRST_POD_OFFSET)
    }

    /// Number of pod addresses the plan has (the broadcast address is left out).
    pub fn pod_capacity(&self) -> u32 {
        let size = 1u32 << (32 - self.cidr.prefix_len());
        size - FIRST_POD_OFFSET - 1
    }
}

/// Hands out pod addresses in order. Addresses are not reused while the sandbox runs, so a
/// recreated pod always has a new address, as a restarted pod usually does under the VPC CNI.
#[derive(Debug)]
pub struct PodAddressAllocator {
    plan: AddressPlan,
    next: u32,
}

impl PodAddressAllocator {
    pub fn new(plan: AddressPlan) -> Self {
        Self { plan, next: 0 }
    }

    pub fn allocate(&mut self) -> Result<Ipv4Addr> {
        if self.next >= self.plan.pod_capacity() {
            return Err(SandboxError::Network(format!(
                "pod CIDR {} has no address left ({} used)",
                self.plan.cidr(),
                self.next
            )));
        }
        let address = Ipv4Addr::from(u32::from(self.plan.first_pod_address()) + self.next);
        self.next += 1;
        Ok(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cidr: &str) -> AddressPlan {
        AddressPlan::new(cidr.parse().unwrap()).unwrap()
    }

    #[test]
    fn lays_out_infrastructure_nodes_then_pods() {
        let p = plan("10.244.0.0/16");
        assert_eq!(p.host_address(), Ipv4Addr::new(10, 244, 0, 1));
        assert_eq!(p.namespace_address(), Ipv4Addr::new(10, 244, 0, 2));
        assert_eq!(p.node_address(0).unwrap(), Ipv4Addr::new(10, 244, 0, 16));
        assert_eq!(p.node_address(2).unwrap(), Ipv4Addr::new(10, 244, 0, 18));
        assert!(p.node_address(MAX_NODES).is_err());
        assert_eq!(p.first_pod_address(), Ipv4Addr::new(10, 244, 0, 64));
        assert_eq!(p.pod_capacity(), 65536 - 64 - 1);
    }

    #[test]
    fn normalises_host_bits_and_rejects_tiny_cidrs() {
        assert_eq!(plan("10.250.3.7/16").cidr().to_string(), "10.250.0.0/16");
        assert!(AddressPlan::new("10.0.0.0/25".parse().unwrap()).is_err());
    }

    #[test]
    fn allocator_never_reuses_and_stops_at_the_broadcast_address() {
        let mut alloc = PodAddressAllocator::new(plan("10.1.2.0/24"));
        let all: Vec<Ipv4Addr> = std::iter::from_fn(|| alloc.allocate().ok()).collect();
        assert_eq!(all.len(), 256 - 64 - 1);
        assert_eq!(all[0], Ipv4Addr::new(10, 1, 2, 64));
        assert_eq!(*all.last().unwrap(), Ipv4Addr::new(10, 1, 2, 254));
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }
}
