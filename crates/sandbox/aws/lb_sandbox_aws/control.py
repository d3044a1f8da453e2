"""The control API the Rust side of the sandbox queries (JSON over HTTP on loopback):

  GET /health                                  "ok"
  GET /listeners                               every local listener: LB DNS name, port, local address, counts
  GET /targets?target_group_arn=ARN            every target of the group with its health timeline
  GET /requests?listener_arn=ARN&since=EPOCH   recent requests: [time, outcome, target]
  GET /routing-lag?seconds=S                   sets the data plane's routing lag (see targets.py)
  GET /throttle?per_second=N                   throttles the target calls to N a second (0: off);
                                               answers the rate and how many calls were refused
  GET /peer-target-group?arn=ARN               makes target group ARN exist in the account it names,
                                               with a VPC like the cluster's and an ALB (see peer.py)
  GET /security-groups?enforce=B&client_address=A
                                               sets what network.py enforces (either may be left
                                               out); answers both
  GET /security-group?id=sg-...               makes that group exist in the cluster's VPC (a group
                                               of the user's that manifests name)
  POST /interfaces/addresses {"instance_id": I, "addresses": [..]}
                                               puts pod addresses on instance I's primary
                                               interface, as the VPC CNI does (network.py)
  GET /faults                                  the AWS fault rules in force, whether the endpoint is
                                               paused, calls by operation and what they met, and the
                                               mutating calls in order (faults.py)
  POST /faults {"rules": [..], "seed": N}      replaces the rules (none: no faults)
  GET /faults/pause?on=B                       pauses (every call waits) or resumes the endpoint
  GET /faults/reset                            forgets the counts and the log of calls
  GET /footprint                               the account's load balancers, target groups and the
                                               cluster VPC's security groups, by name (footprint.py)
  POST /replay {"footprint": F, "renames": R}  creates footprint F as the upstream controller would,
                                               names renamed by R (footprint.py); answers the
                                               security groups, target groups and load balancers
                                               created with their IDs and ARNs
Errors are {"error": text}: 400 for a bad request, 500 for what moto refused.
"""

import asyncio
import ipaddress
import json
from urllib.parse import parse_qs, urlsplit

from . import footprint, httpwire, peer

MOTO_PATHS = ("/peer-target-group", "/footprint", "/replay", "/interfaces/addresses")
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}


