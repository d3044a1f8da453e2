"""EC2 networking as AWS enforces it on load balancer traffic: security groups decide what a
health check, a forwarded request or a client reaches.

- A target is reached through its network interface: an ip target's is the interface that holds
  its address (the VPC CNI puts pod addresses on their node's interface as secondary addresses:
  the sandbox's kubelet assigns them through the control API, see `assign_addresses`), an
  instance target's is the instance's primary interface. A health check or a request from a load
  balancer gets through only when a security group of that interface has an ingress rule for the
  protocol and port whose source is one of the load balancer's security groups, or a CIDR that
  holds every address of the load balancer (it has one in each of its subnets, near the top of
  the subnet: `balancer_addresses`). Otherwise the packets are dropped, as in a VPC: the check
  times out, the request waits for the connect timeout.
- An NLB without security groups is checked by address: its health checks come from its own
  addresses, and so does its traffic unless the target group preserves the client's address
  (`preserve_client_ip.enabled`, on by default for instance targets and for UDP / TCP_UDP), in
  which case the client's address must be admitted.
- A client reaches a listener only when one of the load balancer's security groups admits the
  client's address on the listener's port (by a CIDR, or a managed prefix list holding it) (an NLB without groups admits everyone). The sandbox's
  clients all come from loopback; for this check they stand for one client address,
  `client_address` (203.0.113.10 by default, TEST-NET-3: a public address as an internet client
  has), set through the control API.
- A load balancer of another account (a cross-account binding's peered target group) is not
  checked: its groups live in the other account's VPC.

`enforce` (on by default; the control API turns it off for experiments) switches all of it.
"""

import ipaddress
import zlib

from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ec2.models.security_groups import SecurityGroup

DEFAULT_CLIENT_ADDRESS = "203.0.113.10"
ALL_PROTOCOLS = ("-1", "all")


def patch_interface_filters() -> None:
    """DescribeNetworkInterfaces' `addresses.private-ip-address` matches any private address of
    the interface, as in EC2 (moto matches the primary one only)."""
    original = NetworkInterface.get_filter_value

    def get_filter_value(self, filter_name, method_name=None):
        if filter_name == "addresses.private-ip-address":
            return [a.get("PrivateIpAddress") for a in self.private_ip_addresses if a.get("PrivateIpAddress")]
        return original(self, filter_name, method_name)

    NetworkInterface.get_filter_value = get_filter_value


def rule_admits(rule, protocol: str, port: int, groups: set, address: str | None,
                prefix_list=lambda _id: []) -> bool:
    """A moto ingress rule admits `protocol`/`port` from one of the load balancer's `groups`, or
    from `address` (by its CIDR, or the CIDRs of its prefix list: `prefix_list(id)`)."""
    if rule.ip_protocol not in ALL_PROTOCOLS:
        if rule.ip_protocol != protocol or rule.from_port is None:
            return False
        if not int(rule.from_port) <= port <= int(rule.to_port):
            return False
    source_group = (rule.source_group or {}).get("GroupId")
    if source_group:
        return source_group in groups
    if address is None:
        return False
    listed = getattr(rule, "prefix_list_id", None)
    cidrs = prefix_list(listed) if listed else [rule.cidr_ipv4 or rule.cidr_ipv6]
    return any(cidr and ipaddress.ip_address(address) in ipaddress.ip_network(cidr, strict=False)
               for cidr in cidrs)


def groups_admit(security_groups, protocol: str, port: int, groups: set, addresses: list,
                 prefix_list=lambda _id: []) -> bool:
    """Some rule admits the load balancer by one of its `groups`, or every one of its
    `addresses` (each of its nodes sends checks) is admitted by some rule."""
    rules = [rule for group in security_groups for rule in group.ingress_rules]
    if groups and any(rule_admits(rule, protocol, port, groups, None) for rule in rules):
        return True
    return bool(addresses) and all(
        any(rule_admits(rule, protocol, port, set(), address, prefix_list) for rule in rules)
        for address in addresses
    )


