"""ELB's create calls are idempotent, as its API reference says of CreateLoadBalancer,
CreateTargetGroup and CreateListener: "If you attempt to create multiple ... with the same
settings, each call succeeds." The call answers the existing resource; with other settings it
fails DuplicateLoadBalancerName, DuplicateTargetGroupName or DuplicateListener.

moto differs: a second CreateLoadBalancer of a name makes a second load balancer (its ARN has a
random part, so its duplicate check never matches), and a second CreateTargetGroup fails even
with the same settings, and a second CreateListener on a port makes a second listener there (its
duplicate check looks for the port among listener ARNs). A client retrying a create whose answer was
lost (the fault matrix's `lose`) would meet a duplicate or an error AWS never gives.
"""

from moto.elbv2 import models
from moto.elbv2.exceptions import DuplicateListenerError, DuplicateLoadBalancerName, DuplicateTargetGroupName


def _same(a, b) -> bool:
    return str(a if a is not None else "") == str(b if b is not None else "")


def _create_load_balancer(original):
    def call(self, name, security_groups, subnet_ids, subnet_mappings=None, scheme="internet-facing",
             loadbalancer_type=None, ip_address_type="ipv4", tags=None):
        # ELB's default scheme (moto keeps none when the request names none).
        scheme = scheme or "internet-facing"
        for existing in self.load_balancers.values():
            if existing.name != name:
                continue
            subnets = set(subnet_ids or []) | {m["SubnetId"] for m in subnet_mappings or []}
            same = (
                existing.type == (loadbalancer_type or "application")
                and existing.scheme == scheme
                and {s.id for s in existing.subnets} == subnets
                and set(existing.security_groups or []) == set(security_groups or [])
            )
            if same:
                return existing
            raise DuplicateLoadBalancerName()
        return original(self, name, security_groups, subnet_ids, subnet_mappings, scheme, loadbalancer_type,
                        ip_address_type, tags)

    return call


def _create_target_group(original):
    def call(self, name, **kwargs):
        for existing in self.target_groups.values():
            if existing.name != name:
                continue
            same = (
                _same(existing.protocol, kwargs.get("protocol"))
                and _same(existing.port, kwargs.get("port"))
                and _same(existing.vpc_id, kwargs.get("vpc_id"))
                and _same(existing.target_type, kwargs.get("target_type") or "instance")
            )
            if same:
                return existing
            raise DuplicateTargetGroupName()
        return original(self, name, **kwargs)

    return call


def _create_listener(original):
    def call(self, load_balancer_arn, protocol, port, *args, **kwargs):
        balancer = self.load_balancers.get(load_balancer_arn)
        listeners = balancer.listeners.values() if balancer is not None else []
        existing = next((listener for listener in listeners if _same(listener.port, port)), None)
        if existing is not None:
            if _same(existing.protocol, (protocol or "").upper()):
                return existing
            raise DuplicateListenerError()
        return original(self, load_balancer_arn, protocol, port, *args, **kwargs)

    return call


def install() -> None:
    backend = models.ELBv2Backend
    backend.create_load_balancer = _create_load_balancer(backend.create_load_balancer)
    backend.create_target_group = _create_target_group(backend.create_target_group)
    backend.create_listener = _create_listener(backend.create_listener)
