"""The network guard: the emulator only ever connects to loopback and the sandbox's pod CIDR."""

import ipaddress


class Guard:
    def __init__(self, pod_cidr: str):
        self.pod_cidr = ipaddress.ip_network(pod_cidr)

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if address.is_loopback:
            return True
        return address.version == 4 and address in self.pod_cidr