class ControlApi:
    def __init__(self, registry, dataplane, network, endpoint: str, config: dict, vpc_id: str, throttle, faults):
        self.registry = registry
        self.faults = faults
        self.network = network
        self.throttle = throttle
        self.dataplane = dataplane
        self.endpoint = endpoint
        self.config = config
        # The cluster's VPC, as the seed made it (moto's default VPC is in the account too).
        self.vpc_id = vpc_id

    async def start(self) -> int:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return server.sockets[0].getsockname()[1]

    def _answer(self, path: str, query: dict):
        one = lambda name, default=None: (query.get(name) or [default])[0]  # noqa: E731
        if path == "/health":
            return 200, "ok"
        if path == "/listeners":
            return 200, self.dataplane.listeners()
        if path == "/targets":
            return 200, self.registry.timeline(one("target_group_arn", ""))
        if path == "/requests":
            return 200, self.dataplane.recent(one("listener_arn", ""), float(one("since", "0")))
        if path == "/routing-lag":
            seconds = float(one("seconds", "0"))
            if not 0 <= seconds <= 600:
                return 400, {"error": f"routing lag {seconds} s is outside 0..600"}
            self.registry.routing_lag = seconds
            return 200, {"routing_lag": seconds}
        if path == "/throttle":
            per_second = float(one("per_second", "0"))
            if not 0 <= per_second <= 10000:
                return 400, {"error": f"rate {per_second} is outside 0..10000"}
            return 200, self.throttle.set(per_second)
        if path == "/faults":
            return 200, self.faults.state()
        if path == "/faults/pause":
            on = one("on", "true")
            if on not in ("true", "false"):
                return 400, {"error": f"on must be true or false, not {on}"}
            return 200, self.faults.pause(on == "true")
        if path == "/faults/reset":
            return 200, self.faults.reset_counts()
        if path == "/security-group":
            try:
                return 200, self.network.ensure_group(one("id", ""), self.vpc_id)
            except ValueError as err:
                return 400, {"error": str(err)}
        if path == "/security-groups":
            enforce, client_address = one("enforce"), one("client_address")
            if enforce is not None:
                if enforce not in ("true", "false"):
                    return 400, {"error": f"enforce must be true or false, not {enforce}"}
                self.network.enforce = enforce == "true"
            if client_address is not None:
                try:
                    ipaddress.ip_address(client_address)
                except ValueError:
                    return 400, {"error": f"client_address {client_address} is no IP address"}
                self.network.client_address = client_address
            return 200, {"enforce": self.network.enforce, "client_address": self.network.client_address}
        return 404, {"error": f"no such endpoint {path}"}

    def _set_faults(self, body: bytes):
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict) or not isinstance(request.get("rules", []), list):
                raise ValueError('the body must be {"rules": [...], "seed": N}')
            seed = request.get("seed")
            return 200, self.faults.set(request.get("rules", []), None if seed is None else int(seed))
        except (ValueError, TypeError) as err:
            return 400, {"error": str(err)}

    def _moto_answer(self, method: str, path: str, query: dict, body: bytes):
        """The endpoints that call moto over HTTP, so run off the loop (which serves the data
        plane and checks). A ValueError is the caller's mistake; anything else moto refused."""
        one = lambda name, default=None: (query.get(name) or [default])[0]  # noqa: E731
        try:
            if path == "/peer-target-group":
                return 200, peer.ensure_target_group(self.endpoint, self.config, one("arn", ""))
            if path == "/footprint":
                return 200, footprint.dump(self.endpoint, self.config, self.vpc_id)
            if method != "POST":
                return 405, {"error": f"{path} takes a POST"}
            request = json.loads(body)
            if path == "/interfaces/addresses":
                if not isinstance(request, dict) or not isinstance(request.get("addresses"), list):
                    raise ValueError('the body must be {"instance_id": "i-...", "addresses": [...]}')
                return 200, self.network.assign_addresses(str(request.get("instance_id")), request["addresses"])
            if not isinstance(request, dict) or not isinstance(request.get("footprint"), dict) \
                    or not isinstance(request.get("renames", {}), dict):
                raise ValueError('the body must be {"footprint": {...}, "renames": {...}}')
            return 200, footprint.replay(self.endpoint, self.config, self.vpc_id, request["footprint"],
                                         request.get("renames", {}))
        except ValueError as err:
            return 400, {"error": str(err)}
        except Exception as err:  # noqa: BLE001 - moto's errors are many; the caller reads the text
            return 500, {"error": f"{type(err).__name__}: {err}"}

    async def _handle(self, reader, writer):
        try:
            head = await httpwire.read_head(reader)
            if head is None:
                return
            method, raw_target = head.first_line.split(" ")[:2]
            target = urlsplit(raw_target)
            query = parse_qs(target.query)
            if target.path in MOTO_PATHS:
                request_body = await httpwire.read_body(reader, head, until_eof=False)
                status, value = await asyncio.get_running_loop().run_in_executor(
                    None, self._moto_answer, method, target.path, query, request_body
                )
            elif target.path == "/faults" and method == "POST":
                status, value = self._set_faults(await httpwire.read_body(reader, head, until_eof=False))
            else:
                status, value = self._answer(target.path, query)
            body = json.dumps(value).encode()
            writer.write(httpwire.response_bytes(status, REASONS[status], [("Content-Type", "application/json")],
                                                 body, close=True))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            pass
        finally:
            writer.close()