class Network:
    def __init__(self, ec2_backend, elbv2_backend, account_id: str, enforce: bool = True):
        self.ec2 = ec2_backend
        self.elbv2 = elbv2_backend
        self.account_id = account_id
        self.enforce = enforce
        self.client_address = DEFAULT_CLIENT_ADDRESS
        # Pod address -> its interface, as assign_addresses put them (checked before use).
        self.by_address: dict = {}

    # Interfaces ---------------------------------------------------------------------------------

    def assign_addresses(self, instance_id: str, addresses: list[str]) -> dict:
        """Puts `addresses` on the instance's primary interface, as the VPC CNI's IP address
        manager does before pods get them."""
        instance = self.ec2.get_instance_by_id(instance_id)
        if instance is None or 0 not in instance.nics:
            raise ValueError(f"no instance {instance_id} with a primary interface")
        for address in addresses:
            ipaddress.ip_address(address)  # A ValueError names a bad one.
        eni = instance.nics[0]
        self.ec2.assign_private_ip_addresses(eni.id, addresses)
        for address in addresses:
            self.by_address[address] = eni
        return {"network_interface_id": eni.id, "addresses": len(eni.private_ip_addresses)}

    def ensure_group(self, group_id: str, vpc_id: str) -> dict:
        """Makes security group `group_id` exist in the VPC (no rules), for manifests that name a
        group of the user's by ID (EC2 takes no ID at creation, so it is put in moto's table as
        moto itself does for an interface naming an unknown group)."""
        if not group_id.startswith("sg-") or not all(c in "0123456789abcdef" for c in group_id[3:]):
            raise ValueError(f"{group_id} is no security group ID")
        if self.ec2.get_security_group_from_id(group_id) is None:
            group = SecurityGroup(self.ec2, group_id, f"user-{group_id}",
                                  "a security group the manifests name, made by the sandbox", vpc_id=vpc_id)
            self.ec2.groups[vpc_id][group_id] = group
            return {"group_id": group_id, "created": True}
        return {"group_id": group_id, "created": False}

    def interface_of(self, group, target_id: str):
        """The interface a target is reached through (None: nothing holds it)."""
        if group.target_type == "instance":
            instance = self.ec2.get_instance_by_id(target_id) if target_id.startswith("i-") else None
            return instance.nics.get(0) if instance else None
        holds = lambda eni: any(a.get("PrivateIpAddress") == target_id for a in eni.private_ip_addresses)  # noqa: E731
        known = self.by_address.get(target_id)
        if known is not None and holds(known):
            return known
        return next((eni for eni in list(self.ec2.enis.values()) if holds(eni)), None)

    def balancer_addresses(self, balancer) -> list[str]:
        """The load balancer's address in each of its subnets: near the top of the subnet, away
        from the nodes and pods the sandbox numbers from the bottom."""
        offset = 2 + zlib.crc32(balancer.arn.encode()) % 64
        addresses = []
        for subnet in balancer.subnets:
            network = ipaddress.ip_network(subnet.cidr_block)
            addresses.append(str(network.broadcast_address - offset))
        return addresses

    def prefix_list(self, prefix_list_id: str) -> list[str]:
        """The CIDRs of a managed prefix list, at its latest version."""
        found = self.ec2.managed_prefix_lists.get(prefix_list_id)
        if found is None or not found.entries:
            return []
        return [entry.get("Cidr") for entry in found.entries[max(found.entries)] if entry.get("Cidr")]

    # Enforcement --------------------------------------------------------------------------------

    def _is_local(self, balancer) -> bool:
        return balancer.arn.split(":")[4] == self.account_id

    def _balancer_of(self, group):
        for arn in group.load_balancer_arns:
            balancer = self.elbv2.load_balancers.get(arn)
            if balancer is not None:
                return balancer
        return None

    @staticmethod
    def _target_protocol(group) -> str:
        return "udp" if (group.protocol or "").upper() == "UDP" else "tcp"

    @staticmethod
    def _preserves_client_ip(group) -> bool:
        value = (group.attributes or {}).get("preserve_client_ip.enabled")
        if value is not None:
            return str(value).lower() == "true"
        return group.target_type == "instance" or (group.protocol or "").upper() in ("UDP", "TCP_UDP")

    def target_blocked(self, group, target_id: str, port: int, traffic: bool) -> str | None:
        """Why a health check (`traffic` False) or a forwarded request to the target on `port` is
        dropped; None when it gets through."""
        if not self.enforce:
            return None
        balancer = self._balancer_of(group)
        if balancer is None or not self._is_local(balancer):
            return None
        eni = self.interface_of(group, target_id)
        if eni is None:
            return f"no network interface holds {target_id}"
        balancer_groups = set(balancer.security_groups or [])
        if balancer.type == "network" and not balancer_groups and traffic and self._preserves_client_ip(group):
            addresses = [self.client_address]
        else:
            addresses = self.balancer_addresses(balancer)
        protocol = self._target_protocol(group)
        if groups_admit(eni.group_set, protocol, port, balancer_groups, addresses, self.prefix_list):
            return None
        groups = ", ".join(g.id for g in eni.group_set)
        sources = ", ".join(sorted(balancer_groups)) or ", ".join(addresses)
        return f"{groups} on {eni.id} admits nothing from {sources} on {protocol}/{port}"

    def listener_blocked(self, balancer, listener) -> str | None:
        """Why the client is dropped at the listener; None when it gets in."""
        if not self.enforce or not balancer.security_groups or not self._is_local(balancer):
            return None
        protocol = "udp" if listener.protocol == "UDP" else "tcp"
        port = int(listener.port)
        groups = [g for g in map(self.ec2.get_security_group_from_id, balancer.security_groups) if g]
        if groups_admit(groups, protocol, port, set(), [self.client_address], self.prefix_list):
            return None
        return f"{', '.join(balancer.security_groups)} admit nothing from {self.client_address} on {protocol}/{port}"
