"""The sandbox's AWS: moto, extended so that ELBv2 behaves as the controller sees a real ELB.

moto parses the real wire protocol and keeps the resources; this package adds what moto lacks:
real target health checks (initial, healthy, unhealthy, draining, unused, with ELB's reason
codes), targets keyed by Id and Port, and a data plane that carries HTTP and TCP traffic through
each listener to healthy targets. See ``__main__`` for how the parts start.
"""
